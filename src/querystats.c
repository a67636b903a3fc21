/*
 * querystats.c - per-fingerprint statement statistics (see querystats.h).
 *
 * Entries are found through a chained hash table with a power-of-two number
 * of buckets sized from the bound, and ordered on an intrusive LRU list
 * (most recent first). Entries are allocated as fingerprints first appear;
 * once the bound is reached the LRU tail is unlinked and reused, so a
 * steady-state record allocates nothing.
 */
#include "querystats.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Most buckets a table gets (128 MiB of pointers); chains grow past that bound. */
#define QUERYSTATS_BUCKET_BITS_MAX 24
#define QUERYSTATS_BUCKET_BITS_MIN 4

struct querystats {
	size_t max;                        /* bound on count; 0 = disabled */
	size_t count;                      /* entries allocated, all in the table and on lru */
	struct querystats_entry **buckets; /* 1 << bits heads, or NULL while disabled */
	unsigned bits;
	struct list_head lru; /* most recently recorded first */
};

/* Fibonacci hashing: fingerprints are hashes already, but 0 and friends are common. */
static size_t querystats_bucket(uint64_t fingerprint, unsigned bits)
{
	return (size_t)((fingerprint * 0x9e3779b97f4a7c15ULL) >> (64 - bits));
}

/* The number of bucket bits for a bound of n entries: about one entry per bucket. */
static unsigned querystats_bits_for(size_t n)
{
	unsigned bits = QUERYSTATS_BUCKET_BITS_MIN;
	while (bits < QUERYSTATS_BUCKET_BITS_MAX && ((size_t)1 << bits) < n)
		bits++;
	return bits;
}

/* Moves every entry to a table of 1 << bits buckets; false (old table kept) when out of memory. */
static bool querystats_rehash(struct querystats *qs, unsigned bits)
{
	struct querystats_entry **buckets = calloc((size_t)1 << bits, sizeof(*buckets));
	if (buckets == NULL)
		return false;
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &qs->lru) {
		struct querystats_entry *e = list_entry(pos, struct querystats_entry, lru);
		size_t b = querystats_bucket(e->fingerprint, bits);
		e->hash_next = buckets[b];
		buckets[b] = e;
	}
	free(qs->buckets);
	qs->buckets = buckets;
	qs->bits = bits;
	return true;
}

struct querystats *querystats_create(size_t max_entries)
{
	struct querystats *qs = calloc(1, sizeof(*qs));
	if (qs == NULL)
		return NULL;
	list_init(&qs->lru);
	if (max_entries > 0 && !querystats_rehash(qs, querystats_bits_for(max_entries))) {
		free(qs);
		return NULL;
	}
	qs->max = max_entries;
	return qs;
}

/* Takes e out of the hash table and the LRU list. */
static void querystats_unlink(struct querystats *qs, struct querystats_entry *e)
{
	struct querystats_entry **p = &qs->buckets[querystats_bucket(e->fingerprint, qs->bits)];
	while (*p != e)
		p = &(*p)->hash_next;
	*p = e->hash_next;
	e->hash_next = NULL;
	list_del(&e->lru);
}

/* Frees the least recently recorded entry. */
static void querystats_evict(struct querystats *qs)
{
	struct querystats_entry *e = list_entry(list_last(&qs->lru), struct querystats_entry, lru);
	querystats_unlink(qs, e);
	free(e);
	qs->count--;
}

void querystats_free(struct querystats *qs)
{
	if (qs == NULL)
		return;
	querystats_set_max(qs, 0);
	free(qs);
}

void querystats_set_max(struct querystats *qs, size_t n)
{
	while (qs->count > n)
		querystats_evict(qs);
	if (n == 0) {
		free(qs->buckets);
		qs->buckets = NULL;
		qs->bits = 0;
	} else {
		unsigned bits = querystats_bits_for(n);
		if (bits != qs->bits && !querystats_rehash(qs, bits)) {
			if (qs->buckets == NULL) {
				log_warning("query statistics stay off: out of memory");
				return;
			}
			log_warning("query statistics table not resized: out of memory");
		}
	}
	qs->max = n;
}

static struct querystats_entry *querystats_find(const struct querystats *qs, uint64_t fingerprint)
{
	struct querystats_entry *e = qs->buckets[querystats_bucket(fingerprint, qs->bits)];
	while (e != NULL && e->fingerprint != fingerprint)
		e = e->hash_next;
	return e;
}

/* Copies at most QUERYSTATS_TEXT_MAX - 1 bytes of s, never ending inside a UTF-8 character. */
static void querystats_copy_text(char *dst, const char *s, size_t len)
{
	const char *nul = memchr(s, '\0', len);
	if (nul != NULL)
		len = (size_t)(nul - s);
	if (len > QUERYSTATS_TEXT_MAX - 1) {
		len = QUERYSTATS_TEXT_MAX - 1;
		/* s[len] exists: back off over at most three continuation bytes. */
		for (int i = 0; i < 3 && len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80; i++)
			len--;
	}
	memcpy(dst, s, len);
	dst[len] = '\0';
}

/* A fresh entry for fingerprint: a new one below the bound, else the LRU tail reused. */
static struct querystats_entry *querystats_take(struct querystats *qs, uint64_t fingerprint)
{
	struct querystats_entry *e = NULL;
	if (qs->count < qs->max)
		e = malloc(sizeof(*e));
	if (e != NULL) {
		qs->count++;
	} else {
		if (qs->count == 0)
			return NULL;
		e = list_entry(list_last(&qs->lru), struct querystats_entry, lru);
		querystats_unlink(qs, e);
	}
	e->fingerprint = fingerprint;
	e->calls = e->errors = e->rows = 0;
	e->total_usec = e->max_usec = 0;
	histogram_reset(&e->latency);
	size_t b = querystats_bucket(fingerprint, qs->bits);
	e->hash_next = qs->buckets[b];
	qs->buckets[b] = e;
	list_add_head(&qs->lru, &e->lru);
	return e;
}

void querystats_record(struct querystats *qs, uint64_t fingerprint, const char *normalized,
		       size_t normalized_len, uint64_t usec, uint64_t rows, bool failed)
{
	if (qs->max == 0 || qs->buckets == NULL)
		return;
	struct querystats_entry *e = querystats_find(qs, fingerprint);
	if (e != NULL) {
		list_del(&e->lru);
		list_add_head(&qs->lru, &e->lru);
	} else {
		e = querystats_take(qs, fingerprint);
		if (e == NULL)
			return;
		querystats_copy_text(e->normalized, normalized != NULL ? normalized : "",
				     normalized != NULL ? normalized_len : 0);
	}
	e->calls++;
	e->errors += failed ? 1 : 0;
	e->rows += rows;
	e->total_usec = usec > UINT64_MAX - e->total_usec ? UINT64_MAX : e->total_usec + usec;
	if (usec > e->max_usec)
		e->max_usec = usec;
	histogram_record(&e->latency, usec);
}

size_t querystats_count(const struct querystats *qs)
{
	return qs->count;
}

/* true when a ranks before b in querystats_top's order. */
static bool querystats_before(const struct querystats_entry *a, const struct querystats_entry *b)
{
	if (a->total_usec != b->total_usec)
		return a->total_usec > b->total_usec;
	if (a->calls != b->calls)
		return a->calls > b->calls;
	return a->fingerprint < b->fingerprint;
}

static int querystats_cmp(const void *pa, const void *pb)
{
	const struct querystats_entry *a = *(const struct querystats_entry *const *)pa;
	const struct querystats_entry *b = *(const struct querystats_entry *const *)pb;
	return querystats_before(a, b) ? -1 : querystats_before(b, a) ? 1 : 0;
}

/* Restores the heap below i, whose root is the entry ranked last. */
static void querystats_sift_down(const struct querystats_entry **heap, size_t n, size_t i)
{
	for (;;) {
		size_t worst = i, l = 2 * i + 1, r = 2 * i + 2;
		if (l < n && querystats_before(heap[worst], heap[l]))
			worst = l;
		if (r < n && querystats_before(heap[worst], heap[r]))
			worst = r;
		if (worst == i)
			return;
		const struct querystats_entry *t = heap[i];
		heap[i] = heap[worst];
		heap[worst] = t;
		i = worst;
	}
}

size_t querystats_top(const struct querystats *qs, const struct querystats_entry **out, size_t n)
{
	/* out itself is a heap of the best n so far, the one ranked last at its root. */
	size_t k = 0;
	struct list_head *pos, *tmp;
	list_for_each_safe(pos, tmp, &qs->lru) {
		const struct querystats_entry *e = list_entry(pos, struct querystats_entry, lru);
		if (k < n) {
			out[k++] = e;
			if (k == n) {
				for (size_t i = n / 2; i-- > 0;)
					querystats_sift_down(out, n, i);
			}
		} else if (n > 0 && querystats_before(e, out[0])) {
			out[0] = e;
			querystats_sift_down(out, n, 0);
		}
	}
	if (k > 1)
		qsort(out, k, sizeof(*out), querystats_cmp);
	return k;
}
