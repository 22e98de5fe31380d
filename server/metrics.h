/* metrics.h - the /metrics page: Prometheus text exposition format 0.0.4.
 *
 * Counters stay where they are counted (struct stats, and whatever per-worker
 * arrays the transport keeps); a scrape reads them with relaxed loads, sums
 * the workers and renders text into a caller's buffer. Nothing is allocated
 * and nothing on the request path changes but the counters themselves.
 *
 * What is rendered:
 * - the base families from struct stats (names below);
 * - any number of extra counter or gauge families, each a small description
 *   of where its per-worker counters live and which label each series has
 *   (`proto="http"`, `code="503"`, ...); an extra family whose name is a base
 *   family's replaces it (so `echod_requests_total` can gain a proto label);
 * - histogram families of struct metrics_hist, per worker, summed at scrape.
 *
 * Names follow the Prometheus conventions: `echod_` prefix, base units
 * (seconds, bytes), `_total` on counters. The renderer returns the length
 * written, or 0 when cap is too small; metrics_render_max() gives a size that
 * is enough whatever the counters' values.
 */
#ifndef ECHOD_METRICS_H
#define ECHOD_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/metrics_hist.h"
#include "server/stats.h"

/* ---- describing series ---- */

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE };

/* Where series s of worker w lives: at (const char *)first + w * worker_stride
 * + s * series_stride. This fits counters in per-worker structs (stride =
 * the struct's size) and per-worker arrays alike. */
struct metrics_where {
    const void *first;
    size_t series_stride;
    size_t worker_stride;
    unsigned nworkers;
};

/* The label of each series, one of:
 * - labels != NULL: labels[s] is the rendered label text without braces, e.g.
 *   `proto="http"` or `proto="framed",kind="echo"` (constants of the caller,
 *   already valid; several labels separated by commas);
 * - labels == NULL, name != NULL: name="<base + s>" (e.g. code="200" for a
 *   per-code array starting at 200);
 * - both NULL: one series without labels (nseries must be 1). */
struct metrics_labels {
    const char *const *labels;
    const char *name;
    unsigned base;
    unsigned nseries;
};

struct metrics_family {
    const char *name;               /* e.g. "echod_http_responses_total" */
    const char *help;
    enum metrics_type type;
    struct metrics_labels series;
    struct metrics_where where;     /* of atomic_uint_least64_t counters */
    bool skip_zero;                 /* leave out series still at 0 (codes never sent) */
    bool per_worker;                /* a series per worker (worker="N") instead of a sum */
};

struct metrics_hist_family {
    const char *name;               /* e.g. "echod_request_duration_seconds" */
    const char *help;
    struct metrics_labels series;
    struct metrics_where where;     /* of struct metrics_hist */
};

struct metrics_source {
    const struct stats *stats;      /* the base families; NULL for none */
    uint64_t now_ms;                /* monotonic, as stats->start_ms */
    const struct metrics_family *families;
    size_t nfamilies;
    const struct metrics_hist_family *hists;
    size_t nhists;
};

/* Render every family; the length, or 0 if it did not fit cap. */
size_t metrics_render(const struct metrics_source *src, char *out, size_t cap);

/* Bytes enough for metrics_render of src whatever the counters hold (every
 * number at its longest, every skip_zero series present). */
size_t metrics_render_max(const struct metrics_source *src);

#endif
