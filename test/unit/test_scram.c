/*
 * test_scram.c - SCRAM-SHA-256 (scram.c): RFC 7677's example on both sides,
 * round trips between our client and our server with plaintext, built and
 * PostgreSQL-generated secrets, pass-through with a recovered ClientKey, and
 * rejection of wrong passwords, tampered or malformed messages, oversized
 * input and channel binding mismatches. The PostgreSQL secret was stored by
 * PostgreSQL 15; its ClientKey was computed with python3's hashlib.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "scram.h"
#include "suites.h"

/* RFC 7677, section 3. */
#define RFC_CLIENT_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_SUFFIX "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_CLIENT_FIRST "n,,n=user,r=" RFC_CLIENT_NONCE
#define RFC_SERVER_FIRST                                                                   \
	"r=" RFC_CLIENT_NONCE RFC_SERVER_SUFFIX ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL                                                                   \
	"c=biws,r=" RFC_CLIENT_NONCE RFC_SERVER_SUFFIX                                     \
	",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* The RFC's "pencil" with its salt and 4096 iterations, as pg_authid would store it. */
#define RFC_SECRET                                                                         \
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:" \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

/* Stored by PostgreSQL 15 for ALTER ROLE postgres PASSWORD 'correct horse'. */
#define PG_SECRET                                                                          \
	"SCRAM-SHA-256$4096:7qqxVitooMzo1MLHPGPxmA==$lzaO6+gWaWteDxWpldFF93rg+lseMtaKWmqgxLDv70g=:" \
	"2jQNbXzRB+5gjcnmDYibkbje24eRr9sWW1OytRiKm54="
#define PG_PASSWORD "correct horse"

static const uint8_t rfc_client_key[SCRAM_KEY_LEN] = {
    0xa6, 0x0f, 0xc9, 0x23, 0xd6, 0x7e, 0x86, 0x44, 0xa9, 0x2d, 0x16, 0xb9, 0x6e, 0xda, 0x5e, 0xf4,
    0x65, 0x6b, 0x0c, 0x72, 0x5c, 0x48, 0x43, 0x74, 0xbe, 0x25, 0x53, 0x55, 0x76, 0x99, 0x6e, 0x8b};

static const uint8_t pg_client_key[SCRAM_KEY_LEN] = {
    0x0e, 0x5a, 0xc2, 0x77, 0xc0, 0x8f, 0x06, 0x9e, 0xd9, 0xc3, 0x8a, 0x87, 0x45, 0x96, 0xb3, 0xc6,
    0xd3, 0xcc, 0xd1, 0x8c, 0x14, 0x19, 0x5f, 0x4d, 0xb6, 0x5b, 0x56, 0x07, 0xe1, 0xbc, 0xd2, 0xc7};

static const uint8_t cert_hash[32] = {
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f};

/* Big enough that no test fails for lack of room; tests of short buffers say so. */
#define OUT_CAP 2048

static struct scram_server srv;
static struct scram_client cli;
static char out[OUT_CAP];
static const char *err;

static void reset(void)
{
	memset(&srv, 0, sizeof(srv));
	memset(&cli, 0, sizeof(cli));
	memset(out, 0, sizeof(out));
	err = NULL;
}

static bool server_first(const char *msg)
{
	return scram_server_handle_first(&srv, msg, strlen(msg), out, sizeof(out), &err);
}

static bool server_final(const char *msg)
{
	return scram_server_handle_final(&srv, msg, strlen(msg), out, sizeof(out), &err);
}

/*
 * Runs the rest of an exchange between cli and srv once the client wrote its
 * client-first-message. Returns true when the server accepted the proof and
 * the client accepted the signature; err tells which step failed otherwise.
 */
static bool run_exchange_from(const char *first)
{
	char sfirst[OUT_CAP], final[OUT_CAP], sfinal[OUT_CAP];
	if (!scram_server_handle_first(&srv, first, strlen(first), sfirst, sizeof(sfirst), &err))
		return false;
	if (!scram_client_handle_server_first(&cli, sfirst, strlen(sfirst), final, sizeof(final),
					      &err))
		return false;
	if (!scram_server_handle_final(&srv, final, strlen(final), sfinal, sizeof(sfinal), &err))
		return false;
	return scram_client_verify_server_final(&cli, sfinal, strlen(sfinal), &err);
}

/* A whole exchange between cli and srv, both initialized. */
static bool run_exchange(void)
{
	char first[OUT_CAP];
	ck_assert(scram_client_first(&cli, first, sizeof(first)));
	return run_exchange_from(first);
}

/*
 * Writes without_proof ",p=" proof: the client-final-message of someone who
 * knows the RFC password, computed here with OpenSSL directly so that tests
 * can send messages our client never sends (channel binding, extensions).
 */
static void rfc_final(const char *bare, const char *sfirst, const char *without_proof,
		      char *msg, size_t cap)
{
	uint8_t stored[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN], proof[SCRAM_KEY_LEN];
	unsigned int n = 0;
	ck_assert(EVP_Digest(rfc_client_key, SCRAM_KEY_LEN, stored, &n, EVP_sha256(), NULL) == 1);
	char am[4 * OUT_CAP];
	int am_len = snprintf(am, sizeof(am), "%s,%s,%s", bare, sfirst, without_proof);
	ck_assert(HMAC(EVP_sha256(), stored, SCRAM_KEY_LEN, (const uint8_t *)am, (size_t)am_len, sig,
		       &n) != NULL);
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		proof[i] = rfc_client_key[i] ^ sig[i];
	unsigned char proof64[64];
	EVP_EncodeBlock(proof64, proof, SCRAM_KEY_LEN);
	snprintf(msg, cap, "%s,p=%s", without_proof, proof64);
}

/* Starts the RFC exchange on srv up to the point where the client-final is due. */
static void rfc_server_after_first(void)
{
	reset();
	ck_assert(scram_server_init(&srv, RFC_SECRET, "user"));
	ck_assert(scram_server_set_nonce(&srv, RFC_SERVER_SUFFIX));
	ck_assert(server_first(RFC_CLIENT_FIRST));
}

static void assert_malformed(bool ok)
{
	ck_assert(!ok);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strncmp(err, "malformed", 9) == 0, "err was \"%s\"", err);
}

/* ------------------------------------------------------------ RFC 7677 */

START_TEST(rfc7677_client_messages_match)
{
	reset();
	ck_assert(scram_client_init(&cli, "pencil"));
	ck_assert(scram_client_set_username(&cli, "user"));
	ck_assert(scram_client_set_nonce(&cli, RFC_CLIENT_NONCE));
	ck_assert(scram_client_first(&cli, out, sizeof(out)));
	ck_assert_str_eq(out, RFC_CLIENT_FIRST);
	ck_assert(scram_client_handle_server_first(&cli, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST),
						   out, sizeof(out), &err));
	ck_assert_str_eq(out, RFC_CLIENT_FINAL);
	ck_assert(scram_client_verify_server_final(&cli, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL),
						   &err));
	ck_assert_int_eq(cli.state, SCRAM_CLIENT_DONE);
}
END_TEST

START_TEST(rfc7677_server_messages_match)
{
	rfc_server_after_first();
	ck_assert_str_eq(out, RFC_SERVER_FIRST);
	ck_assert(server_final(RFC_CLIENT_FINAL));
	ck_assert_str_eq(out, RFC_SERVER_FINAL);
	ck_assert_int_eq(srv.state, SCRAM_SERVER_DONE);
}
END_TEST

START_TEST(recovered_client_key_matches_rfc_password)
{
	rfc_server_after_first();
	ck_assert(!srv.have_client_key);
	ck_assert(server_final(RFC_CLIENT_FINAL));
	ck_assert(srv.have_client_key);
	ck_assert_mem_eq(srv.client_key, rfc_client_key, SCRAM_KEY_LEN);
}
END_TEST

START_TEST(client_rejects_forged_server_signature)
{
	reset();
	ck_assert(scram_client_init(&cli, "pencil"));
	ck_assert(scram_client_set_username(&cli, "user"));
	ck_assert(scram_client_set_nonce(&cli, RFC_CLIENT_NONCE));
	ck_assert(scram_client_first(&cli, out, sizeof(out)));
	ck_assert(scram_client_handle_server_first(&cli, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST),
						   out, sizeof(out), &err));
	const char *forged = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
	ck_assert(!scram_client_verify_server_final(&cli, forged, strlen(forged), &err));
	ck_assert_str_eq(err, "server signature is wrong: it does not know the secret");
	ck_assert_int_eq(cli.state, SCRAM_CLIENT_FAILED);
}
END_TEST

START_TEST(client_reports_server_error)
{
	reset();
	ck_assert(scram_client_init(&cli, "pencil"));
	ck_assert(scram_client_set_nonce(&cli, RFC_CLIENT_NONCE));
	ck_assert(scram_client_first(&cli, out, sizeof(out)));
	ck_assert(scram_client_handle_server_first(&cli, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST),
						   out, sizeof(out), &err));
	ck_assert(!scram_client_verify_server_final(&cli, "e=invalid-proof", 15, &err));
	ck_assert_str_eq(err, "server reported a SCRAM error");
}
END_TEST

/* ---------------------------------------------------------- round trips */

START_TEST(round_trip_with_plaintext_secret)
{
	reset();
	ck_assert(scram_server_init(&srv, "pencil", "alice"));
	ck_assert(scram_client_init(&cli, "pencil"));
	ck_assert_msg(run_exchange(), "failed: %s", err);
	ck_assert_int_eq(srv.state, SCRAM_SERVER_DONE);
	ck_assert_int_eq(cli.state, SCRAM_CLIENT_DONE);
}
END_TEST

START_TEST(round_trip_with_built_secret)
{
	char secret[256];
	ck_assert(scram_build_secret("pencil", 4096, secret, sizeof(secret)));
	reset();
	ck_assert(scram_server_init(&srv, secret, "alice"));
	ck_assert(!srv.mock);
	ck_assert(scram_client_init(&cli, "pencil"));
	ck_assert_msg(run_exchange(), "failed: %s", err);
}
END_TEST

START_TEST(verify_password_checks_both_keys_of_a_secret)
{
	char secret[256];
	ck_assert(scram_build_secret("pencil", 4096, secret, sizeof(secret)));
	ck_assert(scram_verify_password(secret, "pencil"));
	ck_assert(!scram_verify_password(secret, "pencil2"));
	ck_assert(!scram_verify_password(secret, ""));
	ck_assert(scram_verify_password(PG_SECRET, PG_PASSWORD));
	ck_assert(!scram_verify_password("md5" "5084196a44b964e4f23437318558fb73", "s3cr3t"));
	/* A secret whose ServerKey does not belong to its StoredKey is refused. */
	char forged[256];
	snprintf(forged, sizeof(forged), "%s", secret);
	char *server_key = strrchr(forged, ':') + 1;
	server_key[0] = server_key[0] == 'A' ? 'B' : 'A';
	ck_assert(!scram_verify_password(forged, "pencil"));
}
END_TEST

START_TEST(round_trip_with_postgres_secret)
{
	reset();
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(scram_client_init(&cli, PG_PASSWORD));
	ck_assert_msg(run_exchange(), "failed: %s", err);
	ck_assert(srv.have_client_key);
	ck_assert_mem_eq(srv.client_key, pg_client_key, SCRAM_KEY_LEN);
}
END_TEST

START_TEST(round_trip_with_escaped_username)
{
	reset();
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(scram_client_init(&cli, PG_PASSWORD));
	ck_assert(scram_client_set_username(&cli, "a,b=c"));
	ck_assert(scram_client_set_nonce(&cli, "abc"));
	char first[64];
	ck_assert(scram_client_first(&cli, first, sizeof(first)));
	ck_assert_str_eq(first, "n,,n=a=2Cb=3Dc,r=abc");
	ck_assert_msg(run_exchange_from(first), "failed: %s", err);
}
END_TEST

START_TEST(server_nonce_extends_client_nonce_with_random_suffix)
{
	reset();
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(server_first("n,,n=,r=clientnonce"));
	ck_assert_int_eq(strncmp(out, "r=clientnonce", 13), 0);
	/* 18 random bytes are 24 base64 characters. */
	ck_assert_ptr_eq(strchr(out, ','), out + 13 + 24);
	ck_assert_str_eq(strchr(out, ','), ",s=7qqxVitooMzo1MLHPGPxmA==,i=4096");
	char again[OUT_CAP];
	memcpy(again, out, sizeof(again));
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(server_first("n,,n=,r=clientnonce"));
	ck_assert_str_ne(out, again);
}
END_TEST

START_TEST(client_first_message_has_empty_username_and_random_nonce)
{
	reset();
	ck_assert(scram_client_init(&cli, "pencil"));
	ck_assert(scram_client_first(&cli, out, sizeof(out)));
	ck_assert_int_eq(strncmp(out, "n,,n=,r=", 8), 0);
	ck_assert_uint_eq(strlen(out), 8 + 24);
	char first[OUT_CAP];
	memcpy(first, out, sizeof(first));
	ck_assert(scram_client_init(&cli, "pencil"));
	ck_assert(scram_client_first(&cli, out, sizeof(out)));
	ck_assert_str_ne(out, first);
}
END_TEST

/* ---------------------------------------------------------- pass-through */

START_TEST(pass_through_keys_authenticate_against_same_secret)
{
	reset();
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(scram_client_init(&cli, PG_PASSWORD));
	ck_assert_msg(run_exchange(), "failed: %s", err);
	uint8_t client_key[SCRAM_KEY_LEN];
	memcpy(client_key, srv.client_key, sizeof(client_key));
	struct scram_secret parsed;
	ck_assert(scram_secret_parse(PG_SECRET, &parsed));

	/* A second server holding the same secret: as PostgreSQL would. */
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(scram_client_init_keys(&cli, client_key, parsed.server_key));
	ck_assert_msg(run_exchange(), "failed: %s", err);
	ck_assert_int_eq(cli.state, SCRAM_CLIENT_DONE);
}
END_TEST

START_TEST(pass_through_with_wrong_server_key_rejects_server)
{
	reset();
	uint8_t wrong_server_key[SCRAM_KEY_LEN];
	memset(wrong_server_key, 0x42, sizeof(wrong_server_key));
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(scram_client_init_keys(&cli, pg_client_key, wrong_server_key));
	ck_assert(!run_exchange());
	/* The proof was right; only the server's signature fails the client's check. */
	ck_assert_int_eq(srv.state, SCRAM_SERVER_DONE);
	ck_assert_str_eq(err, "server signature is wrong: it does not know the secret");
}
END_TEST

START_TEST(pass_through_with_wrong_client_key_is_rejected)
{
	reset();
	struct scram_secret parsed;
	ck_assert(scram_secret_parse(PG_SECRET, &parsed));
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(scram_client_init_keys(&cli, rfc_client_key, parsed.server_key));
	ck_assert(!run_exchange());
	ck_assert_str_eq(err, "wrong password");
}
END_TEST

/* ------------------------------------------------------- wrong passwords */

START_TEST(wrong_password_is_rejected_with_scram_secret)
{
	reset();
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(scram_client_init(&cli, "correct horsE"));
	ck_assert(!run_exchange());
	ck_assert_str_eq(err, "wrong password");
	ck_assert_int_eq(srv.state, SCRAM_SERVER_FAILED);
	ck_assert(!srv.have_client_key);
}
END_TEST

START_TEST(wrong_password_is_rejected_with_plaintext_secret)
{
	reset();
	ck_assert(scram_server_init(&srv, "pencil", "alice"));
	ck_assert(scram_client_init(&cli, "pencil2"));
	ck_assert(!run_exchange());
	ck_assert_str_eq(err, "wrong password");
}
END_TEST

START_TEST(tampered_proof_is_rejected)
{
	rfc_server_after_first();
	char msg[] = RFC_CLIENT_FINAL;
	char *p = strstr(msg, ",p=") + 3;
	p[0] = p[0] == 'A' ? 'B' : 'A';
	ck_assert(!server_final(msg));
	ck_assert_str_eq(err, "wrong password");
}
END_TEST

START_TEST(wrong_nonce_is_rejected)
{
	rfc_server_after_first();
	ck_assert(!server_final("c=biws,r=" RFC_CLIENT_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1"
				",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
	ck_assert_str_eq(err, "nonce does not match");

	rfc_server_after_first();
	ck_assert(!server_final("c=biws,r=" RFC_CLIENT_NONCE
				",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
	ck_assert_str_eq(err, "nonce does not match");
}
END_TEST

/* ------------------------------------------------------------ mock users */

START_TEST(mock_exchange_fails_only_at_the_proof)
{
	reset();
	ck_assert(scram_server_init_mock(&srv, "nobody"));
	ck_assert(scram_client_init(&cli, "anything"));
	ck_assert(!run_exchange());
	/* The client got a server-first and sent its proof before the failure. */
	ck_assert_int_eq(cli.state, SCRAM_CLIENT_FINAL_SENT);
	ck_assert_str_eq(err, "unknown user");
	ck_assert(!srv.have_client_key);
}
END_TEST

START_TEST(mock_exchange_fails_even_with_matching_keys)
{
	/* Give the mock state real keys: only its mock flag can still fail it. */
	struct scram_secret parsed;
	ck_assert(scram_secret_parse(PG_SECRET, &parsed));
	reset();
	ck_assert(scram_server_init_mock(&srv, "nobody"));
	memcpy(srv.secret.stored_key, parsed.stored_key, SCRAM_KEY_LEN);
	memcpy(srv.secret.server_key, parsed.server_key, SCRAM_KEY_LEN);
	ck_assert(scram_client_init_keys(&cli, pg_client_key, parsed.server_key));
	ck_assert(!run_exchange());
	ck_assert_str_eq(err, "unknown user");
	ck_assert(!srv.have_client_key);
}
END_TEST

START_TEST(mock_salt_is_stable_per_user)
{
	char first[OUT_CAP];
	reset();
	ck_assert(scram_server_init_mock(&srv, "nobody"));
	ck_assert(server_first("n,,n=,r=abc"));
	snprintf(first, sizeof(first), "%s", strchr(out, ','));
	ck_assert(scram_server_init_mock(&srv, "nobody"));
	ck_assert(server_first("n,,n=,r=abc"));
	ck_assert_str_eq(strchr(out, ','), first);
	ck_assert_uint_eq(strlen(first), strlen(",s=,i=4096") + 24);
	ck_assert(scram_server_init_mock(&srv, "somebody"));
	ck_assert(server_first("n,,n=,r=abc"));
	ck_assert_str_ne(strchr(out, ','), first);
}
END_TEST

START_TEST(plaintext_user_looks_like_mock_user)
{
	char mock[OUT_CAP];
	reset();
	ck_assert(scram_server_init_mock(&srv, "alice"));
	ck_assert(server_first("n,,n=,r=abc"));
	snprintf(mock, sizeof(mock), "%s", strchr(out, ','));
	ck_assert(scram_server_init(&srv, "pencil", "alice"));
	ck_assert(server_first("n,,n=,r=abc"));
	ck_assert_str_eq(strchr(out, ','), mock);
}
END_TEST

START_TEST(md5_or_empty_secret_runs_mock_exchange)
{
	reset();
	ck_assert(scram_server_init(&srv, "md55084196a44b964e4f23437318558fb73", "bob"));
	ck_assert(srv.mock);
	ck_assert(scram_client_init(&cli, "s3cr3t"));
	ck_assert(!run_exchange());
	ck_assert_str_eq(err, "user has an md5 secret, which cannot verify SCRAM");

	ck_assert(scram_server_init(&srv, "", "bob"));
	ck_assert(srv.mock);
	ck_assert(scram_client_init(&cli, "x"));
	ck_assert(!run_exchange());
	ck_assert_str_eq(err, "user has an empty password");
}
END_TEST

/* ------------------------------------------------- malformed client input */

START_TEST(client_first_without_username_or_nonce_is_rejected)
{
	static const char *const bad[] = {
	    "n,,r=abc",        /* no n= */
	    "n,,n=",           /* no r= */
	    "n,,n=,r=",        /* empty nonce */
	    "n,,n=,x=1,r=abc", /* attributes out of order */
	    "n,n=,r=abc",      /* gs2 header cut short */
	    "x,,n=,r=abc",     /* unknown flag */
	    "n,,n=,r=abc,",    /* dangling comma */
	    "n,,n=,r=abc,1=x", /* extension name not a letter */
	    "n,,n=a=b,r=abc",  /* '=' not escaped */
	    "n,,n=a=2,r=abc",  /* escape cut short */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reset();
		ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
		assert_malformed(server_first(bad[i]));
		ck_assert_int_eq(srv.state, SCRAM_SERVER_FAILED);
	}
}
END_TEST

START_TEST(client_first_with_extension_is_accepted)
{
	reset();
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(server_first("n,,n=*,r=abc,x=some value"));
	ck_assert_int_eq(strncmp(out, "r=abc", 5), 0);
}
END_TEST

START_TEST(nonce_with_forbidden_characters_is_rejected)
{
	static const char *const bad[] = {"n,,n=,r=ab c", "n,,n=,r=ab\x7f", "n,,n=,r=ab\xc3\xa9"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reset();
		ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
		assert_malformed(server_first(bad[i]));
	}
}
END_TEST

START_TEST(authzid_and_mandatory_extension_are_refused)
{
	reset();
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(!server_first("n,a=admin,n=,r=abc"));
	ck_assert_ptr_nonnull(strstr(err, "authorization identity"));
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(!server_first("n,,m=ext,n=,r=abc"));
	ck_assert_ptr_nonnull(strstr(err, "mandatory extension"));
}
END_TEST

START_TEST(message_with_nul_is_rejected)
{
	reset();
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	assert_malformed(scram_server_handle_first(&srv, "n,,n=,r=a\0c", 11, out, sizeof(out),
						   &err));
}
END_TEST

START_TEST(client_final_missing_attributes_is_rejected)
{
	static const char *const bad[] = {
	    "r=" RFC_CLIENT_NONCE RFC_SERVER_SUFFIX ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "c=biws,r=" RFC_CLIENT_NONCE RFC_SERVER_SUFFIX,
	    "c=biws,r=" RFC_CLIENT_NONCE RFC_SERVER_SUFFIX ",p=",
	    "c=biws,r=" RFC_CLIENT_NONCE RFC_SERVER_SUFFIX
	    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=after",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rfc_server_after_first();
		assert_malformed(server_final(bad[i]));
	}
}
END_TEST

START_TEST(client_final_with_extension_before_proof_is_accepted)
{
	char msg[512];
	rfc_server_after_first();
	rfc_final("n=user,r=" RFC_CLIENT_NONCE, RFC_SERVER_FIRST,
		  "c=biws,r=" RFC_CLIENT_NONCE RFC_SERVER_SUFFIX ",x=ext", msg, sizeof(msg));
	ck_assert_msg(server_final(msg), "failed: %s", err);
	ck_assert_int_eq(strncmp(out, "v=", 2), 0);
	ck_assert_str_ne(out, RFC_SERVER_FINAL); /* the extension is part of AuthMessage */
}
END_TEST

START_TEST(bad_base64_proof_is_rejected)
{
	static const char *const proofs[] = {
	    "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",   /* no padding */
	    "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVR=",  /* non-zero bits under '=' */
	    "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndV==",  /* too short after decoding */
	    "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7And!Q=",  /* not base64 */
	    "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=AAAA", /* too long */
	    "dHzb=apWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",  /* '=' inside */
	};
	for (size_t i = 0; i < sizeof(proofs) / sizeof(proofs[0]); i++) {
		char msg[256];
		snprintf(msg, sizeof(msg), "c=biws,r=%s%s,p=%s", RFC_CLIENT_NONCE, RFC_SERVER_SUFFIX,
			 proofs[i]);
		rfc_server_after_first();
		assert_malformed(server_final(msg));
	}
}
END_TEST

/* A message of len bytes: prefix, then 'a' up to the length. */
static const char *long_message(const char *prefix, size_t len)
{
	static char big[SCRAM_MAX_MESSAGE + 2];
	ck_assert_uint_le(len, SCRAM_MAX_MESSAGE + 1);
	memset(big, 'a', len);
	memcpy(big, prefix, strlen(prefix));
	big[len] = '\0';
	return big;
}

START_TEST(oversized_messages_are_rejected)
{
	reset();
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(!server_first(long_message("n,,n=,r=", SCRAM_MAX_MESSAGE + 1)));
	ck_assert_str_eq(err, "malformed client-first-message: empty, too long or has NUL");

	rfc_server_after_first();
	ck_assert(!server_final(long_message("c=biws,r=", SCRAM_MAX_MESSAGE + 1)));
	ck_assert_str_eq(err, "malformed client-final-message: empty, too long or has NUL");

	reset();
	ck_assert(scram_client_init(&cli, "pencil"));
	ck_assert(scram_client_set_nonce(&cli, "aaa"));
	ck_assert(scram_client_first(&cli, out, sizeof(out)));
	const char *msg = long_message("r=aaa", SCRAM_MAX_MESSAGE + 1);
	ck_assert(!scram_client_handle_server_first(&cli, msg, strlen(msg), out, sizeof(out), &err));
	ck_assert_str_eq(err, "malformed server-first-message: empty, too long or has NUL");
}
END_TEST

START_TEST(client_first_at_the_limit_is_read_but_too_long_to_answer)
{
	reset();
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(!server_first(long_message("n,,n=,r=", SCRAM_MAX_MESSAGE)));
	ck_assert_str_eq(err, "client nonce too long for the server-first-message");

	/* A shorter one of the same shape is answered. */
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(server_first(long_message("n,,n=,r=", 900)));
	ck_assert_uint_le(strlen(out), SCRAM_MAX_MESSAGE);
}
END_TEST

START_TEST(short_output_buffer_fails_cleanly)
{
	rfc_server_after_first();
	char small[40];
	ck_assert(!scram_server_handle_final(&srv, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), small,
					     sizeof(small), &err));
	ck_assert_int_eq(srv.state, SCRAM_SERVER_FAILED);

	reset();
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(!scram_server_handle_first(&srv, "n,,n=,r=abc", 11, small, sizeof(small), &err));

	ck_assert(scram_client_init(&cli, "pencil"));
	ck_assert(!scram_client_first(&cli, small, 10));
	ck_assert(scram_client_first(&cli, out, sizeof(out)));
}
END_TEST

START_TEST(messages_out_of_order_are_rejected)
{
	reset();
	ck_assert(scram_server_init(&srv, RFC_SECRET, "user"));
	ck_assert(!server_final(RFC_CLIENT_FINAL));
	ck_assert_str_eq(err, "SCRAM message out of order");

	rfc_server_after_first();
	ck_assert(!server_first(RFC_CLIENT_FIRST));
	ck_assert_str_eq(err, "SCRAM message out of order");

	reset();
	ck_assert(scram_client_init(&cli, "pencil"));
	ck_assert(!scram_client_handle_server_first(&cli, RFC_SERVER_FIRST,
						    strlen(RFC_SERVER_FIRST), out, sizeof(out),
						    &err));
	ck_assert_str_eq(err, "SCRAM message out of order");
	ck_assert(!scram_client_verify_server_final(&cli, RFC_SERVER_FINAL,
						    strlen(RFC_SERVER_FINAL), &err));
}
END_TEST

/* ------------------------------------------------- malformed server input */

static bool client_reads(const char *server_first_msg)
{
	reset();
	ck_assert(scram_client_init(&cli, "pencil"));
	ck_assert(scram_client_set_nonce(&cli, RFC_CLIENT_NONCE));
	ck_assert(scram_client_first(&cli, out, sizeof(out)));
	return scram_client_handle_server_first(&cli, server_first_msg, strlen(server_first_msg),
						out, sizeof(out), &err);
}

START_TEST(client_rejects_nonce_not_extending_its_own)
{
	ck_assert(!client_reads("r=" RFC_CLIENT_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
	ck_assert_str_eq(err, "server nonce does not extend the client nonce");
	ck_assert(!client_reads("r=xOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
	ck_assert_str_eq(err, "server nonce does not extend the client nonce");
	ck_assert(!client_reads("r=rOprNGfw,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
	ck_assert_str_eq(err, "server nonce does not extend the client nonce");
}
END_TEST

START_TEST(client_rejects_insane_iteration_counts)
{
	static const char *const counts[] = {"0", "1000001", "04096", "-1", "4096x", "", "99999999999"};
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		char msg[256];
		snprintf(msg, sizeof(msg), "r=%s%s,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=%s", RFC_CLIENT_NONCE,
			 RFC_SERVER_SUFFIX, counts[i]);
		ck_assert_msg(!client_reads(msg), "accepted i=%s", counts[i]);
		ck_assert_str_eq(err, "server-first-message has a bad or too high iteration count");
	}
	char msg[256];
	snprintf(msg, sizeof(msg), "r=%sX,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1", RFC_CLIENT_NONCE);
	ck_assert(client_reads(msg));
}
END_TEST

START_TEST(client_rejects_bad_salt_and_missing_attributes)
{
	ck_assert(!client_reads("r=" RFC_CLIENT_NONCE "X,s=,i=4096"));
	assert_malformed(false);
	ck_assert(!client_reads("r=" RFC_CLIENT_NONCE "X,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096"));
	assert_malformed(false);
	ck_assert(!client_reads("r=" RFC_CLIENT_NONCE "X,i=4096"));
	assert_malformed(false);
	ck_assert(!client_reads("r=" RFC_CLIENT_NONCE "X,s=W22ZaJ0SNY7soEsUEjb6gQ=="));
	assert_malformed(false);
	ck_assert(!client_reads("s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
	assert_malformed(false);
	ck_assert(!client_reads("m=x,r=" RFC_CLIENT_NONCE "X,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
	ck_assert_str_eq(err, "server-first-message has a mandatory extension");
}
END_TEST

START_TEST(client_wipes_password_after_use)
{
	ck_assert(client_reads(RFC_SERVER_FIRST));
	static const char zero[SCRAM_MAX_PASSWORD + 1];
	ck_assert_mem_eq(cli.password, zero, sizeof(cli.password));
	static const uint8_t zero_key[SCRAM_KEY_LEN];
	ck_assert_mem_eq(cli.client_key, zero_key, SCRAM_KEY_LEN);
}
END_TEST

START_TEST(client_refuses_bad_setup)
{
	reset();
	ck_assert(!scram_client_init(&cli, ""));
	static char long_password[SCRAM_MAX_PASSWORD + 2];
	memset(long_password, 'p', SCRAM_MAX_PASSWORD + 1);
	ck_assert(!scram_client_init(&cli, long_password));
	long_password[SCRAM_MAX_PASSWORD] = '\0';
	ck_assert(scram_client_init(&cli, long_password));
	ck_assert(!scram_client_set_nonce(&cli, "a,b"));
	ck_assert(!scram_client_set_nonce(&cli, ""));
	ck_assert(!scram_client_set_username(
	    &cli, "a-name-that-is-longer-than-sixty-three-bytes-which-postgres-never-allows"));
	ck_assert(scram_client_first(&cli, out, sizeof(out)));
	ck_assert(!scram_client_set_nonce(&cli, "late"));
}
END_TEST

/* ------------------------------------------------------- channel binding */

/*
 * A client-final with a valid proof after the server answered a client-first
 * whose bare part was "n=,r=abc" (its server-first is in out): c= carries gs2
 * and data, so a failure can only come from the channel binding check.
 */
static void cbind_final(const char *gs2, const uint8_t *data, size_t data_len, char *msg,
			size_t cap)
{
	uint8_t raw[128];
	size_t n = strlen(gs2);
	memcpy(raw, gs2, n);
	if (data_len > 0)
		memcpy(raw + n, data, data_len);
	unsigned char c64[256];
	EVP_EncodeBlock(c64, raw, (int)(n + data_len));
	char without_proof[512];
	snprintf(without_proof, sizeof(without_proof), "c=%s,r=abc%s", c64, RFC_SERVER_SUFFIX);
	char sfirst[OUT_CAP];
	snprintf(sfirst, sizeof(sfirst), "%s", out);
	rfc_final("n=,r=abc", sfirst, without_proof, msg, cap);
}

static void cbind_server(bool offered)
{
	reset();
	ck_assert(scram_server_init(&srv, RFC_SECRET, "user"));
	if (offered)
		ck_assert(scram_server_set_channel_binding(&srv, cert_hash, sizeof(cert_hash)));
	ck_assert(scram_server_set_nonce(&srv, RFC_SERVER_SUFFIX));
}

START_TEST(channel_binding_requested_but_not_offered_is_rejected)
{
	cbind_server(false);
	ck_assert(!server_first("p=tls-server-end-point,,n=,r=abc"));
	ck_assert_str_eq(err, "client requires channel binding, which was not offered");
}
END_TEST

START_TEST(downgrade_flag_is_rejected_when_binding_is_offered)
{
	cbind_server(true);
	ck_assert(!server_first("y,,n=,r=abc"));
	ck_assert_ptr_nonnull(strstr(err, "downgrade"));
	cbind_server(false);
	ck_assert(server_first("y,,n=,r=abc"));
}
END_TEST

START_TEST(unsupported_channel_binding_type_is_rejected)
{
	cbind_server(true);
	ck_assert(!server_first("p=tls-unique,,n=,r=abc"));
	ck_assert_str_eq(err, "unsupported channel binding type");
}
END_TEST

START_TEST(matching_channel_binding_data_is_accepted)
{
	char msg[512];
	cbind_server(true);
	ck_assert(server_first("p=tls-server-end-point,,n=,r=abc"));
	cbind_final("p=tls-server-end-point,,", cert_hash, sizeof(cert_hash), msg, sizeof(msg));
	ck_assert_msg(server_final(msg), "failed: %s", err);
	ck_assert(srv.have_client_key);
	ck_assert_mem_eq(srv.client_key, rfc_client_key, SCRAM_KEY_LEN);
}
END_TEST

START_TEST(y_flag_without_offer_completes)
{
	char msg[512];
	cbind_server(false);
	ck_assert(server_first("y,,n=,r=abc"));
	cbind_final("y,,", NULL, 0, msg, sizeof(msg));
	ck_assert_msg(server_final(msg), "failed: %s", err);
}
END_TEST

START_TEST(n_flag_with_offer_completes)
{
	char msg[512];
	cbind_server(true);
	ck_assert(server_first("n,,n=,r=abc"));
	cbind_final("n,,", NULL, 0, msg, sizeof(msg));
	ck_assert_msg(server_final(msg), "failed: %s", err);
}
END_TEST

START_TEST(channel_binding_data_mismatch_is_rejected)
{
	char msg[512];
	uint8_t other[sizeof(cert_hash)];
	memcpy(other, cert_hash, sizeof(other));
	other[31] ^= 1;
	cbind_server(true);
	ck_assert(server_first("p=tls-server-end-point,,n=,r=abc"));
	cbind_final("p=tls-server-end-point,,", other, sizeof(other), msg, sizeof(msg));
	ck_assert(!server_final(msg));
	ck_assert_str_eq(err, "channel binding data does not match");

	/* Without the hash at all. */
	cbind_server(true);
	ck_assert(server_first("p=tls-server-end-point,,n=,r=abc"));
	cbind_final("p=tls-server-end-point,,", NULL, 0, msg, sizeof(msg));
	ck_assert(!server_final(msg));
	ck_assert_str_eq(err, "channel binding data does not match");
}
END_TEST

START_TEST(gs2_header_changed_between_messages_is_rejected)
{
	char msg[512];
	/* "n,," first, then "y,," (eSws) in c=. */
	cbind_server(false);
	ck_assert(server_first("n,,n=,r=abc"));
	cbind_final("y,,", NULL, 0, msg, sizeof(msg));
	ck_assert(!server_final(msg));
	ck_assert_str_eq(err, "channel binding data does not match");

	/* "n,," first while binding is offered, then channel data in c=. */
	cbind_server(true);
	ck_assert(server_first("n,,n=,r=abc"));
	cbind_final("n,,", cert_hash, sizeof(cert_hash), msg, sizeof(msg));
	ck_assert(!server_final(msg));
	ck_assert_str_eq(err, "channel binding data does not match");
}
END_TEST

START_TEST(channel_binding_is_set_only_before_first_message)
{
	reset();
	ck_assert(scram_server_init(&srv, RFC_SECRET, "user"));
	ck_assert(!scram_server_set_channel_binding(&srv, cert_hash, 0));
	uint8_t huge[SCRAM_MAX_CBIND + 1] = {0};
	ck_assert(!scram_server_set_channel_binding(&srv, huge, sizeof(huge)));
	ck_assert(server_first("n,,n=,r=abc"));
	ck_assert(!scram_server_set_channel_binding(&srv, cert_hash, sizeof(cert_hash)));
	ck_assert(!scram_server_set_nonce(&srv, "late"));
}
END_TEST

/* --------------------------------------------------------------- secrets */

START_TEST(postgres_secret_parses)
{
	struct scram_secret s;
	ck_assert(scram_secret_parse(PG_SECRET, &s));
	ck_assert_int_eq(s.iterations, 4096);
	ck_assert_uint_eq(s.salt_len, 16);
	static const uint8_t salt_start[3] = {0xee, 0xaa, 0xb1};
	ck_assert_mem_eq(s.salt, salt_start, sizeof(salt_start));
	uint8_t stored[SCRAM_KEY_LEN];
	unsigned int n = 0;
	ck_assert(EVP_Digest(pg_client_key, SCRAM_KEY_LEN, stored, &n, EVP_sha256(), NULL) == 1);
	ck_assert_mem_eq(s.stored_key, stored, SCRAM_KEY_LEN);
}
END_TEST

START_TEST(malformed_secrets_are_rejected)
{
	static const char *const bad[] = {
	    "SCRAM-SHA-256$4096:7qqxVitooMzo1MLHPGPxmA==$lzaO6+gWaWteDxWpldFF93rg+lseMtaKWmqgxLDv70g=",
	    "SCRAM-SHA-256$:7qqxVitooMzo1MLHPGPxmA==$lzaO6+gWaWteDxWpldFF93rg+lseMtaKWmqgxLDv70g=:"
	    "2jQNbXzRB+5gjcnmDYibkbje24eRr9sWW1OytRiKm54=",
	    "SCRAM-SHA-256$4096:$lzaO6+gWaWteDxWpldFF93rg+lseMtaKWmqgxLDv70g=:"
	    "2jQNbXzRB+5gjcnmDYibkbje24eRr9sWW1OytRiKm54=",
	    "SCRAM-SHA-256$4096:7qqxVitooMzo1MLHPGPxmA==$lzaO6+gWaWteDxWpldFF93rg+lseMtaKWmqgx==:"
	    "2jQNbXzRB+5gjcnmDYibkbje24eRr9sWW1OytRiKm54=",
	    "SCRAM-SHA-256$4096:7qqxVitooMzo1MLHPGPxmA==$lzaO6+gWaWteDxWpldFF93rg+lseMtaKWmqgxLDv70g=:"
	    "2jQNbXzRB+5gjcnmDYibkbje24eRr9sWW1OytRiKm54=x",
	    "SCRAM-SHA-256$4096:7qqxVitooMzo1MLHPGPxmA==$lzaO6+gWaWteDxWpldFF93rg+lseMtaKWmqgxLDv70g=:"
	    "2jQNbXzRB+5gjcnmDYibkbje24eRr9sWW1OytRiKm54=:",
	    "SCRAM-SHA-256$3000000000:7qqxVitooMzo1MLHPGPxmA==$"
	    "lzaO6+gWaWteDxWpldFF93rg+lseMtaKWmqgxLDv70g=:"
	    "2jQNbXzRB+5gjcnmDYibkbje24eRr9sWW1OytRiKm54=",
	    "SCRAM-SHA-1$4096:7qqxVitooMzo1MLHPGPxmA==$lzaO6+gWaWteDxWpldFF93rg+lseMtaKWmqgxLDv70g=:"
	    "2jQNbXzRB+5gjcnmDYibkbje24eRr9sWW1OytRiKm54=",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct scram_secret s;
		ck_assert_msg(!scram_secret_parse(bad[i], &s), "accepted %s", bad[i]);
	}
}
END_TEST

START_TEST(built_secret_has_postgres_format_and_random_salt)
{
	char a[256], b[256];
	ck_assert(scram_build_secret("pencil", 4096, a, sizeof(a)));
	ck_assert(scram_build_secret("pencil", 4096, b, sizeof(b)));
	ck_assert_int_eq(strncmp(a, "SCRAM-SHA-256$4096:", 19), 0);
	ck_assert_uint_eq(strlen(a), 19 + 24 + 1 + 44 + 1 + 44);
	ck_assert_str_ne(a, b);
	struct scram_secret s;
	ck_assert(scram_secret_parse(a, &s));
	ck_assert_uint_eq(s.salt_len, SCRAM_SALT_LEN);
}
END_TEST

START_TEST(build_secret_refuses_bad_arguments)
{
	char out_small[100], secret[256];
	ck_assert(!scram_build_secret("pencil", 4096, out_small, sizeof(out_small)));
	ck_assert(!scram_build_secret("pencil", 0, secret, sizeof(secret)));
	ck_assert(!scram_build_secret("pencil", SCRAM_MAX_ITERATIONS + 1, secret, sizeof(secret)));
	ck_assert(!scram_build_secret("", 4096, secret, sizeof(secret)));
	ck_assert(scram_build_secret("pencil", 1, secret, sizeof(secret)));
	ck_assert_int_eq(strncmp(secret, "SCRAM-SHA-256$1:", 16), 0);
}
END_TEST

START_TEST(built_secret_with_few_iterations_verifies)
{
	char secret[256];
	ck_assert(scram_build_secret("pencil", 1, secret, sizeof(secret)));
	reset();
	ck_assert(scram_server_init(&srv, secret, "alice"));
	ck_assert(scram_client_init(&cli, "pencil"));
	ck_assert_msg(run_exchange(), "failed: %s", err);
	ck_assert(scram_server_init(&srv, secret, "alice"));
	ck_assert(scram_client_init(&cli, "pencils"));
	ck_assert(!run_exchange());
	ck_assert_str_eq(err, "wrong password");
}
END_TEST

START_TEST(clear_wipes_state)
{
	reset();
	ck_assert(scram_server_init(&srv, PG_SECRET, "postgres"));
	ck_assert(scram_client_init(&cli, PG_PASSWORD));
	ck_assert(run_exchange());
	scram_server_clear(&srv);
	scram_client_clear(&cli);
	static const struct scram_server zero_srv;
	static const struct scram_client zero_cli;
	ck_assert_mem_eq(&srv, &zero_srv, sizeof(srv));
	ck_assert_mem_eq(&cli, &zero_cli, sizeof(cli));
}
END_TEST

Suite *scram_suite(void)
{
	Suite *s = suite_create("scram");
	TCase *rfc = tcase_create("rfc7677");
	tcase_add_test(rfc, rfc7677_client_messages_match);
	tcase_add_test(rfc, rfc7677_server_messages_match);
	tcase_add_test(rfc, recovered_client_key_matches_rfc_password);
	tcase_add_test(rfc, client_rejects_forged_server_signature);
	tcase_add_test(rfc, client_reports_server_error);
	suite_add_tcase(s, rfc);

	TCase *trip = tcase_create("round_trip");
	tcase_add_test(trip, round_trip_with_plaintext_secret);
	tcase_add_test(trip, round_trip_with_built_secret);
	tcase_add_test(trip, verify_password_checks_both_keys_of_a_secret);
	tcase_add_test(trip, round_trip_with_postgres_secret);
	tcase_add_test(trip, round_trip_with_escaped_username);
	tcase_add_test(trip, server_nonce_extends_client_nonce_with_random_suffix);
	tcase_add_test(trip, client_first_message_has_empty_username_and_random_nonce);
	tcase_add_test(trip, pass_through_keys_authenticate_against_same_secret);
	tcase_add_test(trip, pass_through_with_wrong_server_key_rejects_server);
	tcase_add_test(trip, pass_through_with_wrong_client_key_is_rejected);
	tcase_add_test(trip, clear_wipes_state);
	suite_add_tcase(s, trip);

	TCase *reject = tcase_create("reject");
	tcase_add_test(reject, wrong_password_is_rejected_with_scram_secret);
	tcase_add_test(reject, wrong_password_is_rejected_with_plaintext_secret);
	tcase_add_test(reject, tampered_proof_is_rejected);
	tcase_add_test(reject, wrong_nonce_is_rejected);
	tcase_add_test(reject, mock_exchange_fails_only_at_the_proof);
	tcase_add_test(reject, mock_exchange_fails_even_with_matching_keys);
	tcase_add_test(reject, mock_salt_is_stable_per_user);
	tcase_add_test(reject, plaintext_user_looks_like_mock_user);
	tcase_add_test(reject, md5_or_empty_secret_runs_mock_exchange);
	suite_add_tcase(s, reject);

	TCase *parse = tcase_create("parse");
	tcase_add_test(parse, client_first_without_username_or_nonce_is_rejected);
	tcase_add_test(parse, client_first_with_extension_is_accepted);
	tcase_add_test(parse, nonce_with_forbidden_characters_is_rejected);
	tcase_add_test(parse, authzid_and_mandatory_extension_are_refused);
	tcase_add_test(parse, message_with_nul_is_rejected);
	tcase_add_test(parse, client_final_missing_attributes_is_rejected);
	tcase_add_test(parse, client_final_with_extension_before_proof_is_accepted);
	tcase_add_test(parse, bad_base64_proof_is_rejected);
	tcase_add_test(parse, oversized_messages_are_rejected);
	tcase_add_test(parse, client_first_at_the_limit_is_read_but_too_long_to_answer);
	tcase_add_test(parse, short_output_buffer_fails_cleanly);
	tcase_add_test(parse, messages_out_of_order_are_rejected);
	tcase_add_test(parse, client_rejects_nonce_not_extending_its_own);
	tcase_add_test(parse, client_rejects_insane_iteration_counts);
	tcase_add_test(parse, client_rejects_bad_salt_and_missing_attributes);
	tcase_add_test(parse, client_wipes_password_after_use);
	tcase_add_test(parse, client_refuses_bad_setup);
	suite_add_tcase(s, parse);

	TCase *cb = tcase_create("channel_binding");
	tcase_add_test(cb, channel_binding_requested_but_not_offered_is_rejected);
	tcase_add_test(cb, downgrade_flag_is_rejected_when_binding_is_offered);
	tcase_add_test(cb, unsupported_channel_binding_type_is_rejected);
	tcase_add_test(cb, matching_channel_binding_data_is_accepted);
	tcase_add_test(cb, y_flag_without_offer_completes);
	tcase_add_test(cb, n_flag_with_offer_completes);
	tcase_add_test(cb, channel_binding_data_mismatch_is_rejected);
	tcase_add_test(cb, gs2_header_changed_between_messages_is_rejected);
	tcase_add_test(cb, channel_binding_is_set_only_before_first_message);
	suite_add_tcase(s, cb);

	TCase *sec = tcase_create("secrets");
	tcase_add_test(sec, postgres_secret_parses);
	tcase_add_test(sec, malformed_secrets_are_rejected);
	tcase_add_test(sec, built_secret_has_postgres_format_and_random_salt);
	tcase_add_test(sec, build_secret_refuses_bad_arguments);
	tcase_add_test(sec, built_secret_with_few_iterations_verifies);
	suite_add_tcase(s, sec);
	return s;
}
