/*
 * scram.h - SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it.
 *
 * Both roles of the pooler live here: struct scram_server verifies a client
 * against an auth file secret (auth.c), struct scram_client logs in to a
 * PostgreSQL server (server.c). Each exchange keeps all of its state in its
 * struct, a fixed block that owns no memory (the caller may calloc it) and
 * should be wiped with scram_*_clear() before it is freed. Pure functions over
 * libcrypto: no I/O, no logging; every message is bounded and parsed
 * strictly, and a failure returns a static text for the log.
 */
#ifndef PGSLUICE_SCRAM_H
#define PGSLUICE_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Size of SHA-256 output, so of every SCRAM key, signature and proof. */
#define SCRAM_KEY_LEN 32

/* Longest SCRAM message accepted or produced, in bytes. */
#define SCRAM_MAX_MESSAGE 1024

/* Longest plaintext password (the auth file holds at most 1024 bytes). */
#define SCRAM_MAX_PASSWORD 1024

/* Longest salt accepted in a secret or a server-first-message (PostgreSQL uses 16). */
#define SCRAM_MAX_SALT 64

/* Salt length for new secrets, PostgreSQL's. */
#define SCRAM_SALT_LEN 16

/* Iterations for secrets derived here: PostgreSQL's default and RFC 7677's minimum. */
#define SCRAM_DEFAULT_ITERATIONS 4096

/*
 * Upper bound on the iteration count that this side computes PBKDF2 with (a
 * server-first-message, scram_build_secret()). PBKDF2 blocks the event loop
 * for about 0.25 µs per iteration on a current x86 core, so this bound is a
 * quarter second; PostgreSQL's default is 4096. Secrets themselves may carry
 * any count up to INT_MAX, as in PostgreSQL: verifying a client costs no
 * PBKDF2.
 */
#define SCRAM_MAX_ITERATIONS 1000000

/* Random bytes behind each side's nonce; base64 makes 24 characters of them. */
#define SCRAM_NONCE_RAW_LEN 18

/* Longest nonce (or server nonce suffix) that the test hooks accept. */
#define SCRAM_MAX_FIXED_NONCE 64

/* Longest channel binding data: a tls-server-end-point hash up to SHA-512. */
#define SCRAM_MAX_CBIND 64

/* Room for the longest gs2 header accepted: "p=tls-server-end-point,," and a NUL. */
#define SCRAM_MAX_GS2_HEADER 32

/* Longest role name sent in a client-first-message (PostgreSQL's NAMEDATALEN - 1). */
#define SCRAM_MAX_USERNAME 63

/* A parsed pg_authid secret: "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>". */
struct scram_secret {
	int iterations;
	size_t salt_len;
	uint8_t salt[SCRAM_MAX_SALT];
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
};

/* What a client's gs2 header says about channel binding. */
enum scram_cbind_flag {
	SCRAM_CBIND_NONE,        /* "n": the client does not support it */
	SCRAM_CBIND_UNSUPPORTED, /* "y": supported, but the client thinks the server does not */
	SCRAM_CBIND_USED,        /* "p=tls-server-end-point": the client binds to the TLS channel */
};

enum scram_server_state {
	SCRAM_SERVER_INIT,
	SCRAM_SERVER_FIRST_SENT,
	SCRAM_SERVER_DONE,
	SCRAM_SERVER_FAILED,
};

struct scram_server {
	enum scram_server_state state;
	/* Set when the exchange must fail at the end; mock_reason says why, for the log. */
	bool mock;
	const char *mock_reason;
	struct scram_secret secret;
	bool cbind_offered;
	size_t cbind_len;
	uint8_t cbind[SCRAM_MAX_CBIND];
	size_t fixed_nonce_len; /* a test's server nonce suffix; 0 for a random one */
	char fixed_nonce[SCRAM_MAX_FIXED_NONCE + 1];
	enum scram_cbind_flag cbind_flag;
	size_t gs2_header_len;
	char gs2_header[SCRAM_MAX_GS2_HEADER];
	size_t client_first_bare_len;
	char client_first_bare[SCRAM_MAX_MESSAGE + 1];
	size_t server_first_len;
	char server_first[SCRAM_MAX_MESSAGE + 1];
	size_t nonce_len; /* the combined nonce is server_first[2, 2 + nonce_len) */
	/* The client's ClientKey, recovered from its proof: lets SCRAM pass through to servers. */
	bool have_client_key;
	uint8_t client_key[SCRAM_KEY_LEN];
};

enum scram_client_state {
	SCRAM_CLIENT_INIT,
	SCRAM_CLIENT_FIRST_SENT,
	SCRAM_CLIENT_FINAL_SENT,
	SCRAM_CLIENT_DONE,
	SCRAM_CLIENT_FAILED,
};

struct scram_client {
	enum scram_client_state state;
	bool have_keys; /* pass-through: the keys below stand in for the password */
	size_t password_len;
	char password[SCRAM_MAX_PASSWORD + 1];
	uint8_t client_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
	char username[3 * SCRAM_MAX_USERNAME + 1]; /* saslname-encoded, usually empty */
	size_t nonce_len;
	char nonce[SCRAM_MAX_FIXED_NONCE + 1];
	size_t client_first_bare_len;
	char client_first_bare[SCRAM_MAX_MESSAGE + 1];
	uint8_t server_signature[SCRAM_KEY_LEN];
};

/*
 * Parses a SCRAM-SHA-256 secret strictly: decimal iterations within
 * 1..INT_MAX, a salt of 1..SCRAM_MAX_SALT bytes, 32-byte keys, canonical
 * padded base64, nothing else.
 * secret: NUL-terminated.
 * out: receives the parts; undefined on failure.
 * Returns true when the secret is well formed.
 */
bool scram_secret_parse(const char *secret, struct scram_secret *out);

/*
 * Builds a secret as PostgreSQL stores it, with a random salt of
 * SCRAM_SALT_LEN bytes.
 * password: the plaintext password (non-empty; bytes are used as they are,
 *           see scram.c on SASLprep).
 * iterations: 1..SCRAM_MAX_ITERATIONS.
 * out: receives the NUL-terminated secret (about 135 characters).
 * cap: size of out.
 * Returns false on a bad argument, a short buffer or a failing generator.
 */
bool scram_build_secret(const char *password, int iterations, char *out, size_t cap);

/*
 * Checks a plaintext password (from a cleartext password exchange) against
 * a SCRAM-SHA-256 secret, in constant time over the keys.
 * secret: a pg_authid SCRAM secret; password: the client's password, used
 * as raw bytes like scram_build_secret() does.
 * Returns true when the password derives the secret's StoredKey and
 * ServerKey; false for a wrong, empty or too long password, a secret that
 * does not parse, more than SCRAM_MAX_ITERATIONS iterations, or a failing
 * libcrypto.
 */
bool scram_verify_password(const char *secret, const char *password);

/*
 * Prepares the verification of a client. Secrets that cannot verify SCRAM
 * (md5, empty) start a mock exchange instead, as scram_server_init_mock()
 * does. A string that starts like a SCRAM secret but does not parse is a
 * plaintext password, as in PostgreSQL. A plaintext password gets the same per-process salt a mock exchange
 * for that user would show, so plaintext users cannot be told from unknown
 * ones, and costs one PBKDF2 of SCRAM_DEFAULT_ITERATIONS.
 * s: the state to fill (any previous content is discarded).
 * secret: the user's secret from the auth file, NUL-terminated.
 * username: the role name from the startup packet.
 * Returns false when the secret is too long or randomness or hashing fails.
 */
bool scram_server_init(struct scram_server *s, const char *secret, const char *username);

/*
 * Prepares an exchange for a user that has no usable secret. It runs like a
 * real one and fails only at the client's proof, so that a client cannot
 * learn which users exist: the salt is an HMAC of the username under a
 * random per-process key, the same on every attempt.
 * s: the state to fill.
 * username: the role name from the startup packet.
 * Returns false when randomness or hashing fails.
 */
bool scram_server_init_mock(struct scram_server *s, const char *username);

/*
 * Offers channel binding "tls-server-end-point" (mechanism
 * SCRAM-SHA-256-PLUS): a client then may bind, and one that says "y"
 * (a downgrade) is refused. Call after init and before the client-first.
 * s: the state.
 * data: the hash of the server's TLS certificate (RFC 5929).
 * len: 1..SCRAM_MAX_CBIND.
 * Returns false on a bad length or a call at the wrong time.
 */
bool scram_server_set_channel_binding(struct scram_server *s, const uint8_t *data, size_t len);

/*
 * For tests only: makes the server nonce suffix fixed instead of random.
 * s: the state, after init and before the client-first.
 * suffix: 1..SCRAM_MAX_FIXED_NONCE printable characters other than ','.
 * Returns false on a bad suffix or a call at the wrong time.
 */
bool scram_server_set_nonce(struct scram_server *s, const char *suffix);

/*
 * Reads the client-first-message (the data of SASLInitialResponse) and
 * writes the server-first-message "r=<nonce>,s=<salt>,i=<iterations>".
 * The username in it is checked for form and otherwise ignored, as
 * PostgreSQL does; authorization identities and mandatory extensions are
 * refused.
 * s: the state, freshly initialized.
 * client_first: the message, not NUL-terminated.
 * len: its length, at most SCRAM_MAX_MESSAGE.
 * server_first_out: receives the NUL-terminated answer.
 * cap: size of server_first_out.
 * err: on failure, if not NULL, receives a static text for the log.
 * Returns true when the answer was written; on false the exchange is over.
 */
bool scram_server_handle_first(struct scram_server *s, const char *client_first, size_t len,
			       char *server_first_out, size_t cap, const char **err);

/*
 * Reads the client-final-message and checks, in this order, the channel
 * binding data, the nonce and the proof; on success writes the
 * server-final-message "v=<ServerSignature>" and keeps the client's
 * ClientKey in s->client_key (s->have_client_key).
 * s: the state, after scram_server_handle_first().
 * client_final: the message, not NUL-terminated.
 * len: its length, at most SCRAM_MAX_MESSAGE.
 * server_final_out: receives the NUL-terminated answer.
 * cap: size of server_final_out.
 * err: on failure, if not NULL, receives a static text for the log:
 *      "malformed ..." for a message that breaks the grammar, "wrong
 *      password" for a proof that does not verify, and others for a
 *      nonce, channel binding or mock exchange.
 * Returns true when the client proved its password.
 */
bool scram_server_handle_final(struct scram_server *s, const char *client_final, size_t len,
			       char *server_final_out, size_t cap, const char **err);

/*
 * Wipes the keys and messages of an exchange (call before freeing s).
 * s: the state; it is left as a zeroed struct.
 */
void scram_server_clear(struct scram_server *s);

/*
 * Prepares a login to a server with a plaintext password. The password is
 * used as raw bytes, not SASLprep-normalized (see scram.c).
 * c: the state to fill (any previous content is discarded).
 * password: 1..SCRAM_MAX_PASSWORD bytes, NUL-terminated.
 * Returns false on an empty or too long password or a failing generator.
 */
bool scram_client_init(struct scram_client *c, const char *password);

/*
 * Prepares a login with keys instead of a password (SCRAM pass-through):
 * ClientKey makes the proof, ServerKey checks the server's signature. The
 * server's salt and iterations must be those the keys were derived with.
 * c: the state to fill.
 * client_key: ClientKey, e.g. a scram_server's recovered client_key.
 * server_key: ServerKey from the user's secret.
 * Returns false when the generator fails.
 */
bool scram_client_init_keys(struct scram_client *c, const uint8_t client_key[SCRAM_KEY_LEN],
			    const uint8_t server_key[SCRAM_KEY_LEN]);

/*
 * Sets the username sent in the client-first-message (PostgreSQL ignores
 * it, so "n=," is sent by default); ',' and '=' are escaped as saslname.
 * c: the state, before scram_client_first().
 * username: at most SCRAM_MAX_USERNAME bytes.
 * Returns false on a too long name or a call at the wrong time.
 */
bool scram_client_set_username(struct scram_client *c, const char *username);

/*
 * For tests only: makes the client nonce fixed instead of random.
 * c: the state, before scram_client_first().
 * nonce: 1..SCRAM_MAX_FIXED_NONCE printable characters other than ','.
 * Returns false on a bad nonce or a call at the wrong time.
 */
bool scram_client_set_nonce(struct scram_client *c, const char *nonce);

/*
 * Writes the client-first-message "n,,n=<user>,r=<nonce>" (no channel
 * binding), the data of SASLInitialResponse.
 * c: the state, initialized.
 * out: receives the NUL-terminated message.
 * cap: size of out.
 * Returns false on a short buffer or a call at the wrong time.
 */
bool scram_client_first(struct scram_client *c, char *out, size_t cap);

/*
 * Reads the server-first-message, checks that its nonce extends ours and
 * that salt and iterations are sane, and writes the client-final-message
 * with the proof. With a password this runs PBKDF2 (see
 * SCRAM_MAX_ITERATIONS); afterwards the password is wiped from c.
 * c: the state, after scram_client_first().
 * msg: the server-first-message, not NUL-terminated.
 * len: its length, at most SCRAM_MAX_MESSAGE.
 * client_final_out: receives the NUL-terminated answer.
 * cap: size of client_final_out.
 * err: on failure, if not NULL, receives a static text for the log.
 * Returns true when the answer was written; on false the exchange is over.
 */
bool scram_client_handle_server_first(struct scram_client *c, const char *msg, size_t len,
				      char *client_final_out, size_t cap, const char **err);

/*
 * Reads the server-final-message and checks the server's signature, which
 * proves that the server knows the secret too.
 * c: the state, after scram_client_handle_server_first().
 * msg: "v=<ServerSignature>" or "e=<error>", not NUL-terminated.
 * len: its length, at most SCRAM_MAX_MESSAGE.
 * err: on failure, if not NULL, receives a static text for the log.
 * Returns true when the server is authentic.
 */
bool scram_client_verify_server_final(struct scram_client *c, const char *msg, size_t len,
				      const char **err);

/*
 * Wipes the password, keys and messages of a login (call before freeing c).
 * c: the state; it is left as a zeroed struct.
 */
void scram_client_clear(struct scram_client *c);

#endif
