/*
 * server.c - the server connection state machine (server.h).
 *
 * Opens connections to PostgreSQL, logs in with whatever the server asks
 * (trust, cleartext, md5, SCRAM-SHA-256), then streams the server's answers
 * to the linked client. ReadyForQuery decides when a transaction is over;
 * replies to pgsluice's own statements (parameter sync, reset) are
 * swallowed so that the client sees exactly what a direct connection shows.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "batch.h"
#include "client.h"
#include "health.h"
#include "log.h"
#include "password.h"
#include "pool.h"
#include "inflight.h"
#include "proto.h"
#include "pstmt.h"
#include "scramkeys.h"
#include "querylog.h"
#include "session.h"
#include "scram.h"
#include "userlist.h"

static enum conn_action server_decide(void *owner, const uint8_t *msg, uint32_t total,
				      uint32_t avail);
static void server_on_readable(struct ev_loop *loop, ev_io *io, int revents);
static void server_on_writable(struct ev_loop *loop, ev_io *io, int revents);
static void server_tls_step(struct worker *w, struct server *s);

const char *server_describe(const struct server *s)
{
	return s->addr;
}

static struct worker *server_worker(const struct server *s)
{
	return s->conn.worker;
}

/* Resolves and connects without blocking on the connect itself. */
static int server_connect_socket(const struct target *t, char *addr, size_t addr_cap)
{
	if (t->host[0] == '/') {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/.s.PGSQL.%d", t->host,
				 t->port);
		if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		snprintf(addr, addr_cap, "%.*s", (int)addr_cap - 1, sun.sun_path);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 && errno != EINPROGRESS &&
		    errno != EAGAIN) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		return fd;
	}
	char port[16];
	snprintf(port, sizeof(port), "%d", t->port);
	snprintf(addr, addr_cap, "%s:%d", t->host, t->port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	/* A numeric address resolves at once; only a host name needs the resolver. */
	if (getaddrinfo(t->host, port, &hints, &ai) != 0) {
		hints.ai_flags = AI_NUMERICSERV;
		if (getaddrinfo(t->host, port, &hints, &ai) != 0) {
			errno = EHOSTUNREACH;
			return -1;
		}
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		freeaddrinfo(ai);
		errno = e;
		return -1;
	}
	freeaddrinfo(ai);
	return fd;
}

struct server *server_open(struct worker *w, struct pool *p)
{
	struct server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	int fd = server_connect_socket(p->target, s->addr, sizeof(s->addr));
	if (fd < 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "could not connect to server %s: %s", s->addr,
			 strerror(errno));
		log_warning("%s", msg);
		free(s);
		pool_server_failed(w, p, "08006", msg);
		return NULL;
	}
	conn_init(&s->conn, w, fd, s, server_decide, server_on_readable, server_on_writable);
	list_init(&s->node);
	s->pool = p;
	s->generation = p->db->generation;
	s->opened_at = s->last_used = ev_now(w->loop);
	params_init(&s->params);
	params_init(&s->startup);
	stmtcache_init(&s->statements, (uint32_t)w->cfg->max_prepared_statements);
	pool_set_server_state(s, SERVER_CONNECTING);
	w->n_servers++;
	/* Writable means the connect finished (or failed). */
	ev_io_start(w->loop, &s->conn.wio);
	s->conn.write_blocked = true;
	log_debug("server %s: connecting for %s/%s", s->addr, p->db->name, p->user);
	return s;
}

void server_close(struct worker *w, struct server *s, const char *reason, bool failed)
{
	struct client *c = s->client;
	struct target *t = s->pool->target;
	if (failed && t->role == TARGET_REPLICA)
		health_report_failure(w, t, reason);
	if (s->batch != NULL)
		batch_server_lost(w, s);
	if (c != NULL) {
		bool untouched = !s->forwarded_to_client;
		if (!untouched && c->route_read)
			log_debug("client %s: read on %s:%d not retried: its answer had begun",
				  c->addr, t->host, t->port);
		/* What the client was already promised still reaches it. */
		conn_adopt_pending(&c->conn);
		/* Answered and about to be released (transaction pooling): it takes another next. */
		bool answered = s->release_pending;
		server_unlink(w, s);
		if (!answered &&
		    !(untouched && t->role == TARGET_REPLICA && client_retry_read(w, c, t)))
			client_server_lost(w, c, s->fatal_forwarded);
	}
	if (failed)
		log_warning("server %s: %s", s->addr, reason);
	else
		log_debug("server %s: closed: %s", s->addr, reason);
	struct pool *p = s->pool;
	/*
	 * Only a failed connect or login says the server is unreachable; one that broke
	 * after login (terminated, say) must not hold the next clients off.
	 * Recorded before the wake below, which must not open another at once.
	 */
	if (failed && (s->state == SERVER_CONNECTING || s->state == SERVER_LOGIN)) {
		p->last_failure = ev_now(w->loop);
		snprintf(p->failure_sqlstate, sizeof(p->failure_sqlstate), "08006");
		snprintf(p->failure_message, sizeof(p->failure_message),
			 "server connection failed: %s", reason);
	}
	pool_remove_server(s);
	conn_close(&s->conn);
	params_free(&s->params);
	params_free(&s->startup);
	pstmt_server_free(s);
	if (s->inflight != NULL) {
		inflight_free(s->inflight);
		free(s->inflight);
	}
	free(s->scram);
	free(s);
	w->n_servers--;
	pool_wake(w, p);
}

void server_link(struct worker *w, struct server *s, struct client *c)
{
	if (c->state == CLIENT_WAITING)
		stats_record_wait(&s->pool->db->stats,
				  (uint64_t)((ev_now(w->loop) - c->wait_since) * 1e6));
	pool_set_server_state(s, SERVER_ACTIVE);
	s->client = c;
	c->server = s;
	s->conn.peer = &c->conn;
	c->conn.peer = &s->conn;
	s->query_start = ev_now(w->loop);
	s->expect_rfq = 0;
	s->forwarded_to_client = false;
	querylog_server_reset(s);
	client_on_linked(w, c);
}

void server_unlink(struct worker *w, struct server *s)
{
	struct client *c = s->client;
	s->client = NULL;
	s->release_pending = false;
	s->conn.peer = NULL;
	pstmt_server_unlinked(s);
	if (c == NULL)
		return;
	c->server = NULL;
	c->conn.peer = NULL;
	/* Backpressure between the two ends no longer applies. */
	conn_update_reading(&s->conn);
	client_on_unlinked(w, c);
}

void server_sync_params(struct worker *w, struct server *s, struct client *c)
{
	if (params_in_sync(&c->params, &s->params))
		return;
	struct obuf sql;
	obuf_init(&sql, 64 * 1024);
	size_t n = params_sync_sql(&c->params, &s->params, &sql);
	obuf_put_u8(&sql, 0);
	if (n > 0 && !sql.failed) {
		proto_put_query(&s->conn.out, (const char *)sql.data);
		s->swallow_rfq++;
	}
	params_apply_sync(&c->params, &s->params);
	obuf_free(&sql);
	(void)w;
}

void server_reset(struct worker *w, struct server *s)
{
	pool_set_server_state(s, SERVER_RESETTING);
	/* DISCARD ALL or DEALLOCATE ALL: assume the reset query dropped every statement. */
	pstmt_server_forgot(s);
	proto_put_query(&s->conn.out, w->cfg->server_reset_query);
	s->swallow_rfq++;
	if (conn_flush(&s->conn) == CONN_ERROR)
		server_close(w, s, "could not send server_reset_query", true);
}

/* The reset query finished: DISCARD ALL brought back the login settings. */
static void server_reset_done(struct worker *w, struct server *s)
{
	if (s->sync_failed) {
		server_close(w, s, "server_reset_query failed", true);
		return;
	}
	params_copy(&s->params, &s->startup);
	pool_server_ready(w, s);
}

/* ----- login ----- */

/* The user and secret pgsluice logs in with for pool p. */
static const char *server_login_secret(struct worker *w, const struct pool *p, const char **user)
{
	if (p->db->login_user != NULL) {
		*user = p->db->login_user;
		return p->db->login_password;
	}
	*user = p->user;
	const char *secret = userlist_find(w->users, p->user);
	return secret != NULL ? secret : auth_pool_secret(p->db, p->user);
}

/* SCRAM pass-through: the ClientKey a client proved for secret, and the secret parsed. */
static bool server_passthrough_key(const struct worker *w, const char *secret,
				   uint8_t client_key[SCRAM_KEY_LEN], struct scram_secret *parsed)
{
	return scram_secret_parse(secret, parsed) &&
	       scramkeys_find(w->scram_keys, parsed->stored_key, client_key);
}

bool server_can_log_in(struct worker *w, const struct pool *p)
{
	const char *user;
	const char *secret = server_login_secret(w, p, &user);
	if (secret == NULL || password_kind_of(secret) != PASSWORD_SCRAM)
		return true;
	uint8_t client_key[SCRAM_KEY_LEN];
	struct scram_secret parsed;
	bool known = server_passthrough_key(w, secret, client_key, &parsed);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return known;
}

static void server_send_startup(struct worker *w, struct server *s)
{
	struct pool *p = s->pool;
	const char *user;
	server_login_secret(w, p, &user);
	const char *names[PARAMS_MAX + 2], *values[PARAMS_MAX + 2];
	size_t n = 0;
	names[n] = "user";
	values[n++] = user;
	names[n] = "database";
	values[n++] = p->db->dbname;
	/* Start with the settings clients of this pool use, so that most links need no SET. */
	if (p->have_welcome) {
		for (uint16_t i = 0; i < params_count(&p->welcome); i++) {
			const struct param *pr = params_at(&p->welcome, i);
			if (pr->hash == 0)
				continue;
			names[n] = pr->name;
			values[n++] = pr->value;
			if (!pr->reported)
				params_set(&s->params, pr->name, pr->value, false);
		}
	}
	proto_put_startup(&s->conn.out, names, values, n);
}

/* Fails the login: waiting clients learn why when nothing else can serve them. */
static enum conn_action server_login_failed(struct server *s, const char *sqlstate,
					    const char *message)
{
	struct worker *w = server_worker(s);
	struct pool *p = s->pool;
	log_warning("server %s: login failed for %s/%s: %s", s->addr, p->db->name, p->user,
		    message);
	/* The server's own reason (28P01, 3D000, ...) is what waiting clients get. */
	if (message != p->failure_message)
		snprintf(p->failure_message, sizeof(p->failure_message), "%s", message);
	snprintf(p->failure_sqlstate, sizeof(p->failure_sqlstate), "%s", sqlstate);
	p->last_failure = ev_now(w->loop);
	if (p->target->role == TARGET_REPLICA)
		health_report_failure(w, p->target, message);
	server_close(w, s, "login failed", false);
	return CONN_GONE;
}

static enum conn_action server_login_auth(struct server *s, const uint8_t *body, uint32_t len)
{
	struct worker *w = server_worker(s);
	if (len < 4)
		return server_login_failed(s, "08P01", "invalid authentication request from server");
	uint32_t code = proto_get_u32(body);
	const uint8_t *data = body + 4;
	size_t dlen = len - 4;
	const char *user;
	const char *secret = server_login_secret(w, s->pool, &user);
	enum password_kind kind = secret != NULL ? password_kind_of(secret) : PASSWORD_PLAIN;
	switch (code) {
	case PROTO_AUTH_OK:
		return CONN_CONSUMED;
	case PROTO_AUTH_CLEARTEXT:
		if (secret == NULL || kind != PASSWORD_PLAIN)
			return server_login_failed(
			    s, "28P01", "server asks for a cleartext password that pgsluice does not have");
		proto_put_password(&s->conn.out, secret);
		break;
	case PROTO_AUTH_MD5: {
		if (secret == NULL || dlen != 4 || kind == PASSWORD_SCRAM)
			return server_login_failed(
			    s, "28P01", "server asks for md5 authentication that pgsluice cannot answer");
		char hashed[36], response[36];
		if (kind == PASSWORD_PLAIN) {
			password_md5_secret(user, secret, hashed);
			secret = hashed;
		}
		password_md5_response(secret, data, response);
		proto_put_password(&s->conn.out, response);
		break;
	}
	case PROTO_AUTH_SASL: {
		if (!proto_sasl_offers(data, dlen, "SCRAM-SHA-256"))
			return server_login_failed(s, "28000",
						   "server offers no SASL mechanism pgsluice supports");
		if (secret == NULL || kind == PASSWORD_MD5)
			return server_login_failed(
			    s, "28P01", "server asks for SCRAM and pgsluice has no plaintext password");
		uint8_t client_key[SCRAM_KEY_LEN];
		struct scram_secret parsed;
		if (kind == PASSWORD_SCRAM && !server_passthrough_key(w, secret, client_key, &parsed))
			return server_login_failed(
			    s, "28P01",
			    "server asks for SCRAM; pgsluice holds only a SCRAM secret for this user "
			    "and no client has logged in with it yet");
		free(s->scram);
		s->scram = calloc(1, sizeof(*s->scram));
		char first[512];
		bool started = s->scram != NULL &&
			       (kind == PASSWORD_SCRAM
					? scram_client_init_keys(s->scram, client_key, parsed.server_key)
					: scram_client_init(s->scram, secret));
		OPENSSL_cleanse(client_key, sizeof(client_key));
		if (!started || !scram_client_first(s->scram, first, sizeof(first)))
			return server_login_failed(s, "08006", "could not start SCRAM exchange");
		proto_put_sasl_initial(&s->conn.out, "SCRAM-SHA-256", first, strlen(first));
		break;
	}
	case PROTO_AUTH_SASL_CONTINUE: {
		char final[512];
		const char *err = NULL;
		if (s->scram == NULL ||
		    !scram_client_handle_server_first(s->scram, (const char *)data, dlen, final,
						      sizeof(final), &err))
			return server_login_failed(s, "28P01", err != NULL ? err : "SCRAM exchange failed");
		proto_put_sasl_response(&s->conn.out, final, strlen(final));
		break;
	}
	case PROTO_AUTH_SASL_FINAL: {
		const char *err = NULL;
		if (s->scram == NULL ||
		    !scram_client_verify_server_final(s->scram, (const char *)data, dlen, &err))
			return server_login_failed(s, "28P01",
						   err != NULL ? err : "server's SCRAM signature is wrong");
		return CONN_CONSUMED;
	}
	default:
		return server_login_failed(s, "28000", "server asks for an unsupported authentication method");
	}
	if (conn_flush(&s->conn) == CONN_ERROR)
		return server_login_failed(s, "08006", "could not send authentication response");
	return CONN_CONSUMED;
}

static enum conn_action server_login_message(struct server *s, const uint8_t *msg, uint32_t total)
{
	const uint8_t *body = msg + PROTO_HEADER_LEN;
	uint32_t len = total - PROTO_HEADER_LEN;
	switch (msg[0]) {
	case 'R':
		return server_login_auth(s, body, len);
	case 'S': {
		const char *name, *value;
		if (proto_parse_param_status(body, len, &name, &value))
			params_set(&s->params, name, value, true);
		return CONN_CONSUMED;
	}
	case 'K':
		if (len == 8) {
			s->backend_pid = proto_get_u32(body);
			s->backend_key = proto_get_u32(body + 4);
		}
		return CONN_CONSUMED;
	case 'Z':
		s->tx_status = len >= 1 ? (char)body[0] : 'I';
		free(s->scram);
		s->scram = NULL;
		params_copy(&s->startup, &s->params);
		log_debug("server %s: logged in (pid %u)", s->addr, s->backend_pid);
		s->event = SERVER_EVENT_LOGGED_IN;
		return CONN_YIELD;
	case 'E': {
		struct proto_error e;
		if (!proto_parse_error(body, len, &e) || e.message == NULL)
			return server_login_failed(s, "08P01", "malformed error from server");
		return server_login_failed(s, e.sqlstate != NULL ? e.sqlstate : "08006", e.message);
	}
	default: /* NoticeResponse, NegotiateProtocolVersion: nothing to do */
		return CONN_CONSUMED;
	}
}

/* ----- linked / idle message decisions ----- */

/* ReadyForQuery: either the end of an own statement or of the client's request. */
static enum conn_action server_on_ready(struct server *s, char status)
{
	struct worker *w = server_worker(s);
	struct client *c = s->client;
	s->tx_status = status;
	if (s->swallow_rfq > 0) {
		s->swallow_rfq--;
		if (s->swallow_rfq > 0)
			return CONN_CONSUMED;
		if (s->state == SERVER_RESETTING)
			s->event = SERVER_EVENT_RESET_DONE;
		else if (s->sync_failed && c != NULL)
			s->event = SERVER_EVENT_SYNC_FAILED;
		else if (c != NULL && c->state == CLIENT_WELCOME && s->expect_rfq == 0)
			s->event = SERVER_EVENT_WELCOME_DONE;
		else
			return CONN_CONSUMED;
		return CONN_YIELD;
	}
	if (c == NULL)
		return CONN_CONSUMED;
	if (s->expect_rfq > 0)
		s->expect_rfq--;
	if (s->expect_rfq == 0)
		stats_record_query(&s->pool->db->stats,
				   (uint64_t)((ev_now(w->loop) - s->query_start) * 1e6));
	client_on_ready(w, c, status);
	if (s->expect_rfq == 0) {
		enum pool_mode mode = c->mode;
		if (mode == POOL_STATEMENT && status != 'I')
			s->event = SERVER_EVENT_STATEMENT_TX;
		else if (status == 'I' && mode != POOL_SESSION)
			s->release_pending = true;
	}
	return CONN_FORWARD;
}

static enum conn_action server_decide_message(struct server *s, const uint8_t *msg,
					      uint32_t total, uint32_t avail)
{
	uint8_t type = msg[0];
	bool whole = avail == total;
	if (s->state == SERVER_LOGIN)
		return whole ? server_login_message(s, msg, total) : CONN_NEED_ALL;
	bool own = s->swallow_rfq > 0;
	switch (type) {
	case 'Z':
		if (!whole)
			return CONN_NEED_ALL;
		return server_on_ready(s, total > PROTO_HEADER_LEN ? (char)msg[5] : 'I');
	case 'S': {
		if (!whole)
			return CONN_NEED_ALL;
		const char *name, *value;
		if (proto_parse_param_status(msg + 5, total - 5, &name, &value)) {
			params_set(&s->params, name, value, true);
			if (s->client != NULL) {
				const char *was = params_get(&s->client->params, name);
				if (s->client->state != CLIENT_WELCOME &&
				    (was == NULL || strcmp(was, value) != 0))
					session_keep_login_params(s->client);
				params_set(&s->client->params, name, value, true);
			}
		}
		return own || s->client == NULL ? CONN_CONSUMED : CONN_FORWARD;
	}
	case 'E': {
		if (!whole)
			return CONN_NEED_ALL;
		struct proto_error e;
		bool ok = proto_parse_error(msg + 5, total - 5, &e);
		bool fatal = ok && e.severity != NULL &&
			     (strcmp(e.severity, "FATAL") == 0 || strcmp(e.severity, "PANIC") == 0);
		/* Its client's last request was answered, no transaction open: the server just goes. */
		bool unasked = fatal && s->release_pending;
		if (own || s->client == NULL || unasked) {
			log_warning("server %s: error %s: %s", s->addr,
				    own ? "on pgsluice's own statement" : "while idle",
				    ok && e.message != NULL ? e.message : "(malformed)");
			s->sync_failed = own;
			if (fatal || !own)
				s->close_on_release = true;
			return CONN_CONSUMED;
		}
		session_note_error(s->client);
		if (fatal) {
			s->close_on_release = true;
			/* A replica dying before it answered a read: the read is retried elsewhere. */
			if (!s->forwarded_to_client && s->pool->target->role == TARGET_REPLICA &&
			    s->client->route_read && !s->client->retried)
				return CONN_CONSUMED;
			s->fatal_forwarded = true;
		}
		return CONN_FORWARD;
	}
	default:
		if (own || s->client == NULL) {
			if (s->client == NULL && s->state == SERVER_IDLE)
				log_debug("server %s: message '%c' while idle dropped", s->addr, type);
			return CONN_SKIP;
		}
		return CONN_FORWARD;
	}
}

/*
 * Whether the answer to a replica read that may still be retried waits until
 * its ReadyForQuery is in the buffer too: a replica that dies half-way through
 * its answer (an immediate shutdown flushes what it had) then has sent the
 * client nothing, and the read runs elsewhere. Only small answers are held;
 * a larger one is passed on as it comes and is not retried. Notices ahead of
 * the answer pass at once: they do not stop a retry.
 */
static bool server_holds_answer(const struct server *s, const uint8_t *msg, uint32_t total)
{
	const struct client *c = s->client;
	if (c == NULL || s->forwarded_to_client || s->expect_rfq == 0 || msg[0] == 'N' ||
	    msg[0] == 'S' || !c->route_read || c->retried || !c->retry_ok ||
	    s->pool->target->role != TARGET_REPLICA)
		return false;
	const struct iobuf *in = s->conn.in;
	const uint8_t *end = in->data + in->end;
	size_t cap = s->conn.worker->iobufs.size / 2;
	if (total >= cap || (size_t)(end - msg) >= cap)
		return false;
	for (const uint8_t *m = msg; end - m >= PROTO_HEADER_LEN;) {
		uint32_t size = proto_get_u32(m + 1) + 1;
		if ((size_t)(end - m) < size)
			break;
		if (m[0] == 'Z')
			return false;
		m += size;
	}
	return true;
}

static enum conn_action server_decide(void *owner, const uint8_t *msg, uint32_t total,
				      uint32_t avail)
{
	struct server *s = owner;
	if (s->batch != NULL)
		return batch_on_server_message(s, msg, total, avail);
	if (server_holds_answer(s, msg, total))
		return CONN_NEED_ALL;
	/* A CommandComplete ends a timed statement: its tag gives the row count. */
	if (msg[0] == 'C' && avail < total && s->inflight != NULL && s->client != NULL)
		return CONN_NEED_ALL;
	enum pstmt_verdict pv = PSTMT_PASS;
	if (s->replies != NULL && s->client != NULL && s->swallow_rfq == 0 &&
	    s->state != SERVER_LOGIN)
		pv = pstmt_on_server_message(server_worker(s), s, msg, total, avail);
	if (pv == PSTMT_NEED_ALL)
		return CONN_NEED_ALL;
	if (pv == PSTMT_SWALLOW)
		return CONN_SKIP;
	enum conn_action act = server_decide_message(s, msg, total, avail);
	if (act == CONN_FORWARD && s->inflight != NULL)
		querylog_on_server_message(server_worker(s), s, msg, total);
	/* Notices and parameter reports are not an answer: a read may still be retried. */
	if (act == CONN_FORWARD && msg[0] != 'N' && msg[0] != 'S')
		s->forwarded_to_client = true;
	/* pstmt.c already wrote what the client gets in its place. */
	if (pv == PSTMT_REPLACED && act == CONN_FORWARD)
		return CONN_CONSUMED;
	return act;
}

/* Acts on what a ReadyForQuery asked for, now that processing stopped. */
static void server_handle_event(struct worker *w, struct server *s)
{
	enum server_event ev = s->event;
	s->event = SERVER_EVENT_NONE;
	switch (ev) {
	case SERVER_EVENT_NONE:
		break;
	case SERVER_EVENT_LOGGED_IN:
		pool_server_ready(w, s);
		break;
	case SERVER_EVENT_RESET_DONE:
		server_reset_done(w, s);
		break;
	case SERVER_EVENT_WELCOME_DONE:
		client_finish_welcome(w, s->client);
		break;
	case SERVER_EVENT_SYNC_FAILED:
		s->sync_failed = false;
		s->close_on_release = true;
		client_fatal(w, s->client, "08P01", "could not apply the session's settings on a server");
		break;
	case SERVER_EVENT_STATEMENT_TX:
		client_fatal(w, s->client, "0A000",
			     "transactions are not allowed in statement pooling mode");
		break;
	case SERVER_EVENT_BATCH:
		batch_on_server_event(w, s);
		break;
	}
}

/* Handles what conn_process reported for s. */
static void server_after_process(struct worker *w, struct server *s, enum conn_result r)
{
	switch (r) {
	case CONN_OK:
		if (s->event != SERVER_EVENT_NONE)
			server_handle_event(w, s);
		else if (s->release_pending && s->client != NULL)
			pool_release(w, s);
		break;
	case CONN_YIELDED:
		server_handle_event(w, s);
		break;
	case CONN_BLOCKED:
	case CONN_CLOSED:
		break;
	case CONN_BAD_LENGTH:
	case CONN_TOO_BIG:
		log_warning("server %s: invalid message '%c' of length %u", s->addr, s->conn.bad_type,
			    s->conn.bad_length);
		server_close(w, s, "protocol violation by server", true);
		break;
	case CONN_PEER_ERROR:
	case CONN_ERROR: /* conn_process reports write failures as PEER_ERROR */
		client_close(w, s->client, "client connection broke");
		break;
	}
}

void server_continue(struct worker *w, struct server *s)
{
	server_after_process(w, s, conn_process(&s->conn, (uint32_t)w->cfg->max_packet_size));
}

static void server_on_readable(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	struct server *s = io->data;
	struct worker *w = server_worker(s);
	if (s->tls_setup != SERVER_TLS_NONE) {
		server_tls_step(w, s);
		return;
	}
	int n = conn_read(&s->conn);
	if (n == -3)
		return;
	if (n == 0 || n == -1) {
		/* Forward what arrived before the end (a FATAL error, say) first. */
		if (conn_buffered(&s->conn) > 0 && s->state != SERVER_LOGIN) {
			enum conn_result r = conn_process(&s->conn, (uint32_t)w->cfg->max_packet_size);
			if (r == CONN_CLOSED)
				return;
			s->event = SERVER_EVENT_NONE;
		}
		if (s->state == SERVER_LOGIN || s->state == SERVER_CONNECTING) {
			server_login_failed(s, "08006", "server closed the connection during login");
			return;
		}
		server_close(w, s, n == 0 ? "server closed the connection" : strerror(errno),
			     s->client != NULL || s->state != SERVER_IDLE);
		return;
	}
	server_continue(w, s);
}

/* Sends the startup packet: the login proper begins. */
static void server_start_login(struct server *s)
{
	server_send_startup(server_worker(s), s);
	if (conn_flush(&s->conn) == CONN_ERROR)
		server_login_failed(s, "08006", "could not send the startup packet");
}

/* Whether s asks for TLS: not over a unix socket, and not in disable or allow. */
static bool server_asks_tls(const struct worker *w, const struct server *s)
{
	return w->cfg->server_tls_mode >= TLS_MODE_PREFER && s->pool->target->host[0] != '/';
}

/* Fails the login over TLS with why, naming the server and the mode. */
static void server_tls_failed(struct worker *w, struct server *s, const char *why)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "TLS with server %s failed (server_tls_mode = %s): %s",
		 s->addr, tls_mode_name((enum tls_mode)w->cfg->server_tls_mode), why);
	server_login_failed(s, "08006", msg);
}

/*
 * Reads the server's one-byte answer to the SSLRequest and acts on it.
 * Returns true when the handshake is to begin; on false s may be gone.
 */
static bool server_tls_answer(struct worker *w, struct server *s)
{
	uint8_t answer;
	/* Exactly one byte: whatever follows is the server's TLS (CVE-2021-23222). */
	ssize_t n = recv(s->conn.fd, &answer, 1, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return false;
	if (n <= 0) {
		server_tls_failed(w, s, n == 0 ? "server closed the connection after the SSLRequest"
					   : strerror(errno));
		return false;
	}
	s->conn.bytes_in++;
	enum tls_mode mode = (enum tls_mode)w->cfg->server_tls_mode;
	if (answer == 'N') {
		if (mode >= TLS_MODE_REQUIRE) {
			server_tls_failed(w, s, "the server does not accept TLS");
			return false;
		}
		log_debug("server %s: no TLS offered, going on in plaintext", s->addr);
		s->tls_setup = SERVER_TLS_NONE;
		server_start_login(s);
		return false;
	}
	if (answer != 'S') {
		server_tls_failed(w, s, "unexpected answer to the SSLRequest");
		return false;
	}
	const char *host = mode == TLS_MODE_VERIFY_FULL ? s->pool->target->host : NULL;
	if (w->server_tls == NULL ||
	    !conn_tls_start(&s->conn, w->server_tls, false, host)) {
		server_tls_failed(w, s, w->server_tls == NULL ? "no TLS context (see the log)"
							 : "could not start TLS");
		return false;
	}
	s->tls_setup = SERVER_TLS_HANDSHAKE;
	return true;
}

/* Advances the SSLRequest exchange and the handshake; logs in once TLS is up. */
static void server_tls_step(struct worker *w, struct server *s)
{
	if (s->tls_setup == SERVER_TLS_ANSWER && !server_tls_answer(w, s))
		return;
	char err[256];
	switch (conn_tls_handshake(&s->conn, err, sizeof(err))) {
	case TLS_DONE:
		log_debug("server %s: TLS %s/%s", s->addr, tls_version(s->conn.ssl),
			  tls_cipher(s->conn.ssl));
		s->tls_setup = SERVER_TLS_NONE;
		server_start_login(s);
		break;
	case TLS_WANT_READ:
	case TLS_WANT_WRITE:
		break;
	case TLS_CLOSED:
	case TLS_FAILED:
		server_tls_failed(w, s, err);
		break;
	}
}

static void server_on_connected(struct worker *w, struct server *s)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(s->conn.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "could not connect to server %s: %s", s->addr,
			 strerror(err));
		server_close(w, s, msg, true);
		return;
	}
	ev_io_stop(w->loop, &s->conn.wio);
	s->conn.write_blocked = false;
	pool_set_server_state(s, SERVER_LOGIN);
	ev_io_start(w->loop, &s->conn.rio);
	if (server_asks_tls(w, s)) {
		s->tls_setup = SERVER_TLS_ANSWER;
		obuf_put_u32(&s->conn.out, 8);
		obuf_put_u32(&s->conn.out, PROTO_SSL_REQUEST);
		if (conn_flush(&s->conn) == CONN_ERROR)
			server_login_failed(s, "08006", "could not send the SSLRequest");
		return;
	}
	server_start_login(s);
}

static void server_on_writable(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	struct server *s = io->data;
	struct worker *w = server_worker(s);
	if (s->state == SERVER_CONNECTING) {
		server_on_connected(w, s);
		return;
	}
	if (s->tls_setup == SERVER_TLS_HANDSHAKE) {
		server_tls_step(w, s);
		return;
	}
	enum conn_result r = conn_flush(&s->conn);
	if (r == CONN_ERROR) {
		server_close(w, s, "could not write to server", true);
		return;
	}
	if (r == CONN_OK && s->client != NULL)
		client_continue(w, s->client);
}
