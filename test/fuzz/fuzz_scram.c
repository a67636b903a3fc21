/*
 * fuzz_scram.c - libFuzzer target: both sides of a SCRAM-SHA-256 exchange.
 *
 * The first input byte picks the side and its set-up; the rest is split at
 * its first NUL into the two messages that side reads. As the server (a
 * fixed secret, a fixed nonce suffix, with or without channel binding, or a
 * mock exchange) it reads a client-first and a client-final message; as the
 * client (with keys, or with the secret's password, which runs PBKDF2) a
 * server-first and a server-final message. Answers must fit their buffers,
 * and a mock exchange must never succeed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 7677's example: user "user", password "pencil". */
#define SECRET                                                                             \
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:" \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define PASSWORD "pencil"
#define CLIENT_NONCE "rOprNGfwEbeRWgbNEkqO"
#define SERVER_SUFFIX "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"

static const uint8_t client_key[SCRAM_KEY_LEN] = {
	0xa6, 0x0f, 0xc9, 0x23, 0xd6, 0x7e, 0x86, 0x44, 0xa9, 0x2d, 0x16, 0xb9, 0x6e, 0xda, 0x5e, 0xf4,
	0x65, 0x6b, 0x0c, 0x72, 0x5c, 0x48, 0x43, 0x74, 0xbe, 0x25, 0x53, 0x55, 0x76, 0x99, 0x6e, 0x8b};

static const uint8_t cert_hash[32] = {
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
	0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f};

enum mode { SERVER, SERVER_CBIND, SERVER_MOCK, CLIENT_KEYS, CLIENT_PASSWORD, N_MODES };

#define OUT_CAP (SCRAM_MAX_MESSAGE + 64)

static void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

/* An answer written into cap bytes ends inside them. */
static void check_answer(const char *out, size_t cap)
{
	check(memchr(out, 0, cap) != NULL);
}

static void run_server(enum mode mode, const char *m1, size_t n1, const char *m2, size_t n2,
		       size_t cap)
{
	static struct scram_server s;
	char out[OUT_CAP];
	const char *err = NULL;
	memset(&s, 0, sizeof(s));
	if (mode == SERVER_MOCK)
		check(scram_server_init_mock(&s, "user"));
	else
		check(scram_server_init(&s, SECRET, "user"));
	check(scram_server_set_nonce(&s, SERVER_SUFFIX));
	if (mode == SERVER_CBIND)
		check(scram_server_set_channel_binding(&s, cert_hash, sizeof(cert_hash)));
	if (scram_server_handle_first(&s, m1, n1, out, cap, &err)) {
		check_answer(out, cap);
		bool ok = scram_server_handle_final(&s, m2, n2, out, cap, &err);
		if (ok)
			check_answer(out, cap);
		check(!ok || (mode != SERVER_MOCK && s.have_client_key));
		check(ok || err != NULL);
	} else {
		check(err != NULL);
	}
	scram_server_clear(&s);
}

static void run_client(enum mode mode, const char *m1, size_t n1, const char *m2, size_t n2,
		       size_t cap)
{
	static struct scram_client c;
	static struct scram_secret secret;
	char first[OUT_CAP], out[OUT_CAP];
	const char *err = NULL;
	memset(&c, 0, sizeof(c));
	if (mode == CLIENT_KEYS) {
		check(scram_secret_parse(SECRET, &secret));
		check(scram_client_init_keys(&c, client_key, secret.server_key));
	} else {
		check(scram_client_init(&c, PASSWORD));
	}
	check(scram_client_set_username(&c, "user"));
	check(scram_client_set_nonce(&c, CLIENT_NONCE));
	check(scram_client_first(&c, first, sizeof(first)));
	if (scram_client_handle_server_first(&c, m1, n1, out, cap, &err)) {
		check_answer(out, cap);
		if (!scram_client_verify_server_final(&c, m2, n2, &err))
			check(err != NULL);
	} else {
		check(err != NULL);
	}
	scram_client_clear(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum mode mode = (enum mode)(data[0] % N_MODES);
	/* Now and then a short answer buffer. */
	size_t cap = data[0] / N_MODES % 8 == 7 ? 48 : OUT_CAP;
	const char *m1 = (const char *)data + 1;
	size_t rest = size - 1;
	const char *nul = memchr(m1, 0, rest);
	size_t n1 = nul != NULL ? (size_t)(nul - m1) : rest;
	const char *m2 = nul != NULL ? nul + 1 : m1 + rest;
	size_t n2 = rest - n1 - (nul != NULL);
	if (mode <= SERVER_MOCK)
		run_server(mode, m1, n1, m2, n2, cap);
	else
		run_client(mode, m1, n1, m2, n2, cap);
	return 0;
}
