/* test_stats.c - the STATS JSON (server/stats.c): every key the protocol
 * promises, sums across workers, uptime from start_ms, per-worker entries,
 * well-formed JSON (checked by a small strict validator below), a cap that is
 * too small by any amount gives 0 and never writes past cap, and
 * stats_json_max(n) is enough room for the largest possible counters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/stats.h"

/* Room for any rendering in these tests that is not about caps. */
#define BIG_CAP 262144
/* Bytes after the cap that must stay untouched. */
#define GUARD 64
#define GUARD_BYTE 0xA5
/* The alignment struct stats_worker asks for. */
#define WORKER_ALIGN 64

/* Keys the protocol says STATS carries at the top level. */
static const char *const top_keys[] = {
    "version", "uptime_s", "workers", "connections_current", "connections_total",
    "connections_rejected", "requests_total", "bytes_in", "bytes_out", "errors_total",
    "per_worker",
};

/* ---- a small strict JSON validator (RFC 8259 grammar, no extensions) ---- */

static bool json_value(const char **p, const char *end, int depth);

static void json_ws(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r'))
        (*p)++;
}

static bool json_string(const char **p, const char *end)
{
    if (*p >= end || **p != '"')
        return false;
    (*p)++;
    while (*p < end) {
        unsigned char c = (unsigned char)**p;
        if (c == '"') {
            (*p)++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            (*p)++;
            if (*p >= end || strchr("\"\\/bfnrtu", **p) == NULL)
                return false;
        }
        (*p)++;
    }
    return false;
}

static bool json_number(const char **p, const char *end)
{
    const char *s = *p;
    if (*p < end && **p == '-')
        (*p)++;
    if (*p >= end)
        return false;
    if (**p == '0') {
        (*p)++;
    } else if (**p >= '1' && **p <= '9') {
        while (*p < end && **p >= '0' && **p <= '9')
            (*p)++;
    } else {
        return false;
    }
    if (*p < end && **p == '.') {
        (*p)++;
        if (*p >= end || **p < '0' || **p > '9')
            return false;
        while (*p < end && **p >= '0' && **p <= '9')
            (*p)++;
    }
    return *p > s;
}

static bool json_literal(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}

/* Objects and arrays: open, members separated by commas, close; no trailing comma. */
static bool json_container(const char **p, const char *end, int depth, bool object)
{
    char close = object ? '}' : ']';
    (*p)++;
    json_ws(p, end);
    if (*p < end && **p == close) {
        (*p)++;
        return true;
    }
    for (;;) {
        json_ws(p, end);
        if (object) {
            if (!json_string(p, end))
                return false;
            json_ws(p, end);
            if (*p >= end || **p != ':')
                return false;
            (*p)++;
        }
        if (!json_value(p, end, depth + 1))
            return false;
        json_ws(p, end);
        if (*p >= end)
            return false;
        if (**p == close) {
            (*p)++;
            return true;
        }
        if (**p != ',')
            return false;
        (*p)++;
    }
}

static bool json_value(const char **p, const char *end, int depth)
{
    if (depth > 32)
        return false;
    json_ws(p, end);
    if (*p >= end)
        return false;
    switch (**p) {
    case '{':
        return json_container(p, end, depth, true);
    case '[':
        return json_container(p, end, depth, false);
    case '"':
        return json_string(p, end);
    case 't':
        return json_literal(p, end, "true");
    case 'f':
        return json_literal(p, end, "false");
    case 'n':
        return json_literal(p, end, "null");
    default:
        return json_number(p, end);
    }
}

/* The whole of s[0..len) is exactly one JSON object. */
static bool json_is_object(const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    json_ws(&p, end);
    if (p >= end || *p != '{')
        return false;
    if (!json_value(&p, end, 0))
        return false;
    json_ws(&p, end);
    return p == end;
}

static void test_validator_itself(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{}", "{\"a\":1}", "{\"a\":[1,2,{\"b\":\"x\"}],\"c\":true,\"d\":null}", " { \"a\" : [ ] } ",
        "{\"a\":0,\"b\":-1.5}",
    };
    static const char *const bad[] = {
        "", "{", "}", "{\"a\":1,}", "{\"a\":[1,2,]}", "{\"a\":1}}", "{\"a\":1]", "{\"a\" 1}",
        "{a:1}", "{\"a\":01}", "{\"a\":1}x", "[1]", "{\"a\":[1,2}", "{\"a\":\"x}", "{,}",
        "{\"a\":1,,\"b\":2}", "{\"a\":}",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!json_is_object(good[i], strlen(good[i])))
            fail_msg("validator rejected good JSON: %s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (json_is_object(bad[i], strlen(bad[i])))
            fail_msg("validator accepted bad JSON: %s", bad[i]);
}

/* ---- helpers ---- */

static struct stats *stats_make(unsigned n)
{
    struct stats *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    size_t bytes = (size_t)(n ? n : 1) * sizeof(struct stats_worker);
    /* aligned_alloc wants a size that is a multiple of the alignment. */
    bytes = (bytes + WORKER_ALIGN - 1) / WORKER_ALIGN * WORKER_ALIGN;
    s->workers = aligned_alloc(WORKER_ALIGN, bytes);
    assert_non_null(s->workers);
    memset(s->workers, 0, bytes);
    s->nworkers = n;
    atomic_store(&s->connections_rejected, 0);
    return s;
}

static void stats_free(struct stats *s)
{
    free(s->workers);
    free(s);
}

static void worker_set_all(struct stats_worker *w, uint64_t v)
{
    atomic_store(&w->connections_current, v);
    atomic_store(&w->connections_total, v);
    atomic_store(&w->requests_total, v);
    atomic_store(&w->bytes_in, v);
    atomic_store(&w->bytes_out, v);
    atomic_store(&w->errors_total, v);
}

/* Render into a fresh NUL-terminated string; fails the test if it does not fit BIG_CAP. */
static char *render(const struct stats *s, uint64_t now_ms, size_t *len_out)
{
    char *out = malloc(BIG_CAP);
    assert_non_null(out);
    size_t len = stats_render_json(s, now_ms, out, BIG_CAP);
    assert_true(len > 0);
    assert_true(len < BIG_CAP);
    assert_int_equal(strlen(out), len);
    if (!json_is_object(out, len))
        fail_msg("not a well-formed JSON object: %s", out);
    if (len_out != NULL)
        *len_out = len;
    return out;
}

/* The position just after "key": at the top level (the key must occur exactly once). */
static const char *find_key(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *at = strstr(json, pat);
    if (at == NULL)
        fail_msg("key %s missing in %s", key, json);
    if (strstr(at + 1, pat) != NULL)
        fail_msg("key %s occurs more than once in %s", key, json);
    return at + strlen(pat);
}

static uint64_t parse_u64(const char *p)
{
    char *end;
    if (*p < '0' || *p > '9')
        fail_msg("expected a number at: %.40s", p);
    uint64_t v = strtoull(p, &end, 10);
    assert_true(*end == ',' || *end == '}' || *end == ']');
    return v;
}

static uint64_t get_u64(const char *json, const char *key)
{
    return parse_u64(find_key(json, key));
}

/* The per_worker array: fills conns[] and reqs[] (max entries), returns the count. */
static unsigned get_per_worker(const char *json, uint64_t *conns, uint64_t *reqs, unsigned max)
{
    const char *p = find_key(json, "per_worker");
    assert_int_equal(*p, '[');
    p++;
    unsigned n = 0;
    while (*p != ']') {
        if (n > 0) {
            assert_int_equal(*p, ',');
            p++;
        }
        assert_int_equal(*p, '{');
        const char *close = strchr(p, '}');
        assert_non_null(close);
        char entry[256];
        size_t elen = (size_t)(close - p + 1);
        assert_true(elen < sizeof(entry));
        memcpy(entry, p, elen);
        entry[elen] = '\0';
        assert_true(n < max);
        conns[n] = get_u64(entry, "connections");
        reqs[n] = get_u64(entry, "requests");
        n++;
        p = close + 1;
    }
    assert_string_equal(p, "]}");
    return n;
}

/* ---- tests ---- */

static void test_every_key_and_sums(void **state)
{
    (void)state;
    enum { N = 3 };
    struct stats *s = stats_make(N);
    /* Distinct values per counter and worker, so a swapped field shows. */
    for (unsigned i = 0; i < N; i++) {
        struct stats_worker *w = &s->workers[i];
        uint64_t base = (uint64_t)(i + 1) * 1000000;
        atomic_store(&w->connections_current, base + 1);
        atomic_store(&w->connections_total, base + 20);
        atomic_store(&w->requests_total, base + 300);
        atomic_store(&w->bytes_in, base + 4000);
        atomic_store(&w->bytes_out, base + 50000);
        atomic_store(&w->errors_total, base + 6);
    }
    atomic_store(&s->connections_rejected, 77);
    s->start_ms = 5000;

    char *json = render(s, 5000 + 123456, NULL);
    for (size_t i = 0; i < sizeof(top_keys) / sizeof(top_keys[0]); i++)
        (void)find_key(json, top_keys[i]);

    /* The version is the build's, as a JSON string. */
    const char *v = find_key(json, "version");
    char want[64];
    snprintf(want, sizeof(want), "\"%s\",", ECHOD_VERSION);
    assert_memory_equal(v, want, strlen(want));

    const uint64_t sum_base = 6000000; /* (1 + 2 + 3) * 1000000 */
    assert_int_equal(get_u64(json, "uptime_s"), 123);
    assert_int_equal(get_u64(json, "workers"), N);
    assert_int_equal(get_u64(json, "connections_current"), sum_base + N * 1);
    assert_int_equal(get_u64(json, "connections_total"), sum_base + N * 20);
    assert_int_equal(get_u64(json, "connections_rejected"), 77);
    assert_int_equal(get_u64(json, "requests_total"), sum_base + N * 300);
    assert_int_equal(get_u64(json, "bytes_in"), sum_base + N * 4000);
    assert_int_equal(get_u64(json, "bytes_out"), sum_base + N * 50000);
    assert_int_equal(get_u64(json, "errors_total"), sum_base + N * 6);

    /* One entry per worker, in worker order: the live connections and the
     * requests served by that worker. */
    uint64_t conns[N + 1], reqs[N + 1];
    assert_int_equal(get_per_worker(json, conns, reqs, N + 1), N);
    uint64_t csum = 0, rsum = 0;
    for (unsigned i = 0; i < N; i++) {
        uint64_t base = (uint64_t)(i + 1) * 1000000;
        assert_int_equal(conns[i], base + 1);
        assert_int_equal(reqs[i], base + 300);
        csum += conns[i];
        rsum += reqs[i];
    }
    assert_int_equal(csum, get_u64(json, "connections_current"));
    assert_int_equal(rsum, get_u64(json, "requests_total"));
    free(json);
    stats_free(s);
}

static void test_zero_counters(void **state)
{
    (void)state;
    struct stats *s = stats_make(2);
    s->start_ms = 42;
    char *json = render(s, 42, NULL);
    for (size_t i = 1; i < sizeof(top_keys) / sizeof(top_keys[0]) - 1; i++) {
        if (strcmp(top_keys[i], "workers") == 0)
            continue;
        assert_int_equal(get_u64(json, top_keys[i]), 0);
    }
    uint64_t conns[4], reqs[4];
    assert_int_equal(get_per_worker(json, conns, reqs, 4), 2);
    assert_int_equal(conns[0] + conns[1] + reqs[0] + reqs[1], 0);
    free(json);
    stats_free(s);
}

static void test_no_workers(void **state)
{
    (void)state;
    struct stats *s = stats_make(0);
    atomic_store(&s->connections_rejected, 9);
    char *json = render(s, 0, NULL);
    assert_int_equal(get_u64(json, "workers"), 0);
    assert_int_equal(get_u64(json, "connections_rejected"), 9);
    assert_non_null(strstr(json, "\"per_worker\":[]}"));
    free(json);
    stats_free(s);
}

static void test_uptime_from_start(void **state)
{
    (void)state;
    static const struct {
        uint64_t start, now, want;
    } cases[] = {
        {0, 0, 0},
        {1000, 1999, 0},           /* whole seconds, rounded down */
        {1000, 2000, 1},
        {1000, 1000 + 59999, 59},
        {1000, 1000 + 60000, 60},
        {123456789, 123456789 + 86400000, 86400},
    };
    struct stats *s = stats_make(1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s->start_ms = cases[i].start;
        char *json = render(s, cases[i].now, NULL);
        if (get_u64(json, "uptime_s") != cases[i].want)
            fail_msg("start %" PRIu64 " now %" PRIu64 ": want uptime %" PRIu64 " in %s",
                     cases[i].start, cases[i].now, cases[i].want, json);
        free(json);
    }
    stats_free(s);
}

/* Every cap from 0 to one past the needed length: 0 until the text and its
 * NUL fit, then the full text; never a byte written at or past cap. */
static void check_caps(const struct stats *s, uint64_t now)
{
    size_t len;
    char *ref = render(s, now, &len);
    for (size_t cap = 0; cap <= len + 1; cap++) {
        /* Exactly cap bytes, then a guard: ASan sees an overrun, the guard
         * shows it without ASan. */
        unsigned char *out = malloc(cap + GUARD);
        assert_non_null(out);
        memset(out, GUARD_BYTE, cap + GUARD);
        size_t got = stats_render_json(s, now, (char *)out, cap);
        for (size_t i = cap; i < cap + GUARD; i++)
            if (out[i] != GUARD_BYTE)
                fail_msg("cap %zu: byte %zu written past the cap", cap, i);
        if (cap <= len) {
            if (got != 0)
                fail_msg("cap %zu (need %zu): returned %zu, want 0", cap, len + 1, got);
        } else {
            assert_int_equal(got, len);
            assert_memory_equal(out, ref, len + 1);
        }
        free(out);
    }
    free(ref);
}

static void test_cap_too_small_every_size(void **state)
{
    (void)state;
    struct stats *s = stats_make(1);
    s->start_ms = 0;
    check_caps(s, 3000);
    stats_free(s);

    s = stats_make(4);
    for (unsigned i = 0; i < 4; i++)
        worker_set_all(&s->workers[i], 12345678901ULL * (i + 1));
    atomic_store(&s->connections_rejected, 5);
    check_caps(s, 987654321);
    stats_free(s);
}

/* The largest possible values: every counter (and so every sum, modulo 2^64)
 * has 20 digits, uptime is as long as it can be. stats_json_max(n) must be
 * room enough, since the daemon sizes the STATS reply with it. */
static void check_max(unsigned n)
{
    struct stats *s = stats_make(n);
    for (unsigned i = 0; i < n; i++)
        worker_set_all(&s->workers[i], UINT64_MAX);
    atomic_store(&s->connections_rejected, UINT64_MAX);
    s->start_ms = 0;
    size_t len;
    char *json = render(s, UINT64_MAX, &len);
    uint64_t workers = get_u64(json, "workers");
    free(json);
    size_t max = stats_json_max(n);
    char *out = malloc(max);
    assert_non_null(out);
    size_t got = stats_render_json(s, UINT64_MAX, out, max);
    free(out);
    stats_free(s);

    assert_int_equal(workers, n);
    /* The text and its NUL must fit in max bytes. */
    if (len + 1 > max)
        fail_msg("%u workers: stats_json_max = %zu, but the JSON takes %zu bytes (+1 NUL)", n,
                 max, len);
    assert_int_equal(got, len);
}

static void test_json_max_1(void **state)
{
    (void)state;
    check_max(1);
}

static void test_json_max_2(void **state)
{
    (void)state;
    check_max(2);
}

static void test_json_max_64(void **state)
{
    (void)state;
    check_max(64);
}

static void test_json_max_1024(void **state)
{
    (void)state;
    check_max(1024);
}

static void test_json_max_grows(void **state)
{
    (void)state;
    assert_true(stats_json_max(0) > 0);
    assert_true(stats_json_max(2) > stats_json_max(1));
    assert_true(stats_json_max(1024) > stats_json_max(64));
}

/* One worker's counters at UINT64_MAX: 20 digits each, no sign, no wrap. */
static void test_max_values_print_exactly(void **state)
{
    (void)state;
    struct stats *s = stats_make(1);
    worker_set_all(&s->workers[0], UINT64_MAX);
    atomic_store(&s->connections_rejected, UINT64_MAX);
    char *json = render(s, 0, NULL);
    assert_int_equal(get_u64(json, "bytes_out"), UINT64_MAX);
    assert_int_equal(get_u64(json, "connections_rejected"), UINT64_MAX);
    assert_non_null(strstr(json, "{\"connections\":18446744073709551615,"
                                 "\"requests\":18446744073709551615}"));
    free(json);
    stats_free(s);
}

static void test_stats_add(void **state)
{
    (void)state;
    atomic_uint_least64_t c;
    atomic_init(&c, 0);
    stats_add(&c, 5);
    stats_add(&c, 0);
    stats_add(&c, 37);
    assert_int_equal(atomic_load(&c), 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validator_itself),
        cmocka_unit_test(test_every_key_and_sums),
        cmocka_unit_test(test_zero_counters),
        cmocka_unit_test(test_no_workers),
        cmocka_unit_test(test_uptime_from_start),
        cmocka_unit_test(test_cap_too_small_every_size),
        cmocka_unit_test(test_json_max_1),
        cmocka_unit_test(test_json_max_2),
        cmocka_unit_test(test_json_max_64),
        cmocka_unit_test(test_json_max_1024),
        cmocka_unit_test(test_json_max_grows),
        cmocka_unit_test(test_max_values_print_exactly),
        cmocka_unit_test(test_stats_add),
    };
    return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
