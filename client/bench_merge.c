/* bench_merge.c - `echobench merge A.json B.json ...`: one report from runs
 * made on several load hosts at once.
 *
 * Histograms are added bucket by bucket (every --json report carries its
 * histograms), so merged percentiles are exactly those of one histogram of
 * all the requests, never averages of percentiles. Rates, counts, errors and
 * CPU add up. The runs must have used the same options against the same
 * target, and their measured windows (wall clock) must overlap; otherwise
 * merging would describe a load that never happened, and it is refused. The
 * per-second series is summed second by second on the wall clock; per-second
 * percentiles do not survive a merge (merge the --hdr-log files for those).
 */
#include "client/bench_merge.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/json_read.h"

/* A report is far smaller than this. */
#define REPORT_MAX (64u * 1024 * 1024)
#define MERGE_RUNS_MAX 1024
#define MERGE_SERIES_MAX 86400

enum { MERGE_OK = 0, MERGE_FAILED = 1, MERGE_USAGE = 2 };

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = malloc(REPORT_MAX + 1);
    size_t n = buf != NULL ? fread(buf, 1, REPORT_MAX, f) : 0;
    bool bad = buf == NULL || ferror(f) || n == REPORT_MAX;
    fclose(f);
    if (bad) {
        free(buf);
        errno = bad && buf != NULL ? EFBIG : ENOMEM;
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static int load_hist(const struct json *h, struct hist *out)
{
    hist_init(out);
    if (h == NULL || h->type != JSON_OBJECT)
        return -1;
    const struct json *b = json_get(h, "buckets");
    if (b == NULL || b->type != JSON_ARRAY)
        return -1;
    for (const struct json *e = b->child; e != NULL; e = e->next) {
        if (e->type != JSON_ARRAY || e->n != 2)
            return -1;
        uint64_t i = json_as_u64(e->child), c = json_as_u64(e->child->next);
        if (i >= HIST_BUCKETS)
            return -1;
        out->buckets[i] += c;
    }
    out->count = json_u64(h, "count", 0);
    out->min = out->count ? json_u64(h, "min", 0) : UINT64_MAX;
    out->max = json_u64(h, "max", 0);
    out->clamped = json_u64(h, "clamped", 0);
    out->sum = json_num(h, "sum", 0);
    out->sum_sq = json_num(h, "sum_sq", 0);
    return 0;
}

/* The options that must agree for the runs to be one load. */
static const char *const same_keys[] = {
    "target", "proto", "mode", "oneshot", "pipeline", "size_min", "size_max", "ping_ratio",
    "rate_target", "connections", "warmup_s",
};

static bool same_value(const struct json *a, const struct json *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case JSON_STRING: return strcmp(a->str, b->str) == 0;
    case JSON_NUMBER: return fabs(a->num - b->num) <= 1e-9 * fabs(a->num);
    case JSON_BOOL: return a->b == b->b;
    default: return true;
    }
}

static enum bench_proto proto_of(const char *s)
{
    for (int p = BENCH_PROTO_FRAMED; p <= BENCH_PROTO_HTTP; p++)
        if (strcmp(bench_proto_name((enum bench_proto)p), s) == 0)
            return (enum bench_proto)p;
    return BENCH_PROTO_FRAMED;
}

static void add_codes(const struct json *codes, struct bench_result *r)
{
    if (codes == NULL || codes->type != JSON_OBJECT)
        return;
    for (const struct json *c = codes->child; c != NULL; c = c->next) {
        long code = strtol(c->key, NULL, 10);
        unsigned slot = code >= BENCH_CODE_MIN && code <= BENCH_CODE_MAX
                            ? (unsigned)(code - BENCH_CODE_MIN + 1) : 0;
        r->error_codes[slot] += json_as_u64(c);
    }
}

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "echobench merge: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return MERGE_USAGE;
}

int bench_merge_main(int argc, char **argv)
{
    bool json = false;
    const char *files[MERGE_RUNS_MAX];
    unsigned nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] == '-')
            return fail("unknown option %s%s (usage: echobench merge [--json] A.json B.json ...)",
                        argv[i], "");
        else if (nfiles == MERGE_RUNS_MAX)
            return fail("more than %s reports%s", "1024", "");
        else
            files[nfiles++] = argv[i];
    }
    if (nfiles == 0)
        return fail("%s%s", "usage: echobench merge [--json] A.json B.json ...", "");

    static struct json *docs[MERGE_RUNS_MAX];
    int rc = MERGE_OK;
    for (unsigned i = 0; i < nfiles && rc == MERGE_OK; i++) {
        char *text = read_file(files[i]);
        if (text == NULL) {
            rc = fail("%s: %s", files[i], strerror(errno));
            break;
        }
        size_t at = 0;
        docs[i] = json_parse(text, &at);
        free(text);
        if (docs[i] == NULL || strcmp(json_str(docs[i], "tool", ""), "echobench") != 0)
            rc = fail("%s: %s", files[i], "not an echobench --json report");
        else if (json_get(docs[i], "histograms") == NULL)
            rc = fail("%s: %s", files[i], "has no histograms (written by an older echobench)");
    }

    static struct bench_config cfg;
    static struct bench_result total;
    struct bench_summary sum = {.cfg = &cfg, .r = &total};
    struct bench_second *series = NULL;
    size_t nseries = 0;
    double start_min = INFINITY, start_max = -INFINITY, end_min = INFINITY, rates = 0;
    if (rc != MERGE_OK)
        goto out;

    const struct json *first = docs[0];
    for (unsigned i = 1; i < nfiles && rc == MERGE_OK; i++)
        for (size_t k = 0; k < sizeof(same_keys) / sizeof(same_keys[0]); k++)
            if (!same_value(json_get(first, same_keys[k]), json_get(docs[i], same_keys[k]))) {
                rc = fail("%s differs from the first report in \"%s\": not the same load",
                          files[i], same_keys[k]);
                break;
            }
    for (unsigned i = 0; i < nfiles && rc == MERGE_OK; i++) {
        double s = json_num(docs[i], "window_start_unix", NAN);
        double e = json_num(docs[i], "window_end_unix", NAN);
        if (isnan(s) || isnan(e)) {
            rc = fail("%s: %s", files[i], "has no measured window (window_start_unix)");
            break;
        }
        start_min = fmin(start_min, s);
        start_max = fmax(start_max, s);
        end_min = fmin(end_min, e);
    }
    if (rc == MERGE_OK && start_max >= end_min)
        rc = fail("the measured windows do not overlap (%s%s): start the runs together, "
                  "e.g. with --start-at", "one ended before another began", "");
    if (rc != MERGE_OK)
        goto out;

    snprintf(cfg.target, sizeof(cfg.target), "%s", json_str(first, "target", "?"));
    cfg.proto = proto_of(json_str(first, "proto", "framed"));
    const char *mode = json_str(first, "mode", "closed");
    cfg.mode = strcmp(mode, "open") == 0 ? BENCH_MODE_OPEN
               : strcmp(mode, "idle") == 0 ? BENCH_MODE_IDLE : BENCH_MODE_CLOSED;
    cfg.oneshot = json_bool(first, "oneshot", false);
    cfg.pipeline = (unsigned)json_u64(first, "pipeline", 1);
    cfg.size_min = (uint32_t)json_u64(first, "size_min", 0);
    cfg.size_max = (uint32_t)json_u64(first, "size_max", 0);
    cfg.ping_ratio = json_num(first, "ping_ratio", 0);
    cfg.warmup_s = json_num(first, "warmup_s", 0);
    hist_init(&total.latency);
    hist_init(&total.connect);
    hist_init(&total.send_lag);
    double duration_max = 0;
    for (unsigned i = 0; i < nfiles; i++) {
        const struct json *d = docs[i];
        static struct bench_result one;
        memset(&one, 0, sizeof(one));
        const struct json *h = json_get(d, "histograms");
        if (load_hist(json_get(h, "latency"), &one.latency) < 0 ||
            load_hist(json_get(h, "connect"), &one.connect) < 0 ||
            load_hist(json_get(h, "send_lag"), &one.send_lag) < 0) {
            rc = fail("%s: %s", files[i], "its histograms cannot be read");
            goto out;
        }
        cfg.threads += (unsigned)json_u64(d, "threads", 0);
        cfg.connections += (unsigned)json_u64(d, "connections", 0);
        cfg.rate += json_num(d, "rate_target", 0);
        one.ok = json_u64(d, "requests", 0);
        one.payload_bytes = json_u64(d, "payload_bytes", 0);
        rates += json_num(d, "requests_per_s", 0);
        duration_max = fmax(duration_max, json_num(d, "duration_s", 0));
        const struct json *errors = json_get(d, "errors");
        for (int k = 0; k < BENCH_ERR_KINDS; k++)
            if (k != BENCH_ERR_FRAME && k != BENCH_ERR_HTTP_STATUS)
                one.errors[k] = json_u64(errors, bench_err_name((enum bench_err)k), 0);
        add_codes(json_get(errors, "error_frames"), &one);
        add_codes(json_get(errors, "http_status"), &one);
        uint64_t coded = 0;
        for (int k = 0; k < BENCH_CODE_SLOTS; k++)
            coded += one.error_codes[k];
        one.errors[cfg.proto == BENCH_PROTO_HTTP ? BENCH_ERR_HTTP_STATUS : BENCH_ERR_FRAME] = coded;
        const struct json *t = json_get(d, "totals");
        one.issued = json_u64(t, "issued", 0);
        one.ok_total = json_u64(t, "ok", 0);
        one.bytes_out = json_u64(t, "bytes_out", 0);
        one.bytes_in = json_u64(t, "bytes_in", 0);
        one.connects = json_u64(t, "connections_opened", 0);
        one.max_open = json_u64(t, "connections_max_open", 0);
        one.stalled = json_bool(d, "stalled", false);
        bench_result_merge(&total, &one);
        sum.cpu_s += json_num(d, "client_cpu_s", 0);
        sum.wall_s = fmax(sum.wall_s, json_num(d, "client_wall_s", 0));
        sum.busiest = fmax(sum.busiest, json_num(d, "client_busy_max", 0));

        /* Seconds on the wall clock, counted from the earliest window start. */
        const struct json *ser = json_get(d, "series");
        double offset = json_num(d, "window_start_unix", 0) - start_min;
        for (const struct json *e = ser ? ser->child : NULL; e != NULL; e = e->next) {
            double at = offset + json_num(e, "t", 0);
            size_t k = (size_t)llround(at);
            if (k >= MERGE_SERIES_MAX)
                break;
            if (k >= nseries) {
                struct bench_second *v = realloc(series, (k + 1) * sizeof(*v));
                if (v == NULL) {
                    rc = fail("%s%s", "out of memory", "");
                    goto out;
                }
                for (size_t z = nseries; z <= k; z++)
                    v[z] = (struct bench_second){.length_s = 1.0, .p50_us = NAN, .p99_us = NAN,
                                                 .max_us = NAN};
                series = v;
                nseries = k + 1;
            }
            series[k].ok += json_u64(e, "requests", 0);
            series[k].errors += json_u64(e, "errors", 0);
        }
    }
    for (int k = 0; k < BENCH_ERR_KINDS; k++)
        sum.errors_total += total.errors[k];
    /* The window that makes requests / window the sum of the runs' rates. */
    sum.window_s = rates > 0 ? (double)total.ok / rates : duration_max;
    if (cfg.rate > 0)
        cfg.mode = BENCH_MODE_OPEN;

    struct bench_extra x = {
        .knee_rate = -1,
        .series = series,
        .nseries = nseries,
        .window_start_unix = start_min,
        .merged_runs = nfiles,
    };
    if (json)
        bench_report_json(stdout, &sum, &x);
    else
        bench_report_text(stdout, &sum, &x);
    fflush(stdout);
    rc = sum.errors_total > 0 ? MERGE_FAILED : MERGE_OK;
out:
    for (unsigned i = 0; i < nfiles; i++)
        json_free(docs[i]);
    free(series);
    return rc;
}
