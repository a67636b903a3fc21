/*
 * test_classify.c - the SQL lexer (classify.c): routing decisions on a
 * table of statements, including the tricks that fool regular expressions
 * (keywords inside strings, comments and dollar quotes), routing hints,
 * BEGIN ... READ ONLY, configured function lists; fingerprints that must
 * match or differ; redaction; and the single-row INSERT shapes that insert
 * batching accepts and refuses.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "classify.h"
#include "suites.h"

struct routing_case {
	const char *sql;
	bool read_only;
};

/* Read-only: may go to a replica. */
static const struct routing_case read_cases[] = {
	{"SELECT 1", true},
	{"select 1", true},
	{"sElEcT 1", true},
	{"  \n\t SELECT 1  ", true},
	{"SELECT 1;", true},
	{"SELECT 1;;;", true},
	{"SELECT * FROM t", true},
	{"SELECT a, b FROM t WHERE id = 42", true},
	{"SELECT 'update'", true},
	{"SELECT 'delete from t'", true},
	{"SELECT 'it''s an insert'", true},
	{"SELECT $$ DELETE $$", true},
	{"SELECT $tag$ DROP TABLE t; $$ nested $$ $tag$", true},
	{"SELECT $a$ $b$ INSERT $b$ $a$", true},
	{"/* insert */ SELECT 1", true},
	{"/* outer /* nested delete */ still comment */ SELECT 1", true},
	{"-- update t set a = 1\nSELECT 1", true},
	{"SELECT 1 -- ; DELETE FROM t", true},
	{"SELECT 1 /* ; DELETE FROM t */", true},
	{"SELECT E'\\''", true},
	{"SELECT E'\\'; DELETE FROM t; '", true},
	{"SELECT e'x\\\\' FROM t", true},
	{"SELECT U&'d\\0061t\\+000061'", true},
	{"SELECT B'1010', X'ff'", true},
	{"SELECT \"update\" FROM t", true},
	{"SELECT \"nextval\" FROM t", true},
	{"SELECT \"a\"\"b\" FROM \"My Table\"", true},
	{"SELECT * FROM \"delete\"", true},
	{"SELECT count(*) FROM t", true},
	{"SELECT lower(name), upper(name), length(name) FROM users", true},
	{"SELECT now(), current_timestamp, clock_timestamp()", true},
	{"SELECT coalesce(a, b), nullif(a, 0), greatest(1, 2) FROM t", true},
	{"SELECT max(id), min(id), avg(x), sum(x) FROM t GROUP BY g HAVING count(*) > 1", true},
	{"SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM t", true},
	{"SELECT array_agg(x ORDER BY x), string_agg(s, ',') FROM t", true},
	{"SELECT jsonb_build_object('a', 1)->>'a'", true},
	{"SELECT to_char(now(), 'YYYY'), date_trunc('day', now())", true},
	{"SELECT pg_catalog.lower('X')", true},
	{"SELECT pg_is_in_recovery()", true},
	{"SELECT pg_last_wal_replay_lsn()", true},
	{"SELECT inet_server_port(), version()", true},
	{"SELECT current_setting('search_path')", true},
	{"SELECT pg_sleep(0.1)", true},
	{"SELECT generate_series(1, 10)", true},
	{"SELECT * FROM generate_series(1, 3) AS g(i)", true},
	{"SELECT * FROM unnest(ARRAY[1, 2, 3])", true},
	{"SELECT CAST(a AS int), a::text, int4(a) FROM t", true},
	{"SELECT numeric(a), text(b), date(c), float8(d) FROM t", true},
	{"SELECT CASE WHEN a > 0 THEN 'pos' ELSE 'neg' END FROM t", true},
	{"SELECT EXISTS (SELECT 1 FROM t WHERE t.a = u.a) FROM u", true},
	{"SELECT * FROM t WHERE a IN (SELECT b FROM u)", true},
	{"SELECT * FROM t JOIN u USING (id) LEFT JOIN v ON v.id = t.id", true},
	{"SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.t = t.id) s", true},
	{"SELECT a FROM t UNION ALL SELECT b FROM u", true},
	{"SELECT a FROM t INTERSECT SELECT a FROM u EXCEPT SELECT a FROM v", true},
	{"(SELECT 1)", true},
	{"((SELECT 1) UNION (SELECT 2))", true},
	{"SELECT * FROM t ORDER BY a DESC NULLS LAST LIMIT 10 OFFSET 5", true},
	{"SELECT * FROM t FETCH FIRST 3 ROWS ONLY", true},
	{"SELECT DISTINCT ON (a) a, b FROM t", true},
	{"SELECT * FROM t TABLESAMPLE SYSTEM (10)", true},
	{"SELECT * FROM t WHERE s LIKE 'for update%'", true},
	{"SELECT 'FOR UPDATE' FROM t", true},
	{"SELECT * FROM t WHERE a = $1", true},
	{"SELECT * FROM t WHERE a = $1 AND b = $2::text", true},
	{"SELECT $1", true},
	{"SELECT 1.5e10, .5, 0x1F, 1_000_000", true},
	{"SELECT -1, +2, 3 - -4", true},
	{"SELECT a || 'into' || b FROM t", true},
	{"SELECT * FROM t WHERE \"into\" = 1", true},
	{"SELECT x AS \"into\" FROM t", true},
	{"SELECT interval '1 day', date '2024-01-01', timestamp '2024-01-01 00:00'", true},
	{"SELECT ARRAY[1, 2][1], (ROW(1, 2)).f1", true},
	{"SELECT 1 WHERE true", true},
	{"SELECT", true},
	{"VALUES (1), (2)", true},
	{"values (1, 'a')", true},
	{"TABLE t", true},
	{"table public.t", true},
	{"SHOW search_path", true},
	{"SHOW ALL", true},
	{"show transaction_isolation", true},
	{"EXPLAIN SELECT * FROM t", true},
	{"EXPLAIN (COSTS OFF) SELECT 1", true},
	{"EXPLAIN VERBOSE SELECT 1", true},
	{"EXPLAIN DELETE FROM t", true},
	{"EXPLAIN UPDATE t SET a = 1", true},
	{"EXPLAIN (FORMAT JSON) INSERT INTO t VALUES (1)", true},
	{"EXPLAIN ANALYZE SELECT * FROM t", true},
	{"EXPLAIN (ANALYZE, BUFFERS) SELECT 1", true},
	{"EXPLAIN (ANALYZE true) SELECT 1", true},
	{"WITH x AS (SELECT 1) SELECT * FROM x", true},
	{"WITH x AS (SELECT 1), y AS (SELECT 2) SELECT * FROM x, y", true},
	{"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
	 true},
	{"WITH x AS MATERIALIZED (SELECT 1) SELECT * FROM x", true},
	{"WITH x AS NOT MATERIALIZED (SELECT 'delete') SELECT * FROM x", true},
	{"WITH x AS (VALUES (1)) TABLE x", true},
	{"SELECT 1; SELECT 2", true},
	{"SELECT 1; SHOW search_path; VALUES (3)", true},
	{"SELECT 1;\n-- trailing comment", true},
	{"SELECT 1 /* pgsluice: replica */", true},
};

/* Writes, locks, and anything unsure: the primary. */
static const struct routing_case write_cases[] = {
	{"", false},
	{"   ", false},
	{";", false},
	{"-- only a comment", false},
	{"INSERT INTO t VALUES (1)", false},
	{"insert into t select * from u", false},
	{"UPDATE t SET a = 'select'", false},
	{"DELETE FROM t WHERE a = 'x'", false},
	{"MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE", false},
	{"TRUNCATE t", false},
	{"CREATE TABLE t (a int)", false},
	{"DROP TABLE t", false},
	{"ALTER TABLE t ADD COLUMN b int", false},
	{"CREATE INDEX ON t (a)", false},
	{"VACUUM t", false},
	{"ANALYZE t", false},
	{"GRANT SELECT ON t TO u", false},
	{"COPY t FROM STDIN", false},
	{"COPY t TO STDOUT", false},
	{"COPY (SELECT 1) TO STDOUT", false},
	{"CALL proc()", false},
	{"DO $$ BEGIN PERFORM 1; END $$", false},
	{"LOCK TABLE t", false},
	{"LISTEN ch", false},
	{"NOTIFY ch", false},
	{"UNLISTEN *", false},
	{"SET search_path = x", false},
	{"SET LOCAL statement_timeout = 0", false},
	{"RESET ALL", false},
	{"DISCARD ALL", false},
	{"PREPARE p AS SELECT 1", false},
	{"EXECUTE p", false},
	{"DEALLOCATE p", false},
	{"DECLARE c CURSOR FOR SELECT 1", false},
	{"FETCH 10 FROM c", false},
	{"CLOSE c", false},
	{"BEGIN", false},
	{"BEGIN; SELECT 1; COMMIT", false},
	{"START TRANSACTION", false},
	{"BEGIN READ WRITE", false},
	{"COMMIT", false},
	{"ROLLBACK", false},
	{"SAVEPOINT s", false},
	{"RELEASE SAVEPOINT s", false},
	{"REFRESH MATERIALIZED VIEW v", false},
	{"CLUSTER t", false},
	{"REINDEX TABLE t", false},
	{"CHECKPOINT", false},
	{"SELECT nextval('s')", false},
	{"SELECT NEXTVAL('s')", false},
	{"select pg_catalog.nextval('s')", false},
	{"SELECT setval('s', 10)", false},
	{"SELECT currval('s')", false},
	{"SELECT lastval()", false},
	{"SELECT pg_advisory_lock(1)", false},
	{"SELECT pg_try_advisory_lock(1)", false},
	{"SELECT pg_advisory_xact_lock(1)", false},
	{"SELECT pg_advisory_unlock_all()", false},
	{"SELECT pg_try_advisory_xact_lock_shared(1)", false},
	{"SELECT pg_notify('ch', 'x')", false},
	{"SELECT set_config('a.b', 'c', false)", false},
	{"SELECT lo_create(0)", false},
	{"SELECT lo_unlink(42)", false},
	{"SELECT txid_current()", false},
	{"SELECT pg_current_xact_id()", false},
	{"SELECT id, nextval ( 's' ) FROM t", false},
	{"SELECT * FROM t WHERE id = (SELECT nextval('s'))", false},
	{"SELECT * FROM t FOR UPDATE", false},
	{"select * from t for update skip locked", false},
	{"SELECT * FROM t FOR NO KEY UPDATE", false},
	{"SELECT * FROM t FOR SHARE", false},
	{"SELECT * FROM t FOR KEY SHARE", false},
	{"SELECT * FROM t FOR UPDATE OF t NOWAIT", false},
	{"SELECT * FROM (SELECT * FROM t FOR UPDATE) s", false},
	{"SELECT * FROM t LIMIT 1 FOR SHARE", false},
	{"SELECT a INTO new_t FROM t", false},
	{"SELECT * INTO TEMP x FROM t", false},
	{"SELECT a, b INTO UNLOGGED TABLE n FROM t", false},
	{"WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", false},
	{"WITH x AS (UPDATE t SET a = 1 RETURNING a) SELECT count(*) FROM x", false},
	{"WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT 1", false},
	{"WITH a AS (SELECT 1), b AS (DELETE FROM t RETURNING 1) SELECT * FROM a", false},
	{"WITH x AS (SELECT 1) DELETE FROM t", false},
	{"WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", false},
	{"WITH x AS (SELECT 1) UPDATE t SET a = 2", false},
	{"WITH x AS (SELECT nextval('s')) SELECT * FROM x", false},
	{"WITH x AS (SELECT * FROM t FOR UPDATE) SELECT * FROM x", false},
	{"EXPLAIN ANALYZE DELETE FROM t", false},
	{"EXPLAIN ANALYSE UPDATE t SET a = 1", false},
	{"EXPLAIN (ANALYZE) INSERT INTO t VALUES (1)", false},
	{"EXPLAIN (ANALYZE, BUFFERS) DELETE FROM t", false},
	{"EXPLAIN ANALYZE VERBOSE DELETE FROM t", false},
	{"EXPLAIN ANALYZE SELECT nextval('s')", false},
	{"EXPLAIN ANALYZE WITH x AS (DELETE FROM t RETURNING 1) SELECT * FROM x", false},
	{"EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE", false},
	{"SELECT 1; DELETE FROM t", false},
	{"DELETE FROM t; SELECT 1", false},
	{"SELECT 1; SELECT nextval('s')", false},
	{"SELECT 1; BEGIN", false},
	{"SELECT my_func(1)", false},
	{"SELECT app.do_things()", false},
	{"SELECT \"Nextval\"('s')", false},
	{"SELECT * FROM my_set_returning_func()", false},
	{"SELECT 'unterminated", false},
	{"SELECT \"unterminated", false},
	{"SELECT $$ unterminated", false},
	{"SELECT 1 /* unterminated comment", false},
	{"SELECT E'\\'", false},
	{"SELECT 1 /* pgsluice: primary */; DELETE FROM t", false},
	{"FROM t SELECT 1", false},
	{"xyzzy", false},
};

static void check_routing(const struct routing_case *c)
{
	struct classify_result r;
	classify_statement(c->sql, strlen(c->sql), NULL, &r);
	ck_assert_msg(r.read_only == c->read_only, "%s: expected %s, got %s (%s)", c->sql,
		      c->read_only ? "read-only" : "primary", r.read_only ? "read-only" : "primary",
		      r.reason_text);
	ck_assert_ptr_nonnull(r.reason);
}

START_TEST(test_read_only_statements)
{
	check_routing(&read_cases[_i]);
}
END_TEST

START_TEST(test_write_statements)
{
	check_routing(&write_cases[_i]);
}
END_TEST

START_TEST(test_case_count)
{
	size_t n = sizeof(read_cases) / sizeof(read_cases[0]) +
		   sizeof(write_cases) / sizeof(write_cases[0]);
	ck_assert_uint_ge(n, 150);
}
END_TEST

static struct classify_result classify(const char *sql, const struct classify_options *opts)
{
	struct classify_result r;
	classify_statement(sql, strlen(sql), opts, &r);
	return r;
}

START_TEST(test_reason_names_the_culprit)
{
	struct classify_result r = classify("SELECT a, NextVal('s') FROM t", NULL);
	ck_assert(!r.read_only);
	ck_assert_str_eq(r.detail, "nextval");
	ck_assert_ptr_nonnull(strstr(r.reason_text, "nextval"));

	r = classify("SELECT * FROM t FOR SHARE", NULL);
	ck_assert_ptr_nonnull(strstr(r.reason_text, "FOR SHARE"));

	r = classify("SELECT f(1)", NULL);
	ck_assert_str_eq(r.detail, "f");
	ck_assert_ptr_nonnull(strstr(r.reason_text, "unknown function"));

	r = classify("SELECT 1", NULL);
	ck_assert(r.read_only);
	ck_assert_str_eq(r.reason, "read-only SELECT");
}
END_TEST

START_TEST(test_kinds)
{
	static const struct {
		const char *sql;
		enum classify_kind kind;
	} cases[] = {
		{"  -- c\n select 1", CLASSIFY_SELECT},
		{"(SELECT 1)", CLASSIFY_SELECT},
		{"INSERT INTO t VALUES (1)", CLASSIFY_INSERT},
		{"update t set a = 1", CLASSIFY_UPDATE},
		{"DELETE FROM t", CLASSIFY_DELETE},
		{"MERGE INTO t USING u ON true WHEN MATCHED THEN DO NOTHING", CLASSIFY_MERGE},
		{"WITH x AS (SELECT 1) SELECT 1", CLASSIFY_WITH},
		{"VALUES (1)", CLASSIFY_VALUES},
		{"TABLE t", CLASSIFY_TABLE},
		{"SHOW ALL", CLASSIFY_SHOW},
		{"EXPLAIN SELECT 1", CLASSIFY_EXPLAIN},
		{"BEGIN", CLASSIFY_BEGIN},
		{"START TRANSACTION", CLASSIFY_START},
		{"COMMIT", CLASSIFY_COMMIT},
		{"END", CLASSIFY_COMMIT},
		{"ROLLBACK", CLASSIFY_ROLLBACK},
		{"ABORT", CLASSIFY_ROLLBACK},
		{"ROLLBACK TO SAVEPOINT s", CLASSIFY_ROLLBACK},
		{"COMMIT PREPARED 'x'", CLASSIFY_OTHER},
		{"ROLLBACK PREPARED 'x'", CLASSIFY_OTHER},
		{"SAVEPOINT s", CLASSIFY_SAVEPOINT},
		{"RELEASE s", CLASSIFY_RELEASE},
		{"PREPARE TRANSACTION 'x'", CLASSIFY_PREPARE_TRANSACTION},
		{"SET a = 1", CLASSIFY_SET},
		{"RESET a", CLASSIFY_RESET},
		{"DISCARD ALL", CLASSIFY_DISCARD},
		{"DEALLOCATE ALL", CLASSIFY_DEALLOCATE},
		{"PREPARE p AS SELECT 1", CLASSIFY_PREPARE},
		{"EXECUTE p", CLASSIFY_EXECUTE},
		{"LISTEN c", CLASSIFY_LISTEN},
		{"UNLISTEN c", CLASSIFY_UNLISTEN},
		{"NOTIFY c", CLASSIFY_NOTIFY},
		{"COPY t TO STDOUT", CLASSIFY_COPY},
		{"DECLARE c CURSOR FOR SELECT 1", CLASSIFY_DECLARE},
		{"FETCH c", CLASSIFY_FETCH},
		{"CLOSE c", CLASSIFY_CLOSE},
		{"CALL p()", CLASSIFY_CALL},
		{"DO $$ $$", CLASSIFY_DO},
		{"VACUUM", CLASSIFY_OTHER},
		{"/* nothing */ ;", CLASSIFY_EMPTY},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct classify_result r = classify(cases[i].sql, NULL);
		ck_assert_msg(r.kind == cases[i].kind, "%s: kind %s", cases[i].sql,
			      classify_kind_name(r.kind));
	}
	ck_assert_str_eq(classify_kind_name(CLASSIFY_PREPARE_TRANSACTION), "PREPARE TRANSACTION");
	ck_assert_str_eq(classify_kind_name(CLASSIFY_SELECT), "SELECT");
}
END_TEST

START_TEST(test_statement_count_and_transaction_control)
{
	struct classify_result r = classify("SELECT 1; ; SELECT 2;", NULL);
	ck_assert_uint_eq(r.statement_count, 2);
	r = classify("", NULL);
	ck_assert_uint_eq(r.statement_count, 0);
	ck_assert(r.kind == CLASSIFY_EMPTY);
	r = classify("SAVEPOINT a", NULL);
	ck_assert(r.is_transaction_control);
	r = classify("PREPARE TRANSACTION 'g'", NULL);
	ck_assert(r.is_transaction_control);
	r = classify("SELECT 1", NULL);
	ck_assert(!r.is_transaction_control);
	r = classify("SET LOCAL work_mem = '64MB'", NULL);
	ck_assert(r.set_local);
	r = classify("SET work_mem = '64MB'", NULL);
	ck_assert(!r.set_local);
	r = classify("SET SESSION work_mem = '64MB'", NULL);
	ck_assert(!r.set_local);
}
END_TEST

START_TEST(test_hints)
{
	static const struct {
		const char *sql;
		enum classify_hint hint;
	} cases[] = {
		{"SELECT 1 /* pgsluice: primary */", CLASSIFY_HINT_PRIMARY},
		{"/* pgsluice: replica */ SELECT nextval('s')", CLASSIFY_HINT_REPLICA},
		{"/*pgsluice:replica*/SELECT 1", CLASSIFY_HINT_REPLICA},
		{"/*   PgSluice :  PRIMARY  */ SELECT 1", CLASSIFY_HINT_PRIMARY},
		{"SELECT 1 -- pgsluice: replica", CLASSIFY_HINT_REPLICA},
		{"SELECT 1 -- pgsluice: replica\n", CLASSIFY_HINT_REPLICA},
		{"/* pgsluice: replica */ /* pgsluice: primary */ SELECT 1", CLASSIFY_HINT_PRIMARY},
		{"SELECT 1; /* pgsluice: replica */ SELECT 2", CLASSIFY_HINT_REPLICA},
		{"SELECT '/* pgsluice: primary */'", CLASSIFY_HINT_NONE},
		{"SELECT $$ -- pgsluice: replica $$", CLASSIFY_HINT_NONE},
		{"SELECT \"/* pgsluice: replica */\"", CLASSIFY_HINT_NONE},
		{"/* pgsluice: replica please */ SELECT 1", CLASSIFY_HINT_NONE},
		{"/* route to pgsluice: replica */ SELECT 1", CLASSIFY_HINT_NONE},
		{"/* pgsluice replica */ SELECT 1", CLASSIFY_HINT_NONE},
		{"/* pgsluice: standby */ SELECT 1", CLASSIFY_HINT_NONE},
		/* The outer comment holds more than the hint. */
		{"/* outer /* pgsluice: replica */ */ SELECT 1", CLASSIFY_HINT_NONE},
		{"SELECT 1", CLASSIFY_HINT_NONE},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct classify_result r = classify(cases[i].sql, NULL);
		ck_assert_msg(r.hint == cases[i].hint, "%s: hint %d", cases[i].sql, (int)r.hint);
	}
	/* A hint does not change the classification itself; the router weighs it. */
	struct classify_result r = classify("/* pgsluice: replica */ DELETE FROM t", NULL);
	ck_assert(!r.read_only);
	ck_assert(r.hint == CLASSIFY_HINT_REPLICA);
}
END_TEST

START_TEST(test_begin_read_only)
{
	static const struct {
		const char *sql;
		bool read_only_tx;
	} cases[] = {
		{"BEGIN READ ONLY", true},
		{"begin read only;", true},
		{"BEGIN TRANSACTION READ ONLY", true},
		{"BEGIN WORK READ ONLY", true},
		{"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", true},
		{"BEGIN READ ONLY ISOLATION LEVEL SERIALIZABLE DEFERRABLE", true},
		{"START TRANSACTION READ ONLY", true},
		{"START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY", true},
		{"BEGIN READ ONLY; SELECT 1; COMMIT", true},
		{"BEGIN READ ONLY; SELECT 1; SAVEPOINT a; SELECT 2; RELEASE a; ROLLBACK", true},
		{"BEGIN", false},
		{"BEGIN READ WRITE", false},
		{"BEGIN ISOLATION LEVEL SERIALIZABLE", false},
		{"BEGIN READ ONLY, READ WRITE", false},
		{"BEGIN READ ONLY; DELETE FROM t; COMMIT", false},
		{"BEGIN READ ONLY; SELECT nextval('s')", false},
		{"BEGIN READ ONLY; COMMIT; DELETE FROM t", false},
		{"BEGIN /* READ ONLY */", false},
		{"BEGIN 'READ ONLY'", false},
		{"SELECT 1; BEGIN READ ONLY", false},
		{"START TRANSACTION", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct classify_result r = classify(cases[i].sql, NULL);
		ck_assert_msg(r.begin_read_only == cases[i].read_only_tx, "%s: begin_read_only %d",
			      cases[i].sql, r.begin_read_only);
		ck_assert_msg(!r.read_only, "%s: a transaction start is never read_only itself",
			      cases[i].sql);
	}
}
END_TEST

START_TEST(test_configured_functions)
{
	static const char *const writes[] = {"audit_log", "billing.charge"};
	static const char *const reads[] = {"my_func", "reports.summary"};
	struct classify_options opts = {
		.write_functions = writes,
		.n_write_functions = 2,
		.read_only_functions = reads,
		.n_read_only_functions = 2,
	};
	ck_assert(classify("SELECT my_func(1)", &opts).read_only);
	ck_assert(classify("SELECT MY_FUNC(1)", &opts).read_only);
	ck_assert(classify("SELECT public.my_func(1)", &opts).read_only);
	ck_assert(classify("SELECT reports.summary()", &opts).read_only);
	ck_assert(!classify("SELECT other.summary()", &opts).read_only);
	ck_assert(!classify("SELECT summary()", &opts).read_only);
	ck_assert(!classify("SELECT other_func(1)", &opts).read_only);
	ck_assert(!classify("SELECT audit_log('x')", &opts).read_only);
	ck_assert(!classify("SELECT x.audit_log('x')", &opts).read_only);
	ck_assert(!classify("SELECT billing.charge(1)", &opts).read_only);
	ck_assert(!classify("SELECT \"My_Func\"(1)", &opts).read_only);
	ck_assert(!classify("SELECT nextval('s')", &opts).read_only);

	opts.unknown_functions_readonly = true;
	ck_assert(classify("SELECT other_func(1)", &opts).read_only);
	ck_assert(classify("SELECT summary()", &opts).read_only);
	ck_assert(!classify("SELECT audit_log('x')", &opts).read_only);
	ck_assert(!classify("SELECT billing.charge(1)", &opts).read_only);
	ck_assert(!classify("SELECT pg_advisory_lock(1)", &opts).read_only);
	ck_assert(!classify("SELECT lo_import('/tmp/x')", &opts).read_only);
	ck_assert(!classify("SELECT other_func(1) FOR UPDATE", &opts).read_only);
}
END_TEST

START_TEST(test_session_set)
{
	static const struct {
		const char *sql;
		enum classify_set kind;
		const char *name, *value;
	} cases[] = {
		{"SET search_path = app, public", CLASSIFY_SET_VALUE, "search_path", "app , public"},
		{"set SESSION Search_Path TO \"My\"\"S\", 'x' -- c", CLASSIFY_SET_VALUE, "search_path",
		 "\"My\"\"S\" , 'x'"},
		{"SET statement_timeout = '5s'", CLASSIFY_SET_VALUE, "statement_timeout", "'5s'"},
		{"SET work_mem TO 65536", CLASSIFY_SET_VALUE, "work_mem", "65536"},
		{"SET myapp.tenant = /* x */ 42", CLASSIFY_SET_VALUE, "myapp.tenant", "42"},
		{"SET \"MyApp\".\"Key\" TO on", CLASSIFY_SET_VALUE, "MyApp.Key", "on"},
		{"SET extra_float_digits = -1", CLASSIFY_SET_VALUE, "extra_float_digits", "- 1"},
		{"SET search_path TO DEFAULT", CLASSIFY_SET_DEFAULT, "search_path", NULL},
		{"RESET search_path", CLASSIFY_SET_DEFAULT, "search_path", NULL},
		{"RESET ALL", CLASSIFY_SET_NONE, NULL, NULL},
		{"SET LOCAL search_path = x", CLASSIFY_SET_NONE, NULL, NULL},
		{"SET ROLE app", CLASSIFY_SET_NONE, NULL, NULL},
		{"SET SESSION AUTHORIZATION app", CLASSIFY_SET_NONE, NULL, NULL},
		{"SET TIME ZONE 'UTC'", CLASSIFY_SET_NONE, NULL, NULL},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", CLASSIFY_SET_NONE, NULL, NULL},
		{"SET search_path = $1", CLASSIFY_SET_NONE, NULL, NULL},
		{"SET search_path =", CLASSIFY_SET_NONE, NULL, NULL},
		{"SET search_path = 'open", CLASSIFY_SET_NONE, NULL, NULL},
		{"SELECT 1", CLASSIFY_SET_NONE, NULL, NULL},
		{"RESET search_path extra", CLASSIFY_SET_NONE, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[CLASSIFY_NAME_MAX], value[256];
		enum classify_set k = classify_session_set(cases[i].sql, strlen(cases[i].sql), name,
							   value, sizeof(value));
		ck_assert_msg(k == cases[i].kind, "%s: kind %d", cases[i].sql, (int)k);
		if (k != CLASSIFY_SET_NONE)
			ck_assert_str_eq(name, cases[i].name);
		if (k == CLASSIFY_SET_VALUE)
			ck_assert_str_eq(value, cases[i].value);
	}
	char name[CLASSIFY_NAME_MAX], small[8];
	ck_assert(classify_session_set("SET a = 'longer than eight'", 27, name, small,
				       sizeof(small)) == CLASSIFY_SET_NONE);
}
END_TEST

START_TEST(test_deallocate_and_discard)
{
	static const struct {
		const char *sql;
		enum classify_dealloc kind;
		const char *name;
	} cases[] = {
		{"DEALLOCATE s1", CLASSIFY_DEALLOC_NAME, "s1"},
		{"deallocate prepare /* c */ MyStmt", CLASSIFY_DEALLOC_NAME, "mystmt"},
		{"DEALLOCATE \"MyStmt\"", CLASSIFY_DEALLOC_NAME, "MyStmt"},
		{"DEALLOCATE ALL", CLASSIFY_DEALLOC_ALL, NULL},
		{"DEALLOCATE PREPARE all", CLASSIFY_DEALLOC_ALL, NULL},
		{"DEALLOCATE", CLASSIFY_DEALLOC_NONE, NULL},
		{"DEALLOCATE a b", CLASSIFY_DEALLOC_NONE, NULL},
		{"DEALLOCATE 'a'", CLASSIFY_DEALLOC_NONE, NULL},
		{"SELECT 1", CLASSIFY_DEALLOC_NONE, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[CLASSIFY_NAME_MAX];
		enum classify_dealloc k =
			classify_deallocate(cases[i].sql, strlen(cases[i].sql), name);
		ck_assert_msg(k == cases[i].kind, "%s: kind %d", cases[i].sql, (int)k);
		if (k == CLASSIFY_DEALLOC_NAME)
			ck_assert_str_eq(name, cases[i].name);
	}
	ck_assert(classify_is_discard_all("DISCARD ALL", 11));
	ck_assert(classify_is_discard_all("discard /* x */ all", 19));
	ck_assert(!classify_is_discard_all("DISCARD PLANS", 13));
	ck_assert(!classify_is_discard_all("DISCARD ALL x", 13));
	ck_assert(!classify_is_discard_all("SELECT 'DISCARD ALL'", 20));
}
END_TEST

START_TEST(test_session_state)
{
	static const struct {
		const char *sql;
		enum classify_state state;
	} cases[] = {
		{"LISTEN jobs", CLASSIFY_STATE_LISTEN},
		{"listen \"Jobs\"", CLASSIFY_STATE_LISTEN},
		{"SELECT pg_advisory_lock(1)", CLASSIFY_STATE_ADVISORY_LOCK},
		{"select pg_catalog.pg_try_advisory_lock (1, 2)", CLASSIFY_STATE_ADVISORY_LOCK},
		{"SELECT x FROM t WHERE pg_advisory_lock_shared(t.id) IS NOT NULL",
		 CLASSIFY_STATE_ADVISORY_LOCK},
		{"SELECT pg_try_advisory_lock_shared(7)", CLASSIFY_STATE_ADVISORY_LOCK},
		{"SELECT pg_advisory_xact_lock(1)", CLASSIFY_STATE_NONE},
		{"SELECT pg_try_advisory_xact_lock_shared(1)", CLASSIFY_STATE_NONE},
		{"SELECT pg_advisory_unlock(1)", CLASSIFY_STATE_NONE},
		{"SELECT 'pg_advisory_lock(1)'", CLASSIFY_STATE_NONE},
		{"SELECT pg_advisory_lock", CLASSIFY_STATE_NONE},
		{"CREATE TEMP TABLE t (a int)", CLASSIFY_STATE_TEMP_OBJECT},
		{"create temporary sequence s", CLASSIFY_STATE_TEMP_OBJECT},
		{"CREATE OR REPLACE TEMP VIEW v AS SELECT 1", CLASSIFY_STATE_TEMP_OBJECT},
		{"CREATE LOCAL TEMPORARY TABLE t AS SELECT 1", CLASSIFY_STATE_TEMP_OBJECT},
		{"CREATE GLOBAL TEMP TABLE t (a int)", CLASSIFY_STATE_TEMP_OBJECT},
		{"SELECT 1 AS a INTO TEMP t", CLASSIFY_STATE_TEMP_OBJECT},
		{"CREATE TABLE temp (a int)", CLASSIFY_STATE_NONE},
		{"CREATE UNLOGGED TABLE t (a int)", CLASSIFY_STATE_NONE},
		{"INSERT INTO temp VALUES (1)", CLASSIFY_STATE_NONE},
		{"DECLARE c CURSOR WITH HOLD FOR SELECT 1", CLASSIFY_STATE_HOLD_CURSOR},
		{"declare c binary no scroll cursor with hold for select 1",
		 CLASSIFY_STATE_HOLD_CURSOR},
		{"DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1", CLASSIFY_STATE_NONE},
		{"DECLARE c CURSOR FOR WITH hold AS (SELECT 1) SELECT * FROM hold",
		 CLASSIFY_STATE_NONE},
		{"SELECT 1", CLASSIFY_STATE_NONE},
		{"NOTIFY jobs", CLASSIFY_STATE_NONE},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum classify_state k = classify_session_state(cases[i].sql, strlen(cases[i].sql));
		ck_assert_msg(k == cases[i].state, "%s: state %d", cases[i].sql, (int)k);
	}
}
END_TEST

START_TEST(test_lex_errors)
{
	static const char *const bad[] = {
		"SELECT 'abc", "SELECT E'abc\\'", "SELECT \"abc", "SELECT $x$ abc $y$",
		"SELECT 1 /* a /* b */",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct classify_result r;
		ck_assert_msg(!classify_statement(bad[i], strlen(bad[i]), NULL, &r), "%s", bad[i]);
		ck_assert(r.lex_error);
		ck_assert(!r.read_only);
	}
	struct classify_result r;
	ck_assert(classify_statement("SELECT 'a''b'", 13, NULL, &r));
	ck_assert(!r.lex_error);
	/* The length bounds the text: a NUL-free buffer without a terminator. */
	const char buf[] = {'S', 'E', 'L', 'E', 'C', 'T', ' ', '1'};
	ck_assert(classify_statement(buf, sizeof(buf), NULL, &r));
	ck_assert(r.read_only);
	/* A quote cut by the length is an error, even if the buffer goes on. */
	ck_assert(!classify_statement("SELECT 'x' ", 9, NULL, &r));
}
END_TEST

START_TEST(test_deep_nesting_is_unsure)
{
	char sql[1024];
	size_t n = (size_t)snprintf(sql, sizeof(sql), "SELECT ");
	for (int i = 0; i < CLASSIFY_MAX_DEPTH + 10; i++)
		sql[n++] = '(';
	sql[n++] = '1';
	for (int i = 0; i < CLASSIFY_MAX_DEPTH + 10; i++)
		sql[n++] = ')';
	struct classify_result r;
	classify_statement(sql, n, NULL, &r);
	ck_assert(!r.read_only);
}
END_TEST

/* Pairs that must share a fingerprint. */
static const char *const same_fingerprint[][2] = {
	{"SELECT * FROM t WHERE id = 42", "select *  from t where id=7"},
	{"SELECT * FROM t WHERE id = 42", "SELECT * FROM t WHERE id = $1"},
	{"SELECT * FROM t WHERE name = 'bob'", "SELECT * FROM t WHERE name = E'al\\'ice'"},
	{"SELECT * FROM t WHERE name = 'x'", "SELECT * FROM t WHERE name = $q$x$q$"},
	{"SELECT * FROM t WHERE a = -1", "SELECT * FROM t WHERE a = 5"},
	{"SELECT * FROM t WHERE a = 1.5e3", "SELECT * FROM t WHERE a = 0x10"},
	{"SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (4)"},
	{"SELECT * FROM t WHERE id IN ($1, $2)", "SELECT * FROM t WHERE id in (1,2,3,4,5,6)"},
	{"SELECT ARRAY[1, 2, 3]", "select array[4]"},
	{"SELECT 1 -- comment", "/* c */ SELECT 2"},
	{"SELECT 1;", "SELECT 1"},
	{"SELECT\n\t1", "SELECT 1"},
	{"SELECT a FROM T", "select A from t"},
	{"SELECT count(*) FROM t", "SELECT COUNT( * ) FROM t"},
	{"SELECT x::int FROM t", "SELECT x :: int FROM t"},
	{"SELECT t.a FROM t", "SELECT t . a FROM t"},
	{"INSERT INTO t (a, b) VALUES (1, 'x')", "insert into t(a,b) values (2, 'y')"},
	{"UPDATE t SET a = 1 WHERE b = 2", "UPDATE t SET a = 3 WHERE b = 4"},
	{"SELECT interval '1 day'", "SELECT interval '2 days'"},
	{"SELECT 'a' || 'b'", "SELECT 'c' || 'd'"},
	{"SELECT * FROM t LIMIT 10 OFFSET 20", "SELECT * FROM t LIMIT 5 OFFSET 0"},
	{"SELECT B'101'", "SELECT X'ff'"},
	{"SELECT 0o17 + 0b101", "SELECT 1_000_000 + 0xDEAD_BEEF"},
	{"SELECT U&'x'", "SELECT 'y'"},
};

/* Pairs that must not. */
static const char *const different_fingerprint[][2] = {
	{"SELECT * FROM t WHERE id = 1", "SELECT * FROM u WHERE id = 1"},
	{"SELECT a FROM t", "SELECT b FROM t"},
	{"SELECT * FROM t WHERE a IS NULL", "SELECT * FROM t WHERE a IS NOT NULL"},
	{"SELECT * FROM t WHERE a = true", "SELECT * FROM t WHERE a = false"},
	{"SELECT * FROM t WHERE a = NULL", "SELECT * FROM t WHERE a = 1"},
	{"SELECT \"A\" FROM t", "SELECT a FROM t"},
	{"SELECT * FROM t WHERE id IN (1, 2)", "SELECT * FROM t WHERE id IN (SELECT 1)"},
	{"SELECT * FROM t WHERE id IN (1, a)", "SELECT * FROM t WHERE id IN (1)"},
	{"SELECT 1", "SELECT 1; SELECT 2"},
	{"SELECT * FROM t ORDER BY a", "SELECT * FROM t ORDER BY a DESC"},
	{"DELETE FROM t", "SELECT * FROM t"},
	{"SELECT a - 1 FROM t", "SELECT a + 1 FROM t"},
};

/* Exact normalized texts. */
static const char *const normalized[][2] = {
	{"SELECT * FROM t WHERE id = 42", "select * from t where id = ?"},
	{"select *  from t where id=7", "select * from t where id = ?"},
	{"SELECT * FROM t WHERE id IN (1, 2, 3)", "select * from t where id in (?)"},
	{"SELECT * FROM t WHERE a = TRUE AND b IS NULL", "select * from t where a = true and b is null"},
	{"SELECT count(*) FROM \"My Table\"", "select count(*) from \"My Table\""},
	{"SELECT x::text, ARRAY[1,2] FROM s.t", "select x::text, array[?] from s.t"},
	{"SELECT -5, a - 5", "select ?, a - ?"},
	{"SELECT $1, $2", "select ?, ?"},
	{"SELECT 1; SELECT 'a';", "select ?; select ?"},
	{"/* c */ SELECT 1 -- d", "select ?"},
	{"", ""},
	{"INSERT INTO t (a, b) VALUES ($1, $2)", "insert into t(a, b) values (?, ?)"},
};

START_TEST(test_fingerprint_same)
{
	const char *a = same_fingerprint[_i][0], *b = same_fingerprint[_i][1];
	char na[256], nb[256];
	uint64_t ha = classify_fingerprint(a, strlen(a), na, sizeof(na), NULL);
	uint64_t hb = classify_fingerprint(b, strlen(b), nb, sizeof(nb), NULL);
	ck_assert_msg(ha == hb, "'%s' -> '%s' vs '%s' -> '%s'", a, na, b, nb);
	ck_assert_str_eq(na, nb);
}
END_TEST

START_TEST(test_fingerprint_different)
{
	const char *a = different_fingerprint[_i][0], *b = different_fingerprint[_i][1];
	char na[256], nb[256];
	uint64_t ha = classify_fingerprint(a, strlen(a), na, sizeof(na), NULL);
	uint64_t hb = classify_fingerprint(b, strlen(b), nb, sizeof(nb), NULL);
	ck_assert_msg(ha != hb, "'%s' and '%s' both -> '%s'", a, b, na);
	ck_assert_str_ne(na, nb);
}
END_TEST

START_TEST(test_fingerprint_text)
{
	const char *sql = normalized[_i][0];
	char norm[256];
	size_t len = 0;
	classify_fingerprint(sql, strlen(sql), norm, sizeof(norm), &len);
	ck_assert_str_eq(norm, normalized[_i][1]);
	ck_assert_uint_eq(len, strlen(normalized[_i][1]));
}
END_TEST

START_TEST(test_fingerprint_count)
{
	size_t n = sizeof(same_fingerprint) / sizeof(same_fingerprint[0]) +
		   sizeof(different_fingerprint) / sizeof(different_fingerprint[0]) +
		   sizeof(normalized) / sizeof(normalized[0]);
	ck_assert_uint_ge(n, 40);
}
END_TEST

START_TEST(test_fingerprint_truncation)
{
	const char *sql = "SELECT aaaa, bbbb, cccc FROM tttt";
	char whole[128], small[10];
	size_t whole_len, small_len;
	uint64_t h1 = classify_fingerprint(sql, strlen(sql), whole, sizeof(whole), &whole_len);
	uint64_t h2 = classify_fingerprint(sql, strlen(sql), small, sizeof(small), &small_len);
	ck_assert(h1 == h2);
	ck_assert_uint_eq(whole_len, small_len);
	ck_assert_uint_ge(small_len, sizeof(small));
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_int_eq(strncmp(small, whole, sizeof(small) - 1), 0);
	ck_assert(classify_fingerprint(sql, strlen(sql), NULL, 0, NULL) == h1);

	/* A cut never splits a UTF-8 character. */
	const char *utf = "SELECT \"\xc3\xa9\xc3\xa9\xc3\xa9\" FROM t";
	char cut[11];
	classify_fingerprint(utf, strlen(utf), cut, sizeof(cut), NULL);
	size_t n = strlen(cut);
	ck_assert_uint_le(n, sizeof(cut) - 1);
	ck_assert_msg(n == 0 || ((unsigned char)cut[n - 1] & 0xC0) != 0xC0, "cut in a character");
	if (n > 0 && ((unsigned char)cut[n - 1] & 0x80))
		ck_assert_msg(((unsigned char)cut[n - 2] & 0xE0) == 0xC0, "half a character");
}
END_TEST

static const char *const redactions[][2] = {
	{"SELECT * FROM t WHERE id = 42", "SELECT * FROM t WHERE id = ?"},
	{"SELECT * FROM t WHERE pw = 'hunter2'", "SELECT * FROM t WHERE pw = ?"},
	{"SELECT E'sec\\'ret', $$dollar secret$$, $t$x$t$", "SELECT ?, ?, ?"},
	{"SELECT * FROM t WHERE a = $1", "SELECT * FROM t WHERE a = $1"},
	{"SELECT 1.5, 0x1F, B'01'", "SELECT ?, ?, ?"},
	{"SELECT \"col1\" FROM t2", "SELECT \"col1\" FROM t2"},
	{"SELECT 1 /* app: checkout */", "SELECT ? /* app: checkout */"},
	{"SELECT 'ok', 'unterminated secret", "SELECT ?, ?"},
	{"INSERT INTO t VALUES (1, 'card 4111')", "INSERT INTO t VALUES (?, ?)"},
	{"", ""},
};

START_TEST(test_redact)
{
	const char *sql = redactions[_i][0];
	char out[256];
	size_t n = classify_redact(sql, strlen(sql), out, sizeof(out));
	ck_assert_str_eq(out, redactions[_i][1]);
	ck_assert_uint_eq(n, strlen(out));
}
END_TEST

START_TEST(test_redact_bounds)
{
	const char *sql = "SELECT 'secret value' FROM table_with_a_long_name";
	char out[12];
	size_t n = classify_redact(sql, strlen(sql), out, sizeof(out));
	ck_assert_uint_eq(n, strlen(out));
	ck_assert_uint_le(n, sizeof(out) - 1);
	ck_assert_ptr_null(strstr(out, "secret"));
	ck_assert_uint_eq(classify_redact(sql, strlen(sql), out, 0), 0);
	char one[1];
	ck_assert_uint_eq(classify_redact(sql, strlen(sql), one, 1), 0);
	ck_assert_int_eq(one[0], '\0');
}
END_TEST

struct insert_case {
	const char *sql;
	bool ok;
	const char *table, *columns, *values, *conflict;
	unsigned n_values, max_param;
	bool params_exact;
};

static const struct insert_case insert_cases[] = {
	{"INSERT INTO t VALUES (1)", true, "t", "", "1", "", 1, 0, true},
	{"insert into t values (1, 2);", true, "t", "", "1, 2", "", 2, 0, true},
	{"INSERT INTO t (a, b) VALUES ($1, $2)", true, "t", "(a, b)", "$1, $2", "", 2, 2, true},
	{"INSERT INTO t(a,b) VALUES($2,$1)", true, "t", "(a,b)", "$2,$1", "", 2, 2, true},
	{"INSERT INTO s.t (a) VALUES ('x')", true, "s.t", "(a)", "'x'", "", 1, 0, true},
	{"INSERT INTO \"S\".\"T\" (\"A\") VALUES (1)", true, "\"S\".\"T\"", "(\"A\")", "1", "", 1, 0,
	 true},
	{"INSERT INTO t VALUES (now(), lower('X'), 1 + 2)", true, "t", "", "now(), lower('X'), 1 + 2",
	 "", 3, 0, true},
	{"INSERT INTO t VALUES ($1::int, CAST($2 AS text))", true, "t", "", "$1::int, CAST($2 AS text)",
	 "", 2, 2, true},
	{"INSERT INTO t VALUES (DEFAULT, 1)", true, "t", "", "DEFAULT, 1", "", 2, 0, true},
	{"INSERT INTO t VALUES (ARRAY[1, 2], ROW(1, 2), '(1,2)')", true, "t", "",
	 "ARRAY[1, 2], ROW(1, 2), '(1,2)'", "", 3, 0, true},
	{"INSERT INTO t VALUES ('a, b', $$c, d$$)", true, "t", "", "'a, b', $$c, d$$", "", 2, 0, true},
	{"INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", true, "t", "", "1",
	 "ON CONFLICT DO NOTHING", 1, 0, true},
	{"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO NOTHING", true, "t", "(a)", "1",
	 "ON CONFLICT (a) DO NOTHING", 1, 0, true},
	{"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) WHERE a > 0 DO NOTHING", true, "t", "(a)", "1",
	 "ON CONFLICT (a) WHERE a > 0 DO NOTHING", 1, 0, true},
	{"INSERT INTO t VALUES (1) ON CONFLICT ON CONSTRAINT t_pkey DO NOTHING", true, "t", "", "1",
	 "ON CONFLICT ON CONSTRAINT t_pkey DO NOTHING", 1, 0, true},
	{"/* c */ INSERT INTO t VALUES (1) -- tail", true, "t", "", "1", "", 1, 0, true},
	{"INSERT INTO t VALUES ($1, $1)", true, "t", "", "$1, $1", "", 2, 1, false},
	{"INSERT INTO t VALUES ($1, $3)", true, "t", "", "$1, $3", "", 2, 3, false},
	{"INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", true, "t", "",
	 "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10", "", 10, 10, true},
	{"INSERT INTO t VALUES (f($1, $2))", true, "t", "", "f($1, $2)", "", 1, 2, true},
	{"INSERT INTO t VALUES ('$1')", true, "t", "", "'$1'", "", 1, 0, true},
	{"INSERT INTO t VALUES (E'\\'', 2)", true, "t", "", "E'\\'', 2", "", 2, 0, true},
	{"  INSERT\nINTO\tt\nVALUES\n(1)\n", true, "t", "", "1", "", 1, 0, true},
	{"INSERT INTO t VALUES ((1), (2))", true, "t", "", "(1), (2)", "", 2, 0, true},
	{"INSERT INTO t VALUES (CASE WHEN $1 THEN 1 ELSE 2 END)", true, "t", "",
	 "CASE WHEN $1 THEN 1 ELSE 2 END", "", 1, 1, true},
	/* Refused: anything a multi-row rewrite could change the meaning of. */
	{"INSERT INTO t VALUES (1), (2)", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t SELECT 1", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t DEFAULT VALUES", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t VALUES (1) RETURNING id", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 1", false, NULL, NULL, NULL, NULL,
	 0, 0, false},
	{"INSERT INTO t AS x VALUES (1)", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t OVERRIDING SYSTEM VALUE VALUES (1)", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"WITH x AS (SELECT 1) INSERT INTO t VALUES (1)", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t VALUES ((SELECT 1))", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", false, NULL, NULL, NULL, NULL, 0, 0,
	 false},
	{"INSERT INTO t VALUES (1); SELECT 1", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"SELECT 1; INSERT INTO t VALUES (1)", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t VALUES (1", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t VALUES ('x)", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t VALUES ()", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t VALUES", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO VALUES (1)", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT t VALUES (1)", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t (a VALUES (1)", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t VALUES (1) junk", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t VALUES (1) ON CONFLICT", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"UPDATE t SET a = 1", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"SELECT 'INSERT INTO t VALUES (1)'", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"COPY t FROM STDIN", false, NULL, NULL, NULL, NULL, 0, 0, false},
	{"INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING RETURNING *", false, NULL, NULL, NULL, NULL,
	 0, 0, false},
	{"INSERT INTO t (a) SELECT a FROM u", false, NULL, NULL, NULL, NULL, 0, 0, false},
};

static void expect_part(const char *sql, size_t off, size_t len, const char *want)
{
	char got[256];
	ck_assert_uint_lt(len, sizeof(got));
	memcpy(got, sql + off, len);
	got[len] = '\0';
	ck_assert_msg(strcmp(got, want) == 0, "%s: got '%s', want '%s'", sql, got, want);
}

START_TEST(test_insert_shape)
{
	const struct insert_case *c = &insert_cases[_i];
	struct insert_shape s;
	bool ok = classify_insert_shape(c->sql, strlen(c->sql), &s);
	ck_assert_msg(ok == c->ok, "%s: shape %s", c->sql, ok ? "accepted" : "refused");
	if (!ok) {
		ck_assert_uint_eq(s.n_values, 0);
		ck_assert_uint_eq(s.table_len, 0);
		return;
	}
	expect_part(c->sql, s.table_off, s.table_len, c->table);
	expect_part(c->sql, s.columns_off, s.columns_len, c->columns);
	expect_part(c->sql, s.values_off, s.values_len, c->values);
	expect_part(c->sql, s.conflict_off, s.conflict_len, c->conflict);
	ck_assert_uint_eq(s.n_values, c->n_values);
	ck_assert_uint_eq(s.max_param, c->max_param);
	ck_assert_msg(s.params_exact == c->params_exact, "%s: params_exact", c->sql);
}
END_TEST

static uint64_t batch_key(const char *sql)
{
	struct insert_shape s;
	ck_assert_msg(classify_insert_shape(sql, strlen(sql), &s), "%s", sql);
	return s.batch_key;
}

START_TEST(test_batch_key)
{
	uint64_t k = batch_key("INSERT INTO T (a,b) VALUES (1,2)");
	ck_assert(k == batch_key("insert into t(a, b) values (3,4)"));
	ck_assert(k == batch_key("INSERT  INTO  t ( A , B )  VALUES ($1, $2)"));
	ck_assert(k == batch_key("/* x */ INSERT INTO t (a, b) VALUES (now(), 'x');"));
	ck_assert(k != batch_key("INSERT INTO t (b, a) VALUES (1, 2)"));
	ck_assert(k != batch_key("INSERT INTO u (a, b) VALUES (1, 2)"));
	ck_assert(k != batch_key("INSERT INTO \"T\" (a, b) VALUES (1, 2)"));
	ck_assert(k != batch_key("INSERT INTO s.t (a, b) VALUES (1, 2)"));
	ck_assert(k != batch_key("INSERT INTO t (a, b, c) VALUES (1, 2, 3)"));
	ck_assert(k != batch_key("INSERT INTO t (a, b) VALUES (1, 2) ON CONFLICT DO NOTHING"));
	ck_assert(batch_key("INSERT INTO t VALUES (1)") != batch_key("INSERT INTO t VALUES (1, 2)"));
	ck_assert(batch_key("INSERT INTO t VALUES (1) ON CONFLICT (a) DO NOTHING") !=
		  batch_key("INSERT INTO t VALUES (1) ON CONFLICT (b) DO NOTHING"));
}
END_TEST

START_TEST(test_insert_case_count)
{
	ck_assert_uint_ge(sizeof(insert_cases) / sizeof(insert_cases[0]), 50);
}
END_TEST

START_TEST(test_shift_params)
{
	char out[128];
	size_t n;
	const char *row = "$1, '$2', \"$3\", $2::int /* $4 */, $$ $1 $$";
	ck_assert(classify_shift_params(row, strlen(row), 10, out, sizeof(out), &n));
	ck_assert_str_eq(out, "$11, '$2', \"$3\", $12::int /* $4 */, $$ $1 $$");
	ck_assert_uint_eq(n, strlen(out));

	ck_assert(classify_shift_params("$9", 2, 1, out, sizeof(out), &n));
	ck_assert_str_eq(out, "$10");
	ck_assert(classify_shift_params("now()", 5, 100, out, sizeof(out), &n));
	ck_assert_str_eq(out, "now()");
	ck_assert(classify_shift_params("$1", 2, 0, out, sizeof(out), &n));
	ck_assert_str_eq(out, "$1");

	/* Too small for the longer numbers, past the protocol's limit, or not lexable. */
	char small[4];
	ck_assert(!classify_shift_params("$1, $2", 6, 100, small, sizeof(small), &n));
	ck_assert(!classify_shift_params("$65535", 6, 1, out, sizeof(out), &n));
	ck_assert(classify_shift_params("$65534", 6, 1, out, sizeof(out), &n));
	ck_assert_str_eq(out, "$65535");
	ck_assert(!classify_shift_params("'open", 5, 1, out, sizeof(out), &n));
}
END_TEST

Suite *classify_suite(void)
{
	Suite *s = suite_create("classify");
	TCase *tc = tcase_create("routing");
	tcase_add_loop_test(tc, test_read_only_statements, 0,
			    sizeof(read_cases) / sizeof(read_cases[0]));
	tcase_add_loop_test(tc, test_write_statements, 0,
			    sizeof(write_cases) / sizeof(write_cases[0]));
	tcase_add_test(tc, test_case_count);
	tcase_add_test(tc, test_reason_names_the_culprit);
	tcase_add_test(tc, test_kinds);
	tcase_add_test(tc, test_statement_count_and_transaction_control);
	tcase_add_test(tc, test_hints);
	tcase_add_test(tc, test_begin_read_only);
	tcase_add_test(tc, test_configured_functions);
	tcase_add_test(tc, test_session_set);
	tcase_add_test(tc, test_deallocate_and_discard);
	tcase_add_test(tc, test_session_state);
	tcase_add_test(tc, test_lex_errors);
	tcase_add_test(tc, test_deep_nesting_is_unsure);
	suite_add_tcase(s, tc);

	tc = tcase_create("fingerprint");
	tcase_add_loop_test(tc, test_fingerprint_same, 0,
			    sizeof(same_fingerprint) / sizeof(same_fingerprint[0]));
	tcase_add_loop_test(tc, test_fingerprint_different, 0,
			    sizeof(different_fingerprint) / sizeof(different_fingerprint[0]));
	tcase_add_loop_test(tc, test_fingerprint_text, 0, sizeof(normalized) / sizeof(normalized[0]));
	tcase_add_test(tc, test_fingerprint_count);
	tcase_add_test(tc, test_fingerprint_truncation);
	tcase_add_loop_test(tc, test_redact, 0, sizeof(redactions) / sizeof(redactions[0]));
	tcase_add_test(tc, test_redact_bounds);
	suite_add_tcase(s, tc);

	tc = tcase_create("insert_shape");
	tcase_add_loop_test(tc, test_insert_shape, 0, sizeof(insert_cases) / sizeof(insert_cases[0]));
	tcase_add_test(tc, test_insert_case_count);
	tcase_add_test(tc, test_batch_key);
	tcase_add_test(tc, test_shift_params);
	suite_add_tcase(s, tc);
	return s;
}
