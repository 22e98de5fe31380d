/* stats_metrics.h - which of the daemon's counters /metrics shows, and how:
 * the description metrics.c renders from (families, labels, histograms). */
#ifndef ECHOD_STATS_METRICS_H
#define ECHOD_STATS_METRICS_H

#include <stdint.h>

#include "server/metrics.h"
#include "server/stats.h"

/* Families beyond the base ones of metrics.c. */
#define STATS_METRICS_FAMILIES 10
#define STATS_METRICS_HISTS 2

/* The storage a metrics_source points into (so it can live on the stack). */
struct stats_metrics {
    struct metrics_family fam[STATS_METRICS_FAMILIES];
    struct metrics_hist_family hist[STATS_METRICS_HISTS];
    struct metrics_source src;
};

/* Describe s (at monotonic time now_ms) into m; render m->src. */
void stats_metrics_describe(const struct stats *s, uint64_t now_ms, struct stats_metrics *m);

#endif
