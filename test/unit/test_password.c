/*
 * test_password.c - secret kinds, md5 secrets and responses, md5 checks and
 * randomness (password.c). Expected md5 values were computed with md5sum;
 * "bob"/"s3cr3t" is the hash PostgreSQL 15 itself stored in pg_authid.
 */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "password.h"
#include "suites.h"

/* Stored by PostgreSQL 15 for ALTER ROLE postgres PASSWORD 'correct horse'. */
#define PG_SCRAM_SECRET                                                                    \
	"SCRAM-SHA-256$4096:7qqxVitooMzo1MLHPGPxmA==$lzaO6+gWaWteDxWpldFF93rg+lseMtaKWmqgxLDv70g=:" \
	"2jQNbXzRB+5gjcnmDYibkbje24eRr9sWW1OytRiKm54="

/* Stored by PostgreSQL 15 for CREATE ROLE bob PASSWORD 's3cr3t' under md5. */
#define PG_MD5_SECRET "md55084196a44b964e4f23437318558fb73"

static const uint8_t salt_1234[4] = {0x01, 0x02, 0x03, 0x04};
static const uint8_t salt_deadbeef[4] = {0xde, 0xad, 0xbe, 0xef};

START_TEST(md5_secret_is_classified_md5)
{
	ck_assert_int_eq(password_kind_of(PG_MD5_SECRET), PASSWORD_MD5);
}
END_TEST

START_TEST(near_md5_strings_are_plaintext)
{
	ck_assert_int_eq(password_kind_of("md55084196A44B964E4F23437318558FB73"), PASSWORD_PLAIN);
	ck_assert_int_eq(password_kind_of("md55084196a44b964e4f23437318558fb7"), PASSWORD_PLAIN);
	ck_assert_int_eq(password_kind_of("md55084196a44b964e4f23437318558fb733"), PASSWORD_PLAIN);
	ck_assert_int_eq(password_kind_of("md55084196a44b964e4f23437318558fbzz"), PASSWORD_PLAIN);
	ck_assert_int_eq(password_kind_of("md5"), PASSWORD_PLAIN);
}
END_TEST

START_TEST(scram_secret_is_classified_scram)
{
	ck_assert_int_eq(password_kind_of(PG_SCRAM_SECRET), PASSWORD_SCRAM);
}
END_TEST

START_TEST(scram_secret_with_many_iterations_is_still_scram)
{
	/* Taking it for plaintext would make the secret itself a valid password. */
	ck_assert_int_eq(password_kind_of("SCRAM-SHA-256$2000000000:7qqxVitooMzo1MLHPGPxmA==$"
					  "lzaO6+gWaWteDxWpldFF93rg+lseMtaKWmqgxLDv70g=:"
					  "2jQNbXzRB+5gjcnmDYibkbje24eRr9sWW1OytRiKm54="),
			 PASSWORD_SCRAM);
}
END_TEST

START_TEST(malformed_scram_secret_is_plaintext)
{
	ck_assert_int_eq(password_kind_of("SCRAM-SHA-256$4096:7qqxVitooMzo1MLHPGPxmA=="),
			 PASSWORD_PLAIN);
	ck_assert_int_eq(password_kind_of("SCRAM-SHA-256$0:7qqxVitooMzo1MLHPGPxmA==$"
					  "lzaO6+gWaWteDxWpldFF93rg+lseMtaKWmqgxLDv70g=:"
					  "2jQNbXzRB+5gjcnmDYibkbje24eRr9sWW1OytRiKm54="),
			 PASSWORD_PLAIN);
	ck_assert_int_eq(password_kind_of("correct horse"), PASSWORD_PLAIN);
	ck_assert_int_eq(password_kind_of(""), PASSWORD_PLAIN);
}
END_TEST

START_TEST(md5_secret_matches_postgres)
{
	char out[36];
	password_md5_secret("bob", "s3cr3t", out);
	ck_assert_str_eq(out, PG_MD5_SECRET);
	password_md5_secret("alice", "secret", out);
	ck_assert_str_eq(out, "md54a0a68b43b6cd5cf266fa02f196e2371");
}
END_TEST

START_TEST(md5_response_matches_known_values)
{
	char out[36];
	password_md5_response(PG_MD5_SECRET, salt_1234, out);
	ck_assert_str_eq(out, "md56f8e5cb57589d80ddc99805595e51dad");
	password_md5_response("md54a0a68b43b6cd5cf266fa02f196e2371", salt_deadbeef, out);
	ck_assert_str_eq(out, "md53e1d73ba00a55e8805aa0277d29996c5");
}
END_TEST

START_TEST(md5_check_accepts_right_answer_for_plaintext_secret)
{
	ck_assert(password_md5_check("s3cr3t", "bob", salt_1234,
				     "md56f8e5cb57589d80ddc99805595e51dad"));
}
END_TEST

START_TEST(md5_check_accepts_right_answer_for_md5_secret)
{
	ck_assert(password_md5_check(PG_MD5_SECRET, "bob", salt_1234,
				     "md56f8e5cb57589d80ddc99805595e51dad"));
	ck_assert(password_md5_check("md54a0a68b43b6cd5cf266fa02f196e2371", "alice",
				     salt_deadbeef, "md53e1d73ba00a55e8805aa0277d29996c5"));
}
END_TEST

START_TEST(md5_check_rejects_wrong_password)
{
	char hashed[36], response[36];
	password_md5_secret("bob", "s3cr3T", hashed);
	password_md5_response(hashed, salt_1234, response);
	ck_assert_str_ne(response, "md56f8e5cb57589d80ddc99805595e51dad");
	ck_assert(!password_md5_check("s3cr3t", "bob", salt_1234, response));
	ck_assert(!password_md5_check(PG_MD5_SECRET, "bob", salt_1234, response));
}
END_TEST

START_TEST(md5_check_rejects_answer_for_other_salt)
{
	ck_assert(!password_md5_check(PG_MD5_SECRET, "bob", salt_deadbeef,
				      "md56f8e5cb57589d80ddc99805595e51dad"));
}
END_TEST

START_TEST(md5_check_rejects_answer_for_other_user)
{
	/* The plaintext secret is hashed with the user name the client logs in as. */
	ck_assert(!password_md5_check("s3cr3t", "bobby", salt_1234,
				      "md56f8e5cb57589d80ddc99805595e51dad"));
}
END_TEST

START_TEST(md5_check_rejects_truncated_or_extended_answer)
{
	ck_assert(!password_md5_check(PG_MD5_SECRET, "bob", salt_1234,
				      "md56f8e5cb57589d80ddc99805595e51da"));
	ck_assert(!password_md5_check(PG_MD5_SECRET, "bob", salt_1234,
				      "md56f8e5cb57589d80ddc99805595e51dadd"));
	ck_assert(!password_md5_check(PG_MD5_SECRET, "bob", salt_1234, ""));
}
END_TEST

START_TEST(md5_check_rejects_scram_secret)
{
	char hashed[36], response[36];
	password_md5_secret("postgres", "correct horse", hashed);
	password_md5_response(hashed, salt_1234, response);
	ck_assert(password_md5_check("correct horse", "postgres", salt_1234, response));
	ck_assert(!password_md5_check(PG_SCRAM_SECRET, "postgres", salt_1234, response));
}
END_TEST

START_TEST(md5_check_rejects_empty_password)
{
	char hashed[36], response[36];
	password_md5_secret("bob", "", hashed);
	password_md5_response(hashed, salt_1234, response);
	ck_assert(!password_md5_check("", "bob", salt_1234, response));
}
END_TEST

START_TEST(random_bytes_differ_between_draws)
{
	uint8_t a[32], b[32];
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	ck_assert(password_random_bytes(a, sizeof(a)));
	ck_assert(password_random_bytes(b, sizeof(b)));
	ck_assert(memcmp(a, b, sizeof(a)) != 0);
	static const uint8_t zero[32];
	ck_assert(memcmp(a, zero, sizeof(a)) != 0);
}
END_TEST

START_TEST(random_bytes_refuses_oversized_request)
{
	uint8_t one = 0x5a;
	ck_assert(password_random_bytes(&one, 0));
	ck_assert_uint_eq(one, 0x5a);
	ck_assert(!password_random_bytes(&one, (size_t)INT_MAX + 1));
	ck_assert_uint_eq(one, 0x5a);
}
END_TEST

START_TEST(plain_check_accepts_the_password_of_every_secret_kind)
{
	ck_assert(password_check_plain("s3cr3t", "bob", "s3cr3t"));
	ck_assert(password_check_plain(PG_MD5_SECRET, "bob", "s3cr3t"));
	ck_assert(password_check_plain(PG_SCRAM_SECRET, "postgres", "correct horse"));
}
END_TEST

START_TEST(plain_check_rejects_wrong_passwords_users_and_empty)
{
	ck_assert(!password_check_plain("s3cr3t", "bob", "s3cr3"));
	ck_assert(!password_check_plain("s3cr3t", "bob", "s3cr3tt"));
	ck_assert(!password_check_plain(PG_MD5_SECRET, "bob", "S3cr3t"));
	/* md5 salts with the user: the same password for another user is another hash. */
	ck_assert(!password_check_plain(PG_MD5_SECRET, "alice", "s3cr3t"));
	ck_assert(!password_check_plain(PG_SCRAM_SECRET, "postgres", "correct horse!"));
	ck_assert(!password_check_plain("", "bob", ""));
	ck_assert(!password_check_plain(PG_MD5_SECRET, "bob", ""));
	/* The hash itself is not the password. */
	ck_assert(!password_check_plain(PG_MD5_SECRET, "bob", PG_MD5_SECRET));
}
END_TEST

Suite *password_suite(void)
{
	Suite *s = suite_create("password");
	TCase *kinds = tcase_create("kinds");
	tcase_add_test(kinds, md5_secret_is_classified_md5);
	tcase_add_test(kinds, near_md5_strings_are_plaintext);
	tcase_add_test(kinds, scram_secret_is_classified_scram);
	tcase_add_test(kinds, scram_secret_with_many_iterations_is_still_scram);
	tcase_add_test(kinds, malformed_scram_secret_is_plaintext);
	suite_add_tcase(s, kinds);

	TCase *md5 = tcase_create("md5");
	tcase_add_test(md5, md5_secret_matches_postgres);
	tcase_add_test(md5, md5_response_matches_known_values);
	tcase_add_test(md5, md5_check_accepts_right_answer_for_plaintext_secret);
	tcase_add_test(md5, md5_check_accepts_right_answer_for_md5_secret);
	tcase_add_test(md5, md5_check_rejects_wrong_password);
	tcase_add_test(md5, md5_check_rejects_answer_for_other_salt);
	tcase_add_test(md5, md5_check_rejects_answer_for_other_user);
	tcase_add_test(md5, md5_check_rejects_truncated_or_extended_answer);
	tcase_add_test(md5, md5_check_rejects_scram_secret);
	tcase_add_test(md5, md5_check_rejects_empty_password);
	suite_add_tcase(s, md5);

	TCase *plain = tcase_create("plain");
	tcase_add_test(plain, plain_check_accepts_the_password_of_every_secret_kind);
	tcase_add_test(plain, plain_check_rejects_wrong_passwords_users_and_empty);
	suite_add_tcase(s, plain);

	TCase *rnd = tcase_create("random");
	tcase_add_test(rnd, random_bytes_differ_between_draws);
	tcase_add_test(rnd, random_bytes_refuses_oversized_request);
	suite_add_tcase(s, rnd);
	return s;
}
