/*
 * listener.c - listening sockets and accept (listener.h).
 *
 * With so_reuseport each process of a group binds the TCP port with
 * SO_REUSEPORT (the kernel spreads new connections over them) and claims an
 * instance slot by binding the abstract unix socket named after the port and
 * the slot: the first free name wins, atomically, and the socket is the
 * process's peer socket, where the others pass on cancel requests. Those
 * arrive as ordinary CancelRequest packets and take the client path.
 */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cancel.h"
#include "client.h"
#include "log.h"

struct listener {
	struct listener *next;
	struct worker *w;
	int fd;
	ev_io io;
	bool paused;
	bool is_unix;
	dev_t dev; /* the unix socket file made, so that only this one is removed */
	ino_t ino;
	char name[128];
};

/* Clients over max_client_conn held just long enough to read their startup
 * packet and be told 53300 (clients expect the error after startup). */
#define REFUSING_MAX 64

/* Accepts per event at most this many, so one busy port cannot starve the loop. */
#define ACCEPT_BURST 64

static void listener_on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)revents;
	struct listener *l = io->data;
	struct worker *w = l->w;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				log_warning("accept on %s: %s; pausing accepts", l->name, strerror(errno));
				ev_io_stop(loop, &l->io);
				l->paused = true;
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				   errno != ECONNABORTED) {
				log_warning("accept on %s: %s", l->name, strerror(errno));
			}
			return;
		}
		char addr[64] = "unix";
		if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			char host[48], port[8];
			if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
					NI_NUMERICHOST | NI_NUMERICSERV) == 0)
				snprintf(addr, sizeof(addr), "%s:%s", host, port);
		}
		/* The peer socket takes cancels for the clients still served. */
		if (w->shutting_down && l != w->peer) {
			client_refuse(fd, "57P01", "pgsluice is shutting down");
			continue;
		}
		bool over = w->n_clients - w->n_refusing >= w->cfg->max_client_conn;
		if (over && w->n_refusing >= REFUSING_MAX) {
			/* A flood: no slot left even to say why. */
			close(fd);
			continue;
		}
		if (over)
			log_warning("client %s refused: max_client_conn (%d) reached", addr,
				    w->cfg->max_client_conn);
		client_accept(w, fd, addr, over);
	}
}

static bool listener_add(struct worker *w, int fd, const char *name, bool is_unix)
{
	struct listener *l = calloc(1, sizeof(*l));
	if (l == NULL) {
		close(fd);
		return false;
	}
	l->w = w;
	l->fd = fd;
	l->is_unix = is_unix;
	snprintf(l->name, sizeof(l->name), "%s", name);
	ev_io_init(&l->io, listener_on_accept, fd, EV_READ);
	l->io.data = l;
	ev_io_start(w->loop, &l->io);
	l->next = w->listeners;
	w->listeners = l;
	log_info("listening on %s", name);
	return true;
}

static bool listener_open_tcp(struct worker *w, const char *host, int port)
{
	char service[16];
	snprintf(service, sizeof(service), "%d", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	const char *node = strcmp(host, "*") == 0 ? NULL : host;
	int rc = getaddrinfo(node, service, &hints, &res);
	if (rc != 0) {
		log_error("listen_addr \"%s\": %s", host, gai_strerror(rc));
		return false;
	}
	bool any = false;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (w->cfg->so_reuseport &&
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
			log_error("so_reuseport: %s", strerror(errno));
			close(fd);
			freeaddrinfo(res);
			return false;
		}
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		char name[96], h[64];
		getnameinfo(ai->ai_addr, ai->ai_addrlen, h, sizeof(h), NULL, 0, NI_NUMERICHOST);
		snprintf(name, sizeof(name), "%s:%d", h, port);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		    listen(fd, w->cfg->listen_backlog) < 0) {
			log_error("could not listen on %s: %s", name, strerror(errno));
			close(fd);
			freeaddrinfo(res);
			return false;
		}
		any = listener_add(w, fd, name, false) || any;
	}
	freeaddrinfo(res);
	return any;
}

static bool listener_open_unix(struct worker *w, const char *dir, int port)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/.s.PGSQL.%d", dir, port);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
		log_error("unix_socket_dir \"%s\" is too long", dir);
		return false;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	/* A socket file left by a crashed run would block the bind; with so_reuseport
	 * the newest process of the group takes the file over. */
	unlink(sun.sun_path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, w->cfg->listen_backlog) < 0) {
		log_error("could not listen on %s: %s", sun.sun_path, strerror(errno));
		close(fd);
		return false;
	}
	chmod(sun.sun_path, 0777);
	struct stat st;
	if (stat(sun.sun_path, &st) < 0 || !listener_add(w, fd, sun.sun_path, true))
		return false;
	w->listeners->dev = st.st_dev;
	w->listeners->ino = st.st_ino;
	return true;
}

socklen_t listener_peer_address(int port, uint32_t slot, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	/* Abstract namespace (leading NUL): no file to clean up after a crash. */
	int n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1, "pgsluice.%d.%u", port, slot);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

bool listener_open_peer(struct worker *w)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("so_reuseport: peer socket: %s", strerror(errno));
		return false;
	}
	for (uint32_t slot = 0; slot < CANCEL_SLOTS; slot++) {
		struct sockaddr_un sun;
		socklen_t len = listener_peer_address(w->cfg->listen_port, slot, &sun);
		if (bind(fd, (struct sockaddr *)&sun, len) < 0) {
			if (errno == EADDRINUSE)
				continue;
			break;
		}
		if (listen(fd, w->cfg->listen_backlog) < 0)
			break;
		struct listener *l = calloc(1, sizeof(*l));
		if (l == NULL)
			break;
		l->w = w;
		l->fd = fd;
		l->is_unix = true;
		snprintf(l->name, sizeof(l->name), "@%s", sun.sun_path + 1);
		ev_io_init(&l->io, listener_on_accept, fd, EV_READ);
		l->io.data = l;
		ev_io_start(w->loop, &l->io);
		w->peer = l;
		w->instance_slot = slot;
		log_info("so_reuseport: instance slot %u of port %d (peer socket %s)", slot,
			 w->cfg->listen_port, l->name);
		return true;
	}
	log_error("so_reuseport: no free instance slot for port %d (%d processes at most): %s",
		  w->cfg->listen_port, CANCEL_SLOTS, strerror(errno));
	close(fd);
	return false;
}

bool listener_open_all(struct worker *w)
{
	const struct config *cfg = w->cfg;
	/* The slot first: every cancel key handed out names it. */
	if (cfg->so_reuseport && w->peer == NULL && !listener_open_peer(w))
		return false;
	if (cfg->listen_addr != NULL) {
		char *list = strdup(cfg->listen_addr);
		if (list == NULL)
			return false;
		char *save = NULL;
		for (char *h = strtok_r(list, ",", &save); h != NULL; h = strtok_r(NULL, ",", &save)) {
			while (*h == ' ')
				h++;
			if (*h != '\0' && !listener_open_tcp(w, h, cfg->listen_port)) {
				free(list);
				return false;
			}
		}
		free(list);
	}
	if (cfg->unix_socket_dir != NULL && !listener_open_unix(w, cfg->unix_socket_dir, cfg->listen_port))
		return false;
	if (w->listeners == NULL) {
		log_error("no listen_addr and no unix_socket_dir: nothing to listen on");
		return false;
	}
	return true;
}

static void listener_free(struct worker *w, struct listener *l)
{
	ev_io_stop(w->loop, &l->io);
	struct stat st;
	/* Under so_reuseport a newer process may have made the file since. */
	if (l->is_unix && l->ino != 0 && stat(l->name, &st) == 0 && st.st_dev == l->dev &&
	    st.st_ino == l->ino)
		unlink(l->name);
	close(l->fd);
	free(l);
}

void listener_close_all(struct worker *w)
{
	while (w->listeners != NULL) {
		struct listener *l = w->listeners;
		w->listeners = l->next;
		listener_free(w, l);
	}
}

void listener_close_peer(struct worker *w)
{
	if (w->peer != NULL)
		listener_free(w, w->peer);
	w->peer = NULL;
}

void listener_resume_all(struct worker *w)
{
	for (struct listener *l = w->listeners; l != NULL; l = l->next) {
		if (l->paused) {
			l->paused = false;
			ev_io_start(w->loop, &l->io);
		}
	}
}
