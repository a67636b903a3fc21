/*
 * authquery.h - secrets of users the auth file does not name, asked of the server.
 *
 * An authquery object logs in to one server as auth_user and runs auth_query
 * (the user name as its only parameter) to learn a user's secret, in
 * pg_authid's format: plaintext, "md5..." or "SCRAM-SHA-256$..." (see
 * password.h). It runs on the worker's event loop with libpq's asynchronous
 * calls only, on one connection kept open between lookups, one query at a
 * time. Answers are cached for a while; concurrent lookups of one user share
 * one query. It is meant for auth.c, for users userlist_find does not know.
 */
#ifndef PGSLUICE_AUTHQUERY_H
#define PGSLUICE_AUTHQUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "auxconn.h"

struct ev_loop;
struct authquery;
struct authquery_wait;
struct authquery_cache;

#define AUTHQUERY_DEFAULT_QUERY "SELECT usename, passwd FROM pg_shadow WHERE usename = $1"
/* Longest user name and secret looked up or accepted, without the NUL. */
#define AUTHQUERY_USER_MAX 1024
#define AUTHQUERY_SECRET_MAX 4096
/* Room for a FAILED reason, with its NUL. */
#define AUTHQUERY_REASON_MAX 256

enum authquery_status {
	AUTHQUERY_FOUND,     /* the server holds a secret for the user */
	AUTHQUERY_NOT_FOUND, /* no row, or a NULL or empty secret: the user cannot log in */
	AUTHQUERY_FAILED,    /* no answer: see the reason */
};

/* What an authquery object does; authquery_settings_init fills the defaults. */
struct authquery_settings {
	const char *host;       /* a name, a numeric address or a socket directory; NULL: libpq's */
	int port;               /* <= 0: libpq's default */
	const char *dbname;     /* NULL: libpq's default (the user name) */
	const char *user;       /* auth_user */
	const char *password;   /* auth_user's password; NULL: none (trust, .pgpass) */
	const char *query;      /* one statement with $1 = the user name; NULL: the default */
	double cache_ttl;       /* seconds a secret found is kept; <= 0: not cached (default 60) */
	double negative_ttl;    /* seconds a NOT_FOUND is kept; <= 0: not cached (default 5) */
	double timeout;         /* seconds a lookup may wait in all; <= 0: 5 (default 5) */
	size_t max_waiting;     /* lookups waiting for the server at once (default 1000) */
	size_t cache_max;       /* answers kept; the least recently used goes (default 10000) */
	struct auxconn_tls tls; /* TLS toward host (default: mode disable) */
};

/* What an authquery object did since it was made. */
struct authquery_stats {
	uint64_t lookups;    /* authquery_lookup calls */
	uint64_t cache_hits; /* answered from the cache */
	uint64_t coalesced;  /* joined a query already pending for the same user */
	uint64_t queries;    /* queries sent to the server */
	uint64_t found;      /* lookups answered FOUND */
	uint64_t not_found;  /* lookups answered NOT_FOUND */
	uint64_t failures;   /* lookups answered FAILED, for any reason */
	uint64_t timeouts;   /* of which: lookups that reached the timeout */
	uint64_t queue_full; /* of which: max_waiting lookups were waiting */
	uint64_t connects;   /* connections started */
	uint64_t cached;     /* answers in the cache now */
	uint64_t waiting;    /* lookups waiting for the server now */
};

/*
 * The answer to one lookup.
 * arg: the lookup's arg.
 * status: FOUND, NOT_FOUND or FAILED.
 * text: FOUND: the secret; FAILED: why ("queue full", "timeout", "connect
 *       failed: <libpq message>", "query failed: <server message>", "user name
 *       too long", "out of memory", "shutting down", ...); NOT_FOUND: NULL.
 *       Valid during the call only (a secret is wiped after it).
 */
typedef void (*authquery_done_fn)(void *arg, enum authquery_status status, const char *text);

/* Fills s with the defaults above and no login (every pointer NULL, port 0). */
void authquery_settings_init(struct authquery_settings *s);

/*
 * Makes an authquery object on loop. Nothing is opened until the first
 * lookup needs the server.
 * loop: the worker's loop; it must outlive the object.
 * s: the settings; the strings are copied.
 * Returns NULL when memory is exhausted.
 */
struct authquery *authquery_new(struct ev_loop *loop, const struct authquery_settings *s);

/*
 * Looks up user's secret. cb is called exactly once, always from the loop
 * and never before authquery_lookup returns, even when the cache answers,
 * unless the lookup is cancelled first. A lookup is answered within the
 * timeout (give or take the 0.1 s tick) whatever the server does. cb may call authquery_lookup and
 * authquery_cancel (of other lookups), never authquery_free.
 * user: NUL-terminated; sent as a query parameter, never spliced into SQL.
 * Returns the handle for authquery_cancel, valid until cb is called or the
 * lookup is cancelled; NULL only when memory is exhausted or aq is being
 * freed (cb is then never called).
 */
struct authquery_wait *authquery_lookup(struct authquery *aq, const char *user,
					authquery_done_fn cb, void *arg);

/*
 * Forgets a lookup whose cb has not been called yet (its client went away):
 * cb will not be called. A query already sent still runs and its answer is
 * cached; one that no other lookup waits for and that has not been sent is
 * dropped. w may be NULL.
 */
void authquery_cancel(struct authquery *aq, struct authquery_wait *w);

/*
 * Answers every lookup not yet answered, before returning: those the cache
 * already answered with their answer, the others FAILED "shutting down"
 * (their cb must not call authquery_* on aq). Then closes the connection and
 * frees aq; a reload is authquery_free and authquery_new. aq may be NULL.
 */
void authquery_free(struct authquery *aq);

/*
 * Drops the answer cached for user, if any, so that the next lookup asks the
 * server (say, after the cached secret refused a client: the password may
 * have changed). A query pending for user is left alone.
 */
void authquery_forget(struct authquery *aq, const char *user);

/* Copies aq's counters into out. */
void authquery_get_stats(const struct authquery *aq, struct authquery_stats *out);

/*
 * Reads auth_query's result for user: no row means NOT_FOUND, as does one
 * row with a NULL or empty secret (second column); one row naming user (first
 * column) with a secret of at most AUTHQUERY_SECRET_MAX bytes means FOUND.
 * Anything else (an error, other than two columns, more than one row, a row
 * for another user, a secret too long) is FAILED.
 * r: the query's result.
 * user: the user looked up.
 * secret: FOUND: receives a pointer into r, valid while r lives.
 * reason, cap: FAILED: receive why, on one line.
 * Returns the status.
 */
enum authquery_status authquery_read_result(const PGresult *r, const char *user,
					    const char **secret, char *reason, size_t cap);

/*
 * The answer cache on its own (pure: times are passed in). Answers expire at
 * a given time; past max_entries the least recently used answer goes.
 * Secrets are copied in and wiped when they go.
 */

/* An empty cache of at most max_entries answers (0: it keeps nothing); NULL: no memory. */
struct authquery_cache *authquery_cache_new(size_t max_entries);

/* Wipes and frees every answer and c. c may be NULL. */
void authquery_cache_free(struct authquery_cache *c);

/*
 * Keeps an answer for user until expires (replacing an answer it had).
 * secret: the secret, or NULL for NOT_FOUND.
 * Returns false when memory is exhausted or the cache keeps nothing (then no
 * answer for user is kept, not even an older one).
 */
bool authquery_cache_put(struct authquery_cache *c, const char *user, const char *secret,
			 double expires);

/*
 * The answer kept for user at time now: FOUND (*secret points into the
 * cache, valid until the next put, expire or free), NOT_FOUND, or FAILED
 * when none is kept or it has expired (then it is dropped). A hit makes the
 * answer the most recently used.
 */
enum authquery_status authquery_cache_get(struct authquery_cache *c, const char *user, double now,
					  const char **secret);

/* Drops the answer kept for user; returns false when there was none. */
bool authquery_cache_drop(struct authquery_cache *c, const char *user);

/* Drops every answer expired at now; returns how many. */
size_t authquery_cache_expire(struct authquery_cache *c, double now);

/* Answers kept now. */
size_t authquery_cache_count(const struct authquery_cache *c);

#endif
