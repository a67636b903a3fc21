/*
 * inflight.c - the per-server queue of statements in flight (see inflight.h).
 */
#include "inflight.h"

#include <string.h>

#include "classify.h"

void inflight_init(struct inflight *q)
{
	memset(q, 0, sizeof(*q));
	obuf_init(&q->data, INFLIGHT_TEXT_LIMIT);
}

void inflight_free(struct inflight *q)
{
	obuf_free(&q->data);
}

void inflight_clear(struct inflight *q)
{
	q->head = q->count = 0;
	q->lost = false;
	obuf_reset(&q->data);
}

/* A new entry at the tail, or NULL when the ring is full (then nothing is timed). */
static struct inflight_entry *inflight_push(struct inflight *q, bool marker, ev_tstamp now)
{
	if (q->lost)
		return NULL;
	if (q->count == INFLIGHT_MAX) {
		q->lost = true;
		q->head = q->count = 0;
		return NULL;
	}
	struct inflight_entry *e = &q->ring[(q->head + q->count++) % INFLIGHT_MAX];
	memset(e, 0, sizeof(*e));
	e->marker = marker;
	e->sent = now;
	return e;
}

/* Copies n bytes into the buffer; false (nothing kept) when it is full. */
static bool inflight_keep(struct inflight *q, const void *p, size_t n, size_t *off)
{
	*off = q->data.len;
	if (obuf_put(&q->data, p, n))
		return true;
	q->data.len = *off;
	q->data.failed = false;
	return false;
}

static void inflight_keep_text(struct inflight *q, struct inflight_entry *e, const char *text,
			       size_t len)
{
	if (len > 0 && inflight_keep(q, text, len, &e->text_off))
		e->text_len = len;
}

void inflight_push_query(struct inflight *q, const char *sql, size_t len, ev_tstamp now)
{
	size_t pos = 0, off, n;
	while (classify_next_statement(sql, len, &pos, &off, &n)) {
		struct inflight_entry *e = inflight_push(q, false, now);
		if (e == NULL)
			return;
		inflight_keep_text(q, e, sql + off, n);
	}
	inflight_push_marker(q, now);
}

void inflight_push_execute(struct inflight *q, const struct prepared_stmt *st,
			   const struct prepared_bind *bind, ev_tstamp now)
{
	struct inflight_entry *e = inflight_push(q, false, now);
	if (e == NULL)
		return;
	e->extended = true;
	if (st == NULL)
		return;
	inflight_keep_text(q, e, st->text, st->text_len);
	e->n_params = bind->n_params;
	e->params_binary = bind->binary;
	if (bind->params_kept && !bind->binary &&
	    inflight_keep(q, bind->values.data, bind->values.len, &e->params_off)) {
		e->params_len = bind->values.len;
		e->params_kept = true;
	}
	if (st->n_types > 0 && inflight_keep(q, st->types, 4u * st->n_types, &e->types_off))
		e->n_types = st->n_types;
}

void inflight_push_marker(struct inflight *q, ev_tstamp now)
{
	inflight_push(q, true, now);
}

static struct inflight_entry *inflight_head(struct inflight *q)
{
	return q->count > 0 ? &q->ring[q->head] : NULL;
}

static void inflight_pop(struct inflight *q)
{
	q->head = (q->head + 1) % INFLIGHT_MAX;
	q->count--;
}

void inflight_on_row(struct inflight *q)
{
	struct inflight_entry *e = inflight_head(q);
	if (e != NULL && !e->marker)
		e->rows++;
}

bool inflight_finish(struct inflight *q, ev_tstamp now, uint64_t rows, struct inflight_done *out)
{
	struct inflight_entry *e = inflight_head(q);
	if (e == NULL || e->marker)
		return false;
	inflight_pop(q);
	out->entry = e;
	out->text = e->text_len > 0 ? (const char *)q->data.data + e->text_off : NULL;
	out->text_len = e->text_len;
	out->params = e->params_kept ? q->data.data + e->params_off : NULL;
	out->types = e->n_types > 0 ? q->data.data + e->types_off : NULL;
	out->start = e->sent > q->last_done ? e->sent : q->last_done;
	out->end = now;
	out->rows = rows != UINT64_MAX ? rows : e->rows;
	q->last_done = now;
	return true;
}

void inflight_skip_request(struct inflight *q)
{
	struct inflight_entry *e;
	while ((e = inflight_head(q)) != NULL && !e->marker)
		inflight_pop(q);
}

void inflight_on_ready(struct inflight *q, bool idle)
{
	struct inflight_entry *e;
	while ((e = inflight_head(q)) != NULL) {
		inflight_pop(q);
		if (e->marker)
			break;
	}
	if (idle)
		inflight_clear(q);
}
