/*
 * router.h - which server target serves a request.
 *
 * Under transaction and statement pooling, the first message of each
 * transaction is classified (classify.c): provably read-only work goes
 * round-robin (weighted) to the healthy replicas that have replayed what
 * the client must see (read_your_writes), everything else to the primary.
 * Session pooling keeps a client on the primary (or, for a replica_only
 * alias, on one replica).
 */
#ifndef PGSLUICE_ROUTER_H
#define PGSLUICE_ROUTER_H

#include <stdbool.h>

#include "worker.h"

enum router_result {
	ROUTER_OK,         /* route filled in */
	ROUTER_NEED_ALL,   /* the message must be whole in the buffer first */
	ROUTER_NO_REPLICA, /* a read with no replica and replica_fallback = error */
};

struct route {
	struct target *target;
	bool read;          /* a read: may be retried on another target */
	const char *reason; /* why, for SHOW ROUTE and debug logs */
};

/* Rebuilds the classifier options from the configuration (at start and reload). */
bool router_configure(struct worker *w);

/* Frees what router_configure built. */
void router_free(struct worker *w);

/*
 * Decides where c's request that starts with msg (total bytes, avail of
 * them in the buffer) goes.
 */
enum router_result router_route(struct worker *w, struct client *c, const uint8_t *msg,
				uint32_t total, uint32_t avail, struct route *out);

/*
 * Another target for a read whose target failed (excluding failed), or
 * NULL when only the failed one could serve it.
 */
struct target *router_retry_target(struct worker *w, struct client *c, struct target *failed);

/* A transaction of c's on the primary ended: reads must now see its writes. */
void router_note_primary_commit(struct worker *w, struct client *c);

/*
 * Explains the decision for sql (admin SHOW ROUTE): *read (a replica may
 * serve it) and the reason, with the deciding keyword or function, into
 * reason (cap bytes).
 */
void router_explain(struct worker *w, const char *sql, size_t len, bool *read, char *reason,
		    size_t cap);

#endif
