/*
 * test_inflight.c - statement timing bookkeeping: a client's Parse/Bind
 * memory (prepared.c) and a server's queue of statements in flight
 * (inflight.c), driven by hand-built protocol message bodies in the orders
 * PostgreSQL answers them: multi-statement queries, pipelined extended
 * protocol, errors that skip to Sync, and overflow.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "classify.h"
#include "inflight.h"
#include "prepared.h"
#include "suites.h"

/* A message body built by appending fields. */
struct body {
	uint8_t data[512];
	size_t len;
};

static void put_str(struct body *b, const char *s)
{
	size_t n = strlen(s) + 1;
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

static void put_u16(struct body *b, uint16_t v)
{
	b->data[b->len++] = (uint8_t)(v >> 8);
	b->data[b->len++] = (uint8_t)v;
}

static void put_u32(struct body *b, uint32_t v)
{
	for (int i = 3; i >= 0; i--)
		b->data[b->len++] = (uint8_t)(v >> (8 * i));
}

static enum prepared_parse parse(struct prepared_set *ps, const char *name, const char *sql,
				  uint16_t n_types, const uint32_t *types)
{
	struct body b = {.len = 0};
	put_str(&b, name);
	put_str(&b, sql);
	put_u16(&b, n_types);
	for (uint16_t i = 0; i < n_types; i++)
		put_u32(&b, types[i]);
	return prepared_on_parse(ps, b.data, b.len, NULL);
}

/* A Bind of n text values (NULL = SQL NULL), binary when asked. */
static void bind(struct prepared_set *ps, const char *portal, const char *stmt, uint16_t n,
		 const char *const *values, bool binary)
{
	struct body b = {.len = 0};
	put_str(&b, portal);
	put_str(&b, stmt);
	put_u16(&b, binary ? 1 : 0);
	if (binary)
		put_u16(&b, 1);
	put_u16(&b, n);
	for (uint16_t i = 0; i < n; i++) {
		if (values[i] == NULL) {
			put_u32(&b, UINT32_MAX);
			continue;
		}
		put_u32(&b, (uint32_t)strlen(values[i]));
		memcpy(b.data + b.len, values[i], strlen(values[i]));
		b.len += strlen(values[i]);
	}
	put_u16(&b, 0);
	prepared_on_bind(ps, b.data, b.len);
}

static void expect_text(const struct inflight_done *d, const char *want)
{
	ck_assert_ptr_nonnull(d->text);
	ck_assert_uint_eq(d->text_len, strlen(want));
	ck_assert_int_eq(memcmp(d->text, want, d->text_len), 0);
}

START_TEST(simple_query_times_each_statement)
{
	struct inflight q;
	inflight_init(&q);
	const char *sql = "SELECT 1; /* c */ UPDATE t SET a = ';' ;; SELECT 3";
	inflight_push_query(&q, sql, strlen(sql), 10.0);
	struct inflight_done d;
	inflight_on_row(&q);
	ck_assert(inflight_finish(&q, 10.5, UINT64_MAX, &d));
	expect_text(&d, "SELECT 1");
	ck_assert(d.start == 10.0 && d.end == 10.5);
	ck_assert_uint_eq(d.rows, 1);
	ck_assert(inflight_finish(&q, 12.0, 7, &d));
	expect_text(&d, "/* c */ UPDATE t SET a = ';'");
	ck_assert(d.start == 10.5); /* it waited for the first one */
	ck_assert_uint_eq(d.rows, 7);
	ck_assert(inflight_finish(&q, 12.25, UINT64_MAX, &d));
	expect_text(&d, "SELECT 3");
	ck_assert(!inflight_finish(&q, 13.0, 0, &d)); /* the marker is no statement */
	inflight_on_ready(&q, true);
	ck_assert_uint_eq(q.count, 0);
	ck_assert_uint_eq(q.data.len, 0);
	inflight_free(&q);
}
END_TEST

START_TEST(an_error_skips_the_rest_of_the_request)
{
	struct inflight q;
	inflight_init(&q);
	inflight_push_query(&q, "SELECT 1; SELECT 1/0; SELECT 3", 30, 1.0);
	inflight_push_query(&q, "SELECT 4", 8, 1.0);
	struct inflight_done d;
	ck_assert(inflight_finish(&q, 2.0, 1, &d));
	ck_assert(inflight_finish(&q, 3.0, 0, &d));
	expect_text(&d, "SELECT 1/0");
	inflight_skip_request(&q);
	inflight_on_ready(&q, false);
	/* The next request's statement is next, not "SELECT 3". */
	ck_assert(inflight_finish(&q, 4.0, 1, &d));
	expect_text(&d, "SELECT 4");
	ck_assert(d.start == 3.0);
	inflight_on_ready(&q, true);
	ck_assert_uint_eq(q.count, 0);
	inflight_free(&q);
}
END_TEST

START_TEST(pipelined_extended_protocol_keeps_text_and_values)
{
	struct stmtreg reg;
	stmtreg_init(&reg);
	struct prepared_set ps;
	prepared_init(&ps, &reg, 16);
	struct inflight q;
	inflight_init(&q);
	static const uint32_t int4[] = {23};
	parse(&ps, "", "SELECT $1::int + $2", 1, int4);
	const char *v1[] = {"40", "2"};
	bind(&ps, "", "", 2, v1, false);
	const struct prepared_bind *b;
	const struct prepared_stmt *st = prepared_executed(&ps, "", &b);
	ck_assert_ptr_nonnull(st);
	inflight_push_execute(&q, st, b, 5.0);
	parse(&ps, "s1", "UPDATE t SET a = $1", 0, NULL);
	const char *v2[] = {NULL};
	bind(&ps, "", "s1", 1, v2, false);
	st = prepared_executed(&ps, "", &b);
	inflight_push_execute(&q, st, b, 5.0);
	inflight_push_marker(&q, 5.0);

	struct inflight_done d;
	ck_assert(inflight_finish(&q, 6.0, 1, &d));
	expect_text(&d, "SELECT $1::int + $2");
	ck_assert_uint_eq(d.entry->n_params, 2);
	ck_assert_uint_eq(d.entry->n_types, 1);
	uint32_t type;
	memcpy(&type, d.types, 4);
	ck_assert_uint_eq(type, 23);
	const uint8_t *v;
	uint32_t n;
	ck_assert(prepared_value(d.params, d.entry->params_len, 1, &v, &n));
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(v[0], '2');
	ck_assert(!prepared_value(d.params, d.entry->params_len, 2, &v, &n));
	ck_assert(inflight_finish(&q, 7.0, 3, &d));
	expect_text(&d, "UPDATE t SET a = $1");
	ck_assert(prepared_value(d.params, d.entry->params_len, 0, &v, &n));
	ck_assert_ptr_null(v);
	inflight_on_ready(&q, true);
	inflight_free(&q);
	prepared_free(&ps);
	stmtreg_free(&reg);
}
END_TEST

START_TEST(unknown_portals_closed_and_binary_statements)
{
	struct stmtreg reg;
	stmtreg_init(&reg);
	struct prepared_set ps;
	prepared_init(&ps, &reg, 16);
	parse(&ps, "named", "SELECT $1", 0, NULL);
	const char *v[] = {"x"};
	bind(&ps, "p1", "named", 1, v, true);
	const struct prepared_bind *b;
	const struct prepared_stmt *st = prepared_executed(&ps, "p1", &b);
	ck_assert_ptr_nonnull(st);
	ck_assert(b->binary);
	ck_assert_ptr_null(prepared_executed(&ps, "other", &b));
	/* A named statement cannot be parsed again: the first one stays. */
	ck_assert_int_eq(parse(&ps, "named", "SELECT 2", 0, NULL), PREPARED_EXISTS);
	ck_assert_ptr_eq(prepared_executed(&ps, "p1", &b), st);
	/* The unnamed one parsed again since its Bind: the portal's text is no longer known. */
	ck_assert_int_eq(parse(&ps, "", "SELECT 1", 0, NULL), PREPARED_PARSED);
	bind(&ps, "p2", "", 0, NULL, false);
	ck_assert_ptr_nonnull(prepared_executed(&ps, "p2", &b));
	parse(&ps, "", "SELECT 2", 0, NULL);
	ck_assert_ptr_null(prepared_executed(&ps, "p2", &b));
	bind(&ps, "", "named", 0, NULL, false);
	ck_assert_ptr_nonnull(prepared_executed(&ps, "", &b));
	struct body c = {.len = 0};
	c.data[c.len++] = 'S';
	put_str(&c, "named");
	prepared_on_close(&ps, c.data, c.len);
	ck_assert_uint_eq(ps.n_named, 0);
	ck_assert_ptr_null(prepared_executed(&ps, "", &b));
	/* A Bind of a statement never parsed. */
	bind(&ps, "", "ghost", 0, NULL, false);
	ck_assert_ptr_null(prepared_executed(&ps, "", &b));
	/* Malformed bodies are ignored. */
	ck_assert_int_eq(prepared_on_parse(&ps, (const uint8_t *)"x", 1, NULL), PREPARED_MALFORMED);
	prepared_on_bind(&ps, (const uint8_t *)"", 0);
	prepared_free(&ps);
	stmtreg_free(&reg);
}
END_TEST

START_TEST(overflow_stops_timing_until_the_queue_drains)
{
	struct inflight q;
	inflight_init(&q);
	for (int i = 0; i < INFLIGHT_MAX + 5; i++)
		inflight_push_query(&q, "SELECT 1", 8, 1.0);
	ck_assert(q.lost);
	struct inflight_done d;
	ck_assert(!inflight_finish(&q, 2.0, 1, &d));
	inflight_on_ready(&q, false);
	ck_assert(q.lost); /* more answers are owed: still lost */
	inflight_on_ready(&q, true);
	ck_assert(!q.lost);
	inflight_push_query(&q, "SELECT 2", 8, 3.0);
	ck_assert(inflight_finish(&q, 4.0, 1, &d));
	expect_text(&d, "SELECT 2");
	inflight_free(&q);
}
END_TEST

START_TEST(next_statement_splits_like_the_server)
{
	const char *sql = " -- x\n SELECT 'a;b' ; $$;$$; /* ; */ ;SELECT \"q;\"  ";
	size_t pos = 0, off, n;
	const char *want[] = {"-- x\n SELECT 'a;b'", "$$;$$", "SELECT \"q;\""};
	for (size_t i = 0; i < 3; i++) {
		ck_assert(classify_next_statement(sql, strlen(sql), &pos, &off, &n));
		ck_assert_uint_eq(n, strlen(want[i]));
		ck_assert_int_eq(memcmp(sql + off, want[i], n), 0);
	}
	ck_assert(!classify_next_statement(sql, strlen(sql), &pos, &off, &n));
	pos = 0;
	ck_assert(!classify_next_statement(" ; -- only\n", 11, &pos, &off, &n));
	pos = 0;
	ck_assert(classify_next_statement("SELECT 'open; x", 15, &pos, &off, &n));
	ck_assert_uint_eq(off, 0);
	ck_assert_uint_eq(n, 15);
	ck_assert(!classify_next_statement("SELECT 'open; x", 15, &pos, &off, &n));
}
END_TEST

Suite *inflight_suite(void)
{
	Suite *s = suite_create("inflight");
	TCase *tc = tcase_create("inflight");
	tcase_add_test(tc, simple_query_times_each_statement);
	tcase_add_test(tc, an_error_skips_the_rest_of_the_request);
	tcase_add_test(tc, pipelined_extended_protocol_keeps_text_and_values);
	tcase_add_test(tc, unknown_portals_closed_and_binary_statements);
	tcase_add_test(tc, overflow_stops_timing_until_the_queue_drains);
	tcase_add_test(tc, next_statement_splits_like_the_server);
	suite_add_tcase(s, tc);
	return s;
}
