/*
 * test_deploy.c - several pgsluice processes on one port (so_reuseport): new
 * clients spread over both, a cancel that reaches the wrong process still
 * cancels, and a new process takes over the port while the old one drains
 * its clients under a pgbench load without a failed or lost transaction.
 * Also `pgsluice -d`: the command returns only once the daemon listens, or
 * fails itself when the daemon could not start.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "suites.h"

#define DEPLOY_CLIENTS 40
#define DEPLOY_CANCEL_ROUNDS 24
#define DEPLOY_SH_OUT 16384

/* Both processes of a group share these settings. */
#define DEPLOY_GROUP "so_reuseport = on\npool_mode = transaction\n"

static PGconn *deploy_connect(int port)
{
	return fixture_connect_ok(port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
}

/* The instance slot a BackendKeyData process id names (bits 24-29). */
static int deploy_slot(PGconn *c)
{
	return (PQbackendPID(c) >> 24) & 63;
}

/* How often needle occurs in s's log. */
static int deploy_log_count(struct sluice *s, const char *needle)
{
	char *log = sluice_log(s);
	int n = 0;
	for (const char *p = log; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	free(log);
	return n;
}

/* Runs SELECT pg_sleep(30) on c, cancels it with PQcancel through the shared
 * port, and requires the 57014 error within 5 s. */
static void deploy_cancel_sleep(PGconn *c)
{
	ck_assert_int_eq(PQsendQuery(c, "SELECT pg_sleep(30)"), 1);
	/* Let the query reach the server before it is canceled. */
	fixture_sleep(0.3);
	double t0 = fixture_now();
	PGcancel *cancel = PQgetCancel(c);
	char err[256];
	ck_assert_msg(PQcancel(cancel, err, sizeof(err)) == 1, "PQcancel: %s", err);
	PQfreeCancel(cancel);
	PGresult *r = PQgetResult(c);
	double took = fixture_now() - t0;
	ck_assert_msg(r != NULL && PQresultStatus(r) == PGRES_FATAL_ERROR,
		      "the sleep was not canceled: %s", PQerrorMessage(c));
	ck_assert_str_eq(fixture_sqlstate(r), "57014");
	ck_assert_msg(took < 5.0, "cancel took %.1f s", took);
	PQclear(r);
	while ((r = PQgetResult(c)) != NULL)
		PQclear(r);
}

START_TEST(two_processes_share_the_port_and_pass_on_cancels)
{
	if (fixture_direct_mode())
		return;
	struct sluice *a = sluice_start(DEPLOY_GROUP, NULL);
	struct sluice *b = sluice_start_on_port(a->port, DEPLOY_GROUP, NULL);
	ck_assert_int_eq(deploy_log_count(a, "instance slot 0 of port"), 1);
	ck_assert_int_eq(deploy_log_count(b, "instance slot 1 of port"), 1);

	/* New connections spread over both processes (the kernel hashes each). */
	PGconn *conns[DEPLOY_CLIENTS];
	int per_slot[2] = {0, 0};
	PGconn *on_a = NULL, *on_b = NULL;
	for (int i = 0; i < DEPLOY_CLIENTS; i++) {
		conns[i] = deploy_connect(a->port);
		int slot = deploy_slot(conns[i]);
		ck_assert_msg(slot == 0 || slot == 1, "unexpected slot %d", slot);
		per_slot[slot]++;
		if (slot == 0)
			on_a = conns[i];
		else
			on_b = conns[i];
		char *one = fixture_value(conns[i], "SELECT 1");
		ck_assert_str_eq(one, "1");
		free(one);
	}
	ck_assert_msg(per_slot[0] > 0 && per_slot[1] > 0, "clients on slot 0: %d, slot 1: %d",
		      per_slot[0], per_slot[1]);

	/*
	 * Each PQcancel opens a new connection to the port, which the kernel hands to
	 * either process: every one must cancel, and some must have reached the
	 * process that does not own the key (it passes them on).
	 */
	for (int round = 0; round < DEPLOY_CANCEL_ROUNDS; round++)
		deploy_cancel_sleep(round % 2 == 0 ? on_a : on_b);
	int passed_a = deploy_log_count(a, "cancel request passed on to pgsluice instance 1");
	int passed_b = deploy_log_count(b, "cancel request passed on to pgsluice instance 0");
	ck_assert_msg(passed_a + passed_b > 0,
		      "no cancel reached the wrong process in %d rounds", DEPLOY_CANCEL_ROUNDS);
	ck_assert_int_le(passed_a + passed_b, DEPLOY_CANCEL_ROUNDS);

	/* The connections still work after their queries were canceled. */
	for (int i = 0; i < DEPLOY_CLIENTS; i++) {
		char *one = fixture_value(conns[i], "SELECT 2");
		ck_assert_str_eq(one, "2");
		free(one);
		PQfinish(conns[i]);
	}
	ck_assert_int_eq(sluice_stop(b), 0);
	ck_assert_int_eq(sluice_stop(a), 0);
}
END_TEST

/* A pgbench run in a thread of its own. */
struct bench_run {
	pthread_t thread;
	char cmd[512];
	char out[DEPLOY_SH_OUT];
	int rc;
};

static void *bench_thread(void *arg)
{
	struct bench_run *run = arg;
	run->rc = fixture_sh(run->cmd, run->out, sizeof(run->out));
	return NULL;
}

static void bench_start(struct bench_run *run, int port, const char *args)
{
	snprintf(run->cmd, sizeof(run->cmd),
		 "PGPASSWORD='%s' '%s/pgbench' -h 127.0.0.1 -p %d -U %s %s %s 2>&1",
		 FIXTURE_PASSWORD, fixture_pg_bindir(), port, FIXTURE_USER, args, FIXTURE_DB);
	ck_assert_int_eq(pthread_create(&run->thread, NULL, bench_thread, run), 0);
}

/* Waits for the run; requires a clean one and returns its transaction count. */
static long bench_finish_clean(struct bench_run *run)
{
	pthread_join(run->thread, NULL);
	ck_assert_msg(run->rc == 0, "pgbench exited with %d:\n%s", run->rc, run->out);
	const char *key = "number of transactions actually processed: ";
	const char *p = strstr(run->out, key);
	ck_assert_msg(p != NULL, "no transaction count in:\n%s", run->out);
	long done = strtol(p + strlen(key), NULL, 10);
	ck_assert_msg(done > 0, "no transactions processed:\n%s", run->out);
	ck_assert_msg(strstr(run->out, "number of failed transactions: 0 ") != NULL,
		      "failed transactions:\n%s", run->out);
	return done;
}

START_TEST(new_process_takes_over_while_the_old_one_drains)
{
	if (fixture_direct_mode())
		return;
	const char *group = DEPLOY_GROUP "shutdown_drain = clients\nshutdown_timeout = 60s\n";
	struct sluice *old = sluice_start(group, NULL);
	struct bench_run init = {0};
	bench_start(&init, old->port, "-i -s 1 -q");
	pthread_join(init.thread, NULL);
	ck_assert_msg(init.rc == 0, "pgbench -i: %d\n%s", init.rc, init.out);
	PGconn *c = deploy_connect(old->port);
	PQclear(fixture_exec_ok(c, "TRUNCATE pgbench_history"));
	PQfinish(c);

	/* Clients of the old process keep running through the takeover. -n: pgbench
	 * must not truncate pgbench_history under the other run. */
	static struct bench_run before, after;
	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	bench_start(&before, old->port, "-n -c 8 -j 4 -T 12");
	fixture_sleep(3);
	struct sluice *new = sluice_start_on_port(old->port, group, NULL);
	sluice_signal(old, SIGTERM);
	fixture_sleep(0.5);
	ck_assert_int_eq(deploy_log_count(old, "clients to disconnect"), 1);
	/* New clients can only reach the new process now. */
	bench_start(&after, old->port, "-n -c 8 -j 4 -T 6");
	long done_after = bench_finish_clean(&after);
	long done_before = bench_finish_clean(&before);
	ck_assert_int_eq(sluice_wait_exit(old, 20), 0);

	/* Every acknowledged transaction left its history row (counted on the primary:
	 * a replica may not have replayed the last ones yet). */
	char *rows = fixture_admin_value(fixture_primary_port(),
					 "SELECT count(*) FROM pgbench_history");
	ck_assert_int_eq(strtol(rows, NULL, 10), done_before + done_after);
	free(rows);
	ck_assert_int_eq(sluice_stop(new), 0);
}
END_TEST

/* Runs `pgsluice -d` on s's config file; returns its exit status, its output in out. */
static int deploy_daemonize(struct sluice *s, char *out, size_t cap)
{
	const char *bin = getenv("PGSLUICE_BIN");
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "'%s' -d '%s'", bin != NULL && bin[0] != '\0' ? bin : "./src/pgsluice",
		 s->conf_path);
	return fixture_sh(cmd, out, cap);
}

START_TEST(daemon_mode_returns_after_listening_or_failing)
{
	if (fixture_direct_mode())
		return;
	char extra[512];
	snprintf(extra, sizeof(extra), "pidfile = %s/deploy.pid\n", fixture_tmpdir());
	struct sluice *s = sluice_start(extra, NULL);
	/* The port is taken: the command itself must fail and say why (the fixture's
	 * config logs to standard error). */
	char out[4096];
	ck_assert_int_eq(deploy_daemonize(s, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "could not listen on 127.0.0.1:") != NULL, "output:\n%s", out);
	struct sluice copy = *s;
	ck_assert_int_eq(sluice_stop(s), 0);

	/* The port is free: when the command returns, the daemon already listens. */
	ck_assert_int_eq(deploy_daemonize(&copy, out, sizeof(out)), 0);
	PGconn *c = deploy_connect(copy.port);
	char *one = fixture_value(c, "SELECT 1");
	ck_assert_str_eq(one, "1");
	free(one);
	PQfinish(c);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "kill -INT $(cat '%s/deploy.pid') && sleep 1 && ! test -e '%s/deploy.pid'",
		 fixture_tmpdir(), fixture_tmpdir());
	ck_assert_int_eq(fixture_sh(cmd, out, sizeof(out)), 0);
}
END_TEST

Suite *deploy_suite(void)
{
	Suite *s = suite_create("deploy");
	TCase *tc = tcase_create("so_reuseport");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, two_processes_share_the_port_and_pass_on_cancels);
	tcase_add_test(tc, new_process_takes_over_while_the_old_one_drains);
	tcase_add_test(tc, daemon_mode_returns_after_listening_or_failing);
	suite_add_tcase(s, tc);
	return s;
}
