/*
 * userlist.h - the auth_file: user names and their secrets.
 *
 * One line per user, PgBouncer's format: "user" "secret". The secret is a
 * plaintext password, an md5 hash or a SCRAM-SHA-256 secret; it is kept as
 * written, and auth.c decides which kind it is. A loaded list is immutable:
 * a reload loads a new one and swaps it in.
 */
#ifndef PGSLUICE_USERLIST_H
#define PGSLUICE_USERLIST_H

#include <stddef.h>

struct userlist;

/*
 * Reads path. Returns the list, or NULL when the file cannot be read or any
 * line is bad; then *errors (if errors != NULL) receives a malloc'd text with
 * one "FILE:LINE: why" line per problem (the caller frees it). Messages never
 * contain a secret.
 */
struct userlist *userlist_load(const char *path, char **errors);

/* The secret of user, or NULL when the list does not name user. O(log n). */
const char *userlist_find(const struct userlist *ul, const char *user);

/* Number of users in ul. */
size_t userlist_count(const struct userlist *ul);

/* The plaintext password of user, or NULL (ul NULL, no entry, or a hash: it cannot log in). */
const char *userlist_plaintext(const struct userlist *ul, const char *user);

/* Frees ul (NULL is fine). */
void userlist_free(struct userlist *ul);

#endif
