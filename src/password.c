/*
 * password.c - secret kinds, md5 hashing and checking, randomness (password.h).
 *
 * The md5 method is what PostgreSQL has spoken since 7.2; it stays for
 * servers and clients that still use it. Everything here is a pure function
 * over libcrypto.
 */
#include "password.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "scram.h"

#define MD5_DIGEST_BYTES 16
#define MD5_HEX_DIGITS (2 * MD5_DIGEST_BYTES)

enum password_kind password_kind_of(const char *secret)
{
	if (strncmp(secret, "md5", 3) == 0 && strlen(secret) == PASSWORD_MD5_LEN &&
	    strspn(secret + 3, "0123456789abcdef") == MD5_HEX_DIGITS)
		return PASSWORD_MD5;
	struct scram_secret parsed;
	if (scram_secret_parse(secret, &parsed)) {
		OPENSSL_cleanse(&parsed, sizeof(parsed));
		return PASSWORD_SCRAM;
	}
	return PASSWORD_PLAIN;
}

/*
 * "md5" + hex(md5(a || b)) into out. MD5 over two parts through the EVP
 * interface because OpenSSL 3 deprecates the MD5() shortcut. Returns false
 * when md5 is unavailable (a FIPS-only provider); out then holds a non-hex
 * string that password_kind_of() does not take for an md5 secret.
 */
static bool md5_hex_of(const void *a, size_t a_len, const void *b, size_t b_len, char out[36])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t digest[MD5_DIGEST_BYTES];
	unsigned int digest_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
		  EVP_DigestUpdate(ctx, a, a_len) == 1 && EVP_DigestUpdate(ctx, b, b_len) == 1 &&
		  EVP_DigestFinal_ex(ctx, digest, &digest_len) == 1 &&
		  digest_len == MD5_DIGEST_BYTES;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		memset(out, '!', PASSWORD_MD5_LEN);
		out[PASSWORD_MD5_LEN] = '\0';
		return false;
	}
	memcpy(out, "md5", 3);
	for (size_t i = 0; i < MD5_DIGEST_BYTES; i++) {
		out[3 + 2 * i] = hex[digest[i] >> 4];
		out[4 + 2 * i] = hex[digest[i] & 0x0f];
	}
	out[PASSWORD_MD5_LEN] = '\0';
	return true;
}

void password_md5_secret(const char *user, const char *password, char out[36])
{
	md5_hex_of(password, strlen(password), user, strlen(user), out);
}

void password_md5_response(const char *md5_secret_hex35, const uint8_t salt[4], char out[36])
{
	md5_hex_of(md5_secret_hex35 + 3, MD5_HEX_DIGITS, salt, 4, out);
}

bool password_md5_check(const char *secret, const char *user, const uint8_t salt[4],
			const char *client_response)
{
	char hashed[36];
	char expected[36];
	bool ok = false;
	switch (password_kind_of(secret)) {
	case PASSWORD_PLAIN:
		ok = secret[0] != '\0' &&
		     md5_hex_of(secret, strlen(secret), user, strlen(user), hashed) &&
		     md5_hex_of(hashed + 3, MD5_HEX_DIGITS, salt, 4, expected);
		OPENSSL_cleanse(hashed, sizeof(hashed));
		break;
	case PASSWORD_MD5:
		ok = md5_hex_of(secret + 3, MD5_HEX_DIGITS, salt, 4, expected);
		break;
	case PASSWORD_SCRAM:
		return false;
	}
	/* Only the length may leak through timing, and it is public. */
	ok = ok && strnlen(client_response, PASSWORD_MD5_LEN + 1) == PASSWORD_MD5_LEN &&
	     CRYPTO_memcmp(expected, client_response, PASSWORD_MD5_LEN) == 0;
	OPENSSL_cleanse(expected, sizeof(expected));
	return ok;
}

bool password_check_plain(const char *secret, const char *user, const char *password)
{
	size_t len = strlen(password);
	if (len == 0)
		return false;
	char hashed[36];
	bool ok = false;
	switch (password_kind_of(secret)) {
	case PASSWORD_PLAIN:
		ok = strlen(secret) == len && CRYPTO_memcmp(secret, password, len) == 0;
		break;
	case PASSWORD_MD5:
		password_md5_secret(user, password, hashed);
		ok = CRYPTO_memcmp(hashed, secret, PASSWORD_MD5_LEN) == 0;
		OPENSSL_cleanse(hashed, sizeof(hashed));
		break;
	case PASSWORD_SCRAM:
		ok = scram_verify_password(secret, password);
		break;
	}
	return ok;
}

bool password_random_bytes(uint8_t *out, size_t n)
{
	if (n > INT_MAX)
		return false;
	return n == 0 || RAND_bytes(out, (int)n) == 1;
}
