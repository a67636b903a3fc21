/*
 * inflight.h - the statements a server is running for its client, in order.
 *
 * The client side pushes one entry per statement it forwards (each
 * statement of a simple Query, each Execute) and one end-of-request marker
 * per Query/Sync/FunctionCall; the server side pops an entry per
 * CommandComplete, EmptyQueryResponse, PortalSuspended or ErrorResponse and
 * the marker with ReadyForQuery. A statement's time runs from when it was
 * sent or when the previous one finished, whichever is later: the server
 * runs them one after the other. Texts and parameters are copied into one
 * buffer per server that is emptied whenever nothing is in flight.
 */
#ifndef PGSLUICE_INFLIGHT_H
#define PGSLUICE_INFLIGHT_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "prepared.h"

/* Statements and markers one server may have in flight; more are not timed. */
#define INFLIGHT_MAX 128
/* Bytes of texts and parameters kept per server. */
#define INFLIGHT_TEXT_LIMIT (4u << 20)

struct inflight_entry {
	bool marker;           /* the end of a request, not a statement */
	bool extended;         /* run by Execute (may have parameters) */
	bool params_binary;    /* a parameter was sent in binary format */
	bool params_kept;      /* the values are in the buffer */
	uint16_t n_params;
	uint32_t n_types;
	size_t text_off, text_len;     /* text_len 0: unknown */
	size_t params_off, params_len; /* values serialized as in prepared.h */
	size_t types_off;              /* n_types u32 OIDs */
	ev_tstamp sent;
	uint64_t rows;
};

struct inflight {
	struct inflight_entry ring[INFLIGHT_MAX];
	uint32_t head, count;
	bool lost;             /* the ring overflowed: nothing is timed until it drains */
	ev_tstamp last_done;   /* when the previous statement finished */
	struct obuf data;
};

/* A finished statement, valid until the next call on the queue. */
struct inflight_done {
	const struct inflight_entry *entry;
	const char *text;     /* NULL when unknown */
	size_t text_len;
	const uint8_t *params; /* serialized values, or NULL */
	const uint8_t *types;  /* n_types OIDs in host order, unaligned: memcpy them */
	ev_tstamp start, end;
	uint64_t rows;
};

/* Empties q (at server creation) / frees its buffer. */
void inflight_init(struct inflight *q);
void inflight_free(struct inflight *q);

/* A simple Query of len bytes: one entry per statement, then a marker. */
void inflight_push_query(struct inflight *q, const char *sql, size_t len, ev_tstamp now);

/* An Execute of st (NULL: unknown) with the values of bind. */
void inflight_push_execute(struct inflight *q, const struct prepared_stmt *st,
			   const struct prepared_bind *bind, ev_tstamp now);

/* A Sync or FunctionCall: the end of a request. */
void inflight_push_marker(struct inflight *q, ev_tstamp now);

/* A DataRow of the statement at the head. */
void inflight_on_row(struct inflight *q);

/*
 * The statement at the head finished at now (rows from its command tag, or
 * UINT64_MAX to use the DataRow count): fills *out and pops it. Returns
 * false when no statement is at the head (nothing tracked).
 */
bool inflight_finish(struct inflight *q, ev_tstamp now, uint64_t rows, struct inflight_done *out);

/* After an error: the server skips the request's remaining statements. */
void inflight_skip_request(struct inflight *q);

/*
 * ReadyForQuery: pops through the request's marker. idle: the server owes
 * no other ReadyForQuery, so the queue starts over (after an overflow too).
 */
void inflight_on_ready(struct inflight *q, bool idle);

/* Forgets everything (the server is reset or handed to another client). */
void inflight_clear(struct inflight *q);

#endif
