/*
 * metrics.c - operator figures and the Prometheus endpoint (metrics.h).
 *
 * The first half reads figures out of the runtime objects (counters,
 * histograms, pool lists) without changing anything; admin.c renders the
 * same readings as tables. The second half renders them as the Prometheus
 * text format and serves it over a minimal HTTP/1.x listener on the
 * worker's loop. A scrape walks databases, targets and pools (never the
 * clients), so its cost does not grow with the number of clients.
 */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "pool.h"
#include "querylog.h"
#include "querystats.h"

const double metrics_quantiles[METRICS_N_QUANTILES] = {0.5, 0.95, 0.99, 0.999};
const char *const metrics_quantile_names[METRICS_N_QUANTILES] = {"p50", "p95", "p99", "p999"};

/* ----- figures ----- */

static uint64_t ratio(uint64_t num, uint64_t den)
{
	return den > 0 ? num / den : 0;
}

void metrics_read_db(const struct database *db, struct metrics_db *out)
{
	const struct stats *st = &db->stats;
	const struct stats_totals *d = &st->last_delta;
	out->total = st->total;
	out->period_seconds = st->last_seconds;
	out->avg = (struct stats_totals){
		.xact_count = stats_per_second(st, d->xact_count),
		.query_count = stats_per_second(st, d->query_count),
		.bytes_received = stats_per_second(st, d->bytes_received),
		.bytes_sent = stats_per_second(st, d->bytes_sent),
		.xact_time = ratio(d->xact_time, d->xact_count),
		.query_time = ratio(d->query_time, d->query_count),
		.wait_time = ratio(d->wait_time, d->xact_count),
	};
}

void metrics_read_latency(const struct stats_latency *l, struct metrics_latency *out)
{
	out->query_count = histogram_count(&l->query);
	out->xact_count = histogram_count(&l->xact);
	out->wait_count = histogram_count(&l->wait);
	for (size_t i = 0; i < METRICS_N_QUANTILES; i++) {
		out->query[i] = histogram_percentile(&l->query, metrics_quantiles[i]);
		out->xact[i] = histogram_percentile(&l->xact, metrics_quantiles[i]);
		out->wait[i] = histogram_percentile(&l->wait, metrics_quantiles[i]);
	}
}

const char *metrics_role_name(const struct target *t)
{
	return t->role == TARGET_REPLICA ? "replica" : "primary";
}

void metrics_read_pool(const struct worker *w, const struct pool *p, double now,
		       struct metrics_pool *out)
{
	out->cl_waiting = p->n_waiting;
	out->cl_active = p->n_clients > p->n_waiting ? p->n_clients - p->n_waiting : 0;
	out->sv_active = p->n_active;
	out->sv_idle = p->n_idle;
	out->sv_tested = p->n_resetting;
	out->sv_login = p->n_opening;
	out->maxwait_us = 0;
	/* The queue is FIFO: its head has waited longest. */
	struct list_head *first = list_first(&p->waiting);
	if (first != NULL) {
		const struct client *c = list_entry(first, struct client, wait_node);
		if (now > c->wait_since)
			out->maxwait_us = (uint64_t)((now - c->wait_since) * 1e6);
	}
	out->pool_size = pool_size_of(w, p);
	out->mode = p->mode;
	out->role = metrics_role_name(p->target);
}

uint64_t metrics_rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return 0;
	unsigned long long size, resident;
	int n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	long page = sysconf(_SC_PAGESIZE);
	return n == 2 && page > 0 ? (uint64_t)resident * (uint64_t)page : 0;
}

/* ----- exposition ----- */

/* Room for one formatted line; names and labels are bounded well below it. */
#define METRICS_LINE_MAX 1024
/* Bytes of a normalized statement a metrics label carries. */
#define METRICS_QUERY_LABEL_MAX 200

static void put(struct obuf *ob, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct obuf *ob, const char *fmt, ...)
{
	char line[METRICS_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		obuf_put(ob, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void put_family(struct obuf *ob, const char *name, const char *type, const char *help)
{
	put(ob, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Appends a label value with the text format's escapes (backslash, quote, newline). */
static void put_label_value(struct obuf *ob, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			obuf_put_u8(ob, '\\');
		if (*v == '\n')
			obuf_put(ob, "\\n", 2);
		else
			obuf_put_u8(ob, (uint8_t)*v);
	}
}

/* Appends `name{k1="v1",...}` for n label pairs. */
static void put_series(struct obuf *ob, const char *name, const char *const *labels, size_t n)
{
	obuf_put(ob, name, strlen(name));
	if (n == 0)
		return;
	obuf_put_u8(ob, '{');
	for (size_t i = 0; i < n; i++) {
		put(ob, "%s%s=\"", i > 0 ? "," : "", labels[2 * i]);
		put_label_value(ob, labels[2 * i + 1]);
		obuf_put_u8(ob, '"');
	}
	obuf_put_u8(ob, '}');
}

static void put_uint_sample(struct obuf *ob, const char *name, const char *const *labels, size_t n,
			    uint64_t v)
{
	put_series(ob, name, labels, n);
	put(ob, " %" PRIu64 "\n", v);
}

static void put_float_sample(struct obuf *ob, const char *name, const char *const *labels, size_t n,
			     double v)
{
	put_series(ob, name, labels, n);
	put(ob, " %.6f\n", v);
}

/* A per-database counter: a stats_totals field, in seconds when it holds µs. */
struct db_counter {
	const char *name;
	const char *help;
	size_t offset;
	bool usec;
};

static const struct db_counter db_counters[] = {
	{"pgsluice_queries_total", "Requests (Query/Sync/FunctionCall to ReadyForQuery) served.",
	 offsetof(struct stats_totals, query_count), false},
	{"pgsluice_xacts_total", "Transactions served.", offsetof(struct stats_totals, xact_count),
	 false},
	{"pgsluice_received_bytes_total", "Bytes received from clients.",
	 offsetof(struct stats_totals, bytes_received), false},
	{"pgsluice_sent_bytes_total", "Bytes sent to clients.",
	 offsetof(struct stats_totals, bytes_sent), false},
	{"pgsluice_query_time_seconds_total", "Time spent running requests.",
	 offsetof(struct stats_totals, query_time), true},
	{"pgsluice_xact_time_seconds_total", "Time spent in transactions.",
	 offsetof(struct stats_totals, xact_time), true},
	{"pgsluice_wait_time_seconds_total", "Time clients waited for a server connection.",
	 offsetof(struct stats_totals, wait_time), true},
};

static void render_db_counters(struct worker *w, struct obuf *ob)
{
	struct list_head *pos, *tmp;
	for (size_t k = 0; k < sizeof(db_counters) / sizeof(db_counters[0]); k++) {
		const struct db_counter *dc = &db_counters[k];
		put_family(ob, dc->name, "counter", dc->help);
		list_for_each_safe(pos, tmp, &w->databases)
		{
			struct database *db = list_entry(pos, struct database, node);
			struct metrics_db f;
			metrics_read_db(db, &f);
			uint64_t v = *(const uint64_t *)((const char *)&f.total + dc->offset);
			const char *labels[] = {"database", db->name};
			if (dc->usec)
				put_float_sample(ob, dc->name, labels, 1, (double)v / 1e6);
			else
				put_uint_sample(ob, dc->name, labels, 1, v);
		}
	}
}

static uint64_t db_paused(const struct database *db)
{
	return db->paused;
}

static uint64_t db_disabled(const struct database *db)
{
	return db->disabled;
}

static uint64_t db_fallbacks(const struct database *db)
{
	return db->fallbacks;
}

static uint64_t db_reads_refused(const struct database *db)
{
	return db->reads_failed;
}

/* Per-database states and routing counters that are not stats_totals fields. */
static const struct {
	const char *name, *type, *help;
	uint64_t (*value)(const struct database *db);
} db_states[] = {
	{"pgsluice_database_paused", "gauge", "1 while PAUSE holds new transactions.", db_paused},
	{"pgsluice_database_disabled", "gauge", "1 while DISABLE refuses new clients.", db_disabled},
	{"pgsluice_read_fallbacks_total", "counter",
	 "Reads sent to the primary because no replica could serve them.", db_fallbacks},
	{"pgsluice_reads_refused_total", "counter",
	 "Reads refused because no replica could serve them (replica_fallback = error).",
	 db_reads_refused},
};

static void render_db_states(struct worker *w, struct obuf *ob)
{
	struct list_head *pos, *tmp;
	for (size_t k = 0; k < sizeof(db_states) / sizeof(db_states[0]); k++) {
		put_family(ob, db_states[k].name, db_states[k].type, db_states[k].help);
		list_for_each_safe(pos, tmp, &w->databases)
		{
			struct database *db = list_entry(pos, struct database, node);
			const char *labels[] = {"database", db->name};
			put_uint_sample(ob, db_states[k].name, labels, 1, db_states[k].value(db));
		}
	}
}

/* A per-target figure. */
enum target_figure {
	TF_ROUTED,
	TF_RETRIES,
	TF_BANS,
	TF_BANNED,
	TF_LAG_SECONDS,
	TF_LAG_BYTES
};

struct target_family {
	const char *name;
	const char *type;
	const char *help;
	enum target_figure figure;
};

static const struct target_family target_families[] = {
	{"pgsluice_target_transactions_total", "counter", "Transactions routed to the server.",
	 TF_ROUTED},
	{"pgsluice_target_retries_total", "counter",
	 "Reads retried on the server after another one failed.", TF_RETRIES},
	{"pgsluice_target_bans_total", "counter", "Times the server was banned.", TF_BANS},
	{"pgsluice_target_banned", "gauge", "1 while the server is banned from routing.",
	 TF_BANNED},
	{"pgsluice_replica_lag_seconds", "gauge", "Replay lag of the replica at its last probe.",
	 TF_LAG_SECONDS},
	{"pgsluice_replica_lag_bytes", "gauge",
	 "WAL bytes the replica was behind at its last probe.", TF_LAG_BYTES},
};

static void render_targets(struct worker *w, struct obuf *ob)
{
	struct list_head *dpos, *dtmp, *pos, *tmp;
	char server[160];
	for (size_t k = 0; k < sizeof(target_families) / sizeof(target_families[0]); k++) {
		const struct target_family *tf = &target_families[k];
		put_family(ob, tf->name, tf->type, tf->help);
		list_for_each_safe(dpos, dtmp, &w->databases)
		{
			struct database *db = list_entry(dpos, struct database, node);
			list_for_each_safe(pos, tmp, &db->targets)
			{
				struct target *t = list_entry(pos, struct target, node);
				bool lag =
					tf->figure == TF_LAG_SECONDS || tf->figure == TF_LAG_BYTES;
				/* Lag is known only for replicas that answered a probe. */
				if (lag && (t->role != TARGET_REPLICA || !t->probed))
					continue;
				snprintf(server, sizeof(server), "%s:%d", t->host, t->port);
				const char *labels[] = {"database", db->name, "server",
							server,	    "role",   metrics_role_name(t)};
				switch (tf->figure) {
				case TF_ROUTED:
					put_uint_sample(ob, tf->name, labels, 3, t->routed);
					break;
				case TF_RETRIES:
					put_uint_sample(ob, tf->name, labels, 3, t->retries);
					break;
				case TF_BANS:
					put_uint_sample(ob, tf->name, labels, 3, t->bans);
					break;
				case TF_BANNED:
					put_uint_sample(ob, tf->name, labels, 3, t->banned);
					break;
				case TF_LAG_SECONDS:
					put_float_sample(ob, tf->name, labels, 3, t->lag_seconds);
					break;
				case TF_LAG_BYTES:
					put_uint_sample(ob, tf->name, labels, 3,
							t->lag_bytes > 0 ? (uint64_t)t->lag_bytes
									 : 0);
					break;
				}
			}
		}
	}
}

/* A per-pool gauge: an int field of struct metrics_pool. */
struct pool_gauge {
	const char *name;
	const char *help;
	size_t offset;
};

static const struct pool_gauge pool_gauges[] = {
	{"pgsluice_pool_clients_active", "Logged-in clients not waiting for a server (cl_active).",
	 offsetof(struct metrics_pool, cl_active)},
	{"pgsluice_pool_clients_waiting", "Clients waiting for a server (cl_waiting).",
	 offsetof(struct metrics_pool, cl_waiting)},
	{"pgsluice_pool_servers_active", "Servers linked to a client (sv_active).",
	 offsetof(struct metrics_pool, sv_active)},
	{"pgsluice_pool_servers_idle", "Servers ready in the pool (sv_idle).",
	 offsetof(struct metrics_pool, sv_idle)},
	{"pgsluice_pool_servers_tested", "Servers running server_reset_query (sv_tested).",
	 offsetof(struct metrics_pool, sv_tested)},
	{"pgsluice_pool_servers_login", "Servers connecting or logging in (sv_login).",
	 offsetof(struct metrics_pool, sv_login)},
	{"pgsluice_pool_size", "Servers the pool may open, without the reserve pool.",
	 offsetof(struct metrics_pool, pool_size)},
};

/* Writes one pool sample; figure -1 is maxwait in seconds. */
static void render_pool_sample(struct worker *w, struct obuf *ob, const struct pool *p,
			       const char *name, long offset)
{
	struct metrics_pool f;
	char server[160];
	metrics_read_pool(w, p, ev_now(w->loop), &f);
	snprintf(server, sizeof(server), "%s:%d", p->target->host, p->target->port);
	const char *labels[] = {"database", p->db->name, "user", p->user,
				"server",   server,	 "role", f.role};
	if (offset < 0)
		put_float_sample(ob, name, labels, 4, (double)f.maxwait_us / 1e6);
	else
		put_uint_sample(ob, name, labels, 4,
				(uint64_t) * (const int *)((const char *)&f + offset));
}

static void render_pools(struct worker *w, struct obuf *ob)
{
	struct list_head *dpos, *dtmp, *pos, *tmp;
	size_t n = sizeof(pool_gauges) / sizeof(pool_gauges[0]);
	for (size_t k = 0; k <= n; k++) {
		const char *name = k < n ? pool_gauges[k].name : "pgsluice_pool_maxwait_seconds";
		put_family(ob, name, "gauge",
			   k < n ? pool_gauges[k].help
				 : "How long the oldest waiting client has waited (maxwait).");
		list_for_each_safe(dpos, dtmp, &w->databases)
		{
			struct database *db = list_entry(dpos, struct database, node);
			list_for_each_safe(pos, tmp, &db->pools)
			{
				struct pool *p = list_entry(pos, struct pool, node);
				render_pool_sample(w, ob, p, name,
						   k < n ? (long)pool_gauges[k].offset : -1);
			}
		}
	}
}

/* A counter of struct batch_counts, per database and user. */
static const struct {
	const char *name;
	const char *type;
	const char *help;
	size_t offset;
} batch_families[] = {
	{"pgsluice_batch_batches_total", "counter", "Insert batches run (batches of SHOW BATCHES).",
	 offsetof(struct batch_counts, batches)},
	{"pgsluice_batch_rows_total", "counter", "Rows of the insert batches run (rows).",
	 offsetof(struct batch_counts, rows)},
	{"pgsluice_batch_fallbacks_total", "counter",
	 "Batches whose rows ran again one by one (fallbacks).",
	 offsetof(struct batch_counts, fallbacks)},
	{"pgsluice_batch_unknown_outcomes_total", "counter",
	 "Batches whose server was lost after COMMIT was sent (unknown_outcomes).",
	 offsetof(struct batch_counts, unknown)},
	{"pgsluice_batch_rows_waiting", "gauge", "Rows in batches not running yet (rows_waiting).",
	 offsetof(struct batch_counts, rows_waiting)},
};

/* Writes the batch_families[k] samples of every tally (k == n: the flush reasons). */
static void render_batch_family(struct worker *w, struct obuf *ob, size_t k, size_t n)
{
	static const char *const reasons[BATCH_FLUSH_N] = {"idle_server", "max_delay", "max_rows"};
	struct list_head *dpos, *dtmp, *pos, *tmp;
	list_for_each_safe(dpos, dtmp, &w->databases)
	{
		struct database *db = list_entry(dpos, struct database, node);
		list_for_each_safe(pos, tmp, &db->batch_tallies)
		{
			const struct batch_tally *t = list_entry(pos, struct batch_tally, node);
			const char *labels[] = {"database", db->name, "user",
						t->user,    "reason", NULL};
			if (k < n) {
				size_t off = batch_families[k].offset;
				const char *field = (const char *)&t->counts + off;
				put_uint_sample(ob, batch_families[k].name, labels, 2,
						*(const uint64_t *)field);
				continue;
			}
			for (int r = 0; r < BATCH_FLUSH_N; r++) {
				labels[5] = reasons[r];
				put_uint_sample(ob, "pgsluice_batch_flushes_total", labels, 3,
						t->counts.flushes[r]);
			}
		}
	}
}

static void render_batches(struct worker *w, struct obuf *ob)
{
	size_t n = sizeof(batch_families) / sizeof(batch_families[0]);
	for (size_t k = 0; k <= n; k++) {
		if (k == n)
			put_family(ob, "pgsluice_batch_flushes_total", "counter",
				   "Insert batches run, by why they started (flush_* columns).");
		else
			put_family(ob, batch_families[k].name, batch_families[k].type,
				   batch_families[k].help);
		render_batch_family(w, ob, k, n);
	}
}

/* Bucket bounds of the latency histograms, in µs (shown in seconds). */
static const uint64_t latency_bounds[] = {
	100,	250,	500,	1000,	 2500,	  5000,	   10000,    25000,    50000,
	100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};

#define N_BOUNDS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

static void render_histogram(struct obuf *ob, const char *name, const char *db,
			     const struct histogram *h)
{
	uint64_t counts[N_BOUNDS];
	char le[32], series[128];
	histogram_cumulative(h, latency_bounds, N_BOUNDS, counts);
	snprintf(series, sizeof(series), "%s_bucket", name);
	for (size_t i = 0; i <= N_BOUNDS; i++) {
		if (i < N_BOUNDS)
			snprintf(le, sizeof(le), "%g", (double)latency_bounds[i] / 1e6);
		else
			snprintf(le, sizeof(le), "+Inf");
		const char *labels[] = {"database", db, "le", le};
		put_uint_sample(ob, series, labels, 2,
				i < N_BOUNDS ? counts[i] : histogram_count(h));
	}
	const char *labels[] = {"database", db};
	snprintf(series, sizeof(series), "%s_sum", name);
	put_float_sample(ob, series, labels, 1, (double)histogram_sum(h) / 1e6);
	snprintf(series, sizeof(series), "%s_count", name);
	put_uint_sample(ob, series, labels, 1, histogram_count(h));
}

static void render_latency(struct worker *w, struct obuf *ob)
{
	static const struct {
		const char *name;
		const char *help;
		size_t offset;
	} families[] = {
		{"pgsluice_query_duration_seconds", "Request latency since start.",
		 offsetof(struct stats_latency, query)},
		{"pgsluice_xact_duration_seconds", "Transaction latency since start.",
		 offsetof(struct stats_latency, xact)},
		{"pgsluice_wait_duration_seconds", "Time clients waited for a server, since start.",
		 offsetof(struct stats_latency, wait)},
	};
	struct list_head *pos, *tmp;
	for (size_t k = 0; k < sizeof(families) / sizeof(families[0]); k++) {
		put_family(ob, families[k].name, "histogram", families[k].help);
		list_for_each_safe(pos, tmp, &w->databases)
		{
			struct database *db = list_entry(pos, struct database, node);
			const struct histogram *h =
				(const struct histogram *)((const char *)&db->stats.since_start +
							   families[k].offset);
			render_histogram(ob, families[k].name, db->name, h);
		}
	}
}

static void render_process(struct worker *w, struct obuf *ob)
{
	const char *version[] = {"version", PACKAGE_VERSION};
	put_family(ob, "pgsluice_build_info", "gauge", "Always 1; the version is a label.");
	put_uint_sample(ob, "pgsluice_build_info", version, 1, 1);
	put_family(ob, "pgsluice_uptime_seconds", "gauge", "Seconds since pgsluice started.");
	put_float_sample(ob, "pgsluice_uptime_seconds", NULL, 0, ev_now(w->loop) - w->started_at);
	put_family(ob, "pgsluice_clients", "gauge",
		   "Client connections open, in every state, admin console included.");
	put_uint_sample(ob, "pgsluice_clients", NULL, 0, (uint64_t)w->n_clients);
	put_family(ob, "pgsluice_servers", "gauge", "Server connections open.");
	put_uint_sample(ob, "pgsluice_servers", NULL, 0, (uint64_t)w->n_servers);
	put_family(ob, "pgsluice_memory_bytes", "gauge", "Resident memory of the process.");
	put_uint_sample(ob, "pgsluice_memory_bytes", NULL, 0, metrics_rss_bytes());
}

/* What SHOW QUERIES shows, for the query_stats_metrics_top fingerprints with the most time. */
static void render_top_queries(struct worker *w, struct obuf *ob)
{
	size_t n = (size_t)w->cfg->query_stats_metrics_top;
	const struct querystats_entry **top = n > 0 ? malloc(n * sizeof(*top)) : NULL;
	n = top != NULL ? querylog_top(w, top, n) : 0;
	static const struct {
		const char *name, *type, *help;
	} families[] = {
		{"pgsluice_query_calls_total", "counter", "Statements run, per fingerprint."},
		{"pgsluice_query_seconds_total", "counter", "Time statements took, per fingerprint."},
		{"pgsluice_query_rows_total", "counter", "Rows statements returned or changed."},
		{"pgsluice_query_errors_total", "counter", "Statements that failed."},
		{"pgsluice_query_p95_seconds", "gauge", "95th percentile statement time."},
	};
	for (size_t k = 0; n > 0 && k < sizeof(families) / sizeof(families[0]); k++) {
		put_family(ob, families[k].name, families[k].type, families[k].help);
		for (size_t i = 0; i < n; i++) {
			const struct querystats_entry *e = top[i];
			char id[17], query[METRICS_QUERY_LABEL_MAX + 1];
			snprintf(id, sizeof(id), "%016llx", (unsigned long long)e->fingerprint);
			size_t len = strlen(e->normalized);
			if (len > METRICS_QUERY_LABEL_MAX) {
				len = METRICS_QUERY_LABEL_MAX;
				while (len > 0 && ((unsigned char)e->normalized[len] & 0xC0) == 0x80)
					len--;
			}
			memcpy(query, e->normalized, len);
			query[len] = '\0';
			const char *labels[] = {"fingerprint", id, "query", query};
			const char *name = families[k].name;
			switch (k) {
			case 0:
				put_uint_sample(ob, name, labels, 2, e->calls);
				break;
			case 1:
				put_float_sample(ob, name, labels, 2, (double)e->total_usec / 1e6);
				break;
			case 2:
				put_uint_sample(ob, name, labels, 2, e->rows);
				break;
			case 3:
				put_uint_sample(ob, name, labels, 2, e->errors);
				break;
			default:
				put_float_sample(ob, name, labels, 2,
						 (double)histogram_percentile(&e->latency, 0.95) / 1e6);
				break;
			}
		}
	}
	free(top);
}

bool metrics_render(struct worker *w, struct obuf *ob)
{
	render_process(w, ob);
	render_db_counters(w, ob);
	render_db_states(w, ob);
	render_latency(w, ob);
	render_pools(w, ob);
	render_batches(w, ob);
	render_targets(w, ob);
	render_top_queries(w, ob);
	return !ob->failed;
}

/* ----- HTTP ----- */

/* A metrics connection gets this long to send its request and read the answer. */
#define METRICS_DEADLINE 10.0
/* Largest exposition served; far above what thousands of pools produce. */
#define METRICS_BODY_LIMIT (64u << 20)

struct metrics_listener {
	struct worker *w;
	int fd;
	ev_io io;
	bool accepting;
	struct list_head conns;
	int n_conns;
	char name[96];
};

struct metrics_conn {
	struct list_head node;
	struct metrics_listener *ml;
	int fd;
	ev_io io;
	ev_timer deadline;
	size_t req_len;
	char req[METRICS_REQUEST_MAX];
	char head[256];
	size_t head_len, head_off;
	struct obuf body;
};

static bool line_is(const char *p, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(p, word, len) == 0;
}

/* Offset just past the blank line that ends the headers, or 0 when not there yet. */
static size_t headers_end(const char *buf, size_t len, size_t from)
{
	for (size_t i = from; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

int metrics_check_request(const char *buf, size_t len)
{
	const char *eol = memchr(buf, '\n', len);
	if (eol == NULL)
		return len >= METRICS_REQUEST_MAX ? 431 : 0;
	size_t line = (size_t)(eol - buf);
	if (line > 0 && buf[line - 1] == '\r')
		line--;
	const char *sp1 = memchr(buf, ' ', line);
	if (sp1 == NULL || sp1 == buf)
		return 400;
	for (const char *m = buf; m < sp1; m++)
		if (*m < 'A' || *m > 'Z')
			return 400;
	const char *target = sp1 + 1;
	const char *sp2 = memchr(target, ' ', line - (size_t)(target - buf));
	if (sp2 == NULL || sp2 == target || *target != '/')
		return 400;
	for (const char *t = target; t < sp2; t++)
		if ((unsigned char)*t <= ' ' || *t == 0x7f)
			return 400;
	const char *version = sp2 + 1;
	size_t vlen = line - (size_t)(version - buf);
	if (!line_is(version, vlen, "HTTP/1.0") && !line_is(version, vlen, "HTTP/1.1"))
		return 400;
	if (headers_end(buf, len, line) == 0)
		return len >= METRICS_REQUEST_MAX ? 431 : 0;
	const char *q = memchr(target, '?', (size_t)(sp2 - target));
	size_t path_len = (size_t)((q != NULL ? q : sp2) - target);
	bool health = line_is(target, path_len, "/health");
	if (!health && !line_is(target, path_len, "/metrics"))
		return 404;
	if (!line_is(buf, (size_t)(sp1 - buf), "GET"))
		return 405;
	return health ? METRICS_HEALTH_REQUEST : 200;
}

static void metrics_conn_close(struct metrics_conn *mc)
{
	struct metrics_listener *ml = mc->ml;
	struct ev_loop *loop = ml->w->loop;
	ev_io_stop(loop, &mc->io);
	ev_timer_stop(loop, &mc->deadline);
	close(mc->fd);
	obuf_free(&mc->body);
	list_del(&mc->node);
	free(mc);
	ml->n_conns--;
	if (!ml->accepting && ml->fd >= 0) {
		ml->accepting = true;
		ev_io_start(loop, &ml->io);
	}
}

static const char *status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 404:
		return "Not Found";
	case 503:
		return "Service Unavailable";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	default:
		return "Bad Request";
	}
}

/* Writes what is left of the answer; closes mc when done or on error. */
static void metrics_conn_write(struct metrics_conn *mc)
{
	for (;;) {
		struct iovec iov[2];
		int n = 0;
		if (mc->head_off < mc->head_len)
			iov[n++] = (struct iovec){mc->head + mc->head_off,
						  mc->head_len - mc->head_off};
		if (obuf_pending(&mc->body) > 0)
			iov[n++] = (struct iovec){mc->body.data + mc->body.off,
						  obuf_pending(&mc->body)};
		if (n == 0) {
			metrics_conn_close(mc);
			return;
		}
		ssize_t sent = writev(mc->fd, iov, n);
		if (sent < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			metrics_conn_close(mc);
			return;
		}
		size_t left = (size_t)sent;
		size_t head_part = mc->head_len - mc->head_off;
		if (left < head_part) {
			mc->head_off += left;
			continue;
		}
		mc->head_off = mc->head_len;
		mc->body.off += left - head_part;
	}
}

static void metrics_conn_on_io(struct ev_loop *loop, ev_io *io, int revents);

/* Builds the answer for status and starts writing it. */
static void metrics_conn_respond(struct metrics_conn *mc, int status)
{
	struct worker *w = mc->ml->w;
	const char *type = "text/plain; charset=utf-8";
	if (status == METRICS_HEALTH_REQUEST) {
		/* Load balancers stop sending clients to an instance that drains. */
		status = w->shutting_down ? 503 : 200;
		const char *text = w->shutting_down ? "shutting down\n" : "ok\n";
		obuf_put(&mc->body, text, strlen(text));
	} else if (status == 200) {
		if (metrics_render(w, &mc->body)) {
			type = "text/plain; version=0.0.4";
		} else {
			log_warning("metrics: the exposition exceeds %u bytes", METRICS_BODY_LIMIT);
			status = 500;
		}
	}
	if (status != 200 && status != 503) {
		obuf_reset(&mc->body);
		obuf_put(&mc->body, status_text(status), strlen(status_text(status)));
		obuf_put_u8(&mc->body, '\n');
	}
	int n = snprintf(mc->head, sizeof(mc->head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
			 "Connection: close\r\n\r\n",
			 status, status_text(status), type, obuf_pending(&mc->body),
			 status == 405 ? "Allow: GET\r\n" : "");
	mc->head_len = (size_t)n;
	mc->head_off = 0;
	ev_io_stop(w->loop, &mc->io);
	ev_io_init(&mc->io, metrics_conn_on_io, mc->fd, EV_WRITE);
	mc->io.data = mc;
	ev_io_start(w->loop, &mc->io);
	metrics_conn_write(mc);
}

static void metrics_conn_on_io(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	struct metrics_conn *mc = io->data;
	if (revents & EV_WRITE) {
		metrics_conn_write(mc);
		return;
	}
	ssize_t n = recv(mc->fd, mc->req + mc->req_len, sizeof(mc->req) - mc->req_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		metrics_conn_close(mc);
		return;
	}
	mc->req_len += (size_t)n;
	int status = metrics_check_request(mc->req, mc->req_len);
	if (status != 0)
		metrics_conn_respond(mc, status);
}

static void metrics_conn_on_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	metrics_conn_close(t->data);
}

static void metrics_on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)revents;
	struct metrics_listener *ml = io->data;
	while (ml->n_conns < METRICS_MAX_CONNS) {
		int fd = accept4(ml->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warning("metrics: accept on %s: %s", ml->name, strerror(errno));
			return;
		}
		struct metrics_conn *mc = calloc(1, sizeof(*mc));
		if (mc == NULL) {
			close(fd);
			return;
		}
		mc->ml = ml;
		mc->fd = fd;
		obuf_init(&mc->body, METRICS_BODY_LIMIT);
		ev_io_init(&mc->io, metrics_conn_on_io, fd, EV_READ);
		mc->io.data = mc;
		ev_io_start(loop, &mc->io);
		ev_timer_init(&mc->deadline, metrics_conn_on_deadline, METRICS_DEADLINE, 0);
		mc->deadline.data = mc;
		ev_timer_start(loop, &mc->deadline);
		list_add_tail(&ml->conns, &mc->node);
		ml->n_conns++;
	}
	/* Full: the kernel's backlog holds the rest until a connection ends. */
	ev_io_stop(loop, &ml->io);
	ml->accepting = false;
}

/* Splits "host:port" ("[v6]:port"; host "*" or empty = every address). */
static bool metrics_split_addr(const char *text, char *host, size_t host_cap, char *port,
			       size_t port_cap)
{
	const char *colon = strrchr(text, ':');
	if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= port_cap)
		return false;
	const char *h = text;
	size_t hlen = (size_t)(colon - text);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen >= host_cap)
		return false;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	snprintf(port, port_cap, "%s", colon + 1);
	for (const char *p = port; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

bool metrics_start(struct worker *w)
{
	const char *spec = w->cfg->metrics_listen;
	if (spec == NULL || spec[0] == '\0')
		return true;
	char host[128], port[16];
	if (!metrics_split_addr(spec, host, sizeof(host), port, sizeof(port))) {
		log_error("metrics_listen \"%s\": expected host:port", spec);
		return false;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	bool any = host[0] == '\0' || strcmp(host, "*") == 0;
	int rc = getaddrinfo(any ? NULL : host, port, &hints, &res);
	if (rc != 0) {
		log_error("metrics_listen \"%s\": %s", spec, gai_strerror(rc));
		return false;
	}
	int fd = -1, err = 0;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* A process taking over with so_reuseport binds while the old one drains. */
		if (w->cfg->so_reuseport)
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		    listen(fd, METRICS_MAX_CONNS) < 0) {
			err = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		log_error("metrics_listen \"%s\": could not listen: %s", spec, strerror(err));
		return false;
	}
	struct metrics_listener *ml = calloc(1, sizeof(*ml));
	if (ml == NULL) {
		close(fd);
		return false;
	}
	ml->w = w;
	ml->fd = fd;
	list_init(&ml->conns);
	snprintf(ml->name, sizeof(ml->name), "%s", spec);
	ev_io_init(&ml->io, metrics_on_accept, fd, EV_READ);
	ml->io.data = ml;
	ev_io_start(w->loop, &ml->io);
	ml->accepting = true;
	w->metrics = ml;
	log_info("metrics on http://%s/metrics", spec);
	return true;
}

void metrics_stop(struct worker *w)
{
	struct metrics_listener *ml = w->metrics;
	if (ml == NULL)
		return;
	ev_io_stop(w->loop, &ml->io);
	close(ml->fd);
	ml->fd = -1;
	while (!list_empty(&ml->conns))
		metrics_conn_close(list_entry(list_first(&ml->conns), struct metrics_conn, node));
	free(ml);
	w->metrics = NULL;
}
