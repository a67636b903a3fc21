/*
 * test_admin.c - the admin console and the Prometheus endpoint, driven from outside:
 * every command through libpq and through psql (also `psql -x`), with assertions on
 * the figures after a known workload (N queries, a pg_sleep), the rights of admin and
 * stats users, PAUSE/RESUME holding and releasing a query, KILL, DISABLE, RECONNECT,
 * RELOAD and SET changing what SHOW reports, SHUTDOWN, and GET /metrics checked by
 * promtool and against SHOW STATS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

#include "fixture.h"
#include "suites.h"

/* The database the tests use: the primary alone, so that no read goes elsewhere. */
#define ADM_DB "adm"
/* The admin console's database name. */
#define ADM_CONSOLE "pgsluice"
/* Largest /metrics answer read. */
#define ADM_HTTP_MAX (8u * 1024 * 1024)
/* Room for psql's output. */
#define ADM_PSQL_OUT 65536

/* ---- helpers ---- */

static void adm_sleep(double seconds)
{
	struct timespec ts = {.tv_sec = (time_t)seconds,
			      .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Starts pgsluice with the adm alias and extra [pgsluice] lines. */
static struct sluice *adm_start(const char *extra)
{
	char databases[256];
	snprintf(databases, sizeof(databases), "%s = host=127.0.0.1 port=%d dbname=%s", ADM_DB,
		 fixture_primary_port(), FIXTURE_DB);
	return sluice_start(extra, databases);
}

/* Rewrites the daemon's config with other extra lines (same databases). */
static void adm_rewrite(struct sluice *s, const char *extra)
{
	char databases[256];
	snprintf(databases, sizeof(databases), "%s = host=127.0.0.1 port=%d dbname=%s", ADM_DB,
		 fixture_primary_port(), FIXTURE_DB);
	ck_assert_msg(sluice_rewrite(s, extra, databases), "cannot rewrite %s", s->conf_path);
}

static PGconn *adm_console(const struct sluice *s)
{
	return fixture_connect_ok(s->port, ADM_CONSOLE, FIXTURE_ADMIN_USER, FIXTURE_ADMIN_PASSWORD,
				  NULL);
}

static PGconn *adm_app(const struct sluice *s)
{
	return fixture_connect_ok(s->port, ADM_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
}

static void adm_exec(PGconn *c, const char *sql)
{
	PQclear(fixture_exec_ok(c, sql));
}

/* Runs a SHOW; it must return a table. */
static PGresult *adm_show(PGconn *c, const char *sql)
{
	PGresult *r = fixture_exec_ok(c, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "\"%s\" gave %s", sql,
		      PQresStatus(PQresultStatus(r)));
	return r;
}

static int adm_column(const PGresult *r, const char *name)
{
	int i = PQfnumber(r, name);
	ck_assert_msg(i >= 0, "no column %s", name);
	return i;
}

/* The row of r whose column key_col holds key, or -1. */
static int adm_row(const PGresult *r, const char *key_col, const char *key)
{
	int k = adm_column(r, key_col);
	for (int i = 0; i < PQntuples(r); i++)
		if (!PQgetisnull(r, i, k) && strcmp(PQgetvalue(r, i, k), key) == 0)
			return i;
	return -1;
}

/* Column col of the row of `sql` where key_col = key; malloc'd ("NULL" for NULL). */
static char *adm_cell(PGconn *c, const char *sql, const char *key_col, const char *key,
		      const char *col)
{
	PGresult *r = adm_show(c, sql);
	int row = adm_row(r, key_col, key);
	ck_assert_msg(row >= 0, "%s has no row with %s = %s", sql, key_col, key);
	int j = adm_column(r, col);
	char *v = strdup(PQgetisnull(r, row, j) ? "NULL" : PQgetvalue(r, row, j));
	PQclear(r);
	ck_assert_ptr_nonnull(v);
	return v;
}

static long long adm_num(PGconn *c, const char *sql, const char *key_col, const char *key,
			 const char *col)
{
	char *v = adm_cell(c, sql, key_col, key, col);
	char *end;
	long long n = strtoll(v, &end, 10);
	ck_assert_msg(*v != '\0' && *end == '\0', "%s: %s = \"%s\" is not a number", sql, col, v);
	free(v);
	return n;
}

/* Runs sql, which must fail with sqlstate; returns the result (PQclear it). */
static PGresult *adm_fails(PGconn *c, const char *sql, const char *sqlstate)
{
	PGresult *r = PQexec(c, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR, "\"%s\" gave %s, expected an error",
		      sql, PQresStatus(PQresultStatus(r)));
	ck_assert_msg(strcmp(fixture_sqlstate(r), sqlstate) == 0,
		      "\"%s\" failed with %s (%s), expected %s", sql, fixture_sqlstate(r),
		      PQresultErrorMessage(r), sqlstate);
	return r;
}

/* Requires that the column names of r start with the names in want (NULL-terminated). */
static void adm_columns_start_with(const PGresult *r, const char *what, const char *const *want)
{
	int i = 0;
	for (; want[i] != NULL; i++) {
		ck_assert_msg(i < PQnfields(r), "%s has %d columns, expected at least %s", what,
			      PQnfields(r), want[i]);
		ck_assert_msg(strcmp(PQfname(r, i), want[i]) == 0,
			      "%s column %d is %s, expected %s", what, i, PQfname(r, i), want[i]);
	}
}

/* Runs psql against the console with flags and one command; returns its exit status. */
static int adm_psql(const struct sluice *s, const char *flags, const char *sql, char *out,
		    size_t cap)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "PGPASSWORD=%s PGCONNECT_TIMEOUT=10 %s/psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 "
		 "-p %d -U %s -d %s %s -c \"%s\"",
		 FIXTURE_ADMIN_PASSWORD, fixture_pg_bindir(), s->port, FIXTURE_ADMIN_USER,
		 ADM_CONSOLE, flags, sql);
	return fixture_sh(cmd, out, cap);
}

static int adm_free_port(void)
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

/* Sends request to 127.0.0.1:port and reads the answer until the server closes. */
static char *adm_http(int port, const char *request)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect to %d: %s", port,
		      strerror(errno));
	size_t len = strlen(request);
	ck_assert_int_eq(send(fd, request, len, MSG_NOSIGNAL), (ssize_t)len);
	char *buf = malloc(ADM_HTTP_MAX + 1);
	ck_assert_ptr_nonnull(buf);
	size_t got = 0;
	ssize_t n;
	while (got < ADM_HTTP_MAX && (n = recv(fd, buf + got, ADM_HTTP_MAX - got, 0)) > 0)
		got += (size_t)n;
	ck_assert_msg(n == 0 || got == ADM_HTTP_MAX, "reading the answer: %s", strerror(errno));
	close(fd);
	buf[got] = '\0';
	return buf;
}

/* The value of the sample line that starts with series (name and labels), or -1. */
static double adm_sample(const char *body, const char *series)
{
	size_t len = strlen(series);
	for (const char *line = body; line != NULL && *line != '\0';) {
		if (strncmp(line, series, len) == 0 && line[len] == ' ')
			return strtod(line + len + 1, NULL);
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return -1;
}

static void adm_run_queries(PGconn *c, int n)
{
	for (int i = 0; i < n; i++)
		adm_exec(c, "SELECT 1");
}

/* ---- every command ---- */

START_TEST(every_show_command_answers_a_table_with_pgbouncer_columns_first)
{
	static const char *const pools[] = {"database",
					    "user",
					    "cl_active",
					    "cl_waiting",
					    "cl_active_cancel_req",
					    "cl_waiting_cancel_req",
					    "sv_active",
					    "sv_active_cancel",
					    "sv_being_canceled",
					    "sv_idle",
					    "sv_used",
					    "sv_tested",
					    "sv_login",
					    "maxwait",
					    "maxwait_us",
					    "pool_mode",
					    "role",
					    NULL};
	static const char *const stats[] = {
		"database",	  "total_xact_count", "total_query_count", "total_received",
		"total_sent",	  "total_xact_time",  "total_query_time",  "total_wait_time",
		"avg_xact_count", "avg_query_count",  "avg_recv",	   "avg_sent",
		"avg_xact_time",  "avg_query_time",   "avg_wait_time",	   "query_p50_us",
		"query_p95_us",	  "query_p99_us",     "query_p999_us",	   "xact_p50_us",
		"xact_p95_us",	  "xact_p99_us",      "xact_p999_us",	   "wait_p50_us",
		"wait_p95_us",	  "wait_p99_us",      "wait_p999_us",	   NULL};
	static const char *const databases[] = {"name",
						"host",
						"port",
						"database",
						"force_user",
						"pool_size",
						"min_pool_size",
						"reserve_pool",
						"pool_mode",
						"max_connections",
						"current_connections",
						"paused",
						"disabled",
						"replicas",
						NULL};
	static const char *const sockets[] = {"type",
					      "user",
					      "database",
					      "state",
					      "addr",
					      "port",
					      "local_addr",
					      "local_port",
					      "connect_time",
					      "request_time",
					      "wait",
					      "wait_us",
					      "close_needed",
					      "ptr",
					      "link",
					      "remote_pid",
					      "tls",
					      "application_name",
					      NULL};
	static const char *const totals[] = {"database",       "xact_count", "query_count",
					     "bytes_received", "bytes_sent", "xact_time",
					     "query_time",     "wait_time",  NULL};
	static const char *const config[] = {"key", "value", "default", "changeable", NULL};
	static const char *const lists[] = {"list", "items", NULL};
	static const char *const mem[] = {"name", "size", "used", "free", "memtotal", NULL};
	static const char *const version[] = {"version", NULL};
	static const char *const help[] = {"command", "description", NULL};
	static const char *const latency[] = {"database", "role",	  "window",
					      "count",	  "query_p50_us", NULL};
	static const char *const routing[] = {
		"database", "role",   "server",	    "weight",	 "transactions",  "retries",
		"bans",	    "banned", "ban_reason", "fallbacks", "reads_refused", NULL};
	static const struct {
		const char *sql;
		const char *const *cols;
	} shows[] = {
		{"SHOW POOLS", pools},		 {"SHOW STATS", stats},
		{"SHOW DATABASES", databases},	 {"SHOW CLIENTS", sockets},
		{"SHOW SERVERS", sockets},	 {"SHOW STATS_TOTALS", totals},
		{"SHOW STATS_AVERAGES", totals}, {"SHOW CONFIG", config},
		{"SHOW LISTS", lists},		 {"SHOW MEM", mem},
		{"SHOW VERSION", version},	 {"SHOW HELP", help},
		{"SHOW LATENCY", latency},	 {"SHOW ROUTING", routing},
	};
	struct sluice *s = adm_start(NULL);
	PGconn *app = adm_app(s);
	adm_run_queries(app, 3);
	PGconn *a = adm_console(s);
	for (size_t i = 0; i < sizeof(shows) / sizeof(shows[0]); i++) {
		PGresult *r = adm_show(a, shows[i].sql);
		adm_columns_start_with(r, shows[i].sql, shows[i].cols);
		ck_assert_msg(PQntuples(r) > 0, "%s returned no row", shows[i].sql);
		PQclear(r);
	}
	/* Values, not just shapes. */
	char port[16];
	snprintf(port, sizeof(port), "%d", fixture_primary_port());
	char *v = adm_cell(a, "SHOW DATABASES", "name", ADM_DB, "port");
	ck_assert_str_eq(v, port);
	free(v);
	ck_assert_int_eq(adm_num(a, "SHOW DATABASES", "name", ADM_DB, "pool_size"), 20);
	v = adm_cell(a, "SHOW DATABASES", "name", FIXTURE_DB, "replicas");
	if (fixture_replica_count() > 0) {
		char rep[32];
		snprintf(rep, sizeof(rep), "127.0.0.1:%d", fixture_replica_port(0));
		ck_assert_msg(strstr(v, rep) != NULL, "replicas \"%s\" lacks %s", v, rep);
	}
	free(v);
	v = adm_cell(a, "SHOW POOLS", "database", ADM_DB, "user");
	ck_assert_str_eq(v, FIXTURE_USER);
	free(v);
	v = adm_cell(a, "SHOW POOLS", "database", ADM_DB, "role");
	ck_assert_str_eq(v, "primary");
	free(v);
	ck_assert_int_eq(adm_num(a, "SHOW POOLS", "database", ADM_DB, "cl_active"), 1);
	ck_assert_int_eq(adm_num(a, "SHOW POOLS", "database", ADM_DB, "cl_waiting"), 0);
	ck_assert_int_eq(adm_num(a, "SHOW POOLS", "database", ADM_DB, "sv_idle") +
				 adm_num(a, "SHOW POOLS", "database", ADM_DB, "sv_active"),
			 1);
	v = adm_cell(a, "SHOW SERVERS", "database", ADM_DB, "health");
	ck_assert_str_eq(v, "ok");
	free(v);
	v = adm_cell(a, "SHOW SERVERS", "database", ADM_DB, "port");
	ck_assert_str_eq(v, port);
	free(v);
	ck_assert_int_gt(adm_num(a, "SHOW SERVERS", "database", ADM_DB, "remote_pid"), 0);
	v = adm_cell(a, "SHOW CLIENTS", "database", ADM_CONSOLE, "user");
	ck_assert_str_eq(v, FIXTURE_ADMIN_USER);
	free(v);
	v = adm_cell(a, "SHOW CLIENTS", "database", ADM_DB, "state");
	ck_assert_str_eq(v, "active");
	free(v);
	v = adm_cell(a, "SHOW CONFIG", "key", "default_pool_size", "changeable");
	ck_assert_str_eq(v, "yes");
	free(v);
	v = adm_cell(a, "SHOW CONFIG", "key", "listen_port", "value");
	ck_assert_int_eq(atoi(v), s->port);
	free(v);
	ck_assert_int_eq(adm_num(a, "SHOW LISTS", "list", "used_clients", "items"), 2);
	ck_assert_int_ge(adm_num(a, "SHOW LISTS", "list", "pools", "items"), 1);
	ck_assert_int_ge(adm_num(a, "SHOW MEM", "name", "client_cache", "used"), 2);
	ck_assert_int_eq(adm_num(a, "SHOW STATS_TOTALS", "database", ADM_DB, "query_count"), 3);
	v = adm_cell(a, "SHOW VERSION", "version", "pgsluice " PACKAGE_VERSION, "version");
	free(v);
	v = adm_cell(a, "SHOW HELP", "command", "SHOW POOLS", "description");
	free(v);
	PQfinish(app);
	PQfinish(a);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(every_command_works_through_psql_and_psql_x)
{
	static const struct {
		const char *sql;
		const char *expect;
	} cmds[] = {
		{"SHOW HELP", "SHOW LATENCY"},
		{"SHOW VERSION", "pgsluice"},
		{"SHOW CONFIG", "default_pool_size"},
		{"SHOW DATABASES", "current_connections"},
		{"SHOW POOLS", "cl_waiting"},
		{"SHOW CLIENTS", "application_name"},
		{"SHOW SERVERS", "remote_pid"},
		{"SHOW STATS", "query_p99_us"},
		{"SHOW STATS_TOTALS", "bytes_received"},
		{"SHOW STATS_AVERAGES", "bytes_sent"},
		{"SHOW LATENCY", "since_start"},
		{"SHOW ROUTING", "transactions"},
		{"SHOW LISTS", "used_clients"},
		{"SHOW MEM", "iobuf_cache"},
		{"PAUSE " ADM_DB, "PAUSE"},
		{"RESUME " ADM_DB, "RESUME"},
		{"PAUSE", "PAUSE"},
		{"RESUME", "RESUME"},
		{"RECONNECT " ADM_DB, "RECONNECT"},
		{"RECONNECT", "RECONNECT"},
		{"DISABLE " ADM_DB, "DISABLE"},
		{"ENABLE " ADM_DB, "ENABLE"},
		{"RELOAD", "RELOAD"},
		{"SET default_pool_size = 9", "SET"},
		{"KILL " ADM_DB, "KILL"},
		{"RESUME " ADM_DB, "RESUME"},
		{"show pools;", "cl_active"},
	};
	struct sluice *s = adm_start(NULL);
	PGconn *app = adm_app(s);
	adm_run_queries(app, 1);
	char *out = malloc(ADM_PSQL_OUT);
	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		int rc = adm_psql(s, "", cmds[i].sql, out, ADM_PSQL_OUT);
		ck_assert_msg(rc == 0, "psql -c '%s' exited %d:\n%s", cmds[i].sql, rc, out);
		ck_assert_msg(strstr(out, cmds[i].expect) != NULL, "psql -c '%s' lacks %s:\n%s",
			      cmds[i].sql, cmds[i].expect, out);
	}
	int rc = adm_psql(s, "-x", "SHOW STATS", out, ADM_PSQL_OUT);
	ck_assert_msg(rc == 0, "psql -x exited %d:\n%s", rc, out);
	ck_assert_msg(strstr(out, "-[ RECORD 1 ]") != NULL && strstr(out, "total_query_count") &&
			      strstr(out, "wait_p999_us"),
		      "psql -x SHOW STATS:\n%s", out);
	/* KILL above closed the app client: its pool is gone, the database row stays. */
	rc = adm_psql(s, "-x", "SHOW DATABASES", out, ADM_PSQL_OUT);
	ck_assert_msg(rc == 0 && strstr(out, "current_connections") != NULL,
		      "psql -x SHOW DATABASES:\n%s", out);
	/* An error reaches psql with its SQLSTATE's message and hint. */
	rc = adm_psql(s, "", "SHOW NONSENSE", out, ADM_PSQL_OUT);
	ck_assert_msg(rc != 0 && strstr(out, "unknown SHOW subject") && strstr(out, "SHOW HELP"),
		      "psql -c 'SHOW NONSENSE' exited %d:\n%s", rc, out);
	/* The SET above (after the RELOAD) is what SHOW CONFIG shows now. */
	PGconn *a = adm_console(s);
	ck_assert_int_eq(adm_num(a, "SHOW CONFIG", "key", "default_pool_size", "value"), 9);
	free(out);
	PQfinish(a);
	PQfinish(app);
	sluice_stop_clean(s);
}
END_TEST

/* ---- figures after a known workload ---- */

START_TEST(n_queries_grow_total_query_count_by_exactly_n)
{
	struct sluice *s = adm_start(NULL);
	PGconn *app = adm_app(s);
	adm_run_queries(app, 1);
	PGconn *a = adm_console(s);
	long long q0 = adm_num(a, "SHOW STATS", "database", ADM_DB, "total_query_count");
	long long x0 = adm_num(a, "SHOW STATS", "database", ADM_DB, "total_xact_count");
	long long r0 = adm_num(a, "SHOW STATS", "database", ADM_DB, "total_received");
	const int n = 37;
	adm_run_queries(app, n);
	ck_assert_int_eq(adm_num(a, "SHOW STATS", "database", ADM_DB, "total_query_count") - q0, n);
	ck_assert_int_eq(adm_num(a, "SHOW STATS", "database", ADM_DB, "total_xact_count") - x0, n);
	/* Each Query message "SELECT 1" is 5 + 9 bytes. */
	ck_assert_int_eq(adm_num(a, "SHOW STATS", "database", ADM_DB, "total_received") - r0,
			 n * 14);
	/* A transaction of three requests counts three queries and one transaction. */
	adm_exec(app, "BEGIN");
	adm_exec(app, "SELECT 2");
	adm_exec(app, "COMMIT");
	ck_assert_int_eq(adm_num(a, "SHOW STATS", "database", ADM_DB, "total_query_count") - q0,
			 n + 3);
	ck_assert_int_eq(adm_num(a, "SHOW STATS", "database", ADM_DB, "total_xact_count") - x0,
			 n + 1);
	ck_assert_int_eq(adm_num(a, "SHOW STATS_TOTALS", "database", ADM_DB, "query_count") - q0,
			 n + 3);
	PQfinish(app);
	PQfinish(a);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(pg_sleep_moves_query_p99_above_200_ms)
{
	struct sluice *s = adm_start("stats_period = 1s");
	PGconn *app = adm_app(s);
	PGconn *a = adm_console(s);
	ck_assert_int_eq(adm_num(a, "SHOW STATS", "database", ADM_DB, "query_p99_us"), 0);
	adm_run_queries(app, 5);
	long long fast = adm_num(a, "SHOW STATS", "database", ADM_DB, "query_p99_us");
	ck_assert_msg(fast > 0 && fast < 200000, "p99 of SELECT 1 is %lld us", fast);
	adm_exec(app, "SELECT pg_sleep(0.2)");
	long long p99 = adm_num(a, "SHOW STATS", "database", ADM_DB, "query_p99_us");
	ck_assert_msg(p99 > 200000 && p99 < 5000000, "p99 after pg_sleep(0.2) is %lld us", p99);
	long long p50 = adm_num(a, "SHOW STATS", "database", ADM_DB, "query_p50_us");
	ck_assert_msg(p50 < 200000, "p50 is %lld us", p50);
	/* SHOW LATENCY's since_start window has the same figure. */
	PGresult *r = adm_show(a, "SHOW LATENCY");
	int found = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		if (strcmp(PQgetvalue(r, i, 0), ADM_DB) != 0 ||
		    strcmp(PQgetvalue(r, i, adm_column(r, "window")), "since_start") != 0)
			continue;
		found++;
		ck_assert_int_eq(atoll(PQgetvalue(r, i, adm_column(r, "query_p99_us"))), p99);
		ck_assert_int_eq(atoll(PQgetvalue(r, i, adm_column(r, "count"))), 6);
	}
	ck_assert_int_eq(found, 1);
	PQclear(r);
	/* Once its one-second period ends, that period is the "last" one for a second:
	 * its p99 is the slow query too. */
	long long last = 0;
	double t0 = fixture_now();
	while (last <= 200000 && fixture_now() - t0 < 3.0) {
		r = adm_show(a, "SHOW LATENCY");
		for (int i = 0; i < PQntuples(r); i++) {
			if (strcmp(PQgetvalue(r, i, 0), ADM_DB) == 0 &&
			    strcmp(PQgetvalue(r, i, adm_column(r, "window")), "last_period") == 0)
				last = atoll(PQgetvalue(r, i, adm_column(r, "query_p99_us")));
		}
		PQclear(r);
		adm_sleep(0.1);
	}
	ck_assert_msg(last > 200000, "the last period's p99 never passed 200 ms (%lld us)", last);
	PQfinish(app);
	PQfinish(a);
	sluice_stop_clean(s);
}
END_TEST

/* ---- rights ---- */

START_TEST(stats_user_may_show_but_not_pause_and_others_are_refused)
{
	struct sluice *s = adm_start("stats_users = " FIXTURE_USER2);
	PGconn *st =
		fixture_connect_ok(s->port, ADM_CONSOLE, FIXTURE_USER2, FIXTURE_PASSWORD2, NULL);
	PQclear(adm_show(st, "SHOW POOLS"));
	PQclear(adm_fails(st, "PAUSE", "42501"));
	PQclear(adm_fails(st, "SHUTDOWN", "42501"));
	PQclear(adm_fails(st, "SET default_pool_size = 3", "42501"));
	/* A refused statement stops the whole query: the SHOW before it does not run either. */
	PQclear(adm_fails(st, "SHOW VERSION; KILL " ADM_DB, "42501"));
	PQclear(adm_show(st, "SHOW STATS"));
	PGconn *a = adm_console(s);
	ck_assert_int_eq(adm_num(a, "SHOW DATABASES", "name", ADM_DB, "paused"), 0);
	/* The app user is in neither list. */
	PGconn *app = fixture_connect(s->port, ADM_CONSOLE, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	ck_assert(PQstatus(app) != CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(app), "permission denied") != NULL, "%s",
		      PQerrorMessage(app));
	PQfinish(app);
	PQfinish(st);
	PQfinish(a);
	sluice_stop_clean(s);
}
END_TEST

/* ---- protocol ---- */

START_TEST(unknown_commands_empty_queries_and_extended_protocol_get_clear_answers)
{
	struct sluice *s = adm_start(NULL);
	PGconn *a = adm_console(s);
	PGresult *r = adm_fails(a, "FROB", "42601");
	const char *hint = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
	ck_assert_msg(hint != NULL && strstr(hint, "SHOW HELP") != NULL, "hint: %s",
		      hint != NULL ? hint : "(none)");
	PQclear(r);
	r = PQexec(a, "");
	ck_assert_int_eq(PQresultStatus(r), PGRES_EMPTY_QUERY);
	PQclear(r);
	r = PQexec(a, " ; -- nothing");
	ck_assert_int_eq(PQresultStatus(r), PGRES_EMPTY_QUERY);
	PQclear(r);
	r = PQexecParams(a, "SHOW POOLS", 0, NULL, NULL, NULL, NULL, 0);
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	ck_assert_str_eq(fixture_sqlstate(r), "0A000");
	PQclear(r);
	PQclear(adm_fails(a, "PAUSE nosuchdb", "3D000"));
	/* The session goes on after every error, and several statements run in order. */
	r = adm_show(a, "PAUSE " ADM_DB "; SHOW DATABASES");
	int row = adm_row(r, "name", ADM_DB);
	ck_assert_int_ge(row, 0);
	ck_assert_str_eq(PQgetvalue(r, row, adm_column(r, "paused")), "1");
	PQclear(r);
	adm_exec(a, "RESUME " ADM_DB);
	ck_assert_int_eq(adm_num(a, "SHOW DATABASES", "name", ADM_DB, "paused"), 0);
	PQfinish(a);
	sluice_stop_clean(s);
}
END_TEST

/* ---- control commands ---- */

START_TEST(pause_holds_a_new_query_until_resume_and_it_then_succeeds)
{
	struct sluice *s = adm_start(NULL);
	PGconn *app = adm_app(s);
	adm_run_queries(app, 1);
	PGconn *in_tx = adm_app(s);
	adm_exec(in_tx, "BEGIN");
	adm_exec(in_tx, "SELECT 1");
	PGconn *a = adm_console(s);
	adm_exec(a, "PAUSE " ADM_DB);
	/* A transaction already running finishes. */
	adm_exec(in_tx, "SELECT 2");
	adm_exec(in_tx, "COMMIT");
	ck_assert(PQsendQuery(app, "SELECT 42"));
	double t0 = fixture_now();
	while (fixture_now() - t0 < 0.7) {
		ck_assert(PQconsumeInput(app));
		ck_assert_msg(PQisBusy(app), "the query finished while paused");
		adm_sleep(0.05);
	}
	ck_assert_int_eq(adm_num(a, "SHOW POOLS", "database", ADM_DB, "cl_waiting"), 1);
	long long wait_us = adm_num(a, "SHOW POOLS", "database", ADM_DB, "maxwait") * 1000000 +
			    adm_num(a, "SHOW POOLS", "database", ADM_DB, "maxwait_us");
	ck_assert_msg(wait_us >= 600000 && wait_us < 10000000, "maxwait %lld us", wait_us);
	ck_assert(PQisBusy(app));
	adm_exec(a, "RESUME " ADM_DB);
	double t1 = fixture_now();
	while (PQisBusy(app) && fixture_now() - t1 < 5) {
		ck_assert(PQconsumeInput(app));
		adm_sleep(0.01);
	}
	ck_assert_msg(!PQisBusy(app), "the query did not finish within 5 s of RESUME");
	PGresult *r = PQgetResult(app);
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "42");
	PQclear(r);
	ck_assert_ptr_null(PQgetResult(app));
	ck_assert_int_eq(adm_num(a, "SHOW POOLS", "database", ADM_DB, "cl_waiting"), 0);
	/* The wait shows in the wait figures. */
	ck_assert_int_ge(adm_num(a, "SHOW STATS", "database", ADM_DB, "total_wait_time"), 600000);
	ck_assert_int_ge(adm_num(a, "SHOW STATS", "database", ADM_DB, "wait_p999_us"), 600000);
	PQfinish(in_tx);
	PQfinish(app);
	PQfinish(a);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(kill_closes_the_database_connections_and_holds_it_until_resume)
{
	struct sluice *s = adm_start(NULL);
	PGconn *app = adm_app(s);
	adm_run_queries(app, 1);
	PGconn *a = adm_console(s);
	ck_assert_int_eq(adm_num(a, "SHOW DATABASES", "name", ADM_DB, "current_connections"), 1);
	adm_exec(a, "KILL " ADM_DB);
	PGresult *r = PQexec(app, "SELECT 1");
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	PQclear(r);
	ck_assert(PQstatus(app) == CONNECTION_BAD);
	PQfinish(app);
	ck_assert_int_eq(adm_num(a, "SHOW DATABASES", "name", ADM_DB, "current_connections"), 0);
	ck_assert_int_eq(adm_num(a, "SHOW DATABASES", "name", ADM_DB, "paused"), 1);
	r = adm_show(a, "SHOW SERVERS");
	ck_assert_int_eq(PQntuples(r), 0);
	PQclear(r);
	/* The console itself survives, and RESUME lets new clients in. */
	adm_exec(a, "RESUME " ADM_DB);
	app = adm_app(s);
	adm_run_queries(app, 1);
	PQfinish(app);
	PQfinish(a);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(disable_refuses_new_clients_until_enable)
{
	struct sluice *s = adm_start(NULL);
	PGconn *before = adm_app(s);
	PGconn *a = adm_console(s);
	adm_exec(a, "DISABLE " ADM_DB);
	ck_assert_int_eq(adm_num(a, "SHOW DATABASES", "name", ADM_DB, "disabled"), 1);
	PGconn *c = fixture_connect(s->port, ADM_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	ck_assert(PQstatus(c) != CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(c), "disabled") != NULL, "%s", PQerrorMessage(c));
	PQfinish(c);
	/* Clients already in stay served. */
	adm_run_queries(before, 1);
	adm_exec(a, "ENABLE " ADM_DB);
	ck_assert_int_eq(adm_num(a, "SHOW DATABASES", "name", ADM_DB, "disabled"), 0);
	c = adm_app(s);
	adm_run_queries(c, 1);
	PQfinish(c);
	PQfinish(before);
	PQfinish(a);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(reconnect_replaces_the_server_connection)
{
	struct sluice *s = adm_start(NULL);
	PGconn *app = adm_app(s);
	char *pid1 = fixture_value(app, "SELECT pg_backend_pid()");
	char *again = fixture_value(app, "SELECT pg_backend_pid()");
	ck_assert_str_eq(pid1, again);
	PGconn *a = adm_console(s);
	adm_exec(a, "RECONNECT " ADM_DB);
	/* The idle server retires at the janitor's next round. */
	adm_sleep(0.3);
	char *pid2 = fixture_value(app, "SELECT pg_backend_pid()");
	ck_assert_str_ne(pid1, pid2);
	free(pid1);
	free(again);
	free(pid2);
	PQfinish(app);
	PQfinish(a);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(reload_after_changing_default_pool_size_changes_show_pools)
{
	struct sluice *s = adm_start("default_pool_size = 7");
	PGconn *app = adm_app(s);
	adm_run_queries(app, 1);
	PGconn *a = adm_console(s);
	ck_assert_int_eq(adm_num(a, "SHOW POOLS", "database", ADM_DB, "pool_size"), 7);
	ck_assert_int_eq(adm_num(a, "SHOW CONFIG", "key", "default_pool_size", "value"), 7);
	adm_rewrite(s, "default_pool_size = 3");
	adm_exec(a, "RELOAD");
	ck_assert_int_eq(adm_num(a, "SHOW POOLS", "database", ADM_DB, "pool_size"), 3);
	ck_assert_int_eq(adm_num(a, "SHOW CONFIG", "key", "default_pool_size", "value"), 3);
	ck_assert_int_eq(adm_num(a, "SHOW DATABASES", "name", ADM_DB, "pool_size"), 3);
	/* Counters survive the reload. */
	ck_assert_int_eq(adm_num(a, "SHOW STATS", "database", ADM_DB, "total_query_count"), 1);
	/* A broken file is refused with its problems; the running configuration stays. */
	adm_rewrite(s, "default_pool_size = banana");
	PGresult *r = adm_fails(a, "RELOAD", "F0000");
	const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
	ck_assert_msg(detail != NULL && strstr(detail, "default_pool_size") != NULL, "detail: %s",
		      detail != NULL ? detail : "(none)");
	PQclear(r);
	ck_assert_int_eq(adm_num(a, "SHOW CONFIG", "key", "default_pool_size", "value"), 3);
	adm_run_queries(app, 1);
	PQfinish(app);
	PQfinish(a);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(set_changes_changeable_keys_and_refuses_the_rest)
{
	struct sluice *s = adm_start(NULL);
	PGconn *app = adm_app(s);
	adm_run_queries(app, 1);
	PGconn *a = adm_console(s);
	adm_exec(a, "SET default_pool_size = 4");
	ck_assert_int_eq(adm_num(a, "SHOW CONFIG", "key", "default_pool_size", "value"), 4);
	ck_assert_int_eq(adm_num(a, "SHOW POOLS", "database", ADM_DB, "pool_size"), 4);
	adm_exec(a, "set query_wait_timeout to '90s'");
	char *v = adm_cell(a, "SHOW CONFIG", "key", "query_wait_timeout", "value");
	ck_assert_str_eq(v, "90s");
	free(v);
	PQclear(adm_fails(a, "SET listen_port = 1", "55P02"));
	PQclear(adm_fails(a, "SET no_such_key = 1", "42704"));
	PQclear(adm_fails(a, "SET default_pool_size = abc", "22023"));
	PQclear(adm_fails(a, "SET default_pool_size = 5 6", "42601"));
	ck_assert_int_eq(adm_num(a, "SHOW CONFIG", "key", "default_pool_size", "value"), 4);
	adm_run_queries(app, 1);
	PQfinish(app);
	PQfinish(a);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(shutdown_lets_clients_finish_then_exits)
{
	struct sluice *s = adm_start(NULL);
	PGconn *a = adm_console(s);
	PGresult *r = PQexec(a, "SHUTDOWN");
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	ck_assert_str_eq(PQcmdStatus(r), "SHUTDOWN");
	PQclear(r);
	PQfinish(a);
	int rc = sluice_wait_exit(s, 10.0);
	ck_assert_msg(rc == 0, "pgsluice exited with %d after SHUTDOWN", rc);
}
END_TEST

START_TEST(shutdown_immediate_answers_then_exits_at_once)
{
	struct sluice *s = adm_start(NULL);
	PGconn *app = adm_app(s);
	adm_exec(app, "BEGIN");
	PGconn *a = adm_console(s);
	PGresult *r = PQexec(a, "SHUTDOWN IMMEDIATE");
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	/* The open transaction does not hold it up. */
	int rc = sluice_wait_exit(s, 5.0);
	ck_assert_msg(rc == 0, "pgsluice exited with %d after SHUTDOWN IMMEDIATE", rc);
	PQfinish(a);
	PQfinish(app);
}
END_TEST

/* ---- Prometheus ---- */

START_TEST(metrics_pass_promtool_and_agree_with_show_stats)
{
	int mport = adm_free_port();
	char extra[64];
	snprintf(extra, sizeof(extra), "metrics_listen = 127.0.0.1:%d", mport);
	struct sluice *s = adm_start(extra);
	PGconn *app = adm_app(s);
	adm_run_queries(app, 12);
	adm_exec(app, "SELECT pg_sleep(0.05)");
	PGconn *a = adm_console(s);
	long long queries = adm_num(a, "SHOW STATS", "database", ADM_DB, "total_query_count");
	long long xacts = adm_num(a, "SHOW STATS", "database", ADM_DB, "total_xact_count");
	ck_assert_int_eq(queries, 13);
	char *resp = adm_http(mport, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
	ck_assert_msg(strncmp(resp, "HTTP/1.1 200 ", 13) == 0, "answer: %.200s", resp);
	ck_assert_msg(strstr(resp, "\r\nContent-Type: text/plain; version=0.0.4\r\n") != NULL,
		      "headers: %.300s", resp);
	char *body = strstr(resp, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	body += 4;
	ck_assert_int_eq(
		(long long)adm_sample(body, "pgsluice_queries_total{database=\"" ADM_DB "\"}"),
		queries);
	ck_assert_int_eq(
		(long long)adm_sample(body, "pgsluice_xacts_total{database=\"" ADM_DB "\"}"),
		xacts);
	ck_assert_int_eq((long long)adm_sample(body, "pgsluice_query_duration_seconds_count{"
						     "database=\"" ADM_DB "\"}"),
			 queries);
	ck_assert_int_eq((long long)adm_sample(body, "pgsluice_query_duration_seconds_bucket{"
						     "database=\"" ADM_DB "\",le=\"+Inf\"}"),
			 queries);
	/* Twelve fast queries and one of 50 ms: the 25 ms bucket holds exactly the fast ones. */
	ck_assert_int_eq((long long)adm_sample(body, "pgsluice_query_duration_seconds_bucket{"
						     "database=\"" ADM_DB "\",le=\"0.025\"}"),
			 12);
	ck_assert_msg(adm_sample(body, "pgsluice_uptime_seconds") > 0, "no uptime");
	ck_assert_msg(adm_sample(body, "pgsluice_memory_bytes") > 1e6, "no memory figure");
	ck_assert_int_eq((long long)adm_sample(body, "pgsluice_clients"), 2);
	char series[256];
	snprintf(series, sizeof(series),
		 "pgsluice_pool_clients_active{database=\"%s\",user=\"%s\",server=\"127.0.0.1:%d\","
		 "role=\"primary\"}",
		 ADM_DB, FIXTURE_USER, fixture_primary_port());
	ck_assert_int_eq((long long)adm_sample(body, series), 1);
	/* The fingerprint statistics of SHOW QUERIES, one series per statement shape. */
	const char *calls = strstr(body, "\npgsluice_query_calls_total{fingerprint=\"");
	ck_assert_msg(calls != NULL, "no per-fingerprint series");
	ck_assert_msg(strstr(calls, ",query=\"select pg_sleep(?)\"} 1\n") != NULL,
		      "no calls series for select pg_sleep(?)");

	char path[512];
	snprintf(path, sizeof(path), "%s/metrics-%d.txt", fixture_tmpdir(), (int)getpid());
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(body, f);
	fclose(f);
	char out[8192], cmd[1024];
	if (fixture_sh("command -v promtool", out, sizeof(out)) != 0) {
		fprintf(stderr,
			"promtool not found (Debian package prometheus): skipping the check "
			"of the exposition format\n");
	} else {
		snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
		int rc = fixture_sh(cmd, out, sizeof(out));
		ck_assert_msg(rc == 0, "promtool check metrics exited %d:\n%s", rc, out);
	}
	unlink(path);
	free(resp);
	PQfinish(app);
	PQfinish(a);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(metrics_endpoint_refuses_other_paths_and_methods)
{
	int mport = adm_free_port();
	char extra[64];
	snprintf(extra, sizeof(extra), "metrics_listen = 127.0.0.1:%d", mport);
	struct sluice *s = adm_start(extra);
	char *resp = adm_http(mport, "GET /other HTTP/1.1\r\n\r\n");
	ck_assert_msg(strncmp(resp, "HTTP/1.1 404 ", 13) == 0, "answer: %.200s", resp);
	free(resp);
	resp = adm_http(mport, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	ck_assert_msg(strncmp(resp, "HTTP/1.1 405 ", 13) == 0, "answer: %.200s", resp);
	ck_assert_msg(strstr(resp, "\r\nAllow: GET\r\n") != NULL, "answer: %.300s", resp);
	free(resp);
	resp = adm_http(mport, "NONSENSE\r\n\r\n");
	ck_assert_msg(strncmp(resp, "HTTP/1.1 400 ", 13) == 0, "answer: %.200s", resp);
	free(resp);
	/* The endpoint still serves after the refusals. */
	resp = adm_http(mport, "GET /metrics HTTP/1.0\r\n\r\n");
	ck_assert_msg(strncmp(resp, "HTTP/1.1 200 ", 13) == 0, "answer: %.200s", resp);
	free(resp);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(show_routing_and_servers_name_each_target_of_a_replicated_database)
{
	if (fixture_replica_count() == 0)
		return;
	struct sluice *s = sluice_start(NULL, NULL);
	PGconn *app = fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	const int n = 10;
	adm_run_queries(app, n);
	PGconn *a = adm_console(s);
	PGresult *r = adm_show(a, "SHOW ROUTING");
	long long routed = 0;
	int primaries = 0, replicas = 0;
	char primary[32], replica[32];
	snprintf(primary, sizeof(primary), "127.0.0.1:%d", fixture_primary_port());
	snprintf(replica, sizeof(replica), "127.0.0.1:%d", fixture_replica_port(0));
	for (int i = 0; i < PQntuples(r); i++) {
		if (strcmp(PQgetvalue(r, i, 0), FIXTURE_DB) != 0)
			continue;
		const char *role = PQgetvalue(r, i, adm_column(r, "role"));
		const char *server = PQgetvalue(r, i, adm_column(r, "server"));
		routed += atoll(PQgetvalue(r, i, adm_column(r, "transactions")));
		if (strcmp(role, "primary") == 0) {
			primaries++;
			ck_assert_str_eq(server, primary);
			ck_assert(!PQgetisnull(r, i, adm_column(r, "fallbacks")));
		} else {
			replicas += strcmp(server, replica) == 0;
			ck_assert(PQgetisnull(r, i, adm_column(r, "fallbacks")));
		}
	}
	ck_assert_int_eq(primaries, 1);
	ck_assert_int_eq(replicas, 1);
	ck_assert_int_ge(routed, n);
	PQclear(r);
	/* Every server row names its role, and the pools' roles match their servers. */
	r = adm_show(a, "SHOW SERVERS");
	for (int i = 0; i < PQntuples(r); i++) {
		const char *role = PQgetvalue(r, i, adm_column(r, "role"));
		ck_assert_msg(strcmp(role, "primary") == 0 || strcmp(role, "replica") == 0,
			      "role %s", role);
	}
	PQclear(r);
	PQfinish(app);
	PQfinish(a);
	sluice_stop_clean(s);
}
END_TEST

/* ---- the suite ---- */

static TCase *adm_tcase(const char *name, double timeout)
{
	TCase *tc = tcase_create(name);
	tcase_add_unchecked_fixture(tc, fixture_cluster_start, NULL);
	tcase_set_timeout(tc, timeout);
	return tc;
}

Suite *admin_integration_suite(void)
{
	Suite *s = suite_create("admin");
	/* The console is pgsluice's own: a direct connection to PostgreSQL has none. */
	if (fixture_direct_mode())
		return s;

	TCase *tc = adm_tcase("commands", 120);
	tcase_add_test(tc, every_show_command_answers_a_table_with_pgbouncer_columns_first);
	tcase_add_test(tc, every_command_works_through_psql_and_psql_x);
	tcase_add_test(tc, unknown_commands_empty_queries_and_extended_protocol_get_clear_answers);
	tcase_add_test(tc, stats_user_may_show_but_not_pause_and_others_are_refused);
	suite_add_tcase(s, tc);

	tc = adm_tcase("figures", 120);
	tcase_add_test(tc, n_queries_grow_total_query_count_by_exactly_n);
	tcase_add_test(tc, pg_sleep_moves_query_p99_above_200_ms);
	tcase_add_test(tc, show_routing_and_servers_name_each_target_of_a_replicated_database);
	suite_add_tcase(s, tc);

	tc = adm_tcase("control", 120);
	tcase_add_test(tc, pause_holds_a_new_query_until_resume_and_it_then_succeeds);
	tcase_add_test(tc, kill_closes_the_database_connections_and_holds_it_until_resume);
	tcase_add_test(tc, disable_refuses_new_clients_until_enable);
	tcase_add_test(tc, reconnect_replaces_the_server_connection);
	tcase_add_test(tc, reload_after_changing_default_pool_size_changes_show_pools);
	tcase_add_test(tc, set_changes_changeable_keys_and_refuses_the_rest);
	tcase_add_test(tc, shutdown_lets_clients_finish_then_exits);
	tcase_add_test(tc, shutdown_immediate_answers_then_exits_at_once);
	suite_add_tcase(s, tc);

	tc = adm_tcase("metrics", 120);
	tcase_add_test(tc, metrics_pass_promtool_and_agree_with_show_stats);
	tcase_add_test(tc, metrics_endpoint_refuses_other_paths_and_methods);
	suite_add_tcase(s, tc);
	return s;
}
