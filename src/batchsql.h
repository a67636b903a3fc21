/*
 * batchsql.h - the pure part of insert batching: which requests may join a
 * batch, which batch they join, and the bytes that run a batch.
 *
 * The batching state machine (in the pooler) turns a client's simple Query,
 * or its Parse/Bind/Execute/Sync, into a struct batchsql_row; rows of one
 * group are then written as one multi-row INSERT that fails unless it stored
 * every row (batchsql_build_insert), and when the batch fails each row is
 * re-sent as the client wrote it (batchsql_build_single).
 * No I/O and no global state; a row owns one allocation holding its copies.
 */
#ifndef PGSLUICE_BATCHSQL_H
#define PGSLUICE_BATCHSQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "classify.h"

/* The protocol's limit on the parameters of one statement. */
#define BATCHSQL_MAX_PARAMS 65535u

/* How the client sent its INSERT; rows of different protocols never share a group. */
enum batchsql_protocol {
	BATCHSQL_SIMPLE,   /* one Query message */
	BATCHSQL_EXTENDED, /* Parse(unnamed), Bind(unnamed), Execute(unnamed, 0), Sync */
};

/*
 * One client's candidate INSERT. Everything is owned by the row (one block,
 * released by batchsql_row_free); the fields are read-only for callers.
 */
struct batchsql_row {
	enum batchsql_protocol protocol;
	uint64_t group_key;        /* equal for rows of one group; see batchsql_same_group */
	struct insert_shape shape; /* offsets into sql */
	unsigned n_params;         /* shape.max_param: $1..$n_params, each used once */
	const char *sql;           /* the statement text as the client sent it, NUL-terminated */
	size_t sql_len;            /* without the NUL */
	const char *group;         /* canonical group text (see batchsql.c), NUL-terminated */
	size_t group_len;
	/* Extended protocol only (NULL / 0 for simple rows): */
	uint16_t n_types;         /* type OIDs the client's Parse gave (<= n_params) */
	const uint32_t *types;    /* n_params OIDs, host order, Parse's list padded with 0 */
	const uint16_t *formats;  /* n_params format codes, 0 (text) or 1 (binary) */
	const uint8_t *bind;      /* the client's Bind body, verbatim */
	size_t bind_len;
	size_t values_off;        /* the parameter values (Int32 length, bytes; ...) in bind */
	size_t values_len;
	void *mem;                /* the block everything above points into */
};

/*
 * Fills *row from the text of a simple Query (len bytes, without the
 * message's terminating NUL). True when the text is exactly one single-row
 * INSERT that classify_insert_shape accepts, without parameters and without
 * NUL bytes. Returns false (row zeroed, nothing to free) otherwise or when
 * memory is exhausted.
 */
bool batchsql_candidate_from_query(struct batchsql_row *row, const char *sql, size_t len);

/*
 * Fills *row from an extended-protocol request: sql (len bytes) and the
 * n_types parameter type OIDs (host order) of an unnamed Parse, and the body
 * of the Bind that follows (bind_len bytes, after the 5-byte header). The
 * caller has checked the rest: unnamed statement in Parse, Execute of the
 * unnamed portal with no row limit, then Sync, and nothing else. Returns
 * false (row zeroed) unless the text is a single-row INSERT using each of
 * $1..$n exactly once, Parse gave at most n types, and the Bind is well
 * formed with unnamed portal and statement, 0, 1 or n format codes each 0
 * or 1, exactly n values (length -1 for NULL), only text result formats and
 * no trailing bytes. Never reads outside the given buffers.
 */
bool batchsql_candidate_from_extended(struct batchsql_row *row, const char *sql, size_t len,
				      const uint32_t *param_types, uint16_t n_types,
				      const uint8_t *bind_body, size_t bind_len);

/* What batchsql_scan_extended found in a client's input. */
struct batchsql_request {
	size_t len;           /* bytes from the Parse's type byte to the end of the Sync */
	const uint8_t *bind;  /* the Bind's body (after its 5-byte header) */
	size_t bind_len;
	bool describe;        /* a Describe of the unnamed portal came before the Execute */
};

enum batchsql_scan {
	BATCHSQL_SCAN_NO,   /* not Parse, Bind, [Describe portal ""], Execute("", 0), Sync */
	BATCHSQL_SCAN_YES,  /* exactly that, all of it before end */
	BATCHSQL_SCAN_MORE, /* so far so good: the rest has not arrived */
};

/*
 * Reads the messages of a client's input from the Parse at msg (its type
 * byte; the whole Parse must be before end) up to end, the end of what has
 * arrived. Only the framing and the Describe/Execute/Sync bodies are
 * checked; batchsql_candidate_from_request reads Parse and Bind. Never
 * reads at or past end.
 */
enum batchsql_scan batchsql_scan_extended(const uint8_t *msg, const uint8_t *end,
					  struct batchsql_request *req);

/*
 * Fills *row from a request batchsql_scan_extended accepted (msg at its
 * Parse): true when the Parse names the unnamed statement, is well formed
 * and, with the Bind, makes a candidate (batchsql_candidate_from_extended).
 * Returns false (row zeroed) otherwise or without memory.
 */
bool batchsql_candidate_from_request(struct batchsql_row *row, const uint8_t *msg,
				     const struct batchsql_request *req);

/* Releases what row owns and zeroes it; a zeroed row may be freed again. */
void batchsql_row_free(struct batchsql_row *row);

/*
 * True when a and b may share one multi-row INSERT: same protocol, same
 * table, columns, value count and ON CONFLICT clause (as normalized: case
 * of unquoted names, whitespace and comments do not matter), same
 * parameter types and formats. Compares exactly, so a group_key collision
 * never mixes groups.
 */
bool batchsql_same_group(const struct batchsql_row *a, const struct batchsql_row *b);

/* A batch's size as its rows joined it (batchsql_size_add); {0, 0} when empty. */
struct batchsql_size {
	size_t bytes;  /* a bound of the messages' bytes, not the exact size */
	size_t params; /* parameters so far */
};

/*
 * Counts row into *size when batchsql_build_insert can still take the batch
 * with it (rows of one group, added in order, rows[0] first): its parameters
 * stay within BATCHSQL_MAX_PARAMS and its messages surely fit in byte_limit
 * bytes. For a build into ob, byte_limit is ob->limit - ob->len (obuf counts
 * sent bytes it has not dropped yet). Returns false, *size unchanged, when
 * they would not.
 */
bool batchsql_size_add(struct batchsql_size *size, const struct batchsql_row *row,
		       size_t byte_limit);

/*
 * Appends to ob the messages that run rows[0..n) as one statement
 *   WITH pgsluice_batch AS (INSERT INTO <table> [<columns>]
 *     VALUES (<row 1>),(<row 2>),... [<conflict>] RETURNING 1)
 *   SELECT 1 / (count(*) = <n>)::int FROM pgsluice_batch
 * with table, columns and conflict clause as rows[0] wrote them and each
 * row's values as its client wrote them. It fails (22012) unless all n
 * rows were stored, so that inside a transaction its COMMIT rolls back. Simple rows: one Query message.
 * Extended rows: Parse (unnamed; row k's $i renumbered after the
 * parameters of rows before it; all type OIDs), Bind (unnamed; one format
 * code per parameter; all values; no result formats), Execute (unnamed, no
 * row limit) and Sync - whole messages, type byte and length included.
 * Returns false, with ob as it was, when n is 0, the rows are not one group,
 * the parameters pass BATCHSQL_MAX_PARAMS, or ob's limit (or memory) would
 * be exceeded; false at once when ob->failed is already set.
 */
bool batchsql_build_insert(struct obuf *ob, struct batchsql_row *const *rows, size_t n);

/*
 * Appends row's request as its client sent it, for the one-by-one
 * fallback: Query(sql), or Parse (unnamed, the client's n_types OIDs),
 * Bind (the client's body), Execute (unnamed, no limit) and Sync. Errors
 * then carry the positions and messages the client would have had alone.
 * Returns false, with ob as it was, when ob's limit would be exceeded.
 */
bool batchsql_build_single(struct obuf *ob, const struct batchsql_row *row);

#endif
