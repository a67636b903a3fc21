/*
 * pstmt.c - named prepared statements shared by servers under transaction
 * pooling (see pstmt.h): the client-side rewriting and the server-side
 * matching of replies.
 */
#include "pstmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "log.h"
#include "prepared.h"
#include "proto.h"
#include "replyq.h"
#include "stmtcache.h"
#include "stmtreg.h"

/* Entries one client message may add: an eviction's Close, a Parse, the message. */
#define PSTMT_ENTRIES_PER_MESSAGE 3

struct prepared_set *pstmt_client_set(struct worker *w, struct client *c)
{
	if (c->prepared == NULL) {
		c->prepared = malloc(sizeof(*c->prepared));
		if (c->prepared != NULL)
			prepared_init(c->prepared, &w->statements,
				      (size_t)w->cfg->max_client_prepared_statements);
	}
	return c->prepared;
}

static struct replyq *pstmt_replies(struct server *s)
{
	if (s->replies == NULL) {
		s->replies = malloc(sizeof(*s->replies));
		if (s->replies != NULL)
			replyq_init(s->replies);
	}
	return s->replies;
}

/* Sends bytes pgsluice answers itself, after everything the server owes before them. */
static void pstmt_answer(struct client *c, struct replyq *q, const uint8_t *msg, size_t len)
{
	if (replyq_idle(q)) {
		conn_adopt_pending(&c->conn);
		obuf_put(&c->conn.out, msg, len);
	} else if (!replyq_push_synth(q, msg, len)) {
		/* Only a full data buffer gets here: the client cannot be answered in order. */
		c->closing_after_flush = true;
		log_warning("client %s: too many answers pending; closing", c->addr);
	}
}

void pstmt_client_answer(struct client *c, struct server *s, const uint8_t *msg, size_t len)
{
	if (s != NULL && s->replies != NULL) {
		pstmt_answer(c, s->replies, msg, len);
		return;
	}
	conn_adopt_pending(&c->conn);
	obuf_put(&c->conn.out, msg, len);
}

static void pstmt_answer_code(struct client *c, struct replyq *q, uint8_t type)
{
	const uint8_t msg[5] = {type, 0, 0, 0, 4};
	pstmt_answer(c, q, msg, sizeof(msg));
}

/* Answers an error in place; the rest of the request up to Sync is dropped, as a server would. */
static enum conn_action pstmt_fail(struct client *c, struct replyq *q, const char *sqlstate,
				   const char *message)
{
	struct obuf err;
	obuf_init(&err, 4096);
	proto_put_error(&err, false, sqlstate, message, NULL, NULL);
	pstmt_answer(c, q, err.data, err.len);
	obuf_free(&err);
	c->skip_to_sync = true;
	return CONN_SKIP;
}

/* Prepares def on s under its shared name (out of order is fine: nothing else uses it). */
static void pstmt_send_parse(struct server *s, struct replyq *q, const struct stmt_def *def,
			     bool own, const char *client_name)
{
	char name[STMTREG_NAME_MAX];
	uint64_t evicted;
	if (stmtcache_add(&s->statements, def->id, &evicted)) {
		/* Bounded server memory: the least recently used statement goes first. */
		stmtreg_name(evicted, name);
		obuf_msg_begin(&s->conn.out, 'C');
		obuf_put_u8(&s->conn.out, 'S');
		obuf_put_str(&s->conn.out, name);
		obuf_msg_end(&s->conn.out);
		replyq_push(q, RQ_CLOSE, true, 0, NULL, 0);
	}
	stmtreg_name(def->id, name);
	obuf_msg_begin(&s->conn.out, 'P');
	obuf_put_str(&s->conn.out, name);
	obuf_put(&s->conn.out, def->text, def->text_len + 1);
	obuf_put_u16(&s->conn.out, def->n_types);
	for (uint16_t i = 0; i < def->n_types; i++)
		obuf_put_u32(&s->conn.out, def->types[i]);
	obuf_msg_end(&s->conn.out);
	replyq_push(q, RQ_PARSE, own, def->id, client_name, strlen(client_name));
}

/*
 * The client's statement name (NUL-terminated in the message), prepared on
 * s if s lacks it, with its server-side name in server_name; NULL when the
 * client has no such statement: the message then goes as it is (*act).
 */
static struct prepared_stmt *pstmt_resolve(struct client *c, struct server *s, struct replyq *q,
					   const char *name, char server_name[STMTREG_NAME_MAX],
					   enum conn_action *act)
{
	struct prepared_stmt *st = c->prepared != NULL ? prepared_lookup(c->prepared, name) : NULL;
	if (st == NULL) {
		/* The server gives PostgreSQL's own error (or finds an SQL PREPARE of it). */
		*act = CONN_FORWARD;
		return NULL;
	}
	conn_adopt_pending(&s->conn);
	if (!stmtcache_touch(&s->statements, st->def->id))
		pstmt_send_parse(s, q, st->def, true, st->name);
	stmtreg_name(st->def->id, server_name);
	return st;
}

/*
 * A Parse of a name the client uses: the server parses the new text under
 * the existing statement's name and refuses it as PostgreSQL refuses it
 * (a syntax error first, else 42P05), with the client's name put back.
 */
static enum conn_action pstmt_parse_duplicate(struct client *c, struct server *s,
					      struct replyq *q, struct prepared_stmt *st,
					      const uint8_t *msg, uint32_t total)
{
	char server_name[STMTREG_NAME_MAX];
	enum conn_action act;
	pstmt_resolve(c, s, q, st->name, server_name, &act);
	size_t old_len = strlen(st->name) + 1, new_len = strlen(server_name) + 1;
	const uint8_t *rest = msg + PROTO_HEADER_LEN + old_len;
	obuf_put_u8(&s->conn.out, 'P');
	obuf_put_u32(&s->conn.out, (uint32_t)(total - 1 - old_len + new_len));
	obuf_put(&s->conn.out, server_name, new_len);
	obuf_put(&s->conn.out, rest, (size_t)(msg + total - rest));
	replyq_push(q, RQ_PARSE, false, st->def->id, st->name, old_len - 1);
	replyq_mark_duplicate(q);
	return CONN_CONSUMED;
}

static enum conn_action pstmt_on_parse(struct worker *w, struct client *c, struct server *s,
				       struct replyq *q, const uint8_t *msg, uint32_t total,
				       uint32_t avail)
{
	const uint8_t *body = msg + PROTO_HEADER_LEN;
	const char *name = memchr(body, 0, avail - PROTO_HEADER_LEN) != NULL ? (const char *)body
									  : NULL;
	if (name != NULL && name[0] == '\0' && avail < total) {
		replyq_push(q, RQ_PARSE, false, 0, NULL, 0);
		return CONN_FORWARD; /* a long unnamed statement streams through */
	}
	if (avail < total) {
		if (total <= w->iobufs.size)
			return CONN_NEED_ALL;
		return pstmt_fail(c, q, "54000",
				  "prepared statement text too long for transaction pooling "
				  "(at most pkt_buf bytes)");
	}
	struct prepared_set *ps = pstmt_client_set(w, c);
	if (ps == NULL)
		return pstmt_fail(c, q, "53200", "out of memory");
	struct prepared_stmt *st = NULL;
	char text[160];
	switch (prepared_on_parse(ps, body, total - PROTO_HEADER_LEN, &st)) {
	case PREPARED_MALFORMED:
		break; /* the server answers it as it should */
	case PREPARED_EXISTS:
		return pstmt_parse_duplicate(c, s, q, st, msg, total);
	case PREPARED_TOO_MANY:
		snprintf(text, sizeof(text),
			 "too many prepared statements (max_client_prepared_statements = %d)",
			 w->cfg->max_client_prepared_statements);
		return pstmt_fail(c, q, "54000", text);
	case PREPARED_NO_MEMORY:
		return pstmt_fail(c, q, "53200", "out of memory");
	case PREPARED_PARSED:
		if (st->def == NULL)
			break; /* the unnamed statement */
		if (stmtcache_touch(&s->statements, st->def->id)) {
			pstmt_answer_code(c, q, '1');
			return CONN_CONSUMED;
		}
		conn_adopt_pending(&s->conn);
		pstmt_send_parse(s, q, st->def, false, st->name);
		return CONN_CONSUMED;
	}
	replyq_push(q, RQ_PARSE, false, 0, NULL, 0);
	return CONN_FORWARD;
}

enum conn_action pstmt_parse_unlinked(struct worker *w, struct client *c, const uint8_t *msg,
				      uint32_t total, const uint8_t *end)
{
	const uint8_t *sync = msg + total;
	if (end - sync < PROTO_HEADER_LEN || sync[0] != 'S' || proto_get_u32(sync + 1) != 4)
		return CONN_FORWARD;
	const char *name, *text;
	const uint8_t *types;
	uint16_t n_types;
	if (!prepared_read_parse(msg + PROTO_HEADER_LEN, total - PROTO_HEADER_LEN, &name, &text,
				 &types, &n_types) ||
	    name[0] == '\0' || types + 4u * n_types != sync)
		return CONN_FORWARD; /* the server judges anything else */
	/* PostgreSQL accepted this text with these types: its Parse would succeed. */
	const struct stmt_def *def =
		stmtreg_find(&w->statements, text, strlen(text), types, n_types);
	if (def == NULL || !def->parsed)
		return CONN_FORWARD;
	struct prepared_set *ps = pstmt_client_set(w, c);
	if (ps == NULL || prepared_lookup(ps, name) != NULL ||
	    prepared_on_parse(ps, msg + PROTO_HEADER_LEN, total - PROTO_HEADER_LEN, NULL) !=
		    PREPARED_PARSED)
		return CONN_FORWARD; /* the usual path gives the error */
	static const uint8_t parse_complete[] = {'1', 0, 0, 0, 4};
	pstmt_client_answer(c, NULL, parse_complete, sizeof(parse_complete));
	c->sync_answered = true;
	return CONN_CONSUMED;
}

static enum conn_action pstmt_on_bind(struct worker *w, struct client *c, struct server *s,
				      struct replyq *q, const uint8_t *msg, uint32_t total,
				      uint32_t avail)
{
	const uint8_t *p = msg + PROTO_HEADER_LEN, *end = msg + avail;
	const char *portal = proto_take_string(&p, end);
	const char *name = portal != NULL ? proto_take_string(&p, end) : NULL;
	if (name == NULL) {
		if (avail < total && total <= w->iobufs.size)
			return CONN_NEED_ALL;
		if (avail == total) {
			replyq_push(q, RQ_BIND, false, 0, NULL, 0);
			return CONN_FORWARD; /* malformed: the server says so */
		}
		return pstmt_fail(c, q, "08P01", "Bind message names too long");
	}
	if (name[0] == '\0') {
		replyq_push(q, RQ_BIND, false, 0, NULL, 0);
		return CONN_FORWARD;
	}
	enum conn_action act = CONN_SKIP;
	char server_name[STMTREG_NAME_MAX];
	struct prepared_stmt *st = pstmt_resolve(c, s, q, name, server_name, &act);
	if (st == NULL) {
		replyq_push(q, RQ_BIND, false, 0, NULL, 0);
		return act;
	}
	size_t portal_len = strlen(portal) + 1, old_len = strlen(name) + 1;
	size_t new_len = strlen(server_name) + 1;
	uint32_t head = (uint32_t)(PROTO_HEADER_LEN + portal_len + old_len);
	obuf_put_u8(&s->conn.out, 'B');
	obuf_put_u32(&s->conn.out, (uint32_t)(total - 1 - old_len + new_len));
	obuf_put(&s->conn.out, portal, portal_len);
	obuf_put(&s->conn.out, server_name, new_len);
	replyq_push(q, RQ_BIND, false, st->def->id, name, old_len - 1);
	c->conn.tail_from = head;
	return CONN_FORWARD_TAIL;
}

static enum conn_action pstmt_on_describe(struct client *c, struct server *s, struct replyq *q,
					  const uint8_t *msg, uint32_t total, uint32_t avail)
{
	if (avail < total)
		return CONN_NEED_ALL;
	const uint8_t *p = msg + PROTO_HEADER_LEN + 1, *end = msg + total;
	const char *name = total > PROTO_HEADER_LEN ? proto_take_string(&p, end) : NULL;
	bool statement = total > PROTO_HEADER_LEN && msg[PROTO_HEADER_LEN] == 'S';
	if (name == NULL || !statement || name[0] == '\0') {
		replyq_push(q, statement ? RQ_DESCRIBE_STMT : RQ_DESCRIBE_PORTAL, false, 0, NULL, 0);
		return CONN_FORWARD;
	}
	enum conn_action act = CONN_SKIP;
	char server_name[STMTREG_NAME_MAX];
	struct prepared_stmt *st = pstmt_resolve(c, s, q, name, server_name, &act);
	if (st == NULL) {
		replyq_push(q, RQ_DESCRIBE_STMT, false, 0, NULL, 0);
		return act;
	}
	obuf_msg_begin(&s->conn.out, 'D');
	obuf_put_u8(&s->conn.out, 'S');
	obuf_put_str(&s->conn.out, server_name);
	obuf_msg_end(&s->conn.out);
	replyq_push(q, RQ_DESCRIBE_STMT, false, st->def->id, name, strlen(name));
	return CONN_CONSUMED;
}

static enum conn_action pstmt_on_close(struct client *c, struct replyq *q, const uint8_t *msg,
				       uint32_t total, uint32_t avail)
{
	if (avail < total)
		return CONN_NEED_ALL;
	const uint8_t *p = msg + PROTO_HEADER_LEN + 1, *end = msg + total;
	const char *name = total > PROTO_HEADER_LEN ? proto_take_string(&p, end) : NULL;
	if (name == NULL || msg[PROTO_HEADER_LEN] != 'S' || name[0] == '\0') {
		replyq_push(q, RQ_CLOSE, false, 0, NULL, 0);
		return CONN_FORWARD;
	}
	/* The server's copy stays for other clients; closing a missing name is no error. */
	if (c->prepared != NULL)
		prepared_forget(c->prepared, name);
	pstmt_answer_code(c, q, '3');
	return CONN_CONSUMED;
}

enum conn_action pstmt_on_client_message(struct worker *w, struct client *c, struct server *s,
					 const uint8_t *msg, uint32_t total, uint32_t avail)
{
	struct replyq *q = pstmt_replies(s);
	if (q == NULL) {
		client_fatal(w, c, "53200", "out of memory");
		return CONN_GONE;
	}
	uint8_t type = msg[0];
	if (c->skip_to_sync && type != 'S')
		return CONN_SKIP;
	if (!replyq_has_room(q, PSTMT_ENTRIES_PER_MESSAGE)) {
		c->waits_for_replies = true;
		return CONN_STOP;
	}
	switch (type) {
	case 'P':
		return pstmt_on_parse(w, c, s, q, msg, total, avail);
	case 'B':
		return pstmt_on_bind(w, c, s, q, msg, total, avail);
	case 'D':
		return pstmt_on_describe(c, s, q, msg, total, avail);
	case 'C':
		return pstmt_on_close(c, q, msg, total, avail);
	case 'E':
		replyq_push(q, RQ_EXECUTE, false, 0, NULL, 0);
		return CONN_FORWARD;
	case 'S':
		c->skip_to_sync = false;
		replyq_push(q, RQ_SYNC, false, 0, NULL, 0);
		return CONN_FORWARD;
	case 'Q':
		replyq_push(q, RQ_QUERY, false, 0, NULL, 0);
		return CONN_FORWARD;
	case 'F':
		replyq_push(q, RQ_FUNCTION, false, 0, NULL, 0);
		return CONN_FORWARD;
	default: /* Flush, COPY data: no reply of their own */
		return CONN_FORWARD;
	}
}

bool pstmt_replay_fits(const uint8_t *data, size_t len)
{
	size_t n = 0, off = 0;
	uint32_t total;
	while (proto_next_message(data, len, &off, &total) != NULL)
		n++;
	return n * PSTMT_ENTRIES_PER_MESSAGE <= REPLYQ_MAX;
}

bool pstmt_replay(struct worker *w, struct client *c, struct server *s, const uint8_t *data,
		  size_t len)
{
	size_t off = 0;
	uint32_t total;
	for (const uint8_t *msg; (msg = proto_next_message(data, len, &off, &total)) != NULL;) {
		switch (pstmt_on_client_message(w, c, s, msg, total, total)) {
		case CONN_GONE:
			return false;
		case CONN_FORWARD:
			obuf_put(&s->conn.out, msg, total);
			break;
		case CONN_FORWARD_TAIL:
			obuf_put(&s->conn.out, msg + c->conn.tail_from, total - c->conn.tail_from);
			break;
		default: /* answered or written by pstmt.c */
			break;
		}
	}
	return true;
}

/* An error naming pgsluice's statement, with the client's name in its place. */
static bool pstmt_rename_error(struct obuf *out, const uint8_t *msg, uint32_t total,
			       uint64_t id, const char *name, size_t name_len)
{
	char server_name[STMTREG_NAME_MAX], quoted[STMTREG_NAME_MAX + 2];
	stmtreg_name(id, server_name);
	int n = snprintf(quoted, sizeof(quoted), "\"%s\"", server_name);
	const uint8_t *body = msg + PROTO_HEADER_LEN, *end = msg + total;
	if (memmem(body, (size_t)(end - body), quoted, (size_t)n) == NULL)
		return false;
	obuf_msg_begin(out, 'E');
	for (const uint8_t *p = body; p < end;) {
		const uint8_t *hit = memmem(p, (size_t)(end - p), quoted, (size_t)n);
		if (hit == NULL) {
			obuf_put(out, p, (size_t)(end - p));
			break;
		}
		obuf_put(out, p, (size_t)(hit - p));
		obuf_put_u8(out, '"');
		obuf_put(out, name, name_len);
		obuf_put_u8(out, '"');
		p = hit + n;
	}
	obuf_msg_end(out);
	return true;
}

/* Sends the answers pgsluice queued behind the reply just handled. */
static void pstmt_drain(struct client *c, struct replyq *q)
{
	const uint8_t *synth;
	size_t len;
	while (replyq_take_synth(q, &synth, &len))
		obuf_put(&c->conn.out, synth, len);
}

/* The client's name in reply r, NUL-terminated; false when c has none or it does not fit. */
static bool pstmt_reply_name(const struct client *c, const struct replyq_reply *r, char *name,
			     size_t cap)
{
	if (c->prepared == NULL || r->name_len == 0 || r->name_len >= cap)
		return false;
	memcpy(name, r->name, r->name_len);
	name[r->name_len] = '\0';
	return true;
}

/* A server accepted the Parse of a shared statement: its text and types are valid. */
static void pstmt_note_parsed(const struct client *c, const struct replyq_reply *r)
{
	char name[256];
	if (!pstmt_reply_name(c, r, name, sizeof(name)))
		return;
	struct prepared_stmt *st = prepared_lookup(c->prepared, name);
	if (st != NULL && st->def != NULL && st->def->id == r->stmt_id)
		st->def->parsed = true;
}

enum pstmt_verdict pstmt_on_server_message(struct worker *w, struct server *s,
					   const uint8_t *msg, uint32_t total, uint32_t avail)
{
	struct replyq *q = s->replies;
	struct client *c = s->client;
	uint8_t type = msg[0];
	bool synth_next = q->count >= 2 && q->ring[(q->head + 1) % REPLYQ_MAX].kind == RQ_SYNTH;
	if (avail < total && (type == 'E' || (synth_next && type != 'D' && type != 'd')))
		return PSTMT_NEED_ALL;
	struct replyq_reply r;
	replyq_on_message(q, type, &r);
	/* An error with nothing asked (a server terminated between requests) answers nothing. */
	if (r.verdict == REPLYQ_LOST && type == 'E' && q->count == 0 && s->expect_rfq == 0)
		return PSTMT_PASS;
	if (r.verdict != REPLYQ_LOST && type == '1' && r.kind == RQ_PARSE && r.stmt_id != 0)
		pstmt_note_parsed(c, &r);
	if (c->waits_for_replies && replyq_has_room(q, PSTMT_ENTRIES_PER_MESSAGE)) {
		c->waits_for_replies = false;
		client_resume(w, c);
	}
	switch (r.verdict) {
	case REPLYQ_LOST:
		log_warning("server %s: reply '%c' matches no request; statement tracking reset",
			    s->addr, type >= 32 ? type : '?');
		replyq_clear(q);
		return PSTMT_PASS;
	case REPLYQ_SWALLOW:
		if (replyq_idle(q) || q->ring[q->head].kind != RQ_SYNTH)
			return PSTMT_SWALLOW;
		conn_adopt_pending(&c->conn);
		pstmt_drain(c, q);
		return PSTMT_SWALLOW;
	case REPLYQ_FORWARD:
		break;
	}
	if (r.failed_parse) {
		stmtcache_remove(&s->statements, r.stmt_id);
		/* A Parse the client sent itself failed: PostgreSQL would not keep the name. */
		char name[256];
		if (!r.own && pstmt_reply_name(c, &r, name, sizeof(name)))
			prepared_forget(c->prepared, name);
	}
	bool synth_now = q->count > 0 && q->ring[q->head].kind == RQ_SYNTH;
	bool rename = type == 'E' && r.stmt_id != 0 && r.name_len > 0;
	if (!synth_now && !rename)
		return PSTMT_PASS;
	conn_adopt_pending(&c->conn);
	if (!rename || !pstmt_rename_error(&c->conn.out, msg, total, r.stmt_id, r.name, r.name_len))
		obuf_put(&c->conn.out, msg, total);
	pstmt_drain(c, q);
	return PSTMT_REPLACED;
}

const char *pstmt_bound_text(struct client *c, const uint8_t *msg, uint32_t avail, size_t *len,
			     struct stmt_def **def)
{
	const uint8_t *p = msg + PROTO_HEADER_LEN, *end = msg + avail;
	const char *portal = proto_take_string(&p, end);
	const char *name = portal != NULL ? proto_take_string(&p, end) : NULL;
	struct prepared_stmt *st =
		name != NULL && c->prepared != NULL ? prepared_lookup(c->prepared, name) : NULL;
	if (st == NULL)
		return NULL;
	*def = st->def;
	*len = st->text_len;
	return st->text;
}

void pstmt_server_unlinked(struct server *s)
{
	if (s->replies != NULL)
		replyq_clear(s->replies);
}

void pstmt_server_forgot(struct server *s)
{
	stmtcache_clear(&s->statements);
}

void pstmt_server_free(struct server *s)
{
	stmtcache_free(&s->statements);
	if (s->replies != NULL) {
		replyq_free(s->replies);
		free(s->replies);
		s->replies = NULL;
	}
}
