/*
 * worker.c - the event loop's objects and their upkeep (worker.h).
 *
 * Keeps the runtime databases in step with the configuration (reload
 * changes sizes and targets without dropping clients), runs the janitor
 * that enforces timeouts, hands out cancel keys and sends cancel requests
 * to servers without blocking.
 */
#include "worker.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "auth.h"
#include "batch.h"
#include "cancel.h"
#include "client.h"
#include "hba.h"
#include "health.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "password.h"
#include "pool.h"
#include "proto.h"
#include "querylog.h"
#include "router.h"
#include "scramkeys.h"
#include "server.h"
#include "userlist.h"

/* How often the janitor looks at timeouts; the finest timeout resolution. */
#define JANITOR_PERIOD 0.1
/* How often input buffers no one needed go back to the system. */
#define IOBUF_TRIM_PERIOD 1.0
/* Room for the problems of a bad hba_file (hba.c truncates and counts the rest). */
#define HBA_ERRORS_MAX 4096

static bool str_equal(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static char *str_dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static struct target *target_new(struct database *db, const char *host, int port,
				 enum target_role role)
{
	struct target *t = calloc(1, sizeof(*t));
	if (t == NULL || (t->host = strdup(host)) == NULL) {
		free(t);
		return NULL;
	}
	t->db = db;
	t->port = port;
	t->role = role;
	t->weight = 1;
	t->pool_size = -1;
	if (role == TARGET_PRIMARY)
		list_add_head(&db->targets, &t->node);
	else
		list_add_tail(&db->targets, &t->node);
	return t;
}

void worker_free_target_if_unused(struct worker *w, struct target *t)
{
	if (!t->removed || t->n_pools > 0)
		return;
	health_forget_target(w, t);
	list_del(&t->node);
	free(t->host);
	free(t);
}

/* Brings db's replica targets in line with dc: matched by host and port. */
static bool database_sync_replicas(struct worker *w, struct database *db, const struct db_conf *dc)
{
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &db->targets)
	{
		struct target *t = list_entry(pos, struct target, node);
		if (t->role == TARGET_REPLICA)
			t->removed = true;
	}
	bool ok = true;
	for (size_t i = 0; i < dc->n_replicas; i++) {
		const struct replica_conf *rc = &dc->replicas[i];
		struct target *found = NULL;
		list_for_each_safe(pos, tmp, &db->targets)
		{
			struct target *t = list_entry(pos, struct target, node);
			if (t->role == TARGET_REPLICA && t->port == rc->port &&
			    strcmp(t->host, rc->host) == 0)
				found = t;
		}
		if (found == NULL)
			found = target_new(db, rc->host, rc->port, TARGET_REPLICA);
		if (found == NULL) {
			ok = false;
			continue;
		}
		found->removed = false;
		found->weight = rc->weight;
		found->pool_size = rc->pool_size;
	}
	list_for_each_safe(pos, tmp, &db->targets)
	{
		worker_free_target_if_unused(w, list_entry(pos, struct target, node));
	}
	return ok;
}

/* Copies a [databases] entry into runtime db; bumps its generation when the target moved. */
static bool database_apply(struct worker *w, struct database *db, const struct db_conf *dc,
			   const char *name)
{
	const char *dbname = dc->dbname != NULL ? dc->dbname : name;
	bool moved = !str_equal(db->host, dc->host) || db->port != dc->port ||
		     !str_equal(db->dbname, dbname) || !str_equal(db->login_user, dc->user) ||
		     !str_equal(db->login_password, dc->password);
	if (moved) {
		char *host = strdup(dc->host), *dn = strdup(dbname);
		char *user = str_dup_or_null(dc->user), *pw = str_dup_or_null(dc->password);
		if (host == NULL || dn == NULL || (dc->user && !user) || (dc->password && !pw)) {
			free(host);
			free(dn);
			free(user);
			free(pw);
			return false;
		}
		free(db->host);
		free(db->dbname);
		free(db->login_user);
		free(db->login_password);
		db->host = host;
		db->dbname = dn;
		db->login_user = user;
		db->login_password = pw;
		db->port = dc->port;
		db->generation++;
		/* The primary target follows the entry; its old servers retire by generation. */
		if (db->primary == NULL) {
			db->primary = target_new(db, dc->host, dc->port, TARGET_PRIMARY);
			if (db->primary == NULL)
				return false;
		} else if (strcmp(db->primary->host, host) != 0 || db->primary->port != dc->port) {
			char *th = strdup(host);
			if (th == NULL)
				return false;
			free(db->primary->host);
			db->primary->host = th;
			db->primary->port = dc->port;
		}
	}
	db->pool_size = dc->pool_size;
	db->min_pool_size = dc->min_pool_size;
	db->reserve_pool_size = dc->reserve_pool_size;
	db->max_db_connections = dc->max_db_connections;
	db->pool_mode_set = dc->pool_mode_set;
	db->pool_mode = dc->pool_mode;
	db->replica_pool_size = dc->replica_pool_size;
	db->replica_only = dc->replica_only;
	db->read_routing = dc->read_routing_set ? dc->read_routing : w->cfg->read_routing;
	db->read_your_writes =
		dc->read_your_writes_set ? dc->read_your_writes : w->cfg->read_your_writes;
	db->slow_query_threshold = dc->slow_query_threshold_set ? dc->slow_query_threshold : -1;
	db->batch_inserts = dc->batch_inserts_set ? dc->batch_inserts : -1;
	db->removed = false;
	return database_sync_replicas(w, db, dc);
}

static void database_free(struct worker *w, struct database *db);

static struct database *database_new(struct worker *w, const struct db_conf *dc, const char *name)
{
	struct database *db = calloc(1, sizeof(*db));
	if (db == NULL || (db->name = strdup(name)) == NULL) {
		free(db);
		return NULL;
	}
	list_init(&db->pools);
	list_init(&db->targets);
	list_init(&db->batch_tallies);
	stats_init(&db->stats);
	list_add_tail(&w->databases, &db->node);
	db->from_wildcard = strcmp(dc->name, "*") == 0;
	if (!database_apply(w, db, dc, name)) {
		database_free(w, db);
		return NULL;
	}
	return db;
}

static void database_free(struct worker *w, struct database *db)
{
	while (!list_empty(&db->targets)) {
		struct target *t = list_entry(list_first(&db->targets), struct target, node);
		t->removed = true;
		t->n_pools = 0;
		worker_free_target_if_unused(w, t);
	}
	auth_database_gone(db);
	batch_tallies_free(db);
	list_del(&db->node);
	free(db->name);
	free(db->dbname);
	free(db->host);
	free(db->login_user);
	free(db->login_password);
	free(db);
}

static struct database *database_lookup(struct worker *w, const char *name)
{
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &w->databases)
	{
		struct database *db = list_entry(pos, struct database, node);
		if (strcmp(db->name, name) == 0)
			return db;
	}
	return NULL;
}

struct database *worker_find_database(struct worker *w, const char *name)
{
	struct database *db = database_lookup(w, name);
	if (db != NULL)
		return db->removed ? NULL : db;
	const struct db_conf *dc = config_find_db(w->cfg, name);
	return dc != NULL ? database_new(w, dc, name) : NULL;
}

/* Brings the runtime databases in line with w->cfg. */
static void worker_apply_databases(struct worker *w)
{
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &w->databases)
	{
		struct database *db = list_entry(pos, struct database, node);
		const struct db_conf *dc = config_find_db(w->cfg, db->name);
		bool same_kind = dc != NULL && (strcmp(dc->name, "*") == 0) == db->from_wildcard;
		if (!same_kind || !database_apply(w, db, dc, db->name)) {
			db->removed = true;
			db->generation++;
		}
		/* Settings may differ now: learn them again from a server. */
		struct list_head *pp, *pt;
		list_for_each_safe(pp, pt, &db->pools)
		{
			struct pool *p = list_entry(pp, struct pool, node);
			p->have_welcome = false;
			p->mode = pool_mode_of(w, p);
		}
		if (db->removed && list_empty(&db->pools))
			database_free(w, db);
	}
	for (size_t i = 0; i < w->cfg->n_dbs; i++) {
		const struct db_conf *dc = &w->cfg->dbs[i];
		if (strcmp(dc->name, "*") != 0 && database_lookup(w, dc->name) == NULL &&
		    database_new(w, dc, dc->name) == NULL)
			log_error("out of memory adding database %s", dc->name);
	}
}

/* ----- janitor ----- */

static void worker_on_janitor(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)revents;
	struct worker *w = t->data;
	ev_tstamp now = ev_now(loop);
	client_janitor(w, now);
	struct list_head *dpos, *dtmp;
	list_for_each_safe(dpos, dtmp, &w->databases)
	{
		struct database *db = list_entry(dpos, struct database, node);
		struct list_head *pos, *tmp;
		list_for_each_safe(pos, tmp, &db->pools)
		{
			pool_janitor(w, list_entry(pos, struct pool, node), now);
		}
		list_for_each_safe(pos, tmp, &db->pools)
		{
			pool_free_if_unused(w, list_entry(pos, struct pool, node));
		}
		if (db->removed && list_empty(&db->pools))
			database_free(w, db);
	}
	cancel_expire(w, now);
	listener_resume_all(w);
	if (now - w->iobufs_trimmed_at >= IOBUF_TRIM_PERIOD) {
		w->iobufs_trimmed_at = now;
		/* malloc keeps freed memory for itself until asked to give back whole pages. */
		if (iobuf_pool_trim(&w->iobufs) > 0)
			malloc_trim(0);
	}
	double period = (double)w->cfg->stats_period / 1e6;
	if (period > 0 && now - w->stats_period_start >= period) {
		list_for_each_safe(dpos, dtmp, &w->databases)
		{
			struct database *db = list_entry(dpos, struct database, node);
			stats_roll_period(&db->stats, now - w->stats_period_start);
		}
		w->stats_period_start = now;
	}
	if (w->shutting_down && (w->n_clients == 0 || now >= w->shutdown_deadline)) {
		if (w->n_clients > 0)
			log_info("shutdown_timeout reached with %d clients left", w->n_clients);
		w->stop_requested = true;
		ev_break(loop, EVBREAK_ALL);
	}
}

/* Room for why a TLS context could not be built. */
#define WORKER_TLS_ERR_MAX 1024

/*
 * Builds one side's context into *ctx (NULL when the mode needs none); keeps
 * *ctx and writes err on failure.
 */
static bool worker_tls_side(SSL_CTX **ctx, const struct tls_settings *ts, bool toward_clients,
			    char *err, size_t errlen)
{
	SSL_CTX *made = NULL;
	/* Toward servers, allow connects in plaintext (see doc/tls.md). */
	bool wanted = toward_clients ? ts->mode != TLS_MODE_DISABLE : ts->mode >= TLS_MODE_PREFER;
	if (wanted) {
		char why[WORKER_TLS_ERR_MAX / 2];
		made = toward_clients ? tls_server_ctx_new(ts, why, sizeof(why))
				      : tls_client_ctx_new(ts, why, sizeof(why));
		if (made == NULL) {
			snprintf(err, errlen, "%s_tls: %s", toward_clients ? "client" : "server", why);
			return false;
		}
	}
	SSL_CTX_free(*ctx);
	*ctx = made;
	return true;
}

bool worker_tls_configure(struct worker *w, char *err, size_t errlen)
{
	const struct config *cfg = w->cfg;
	struct tls_settings cs = {
		.mode = (enum tls_mode)cfg->client_tls_mode,
		.cert_file = cfg->client_tls_cert_file,
		.key_file = cfg->client_tls_key_file,
		.ca_file = cfg->client_tls_ca_file,
		.protocols = cfg->client_tls_protocols,
		.ciphers = cfg->client_tls_ciphers,
	};
	struct tls_settings ss = {
		.mode = (enum tls_mode)cfg->server_tls_mode,
		.cert_file = cfg->server_tls_cert_file,
		.key_file = cfg->server_tls_key_file,
		.ca_file = cfg->server_tls_ca_file,
		.protocols = cfg->server_tls_protocols,
		.ciphers = cfg->server_tls_ciphers,
	};
	char client_err[WORKER_TLS_ERR_MAX / 2 + 16], server_err[WORKER_TLS_ERR_MAX / 2 + 16];
	bool client_ok = worker_tls_side(&w->client_tls, &cs, true, client_err, sizeof(client_err));
	bool server_ok = worker_tls_side(&w->server_tls, &ss, false, server_err, sizeof(server_err));
	if (!client_ok && !server_ok)
		snprintf(err, errlen, "%s; %s", client_err, server_err);
	else if (!client_ok || !server_ok)
		snprintf(err, errlen, "%s", client_ok ? server_err : client_err);
	return client_ok && server_ok;
}

static void worker_on_prepare(struct ev_loop *loop, ev_prepare *p, int revents)
{
	(void)loop;
	(void)revents;
	client_run_deferred(p->data);
}

bool worker_init(struct worker *w, struct ev_loop *loop, struct config *cfg,
		 struct userlist *users, struct hba_rules *hba)
{
	const char *config_path = w->config_path;
	memset(w, 0, sizeof(*w));
	w->config_path = config_path;
	w->loop = loop;
	w->started_at = w->stats_period_start = ev_now(loop);
	w->cfg = cfg;
	w->users = users;
	w->hba = hba;
	ev_set_userdata(loop, w);
	iobuf_pool_init(&w->iobufs, (uint32_t)cfg->pkt_buf);
	list_init(&w->databases);
	list_init(&w->clients);
	list_init(&w->cancels);
	list_init(&w->deferred);
	stmtreg_init(&w->statements);
	if (!cancel_init(w))
		return false;
	worker_apply_databases(w);
	if (!router_configure(w) || !querylog_configure(w))
		return false;
	char tls_err[WORKER_TLS_ERR_MAX];
	if (!worker_tls_configure(w, tls_err, sizeof(tls_err))) {
		log_error("%s", tls_err);
		return false;
	}
	health_start(w);
	ev_timer_init(&w->janitor, worker_on_janitor, JANITOR_PERIOD, JANITOR_PERIOD);
	w->janitor.data = w;
	ev_timer_start(loop, &w->janitor);
	ev_prepare_init(&w->deferred_watcher, worker_on_prepare);
	w->deferred_watcher.data = w;
	ev_prepare_start(loop, &w->deferred_watcher);
	return listener_open_all(w) && metrics_start(w);
}

void worker_reload(struct worker *w, struct config *cfg, struct userlist *users,
		   struct hba_rules *hba)
{
	config_free(w->cfg);
	w->cfg = cfg;
	userlist_free(w->users);
	w->users = users;
	hba_free(w->hba);
	w->hba = hba;
	worker_apply_databases(w);
	auth_restart_lookups(w);
	if (!router_configure(w))
		log_error("out of memory applying write_functions/read_only_functions");
	if (!querylog_configure(w))
		log_error("out of memory applying the slow-query settings");
	char tls_err[WORKER_TLS_ERR_MAX];
	if (!worker_tls_configure(w, tls_err, sizeof(tls_err)))
		log_error("%s; that side keeps its running TLS context", tls_err);
	log_info("configuration reloaded: %zu databases", cfg->n_dbs);
}

bool worker_load_hba(const struct config *cfg, struct hba_rules **hba, char **errors)
{
	*hba = NULL;
	*errors = NULL;
	if (cfg->hba_file == NULL)
		return true;
	char err[HBA_ERRORS_MAX];
	err[0] = '\0';
	*hba = hba_load(cfg->hba_file, err, sizeof(err));
	if (*hba != NULL)
		return true;
	if (err[0] == '\0')
		snprintf(err, sizeof(err), "%s: out of memory", cfg->hba_file);
	size_t n = strlen(err) + sizeof("hba_file: \n");
	if ((*errors = malloc(n)) != NULL)
		snprintf(*errors, n, "hba_file: %s\n", err);
	return false;
}

char *worker_reload_from_file(struct worker *w)
{
	char *errors = NULL;
	struct config *cfg = config_load(w->config_path, &errors);
	if (cfg == NULL)
		return errors != NULL ? errors : strdup("configuration could not be read");
	struct userlist *users = NULL;
	if (cfg->auth_file != NULL && (users = userlist_load(cfg->auth_file, &errors)) == NULL) {
		config_free(cfg);
		return errors != NULL ? errors : strdup("auth_file could not be read");
	}
	struct hba_rules *hba = NULL;
	if (!worker_load_hba(cfg, &hba, &errors)) {
		userlist_free(users);
		config_free(cfg);
		return errors != NULL ? errors : strdup("hba_file could not be read");
	}
	if (!log_open(cfg->logfile, cfg->syslog, cfg->verbose))
		log_error("could not open log file \"%s\"", cfg->logfile);
	log_reopen();
	querylog_reopen(w);
	worker_reload(w, cfg, users, hba);
	return NULL;
}

void worker_begin_shutdown(struct worker *w)
{
	if (w->shutting_down) {
		if (!w->closing_clients)
			log_info("shutting down: now closing clients as their transactions end");
		w->closing_clients = true;
		return;
	}
	w->shutting_down = true;
	w->closing_clients = w->cfg->shutdown_drain == DRAIN_TRANSACTIONS;
	w->shutdown_deadline = ev_now(w->loop) + (double)w->cfg->shutdown_timeout / 1e6;
	listener_close_all(w);
	log_info("shutting down: waiting for %d clients to %s (shutdown_timeout %.1fs)",
		 w->n_clients, w->closing_clients ? "finish their transactions" : "disconnect",
		 (double)w->cfg->shutdown_timeout / 1e6);
}

void worker_close_all(struct worker *w)
{
	listener_close_all(w);
	listener_close_peer(w);
	health_stop(w);
	while (!list_empty(&w->clients)) {
		struct client *c = list_entry(list_first(&w->clients), struct client, node);
		client_fatal(w, c, "57P01", "terminating connection due to administrator command");
	}
	struct list_head *dpos, *dtmp;
	list_for_each_safe(dpos, dtmp, &w->databases)
	{
		struct database *db = list_entry(dpos, struct database, node);
		struct list_head *pos, *tmp;
		list_for_each_safe(pos, tmp, &db->pools)
		{
			struct pool *p = list_entry(pos, struct pool, node);
			struct list_head *lists[] = {&p->idle, &p->active, &p->opening, &p->resetting};
			for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
				while (!list_empty(lists[i])) {
					struct server *s =
					    list_entry(list_first(lists[i]), struct server, node);
					proto_put_terminate(&s->conn.out);
					conn_flush(&s->conn);
					server_close(w, s, "pgsluice stopping", false);
				}
			}
			pool_free_if_unused(w, p);
		}
		database_free(w, db);
	}
}

void worker_destroy(struct worker *w)
{
	metrics_stop(w);
	worker_close_all(w);
	ev_timer_stop(w->loop, &w->janitor);
	ev_prepare_stop(w->loop, &w->deferred_watcher);
	cancel_destroy(w);
	querylog_free(w);
	stmtreg_free(&w->statements);
	router_free(w);
	SSL_CTX_free(w->client_tls);
	SSL_CTX_free(w->server_tls);
	w->client_tls = w->server_tls = NULL;
	iobuf_pool_destroy(&w->iobufs);
	config_free(w->cfg);
	userlist_free(w->users);
	scramkeys_free(w->scram_keys);
	hba_free(w->hba);
	w->cfg = NULL;
	w->users = NULL;
	w->scram_keys = NULL;
	w->hba = NULL;
}
