/* stats.c - rendering the STATS JSON from the per-worker counters. */
#include "server/stats.h"

#include <inttypes.h>
#include <stdio.h>

static uint64_t load(const atomic_uint_least64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* Account for n bytes printed at *off; -1 when they did not fit. */
static int append(size_t cap, size_t *off, int n)
{
    if (n < 0 || (size_t)n >= cap - *off)
        return -1;
    *off += (size_t)n;
    return 0;
}

size_t stats_render_json(const struct stats *s, uint64_t now_ms, char *out, size_t cap)
{
    uint64_t cur = 0, total = 0, reqs = 0, in = 0, outb = 0, errs = 0;
    uint64_t by_proto[STATS_PROTOS] = {0};
    for (unsigned i = 0; i < s->nworkers; i++) {
        const struct stats_worker *w = &s->workers[i];
        cur += load(&w->connections_current);
        total += load(&w->connections_total);
        reqs += load(&w->requests_total);
        in += load(&w->bytes_in);
        outb += load(&w->bytes_out);
        errs += load(&w->errors_total);
        for (int k = 0; k < STATS_PROTOS; k++)
            by_proto[k] += load(&w->requests_by_proto[k]);
    }
    size_t off = 0;
    if (append(cap, &off, snprintf(out, cap,
            "{\"version\":\"%s\",\"uptime_s\":%" PRIu64 ",\"workers\":%u,"
            "\"connections_current\":%" PRIu64 ",\"connections_total\":%" PRIu64 ","
            "\"connections_rejected\":%" PRIu64 ",\"requests_total\":%" PRIu64 ","
            "\"requests_by_protocol\":{\"framed\":%" PRIu64 ",\"raw\":%" PRIu64 ",\"http\":%" PRIu64 "},"
            "\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64 ",\"errors_total\":%" PRIu64 ","
            "\"per_worker\":[",
            ECHOD_VERSION, (now_ms - s->start_ms) / 1000, s->nworkers, cur, total,
            load(&s->connections_rejected), reqs, by_proto[0], by_proto[1], by_proto[2], in, outb,
            errs)) < 0)
        return 0;
    for (unsigned i = 0; i < s->nworkers; i++) {
        const struct stats_worker *w = &s->workers[i];
        if (append(cap, &off, snprintf(out + off, cap - off,
                "%s{\"connections\":%" PRIu64 ",\"requests\":%" PRIu64 "}", i ? "," : "",
                load(&w->connections_current), load(&w->requests_total))) < 0)
            return 0;
    }
    if (append(cap, &off, snprintf(out + off, cap - off, "]}")) < 0)
        return 0;
    return off;
}
