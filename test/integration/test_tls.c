/*
 * test_tls.c - TLS through pgsluice, toward clients and toward the server.
 * Certificates come from scripts/mkcerts in the run's temporary directory.
 * Clients: sslmode=require and verify-full succeed and show in SHOW CLIENTS,
 * plaintext is refused with 28000 under client_tls_mode = require, verify-ca
 * demands a client certificate, garbage after 'S' closes only that client,
 * and SIGHUP with new (or broken) certificate files keeps TLS clients
 * connected. Servers: prefer falls back on 'N', require fails without TLS;
 * with ssl on at the primary, require and verify-full use TLS and a wrong CA
 * fails the login cleanly. pgsluice's own libpq connections (health probes,
 * auth_query, plan captures) use TLS under verify-full too, and a wrong CA
 * fails them until a reload brings the right one. The primary's ssl is turned
 * off again at the end.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fixture.h"
#include "suites.h"

#define TLS_CONF_MAX 2048
#define TLS_PATH_MAX 256
#define TLS_SH_OUT 4096

/* The SSLRequest: length 8, code 1234.5679. */
static const unsigned char tls_ssl_request[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};

/* Makes (once) the certificates of set name ("a" or "b": two unrelated CAs) into dir. */
static void tls_certs(const char *name, char *dir, size_t cap)
{
	snprintf(dir, cap, "%s/tls-%s", fixture_tmpdir(), name);
	char cmd[TLS_PATH_MAX + 64], out[TLS_SH_OUT];
	snprintf(cmd, sizeof(cmd), "scripts/mkcerts %s", dir);
	ck_assert_msg(fixture_sh(cmd, out, sizeof(out)) == 0, "mkcerts: %s", out);
}

/* The [pgsluice] lines of TLS toward clients with certificate set dir, then extra. */
static void tls_client_conf(char *conf, size_t cap, const char *mode, const char *dir,
			    const char *extra)
{
	snprintf(conf, cap,
		 "client_tls_mode = %s\nclient_tls_cert_file = %s/server.crt\n"
		 "client_tls_key_file = %s/server.key\nclient_tls_ca_file = %s/ca.crt\n%s",
		 mode, dir, dir, dir, extra != NULL ? extra : "");
}

/* Connects through TLS checked against dir's CA, host name verified. */
static PGconn *tls_connect_verified(int port, const char *dir)
{
	char extra[TLS_PATH_MAX + 64];
	snprintf(extra, sizeof(extra), "host=localhost sslmode=verify-full sslrootcert=%s/ca.crt",
		 dir);
	return fixture_connect(port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, extra);
}

/* The tls column of the first row of command (SHOW CLIENTS or SERVERS) for FIXTURE_DB. */
static char *tls_show_column(int port, const char *command)
{
	PGconn *adm = fixture_connect_ok(port, "pgsluice", FIXTURE_ADMIN_USER,
					 FIXTURE_ADMIN_PASSWORD, "sslmode=prefer");
	PGresult *r = fixture_exec_ok(adm, command);
	int tls_col = PQfnumber(r, "tls");
	int db_col = PQfnumber(r, "database");
	ck_assert_int_ge(tls_col, 0);
	ck_assert_int_ge(db_col, 0);
	char *found = NULL;
	for (int i = 0; i < PQntuples(r) && found == NULL; i++)
		if (strcmp(PQgetvalue(r, i, db_col), FIXTURE_DB) == 0)
			found = strdup(PQgetvalue(r, i, tls_col));
	PQclear(r);
	PQfinish(adm);
	return found != NULL ? found : strdup("(no row)");
}

/* Waits up to timeout_s for needle in s's log. */
static bool tls_log_has(struct sluice *s, const char *needle, double timeout_s)
{
	double deadline = fixture_now() + timeout_s;
	for (;;) {
		char *log = sluice_log(s);
		bool found = strstr(log, needle) != NULL;
		free(log);
		if (found)
			return true;
		if (fixture_now() > deadline)
			return false;
		fixture_sleep(0.05);
	}
}

static int tls_raw_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s",
		      strerror(errno));
	return fd;
}

/* Reads until the peer closes or timeout_s passes; returns whether it closed. */
static bool tls_raw_closed(int fd, double timeout_s, char *first, size_t cap)
{
	double deadline = fixture_now() + timeout_s;
	size_t got = 0;
	for (;;) {
		int left_ms = (int)((deadline - fixture_now()) * 1000);
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (left_ms <= 0 || poll(&pfd, 1, left_ms) == 0)
			return false;
		char buf[512];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0 && errno != EINTR)
			return true;
		for (ssize_t i = 0; i < n && got + 1 < cap; i++)
			first[got++] = buf[i] != '\0' ? buf[i] : ' ';
		first[got] = '\0';
	}
}

/* Runs a big and a many-row query, so that reads and writes span many TLS records. */
static void tls_big_queries(PGconn *c)
{
	char *v = fixture_value(c, "SELECT length(repeat('x', 3000000) || '')");
	ck_assert_str_eq(v, "3000000");
	free(v);
	PGresult *r = fixture_exec_ok(c, "SELECT i, md5(i::text) FROM generate_series(1, 100000) i");
	ck_assert_int_eq(PQntuples(r), 100000);
	ck_assert_str_eq(PQgetvalue(r, 99999, 0), "100000");
	PQclear(r);
	v = fixture_value(c, "SELECT length('payload' || repeat('y', 200000))");
	ck_assert_str_eq(v, "200007");
	free(v);
}

START_TEST(require_and_verify_full_clients_use_tls)
{
	char dir[TLS_PATH_MAX], conf[TLS_CONF_MAX];
	tls_certs("a", dir, sizeof(dir));
	tls_client_conf(conf, sizeof(conf), "require", dir, NULL);
	struct sluice *s = sluice_start(conf, NULL);

	PGconn *c = fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD,
				       "sslmode=require");
	ck_assert_int_eq(PQsslInUse(c), 1);
	char *v = fixture_value(c, "SELECT 40 + 2");
	ck_assert_str_eq(v, "42");
	free(v);
	tls_big_queries(c);

	PGconn *vf = tls_connect_verified(s->port, dir);
	ck_assert_msg(PQstatus(vf) == CONNECTION_OK, "verify-full: %s", PQerrorMessage(vf));
	ck_assert_int_eq(PQsslInUse(vf), 1);
	v = fixture_value(vf, "SELECT current_user");
	ck_assert_str_eq(v, FIXTURE_USER);
	free(v);

	char *tls = tls_show_column(s->port, "SHOW CLIENTS");
	ck_assert_msg(strncmp(tls, "TLSv1.", 6) == 0 && strchr(tls, '/') != NULL,
		      "SHOW CLIENTS tls = \"%s\"", tls);
	free(tls);

	PGconn *plain = fixture_connect(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD,
					"sslmode=disable");
	ck_assert_int_ne(PQstatus(plain), CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(plain), "accepts only TLS") != NULL, "%s",
		      PQerrorMessage(plain));
	PQfinish(plain);
	ck_assert_msg(tls_log_has(s, "FATAL 28000: pgsluice accepts only TLS", 5),
		      "no 28000 in the log");

	/* The first clients were not disturbed. */
	v = fixture_value(c, "SELECT 'still here'");
	ck_assert_str_eq(v, "still here");
	free(v);
	PQfinish(vf);
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(prefer_serves_both_and_verify_ca_demands_a_client_certificate)
{
	char dir[TLS_PATH_MAX], conf[TLS_CONF_MAX];
	tls_certs("a", dir, sizeof(dir));
	tls_client_conf(conf, sizeof(conf), "prefer", dir, NULL);
	struct sluice *s = sluice_start(conf, NULL);
	PGconn *plain = fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD,
					   "sslmode=disable");
	ck_assert_int_eq(PQsslInUse(plain), 0);
	PGconn *tls = fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD,
					 "sslmode=prefer");
	ck_assert_int_eq(PQsslInUse(tls), 1);
	PQfinish(plain);
	PQfinish(tls);
	sluice_stop_clean(s);

	tls_client_conf(conf, sizeof(conf), "verify-ca", dir, NULL);
	s = sluice_start(conf, NULL);
	char extra[4 * TLS_PATH_MAX + 128];
	/* Certificate files that do not exist: libpq sends none. */
	snprintf(extra, sizeof(extra),
		 "sslmode=verify-ca sslrootcert=%s/ca.crt sslcert=%s/none.crt sslkey=%s/none.key",
		 dir, dir, dir);
	PGconn *nocert = fixture_connect(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, extra);
	ck_assert_int_ne(PQstatus(nocert), CONNECTION_OK);
	PQfinish(nocert);
	ck_assert_msg(tls_log_has(s, "TLS handshake failed", 5), "no handshake failure logged");
	snprintf(extra, sizeof(extra),
		 "sslmode=verify-ca sslrootcert=%s/ca.crt sslcert=%s/client.crt sslkey=%s/client.key",
		 dir, dir, dir);
	PGconn *withcert = fixture_connect(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD,
					   extra);
	ck_assert_msg(PQstatus(withcert) == CONNECTION_OK, "with a certificate: %s",
		      PQerrorMessage(withcert));
	ck_assert_int_eq(PQsslInUse(withcert), 1);
	char *v = fixture_value(withcert, "SELECT 1");
	ck_assert_str_eq(v, "1");
	free(v);
	PQfinish(withcert);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(garbage_after_S_closes_only_that_client)
{
	char dir[TLS_PATH_MAX], conf[TLS_CONF_MAX];
	tls_certs("a", dir, sizeof(dir));
	tls_client_conf(conf, sizeof(conf), "require", dir, NULL);
	struct sluice *s = sluice_start(conf, NULL);
	PGconn *c = fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD,
				       "sslmode=require");

	int fd = tls_raw_connect(s->port);
	ck_assert_int_eq(send(fd, tls_ssl_request, sizeof(tls_ssl_request), MSG_NOSIGNAL), 8);
	char answer = 0;
	ck_assert_int_eq(recv(fd, &answer, 1, 0), 1);
	ck_assert_int_eq(answer, 'S');
	static const char garbage[] = "GET / HTTP/1.0\r\nHost: x\r\n\r\n not a ClientHello";
	ck_assert_int_gt(send(fd, garbage, sizeof(garbage), MSG_NOSIGNAL), 0);
	char first[256] = "";
	ck_assert_msg(tls_raw_closed(fd, 5, first, sizeof(first)), "garbage client not closed");
	close(fd);
	ck_assert(tls_log_has(s, "TLS handshake failed", 5));

	/* Bytes sent right behind the SSLRequest are refused before any TLS. */
	fd = tls_raw_connect(s->port);
	unsigned char piped[sizeof(tls_ssl_request) + 4];
	memcpy(piped, tls_ssl_request, sizeof(tls_ssl_request));
	memcpy(piped + sizeof(tls_ssl_request), "\x16\x03\x01\x00", 4);
	ck_assert_int_eq(send(fd, piped, sizeof(piped), MSG_NOSIGNAL), (ssize_t)sizeof(piped));
	ck_assert_msg(tls_raw_closed(fd, 5, first, sizeof(first)), "pipelined client not closed");
	ck_assert_msg(strstr(first, "data after an encryption request") != NULL, "got \"%s\"",
		      first);
	close(fd);

	char *v = fixture_value(c, "SELECT count(*) FROM generate_series(1, 1000)");
	ck_assert_str_eq(v, "1000");
	free(v);
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(sighup_with_new_certificates_keeps_tls_clients)
{
	char a[TLS_PATH_MAX], b[TLS_PATH_MAX], conf[TLS_CONF_MAX];
	tls_certs("a", a, sizeof(a));
	tls_certs("b", b, sizeof(b));
	tls_client_conf(conf, sizeof(conf), "require", a, NULL);
	struct sluice *s = sluice_start(conf, NULL);
	PGconn *old = tls_connect_verified(s->port, a);
	ck_assert_msg(PQstatus(old) == CONNECTION_OK, "%s", PQerrorMessage(old));

	tls_client_conf(conf, sizeof(conf), "require", b, NULL);
	ck_assert(sluice_rewrite(s, conf, NULL));
	sluice_signal(s, SIGHUP);
	ck_assert(tls_log_has(s, "configuration reloaded", 5));
	char *v = fixture_value(old, "SELECT 'old client'");
	ck_assert_str_eq(v, "old client");
	free(v);
	PGconn *fresh = tls_connect_verified(s->port, b);
	ck_assert_msg(PQstatus(fresh) == CONNECTION_OK, "new CA: %s", PQerrorMessage(fresh));
	PGconn *stale = tls_connect_verified(s->port, a);
	ck_assert_int_ne(PQstatus(stale), CONNECTION_OK);
	PQfinish(stale);

	/* A broken certificate file: logged, and the running context stays. */
	char broken[TLS_CONF_MAX];
	snprintf(broken, sizeof(broken),
		 "client_tls_mode = require\nclient_tls_cert_file = %s/missing.crt\n"
		 "client_tls_key_file = %s/server.key\n",
		 b, b);
	ck_assert(sluice_rewrite(s, broken, NULL));
	sluice_signal(s, SIGHUP);
	ck_assert(tls_log_has(s, "keeps its running TLS context", 5));
	v = fixture_value(old, "SELECT 'old client again'");
	ck_assert_str_eq(v, "old client again");
	free(v);
	v = fixture_value(fresh, "SELECT 'new client'");
	ck_assert_str_eq(v, "new client");
	free(v);
	PGconn *after = tls_connect_verified(s->port, b);
	ck_assert_msg(PQstatus(after) == CONNECTION_OK, "after a broken reload: %s",
		      PQerrorMessage(after));
	PQfinish(after);
	PQfinish(fresh);
	PQfinish(old);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(broken_certificate_at_start_is_a_startup_error)
{
	char dir[TLS_PATH_MAX], cmd[4 * TLS_PATH_MAX], out[TLS_SH_OUT];
	tls_certs("a", dir, sizeof(dir));
	char conf_path[TLS_PATH_MAX + 32];
	snprintf(conf_path, sizeof(conf_path), "%s/broken-tls.ini", fixture_tmpdir());
	FILE *f = fopen(conf_path, "w");
	ck_assert(f != NULL);
	fprintf(f,
		"[pgsluice]\nlisten_addr = 127.0.0.1\nlisten_port = 1\nunix_socket_dir =\n"
		"auth_type = trust\nclient_tls_mode = require\n"
		"client_tls_cert_file = %s/server.crt\nclient_tls_key_file = %s/client.key\n"
		"[databases]\napp = host=127.0.0.1 port=%d\n",
		dir, dir, fixture_primary_port());
	fclose(f);
	const char *bin = getenv("PGSLUICE_BIN");
	snprintf(cmd, sizeof(cmd), "%s %s", bin != NULL ? bin : "./src/pgsluice", conf_path);
	int rc = fixture_sh(cmd, out, sizeof(out));
	ck_assert_int_ne(rc, 0);
	ck_assert_msg(strstr(out, "client_tls: cannot use key") != NULL, "output: %s", out);
}
END_TEST

/* ---- toward the server ---- */

/* Connects to the primary as postgres (plaintext, as the fixture's scripts do). */
static PGconn *tls_primary_connect(void)
{
	char conninfo[160];
	snprintf(conninfo, sizeof(conninfo),
		 "host=127.0.0.1 port=%d dbname=%s user=postgres sslmode=disable connect_timeout=10",
		 fixture_primary_port(), FIXTURE_DB);
	return PQconnectdb(conninfo);
}

/* Runs sql as postgres on the primary; ck_asserts that it worked. */
static void tls_primary_sql(const char *sql)
{
	PGconn *c = tls_primary_connect();
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "primary: %s", PQerrorMessage(c));
	PGresult *r = PQexec(c, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
		      "%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/*
 * The [pgsluice] lines for server_tls_mode with CA set dir (NULL: none). Only the
 * primary gets ssl on: reads stay there.
 */
static void tls_server_conf(char *conf, size_t cap, const char *mode, const char *dir)
{
	snprintf(conf, cap, "read_routing = off\nserver_tls_mode = %s\n", mode);
	if (dir != NULL)
		snprintf(conf + strlen(conf), cap - strlen(conf), "server_tls_ca_file = %s/ca.crt\n",
			 dir);
}

/* Whether the server session serving c runs over TLS, as pg_stat_ssl says. */
static char *tls_server_ssl(PGconn *c)
{
	return fixture_value(c, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
}

/* Turns ssl on at the primary with certificate set dir, or off (dir NULL). */
static void tls_primary_ssl(const char *dir)
{
	char cmd[8 * TLS_PATH_MAX], out[TLS_SH_OUT], sql[2 * TLS_PATH_MAX];
	if (dir == NULL) {
		tls_primary_sql("ALTER SYSTEM RESET ssl");
		tls_primary_sql("SELECT pg_reload_conf()");
		return;
	}
	/* Where postgres can read them, the key private to it as PostgreSQL demands. */
	char pgdir[TLS_PATH_MAX];
	snprintf(pgdir, sizeof(pgdir), "%s/cluster/tls", fixture_tmpdir());
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s && install -o postgres -m 0644 %s/server.crt %s/server.crt && "
		 "install -o postgres -m 0600 %s/server.key %s/server.key && chown postgres %s",
		 pgdir, dir, pgdir, dir, pgdir, pgdir);
	ck_assert_msg(fixture_sh(cmd, out, sizeof(out)) == 0, "%s: %s", cmd, out);
	snprintf(sql, sizeof(sql), "ALTER SYSTEM SET ssl_cert_file = '%s/server.crt'", pgdir);
	tls_primary_sql(sql);
	snprintf(sql, sizeof(sql), "ALTER SYSTEM SET ssl_key_file = '%s/server.key'", pgdir);
	tls_primary_sql(sql);
	tls_primary_sql("ALTER SYSTEM SET ssl = on");
	tls_primary_sql("SELECT pg_reload_conf()");
	/* The reload is asynchronous: wait until a new session sees it. */
	double deadline = fixture_now() + 10;
	for (;;) {
		char *v = fixture_admin_value(fixture_primary_port(), "SHOW ssl");
		bool on = strcmp(v, "on") == 0;
		free(v);
		if (on)
			break;
		ck_assert_msg(fixture_now() < deadline, "ssl did not turn on at the primary");
		fixture_sleep(0.1);
	}
}

/* Unchecked teardown: later suites find the primary as it was. */
static void tls_primary_ssl_off(void)
{
	PGconn *c = tls_primary_connect();
	if (PQstatus(c) == CONNECTION_OK) {
		PQclear(PQexec(c, "ALTER SYSTEM RESET ssl"));
		PQclear(PQexec(c, "SELECT pg_reload_conf()"));
	}
	PQfinish(c);
}

START_TEST(server_prefer_falls_back_and_require_fails_without_tls)
{
	char conf[TLS_CONF_MAX];
	tls_server_conf(conf, sizeof(conf), "prefer", NULL);
	struct sluice *s = sluice_start(conf, NULL);
	PGconn *c = fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	char *v = tls_server_ssl(c);
	ck_assert_str_eq(v, "f");
	free(v);
	PQfinish(c);
	sluice_stop_clean(s);

	tls_server_conf(conf, sizeof(conf), "require", NULL);
	s = sluice_start(conf, NULL);
	c = fixture_connect(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	ck_assert_int_ne(PQstatus(c), CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(c), "does not accept TLS") != NULL, "%s",
		      PQerrorMessage(c));
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

START_TEST(server_require_and_verify_full_use_tls_and_a_wrong_ca_fails)
{
	char a[TLS_PATH_MAX], b[TLS_PATH_MAX], conf[TLS_CONF_MAX];
	tls_certs("a", a, sizeof(a));
	tls_certs("b", b, sizeof(b));
	tls_primary_ssl(a);

	tls_server_conf(conf, sizeof(conf), "require", NULL);
	struct sluice *s = sluice_start(conf, NULL);
	PGconn *c = fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	char *v = tls_server_ssl(c);
	ck_assert_str_eq(v, "t");
	free(v);
	tls_big_queries(c);
	char *tls = tls_show_column(s->port, "SHOW SERVERS");
	ck_assert_msg(strncmp(tls, "TLSv1.", 6) == 0, "SHOW SERVERS tls = \"%s\"", tls);
	free(tls);
	PQfinish(c);
	sluice_stop_clean(s);

	tls_server_conf(conf, sizeof(conf), "verify-full", a);
	s = sluice_start(conf, NULL);
	c = fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	v = tls_server_ssl(c);
	ck_assert_str_eq(v, "t");
	free(v);
	PQfinish(c);
	sluice_stop_clean(s);

	tls_server_conf(conf, sizeof(conf), "verify-full", b);
	s = sluice_start(conf, NULL);
	c = fixture_connect(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	ck_assert_int_ne(PQstatus(c), CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(c), "certificate verify failed") != NULL, "%s",
		      PQerrorMessage(c));
	PQfinish(c);
	ck_assert(tls_log_has(s, "certificate verify failed", 5));
	sluice_stop_clean(s);

	tls_primary_ssl(NULL);
}
END_TEST

/*
 * pgsluice's own libpq sessions on the primary: "application_name=true" (on TLS) or
 * "=false" for each application_name starting with pgsluice-, sorted and
 * comma-separated ("" when none).
 */
static char *tls_aux_sessions(void)
{
	PGconn *c = tls_primary_connect();
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "primary: %s", PQerrorMessage(c));
	char *v = fixture_value(c, "SELECT coalesce(string_agg(DISTINCT a.application_name || "
				   "'=' || s.ssl, ',' ORDER BY a.application_name || '=' || s.ssl), '') "
				   "FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
				   "WHERE a.application_name LIKE 'pgsluice-%'");
	PQfinish(c);
	return v;
}

/*
 * Waits up to timeout_s for want (e.g. "pgsluice-health=true") among tls_aux_sessions(),
 * or with whole, for want to be all of them.
 */
static void tls_wait_aux_session(const char *want, bool whole, double timeout_s)
{
	double deadline = fixture_now() + timeout_s;
	for (;;) {
		char *v = tls_aux_sessions();
		bool found = whole ? strcmp(v, want) == 0 : strstr(v, want) != NULL;
		if (!found && fixture_now() > deadline)
			ck_abort_msg("no %s on the primary; pgsluice's sessions: %s", want, v);
		free(v);
		if (found)
			return;
		fixture_sleep(0.1);
	}
}

/* server_tls_mode = mode with CA set dir (NULL: none), probes every 200 ms, auth_query as
 * postgres (trust over TCP), plan captures of statements past 100 ms. */
static void tls_aux_conf(char *conf, size_t cap, const char *mode, const char *dir)
{
	tls_server_conf(conf, cap, mode, dir);
	snprintf(conf + strlen(conf), cap - strlen(conf),
		 "health_check_period = 200ms\nhealth_check_user = postgres\n"
		 "auth_user = postgres\nslow_query_threshold = 100ms\n");
}

/*
 * The health probes, auth_query and the plan captures follow server_tls_mode: under
 * disable the probe stays in plaintext although the primary offers TLS (libpq's own
 * default would take it), under verify-full all three reach the primary over TLS.
 */
START_TEST(probes_auth_query_and_captures_follow_server_tls_mode)
{
	char a[TLS_PATH_MAX], conf[TLS_CONF_MAX];
	tls_certs("a", a, sizeof(a));
	tls_primary_ssl(a);
	tls_aux_conf(conf, sizeof(conf), "disable", NULL);
	struct sluice *s = sluice_start(conf, NULL);
	tls_wait_aux_session("pgsluice-health=false", false, 10);
	sluice_stop_clean(s);
	tls_wait_aux_session("", true, 10);

	tls_aux_conf(conf, sizeof(conf), "verify-full", a);
	s = sluice_start(conf, NULL);
	tls_wait_aux_session("pgsluice-health=true", false, 10);

	/* A user the auth file does not know is looked up, found or not. */
	PGconn *c = fixture_connect(s->port, FIXTURE_DB, "tls_nobody", "nothing", NULL);
	ck_assert_int_ne(PQstatus(c), CONNECTION_OK);
	PQfinish(c);
	tls_wait_aux_session("pgsluice-authquery=true", false, 10);

	c = fixture_connect_ok(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	PQclear(fixture_exec_ok(c, "SELECT pg_sleep(0.2)"));
	PQfinish(c);
	tls_wait_aux_session("pgsluice-explain=true", false, 10);

	char *v = tls_aux_sessions();
	ck_assert_msg(strstr(v, "=false") == NULL, "plaintext sessions: %s", v);
	free(v);
	sluice_stop_clean(s);
	tls_primary_ssl(NULL);
}
END_TEST

/*
 * Under verify-full with a CA that did not sign the primary's certificate, the probe and
 * auth_query fail instead of connecting unverified; after a reload with the right CA the
 * next probe connects over TLS.
 */
START_TEST(wrong_ca_fails_probes_and_auth_query_until_a_reload_fixes_it)
{
	char a[TLS_PATH_MAX], b[TLS_PATH_MAX], conf[TLS_CONF_MAX];
	tls_certs("a", a, sizeof(a));
	tls_certs("b", b, sizeof(b));
	tls_primary_ssl(a);
	tls_aux_conf(conf, sizeof(conf), "verify-full", b);
	struct sluice *s = sluice_start(conf, NULL);
	char needle[128];
	snprintf(needle, sizeof(needle), "primary 127.0.0.1:%d of %s failed: connect failed: ",
		 fixture_primary_port(), FIXTURE_DB);
	ck_assert_msg(tls_log_has(s, needle, 5), "no probe failure in the log");
	ck_assert(tls_log_has(s, "certificate verify failed", 1));

	PGconn *c = fixture_connect(s->port, FIXTURE_DB, "tls_nobody", "nothing", NULL);
	ck_assert_int_ne(PQstatus(c), CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(c), "auth_query failed") != NULL, "%s",
		      PQerrorMessage(c));
	PQfinish(c);
	char *v = tls_aux_sessions();
	ck_assert_msg(strstr(v, "pgsluice-health") == NULL && strstr(v, "pgsluice-authquery") == NULL,
		      "connected unverified: %s", v);
	free(v);

	tls_aux_conf(conf, sizeof(conf), "verify-full", a);
	ck_assert(sluice_rewrite(s, conf, NULL));
	sluice_signal(s, SIGHUP);
	tls_wait_aux_session("pgsluice-health=true", false, 10);
	sluice_stop_clean(s);
	tls_primary_ssl(NULL);
}
END_TEST

/* Writes an auth file in the run's directory holding only the primary's SCRAM secret of
 * app; its path into path. */
static void tls_scram_only_auth_file(char *path, size_t cap)
{
	char *secret = fixture_admin_value(fixture_primary_port(),
					   "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'");
	ck_assert_msg(strncmp(secret, "SCRAM-SHA-256$", 14) == 0, "app's secret: %s", secret);
	snprintf(path, cap, "%s/tls-scram-only.txt", fixture_tmpdir());
	FILE *f = fopen(path, "w");
	ck_assert(f != NULL);
	fprintf(f, "\"%s\" \"%s\"\n", FIXTURE_USER, secret);
	ck_assert_int_eq(fclose(f), 0);
	free(secret);
}

/*
 * Issue 8's acceptance: psql with sslmode=verify-full and channel_binding=require
 * connects through pgsluice to a TLS primary, for a user whose only secret in
 * pgsluice is SCRAM (pass-through to the primary, which demands SCRAM).
 */
START_TEST(psql_verify_full_with_channel_binding_reaches_a_tls_primary_on_a_scram_secret)
{
	char a[TLS_PATH_MAX], auth[TLS_PATH_MAX], conf[2 * TLS_CONF_MAX], extra[TLS_CONF_MAX];
	tls_certs("a", a, sizeof(a));
	tls_primary_ssl(a);
	tls_scram_only_auth_file(auth, sizeof(auth));
	tls_server_conf(extra, sizeof(extra), "verify-full", a);
	snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
		 "auth_type = scram-sha-256\nauth_file = %s\n", auth);
	tls_client_conf(conf, sizeof(conf), "require", a, extra);
	struct sluice *s = sluice_start(conf, NULL);
	char cmd[4 * TLS_PATH_MAX], out[TLS_SH_OUT];
	snprintf(cmd, sizeof(cmd),
		 "PGPASSWORD=%s %s/psql \"host=localhost port=%d dbname=%s user=%s "
		 "sslmode=verify-full sslrootcert=%s/ca.crt channel_binding=require\" -XAtc "
		 "\"SELECT 'server ssl ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()\" 2>&1",
		 FIXTURE_PASSWORD, fixture_pg_bindir(), s->port, FIXTURE_DB, FIXTURE_USER, a);
	int rc = fixture_sh(cmd, out, sizeof(out));
	ck_assert_msg(rc == 0 && strstr(out, "server ssl t") != NULL, "psql (%d): %s", rc, out);
	/* Without TLS there is nothing to bind to: libpq itself refuses. */
	snprintf(cmd, sizeof(cmd),
		 "PGPASSWORD=%s %s/psql \"host=127.0.0.1 port=%d dbname=%s user=%s "
		 "sslmode=disable channel_binding=require\" -XAtc \"SELECT 1\" 2>&1",
		 FIXTURE_PASSWORD, fixture_pg_bindir(), s->port, FIXTURE_DB, FIXTURE_USER);
	ck_assert_msg(fixture_sh(cmd, out, sizeof(out)) != 0, "channel_binding=require without TLS "
								 "connected: %s", out);
	sluice_stop_clean(s);
	tls_primary_ssl(NULL);
}
END_TEST

/* hostssl and hostnossl lines of an hba_file tell TLS clients from plaintext ones. */
START_TEST(hba_hostssl_lets_tls_clients_in_and_hostnossl_refuses_plaintext)
{
	char a[TLS_PATH_MAX], hba[TLS_PATH_MAX], conf[2 * TLS_CONF_MAX], extra[TLS_CONF_MAX];
	tls_certs("a", a, sizeof(a));
	snprintf(hba, sizeof(hba), "%s/tls-hba.conf", fixture_tmpdir());
	FILE *f = fopen(hba, "w");
	ck_assert(f != NULL);
	fprintf(f, "hostssl   all  all  127.0.0.1/32  scram-sha-256\n"
		   "hostnossl all  all  127.0.0.1/32  reject\n");
	ck_assert_int_eq(fclose(f), 0);
	snprintf(extra, sizeof(extra), "hba_file = %s\n", hba);
	tls_client_conf(conf, sizeof(conf), "prefer", a, extra);
	struct sluice *s = sluice_start(conf, NULL);
	PGconn *c = tls_connect_verified(s->port, a);
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "TLS client refused: %s", PQerrorMessage(c));
	char *v = fixture_value(c, "SELECT 'in'");
	ck_assert_str_eq(v, "in");
	free(v);
	PQfinish(c);
	c = fixture_connect(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, "sslmode=disable");
	ck_assert_int_ne(PQstatus(c), CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(c), "28000") != NULL ||
			      strstr(PQerrorMessage(c), "rejects connection") != NULL,
		      "%s", PQerrorMessage(c));
	PQfinish(c);
	sluice_stop_clean(s);
}
END_TEST

/* Method cert: a client certificate whose common name is the user logs in without a
 * password; no certificate, or one for another user, is refused with 28000. */
START_TEST(hba_cert_logs_in_by_the_certificate_s_common_name)
{
	char a[TLS_PATH_MAX], hba[TLS_PATH_MAX], conf[2 * TLS_CONF_MAX], extra[TLS_CONF_MAX];
	tls_certs("a", a, sizeof(a));
	snprintf(hba, sizeof(hba), "%s/tls-cert-hba.conf", fixture_tmpdir());
	FILE *f = fopen(hba, "w");
	ck_assert(f != NULL);
	fprintf(f, "hostssl all %s 127.0.0.1/32 cert\nhostssl all %s 127.0.0.1/32 cert\n",
		FIXTURE_USER, FIXTURE_USER2);
	ck_assert_int_eq(fclose(f), 0);
	snprintf(extra, sizeof(extra), "hba_file = %s\n", hba);
	tls_client_conf(conf, sizeof(conf), "require", a, extra);
	struct sluice *s = sluice_start(conf, NULL);
	char with_cert[4 * TLS_PATH_MAX + 128], without[4 * TLS_PATH_MAX + 128];
	snprintf(with_cert, sizeof(with_cert),
		 "sslmode=verify-ca sslrootcert=%s/ca.crt sslcert=%s/client.crt "
		 "sslkey=%s/client.key",
		 a, a, a);
	snprintf(without, sizeof(without),
		 "sslmode=verify-ca sslrootcert=%s/ca.crt sslcert=%s/none.crt sslkey=%s/none.key", a,
		 a, a);
	/* The certificate's CN is app: no password is asked for, a wrong one does not matter. */
	PGconn *c = fixture_connect(s->port, FIXTURE_DB, FIXTURE_USER, "not-the-password",
				    with_cert);
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "cert login: %s", PQerrorMessage(c));
	char *v = fixture_value(c, "SELECT current_user");
	ck_assert_str_eq(v, FIXTURE_USER);
	free(v);
	PQfinish(c);
	c = fixture_connect(s->port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, without);
	ck_assert_int_ne(PQstatus(c), CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(c), "certificate authentication failed") != NULL, "%s",
		      PQerrorMessage(c));
	PQfinish(c);
	c = fixture_connect(s->port, FIXTURE_DB, FIXTURE_USER2, FIXTURE_PASSWORD2, with_cert);
	ck_assert_int_ne(PQstatus(c), CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(c), "certificate authentication failed") != NULL, "%s",
		      PQerrorMessage(c));
	PQfinish(c);
	ck_assert(tls_log_has(s, "common name does not match", 5));
	sluice_stop_clean(s);
}
END_TEST

Suite *tls_integration_suite(void)
{
	Suite *s = suite_create("tls_integration");
	TCase *tc = tcase_create("clients");
	tcase_add_unchecked_fixture(tc, fixture_cluster_start, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, require_and_verify_full_clients_use_tls);
	tcase_add_test(tc, prefer_serves_both_and_verify_ca_demands_a_client_certificate);
	tcase_add_test(tc, garbage_after_S_closes_only_that_client);
	tcase_add_test(tc, sighup_with_new_certificates_keeps_tls_clients);
	tcase_add_test(tc, broken_certificate_at_start_is_a_startup_error);
	tcase_add_test(tc, hba_hostssl_lets_tls_clients_in_and_hostnossl_refuses_plaintext);
	tcase_add_test(tc, hba_cert_logs_in_by_the_certificate_s_common_name);
	suite_add_tcase(s, tc);

	tc = tcase_create("servers");
	tcase_add_unchecked_fixture(tc, fixture_cluster_start, tls_primary_ssl_off);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, server_prefer_falls_back_and_require_fails_without_tls);
	tcase_add_test(tc, server_require_and_verify_full_use_tls_and_a_wrong_ca_fails);
	tcase_add_test(tc,
		       psql_verify_full_with_channel_binding_reaches_a_tls_primary_on_a_scram_secret);
	tcase_add_test(tc, probes_auth_query_and_captures_follow_server_tls_mode);
	tcase_add_test(tc, wrong_ca_fails_probes_and_auth_query_until_a_reload_fixes_it);
	suite_add_tcase(s, tc);
	return s;
}
