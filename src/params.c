/*
 * params.c - session parameter sets and their synchronization (params.h).
 *
 * A set's items live in one reference-counted block; each item's name and
 * value share one allocation. Reads never copy; every change goes through
 * params_own(), which copies a shared block first.
 */
#include "params.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto.h"

static const char *const server_fixed[] = {
	"server_version", "server_encoding", "integer_datetimes", "is_superuser",
	"session_authorization", "in_hot_standby", "default_transaction_read_only",
	"scram_iterations", NULL,
};

bool params_is_server_fixed(const char *name)
{
	for (size_t i = 0; server_fixed[i] != NULL; i++)
		if (strcasecmp(server_fixed[i], name) == 0)
			return true;
	return false;
}

static uint64_t param_hash(const char *name, const char *value)
{
	if (params_is_server_fixed(name))
		return 0;
	uint64_t h = 1469598103934665603ull;
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		h = (h ^ (uint8_t)c) * 1099511628211ull;
	}
	h = (h ^ '=') * 1099511628211ull;
	for (const char *p = value; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	/* Never 0, so that a syncable entry always moves the set's hash. */
	return h | 1;
}

void params_init(struct params *ps)
{
	ps->b = NULL;
}

static void params_block_release(struct params_block *b)
{
	if (b == NULL || --b->refs > 0)
		return;
	for (uint16_t i = 0; i < b->n; i++)
		free(b->items[i].name);
	free(b);
}

void params_free(struct params *ps)
{
	params_block_release(ps->b);
	ps->b = NULL;
}

void params_copy(struct params *dst, const struct params *src)
{
	if (dst->b == src->b)
		return;
	if (src->b != NULL)
		src->b->refs++;
	params_block_release(dst->b);
	dst->b = src->b;
}

/* "name\0value\0" in one allocation; NULL when memory ran out. */
static char *param_text(const char *name, const char *value)
{
	size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
	char *t = malloc(nl + vl);
	if (t != NULL) {
		memcpy(t, name, nl);
		memcpy(t + nl, value, vl);
	}
	return t;
}

/* Sets p's text to name and value (name's allocation holds both); false when memory ran out. */
static bool param_set_text(struct param *p, const char *name, const char *value)
{
	char *t = param_text(name, value);
	if (t == NULL)
		return false;
	free(p->name);
	p->name = t;
	p->value = t + strlen(t) + 1;
	return true;
}

/*
 * Makes ps's block its own (copying a shared one) with room for need items.
 * Returns false when memory ran out; ps is unchanged then.
 */
static bool params_own(struct params *ps, uint16_t need)
{
	struct params_block *old = ps->b;
	bool shared = old != NULL && old->refs > 1;
	if (old != NULL && !shared && need <= old->cap)
		return true;
	uint16_t cap = old != NULL && old->cap > 0 ? old->cap : 8;
	while (cap < need)
		cap *= 2;
	if (cap > PARAMS_MAX)
		cap = PARAMS_MAX;
	if (!shared && old != NULL) {
		struct params_block *b = realloc(old, sizeof(*b) + cap * sizeof(b->items[0]));
		if (b == NULL)
			return false;
		b->cap = cap;
		ps->b = b;
		return true;
	}
	struct params_block *b = malloc(sizeof(*b) + cap * sizeof(b->items[0]));
	if (b == NULL)
		return false;
	b->refs = 1;
	b->n = 0;
	b->cap = cap;
	b->sync_hash = old != NULL ? old->sync_hash : 0;
	for (uint16_t i = 0; old != NULL && i < old->n; i++) {
		struct param *p = &b->items[i];
		*p = old->items[i];
		p->name = NULL;
		if (!param_set_text(p, old->items[i].name, old->items[i].value)) {
			old->refs++; /* released with the partial copy */
			params_block_release(b);
			return false;
		}
		b->n++;
	}
	params_block_release(old);
	ps->b = b;
	return true;
}

/* The index of name (case-insensitive) in ps, or -1. */
static int params_find(const struct params *ps, const char *name)
{
	for (uint16_t i = 0; i < params_count(ps); i++)
		if (strcasecmp(ps->b->items[i].name, name) == 0)
			return i;
	return -1;
}

/* params_set and params_set_sql: sql says how the value is synced. */
static bool params_put(struct params *ps, const char *name, const char *value, bool reported,
		       bool sql)
{
	if (strlen(name) >= PARAMS_MAX_NAME || strlen(value) >= PARAMS_MAX_VALUE)
		return false;
	int i = params_find(ps, name);
	if (i >= 0) {
		const struct param *p = &ps->b->items[i];
		bool same_text = strcmp(p->value, value) == 0 &&
				 (!reported || strcmp(p->name, name) == 0);
		if (same_text && (p->reported || !reported) && p->sql == sql)
			return true;
		if (!params_own(ps, ps->b->n))
			return false;
		struct param *q = &ps->b->items[i];
		if (!same_text &&
		    !param_set_text(q, reported ? name : q->name, value))
			return false;
		q->reported |= reported;
		q->sql = sql;
		ps->b->sync_hash ^= q->hash;
		q->hash = param_hash(q->name, q->value);
		ps->b->sync_hash ^= q->hash;
		return true;
	}
	if (params_count(ps) == PARAMS_MAX || !params_own(ps, params_count(ps) + 1))
		return false;
	struct param *q = &ps->b->items[ps->b->n];
	q->name = param_text(name, value);
	if (q->name == NULL)
		return false;
	q->value = q->name + strlen(name) + 1;
	q->reported = reported;
	q->sql = sql;
	q->hash = param_hash(name, value);
	ps->b->sync_hash ^= q->hash;
	ps->b->n++;
	return true;
}

bool params_set(struct params *ps, const char *name, const char *value, bool reported)
{
	return params_put(ps, name, value, reported, false);
}

bool params_set_sql(struct params *ps, const char *name, const char *value)
{
	return params_put(ps, name, value, false, true);
}

bool params_remove(struct params *ps, const char *name)
{
	int i = params_find(ps, name);
	if (i < 0)
		return true;
	if (!params_own(ps, ps->b->n))
		return false;
	struct params_block *b = ps->b;
	b->sync_hash ^= b->items[i].hash;
	free(b->items[i].name);
	b->items[i] = b->items[--b->n];
	return true;
}

bool params_is_reported(const struct params *ps, const char *name)
{
	int i = params_find(ps, name);
	return i >= 0 && ps->b->items[i].reported;
}

const char *params_get(const struct params *ps, const char *name)
{
	int i = params_find(ps, name);
	return i >= 0 ? ps->b->items[i].value : NULL;
}

bool params_equal(const struct params *a, const struct params *b)
{
	if (a->b == b->b)
		return true;
	if (params_count(a) != params_count(b) || params_hash(a) != params_hash(b))
		return false;
	for (uint16_t i = 0; i < params_count(a); i++) {
		const struct param *p = params_at(a, i);
		int j = params_find(b, p->name);
		if (j < 0 || strcmp(p->value, b->b->items[j].value) != 0 ||
		    p->sql != b->b->items[j].sql)
			return false;
	}
	return true;
}

/* Parameter names reach SQL as identifiers: only plain names qualify. */
static bool name_is_plain(const char *name)
{
	if (*name == '\0')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.'))
			return false;
	}
	return true;
}

size_t params_sync_sql(const struct params *want, const struct params *have, struct obuf *sql)
{
	size_t n = 0;
	for (uint16_t i = 0; i < params_count(want); i++) {
		const struct param *w = params_at(want, i);
		if (w->hash == 0 || !name_is_plain(w->name))
			continue;
		const char *h = params_get(have, w->name);
		if (h != NULL && strcmp(h, w->value) == 0)
			continue;
		obuf_put(sql, "SET ", 4);
		obuf_put(sql, w->name, strlen(w->name));
		obuf_put(sql, " TO ", 4);
		if (w->sql)
			obuf_put(sql, w->value, strlen(w->value));
		else
			proto_put_sql_literal(sql, w->value);
		obuf_put(sql, ";", 1);
		n++;
	}
	for (uint16_t i = 0; i < params_count(have); i++) {
		const struct param *h = params_at(have, i);
		if (h->hash == 0 || !name_is_plain(h->name) || params_find(want, h->name) >= 0)
			continue;
		obuf_put(sql, "RESET ", 6);
		obuf_put(sql, h->name, strlen(h->name));
		obuf_put(sql, ";", 1);
		n++;
	}
	return n;
}

void params_apply_sync(const struct params *want, struct params *have)
{
	for (uint16_t i = 0; i < params_count(want); i++) {
		const struct param *w = params_at(want, i);
		if (w->hash != 0 && name_is_plain(w->name))
			params_put(have, w->name, w->value, w->reported, w->sql);
	}
	for (uint16_t i = 0; i < params_count(have);) {
		const struct param *h = params_at(have, i);
		if (h->hash != 0 && !h->reported && params_find(want, h->name) < 0 &&
		    params_remove(have, h->name))
			continue; /* the slot now holds another item */
		i++;
	}
}

const char *params_add_options(struct params *ps, const char *options)
{
	const char *p = options;
	char word[PARAMS_MAX_NAME + PARAMS_MAX_VALUE + 4];
	bool expect_setting = false;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		size_t n = 0;
		while (*p != '\0' && *p != ' ' && *p != '\t') {
			if (*p == '\\' && p[1] != '\0')
				p++;
			if (n + 1 >= sizeof(word))
				return "options value too long";
			word[n++] = *p++;
		}
		word[n] = '\0';
		const char *setting;
		if (expect_setting) {
			setting = word;
			expect_setting = false;
		} else if (strcmp(word, "-c") == 0) {
			expect_setting = true;
			continue;
		} else if (strncmp(word, "-c", 2) == 0) {
			setting = word + 2;
		} else if (strncmp(word, "--", 2) == 0) {
			setting = word + 2;
		} else {
			return "only -c name=value and --name=value are supported in options";
		}
		char *eq = strchr(setting, '=');
		if (eq == NULL || eq == setting)
			return "options setting lacks name=value";
		*eq = '\0';
		/* -c and --name accept dashes for underscores, as the server does. */
		for (char *c = (char *)setting; *c != '\0'; c++)
			if (*c == '-')
				*c = '_';
		if (!params_set(ps, setting, eq + 1, false))
			return "too many or too long settings in options";
	}
	return expect_setting ? "-c without a setting in options" : NULL;
}
