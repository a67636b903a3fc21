/*
 * auth.h - authentication of clients: hba_file, then the method, then the secret.
 *
 * hba_file's first matching rule (or auth_type when there is no hba_file)
 * picks the method: trust, md5, scram-sha-256 or password (in clear). The
 * secret comes from the auth file, else from auth_query on the database's
 * primary, asked without blocking the loop. Answers are the ones PostgreSQL
 * gives: an unknown user goes through the same exchange as a known one and
 * fails with the same 28P01, so that the pooler never reveals which users
 * exist.
 */
#ifndef PGSLUICE_AUTH_H
#define PGSLUICE_AUTH_H

#include "worker.h"

enum auth_result {
	AUTH_CONTINUE, /* a request was queued for c, or c waits for auth_query */
	AUTH_OK,
	AUTH_FAILED,   /* the password did not match: 28P01 */
	AUTH_GONE,     /* c was refused with its own error and closed */
};

/*
 * Matches c against hba_file, then sends the first authentication request
 * (or decides at once, or starts an auth_query lookup whose answer goes on
 * through client_on_auth()).
 */
enum auth_result auth_begin(struct worker *w, struct client *c);

/* Handles a PasswordMessage/SASL message body from c. */
enum auth_result auth_handle(struct worker *w, struct client *c, const uint8_t *body, uint32_t len);

/* Frees the exchange state held by c (the auth_query secret stays for client_login). */
void auth_clear(struct client *c);

/* Cancels c's pending lookup and wipes the secret auth_query found; c is going away. */
void auth_release(struct client *c);

/*
 * Drops every database's auth_query object after a reload (the settings, the
 * password or the server may have changed); lookups still waiting are asked
 * again of a new object made from w's current configuration.
 */
void auth_restart_lookups(struct worker *w);

/* Frees db's auth_query object; lookups still waiting fail. */
void auth_database_gone(struct database *db);

/* Wipes and frees a secret auth_query found (NULL is fine). */
void auth_secret_free(char *secret);

/* Hands the secret auth_query found for c to its home pool, for server logins. */
void auth_give_secret_to_pool(struct client *c);

/*
 * The secret pgsluice logs in to servers with for user in db when the auth
 * file has none: the last one auth_query found for a client of user in db,
 * or NULL.
 */
const char *auth_pool_secret(const struct database *db, const char *user);

#endif
