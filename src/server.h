/*
 * server.h - the server connection state machine.
 *
 * CONNECTING -> LOGIN -> IDLE <-> ACTIVE (linked to a client) -> IDLE, with
 * RESETTING between a session-mode client and the next. While linked, the
 * server's messages stream to the client; the server watches only
 * ReadyForQuery (to know when the transaction is over), ParameterStatus (to
 * track settings) and ErrorResponse (to notice FATAL).
 */
#ifndef PGSLUICE_SERVER_H
#define PGSLUICE_SERVER_H

#include "worker.h"

/* Starts a connection for pool p; NULL when the socket cannot be made. */
struct server *server_open(struct worker *w, struct pool *p);

/*
 * Whether pgsluice can log in to p's servers now: false only while it holds just a
 * SCRAM secret for the user and no client has proved the key yet (SCRAM pass-through).
 */
bool server_can_log_in(struct worker *w, const struct pool *p);

/*
 * Closes s and frees it. A linked client is told the server is gone;
 * failed marks a connect/login failure (logged as such).
 */
void server_close(struct worker *w, struct server *s, const char *reason, bool failed);

/* Links s to c (s is idle) and lets the client go on. */
void server_link(struct worker *w, struct server *s, struct client *c);

/* Unlinks s from its client; s's state is the caller's to set next. */
void server_unlink(struct worker *w, struct server *s);

/* Queues the SET/RESET statements that bring s in line with c's settings. */
void server_sync_params(struct worker *w, struct server *s, struct client *c);

/* Runs server_reset_query with the replies swallowed, then goes idle. */
void server_reset(struct worker *w, struct server *s);

/* Processes what s has buffered (after its client drained). */
void server_continue(struct worker *w, struct server *s);

/* The server's address for logs. */
const char *server_describe(const struct server *s);

#endif
