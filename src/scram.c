/*
 * scram.c - SCRAM-SHA-256 exchanges, both roles, and pg_authid secrets (scram.h).
 *
 * Keys, by RFC 5802: SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, i),
 * ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey),
 * ServerKey = HMAC(SaltedPassword, "Server Key"). Both sides sign AuthMessage
 * = client-first-bare "," server-first "," client-final-without-proof; the
 * proof is ClientKey XOR HMAC(StoredKey, AuthMessage), so a server that holds
 * only StoredKey recovers ClientKey from it and checks H(ClientKey).
 *
 * Passwords are used as raw bytes. PostgreSQL runs SASLprep (RFC 4013) first
 * and keeps the raw bytes when that fails; for ASCII without control
 * characters both give the same bytes. For other text they differ only when
 * SASLprep would change the string (non-NFKC forms, non-ASCII spaces, soft
 * hyphens...); doing that needs Unicode normalization tables that libcrypto
 * lacks and that would outweigh the rest of this file, so such passwords do
 * not log in here, and the plain ASCII passwords that nearly all roles use do.
 */
#include "scram.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#define SECRET_PREFIX "SCRAM-SHA-256$"
#define CBIND_NAME "tls-server-end-point"

/* base64 of n bytes, without the NUL. */
#define B64_LEN(n) (4 * (((n) + 2) / 3))

/* Longest string scram_secret_parse() reads: prefix, 10 digits, salt, two keys. */
#define SECRET_MAX_LEN                                                                     \
	(sizeof(SECRET_PREFIX) + 10 + 3 + B64_LEN(SCRAM_MAX_SALT) + 2 * B64_LEN(SCRAM_KEY_LEN))

/* AuthMessage: three messages and two commas. */
#define AUTH_MESSAGE_MAX (3 * SCRAM_MAX_MESSAGE + 2)

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ---------------------------------------------------------------- base64 */

/* Writes B64_LEN(n) characters and a NUL to out; returns their number. */
static size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = b64_chars[v >> 18 & 63];
		out[o++] = b64_chars[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64_chars[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? b64_chars[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

static int b64_value(char ch)
{
	const char *p = ch != '\0' ? strchr(b64_chars, ch) : NULL;
	return p != NULL ? (int)(p - b64_chars) : -1;
}

/*
 * Decodes canonical padded base64 only: whole quads, '=' only as the last one
 * or two characters, and zero bits under the padding, so that every value
 * has exactly one spelling. Returns false on anything else or when the
 * result would not fit in cap bytes.
 */
static bool b64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
	if (n % 4 != 0)
		return false;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 4) {
		bool last = i + 4 == n;
		size_t pad = last && in[i + 3] == '=' ? (in[i + 2] == '=' ? 2 : 1) : 0;
		uint32_t v = 0;
		for (size_t k = 0; k < 4; k++) {
			int d = k < 4 - pad ? b64_value(in[i + k]) : 0;
			if (d < 0)
				return false;
			v = v << 6 | (uint32_t)d;
		}
		if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0))
			return false;
		if (o + 3 - pad > cap)
			return false;
		out[o++] = (uint8_t)(v >> 16);
		if (pad < 2)
			out[o++] = (uint8_t)(v >> 8);
		if (pad < 1)
			out[o++] = (uint8_t)v;
	}
	*out_len = o;
	return true;
}

/* --------------------------------------------------------------- parsing */

/* A read position in a message that is not NUL-terminated. */
struct cursor {
	const char *p;
	const char *end;
};

static bool cursor_at_end(const struct cursor *c)
{
	return c->p == c->end;
}

/* Consumes lit if the message continues with it. */
static bool cursor_take(struct cursor *c, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return false;
	c->p += n;
	return true;
}

/* Consumes the text up to the next ',' or the end; returns its length. */
static size_t cursor_take_value(struct cursor *c, const char **value)
{
	const char *comma = memchr(c->p, ',', (size_t)(c->end - c->p));
	const char *stop = comma != NULL ? comma : c->end;
	*value = c->p;
	size_t n = (size_t)(stop - c->p);
	c->p = stop;
	return n;
}

/* RFC 5802 "printable": %x21-2B / %x2D-7E, the characters a nonce may use. */
static bool is_printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	return true;
}

/* A saslname: any bytes but ',' (not in a value) and '=' outside "=2C" or "=3D". */
static bool is_saslname(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '=')
			continue;
		if (i + 2 >= n || !((s[i + 1] == '2' && s[i + 2] == 'C') ||
				    (s[i + 1] == '3' && s[i + 2] == 'D')))
			return false;
		i += 2;
	}
	return true;
}

/*
 * Consumes optional trailing extensions: each "," ALPHA "=" value, as the
 * RFC lets any message end with them. stop, when not 0, is an attribute
 * letter that ends the list instead (the proof in a client-final-message).
 */
static bool cursor_skip_extensions(struct cursor *c, char stop)
{
	while (!cursor_at_end(c)) {
		const char *value;
		if ((size_t)(c->end - c->p) < 3 || c->p[0] != ',' || c->p[2] != '=')
			return false;
		char name = c->p[1];
		if (stop != 0 && name == stop)
			return true;
		if (!((name >= 'a' && name <= 'z') || (name >= 'A' && name <= 'Z')))
			return false;
		c->p += 3;
		if (cursor_take_value(c, &value) == 0)
			return false;
	}
	return stop == 0;
}

/* A message must fit the bound and, being text, hold no NUL. */
static bool message_ok(const char *msg, size_t len)
{
	return len > 0 && len <= SCRAM_MAX_MESSAGE && memchr(msg, '\0', len) == NULL;
}

/* Parses decimal iterations: 1..max, no sign, no leading zero. */
static bool parse_iterations(const char *s, size_t n, long max, int *out)
{
	if (n == 0 || n > 10 || s[0] == '0')
		return false;
	long long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return false;
	*out = (int)v;
	return true;
}

/* ---------------------------------------------------------------- crypto */

static bool hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
			uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int out_len = 0;
	return HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len) != NULL &&
	       out_len == SCRAM_KEY_LEN;
}

static bool sha256(const uint8_t *data, size_t len, uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int out_len = 0;
	return EVP_Digest(data, len, out, &out_len, EVP_sha256(), NULL) == 1 &&
	       out_len == SCRAM_KEY_LEN;
}

/* ClientKey and ServerKey from a password (raw bytes, see the top of the file). */
static bool derive_keys(const char *password, size_t password_len, const uint8_t *salt,
			size_t salt_len, int iterations, uint8_t client_key[SCRAM_KEY_LEN],
			uint8_t server_key[SCRAM_KEY_LEN])
{
	uint8_t salted[SCRAM_KEY_LEN];
	bool ok = PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len, iterations,
				    EVP_sha256(), SCRAM_KEY_LEN, salted) == 1 &&
		  hmac_sha256(salted, sizeof(salted), "Client Key", 10, client_key) &&
		  hmac_sha256(salted, sizeof(salted), "Server Key", 10, server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	return ok;
}

/* Writes bare "," server_first "," without_proof to out; returns the length. */
static size_t auth_message(char out[AUTH_MESSAGE_MAX], const char *bare, size_t bare_len,
			   const char *server_first, size_t server_first_len,
			   const char *without_proof, size_t without_proof_len)
{
	size_t n = 0;
	memcpy(out, bare, bare_len);
	n += bare_len;
	out[n++] = ',';
	memcpy(out + n, server_first, server_first_len);
	n += server_first_len;
	out[n++] = ',';
	memcpy(out + n, without_proof, without_proof_len);
	return n + without_proof_len;
}

/*
 * The key behind mock salts. It is the one piece of process-wide state here:
 * a mock user must show the same salt on every attempt, whichever worker
 * serves it, and the key must stay secret so that nobody can predict mock
 * salts and tell them from real ones.
 */
static pthread_once_t mock_key_once = PTHREAD_ONCE_INIT;
static uint8_t mock_key[SCRAM_KEY_LEN];
static bool mock_key_ok;

static void mock_key_generate(void)
{
	mock_key_ok = RAND_bytes(mock_key, sizeof(mock_key)) == 1;
}

/* The salt a user without a SCRAM secret is shown: stable per process. */
static bool mock_salt(const char *username, uint8_t salt[SCRAM_SALT_LEN])
{
	uint8_t mac[SCRAM_KEY_LEN];
	if (pthread_once(&mock_key_once, mock_key_generate) != 0 || !mock_key_ok ||
	    !hmac_sha256(mock_key, sizeof(mock_key), username, strlen(username), mac))
		return false;
	memcpy(salt, mac, SCRAM_SALT_LEN);
	return true;
}

/* --------------------------------------------------------------- secrets */

bool scram_secret_parse(const char *secret, struct scram_secret *out)
{
	size_t n = strnlen(secret, SECRET_MAX_LEN + 1);
	if (n > SECRET_MAX_LEN)
		return false;
	struct cursor c = {secret, secret + n};
	size_t key_len;
	if (!cursor_take(&c, SECRET_PREFIX))
		return false;
	const char *colon = memchr(c.p, ':', (size_t)(c.end - c.p));
	if (colon == NULL || !parse_iterations(c.p, (size_t)(colon - c.p), INT_MAX, &out->iterations))
		return false;
	c.p = colon + 1;
	const char *dollar = memchr(c.p, '$', (size_t)(c.end - c.p));
	if (dollar == NULL ||
	    !b64_decode(c.p, (size_t)(dollar - c.p), out->salt, sizeof(out->salt), &out->salt_len) ||
	    out->salt_len == 0)
		return false;
	c.p = dollar + 1;
	colon = memchr(c.p, ':', (size_t)(c.end - c.p));
	if (colon == NULL ||
	    !b64_decode(c.p, (size_t)(colon - c.p), out->stored_key, SCRAM_KEY_LEN, &key_len) ||
	    key_len != SCRAM_KEY_LEN)
		return false;
	c.p = colon + 1;
	return b64_decode(c.p, (size_t)(c.end - c.p), out->server_key, SCRAM_KEY_LEN, &key_len) &&
	       key_len == SCRAM_KEY_LEN;
}

bool scram_verify_password(const char *secret, const char *password)
{
	struct scram_secret sec;
	size_t password_len = strnlen(password, SCRAM_MAX_PASSWORD + 1);
	if (password_len == 0 || password_len > SCRAM_MAX_PASSWORD ||
	    !scram_secret_parse(secret, &sec) || sec.iterations > SCRAM_MAX_ITERATIONS)
		return false;
	uint8_t client_key[SCRAM_KEY_LEN], server_key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
	bool ok = derive_keys(password, password_len, sec.salt, sec.salt_len, sec.iterations,
			      client_key, server_key) &&
		  sha256(client_key, sizeof(client_key), stored);
	ok = ok && CRYPTO_memcmp(stored, sec.stored_key, SCRAM_KEY_LEN) == 0 &&
	     CRYPTO_memcmp(server_key, sec.server_key, SCRAM_KEY_LEN) == 0;
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(server_key, sizeof(server_key));
	return ok;
}

bool scram_build_secret(const char *password, int iterations, char *out, size_t cap)
{
	size_t password_len = strnlen(password, SCRAM_MAX_PASSWORD + 1);
	if (password_len == 0 || password_len > SCRAM_MAX_PASSWORD || iterations < 1 ||
	    iterations > SCRAM_MAX_ITERATIONS)
		return false;
	uint8_t salt[SCRAM_SALT_LEN];
	uint8_t client_key[SCRAM_KEY_LEN], stored_key[SCRAM_KEY_LEN], server_key[SCRAM_KEY_LEN];
	char salt64[B64_LEN(SCRAM_SALT_LEN) + 1];
	char stored64[B64_LEN(SCRAM_KEY_LEN) + 1], server64[B64_LEN(SCRAM_KEY_LEN) + 1];
	bool ok = RAND_bytes(salt, sizeof(salt)) == 1 &&
		  derive_keys(password, password_len, salt, sizeof(salt), iterations, client_key,
			      server_key) &&
		  sha256(client_key, sizeof(client_key), stored_key);
	if (ok) {
		b64_encode(salt, sizeof(salt), salt64);
		b64_encode(stored_key, sizeof(stored_key), stored64);
		b64_encode(server_key, sizeof(server_key), server64);
		int w = snprintf(out, cap, SECRET_PREFIX "%d:%s$%s:%s", iterations, salt64, stored64,
				 server64);
		ok = w > 0 && (size_t)w < cap;
	}
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(server_key, sizeof(server_key));
	OPENSSL_cleanse(server64, sizeof(server64));
	return ok;
}

/* ---------------------------------------------------------------- server */

static bool server_fail(struct scram_server *s, const char **err, const char *why)
{
	s->state = SCRAM_SERVER_FAILED;
	if (err != NULL)
		*err = why;
	return false;
}

bool scram_server_init_mock(struct scram_server *s, const char *username)
{
	memset(s, 0, sizeof(*s));
	s->mock = true;
	s->mock_reason = "unknown user";
	s->secret.iterations = SCRAM_DEFAULT_ITERATIONS;
	s->secret.salt_len = SCRAM_SALT_LEN;
	return mock_salt(username, s->secret.salt);
}

bool scram_server_init(struct scram_server *s, const char *secret, const char *username)
{
	size_t secret_len = strnlen(secret, SCRAM_MAX_PASSWORD + 1);
	if (secret_len > SCRAM_MAX_PASSWORD)
		return false;
	memset(s, 0, sizeof(*s));
	if (scram_secret_parse(secret, &s->secret))
		return true;
	/* Not a SCRAM secret, even if it starts like one: PostgreSQL would take it as plaintext. */
	if (!scram_server_init_mock(s, username))
		return false;
	/* password_kind_of()'s md5 rule, repeated so that scram.c needs nothing of password.c. */
	bool md5 = strncmp(secret, "md5", 3) == 0 && secret_len == 35 &&
		   strspn(secret + 3, "0123456789abcdef") == 32;
	if (secret_len == 0 || md5) {
		s->mock_reason = md5 ? "user has an md5 secret, which cannot verify SCRAM"
				     : "user has an empty password";
		return true;
	}
	s->mock = false;
	s->mock_reason = NULL;
	uint8_t client_key[SCRAM_KEY_LEN];
	bool ok = derive_keys(secret, secret_len, s->secret.salt, s->secret.salt_len,
			      s->secret.iterations, client_key, s->secret.server_key) &&
		  sha256(client_key, sizeof(client_key), s->secret.stored_key);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return ok;
}

bool scram_server_set_channel_binding(struct scram_server *s, const uint8_t *data, size_t len)
{
	if (s->state != SCRAM_SERVER_INIT || len == 0 || len > SCRAM_MAX_CBIND)
		return false;
	memcpy(s->cbind, data, len);
	s->cbind_len = len;
	s->cbind_offered = true;
	return true;
}

bool scram_server_set_nonce(struct scram_server *s, const char *suffix)
{
	size_t n = strnlen(suffix, SCRAM_MAX_FIXED_NONCE + 1);
	if (s->state != SCRAM_SERVER_INIT || n == 0 || n > SCRAM_MAX_FIXED_NONCE ||
	    !is_printable(suffix, n))
		return false;
	memcpy(s->fixed_nonce, suffix, n + 1);
	s->fixed_nonce_len = n;
	return true;
}

/* Reads the gs2 header: the channel binding flag, then an empty authzid. */
static const char *server_read_gs2_header(struct scram_server *s, struct cursor *c)
{
	const char *start = c->p;
	if (cursor_take(c, "n,"))
		s->cbind_flag = SCRAM_CBIND_NONE;
	else if (cursor_take(c, "y,"))
		s->cbind_flag = SCRAM_CBIND_UNSUPPORTED;
	else if (cursor_take(c, "p=" CBIND_NAME ","))
		s->cbind_flag = SCRAM_CBIND_USED;
	else if (cursor_take(c, "p="))
		return "unsupported channel binding type";
	else
		return "malformed client-first-message: bad channel binding flag";
	if (cursor_take(c, "a="))
		return "client-first-message has an authorization identity, which is not supported";
	if (!cursor_take(c, ","))
		return "malformed client-first-message: bad gs2 header";
	s->gs2_header_len = (size_t)(c->p - start);
	memcpy(s->gs2_header, start, s->gs2_header_len);
	s->gs2_header[s->gs2_header_len] = '\0';
	if (s->cbind_flag == SCRAM_CBIND_USED && !s->cbind_offered)
		return "client requires channel binding, which was not offered";
	if (s->cbind_flag == SCRAM_CBIND_UNSUPPORTED && s->cbind_offered)
		return "client thinks the server cannot bind channels, but it offered to (downgrade?)";
	return NULL;
}

bool scram_server_handle_first(struct scram_server *s, const char *client_first, size_t len,
			       char *server_first_out, size_t cap, const char **err)
{
	if (s->state != SCRAM_SERVER_INIT)
		return server_fail(s, err, "SCRAM message out of order");
	if (!message_ok(client_first, len))
		return server_fail(s, err, "malformed client-first-message: empty, too long or has NUL");
	struct cursor c = {client_first, client_first + len};
	const char *why = server_read_gs2_header(s, &c);
	if (why != NULL)
		return server_fail(s, err, why);
	const char *bare = c.p;
	const char *user, *nonce;
	if (cursor_take(&c, "m="))
		return server_fail(s, err, "client-first-message has a mandatory extension");
	if (!cursor_take(&c, "n="))
		return server_fail(s, err, "malformed client-first-message: no username");
	size_t user_len = cursor_take_value(&c, &user);
	if (!is_saslname(user, user_len))
		return server_fail(s, err, "malformed client-first-message: bad username encoding");
	if (!cursor_take(&c, ",r="))
		return server_fail(s, err, "malformed client-first-message: no nonce");
	size_t nonce_len = cursor_take_value(&c, &nonce);
	if (nonce_len == 0 || !is_printable(nonce, nonce_len))
		return server_fail(s, err, "malformed client-first-message: bad nonce");
	if (!cursor_skip_extensions(&c, 0))
		return server_fail(s, err, "malformed client-first-message: bad extension");

	char suffix[B64_LEN(SCRAM_NONCE_RAW_LEN) + SCRAM_MAX_FIXED_NONCE + 1];
	if (s->fixed_nonce_len > 0) {
		memcpy(suffix, s->fixed_nonce, s->fixed_nonce_len + 1);
	} else {
		uint8_t raw[SCRAM_NONCE_RAW_LEN];
		if (RAND_bytes(raw, sizeof(raw)) != 1)
			return server_fail(s, err, "random generator failed");
		b64_encode(raw, sizeof(raw), suffix);
	}
	char salt64[B64_LEN(SCRAM_MAX_SALT) + 1];
	b64_encode(s->secret.salt, s->secret.salt_len, salt64);
	int w = snprintf(s->server_first, sizeof(s->server_first), "r=%.*s%s,s=%s,i=%d",
			 (int)nonce_len, nonce, suffix, salt64, s->secret.iterations);
	if (w < 0 || (size_t)w >= sizeof(s->server_first) || (size_t)w >= cap)
		return server_fail(s, err, "client nonce too long for the server-first-message");
	s->server_first_len = (size_t)w;
	s->nonce_len = nonce_len + strlen(suffix);
	s->client_first_bare_len = (size_t)(c.end - bare);
	memcpy(s->client_first_bare, bare, s->client_first_bare_len);
	s->client_first_bare[s->client_first_bare_len] = '\0';
	memcpy(server_first_out, s->server_first, s->server_first_len + 1);
	s->state = SCRAM_SERVER_FIRST_SENT;
	return true;
}

/* Does the c= attribute carry exactly our gs2 header and, when bound, our channel data? */
static bool server_cbind_matches(const struct scram_server *s, const char *b64, size_t len)
{
	uint8_t got[SCRAM_MAX_GS2_HEADER + SCRAM_MAX_CBIND];
	size_t got_len;
	if (!b64_decode(b64, len, got, sizeof(got), &got_len))
		return false;
	size_t want_cbind = s->cbind_flag == SCRAM_CBIND_USED ? s->cbind_len : 0;
	return got_len == s->gs2_header_len + want_cbind &&
	       memcmp(got, s->gs2_header, s->gs2_header_len) == 0 &&
	       memcmp(got + s->gs2_header_len, s->cbind, want_cbind) == 0;
}

bool scram_server_handle_final(struct scram_server *s, const char *client_final, size_t len,
			       char *server_final_out, size_t cap, const char **err)
{
	if (s->state != SCRAM_SERVER_FIRST_SENT)
		return server_fail(s, err, "SCRAM message out of order");
	if (!message_ok(client_final, len))
		return server_fail(s, err, "malformed client-final-message: empty, too long or has NUL");
	struct cursor c = {client_final, client_final + len};
	const char *cbind, *nonce, *proof64;
	if (!cursor_take(&c, "c="))
		return server_fail(s, err, "malformed client-final-message: no channel binding");
	size_t cbind_len = cursor_take_value(&c, &cbind);
	if (!cursor_take(&c, ",r="))
		return server_fail(s, err, "malformed client-final-message: no nonce");
	size_t nonce_len = cursor_take_value(&c, &nonce);
	if (!cursor_skip_extensions(&c, 'p'))
		return server_fail(s, err, "malformed client-final-message: no proof");
	size_t without_proof_len = (size_t)(c.p - client_final);
	c.p += 3;
	size_t proof64_len = cursor_take_value(&c, &proof64);
	uint8_t proof[SCRAM_KEY_LEN];
	size_t proof_len;
	if (!cursor_at_end(&c) || !b64_decode(proof64, proof64_len, proof, sizeof(proof), &proof_len) ||
	    proof_len != SCRAM_KEY_LEN)
		return server_fail(s, err, "malformed client-final-message: bad proof");
	if (!server_cbind_matches(s, cbind, cbind_len))
		return server_fail(s, err, "channel binding data does not match");
	if (nonce_len != s->nonce_len || memcmp(nonce, s->server_first + 2, nonce_len) != 0)
		return server_fail(s, err, "nonce does not match");

	char msg[AUTH_MESSAGE_MAX];
	size_t msg_len = auth_message(msg, s->client_first_bare, s->client_first_bare_len,
				      s->server_first, s->server_first_len, client_final,
				      without_proof_len);
	uint8_t signature[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN], check[SCRAM_KEY_LEN];
	if (!hmac_sha256(s->secret.stored_key, SCRAM_KEY_LEN, msg, msg_len, signature))
		return server_fail(s, err, "HMAC failed");
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		client_key[i] = proof[i] ^ signature[i];
	bool proven = sha256(client_key, sizeof(client_key), check) &&
		      CRYPTO_memcmp(check, s->secret.stored_key, SCRAM_KEY_LEN) == 0;
	if (s->mock || !proven) {
		OPENSSL_cleanse(client_key, sizeof(client_key));
		return server_fail(s, err, s->mock ? s->mock_reason : "wrong password");
	}
	if (cap < 3 + B64_LEN(SCRAM_KEY_LEN) ||
	    !hmac_sha256(s->secret.server_key, SCRAM_KEY_LEN, msg, msg_len, signature)) {
		OPENSSL_cleanse(client_key, sizeof(client_key));
		return server_fail(s, err, "no room for the server-final-message");
	}
	memcpy(server_final_out, "v=", 2);
	b64_encode(signature, sizeof(signature), server_final_out + 2);
	memcpy(s->client_key, client_key, SCRAM_KEY_LEN);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	s->have_client_key = true;
	s->state = SCRAM_SERVER_DONE;
	return true;
}

void scram_server_clear(struct scram_server *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
}

/* ---------------------------------------------------------------- client */

static bool client_fail(struct scram_client *c, const char **err, const char *why)
{
	OPENSSL_cleanse(c->password, sizeof(c->password));
	OPENSSL_cleanse(c->client_key, sizeof(c->client_key));
	OPENSSL_cleanse(c->server_key, sizeof(c->server_key));
	c->state = SCRAM_CLIENT_FAILED;
	if (err != NULL)
		*err = why;
	return false;
}

/* Fills the random client nonce; tests may replace it before the first message. */
static bool client_init_nonce(struct scram_client *c)
{
	uint8_t raw[SCRAM_NONCE_RAW_LEN];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return false;
	c->nonce_len = b64_encode(raw, sizeof(raw), c->nonce);
	return true;
}

bool scram_client_init(struct scram_client *c, const char *password)
{
	memset(c, 0, sizeof(*c));
	size_t n = strnlen(password, SCRAM_MAX_PASSWORD + 1);
	if (n == 0 || n > SCRAM_MAX_PASSWORD)
		return false;
	memcpy(c->password, password, n + 1);
	c->password_len = n;
	return client_init_nonce(c);
}

bool scram_client_init_keys(struct scram_client *c, const uint8_t client_key[SCRAM_KEY_LEN],
			    const uint8_t server_key[SCRAM_KEY_LEN])
{
	memset(c, 0, sizeof(*c));
	memcpy(c->client_key, client_key, SCRAM_KEY_LEN);
	memcpy(c->server_key, server_key, SCRAM_KEY_LEN);
	c->have_keys = true;
	return client_init_nonce(c);
}

bool scram_client_set_username(struct scram_client *c, const char *username)
{
	size_t n = strnlen(username, SCRAM_MAX_USERNAME + 1);
	if (c->state != SCRAM_CLIENT_INIT || n > SCRAM_MAX_USERNAME)
		return false;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (username[i] == ',' || username[i] == '=') {
			memcpy(c->username + o, username[i] == ',' ? "=2C" : "=3D", 3);
			o += 3;
		} else {
			c->username[o++] = username[i];
		}
	}
	c->username[o] = '\0';
	return true;
}

bool scram_client_set_nonce(struct scram_client *c, const char *nonce)
{
	size_t n = strnlen(nonce, SCRAM_MAX_FIXED_NONCE + 1);
	if (c->state != SCRAM_CLIENT_INIT || n == 0 || n > SCRAM_MAX_FIXED_NONCE ||
	    !is_printable(nonce, n))
		return false;
	memcpy(c->nonce, nonce, n + 1);
	c->nonce_len = n;
	return true;
}

bool scram_client_first(struct scram_client *c, char *out, size_t cap)
{
	if (c->state != SCRAM_CLIENT_INIT)
		return false;
	int w = snprintf(c->client_first_bare, sizeof(c->client_first_bare), "n=%s,r=%s",
			 c->username, c->nonce);
	if (w < 0 || (size_t)w >= sizeof(c->client_first_bare) || (size_t)w + 3 >= cap)
		return false;
	c->client_first_bare_len = (size_t)w;
	memcpy(out, "n,,", 3);
	memcpy(out + 3, c->client_first_bare, c->client_first_bare_len + 1);
	c->state = SCRAM_CLIENT_FIRST_SENT;
	return true;
}

bool scram_client_handle_server_first(struct scram_client *c, const char *msg, size_t len,
				      char *client_final_out, size_t cap, const char **err)
{
	if (c->state != SCRAM_CLIENT_FIRST_SENT)
		return client_fail(c, err, "SCRAM message out of order");
	if (!message_ok(msg, len))
		return client_fail(c, err, "malformed server-first-message: empty, too long or has NUL");
	struct cursor cur = {msg, msg + len};
	const char *nonce, *salt64, *iter;
	if (cursor_take(&cur, "m="))
		return client_fail(c, err, "server-first-message has a mandatory extension");
	if (!cursor_take(&cur, "r="))
		return client_fail(c, err, "malformed server-first-message: no nonce");
	size_t nonce_len = cursor_take_value(&cur, &nonce);
	if (!is_printable(nonce, nonce_len))
		return client_fail(c, err, "malformed server-first-message: bad nonce");
	if (nonce_len <= c->nonce_len || memcmp(nonce, c->nonce, c->nonce_len) != 0)
		return client_fail(c, err, "server nonce does not extend the client nonce");
	if (!cursor_take(&cur, ",s="))
		return client_fail(c, err, "malformed server-first-message: no salt");
	size_t salt64_len = cursor_take_value(&cur, &salt64);
	uint8_t salt[SCRAM_MAX_SALT];
	size_t salt_len;
	if (!b64_decode(salt64, salt64_len, salt, sizeof(salt), &salt_len) || salt_len == 0)
		return client_fail(c, err, "malformed server-first-message: bad salt");
	if (!cursor_take(&cur, ",i="))
		return client_fail(c, err, "malformed server-first-message: no iteration count");
	size_t iter_len = cursor_take_value(&cur, &iter);
	int iterations;
	if (!parse_iterations(iter, iter_len, SCRAM_MAX_ITERATIONS, &iterations))
		return client_fail(c, err, "server-first-message has a bad or too high iteration count");
	if (!cursor_skip_extensions(&cur, 0))
		return client_fail(c, err, "malformed server-first-message: bad extension");

	char without_proof[SCRAM_MAX_MESSAGE + 1];
	int w = snprintf(without_proof, sizeof(without_proof), "c=biws,r=%.*s", (int)nonce_len,
			 nonce);
	if (w < 0 || (size_t)w >= sizeof(without_proof) ||
	    (size_t)w + 3 + B64_LEN(SCRAM_KEY_LEN) >= cap)
		return client_fail(c, err, "client-final-message does not fit");
	if (!c->have_keys &&
	    !derive_keys(c->password, c->password_len, salt, salt_len, iterations, c->client_key,
			 c->server_key))
		return client_fail(c, err, "key derivation failed");
	OPENSSL_cleanse(c->password, sizeof(c->password));

	char am[AUTH_MESSAGE_MAX];
	size_t am_len = auth_message(am, c->client_first_bare, c->client_first_bare_len, msg, len,
				     without_proof, (size_t)w);
	uint8_t stored_key[SCRAM_KEY_LEN], signature[SCRAM_KEY_LEN], proof[SCRAM_KEY_LEN];
	if (!sha256(c->client_key, SCRAM_KEY_LEN, stored_key) ||
	    !hmac_sha256(stored_key, sizeof(stored_key), am, am_len, signature) ||
	    !hmac_sha256(c->server_key, SCRAM_KEY_LEN, am, am_len, c->server_signature))
		return client_fail(c, err, "HMAC failed");
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		proof[i] = c->client_key[i] ^ signature[i];
	OPENSSL_cleanse(c->client_key, sizeof(c->client_key));
	OPENSSL_cleanse(c->server_key, sizeof(c->server_key));
	memcpy(client_final_out, without_proof, (size_t)w);
	memcpy(client_final_out + w, ",p=", 3);
	b64_encode(proof, sizeof(proof), client_final_out + w + 3);
	c->state = SCRAM_CLIENT_FINAL_SENT;
	return true;
}

bool scram_client_verify_server_final(struct scram_client *c, const char *msg, size_t len,
				      const char **err)
{
	if (c->state != SCRAM_CLIENT_FINAL_SENT)
		return client_fail(c, err, "SCRAM message out of order");
	if (!message_ok(msg, len))
		return client_fail(c, err, "malformed server-final-message: empty, too long or has NUL");
	struct cursor cur = {msg, msg + len};
	const char *sig64;
	if (cursor_take(&cur, "e="))
		return client_fail(c, err, "server reported a SCRAM error");
	if (!cursor_take(&cur, "v="))
		return client_fail(c, err, "malformed server-final-message: no verifier");
	size_t sig64_len = cursor_take_value(&cur, &sig64);
	uint8_t sig[SCRAM_KEY_LEN];
	size_t sig_len;
	if (!b64_decode(sig64, sig64_len, sig, sizeof(sig), &sig_len) || sig_len != SCRAM_KEY_LEN ||
	    !cursor_skip_extensions(&cur, 0))
		return client_fail(c, err, "malformed server-final-message: bad verifier");
	if (CRYPTO_memcmp(sig, c->server_signature, SCRAM_KEY_LEN) != 0)
		return client_fail(c, err, "server signature is wrong: it does not know the secret");
	c->state = SCRAM_CLIENT_DONE;
	return true;
}

void scram_client_clear(struct scram_client *c)
{
	OPENSSL_cleanse(c, sizeof(*c));
}
