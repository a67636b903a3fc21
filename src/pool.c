/*
 * pool.c - pools of server connections per (database, user) (pool.h).
 *
 * Sits between the client state machine (which asks for a server when a
 * transaction starts) and the server state machine (which reports when a
 * server is ready, released or gone).
 */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "batch.h"
#include "client.h"
#include "health.h"
#include "log.h"
#include "server.h"

struct pool *pool_get(struct worker *w, struct database *db, struct target *target,
		      const char *user)
{
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &db->pools)
	{
		struct pool *p = list_entry(pos, struct pool, node);
		if (p->target == target && strcmp(p->user, user) == 0)
			return p;
	}
	struct pool *p = calloc(1, sizeof(*p));
	if (p == NULL || (p->user = strdup(user)) == NULL ||
	    (p->batching = batch_tally_of(db, user)) == NULL) {
		if (p != NULL)
			free(p->user);
		free(p);
		return NULL;
	}
	p->db = db;
	p->target = target;
	target->n_pools++;
	list_init(&p->idle);
	list_init(&p->active);
	list_init(&p->opening);
	list_init(&p->resetting);
	list_init(&p->waiting);
	list_init(&p->batches_open);
	list_init(&p->batches_waiting);
	params_init(&p->welcome);
	params_init(&p->welcome_asked);
	list_add_tail(&db->pools, &p->node);
	p->mode = pool_mode_of(w, p);
	return p;
}

int pool_server_count(const struct pool *p)
{
	return p->n_idle + p->n_active + p->n_opening + p->n_resetting;
}

void pool_free_if_unused(struct worker *w, struct pool *p)
{
	if (pool_server_count(p) > 0 || p->n_clients > 0 || p->n_waiting > 0)
		return;
	struct target *t = p->target;
	list_del(&p->node);
	params_free(&p->welcome);
	params_free(&p->welcome_asked);
	auth_secret_free(p->auth_secret);
	free(p->user);
	free(p);
	t->n_pools--;
	worker_free_target_if_unused(w, t);
}

enum pool_mode pool_mode_of(const struct worker *w, const struct pool *p)
{
	const struct user_conf *u = config_find_user(w->cfg, p->user);
	if (u != NULL && u->pool_mode_set)
		return u->pool_mode;
	if (p->db->pool_mode_set)
		return p->db->pool_mode;
	return (enum pool_mode)w->cfg->pool_mode;
}

static int *state_counter(struct pool *p, enum server_state state)
{
	switch (state) {
	case SERVER_CONNECTING:
	case SERVER_LOGIN:
		return &p->n_opening;
	case SERVER_IDLE:
		return &p->n_idle;
	case SERVER_ACTIVE:
		return &p->n_active;
	case SERVER_RESETTING:
		return &p->n_resetting;
	}
	return NULL;
}

static struct list_head *state_list(struct pool *p, enum server_state state)
{
	switch (state) {
	case SERVER_CONNECTING:
	case SERVER_LOGIN:
		return &p->opening;
	case SERVER_IDLE:
		return &p->idle;
	case SERVER_ACTIVE:
		return &p->active;
	case SERVER_RESETTING:
		return &p->resetting;
	}
	return NULL;
}

void pool_remove_server(struct server *s)
{
	if (list_linked(&s->node)) {
		list_del(&s->node);
		(*state_counter(s->pool, s->state))--;
	}
}

void pool_set_server_state(struct server *s, enum server_state state)
{
	struct pool *p = s->pool;
	pool_remove_server(s);
	s->state = state;
	/* Idle servers are a stack: the most recently used is reused first. */
	list_add_head(state_list(p, state), &s->node);
	(*state_counter(p, state))++;
}

/* The max_db_connections of db; 0 = unlimited. */
static int db_limit(const struct worker *w, const struct database *db)
{
	return db->max_db_connections > 0 ? db->max_db_connections : w->cfg->max_db_connections;
}

/* The max_user_connections of user; 0 = unlimited. */
static int user_limit(const struct worker *w, const char *user)
{
	const struct user_conf *u = config_find_user(w->cfg, user);
	return u != NULL && u->max_user_connections >= 0 ? u->max_user_connections
							 : w->cfg->max_user_connections;
}

/*
 * Calls visit for every pool that shares a connection limit with p: those of its
 * database (by_user false) or those of its user over all databases (by_user true).
 */
static void pool_for_each_sharing(struct worker *w, struct pool *p, bool by_user,
				  void (*visit)(struct pool *, void *), void *arg)
{
	struct list_head *dpos, *dtmp, *ppos, *ptmp;
	list_for_each_safe(dpos, dtmp, &w->databases)
	{
		struct database *db = list_entry(dpos, struct database, node);
		if (!by_user && db != p->db)
			continue;
		list_for_each_safe(ppos, ptmp, &db->pools)
		{
			struct pool *q = list_entry(ppos, struct pool, node);
			if (!by_user || strcmp(q->user, p->user) == 0)
				visit(q, arg);
		}
	}
}

static void pool_add_server_count(struct pool *q, void *arg)
{
	*(int *)arg += pool_server_count(q);
}

/* The server unused the longest among the idle ones of the pools visited, but p's. */
struct idle_search {
	const struct pool *except;
	struct server *oldest;
};

static void pool_find_oldest_idle(struct pool *q, void *arg)
{
	struct idle_search *search = arg;
	if (q == search->except || list_empty(&q->idle))
		return;
	/* The idle stack's tail holds the server unused the longest. */
	struct server *s = list_entry(list_last(&q->idle), struct server, node);
	if (search->oldest == NULL || s->last_used < search->oldest->last_used)
		search->oldest = s;
}

/*
 * Whether p may open another server under max_db_connections and
 * max_user_connections. At a limit and with make_room, an idle server of another
 * pool that shares it is closed instead, so that idle servers elsewhere never
 * starve p's waiting clients.
 */
static bool pool_has_room(struct worker *w, struct pool *p, bool make_room)
{
	for (int by_user = 0; by_user <= 1; by_user++) {
		int limit = by_user ? user_limit(w, p->user) : db_limit(w, p->db);
		if (limit <= 0)
			continue;
		int n = 0;
		pool_for_each_sharing(w, p, by_user, pool_add_server_count, &n);
		if (n < limit)
			continue;
		if (!make_room)
			return false;
		struct idle_search search = {.except = p};
		pool_for_each_sharing(w, p, by_user, pool_find_oldest_idle, &search);
		if (search.oldest == NULL)
			return false;
		server_close(w, search.oldest,
			     by_user ? "idle, closed for another pool at max_user_connections"
				     : "idle, closed for another pool at max_db_connections",
			     false);
	}
	return true;
}

int pool_size_of(const struct worker *w, const struct pool *p)
{
	int size = p->db->pool_size >= 0 ? p->db->pool_size : w->cfg->default_pool_size;
	if (p->target->role == TARGET_PRIMARY)
		return size;
	if (p->target->pool_size >= 0)
		return p->target->pool_size;
	if (p->db->replica_pool_size >= 0)
		return p->db->replica_pool_size;
	return w->cfg->replica_pool_size > 0 ? w->cfg->replica_pool_size : size;
}

static int pool_limit(const struct worker *w, const struct pool *p, ev_tstamp now)
{
	int size = pool_size_of(w, p);
	int reserve = p->db->reserve_pool_size >= 0 ? p->db->reserve_pool_size
						    : w->cfg->reserve_pool_size;
	struct list_head *first = list_first(&p->waiting);
	if (reserve > 0 && first != NULL) {
		struct client *c = list_entry(first, struct client, wait_node);
		if (now - c->wait_since >= (double)w->cfg->reserve_pool_timeout / 1e6)
			size += reserve;
	}
	return size;
}

/* Opens servers for the clients that wait and no opening server will serve. */
static void pool_open_for_waiting(struct worker *w, struct pool *p)
{
	ev_tstamp now = ev_now(w->loop);
	if (p->last_failure > 0 && now - p->last_failure < (double)w->cfg->server_login_retry / 1e6) {
		/* No new attempt before the retry delay; with nothing left to serve them, say why. */
		if (pool_server_count(p) == 0)
			pool_server_failed(w, p, p->failure_sqlstate, p->failure_message);
		return;
	}
	int limit = pool_limit(w, p, now);
	while (p->n_waiting + p->n_batches_waiting > p->n_opening && pool_server_count(p) < limit &&
	       pool_has_room(w, p, true)) {
		if (server_open(w, p) == NULL)
			return; /* server_open reported the failure to the waiting clients */
	}
}

/* Links idle servers to waiting clients, first come first served. */
static void pool_serve_waiting(struct worker *w, struct pool *p)
{
	if (p->db->paused)
		return;
	while (!list_empty(&p->idle) && (!list_empty(&p->waiting) || p->n_batches_waiting > 0)) {
		struct server *s = list_entry(list_first(&p->idle), struct server, node);
		struct client *c = NULL;
		if (!list_empty(&p->waiting))
			c = list_entry(list_first(&p->waiting), struct client, wait_node);
		/* Batches wait in line with the clients. */
		if (p->n_batches_waiting > 0 &&
		    (c == NULL || batch_waiting_since(p) <= c->wait_since)) {
			batch_start_waiting(w, p, s);
			continue;
		}
		pool_cancel_wait(c);
		server_link(w, s, c);
	}
	/* A server nobody waits for takes a batch still collecting rows. */
	while (!list_empty(&p->idle) && list_empty(&p->waiting) && p->n_batches_waiting == 0 &&
	       batch_start_open(w, p, list_entry(list_first(&p->idle), struct server, node)))
		;
	if (!list_empty(&p->waiting) || p->n_batches_waiting > 0)
		pool_open_for_waiting(w, p);
}

void pool_wake(struct worker *w, struct pool *p)
{
	pool_serve_waiting(w, p);
}

void pool_acquire(struct worker *w, struct pool *p, struct client *c)
{
	if (!list_empty(&p->idle) && list_empty(&p->waiting) && p->n_batches_waiting == 0 &&
	    !p->db->paused) {
		server_link(w, list_entry(list_first(&p->idle), struct server, node), c);
		return;
	}
	/* A client still logging in keeps its state: the link finishes its login. */
	if (c->state != CLIENT_WELCOME)
		client_set_state(c, CLIENT_WAITING);
	c->wait_since = ev_now(w->loop);
	list_add_tail(&p->waiting, &c->wait_node);
	c->wait_pool = p;
	p->n_waiting++;
	pool_serve_waiting(w, p);
}

void pool_cancel_wait(struct client *c)
{
	if (!list_linked(&c->wait_node))
		return;
	list_del(&c->wait_node);
	c->wait_pool->n_waiting--;
	c->wait_pool = NULL;
}

void pool_release(struct worker *w, struct server *s)
{
	struct pool *p = s->pool;
	struct client *c = s->client;
	if (c != NULL)
		server_unlink(w, s);
	ev_tstamp now = ev_now(w->loop);
	s->last_used = now;
	bool stale = s->close_on_release || s->generation != p->db->generation ||
		     p->db->removed ||
		     (w->cfg->server_lifetime > 0 &&
		      now - s->opened_at > (double)w->cfg->server_lifetime / 1e6);
	if (stale || (w->closing_clients && list_empty(&p->waiting) && p->n_batches_waiting == 0)) {
		server_close(w, s, "released stale server", false);
		return;
	}
	bool reset = w->cfg->server_reset_query != NULL &&
		     (p->mode == POOL_SESSION || w->cfg->server_reset_query_always);
	if (reset) {
		server_reset(w, s);
		return;
	}
	pool_set_server_state(s, SERVER_IDLE);
	pool_serve_waiting(w, p);
}

void pool_server_ready(struct worker *w, struct server *s)
{
	struct pool *p = s->pool;
	p->last_failure = 0;
	s->last_used = ev_now(w->loop);
	pool_set_server_state(s, SERVER_IDLE);
	pool_serve_waiting(w, p);
}

void pool_server_failed(struct worker *w, struct pool *p, const char *sqlstate,
			const char *message)
{
	if (p->failure_message != message) {
		snprintf(p->failure_sqlstate, sizeof(p->failure_sqlstate), "%s", sqlstate);
		snprintf(p->failure_message, sizeof(p->failure_message), "%s", message);
	}
	p->last_failure = ev_now(w->loop);
	if (p->target->role == TARGET_REPLICA)
		health_report_failure(w, p->target, p->failure_message);
	/* Servers already up or opening will still serve the queue. */
	if (p->n_idle + p->n_active + p->n_opening + p->n_resetting > 0)
		return;
	while (!list_empty(&p->waiting)) {
		struct client *c = list_entry(list_first(&p->waiting), struct client, wait_node);
		pool_cancel_wait(c);
		/* A read that never reached the failed replica goes to another target. */
		if (p->target->role == TARGET_REPLICA && client_retry_read(w, c, p->target))
			continue;
		client_fail_request(w, c, p->failure_sqlstate, p->failure_message);
	}
	batch_pool_failed(w, p, p->failure_sqlstate, p->failure_message);
}

void pool_janitor(struct worker *w, struct pool *p, ev_tstamp now)
{
	const struct config *cfg = w->cfg;
	/* The queue is FIFO: only its head can be the longest waiter. */
	/* Clients held by PAUSE wait for RESUME, not for a timeout. */
	while (cfg->query_wait_timeout > 0 && !p->db->paused && !list_empty(&p->waiting)) {
		struct client *c = list_entry(list_first(&p->waiting), struct client, wait_node);
		if (now - c->wait_since < (double)cfg->query_wait_timeout / 1e6)
			break;
		pool_cancel_wait(c);
		log_info("client %s: no server within query_wait_timeout for %s/%s", c->addr,
			 p->db->name, p->user);
		client_fail_request(w, c, "57014",
				    "query_wait_timeout: no server connection became available");
	}
	batch_janitor(w, p, now);
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &p->opening)
	{
		struct server *s = list_entry(pos, struct server, node);
		if (cfg->server_connect_timeout > 0 &&
		    now - s->opened_at > (double)cfg->server_connect_timeout / 1e6)
			server_close(w, s, "no login within server_connect_timeout", true);
	}
	int min = p->db->min_pool_size >= 0 ? p->db->min_pool_size : cfg->min_pool_size;
	/* The idle stack's tail holds the servers unused the longest. */
	while (!list_empty(&p->idle)) {
		struct server *s = list_entry(list_last(&p->idle), struct server, node);
		bool too_old = cfg->server_lifetime > 0 &&
			       now - s->opened_at > (double)cfg->server_lifetime / 1e6;
		bool unused = cfg->server_idle_timeout > 0 && pool_server_count(p) > min &&
			      now - s->last_used > (double)cfg->server_idle_timeout / 1e6;
		if (!too_old && !unused && s->generation == p->db->generation && !p->db->removed)
			break;
		server_close(w, s, too_old ? "server_lifetime" : "server_idle_timeout", false);
	}
	bool retry_wait = p->last_failure > 0 &&
			  now - p->last_failure < (double)cfg->server_login_retry / 1e6;
	while (!w->shutting_down && !p->db->removed && !retry_wait &&
	       pool_server_count(p) < min && pool_has_room(w, p, false) &&
	       server_can_log_in(w, p)) {
		if (server_open(w, p) == NULL)
			break;
	}
	if (!list_empty(&p->waiting) || p->n_batches_waiting > 0)
		pool_serve_waiting(w, p);
}
