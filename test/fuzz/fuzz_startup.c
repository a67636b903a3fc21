/*
 * fuzz_startup.c - libFuzzer target: what a client sends, from its first byte.
 *
 * The startup-phase packets take the steps of client_read_startup() (inline
 * in client.c): length bounds, proto_parse_startup, SSL and GSSENC requests
 * followed by another packet, CancelRequest, and for v3 the parameters into
 * a params set and params_add_options on "options". What follows a v3
 * startup is framed by the real reader at once, byte by byte and in chunks
 * (the same messages each time), each message read as its type asks.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "classify.h"
#include "fuzz_stream.h"
#include "params.h"
#include "proto.h"

/* The defaults of max_startup_packet and (scaled down) max_packet_size. */
#define MAX_STARTUP 10000u
#define MAX_PACKET (16u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* s points into [pkt, pkt + len) and its NUL does too. */
static void check_inside(const char *s, const uint8_t *pkt, size_t len)
{
	const uint8_t *p = (const uint8_t *)s;
	if (p < pkt || p >= pkt + len || memchr(p, 0, (size_t)(pkt + len - p)) == NULL)
		__builtin_trap();
}

/* A v3 startup: what client.c checks and keeps. */
static void take_v3(const struct proto_startup *st, const uint8_t *pkt, size_t len)
{
	if (st->n_params > PROTO_MAX_STARTUP_PARAMS)
		__builtin_trap();
	const char *unknown[PROTO_MAX_STARTUP_PARAMS];
	size_t n_unknown = 0;
	static struct params ps;
	params_init(&ps);
	for (size_t i = 0; i < st->n_params; i++) {
		check_inside(st->names[i], pkt, len);
		check_inside(st->values[i], pkt, len);
		if (strncmp(st->names[i], "_pq_.", 5) == 0)
			unknown[n_unknown++] = st->names[i];
		else if (strcmp(st->names[i], "user") != 0 && strcmp(st->names[i], "database") != 0 &&
			 strcmp(st->names[i], "options") != 0 &&
			 strcmp(st->names[i], "replication") != 0)
			params_set(&ps, st->names[i], st->values[i], false);
	}
	const char *user = proto_startup_get(st, "user");
	if (user != NULL)
		check_inside(user, pkt, len);
	const char *options = proto_startup_get(st, "options");
	if (options != NULL)
		params_add_options(&ps, options);
	struct obuf ob;
	obuf_init(&ob, 64 * 1024);
	if ((st->code & 0xffff) != 0 || n_unknown > 0)
		proto_put_negotiate(&ob, 0, unknown, n_unknown);
	obuf_free(&ob);
	params_free(&ps);
}

/* A query's text through what the client path asks of it (client.c, session.c). */
static void read_query(const char *sql, size_t len)
{
	struct classify_result r;
	classify_statement(sql, len, NULL, &r);
	size_t pos = 0, off, n;
	while (classify_next_statement(sql, len, &pos, &off, &n)) {
		if (off + n > len || pos > len)
			__builtin_trap();
		classify_statement(sql + off, n, NULL, &r);
		char name[CLASSIFY_NAME_MAX], value[PARAMS_MAX_VALUE + 1];
		classify_session_set(sql + off, n, name, value, sizeof(value));
	}
}

/* One whole client message, read as its type asks. */
static void on_message(void *arg, uint8_t type, uint32_t total, const uint8_t *body,
		       uint32_t len)
{
	(void)arg;
	(void)total;
	if (body == NULL)
		return;
	const uint8_t *p = body, *end = body + len;
	const char *s, *mech;
	const uint8_t *sasl;
	size_t sasl_len;
	switch (type) {
	case 'Q':
		s = (const char *)body;
		read_query(s, strnlen(s, len));
		break;
	case 'P': /* Parse: statement name, then the query */
		if (proto_take_string(&p, end) != NULL && (s = proto_take_string(&p, end)) != NULL)
			read_query(s, strlen(s));
		break;
	case 'p': /* PasswordMessage or SASLInitialResponse or SASLResponse */
		if (proto_parse_sasl_initial(body, len, &mech, &sasl, &sasl_len) &&
		    sasl + sasl_len != end)
			__builtin_trap();
		proto_take_string(&p, end);
		break;
	case 'B':
	case 'C':
	case 'D':
	case 'E':
		while (p < end && proto_take_string(&p, end) != NULL)
			continue;
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_startup st;
	/* The parser itself on any length, whatever the header says. */
	proto_parse_startup(data, size, &st);
	const uint8_t *p = data, *end = data + size;
	for (;;) {
		size_t have = (size_t)(end - p);
		if (have < 4)
			return 0;
		uint32_t len = proto_get_u32(p);
		if (len < 8 || len > MAX_STARTUP)
			return 0;
		if (have < len)
			return 0;
		const char *err = proto_parse_startup(p, len, &st);
		if (err != NULL)
			return 0;
		p += len;
		if (st.code == PROTO_SSL_REQUEST || st.code == PROTO_GSSENC_REQUEST) {
			if (len != 8)
				__builtin_trap();
			continue;
		}
		if (st.code == PROTO_CANCEL_REQUEST) {
			if (len != 16)
				__builtin_trap();
			return 0;
		}
		if (st.code >> 16 != 3)
			__builtin_trap();
		take_v3(&st, p - len, len);
		break;
	}
	size_t rest = (size_t)(end - p);
	uint64_t whole = fuzz_stream_run(p, rest, 0, MAX_PACKET, on_message, NULL);
	uint64_t bytes = fuzz_stream_run(p, rest, 1, MAX_PACKET, on_message, NULL);
	uint64_t chunks = fuzz_stream_run(p, rest, 1 + rest % 97, MAX_PACKET, on_message, NULL);
	if (whole != bytes || whole != chunks)
		__builtin_trap();
	return 0;
}
