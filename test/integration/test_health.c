/*
 * test_health.c - health probes of the replicas through a running pgsluice:
 * a replica stopped with pg_ctl -m immediate is banned within about two
 * seconds and comes back after it restarts; a replica whose replay is paused
 * while the primary writes is banned for lag and comes back once replay
 * resumes. Bans are read from the daemon's log (each logged exactly once) and
 * from which server answers reads meanwhile. Every test leaves the shared
 * cluster as it found it; a teardown in the parent restores it even when a
 * test failed half-way. With PGSLUICE_TEST_DIRECT=1 only the cluster side
 * (the replica really down, the lag really past the threshold) is checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

#include "fixture.h"
#include "suites.h"

/* The probe settings the tests run with: fast enough to see a ban in seconds. */
#define HEALTH_GLOBAL                                                                              \
	"pool_mode = transaction\n"                                                                \
	"health_check_period = 200ms\n"                                                            \
	"health_check_timeout = 1s\n"                                                              \
	"health_check_user = " FIXTURE_USER "\n"                                                   \
	"replica_ban_time = 1s\n"                                                                  \
	"max_replica_lag_bytes = 1MB\n"
#define LAG_LIMIT_BYTES 1048576
/* How much the primary writes while a replica's replay is paused. */
#define FILLER_ROWS 4000

/*
 * Runs pg_ctl ACTION on replica i (0-based), as postgres when we are root.
 * The fixture's own replica helpers assert, which the parent's restore must not.
 */
static int replica_pg_ctl(int i, const char *action, char *out, size_t cap)
{
	char cmd[1024];
	const char *dir = fixture_tmpdir();
	snprintf(cmd, sizeof(cmd), "%s%s/pg_ctl -D %s/cluster/replica%d %s",
		 getuid() == 0 ? "runuser -u postgres -- " : "", fixture_pg_bindir(), dir, i + 1,
		 action);
	return fixture_sh(cmd, out, cap);
}

static bool replica_running(int i)
{
	return replica_pg_ctl(i, "status", NULL, 0) == 0;
}

static int replica_start(int i, char *out, size_t cap)
{
	char action[512];
	snprintf(action, sizeof(action), "-l %s/cluster/replica%d.log -w -t 60 start",
		 fixture_tmpdir(), i + 1);
	return replica_pg_ctl(i, action, out, cap);
}

/* A superuser connection straight to a server (postgres logs in by trust on 127.0.0.1). */
static PGconn *superuser_connect(int port)
{
	return fixture_connect(port, FIXTURE_DB, "postgres", NULL, NULL);
}

/*
 * Puts the cluster back as the tests found it: every replica running and
 * replaying. Runs in the parent after the test case, so it cannot assert.
 */
static void cluster_restore(void)
{
	for (int i = 0; i < fixture_replica_count(); i++) {
		char out[2048];
		if (!replica_running(i) && replica_start(i, out, sizeof(out)) != 0)
			fprintf(stderr, "test_health: could not restart replica %d:\n%s", i + 1,
				out);
		PGconn *c = superuser_connect(fixture_replica_port(i));
		if (PQstatus(c) == CONNECTION_OK)
			PQclear(PQexec(c, "SELECT pg_wal_replay_resume()"));
		else
			fprintf(stderr, "test_health: replica %d: %s", i + 1, PQerrorMessage(c));
		PQfinish(c);
	}
}

static int count_occurrences(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/*
 * Waits up to timeout_s for needle to appear in s's log. Returns the log
 * (malloc'd) and sets *found; on timeout the log is returned for the message.
 */
static char *wait_log(struct sluice *s, const char *needle, double timeout_s, bool *found)
{
	double deadline = fixture_now() + timeout_s;
	for (;;) {
		char *log = sluice_log(s);
		*found = strstr(log, needle) != NULL;
		if (*found || fixture_now() >= deadline)
			return log;
		free(log);
		usleep(50 * 1000);
	}
}

/* The port of the server that answers one read through pgsluice. */
static int read_port(PGconn *c)
{
	char *v = fixture_value(c, "SELECT inet_server_port()");
	int port = atoi(v);
	free(v);
	return port;
}

/* true when one of up to tries reads through c is answered by port. */
static bool some_read_reaches(PGconn *c, int port, int tries)
{
	for (int i = 0; i < tries; i++) {
		if (read_port(c) == port)
			return true;
	}
	return false;
}

START_TEST(stopped_replica_is_banned_and_returns_after_restart)
{
	int n = fixture_replica_count();
	ck_assert_msg(n >= 1, "needs a replica (PGSLUICE_TEST_REPLICAS >= 1)");
	int victim = n - 1;
	int port = fixture_replica_port(victim);
	bool direct = fixture_direct_mode();
	struct sluice *s = sluice_start(HEALTH_GLOBAL, NULL);
	PGconn *c = fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	if (!direct)
		ck_assert_msg(some_read_reaches(c, port, 4 * n),
			      "no read reached replica port %d before the stop", port);

	double stopped_at = fixture_now();
	fixture_replica_stop(victim);
	PGconn *gone = superuser_connect(port);
	ck_assert_msg(PQstatus(gone) == CONNECTION_BAD, "replica port %d still accepts", port);
	PQfinish(gone);

	char banned[128], back[128];
	snprintf(banned, sizeof(banned), "replica 127.0.0.1:%d of %s banned for 1s: ", port,
		 FIXTURE_DB);
	snprintf(back, sizeof(back), "replica 127.0.0.1:%d of %s back in rotation", port,
		 FIXTURE_DB);
	if (!direct) {
		bool found;
		char *log = wait_log(s, banned, 5.0, &found);
		double took = fixture_now() - stopped_at;
		ck_assert_msg(found, "no ban of port %d logged; log:\n%s", port, log);
		ck_assert_msg(took < 2.5, "the ban took %.2f s", took);
		free(log);
		/* Banned: reads go elsewhere and none of them fails. */
		for (int i = 0; i < 10; i++)
			ck_assert_int_ne(read_port(c), port);
	}

	fixture_replica_start(victim);
	PGconn *up = superuser_connect(port);
	ck_assert_msg(PQstatus(up) == CONNECTION_OK, "replica did not come back: %s",
		      PQerrorMessage(up));
	char *rec = fixture_value(up, "SELECT pg_is_in_recovery()");
	ck_assert_str_eq(rec, "t");
	free(rec);
	PQfinish(up);

	if (!direct) {
		bool found;
		char *log = wait_log(s, back, 30.0, &found);
		ck_assert_msg(found, "port %d not back in rotation; log:\n%s", port, log);
		/* Probes failed all the while it was down; the ban was logged once. */
		ck_assert_int_eq(count_occurrences(log, banned), 1);
		ck_assert_int_eq(count_occurrences(log, back), 1);
		free(log);
		ck_assert_msg(some_read_reaches(c, port, 4 * n),
			      "no read reached replica port %d after its restart", port);
	}
	PQfinish(c);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

/* The WAL bytes replica has still to replay of what primary has written. */
static long long replica_lag_bytes(PGconn *primary, PGconn *replica)
{
	char *lsn = fixture_value(primary, "SELECT pg_current_wal_lsn()");
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT pg_wal_lsn_diff('%s', pg_last_wal_replay_lsn())::bigint",
		 lsn);
	free(lsn);
	char *v = fixture_value(replica, sql);
	long long lag = atoll(v);
	free(v);
	return lag;
}

START_TEST(paused_replica_is_banned_for_lag_and_returns_after_resume)
{
	int n = fixture_replica_count();
	ck_assert_msg(n >= 1, "needs a replica (PGSLUICE_TEST_REPLICAS >= 1)");
	int victim = n - 1;
	int port = fixture_replica_port(victim);
	bool direct = fixture_direct_mode();
	struct sluice *s = sluice_start(HEALTH_GLOBAL, NULL);
	PGconn *c = fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	PGconn *primary = fixture_connect_ok(fixture_primary_port(), FIXTURE_DB, "postgres", NULL,
					     NULL);
	PGconn *replica = fixture_connect_ok(port, FIXTURE_DB, "postgres", NULL, NULL);

	PQclear(fixture_exec_ok(replica, "SELECT pg_wal_replay_pause()"));
	PQclear(fixture_exec_ok(primary, "DROP TABLE IF EXISTS health_filler"));
	PQclear(fixture_exec_ok(primary, "CREATE TABLE health_filler (x text)"));
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO health_filler SELECT repeat(md5(i::text), 32) "
		 "FROM generate_series(1, %d) i",
		 FILLER_ROWS);
	PQclear(fixture_exec_ok(primary, sql));
	long long lag = replica_lag_bytes(primary, replica);
	ck_assert_msg(lag > LAG_LIMIT_BYTES, "the paused replica lags only %lld bytes", lag);

	char banned[128], back[128];
	snprintf(banned, sizeof(banned), "replica 127.0.0.1:%d of %s banned for 1s: lag ", port,
		 FIXTURE_DB);
	snprintf(back, sizeof(back), "replica 127.0.0.1:%d of %s back in rotation", port,
		 FIXTURE_DB);
	if (!direct) {
		bool found;
		char *log = wait_log(s, banned, 5.0, &found);
		ck_assert_msg(found, "no lag ban of port %d logged; log:\n%s", port, log);
		long long logged = 0;
		char unit[32] = "";
		ck_assert_int_eq(sscanf(strstr(log, banned) + strlen(banned), "%lld %31s", &logged,
					unit),
				 2);
		ck_assert_str_eq(unit, "bytes");
		ck_assert_msg(logged > LAG_LIMIT_BYTES && logged <= lag,
			      "logged lag %lld, measured %lld", logged, lag);
		ck_assert_ptr_nonnull(strstr(log, "bytes > max_replica_lag_bytes"));
		free(log);
		for (int i = 0; i < 10; i++)
			ck_assert_int_ne(read_port(c), port);
	}

	PQclear(fixture_exec_ok(replica, "SELECT pg_wal_replay_resume()"));
	double deadline = fixture_now() + 30;
	while (replica_lag_bytes(primary, replica) > 0 && fixture_now() < deadline)
		usleep(50 * 1000);
	ck_assert_int_le(replica_lag_bytes(primary, replica), 0);
	if (!direct) {
		bool found;
		char *log = wait_log(s, back, 10.0, &found);
		ck_assert_msg(found, "port %d not back in rotation; log:\n%s", port, log);
		ck_assert_int_eq(count_occurrences(log, banned), 1);
		free(log);
		ck_assert_msg(some_read_reaches(c, port, 4 * n),
			      "no read reached replica port %d after replay resumed", port);
	}
	PQclear(fixture_exec_ok(primary, "DROP TABLE health_filler"));
	PQfinish(replica);
	PQfinish(primary);
	PQfinish(c);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

Suite *health_suite(void)
{
	Suite *s = suite_create("health");
	/* One test per case: the restore runs after each case, so that a test that
	 * failed half-way does not leave the next one a stopped or paused replica. */
	TCase *tc = tcase_create("replica_down");
	tcase_add_unchecked_fixture(tc, fixture_cluster_start, cluster_restore);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, stopped_replica_is_banned_and_returns_after_restart);
	suite_add_tcase(s, tc);
	tc = tcase_create("replica_lag");
	tcase_add_unchecked_fixture(tc, fixture_cluster_start, cluster_restore);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, paused_replica_is_banned_for_lag_and_returns_after_resume);
	suite_add_tcase(s, tc);
	return s;
}
