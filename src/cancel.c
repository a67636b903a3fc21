/*
 * cancel.c - cancel keys and CancelRequests (cancel.h).
 */
#include "cancel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "password.h"
#include "proto.h"
#include "server.h"

#define CANCEL_TABLE_SIZE (1u << 14)
#define CANCEL_COUNTER_MASK 0xffffffu
/* How long a request may take when server_connect_timeout sets no limit. */
#define CANCEL_DEFAULT_TIMEOUT 10.0

/* One CancelRequest on its way: connect, send 16 bytes, close. */
struct cancel_req {
	struct list_head node;
	int fd;
	ev_io io;
	uint8_t packet[16];
	ev_tstamp started;
	char target[80];
};

static uint32_t cancel_bucket(uint32_t pid)
{
	return (pid * 2654435761u) & (CANCEL_TABLE_SIZE - 1);
}

bool cancel_init(struct worker *w)
{
	w->cancel_table = calloc(CANCEL_TABLE_SIZE, sizeof(*w->cancel_table));
	if (w->cancel_table == NULL)
		return false;
	uint8_t rnd[4];
	if (password_random_bytes(rnd, sizeof(rnd)))
		w->next_cancel_pid = proto_get_u32(rnd) & CANCEL_COUNTER_MASK;
	return true;
}

static void cancel_req_free(struct worker *w, struct cancel_req *cr)
{
	ev_io_stop(w->loop, &cr->io);
	close(cr->fd);
	list_del(&cr->node);
	free(cr);
}

void cancel_destroy(struct worker *w)
{
	while (!list_empty(&w->cancels))
		cancel_req_free(w, list_entry(list_first(&w->cancels), struct cancel_req, node));
	free(w->cancel_table);
	w->cancel_table = NULL;
}

static bool cancel_pid_in_use(struct worker *w, uint32_t pid)
{
	for (struct client *c = w->cancel_table[cancel_bucket(pid)]; c != NULL; c = c->cancel_next)
		if (c->cancel_pid == pid)
			return true;
	return false;
}

void cancel_register(struct worker *w, struct client *c)
{
	uint8_t rnd[4];
	/* The pid half only has to be unique; the key half must be unguessable. */
	do {
		w->next_cancel_pid = (w->next_cancel_pid + 1) & CANCEL_COUNTER_MASK;
		c->cancel_pid = w->instance_slot << 24 | w->next_cancel_pid;
	} while (w->next_cancel_pid == 0 || cancel_pid_in_use(w, c->cancel_pid));
	if (!password_random_bytes(rnd, sizeof(rnd)))
		memset(rnd, 0, sizeof(rnd));
	c->cancel_key = proto_get_u32(rnd);
	uint32_t b = cancel_bucket(c->cancel_pid);
	c->cancel_next = w->cancel_table[b];
	w->cancel_table[b] = c;
}

void cancel_unregister(struct worker *w, struct client *c)
{
	if (c->cancel_pid == 0)
		return;
	struct client **pp = &w->cancel_table[cancel_bucket(c->cancel_pid)];
	while (*pp != NULL && *pp != c)
		pp = &(*pp)->cancel_next;
	if (*pp == c)
		*pp = c->cancel_next;
	c->cancel_pid = 0;
}

struct client *cancel_find(struct worker *w, uint32_t pid, uint32_t key)
{
	for (struct client *c = w->cancel_table[cancel_bucket(pid)]; c != NULL; c = c->cancel_next)
		if (c->cancel_pid == pid && c->cancel_key == key)
			return c;
	return NULL;
}

static void cancel_on_writable(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)revents;
	struct cancel_req *cr = io->data;
	struct worker *w = (struct worker *)ev_userdata(loop);
	ssize_t n = send(cr->fd, cr->packet, sizeof(cr->packet), MSG_NOSIGNAL);
	if (n != (ssize_t)sizeof(cr->packet))
		log_warning("could not send a cancel request to %s: %s", cr->target,
			    n < 0 ? strerror(errno) : "short write");
	cancel_req_free(w, cr);
}

/* Connects to addr without blocking and sends the request once writable. */
static void cancel_send(struct worker *w, const struct sockaddr *addr, socklen_t len, uint32_t pid,
			uint32_t key, const char *target)
{
	struct cancel_req *cr = calloc(1, sizeof(*cr));
	if (cr == NULL)
		return;
	struct obuf ob;
	obuf_init(&ob, sizeof(cr->packet));
	proto_put_cancel(&ob, pid, key);
	memcpy(cr->packet, ob.data, sizeof(cr->packet));
	obuf_free(&ob);
	snprintf(cr->target, sizeof(cr->target), "%s", target);
	cr->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (cr->fd < 0 || (connect(cr->fd, addr, len) < 0 && errno != EINPROGRESS)) {
		log_warning("could not connect to %s to cancel a query: %s", target,
			    strerror(errno));
		if (cr->fd >= 0)
			close(cr->fd);
		free(cr);
		return;
	}
	cr->started = ev_now(w->loop);
	ev_io_init(&cr->io, cancel_on_writable, cr->fd, EV_WRITE);
	cr->io.data = cr;
	ev_io_start(w->loop, &cr->io);
	list_add_tail(&w->cancels, &cr->node);
	log_debug("cancel request sent to %s", target);
}

void cancel_server_query(struct worker *w, struct server *server)
{
	/* A fresh connection to the same address as the server's. */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getpeername(server->conn.fd, (struct sockaddr *)&ss, &sl) < 0) {
		log_warning("could not cancel a query on %s: %s", server_describe(server),
			    strerror(errno));
		return;
	}
	cancel_send(w, (struct sockaddr *)&ss, sl, server->backend_pid, server->backend_key,
		    server_describe(server));
}

void cancel_forward_to_peer(struct worker *w, uint32_t slot, uint32_t pid, uint32_t key)
{
	struct sockaddr_un sun;
	socklen_t len = listener_peer_address(w->cfg->listen_port, slot, &sun);
	char target[48];
	snprintf(target, sizeof(target), "pgsluice instance %u", slot);
	log_info("cancel request passed on to %s", target);
	cancel_send(w, (struct sockaddr *)&sun, len, pid, key, target);
}

void cancel_expire(struct worker *w, ev_tstamp now)
{
	double limit = w->cfg->server_connect_timeout > 0
			       ? (double)w->cfg->server_connect_timeout / 1e6
			       : CANCEL_DEFAULT_TIMEOUT;
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &w->cancels)
	{
		struct cancel_req *cr = list_entry(pos, struct cancel_req, node);
		if (now - cr->started > limit)
			cancel_req_free(w, cr);
	}
}
