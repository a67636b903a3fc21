/*
 * batch.h - insert batching: single-row autocommit INSERTs of concurrent
 * clients of one pool run as one multi-row INSERT in one transaction.
 *
 * client.c offers a request that routing sent to the primary (batch_offer);
 * a candidate row joins a batch of its pool, the client waits in
 * CLIENT_BATCHED. pool.c hands a batch a server in its turn, like a waiting
 * client; server.c passes the replies of a server running a batch here. Each
 * client is answered only after the batch committed; when it fails, each row
 * runs again alone as its client sent it. The SQL and protocol bytes come
 * from batchsql.c.
 */
#ifndef PGSLUICE_BATCH_H
#define PGSLUICE_BATCH_H

#include "conn.h"
#include "worker.h"

/* The batching figures of user on db, made on first use; NULL without memory. */
struct batch_counts *batch_tally_of(struct database *db, const char *user);

/* Frees db's tallies (the database goes). */
void batch_tallies_free(struct database *db);

/*
 * A request of c (CLIENT_IDLE, routed to its primary pool p) at msg: a Query,
 * or a Parse that may start Parse/Bind/[Describe]/Execute/Sync. Returns
 * CONN_FORWARD when it is not batched (the usual path goes on, nothing
 * changed), CONN_CONSUMED when its row joined a batch (c is CLIENT_BATCHED;
 * c->batch_skip more messages of the request are to be dropped), or
 * CONN_NEED_ALL while the rest of an extended request has not arrived.
 */
enum conn_action batch_offer(struct worker *w, struct client *c, struct pool *p, const uint8_t *msg,
			     uint32_t total, uint32_t avail);

/* c is closing: its row leaves a batch not running yet; a running one keeps it. */
void batch_client_gone(struct worker *w, struct client *c);

/*
 * A cancel request for c (CLIENT_BATCHED): a row not running yet leaves its
 * batch and c gets 57014; a running batch's row shares the batch's fate.
 */
void batch_cancel(struct worker *w, struct client *c);

/* When the batch at the head of p's queue began to wait; 0 when none waits. */
ev_tstamp batch_waiting_since(const struct pool *p);

/* Runs the batch at the head of p's queue on s (idle). */
void batch_start_waiting(struct worker *w, struct pool *p, struct server *s);

/* Runs p's oldest collecting batch on s (idle, nobody waits); false when p has none. */
bool batch_start_open(struct worker *w, struct pool *p, struct server *s);

/*
 * query_wait_timeout for p's waiting batches (their clients get 57014) and
 * query_timeout for its running ones (cancelled: each row then runs alone).
 */
void batch_janitor(struct worker *w, struct pool *p, ev_tstamp now);

/* p cannot open servers: the clients of its waiting batches get sqlstate/message. */
void batch_pool_failed(struct worker *w, struct pool *p, const char *sqlstate, const char *message);

/* A message of s while it runs a batch (s->batch set): what to do with it. */
enum conn_action batch_on_server_message(struct server *s, const uint8_t *msg, uint32_t total,
					 uint32_t avail);

/* SERVER_EVENT_BATCH of s: the INSERT or the COMMIT/ROLLBACK was answered. */
void batch_on_server_event(struct worker *w, struct server *s);

/* s is closing while it runs a batch: the batch's clients learn their rows' fate. */
void batch_server_lost(struct worker *w, struct server *s);

#endif
