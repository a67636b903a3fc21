/*
 * auxconn.c - the parameters of pgsluice's own libpq connections (see auxconn.h).
 *
 * health.c, authquery.c and explain.c say where and as whom they connect in a struct
 * auxconn_spec; this file turns it into libpq's keyword arrays, with the TLS that
 * server_tls_* asks for, and starts the connect. Nothing here blocks or keeps state.
 */
#include "auxconn.h"

#include <arpa/inet.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void auxconn_tls_from_config(const struct config *cfg, struct auxconn_tls *out)
{
	out->mode = (enum tls_mode)cfg->server_tls_mode;
	out->ca_file = cfg->server_tls_ca_file;
	out->cert_file = cfg->server_tls_cert_file;
	out->key_file = cfg->server_tls_key_file;
	out->protocols = cfg->server_tls_protocols;
}

char *auxconn_tls_copy(struct auxconn_tls *dst, const struct auxconn_tls *src)
{
	const char *from[] = {src->ca_file, src->cert_file, src->key_file, src->protocols};
	size_t len[sizeof(from) / sizeof(from[0])], total = 1;
	for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
		len[i] = from[i] != NULL ? strlen(from[i]) + 1 : 0;
		total += len[i];
	}
	char *block = malloc(total);
	if (block == NULL)
		return NULL;
	const char **to[] = {&dst->ca_file, &dst->cert_file, &dst->key_file, &dst->protocols};
	char *at = block;
	for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
		*to[i] = from[i] != NULL ? memcpy(at, from[i], len[i]) : NULL;
		at += len[i];
	}
	dst->mode = src->mode;
	return block;
}

const char *auxconn_sslmode(enum tls_mode mode, const char *host)
{
	if (host != NULL && host[0] == '/')
		return "disable";
	/* pgsluice's allow never upgrades to TLS; libpq's would after a refused login. */
	return mode == TLS_MODE_ALLOW ? "disable" : tls_mode_name(mode);
}

static bool auxconn_is_set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* Appends key = value when value is set. */
static void auxconn_add(struct auxconn_params *out, size_t *n, const char *key, const char *value)
{
	if (!auxconn_is_set(value) || *n >= AUXCONN_PARAMS_MAX)
		return;
	out->keys[*n] = key;
	out->values[*n] = value;
	(*n)++;
}

size_t auxconn_params_build(const struct auxconn_spec *spec, struct auxconn_params *out)
{
	size_t n = 0;
	unsigned char addr[sizeof(struct in6_addr)];
	auxconn_add(out, &n, "host", spec->host);
	if (spec->host != NULL && (inet_pton(AF_INET, spec->host, addr) == 1 ||
				   inet_pton(AF_INET6, spec->host, addr) == 1)) {
		snprintf(out->hostaddr, sizeof(out->hostaddr), "%s", spec->host);
		auxconn_add(out, &n, "hostaddr", out->hostaddr);
	}
	if (spec->port > 0) {
		snprintf(out->port, sizeof(out->port), "%d", spec->port);
		auxconn_add(out, &n, "port", out->port);
	}
	auxconn_add(out, &n, "dbname", spec->dbname);
	auxconn_add(out, &n, "user", spec->user);
	auxconn_add(out, &n, "password", spec->password);
	auxconn_add(out, &n, "application_name", spec->application_name);
	if (spec->connect_timeout > 0) {
		double whole = ceil(spec->connect_timeout);
		snprintf(out->connect_timeout, sizeof(out->connect_timeout), "%.0f",
			 whole > INT_MAX ? INT_MAX : whole);
		auxconn_add(out, &n, "connect_timeout", out->connect_timeout);
	}
	auxconn_add(out, &n, "options", spec->options);
	/* Always said: libpq's own default (prefer, or PGSSLMODE) must not decide. */
	const char *sslmode = auxconn_sslmode(spec->tls.mode, spec->host);
	auxconn_add(out, &n, "sslmode", sslmode);
	if (strcmp(sslmode, "disable") != 0) {
		auxconn_add(out, &n, "sslrootcert", spec->tls.ca_file);
		auxconn_add(out, &n, "sslcert", spec->tls.cert_file);
		auxconn_add(out, &n, "sslkey", spec->tls.key_file);
		/* A value pgsluice does not know goes to libpq as it is, which refuses it. */
		const char *floor = tls_protocols_floor(spec->tls.protocols);
		auxconn_add(out, &n, "ssl_min_protocol_version",
			    floor != NULL ? floor : spec->tls.protocols);
	}
	out->keys[n] = NULL;
	out->values[n] = NULL;
	return n;
}

PGconn *auxconn_start(const struct auxconn_spec *spec)
{
	struct auxconn_params params;
	auxconn_params_build(spec, &params);
	/* expand_dbname = 0: a database name is never read as a connection string. */
	return PQconnectStartParams(params.keys, params.values, 0);
}
