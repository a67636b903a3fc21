/*
 * stmtreg.c - the worker's registry of distinct prepared statements
 * (see stmtreg.h). A chained hash table that doubles when it fills.
 */
#include "stmtreg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "proto.h"

#define STMTREG_MIN_BUCKETS 64

void stmtreg_init(struct stmtreg *reg)
{
	memset(reg, 0, sizeof(*reg));
	list_init(&reg->idle);
}

static void stmtreg_destroy_def(struct stmt_def *def)
{
	free(def->text);
	free(def->types);
	free(def);
}

void stmtreg_free(struct stmtreg *reg)
{
	for (size_t i = 0; i < reg->n_buckets; i++) {
		struct stmt_def *def = reg->buckets[i];
		while (def != NULL) {
			struct stmt_def *next = def->chain;
			stmtreg_destroy_def(def);
			def = next;
		}
	}
	free(reg->buckets);
	stmtreg_init(reg);
}

static uint64_t stmtreg_hash(const char *text, size_t len, const uint8_t *types_be,
			     uint16_t n_types)
{
	uint64_t h = hash_bytes(HASH_FNV_OFFSET, text, len);
	return hash_bytes(h, types_be, 4u * n_types);
}

static bool stmtreg_matches(const struct stmt_def *def, uint64_t hash, const char *text,
			    size_t len, const uint8_t *types_be, uint16_t n_types)
{
	if (def->hash != hash || def->text_len != len || def->n_types != n_types ||
	    memcmp(def->text, text, len) != 0)
		return false;
	for (uint16_t i = 0; i < n_types; i++)
		if (def->types[i] != proto_get_u32(types_be + 4u * i))
			return false;
	return true;
}

/* Doubles the table when it holds more statements than buckets. */
static bool stmtreg_grow(struct stmtreg *reg)
{
	if (reg->count < reg->n_buckets)
		return true;
	size_t n = reg->n_buckets == 0 ? STMTREG_MIN_BUCKETS : 2 * reg->n_buckets;
	struct stmt_def **buckets = calloc(n, sizeof(*buckets));
	if (buckets == NULL)
		return reg->n_buckets > 0; /* a longer chain still works */
	for (size_t i = 0; i < reg->n_buckets; i++) {
		struct stmt_def *def = reg->buckets[i];
		while (def != NULL) {
			struct stmt_def *next = def->chain;
			def->chain = buckets[def->hash % n];
			buckets[def->hash % n] = def;
			def = next;
		}
	}
	free(reg->buckets);
	reg->buckets = buckets;
	reg->n_buckets = n;
	return true;
}

static void stmtreg_remove(struct stmtreg *reg, struct stmt_def *def)
{
	struct stmt_def **link = &reg->buckets[def->hash % reg->n_buckets];
	while (*link != def)
		link = &(*link)->chain;
	*link = def->chain;
	list_del(&def->idle_node);
	reg->n_idle--;
	reg->count--;
	stmtreg_destroy_def(def);
}

static struct stmt_def *stmtreg_find_hashed(const struct stmtreg *reg, uint64_t hash,
					   const char *text, size_t len, const uint8_t *types_be,
					   uint16_t n_types)
{
	if (reg->n_buckets == 0)
		return NULL;
	for (struct stmt_def *def = reg->buckets[hash % reg->n_buckets]; def != NULL;
	     def = def->chain)
		if (stmtreg_matches(def, hash, text, len, types_be, n_types))
			return def;
	return NULL;
}

struct stmt_def *stmtreg_find(const struct stmtreg *reg, const char *text, size_t len,
			      const uint8_t *types_be, uint16_t n_types)
{
	uint64_t hash = stmtreg_hash(text, len, types_be, n_types);
	return stmtreg_find_hashed(reg, hash, text, len, types_be, n_types);
}

struct stmt_def *stmtreg_acquire(struct stmtreg *reg, const char *text, size_t len,
				 const uint8_t *types_be, uint16_t n_types)
{
	uint64_t hash = stmtreg_hash(text, len, types_be, n_types);
	struct stmt_def *def = stmtreg_find_hashed(reg, hash, text, len, types_be, n_types);
	if (def != NULL) {
		if (def->refs++ == 0) {
			list_del(&def->idle_node);
			reg->n_idle--;
		}
		return def;
	}
	if (!stmtreg_grow(reg))
		return NULL;
	def = calloc(1, sizeof(*def));
	if (def == NULL)
		return NULL;
	def->text = malloc(len + 1);
	def->types = n_types > 0 ? malloc(4u * n_types) : NULL;
	if (def->text == NULL || (n_types > 0 && def->types == NULL)) {
		stmtreg_destroy_def(def);
		return NULL;
	}
	memcpy(def->text, text, len);
	def->text[len] = '\0';
	def->text_len = (uint32_t)len;
	def->n_types = n_types;
	for (uint16_t i = 0; i < n_types; i++)
		def->types[i] = proto_get_u32(types_be + 4u * i);
	def->hash = hash;
	def->id = ++reg->next_id;
	def->refs = 1;
	list_init(&def->idle_node);
	def->chain = reg->buckets[hash % reg->n_buckets];
	reg->buckets[hash % reg->n_buckets] = def;
	reg->count++;
	return def;
}

void stmtreg_release(struct stmtreg *reg, struct stmt_def *def)
{
	if (--def->refs > 0)
		return;
	list_add_tail(&reg->idle, &def->idle_node);
	reg->n_idle++;
	if (reg->n_idle > STMTREG_IDLE_MAX)
		stmtreg_remove(reg, list_entry(list_first(&reg->idle), struct stmt_def, idle_node));
}

void stmtreg_name(uint64_t id, char out[STMTREG_NAME_MAX])
{
	snprintf(out, STMTREG_NAME_MAX, "pgsluice_%" PRIu64, id);
}
