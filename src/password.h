/*
 * password.h - secrets of the auth file and the md5 password method.
 *
 * A secret is a plaintext password, an md5 hash ("md5" + 32 hex digits) or
 * a SCRAM-SHA-256 secret in pg_authid's format. auth.c checks clients' md5
 * answers against it; server.c answers a server's md5 challenge with it.
 * Pure functions over OpenSSL's libcrypto: no I/O, no logging.
 */
#ifndef PGSLUICE_PASSWORD_H
#define PGSLUICE_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of an md5 secret or response: "md5" and 32 hex digits, without the NUL. */
#define PASSWORD_MD5_LEN 35

enum password_kind {
	PASSWORD_PLAIN,
	PASSWORD_MD5,
	PASSWORD_SCRAM,
};

/*
 * Tells which kind of secret a string is, by PostgreSQL's rules: "md5" and
 * exactly 32 lowercase hex digits is md5, a well-formed SCRAM-SHA-256 secret
 * is SCRAM, anything else (including a malformed SCRAM secret) is plaintext.
 * secret: NUL-terminated.
 * Returns the kind.
 */
enum password_kind password_kind_of(const char *secret);

/*
 * Hashes a plaintext password the way pg_authid stores md5 passwords:
 * "md5" + hex(md5(password || user)).
 * user: the role name.
 * password: the plaintext password.
 * out: receives PASSWORD_MD5_LEN characters and a NUL.
 */
void password_md5_secret(const char *user, const char *password, char out[36]);

/*
 * Computes what a client answers to AuthenticationMD5Password:
 * "md5" + hex(md5(hex digits of the secret || salt)).
 * md5_secret_hex35: an md5 secret as password_md5_secret() makes it; only
 *                   its 32 hex digits after "md5" are read.
 * salt: the four salt bytes the server sent.
 * out: receives PASSWORD_MD5_LEN characters and a NUL.
 */
void password_md5_response(const char *md5_secret_hex35, const uint8_t salt[4], char out[36]);

/*
 * Checks a client's answer to an md5 challenge, in constant time.
 * secret: the user's plaintext or md5 secret; a SCRAM secret always fails
 *         (an md5 answer cannot be checked against it), as does an empty
 *         plaintext password (PostgreSQL refuses those too).
 * user: the role name the client logs in as (md5 salts the hash with it).
 * salt: the four salt bytes sent to the client.
 * client_response: the NUL-terminated PasswordMessage text.
 * Returns true when the answer proves knowledge of the password.
 */
bool password_md5_check(const char *secret, const char *user, const uint8_t salt[4],
			const char *client_response);

/*
 * Checks a password a client sent in clear (the hba_file method password)
 * against the user's secret of any kind: plaintext compared in constant time
 * over its length, md5 hashed with user, SCRAM derived with the secret's salt
 * (scram_verify_password). An empty password always fails.
 * secret: the user's secret; user: the role name; password: NUL-terminated.
 * Returns true when the password matches.
 */
bool password_check_plain(const char *secret, const char *user, const char *password);

/*
 * Fills a buffer from the cryptographic random generator.
 * out: receives n bytes.
 * n: how many; at most INT_MAX.
 * Returns false when the generator fails (then out must not be used).
 */
bool password_random_bytes(uint8_t *out, size_t n);

#endif
