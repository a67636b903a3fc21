/*
 * querystats.h - per-fingerprint statement statistics, bounded by an LRU.
 *
 * querylog.c records every timed statement under its fingerprint (a 64-bit
 * hash of its normalized text); SHOW QUERIES and the Prometheus exporter
 * read the fingerprints with the most total time. At most max_entries
 * fingerprints are kept: a new one evicts the least recently recorded.
 * Single-threaded (one per worker event loop).
 */
#ifndef PGSLUICE_QUERYSTATS_H
#define PGSLUICE_QUERYSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "histogram.h"
#include "list.h"

/* Bytes of normalized text an entry keeps, NUL included. */
#define QUERYSTATS_TEXT_MAX 1024

struct querystats_entry {
	uint64_t fingerprint;
	/* The normalized text, cut to at most 1023 bytes at a UTF-8 character boundary. */
	char normalized[QUERYSTATS_TEXT_MAX];
	uint64_t calls, errors, rows;
	uint64_t total_usec, max_usec;
	struct histogram latency; /* p95: histogram_percentile(&e->latency, 0.95) */
	struct querystats_entry *hash_next; /* the next entry of its hash bucket */
	struct list_head lru;               /* on querystats' LRU list, most recent first */
};

struct querystats;

/*
 * Makes an empty set of statistics.
 * max_entries: how many fingerprints to keep (0: disabled, recording does
 *              nothing).
 * Returns the statistics, or NULL when out of memory.
 */
struct querystats *querystats_create(size_t max_entries);

/*
 * Frees the statistics and every entry.
 * qs: the statistics (may be NULL).
 */
void querystats_free(struct querystats *qs);

/*
 * Changes how many fingerprints are kept (reload), evicting the least
 * recently recorded when there are more; 0 frees them all and disables
 * recording. When the hash table cannot be resized for lack of memory,
 * the old one is kept (lookups get slower, not wrong).
 * qs: the statistics.
 * n: the new bound.
 */
void querystats_set_max(struct querystats *qs, size_t n);

/*
 * Counts one statement, in O(1) on average; a fingerprint seen for the first
 * time, when the bound is reached, takes over the least recently recorded
 * entry (no allocation then). Out of memory below the bound drops the call.
 * qs: the statistics.
 * fingerprint: the statement's fingerprint.
 * normalized: its normalized text, copied only when the entry is created.
 * normalized_len: bytes of normalized (a NUL before it ends the text).
 * usec: how long it took, in microseconds.
 * rows: rows it returned or changed.
 * failed: true when it ended in an error.
 */
void querystats_record(struct querystats *qs, uint64_t fingerprint, const char *normalized,
		       size_t normalized_len, uint64_t usec, uint64_t rows, bool failed);

/*
 * qs: the statistics.
 * Returns how many fingerprints are kept.
 */
size_t querystats_count(const struct querystats *qs);

/*
 * The entries with the most total time: ordered by total_usec descending,
 * then calls descending, then fingerprint ascending. O(count log n).
 * qs: the statistics.
 * out: receives up to n entries (valid until the next record, set_max or free).
 * n: room in out.
 * Returns how many entries were written.
 */
size_t querystats_top(const struct querystats *qs, const struct querystats_entry **out, size_t n);

#endif
