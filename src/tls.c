/*
 * tls.c - the OpenSSL layer (see tls.h).
 *
 * Owns the choices made once for every TLS connection: TLS 1.2 at least, no
 * compression, no renegotiation, no session resumption, ALPN "postgresql", writes of
 * one record per call and read-ahead (a burst of small records costs one read() rather
 * than two per record). Everything else translates OpenSSL's calling conventions (error
 * queue, SSL_get_error, retried writes) into the recv()/send()-like ones the connection
 * code uses. OpenSSL's error queue is per thread, so each call starts by emptying it.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"

/* ALPN protocol lists are length-prefixed names. */
static const unsigned char tls_alpn_list[] = "\x0a" TLS_ALPN_POSTGRESQL;
#define TLS_ALPN_NAME_LEN (sizeof(TLS_ALPN_POSTGRESQL) - 1)

/* Room for one OpenSSL reason string. */
#define TLS_REASON_MAX 256

/* Room for what failed, file names included (longer ones are cut). */
#define TLS_WHAT_MAX 1024

/* Plaintext bytes per SSL_write: one full TLS record (see tls_writev). */
#define TLS_WRITE_CHUNK SSL3_RT_MAX_PLAIN_LENGTH

static const char *const tls_mode_names[] = {
	[TLS_MODE_DISABLE] = "disable",	    [TLS_MODE_ALLOW] = "allow",
	[TLS_MODE_PREFER] = "prefer",	    [TLS_MODE_REQUIRE] = "require",
	[TLS_MODE_VERIFY_CA] = "verify-ca", [TLS_MODE_VERIFY_FULL] = "verify-full",
};

bool tls_mode_parse(const char *s, enum tls_mode *out)
{
	for (size_t i = 0; i < sizeof(tls_mode_names) / sizeof(tls_mode_names[0]); i++) {
		if (strcmp(s, tls_mode_names[i]) == 0) {
			*out = (enum tls_mode)i;
			return true;
		}
	}
	return false;
}

const char *tls_mode_name(enum tls_mode mode)
{
	if ((size_t)mode >= sizeof(tls_mode_names) / sizeof(tls_mode_names[0]))
		return "unknown";
	return tls_mode_names[mode];
}

static bool tls_is_set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static bool tls_verifies(enum tls_mode mode)
{
	return mode == TLS_MODE_VERIFY_CA || mode == TLS_MODE_VERIFY_FULL;
}

/*
 * Puts the reason of the oldest queued OpenSSL error (the cause; later ones only say
 * which call gave up) into buf, or fallback when the queue is empty, and empties it.
 */
static void tls_reason(char *buf, size_t len, const char *fallback)
{
	unsigned long code = ERR_get_error();
	const char *reason = code != 0 ? ERR_reason_error_string(code) : NULL;
	if (code == 0)
		snprintf(buf, len, "%s", fallback);
	else if (ERR_SYSTEM_ERROR(code))
		snprintf(buf, len, "%s", strerror(ERR_GET_REASON(code)));
	else if (reason != NULL)
		snprintf(buf, len, "%s", reason);
	else
		ERR_error_string_n(code, buf, len);
	ERR_clear_error();
}

/* Writes "what: reason" into err, the reason coming from OpenSSL's error queue. */
static void tls_ctx_error(char *err, size_t errlen, const char *what)
{
	char reason[TLS_REASON_MAX];
	tls_reason(reason, sizeof(reason), "unknown error");
	snprintf(err, errlen, "%s: %s", what, reason);
}

const char *tls_protocols_floor(const char *protocols)
{
	if (!tls_is_set(protocols) || strcasecmp(protocols, "secure") == 0 ||
	    strcasecmp(protocols, "TLSv1.2") == 0)
		return "TLSv1.2";
	if (strcasecmp(protocols, "TLSv1.3") == 0)
		return "TLSv1.3";
	return NULL;
}

static bool tls_min_version(const char *protocols, int *out)
{
	const char *floor = tls_protocols_floor(protocols);
	if (floor == NULL)
		return false;
	*out = strcmp(floor, "TLSv1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
	return true;
}

/* Settings shared by both sides: protocol floor, ciphers, options and modes. */
static bool tls_ctx_setup(SSL_CTX *ctx, const struct tls_settings *s, char *err, size_t errlen)
{
	int version;
	if (!tls_min_version(s->protocols, &version)) {
		snprintf(err, errlen, "invalid TLS protocols \"%s\" (expected TLSv1.2 or TLSv1.3)",
			 s->protocols);
		return false;
	}
	if (SSL_CTX_set_min_proto_version(ctx, version) != 1) {
		tls_ctx_error(err, errlen, "cannot set the minimum TLS version");
		return false;
	}
	if (tls_is_set(s->ciphers) && SSL_CTX_set_cipher_list(ctx, s->ciphers) != 1) {
		char what[TLS_WHAT_MAX];
		snprintf(what, sizeof(what), "invalid TLS cipher list \"%s\"", s->ciphers);
		tls_ctx_error(err, errlen, what);
		return false;
	}
	/*
	 * A peer that closes without close_notify is an ordinary disconnect: PostgreSQL
	 * messages are length-prefixed, so a cut message is noticed anyway.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 1);
	return true;
}

static bool tls_ctx_load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err,
			      size_t errlen)
{
	char what[TLS_WHAT_MAX];
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(what, sizeof(what), "cannot load certificate \"%s\"", cert);
		tls_ctx_error(err, errlen, what);
		return false;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(what, sizeof(what), "cannot use key \"%s\" with certificate \"%s\"", key,
			 cert);
		tls_ctx_error(err, errlen, what);
		return false;
	}
	return true;
}

static bool tls_ctx_load_ca(SSL_CTX *ctx, const char *ca, char *err, size_t errlen)
{
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		char what[TLS_WHAT_MAX];
		snprintf(what, sizeof(what), "cannot load CA file \"%s\"", ca);
		tls_ctx_error(err, errlen, what);
		return false;
	}
	return true;
}

/* Accepts a client's ALPN offer only when it names PostgreSQL. */
static int tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
			   const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	unsigned int i = 0;
	while (i < inlen) {
		unsigned int n = in[i];
		if (n > inlen - i - 1)
			break;
		if (n == TLS_ALPN_NAME_LEN && memcmp(in + i + 1, TLS_ALPN_POSTGRESQL, n) == 0) {
			*out = (const unsigned char *)TLS_ALPN_POSTGRESQL;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += n + 1;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

SSL_CTX *tls_server_ctx_new(const struct tls_settings *s, char *err, size_t errlen)
{
	if (!tls_is_set(s->cert_file) || !tls_is_set(s->key_file)) {
		snprintf(err, errlen, "TLS toward clients needs a certificate and a key file");
		return NULL;
	}
	if (tls_verifies(s->mode) && !tls_is_set(s->ca_file)) {
		snprintf(err, errlen, "TLS mode %s needs a CA file", tls_mode_name(s->mode));
		return NULL;
	}
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		tls_ctx_error(err, errlen, "cannot make a TLS context");
		return NULL;
	}
	if (!tls_ctx_setup(ctx, s, err, errlen) ||
	    !tls_ctx_load_pair(ctx, s->cert_file, s->key_file, err, errlen))
		goto fail;
	if (tls_is_set(s->ca_file)) {
		if (!tls_ctx_load_ca(ctx, s->ca_file, err, errlen))
			goto fail;
		/* Lists the acceptable issuers so that a client can pick its certificate. */
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(s->ca_file);
		if (names == NULL) {
			tls_ctx_error(err, errlen, "cannot read CA names");
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		int verify = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
		if (tls_verifies(s->mode))
			verify |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		SSL_CTX_set_verify(ctx, verify, NULL);
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* No resumption: every connection proves its certificate again. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	static const unsigned char sid_ctx[] = "pgsluice";
	if (SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
		tls_ctx_error(err, errlen, "cannot set the session id context");
		goto fail;
	}
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *tls_client_ctx_new(const struct tls_settings *s, char *err, size_t errlen)
{
	if (tls_is_set(s->cert_file) != tls_is_set(s->key_file)) {
		snprintf(err, errlen,
			 "a client certificate needs both a certificate and a key file");
		return NULL;
	}
	if (tls_verifies(s->mode) && !tls_is_set(s->ca_file)) {
		snprintf(err, errlen, "TLS mode %s needs a CA file", tls_mode_name(s->mode));
		return NULL;
	}
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		tls_ctx_error(err, errlen, "cannot make a TLS context");
		return NULL;
	}
	if (!tls_ctx_setup(ctx, s, err, errlen))
		goto fail;
	if (tls_is_set(s->cert_file) &&
	    !tls_ctx_load_pair(ctx, s->cert_file, s->key_file, err, errlen))
		goto fail;
	if (tls_is_set(s->ca_file) && !tls_ctx_load_ca(ctx, s->ca_file, err, errlen))
		goto fail;
	if (tls_verifies(s->mode))
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* Unlike most OpenSSL calls, this one returns 0 on success. */
	if (SSL_CTX_set_alpn_protos(ctx, tls_alpn_list, sizeof(tls_alpn_list) - 1) != 0) {
		tls_ctx_error(err, errlen, "cannot set ALPN");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Client side: the server certificate must name host (a DNS name or an IP address). */
static bool tls_set_verify_host(SSL *ssl, const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1)
			return false;
	} else {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(ssl, host) != 1 || SSL_set_tlsext_host_name(ssl, host) != 1)
			return false;
	}
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	return true;
}

SSL *tls_new(SSL_CTX *ctx, int fd, bool is_server, const char *verify_host)
{
	ERR_clear_error();
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL)
		goto fail;
	if (SSL_set_fd(ssl, fd) != 1)
		goto fail;
	if (is_server) {
		SSL_set_accept_state(ssl);
	} else {
		SSL_set_connect_state(ssl);
		if (tls_is_set(verify_host) && !tls_set_verify_host(ssl, verify_host))
			goto fail;
	}
	return ssl;
fail:
	SSL_free(ssl);
	ERR_clear_error();
	return NULL;
}

/*
 * After a failure or a close OpenSSL must not write again (not even close_notify);
 * quiet shutdown makes tls_free() skip it.
 */
static void tls_mark_dead(SSL *ssl)
{
	SSL_set_quiet_shutdown(ssl, 1);
}

void tls_free(SSL *ssl)
{
	if (ssl == NULL)
		return;
	if (!SSL_get_quiet_shutdown(ssl) && SSL_is_init_finished(ssl)) {
		ERR_clear_error();
		SSL_shutdown(ssl);
	}
	ERR_clear_error();
	SSL_free(ssl);
}

/*
 * Maps the outcome of a failed SSL call (ret is its return value). On TLS_CLOSED and
 * TLS_FAILED, reason (when not NULL) receives why and the connection is marked dead.
 */
static enum tls_step tls_outcome(SSL *ssl, int ret, char *reason, size_t len)
{
	int saved_errno = errno;
	int e = SSL_get_error(ssl, ret);
	char buf[TLS_REASON_MAX];
	enum tls_step step = TLS_FAILED;

	switch (e) {
	case SSL_ERROR_WANT_READ:
		return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		step = TLS_CLOSED;
		snprintf(buf, sizeof(buf), "connection closed by the peer");
		break;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() != 0) {
			tls_reason(buf, sizeof(buf), "");
		} else if (saved_errno == 0) {
			step = TLS_CLOSED;
			snprintf(buf, sizeof(buf), "connection closed by the peer");
		} else {
			snprintf(buf, sizeof(buf), "%s", strerror(saved_errno));
		}
		break;
	case SSL_ERROR_SSL: {
		unsigned long code = ERR_peek_error();
		long verify = SSL_get_verify_result(ssl);
		if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
		    ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED && verify != X509_V_OK)
			snprintf(buf, sizeof(buf), "certificate verify failed: %s",
				 X509_verify_cert_error_string(verify));
		else
			tls_reason(buf, sizeof(buf), "TLS protocol error");
		break;
	}
	default:
		tls_reason(buf, sizeof(buf), "unexpected OpenSSL error");
		break;
	}
	ERR_clear_error();
	tls_mark_dead(ssl);
	if (reason != NULL)
		snprintf(reason, len, "%s", buf);
	return step;
}

enum tls_step tls_handshake(SSL *ssl, char *err, size_t errlen)
{
	ERR_clear_error();
	errno = 0;
	int ret = SSL_do_handshake(ssl);
	if (ret == 1)
		return TLS_DONE;
	return tls_outcome(ssl, ret, err, errlen);
}

ssize_t tls_read(SSL *ssl, void *buf, size_t len, enum tls_step *why)
{
	size_t n = 0;
	ERR_clear_error();
	errno = 0;
	int ret = SSL_read_ex(ssl, buf, len > SSIZE_MAX ? SSIZE_MAX : len, &n);
	if (ret == 1)
		return (ssize_t)n;
	char reason[TLS_REASON_MAX];
	*why = tls_outcome(ssl, ret, reason, sizeof(reason));
	if (*why == TLS_CLOSED)
		return 0;
	if (*why == TLS_FAILED)
		log_debug("TLS read failed: %s", reason);
	return -1;
}

/*
 * Each SSL_write gets exactly min(TLS_WRITE_CHUNK, bytes offered) bytes, from the
 * caller's memory when they are contiguous there and gathered into a stack buffer
 * otherwise. A write that blocks leaves at most one record (<= TLS_WRITE_CHUNK bytes)
 * encrypted inside OpenSSL, which the retry must offer again in at least that length;
 * a caller that offers every unsent byte again always does, however the vectors are
 * cut. Calls of one record also keep OpenSSL off its multi-record write path, whose
 * pending data could be larger.
 */
ssize_t tls_writev(SSL *ssl, const struct iovec *iov, int n, enum tls_step *why)
{
	unsigned char stage[TLS_WRITE_CHUNK];
	ssize_t total = 0;
	int i = 0;
	size_t off = 0; /* bytes of iov[i] already sent */

	for (;;) {
		while (i < n && off == iov[i].iov_len) {
			i++;
			off = 0;
		}
		if (i == n || total > SSIZE_MAX - TLS_WRITE_CHUNK)
			return total;
		const unsigned char *p = (const unsigned char *)iov[i].iov_base + off;
		size_t len = iov[i].iov_len - off;
		if (len > TLS_WRITE_CHUNK) {
			len = TLS_WRITE_CHUNK;
		} else if (i + 1 < n) {
			len = 0;
			for (int j = i; j < n && len < TLS_WRITE_CHUNK; j++) {
				const unsigned char *from = (const unsigned char *)iov[j].iov_base;
				size_t take = iov[j].iov_len;
				if (j == i) {
					from += off;
					take -= off;
				}
				if (take > TLS_WRITE_CHUNK - len)
					take = TLS_WRITE_CHUNK - len;
				if (take > 0)
					memcpy(stage + len, from, take);
				len += take;
			}
			p = stage;
		}

		size_t sent = 0;
		ERR_clear_error();
		errno = 0;
		int ret = SSL_write_ex(ssl, p, len, &sent);
		if (ret != 1) {
			char reason[TLS_REASON_MAX];
			*why = tls_outcome(ssl, ret, reason, sizeof(reason));
			if (*why == TLS_FAILED)
				log_debug("TLS write failed: %s", reason);
			return total > 0 ? total : -1;
		}
		total += (ssize_t)sent;
		/* Moves the position past the bytes sent, across vectors. */
		while (sent > 0) {
			size_t step = iov[i].iov_len - off;
			if (step > sent)
				step = sent;
			off += step;
			sent -= step;
			if (off == iov[i].iov_len && sent > 0) {
				i++;
				off = 0;
			}
		}
	}
}

ssize_t tls_write(SSL *ssl, const void *buf, size_t len, enum tls_step *why)
{
	struct iovec iov = {(void *)buf, len};
	return tls_writev(ssl, &iov, 1, why);
}

bool tls_pending(SSL *ssl)
{
	return SSL_pending(ssl) > 0 || SSL_has_pending(ssl) == 1;
}

bool tls_server_end_point(SSL *ssl, bool local_cert, uint8_t out[TLS_END_POINT_MAX],
			  size_t *len)
{
	X509 *cert = local_cert ? SSL_get_certificate(ssl) : SSL_get0_peer_certificate(ssl);
	int md_nid;
	unsigned int n = 0;
	bool ok = false;

	if (cert == NULL || X509_get_signature_info(cert, &md_nid, NULL, NULL, NULL) != 1)
		goto out;
	/* RFC 5929 section 4.1: weak hashes are replaced, never used. */
	if (md_nid == NID_md5 || md_nid == NID_sha1)
		md_nid = NID_sha256;
	const EVP_MD *md = EVP_get_digestbynid(md_nid);
	if (md == NULL || EVP_MD_get_size(md) <= 0 || EVP_MD_get_size(md) > TLS_END_POINT_MAX)
		goto out;
	if (X509_digest(cert, md, out, &n) != 1)
		goto out;
	*len = n;
	ok = true;
out:
	ERR_clear_error();
	return ok;
}

bool tls_peer_common_name(SSL *ssl, char *out, size_t len)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	if (cert == NULL || (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) == 0 ||
	    SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	X509_NAME *name = X509_get_subject_name(cert);
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	/* Two common names leave it ambiguous which one authenticates. */
	if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
		return false;
	unsigned char *utf8 = NULL;
	int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	bool ok = n >= 0 && (size_t)n < len && memchr(utf8, '\0', (size_t)n) == NULL;
	if (ok) {
		memcpy(out, utf8, (size_t)n);
		out[n] = '\0';
	}
	OPENSSL_free(utf8);
	ERR_clear_error();
	return ok;
}

bool tls_alpn_postgresql(SSL *ssl)
{
	const unsigned char *p = NULL;
	unsigned int n = 0;
	SSL_get0_alpn_selected(ssl, &p, &n);
	return n == TLS_ALPN_NAME_LEN && memcmp(p, TLS_ALPN_POSTGRESQL, n) == 0;
}

const char *tls_version(SSL *ssl)
{
	return SSL_get_version(ssl);
}

const char *tls_cipher(SSL *ssl)
{
	return SSL_get_cipher_name(ssl);
}
