/*
 * stmtreg.h - the distinct statements clients have prepared (a worker's
 * registry), so that servers can share them under transaction pooling.
 *
 * A statement is its query text plus the parameter type OIDs of its Parse.
 * Every distinct one gets an id that is never reused; servers prepare it
 * under the name "pgsluice_<id>". Clients hold references; a statement no
 * client references stays for a while (up to STMTREG_IDLE_MAX of them, the
 * oldest go first) so that reconnecting clients find the same id and the
 * servers' prepared copies stay useful.
 */
#ifndef PGSLUICE_STMTREG_H
#define PGSLUICE_STMTREG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"

/* Unreferenced statements kept for reuse. */
#define STMTREG_IDLE_MAX 1024
/* Room for "pgsluice_" and a 64-bit id in decimal, NUL included. */
#define STMTREG_NAME_MAX 32

enum stmt_route { STMT_ROUTE_UNKNOWN, STMT_ROUTE_READ, STMT_ROUTE_PRIMARY };

/* Whether a statement's text may change a session setting (session.c, on first Bind). */
enum stmt_sets { STMT_SETS_UNKNOWN, STMT_SETS_NO, STMT_SETS_MAYBE };

struct stmt_def {
	uint64_t id;
	uint64_t hash;            /* of text and types */
	uint32_t refs;            /* client statements naming it */
	uint32_t text_len;
	char *text;               /* NUL-terminated */
	uint16_t n_types;
	uint32_t *types;          /* parameter type OIDs, 0 = unspecified */
	uint8_t route;            /* enum stmt_route, filled by the router on first use */
	const char *route_reason; /* static text explaining route */
	uint8_t sets;             /* enum stmt_sets, filled by session.c on first use */
	bool parsed;              /* a server accepted its Parse: its text and types are valid */
	struct stmt_def *chain;   /* next in the hash bucket */
	struct list_head idle_node; /* on idle while refs == 0 */
};

struct stmtreg {
	struct stmt_def **buckets;
	size_t n_buckets;
	size_t count;
	size_t n_idle;
	uint64_t next_id;
	struct list_head idle;    /* unreferenced, oldest first */
};

/* Empties reg. */
void stmtreg_init(struct stmtreg *reg);

/* Frees every statement (at worker exit). */
void stmtreg_free(struct stmtreg *reg);

/*
 * The statement for text (len bytes) with n_types types (big-endian u32
 * each, as in a Parse message), found or added, with one more reference.
 * NULL when out of memory.
 */
struct stmt_def *stmtreg_acquire(struct stmtreg *reg, const char *text, size_t len,
				 const uint8_t *types_be, uint16_t n_types);

/* The statement for text and types as stmtreg_acquire takes them, if any; no reference taken. */
struct stmt_def *stmtreg_find(const struct stmtreg *reg, const char *text, size_t len,
			      const uint8_t *types_be, uint16_t n_types);

/* Drops a reference taken by stmtreg_acquire. */
void stmtreg_release(struct stmtreg *reg, struct stmt_def *def);

/* Writes the server-side name of statement id ("pgsluice_<id>") into out. */
void stmtreg_name(uint64_t id, char out[STMTREG_NAME_MAX]);

#endif
