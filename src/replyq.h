/*
 * replyq.h - the replies a server owes for what was sent to it, in order,
 * so that pgsluice can answer some messages itself in the right place.
 *
 * Under transaction pooling pgsluice renames prepared statements, prepares
 * them on demand and answers a client's Parse or Close of a shared
 * statement itself. Every message sent to the server pushes the reply it
 * will get; each server message is matched against the head. Answers
 * pgsluice makes itself (synthetic entries) go to the client when they reach
 * the head; replies to messages pgsluice injected are swallowed. After an
 * ErrorResponse the server ignores everything up to the next Sync, and so
 * does the queue. Bounded: the client waits while the queue is full.
 */
#ifndef PGSLUICE_REPLYQ_H
#define PGSLUICE_REPLYQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define REPLYQ_MAX 256
/* Longest statement name kept for errors, and largest synthetic answer: with
 * REPLYQ_MAX entries the data buffer cannot overflow. */
#define REPLYQ_NAME_MAX 255
#define REPLYQ_SYNTH_MAX 1024
#define REPLYQ_DATA_LIMIT (REPLYQ_MAX * REPLYQ_SYNTH_MAX)

enum replyq_kind {
	RQ_PARSE,           /* ParseComplete */
	RQ_BIND,            /* BindComplete */
	RQ_DESCRIBE_STMT,   /* ParameterDescription, then RowDescription or NoData */
	RQ_DESCRIBE_PORTAL, /* RowDescription or NoData */
	RQ_EXECUTE,         /* rows or COPY, then CommandComplete / EmptyQuery / PortalSuspended */
	RQ_CLOSE,           /* CloseComplete */
	RQ_SYNC,            /* ReadyForQuery */
	RQ_QUERY,           /* anything, then ReadyForQuery (errors do not end it) */
	RQ_FUNCTION,        /* FunctionCallResponse or an error, then ReadyForQuery */
	RQ_SYNTH,           /* pgsluice's own answer, sent when it reaches the head */
};

struct replyq_entry {
	uint8_t kind;       /* enum replyq_kind */
	bool own;           /* injected by pgsluice: its reply is swallowed */
	bool half;          /* RQ_DESCRIBE_STMT: ParameterDescription seen */
	bool duplicate;     /* RQ_PARSE of a name in use: its error leaves the statement */
	uint64_t stmt_id;   /* the shared statement the message names, 0 none */
	uint32_t data_off, data_len; /* the client's statement name, or the synthetic bytes */
};

struct replyq {
	struct replyq_entry ring[REPLYQ_MAX];
	uint32_t head, count;
	bool skipping;      /* an error: the server ignores messages up to the next Sync */
	struct obuf data;
};

enum replyq_verdict {
	REPLYQ_FORWARD, /* a reply the client is owed */
	REPLYQ_SWALLOW, /* the reply to pgsluice's own message */
	REPLYQ_LOST,    /* matches nothing sent: the tracking is wrong */
};

/* What one server message answered. name is valid until the next call. */
struct replyq_reply {
	enum replyq_verdict verdict;
	uint64_t stmt_id;   /* the shared statement of the answered message, 0 none */
	const char *name;   /* the client's name for it (not NUL-terminated) */
	uint32_t name_len;
	enum replyq_kind kind;
	bool own;           /* pgsluice sent the answered message */
	bool failed_parse;  /* an ErrorResponse to a Parse that created nothing: the
			     * server lacks stmt_id (not for a duplicate's Parse) */
};

/* Empties q / frees its buffer. */
void replyq_init(struct replyq *q);
void replyq_free(struct replyq *q);

/* Forgets everything (the server is reset or handed to another client). */
void replyq_clear(struct replyq *q);

/* True when nothing is owed: a synthetic answer can go to the client at once. */
static inline bool replyq_idle(const struct replyq *q)
{
	return q->count == 0 && !q->skipping;
}

/* Room for n more entries. */
static inline bool replyq_has_room(const struct replyq *q, uint32_t n)
{
	return REPLYQ_MAX - q->count >= n;
}

/*
 * A message of kind was sent to the server. own: pgsluice injected it.
 * stmt_id and name (len bytes, may be NULL; kept up to REPLYQ_NAME_MAX) tie
 * it to a client's statement for errors. Returns false when there is no
 * room (check first).
 */
bool replyq_push(struct replyq *q, enum replyq_kind kind, bool own, uint64_t stmt_id,
		 const char *name, size_t name_len);

/* Marks the entry pushed last as a Parse of a name already in use. */
void replyq_mark_duplicate(struct replyq *q);

/* An answer pgsluice makes itself (at most REPLYQ_SYNTH_MAX bytes), queued
 * behind what is owed (copied). */
bool replyq_push_synth(struct replyq *q, const void *msg, size_t len);

/* Matches one server message of type (its first byte) to what is owed. */
void replyq_on_message(struct replyq *q, uint8_t type, struct replyq_reply *out);

/*
 * The synthetic answer at the head, if any: *msg and *len (valid until the next
 * call) and pops it. Returns false when the head is not one.
 */
bool replyq_take_synth(struct replyq *q, const uint8_t **msg, size_t *len);

#endif
