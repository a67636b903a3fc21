/*
 * test_batching.c - insert batching (batch_inserts) against the real primary:
 * concurrent single-row INSERTs become multi-row INSERTs, and every client
 * still gets exactly the answer it would have had alone - success, a constraint
 * or type error, INSERT 0 0 of ON CONFLICT DO NOTHING - in both protocols.
 * Batches are built deterministically with a pool of one server held by another
 * client's open transaction; SHOW BATCHES proves what ran batched. Raw protocol
 * clients compare reply bytes with a direct connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

#include "fixture.h"
#include "suites.h"

/* The alias with batching on (primary only, so nothing is routed away). */
#define BT_DB "app_batch"
/* The load test: clients, INSERTs each, and the pool they share. */
#define BT_LOAD_CLIENTS 64
#define BT_LOAD_ROWS	500
#define BT_LOAD_POOL	8
/* Most clients in one deterministic batch. */
#define BT_MAX_CLIENTS 16
/* Room for the raw replies compared byte for byte. */
#define BT_RAW_MAX 4096

/* ---- helpers ---- */

/*
 * Starts pgsluice with BT_DB on the primary: batch_inserts=on unless db_opts (appended to its
 * entry) sets it.
 */
static struct sluice *bt_start(const char *global_extra, const char *db_opts)
{
	char global[1024], databases[512];
	snprintf(global, sizeof(global), "pool_mode = transaction\n%s",
		 global_extra != NULL ? global_extra : "");
	const char *opts = db_opts != NULL ? db_opts : "";
	snprintf(databases, sizeof(databases), "%s = host=127.0.0.1 port=%d dbname=%s %s%s", BT_DB,
		 fixture_primary_port(), FIXTURE_DB,
		 strstr(opts, "batch_inserts") == NULL ? "batch_inserts=on " : "", opts);
	return sluice_start(global, databases);
}

static PGconn *bt_connect(const struct sluice *s)
{
	return fixture_connect_ok(s->port, BT_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
}

static PGconn *bt_admin(const struct sluice *s)
{
	return fixture_connect_ok(s->port, "pgsluice", FIXTURE_ADMIN_USER, FIXTURE_ADMIN_PASSWORD,
				  NULL);
}

static PGconn *bt_superuser(void)
{
	return fixture_connect_ok(fixture_primary_port(), FIXTURE_DB, "postgres", NULL, NULL);
}

static void bt_exec(PGconn *c, const char *sql)
{
	PQclear(fixture_exec_ok(c, sql));
}

/* (Re)creates table name on the primary: a primary key, a unique column, text, int. */
static void bt_table(const char *name)
{
	PGconn *su = bt_superuser();
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "DROP TABLE IF EXISTS %s; CREATE TABLE %s (id int PRIMARY KEY, u "
		 "int UNIQUE, "
		 "v text, n int); GRANT ALL ON %s TO " FIXTURE_USER,
		 name, name, name);
	bt_exec(su, sql);
	PQfinish(su);
}

/* Runs sql on the primary as the superuser. */
static void bt_su_exec(const char *sql)
{
	PGconn *su = bt_superuser();
	bt_exec(su, sql);
	PQfinish(su);
}

/* An integer the primary answers to sql. */
static long bt_count(const char *sql)
{
	PGconn *su = bt_superuser();
	char *v = fixture_value(su, sql);
	long n = atol(v);
	free(v);
	PQfinish(su);
	return n;
}

/* Column col of SHOW BATCHES for BT_DB and the fixture user, as a number. */
static double bt_batches(PGconn *admin, const char *col)
{
	PGresult *r = fixture_exec_ok(admin, "SHOW BATCHES");
	int fdb = PQfnumber(r, "database"), fuser = PQfnumber(r, "user"), f = PQfnumber(r, col);
	ck_assert_msg(fdb >= 0 && fuser >= 0 && f >= 0, "SHOW BATCHES has no column %s", col);
	double v = 0;
	for (int i = 0; i < PQntuples(r); i++)
		if (strcmp(PQgetvalue(r, i, fdb), BT_DB) == 0 &&
		    strcmp(PQgetvalue(r, i, fuser), FIXTURE_USER) == 0)
			v = atof(PQgetvalue(r, i, f));
	PQclear(r);
	return v;
}

/* Rows of SHOW POOLS for BT_DB. */
static int bt_pool_count(PGconn *admin)
{
	PGresult *r = fixture_exec_ok(admin, "SHOW POOLS");
	int fdb = PQfnumber(r, "database"), n = 0;
	for (int i = 0; i < PQntuples(r); i++)
		n += strcmp(PQgetvalue(r, i, fdb), BT_DB) == 0;
	PQclear(r);
	return n;
}

/* Waits until rows_waiting of SHOW BATCHES is n (up to 10 s). */
static void bt_wait_rows_waiting(PGconn *admin, int n)
{
	double deadline = fixture_now() + 10;
	while ((int)bt_batches(admin, "rows_waiting") != n) {
		ck_assert_msg(fixture_now() < deadline, "rows_waiting stayed at %d, not %d",
			      (int)bt_batches(admin, "rows_waiting"), n);
		fixture_sleep(0.01);
	}
}

/* One client's request of a deterministic batch, and what it got. */
struct bt_req {
	const char *sql;
	const char *setup; /* run on its connection before anything is held, or NULL */
	int n_params; /* 0: simple Query; else PQsendQueryParams with values */
	const char *values[4];
	PGconn *conn;
	ExecStatusType status;
	char sqlstate[6];
	char tag[32];
};

/* Sends r's request without waiting for the answer. */
static void bt_send(struct bt_req *r)
{
	int ok = r->n_params == 0 ? PQsendQuery(r->conn, r->sql)
				  : PQsendQueryParams(r->conn, r->sql, r->n_params, NULL, r->values,
						      NULL, NULL, 0);
	ck_assert_msg(ok == 1, "send: %s", PQerrorMessage(r->conn));
}

/* Reads r's answer: the status, SQLSTATE and command tag of its one result. */
static void bt_collect(struct bt_req *r)
{
	PGresult *res;
	int n = 0;
	while ((res = PQgetResult(r->conn)) != NULL) {
		if (n++ == 0) {
			r->status = PQresultStatus(res);
			snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", fixture_sqlstate(res));
			snprintf(r->tag, sizeof(r->tag), "%s", PQcmdStatus(res));
		}
		PQclear(res);
	}
	ck_assert_int_eq(n, 1);
}

/*
 * Connects a client for each of reqs[0..n), holds the pool's only server with an
 * open transaction of another client, and sends every request, which then waits
 * batched. Returns the holder: its COMMIT lets the batch run.
 */
static PGconn *bt_send_batched(struct sluice *s, PGconn *admin, struct bt_req *reqs, int n)
{
	for (int i = 0; i < n; i++) {
		reqs[i].conn = bt_connect(s);
		if (reqs[i].setup != NULL)
			bt_exec(reqs[i].conn, reqs[i].setup);
	}
	PGconn *holder = bt_connect(s);
	bt_exec(holder, "BEGIN");
	bt_exec(holder, "SELECT 1");
	for (int i = 0; i < n; i++) {
		bt_send(&reqs[i]);
		bt_wait_rows_waiting(admin, i + 1);
	}
	return holder;
}

/* Runs reqs[0..n) as one batch; each request's answer is in its struct afterwards. */
static void bt_run_batch(struct sluice *s, PGconn *admin, struct bt_req *reqs, int n)
{
	PGconn *holder = bt_send_batched(s, admin, reqs, n);
	bt_exec(holder, "COMMIT");
	for (int i = 0; i < n; i++)
		bt_collect(&reqs[i]);
	PQfinish(holder);
}

static void bt_finish_all(struct bt_req *reqs, int n)
{
	for (int i = 0; i < n; i++)
		PQfinish(reqs[i].conn);
}

static void bt_assert_inserted(const struct bt_req *r, const char *tag)
{
	ck_assert_msg(r->status == PGRES_COMMAND_OK, "%s: status %s (%s)", r->sql,
		      PQresStatus(r->status), r->sqlstate);
	ck_assert_str_eq(r->tag, tag);
}

static void bt_assert_error(const struct bt_req *r, const char *sqlstate)
{
	ck_assert_msg(r->status == PGRES_FATAL_ERROR, "%s: status %s, not an error", r->sql,
		      PQresStatus(r->status));
	ck_assert_str_eq(r->sqlstate, sqlstate);
}

/* ---- load ---- */

struct bt_load {
	int port;
	int ok[BT_LOAD_CLIENTS];
	int id;
};

static void *bt_load_client(void *arg)
{
	struct bt_load *ld = arg;
	int me = __atomic_fetch_add(&ld->id, 1, __ATOMIC_SEQ_CST);
	PGconn *c = fixture_connect(ld->port, BT_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return NULL;
	}
	for (int i = 0; i < BT_LOAD_ROWS; i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "INSERT INTO bt_load (id, n) VALUES (%d, %d)",
			 me * BT_LOAD_ROWS + i, me);
		PGresult *r = PQexec(c, sql);
		if (PQresultStatus(r) == PGRES_COMMAND_OK &&
		    strcmp(PQcmdStatus(r), "INSERT 0 1") == 0)
			ld->ok[me]++;
		PQclear(r);
	}
	PQfinish(c);
	return NULL;
}

START_TEST(sixty_four_clients_insert_32000_rows_in_batches)
{
	bt_table("bt_load");
	char opts[64];
	snprintf(opts, sizeof(opts), "pool_size=%d", BT_LOAD_POOL);
	struct sluice *s = bt_start(NULL, opts);
	struct bt_load ld = {.port = s->port};
	pthread_t t[BT_LOAD_CLIENTS];
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	for (int i = 0; i < BT_LOAD_CLIENTS; i++)
		ck_assert_int_eq(pthread_create(&t[i], &attr, bt_load_client, &ld), 0);
	for (int i = 0; i < BT_LOAD_CLIENTS; i++)
		pthread_join(t[i], NULL);
	pthread_attr_destroy(&attr);
	for (int i = 0; i < BT_LOAD_CLIENTS; i++)
		ck_assert_msg(ld.ok[i] == BT_LOAD_ROWS, "client %d got %d INSERT 0 1, not %d", i,
			      ld.ok[i], BT_LOAD_ROWS);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_load"), BT_LOAD_CLIENTS * BT_LOAD_ROWS);
	ck_assert_int_eq(bt_count("SELECT count(DISTINCT n) FROM bt_load"), BT_LOAD_CLIENTS);
	PGconn *admin = bt_admin(s);
	double batches = bt_batches(admin, "batches"), avg = bt_batches(admin, "avg_rows");
	ck_assert_msg(batches > 0 && avg > 1.0, "%.0f batches of %.2f rows on average", batches,
		      avg);
	ck_assert_int_eq((int)bt_batches(admin, "fallbacks"), 0);
	ck_assert_int_eq((int)bt_batches(admin, "rows_waiting"), 0);
	/* SHOW QUERIES counts every INSERT once, batched or run alone. */
	const char *insert = "insert into bt_load(id, n) values";
	ck_assert_int_eq(fixture_query_stat(admin, insert, "calls"), BT_LOAD_CLIENTS * BT_LOAD_ROWS);
	ck_assert_int_eq(fixture_query_stat(admin, insert, "rows"), BT_LOAD_CLIENTS * BT_LOAD_ROWS);
	ck_assert_int_eq(fixture_query_stat(admin, insert, "errors"), 0);
	PQfinish(admin);
	sluice_stop_clean(s);
}
END_TEST

/* ---- failures inside a batch ---- */

START_TEST(unique_violation_fails_only_its_client_and_the_other_rows_commit)
{
	bt_table("bt_uniq");
	bt_su_exec("INSERT INTO bt_uniq (id, u) VALUES (1, 100)");
	struct sluice *s = bt_start(NULL, "pool_size=1");
	PGconn *admin = bt_admin(s);
	struct bt_req reqs[] = {
		{.sql = "INSERT INTO bt_uniq (id, u) VALUES (10, 110)"},
		{.sql = "INSERT INTO bt_uniq (id, u) VALUES (11, 111)"},
		{.sql = "INSERT INTO bt_uniq (id, u) VALUES (12, 100)"}, /* u taken */
		{.sql = "INSERT INTO bt_uniq (id, u) VALUES (13, 113)"},
		{.sql = "insert into BT_UNIQ (id, u) values (14, 114)"},
	};
	int n = (int)(sizeof(reqs) / sizeof(reqs[0]));
	bt_run_batch(s, admin, reqs, n);
	for (int i = 0; i < n; i++) {
		if (i == 2)
			bt_assert_error(&reqs[i], "23505");
		else
			bt_assert_inserted(&reqs[i], "INSERT 0 1");
	}
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_uniq"), 5);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_uniq WHERE id = 12"), 0);
	ck_assert_int_eq((int)bt_batches(admin, "fallbacks"), 1);
	/* The clients go on as usual on their sessions. */
	PQclear(fixture_exec_ok(reqs[2].conn, "SELECT 1"));
	bt_finish_all(reqs, n);
	PQfinish(admin);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(type_errors_fail_only_their_client_in_both_protocols)
{
	bt_table("bt_type");
	struct sluice *s = bt_start(NULL, "pool_size=1");
	PGconn *admin = bt_admin(s);
	struct bt_req simple[] = {
		{.sql = "INSERT INTO bt_type (id, n) VALUES (1, 1)"},
		{.sql = "INSERT INTO bt_type (id, n) VALUES (2, 'abc')"},
		{.sql = "INSERT INTO bt_type (id, n) VALUES (3, 3)"},
	};
	bt_run_batch(s, admin, simple, 3);
	bt_assert_inserted(&simple[0], "INSERT 0 1");
	bt_assert_error(&simple[1], "22P02");
	bt_assert_inserted(&simple[2], "INSERT 0 1");
	bt_finish_all(simple, 3);
	const char *sql = "INSERT INTO bt_type (id, n) VALUES ($1, $2)";
	struct bt_req ext[] = {
		{.sql = sql, .n_params = 2, .values = {"11", "11"}},
		{.sql = sql, .n_params = 2, .values = {"12", "abc"}},
		{.sql = sql, .n_params = 2, .values = {"13", "13"}},
		{.sql = sql, .n_params = 2, .values = {"14", "14"}},
	};
	bt_run_batch(s, admin, ext, 4);
	bt_assert_inserted(&ext[0], "INSERT 0 1");
	bt_assert_error(&ext[1], "22P02");
	bt_assert_inserted(&ext[2], "INSERT 0 1");
	bt_assert_inserted(&ext[3], "INSERT 0 1");
	bt_finish_all(ext, 4);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_type"), 5);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_type WHERE id IN (2, 12)"), 0);
	ck_assert_int_eq((int)bt_batches(admin, "fallbacks"), 2);
	/* Each row counts once, as its client saw it: the failed batches do not count. */
	const char *insert = "insert into bt_type(id, n) values";
	ck_assert_int_eq(fixture_query_stat(admin, insert, "calls"), 7);
	ck_assert_int_eq(fixture_query_stat(admin, insert, "errors"), 2);
	ck_assert_int_eq(fixture_query_stat(admin, insert, "rows"), 5);
	PQfinish(admin);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(on_conflict_do_nothing_tells_each_client_its_own_count)
{
	bt_table("bt_conflict");
	bt_su_exec("INSERT INTO bt_conflict (id) VALUES (100), (103)");
	struct sluice *s = bt_start(NULL, "pool_size=1");
	PGconn *admin = bt_admin(s);
	struct bt_req reqs[] = {
		{.sql = "INSERT INTO bt_conflict (id) VALUES (100) ON CONFLICT DO NOTHING"},
		{.sql = "INSERT INTO bt_conflict (id) VALUES (101) ON CONFLICT DO NOTHING"},
		{.sql = "INSERT INTO bt_conflict (id) VALUES (102) ON CONFLICT DO NOTHING"},
		{.sql = "INSERT INTO bt_conflict (id) VALUES (103) ON CONFLICT DO NOTHING"},
	};
	bt_run_batch(s, admin, reqs, 4);
	bt_assert_inserted(&reqs[0], "INSERT 0 0");
	bt_assert_inserted(&reqs[1], "INSERT 0 1");
	bt_assert_inserted(&reqs[2], "INSERT 0 1");
	bt_assert_inserted(&reqs[3], "INSERT 0 0");
	bt_finish_all(reqs, 4);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_conflict"), 4);
	/* Without a conflict the same shape commits as one batch. */
	struct bt_req more[] = {
		{.sql = "INSERT INTO bt_conflict (id) VALUES (200) ON CONFLICT DO NOTHING"},
		{.sql = "INSERT INTO bt_conflict (id) VALUES (201) ON CONFLICT DO NOTHING"},
	};
	double fallbacks = bt_batches(admin, "fallbacks");
	bt_run_batch(s, admin, more, 2);
	bt_assert_inserted(&more[0], "INSERT 0 1");
	bt_assert_inserted(&more[1], "INSERT 0 1");
	bt_finish_all(more, 2);
	ck_assert(bt_batches(admin, "fallbacks") == fallbacks);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_conflict"), 6);
	PQfinish(admin);
	sluice_stop_clean(s);
}
END_TEST

/* A row a BEFORE trigger drops is not stored: the batch falls back, and only its client hears 0. */
START_TEST(a_row_a_trigger_drops_tells_only_its_client_insert_0_0)
{
	bt_table("bt_skip");
	bt_su_exec("CREATE OR REPLACE FUNCTION bt_skip_odd() RETURNS trigger LANGUAGE plpgsql "
		   "AS $$ BEGIN IF NEW.id % 2 = 1 THEN RETURN NULL; END IF; RETURN NEW; END $$");
	bt_su_exec("CREATE TRIGGER bt_skip_odd BEFORE INSERT ON bt_skip FOR EACH ROW "
		   "EXECUTE FUNCTION bt_skip_odd()");
	struct sluice *s = bt_start(NULL, "pool_size=1");
	PGconn *admin = bt_admin(s);
	struct bt_req reqs[] = {
		{.sql = "INSERT INTO bt_skip (id) VALUES (2)"},
		{.sql = "INSERT INTO bt_skip (id) VALUES (3)"},
		{.sql = "INSERT INTO bt_skip (id) VALUES (4)"},
	};
	bt_run_batch(s, admin, reqs, 3);
	bt_assert_inserted(&reqs[0], "INSERT 0 1");
	bt_assert_inserted(&reqs[1], "INSERT 0 0");
	bt_assert_inserted(&reqs[2], "INSERT 0 1");
	bt_finish_all(reqs, 3);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_skip"), 2);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_skip WHERE id IN (2, 4)"), 2);
	ck_assert(bt_batches(admin, "fallbacks") == 1);
	PQfinish(admin);
	sluice_stop_clean(s);
}
END_TEST

/* Rows run with their clients' settings (BEGIN carries the SETs); rows of other settings
 * share no batch, and the server is set back for whoever comes next. */
START_TEST(a_batch_runs_with_the_settings_of_its_clients)
{
	bt_table("bt_sp");
	bt_su_exec("DROP SCHEMA IF EXISTS bt_s CASCADE; CREATE SCHEMA bt_s; "
		   "CREATE TABLE bt_s.bt_sp (id int PRIMARY KEY); "
		   "GRANT USAGE ON SCHEMA bt_s TO " FIXTURE_USER "; "
		   "GRANT ALL ON bt_s.bt_sp TO " FIXTURE_USER);
	struct sluice *s = bt_start(NULL, "pool_size=1");
	PGconn *admin = bt_admin(s);
	struct bt_req reqs[] = {
		{.sql = "INSERT INTO bt_sp (id) VALUES (1)", .setup = "SET search_path = bt_s"},
		{.sql = "INSERT INTO bt_sp (id) VALUES (2)", .setup = "SET search_path = bt_s"},
		{.sql = "INSERT INTO bt_sp (id) VALUES (3)"},
		{.sql = "INSERT INTO bt_sp (id) VALUES (4)"},
	};
	bt_run_batch(s, admin, reqs, 4);
	for (int i = 0; i < 4; i++)
		bt_assert_inserted(&reqs[i], "INSERT 0 1");
	bt_exec(reqs[2].conn, "INSERT INTO bt_sp (id) VALUES (5)");
	bt_exec(reqs[0].conn, "INSERT INTO bt_sp (id) VALUES (6)");
	bt_finish_all(reqs, 4);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_s.bt_sp WHERE id IN (1, 2, 6)"), 3);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_s.bt_sp"), 3);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM public.bt_sp WHERE id IN (3, 4, 5)"), 3);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM public.bt_sp"), 3);
	ck_assert(bt_batches(admin, "batches") == 2);
	ck_assert(bt_batches(admin, "fallbacks") == 0);
	PQfinish(admin);
	sluice_stop_clean(s);
}
END_TEST

/* ---- extended protocol ---- */

START_TEST(extended_rows_batch_with_each_value_in_its_column)
{
	bt_table("bt_ext");
	struct sluice *s = bt_start(NULL, "pool_size=1");
	PGconn *admin = bt_admin(s);
	const char *sql = "INSERT INTO bt_ext (id, v, n) VALUES ($1, $2, $3)";
	struct bt_req reqs[6];
	char vals[6][3][32];
	for (int i = 0; i < 6; i++) {
		snprintf(vals[i][0], sizeof(vals[i][0]), "%d", 100 + i);
		snprintf(vals[i][1], sizeof(vals[i][1]), "value %d", i);
		snprintf(vals[i][2], sizeof(vals[i][2]), "%d", i * 10);
		reqs[i] = (struct bt_req){
			.sql = sql, .n_params = 3, .values = {vals[i][0], vals[i][1], vals[i][2]}};
	}
	double batches = bt_batches(admin, "batches"), rows = bt_batches(admin, "rows");
	bt_run_batch(s, admin, reqs, 6);
	for (int i = 0; i < 6; i++)
		bt_assert_inserted(&reqs[i], "INSERT 0 1");
	bt_finish_all(reqs, 6);
	ck_assert(bt_batches(admin, "batches") == batches + 1);
	ck_assert(bt_batches(admin, "rows") == rows + 6);
	ck_assert_int_eq((int)bt_batches(admin, "fallbacks"), 0);
	for (int i = 0; i < 6; i++) {
		char q[160];
		snprintf(q, sizeof(q),
			 "SELECT count(*) FROM bt_ext WHERE id = %d AND v = 'value %d' AND "
			 "n = %d",
			 100 + i, i, i * 10);
		ck_assert_msg(bt_count(q) == 1, "row %d is not as its client sent it", i);
	}
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_ext"), 6);
	PQfinish(admin);
	sluice_stop_clean(s);
}
END_TEST

/* ---- clients that leave ---- */

START_TEST(client_killed_while_its_row_waits_leaves_no_trace)
{
	bt_table("bt_kill");
	struct sluice *s = bt_start(NULL, "pool_size=1");
	PGconn *admin = bt_admin(s);
	struct bt_req reqs[] = {
		{.sql = "INSERT INTO bt_kill (id) VALUES (1)"},
		{.sql = "INSERT INTO bt_kill (id) VALUES (2)"},
		{.sql = "INSERT INTO bt_kill (id) VALUES (3)"},
	};
	PGconn *holder = bt_send_batched(s, admin, reqs, 3);
	PGresult *clients = fixture_exec_ok(admin, "SHOW CLIENTS");
	int batched = 0, fstate = PQfnumber(clients, "state");
	for (int i = 0; i < PQntuples(clients); i++)
		batched += strcmp(PQgetvalue(clients, i, fstate), "batched") == 0;
	PQclear(clients);
	ck_assert_int_eq(batched, 3);
	PQfinish(reqs[1].conn);
	bt_wait_rows_waiting(admin, 2);
	bt_exec(holder, "COMMIT");
	bt_collect(&reqs[0]);
	bt_collect(&reqs[2]);
	bt_assert_inserted(&reqs[0], "INSERT 0 1");
	bt_assert_inserted(&reqs[2], "INSERT 0 1");
	PQfinish(reqs[0].conn);
	PQfinish(reqs[2].conn);
	PQfinish(holder);
	/* Its row never ran: it was not in the batch any more. */
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_kill"), 2);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_kill WHERE id = 2"), 0);
	PQfinish(admin);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(cancel_of_a_waiting_row_answers_57014_and_the_others_commit)
{
	bt_table("bt_cancel");
	struct sluice *s = bt_start(NULL, "pool_size=1");
	PGconn *admin = bt_admin(s);
	struct bt_req reqs[] = {
		{.sql = "INSERT INTO bt_cancel (id) VALUES (1)"},
		{.sql = "INSERT INTO bt_cancel (id) VALUES (2)"},
		{.sql = "INSERT INTO bt_cancel (id) VALUES (3)"},
	};
	PGconn *holder = bt_send_batched(s, admin, reqs, 3);
	PGcancel *cancel = PQgetCancel(reqs[1].conn);
	char err[256];
	ck_assert(PQcancel(cancel, err, sizeof(err)) == 1);
	PQfreeCancel(cancel);
	bt_collect(&reqs[1]);
	bt_assert_error(&reqs[1], "57014");
	bt_exec(holder, "COMMIT");
	bt_collect(&reqs[0]);
	bt_collect(&reqs[2]);
	bt_assert_inserted(&reqs[0], "INSERT 0 1");
	bt_assert_inserted(&reqs[2], "INSERT 0 1");
	/* The cancelled client goes on. */
	bt_exec(reqs[1].conn, "INSERT INTO bt_cancel (id) VALUES (4)");
	bt_finish_all(reqs, 3);
	PQfinish(holder);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_cancel"), 3);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_cancel WHERE id = 2"), 0);
	PQfinish(admin);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(client_killed_while_its_batch_runs_shares_the_batch_s_fate)
{
	bt_table("bt_slow");
	PGconn *su = bt_superuser();
	bt_exec(su, "CREATE OR REPLACE FUNCTION bt_slow_row() RETURNS trigger "
		    "LANGUAGE plpgsql "
		    "AS $$ BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$");
	bt_exec(su, "CREATE TRIGGER bt_slow_row BEFORE INSERT ON bt_slow FOR EACH ROW "
		    "EXECUTE FUNCTION bt_slow_row()");
	PQfinish(su);
	struct sluice *s = bt_start(NULL, "pool_size=1");
	PGconn *admin = bt_admin(s);
	struct bt_req reqs[] = {
		{.sql = "INSERT INTO bt_slow (id) VALUES (1)"},
		{.sql = "INSERT INTO bt_slow (id) VALUES (2)"},
		{.sql = "INSERT INTO bt_slow (id) VALUES (3)"},
	};
	PGconn *holder = bt_send_batched(s, admin, reqs, 3);
	bt_exec(holder, "COMMIT");
	/* The batch runs (three rows of 0.3 s each): the second client leaves now. */
	bt_wait_rows_waiting(admin, 0);
	fixture_sleep(0.2);
	PQfinish(reqs[1].conn);
	bt_collect(&reqs[0]);
	bt_collect(&reqs[2]);
	bt_assert_inserted(&reqs[0], "INSERT 0 1");
	bt_assert_inserted(&reqs[2], "INSERT 0 1");
	PQfinish(reqs[0].conn);
	PQfinish(reqs[2].conn);
	PQfinish(holder);
	/* The others were told their rows committed: the batch, its row included, did. */
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_slow"), 3);
	ck_assert_int_eq((int)bt_batches(admin, "fallbacks"), 0);
	/* The server went back to the pool in a clean state. */
	PGconn *after = bt_connect(s);
	char *v = fixture_value(after, "SELECT count(*) FROM bt_slow");
	ck_assert_str_eq(v, "3");
	free(v);
	PQfinish(after);
	PQfinish(admin);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(server_lost_before_commit_reruns_every_row_alone)
{
	bt_table("bt_lost");
	PGconn *su = bt_superuser();
	bt_exec(su, "CREATE OR REPLACE FUNCTION bt_slow_row() RETURNS trigger "
		    "LANGUAGE plpgsql "
		    "AS $$ BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$");
	bt_exec(su, "CREATE TRIGGER bt_slow_row BEFORE INSERT ON bt_lost FOR EACH ROW "
		    "EXECUTE FUNCTION bt_slow_row()");
	struct sluice *s = bt_start(NULL, "pool_size=1");
	PGconn *admin = bt_admin(s);
	struct bt_req reqs[] = {
		{.sql = "INSERT INTO bt_lost (id) VALUES (1)"},
		{.sql = "INSERT INTO bt_lost (id) VALUES (2)"},
		{.sql = "INSERT INTO bt_lost (id) VALUES (3)"},
	};
	PGconn *holder = bt_send_batched(s, admin, reqs, 3);
	bt_exec(holder, "COMMIT");
	bt_wait_rows_waiting(admin, 0);
	fixture_sleep(0.2);
	/* The batch's server dies in the middle of the multi-row INSERT. */
	char *killed =
		fixture_value(su, "SELECT count(pg_terminate_backend(pid)) FROM "
				  "pg_stat_activity "
				  "WHERE query LIKE 'WITH pgsluice_batch AS (INSERT INTO bt_lost%'");
	ck_assert_str_eq(killed, "1");
	free(killed);
	for (int i = 0; i < 3; i++) {
		bt_collect(&reqs[i]);
		bt_assert_inserted(&reqs[i], "INSERT 0 1");
	}
	bt_finish_all(reqs, 3);
	PQfinish(holder);
	PQfinish(su);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_lost"), 3);
	ck_assert_int_eq((int)bt_batches(admin, "fallbacks"), 1);
	PQfinish(admin);
	sluice_stop_clean(s);
}
END_TEST

/* Lost while COMMIT runs: nobody can know the outcome, so no row runs again and no client is
 * told it committed; the rows are all there or none is. */
START_TEST(server_lost_during_commit_tells_each_client_the_outcome_is_unknown)
{
	bt_table("bt_unsure");
	PGconn *su = bt_superuser();
	bt_exec(su, "CREATE OR REPLACE FUNCTION bt_slow_commit() RETURNS trigger "
		    "LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.5); RETURN NULL; END $$");
	bt_exec(su, "CREATE CONSTRAINT TRIGGER bt_slow_commit AFTER INSERT ON bt_unsure "
		    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bt_slow_commit()");
	struct sluice *s = bt_start(NULL, "pool_size=1");
	PGconn *admin = bt_admin(s);
	struct bt_req reqs[] = {
		{.sql = "INSERT INTO bt_unsure (id) VALUES (1)"},
		{.sql = "INSERT INTO bt_unsure (id) VALUES (2)"},
		{.sql = "INSERT INTO bt_unsure (id) VALUES (3)"},
	};
	PGconn *holder = bt_send_batched(s, admin, reqs, 3);
	bt_exec(holder, "COMMIT");
	/* The INSERT completed; its deferred triggers hold COMMIT for 1.5 s. */
	double deadline = fixture_now() + 10;
	for (;;) {
		char *killed = fixture_value(
			su, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
			    "WHERE query = 'COMMIT' AND state = 'active' AND wait_event = 'PgSleep'");
		bool done = strcmp(killed, "1") == 0;
		free(killed);
		if (done)
			break;
		ck_assert_msg(fixture_now() < deadline, "the batch's COMMIT never ran");
		fixture_sleep(0.02);
	}
	for (int i = 0; i < 3; i++) {
		/* The FATAL, then libpq's own result for the closed connection. */
		PGresult *r = PQgetResult(reqs[i].conn);
		ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
		ck_assert_str_eq(fixture_sqlstate(r), "08006");
		ck_assert_msg(strstr(PQresultErrorMessage(r), "may or may not have been committed"),
			      "%s", PQresultErrorMessage(r));
		PQclear(r);
		while ((r = PQgetResult(reqs[i].conn)) != NULL)
			PQclear(r);
	}
	/* The holder keeps the pool, and so its counters, alive. */
	ck_assert_int_eq((int)bt_batches(admin, "unknown_outcomes"), 1);
	ck_assert_int_eq((int)bt_batches(admin, "fallbacks"), 0);
	bt_finish_all(reqs, 3);
	PQfinish(holder);
	PQfinish(su);
	long rows = bt_count("SELECT count(*) FROM bt_unsure");
	ck_assert_msg(rows == 0 || rows == 3, "%ld of the batch's 3 rows are stored", rows);
	PQfinish(admin);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(a_batch_waiting_past_query_wait_timeout_fails_its_clients_with_57014)
{
	bt_table("bt_wait");
	struct sluice *s = bt_start("query_wait_timeout = 1s", "pool_size=1");
	PGconn *admin = bt_admin(s);
	struct bt_req reqs[] = {
		{.sql = "INSERT INTO bt_wait (id) VALUES (1)"},
		{.sql = "INSERT INTO bt_wait (id) VALUES (2)"},
	};
	PGconn *holder = bt_send_batched(s, admin, reqs, 2);
	for (int i = 0; i < 2; i++) {
		bt_collect(&reqs[i]);
		bt_assert_error(&reqs[i], "57014");
	}
	bt_exec(holder, "COMMIT");
	bt_exec(reqs[0].conn, "INSERT INTO bt_wait (id) VALUES (3)");
	bt_finish_all(reqs, 2);
	PQfinish(holder);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_wait"), 1);
	PQfinish(admin);
	sluice_stop_clean(s);
}
END_TEST

/* ---- what stays unbatched, and /metrics ---- */

/* True when one INSERT, sent while the only server is held, waits without being batched. */
static bool bt_insert_batches(struct sluice *s, const char *table)
{
	PGconn *admin = bt_admin(s);
	PGconn *c = bt_connect(s);
	PGconn *holder = bt_connect(s);
	bt_exec(holder, "BEGIN");
	bt_exec(holder, "SELECT 1");
	char sql[128];
	snprintf(sql, sizeof(sql), "INSERT INTO %s (id) VALUES (1)", table);
	ck_assert_int_eq(PQsendQuery(c, sql), 1);
	double deadline = fixture_now() + 1.0;
	bool batched = false;
	while (!batched && fixture_now() < deadline) {
		batched = bt_batches(admin, "rows_waiting") > 0;
		fixture_sleep(0.02);
	}
	bt_exec(holder, "COMMIT");
	struct bt_req r = {.sql = sql, .conn = c};
	bt_collect(&r);
	bt_assert_inserted(&r, "INSERT 0 1");
	PQfinish(c);
	PQfinish(holder);
	PQfinish(admin);
	return batched;
}

START_TEST(a_user_override_and_session_pooling_keep_inserts_unbatched)
{
	bt_table("bt_off");
	char global[256];
	snprintf(global, sizeof(global), "[users]\n%s = batch_inserts=off", FIXTURE_USER);
	/* [users] must come after [databases]: the entry goes in the databases extra. */
	char databases[512];
	snprintf(databases, sizeof(databases),
		 "%s = host=127.0.0.1 port=%d dbname=%s batch_inserts=on pool_size=1\n%s", BT_DB,
		 fixture_primary_port(), FIXTURE_DB, global);
	struct sluice *s = sluice_start("pool_mode = transaction", databases);
	ck_assert(!bt_insert_batches(s, "bt_off"));
	sluice_stop_clean(s);
	snprintf(databases, sizeof(databases),
		 "%s = host=127.0.0.1 port=%d dbname=%s batch_inserts=on pool_size=2", BT_DB,
		 fixture_primary_port(), FIXTURE_DB);
	/* Each session holds its own server: the INSERT never waits for one. */
	s = sluice_start("pool_mode = session", databases);
	bt_su_exec("TRUNCATE bt_off");
	ck_assert(!bt_insert_batches(s, "bt_off"));
	sluice_stop_clean(s);
	/* The control: the same with batching on batches. */
	s = bt_start(NULL, "pool_size=1");
	bt_su_exec("TRUNCATE bt_off");
	ck_assert(bt_insert_batches(s, "bt_off"));
	sluice_stop_clean(s);
}
END_TEST

static int bt_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* The value of the sample named series (name and labels, exactly) in /metrics on port. */
static double bt_metric(int port, const char *series)
{
	char cmd[256], out[65536];
	snprintf(cmd, sizeof(cmd), "curl -s --max-time 10 http://127.0.0.1:%d/metrics", port);
	ck_assert_int_eq(fixture_sh(cmd, out, sizeof(out)), 0);
	size_t n = strlen(series);
	for (const char *p = out; (p = strstr(p, series)) != NULL; p += n)
		if ((p == out || p[-1] == '\n') && p[n] == ' ')
			return atof(p + n + 1);
	ck_abort_msg("no sample %s in /metrics", series);
	return 0;
}

START_TEST(metrics_show_the_batches_of_each_database_and_user)
{
	bt_table("bt_metrics");
	int mport = bt_free_port();
	char global[96];
	snprintf(global, sizeof(global), "metrics_listen = 127.0.0.1:%d\nserver_idle_timeout = 1s",
		 mport);
	struct sluice *s = bt_start(global, "pool_size=1");
	PGconn *admin = bt_admin(s);
	struct bt_req reqs[] = {
		{.sql = "INSERT INTO bt_metrics (id) VALUES (1)"},
		{.sql = "INSERT INTO bt_metrics (id) VALUES (2)"},
		{.sql = "INSERT INTO bt_metrics (id) VALUES (3)"},
	};
	bt_run_batch(s, admin, reqs, 3);
	for (int i = 0; i < 3; i++)
		bt_assert_inserted(&reqs[i], "INSERT 0 1");
	bt_finish_all(reqs, 3);
#define BT_LABELS "{database=\"" BT_DB "\",user=\"" FIXTURE_USER "\""
	ck_assert(bt_metric(mport, "pgsluice_batch_batches_total" BT_LABELS "}") == 1);
	ck_assert(bt_metric(mport, "pgsluice_batch_rows_total" BT_LABELS "}") == 3);
	ck_assert(bt_metric(mport, "pgsluice_batch_fallbacks_total" BT_LABELS "}") == 0);
	ck_assert(bt_metric(mport, "pgsluice_batch_rows_waiting" BT_LABELS "}") == 0);
	/* It waited in the queue behind the held server: batch_max_delay started it. */
	ck_assert(bt_metric(mport, "pgsluice_batch_flushes_total" BT_LABELS
				   ",reason=\"max_delay\"}") == 1);
	ck_assert(bt_metric(mport, "pgsluice_batch_flushes_total" BT_LABELS
				   ",reason=\"idle_server\"}") == 0);
#undef BT_LABELS
	ck_assert(bt_batches(admin, "avg_rows") == 3);
	/* Its clients gone and its server idle past server_idle_timeout, the pool goes;
	 * the counts stay, so that a counter never goes back. */
	double deadline = fixture_now() + 10;
	while (bt_pool_count(admin) > 0) {
		ck_assert_msg(fixture_now() < deadline, "the pool never went");
		usleep(100 * 1000);
	}
	ck_assert(bt_batches(admin, "batches") == 1);
	ck_assert(bt_batches(admin, "rows") == 3);
	ck_assert(bt_metric(mport, "pgsluice_batch_rows_total{database=\"" BT_DB
				   "\",user=\"" FIXTURE_USER "\"}") == 3);
	char cmd[256], out[8192];
	if (fixture_sh("command -v promtool", out, sizeof(out)) == 0) {
		snprintf(cmd, sizeof(cmd),
			 "curl -s --max-time 10 http://127.0.0.1:%d/metrics | promtool check metrics",
			 mport);
		int rc = fixture_sh(cmd, out, sizeof(out));
		ck_assert_msg(rc == 0, "promtool check metrics exited %d:\n%s", rc, out);
	}
	PQfinish(admin);
	sluice_stop_clean(s);
}
END_TEST

/* ---- pass-through, byte for byte ---- */

static void bt_put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t bt_get_u32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Reads messages until a ReadyForQuery; returns the bytes read (into buf). */
static size_t bt_raw_until_ready(int fd, unsigned char *buf, size_t cap)
{
	size_t len = 0, pos = 0;
	for (;;) {
		while (len - pos >= 5 && len - pos >= 1 + bt_get_u32(buf + pos + 1)) {
			char type = (char)buf[pos];
			pos += 1 + bt_get_u32(buf + pos + 1);
			if (type == 'Z')
				return len;
		}
		ck_assert_msg(len < cap, "reply larger than %zu bytes", cap);
		ssize_t n = recv(fd, buf + len, cap - len, 0);
		ck_assert_msg(n > 0, "connection ended before ReadyForQuery: %s",
			      n < 0 ? strerror(errno) : "closed");
		len += (size_t)n;
	}
}

/* A raw protocol connection as postgres (trust) to port, logged in and ready. */
static int bt_raw_connect(int port, const char *db)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s",
		      strerror(errno));
	unsigned char pkt[256];
	size_t len = 8;
	bt_put_u32(pkt + 4, 196608);
	const char *kv[] = {"user", "postgres", "database", db};
	for (size_t i = 0; i < 4; i++) {
		memcpy(pkt + len, kv[i], strlen(kv[i]) + 1);
		len += strlen(kv[i]) + 1;
	}
	pkt[len++] = 0;
	bt_put_u32(pkt, (uint32_t)len);
	ck_assert_int_eq(send(fd, pkt, len, MSG_NOSIGNAL), (ssize_t)len);
	unsigned char buf[BT_RAW_MAX];
	bt_raw_until_ready(fd, buf, sizeof(buf));
	return fd;
}

/* Appends one message (type, body) to out at *len. */
static void bt_raw_msg(unsigned char *out, size_t *len, char type, const void *body,
		       size_t body_len)
{
	out[(*len)++] = (unsigned char)type;
	bt_put_u32(out + *len, (uint32_t)(body_len + 4));
	*len += 4;
	if (body_len > 0)
		memcpy(out + *len, body, body_len);
	*len += body_len;
}

/* The request bytes: a simple INSERT of id, or the same as Parse/Bind/Describe/Execute/Sync. */
static size_t bt_raw_request(unsigned char *out, bool extended, int id)
{
	size_t len = 0;
	char sql[128];
	if (!extended) {
		int n = snprintf(sql, sizeof(sql), "INSERT INTO bt_raw (id, v) VALUES (%d, 'x')",
				 id);
		bt_raw_msg(out, &len, 'Q', sql, (size_t)n + 1);
		return len;
	}
	unsigned char body[256];
	size_t b = 0;
	body[b++] = 0;
	const char *text = "INSERT INTO bt_raw (id, v) VALUES ($1, $2)";
	memcpy(body + b, text, strlen(text) + 1);
	b += strlen(text) + 1;
	body[b++] = 0;
	body[b++] = 0;
	bt_raw_msg(out, &len, 'P', body, b);
	char idtext[16];
	int idlen = snprintf(idtext, sizeof(idtext), "%d", id);
	b = 0;
	body[b++] = 0;
	body[b++] = 0;
	body[b++] = 0;
	body[b++] = 0;
	body[b++] = 0;
	body[b++] = 2;
	bt_put_u32(body + b, (uint32_t)idlen);
	b += 4;
	memcpy(body + b, idtext, (size_t)idlen);
	b += (size_t)idlen;
	bt_put_u32(body + b, 1);
	b += 4;
	body[b++] = 'x';
	body[b++] = 0;
	body[b++] = 0;
	bt_raw_msg(out, &len, 'B', body, b);
	bt_raw_msg(out, &len, 'D', "P", 2);
	bt_raw_msg(out, &len, 'E', "\0\0\0\0", 5);
	bt_raw_msg(out, &len, 'S', NULL, 0);
	return len;
}

/* The reply bytes to one raw INSERT of id on port. */
static size_t bt_raw_insert(int port, const char *db, bool extended, int id, unsigned char *reply)
{
	int fd = bt_raw_connect(port, db);
	unsigned char req[512];
	size_t len = bt_raw_request(req, extended, id);
	ck_assert_int_eq(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	size_t n = bt_raw_until_ready(fd, reply, BT_RAW_MAX);
	close(fd);
	return n;
}

/* A lone INSERT through s answers the same bytes as the primary itself. */
static void bt_check_pass_through(struct sluice *s, int first_id)
{
	for (int ext = 0; ext <= 1; ext++) {
		unsigned char direct[BT_RAW_MAX], pooled[BT_RAW_MAX];
		size_t dn = bt_raw_insert(fixture_primary_port(), FIXTURE_DB, ext,
					  first_id + 2 * ext, direct);
		size_t pn = bt_raw_insert(s->port, BT_DB, ext, first_id + 2 * ext + 1, pooled);
		ck_assert_msg(dn == pn && memcmp(direct, pooled, dn) == 0,
			      "%s reply differs: %zu bytes direct, %zu through pgsluice",
			      ext ? "extended" : "simple", dn, pn);
	}
}

START_TEST(lone_inserts_reply_byte_for_byte_as_a_direct_connection)
{
	bt_table("bt_raw");
	struct sluice *off = bt_start("auth_type = trust", "batch_inserts=off");
	bt_check_pass_through(off, 1);
	sluice_stop_clean(off);
	struct sluice *on = bt_start("auth_type = trust", "batch_inserts=on");
	bt_check_pass_through(on, 11);
	sluice_stop_clean(on);
	ck_assert_int_eq(bt_count("SELECT count(*) FROM bt_raw"), 8);
}
END_TEST

Suite *batching_suite(void)
{
	Suite *s = suite_create("batching");
	TCase *tc = tcase_create("batching");
	tcase_add_unchecked_fixture(tc, fixture_cluster_start, NULL);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, lone_inserts_reply_byte_for_byte_as_a_direct_connection);
	tcase_add_test(tc, unique_violation_fails_only_its_client_and_the_other_rows_commit);
	tcase_add_test(tc, type_errors_fail_only_their_client_in_both_protocols);
	tcase_add_test(tc, on_conflict_do_nothing_tells_each_client_its_own_count);
	tcase_add_test(tc, a_row_a_trigger_drops_tells_only_its_client_insert_0_0);
	tcase_add_test(tc, a_batch_runs_with_the_settings_of_its_clients);
	tcase_add_test(tc, extended_rows_batch_with_each_value_in_its_column);
	tcase_add_test(tc, client_killed_while_its_row_waits_leaves_no_trace);
	tcase_add_test(tc, client_killed_while_its_batch_runs_shares_the_batch_s_fate);
	tcase_add_test(tc, cancel_of_a_waiting_row_answers_57014_and_the_others_commit);
	tcase_add_test(tc, server_lost_before_commit_reruns_every_row_alone);
	tcase_add_test(tc, server_lost_during_commit_tells_each_client_the_outcome_is_unknown);
	tcase_add_test(tc, a_batch_waiting_past_query_wait_timeout_fails_its_clients_with_57014);
	tcase_add_test(tc, a_user_override_and_session_pooling_keep_inserts_unbatched);
	tcase_add_test(tc, metrics_show_the_batches_of_each_database_and_user);
	tcase_add_test(tc, sixty_four_clients_insert_32000_rows_in_batches);
	suite_add_tcase(s, tc);
	return s;
}
