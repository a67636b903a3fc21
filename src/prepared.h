/*
 * prepared.h - what a client prepared and bound (extended protocol): its
 * named statements, which transaction pooling prepares on whichever server
 * runs them (pstmt.c), and the texts and values that the slow-query log
 * names and explains.
 *
 * A named statement refers to the worker's registry (stmtreg.h), which owns
 * its text and types; a client holds at most max_named of them. The unnamed
 * statement's text is copied (up to PREPARED_TEXT_MAX bytes). The last Bind
 * keeps its portal, its statement and its parameter values until the next.
 */
#ifndef PGSLUICE_PREPARED_H
#define PGSLUICE_PREPARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "stmtreg.h"

#define PREPARED_TEXT_MAX (64u << 10)
/* Bytes of parameter values a Bind may keep for EXPLAIN and the log. */
#define PREPARED_PARAMS_MAX (64u << 10)

struct prepared_stmt {
	char *name;        /* "" for the unnamed statement */
	char *text;        /* NULL when unknown; the registry's for a named one */
	uint32_t text_len;
	uint32_t n_types;
	uint32_t *types;   /* parameter type OIDs of the Parse, 0 = unspecified */
	uint64_t version;  /* changes whenever the statement is parsed again */
	struct stmt_def *def; /* named statements: the shared statement */
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
	struct stmtreg *reg;
	struct prepared_stmt unnamed;
	struct prepared_stmt **named;
	size_t n_named, max_named;
	uint64_t next_version;
	struct prepared_bind bind;
};

enum prepared_parse {
	PREPARED_PARSED,    /* recorded */
	PREPARED_EXISTS,    /* the name is taken: PostgreSQL refuses such a Parse (42P05) */
	PREPARED_TOO_MANY,  /* the client holds max_named statements already */
	PREPARED_MALFORMED, /* not a valid Parse body */
	PREPARED_NO_MEMORY,
};

/* Empties ps (at client creation): up to max_named named statements in reg. */
void prepared_init(struct prepared_set *ps, struct stmtreg *reg, size_t max_named);

/* Frees everything ps holds. */
void prepared_free(struct prepared_set *ps);

/* The parts of a Parse message body (len bytes after the header); false when malformed. */
bool prepared_read_parse(const uint8_t *body, size_t len, const char **name, const char **text,
			 const uint8_t **types, uint16_t *n_types);

/*
 * A Parse message body (len bytes after the header): remembers its
 * statement; *out (may be NULL) receives it on PREPARED_PARSED and the
 * existing one on PREPARED_EXISTS.
 */
enum prepared_parse prepared_on_parse(struct prepared_set *ps, const uint8_t *body, size_t len,
				      struct prepared_stmt **out);

/* The named statement name (NUL-terminated), or NULL. */
struct prepared_stmt *prepared_lookup(const struct prepared_set *ps, const char *name);

/* Forgets the named statement name, if any (Close, DEALLOCATE, a failed Parse). */
void prepared_forget(struct prepared_set *ps, const char *name);

/* Forgets every named statement (DEALLOCATE ALL, DISCARD ALL). */
void prepared_forget_all(struct prepared_set *ps);

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
