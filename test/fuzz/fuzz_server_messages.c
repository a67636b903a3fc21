/*
 * fuzz_server_messages.c - libFuzzer target: what a PostgreSQL server sends.
 *
 * The input is first handed whole, as one message body, to every reader of
 * proto.h; then it is read as a server's byte stream: framed by the real
 * reader (fuzz_stream.c) at once, byte by byte and in input-sized chunks,
 * which must all frame the same messages, each whole body going to the
 * reader for its type (errors, notices, parameter status, authentication
 * requests). Every pointer a reader returns must lie inside the body.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_stream.h"
#include "params.h"
#include "proto.h"

/* Small enough that the reader's length check is reached often. */
#define MAX_PACKET (16u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* s points into [body, body + len) and its NUL does too. */
static void check_inside(const char *s, const uint8_t *body, size_t len)
{
	if (s == NULL)
		return;
	const uint8_t *p = (const uint8_t *)s;
	if (p < body || p >= body + len || memchr(p, 0, (size_t)(body + len - p)) == NULL)
		__builtin_trap();
}

/* Every reader of proto.h on one body. */
static void read_body(const uint8_t *body, size_t len, struct params *ps)
{
	struct proto_error e;
	if (proto_parse_error(body, len, &e)) {
		check_inside(e.severity, body, len);
		check_inside(e.sqlstate, body, len);
		check_inside(e.message, body, len);
		check_inside(e.detail, body, len);
		check_inside(e.hint, body, len);
	}
	const char *name, *value;
	if (proto_parse_param_status(body, len, &name, &value)) {
		check_inside(name, body, len);
		check_inside(value, body, len);
		if (ps != NULL)
			params_set(ps, name, value, true);
	}
	const char *mech;
	const uint8_t *sasl;
	size_t sasl_len;
	if (proto_parse_sasl_initial(body, len, &mech, &sasl, &sasl_len)) {
		check_inside(mech, body, len);
		if (sasl < body || sasl_len > len || sasl + sasl_len != body + len)
			__builtin_trap();
	}
	proto_sasl_offers(body, len, "SCRAM-SHA-256");
	proto_sasl_offers(body, len, "SCRAM-SHA-256-PLUS");
	const uint8_t *p = body, *end = body + len;
	const char *s;
	while ((s = proto_take_string(&p, end)) != NULL) {
		check_inside(s, body, len);
		if (p > end)
			__builtin_trap();
	}
}

/* A server message, read the way server.c reads its type. */
static void on_message(void *arg, uint8_t type, uint32_t total, const uint8_t *body,
		       uint32_t len)
{
	struct params *ps = arg;
	struct proto_error e;
	const char *name, *value;
	if (body == NULL)
		return;
	switch (type) {
	case 'E':
	case 'N':
		if (proto_parse_error(body, len, &e)) {
			check_inside(e.severity, body, len);
			check_inside(e.sqlstate, body, len);
			check_inside(e.message, body, len);
		}
		break;
	case 'S':
		if (proto_parse_param_status(body, len, &name, &value))
			params_set(ps, name, value, true);
		break;
	case 'R':
		if (len >= 4 && proto_get_u32(body) == PROTO_AUTH_SASL)
			proto_sasl_offers(body + 4, len - 4, "SCRAM-SHA-256");
		break;
	default:
		break;
	}
	if (total != len + PROTO_HEADER_LEN)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct params ps;
	params_init(&ps);
	read_body(data, size, &ps);
	uint64_t whole = fuzz_stream_run(data, size, 0, MAX_PACKET, on_message, &ps);
	uint64_t bytes = fuzz_stream_run(data, size, 1, MAX_PACKET, on_message, &ps);
	uint64_t chunks = fuzz_stream_run(data, size, 1 + size % 97, MAX_PACKET, on_message, &ps);
	if (whole != bytes || whole != chunks)
		__builtin_trap();
	params_free(&ps);
	return 0;
}
