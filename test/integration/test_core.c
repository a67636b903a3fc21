/*
 * test_core.c - the core black-box contract of pgsluice, checked through libpq, raw
 * sockets, psql and pgbench against a real primary: both query protocols in every
 * pool mode, pool bounds under load, timeouts and their SQLSTATEs, cleanup after
 * killed clients and servers, COPY and large values, cancel, authentication errors,
 * per-client startup parameters, malformed packets, reload and graceful shutdown.
 * Most tests connect to the alias app_primary (no replicas) so that the answering
 * server is known. With PGSLUICE_TEST_DIRECT=1 the same logic runs against the
 * primary itself; checks only a pooler can pass are skipped there.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>
#include <openssl/evp.h>

#include "fixture.h"
#include "suites.h"

/* The alias every test uses: the primary without replicas, so nothing is routed away. */
#define CORE_DB_ALIAS "app_primary"
/* bytea type OID, for a binary parameter. */
#define CORE_BYTEAOID 17
/* Room for pgbench's and psql's output. */
#define CORE_SH_OUT 65536
/* How long a connection attempt in connect_failure() may take. */
#define CORE_CONNECT_SECONDS 10.0
/* Rows in the COPY test. */
#define CORE_COPY_ROWS 100000
/* Size of the large value. */
#define CORE_BLOB_BYTES (50u * 1024 * 1024)
/* Concurrent clients in the herd test and its pool size. */
#define CORE_HERD_CLIENTS 200
#define CORE_HERD_POOL 5
#define CORE_HERD_QUERIES 5
/* Longest refusal message kept. */
#define CORE_MESSAGE_MAX 512

/* ---- helpers ---- */

static const char *core_db(void)
{
	return fixture_direct_mode() ? FIXTURE_DB : CORE_DB_ALIAS;
}

/* Start pgsluice in pool mode `mode` with the app_primary alias and extra [pgsluice] lines. */
static struct sluice *core_start(const char *mode, const char *extra)
{
	char global[1024];
	char databases[256];
	snprintf(global, sizeof(global), "pool_mode = %s\n%s", mode, extra != NULL ? extra : "");
	snprintf(databases, sizeof(databases), "%s = host=127.0.0.1 port=%d dbname=%s",
		 CORE_DB_ALIAS, fixture_primary_port(), FIXTURE_DB);
	return sluice_start(global, databases);
}

/* Rewrite the config of a daemon started by core_start(). */
static void core_rewrite(struct sluice *s, const char *mode, const char *extra)
{
	char global[1024];
	char databases[256];
	snprintf(global, sizeof(global), "pool_mode = %s\n%s", mode, extra);
	snprintf(databases, sizeof(databases), "%s = host=127.0.0.1 port=%d dbname=%s",
		 CORE_DB_ALIAS, fixture_primary_port(), FIXTURE_DB);
	ck_assert_msg(sluice_rewrite(s, global, databases), "cannot rewrite %s", s->conf_path);
}

static PGconn *core_connect(const struct sluice *s, const char *extra)
{
	return fixture_connect_ok(s->port, core_db(), FIXTURE_USER, FIXTURE_PASSWORD, extra);
}

/* A superuser connection straight to the primary, for setup and observation. */
static PGconn *core_superuser(void)
{
	return fixture_connect_ok(fixture_primary_port(), FIXTURE_DB, "postgres", NULL, NULL);
}

static void core_exec(PGconn *c, const char *sql)
{
	PQclear(fixture_exec_ok(c, sql));
}

static void core_assert_value(PGconn *c, const char *sql, const char *expected)
{
	char *v = fixture_value(c, sql);
	ck_assert_msg(strcmp(v, expected) == 0, "\"%s\" gave \"%s\", expected \"%s\"", sql, v,
		      expected);
	free(v);
}

/* Runs sql through Parse/Bind/Execute (PQexecParams), as pgjdbc and psycopg 3 send it. */
static PGresult *core_exec_extended(PGconn *c, const char *sql)
{
	return PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);
}

static void core_assert_extended_value(PGconn *c, const char *sql, const char *expected)
{
	PGresult *r = core_exec_extended(c, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK,
		      "\"%s\": %s", sql, PQresultErrorMessage(r));
	const char *v = PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
	ck_assert_msg(strcmp(v, expected) == 0, "\"%s\" gave \"%s\", expected \"%s\"", sql, v,
		      expected);
	PQclear(r);
}

static void core_assert_extended_error(PGconn *c, const char *sql, const char *sqlstate,
				       const char *message_part)
{
	PGresult *r = core_exec_extended(c, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR, "\"%s\" did not fail", sql);
	ck_assert_str_eq(fixture_sqlstate(r), sqlstate);
	ck_assert_msg(strstr(PQresultErrorMessage(r), message_part) != NULL, "\"%s\": %s", sql,
		      PQresultErrorMessage(r));
	PQclear(r);
}

static long core_value_long(PGconn *c, const char *sql)
{
	char *v = fixture_value(c, sql);
	long n = strtol(v, NULL, 10);
	free(v);
	return n;
}

/* Run setup SQL on the primary as the table owner, outside the pooler. */
static void core_setup(const char *sql)
{
	PGconn *c = fixture_connect_ok(fixture_primary_port(), FIXTURE_DB, FIXTURE_USER,
				       FIXTURE_PASSWORD, NULL);
	core_exec(c, "SET client_min_messages = warning");
	core_exec(c, sql);
	PQfinish(c);
}

static void core_sleep(double seconds)
{
	struct timespec ts = { .tv_sec = (time_t)seconds,
			       .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void core_md5_hex(const void *data, size_t len, char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	ck_assert(EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) == 1);
	ck_assert_uint_eq(mdlen, 16);
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Wait until the primary shows `sql_text` active for user app; return its backend pid. */
static long core_wait_active(PGconn *su, const char *sql_text)
{
	char q[512];
	snprintf(q, sizeof(q),
		 "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE usename = 'app' "
		 "AND state = 'active' AND query = '%s'",
		 sql_text);
	double deadline = fixture_now() + 5.0;
	long pid = 0;
	while ((pid = core_value_long(su, q)) == 0 && fixture_now() < deadline)
		core_sleep(0.02);
	ck_assert_msg(pid > 0, "\"%s\" never became active on the primary", sql_text);
	return pid;
}

/* What a refused connection said: SQLSTATE and message, read from libpq's verbose text. */
struct core_refusal {
	bool failed;
	char sqlstate[6];
	char message[CORE_MESSAGE_MAX];
	char raw[1024];
};

/* Pull "FATAL:  XXXXX: message" out of a verbose libpq error text. */
static void core_parse_refusal(const char *text, struct core_refusal *out)
{
	snprintf(out->raw, sizeof(out->raw), "%s", text);
	fixture_parse_error_text(text, out->sqlstate, out->message, sizeof(out->message));
}

/*
 * Try to connect and report how it failed. libpq keeps no SQLSTATE for a failed
 * connection, but with verbose errors set before the first poll it writes the code
 * into the message.
 */
static struct core_refusal core_connect_failure(int port, const char *db, const char *user,
						const char *password)
{
	struct core_refusal out = { 0 };
	char port_text[16];
	snprintf(port_text, sizeof(port_text), "%d", port);
	const char *keys[] = { "host", "port", "dbname", "user", "password", NULL };
	const char *values[] = { "127.0.0.1", port_text, db, user, password, NULL };
	PGconn *c = PQconnectStartParams(keys, values, 0);
	ck_assert(c != NULL);
	PQsetErrorVerbosity(c, PQERRORS_VERBOSE);
	double deadline = fixture_now() + CORE_CONNECT_SECONDS;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	while (PQstatus(c) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
	       st != PGRES_POLLING_FAILED) {
		double left = deadline - fixture_now();
		ck_assert_msg(left > 0, "connection attempt to %d hung", port);
		struct pollfd pfd = { .fd = PQsocket(c),
				      .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT };
		if (pfd.fd >= 0)
			poll(&pfd, 1, (int)(left * 1000) + 1);
		st = PQconnectPoll(c);
	}
	out.failed = PQstatus(c) != CONNECTION_OK;
	core_parse_refusal(PQerrorMessage(c), &out);
	PQfinish(c);
	return out;
}

/* Replace every occurrence of word in a refusal message by "<user>". */
static void core_mask_word(char text[CORE_MESSAGE_MAX], const char *word)
{
	char result[CORE_MESSAGE_MAX];
	size_t out = 0;
	size_t wlen = strlen(word);
	const char *p = text;
	while (*p != '\0' && out + 1 < sizeof(result)) {
		if (wlen > 0 && strncmp(p, word, wlen) == 0) {
			for (const char *m = "<user>"; *m != '\0' && out + 1 < sizeof(result); m++)
				result[out++] = *m;
			p += wlen;
		} else {
			result[out++] = *p++;
		}
	}
	result[out] = '\0';
	memcpy(text, result, out + 1);
}

/* ---- protocol in every mode ---- */

static void core_check_protocols(const char *mode)
{
	/* One server only: the named statement must live where it is executed. */
	struct sluice *s = core_start(mode, "default_pool_size = 1");
	PGconn *c = core_connect(s, NULL);
	char port[16];
	snprintf(port, sizeof(port), "%d", fixture_primary_port());

	PGresult *r = fixture_exec_ok(c, "SELECT 6 * 7, 'x' || 'y', current_database(), "
					 "inet_server_port(), pg_is_in_recovery()");
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "42");
	ck_assert_str_eq(PQgetvalue(r, 0, 1), "xy");
	ck_assert_str_eq(PQgetvalue(r, 0, 2), FIXTURE_DB);
	ck_assert_str_eq(PQgetvalue(r, 0, 3), port);
	ck_assert_str_eq(PQgetvalue(r, 0, 4), "f");
	PQclear(r);

	const char *params[3] = { "20", "22", NULL };
	r = PQexecParams(c, "SELECT $1::int + $2::int, $3::text IS NULL, inet_server_port()", 3,
			 NULL, params, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "42");
	ck_assert_str_eq(PQgetvalue(r, 0, 1), "t");
	ck_assert_str_eq(PQgetvalue(r, 0, 2), port);
	PQclear(r);

	/* Binary result: int4 arrives as four bytes in network order. */
	r = PQexecParams(c, "SELECT $1::int4 * 1000", 1, NULL, params, NULL, NULL, 1);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
	ck_assert_int_eq(PQgetlength(r, 0, 0), 4);
	uint32_t be;
	memcpy(&be, PQgetvalue(r, 0, 0), 4);
	ck_assert_uint_eq(ntohl(be), 20000);
	PQclear(r);

	/* Statement pooling forbids transaction blocks, so there it runs in autocommit. */
	bool in_transaction = strcmp(mode, "statement") != 0;
	if (in_transaction)
		core_exec(c, "BEGIN");
	r = PQprepare(c, "add_one", "SELECT $1::int + 1, inet_server_port(), pg_is_in_recovery()",
		      1, NULL);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "prepare: %s", PQerrorMessage(c));
	PQclear(r);
	for (int i = 0; i < 3; i++) {
		char in[16], want[16];
		snprintf(in, sizeof(in), "%d", 41 + i * 10);
		snprintf(want, sizeof(want), "%d", 42 + i * 10);
		const char *v[1] = { in };
		r = PQexecPrepared(c, "add_one", 1, v, NULL, NULL, 0);
		ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "execute: %s",
			      PQerrorMessage(c));
		ck_assert_str_eq(PQgetvalue(r, 0, 0), want);
		ck_assert_str_eq(PQgetvalue(r, 0, 1), port);
		ck_assert_str_eq(PQgetvalue(r, 0, 2), "f");
		PQclear(r);
	}
	if (in_transaction) {
		/* Prepared on the server the transaction runs on (under transaction pooling
		 * with a name of pgsluice's own: doc/session-state.md). */
		core_assert_value(c,
				  "SELECT count(*) FROM pg_prepared_statements WHERE statement = "
				  "'SELECT $1::int + 1, inet_server_port(), pg_is_in_recovery()'",
				  "1");
		core_exec(c, "COMMIT");
	}
	PQfinish(c);
	sluice_stop_clean(s);
}

START_TEST(simple_and_extended_protocol_work_in_session_mode)
{
	core_check_protocols("session");
}
END_TEST

START_TEST(simple_and_extended_protocol_work_in_transaction_mode)
{
	core_check_protocols("transaction");
}
END_TEST

START_TEST(simple_and_extended_protocol_work_in_statement_mode)
{
	core_check_protocols("statement");
}
END_TEST

/* ---- many clients, few servers ---- */

/* Polls how many backends user app has on the primary; keeps the maximum. */
struct core_sampler {
	pthread_t thread;
	double interval;
	volatile bool stop;
	long max_seen;
	long samples;
	char error[256];
};

static void *core_sampler_run(void *arg)
{
	struct core_sampler *sm = arg;
	char port[16];
	snprintf(port, sizeof(port), "%d", fixture_primary_port());
	const char *keys[] = { "host", "port", "dbname", "user", NULL };
	const char *values[] = { "127.0.0.1", port, FIXTURE_DB, "postgres", NULL };
	PGconn *c = PQconnectdbParams(keys, values, 0);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(sm->error, sizeof(sm->error), "sampler: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	while (!sm->stop) {
		PGresult *r = PQexec(c, "SELECT count(*) FROM pg_stat_activity "
					"WHERE usename = 'app'");
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			snprintf(sm->error, sizeof(sm->error), "sampler: %s", PQerrorMessage(c));
			PQclear(r);
			break;
		}
		long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		if (n > sm->max_seen)
			sm->max_seen = n;
		sm->samples++;
		core_sleep(sm->interval);
	}
	PQfinish(c);
	return NULL;
}

static void core_sampler_start(struct core_sampler *sm, double interval)
{
	memset(sm, 0, sizeof(*sm));
	sm->interval = interval;
	ck_assert_int_eq(pthread_create(&sm->thread, NULL, core_sampler_run, sm), 0);
}

static void core_sampler_finish(struct core_sampler *sm)
{
	sm->stop = true;
	pthread_join(sm->thread, NULL);
	ck_assert_msg(sm->error[0] == '\0', "%s", sm->error);
	ck_assert_msg(sm->samples > 0, "the sampler took no sample");
}

struct core_herd {
	int port;
	pthread_mutex_t lock;
	int next_index;
	int failures;
	int queries_ok;
	char first_error[300];
};

static void core_herd_fail(struct core_herd *h, const char *what, PGconn *c)
{
	pthread_mutex_lock(&h->lock);
	if (h->failures++ == 0)
		snprintf(h->first_error, sizeof(h->first_error), "%s: %s", what,
			 c != NULL ? PQerrorMessage(c) : "");
	pthread_mutex_unlock(&h->lock);
}

/* One client: connect, then alternate simple and extended queries with known answers. */
static void *core_herd_client(void *arg)
{
	struct core_herd *h = arg;
	pthread_mutex_lock(&h->lock);
	int index = h->next_index++;
	pthread_mutex_unlock(&h->lock);

	PGconn *c = fixture_connect(h->port, core_db(), FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	if (PQstatus(c) != CONNECTION_OK) {
		core_herd_fail(h, "connect", c);
		PQfinish(c);
		return NULL;
	}
	int ok = 0;
	for (int q = 0; q < CORE_HERD_QUERIES; q++) {
		long arg_value = (long)index * 100 + q;
		char text[64], want[32];
		snprintf(text, sizeof(text), "%ld", arg_value);
		snprintf(want, sizeof(want), "%ld", arg_value * 2);
		PGresult *r;
		if (q % 2 == 0) {
			char sql[128];
			snprintf(sql, sizeof(sql), "SELECT %ld * 2 FROM pg_sleep(0.01)", arg_value);
			r = PQexec(c, sql);
		} else {
			const char *v[1] = { text };
			r = PQexecParams(c, "SELECT $1::int * 2 FROM pg_sleep(0.01)", 1, NULL, v,
					 NULL, NULL, 0);
		}
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
		    strcmp(PQgetvalue(r, 0, 0), want) != 0)
			core_herd_fail(h, "query", c);
		else
			ok++;
		PQclear(r);
	}
	PQfinish(c);
	pthread_mutex_lock(&h->lock);
	h->queries_ok += ok;
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

START_TEST(two_hundred_clients_share_a_pool_of_five)
{
	struct sluice *s = core_start("transaction", "default_pool_size = 5\n"
						     "max_client_conn = 400\n"
						     "query_wait_timeout = 60s");
	struct core_herd h = { .port = s->port };
	pthread_mutex_init(&h.lock, NULL);
	struct core_sampler sm;
	core_sampler_start(&sm, 0.02);

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	pthread_t threads[CORE_HERD_CLIENTS];
	for (int i = 0; i < CORE_HERD_CLIENTS; i++)
		ck_assert_int_eq(pthread_create(&threads[i], &attr, core_herd_client, &h), 0);
	for (int i = 0; i < CORE_HERD_CLIENTS; i++)
		pthread_join(threads[i], NULL);
	pthread_attr_destroy(&attr);
	core_sampler_finish(&sm);

	ck_assert_msg(h.failures == 0, "%d failures, first: %s", h.failures, h.first_error);
	ck_assert_int_eq(h.queries_ok, CORE_HERD_CLIENTS * CORE_HERD_QUERIES);
	ck_assert_msg(sm.max_seen >= 1, "the sampler never saw a backend of app");
	if (!fixture_direct_mode())
		ck_assert_msg(sm.max_seen <= CORE_HERD_POOL,
			      "the primary had %ld backends of app, pool size is %d", sm.max_seen,
			      CORE_HERD_POOL);
	pthread_mutex_destroy(&h.lock);
	sluice_stop_clean(s);
}
END_TEST

/* ---- connection limits ---- */

/*
 * Under a limit of two servers shared by two pools: two clients in a transaction
 * hold both, a third waits instead of opening a third server, and once one of
 * the two commits, its server idles in the other pool and is closed to make
 * room (else the third would wait out query_wait_timeout). extra sets the
 * limit; the second client uses db_b and user_b.
 */
static void core_check_shared_limit(const char *extra, const char *db_b, const char *user_b,
				    const char *password_b)
{
	char global[512], databases[512];
	snprintf(global, sizeof(global),
		 "pool_mode = transaction\ndefault_pool_size = 5\nquery_wait_timeout = 10s\n%s",
		 extra);
	snprintf(databases, sizeof(databases),
		 "limit_a = host=127.0.0.1 port=%d dbname=%s\n"
		 "limit_b = host=127.0.0.1 port=%d dbname=%s",
		 fixture_primary_port(), FIXTURE_DB, fixture_primary_port(), FIXTURE_DB);
	struct sluice *s = sluice_start(global, databases);
	PGconn *su = core_superuser();
	PGconn *a = fixture_connect_ok(s->port, "limit_a", FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	PGconn *b = fixture_connect_ok(s->port, db_b, user_b, password_b, NULL);
	PGconn *waiter =
		fixture_connect_ok(s->port, "limit_a", FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	core_exec(a, "BEGIN");
	core_assert_value(a, "SELECT 1", "1");
	core_exec(b, "BEGIN");
	core_assert_value(b, "SELECT 2", "2");
	ck_assert_int_eq(PQsendQuery(waiter, "SELECT 3"), 1);
	fixture_sleep(0.5);
	ck_assert_int_eq(PQconsumeInput(waiter), 1);
	ck_assert_msg(PQisBusy(waiter), "a third server was opened beyond the limit of 2");
	ck_assert_int_le(core_value_long(su, "SELECT count(*) FROM pg_stat_activity WHERE "
					     "usename IN ('app', 'other') AND backend_type = "
					     "'client backend'"),
			 2);
	core_exec(b, "COMMIT");
	PGresult *r = PQgetResult(waiter);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "the waiting query failed: %s",
		      PQresultErrorMessage(r));
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "3");
	PQclear(r);
	ck_assert_ptr_null(PQgetResult(waiter));
	core_exec(a, "COMMIT");
	PQfinish(waiter);
	PQfinish(b);
	PQfinish(a);
	PQfinish(su);
	sluice_stop_clean(s);
}

START_TEST(max_user_connections_holds_across_databases_and_idle_servers_make_room)
{
	if (fixture_direct_mode())
		return;
	core_check_shared_limit("max_user_connections = 2", "limit_b", FIXTURE_USER,
				FIXTURE_PASSWORD);
}
END_TEST

START_TEST(max_db_connections_holds_across_users_and_idle_servers_make_room)
{
	if (fixture_direct_mode())
		return;
	core_check_shared_limit("max_db_connections = 2", "limit_a", FIXTURE_USER2,
				FIXTURE_PASSWORD2);
}
END_TEST

/* ---- waiting for a server ---- */

START_TEST(query_wait_timeout_gives_57014_and_the_client_can_retry)
{
	if (fixture_direct_mode())
		return;
	struct sluice *s = core_start("transaction", "default_pool_size = 1\n"
						     "reserve_pool_size = 0\n"
						     "query_wait_timeout = 1s");
	PGconn *holder = core_connect(s, NULL);
	core_exec(holder, "BEGIN");
	core_assert_value(holder, "SELECT 1", "1");
	PGconn *waiter = core_connect(s, NULL);

	double t0 = fixture_now();
	PGresult *r = PQexec(waiter, "SELECT 2");
	double elapsed = fixture_now() - t0;
	ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR, "the waiting query ran: %s",
		      PQresStatus(PQresultStatus(r)));
	ck_assert_str_eq(fixture_sqlstate(r), "57014");
	PQclear(r);
	ck_assert_msg(elapsed >= 0.8 && elapsed <= 3.0, "timed out after %.2f s, expected ~1 s",
		      elapsed);

	core_exec(holder, "COMMIT");
	ck_assert_int_eq(PQstatus(waiter), CONNECTION_OK);
	core_assert_value(waiter, "SELECT 2", "2");
	PQfinish(waiter);
	PQfinish(holder);
	sluice_stop_clean(s);
}
END_TEST

/* ---- a client that vanishes ---- */

START_TEST(killed_client_in_transaction_leaves_no_lock)
{
	core_setup("DROP TABLE IF EXISTS t_kill; CREATE TABLE t_kill (id int PRIMARY KEY, v int);"
		   "INSERT INTO t_kill VALUES (1, 0)");
	struct sluice *s = core_start("transaction", "default_pool_size = 2");
	int pipefd[2];
	ck_assert_int_eq(pipe(pipefd), 0);
	fflush(NULL);
	pid_t child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		/* A guard: should the parent fail before killing us, do not linger. */
		alarm(60);
		close(pipefd[0]);
		PGconn *c =
			fixture_connect(s->port, core_db(), FIXTURE_USER, FIXTURE_PASSWORD, NULL);
		PGresult *r1 = PQexec(c, "BEGIN");
		PGresult *r2 = PQexec(c, "UPDATE t_kill SET v = 1 WHERE id = 1");
		char ok = PQresultStatus(r1) == PGRES_COMMAND_OK &&
					  PQresultStatus(r2) == PGRES_COMMAND_OK
				  ? 'k'
				  : 'e';
		if (write(pipefd[1], &ok, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pipefd[1]);
	struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
	ck_assert_msg(poll(&pfd, 1, 15000) == 1, "the child never took the lock");
	char got = 0;
	ck_assert_int_eq(read(pipefd[0], &got, 1), 1);
	close(pipefd[0]);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	ck_assert_msg(got == 'k', "the child could not BEGIN and UPDATE");

	PGconn *c = core_connect(s, NULL);
	core_exec(c, "BEGIN");
	core_exec(c, "SET LOCAL lock_timeout = '5s'");
	double t0 = fixture_now();
	core_assert_value(c, "UPDATE t_kill SET v = v + 2 WHERE id = 1 RETURNING v", "2");
	double elapsed = fixture_now() - t0;
	core_exec(c, "COMMIT");
	ck_assert_msg(elapsed < 2.0, "the row stayed locked for %.2f s", elapsed);
	PQfinish(c);

	PGconn *su = core_superuser();
	core_assert_value(su, "SELECT v FROM t_kill WHERE id = 1", "2");
	PQfinish(su);
	sluice_stop_clean(s);
}
END_TEST

/* ---- COPY and large values ---- */

struct core_bytes {
	char *data;
	size_t len;
	size_t cap;
};

static void core_bytes_add(struct core_bytes *b, const char *data, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap == 0 ? 65536 : b->cap;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *p = realloc(b->data, cap);
		ck_assert_msg(p != NULL, "out of memory");
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

START_TEST(copy_in_and_out_of_100000_rows_keeps_every_byte)
{
	core_setup("DROP TABLE IF EXISTS t_copy; "
		   "CREATE TABLE t_copy (id int PRIMARY KEY, name text, amount numeric)");
	struct sluice *s = core_start("transaction", "default_pool_size = 2");
	PGconn *c = core_connect(s, NULL);

	struct core_bytes sent = { 0 };
	for (int i = 1; i <= CORE_COPY_ROWS; i++) {
		char line[128];
		int n;
		if (i % 1000 == 0)
			n = snprintf(line, sizeof(line), "%d\trow %d \xc3\xa9t\xc3\xa9\t\\N\n", i,
				     i);
		else
			n = snprintf(line, sizeof(line), "%d\trow %d \xc3\xa9t\xc3\xa9\t%d.%02d\n",
				     i, i, i * 7, i % 100);
		core_bytes_add(&sent, line, (size_t)n);
	}
	char sent_md5[33];
	core_md5_hex(sent.data, sent.len, sent_md5);

	PGresult *r = PQexec(c, "COPY t_copy FROM STDIN");
	ck_assert_msg(PQresultStatus(r) == PGRES_COPY_IN, "%s", PQerrorMessage(c));
	PQclear(r);
	for (size_t off = 0; off < sent.len; off += 65536) {
		size_t n = sent.len - off < 65536 ? sent.len - off : 65536;
		ck_assert_int_eq(PQputCopyData(c, sent.data + off, (int)n), 1);
	}
	ck_assert_int_eq(PQputCopyEnd(c, NULL), 1);
	r = PQgetResult(c);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "COPY FROM: %s", PQerrorMessage(c));
	ck_assert_str_eq(PQcmdTuples(r), "100000");
	PQclear(r);
	ck_assert_ptr_null(PQgetResult(c));

	/* The server renders its rows as COPY text would and hashes them. */
	core_assert_value(
		c,
		"SELECT md5(string_agg(id || E'\\t' || name || E'\\t' || "
		"coalesce(amount::text, '\\N'), E'\\n' ORDER BY id) || E'\\n') FROM t_copy",
		sent_md5);

	r = PQexec(c, "COPY (SELECT * FROM t_copy ORDER BY id) TO STDOUT");
	ck_assert_msg(PQresultStatus(r) == PGRES_COPY_OUT, "%s", PQerrorMessage(c));
	PQclear(r);
	struct core_bytes got = { 0 };
	char *buf;
	int n;
	while ((n = PQgetCopyData(c, &buf, 0)) > 0) {
		core_bytes_add(&got, buf, (size_t)n);
		PQfreemem(buf);
	}
	ck_assert_int_eq(n, -1);
	r = PQgetResult(c);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "COPY TO: %s", PQerrorMessage(c));
	PQclear(r);
	ck_assert_ptr_null(PQgetResult(c));
	char got_md5[33];
	core_md5_hex(got.data, got.len, got_md5);
	ck_assert_uint_eq(got.len, sent.len);
	ck_assert_str_eq(got_md5, sent_md5);
	ck_assert(memcmp(got.data, sent.data, sent.len) == 0);
	free(got.data);
	free(sent.data);
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(bytea_of_50_mb_round_trips_unchanged)
{
	core_setup(
		"DROP TABLE IF EXISTS t_blob; CREATE TABLE t_blob (id int PRIMARY KEY, b bytea)");
	struct sluice *s = core_start("transaction", "default_pool_size = 2\n"
						     "max_packet_size = 134217728");
	PGconn *c = core_connect(s, NULL);

	unsigned char *blob = malloc(CORE_BLOB_BYTES);
	ck_assert(blob != NULL);
	/* xorshift: incompressible enough that nothing on the path can shortcut it. */
	uint64_t x = 0x9e3779b97f4a7c15u;
	for (size_t i = 0; i < CORE_BLOB_BYTES; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(blob + i, &x, 8);
	}
	char blob_md5[33];
	core_md5_hex(blob, CORE_BLOB_BYTES, blob_md5);

	Oid types[1] = { CORE_BYTEAOID };
	const char *values[1] = { (const char *)blob };
	int lengths[1] = { (int)CORE_BLOB_BYTES };
	int formats[1] = { 1 };
	PGresult *r = PQexecParams(c, "INSERT INTO t_blob VALUES (1, $1)", 1, types, values,
				   lengths, formats, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "insert: %s", PQerrorMessage(c));
	PQclear(r);

	r = fixture_exec_ok(c, "SELECT md5(b), length(b) FROM t_blob WHERE id = 1");
	ck_assert_str_eq(PQgetvalue(r, 0, 0), blob_md5);
	ck_assert_int_eq(strtol(PQgetvalue(r, 0, 1), NULL, 10), (long)CORE_BLOB_BYTES);
	PQclear(r);

	r = PQexecParams(c, "SELECT b FROM t_blob WHERE id = 1", 0, NULL, NULL, NULL, NULL, 1);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "select: %s", PQerrorMessage(c));
	ck_assert_int_eq(PQgetlength(r, 0, 0), (int)CORE_BLOB_BYTES);
	ck_assert(memcmp(PQgetvalue(r, 0, 0), blob, CORE_BLOB_BYTES) == 0);
	PQclear(r);
	free(blob);
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

/* ---- cancel ---- */

START_TEST(cancel_of_pg_sleep_returns_57014_within_one_second)
{
	struct sluice *s = core_start("transaction", "default_pool_size = 2");
	PGconn *c = core_connect(s, NULL);
	PGconn *su = core_superuser();
	ck_assert_int_eq(PQsendQuery(c, "SELECT pg_sleep(30)"), 1);
	core_wait_active(su, "SELECT pg_sleep(30)");

	PGcancel *cancel = PQgetCancel(c);
	ck_assert(cancel != NULL);
	char err[256];
	double t0 = fixture_now();
	ck_assert_msg(PQcancel(cancel, err, sizeof(err)) == 1, "PQcancel: %s", err);
	PQfreeCancel(cancel);
	PGresult *r = PQgetResult(c);
	double elapsed = fixture_now() - t0;
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	ck_assert_str_eq(fixture_sqlstate(r), "57014");
	PQclear(r);
	while ((r = PQgetResult(c)) != NULL)
		PQclear(r);
	ck_assert_msg(elapsed < 1.0, "the cancel took %.2f s", elapsed);

	core_assert_value(c, "SELECT 'still here'", "still here");
	core_assert_value(su,
			  "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' "
			  "AND state = 'active' AND query = 'SELECT pg_sleep(30)'",
			  "0");
	PQfinish(su);
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

/* ---- authentication and unknown names ---- */

START_TEST(wrong_password_is_refused_with_28P01)
{
	struct sluice *s = core_start("transaction", NULL);
	struct core_refusal f =
		core_connect_failure(s->port, core_db(), FIXTURE_USER, "wrong-pass");
	ck_assert_msg(f.failed, "a wrong password was accepted");
	ck_assert_msg(strcmp(f.sqlstate, "28P01") == 0, "SQLSTATE \"%s\" in: %s", f.sqlstate,
		      f.raw);
	PGconn *c = core_connect(s, NULL);
	core_assert_value(c, "SELECT current_user", FIXTURE_USER);
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

/*
 * An auth file with only the primary's SCRAM secret for app: pgsluice has no password,
 * yet logs in to the primary (which demands SCRAM) with the ClientKey the client proved.
 * The same secret filed under another user passes pgsluice's check but not the
 * primary's, whose secret for that user differs: the client gets the server's 28P01.
 */
START_TEST(scram_secret_alone_logs_in_to_servers_by_pass_through)
{
	if (fixture_direct_mode())
		return;
	char *secret = fixture_admin_value(fixture_primary_port(),
					   "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'");
	ck_assert_msg(strncmp(secret, "SCRAM-SHA-256$", 14) == 0, "app's secret: %s", secret);
	char path[512], global[1024];
	snprintf(path, sizeof(path), "%s/scram-only.txt", fixture_tmpdir());
	FILE *f = fopen(path, "w");
	ck_assert(f != NULL);
	fprintf(f, "\"%s\" \"%s\"\n\"%s\" \"%s\"\n", FIXTURE_USER, secret, FIXTURE_USER2,
		secret);
	ck_assert_int_eq(fclose(f), 0);
	free(secret);
	/* min_pool_size: no server is opened for app before a client proved the key. */
	snprintf(global, sizeof(global),
		 "auth_type = scram-sha-256\nauth_file = %s\nmin_pool_size = 1\n"
		 "server_login_retry = 100ms",
		 path);
	struct sluice *s = core_start("transaction", global);
	fixture_sleep(1.5);
	PGconn *c = core_connect(s, NULL);
	core_assert_value(c, "SELECT current_user", FIXTURE_USER);
	core_assert_value(c, "SELECT 6 * 7", "42");
	PQfinish(c);
	struct core_refusal other =
		core_connect_failure(s->port, core_db(), FIXTURE_USER2, FIXTURE_PASSWORD);
	ck_assert_msg(other.failed, "the primary accepted app's key for another user");
	ck_assert_msg(strcmp(other.sqlstate, "28P01") == 0, "SQLSTATE \"%s\" in: %s",
		      other.sqlstate, other.raw);
	char *log = sluice_log(s);
	ck_assert_msg(strstr(log, "no client has logged in with it yet") == NULL,
		      "a server login was tried before any client proved the key:\n%s", log);
	free(log);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(unknown_user_is_refused_like_a_wrong_password)
{
	struct sluice *s = core_start("transaction", NULL);
	struct core_refusal wrong =
		core_connect_failure(s->port, core_db(), FIXTURE_USER, "wrong-pass");
	struct core_refusal unknown =
		core_connect_failure(s->port, core_db(), "nosuchuser", "wrong-pass");
	ck_assert_msg(unknown.failed, "an unknown user was accepted");
	ck_assert_msg(strcmp(unknown.sqlstate, "28P01") == 0, "SQLSTATE \"%s\" in: %s",
		      unknown.sqlstate, unknown.raw);
	/* Only the user name may differ, or the answer would reveal which users exist. */
	core_mask_word(wrong.message, FIXTURE_USER);
	core_mask_word(unknown.message, "nosuchuser");
	ck_assert_msg(wrong.message[0] != '\0', "no message in: %s", wrong.raw);
	ck_assert_str_eq(unknown.message, wrong.message);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(unknown_database_is_refused_with_3D000)
{
	struct sluice *s = core_start("transaction", NULL);
	struct core_refusal f =
		core_connect_failure(s->port, "nosuchdb", FIXTURE_USER, FIXTURE_PASSWORD);
	ck_assert_msg(f.failed, "an unknown database was accepted");
	ck_assert_msg(strcmp(f.sqlstate, "3D000") == 0, "SQLSTATE \"%s\" in: %s", f.sqlstate,
		      f.raw);
	PGconn *c = core_connect(s, NULL);
	core_assert_value(c, "SELECT current_database()", FIXTURE_DB);
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(max_client_conn_exceeded_is_refused_with_53300)
{
	if (fixture_direct_mode())
		return;
	struct sluice *s = core_start("transaction", "max_client_conn = 3");
	PGconn *c[3];
	for (int i = 0; i < 3; i++)
		c[i] = core_connect(s, NULL);
	struct core_refusal f =
		core_connect_failure(s->port, core_db(), FIXTURE_USER, FIXTURE_PASSWORD);
	ck_assert_msg(f.failed, "a fourth client was accepted with max_client_conn = 3");
	ck_assert_msg(strcmp(f.sqlstate, "53300") == 0, "SQLSTATE \"%s\" in: %s", f.sqlstate,
		      f.raw);
	for (int i = 0; i < 3; i++)
		core_assert_value(c[i], "SELECT 7", "7");

	/* A freed slot is usable again once the daemon has seen the close. */
	PQfinish(c[2]);
	PGconn *again = NULL;
	double deadline = fixture_now() + 2.0;
	do {
		PQfinish(again);
		again = fixture_connect(s->port, core_db(), FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	} while (PQstatus(again) != CONNECTION_OK && fixture_now() < deadline);
	ck_assert_msg(PQstatus(again) == CONNECTION_OK, "the freed slot stayed taken: %s",
		      PQerrorMessage(again));
	core_assert_value(again, "SELECT 8", "8");
	PQfinish(again);
	PQfinish(c[0]);
	PQfinish(c[1]);
	sluice_stop_clean(s);
}
END_TEST

/* ---- per-client startup parameters ---- */

struct core_client_params {
	const char *extra;
	const char *timezone;
	const char *datestyle;
	const char *app_name;
	const char *encoding;
	const char *midnight_utc_hour; /* 2020-01-01 00:00 UTC, as an hour in the client's zone */
	const char *date_text;         /* 2020-03-04 in the client's DateStyle */
};

static void core_check_params(PGconn *c, const struct core_client_params *p, int round)
{
	core_assert_value(c, "SHOW TimeZone", p->timezone);
	core_assert_value(c, "SHOW DateStyle", p->datestyle);
	PGresult *r = fixture_exec_ok(c, "SELECT current_setting('application_name'), "
					 "current_setting('client_encoding'), "
					 "to_char(timestamptz '2020-01-01 00:00:00+00', 'HH24'), "
					 "date '2020-03-04'::text");
	ck_assert_msg(strcmp(PQgetvalue(r, 0, 0), p->app_name) == 0 &&
			      strcmp(PQgetvalue(r, 0, 1), p->encoding) == 0 &&
			      strcmp(PQgetvalue(r, 0, 2), p->midnight_utc_hour) == 0 &&
			      strcmp(PQgetvalue(r, 0, 3), p->date_text) == 0,
		      "round %d, client %s saw %s|%s|%s|%s", round, p->app_name,
		      PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
		      PQgetvalue(r, 0, 3));
	PQclear(r);
}

START_TEST(each_client_keeps_its_own_startup_parameters_on_a_shared_server)
{
	struct sluice *s = core_start("transaction", "default_pool_size = 1");
	const struct core_client_params params[2] = {
		{ .extra = "application_name=client-a client_encoding=LATIN1 "
			   "options='-c TimeZone=Asia/Tokyo -c DateStyle=SQL,DMY'",
		  .timezone = "Asia/Tokyo",
		  .datestyle = "SQL, DMY",
		  .app_name = "client-a",
		  .encoding = "LATIN1",
		  .midnight_utc_hour = "09",
		  .date_text = "04/03/2020" },
		{ .extra = "application_name=client-b "
			   "options='-c TimeZone=America/New_York -c DateStyle=German'",
		  .timezone = "America/New_York",
		  .datestyle = "German, DMY",
		  .app_name = "client-b",
		  .encoding = "UTF8",
		  .midnight_utc_hour = "19",
		  .date_text = "04.03.2020" },
	};
	PGconn *c[2];
	for (int i = 0; i < 2; i++) {
		c[i] = core_connect(s, params[i].extra);
		const char *tz = PQparameterStatus(c[i], "TimeZone");
		ck_assert_msg(tz != NULL && strcmp(tz, params[i].timezone) == 0,
			      "client %d was told TimeZone %s", i, tz != NULL ? tz : "(none)");
	}
	long pid[2] = { 0, 0 };
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 2; i++) {
			core_check_params(c[i], &params[i], round);
			pid[i] = core_value_long(c[i], "SELECT pg_backend_pid()");
		}
	}
	/* Without one shared backend this test would prove nothing about the pooler. */
	if (!fixture_direct_mode())
		ck_assert_msg(pid[0] == pid[1], "the clients used backends %ld and %ld", pid[0],
			      pid[1]);
	PQfinish(c[0]);
	PQfinish(c[1]);
	sluice_stop_clean(s);
}
END_TEST

/* ---- pgbench ---- */

/* Run pgbench with args against the daemon; return its output (static) and status. */
static int core_pgbench(const struct sluice *s, const char *args, char *out, size_t cap)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "PGPASSWORD='%s' '%s/pgbench' -h 127.0.0.1 -p %d -U %s %s %s",
		 FIXTURE_PASSWORD, fixture_pg_bindir(), s->port, FIXTURE_USER, args, core_db());
	return fixture_sh(cmd, out, cap);
}

/* Require a clean run: exit 0, transactions processed, none failed. */
static void core_assert_pgbench_clean(int rc, const char *out)
{
	ck_assert_msg(rc == 0, "pgbench exited with %d:\n%s", rc, out);
	const char *p = strstr(out, "number of transactions actually processed: ");
	ck_assert_msg(p != NULL, "no transaction count in:\n%s", out);
	long done = strtol(p + strlen("number of transactions actually processed: "), NULL, 10);
	ck_assert_msg(done > 0, "no transactions processed:\n%s", out);
	ck_assert_msg(strstr(out, "number of failed transactions: 0 ") != NULL,
		      "failed transactions:\n%s", out);
}

START_TEST(pgbench_simple_and_extended_run_without_failures)
{
	struct sluice *s =
		core_start("transaction", "default_pool_size = 5\nmax_client_conn = 100");
	char *out = malloc(CORE_SH_OUT);
	ck_assert(out != NULL);
	int rc = core_pgbench(s, "-i -s 1 -q", out, CORE_SH_OUT);
	ck_assert_msg(rc == 0 && strstr(out, "done in") != NULL, "pgbench -i: %d\n%s", rc, out);
	rc = core_pgbench(s, "-M simple -c 8 -T 5", out, CORE_SH_OUT);
	core_assert_pgbench_clean(rc, out);
	ck_assert_msg(strstr(out, "query mode: simple") != NULL, "%s", out);
	rc = core_pgbench(s, "-M extended -c 8 -T 5", out, CORE_SH_OUT);
	core_assert_pgbench_clean(rc, out);
	ck_assert_msg(strstr(out, "query mode: extended") != NULL, "%s", out);
	free(out);

	PGconn *c = core_connect(s, NULL);
	ck_assert_int_eq(core_value_long(c, "SELECT count(*) FROM pgbench_branches"), 1);
	ck_assert_int_gt(core_value_long(c, "SELECT count(*) FROM pgbench_history"), 0);
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(pgbench_50_clients_on_10_servers_run_without_failures)
{
	struct sluice *s = core_start("transaction", "default_pool_size = 10\n"
						     "max_client_conn = 100\n"
						     "query_wait_timeout = 60s");
	char *out = malloc(CORE_SH_OUT);
	ck_assert(out != NULL);
	int rc = core_pgbench(s, "-i -s 1 -q", out, CORE_SH_OUT);
	ck_assert_msg(rc == 0, "pgbench -i: %d\n%s", rc, out);

	struct core_sampler sm;
	core_sampler_start(&sm, 0.1);
	rc = core_pgbench(s, "-c 50 -j 2 -T 20 -M extended", out, CORE_SH_OUT);
	core_sampler_finish(&sm);
	core_assert_pgbench_clean(rc, out);
	ck_assert_msg(sm.samples >= 100, "only %ld samples in 20 s", sm.samples);
	ck_assert_msg(sm.max_seen >= 1, "the sampler never saw a backend of app");
	if (!fixture_direct_mode())
		ck_assert_msg(sm.max_seen <= 10, "the primary had %ld backends of app, pool is 10",
			      sm.max_seen);
	free(out);
	sluice_stop_clean(s);
}
END_TEST

/* ---- reload ---- */

struct core_sleeper {
	PGconn *conn;
	long pid;
	bool ok;
};

static void *core_sleeper_run(void *arg)
{
	struct core_sleeper *sl = arg;
	PGresult *r = PQexec(sl->conn, "SELECT pg_backend_pid() FROM pg_sleep(1)");
	sl->ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	sl->pid = sl->ok ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : 0;
	PQclear(r);
	return NULL;
}

/* Four clients sleep 1 s at once; returns the elapsed time and the distinct backends. */
static double core_run_sleepers(const struct sluice *s, int *distinct)
{
	struct core_sleeper sl[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		sl[i] = (struct core_sleeper){ .conn = core_connect(s, NULL) };
	double t0 = fixture_now();
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, core_sleeper_run, &sl[i]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	double elapsed = fixture_now() - t0;
	*distinct = 0;
	for (int i = 0; i < 4; i++) {
		ck_assert_msg(sl[i].ok, "sleeper %d failed: %s", i, PQerrorMessage(sl[i].conn));
		bool seen = false;
		for (int j = 0; j < i; j++)
			seen = seen || sl[j].pid == sl[i].pid;
		if (!seen)
			(*distinct)++;
		PQfinish(sl[i].conn);
	}
	return elapsed;
}

START_TEST(sighup_grows_the_pool_without_dropping_clients)
{
	if (fixture_direct_mode())
		return;
	struct sluice *s = core_start("transaction", "default_pool_size = 2");
	PGconn *keeper = core_connect(s, NULL);
	core_assert_value(keeper, "SELECT 41", "41");

	int distinct;
	double elapsed = core_run_sleepers(s, &distinct);
	ck_assert_msg(distinct <= 2, "%d backends served a pool of 2", distinct);
	ck_assert_msg(elapsed >= 1.9, "4 sleeps of 1 s on 2 servers took only %.2f s", elapsed);

	core_rewrite(s, "transaction", "default_pool_size = 4");
	sluice_signal(s, SIGHUP);
	core_sleep(0.5);

	elapsed = core_run_sleepers(s, &distinct);
	ck_assert_msg(distinct == 4, "%d backends served a pool of 4", distinct);
	ck_assert_msg(elapsed < 1.8, "4 sleeps of 1 s on 4 servers took %.2f s", elapsed);

	ck_assert_int_eq(PQstatus(keeper), CONNECTION_OK);
	core_assert_value(keeper, "SELECT 42", "42");
	PQfinish(keeper);
	sluice_stop_clean(s);
}
END_TEST

/* ---- malformed packets ---- */

struct core_raw_reply {
	char type;
	char severity[16];
	char sqlstate[6];
	bool closed;
};

static int core_raw_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s",
		      strerror(errno));
	return fd;
}

/* Read until the peer closes (or 5 s pass) and decode the first message if it is 'E'. */
static struct core_raw_reply core_raw_read_reply(int fd)
{
	struct core_raw_reply reply = { 0 };
	unsigned char buf[65536];
	size_t len = 0;
	for (;;) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - len, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			reply.closed = true;
			break;
		}
		if (n < 0 || len + (size_t)n == sizeof(buf))
			break;
		len += (size_t)n;
	}
	if (len < 5)
		return reply;
	reply.type = (char)buf[0];
	uint32_t mlen = ((uint32_t)buf[1] << 24) | ((uint32_t)buf[2] << 16) |
			((uint32_t)buf[3] << 8) | buf[4];
	if (reply.type != 'E' || mlen < 4 || mlen + 1 > len)
		return reply;
	size_t pos = 5;
	while (pos < mlen + 1 && buf[pos] != 0) {
		char field = (char)buf[pos++];
		const char *value = (const char *)buf + pos;
		size_t vlen = strnlen(value, mlen + 1 - pos);
		if (field == 'C')
			snprintf(reply.sqlstate, sizeof(reply.sqlstate), "%.*s", (int)vlen, value);
		else if (field == 'V')
			snprintf(reply.severity, sizeof(reply.severity), "%.*s", (int)vlen, value);
		pos += vlen + 1;
	}
	return reply;
}

/* Send bad bytes; require 08P01 and a close (PostgreSQL itself only closes), while a
 * client connected before keeps working. */
static void core_check_bad_startup(const unsigned char *bytes, size_t len)
{
	struct sluice *s = core_start("transaction", "max_packet_size = 1048576");
	PGconn *good = core_connect(s, NULL);
	core_assert_value(good, "SELECT 'before'", "before");

	int fd = core_raw_connect(s->port);
	ck_assert_int_eq(send(fd, bytes, len, MSG_NOSIGNAL), (ssize_t)len);
	double t0 = fixture_now();
	struct core_raw_reply reply = core_raw_read_reply(fd);
	double elapsed = fixture_now() - t0;
	close(fd);
	ck_assert_msg(reply.closed, "the connection stayed open after a bad startup packet");
	ck_assert_msg(elapsed < 2.0, "closing took %.2f s", elapsed);
	if (!fixture_direct_mode()) {
		ck_assert_msg(reply.type == 'E', "no ErrorResponse (first byte 0x%02x)",
			      (unsigned char)reply.type);
		ck_assert_str_eq(reply.sqlstate, "08P01");
		ck_assert_str_eq(reply.severity, "FATAL");
	}

	core_assert_value(good, "SELECT 'after'", "after");
	PGconn *fresh = core_connect(s, NULL);
	core_assert_value(fresh, "SELECT 'fresh'", "fresh");
	PQfinish(fresh);
	PQfinish(good);
	sluice_stop_clean(s);
}

START_TEST(startup_packet_with_length_3_gets_08P01_and_close)
{
	static const unsigned char bytes[] = { 0, 0, 0, 3 };
	core_check_bad_startup(bytes, sizeof(bytes));
}
END_TEST

START_TEST(startup_packet_of_20_mb_gets_08P01_and_close)
{
	/* Length 20 000 000, protocol 3.0, then only the start of a body that never comes. */
	static const unsigned char bytes[] = { 0x01, 0x31, 0x2d, 0x00, 0x00, 0x03, 0x00, 0x00, 'u',
					       's',  'e',  'r',  0,    'a',  'p',  'p',  0 };
	core_check_bad_startup(bytes, sizeof(bytes));
}
END_TEST

/* ---- statement mode, idle timeouts ---- */

START_TEST(statement_mode_refuses_begin_with_0A000)
{
	if (fixture_direct_mode())
		return;
	struct sluice *s = core_start("statement", "default_pool_size = 1");
	PGconn *c = core_connect(s, NULL);
	PGresult *r = PQexec(c, "BEGIN");
	ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR, "BEGIN gave %s",
		      PQresStatus(PQresultStatus(r)));
	ck_assert_str_eq(fixture_sqlstate(r), "0A000");
	PQclear(r);
	PQfinish(c);

	/* The one server must not have been left inside a transaction block. */
	PGconn *fresh = core_connect(s, NULL);
	core_assert_value(fresh, "SELECT now() = statement_timestamp()", "t");
	core_assert_value(fresh, "SELECT 'served'", "served");
	PQfinish(fresh);
	sluice_stop_clean(s);
}
END_TEST

/* Keeps the SQLSTATE of an error that arrives while the connection is idle: libpq hands
 * such an ErrorResponse to the notice receiver. */
static void core_notice_sqlstate(void *arg, const PGresult *r)
{
	char *out = arg;
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	if (out[0] == '\0' && sev != NULL && strcmp(sev, "FATAL") == 0)
		snprintf(out, 6, "%s", fixture_sqlstate(r));
}

/*
 * Wait for the daemon to end an idle connection; return the seconds it took and the
 * SQLSTATE it gave, whether libpq saw it while idle or on the next query.
 */
static double core_wait_idle_kill(PGconn *c, char sqlstate[6])
{
	double t0 = fixture_now();
	while (sqlstate[0] == '\0' && PQstatus(c) == CONNECTION_OK && fixture_now() - t0 < 6.0) {
		struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };
		poll(&pfd, 1, 50);
		PQconsumeInput(c);
		PQisBusy(c);
	}
	double elapsed = fixture_now() - t0;
	PGresult *r = PQexec(c, "SELECT 1");
	ck_assert_msg(PQresultStatus(r) != PGRES_TUPLES_OK, "the idle connection still worked");
	if (sqlstate[0] == '\0')
		snprintf(sqlstate, 6, "%s", fixture_sqlstate(r));
	PQclear(r);
	ck_assert_int_eq(PQstatus(c), CONNECTION_BAD);
	return elapsed;
}

START_TEST(idle_transaction_timeout_closes_with_25P03_and_releases_the_lock)
{
	core_setup("DROP TABLE IF EXISTS t_idle; CREATE TABLE t_idle (id int PRIMARY KEY, v int);"
		   "INSERT INTO t_idle VALUES (1, 0)");
	struct sluice *s = core_start("transaction", "idle_transaction_timeout = 1s");
	PGconn *idle = core_connect(
		s, fixture_direct_mode() ? "options='-c idle_in_transaction_session_timeout=1s'"
					 : NULL);
	char sqlstate[6] = "";
	PQsetNoticeReceiver(idle, core_notice_sqlstate, sqlstate);
	core_exec(idle, "BEGIN");
	core_exec(idle, "UPDATE t_idle SET v = 1 WHERE id = 1");
	double elapsed = core_wait_idle_kill(idle, sqlstate);
	ck_assert_str_eq(sqlstate, "25P03");
	ck_assert_msg(elapsed >= 0.8 && elapsed <= 3.0, "closed after %.2f s, expected ~1 s",
		      elapsed);
	PQfinish(idle);

	PGconn *c = core_connect(s, NULL);
	core_exec(c, "BEGIN");
	core_exec(c, "SET LOCAL lock_timeout = '2s'");
	/* 10, not 11: the idle client's update was rolled back. */
	core_assert_value(c, "UPDATE t_idle SET v = v + 10 WHERE id = 1 RETURNING v", "10");
	core_exec(c, "COMMIT");
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(client_idle_timeout_closes_with_57P05)
{
	struct sluice *s = core_start("transaction", "client_idle_timeout = 1s");
	PGconn *idle = core_connect(
		s, fixture_direct_mode() ? "options='-c idle_session_timeout=1s'" : NULL);
	char sqlstate[6] = "";
	PQsetNoticeReceiver(idle, core_notice_sqlstate, sqlstate);
	core_assert_value(idle, "SELECT 'awake'", "awake");
	double elapsed = core_wait_idle_kill(idle, sqlstate);
	ck_assert_str_eq(sqlstate, "57P05");
	ck_assert_msg(elapsed >= 0.8 && elapsed <= 3.0, "closed after %.2f s, expected ~1 s",
		      elapsed);
	PQfinish(idle);
	PGconn *c = core_connect(s, NULL);
	core_assert_value(c, "SELECT 'next'", "next");
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

/* ---- servers that die, daemons that stop ---- */

START_TEST(session_set_follows_the_client_and_leaks_to_no_one)
{
	core_setup("DROP SCHEMA IF EXISTS core_s1 CASCADE; DROP SCHEMA IF EXISTS core_s2 CASCADE;"
		   "CREATE SCHEMA core_s1; CREATE SCHEMA core_s2;"
		   "CREATE TABLE core_s1.t (v text); CREATE TABLE core_s2.t (v text);"
		   "INSERT INTO core_s1.t VALUES ('one'); INSERT INTO core_s2.t VALUES ('two')");
	struct sluice *s = core_start("transaction", "default_pool_size = 2");
	PGconn *a = core_connect(s, NULL), *b = core_connect(s, NULL), *c = core_connect(s, NULL);
	char *base = fixture_value(c, "SHOW search_path");
	core_exec(a, "SET search_path = core_s1");
	core_exec(b, "SET search_path TO \"core_s2\", public; SELECT 1");
	/* c holds one server in a transaction now and then: the others must share the rest. */
	for (int i = 0; i < 10; i++) {
		if (i % 3 == 0)
			core_exec(c, "BEGIN");
		core_assert_value(a, "SELECT v FROM t", "one");
		core_assert_value(b, "SELECT v FROM t", "two");
		core_assert_value(c, "SHOW search_path", base);
		if (i % 3 == 0)
			core_exec(c, "COMMIT");
	}
	/* A SET in a request that failed did not happen. */
	PGresult *r = PQexec(c, "SET search_path = core_s1; SELECT 1/0");
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	PQclear(r);
	for (int i = 0; i < 4; i++) {
		core_assert_value(c, "SHOW search_path", base);
		core_assert_value(a, "SELECT v FROM t", "one");
	}
	core_exec(a, "RESET search_path");
	for (int i = 0; i < 4; i++) {
		core_assert_value(a, "SHOW search_path", base);
		core_assert_value(b, "SELECT v FROM t", "two");
	}
	free(base);
	PQfinish(a);
	PQfinish(b);
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

/* Drivers that send every statement as Parse/Bind/Execute (pgjdbc, psycopg 3) get the same. */
START_TEST(session_state_through_the_extended_protocol_is_handled_as_in_queries)
{
	core_setup("DROP SCHEMA IF EXISTS core_x1 CASCADE; CREATE SCHEMA core_x1;"
		   "CREATE TABLE core_x1.t (v text); INSERT INTO core_x1.t VALUES ('x1')");
	struct sluice *s = core_start("transaction", "default_pool_size = 2");
	PGconn *a = core_connect(s, NULL), *c = core_connect(s, NULL);
	char *base = fixture_value(c, "SHOW search_path");
	PGresult *r = core_exec_extended(a, "SET search_path = core_x1");
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	/* c holds one server in a transaction now and then: a runs on both. */
	for (int i = 0; i < 10; i++) {
		if (i % 3 == 0)
			core_exec(c, "BEGIN");
		core_assert_extended_value(a, "SELECT v FROM t", "x1");
		core_assert_value(c, "SHOW search_path", base);
		if (i % 3 == 0)
			core_exec(c, "COMMIT");
	}
	r = core_exec_extended(a, "RESET search_path");
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	for (int i = 0; i < 4; i++) {
		if (i % 2 == 0)
			core_exec(c, "BEGIN");
		core_assert_extended_value(a, "SHOW search_path", base);
		if (i % 2 == 0)
			core_exec(c, "COMMIT");
	}
	/* The same SET as a named statement, as pgjdbc sends it after a few runs. */
	r = PQprepare(a, "set_x1", "SET search_path = core_x1", 0, NULL);
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	r = PQexecPrepared(a, "set_x1", 0, NULL, NULL, NULL, 0);
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	for (int i = 0; i < 4; i++) {
		if (i % 2 == 0)
			core_exec(c, "BEGIN");
		core_assert_extended_value(a, "SELECT v FROM t", "x1");
		if (i % 2 == 0)
			core_exec(c, "COMMIT");
	}
	core_exec(a, "RESET search_path");
	/* What cannot follow a client is refused at its Parse, and the client goes on. */
	core_assert_extended_error(a, "LISTEN jobs", "0A000",
				   "LISTEN is not supported under transaction pooling");
	core_assert_extended_error(a, "DISCARD ALL", "0A000", "as simple queries only");
	core_assert_extended_value(a, "SELECT 'still here'", "still here");
	/* Inside a transaction the client keeps its server instead, as a direct one would. */
	core_exec(a, "BEGIN");
	r = core_exec_extended(a, "LISTEN jobs");
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	core_exec(a, "COMMIT");
	core_exec(c, "NOTIFY jobs");
	core_exec(a, "SELECT 1");
	PGnotify *n = PQnotifies(a);
	ck_assert_msg(n != NULL, "the pinned client missed its notification");
	ck_assert_str_eq(n->relname, "jobs");
	PQfreemem(n);
	free(base);
	PQfinish(a);
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(server_killed_mid_query_fails_that_client_and_spares_the_next)
{
	struct sluice *s = core_start("transaction", "default_pool_size = 2");
	PGconn *c = core_connect(s, NULL);
	PGconn *su = core_superuser();
	ck_assert_int_eq(PQsendQuery(c, "SELECT pg_sleep(10)"), 1);
	long pid = core_wait_active(su, "SELECT pg_sleep(10)");

	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%ld)", pid);
	double t0 = fixture_now();
	core_assert_value(su, sql, "t");
	PGresult *r = PQgetResult(c);
	double elapsed = fixture_now() - t0;
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	const char *state = fixture_sqlstate(r);
	ck_assert_msg(strcmp(state, "57P01") == 0 || strcmp(state, "08006") == 0,
		      "SQLSTATE \"%s\": %s", state, PQerrorMessage(c));
	PQclear(r);
	while ((r = PQgetResult(c)) != NULL)
		PQclear(r);
	ck_assert_msg(elapsed < 3.0, "the error took %.2f s", elapsed);
	r = PQexec(c, "SELECT 1");
	ck_assert_msg(PQresultStatus(r) != PGRES_TUPLES_OK, "the broken client still worked");
	PQclear(r);
	ck_assert_int_eq(PQstatus(c), CONNECTION_BAD);
	PQfinish(c);

	PGconn *next = core_connect(s, NULL);
	long next_pid = core_value_long(next, "SELECT pg_backend_pid()");
	ck_assert_msg(next_pid != pid, "the new client got the terminated backend %ld", pid);
	core_assert_value(next, "SELECT 'alive'", "alive");
	PQfinish(next);
	PQfinish(su);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(sigterm_lets_the_running_transaction_commit_then_exits_0)
{
	if (fixture_direct_mode())
		return;
	core_setup("DROP TABLE IF EXISTS t_term; CREATE TABLE t_term (id int)");
	struct sluice *s = core_start("transaction", "shutdown_timeout = 10s");
	PGconn *c = core_connect(s, NULL);
	core_exec(c, "BEGIN");
	core_exec(c, "INSERT INTO t_term VALUES (1)");

	sluice_signal(s, SIGTERM);
	core_sleep(0.3);
	PGconn *late = fixture_connect(s->port, core_db(), FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	ck_assert_msg(PQstatus(late) != CONNECTION_OK, "a new client was let in after SIGTERM");
	PQfinish(late);

	core_exec(c, "INSERT INTO t_term VALUES (2)");
	core_exec(c, "COMMIT");
	PQfinish(c);

	struct sluice copy = *s;
	int rc = sluice_wait_exit(s, 5.0);
	if (rc == -2) {
		rc = sluice_stop(s);
		ck_abort_msg("pgsluice still ran 5 s after the last transaction (then %d)", rc);
	}
	if (rc != 0) {
		char *log = sluice_log(&copy);
		ck_abort_msg("pgsluice exited with %d after SIGTERM; log:\n%s", rc, log);
	}
	PGconn *su = core_superuser();
	core_assert_value(su, "SELECT count(*) FROM t_term", "2");
	PQfinish(su);
}
END_TEST

/* ---- the suite ---- */

static TCase *core_tcase(const char *name, double timeout)
{
	TCase *tc = tcase_create(name);
	tcase_add_unchecked_fixture(tc, fixture_cluster_start, NULL);
	tcase_set_timeout(tc, timeout);
	return tc;
}

Suite *core_suite(void)
{
	Suite *s = suite_create("core");

	TCase *tc = core_tcase("protocol", 120);
	tcase_add_test(tc, simple_and_extended_protocol_work_in_session_mode);
	tcase_add_test(tc, simple_and_extended_protocol_work_in_transaction_mode);
	tcase_add_test(tc, simple_and_extended_protocol_work_in_statement_mode);
	tcase_add_test(tc, copy_in_and_out_of_100000_rows_keeps_every_byte);
	tcase_add_test(tc, bytea_of_50_mb_round_trips_unchanged);
	tcase_add_test(tc, cancel_of_pg_sleep_returns_57014_within_one_second);
	tcase_add_test(tc, each_client_keeps_its_own_startup_parameters_on_a_shared_server);
	suite_add_tcase(s, tc);

	tc = core_tcase("errors", 120);
	tcase_add_test(tc, wrong_password_is_refused_with_28P01);
	tcase_add_test(tc, unknown_user_is_refused_like_a_wrong_password);
	tcase_add_test(tc, scram_secret_alone_logs_in_to_servers_by_pass_through);
	tcase_add_test(tc, unknown_database_is_refused_with_3D000);
	tcase_add_test(tc, max_client_conn_exceeded_is_refused_with_53300);
	tcase_add_test(tc, startup_packet_with_length_3_gets_08P01_and_close);
	tcase_add_test(tc, startup_packet_of_20_mb_gets_08P01_and_close);
	tcase_add_test(tc, statement_mode_refuses_begin_with_0A000);
	suite_add_tcase(s, tc);

	tc = core_tcase("pooling", 120);
	tcase_add_test(tc, two_hundred_clients_share_a_pool_of_five);
	tcase_add_test(tc, query_wait_timeout_gives_57014_and_the_client_can_retry);
	tcase_add_test(tc, max_user_connections_holds_across_databases_and_idle_servers_make_room);
	tcase_add_test(tc, max_db_connections_holds_across_users_and_idle_servers_make_room);
	tcase_add_test(tc, killed_client_in_transaction_leaves_no_lock);
	tcase_add_test(tc, idle_transaction_timeout_closes_with_25P03_and_releases_the_lock);
	tcase_add_test(tc, client_idle_timeout_closes_with_57P05);
	tcase_add_test(tc, session_set_follows_the_client_and_leaks_to_no_one);
	tcase_add_test(tc, session_state_through_the_extended_protocol_is_handled_as_in_queries);
	tcase_add_test(tc, server_killed_mid_query_fails_that_client_and_spares_the_next);
	tcase_add_test(tc, sighup_grows_the_pool_without_dropping_clients);
	tcase_add_test(tc, sigterm_lets_the_running_transaction_commit_then_exits_0);
	suite_add_tcase(s, tc);

	tc = core_tcase("load", 240);
	tcase_add_test(tc, pgbench_simple_and_extended_run_without_failures);
	tcase_add_test(tc, pgbench_50_clients_on_10_servers_run_without_failures);
	suite_add_tcase(s, tc);
	return s;
}
