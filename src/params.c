/*
 * params.c - session parameter sets and their synchronization (params.h).
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
	ps->n = 0;
	ps->sync_hash = 0;
}

void params_free(struct params *ps)
{
	for (uint16_t i = 0; i < ps->n; i++) {
		free(ps->items[i].name);
		free(ps->items[i].value);
	}
	params_init(ps);
}

static bool params_put(struct params *ps, const char *name, const char *value, bool reported,
		       bool sql);

bool params_copy(struct params *dst, const struct params *src)
{
	params_free(dst);
	for (uint16_t i = 0; i < src->n; i++) {
		const struct param *p = &src->items[i];
		if (!params_put(dst, p->name, p->value, p->reported, p->sql))
			return false;
	}
	return true;
}

static struct param *params_find(const struct params *ps, const char *name)
{
	for (uint16_t i = 0; i < ps->n; i++)
		if (strcasecmp(ps->items[i].name, name) == 0)
			return (struct param *)&ps->items[i];
	return NULL;
}

bool params_set(struct params *ps, const char *name, const char *value, bool reported)
{
	return params_put(ps, name, value, reported, false);
}

bool params_set_sql(struct params *ps, const char *name, const char *value)
{
	return params_put(ps, name, value, false, true);
}

static bool params_put(struct params *ps, const char *name, const char *value, bool reported,
		       bool sql)
{
	if (strlen(name) >= PARAMS_MAX_NAME || strlen(value) >= PARAMS_MAX_VALUE)
		return false;
	struct param *p = params_find(ps, name);
	if (p != NULL) {
		if (strcmp(p->value, value) == 0 && (!reported || strcmp(p->name, name) == 0)) {
			p->reported |= reported;
			p->sql = sql;
			return true;
		}
		char *v = strdup(value);
		char *n = reported ? strdup(name) : NULL;
		if (v == NULL || (reported && n == NULL)) {
			free(v);
			free(n);
			return false;
		}
		free(p->value);
		p->value = v;
		if (n != NULL) {
			free(p->name);
			p->name = n;
		}
		p->reported |= reported;
		p->sql = sql;
	} else {
		if (ps->n == PARAMS_MAX)
			return false;
		p = &ps->items[ps->n];
		p->name = strdup(name);
		p->value = strdup(value);
		if (p->name == NULL || p->value == NULL) {
			free(p->name);
			free(p->value);
			return false;
		}
		p->reported = reported;
		p->sql = sql;
		p->hash = 0;
		ps->n++;
	}
	ps->sync_hash ^= p->hash;
	p->hash = param_hash(p->name, p->value);
	ps->sync_hash ^= p->hash;
	return true;
}

void params_remove(struct params *ps, const char *name)
{
	struct param *p = params_find(ps, name);
	if (p == NULL)
		return;
	ps->sync_hash ^= p->hash;
	free(p->name);
	free(p->value);
	*p = ps->items[--ps->n];
}

bool params_is_reported(const struct params *ps, const char *name)
{
	const struct param *p = params_find(ps, name);
	return p != NULL && p->reported;
}

const char *params_get(const struct params *ps, const char *name)
{
	const struct param *p = params_find(ps, name);
	return p != NULL ? p->value : NULL;
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
	for (uint16_t i = 0; i < want->n; i++) {
		const struct param *w = &want->items[i];
		if (w->hash == 0 || !name_is_plain(w->name))
			continue;
		const struct param *h = params_find(have, w->name);
		if (h != NULL && strcmp(h->value, w->value) == 0)
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
	for (uint16_t i = 0; i < have->n; i++) {
		const struct param *h = &have->items[i];
		if (h->hash == 0 || !name_is_plain(h->name) || params_find(want, h->name) != NULL)
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
	for (uint16_t i = 0; i < want->n; i++) {
		const struct param *w = &want->items[i];
		if (w->hash != 0 && name_is_plain(w->name))
			params_put(have, w->name, w->value, w->reported, w->sql);
	}
	for (uint16_t i = 0; i < have->n;) {
		const struct param *h = &have->items[i];
		if (h->hash != 0 && !h->reported && params_find(want, h->name) == NULL)
			params_remove(have, h->name); /* the slot now holds another item */
		else
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
