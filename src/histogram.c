/*
 * histogram.c - log-bucketed latency histograms (see histogram.h).
 *
 * Recording sits on the query path (once per CommandComplete), so it is a
 * handful of integer operations. Reading (percentiles, Prometheus buckets)
 * happens on SHOW STATS or a scrape and walks the buckets. Bucket index i
 * below 32 holds the value i; above, i = (shift << SUB_BITS) + (v >> shift)
 * where shift drops all but the top SUB_BITS + 1 bits of v.
 */
#include "histogram.h"

#include <string.h>

#define SUB_COUNT ((uint64_t)1 << HISTOGRAM_SUB_BITS)

static unsigned histogram_index_of(uint64_t v)
{
	if (v >= HISTOGRAM_LIMIT)
		v = HISTOGRAM_LIMIT - 1;
	/* Or-ing in the low bits makes every v below 2 * SUB_COUNT take shift 0,
	 * where the index is v itself. */
	unsigned top = 63u - (unsigned)__builtin_clzll(v | (2 * SUB_COUNT - 1));
	unsigned shift = top - HISTOGRAM_SUB_BITS;
	return (shift << HISTOGRAM_SUB_BITS) + (unsigned)(v >> shift);
}

/* The value a bucket reads back as: the middle of the integers it holds. */
static uint64_t histogram_bucket_mid(unsigned i)
{
	if (i < SUB_COUNT)
		return i;
	unsigned shift = (i >> HISTOGRAM_SUB_BITS) - 1;
	uint64_t lo = ((i & (SUB_COUNT - 1)) + SUB_COUNT) << shift;
	return lo + ((((uint64_t)1 << shift) - 1) >> 1);
}

void histogram_reset(struct histogram *h)
{
	memset(h, 0, sizeof(*h));
}

void histogram_record(struct histogram *h, uint64_t usec)
{
	h->buckets[histogram_index_of(usec)]++;
	if (h->count == 0) {
		h->min = usec;
		h->max = usec;
	} else {
		if (usec < h->min)
			h->min = usec;
		if (usec > h->max)
			h->max = usec;
	}
	h->count++;
	if (__builtin_add_overflow(h->sum, usec, &h->sum))
		h->sum = UINT64_MAX;
}

void histogram_merge(struct histogram *into, const struct histogram *from)
{
	if (from->count == 0)
		return;
	if (into->count == 0) {
		into->min = from->min;
		into->max = from->max;
	} else {
		if (from->min < into->min)
			into->min = from->min;
		if (from->max > into->max)
			into->max = from->max;
	}
	into->count += from->count;
	if (__builtin_add_overflow(into->sum, from->sum, &into->sum))
		into->sum = UINT64_MAX;
	for (size_t i = 0; i < HISTOGRAM_BUCKETS; i++)
		into->buckets[i] += from->buckets[i];
}

uint64_t histogram_count(const struct histogram *h)
{
	return h->count;
}

uint64_t histogram_sum(const struct histogram *h)
{
	return h->sum;
}

uint64_t histogram_min(const struct histogram *h)
{
	return h->count ? h->min : 0;
}

uint64_t histogram_max(const struct histogram *h)
{
	return h->count ? h->max : 0;
}

uint64_t histogram_mean(const struct histogram *h)
{
	if (h->count == 0)
		return 0;
	uint64_t mean = h->sum / h->count;
	uint64_t rem = h->sum % h->count;
	/* rem >= count - rem is rem * 2 >= count without the overflow. */
	return rem >= h->count - rem ? mean + 1 : mean;
}

/* ceil(q * count) kept within [1, count]; written out to spare src/ libm. */
static uint64_t histogram_rank(uint64_t count, double q)
{
	if (!(q > 0.0))
		return 1;
	if (q >= 1.0)
		return count;
	double x = q * (double)count;
	if (x >= (double)count)
		return count;
	uint64_t rank = (uint64_t)x;
	if ((double)rank < x)
		rank++;
	return rank;
}

uint64_t histogram_percentile(const struct histogram *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t rank = histogram_rank(h->count, q);
	if (rank == 1)
		return h->min;
	if (rank == h->count)
		return h->max;
	uint64_t seen = 0;
	unsigned i = 0;
	/* The buckets sum to count >= rank, so the walk stops inside the array. */
	for (; i < HISTOGRAM_BUCKETS - 1; i++) {
		seen += h->buckets[i];
		if (seen >= rank)
			break;
	}
	uint64_t v = histogram_bucket_mid(i);
	if (v < h->min)
		return h->min;
	if (v > h->max)
		return h->max;
	return v;
}

size_t histogram_cumulative(const struct histogram *h, const uint64_t *bounds, size_t n,
			    uint64_t *counts_out)
{
	uint64_t seen = 0;
	unsigned next = 0; /* first bucket not yet in seen */
	for (size_t k = 0; k < n; k++) {
		uint64_t b = bounds[k];
		if (k > 0 && b < bounds[k - 1])
			return k;
		if (h->count == 0 || b < h->min) {
			counts_out[k] = 0;
			continue;
		}
		if (b >= h->max) {
			counts_out[k] = h->count;
			continue;
		}
		while (next < HISTOGRAM_BUCKETS && histogram_bucket_mid(next) <= b)
			seen += h->buckets[next++];
		counts_out[k] = seen;
	}
	return n;
}
