/*
 * proto.c - PostgreSQL v3 protocol builders and readers (see proto.h).
 */
#include "proto.h"

#include <string.h>

const uint8_t *proto_next_message(const uint8_t *data, size_t len, size_t *off, uint32_t *total)
{
	if (len - *off < PROTO_HEADER_LEN)
		return NULL;
	const uint8_t *msg = data + *off;
	*total = 1 + proto_get_u32(msg + 1);
	if (*total < PROTO_HEADER_LEN || *total > len - *off)
		return NULL;
	*off += *total;
	return msg;
}

const char *proto_take_string(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nul = memchr(*p, 0, (size_t)(end - *p));
	if (nul == NULL)
		return NULL;
	const char *s = (const char *)*p;
	*p = nul + 1;
	return s;
}

const char *proto_parse_startup(const uint8_t *pkt, size_t len, struct proto_startup *out)
{
	memset(out, 0, sizeof(*out));
	if (len < 8 || proto_get_u32(pkt) != len)
		return "invalid startup packet length";
	out->code = proto_get_u32(pkt + 4);
	if (out->code == PROTO_SSL_REQUEST || out->code == PROTO_GSSENC_REQUEST)
		return len == 8 ? NULL : "invalid length of encryption request";
	if (out->code == PROTO_CANCEL_REQUEST) {
		if (len != 16)
			return "invalid length of cancel request";
		out->cancel_pid = proto_get_u32(pkt + 8);
		out->cancel_key = proto_get_u32(pkt + 12);
		return NULL;
	}
	if (out->code >> 16 != 3)
		return "unsupported frontend protocol";
	const uint8_t *p = pkt + 8, *end = pkt + len;
	for (;;) {
		if (p >= end)
			return "startup packet is not terminated";
		if (*p == 0) {
			if (p + 1 != end)
				return "junk after the startup packet's parameters";
			return NULL;
		}
		const char *name = proto_take_string(&p, end);
		const char *value = name != NULL ? proto_take_string(&p, end) : NULL;
		if (value == NULL)
			return "startup parameter is not terminated";
		if (out->n_params == PROTO_MAX_STARTUP_PARAMS)
			return "too many startup parameters";
		out->names[out->n_params] = name;
		out->values[out->n_params] = value;
		out->n_params++;
	}
}

const char *proto_startup_get(const struct proto_startup *st, const char *name)
{
	for (size_t i = 0; i < st->n_params; i++)
		if (strcmp(st->names[i], name) == 0)
			return st->values[i];
	return NULL;
}

bool proto_parse_error(const uint8_t *body, size_t len, struct proto_error *out)
{
	memset(out, 0, sizeof(*out));
	const uint8_t *p = body, *end = body + len;
	while (p < end && *p != 0) {
		uint8_t field = *p++;
		const char *value = proto_take_string(&p, end);
		if (value == NULL)
			return false;
		switch (field) {
		case 'S':
			if (out->severity == NULL)
				out->severity = value;
			break;
		case 'V':
			out->severity = value;
			break;
		case 'C':
			out->sqlstate = value;
			break;
		case 'M':
			out->message = value;
			break;
		case 'D':
			out->detail = value;
			break;
		case 'H':
			out->hint = value;
			break;
		default:
			break;
		}
	}
	return p < end && p + 1 == end;
}

bool proto_parse_param_status(const uint8_t *body, size_t len, const char **name,
			      const char **value)
{
	const uint8_t *p = body, *end = body + len;
	*name = proto_take_string(&p, end);
	*value = *name != NULL ? proto_take_string(&p, end) : NULL;
	return *value != NULL && p == end;
}

bool proto_parse_sasl_initial(const uint8_t *body, size_t len, const char **mechanism,
			      const uint8_t **data, size_t *data_len)
{
	const uint8_t *p = body, *end = body + len;
	*mechanism = proto_take_string(&p, end);
	if (*mechanism == NULL || end - p < 4)
		return false;
	uint32_t n = proto_get_u32(p);
	p += 4;
	if (n == 0xffffffffu)
		n = 0;
	if ((size_t)(end - p) != n)
		return false;
	*data = p;
	*data_len = n;
	return true;
}

bool proto_sasl_offers(const uint8_t *list, size_t len, const char *name)
{
	const uint8_t *p = list, *end = list + len;
	while (p < end && *p != 0) {
		const char *mech = proto_take_string(&p, end);
		if (mech == NULL)
			return false;
		if (strcmp(mech, name) == 0)
			return true;
	}
	return false;
}

void proto_put_error(struct obuf *ob, bool fatal, const char *sqlstate, const char *message,
		     const char *detail, const char *hint)
{
	const char *severity = fatal ? "FATAL" : "ERROR";
	obuf_msg_begin(ob, 'E');
	obuf_put_u8(ob, 'S');
	obuf_put_str(ob, severity);
	obuf_put_u8(ob, 'V');
	obuf_put_str(ob, severity);
	obuf_put_u8(ob, 'C');
	obuf_put_str(ob, sqlstate);
	obuf_put_u8(ob, 'M');
	obuf_put_str(ob, message);
	if (detail != NULL) {
		obuf_put_u8(ob, 'D');
		obuf_put_str(ob, detail);
	}
	if (hint != NULL) {
		obuf_put_u8(ob, 'H');
		obuf_put_str(ob, hint);
	}
	obuf_put_u8(ob, 0);
	obuf_msg_end(ob);
}

void proto_put_ready(struct obuf *ob, char status)
{
	obuf_msg_begin(ob, 'Z');
	obuf_put_u8(ob, (uint8_t)status);
	obuf_msg_end(ob);
}

void proto_put_auth(struct obuf *ob, uint32_t code, const void *data, size_t len)
{
	obuf_msg_begin(ob, 'R');
	obuf_put_u32(ob, code);
	if (len > 0)
		obuf_put(ob, data, len);
	obuf_msg_end(ob);
}

void proto_put_param_status(struct obuf *ob, const char *name, const char *value)
{
	obuf_msg_begin(ob, 'S');
	obuf_put_str(ob, name);
	obuf_put_str(ob, value);
	obuf_msg_end(ob);
}

void proto_put_backend_key(struct obuf *ob, uint32_t pid, uint32_t key)
{
	obuf_msg_begin(ob, 'K');
	obuf_put_u32(ob, pid);
	obuf_put_u32(ob, key);
	obuf_msg_end(ob);
}

void proto_put_query(struct obuf *ob, const char *sql)
{
	obuf_msg_begin(ob, 'Q');
	obuf_put_str(ob, sql);
	obuf_msg_end(ob);
}

void proto_put_password(struct obuf *ob, const char *password)
{
	obuf_msg_begin(ob, 'p');
	obuf_put_str(ob, password);
	obuf_msg_end(ob);
}

void proto_put_sasl_initial(struct obuf *ob, const char *mechanism, const void *data, size_t len)
{
	obuf_msg_begin(ob, 'p');
	obuf_put_str(ob, mechanism);
	obuf_put_u32(ob, (uint32_t)len);
	obuf_put(ob, data, len);
	obuf_msg_end(ob);
}

void proto_put_sasl_response(struct obuf *ob, const void *data, size_t len)
{
	obuf_msg_begin(ob, 'p');
	obuf_put(ob, data, len);
	obuf_msg_end(ob);
}

void proto_put_cancel(struct obuf *ob, uint32_t pid, uint32_t key)
{
	obuf_msg_begin(ob, 0);
	obuf_put_u32(ob, PROTO_CANCEL_REQUEST);
	obuf_put_u32(ob, pid);
	obuf_put_u32(ob, key);
	obuf_msg_end(ob);
}

void proto_put_terminate(struct obuf *ob)
{
	obuf_msg_begin(ob, 'X');
	obuf_msg_end(ob);
}

void proto_put_startup(struct obuf *ob, const char *const *names, const char *const *values,
		       size_t n)
{
	obuf_msg_begin(ob, 0);
	obuf_put_u32(ob, PROTO_V3);
	for (size_t i = 0; i < n; i++) {
		obuf_put_str(ob, names[i]);
		obuf_put_str(ob, values[i]);
	}
	obuf_put_u8(ob, 0);
	obuf_msg_end(ob);
}

void proto_put_negotiate(struct obuf *ob, uint32_t minor, const char *const *options, size_t n)
{
	obuf_msg_begin(ob, 'v');
	obuf_put_u32(ob, minor);
	obuf_put_u32(ob, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		obuf_put_str(ob, options[i]);
	obuf_msg_end(ob);
}

void proto_put_sql_literal(struct obuf *ob, const char *text)
{
	/* E'' reads the same whatever standard_conforming_strings says. */
	obuf_put(ob, "E'", 2);
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\'' || *p == '\\')
			obuf_put_u8(ob, (uint8_t)*p);
		obuf_put_u8(ob, (uint8_t)*p);
	}
	obuf_put_u8(ob, '\'');
}
