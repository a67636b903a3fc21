/*
 * test_pgbouncer2pgsluice.c - the PgBouncer migration script
 * (contrib/pgbouncer2pgsluice) on the sample pgbouncer.ini files of
 * test/contrib/: each output must load with config_load() (pgsluice itself
 * is the judge), carry the values over, and the script must name on
 * standard error every setting it dropped. Paths come from
 * $PGSLUICE_SRCDIR, or the current directory.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "suites.h"
#include "tls.h"

#define MIGRATE_PATH_MAX   1024
#define MIGRATE_STDERR_MAX (64 * 1024)

/* One run of the script: its output file (loaded) and what it wrote to stderr. */
struct migrate_run {
	char out_path[64];
	char err_path[64];
	char err[MIGRATE_STDERR_MAX];
	struct config *cfg;
	char *errors; /* config_load's, when cfg is NULL */
};

static const char *migrate_srcdir(void)
{
	const char *dir = getenv("PGSLUICE_SRCDIR");
	return dir != NULL ? dir : ".";
}

/* Reads at most cap - 1 bytes of path into buf. */
static void migrate_slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/*
 * Runs the script on test/contrib/<sample>.ini (and <userlist> when not
 * NULL) through popen, stores its standard output in a temporary file and
 * loads it.
 */
static void migrate_run(struct migrate_run *r, const char *sample, const char *userlist)
{
	const char *dir = migrate_srcdir();
	char cmd[4 * MIGRATE_PATH_MAX], user_arg[MIGRATE_PATH_MAX + 4] = "", buf[4096];

	ck_assert_msg(strchr(dir, '\'') == NULL, "PGSLUICE_SRCDIR holds a quote");
	snprintf(r->out_path, sizeof(r->out_path), "/tmp/pgsluice-migrate-XXXXXX");
	snprintf(r->err_path, sizeof(r->err_path), "/tmp/pgsluice-migrate-err-XXXXXX");
	int out_fd = mkstemp(r->out_path);
	int err_fd = mkstemp(r->err_path);
	ck_assert_msg(out_fd >= 0 && err_fd >= 0, "mkstemp failed");
	close(err_fd);
	if (userlist != NULL)
		snprintf(user_arg, sizeof(user_arg), " '%s/test/contrib/%s'", dir, userlist);
	snprintf(cmd, sizeof(cmd),
		 "sh '%s/contrib/pgbouncer2pgsluice' '%s/test/contrib/%s'%s 2>'%s'", dir, dir,
		 sample, user_arg, r->err_path);

	FILE *p = popen(cmd, "r");
	ck_assert_msg(p != NULL, "cannot run %s", cmd);
	FILE *out = fdopen(out_fd, "w");
	ck_assert_ptr_nonnull(out);
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
	fclose(out);
	ck_assert_msg(pclose(p) == 0, "%s failed", cmd);
	migrate_slurp(r->err_path, r->err, sizeof(r->err));
	r->errors = NULL;
	r->cfg = config_load(r->out_path, &r->errors);
}

static void migrate_done(struct migrate_run *r)
{
	config_free(r->cfg);
	free(r->errors);
	unlink(r->out_path);
	unlink(r->err_path);
}

/* The output loaded without a single complaint. */
static void migrate_assert_loads(const struct migrate_run *r, const char *sample)
{
	ck_assert_msg(r->cfg != NULL, "the conversion of %s does not load:\n%s", sample,
		      r->errors != NULL ? r->errors : "");
}

/* stderr holds "pgbouncer2pgsluice: line N: KEY: not supported". */
static void migrate_assert_reported(const struct migrate_run *r, int line, const char *key)
{
	char want[256];
	snprintf(want, sizeof(want), "pgbouncer2pgsluice: line %d: %s: not supported: ", line, key);
	ck_assert_msg(strstr(r->err, want) != NULL, "missing \"%s\" in:\n%s", want, r->err);
}

/* Lines of stderr: each dropped setting is reported once. */
static int migrate_count_lines(const char *text)
{
	int n = 0;
	for (; *text != '\0'; text++)
		n += *text == '\n';
	return n;
}

START_TEST(minimal_file_converts_without_warnings)
{
	struct migrate_run r;
	migrate_run(&r, "minimal.ini", NULL);
	migrate_assert_loads(&r, "minimal.ini");
	ck_assert_str_eq(r.err, "");
	ck_assert_str_eq(r.cfg->listen_addr, "127.0.0.1");
	ck_assert_str_eq(r.cfg->auth_file, "/etc/pgbouncer/userlist.txt");
	/* PgBouncer's defaults where pgsluice's differ. */
	ck_assert_int_eq(r.cfg->pool_mode, POOL_SESSION);
	ck_assert_int_eq(r.cfg->max_client_conn, 100);
	const struct db_conf *db = config_find_db(r.cfg, "appdb");
	ck_assert_ptr_nonnull(db);
	ck_assert_str_eq(db->host, "localhost");
	ck_assert_str_eq(db->dbname, "appdb");
	migrate_done(&r);
}
END_TEST

START_TEST(production_file_keeps_pools_timeouts_and_entries)
{
	struct migrate_run r;
	migrate_run(&r, "production.ini", "production-userlist.txt");
	migrate_assert_loads(&r, "production.ini");
	ck_assert_int_eq(r.cfg->pool_mode, POOL_TRANSACTION);
	ck_assert_int_eq(r.cfg->auth_type, AUTH_SCRAM);
	ck_assert_ptr_nonnull(strstr(r.cfg->auth_file, "/test/contrib/production-userlist.txt"));
	ck_assert_int_eq(r.cfg->max_client_conn, 5000);
	ck_assert_int_eq(r.cfg->default_pool_size, 50);
	ck_assert_int_eq(r.cfg->reserve_pool_size, 10);
	ck_assert_int_eq(r.cfg->reserve_pool_timeout, 3000000);
	ck_assert_int_eq(r.cfg->server_lifetime, 1800 * 1000000LL);
	ck_assert_int_eq(r.cfg->query_wait_timeout, 60 * 1000000LL);
	ck_assert(!r.cfg->log_connections);
	ck_assert_str_eq(r.cfg->ignore_startup_parameters, "extra_float_digits");

	/* No host=: PgBouncer connects through its unix_socket_dir. */
	const struct db_conf *shop = config_find_db(r.cfg, "shop");
	ck_assert_ptr_nonnull(shop);
	ck_assert_str_eq(shop->host, "/var/run/postgresql");
	const struct db_conf *billing = config_find_db(r.cfg, "billing");
	ck_assert_ptr_nonnull(billing);
	ck_assert_str_eq(billing->password, "s3cret pass");
	ck_assert_int_eq(billing->reserve_pool_size, 5);
	ck_assert_int_eq(billing->max_db_connections, 60);
	const struct db_conf *reports = config_find_db(r.cfg, "reports");
	ck_assert_ptr_nonnull(reports);
	ck_assert(reports->pool_mode_set && reports->pool_mode == POOL_SESSION);
	const struct user_conf *batch = config_find_user(r.cfg, "batch");
	ck_assert_ptr_nonnull(batch);
	ck_assert_int_eq(batch->max_user_connections, 10);
	ck_assert_ptr_null(config_find_user(r.cfg, "etl"));

	migrate_assert_reported(&r, 7, "reports connect_query");
	migrate_assert_reported(&r, 8, "legacy client_encoding");
	migrate_assert_reported(&r, 12, "etl pool_size");
	migrate_assert_reported(&r, 26, "server_check_query");
	migrate_assert_reported(&r, 44, "log_pooler_errors");
	migrate_assert_reported(&r, 46, "tcp_keepalive");
	ck_assert_ptr_nonnull(strstr(r.err, "production-userlist.txt line 5: not supported: "
					    "text after the secret"));
	/* TLS settings carry over under pgsluice's names, without a warning. */
	ck_assert_ptr_null(strstr(r.err, "tls_sslmode"));
	ck_assert_int_eq(r.cfg->client_tls_mode, TLS_MODE_DISABLE);
	ck_assert_int_eq(r.cfg->server_tls_mode, TLS_MODE_PREFER);
	ck_assert_int_eq(migrate_count_lines(r.err), 8);
	migrate_done(&r);
}
END_TEST

START_TEST(includes_and_unsupported_features_are_reported)
{
	struct migrate_run r;
	migrate_run(&r, "include.ini", NULL);
	migrate_assert_loads(&r, "include.ini");
	ck_assert_int_eq(r.cfg->pool_mode, POOL_STATEMENT);
	ck_assert_int_eq(r.cfg->listen_port, 6543);
	ck_assert_int_eq(r.cfg->verbose, 3);
	ck_assert_int_eq(r.cfg->auth_type, AUTH_MD5);
	ck_assert_ptr_null(r.cfg->unix_socket_dir);
	ck_assert(r.cfg->so_reuseport);
	ck_assert_str_eq(config_find_db(r.cfg, "nohost")->host, "127.0.0.1");
	/* auth_type = hba: the rules decide, carried as hba_file; TLS under pgsluice's names. */
	ck_assert_str_eq(r.cfg->hba_file, "/etc/pgbouncer/pg_hba.conf");
	ck_assert_int_eq(r.cfg->client_tls_mode, TLS_MODE_REQUIRE);
	ck_assert_str_eq(r.cfg->client_tls_key_file, "/etc/ssl/private/pgbouncer.key");

	migrate_assert_reported(&r, 3, "%include");
	migrate_assert_reported(&r, 7, "unix_socket_mode");
	migrate_assert_reported(&r, 8, "user");
	migrate_assert_reported(&r, 13, "verbose");
	migrate_assert_reported(&r, 14, "dns_max_ttl");
	migrate_assert_reported(&r, 19, "no_such_setting");
	migrate_assert_reported(&r, 23, "nohost");
	migrate_assert_reported(&r, 25, "[peers]");
	migrate_done(&r);
}
END_TEST

START_TEST(wildcard_and_auth_query_file_converts)
{
	struct migrate_run r;
	migrate_run(&r, "wildcard.ini", "wildcard-userlist.txt");
	migrate_assert_loads(&r, "wildcard.ini");
	ck_assert_int_eq(r.cfg->default_pool_size, 25);
	const struct db_conf *any = config_find_db(r.cfg, "whatever_db");
	ck_assert_ptr_nonnull(any);
	ck_assert_str_eq(any->name, "*");
	ck_assert_str_eq(any->host, "pg-primary.internal");
	ck_assert_int_eq(any->port, 5433);
	ck_assert_ptr_null(any->dbname);
	ck_assert_str_eq(config_find_db(r.cfg, "analytics")->host, "pg-a.internal");

	migrate_assert_reported(&r, 3, "* auth_user");
	migrate_assert_reported(&r, 4, "analytics host");
	migrate_assert_reported(&r, 4, "analytics load_balance_hosts");
	/* Global auth_query carries over; a database's own auth_user does not. */
	ck_assert_str_eq(r.cfg->auth_user, "pgbouncer");
	ck_assert_str_eq(r.cfg->auth_query, "SELECT usename, passwd FROM pgbouncer.get_auth($1)");
	migrate_assert_reported(&r, 15, "autodb_idle_timeout");
	migrate_done(&r);
}
END_TEST

Suite *migrate_suite(void)
{
	Suite *s = suite_create("migrate");
	TCase *tc = tcase_create("pgbouncer2pgsluice");
	tcase_add_test(tc, minimal_file_converts_without_warnings);
	tcase_add_test(tc, production_file_keeps_pools_timeouts_and_entries);
	tcase_add_test(tc, includes_and_unsupported_features_are_reported);
	tcase_add_test(tc, wildcard_and_auth_query_file_converts);
	suite_add_tcase(s, tc);
	return s;
}
