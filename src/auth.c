/*
 * auth.c - authentication of clients (auth.h).
 *
 * Sits between the startup packet and the welcome: client.c calls
 * auth_begin() once the startup packet is read and auth_handle() for each
 * password or SASL message, until one of them says OK or FAILED. In
 * between, a client whose user the auth file does not know may wait for
 * auth_query (authquery.c, one object per database, on the worker's loop);
 * its answer comes back through client_on_auth().
 */
#include "auth.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "admin.h"
#include "authquery.h"
#include "auxconn.h"
#include "client.h"
#include "hba.h"
#include "log.h"
#include "password.h"
#include "proto.h"
#include "scram.h"
#include "scramkeys.h"
#include "tls.h"
#include "userlist.h"

/* Whether c's connection is encrypted (hostssl / hostnossl rules). */
static bool auth_client_tls(const struct client *c)
{
	return c->conn.ssl != NULL;
}

/* c's secret: the auth file's, else the one auth_query found, else NULL. */
static const char *auth_secret(const struct worker *w, const struct client *c)
{
	const char *secret = userlist_find(w->users, c->user);
	return secret != NULL ? secret : c->auth_secret;
}

void auth_secret_free(char *secret)
{
	if (secret == NULL)
		return;
	OPENSSL_cleanse(secret, strlen(secret));
	free(secret);
}

/* ----- hba_file ----- */

/* What hba_file matches c by; false when c's socket has no address (it is gone). */
static bool auth_hba_request(const struct client *c, struct hba_request *req)
{
	memset(req, 0, sizeof(*req));
	socklen_t len = sizeof(req->addr);
	if (getpeername(c->conn.fd, (struct sockaddr *)&req->addr, &len) != 0)
		return false;
	if (req->addr.ss_family == AF_UNIX)
		req->transport = HBA_TRANSPORT_UNIX;
	else if (req->addr.ss_family == AF_INET || req->addr.ss_family == AF_INET6)
		req->transport = HBA_TRANSPORT_TCP;
	else
		return false;
	req->tls = auth_client_tls(c);
	req->database = c->dbname;
	req->user = c->user;
	return true;
}

/* Writes PostgreSQL's refusal text, "<what> host "...", user "...", database "..."". */
static void auth_hba_message(const struct hba_request *req, const char *what, char *buf,
			     size_t cap)
{
	char host[NI_MAXHOST] = "[local]";
	if (req->transport == HBA_TRANSPORT_TCP &&
	    getnameinfo((const struct sockaddr *)&req->addr, sizeof(req->addr), host, sizeof(host),
			NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(host, sizeof(host), "?");
	const char *enc = "";
	if (req->transport == HBA_TRANSPORT_TCP)
		enc = req->tls ? ", TLS encryption" : ", no encryption";
	snprintf(buf, cap, "%s host \"%s\", user \"%s\", database \"%s\"%s", what, host, req->user,
		 req->database, enc);
}

static const enum hba_method auth_type_methods[] = {
	[AUTH_TRUST] = HBA_METHOD_TRUST,
	[AUTH_MD5] = HBA_METHOD_MD5,
	[AUTH_SCRAM] = HBA_METHOD_SCRAM_SHA_256,
};

/*
 * The client certificate rule asks for (method cert, or clientcert=verify-ca /
 * verify-full): one signed by client_tls_ca_file, and for verify-full (always for
 * cert) with the user name as its common name. False when c was refused (and closed).
 */
static bool auth_client_cert_ok(struct worker *w, struct client *c, const struct hba_rule *rule,
				bool tls)
{
	if (rule->clientcert == HBA_CLIENTCERT_NONE && rule->method != HBA_METHOD_CERT)
		return true;
	char cn[256];
	const char *why = NULL;
	if (!tls)
		why = "certificate authentication needs TLS";
	else if (!tls_peer_common_name(c->conn.ssl, cn, sizeof(cn)))
		why = "connection requires a valid client certificate";
	else if ((rule->method == HBA_METHOD_CERT || rule->clientcert == HBA_CLIENTCERT_VERIFY_FULL) &&
		 strcmp(cn, c->user) != 0)
		why = "certificate's common name does not match the user name";
	if (why == NULL)
		return true;
	log_info("client %s: refused by %s line %d for user \"%s\": %s", c->addr,
		 w->cfg->hba_file, rule->line, c->user, why);
	char msg[512];
	if (rule->method == HBA_METHOD_CERT && tls)
		snprintf(msg, sizeof(msg), "certificate authentication failed for user \"%s\"",
			 c->user);
	else
		snprintf(msg, sizeof(msg), "%s", why);
	client_fatal(w, c, "28000", msg);
	return false;
}

/* Sets c's method from hba_file's first matching rule, or from auth_type when there is
 * no hba_file; false when c was refused (and closed). */
static bool auth_choose_method(struct worker *w, struct client *c)
{
	if (w->hba == NULL) {
		c->auth_method = (uint8_t)auth_type_methods[w->cfg->auth_type];
		return true;
	}
	struct hba_request req;
	char msg[512], why[512];
	if (!auth_hba_request(c, &req)) {
		client_fatal(w, c, "08006", "could not read the client's address");
		return false;
	}
	const struct hba_rule *rule = hba_match(w->hba, &req);
	if (rule == NULL) {
		hba_describe_no_match(&req, why, sizeof(why));
		log_info("client %s: refused: %s (%s)", c->addr, why, w->cfg->hba_file);
		auth_hba_message(&req, "no hba_file entry for", msg, sizeof(msg));
		client_fatal(w, c, "28000", msg);
		return false;
	}
	if (rule->method == HBA_METHOD_REJECT) {
		log_info("client %s: refused by %s line %d (reject) for user \"%s\", "
			 "database \"%s\"",
			 c->addr, w->cfg->hba_file, rule->line, c->user, c->dbname);
		auth_hba_message(&req, "hba_file rejects connection for", msg, sizeof(msg));
		client_fatal(w, c, "28000", msg);
		return false;
	}
	if (!auth_client_cert_ok(w, c, rule, req.tls))
		return false;
	log_debug("client %s: %s line %d: method %s", c->addr, w->cfg->hba_file, rule->line,
		  hba_method_name(rule->method));
	c->auth_method = (uint8_t)rule->method;
	return true;
}

/* ----- the exchange ----- */

/* Starts a SCRAM exchange; an unknown user gets a mock one that fails at the end. */
static enum auth_result auth_begin_scram(struct client *c, const char *secret)
{
	c->scram = calloc(1, sizeof(*c->scram));
	if (c->scram == NULL)
		return AUTH_FAILED;
	bool ok = secret != NULL && password_kind_of(secret) != PASSWORD_MD5
			  ? scram_server_init(c->scram, secret, c->user)
			  : scram_server_init_mock(c->scram, c->user);
	if (!ok)
		return AUTH_FAILED;
	/* Over TLS, SCRAM-SHA-256-PLUS binds the exchange to pgsluice's certificate. */
	uint8_t end_point[TLS_END_POINT_MAX];
	size_t end_point_len = 0;
	if (c->conn.ssl != NULL &&
	    tls_server_end_point(c->conn.ssl, true, end_point, &end_point_len) &&
	    scram_server_set_channel_binding(c->scram, end_point, end_point_len)) {
		static const char with_plus[] = "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0";
		proto_put_auth(&c->conn.out, PROTO_AUTH_SASL, with_plus, sizeof(with_plus));
	} else {
		static const char plain[] = "SCRAM-SHA-256\0";
		proto_put_auth(&c->conn.out, PROTO_AUTH_SASL, plain, sizeof(plain));
	}
	c->auth_step = AUTH_STEP_SCRAM_FIRST;
	return AUTH_CONTINUE;
}

/* Sends the request of c's method, its secret being known (or known to be missing). */
static enum auth_result auth_begin_method(struct worker *w, struct client *c)
{
	const char *secret = auth_secret(w, c);
	switch ((enum hba_method)c->auth_method) {
	case HBA_METHOD_TRUST:
		return AUTH_OK;
	case HBA_METHOD_MD5:
		/* As PostgreSQL does, a user whose secret is SCRAM is asked for SCRAM. */
		if (secret != NULL && password_kind_of(secret) == PASSWORD_SCRAM)
			return auth_begin_scram(c, secret);
		if (!password_random_bytes(c->md5_salt, sizeof(c->md5_salt)))
			return AUTH_FAILED;
		proto_put_auth(&c->conn.out, PROTO_AUTH_MD5, c->md5_salt, sizeof(c->md5_salt));
		c->auth_step = AUTH_STEP_MD5;
		return AUTH_CONTINUE;
	case HBA_METHOD_SCRAM_SHA_256:
		return auth_begin_scram(c, secret);
	case HBA_METHOD_PASSWORD:
		proto_put_auth(&c->conn.out, PROTO_AUTH_CLEARTEXT, NULL, 0);
		c->auth_step = AUTH_STEP_PASSWORD;
		return AUTH_CONTINUE;
	case HBA_METHOD_CERT:
		return AUTH_OK; /* auth_client_cert_ok checked the certificate */
	case HBA_METHOD_REJECT:
		break;
	}
	return AUTH_FAILED;
}

/* ----- auth_query ----- */

/* db's auth_query object, made on first use; NULL when auth_query is off or memory ran out. */
static struct authquery *auth_query_of(struct worker *w, struct database *db)
{
	const struct config *cfg = w->cfg;
	if (cfg->auth_user == NULL || db->primary == NULL)
		return NULL;
	if (db->authquery != NULL)
		return db->authquery;
	struct authquery_settings s;
	authquery_settings_init(&s);
	s.host = db->primary->host;
	s.port = db->primary->port;
	s.dbname = cfg->auth_dbname != NULL ? cfg->auth_dbname : db->dbname;
	s.user = cfg->auth_user;
	s.password = userlist_find(w->users, cfg->auth_user);
	s.query = cfg->auth_query;
	s.cache_ttl = (double)cfg->auth_query_cache_ttl / 1e6;
	s.negative_ttl = (double)cfg->auth_query_negative_ttl / 1e6;
	s.timeout = (double)cfg->auth_query_timeout / 1e6;
	s.max_waiting = (size_t)cfg->auth_query_max_waiting;
	s.cache_max = (size_t)cfg->auth_query_cache_size;
	auxconn_tls_from_config(cfg, &s.tls);
	db->authquery = authquery_new(w->loop, &s);
	if (db->authquery == NULL)
		log_error("out of memory starting auth_query for database %s", db->name);
	return db->authquery;
}

static void auth_on_lookup(void *arg, enum authquery_status status, const char *text);

/* Asks auth_query for c's secret; false when it cannot (auth_query off, the admin
 * console, no such database): c's user is then unknown. */
static bool auth_lookup_start(struct worker *w, struct client *c)
{
	if (strcmp(c->dbname, ADMIN_DATABASE) == 0)
		return false;
	struct database *db = worker_find_database(w, c->dbname);
	struct authquery *aq = db != NULL ? auth_query_of(w, db) : NULL;
	if (aq == NULL)
		return false;
	c->aq_wait = authquery_lookup(aq, c->user, auth_on_lookup, c);
	if (c->aq_wait == NULL)
		return false;
	c->aq = aq;
	c->auth_step = AUTH_STEP_LOOKUP;
	return true;
}

static void auth_on_lookup(void *arg, enum authquery_status status, const char *text)
{
	struct client *c = arg;
	struct worker *w = c->conn.worker;
	c->aq = NULL;
	c->aq_wait = NULL;
	c->auth_step = AUTH_STEP_NONE;
	if (status == AUTHQUERY_FAILED && w->authquery_restarting) {
		/* A reload dropped the object: ask again with the new settings, if any. */
		if (auth_lookup_start(w, c))
			return;
		status = AUTHQUERY_NOT_FOUND;
	}
	if (status == AUTHQUERY_FAILED) {
		log_warning("client %s: auth_query for user \"%s\" in database \"%s\" failed: %s",
			    c->addr, c->user, c->dbname, text);
		client_fatal(w, c, "08006",
			     "auth_query failed: pgsluice could not look up the user");
		return;
	}
	if (status == AUTHQUERY_FOUND && (c->auth_secret = strdup(text)) == NULL) {
		client_fatal(w, c, "53200", "out of memory");
		return;
	}
	/* A password message that came early waits in c's buffer. */
	client_resume(w, c);
	client_on_auth(w, c, auth_begin_method(w, c));
}

/* The secret auth_query found refused c: the next lookup asks the server again. */
static void auth_forget_found(struct worker *w, const struct client *c)
{
	if (c->auth_secret == NULL || userlist_find(w->users, c->user) != NULL)
		return;
	struct database *db = worker_find_database(w, c->dbname);
	if (db != NULL && db->authquery != NULL)
		authquery_forget(db->authquery, c->user);
}

void auth_restart_lookups(struct worker *w)
{
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &w->databases)
	{
		struct database *db = list_entry(pos, struct database, node);
		struct authquery *aq = db->authquery;
		if (aq == NULL)
			continue;
		db->authquery = NULL;
		w->authquery_restarting = true;
		authquery_free(aq);
		w->authquery_restarting = false;
	}
}

void auth_database_gone(struct database *db)
{
	struct authquery *aq = db->authquery;
	db->authquery = NULL;
	authquery_free(aq);
}

void auth_give_secret_to_pool(struct client *c)
{
	if (c->auth_secret == NULL || c->pool == NULL)
		return;
	auth_secret_free(c->pool->auth_secret);
	c->pool->auth_secret = c->auth_secret;
	c->auth_secret = NULL;
}

const char *auth_pool_secret(const struct database *db, const char *user)
{
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &db->pools)
	{
		const struct pool *p = list_entry(pos, struct pool, node);
		if (p->auth_secret != NULL && strcmp(p->user, user) == 0)
			return p->auth_secret;
	}
	return NULL;
}

/* ----- entry points ----- */

enum auth_result auth_begin(struct worker *w, struct client *c)
{
	if (!auth_choose_method(w, c))
		return AUTH_GONE;
	if (c->auth_method == HBA_METHOD_TRUST)
		return AUTH_OK;
	if (userlist_find(w->users, c->user) == NULL && auth_lookup_start(w, c))
		return AUTH_CONTINUE;
	return auth_begin_method(w, c);
}

static enum auth_result auth_scram_first(struct client *c, const uint8_t *body, uint32_t len)
{
	const char *mechanism;
	const uint8_t *data;
	size_t dlen;
	if (!proto_parse_sasl_initial(body, len, &mechanism, &data, &dlen)) {
		log_info("client %s: malformed SASLInitialResponse", c->addr);
		return AUTH_FAILED;
	}
	bool plus = strcmp(mechanism, "SCRAM-SHA-256-PLUS") == 0;
	if (!plus && strcmp(mechanism, "SCRAM-SHA-256") != 0) {
		log_info("client %s: unsupported SASL mechanism", c->addr);
		return AUTH_FAILED;
	}
	char reply[512];
	const char *err = NULL;
	if (!scram_server_handle_first(c->scram, (const char *)data, dlen, reply, sizeof(reply),
				       &err)) {
		log_info("client %s: SCRAM: %s", c->addr, err != NULL ? err : "bad client-first");
		return AUTH_FAILED;
	}
	/* The mechanism and the gs2 header must agree on channel binding (RFC 5802). */
	if (plus != (c->scram->cbind_flag == SCRAM_CBIND_USED)) {
		log_info("client %s: SCRAM: mechanism %s does not match its channel binding flag",
			 c->addr, mechanism);
		return AUTH_FAILED;
	}
	proto_put_auth(&c->conn.out, PROTO_AUTH_SASL_CONTINUE, reply, strlen(reply));
	c->auth_step = AUTH_STEP_SCRAM_FINAL;
	return AUTH_CONTINUE;
}

static enum auth_result auth_scram_final(struct client *c, const uint8_t *body, uint32_t len)
{
	char reply[512];
	const char *err = NULL;
	if (!scram_server_handle_final(c->scram, (const char *)body, len, reply, sizeof(reply),
				       &err)) {
		log_info("client %s: SCRAM for user \"%s\": %s", c->addr, c->user,
			 err != NULL ? err : "failed");
		return AUTH_FAILED;
	}
	proto_put_auth(&c->conn.out, PROTO_AUTH_SASL_FINAL, reply, strlen(reply));
	return AUTH_OK;
}

/* Checks an md5 answer or a password sent in clear against c's secret. */
static enum auth_result auth_check_password(struct worker *w, struct client *c,
					    const uint8_t *body, uint32_t len)
{
	const char *secret = auth_secret(w, c);
	if (len == 0 || body[len - 1] != 0)
		return AUTH_FAILED;
	bool md5 = c->auth_step == AUTH_STEP_MD5;
	bool ok = secret != NULL &&
		  (md5 ? password_md5_check(secret, c->user, c->md5_salt, (const char *)body)
		       : password_check_plain(secret, c->user, (const char *)body));
	if (!ok) {
		log_info("client %s: %s authentication failed for user \"%s\"", c->addr,
			 md5 ? "md5" : "password", c->user);
		return AUTH_FAILED;
	}
	return AUTH_OK;
}

enum auth_result auth_handle(struct worker *w, struct client *c, const uint8_t *body, uint32_t len)
{
	enum auth_result r = AUTH_FAILED;
	switch (c->auth_step) {
	case AUTH_STEP_MD5:
	case AUTH_STEP_PASSWORD:
		r = auth_check_password(w, c, body, len);
		break;
	case AUTH_STEP_SCRAM_FIRST:
		r = auth_scram_first(c, body, len);
		break;
	case AUTH_STEP_SCRAM_FINAL:
		r = auth_scram_final(c, body, len);
		/* The proved ClientKey lets servers be logged in to with a SCRAM secret alone. */
		if (r == AUTH_OK && c->scram->have_client_key &&
		    !scramkeys_learn(&w->scram_keys, c->scram->client_key))
			log_warning("out of memory keeping a SCRAM key for pass-through");
		break;
	case AUTH_STEP_LOOKUP:
	case AUTH_STEP_NONE:
		break;
	}
	if (r == AUTH_FAILED)
		auth_forget_found(w, c);
	return r;
}

void auth_clear(struct client *c)
{
	if (c->scram != NULL)
		scram_server_clear(c->scram);
	free(c->scram);
	c->scram = NULL;
	c->auth_step = AUTH_STEP_NONE;
}

void auth_release(struct client *c)
{
	if (c->aq_wait != NULL)
		authquery_cancel(c->aq, c->aq_wait);
	c->aq = NULL;
	c->aq_wait = NULL;
	auth_secret_free(c->auth_secret);
	c->auth_secret = NULL;
}
