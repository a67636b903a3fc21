/*
 * test_proto.c - message framing, builders and readers (proto.c), output
 * buffers (buf.c) and session parameter sets (params.c).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "params.h"
#include "proto.h"
#include "suites.h"

static struct obuf ob;

static void setup(void)
{
	obuf_init(&ob, 1 << 20);
}

static void teardown(void)
{
	obuf_free(&ob);
}

START_TEST(error_response_carries_fields_and_length)
{
	proto_put_error(&ob, true, "28P01", "password authentication failed", "d", "h");
	ck_assert_int_eq(ob.data[0], 'E');
	uint32_t len = proto_get_u32(ob.data + 1);
	ck_assert_uint_eq(len + 1, ob.len);
	struct proto_error e;
	ck_assert(proto_parse_error(ob.data + 5, ob.len - 5, &e));
	ck_assert_str_eq(e.severity, "FATAL");
	ck_assert_str_eq(e.sqlstate, "28P01");
	ck_assert_str_eq(e.message, "password authentication failed");
	ck_assert_str_eq(e.detail, "d");
	ck_assert_str_eq(e.hint, "h");
}
END_TEST

START_TEST(truncated_error_is_rejected)
{
	proto_put_error(&ob, false, "42601", "syntax error", NULL, NULL);
	struct proto_error e;
	ck_assert(!proto_parse_error(ob.data + 5, ob.len - 6, &e));
	ck_assert(proto_parse_error(ob.data + 5, ob.len - 5, &e));
	ck_assert_str_eq(e.severity, "ERROR");
	ck_assert_ptr_null(e.detail);
}
END_TEST

START_TEST(ready_for_query_is_six_bytes)
{
	proto_put_ready(&ob, 'T');
	ck_assert_uint_eq(ob.len, 6);
	static const uint8_t want[] = {'Z', 0, 0, 0, 5, 'T'};
	ck_assert_mem_eq(ob.data, want, 6);
}
END_TEST

START_TEST(startup_packet_round_trips)
{
	const char *names[] = {"user", "database", "application_name"};
	const char *values[] = {"app", "appdb", "psql"};
	proto_put_startup(&ob, names, values, 3);
	struct proto_startup st;
	ck_assert_ptr_null(proto_parse_startup(ob.data, ob.len, &st));
	ck_assert_uint_eq(st.code, PROTO_V3);
	ck_assert_uint_eq(st.n_params, 3);
	ck_assert_str_eq(proto_startup_get(&st, "database"), "appdb");
	ck_assert_ptr_null(proto_startup_get(&st, "options"));
}
END_TEST

START_TEST(startup_packet_errors_are_named)
{
	uint8_t pkt[64];
	struct proto_startup st;
	/* length field disagrees with the packet */
	memcpy(pkt, "\0\0\0\x10\0\x03\0\0user\0", 13);
	ck_assert_ptr_nonnull(proto_parse_startup(pkt, 13, &st));
	/* parameters without the final terminator */
	static const uint8_t unterminated[] = {0, 0, 0, 17, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0, 'a', 'p', 'p', 0};
	ck_assert_str_eq(proto_parse_startup(unterminated, sizeof(unterminated), &st),
			 "startup packet is not terminated");
	/* a name without its value */
	static const uint8_t novalue[] = {0, 0, 0, 13, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0};
	ck_assert_ptr_nonnull(proto_parse_startup(novalue, sizeof(novalue), &st));
	/* protocol 2 is refused */
	static const uint8_t v2[] = {0, 0, 0, 9, 0, 2, 0, 0, 0};
	ck_assert_str_eq(proto_parse_startup(v2, sizeof(v2), &st), "unsupported frontend protocol");
	/* too short */
	ck_assert_ptr_nonnull(proto_parse_startup(pkt, 4, &st));
}
END_TEST

START_TEST(ssl_and_cancel_requests_are_recognized)
{
	struct proto_startup st;
	static const uint8_t ssl[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
	ck_assert_ptr_null(proto_parse_startup(ssl, sizeof(ssl), &st));
	ck_assert_uint_eq(st.code, PROTO_SSL_REQUEST);
	proto_put_cancel(&ob, 1234, 0xdeadbeef);
	ck_assert_uint_eq(ob.len, 16);
	ck_assert_ptr_null(proto_parse_startup(ob.data, ob.len, &st));
	ck_assert_uint_eq(st.code, PROTO_CANCEL_REQUEST);
	ck_assert_uint_eq(st.cancel_pid, 1234);
	ck_assert_uint_eq(st.cancel_key, 0xdeadbeef);
	ck_assert_ptr_nonnull(proto_parse_startup(ob.data, 12, &st));
}
END_TEST

START_TEST(too_many_startup_parameters_are_refused)
{
	const char *names[PROTO_MAX_STARTUP_PARAMS + 1], *values[PROTO_MAX_STARTUP_PARAMS + 1];
	char buf[PROTO_MAX_STARTUP_PARAMS + 1][8];
	for (int i = 0; i <= PROTO_MAX_STARTUP_PARAMS; i++) {
		snprintf(buf[i], sizeof(buf[i]), "p%d", i);
		names[i] = buf[i];
		values[i] = "v";
	}
	proto_put_startup(&ob, names, values, PROTO_MAX_STARTUP_PARAMS + 1);
	struct proto_startup st;
	ck_assert_str_eq(proto_parse_startup(ob.data, ob.len, &st), "too many startup parameters");
}
END_TEST

START_TEST(parameter_status_and_sasl_messages_parse)
{
	proto_put_param_status(&ob, "TimeZone", "UTC");
	const char *name, *value;
	ck_assert(proto_parse_param_status(ob.data + 5, ob.len - 5, &name, &value));
	ck_assert_str_eq(name, "TimeZone");
	ck_assert_str_eq(value, "UTC");
	ck_assert(!proto_parse_param_status(ob.data + 5, ob.len - 6, &name, &value));
	obuf_reset(&ob);
	proto_put_sasl_initial(&ob, "SCRAM-SHA-256", "n,,n=,r=abc", 11);
	const char *mech;
	const uint8_t *data;
	size_t dlen;
	ck_assert(proto_parse_sasl_initial(ob.data + 5, ob.len - 5, &mech, &data, &dlen));
	ck_assert_str_eq(mech, "SCRAM-SHA-256");
	ck_assert_uint_eq(dlen, 11);
	ck_assert_mem_eq(data, "n,,n=,r=abc", 11);
	ck_assert(!proto_parse_sasl_initial(ob.data + 5, ob.len - 6, &mech, &data, &dlen));
	static const uint8_t mechs[] = "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0";
	ck_assert(proto_sasl_offers(mechs, sizeof(mechs), "SCRAM-SHA-256"));
	ck_assert(!proto_sasl_offers(mechs, sizeof(mechs), "PLAIN"));
}
END_TEST

START_TEST(sql_literal_escapes_quotes_and_backslashes)
{
	proto_put_sql_literal(&ob, "it's a \\ test");
	obuf_put_u8(&ob, 0);
	ck_assert_str_eq((const char *)ob.data, "E'it''s a \\\\ test'");
}
END_TEST

START_TEST(output_buffer_refuses_to_pass_its_limit)
{
	struct obuf small;
	obuf_init(&small, 10);
	ck_assert(obuf_put(&small, "12345678", 8));
	ck_assert(!obuf_put(&small, "abc", 3));
	ck_assert(small.failed);
	obuf_free(&small);
}
END_TEST

START_TEST(params_hash_ignores_order_and_name_case)
{
	struct params a, b;
	params_init(&a);
	params_init(&b);
	params_set(&a, "TimeZone", "UTC", true);
	params_set(&a, "DateStyle", "ISO, MDY", true);
	params_set(&b, "datestyle", "ISO, MDY", false);
	params_set(&b, "timezone", "UTC", false);
	ck_assert(params_in_sync(&a, &b));
	params_set(&b, "timezone", "Asia/Tokyo", false);
	ck_assert(!params_in_sync(&a, &b));
	params_set(&b, "TimeZone", "UTC", true);
	ck_assert(params_in_sync(&a, &b));
	ck_assert_str_eq(params_get(&b, "TIMEZONE"), "UTC");
	/* server-describing values never count */
	params_set(&a, "server_version", "15.1", true);
	ck_assert(params_in_sync(&a, &b));
	params_free(&a);
	params_free(&b);
}
END_TEST

START_TEST(params_sync_sets_differences_and_resets_extras)
{
	struct params want, have;
	params_init(&want);
	params_init(&have);
	params_set(&want, "TimeZone", "Asia/Tokyo", true);
	params_set(&want, "application_name", "o'brien", true);
	params_set(&have, "TimeZone", "UTC", true);
	params_set(&have, "application_name", "o'brien", true);
	params_set(&have, "search_path", "other", false);
	obuf_put(&ob, "", 0);
	size_t n = params_sync_sql(&want, &have, &ob);
	obuf_put_u8(&ob, 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq((const char *)ob.data, "SET TimeZone TO E'Asia/Tokyo';RESET search_path;");
	params_apply_sync(&want, &have);
	ck_assert_ptr_null(params_get(&have, "search_path"));
	ck_assert(params_in_sync(&want, &have));
	params_free(&want);
	params_free(&have);
}
END_TEST

START_TEST(params_set_by_a_clients_set_are_synced_as_written)
{
	struct params want, have;
	params_init(&want);
	params_init(&have);
	ck_assert(params_set_sql(&want, "search_path", "\"My Schema\" , public"));
	ck_assert(params_set_sql(&have, "work_mem", "'64MB'"));
	obuf_put(&ob, "", 0);
	size_t n = params_sync_sql(&want, &have, &ob);
	obuf_put_u8(&ob, 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq((const char *)ob.data,
			 "SET search_path TO \"My Schema\" , public;RESET work_mem;");
	params_apply_sync(&want, &have);
	ck_assert(params_in_sync(&want, &have));
	/* A copy keeps the form; a reported value replaces it as a literal. */
	struct params copy;
	params_init(&copy);
	params_copy(&copy, &want);
	ck_assert(!params_is_reported(&copy, "search_path"));
	params_set(&copy, "search_path", "x", true);
	ck_assert(params_is_reported(&copy, "search_path"));
	ob.len = 0;
	params_sync_sql(&copy, &have, &ob);
	obuf_put_u8(&ob, 0);
	ck_assert_str_eq((const char *)ob.data, "SET search_path TO E'x';");
	params_free(&copy);
	params_free(&want);
	params_free(&have);
}
END_TEST

START_TEST(params_reject_names_unfit_for_sql)
{
	struct params want, have;
	params_init(&want);
	params_init(&have);
	params_set(&want, "x; drop table t", "1", false);
	size_t n = params_sync_sql(&want, &have, &ob);
	ck_assert_uint_eq(n, 0);
	params_free(&want);
	params_free(&have);
}
END_TEST

START_TEST(options_are_parsed_like_the_server_does)
{
	struct params ps;
	params_init(&ps);
	ck_assert_ptr_null(params_add_options(
	    &ps, "-c TimeZone=UTC -cDateStyle=ISO,\\ DMY --search-path=a,b -c statement_timeout=5s"));
	ck_assert_str_eq(params_get(&ps, "timezone"), "UTC");
	ck_assert_str_eq(params_get(&ps, "DateStyle"), "ISO, DMY");
	ck_assert_str_eq(params_get(&ps, "search_path"), "a,b");
	ck_assert_str_eq(params_get(&ps, "statement_timeout"), "5s");
	ck_assert_ptr_nonnull(params_add_options(&ps, "-c"));
	ck_assert_ptr_nonnull(params_add_options(&ps, "-x foo"));
	ck_assert_ptr_nonnull(params_add_options(&ps, "-c novalue"));
	params_free(&ps);
}
END_TEST

START_TEST(params_copies_share_until_one_changes)
{
	struct params a, b, c;
	params_init(&a);
	params_init(&b);
	params_init(&c);
	ck_assert(params_set(&a, "TimeZone", "UTC", true));
	ck_assert(params_set(&a, "search_path", "public", false));
	params_copy(&b, &a);
	params_copy(&c, &a);
	ck_assert_ptr_eq(a.b, b.b);
	ck_assert_uint_eq(a.b->refs, 3);
	/* Setting a value a copy already has copies nothing. */
	ck_assert(params_set(&b, "timezone", "UTC", false));
	ck_assert_ptr_eq(a.b, b.b);
	ck_assert(params_set(&b, "TimeZone", "Asia/Tokyo", true));
	ck_assert_ptr_ne(a.b, b.b);
	ck_assert_uint_eq(a.b->refs, 2);
	ck_assert_str_eq(params_get(&a, "TimeZone"), "UTC");
	ck_assert_str_eq(params_get(&b, "TimeZone"), "Asia/Tokyo");
	ck_assert_str_eq(params_get(&b, "search_path"), "public");
	ck_assert(!params_in_sync(&a, &b));
	ck_assert(params_remove(&c, "search_path"));
	ck_assert_ptr_null(params_get(&c, "search_path"));
	ck_assert_str_eq(params_get(&a, "search_path"), "public");
	ck_assert_uint_eq(a.b->refs, 1);
	ck_assert(params_set_sql(&c, "work_mem", "'64MB'"));
	ck_assert_ptr_null(params_get(&a, "work_mem"));
	ck_assert_uint_eq(params_count(&a), 2);
	ck_assert_uint_eq(params_count(&c), 2);
	/* A copy over a set drops that set's reference. */
	params_copy(&b, &c);
	ck_assert_ptr_eq(b.b, c.b);
	ck_assert_uint_eq(c.b->refs, 2);
	params_free(&c);
	ck_assert_uint_eq(b.b->refs, 1);
	ck_assert_str_eq(params_get(&b, "work_mem"), "'64MB'");
	params_free(&a);
	params_free(&b);
	ck_assert_uint_eq(params_count(&a), 0);
	ck_assert_uint_eq(params_hash(&a), 0);
}
END_TEST

START_TEST(params_sync_into_a_shared_set_leaves_its_copies_alone)
{
	struct params want, have, other;
	params_init(&want);
	params_init(&have);
	params_init(&other);
	params_set(&want, "TimeZone", "Asia/Tokyo", true);
	params_set(&have, "TimeZone", "UTC", true);
	params_set(&have, "work_mem", "4MB", false);
	params_copy(&other, &have);
	params_apply_sync(&want, &have);
	ck_assert(params_in_sync(&want, &have));
	ck_assert_ptr_null(params_get(&have, "work_mem"));
	ck_assert_str_eq(params_get(&other, "work_mem"), "4MB");
	ck_assert_str_eq(params_get(&other, "TimeZone"), "UTC");
	params_free(&want);
	params_free(&have);
	params_free(&other);
}
END_TEST

START_TEST(params_equal_compares_content)
{
	struct params a, b;
	params_init(&a);
	params_init(&b);
	ck_assert(params_equal(&a, &b));
	params_set(&a, "application_name", "x", false);
	params_set(&a, "DateStyle", "ISO", false);
	ck_assert(!params_equal(&a, &b));
	params_set(&b, "datestyle", "ISO", false);
	params_set(&b, "application_name", "x", false);
	ck_assert(params_equal(&a, &b));
	params_set(&b, "application_name", "y", false);
	ck_assert(!params_equal(&a, &b));
	params_set(&b, "application_name", "x", false);
	params_set_sql(&b, "DateStyle", "ISO");
	ck_assert(!params_equal(&a, &b));
	params_free(&a);
	params_free(&b);
}
END_TEST

START_TEST(params_refuse_too_many_entries)
{
	struct params ps;
	params_init(&ps);
	char name[16];
	for (int i = 0; i < PARAMS_MAX; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		ck_assert(params_set(&ps, name, "v", false));
	}
	ck_assert(!params_set(&ps, "one_more", "v", false));
	params_free(&ps);
}
END_TEST

START_TEST(input_buffers_no_one_needed_for_a_trim_period_are_freed)
{
	struct iobuf_pool pool;
	iobuf_pool_init(&pool, 64);
	struct iobuf *held[5];
	for (int i = 0; i < 5; i++)
		held[i] = iobuf_get(&pool);
	for (int i = 0; i < 5; i++)
		iobuf_put(&pool, held[i]);
	ck_assert_uint_eq(pool.n_free, 5);
	/* The burst ended after the last trim: its buffers stay one period more. */
	ck_assert_uint_eq(iobuf_pool_trim(&pool), 0);
	/* Two are needed during the next period: the other three go. */
	held[0] = iobuf_get(&pool);
	held[1] = iobuf_get(&pool);
	iobuf_put(&pool, held[0]);
	iobuf_put(&pool, held[1]);
	ck_assert_uint_eq(iobuf_pool_trim(&pool), 3);
	ck_assert_uint_eq(pool.n_free, 2);
	ck_assert_uint_eq(pool.n_total, 2);
	/* A quiet period frees the rest. */
	ck_assert_uint_eq(iobuf_pool_trim(&pool), 2);
	ck_assert_uint_eq(pool.n_total, 0);
	ck_assert_ptr_null(pool.free);
	iobuf_pool_destroy(&pool);
}
END_TEST

Suite *proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("messages");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, error_response_carries_fields_and_length);
	tcase_add_test(tc, truncated_error_is_rejected);
	tcase_add_test(tc, ready_for_query_is_six_bytes);
	tcase_add_test(tc, startup_packet_round_trips);
	tcase_add_test(tc, startup_packet_errors_are_named);
	tcase_add_test(tc, ssl_and_cancel_requests_are_recognized);
	tcase_add_test(tc, too_many_startup_parameters_are_refused);
	tcase_add_test(tc, parameter_status_and_sasl_messages_parse);
	tcase_add_test(tc, sql_literal_escapes_quotes_and_backslashes);
	tcase_add_test(tc, output_buffer_refuses_to_pass_its_limit);
	tcase_add_test(tc, input_buffers_no_one_needed_for_a_trim_period_are_freed);
	suite_add_tcase(s, tc);
	TCase *tp = tcase_create("params");
	tcase_add_checked_fixture(tp, setup, teardown);
	tcase_add_test(tp, params_hash_ignores_order_and_name_case);
	tcase_add_test(tp, params_sync_sets_differences_and_resets_extras);
	tcase_add_test(tp, params_set_by_a_clients_set_are_synced_as_written);
	tcase_add_test(tp, params_reject_names_unfit_for_sql);
	tcase_add_test(tp, options_are_parsed_like_the_server_does);
	tcase_add_test(tp, params_refuse_too_many_entries);
	tcase_add_test(tp, params_copies_share_until_one_changes);
	tcase_add_test(tp, params_sync_into_a_shared_set_leaves_its_copies_alone);
	tcase_add_test(tp, params_equal_compares_content);
	suite_add_tcase(s, tp);
	return s;
}
