/*
 * auth.c - authentication of clients against the auth file (auth.h).
 *
 * Sits between the startup packet and the welcome: client.c calls
 * auth_begin() once the startup packet is read and auth_handle() for each
 * password or SASL message, until one of them says OK or FAILED.
 */
#include "auth.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "password.h"
#include "proto.h"
#include "scram.h"
#include "scramkeys.h"
#include "userlist.h"

/* Starts a SCRAM exchange; an unknown user gets a mock one that fails at the end. */
static enum auth_result auth_begin_scram(struct client *c, const char *secret)
{
	c->scram = calloc(1, sizeof(*c->scram));
	if (c->scram == NULL)
		return AUTH_FAILED;
	bool ok = secret != NULL && password_kind_of(secret) != PASSWORD_MD5
			  ? scram_server_init(c->scram, secret, c->user)
			  : scram_server_init_mock(c->scram, c->user);
	if (!ok)
		return AUTH_FAILED;
	static const char mechanisms[] = "SCRAM-SHA-256\0";
	proto_put_auth(&c->conn.out, PROTO_AUTH_SASL, mechanisms, sizeof(mechanisms));
	c->auth_step = AUTH_STEP_SCRAM_FIRST;
	return AUTH_CONTINUE;
}

enum auth_result auth_begin(struct worker *w, struct client *c)
{
	const char *secret = userlist_find(w->users, c->user);
	switch ((enum auth_type)w->cfg->auth_type) {
	case AUTH_TRUST:
		return AUTH_OK;
	case AUTH_MD5:
		/* As PostgreSQL does, a user whose secret is SCRAM is asked for SCRAM. */
		if (secret != NULL && password_kind_of(secret) == PASSWORD_SCRAM)
			return auth_begin_scram(c, secret);
		if (!password_random_bytes(c->md5_salt, sizeof(c->md5_salt)))
			return AUTH_FAILED;
		proto_put_auth(&c->conn.out, PROTO_AUTH_MD5, c->md5_salt, sizeof(c->md5_salt));
		c->auth_step = AUTH_STEP_MD5;
		return AUTH_CONTINUE;
	case AUTH_SCRAM:
		return auth_begin_scram(c, secret);
	}
	return AUTH_FAILED;
}

static enum auth_result auth_scram_first(struct client *c, const uint8_t *body, uint32_t len)
{
	const char *mechanism;
	const uint8_t *data;
	size_t dlen;
	if (!proto_parse_sasl_initial(body, len, &mechanism, &data, &dlen) ||
	    strcmp(mechanism, "SCRAM-SHA-256") != 0) {
		log_info("client %s: unsupported SASL mechanism", c->addr);
		return AUTH_FAILED;
	}
	char reply[512];
	const char *err = NULL;
	if (!scram_server_handle_first(c->scram, (const char *)data, dlen, reply, sizeof(reply),
				       &err)) {
		log_info("client %s: SCRAM: %s", c->addr, err != NULL ? err : "bad client-first");
		return AUTH_FAILED;
	}
	proto_put_auth(&c->conn.out, PROTO_AUTH_SASL_CONTINUE, reply, strlen(reply));
	c->auth_step = AUTH_STEP_SCRAM_FINAL;
	return AUTH_CONTINUE;
}

static enum auth_result auth_scram_final(struct client *c, const uint8_t *body, uint32_t len)
{
	char reply[512];
	const char *err = NULL;
	if (!scram_server_handle_final(c->scram, (const char *)body, len, reply, sizeof(reply),
				       &err)) {
		log_info("client %s: SCRAM for user \"%s\": %s", c->addr, c->user,
			 err != NULL ? err : "failed");
		return AUTH_FAILED;
	}
	proto_put_auth(&c->conn.out, PROTO_AUTH_SASL_FINAL, reply, strlen(reply));
	return AUTH_OK;
}

enum auth_result auth_handle(struct worker *w, struct client *c, const uint8_t *body, uint32_t len)
{
	switch (c->auth_step) {
	case AUTH_STEP_MD5: {
		const char *secret = userlist_find(w->users, c->user);
		if (len == 0 || body[len - 1] != 0)
			return AUTH_FAILED;
		if (secret == NULL ||
		    !password_md5_check(secret, c->user, c->md5_salt, (const char *)body)) {
			log_info("client %s: md5 authentication failed for user \"%s\"", c->addr,
				 c->user);
			return AUTH_FAILED;
		}
		return AUTH_OK;
	}
	case AUTH_STEP_SCRAM_FIRST:
		return auth_scram_first(c, body, len);
	case AUTH_STEP_SCRAM_FINAL: {
		enum auth_result r = auth_scram_final(c, body, len);
		/* The proved ClientKey lets servers be logged in to with a SCRAM secret alone. */
		if (r == AUTH_OK && c->scram->have_client_key &&
		    !scramkeys_learn(&w->scram_keys, c->scram->client_key))
			log_warning("out of memory keeping a SCRAM key for pass-through");
		return r;
	}
	case AUTH_STEP_NONE:
		break;
	}
	return AUTH_FAILED;
}

void auth_clear(struct client *c)
{
	if (c->scram != NULL)
		scram_server_clear(c->scram);
	free(c->scram);
	c->scram = NULL;
	c->auth_step = AUTH_STEP_NONE;
}
