/* test_hist.c - the latency histogram (client/hist.c): bucket layout is
 * contiguous and never wider than 1/128 of its lower bound; percentiles on
 * known distributions are within 1% of the exact answer from a sorted copy;
 * merging per-thread histograms equals recording into one; min, max, mean,
 * stdev; empty and clamped cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "client/hist.h"

/* Values per distribution: enough for p99.99 to rest on ten samples. */
#define NVALUES 100000
/* The contract: at most 1% relative error. */
#define MAX_REL_ERROR 0.01
#define NS_PER_US UINT64_C(1000)
#define NS_PER_S UINT64_C(1000000000)

static const double percentiles[] = {1, 10, 25, 50, 75, 90, 99, 99.9, 99.99};

/* xorshift64*: reproducible values without depending on libc's rand(). */
static uint64_t rng_state = UINT64_C(0x9E3779B97F4A7C15);
static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}
/* Uniform in [0, 1). */
static double rng_unit(void)
{
    return (double)(rng_next() >> 11) / 9007199254740992.0;
}

static struct hist *hist_new(void)
{
    struct hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    hist_init(h);
    return h;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact percentile by the histogram's definition: the value of rank
 * ceil(pct/100 * n) in sorted order. */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double pct)
{
    double r = ceil(pct / 100.0 * (double)n);
    size_t rank = r < 1 ? 1 : (size_t)r;
    return sorted[rank - 1];
}

static void check_against_exact(uint64_t *values, size_t n)
{
    struct hist *h = hist_new();
    for (size_t i = 0; i < n; i++)
        hist_record(h, values[i]);
    qsort(values, n, sizeof(values[0]), cmp_u64);
    for (size_t k = 0; k < sizeof(percentiles) / sizeof(percentiles[0]); k++) {
        uint64_t want = exact_percentile(values, n, percentiles[k]);
        uint64_t got = hist_percentile(h, percentiles[k]);
        double rel = fabs((double)got - (double)want) / (double)want;
        if (rel > MAX_REL_ERROR)
            fail_msg("p%g: got %llu, exact %llu (%.3f%%)", percentiles[k],
                     (unsigned long long)got, (unsigned long long)want, rel * 100);
    }
    assert_int_equal(hist_percentile(h, 0), values[0]);
    assert_int_equal(hist_percentile(h, 100), values[n - 1]);
    assert_int_equal(h->count, n);
    free(h);
}

static void test_bucket_layout(void **state)
{
    (void)state;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        uint64_t low = hist_bucket_low(i), high = hist_bucket_high(i);
        assert_true(high > low);
        assert_int_equal(hist_index(low), i);
        assert_int_equal(hist_index(high - 1), i);
        if (i + 1 < HIST_BUCKETS)
            assert_int_equal(high, hist_bucket_low(i + 1));
        if (low >= HIST_SUB_COUNT)
            assert_true((double)(high - low) / (double)low <= 1.0 / (double)HIST_SUB_COUNT);
    }
    assert_int_equal(hist_index(HIST_MAX_VALUE), HIST_BUCKETS - 1);
    assert_int_equal(hist_bucket_high(HIST_BUCKETS - 1), HIST_MAX_VALUE + 1);
}

/* Any single value from 1 us to 60 s reads back within 1%. */
static void test_single_values_1us_to_60s(void **state)
{
    (void)state;
    struct hist *h = hist_new();
    double lo = log((double)NS_PER_US), hi = log(60.0 * (double)NS_PER_S);
    for (int k = 0; k < 20000; k++) {
        uint64_t v = (uint64_t)exp(lo + (hi - lo) * rng_unit());
        unsigned i = hist_index(v);
        uint64_t low = hist_bucket_low(i);
        uint64_t mid = low + (hist_bucket_high(i) - low) / 2;
        assert_true(fabs((double)mid - (double)v) / (double)v <= MAX_REL_ERROR);
        /* Alone in a histogram, a value is its own min and max: exact. */
        hist_init(h);
        hist_record(h, v);
        assert_int_equal(hist_percentile(h, 50), v);
    }
    free(h);
}

static void test_uniform_distribution(void **state)
{
    (void)state;
    uint64_t *v = malloc(NVALUES * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < NVALUES; i++)
        v[i] = NS_PER_US + rng_next() % NS_PER_S;       /* 1 us .. 1 s */
    check_against_exact(v, NVALUES);
    free(v);
}

static void test_lognormal_distribution(void **state)
{
    (void)state;
    uint64_t *v = malloc(NVALUES * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < NVALUES; i++) {
        /* Box-Muller; median 200 us, a long right tail like real latency. */
        double z = sqrt(-2.0 * log(1.0 - rng_unit())) * cos(2.0 * M_PI * rng_unit());
        v[i] = (uint64_t)(200.0 * (double)NS_PER_US * exp(1.2 * z)) + NS_PER_US;
    }
    check_against_exact(v, NVALUES);
    free(v);
}

/* Mostly fast with a few very slow: the shape a stalled server gives. */
static void test_bimodal_distribution(void **state)
{
    (void)state;
    uint64_t *v = malloc(NVALUES * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < NVALUES; i++) {
        if (i % 200 == 0)
            v[i] = 2 * NS_PER_S + rng_next() % (40 * NS_PER_S);   /* 2 .. 42 s */
        else
            v[i] = 30 * NS_PER_US + rng_next() % (20 * NS_PER_US);
    }
    check_against_exact(v, NVALUES);
    free(v);
}

static void test_merge_equals_single(void **state)
{
    (void)state;
    enum { PARTS = 4 };
    struct hist *all = hist_new(), *merged = hist_new(), *part[PARTS];
    for (int p = 0; p < PARTS; p++)
        part[p] = hist_new();
    for (size_t i = 0; i < NVALUES; i++) {
        uint64_t v = (uint64_t)exp(log(1000.0) + 20.0 * rng_unit());
        hist_record(all, v);
        hist_record(part[i % PARTS], v);
    }
    for (int p = 0; p < PARTS; p++)
        hist_merge(merged, part[p]);
    assert_int_equal(merged->count, all->count);
    assert_int_equal(merged->min, all->min);
    assert_int_equal(merged->max, all->max);
    assert_memory_equal(merged->buckets, all->buckets, sizeof(all->buckets));
    for (size_t k = 0; k < sizeof(percentiles) / sizeof(percentiles[0]); k++)
        assert_int_equal(hist_percentile(merged, percentiles[k]),
                         hist_percentile(all, percentiles[k]));
    assert_true(fabs(hist_mean(merged) - hist_mean(all)) <= 1e-9 * hist_mean(all));
    free(all);
    free(merged);
    for (int p = 0; p < PARTS; p++)
        free(part[p]);
}

static void test_mean_stdev_min_max(void **state)
{
    (void)state;
    struct hist *h = hist_new();
    /* 1000 and 3000 alternating: mean 2000, population stdev 1000. */
    for (int i = 0; i < 1000; i++) {
        hist_record(h, 1000);
        hist_record(h, 3000);
    }
    assert_true(fabs(hist_mean(h) - 2000.0) < 1e-6);
    assert_true(fabs(hist_stdev(h) - 1000.0) < 1e-6);
    assert_int_equal(h->min, 1000);
    assert_int_equal(h->max, 3000);
    /* Rank 1000 of 2000 is the last 1000; rank 1001 the first 3000. */
    assert_true(labs((long)hist_percentile(h, 50) - 1000) <= 1000 * MAX_REL_ERROR);
    assert_true(labs((long)hist_percentile(h, 50.1) - 3000) <= 3000 * MAX_REL_ERROR);
    free(h);
}

static void test_empty(void **state)
{
    (void)state;
    struct hist *h = hist_new();
    assert_int_equal(h->count, 0);
    assert_int_equal(hist_percentile(h, 50), 0);
    assert_int_equal(hist_percentile(h, 100), 0);
    assert_true(hist_mean(h) == 0.0);
    assert_true(hist_stdev(h) == 0.0);
    struct hist *other = hist_new();
    hist_record(other, 5);
    hist_merge(other, h);            /* merging an empty one changes nothing */
    assert_int_equal(other->count, 1);
    assert_int_equal(other->min, 5);
    free(h);
    free(other);
}

static void test_clamped_above_range(void **state)
{
    (void)state;
    struct hist *h = hist_new();
    hist_record(h, 100 * NS_PER_S);
    hist_record(h, UINT64_MAX);
    hist_record(h, NS_PER_US);
    assert_int_equal(h->clamped, 2);
    assert_int_equal(h->count, 3);
    assert_int_equal(h->max, HIST_MAX_VALUE);
    assert_int_equal(hist_percentile(h, 100), HIST_MAX_VALUE);
    assert_true(labs((long)hist_percentile(h, 1) - (long)NS_PER_US) <= NS_PER_US * MAX_REL_ERROR);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_layout),
        cmocka_unit_test(test_single_values_1us_to_60s),
        cmocka_unit_test(test_uniform_distribution),
        cmocka_unit_test(test_lognormal_distribution),
        cmocka_unit_test(test_bimodal_distribution),
        cmocka_unit_test(test_merge_equals_single),
        cmocka_unit_test(test_mean_stdev_min_max),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_clamped_above_range),
    };
    return cmocka_run_group_tests_name("hist", tests, NULL, NULL);
}
