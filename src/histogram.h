/*
 * histogram.h - log-bucketed latency histograms in microseconds.
 *
 * Every query's duration is recorded into the histogram of its pool; SHOW
 * STATS reads percentiles from it and the Prometheus exporter reads
 * cumulative counts. The struct is a fixed block of counters (no pointers,
 * no allocation) so it can be embedded, copied with memcpy and merged.
 * An all-zero struct is an empty histogram, as is one after histogram_reset().
 */
#ifndef PGSLUICE_HISTOGRAM_H
#define PGSLUICE_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

/*
 * Each power of two [2^e, 2^(e+1)) is split into 2^HISTOGRAM_SUB_BITS equal
 * sub-buckets, so a bucket is at most 1/32 as wide as its lower bound and its
 * midpoint lies within 1/64 (1.6 %) of any value in it. Values below 64 get
 * a bucket each and are exact. Five bits rather than six keep the struct
 * under 8 KiB with 64-bit counters (six bits would cost 13.5 KiB).
 */
#define HISTOGRAM_SUB_BITS 5

/* Values at or past 2^32 µs (71.6 minutes) are counted in the last bucket. */
#define HISTOGRAM_TOP_BITS 32
#define HISTOGRAM_LIMIT ((uint64_t)1 << HISTOGRAM_TOP_BITS)

#define HISTOGRAM_BUCKETS ((HISTOGRAM_TOP_BITS - HISTOGRAM_SUB_BITS + 1) << HISTOGRAM_SUB_BITS)

/* Worst relative distance between a recorded value and what it reads back as. */
#define HISTOGRAM_MAX_REL_ERROR (1.0 / (2 << HISTOGRAM_SUB_BITS))

struct histogram {
	uint64_t count;
	uint64_t sum; /* saturates at UINT64_MAX instead of wrapping */
	uint64_t min; /* exact; meaningless while count == 0 */
	uint64_t max; /* exact; meaningless while count == 0 */
	uint64_t buckets[HISTOGRAM_BUCKETS];
};

/*
 * Empties a histogram.
 * h: the histogram.
 */
void histogram_reset(struct histogram *h);

/*
 * Records one latency in O(1), without floating point.
 * h: the histogram.
 * usec: the latency in microseconds; values past HISTOGRAM_LIMIT land in the
 *       last bucket but still count exactly toward sum, min and max.
 */
void histogram_record(struct histogram *h, uint64_t usec);

/*
 * Adds every value of one histogram to another, as if each had been
 * recorded there too.
 * into: the histogram that grows (may be the same as from).
 * from: the histogram to add; unchanged.
 */
void histogram_merge(struct histogram *into, const struct histogram *from);

/*
 * h: the histogram.
 * Returns how many values were recorded.
 */
uint64_t histogram_count(const struct histogram *h);

/*
 * h: the histogram.
 * Returns the exact sum of the recorded values in µs (UINT64_MAX once it
 * would overflow).
 */
uint64_t histogram_sum(const struct histogram *h);

/*
 * h: the histogram.
 * Returns the smallest recorded value, or 0 when the histogram is empty.
 */
uint64_t histogram_min(const struct histogram *h);

/*
 * h: the histogram.
 * Returns the largest recorded value, or 0 when the histogram is empty.
 */
uint64_t histogram_max(const struct histogram *h);

/*
 * h: the histogram.
 * Returns sum / count rounded to the nearest µs (halves up), or 0 when the
 * histogram is empty.
 */
uint64_t histogram_mean(const struct histogram *h);

/*
 * Estimates a nearest-rank percentile: the smallest recorded v such that at
 * least q * count values are <= v. The answer is the midpoint of v's bucket
 * clamped to [min, max], so it is within HISTOGRAM_MAX_REL_ERROR of v for
 * v < HISTOGRAM_LIMIT, and q = 0 and q = 1 give min and max exactly.
 * h: the histogram.
 * q: the quantile, clamped to [0, 1] (NaN counts as 0), e.g. 0.99.
 * Returns the estimate in µs, or 0 when the histogram is empty.
 */
uint64_t histogram_percentile(const struct histogram *h, double q);

/*
 * Counts the values at or below each bound, for Prometheus "le" buckets.
 * A bucket counts toward a bound when its midpoint (the value percentiles
 * report for it) is <= the bound, so only values within
 * HISTOGRAM_MAX_REL_ERROR of a bound can land on the wrong side of it. A
 * bound below min gives 0 and a bound at or above max gives count, exactly.
 * h: the histogram.
 * bounds: n upper bounds in µs, in non-decreasing order.
 * n: the number of bounds.
 * counts_out: receives n cumulative counts.
 * Returns the number of counts written: n, or the index of the first bound
 * that is smaller than the one before it.
 */
size_t histogram_cumulative(const struct histogram *h, const uint64_t *bounds, size_t n,
			    uint64_t *counts_out);

#endif
