/*
 * test_prepared.c - named prepared statements under transaction pooling,
 * against the real primary and replicas: libpq PQprepare/PQexecPrepared
 * from many clients on a pool of two servers, statements prepared on a
 * replica on demand, the errors PostgreSQL gives (with the client's own
 * statement names), eviction from a server's cache, and pgbench -M prepared.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "suites.h"

#define PREPARED_CLIENTS 20
#define PREPARED_EXECUTIONS 25

static PGconn *prepared_connect(const struct sluice *s)
{
	return fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
}

/* PQprepare and require success. */
static void prepare_ok(PGconn *c, const char *name, const char *sql, int n, const Oid *types)
{
	PGresult *r = PQprepare(c, name, sql, n, types);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "prepare %s: %s", name,
		      PQerrorMessage(c));
	PQclear(r);
}

/* PQexecPrepared of one text parameter (NULL: none); returns the result. */
static PGresult *exec_prepared(PGconn *c, const char *name, const char *value)
{
	const char *v[1] = {value};
	return PQexecPrepared(c, name, value != NULL ? 1 : 0, v, NULL, NULL, 0);
}

struct herd {
	int port;
	pthread_mutex_t lock;
	int failures;
	char first_error[256];
	long pids[PREPARED_CLIENTS * PREPARED_EXECUTIONS];
	int n_pids;
};

static void herd_fail(struct herd *h, const char *what, PGconn *c)
{
	pthread_mutex_lock(&h->lock);
	if (h->failures++ == 0)
		snprintf(h->first_error, sizeof(h->first_error), "%s: %s", what,
			 PQerrorMessage(c));
	pthread_mutex_unlock(&h->lock);
}

static void *herd_client(void *arg)
{
	struct herd *h = arg;
	PGconn *c = fixture_connect(h->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	if (PQstatus(c) != CONNECTION_OK) {
		herd_fail(h, "connect", c);
		PQfinish(c);
		return NULL;
	}
	PGresult *r = PQprepare(c, "twice", "SELECT $1::int * 2, pg_backend_pid()", 0, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		herd_fail(h, "prepare", c);
	PQclear(r);
	for (int i = 0; i < PREPARED_EXECUTIONS; i++) {
		char text[16], want[16];
		snprintf(text, sizeof(text), "%d", i);
		snprintf(want, sizeof(want), "%d", 2 * i);
		r = exec_prepared(c, "twice", text);
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
		    strcmp(PQgetvalue(r, 0, 0), want) != 0) {
			herd_fail(h, "execute", c);
		} else {
			pthread_mutex_lock(&h->lock);
			h->pids[h->n_pids++] = atol(PQgetvalue(r, 0, 1));
			pthread_mutex_unlock(&h->lock);
		}
		PQclear(r);
	}
	PQfinish(c);
	return NULL;
}

static int distinct(const long *v, int n)
{
	int count = 0;
	for (int i = 0; i < n; i++) {
		int j = 0;
		while (j < i && v[j] != v[i])
			j++;
		count += j == i;
	}
	return count;
}

START_TEST(prepared_statements_follow_twenty_clients_across_two_servers)
{
	struct sluice *s = sluice_start("pool_mode = transaction\n"
					"default_pool_size = 2\n"
					"read_routing = off\n"
					"query_wait_timeout = 60s",
					NULL);
	struct herd h = {.port = s->port};
	pthread_mutex_init(&h.lock, NULL);
	pthread_t threads[PREPARED_CLIENTS];
	for (int i = 0; i < PREPARED_CLIENTS; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL, herd_client, &h), 0);
	for (int i = 0; i < PREPARED_CLIENTS; i++)
		pthread_join(threads[i], NULL);
	ck_assert_msg(h.failures == 0, "%d failures, first: %s", h.failures, h.first_error);
	ck_assert_int_eq(h.n_pids, PREPARED_CLIENTS * PREPARED_EXECUTIONS);
	int servers = distinct(h.pids, h.n_pids);
	if (!fixture_direct_mode())
		ck_assert_msg(servers == 2, "executions ran on %d server processes, pool is 2",
			      servers);
	pthread_mutex_destroy(&h.lock);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

static int port_of_result(PGresult *r)
{
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	int port = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return port;
}

START_TEST(prepared_reads_run_on_replicas_and_writes_on_the_primary)
{
	struct sluice *s = sluice_start("pool_mode = transaction\ndefault_pool_size = 4", NULL);
	PGconn *c = prepared_connect(s);
	PQclear(fixture_exec_ok(c, "DROP TABLE IF EXISTS pstmt_t"));
	PQclear(fixture_exec_ok(c, "CREATE TABLE pstmt_t (v int)"));
	prepare_ok(c, "where_am_i", "SELECT inet_server_port() WHERE $1::int > 0", 0, NULL);
	prepare_ok(c, "write_here", "INSERT INTO pstmt_t VALUES ($1) RETURNING inet_server_port()",
		   0, NULL);
	int replicas_seen = 0, primary = fixture_primary_port();
	for (int i = 0; i < 6; i++) {
		int port = port_of_result(exec_prepared(c, "where_am_i", "1"));
		if (!fixture_direct_mode())
			ck_assert_msg(port != primary, "a prepared read ran on the primary");
		replicas_seen += port != primary;
		ck_assert_int_eq(port_of_result(exec_prepared(c, "write_here", "7")), primary);
	}
	/* Counted on the primary: a replica may not have replayed the last insert yet. */
	PGconn *primary_conn = fixture_connect_ok(primary, FIXTURE_DB, "postgres", NULL, NULL);
	char *n = fixture_value(primary_conn, "SELECT count(*) FROM pstmt_t WHERE v = 7");
	ck_assert_str_eq(n, "6");
	free(n);
	PQfinish(primary_conn);
	PQclear(fixture_exec_ok(c, "DROP TABLE pstmt_t"));
	PQfinish(c);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

/* The SQLSTATE and message of a failed result, checked and cleared. */
static void expect_error(PGresult *r, const char *sqlstate, const char *message_part)
{
	ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR, "expected %s, got status %s",
		      sqlstate, PQresStatus(PQresultStatus(r)));
	ck_assert_str_eq(fixture_sqlstate(r), sqlstate);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	ck_assert_msg(msg != NULL && strstr(msg, message_part) != NULL, "message %s lacks %s",
		      msg != NULL ? msg : "(none)", message_part);
	ck_assert_msg(strstr(msg, "pgsluice_") == NULL, "pgsluice's name leaked: %s", msg);
	PQclear(r);
}

START_TEST(errors_are_postgresql_s_with_the_client_s_names)
{
	struct sluice *s = sluice_start("pool_mode = transaction\ndefault_pool_size = 2\n"
					"read_routing = off",
					NULL);
	PGconn *a = prepared_connect(s), *b = prepared_connect(s);
	/* The same text with other parameter types: two statements, each right for its client. */
	static const Oid int4[] = {23}, text[] = {25};
	prepare_ok(a, "same", "SELECT $1", 1, int4);
	prepare_ok(b, "same", "SELECT $1", 1, text);
	PGresult *r = exec_prepared(b, "same", "abc");
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "abc");
	PQclear(r);
	expect_error(exec_prepared(a, "same", "abc"), "22P02", "integer");
	r = exec_prepared(a, "same", "41");
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "41");
	PQclear(r);

	expect_error(PQprepare(a, "same", "SELECT 2", 0, NULL), "42P05",
		     "prepared statement \"same\" already exists");
	expect_error(exec_prepared(a, "missing", NULL), "26000",
		     "prepared statement \"missing\" does not exist");
	const char *two[2] = {"1", "2"};
	expect_error(PQexecPrepared(a, "same", 2, two, NULL, NULL, 0), "08P01",
		     "prepared statement \"same\" requires 1");
	expect_error(PQprepare(a, "broken", "SELEC 1", 0, NULL), "42601", "syntax error");
	/* A failed Parse leaves no statement behind, as on a direct connection. */
	expect_error(exec_prepared(a, "broken", NULL), "26000",
		     "prepared statement \"broken\" does not exist");
	prepare_ok(a, "broken", "SELECT 'fixed'", 0, NULL);
	r = exec_prepared(a, "broken", NULL);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "fixed");
	PQclear(r);
	/* Every error left the session usable. */
	char *v = fixture_value(a, "SELECT 'still here'");
	ck_assert_str_eq(v, "still here");
	free(v);
	PQfinish(a);
	PQfinish(b);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

START_TEST(a_full_server_cache_evicts_and_prepares_again)
{
	struct sluice *s = sluice_start("pool_mode = transaction\ndefault_pool_size = 1\n"
					"read_routing = off\nmax_prepared_statements = 3",
					NULL);
	PGconn *c = prepared_connect(s);
	char name[16], sql[64];
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		snprintf(sql, sizeof(sql), "SELECT %d", i);
		prepare_ok(c, name, sql, 0, NULL);
	}
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 10; i++) {
			char want[8];
			snprintf(name, sizeof(name), "s%d", i);
			snprintf(want, sizeof(want), "%d", i);
			PGresult *r = exec_prepared(c, name, NULL);
			ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", name,
				      PQresultErrorMessage(r));
			ck_assert_str_eq(PQgetvalue(r, 0, 0), want);
			PQclear(r);
		}
	}
	if (!fixture_direct_mode()) {
		char *n = fixture_value(c, "SELECT count(*) FROM pg_prepared_statements");
		ck_assert_msg(atoi(n) <= 3, "the server holds %s statements, at most 3 wanted", n);
		free(n);
	}
	PQfinish(c);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

START_TEST(pgbench_prepared_with_32_clients_has_no_errors)
{
	struct sluice *s = sluice_start("pool_mode = transaction\ndefault_pool_size = 8\n"
					"max_client_conn = 100\nquery_wait_timeout = 60s",
					NULL);
	char cmd[1024];
	char *out = malloc(1 << 16);
	ck_assert_ptr_nonnull(out);
	snprintf(cmd, sizeof(cmd),
		 "PGPASSWORD='%s' '%s/pgbench' -h 127.0.0.1 -p %d -U %s -i -s 1 -q %s",
		 FIXTURE_PASSWORD, fixture_pg_bindir(), fixture_primary_port(), FIXTURE_USER,
		 FIXTURE_DB);
	int rc = fixture_sh(cmd, out, 1 << 16);
	ck_assert_msg(rc == 0, "pgbench -i: %d\n%s", rc, out);
	/* One thread per client: pgbench's own PQprepare blocks its thread, which would
	 * otherwise wait for a server that another of its clients holds in a transaction. */
	snprintf(cmd, sizeof(cmd),
		 "PGPASSWORD='%s' '%s/pgbench' -h 127.0.0.1 -p %d -U %s -M prepared -c 32 -j 32 "
		 "-T 30 -n %s",
		 FIXTURE_PASSWORD, fixture_pg_bindir(), s->port, FIXTURE_USER, FIXTURE_DB);
	rc = fixture_sh(cmd, out, 1 << 16);
	ck_assert_msg(rc == 0, "pgbench exited with %d:\n%s", rc, out);
	ck_assert_msg(strstr(out, "query mode: prepared") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "number of failed transactions: 0 ") != NULL, "%s", out);
	const char *p = strstr(out, "number of transactions actually processed: ");
	ck_assert_msg(p != NULL && atol(p + 44) > 100, "too few transactions:\n%s", out);
	free(out);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

Suite *prepared_suite(void)
{
	Suite *s = suite_create("prepared");
	TCase *tc = tcase_create("transaction_pooling");
	tcase_add_unchecked_fixture(tc, fixture_cluster_start, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, prepared_statements_follow_twenty_clients_across_two_servers);
	tcase_add_test(tc, prepared_reads_run_on_replicas_and_writes_on_the_primary);
	tcase_add_test(tc, errors_are_postgresql_s_with_the_client_s_names);
	tcase_add_test(tc, a_full_server_cache_evicts_and_prepares_again);
	tcase_add_test(tc, pgbench_prepared_with_32_clients_has_no_errors);
	suite_add_tcase(s, tc);
	return s;
}
