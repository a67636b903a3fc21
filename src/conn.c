/*
 * conn.c - socket stream mechanics shared by clients and servers (conn.h).
 */
#include "conn.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto.h"
#include "worker.h"

void conn_init(struct conn *c, struct worker *w, int fd, void *owner, conn_decide_fn decide,
	       void (*on_readable)(struct ev_loop *, ev_io *, int),
	       void (*on_writable)(struct ev_loop *, ev_io *, int))
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->worker = w;
	c->owner = owner;
	c->decide = decide;
	obuf_init(&c->out, OUTPUT_LIMIT);
	ev_io_init(&c->rio, on_readable, fd, EV_READ);
	ev_io_init(&c->wio, on_writable, fd, EV_WRITE);
	c->rio.data = owner;
	c->wio.data = owner;
}

void conn_close(struct conn *c)
{
	if (c->fd < 0)
		return;
	ev_io_stop(c->worker->loop, &c->rio);
	ev_io_stop(c->worker->loop, &c->wio);
	close(c->fd);
	c->fd = -1;
	iobuf_put(&c->worker->iobufs, c->in);
	c->in = NULL;
	obuf_free(&c->out);
	if (c->peer != NULL && c->peer->peer == c)
		c->peer->peer = NULL;
	c->peer = NULL;
}

int conn_read(struct conn *c)
{
	struct iobuf_pool *pool = &c->worker->iobufs;
	if (c->in == NULL) {
		c->in = iobuf_get(pool);
		if (c->in == NULL) {
			errno = ENOMEM;
			return -1;
		}
		c->scan = 0;
	}
	struct iobuf *in = c->in;
	if (in->end == pool->size && in->start > 0) {
		uint32_t shift = in->start;
		iobuf_compact(in);
		c->scan -= shift;
	}
	if (in->end == pool->size)
		return -2;
	ssize_t n = recv(c->fd, in->data + in->end, pool->size - in->end, 0);
	if (n > 0) {
		in->end += (uint32_t)n;
		c->bytes_in += (uint64_t)n;
		return (int)n;
	}
	if (n == 0)
		return 0;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
		if (in->start == in->end) {
			iobuf_put(pool, in);
			c->in = NULL;
		}
		return -3;
	}
	return -1;
}

/* Drops the input buffer when everything in it is consumed. */
static void conn_release_empty_input(struct conn *c)
{
	if (c->in != NULL && c->in->start == c->in->end && !c->in_progress) {
		iobuf_put(&c->worker->iobufs, c->in);
		c->in = NULL;
		c->scan = 0;
	}
}

enum conn_result conn_flush(struct conn *c)
{
	struct conn *src = c->peer;
	for (;;) {
		struct iovec iov[2];
		int n = 0;
		size_t own = obuf_pending(&c->out);
		size_t fwd = src != NULL && src->in != NULL ? src->scan - src->in->start : 0;
		if (own > 0)
			iov[n++] = (struct iovec){c->out.data + c->out.off, own};
		if (fwd > 0)
			iov[n++] = (struct iovec){src->in->data + src->in->start, fwd};
		if (n == 0)
			break;
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return CONN_ERROR;
			w = 0;
		}
		size_t done = (size_t)w;
		c->bytes_out += done;
		size_t from_own = done < own ? done : own;
		c->out.off += from_own;
		if (src != NULL && src->in != NULL)
			src->in->start += (uint32_t)(done - from_own);
		if (done < own + fwd) {
			if (!c->write_blocked) {
				c->write_blocked = true;
				ev_io_start(c->worker->loop, &c->wio);
				if (src != NULL)
					conn_update_reading(src);
			}
			return CONN_BLOCKED;
		}
	}
	if (c->out.len > 0) {
		if (c->out.cap > OUTPUT_KEEP)
			obuf_free(&c->out);
		else
			obuf_reset(&c->out);
	}
	if (c->write_blocked) {
		c->write_blocked = false;
		ev_io_stop(c->worker->loop, &c->wio);
		if (src != NULL)
			conn_update_reading(src);
	}
	if (src != NULL)
		conn_release_empty_input(src);
	return CONN_OK;
}

void conn_adopt_pending(struct conn *c)
{
	struct conn *src = c->peer;
	if (src == NULL || src->in == NULL || src->scan == src->in->start)
		return;
	obuf_put(&c->out, src->in->data + src->in->start, src->scan - src->in->start);
	src->in->start = src->scan;
}

void conn_update_reading(struct conn *c)
{
	if (c->fd < 0)
		return;
	bool full = c->in != NULL && c->in->start == 0 && c->in->end == c->worker->iobufs.size;
	bool want = !c->read_paused && !full && !(c->peer != NULL && c->peer->write_blocked);
	if (want && !ev_is_active(&c->rio))
		ev_io_start(c->worker->loop, &c->rio);
	else if (!want && ev_is_active(&c->rio))
		ev_io_stop(c->worker->loop, &c->rio);
}

bool conn_awaits_rest(const struct conn *c)
{
	if (!ev_is_active(&c->rio))
		return false;
	uint32_t avail = c->in != NULL ? c->in->end - c->scan : 0;
	if (c->msg_left > 0)
		return avail == 0;
	if (avail == 0)
		return false;
	if (avail < PROTO_HEADER_LEN)
		return true;
	return avail < proto_get_u32(c->in->data + c->scan + 1) + 1;
}

enum conn_result conn_process(struct conn *c, uint32_t max_packet)
{
	if (c->in_progress)
		return CONN_OK;
	c->in_progress = true;
	enum conn_result result = CONN_OK;
	while (c->in != NULL) {
		struct iobuf *in = c->in;
		if (c->msg_left > 0) {
			uint32_t avail = in->end - c->scan;
			if (avail == 0)
				break;
			uint32_t take = avail < c->msg_left ? avail : c->msg_left;
			if (c->msg_skip) {
				if (c->scan > in->start) {
					enum conn_result r = conn_flush(c->peer);
					if (r != CONN_OK) {
						result = r == CONN_ERROR ? CONN_PEER_ERROR : r;
						break;
					}
				}
				in->start += take;
			}
			c->scan += take;
			c->msg_left -= take;
			continue;
		}
		uint32_t avail = in->end - c->scan;
		if (avail < PROTO_HEADER_LEN)
			break;
		const uint8_t *m = in->data + c->scan;
		uint32_t len = proto_get_u32(m + 1);
		if (len < 4 || len > max_packet) {
			c->bad_type = m[0];
			c->bad_length = len;
			result = CONN_BAD_LENGTH;
			break;
		}
		uint32_t total = len + 1;
		uint32_t here = avail < total ? avail : total;
		enum conn_action act = c->decide(c->owner, m, total, here);
		if (act == CONN_GONE)
			return CONN_CLOSED; /* c is freed */
		if (act == CONN_STOP) {
			result = CONN_BLOCKED;
			break;
		}
		if (act == CONN_NEED_ALL) {
			if (total > c->worker->iobufs.size) {
				c->bad_type = m[0];
				c->bad_length = len;
				result = CONN_TOO_BIG;
			}
			break;
		}
		if (act == CONN_FORWARD_TAIL && c->peer != NULL) {
			/* Everything before it was adopted by the peer: the head just goes. */
			in->start = c->scan + c->tail_from;
			c->scan += c->tail_from;
			here -= c->tail_from;
			total -= c->tail_from;
			act = CONN_FORWARD;
		}
		if (act == CONN_FORWARD && c->peer != NULL) {
			c->msg_skip = false;
			c->scan += here;
			c->msg_left = total - here;
			continue;
		}
		/* Skip or consumed: bytes forwarded before it must go out first. */
		if (c->scan > in->start) {
			enum conn_result r = conn_flush(c->peer);
			if (r != CONN_OK) {
				result = r == CONN_ERROR ? CONN_PEER_ERROR : r;
				/* The skipped message was decided: drop it when the flush resumes. */
				c->msg_skip = true;
				c->msg_left = total;
				break;
			}
		}
		c->msg_skip = true;
		in->start += here;
		c->scan += here;
		c->msg_left = total - here;
		if (act == CONN_YIELD) {
			result = CONN_YIELDED;
			break;
		}
	}
	if ((result == CONN_OK || result == CONN_YIELDED) && c->peer != NULL && c->in != NULL &&
	    c->scan > c->in->start) {
		enum conn_result r = conn_flush(c->peer);
		if (r == CONN_ERROR)
			result = CONN_PEER_ERROR;
		else if (r == CONN_BLOCKED)
			result = CONN_BLOCKED;
	}
	c->in_progress = false;
	conn_release_empty_input(c);
	if (c->in != NULL && c->in->end == c->worker->iobufs.size && c->in->start > 0) {
		uint32_t shift = c->in->start;
		iobuf_compact(c->in);
		c->scan -= shift;
	}
	conn_update_reading(c);
	return result;
}
