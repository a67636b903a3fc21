/*
 * stmtcache.h - the statements one server connection has prepared under
 * pgsluice's names (see stmtreg.h), least recently used first out.
 *
 * At most max_prepared_statements ids; adding one more names the id to
 * deallocate on the server (Close) so that its memory stays bounded too.
 * Lookups scan the ids: the cache is a few hundred entries at most.
 */
#ifndef PGSLUICE_STMTCACHE_H
#define PGSLUICE_STMTCACHE_H

#include <stdbool.h>
#include <stdint.h>

struct stmtcache {
	uint64_t *ids;
	uint64_t *used;    /* use stamp per id: the smallest goes first */
	uint32_t count, cap;
	uint64_t clock;
};

/* Empties c for up to cap statements (no memory until the first add). */
void stmtcache_init(struct stmtcache *c, uint32_t cap);

/* Frees c's arrays. */
void stmtcache_free(struct stmtcache *c);

/* Forgets every id (the server ran DISCARD ALL / DEALLOCATE ALL). */
void stmtcache_clear(struct stmtcache *c);

/* True when the server has id prepared; marks it used. */
bool stmtcache_touch(struct stmtcache *c, uint64_t id);

/*
 * Records id as prepared. When the cache was full, *evicted receives the
 * least recently used id (to Close on the server) and true is returned.
 * Returns false with *evicted 0 when nothing had to go (or out of memory:
 * then id is not recorded and will be prepared again next time).
 */
bool stmtcache_add(struct stmtcache *c, uint64_t id, uint64_t *evicted);

/* Forgets id (its Parse failed on the server). */
void stmtcache_remove(struct stmtcache *c, uint64_t id);

#endif
