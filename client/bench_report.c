/* bench_report.c - echobench's results: merging the threads' counters, the
 * human report, the --json object and the --latency-csv distribution.
 *
 * The JSON schema is documented in docs/echobench.md; change both together.
 * Latencies are recorded in nanoseconds and reported in microseconds.
 */
#include "client/bench.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define NS_PER_US 1000.0
#define BYTES_PER_MB 1e6
/* Percentiles of the summary, with their JSON key and display label. */
static const struct {
    double pct;
    const char *key;
    const char *label;
} summary_pcts[] = {
    {50, "p50", "p50"},
    {90, "p90", "p90"},
    {99, "p99", "p99"},
    {99.9, "p99_9", "p99.9"},
    {99.99, "p99_99", "p99.99"},
};
#define NPCTS (sizeof(summary_pcts) / sizeof(summary_pcts[0]))
/* CSV resolution: rows per halving of the remaining tail (HdrHistogram's
 * "ticks per half distance"), down to this far in the tail. */
#define CSV_TICKS_PER_HALF 5
#define CSV_MAX_HALVINGS 24

static const char *const err_names[BENCH_ERR_KINDS] = {
    [BENCH_ERR_CONNECT_REFUSED] = "connect_refused",
    [BENCH_ERR_CONNECT_TIMEOUT] = "connect_timeout",
    [BENCH_ERR_CONNECT_OTHER] = "connect_other",
    [BENCH_ERR_PORTS_EXHAUSTED] = "ports_exhausted",
    [BENCH_ERR_RESET] = "reset",
    [BENCH_ERR_CLOSED] = "closed",
    [BENCH_ERR_TIMEOUT] = "timeout",
    [BENCH_ERR_MISMATCH] = "mismatch",
    [BENCH_ERR_FD_LIMIT] = "fd_limit",
    [BENCH_ERR_FRAME] = "error_frames",
    [BENCH_ERR_HTTP_STATUS] = "http_status",
};

const char *bench_err_name(enum bench_err e)
{
    return (unsigned)e < BENCH_ERR_KINDS ? err_names[e] : "unknown";
}

void bench_result_merge(struct bench_result *dst, const struct bench_result *src)
{
    dst->ok += src->ok;
    dst->payload_bytes += src->payload_bytes;
    if (src->last_done_ns > dst->last_done_ns)
        dst->last_done_ns = src->last_done_ns;
    hist_merge(&dst->latency, &src->latency);
    hist_merge(&dst->connect, &src->connect);
    hist_merge(&dst->send_lag, &src->send_lag);
    dst->issued += src->issued;
    dst->ok_total += src->ok_total;
    dst->bytes_out += src->bytes_out;
    dst->bytes_in += src->bytes_in;
    dst->connects += src->connects;
    /* Threads hold their connections at the same time, so maxima add up. */
    dst->max_open += src->max_open;
    for (int k = 0; k < BENCH_ERR_KINDS; k++)
        dst->errors[k] += src->errors[k];
    for (int k = 0; k < BENCH_CODE_SLOTS; k++)
        dst->error_codes[k] += src->error_codes[k];
    dst->stalled = dst->stalled || src->stalled;
}

static double per_s(uint64_t n, double window_s)
{
    return window_s > 0 ? (double)n / window_s : 0.0;
}

double bench_cpu_us_per_request(const struct bench_summary *s)
{
    return s->r->ok_total > 0 ? s->cpu_s * 1e6 / (double)s->r->ok_total : 0.0;
}

unsigned bench_notes(const struct bench_summary *s, char notes[][BENCH_NOTE_LEN])
{
    const struct bench_config *cfg = s->cfg;
    const struct bench_result *r = s->r;
    unsigned n = 0;
    if (s->busiest >= 0.9)
        snprintf(notes[n++], BENCH_NOTE_LEN,
                 "echobench's busiest load thread used %.0f%% of a CPU: the client may have "
                 "been the limit, not the server (add threads with -t, on more CPUs)",
                 100 * s->busiest);
    if (cfg->mode == BENCH_MODE_OPEN && s->window_s > 0) {
        double got = per_s(r->ok, s->window_s);
        if (got < 0.95 * cfg->rate)
            snprintf(notes[n++], BENCH_NOTE_LEN,
                     "the achieved rate %.0f/s fell short of -R %.0f/s (%.0f%%): the server "
                     "(or the client) could not keep up, or requests failed",
                     got, cfg->rate, 100 * got / cfg->rate);
    }
    if (!cfg->oneshot && r->max_open < cfg->connections) {
        char why[160] = "";
        size_t len = 0;
        static const enum bench_err kinds[] = {
            BENCH_ERR_CONNECT_REFUSED, BENCH_ERR_CONNECT_TIMEOUT, BENCH_ERR_PORTS_EXHAUSTED,
            BENCH_ERR_FD_LIMIT, BENCH_ERR_CONNECT_OTHER,
        };
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            if (r->errors[kinds[k]] == 0 || len >= sizeof(why))
                continue;
            len += (size_t)snprintf(why + len, sizeof(why) - len, "%s%s %llu", len ? ", " : "",
                                    bench_err_name(kinds[k]),
                                    (unsigned long long)r->errors[kinds[k]]);
        }
        snprintf(notes[n++], BENCH_NOTE_LEN, "only %llu of the %u connections asked were open at "
                 "once%s%s%s", (unsigned long long)r->max_open, cfg->connections,
                 len ? " (" : "", why, len ? ")" : "");
    }
    if (s->fd_have > 0 && s->fd_have < s->fd_need)
        snprintf(notes[n++], BENCH_NOTE_LEN,
                 "the descriptor limit is %llu and %u connections need about %llu: raise "
                 "ulimit -n", (unsigned long long)s->fd_have, cfg->connections,
                 (unsigned long long)s->fd_need);
    if (r->errors[BENCH_ERR_FD_LIMIT] > 0)
        snprintf(notes[n++], BENCH_NOTE_LEN,
                 "the client ran out of descriptors (EMFILE/ENFILE): its own limit, not the "
                 "server's");
    if (r->errors[BENCH_ERR_PORTS_EXHAUSTED] > 0)
        snprintf(notes[n++], BENCH_NOTE_LEN,
                 "the client ran out of source ports (EADDRNOTAVAIL): its own limit, not the "
                 "server's");
    if (r->stalled)
        snprintf(notes[n++], BENCH_NOTE_LEN, "stopped early: no progress for %.1f s",
                 cfg->timeout_s);
    return n;
}

static const char *mode_name(const struct bench_config *cfg)
{
    if (cfg->mode == BENCH_MODE_IDLE)
        return "idle";
    return cfg->mode == BENCH_MODE_OPEN ? "open" : "closed";
}


static double us(uint64_t ns)
{
    return (double)ns / NS_PER_US;
}

/* ---- text -------------------------------------------------------------------- */

static void text_hist(FILE *out, const char *label, const struct hist *h)
{
    if (h->count == 0) {
        fprintf(out, "  %-13s no samples\n", label);
        return;
    }
    fprintf(out, "  %-13s min %.1f", label, us(h->min));
    for (size_t i = 0; i < NPCTS; i++)
        fprintf(out, "  %s %.1f", summary_pcts[i].label, us(hist_percentile(h, summary_pcts[i].pct)));
    fprintf(out, "  max %.1f\n", us(h->max));
    fprintf(out, "  %-13s mean %.1f  stdev %.1f  (%llu samples)\n", "", hist_mean(h) / NS_PER_US,
            hist_stdev(h) / NS_PER_US, (unsigned long long)h->count);
}

void bench_report_text(FILE *out, const struct bench_summary *s)
{
    const struct bench_config *cfg = s->cfg;
    const struct bench_result *r = s->r;
    fprintf(out, "echobench %s -> %s: %s, %s%s loop, %u threads, %u connections, pipeline %u, ",
            ECHOD_VERSION, cfg->target, bench_proto_name(cfg->proto),
            cfg->oneshot ? "oneshot, " : "", mode_name(cfg), cfg->threads, cfg->connections,
            cfg->pipeline);
    if (cfg->size_min == cfg->size_max)
        fprintf(out, "%u B", cfg->size_min);
    else
        fprintf(out, "%u-%u B", cfg->size_min, cfg->size_max);
    if (cfg->ping_ratio > 0)
        fprintf(out, ", %.0f%% PING", cfg->ping_ratio * 100);
    if (cfg->mode == BENCH_MODE_OPEN)
        fprintf(out, ", target %.0f/s", cfg->rate);
    fprintf(out, "\nmeasured %.2f s", s->window_s);
    if (cfg->warmup_s > 0)
        fprintf(out, " after %.2f s warm-up", cfg->warmup_s);
    fprintf(out, "\n\n");

    if (cfg->mode == BENCH_MODE_IDLE) {
        fprintf(out, "  connections  %llu open at most, %llu established\n",
                (unsigned long long)r->max_open, (unsigned long long)r->connects);
    } else {
        fprintf(out, "  %-13s %llu ok  %.1f req/s\n", "requests", (unsigned long long)r->ok,
                per_s(r->ok, s->window_s));
        if (cfg->oneshot)
            fprintf(out, "  %-13s %.1f conn/s\n", "connections", per_s(r->ok, s->window_s));
        fprintf(out, "  %-13s %.2f MB/s of ECHO payload each way\n", "throughput",
                per_s(r->payload_bytes, s->window_s) / BYTES_PER_MB);
        text_hist(out, cfg->mode == BENCH_MODE_OPEN ? "latency (us)*" : "latency (us)",
                  &r->latency);
        if (cfg->oneshot)
            text_hist(out, "connect (us)", &r->connect);
        if (cfg->mode == BENCH_MODE_OPEN) {
            fprintf(out, "  %-13s * from each request's intended send time\n", "");
            text_hist(out, "send lag (us)", &r->send_lag);
            fprintf(out, "  %-13s how late echobench started each request: a lag tail as\n"
                         "  %-13s long as the latency tail is the client's (or the machine's)\n",
                    "", "");
        }
        if (r->latency.clamped > 0)
            fprintf(out, "  %-13s %llu latencies above %.0f s counted as it\n", "",
                    (unsigned long long)r->latency.clamped, (double)HIST_MAX_VALUE / 1e9);
    }
    fprintf(out, "  %-13s %llu\n", "errors", (unsigned long long)s->errors_total);
    for (int k = 0; k < BENCH_ERR_KINDS; k++) {
        if (r->errors[k] == 0 || k == BENCH_ERR_FRAME || k == BENCH_ERR_HTTP_STATUS)
            continue;
        fprintf(out, "  %-13s %s %llu\n", "", bench_err_name(k), (unsigned long long)r->errors[k]);
    }
    for (int k = 0; k < BENCH_CODE_SLOTS; k++) {
        if (r->error_codes[k] == 0)
            continue;
        const char *what = cfg->proto == BENCH_PROTO_HTTP ? "status" : "error frame";
        if (k == 0)
            fprintf(out, "  %-13s %s (no code) %llu\n", "", what,
                    (unsigned long long)r->error_codes[k]);
        else
            fprintf(out, "  %-13s %s %d %llu\n", "", what, k + BENCH_CODE_MIN - 1,
                    (unsigned long long)r->error_codes[k]);
    }
    fprintf(out, "  %-13s %.2f s CPU in %.2f s (%.0f%% of one core), %.3f us CPU per request;\n"
                 "  %-13s busiest thread %.0f%% busy: near 100%% means echobench was the limit\n",
            "client", s->cpu_s, s->wall_s, s->wall_s > 0 ? 100.0 * s->cpu_s / s->wall_s : 0.0,
            bench_cpu_us_per_request(s), "", 100 * s->busiest);
    char notes[BENCH_NOTES_MAX][BENCH_NOTE_LEN];
    unsigned nn = bench_notes(s, notes);
    for (unsigned i = 0; i < nn; i++)
        fprintf(out, "  note: %s\n", notes[i]);
    fprintf(out, "  %-13s %llu issued, %llu ok, %llu B out, %llu B in (warm-up included)\n",
            "whole run", (unsigned long long)r->issued, (unsigned long long)r->ok_total,
            (unsigned long long)r->bytes_out, (unsigned long long)r->bytes_in);
}

/* ---- JSON ------------------------------------------------------------------------ */

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

static void json_hist(FILE *out, const struct hist *h)
{
    fprintf(out, "{\"count\": %llu, \"min\": %.3f", (unsigned long long)h->count,
            h->count ? us(h->min) : 0.0);
    for (size_t i = 0; i < NPCTS; i++)
        fprintf(out, ", \"%s\": %.3f", summary_pcts[i].key, us(hist_percentile(h, summary_pcts[i].pct)));
    fprintf(out, ", \"max\": %.3f, \"mean\": %.3f, \"stdev\": %.3f}", us(h->max),
            hist_mean(h) / NS_PER_US, hist_stdev(h) / NS_PER_US);
}

/* {code: count} of r's error codes ({} when r is NULL). */
static void json_codes(FILE *out, const struct bench_result *r)
{
    fputc('{', out);
    const char *sep = "";
    for (int k = 0; r != NULL && k < BENCH_CODE_SLOTS; k++) {
        if (r->error_codes[k] == 0)
            continue;
        if (k == 0)
            fprintf(out, "%s\"other\": %llu", sep, (unsigned long long)r->error_codes[k]);
        else
            fprintf(out, "%s\"%d\": %llu", sep, k + BENCH_CODE_MIN - 1,
                    (unsigned long long)r->error_codes[k]);
        sep = ", ";
    }
    fputc('}', out);
}

void bench_report_json(FILE *out, const struct bench_summary *s)
{
    const struct bench_config *cfg = s->cfg;
    const struct bench_result *r = s->r;
    fprintf(out, "{\"tool\": \"echobench\", \"version\": \"%s\", \"target\": ", ECHOD_VERSION);
    json_string(out, cfg->target);
    fprintf(out, ", \"proto\": \"%s\", \"mode\": \"%s\", \"oneshot\": %s",
            bench_proto_name(cfg->proto), mode_name(cfg),
            cfg->oneshot ? "true" : "false");
    fprintf(out, ", \"threads\": %u, \"connections\": %u, \"pipeline\": %u", cfg->threads,
            cfg->connections, cfg->pipeline);
    fprintf(out, ", \"size_min\": %u, \"size_max\": %u, \"ping_ratio\": %.4f", cfg->size_min,
            cfg->size_max, cfg->ping_ratio);
    if (cfg->mode == BENCH_MODE_OPEN)
        fprintf(out, ", \"rate_target\": %.3f", cfg->rate);
    else
        fprintf(out, ", \"rate_target\": null");
    fprintf(out, ", \"warmup_s\": %.3f, \"duration_s\": %.6f", cfg->warmup_s, s->window_s);
    fprintf(out, ", \"requests\": %llu, \"requests_per_s\": %.3f", (unsigned long long)r->ok,
            per_s(r->ok, s->window_s));
    if (cfg->oneshot)
        fprintf(out, ", \"connections_per_s\": %.3f", per_s(r->ok, s->window_s));
    else
        fprintf(out, ", \"connections_per_s\": null");
    fprintf(out, ", \"payload_bytes\": %llu, \"mb_per_s\": %.3f",
            (unsigned long long)r->payload_bytes,
            per_s(r->payload_bytes, s->window_s) / BYTES_PER_MB);
    fprintf(out, ", \"latency_us\": ");
    json_hist(out, &r->latency);
    fprintf(out, ", \"connect_us\": ");
    if (cfg->oneshot)
        json_hist(out, &r->connect);
    else
        fprintf(out, "null");
    fprintf(out, ", \"send_lag_us\": ");
    if (cfg->mode == BENCH_MODE_OPEN)
        json_hist(out, &r->send_lag);
    else
        fprintf(out, "null");
    fprintf(out, ", \"errors\": {\"total\": %llu", (unsigned long long)s->errors_total);
    for (int k = 0; k < BENCH_ERR_KINDS; k++) {
        if (k == BENCH_ERR_FRAME || k == BENCH_ERR_HTTP_STATUS)
            continue;
        fprintf(out, ", \"%s\": %llu", bench_err_name(k), (unsigned long long)r->errors[k]);
    }
    /* Codes are error frames' in framed runs and statuses in http runs. */
    bool http = cfg->proto == BENCH_PROTO_HTTP;
    fprintf(out, ", \"error_frames\": ");
    json_codes(out, http ? NULL : r);
    fprintf(out, ", \"http_status\": ");
    json_codes(out, http ? r : NULL);
    fprintf(out, "}");
    fprintf(out, ", \"totals\": {\"issued\": %llu, \"ok\": %llu, \"bytes_out\": %llu, "
                 "\"bytes_in\": %llu, \"connections_opened\": %llu, \"connections_max_open\": %llu}",
            (unsigned long long)r->issued, (unsigned long long)r->ok_total,
            (unsigned long long)r->bytes_out, (unsigned long long)r->bytes_in,
            (unsigned long long)r->connects, (unsigned long long)r->max_open);
    fprintf(out, ", \"stalled\": %s, \"client_cpu_s\": %.3f, \"client_wall_s\": %.3f",
            r->stalled ? "true" : "false", s->cpu_s, s->wall_s);
    fprintf(out, ", \"client_cpu_us_per_request\": %.4f, \"client_busy_max\": %.3f",
            bench_cpu_us_per_request(s), s->busiest);
    char notes[BENCH_NOTES_MAX][BENCH_NOTE_LEN];
    unsigned nn = bench_notes(s, notes);
    fprintf(out, ", \"notes\": [");
    for (unsigned i = 0; i < nn; i++) {
        fprintf(out, "%s", i ? ", " : "");
        json_string(out, notes[i]);
    }
    fprintf(out, "]}\n");
}

/* ---- CSV ---------------------------------------------------------------------------- */

int bench_report_csv(const char *path, const struct bench_summary *s)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -errno;
    const struct hist *h = &s->r->latency;
    fprintf(f, "percentile,latency_us,inverse_tail\n");
    if (h->count > 0) {
        /* Evenly spaced on a log scale of the tail, as HdrHistogram plots do:
         * the tail 1 - p halves every CSV_TICKS_PER_HALF rows. */
        for (int k = 0; k <= CSV_TICKS_PER_HALF * CSV_MAX_HALVINGS; k++) {
            double tail = pow(0.5, (double)k / CSV_TICKS_PER_HALF);
            double pct = 100.0 * (1.0 - tail);
            fprintf(f, "%.6f,%.3f,%.3f\n", pct, us(hist_percentile(h, pct)), 1.0 / tail);
            /* Past the last sample the rows would only repeat the maximum. */
            if (tail * (double)h->count < 1.0)
                break;
        }
        fprintf(f, "100.000000,%.3f,inf\n", us(h->max));
    }
    if (fclose(f) != 0)
        return -errno;
    return 0;
}
