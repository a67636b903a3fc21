/*
 * test_slowlog.c - slow statements against the real primary and replicas:
 * the JSON line (checked by PostgreSQL's own jsonb parser), the plan
 * captured on the server that ran the statement, bound parameters, EXPLAIN
 * that never runs a write twice, per-fingerprint rate limiting, log
 * rotation, SHOW SLOW_QUERIES / SHOW QUERIES, and captures under load.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "suites.h"

#define SLOW_GLOBALS                                                                               \
	"default_pool_size = 8\n"                                                                  \
	"health_check_period = 200ms\n"                                                            \
	"health_check_user = postgres\n"                                                           \
	"slow_query_explain_timeout = 5s\n"

/* The slow log of s. */
static void log_path(const struct sluice *s, char *out, size_t cap)
{
	snprintf(out, cap, "%s/slow.jsonl", s->dir);
}

/* Starts pgsluice with a slow log in its directory, threshold and extra settings. */
static struct sluice *slow_start(const char *threshold, const char *extra)
{
	char globals[2048], path[512];
	/* The directory is known only once started: start, then point the log into it. */
	struct sluice *s = sluice_start(SLOW_GLOBALS, NULL);
	log_path(s, path, sizeof(path));
	snprintf(globals, sizeof(globals), "%sslow_query_threshold = %s\nslow_query_log = %s\n%s",
		 SLOW_GLOBALS, threshold, path, extra != NULL ? extra : "");
	ck_assert(sluice_rewrite(s, globals, NULL));
	sluice_signal(s, SIGHUP);
	usleep(300 * 1000);
	return s;
}

/* The lines of a file (malloc'd array of malloc'd strings), *n of them. */
static char **read_lines(const char *path, size_t *n)
{
	*n = 0;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	char **lines = NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) > 0) {
		ck_assert_msg(line[len - 1] == '\n', "a line without its newline");
		line[len - 1] = '\0';
		lines = realloc(lines, (*n + 1) * sizeof(*lines));
		lines[(*n)++] = strdup(line);
	}
	free(line);
	fclose(f);
	return lines;
}

static void free_lines(char **lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

/* Waits up to 10 s for the log to hold at least want lines; returns them. */
static char **wait_lines(const struct sluice *s, size_t want, size_t *n)
{
	char path[512];
	log_path(s, path, sizeof(path));
	for (int i = 0; i < 100; i++) {
		char **lines = read_lines(path, n);
		if (*n >= want)
			return lines;
		free_lines(lines, *n);
		usleep(100 * 1000);
	}
	ck_abort_msg("the slow log %s never reached %zu lines", path, want);
	return NULL;
}

/* Evaluates expr over the JSON line bound as $1::jsonb on the primary (PostgreSQL parses it). */
static char *json_eval(const char *line, const char *expr)
{
	PGconn *c = fixture_connect_ok(fixture_primary_port(), FIXTURE_DB, FIXTURE_USER,
				       FIXTURE_PASSWORD, NULL);
	char sql[1024];
	snprintf(sql, sizeof(sql), "SELECT (%s)::text FROM (SELECT $1::jsonb AS j) s", expr);
	const char *params[] = {line};
	PGresult *r = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s on %s: %s", expr, line,
		      PQerrorMessage(c));
	char *v = strdup(PQgetisnull(r, 0, 0) ? "(null)" : PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return v;
}

static void json_expect(const char *line, const char *expr, const char *want)
{
	char *v = json_eval(line, expr);
	ck_assert_msg(strcmp(v, want) == 0, "%s = %s, want %s, in %s", expr, v, want, line);
	free(v);
}

static PGconn *connect_app(const struct sluice *s)
{
	return fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD,
				  "application_name=slowtest");
}

START_TEST(slow_read_on_a_replica_logs_one_line_with_its_plan)
{
	struct sluice *s = slow_start("300ms", NULL);
	PGconn *c = connect_app(s);
	PGresult *r = fixture_exec_ok(c, "SELECT pg_sleep(0.5), inet_server_port(), 'secret' AS s");
	char port[16];
	snprintf(port, sizeof(port), "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	PQclear(fixture_exec_ok(c, "SELECT 1")); /* fast: not logged */
	size_t n;
	char **lines = wait_lines(s, 1, &n);
	usleep(500 * 1000);
	free_lines(lines, n);
	lines = wait_lines(s, 1, &n);
	ck_assert_uint_eq(n, 1);
	const char *l = lines[0];
	json_expect(l, "j->>'role'", "replica");
	char server[64];
	snprintf(server, sizeof(server), "127.0.0.1:%s", port);
	json_expect(l, "j->>'server'", server);
	json_expect(l, "j->>'database'", FIXTURE_DB);
	json_expect(l, "j->>'user'", FIXTURE_USER);
	json_expect(l, "j->>'application_name'", "slowtest");
	json_expect(l, "(j->>'duration_ms')::float8 >= 500", "true");
	json_expect(l, "j->>'rows'", "1");
	json_expect(l, "j->'sqlstate'", "null");
	json_expect(l, "j->>'query'", "SELECT pg_sleep(?), inet_server_port(), ? AS s");
	json_expect(l, "j->>'normalized'", "select pg_sleep(?), inet_server_port(), ? as s");
	json_expect(l, "length(j->>'fingerprint')", "16");
	json_expect(l, "jsonb_typeof(j->'plan')", "array");
	json_expect(l, "j->'plan'->0->'Plan' IS NOT NULL", "true");
	json_expect(l, "j ? 'plan_skipped'", "false");
	/* Redacted in the texts; EXPLAIN VERBOSE itself shows constants in the plan. */
	json_expect(l, "strpos(j->>'query' || (j->>'normalized'), 'secret')", "0");
	free_lines(lines, n);
	PQfinish(c);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

START_TEST(extended_protocol_statement_is_explained_with_its_parameters)
{
	struct sluice *s = slow_start("300ms", "slow_query_log_parameters = on\n");
	PGconn *c = connect_app(s);
	const char *values[] = {"0.5", "4242"};
	PGresult *r = PQexecParams(c, "SELECT pg_sleep($1::float8), $2::int AS v", 2, NULL, values,
				   NULL, NULL, 0);
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	ck_assert_str_eq(PQgetvalue(r, 0, 1), "4242");
	PQclear(r);
	size_t n;
	char **lines = wait_lines(s, 1, &n);
	const char *l = lines[0];
	json_expect(l, "j->>'query'", "SELECT pg_sleep($1::float8), $2::int AS v");
	json_expect(l, "j->'parameters'", "[\"0.5\", \"4242\"]");
	json_expect(l, "j->'plan'->0->'Plan' IS NOT NULL", "true");
	/* A custom plan for the values: the constant shows in the output list. */
	json_expect(l, "(j->'plan')::text LIKE '%4242%'", "true");
	free_lines(lines, n);
	PQfinish(c);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

START_TEST(failed_slow_statement_logs_its_sqlstate_and_why_it_has_no_plan)
{
	/* Only this database is slow-logged, at its own threshold. */
	struct sluice *s = slow_start("0", NULL);
	char dbs[256], globals[2048], path[512];
	log_path(s, path, sizeof(path));
	snprintf(dbs, sizeof(dbs), "strict = host=127.0.0.1 port=%d dbname=%s slow_query_threshold=200ms\n",
		 fixture_primary_port(), FIXTURE_DB);
	snprintf(globals, sizeof(globals), "%sslow_query_threshold = 0\nslow_query_log = %s\n",
		 SLOW_GLOBALS, path);
	ck_assert(sluice_rewrite(s, globals, dbs));
	sluice_signal(s, SIGHUP);
	usleep(300 * 1000);
	PGconn *c = connect_app(s);
	PQclear(fixture_exec_ok(c, "SELECT pg_sleep(0.3)")); /* app: threshold 0 = off */
	PQfinish(c);
	c = fixture_connect_ok(s->port, "strict", FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	PGresult *r = PQexec(c, "SELECT 1 / ((pg_sleep(0.3)::text <> '')::int)");
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	ck_assert_str_eq(fixture_sqlstate(r), "22012");
	PQclear(r);
	size_t n;
	char **lines = wait_lines(s, 1, &n);
	usleep(300 * 1000);
	free_lines(lines, n);
	lines = wait_lines(s, 1, &n);
	ck_assert_uint_eq(n, 1);
	json_expect(lines[0], "j->>'database'", "strict");
	json_expect(lines[0], "j->>'sqlstate'", "22012");
	json_expect(lines[0], "j->'plan'", "null");
	json_expect(lines[0], "j->>'plan_skipped'", "the statement failed");
	free_lines(lines, n);
	PQfinish(c);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

START_TEST(analyze_mode_never_runs_a_write_twice)
{
	struct sluice *s = slow_start("300ms", "slow_query_explain = analyze\n");
	PGconn *c = connect_app(s);
	PQclear(fixture_exec_ok(c, "DROP TABLE IF EXISTS slow_once"));
	PQclear(fixture_exec_ok(c, "CREATE TABLE slow_once (id int PRIMARY KEY, n int)"));
	PQclear(fixture_exec_ok(c, "INSERT INTO slow_once VALUES (1, 0)"));
	PQclear(fixture_exec_ok(c, "UPDATE slow_once SET n = n + 1 "
				   "WHERE id = 1 AND pg_sleep(0.5) IS NOT NULL"));
	PQclear(fixture_exec_ok(c, "SELECT pg_sleep(0.5), count(*) FROM slow_once /* pgsluice: primary */"));
	size_t n;
	char **lines = wait_lines(s, 2, &n);
	/* Wait out the second capture. */
	usleep(1500 * 1000);
	free_lines(lines, n);
	lines = wait_lines(s, 2, &n);
	ck_assert_uint_eq(n, 2);
	const char *update = strstr(lines[0], "UPDATE") != NULL ? lines[0] : lines[1];
	const char *select = update == lines[0] ? lines[1] : lines[0];
	json_expect(update, "j->'plan'->0->'Plan'->>'Node Type'", "ModifyTable");
	json_expect(update, "(j->'plan')::text LIKE '%Actual Total Time%'", "false");
	json_expect(select, "(j->'plan')::text LIKE '%Actual Total Time%'", "true");
	char *v = fixture_value(c, "SELECT n FROM slow_once WHERE id = 1");
	ck_assert_str_eq(v, "1");
	free(v);
	free_lines(lines, n);
	PQfinish(c);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

START_TEST(fifty_identical_slow_statements_give_fifty_lines_and_one_explain)
{
	struct sluice *s = slow_start("10ms", NULL);
	PGconn *c = connect_app(s);
	for (int i = 0; i < 50; i++)
		PQclear(fixture_exec_ok(c, "SELECT pg_sleep(0.015) /* pgsluice: primary */"));
	size_t n;
	char **lines = wait_lines(s, 50, &n);
	usleep(1000 * 1000);
	free_lines(lines, n);
	lines = wait_lines(s, 50, &n);
	ck_assert_uint_eq(n, 50);
	int planned = 0, limited = 0;
	for (size_t i = 0; i < n; i++) {
		char *v = json_eval(lines[i], "j->'plan' <> 'null'::jsonb");
		planned += strcmp(v, "true") == 0;
		free(v);
		v = json_eval(lines[i], "j->>'plan_skipped'");
		limited += strcmp(v, "rate limited") == 0;
		free(v);
	}
	ck_assert_int_eq(planned, 1);
	ck_assert_int_eq(limited, 49);
	free_lines(lines, n);

	/* The console shows the ring and the fingerprint's statistics. */
	PGconn *adm = fixture_connect_ok(s->port, "pgsluice", FIXTURE_ADMIN_USER,
					 FIXTURE_ADMIN_PASSWORD, NULL);
	PGresult *r = fixture_exec_ok(adm, "SHOW SLOW_QUERIES");
	ck_assert_int_eq(PQntuples(r), 50);
	ck_assert_str_eq(PQgetvalue(r, 0, PQfnumber(r, "query")),
			 "SELECT pg_sleep(?) /* pgsluice: primary */");
	PQclear(r);
	r = fixture_exec_ok(adm, "SHOW QUERIES");
	int row = -1;
	for (int i = 0; i < PQntuples(r); i++)
		if (strcmp(PQgetvalue(r, i, PQfnumber(r, "query")), "select pg_sleep(?)") == 0)
			row = i;
	ck_assert_msg(row >= 0, "SHOW QUERIES has no row for select pg_sleep(?)");
	ck_assert_str_eq(PQgetvalue(r, row, PQfnumber(r, "calls")), "50");
	ck_assert_str_eq(PQgetvalue(r, row, PQfnumber(r, "errors")), "0");
	ck_assert_msg(atof(PQgetvalue(r, row, PQfnumber(r, "p95_ms"))) >= 14.0, "p95 %s",
		      PQgetvalue(r, row, PQfnumber(r, "p95_ms")));
	PQclear(r);
	PQfinish(adm);
	PQfinish(c);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

START_TEST(renamed_log_and_sighup_continue_in_a_new_file)
{
	struct sluice *s = slow_start("300ms", NULL);
	PGconn *c = connect_app(s);
	PQclear(fixture_exec_ok(c, "SELECT pg_sleep(0.4)"));
	size_t n;
	char **lines = wait_lines(s, 1, &n);
	free_lines(lines, n);
	char path[512], rotated[600];
	log_path(s, path, sizeof(path));
	snprintf(rotated, sizeof(rotated), "%s.1", path);
	ck_assert_int_eq(rename(path, rotated), 0);
	sluice_signal(s, SIGUSR2);
	usleep(300 * 1000);
	PQclear(fixture_exec_ok(c, "SELECT pg_sleep(0.4), 2"));
	lines = wait_lines(s, 1, &n);
	ck_assert_uint_eq(n, 1);
	json_expect(lines[0], "j->>'query'", "SELECT pg_sleep(?), ?");
	free_lines(lines, n);
	lines = read_lines(rotated, &n);
	ck_assert_uint_eq(n, 1);
	json_expect(lines[0], "j->>'query'", "SELECT pg_sleep(?)");
	free_lines(lines, n);
	PQfinish(c);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

START_TEST(explain_captures_under_load_cost_no_client_an_error)
{
	struct sluice *s = slow_start("1ms", "slow_query_explain_interval = 0\n");
	char script[600], cmd[2048], out[16384];
	snprintf(script, sizeof(script), "%s/slow.pgbench", s->dir);
	FILE *f = fopen(script, "w");
	ck_assert_ptr_nonnull(f);
	fputs("SELECT pg_sleep(0.002), :client_id AS c;\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "PGPASSWORD=%s %s/pgbench -n -h 127.0.0.1 -p %d -U %s -c 32 -j 2 -T 5 -f %s %s 2>&1",
		 FIXTURE_PASSWORD, fixture_pg_bindir(), s->port, FIXTURE_USER, script, FIXTURE_DB);
	int rc = fixture_sh(cmd, out, sizeof(out));
	ck_assert_msg(rc == 0, "pgbench failed (%d):\n%s", rc, out);
	const char *failed = strstr(out, "number of failed transactions: ");
	ck_assert_msg(failed == NULL || atol(failed + strlen("number of failed transactions: ")) == 0,
		      "%s", out);
	const char *done = strstr(out, "number of transactions actually processed: ");
	ck_assert_msg(done != NULL && atol(done + strlen("number of transactions actually processed: ")) > 100,
		      "%s", out);
	size_t n;
	char **lines = wait_lines(s, 100, &n);
	int planned = 0;
	for (size_t i = 0; i < n && i < 200; i++)
		planned += strstr(lines[i], "\"plan\":[") != NULL;
	ck_assert_msg(planned > 0, "no plan captured under load");
	free_lines(lines, n);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

Suite *slowlog_integration_suite(void)
{
	Suite *s = suite_create("slowlog");
	TCase *tc = tcase_create("slowlog");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, slow_read_on_a_replica_logs_one_line_with_its_plan);
	tcase_add_test(tc, extended_protocol_statement_is_explained_with_its_parameters);
	tcase_add_test(tc, failed_slow_statement_logs_its_sqlstate_and_why_it_has_no_plan);
	tcase_add_test(tc, analyze_mode_never_runs_a_write_twice);
	tcase_add_test(tc, fifty_identical_slow_statements_give_fifty_lines_and_one_explain);
	tcase_add_test(tc, renamed_log_and_sighup_continue_in_a_new_file);
	tcase_add_test(tc, explain_captures_under_load_cost_no_client_an_error);
	suite_add_tcase(s, tc);
	return s;
}
