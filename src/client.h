/*
 * client.h - the client connection state machine.
 *
 * STARTUP [-> TLS -> STARTUP] -> AUTH -> WELCOME -> IDLE <-> WAITING -> ACTIVE -> IDLE ...
 * A client asks its pool for a server when a request starts, streams its
 * messages to that server while linked, and is unlinked when the server
 * says the transaction is over (transaction/statement pooling) or when it
 * leaves (session pooling). Every error it is sent goes through
 * client_fail_request (the request fails, the session goes on) or
 * client_fatal (the session ends).
 */
#ifndef PGSLUICE_CLIENT_H
#define PGSLUICE_CLIENT_H

#include "auth.h"
#include "worker.h"

/*
 * Takes over an accepted socket. addr names the peer for logs; refusing
 * marks a client over max_client_conn, told 53300 after its startup packet.
 */
void client_accept(struct worker *w, int fd, const char *addr, bool refusing);

/* Refuses an accepted socket with a FATAL error (max_client_conn, shutdown). */
void client_refuse(int fd, const char *sqlstate, const char *message);

/*
 * The outcome r of an authentication step of c (auth.h): OK logs c in,
 * FAILED refuses it with 28P01, CONTINUE sends what auth queued, GONE
 * (c already closed) does nothing.
 */
void client_on_auth(struct worker *w, struct client *c, enum auth_result r);

/* Moves c to state, keeping the worker's bookkeeping right. */
void client_set_state(struct client *c, enum client_state state);

/* A server was linked to c: apply settings and forward its request. */
void client_on_linked(struct worker *w, struct client *c);

/* c's server went back to the pool; c waits for its next request. */
void client_on_unlinked(struct worker *w, struct client *c);

/* The server finished a request of c's with ReadyForQuery status. */
void client_on_ready(struct worker *w, struct client *c, char status);

/* c's session settings are known: send the login's final messages. */
void client_finish_welcome(struct worker *w, struct client *c);

/* c's request fails with an ERROR; c stays connected. */
void client_fail_request(struct worker *w, struct client *c, const char *sqlstate,
			 const char *message);

/* c's linked server is gone; tell c (unless it saw the FATAL) and close it. */
void client_server_lost(struct worker *w, struct client *c, bool fatal_forwarded);

/*
 * c's read failed on failed before any answer reached it: send it once to
 * another target. Returns false when it cannot be retried.
 */
bool client_retry_read(struct worker *w, struct client *c, struct target *failed);

/* Sends a FATAL error and closes c. */
void client_fatal(struct worker *w, struct client *c, const char *sqlstate, const char *message);

/* Closes c; a linked server goes back to the pool if clean, else is closed. */
void client_close(struct worker *w, struct client *c, const char *reason);

/* Processes what c has buffered (after its server drained or got linked). */
void client_continue(struct worker *w, struct client *c);

/* Processes c's buffered input once the current event is handled. */
void client_resume(struct worker *w, struct client *c);
/* Processes clients whose input waits since an earlier event. */
void client_run_deferred(struct worker *w);

/* Login, idle and transaction timeouts; graceful shutdown of idle clients. */
void client_janitor(struct worker *w, ev_tstamp now);

#endif
