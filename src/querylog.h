/*
 * querylog.h - what pgsluice learns from each statement it forwards.
 *
 * Every statement is timed (inflight.c) from when it reaches its server to
 * its CommandComplete or ErrorResponse; then its fingerprint's statistics
 * grow (querystats.c, SHOW QUERIES), and one slower than
 * slow_query_threshold becomes a JSON record (slowlog.c, SHOW SLOW_QUERIES)
 * whose plan is captured on the side (explain.c) before it is written.
 */
#ifndef PGSLUICE_QUERYLOG_H
#define PGSLUICE_QUERYLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "worker.h"

/* Builds or updates the statement log from w->cfg (start, reload, SET); false when out of memory. */
bool querylog_configure(struct worker *w);

/* Reopens the slow-query log file (logrotate: SIGHUP, SIGUSR2). */
void querylog_reopen(struct worker *w);

/* Frees it all; plan captures still running end and their records are written. */
void querylog_free(struct worker *w);

/* True when statements are timed at all (query statistics or a slow threshold on). */
bool querylog_active(const struct worker *w);

/* c forwards msg (total bytes, whole unless larger than a buffer) to s. */
void querylog_on_client_message(struct worker *w, struct client *c, struct server *s,
				const uint8_t *msg, uint32_t total, uint32_t avail);

/* s is sent again the len bytes of whole messages c sent before (a retried read, a batch's row). */
void querylog_on_replay(struct worker *w, struct client *c, struct server *s, const uint8_t *data,
			size_t len);

/* s forwards msg (whole for 'C' and 'E') to its client. */
void querylog_on_server_message(struct worker *w, struct server *s, const uint8_t *msg,
				uint32_t total);

/*
 * A batched INSERT's row committed (batch.c): SHOW QUERIES counts it as its own
 * statement sql, one row, usec from when it joined its batch. The slow-query
 * log does not see it.
 */
void querylog_batched_row(struct worker *w, const char *sql, size_t sql_len, uint64_t usec);

/* s is linked to another client or closed: what was in flight is forgotten. */
void querylog_server_reset(struct server *s);

/* The client leaves: its prepared statements are forgotten. */
void querylog_client_gone(struct client *c);

/* SHOW SLOW_QUERIES and SHOW QUERIES of the admin console. */
void querylog_show_slow(struct worker *w, struct obuf *ob);
void querylog_show_queries(struct worker *w, struct obuf *ob);

/*
 * The n fingerprints with the most total time, first the most: fills out
 * and returns how many there are (at most n).
 */
struct querystats_entry;
size_t querylog_top(struct worker *w, const struct querystats_entry **out, size_t n);

#endif
