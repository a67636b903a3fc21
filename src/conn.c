/*
 * conn.c - socket stream mechanics shared by clients and servers (conn.h).
 *
 * TLS: a conn with an SSL reads with tls_read() and writes with tls_writev().
 * A flush always offers every unsent byte again from the first one, which is
 * what OpenSSL's retry rule asks. OpenSSL may read ahead of what the buffer
 * takes, so after a read (or once reading resumes) a read event is fed while
 * it holds input; a read that must write first, or a write that must read
 * first, arms the other watcher and feeds the waiting side when it fires.
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
	tls_free(c->ssl);
	c->ssl = NULL;
	close(c->fd);
	c->fd = -1;
	iobuf_put(&c->worker->iobufs, c->in);
	c->in = NULL;
	obuf_free(&c->out);
	if (c->peer != NULL && c->peer->peer == c)
		c->peer->peer = NULL;
	c->peer = NULL;
}

/* Feeds c's read watcher when OpenSSL holds input the socket will not signal. */
static void conn_tls_feed_read(struct conn *c)
{
	if (ev_is_active(&c->rio) && tls_pending(c->ssl))
		ev_feed_event(c->worker->loop, &c->rio, EV_READ);
}

/* recv() through TLS: the same results, errno EAGAIN while OpenSSL waits. */
static ssize_t conn_tls_recv(struct conn *c, void *buf, size_t len)
{
	enum tls_step why = TLS_FAILED;
	ssize_t n = tls_read(c->ssl, buf, len, &why);
	if (n > 0) {
		conn_tls_feed_read(c);
		return n;
	}
	if (n == 0)
		return 0;
	if (why == TLS_WANT_WRITE) {
		/* Resumed by conn_flush once the socket is writable. */
		c->read_wants_write = true;
		c->write_blocked = true;
		ev_io_start(c->worker->loop, &c->wio);
	}
	errno = why == TLS_WANT_READ || why == TLS_WANT_WRITE ? EAGAIN : ECONNRESET;
	return -1;
}

/* recv() or its TLS form. */
static inline ssize_t conn_recv(struct conn *c, void *buf, size_t len)
{
	if (c->ssl != NULL)
		return conn_tls_recv(c, buf, len);
	return recv(c->fd, buf, len, 0);
}

int conn_read(struct conn *c)
{
	struct iobuf_pool *pool = &c->worker->iobufs;
	if (c->write_wants_read) {
		/* The socket became readable: the blocked TLS write can go on. */
		c->write_wants_read = false;
		ev_feed_event(c->worker->loop, &c->wio, EV_WRITE);
	}
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
	ssize_t n = conn_recv(c, in->data + in->end, pool->size - in->end);
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
void conn_release_empty_input(struct conn *c)
{
	if (c->in != NULL && c->in->start == c->in->end && !c->in_progress) {
		iobuf_put(&c->worker->iobufs, c->in);
		c->in = NULL;
		c->scan = 0;
	}
}

/*
 * sendmsg() through TLS: the count sent, or -1 with errno EAGAIN (retry when
 * the socket is ready the way c's flags say) or EPIPE.
 */
static ssize_t conn_tls_send(struct conn *c, const struct iovec *iov, int n, size_t len)
{
	enum tls_step why = TLS_WANT_WRITE;
	ssize_t w = tls_writev(c->ssl, iov, n, &why);
	if (w >= 0 && (size_t)w == len)
		return w;
	if (why == TLS_WANT_READ)
		c->write_wants_read = true;
	if (w > 0)
		return w;
	errno = why == TLS_WANT_READ || why == TLS_WANT_WRITE ? EAGAIN : EPIPE;
	return -1;
}

enum conn_result conn_flush(struct conn *c)
{
	struct conn *src = c->peer;
	if (c->read_wants_write) {
		/* The socket became writable (or may have): the waiting TLS read goes on. */
		c->read_wants_write = false;
		if (ev_is_active(&c->rio))
			ev_feed_event(c->worker->loop, &c->rio, EV_READ);
	}
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
		ssize_t w;
		if (c->ssl != NULL) {
			w = conn_tls_send(c, iov, n, own + fwd);
		} else {
			struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
			w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		}
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
			if (c->write_wants_read) {
				/* Only input lets the TLS write on: conn_read resumes it. */
				ev_io_stop(c->worker->loop, &c->wio);
				ev_io_start(c->worker->loop, &c->rio);
			}
			return CONN_BLOCKED;
		}
	}
	if (c->out.len > 0) {
		/* Without a peer c is idle (idle clients are many): it keeps nothing. */
		if (c->out.cap > OUTPUT_KEEP || c->peer == NULL)
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
	bool want = (!c->read_paused && !full && !(c->peer != NULL && c->peer->write_blocked)) ||
		    c->write_wants_read;
	if (want && !ev_is_active(&c->rio))
		ev_io_start(c->worker->loop, &c->rio);
	else if (!want && ev_is_active(&c->rio))
		ev_io_stop(c->worker->loop, &c->rio);
	if (want && c->ssl != NULL)
		conn_tls_feed_read(c);
}

bool conn_tls_start(struct conn *c, SSL_CTX *ctx, bool is_server, const char *verify_host)
{
	if (conn_buffered(c) > 0)
		return false;
	if (c->in != NULL) {
		iobuf_put(&c->worker->iobufs, c->in);
		c->in = NULL;
		c->scan = 0;
	}
	c->ssl = tls_new(ctx, c->fd, is_server, verify_host);
	return c->ssl != NULL;
}

enum tls_step conn_tls_handshake(struct conn *c, char *err, size_t errlen)
{
	struct ev_loop *loop = c->worker->loop;
	enum tls_step step = tls_handshake(c->ssl, err, errlen);
	switch (step) {
	case TLS_WANT_WRITE:
		c->write_blocked = true;
		ev_io_stop(loop, &c->rio);
		ev_io_start(loop, &c->wio);
		break;
	case TLS_WANT_READ:
	case TLS_DONE:
		c->write_blocked = false;
		ev_io_stop(loop, &c->wio);
		ev_io_start(loop, &c->rio);
		if (step == TLS_DONE)
			conn_tls_feed_read(c);
		break;
	case TLS_CLOSED:
	case TLS_FAILED:
		break;
	}
	return step;
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
