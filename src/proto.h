/*
 * proto.h - PostgreSQL v3 protocol: framing, message builders and readers.
 *
 * Pure functions, no I/O: builders append whole messages to a struct obuf,
 * readers validate a message body that the caller already framed and return
 * pointers into it (nothing is copied). The forward path itself only needs
 * proto_get_u32() on message headers; everything else here serves the
 * decisions that look inside a message (startup, authentication, errors,
 * parameter status, ready-for-query).
 */
#ifndef PGSLUICE_PROTO_H
#define PGSLUICE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PROTO_V3 196608u
#define PROTO_SSL_REQUEST 80877103u
#define PROTO_GSSENC_REQUEST 80877104u
#define PROTO_CANCEL_REQUEST 80877102u

/* A message header: one type byte and a length that counts itself. */
#define PROTO_HEADER_LEN 5

enum proto_auth_code {
	PROTO_AUTH_OK = 0,
	PROTO_AUTH_CLEARTEXT = 3,
	PROTO_AUTH_MD5 = 5,
	PROTO_AUTH_SASL = 10,
	PROTO_AUTH_SASL_CONTINUE = 11,
	PROTO_AUTH_SASL_FINAL = 12,
};

static inline uint32_t proto_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint16_t proto_get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Most startup parameters one client may send (more is a protocol error). */
#define PROTO_MAX_STARTUP_PARAMS 64

/* A parsed startup-phase packet (the one without a type byte). */
struct proto_startup {
	uint32_t code; /* PROTO_V3 (or another version), or a *_REQUEST code */
	/* PROTO_CANCEL_REQUEST: */
	uint32_t cancel_pid;
	uint32_t cancel_key;
	/* version 3: parameters, pointers into the packet */
	size_t n_params;
	const char *names[PROTO_MAX_STARTUP_PARAMS];
	const char *values[PROTO_MAX_STARTUP_PARAMS];
};

/*
 * Parses a startup packet of len bytes (including its 4-byte length).
 * Returns NULL on success, else a short reason for the client's 08P01.
 */
const char *proto_parse_startup(const uint8_t *pkt, size_t len, struct proto_startup *out);

/* The value of a startup parameter, or NULL. */
const char *proto_startup_get(const struct proto_startup *st, const char *name);

/* Fields of an ErrorResponse or NoticeResponse. Absent ones are NULL. */
struct proto_error {
	const char *severity; /* localized 'S', or the 'V' field */
	const char *sqlstate;
	const char *message;
	const char *detail;
	const char *hint;
};

/*
 * The message at *off of data (len bytes of whole messages, as a kept request
 * holds them), its size in *total, *off moved past it; NULL at the end or at a
 * length that does not fit.
 */
const uint8_t *proto_next_message(const uint8_t *data, size_t len, size_t *off, uint32_t *total);

/* Next NUL-terminated string in [*p, end), moving *p past it; NULL when none terminates. */
const char *proto_take_string(const uint8_t **p, const uint8_t *end);

/* Reads the fields of an error/notice body; false when malformed. */
bool proto_parse_error(const uint8_t *body, size_t len, struct proto_error *out);

/* Reads a ParameterStatus body; false when malformed. */
bool proto_parse_param_status(const uint8_t *body, size_t len, const char **name,
			      const char **value);

/* Reads a SASLInitialResponse body; false when malformed. */
bool proto_parse_sasl_initial(const uint8_t *body, size_t len, const char **mechanism,
			      const uint8_t **data, size_t *data_len);

/* true when the NUL-terminated strings list (SASL mechanisms) holds name. */
bool proto_sasl_offers(const uint8_t *list, size_t len, const char *name);

/* Builders: each appends one complete message. */
void proto_put_error(struct obuf *ob, bool fatal, const char *sqlstate, const char *message,
		     const char *detail, const char *hint);
void proto_put_ready(struct obuf *ob, char status);
void proto_put_auth(struct obuf *ob, uint32_t code, const void *data, size_t len);
void proto_put_param_status(struct obuf *ob, const char *name, const char *value);
void proto_put_backend_key(struct obuf *ob, uint32_t pid, uint32_t key);
void proto_put_query(struct obuf *ob, const char *sql);
void proto_put_password(struct obuf *ob, const char *password);
void proto_put_sasl_initial(struct obuf *ob, const char *mechanism, const void *data, size_t len);
void proto_put_sasl_response(struct obuf *ob, const void *data, size_t len);
void proto_put_cancel(struct obuf *ob, uint32_t pid, uint32_t key);
void proto_put_terminate(struct obuf *ob);
/* StartupMessage v3.0 with names[i]=values[i] for i < n. */
void proto_put_startup(struct obuf *ob, const char *const *names, const char *const *values,
		       size_t n);
/* NegotiateProtocolVersion: newest minor version supported, unknown options. */
void proto_put_negotiate(struct obuf *ob, uint32_t minor, const char *const *options, size_t n);

/* Appends text as an E'' SQL literal (no NUL) to ob. */
void proto_put_sql_literal(struct obuf *ob, const char *text);

#endif
