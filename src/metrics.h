/*
 * metrics.h - the figures the operator sees, and the Prometheus endpoint.
 *
 * The per-database, per-pool and per-target figures are read here once
 * (metrics_read_*) and rendered twice: as admin console tables (admin.c)
 * and as the Prometheus text exposition (metrics_render), so that SHOW
 * STATS and /metrics always agree. The endpoint is a tiny HTTP/1.x server
 * on the worker's loop (metrics_listen = host:port): bounded request
 * buffer, bounded connections, a deadline per connection, non-blocking
 * writes; it never touches a client or server socket.
 */
#ifndef PGSLUICE_METRICS_H
#define PGSLUICE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "stats.h"
#include "worker.h"

/* The quantiles every latency figure is reported at. */
#define METRICS_N_QUANTILES 4

/* 0.5, 0.95, 0.99, 0.999. */
extern const double metrics_quantiles[METRICS_N_QUANTILES];

/* Column suffixes of the quantiles: "p50", "p95", "p99", "p999". */
extern const char *const metrics_quantile_names[METRICS_N_QUANTILES];

/* Most bytes of an HTTP request (line and headers) the endpoint reads. */
#define METRICS_REQUEST_MAX 4096

/* Most metrics connections served at once; more wait in the kernel's backlog. */
#define METRICS_MAX_CONNS 16

/* One database's traffic figures, as SHOW STATS and /metrics report them. */
struct metrics_db {
	struct stats_totals total; /* since start */
	/* Last full stats period: xact/query counts and bytes per second; xact and
	 * query time per transaction / query; wait time per transaction (µs). */
	struct stats_totals avg;
	double period_seconds; /* length of that period; 0 before the first ends */
};

/* Percentiles of one latency window (µs). */
struct metrics_latency {
	uint64_t query_count, xact_count, wait_count;
	uint64_t query[METRICS_N_QUANTILES];
	uint64_t xact[METRICS_N_QUANTILES];
	uint64_t wait[METRICS_N_QUANTILES];
};

/* One pool's state, as SHOW POOLS and /metrics report it. */
struct metrics_pool {
	int cl_active;	     /* logged-in clients of the pool not waiting in its queue */
	int cl_waiting;	     /* clients queued for a server */
	int sv_active;	     /* servers linked to a client */
	int sv_idle;	     /* servers ready in the pool */
	int sv_tested;	     /* servers running server_reset_query */
	int sv_login;	     /* servers connecting or logging in */
	uint64_t maxwait_us; /* how long the oldest waiting client has waited */
	int pool_size;	     /* the size the pool grows to (without reserve) */
	enum pool_mode mode;
	const char *role; /* "primary" or "replica" */
};

/*
 * Reads a database's traffic figures.
 * db: the database.
 * out: receives them.
 */
void metrics_read_db(const struct database *db, struct metrics_db *out);

/*
 * Reads the percentiles of one latency window.
 * l: the window's histograms (stats.since_start or stats.last).
 * out: receives them.
 */
void metrics_read_latency(const struct stats_latency *l, struct metrics_latency *out);

/*
 * Reads a pool's state at time now (ev_now scale).
 * w: the worker (for the configuration).
 * p: the pool.
 * now: the current time.
 * out: receives it.
 */
void metrics_read_pool(const struct worker *w, const struct pool *p, double now,
		       struct metrics_pool *out);

/* Returns the process's resident memory in bytes (/proc/self/statm), or 0 when unknown. */
uint64_t metrics_rss_bytes(void);

/*
 * t: a target.
 * Returns its role's name: "primary" or "replica".
 */
const char *metrics_role_name(const struct target *t);

/*
 * Writes the whole Prometheus text exposition (format 0.0.4).
 * w: the worker whose figures are shown.
 * ob: where the text goes (bounded by its limit).
 * Returns false when ob refused bytes (the text is incomplete).
 */
bool metrics_render(struct worker *w, struct obuf *ob);

/*
 * Judges the bytes received so far of an HTTP request.
 * buf, len: the bytes (need not be NUL-terminated).
 * Returns 0 while the request is incomplete, else the status to answer
 * with: 200 for GET /metrics (a query string is allowed),
 * METRICS_HEALTH_REQUEST for GET /health, 404 for another
 * path, 405 for another method on /metrics, 400 for a malformed request or
 * an HTTP version other than 1.0 and 1.1, 431 when METRICS_REQUEST_MAX bytes
 * hold no complete request.
 */
int metrics_check_request(const char *buf, size_t len);

/* metrics_check_request's answer for GET /health (not an HTTP status). */
#define METRICS_HEALTH_REQUEST 1

/*
 * Opens the endpoint named by w->cfg->metrics_listen (nothing when empty).
 * w: the worker.
 * Returns false (logged) when the address is malformed or cannot be bound.
 */
bool metrics_start(struct worker *w);

/*
 * Closes the endpoint and every metrics connection.
 * w: the worker.
 */
void metrics_stop(struct worker *w);

#endif
