/* metrics_hist.h - a latency histogram with Prometheus buckets, kept per
 * worker without locks (one writer) and summed when /metrics is scraped.
 * Apart from metrics.h so that the counters (stats.h) can hold it. */
#ifndef ECHOD_METRICS_HIST_H
#define ECHOD_METRICS_HIST_H

#include <stdatomic.h>
#include <stdint.h>

/* Upper bounds from 10 us to 10 s in 1-2.5-5 steps: 19 buckets and +Inf. */
#define METRICS_HIST_BOUNDS 19
#define METRICS_HIST_SLOTS (METRICS_HIST_BOUNDS + 1)

/* One histogram, written by one thread only (its worker) with relaxed atomic
 * stores, read by the scraping thread. Buckets are not cumulative here; the
 * renderer accumulates. Aligned so that workers' histograms never share a
 * cache line. */
struct metrics_hist {
    _Alignas(64) atomic_uint_least64_t buckets[METRICS_HIST_SLOTS];
    atomic_uint_least64_t sum_ns;
};

/* Upper bounds in nanoseconds (the last slot, +Inf, has none). */
extern const uint64_t metrics_hist_bounds_ns[METRICS_HIST_BOUNDS];

/* The slot of a value: the first bucket whose bound is >= ns, or
 * METRICS_HIST_BOUNDS (+Inf). A table lookup on the value's highest bit and
 * one comparison: the bounds are at least a factor 2 apart, so a power-of-two
 * range holds at most one of them. */
unsigned metrics_hist_slot(uint64_t ns);

/* Record n observations of the same value (single writer: the owning
 * thread, so a relaxed load and store make the add). */
static inline void metrics_hist_observe_n(struct metrics_hist *h, uint64_t ns, uint64_t n)
{
    atomic_uint_least64_t *b = &h->buckets[metrics_hist_slot(ns)];
    atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + n,
                          memory_order_relaxed);
    atomic_store_explicit(&h->sum_ns,
                          atomic_load_explicit(&h->sum_ns, memory_order_relaxed) + ns * n,
                          memory_order_relaxed);
}

/* Record one observation (single writer: the owning thread). */
static inline void metrics_hist_observe(struct metrics_hist *h, uint64_t ns)
{
    metrics_hist_observe_n(h, ns, 1);
}

#endif
