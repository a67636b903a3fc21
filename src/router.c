/*
 * router.c - which server target serves a request (router.h).
 *
 * Called by client.c when a request starts and no server is linked. The
 * classifier proves a statement read-only or it goes to the primary; among
 * the targets that may take a read, smooth weighted round-robin picks one.
 */
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "classify.h"
#include "health.h"
#include "log.h"
#include "proto.h"
#include "pstmt.h"

/* A comma separated config list as the classifier's array of names. */
static bool split_names(const char *list, char ***names, size_t *n)
{
	*names = NULL;
	*n = 0;
	if (list == NULL)
		return true;
	size_t cap = 1;
	for (const char *p = list; *p != '\0'; p++)
		cap += *p == ',';
	char **out = calloc(cap, sizeof(*out));
	char *copy = strdup(list);
	if (out == NULL || copy == NULL) {
		free(out);
		free(copy);
		return false;
	}
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		size_t len = strlen(tok);
		while (len > 0 && tok[len - 1] == ' ')
			tok[--len] = '\0';
		if (len == 0)
			continue;
		for (char *c = tok; *c != '\0'; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		if ((out[*n] = strdup(tok)) == NULL)
			break;
		(*n)++;
	}
	free(copy);
	*names = out;
	return true;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

void router_free(struct worker *w)
{
	struct classify_options *o = w->classify_opts;
	if (o == NULL)
		return;
	free_names((char **)o->write_functions, o->n_write_functions);
	free_names((char **)o->read_only_functions, o->n_read_only_functions);
	free(o);
	w->classify_opts = NULL;
}

bool router_configure(struct worker *w)
{
	struct classify_options *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return false;
	char **wf, **rf;
	size_t nw, nr;
	if (!split_names(w->cfg->write_functions, &wf, &nw) ||
	    !split_names(w->cfg->read_only_functions, &rf, &nr)) {
		free(o);
		return false;
	}
	o->write_functions = (const char *const *)wf;
	o->n_write_functions = nw;
	o->read_only_functions = (const char *const *)rf;
	o->n_read_only_functions = nr;
	o->unknown_functions_readonly = w->cfg->route_unknown_functions == ROUTE_UNKNOWN_REPLICA;
	router_free(w);
	w->classify_opts = o;
	return true;
}

/* The lowest WAL position a replica must have replayed to serve c, or -1 for none. */
static bool router_read_floor(struct worker *w, struct client *c, uint64_t *floor)
{
	struct database *db = c->pool->db;
	*floor = 0;
	if (db->read_your_writes == RYW_OFF)
		return true;
	if (c->ryw_pending_since > 0) {
		uint64_t lsn = health_primary_lsn_since(db, c->ryw_pending_since);
		if (lsn == 0)
			return false; /* no probe has seen the commit yet: primary */
		c->ryw_floor = lsn;
		c->ryw_pending_since = 0;
	}
	*floor = c->ryw_floor;
	if (db->read_your_writes == RYW_GLOBAL) {
		if (db->ryw_pending_since > 0) {
			uint64_t lsn = health_primary_lsn_since(db, db->ryw_pending_since);
			if (lsn == 0)
				return false;
			db->global_floor = lsn;
			db->ryw_pending_since = 0;
		}
		if (db->global_floor > *floor)
			*floor = db->global_floor;
	}
	(void)w;
	return true;
}

/* Smooth weighted round-robin over the targets that may serve a read. */
static struct target *router_pick_read(struct worker *w, struct client *c, struct target *exclude)
{
	struct database *db = c->pool->db;
	uint64_t floor;
	if (!router_read_floor(w, c, &floor))
		return NULL;
	ev_tstamp now = ev_now(w->loop);
	bool with_primary = w->cfg->primary_reads == PRIMARY_READS_ON;
	int total = 0;
	struct target *best = NULL;
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &db->targets)
	{
		struct target *t = list_entry(pos, struct target, node);
		if (t == exclude || t->removed)
			continue;
		if (t->role == TARGET_PRIMARY) {
			if (!with_primary)
				continue;
		} else if (!health_target_usable(t, now) || (floor > 0 && t->lsn < floor)) {
			continue;
		}
		t->rr_credit += t->weight;
		total += t->weight;
		if (best == NULL || t->rr_credit > best->rr_credit)
			best = t;
	}
	if (best != NULL)
		best->rr_credit -= total;
	return best;
}

/* The query text of a Query or Parse message, or NULL. */
static const char *request_text(const uint8_t *msg, uint32_t len, size_t *text_len)
{
	const char *body = (const char *)msg + PROTO_HEADER_LEN;
	size_t n = len - PROTO_HEADER_LEN;
	if (msg[0] == 'P') {
		const char *nul = memchr(body, 0, n);
		if (nul == NULL)
			return NULL;
		n -= (size_t)(nul + 1 - body);
		body = nul + 1;
	} else if (msg[0] != 'Q') {
		return NULL;
	}
	*text_len = strnlen(body, n);
	return body;
}

/* Classifies text into *r: true for work a replica may do, with the (static) reason. */
static bool router_classify(struct worker *w, const char *sql, size_t len, const char **reason,
			    struct classify_result *r)
{
	classify_statement(sql, len, w->classify_opts, r);
	if (r->hint == CLASSIFY_HINT_PRIMARY) {
		*reason = "hint: primary";
		return false;
	}
	if (r->hint == CLASSIFY_HINT_REPLICA) {
		*reason = "hint: replica";
		return true;
	}
	if (r->kind == CLASSIFY_BEGIN || r->kind == CLASSIFY_START) {
		*reason = r->begin_read_only ? "BEGIN READ ONLY" : "BEGIN (read write)";
		return r->begin_read_only;
	}
	*reason = r->reason;
	return r->read_only;
}

void router_explain(struct worker *w, const char *sql, size_t len, bool *read, char *reason,
		    size_t cap)
{
	const char *why;
	struct classify_result r;
	*read = router_classify(w, sql, len, &why, &r);
	/* The classifier's own reason names the deciding keyword or function. */
	snprintf(reason, cap, "%s", why == r.reason ? r.reason_text : why);
}

enum router_result router_route(struct worker *w, struct client *c, const uint8_t *msg,
				uint32_t total, uint32_t avail, struct route *out)
{
	struct database *db = c->pool->db;
	out->target = db->primary;
	out->read = false;
	out->reason = "primary";
	if (!database_has_replicas(db))
		return ROUTER_OK;
	bool read;
	if (db->replica_only) {
		read = true;
		out->reason = "replica_only database";
	} else if (c->mode == POOL_SESSION) {
		out->reason = "session pooling";
		return ROUTER_OK;
	} else if (!c->read_routing || c->route_pin == ROUTE_PIN_PRIMARY) {
		out->reason = c->read_routing ? "SET pgsluice.route = primary" : "read_routing off";
		return ROUTER_OK;
	} else if (c->route_pin == ROUTE_PIN_REPLICA) {
		read = true;
		out->reason = "SET pgsluice.route = replica";
	} else {
		size_t len;
		struct stmt_def *def = NULL;
		if (avail < total && total <= w->iobufs.size && (msg[0] == 'Q' || msg[0] == 'P'))
			return ROUTER_NEED_ALL;
		const char *sql = msg[0] == 'B' && c->rename_statements
					  ? pstmt_bound_text(c, msg, avail, &len, &def)
					  : request_text(msg, avail, &len);
		/* Too large to inspect whole, or not a statement: the primary is always right. */
		if (sql == NULL || (def == NULL && avail < total))
			return ROUTER_OK;
		if (def != NULL && def->route != STMT_ROUTE_UNKNOWN) {
			read = def->route == STMT_ROUTE_READ;
			out->reason = def->route_reason;
		} else {
			struct classify_result r;
			read = router_classify(w, sql, len, &out->reason, &r);
			if (def != NULL) {
				/* A shared statement is classified once, on its first Bind. */
				def->route = read ? STMT_ROUTE_READ : STMT_ROUTE_PRIMARY;
				def->route_reason = out->reason;
			}
		}
	}
	if (!read)
		return ROUTER_OK;
	struct target *t = router_pick_read(w, c, NULL);
	if (t == NULL) {
		if (w->cfg->replica_fallback == REPLICA_FALLBACK_ERROR && !db->replica_only) {
			db->reads_failed++;
			return ROUTER_NO_REPLICA;
		}
		if (db->replica_only && w->cfg->replica_fallback == REPLICA_FALLBACK_ERROR)
			return ROUTER_NO_REPLICA;
		db->fallbacks++;
		out->reason = "no replica can serve: fallback to the primary";
		return ROUTER_OK;
	}
	out->target = t;
	out->read = true;
	return ROUTER_OK;
}

struct target *router_retry_target(struct worker *w, struct client *c, struct target *failed)
{
	struct target *t = router_pick_read(w, c, failed);
	if (t == NULL && failed != c->pool->db->primary &&
	    w->cfg->replica_fallback == REPLICA_FALLBACK_PRIMARY) {
		c->pool->db->fallbacks++;
		t = c->pool->db->primary;
	}
	return t;
}

void router_note_primary_commit(struct worker *w, struct client *c)
{
	struct database *db = c->pool->db;
	if (db->read_your_writes == RYW_OFF)
		return;
	ev_tstamp now = ev_now(w->loop);
	c->ryw_pending_since = now;
	db->ryw_pending_since = now;
}
