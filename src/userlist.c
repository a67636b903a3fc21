/*
 * userlist.c - the auth_file: "user" "secret" lines become a sorted array.
 *
 * Loaded at start and on every reload, searched at every client login and
 * every server login that needs a password: the entries are sorted by name
 * so that a lookup is a binary search, whatever the number of users.
 * Problems are collected as "FILE:LINE: why" lines; a secret never appears
 * in them, since they end up in the log.
 */
#include "userlist.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "password.h"

#define USER_MAX_LEN   63   /* PostgreSQL role names: NAMEDATALEN - 1 */
#define SECRET_MAX_LEN 1024 /* SCRAM secrets are about 140 bytes */
#define LINE_MAX_LEN   4096
#define MAX_USERS      1000000
#define MAX_ERRORS     100 /* reported; the rest are only counted */

struct user_entry {
	char *user; /* one allocation: user, NUL, secret, NUL */
	const char *secret;
	int line;
};

struct userlist {
	struct user_entry *entries; /* sorted by user (strcmp), then line */
	size_t n;
};

struct load_state {
	const char *path;
	struct userlist *ul;
	size_t cap;
	int count;  /* problems found */
	char *text; /* the first MAX_ERRORS of them */
	size_t len, text_cap;
	bool text_oom; /* the text could not grow: it is incomplete */
};

static void load_error(struct load_state *st, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void load_error(struct load_state *st, int line, const char *fmt, ...)
{
	char msg[300];
	char entry[sizeof(msg) + 4200];
	va_list ap;

	if (st->count++ >= MAX_ERRORS || st->text_oom)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(entry, sizeof(entry), "%s:%d: %s\n", st->path, line, msg);
	else
		snprintf(entry, sizeof(entry), "%s: %s\n", st->path, msg);
	size_t len = strlen(entry);
	if (st->len + len + 1 > st->text_cap) {
		size_t cap = st->text_cap == 0 ? 1024 : st->text_cap * 2;
		while (cap < st->len + len + 1)
			cap *= 2;
		char *text = realloc(st->text, cap);
		if (text == NULL) {
			st->text_oom = true;
			return;
		}
		st->text = text;
		st->text_cap = cap;
	}
	memcpy(st->text + st->len, entry, len + 1);
	st->len += len;
}

enum field_result {
	FIELD_OK,
	FIELD_NO_QUOTE,
	FIELD_UNTERMINATED,
	FIELD_TOO_LONG
};

/*
 * Reads a double-quoted field at *p into out (a doubled "" is one quote) and
 * moves *p past it.
 */
static enum field_result field_read(const char **p, char *out, size_t max_len, size_t *len)
{
	const char *s = *p;
	size_t n = 0;

	if (*s != '"')
		return FIELD_NO_QUOTE;
	for (s++;; s++) {
		if (*s == '\0')
			return FIELD_UNTERMINATED;
		if (*s == '"') {
			if (s[1] != '"')
				break;
			s++;
		}
		if (n == max_len)
			return FIELD_TOO_LONG;
		out[n++] = *s;
	}
	out[n] = '\0';
	*len = n;
	*p = s + 1;
	return FIELD_OK;
}

/* Reports a field_read failure; what is "user name" or "secret". */
static void field_error(struct load_state *st, int line, enum field_result r, const char *what,
			size_t max_len)
{
	switch (r) {
	case FIELD_NO_QUOTE:
		load_error(st, line, "expected the %s in double quotes (\"user\" \"secret\")",
			   what);
		break;
	case FIELD_UNTERMINATED:
		load_error(st, line, "the %s has no closing double quote", what);
		break;
	case FIELD_TOO_LONG:
		load_error(st, line, "the %s is longer than %zu bytes", what, max_len);
		break;
	case FIELD_OK:
		break;
	}
}

static bool entry_add(struct load_state *st, int line, const char *user, size_t user_len,
		      const char *secret, size_t secret_len)
{
	struct userlist *ul = st->ul;

	if (ul->n == MAX_USERS) {
		load_error(st, line, "more than %d users", MAX_USERS);
		return false;
	}
	if (ul->n == st->cap) {
		size_t cap = st->cap == 0 ? 64 : st->cap * 2;
		struct user_entry *grown = realloc(ul->entries, cap * sizeof(*grown));
		if (grown == NULL)
			goto oom;
		ul->entries = grown;
		st->cap = cap;
	}
	char *mem = malloc(user_len + secret_len + 2);
	if (mem == NULL)
		goto oom;
	memcpy(mem, user, user_len + 1);
	memcpy(mem + user_len + 1, secret, secret_len + 1);
	ul->entries[ul->n++] = (struct user_entry){mem, mem + user_len + 1, line};
	return true;
oom:
	load_error(st, line, "out of memory");
	return false;
}

/* Parses one line (without its newline); blank and comment lines are skipped. */
static void line_parse(struct load_state *st, int line, const char *text)
{
	char user[USER_MAX_LEN + 1], secret[SECRET_MAX_LEN + 1];
	size_t user_len, secret_len;
	enum field_result r;
	const char *p = text;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == ';' || *p == '#')
		return;
	if ((r = field_read(&p, user, USER_MAX_LEN, &user_len)) != FIELD_OK) {
		field_error(st, line, r, "user name", USER_MAX_LEN);
		return;
	}
	while (isspace((unsigned char)*p))
		p++;
	if ((r = field_read(&p, secret, SECRET_MAX_LEN, &secret_len)) != FIELD_OK) {
		field_error(st, line, r, "secret", SECRET_MAX_LEN);
		return;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '\0') {
		load_error(st, line, "unexpected text after the secret");
		return;
	}
	/* A NUL inside the quotes would cut the name or secret short without a word. */
	if (user_len == 0 || strlen(user) != user_len) {
		load_error(st, line, "the user name is empty or holds a NUL byte");
		return;
	}
	if (secret_len == 0 || strlen(secret) != secret_len) {
		load_error(st, line, "the secret of user \"%s\" is empty or holds a NUL byte",
			   user);
		return;
	}
	entry_add(st, line, user, user_len, secret, secret_len);
}

static int entry_compare(const void *a, const void *b)
{
	const struct user_entry *x = a, *y = b;
	int c = strcmp(x->user, y->user);
	return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

static int entry_compare_key(const void *key, const void *entry)
{
	return strcmp(key, ((const struct user_entry *)entry)->user);
}

/* Reads every line of f; a line longer than LINE_MAX_LEN is reported and skipped. */
static void file_parse(struct load_state *st, FILE *f)
{
	char buf[LINE_MAX_LEN + 1];
	int line = 0, c;

	do {
		size_t n = 0;
		bool too_long = false;
		while ((c = getc(f)) != EOF && c != '\n') {
			if (n < LINE_MAX_LEN)
				buf[n++] = (char)c;
			else
				too_long = true;
		}
		if (c == EOF && n == 0)
			break;
		line++;
		buf[n] = '\0';
		if (too_long)
			load_error(st, line, "line is longer than %d bytes", LINE_MAX_LEN);
		else
			line_parse(st, line, buf);
	} while (c != EOF);
	if (ferror(f))
		load_error(st, 0, "read error: %s", strerror(errno));
}

struct userlist *userlist_load(const char *path, char **errors)
{
	struct load_state st = {.path = path};
	FILE *f;

	if (errors != NULL)
		*errors = NULL;
	st.ul = calloc(1, sizeof(*st.ul));
	if (st.ul == NULL) {
		load_error(&st, 0, "out of memory");
	} else if ((f = fopen(path, "r")) == NULL) {
		load_error(&st, 0, "cannot open: %s", strerror(errno));
	} else {
		file_parse(&st, f);
		fclose(f);
	}
	if (st.count == 0) {
		struct userlist *ul = st.ul;
		if (ul->n > 0)
			qsort(ul->entries, ul->n, sizeof(*ul->entries), entry_compare);
		/* Equal names sit together, earliest line first. */
		for (size_t i = 1, first = 0; i < ul->n; i++) {
			const struct user_entry *e = &ul->entries[i], *head = &ul->entries[first];
			if (strcmp(e->user, head->user) == 0)
				load_error(&st, e->line,
					   "user \"%s\" is listed again (first on line %d)",
					   e->user, head->line);
			else
				first = i;
		}
	}
	if (st.count == 0)
		return st.ul;

	userlist_free(st.ul);
	if (st.count > MAX_ERRORS) {
		int more = st.count - MAX_ERRORS;
		st.count = 0; /* one more line, past the limit */
		load_error(&st, 0, "%d more problems not shown", more);
	}
	if (errors != NULL && !st.text_oom)
		*errors = st.text;
	else
		free(st.text);
	return NULL;
}

const char *userlist_find(const struct userlist *ul, const char *user)
{
	if (ul == NULL || ul->n == 0 || user == NULL)
		return NULL;
	const struct user_entry *e =
		bsearch(user, ul->entries, ul->n, sizeof(*ul->entries), entry_compare_key);
	return e != NULL ? e->secret : NULL;
}

size_t userlist_count(const struct userlist *ul)
{
	return ul != NULL ? ul->n : 0;
}

void userlist_free(struct userlist *ul)
{
	if (ul == NULL)
		return;
	for (size_t i = 0; i < ul->n; i++)
		free(ul->entries[i].user);
	free(ul->entries);
	free(ul);
}

const char *userlist_plaintext(const struct userlist *ul, const char *user)
{
	const char *secret = ul != NULL ? userlist_find(ul, user) : NULL;
	if (secret == NULL || secret[0] == '\0' || password_kind_of(secret) != PASSWORD_PLAIN)
		return NULL;
	return secret;
}
