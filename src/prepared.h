/*
 * prepared.h - what a client prepared and bound (extended protocol), so that
 * a statement run by Execute can be named in the slow-query log and
 * explained with its parameters.
 *
 * The texts of the unnamed statement and of up to PREPARED_MAX_NAMED named
 * ones are kept per client (each up to PREPARED_TEXT_MAX bytes), with the
 * parameter types of their Parse; the last Bind keeps its portal, its
 * statement and its parameter values (text format) until the next Bind.
 */
#ifndef PGSLUICE_PREPARED_H
#define PGSLUICE_PREPARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PREPARED_MAX_NAMED 256
#define PREPARED_TEXT_MAX (64u << 10)
/* Bytes of parameter values a Bind may keep for EXPLAIN and the log. */
#define PREPARED_PARAMS_MAX (64u << 10)

struct prepared_stmt {
	char *name;        /* "" for the unnamed statement */
	char *text;
	uint32_t text_len;
	uint32_t n_types;
	uint32_t *types;   /* parameter type OIDs of the Parse, 0 = unspecified */
	uint64_t version;  /* changes whenever the statement is parsed again */
};

/* The parameter values of a Bind, serialized: per value a u32 length (UINT32_MAX = NULL) and bytes. */
struct prepared_bind {
	char portal[64];
	const struct prepared_stmt *stmt; /* valid while stmt_version matches */
	uint64_t stmt_version;
	uint16_t n_params;
	bool binary;        /* a value is in binary format: not shown, not explained */
	bool params_kept;   /* values fit in PREPARED_PARAMS_MAX */
	struct obuf values;
};

struct prepared_set {
	struct prepared_stmt unnamed;
	struct prepared_stmt *named[PREPARED_MAX_NAMED];
	size_t n_named;
	uint64_t next_version;
	struct prepared_bind bind;
};

/* Empties ps (at client creation). */
void prepared_init(struct prepared_set *ps);

/* Frees everything ps holds. */
void prepared_free(struct prepared_set *ps);

/* A Parse message body (len bytes after the header): remembers its statement. */
void prepared_on_parse(struct prepared_set *ps, const uint8_t *body, size_t len);

/* A Bind message body: remembers its portal, statement and values. */
void prepared_on_bind(struct prepared_set *ps, const uint8_t *body, size_t len);

/* A Close message body: forgets a closed statement. */
void prepared_on_close(struct prepared_set *ps, const uint8_t *body, size_t len);

/*
 * The statement an Execute of portal (NUL-terminated) runs and the Bind's
 * values, or NULL when unknown (another portal, a statement dropped since).
 */
const struct prepared_stmt *prepared_executed(const struct prepared_set *ps, const char *portal,
					      const struct prepared_bind **bind);

/*
 * Reads value i (0-based) of a serialized value list of n values: *value
 * and *len, *value NULL for SQL NULL. Returns false past the end.
 */
bool prepared_value(const uint8_t *values, size_t size, uint16_t i, const uint8_t **value,
		    uint32_t *len);

#endif
