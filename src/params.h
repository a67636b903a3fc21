/*
 * params.h - session parameter sets (client_encoding, TimeZone, ...).
 *
 * A client's set is what it asked for at startup plus what the server
 * reported while it was linked; a server's set is what it runs with now.
 * When a client is linked to a server whose set differs, params_sync_sql()
 * writes the SET/RESET statements that make the server match. A 64-bit
 * order-independent hash makes the common "already equal" check one compare.
 * A set is a handle to a reference-counted block that copies share until one
 * of them changes (copy on write), so that thousands of clients with the same
 * settings hold them once.
 */
#ifndef PGSLUICE_PARAMS_H
#define PGSLUICE_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Most parameters one set holds; more is refused (bounded per connection). */
#define PARAMS_MAX 64
/* Longest name and value accepted. */
#define PARAMS_MAX_NAME 64
#define PARAMS_MAX_VALUE 1024

struct param {
	char *name;        /* spelled as the server reports it, else as given; one
			    * allocation with the value after the name's NUL */
	const char *value; /* inside name's allocation */
	uint64_t hash;     /* of lower(name) '=' value; 0 for unsyncable names */
	bool reported;     /* the server reports changes with ParameterStatus */
	bool sql;          /* value is SQL as a client's SET wrote it: synced unquoted */
};

/*
 * The items of a set, shared by every struct params copied from the one that
 * made it and never changed while shared: a mutation copies it first. Clients
 * with the same settings hold one block between them.
 */
struct params_block {
	uint32_t refs;      /* struct params pointing here */
	uint16_t n, cap;    /* items used, items allocated */
	uint64_t sync_hash; /* XOR of the items' hashes */
	struct param items[];
};

/* A handle to a set; a copy costs a reference, not the items. */
struct params {
	struct params_block *b; /* NULL: the empty set */
};

/* An empty set. */
void params_init(struct params *ps);

/* Drops ps's reference; the set is empty afterwards. */
void params_free(struct params *ps);

/* Makes dst the same set as src (shared until either changes). */
void params_copy(struct params *dst, const struct params *src);

/* The number of parameters in ps. */
static inline uint16_t params_count(const struct params *ps)
{
	return ps->b != NULL ? ps->b->n : 0;
}

/* Parameter i of ps (i < params_count(ps)), in no particular order. */
static inline const struct param *params_at(const struct params *ps, uint16_t i)
{
	return &ps->b->items[i];
}

/* The order-independent hash of ps's syncable parameters (0 when there are none). */
static inline uint64_t params_hash(const struct params *ps)
{
	return ps->b != NULL ? ps->b->sync_hash : 0;
}

/*
 * true when a and b hold the same names (any case) with the same values,
 * written the same way (params_set_sql or not).
 */
bool params_equal(const struct params *a, const struct params *b);

/*
 * Sets name (case-insensitive) to value, adding it when absent. reported
 * marks a value that came in a ParameterStatus. Returns false when the set
 * is full or name/value is too long.
 */
bool params_set(struct params *ps, const char *name, const char *value, bool reported);

/*
 * Sets name to value, SQL as it followed "SET name TO" in a client's own
 * statement (a list, a quoted string, ...): synced as written. Returns
 * false as params_set.
 */
bool params_set_sql(struct params *ps, const char *name, const char *value);

/* Whether name is in ps and reported by the server (ParameterStatus). */
bool params_is_reported(const struct params *ps, const char *name);

/* Removes name (case-insensitive) if present; false when memory ran out. */
bool params_remove(struct params *ps, const char *name);

/* The value of name (case-insensitive), or NULL. */
const char *params_get(const struct params *ps, const char *name);

/* true when the two sets need no SET to match (hash compare). */
static inline bool params_in_sync(const struct params *want, const struct params *have)
{
	return params_hash(want) == params_hash(have);
}

/*
 * Appends to sql the statements that turn have into want: SET for each
 * syncable parameter whose value differs, RESET for each parameter have
 * carries that want does not. Returns the number of statements written.
 */
size_t params_sync_sql(const struct params *want, const struct params *have, struct obuf *sql);

/* Applies what params_sync_sql wrote to have, for parameters the server does
 * not report back (the reported ones arrive as ParameterStatus). */
void params_apply_sync(const struct params *want, struct params *have);

/*
 * Adds the settings of a startup "options" value (-c name=value,
 * --name=value; backslash escapes a space). Returns NULL on success, else
 * a reason.
 */
const char *params_add_options(struct params *ps, const char *options);

/* true for parameters that describe the server and are never SET. */
bool params_is_server_fixed(const char *name);

#endif
