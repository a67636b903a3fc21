/*
 * fuzz_stream.c - feeds a fuzz input through conn_process (fuzz_stream.h).
 *
 * The conn has no socket (fd -1, no peer), so conn_process never writes and
 * never touches the event loop: only its framing and buffer handling run.
 * Buffer refills copy what conn_read would have received.
 */
#include "fuzz_stream.h"

#include <string.h>

#include "conn.h"
#include "proto.h"
#include "worker.h"

#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME 1099511628211ull

struct stream_state {
	fuzz_stream_fn fn;
	void *arg;
	uint64_t hash;
};

/* One worker for every run: conn_process only reads its buffer pool. */
static struct worker stream_worker;
static int stream_ready;

static void hash_bytes(uint64_t *h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		*h ^= b[i];
		*h *= FNV_PRIME;
	}
}

/* Whole messages that fit are consumed, bigger ones streamed past, as client.c does. */
static enum conn_action stream_decide(void *owner, const uint8_t *msg, uint32_t total,
				      uint32_t avail)
{
	struct stream_state *st = owner;
	uint8_t tag;
	if (total > FUZZ_STREAM_BUF) {
		tag = 'S';
		hash_bytes(&st->hash, &tag, 1);
		hash_bytes(&st->hash, msg, PROTO_HEADER_LEN);
		st->fn(st->arg, msg[0], total, NULL, 0);
		return CONN_SKIP;
	}
	if (avail < total)
		return CONN_NEED_ALL;
	tag = 'W';
	hash_bytes(&st->hash, &tag, 1);
	hash_bytes(&st->hash, msg, total);
	st->fn(st->arg, msg[0], total, msg + PROTO_HEADER_LEN, total - PROTO_HEADER_LEN);
	return CONN_CONSUMED;
}

uint64_t fuzz_stream_run(const uint8_t *data, size_t size, size_t chunk, uint32_t max_packet,
			 fuzz_stream_fn fn, void *arg)
{
	if (!stream_ready) {
		iobuf_pool_init(&stream_worker.iobufs, FUZZ_STREAM_BUF);
		stream_ready = 1;
	}
	struct iobuf_pool *pool = &stream_worker.iobufs;
	struct stream_state st = {.fn = fn, .arg = arg, .hash = FNV_OFFSET};
	struct conn c;
	memset(&c, 0, sizeof(c));
	c.fd = -1;
	c.worker = &stream_worker;
	c.owner = &st;
	c.decide = stream_decide;
	enum conn_result r = CONN_OK;
	size_t done = 0;
	while (done < size && r == CONN_OK) {
		if (c.in == NULL) {
			c.in = iobuf_get(pool);
			if (c.in == NULL)
				__builtin_trap();
			c.scan = 0;
		}
		struct iobuf *in = c.in;
		if (in->end == pool->size && in->start > 0) {
			uint32_t shift = in->start;
			iobuf_compact(in);
			c.scan -= shift;
		}
		size_t room = pool->size - in->end;
		if (room == 0)
			__builtin_trap(); /* full buffer, nothing consumable: the reader stalled */
		size_t n = size - done;
		if (chunk > 0 && n > chunk)
			n = chunk;
		if (n > room)
			n = room;
		memcpy(in->data + in->end, data + done, n);
		in->end += (uint32_t)n;
		done += n;
		r = conn_process(&c, max_packet);
	}
	uint8_t end = (uint8_t)r;
	hash_bytes(&st.hash, &end, 1);
	if (r == CONN_BAD_LENGTH || r == CONN_TOO_BIG) {
		hash_bytes(&st.hash, &c.bad_type, 1);
		hash_bytes(&st.hash, &c.bad_length, sizeof(c.bad_length));
	}
	iobuf_put(pool, c.in);
	return st.hash;
}
