/* hist.h - a log-linear latency histogram in the manner of HdrHistogram.
 *
 * Values are unsigned integers (echobench records nanoseconds). Values below
 * 2^HIST_SUB_BITS get a bucket each; above that every power of two is split
 * into 2^HIST_SUB_BITS equal buckets, so a bucket is never wider than 1/128 of
 * its lower bound. Percentiles report the bucket's midpoint, which is within
 * 0.4% of the true value (the contract is 1%), from 1 ns up to HIST_MAX_VALUE
 * (about 68.7 s when counting nanoseconds). Larger values are counted in the
 * top bucket and in `clamped`.
 *
 * Memory is fixed (HIST_BUCKETS counters, 31 KiB) and recording is a few
 * instructions with no branch on the data beyond the clamp. Histograms of the
 * same layout merge by adding counters, so each thread keeps its own and the
 * report merges them. A histogram belongs to one thread; it takes no lock.
 */
#ifndef ECHOD_HIST_H
#define ECHOD_HIST_H

#include <stdint.h>

/* Bits of mantissa kept: 2^7 = 128 buckets per power of two, 0.78% width. */
#define HIST_SUB_BITS 7
#define HIST_SUB_COUNT (UINT64_C(1) << HIST_SUB_BITS)
/* Highest power of two covered (exclusive): 2^36 ns is 68.7 s, above the
 * 60 s the report promises. */
#define HIST_MAX_BITS 36
#define HIST_MAX_VALUE ((UINT64_C(1) << HIST_MAX_BITS) - 1)
/* Linear range [0, 2^SUB) plus one group of 2^SUB buckets for each power of
 * two from 2^SUB to 2^MAX_BITS, the first group sharing the linear range's
 * layout (see hist_index). */
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB_COUNT)

struct hist {
    uint64_t count;         /* values recorded */
    uint64_t min;           /* exact smallest value (UINT64_MAX when empty) */
    uint64_t max;           /* exact largest value (after clamping) */
    uint64_t clamped;       /* values above HIST_MAX_VALUE, counted as it */
    double sum;             /* for the mean */
    double sum_sq;          /* for the standard deviation */
    uint64_t buckets[HIST_BUCKETS];
};

/* The bucket a value falls in (value <= HIST_MAX_VALUE). */
static inline unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB_COUNT)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;   /* bucket width is 2^shift */
    /* (v >> shift) is in [2^SUB, 2^(SUB+1)): the group number is shift + 1. */
    return (unsigned)((shift + 1) * HIST_SUB_COUNT + ((v >> shift) - HIST_SUB_COUNT));
}

static inline void hist_record(struct hist *h, uint64_t v)
{
    if (v > HIST_MAX_VALUE) {
        v = HIST_MAX_VALUE;
        h->clamped++;
    }
    h->buckets[hist_index(v)]++;
    h->count++;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    double d = (double)v;
    h->sum += d;
    h->sum_sq += d * d;
}

void hist_init(struct hist *h);
/* Add every value of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/* Lowest value and one past the highest value of bucket i. */
uint64_t hist_bucket_low(unsigned i);
uint64_t hist_bucket_high(unsigned i);

/* The value below or at which pct percent of the values lie (pct in 0..100),
 * as the midpoint of its bucket clamped to [min, max]; 0 when empty.
 * pct 0 gives min and 100 gives max exactly. */
uint64_t hist_percentile(const struct hist *h, double pct);
double hist_mean(const struct hist *h);
double hist_stdev(const struct hist *h);

#endif
