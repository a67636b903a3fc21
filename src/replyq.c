/*
 * replyq.c - matching server replies to what was sent (see replyq.h).
 *
 * The reply rules are the protocol's: each extended-query message has one
 * reply (Describe of a statement two, Execute any number of rows before its
 * completion), Query and FunctionCall end with ReadyForQuery, notices,
 * parameter reports and notifications come at any time.
 */
#include "replyq.h"

#include <string.h>

void replyq_init(struct replyq *q)
{
	q->head = q->count = 0;
	q->skipping = false;
	obuf_init(&q->data, REPLYQ_DATA_LIMIT);
}

void replyq_free(struct replyq *q)
{
	obuf_free(&q->data);
}

void replyq_clear(struct replyq *q)
{
	q->head = q->count = 0;
	q->skipping = false;
	obuf_reset(&q->data);
}

static struct replyq_entry *replyq_head(struct replyq *q)
{
	return &q->ring[q->head];
}

static void replyq_pop(struct replyq *q)
{
	q->head = (q->head + 1) % REPLYQ_MAX;
	if (--q->count == 0)
		obuf_reset(&q->data);
}

static bool replyq_append(struct replyq *q, const struct replyq_entry *e)
{
	if (q->count == REPLYQ_MAX)
		return false;
	q->ring[(q->head + q->count) % REPLYQ_MAX] = *e;
	q->count++;
	return true;
}

bool replyq_push(struct replyq *q, enum replyq_kind kind, bool own, uint64_t stmt_id,
		 const char *name, size_t name_len)
{
	/* The server ignores all but Sync until it sees one: nothing will answer. */
	if (q->skipping && q->count == 0 && kind != RQ_SYNC)
		return true;
	if (q->count == REPLYQ_MAX)
		return false;
	struct replyq_entry e = {.kind = (uint8_t)kind, .own = own, .stmt_id = stmt_id};
	if (name != NULL && name_len > 0 && name_len <= REPLYQ_NAME_MAX) {
		e.data_off = (uint32_t)q->data.len;
		e.data_len = (uint32_t)name_len;
		if (!obuf_put(&q->data, name, name_len))
			e.data_len = 0; /* errors will show pgsluice's name: still correct */
	}
	if (kind == RQ_SYNC)
		q->skipping = false;
	return replyq_append(q, &e);
}

void replyq_mark_duplicate(struct replyq *q)
{
	if (q->count > 0)
		q->ring[(q->head + q->count - 1) % REPLYQ_MAX].duplicate = true;
}

bool replyq_push_synth(struct replyq *q, const void *msg, size_t len)
{
	if (q->skipping && q->count == 0)
		return true;
	struct replyq_entry e = {.kind = RQ_SYNTH, .data_off = (uint32_t)q->data.len,
				 .data_len = (uint32_t)len};
	if (q->count == REPLYQ_MAX || len > REPLYQ_SYNTH_MAX || !obuf_put(&q->data, msg, len))
		return false;
	return replyq_append(q, &e);
}

/* After an ErrorResponse to an extended-query message: drop what the server skips. */
static void replyq_skip_to_sync(struct replyq *q)
{
	while (q->count > 0 && replyq_head(q)->kind != RQ_SYNC)
		replyq_pop(q);
	if (q->count == 0)
		q->skipping = true;
}

/* Whether type completes the head entry of kind (false: more replies follow). */
static bool replyq_completes(struct replyq_entry *e, uint8_t type, bool *matches)
{
	*matches = true;
	switch ((enum replyq_kind)e->kind) {
	case RQ_PARSE:
		return (*matches = type == '1');
	case RQ_BIND:
		return (*matches = type == '2');
	case RQ_CLOSE:
		return (*matches = type == '3');
	case RQ_DESCRIBE_STMT:
		if (type == 't' && !e->half) {
			e->half = true;
			return false;
		}
		return (*matches = e->half && (type == 'T' || type == 'n'));
	case RQ_DESCRIBE_PORTAL:
		return (*matches = type == 'T' || type == 'n');
	case RQ_EXECUTE:
		if (type == 'C' || type == 'I' || type == 's')
			return true;
		*matches = type != 'Z' && type != '1' && type != '2' && type != '3';
		return false;
	case RQ_SYNC:
	case RQ_QUERY:
	case RQ_FUNCTION:
		return type == 'Z';
	case RQ_SYNTH:
		break;
	}
	*matches = false;
	return false;
}

void replyq_on_message(struct replyq *q, uint8_t type, struct replyq_reply *out)
{
	memset(out, 0, sizeof(*out));
	if (type == 'N' || type == 'S' || type == 'A') {
		out->verdict = REPLYQ_FORWARD;
		return;
	}
	if (q->count == 0 || replyq_head(q)->kind == RQ_SYNTH) {
		out->verdict = REPLYQ_LOST;
		return;
	}
	struct replyq_entry *e = replyq_head(q);
	out->kind = (enum replyq_kind)e->kind;
	out->own = e->own;
	out->stmt_id = e->stmt_id;
	out->name = (const char *)q->data.data + e->data_off;
	out->name_len = e->data_len;
	if (type == 'E' && e->kind != RQ_QUERY && e->kind != RQ_FUNCTION && e->kind != RQ_SYNC) {
		/* The client hears of a failure even in pgsluice's own Parse: its Bind fails. */
		out->verdict = REPLYQ_FORWARD;
		out->failed_parse = e->kind == RQ_PARSE && !e->duplicate;
		replyq_pop(q);
		replyq_skip_to_sync(q);
		return;
	}
	bool matches;
	bool done = replyq_completes(e, type, &matches);
	if (!matches) {
		out->verdict = REPLYQ_LOST;
		return;
	}
	out->verdict = e->own ? REPLYQ_SWALLOW : REPLYQ_FORWARD;
	if (done)
		replyq_pop(q);
}

bool replyq_take_synth(struct replyq *q, const uint8_t **msg, size_t *len)
{
	if (q->count == 0 || replyq_head(q)->kind != RQ_SYNTH)
		return false;
	struct replyq_entry *e = replyq_head(q);
	*msg = q->data.data + e->data_off;
	*len = e->data_len;
	/* A reset keeps the memory: the bytes stay where they are until the next push. */
	replyq_pop(q);
	return true;
}
