/*
 * test_tls.c - the OpenSSL layer (tls.c) and scripts/mkcerts: real handshakes between a
 * server and a client SSL on the two ends of a non-blocking socketpair, both stepped in
 * one thread until neither can progress. Covers verification (host names, IP addresses,
 * CAs, client certificates), ALPN, protocol floors, bulk data with partial writes both
 * ways at once, channel binding data and bad input.
 */
#include <check.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "suites.h"
#include "tls.h"

#define PATH_LEN 256
#define ERR_LEN 256
/* Steps after which a handshake that has not ended counts as stuck. */
#define MAX_STEPS 200
#define BULK_LEN (1024 * 1024)
#define UNKNOWN_ISSUER "certificate verify failed: unable to get local issuer certificate"

static char certdir[64];

/* Files written by scripts/mkcerts, and a second CA that signed nothing of ours. */
static struct {
	char ca[PATH_LEN], server_crt[PATH_LEN], server_key[PATH_LEN];
	char client_crt[PATH_LEN], client_key[PATH_LEN], other_ca[PATH_LEN];
	char other_client_crt[PATH_LEN], other_client_key[PATH_LEN];
} files;

static void mkcerts(const char *dir)
{
	const char *src = getenv("PGSLUICE_SRCDIR");
	char cmd[3 * PATH_LEN];
	if (src == NULL)
		src = ".";
	ck_assert_msg(strchr(src, '\'') == NULL, "PGSLUICE_SRCDIR holds a quote");
	snprintf(cmd, sizeof(cmd), "'%s/scripts/mkcerts' '%s'", src, dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void certs_setup(void)
{
	char other[sizeof(certdir) + 8];
	/* A socket write after the peer is gone must fail with EPIPE, as in the daemon. */
	signal(SIGPIPE, SIG_IGN);
	strcpy(certdir, "/tmp/tls-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(certdir));
	mkcerts(certdir);
	/* A second run finds every file and keeps them. */
	mkcerts(certdir);
	snprintf(other, sizeof(other), "%s/other", certdir);
	mkcerts(other);
	snprintf(files.ca, PATH_LEN, "%s/ca.crt", certdir);
	snprintf(files.server_crt, PATH_LEN, "%s/server.crt", certdir);
	snprintf(files.server_key, PATH_LEN, "%s/server.key", certdir);
	snprintf(files.client_crt, PATH_LEN, "%s/client.crt", certdir);
	snprintf(files.client_key, PATH_LEN, "%s/client.key", certdir);
	snprintf(files.other_ca, PATH_LEN, "%s/ca.crt", other);
	snprintf(files.other_client_crt, PATH_LEN, "%s/client.crt", other);
	snprintf(files.other_client_key, PATH_LEN, "%s/client.key", other);
}

static void certs_teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certdir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct tls_settings server_settings(enum tls_mode mode, const char *ca)
{
	return (struct tls_settings){.mode = mode,
				     .cert_file = files.server_crt,
				     .key_file = files.server_key,
				     .ca_file = ca};
}

static struct tls_settings client_settings(enum tls_mode mode, const char *ca, bool with_cert)
{
	return (struct tls_settings){.mode = mode,
				     .cert_file = with_cert ? files.client_crt : NULL,
				     .key_file = with_cert ? files.client_key : NULL,
				     .ca_file = ca};
}

/* Both ends of one connection. */
struct pair {
	int fd[2]; /* [0] server, [1] client */
	SSL_CTX *sctx, *cctx;
	SSL *s, *c;
	enum tls_step ss, cs;
	char serr[ERR_LEN], cerr[ERR_LEN];
};

static SSL_CTX *server_ctx(const struct tls_settings *st)
{
	char err[ERR_LEN] = "";
	SSL_CTX *ctx = tls_server_ctx_new(st, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "server ctx: %s", err);
	return ctx;
}

static SSL_CTX *client_ctx(const struct tls_settings *st)
{
	char err[ERR_LEN] = "";
	SSL_CTX *ctx = tls_client_ctx_new(st, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "client ctx: %s", err);
	return ctx;
}

/* Takes ownership of both contexts. */
static void pair_open(struct pair *p, SSL_CTX *sctx, SSL_CTX *cctx, const char *verify_host)
{
	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(fcntl(p->fd[i], F_SETFL, O_NONBLOCK), 0);
	p->sctx = sctx;
	p->cctx = cctx;
	p->s = tls_new(sctx, p->fd[0], true, NULL);
	p->c = tls_new(cctx, p->fd[1], false, verify_host);
	ck_assert_ptr_nonnull(p->s);
	ck_assert_ptr_nonnull(p->c);
	p->ss = TLS_WANT_READ;
	p->cs = TLS_WANT_WRITE;
}

static void pair_close(struct pair *p)
{
	tls_free(p->s);
	tls_free(p->c);
	close(p->fd[0]);
	close(p->fd[1]);
	SSL_CTX_free(p->sctx);
	SSL_CTX_free(p->cctx);
}

static bool live(enum tls_step st)
{
	return st == TLS_WANT_READ || st == TLS_WANT_WRITE;
}

/* Steps both handshakes until each has ended or neither can go on. */
static void pair_handshake(struct pair *p)
{
	for (int i = 0; i < MAX_STEPS && (live(p->ss) || live(p->cs)); i++) {
		if (live(p->cs))
			p->cs = tls_handshake(p->c, p->cerr, sizeof(p->cerr));
		if (live(p->ss))
			p->ss = tls_handshake(p->s, p->serr, sizeof(p->serr));
	}
}

static void assert_handshake_ok(struct pair *p)
{
	pair_handshake(p);
	ck_assert_msg(p->cs == TLS_DONE, "client: %d %s", p->cs, p->cerr);
	ck_assert_msg(p->ss == TLS_DONE, "server: %d %s", p->ss, p->serr);
}

/* Sends a short message from one SSL and reads it whole on the other. */
static void assert_message_passes(SSL *from, SSL *to, const char *msg)
{
	enum tls_step why;
	char buf[128];
	size_t len = strlen(msg), got = 0;
	ck_assert_int_eq(tls_write(from, msg, len, &why), (ssize_t)len);
	for (int i = 0; i < MAX_STEPS && got < len; i++) {
		ssize_t n = tls_read(to, buf + got, sizeof(buf) - got, &why);
		if (n < 0)
			ck_assert_int_eq(why, TLS_WANT_READ);
		else
			got += (size_t)n;
	}
	ck_assert_uint_eq(got, len);
	ck_assert(memcmp(buf, msg, len) == 0);
}

START_TEST(mode_names_round_trip)
{
	enum tls_mode m;
	for (int i = TLS_MODE_DISABLE; i <= TLS_MODE_VERIFY_FULL; i++) {
		ck_assert(tls_mode_parse(tls_mode_name((enum tls_mode)i), &m));
		ck_assert_int_eq(m, i);
	}
	ck_assert(tls_mode_parse("verify-full", &m));
	ck_assert_int_eq(m, TLS_MODE_VERIFY_FULL);
	m = TLS_MODE_ALLOW;
	ck_assert(!tls_mode_parse("VERIFY-FULL", &m));
	ck_assert(!tls_mode_parse("", &m));
	ck_assert(!tls_mode_parse("verify", &m));
	ck_assert_int_eq(m, TLS_MODE_ALLOW);
}
END_TEST

START_TEST(verify_full_accepts_localhost)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_VERIFY_FULL, files.ca, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), "localhost");
	assert_handshake_ok(&p);
	ck_assert_str_eq(tls_version(p.c), "TLSv1.3");
	ck_assert_str_eq(tls_version(p.s), "TLSv1.3");
	ck_assert_str_eq(tls_cipher(p.c), tls_cipher(p.s));
	ck_assert_str_ne(tls_cipher(p.c), "(NONE)");
	ck_assert(tls_alpn_postgresql(p.c));
	ck_assert(tls_alpn_postgresql(p.s));
	char cn[64];
	ck_assert(tls_peer_common_name(p.c, cn, sizeof(cn)));
	ck_assert_str_eq(cn, "localhost");
	/* The server asked for no client certificate. */
	ck_assert(!tls_peer_common_name(p.s, cn, sizeof(cn)));
	assert_message_passes(p.c, p.s, "hello server");
	assert_message_passes(p.s, p.c, "hello client");
	pair_close(&p);
}
END_TEST

START_TEST(verify_full_accepts_ip_address)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_VERIFY_FULL, files.ca, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), "127.0.0.1");
	assert_handshake_ok(&p);
	pair_close(&p);
}
END_TEST

START_TEST(verify_full_rejects_wrong_host_name)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_VERIFY_FULL, files.ca, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), "db.example.com");
	pair_handshake(&p);
	ck_assert_int_eq(p.cs, TLS_FAILED);
	ck_assert_str_eq(p.cerr, "certificate verify failed: hostname mismatch");
	/* The client's alert ends the server's handshake too. */
	ck_assert_msg(p.ss == TLS_FAILED, "server: %d %s", p.ss, p.serr);
	pair_close(&p);
}
END_TEST

START_TEST(verify_full_rejects_wrong_ip_address)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_VERIFY_FULL, files.ca, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), "127.0.0.2");
	pair_handshake(&p);
	ck_assert_int_eq(p.cs, TLS_FAILED);
	ck_assert_str_eq(p.cerr, "certificate verify failed: IP address mismatch");
	pair_close(&p);
}
END_TEST

/* A verify_host forces verification even where the context would not verify. */
START_TEST(verify_host_without_ca_fails_closed)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_REQUIRE, NULL, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), "localhost");
	pair_handshake(&p);
	ck_assert_int_eq(p.cs, TLS_FAILED);
	ck_assert_msg(strncmp(p.cerr, "certificate verify failed: ", 27) == 0, "%s", p.cerr);
	pair_close(&p);
}
END_TEST

START_TEST(verify_ca_ignores_host_name)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_VERIFY_CA, files.ca, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), NULL);
	assert_handshake_ok(&p);
	pair_close(&p);
}
END_TEST

START_TEST(verify_ca_rejects_other_ca)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_VERIFY_CA, files.other_ca, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), NULL);
	pair_handshake(&p);
	ck_assert_int_eq(p.cs, TLS_FAILED);
	ck_assert_str_eq(p.cerr, UNKNOWN_ISSUER);
	pair_close(&p);
}
END_TEST

START_TEST(require_without_ca_connects_unverified)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_REQUIRE, NULL, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), NULL);
	assert_handshake_ok(&p);
	char cn[64];
	/* The server certificate was not checked, so its name proves nothing. */
	ck_assert(!tls_peer_common_name(p.c, cn, sizeof(cn)));
	assert_message_passes(p.c, p.s, "unverified but encrypted");
	pair_close(&p);
}
END_TEST

START_TEST(missing_required_client_cert_fails)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_VERIFY_CA, files.ca);
	struct tls_settings cs = client_settings(TLS_MODE_VERIFY_FULL, files.ca, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), "localhost");
	pair_handshake(&p);
	ck_assert_int_eq(p.ss, TLS_FAILED);
	ck_assert_str_eq(p.serr, "peer did not return a certificate");
	/*
	 * In TLS 1.3 the client finishes before the server has judged its certificate;
	 * it learns of the refusal from the alert on its first read.
	 */
	if (p.cs == TLS_DONE) {
		enum tls_step why = TLS_DONE;
		char buf[16];
		ck_assert_int_eq(tls_read(p.c, buf, sizeof(buf), &why), -1);
		ck_assert_int_eq(why, TLS_FAILED);
	} else {
		ck_assert_int_eq(p.cs, TLS_FAILED);
	}
	pair_close(&p);
}
END_TEST

START_TEST(client_cert_gives_common_name)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_VERIFY_FULL, files.ca);
	struct tls_settings cs = client_settings(TLS_MODE_VERIFY_FULL, files.ca, true);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), "localhost");
	assert_handshake_ok(&p);
	char cn[64];
	ck_assert(tls_peer_common_name(p.s, cn, sizeof(cn)));
	ck_assert_str_eq(cn, "app");
	/* "app" and its NUL need 4 bytes. */
	ck_assert(!tls_peer_common_name(p.s, cn, 3));
	ck_assert(tls_peer_common_name(p.s, cn, 4));
	pair_close(&p);
}
END_TEST

START_TEST(client_cert_from_other_ca_fails)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, files.ca);
	struct tls_settings cs = client_settings(TLS_MODE_REQUIRE, NULL, true);
	cs.cert_file = files.other_client_crt;
	cs.key_file = files.other_client_key;
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), NULL);
	pair_handshake(&p);
	ck_assert_int_eq(p.ss, TLS_FAILED);
	ck_assert_str_eq(p.serr, UNKNOWN_ISSUER);
	pair_close(&p);
}
END_TEST

/* With a CA but no verify mode a certificate is asked for, not demanded. */
START_TEST(optional_client_cert)
{
	struct pair p;
	char cn[64];
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, files.ca);
	struct tls_settings without = client_settings(TLS_MODE_REQUIRE, NULL, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&without), NULL);
	assert_handshake_ok(&p);
	ck_assert(!tls_peer_common_name(p.s, cn, sizeof(cn)));
	pair_close(&p);

	struct tls_settings with = client_settings(TLS_MODE_REQUIRE, NULL, true);
	pair_open(&p, server_ctx(&ss), client_ctx(&with), NULL);
	assert_handshake_ok(&p);
	ck_assert(tls_peer_common_name(p.s, cn, sizeof(cn)));
	ck_assert_str_eq(cn, "app");
	pair_close(&p);
}
END_TEST

static void fill_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
}

/* One direction of the bulk transfer. */
struct flow {
	const uint8_t *src;
	uint8_t *dst;
	size_t sent, received;
	int would_block; /* writes that stopped on a full socket */
	int calls;
};

/* Sends what the socket takes, through three vectors of varying sizes when vectored. */
static void flow_send(SSL *ssl, struct flow *f, bool vectored)
{
	enum tls_step why = TLS_DONE;
	size_t rest = BULK_LEN - f->sent;
	ssize_t n;
	if (rest == 0)
		return;
	f->calls++;
	if (vectored) {
		/* The cuts move on every call, so retries see the same bytes cut differently. */
		size_t cut = 1 + (size_t)f->calls * 7919 % 30000;
		size_t a = rest < cut ? rest : cut;
		size_t b = rest - a < 3 * cut ? rest - a : 3 * cut;
		struct iovec iov[3] = {
			{(void *)(f->src + f->sent), a},
			{(void *)(f->src + f->sent + a), b},
			{(void *)(f->src + f->sent + a + b), rest - a - b},
		};
		n = tls_writev(ssl, iov, 3, &why);
	} else {
		n = tls_write(ssl, f->src + f->sent, rest, &why);
	}
	if (n < 0 || (size_t)n < rest) {
		ck_assert_msg(live(why), "write: %d", why);
		f->would_block++;
	}
	if (n > 0)
		f->sent += (size_t)n;
}

/* Reads until the socket is drained, in odd-sized pieces. */
static void flow_receive(SSL *ssl, struct flow *f)
{
	enum tls_step why = TLS_DONE;
	while (f->received < BULK_LEN) {
		size_t room = BULK_LEN - f->received;
		ssize_t n = tls_read(ssl, f->dst + f->received, room < 7777 ? room : 7777, &why);
		if (n < 0) {
			ck_assert_msg(live(why), "read: %d", why);
			return;
		}
		ck_assert_int_gt(n, 0);
		f->received += (size_t)n;
	}
}

START_TEST(megabyte_both_ways_through_partial_writes)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_VERIFY_FULL, files.ca, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), "localhost");
	assert_handshake_ok(&p);

	uint8_t *buf = malloc(4 * (size_t)BULK_LEN);
	ck_assert_ptr_nonnull(buf);
	fill_pattern(buf, BULK_LEN, 1);
	fill_pattern(buf + BULK_LEN, BULK_LEN, 2);
	struct flow up = {.src = buf, .dst = buf + 2 * BULK_LEN};
	struct flow down = {.src = buf + BULK_LEN, .dst = buf + 3 * BULK_LEN};
	for (int i = 0; i < 100000 && (up.received < BULK_LEN || down.received < BULK_LEN); i++) {
		flow_send(p.c, &up, true);
		flow_send(p.s, &down, false);
		flow_receive(p.s, &up);
		flow_receive(p.c, &down);
	}
	ck_assert_uint_eq(up.received, BULK_LEN);
	ck_assert_uint_eq(down.received, BULK_LEN);
	ck_assert(memcmp(up.src, up.dst, BULK_LEN) == 0);
	ck_assert(memcmp(down.src, down.dst, BULK_LEN) == 0);
	/* The socket buffer is far smaller than 1 MB: both sides must have hit a full one. */
	ck_assert_int_gt(up.would_block, 0);
	ck_assert_int_gt(down.would_block, 0);
	ck_assert(!tls_pending(p.s));
	ck_assert(!tls_pending(p.c));
	free(buf);
	pair_close(&p);
}
END_TEST

START_TEST(pending_reports_buffered_records)
{
	struct pair p;
	enum tls_step why;
	char buf[8];
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_REQUIRE, NULL, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), NULL);
	assert_handshake_ok(&p);
	/* Three records; read-ahead pulls all of them in with the first read. */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tls_write(p.s, "abcdefgh", 8, &why), 8);
	ck_assert(!tls_pending(p.c));
	ck_assert_int_eq(tls_read(p.c, buf, 4, &why), 4);
	size_t got = 4;
	while (tls_pending(p.c)) {
		ssize_t n = tls_read(p.c, buf, sizeof(buf), &why);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	ck_assert_uint_eq(got, 24);
	ck_assert_int_eq(tls_read(p.c, buf, sizeof(buf), &why), -1);
	ck_assert_int_eq(why, TLS_WANT_READ);
	pair_close(&p);
}
END_TEST

START_TEST(empty_writes_send_nothing)
{
	struct pair p;
	enum tls_step why = TLS_DONE;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_REQUIRE, NULL, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), NULL);
	assert_handshake_ok(&p);
	struct iovec iov[2] = {{NULL, 0}, {NULL, 0}};
	ck_assert_int_eq(tls_write(p.c, "", 0, &why), 0);
	ck_assert_int_eq(tls_writev(p.c, iov, 2, &why), 0);
	assert_message_passes(p.c, p.s, "x");
	pair_close(&p);
}
END_TEST

/* SHA-256 of the DER of the PEM certificate at path, computed without tls.c. */
static void cert_sha256(const char *path, uint8_t out[32])
{
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_ptr_nonnull(x);
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);
	ck_assert_int_gt(len, 0);
	unsigned int n = 0;
	ck_assert(EVP_Digest(der, (size_t)len, out, &n, EVP_sha256(), NULL) == 1);
	ck_assert_uint_eq(n, 32);
	OPENSSL_free(der);
	X509_free(x);
}

START_TEST(server_end_point_matches_on_both_sides)
{
	struct pair p;
	uint8_t s_hash[TLS_END_POINT_MAX], c_hash[TLS_END_POINT_MAX], want[32];
	size_t s_len = 0, c_len = 0;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_VERIFY_FULL, files.ca, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), "localhost");
	assert_handshake_ok(&p);
	ck_assert(tls_server_end_point(p.s, true, s_hash, &s_len));
	ck_assert(tls_server_end_point(p.c, false, c_hash, &c_len));
	ck_assert_uint_eq(s_len, 32);
	ck_assert_uint_eq(c_len, 32);
	ck_assert(memcmp(s_hash, c_hash, 32) == 0);
	cert_sha256(files.server_crt, want);
	ck_assert(memcmp(s_hash, want, 32) == 0);
	/* The server sees no client certificate, the client has none of its own. */
	ck_assert(!tls_server_end_point(p.s, false, s_hash, &s_len));
	ck_assert(!tls_server_end_point(p.c, true, c_hash, &c_len));
	pair_close(&p);
}
END_TEST

START_TEST(garbage_instead_of_client_hello_fails)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_REQUIRE, NULL, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), NULL);
	static const char junk[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	ck_assert_int_eq(write(p.fd[1], junk, sizeof(junk) - 1), (ssize_t)(sizeof(junk) - 1));
	p.ss = tls_handshake(p.s, p.serr, sizeof(p.serr));
	ck_assert_int_eq(p.ss, TLS_FAILED);
	ck_assert_msg(p.serr[0] != '\0', "no reason given");
	pair_close(&p);
}
END_TEST

START_TEST(hang_up_during_handshake_is_closed)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_REQUIRE, NULL, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), NULL);
	ck_assert_int_eq(tls_handshake(p.s, p.serr, sizeof(p.serr)), TLS_WANT_READ);
	ck_assert_int_eq(shutdown(p.fd[1], SHUT_WR), 0);
	ck_assert_int_eq(tls_handshake(p.s, p.serr, sizeof(p.serr)), TLS_CLOSED);
	ck_assert_str_eq(p.serr, "connection closed by the peer");
	pair_close(&p);
}
END_TEST

START_TEST(close_is_seen_as_end_of_stream)
{
	struct pair p;
	enum tls_step why = TLS_DONE;
	char buf[8];
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_REQUIRE, NULL, false);
	/* close_notify first. */
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), NULL);
	assert_handshake_ok(&p);
	tls_free(p.c);
	p.c = NULL;
	ck_assert_int_eq(tls_read(p.s, buf, sizeof(buf), &why), 0);
	ck_assert_int_eq(why, TLS_CLOSED);
	pair_close(&p);
	/* Then a bare hang-up, as a killed client does. */
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), NULL);
	assert_handshake_ok(&p);
	ck_assert_int_eq(shutdown(p.fd[1], SHUT_WR), 0);
	why = TLS_DONE;
	ck_assert_int_eq(tls_read(p.s, buf, sizeof(buf), &why), 0);
	ck_assert_int_eq(why, TLS_CLOSED);
	pair_close(&p);
}
END_TEST

START_TEST(min_tls13_refuses_tls12_client)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	ss.protocols = "TLSv1.3";
	struct tls_settings cs = client_settings(TLS_MODE_REQUIRE, NULL, false);
	SSL_CTX *cctx = client_ctx(&cs);
	ck_assert(SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION) == 1);
	pair_open(&p, server_ctx(&ss), cctx, NULL);
	pair_handshake(&p);
	ck_assert_int_eq(p.ss, TLS_FAILED);
	ck_assert_str_eq(p.serr, "unsupported protocol");
	ck_assert_int_eq(p.cs, TLS_FAILED);
	pair_close(&p);
}
END_TEST

/* TLS 1.2 still works where allowed, ciphers apply, and so does channel binding. */
START_TEST(tls12_with_cipher_list)
{
	struct pair p;
	uint8_t hash[TLS_END_POINT_MAX];
	size_t len = 0;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	ss.protocols = "tlsv1.2";
	ss.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
	struct tls_settings cs = client_settings(TLS_MODE_VERIFY_FULL, files.ca, false);
	cs.protocols = "secure";
	SSL_CTX *cctx = client_ctx(&cs);
	ck_assert(SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION) == 1);
	pair_open(&p, server_ctx(&ss), cctx, "localhost");
	assert_handshake_ok(&p);
	ck_assert_str_eq(tls_version(p.s), "TLSv1.2");
	ck_assert_str_eq(tls_cipher(p.s), "ECDHE-ECDSA-AES128-GCM-SHA256");
	ck_assert(tls_server_end_point(p.c, false, hash, &len));
	ck_assert_uint_eq(len, 32);
	ck_assert(tls_alpn_postgresql(p.s));
	assert_message_passes(p.s, p.c, "tls 1.2");
	pair_close(&p);
}
END_TEST

START_TEST(alpn_without_postgresql_is_refused)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_REQUIRE, NULL, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), NULL);
	static const unsigned char http[] = "\x08http/1.1\x02h2";
	ck_assert_int_eq(SSL_set_alpn_protos(p.c, http, sizeof(http) - 1), 0);
	pair_handshake(&p);
	ck_assert_int_eq(p.ss, TLS_FAILED);
	ck_assert_str_eq(p.serr, "no application protocol");
	ck_assert_int_eq(p.cs, TLS_FAILED);
	pair_close(&p);
}
END_TEST

START_TEST(no_alpn_is_accepted_and_reported)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_REQUIRE, NULL, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), NULL);
	ck_assert_int_eq(SSL_set_alpn_protos(p.c, NULL, 0), 0);
	assert_handshake_ok(&p);
	ck_assert(!tls_alpn_postgresql(p.s));
	pair_close(&p);
}
END_TEST

/* A reload frees the old context while its connections go on. */
START_TEST(connection_outlives_freed_context)
{
	struct pair p;
	struct tls_settings ss = server_settings(TLS_MODE_REQUIRE, NULL);
	struct tls_settings cs = client_settings(TLS_MODE_REQUIRE, NULL, false);
	pair_open(&p, server_ctx(&ss), client_ctx(&cs), NULL);
	assert_handshake_ok(&p);
	SSL_CTX_free(p.sctx);
	SSL_CTX_free(p.cctx);
	p.sctx = NULL;
	p.cctx = NULL;
	assert_message_passes(p.c, p.s, "still here");
	assert_message_passes(p.s, p.c, "me too");
	pair_close(&p);
}
END_TEST

static void assert_server_ctx_fails(const struct tls_settings *s, const char *want)
{
	char err[ERR_LEN] = "";
	SSL_CTX *ctx = tls_server_ctx_new(s, err, sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_msg(strstr(err, want) != NULL, "\"%s\" lacks \"%s\"", err, want);
}

static void assert_client_ctx_fails(const struct tls_settings *s, const char *want)
{
	char err[ERR_LEN] = "";
	SSL_CTX *ctx = tls_client_ctx_new(s, err, sizeof(err));
	ck_assert_ptr_null(ctx);
	ck_assert_msg(strstr(err, want) != NULL, "\"%s\" lacks \"%s\"", err, want);
}

START_TEST(bad_settings_give_no_context)
{
	struct tls_settings s = server_settings(TLS_MODE_REQUIRE, NULL);
	s.key_file = files.client_key;
	assert_server_ctx_fails(&s, "key values mismatch");
	s = server_settings(TLS_MODE_REQUIRE, NULL);
	s.cert_file = "/nonexistent/server.crt";
	assert_server_ctx_fails(&s, "\"/nonexistent/server.crt\": No such file or directory");
	s = server_settings(TLS_MODE_REQUIRE, NULL);
	s.key_file = NULL;
	assert_server_ctx_fails(&s, "needs a certificate and a key file");
	s = server_settings(TLS_MODE_VERIFY_CA, NULL);
	assert_server_ctx_fails(&s, "verify-ca needs a CA file");
	s = server_settings(TLS_MODE_REQUIRE, "/nonexistent/ca.crt");
	assert_server_ctx_fails(&s, "cannot load CA file");
	s = server_settings(TLS_MODE_REQUIRE, NULL);
	s.protocols = "SSLv3";
	assert_server_ctx_fails(&s, "invalid TLS protocols \"SSLv3\"");
	s = server_settings(TLS_MODE_REQUIRE, NULL);
	s.ciphers = "NO-SUCH-CIPHER";
	assert_server_ctx_fails(&s, "invalid TLS cipher list");

	struct tls_settings c = client_settings(TLS_MODE_VERIFY_FULL, NULL, false);
	assert_client_ctx_fails(&c, "verify-full needs a CA file");
	c = client_settings(TLS_MODE_REQUIRE, NULL, true);
	c.key_file = NULL;
	assert_client_ctx_fails(&c, "both a certificate and a key file");
	c = client_settings(TLS_MODE_REQUIRE, NULL, true);
	c.key_file = files.server_key;
	assert_client_ctx_fails(&c, "key values mismatch");
}
END_TEST

START_TEST(mkcerts_keys_are_private)
{
	const char *names[] = {"ca.key", "server.key", "client.key"};
	for (size_t i = 0; i < 3; i++) {
		char path[PATH_LEN];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", certdir, names[i]);
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_int_eq(st.st_mode & 0777, 0600);
	}
}
END_TEST

Suite *tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("handshakes");
	tcase_add_unchecked_fixture(tc, certs_setup, certs_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, mode_names_round_trip);
	tcase_add_test(tc, verify_full_accepts_localhost);
	tcase_add_test(tc, verify_full_accepts_ip_address);
	tcase_add_test(tc, verify_full_rejects_wrong_host_name);
	tcase_add_test(tc, verify_full_rejects_wrong_ip_address);
	tcase_add_test(tc, verify_host_without_ca_fails_closed);
	tcase_add_test(tc, verify_ca_ignores_host_name);
	tcase_add_test(tc, verify_ca_rejects_other_ca);
	tcase_add_test(tc, require_without_ca_connects_unverified);
	tcase_add_test(tc, missing_required_client_cert_fails);
	tcase_add_test(tc, client_cert_gives_common_name);
	tcase_add_test(tc, client_cert_from_other_ca_fails);
	tcase_add_test(tc, optional_client_cert);
	tcase_add_test(tc, megabyte_both_ways_through_partial_writes);
	tcase_add_test(tc, pending_reports_buffered_records);
	tcase_add_test(tc, empty_writes_send_nothing);
	tcase_add_test(tc, server_end_point_matches_on_both_sides);
	tcase_add_test(tc, garbage_instead_of_client_hello_fails);
	tcase_add_test(tc, hang_up_during_handshake_is_closed);
	tcase_add_test(tc, close_is_seen_as_end_of_stream);
	tcase_add_test(tc, min_tls13_refuses_tls12_client);
	tcase_add_test(tc, tls12_with_cipher_list);
	tcase_add_test(tc, alpn_without_postgresql_is_refused);
	tcase_add_test(tc, no_alpn_is_accepted_and_reported);
	tcase_add_test(tc, connection_outlives_freed_context);
	tcase_add_test(tc, bad_settings_give_no_context);
	tcase_add_test(tc, mkcerts_keys_are_private);
	suite_add_tcase(s, tc);
	return s;
}
