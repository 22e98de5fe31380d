/* test_metrics.c - the Prometheus renderer (server/metrics.c): histogram
 * slots against a linear search of the bounds, observe, the exact lines of
 * the base families, labelled series (proto, code), replacing a base family,
 * skip_zero, cumulative buckets with _sum and _count, the text format's line
 * grammar, caps (0 and no byte past cap), and metrics_render_max as a true
 * bound.
 *
 * `test_metrics --dump FILE` writes the rich sample below to FILE instead of
 * running the tests: tests/integration/test_metrics_format.py hands it to
 * `promtool check metrics`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"

#define GUARD 32
#define GUARD_BYTE 0xA5
#define NWORKERS 2
#define NPROTO 3
#define CODE_BASE 100
#define NCODES 500

static const char *const proto_labels[NPROTO] = {
    "proto=\"framed\"", "proto=\"raw\"", "proto=\"http\"",
};

/* What a transport might keep per worker beside struct stats_worker. */
struct sample_worker {
    atomic_uint_least64_t requests[NPROTO];
    atomic_uint_least64_t codes[NCODES];
    struct metrics_hist latency[NPROTO];
};

static struct stats_worker sworkers[NWORKERS];
static struct stats st = {.workers = sworkers, .nworkers = NWORKERS};
static struct sample_worker xw[NWORKERS];

static const struct metrics_family families[] = {
    {
        .name = "echod_requests_total", .help = "Requests answered, by protocol.",
        .type = METRICS_COUNTER, .series = {.labels = proto_labels, .nseries = NPROTO},
        .where = {&xw[0].requests[0], sizeof(atomic_uint_least64_t), sizeof(struct sample_worker),
                  NWORKERS},
    },
    {
        .name = "echod_http_responses_total", .help = "HTTP responses sent, by status code.",
        .type = METRICS_COUNTER,
        .series = {.name = "code", .base = CODE_BASE, .nseries = NCODES},
        .where = {&xw[0].codes[0], sizeof(atomic_uint_least64_t), sizeof(struct sample_worker),
                  NWORKERS},
        .skip_zero = true,
    },
};

static const struct metrics_hist_family hists[] = {
    {
        .name = "echod_request_duration_seconds",
        .help = "From a request's last byte read to its reply's last byte written.",
        .series = {.labels = proto_labels, .nseries = NPROTO},
        .where = {&xw[0].latency[0], sizeof(struct metrics_hist), sizeof(struct sample_worker),
                  NWORKERS},
    },
};

static const struct metrics_source source = {
    .stats = &st, .now_ms = 0, .families = families, .nfamilies = 2,
    .hists = hists, .nhists = 1,
};

static void set(atomic_uint_least64_t *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}

/* Known, distinct values everywhere. */
static void fill_sample(void)
{
    memset(sworkers, 0, sizeof(sworkers));
    memset(xw, 0, sizeof(xw));
    st.start_ms = 1000;
    set(&st.connections_rejected, 7);
    for (unsigned w = 0; w < NWORKERS; w++) {
        uint64_t k = w + 1;
        set(&sworkers[w].connections_current, 10 * k);
        set(&sworkers[w].connections_total, 100 * k);
        set(&sworkers[w].requests_total, 1000 * k);
        set(&sworkers[w].bytes_in, 10000 * k);
        set(&sworkers[w].bytes_out, 100000 * k);
        set(&sworkers[w].errors_total, 3 * k);
        for (unsigned p = 0; p < NPROTO; p++)
            set(&xw[w].requests[p], 100 * k + p);
        set(&xw[w].codes[200 - CODE_BASE], 50 * k);
        set(&xw[w].codes[404 - CODE_BASE], k);
    }
    set(&xw[1].codes[503 - CODE_BASE], 2);
    /* http latencies: 5 us, 20 us, 1 ms, 3 s, 60 s on worker 0; 1 ms on worker 1. */
    metrics_hist_observe(&xw[0].latency[2], 5000);
    metrics_hist_observe(&xw[0].latency[2], 20000);
    metrics_hist_observe(&xw[0].latency[2], 1000000);
    metrics_hist_observe(&xw[0].latency[2], 3000000000);
    metrics_hist_observe(&xw[0].latency[2], 60000000000);
    metrics_hist_observe(&xw[1].latency[2], 1000000);
    metrics_hist_observe(&xw[1].latency[0], 10000);
}

static char *render(const struct metrics_source *src, uint64_t now_ms, size_t *len_out)
{
    struct metrics_source s = *src;
    s.now_ms = now_ms;
    size_t max = metrics_render_max(&s);
    char *out = malloc(max + 1);
    assert_non_null(out);
    size_t len = metrics_render(&s, out, max);
    assert_true(len > 0);
    assert_true(len <= max);
    out[len] = '\0';
    if (len_out)
        *len_out = len;
    return out;
}

static void expect_line(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof(want), "\n%s\n", line);
    if (strstr(text, want) == NULL)
        fail_msg("missing line '%s' in:\n%s", line, text);
}

static void expect_no(const char *text, const char *what)
{
    if (strstr(text, what) != NULL)
        fail_msg("unexpected '%s' in:\n%s", what, text);
}

static size_t count(const char *text, const char *what)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p++)
        n++;
    return n;
}

/* ---- histogram slots ---- */

static unsigned slot_linear(uint64_t ns)
{
    for (unsigned i = 0; i < METRICS_HIST_BOUNDS; i++)
        if (ns <= metrics_hist_bounds_ns[i])
            return i;
    return METRICS_HIST_BOUNDS;
}

static void check_slot(uint64_t ns)
{
    if (metrics_hist_slot(ns) != slot_linear(ns))
        fail_msg("ns %llu: slot %u, want %u", (unsigned long long)ns, metrics_hist_slot(ns),
                 slot_linear(ns));
}

static void test_slots(void **state)
{
    (void)state;
    check_slot(0);
    check_slot(UINT64_MAX);
    for (unsigned i = 0; i < METRICS_HIST_BOUNDS; i++) {
        uint64_t b = metrics_hist_bounds_ns[i];
        check_slot(b - 1);
        check_slot(b);
        check_slot(b + 1);
        assert_int_equal(metrics_hist_slot(b), i);      /* le: a bound is in its own bucket */
        assert_int_equal(metrics_hist_slot(b + 1), i + 1);
        if (i > 0)
            assert_true(b >= 2 * metrics_hist_bounds_ns[i - 1]);   /* the lookup relies on it */
    }
    for (unsigned m = 0; m < 64; m++) {
        uint64_t p = UINT64_C(1) << m;
        check_slot(p - 1);
        check_slot(p);
        check_slot(p + 1);
        check_slot(p | (p >> 1));
    }
    uint64_t x = UINT64_C(0x9E3779B97F4A7C15);
    for (int i = 0; i < 200000; i++) {
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
        uint64_t v = (x * UINT64_C(2685821657736338717)) >> (x % 64);
        check_slot(v);
    }
    assert_int_equal(metrics_hist_bounds_ns[0], 10000);
    assert_int_equal(metrics_hist_bounds_ns[METRICS_HIST_BOUNDS - 1], UINT64_C(10000000000));
}

static void test_observe(void **state)
{
    (void)state;
    static struct metrics_hist h;
    memset(&h, 0, sizeof(h));
    metrics_hist_observe(&h, 0);
    metrics_hist_observe(&h, 10000);
    metrics_hist_observe(&h, 10001);
    metrics_hist_observe(&h, UINT64_C(20000000000));
    assert_int_equal(atomic_load(&h.buckets[0]), 2);
    assert_int_equal(atomic_load(&h.buckets[1]), 1);
    assert_int_equal(atomic_load(&h.buckets[METRICS_HIST_BOUNDS]), 1);
    assert_int_equal(atomic_load(&h.sum_ns), UINT64_C(20000020001));
    assert_int_equal(_Alignof(struct metrics_hist), 64);
}

/* ---- rendering ---- */

static void test_base_families(void **state)
{
    (void)state;
    fill_sample();
    struct metrics_source base_only = {.stats = &st};
    char *t = render(&base_only, 1000 + 12345, NULL);
    assert_memory_equal(t, "# HELP echod_build_info ", 24);
    expect_line(t, "# TYPE echod_build_info gauge");
    expect_line(t, "echod_build_info{version=\"" ECHOD_VERSION "\"} 1");
    expect_line(t, "# TYPE echod_uptime_seconds gauge");
    expect_line(t, "echod_uptime_seconds 12.345");
    expect_line(t, "echod_workers 2");
    expect_line(t, "# TYPE echod_connections gauge");
    expect_line(t, "echod_connections 30");
    expect_line(t, "# TYPE echod_connections_accepted_total counter");
    expect_line(t, "echod_connections_accepted_total 300");
    expect_line(t, "echod_connections_rejected_total 7");
    expect_line(t, "echod_requests_total 3000");
    expect_line(t, "echod_received_bytes_total 30000");
    expect_line(t, "echod_sent_bytes_total 300000");
    expect_line(t, "echod_errors_total 9");
    expect_line(t, "# TYPE echod_worker_connections gauge");
    expect_line(t, "echod_worker_connections{worker=\"0\"} 10");
    expect_line(t, "echod_worker_connections{worker=\"1\"} 20");
    expect_line(t, "# TYPE echod_worker_requests_total counter");
    expect_line(t, "echod_worker_requests_total{worker=\"0\"} 1000");
    expect_line(t, "echod_worker_requests_total{worker=\"1\"} 2000");
    assert_int_equal(t[strlen(t) - 1], '\n');
    free(t);

    /* A clock before start (should not happen) reads as 0, not as a wrap. */
    t = render(&base_only, 0, NULL);
    expect_line(t, "echod_uptime_seconds 0.000");
    free(t);
}

static void test_labelled_and_replaced(void **state)
{
    (void)state;
    fill_sample();
    char *t = render(&source, 1000, NULL);
    /* The proto-labelled family replaces the base echod_requests_total. */
    assert_int_equal(count(t, "# TYPE echod_requests_total counter\n"), 1);
    assert_int_equal(count(t, "# HELP echod_requests_total "), 1);
    expect_no(t, "\nechod_requests_total 3000\n");
    expect_line(t, "echod_requests_total{proto=\"framed\"} 300");
    expect_line(t, "echod_requests_total{proto=\"raw\"} 302");
    expect_line(t, "echod_requests_total{proto=\"http\"} 304");
    /* Codes: only those sent. */
    expect_line(t, "echod_http_responses_total{code=\"200\"} 150");
    expect_line(t, "echod_http_responses_total{code=\"404\"} 3");
    expect_line(t, "echod_http_responses_total{code=\"503\"} 2");
    assert_int_equal(count(t, "echod_http_responses_total{"), 3);
    /* The rest of the base families are still there. */
    expect_line(t, "echod_connections_accepted_total 300");
    free(t);
}

static void test_histogram(void **state)
{
    (void)state;
    fill_sample();
    char *t = render(&source, 1000, NULL);
    expect_line(t, "# TYPE echod_request_duration_seconds histogram");
    const char *h = "echod_request_duration_seconds";
    char line[256];
    /* http: 5us, 20us, 1ms, 1ms, 3s, 60s -> cumulative counts. */
    static const struct {
        const char *le;
        unsigned n;
    } want[] = {
        {"1e-05", 1}, {"2.5e-05", 2}, {"5e-05", 2}, {"0.0001", 2}, {"0.00025", 2},
        {"0.0005", 2}, {"0.001", 4}, {"0.0025", 4}, {"0.005", 4}, {"0.01", 4}, {"0.025", 4},
        {"0.05", 4}, {"0.1", 4}, {"0.25", 4}, {"0.5", 4}, {"1", 4}, {"2.5", 4}, {"5", 5},
        {"10", 5}, {"+Inf", 6},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        snprintf(line, sizeof(line), "%s_bucket{proto=\"http\",le=\"%s\"} %u", h, want[i].le,
                 want[i].n);
        expect_line(t, line);
    }
    expect_line(t, "echod_request_duration_seconds_sum{proto=\"http\"} 63.002025000");
    expect_line(t, "echod_request_duration_seconds_count{proto=\"http\"} 6");
    expect_line(t, "echod_request_duration_seconds_bucket{proto=\"framed\",le=\"1e-05\"} 1");
    expect_line(t, "echod_request_duration_seconds_sum{proto=\"framed\"} 0.000010000");
    expect_line(t, "echod_request_duration_seconds_count{proto=\"raw\"} 0");
    expect_line(t, "echod_request_duration_seconds_sum{proto=\"raw\"} 0.000000000");
    assert_int_equal(count(t, "_bucket{"), NPROTO * METRICS_HIST_SLOTS);
    free(t);
}

/* Every line: a HELP or TYPE comment for a family, or `name[{labels}] value`
 * whose family's TYPE came before it; names [a-zA-Z_:][a-zA-Z0-9_:]*. */
static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

static void test_grammar(void **state)
{
    (void)state;
    fill_sample();
    char *t = render(&source, 98765, NULL);
    char family[128] = "";
    for (char *line = t, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            const char *sp = strchr(line + 7, ' ');
            assert_non_null(sp);
            snprintf(family, sizeof(family), "%.*s", (int)(sp - line - 7), line + 7);
            assert_true(strcmp(sp + 1, "counter") == 0 || strcmp(sp + 1, "gauge") == 0 ||
                        strcmp(sp + 1, "histogram") == 0);
            continue;
        }
        assert_true(name_char(line[0], true));
        size_t n = 1;
        while (name_char(line[n], false))
            n++;
        if (strncmp(line, family, strlen(family)) != 0 || family[0] == '\0')
            fail_msg("sample before its TYPE: %s (family %s)", line, family);
        const char *p = line + n;
        if (*p == '{') {
            const char *close = strchr(p, '}');
            assert_non_null(close);
            p = close + 1;
        }
        assert_int_equal(*p, ' ');
        p++;
        char *end;
        (void)strtod(p, &end);
        if (end == p || *end != '\0')
            fail_msg("bad value in: %s", line);
    }
    free(t);
}

static void test_caps(void **state)
{
    (void)state;
    fill_sample();
    size_t len;
    char *ref = render(&source, 5000, &len);
    struct metrics_source s = source;
    s.now_ms = 5000;
    for (size_t cap = 0; cap <= len + 1; cap += cap < 64 || cap > len - 64 ? 1 : 37) {
        unsigned char *buf = malloc(cap + GUARD);
        assert_non_null(buf);
        memset(buf, GUARD_BYTE, cap + GUARD);
        size_t got = metrics_render(&s, (char *)buf, cap);
        for (size_t i = cap; i < cap + GUARD; i++)
            if (buf[i] != GUARD_BYTE)
                fail_msg("cap %zu: byte %zu written past the cap", cap, i);
        if (cap < len) {
            assert_int_equal(got, 0);
        } else {
            assert_int_equal(got, len);
            assert_memory_equal(buf, ref, len);
        }
        free(buf);
    }
    free(ref);
    assert_int_equal(metrics_render(&s, NULL, 100), 0);
}

/* Every counter at its largest: metrics_render_max still holds. */
static void test_max(void **state)
{
    (void)state;
    memset(xw, 0xFF, sizeof(xw));
    memset(sworkers, 0xFF, sizeof(sworkers));
    set(&st.connections_rejected, UINT64_MAX);
    st.start_ms = 0;
    size_t len;
    char *t = render(&source, UINT64_MAX, &len);
    assert_true(len <= metrics_render_max(&source));
    assert_int_equal(count(t, "echod_http_responses_total{"), NCODES);
    expect_line(t, "echod_worker_requests_total{worker=\"1\"} 18446744073709551615");
    free(t);
    struct metrics_source empty = {0};
    char buf[1];
    assert_int_equal(metrics_render_max(&empty), 0);
    assert_int_equal(metrics_render(&empty, buf, sizeof(buf)), 0);
}

/* A worker observing while another thread scrapes: relaxed single-writer
 * counters, no lock; under TSan this must be race-free, and every scrape
 * sees cumulative buckets that never go down. */
#define OBSERVATIONS 200000
static struct metrics_hist live;

static void *observer(void *arg)
{
    (void)arg;
    for (uint64_t i = 0; i < OBSERVATIONS; i++)
        metrics_hist_observe(&live, (i * 7919) % UINT64_C(20000000000));
    return NULL;
}

static uint64_t inf_count(const char *t)
{
    const char *p = strstr(t, "le=\"+Inf\"} ");
    assert_non_null(p);
    return strtoull(p + strlen("le=\"+Inf\"} "), NULL, 10);
}

static void test_scrape_while_observing(void **state)
{
    (void)state;
    memset(&live, 0, sizeof(live));
    struct metrics_hist_family f = {
        .name = "echod_request_duration_seconds", .help = "h",
        .series = {.nseries = 1}, .where = {&live, 0, 0, 1},
    };
    struct metrics_source s = {.hists = &f, .nhists = 1};
    size_t max = metrics_render_max(&s);
    char *buf = malloc(max + 1);
    assert_non_null(buf);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, observer, NULL), 0);
    uint64_t last = 0;
    for (int i = 0; i < 200; i++) {
        size_t n = metrics_render(&s, buf, max);
        assert_true(n > 0);
        buf[n] = '\0';
        uint64_t c = inf_count(buf);
        assert_true(c >= last);
        last = c;
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    size_t n = metrics_render(&s, buf, max);
    buf[n] = '\0';
    assert_int_equal(inf_count(buf), OBSERVATIONS);
    free(buf);
}

static int dump(const char *path)
{
    fill_sample();
    size_t len;
    char *t = render(&source, 1000 + 3723456, &len);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    int rc = fwrite(t, 1, len, f) == len ? 0 : 1;
    if (fclose(f) != 0)
        rc = 1;
    free(t);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--dump") == 0)
        return dump(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_observe),
        cmocka_unit_test(test_base_families),
        cmocka_unit_test(test_labelled_and_replaced),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_grammar),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_max),
        cmocka_unit_test(test_scrape_while_observing),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
