/*
 * test_differential.c - the differential test: differential.sql runs once straight
 * against the primary and once through pgsluice (transaction, then session pooling),
 * and the client must receive the same backend messages in the same order.
 *
 * The client here is a minimal raw protocol client rather than libpq with PQtrace:
 * only raw messages give exact control over pipelining (several Syncs in one write,
 * an error in the middle of a pipeline), COPY, binary results and Flush, and the
 * transcript records every message the wire carried, not libpq's reading of it.
 * Each message becomes one canonical text line (type + decoded fields). From the
 * startup only the ParameterStatus set is compared, sorted: a pooler answers the
 * startup itself, so order and BackendKeyData legitimately differ.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "fixture.h"
#include "suites.h"

/* Largest backend message accepted; the script's biggest value is about 1 MB. */
#define DIFF_MAX_MESSAGE (64u * 1024 * 1024)
/* A step that sends or receives nothing for this long has hung. */
#define DIFF_IO_TIMEOUT_SEC 30
/* Most messages one step may produce; the 10 000-row result is the largest. */
#define DIFF_MAX_STEP_MESSAGES 1000000
/* Most distinct table or user-type OIDs one transcript renumbers. */
#define DIFF_MAX_OIDS 128
/* Fewest steps the script must hold, so that it cannot shrink unnoticed. */
#define DIFF_MIN_STEPS 100
/* OIDs below this are built in and identical in both runs. */
#define DIFF_FIRST_USER_OID 16384u
/* The [databases] entry the transaction-mode run uses: the primary alone. */
#define DIFF_ALIAS_DB "diff_primary"
/* Longest transcript line quoted in a failure message. */
#define DIFF_QUOTE_MAX 300

/* A growable byte buffer (NUL-terminated for text use). */
struct diff_buf {
	char *data;
	size_t len;
	size_t cap;
};

/* One open protocol connection. */
struct diff_conn {
	int fd;
	struct diff_buf out; /* messages not yet written */
	unsigned char *in;   /* body of the last message read */
	size_t in_cap;
	char type;           /* type byte of the last message read */
	size_t body_len;
};

/*
 * What one run received. Table and user-type OIDs differ between runs because
 * the script creates its objects afresh, so they are renumbered in order of first
 * appearance (T1, T2, ... / U1, U2, ...), which still compares where they occur.
 */
struct diff_transcript {
	struct diff_buf text;
	uint32_t tables[DIFF_MAX_OIDS];
	size_t n_tables;
	uint32_t types[DIFF_MAX_OIDS];
	size_t n_types;
};

/* The script: one block of text per step, with the line it starts on. */
struct diff_script {
	char **steps;
	int *lines;
	size_t n;
};

/* A cursor over a message body; ok turns false on the first short read. */
struct diff_reader {
	const unsigned char *p;
	size_t left;
	bool ok;
};

static void diff_buf_reserve(struct diff_buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	b->data = realloc(b->data, cap);
	ck_assert_ptr_nonnull(b->data);
	b->cap = cap;
}

static void diff_buf_append(struct diff_buf *b, const void *data, size_t n)
{
	diff_buf_reserve(b, n);
	memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void diff_buf_printf(struct diff_buf *b,
								 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	ck_assert_int_ge(n, 0);
	diff_buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Printable ASCII stays; everything else (and the backslash) becomes \xHH. */
static void diff_buf_escape(struct diff_buf *b, const unsigned char *data, size_t n)
{
	diff_buf_reserve(b, n * 4);
	for (size_t i = 0; i < n; i++) {
		if (data[i] >= 0x20 && data[i] < 0x7f && data[i] != '\\')
			b->data[b->len++] = (char)data[i];
		else
			b->len += (size_t)sprintf(b->data + b->len, "\\x%02x", data[i]);
	}
	b->data[b->len] = '\0';
}

static void diff_buf_free(struct diff_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* Starts a message of the given type (0: the untyped startup message). */
static size_t diff_msg_begin(struct diff_buf *b, char type)
{
	if (type != 0)
		diff_buf_append(b, &type, 1);
	size_t at = b->len;
	diff_buf_append(b, "\0\0\0\0", 4);
	return at;
}

static void diff_msg_int32(struct diff_buf *b, uint32_t v)
{
	uint32_t n = htonl(v);
	diff_buf_append(b, &n, 4);
}

static void diff_msg_int16(struct diff_buf *b, uint16_t v)
{
	uint16_t n = htons(v);
	diff_buf_append(b, &n, 2);
}

static void diff_msg_str(struct diff_buf *b, const char *s)
{
	diff_buf_append(b, s, strlen(s) + 1);
}

static void diff_msg_end(struct diff_buf *b, size_t at)
{
	uint32_t n = htonl((uint32_t)(b->len - at));
	memcpy(b->data + at, &n, 4);
}

static uint32_t diff_read_int32(struct diff_reader *r)
{
	if (r->left < 4) {
		r->ok = false;
		return 0;
	}
	uint32_t v;
	memcpy(&v, r->p, 4);
	r->p += 4;
	r->left -= 4;
	return ntohl(v);
}

static uint16_t diff_read_int16(struct diff_reader *r)
{
	if (r->left < 2) {
		r->ok = false;
		return 0;
	}
	uint16_t v;
	memcpy(&v, r->p, 2);
	r->p += 2;
	r->left -= 2;
	return ntohs(v);
}

/* A NUL-terminated string inside the body, or "" when there is none. */
static const char *diff_read_str(struct diff_reader *r)
{
	const unsigned char *end = memchr(r->p, '\0', r->left);
	if (end == NULL) {
		r->ok = false;
		return "";
	}
	const char *s = (const char *)r->p;
	r->left -= (size_t)(end - r->p) + 1;
	r->p = end + 1;
	return s;
}

static const unsigned char *diff_read_bytes(struct diff_reader *r, size_t n)
{
	if (r->left < n) {
		r->ok = false;
		return NULL;
	}
	const unsigned char *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

static bool diff_conn_open(struct diff_conn *c, int port, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return false;
	}
	struct timeval tv = {.tv_sec = DIFF_IO_TIMEOUT_SEC};
	int one = 1;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(err, errlen, "connect to port %d: %s", port, strerror(errno));
		return false;
	}
	return true;
}

static void diff_conn_close(struct diff_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	diff_buf_free(&c->out);
	free(c->in);
	c->in = NULL;
	c->in_cap = 0;
}

/* Writes everything queued in c->out. */
static bool diff_conn_flush(struct diff_conn *c, char *err, size_t errlen)
{
	size_t done = 0;
	while (done < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + done, c->out.len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "send: %s", n < 0 ? strerror(errno) : "closed");
			return false;
		}
		done += (size_t)n;
	}
	c->out.len = 0;
	return true;
}

static bool diff_conn_read_exact(struct diff_conn *c, void *into, size_t n, char *err,
				 size_t errlen)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = recv(c->fd, (char *)into + got, n - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "recv: %s",
				 r < 0 ? strerror(errno) : "connection closed by peer");
			return false;
		}
		got += (size_t)r;
	}
	return true;
}

/* Reads the next backend message into c->type / c->in / c->body_len. */
static bool diff_conn_read(struct diff_conn *c, char *err, size_t errlen)
{
	unsigned char head[5];
	if (!diff_conn_read_exact(c, head, sizeof(head), err, errlen))
		return false;
	uint32_t len;
	memcpy(&len, head + 1, 4);
	len = ntohl(len);
	if (len < 4 || len > DIFF_MAX_MESSAGE) {
		snprintf(err, errlen, "message '%c' has bad length %u", head[0], len);
		return false;
	}
	c->type = (char)head[0];
	c->body_len = len - 4;
	if (c->body_len + 1 > c->in_cap) {
		free(c->in);
		c->in_cap = c->body_len + 1;
		c->in = malloc(c->in_cap);
		ck_assert_ptr_nonnull(c->in);
	}
	/* The terminator lets string reads of a truncated body stop safely. */
	c->in[c->body_len] = '\0';
	return diff_conn_read_exact(c, c->in, c->body_len, err, errlen);
}

static void diff_base64(const unsigned char *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static void diff_hmac(const unsigned char *key, size_t keylen, const char *msg, size_t n,
		      unsigned char out[SHA256_DIGEST_LENGTH])
{
	unsigned int outlen = SHA256_DIGEST_LENGTH;
	HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, n, out, &outlen);
}

/* The value of attribute name ('r', 's', ...) in a SCRAM message, copied into out. */
static bool diff_scram_attr(const char *msg, char name, char *out, size_t cap)
{
	for (const char *p = msg; p != NULL && *p != '\0'; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (p[0] == name && p[1] == '=') {
			size_t n = strcspn(p + 2, ",");
			if (n >= cap)
				return false;
			memcpy(out, p + 2, n);
			out[n] = '\0';
			return true;
		}
	}
	return false;
}

/* Copies the message ('M') field of the ErrorResponse in c into err. */
static void diff_error_text(const struct diff_conn *c, const char *what, char *err,
			    size_t errlen)
{
	struct diff_reader r = {c->in, c->body_len, true};
	const char *message = "(no message)";
	while (r.ok && r.left > 0 && r.p[0] != '\0') {
		char code = (char)r.p[0];
		diff_read_bytes(&r, 1);
		const char *v = diff_read_str(&r);
		if (code == 'M')
			message = v;
	}
	snprintf(err, errlen, "%s: %s", what, message);
}

static bool diff_expect_sasl(struct diff_conn *c, uint32_t code, char *err, size_t errlen)
{
	if (!diff_conn_read(c, err, errlen))
		return false;
	struct diff_reader r = {c->in, c->body_len, true};
	if (c->type == 'E') {
		diff_error_text(c, "authentication failed", err, errlen);
		return false;
	}
	if (c->type != 'R' || diff_read_int32(&r) != code) {
		snprintf(err, errlen, "expected SASL step %u, got '%c'", code, c->type);
		return false;
	}
	return true;
}

/*
 * The client side of SCRAM-SHA-256 (RFC 5802/7677), without channel binding,
 * from the SASL offer to the verified server signature.
 */
static bool diff_scram_exchange(struct diff_conn *c, const char *password, char *err,
				size_t errlen)
{
	unsigned char raw_nonce[18];
	char nonce[32], first_bare[64], server_first[512], final_bare[256];
	char salt_b64[128], iter_text[16], proof_b64[64];
	unsigned char salt[96], salted[32], client_key[32], stored_key[32], sig[32];

	if (RAND_bytes(raw_nonce, sizeof(raw_nonce)) != 1) {
		snprintf(err, errlen, "RAND_bytes failed");
		return false;
	}
	diff_base64(raw_nonce, sizeof(raw_nonce), nonce);
	snprintf(first_bare, sizeof(first_bare), "n=,r=%s", nonce);
	size_t at = diff_msg_begin(&c->out, 'p');
	diff_msg_str(&c->out, "SCRAM-SHA-256");
	diff_msg_int32(&c->out, (uint32_t)(strlen(first_bare) + 3));
	diff_buf_append(&c->out, "n,,", 3);
	diff_buf_append(&c->out, first_bare, strlen(first_bare));
	diff_msg_end(&c->out, at);
	if (!diff_conn_flush(c, err, errlen) || !diff_expect_sasl(c, 11, err, errlen))
		return false;

	size_t n = c->body_len - 4;
	if (n >= sizeof(server_first)) {
		snprintf(err, errlen, "SCRAM server-first-message too long");
		return false;
	}
	memcpy(server_first, c->in + 4, n);
	server_first[n] = '\0';
	char server_nonce[128];
	if (!diff_scram_attr(server_first, 'r', server_nonce, sizeof(server_nonce)) ||
	    !diff_scram_attr(server_first, 's', salt_b64, sizeof(salt_b64)) ||
	    !diff_scram_attr(server_first, 'i', iter_text, sizeof(iter_text)) ||
	    strncmp(server_nonce, nonce, strlen(nonce)) != 0) {
		snprintf(err, errlen, "bad SCRAM server-first-message: %.200s", server_first);
		return false;
	}
	int salt_len = EVP_DecodeBlock(salt, (const unsigned char *)salt_b64,
				       (int)strlen(salt_b64));
	for (size_t i = strlen(salt_b64); i > 0 && salt_b64[i - 1] == '='; i--)
		salt_len--;
	int iterations = atoi(iter_text);
	if (salt_len <= 0 || iterations <= 0 ||
	    PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, salt_len, iterations,
			      EVP_sha256(), sizeof(salted), salted) != 1) {
		snprintf(err, errlen, "bad SCRAM salt or iteration count");
		return false;
	}

	snprintf(final_bare, sizeof(final_bare), "c=biws,r=%s", server_nonce);
	struct diff_buf auth_message = {0};
	diff_buf_printf(&auth_message, "%s,%s,%s", first_bare, server_first, final_bare);
	diff_hmac(salted, sizeof(salted), "Client Key", 10, client_key);
	SHA256(client_key, sizeof(client_key), stored_key);
	diff_hmac(stored_key, sizeof(stored_key), auth_message.data, auth_message.len, sig);
	for (size_t i = 0; i < sizeof(sig); i++)
		sig[i] ^= client_key[i];
	diff_base64(sig, sizeof(sig), proof_b64);
	at = diff_msg_begin(&c->out, 'p');
	diff_buf_printf(&c->out, "%s,p=%s", final_bare, proof_b64);
	diff_msg_end(&c->out, at);
	bool ok = diff_conn_flush(c, err, errlen) && diff_expect_sasl(c, 12, err, errlen);

	if (ok) {
		unsigned char server_key[32];
		char expected[64];
		diff_hmac(salted, sizeof(salted), "Server Key", 10, server_key);
		diff_hmac(server_key, sizeof(server_key), auth_message.data, auth_message.len,
			  sig);
		diff_base64(sig, sizeof(sig), expected);
		size_t got = c->body_len - 4;
		ok = got == strlen(expected) + 2 && memcmp(c->in + 4, "v=", 2) == 0 &&
		     memcmp(c->in + 6, expected, strlen(expected)) == 0;
		if (!ok)
			snprintf(err, errlen, "server SCRAM signature does not verify");
	}
	diff_buf_free(&auth_message);
	return ok;
}

/* "T3" for the third distinct OID seen in map; 0 stays 0; built-in OIDs stay. */
static void diff_record_oid(struct diff_buf *b, uint32_t *map, size_t *n, char tag,
			    uint32_t oid)
{
	if (oid < DIFF_FIRST_USER_OID) {
		diff_buf_printf(b, "%u", oid);
		return;
	}
	size_t i = 0;
	while (i < *n && map[i] != oid)
		i++;
	if (i == *n) {
		ck_assert_msg(*n < DIFF_MAX_OIDS, "more than %d user OIDs in one run",
			      DIFF_MAX_OIDS);
		map[(*n)++] = oid;
	}
	diff_buf_printf(b, "%c%zu", tag, i + 1);
}

/* Error and notice fields, in the order received: "C=22012 M=division by zero". */
static void diff_record_fields(struct diff_buf *b, struct diff_reader *r)
{
	while (r->ok && r->left > 0 && r->p[0] != '\0') {
		char code = (char)r->p[0];
		diff_read_bytes(r, 1);
		const char *v = diff_read_str(r);
		diff_buf_printf(b, " %c=", code);
		diff_buf_escape(b, (const unsigned char *)v, strlen(v));
	}
	diff_read_bytes(r, 1); /* the list's terminator */
}

/* Appends one canonical line for the message in c to t. */
static void diff_record_message(struct diff_transcript *t, const struct diff_conn *c)
{
	struct diff_buf *b = &t->text;
	struct diff_reader r = {c->in, c->body_len, true};
	diff_buf_printf(b, "%c", c->type);
	switch (c->type) {
	case 'T': {
		uint16_t n = diff_read_int16(&r);
		diff_buf_printf(b, " %u", n);
		for (uint16_t i = 0; i < n && r.ok; i++) {
			const char *name = diff_read_str(&r);
			diff_buf_append(b, " [", 2);
			diff_buf_escape(b, (const unsigned char *)name, strlen(name));
			diff_buf_append(b, " table=", 7);
			diff_record_oid(b, t->tables, &t->n_tables, 'T', diff_read_int32(&r));
			diff_buf_printf(b, " att=%u type=", diff_read_int16(&r));
			diff_record_oid(b, t->types, &t->n_types, 'U', diff_read_int32(&r));
			int16_t size = (int16_t)diff_read_int16(&r);
			int32_t mod = (int32_t)diff_read_int32(&r);
			diff_buf_printf(b, " size=%d mod=%d fmt=%u]", size, mod,
					diff_read_int16(&r));
		}
		break;
	}
	case 'D': {
		uint16_t n = diff_read_int16(&r);
		diff_buf_printf(b, " %u", n);
		for (uint16_t i = 0; i < n && r.ok; i++) {
			int32_t len = (int32_t)diff_read_int32(&r);
			if (len < 0) {
				diff_buf_append(b, " |NULL", 6);
				continue;
			}
			const unsigned char *v = diff_read_bytes(&r, (size_t)len);
			diff_buf_printf(b, " |%d:", len);
			if (v != NULL)
				diff_buf_escape(b, v, (size_t)len);
		}
		break;
	}
	case 't': {
		uint16_t n = diff_read_int16(&r);
		diff_buf_printf(b, " %u", n);
		for (uint16_t i = 0; i < n && r.ok; i++) {
			diff_buf_append(b, " ", 1);
			diff_record_oid(b, t->types, &t->n_types, 'U', diff_read_int32(&r));
		}
		break;
	}
	case 'G':
	case 'H':
	case 'W': {
		const unsigned char *fmt = diff_read_bytes(&r, 1);
		uint16_t n = diff_read_int16(&r);
		diff_buf_printf(b, " fmt=%u cols=%u", fmt != NULL ? *fmt : 255u, n);
		for (uint16_t i = 0; i < n && r.ok; i++)
			diff_buf_printf(b, " %u", diff_read_int16(&r));
		break;
	}
	case 'E':
	case 'N':
		diff_record_fields(b, &r);
		break;
	case 'C': {
		const char *tag = diff_read_str(&r);
		diff_buf_printf(b, " %s", tag);
		break;
	}
	case 'S': {
		const char *name = diff_read_str(&r);
		const char *value = diff_read_str(&r);
		diff_buf_printf(b, " %s=", name);
		diff_buf_escape(b, (const unsigned char *)value, strlen(value));
		break;
	}
	case 'A': {
		/* The sender's pid differs between runs; channel and payload do not. */
		diff_read_int32(&r);
		const char *channel = diff_read_str(&r);
		const char *payload = diff_read_str(&r);
		diff_buf_printf(b, " %s ", channel);
		diff_buf_escape(b, (const unsigned char *)payload, strlen(payload));
		break;
	}
	case 'K':
		/* Process id and secret key differ by backend by design. */
		r.left = 0;
		break;
	default:
		/* Z, d, c, 1, 2, 3, n, s, I and anything unexpected: the raw body. */
		if (c->body_len > 0)
			diff_buf_append(b, " ", 1);
		diff_buf_escape(b, c->in, c->body_len);
		r.left = 0;
		break;
	}
	if (!r.ok || r.left != 0)
		diff_buf_printf(b, " <malformed, %zu bytes left>", r.left);
	diff_buf_append(b, "\n", 1);
}

static int diff_compare_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the lines of text to t in sorted order. */
static void diff_record_sorted(struct diff_transcript *t, char *text)
{
	size_t n = 0;
	for (const char *p = text; *p != '\0'; p++)
		n += *p == '\n';
	char **lines = calloc(n + 1, sizeof(*lines));
	ck_assert_ptr_nonnull(lines);
	n = 0;
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		lines[n++] = line;
	qsort(lines, n, sizeof(*lines), diff_compare_lines);
	for (size_t i = 0; i < n; i++)
		diff_buf_printf(&t->text, "%s\n", lines[i]);
	free(lines);
}

/*
 * Sends the StartupMessage and authenticates; returns after the first
 * ReadyForQuery. The startup ParameterStatus burst goes to t sorted: drivers
 * rely on its contents (server_version, client_encoding, ...) but a pooler that
 * answers it itself may send it in another order.
 */
static bool diff_conn_startup(struct diff_conn *c, const char *db, struct diff_transcript *t,
			      char *err, size_t errlen)
{
	struct diff_transcript params = {0};
	bool ok = true;
	size_t at = diff_msg_begin(&c->out, 0);
	diff_msg_int32(&c->out, 196608); /* protocol 3.0 */
	diff_msg_str(&c->out, "user");
	diff_msg_str(&c->out, FIXTURE_USER);
	diff_msg_str(&c->out, "database");
	diff_msg_str(&c->out, db);
	diff_msg_str(&c->out, "");
	diff_msg_end(&c->out, at);
	diff_buf_printf(&t->text, "# startup ParameterStatus, sorted\n");
	diff_buf_append(&params.text, "", 0);
	ok = diff_conn_flush(c, err, errlen);
	while (ok) {
		ok = diff_conn_read(c, err, errlen);
		struct diff_reader r = {c->in, c->body_len, true};
		if (!ok || c->type == 'Z')
			break;
		if (c->type == 'E') {
			diff_error_text(c, "startup failed", err, errlen);
			ok = false;
			break;
		}
		if (c->type == 'S')
			diff_record_message(&params, c);
		if (c->type != 'R')
			continue; /* BackendKeyData differs by design; notices are not expected */
		uint32_t code = diff_read_int32(&r);
		if (code == 10) {
			ok = diff_scram_exchange(c, FIXTURE_PASSWORD, err, errlen);
		} else if (code == 3) {
			at = diff_msg_begin(&c->out, 'p');
			diff_msg_str(&c->out, FIXTURE_PASSWORD);
			diff_msg_end(&c->out, at);
			ok = diff_conn_flush(c, err, errlen);
		} else if (code != 0) {
			snprintf(err, errlen, "unsupported authentication request %u", code);
			ok = false;
		}
	}
	diff_record_sorted(t, params.text.data);
	if (ok)
		diff_record_message(t, c);
	diff_buf_free(&params.text);
	return ok;
}

/*
 * Reads and records messages until `syncs` ReadyForQuery messages arrived. When
 * the server asks for COPY data, the step's "--@ copydata" lines are sent, then
 * CopyDone, or CopyFail when the step has "--@ copyfail".
 */
static bool diff_collect(struct diff_conn *c, struct diff_transcript *t, int syncs,
			 const char *step, char *err, size_t errlen)
{
	for (int messages = 0, seen = 0; messages < DIFF_MAX_STEP_MESSAGES; messages++) {
		if (!diff_conn_read(c, err, errlen))
			return false;
		diff_record_message(t, c);
		if (c->type == 'Z' && ++seen == syncs)
			return true;
		if (c->type != 'G')
			continue;
		const char *fail = NULL;
		for (const char *line = step; line != NULL && *line != '\0';) {
			size_t len = strcspn(line, "\n");
			if (strncmp(line, "--@ copydata ", 13) == 0) {
				size_t at = diff_msg_begin(&c->out, 'd');
				diff_buf_append(&c->out, line + 13, len - 13);
				diff_buf_append(&c->out, "\n", 1);
				diff_msg_end(&c->out, at);
			} else if (strncmp(line, "--@ copyfail ", 13) == 0) {
				fail = line + 13;
			}
			line += len + (line[len] == '\n');
		}
		size_t at = diff_msg_begin(&c->out, fail != NULL ? 'f' : 'c');
		if (fail != NULL) {
			diff_buf_append(&c->out, fail, strcspn(fail, "\n"));
			diff_buf_append(&c->out, "", 1);
		}
		diff_msg_end(&c->out, at);
		if (!diff_conn_flush(c, err, errlen))
			return false;
	}
	snprintf(err, errlen, "step produced more than %d messages", DIFF_MAX_STEP_MESSAGES);
	return false;
}

/* "-" names the unnamed statement or portal. */
static const char *diff_name(const char *word)
{
	return strcmp(word, "-") == 0 ? "" : word;
}

/*
 * Queues one pipeline command (see differential.sql for the grammar). Returns
 * false on a line the grammar does not know; *syncs counts Sync messages.
 */
static bool diff_queue_command(struct diff_buf *out, char *line, int *syncs)
{
	char *rest = NULL;
	char *verb = strtok_r(line, " ", &rest);
	size_t at;
	if (verb == NULL)
		return false;
	if (strcmp(verb, "parse") == 0) {
		char *name = strtok_r(NULL, " ", &rest);
		if (name == NULL)
			return false;
		at = diff_msg_begin(out, 'P');
		diff_msg_str(out, diff_name(name));
		diff_msg_str(out, rest != NULL ? rest : "");
		diff_msg_int16(out, 0);
	} else if (strcmp(verb, "bind") == 0) {
		char *portal = strtok_r(NULL, " ", &rest);
		char *stmt = strtok_r(NULL, " ", &rest);
		char *fmt = strtok_r(NULL, " ", &rest);
		if (portal == NULL || stmt == NULL || fmt == NULL ||
		    (strcmp(fmt, "t") != 0 && strcmp(fmt, "b") != 0))
			return false;
		at = diff_msg_begin(out, 'B');
		diff_msg_str(out, diff_name(portal));
		diff_msg_str(out, diff_name(stmt));
		diff_msg_int16(out, 0); /* every parameter in text */
		uint16_t n = 0;
		size_t count_at = out->len;
		diff_msg_int16(out, 0);
		for (char *p = rest; p != NULL && *p != '\0'; n++) {
			size_t len = strcspn(p, "|");
			if (len == 2 && strncmp(p, "\\N", 2) == 0) {
				diff_msg_int32(out, UINT32_MAX);
			} else {
				diff_msg_int32(out, (uint32_t)len);
				diff_buf_append(out, p, len);
			}
			p = p[len] == '|' ? p + len + 1 : p + len;
		}
		uint16_t be = htons(n);
		memcpy(out->data + count_at, &be, 2);
		diff_msg_int16(out, 1);
		diff_msg_int16(out, strcmp(fmt, "b") == 0 ? 1 : 0);
	} else if (strcmp(verb, "describe") == 0 || strcmp(verb, "close") == 0) {
		char *what = strtok_r(NULL, " ", &rest);
		char *name = strtok_r(NULL, " ", &rest);
		if (what == NULL || name == NULL ||
		    (strcmp(what, "S") != 0 && strcmp(what, "P") != 0))
			return false;
		at = diff_msg_begin(out, verb[0] == 'd' ? 'D' : 'C');
		diff_buf_append(out, what, 1);
		diff_msg_str(out, diff_name(name));
	} else if (strcmp(verb, "execute") == 0) {
		char *portal = strtok_r(NULL, " ", &rest);
		char *rows = strtok_r(NULL, " ", &rest);
		if (portal == NULL || rows == NULL)
			return false;
		at = diff_msg_begin(out, 'E');
		diff_msg_str(out, diff_name(portal));
		diff_msg_int32(out, (uint32_t)atoi(rows));
	} else if (strcmp(verb, "sync") == 0) {
		at = diff_msg_begin(out, 'S');
		(*syncs)++;
	} else if (strcmp(verb, "flush") == 0) {
		at = diff_msg_begin(out, 'H');
	} else {
		return false;
	}
	diff_msg_end(out, at);
	return true;
}

/* Runs one step: a simple Query, or an extended-protocol pipeline in one write. */
static bool diff_run_step(struct diff_conn *c, struct diff_transcript *t, const char *step,
			  char *err, size_t errlen)
{
	bool pipeline = strncmp(step, "--@ pipeline\n", 13) == 0;
	struct diff_buf sql = {0};
	int syncs = 1;
	diff_buf_append(&sql, "", 0);
	if (pipeline)
		syncs = 0;
	for (const char *line = step + (pipeline ? 13 : 0); *line != '\0';) {
		size_t len = strcspn(line, "\n");
		if (pipeline) {
			char command[4096];
			if (len >= sizeof(command)) {
				snprintf(err, errlen, "pipeline line too long");
				diff_buf_free(&sql);
				return false;
			}
			memcpy(command, line, len);
			command[len] = '\0';
			if (!diff_queue_command(&c->out, command, &syncs)) {
				snprintf(err, errlen, "bad pipeline line: %.*s", (int)len, line);
				diff_buf_free(&sql);
				return false;
			}
		} else if (strncmp(line, "--@ ", 4) != 0) {
			if (sql.len > 0)
				diff_buf_append(&sql, "\n", 1);
			diff_buf_append(&sql, line, len);
		} else if (!(len == 9 && strncmp(line, "--@ empty", 9) == 0) &&
			   strncmp(line, "--@ copydata ", 13) != 0 &&
			   strncmp(line, "--@ copyfail ", 13) != 0) {
			snprintf(err, errlen, "unknown directive: %.*s", (int)len, line);
			diff_buf_free(&sql);
			return false;
		}
		line += len + (line[len] == '\n');
	}
	if (!pipeline) {
		size_t at = diff_msg_begin(&c->out, 'Q');
		diff_msg_str(&c->out, sql.data);
		diff_msg_end(&c->out, at);
	}
	diff_buf_free(&sql);
	if (syncs == 0) {
		snprintf(err, errlen, "pipeline without sync");
		return false;
	}
	return diff_conn_flush(c, err, errlen) && diff_collect(c, t, syncs, step, err, errlen);
}

/* Replaces every "@S@" in text with schema; returns a new string. */
static char *diff_substitute(const char *text, const char *schema)
{
	struct diff_buf b = {0};
	diff_buf_append(&b, "", 0);
	for (const char *p = text;;) {
		const char *hit = strstr(p, "@S@");
		if (hit == NULL) {
			diff_buf_append(&b, p, strlen(p));
			return b.data;
		}
		diff_buf_append(&b, p, (size_t)(hit - p));
		diff_buf_append(&b, schema, strlen(schema));
		p = hit + 3;
	}
}

static void diff_script_add(struct diff_script *s, struct diff_buf *block, int line)
{
	if (block->len == 0)
		return;
	s->steps = realloc(s->steps, (s->n + 1) * sizeof(*s->steps));
	s->lines = realloc(s->lines, (s->n + 1) * sizeof(*s->lines));
	ck_assert(s->steps != NULL && s->lines != NULL);
	s->steps[s->n] = block->data;
	s->lines[s->n] = line;
	s->n++;
	memset(block, 0, sizeof(*block));
}

/*
 * Splits the script into steps: blocks separated by blank lines. "--#" lines
 * are the script's own comments and are dropped; a block left empty is no step.
 */
static void diff_script_parse(struct diff_script *s, const char *text)
{
	struct diff_buf block = {0};
	int lineno = 0, block_line = 0;
	for (const char *line = text; *line != '\0';) {
		size_t len = strcspn(line, "\n");
		lineno++;
		if (len == 0) {
			diff_script_add(s, &block, block_line);
		} else if (strncmp(line, "--#", 3) != 0) {
			if (block.len == 0)
				block_line = lineno;
			else
				diff_buf_append(&block, "\n", 1);
			diff_buf_append(&block, line, len);
		}
		line += len + (line[len] == '\n');
	}
	diff_script_add(s, &block, block_line);
}

static void diff_script_free(struct diff_script *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->steps[i]);
	free(s->steps);
	free(s->lines);
	memset(s, 0, sizeof(*s));
}

/*
 * The script lives next to this file. The build runs from the top build
 * directory, so __FILE__'s directory finds it for in-tree builds; $srcdir (set
 * by make check) or PGSLUICE_DIFF_SCRIPT covers the others.
 */
static char *diff_script_read(void)
{
	char paths[3][1024];
	const char *srcdir = getenv("srcdir");
	const char *override = getenv("PGSLUICE_DIFF_SCRIPT");
	const char *file = __FILE__;
	const char *slash = strrchr(file, '/');
	snprintf(paths[0], sizeof(paths[0]), "%s", override != NULL ? override : "");
	snprintf(paths[1], sizeof(paths[1]), "%.*sdifferential.sql",
		 slash != NULL ? (int)(slash - file + 1) : 0, file);
	snprintf(paths[2], sizeof(paths[2]), "%s/test/integration/differential.sql",
		 srcdir != NULL ? srcdir : ".");
	for (size_t i = 0; i < 3; i++) {
		FILE *f = paths[i][0] != '\0' ? fopen(paths[i], "r") : NULL;
		if (f == NULL)
			continue;
		struct diff_buf b = {0};
		char chunk[8192];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			diff_buf_append(&b, chunk, n);
		fclose(f);
		return b.data;
	}
	ck_abort_msg("differential.sql not found (tried %s, %s; set PGSLUICE_DIFF_SCRIPT)",
		     paths[1], paths[2]);
	return NULL;
}

/* Drops what an earlier, interrupted run may have left behind (not recorded). */
static void diff_drop_schema(int port, const char *schema)
{
	char sql[128];
	PGconn *conn = fixture_connect_ok(port, FIXTURE_DB, FIXTURE_USER, FIXTURE_PASSWORD, NULL);
	snprintf(sql, sizeof(sql), "SET client_min_messages = warning; "
				   "DROP SCHEMA IF EXISTS %s CASCADE", schema);
	PQclear(fixture_exec_ok(conn, sql));
	PQfinish(conn);
}

/*
 * Runs the whole script on one connection to database db at port, recording into
 * t. Returns false (with err) when the connection failed; what was recorded until
 * then stays in t so that the comparison can show where it happened.
 */
static bool diff_run_script(int port, const char *db, const struct diff_script *s,
			    struct diff_transcript *t, char *err, size_t errlen)
{
	struct diff_conn c;
	bool ok = diff_conn_open(&c, port, err, errlen) &&
		  diff_conn_startup(&c, db, t, err, errlen);
	for (size_t i = 0; ok && i < s->n; i++) {
		const char *head = s->steps[i];
		if (strncmp(head, "--@ pipeline\n", 13) == 0)
			head += 13;
		size_t first = strcspn(head, "\n");
		diff_buf_printf(&t->text, "# step %zu, differential.sql:%d: %s", i + 1, s->lines[i],
				head == s->steps[i] ? "" : "pipeline: ");
		diff_buf_escape(&t->text, (const unsigned char *)head, first < 60 ? first : 60);
		diff_buf_append(&t->text, "\n", 1);
		ok = diff_run_step(&c, t, s->steps[i], err, errlen);
	}
	if (ok) {
		size_t at = diff_msg_begin(&c.out, 'X');
		diff_msg_end(&c.out, at);
		ok = diff_conn_flush(&c, err, errlen);
	}
	if (!ok)
		diff_buf_printf(&t->text, "! connection failed: %s\n", err);
	diff_conn_close(&c);
	return ok;
}

static void diff_save(const struct diff_transcript *t, const char *path)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return;
	fwrite(t->text.data, 1, t->text.len, f);
	fclose(f);
}

/* How much of the line at p a failure message quotes. */
static int diff_quote_len(const char *p)
{
	size_t n = p != NULL ? strcspn(p, "\n") : 0;
	return (int)(n < DIFF_QUOTE_MAX ? n : DIFF_QUOTE_MAX);
}

/*
 * Compares two transcripts line by line; on the first difference fails with the
 * step it happened in, the two lines before it and both versions of the line.
 */
static void diff_compare(const char *direct, const char *pooled, const char *what)
{
	const char *a = direct, *b = pooled, *step = direct, *prev[2] = {"", ""};
	for (size_t lineno = 1; *a != '\0' || *b != '\0'; lineno++) {
		size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
		if (a[0] == '#')
			step = a;
		if (la != lb || memcmp(a, b, la) != 0 || (*a == '\0') != (*b == '\0')) {
			ck_abort_msg("%s: first difference at transcript line %zu\n"
				     "  in: %.*s\n  before: %.*s\n  before: %.*s\n"
				     "  direct: %.*s%s\n  pooled: %.*s%s",
				     what, lineno, diff_quote_len(step), step,
				     diff_quote_len(prev[0]), prev[0], diff_quote_len(prev[1]),
				     prev[1], diff_quote_len(a), a, *a ? "" : "(end)",
				     diff_quote_len(b), b, *b ? "" : "(end)");
		}
		prev[0] = prev[1];
		prev[1] = a;
		a += la + (a[la] == '\n');
		b += lb + (b[lb] == '\n');
	}
}

/*
 * Runs the script directly and through pgsluice in pool_mode, and compares. With
 * via_alias the pooled run uses a database entry on the primary alone: transaction
 * pooling routes reads to replicas, which may not have replayed the write just
 * before, so read-your-writes holds only without them. Session pooling pins the
 * client to the primary, so it runs against the fixture's entry, replicas and all.
 */
static void diff_check_mode(const char *pool_mode, bool via_alias)
{
	char schema[32], global[64], databases[128], err[512], path[512];
	unsigned char rnd[4];
	ck_assert_int_eq(RAND_bytes(rnd, sizeof(rnd)), 1);
	snprintf(schema, sizeof(schema), "diff_%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		 rnd[3]);

	char *raw = diff_script_read();
	char *text = diff_substitute(raw, schema);
	free(raw);
	struct diff_script script = {0};
	diff_script_parse(&script, text);
	free(text);
	ck_assert_msg(script.n >= DIFF_MIN_STEPS, "differential.sql has only %zu steps",
		      script.n);

	struct diff_transcript direct = {0}, pooled = {0};
	int primary = fixture_primary_port();
	diff_drop_schema(primary, schema);
	bool ok = diff_run_script(primary, FIXTURE_DB, &script, &direct, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/differential-%s-direct.txt", fixture_tmpdir(),
		 pool_mode);
	diff_save(&direct, path);
	ck_assert_msg(ok, "direct run failed: %s (transcript in %s)", err, path);

	snprintf(global, sizeof(global), "pool_mode = %s\n", pool_mode);
	snprintf(databases, sizeof(databases), "%s = host=127.0.0.1 port=%d dbname=%s\n",
		 DIFF_ALIAS_DB, primary, FIXTURE_DB);
	struct sluice *s = sluice_start(global, databases);
	ck_assert_ptr_nonnull(s);
	diff_drop_schema(primary, schema);
	const char *db = via_alias && !fixture_direct_mode() ? DIFF_ALIAS_DB : FIXTURE_DB;
	diff_run_script(s->port, db, &script, &pooled, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/differential-%s-pooled.txt", fixture_tmpdir(),
		 pool_mode);
	diff_save(&pooled, path);
	/* Stopped before comparing so that a failed comparison leaves no daemon behind. */
	int stopped = sluice_stop(s);
	diff_drop_schema(primary, schema);

	char what[1024];
	snprintf(what, sizeof(what), "%s pooling (transcripts in %s/differential-%s-*.txt)",
		 pool_mode, fixture_tmpdir(), pool_mode);
	diff_compare(direct.text.data, pooled.text.data, what);
	ck_assert_msg(stopped == 0, "pgsluice did not stop cleanly after the %s run", pool_mode);

	diff_buf_free(&direct.text);
	diff_buf_free(&pooled.text);
	diff_script_free(&script);
}

START_TEST(pooler_transaction_mode_matches_direct)
{
	diff_check_mode("transaction", true);
}
END_TEST

START_TEST(pooler_session_mode_matches_direct)
{
	diff_check_mode("session", false);
}
END_TEST

Suite *differential_suite(void)
{
	Suite *s = suite_create("differential");
	TCase *tc = tcase_create("transaction");
	tcase_add_unchecked_fixture(tc, fixture_cluster_start, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, pooler_transaction_mode_matches_direct);
	suite_add_tcase(s, tc);

	tc = tcase_create("session");
	tcase_add_unchecked_fixture(tc, fixture_cluster_start, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, pooler_session_mode_matches_direct);
	suite_add_tcase(s, tc);
	return s;
}
