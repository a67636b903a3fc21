/*
 * explain.c - plan capture on the event loop (see explain.h).
 *
 * A capture (struct explain_job) waits on the queue until a connection
 * (struct explain_conn) for its login is free, then walks a short list of
 * steps on it: BEGIN READ ONLY and SET LOCAL statement_timeout for ANALYZE,
 * the prepare when there are parameters, the EXPLAIN, then ROLLBACK and
 * DEALLOCATE. Each step is one query sent and read to its end without
 * blocking. One timer gives up on late captures and closes connections idle
 * for a minute. querylog.c decides what to explain and writes the record.
 */
#include "explain.h"

#include <ctype.h>
#include <ev.h>
#include <libpq-fe.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "list.h"
#include "log.h"

/* Fingerprints whose last capture time is kept: 4096. */
#define EXPLAIN_RATE_BITS 12
#define EXPLAIN_RATE_SLOTS (1u << EXPLAIN_RATE_BITS)
/* Slots looked at for one fingerprint before the oldest of them is overwritten. */
#define EXPLAIN_RATE_PROBE 8
#define EXPLAIN_IDLE_SECONDS 60.0
/* timeout <= 0 would let a hung capture hold its connection forever. */
#define EXPLAIN_DEFAULT_TIMEOUT 5.0
/* Timer period while captures are pending (the timeouts' precision), and while only
 * idle connections are left. */
#define EXPLAIN_TICK_BUSY 0.1
#define EXPLAIN_TICK_IDLE 1.0
#define EXPLAIN_REASON_MAX 256
/* Longest command text built here (EXPLAIN with the statement or its literals). */
#define EXPLAIN_TEXT_MAX (16u << 20)
#define EXPLAIN_STATEMENT "pgsluice_explain"
#define EXPLAIN_OPTIONS "FORMAT JSON, VERBOSE, SETTINGS"

enum explain_conn_state {
	EXPLAIN_CONN_CONNECTING, /* on active_conns: PQconnectPoll for its job */
	EXPLAIN_CONN_BUSY,       /* on active_conns: running its job's steps */
	EXPLAIN_CONN_IDLE,       /* on idle_conns, most recently used first */
};

enum explain_job_state {
	EXPLAIN_JOB_QUEUED,  /* on queue, oldest first */
	EXPLAIN_JOB_RUNNING, /* on running, with a connection (connecting or busy) */
	EXPLAIN_JOB_OFF,     /* on no list of the explainer: being made, or its done is due */
};

/* In the order they run; a step a capture does not need is passed over. */
enum explain_step {
	EXPLAIN_STEP_NONE,
	EXPLAIN_STEP_BEGIN,
	EXPLAIN_STEP_TIMEOUT,
	EXPLAIN_STEP_PREPARE,
	EXPLAIN_STEP_EXPLAIN,
	EXPLAIN_STEP_ROLLBACK,
	EXPLAIN_STEP_DEALLOCATE,
	EXPLAIN_STEP_END,
};

/* A login, owned: every string lives in block (which holds the password: wiped on free). */
struct explain_key {
	char *block;
	size_t block_len;
	const char *host, *dbname, *user, *password, *search_path; /* NULL: libpq's default */
	int port;
};

struct explain_conn {
	struct list_head node;
	enum explain_conn_state state;
	struct explainer *ex;
	PGconn *pg;
	ev_io io;
	struct explain_key key;
	struct explain_job *job; /* CONNECTING and BUSY */
	bool fresh;              /* opened for the job it runs */
	ev_tstamp idle_since;
};

struct explain_job {
	struct list_head node;
	enum explain_job_state state;
	struct explainer *ex;
	struct explain_conn *conn; /* RUNNING */
	struct explain_key key;
	char *sql;
	int n_params;
	char **values; /* n_params pointers, then the strings they point to; one allocation */
	Oid *types;    /* n_params, or NULL */
	bool analyze;
	explain_done_fn done;
	void *arg;
	ev_tstamp deadline;
	enum explain_step step; /* the step whose query is in flight, or the last one */
	bool failed;            /* a step failed: only the cleanup steps remain */
	bool prepared;          /* pgsluice_explain exists on the connection */
	bool progressed;        /* a step succeeded: a lost connection is not retried */
	char *plan;
	char reason[EXPLAIN_REASON_MAX]; /* the first failure, for done */
};

struct explain_rate {
	uint64_t fingerprint;
	ev_tstamp at; /* of its last accepted capture */
	bool used;
};

struct explainer {
	struct ev_loop *loop;
	struct explain_settings settings; /* settings.tls's strings point into tls_block */
	char *tls_block;
	ev_timer timer;
	struct list_head queue;
	size_t n_queued;
	struct list_head running;
	struct list_head active_conns;
	struct list_head idle_conns;
	int n_conns;
	bool stopping;
	struct explainer_counters counters;
	struct explain_rate rates[EXPLAIN_RATE_SLOTS];
};

/* ----- settings and small helpers ----- */

static double explainer_timeout(const struct explainer *ex)
{
	return ex->settings.timeout > 0 ? ex->settings.timeout : EXPLAIN_DEFAULT_TIMEOUT;
}

static int explainer_max_connections(const struct explainer *ex)
{
	return ex->settings.max_connections > 0 ? ex->settings.max_connections : 1;
}

/* A capture can start now: a connection is idle (of its login or to be replaced) or may open. */
static bool explainer_has_capacity(const struct explainer *ex)
{
	return !list_empty(&ex->idle_conns) || ex->n_conns < explainer_max_connections(ex);
}

/* Rounds a number of seconds or milliseconds up to a whole one a setting takes (1..INT_MAX). */
static double explain_whole(double v)
{
	v = ceil(v);
	return v < 1 ? 1 : v > INT_MAX ? INT_MAX : v;
}

static bool explain_str_equal(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* libpq's and the server's messages may span lines and end in one: one line, bounded. */
static void explain_format_reason(char *out, size_t cap, const char *prefix, const char *message)
{
	size_t len = 0;
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

static void explain_ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* ----- logins ----- */

/* Copies s (NULL: none) to *at and moves *at past it. */
static char *explain_pack(char **at, const char *s)
{
	if (s == NULL)
		return NULL;
	size_t n = strlen(s) + 1;
	char *copy = memcpy(*at, s, n);
	*at += n;
	return copy;
}

static void explain_key_free(struct explain_key *k)
{
	if (k->block != NULL)
		explicit_bzero(k->block, k->block_len);
	free(k->block);
	memset(k, 0, sizeof(*k));
}

/* Copies a login into k; false when memory ran out. */
static bool explain_key_set(struct explain_key *k, const struct explain_login *l)
{
	const char *parts[] = {l->host, l->dbname, l->user, l->password, l->search_path};
	size_t total = 1;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		total += parts[i] != NULL ? strlen(parts[i]) + 1 : 0;
	memset(k, 0, sizeof(*k));
	if ((k->block = malloc(total)) == NULL)
		return false;
	k->block_len = total;
	char *at = k->block;
	k->host = explain_pack(&at, l->host);
	k->dbname = explain_pack(&at, l->dbname);
	k->user = explain_pack(&at, l->user);
	k->password = explain_pack(&at, l->password);
	k->search_path = explain_pack(&at, l->search_path);
	k->port = l->port;
	return true;
}

static struct explain_login explain_key_login(const struct explain_key *k)
{
	struct explain_login l = {k->host, k->port, k->dbname, k->user, k->password,
				  k->search_path};
	return l;
}

/* The password is left out: a connection that logged in stays good for its user. */
static bool explain_key_equal(const struct explain_key *a, const struct explain_key *b)
{
	return a->port == b->port && explain_str_equal(a->host, b->host) &&
	       explain_str_equal(a->dbname, b->dbname) && explain_str_equal(a->user, b->user) &&
	       explain_str_equal(a->search_path, b->search_path);
}

/* ----- the rate limit ----- */

/* The slot of fingerprint if it is kept, else the one it would take (free or oldest). */
static struct explain_rate *explain_rate_slot(struct explainer *ex, uint64_t fingerprint)
{
	/* Fibonacci hashing: the top bits of the product mix every bit of the key. */
	size_t start = (size_t)((fingerprint * 0x9E3779B97F4A7C15ull) >> (64 - EXPLAIN_RATE_BITS));
	struct explain_rate *pick = NULL;
	for (size_t i = 0; i < EXPLAIN_RATE_PROBE; i++) {
		struct explain_rate *r = &ex->rates[(start + i) & (EXPLAIN_RATE_SLOTS - 1)];
		if (r->used && r->fingerprint == fingerprint)
			return r;
		if (pick == NULL || (pick->used && (!r->used || r->at < pick->at)))
			pick = r;
	}
	return pick;
}

/* ----- state transitions ----- */

static void explain_job_set_state(struct explain_job *job, enum explain_job_state state)
{
	struct explainer *ex = job->ex;
	if (job->state == EXPLAIN_JOB_QUEUED)
		ex->n_queued--;
	if (list_linked(&job->node))
		list_del(&job->node);
	job->state = state;
	switch (state) {
	case EXPLAIN_JOB_QUEUED:
		list_add_tail(&ex->queue, &job->node);
		ex->n_queued++;
		break;
	case EXPLAIN_JOB_RUNNING:
		list_add_tail(&ex->running, &job->node);
		break;
	case EXPLAIN_JOB_OFF:
		break;
	}
}

static void explain_conn_set_state(struct explain_conn *conn, enum explain_conn_state state)
{
	struct explainer *ex = conn->ex;
	if (list_linked(&conn->node))
		list_del(&conn->node);
	conn->state = state;
	if (state == EXPLAIN_CONN_IDLE) {
		conn->idle_since = ev_now(ex->loop);
		list_add_head(&ex->idle_conns, &conn->node);
	} else {
		list_add_tail(&ex->active_conns, &conn->node);
	}
}

/* Closes and frees conn; its job, if any, is left without a connection. */
static void explain_conn_close(struct explain_conn *conn)
{
	struct explainer *ex = conn->ex;
	if (ev_is_active(&conn->io))
		ev_io_stop(ex->loop, &conn->io);
	if (conn->pg != NULL)
		PQfinish(conn->pg);
	if (conn->job != NULL)
		conn->job->conn = NULL;
	list_del(&conn->node);
	ex->n_conns--;
	explain_key_free(&conn->key);
	free(conn);
}

static void explain_job_free(struct explain_job *job)
{
	explain_key_free(&job->key);
	free(job->sql);
	free(job->values);
	free(job->types);
	free(job->plan);
	free(job);
}

/*
 * Takes job off the explainer (it has no connection any more), tells its
 * owner and frees it. plan goes to done; counter counts the outcome. The
 * job may sit on a caller's private list: that node is unlinked too.
 */
static void explain_job_end(struct explain_job *job, char *plan, const char *why,
			    uint64_t *counter)
{
	explain_job_set_state(job, EXPLAIN_JOB_OFF);
	(*counter)++;
	job->done(job->arg, plan, plan != NULL ? NULL : why);
	explain_job_free(job);
}

/* ----- connections ----- */

/* Watches conn's socket for events, following libpq when it changes sockets. */
static bool explain_conn_watch(struct explain_conn *conn, int events)
{
	int fd = PQsocket(conn->pg);
	if (fd < 0)
		return false;
	if (ev_is_active(&conn->io))
		ev_io_stop(conn->ex->loop, &conn->io);
	ev_io_set(&conn->io, fd, events);
	ev_io_start(conn->ex->loop, &conn->io);
	return true;
}

static void explainer_dispatch(struct explainer *ex);

/*
 * A kept connection that broke before the server answered a step of its
 * job (restart, idle_session_timeout, pg_terminate_backend) says nothing
 * about the capture: the connection is closed and the job goes back to the
 * head of the queue for another one. At most its first step (BEGIN, the
 * prepare, or an EXPLAIN without ANALYZE) may have run, none of which has
 * an effect. Returns false when the job must end instead.
 */
static bool explain_conn_retry(struct explain_conn *conn)
{
	struct explainer *ex = conn->ex;
	struct explain_job *job = conn->job;
	if (conn->fresh || job->progressed || ex->stopping)
		return false;
	log_debug("plan capture: kept connection to %s:%d lost, retrying on another",
		  conn->key.host ? conn->key.host : "", conn->key.port);
	explain_conn_close(conn);
	job->step = EXPLAIN_STEP_NONE;
	job->failed = false;
	job->prepared = false;
	job->reason[0] = '\0';
	explain_job_set_state(job, EXPLAIN_JOB_QUEUED);
	list_del(&job->node);
	list_add_head(&ex->queue, &job->node);
	explainer_dispatch(ex);
	return true;
}

/* conn's job cannot go on: the connection is closed and the job ends with prefix + message. */
static void explain_conn_fail(struct explain_conn *conn, const char *prefix, const char *message)
{
	struct explainer *ex = conn->ex;
	struct explain_job *job = conn->job;
	if (explain_conn_retry(conn))
		return;
	explain_format_reason(job->reason, sizeof(job->reason), prefix, message);
	log_debug("plan capture on %s:%d (%s) failed: %s", conn->key.host ? conn->key.host : "",
		  conn->key.port, conn->key.dbname ? conn->key.dbname : "", job->reason);
	explain_conn_close(conn);
	explain_job_end(job, NULL, job->reason, &ex->counters.failed);
	explainer_dispatch(ex);
}

static void explain_conn_fail_libpq(struct explain_conn *conn, const char *prefix)
{
	explain_conn_fail(conn, prefix, PQerrorMessage(conn->pg));
}

/* Sends step's query; returns 1 when in flight, 0 when the step was given up without
 * the connection (job->failed), -1 when the connection failed (job ended). */
static int explain_send_step(struct explain_conn *conn);

/* Runs the next step conn's job needs, or ends the job when none is left. */
static void explain_advance(struct explain_conn *conn);

/* Job and connection meet: the connection is up, the steps start. */
static void explain_conn_begin_job(struct explain_conn *conn)
{
	explain_conn_set_state(conn, EXPLAIN_CONN_BUSY);
	conn->job->step = EXPLAIN_STEP_NONE;
	explain_advance(conn);
}

static void explain_connect_poll(struct explain_conn *conn)
{
	switch (PQconnectPoll(conn->pg)) {
	case PGRES_POLLING_READING:
		if (!explain_conn_watch(conn, EV_READ))
			explain_conn_fail(conn, "connect failed: ", "no socket");
		return;
	case PGRES_POLLING_WRITING:
		if (!explain_conn_watch(conn, EV_WRITE))
			explain_conn_fail(conn, "connect failed: ", "no socket");
		return;
	case PGRES_POLLING_OK:
		/* From here on a full socket buffer must never block the loop. */
		if (PQsetnonblocking(conn->pg, 1) != 0) {
			explain_conn_fail_libpq(conn, "connect failed: ");
			return;
		}
		explain_conn_begin_job(conn);
		return;
	default:
		explain_conn_fail_libpq(conn, "connect failed: ");
		return;
	}
}

/* The server reads options like a shell would split words: escape blanks and backslashes. */
static bool explain_put_option_value(struct obuf *ob, const char *value)
{
	for (const char *c = value; *c != '\0'; c++) {
		if ((isspace((unsigned char)*c) || *c == '\\') && !obuf_put_u8(ob, '\\'))
			return false;
		if (!obuf_put_u8(ob, (uint8_t)*c))
			return false;
	}
	return obuf_put_u8(ob, 0);
}

static void explain_on_io(struct ev_loop *loop, ev_io *io, int revents);

/* Starts libpq's connect of conn, with the parameters of its login. */
static void explain_conn_start(struct explain_conn *conn)
{
	const struct explain_key *k = &conn->key;
	/* The server bounds every capture too, a plain EXPLAIN's planning included. */
	struct obuf options;
	obuf_init(&options, EXPLAIN_TEXT_MAX);
	char bound[64];
	int bound_len = snprintf(bound, sizeof(bound), "-c statement_timeout=%.0f",
				 explainer_timeout(conn->ex) * 1000.0);
	obuf_put(&options, bound, (size_t)bound_len);
	if (k->search_path != NULL) {
		obuf_put(&options, " -c search_path=", strlen(" -c search_path="));
		if (!explain_put_option_value(&options, k->search_path)) {
			obuf_free(&options);
			explain_conn_fail(conn, "connect failed: ", "search_path too long");
			return;
		}
	} else {
		obuf_put_u8(&options, '\0');
	}
	struct auxconn_spec spec = {
		.host = k->host,
		.port = k->port,
		.dbname = k->dbname,
		.user = k->user,
		.password = k->password,
		.application_name = "pgsluice-explain",
		/* libpq only enforces it in blocking connects; the timer is what bounds this one. */
		.connect_timeout = explainer_timeout(conn->ex),
		.options = (const char *)options.data,
		.tls = conn->ex->settings.tls,
	};
	conn->pg = auxconn_start(&spec);
	obuf_free(&options);
	if (conn->pg == NULL) {
		explain_conn_fail(conn, "connect failed: ", "out of memory");
		return;
	}
	/* The default processor writes to stderr, outside the log. */
	PQsetNoticeProcessor(conn->pg, explain_ignore_notice, NULL);
	if (PQstatus(conn->pg) == CONNECTION_BAD) {
		explain_conn_fail_libpq(conn, "connect failed: ");
		return;
	}
	/* libpq's contract: poll as if PGRES_POLLING_WRITING came first. */
	if (!explain_conn_watch(conn, EV_WRITE))
		explain_conn_fail(conn, "connect failed: ", "no socket");
}

/* Opens a connection for job, which becomes RUNNING on it. */
static void explain_conn_open(struct explainer *ex, struct explain_job *job)
{
	struct explain_conn *conn = calloc(1, sizeof(*conn));
	struct explain_login login = explain_key_login(&job->key);
	if (conn == NULL || !explain_key_set(&conn->key, &login)) {
		free(conn);
		explain_job_end(job, NULL, "out of memory", &ex->counters.failed);
		return;
	}
	conn->ex = ex;
	conn->fresh = true;
	list_init(&conn->node);
	ev_io_init(&conn->io, explain_on_io, -1, EV_READ);
	conn->io.data = conn;
	conn->job = job;
	job->conn = conn;
	ex->n_conns++;
	explain_job_set_state(job, EXPLAIN_JOB_RUNNING);
	explain_conn_set_state(conn, EXPLAIN_CONN_CONNECTING);
	explain_conn_start(conn);
}

/* ----- the steps of a capture ----- */

/* Records the first failure of job; the steps that undo what ran still follow. */
static void explain_job_fail(struct explain_job *job, const char *prefix, const char *message)
{
	if (job->failed)
		return;
	job->failed = true;
	explain_format_reason(job->reason, sizeof(job->reason), prefix, message);
}

static bool explain_step_wanted(const struct explain_job *job, enum explain_step step)
{
	switch (step) {
	case EXPLAIN_STEP_BEGIN:
	case EXPLAIN_STEP_TIMEOUT:
		return job->analyze && !job->failed;
	case EXPLAIN_STEP_PREPARE:
		return job->n_params > 0 && !job->failed;
	case EXPLAIN_STEP_EXPLAIN:
		return !job->failed;
	case EXPLAIN_STEP_ROLLBACK:
		/* Also after a failed BEGIN: outside a transaction it only warns. */
		return job->analyze;
	case EXPLAIN_STEP_DEALLOCATE:
		return job->prepared;
	case EXPLAIN_STEP_NONE:
	case EXPLAIN_STEP_END:
		break;
	}
	return true;
}

/* The EXPLAIN command of job into ob, NUL-terminated; false (job failed) when it cannot be. */
static bool explain_build_command(struct explain_job *job, PGconn *pg, struct obuf *ob)
{
	static const char head[] = "EXPLAIN (" EXPLAIN_OPTIONS;
	static const char analyze[] = ", ANALYZE, BUFFERS";
	static const char execute[] = "EXECUTE " EXPLAIN_STATEMENT "(";
	obuf_put(ob, head, strlen(head));
	if (job->analyze)
		obuf_put(ob, analyze, strlen(analyze));
	obuf_put(ob, ") ", 2);
	if (job->n_params == 0) {
		obuf_put(ob, job->sql, strlen(job->sql));
	} else {
		obuf_put(ob, execute, strlen(execute));
		for (int i = 0; i < job->n_params; i++) {
			const char *v = job->values[i];
			if (i > 0)
				obuf_put(ob, ", ", 2);
			if (v == NULL) {
				obuf_put(ob, "NULL", 4);
				continue;
			}
			char *literal = PQescapeLiteral(pg, v, strlen(v));
			if (literal == NULL) {
				explain_job_fail(job, "explain failed: ", PQerrorMessage(pg));
				return false;
			}
			obuf_put(ob, literal, strlen(literal));
			PQfreemem(literal);
		}
		obuf_put(ob, ")", 1);
	}
	if (!obuf_put_u8(ob, 0)) {
		explain_job_fail(job, "explain failed: ", "statement too large");
		return false;
	}
	return true;
}

/* One query through the extended protocol, which refuses a second statement in it. */
static int explain_send_text(PGconn *pg, const char *text)
{
	return PQsendQueryParams(pg, text, 0, NULL, NULL, NULL, NULL, 0);
}

static int explain_send_step(struct explain_conn *conn)
{
	struct explain_job *job = conn->job;
	const struct explain_settings *s = &conn->ex->settings;
	PGconn *pg = conn->pg;
	int sent = 0;
	switch (job->step) {
	case EXPLAIN_STEP_BEGIN:
		sent = explain_send_text(pg, "BEGIN READ ONLY");
		break;
	case EXPLAIN_STEP_TIMEOUT: {
		double seconds = s->analyze_statement_timeout > 0 ? s->analyze_statement_timeout
								  : explainer_timeout(conn->ex);
		char text[64];
		snprintf(text, sizeof(text), "SET LOCAL statement_timeout = %.0f",
			 explain_whole(seconds * 1000));
		sent = explain_send_text(pg, text);
		break;
	}
	case EXPLAIN_STEP_PREPARE:
		sent = PQsendPrepare(pg, EXPLAIN_STATEMENT, job->sql, job->n_params, job->types);
		break;
	case EXPLAIN_STEP_EXPLAIN: {
		struct obuf ob;
		obuf_init(&ob, EXPLAIN_TEXT_MAX);
		if (!explain_build_command(job, pg, &ob)) {
			obuf_free(&ob);
			return 0;
		}
		sent = explain_send_text(pg, (const char *)ob.data);
		obuf_free(&ob);
		break;
	}
	case EXPLAIN_STEP_ROLLBACK:
		sent = explain_send_text(pg, "ROLLBACK");
		break;
	case EXPLAIN_STEP_DEALLOCATE:
		sent = explain_send_text(pg, "DEALLOCATE " EXPLAIN_STATEMENT);
		break;
	case EXPLAIN_STEP_NONE:
	case EXPLAIN_STEP_END:
		break;
	}
	if (!sent) {
		explain_conn_fail_libpq(conn, "explain failed: ");
		return -1;
	}
	int flushed = PQflush(pg);
	if (flushed < 0) {
		explain_conn_fail_libpq(conn, "explain failed: ");
		return -1;
	}
	if (!explain_conn_watch(conn, flushed == 1 ? EV_READ | EV_WRITE : EV_READ)) {
		explain_conn_fail(conn, "explain failed: ", "no socket");
		return -1;
	}
	return 1;
}

/* conn's job has run its last step: the connection is kept if clean, the owner told. */
static void explain_job_finish(struct explain_conn *conn)
{
	struct explainer *ex = conn->ex;
	struct explain_job *job = conn->job;
	if (job->plan == NULL && PQstatus(conn->pg) != CONNECTION_OK && explain_conn_retry(conn))
		return;
	/* Kept only back outside any transaction and without our prepared statement. */
	bool clean = PQstatus(conn->pg) == CONNECTION_OK &&
		     PQtransactionStatus(conn->pg) == PQTRANS_IDLE && !job->prepared;
	conn->job = NULL;
	job->conn = NULL;
	if (clean && !ex->stopping && ex->n_conns <= explainer_max_connections(ex) &&
	    explain_conn_watch(conn, EV_READ))
		explain_conn_set_state(conn, EXPLAIN_CONN_IDLE);
	else
		explain_conn_close(conn);
	char *plan = job->plan;
	job->plan = NULL;
	if (plan != NULL)
		explain_job_end(job, plan, NULL, &ex->counters.run);
	else
		explain_job_end(job, NULL, job->reason[0] != '\0' ? job->reason : "explain failed",
				&ex->counters.failed);
	explainer_dispatch(ex);
}

static void explain_advance(struct explain_conn *conn)
{
	struct explain_job *job = conn->job;
	for (;;) {
		do
			job->step = (enum explain_step)(job->step + 1);
		while (job->step != EXPLAIN_STEP_END && !explain_step_wanted(job, job->step));
		if (job->step == EXPLAIN_STEP_END) {
			explain_job_finish(conn);
			return;
		}
		if (explain_send_step(conn) != 0)
			return;
	}
}

static void explain_take_plan(struct explain_job *job, const PGresult *r)
{
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) != 1 ||
	    PQgetisnull(r, 0, 0) || job->plan != NULL) {
		explain_job_fail(job, "explain failed: ", "unexpected answer");
		return;
	}
	size_t len = (size_t)PQgetlength(r, 0, 0);
	if ((job->plan = malloc(len + 1)) == NULL) {
		explain_job_fail(job, "", "out of memory");
		return;
	}
	memcpy(job->plan, PQgetvalue(r, 0, 0), len);
	job->plan[len] = '\0';
}

static void explain_take_result(struct explain_job *job, const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *message = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
		if (message == NULL && st == PGRES_FATAL_ERROR)
			message = PQresultErrorMessage(r);
		if (message == NULL)
			message = PQresStatus(st);
		explain_job_fail(job, "explain failed: ", message);
		return;
	}
	job->progressed = true;
	if (job->step == EXPLAIN_STEP_PREPARE)
		job->prepared = true;
	else if (job->step == EXPLAIN_STEP_DEALLOCATE)
		job->prepared = false;
	else if (job->step == EXPLAIN_STEP_EXPLAIN)
		explain_take_plan(job, r);
}

static void explain_on_busy_io(struct explain_conn *conn, int revents)
{
	PGconn *pg = conn->pg;
	if (revents & EV_WRITE) {
		int flushed = PQflush(pg);
		if (flushed < 0) {
			explain_conn_fail_libpq(conn, "explain failed: ");
			return;
		}
		if (flushed == 0 && !explain_conn_watch(conn, EV_READ)) {
			explain_conn_fail(conn, "explain failed: ", "no socket");
			return;
		}
	}
	if (!(revents & EV_READ))
		return;
	if (!PQconsumeInput(pg)) {
		explain_conn_fail_libpq(conn, "explain failed: ");
		return;
	}
	while (!PQisBusy(pg)) {
		PGresult *r = PQgetResult(pg);
		if (r == NULL) {
			explain_advance(conn);
			return;
		}
		explain_take_result(conn->job, r);
		PQclear(r);
	}
}

static void explain_on_io(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	struct explain_conn *conn = io->data;
	switch (conn->state) {
	case EXPLAIN_CONN_CONNECTING:
		explain_connect_poll(conn);
		return;
	case EXPLAIN_CONN_BUSY:
		explain_on_busy_io(conn, revents);
		return;
	case EXPLAIN_CONN_IDLE:
		/* Between captures the server only speaks to say goodbye (shutdown,
		 * idle_session_timeout, pg_terminate_backend). */
		if (!PQconsumeInput(conn->pg) || PQstatus(conn->pg) != CONNECTION_OK)
			explain_conn_close(conn);
		return;
	}
}

/* ----- queue and timer ----- */

static struct explain_conn *explain_find_idle(struct explainer *ex, const struct explain_key *key)
{
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &ex->idle_conns)
	{
		struct explain_conn *conn = list_entry(pos, struct explain_conn, node);
		if (explain_key_equal(&conn->key, key))
			return conn;
	}
	return NULL;
}

/* Starts queued captures, oldest first, while the connections allow. */
static void explainer_dispatch(struct explainer *ex)
{
	struct list_head *first;
	while (!ex->stopping && (first = list_first(&ex->queue)) != NULL) {
		struct explain_job *job = list_entry(first, struct explain_job, node);
		struct explain_conn *conn = explain_find_idle(ex, &job->key);
		if (conn != NULL) {
			conn->job = job;
			conn->fresh = false;
			job->conn = conn;
			explain_job_set_state(job, EXPLAIN_JOB_RUNNING);
			explain_conn_begin_job(conn);
			continue;
		}
		/* Idle connections of other logins make room, least recently used first. */
		struct list_head *oldest;
		while (ex->n_conns >= explainer_max_connections(ex) &&
		       (oldest = list_last(&ex->idle_conns)) != NULL)
			explain_conn_close(list_entry(oldest, struct explain_conn, node));
		if (ex->n_conns >= explainer_max_connections(ex))
			return;
		explain_conn_open(ex, job);
	}
}

/* The timer ticks often while captures are pending, slowly for idle connections alone. */
static void explainer_arm(struct explainer *ex)
{
	double period = 0;
	if (!list_empty(&ex->queue) || !list_empty(&ex->running))
		period = EXPLAIN_TICK_BUSY;
	else if (ex->n_conns > 0)
		period = EXPLAIN_TICK_IDLE;
	if (period == 0) {
		ev_timer_stop(ex->loop, &ex->timer);
		return;
	}
	if (ev_is_active(&ex->timer) && ex->timer.repeat == period)
		return;
	ex->timer.repeat = period;
	ev_timer_again(ex->loop, &ex->timer);
}

/* Takes job off the explainer onto into (closing its connection) for its done to follow. */
static void explain_job_detach(struct explain_job *job, struct list_head *into)
{
	if (job->conn != NULL)
		explain_conn_close(job->conn);
	explain_job_set_state(job, EXPLAIN_JOB_OFF);
	list_add_tail(into, &job->node);
}

/* Calls done for every job of a private list; done may submit more meanwhile. */
static void explain_end_all(struct list_head *jobs, const char *why, uint64_t *counter)
{
	struct list_head *first;
	while ((first = list_first(jobs)) != NULL)
		explain_job_end(list_entry(first, struct explain_job, node), NULL, why, counter);
}

static void explain_on_tick(struct ev_loop *loop, ev_timer *timer, int revents)
{
	(void)revents;
	struct explainer *ex = timer->data;
	ev_tstamp now = ev_now(loop);
	struct list_head late;
	list_init(&late);
	struct list_head *lists[] = {&ex->queue, &ex->running};
	for (size_t i = 0; i < 2; i++) {
		struct list_head *pos, *tmp;
		list_for_each_safe(pos, tmp, lists[i])
		{
			struct explain_job *job = list_entry(pos, struct explain_job, node);
			/* Closing a running one's connection is the only cancel that does not
			 * block; an ANALYZE also stops at its statement_timeout. */
			if (now >= job->deadline)
				explain_job_detach(job, &late);
		}
	}
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &ex->idle_conns)
	{
		struct explain_conn *conn = list_entry(pos, struct explain_conn, node);
		if (now - conn->idle_since >= EXPLAIN_IDLE_SECONDS)
			explain_conn_close(conn);
	}
	explain_end_all(&late, "timeout", &ex->counters.timed_out);
	explainer_dispatch(ex);
	explainer_arm(ex);
}

/* ----- API ----- */

/* Makes s ex's settings, with copies of its strings; false when memory ran out. */
static bool explainer_keep_settings(struct explainer *ex, const struct explain_settings *s)
{
	struct explain_settings kept = *s;
	char *tls_block = auxconn_tls_copy(&kept.tls, &s->tls);
	if (tls_block == NULL)
		return false;
	free(ex->tls_block);
	ex->tls_block = tls_block;
	ex->settings = kept;
	return true;
}

struct explainer *explainer_create(struct ev_loop *loop, const struct explain_settings *s)
{
	struct explainer *ex = calloc(1, sizeof(*ex));
	if (ex == NULL)
		return NULL;
	if (!explainer_keep_settings(ex, s)) {
		free(ex);
		return NULL;
	}
	ex->loop = loop;
	list_init(&ex->queue);
	list_init(&ex->running);
	list_init(&ex->active_conns);
	list_init(&ex->idle_conns);
	ev_timer_init(&ex->timer, explain_on_tick, EXPLAIN_TICK_BUSY, EXPLAIN_TICK_BUSY);
	ex->timer.data = ex;
	return ex;
}

bool explainer_configure(struct explainer *ex, const struct explain_settings *s)
{
	if (!explainer_keep_settings(ex, s))
		return false;
	struct list_head *oldest;
	while (ex->n_conns > explainer_max_connections(ex) &&
	       (oldest = list_last(&ex->idle_conns)) != NULL)
		explain_conn_close(list_entry(oldest, struct explain_conn, node));
	explainer_dispatch(ex);
	explainer_arm(ex);
	return true;
}

/* A copy of req that outlives the caller's buffers, or NULL when memory ran out. */
static struct explain_job *explain_job_new(struct explainer *ex, const struct explain_request *req)
{
	struct explain_job *job = calloc(1, sizeof(*job));
	if (job == NULL)
		return NULL;
	job->ex = ex;
	job->state = EXPLAIN_JOB_OFF;
	list_init(&job->node);
	job->analyze = req->analyze;
	job->done = req->done;
	job->arg = req->arg;
	job->n_params = req->n_params > 0 ? req->n_params : 0;
	bool ok = explain_key_set(&job->key, &req->login);
	if ((job->sql = malloc(req->sql_len + 1)) != NULL) {
		memcpy(job->sql, req->sql, req->sql_len);
		job->sql[req->sql_len] = '\0';
	}
	ok = ok && job->sql != NULL;
	if (ok && job->n_params > 0) {
		size_t n = (size_t)job->n_params;
		const char *const *in = req->param_values;
		size_t total = n * sizeof(char *);
		for (size_t i = 0; in != NULL && i < n; i++)
			total += in[i] != NULL ? strlen(in[i]) + 1 : 0;
		if ((job->values = malloc(total)) != NULL) {
			char *at = (char *)(job->values + n);
			for (size_t i = 0; i < n; i++)
				job->values[i] = in != NULL ? explain_pack(&at, in[i]) : NULL;
		}
		if (req->param_types != NULL && (job->types = malloc(n * sizeof(Oid))) != NULL) {
			for (size_t i = 0; i < n; i++)
				job->types[i] = (Oid)req->param_types[i];
		}
		ok = job->values != NULL && (req->param_types == NULL || job->types != NULL);
	}
	if (!ok) {
		explain_job_free(job);
		return NULL;
	}
	return job;
}

void explain_submit(struct explainer *ex, const struct explain_request *req)
{
	ex->counters.submitted++;
	if (ex->stopping) {
		ex->counters.failed++;
		req->done(req->arg, NULL, "pgsluice is stopping");
		return;
	}
	ev_tstamp now = ev_now(ex->loop);
	struct explain_rate *rate = explain_rate_slot(ex, req->fingerprint);
	if (ex->settings.interval > 0 && rate->used && rate->fingerprint == req->fingerprint &&
	    now - rate->at < ex->settings.interval) {
		ex->counters.rate_limited++;
		req->done(req->arg, NULL, "rate limited");
		return;
	}
	/* An empty queue means the connections are what limits: with room, no wait. */
	if (ex->n_queued >= ex->settings.queue_max &&
	    !(ex->n_queued == 0 && explainer_has_capacity(ex))) {
		ex->counters.queue_full++;
		req->done(req->arg, NULL, "queue full");
		return;
	}
	if (req->sql == NULL || memchr(req->sql, '\0', req->sql_len) != NULL) {
		ex->counters.failed++;
		req->done(req->arg, NULL, "explain failed: statement text holds a NUL byte");
		return;
	}
	struct explain_job *job = explain_job_new(ex, req);
	if (job == NULL) {
		ex->counters.failed++;
		req->done(req->arg, NULL, "out of memory");
		return;
	}
	rate->used = true;
	rate->fingerprint = req->fingerprint;
	rate->at = now;
	job->deadline = now + explainer_timeout(ex);
	explain_job_set_state(job, EXPLAIN_JOB_QUEUED);
	explainer_dispatch(ex);
	explainer_arm(ex);
}

void explainer_free(struct explainer *ex)
{
	if (ex == NULL)
		return;
	ex->stopping = true;
	ev_timer_stop(ex->loop, &ex->timer);
	struct list_head ending;
	list_init(&ending);
	struct list_head *first;
	while ((first = list_first(&ex->running)) != NULL)
		explain_job_detach(list_entry(first, struct explain_job, node), &ending);
	while ((first = list_first(&ex->queue)) != NULL)
		explain_job_detach(list_entry(first, struct explain_job, node), &ending);
	while ((first = list_first(&ex->idle_conns)) != NULL)
		explain_conn_close(list_entry(first, struct explain_conn, node));
	explain_end_all(&ending, "pgsluice is stopping", &ex->counters.failed);
	free(ex->tls_block);
	free(ex);
}

void explainer_stats(const struct explainer *ex, struct explainer_counters *out)
{
	*out = ex->counters;
	out->connections = (uint64_t)ex->n_conns;
}
