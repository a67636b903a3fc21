/*
 * test_histogram.c - latency histograms (histogram.c): percentiles against
 * exact nearest-rank values of sorted copies for synthetic distributions
 * drawn from a fixed-seed generator, exact counters, merging, and the
 * cumulative counts behind the Prometheus export.
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"
#include "suites.h"

#define N_SAMPLES 1000000

static const double quantiles[] = {0.5, 0.95, 0.99, 0.999};

/* xorshift64*: fixed seeds make every run see the same samples. */
static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed;
}

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

/* Uniform in (0, 1]: never 0, so log() below stays finite. */
static double rng_unit(void)
{
	return (double)((rng_next() >> 11) + 1) * 0x1.0p-53;
}

/* Box-Muller; only the cosine half is used, which keeps the code short. */
static double rng_normal(void)
{
	double u1 = rng_unit();
	double u2 = rng_unit();
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static uint64_t to_usec(double x)
{
	return x <= 0.0 ? 0 : (uint64_t)(x + 0.5);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* The nearest-rank definition, computed independently of histogram.c. */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double q)
{
	size_t rank = (size_t)ceil(q * (double)n);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

/* How many sorted values are <= v. */
static uint64_t exact_count_le(const uint64_t *sorted, size_t n, uint64_t v)
{
	size_t lo = 0;
	size_t hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sorted[mid] <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static double rel_error(uint64_t got, uint64_t want)
{
	if (want == 0)
		return got == 0 ? 0.0 : 1.0;
	return fabs((double)got - (double)want) / (double)want;
}

static uint64_t *samples;
static struct histogram hist;

static void setup(void)
{
	samples = malloc(N_SAMPLES * sizeof(*samples));
	ck_assert_ptr_nonnull(samples);
	histogram_reset(&hist);
}

static void teardown(void)
{
	free(samples);
}

/*
 * Records the samples, then checks the exact counters and the percentiles
 * against a sorted copy (samples is sorted afterwards).
 */
static void check_against_exact(size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		histogram_record(&hist, samples[i]);
		sum += samples[i];
	}
	qsort(samples, n, sizeof(*samples), cmp_u64);
	ck_assert_uint_eq(histogram_count(&hist), n);
	ck_assert_uint_eq(histogram_sum(&hist), sum);
	ck_assert_uint_eq(histogram_min(&hist), samples[0]);
	ck_assert_uint_eq(histogram_max(&hist), samples[n - 1]);
	ck_assert_uint_eq(histogram_mean(&hist), (sum + n / 2) / n);
	for (size_t k = 0; k < sizeof(quantiles) / sizeof(quantiles[0]); k++) {
		uint64_t want = exact_percentile(samples, n, quantiles[k]);
		uint64_t got = histogram_percentile(&hist, quantiles[k]);
		ck_assert_msg(rel_error(got, want) <= 0.02, "q=%g: got %llu, exact %llu",
			      quantiles[k], (unsigned long long)got, (unsigned long long)want);
	}
	ck_assert_uint_eq(histogram_percentile(&hist, 0.0), samples[0]);
	ck_assert_uint_eq(histogram_percentile(&hist, 1.0), samples[n - 1]);
}

START_TEST(struct_stays_under_8_kib)
{
	ck_assert_uint_lt(sizeof(struct histogram), 8192);
	ck_assert_uint_eq(HISTOGRAM_BUCKETS, 896);
}
END_TEST

START_TEST(empty_histogram_reads_as_zero)
{
	ck_assert_uint_eq(histogram_count(&hist), 0);
	ck_assert_uint_eq(histogram_sum(&hist), 0);
	ck_assert_uint_eq(histogram_min(&hist), 0);
	ck_assert_uint_eq(histogram_max(&hist), 0);
	ck_assert_uint_eq(histogram_mean(&hist), 0);
	ck_assert_uint_eq(histogram_percentile(&hist, 0.0), 0);
	ck_assert_uint_eq(histogram_percentile(&hist, 0.5), 0);
	ck_assert_uint_eq(histogram_percentile(&hist, 1.0), 0);
	uint64_t bounds[] = {0, 1000, UINT64_MAX};
	uint64_t counts[] = {7, 7, 7};
	ck_assert_uint_eq(histogram_cumulative(&hist, bounds, 3, counts), 3);
	ck_assert_uint_eq(counts[0], 0);
	ck_assert_uint_eq(counts[1], 0);
	ck_assert_uint_eq(counts[2], 0);
}
END_TEST

START_TEST(reset_empties_and_matches_zeroed_struct)
{
	static struct histogram zero;
	histogram_record(&hist, 5);
	histogram_record(&hist, 123456);
	ck_assert_uint_eq(histogram_count(&hist), 2);
	histogram_reset(&hist);
	ck_assert_uint_eq(histogram_count(&hist), 0);
	ck_assert_int_eq(memcmp(&hist, &zero, sizeof(zero)), 0);
	/* A zeroed struct must take a first value as its min, not keep 0. */
	histogram_record(&zero, 42);
	ck_assert_uint_eq(histogram_min(&zero), 42);
	ck_assert_uint_eq(histogram_max(&zero), 42);
}
END_TEST

START_TEST(uniform_percentiles_within_2_percent)
{
	rng_seed(0x9E3779B97F4A7C15ULL);
	for (size_t i = 0; i < N_SAMPLES; i++)
		samples[i] = 1 + rng_next() % 1000000;
	check_against_exact(N_SAMPLES);
}
END_TEST

START_TEST(lognormal_percentiles_within_2_percent)
{
	rng_seed(0xD1B54A32D192ED03ULL);
	for (size_t i = 0; i < N_SAMPLES; i++)
		samples[i] = to_usec(2000.0 * exp(rng_normal()));
	check_against_exact(N_SAMPLES);
	/* The median of a log-normal is exp(mu): the sample should agree. */
	ck_assert_msg(rel_error(histogram_percentile(&hist, 0.5), 2000) < 0.03, "median %llu",
		      (unsigned long long)histogram_percentile(&hist, 0.5));
}
END_TEST

START_TEST(bimodal_percentiles_within_2_percent)
{
	rng_seed(0x94D049BB133111EBULL);
	for (size_t i = 0; i < N_SAMPLES; i++) {
		bool slow = rng_next() % 10 == 0;
		double x = slow ? 200000.0 + 20000.0 * rng_normal() : 500.0 + 50.0 * rng_normal();
		samples[i] = to_usec(x);
	}
	check_against_exact(N_SAMPLES);
	/* p50 must come from the fast mode and p95 from the slow one. */
	ck_assert_uint_lt(histogram_percentile(&hist, 0.5), 1000);
	ck_assert_uint_gt(histogram_percentile(&hist, 0.95), 100000);
}
END_TEST

START_TEST(constant_values_read_back_exactly)
{
	/* 777777 sits inside a bucket 16384 wide; min/max clamping makes it exact. */
	for (size_t i = 0; i < N_SAMPLES; i++)
		samples[i] = 777777;
	check_against_exact(N_SAMPLES);
	for (size_t k = 0; k < sizeof(quantiles) / sizeof(quantiles[0]); k++)
		ck_assert_uint_eq(histogram_percentile(&hist, quantiles[k]), 777777);
	ck_assert_uint_eq(histogram_mean(&hist), 777777);
}
END_TEST

START_TEST(few_constants_within_2_percent)
{
	static const uint64_t values[] = {3, 250, 9999, 1234567};
	rng_seed(42);
	for (size_t i = 0; i < N_SAMPLES; i++)
		samples[i] = values[rng_next() % 4];
	check_against_exact(N_SAMPLES);
}
END_TEST

START_TEST(single_value_is_every_percentile)
{
	histogram_record(&hist, 31337);
	ck_assert_uint_eq(histogram_count(&hist), 1);
	ck_assert_uint_eq(histogram_sum(&hist), 31337);
	ck_assert_uint_eq(histogram_mean(&hist), 31337);
	ck_assert_uint_eq(histogram_min(&hist), 31337);
	ck_assert_uint_eq(histogram_max(&hist), 31337);
	ck_assert_uint_eq(histogram_percentile(&hist, 0.0), 31337);
	ck_assert_uint_eq(histogram_percentile(&hist, 0.5), 31337);
	ck_assert_uint_eq(histogram_percentile(&hist, 0.999), 31337);
	ck_assert_uint_eq(histogram_percentile(&hist, 1.0), 31337);
}
END_TEST

START_TEST(small_values_are_exact)
{
	/* Below 64 every value has a bucket of its own. */
	for (uint64_t v = 0; v < 64; v++)
		histogram_record(&hist, v);
	for (uint64_t rank = 1; rank <= 64; rank++)
		ck_assert_uint_eq(histogram_percentile(&hist, (double)rank / 64.0), rank - 1);
}
END_TEST

START_TEST(every_bucket_edge_reads_back_within_bound)
{
	/*
	 * The median of {0, v, 2^40} is v's bucket midpoint, unclamped, so this
	 * measures the bucket error directly at the worst places: both ends of
	 * every bucket. Bucket edges are where the top 6 bits of v change.
	 */
	for (unsigned top = 6; top <= HISTOGRAM_TOP_BITS; top++) {
		for (uint64_t m = 32; m < 64; m++) {
			unsigned shift = top - 6;
			uint64_t lo = m << shift;
			uint64_t edges[] = {lo, lo + ((uint64_t)1 << shift) - 1};
			for (size_t k = 0; k < 2; k++) {
				histogram_reset(&hist);
				histogram_record(&hist, 0);
				histogram_record(&hist, edges[k]);
				histogram_record(&hist, (uint64_t)1 << 40);
				unsigned long long got = histogram_percentile(&hist, 0.5);
				unsigned long long want = edges[k];
				ck_assert_msg(rel_error(got, want) <= HISTOGRAM_MAX_REL_ERROR,
					      "value %llu read back as %llu", want, got);
			}
		}
	}
}
END_TEST

START_TEST(zero_and_past_top_values_clamp)
{
	uint64_t huge = (uint64_t)1 << 40; /* about 12.7 days */
	for (int i = 0; i < 10; i++)
		histogram_record(&hist, 0);
	for (int i = 0; i < 10; i++)
		histogram_record(&hist, huge);
	ck_assert_uint_eq(histogram_min(&hist), 0);
	ck_assert_uint_eq(histogram_max(&hist), huge);
	ck_assert_uint_eq(histogram_sum(&hist), 10 * huge);
	ck_assert_uint_eq(histogram_mean(&hist), huge / 2);
	ck_assert_uint_eq(histogram_percentile(&hist, 0.0), 0);
	ck_assert_uint_eq(histogram_percentile(&hist, 0.5), 0);
	ck_assert_uint_eq(histogram_percentile(&hist, 1.0), huge);
	/* Past the top, only the last bucket is known: at least its lower edge. */
	uint64_t p = histogram_percentile(&hist, 0.9);
	ck_assert_uint_ge(p, HISTOGRAM_LIMIT - (HISTOGRAM_LIMIT >> 6));
	ck_assert_uint_lt(p, HISTOGRAM_LIMIT);
	/* Exactly at the limit, and one below, share the last bucket. */
	struct histogram a;
	struct histogram b;
	histogram_reset(&a);
	histogram_reset(&b);
	histogram_record(&a, HISTOGRAM_LIMIT - 1);
	histogram_record(&b, UINT64_MAX);
	ck_assert_int_eq(memcmp(a.buckets, b.buckets, sizeof(a.buckets)), 0);
}
END_TEST

START_TEST(sum_saturates_instead_of_wrapping)
{
	histogram_record(&hist, UINT64_MAX - 1);
	histogram_record(&hist, 5);
	ck_assert_uint_eq(histogram_sum(&hist), UINT64_MAX);
	ck_assert_uint_eq(histogram_max(&hist), UINT64_MAX - 1);
	struct histogram other;
	histogram_reset(&other);
	histogram_record(&other, UINT64_MAX);
	histogram_merge(&hist, &other);
	ck_assert_uint_eq(histogram_sum(&hist), UINT64_MAX);
	ck_assert_uint_eq(histogram_max(&hist), UINT64_MAX);
	ck_assert_uint_eq(histogram_count(&hist), 3);
}
END_TEST

START_TEST(mean_rounds_to_nearest)
{
	histogram_record(&hist, 1);
	histogram_record(&hist, 2);
	ck_assert_uint_eq(histogram_mean(&hist), 2); /* 1.5 rounds up */
	histogram_record(&hist, 2);
	ck_assert_uint_eq(histogram_mean(&hist), 2); /* 1.67 */
	histogram_record(&hist, 0);
	histogram_record(&hist, 0);
	ck_assert_uint_eq(histogram_mean(&hist), 1); /* 1.0 */
	histogram_record(&hist, 0);
	ck_assert_uint_eq(histogram_mean(&hist), 1); /* 0.83 */
	histogram_record(&hist, 0);
	histogram_record(&hist, 0);
	histogram_record(&hist, 0);
	ck_assert_uint_eq(histogram_mean(&hist), 1); /* 0.56 */
	histogram_record(&hist, 0);
	ck_assert_uint_eq(histogram_mean(&hist), 1); /* 0.5 rounds up */
	histogram_record(&hist, 0);
	ck_assert_uint_eq(histogram_mean(&hist), 0); /* 0.45 */
}
END_TEST

START_TEST(merge_equals_recording_into_one)
{
	static struct histogram a;
	static struct histogram b;
	static struct histogram both;
	histogram_reset(&a);
	histogram_reset(&b);
	histogram_reset(&both);
	rng_seed(7);
	for (int i = 0; i < 100000; i++) {
		uint64_t v = to_usec(2000.0 * exp(rng_normal()));
		histogram_record(i % 3 ? &a : &b, v);
		histogram_record(&both, v);
	}
	histogram_record(&b, 1); /* the smallest value lives only in b */
	histogram_record(&both, 1);
	histogram_merge(&a, &b);
	ck_assert_int_eq(memcmp(&a, &both, sizeof(a)), 0);
	ck_assert_uint_eq(histogram_min(&a), 1);

	/* Merging into an empty histogram copies min and max. */
	struct histogram empty;
	histogram_reset(&empty);
	histogram_merge(&empty, &both);
	ck_assert_int_eq(memcmp(&empty, &both, sizeof(empty)), 0);
	/* Merging an empty one changes nothing (its zero min must not win). */
	histogram_reset(&empty);
	histogram_merge(&a, &empty);
	ck_assert_int_eq(memcmp(&a, &both, sizeof(a)), 0);
	/* Merging into itself doubles every count. */
	histogram_merge(&a, &a);
	ck_assert_uint_eq(histogram_count(&a), 2 * histogram_count(&both));
	ck_assert_uint_eq(histogram_sum(&a), 2 * histogram_sum(&both));
	ck_assert_uint_eq(histogram_percentile(&a, 0.99), histogram_percentile(&both, 0.99));
}
END_TEST

START_TEST(cumulative_counts_are_monotonic_and_bounded)
{
	static const uint64_t bounds[] = {0,      100,     500,     1000,    2500,    5000,
					  10000,  25000,   50000,   100000,  250000,  500000,
					  1000000, 2500000, 5000000, 10000000, UINT64_MAX};
	size_t nb = sizeof(bounds) / sizeof(bounds[0]);
	uint64_t counts[sizeof(bounds) / sizeof(bounds[0])];
	rng_seed(0xA0761D6478BD642FULL);
	for (size_t i = 0; i < N_SAMPLES; i++)
		samples[i] = to_usec(2000.0 * exp(rng_normal()));
	check_against_exact(N_SAMPLES);
	ck_assert_uint_eq(histogram_cumulative(&hist, bounds, nb, counts), nb);
	for (size_t k = 0; k < nb; k++) {
		if (k > 0)
			ck_assert_uint_ge(counts[k], counts[k - 1]);
		/* Only values within 1/64 of the bound may fall on its wrong side. */
		uint64_t b = bounds[k];
		uint64_t margin = b / 64;
		uint64_t low = exact_count_le(samples, N_SAMPLES, b - margin);
		uint64_t high = exact_count_le(samples, N_SAMPLES,
					       b > UINT64_MAX - margin ? UINT64_MAX : b + margin);
		ck_assert_msg(low <= counts[k] && counts[k] <= high,
			      "bound %llu: %llu not in [%llu, %llu]", (unsigned long long)b,
			      (unsigned long long)counts[k], (unsigned long long)low,
			      (unsigned long long)high);
	}
	ck_assert_uint_eq(counts[0], exact_count_le(samples, N_SAMPLES, 0));
	ck_assert_uint_eq(counts[nb - 1], histogram_count(&hist));
}
END_TEST

START_TEST(cumulative_counts_buckets_by_midpoint)
{
	histogram_record(&hist, 900);
	histogram_record(&hist, 1000);
	histogram_record(&hist, 1007);
	histogram_record(&hist, 5000);
	/* Buckets 16 wide: 896..911 has midpoint 903, 992..1007 has 999. */
	uint64_t bounds[] = {899, 902, 903, 998, 999, 4999, 5000};
	uint64_t counts[7];
	ck_assert_uint_eq(histogram_cumulative(&hist, bounds, 7, counts), 7);
	ck_assert_uint_eq(counts[0], 0); /* below min: exact */
	ck_assert_uint_eq(counts[1], 0); /* 900 is missed: within 1/64 of the bound */
	ck_assert_uint_eq(counts[2], 1); /* at the midpoint the bucket counts */
	ck_assert_uint_eq(counts[3], 1);
	ck_assert_uint_eq(counts[4], 3); /* 1000 and 1007 count from 999 on */
	ck_assert_uint_eq(counts[5], 3);
	ck_assert_uint_eq(counts[6], 4); /* at max: exact */

	/* 907 shares the bucket of midpoint 903, yet nothing lies below 907. */
	histogram_reset(&hist);
	histogram_record(&hist, 907);
	histogram_record(&hist, 5000);
	uint64_t below_min = 905;
	ck_assert_uint_eq(histogram_cumulative(&hist, &below_min, 1, counts), 1);
	ck_assert_uint_eq(counts[0], 0);
}
END_TEST

START_TEST(cumulative_stops_at_descending_bound)
{
	histogram_record(&hist, 10);
	uint64_t bounds[] = {5, 20, 15, 30};
	uint64_t counts[] = {99, 99, 99, 99};
	ck_assert_uint_eq(histogram_cumulative(&hist, bounds, 4, counts), 2);
	ck_assert_uint_eq(counts[0], 0);
	ck_assert_uint_eq(counts[1], 1);
	ck_assert_uint_eq(counts[2], 99);
	ck_assert_uint_eq(counts[3], 99);
}
END_TEST

START_TEST(out_of_range_quantiles_clamp)
{
	histogram_record(&hist, 10);
	histogram_record(&hist, 20000);
	histogram_record(&hist, 30000);
	ck_assert_uint_eq(histogram_percentile(&hist, -1.0), 10);
	ck_assert_uint_eq(histogram_percentile(&hist, NAN), 10);
	ck_assert_uint_eq(histogram_percentile(&hist, 2.0), 30000);
	ck_assert_uint_eq(histogram_percentile(&hist, 0.34), 20000 - 20000 % 512 + 255);
}
END_TEST

Suite *histogram_suite(void)
{
	Suite *s = suite_create("histogram");
	TCase *tc = tcase_create("basics");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, struct_stays_under_8_kib);
	tcase_add_test(tc, empty_histogram_reads_as_zero);
	tcase_add_test(tc, reset_empties_and_matches_zeroed_struct);
	tcase_add_test(tc, single_value_is_every_percentile);
	tcase_add_test(tc, small_values_are_exact);
	tcase_add_test(tc, every_bucket_edge_reads_back_within_bound);
	tcase_add_test(tc, zero_and_past_top_values_clamp);
	tcase_add_test(tc, sum_saturates_instead_of_wrapping);
	tcase_add_test(tc, mean_rounds_to_nearest);
	tcase_add_test(tc, merge_equals_recording_into_one);
	tcase_add_test(tc, cumulative_counts_buckets_by_midpoint);
	tcase_add_test(tc, cumulative_stops_at_descending_bound);
	tcase_add_test(tc, out_of_range_quantiles_clamp);
	suite_add_tcase(s, tc);
	/* A million samples, sorted, under the sanitizers: more than Check's 4 s. */
	TCase *td = tcase_create("distributions");
	tcase_add_checked_fixture(td, setup, teardown);
	tcase_set_timeout(td, 60);
	tcase_add_test(td, uniform_percentiles_within_2_percent);
	tcase_add_test(td, lognormal_percentiles_within_2_percent);
	tcase_add_test(td, bimodal_percentiles_within_2_percent);
	tcase_add_test(td, constant_values_read_back_exactly);
	tcase_add_test(td, few_constants_within_2_percent);
	tcase_add_test(td, cumulative_counts_are_monotonic_and_bounded);
	suite_add_tcase(s, td);
	return s;
}
