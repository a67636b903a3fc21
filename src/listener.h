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
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "worker.h"

/* Opens every configured listening socket; false (logged) on failure. */
bool listener_open_all(struct worker *w);

/*
 * Stops accepting and closes the sockets (removing the unix socket file this
 * process made). The peer socket stays: cancels for clients still being
 * served must reach this process until it exits.
 */
void listener_close_all(struct worker *w);

/*
 * so_reuseport: claims the first free instance slot of the port by binding
 * its peer socket (sets w->instance_slot); false (logged) when none is free.
 */
bool listener_open_peer(struct worker *w);

/* Closes the peer socket, freeing the slot (at exit). */
void listener_close_peer(struct worker *w);

/* The abstract unix address of the peer socket of slot on port; returns its length. */
socklen_t listener_peer_address(int port, uint32_t slot, struct sockaddr_un *sun);

/* Restarts accepting after a pause for lack of file descriptors. */
void listener_resume_all(struct worker *w);

#endif
