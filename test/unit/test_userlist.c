/*
 * test_userlist.c - userlist.c: the "user" "secret" format, lookups over
 * thousands of users, every error message with its FILE:LINE (never showing
 * a secret), and etc/userlist.txt, whose secrets must match the passwords
 * its comments give.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "suites.h"
#include "userlist.h"

static char tmp_path[64];

/* Writes text to a fresh file in /tmp and loads it; the file is removed again. */
static struct userlist *load(const char *text, char **errors)
{
	snprintf(tmp_path, sizeof(tmp_path), "/tmp/pgsluice-users-XXXXXX");
	int fd = mkstemp(tmp_path);
	ck_assert_int_ge(fd, 0);
	size_t len = strlen(text);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	struct userlist *ul = userlist_load(tmp_path, errors);
	unlink(tmp_path);
	return ul;
}

/* Loading text must fail with exactly expected, where "FILE" stands for the file name. */
static void expect_errors(const char *text, const char *expected)
{
	char *errors = NULL, want[2048];
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

START_TEST(entries_comments_and_blank_lines)
{
	char *errors = NULL;
	struct userlist *ul =
		load("; comment\n# another\n\n"
		     "\"alice\" \"plain-password\"\n"
		     "  \"bob\"\t\"md5a1b2c3d4e5f60718293a4b5c6d7e8f90\"  \n"
		     "\"carol\" \"SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy\"\r\n",
		     &errors);
	ck_assert_msg(ul != NULL, "%s", errors != NULL ? errors : "");
	ck_assert_uint_eq(userlist_count(ul), 3);
	ck_assert_str_eq(userlist_find(ul, "alice"), "plain-password");
	ck_assert_str_eq(userlist_find(ul, "bob"), "md5a1b2c3d4e5f60718293a4b5c6d7e8f90");
	ck_assert_str_eq(userlist_find(ul, "carol"),
			 "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy");
	ck_assert_ptr_null(userlist_find(ul, "mallory"));
	ck_assert_ptr_null(userlist_find(ul, "Alice"));
	ck_assert_ptr_null(userlist_find(ul, ""));
	userlist_free(ul);
}
END_TEST

START_TEST(doubled_quotes_stand_for_one_quote)
{
	struct userlist *ul = load("\"we\"\"ird\" \"pa\"\"ss word\"\"\"\n", NULL);
	ck_assert_ptr_nonnull(ul);
	ck_assert_str_eq(userlist_find(ul, "we\"ird"), "pa\"ss word\"");
	userlist_free(ul);
}
END_TEST

START_TEST(empty_file_gives_an_empty_list)
{
	struct userlist *ul = load("", NULL);
	ck_assert_ptr_nonnull(ul);
	ck_assert_uint_eq(userlist_count(ul), 0);
	ck_assert_ptr_null(userlist_find(ul, "alice"));
	userlist_free(ul);
	ck_assert_ptr_null(userlist_find(NULL, "alice"));
	ck_assert_uint_eq(userlist_count(NULL), 0);
	userlist_free(NULL);
}
END_TEST

START_TEST(thousands_of_users_are_all_found)
{
	enum {
		N = 5000
	};
	char *text = malloc(N * 40), name[32], want[32];
	size_t n = 0;
	/* Written in descending order, so that the list has to sort them. */
	for (int i = N - 1; i >= 0; i--)
		n += (size_t)sprintf(text + n, "\"user%d\" \"secret%d\"\n", i, i * 7);
	struct userlist *ul = load(text, NULL);
	ck_assert_ptr_nonnull(ul);
	ck_assert_uint_eq(userlist_count(ul), N);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		snprintf(want, sizeof(want), "secret%d", i * 7);
		const char *secret = userlist_find(ul, name);
		ck_assert_msg(secret != NULL && strcmp(secret, want) == 0, "%s", name);
	}
	ck_assert_ptr_null(userlist_find(ul, "user5000"));
	ck_assert_ptr_null(userlist_find(ul, "user"));
	userlist_free(ul);
	free(text);
}
END_TEST

START_TEST(malformed_lines_are_reported_with_their_line)
{
	expect_errors("\"ok\" \"x\"\nalice secret\n",
		      "FILE:2: expected the user name in double quotes (\"user\" \"secret\")\n");
	expect_errors("\"alice secret\n", "FILE:1: the user name has no closing double quote\n");
	expect_errors("\"alice\" secret\n",
		      "FILE:1: expected the secret in double quotes (\"user\" \"secret\")\n");
	expect_errors("\"alice\"\n",
		      "FILE:1: expected the secret in double quotes (\"user\" \"secret\")\n");
	expect_errors("\"alice\" \"secret\" extra\n", "FILE:1: unexpected text after the secret\n");
	expect_errors("\"\" \"secret\"\n", "FILE:1: the user name is empty or holds a NUL byte\n");
	expect_errors("\"alice\" \"\"\n",
		      "FILE:1: the secret of user \"alice\" is empty or holds a NUL byte\n");
}
END_TEST

START_TEST(secrets_never_appear_in_errors)
{
	char *errors = NULL;
	ck_assert_ptr_null(load("\"alice\" \"hunter2\n\"bob\" \"swordfish\" trailing\n", &errors));
	ck_assert_ptr_nonnull(errors);
	ck_assert_ptr_null(strstr(errors, "hunter2"));
	ck_assert_ptr_null(strstr(errors, "swordfish"));
	ck_assert_ptr_nonnull(strstr(errors, ":1: the secret has no closing double quote\n"));
	ck_assert_ptr_nonnull(strstr(errors, ":2: unexpected text after the secret\n"));
	free(errors);
}
END_TEST

START_TEST(overlong_fields_and_lines_are_refused)
{
	char text[6000];
	int n = sprintf(text, "\"");
	memset(text + n, 'u', 64);
	sprintf(text + n + 64, "\" \"x\"\n");
	expect_errors(text, "FILE:1: the user name is longer than 63 bytes\n");

	n = sprintf(text, "\"alice\" \"");
	memset(text + n, 's', 1025);
	sprintf(text + n + 1025, "\"\n");
	expect_errors(text, "FILE:1: the secret is longer than 1024 bytes\n");

	n = sprintf(text, "\"ok\" \"x\"\n; ");
	memset(text + n, 'c', 5000);
	sprintf(text + n + 5000, "\n\"also\" \"fine\"\n");
	expect_errors(text, "FILE:2: line is longer than 4096 bytes\n");
}
END_TEST

START_TEST(duplicate_user_names_the_first_line)
{
	expect_errors("\"bob\" \"a\"\n\"alice\" \"b\"\n\"bob\" \"c\"\n\"bob\" \"d\"\n",
		      "FILE:3: user \"bob\" is listed again (first on line 1)\n"
		      "FILE:4: user \"bob\" is listed again (first on line 1)\n");
}
END_TEST

START_TEST(all_errors_are_collected)
{
	expect_errors("bad\n\"ok\" \"fine\"\n\"x\" \"y\" z\n\"\" \"q\"\n",
		      "FILE:1: expected the user name in double quotes (\"user\" \"secret\")\n"
		      "FILE:3: unexpected text after the secret\n"
		      "FILE:4: the user name is empty or holds a NUL byte\n");
}
END_TEST

START_TEST(missing_file_is_reported)
{
	char *errors = NULL;
	ck_assert_ptr_null(userlist_load("/nonexistent/userlist.txt", &errors));
	ck_assert_str_eq(errors,
			 "/nonexistent/userlist.txt: cannot open: No such file or directory\n");
	free(errors);
	ck_assert_ptr_null(userlist_load("/nonexistent/userlist.txt", NULL));
}
END_TEST

static void hex(const unsigned char *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
}

static void base64(const unsigned char *in, size_t len, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* The SCRAM-SHA-256 secret of password with the salt and iterations of secret. */
static void scram_secret_like(const char *secret, const char *password, char *out, size_t cap)
{
	unsigned char salt[64], salted[32], client_key[32], stored_key[32], server_key[32];
	char salt_b64[100], stored_b64[64], server_b64[64];
	unsigned int len;
	int iterations = 0;

	ck_assert_int_eq(sscanf(secret, "SCRAM-SHA-256$%d:%99[^$]", &iterations, salt_b64), 2);
	int salt_len =
		EVP_DecodeBlock(salt, (const unsigned char *)salt_b64, (int)strlen(salt_b64));
	ck_assert_int_gt(salt_len, 0);
	salt_len -= (int)(strlen(salt_b64) - strcspn(salt_b64, "=")); /* padding decodes as zeros */
	ck_assert(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, salt_len, iterations,
				    EVP_sha256(), sizeof(salted), salted));
	HMAC(EVP_sha256(), salted, sizeof(salted), (const unsigned char *)"Client Key", 10,
	     client_key, &len);
	EVP_Digest(client_key, sizeof(client_key), stored_key, &len, EVP_sha256(), NULL);
	HMAC(EVP_sha256(), salted, sizeof(salted), (const unsigned char *)"Server Key", 10,
	     server_key, &len);
	base64(stored_key, sizeof(stored_key), stored_b64);
	base64(server_key, sizeof(server_key), server_b64);
	snprintf(out, cap, "SCRAM-SHA-256$%d:%s$%s:%s", iterations, salt_b64, stored_b64,
		 server_b64);
}

START_TEST(sample_userlist_holds_the_documented_secrets)
{
	const char *dir = getenv("PGSLUICE_SRCDIR");
	char path[1024], *errors = NULL, want[256];
	unsigned char digest[16];
	unsigned int len;

	snprintf(path, sizeof(path), "%s/etc/userlist.txt", dir != NULL ? dir : ".");
	struct userlist *ul = userlist_load(path, &errors);
	ck_assert_msg(ul != NULL, "%s", errors != NULL ? errors : path);
	ck_assert_uint_eq(userlist_count(ul), 3);
	ck_assert_str_eq(userlist_find(ul, "alice"), "alice-secret");

	EVP_Digest("bob-passwordbob", 15, digest, &len, EVP_md5(), NULL);
	strcpy(want, "md5");
	hex(digest, sizeof(digest), want + 3);
	ck_assert_str_eq(userlist_find(ul, "bob"), want);

	const char *carol = userlist_find(ul, "carol");
	ck_assert_ptr_nonnull(carol);
	scram_secret_like(carol, "carol-password", want, sizeof(want));
	ck_assert_str_eq(carol, want);
	userlist_free(ul);
}
END_TEST

Suite *userlist_suite(void)
{
	Suite *s = suite_create("userlist");
	TCase *tc = tcase_create("format");
	tcase_add_test(tc, entries_comments_and_blank_lines);
	tcase_add_test(tc, doubled_quotes_stand_for_one_quote);
	tcase_add_test(tc, empty_file_gives_an_empty_list);
	tcase_add_test(tc, thousands_of_users_are_all_found);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, malformed_lines_are_reported_with_their_line);
	tcase_add_test(tc, secrets_never_appear_in_errors);
	tcase_add_test(tc, overlong_fields_and_lines_are_refused);
	tcase_add_test(tc, duplicate_user_names_the_first_line);
	tcase_add_test(tc, all_errors_are_collected);
	tcase_add_test(tc, missing_file_is_reported);
	suite_add_tcase(s, tc);

	tc = tcase_create("sample");
	tcase_add_test(tc, sample_userlist_holds_the_documented_secrets);
	suite_add_tcase(s, tc);
	return s;
}
