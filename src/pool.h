/*
 * pool.h - pools of server connections per (database, user).
 *
 * A pool hands an idle server to a client (most recently used first) or
 * queues the client (first come, first served) and opens servers up to the
 * pool's limit. pool_set_server_state() is the one place a server changes
 * state, so its state and the list it is on never disagree.
 */
#ifndef PGSLUICE_POOL_H
#define PGSLUICE_POOL_H

#include "worker.h"

/* The pool for (db, target, user), created when first needed; NULL without memory. */
struct pool *pool_get(struct worker *w, struct database *db, struct target *target,
		      const char *user);

/* Frees a pool that has no servers and no clients left. */
void pool_free_if_unused(struct worker *w, struct pool *p);

/* Moves s to state (and to the list the state names), keeping counts. */
void pool_set_server_state(struct server *s, enum server_state state);

/* Links c to an idle server, or queues c and opens a server if allowed. */
void pool_acquire(struct worker *w, struct pool *p, struct client *c);

/* Takes c off the wait queue (it closed or timed out). */
void pool_cancel_wait(struct client *c);

/* Unlinks s from its client and returns it to the pool (reset or close as due). */
void pool_release(struct worker *w, struct server *s);

/* s finished its login or reset: make it idle and serve a waiting client. */
void pool_server_ready(struct worker *w, struct server *s);

/*
 * s is closing before or after serving. When it never got ready and nothing
 * else can serve the waiting clients, they get sqlstate/message.
 */
void pool_server_failed(struct worker *w, struct pool *p, const char *sqlstate,
			const char *message);

/* Takes s off its pool's lists (it is being closed). */
void pool_remove_server(struct server *s);

/* Serves waiting clients with idle servers and opens more if allowed. */
void pool_wake(struct worker *w, struct pool *p);

/* Timeouts and pool size upkeep; called by the janitor. */
void pool_janitor(struct worker *w, struct pool *p, ev_tstamp now);

/* Servers of the pool in any state. */
int pool_server_count(const struct pool *p);

/* The size of p: a replica's own, the database's replica or pool size, or the global. */
int pool_size_of(const struct worker *w, const struct pool *p);

/* The pool mode for clients of p (computed; p->mode caches it). */
enum pool_mode pool_mode_of(const struct worker *w, const struct pool *p);

#endif
