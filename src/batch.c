/*
 * batch.c - insert batching (batch.h): the batches of a pool and their runs.
 *
 * A batch collects rows of one group (batchsql_same_group) and one set of
 * session settings. A candidate runs alone, at once, while its pool is
 * uncontended: an idle server, nobody waiting, no batch collecting or running.
 * Otherwise it joins a batch, which starts when a server comes free and nobody
 * waits (so rows gather while the previous batch runs), or after
 * batch_max_delay or at batch_max_rows joins the pool's queue, still taking
 * rows until a server is free. A batch of one row runs as its client's own
 * request. A larger one is sent in one write: BEGIN (with the SETs its
 * settings need), the multi-row INSERT, which fails unless it stored every row
 * (batchsql_build_insert), and COMMIT. Only when COMMIT answers "COMMIT" are
 * the clients told; else the server rolled it all back and each row runs again
 * alone (the fallback), so that each client gets what it would have had alone.
 * Each client keeps its request's bytes in c->retry for that, and the fallback
 * links it like a retried read.
 */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batchsql.h"
#include "cancel.h"
#include "client.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "querylog.h"
#include "router.h"
#include "server.h"

/* Bytes of a batch's messages, with room left for a settings sync. */
#define BATCH_BYTE_LIMIT (OUTPUT_LIMIT / 2)

enum batch_state {
	BATCH_OPEN,    /* collecting rows (batch_max_delay runs) */
	BATCH_WAITING, /* in the pool's queue, still taking rows */
	BATCH_RUNNING, /* on a server */
};

/* The replies a running batch awaits; BEGIN, the INSERT and COMMIT are sent at once. */
enum batch_phase {
	BATCH_PHASE_BEGIN,  /* BEGIN's ReadyForQuery next */
	BATCH_PHASE_INSERT, /* the INSERT's ReadyForQuery next */
	BATCH_PHASE_COMMIT, /* COMMIT's ReadyForQuery next */
};

struct batch_entry {
	struct client *client; /* NULL once it left a running batch */
	struct batchsql_row row;
	bool describe; /* extended: the client asked for Describe of the portal */
};

struct batch {
	struct list_head node; /* pool.batches_open or pool.batches_waiting */
	struct worker *w;
	struct pool *pool;
	enum batch_state state;
	enum batch_phase phase;
	enum batch_flush reason;
	struct batch_entry *entries;
	struct batchsql_row **rows; /* rows[i] = &entries[i].row */
	size_t n, cap;
	struct batchsql_size size; /* of its rows; rows that left still count (a bound) */
	struct params params; /* the settings every row runs with */
	ev_timer timer;	      /* batch_max_delay; a write failure of a running batch */
	ev_tstamp first_at, wait_since;
	struct server *server;
	bool detached; /* off the pool's lists, not counted as waiting */
	bool failed;   /* an error, or settings not applied */
	bool sync_sent; /* BEGIN carried SETs: a rollback leaves s's settings unknown */
	bool inserted;  /* the INSERT completed: from here, COMMIT may have run */
	bool committed; /* COMMIT answered "COMMIT" */
};

static void batch_on_timer(struct ev_loop *loop, ev_timer *t, int revents);

static bool batch_enabled(const struct worker *w, const struct client *c, const struct pool *p)
{
	const struct user_conf *u = config_find_user(w->cfg, c->user);
	if (u != NULL && u->batch_inserts_set)
		return u->batch_inserts;
	return p->db->batch_inserts >= 0 ? p->db->batch_inserts == 1 : w->cfg->batch_inserts;
}

/* ----- the figures ----- */

struct batch_counts *batch_tally_of(struct database *db, const char *user)
{
	struct list_head *pos, *tmp;
	list_for_each_safe (pos, tmp, &db->batch_tallies) {
		struct batch_tally *t = list_entry(pos, struct batch_tally, node);
		if (strcmp(t->user, user) == 0)
			return &t->counts;
	}
	struct batch_tally *t = calloc(1, sizeof(*t));
	if (t == NULL || (t->user = strdup(user)) == NULL) {
		free(t);
		return NULL;
	}
	list_add_tail(&db->batch_tallies, &t->node);
	return &t->counts;
}

void batch_tallies_free(struct database *db)
{
	while (!list_empty(&db->batch_tallies)) {
		struct batch_tally *t =
			list_entry(list_first(&db->batch_tallies), struct batch_tally, node);
		list_del(&t->node);
		free(t->user);
		free(t);
	}
}

/* ----- the batches of a pool ----- */

static struct batch *batch_new(struct worker *w, struct pool *p, const struct client *c)
{
	struct batch *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	params_init(&b->params);
	params_copy(&b->params, &c->params);
	b->w = w;
	b->pool = p;
	b->state = BATCH_OPEN;
	b->first_at = ev_now(w->loop);
	ev_timer_init(&b->timer, batch_on_timer, (double)w->cfg->batch_max_delay / 1e6, 0);
	b->timer.data = b;
	ev_timer_start(w->loop, &b->timer);
	list_add_tail(&p->batches_open, &b->node);
	return b;
}

/* s no longer runs a batch. */
static void batch_leave_server(struct server *s)
{
	if (s->batch == NULL)
		return;
	s->batch->pool->n_batches_running--;
	s->batch = NULL;
}

/* No contention: no idle server is missing, nobody waits and no batch collects or runs. */
static bool batch_pool_uncontended(const struct pool *p)
{
	return !list_empty(&p->idle) && list_empty(&p->waiting) && p->n_batches_waiting == 0 &&
	       p->n_batches_running == 0 && list_empty(&p->batches_open) && !p->db->paused;
}

/* Takes b off its pool's lists and stops its timer. */
static void batch_detach(struct batch *b)
{
	ev_timer_stop(b->w->loop, &b->timer);
	if (b->detached)
		return;
	b->detached = true;
	if (list_linked(&b->node)) {
		list_del(&b->node);
		if (b->state == BATCH_WAITING)
			b->pool->n_batches_waiting--;
	}
	b->pool->batching->rows_waiting -= b->n;
}

static void batch_free(struct batch *b)
{
	batch_detach(b);
	for (size_t i = 0; i < b->n; i++)
		batchsql_row_free(&b->entries[i].row);
	params_free(&b->params);
	free(b->entries);
	free(b->rows);
	free(b);
}

/* Room for one more row; false without memory. */
static bool batch_grow(struct batch *b)
{
	if (b->n < b->cap)
		return true;
	size_t cap = b->cap == 0 ? 8 : b->cap * 2;
	struct batch_entry *e = realloc(b->entries, cap * sizeof(*e));
	if (e == NULL)
		return false;
	b->entries = e;
	struct batchsql_row **r = realloc(b->rows, cap * sizeof(*r));
	if (r == NULL)
		return false;
	b->rows = r;
	b->cap = cap;
	for (size_t i = 0; i < b->n; i++)
		b->rows[i] = &b->entries[i].row;
	return true;
}

/* Adds row to b when it fits; b then owns it. */
static bool batch_add(struct batch *b, struct client *c, const struct batchsql_row *row,
		      bool describe)
{
	if (!batch_grow(b))
		return false;
	if (!batchsql_size_add(&b->size, row, BATCH_BYTE_LIMIT)) {
		if (b->n > 0)
			return false;
		b->size.bytes = BATCH_BYTE_LIMIT; /* a row too long to share runs alone */
	}
	b->entries[b->n] = (struct batch_entry){.client = c, .row = *row, .describe = describe};
	b->rows[b->n] = &b->entries[b->n].row;
	b->n++;
	b->pool->batching->rows_waiting++;
	return true;
}

/* Full: an open batch goes to the queue at the next loop iteration. */
static void batch_note_full(struct batch *b)
{
	if (b->state != BATCH_OPEN)
		return;
	b->reason = BATCH_FLUSH_ROWS;
	ev_timer_stop(b->w->loop, &b->timer);
	ev_timer_set(&b->timer, 0, 0);
	ev_timer_start(b->w->loop, &b->timer);
}

/* The batch of p that row (of c) may join: same group and settings, room left. */
static struct batch *batch_find(struct worker *w, struct pool *p, const struct client *c,
				const struct batchsql_row *row)
{
	struct list_head *lists[] = {&p->batches_open, &p->batches_waiting};
	for (size_t k = 0; k < 2; k++) {
		struct list_head *pos, *tmp;
		list_for_each_safe (pos, tmp, lists[k]) {
			struct batch *b = list_entry(pos, struct batch, node);
			if (b->n < (size_t)w->cfg->batch_max_rows &&
			    params_in_sync(&c->params, &b->params) &&
			    batchsql_same_group(&b->entries[0].row, row))
				return b;
		}
	}
	return NULL;
}

/* c's row joins a batch of p (a new one when none matches); false when it cannot. */
static bool batch_join(struct worker *w, struct pool *p, struct client *c, struct batchsql_row *row,
		       bool describe)
{
	struct batch *b = batch_find(w, p, c, row);
	if (b == NULL || !batch_add(b, c, row, describe)) {
		b = batch_new(w, p, c);
		if (b == NULL)
			return false;
		if (!batch_add(b, c, row, describe)) {
			batch_free(b);
			return false;
		}
	}
	c->batch = b;
	client_set_state(c, CLIENT_BATCHED);
	c->wait_since = ev_now(w->loop);
	if (b->n >= (size_t)w->cfg->batch_max_rows)
		batch_note_full(b);
	return true;
}

/* ----- candidates ----- */

enum conn_action batch_offer(struct worker *w, struct client *c, struct pool *p, const uint8_t *msg,
			     uint32_t total, uint32_t avail)
{
	uint8_t type = msg[0];
	if ((type != 'Q' && type != 'P') || avail < total || c->mode == POOL_SESSION ||
	    c->in_transaction || c->pinned || p->target->role != TARGET_PRIMARY ||
	    !batch_enabled(w, c, p))
		return CONN_FORWARD;
	/* No contention: the request runs at once, as it would without batching. */
	if (batch_pool_uncontended(p))
		return CONN_FORWARD;
	struct batchsql_row row;
	size_t len = total;
	bool describe = false;
	if (type == 'Q') {
		const char *sql = (const char *)msg + PROTO_HEADER_LEN;
		size_t sql_len = total - PROTO_HEADER_LEN - 1;
		if (total <= PROTO_HEADER_LEN ||
		    strnlen(sql, total - PROTO_HEADER_LEN) != sql_len || total > RETRY_LIMIT ||
		    !batchsql_candidate_from_query(&row, sql, sql_len))
			return CONN_FORWARD;
	} else {
		const struct iobuf *in = c->conn.in;
		struct batchsql_request req;
		enum batchsql_scan r = batchsql_scan_extended(msg, in->data + in->end, &req);
		if (r == BATCHSQL_SCAN_MORE) {
			/*
			 * Wait for the rest unless it cannot arrive: the buffer is full, or the
			 * request would be too long to keep for a fallback.
			 */
			bool full = in->start == 0 && in->end >= w->iobufs.size;
			bool long_run = (size_t)(in->data + in->end - msg) >= RETRY_LIMIT;
			return full || long_run ? CONN_FORWARD : CONN_NEED_ALL;
		}
		if (r == BATCHSQL_SCAN_NO || req.len > RETRY_LIMIT ||
		    !batchsql_candidate_from_request(&row, msg, &req))
			return CONN_FORWARD;
		len = req.len;
		describe = req.describe;
	}
	/* The request as sent: the one-row run and the fallback send these bytes. */
	obuf_reset(&c->retry);
	if (!obuf_put(&c->retry, msg, len) || !batch_join(w, p, c, &row, describe)) {
		obuf_reset(&c->retry);
		batchsql_row_free(&row);
		return CONN_FORWARD;
	}
	c->route_read = false;
	c->retried = false;
	c->retry_rfq = 1;
	c->batch_skip = 0;
	if (type == 'P')
		c->batch_skip = describe ? 4 : 3;
	return CONN_CONSUMED;
}

/* ----- answers to the clients ----- */

/* c is no longer batched; its further input is processed. */
static void batch_release_client(struct worker *w, struct client *c)
{
	c->batch = NULL;
	client_set_state(c, CLIENT_IDLE);
	c->last_activity = ev_now(w->loop);
	client_resume(w, c);
}

/* The row of e (of client c) is stored: the client gets what its INSERT alone would have said. */
static void batch_answer_success(struct worker *w, struct client *c, const struct batch_entry *e)
{
	struct obuf *out = &c->conn.out;
	if (e->row.protocol == BATCHSQL_EXTENDED) {
		obuf_msg_begin(out, '1');
		obuf_msg_end(out);
		obuf_msg_begin(out, '2');
		obuf_msg_end(out);
		if (e->describe) {
			obuf_msg_begin(out, 'n');
			obuf_msg_end(out);
		}
	}
	obuf_msg_begin(out, 'C');
	obuf_put_str(out, "INSERT 0 1");
	obuf_msg_end(out);
	proto_put_ready(out, 'I');
	/* Counted as its own statement and transaction, from when its row joined. */
	uint64_t usec = (uint64_t)((ev_now(w->loop) - c->wait_since) * 1e6);
	stats_record_query(&c->pool->db->stats, usec);
	stats_record_xact(&c->pool->db->stats, usec);
	querylog_batched_row(w, e->row.sql, e->row.sql_len, usec);
	router_note_primary_commit(w, c);
	obuf_free(&c->retry);
	c->retry_rfq = 0;
	batch_release_client(w, c);
}

/* b committed: each of its clients still there is told; b is freed. */
static void batch_answer_committed(struct worker *w, struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct client *c = b->entries[i].client;
		b->entries[i].client = NULL;
		if (c != NULL)
			batch_answer_success(w, c, &b->entries[i]);
	}
	batch_free(b);
}

/* c's request fails without having run. */
static void batch_answer_error(struct worker *w, struct client *c, const char *sqlstate,
			       const char *message)
{
	proto_put_error(&c->conn.out, false, sqlstate, message, NULL, NULL);
	proto_put_ready(&c->conn.out, 'I');
	obuf_free(&c->retry);
	c->retry_rfq = 0;
	batch_release_client(w, c);
}

/* c's request runs again alone, through the usual path, from the bytes it sent. */
static void batch_rerun(struct worker *w, struct client *c)
{
	c->batch = NULL;
	c->retried = true; /* client_on_linked sends c->retry */
	c->batch_rerun = true;
	c->retry_rfq = 1;
	c->route_read = false;
	c->xact_open = false;
	client_set_state(c, CLIENT_IDLE);
	pool_acquire(w, c->pool, c);
}

/* Every client of b fails with sqlstate/message; b is freed. */
static void batch_fail_all(struct worker *w, struct batch *b, const char *sqlstate,
			   const char *message)
{
	batch_detach(b);
	for (size_t i = 0; i < b->n; i++) {
		struct client *c = b->entries[i].client;
		b->entries[i].client = NULL;
		if (c != NULL)
			batch_answer_error(w, c, sqlstate, message);
	}
	batch_free(b);
}

/* ----- running ----- */

/*
 * Queues BEGIN, the SETs that give s the batch's settings (in the same Query,
 * so that a failed SET aborts the transaction and COMMIT rolls it back), the
 * multi-row INSERT and COMMIT: the whole run in one write. false, with nothing
 * queued, when it cannot be built (for want of memory).
 */
static bool batch_put_run(struct batch *b, struct server *s)
{
	struct obuf *out = &s->conn.out;
	size_t before = out->len;
	obuf_msg_begin(out, 'Q');
	obuf_put(out, "BEGIN", 5);
	if (!params_in_sync(&b->params, &s->params)) {
		obuf_put(out, ";", 1);
		b->sync_sent = params_sync_sql(&b->params, &s->params, out) > 0;
	}
	obuf_put_u8(out, 0);
	obuf_msg_end(out);
	bool ok = batchsql_build_insert(out, b->rows, b->n);
	proto_put_query(out, "COMMIT");
	if (!ok || out->failed) {
		out->len = before;
		out->failed = false;
		b->sync_sent = false;
		return false;
	}
	if (b->sync_sent)
		params_apply_sync(&b->params, &s->params);
	return true;
}

/* Writes what s owes now; a failed write closes s from the timer (not from here). */
static void batch_flush_server(struct batch *b, struct server *s)
{
	if (conn_flush(&s->conn) != CONN_ERROR)
		return;
	ev_timer_stop(b->w->loop, &b->timer);
	ev_timer_set(&b->timer, 0, 0);
	ev_timer_start(b->w->loop, &b->timer);
}

/* Every client of b whose row is still wanted runs it alone; b is freed. */
static void batch_fall_back(struct worker *w, struct batch *b, const char *why)
{
	struct pool *p = b->pool;
	p->batching->fallbacks++;
	log_debug("batch of %zu rows for %s/%s falls back to one by one: %s", b->n, p->db->name,
		  p->user, why);
	for (size_t i = 0; i < b->n; i++) {
		struct client *c = b->entries[i].client;
		b->entries[i].client = NULL;
		if (c != NULL)
			batch_rerun(w, c);
	}
	batch_free(b);
}

/* b took s: one row runs as its client's own request, more as one transaction. */
static void batch_run(struct worker *w, struct batch *b, struct server *s)
{
	struct pool *p = b->pool;
	batch_detach(b);
	b->state = BATCH_RUNNING;
	p->batching->batches++;
	p->batching->rows += b->n;
	p->batching->flushes[b->reason]++;
	if (b->n == 1) {
		struct client *c = b->entries[0].client;
		b->entries[0].client = NULL;
		batch_free(b);
		c->batch = NULL;
		c->retried = true;
		c->xact_open = true;
		c->xact_start = ev_now(w->loop);
		server_link(w, s, c);
		return;
	}
	pool_set_server_state(s, SERVER_ACTIVE);
	s->batch = b;
	p->n_batches_running++;
	b->server = s;
	s->expect_rfq = 0;
	s->query_start = ev_now(w->loop);
	if (!batch_put_run(b, s)) {
		/* Cannot happen within BATCH_BYTE_LIMIT but for want of memory. */
		batch_leave_server(s);
		s->close_on_release = true;
		batch_fall_back(w, b, "the batched INSERT could not be built");
		pool_release(w, s);
		return;
	}
	b->phase = BATCH_PHASE_BEGIN;
	batch_flush_server(b, s);
}

ev_tstamp batch_waiting_since(const struct pool *p)
{
	if (list_empty(&p->batches_waiting))
		return 0;
	return list_entry(list_first(&p->batches_waiting), struct batch, node)->wait_since;
}

void batch_start_waiting(struct worker *w, struct pool *p, struct server *s)
{
	batch_run(w, list_entry(list_first(&p->batches_waiting), struct batch, node), s);
}

bool batch_start_open(struct worker *w, struct pool *p, struct server *s)
{
	if (list_empty(&p->batches_open))
		return false;
	struct batch *b = list_entry(list_first(&p->batches_open), struct batch, node);
	if (b->reason != BATCH_FLUSH_ROWS)
		b->reason = BATCH_FLUSH_IDLE;
	batch_run(w, b, s);
	return true;
}

/* An open batch's delay ran out (or it is full): it waits for a server in turn. */
static void batch_enqueue(struct worker *w, struct batch *b)
{
	struct pool *p = b->pool;
	list_del(&b->node);
	b->state = BATCH_WAITING;
	b->wait_since = ev_now(w->loop);
	list_add_tail(&p->batches_waiting, &b->node);
	p->n_batches_waiting++;
	pool_wake(w, p);
}

static void batch_on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct batch *b = t->data;
	struct worker *w = b->w;
	switch (b->state) {
	case BATCH_OPEN:
		if (b->reason != BATCH_FLUSH_ROWS)
			b->reason = BATCH_FLUSH_DELAY;
		batch_enqueue(w, b);
		break;
	case BATCH_RUNNING:
		server_close(w, b->server, "could not write to server", true);
		break;
	case BATCH_WAITING:
		break;
	}
}

/* ----- the server's replies ----- */

enum conn_action batch_on_server_message(struct server *s, const uint8_t *msg, uint32_t total,
					 uint32_t avail)
{
	struct batch *b = s->batch;
	uint8_t type = msg[0];
	if (type != 'Z' && type != 'E' && type != 'C' && type != 'S')
		return CONN_SKIP; /* ParseComplete, BindComplete, notices */
	if (avail < total)
		return CONN_NEED_ALL;
	const uint8_t *body = msg + PROTO_HEADER_LEN;
	uint32_t len = total - PROTO_HEADER_LEN;
	switch (type) {
	case 'S': {
		const char *name, *value;
		if (proto_parse_param_status(body, len, &name, &value))
			params_set(&s->params, name, value, true);
		return CONN_CONSUMED;
	}
	case 'E': {
		struct proto_error e;
		bool ok = proto_parse_error(body, len, &e);
		if (!ok || e.severity == NULL || strcmp(e.severity, "ERROR") != 0)
			s->close_on_release = true;
		log_debug("server %s: batched INSERT: error %s: %s", s->addr,
			  ok && e.sqlstate != NULL ? e.sqlstate : "?",
			  ok && e.message != NULL ? e.message : "(malformed)");
		b->failed = true;
		return CONN_CONSUMED;
	}
	case 'C': {
		if (len == 0 || body[len - 1] != '\0')
			return CONN_CONSUMED;
		if (b->phase == BATCH_PHASE_INSERT)
			b->inserted = !b->failed;
		else if (b->phase == BATCH_PHASE_COMMIT)
			b->committed = !b->failed && strcmp((const char *)body, "COMMIT") == 0;
		return CONN_CONSUMED;
	}
	default: /* 'Z' */
		s->tx_status = len >= 1 ? (char)body[0] : 'I';
		if (b->phase != BATCH_PHASE_COMMIT) {
			b->phase++;
			return CONN_CONSUMED;
		}
		s->event = SERVER_EVENT_BATCH;
		return CONN_YIELD;
	}
}

/* The batch ended on s: s goes back to the pool (or is closed when unusable). */
static void batch_release_server(struct worker *w, struct server *s)
{
	if (s->tx_status != 'I')
		s->close_on_release = true;
	pool_release(w, s);
}

void batch_on_server_event(struct worker *w, struct server *s)
{
	struct batch *b = s->batch;
	batch_leave_server(s);
	/* The rollback undid the SETs that BEGIN carried: s's settings are unknown. */
	if (!b->committed && b->sync_sent)
		s->close_on_release = true;
	if (b->committed)
		batch_answer_committed(w, b);
	else
		batch_fall_back(w, b,
				b->failed ? "the INSERT failed or did not store every row"
					  : "COMMIT rolled back");
	batch_release_server(w, s);
}

void batch_server_lost(struct worker *w, struct server *s)
{
	struct batch *b = s->batch;
	batch_leave_server(s);
	if (b->committed) {
		batch_answer_committed(w, b);
		return;
	}
	if (!b->inserted) {
		batch_fall_back(w, b, "server connection lost before the INSERT completed");
		return;
	}
	struct pool *p = b->pool;
	p->batching->unknown++;
	log_warning("server %s: connection lost while committing a batched INSERT of "
		    "%zu rows for "
		    "%s/%s: the rows may or may not have been committed",
		    s->addr, b->n, p->db->name, p->user);
	for (size_t i = 0; i < b->n; i++) {
		struct client *c = b->entries[i].client;
		b->entries[i].client = NULL;
		if (c == NULL)
			continue;
		c->batch = NULL;
		client_fatal(w, c, "08006",
			     "server connection was lost while the batched INSERT was "
			     "committing: it "
			     "may or may not have been committed");
	}
	batch_free(b);
}

/* ----- clients and timeouts ----- */

void batch_cancel(struct worker *w, struct client *c)
{
	struct batch *b = c->batch;
	if (b->state == BATCH_RUNNING)
		return; /* it commits or fails with the batch */
	batch_client_gone(w, c);
	batch_answer_error(w, c, "57014", "canceling statement due to user request");
}

void batch_client_gone(struct worker *w, struct client *c)
{
	(void)w;
	struct batch *b = c->batch;
	c->batch = NULL;
	size_t i = 0;
	while (i < b->n && b->entries[i].client != c)
		i++;
	if (i == b->n)
		return;
	if (b->state == BATCH_RUNNING) {
		b->entries[i].client = NULL; /* its fate is the batch's */
		return;
	}
	/* Never run: the row goes. */
	batchsql_row_free(&b->entries[i].row);
	memmove(&b->entries[i], &b->entries[i + 1], (b->n - i - 1) * sizeof(b->entries[0]));
	b->n--;
	b->pool->batching->rows_waiting--;
	for (size_t k = 0; k < b->n; k++)
		b->rows[k] = &b->entries[k].row;
	if (b->n == 0)
		batch_free(b);
}

void batch_janitor(struct worker *w, struct pool *p, ev_tstamp now)
{
	const struct config *cfg = w->cfg;
	struct list_head *pos, *tmp;
	/* query_timeout: a cancelled batch fails, and each row runs alone with its own. */
	list_for_each_safe (pos, tmp, &p->active) {
		struct server *s = list_entry(pos, struct server, node);
		if (s->batch != NULL && cfg->query_timeout > 0 &&
		    now - s->query_start > (double)cfg->query_timeout / 1e6) {
			log_info("server %s: query_timeout: cancelling its batched INSERT",
				 s->addr);
			s->query_start = now; /* one cancel per timeout period */
			cancel_server_query(w, s);
		}
	}
	if (cfg->query_wait_timeout <= 0 || p->db->paused)
		return;
	list_for_each_safe (pos, tmp, &p->batches_waiting) {
		struct batch *b = list_entry(pos, struct batch, node);
		if (now - b->first_at < (double)cfg->query_wait_timeout / 1e6)
			continue;
		log_info("batch of %zu rows: no server within query_wait_timeout for %s/%s", b->n,
			 p->db->name, p->user);
		batch_fail_all(w, b, "57014",
			       "query_wait_timeout: no server connection became available");
	}
}

void batch_pool_failed(struct worker *w, struct pool *p, const char *sqlstate, const char *message)
{
	while (!list_empty(&p->batches_waiting))
		batch_fail_all(w, list_entry(list_first(&p->batches_waiting), struct batch, node),
			       sqlstate, message);
}
