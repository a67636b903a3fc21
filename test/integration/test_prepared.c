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

/*
 * PQprepare outside a transaction blocks its caller: pgbench runs many clients
 * on one thread, so one that waited for a server held by another of its
 * clients would stop them all. A statement some server already accepted is
 * prepared without a server; one that failed still goes to a server.
 */
START_TEST(a_known_statement_is_prepared_without_waiting_for_a_server)
{
	struct sluice *s = sluice_start("pool_mode = transaction\ndefault_pool_size = 1\n"
					"read_routing = off\nquery_wait_timeout = 2s",
					NULL);
	PGconn *a = prepared_connect(s), *b = prepared_connect(s);
	PQclear(fixture_exec_ok(a, "BEGIN"));
	prepare_ok(a, "plus", "SELECT $1::int + 1", 0, NULL);
	/* a holds the only server: waiting for it would end in query_wait_timeout. */
	prepare_ok(b, "plus_b", "SELECT $1::int + 1", 0, NULL);
	PGresult *r = exec_prepared(a, "plus", "1");
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "2");
	PQclear(r);
	PQclear(fixture_exec_ok(a, "COMMIT"));
	r = exec_prepared(b, "plus_b", "41");
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "42");
	PQclear(r);
	/* The name is b's now, as a server's Parse would have made it. */
	expect_error(PQprepare(b, "plus_b", "SELECT $1::int + 1", 0, NULL), "42P05",
		     "prepared statement \"plus_b\" already exists");

	/* A text PostgreSQL refused is refused again, at the Parse, for the next client. */
	expect_error(PQprepare(a, "bad", "SELEC $1", 0, NULL), "42601", "syntax error");
	expect_error(PQprepare(b, "bad", "SELEC $1", 0, NULL), "42601", "syntax error");
	expect_error(exec_prepared(b, "bad", "1"), "26000",
		     "prepared statement \"bad\" does not exist");
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
	fixture_pgbench_init();
	/* Two threads for 32 clients: pgbench's PQprepare blocks a thread and its other
	 * clients, which may hold every server in a transaction meanwhile. */
	snprintf(cmd, sizeof(cmd),
		 "PGPASSWORD='%s' '%s/pgbench' -h 127.0.0.1 -p %d -U %s -M prepared -c 32 -j 2 "
		 "-T 15 -n %s",
		 FIXTURE_PASSWORD, fixture_pg_bindir(), s->port, FIXTURE_USER, FIXTURE_DB);
	int rc = fixture_sh(cmd, out, 1 << 16);
	ck_assert_msg(rc == 0, "pgbench exited with %d:\n%s", rc, out);
	ck_assert_msg(strstr(out, "query mode: prepared") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "number of failed transactions: 0 ") != NULL, "%s", out);
	const char *p = strstr(out, "number of transactions actually processed: ");
	if (p == NULL || atol(p + 44) <= 100) {
		char *log = sluice_log(s);
		size_t len = strlen(log);
		ck_abort_msg("too few transactions:\n%s\npgsluice's log ends:\n%s", out,
			     len > 6000 ? log + len - 6000 : log);
	}
	free(out);
	sluice_stop_clean(s);
}
END_TEST

/* PQexec that must succeed with the command tag tag. */
static void exec_tag(PGconn *c, const char *sql, const char *tag)
{
	PGresult *r = fixture_exec_ok(c, sql);
	ck_assert_str_eq(PQcmdStatus(r), tag);
	PQclear(r);
}

/* PQexecPrepared of statement name with "1", returning its first cell (malloc'd). */
static char *exec_value(PGconn *c, const char *name, long *pid)
{
	PGresult *r = exec_prepared(c, name, "1");
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", name,
		      PQresultErrorMessage(r));
	char *v = strdup(PQgetvalue(r, 0, 0));
	if (pid != NULL)
		*pid = atol(PQgetvalue(r, 0, 1));
	PQclear(r);
	return v;
}

static long backend_pid(PGconn *c)
{
	char *v = fixture_value(c, "SELECT pg_backend_pid()");
	long pid = atol(v);
	free(v);
	return pid;
}

/*
 * Runs a's statement name on each server of a pool of two: b and d hold one server
 * each in a transaction and let one go at a time. Checks the value and returns the pids.
 */
static void exec_on_both_servers(PGconn *a, PGconn *b, PGconn *d, const char *name,
				 const char *want, long pids[2])
{
	PQclear(fixture_exec_ok(b, "BEGIN"));
	PQclear(fixture_exec_ok(d, "BEGIN"));
	long b_pid = backend_pid(b), d_pid = backend_pid(d);
	PQclear(fixture_exec_ok(b, "COMMIT"));
	char *v = exec_value(a, name, &pids[0]);
	ck_assert_str_eq(v, want);
	free(v);
	PQclear(fixture_exec_ok(b, "BEGIN"));
	PQclear(fixture_exec_ok(d, "COMMIT"));
	v = exec_value(a, name, &pids[1]);
	ck_assert_str_eq(v, want);
	free(v);
	PQclear(fixture_exec_ok(b, "COMMIT"));
	if (!fixture_direct_mode()) {
		ck_assert_int_eq(pids[0], b_pid);
		ck_assert_int_eq(pids[1], d_pid);
		ck_assert_int_ne(pids[0], pids[1]);
	}
}

START_TEST(deallocate_acts_on_the_client_s_own_statements)
{
	struct sluice *s = sluice_start("pool_mode = transaction\ndefault_pool_size = 2\n"
					"read_routing = off",
					NULL);
	PGconn *c = prepared_connect(s);
	prepare_ok(c, "d1", "SELECT 'first'::text WHERE $1::int > 0", 0, NULL);
	char *v = exec_value(c, "d1", NULL);
	ck_assert_str_eq(v, "first");
	free(v);
	exec_tag(c, "DEALLOCATE d1", "DEALLOCATE");
	expect_error(exec_prepared(c, "d1", "1"), "26000",
		     "prepared statement \"d1\" does not exist");
	/* The name is free again, for another text. */
	prepare_ok(c, "d1", "SELECT 'second'::text WHERE $1::int > 0", 0, NULL);
	v = exec_value(c, "d1", NULL);
	ck_assert_str_eq(v, "second");
	free(v);
	exec_tag(c, "DEALLOCATE PREPARE d1", "DEALLOCATE");
	expect_error(PQexec(c, "DEALLOCATE d1"), "26000",
		     "prepared statement \"d1\" does not exist");
	expect_error(PQexec(c, "DEALLOCATE never_prepared"), "26000",
		     "prepared statement \"never_prepared\" does not exist");

	/* Inside a transaction block, as PostgreSQL allows. */
	prepare_ok(c, "MixedCase", "SELECT 3", 0, NULL);
	PQclear(fixture_exec_ok(c, "BEGIN"));
	exec_tag(c, "DEALLOCATE \"MixedCase\"", "DEALLOCATE");
	ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_INTRANS);
	PQclear(fixture_exec_ok(c, "COMMIT"));
	expect_error(exec_prepared(c, "MixedCase", NULL), "26000", "\"MixedCase\" does not exist");

	prepare_ok(c, "a1", "SELECT 1", 0, NULL);
	prepare_ok(c, "a2", "SELECT 2", 0, NULL);
	exec_tag(c, "DEALLOCATE ALL", "DEALLOCATE ALL");
	expect_error(exec_prepared(c, "a1", NULL), "26000", "statement \"a1\" does not exist");
	expect_error(exec_prepared(c, "a2", NULL), "26000", "statement \"a2\" does not exist");
	prepare_ok(c, "a1", "SELECT 11", 0, NULL);
	PGresult *r = exec_prepared(c, "a1", NULL);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "11");
	PQclear(r);

	if (!fixture_direct_mode())
		expect_error(PQexec(c, "SELECT 1; DEALLOCATE a1"), "0A000",
			     "DEALLOCATE cannot be combined with other statements");
	v = fixture_value(c, "SELECT 'usable'");
	ck_assert_str_eq(v, "usable");
	free(v);
	PQfinish(c);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

START_TEST(discard_all_drops_statements_and_settings_on_every_server)
{
	struct sluice *s = sluice_start("pool_mode = transaction\ndefault_pool_size = 2\n"
					"read_routing = off\nquery_wait_timeout = 60s",
					NULL);
	PGconn *a = prepared_connect(s), *b = prepared_connect(s), *d = prepared_connect(s);
	long pids[2];
	prepare_ok(a, "x", "SELECT ($1::int + 100)::text, pg_backend_pid()", 0, NULL);
	exec_on_both_servers(a, b, d, "x", "101", pids);

	char *app = strdup(PQparameterStatus(a, "application_name"));
	char *path = fixture_value(a, "SHOW search_path");
	PQclear(fixture_exec_ok(a, "SET search_path = discard_schema, public"));
	PQclear(fixture_exec_ok(a, "SET application_name = 'discarding'"));
	ck_assert_str_eq(PQparameterStatus(a, "application_name"), "discarding");

	exec_tag(a, "DISCARD ALL", "DISCARD ALL");
	expect_error(exec_prepared(a, "x", "1"), "26000", "statement \"x\" does not exist");
	ck_assert_str_eq(PQparameterStatus(a, "application_name"), app);
	char *v = fixture_value(a, "SHOW search_path");
	ck_assert_str_eq(v, path);
	free(v);
	v = fixture_value(a, "SHOW application_name");
	ck_assert_str_eq(v, app);
	free(v);

	/* The same name with another text works on both servers. */
	prepare_ok(a, "x", "SELECT ($1::int + 200)::text, pg_backend_pid()", 0, NULL);
	exec_on_both_servers(a, b, d, "x", "201", pids);

	/* PostgreSQL refuses it in a transaction block; nothing is dropped then. */
	PQclear(fixture_exec_ok(a, "BEGIN"));
	expect_error(PQexec(a, "DISCARD ALL"), "25001",
		     "DISCARD ALL cannot run inside a transaction block");
	PQclear(fixture_exec_ok(a, "ROLLBACK"));
	v = exec_value(a, "x", NULL);
	ck_assert_str_eq(v, "201");
	free(v);
	free(app);
	free(path);
	PQfinish(a);
	PQfinish(b);
	PQfinish(d);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

START_TEST(sql_prepare_works_only_in_a_transaction_block)
{
	struct sluice *s = sluice_start("pool_mode = transaction\ndefault_pool_size = 1\n"
					"read_routing = off",
					NULL);
	PGconn *c = prepared_connect(s);
	if (!fixture_direct_mode()) {
		expect_error(PQexec(c, "PREPARE p AS SELECT 1"), "0A000",
			     "SQL PREPARE outside a transaction block is not supported under "
			     "transaction pooling");
		expect_error(PQexec(c, "PREPARE p AS SELECT 1; EXECUTE p"), "0A000", "PREPARE");
	}
	PQclear(fixture_exec_ok(c, "BEGIN"));
	PQclear(fixture_exec_ok(c, "PREPARE p (int) AS SELECT $1 + 1"));
	char *v = fixture_value(c, "EXECUTE p(41)");
	ck_assert_str_eq(v, "42");
	free(v);
	exec_tag(c, "DEALLOCATE p", "DEALLOCATE");
	PQclear(fixture_exec_ok(c, "COMMIT"));
	/* A statement left prepared does not follow the server to the next transaction. */
	v = fixture_value(c, "BEGIN; PREPARE q AS SELECT 7; EXECUTE q");
	ck_assert_str_eq(v, "7");
	free(v);
	PQclear(fixture_exec_ok(c, "COMMIT"));
	if (!fixture_direct_mode()) {
		PQclear(fixture_exec_ok(c, "BEGIN"));
		PQclear(fixture_exec_ok(c, "PREPARE q AS SELECT 8"));
		v = fixture_value(c, "EXECUTE q");
		ck_assert_str_eq(v, "8");
		free(v);
		PQclear(fixture_exec_ok(c, "COMMIT"));
	}
	PQfinish(c);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

START_TEST(session_state_is_refused_under_transaction_pooling)
{
	if (fixture_direct_mode())
		return;
	struct sluice *s = sluice_start("pool_mode = transaction\ndefault_pool_size = 1\n"
					"read_routing = off",
					NULL);
	PGconn *c = prepared_connect(s);
	expect_error(PQexec(c, "LISTEN jobs"), "0A000",
		     "LISTEN is not supported under transaction pooling");
	expect_error(PQexec(c, "SELECT pg_advisory_lock(42)"), "0A000",
		     "session-level advisory locks");
	expect_error(PQexec(c, "CREATE TEMP TABLE t (a int)"), "0A000", "temporary tables");
	PQclear(fixture_exec_ok(c, "BEGIN"));
	expect_error(PQexec(c, "DECLARE k CURSOR WITH HOLD FOR SELECT 1"), "0A000",
		     "cursors WITH HOLD");
	/* Transaction-level state is fine. */
	PQclear(fixture_exec_ok(c, "SELECT pg_advisory_xact_lock(42)"));
	PQclear(fixture_exec_ok(c, "COMMIT"));
	char *v = fixture_value(c, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'");
	ck_assert_str_eq(v, "0");
	free(v);
	PQfinish(c);
	ck_assert_int_eq(sluice_stop(s), 0);
}
END_TEST

START_TEST(pinned_clients_keep_listen_and_temp_tables)
{
	/* Two pinned clients and one that needs a server of its own. */
	struct sluice *s = sluice_start("pool_mode = transaction\ndefault_pool_size = 3\n"
					"read_routing = off\npin_on_session_state = on",
					NULL);
	PGconn *listener = prepared_connect(s), *other = prepared_connect(s);
	PQclear(fixture_exec_ok(listener, "LISTEN jobs"));
	long pid = backend_pid(listener);
	for (int i = 0; i < 5; i++) {
		/* Another client's transaction between the listener's statements. */
		PQclear(fixture_exec_ok(other, "SELECT 1"));
		ck_assert_int_eq(backend_pid(listener), pid);
	}
	PQclear(fixture_exec_ok(other, "NOTIFY jobs, 'hello'"));
	PGnotify *n = NULL;
	for (int i = 0; i < 50 && n == NULL; i++) {
		PQconsumeInput(listener);
		n = PQnotifies(listener);
		if (n == NULL)
			fixture_sleep(0.1);
	}
	ck_assert_msg(n != NULL, "no notification reached the listener");
	ck_assert_str_eq(n->relname, "jobs");
	ck_assert_str_eq(n->extra, "hello");
	PQfreemem(n);

	PGconn *temp = prepared_connect(s);
	PQclear(fixture_exec_ok(temp, "CREATE TEMP TABLE pinned_t (v int)"));
	PQclear(fixture_exec_ok(temp, "INSERT INTO pinned_t VALUES (5), (6)"));
	PQclear(fixture_exec_ok(other, "SELECT 2"));
	char *v = fixture_value(temp, "SELECT sum(v) FROM pinned_t");
	ck_assert_str_eq(v, "11");
	free(v);
	if (!fixture_direct_mode()) {
		char *log = sluice_log(s);
		ck_assert_msg(strstr(log, "pinned to its server connection") != NULL,
			      "no pin logged:\n%s", log);
		free(log);
	}
	PQfinish(temp);
	PQfinish(listener);
	PQfinish(other);
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
	tcase_add_test(tc, a_known_statement_is_prepared_without_waiting_for_a_server);
	tcase_add_test(tc, a_full_server_cache_evicts_and_prepares_again);
	tcase_add_test(tc, pgbench_prepared_with_32_clients_has_no_errors);
	tcase_add_test(tc, deallocate_acts_on_the_client_s_own_statements);
	tcase_add_test(tc, discard_all_drops_statements_and_settings_on_every_server);
	tcase_add_test(tc, sql_prepare_works_only_in_a_transaction_block);
	tcase_add_test(tc, session_state_is_refused_under_transaction_pooling);
	tcase_add_test(tc, pinned_clients_keep_listen_and_temp_tables);
	suite_add_tcase(s, tc);
	return s;
}
