/*
 * explain.h - asynchronous plan capture for slow statements.
 *
 * An explainer asks a server for the plan of a statement that ran slowly:
 * EXPLAIN (FORMAT JSON, VERBOSE, SETTINGS) on libpq connections of its own,
 * driven only by libpq's asynchronous calls on the worker's event loop, so
 * that no client ever waits for a capture. Captures are rate limited per
 * fingerprint, queued within a bound, timed out, and run on at most a few
 * connections that are kept open between captures.
 */
#ifndef PGSLUICE_EXPLAIN_H
#define PGSLUICE_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auxconn.h"

struct ev_loop;
struct explainer;

/* Where and as whom a capture logs in; explain_submit copies the strings. */
struct explain_login {
	const char *host;        /* a name, a numeric address or a socket directory */
	int port;
	const char *dbname;
	const char *user;
	const char *password;    /* NULL: none (trust, .pgpass) */
	const char *search_path; /* the client's search_path, or NULL: sent as options=-c */
};

/* Settings, at creation and on reload. */
struct explain_settings {
	double interval;        /* seconds between two captures of a fingerprint; <= 0: no limit */
	double timeout;         /* seconds a capture may take from its submit; <= 0: 5 */
	size_t queue_max;       /* captures waiting for a connection */
	int max_connections;    /* libpq connections in all; < 1 counts as 1 */
	double analyze_statement_timeout; /* seconds, for ANALYZE runs; <= 0: timeout */
	struct auxconn_tls tls;           /* TLS toward the servers (copied) */
};

/*
 * The outcome of one capture.
 * arg: the request's arg.
 * plan: the JSON text EXPLAIN returned (the single column of its single
 *       row, a JSON array), malloc'd and NUL-terminated, which the callee
 *       owns and frees; NULL when there is none.
 * skipped: when plan is NULL, why: "rate limited", "queue full", "timeout",
 *       "out of memory", "connect failed: <libpq message>", "explain failed:
 *       <server message>" or "pgsluice is stopping". Valid during the call
 *       only (the longer texts live in the request, freed after it returns).
 */
typedef void (*explain_done_fn)(void *arg, char *plan, const char *skipped);

/* One statement to explain; explain_submit copies everything it points to. */
struct explain_request {
	uint64_t fingerprint;               /* the rate limit's key */
	struct explain_login login;         /* the server that ran the statement, and as whom */
	const char *sql;                    /* one statement, without a NUL byte */
	size_t sql_len;
	int n_params;                       /* bound parameters of an extended-protocol statement */
	const char *const *param_values;    /* n_params text values; a NULL entry = SQL NULL */
	const uint32_t *param_types;        /* n_params type OIDs (0 = unspecified), or NULL */
	bool analyze;                       /* EXPLAIN (ANALYZE, BUFFERS): proven read-only only */
	explain_done_fn done;
	void *arg;
};

/* What an explainer did since it was created. */
struct explainer_counters {
	uint64_t submitted;    /* explain_submit calls */
	uint64_t run;          /* captures that returned a plan */
	uint64_t rate_limited; /* skipped: the fingerprint was captured within interval */
	uint64_t queue_full;   /* skipped: the queue was full */
	uint64_t timed_out;    /* given up after timeout */
	uint64_t failed;       /* connect or EXPLAIN failed, out of memory, NUL in text, stopping */
	uint64_t connections;  /* libpq connections open now */
};

/*
 * Makes an explainer that runs on loop. Nothing is opened until the first
 * capture.
 * loop: the worker's loop; it must outlive the explainer.
 * s: the settings (copied).
 * Returns NULL when memory is exhausted.
 */
struct explainer *explainer_create(struct ev_loop *loop, const struct explain_settings *s);

/*
 * Applies new settings (reload). A new timeout counts for later submits; a
 * lower connection cap closes idle connections now and busy ones as their
 * captures end; captures already queued stay queued. A higher cap starts
 * queued captures at once (a done may then run before this returns). New TLS
 * settings count for connections opened later; open ones stay as they are.
 * Returns false when memory ran out (the settings in force stay).
 */
bool explainer_configure(struct explainer *ex, const struct explain_settings *s);

/*
 * Asks for the plan of req's statement. req->done is called exactly once:
 * before explain_submit returns when the capture is skipped at once (rate
 * limited, queue full, out of memory, a NUL in the text, or libpq refusing
 * to start a connection), otherwise from the loop. done may call
 * explain_submit, never explainer_free.
 * Without parameters the statement runs as EXPLAIN (...) sql; with them it
 * is prepared as pgsluice_explain with the given types and explained as
 * EXECUTE pgsluice_explain('value', ...), then deallocated. The text always
 * goes through the extended protocol, so that a second statement hidden in
 * it is refused instead of run. With analyze, everything runs inside BEGIN
 * READ ONLY with SET LOCAL statement_timeout, ended by ROLLBACK.
 * A host name (not a numeric address or a socket directory) costs a
 * blocking name lookup in libpq.
 */
void explain_submit(struct explainer *ex, const struct explain_request *req);

/*
 * Ends every capture with done(NULL, "pgsluice is stopping"), closes every
 * connection, stops the timer and frees ex. ex may be NULL.
 */
void explainer_free(struct explainer *ex);

/* Copies ex's counters into out. */
void explainer_stats(const struct explainer *ex, struct explainer_counters *out);

#endif
