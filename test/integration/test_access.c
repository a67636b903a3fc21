/*
 * test_access.c - who may log in through a running pgsluice: hba_file rules
 * (per user, per database, per address, local against host, first match
 * wins, trust/scram-sha-256/password/reject/cert, no match) and their reload
 * (a changed file changes who gets in without dropping connected clients, a
 * broken one keeps the rules in force); auth_query (users created on the
 * primary after pgsluice started log in with md5 and SCRAM secrets, wrong
 * passwords and unknown users get the same 28P01 as auth_file users, an
 * unreachable or silent lookup server gives 08006 within auth_query_timeout, and
 * a reload while a login waits asks again instead of failing it).
 * Refusals are read from libpq's verbose error text (SQLSTATE and message).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

#include "fixture.h"
#include "suites.h"

/* A database alias on the primary, for the per-database rules. */
#define ACCESS_DB2 "app2"
/* The database of the auth_query tests: the primary over its unix socket, where every
 * user logs in by trust, so that servers accept the users auth_query found. */
#define ACCESS_AQ_DB "aq"
/* A database whose primary nothing listens on: auth_query cannot reach it. */
#define ACCESS_DEAD_DB "dead"
/* The primary over TCP, where it asks every user but postgres for SCRAM. */
#define ACCESS_AQ_TCP_DB "aq_tcp"
/* A database whose primary accepts and never answers: auth_query times out. */
#define ACCESS_STALL_DB "stall"
#define ACCESS_MESSAGE_MAX 512
#define ACCESS_CONNECT_SECONDS 10.0

/* What a connection attempt ended with: SQLSTATE and message when refused. */
struct access_result {
	bool ok;
	char sqlstate[6];
	char message[ACCESS_MESSAGE_MAX];
	char raw[1024];
	double seconds;
};

/* Reads "FATAL:  XXXXX:  message" from libpq's verbose error text. */
static void access_parse(const char *text, struct access_result *out)
{
	snprintf(out->raw, sizeof(out->raw), "%s", text);
	fixture_parse_error_text(text, out->sqlstate, out->message, sizeof(out->message));
}

/*
 * Connects to host (an address or a socket directory) and port as user with
 * password (NULL: none), runs SELECT current_user and checks it names user,
 * then closes. A refusal is returned with its SQLSTATE, never asserted.
 */
static struct access_result access_try(const char *host, int port, const char *db,
				       const char *user, const char *password)
{
	struct access_result out = {0};
	char port_text[16];
	snprintf(port_text, sizeof(port_text), "%d", port);
	const char *keys[] = {"host", "port", "dbname", "user", "password", NULL};
	const char *values[] = {host, port_text, db, user, password != NULL ? password : "", NULL};
	double start = fixture_now();
	PGconn *c = PQconnectStartParams(keys, values, 0);
	ck_assert(c != NULL);
	PQsetErrorVerbosity(c, PQERRORS_VERBOSE);
	double deadline = start + ACCESS_CONNECT_SECONDS;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	while (PQstatus(c) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
	       st != PGRES_POLLING_FAILED) {
		double left = deadline - fixture_now();
		ck_assert_msg(left > 0, "login of %s to %s hung", user, db);
		struct pollfd pfd = {.fd = PQsocket(c),
				     .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
		if (pfd.fd >= 0)
			poll(&pfd, 1, (int)(left * 1000) + 1);
		st = PQconnectPoll(c);
	}
	out.seconds = fixture_now() - start;
	out.ok = PQstatus(c) == CONNECTION_OK;
	if (out.ok) {
		char *who = fixture_value(c, strcmp(db, "pgsluice") == 0 ? "SHOW VERSION"
									: "SELECT current_user");
		if (strcmp(db, "pgsluice") != 0)
			ck_assert_str_eq(who, user);
		free(who);
	} else {
		access_parse(PQerrorMessage(c), &out);
	}
	PQfinish(c);
	return out;
}

static struct access_result access_tcp(int port, const char *db, const char *user,
				       const char *password)
{
	return access_try("127.0.0.1", port, db, user, password);
}

static void access_assert_ok(struct access_result r, const char *what)
{
	ck_assert_msg(r.ok, "%s was refused: %s", what, r.raw);
}

static void access_assert_refused(struct access_result r, const char *sqlstate,
				  const char *message, const char *what)
{
	ck_assert_msg(!r.ok, "%s was let in", what);
	ck_assert_msg(strcmp(r.sqlstate, sqlstate) == 0, "%s: SQLSTATE \"%s\", not %s, in: %s",
		      what, r.sqlstate, sqlstate, r.raw);
	if (message != NULL)
		ck_assert_msg(strcmp(r.message, message) == 0, "%s: message\n  %s\nnot\n  %s", what,
			      r.message, message);
}

/* Writes text to the file named name in the run's directory; returns its path. */
static char *access_write_file(const char *name, const char *text)
{
	char *path = malloc(512);
	ck_assert(path != NULL);
	snprintf(path, 512, "%s/%s", fixture_tmpdir(), name);
	FILE *f = fopen(path, "w");
	ck_assert_msg(f != NULL, "cannot write %s", path);
	fputs(text, f);
	ck_assert(fclose(f) == 0);
	return path;
}

/* How many times needle occurs in s's log. */
static int access_log_count(struct sluice *s, const char *needle)
{
	char *log = sluice_log(s);
	int n = 0;
	for (const char *p = strstr(log, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	free(log);
	return n;
}

/* Waits up to 5 s for needle to occur more than `before` times in s's log. */
static void access_wait_log(struct sluice *s, const char *needle, int before)
{
	double deadline = fixture_now() + 5.0;
	while (access_log_count(s, needle) <= before) {
		ck_assert_msg(fixture_now() < deadline, "the log never said \"%s\"", needle);
		fixture_sleep(0.05);
	}
}

/* ---- hba_file ---- */

/* The rules of the first test; the reject rule is on line 4. */
static const char access_rules[] =
	"# access: every local client is trusted\n"
	"local   all       all                      trust\n"
	"host    app2      other   127.0.0.1/32     trust\n"
	"host    all       other   127.0.0.1/32     reject\n"
	"host    app       app     10.0.0.0/8       trust\n"
	"host    app       app     127.0.0.1/32     scram-sha-256\n"
	"host    app       app     127.0.0.1/32     trust\n"
	"hostssl app2      app     127.0.0.1/32     cert\n"
	"host    pgsluice  admin   127.0.0.1/32     password\n";

START_TEST(hba_rules_choose_the_method_and_refuse_as_written)
{
	if (fixture_direct_mode())
		return;
	char *hba = access_write_file("access.hba", access_rules);
	char sockdir[512], global[2048], databases[512];
	snprintf(sockdir, sizeof(sockdir), "%s/access-sock", fixture_tmpdir());
	ck_assert(mkdir(sockdir, 0755) == 0 || access(sockdir, F_OK) == 0);
	snprintf(global, sizeof(global), "hba_file = %s\nunix_socket_dir = %s\n", hba, sockdir);
	snprintf(databases, sizeof(databases), "%s = host=127.0.0.1 port=%d dbname=%s",
		 ACCESS_DB2, fixture_primary_port(), FIXTURE_DB);
	struct sluice *s = sluice_start(global, databases);

	/* 10.0.0.0/8 does not hold 127.0.0.1; the first rule that does asks for SCRAM. */
	access_assert_refused(access_tcp(s->port, FIXTURE_DB, FIXTURE_USER, "wrong-pass"), "28P01",
			      "password authentication failed for user \"app\"",
			      "app with a wrong password");
	access_assert_ok(access_tcp(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD),
			 "app with its password");

	/* A rule for one database comes before the user's reject rule. */
	access_assert_ok(access_tcp(s->port, ACCESS_DB2, FIXTURE_USER2, NULL),
			 "other in app2 (trust)");
	access_assert_refused(access_tcp(s->port, FIXTURE_DB, FIXTURE_USER2, FIXTURE_PASSWORD2),
			      "28000",
			      "hba_file rejects connection for host \"127.0.0.1\", user \"other\", "
			      "database \"app\", no encryption",
			      "other in app (reject)");
	ck_assert_int_eq(access_log_count(s, "line 4 (reject) for user \"other\""), 1);

	/* hostssl never matches a connection without TLS. */
	access_assert_refused(access_tcp(s->port, ACCESS_DB2, FIXTURE_USER, FIXTURE_PASSWORD),
			      "28000",
			      "no hba_file entry for host \"127.0.0.1\", user \"app\", "
			      "database \"app2\", no encryption",
			      "app in app2 (hostssl only)");

	access_assert_refused(access_tcp(s->port, FIXTURE_DB, FIXTURE_ADMIN_USER,
					 FIXTURE_ADMIN_PASSWORD),
			      "28000",
			      "no hba_file entry for host \"127.0.0.1\", user \"admin\", "
			      "database \"app\", no encryption",
			      "admin in app (no rule)");
	ck_assert_int_eq(access_log_count(s, "refused: no hba_file rule matches host "
					     "\"127.0.0.1\", user \"admin\", database \"app\""),
			 1);

	/* The admin console goes through the rules too: a password in clear. */
	access_assert_ok(
		access_tcp(s->port, "pgsluice", FIXTURE_ADMIN_USER, FIXTURE_ADMIN_PASSWORD),
		"admin in pgsluice (password)");
	access_assert_refused(access_tcp(s->port, "pgsluice", FIXTURE_ADMIN_USER, "wrong-pass"),
			      "28P01", "password authentication failed for user \"admin\"",
			      "admin with a wrong password in clear");

	/* local rules: the unix socket trusts everyone, host rules do not apply to it. */
	access_assert_ok(access_try(sockdir, s->port, FIXTURE_DB, FIXTURE_USER, NULL),
			 "app over the unix socket");
	access_assert_ok(access_try(sockdir, s->port, FIXTURE_DB, FIXTURE_USER2, NULL),
			 "other over the unix socket");
	sluice_stop_clean(s);
	free(hba);
}
END_TEST

START_TEST(reloaded_hba_file_changes_who_gets_in_and_keeps_clients)
{
	if (fixture_direct_mode())
		return;
	char *hba = access_write_file("access-reload.hba",
				      "host all all 127.0.0.1/32 scram-sha-256\n");
	char global[1024];
	snprintf(global, sizeof(global), "hba_file = %s\n", hba);
	struct sluice *s = sluice_start(global, NULL);
	PGconn *keeper = fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER2, FIXTURE_PASSWORD2,
					    NULL);
	access_assert_ok(access_tcp(s->port, FIXTURE_DB, FIXTURE_USER2, FIXTURE_PASSWORD2),
			 "other before the reload");

	free(access_write_file("access-reload.hba",
			       "host all other 127.0.0.1/32 reject\n"
			       "host all all   127.0.0.1/32 scram-sha-256\n"));
	int reloads = access_log_count(s, "configuration reloaded");
	sluice_signal(s, SIGHUP);
	access_wait_log(s, "configuration reloaded", reloads);
	access_assert_refused(access_tcp(s->port, FIXTURE_DB, FIXTURE_USER2, FIXTURE_PASSWORD2),
			      "28000", NULL, "other after the reload");
	access_assert_ok(access_tcp(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD),
			 "app after the reload");
	char *v = fixture_value(keeper, "SELECT current_user");
	ck_assert_str_eq(v, FIXTURE_USER2);
	free(v);

	/* A broken file is refused as a whole: the rules loaded before stay. */
	free(access_write_file("access-reload.hba", "host all all 127.0.0.1/32 trust\n"
						    "host all all 127.0.0.1/32 no-such-method\n"));
	int failures = access_log_count(s, "reload failed");
	sluice_signal(s, SIGHUP);
	access_wait_log(s, "reload failed", failures);
	ck_assert_int_ge(access_log_count(s, "access-reload.hba:2:"), 1);
	access_assert_refused(access_tcp(s->port, FIXTURE_DB, FIXTURE_USER2, FIXTURE_PASSWORD2),
			      "28000", NULL, "other after the broken reload");
	access_assert_refused(access_tcp(s->port, FIXTURE_DB, FIXTURE_USER, "wrong-pass"), "28P01",
			      NULL, "app with a wrong password after the broken reload");
	v = fixture_value(keeper, "SELECT 7");
	ck_assert_str_eq(v, "7");
	free(v);
	PQfinish(keeper);
	sluice_stop_clean(s);
	free(hba);
}
END_TEST

START_TEST(broken_hba_file_stops_the_start)
{
	if (fixture_direct_mode())
		return;
	char *hba = access_write_file("access-broken.hba",
				      "host all all 127.0.0.1/32 trust\n"
				      "hostgssenc all all 127.0.0.1/32 trust\n");
	char conf_text[1024], cmd[2048], out[4096];
	snprintf(conf_text, sizeof(conf_text),
		 "[pgsluice]\nlisten_addr = 127.0.0.1\nlisten_port = 1\nunix_socket_dir =\n"
		 "auth_type = trust\nhba_file = %s\n[databases]\napp = host=127.0.0.1\n",
		 hba);
	char *conf = access_write_file("access-broken.ini", conf_text);
	const char *bin = getenv("PGSLUICE_BIN");
	snprintf(cmd, sizeof(cmd), "%s --check %s", bin != NULL ? bin : "./src/pgsluice", conf);
	int rc = fixture_sh(cmd, out, sizeof(out));
	ck_assert_msg(rc == 1, "--check exited %d: %s", rc, out);
	ck_assert_msg(strstr(out, "access-broken.hba:2:") != NULL, "no line named in: %s", out);
	free(conf);
	free(hba);
}
END_TEST

/* ---- auth_query ---- */

/* Runs sql on the primary as postgres. */
static void access_primary_exec(const char *sql)
{
	PGconn *c = fixture_connect_ok(fixture_primary_port(), FIXTURE_DB, "postgres", NULL, NULL);
	PQclear(fixture_exec_ok(c, sql));
	PQfinish(c);
}

/* A listening socket on 127.0.0.1 that never accepts; returns its fd, port in *port. */
static int access_listen_silent(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	ck_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 16) == 0 &&
		  getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Starts pgsluice with auth_query as postgres (trust over the unix socket) and md5, so
 * that md5 secrets are asked for md5 and SCRAM secrets for SCRAM. stall_port: where
 * the stall database's primary listens without answering (0: anywhere). */
static struct sluice *access_start_auth_query(int stall_port)
{
	char global[1024], databases[1024];
	snprintf(global, sizeof(global),
		 "auth_type = md5\nauth_user = postgres\nauth_query_timeout = 2s\n");
	snprintf(databases, sizeof(databases),
		 "%s = host=%s/cluster port=%d dbname=%s\n"
		 "%s = host=127.0.0.1 port=%d dbname=%s\n"
		 "%s = host=127.0.0.1 port=1 dbname=%s\n"
		 "%s = host=127.0.0.1 port=%d dbname=%s",
		 ACCESS_AQ_DB, fixture_tmpdir(), fixture_primary_port(), FIXTURE_DB,
		 ACCESS_AQ_TCP_DB, fixture_primary_port(), FIXTURE_DB,
		 ACCESS_DEAD_DB, FIXTURE_DB, ACCESS_STALL_DB, stall_port > 0 ? stall_port : 1,
		 FIXTURE_DB);
	return sluice_start(global, databases);
}

/* Creates the auth_query users, after pgsluice started: aq_md5 and aq_scram. */
static void access_create_users(void)
{
	access_primary_exec("SET client_min_messages = warning; DROP ROLE IF EXISTS aq_md5");
	access_primary_exec("SET client_min_messages = warning; DROP ROLE IF EXISTS aq_scram");
	access_primary_exec("SET password_encryption = 'md5'; "
			    "CREATE ROLE aq_md5 LOGIN PASSWORD 'md5-pass'");
	access_primary_exec("SET password_encryption = 'scram-sha-256'; "
			    "CREATE ROLE aq_scram LOGIN PASSWORD 'scram-pass'");
}

START_TEST(auth_query_users_created_after_start_log_in)
{
	if (fixture_direct_mode())
		return;
	struct sluice *s = access_start_auth_query(0);
	access_create_users();
	access_assert_ok(access_tcp(s->port, ACCESS_AQ_DB, "aq_md5", "md5-pass"),
			 "aq_md5 (md5 secret)");
	access_assert_ok(access_tcp(s->port, ACCESS_AQ_DB, "aq_scram", "scram-pass"),
			 "aq_scram (SCRAM secret)");
	/* Again, from the cache, and the auth_file user as before. */
	access_assert_ok(access_tcp(s->port, ACCESS_AQ_DB, "aq_scram", "scram-pass"),
			 "aq_scram again");
	access_assert_ok(access_tcp(s->port, ACCESS_AQ_DB, FIXTURE_USER, FIXTURE_PASSWORD),
			 "app from auth_file");
	/* A server that asks for SCRAM: the key aq_scram proved passes through. */
	access_assert_ok(access_tcp(s->port, ACCESS_AQ_TCP_DB, "aq_scram", "scram-pass"),
			 "aq_scram to a SCRAM server (pass-through)");
	sluice_stop_clean(s);
}
END_TEST

START_TEST(wrong_password_and_unknown_user_get_the_same_28P01_on_every_path)
{
	if (fixture_direct_mode())
		return;
	struct sluice *s = access_start_auth_query(0);
	access_create_users();
	static const char *const users[] = {"aq_md5", "aq_scram", "aq_nobody", FIXTURE_USER};
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		char want[256];
		snprintf(want, sizeof(want), "password authentication failed for user \"%s\"",
			 users[i]);
		access_assert_refused(access_tcp(s->port, ACCESS_AQ_DB, users[i], "wrong-pass"),
				      "28P01", want, users[i]);
	}
	/* A failure does not poison the cache: the right password still works. */
	access_assert_ok(access_tcp(s->port, ACCESS_AQ_DB, "aq_md5", "md5-pass"),
			 "aq_md5 after a wrong password");
	sluice_stop_clean(s);
}
END_TEST

START_TEST(unreachable_or_silent_auth_query_server_gives_08006_within_the_timeout)
{
	if (fixture_direct_mode())
		return;
	int stall_port;
	int silent = access_listen_silent(&stall_port);
	struct sluice *s = access_start_auth_query(stall_port);
	struct access_result r = access_tcp(s->port, ACCESS_DEAD_DB, "aq_scram", "scram-pass");
	access_assert_refused(r, "08006", "auth_query failed: pgsluice could not look up the user",
			      "a user of a database whose server is down");
	ck_assert_msg(r.seconds < 4.0, "the refusal took %.2f s", r.seconds);
	ck_assert_int_eq(access_log_count(s, "auth_query for user \"aq_scram\" in database "
					     "\"dead\" failed"),
			 1);
	/* auth_file users of that database are not held up by it. */
	r = access_tcp(s->port, ACCESS_DEAD_DB, FIXTURE_USER, "wrong-pass");
	access_assert_refused(r, "28P01", NULL, "app with a wrong password in dead");

	/* A server that never answers: refused once auth_query_timeout (2 s) has passed. */
	r = access_tcp(s->port, ACCESS_STALL_DB, "aq_scram", "scram-pass");
	access_assert_refused(r, "08006", "auth_query failed: pgsluice could not look up the user",
			      "a user of a database whose server never answers");
	ck_assert_msg(r.seconds >= 1.5 && r.seconds < 4.0, "the refusal took %.2f s", r.seconds);
	ck_assert_int_eq(
		access_log_count(s, "in database \"stall\" failed: connect failed: timeout"), 1);

	/* A reload while a login waits asks again with the new settings: still no hang. */
	pid_t child = fork();
	ck_assert(child >= 0);
	if (child == 0) {
		usleep(500000);
		kill(s->pid, SIGHUP);
		_exit(0);
	}
	r = access_tcp(s->port, ACCESS_STALL_DB, "aq_scram", "scram-pass");
	ck_assert(waitpid(child, NULL, 0) == child);
	access_assert_refused(r, "08006", NULL, "a login waiting for auth_query during a reload");
	ck_assert_msg(r.seconds >= 2.0 && r.seconds < 5.0, "the refusal took %.2f s", r.seconds);
	ck_assert_int_eq(access_log_count(s, "configuration reloaded"), 1);
	ck_assert_int_eq(access_log_count(s, "failed: shutting down"), 0);
	ck_assert_int_eq(
		access_log_count(s, "in database \"stall\" failed: connect failed: timeout"), 2);
	sluice_stop_clean(s);
	close(silent);
}
END_TEST

Suite *access_suite(void)
{
	Suite *s = suite_create("access");
	TCase *tc = tcase_create("hba_file");
	tcase_add_unchecked_fixture(tc, fixture_cluster_start, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, hba_rules_choose_the_method_and_refuse_as_written);
	tcase_add_test(tc, reloaded_hba_file_changes_who_gets_in_and_keeps_clients);
	tcase_add_test(tc, broken_hba_file_stops_the_start);
	suite_add_tcase(s, tc);

	tc = tcase_create("auth_query");
	tcase_add_unchecked_fixture(tc, fixture_cluster_start, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, auth_query_users_created_after_start_log_in);
	tcase_add_test(tc, wrong_password_and_unknown_user_get_the_same_28P01_on_every_path);
	tcase_add_test(tc, unreachable_or_silent_auth_query_server_gives_08006_within_the_timeout);
	suite_add_tcase(s, tc);
	return s;
}
