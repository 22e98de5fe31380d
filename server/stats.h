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

/* What kind of request was answered (echod_requests_by_kind_total). */
enum stats_request_kind {
    SK_FRAMED_ECHO,
    SK_FRAMED_PING,
    SK_FRAMED_STATS,
    SK_FRAMED_UNKNOWN,      /* answered with '!' 400 */
    SK_RAW_CHUNK,           /* one chunk received and echoed */
    SK_HTTP_HEAD_ECHO,      /* body-less: the head sent back */
    SK_HTTP_BODY_ECHO,      /* Content-Length or chunked body sent back */
    SK_HTTP_GENERATED,      /* size=N */
    SK_HTTP_JSON,           /* format=json */
    SK_HTTP_PAGE,           /* /healthz, /readyz, /metrics, /stats */
    STATS_REQUEST_KINDS,
};

/* What went wrong, for the errors a client was answered or cut off with. */
enum stats_error_kind {
    SE_BAD_REQUEST,         /* 400: malformed, unknown type, bad control */
    SE_TOO_LARGE,           /* 413, 414, 431 */
    SE_READ_TIMEOUT,        /* 408, or a reply cut by read_timeout */
    SE_WRITE_TIMEOUT,       /* the client stopped reading */
    SE_UNSUPPORTED,         /* 417, 501, 505 */
    SE_UNAVAILABLE,         /* 503: over a limit, shutting down */
    SE_CUT,                 /* a reply cut short: the request was cut or failed after its start */
    SE_OTHER,
    STATS_ERROR_KINDS,
};

/* Why the listener refused a connection (echod_connections_rejected_total). */
enum stats_reject_reason {
    SR_MAX_CONNECTIONS,
    SR_PER_CLIENT,          /* max_connections_per_client */
    SR_OVERLOADED,          /* every worker's inbox full */
    STATS_REJECT_REASONS,
};

/* The error kind of an HTTP-style status code. */
static inline enum stats_error_kind stats_error_of_status(unsigned status)
{
    switch (status) {
    case 400: return SE_BAD_REQUEST;
    case 408: return SE_READ_TIMEOUT;
    case 413: case 414: case 431: return SE_TOO_LARGE;
    case 417: case 501: case 505: return SE_UNSUPPORTED;
    case 503: return SE_UNAVAILABLE;
    default: return SE_OTHER;
    }
}

/* Timeouts by enum timer_kind - 1: idle, read, write, linger. */
#define STATS_TIMEOUT_KINDS 4

struct stats_worker {
    _Alignas(64) atomic_uint_least64_t connections_current;
    atomic_uint_least64_t connections_total;
    atomic_uint_least64_t requests_total;
    atomic_uint_least64_t requests_by_proto[STATS_PROTOS]; /* by enum proto_kind */
    atomic_uint_least64_t bytes_in;
    atomic_uint_least64_t bytes_out;
    atomic_uint_least64_t errors_total;
    atomic_uint_least64_t http_responses[STATS_HTTP_CODES];   /* by status - 100 */
    atomic_uint_least64_t requests_by_kind[STATS_REQUEST_KINDS];
    atomic_uint_least64_t errors_by_kind[STATS_ERROR_KINDS];
    atomic_uint_least64_t timeouts[STATS_TIMEOUT_KINDS];
    /* Gauges, stored once per loop turn: what the worker's pools have lent. */
    atomic_uint_least64_t buffers_in_use;
    atomic_uint_least64_t pipes_in_use;
    atomic_uint_least64_t states_in_use;
    /* How long the worker's busy loop turns take: events wait this long
     * behind the others (the loop's lag). */
    struct metrics_hist turn;
    /* Server-side latency by protocol: from the loop turn that read a
     * request to the moment its reply's last byte was written. */
    struct metrics_hist latency[STATS_PROTOS];
};

struct stats {
    struct stats_worker *workers;   /* one block per worker */
    unsigned nworkers;
    atomic_uint_least64_t connections_rejected; /* written by the listener and workers */
    atomic_uint_least64_t rejected_by_reason[STATS_REJECT_REASONS]; /* the listener */
    atomic_uint_least64_t accept_pauses;        /* out of descriptors (the listener) */
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
