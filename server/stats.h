/* stats.h - the daemon's counters and the STATS reply.
 *
 * Each worker owns one cache-line-aligned block of counters and is the only
 * thread that writes it, with relaxed atomic stores (no lock, no read-modify-
 * write on the request path). Any thread may read every block to answer STATS;
 * the sums are a consistent-enough snapshot for monitoring, not a transaction.
 */
#ifndef ECHOD_STATS_H
#define ECHOD_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "server/metrics_hist.h"

/* Listener protocols counted apart (enum proto_kind in proto.h). */
#define STATS_PROTOS 3

/* HTTP responses counted by status code, 100..599. */
#define STATS_HTTP_CODE_MIN 100
#define STATS_HTTP_CODES 500

struct stats_worker {
    _Alignas(64) atomic_uint_least64_t connections_current;
    atomic_uint_least64_t connections_total;
    atomic_uint_least64_t requests_total;
    atomic_uint_least64_t requests_by_proto[STATS_PROTOS]; /* by enum proto_kind */
    atomic_uint_least64_t bytes_in;
    atomic_uint_least64_t bytes_out;
    atomic_uint_least64_t errors_total;
    atomic_uint_least64_t http_responses[STATS_HTTP_CODES];   /* by status - 100 */
    /* Server-side latency by protocol: from the loop turn that read a
     * request to the moment its reply's last byte was written. */
    struct metrics_hist latency[STATS_PROTOS];
};

struct stats {
    struct stats_worker *workers;   /* one block per worker */
    unsigned nworkers;
    atomic_uint_least64_t connections_rejected; /* written by the listener and workers */
    atomic_bool unready;            /* shutting down: /readyz answers 503 (main thread) */
    uint64_t start_ms;              /* monotonic clock at start-up */
};

/* Add n to a counter owned by the calling thread (single writer). */
static inline void stats_add(atomic_uint_least64_t *counter, uint64_t n)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* The longest counter: UINT64_MAX in decimal. */
#define STATS_U64_DIGITS 20
/* Worst-case bytes of one per_worker entry (with its comma) and of the rest. */
#define STATS_WORKER_JSON_MAX (sizeof(",{\"connections\":,\"requests\":}") - 1 + 2 * STATS_U64_DIGITS)
#define STATS_FIXED_JSON_MAX 1024
/* Largest STATS JSON for a given worker count. */
#define STATS_JSON_MAX(nworkers) (STATS_FIXED_JSON_MAX + (size_t)(nworkers) * STATS_WORKER_JSON_MAX)

static inline size_t stats_json_max(unsigned nworkers)
{
    return STATS_JSON_MAX(nworkers);
}

/* Render the STATS JSON object into out; returns its length, or 0 if it did
 * not fit in cap. */
size_t stats_render_json(const struct stats *s, uint64_t now_ms, char *out, size_t cap);

#endif
