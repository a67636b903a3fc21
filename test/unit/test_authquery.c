/*
 * test_authquery.c - auth_query lookups (authquery.c) without a PostgreSQL
 * server: reading the query's result (PGresults built by hand), the answer
 * cache with explicit times, and the engine on a real loop against a Unix
 * socket that nobody listens on (connect refused) or that accepts and never
 * answers (timeouts, the max_waiting bound, coalescing, cancel, free).
 * Lookups against a real server are tested outside the unit suite.
 */
#include <check.h>
#include <ev.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "authquery.h"
#include "suites.h"

#define SCRAM_SECRET                                                                       \
	"SCRAM-SHA-256$4096:7qqxVitooMzo1MLHPGPxmA==$"                                             \
	"lzaO6+gWaWteDxWpldFF93rg+lseMtaKWmqgxLDv70g=:2jQNbXzRB+5gjcnmDYibkbje24eRr9sWW1OytRiKm54="

/* ----- reading the result ----- */

/* A two-column result (usename, passwd) with rows; a NULL cell is SQL NULL. */
static PGresult *make_result(int rows, const char *const cells[][2])
{
	PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc attrs[2] = {{.name = "usename", .format = 0, .typid = 19, .typlen = 64},
				 {.name = "passwd", .format = 0, .typid = 25, .typlen = -1}};
	ck_assert(PQsetResultAttrs(r, 2, attrs));
	for (int i = 0; i < rows; i++) {
		for (int j = 0; j < 2; j++) {
			const char *v = cells[i][j];
			ck_assert(PQsetvalue(r, i, j, (char *)v, v != NULL ? (int)strlen(v) : -1));
		}
	}
	return r;
}

static enum authquery_status read_one(PGresult *r, const char *user, const char **secret,
				      char *reason)
{
	*secret = NULL;
	reason[0] = '\0';
	return authquery_read_result(r, user, secret, reason, AUTHQUERY_REASON_MAX);
}

START_TEST(no_row_is_not_found)
{
	PGresult *r = make_result(0, NULL);
	const char *secret;
	char reason[AUTHQUERY_REASON_MAX];
	ck_assert_int_eq(read_one(r, "ghost", &secret, reason), AUTHQUERY_NOT_FOUND);
	PQclear(r);
}
END_TEST

START_TEST(row_with_a_secret_is_found)
{
	const char *const rows[][2] = {{"alice", SCRAM_SECRET}};
	PGresult *r = make_result(1, rows);
	const char *secret;
	char reason[AUTHQUERY_REASON_MAX];
	ck_assert_int_eq(read_one(r, "alice", &secret, reason), AUTHQUERY_FOUND);
	ck_assert_str_eq(secret, SCRAM_SECRET);
	PQclear(r);
}
END_TEST

START_TEST(null_or_empty_secret_is_not_found)
{
	const char *const null_row[][2] = {{"nologin", NULL}};
	const char *const empty_row[][2] = {{"nologin", ""}};
	const char *secret;
	char reason[AUTHQUERY_REASON_MAX];
	PGresult *r = make_result(1, null_row);
	ck_assert_int_eq(read_one(r, "nologin", &secret, reason), AUTHQUERY_NOT_FOUND);
	PQclear(r);
	r = make_result(1, empty_row);
	ck_assert_int_eq(read_one(r, "nologin", &secret, reason), AUTHQUERY_NOT_FOUND);
	PQclear(r);
}
END_TEST

START_TEST(row_for_another_user_fails)
{
	const char *const rows[][2] = {{"mallory", "md55084196a44b964e4f23437318558fb73"}};
	const char *const null_name[][2] = {{NULL, "pw"}};
	const char *secret;
	char reason[AUTHQUERY_REASON_MAX];
	PGresult *r = make_result(1, rows);
	ck_assert_int_eq(read_one(r, "alice", &secret, reason), AUTHQUERY_FAILED);
	ck_assert_ptr_null(secret);
	ck_assert_ptr_nonnull(strstr(reason, "another user"));
	PQclear(r);
	r = make_result(1, null_name);
	ck_assert_int_eq(read_one(r, "alice", &secret, reason), AUTHQUERY_FAILED);
	PQclear(r);
}
END_TEST

START_TEST(several_rows_fail)
{
	const char *const rows[][2] = {{"alice", "a"}, {"alice", "b"}};
	const char *secret;
	char reason[AUTHQUERY_REASON_MAX];
	PGresult *r = make_result(2, rows);
	ck_assert_int_eq(read_one(r, "alice", &secret, reason), AUTHQUERY_FAILED);
	ck_assert_str_eq(reason, "query failed: 2 rows for one user");
	PQclear(r);
}
END_TEST

START_TEST(wrong_column_count_fails)
{
	PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc attr = {.name = "passwd", .format = 0, .typid = 25, .typlen = -1};
	ck_assert(PQsetResultAttrs(r, 1, &attr));
	ck_assert(PQsetvalue(r, 0, 0, "pw", 2));
	const char *secret;
	char reason[AUTHQUERY_REASON_MAX];
	ck_assert_int_eq(read_one(r, "alice", &secret, reason), AUTHQUERY_FAILED);
	ck_assert_ptr_nonnull(strstr(reason, "1 columns"));
	PQclear(r);
}
END_TEST

START_TEST(error_result_fails)
{
	PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);
	const char *secret;
	char reason[AUTHQUERY_REASON_MAX];
	ck_assert_int_eq(read_one(r, "alice", &secret, reason), AUTHQUERY_FAILED);
	ck_assert_str_eq(reason, "query failed: PGRES_FATAL_ERROR");
	PQclear(r);
}
END_TEST

START_TEST(oversized_secret_fails)
{
	static char big[AUTHQUERY_SECRET_MAX + 2];
	memset(big, 'x', AUTHQUERY_SECRET_MAX + 1);
	const char *const rows[][2] = {{"alice", big}};
	const char *secret;
	char reason[AUTHQUERY_REASON_MAX];
	PGresult *r = make_result(1, rows);
	ck_assert_int_eq(read_one(r, "alice", &secret, reason), AUTHQUERY_FAILED);
	PQclear(r);
	big[AUTHQUERY_SECRET_MAX] = '\0';
	r = make_result(1, rows);
	ck_assert_int_eq(read_one(r, "alice", &secret, reason), AUTHQUERY_FOUND);
	ck_assert_uint_eq(strlen(secret), AUTHQUERY_SECRET_MAX);
	PQclear(r);
}
END_TEST

/* ----- the cache ----- */

START_TEST(answer_is_kept_until_it_expires)
{
	struct authquery_cache *c = authquery_cache_new(10);
	const char *secret = NULL;
	ck_assert(authquery_cache_put(c, "alice", "pw", 160.0));
	ck_assert_int_eq(authquery_cache_get(c, "alice", 100.0, &secret), AUTHQUERY_FOUND);
	ck_assert_str_eq(secret, "pw");
	ck_assert_int_eq(authquery_cache_get(c, "alice", 159.9, &secret), AUTHQUERY_FOUND);
	ck_assert_int_eq(authquery_cache_get(c, "alice", 160.0, &secret), AUTHQUERY_FAILED);
	ck_assert_uint_eq(authquery_cache_count(c), 0);
	ck_assert_int_eq(authquery_cache_get(c, "bob", 100.0, &secret), AUTHQUERY_FAILED);
	authquery_cache_free(c);
}
END_TEST

START_TEST(not_found_is_cached_as_such)
{
	struct authquery_cache *c = authquery_cache_new(10);
	const char *secret = "untouched";
	ck_assert(authquery_cache_put(c, "ghost", NULL, 5.0));
	ck_assert_int_eq(authquery_cache_get(c, "ghost", 1.0, &secret), AUTHQUERY_NOT_FOUND);
	ck_assert_ptr_null(secret);
	ck_assert_int_eq(authquery_cache_get(c, "ghost", 5.0, &secret), AUTHQUERY_FAILED);
	authquery_cache_free(c);
}
END_TEST

START_TEST(put_replaces_the_answer)
{
	struct authquery_cache *c = authquery_cache_new(10);
	const char *secret = NULL;
	ck_assert(authquery_cache_put(c, "alice", NULL, 5.0));
	ck_assert(authquery_cache_put(c, "alice", "pw", 60.0));
	ck_assert_uint_eq(authquery_cache_count(c), 1);
	ck_assert_int_eq(authquery_cache_get(c, "alice", 10.0, &secret), AUTHQUERY_FOUND);
	ck_assert_str_eq(secret, "pw");
	authquery_cache_free(c);
}
END_TEST

START_TEST(dropped_answer_is_gone)
{
	struct authquery_cache *c = authquery_cache_new(10);
	const char *secret = NULL;
	ck_assert(authquery_cache_put(c, "alice", "pw", 60.0));
	ck_assert(authquery_cache_put(c, "bob", "pw2", 60.0));
	ck_assert(authquery_cache_drop(c, "alice"));
	ck_assert(!authquery_cache_drop(c, "alice"));
	ck_assert_int_eq(authquery_cache_get(c, "alice", 1.0, &secret), AUTHQUERY_FAILED);
	ck_assert_int_eq(authquery_cache_get(c, "bob", 1.0, &secret), AUTHQUERY_FOUND);
	ck_assert_uint_eq(authquery_cache_count(c), 1);
	authquery_cache_free(c);
}
END_TEST

START_TEST(expire_drops_only_expired_answers)
{
	struct authquery_cache *c = authquery_cache_new(10);
	const char *secret = NULL;
	ck_assert(authquery_cache_put(c, "a", "1", 10.0));
	ck_assert(authquery_cache_put(c, "b", NULL, 5.0));
	ck_assert(authquery_cache_put(c, "c", "3", 20.0));
	ck_assert_uint_eq(authquery_cache_expire(c, 4.0), 0);
	ck_assert_uint_eq(authquery_cache_expire(c, 10.0), 2);
	ck_assert_uint_eq(authquery_cache_count(c), 1);
	ck_assert_int_eq(authquery_cache_get(c, "c", 10.0, &secret), AUTHQUERY_FOUND);
	ck_assert_str_eq(secret, "3");
	authquery_cache_free(c);
}
END_TEST

START_TEST(least_recently_used_answer_goes_when_full)
{
	struct authquery_cache *c = authquery_cache_new(2);
	const char *secret = NULL;
	ck_assert(authquery_cache_put(c, "a", "1", 100.0));
	ck_assert(authquery_cache_put(c, "b", "2", 100.0));
	/* A hit on a makes b the least recently used. */
	ck_assert_int_eq(authquery_cache_get(c, "a", 1.0, &secret), AUTHQUERY_FOUND);
	ck_assert(authquery_cache_put(c, "c", "3", 100.0));
	ck_assert_uint_eq(authquery_cache_count(c), 2);
	ck_assert_int_eq(authquery_cache_get(c, "b", 1.0, &secret), AUTHQUERY_FAILED);
	ck_assert_int_eq(authquery_cache_get(c, "a", 1.0, &secret), AUTHQUERY_FOUND);
	ck_assert_int_eq(authquery_cache_get(c, "c", 1.0, &secret), AUTHQUERY_FOUND);
	authquery_cache_free(c);
}
END_TEST

START_TEST(many_users_stay_within_the_bound)
{
	struct authquery_cache *c = authquery_cache_new(100);
	char user[32];
	const char *secret = NULL;
	for (int i = 0; i < 5000; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		ck_assert(authquery_cache_put(c, user, user, 100.0));
		ck_assert_uint_le(authquery_cache_count(c), 100);
	}
	ck_assert_int_eq(authquery_cache_get(c, "user4999", 1.0, &secret), AUTHQUERY_FOUND);
	ck_assert_str_eq(secret, "user4999");
	ck_assert_int_eq(authquery_cache_get(c, "user4899", 1.0, &secret), AUTHQUERY_FAILED);
	authquery_cache_free(c);
}
END_TEST

START_TEST(zero_capacity_keeps_nothing)
{
	struct authquery_cache *c = authquery_cache_new(0);
	const char *secret = NULL;
	ck_assert(!authquery_cache_put(c, "alice", "pw", 100.0));
	ck_assert_int_eq(authquery_cache_get(c, "alice", 1.0, &secret), AUTHQUERY_FAILED);
	ck_assert_uint_eq(authquery_cache_count(c), 0);
	authquery_cache_free(c);
}
END_TEST

/* ----- the engine, without a server ----- */

struct answer {
	int calls;
	enum authquery_status status;
	char text[AUTHQUERY_REASON_MAX];
	ev_tstamp at;
	struct ev_loop *loop;
};

static void record(void *arg, enum authquery_status status, const char *text)
{
	struct answer *a = arg;
	a->calls++;
	a->status = status;
	snprintf(a->text, sizeof(a->text), "%s", text != NULL ? text : "");
	a->at = a->loop != NULL ? ev_time() : 0;
}

static char sock_dir[64];
static int listen_fd = -1;

/* A socket directory where a "server" accepts connections and never says a word. */
static void silent_server_start(void)
{
	snprintf(sock_dir, sizeof(sock_dir), "/tmp/authquery-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(sock_dir));
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/.s.PGSQL.5432", sock_dir);
	listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(listen_fd, 0);
	ck_assert_int_eq(bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(listen(listen_fd, 64), 0);
}

static void silent_server_stop(void)
{
	char path[128];
	close(listen_fd);
	listen_fd = -1;
	snprintf(path, sizeof(path), "%s/.s.PGSQL.5432", sock_dir);
	unlink(path);
	rmdir(sock_dir);
}

/* Settings pointing at sock_dir (a socket directory, with or without a listener). */
static void test_settings(struct authquery_settings *s, double timeout, size_t max_waiting)
{
	authquery_settings_init(s);
	s->host = sock_dir;
	s->port = 5432;
	s->dbname = "postgres";
	s->user = "pgsluice_auth";
	s->password = "secret";
	s->timeout = timeout;
	s->max_waiting = max_waiting;
}

static void guard_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)t;
	(void)revents;
}

/* Runs loop until every answer has been called or seconds pass. */
static void run_until_answered(struct ev_loop *loop, struct answer *answers, int n, double seconds)
{
	ev_timer guard;
	ev_timer_init(&guard, guard_cb, 0.02, 0.02);
	ev_timer_start(loop, &guard);
	double limit = ev_time() + seconds;
	for (;;) {
		int done = 0;
		for (int i = 0; i < n; i++)
			done += answers[i].calls > 0;
		if (done == n || ev_time() >= limit)
			break;
		ev_run(loop, EVRUN_ONCE);
	}
	ev_timer_stop(loop, &guard);
}

/* Runs loop for seconds, whatever happens. */
static void run_for(struct ev_loop *loop, double seconds)
{
	struct answer never = {0};
	run_until_answered(loop, &never, 1, seconds);
}

START_TEST(answer_never_comes_before_lookup_returns)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct authquery_settings s;
	snprintf(sock_dir, sizeof(sock_dir), "/nonexistent");
	test_settings(&s, 1.0, 10);
	struct authquery *aq = authquery_new(loop, &s);
	static char long_name[AUTHQUERY_USER_MAX + 2];
	memset(long_name, 'u', AUTHQUERY_USER_MAX + 1);
	struct answer a = {.loop = loop};
	ck_assert_ptr_nonnull(authquery_lookup(aq, long_name, record, &a));
	ck_assert_int_eq(a.calls, 0);
	run_until_answered(loop, &a, 1, 1.0);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(a.status, AUTHQUERY_FAILED);
	ck_assert_str_eq(a.text, "user name too long");
	struct authquery_stats st;
	authquery_get_stats(aq, &st);
	ck_assert_uint_eq(st.connects, 0);
	ck_assert_uint_eq(st.failures, 1);
	authquery_free(aq);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(refused_connect_fails_at_once)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct authquery_settings s;
	snprintf(sock_dir, sizeof(sock_dir), "/nonexistent");
	test_settings(&s, 5.0, 10);
	struct authquery *aq = authquery_new(loop, &s);
	struct answer a[2] = {{.loop = loop}, {.loop = loop}};
	double start = ev_time();
	authquery_lookup(aq, "alice", record, &a[0]);
	authquery_lookup(aq, "bob", record, &a[1]);
	ck_assert_int_eq(a[0].calls + a[1].calls, 0);
	run_until_answered(loop, a, 2, 3.0);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(a[i].calls, 1);
		ck_assert_int_eq(a[i].status, AUTHQUERY_FAILED);
		ck_assert_ptr_nonnull(strstr(a[i].text, "connect failed: "));
		ck_assert(a[i].at - start < 1.0);
	}
	authquery_free(aq);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(silent_server_times_out)
{
	silent_server_start();
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct authquery_settings s;
	test_settings(&s, 0.3, 10);
	struct authquery *aq = authquery_new(loop, &s);
	struct answer a = {.loop = loop};
	double start = ev_time();
	authquery_lookup(aq, "alice", record, &a);
	run_until_answered(loop, &a, 1, 3.0);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(a.status, AUTHQUERY_FAILED);
	ck_assert(a.at - start >= 0.29);
	ck_assert(a.at - start < 1.0);
	struct authquery_stats st;
	authquery_get_stats(aq, &st);
	ck_assert_uint_eq(st.waiting, 0);
	ck_assert_uint_eq(st.failures, 1);
	authquery_free(aq);
	ev_loop_destroy(loop);
	silent_server_stop();
}
END_TEST

START_TEST(lookups_past_max_waiting_get_queue_full)
{
	silent_server_start();
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct authquery_settings s;
	test_settings(&s, 0.5, 3);
	struct authquery *aq = authquery_new(loop, &s);
	struct answer a[5];
	char user[16];
	for (int i = 0; i < 5; i++) {
		a[i] = (struct answer){.loop = loop};
		snprintf(user, sizeof(user), "user%d", i);
		authquery_lookup(aq, user, record, &a[i]);
	}
	struct authquery_stats st;
	authquery_get_stats(aq, &st);
	ck_assert_uint_eq(st.waiting, 3);
	ck_assert_uint_eq(st.queue_full, 2);
	/* The refused ones are told on the next iteration, long before the others. */
	run_until_answered(loop, &a[3], 2, 0.2);
	for (int i = 0; i < 5; i++) {
		if (i < 3) {
			ck_assert_int_eq(a[i].calls, 0);
		} else {
			ck_assert_int_eq(a[i].calls, 1);
			ck_assert_str_eq(a[i].text, "queue full");
		}
	}
	run_until_answered(loop, a, 5, 3.0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(a[i].calls, 1);
		ck_assert_int_eq(a[i].status, AUTHQUERY_FAILED);
	}
	authquery_get_stats(aq, &st);
	ck_assert_uint_eq(st.waiting, 0);
	ck_assert_uint_eq(st.lookups, 5);
	ck_assert_uint_eq(st.failures, 5);
	/* Room again once the waiting ones are answered. */
	struct answer late = {.loop = loop};
	authquery_lookup(aq, "late", record, &late);
	authquery_get_stats(aq, &st);
	ck_assert_uint_eq(st.waiting, 1);
	authquery_free(aq);
	ck_assert_int_eq(late.calls, 1);
	ev_loop_destroy(loop);
	silent_server_stop();
}
END_TEST

START_TEST(same_user_lookups_share_one_query)
{
	silent_server_start();
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct authquery_settings s;
	test_settings(&s, 5.0, 10);
	struct authquery *aq = authquery_new(loop, &s);
	struct answer a[3] = {{.loop = loop}, {.loop = loop}, {.loop = loop}};
	for (int i = 0; i < 3; i++)
		authquery_lookup(aq, "alice", record, &a[i]);
	struct answer other = {.loop = loop};
	authquery_lookup(aq, "bob", record, &other);
	run_for(loop, 0.1);
	struct authquery_stats st;
	authquery_get_stats(aq, &st);
	ck_assert_uint_eq(st.coalesced, 2);
	ck_assert_uint_eq(st.connects, 1);
	ck_assert_uint_eq(st.waiting, 4);
	authquery_free(aq);
	for (int i = 0; i < 3; i++)
		ck_assert_str_eq(a[i].text, "shutting down");
	ev_loop_destroy(loop);
	silent_server_stop();
}
END_TEST

START_TEST(cancelled_lookup_is_never_called_back)
{
	silent_server_start();
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct authquery_settings s;
	test_settings(&s, 0.2, 10);
	struct authquery *aq = authquery_new(loop, &s);
	struct answer a = {.loop = loop}, b = {.loop = loop};
	struct authquery_wait *wa = authquery_lookup(aq, "alice", record, &a);
	authquery_lookup(aq, "bob", record, &b);
	authquery_cancel(aq, wa);
	struct authquery_stats st;
	authquery_get_stats(aq, &st);
	ck_assert_uint_eq(st.waiting, 1);
	/* A refusal cancelled before it is delivered is not delivered either. */
	static char long_name[AUTHQUERY_USER_MAX + 2];
	memset(long_name, 'u', AUTHQUERY_USER_MAX + 1);
	struct answer c = {.loop = loop};
	authquery_cancel(aq, authquery_lookup(aq, long_name, record, &c));
	run_until_answered(loop, &b, 1, 2.0);
	run_for(loop, 0.3);
	ck_assert_int_eq(a.calls, 0);
	ck_assert_int_eq(c.calls, 0);
	ck_assert_int_eq(b.calls, 1);
	authquery_free(aq);
	ck_assert_int_eq(a.calls, 0);
	ev_loop_destroy(loop);
	silent_server_stop();
}
END_TEST

START_TEST(free_answers_every_pending_lookup)
{
	silent_server_start();
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct authquery_settings s;
	test_settings(&s, 5.0, 10);
	struct authquery *aq = authquery_new(loop, &s);
	struct answer a = {.loop = loop}, b = {.loop = loop};
	authquery_lookup(aq, "alice", record, &a);
	run_for(loop, 0.05);
	authquery_lookup(aq, "bob", record, &b);
	authquery_free(aq);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(a.status, AUTHQUERY_FAILED);
	ck_assert_str_eq(a.text, "shutting down");
	ck_assert_int_eq(b.calls, 1);
	ck_assert_str_eq(b.text, "shutting down");
	ev_loop_destroy(loop);
	silent_server_stop();
}
END_TEST

Suite *authquery_suite(void)
{
	Suite *s = suite_create("authquery");
	TCase *tc = tcase_create("result");
	tcase_add_test(tc, no_row_is_not_found);
	tcase_add_test(tc, row_with_a_secret_is_found);
	tcase_add_test(tc, null_or_empty_secret_is_not_found);
	tcase_add_test(tc, row_for_another_user_fails);
	tcase_add_test(tc, several_rows_fail);
	tcase_add_test(tc, wrong_column_count_fails);
	tcase_add_test(tc, error_result_fails);
	tcase_add_test(tc, oversized_secret_fails);
	suite_add_tcase(s, tc);
	tc = tcase_create("cache");
	tcase_add_test(tc, answer_is_kept_until_it_expires);
	tcase_add_test(tc, not_found_is_cached_as_such);
	tcase_add_test(tc, put_replaces_the_answer);
	tcase_add_test(tc, dropped_answer_is_gone);
	tcase_add_test(tc, expire_drops_only_expired_answers);
	tcase_add_test(tc, least_recently_used_answer_goes_when_full);
	tcase_add_test(tc, many_users_stay_within_the_bound);
	tcase_add_test(tc, zero_capacity_keeps_nothing);
	suite_add_tcase(s, tc);
	tc = tcase_create("engine");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, answer_never_comes_before_lookup_returns);
	tcase_add_test(tc, refused_connect_fails_at_once);
	tcase_add_test(tc, silent_server_times_out);
	tcase_add_test(tc, lookups_past_max_waiting_get_queue_full);
	tcase_add_test(tc, same_user_lookups_share_one_query);
	tcase_add_test(tc, cancelled_lookup_is_never_called_back);
	tcase_add_test(tc, free_answers_every_pending_lookup);
	suite_add_tcase(s, tc);
	return s;
}
