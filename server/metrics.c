/* metrics.c - rendering the Prometheus text format (see metrics.h).
 *
 * One writer serves rendering and sizing: with a NULL buffer it only counts,
 * and counts every counter value as its longest, so metrics_render_max() is
 * the same walk as metrics_render() and cannot drift from it.
 */
#include "server/metrics.h"

#include <string.h>

#include "common/textbuf.h"

const uint64_t metrics_hist_bounds_ns[METRICS_HIST_BOUNDS] = {
    10000, 25000, 50000,                        /* 10, 25, 50 us */
    100000, 250000, 500000,
    1000000, 2500000, 5000000,                  /* 1, 2.5, 5 ms */
    10000000, 25000000, 50000000,
    100000000, 250000000, 500000000,
    1000000000, 2500000000, 5000000000,         /* 1, 2.5, 5 s */
    10000000000,
};

/* The bounds as label values, written the way Go's client writes floats
 * (strconv 'g'), so series from echod join those of other exporters. */
static const char *const hist_le[METRICS_HIST_SLOTS] = {
    "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
    "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
};

/* For each highest set bit m, the first slot whose bound is >= 2^m (a value
 * with that highest bit is in that slot or the next). Generated from the
 * bounds above; the unit test checks every slot against a linear search. */
static const uint8_t slot_by_msb[64] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 7,
    8, 9, 10, 11, 12, 13, 14, 15, 16, 16, 17, 18, 19, 19, 19, 19, 19, 19, 19, 19,
    19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19,
    19, 19,
};

unsigned metrics_hist_slot(uint64_t ns)
{
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns | 1);
    unsigned slot = slot_by_msb[msb];
    if (slot < METRICS_HIST_BOUNDS && ns > metrics_hist_bounds_ns[slot])
        slot++;
    return slot;
}

/* ---- the writer ---- */

/* Digits of the longest counter (UINT64_MAX). */
#define U64_DIGITS TEXTBUF_U64_DIGITS
#define NS_PER_S UINT64_C(1000000000)
#define MS_PER_S UINT64_C(1000)

static void puts_(struct textbuf *w, const char *s)
{
    textbuf_put(w, s, strlen(s));
}

/* A counter's value: counted at its longest when measuring. */
static void put_value(struct textbuf *w, uint64_t v)
{
    if (textbuf_measuring(w))
        w->len += U64_DIGITS;
    else
        textbuf_put_u64(w, v);
}

/* v / den as a decimal with `frac` digits (den = 10^frac): uptime, sums. */
static void put_fixed(struct textbuf *w, uint64_t v, uint64_t den, unsigned frac)
{
    put_value(w, v / den);
    char tmp[16];
    tmp[0] = '.';
    uint64_t r = v % den;
    for (unsigned i = frac; i > 0; i--) {
        tmp[i] = (char)('0' + r % 10);
        r /= 10;
    }
    textbuf_put(w, tmp, frac + 1);
}

/* HELP text escapes backslash and newline (the format's rule). */
static void put_help(struct textbuf *w, const char *name, const char *help, const char *type)
{
    puts_(w, "# HELP ");
    puts_(w, name);
    textbuf_put(w, " ", 1);
    for (const char *s = help; *s; s++) {
        if (*s == '\\')
            textbuf_put(w, "\\\\", 2);
        else if (*s == '\n')
            textbuf_put(w, "\\n", 2);
        else
            textbuf_put(w, s, 1);
    }
    puts_(w, "\n# TYPE ");
    puts_(w, name);
    textbuf_put(w, " ", 1);
    puts_(w, type);
    textbuf_put(w, "\n", 1);
}

/* `{worker="w",<series label>,le="x"}`, each part optional, nothing if none. */
static void put_labels(struct textbuf *w, const struct metrics_labels *l, unsigned s, long worker,
                       const char *le)
{
    bool any = false;
#define SEP() textbuf_put(w, any ? "," : "{", 1), any = true
    if (worker >= 0) {
        SEP();
        puts_(w, "worker=\"");
        textbuf_put_u64(w, (uint64_t)worker);
        textbuf_put(w, "\"", 1);
    }
    if (l->labels != NULL) {
        SEP();
        puts_(w, l->labels[s]);
    } else if (l->name != NULL) {
        SEP();
        puts_(w, l->name);
        textbuf_put(w, "=\"", 2);
        textbuf_put_u64(w, (uint64_t)l->base + s);
        textbuf_put(w, "\"", 1);
    }
    if (le != NULL) {
        SEP();
        puts_(w, "le=\"");
        puts_(w, le);
        textbuf_put(w, "\"", 1);
    }
#undef SEP
    if (any)
        textbuf_put(w, "}", 1);
}

static const void *where_at(const struct metrics_where *wh, unsigned worker, unsigned s)
{
    return (const char *)wh->first + (size_t)worker * wh->worker_stride +
           (size_t)s * wh->series_stride;
}

static uint64_t load(const atomic_uint_least64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static uint64_t counter_at(const struct metrics_where *wh, unsigned worker, unsigned s)
{
    return load(where_at(wh, worker, s));
}

static void put_sample(struct textbuf *w, const char *name, const char *suffix,
                       const struct metrics_labels *l, unsigned s, long worker, const char *le,
                       uint64_t v)
{
    puts_(w, name);
    if (suffix != NULL)
        puts_(w, suffix);
    put_labels(w, l, s, worker, le);
    textbuf_put(w, " ", 1);
    put_value(w, v);
    textbuf_put(w, "\n", 1);
}

static void render_family(struct textbuf *w, const struct metrics_family *f)
{
    put_help(w, f->name, f->help, f->type == METRICS_COUNTER ? "counter" : "gauge");
    for (unsigned s = 0; s < f->series.nseries; s++) {
        if (f->per_worker) {
            for (unsigned k = 0; k < f->where.nworkers; k++) {
                uint64_t v = counter_at(&f->where, k, s);
                if (!f->skip_zero || v != 0 || textbuf_measuring(w))
                    put_sample(w, f->name, NULL, &f->series, s, (long)k, NULL, v);
            }
            continue;
        }
        uint64_t v = 0;
        for (unsigned k = 0; k < f->where.nworkers; k++)
            v += counter_at(&f->where, k, s);
        if (!f->skip_zero || v != 0 || textbuf_measuring(w))
            put_sample(w, f->name, NULL, &f->series, s, -1, NULL, v);
    }
}

static void render_hist(struct textbuf *w, const struct metrics_hist_family *f)
{
    put_help(w, f->name, f->help, "histogram");
    for (unsigned s = 0; s < f->series.nseries; s++) {
        uint64_t slots[METRICS_HIST_SLOTS] = {0}, sum_ns = 0;
        for (unsigned k = 0; k < f->where.nworkers; k++) {
            const struct metrics_hist *h = where_at(&f->where, k, s);
            for (unsigned i = 0; i < METRICS_HIST_SLOTS; i++)
                slots[i] += load(&h->buckets[i]);
            sum_ns += load(&h->sum_ns);
        }
        uint64_t cum = 0;
        for (unsigned i = 0; i < METRICS_HIST_SLOTS; i++) {
            cum += slots[i];
            put_sample(w, f->name, "_bucket", &f->series, s, -1, hist_le[i], cum);
        }
        puts_(w, f->name);
        puts_(w, "_sum");
        put_labels(w, &f->series, s, -1, NULL);
        textbuf_put(w, " ", 1);
        put_fixed(w, sum_ns, NS_PER_S, 9);
        textbuf_put(w, "\n", 1);
        put_sample(w, f->name, "_count", &f->series, s, -1, NULL, cum);
    }
}

/* ---- the base families, from struct stats ---- */

enum base_field { B_CONNS, B_ACCEPTED, B_REJECTED, B_REQUESTS, B_IN, B_OUT, B_ERRORS,
                  B_W_CONNS, B_W_REQS, B_COUNT };

static const struct {
    const char *name, *help;
    enum metrics_type type;
    size_t offset;              /* in struct stats_worker; B_REJECTED is global */
    bool per_worker;
} base[B_COUNT] = {
    [B_CONNS] = {"echod_connections", "Connections open now.", METRICS_GAUGE,
                 offsetof(struct stats_worker, connections_current), false},
    [B_ACCEPTED] = {"echod_connections_accepted_total", "Connections accepted and served.",
                    METRICS_COUNTER, offsetof(struct stats_worker, connections_total), false},
    [B_REJECTED] = {"echod_connections_rejected_total",
                    "Connections refused at accept (over max_connections, or shutting down).",
                    METRICS_COUNTER, 0, false},
    [B_REQUESTS] = {"echod_requests_total", "Requests answered.", METRICS_COUNTER,
                    offsetof(struct stats_worker, requests_total), false},
    [B_IN] = {"echod_received_bytes_total", "Bytes read from clients.", METRICS_COUNTER,
              offsetof(struct stats_worker, bytes_in), false},
    [B_OUT] = {"echod_sent_bytes_total", "Bytes written to clients.", METRICS_COUNTER,
               offsetof(struct stats_worker, bytes_out), false},
    [B_ERRORS] = {"echod_errors_total",
                  "Requests and connections ended by an error (error reply, timeout, cut stream).",
                  METRICS_COUNTER, offsetof(struct stats_worker, errors_total), false},
    [B_W_CONNS] = {"echod_worker_connections", "Connections open now, by worker.",
                   METRICS_GAUGE, offsetof(struct stats_worker, connections_current), true},
    [B_W_REQS] = {"echod_worker_requests_total", "Requests answered, by worker.",
                  METRICS_COUNTER, offsetof(struct stats_worker, requests_total), true},
};

static bool replaced(const struct metrics_source *src, const char *name)
{
    for (size_t i = 0; i < src->nfamilies; i++)
        if (strcmp(src->families[i].name, name) == 0)
            return true;
    return false;
}

static void render_base(struct textbuf *w, const struct metrics_source *src)
{
    const struct stats *st = src->stats;
    if (!replaced(src, "echod_build_info")) {
        put_help(w, "echod_build_info", "The running version; always 1.", "gauge");
        puts_(w, "echod_build_info{version=\"" ECHOD_VERSION "\"} 1\n");
    }
    if (!replaced(src, "echod_uptime_seconds")) {
        put_help(w, "echod_uptime_seconds", "Seconds since the daemon started.", "gauge");
        puts_(w, "echod_uptime_seconds ");
        put_fixed(w, src->now_ms >= st->start_ms ? src->now_ms - st->start_ms : 0, MS_PER_S, 3);
        textbuf_put(w, "\n", 1);
    }
    if (!replaced(src, "echod_workers")) {
        put_help(w, "echod_workers", "Worker threads.", "gauge");
        puts_(w, "echod_workers ");
        textbuf_put_u64(w, st->nworkers);
        textbuf_put(w, "\n", 1);
    }
    for (unsigned i = 0; i < B_COUNT; i++) {
        if (replaced(src, base[i].name))
            continue;
        struct metrics_family f = {
            .name = base[i].name, .help = base[i].help, .type = base[i].type,
            .series = {.nseries = 1}, .per_worker = base[i].per_worker,
        };
        if (i == B_REJECTED)
            f.where = (struct metrics_where){&st->connections_rejected, 0, 0, 1};
        else
            f.where = (struct metrics_where){(const char *)st->workers + base[i].offset, 0,
                                             sizeof(struct stats_worker), st->nworkers};
        render_family(w, &f);
    }
}

static void render_all(struct textbuf *w, const struct metrics_source *src)
{
    if (src->stats != NULL)
        render_base(w, src);
    for (size_t i = 0; i < src->nfamilies; i++)
        render_family(w, &src->families[i]);
    for (size_t i = 0; i < src->nhists; i++)
        render_hist(w, &src->hists[i]);
}

size_t metrics_render(const struct metrics_source *src, char *out, size_t cap)
{
    struct textbuf w = textbuf_into(out, cap);
    if (out == NULL)
        return 0;
    render_all(&w, src);
    return w.ok ? w.len : 0;
}

size_t metrics_render_max(const struct metrics_source *src)
{
    struct textbuf w = textbuf_measure();
    render_all(&w, src);
    return w.len;
}
