/*
 * listener.h - listening sockets (TCP and unix) and accept.
 *
 * Accepted sockets become clients unless max_client_conn is reached or the
 * daemon is shutting down; those are refused with a FATAL error at once so
 * that a flood cannot hold file descriptors.
 */
#ifndef PGSLUICE_LISTENER_H
#define PGSLUICE_LISTENER_H

#include <stdbool.h>

#include "worker.h"

/* Opens every configured listening socket; false (logged) on failure. */
bool listener_open_all(struct worker *w);

/* Stops accepting and closes the sockets (removing the unix socket file). */
void listener_close_all(struct worker *w);

/* Restarts accepting after a pause for lack of file descriptors. */
void listener_resume_all(struct worker *w);

#endif
