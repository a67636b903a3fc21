/*
 * health.c - probes of the primary and the replicas (health.h).
 *
 * One timer per worker walks every target of every database; each target
 * owns a struct health_probe with one libpq connection (auxconn.c: TLS as
 * server_tls_mode), driven only by libpq's asynchronous calls and an ev_io
 * on its socket, that is kept open between probes. The results feed the router: a replica's ban and its
 * replayed WAL position, and the primary's WAL position that
 * read_your_writes turns into the floor a replica must have replayed.
 */
#include "health.h"

#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auxconn.h"
#include "log.h"
#include "userlist.h"

/*
 * One query for every server, so that a primary found in recovery or a
 * promoted replica is noticed by the same probe that measures positions.
 */
#define HEALTH_QUERY                                                                               \
	"SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN "                          \
	"pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, "                                 \
	"EXTRACT(epoch FROM now() - pg_last_xact_replay_timestamp())"

/* The timer ticks at the smallest probe period in use, within these bounds (seconds). */
#define HEALTH_TICK_MIN 0.01
#define HEALTH_TICK_MAX 0.05
/* health_check_timeout = 0 would leave a hung probe forever: this bounds it instead. */
#define HEALTH_DEFAULT_TIMEOUT 3.0
/* Bound of the error texts a probe keeps and logs. */
#define HEALTH_TEXT_MAX 256

enum health_state {
	HEALTH_CLOSED,     /* no connection */
	HEALTH_CONNECTING, /* PQconnectPoll in progress */
	HEALTH_IDLE,       /* connected, between probes */
	HEALTH_QUERYING,   /* the probe query is in flight */
};

/* Where and as whom a probe logs in (borrowed strings). */
struct health_login {
	const char *host;
	int port;
	const char *dbname;
	const char *user;
	const char *password; /* NULL: none (trust, or libpq's own sources) */
};

struct health_probe {
	struct worker *w;
	struct target *target;
	PGconn *conn;
	ev_io io;
	enum health_state state;
	bool fresh;                /* conn was opened for the probe running */
	bool active;               /* the timer probes it; else bans expire by time alone */
	/* What conn was opened with (owned copies); a change reconnects. */
	char *host, *dbname, *user, *password;
	int port;
	ev_tstamp step_started;    /* of the connect or query running: the timeout counts from it */
	ev_tstamp query_sent;      /* of the query running: what it reads is from after this */
	ev_tstamp next_due;
	/* Result of the query in flight. */
	bool have_sample;
	struct health_sample sample;
	char error[HEALTH_TEXT_MAX];
	/* Replica: the primary's position when the query was sent. */
	uint64_t primary_lsn;
	/* Primary: the last probe that answered, for read_your_writes. */
	ev_tstamp done_sent;
	uint64_t done_lsn;
	bool primary_failing;     /* its last probe failed: logged once */
	bool primary_in_recovery; /* logged once */
};

/* ----- pure parts ----- */

static int health_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads 1 to 8 hex digits at *p into *out, advancing *p. */
static bool health_parse_hex32(const char **p, uint32_t *out)
{
	uint32_t v = 0;
	int n = 0;
	int d;
	while ((d = health_hex_digit(**p)) >= 0) {
		if (++n > 8)
			return false;
		v = (v << 4) | (uint32_t)d;
		(*p)++;
	}
	*out = v;
	return n > 0;
}

bool health_parse_lsn(const char *text, uint64_t *lsn)
{
	const char *p = text;
	uint32_t hi, lo;
	if (!health_parse_hex32(&p, &hi) || *p++ != '/' || !health_parse_hex32(&p, &lo) ||
	    *p != '\0')
		return false;
	*lsn = ((uint64_t)hi << 32) | lo;
	return true;
}

bool health_parse_sample(const char *in_recovery, const char *lsn, const char *replay_age,
			 struct health_sample *out)
{
	memset(out, 0, sizeof(*out));
	if (in_recovery == NULL || (strcmp(in_recovery, "t") != 0 && strcmp(in_recovery, "f") != 0))
		return false;
	out->in_recovery = in_recovery[0] == 't';
	if (lsn != NULL) {
		if (!health_parse_lsn(lsn, &out->lsn))
			return false;
		out->lsn_known = true;
	}
	if (replay_age != NULL) {
		char *end;
		errno = 0;
		double age = strtod(replay_age, &end);
		if (end == replay_age || *end != '\0' || errno != 0 || !isfinite(age))
			return false;
		/* A replica's clock a little behind the primary's gives a negative age. */
		out->replay_age = age > 0 ? age : 0;
		out->age_known = true;
	}
	return true;
}

bool health_judge_replica(const struct health_sample *s, uint64_t primary_lsn,
			  int64_t max_lag_usec, int64_t max_lag_bytes, int64_t *lag_bytes,
			  double *lag_seconds, char *reason, size_t cap)
{
	*lag_bytes = 0;
	*lag_seconds = 0;
	if (s->lsn_known && primary_lsn > s->lsn) {
		uint64_t d = primary_lsn - s->lsn;
		*lag_bytes = d > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d;
	}
	/* The replay age only grows while the primary writes nothing: it says
	 * nothing unless the replica is behind. */
	if (*lag_bytes > 0 && s->age_known)
		*lag_seconds = s->behind_for >= 0 && s->behind_for < s->replay_age ? s->behind_for
										  : s->replay_age;
	if (!s->in_recovery) {
		snprintf(reason, cap, "not in recovery (promoted?)");
		return false;
	}
	if (max_lag_bytes > 0 && *lag_bytes > max_lag_bytes) {
		snprintf(reason, cap, "lag %lld bytes > max_replica_lag_bytes",
			 (long long)*lag_bytes);
		return false;
	}
	if (max_lag_usec > 0 && *lag_seconds > (double)max_lag_usec / 1e6) {
		snprintf(reason, cap, "lag %.1fs > max_replica_lag", *lag_seconds);
		return false;
	}
	return true;
}

/* ----- bans ----- */

static void health_ban(struct worker *w, struct target *t, const char *reason, ev_tstamp now)
{
	double ban_time = (double)w->cfg->replica_ban_time / 1e6;
	bool was_banned = t->banned;
	t->banned = true;
	t->banned_until = now + ban_time;
	snprintf(t->ban_reason, sizeof(t->ban_reason), "%s", reason);
	if (was_banned)
		return;
	t->bans++;
	log_warning("replica %s:%d of %s banned for %gs: %s", t->host, t->port, t->db->name,
		    ban_time, reason);
}

static void health_unban(struct target *t)
{
	t->banned = false;
	t->ban_reason[0] = '\0';
	log_info("replica %s:%d of %s back in rotation", t->host, t->port, t->db->name);
}

/* A failed probe, or a failure the proxy path saw. */
static void health_note_failure(struct worker *w, struct target *t, const char *reason,
				ev_tstamp now)
{
	if (t->role == TARGET_REPLICA) {
		health_ban(w, t, reason, now);
		return;
	}
	/* Writes have nowhere else to go: the primary is never banned, only watched. */
	struct health_probe *p = t->probe;
	if (p != NULL && p->primary_failing)
		return;
	if (p != NULL)
		p->primary_failing = true;
	log_warning("primary %s:%d of %s failed: %s", t->host, t->port, t->db->name, reason);
}

/* ----- probes ----- */

static void health_forget_login(struct health_probe *p)
{
	if (p->password != NULL)
		explicit_bzero(p->password, strlen(p->password));
	free(p->host);
	free(p->dbname);
	free(p->user);
	free(p->password);
	p->host = p->dbname = p->user = p->password = NULL;
	p->port = 0;
}

static bool health_str_equal(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool health_same_login(const struct health_probe *p, const struct health_login *l)
{
	return p->port == l->port && health_str_equal(p->host, l->host) &&
	       health_str_equal(p->dbname, l->dbname) && health_str_equal(p->user, l->user) &&
	       health_str_equal(p->password, l->password);
}

static char *health_strdup_or_null(const char *s, bool *ok)
{
	char *copy = s != NULL ? strdup(s) : NULL;
	if (s != NULL && copy == NULL)
		*ok = false;
	return copy;
}

/* Keeps a copy of l in p (l may point into p); false when memory ran out. */
static bool health_keep_login(struct health_probe *p, const struct health_login *l)
{
	bool ok = true;
	char *host = health_strdup_or_null(l->host, &ok);
	char *dbname = health_strdup_or_null(l->dbname, &ok);
	char *user = health_strdup_or_null(l->user, &ok);
	char *password = health_strdup_or_null(l->password, &ok);
	int port = l->port;
	health_forget_login(p);
	p->host = host;
	p->dbname = dbname;
	p->user = user;
	p->password = password;
	p->port = port;
	if (!ok)
		health_forget_login(p);
	return ok;
}

/*
 * Who the probes of db log in as: health_check_user, else the database's
 * user=, else the first pool user whose password the auth file holds in
 * plaintext. Returns false when none is known yet.
 */
static bool health_find_user(const struct worker *w, const struct database *db,
			     const char **user, const char **password)
{
	const struct config *cfg = w->cfg;
	if (cfg->health_check_user != NULL) {
		*user = cfg->health_check_user;
		*password = cfg->health_check_password != NULL ? cfg->health_check_password
							       : userlist_plaintext(w->users, *user);
		return true;
	}
	if (db->login_user != NULL) {
		*user = db->login_user;
		*password = db->login_password != NULL ? db->login_password
						       : userlist_plaintext(w->users, *user);
		return true;
	}
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &db->pools)
	{
		const struct pool *pl = list_entry(pos, struct pool, node);
		const char *secret = userlist_plaintext(w->users, pl->user);
		if (secret != NULL) {
			*user = pl->user;
			*password = secret;
			return true;
		}
	}
	return false;
}

static double health_timeout(const struct worker *w)
{
	double s = (double)w->cfg->health_check_timeout / 1e6;
	return s > 0 ? s : HEALTH_DEFAULT_TIMEOUT;
}

/* Seconds between probes of db's targets; 0 when they are not probed. */
static double health_period(const struct worker *w, const struct database *db)
{
	double period = (double)w->cfg->health_check_period / 1e6;
	if (db->read_your_writes != RYW_OFF && w->cfg->lsn_probe_period > 0) {
		double lsn_period = (double)w->cfg->lsn_probe_period / 1e6;
		if (period <= 0 || lsn_period < period)
			period = lsn_period;
	}
	return period;
}

/* libpq's messages end in a newline and may span lines: one line for the log. */
static void health_format_error(char *out, size_t cap, const char *prefix, const char *message)
{
	char text[HEALTH_TEXT_MAX];
	snprintf(text, sizeof(text), "%s%s", prefix, message != NULL ? message : "");
	size_t len = 0;
	for (const char *c = text; *c != '\0' && len + 1 < cap; c++) {
		bool space = *c == ' ' || *c == '\n' || *c == '\r' || *c == '\t';
		if (space && (len == 0 || out[len - 1] == ' '))
			continue;
		out[len++] = space ? ' ' : *c;
	}
	while (len > 0 && out[len - 1] == ' ')
		len--;
	out[len] = '\0';
}

static void health_ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void health_close(struct health_probe *p)
{
	if (ev_is_active(&p->io))
		ev_io_stop(p->w->loop, &p->io);
	if (p->conn != NULL)
		PQfinish(p->conn);
	p->conn = NULL;
	p->state = HEALTH_CLOSED;
}

/* Watches the connection's socket for events, following libpq when it changes sockets. */
static bool health_watch(struct health_probe *p, int events)
{
	int fd = PQsocket(p->conn);
	if (fd < 0)
		return false;
	if (ev_is_active(&p->io))
		ev_io_stop(p->w->loop, &p->io);
	ev_io_set(&p->io, fd, events);
	ev_io_start(p->w->loop, &p->io);
	return true;
}

static void health_connect(struct health_probe *p);

/*
 * Ends a probe that failed: the connection is closed and the next probe
 * reconnects. A connection kept from an earlier probe that turns out to be
 * lost (server restart, pg_terminate_backend) says nothing about the server
 * now: the probe retries once on a fresh one instead.
 */
static void health_fail(struct health_probe *p, const char *reason)
{
	if (p->state == HEALTH_QUERYING && !p->fresh && p->conn != NULL &&
	    PQstatus(p->conn) == CONNECTION_BAD) {
		log_debug("health probe of %s:%d (%s) lost its connection: %s", p->target->host,
			  p->target->port, p->target->db->name, reason);
		health_close(p);
		health_connect(p);
		return;
	}
	log_debug("health probe of %s:%d (%s) failed: %s", p->target->host, p->target->port,
		  p->target->db->name, reason);
	health_close(p);
	health_note_failure(p->w, p->target, reason, ev_now(p->w->loop));
}

static void health_fail_libpq(struct health_probe *p, const char *prefix)
{
	char reason[HEALTH_TEXT_MAX];
	health_format_error(reason, sizeof(reason), prefix,
			    p->conn != NULL ? PQerrorMessage(p->conn) : "out of memory");
	health_fail(p, reason);
}

/* A probe answered: record what it read and judge the target. */
static void health_pass(struct health_probe *p)
{
	struct worker *w = p->w;
	struct target *t = p->target;
	ev_tstamp now = ev_now(w->loop);
	t->in_recovery = p->sample.in_recovery;
	t->lsn = p->sample.lsn_known ? p->sample.lsn : 0;
	t->lsn_at = p->query_sent;
	t->probed = true;
	if (t->role == TARGET_PRIMARY) {
		if (p->sample.lsn_known) {
			p->done_sent = p->query_sent;
			p->done_lsn = p->sample.lsn;
		}
		if (p->primary_failing)
			log_info("primary %s:%d of %s answers again", t->host, t->port,
				 t->db->name);
		p->primary_failing = false;
		if (p->sample.in_recovery && !p->primary_in_recovery)
			log_warning("primary %s:%d of %s is in recovery: writes will fail", t->host,
				    t->port, t->db->name);
		else if (!p->sample.in_recovery && p->primary_in_recovery)
			log_info("primary %s:%d of %s is out of recovery", t->host, t->port,
				 t->db->name);
		p->primary_in_recovery = p->sample.in_recovery;
		return;
	}
	char reason[HEALTH_TEXT_MAX];
	/* How long it has been behind: from the first probe that found it so. */
	if (p->primary_lsn > 0 && p->sample.lsn_known && p->primary_lsn > p->sample.lsn) {
		if (t->behind_since == 0)
			t->behind_since = p->query_sent;
		p->sample.behind_for = now - t->behind_since;
	} else {
		t->behind_since = 0;
		p->sample.behind_for = 0;
	}
	if (!health_judge_replica(&p->sample, p->primary_lsn, w->cfg->max_replica_lag,
				  w->cfg->max_replica_lag_bytes, &t->lag_bytes, &t->lag_seconds,
				  reason, sizeof(reason)))
		health_ban(w, t, reason, now);
	else if (t->banned && now >= t->banned_until)
		health_unban(t);
}

static void health_send_query(struct health_probe *p)
{
	ev_tstamp now = ev_now(p->w->loop);
	struct target *primary = p->target->db->primary;
	/* Only a position read before this query is sent proves a lag; a fresher
	 * one could include WAL that reaches the replica a moment later. */
	bool known = primary != NULL && primary != p->target && primary->probed;
	p->primary_lsn = known ? primary->lsn : 0;
	p->have_sample = false;
	p->error[0] = '\0';
	p->state = HEALTH_QUERYING;
	p->step_started = p->query_sent = now;
	if (!PQsendQuery(p->conn, HEALTH_QUERY)) {
		health_fail_libpq(p, "probe failed: ");
		return;
	}
	int flushed = PQflush(p->conn);
	if (flushed < 0) {
		health_fail_libpq(p, "probe failed: ");
		return;
	}
	if (!health_watch(p, flushed == 1 ? EV_READ | EV_WRITE : EV_READ))
		health_fail(p, "probe failed: no socket");
}

static void health_connect_poll(struct health_probe *p)
{
	switch (PQconnectPoll(p->conn)) {
	case PGRES_POLLING_READING:
		if (!health_watch(p, EV_READ))
			health_fail(p, "connect failed: no socket");
		return;
	case PGRES_POLLING_WRITING:
		if (!health_watch(p, EV_WRITE))
			health_fail(p, "connect failed: no socket");
		return;
	case PGRES_POLLING_OK:
		/* From here on a full socket buffer must never block the loop. */
		if (PQsetnonblocking(p->conn, 1) != 0) {
			health_fail_libpq(p, "connect failed: ");
			return;
		}
		p->state = HEALTH_IDLE;
		health_send_query(p);
		return;
	default:
		health_fail_libpq(p, "connect failed: ");
		return;
	}
}

static void health_take_result(struct health_probe *p, PGresult *r)
{
	if (p->error[0] != '\0' || p->have_sample)
		return;
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK) {
		health_format_error(p->error, sizeof(p->error), "probe failed: ",
				    st == PGRES_FATAL_ERROR ? PQresultErrorMessage(r)
							    : PQresStatus(st));
		return;
	}
	if (PQntuples(r) != 1 || PQnfields(r) != 3 ||
	    !health_parse_sample(PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0),
				 PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1),
				 PQgetisnull(r, 0, 2) ? NULL : PQgetvalue(r, 0, 2), &p->sample)) {
		snprintf(p->error, sizeof(p->error), "probe failed: unexpected answer");
		return;
	}
	p->have_sample = true;
}

static void health_on_query_io(struct health_probe *p, int revents)
{
	if (revents & EV_WRITE) {
		int flushed = PQflush(p->conn);
		if (flushed < 0) {
			health_fail_libpq(p, "probe failed: ");
			return;
		}
		if (flushed == 0 && !health_watch(p, EV_READ)) {
			health_fail(p, "probe failed: no socket");
			return;
		}
	}
	if (!(revents & EV_READ))
		return;
	if (!PQconsumeInput(p->conn)) {
		health_fail_libpq(p, "probe failed: ");
		return;
	}
	while (!PQisBusy(p->conn)) {
		PGresult *r = PQgetResult(p->conn);
		if (r == NULL) {
			if (p->error[0] != '\0') {
				char reason[HEALTH_TEXT_MAX];
				memcpy(reason, p->error, sizeof(reason));
				health_fail(p, reason);
			} else if (!p->have_sample) {
				health_fail(p, "probe failed: no answer");
			} else if (health_watch(p, EV_READ)) {
				p->state = HEALTH_IDLE;
				health_pass(p);
			} else {
				health_fail(p, "probe failed: no socket");
			}
			return;
		}
		health_take_result(p, r);
		PQclear(r);
	}
}

static void health_on_io(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	struct health_probe *p = io->data;
	switch (p->state) {
	case HEALTH_CONNECTING:
		health_connect_poll(p);
		return;
	case HEALTH_QUERYING:
		health_on_query_io(p, revents);
		return;
	case HEALTH_IDLE:
		/* Between probes the server only speaks to say goodbye (shutdown,
		 * pg_terminate_backend): reconnect at the next tick to learn why. */
		if (!PQconsumeInput(p->conn) || PQstatus(p->conn) != CONNECTION_OK) {
			health_close(p);
			p->next_due = 0;
		}
		return;
	case HEALTH_CLOSED:
		ev_io_stop(p->w->loop, &p->io);
		return;
	}
}

static void health_connect(struct health_probe *p)
{
	struct auxconn_spec spec = {
		.host = p->host,
		.port = p->port,
		.dbname = p->dbname,
		.user = p->user,
		.password = p->password,
		.application_name = "pgsluice-health",
	};
	auxconn_tls_from_config(p->w->cfg, &spec.tls);

	p->state = HEALTH_CONNECTING;
	p->fresh = true;
	p->step_started = ev_now(p->w->loop);
	/* No connect_timeout: libpq ignores it under PQconnectPoll; the tick enforces
	 * health_check_timeout instead. */
	p->conn = auxconn_start(&spec);
	if (p->conn == NULL) {
		health_fail(p, "connect failed: out of memory");
		return;
	}
	/* The default processor writes to stderr, outside the log. */
	PQsetNoticeProcessor(p->conn, health_ignore_notice, NULL);
	if (PQstatus(p->conn) == CONNECTION_BAD) {
		health_fail_libpq(p, "connect failed: ");
		return;
	}
	/* libpq's contract: poll as if PGRES_POLLING_WRITING came first. */
	if (!health_watch(p, EV_WRITE))
		health_fail(p, "connect failed: no socket");
}

static struct health_probe *health_probe_of(struct worker *w, struct target *t)
{
	if (t->probe != NULL)
		return t->probe;
	struct health_probe *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->w = w;
	p->target = t;
	ev_io_init(&p->io, health_on_io, -1, EV_READ);
	p->io.data = p;
	t->probe = p;
	return p;
}

/* Lets a ban lapse where no probe could lift it. */
static void health_expire_ban(struct target *t, ev_tstamp now)
{
	if (t->banned && now >= t->banned_until)
		health_unban(t);
}

/* Starts t's probe when it is due; login is NULL when t is not to be probed. */
static void health_tick_target(struct worker *w, struct target *t, const struct health_login *login,
			       double period, double tick, ev_tstamp now)
{
	struct health_probe *p = t->probe;
	if (login == NULL) {
		if (p != NULL) {
			health_close(p);
			p->active = false;
		}
		health_expire_ban(t, now);
		return;
	}
	if ((p = health_probe_of(w, t)) == NULL)
		return;
	p->active = true;
	if (p->state == HEALTH_CONNECTING || p->state == HEALTH_QUERYING) {
		double timeout = health_timeout(w);
		if (now - p->step_started >= timeout) {
			char reason[64];
			snprintf(reason, sizeof(reason), "%s failed: timeout after %gs",
				 p->state == HEALTH_CONNECTING ? "connect" : "probe", timeout);
			health_fail(p, reason);
		}
		return;
	}
	if (now < p->next_due)
		return;
	/* Half a tick early, so that a tick landing a hair before the due time
	 * does not push the probe a whole tick late. */
	p->next_due = now + period - tick / 2;
	if (p->state == HEALTH_IDLE && !health_same_login(p, login))
		health_close(p);
	if (p->state == HEALTH_CLOSED) {
		if (!health_keep_login(p, login)) {
			health_fail(p, "connect failed: out of memory");
			return;
		}
		health_connect(p);
	} else {
		p->fresh = false;
		health_send_query(p);
	}
}

static void health_tick_database(struct worker *w, struct database *db, double tick,
				 ev_tstamp now)
{
	double period = health_period(w, db);
	const char *user = NULL, *password = NULL;
	/* Without replicas there is nothing to route around: no probe, no extra connection. */
	bool wanted = period > 0 && !db->removed && database_has_replicas(db);
	bool known = wanted && health_find_user(w, db, &user, &password);
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &db->targets)
	{
		struct target *t = list_entry(pos, struct target, node);
		struct health_login login = {t->host, t->port, db->dbname, user, password};
		bool probe = known;
		if (wanted && !known && t->probe != NULL && t->probe->user != NULL) {
			/* The pool that taught us a login has gone idle and away: keep it. */
			login.user = t->probe->user;
			login.password = t->probe->password;
			probe = true;
		}
		health_tick_target(w, t, probe && !t->removed ? &login : NULL, period, tick, now);
	}
}

static void health_on_tick(struct ev_loop *loop, ev_timer *timer, int revents)
{
	(void)revents;
	struct worker *w = timer->data;
	ev_tstamp now = ev_now(loop);
	double tick = timer->repeat;
	double smallest = HEALTH_TICK_MAX;
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &w->databases)
	{
		struct database *db = list_entry(pos, struct database, node);
		double period = health_period(w, db);
		if (period > 0 && period < smallest)
			smallest = period;
		health_tick_database(w, db, tick, now);
	}
	if (smallest < HEALTH_TICK_MIN)
		smallest = HEALTH_TICK_MIN;
	if (smallest != timer->repeat) {
		timer->repeat = smallest;
		ev_timer_again(loop, timer);
	}
}

/* ----- API ----- */

void health_start(struct worker *w)
{
	ev_timer_init(&w->health_timer, health_on_tick, 0., HEALTH_TICK_MAX);
	w->health_timer.data = w;
	ev_timer_start(w->loop, &w->health_timer);
}

void health_stop(struct worker *w)
{
	ev_timer_stop(w->loop, &w->health_timer);
	struct list_head *dpos, *dtmp;
	list_for_each_safe(dpos, dtmp, &w->databases)
	{
		struct database *db = list_entry(dpos, struct database, node);
		struct list_head *pos, *tmp;
		list_for_each_safe(pos, tmp, &db->targets)
		{
			health_forget_target(w, list_entry(pos, struct target, node));
		}
	}
}

void health_forget_target(struct worker *w, struct target *t)
{
	(void)w;
	struct health_probe *p = t->probe;
	if (p == NULL)
		return;
	health_close(p);
	health_forget_login(p);
	free(p);
	t->probe = NULL;
}

void health_report_failure(struct worker *w, struct target *t, const char *reason)
{
	/* The primary's log-once state lives in its probe, made here if need be. */
	if (t->role == TARGET_PRIMARY)
		health_probe_of(w, t);
	health_note_failure(w, t, reason, ev_now(w->loop));
}

bool health_target_usable(const struct target *t, ev_tstamp now)
{
	if (t->role == TARGET_PRIMARY || !t->banned)
		return true;
	bool probed = t->probe != NULL && t->probe->active;
	return !probed && now >= t->banned_until;
}

uint64_t health_primary_lsn_since(const struct database *db, ev_tstamp since)
{
	const struct target *t = db->primary;
	if (t == NULL || t->probe == NULL || t->probe->done_lsn == 0)
		return 0;
	return t->probe->done_sent > since ? t->probe->done_lsn : 0;
}
