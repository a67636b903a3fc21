/*
 * querylog.c - statement statistics, the slow-query log and plan capture
 * (see querylog.h): the glue between the proxy path and querystats.c,
 * slowlog.c and explain.c.
 *
 * The proxy path calls in for the messages that start and end statements;
 * nothing here blocks or allocates per statement except for a slow one.
 */
#include "querylog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "explain.h"
#include "inflight.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "prepared.h"
#include "pstmt.h"
#include "proto.h"
#include "querystats.h"
#include "resultset.h"
#include "slowlog.h"
#include "userlist.h"

/* Longest normalized text a fingerprint's statistics keep. */
#define NORMALIZED_MAX 1024

struct querylog {
	struct slowlog *slow;
	struct querystats *stats;
	struct explainer *explainer;
	char *log_path; /* what slow was opened with, or NULL */
};

/* A slow record waiting for its plan. */
struct plan_wait {
	struct querylog *ql;
	struct slow_record *rec;
};

static void querylog_explain_settings(const struct config *cfg, struct explain_settings *s)
{
	s->interval = (double)cfg->slow_query_explain_interval / 1e6;
	s->timeout = (double)cfg->slow_query_explain_timeout / 1e6;
	s->queue_max = (size_t)cfg->slow_query_explain_queue;
	s->max_connections = cfg->slow_query_explain_connections;
	s->analyze_statement_timeout = s->timeout;
	auxconn_tls_from_config(cfg, &s->tls);
}

static bool same_path(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool querylog_configure(struct worker *w)
{
	const struct config *cfg = w->cfg;
	struct explain_settings es;
	querylog_explain_settings(cfg, &es);
	struct querylog *ql = w->querylog;
	if (ql == NULL) {
		ql = calloc(1, sizeof(*ql));
		if (ql == NULL)
			return false;
		ql->slow = slowlog_create((size_t)cfg->slow_query_ring);
		ql->stats = querystats_create((size_t)cfg->query_stats_max);
		ql->explainer = explainer_create(w->loop, &es);
		w->querylog = ql;
		if (ql->slow == NULL || ql->stats == NULL || ql->explainer == NULL)
			return false;
	} else {
		slowlog_set_ring_size(ql->slow, (size_t)cfg->slow_query_ring);
		querystats_set_max(ql->stats, (size_t)cfg->query_stats_max);
		if (!explainer_configure(ql->explainer, &es))
			return false;
	}
	if (!same_path(ql->log_path, cfg->slow_query_log)) {
		free(ql->log_path);
		ql->log_path = cfg->slow_query_log != NULL ? strdup(cfg->slow_query_log) : NULL;
		slowlog_open(ql->slow, cfg->slow_query_log);
	}
	return true;
}

void querylog_reopen(struct worker *w)
{
	if (w->querylog != NULL && w->querylog->log_path != NULL)
		slowlog_reopen(w->querylog->slow);
}

void querylog_free(struct worker *w)
{
	struct querylog *ql = w->querylog;
	if (ql == NULL)
		return;
	/* Captures still running end now: their records reach the log first. */
	if (ql->explainer != NULL)
		explainer_free(ql->explainer);
	if (ql->slow != NULL)
		slowlog_free(ql->slow);
	if (ql->stats != NULL)
		querystats_free(ql->stats);
	free(ql->log_path);
	free(ql);
	w->querylog = NULL;
}

/* The slow threshold of db in µs; 0 = off. */
static int64_t querylog_threshold(const struct worker *w, const struct database *db)
{
	return db->slow_query_threshold >= 0 ? db->slow_query_threshold
					     : w->cfg->slow_query_threshold;
}

static bool querylog_active_for(const struct worker *w, const struct database *db)
{
	return w->querylog != NULL &&
	       (w->cfg->query_stats_max > 0 || querylog_threshold(w, db) > 0);
}

bool querylog_active(const struct worker *w)
{
	return w->querylog != NULL &&
	       (w->cfg->query_stats_max > 0 || w->cfg->slow_query_threshold > 0);
}

/* ----- the client side: what starts ----- */

static struct inflight *server_inflight(struct server *s)
{
	if (s->inflight == NULL) {
		s->inflight = malloc(sizeof(*s->inflight));
		if (s->inflight != NULL)
			inflight_init(s->inflight);
	}
	return s->inflight;
}

void querylog_on_client_message(struct worker *w, struct client *c, struct server *s,
				const uint8_t *msg, uint32_t total, uint32_t avail)
{
	if (!querylog_active_for(w, c->pool->db))
		return;
	bool whole = avail == total;
	const uint8_t *body = msg + PROTO_HEADER_LEN;
	size_t len = total - PROTO_HEADER_LEN;
	ev_tstamp now = ev_now(w->loop);
	struct prepared_set *ps;
	struct inflight *q;
	switch (msg[0]) {
	/* Under transaction pooling pstmt.c records Parse and Close itself. */
	case 'P':
		if (whole && !c->rename_statements && (ps = pstmt_client_set(w, c)) != NULL)
			prepared_on_parse(ps, body, len, NULL);
		return;
	case 'B':
		if (whole && (ps = pstmt_client_set(w, c)) != NULL)
			prepared_on_bind(ps, body, len);
		return;
	case 'C':
		if (whole && !c->rename_statements && c->prepared != NULL)
			prepared_on_close(c->prepared, body, len);
		return;
	case 'Q':
		if ((q = server_inflight(s)) == NULL)
			return;
		if (whole) {
			inflight_push_query(q, (const char *)body, strnlen((const char *)body, len), now);
		} else {
			inflight_push_execute(q, NULL, NULL, now);
			inflight_push_marker(q, now);
		}
		return;
	case 'E': {
		if ((q = server_inflight(s)) == NULL)
			return;
		const struct prepared_bind *bind = NULL;
		const struct prepared_stmt *st = NULL;
		if (whole && c->prepared != NULL && memchr(body, 0, len) != NULL)
			st = prepared_executed(c->prepared, (const char *)body, &bind);
		inflight_push_execute(q, st, bind, now);
		return;
	}
	case 'S':
	case 'F':
		if ((q = server_inflight(s)) != NULL)
			inflight_push_marker(q, now);
		return;
	default:
		return;
	}
}

void querylog_on_replay(struct worker *w, struct client *c, struct server *s, const uint8_t *data,
			size_t len)
{
	size_t off = 0;
	uint32_t total;
	for (const uint8_t *msg; (msg = proto_next_message(data, len, &off, &total)) != NULL;)
		querylog_on_client_message(w, c, s, msg, total, total);
}

void querylog_server_reset(struct server *s)
{
	if (s->inflight != NULL)
		inflight_clear(s->inflight);
}

void querylog_client_gone(struct client *c)
{
	if (c->prepared != NULL) {
		prepared_free(c->prepared);
		free(c->prepared);
		c->prepared = NULL;
	}
}

/* ----- the server side: what ends ----- */

/* The row count of a CommandComplete tag ("SELECT 5", "INSERT 0 1"), or UINT64_MAX. */
static uint64_t tag_rows(const uint8_t *body, size_t len)
{
	size_t n = strnlen((const char *)body, len);
	size_t i = n;
	while (i > 0 && body[i - 1] >= '0' && body[i - 1] <= '9')
		i--;
	if (i == n || i == 0 || body[i - 1] != ' ')
		return UINT64_MAX;
	uint64_t v = 0;
	for (; i < n; i++)
		v = v * 10 + (uint64_t)(body[i] - '0');
	return v;
}

static void querylog_statement_done(struct worker *w, struct server *s,
				    const struct inflight_done *d, const char *sqlstate);

void querylog_on_server_message(struct worker *w, struct server *s, const uint8_t *msg,
				uint32_t total)
{
	struct inflight *q = s->inflight;
	if (q == NULL || s->client == NULL)
		return;
	const uint8_t *body = msg + PROTO_HEADER_LEN;
	size_t len = total - PROTO_HEADER_LEN;
	ev_tstamp now = ev_now(w->loop);
	struct inflight_done d;
	switch (msg[0]) {
	case 'D':
		inflight_on_row(q);
		break;
	case 'C':
		if (inflight_finish(q, now, tag_rows(body, len), &d))
			querylog_statement_done(w, s, &d, NULL);
		break;
	case 'I':
	case 's':
		if (inflight_finish(q, now, UINT64_MAX, &d))
			querylog_statement_done(w, s, &d, NULL);
		break;
	case 'E': {
		struct proto_error e;
		const char *state = "XX000";
		if (proto_parse_error(body, len, &e) && e.sqlstate != NULL)
			state = e.sqlstate;
		if (inflight_finish(q, now, 0, &d))
			querylog_statement_done(w, s, &d, state);
		inflight_skip_request(q);
		break;
	}
	case 'Z':
		inflight_on_ready(q, s->expect_rfq == 0);
		break;
	default:
		break;
	}
}

/* ----- slow records ----- */

static void copy_field(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* The bound values as a JSON array text, or NULL. */
static char *params_json(const struct inflight_done *d)
{
	const struct inflight_entry *e = d->entry;
	if (d->params == NULL)
		return NULL;
	struct obuf ob;
	obuf_init(&ob, 2 * PREPARED_PARAMS_MAX + 16);
	bool ok = obuf_put_u8(&ob, '[');
	for (uint16_t i = 0; ok && i < e->n_params; i++) {
		const uint8_t *v;
		uint32_t n;
		if (!prepared_value(d->params, e->params_len, i, &v, &n)) {
			ok = false;
			break;
		}
		if (i > 0)
			ok = obuf_put_u8(&ob, ',');
		ok = ok && (v == NULL ? json_put_null(&ob) : json_put_string(&ob, (const char *)v, n));
	}
	ok = ok && obuf_put(&ob, "]", 2); /* with the NUL */
	char *out = ok ? strdup((const char *)ob.data) : NULL;
	obuf_free(&ob);
	return out;
}

static struct slow_record *querylog_make_record(struct worker *w, struct server *s,
						const struct inflight_done *d, const char *sqlstate,
						uint64_t fingerprint, const char *normalized)
{
	struct client *c = s->client;
	struct database *db = s->pool->db;
	struct slow_record *rec = calloc(1, sizeof(*rec));
	if (rec == NULL)
		return NULL;
	rec->time = d->end;
	copy_field(rec->database, sizeof(rec->database), db->name);
	copy_field(rec->user, sizeof(rec->user), c->user);
	copy_field(rec->application_name, sizeof(rec->application_name),
		   params_get(&c->params, "application_name"));
	copy_field(rec->client_addr, sizeof(rec->client_addr), c->addr);
	snprintf(rec->server, sizeof(rec->server), "%s:%d", s->pool->target->host,
		 s->pool->target->port);
	rec->role = metrics_role_name(s->pool->target);
	rec->duration_ms = (d->end - d->start) * 1e3;
	rec->rows = d->rows;
	copy_field(rec->sqlstate, sizeof(rec->sqlstate), sqlstate);
	rec->fingerprint = fingerprint;
	rec->normalized = strdup(normalized);
	bool with_values = w->cfg->slow_query_log_parameters;
	if (d->text == NULL) {
		rec->text = strdup("");
	} else if (with_values) {
		rec->text = strndup(d->text, d->text_len);
	} else {
		rec->text = malloc(d->text_len + 1);
		if (rec->text != NULL)
			classify_redact(d->text, d->text_len, rec->text, d->text_len + 1);
	}
	if (with_values)
		rec->parameters = params_json(d);
	if (rec->normalized == NULL || rec->text == NULL) {
		slowlog_record_free(rec);
		return NULL;
	}
	return rec;
}

static void querylog_plan_done(void *arg, char *plan, const char *skipped)
{
	struct plan_wait *pw = arg;
	pw->rec->plan = plan;
	if (plan == NULL)
		copy_field(pw->rec->plan_skipped, sizeof(pw->rec->plan_skipped), skipped);
	slowlog_emit(pw->ql->slow, pw->rec);
	free(pw);
}

/* Statements EXPLAIN takes. */
static bool kind_explainable(enum classify_kind k)
{
	return k == CLASSIFY_SELECT || k == CLASSIFY_INSERT || k == CLASSIFY_UPDATE ||
	       k == CLASSIFY_DELETE || k == CLASSIFY_MERGE || k == CLASSIFY_WITH ||
	       k == CLASSIFY_VALUES || k == CLASSIFY_TABLE;
}

/* Why d cannot be explained, or NULL; *analyze says whether ANALYZE may run. */
static const char *querylog_unexplainable(struct worker *w, const struct inflight_done *d,
					  const char *sqlstate, bool *analyze)
{
	if (sqlstate != NULL)
		return "the statement failed";
	if (d->text == NULL)
		return "statement text unknown";
	struct classify_result r;
	classify_statement(d->text, d->text_len, w->classify_opts, &r);
	if (r.statement_count != 1 || !kind_explainable(r.kind))
		return "not a statement EXPLAIN takes";
	const struct inflight_entry *e = d->entry;
	if (e->params_binary)
		return "parameters in binary format";
	if (e->n_params > 0 && d->params == NULL)
		return "parameters too large to keep";
	*analyze = w->cfg->slow_query_explain == EXPLAIN_ANALYZE && r.read_only;
	return NULL;
}

/* Asks for d's plan; the record is written once it is in (or given up). */
static void querylog_capture(struct worker *w, struct server *s, const struct inflight_done *d,
			     const char *sqlstate, struct slow_record *rec)
{
	struct querylog *ql = w->querylog;
	bool analyze = false;
	const char *why = w->cfg->slow_query_explain == EXPLAIN_OFF
				  ? NULL
				  : querylog_unexplainable(w, d, sqlstate, &analyze);
	struct plan_wait *pw = malloc(sizeof(*pw));
	if (w->cfg->slow_query_explain == EXPLAIN_OFF || why != NULL || pw == NULL) {
		copy_field(rec->plan_skipped, sizeof(rec->plan_skipped),
			   why != NULL ? why : pw == NULL ? "out of memory" : NULL);
		free(pw);
		slowlog_emit(ql->slow, rec);
		return;
	}
	const struct inflight_entry *e = d->entry;
	struct client *c = s->client;
	struct database *db = s->pool->db;
	const char *user = db->login_user != NULL ? db->login_user : c->user;
	const char *password = db->login_password != NULL ? db->login_password
							  : userlist_plaintext(w->users, user);
	/* Values as C strings: text-format values hold no NUL. */
	const char **values = NULL;
	char *strings = NULL;
	uint32_t *types = NULL;
	if (e->n_params > 0) {
		values = calloc(e->n_params, sizeof(*values));
		strings = malloc(e->params_len + e->n_params);
		size_t at = 0;
		for (uint16_t i = 0; values != NULL && strings != NULL && i < e->n_params; i++) {
			const uint8_t *v;
			uint32_t n;
			if (!prepared_value(d->params, e->params_len, i, &v, &n) || v == NULL)
				continue;
			memcpy(strings + at, v, n);
			strings[at + n] = '\0';
			values[i] = strings + at;
			at += n + 1;
		}
	}
	/* One type per value: those the Parse left out are unspecified (0). */
	if (e->n_params > 0 && (types = calloc(e->n_params, sizeof(*types))) != NULL && d->types != NULL)
		memcpy(types, d->types, 4u * (e->n_types < e->n_params ? e->n_types : e->n_params));
	if (e->n_params > 0 && (values == NULL || strings == NULL || types == NULL)) {
		copy_field(rec->plan_skipped, sizeof(rec->plan_skipped), "out of memory");
		slowlog_emit(ql->slow, rec);
		free(pw);
	} else {
		pw->ql = ql;
		pw->rec = rec;
		struct explain_request req = {
			.fingerprint = rec->fingerprint,
			.login = {s->pool->target->host, s->pool->target->port, db->dbname, user,
				  password, params_get(&c->params, "search_path")},
			.sql = d->text,
			.sql_len = d->text_len,
			.n_params = e->n_params,
			.param_values = values,
			.param_types = types,
			.analyze = analyze,
			.done = querylog_plan_done,
			.arg = pw,
		};
		explain_submit(ql->explainer, &req);
	}
	free(values);
	free(strings);
	free(types);
}

/*
 * Counts a statement (text NULL: unknown) under its fingerprint in SHOW QUERIES;
 * returns the fingerprint, and its normalized text in norm (NORMALIZED_MAX bytes).
 */
static uint64_t querylog_count(struct querylog *ql, const char *text, size_t text_len,
			       uint64_t usec, uint64_t rows, bool failed, char *norm)
{
	size_t norm_len = 0;
	uint64_t fp = 0;
	if (text != NULL) {
		fp = classify_fingerprint(text, text_len, norm, NORMALIZED_MAX, &norm_len);
		if (norm_len >= NORMALIZED_MAX)
			norm_len = strlen(norm);
	} else {
		norm_len = (size_t)snprintf(norm, NORMALIZED_MAX, "(statement text unknown)");
	}
	querystats_record(ql->stats, fp, norm, norm_len, usec, rows, failed);
	return fp;
}

void querylog_batched_row(struct worker *w, const char *sql, size_t sql_len, uint64_t usec)
{
	if (w->querylog == NULL || w->cfg->query_stats_max <= 0)
		return;
	char norm[NORMALIZED_MAX];
	querylog_count(w->querylog, sql, sql_len, usec, 1, false, norm);
}

static void querylog_statement_done(struct worker *w, struct server *s,
				    const struct inflight_done *d, const char *sqlstate)
{
	double seconds = d->end > d->start ? d->end - d->start : 0;
	uint64_t usec = (uint64_t)(seconds * 1e6);
	char norm[NORMALIZED_MAX];
	uint64_t fp = querylog_count(w->querylog, d->text, d->text_len, usec, d->rows,
				     sqlstate != NULL, norm);
	int64_t threshold = querylog_threshold(w, s->pool->db);
	if (threshold <= 0 || (int64_t)usec < threshold)
		return;
	struct slow_record *rec = querylog_make_record(w, s, d, sqlstate, fp, norm);
	if (rec == NULL) {
		log_warning("slow statement of %.0f ms not logged: out of memory", seconds * 1e3);
		return;
	}
	querylog_capture(w, s, d, sqlstate, rec);
}

/* ----- admin console ----- */

void querylog_show_slow(struct worker *w, struct obuf *ob)
{
	static const struct resultset_column cols[] = {
		{"time", RESULTSET_TIMESTAMPTZ},  {"database", RESULTSET_TEXT},
		{"user", RESULTSET_TEXT},	  {"application_name", RESULTSET_TEXT},
		{"client", RESULTSET_TEXT},	  {"server", RESULTSET_TEXT},
		{"role", RESULTSET_TEXT},	  {"duration_ms", RESULTSET_FLOAT8},
		{"rows", RESULTSET_INT8},	  {"sqlstate", RESULTSET_TEXT},
		{"fingerprint", RESULTSET_TEXT},  {"query", RESULTSET_TEXT},
		{"plan_skipped", RESULTSET_TEXT}, {"plan", RESULTSET_TEXT},
	};
	struct resultset rs;
	resultset_begin(&rs, ob, cols, sizeof(cols) / sizeof(cols[0]));
	struct slowlog *sl = w->querylog != NULL ? w->querylog->slow : NULL;
	size_t n = sl != NULL ? slowlog_count(sl) : 0;
	for (size_t i = 0; i < n; i++) {
		const struct slow_record *r = slowlog_get(sl, i);
		resultset_row_begin(&rs);
		resultset_put_time(&rs, r->time);
		resultset_put_text(&rs, r->database);
		resultset_put_text(&rs, r->user);
		resultset_put_text(&rs, r->application_name);
		resultset_put_text(&rs, r->client_addr);
		resultset_put_text(&rs, r->server);
		resultset_put_text(&rs, r->role);
		resultset_put_float(&rs, r->duration_ms);
		resultset_put_uint(&rs, r->rows);
		resultset_put_text(&rs, r->sqlstate[0] != '\0' ? r->sqlstate : NULL);
		resultset_put_textf(&rs, "%016llx", (unsigned long long)r->fingerprint);
		resultset_put_text(&rs, r->text);
		resultset_put_text(&rs, r->plan_skipped[0] != '\0' ? r->plan_skipped : NULL);
		resultset_put_text(&rs, r->plan);
		resultset_row_end(&rs);
	}
	resultset_end(&rs, "SHOW");
}

size_t querylog_top(struct worker *w, const struct querystats_entry **out, size_t n)
{
	struct querystats *qs = w->querylog != NULL ? w->querylog->stats : NULL;
	return qs != NULL && n > 0 ? querystats_top(qs, out, n) : 0;
}

void querylog_show_queries(struct worker *w, struct obuf *ob)
{
	static const struct resultset_column cols[] = {
		{"fingerprint", RESULTSET_TEXT}, {"calls", RESULTSET_INT8},
		{"total_ms", RESULTSET_FLOAT8},	 {"mean_ms", RESULTSET_FLOAT8},
		{"max_ms", RESULTSET_FLOAT8},	 {"p95_ms", RESULTSET_FLOAT8},
		{"rows", RESULTSET_INT8},	 {"errors", RESULTSET_INT8},
		{"query", RESULTSET_TEXT},
	};
	struct resultset rs;
	resultset_begin(&rs, ob, cols, sizeof(cols) / sizeof(cols[0]));
	size_t n = w->querylog != NULL ? querystats_count(w->querylog->stats) : 0;
	const struct querystats_entry **top = n > 0 ? malloc(n * sizeof(*top)) : NULL;
	n = top != NULL ? querylog_top(w, top, n) : 0;
	for (size_t i = 0; i < n; i++) {
		const struct querystats_entry *e = top[i];
		resultset_row_begin(&rs);
		resultset_put_textf(&rs, "%016llx", (unsigned long long)e->fingerprint);
		resultset_put_uint(&rs, e->calls);
		resultset_put_float(&rs, (double)e->total_usec / 1e3);
		resultset_put_float(&rs, (double)e->total_usec / 1e3 / (double)e->calls);
		resultset_put_float(&rs, (double)e->max_usec / 1e3);
		resultset_put_float(&rs, (double)histogram_percentile(&e->latency, 0.95) / 1e3);
		resultset_put_uint(&rs, e->rows);
		resultset_put_uint(&rs, e->errors);
		resultset_put_text(&rs, e->normalized);
		resultset_row_end(&rs);
	}
	free(top);
	resultset_end(&rs, "SHOW");
}
