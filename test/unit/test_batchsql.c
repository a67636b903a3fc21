/*
 * test_batchsql.c - insert batching's rewriting (batchsql.c): which simple
 * queries and Parse/Bind pairs become candidates, which rows share a group,
 * the exact multi-row Query, Parse and Bind bytes, the 65535-parameter
 * bound, byte limits that leave the output buffer as it was, Bind bodies
 * cut at every byte, and CommandComplete tags.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batchsql.h"
#include "buf.h"
#include "suites.h"

#define TEST_LIMIT (16u << 20)

/* ---------- helpers ---------- */

static bool query_row(struct batchsql_row *row, const char *sql)
{
	return batchsql_candidate_from_query(row, sql, strlen(sql));
}

/* A Bind value: len -1 is NULL, else len bytes at data. */
struct test_value {
	int32_t len;
	const char *data;
};

/*
 * A Bind body: unnamed portal and statement, the given format codes, values
 * and result format codes.
 */
static void put_bind(struct obuf *ob, const uint16_t *formats, uint16_t n_formats,
		     const struct test_value *values, uint16_t n_values, const uint16_t *results,
		     uint16_t n_results)
{
	obuf_put_u8(ob, 0);
	obuf_put_u8(ob, 0);
	obuf_put_u16(ob, n_formats);
	for (uint16_t i = 0; i < n_formats; i++)
		obuf_put_u16(ob, formats[i]);
	obuf_put_u16(ob, n_values);
	for (uint16_t i = 0; i < n_values; i++) {
		obuf_put_u32(ob, (uint32_t)values[i].len);
		if (values[i].len > 0)
			obuf_put(ob, values[i].data, (size_t)values[i].len);
	}
	obuf_put_u16(ob, n_results);
	for (uint16_t i = 0; i < n_results; i++)
		obuf_put_u16(ob, results[i]);
	ck_assert(!ob->failed);
}

static bool ext_row(struct batchsql_row *row, const char *sql, const uint32_t *types,
		    uint16_t n_types, const uint16_t *formats, uint16_t n_formats,
		    const struct test_value *values, uint16_t n_values)
{
	struct obuf ob;
	obuf_init(&ob, TEST_LIMIT);
	put_bind(&ob, formats, n_formats, values, n_values, NULL, 0);
	bool ok = batchsql_candidate_from_extended(row, sql, strlen(sql), types, n_types, ob.data,
						   ob.len);
	obuf_free(&ob);
	return ok;
}

/* n NULL values, for rows whose values do not matter. */
static bool ext_row_nulls(struct batchsql_row *row, const char *sql, uint16_t n)
{
	struct test_value *v = calloc(n > 0 ? n : 1, sizeof(*v));
	ck_assert_ptr_nonnull(v);
	for (uint16_t i = 0; i < n; i++)
		v[i].len = -1;
	bool ok = ext_row(row, sql, NULL, 0, NULL, 0, v, n);
	free(v);
	return ok;
}

static bool same(const char *a, const char *b)
{
	struct batchsql_row ra, rb;
	ck_assert_msg(query_row(&ra, a), "%s", a);
	ck_assert_msg(query_row(&rb, b), "%s", b);
	bool s = batchsql_same_group(&ra, &rb);
	ck_assert_msg(s == (ra.group_key == rb.group_key), "%s / %s: key disagrees", a, b);
	batchsql_row_free(&ra);
	batchsql_row_free(&rb);
	return s;
}

/* Reads the message at *p in ob: checks its type and length, returns its body. */
static const uint8_t *take_msg(const struct obuf *ob, size_t *p, char type, size_t *body_len)
{
	ck_assert_uint_le(*p + 5, ob->len);
	ck_assert_int_eq(ob->data[*p], type);
	const uint8_t *h = ob->data + *p + 1;
	size_t len = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
	ck_assert_uint_ge(len, 4);
	ck_assert_uint_le(*p + 1 + len, ob->len);
	*body_len = len - 4;
	*p += 1 + len;
	return h + 4;
}

static void expect_query(const struct obuf *ob, size_t *p, const char *sql)
{
	size_t n;
	const uint8_t *body = take_msg(ob, p, 'Q', &n);
	ck_assert_uint_eq(n, strlen(sql) + 1);
	ck_assert_msg(memcmp(body, sql, n) == 0, "got '%.*s', want '%s'", (int)n, body, sql);
}

static void expect_execute_sync(const struct obuf *ob, size_t *p)
{
	size_t n;
	const uint8_t *body = take_msg(ob, p, 'E', &n);
	static const uint8_t exec[] = {0, 0, 0, 0, 0};
	ck_assert_uint_eq(n, sizeof(exec));
	ck_assert(memcmp(body, exec, n) == 0);
	take_msg(ob, p, 'S', &n);
	ck_assert_uint_eq(n, 0);
}

/* ---------- candidates ---------- */

struct candidate_case {
	const char *sql;
	bool ok;
};

static const struct candidate_case candidate_cases[] = {
	/* Batched. */
	{"INSERT INTO t VALUES (1)", true},
	{"INSERT INTO t (a, b) VALUES (1, 'x')", true},
	{"insert into t(a,b) values(1,'x')", true},
	{"INSERT INTO t (a) VALUES (1);", true},
	{"INSERT INTO t (a) VALUES (1) ;  ", true},
	{"INSERT INTO public.t (a) VALUES (1)", true},
	{"INSERT INTO db.public.t (a) VALUES (1)", true},
	{"INSERT INTO \"my schema\".\"my table\" (\"a b\", c) VALUES (1, 2)", true},
	{"INSERT INTO \"Odd \"\"Name\"\"\" VALUES (1)", true},
	{"INSERT INTO t VALUES (now(), lower('X'), md5(random()::text))", true},
	{"INSERT INTO t VALUES (nextval('s'), 1)", true},
	{"INSERT INTO t VALUES (coalesce(NULL, 1), greatest(1, 2, 3))", true},
	{"INSERT INTO t VALUES ('2024-01-01'::date, CAST('1' AS int))", true},
	{"INSERT INTO t VALUES (DEFAULT, 1)", true},
	{"INSERT INTO t VALUES (ARRAY[1, 2], ROW(1, 'a'))", true},
	{"INSERT INTO t VALUES ('{\"k\": [1, 2]}'::jsonb)", true},
	{"INSERT INTO t VALUES ($$dollar, quoted$$, $tag$x)y$tag$)", true},
	{"INSERT INTO t VALUES (E'esc\\'aped', U&'\\0041')", true},
	{"INSERT INTO t VALUES ('it''s')", true},
	{"INSERT INTO t VALUES (-1, +2, 3.5e10, .5)", true},
	{"INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", true},
	{"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO NOTHING", true},
	{"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) WHERE a > 0 DO NOTHING", true},
	{"INSERT INTO t VALUES (1) ON CONFLICT ON CONSTRAINT t_pkey DO NOTHING", true},
	{"/* leading */ INSERT INTO t VALUES (1)", true},
	{"-- line\nINSERT INTO t VALUES (1) -- trailing", true},
	{"INSERT /* a */ INTO /* b */ t /* c */ VALUES /* d */ (1 /* e */) /* f */;", true},
	{"INSERT INTO t VALUES (1 -- inside\n)", true},
	{"\n\tINSERT\n\tINTO t\n\tVALUES (1)\n", true},
	{"INSERT INTO t VALUES ('; INSERT INTO u VALUES (2)')", true},
	{"INSERT INTO t VALUES ('RETURNING *')", true},
	{"INSERT INTO t VALUES (CASE WHEN true THEN 1 ELSE 2 END)", true},
	{"INSERT INTO t VALUES ((1 + 2) * 3)", true},
	/* Not batched. */
	{"INSERT INTO t VALUES (1) RETURNING id", false},
	{"INSERT INTO t VALUES (1) RETURNING *;", false},
	{"INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING RETURNING id", false},
	{"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2", false},
	{"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = EXCLUDED.a", false},
	{"INSERT INTO t VALUES (1) ON CONFLICT", false},
	{"INSERT INTO t SELECT 1", false},
	{"INSERT INTO t (a) SELECT a FROM u", false},
	{"INSERT INTO t VALUES ((SELECT max(a) FROM u))", false},
	{"INSERT INTO t VALUES (1), (2)", false},
	{"INSERT INTO t VALUES (1),(2);", false},
	{"WITH x AS (SELECT 1) INSERT INTO t VALUES (1)", false},
	{"WITH x AS (INSERT INTO u VALUES (1)) INSERT INTO t VALUES (2)", false},
	{"INSERT INTO t DEFAULT VALUES", false},
	{"INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", false},
	{"INSERT INTO t VALUES (1); SELECT 1", false},
	{"BEGIN; INSERT INTO t VALUES (1)", false},
	{"INSERT INTO t VALUES (1); COMMIT", false},
	{"INSERT INTO t AS x VALUES (1)", false},
	{"INSERT INTO t OVERRIDING SYSTEM VALUE VALUES (1)", false},
	{"INSERT INTO t VALUES ($1)", false},
	{"INSERT INTO t VALUES (1, $2)", false},
	{"INSERT INTO t VALUES (1", false},
	{"INSERT INTO t VALUES ('unterminated)", false},
	{"INSERT INTO t VALUES ()", false},
	{"INSERT INTO t VALUES (1) junk", false},
	{"UPDATE t SET a = 1", false},
	{"DELETE FROM t", false},
	{"SELECT 'INSERT INTO t VALUES (1)'", false},
	{"COPY t FROM STDIN", false},
	{"EXPLAIN INSERT INTO t VALUES (1)", false},
	{"PREPARE p AS INSERT INTO t VALUES (1)", false},
	{"", false},
	{";", false},
};

START_TEST(candidates_from_query_match_expectation)
{
	const struct candidate_case *c = &candidate_cases[_i];
	struct batchsql_row row;
	bool ok = query_row(&row, c->sql);
	ck_assert_msg(ok == c->ok, "%s: %s", c->sql, ok ? "batched" : "not batched");
	if (ok) {
		ck_assert_int_eq(row.protocol, BATCHSQL_SIMPLE);
		ck_assert_uint_eq(row.n_params, 0);
		ck_assert_uint_eq(row.sql_len, strlen(c->sql));
		ck_assert_str_eq(row.sql, c->sql);
		ck_assert_ptr_null(row.types);
		ck_assert_ptr_null(row.bind);
	} else {
		ck_assert_ptr_null(row.mem);
		ck_assert_ptr_null(row.sql);
	}
	batchsql_row_free(&row);
	batchsql_row_free(&row);
}
END_TEST

START_TEST(at_least_fifty_statements_are_checked)
{
	ck_assert_uint_ge(sizeof(candidate_cases) / sizeof(candidate_cases[0]), 50);
}
END_TEST

START_TEST(nul_inside_query_text_is_refused)
{
	static const char sql[] = "INSERT INTO t VALUES ('a\0b')";
	struct batchsql_row row;
	ck_assert(!batchsql_candidate_from_query(&row, sql, sizeof(sql) - 1));
	ck_assert(!batchsql_candidate_from_query(&row, sql, sizeof(sql)));
	ck_assert(batchsql_candidate_from_query(&row, "INSERT INTO t VALUES (1)", 24));
	batchsql_row_free(&row);
}
END_TEST

START_TEST(group_text_is_normalized)
{
	struct batchsql_row row;
	ck_assert(query_row(&row, "INSERT INTO S . T (A, \"B\") VALUES (1, 2) "
				  "on  Conflict DO NOTHING"));
	ck_assert_str_eq(row.group, "S\x1fs.t\x1f(a, \"B\")\x1f" "2\x1fon conflict do nothing");
	ck_assert_uint_eq(row.group_len, strlen(row.group));
	batchsql_row_free(&row);
	ck_assert(query_row(&row, "INSERT INTO t VALUES (1) "
				  "ON CONFLICT (a) WHERE a > 0 DO NOTHING"));
	ck_assert_str_eq(row.group, "S\x1ft\x1f\x1f" "1\x1fon conflict(a) where a > ? do nothing"
				    "\x1fON CONFLICT (a) WHERE a > 0 DO NOTHING");
	batchsql_row_free(&row);
}
END_TEST

/* ---------- grouping ---------- */

START_TEST(same_table_written_differently_shares_a_group)
{
	const char *base = "INSERT INTO public.events (a, b) VALUES (1, 'x')";
	ck_assert(same(base, "insert into PUBLIC.Events(A,B) values (2, 'y');"));
	ck_assert(same(base, "INSERT  INTO\tpublic . events ( a , b )\n"
			     "VALUES (now(), lower('Z'))"));
	ck_assert(same(base, "/* app */ INSERT INTO public.events /* t */ (a, b) "
			     "VALUES (3, 4) -- x"));
	ck_assert(same("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING",
		       "insert into t values ('a') on conflict do /* skip */ nothing"));
	ck_assert(same("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) WHERE a > 0 DO NOTHING",
		       "INSERT INTO t (a) VALUES (2) ON CONFLICT (a) WHERE a > 0 DO NOTHING"));
}
END_TEST

START_TEST(different_targets_are_different_groups)
{
	const char *base = "INSERT INTO public.events (a, b) VALUES (1, 'x')";
	ck_assert(!same(base, "INSERT INTO public.events (b, a) VALUES (1, 'x')"));
	ck_assert(!same(base, "INSERT INTO public.events (a, b, c) VALUES (1, 'x', 2)"));
	ck_assert(!same(base, "INSERT INTO events (a, b) VALUES (1, 'x')"));
	ck_assert(!same(base, "INSERT INTO other.events (a, b) VALUES (1, 'x')"));
	ck_assert(!same(base, "INSERT INTO public.\"Events\" (a, b) VALUES (1, 'x')"));
	ck_assert(!same(base, "INSERT INTO public.events (a, b) VALUES (1, 'x') "
			      "ON CONFLICT DO NOTHING"));
	ck_assert(!same("INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1, 2)"));
	ck_assert(!same("INSERT INTO t VALUES (1) ON CONFLICT (a) DO NOTHING",
			"INSERT INTO t VALUES (1) ON CONFLICT (b) DO NOTHING"));
	ck_assert(!same("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) WHERE a > 0 DO NOTHING",
			"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) WHERE a > 1 DO NOTHING"));
	ck_assert(!same("INSERT INTO t VALUES (1) ON CONFLICT ON CONSTRAINT c1 DO NOTHING",
			"INSERT INTO t VALUES (1) ON CONFLICT ON CONSTRAINT c2 DO NOTHING"));
}
END_TEST

START_TEST(extended_groups_follow_types_and_formats)
{
	static const struct test_value v2[] = {{1, "1"}, {1, "2"}};
	static const uint32_t int_text[] = {23, 25};
	static const uint32_t int_only[] = {23};
	static const uint32_t int_zero[] = {23, 0};
	static const uint32_t text_int[] = {25, 23};
	static const uint16_t one_binary[] = {1};
	static const uint16_t two_binary[] = {1, 1};
	static const uint16_t one_text[] = {0};
	static const uint16_t two_text[] = {0, 0};
	static const uint16_t mixed[] = {0, 1};
	const char *sql = "INSERT INTO t (a, b) VALUES ($1, $2)";
	struct batchsql_row r[12];
	ck_assert(ext_row(&r[0], sql, int_text, 2, NULL, 0, v2, 2));
	ck_assert(ext_row(&r[1], "insert into T(a,b) values ($2, $1)", int_text, 2, one_text, 1,
			  v2, 2));
	ck_assert(ext_row(&r[2], sql, int_text, 2, two_text, 2, v2, 2));
	ck_assert(ext_row(&r[3], sql, text_int, 2, NULL, 0, v2, 2));
	ck_assert(ext_row(&r[4], sql, int_text, 2, one_binary, 1, v2, 2));
	ck_assert(ext_row(&r[5], sql, int_text, 2, two_binary, 2, v2, 2));
	ck_assert(ext_row(&r[6], sql, int_text, 2, mixed, 2, v2, 2));
	ck_assert(ext_row(&r[7], sql, int_only, 1, NULL, 0, v2, 2));
	ck_assert(ext_row(&r[8], sql, int_zero, 2, NULL, 0, v2, 2));
	ck_assert(query_row(&r[9], "INSERT INTO t (a, b) VALUES (1, 2)"));
	ck_assert(ext_row(&r[10], "INSERT INTO t (a, b) VALUES (1, 2)", NULL, 0, NULL, 0, NULL, 0));
	ck_assert(ext_row(&r[11], "INSERT INTO t (a, b) VALUES (f($1, $2), $3)", int_text, 2, NULL,
			  0, (const struct test_value[]){{-1, NULL}, {-1, NULL}, {-1, NULL}}, 3));

	/* Formats: none, one for all, one each - the same when they say the same. */
	ck_assert(batchsql_same_group(&r[0], &r[1]));
	ck_assert(batchsql_same_group(&r[0], &r[2]));
	ck_assert(batchsql_same_group(&r[4], &r[5]));
	ck_assert_uint_eq(r[0].group_key, r[1].group_key);
	ck_assert_uint_eq(r[4].group_key, r[5].group_key);
	ck_assert(!batchsql_same_group(&r[0], &r[4]));
	ck_assert(!batchsql_same_group(&r[0], &r[6]));
	ck_assert(!batchsql_same_group(&r[5], &r[6]));
	/* Types, padded with 0 to the parameter count. */
	ck_assert(!batchsql_same_group(&r[0], &r[3]));
	ck_assert(batchsql_same_group(&r[7], &r[8]));
	ck_assert_uint_eq(r[7].group_key, r[8].group_key);
	ck_assert_uint_eq(r[7].n_types, 1);
	ck_assert_uint_eq(r[8].n_types, 2);
	ck_assert(!batchsql_same_group(&r[0], &r[7]));
	/* Protocols never mix; parameter counts must agree. */
	ck_assert(!batchsql_same_group(&r[9], &r[10]));
	ck_assert(r[9].group_key != r[10].group_key);
	ck_assert(!batchsql_same_group(&r[0], &r[10]));
	ck_assert(!batchsql_same_group(&r[0], &r[11]));
	for (size_t i = 0; i < 12; i++)
		batchsql_row_free(&r[i]);
}
END_TEST

/* How many of rows[0..n) one batch takes within byte_limit (batchsql_size_add in a loop). */
static size_t rows_that_fit(struct batchsql_row *const *rows, size_t n, size_t byte_limit)
{
	struct batchsql_size size = {0, 0};
	size_t k = 0;
	while (k < n && batchsql_size_add(&size, rows[k], byte_limit))
		k++;
	return k;
}

/* ---------- rewriting ---------- */

START_TEST(simple_rows_become_one_query_with_literals_verbatim)
{
	struct batchsql_row r[3];
	ck_assert(query_row(&r[0], "INSERT INTO Public.Events (a, b) VALUES (1, 'x')"));
	ck_assert(query_row(&r[1], "insert into public.events(a,b) values (now(), lower('Y'));"));
	ck_assert(query_row(&r[2], "INSERT INTO public.events (a, b) VALUES (/* c */ 3, $$z$$) "));
	struct batchsql_row *rows[] = {&r[0], &r[1], &r[2]};
	struct obuf ob;
	obuf_init(&ob, TEST_LIMIT);
	ck_assert(batchsql_build_insert(&ob, rows, 3));
	size_t p = 0;
	expect_query(&ob, &p,
		     "WITH pgsluice_batch AS (INSERT INTO Public.Events (a, b) VALUES (1, 'x'),"
		     "(now(), lower('Y')),(/* c */ 3, $$z$$) RETURNING 1) "
		     "SELECT 1 / (count(*) = 3)::int FROM pgsluice_batch");
	ck_assert_uint_eq(p, ob.len);

	obuf_reset(&ob);
	ck_assert(batchsql_build_insert(&ob, rows, 1));
	p = 0;
	expect_query(&ob, &p,
		     "WITH pgsluice_batch AS (INSERT INTO Public.Events (a, b) VALUES (1, 'x') "
		     "RETURNING 1) SELECT 1 / (count(*) = 1)::int FROM pgsluice_batch");
	obuf_free(&ob);
	for (size_t i = 0; i < 3; i++)
		batchsql_row_free(&r[i]);
}
END_TEST

START_TEST(conflict_clause_and_missing_columns_are_kept)
{
	struct batchsql_row r[2];
	ck_assert(query_row(&r[0], "INSERT INTO t VALUES (1, 'a') ON CONFLICT (id) DO NOTHING;"));
	ck_assert(query_row(&r[1], "insert into t values (2, 'b') on conflict(id) do nothing"));
	struct batchsql_row *rows[] = {&r[0], &r[1]};
	struct obuf ob;
	obuf_init(&ob, TEST_LIMIT);
	ck_assert(batchsql_build_insert(&ob, rows, 2));
	size_t p = 0;
	expect_query(&ob, &p,
		     "WITH pgsluice_batch AS (INSERT INTO t VALUES (1, 'a'),(2, 'b') "
		     "ON CONFLICT (id) DO NOTHING RETURNING 1) "
		     "SELECT 1 / (count(*) = 2)::int FROM pgsluice_batch");
	ck_assert_uint_eq(p, ob.len);
	obuf_free(&ob);
	batchsql_row_free(&r[0]);
	batchsql_row_free(&r[1]);
}
END_TEST

START_TEST(rows_of_different_groups_are_not_built)
{
	struct batchsql_row r[2];
	ck_assert(query_row(&r[0], "INSERT INTO t VALUES (1)"));
	ck_assert(query_row(&r[1], "INSERT INTO u VALUES (1)"));
	struct batchsql_row *rows[] = {&r[0], &r[1]};
	struct obuf ob;
	obuf_init(&ob, TEST_LIMIT);
	ck_assert(!batchsql_build_insert(&ob, rows, 2));
	ck_assert(!batchsql_build_insert(&ob, rows, 0));
	ck_assert_uint_eq(ob.len, 0);
	ck_assert(!ob.failed);
	obuf_free(&ob);
	batchsql_row_free(&r[0]);
	batchsql_row_free(&r[1]);
}
END_TEST

/* Three rows of (text, int given as text or NULL, int4 binary): formats 0, 0, 1. */
static const uint32_t three_types[] = {25, 23};
static const uint16_t three_formats[] = {0, 0, 1};
static const char *const three_sql[] = {
	"INSERT INTO t (a, b, c) VALUES ($1, $2::int, $3)",
	"insert into T (a,b,c) values ($2, $1, $3);",
	"INSERT INTO t(a, b, c) VALUES (lower($1), '$1', $3 + 1 /* $2 */ + $2)",
};
static const struct test_value three_values[3][3] = {
	{{3, "abc"}, {-1, NULL}, {4, "\0\0\0\x07"}},
	{{0, ""}, {2, "42"}, {-1, NULL}},
	{{-1, NULL}, {1, "9"}, {4, "\xff\xff\xff\xfe"}},
};

static void make_three(struct batchsql_row r[3])
{
	for (size_t i = 0; i < 3; i++)
		ck_assert(ext_row(&r[i], three_sql[i], three_types, 2, three_formats, 3,
				  three_values[i], 3));
}

START_TEST(extended_rows_become_parse_and_bind_with_renumbered_parameters)
{
	struct batchsql_row r[3];
	make_three(r);
	ck_assert(batchsql_same_group(&r[0], &r[1]) && batchsql_same_group(&r[0], &r[2]));
	struct batchsql_row *rows[] = {&r[0], &r[1], &r[2]};
	struct obuf ob;
	obuf_init(&ob, TEST_LIMIT);
	ck_assert(batchsql_build_insert(&ob, rows, 3));

	static const char text[] =
		"WITH pgsluice_batch AS (INSERT INTO t (a, b, c) VALUES ($1, $2::int, $3),"
		"($5, $4, $6),(lower($7), '$1', $9 + 1 /* $2 */ + $8) RETURNING 1) "
		"SELECT 1 / (count(*) = 3)::int FROM pgsluice_batch";
	struct obuf want;
	obuf_init(&want, TEST_LIMIT);
	obuf_put_u8(&want, 0);
	obuf_put(&want, text, sizeof(text));
	obuf_put_u16(&want, 9);
	for (size_t k = 0; k < 3; k++) {
		obuf_put_u32(&want, 25);
		obuf_put_u32(&want, 23);
		obuf_put_u32(&want, 0);
	}
	size_t p = 0, n;
	const uint8_t *body = take_msg(&ob, &p, 'P', &n);
	ck_assert_uint_eq(n, want.len);
	ck_assert(memcmp(body, want.data, n) == 0);

	static const uint8_t bind[] = {
		0, 0,                                         /* portal, statement */
		0, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, /* formats */
		0, 9,                                         /* values */
		0, 0, 0, 3, 'a', 'b', 'c',                    /* row 1 */
		0xff, 0xff, 0xff, 0xff,                       /* NULL */
		0, 0, 0, 4, 0, 0, 0, 7,                       /* binary 7 */
		0, 0, 0, 0,                                   /* row 2: '' */
		0, 0, 0, 2, '4', '2',                         /* '42' */
		0xff, 0xff, 0xff, 0xff,                       /* NULL */
		0xff, 0xff, 0xff, 0xff,                       /* row 3: NULL */
		0, 0, 0, 1, '9',                              /* '9' */
		0, 0, 0, 4, 0xff, 0xff, 0xff, 0xfe,           /* binary -2 */
		0, 0,                                         /* result formats */
	};
	body = take_msg(&ob, &p, 'B', &n);
	ck_assert_uint_eq(n, sizeof(bind));
	ck_assert(memcmp(body, bind, n) == 0);
	expect_execute_sync(&ob, &p);
	ck_assert_uint_eq(p, ob.len);
	obuf_free(&want);
	obuf_free(&ob);
	for (size_t i = 0; i < 3; i++)
		batchsql_row_free(&r[i]);
}
END_TEST

START_TEST(single_fallback_resends_what_the_client_sent)
{
	struct batchsql_row r[3];
	make_three(r);
	struct obuf ob;
	obuf_init(&ob, TEST_LIMIT);
	ck_assert(batchsql_build_single(&ob, &r[1]));

	struct obuf want;
	obuf_init(&want, TEST_LIMIT);
	obuf_put_u8(&want, 0);
	obuf_put_str(&want, three_sql[1]);
	obuf_put_u16(&want, 2);
	obuf_put_u32(&want, 25);
	obuf_put_u32(&want, 23);
	size_t p = 0, n;
	const uint8_t *body = take_msg(&ob, &p, 'P', &n);
	ck_assert_uint_eq(n, want.len);
	ck_assert(memcmp(body, want.data, n) == 0);
	obuf_reset(&want);
	put_bind(&want, three_formats, 3, three_values[1], 3, NULL, 0);
	body = take_msg(&ob, &p, 'B', &n);
	ck_assert_uint_eq(n, want.len);
	ck_assert(memcmp(body, want.data, n) == 0);
	expect_execute_sync(&ob, &p);
	ck_assert_uint_eq(p, ob.len);

	struct batchsql_row s;
	const char *sql = "insert into t values (1) -- as sent";
	ck_assert(query_row(&s, sql));
	obuf_reset(&ob);
	ck_assert(batchsql_build_single(&ob, &s));
	p = 0;
	expect_query(&ob, &p, sql);
	ck_assert_uint_eq(p, ob.len);
	batchsql_row_free(&s);
	obuf_free(&want);
	obuf_free(&ob);
	for (size_t i = 0; i < 3; i++)
		batchsql_row_free(&r[i]);
}
END_TEST

/* ---------- bounds ---------- */

START_TEST(parameters_stop_at_65535)
{
	struct batchsql_row one;
	ck_assert(ext_row_nulls(&one, "INSERT INTO t VALUES ($1)", 1));
	size_t n = BATCHSQL_MAX_PARAMS + 1;
	struct batchsql_row **rows = malloc(n * sizeof(*rows));
	ck_assert_ptr_nonnull(rows);
	for (size_t i = 0; i < n; i++)
		rows[i] = &one;
	ck_assert_uint_eq(rows_that_fit(rows, n, SIZE_MAX), BATCHSQL_MAX_PARAMS);

	struct obuf ob;
	obuf_init(&ob, 64u << 20);
	ck_assert(!batchsql_build_insert(&ob, rows, n));
	ck_assert_uint_eq(ob.len, 0);
	ck_assert(batchsql_build_insert(&ob, rows, BATCHSQL_MAX_PARAMS));
	size_t p = 0, len;
	const uint8_t *body = take_msg(&ob, &p, 'P', &len);
	static const char tail[] = "($65534),($65535) RETURNING 1) "
				   "SELECT 1 / (count(*) = 65535)::int FROM pgsluice_batch";
	const char *text = (const char *)body + 1;
	size_t text_len = strlen(text);
	ck_assert_uint_gt(text_len, sizeof(tail));
	ck_assert_str_eq(text + text_len - (sizeof(tail) - 1), tail);
	ck_assert_uint_eq(body[1 + text_len + 1], 0xff);
	ck_assert_uint_eq(body[1 + text_len + 2], 0xff);
	body = take_msg(&ob, &p, 'B', &len);
	ck_assert_uint_eq(len, 2 + 2 + 2 * BATCHSQL_MAX_PARAMS + 2 + 4 * BATCHSQL_MAX_PARAMS + 2);
	expect_execute_sync(&ob, &p);
	obuf_free(&ob);

	/* Wide rows: 1000 parameters each, 65 fit. */
	char *sql = malloc(16 + 8 * 1000);
	ck_assert_ptr_nonnull(sql);
	size_t o = (size_t)sprintf(sql, "INSERT INTO t VALUES (");
	for (unsigned i = 1; i <= 1000; i++)
		o += (size_t)sprintf(sql + o, i > 1 ? ", $%u" : "$%u", i);
	strcpy(sql + o, ")");
	struct batchsql_row wide;
	ck_assert(ext_row_nulls(&wide, sql, 1000));
	ck_assert_uint_eq(wide.n_params, 1000);
	for (size_t i = 0; i < 66; i++)
		rows[i] = &wide;
	ck_assert_uint_eq(rows_that_fit(rows, 66, SIZE_MAX), 65);
	rows[65] = &one;
	ck_assert_uint_eq(rows_that_fit(rows, 66, SIZE_MAX), 66);
	ck_assert_uint_eq(rows_that_fit(rows, 66, 100), 0);
	free(sql);
	batchsql_row_free(&wide);
	free(rows);
	batchsql_row_free(&one);
}
END_TEST

START_TEST(rows_that_fit_the_byte_limit_always_build)
{
	struct batchsql_row r[3];
	make_three(r);
	struct batchsql_row s[3];
	ck_assert(query_row(&s[0], "INSERT INTO t VALUES (1, 'aaaaaaaaaa')"));
	ck_assert(query_row(&s[1], "INSERT INTO t VALUES (2, 'b')"));
	ck_assert(query_row(&s[2], "INSERT INTO t VALUES (3, 'cccccccccccccccccccc')"));
	struct batchsql_row *sets[2][3] = {{&r[0], &r[1], &r[2]}, {&s[0], &s[1], &s[2]}};
	for (size_t set = 0; set < 2; set++) {
		size_t prev = 0;
		for (size_t limit = 0; limit < 1024; limit++) {
			size_t k = rows_that_fit(sets[set], 3, limit);
			ck_assert_uint_ge(k, prev);
			prev = k;
			if (k == 0)
				continue;
			struct obuf ob;
			obuf_init(&ob, limit);
			ck_assert_msg(batchsql_build_insert(&ob, sets[set], k), "limit %zu", limit);
			obuf_free(&ob);
		}
		ck_assert_uint_eq(prev, 3);
	}
	for (size_t i = 0; i < 3; i++) {
		batchsql_row_free(&r[i]);
		batchsql_row_free(&s[i]);
	}
}
END_TEST

START_TEST(a_full_buffer_is_left_as_it_was)
{
	struct batchsql_row r[3];
	make_three(r);
	struct batchsql_row *rows[] = {&r[0], &r[1], &r[2]};
	struct obuf full, single;
	obuf_init(&full, TEST_LIMIT);
	obuf_init(&single, TEST_LIMIT);
	ck_assert(batchsql_build_insert(&full, rows, 3));
	ck_assert(batchsql_build_single(&single, &r[0]));
	size_t insert_len = full.len;
	for (size_t limit = 16; limit < full.len + 6; limit++) {
		struct obuf ob;
		obuf_init(&ob, limit);
		/* Queued bytes, some already sent, must survive a failed build. */
		ck_assert(obuf_put(&ob, "0123456789abcdef", 16));
		ob.off = 10;
		/* obuf counts sent bytes it has not dropped yet against its limit. */
		size_t held = ob.len;
		bool built = batchsql_build_insert(&ob, rows, 3);
		ck_assert_msg(built == (held + insert_len <= limit), "limit %zu", limit);
		ck_assert(!ob.failed);
		ck_assert_uint_eq(obuf_pending(&ob), built ? insert_len + 6 : 6);
		ck_assert(memcmp(ob.data + ob.off, "abcdef", 6) == 0);
		obuf_reset(&ob);
		built = batchsql_build_single(&ob, &r[0]);
		ck_assert(built == (limit >= single.len));
		ck_assert_uint_eq(ob.len, built ? single.len : 0);
		obuf_free(&ob);
	}
	struct obuf ob;
	obuf_init(&ob, full.len + 6);
	ck_assert(obuf_put(&ob, "abcdef", 6));
	ck_assert(batchsql_build_insert(&ob, rows, 3));
	ck_assert(memcmp(ob.data + 6, full.data, full.len) == 0);
	ob.failed = true;
	ck_assert(!batchsql_build_insert(&ob, rows, 3));
	ck_assert(!batchsql_build_single(&ob, &r[0]));
	ck_assert_uint_eq(ob.len, full.len + 6);
	obuf_free(&ob);
	obuf_free(&single);
	obuf_free(&full);
	for (size_t i = 0; i < 3; i++)
		batchsql_row_free(&r[i]);
}
END_TEST

/* ---------- odd Bind bodies and Parse texts ---------- */

START_TEST(bind_cut_at_every_byte_is_refused)
{
	static const uint16_t results[] = {0, 0};
	struct obuf ob;
	obuf_init(&ob, TEST_LIMIT);
	put_bind(&ob, three_formats, 3, three_values[0], 3, results, 2);
	for (size_t cut = 0; cut <= ob.len + 1; cut++) {
		/* An exact-size copy, so that ASan sees any read past its end. */
		uint8_t *body = malloc(cut > 0 ? cut : 1);
		ck_assert_ptr_nonnull(body);
		memcpy(body, ob.data, cut <= ob.len ? cut : ob.len);
		if (cut > ob.len)
			body[ob.len] = 0;
		struct batchsql_row row;
		bool ok = batchsql_candidate_from_extended(&row, three_sql[0], strlen(three_sql[0]),
							   three_types, 2, body, cut);
		ck_assert_msg(ok == (cut == ob.len), "cut at %zu of %zu", cut, ob.len);
		if (!ok)
			ck_assert_ptr_null(row.mem);
		batchsql_row_free(&row);
		free(body);
	}
	obuf_free(&ob);
}
END_TEST

START_TEST(odd_binds_are_refused)
{
	static const struct test_value v[] = {{1, "1"}, {1, "2"}};
	static const uint16_t bad_code[] = {2};
	static const uint16_t three[] = {0, 0, 0};
	static const uint16_t binary_result[] = {1};
	static const uint16_t text_result[] = {0};
	static const uint32_t types3[] = {23, 23, 23};
	const char *sql = "INSERT INTO t VALUES ($1, $2)";
	struct batchsql_row row;
	struct obuf ob;
	obuf_init(&ob, TEST_LIMIT);

	ck_assert(ext_row(&row, sql, NULL, 0, NULL, 0, v, 2));
	batchsql_row_free(&row);
	ck_assert(!ext_row(&row, sql, NULL, 0, bad_code, 1, v, 2));
	ck_assert(!ext_row(&row, sql, NULL, 0, three, 3, v, 2));
	ck_assert(!ext_row(&row, sql, NULL, 0, NULL, 0, v, 1));
	ck_assert(!ext_row(&row, "INSERT INTO t VALUES ($1)", NULL, 0, NULL, 0, v, 2));
	ck_assert(!ext_row(&row, "INSERT INTO t VALUES ($1, $1)", NULL, 0, NULL, 0, v, 1));
	ck_assert(!ext_row(&row, "INSERT INTO t VALUES ($1, $3)", NULL, 0, NULL, 0, v, 2));
	ck_assert(!ext_row(&row, sql, types3, 3, NULL, 0, v, 2));
	ck_assert(!ext_row(&row, "INSERT INTO t VALUES ($1) RETURNING id", NULL, 0, NULL, 0, v, 1));
	ck_assert(!ext_row(&row, "INSERT INTO t VALUES ($1), ($2)", NULL, 0, NULL, 0, v, 2));
	ck_assert(!ext_row(&row, "SELECT $1, $2", NULL, 0, NULL, 0, v, 2));
	ck_assert(!batchsql_candidate_from_extended(&row, sql, strlen(sql), NULL, 1, NULL, 0));

	/* Result formats: text only. */
	put_bind(&ob, NULL, 0, v, 2, text_result, 1);
	ck_assert(batchsql_candidate_from_extended(&row, sql, strlen(sql), NULL, 0, ob.data,
						   ob.len));
	batchsql_row_free(&row);
	obuf_reset(&ob);
	put_bind(&ob, NULL, 0, v, 2, binary_result, 1);
	ck_assert(!batchsql_candidate_from_extended(&row, sql, strlen(sql), NULL, 0, ob.data,
						    ob.len));

	/* Named portal or statement, a length below -1, a trailing byte. */
	static const uint8_t named_portal[] = {'p', 0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff,
					       0xff, 0xff, 0xff, 0xff, 0, 0};
	static const uint8_t named_stmt[] = {0, 's', 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff,
					     0xff, 0xff, 0xff, 0xff, 0, 0};
	static const uint8_t minus_two[] = {0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xfe,
					    0xff, 0xff, 0xff, 0xff, 0, 0};
	static const uint8_t huge_len[] = {0, 0, 0, 0, 0, 2, 0x7f, 0xff, 0xff, 0xff,
					   0xff, 0xff, 0xff, 0xff, 0, 0};
	static const uint8_t trailing[] = {0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff,
					   0xff, 0xff, 0xff, 0xff, 0, 0, 0};
	static const uint8_t good[] = {0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff,
				       0xff, 0xff, 0xff, 0xff, 0, 0};
	ck_assert(batchsql_candidate_from_extended(&row, sql, strlen(sql), NULL, 0, good,
						   sizeof(good)));
	batchsql_row_free(&row);
	ck_assert(!batchsql_candidate_from_extended(&row, sql, strlen(sql), NULL, 0, named_portal,
						    sizeof(named_portal)));
	ck_assert(!batchsql_candidate_from_extended(&row, sql, strlen(sql), NULL, 0, named_stmt,
						    sizeof(named_stmt)));
	ck_assert(!batchsql_candidate_from_extended(&row, sql, strlen(sql), NULL, 0, minus_two,
						    sizeof(minus_two)));
	ck_assert(!batchsql_candidate_from_extended(&row, sql, strlen(sql), NULL, 0, huge_len,
						    sizeof(huge_len)));
	ck_assert(!batchsql_candidate_from_extended(&row, sql, strlen(sql), NULL, 0, trailing,
						    sizeof(trailing)));
	ck_assert_ptr_null(row.mem);
	obuf_free(&ob);
}
END_TEST

/* xorshift64*: a fixed seed makes every run see the same bytes. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

START_TEST(random_bind_bytes_never_read_out_of_bounds)
{
	struct obuf ob;
	obuf_init(&ob, TEST_LIMIT);
	put_bind(&ob, three_formats, 3, three_values[2], 3, NULL, 0);
	const char *sql = three_sql[2];
	for (unsigned iter = 0; iter < 20000; iter++) {
		size_t len = ob.len;
		uint8_t *body = malloc(len);
		ck_assert_ptr_nonnull(body);
		memcpy(body, ob.data, len);
		unsigned flips = 1 + (unsigned)(rng_next() % 3);
		for (unsigned f = 0; f < flips; f++)
			body[rng_next() % len] = (uint8_t)rng_next();
		struct batchsql_row row;
		if (batchsql_candidate_from_extended(&row, sql, strlen(sql), three_types, 2, body,
						     len)) {
			ck_assert_uint_le(row.values_off + row.values_len, row.bind_len);
			batchsql_row_free(&row);
		}
		free(body);
	}
	obuf_free(&ob);
}
END_TEST

/* ---------- extended requests in a client's input ---------- */

/* Appends a whole message of type with body (len bytes). */
static void put_msg(struct obuf *ob, char type, const void *body, size_t len)
{
	obuf_put_u8(ob, (uint8_t)type);
	obuf_put_u32(ob, (uint32_t)(len + 4));
	obuf_put(ob, body, len);
}

/*
 * A client's Parse (statement name stmt, n_types OIDs 23), Bind of two text
 * values, optional Describe of the unnamed portal, Execute (row limit
 * max_rows) and Sync.
 */
static void put_request(struct obuf *ob, const char *stmt, const char *sql, uint16_t n_types,
			bool describe, uint32_t max_rows)
{
	struct obuf body;
	obuf_init(&body, TEST_LIMIT);
	obuf_put(&body, stmt, strlen(stmt) + 1);
	obuf_put(&body, sql, strlen(sql) + 1);
	obuf_put_u16(&body, n_types);
	for (uint16_t i = 0; i < n_types; i++)
		obuf_put_u32(&body, 23);
	put_msg(ob, 'P', body.data, body.len);
	obuf_reset(&body);
	static const struct test_value v[] = {{1, "7"}, {3, "abc"}};
	put_bind(&body, NULL, 0, v, 2, NULL, 0);
	put_msg(ob, 'B', body.data, body.len);
	if (describe)
		put_msg(ob, 'D', "P", 2);
	obuf_reset(&body);
	obuf_put_u8(&body, 0);
	obuf_put_u32(&body, max_rows);
	put_msg(ob, 'E', body.data, body.len);
	put_msg(ob, 'S', NULL, 0);
	obuf_free(&body);
	ck_assert(!ob->failed);
}

static const char request_sql[] = "INSERT INTO t (a, b) VALUES ($1, $2)";

START_TEST(whole_extended_requests_are_found_with_and_without_describe)
{
	for (int d = 0; d <= 1; d++) {
		struct obuf ob;
		obuf_init(&ob, TEST_LIMIT);
		put_request(&ob, "", request_sql, 1, d, 0);
		size_t len = ob.len;
		obuf_put_u8(&ob, 'Q'); /* what follows is not part of it */
		struct batchsql_request req;
		ck_assert_int_eq(batchsql_scan_extended(ob.data, ob.data + ob.len, &req),
				 BATCHSQL_SCAN_YES);
		ck_assert_uint_eq(req.len, len);
		ck_assert(req.describe == (d == 1));
		struct batchsql_row row;
		ck_assert(batchsql_candidate_from_request(&row, ob.data, &req));
		ck_assert_uint_eq(row.n_params, 2);
		ck_assert_uint_eq(row.n_types, 1);
		ck_assert_uint_eq(row.types[0], 23);
		ck_assert_uint_eq(row.types[1], 0);
		struct obuf single;
		obuf_init(&single, TEST_LIMIT);
		ck_assert(batchsql_build_single(&single, &row));
		batchsql_row_free(&row);
		obuf_free(&single);
		obuf_free(&ob);
	}
}
END_TEST

START_TEST(extended_requests_cut_at_every_byte_ask_for_more)
{
	struct obuf ob;
	obuf_init(&ob, TEST_LIMIT);
	put_request(&ob, "", request_sql, 2, true, 0);
	size_t parse_len = 1 + (size_t)((ob.data[1] << 24) | (ob.data[2] << 16) |
					 (ob.data[3] << 8) | ob.data[4]);
	/* Copied to an exact-size block each time, so that a read past the end is caught. */
	for (size_t cut = parse_len; cut < ob.len; cut++) {
		uint8_t *copy = malloc(cut);
		ck_assert(copy != NULL);
		memcpy(copy, ob.data, cut);
		struct batchsql_request req;
		ck_assert_int_eq(batchsql_scan_extended(copy, copy + cut, &req), BATCHSQL_SCAN_MORE);
		free(copy);
	}
	obuf_free(&ob);
}
END_TEST

START_TEST(other_extended_requests_are_not_batched)
{
	struct batchsql_request req;
	struct batchsql_row row;
	struct obuf ob;
	obuf_init(&ob, TEST_LIMIT);
	/* A named statement: framed like the others, refused when read. */
	put_request(&ob, "s1", request_sql, 0, false, 0);
	ck_assert_int_eq(batchsql_scan_extended(ob.data, ob.data + ob.len, &req), BATCHSQL_SCAN_YES);
	ck_assert(!batchsql_candidate_from_request(&row, ob.data, &req));
	batchsql_row_free(&row);
	/* An Execute with a row limit. */
	obuf_reset(&ob);
	put_request(&ob, "", request_sql, 0, false, 10);
	ck_assert_int_eq(batchsql_scan_extended(ob.data, ob.data + ob.len, &req), BATCHSQL_SCAN_NO);
	/* Not an INSERT. */
	obuf_reset(&ob);
	put_request(&ob, "", "UPDATE t SET a = $1 WHERE b = $2", 0, false, 0);
	ck_assert_int_eq(batchsql_scan_extended(ob.data, ob.data + ob.len, &req), BATCHSQL_SCAN_YES);
	ck_assert(!batchsql_candidate_from_request(&row, ob.data, &req));
	batchsql_row_free(&row);
	/* Parse then Sync (no Bind), Parse/Bind then Flush, Describe of a statement. */
	obuf_reset(&ob);
	put_msg(&ob, 'P', "\0INSERT INTO t VALUES (1)\0\0", 28);
	put_msg(&ob, 'S', NULL, 0);
	ck_assert_int_eq(batchsql_scan_extended(ob.data, ob.data + ob.len, &req), BATCHSQL_SCAN_NO);
	obuf_reset(&ob);
	put_request(&ob, "", request_sql, 0, false, 0);
	size_t bind_end = ob.len - 15; /* Execute (10) and Sync (5) follow the Bind */
	ob.len = bind_end;
	put_msg(&ob, 'H', NULL, 0);
	ck_assert_int_eq(batchsql_scan_extended(ob.data, ob.data + ob.len, &req), BATCHSQL_SCAN_NO);
	ob.len = bind_end;
	put_msg(&ob, 'D', "S", 2);
	ck_assert_int_eq(batchsql_scan_extended(ob.data, ob.data + ob.len, &req), BATCHSQL_SCAN_NO);
	/* A Parse whose type list is cut short. */
	obuf_reset(&ob);
	put_msg(&ob, 'P', "\0INSERT INTO t VALUES ($1)\0\0\2\0\0\0\x17", 33);
	static const struct test_value v[] = {{1, "7"}};
	struct obuf body;
	obuf_init(&body, TEST_LIMIT);
	put_bind(&body, NULL, 0, v, 1, NULL, 0);
	put_msg(&ob, 'B', body.data, body.len);
	put_msg(&ob, 'E', "\0\0\0\0", 5);
	put_msg(&ob, 'S', NULL, 0);
	ck_assert_int_eq(batchsql_scan_extended(ob.data, ob.data + ob.len, &req), BATCHSQL_SCAN_YES);
	ck_assert(!batchsql_candidate_from_request(&row, ob.data, &req));
	batchsql_row_free(&row);
	obuf_free(&body);
	obuf_free(&ob);
}
END_TEST

Suite *batchsql_suite(void)
{
	Suite *s = suite_create("batchsql");
	TCase *tc = tcase_create("candidates");
	tcase_add_loop_test(tc, candidates_from_query_match_expectation, 0,
			    sizeof(candidate_cases) / sizeof(candidate_cases[0]));
	tcase_add_test(tc, at_least_fifty_statements_are_checked);
	tcase_add_test(tc, nul_inside_query_text_is_refused);
	tcase_add_test(tc, group_text_is_normalized);
	suite_add_tcase(s, tc);

	tc = tcase_create("grouping");
	tcase_add_test(tc, same_table_written_differently_shares_a_group);
	tcase_add_test(tc, different_targets_are_different_groups);
	tcase_add_test(tc, extended_groups_follow_types_and_formats);
	suite_add_tcase(s, tc);

	tc = tcase_create("rewriting");
	tcase_add_test(tc, simple_rows_become_one_query_with_literals_verbatim);
	tcase_add_test(tc, conflict_clause_and_missing_columns_are_kept);
	tcase_add_test(tc, rows_of_different_groups_are_not_built);
	tcase_add_test(tc, extended_rows_become_parse_and_bind_with_renumbered_parameters);
	tcase_add_test(tc, single_fallback_resends_what_the_client_sent);
	suite_add_tcase(s, tc);

	/* 65535 rows and byte-by-byte limits under the sanitizers take a few seconds. */
	tc = tcase_create("bounds");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, parameters_stop_at_65535);
	tcase_add_test(tc, rows_that_fit_the_byte_limit_always_build);
	tcase_add_test(tc, a_full_buffer_is_left_as_it_was);
	tcase_add_test(tc, bind_cut_at_every_byte_is_refused);
	tcase_add_test(tc, odd_binds_are_refused);
	tcase_add_test(tc, random_bind_bytes_never_read_out_of_bounds);
	suite_add_tcase(s, tc);

	tc = tcase_create("requests");
	tcase_add_test(tc, whole_extended_requests_are_found_with_and_without_describe);
	tcase_add_test(tc, extended_requests_cut_at_every_byte_ask_for_more);
	tcase_add_test(tc, other_extended_requests_are_not_batched);
	suite_add_tcase(s, tc);
	return s;
}
