/*
 * prepared.c - a client's statements and last Bind (see prepared.h).
 *
 * Only the proxy path calls in, once per Parse/Bind/Close of a client.
 */
#include "prepared.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

void prepared_init(struct prepared_set *ps, struct stmtreg *reg, size_t max_named)
{
	memset(ps, 0, sizeof(*ps));
	ps->reg = reg;
	ps->max_named = max_named;
	obuf_init(&ps->bind.values, PREPARED_PARAMS_MAX);
}

static void prepared_clear_unnamed(struct prepared_stmt *st)
{
	free(st->text);
	free(st->types);
	st->text = NULL;
	st->types = NULL;
	st->text_len = 0;
	st->n_types = 0;
}

static void prepared_destroy_named(struct prepared_set *ps, struct prepared_stmt *st)
{
	if (ps->bind.stmt == st)
		ps->bind.stmt = NULL;
	stmtreg_release(ps->reg, st->def);
	free(st->name);
	free(st);
}

void prepared_forget_all(struct prepared_set *ps)
{
	for (size_t i = 0; i < ps->n_named; i++)
		prepared_destroy_named(ps, ps->named[i]);
	ps->n_named = 0;
}

void prepared_free(struct prepared_set *ps)
{
	prepared_clear_unnamed(&ps->unnamed);
	prepared_forget_all(ps);
	free(ps->named);
	ps->named = NULL;
	obuf_free(&ps->bind.values);
}

static struct prepared_stmt *prepared_find(const struct prepared_set *ps, const char *name,
					   size_t *index)
{
	for (size_t i = 0; i < ps->n_named; i++) {
		if (strcmp(ps->named[i]->name, name) == 0) {
			if (index != NULL)
				*index = i;
			return ps->named[i];
		}
	}
	return NULL;
}

struct prepared_stmt *prepared_lookup(const struct prepared_set *ps, const char *name)
{
	return name[0] == '\0' ? NULL : prepared_find(ps, name, NULL);
}

void prepared_forget(struct prepared_set *ps, const char *name)
{
	size_t i;
	struct prepared_stmt *st = prepared_find(ps, name, &i);
	if (st == NULL)
		return;
	prepared_destroy_named(ps, st);
	ps->named[i] = ps->named[--ps->n_named];
}

/* The unnamed statement parsed again: keeps a copy of a text that is not too long. */
static enum prepared_parse prepared_set_unnamed(struct prepared_set *ps, const char *text,
						const uint8_t *types, uint16_t n_types)
{
	struct prepared_stmt *st = &ps->unnamed;
	prepared_clear_unnamed(st);
	st->version = ++ps->next_version;
	size_t text_len = strlen(text);
	if (text_len > PREPARED_TEXT_MAX)
		return PREPARED_PARSED; /* too long to keep: Execute reports it unknown */
	st->text = malloc(text_len + 1);
	st->types = n_types > 0 ? malloc(4u * n_types) : NULL;
	if (st->text == NULL || (n_types > 0 && st->types == NULL)) {
		prepared_clear_unnamed(st);
		return PREPARED_NO_MEMORY;
	}
	memcpy(st->text, text, text_len + 1);
	st->text_len = (uint32_t)text_len;
	st->n_types = n_types;
	for (uint16_t i = 0; i < n_types; i++)
		st->types[i] = proto_get_u32(types + 4u * i);
	return PREPARED_PARSED;
}

static enum prepared_parse prepared_add_named(struct prepared_set *ps, const char *name,
					      const char *text, const uint8_t *types,
					      uint16_t n_types, struct prepared_stmt **out)
{
	if (ps->n_named == ps->max_named)
		return PREPARED_TOO_MANY;
	if (ps->named == NULL) {
		ps->named = malloc(sizeof(*ps->named) * ps->max_named);
		if (ps->named == NULL)
			return PREPARED_NO_MEMORY;
	}
	struct prepared_stmt *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return PREPARED_NO_MEMORY;
	st->name = strdup(name);
	st->def = st->name != NULL ? stmtreg_acquire(ps->reg, text, strlen(text), types, n_types)
				   : NULL;
	if (st->def == NULL) {
		free(st->name);
		free(st);
		return PREPARED_NO_MEMORY;
	}
	st->text = st->def->text;
	st->text_len = st->def->text_len;
	st->types = st->def->types;
	st->n_types = st->def->n_types;
	st->version = ++ps->next_version;
	ps->named[ps->n_named++] = st;
	if (out != NULL)
		*out = st;
	return PREPARED_PARSED;
}

bool prepared_read_parse(const uint8_t *body, size_t len, const char **name, const char **text,
			 const uint8_t **types, uint16_t *n_types)
{
	const uint8_t *p = body, *end = body + len;
	*name = proto_take_string(&p, end);
	*text = *name != NULL ? proto_take_string(&p, end) : NULL;
	if (*text == NULL || end - p < 2)
		return false;
	*n_types = proto_get_u16(p);
	*types = p + 2;
	return (size_t)(end - *types) >= 4u * *n_types;
}

enum prepared_parse prepared_on_parse(struct prepared_set *ps, const uint8_t *body, size_t len,
				      struct prepared_stmt **out)
{
	const char *name, *text;
	const uint8_t *types;
	uint16_t n_types;
	if (!prepared_read_parse(body, len, &name, &text, &types, &n_types))
		return PREPARED_MALFORMED;
	if (name[0] == '\0') {
		if (out != NULL)
			*out = &ps->unnamed;
		return prepared_set_unnamed(ps, text, types, n_types);
	}
	struct prepared_stmt *st = prepared_find(ps, name, NULL);
	if (st != NULL) {
		if (out != NULL)
			*out = st;
		return PREPARED_EXISTS;
	}
	return prepared_add_named(ps, name, text, types, n_types, out);
}

void prepared_on_bind(struct prepared_set *ps, const uint8_t *body, size_t len)
{
	struct prepared_bind *b = &ps->bind;
	const uint8_t *p = body, *end = body + len;
	b->stmt = NULL;
	b->n_params = 0;
	b->binary = false;
	b->params_kept = false;
	obuf_reset(&b->values);
	const char *portal = proto_take_string(&p, end);
	const char *name = portal != NULL ? proto_take_string(&p, end) : NULL;
	if (name == NULL || end - p < 2)
		return;
	snprintf(b->portal, sizeof(b->portal), "%s", portal);
	b->stmt = name[0] == '\0' ? &ps->unnamed : prepared_find(ps, name, NULL);
	if (b->stmt != NULL)
		b->stmt_version = b->stmt->version;
	uint16_t n_formats = proto_get_u16(p);
	p += 2;
	if ((size_t)(end - p) < 2u * n_formats + 2)
		return;
	for (uint16_t i = 0; i < n_formats; i++)
		if (proto_get_u16(p + 2u * i) != 0)
			b->binary = true;
	p += 2u * n_formats;
	b->n_params = proto_get_u16(p);
	p += 2;
	bool kept = true;
	for (uint16_t i = 0; i < b->n_params; i++) {
		if (end - p < 4)
			return;
		uint32_t vlen = proto_get_u32(p);
		p += 4;
		uint32_t stored = vlen == UINT32_MAX ? 0 : vlen;
		if ((size_t)(end - p) < stored)
			return;
		kept = kept && obuf_put_u32(&b->values, vlen) && obuf_put(&b->values, p, stored);
		p += stored;
	}
	b->params_kept = kept && !b->values.failed;
}

void prepared_on_close(struct prepared_set *ps, const uint8_t *body, size_t len)
{
	const uint8_t *p = body + 1, *end = body + len;
	if (len < 2 || body[0] != 'S')
		return;
	const char *name = proto_take_string(&p, end);
	if (name != NULL && name[0] != '\0')
		prepared_forget(ps, name);
}

const struct prepared_stmt *prepared_executed(const struct prepared_set *ps, const char *portal,
					      const struct prepared_bind **bind)
{
	const struct prepared_bind *b = &ps->bind;
	*bind = b;
	if (b->stmt == NULL || strcmp(b->portal, portal) != 0 || b->stmt->version != b->stmt_version ||
	    b->stmt->text == NULL)
		return NULL;
	return b->stmt;
}

bool prepared_value(const uint8_t *values, size_t size, uint16_t i, const uint8_t **value,
		    uint32_t *len)
{
	size_t off = 0;
	for (uint16_t k = 0;; k++) {
		if (size - off < 4)
			return false;
		uint32_t vlen = proto_get_u32(values + off);
		off += 4;
		uint32_t stored = vlen == UINT32_MAX ? 0 : vlen;
		if (size - off < stored)
			return false;
		if (k == i) {
			*value = vlen == UINT32_MAX ? NULL : values + off;
			*len = stored;
			return true;
		}
		off += stored;
	}
}
