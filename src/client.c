/*
 * client.c - the client connection state machine (client.h).
 *
 * Reads the startup packet, authenticates, learns the session settings,
 * then for each request asks the pool for a server and streams the
 * request to it. The client sees only what a direct connection would show:
 * its own BackendKeyData, its own settings, and each server's answers.
 */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "auth.h"
#include "batch.h"
#include "cancel.h"
#include "health.h"
#include "classify.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "querylog.h"
#include "router.h"
#include "server.h"
#include "prepared.h"
#include "pstmt.h"
#include "session.h"

static enum conn_action client_decide(void *owner, const uint8_t *msg, uint32_t total,
				      uint32_t avail);
static void client_on_readable(struct ev_loop *loop, ev_io *io, int revents);
static void client_on_writable(struct ev_loop *loop, ev_io *io, int revents);

static struct worker *client_worker(const struct client *c)
{
	return c->conn.worker;
}

void client_set_state(struct client *c, enum client_state state)
{
	c->state = state;
}

void client_refuse(int fd, const char *sqlstate, const char *message)
{
	struct obuf ob;
	obuf_init(&ob, 4096);
	proto_put_error(&ob, true, sqlstate, message, NULL, NULL);
	ssize_t n = send(fd, ob.data, ob.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n;
	obuf_free(&ob);
	close(fd);
}

void client_accept(struct worker *w, int fd, const char *addr, bool refusing)
{
	struct client *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		client_refuse(fd, "53200", "out of memory");
		return;
	}
	conn_init(&c->conn, w, fd, c, client_decide, client_on_readable, client_on_writable);
	list_init(&c->wait_node);
	list_init(&c->deferred_node);
	list_add_tail(&w->clients, &c->node);
	params_init(&c->params);
	params_init(&c->asked);
	obuf_init(&c->retry, RETRY_LIMIT);
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->connected_at = c->last_activity = c->last_read = ev_now(w->loop);
	c->state = CLIENT_STARTUP;
	c->refusing = refusing;
	w->n_refusing += refusing;
	w->n_clients++;
	ev_io_start(w->loop, &c->conn.rio);
}

/* Sends what c has queued; false when c had to be closed. */
static bool client_flush(struct worker *w, struct client *c)
{
	enum conn_result r = conn_flush(&c->conn);
	if (r == CONN_ERROR) {
		client_close(w, c, "could not write to client");
		return false;
	}
	return true;
}

/* Schedules c's buffered input for processing before the loop polls again. */
static void client_defer(struct worker *w, struct client *c)
{
	if (!list_linked(&c->deferred_node))
		list_add_tail(&w->deferred, &c->deferred_node);
}

void client_resume(struct worker *w, struct client *c)
{
	client_defer(w, c);
}

void client_fatal(struct worker *w, struct client *c, const char *sqlstate, const char *message)
{
	if (c == NULL)
		return;
	log_info("client %s: FATAL %s: %s", c->addr, sqlstate, message);
	conn_adopt_pending(&c->conn);
	proto_put_error(&c->conn.out, true, sqlstate, message, NULL, NULL);
	/* Best effort: the socket buffer takes an error message whole. */
	struct conn *peer = c->conn.peer;
	c->conn.peer = NULL;
	conn_flush(&c->conn);
	c->conn.peer = peer;
	client_close(w, c, message);
}

void client_close(struct worker *w, struct client *c, const char *reason)
{
	if (c == NULL)
		return;
	if (w->cfg->log_disconnections && c->state != CLIENT_STARTUP && c->state != CLIENT_TLS)
		log_info("client %s: closing (%s/%s): %s", c->addr, c->dbname ? c->dbname : "",
			 c->user ? c->user : "", reason);
	pool_cancel_wait(c);
	if (c->batch != NULL)
		batch_client_gone(w, c);
	struct server *s = c->server;
	if (s != NULL) {
		bool clean = s->expect_rfq == 0 && s->swallow_rfq == 0 && s->tx_status == 'I' &&
			     c->state != CLIENT_WELCOME && conn_buffered(&s->conn) == 0;
		s->client = NULL;
		s->conn.peer = NULL;
		s->release_pending = false;
		c->server = NULL;
		c->conn.peer = NULL;
		/* A pinned client's server holds session state nobody else may see. */
		if (clean && !c->pinned)
			pool_release(w, s);
		else
			server_close(w, s,
				     c->pinned ? "its pinned client left"
					       : "client left during a request or transaction",
				     false);
	}
	if (list_linked(&c->deferred_node))
		list_del(&c->deferred_node);
	if (c->pool != NULL && c->state != CLIENT_STARTUP && c->state != CLIENT_AUTH)
		c->pool->n_clients--;
	struct pool *p = c->pool;
	cancel_unregister(w, c);
	list_del(&c->node);
	conn_close(&c->conn);
	auth_clear(c);
	auth_release(c);
	params_free(&c->params);
	params_free(&c->asked);
	querylog_client_gone(c);
	session_forget(c);
	if (c->login_params != NULL) {
		params_free(c->login_params);
		free(c->login_params);
	}
	obuf_free(&c->retry);
	free(c->user); /* and dbname, in the same allocation */
	w->n_refusing -= c->refusing;
	free(c);
	w->n_clients--;
	if (p != NULL)
		pool_free_if_unused(w, p);
}

void client_fail_request(struct worker *w, struct client *c, const char *sqlstate,
			 const char *message)
{
	if (c->state == CLIENT_WELCOME) {
		/* Closed from the deferred run: callers may be iterating over clients. */
		log_info("client %s: FATAL %s: %s", c->addr, sqlstate, message);
		proto_put_error(&c->conn.out, true, sqlstate, message, NULL, NULL);
		c->closing_after_flush = true;
		client_defer(w, c);
		return;
	}
	proto_put_error(&c->conn.out, false, sqlstate, message, NULL, NULL);
	if (c->batch_rerun) {
		/* Its request left its input when it joined a batch: it ends here. */
		c->batch_rerun = false;
		c->retried = false;
		obuf_reset(&c->retry);
		proto_put_ready(&c->conn.out, 'I');
	} else {
		c->fail_pending = true;
	}
	client_set_state(c, CLIENT_IDLE);
	client_defer(w, c);
}

void client_server_lost(struct worker *w, struct client *c, bool fatal_forwarded)
{
	if (fatal_forwarded) {
		if (client_flush(w, c))
			client_close(w, c, "server closed the connection");
		return;
	}
	client_fatal(w, c, "08006", "server connection was lost during the request");
}

void client_on_ready(struct worker *w, struct client *c, char status)
{
	struct stats *st = &c->pool->db->stats;
	ev_tstamp now = ev_now(w->loop);
	c->in_transaction = status != 'I';
	c->last_activity = now;
	session_on_ready(c, c->server, status);
	if (c->awaits_quiet && (c->server == NULL || c->server->expect_rfq == 0)) {
		c->awaits_quiet = false;
		client_resume(w, c);
	}
	if (c->server != NULL && c->server->expect_rfq == 0) {
		obuf_reset(&c->retry);
		c->retry_rfq = 0;
	}
	if (!c->in_transaction && c->xact_open) {
		c->xact_open = false;
		stats_record_xact(st, (uint64_t)((now - c->xact_start) * 1e6));
		if (!c->route_read && c->server != NULL && c->server->pool->target->role == TARGET_PRIMARY)
			router_note_primary_commit(w, c);
		c->route_read = false;
	}
	stats_record_bytes(st, c->conn.bytes_in - c->bytes_in_counted,
			   c->conn.bytes_out - c->bytes_out_counted);
	c->bytes_in_counted = c->conn.bytes_in;
	c->bytes_out_counted = c->conn.bytes_out;
}

/* The settings a new client starts with: the server's defaults, then its own requests. */
static void client_merge_startup(struct client *c, const struct server *s)
{
	struct params want;
	params_init(&want);
	for (uint16_t i = 0; i < params_count(&s->startup); i++) {
		const struct param *p = params_at(&s->startup, i);
		if (p->reported)
			params_set(&want, p->name, p->value, true);
	}
	for (uint16_t i = 0; i < params_count(&c->params); i++) {
		const struct param *p = params_at(&c->params, i);
		params_set(&want, p->name, p->value, false);
	}
	params_free(&c->params);
	c->params = want;
}

void client_on_linked(struct worker *w, struct client *c)
{
	struct server *s = c->server;
	if (c->state == CLIENT_WELCOME) {
		client_merge_startup(c, s);
		server_sync_params(w, s, c);
		if (s->swallow_rfq == 0) {
			client_finish_welcome(w, c);
			return;
		}
		if (conn_flush(&s->conn) == CONN_ERROR)
			server_close(w, s, "could not write to server", true);
		return;
	}
	client_set_state(c, CLIENT_ACTIVE);
	server_sync_params(w, s, c);
	if (c->retried && c->retry.len > 0) {
		/* The read that failed elsewhere runs again here, from its first byte. */
		if (!c->rename_statements)
			obuf_put(&s->conn.out, c->retry.data, c->retry.len);
		else if (!pstmt_replay(w, c, s, c->retry.data, c->retry.len))
			return;
		querylog_on_replay(w, c, s, c->retry.data, c->retry.len);
		s->expect_rfq += c->retry_rfq;
		s->query_start = ev_now(w->loop);
	}
	c->batch_rerun = false;
	client_defer(w, c);
}

bool client_retry_read(struct worker *w, struct client *c, struct target *failed)
{
	if (!c->route_read || c->retried || (c->retry.len > 0 && !c->retry_ok) ||
	    (c->rename_statements && !pstmt_replay_fits(c->retry.data, c->retry.len))) {
		log_debug("client %s: read on %s:%d not retried (read %d, retried %d, kept %d)",
			  c->addr, failed->host, failed->port, c->route_read, c->retried, c->retry_ok);
		return false;
	}
	struct target *t = router_retry_target(w, c, failed);
	if (t == NULL)
		return false;
	struct pool *p = t == c->pool->db->primary ? c->pool : pool_get(w, c->pool->db, t, c->user);
	if (p == NULL)
		return false;
	log_debug("client %s: read failed on %s:%d, retrying on %s:%d", c->addr, failed->host,
		  failed->port, t->host, t->port);
	c->retried = true;
	t->retries++;
	client_set_state(c, CLIENT_IDLE);
	pool_acquire(w, p, c);
	return true;
}

void client_on_unlinked(struct worker *w, struct client *c)
{
	client_set_state(c, CLIENT_IDLE);
	c->last_activity = ev_now(w->loop);
	if (c->retry.len == 0)
		obuf_free(&c->retry); /* an idle client holds no buffer */
	if (conn_buffered(&c->conn) > 0)
		client_defer(w, c);
	if (w->closing_clients)
		client_defer(w, c);
}

void client_finish_welcome(struct worker *w, struct client *c)
{
	struct server *s = c->server;
	struct pool *p = c->pool;
	if (s != NULL) {
		params_copy(&c->params, &s->params);
		params_copy(&p->welcome, &c->params);
		params_copy(&p->welcome_asked, &c->asked);
		p->have_welcome = true;
	} else {
		params_copy(&c->params, &p->welcome);
	}
	params_free(&c->asked);
	for (uint16_t i = 0; i < params_count(&c->params); i++) {
		const struct param *pr = params_at(&c->params, i);
		if (pr->reported)
			proto_put_param_status(&c->conn.out, pr->name, pr->value);
	}
	proto_put_backend_key(&c->conn.out, c->cancel_pid, c->cancel_key);
	proto_put_ready(&c->conn.out, 'I');
	if (w->cfg->log_connections)
		log_info("client %s: login %s/%s", c->addr, c->dbname, c->user);
	c->last_activity = ev_now(w->loop);
	if (s != NULL && c->mode == POOL_SESSION) {
		client_set_state(c, CLIENT_ACTIVE);
	} else {
		client_set_state(c, CLIENT_IDLE);
		if (s != NULL)
			pool_release(w, s);
	}
	client_flush(w, c);
}

/* ----- startup and authentication ----- */

/* Sets c's user and dbname, one allocation for both; false when memory ran out. */
static bool client_set_names(struct client *c, const char *user, const char *dbname)
{
	size_t ul = strlen(user) + 1, dl = strlen(dbname) + 1;
	c->user = malloc(ul + dl);
	if (c->user == NULL)
		return false;
	memcpy(c->user, user, ul);
	c->dbname = memcpy(c->user + ul, dbname, dl);
	return true;
}

/* Whether a startup parameter reaches the server as a setting. */
static bool client_param_is_setting(const struct worker *w, const char *name)
{
	static const char *const not_settings[] = {"user", "database", "replication", "options", NULL};
	for (size_t i = 0; not_settings[i] != NULL; i++)
		if (strcmp(name, not_settings[i]) == 0)
			return false;
	return strncmp(name, "_pq_.", 5) != 0 &&
	       !config_list_contains(w->cfg->ignore_startup_parameters, name);
}

/* Authenticated: find the database and pool, then learn the settings. */
static void client_login(struct worker *w, struct client *c)
{
	if (strcmp(c->dbname, ADMIN_DATABASE) == 0) {
		params_free(&c->asked);
		admin_login(w, c);
		return;
	}
	struct database *db = worker_find_database(w, c->dbname);
	if (db == NULL) {
		char msg[256];
		snprintf(msg, sizeof(msg), "database \"%s\" does not exist", c->dbname);
		client_fatal(w, c, "3D000", msg);
		return;
	}
	if (db->disabled) {
		char msg[256];
		snprintf(msg, sizeof(msg), "database \"%s\" is disabled", c->dbname);
		client_fatal(w, c, "57P03", msg);
		return;
	}
	c->pool = pool_get(w, db, db->primary, c->user);
	if (c->pool == NULL) {
		client_fatal(w, c, "53200", "out of memory");
		return;
	}
	c->pool->n_clients++;
	auth_give_secret_to_pool(c);
	c->mode = pool_mode_of(w, c->pool);
	c->rename_statements = c->mode != POOL_SESSION && w->cfg->max_prepared_statements > 0;
	const struct user_conf *uc = config_find_user(w->cfg, c->user);
	c->read_routing = uc != NULL && uc->read_routing_set ? uc->read_routing : db->read_routing;
	cancel_register(w, c);
	client_set_state(c, CLIENT_WELCOME);
	if (c->pool->have_welcome && params_equal(&c->pool->welcome_asked, &c->asked)) {
		client_finish_welcome(w, c);
		return;
	}
	pool_acquire(w, c->pool, c);
}

void client_on_auth(struct worker *w, struct client *c, enum auth_result r)
{
	if (r == AUTH_GONE)
		return;
	if (r == AUTH_FAILED) {
		char msg[256];
		snprintf(msg, sizeof(msg), "password authentication failed for user \"%s\"", c->user);
		client_fatal(w, c, "28P01", msg);
		return;
	}
	if (r == AUTH_CONTINUE) {
		client_flush(w, c);
		return;
	}
	auth_clear(c);
	proto_put_auth(&c->conn.out, PROTO_AUTH_OK, NULL, 0);
	client_login(w, c);
}

/* A CancelRequest: forward it to the server running that client's query. */
static void client_handle_cancel(struct worker *w, struct client *c, uint32_t pid, uint32_t key)
{
	struct client *target = cancel_find(w, pid, key);
	uint32_t slot = cancel_key_slot(pid);
	if (target == NULL && w->cfg->so_reuseport && slot != w->instance_slot) {
		cancel_forward_to_peer(w, slot, pid, key);
	} else if (target == NULL) {
		log_debug("client %s: cancel request for an unknown key", c->addr);
	} else if (target->server != NULL && target->server->expect_rfq > 0) {
		cancel_server_query(w, target->server);
	} else if (target->state == CLIENT_WAITING) {
		pool_cancel_wait(target);
		client_fail_request(w, target, "57014", "canceling statement due to user request");
	} else if (target->state == CLIENT_BATCHED) {
		batch_cancel(w, target);
	}
	client_close(w, c, "cancel request handled");
}

/* One step of c's TLS handshake; closes c when it fails. */
static void client_tls_step(struct worker *w, struct client *c)
{
	char err[256];
	switch (conn_tls_handshake(&c->conn, err, sizeof(err))) {
	case TLS_DONE:
		log_debug("client %s: TLS %s/%s", c->addr, tls_version(c->conn.ssl),
			  tls_cipher(c->conn.ssl));
		/* The startup packet follows (conn_tls_handshake fed it when already in). */
		client_set_state(c, CLIENT_STARTUP);
		break;
	case TLS_WANT_READ:
	case TLS_WANT_WRITE:
		break;
	case TLS_CLOSED:
	case TLS_FAILED: {
		/* No FATAL message: the client cannot read plaintext any more. */
		char why[300];
		snprintf(why, sizeof(why), "TLS handshake failed: %s", err);
		log_info("client %s: %s", c->addr, why);
		client_close(w, c, why);
		break;
	}
	}
}

/* SSLRequest with a TLS context: answer 'S' and start the handshake. */
static void client_begin_tls(struct worker *w, struct client *c)
{
	obuf_put_u8(&c->conn.out, 'S');
	if (conn_flush(&c->conn) != CONN_OK) {
		client_close(w, c, "could not answer the SSLRequest");
		return;
	}
	if (!conn_tls_start(&c->conn, w->client_tls, true, NULL)) {
		log_warning("client %s: could not start TLS", c->addr);
		client_close(w, c, "could not start TLS");
		return;
	}
	client_set_state(c, CLIENT_TLS);
	client_tls_step(w, c);
}

/* Whether c must use TLS and does not (unix socket clients never must). */
static bool client_lacks_tls(const struct worker *w, const struct client *c)
{
	return c->conn.ssl == NULL && w->cfg->client_tls_mode >= TLS_MODE_REQUIRE &&
	       strcmp(c->addr, "unix") != 0;
}

/* Reads the untyped startup-phase packet; false when c was closed. */
static bool client_read_startup(struct worker *w, struct client *c)
{
	struct iobuf *in = c->conn.in;
	while (in != NULL && c->state == CLIENT_STARTUP) {
		uint32_t have = iobuf_len(in);
		if (have < 4)
			return true;
		const uint8_t *pkt = in->data + in->start;
		uint32_t len = proto_get_u32(pkt);
		if (len < 8 || len > (uint32_t)w->cfg->max_startup_packet ||
		    len > w->iobufs.size) {
			client_fatal(w, c, "08P01", "invalid length of startup packet");
			return false;
		}
		if (have < len)
			return true;
		struct proto_startup st;
		const char *err = proto_parse_startup(pkt, len, &st);
		if (err != NULL) {
			client_fatal(w, c, "08P01", err);
			return false;
		}
		in->start += len;
		c->conn.scan = in->start;
		if (st.code == PROTO_SSL_REQUEST || st.code == PROTO_GSSENC_REQUEST) {
			if (iobuf_len(in) > 0) {
				/* CVE-2021-23214: such bytes would be taken as sent under TLS. */
				client_fatal(w, c, "08P01", "data after an encryption request");
				return false;
			}
			if (st.code == PROTO_SSL_REQUEST && w->client_tls != NULL &&
			    c->conn.ssl == NULL) {
				client_begin_tls(w, c);
				return false;
			}
			obuf_put_u8(&c->conn.out, 'N');
			return client_flush(w, c);
		}
		if (st.code == PROTO_CANCEL_REQUEST) {
			client_handle_cancel(w, c, st.cancel_pid, st.cancel_key);
			return false;
		}
		if (w->shutting_down) {
			client_fatal(w, c, "57P01", "pgsluice is shutting down");
			return false;
		}
		if (client_lacks_tls(w, c)) {
			char msg[160];
			snprintf(msg, sizeof(msg),
				 "pgsluice accepts only TLS connections (client_tls_mode = %s): "
				 "connect with sslmode=require or stronger",
				 tls_mode_name((enum tls_mode)w->cfg->client_tls_mode));
			client_fatal(w, c, "28000", msg);
			return false;
		}
		if (c->refusing) {
			client_fatal(w, c, "53300", "sorry, too many clients already (max_client_conn)");
			return false;
		}
		const char *user = proto_startup_get(&st, "user");
		if (user == NULL || user[0] == '\0') {
			client_fatal(w, c, "28000", "no PostgreSQL user name specified in startup packet");
			return false;
		}
		if (proto_startup_get(&st, "replication") != NULL &&
		    strcmp(proto_startup_get(&st, "replication"), "false") != 0) {
			client_fatal(w, c, "08P01", "replication connections are not supported by pgsluice");
			return false;
		}
		const char *db = proto_startup_get(&st, "database");
		if (!client_set_names(c, user, db != NULL && db[0] != '\0' ? db : user)) {
			client_fatal(w, c, "53200", "out of memory");
			return false;
		}
		const char *unknown[PROTO_MAX_STARTUP_PARAMS];
		size_t n_unknown = 0;
		for (size_t i = 0; i < st.n_params; i++) {
			if (strncmp(st.names[i], "_pq_.", 5) == 0)
				unknown[n_unknown++] = st.names[i];
			else if (client_param_is_setting(w, st.names[i]) &&
				 !params_set(&c->params, st.names[i], st.values[i], false)) {
				client_fatal(w, c, "08P01", "too many or too long startup parameters");
				return false;
			}
		}
		const char *options = proto_startup_get(&st, "options");
		if (options != NULL && (err = params_add_options(&c->params, options)) != NULL) {
			client_fatal(w, c, "08P01", err);
			return false;
		}
		params_copy(&c->asked, &c->params);
		if ((st.code & 0xffff) != 0 || n_unknown > 0)
			proto_put_negotiate(&c->conn.out, 0, unknown, n_unknown);
		/* A login that needs no more input (trust) leaves c idle: no buffer held. */
		conn_release_empty_input(&c->conn);
		client_set_state(c, CLIENT_AUTH);
		client_on_auth(w, c, auth_begin(w, c));
		return false;
	}
	return true;
}

/* ----- logged-in message decisions ----- */

/* Statement pooling refuses a transaction before it reaches a server. */
static bool client_opens_transaction(const uint8_t *msg, uint32_t total)
{
	struct classify_result r;
	const char *sql = (const char *)msg + PROTO_HEADER_LEN;
	size_t len = strnlen(sql, total - PROTO_HEADER_LEN);
	classify_statement(sql, len, NULL, &r);
	return r.kind == CLASSIFY_BEGIN || r.kind == CLASSIFY_START;
}

/* Skips spaces; then true when the text at *p starts with word (any case). */
static bool take_word(const char **p, const char *end, const char *word)
{
	while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r'))
		(*p)++;
	size_t n = strlen(word);
	if ((size_t)(end - *p) < n || strncasecmp(*p, word, n) != 0)
		return false;
	*p += n;
	return true;
}

/* Recognizes "SET pgsluice.route = primary|replica|auto" (pgsluice answers it itself). */
static bool client_parse_route_setting(const uint8_t *msg, uint32_t total, enum route_pin *pin)
{
	const char *p = (const char *)msg + PROTO_HEADER_LEN;
	const char *end = p + strnlen(p, total - PROTO_HEADER_LEN);
	if (!take_word(&p, end, "set") || !take_word(&p, end, "pgsluice.route"))
		return false;
	if (!take_word(&p, end, "=") && !take_word(&p, end, "to"))
		return false;
	bool quoted = take_word(&p, end, "'");
	if (take_word(&p, end, "primary"))
		*pin = ROUTE_PIN_PRIMARY;
	else if (take_word(&p, end, "replica"))
		*pin = ROUTE_PIN_REPLICA;
	else if (take_word(&p, end, "auto"))
		*pin = ROUTE_PIN_AUTO;
	else
		return false;
	if (quoted && !take_word(&p, end, "'"))
		return false;
	take_word(&p, end, ";");
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p == end;
}

/*
 * Answers c's Query itself, in its place after what c's server still owes:
 * the bytes in before (may be NULL), an error when sqlstate is set, else
 * the command tag text, then ReadyForQuery.
 */
static void client_answer_query(struct client *c, const struct obuf *before,
				const char *sqlstate, const char *text)
{
	struct server *s = c->server;
	struct obuf ob;
	obuf_init(&ob, 64 * 1024);
	if (before != NULL)
		obuf_put(&ob, before->data, before->len);
	if (sqlstate != NULL) {
		proto_put_error(&ob, false, sqlstate, text, NULL, NULL);
	} else {
		obuf_msg_begin(&ob, 'C');
		obuf_put_str(&ob, text);
		obuf_msg_end(&ob);
	}
	proto_put_ready(&ob, s != NULL ? s->tx_status : 'I');
	pstmt_client_answer(c, s, ob.data, ob.len);
	obuf_free(&ob);
}

/* DISCARD ALL of an unpinned client: its statements and settings go back to login's. */
static void client_discard_all(struct client *c)
{
	if (c->prepared != NULL)
		prepared_forget_all(c->prepared);
	session_forget(c);
	if (c->login_params == NULL) {
		/* No setting changed since login (session_keep_login_params). */
		client_answer_query(c, NULL, NULL, "DISCARD ALL");
		return;
	}
	/* RESET ALL reports every reported parameter it changes back. */
	struct obuf status;
	obuf_init(&status, 32 * 1024);
	for (uint16_t i = 0; i < params_count(c->login_params); i++) {
		const struct param *p = params_at(c->login_params, i);
		const char *now = params_get(&c->params, p->name);
		if (p->reported && (now == NULL || strcmp(now, p->value) != 0))
			proto_put_param_status(&status, p->name, p->value);
	}
	params_copy(&c->params, c->login_params);
	client_answer_query(c, &status, NULL, "DISCARD ALL");
	obuf_free(&status);
}

/* c keeps the server it is linked to (or gets next) for the rest of its session. */
static void client_pin(struct client *c, const char *feature)
{
	c->pinned = true;
	c->mode = POOL_SESSION;
	log_info("client %s: pinned to its server connection for the rest of its session (%s)",
		 c->addr, feature);
}

/*
 * A simple Query of a client under transaction/statement pooling or with
 * renamed statements: the statements about session state (session.h).
 * Returns CONN_FORWARD for the usual path; *mark asks that the server it
 * runs on serve no other client afterwards.
 */
static enum conn_action client_session_query(struct worker *w, struct client *c,
					     const uint8_t *msg, uint32_t total, uint32_t avail,
					     bool *mark)
{
	if (avail < total)
		return total <= w->iobufs.size ? CONN_NEED_ALL : CONN_FORWARD;
	const char *sql = (const char *)msg + PROTO_HEADER_LEN;
	struct session_check chk;
	session_check_query(c, w->cfg->pin_on_session_state, sql,
			    strnlen(sql, total - PROTO_HEADER_LEN), &chk);
	struct server *s = c->server;
	bool on_replica = s != NULL && s->pool->target->role == TARGET_REPLICA;
	if (chk.verdict == SESSION_PASS || (s != NULL && s->tx_status == 'E' && s->expect_rfq == 0))
		return CONN_FORWARD; /* a failed transaction refuses anything by itself */
	if (chk.verdict == SESSION_MARK_SERVER) {
		*mark = true;
		return CONN_FORWARD;
	}
	if (chk.verdict == SESSION_PIN && !on_replica) {
		client_pin(c, chk.feature);
		return CONN_FORWARD;
	}
	if (s != NULL && s->expect_rfq > 0) {
		/* Answered after the server's replies, with the transaction status they end in. */
		c->awaits_quiet = true;
		return CONN_STOP;
	}
	if (s != NULL && s->tx_status == 'E')
		return CONN_FORWARD;
	char text[CLASSIFY_NAME_MAX + 64];
	switch (chk.verdict) {
	case SESSION_PIN:
		snprintf(text, sizeof(text), "%s cannot be pinned to a replica connection",
			 chk.feature);
		client_answer_query(c, NULL, "0A000", text);
		break;
	case SESSION_REFUSE:
		client_answer_query(c, NULL, "0A000", chk.message);
		break;
	case SESSION_DEALLOCATE:
		if (c->prepared != NULL && prepared_lookup(c->prepared, chk.name) != NULL) {
			prepared_forget(c->prepared, chk.name);
			client_answer_query(c, NULL, NULL, "DEALLOCATE");
			break;
		}
		if (s != NULL)
			return CONN_FORWARD; /* an SQL PREPARE of this transaction, or 26000 */
		snprintf(text, sizeof(text), "prepared statement \"%s\" does not exist", chk.name);
		client_answer_query(c, NULL, "26000", text);
		break;
	case SESSION_DEALLOCATE_ALL:
		if (c->prepared != NULL)
			prepared_forget_all(c->prepared);
		if (s != NULL) {
			/* The server drops pgsluice's statements (and the transaction's own). */
			pstmt_server_forgot(s);
			return CONN_FORWARD;
		}
		client_answer_query(c, NULL, NULL, "DEALLOCATE ALL");
		break;
	case SESSION_DISCARD_ALL:
		if (c->in_transaction)
			return CONN_FORWARD; /* PostgreSQL's 25001 */
		if (!c->pinned || s == NULL) {
			client_discard_all(c);
			break;
		}
		/* On the pinned server: its statements and settings go back to its login's. */
		if (c->prepared != NULL)
			prepared_forget_all(c->prepared);
		pstmt_server_forgot(s);
		params_copy(&s->params, &s->startup);
		params_copy(&c->params, &s->startup);
		return CONN_FORWARD;
	case SESSION_PASS:
	case SESSION_MARK_SERVER:
		return CONN_FORWARD;
	}
	return CONN_CONSUMED;
}

/* The statement name and text of a whole Parse message; false when it is malformed. */
static bool client_parse_text(const uint8_t *msg, uint32_t total, const char **name,
			      const char **sql)
{
	const uint8_t *p = msg + PROTO_HEADER_LEN, *end = msg + total;
	*name = proto_take_string(&p, end);
	*sql = *name != NULL ? proto_take_string(&p, end) : NULL;
	return *sql != NULL;
}

/*
 * A Parse of a client under transaction/statement pooling: the statements
 * about session state (session.h), as client_session_query for a Query. With
 * no server linked, nothing of the client's is in flight and a refusal is its
 * Parse's ErrorResponse; on a linked server an answer of pgsluice's could pass
 * the server's replies, so the client is pinned to its server instead.
 * *name, *sql: the Parse's statement name and text when it was read whole,
 * else *sql is left NULL.
 */
static enum conn_action client_session_parse(struct worker *w, struct client *c,
					     const uint8_t *msg, uint32_t total, uint32_t avail,
					     const char **name, const char **sql, bool *mark)
{
	if (avail < total)
		return total <= w->iobufs.size ? CONN_NEED_ALL : CONN_FORWARD;
	if (!client_parse_text(msg, total, name, sql)) {
		*sql = NULL;
		return CONN_FORWARD; /* the server names what is wrong with it */
	}
	struct session_check chk;
	session_check_query(c, w->cfg->pin_on_session_state, *sql, strlen(*sql), &chk);
	struct server *s = c->server;
	bool on_replica = s != NULL && s->pool->target->role == TARGET_REPLICA;
	if (chk.verdict == SESSION_PASS)
		return CONN_FORWARD;
	if (chk.verdict == SESSION_MARK_SERVER) {
		*mark = true;
		return CONN_FORWARD;
	}
	if (s == NULL || (chk.verdict == SESSION_PIN && on_replica)) {
		const char *message = chk.message;
		char text[CLASSIFY_NAME_MAX + 128];
		if (chk.verdict == SESSION_PIN) {
			if (!on_replica) {
				client_pin(c, chk.feature);
				return CONN_FORWARD;
			}
			snprintf(text, sizeof(text), "%s cannot be pinned to a replica connection",
				 chk.feature);
			message = text;
		} else if (chk.verdict != SESSION_REFUSE) {
			snprintf(text, sizeof(text),
				 "DEALLOCATE and DISCARD ALL are supported as simple queries only under "
				 "%s pooling",
				 c->mode == POOL_STATEMENT ? "statement" : "transaction");
			message = text;
		}
		proto_put_error(&c->conn.out, false, "0A000", message, NULL, NULL);
		c->fail_pending = true;
		return CONN_SKIP;
	}
	/* Linked: the client keeps this server, which then holds its state as a direct one would. */
	client_pin(c, chk.feature != NULL ? chk.feature : "DEALLOCATE or DISCARD ALL");
	if (chk.verdict == SESSION_DEALLOCATE_ALL || chk.verdict == SESSION_DISCARD_ALL) {
		if (c->prepared != NULL)
			prepared_forget_all(c->prepared);
		pstmt_server_forgot(s);
	}
	if (chk.verdict == SESSION_DISCARD_ALL) {
		params_copy(&s->params, &s->startup);
		params_copy(&c->params, &s->startup);
	}
	return CONN_FORWARD;
}

/* Drops the messages of a failed request up to its end, then says ready. */
static enum conn_action client_drop_failed(struct client *c, uint8_t type)
{
	if (type == 'Q' || type == 'S') {
		proto_put_ready(&c->conn.out, c->in_transaction ? 'E' : 'I');
		c->fail_pending = false;
	}
	return CONN_SKIP;
}

static enum conn_action client_decide(void *owner, const uint8_t *msg, uint32_t total,
				      uint32_t avail)
{
	struct client *c = owner;
	struct worker *w = client_worker(c);
	uint8_t type = msg[0];
	if (c->state == CLIENT_AUTH) {
		if (c->auth_step == AUTH_STEP_LOOKUP)
			return CONN_STOP; /* auth_query has not answered: nothing was asked yet */
		if (type != 'p') {
			client_fatal(w, c, "08P01", "expected a password message");
			return CONN_GONE;
		}
		if (avail < total)
			return CONN_NEED_ALL;
		/* Acted on after processing stops: the login may close c. */
		c->auth_outcome = (uint8_t)auth_handle(w, c, msg + PROTO_HEADER_LEN,
						       total - PROTO_HEADER_LEN);
		return CONN_YIELD;
	}
	if (c->batch_skip > 0) {
		/* The rest of a request whose row joined a batch (batch.c checked it whole). */
		c->batch_skip--;
		return CONN_CONSUMED;
	}
	if (c->state == CLIENT_WELCOME || c->state == CLIENT_WAITING || c->state == CLIENT_BATCHED)
		return CONN_STOP;
	if (type == 'X') {
		client_close(w, c, "client disconnected");
		return CONN_GONE;
	}
	c->last_activity = ev_now(w->loop);
	if (c->fail_pending)
		return client_drop_failed(c, type);
	if (c->is_admin)
		return avail < total ? CONN_NEED_ALL : admin_on_message(w, c, msg, total);
	/* The statement log reads these whole, when they fit a buffer. */
	if (avail < total && total <= w->iobufs.size && type != '\0' && strchr("QPBEC", type) &&
	    querylog_active(w))
		return CONN_NEED_ALL;
	bool mark_server = false;
	const char *parse_name = NULL, *parse_sql = NULL; /* of a Parse read whole */
	if (type == 'Q' && (c->mode != POOL_SESSION || c->rename_statements)) {
		enum conn_action act = client_session_query(w, c, msg, total, avail, &mark_server);
		if (act != CONN_FORWARD)
			return act;
	} else if (type == 'P' && c->mode != POOL_SESSION) {
		enum conn_action act = client_session_parse(w, c, msg, total, avail, &parse_name,
							    &parse_sql, &mark_server);
		if (act != CONN_FORWARD)
			return act;
	} else if (type == 'B' && c->mode != POOL_SESSION && c->rename_statements &&
		   !c->in_transaction && avail == total) {
		/* A named statement's SET (pgjdbc names a statement after a few runs). */
		size_t len;
		struct stmt_def *def = NULL;
		if (pstmt_bound_text(c, msg, avail, &len, &def) != NULL && def != NULL)
			session_note_bind(c, def);
	}
	if (c->state == CLIENT_IDLE) {
		if (w->closing_clients && !c->in_transaction) {
			client_fatal(w, c, "57P01", "pgsluice is shutting down");
			return CONN_GONE;
		}
		if (c->mode == POOL_STATEMENT && type == 'Q') {
			if (avail < total && total <= w->iobufs.size)
				return CONN_NEED_ALL;
			if (client_opens_transaction(msg, avail)) {
				proto_put_error(&c->conn.out, false, "0A000",
						"transactions are not allowed in statement pooling mode",
						NULL, NULL);
				c->fail_pending = true;
				return client_drop_failed(c, type);
			}
		}
		if (type == 'S' && c->sync_answered) {
			c->sync_answered = false;
			proto_put_ready(&c->conn.out, 'I');
			return CONN_CONSUMED;
		}
		if (type == 'P' && c->rename_statements && avail == total) {
			const struct iobuf *in = c->conn.in;
			enum conn_action act =
				pstmt_parse_unlinked(w, c, msg, total, in->data + in->end);
			if (act != CONN_FORWARD)
				return act;
		}
		if (type == 'Q') {
			if (avail < total && total <= w->iobufs.size)
				return CONN_NEED_ALL;
			enum route_pin pin;
			if (avail == total && client_parse_route_setting(msg, total, &pin)) {
				c->route_pin = pin;
				obuf_msg_begin(&c->conn.out, 'C');
				obuf_put_str(&c->conn.out, "SET");
				obuf_msg_end(&c->conn.out);
				proto_put_ready(&c->conn.out, 'I');
				return CONN_CONSUMED;
			}
		}
		struct route r;
		switch (router_route(w, c, msg, total, avail, &r)) {
		case ROUTER_NEED_ALL:
			return CONN_NEED_ALL;
		case ROUTER_NO_REPLICA:
			proto_put_error(&c->conn.out, false, "57P03",
					"no replica can serve this read (replica_fallback = error)", NULL,
					NULL);
			c->fail_pending = true;
			return client_drop_failed(c, type);
		case ROUTER_OK:
			break;
		}
		struct pool *p = r.target == c->pool->target
					 ? c->pool
					 : pool_get(w, c->pool->db, r.target, c->user);
		if (p == NULL) {
			client_fatal(w, c, "53200", "out of memory");
			return CONN_GONE;
		}
		if (p == c->pool && !r.read) {
			enum conn_action act = batch_offer(w, c, p, msg, total, avail);
			if (act != CONN_FORWARD)
				return act;
		}
		c->route_read = r.read;
		c->retried = false;
		c->retry_ok = true;
		obuf_reset(&c->retry);
		c->retry_rfq = 0;
		r.target->routed++;
		pool_acquire(w, p, c);
		if (c->server == NULL)
			return CONN_STOP;
	}
	struct server *s = c->server;
	if (mark_server)
		s->close_on_release = true; /* an SQL PREPARE stays on it after the transaction */
	enum conn_action act = CONN_FORWARD;
	if (c->rename_statements) {
		act = pstmt_on_client_message(w, c, s, msg, total, avail);
		if (act == CONN_NEED_ALL || act == CONN_STOP || act == CONN_GONE)
			return act;
	}
	bool forwarded = act == CONN_FORWARD || act == CONN_FORWARD_TAIL;
	if (c->route_read && c->retry_ok) {
		/* Keep a replica read's bytes until it answers: a broken replica gets a retry.
		 * What pgsluice answered itself cannot be sent again; a renamed Bind is renamed
		 * again (pstmt_replay). */
		bool again = act == CONN_FORWARD || (type == 'B' && act == CONN_FORWARD_TAIL);
		if (again && avail == total && obuf_put(&c->retry, msg, total)) {
			if (type == 'Q' || type == 'S' || type == 'F')
				c->retry_rfq++;
		} else {
			c->retry_ok = false;
			obuf_reset(&c->retry);
		}
	}
	if (forwarded && (type == 'Q' || type == 'S' || type == 'F')) {
		if (s->expect_rfq == 0)
			s->query_start = c->last_activity;
		if (!c->xact_open) {
			c->xact_open = true;
			c->xact_start = c->last_activity;
		}
		s->expect_rfq++;
		s->release_pending = false;
	}
	if (forwarded && type == 'Q' && avail == total && c->mode != POOL_SESSION &&
	    !c->in_transaction)
		session_note_query(c, (const char *)msg + PROTO_HEADER_LEN,
				   strnlen((const char *)msg + PROTO_HEADER_LEN, total - PROTO_HEADER_LEN));
	if (forwarded && parse_sql != NULL && c->mode != POOL_SESSION && !c->in_transaction &&
	    parse_name[0] == '\0')
		session_note_parse(c, parse_sql, strlen(parse_sql));
	if (act != CONN_SKIP)
		querylog_on_client_message(w, c, s, msg, total, avail);
	return act;
}

/* Handles what conn_process reported for c. */
static void client_after_process(struct worker *w, struct client *c, enum conn_result r)
{
	switch (r) {
	case CONN_YIELDED:
		if (c->state == CLIENT_AUTH) {
			client_on_auth(w, c, (enum auth_result)c->auth_outcome);
			break;
		}
		if (c->is_admin) {
			admin_run_pending(w, c);
			break;
		}
		/* fall through */
	case CONN_OK:
	case CONN_BLOCKED:
		/* What pgsluice queued for the server (settings, a retried read) goes even
		 * when the client had nothing new to forward. */
		if (c->server != NULL && obuf_pending(&c->server->conn.out) > 0 &&
		    conn_flush(&c->server->conn) == CONN_ERROR) {
			server_close(w, c->server, "could not write to server", true);
			break;
		}
		if (obuf_pending(&c->conn.out) > 0)
			client_flush(w, c);
		break;
	case CONN_CLOSED:
		break;
	case CONN_BAD_LENGTH: {
		char msg[128];
		snprintf(msg, sizeof(msg), "invalid message length %u for message type '%c'",
			 c->conn.bad_length, c->conn.bad_type >= 32 ? c->conn.bad_type : '?');
		if (c->conn.bad_length > 4 && (int64_t)c->conn.bad_length > w->cfg->max_packet_size)
			snprintf(msg, sizeof(msg), "message of %u bytes exceeds max_packet_size",
				 c->conn.bad_length);
		client_fatal(w, c, "08P01", msg);
		break;
	}
	case CONN_TOO_BIG:
		client_fatal(w, c, "08P01", "message too large to inspect");
		break;
	case CONN_PEER_ERROR:
	case CONN_ERROR: /* conn_process reports write failures as PEER_ERROR */
		if (c->server != NULL)
			server_close(w, c->server, "could not write to server", true);
		break;
	}
}

void client_continue(struct worker *w, struct client *c)
{
	if (c->state == CLIENT_STARTUP || c->state == CLIENT_TLS)
		return;
	client_after_process(w, c, conn_process(&c->conn, (uint32_t)w->cfg->max_packet_size));
}

void client_run_deferred(struct worker *w)
{
	while (!list_empty(&w->deferred)) {
		struct client *c = list_entry(list_first(&w->deferred), struct client, deferred_node);
		list_del(&c->deferred_node);
		if (c->closing_after_flush) {
			conn_flush(&c->conn);
			client_close(w, c, "login failed");
			continue;
		}
		if (w->closing_clients && c->state == CLIENT_IDLE && !c->in_transaction &&
		    conn_buffered(&c->conn) == 0 && !c->fail_pending) {
			client_fatal(w, c, "57P01", "pgsluice is shutting down");
			continue;
		}
		client_continue(w, c);
	}
}

static void client_on_readable(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	struct client *c = io->data;
	struct worker *w = client_worker(c);
	if (c->state == CLIENT_TLS) {
		client_tls_step(w, c);
		return;
	}
	int n = conn_read(&c->conn);
	if (n == -3)
		return;
	if (n == 0 || n == -1) {
		client_close(w, c, n == 0 ? "client closed the connection" : strerror(errno));
		return;
	}
	if (c->state == CLIENT_STARTUP && !client_read_startup(w, c))
		return;
	c->last_read = ev_now(w->loop);
	if (c->state != CLIENT_STARTUP)
		client_continue(w, c);
}

static void client_on_writable(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	struct client *c = io->data;
	struct worker *w = client_worker(c);
	if (c->state == CLIENT_TLS) {
		client_tls_step(w, c);
		return;
	}
	enum conn_result r = conn_flush(&c->conn);
	if (r == CONN_ERROR) {
		client_close(w, c, "could not write to client");
		return;
	}
	if (r == CONN_OK && c->server != NULL)
		server_continue(w, c->server);
}

void client_janitor(struct worker *w, ev_tstamp now)
{
	const struct config *cfg = w->cfg;
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &w->clients)
	{
		struct client *c = list_entry(pos, struct client, node);
		double idle = now - c->last_activity;
		/* A message begun and not finished: streamed ones already hold a server. */
		if (conn_awaits_rest(&c->conn) && c->state != CLIENT_STARTUP && c->state != CLIENT_AUTH &&
		    cfg->client_stall_timeout > 0 &&
		    now - c->last_read > (double)cfg->client_stall_timeout / 1e6) {
			client_fatal(w, c, "57P05",
				     "client_stall_timeout: client stopped in the middle of a message");
			continue;
		}
		switch (c->state) {
		case CLIENT_TLS:
			/* Mid-handshake: no message can be sent. */
			if (cfg->client_login_timeout > 0 &&
			    now - c->connected_at > (double)cfg->client_login_timeout / 1e6) {
				log_info("client %s: client_login_timeout during the TLS handshake",
					 c->addr);
				client_close(w, c, "client_login_timeout during the TLS handshake");
			}
			break;
		case CLIENT_STARTUP:
		case CLIENT_AUTH:
			if (cfg->client_login_timeout > 0 &&
			    now - c->connected_at > (double)cfg->client_login_timeout / 1e6)
				client_fatal(w, c, "08P01", "client_login_timeout: login took too long");
			break;
		case CLIENT_IDLE:
			if (c->in_transaction)
				break;
			if (w->closing_clients && !c->fail_pending)
				client_fatal(w, c, "57P01", "pgsluice is shutting down");
			else if (cfg->client_idle_timeout > 0 &&
				 idle > (double)cfg->client_idle_timeout / 1e6)
				client_fatal(w, c, "57P05", "client_idle_timeout: closing idle connection");
			break;
		case CLIENT_ACTIVE: {
			struct server *s = c->server;
			bool waits_on_client = s != NULL && s->expect_rfq == 0 && s->swallow_rfq == 0;
			if (waits_on_client && c->in_transaction && cfg->idle_transaction_timeout > 0 &&
			    idle > (double)cfg->idle_transaction_timeout / 1e6) {
				client_fatal(w, c, "25P03",
					     "idle_transaction_timeout: closing idle-in-transaction connection");
			} else if (waits_on_client && !c->in_transaction && w->closing_clients) {
				client_fatal(w, c, "57P01", "pgsluice is shutting down");
			} else if (s != NULL && s->expect_rfq > 0 && cfg->query_timeout > 0 &&
				   now - s->query_start > (double)cfg->query_timeout / 1e6) {
				log_info("client %s: query_timeout: cancelling its query", c->addr);
				s->query_start = now; /* one cancel per timeout period */
				cancel_server_query(w, s);
			} else if (waits_on_client && !c->in_transaction &&
				   cfg->client_idle_timeout > 0 &&
				   idle > (double)cfg->client_idle_timeout / 1e6) {
				client_fatal(w, c, "57P05", "client_idle_timeout: closing idle connection");
			}
			break;
		}
		case CLIENT_WELCOME:
		case CLIENT_WAITING:
		case CLIENT_BATCHED:
			break;
		}
	}
}
