/*
 * test_config.c - config.c: defaults, every value type, every error message
 * with its FILE:LINE, [databases] connection strings and replicas, [users],
 * durations and sizes, SHOW CONFIG formatting, and etc/pgsluice.ini kept in
 * step with config_keys[].
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "suites.h"

#define SEC INT64_C(1000000)

static char tmp_path[64];

/* Writes text to a fresh file in /tmp; its name goes to tmp_path. */
static void write_tmp(const char *text)
{
	snprintf(tmp_path, sizeof(tmp_path), "/tmp/pgsluice-config-XXXXXX");
	int fd = mkstemp(tmp_path);
	ck_assert_int_ge(fd, 0);
	size_t len = strlen(text);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* Loads text as a configuration file; *errors gets the messages (or NULL). */
static struct config *load(const char *text, char **errors)
{
	write_tmp(text);
	struct config *cfg = config_load(tmp_path, errors);
	unlink(tmp_path);
	return cfg;
}

/* Loads text, which must succeed. */
static struct config *load_ok(const char *text)
{
	char *errors = NULL;
	struct config *cfg = load(text, &errors);
	ck_assert_msg(cfg != NULL, "unexpected errors: %s", errors != NULL ? errors : "(none)");
	ck_assert_ptr_null(errors);
	return cfg;
}

/*
 * Loads text, which must fail with exactly the lines in expected, where
 * each "FILE" stands for the file's name.
 */
static void expect_errors(const char *text, const char *expected)
{
	char *errors = NULL, want[4096];
	size_t n = 0;

	ck_assert_ptr_null(load(text, &errors));
	ck_assert_ptr_nonnull(errors);
	for (const char *p = expected; *p != '\0' && n + 64 < sizeof(want); p++) {
		if (strncmp(p, "FILE", 4) == 0) {
			n += (size_t)snprintf(want + n, sizeof(want) - n, "%s", tmp_path);
			p += 3;
		} else {
			want[n++] = *p;
		}
	}
	want[n] = '\0';
	ck_assert_str_eq(errors, want);
	free(errors);
}

#define TRUST "[pgsluice]\nauth_type = trust\n" /* lines 1-2 of most files */

static const struct cfg_key *key_named(const char *name)
{
	for (const struct cfg_key *k = config_keys; k->name != NULL; k++) {
		if (strcmp(k->name, name) == 0)
			return k;
	}
	ck_abort_msg("no key %s", name);
	return NULL;
}

static const char *fmt(const struct config *cfg, const char *name)
{
	static char buf[256];
	return config_format_value(cfg, key_named(name), buf, sizeof(buf));
}

START_TEST(defaults_apply_when_the_file_sets_nothing)
{
	struct config *cfg = load_ok("[pgsluice]\nauth_file = /etc/users.txt\n");
	ck_assert_str_eq(cfg->listen_addr, "127.0.0.1");
	ck_assert_int_eq(cfg->listen_port, 6432);
	ck_assert_str_eq(cfg->unix_socket_dir, "/tmp");
	ck_assert_int_eq(cfg->listen_backlog, 128);
	ck_assert_ptr_null(cfg->logfile);
	ck_assert_ptr_null(cfg->pidfile);
	ck_assert(!cfg->syslog);
	ck_assert_int_eq(cfg->verbose, 0);
	ck_assert(cfg->log_connections);
	ck_assert(cfg->log_disconnections);
	ck_assert_int_eq(cfg->pool_mode, POOL_TRANSACTION);
	ck_assert_int_eq(cfg->auth_type, AUTH_MD5);
	ck_assert_str_eq(cfg->auth_file, "/etc/users.txt");
	ck_assert_ptr_null(cfg->admin_users);
	ck_assert_ptr_null(cfg->stats_users);
	ck_assert_int_eq(cfg->max_client_conn, 1000);
	ck_assert_int_eq(cfg->default_pool_size, 20);
	ck_assert_int_eq(cfg->min_pool_size, 0);
	ck_assert_int_eq(cfg->reserve_pool_size, 0);
	ck_assert_int_eq(cfg->max_db_connections, 0);
	ck_assert_int_eq(cfg->max_user_connections, 0);
	ck_assert_int_eq(cfg->reserve_pool_timeout, 5 * SEC);
	ck_assert_int_eq(cfg->server_connect_timeout, 15 * SEC);
	ck_assert_int_eq(cfg->server_login_retry, 15 * SEC);
	ck_assert_int_eq(cfg->server_idle_timeout, 600 * SEC);
	ck_assert_int_eq(cfg->server_lifetime, 3600 * SEC);
	ck_assert_int_eq(cfg->query_wait_timeout, 120 * SEC);
	ck_assert_int_eq(cfg->query_timeout, 0);
	ck_assert_int_eq(cfg->client_login_timeout, 60 * SEC);
	ck_assert_int_eq(cfg->client_idle_timeout, 0);
	ck_assert_int_eq(cfg->idle_transaction_timeout, 0);
	ck_assert_int_eq(cfg->shutdown_timeout, 30 * SEC);
	ck_assert_str_eq(cfg->server_reset_query, "DISCARD ALL");
	ck_assert(!cfg->server_reset_query_always);
	ck_assert_ptr_null(cfg->ignore_startup_parameters);
	ck_assert_int_eq(cfg->max_packet_size, INT64_C(1) << 30);
	ck_assert_int_eq(cfg->pkt_buf, 16384);
	ck_assert_int_eq(cfg->max_startup_packet, 10000);
	ck_assert_uint_eq(cfg->n_dbs, 0);
	ck_assert_uint_eq(cfg->n_users, 0);
	ck_assert_str_eq(cfg->path, tmp_path);
	config_free(cfg);
}
END_TEST

START_TEST(not_reloadable_keys_are_exactly_the_listed_ones)
{
	static const char *const fixed[] = {
		"listen_addr", "listen_port", "unix_socket_dir", "listen_backlog",
		"so_reuseport", "pidfile", "pkt_buf", "max_startup_packet", "metrics_listen"};
	size_t n_fixed = 0;
	for (const struct cfg_key *k = config_keys; k->name != NULL; k++) {
		bool listed = false;
		for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
			listed |= strcmp(fixed[i], k->name) == 0;
		ck_assert_msg(k->reloadable == !listed, "%s: reloadable is wrong", k->name);
		n_fixed += listed;
		ck_assert_msg(k->doc != NULL && *k->doc != '\0', "%s has no doc", k->name);
	}
	ck_assert_uint_eq(n_fixed, sizeof(fixed) / sizeof(fixed[0]));
}
END_TEST

START_TEST(every_default_formats_back_to_its_text)
{
	struct config *cfg = load_ok(TRUST);
	char buf[256];
	for (const struct cfg_key *k = config_keys; k->name != NULL; k++) {
		const char *want = strcmp(k->name, "auth_type") == 0 ? "trust" : k->default_value;
		ck_assert_msg(strcmp(config_format_value(cfg, k, buf, sizeof(buf)), want) == 0,
			      "%s: formatted \"%s\", default \"%s\"", k->name, buf, want);
	}
	config_free(cfg);
}
END_TEST

START_TEST(values_of_every_type_are_parsed)
{
	struct config *cfg = load_ok(TRUST "listen_port = 7000\n"
					   "syslog = yes\n"
					   "log_connections = OFF\n"
					   "pool_mode = Session\n"
					   "server_lifetime = 250ms\n"
					   "query_timeout = 1.5s\n"
					   "max_packet_size = 2MB\n"
					   "pkt_buf = 8kB\n"
					   "max_startup_packet = 2048\n"
					   "logfile = /var/log/pgsluice.log\n"
					   "server_reset_query =\n"
					   "admin_users = root, admin\n");
	ck_assert_int_eq(cfg->listen_port, 7000);
	ck_assert(cfg->syslog);
	ck_assert(!cfg->log_connections);
	ck_assert_int_eq(cfg->pool_mode, POOL_SESSION);
	ck_assert_int_eq(cfg->server_lifetime, 250000);
	ck_assert_int_eq(cfg->query_timeout, 1500000);
	ck_assert_int_eq(cfg->max_packet_size, 2 * 1024 * 1024);
	ck_assert_int_eq(cfg->pkt_buf, 8192);
	ck_assert_int_eq(cfg->max_startup_packet, 2048);
	ck_assert_str_eq(cfg->logfile, "/var/log/pgsluice.log");
	ck_assert_ptr_null(cfg->server_reset_query);
	ck_assert_str_eq(cfg->admin_users, "root, admin");
	config_free(cfg);
}
END_TEST

START_TEST(boolean_words_are_all_understood)
{
	static const char *const words[] = {"on", "off", "true", "false", "yes", "no", "1", "0"};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), TRUST "server_reset_query_always = %s\n", words[i]);
		struct config *cfg = load_ok(text);
		ck_assert_msg(cfg->server_reset_query_always == (i % 2 == 0), "%s", words[i]);
		config_free(cfg);
	}
}
END_TEST

START_TEST(keys_and_sections_ignore_case_and_indentation)
{
	struct config *cfg = load_ok("[PgSluice]\n  auth_type = trust\n\tLISTEN_PORT = 7001\n");
	ck_assert_int_eq(cfg->listen_port, 7001);
	ck_assert_int_eq(cfg->auth_type, AUTH_TRUST);
	config_free(cfg);
}
END_TEST

START_TEST(comments_and_inline_comments_are_ignored)
{
	struct config *cfg = load_ok("; leading comment\n# hash comment\n" TRUST
				     "listen_port = 7002 ; the port\n\n   ; indented comment\n");
	ck_assert_int_eq(cfg->listen_port, 7002);
	config_free(cfg);
}
END_TEST

START_TEST(unknown_key_is_reported_with_file_and_line)
{
	expect_errors(TRUST "listen_prt = 6432\n", "FILE:3: listen_prt: unknown key\n");
}
END_TEST

START_TEST(unknown_section_is_reported_once_and_its_keys_ignored)
{
	expect_errors(TRUST "[pgbouncer]\nlisten_port = 1\nlogfile = x\n",
		      "FILE:3: [pgbouncer]: unknown section (expected [pgsluice], [databases] or "
		      "[users])\n");
}
END_TEST

START_TEST(key_before_any_section_is_refused)
{
	expect_errors("listen_port = 1\n" TRUST,
		      "FILE:1: listen_port: key outside of any section\n");
}
END_TEST

START_TEST(bad_integer_is_refused)
{
	expect_errors(TRUST "default_pool_size = abc\n",
		      "FILE:3: default_pool_size: \"abc\" is not an integer\n");
	expect_errors(TRUST "default_pool_size = 12x\n",
		      "FILE:3: default_pool_size: \"12x\" is not an integer\n");
	expect_errors(TRUST "default_pool_size = 99999999999999999999\n",
		      "FILE:3: default_pool_size: \"99999999999999999999\" is not an integer\n");
}
END_TEST

START_TEST(integer_out_of_range_is_refused)
{
	expect_errors(TRUST "listen_port = 99999\n",
		      "FILE:3: listen_port: \"99999\" is out of range 1..65535\n");
	expect_errors(TRUST "verbose = -1\n", "FILE:3: verbose: \"-1\" is out of range 0..3\n");
}
END_TEST

START_TEST(bad_boolean_is_refused)
{
	expect_errors(
		TRUST "syslog = maybe\n",
		"FILE:3: syslog: \"maybe\" is not a boolean (on/off, true/false, yes/no, 1/0)\n");
}
END_TEST

START_TEST(bad_enum_lists_the_allowed_values)
{
	expect_errors(
		TRUST "pool_mode = sometimes\n",
		"FILE:3: pool_mode: \"sometimes\" is not one of session, transaction, statement\n");
	expect_errors("[pgsluice]\nauth_type = password\n",
		      "FILE:2: auth_type: \"password\" is not one of trust, md5, scram-sha-256\n");
}
END_TEST

START_TEST(bad_duration_is_refused)
{
	expect_errors(TRUST "server_lifetime = 5 parsecs\n",
		      "FILE:3: server_lifetime: \"5 parsecs\" is not a duration "
		      "(a number and us, ms, s, min, h or d)\n");
	expect_errors(TRUST "query_timeout = -1\n",
		      "FILE:3: query_timeout: \"-1\" is not a duration "
		      "(a number and us, ms, s, min, h or d)\n");
	expect_errors(TRUST "query_timeout = 99999999999999999999d\n",
		      "FILE:3: query_timeout: \"99999999999999999999d\" is too large\n");
	expect_errors(TRUST "query_timeout = 400d\n",
		      "FILE:3: query_timeout: \"400d\" is out of range 0..365d\n");
	expect_errors(TRUST "query_timeout = 0.5us\n",
		      "FILE:3: query_timeout: \"0.5us\" is finer than one microsecond\n");
}
END_TEST

START_TEST(bad_size_is_refused)
{
	expect_errors(TRUST "pkt_buf = lots\n", "FILE:3: pkt_buf: \"lots\" is not a size (a number "
						"of bytes, or a number and kB, MB or GB)\n");
	expect_errors(TRUST "pkt_buf = 1kB\n",
		      "FILE:3: pkt_buf: \"1kB\" is out of range 4kB..1MB\n");
	expect_errors(TRUST "max_packet_size = 3GB\n",
		      "FILE:3: max_packet_size: \"3GB\" is out of range 16kB..2GB\n");
	expect_errors(TRUST "max_startup_packet = 100\n",
		      "FILE:3: max_startup_packet: \"100\" is out of range 1kB..1MB\n");
}
END_TEST

START_TEST(empty_value_of_a_number_is_refused)
{
	expect_errors(TRUST "listen_port =\n", "FILE:3: listen_port: value is empty\n");
}
END_TEST

START_TEST(duplicate_key_names_the_first_line)
{
	expect_errors(TRUST "listen_port = 1\n\nlisten_port = 2\n",
		      "FILE:5: listen_port: duplicate key (first set on line 3)\n");
}
END_TEST

START_TEST(malformed_lines_are_refused)
{
	expect_errors(TRUST "just some words\n", "FILE:3: expected key = value\n");
	expect_errors(TRUST "= 5\n", "FILE:3: missing key name before '='\n");
	expect_errors("[pgsluice\n" TRUST, "FILE:1: [pgsluice: section header has no closing ]\n");
	expect_errors("[pgsluice] extra\n" TRUST,
		      "FILE:1: [pgsluice]: unexpected text after the section header\n");
}
END_TEST

START_TEST(overlong_line_is_refused)
{
	char text[1024];
	int n = snprintf(text, sizeof(text), TRUST "server_reset_query = ");
	memset(text + n, 'x', 300);
	snprintf(text + n + 300, sizeof(text) - (size_t)n - 300, "\nlisten_port = 7003\n");
	expect_errors(text, "FILE:3: line is longer than 198 characters\n");
}
END_TEST

START_TEST(all_errors_are_collected_in_file_order)
{
	expect_errors(
		TRUST "listen_port = x\n"
		      "bogus = 1\n"
		      "[databases]\n"
		      "app = port=0\n"
		      "[users]\n"
		      "bob = pool_mode=never\n",
		"FILE:3: listen_port: \"x\" is not an integer\n"
		"FILE:4: bogus: unknown key\n"
		"FILE:6: [databases] app: port: \"0\" is out of range 1..65535\n"
		"FILE:8: [users] bob: pool_mode: \"never\" is not one of session, transaction, "
		"statement\n");
}
END_TEST

START_TEST(error_flood_is_cut_short_with_a_count)
{
	char *text = malloc(200 * 16 + 64), *errors = NULL;
	size_t n = (size_t)sprintf(text, TRUST);
	for (int i = 0; i < 150; i++)
		n += (size_t)sprintf(text + n, "bad%d = 1\n", i);
	ck_assert_ptr_null(load(text, &errors));
	int lines = 0;
	for (const char *p = errors; *p != '\0'; p++)
		lines += *p == '\n';
	ck_assert_int_eq(lines, 101);
	char last[128];
	snprintf(last, sizeof(last), "%s: 50 more problems not shown\n", tmp_path);
	ck_assert_str_eq(errors + strlen(errors) - strlen(last), last);
	free(errors);
	free(text);
}
END_TEST

START_TEST(missing_file_is_reported)
{
	char *errors = NULL;
	ck_assert_ptr_null(config_load("/nonexistent/pgsluice.ini", &errors));
	ck_assert_str_eq(errors,
			 "/nonexistent/pgsluice.ini: cannot open: No such file or directory\n");
	free(errors);
	ck_assert_ptr_null(config_load("/nonexistent/pgsluice.ini", NULL));
}
END_TEST

START_TEST(min_pool_size_above_default_pool_size_is_refused)
{
	expect_errors(TRUST "min_pool_size = 30\ndefault_pool_size = 10\n",
		      "FILE:4: min_pool_size: 30 is larger than default_pool_size (10)\n");
}
END_TEST

START_TEST(password_auth_without_auth_file_is_refused)
{
	expect_errors("[pgsluice]\nauth_type = scram-sha-256\nlisten_port = 7004\n",
		      "FILE:2: auth_file: required when auth_type is scram-sha-256 (or set "
		      "auth_type = trust)\n");
	/* md5 is the default: no line says it, so the end of the file is blamed */
	expect_errors(
		"[pgsluice]\nlisten_port = 7004\n",
		"FILE:2: auth_file: required when auth_type is md5 (or set auth_type = trust)\n");
}
END_TEST

START_TEST(nothing_to_listen_on_is_refused)
{
	expect_errors(TRUST "listen_addr =\nunix_socket_dir =\n",
		      "FILE:4: listen_addr: nothing to listen on: listen_addr and unix_socket_dir "
		      "are both "
		      "empty\n");
	struct config *cfg = load_ok(TRUST "listen_addr =\n");
	ck_assert_ptr_null(cfg->listen_addr);
	ck_assert_str_eq(cfg->unix_socket_dir, "/tmp");
	config_free(cfg);
}
END_TEST

START_TEST(database_entry_takes_every_key)
{
	struct config *cfg = load_ok(
		TRUST
		"[databases]\n"
		"app = host=db1 port=5433 dbname=appdb user=u password=p pool_size=30 "
		"min_pool_size=2 reserve_pool_size=3 max_db_connections=40 pool_mode=statement "
		"replicas=r1:5434,r2@3,[::1]:5435@100\n");
	ck_assert_uint_eq(cfg->n_dbs, 1);
	const struct db_conf *db = &cfg->dbs[0];
	ck_assert_str_eq(db->name, "app");
	ck_assert_str_eq(db->host, "db1");
	ck_assert_int_eq(db->port, 5433);
	ck_assert_str_eq(db->dbname, "appdb");
	ck_assert_str_eq(db->user, "u");
	ck_assert_str_eq(db->password, "p");
	ck_assert_int_eq(db->pool_size, 30);
	ck_assert_int_eq(db->min_pool_size, 2);
	ck_assert_int_eq(db->reserve_pool_size, 3);
	ck_assert_int_eq(db->max_db_connections, 40);
	ck_assert(db->pool_mode_set);
	ck_assert_int_eq(db->pool_mode, POOL_STATEMENT);
	ck_assert_int_eq(db->line, 4);
	ck_assert_uint_eq(db->n_replicas, 3);
	ck_assert_str_eq(db->replicas[0].host, "r1");
	ck_assert_int_eq(db->replicas[0].port, 5434);
	ck_assert_int_eq(db->replicas[0].weight, 1);
	ck_assert_int_eq(db->replicas[0].pool_size, -1);
	ck_assert_str_eq(db->replicas[1].host, "r2");
	ck_assert_int_eq(db->replicas[1].port, 5433); /* the primary's */
	ck_assert_int_eq(db->replicas[1].weight, 3);
	ck_assert_str_eq(db->replicas[2].host, "::1");
	ck_assert_int_eq(db->replicas[2].port, 5435);
	ck_assert_int_eq(db->replicas[2].weight, 100);
	config_free(cfg);
}
END_TEST

START_TEST(database_entry_defaults)
{
	struct config *cfg = load_ok(TRUST "[databases]\napp =\n");
	const struct db_conf *db = config_find_db(cfg, "app");
	ck_assert_ptr_nonnull(db);
	ck_assert_str_eq(db->host, "127.0.0.1");
	ck_assert_int_eq(db->port, 5432);
	ck_assert_str_eq(db->dbname, "app");
	ck_assert_ptr_null(db->user);
	ck_assert_ptr_null(db->password);
	ck_assert_int_eq(db->pool_size, -1);
	ck_assert_int_eq(db->min_pool_size, -1);
	ck_assert_int_eq(db->reserve_pool_size, -1);
	ck_assert_int_eq(db->max_db_connections, -1);
	ck_assert(!db->pool_mode_set);
	ck_assert_uint_eq(db->n_replicas, 0);
	ck_assert_ptr_null(db->replicas);
	config_free(cfg);
}
END_TEST

START_TEST(quoted_values_keep_blanks_and_escapes)
{
	struct config *cfg = load_ok(TRUST "[databases]\n"
					   "app = password='it\\'s a \\\\ secret' user = 'x y'\n");
	ck_assert_uint_eq(cfg->n_dbs, 1);
	const struct db_conf *db = &cfg->dbs[0];
	ck_assert_str_eq(db->password, "it's a \\ secret");
	ck_assert_str_eq(db->user, "x y");
	config_free(cfg);
}
END_TEST

START_TEST(bad_connection_strings_are_refused)
{
	expect_errors(TRUST "[databases]\napp = host='db1 port=5432\n",
		      "FILE:4: [databases] app: host: unterminated quoted value\n");
	expect_errors(TRUST "[databases]\napp = hots=db1\n",
		      "FILE:4: [databases] app: hots: unknown key\n");
	expect_errors(TRUST "[databases]\napp = port=99999\n",
		      "FILE:4: [databases] app: port: \"99999\" is out of range 1..65535\n");
	expect_errors(TRUST "[databases]\napp = host=a host=b\n",
		      "FILE:4: [databases] app: host: given twice\n");
	expect_errors(TRUST "[databases]\napp = host=\n",
		      "FILE:4: [databases] app: host: value is empty\n");
	expect_errors(TRUST "[databases]\napp = password=two words\n",
		      "FILE:4: [databases] app: expected key=value after the value of password\n");
	expect_errors(TRUST "[databases]\napp = 'x'\n",
		      "FILE:4: [databases] app: expected key=value at the start\n");
	expect_errors(TRUST "[databases]\napp = host='a'b\n",
		      "FILE:4: [databases] app: host: unexpected text after the closing quote\n");
	expect_errors(TRUST "[databases]\napp = pool_mode=sometimes\n",
		      "FILE:4: [databases] app: pool_mode: \"sometimes\" is not one of session, "
		      "transaction, "
		      "statement\n");
}
END_TEST

START_TEST(bad_replicas_are_refused)
{
	expect_errors(TRUST "[databases]\napp = replicas=r1:abc\n",
		      "FILE:4: [databases] app: replicas: \"r1:abc\": port must be 1..65535\n");
	expect_errors(TRUST "[databases]\napp = replicas=r1:5433@0\n",
		      "FILE:4: [databases] app: replicas: \"r1:5433@0\": weight must be 1..100\n");
	expect_errors(
		TRUST "[databases]\napp = replicas=r1:5433@101\n",
		"FILE:4: [databases] app: replicas: \"r1:5433@101\": weight must be 1..100\n");
	expect_errors(TRUST "[databases]\napp = replicas=:5433\n",
		      "FILE:4: [databases] app: replicas: \":5433\" is not host[:port][@weight]\n");
	expect_errors(TRUST "[databases]\napp = replicas=[::1\n",
		      "FILE:4: [databases] app: replicas: \"[::1\" is not host[:port][@weight]\n");
	expect_errors(TRUST "[databases]\napp = replicas=r1,,r2\n",
		      "FILE:4: [databases] app: replicas: empty item in the list\n");
	expect_errors(TRUST "[databases]\napp = replicas=\n",
		      "FILE:4: [databases] app: replicas: value is empty\n");
}
END_TEST

START_TEST(duplicate_database_names_the_first_line)
{
	expect_errors(TRUST "[databases]\napp = port=5432\nother =\napp = port=5433\n",
		      "FILE:6: [databases] app: duplicate database (first declared on line 4)\n");
}
END_TEST

START_TEST(database_min_pool_size_above_its_pool_size_is_refused)
{
	expect_errors(
		TRUST "min_pool_size = 10\n[databases]\napp = pool_size=5\n",
		"FILE:5: [databases] app: min_pool_size: 10 is larger than the pool size (5)\n");
}
END_TEST

START_TEST(wildcard_serves_unlisted_databases)
{
	struct config *cfg = load_ok(TRUST "[databases]\napp = host=h1\n* = host=h2\n");
	const struct db_conf *db = config_find_db(cfg, "app");
	ck_assert_str_eq(db->host, "h1");
	db = config_find_db(cfg, "anything");
	ck_assert_ptr_nonnull(db);
	ck_assert_str_eq(db->name, "*");
	ck_assert_str_eq(db->host, "h2");
	ck_assert_ptr_null(db->dbname); /* the caller uses the client's database name */
	config_free(cfg);

	cfg = load_ok(TRUST "[databases]\n* = dbname=fixed\n");
	ck_assert_str_eq(config_find_db(cfg, "x")->dbname, "fixed");
	config_free(cfg);

	cfg = load_ok(TRUST "[databases]\napp =\n");
	ck_assert_ptr_null(config_find_db(cfg, "other"));
	config_free(cfg);
}
END_TEST

START_TEST(batch_inserts_is_set_globally_per_database_and_per_user)
{
	struct config *cfg = load_ok(TRUST "batch_inserts = on\nbatch_max_rows = 64\n"
					   "batch_max_delay = 5ms\n"
					   "[databases]\na = host=h batch_inserts=off\nb = host=h\n"
					   "[users]\nbob = batch_inserts=on\neve =\n");
	ck_assert(cfg->batch_inserts);
	ck_assert_int_eq(cfg->batch_max_rows, 64);
	ck_assert_int_eq(cfg->batch_max_delay, 5000);
	const struct db_conf *a = config_find_db(cfg, "a"), *b = config_find_db(cfg, "b");
	ck_assert(a->batch_inserts_set && !a->batch_inserts);
	ck_assert(!b->batch_inserts_set);
	ck_assert(config_find_user(cfg, "bob")->batch_inserts_set);
	ck_assert(config_find_user(cfg, "bob")->batch_inserts);
	ck_assert(!config_find_user(cfg, "eve")->batch_inserts_set);
	config_free(cfg);

	cfg = load_ok(TRUST);
	ck_assert(!cfg->batch_inserts);
	ck_assert_int_eq(cfg->batch_max_rows, 500);
	ck_assert_int_eq(cfg->batch_max_delay, 2000);
	config_free(cfg);

	char *errors = NULL;
	ck_assert_ptr_null(load(TRUST "batch_max_rows = 0\n", &errors));
	ck_assert_ptr_nonnull(errors);
	free(errors);
	errors = NULL;
	ck_assert_ptr_null(load(TRUST "batch_max_rows = 10001\n", &errors));
	free(errors);
}
END_TEST

START_TEST(users_section_sets_pool_mode_and_limits)
{
	struct config *cfg =
		load_ok(TRUST "[users]\nbob = pool_mode=session max_user_connections=10\n"
			      "eve = max_user_connections=0\n");
	ck_assert_uint_eq(cfg->n_users, 2);
	const struct user_conf *u = config_find_user(cfg, "bob");
	ck_assert(u->pool_mode_set);
	ck_assert_int_eq(u->pool_mode, POOL_SESSION);
	ck_assert_int_eq(u->max_user_connections, 10);
	ck_assert_int_eq(u->line, 4);
	u = config_find_user(cfg, "eve");
	ck_assert(!u->pool_mode_set);
	ck_assert_int_eq(u->max_user_connections, 0);
	ck_assert_ptr_null(config_find_user(cfg, "mallory"));
	config_free(cfg);

	cfg = load_ok(TRUST "[users]\ncarol =\n");
	ck_assert_int_eq(config_find_user(cfg, "carol")->max_user_connections, -1);
	config_free(cfg);

	expect_errors(
		TRUST "[users]\nbob = max_user_connections=-5\n",
		"FILE:4: [users] bob: max_user_connections: \"-5\" is out of range 0..1000000\n");
	expect_errors(TRUST "[users]\nbob = host=x\n", "FILE:4: [users] bob: host: unknown key\n");
	expect_errors(TRUST "[users]\nbob =\nbob =\n",
		      "FILE:5: [users] bob: duplicate user (first declared on line 4)\n");
}
END_TEST

START_TEST(pool_mode_prefers_user_then_database_then_global)
{
	struct config *cfg = load_ok(
		TRUST "pool_mode = statement\n"
		      "[databases]\nsess = pool_mode=session\nplain =\n"
		      "[users]\ntx = pool_mode=transaction\nnobody = max_user_connections=1\n");
	const struct db_conf *sess = config_find_db(cfg, "sess"),
			     *plain = config_find_db(cfg, "plain");
	ck_assert_int_eq(config_db_pool_mode(cfg, sess, "tx"), POOL_TRANSACTION);
	ck_assert_int_eq(config_db_pool_mode(cfg, sess, "nobody"), POOL_SESSION);
	ck_assert_int_eq(config_db_pool_mode(cfg, sess, "stranger"), POOL_SESSION);
	ck_assert_int_eq(config_db_pool_mode(cfg, plain, "stranger"), POOL_STATEMENT);
	ck_assert_int_eq(config_db_pool_mode(cfg, plain, "tx"), POOL_TRANSACTION);
	config_free(cfg);
}
END_TEST

START_TEST(pool_size_falls_back_to_the_global)
{
	struct config *cfg =
		load_ok(TRUST "default_pool_size = 7\n[databases]\nbig = pool_size=50\nsmall =\n");
	ck_assert_int_eq(config_db_pool_size(cfg, config_find_db(cfg, "big")), 50);
	ck_assert_int_eq(config_db_pool_size(cfg, config_find_db(cfg, "small")), 7);
	config_free(cfg);
}
END_TEST

START_TEST(durations_parse_to_microseconds)
{
	static const struct {
		const char *text;
		int64_t usec;
	} good[] = {
		{"250ms", 250000},
		{"5s", 5 * SEC},
		{"10min", 600 * SEC},
		{"1.5s", 1500000},
		{"30", 30 * SEC},
		{"0", 0},
		{"100us", 100},
		{"2h", 7200 * SEC},
		{"1d", 86400 * SEC},
		{"5 s", 5 * SEC},
		{"0.25", 250000},
		{"1.000000000000000000000s", SEC},
		{"9223372036854775807us", INT64_MAX},
	};
	static const char *const bad[] = {
		"-1",
		"5 parsecs",
		"",
		"s",
		"1.5us",
		".5s",
		"5.",
		"5sec",
		"1e3s",
		" 5s",
		"+5s",
		"9223372036854775808us",
		"9223372036854775807s",
		"106751992d",
		"1.0000000000000000001s",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int64_t v = -1;
		ck_assert_msg(config_parse_duration(good[i].text, &v), "%s refused", good[i].text);
		ck_assert_msg(v == good[i].usec, "%s gave %" PRId64, good[i].text, v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t v = -7;
		ck_assert_msg(!config_parse_duration(bad[i], &v), "%s accepted", bad[i]);
		ck_assert_int_eq(v, -7);
	}
}
END_TEST

START_TEST(sizes_parse_to_bytes)
{
	static const struct {
		const char *text;
		int64_t bytes;
	} good[] = {
		{"8192", 8192},	  {"16kB", 16384},
		{"16kb", 16384},  {"16KB", 16384},
		{"1MB", 1048576}, {"1GB", INT64_C(1073741824)},
		{"1.5kB", 1536},  {"2 MB", 2097152},
		{"0", 0},	  {"9223372036854775807", INT64_MAX},
	};
	static const char *const bad[] = {"-1", "1.5", "8EB",	       "",
					  "kB", "1TB", "8589934592GB", "12 bytes"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int64_t v = -1;
		ck_assert_msg(config_parse_size(good[i].text, &v), "%s refused", good[i].text);
		ck_assert_msg(v == good[i].bytes, "%s gave %" PRId64, good[i].text, v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t v = -7;
		ck_assert_msg(!config_parse_size(bad[i], &v), "%s accepted", bad[i]);
		ck_assert_int_eq(v, -7);
	}
}
END_TEST

START_TEST(format_uses_the_largest_exact_unit)
{
	struct config *cfg = load_ok(
		TRUST "server_lifetime = 250ms\nquery_timeout = 90s\n"
		      "client_idle_timeout = 1.5s\nshutdown_timeout = 120\n"
		      "server_idle_timeout = 48h\nmax_packet_size = 1536kB\n"
		      "pkt_buf = 5000\nmax_startup_packet = 1MB\nserver_login_retry = 7us\n");
	ck_assert_str_eq(fmt(cfg, "server_lifetime"), "250ms");
	ck_assert_str_eq(fmt(cfg, "query_timeout"), "90s");
	ck_assert_str_eq(fmt(cfg, "client_idle_timeout"), "1500ms");
	ck_assert_str_eq(fmt(cfg, "shutdown_timeout"), "2min");
	ck_assert_str_eq(fmt(cfg, "server_idle_timeout"), "2d");
	ck_assert_str_eq(fmt(cfg, "max_packet_size"), "1536kB");
	ck_assert_str_eq(fmt(cfg, "pkt_buf"), "5000");
	ck_assert_str_eq(fmt(cfg, "max_startup_packet"), "1MB");
	ck_assert_str_eq(fmt(cfg, "server_login_retry"), "7us");
	ck_assert_str_eq(fmt(cfg, "pool_mode"), "transaction");
	ck_assert_str_eq(fmt(cfg, "syslog"), "off");
	ck_assert_str_eq(fmt(cfg, "logfile"), "");
	char small[4];
	ck_assert_str_eq(
		config_format_value(cfg, key_named("server_reset_query"), small, sizeof(small)),
		"DIS");
	config_free(cfg);
}
END_TEST

/* Raw value of key in cfg, for comparing two snapshots. */
static int64_t raw_value(const struct config *cfg, const struct cfg_key *k)
{
	const char *field = (const char *)cfg + k->offset;
	switch (k->type) {
	case CFG_BOOL:
		return *(const bool *)field;
	case CFG_DURATION:
	case CFG_SIZE:
		return *(const int64_t *)field;
	case CFG_STRING:
		return 0;
	default:
		return *(const int *)field;
	}
}

/* Formats every key of cfg into a file, loads it and expects the same values. */
static void check_round_trip(const struct config *cfg)
{
	char text[8192], buf[256];
	size_t n = (size_t)snprintf(text, sizeof(text), "[pgsluice]\n");
	for (const struct cfg_key *k = config_keys; k->name != NULL; k++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s = %s\n", k->name,
				      config_format_value(cfg, k, buf, sizeof(buf)));
	ck_assert_uint_lt(n, sizeof(text));
	struct config *again = load_ok(text);
	for (const struct cfg_key *k = config_keys; k->name != NULL; k++) {
		char first[256];
		config_format_value(cfg, k, first, sizeof(first));
		ck_assert_msg(strcmp(first, config_format_value(again, k, buf, sizeof(buf))) == 0,
			      "%s: \"%s\" became \"%s\"", k->name, first, buf);
		ck_assert_msg(raw_value(cfg, k) == raw_value(again, k), "%s changed", k->name);
	}
	config_free(again);
}

START_TEST(every_key_survives_format_then_parse)
{
	struct config *cfg = load_ok(TRUST);
	check_round_trip(cfg);
	config_free(cfg);
	cfg = load_ok(
		"[pgsluice]\nlisten_addr = *\nlisten_port = 1\nunix_socket_dir =\n"
		"listen_backlog = 65535\nlogfile = /l\npidfile = /p\nsyslog = on\nverbose = 3\n"
		"log_connections = no\nlog_disconnections = no\npool_mode = statement\n"
		"auth_type = scram-sha-256\nauth_file = /u\nadmin_users = a,b\nstats_users = s\n"
		"max_client_conn = 1\ndefault_pool_size = 10000\nmin_pool_size = 10000\n"
		"reserve_pool_size = 1\nmax_db_connections = 1000000\n"
		"max_user_connections = 3\nreserve_pool_timeout = 1us\n"
		"server_connect_timeout = 1.001s\nserver_login_retry = 365d\n"
		"server_idle_timeout = 61s\nserver_lifetime = 25h\nquery_wait_timeout = 0.5\n"
		"query_timeout = 123456789us\nclient_login_timeout = 2d\n"
		"client_idle_timeout = 90min\nidle_transaction_timeout = 3ms\n"
		"shutdown_timeout = 0\nserver_reset_query = RESET ALL\n"
		"server_reset_query_always = yes\nignore_startup_parameters = extra_float_digits\n"
		"max_packet_size = 16385\npkt_buf = 1MB\nmax_startup_packet = 1025\n");
	check_round_trip(cfg);
	config_free(cfg);
}
END_TEST

START_TEST(list_contains_matches_whole_trimmed_items)
{
	ck_assert(config_list_contains("alice, bob ,carol", "bob"));
	ck_assert(config_list_contains("alice, bob ,carol", "alice"));
	ck_assert(config_list_contains("alice, bob ,carol", "carol"));
	ck_assert(config_list_contains("solo", "solo"));
	ck_assert(!config_list_contains("alice, bob", "bo"));
	ck_assert(!config_list_contains("alice, bob", "bobby"));
	ck_assert(!config_list_contains("alice, bob", "Bob"));
	ck_assert(!config_list_contains("*", "anyone"));
	ck_assert(!config_list_contains("alice,,bob", ""));
	ck_assert(!config_list_contains("", "alice"));
	ck_assert(!config_list_contains(NULL, "alice"));
	ck_assert(!config_list_contains("alice", NULL));
}
END_TEST

/* The sample file, read from $PGSLUICE_SRCDIR (or .). */
static FILE *sample_open(char *path, size_t cap)
{
	const char *dir = getenv("PGSLUICE_SRCDIR");
	snprintf(path, cap, "%s/etc/pgsluice.ini", dir != NULL ? dir : ".");
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	return f;
}

START_TEST(sample_ini_documents_every_key_and_no_other)
{
	char path[1024], line[512], prev[512] = "";
	size_t n_keys = 0;
	bool in_globals = false;
	FILE *f = sample_open(path, sizeof(path));

	while (config_keys[n_keys].name != NULL)
		n_keys++;
	int *seen = calloc(n_keys, sizeof(*seen));
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '[')
			in_globals = strcmp(line, "[pgsluice]") == 0;
		/* ";key = default" documents a key; "key = value" sets one. */
		const char *p = line[0] == ';' ? line + 1 : line;
		size_t name_len = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
		if (in_globals && line[0] != '[' && name_len > 0 &&
		    strncmp(p + name_len, " =", 2) == 0) {
			const struct cfg_key *k = config_keys;
			while (k->name != NULL &&
			       (strlen(k->name) != name_len || strncmp(k->name, p, name_len) != 0))
				k++;
			ck_assert_msg(k->name != NULL, "sample names unknown key: %s", line);
			if (line[0] == ';') {
				char want[512];
				seen[k - config_keys]++;
				snprintf(want, sizeof(want), ";%s =%s%s", k->name,
					 *k->default_value != '\0' ? " " : "", k->default_value);
				ck_assert_str_eq(line, want);
				snprintf(want, sizeof(want), ";; %s%s", k->doc,
					 k->reloadable ? "" : " (restart to change)");
				ck_assert_str_eq(prev, want);
			}
		}
		snprintf(prev, sizeof(prev), "%s", line);
	}
	fclose(f);
	for (size_t i = 0; i < n_keys; i++)
		ck_assert_msg(seen[i] == 1, "%s documented %d times", config_keys[i].name, seen[i]);
	free(seen);
}
END_TEST

START_TEST(sample_ini_loads_as_is)
{
	char path[1024], *errors = NULL;
	fclose(sample_open(path, sizeof(path)));
	struct config *cfg = config_load(path, &errors);
	ck_assert_msg(cfg != NULL, "%s", errors != NULL ? errors : "");
	const struct db_conf *app = config_find_db(cfg, "app");
	ck_assert_ptr_nonnull(app);
	ck_assert_uint_eq(app->n_replicas, 2);
	ck_assert_int_eq(app->replicas[1].weight, 2);
	ck_assert_ptr_nonnull(config_find_user(cfg, "batch"));
	config_free(cfg);
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("global");
	tcase_add_test(tc, defaults_apply_when_the_file_sets_nothing);
	tcase_add_test(tc, not_reloadable_keys_are_exactly_the_listed_ones);
	tcase_add_test(tc, every_default_formats_back_to_its_text);
	tcase_add_test(tc, values_of_every_type_are_parsed);
	tcase_add_test(tc, boolean_words_are_all_understood);
	tcase_add_test(tc, keys_and_sections_ignore_case_and_indentation);
	tcase_add_test(tc, comments_and_inline_comments_are_ignored);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, unknown_key_is_reported_with_file_and_line);
	tcase_add_test(tc, unknown_section_is_reported_once_and_its_keys_ignored);
	tcase_add_test(tc, key_before_any_section_is_refused);
	tcase_add_test(tc, bad_integer_is_refused);
	tcase_add_test(tc, integer_out_of_range_is_refused);
	tcase_add_test(tc, bad_boolean_is_refused);
	tcase_add_test(tc, bad_enum_lists_the_allowed_values);
	tcase_add_test(tc, bad_duration_is_refused);
	tcase_add_test(tc, bad_size_is_refused);
	tcase_add_test(tc, empty_value_of_a_number_is_refused);
	tcase_add_test(tc, duplicate_key_names_the_first_line);
	tcase_add_test(tc, malformed_lines_are_refused);
	tcase_add_test(tc, overlong_line_is_refused);
	tcase_add_test(tc, all_errors_are_collected_in_file_order);
	tcase_add_test(tc, error_flood_is_cut_short_with_a_count);
	tcase_add_test(tc, missing_file_is_reported);
	tcase_add_test(tc, min_pool_size_above_default_pool_size_is_refused);
	tcase_add_test(tc, password_auth_without_auth_file_is_refused);
	tcase_add_test(tc, nothing_to_listen_on_is_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("databases_users");
	tcase_add_test(tc, database_entry_takes_every_key);
	tcase_add_test(tc, database_entry_defaults);
	tcase_add_test(tc, quoted_values_keep_blanks_and_escapes);
	tcase_add_test(tc, bad_connection_strings_are_refused);
	tcase_add_test(tc, bad_replicas_are_refused);
	tcase_add_test(tc, duplicate_database_names_the_first_line);
	tcase_add_test(tc, database_min_pool_size_above_its_pool_size_is_refused);
	tcase_add_test(tc, wildcard_serves_unlisted_databases);
	tcase_add_test(tc, users_section_sets_pool_mode_and_limits);
	tcase_add_test(tc, batch_inserts_is_set_globally_per_database_and_per_user);
	tcase_add_test(tc, pool_mode_prefers_user_then_database_then_global);
	tcase_add_test(tc, pool_size_falls_back_to_the_global);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_test(tc, durations_parse_to_microseconds);
	tcase_add_test(tc, sizes_parse_to_bytes);
	tcase_add_test(tc, format_uses_the_largest_exact_unit);
	tcase_add_test(tc, every_key_survives_format_then_parse);
	tcase_add_test(tc, list_contains_matches_whole_trimmed_items);
	suite_add_tcase(s, tc);

	tc = tcase_create("sample");
	tcase_add_test(tc, sample_ini_documents_every_key_and_no_other);
	tcase_add_test(tc, sample_ini_loads_as_is);
	suite_add_tcase(s, tc);
	return s;
}
