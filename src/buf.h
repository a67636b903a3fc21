/*
 * buf.h - byte buffers.
 *
 * struct iobuf: fixed-size input buffers (pkt_buf bytes) that a connection
 * holds only while it has unprocessed input; they come from and return to a
 * free list, so the steady-state forward path allocates nothing and an idle
 * client holds no buffer at all.
 * struct obuf: a growable, bounded buffer for messages pgsluice writes
 * itself (errors, authentication, parameter sync, admin results).
 */
#ifndef PGSLUICE_BUF_H
#define PGSLUICE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct iobuf {
	struct iobuf *next_free;
	uint32_t start; /* first byte not yet consumed */
	uint32_t end;   /* one past the last byte received */
	uint8_t data[];
};

struct iobuf_pool {
	struct iobuf *free;
	uint32_t size;    /* bytes of data[] per buffer */
	size_t n_free;    /* buffers on the free list */
	size_t n_total;   /* buffers allocated and not released to malloc */
	size_t max_free;  /* free-list length kept; the rest goes back to malloc */
	size_t low_free;  /* the shortest the free list was since the last trim */
};

/* Sets up an empty pool of buffers of size bytes. */
void iobuf_pool_init(struct iobuf_pool *pool, uint32_t size);

/* Releases every free buffer (buffers still in use are the caller's). */
void iobuf_pool_destroy(struct iobuf_pool *pool);

/* An empty buffer, or NULL when memory is exhausted. */
struct iobuf *iobuf_get(struct iobuf_pool *pool);

/* Returns buf (may be NULL) to the pool. */
void iobuf_put(struct iobuf_pool *pool, struct iobuf *buf);

/*
 * Frees the free buffers no one needed since the last trim (as many as the
 * free list never went below), so that a burst of connections does not keep
 * its buffers for good. Returns how many were freed.
 */
size_t iobuf_pool_trim(struct iobuf_pool *pool);

/* Moves unconsumed bytes to the front so that more can be received. */
void iobuf_compact(struct iobuf *buf);

static inline uint32_t iobuf_len(const struct iobuf *buf)
{
	return buf->end - buf->start;
}

struct obuf {
	uint8_t *data;
	size_t len;   /* bytes written */
	size_t off;   /* bytes already sent */
	size_t cap;
	size_t limit; /* never grows past this; writes beyond fail */
	bool failed;  /* a write did not fit: the content is incomplete */
	size_t msg_start; /* for obuf_msg_begin/end */
};

/* Sets up an empty buffer that may grow to limit bytes. */
void obuf_init(struct obuf *ob, size_t limit);

/* Frees the memory; the buffer is empty and usable again afterwards. */
void obuf_free(struct obuf *ob);

/* Forgets the content but keeps the memory. */
void obuf_reset(struct obuf *ob);

/* Bytes written and not yet sent. */
static inline size_t obuf_pending(const struct obuf *ob)
{
	return ob->len - ob->off;
}

/* Appends raw bytes; false (and ob->failed) when over the limit. */
bool obuf_put(struct obuf *ob, const void *data, size_t len);
bool obuf_put_u8(struct obuf *ob, uint8_t v);
bool obuf_put_u16(struct obuf *ob, uint16_t v);
bool obuf_put_u32(struct obuf *ob, uint32_t v);
/* Appends s with its terminating NUL, as protocol strings are sent. */
bool obuf_put_str(struct obuf *ob, const char *s);

/* Starts a protocol message of type (0 = untyped startup-style message). */
void obuf_msg_begin(struct obuf *ob, uint8_t type);
/* Fills in the length of the message started by obuf_msg_begin. */
void obuf_msg_end(struct obuf *ob);

#endif
