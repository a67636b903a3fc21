/*
 * test_health.c - the pure parts of the health probes (health.c): LSN text,
 * the probe row, the verdict on a replica's lag, and the ban bookkeeping
 * that the proxy path triggers (health_report_failure, health_target_usable)
 * on a worker with no probe running. The probes themselves run against real
 * servers in test/integration/test_health.c.
 */
#include <check.h>
#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "health.h"
#include "log.h"
#include "suites.h"
#include "worker.h"

/* ----- LSN text ----- */

START_TEST(lsn_text_becomes_high_and_low_words)
{
	uint64_t lsn = 1;
	ck_assert(health_parse_lsn("16/B374D848", &lsn));
	ck_assert_uint_eq(lsn, 0x16B374D848ULL);
	ck_assert(health_parse_lsn("0/3000060", &lsn));
	ck_assert_uint_eq(lsn, 0x3000060ULL);
	ck_assert(health_parse_lsn("1/0", &lsn));
	ck_assert_uint_eq(lsn, 1ULL << 32);
}
END_TEST

START_TEST(zero_and_largest_lsn_parse)
{
	uint64_t lsn = 1;
	ck_assert(health_parse_lsn("0/0", &lsn));
	ck_assert_uint_eq(lsn, 0);
	ck_assert(health_parse_lsn("FFFFFFFF/FFFFFFFF", &lsn));
	ck_assert_uint_eq(lsn, UINT64_MAX);
	ck_assert(health_parse_lsn("00000000/00000001", &lsn));
	ck_assert_uint_eq(lsn, 1);
}
END_TEST

START_TEST(lowercase_hex_is_accepted)
{
	uint64_t lsn = 0;
	ck_assert(health_parse_lsn("a/1f", &lsn));
	ck_assert_uint_eq(lsn, 0xA0000001FULL);
}
END_TEST

START_TEST(malformed_lsn_is_rejected)
{
	static const char *const bad[] = {
		"",      "/",     "1",     "1/",          "/1",          "1/2/3", "G/1",
		"1/G",   " 1/2",  "1/2 ",  "1 /2",        "-1/2",        "+1/2",  "0x1/2",
		"1/-2",  "1\\2", "1/2\n", "123456789/0", "0/123456789",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t lsn = 42;
		ck_assert_msg(!health_parse_lsn(bad[i], &lsn), "\"%s\" was accepted", bad[i]);
		ck_assert_msg(lsn == 42, "\"%s\" changed the output", bad[i]);
	}
}
END_TEST

/* ----- the probe row ----- */

START_TEST(replica_row_is_parsed)
{
	struct health_sample s;
	ck_assert(health_parse_sample("t", "0/5000A28", "1.250000", &s));
	ck_assert(s.in_recovery);
	ck_assert(s.lsn_known);
	ck_assert_uint_eq(s.lsn, 0x5000A28ULL);
	ck_assert(s.age_known);
	ck_assert_double_eq_tol(s.replay_age, 1.25, 1e-9);
}
END_TEST

START_TEST(primary_row_has_no_replay_age)
{
	struct health_sample s;
	ck_assert(health_parse_sample("f", "2/10", NULL, &s));
	ck_assert(!s.in_recovery);
	ck_assert(s.lsn_known);
	ck_assert_uint_eq(s.lsn, 0x200000010ULL);
	ck_assert(!s.age_known);
	ck_assert_double_eq(s.replay_age, 0);
}
END_TEST

START_TEST(null_lsn_is_unknown)
{
	struct health_sample s;
	ck_assert(health_parse_sample("t", NULL, NULL, &s));
	ck_assert(s.in_recovery);
	ck_assert(!s.lsn_known);
	ck_assert_uint_eq(s.lsn, 0);
}
END_TEST

START_TEST(negative_replay_age_counts_as_zero)
{
	struct health_sample s;
	ck_assert(health_parse_sample("t", "0/1", "-0.004", &s));
	ck_assert(s.age_known);
	ck_assert_double_eq(s.replay_age, 0);
}
END_TEST

START_TEST(malformed_row_is_rejected)
{
	struct health_sample s;
	ck_assert(!health_parse_sample(NULL, "0/1", "1", &s));
	ck_assert(!health_parse_sample("true", "0/1", "1", &s));
	ck_assert(!health_parse_sample("", "0/1", "1", &s));
	ck_assert(!health_parse_sample("t", "01", "1", &s));
	ck_assert(!health_parse_sample("t", "0/1", "", &s));
	ck_assert(!health_parse_sample("t", "0/1", "1.5s", &s));
	ck_assert(!health_parse_sample("t", "0/1", "abc", &s));
	ck_assert(!health_parse_sample("t", "0/1", "nan", &s));
	ck_assert(!health_parse_sample("t", "0/1", "inf", &s));
	ck_assert(!health_parse_sample("t", "0/1", "1e999", &s));
}
END_TEST

/* ----- the verdict on a replica ----- */

static struct health_sample replica_at(uint64_t lsn, double age)
{
	struct health_sample s = {.in_recovery = true, .lsn_known = true, .lsn = lsn,
				  .age_known = true, .replay_age = age, .behind_for = -1};
	return s;
}

START_TEST(promoted_replica_is_banned)
{
	struct health_sample s = replica_at(100, 0);
	s.in_recovery = false;
	int64_t bytes;
	double seconds;
	char reason[128] = "";
	ck_assert(!health_judge_replica(&s, 100, 10000000, 1 << 24, &bytes, &seconds, reason,
					sizeof(reason)));
	ck_assert_str_eq(reason, "not in recovery (promoted?)");
}
END_TEST

START_TEST(lag_over_byte_limit_bans)
{
	struct health_sample s = replica_at(0x1000000, 0.5);
	int64_t bytes;
	double seconds;
	char reason[128] = "";
	ck_assert(!health_judge_replica(&s, 0x2000000, 10000000, 1000000, &bytes, &seconds, reason,
					sizeof(reason)));
	ck_assert_int_eq(bytes, 16777216);
	ck_assert_double_eq_tol(seconds, 0.5, 1e-9);
	ck_assert_str_eq(reason, "lag 16777216 bytes > max_replica_lag_bytes");
}
END_TEST

START_TEST(lag_at_byte_limit_passes)
{
	struct health_sample s = replica_at(1000, 0.5);
	int64_t bytes;
	double seconds;
	char reason[128] = "";
	ck_assert(health_judge_replica(&s, 2000, 10000000, 1000, &bytes, &seconds, reason,
				       sizeof(reason)));
	ck_assert_int_eq(bytes, 1000);
	ck_assert_str_eq(reason, "");
}
END_TEST

START_TEST(lag_over_time_limit_bans)
{
	struct health_sample s = replica_at(1000, 12.34);
	int64_t bytes;
	double seconds;
	char reason[128] = "";
	ck_assert(!health_judge_replica(&s, 1100, 10000000, 1 << 24, &bytes, &seconds, reason,
					sizeof(reason)));
	ck_assert_int_eq(bytes, 100);
	ck_assert_double_eq_tol(seconds, 12.34, 1e-9);
	ck_assert_str_eq(reason, "lag 12.3s > max_replica_lag");
}
END_TEST

START_TEST(old_replay_age_of_a_replica_just_behind_is_not_its_lag)
{
	/* Idle for a minute, then one write: the replica is 100 bytes and 0.2 s behind. */
	struct health_sample s = replica_at(1000, 60);
	s.behind_for = 0.2;
	int64_t bytes;
	double seconds;
	char reason[128] = "";
	ck_assert(health_judge_replica(&s, 1100, 10000000, 1 << 24, &bytes, &seconds, reason,
				       sizeof(reason)));
	ck_assert_double_eq_tol(seconds, 0.2, 1e-9);
	/* Still behind 12 s later: now it is banned, for the time it has been behind. */
	s.behind_for = 12;
	ck_assert(!health_judge_replica(&s, 1100, 10000000, 1 << 24, &bytes, &seconds, reason,
					sizeof(reason)));
	ck_assert_str_eq(reason, "lag 12.0s > max_replica_lag");
}
END_TEST

START_TEST(replay_age_without_byte_lag_is_no_lag)
{
	/* An idle primary: the last replayed commit is old, yet nothing is missing. */
	struct health_sample s = replica_at(5000, 3600);
	int64_t bytes;
	double seconds;
	char reason[128] = "";
	ck_assert(health_judge_replica(&s, 5000, 10000000, 1 << 24, &bytes, &seconds, reason,
				       sizeof(reason)));
	ck_assert_int_eq(bytes, 0);
	ck_assert_double_eq(seconds, 0);
}
END_TEST

START_TEST(replica_ahead_of_known_primary_has_no_lag)
{
	struct health_sample s = replica_at(9000, 60);
	int64_t bytes;
	double seconds;
	char reason[128] = "";
	ck_assert(health_judge_replica(&s, 5000, 10000000, 1, &bytes, &seconds, reason,
				       sizeof(reason)));
	ck_assert_int_eq(bytes, 0);
	ck_assert_double_eq(seconds, 0);
}
END_TEST

START_TEST(unknown_positions_mean_no_lag)
{
	struct health_sample s = replica_at(9000, 60);
	int64_t bytes = 7;
	double seconds = 7;
	char reason[128] = "";
	ck_assert(health_judge_replica(&s, 0, 10000000, 1, &bytes, &seconds, reason,
				       sizeof(reason)));
	ck_assert_int_eq(bytes, 0);
	ck_assert_double_eq(seconds, 0);
	s.lsn_known = false;
	s.lsn = 0;
	ck_assert(health_judge_replica(&s, 5000, 10000000, 1, &bytes, &seconds, reason,
				       sizeof(reason)));
	ck_assert_int_eq(bytes, 0);
}
END_TEST

START_TEST(zero_limits_mean_no_limit)
{
	struct health_sample s = replica_at(0, 86400);
	int64_t bytes;
	double seconds;
	char reason[128] = "";
	ck_assert(health_judge_replica(&s, UINT64_MAX, 0, 0, &bytes, &seconds, reason,
				       sizeof(reason)));
	ck_assert_int_eq(bytes, INT64_MAX);
	ck_assert_double_eq_tol(seconds, 86400, 1e-9);
}
END_TEST

/* ----- bans from the proxy path ----- */

static struct ev_loop *loop;
static struct config cfg;
static struct worker w;
static struct database db;
static struct target primary, replica;

static void setup(void)
{
	loop = ev_loop_new(EVFLAG_AUTO);
	ck_assert_ptr_nonnull(loop);
	memset(&cfg, 0, sizeof(cfg));
	cfg.replica_ban_time = 10 * 1000000;
	memset(&w, 0, sizeof(w));
	w.loop = loop;
	w.cfg = &cfg;
	list_init(&w.databases);
	memset(&db, 0, sizeof(db));
	db.name = "app";
	list_init(&db.targets);
	list_init(&db.pools);
	list_add_tail(&w.databases, &db.node);
	memset(&primary, 0, sizeof(primary));
	primary.db = &db;
	primary.host = "127.0.0.1";
	primary.port = 5432;
	primary.role = TARGET_PRIMARY;
	list_add_tail(&db.targets, &primary.node);
	db.primary = &primary;
	replica = primary;
	replica.port = 5433;
	replica.role = TARGET_REPLICA;
	list_add_tail(&db.targets, &replica.node);
}

static void teardown(void)
{
	health_stop(&w);
	ck_assert_ptr_null(primary.probe);
	ck_assert_ptr_null(replica.probe);
	ev_loop_destroy(loop);
}

START_TEST(replica_failure_bans_it_for_ban_time)
{
	ev_tstamp now = ev_now(loop);
	ck_assert(health_target_usable(&replica, now));
	health_report_failure(&w, &replica, "connection refused");
	ck_assert(replica.banned);
	ck_assert_uint_eq(replica.bans, 1);
	ck_assert_double_eq_tol(replica.banned_until, now + 10, 1e-6);
	ck_assert_str_eq(replica.ban_reason, "connection refused");
	ck_assert(!health_target_usable(&replica, now));
	ck_assert(!health_target_usable(&replica, now + 9.9));
	/* No probe runs for it, so the ban lapses by time alone. */
	ck_assert(health_target_usable(&replica, now + 10));
}
END_TEST

START_TEST(failure_of_banned_replica_extends_without_counting)
{
	health_report_failure(&w, &replica, "connection refused");
	cfg.replica_ban_time = 30 * 1000000;
	health_report_failure(&w, &replica, "server closed the connection");
	ck_assert(replica.banned);
	ck_assert_uint_eq(replica.bans, 1);
	ck_assert_double_eq_tol(replica.banned_until, ev_now(loop) + 30, 1e-6);
	ck_assert_str_eq(replica.ban_reason, "server closed the connection");
}
END_TEST

START_TEST(long_reason_is_truncated_not_overrun)
{
	char reason[400];
	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	health_report_failure(&w, &replica, reason);
	ck_assert_uint_eq(strlen(replica.ban_reason), sizeof(replica.ban_reason) - 1);
}
END_TEST

START_TEST(primary_failure_never_bans)
{
	ev_tstamp now = ev_now(loop);
	health_report_failure(&w, &primary, "connection refused");
	health_report_failure(&w, &primary, "connection refused");
	ck_assert(!primary.banned);
	ck_assert_uint_eq(primary.bans, 0);
	ck_assert(health_target_usable(&primary, now));
}
END_TEST

START_TEST(primary_lsn_is_unknown_before_any_probe)
{
	ck_assert_uint_eq(health_primary_lsn_since(&db, 0), 0);
	health_report_failure(&w, &primary, "connection refused");
	ck_assert_uint_eq(health_primary_lsn_since(&db, 0), 0);
}
END_TEST

START_TEST(forgetting_a_target_drops_its_probe)
{
	health_report_failure(&w, &primary, "connection refused");
	ck_assert_ptr_nonnull(primary.probe);
	health_forget_target(&w, &primary);
	ck_assert_ptr_null(primary.probe);
	health_forget_target(&w, &primary);
	ck_assert_ptr_null(primary.probe);
}
END_TEST

/* How many times needle occurs in the file at path. */
static int count_in_file(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	char text[8192];
	size_t len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[len] = '\0';
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

START_TEST(ban_and_primary_failure_are_logged_once)
{
	char path[] = "/tmp/pgsluice-health-log-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert(log_open(path, false, 0));
	for (int i = 0; i < 3; i++) {
		health_report_failure(&w, &replica, "connection refused");
		health_report_failure(&w, &primary, "connection refused");
	}
	log_close();
	int bans = count_in_file(path, "replica 127.0.0.1:5433 of app banned for 10s: ");
	int primary_failures = count_in_file(path, "primary 127.0.0.1:5432 of app failed");
	unlink(path);
	ck_assert_int_eq(bans, 1);
	ck_assert_int_eq(primary_failures, 1);
	ck_assert_uint_eq(replica.bans, 1);
}
END_TEST

Suite *health_unit_suite(void)
{
	Suite *s = suite_create("health");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, lsn_text_becomes_high_and_low_words);
	tcase_add_test(tc, zero_and_largest_lsn_parse);
	tcase_add_test(tc, lowercase_hex_is_accepted);
	tcase_add_test(tc, malformed_lsn_is_rejected);
	tcase_add_test(tc, replica_row_is_parsed);
	tcase_add_test(tc, primary_row_has_no_replay_age);
	tcase_add_test(tc, null_lsn_is_unknown);
	tcase_add_test(tc, negative_replay_age_counts_as_zero);
	tcase_add_test(tc, malformed_row_is_rejected);
	suite_add_tcase(s, tc);
	tc = tcase_create("verdict");
	tcase_add_test(tc, promoted_replica_is_banned);
	tcase_add_test(tc, lag_over_byte_limit_bans);
	tcase_add_test(tc, lag_at_byte_limit_passes);
	tcase_add_test(tc, lag_over_time_limit_bans);
	tcase_add_test(tc, old_replay_age_of_a_replica_just_behind_is_not_its_lag);
	tcase_add_test(tc, replay_age_without_byte_lag_is_no_lag);
	tcase_add_test(tc, replica_ahead_of_known_primary_has_no_lag);
	tcase_add_test(tc, unknown_positions_mean_no_lag);
	tcase_add_test(tc, zero_limits_mean_no_limit);
	suite_add_tcase(s, tc);
	tc = tcase_create("bans");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, replica_failure_bans_it_for_ban_time);
	tcase_add_test(tc, failure_of_banned_replica_extends_without_counting);
	tcase_add_test(tc, long_reason_is_truncated_not_overrun);
	tcase_add_test(tc, primary_failure_never_bans);
	tcase_add_test(tc, ban_and_primary_failure_are_logged_once);
	tcase_add_test(tc, primary_lsn_is_unknown_before_any_probe);
	tcase_add_test(tc, forgetting_a_target_drops_its_probe);
	suite_add_tcase(s, tc);
	return s;
}
