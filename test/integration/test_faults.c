/*
 * test_faults.c - fault injection against a running pgsluice: servers that crash,
 * never answer or answer slowly; clients that stall mid-login or mid-message, stop
 * reading a huge result, flood the listener, churn, or sit idle by the ten thousand;
 * and reloads under load. Each test asserts what a client sees (SQLSTATE, timing),
 * that other clients keep working, and that the daemon's memory and descriptors stay
 * bounded (read from /proc). doc/faults.md describes every outcome asserted here.
 * The primary crash runs last: it restarts the shared cluster and waits for it.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

#include "fixture.h"
#include "suites.h"

/* The primary alone, so that the answering server is known. */
#define FAULTS_DB "app_primary"
/* Room for pgbench's output. */
#define FAULTS_SH_OUT 65536
/* Ports the fake servers may use (issue 10). */
#define FAULTS_FAKE_PORT_MIN 46000
#define FAULTS_FAKE_PORT_MAX 46099
/* Slack allowed on every measured duration: janitor ticks, scheduling, ASan. */
#define FAULTS_SLACK_S 1.5
/* Any one interactive query that should be fast must take less than this. */
#define FAULTS_FAST_QUERY_S 0.5
/* Largest message the raw-socket reader keeps. */
#define FAULTS_RAW_MAX 65536

/* Slow-reader test: the result the client never reads, and the RSS ceiling over base. */
#define FAULTS_HUGE_SQL "SELECT repeat('x', 1000) FROM generate_series(1, 2000000)"
#define FAULTS_SLOW_READER_RSS_KB (64L * 1024)

/* Slowloris: the client limit, the connections opened beyond it, and the login timeout. */
#define FAULTS_LORIS_MAX_CLIENTS 100
#define FAULTS_LORIS_EXTRA 100
/* listener.c holds at most this many over-limit clients to tell them 53300. */
#define FAULTS_LORIS_REFUSING_MAX 64

/* Churn: how long pgbench -C runs and how much the daemon may grow meanwhile. */
#define FAULTS_CHURN_SECONDS 30
#define FAULTS_CHURN_RSS_KB (16L * 1024)
#define FAULTS_CHURN_FDS 4

/* Reload storm: interval between SIGHUPs. */
#define FAULTS_HUP_INTERVAL_S 0.1

/* Idle clients: how many, the ceiling per client, and the descriptors each end needs:
 * the test and the daemon are separate processes holding one socket per client each. */
#define FAULTS_IDLE_CLIENTS 10000
#define FAULTS_IDLE_NOFILE 12000
#define FAULTS_IDLE_BYTES_PER_CLIENT 16384
/* Under AddressSanitizer every allocation carries redzones: measured 16.1 kB a client. */
#define FAULTS_IDLE_BYTES_PER_CLIENT_ASAN 32768
#define FAULTS_IDLE_OPEN_S 60.0

/* Primary crash: pgbench duration, how long the primary stays down, and the bound. */
#define FAULTS_CRASH_PGBENCH_S 20
#define FAULTS_CRASH_DOWN_S 2.0
#define FAULTS_CRASH_EXIT_BOUND_S 15.0

/* ---- helpers ---- */

static void faults_sleep(double seconds)
{
	struct timespec ts = { .tv_sec = (time_t)seconds,
			       .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Start pgsluice with the app_primary alias, extra [pgsluice] lines and extra databases. */
static struct sluice *faults_start(const char *global_extra, const char *databases_extra)
{
	char databases[1024];
	snprintf(databases, sizeof(databases), "%s = host=127.0.0.1 port=%d dbname=%s\n%s",
		 FAULTS_DB, fixture_primary_port(), FIXTURE_DB,
		 databases_extra != NULL ? databases_extra : "");
	return sluice_start(global_extra, databases);
}

static PGconn *faults_connect(const struct sluice *s)
{
	return fixture_connect_ok(s->port, FAULTS_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
}

static void faults_assert_value(PGconn *c, const char *sql, const char *expected)
{
	char *v = fixture_value(c, sql);
	ck_assert_msg(strcmp(v, expected) == 0, "\"%s\" gave \"%s\", expected \"%s\"", sql, v,
		      expected);
	free(v);
}

/* Run sql and return how long it took; ck_assert it returned expected. */
static double faults_timed_value(PGconn *c, const char *sql, const char *expected)
{
	double t0 = fixture_now();
	faults_assert_value(c, sql, expected);
	return fixture_now() - t0;
}

/* One "Key:   N kB" line of /proc/PID/status, in kB; -1 when missing. */
static long faults_proc_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	long kb = -1;
	size_t klen = strlen(key);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			kb = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

static long faults_rss_kb(const struct sluice *s)
{
	long kb = faults_proc_kb(s->pid, "VmRSS");
	ck_assert_msg(kb > 0, "no VmRSS for pid %d", (int)s->pid);
	return kb;
}

/* The daemon's open descriptors (entries of /proc/PID/fd). */
static int faults_fd_count(const struct sluice *s)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)s->pid);
	DIR *d = opendir(path);
	ck_assert_msg(d != NULL, "opendir %s: %s", path, strerror(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

/* True when the daemon runs with AddressSanitizer (libasan is mapped into it). */
static bool faults_daemon_has_asan(const struct sluice *s)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)s->pid);
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
	bool found = false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, "libasan") != NULL;
	fclose(f);
	return found;
}

/* Wait up to timeout_s for the daemon's descriptor count to drop to at most limit. */
static int faults_wait_fds_at_most(const struct sluice *s, int limit, double timeout_s)
{
	double deadline = fixture_now() + timeout_s;
	int n;
	while ((n = faults_fd_count(s)) > limit && fixture_now() < deadline)
		faults_sleep(0.05);
	return n;
}

/* pgbench against the daemon's db with args; output into out; returns the exit status. */
static int faults_pgbench(const struct sluice *s, const char *db, const char *args, char *out,
			  size_t cap)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "PGPASSWORD='%s' '%s/pgbench' -h 127.0.0.1 -p %d -U %s %s %s",
		 FIXTURE_PASSWORD, fixture_pg_bindir(), s->port, FIXTURE_USER, args, db);
	return fixture_sh(cmd, out, cap);
}

/* Require a clean pgbench run: exit 0, transactions done, none failed; returns the count. */
static long faults_assert_pgbench_clean(int rc, const char *out)
{
	ck_assert_msg(rc == 0, "pgbench exited with %d:\n%s", rc, out);
	const char *key = "number of transactions actually processed: ";
	const char *p = strstr(out, key);
	ck_assert_msg(p != NULL, "no transaction count in:\n%s", out);
	long done = strtol(p + strlen(key), NULL, 10);
	ck_assert_msg(done > 0, "no transactions processed:\n%s", out);
	ck_assert_msg(strstr(out, "number of failed transactions: 0 ") != NULL,
		      "failed transactions:\n%s", out);
	return done;
}

/* pg_ctl on a node's data directory (primary, replica1, ...), as postgres when root. */
static int faults_pg_ctl(const char *node, const char *action, char *out, size_t cap)
{
	char cmd[2048];
	const char *dir = fixture_tmpdir();
	snprintf(cmd, sizeof(cmd), "%s'%s/pg_ctl' -D %s/cluster/%s -l %s/cluster/%s.log %s",
		 geteuid() == 0 ? "runuser -u postgres -- " : "", fixture_pg_bindir(), dir, node,
		 dir, node, action);
	return fixture_sh(cmd, out, cap);
}

/*
 * How many replicas stream from the primary, or -1 when the primary does not answer.
 * With nudge, also switches the primary to a new WAL segment: after a crash the
 * primary may have ended its WAL before the point a replica had received, and the
 * replica then waits until the primary's WAL passes that point.
 */
static int faults_streaming_count(bool nudge)
{
	char conninfo[256];
	snprintf(conninfo, sizeof(conninfo),
		 "host=127.0.0.1 port=%d dbname=postgres user=postgres connect_timeout=2",
		 fixture_primary_port());
	PGconn *c = PQconnectdb(conninfo);
	int n = -1;
	if (PQstatus(c) == CONNECTION_OK) {
		PGresult *r = PQexec(c, "SELECT count(*) FROM pg_stat_replication "
					"WHERE state = 'streaming'");
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			n = atoi(PQgetvalue(r, 0, 0));
		PQclear(r);
		if (nudge && n != fixture_replica_count())
			PQclear(PQexec(c, "SELECT pg_switch_wal()"));
	}
	PQfinish(c);
	return n;
}

static bool faults_wait_streaming(double timeout_s)
{
	double start = fixture_now();
	for (int i = 0;; i++) {
		bool nudge = fixture_now() - start > 3.0 && i % 10 == 0;
		if (faults_streaming_count(nudge) == fixture_replica_count())
			return true;
		if (fixture_now() - start >= timeout_s)
			return false;
		faults_sleep(0.2);
	}
}

/*
 * Puts the cluster back as the tests found it: every node running, every replica
 * streaming. Runs in the parent after a test case, so it reports instead of asserting.
 */
static void faults_cluster_restore(void)
{
	char node[32], out[4096];
	for (int i = 0; i <= fixture_replica_count(); i++) {
		if (i == 0)
			snprintf(node, sizeof(node), "primary");
		else
			snprintf(node, sizeof(node), "replica%d", i);
		if (faults_pg_ctl(node, "status", NULL, 0) != 0 &&
		    faults_pg_ctl(node, "-w -t 60 start", out, sizeof(out)) != 0)
			fprintf(stderr, "test_faults: could not restart %s:\n%s", node, out);
	}
	if (!faults_wait_streaming(60.0))
		fprintf(stderr, "test_faults: replicas not streaming after the restore\n");
}

/* ---- raw protocol ---- */

static int faults_raw_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s",
		      strerror(errno));
	return fd;
}

/* Sends all of data; false when the peer is gone (errno says why). */
static bool faults_try_send_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static void faults_send_all(int fd, const void *data, size_t len)
{
	ck_assert_msg(faults_try_send_all(fd, data, len), "send: %s", strerror(errno));
}

static void faults_put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* One message read from a raw socket, or how the read ended. */
struct faults_msg {
	char type;
	bool closed;   /* the peer closed (or reset) the connection */
	bool timedout; /* nothing complete within the deadline */
	char sqlstate[6];
	char severity[16];
	char message[256];
};

/* Read exactly len bytes by the deadline; false on close or timeout (flags set). */
static bool faults_read_full(int fd, void *buf, size_t len, double deadline, struct faults_msg *m)
{
	char *p = buf;
	while (len > 0) {
		int left_ms = (int)((deadline - fixture_now()) * 1000);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (left_ms <= 0 || poll(&pfd, 1, left_ms) == 0) {
			m->timedout = true;
			return false;
		}
		ssize_t n = recv(fd, p, len, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			m->closed = true;
			return false;
		}
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			m->closed = true;
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Read the next message (type, and the SQLSTATE and severity of an ErrorResponse). */
static struct faults_msg faults_read_msg(int fd, double deadline)
{
	struct faults_msg m = { 0 };
	unsigned char head[5];
	if (!faults_read_full(fd, head, sizeof(head), deadline, &m))
		return m;
	uint32_t len = ((uint32_t)head[1] << 24) | ((uint32_t)head[2] << 16) |
		       ((uint32_t)head[3] << 8) | head[4];
	ck_assert_msg(len >= 4 && len - 4 <= FAULTS_RAW_MAX, "message '%c' of length %u",
		      head[0], len);
	static char body[FAULTS_RAW_MAX + 1];
	if (!faults_read_full(fd, body, len - 4, deadline, &m))
		return m;
	body[len - 4] = '\0';
	m.type = (char)head[0];
	if (m.type == 'E') {
		size_t pos = 0;
		while (pos < len - 4 && body[pos] != '\0') {
			char field = body[pos++];
			const char *value = body + pos;
			if (field == 'C')
				snprintf(m.sqlstate, sizeof(m.sqlstate), "%s", value);
			else if (field == 'V')
				snprintf(m.severity, sizeof(m.severity), "%s", value);
			else if (field == 'M')
				snprintf(m.message, sizeof(m.message), "%s", value);
			pos += strlen(value) + 1;
		}
	}
	return m;
}

/* Read messages until an ErrorResponse or the end; returns the error (or how it ended). */
static struct faults_msg faults_read_error(int fd, double deadline)
{
	for (;;) {
		struct faults_msg m = faults_read_msg(fd, deadline);
		if (m.type == 'E' || m.type == '\0')
			return m;
	}
}

/* True when the peer closes fd (after whatever it still sends) before the deadline; a
 * deadline already past still looks once. */
static bool faults_wait_closed(int fd, double deadline)
{
	char buf[4096];
	for (;;) {
		int left_ms = (int)((deadline - fixture_now()) * 1000);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, left_ms > 0 ? left_ms : 0) == 0)
			return false;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return true;
	}
}

/* Log in over a raw socket (the daemon runs auth_type = trust) up to ReadyForQuery. */
static int faults_raw_login(int port)
{
	int fd = faults_raw_connect(port);
	unsigned char pkt[128];
	size_t len = 8;
	static const char params[] = "user\0" FIXTURE_USER "\0database\0" FAULTS_DB "\0";
	memcpy(pkt + len, params, sizeof(params));
	len += sizeof(params);
	faults_put_u32(pkt, (uint32_t)len);
	faults_put_u32(pkt + 4, 196608);
	faults_send_all(fd, pkt, len);
	double deadline = fixture_now() + 10.0;
	for (;;) {
		struct faults_msg m = faults_read_msg(fd, deadline);
		ck_assert_msg(m.type != '\0', "raw login ended (closed %d, timed out %d)", m.closed,
			      m.timedout);
		ck_assert_msg(m.type != 'E', "raw login refused: %s", m.sqlstate);
		if (m.type == 'Z')
			return fd;
	}
}

/*
 * Try to connect with libpq and report how it failed. libpq keeps no SQLSTATE for a
 * failed connection, but with verbose errors set before the first poll it writes the
 * code into the message ("FATAL:  08006: ...").
 */
struct faults_refusal {
	bool failed;
	char sqlstate[6];
	char raw[1024];
};

static struct faults_refusal faults_connect_failure(int port, const char *db, double limit_s)
{
	struct faults_refusal out = { 0 };
	char port_text[16];
	snprintf(port_text, sizeof(port_text), "%d", port);
	const char *keys[] = { "host", "port", "dbname", "user", "password", NULL };
	const char *values[] = { "127.0.0.1", port_text, db, FIXTURE_USER, FIXTURE_PASSWORD,
				 NULL };
	PGconn *c = PQconnectStartParams(keys, values, 0);
	ck_assert(c != NULL);
	PQsetErrorVerbosity(c, PQERRORS_VERBOSE);
	double deadline = fixture_now() + limit_s;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	while (PQstatus(c) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
	       st != PGRES_POLLING_FAILED) {
		double left = deadline - fixture_now();
		ck_assert_msg(left > 0, "connection attempt to %d hung for %.1f s", port, limit_s);
		struct pollfd pfd = { .fd = PQsocket(c),
				      .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT };
		if (pfd.fd >= 0)
			poll(&pfd, 1, (int)(left * 1000) + 1);
		st = PQconnectPoll(c);
	}
	out.failed = PQstatus(c) != CONNECTION_OK;
	snprintf(out.raw, sizeof(out.raw), "%s", PQerrorMessage(c));
	fixture_parse_error_text(out.raw, out.sqlstate, NULL, 0);
	PQfinish(c);
	return out;
}

/* ---- 2. a replica dies under a read load ---- */

/* Stops replica 0 two seconds into the load. */
static void *faults_replica_killer(void *arg)
{
	(void)arg;
	faults_sleep(2.0);
	char out[2048];
	int rc = faults_pg_ctl("replica1", "-m immediate -w stop", out, sizeof(out));
	return (void *)(intptr_t)rc;
}

START_TEST(replica_killed_under_read_load_costs_no_client_an_error)
{
	ck_assert_int_ge(fixture_replica_count(), 2);
	fixture_pgbench_init();
	struct sluice *s = sluice_start("pool_mode = transaction\n"
					"default_pool_size = 8\n"
					"health_check_period = 200ms\n"
					"health_check_timeout = 1s\n"
					"replica_ban_time = 1s\n"
					"server_connect_timeout = 2s\n"
					"server_login_retry = 200ms\n"
					"query_wait_timeout = 10s",
					NULL);
	pthread_t killer;
	ck_assert_int_eq(pthread_create(&killer, NULL, faults_replica_killer, NULL), 0);
	char *out = malloc(FAULTS_SH_OUT);
	ck_assert(out != NULL);
	int rc = faults_pgbench(s, FIXTURE_DB, "-S -c 8 -j 2 -T 6", out, FAULTS_SH_OUT);
	void *kill_rc;
	pthread_join(killer, &kill_rc);
	ck_assert_msg((intptr_t)kill_rc == 0, "pg_ctl stop of replica1 failed");
	long done = faults_assert_pgbench_clean(rc, out);
	ck_assert_int_gt(done, 1000);
	free(out);

	/* The dead replica answers no read, and the daemon said it banned it. */
	PGconn *c = fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	for (int i = 0; i < 10; i++) {
		char *v = fixture_value(c, "SELECT inet_server_port()");
		ck_assert_msg(atoi(v) != fixture_replica_port(0),
			      "a read reached the dead replica");
		free(v);
	}
	PQfinish(c);
	char *log = sluice_log(s);
	ck_assert_msg(strstr(log, "banned") != NULL, "no ban was logged:\n%s", log);
	free(log);
	sluice_stop_clean(s);
	fixture_replica_start(0);
	ck_assert_msg(faults_wait_streaming(60.0), "replica1 does not stream again");
}
END_TEST

/* ---- 3. a server that accepts and never answers ---- */

/* A listening socket on the first free port of the fake range; never accepts. */
static int faults_silent_server(int *port_out)
{
	for (int port = FAULTS_FAKE_PORT_MIN; port <= FAULTS_FAKE_PORT_MAX; port++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_ge(fd, 0);
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = htons((uint16_t)port) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		/* The kernel completes the handshakes of the backlog: pgsluice connects, sends
		 * its startup packet and waits for an answer that never comes. */
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 64) == 0) {
			*port_out = port;
			return fd;
		}
		close(fd);
	}
	ck_abort_msg("no free port in %d..%d", FAULTS_FAKE_PORT_MIN, FAULTS_FAKE_PORT_MAX);
	return -1;
}

/* Runs SELECTs on the healthy database while another client waits on the silent one. */
struct faults_healthy_probe {
	int port;
	volatile bool stop;
	int queries;
	double slowest;
	char error[512];
};

static void *faults_healthy_run(void *arg)
{
	struct faults_healthy_probe *hp = arg;
	PGconn *c = fixture_connect(hp->port, FAULTS_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(hp->error, sizeof(hp->error), "connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	while (!hp->stop) {
		double t0 = fixture_now();
		PGresult *r = PQexec(c, "SELECT 1");
		double took = fixture_now() - t0;
		bool ok = PQresultStatus(r) == PGRES_TUPLES_OK &&
			  strcmp(PQgetvalue(r, 0, 0), "1") == 0;
		PQclear(r);
		if (!ok) {
			snprintf(hp->error, sizeof(hp->error), "query: %s", PQerrorMessage(c));
			break;
		}
		hp->queries++;
		if (took > hp->slowest)
			hp->slowest = took;
		faults_sleep(0.02);
	}
	PQfinish(c);
	return NULL;
}

START_TEST(silent_server_fails_login_with_08006_within_server_connect_timeout)
{
	int port;
	int lfd = faults_silent_server(&port);
	char databases[256];
	snprintf(databases, sizeof(databases), "silent = host=127.0.0.1 port=%d dbname=silent",
		 port);
	struct sluice *s = faults_start("pool_mode = transaction\n"
					"server_connect_timeout = 1s\n"
					"server_login_retry = 200ms",
					databases);
	struct faults_healthy_probe hp = { .port = s->port };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, faults_healthy_run, &hp), 0);

	double t0 = fixture_now();
	struct faults_refusal f = faults_connect_failure(s->port, "silent", 1.0 + 5.0);
	double elapsed = fixture_now() - t0;
	hp.stop = true;
	pthread_join(t, NULL);

	ck_assert_msg(f.failed, "a login on the silent server succeeded");
	ck_assert_msg(strcmp(f.sqlstate, "08006") == 0, "SQLSTATE \"%s\" in: %s", f.sqlstate,
		      f.raw);
	ck_assert_msg(strstr(f.raw, "server_connect_timeout") != NULL, "message: %s", f.raw);
	ck_assert_msg(elapsed >= 0.9 && elapsed <= 1.0 + FAULTS_SLACK_S,
		      "refused after %.2f s, server_connect_timeout is 1 s", elapsed);
	ck_assert_msg(hp.error[0] == '\0', "the healthy database failed meanwhile: %s", hp.error);
	ck_assert_msg(hp.queries >= 10, "only %d queries on the healthy database", hp.queries);
	ck_assert_msg(hp.slowest < FAULTS_FAST_QUERY_S, "a healthy query took %.2f s", hp.slowest);

	char *log = sluice_log(s);
	ck_assert_msg(strstr(log, "no login within server_connect_timeout") != NULL,
		      "nothing logged about the silent server:\n%s", log);
	free(log);
	PGconn *c = faults_connect(s);
	faults_assert_value(c, "SELECT 'still fine'", "still fine");
	PQfinish(c);
	sluice_stop_clean(s);
	close(lfd);
}
END_TEST

/*
 * A logged-in client whose database is moved (by a reload) to the silent server: its
 * next query gets ERROR 08006 after server_connect_timeout, and the session survives.
 */
START_TEST(silent_server_fails_a_query_with_08006_and_keeps_the_session)
{
	int port;
	int lfd = faults_silent_server(&port);
	const char *global = "pool_mode = transaction\n"
			     "server_connect_timeout = 1s\n"
			     "server_login_retry = 200ms";
	char databases[256];
	snprintf(databases, sizeof(databases), "moving = host=127.0.0.1 port=%d dbname=%s",
		 fixture_primary_port(), FIXTURE_DB);
	struct sluice *s = faults_start(global, databases);
	PGconn *c = fixture_connect_ok(s->port, "moving", FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	faults_assert_value(c, "SELECT 'before'", "before");

	char primary_alias[128];
	snprintf(primary_alias, sizeof(primary_alias), "%s = host=127.0.0.1 port=%d dbname=%s",
		 FAULTS_DB, fixture_primary_port(), FIXTURE_DB);
	snprintf(databases, sizeof(databases), "%s\nmoving = host=127.0.0.1 port=%d dbname=silent",
		 primary_alias, port);
	ck_assert(sluice_rewrite(s, global, databases));
	sluice_signal(s, SIGHUP);
	faults_sleep(0.5);

	double t0 = fixture_now();
	PGresult *r = PQexec(c, "SELECT 'after'");
	double elapsed = fixture_now() - t0;
	ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR, "the query ran: %s",
		      PQresStatus(PQresultStatus(r)));
	ck_assert_str_eq(fixture_sqlstate(r), "08006");
	PQclear(r);
	ck_assert_msg(elapsed >= 0.9 && elapsed <= 1.0 + FAULTS_SLACK_S,
		      "failed after %.2f s, server_connect_timeout is 1 s", elapsed);
	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);

	/* Pointed back at the primary, the same session works again. */
	snprintf(databases, sizeof(databases), "%s\nmoving = host=127.0.0.1 port=%d dbname=%s",
		 primary_alias, fixture_primary_port(), FIXTURE_DB);
	ck_assert(sluice_rewrite(s, global, databases));
	sluice_signal(s, SIGHUP);
	double deadline = fixture_now() + 5.0;
	bool back = false;
	while (!back && fixture_now() < deadline) {
		faults_sleep(0.3);
		r = PQexec(c, "SELECT 'back'");
		back = PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
	}
	ck_assert_msg(back, "the session never worked again: %s", PQerrorMessage(c));
	PQfinish(c);
	sluice_stop_clean(s);
	close(lfd);
}
END_TEST

/* ---- 3b. a server that dies right after an answer ---- */

/*
 * One message a fake server reads into buf (its type byte first when typed),
 * within 10 s; its whole size, or 0 when the peer went or it does not fit.
 */
static size_t faults_fake_read(int fd, bool typed, unsigned char *buf, size_t cap)
{
	struct faults_msg m = { 0 };
	double deadline = fixture_now() + 10.0;
	size_t head = typed ? 5 : 4;
	if (!faults_read_full(fd, buf, head, deadline, &m))
		return 0;
	const unsigned char *l = buf + head - 4;
	uint32_t len = (uint32_t)l[0] << 24 | (uint32_t)l[1] << 16 | (uint32_t)l[2] << 8 | l[3];
	if (len < 4 || head + len - 4 > cap ||
	    !faults_read_full(fd, buf + head, len - 4, deadline, &m))
		return 0;
	return head + len - 4;
}

static void faults_put_msg(unsigned char *out, size_t *n, char type, const void *body,
			   size_t len)
{
	out[(*n)++] = (unsigned char)type;
	faults_put_u32(out + *n, (uint32_t)(len + 4));
	memcpy(out + *n + 4, body, len);
	*n += 4 + len;
}

/*
 * Just enough of a server: a trust login, then "SELECT 0" for every Query; a
 * Query that mentions "die" gets that answer, ReadyForQuery and a FATAL error
 * in one write, as a server terminated right after answering sends them.
 */
static void faults_dying_session(int fd)
{
	unsigned char in[8192], out[1024];
	size_t n = faults_fake_read(fd, false, in, sizeof(in));
	if (n < 8)
		return;
	size_t o = 0;
	static const unsigned char auth_ok[4] = { 0 }, key[8] = { 0, 0, 0, 7, 0, 0, 0, 9 };
	static const char params[] = "server_version\0" "15.0\0" "client_encoding\0" "UTF8\0"
				     "standard_conforming_strings\0" "on\0" "integer_datetimes\0"
				     "on\0" "DateStyle\0" "ISO, MDY\0" "TimeZone\0" "UTC\0";
	faults_put_msg(out, &o, 'R', auth_ok, sizeof(auth_ok));
	for (const char *p = params; *p != '\0'; p += strlen(p) + 1) {
		const char *v = p + strlen(p) + 1;
		faults_put_msg(out, &o, 'S', p, (size_t)(v + strlen(v) + 1 - p));
		p = v;
	}
	faults_put_msg(out, &o, 'K', key, sizeof(key));
	faults_put_msg(out, &o, 'Z', "I", 1);
	if (!faults_try_send_all(fd, out, o))
		return;
	static const char fatal[] = "SFATAL\0VFATAL\0C57P01\0"
				    "Mterminating connection due to administrator command\0";
	while ((n = faults_fake_read(fd, true, in, sizeof(in))) > 0 && in[0] != 'X') {
		if (in[0] != 'Q' && in[0] != 'S')
			continue;
		bool die = in[0] == 'Q' && memmem(in + 5, n - 5, "die", 3) != NULL;
		o = 0;
		if (in[0] == 'Q')
			faults_put_msg(out, &o, 'C', "SELECT 0", 9);
		faults_put_msg(out, &o, 'Z', "I", 1);
		if (die)
			faults_put_msg(out, &o, 'E', fatal, sizeof(fatal));
		if (!faults_try_send_all(fd, out, o) || die)
			return;
	}
}

struct faults_dying {
	int lfd;
	volatile bool stop;
	volatile int sessions;
};

static void *faults_dying_run(void *arg)
{
	struct faults_dying *d = arg;
	while (!d->stop) {
		struct pollfd p = { .fd = d->lfd, .events = POLLIN };
		if (poll(&p, 1, 100) <= 0)
			continue;
		int fd = accept(d->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		d->sessions++;
		faults_dying_session(fd);
		close(fd);
	}
	return NULL;
}

static void faults_count_notice(void *arg, const PGresult *r)
{
	(void)r;
	(*(int *)arg)++;
}

/*
 * Under transaction pooling a server terminated after it answered (its FATAL
 * right behind its ReadyForQuery) was the client's server no more: the client
 * hears nothing of it and its next query gets another server.
 */
START_TEST(server_terminated_after_its_answer_costs_the_client_nothing)
{
	struct faults_dying d = { 0 };
	int port;
	d.lfd = faults_silent_server(&port);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, faults_dying_run, &d), 0);
	char databases[128];
	snprintf(databases, sizeof(databases), "dying = host=127.0.0.1 port=%d dbname=fake", port);
	struct sluice *s = faults_start("pool_mode = transaction\nserver_reset_query =", databases);
	PGconn *c = fixture_connect_ok(s->port, "dying", FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	int notices = 0;
	PQsetNoticeReceiver(c, faults_count_notice, &notices);
	for (int i = 0; i < 3; i++) {
		PGresult *r = PQexec(c, "SELECT 'die'");
		ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "query %d: %s", i,
			      PQerrorMessage(c));
		PQclear(r);
		ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	}
	/* Nothing more arrived: no FATAL, no closed connection. */
	faults_sleep(0.3);
	ck_assert_int_eq(PQconsumeInput(c), 1);
	ck_assert_int_eq(notices, 0);
	ck_assert_ptr_null(PQnotifies(c));
	PGresult *r = PQexec(c, "SELECT 'still here'");
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
	PQclear(r);
	ck_assert_int_ge(d.sessions, 3);
	PQfinish(c);
	sluice_stop_clean(s);
	d.stop = true;
	pthread_join(t, NULL);
	close(d.lfd);
}
END_TEST

/* ---- 4. a slow server ---- */

START_TEST(slow_query_neither_delays_others_nor_outlives_query_timeout)
{
	struct sluice *s = faults_start("pool_mode = transaction\n"
					"default_pool_size = 2\n"
					"query_timeout = 1s",
					NULL);
	PGconn *slow = faults_connect(s);
	PGconn *fast = faults_connect(s);
	faults_assert_value(fast, "SELECT 'warm'", "warm");
	double t0 = fixture_now();
	ck_assert_int_eq(PQsendQuery(slow, "SELECT pg_sleep(5)"), 1);
	faults_sleep(0.1);
	for (int i = 0; i < 10; i++) {
		double took = faults_timed_value(fast, "SELECT 1", "1");
		ck_assert_msg(took < FAULTS_FAST_QUERY_S,
			      "SELECT 1 took %.2f s beside a slow query", took);
	}
	ck_assert_msg(PQisBusy(slow) || fixture_now() - t0 < 1.0,
		      "the slow query ended before the fast ones were done");
	PGresult *r = PQgetResult(slow);
	double elapsed = fixture_now() - t0;
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	ck_assert_str_eq(fixture_sqlstate(r), "57014");
	PQclear(r);
	while ((r = PQgetResult(slow)) != NULL)
		PQclear(r);
	ck_assert_msg(elapsed >= 0.9 && elapsed <= 1.0 + FAULTS_SLACK_S,
		      "canceled after %.2f s, query_timeout is 1 s", elapsed);
	faults_assert_value(slow, "SELECT 'usable'", "usable");
	char *log = sluice_log(s);
	ck_assert_msg(strstr(log, "query_timeout: cancelling its query") != NULL,
		      "the cancel was not logged:\n%s", log);
	free(log);
	PQfinish(slow);
	PQfinish(fast);
	sluice_stop_clean(s);
}
END_TEST

/* ---- 5. clients that stall ---- */

START_TEST(half_a_startup_packet_is_closed_after_client_login_timeout)
{
	struct sluice *s = faults_start("client_login_timeout = 1s", NULL);
	PGconn *good = faults_connect(s);
	int fd = faults_raw_connect(s->port);
	/* A length of 40 and the protocol version; the rest never comes. */
	static const unsigned char half[] = { 0, 0, 0, 40, 0, 3, 0, 0, 'u', 's' };
	faults_send_all(fd, half, sizeof(half));
	double t0 = fixture_now();
	struct faults_msg m = faults_read_error(fd, t0 + 1.0 + 5.0);
	double elapsed = fixture_now() - t0;
	ck_assert_msg(m.type == 'E', "no ErrorResponse (closed %d, timed out %d after %.2f s)",
		      m.closed, m.timedout, elapsed);
	ck_assert_msg(strcmp(m.sqlstate, "08P01") == 0, "%s %s: %s", m.severity, m.sqlstate,
		      m.message);
	ck_assert_str_eq(m.severity, "FATAL");
	ck_assert_msg(strncmp(m.message, "client_login_timeout", 20) == 0, "message: %s",
		      m.message);
	ck_assert_msg(faults_wait_closed(fd, fixture_now() + 2.0), "still open after the error");
	ck_assert_msg(elapsed >= 0.9 && elapsed <= 1.0 + FAULTS_SLACK_S,
		      "closed after %.2f s, client_login_timeout is 1 s", elapsed);
	close(fd);
	faults_assert_value(good, "SELECT 'unaffected'", "unaffected");
	PQfinish(good);
	char *log = sluice_log(s);
	ck_assert_msg(strstr(log, "FATAL 08P01: client_login_timeout") != NULL, "log:\n%s", log);
	free(log);
	sluice_stop_clean(s);
}
END_TEST

/* Log in, send the first `sent` bytes of a Query of `total` bytes, and stall. */
static void faults_check_half_message(uint32_t total, size_t sent, const char *extra)
{
	char global[512];
	snprintf(global, sizeof(global),
		 "auth_type = trust\n"
		 "pool_mode = transaction\n"
		 "default_pool_size = 1\n"
		 "query_wait_timeout = 30s\n"
		 "client_idle_timeout = 1s\n%s",
		 extra);
	struct sluice *s = faults_start(global, NULL);
	int fd = faults_raw_login(s->port);
	unsigned char *msg = malloc(sent);
	ck_assert(msg != NULL);
	memset(msg, ' ', sent);
	msg[0] = 'Q';
	faults_put_u32(msg + 1, total - 1);
	memcpy(msg + 5, "SELECT", 6);
	faults_send_all(fd, msg, sent);
	free(msg);
	double t0 = fixture_now();
	struct faults_msg m = faults_read_error(fd, t0 + 1.0 + 5.0);
	double elapsed = fixture_now() - t0;
	ck_assert_msg(m.type == 'E',
		      "a client stalled mid-message (%u of %u bytes sent) was not closed: "
		      "closed %d, timed out %d after %.2f s",
		      (unsigned)sent, total, m.closed, m.timedout, elapsed);
	ck_assert_msg(strcmp(m.sqlstate, "57P05") == 0, "%s %s: %s", m.severity, m.sqlstate,
		      m.message);
	ck_assert_str_eq(m.severity, "FATAL");
	ck_assert_msg(faults_wait_closed(fd, fixture_now() + 2.0), "still open after the error");
	ck_assert_msg(elapsed >= 0.9 && elapsed <= 1.0 + FAULTS_SLACK_S,
		      "closed after %.2f s, the timeout is 1 s", elapsed);
	close(fd);
	/* The pool's only server is free for the next client. */
	int next = faults_raw_login(s->port);
	static const unsigned char q[] = { 'Q', 0,   0,   0,   13,  'S', 'E',
					   'L', 'E', 'C', 'T', ' ', '1', 0 };
	faults_send_all(next, q, sizeof(q));
	double deadline = fixture_now() + 3.0;
	struct faults_msg r;
	do {
		r = faults_read_msg(next, deadline);
	} while (r.type != '\0' && r.type != 'Z' && r.type != 'E');
	ck_assert_msg(r.type == 'Z', "the next client's query did not complete (got '%c' %s)",
		      r.type != '\0' ? r.type : '-', r.sqlstate);
	close(next);
	sluice_stop_clean(s);
}

START_TEST(half_a_small_message_is_closed_after_client_idle_timeout)
{
	faults_check_half_message(101, 50, "");
}
END_TEST

START_TEST(half_a_large_message_is_closed_after_client_stall_timeout)
{
	/* Larger than pkt_buf: pgsluice streams it to a server before it is complete. */
	faults_check_half_message(1024 * 1024, 32768, "pkt_buf = 16kB\nclient_stall_timeout = 1s");
}
END_TEST

/* ---- 6. a client that stops reading ---- */

START_TEST(client_that_stops_reading_a_huge_result_leaves_memory_bounded)
{
	struct sluice *s = faults_start("pool_mode = transaction\ndefault_pool_size = 2", NULL);
	PGconn *su = fixture_connect_ok(fixture_primary_port(), FIXTURE_DB, "postgres", NULL, NULL);
	PGconn *reader = faults_connect(s);
	PGconn *other = faults_connect(s);
	faults_assert_value(other, "SELECT 'warm'", "warm");
	long pid_sql = 0;
	{
		char *v = fixture_value(reader, "SELECT pg_backend_pid()");
		pid_sql = strtol(v, NULL, 10);
		free(v);
	}
	long base_rss = faults_rss_kb(s);

	ck_assert_int_eq(PQsendQuery(reader, FAULTS_HUGE_SQL), 1);
	ck_assert_int_eq(PQflush(reader), 0);
	/* Never read: the socket buffers fill, pgsluice stops reading the server, the
	 * server blocks in ClientWrite. */
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "SELECT coalesce(max(wait_event), '') FROM pg_stat_activity WHERE pid = %ld",
		 pid_sql);
	double deadline = fixture_now() + 15.0;
	bool blocked = false;
	long max_rss = base_rss;
	while (!blocked && fixture_now() < deadline) {
		char *v = fixture_value(su, sql);
		blocked = strcmp(v, "ClientWrite") == 0;
		free(v);
		long rss = faults_rss_kb(s);
		if (rss > max_rss)
			max_rss = rss;
		faults_sleep(0.1);
	}
	ck_assert_msg(blocked, "the server never blocked writing the result");
	/* Blocked for a while, the daemon must not buffer what the client does not read. */
	for (int i = 0; i < 20; i++) {
		long rss = faults_rss_kb(s);
		if (rss > max_rss)
			max_rss = rss;
		faults_assert_value(su, sql, "ClientWrite");
		faults_sleep(0.1);
	}
	fprintf(stderr, "faults: slow reader: RSS %ld kB before, at most %ld kB while blocked\n",
		base_rss, max_rss);
	ck_assert_msg(max_rss - base_rss < FAULTS_SLOW_READER_RSS_KB,
		      "RSS grew by %ld kB while a client did not read", max_rss - base_rss);
	for (int i = 0; i < 5; i++) {
		double took = faults_timed_value(other, "SELECT 2", "2");
		ck_assert_msg(took < FAULTS_FAST_QUERY_S, "another client's query took %.2f s",
			      took);
	}
	/* The reader's client socket and its server socket are the two that must go. */
	int blocked_fds = faults_fd_count(s);

	/* Closing the reader ends the server's query and frees its descriptors. */
	PQfinish(reader);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE pid = %ld",
		 pid_sql);
	deadline = fixture_now() + 5.0;
	bool gone = false;
	while (!gone && fixture_now() < deadline) {
		char *v = fixture_value(su, sql);
		gone = strcmp(v, "0") == 0;
		free(v);
		if (!gone)
			faults_sleep(0.05);
	}
	ck_assert_msg(gone, "the backend of the vanished reader still runs");
	int fds = faults_wait_fds_at_most(s, blocked_fds - 2, 3.0);
	ck_assert_msg(fds <= blocked_fds - 2, "%d descriptors after the reader left, %d before",
		      fds, blocked_fds);
	faults_assert_value(other, "SELECT 3", "3");
	PQfinish(other);
	PQfinish(su);
	sluice_stop_clean(s);
}
END_TEST

/* ---- 7. slowloris ---- */

START_TEST(slowloris_beyond_max_client_conn_stays_bounded_and_expires)
{
	char global[256];
	snprintf(global, sizeof(global), "max_client_conn = %d\nclient_login_timeout = 2s",
		 FAULTS_LORIS_MAX_CLIENTS);
	struct sluice *s = faults_start(global, NULL);
	PGconn *warm = faults_connect(s);
	faults_assert_value(warm, "SELECT 1", "1");
	PQfinish(warm);
	int base_fds = faults_fd_count(s);
	enum { N = FAULTS_LORIS_MAX_CLIENTS + FAULTS_LORIS_EXTRA };
	static int fds[N];
	double t0 = fixture_now();
	for (int i = 0; i < N; i++) {
		fds[i] = faults_raw_connect(s->port);
		fcntl(fds[i], F_SETFL, O_NONBLOCK);
	}
	faults_sleep(0.5);
	int daemon_fds = faults_fd_count(s);
	/* Over the limit the daemon keeps at most REFUSING_MAX to tell them 53300 and closes
	 * the rest at once. */
	int bound = base_fds + FAULTS_LORIS_MAX_CLIENTS + FAULTS_LORIS_REFUSING_MAX;
	ck_assert_msg(daemon_fds <= bound, "%d descriptors with %d silent clients (bound %d)",
		      daemon_fds, N, bound);
	int closed_early = 0;
	for (int i = 0; i < N; i++)
		closed_early += faults_wait_closed(fds[i], fixture_now());
	ck_assert_msg(closed_early >= N - FAULTS_LORIS_MAX_CLIENTS - FAULTS_LORIS_REFUSING_MAX,
		      "only %d of %d connections over the limit closed at once", closed_early,
		      N - FAULTS_LORIS_MAX_CLIENTS);

	/* A real client meanwhile is turned away at once, not left hanging: every refusal
	 * slot is taken, so it is closed without a message (53300 would need a slot). */
	double t1 = fixture_now();
	struct faults_refusal f = faults_connect_failure(s->port, FAULTS_DB, 5.0);
	ck_assert_msg(f.failed, "a client was let in during the flood");
	ck_assert_msg(strcmp(f.sqlstate, "53300") == 0 ||
			      strstr(f.raw, "server closed the connection") != NULL,
		      "a client during the flood got: %s", f.raw);
	ck_assert_msg(fixture_now() - t1 < FAULTS_FAST_QUERY_S, "the refusal took %.2f s",
		      fixture_now() - t1);

	/* client_login_timeout ends every one of them. */
	int still_open = 0;
	for (int i = 0; i < N; i++)
		still_open += !faults_wait_closed(fds[i], t0 + 2.0 + 3.0);
	double elapsed = fixture_now() - t0;
	ck_assert_msg(still_open == 0, "%d connections open %.1f s after they connected",
		      still_open, elapsed);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	int fds_after = faults_wait_fds_at_most(s, base_fds, 3.0);
	ck_assert_msg(fds_after <= base_fds, "%d descriptors after the flood, %d before", fds_after,
		      base_fds);
	PGconn *c = faults_connect(s);
	faults_assert_value(c, "SELECT 'served'", "served");
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

/* ---- 8. connection churn ---- */

START_TEST(connection_churn_leaks_neither_descriptors_nor_memory)
{
	/* trust: SCRAM's key stretching would bound the rate, not pgsluice. */
	struct sluice *s = faults_start("auth_type = trust\n"
					"pool_mode = transaction\n"
					"default_pool_size = 4\n"
					"max_client_conn = 200\n"
					"log_connections = off\n"
					"log_disconnections = off",
					NULL);
	fixture_pgbench_init();
	char *out = malloc(FAULTS_SH_OUT);
	ck_assert(out != NULL);
	/* A short first run brings the pools and allocator to their steady size. */
	faults_assert_pgbench_clean(faults_pgbench(s, FAULTS_DB, "-C -S -c 8 -j 2 -T 2", out,
						   FAULTS_SH_OUT),
				    out);
	faults_sleep(0.3);
	long rss_before = faults_rss_kb(s);
	int fds_before = faults_fd_count(s);
	char args[128];
	snprintf(args, sizeof(args), "-C -S -c 8 -j 2 -T %d", FAULTS_CHURN_SECONDS);
	long done = faults_assert_pgbench_clean(faults_pgbench(s, FAULTS_DB, args, out,
							       FAULTS_SH_OUT),
						out);
	int fds_after = faults_wait_fds_at_most(s, fds_before + FAULTS_CHURN_FDS, 3.0);
	long rss_after = faults_rss_kb(s);
	fprintf(stderr,
		"faults: churn: %ld connections in %d s (%ld/s); RSS %ld -> %ld kB; fds %d -> %d\n",
		done, FAULTS_CHURN_SECONDS, done / FAULTS_CHURN_SECONDS, rss_before, rss_after,
		fds_before, fds_after);
	ck_assert_msg(done >= 300, "only %ld connections in %d s:\n%s", done,
		      FAULTS_CHURN_SECONDS, out);
	ck_assert_msg(fds_after <= fds_before + FAULTS_CHURN_FDS, "descriptors %d -> %d",
		      fds_before, fds_after);
	/* ASan's quarantine keeps freed memory: there the leak check at exit stands in. */
	if (!faults_daemon_has_asan(s))
		ck_assert_msg(rss_after - rss_before < FAULTS_CHURN_RSS_KB, "RSS %ld -> %ld kB",
			      rss_before, rss_after);
	free(out);
	sluice_stop_clean(s);
}
END_TEST

/* ---- 9. reload storm ---- */

struct faults_hupper {
	pid_t pid;
	struct sluice *s;
	volatile bool stop;
	int sent;
	int rewrite_failures;
};

/* SIGHUP every 100 ms; every other reload really changes the pool size. */
static void *faults_hupper_run(void *arg)
{
	struct faults_hupper *h = arg;
	while (!h->stop) {
		char global[256];
		snprintf(global, sizeof(global),
			 "pool_mode = transaction\ndefault_pool_size = %d\nmax_client_conn = 100",
			 h->sent % 2 == 0 ? 6 : 5);
		if (!sluice_rewrite(h->s, global, NULL))
			h->rewrite_failures++;
		if (kill(h->pid, SIGHUP) == 0)
			h->sent++;
		faults_sleep(FAULTS_HUP_INTERVAL_S);
	}
	return NULL;
}

static int faults_count(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

START_TEST(sighup_every_100_ms_under_load_fails_no_transaction)
{
	fixture_pgbench_init();
	/* Config rewrites carry no databases_extra: the default app entry is used. */
	struct sluice *s = sluice_start("pool_mode = transaction\ndefault_pool_size = 5\n"
					"max_client_conn = 100",
					NULL);
	struct faults_hupper h = { .pid = s->pid, .s = s };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, faults_hupper_run, &h), 0);
	char *out = malloc(FAULTS_SH_OUT);
	ck_assert(out != NULL);
	int rc = faults_pgbench(s, FIXTURE_DB, "-c 8 -j 2 -T 10", out, FAULTS_SH_OUT);
	h.stop = true;
	pthread_join(t, NULL);
	long done = faults_assert_pgbench_clean(rc, out);
	free(out);
	ck_assert_int_eq(h.rewrite_failures, 0);
	ck_assert_msg(h.sent >= 50, "only %d SIGHUPs sent", h.sent);
	char *log = sluice_log(s);
	int reloads = faults_count(log, "SIGHUP: reloading");
	int failed = faults_count(log, "reload failed");
	free(log);
	fprintf(stderr, "faults: reload storm: %ld transactions, %d SIGHUPs, %d reloads\n", done,
		h.sent, reloads);
	ck_assert_msg(reloads >= h.sent / 2, "%d reloads for %d SIGHUPs", reloads, h.sent);
	ck_assert_int_eq(failed, 0);
	PGconn *c = fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	faults_assert_value(c, "SELECT 'alive'", "alive");
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

/* ---- 10. ten thousand idle clients ---- */

/* Raise this process's descriptor limit (inherited by the daemon); false when impossible. */
static bool faults_raise_nofile(rlim_t want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return false;
	if (rl.rlim_max < want) {
		/* Only a privileged process may raise the hard limit. */
		struct rlimit up = { .rlim_cur = want, .rlim_max = want };
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return true;
		return false;
	}
	rl.rlim_cur = rl.rlim_max;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

/* Open n connections with libpq, many in flight at once; returns the count that worked. */
static int faults_open_idle(int port, PGconn **conns, int n, double limit_s, char *err,
			    size_t errcap)
{
	char port_text[16];
	snprintf(port_text, sizeof(port_text), "%d", port);
	const char *keys[] = { "host", "port", "dbname", "user", NULL };
	const char *values[] = { "127.0.0.1", port_text, FAULTS_DB, FIXTURE_USER, NULL };
	enum { IN_FLIGHT = 64 };
	int started = 0, ok = 0, pending = 0;
	int slot[IN_FLIGHT];
	PostgresPollingStatusType st[IN_FLIGHT];
	double deadline = fixture_now() + limit_s;
	while ((started < n || pending > 0) && fixture_now() < deadline) {
		while (pending < IN_FLIGHT && started < n) {
			conns[started] = PQconnectStartParams(keys, values, 0);
			if (conns[started] == NULL || PQstatus(conns[started]) == CONNECTION_BAD) {
				PGconn *bad = conns[started];
				snprintf(err, errcap, "start %d: %s", started,
					 bad != NULL ? PQerrorMessage(bad) : "out of memory");
				return ok;
			}
			slot[pending] = started++;
			st[pending++] = PGRES_POLLING_WRITING;
		}
		struct pollfd pfd[IN_FLIGHT];
		for (int i = 0; i < pending; i++) {
			short events = st[i] == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			pfd[i] = (struct pollfd){ .fd = PQsocket(conns[slot[i]]),
						  .events = events };
		}
		poll(pfd, (nfds_t)pending, 100);
		for (int i = 0; i < pending; i++) {
			if (pfd[i].revents == 0)
				continue;
			st[i] = PQconnectPoll(conns[slot[i]]);
			if (st[i] == PGRES_POLLING_FAILED) {
				snprintf(err, errcap, "connection %d: %s", slot[i],
					 PQerrorMessage(conns[slot[i]]));
				return ok;
			}
			if (st[i] == PGRES_POLLING_OK) {
				ok++;
				slot[i] = slot[pending - 1];
				st[i] = st[pending - 1];
				pfd[i] = pfd[pending - 1];
				pending--;
				i--;
			}
		}
	}
	if (ok < n)
		snprintf(err, errcap, "%d of %d connected within %.0f s", ok, n, limit_s);
	return ok;
}

START_TEST(ten_thousand_idle_clients_cost_less_than_16_kB_each)
{
	if (!faults_raise_nofile(FAULTS_IDLE_NOFILE)) {
		struct rlimit rl;
		getrlimit(RLIMIT_NOFILE, &rl);
		fprintf(stderr,
			"faults: SKIPPED 10 000 idle clients: open-file hard limit %llu < %d\n",
			(unsigned long long)rl.rlim_max, FAULTS_IDLE_NOFILE);
		return;
	}
	/* trust: the test measures what an idle client costs, not 10 000 SCRAM exchanges. */
	struct sluice *s = faults_start("auth_type = trust\n"
					"pool_mode = transaction\n"
					"max_client_conn = 11000\n"
					"log_connections = off\n"
					"log_disconnections = off",
					NULL);
	PGconn *first = fixture_connect_ok(s->port, FAULTS_DB, FIXTURE_USER, NULL, NULL);
	faults_assert_value(first, "SELECT 'first'", "first");
	long rss_before = faults_rss_kb(s);
	int fds_before = faults_fd_count(s);

	PGconn **conns = calloc(FAULTS_IDLE_CLIENTS, sizeof(*conns));
	ck_assert(conns != NULL);
	char err[512] = "";
	double t0 = fixture_now();
	int ok = faults_open_idle(s->port, conns, FAULTS_IDLE_CLIENTS, FAULTS_IDLE_OPEN_S, err,
				  sizeof(err));
	double took = fixture_now() - t0;
	ck_assert_msg(ok == FAULTS_IDLE_CLIENTS, "%d idle clients connected: %s", ok, err);
	faults_sleep(0.5);
	long rss_after = faults_rss_kb(s);
	int fds_idle = faults_fd_count(s);
	long per_client = (rss_after - rss_before) * 1024 / FAULTS_IDLE_CLIENTS;
	fprintf(stderr,
		"faults: %d idle clients in %.1f s: RSS %ld -> %ld kB, %ld bytes per client\n",
		FAULTS_IDLE_CLIENTS, took, rss_before, rss_after, per_client);
	ck_assert_msg(fds_idle >= fds_before + FAULTS_IDLE_CLIENTS, "%d descriptors for %d clients",
		      fds_idle - fds_before, FAULTS_IDLE_CLIENTS);
	long ceiling = faults_daemon_has_asan(s) ? FAULTS_IDLE_BYTES_PER_CLIENT_ASAN
						 : FAULTS_IDLE_BYTES_PER_CLIENT;
	ck_assert_msg(per_client < ceiling, "%ld bytes per idle client, ceiling %ld", per_client,
		      ceiling);
	faults_assert_value(first, "SELECT 'beside them'", "beside them");

	for (int i = 0; i < FAULTS_IDLE_CLIENTS; i++)
		PQfinish(conns[i]);
	free(conns);
	int fds_after = faults_wait_fds_at_most(s, fds_before, 10.0);
	ck_assert_msg(fds_after <= fds_before, "%d descriptors after closing, %d before", fds_after,
		      fds_before);
	PGconn *c = fixture_connect_ok(s->port, FAULTS_DB, FIXTURE_USER, NULL, NULL);
	faults_assert_value(c, "SELECT 'after'", "after");
	PQfinish(c);
	PQfinish(first);
	sluice_stop_clean(s);
}
END_TEST

/* ---- 1. the primary crashes under load (last: it restarts the cluster) ---- */

START_TEST(primary_crash_under_load_errors_cleanly_and_recovers)
{
	fixture_pgbench_init();
	struct sluice *s = faults_start("pool_mode = transaction\n"
					"default_pool_size = 8\n"
					"server_connect_timeout = 2s\n"
					"server_login_retry = 200ms\n"
					"query_wait_timeout = 5s",
					NULL);
	char result[320];
	snprintf(result, sizeof(result), "%s/pgbench.out", s->dir);
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
		 "(PGPASSWORD='%s' '%s/pgbench' -h 127.0.0.1 -p %d -U %s -c 8 -j 2 -T %d %s; "
		 "echo \"pgbench-exit=$?\") >%s 2>&1 &",
		 FIXTURE_PASSWORD, fixture_pg_bindir(), s->port, FIXTURE_USER,
		 FAULTS_CRASH_PGBENCH_S, FAULTS_DB, result);
	double t0 = fixture_now();
	ck_assert_int_eq(fixture_sh(cmd, NULL, 0), 0);
	faults_sleep(3.0);

	char out[4096];
	int rc = faults_pg_ctl("primary", "-m immediate -w stop", out, sizeof(out));
	ck_assert_msg(rc == 0, "pg_ctl stop: %s", out);
	faults_sleep(FAULTS_CRASH_DOWN_S);
	rc = faults_pg_ctl("primary", "-w -t 60 start", out, sizeof(out));
	ck_assert_msg(rc == 0, "pg_ctl start: %s", out);

	/* pgbench ends by itself: errors, not a hang. */
	char *text = malloc(FAULTS_SH_OUT);
	ck_assert(text != NULL);
	double deadline = t0 + FAULTS_CRASH_PGBENCH_S + FAULTS_CRASH_EXIT_BOUND_S;
	const char *exit_line = NULL;
	while (exit_line == NULL && fixture_now() < deadline) {
		faults_sleep(0.2);
		FILE *f = fopen(result, "r");
		size_t len = f != NULL ? fread(text, 1, FAULTS_SH_OUT - 1, f) : 0;
		if (f != NULL)
			fclose(f);
		text[len] = '\0';
		exit_line = strstr(text, "pgbench-exit=");
	}
	double ended = fixture_now() - t0;
	ck_assert_msg(exit_line != NULL, "pgbench still ran %.0f s after it started:\n%s", ended,
		      text);
	int exit_code = atoi(exit_line + strlen("pgbench-exit="));
	fprintf(stderr, "faults: primary crash: pgbench exited %d after %.1f s\n", exit_code,
		ended);
	/* 0: every client got through (possible if none was mid-transaction); 2: clients
	 * aborted on the errors the crash caused. Never a signal or a usage error. */
	ck_assert_msg(exit_code == 0 || exit_code == 2, "pgbench exited with %d:\n%s", exit_code,
		      text);
	if (exit_code == 2)
		ck_assert_msg(strstr(text, "server connection was lost") != NULL ||
				      strstr(text, "terminating connection") != NULL ||
				      strstr(text, "could not connect") != NULL ||
				      strstr(text, "server connection failed") != NULL,
			      "pgbench's clients aborted without a server error:\n%s", text);
	free(text);

	/* The same daemon serves again, from the primary. */
	PGconn *c = NULL;
	bool served = false;
	deadline = fixture_now() + 15.0;
	while (!served && fixture_now() < deadline) {
		PQfinish(c);
		c = fixture_connect(s->port, FAULTS_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
		if (PQstatus(c) == CONNECTION_OK) {
			PGresult *r =
				PQexec(c, "SELECT 1, inet_server_port(), pg_is_in_recovery()");
			if (PQresultStatus(r) == PGRES_TUPLES_OK) {
				char port[16];
				snprintf(port, sizeof(port), "%d", fixture_primary_port());
				ck_assert_str_eq(PQgetvalue(r, 0, 0), "1");
				ck_assert_str_eq(PQgetvalue(r, 0, 1), port);
				ck_assert_str_eq(PQgetvalue(r, 0, 2), "f");
				served = true;
			}
			PQclear(r);
		}
		if (!served)
			faults_sleep(0.2);
	}
	ck_assert_msg(served, "no query through pgsluice after the primary restarted: %s",
		      PQerrorMessage(c));
	PQfinish(c);
	char *log = sluice_log(s);
	ck_assert_msg(strstr(log, "server 127.0.0.1:") != NULL, "the loss was not logged:\n%s",
		      log);
	free(log);
	sluice_stop_clean(s);
	ck_assert_msg(faults_wait_streaming(60.0), "the replicas do not stream again");
}
END_TEST

/* ---- the suite ---- */

static TCase *faults_tcase(const char *name, double timeout, bool restores)
{
	TCase *tc = tcase_create(name);
	tcase_add_unchecked_fixture(tc, fixture_cluster_start,
				    restores ? faults_cluster_restore : NULL);
	tcase_set_timeout(tc, timeout);
	return tc;
}

Suite *faults_suite(void)
{
	Suite *s = suite_create("faults");

	TCase *tc = faults_tcase("servers", 120, true);
	tcase_add_test(tc, replica_killed_under_read_load_costs_no_client_an_error);
	tcase_add_test(tc, silent_server_fails_login_with_08006_within_server_connect_timeout);
	tcase_add_test(tc, silent_server_fails_a_query_with_08006_and_keeps_the_session);
	tcase_add_test(tc, server_terminated_after_its_answer_costs_the_client_nothing);
	tcase_add_test(tc, slow_query_neither_delays_others_nor_outlives_query_timeout);
	suite_add_tcase(s, tc);

	tc = faults_tcase("clients", 120, false);
	tcase_add_test(tc, half_a_startup_packet_is_closed_after_client_login_timeout);
	tcase_add_test(tc, half_a_small_message_is_closed_after_client_idle_timeout);
	tcase_add_test(tc, half_a_large_message_is_closed_after_client_stall_timeout);
	tcase_add_test(tc, client_that_stops_reading_a_huge_result_leaves_memory_bounded);
	tcase_add_test(tc, slowloris_beyond_max_client_conn_stays_bounded_and_expires);
	suite_add_tcase(s, tc);

	tc = faults_tcase("load", 180, false);
	tcase_add_test(tc, connection_churn_leaks_neither_descriptors_nor_memory);
	tcase_add_test(tc, sighup_every_100_ms_under_load_fails_no_transaction);
	tcase_add_test(tc, ten_thousand_idle_clients_cost_less_than_16_kB_each);
	suite_add_tcase(s, tc);

	tc = faults_tcase("primary_crash", 180, true);
	tcase_add_test(tc, primary_crash_under_load_errors_cleanly_and_recovers);
	suite_add_tcase(s, tc);
	return s;
}
