/*
 * test_admin.c - the admin console's pure parts: the command parser
 * (admin_parse: every command, case, semicolons, comments, quoting, every
 * syntax error), the result builder (resultset.c, byte-exact messages and
 * value formats), SET's config_set_value, and the metrics endpoint's HTTP
 * request check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "config.h"
#include "metrics.h"
#include "resultset.h"
#include "suites.h"

/* ----- parser ----- */

static struct admin_statement sts[ADMIN_MAX_STATEMENTS];
static struct admin_error err;

/* Parses sql, which must give exactly one statement; returns it. */
static const struct admin_statement *parse_one(const char *sql)
{
	memset(&err, 0, sizeof(err));
	int n = admin_parse(sql, sts, ADMIN_MAX_STATEMENTS, &err);
	ck_assert_msg(n == 1, "\"%s\" gave %d statements (%s: %s)", sql, n, err.sqlstate,
		      err.message);
	return &sts[0];
}

/* Parses sql, which must fail with sqlstate; the message must contain part. */
static void parse_fails(const char *sql, const char *sqlstate, const char *part)
{
	memset(&err, 0, sizeof(err));
	int n = admin_parse(sql, sts, ADMIN_MAX_STATEMENTS, &err);
	ck_assert_msg(n == -1, "\"%s\" parsed into %d statements", sql, n);
	ck_assert_str_eq(err.sqlstate, sqlstate);
	ck_assert_msg(strstr(err.message, part) != NULL, "\"%s\": message \"%s\" lacks \"%s\"", sql,
		      err.message, part);
}

START_TEST(every_command_parses)
{
	static const struct {
		const char *sql;
		enum admin_command command;
		const char *name;
	} cases[] = {
		{"SHOW HELP", ADMIN_SHOW_HELP, ""},
		{"SHOW VERSION", ADMIN_SHOW_VERSION, ""},
		{"SHOW CONFIG", ADMIN_SHOW_CONFIG, ""},
		{"SHOW DATABASES", ADMIN_SHOW_DATABASES, ""},
		{"SHOW POOLS", ADMIN_SHOW_POOLS, ""},
		{"SHOW CLIENTS", ADMIN_SHOW_CLIENTS, ""},
		{"SHOW SERVERS", ADMIN_SHOW_SERVERS, ""},
		{"SHOW STATS", ADMIN_SHOW_STATS, ""},
		{"SHOW STATS_TOTALS", ADMIN_SHOW_STATS_TOTALS, ""},
		{"SHOW STATS_AVERAGES", ADMIN_SHOW_STATS_AVERAGES, ""},
		{"SHOW LATENCY", ADMIN_SHOW_LATENCY, ""},
		{"SHOW ROUTING", ADMIN_SHOW_ROUTING, ""},
		{"SHOW LISTS", ADMIN_SHOW_LISTS, ""},
		{"SHOW MEM", ADMIN_SHOW_MEM, ""},
		{"SHOW SLOW_QUERIES", ADMIN_SHOW_SLOW_QUERIES, ""},
		{"SHOW QUERIES", ADMIN_SHOW_QUERIES, ""},
		{"RELOAD", ADMIN_RELOAD, ""},
		{"PAUSE", ADMIN_PAUSE, ""},
		{"PAUSE app", ADMIN_PAUSE, "app"},
		{"RESUME", ADMIN_RESUME, ""},
		{"RESUME app", ADMIN_RESUME, "app"},
		{"RECONNECT", ADMIN_RECONNECT, ""},
		{"RECONNECT app", ADMIN_RECONNECT, "app"},
		{"DISABLE app", ADMIN_DISABLE, "app"},
		{"ENABLE app", ADMIN_ENABLE, "app"},
		{"KILL app", ADMIN_KILL, "app"},
		{"SHUTDOWN", ADMIN_SHUTDOWN, ""},
		{"SHUTDOWN IMMEDIATE", ADMIN_SHUTDOWN_IMMEDIATE, ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct admin_statement *st = parse_one(cases[i].sql);
		ck_assert_msg(st->command == cases[i].command, "\"%s\" parsed as command %d",
			      cases[i].sql, (int)st->command);
		ck_assert_str_eq(st->name, cases[i].name);
	}
}
END_TEST

START_TEST(show_route_takes_the_rest_of_the_query_as_its_statement)
{
	const struct admin_statement *st =
		parse_one("  /* c */ show  Route SELECT 'a;b'; DELETE FROM t -- x\n  ");
	ck_assert(st->command == ADMIN_SHOW_ROUTE);
	ck_assert_str_eq(st->value, "SELECT 'a;b'; DELETE FROM t -- x");
	/* SHOW ROUTING is another command, not SHOW ROUTE with "ING". */
	ck_assert(parse_one("SHOW ROUTING")->command == ADMIN_SHOW_ROUTING);
	parse_fails("SHOW ROUTE", "42601", "needs a statement");
	char big[ADMIN_VALUE_MAX + 32];
	snprintf(big, sizeof(big), "SHOW ROUTE SELECT %0*d", ADMIN_VALUE_MAX, 1);
	parse_fails(big, "54000", "up to");
}
END_TEST

START_TEST(keywords_ignore_case_and_names_keep_it)
{
	ck_assert_int_eq(parse_one("show pools")->command, ADMIN_SHOW_POOLS);
	ck_assert_int_eq(parse_one("Show Stats_Totals")->command, ADMIN_SHOW_STATS_TOTALS);
	ck_assert_int_eq(parse_one("shutdown immediate")->command, ADMIN_SHUTDOWN_IMMEDIATE);
	ck_assert_str_eq(parse_one("pause MyDb")->name, "MyDb");
	ck_assert_str_eq(parse_one("kill \"My \"\"odd\"\" db\"")->name, "My \"odd\" db");
}
END_TEST

START_TEST(trailing_semicolons_and_blanks_are_ignored)
{
	ck_assert_int_eq(parse_one("SHOW POOLS;")->command, ADMIN_SHOW_POOLS);
	ck_assert_int_eq(parse_one("  \n\tSHOW   POOLS \t ;  ; \n")->command, ADMIN_SHOW_POOLS);
	ck_assert_int_eq(parse_one("-- what waits?\nSHOW /* all */ POOLS -- end")->command,
			 ADMIN_SHOW_POOLS);
}
END_TEST

START_TEST(empty_query_has_no_statement)
{
	ck_assert_int_eq(admin_parse("", sts, ADMIN_MAX_STATEMENTS, &err), 0);
	ck_assert_int_eq(admin_parse("  ;\n; -- nothing", sts, ADMIN_MAX_STATEMENTS, &err), 0);
}
END_TEST

START_TEST(several_statements_parse_in_order)
{
	int n = admin_parse("PAUSE app; SHOW POOLS;RESUME app", sts, ADMIN_MAX_STATEMENTS, &err);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(sts[0].command, ADMIN_PAUSE);
	ck_assert_str_eq(sts[0].name, "app");
	ck_assert_int_eq(sts[1].command, ADMIN_SHOW_POOLS);
	ck_assert_int_eq(sts[2].command, ADMIN_RESUME);
	ck_assert_str_eq(sts[2].name, "app");
}
END_TEST

START_TEST(more_statements_than_allowed_are_refused)
{
	char sql[ADMIN_MAX_STATEMENTS * 16];
	size_t len = 0;
	for (int i = 0; i <= ADMIN_MAX_STATEMENTS; i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "SHOW HELP;");
	parse_fails(sql, "54000", "more than 16 statements");
	/* Exactly the limit is fine. */
	sql[len - strlen("SHOW HELP;")] = '\0';
	ck_assert_int_eq(admin_parse(sql, sts, ADMIN_MAX_STATEMENTS, &err), ADMIN_MAX_STATEMENTS);
}
END_TEST

START_TEST(unknown_command_is_a_syntax_error_with_a_hint)
{
	parse_fails("SELECT 1", "42601", "unknown command \"SELECT\"");
	ck_assert_ptr_nonnull(err.hint);
	ck_assert_msg(strstr(err.hint, "SHOW HELP") != NULL, "hint: %s", err.hint);
	parse_fails("SHOW NOTHING", "42601", "unknown SHOW subject \"NOTHING\"");
	ck_assert_ptr_nonnull(err.hint);
	parse_fails("SHOW", "42601", "SHOW needs a subject");
	parse_fails("\"SHOW\" POOLS", "42601", "unknown command");
	/* One bad statement stops the whole query before anything runs. */
	parse_fails("PAUSE app; FROB", "42601", "unknown command \"FROB\"");
}
END_TEST

START_TEST(extra_words_are_refused)
{
	parse_fails("SHOW POOLS now", "42601", "unexpected \"now\" after SHOW POOLS");
	parse_fails("RELOAD app", "42601", "unexpected \"app\" after RELOAD");
	parse_fails("PAUSE a b", "42601", "unexpected \"b\" after PAUSE [db]");
	parse_fails("SHUTDOWN NOW", "42601", "unexpected \"NOW\" after SHUTDOWN");
	parse_fails("SHOW HELP a b c d e", "42601", "unexpected \"a\" after SHOW HELP");
}
END_TEST

START_TEST(commands_that_need_a_database_say_so)
{
	parse_fails("DISABLE", "42601", "DISABLE needs a database name");
	parse_fails("ENABLE;", "42601", "ENABLE needs a database name");
	parse_fails("KILL", "42601", "KILL needs a database name");
	parse_fails("KILL 'app'", "42601", "expected a name");
}
END_TEST

START_TEST(set_takes_key_equals_or_to_value)
{
	const struct admin_statement *st = parse_one("SET default_pool_size = 5");
	ck_assert_int_eq(st->command, ADMIN_SET);
	ck_assert_str_eq(st->name, "default_pool_size");
	ck_assert_str_eq(st->value, "5");
	st = parse_one("set query_timeout to 250ms;");
	ck_assert_str_eq(st->name, "query_timeout");
	ck_assert_str_eq(st->value, "250ms");
	st = parse_one("SET server_reset_query='DISCARD ALL'");
	ck_assert_str_eq(st->value, "DISCARD ALL");
	st = parse_one("SET stats_users = 'it''s; fine'");
	ck_assert_str_eq(st->value, "it's; fine");
	st = parse_one("SET logfile = ''");
	ck_assert_str_eq(st->value, "");
}
END_TEST

START_TEST(set_syntax_errors_are_refused)
{
	parse_fails("SET", "42601", "SET needs key = value");
	parse_fails("SET default_pool_size", "42601", "SET needs key = value");
	parse_fails("SET default_pool_size =", "42601", "SET needs key = value");
	parse_fails("SET default_pool_size 5", "42601", "SET needs key = value");
	parse_fails("SET = 5", "42601", "SET needs key = value");
	parse_fails("SET a = = 5", "42601", "SET needs key = value");
	parse_fails("SET a = 5 6", "42601", "unexpected \"6\" after SET key = value");
	parse_fails("SET a = 'open", "42601", "unterminated quoted string");
}
END_TEST

START_TEST(lexical_errors_are_refused)
{
	parse_fails("PAUSE \"app", "42601", "unterminated quoted name");
	parse_fails("SHOW POOLS /* never closed", "42601", "unterminated /* comment");
	char sql[200];
	snprintf(sql, sizeof(sql), "PAUSE %070d", 7);
	parse_fails(sql, "42622", "longer than 63 bytes");
	char *long_value = malloc(ADMIN_VALUE_MAX + 32);
	ck_assert_ptr_nonnull(long_value);
	int n = snprintf(long_value, 32, "SET logfile = '");
	memset(long_value + n, 'x', ADMIN_VALUE_MAX);
	strcpy(long_value + n + ADMIN_VALUE_MAX, "'");
	parse_fails(long_value, "54000", "longer than 1023 bytes");
	free(long_value);
}
END_TEST

START_TEST(only_control_commands_change_things)
{
	for (int c = ADMIN_SHOW_HELP; c <= ADMIN_SHOW_MEM; c++) {
		ck_assert_msg(!admin_command_changes((enum admin_command)c), "command %d", c);
		ck_assert_str_eq(admin_command_tag((enum admin_command)c), "SHOW");
	}
	for (int c = ADMIN_RELOAD; c <= ADMIN_SHUTDOWN_IMMEDIATE; c++)
		ck_assert_msg(admin_command_changes((enum admin_command)c), "command %d", c);
	ck_assert_str_eq(admin_command_tag(ADMIN_PAUSE), "PAUSE");
	ck_assert_str_eq(admin_command_tag(ADMIN_SHUTDOWN_IMMEDIATE), "SHUTDOWN");
	ck_assert_str_eq(admin_command_tag(ADMIN_SET), "SET");
}
END_TEST

/* ----- result builder ----- */

START_TEST(small_table_is_byte_exact)
{
	static const struct resultset_column cols[] = {{"name", RESULTSET_TEXT},
						       {"n", RESULTSET_INT8}};
	static const uint8_t want[] = {
		/* RowDescription: 2 columns */
		'T',
		0,
		0,
		0,
		49,
		0,
		2,
		'n',
		'a',
		'm',
		'e',
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		25,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0,
		0,
		'n',
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		20,
		0,
		8,
		0xff,
		0xff,
		0xff,
		0xff,
		0,
		0,
		/* DataRow 'a', 7 */
		'D',
		0,
		0,
		0,
		16,
		0,
		2,
		0,
		0,
		0,
		1,
		'a',
		0,
		0,
		0,
		1,
		'7',
		/* DataRow NULL, -1 */
		'D',
		0,
		0,
		0,
		16,
		0,
		2,
		0xff,
		0xff,
		0xff,
		0xff,
		0,
		0,
		0,
		2,
		'-',
		'1',
		/* CommandComplete SHOW */
		'C',
		0,
		0,
		0,
		9,
		'S',
		'H',
		'O',
		'W',
		0,
	};
	struct obuf ob;
	struct resultset rs;
	obuf_init(&ob, 4096);
	ck_assert(resultset_begin(&rs, &ob, cols, 2));
	resultset_row_begin(&rs);
	resultset_put_text(&rs, "a");
	resultset_put_int(&rs, 7);
	resultset_row_begin(&rs); /* closes the first row */
	resultset_put_text(&rs, NULL);
	resultset_put_int(&rs, -1);
	ck_assert(resultset_end(&rs, "SHOW"));
	ck_assert_uint_eq(rs.rows, 2);
	ck_assert_uint_eq(ob.len, sizeof(want));
	ck_assert_mem_eq(ob.data, want, sizeof(want));
	obuf_free(&ob);
}
END_TEST

/* Writes one row of one value through put, returns the value's text ("NULL" for NULL). */
static const char *one_value(enum resultset_type type,
			     void (*put)(struct resultset *, const void *), const void *arg)
{
	static char text[256];
	struct resultset_column col = {"v", type};
	struct obuf ob;
	struct resultset rs;
	obuf_init(&ob, 4096);
	ck_assert(resultset_begin(&rs, &ob, &col, 1));
	size_t row_at = ob.len;
	resultset_row_begin(&rs);
	put(&rs, arg);
	resultset_row_end(&rs);
	/* 'D', length, column count, then the value's length and bytes. */
	const uint8_t *v = ob.data + row_at + 7;
	uint32_t len = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
	if (len == UINT32_MAX)
		snprintf(text, sizeof(text), "NULL");
	else
		snprintf(text, sizeof(text), "%.*s", (int)len, (const char *)v + 4);
	obuf_free(&ob);
	return text;
}

static void put_float_arg(struct resultset *rs, const void *arg)
{
	resultset_put_float(rs, *(const double *)arg);
}

static void put_time_arg(struct resultset *rs, const void *arg)
{
	resultset_put_time(rs, *(const double *)arg);
}

static void put_bool_arg(struct resultset *rs, const void *arg)
{
	resultset_put_bool(rs, *(const bool *)arg);
}

static void put_uint_arg(struct resultset *rs, const void *arg)
{
	resultset_put_uint(rs, *(const uint64_t *)arg);
}

static void put_nothing(struct resultset *rs, const void *arg)
{
	(void)rs;
	(void)arg;
}

static const char *float_text(double v)
{
	return one_value(RESULTSET_FLOAT8, put_float_arg, &v);
}

static const char *time_text(double v)
{
	return one_value(RESULTSET_TIMESTAMPTZ, put_time_arg, &v);
}

START_TEST(values_are_formatted_as_postgresql_prints_them)
{
	ck_assert_str_eq(float_text(0.1), "0.1");
	ck_assert_str_eq(float_text(2.5), "2.5");
	ck_assert_str_eq(float_text(-3), "-3");
	ck_assert_str_eq(float_text(1.0 / 3), "0.3333333333333333");
	ck_assert_str_eq(float_text(0.0 / 0.0), "NaN");
	ck_assert_str_eq(float_text(1.0 / 0.0), "Infinity");
	ck_assert_str_eq(float_text(-1.0 / 0.0), "-Infinity");
	ck_assert_str_eq(time_text(86400.25), "1970-01-02 00:00:00.250000+00");
	ck_assert_str_eq(time_text(1700000000.9999996), "2023-11-14 22:13:21.000000+00");
	ck_assert_str_eq(time_text(0), "NULL");
	bool t = true, f = false;
	ck_assert_str_eq(one_value(RESULTSET_BOOL, put_bool_arg, &t), "t");
	ck_assert_str_eq(one_value(RESULTSET_BOOL, put_bool_arg, &f), "f");
	uint64_t big = UINT64_MAX;
	ck_assert_str_eq(one_value(RESULTSET_INT8, put_uint_arg, &big), "18446744073709551615");
	ck_assert_str_eq(one_value(RESULTSET_TEXT, put_nothing, NULL), "NULL");
}
END_TEST

START_TEST(column_types_are_announced_with_postgresql_oids)
{
	ck_assert_uint_eq(resultset_type_oid(RESULTSET_TEXT), 25);
	ck_assert_uint_eq(resultset_type_oid(RESULTSET_INT4), 23);
	ck_assert_uint_eq(resultset_type_oid(RESULTSET_INT8), 20);
	ck_assert_uint_eq(resultset_type_oid(RESULTSET_FLOAT8), 701);
	ck_assert_uint_eq(resultset_type_oid(RESULTSET_BOOL), 16);
	ck_assert_uint_eq(resultset_type_oid(RESULTSET_TIMESTAMPTZ), 1184);
}
END_TEST

START_TEST(values_past_the_last_column_are_dropped)
{
	static const struct resultset_column col = {"only", RESULTSET_INT4};
	struct obuf ob;
	struct resultset rs;
	obuf_init(&ob, 4096);
	ck_assert(resultset_begin(&rs, &ob, &col, 1));
	size_t row_at = ob.len;
	resultset_row_begin(&rs);
	resultset_put_int(&rs, 1);
	resultset_put_int(&rs, 2);
	resultset_row_end(&rs);
	/* 'D', length 4+2+4+1 = 11, one column "1". */
	static const uint8_t want[] = {'D', 0, 0, 0, 11, 0, 1, 0, 0, 0, 1, '1'};
	ck_assert_uint_eq(ob.len - row_at, sizeof(want));
	ck_assert_mem_eq(ob.data + row_at, want, sizeof(want));
	obuf_free(&ob);
}
END_TEST

START_TEST(result_larger_than_the_buffer_reports_failure)
{
	static const struct resultset_column col = {"v", RESULTSET_TEXT};
	struct obuf ob;
	struct resultset rs;
	obuf_init(&ob, 64);
	ck_assert(resultset_begin(&rs, &ob, &col, 1));
	for (int i = 0; i < 10; i++) {
		resultset_row_begin(&rs);
		resultset_put_text(&rs, "0123456789");
	}
	ck_assert(!resultset_end(&rs, "SHOW"));
	ck_assert(ob.failed);
	obuf_free(&ob);
}
END_TEST

START_TEST(empty_query_and_complete_messages_are_byte_exact)
{
	struct obuf ob;
	obuf_init(&ob, 256);
	resultset_put_empty_query(&ob);
	resultset_put_complete(&ob, "PAUSE");
	static const uint8_t want[] = {'I', 0,	0,   0,	  4,   'C', 0,	 0,
				       0,   10, 'P', 'A', 'U', 'S', 'E', 0};
	ck_assert_uint_eq(ob.len, sizeof(want));
	ck_assert_mem_eq(ob.data, want, sizeof(want));
	obuf_free(&ob);
}
END_TEST

/* ----- SET: config_set_value ----- */

static struct config *set_cfg;

static void set_setup(void)
{
	char path[] = "/tmp/pgsluice-admin-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	static const char text[] = "[pgsluice]\nauth_type = trust\ndefault_pool_size = 10\n"
				   "min_pool_size = 2\n[databases]\napp = host=127.0.0.1\n";
	ck_assert_int_eq(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	char *errors = NULL;
	set_cfg = config_load(path, &errors);
	unlink(path);
	ck_assert_msg(set_cfg != NULL, "%s", errors != NULL ? errors : "");
}

static void set_teardown(void)
{
	config_free(set_cfg);
	set_cfg = NULL;
}

static const struct cfg_key *key_named(const char *name)
{
	for (const struct cfg_key *k = config_keys; k->name != NULL; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	ck_abort_msg("no key %s", name);
	return NULL;
}

static const char *shown(const char *name)
{
	static char buf[256];
	return config_format_value(set_cfg, key_named(name), buf, sizeof(buf));
}

START_TEST(set_changes_a_reloadable_key)
{
	char why[200] = "";
	ck_assert_msg(
		config_set_value(set_cfg, key_named("default_pool_size"), "5", why, sizeof(why)),
		"%s", why);
	ck_assert_int_eq(set_cfg->default_pool_size, 5);
	ck_assert(config_set_value(set_cfg, key_named("query_timeout"), "250ms", why, sizeof(why)));
	ck_assert_int_eq(set_cfg->query_timeout, 250000);
	ck_assert(config_set_value(set_cfg, key_named("pool_mode"), "SESSION", why, sizeof(why)));
	ck_assert_int_eq(set_cfg->pool_mode, POOL_SESSION);
	ck_assert(config_set_value(set_cfg, key_named("log_connections"), "off", why, sizeof(why)));
	ck_assert(!set_cfg->log_connections);
	ck_assert(config_set_value(set_cfg, key_named("stats_users"), "alice, bob", why,
				   sizeof(why)));
	ck_assert_str_eq(set_cfg->stats_users, "alice, bob");
	ck_assert(config_set_value(set_cfg, key_named("server_reset_query"), "", why, sizeof(why)));
	ck_assert_ptr_null(set_cfg->server_reset_query);
	ck_assert_str_eq(shown("server_reset_query"), "");
}
END_TEST

START_TEST(set_refuses_bad_values_and_keeps_the_old_one)
{
	char why[200] = "";
	ck_assert(!config_set_value(set_cfg, key_named("default_pool_size"), "abc", why,
				    sizeof(why)));
	ck_assert_msg(strstr(why, "not an integer") != NULL, "%s", why);
	ck_assert(
		!config_set_value(set_cfg, key_named("default_pool_size"), "0", why, sizeof(why)));
	ck_assert_msg(strstr(why, "out of range") != NULL, "%s", why);
	ck_assert(!config_set_value(set_cfg, key_named("pool_mode"), "bogus", why, sizeof(why)));
	ck_assert(!config_set_value(set_cfg, key_named("query_timeout"), "5 fortnights", why,
				    sizeof(why)));
	ck_assert_int_eq(set_cfg->default_pool_size, 10);
	ck_assert_int_eq(set_cfg->pool_mode, POOL_TRANSACTION);
	ck_assert_int_eq(set_cfg->query_timeout, 0);
}
END_TEST

START_TEST(set_refuses_what_breaks_another_key)
{
	char why[200] = "";
	ck_assert(
		!config_set_value(set_cfg, key_named("default_pool_size"), "1", why, sizeof(why)));
	ck_assert_msg(strstr(why, "min_pool_size (2)") != NULL, "%s", why);
	ck_assert_int_eq(set_cfg->default_pool_size, 10);
	ck_assert(!config_set_value(set_cfg, key_named("auth_type"), "md5", why, sizeof(why)));
	ck_assert_msg(strstr(why, "auth_file is required") != NULL, "%s", why);
	ck_assert_int_eq(set_cfg->auth_type, AUTH_TRUST);
}
END_TEST

START_TEST(set_refuses_keys_fixed_at_start)
{
	char why[200] = "";
	ck_assert(!config_set_value(set_cfg, key_named("listen_port"), "7000", why, sizeof(why)));
	ck_assert_msg(strstr(why, "cannot be changed while pgsluice runs") != NULL, "%s", why);
	ck_assert(!config_set_value(set_cfg, key_named("metrics_listen"), "127.0.0.1:9", why,
				    sizeof(why)));
	ck_assert_int_eq(set_cfg->listen_port, 6432);
	ck_assert_ptr_null(set_cfg->metrics_listen);
}
END_TEST

/* ----- metrics endpoint: request check ----- */

static int check(const char *req)
{
	return metrics_check_request(req, strlen(req));
}

START_TEST(get_metrics_is_served_and_other_requests_get_their_status)
{
	ck_assert_int_eq(check("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
	ck_assert_int_eq(check("GET /metrics?name[]=x HTTP/1.0\n\n"), 200);
	ck_assert_int_eq(check("GET /health HTTP/1.1\r\n\r\n"), METRICS_HEALTH_REQUEST);
	ck_assert_int_eq(check("POST /health HTTP/1.1\r\n\r\n"), 405);
	ck_assert_int_eq(check("GET /healthz HTTP/1.1\r\n\r\n"), 404);
	ck_assert_int_eq(check("GET / HTTP/1.1\r\n\r\n"), 404);
	ck_assert_int_eq(check("GET /metricsx HTTP/1.1\r\n\r\n"), 404);
	ck_assert_int_eq(check("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 405);
	ck_assert_int_eq(check("HEAD /metrics HTTP/1.1\r\n\r\n"), 405);
	ck_assert_int_eq(check("GET /metrics HTTP/2.0\r\n\r\n"), 400);
	ck_assert_int_eq(check("GET /metrics\r\n\r\n"), 400);
	ck_assert_int_eq(check("get /metrics HTTP/1.1\r\n\r\n"), 400);
	ck_assert_int_eq(check("GET metrics HTTP/1.1\r\n\r\n"), 400);
	ck_assert_int_eq(check("\r\n"), 400);
	/* A bad request line is answered at once, without waiting for headers. */
	ck_assert_int_eq(check("BLAH\r\n"), 400);
}
END_TEST

START_TEST(incomplete_requests_wait_and_oversized_ones_are_refused)
{
	ck_assert_int_eq(check(""), 0);
	ck_assert_int_eq(check("GET /metr"), 0);
	ck_assert_int_eq(check("GET /metrics HTTP/1.1\r\n"), 0);
	ck_assert_int_eq(check("GET /metrics HTTP/1.1\r\nHost: x\r\n"), 0);
	char *big = malloc(METRICS_REQUEST_MAX);
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', METRICS_REQUEST_MAX);
	ck_assert_int_eq(metrics_check_request(big, METRICS_REQUEST_MAX), 431);
	int n = snprintf(big, METRICS_REQUEST_MAX, "GET /metrics HTTP/1.1\r\n");
	memset(big + n, 'h', METRICS_REQUEST_MAX - (size_t)n);
	ck_assert_int_eq(metrics_check_request(big, METRICS_REQUEST_MAX), 431);
	ck_assert_int_eq(metrics_check_request(big, METRICS_REQUEST_MAX - 1), 0);
	free(big);
}
END_TEST

Suite *admin_suite(void)
{
	Suite *s = suite_create("admin");
	TCase *parser = tcase_create("parser");
	tcase_add_test(parser, every_command_parses);
	tcase_add_test(parser, show_route_takes_the_rest_of_the_query_as_its_statement);
	tcase_add_test(parser, keywords_ignore_case_and_names_keep_it);
	tcase_add_test(parser, trailing_semicolons_and_blanks_are_ignored);
	tcase_add_test(parser, empty_query_has_no_statement);
	tcase_add_test(parser, several_statements_parse_in_order);
	tcase_add_test(parser, more_statements_than_allowed_are_refused);
	tcase_add_test(parser, unknown_command_is_a_syntax_error_with_a_hint);
	tcase_add_test(parser, extra_words_are_refused);
	tcase_add_test(parser, commands_that_need_a_database_say_so);
	tcase_add_test(parser, set_takes_key_equals_or_to_value);
	tcase_add_test(parser, set_syntax_errors_are_refused);
	tcase_add_test(parser, lexical_errors_are_refused);
	tcase_add_test(parser, only_control_commands_change_things);
	suite_add_tcase(s, parser);

	TCase *result = tcase_create("resultset");
	tcase_add_test(result, small_table_is_byte_exact);
	tcase_add_test(result, values_are_formatted_as_postgresql_prints_them);
	tcase_add_test(result, column_types_are_announced_with_postgresql_oids);
	tcase_add_test(result, values_past_the_last_column_are_dropped);
	tcase_add_test(result, result_larger_than_the_buffer_reports_failure);
	tcase_add_test(result, empty_query_and_complete_messages_are_byte_exact);
	suite_add_tcase(s, result);

	TCase *set = tcase_create("set");
	tcase_add_checked_fixture(set, set_setup, set_teardown);
	tcase_add_test(set, set_changes_a_reloadable_key);
	tcase_add_test(set, set_refuses_bad_values_and_keeps_the_old_one);
	tcase_add_test(set, set_refuses_what_breaks_another_key);
	tcase_add_test(set, set_refuses_keys_fixed_at_start);
	suite_add_tcase(s, set);

	TCase *http = tcase_create("metrics_http");
	tcase_add_test(http, get_metrics_is_served_and_other_requests_get_their_status);
	tcase_add_test(http, incomplete_requests_wait_and_oversized_ones_are_refused);
	suite_add_tcase(s, http);
	return s;
}
