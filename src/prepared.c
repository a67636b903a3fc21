/*
 * prepared.c - a client's statements and last Bind (see prepared.h).
 *
 * Only the proxy path calls in, once per Parse/Bind/Close it forwards; the
 * messages themselves go to the server unchanged.
 */
#include "prepared.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

void prepared_init(struct prepared_set *ps)
{
	memset(ps, 0, sizeof(*ps));
	obuf_init(&ps->bind.values, PREPARED_PARAMS_MAX);
}

static void prepared_clear_stmt(struct prepared_stmt *st)
{
	free(st->text);
	free(st->types);
	st->text = NULL;
	st->types = NULL;
	st->text_len = 0;
	st->n_types = 0;
}

void prepared_free(struct prepared_set *ps)
{
	prepared_clear_stmt(&ps->unnamed);
	for (size_t i = 0; i < ps->n_named; i++) {
		prepared_clear_stmt(ps->named[i]);
		free(ps->named[i]->name);
		free(ps->named[i]);
	}
	ps->n_named = 0;
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

/* The slot for a Parse of name: the unnamed one, an existing one, a new one, or NULL. */
static struct prepared_stmt *prepared_slot(struct prepared_set *ps, const char *name)
{
	if (name[0] == '\0')
		return &ps->unnamed;
	struct prepared_stmt *st = prepared_find(ps, name, NULL);
	if (st != NULL || ps->n_named == PREPARED_MAX_NAMED)
		return st;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->name = strdup(name);
	if (st->name == NULL) {
		free(st);
		return NULL;
	}
	ps->named[ps->n_named++] = st;
	return st;
}

void prepared_on_parse(struct prepared_set *ps, const uint8_t *body, size_t len)
{
	const uint8_t *p = body, *end = body + len;
	const char *name = proto_take_string(&p, end);
	const char *text = name != NULL ? proto_take_string(&p, end) : NULL;
	if (text == NULL || end - p < 2)
		return;
	uint16_t n_types = proto_get_u16(p);
	p += 2;
	if ((size_t)(end - p) < 4u * n_types)
		return;
	struct prepared_stmt *st = prepared_slot(ps, name);
	if (st == NULL)
		return;
	prepared_clear_stmt(st);
	st->version = ++ps->next_version;
	size_t text_len = strlen(text);
	if (text_len > PREPARED_TEXT_MAX)
		return; /* too long to keep: Execute reports it unknown */
	st->text = malloc(text_len + 1);
	st->types = n_types > 0 ? malloc(4u * n_types) : NULL;
	if (st->text == NULL || (n_types > 0 && st->types == NULL)) {
		prepared_clear_stmt(st);
		return;
	}
	memcpy(st->text, text, text_len + 1);
	st->text_len = (uint32_t)text_len;
	st->n_types = n_types;
	for (uint16_t i = 0; i < n_types; i++)
		st->types[i] = proto_get_u32(p + 4u * i);
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
	size_t i;
	struct prepared_stmt *st = name != NULL ? prepared_find(ps, name, &i) : NULL;
	if (st == NULL)
		return;
	if (ps->bind.stmt == st)
		ps->bind.stmt = NULL;
	prepared_clear_stmt(st);
	free(st->name);
	free(st);
	ps->named[i] = ps->named[--ps->n_named];
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
