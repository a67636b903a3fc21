/*
 * test_scramkeys.c - the ClientKeys kept for SCRAM pass-through: found by the StoredKey
 * of a secret, missed for another secret, and bounded when more keys come than fit.
 */
#include <check.h>
#include <string.h>

#include <openssl/evp.h>

#include "scramkeys.h"
#include "suites.h"

/* A ClientKey made from n, and its StoredKey. */
static void make_key(unsigned n, uint8_t client_key[SCRAM_KEY_LEN],
		     uint8_t stored_key[SCRAM_KEY_LEN])
{
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		client_key[i] = (uint8_t)(n >> (8 * (i % 4)) ^ (i * 37));
	unsigned int len = 0;
	ck_assert_int_eq(EVP_Digest(client_key, SCRAM_KEY_LEN, stored_key, &len, EVP_sha256(),
				    NULL),
			 1);
}

START_TEST(a_learned_key_is_found_by_its_stored_key_only)
{
	struct scramkeys *keys = NULL;
	uint8_t ck[SCRAM_KEY_LEN], sk[SCRAM_KEY_LEN], other_ck[SCRAM_KEY_LEN],
		other_sk[SCRAM_KEY_LEN], out[SCRAM_KEY_LEN];
	make_key(1, ck, sk);
	make_key(2, other_ck, other_sk);
	ck_assert(!scramkeys_find(keys, sk, out));
	ck_assert(scramkeys_learn(&keys, ck));
	ck_assert(keys != NULL);
	ck_assert(scramkeys_find(keys, sk, out));
	ck_assert_mem_eq(out, ck, SCRAM_KEY_LEN);
	/* Another secret (a changed password) finds nothing. */
	ck_assert(!scramkeys_find(keys, other_sk, out));
	/* Learning the same key again keeps one entry that still answers. */
	ck_assert(scramkeys_learn(&keys, ck));
	ck_assert(scramkeys_find(keys, sk, out));
	ck_assert_mem_eq(out, ck, SCRAM_KEY_LEN);
	scramkeys_free(keys);
}
END_TEST

START_TEST(more_keys_than_slots_keep_the_table_bounded_and_the_latest_found)
{
	struct scramkeys *keys = NULL;
	uint8_t ck[SCRAM_KEY_LEN], sk[SCRAM_KEY_LEN], out[SCRAM_KEY_LEN];
	unsigned total = 3 * SCRAMKEYS_SLOTS;
	for (unsigned n = 0; n < total; n++) {
		make_key(n, ck, sk);
		ck_assert(scramkeys_learn(&keys, ck));
		/* The key just learned is always there. */
		ck_assert(scramkeys_find(keys, sk, out));
		ck_assert_mem_eq(out, ck, SCRAM_KEY_LEN);
	}
	/* Most of the last slot-full are still known; none answers with a wrong key. */
	unsigned found = 0;
	for (unsigned n = total - SCRAMKEYS_SLOTS / 2; n < total; n++) {
		make_key(n, ck, sk);
		if (scramkeys_find(keys, sk, out)) {
			ck_assert_mem_eq(out, ck, SCRAM_KEY_LEN);
			found++;
		}
	}
	ck_assert_uint_gt(found, SCRAMKEYS_SLOTS / 4);
	scramkeys_free(keys);
}
END_TEST

Suite *scramkeys_suite(void)
{
	Suite *s = suite_create("scramkeys");
	TCase *tc = tcase_create("table");
	tcase_add_test(tc, a_learned_key_is_found_by_its_stored_key_only);
	tcase_add_test(tc, more_keys_than_slots_keep_the_table_bounded_and_the_latest_found);
	suite_add_tcase(s, tc);
	return s;
}
