/*
 * authquery.c - auth_query lookups on the event loop (see authquery.h).
 *
 * A lookup (struct authquery_wait) is answered from the cache (struct
 * authquery_cache), or joins the query pending for its user (struct
 * authquery_pending), or makes one. Pending queries run one at a time, oldest
 * first, on the object's single libpq connection, which is kept open between
 * queries and reopened when it breaks. Every answer goes to a ready list that
 * a zero-delay timer empties, so that callbacks always run from the loop and
 * never inside the code that decided them. A ticking timer enforces the
 * lookups' deadlines and the connection's step timeout and expires answers.
 */
#include "authquery.h"

#include <ctype.h>
#include <ev.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "list.h"
#include "log.h"

#define AUTHQUERY_DEFAULT_TIMEOUT 5.0
/* Hash buckets are a power of two between these; past the top, chains grow instead. */
#define AUTHQUERY_BUCKETS_MIN 16u
#define AUTHQUERY_BUCKETS_MAX (1u << 16)
/* Timer period while lookups or the connection are busy (the deadlines' precision),
 * and while only cached answers are left to expire. */
#define AUTHQUERY_TICK_BUSY 0.1
#define AUTHQUERY_TICK_IDLE 1.0

/* ----- a string-keyed hash table, shared by the cache and the pending queries ----- */

struct authquery_hnode {
	struct authquery_hnode *next;
	uint64_t hash;
	const char *key;
};

struct authquery_table {
	struct authquery_hnode **buckets;
	size_t mask;
};

static uint64_t authquery_hash(const char *key)
{
	return hash_bytes(HASH_FNV_OFFSET, key, strlen(key));
}

static bool authquery_table_init(struct authquery_table *t, size_t expected)
{
	size_t n = AUTHQUERY_BUCKETS_MIN;
	while (n < expected && n < AUTHQUERY_BUCKETS_MAX)
		n <<= 1;
	t->buckets = calloc(n, sizeof(*t->buckets));
	t->mask = n - 1;
	return t->buckets != NULL;
}

static struct authquery_hnode **authquery_table_slot(struct authquery_table *t, const char *key,
						      uint64_t hash)
{
	struct authquery_hnode **at = &t->buckets[hash & t->mask];
	while (*at != NULL && ((*at)->hash != hash || strcmp((*at)->key, key) != 0))
		at = &(*at)->next;
	return at;
}

static struct authquery_hnode *authquery_table_find(struct authquery_table *t, const char *key)
{
	return *authquery_table_slot(t, key, authquery_hash(key));
}

/* n->key must be set and not in the table yet. */
static void authquery_table_add(struct authquery_table *t, struct authquery_hnode *n)
{
	n->hash = authquery_hash(n->key);
	struct authquery_hnode **bucket = &t->buckets[n->hash & t->mask];
	n->next = *bucket;
	*bucket = n;
}

static void authquery_table_remove(struct authquery_table *t, struct authquery_hnode *n)
{
	struct authquery_hnode **at = &t->buckets[n->hash & t->mask];
	while (*at != n)
		at = &(*at)->next;
	*at = n->next;
	n->next = NULL;
}

/* ----- the answer cache ----- */

struct authquery_answer {
	struct authquery_hnode h;
	struct list_head lru; /* on the cache's lru list, most recently used first */
	double expires;
	char *secret;         /* NULL: NOT_FOUND */
	char user[];
};

struct authquery_cache {
	struct authquery_table table;
	struct list_head lru;
	size_t n;
	size_t max;
};

static void authquery_wipe_free(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
}

static void authquery_answer_drop(struct authquery_cache *c, struct authquery_answer *a)
{
	authquery_table_remove(&c->table, &a->h);
	list_del(&a->lru);
	c->n--;
	authquery_wipe_free(a->secret);
	free(a);
}

struct authquery_cache *authquery_cache_new(size_t max_entries)
{
	struct authquery_cache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	if (!authquery_table_init(&c->table, max_entries)) {
		free(c);
		return NULL;
	}
	list_init(&c->lru);
	c->max = max_entries;
	return c;
}

void authquery_cache_free(struct authquery_cache *c)
{
	if (c == NULL)
		return;
	struct list_head *first;
	while ((first = list_first(&c->lru)) != NULL)
		authquery_answer_drop(c, list_entry(first, struct authquery_answer, lru));
	free(c->table.buckets);
	free(c);
}

static struct authquery_answer *authquery_cache_find(struct authquery_cache *c, const char *user)
{
	struct authquery_hnode *n = authquery_table_find(&c->table, user);
	return n != NULL ? list_entry(n, struct authquery_answer, h) : NULL;
}

bool authquery_cache_put(struct authquery_cache *c, const char *user, const char *secret,
			 double expires)
{
	struct authquery_answer *old = authquery_cache_find(c, user);
	if (old != NULL)
		authquery_answer_drop(c, old);
	if (c->max == 0)
		return false;
	size_t user_len = strlen(user);
	struct authquery_answer *a = calloc(1, sizeof(*a) + user_len + 1);
	if (a == NULL)
		return false;
	if (secret != NULL && (a->secret = strdup(secret)) == NULL) {
		free(a);
		return false;
	}
	memcpy(a->user, user, user_len + 1);
	a->h.key = a->user;
	a->expires = expires;
	struct list_head *oldest;
	while (c->n >= c->max && (oldest = list_last(&c->lru)) != NULL)
		authquery_answer_drop(c, list_entry(oldest, struct authquery_answer, lru));
	authquery_table_add(&c->table, &a->h);
	list_add_head(&c->lru, &a->lru);
	c->n++;
	return true;
}

enum authquery_status authquery_cache_get(struct authquery_cache *c, const char *user, double now,
					  const char **secret)
{
	struct authquery_answer *a = authquery_cache_find(c, user);
	if (a == NULL)
		return AUTHQUERY_FAILED;
	if (now >= a->expires) {
		authquery_answer_drop(c, a);
		return AUTHQUERY_FAILED;
	}
	list_del(&a->lru);
	list_add_head(&c->lru, &a->lru);
	*secret = a->secret;
	return a->secret != NULL ? AUTHQUERY_FOUND : AUTHQUERY_NOT_FOUND;
}

bool authquery_cache_drop(struct authquery_cache *c, const char *user)
{
	struct authquery_answer *a = authquery_cache_find(c, user);
	if (a != NULL)
		authquery_answer_drop(c, a);
	return a != NULL;
}

size_t authquery_cache_expire(struct authquery_cache *c, double now)
{
	size_t dropped = 0;
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &c->lru)
	{
		struct authquery_answer *a = list_entry(pos, struct authquery_answer, lru);
		if (now >= a->expires) {
			authquery_answer_drop(c, a);
			dropped++;
		}
	}
	return dropped;
}

size_t authquery_cache_count(const struct authquery_cache *c)
{
	return c->n;
}

/* ----- reading the result ----- */

/* libpq's and the server's messages may span lines and end in one: one line, bounded. */
static void authquery_format_reason(char *out, size_t cap, const char *prefix, const char *message)
{
	size_t len = 0;
	if (cap == 0)
		return;
	for (const char *c = prefix; *c != '\0' && len + 1 < cap; c++)
		out[len++] = *c;
	for (const char *c = message != NULL ? message : ""; *c != '\0' && len + 1 < cap; c++) {
		bool space = isspace((unsigned char)*c);
		if (space && (len == 0 || out[len - 1] == ' '))
			continue;
		out[len++] = space ? ' ' : *c;
	}
	while (len > 0 && out[len - 1] == ' ')
		len--;
	out[len] = '\0';
}

enum authquery_status authquery_read_result(const PGresult *r, const char *user,
					    const char **secret, char *reason, size_t cap)
{
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK) {
		const char *message = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
		if (message == NULL || message[0] == '\0')
			message = PQresultErrorMessage(r);
		if (message[0] == '\0')
			message = PQresStatus(st);
		authquery_format_reason(reason, cap, "query failed: ", message);
		return AUTHQUERY_FAILED;
	}
	if (PQnfields(r) != 2) {
		snprintf(reason, cap, "query failed: %d columns, not 2 (user name, secret)",
			 PQnfields(r));
		return AUTHQUERY_FAILED;
	}
	int rows = PQntuples(r);
	if (rows == 0)
		return AUTHQUERY_NOT_FOUND;
	if (rows > 1) {
		snprintf(reason, cap, "query failed: %d rows for one user", rows);
		return AUTHQUERY_FAILED;
	}
	/* A secret is only ever used for the user it was asked for. */
	if (PQgetisnull(r, 0, 0) || strcmp(PQgetvalue(r, 0, 0), user) != 0) {
		snprintf(reason, cap, "query failed: the row is for another user");
		return AUTHQUERY_FAILED;
	}
	if (PQgetisnull(r, 0, 1) || PQgetlength(r, 0, 1) == 0)
		return AUTHQUERY_NOT_FOUND;
	const char *value = PQgetvalue(r, 0, 1);
	/* Text format: a NUL inside would cut the secret short. */
	if (PQgetlength(r, 0, 1) > AUTHQUERY_SECRET_MAX ||
	    strlen(value) != (size_t)PQgetlength(r, 0, 1)) {
		snprintf(reason, cap, "query failed: unusable secret");
		return AUTHQUERY_FAILED;
	}
	*secret = value;
	return AUTHQUERY_FOUND;
}

/* ----- lookups and pending queries ----- */

enum authquery_wait_state {
	AUTHQUERY_WAIT_PENDING, /* on its pending query's waiters and on aq->waiting */
	AUTHQUERY_WAIT_READY,   /* answered, on aq->ready (or on the list being delivered) */
	AUTHQUERY_WAIT_DONE,    /* its cb is running; freed after it */
};

struct authquery_wait {
	struct list_head node;     /* PENDING: the pending query's waiters; READY: ready */
	struct list_head deadline; /* PENDING: aq->waiting, oldest first */
	enum authquery_wait_state state;
	struct authquery_pending *pending; /* PENDING */
	authquery_done_fn cb;
	void *arg;
	ev_tstamp expires;
	enum authquery_status status; /* READY */
	char *secret;                 /* READY and FOUND: owned copy */
	char reason[AUTHQUERY_REASON_MAX];
};

enum authquery_pending_state {
	AUTHQUERY_PENDING_QUEUED,  /* on aq->queue, oldest first */
	AUTHQUERY_PENDING_RUNNING, /* aq->running: its query is on the connection */
};

struct authquery_pending {
	struct authquery_hnode h;
	struct list_head node; /* QUEUED: aq->queue */
	enum authquery_pending_state state;
	struct list_head waiters;
	bool retried;          /* sent once on a kept connection that broke */
	char user[];
};

enum authquery_conn_state {
	AUTHQUERY_CONN_CLOSED,
	AUTHQUERY_CONN_CONNECTING, /* PQconnectPoll in progress */
	AUTHQUERY_CONN_IDLE,       /* connected, no query */
	AUTHQUERY_CONN_BUSY,       /* aq->running's query in flight */
};

struct authquery {
	struct ev_loop *loop;
	struct authquery_settings s; /* strings point into block, s.tls's into tls_block */
	char *block;
	size_t block_len;
	char *tls_block;
	struct authquery_cache *cache;
	struct authquery_table pending;
	struct list_head queue;
	struct authquery_pending *running;
	struct list_head waiting; /* lookups waiting for the server, by deadline */
	size_t n_waiting;
	struct list_head ready;
	PGconn *pg;
	ev_io io;
	enum authquery_conn_state conn;
	bool fresh;               /* the connection was opened for the query running */
	ev_tstamp step_started;   /* of the connect or query running */
	ev_timer tick;
	ev_timer deliver;
	bool failing;             /* the last connect or query failed: logged once */
	bool stopping;
	struct authquery_stats stats;
	/* The answer of the query running, read from its first result. */
	bool answered;
	enum authquery_status answer;
	char *answer_secret;
	char answer_reason[AUTHQUERY_REASON_MAX];
};

static double authquery_timeout(const struct authquery *aq)
{
	return aq->s.timeout > 0 ? aq->s.timeout : AUTHQUERY_DEFAULT_TIMEOUT;
}

/* Gives w its answer and puts it on the ready list; delivery follows from the loop. */
static void authquery_wait_answer(struct authquery *aq, struct authquery_wait *w,
				  enum authquery_status status, const char *text)
{
	if (w->state == AUTHQUERY_WAIT_PENDING) {
		list_del(&w->node);
		list_del(&w->deadline);
		aq->n_waiting--;
		w->pending = NULL;
	}
	if (status == AUTHQUERY_FOUND && (w->secret = strdup(text)) == NULL) {
		status = AUTHQUERY_FAILED;
		text = "out of memory";
	}
	w->status = status;
	if (status == AUTHQUERY_FAILED)
		snprintf(w->reason, sizeof(w->reason), "%s", text);
	if (status == AUTHQUERY_FOUND)
		aq->stats.found++;
	else if (status == AUTHQUERY_NOT_FOUND)
		aq->stats.not_found++;
	else
		aq->stats.failures++;
	w->state = AUTHQUERY_WAIT_READY;
	list_add_tail(&aq->ready, &w->node);
	if (!aq->stopping && !ev_is_active(&aq->deliver))
		ev_timer_start(aq->loop, &aq->deliver);
}

static void authquery_wait_free(struct authquery_wait *w)
{
	authquery_wipe_free(w->secret);
	free(w);
}

static void authquery_pending_free(struct authquery *aq, struct authquery_pending *p)
{
	authquery_table_remove(&aq->pending, &p->h);
	if (p->state == AUTHQUERY_PENDING_QUEUED)
		list_del(&p->node);
	else
		aq->running = NULL;
	free(p);
}

/* Answers every lookup waiting for p and frees p. */
static void authquery_pending_end(struct authquery *aq, struct authquery_pending *p,
				  enum authquery_status status, const char *text)
{
	struct list_head *first;
	while ((first = list_first(&p->waiters)) != NULL)
		authquery_wait_answer(aq, list_entry(first, struct authquery_wait, node), status,
				      text);
	authquery_pending_free(aq, p);
}

/* Ends every queued query with FAILED reason (the connection they waited for failed). */
static void authquery_fail_queue(struct authquery *aq, const char *reason)
{
	struct list_head *first;
	while ((first = list_first(&aq->queue)) != NULL)
		authquery_pending_end(aq, list_entry(first, struct authquery_pending, node),
				      AUTHQUERY_FAILED, reason);
}

/* ----- the connection ----- */

static void authquery_ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void authquery_forget_answer(struct authquery *aq)
{
	authquery_wipe_free(aq->answer_secret);
	aq->answer_secret = NULL;
	aq->answered = false;
	aq->answer_reason[0] = '\0';
}

static void authquery_close(struct authquery *aq)
{
	if (ev_is_active(&aq->io))
		ev_io_stop(aq->loop, &aq->io);
	if (aq->pg != NULL)
		PQfinish(aq->pg);
	aq->pg = NULL;
	aq->conn = AUTHQUERY_CONN_CLOSED;
	authquery_forget_answer(aq);
}

/* Watches the socket for events, following libpq when it changes sockets. */
static bool authquery_watch(struct authquery *aq, int events)
{
	int fd = PQsocket(aq->pg);
	if (fd < 0)
		return false;
	if (ev_is_active(&aq->io))
		ev_io_stop(aq->loop, &aq->io);
	ev_io_set(&aq->io, fd, events);
	ev_io_start(aq->loop, &aq->io);
	return true;
}

static void authquery_note_failure(struct authquery *aq, const char *reason)
{
	if (!aq->failing)
		log_warning("auth_query as %s failed: %s", aq->s.user ? aq->s.user : "(default)",
			    reason);
	else
		log_debug("auth_query failed: %s", reason);
	aq->failing = true;
}

static void authquery_note_success(struct authquery *aq)
{
	if (aq->failing)
		log_info("auth_query answers again");
	aq->failing = false;
}

static void authquery_dispatch(struct authquery *aq);
static void authquery_arm(struct authquery *aq);

/*
 * The connection failed (connect refused, login failed, connection lost,
 * timeout): it is closed. With may_retry, a query it was running is sent
 * again once on a new connection when the connection was a kept one (a
 * restart or idle_session_timeout says nothing about the lookup); otherwise
 * the query fails, and a failed connect fails every queued query too.
 */
static void authquery_conn_fail(struct authquery *aq, const char *prefix, const char *message,
				bool may_retry)
{
	char reason[AUTHQUERY_REASON_MAX];
	authquery_format_reason(reason, sizeof(reason), prefix, message);
	bool connecting = aq->conn == AUTHQUERY_CONN_CONNECTING;
	bool kept = !aq->fresh;
	authquery_close(aq);
	struct authquery_pending *p = aq->running;
	if (p != NULL && may_retry && kept && !p->retried) {
		log_debug("auth_query: kept connection lost (%s), sending again", reason);
		p->retried = true;
		aq->running = NULL;
		p->state = AUTHQUERY_PENDING_QUEUED;
		list_add_head(&aq->queue, &p->node);
	} else {
		authquery_note_failure(aq, reason);
		if (p != NULL)
			authquery_pending_end(aq, p, AUTHQUERY_FAILED, reason);
		if (connecting)
			authquery_fail_queue(aq, reason);
	}
	authquery_dispatch(aq);
}

static void authquery_conn_fail_libpq(struct authquery *aq, const char *prefix)
{
	authquery_conn_fail(aq, prefix, aq->pg != NULL ? PQerrorMessage(aq->pg) : NULL, true);
}

static void authquery_on_io(struct ev_loop *loop, ev_io *io, int revents);

static void authquery_connect(struct authquery *aq)
{
	const struct authquery_settings *s = &aq->s;
	double seconds = authquery_timeout(aq);
	/* The server gives up on a slow query too, rather than run on for nobody. */
	char options[64];
	snprintf(options, sizeof(options), "-c statement_timeout=%.0f", ceil(seconds * 1000));
	struct auxconn_spec spec = {
		.host = s->host,
		.port = s->port,
		.dbname = s->dbname,
		.user = s->user,
		.password = s->password,
		.application_name = "pgsluice-authquery",
		/* libpq only enforces it in blocking connects; the tick is what bounds this one. */
		.connect_timeout = seconds,
		.options = options,
		.tls = s->tls,
	};

	aq->conn = AUTHQUERY_CONN_CONNECTING;
	aq->fresh = true;
	aq->step_started = ev_now(aq->loop);
	aq->stats.connects++;
	aq->pg = auxconn_start(&spec);
	if (aq->pg == NULL) {
		authquery_conn_fail(aq, "connect failed: ", "out of memory", true);
		return;
	}
	/* The default processor writes to stderr, outside the log. */
	PQsetNoticeProcessor(aq->pg, authquery_ignore_notice, NULL);
	if (PQstatus(aq->pg) == CONNECTION_BAD) {
		authquery_conn_fail_libpq(aq, "connect failed: ");
		return;
	}
	/* libpq's contract: poll as if PGRES_POLLING_WRITING came first. */
	if (!authquery_watch(aq, EV_WRITE))
		authquery_conn_fail(aq, "connect failed: ", "no socket", true);
}

/* Sends the oldest queued query. */
static void authquery_send(struct authquery *aq)
{
	struct authquery_pending *p =
		list_entry(list_first(&aq->queue), struct authquery_pending, node);
	list_del(&p->node);
	p->state = AUTHQUERY_PENDING_RUNNING;
	aq->running = p;
	aq->conn = AUTHQUERY_CONN_BUSY;
	aq->step_started = ev_now(aq->loop);
	aq->stats.queries++;
	authquery_forget_answer(aq);
	const char *params[1] = {p->user};
	/* The extended protocol: the name is a parameter, and a second statement is refused. */
	if (!PQsendQueryParams(aq->pg, aq->s.query, 1, NULL, params, NULL, NULL, 0)) {
		authquery_conn_fail_libpq(aq, "query failed: ");
		return;
	}
	int flushed = PQflush(aq->pg);
	if (flushed < 0) {
		authquery_conn_fail_libpq(aq, "query failed: ");
		return;
	}
	if (!authquery_watch(aq, flushed == 1 ? EV_READ | EV_WRITE : EV_READ))
		authquery_conn_fail(aq, "query failed: ", "no socket", true);
}

/* Starts what the queue needs: a connection, or its oldest query. */
static void authquery_dispatch(struct authquery *aq)
{
	if (aq->stopping || list_empty(&aq->queue))
		return;
	if (aq->conn == AUTHQUERY_CONN_CLOSED)
		authquery_connect(aq);
	else if (aq->conn == AUTHQUERY_CONN_IDLE)
		authquery_send(aq);
}

static void authquery_connect_poll(struct authquery *aq)
{
	switch (PQconnectPoll(aq->pg)) {
	case PGRES_POLLING_READING:
		if (!authquery_watch(aq, EV_READ))
			authquery_conn_fail(aq, "connect failed: ", "no socket", true);
		return;
	case PGRES_POLLING_WRITING:
		if (!authquery_watch(aq, EV_WRITE))
			authquery_conn_fail(aq, "connect failed: ", "no socket", true);
		return;
	case PGRES_POLLING_OK:
		/* From here on a full socket buffer must never block the loop. */
		if (PQsetnonblocking(aq->pg, 1) != 0 || !authquery_watch(aq, EV_READ)) {
			authquery_conn_fail_libpq(aq, "connect failed: ");
			return;
		}
		aq->conn = AUTHQUERY_CONN_IDLE;
		authquery_dispatch(aq);
		return;
	default:
		authquery_conn_fail_libpq(aq, "connect failed: ");
		return;
	}
}

static void authquery_take_result(struct authquery *aq, const PGresult *r)
{
	if (aq->answered)
		return;
	aq->answered = true;
	const char *secret = NULL;
	aq->answer = authquery_read_result(r, aq->running->user, &secret, aq->answer_reason,
					   sizeof(aq->answer_reason));
	if (aq->answer == AUTHQUERY_FOUND && (aq->answer_secret = strdup(secret)) == NULL) {
		aq->answer = AUTHQUERY_FAILED;
		snprintf(aq->answer_reason, sizeof(aq->answer_reason), "out of memory");
	}
}

/* The running query has returned its last result: answer its lookups, keep the connection. */
static void authquery_finish(struct authquery *aq)
{
	struct authquery_pending *p = aq->running;
	enum authquery_status status = aq->answered ? aq->answer : AUTHQUERY_FAILED;
	char reason[AUTHQUERY_REASON_MAX];
	snprintf(reason, sizeof(reason), "%s",
		 aq->answered ? aq->answer_reason : "query failed: no answer");
	char *secret = aq->answer_secret;
	aq->answer_secret = NULL;
	authquery_forget_answer(aq);
	bool ok = PQstatus(aq->pg) == CONNECTION_OK;
	if (status == AUTHQUERY_FAILED && !ok) {
		/* The connection broke under the query: its failure, not the query's. */
		authquery_conn_fail(aq, "", reason, true);
		return;
	}
	aq->fresh = false;
	if (ok && PQtransactionStatus(aq->pg) == PQTRANS_IDLE)
		aq->conn = AUTHQUERY_CONN_IDLE;
	else
		/* A query that left a transaction open would leave it open for the next. */
		authquery_close(aq);
	ev_tstamp now = ev_now(aq->loop);
	if (status == AUTHQUERY_FAILED) {
		authquery_note_failure(aq, reason);
		authquery_pending_end(aq, p, AUTHQUERY_FAILED, reason);
	} else {
		authquery_note_success(aq);
		double ttl = status == AUTHQUERY_FOUND ? aq->s.cache_ttl : aq->s.negative_ttl;
		if (ttl > 0)
			authquery_cache_put(aq->cache, p->user, secret, now + ttl);
		authquery_pending_end(aq, p, status, secret);
	}
	authquery_wipe_free(secret);
	authquery_dispatch(aq);
}

static void authquery_on_busy_io(struct authquery *aq, int revents)
{
	if (revents & EV_WRITE) {
		int flushed = PQflush(aq->pg);
		if (flushed < 0) {
			authquery_conn_fail_libpq(aq, "query failed: ");
			return;
		}
		if (flushed == 0 && !authquery_watch(aq, EV_READ)) {
			authquery_conn_fail(aq, "query failed: ", "no socket", true);
			return;
		}
	}
	if (!(revents & EV_READ))
		return;
	if (!PQconsumeInput(aq->pg)) {
		authquery_conn_fail_libpq(aq, "query failed: ");
		return;
	}
	while (!PQisBusy(aq->pg)) {
		PGresult *r = PQgetResult(aq->pg);
		if (r == NULL) {
			authquery_finish(aq);
			return;
		}
		authquery_take_result(aq, r);
		PQclear(r);
	}
}

static void authquery_on_io(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	struct authquery *aq = io->data;
	switch (aq->conn) {
	case AUTHQUERY_CONN_CONNECTING:
		authquery_connect_poll(aq);
		break;
	case AUTHQUERY_CONN_BUSY:
		authquery_on_busy_io(aq, revents);
		break;
	case AUTHQUERY_CONN_IDLE:
		/* Between queries the server only speaks to say goodbye (shutdown,
		 * idle_session_timeout, pg_terminate_backend): reopen on the next lookup. */
		if (!PQconsumeInput(aq->pg) || PQstatus(aq->pg) != CONNECTION_OK) {
			log_debug("auth_query: idle connection closed by the server");
			authquery_close(aq);
		}
		break;
	case AUTHQUERY_CONN_CLOSED:
		ev_io_stop(loop, io);
		break;
	}
	authquery_arm(aq);
}

/* ----- timers ----- */

/* A lookup that no longer waits for anything: a query nobody waits for and not sent is dropped. */
static void authquery_pending_check(struct authquery *aq, struct authquery_pending *p)
{
	if (p != NULL && p->state == AUTHQUERY_PENDING_QUEUED && list_empty(&p->waiters))
		authquery_pending_free(aq, p);
}

/* The tick runs often while anything waits or the connection works, slowly for the cache. */
static void authquery_arm(struct authquery *aq)
{
	double period = 0;
	if (aq->stopping)
		return;
	if (aq->n_waiting > 0 || aq->conn == AUTHQUERY_CONN_CONNECTING ||
	    aq->conn == AUTHQUERY_CONN_BUSY)
		period = AUTHQUERY_TICK_BUSY;
	else if (authquery_cache_count(aq->cache) > 0)
		period = AUTHQUERY_TICK_IDLE;
	if (period == 0) {
		ev_timer_stop(aq->loop, &aq->tick);
		return;
	}
	if (ev_is_active(&aq->tick) && aq->tick.repeat == period)
		return;
	aq->tick.repeat = period;
	ev_timer_again(aq->loop, &aq->tick);
}

static void authquery_on_tick(struct ev_loop *loop, ev_timer *timer, int revents)
{
	(void)revents;
	struct authquery *aq = timer->data;
	ev_tstamp now = ev_now(loop);
	double timeout = authquery_timeout(aq);
	if ((aq->conn == AUTHQUERY_CONN_CONNECTING || aq->conn == AUTHQUERY_CONN_BUSY) &&
	    now - aq->step_started >= timeout) {
		char why[64];
		snprintf(why, sizeof(why), "timeout after %gs", timeout);
		/* Closing is the only cancel that does not block; no retry after a timeout. */
		authquery_conn_fail(aq, aq->conn == AUTHQUERY_CONN_CONNECTING ? "connect failed: "
									       : "query failed: ",
				    why, false);
	}
	struct list_head *first;
	while ((first = list_first(&aq->waiting)) != NULL) {
		struct authquery_wait *w = list_entry(first, struct authquery_wait, deadline);
		if (now < w->expires)
			break;
		struct authquery_pending *p = w->pending;
		aq->stats.timeouts++;
		authquery_wait_answer(aq, w, AUTHQUERY_FAILED, "timeout");
		authquery_pending_check(aq, p);
	}
	authquery_cache_expire(aq->cache, now);
	authquery_arm(aq);
}

/* Calls back every answered lookup, oldest first; callbacks may add more, answered later. */
static void authquery_deliver_all(struct authquery *aq)
{
	struct list_head batch;
	list_init(&batch);
	struct list_head *first;
	while ((first = list_first(&aq->ready)) != NULL) {
		list_del(first);
		list_add_tail(&batch, first);
	}
	while ((first = list_first(&batch)) != NULL) {
		struct authquery_wait *w = list_entry(first, struct authquery_wait, node);
		list_del(&w->node);
		w->state = AUTHQUERY_WAIT_DONE;
		const char *text = w->status == AUTHQUERY_FOUND    ? w->secret
				   : w->status == AUTHQUERY_FAILED ? w->reason
								   : NULL;
		w->cb(w->arg, w->status, text);
		authquery_wait_free(w);
	}
}

static void authquery_on_deliver(struct ev_loop *loop, ev_timer *timer, int revents)
{
	(void)loop;
	(void)revents;
	authquery_deliver_all(timer->data);
}

/* ----- API ----- */

void authquery_settings_init(struct authquery_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->cache_ttl = 60;
	s->negative_ttl = 5;
	s->timeout = AUTHQUERY_DEFAULT_TIMEOUT;
	s->max_waiting = 1000;
	s->cache_max = 10000;
}

/* Copies s (NULL: none) to *at and moves *at past it. */
static const char *authquery_pack(char **at, const char *s)
{
	if (s == NULL)
		return NULL;
	size_t n = strlen(s) + 1;
	char *copy = memcpy(*at, s, n);
	*at += n;
	return copy;
}

struct authquery *authquery_new(struct ev_loop *loop, const struct authquery_settings *s)
{
	struct authquery *aq = calloc(1, sizeof(*aq));
	if (aq == NULL)
		return NULL;
	aq->loop = loop;
	aq->s = *s;
	if (aq->s.query == NULL)
		aq->s.query = AUTHQUERY_DEFAULT_QUERY;
	const char *parts[] = {s->host, s->dbname, s->user, s->password, aq->s.query};
	size_t total = 1;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		total += parts[i] != NULL ? strlen(parts[i]) + 1 : 0;
	aq->block = malloc(total);
	aq->block_len = total;
	aq->tls_block = auxconn_tls_copy(&aq->s.tls, &s->tls);
	aq->cache = authquery_cache_new(s->cache_max);
	if (aq->block == NULL || aq->tls_block == NULL || aq->cache == NULL ||
	    !authquery_table_init(&aq->pending, s->max_waiting)) {
		authquery_cache_free(aq->cache);
		free(aq->tls_block);
		free(aq->block);
		free(aq);
		return NULL;
	}
	char *at = aq->block;
	aq->s.host = authquery_pack(&at, s->host);
	aq->s.dbname = authquery_pack(&at, s->dbname);
	aq->s.user = authquery_pack(&at, s->user);
	aq->s.password = authquery_pack(&at, s->password);
	aq->s.query = authquery_pack(&at, aq->s.query);
	list_init(&aq->queue);
	list_init(&aq->waiting);
	list_init(&aq->ready);
	ev_io_init(&aq->io, authquery_on_io, -1, EV_READ);
	aq->io.data = aq;
	ev_timer_init(&aq->tick, authquery_on_tick, AUTHQUERY_TICK_BUSY, AUTHQUERY_TICK_BUSY);
	aq->tick.data = aq;
	ev_timer_init(&aq->deliver, authquery_on_deliver, 0., 0.);
	aq->deliver.data = aq;
	return aq;
}

/* A new query for user, queued; NULL when memory ran out. */
static struct authquery_pending *authquery_pending_new(struct authquery *aq, const char *user)
{
	size_t len = strlen(user);
	struct authquery_pending *p = calloc(1, sizeof(*p) + len + 1);
	if (p == NULL)
		return NULL;
	memcpy(p->user, user, len + 1);
	p->h.key = p->user;
	list_init(&p->waiters);
	p->state = AUTHQUERY_PENDING_QUEUED;
	authquery_table_add(&aq->pending, &p->h);
	list_add_tail(&aq->queue, &p->node);
	return p;
}

struct authquery_wait *authquery_lookup(struct authquery *aq, const char *user,
					authquery_done_fn cb, void *arg)
{
	if (aq->stopping)
		return NULL;
	struct authquery_wait *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	aq->stats.lookups++;
	w->cb = cb;
	w->arg = arg;
	list_init(&w->node);
	list_init(&w->deadline);
	w->state = AUTHQUERY_WAIT_READY;
	ev_tstamp now = ev_now(aq->loop);
	const char *secret = NULL;
	enum authquery_status cached;
	struct authquery_hnode *n;
	struct authquery_pending *p = NULL;
	if (strlen(user) > AUTHQUERY_USER_MAX) {
		authquery_wait_answer(aq, w, AUTHQUERY_FAILED, "user name too long");
	} else if ((cached = authquery_cache_get(aq->cache, user, now, &secret)) !=
		   AUTHQUERY_FAILED) {
		aq->stats.cache_hits++;
		authquery_wait_answer(aq, w, cached, secret);
	} else if (aq->n_waiting >= aq->s.max_waiting) {
		aq->stats.queue_full++;
		authquery_wait_answer(aq, w, AUTHQUERY_FAILED, "queue full");
	} else if ((n = authquery_table_find(&aq->pending, user)) != NULL) {
		aq->stats.coalesced++;
		p = list_entry(n, struct authquery_pending, h);
	} else if ((p = authquery_pending_new(aq, user)) == NULL) {
		authquery_wait_answer(aq, w, AUTHQUERY_FAILED, "out of memory");
	}
	if (p != NULL) {
		w->state = AUTHQUERY_WAIT_PENDING;
		w->pending = p;
		w->expires = now + authquery_timeout(aq);
		list_add_tail(&p->waiters, &w->node);
		list_add_tail(&aq->waiting, &w->deadline);
		aq->n_waiting++;
		authquery_dispatch(aq);
	}
	authquery_arm(aq);
	return w;
}

void authquery_cancel(struct authquery *aq, struct authquery_wait *w)
{
	if (w == NULL || w->state == AUTHQUERY_WAIT_DONE)
		return;
	if (w->state == AUTHQUERY_WAIT_PENDING) {
		struct authquery_pending *p = w->pending;
		list_del(&w->node);
		list_del(&w->deadline);
		aq->n_waiting--;
		authquery_pending_check(aq, p);
	} else {
		list_del(&w->node);
	}
	authquery_wait_free(w);
	authquery_arm(aq);
}

void authquery_free(struct authquery *aq)
{
	if (aq == NULL)
		return;
	aq->stopping = true;
	ev_timer_stop(aq->loop, &aq->tick);
	ev_timer_stop(aq->loop, &aq->deliver);
	authquery_close(aq);
	if (aq->running != NULL)
		authquery_pending_end(aq, aq->running, AUTHQUERY_FAILED, "shutting down");
	authquery_fail_queue(aq, "shutting down");
	authquery_deliver_all(aq);
	authquery_cache_free(aq->cache);
	free(aq->pending.buckets);
	explicit_bzero(aq->block, aq->block_len);
	free(aq->block);
	free(aq->tls_block);
	free(aq);
}

void authquery_forget(struct authquery *aq, const char *user)
{
	authquery_cache_drop(aq->cache, user);
	authquery_arm(aq);
}

void authquery_get_stats(const struct authquery *aq, struct authquery_stats *out)
{
	*out = aq->stats;
	out->cached = authquery_cache_count(aq->cache);
	out->waiting = aq->n_waiting;
}
