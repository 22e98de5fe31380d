/* hist.c - the log-linear histogram: bucket bounds, merge, percentiles.
 *
 * Recording is inline in hist.h; this file holds what runs once per report.
 */
#include "client/hist.h"

#include <math.h>
#include <string.h>

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (src->count == 0)
        return;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
    dst->sum_sq += src->sum_sq;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

/* Width of bucket i as a power of two: 0 in the linear range. */
static unsigned bucket_shift(unsigned i)
{
    unsigned group = i >> HIST_SUB_BITS;
    return group == 0 ? 0 : group - 1;
}

uint64_t hist_bucket_low(unsigned i)
{
    if (i < HIST_SUB_COUNT)
        return i;
    uint64_t mantissa = HIST_SUB_COUNT + (i & (HIST_SUB_COUNT - 1));
    return mantissa << bucket_shift(i);
}

uint64_t hist_bucket_high(unsigned i)
{
    return hist_bucket_low(i) + (UINT64_C(1) << bucket_shift(i));
}

uint64_t hist_percentile(const struct hist *h, double pct)
{
    if (h->count == 0)
        return 0;
    if (pct <= 0)
        return h->min;
    if (pct >= 100)
        return h->max;
    /* The smallest value with at least pct% of the values at or below it:
     * the value of rank ceil(pct/100 * count), counting from 1. */
    double exact_rank = ceil(pct / 100.0 * (double)h->count);
    uint64_t rank = exact_rank < 1 ? 1 : (uint64_t)exact_rank;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t low = hist_bucket_low(i);
            uint64_t mid = low + (hist_bucket_high(i) - low) / 2;
            if (mid < h->min)
                return h->min;
            if (mid > h->max)
                return h->max;
            return mid;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->count == 0 ? 0.0 : h->sum / (double)h->count;
}

double hist_stdev(const struct hist *h)
{
    if (h->count < 2)
        return 0.0;
    double mean = hist_mean(h);
    double var = h->sum_sq / (double)h->count - mean * mean;
    /* Rounding can make a tiny variance come out negative. */
    return var > 0 ? sqrt(var) : 0.0;
}
