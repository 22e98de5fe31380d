/* test_http_controls.c - the query-string controls (server/http_controls.c):
 * each key with good and bad values and the status it answers, percent and
 * '+' decoding, repeated and unknown keys, the refused header names, the
 * bound on added header bytes (never a byte written past it), every byte
 * value as name and value byte, parsing never reading past the query's
 * length, and 100,000 random queries that give either an error with a reason
 * or well-formed header lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_controls.h"

#define GUARD 32
#define GUARD_BYTE 0xA5

static const struct http_controls_limits lim = {.max_delay_ms = 10000, .max_size = 1048576};

static char hdrs[HTTP_CONTROLS_HEADERS_MAX];

/* Parse a NUL-terminated query from an exact-size heap copy, so ASan sees any
 * read past its length. */
static int parse_lim(struct http_controls *c, const char *q, const struct http_controls_limits *l)
{
    size_t len = strlen(q);
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, q, len);
    int rc = http_controls_parse(c, copy, len, l, hdrs, sizeof(hdrs));
    free(copy);
    return rc;
}

static int parse(struct http_controls *c, const char *q)
{
    return parse_lim(c, q, &lim);
}

static void expect_error(const char *q, int status, const char *why)
{
    struct http_controls c;
    int rc = parse(&c, q);
    if (rc != status)
        fail_msg("%s: got %d, want %d", q, rc, status);
    assert_non_null(c.error);
    if (strcmp(c.error, why) != 0)
        fail_msg("%s: reason '%s', want '%s'", q, c.error, why);
}

static void test_empty_and_unknown(void **state)
{
    (void)state;
    struct http_controls c;
    assert_int_equal(http_controls_parse(&c, NULL, 0, &lim, hdrs, sizeof(hdrs)), 0);
    assert_int_equal(c.status, 0);
    assert_false(c.close || c.json || c.has_size);
    assert_int_equal(c.delay_ms, 0);
    assert_int_equal(c.nheaders, 0);
    assert_int_equal(c.headers_len, 0);
    assert_null(c.error);
    static const char *const ignored[] = {
        "", "&", "&&&", "=", "foo=bar", "statusx=1", "Status=999", "xstatus=999", "foo",
        "a=1&b=2&c", "%zz=1", "stat%zzus=1", "averyveryverylongkey=1", "=status",
    };
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        if (parse(&c, ignored[i]) != 0)
            fail_msg("%s: should be ignored (%s)", ignored[i], c.error);
        assert_int_equal(c.status, 0);
    }
}

static void test_status(void **state)
{
    (void)state;
    struct http_controls c;
    assert_int_equal(parse(&c, "status=200"), 0);
    assert_int_equal(c.status, 200);
    assert_int_equal(parse(&c, "status=599"), 0);
    assert_int_equal(c.status, 599);
    assert_int_equal(parse(&c, "status=204&x=y"), 0);
    assert_int_equal(c.status, 204);
    assert_int_equal(parse(&c, "st%61tus=%35%30%33"), 0);  /* decoded key and value */
    assert_int_equal(c.status, 503);
    assert_int_equal(parse(&c, "status=404&status=418"), 0);  /* last wins */
    assert_int_equal(c.status, 418);
    static const char *const bad[] = {
        "status=", "status", "status=199", "status=600", "status=100", "status=099",
        "status=0200", "status=20", "status=2000", "status=abc", "status=-200", "status=+200",
        "status=20%", "status=20%3", "status=2%3G", "status= 200", "status=200 ", "status=2e2",
        "status=200&status=700", "status=999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], 400, "bad status value");
}

static void test_delay(void **state)
{
    (void)state;
    struct http_controls c;
    assert_int_equal(parse(&c, "delay=0"), 0);
    assert_int_equal(c.delay_ms, 0);
    assert_int_equal(parse(&c, "delay=250"), 0);
    assert_int_equal(c.delay_ms, 250);
    assert_int_equal(parse(&c, "delay=10000"), 0);   /* exactly the limit */
    assert_int_equal(c.delay_ms, 10000);
    assert_int_equal(parse(&c, "delay=00042"), 0);
    assert_int_equal(c.delay_ms, 42);
    expect_error("delay=10001", 400, "delay over http_max_delay");
    expect_error("delay=99999999999999999999999", 400, "delay over http_max_delay");
    static const char *const bad[] = {"delay=", "delay", "delay=-1", "delay=1.5", "delay=1s", "delay=%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], 400, "bad delay value");

    /* http_max_delay = 0: delays are off, any positive delay is refused. */
    struct http_controls_limits off = {.max_delay_ms = 0, .max_size = 100};
    assert_int_equal(parse_lim(&c, "delay=1", &off), 400);
    assert_string_equal(c.error, "delays are off");
    assert_int_equal(parse_lim(&c, "delay=0", &off), 0);
}

static void test_size(void **state)
{
    (void)state;
    struct http_controls c;
    assert_int_equal(parse(&c, "size=0"), 0);
    assert_true(c.has_size);
    assert_int_equal(c.size, 0);
    assert_int_equal(parse(&c, "size=1048576"), 0);
    assert_true(c.has_size);
    assert_int_equal(c.size, 1048576);
    expect_error("size=1048577", 413, "size over max_frame_size");
    expect_error("size=18446744073709551615", 413, "size over max_frame_size");
    expect_error("size=18446744073709551616", 413, "size over max_frame_size");
    expect_error("size=999999999999999999999999999999", 413, "size over max_frame_size");
    static const char *const bad[] = {"size=", "size", "size=-1", "size=0x10", "size=1k", "size=1+"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], 400, "bad size value");
}

static void test_close_and_format(void **state)
{
    (void)state;
    struct http_controls c;
    assert_int_equal(parse(&c, "close=1"), 0);
    assert_true(c.close);
    assert_int_equal(parse(&c, "close=1&close=0"), 0);
    assert_false(c.close);
    static const char *const bad[] = {"close=", "close", "close=2", "close=yes", "close=11", "close=true"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], 400, "bad close value");

    assert_int_equal(parse(&c, "format=json"), 0);
    assert_true(c.json);
    assert_int_equal(parse(&c, "format=%6Aso%6E"), 0);
    assert_true(c.json);
    static const char *const other[] = {"format=", "format", "format=JSON", "format=jsonx",
                                        "format=jso", "format=xml", "format=%zz"};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        if (parse(&c, other[i]) != 0)
            fail_msg("%s: should be accepted", other[i]);
        assert_false(c.json);
    }
}

static void expect_headers(const char *q, const char *want, unsigned n)
{
    struct http_controls c;
    memset(hdrs, 0, sizeof(hdrs));
    int rc = parse(&c, q);
    if (rc != 0)
        fail_msg("%s: got %d (%s)", q, rc, c.error);
    assert_int_equal(c.nheaders, n);
    if (c.headers_len != strlen(want) || memcmp(hdrs, want, c.headers_len) != 0)
        fail_msg("%s: got '%.*s', want '%s'", q, (int)c.headers_len, hdrs, want);
}

static void test_headers(void **state)
{
    (void)state;
    expect_headers("header=X-Test:hello", "X-Test: hello\r\n", 1);
    expect_headers("header=X-Test%3Ahello", "X-Test: hello\r\n", 1);
    expect_headers("header=X-A:1&header=X-B:2&header=X-A:3",
                   "X-A: 1\r\nX-B: 2\r\nX-A: 3\r\n", 3);
    expect_headers("header=X-Sp:a+b%20c", "X-Sp: a b c\r\n", 1);
    expect_headers("header=X-Plus:a%2Bb", "X-Plus: a+b\r\n", 1);
    expect_headers("header=X-Trim:+%09 v +%09", "X-Trim: v\r\n", 1);
    expect_headers("header=X-Empty:", "X-Empty: \r\n", 1);
    expect_headers("header=X-Colon:a:b:c", "X-Colon: a:b:c\r\n", 1);
    expect_headers("header=Cache-Control:no-store,%20max-age=0",
                   "Cache-Control: no-store, max-age=0\r\n", 1);
    expect_headers("header=X%21%23%24%25%26%27%2A%2B-.%5E_%60%7C~:x",
                   "X!#$%&'*+-.^_`|~: x\r\n", 1);
    expect_headers("header=Set-Cookie:a=b;%20Path=/", "Set-Cookie: a=b; Path=/\r\n", 1);
}

static void test_bad_headers(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "header=", "header", "header=X-NoColon", "header=:value", "header=X%20A:b", "header=X(A):b",
        "header=X-A:b%0D%0AEvil:1", "header=X-A:b%0Ac", "header=X-A:b%0Dc", "header=X-A:b%00c",
        "header=X-A:b%7Fc", "header=X-A:caf%C3%A9", "header=X-A:b%zz", "header=X-A%:b",
        "header=X\x01:b", "header=!#$%25", "header=X-A;b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], 400, "bad header value");
    static const char *const refused[] = {
        "header=Content-Length:5", "header=content-length:5", "header=TRANSFER-ENCODING:chunked",
        "header=Connection:close", "header=Date:x", "header=date:x", "header=Content-Type:text/html",
        "header=X-Content-Type-Options:sniff", "header=Content-%4Cength:1",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        expect_error(refused[i], 400, "header not allowed");
    /* Near names are fine. */
    expect_headers("header=Content-Lengths:1&header=X-Date:2&header=Connections:3",
                   "Content-Lengths: 1\r\nX-Date: 2\r\nConnections: 3\r\n", 3);
    /* A bad control after good ones still fails the request. */
    expect_error("header=X-A:1&status=700", 400, "bad status value");
}

/* Every byte value as a name byte and as a value byte: names take exactly
 * RFC 9110's tchar, values visible ASCII, SP and HTAB. */
static void test_every_byte(void **state)
{
    (void)state;
    const char *tchar = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (int b = 0; b < 256; b++) {
        char q[64];
        struct http_controls c;
        snprintf(q, sizeof(q), "header=X%%%02X:v", b);
        int rc = parse(&c, q);
        /* A decoded ':' ends the name: "X" with the value ":v", fine. */
        bool want = b == ':' || (b != 0 && strchr(tchar, b) != NULL);
        if ((rc == 0) != want)
            fail_msg("name byte 0x%02x: got %d, want %s", b, rc, want ? "accepted" : "400");
        snprintf(q, sizeof(q), "header=X:a%%%02Xb", b);
        rc = parse(&c, q);
        want = (b >= 0x21 && b <= 0x7e) || b == ' ' || b == '\t';
        if ((rc == 0) != want)
            fail_msg("value byte 0x%02x: got %d, want %s", b, rc, want ? "accepted" : "400");
        if (rc == 0)
            assert_int_equal(hdrs[4], b);
    }
}

/* The added lines must fit the caller's buffer, whatever its size: an exact
 * fit succeeds, one byte less is a 400, and nothing is written past it. */
static void test_header_bound(void **state)
{
    (void)state;
    const char *q = "header=X-One:1&header=X-Two:22";
    const char *want = "X-One: 1\r\nX-Two: 22\r\n";
    size_t need = strlen(want);
    for (size_t cap = 0; cap <= need + 1; cap++) {
        unsigned char *buf = malloc(cap + GUARD);
        assert_non_null(buf);
        memset(buf, GUARD_BYTE, cap + GUARD);
        struct http_controls c;
        int rc = http_controls_parse(&c, q, strlen(q), &lim, (char *)buf, cap);
        for (size_t i = cap; i < cap + GUARD; i++)
            if (buf[i] != GUARD_BYTE)
                fail_msg("cap %zu: byte %zu written past the buffer", cap, i);
        if (cap < need) {
            assert_int_equal(rc, 400);
            assert_string_equal(c.error, "added headers too long");
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(c.headers_len, need);
            assert_memory_equal(buf, want, need);
        }
        free(buf);
    }

    /* Many headers: the default room is a bound, not a suggestion. */
    static char q2[16384];
    size_t o = 0;
    for (int i = 0; i < 400; i++)
        o += (size_t)snprintf(q2 + o, sizeof(q2) - o, "%sheader=X-%d:v", i ? "&" : "", i);
    struct http_controls c;
    assert_int_equal(parse(&c, q2), 400);
    assert_string_equal(c.error, "added headers too long");
}

/* A query cut anywhere is parsed within its length: every prefix of a rich
 * query parses (or fails cleanly) from an exact-size copy under ASan. */
static void test_every_prefix(void **state)
{
    (void)state;
    const char *q = "status=503&delay=25&size=100&close=1&header=X-A:b%20c&format=json&z=%41";
    size_t len = strlen(q);
    for (size_t n = 0; n <= len; n++) {
        char *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, q, n);
        struct http_controls c;
        int rc = http_controls_parse(&c, copy, n, &lim, hdrs, sizeof(hdrs));
        assert_true(rc == 0 || rc == 400);
        if (rc != 0)
            assert_non_null(c.error);
        free(copy);
    }
    struct http_controls c;
    assert_int_equal(parse(&c, q), 0);
    assert_int_equal(c.status, 503);
    assert_int_equal(c.delay_ms, 25);
    assert_true(c.has_size);
    assert_int_equal(c.size, 100);
    assert_true(c.close);
    assert_true(c.json);
    assert_int_equal(c.nheaders, 1);
    assert_memory_equal(hdrs, "X-A: b c\r\n", c.headers_len);
}

/* Random queries built from the pieces that matter: whatever comes out is
 * either an error with a reason, or well-formed "token: value\r\n" lines
 * within the buffer with values the contract allows, never CR or LF inside. */
static uint64_t rng = UINT64_C(0x2545F4914F6CDD1D);
static unsigned next_rand(unsigned n)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void check_lines(const char *h, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t name = i;
        while (i < len && h[i] != ':') {
            assert_true(strchr("\r\n :", h[i]) == NULL);
            i++;
        }
        assert_true(i > name && i + 1 < len && h[i + 1] == ' ');
        i += 2;
        while (i < len && h[i] != '\r') {
            unsigned char b = (unsigned char)h[i];
            assert_true((b >= 0x21 && b <= 0x7e) || b == ' ' || b == '\t');
            i++;
        }
        assert_true(i + 1 < len && h[i + 1] == '\n');
        i += 2;
    }
    assert_int_equal(i, len);
}

static void test_random_queries(void **state)
{
    (void)state;
    /* Pairs of a key and a value made of pieces, good ones more likely. */
    static const char *const keys[] = {
        "status=", "delay=", "size=", "close=", "format=", "header=", "header=", "header=",
        "header=X-A:", "header=X-B%3A", "x=", "", "=",
    };
    static const char *const pieces[] = {
        "v", "v", "a+b", "%20", "200", "1", "json", ":", "%3A", "X-C", "%0D", "%0A", "%00", "%",
        "%2", "%zz", "+", "=", "99999", "Content-Length:", "date:", "\t", "\r\n", "\xff", ";",
        "?", "#", "%7E", "%7F",
    };
    char q[256];
    static char buf[96];
    unsigned errors = 0, with_headers = 0;
    for (int iter = 0; iter < 100000; iter++) {
        size_t n = 0;
        unsigned npairs = 1 + next_rand(4);
        for (unsigned j = 0; j < npairs; j++) {
            const char *k = keys[next_rand(sizeof(keys) / sizeof(keys[0]))];
            size_t l = strlen(k);
            if (n + l + 1 >= sizeof(q))
                break;
            if (j > 0)
                q[n++] = '&';
            memcpy(q + n, k, l);
            n += l;
            unsigned nv = next_rand(4);
            for (unsigned v = 0; v < nv; v++) {
                const char *pc = pieces[next_rand(sizeof(pieces) / sizeof(pieces[0]))];
                l = strlen(pc);
                if (n + l >= sizeof(q))
                    break;
                memcpy(q + n, pc, l);
                n += l;
            }
        }
        char *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, q, n);
        struct http_controls c;
        size_t cap = next_rand(4) == 0 ? next_rand(sizeof(buf) + 1) : sizeof(buf);
        int rc = http_controls_parse(&c, copy, n, &lim, buf, cap);
        free(copy);
        if (rc != 0) {
            assert_true(rc == 400 || rc == 413);
            assert_non_null(c.error);
            errors++;
            continue;
        }
        assert_null(c.error);
        with_headers += c.nheaders > 0;
        assert_true(c.headers_len <= cap);
        check_lines(buf, c.headers_len);
        assert_true(c.status == 0 || (c.status >= 200 && c.status <= 599));
        assert_true(c.delay_ms <= lim.max_delay_ms);
        assert_true(c.size <= lim.max_size);
    }
    /* Both outcomes happen often, so the checks above did run. */
    if (errors < 1000 || with_headers < 1000)
        fail_msg("%u errors, %u with headers: the generator misses a side", errors, with_headers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_unknown),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_close_and_format),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_header_bound),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_random_queries),
    };
    return cmocka_run_group_tests_name("http_controls", tests, NULL, NULL);
}
