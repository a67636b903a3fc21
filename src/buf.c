/*
 * buf.c - pooled input buffers and bounded output buffers (see buf.h).
 */
#include "buf.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

void iobuf_pool_init(struct iobuf_pool *pool, uint32_t size)
{
	memset(pool, 0, sizeof(*pool));
	pool->size = size;
	pool->max_free = 4096;
}

void iobuf_pool_destroy(struct iobuf_pool *pool)
{
	while (pool->free != NULL) {
		struct iobuf *b = pool->free;
		pool->free = b->next_free;
		free(b);
		pool->n_total--;
	}
	pool->n_free = 0;
}

struct iobuf *iobuf_get(struct iobuf_pool *pool)
{
	struct iobuf *b = pool->free;
	if (b != NULL) {
		pool->free = b->next_free;
		pool->n_free--;
		if (pool->n_free < pool->low_free)
			pool->low_free = pool->n_free;
	} else {
		b = malloc(sizeof(*b) + pool->size);
		if (b == NULL)
			return NULL;
		pool->n_total++;
	}
	b->next_free = NULL;
	b->start = b->end = 0;
	return b;
}

void iobuf_put(struct iobuf_pool *pool, struct iobuf *buf)
{
	if (buf == NULL)
		return;
	if (pool->n_free >= pool->max_free) {
		free(buf);
		pool->n_total--;
		return;
	}
	buf->next_free = pool->free;
	pool->free = buf;
	pool->n_free++;
}

size_t iobuf_pool_trim(struct iobuf_pool *pool)
{
	size_t freed = 0;
	while (freed < pool->low_free && pool->free != NULL) {
		struct iobuf *b = pool->free;
		pool->free = b->next_free;
		free(b);
		pool->n_free--;
		pool->n_total--;
		freed++;
	}
	pool->low_free = pool->n_free;
	return freed;
}

void iobuf_compact(struct iobuf *buf)
{
	if (buf->start == 0)
		return;
	uint32_t n = buf->end - buf->start;
	if (n > 0)
		memmove(buf->data, buf->data + buf->start, n);
	buf->start = 0;
	buf->end = n;
}

void obuf_init(struct obuf *ob, size_t limit)
{
	memset(ob, 0, sizeof(*ob));
	ob->limit = limit;
}

void obuf_free(struct obuf *ob)
{
	free(ob->data);
	size_t limit = ob->limit;
	obuf_init(ob, limit);
}

void obuf_reset(struct obuf *ob)
{
	ob->len = ob->off = 0;
	ob->failed = false;
}

static bool obuf_reserve(struct obuf *ob, size_t more)
{
	if (ob->failed)
		return false;
	if (ob->len + more <= ob->cap)
		return true;
	if (ob->len + more > ob->limit) {
		ob->failed = true;
		return false;
	}
	/* Drop what was sent before growing: the buffer is a queue. */
	if (ob->off > 0) {
		memmove(ob->data, ob->data + ob->off, ob->len - ob->off);
		ob->len -= ob->off;
		ob->msg_start = ob->msg_start >= ob->off ? ob->msg_start - ob->off : 0;
		ob->off = 0;
		if (ob->len + more <= ob->cap)
			return true;
	}
	size_t cap = ob->cap < 256 ? 256 : ob->cap;
	while (cap < ob->len + more)
		cap *= 2;
	if (cap > ob->limit)
		cap = ob->limit;
	uint8_t *p = realloc(ob->data, cap);
	if (p == NULL) {
		ob->failed = true;
		return false;
	}
	ob->data = p;
	ob->cap = cap;
	return true;
}

bool obuf_put(struct obuf *ob, const void *data, size_t len)
{
	if (len == 0)
		return !ob->failed;
	if (!obuf_reserve(ob, len))
		return false;
	memcpy(ob->data + ob->len, data, len);
	ob->len += len;
	return true;
}

bool obuf_put_u8(struct obuf *ob, uint8_t v)
{
	return obuf_put(ob, &v, 1);
}

bool obuf_put_u16(struct obuf *ob, uint16_t v)
{
	uint16_t n = htons(v);
	return obuf_put(ob, &n, 2);
}

bool obuf_put_u32(struct obuf *ob, uint32_t v)
{
	uint32_t n = htonl(v);
	return obuf_put(ob, &n, 4);
}

bool obuf_put_str(struct obuf *ob, const char *s)
{
	return obuf_put(ob, s, strlen(s) + 1);
}

void obuf_msg_begin(struct obuf *ob, uint8_t type)
{
	if (type != 0)
		obuf_put_u8(ob, type);
	ob->msg_start = ob->len;
	obuf_put_u32(ob, 0);
}

void obuf_msg_end(struct obuf *ob)
{
	if (ob->failed)
		return;
	uint32_t n = htonl((uint32_t)(ob->len - ob->msg_start));
	memcpy(ob->data + ob->msg_start, &n, 4);
}
