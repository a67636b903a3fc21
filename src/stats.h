/*
 * stats.h - counters and latency histograms per database.
 *
 * The proxy path records into struct stats with O(1) additions (no
 * allocation, no locks); the janitor rolls the stats period, keeping the
 * last full period's totals, per-second averages and histograms beside the
 * ones since start. SHOW STATS/LATENCY and /metrics read them. Counters
 * never reset, not even on reload.
 */
#ifndef PGSLUICE_STATS_H
#define PGSLUICE_STATS_H

#include <stdint.h>

#include "histogram.h"

/* The figures PgBouncer's SHOW STATS has, under its names (times in µs). */
struct stats_totals {
	uint64_t xact_count;
	uint64_t query_count;
	uint64_t bytes_received;
	uint64_t bytes_sent;
	uint64_t xact_time;
	uint64_t query_time;
	uint64_t wait_time;
};

struct stats_latency {
	struct histogram query;
	struct histogram xact;
	struct histogram wait;
};

struct stats {
	struct stats_totals total;       /* since start */
	struct stats_totals period_base; /* total when the current period began */
	struct stats_totals last_delta;  /* what the last full period added */
	double last_seconds;             /* length of the last full period */
	struct stats_latency since_start;
	struct stats_latency period;     /* current period, filling */
	struct stats_latency last;       /* last full period */
};

/* Zeroes st (at database creation only). */
void stats_init(struct stats *st);

/* A request (Query/Sync/FunctionCall up to ReadyForQuery) took usec. */
void stats_record_query(struct stats *st, uint64_t usec);

/* A transaction (first request to ReadyForQuery 'I') took usec. */
void stats_record_xact(struct stats *st, uint64_t usec);

/* A client waited usec for a server. */
void stats_record_wait(struct stats *st, uint64_t usec);

/* Bytes a client sent to / received from pgsluice. */
void stats_record_bytes(struct stats *st, uint64_t received, uint64_t sent);

/* Ends the current period after seconds; it becomes the "last" one. */
void stats_roll_period(struct stats *st, double seconds);

/* Per-second average of a counter over the last full period. */
uint64_t stats_per_second(const struct stats *st, uint64_t delta);

#endif
