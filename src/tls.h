/*
 * tls.h - the OpenSSL layer: TLS toward clients (pgsluice is the server) and toward
 * PostgreSQL (pgsluice is the client), on non-blocking sockets driven by the event loop.
 *
 * A connection that has negotiated TLS (SSLRequest answered 'S', or a direct TLS
 * ClientHello) owns one SSL made by tls_new() on its socket; the connection code calls
 * tls_handshake() until TLS_DONE, then tls_read()/tls_write() in place of recv()/send().
 * Everything here is non-blocking and reports which way the socket must become ready.
 * Contexts are immutable once made; a reload builds a new one and swaps the pointer.
 * OpenSSL writes to the socket with write(), so the process must ignore SIGPIPE.
 */
#ifndef PGSLUICE_TLS_H
#define PGSLUICE_TLS_H

#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The ALPN protocol name of PostgreSQL 17 (needed for direct TLS). */
#define TLS_ALPN_POSTGRESQL "postgresql"

/* Longest tls-server-end-point data: a SHA-512 hash. */
#define TLS_END_POINT_MAX 64

/*
 * What a side asks of TLS, with libpq's sslmode names. Toward clients, DISABLE to
 * REQUIRE differ only in whether the connection code offers or insists on TLS (a context
 * treats them alike), and VERIFY_CA and VERIFY_FULL both demand a client certificate
 * signed by ca_file (there is no host name to check on that side). Toward servers,
 * VERIFY_CA checks the server certificate against ca_file and VERIFY_FULL also checks
 * the host name (tls_new's verify_host); the other modes do not verify.
 */
enum tls_mode {
	TLS_MODE_DISABLE,
	TLS_MODE_ALLOW,
	TLS_MODE_PREFER,
	TLS_MODE_REQUIRE,
	TLS_MODE_VERIFY_CA,
	TLS_MODE_VERIFY_FULL,
};

/* What one side of TLS is configured with (borrowed strings; NULL or "" = unset). */
struct tls_settings {
	enum tls_mode mode;
	const char *cert_file; /* PEM certificate chain, leaf first */
	const char *key_file;  /* PEM private key of cert_file */
	const char *ca_file;   /* PEM CA certificates that peer certificates must chain to */
	/*
	 * Oldest protocol accepted: "TLSv1.2" or "TLSv1.3" (any case); "secure" or unset
	 * means TLSv1.2. Nothing older than TLS 1.2 can be enabled.
	 */
	const char *protocols;
	const char *ciphers; /* OpenSSL cipher list for TLS 1.2; unset = OpenSSL's default */
};

/* Result of one step of a handshake, read or write. */
enum tls_step {
	TLS_DONE,       /* the handshake finished (tls_handshake only) */
	TLS_WANT_READ,  /* retry once the socket is readable */
	TLS_WANT_WRITE, /* retry once the socket is writable */
	TLS_CLOSED,     /* the peer closed the connection */
	TLS_FAILED,     /* a protocol or socket error: close the connection */
};

/*
 * Parses an sslmode name.
 * s: "disable", "allow", "prefer", "require", "verify-ca" or "verify-full".
 * out: receives the mode when s is valid.
 * Returns false when s names no mode (out is unchanged).
 */
bool tls_mode_parse(const char *s, enum tls_mode *out);

/*
 * mode: a mode.
 * Returns its sslmode name, as tls_mode_parse() accepts it.
 */
const char *tls_mode_name(enum tls_mode mode);

/*
 * The oldest protocol server_tls_protocols / client_tls_protocols allows.
 * protocols: "TLSv1.2" or "TLSv1.3" (any case), "secure", NULL or "" (TLSv1.2).
 * Returns "TLSv1.2" or "TLSv1.3" (static, libpq's ssl_min_protocol_version names), or
 * NULL when protocols names neither.
 */
const char *tls_protocols_floor(const char *protocols);

/*
 * Makes the context that accepts clients: loads cert_file and key_file (both required,
 * and they must match), the minimum protocol and the ciphers. With ca_file, clients are
 * asked for a certificate (for cert authentication) and one they send must verify; in
 * VERIFY_CA and VERIFY_FULL a ca_file is required and so is a client certificate.
 * A client that offers ALPN without "postgresql" is refused; one that offers no ALPN is
 * accepted (tls_alpn_postgresql() tells the two apart). Session tickets and resumption
 * are off, so every handshake is a full one.
 * On reload, build a new context and swap it in: each SSL holds its own reference, so
 * SSL_CTX_free() of the old one is safe while its connections live on.
 * s: the settings; the strings are not kept.
 * err, errlen: receive why it failed.
 * Returns the context (free with SSL_CTX_free), or NULL on failure.
 */
SSL_CTX *tls_server_ctx_new(const struct tls_settings *s, char *err, size_t errlen);

/*
 * Makes the context that connects to servers: ALPN "postgresql", the minimum protocol
 * and the ciphers; in VERIFY_CA and VERIFY_FULL, ca_file is required and the server
 * certificate must chain to it; cert_file and key_file (both or neither) are sent when
 * the server asks for a certificate. Same reload rule as tls_server_ctx_new().
 * s: the settings; the strings are not kept.
 * err, errlen: receive why it failed.
 * Returns the context (free with SSL_CTX_free), or NULL on failure.
 */
SSL_CTX *tls_client_ctx_new(const struct tls_settings *s, char *err, size_t errlen);

/*
 * Makes the TLS state of one connection; no I/O happens until tls_handshake().
 * The socket must hold no byte past the last plaintext message: bytes already received
 * into the caller's buffer after an SSLRequest (or after the server's 'S') must make the
 * caller close the connection, never be handed on (CVE-2021-23214, CVE-2021-23222). For
 * direct TLS, detect the ClientHello with recv(MSG_PEEK) so that OpenSSL reads it whole.
 * ctx: a context from tls_server_ctx_new() or tls_client_ctx_new().
 * fd: the connected non-blocking socket; it stays the caller's to close.
 * is_server: true toward a client, false toward a server.
 * verify_host: client side only, NULL or the host name or IP address that the server
 *              certificate must name (VERIFY_FULL); it is also sent as SNI when it is a
 *              name. Giving it turns on verification even with a context that has none.
 * Returns the SSL (release with tls_free), or NULL when out of memory or verify_host is
 * not a usable name.
 */
SSL *tls_new(SSL_CTX *ctx, int fd, bool is_server, const char *verify_host);

/*
 * Sends close_notify when it can without blocking (never after a failure), then frees.
 * ssl: the connection's TLS state, or NULL.
 */
void tls_free(SSL *ssl);

/*
 * Advances the handshake as far as the socket allows.
 * ssl: from tls_new().
 * err, errlen: on TLS_FAILED or TLS_CLOSED, receive why: OpenSSL's reason, or
 *              "certificate verify failed: ..." with the verification result.
 * Returns TLS_DONE, TLS_WANT_READ or TLS_WANT_WRITE (call again when the socket is
 * ready), TLS_CLOSED (the peer hung up) or TLS_FAILED.
 */
enum tls_step tls_handshake(SSL *ssl, char *err, size_t errlen);

/*
 * Reads decrypted bytes, like recv(). A peer that closes the socket without
 * close_notify counts as a clean close: PostgreSQL messages carry their own lengths,
 * so a truncation cannot go unnoticed. Before waiting for the socket to become
 * readable, read until -1 with TLS_WANT_READ, or check tls_pending().
 * ssl: a connection whose handshake is done.
 * buf, len: where to put at most len (> 0) bytes.
 * why: receives TLS_CLOSED when 0 is returned; when -1 is returned, TLS_WANT_READ or
 *      TLS_WANT_WRITE (a read may need to write, and the other way round) or TLS_FAILED.
 * Returns the number of bytes read, 0 on close, or -1.
 */
ssize_t tls_read(SSL *ssl, void *buf, size_t len, enum tls_step *why);

/*
 * Encrypts and sends bytes, like send(): as many as the socket takes, so a short count
 * is normal. Retry rule: after a count short of len or -1 with TLS_WANT_*, OpenSSL may
 * hold up to one record of the bytes not reported sent, already encrypted. The next
 * tls_write() or tls_writev() must offer every byte not yet reported sent, from the
 * first one, and no fewer bytes than before (the bytes may have moved in memory, be cut
 * into other vectors, and have more appended). Dropping them would send stale data.
 * ssl: a connection whose handshake is done.
 * buf, len: the bytes; len 0 returns 0 at once.
 * why: set only when the count is short of len: TLS_WANT_WRITE or TLS_WANT_READ (retry
 *      when the socket is ready that way), TLS_CLOSED or TLS_FAILED (close).
 * Returns the number of bytes sent, or -1 when none could be.
 */
ssize_t tls_write(SSL *ssl, const void *buf, size_t len, enum tls_step *why);

/*
 * tls_write() of the vectors in order, as one stream. TLS records are cut at 16 kB
 * whatever the vectors; runs of small vectors are gathered into one record.
 * ssl: a connection whose handshake is done.
 * iov, n: the vectors.
 * why: as tls_write().
 * Returns the number of bytes sent (0 when every vector is empty), or -1 when none
 * could be.
 */
ssize_t tls_writev(SSL *ssl, const struct iovec *iov, int n, enum tls_step *why);

/*
 * ssl: a connection.
 * Returns true when tls_read() may return data although the socket is not readable:
 * decrypted bytes are buffered, or received bytes wait to be decrypted (then tls_read()
 * may still answer TLS_WANT_READ when they are not a whole record). A caller that stops
 * reading before TLS_WANT_READ (its buffer is full) must check this before waiting.
 */
bool tls_pending(SSL *ssl);

/*
 * The tls-server-end-point channel binding data (RFC 5929) for SCRAM-SHA-256-PLUS: the
 * hash of the server certificate with its signature's hash function, SHA-256 where that
 * is MD5 or SHA-1.
 * ssl: a connection whose handshake is done.
 * local_cert: true on the server side (our own certificate), false on the client side
 *             (the peer's).
 * out: receives the hash (up to TLS_END_POINT_MAX bytes).
 * len: receives its length.
 * Returns false when there is no certificate or its signature names no single hash
 * (e.g. Ed25519).
 */
bool tls_server_end_point(SSL *ssl, bool local_cert, uint8_t out[TLS_END_POINT_MAX],
			  size_t *len);

/*
 * The common name of the peer certificate, for cert authentication.
 * ssl: a connection whose handshake is done.
 * out, len: receive the NUL-terminated UTF-8 name.
 * Returns false when the peer sent no certificate, it was not verified against a CA,
 * it has no or several common names, the name holds a NUL, or it does not fit.
 */
bool tls_peer_common_name(SSL *ssl, char *out, size_t len);

/*
 * ssl: a connection whose handshake is done.
 * Returns true when ALPN selected "postgresql", which PostgreSQL 17 demands of direct
 * TLS connections (those that skip the SSLRequest).
 */
bool tls_alpn_postgresql(SSL *ssl);

/*
 * ssl: a connection.
 * Returns the protocol version, e.g. "TLSv1.3" (static string).
 */
const char *tls_version(SSL *ssl);

/*
 * ssl: a connection.
 * Returns the cipher suite name, e.g. "TLS_AES_256_GCM_SHA384", or "(NONE)" before the
 * handshake is done (static string).
 */
const char *tls_cipher(SSL *ssl);

#endif
