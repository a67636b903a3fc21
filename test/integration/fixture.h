/*
 * fixture.h - the integration-test fixture: a real PostgreSQL primary with streaming
 * replicas (started once per test process by scripts/pgcluster in a temporary
 * directory), pgsluice daemons started per test with a generated config, and small
 * libpq and shell helpers. Tests drive pgsluice as a black box through these.
 * With PGSLUICE_TEST_DIRECT=1, sluice_start() starts nothing and hands back the
 * primary's port, so a test's own logic can be checked against PostgreSQL itself.
 */
#ifndef PGSLUICE_FIXTURE_H
#define PGSLUICE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <libpq-fe.h>

/* The database and the roles scripts/pgcluster creates; the userlist holds them. */
#define FIXTURE_DB "app"
#define FIXTURE_USER "app"
#define FIXTURE_PASSWORD "app-pass"
#define FIXTURE_USER2 "other"
#define FIXTURE_PASSWORD2 "other-pass"
#define FIXTURE_ADMIN_USER "admin"
#define FIXTURE_ADMIN_PASSWORD "admin-pass"

/*
 * Start the primary and PGSLUICE_TEST_REPLICAS (default 1) streaming replicas.
 * Idempotent per process; registers an atexit teardown. Independent of Check: on
 * failure it prints why and calls abort(). Safe as an unchecked fixture.
 */
void fixture_cluster_start(void);

/* Stop the cluster and remove the temporary directory (kept with PGSLUICE_KEEP_TMP=1). */
void fixture_cluster_stop(void);

/* Return the primary's TCP port on 127.0.0.1 (the cluster must be started). */
int fixture_primary_port(void);

/* Return the TCP port of replica i (0-based, i < fixture_replica_count()). */
int fixture_replica_port(int i);

/* Return how many replicas the cluster has. */
int fixture_replica_count(void);

/* Return the run's temporary directory (cluster data, configs, logs). */
const char *fixture_tmpdir(void);

/* Return the bin directory of the PostgreSQL used (psql, pgbench, pg_ctl), no trailing '/'. */
const char *fixture_pg_bindir(void);

/* Return true when PGSLUICE_TEST_DIRECT=1: tests talk to the primary without pgsluice. */
bool fixture_direct_mode(void);

/* One running pgsluice: its process, listening port and files. */
struct sluice {
	pid_t pid;
	int port;
	char dir[256];
	char conf_path[300];
	char log_path[300];
};

/*
 * Write a config and start pgsluice (env PGSLUICE_BIN, default ./src/pgsluice).
 * [pgsluice] gets listen_addr=127.0.0.1, a free listen_port, an empty
 * unix_socket_dir, scram-sha-256 with the fixture's plaintext userlist (app, other,
 * admin), admin_users=admin, then global_extra (INI lines, may be NULL); [databases]
 * gets app on the primary with every replica, then databases_extra (may be NULL).
 * Waits up to 5 s for the port to accept; on failure ck_abort_msg with the log's tail.
 * In direct mode starts nothing: pid is 0 and port is the primary's.
 * Returns a malloc'd handle, freed by sluice_stop().
 */
struct sluice *sluice_start(const char *global_extra, const char *databases_extra);

/*
 * As sluice_start(), on a given port (another pgsluice may serve it already, with
 * so_reuseport): ready once its log says it started. port 0 = sluice_start().
 */
struct sluice *sluice_start_on_port(int port, const char *global_extra,
				    const char *databases_extra);

/*
 * Rewrite s's config with new extras (same port and files); send SIGHUP yourself.
 * Returns false when the file could not be written.
 */
bool sluice_rewrite(struct sluice *s, const char *global_extra, const char *databases_extra);

/* Send sig to the daemon (nothing in direct mode). */
void sluice_signal(struct sluice *s, int sig);

/*
 * SIGTERM, wait up to 15 s, then SIGKILL. Returns the exit status (0..255), 128+signal
 * when it died of a signal, 0 in direct mode, -1 when it could not be waited for.
 * Frees s.
 */
int sluice_stop(struct sluice *s);

/* sluice_stop() and require exit status 0: a crash or a sanitizer report fails the test,
 * with the end of the daemon's log. */
void sluice_stop_clean(struct sluice *s);

/* Wait up to timeout_s for the daemon to exit on its own; returns as sluice_stop(),
 * or -2 when it is still running (s stays valid then). Frees s only when it exited. */
int sluice_wait_exit(struct sluice *s, double timeout_s);

/* Return the daemon's log so far, malloc'd and NUL-terminated (empty when none). */
char *sluice_log(struct sluice *s);

/*
 * Connect with libpq to host=127.0.0.1 port, with connect_timeout=10 and
 * extra_conninfo appended (may be NULL). May return a failed connection; NULL never.
 */
PGconn *fixture_connect(int port, const char *db, const char *user, const char *password,
			const char *extra_conninfo);

/* As fixture_connect(), and ck_assert that the connection succeeded. */
PGconn *fixture_connect_ok(int port, const char *db, const char *user, const char *password,
			   const char *extra_conninfo);

/* Run sql; ck_assert COMMAND_OK, TUPLES_OK or COPY_*; return the result (PQclear it). */
PGresult *fixture_exec_ok(PGconn *c, const char *sql);

/* Run sql and return its first row's first cell, malloc'd; ck_assert there is one. */
char *fixture_value(PGconn *c, const char *sql);

/*
 * Column col of the one SHOW QUERIES row (c: an admin console connection) whose
 * normalized text starts with prefix, as a number; ck_assert there is exactly one.
 */
long fixture_query_stat(PGconn *c, const char *prefix, const char *col);

/*
 * Read "FATAL:  XXXXX: message" (or "ERROR:  ...") out of a verbose libpq error text
 * (PQerrorMessage of a failed connection): sqlstate gets the code, message (cap
 * bytes, may be NULL) its first line. Both are left alone when the text has none.
 */
void fixture_parse_error_text(const char *text, char sqlstate[6], char *message, size_t cap);

/* Return the result's SQLSTATE (PG_DIAG_SQLSTATE), or "" when it has none. */
const char *fixture_sqlstate(const PGresult *r);

/*
 * Run /bin/sh -c cmd with stdin from /dev/null, capturing stdout and stderr together
 * into out (NUL-terminated, truncated to cap - 1; out may be NULL when cap is 0).
 * Returns the exit status, 128+signal when killed, -1 when it could not run.
 */
int fixture_sh(const char *cmd, char *out, size_t cap);

/* Return monotonic time in seconds. */
double fixture_now(void);

/* Sleep for seconds (fractions allowed). */
void fixture_sleep(double seconds);

/*
 * Stops replica i (0-based) with pg_ctl -m immediate (a crash, as far as
 * clients can tell) or starts it again, waiting until it accepts
 * connections. ck_assert on failure.
 */
void fixture_replica_stop(int i);
void fixture_replica_start(int i);

/* Runs sql as postgres on the server at port; returns the first cell (malloc'd). */
char *fixture_admin_value(int port, const char *sql);

/* pgbench -i -s 1 on the primary (directly), then waits until every replica has
 * replayed it: tables of an earlier init may still be visible on a replica until then. */
void fixture_pgbench_init(void);

#endif
