/*
 * auxconn.h - how pgsluice opens a libpq connection of its own to a server.
 *
 * Besides the server connections it pools (server.c, which speaks the protocol
 * itself), pgsluice opens libpq connections for the health probes (health.c), the
 * auth_query lookups (authquery.c) and the plan captures (explain.c). This module
 * builds their connection parameters in one place, TLS included: they follow
 * server_tls_mode and its files as the pooled connections do, so that verify-full
 * verifies every connection pgsluice makes to a server. Connects are non-blocking:
 * the caller polls the PGconn with PQconnectPoll on its event loop.
 */
#ifndef PGSLUICE_AUXCONN_H
#define PGSLUICE_AUXCONN_H

#include <libpq-fe.h>
#include <netinet/in.h>
#include <stddef.h>

#include "config.h"
#include "tls.h"

/* Most parameters one connection passes to libpq (the NULL that ends the arrays aside). */
#define AUXCONN_PARAMS_MAX 16

/* The server_tls_* keys that auxiliary connections follow (borrowed strings; NULL or "" = unset). */
struct auxconn_tls {
	enum tls_mode mode;
	const char *ca_file;   /* sslrootcert */
	const char *cert_file; /* sslcert */
	const char *key_file;  /* sslkey */
	const char *protocols; /* as server_tls_protocols: sets ssl_min_protocol_version */
};

/* Where, as whom and how one auxiliary connection logs in (borrowed strings). */
struct auxconn_spec {
	const char *host;             /* a name, a numeric address or a socket directory; NULL: libpq's */
	int port;                     /* <= 0: libpq's default */
	const char *dbname;           /* NULL: libpq's default (the user name) */
	const char *user;             /* NULL: libpq's default */
	const char *password;         /* NULL: none (trust, .pgpass) */
	const char *application_name; /* what pg_stat_activity shows, e.g. "pgsluice-health" */
	double connect_timeout;       /* seconds, rounded up to a whole one; <= 0: not passed */
	const char *options;          /* the server's command-line options; NULL: none */
	struct auxconn_tls tls;
};

/* The parameter arrays for PQconnectStartParams, and the texts they point to. */
struct auxconn_params {
	const char *keys[AUXCONN_PARAMS_MAX + 1];   /* NULL-terminated */
	const char *values[AUXCONN_PARAMS_MAX + 1]; /* NULL-terminated, one per key */
	char hostaddr[INET6_ADDRSTRLEN];
	char port[16];
	char connect_timeout[16];
};

/*
 * The TLS settings of cfg that auxiliary connections follow.
 * cfg: the configuration; out's strings point into it, so take a copy
 *      (auxconn_tls_copy) to keep them past a reload.
 * out: receives the settings.
 */
void auxconn_tls_from_config(const struct config *cfg, struct auxconn_tls *out);

/*
 * Copies src into one allocation that dst's strings then point into.
 * dst: receives the copy; may be src itself.
 * src: the settings to copy.
 * Returns the allocation, to free() once dst is no longer used, or NULL when memory ran
 * out (dst is then unchanged).
 */
char *auxconn_tls_copy(struct auxconn_tls *dst, const struct auxconn_tls *src);

/*
 * The libpq sslmode of an auxiliary connection: mode's own name, except that "allow"
 * means plaintext in pgsluice (doc/tls.md) and that a server reached over a unix socket
 * is spoken to in plaintext, as server.c does.
 * mode: server_tls_mode.
 * host: the connection's host; one starting with '/' is a socket directory.
 * Returns "disable", "prefer", "require", "verify-ca" or "verify-full" (static).
 */
const char *auxconn_sslmode(enum tls_mode mode, const char *host);

/*
 * Fills the parameter arrays of spec: host, and hostaddr when host is a numeric address
 * (so that libpq makes no name lookup, which would block the loop), port, dbname, user,
 * password, application_name, connect_timeout and options when given, and sslmode; in
 * a mode other than disable also sslrootcert, sslcert and sslkey when set and
 * ssl_min_protocol_version.
 * spec: the connection; out keeps pointers to its strings.
 * out: receives the arrays.
 * Returns the number of parameters (at most AUXCONN_PARAMS_MAX).
 */
size_t auxconn_params_build(const struct auxconn_spec *spec, struct auxconn_params *out);

/*
 * Starts a non-blocking connect with spec's parameters (PQconnectStartParams, a database
 * name never read as a connection string). libpq copies what it needs: spec's strings
 * may go once this returns.
 * spec: the connection.
 * Returns the connection (PQfinish it), CONNECTION_BAD when the parameters were refused,
 * or NULL when memory ran out.
 */
PGconn *auxconn_start(const struct auxconn_spec *spec);

#endif
