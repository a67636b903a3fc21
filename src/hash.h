/*
 * hash.h - FNV-1a, 64 bits: the one hash pgsluice uses for its tables and
 * fingerprints (fast on short keys, no state, good enough spread).
 */
#ifndef PGSLUICE_HASH_H
#define PGSLUICE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_OFFSET 14695981039346656037ull
#define HASH_FNV_PRIME 1099511628211ull

/* Folds len bytes of data into h (start with HASH_FNV_OFFSET). */
static inline uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * HASH_FNV_PRIME;
	return h;
}

#endif
