/*
 * auth.h - authentication of clients against the auth file.
 *
 * trust, md5 and SCRAM-SHA-256, answered the way PostgreSQL answers them:
 * an unknown user goes through the same exchange as a known one and fails
 * with the same 28P01, so that the pooler never reveals which users exist.
 */
#ifndef PGSLUICE_AUTH_H
#define PGSLUICE_AUTH_H

#include "worker.h"

enum auth_result { AUTH_CONTINUE, AUTH_OK, AUTH_FAILED };

/* Sends the first authentication request to c (or decides at once). */
enum auth_result auth_begin(struct worker *w, struct client *c);

/* Handles a PasswordMessage/SASL message body from c. */
enum auth_result auth_handle(struct worker *w, struct client *c, const uint8_t *body, uint32_t len);

/* Frees the exchange state held by c. */
void auth_clear(struct client *c);

#endif
