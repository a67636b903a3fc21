/*
 * stmtcache.c - a server's prepared statements, least recently used first
 * out (see stmtcache.h).
 */
#include "stmtcache.h"

#include <stdlib.h>
#include <string.h>

void stmtcache_init(struct stmtcache *c, uint32_t cap)
{
	memset(c, 0, sizeof(*c));
	c->cap = cap > 0 ? cap : 1;
}

void stmtcache_free(struct stmtcache *c)
{
	free(c->ids);
	free(c->used);
	c->ids = c->used = NULL;
	c->count = 0;
}

void stmtcache_clear(struct stmtcache *c)
{
	c->count = 0;
}

static int64_t stmtcache_find(const struct stmtcache *c, uint64_t id)
{
	for (uint32_t i = 0; i < c->count; i++)
		if (c->ids[i] == id)
			return i;
	return -1;
}

bool stmtcache_touch(struct stmtcache *c, uint64_t id)
{
	int64_t i = stmtcache_find(c, id);
	if (i < 0)
		return false;
	c->used[i] = ++c->clock;
	return true;
}

bool stmtcache_add(struct stmtcache *c, uint64_t id, uint64_t *evicted)
{
	*evicted = 0;
	if (stmtcache_touch(c, id))
		return false;
	if (c->ids == NULL) {
		c->ids = malloc(sizeof(*c->ids) * c->cap);
		c->used = malloc(sizeof(*c->used) * c->cap);
		if (c->ids == NULL || c->used == NULL) {
			stmtcache_free(c);
			return false;
		}
	}
	uint32_t slot = c->count;
	if (c->count == c->cap) {
		slot = 0;
		for (uint32_t i = 1; i < c->count; i++)
			if (c->used[i] < c->used[slot])
				slot = i;
		*evicted = c->ids[slot];
	} else {
		c->count++;
	}
	c->ids[slot] = id;
	c->used[slot] = ++c->clock;
	return *evicted != 0;
}

void stmtcache_remove(struct stmtcache *c, uint64_t id)
{
	int64_t i = stmtcache_find(c, id);
	if (i < 0)
		return;
	c->count--;
	c->ids[i] = c->ids[c->count];
	c->used[i] = c->used[c->count];
}
