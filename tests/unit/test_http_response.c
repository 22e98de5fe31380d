/* test_http_response.c - response heads (server/http_response.c): the exact
 * bytes of typical heads, header order, the Date cache (IMF-fixdate checked
 * against strftime in the C locale, reformatted only when the second
 * changes), 204/304/1xx without framing headers, error responses and their
 * "NNN reason" body, 100 Continue, reason phrases for every code, and caps:
 * every cap short of the head gives 0 without writing past it, and
 * HTTP_RESPONSE_HEAD_MAX is always enough.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/http_response.h"

#define GUARD 32
#define GUARD_BYTE 0xA5
#define SERVER "Server: echod/" ECHOD_VERSION "\r\n"
#define NOSNIFF "X-Content-Type-Options: nosniff\r\n"
/* 2026-12-01 13:55:25 UTC, a Tuesday. */
#define SOME_TIME INT64_C(1796133325)
#define SOME_DATE "Date: Tue, 01 Dec 2026 13:55:25 GMT\r\n"

static struct http_date date;

static int setup(void **state)
{
    (void)state;
    http_date_init(&date);
    assert_true(http_date_update(&date, SOME_TIME));
    return 0;
}

static char *head(const struct http_head *r, size_t *len)
{
    static char buf[4096];
    *len = http_response_head(r, &date, buf, sizeof(buf) - 1);
    assert_true(*len > 0);
    buf[*len] = '\0';
    return buf;
}

static void test_date_line(void **state)
{
    (void)state;
    assert_memory_equal(date.line, SOME_DATE, HTTP_DATE_LINE_LEN);
    /* Against strftime in the C locale, over times that hit every weekday,
     * month, leap days and the ends of the range we care about. */
    static const int64_t times[] = {
        0, 784111777 /* RFC's example: Sun, 06 Nov 1994 08:49:37 */, 951782400 /* 2000-02-29 */,
        1709164800 /* 2024-02-29 */, 2147483647, 4102444799 /* 2099-12-31 23:59:59 */,
        253402300799 /* 9999-12-31 23:59:59 */,
    };
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        struct http_date d;
        http_date_init(&d);
        assert_true(http_date_update(&d, times[i]));
        time_t t = (time_t)times[i];
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        char want[64];
        size_t n = strftime(want, sizeof(want), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        assert_int_equal(n, HTTP_DATE_LINE_LEN);
        if (memcmp(d.line, want, n) != 0)
            fail_msg("%lld: got '%.*s', want '%s'", (long long)times[i], (int)n, d.line, want);
    }
    struct http_date d;
    http_date_init(&d);
    assert_true(http_date_update(&d, 784111777));
    assert_memory_equal(d.line, "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n", HTTP_DATE_LINE_LEN);
}

static void test_date_once_per_second(void **state)
{
    (void)state;
    struct http_date d;
    http_date_init(&d);
    assert_true(http_date_update(&d, 1000));
    for (int i = 0; i < 1000; i++)
        assert_false(http_date_update(&d, 1000));
    char before[HTTP_DATE_LINE_LEN];
    memcpy(before, d.line, sizeof(before));
    assert_true(http_date_update(&d, 1001));
    assert_memory_not_equal(before, d.line, sizeof(before));
    assert_memory_equal(d.line, "Date: Thu, 01 Jan 1970 00:16:41 GMT\r\n", HTTP_DATE_LINE_LEN);
    /* A clock stepped back is followed too: the cache only compares. */
    assert_true(http_date_update(&d, 1000));
    assert_memory_equal(d.line, "Date: Thu, 01 Jan 1970 00:16:40 GMT\r\n", HTTP_DATE_LINE_LEN);
}

static void test_typical_heads(void **state)
{
    (void)state;
    size_t len;
    struct http_head r = {.status = 200, .ctype = HTTP_CT_OCTET, .length = 5};
    assert_string_equal(head(&r, &len),
                        "HTTP/1.1 200 OK\r\n" SOME_DATE SERVER
                        "Content-Type: application/octet-stream\r\n"
                        "Content-Length: 5\r\n" NOSNIFF "\r\n");

    r = (struct http_head){.status = 200, .ctype = HTTP_CT_TEXT, .chunked = true,
                               .conn = HTTP_CONN_CLOSE};
    assert_string_equal(head(&r, &len),
                        "HTTP/1.1 200 OK\r\n" SOME_DATE SERVER "Content-Type: text/plain\r\n"
                        "Transfer-Encoding: chunked\r\nConnection: close\r\n" NOSNIFF "\r\n");

    const char extra[] = "X-A: 1\r\nX-B: two\r\n";
    r = (struct http_head){.status = 503, .ctype = HTTP_CT_JSON, .length = 0,
                               .conn = HTTP_CONN_KEEP_ALIVE, .extra = extra,
                               .extra_len = sizeof(extra) - 1};
    assert_string_equal(head(&r, &len),
                        "HTTP/1.1 503 Service Unavailable\r\n" SOME_DATE SERVER
                        "Content-Type: application/json\r\nContent-Length: 0\r\n"
                        "Connection: keep-alive\r\n" NOSNIFF "X-A: 1\r\nX-B: two\r\n\r\n");

    r = (struct http_head){.status = 200, .ctype = HTTP_CT_METRICS, .length = UINT64_MAX};
    assert_string_equal(head(&r, &len),
                        "HTTP/1.1 200 OK\r\n" SOME_DATE SERVER
                        "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                        "Content-Length: 18446744073709551615\r\n" NOSNIFF "\r\n");

    r = (struct http_head){.status = 299, .ctype = HTTP_CT_NONE, .length = 10};
    assert_string_equal(head(&r, &len), "HTTP/1.1 299 Success\r\n" SOME_DATE SERVER
                                        "Content-Length: 10\r\n" NOSNIFF "\r\n");
}

static void test_no_body_statuses(void **state)
{
    (void)state;
    static const unsigned codes[] = {100, 101, 204, 304};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t len;
        struct http_head r = {.status = codes[i], .ctype = HTTP_CT_TEXT, .length = 7,
                                  .chunked = i % 2 == 0};
        const char *h = head(&r, &len);
        assert_null(strstr(h, "Content-Length"));
        assert_null(strstr(h, "Transfer-Encoding"));
        assert_null(strstr(h, "\r\nContent-Type:"));
        assert_non_null(strstr(h, NOSNIFF));
        assert_non_null(strstr(h, "Date: "));
        assert_false(http_status_has_body(codes[i]));
    }
    assert_true(http_status_has_body(200));
    assert_true(http_status_has_body(205));
    assert_true(http_status_has_body(599));
}

static void test_reasons(void **state)
{
    (void)state;
    static const struct {
        unsigned code;
        const char *reason;
    } named[] = {
        {100, "Continue"}, {200, "OK"}, {204, "No Content"}, {301, "Moved Permanently"},
        {304, "Not Modified"}, {400, "Bad Request"}, {404, "Not Found"},
        {408, "Request Timeout"}, {413, "Content Too Large"}, {414, "URI Too Long"},
        {417, "Expectation Failed"}, {418, "I'm a teapot"}, {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"}, {500, "Internal Server Error"},
        {501, "Not Implemented"}, {503, "Service Unavailable"},
        {505, "HTTP Version Not Supported"}, {511, "Network Authentication Required"},
        {199, "Informational"}, {250, "Success"}, {399, "Redirection"}, {420, "Client Error"},
        {599, "Server Error"}, {0, "Unknown"}, {99, "Unknown"}, {600, "Unknown"},
        {1000, "Unknown"},
    };
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
        assert_string_equal(http_status_reason(named[i].code), named[i].reason);
    /* Every code a reason phrase may carry: reason-phrase = *( HTAB / SP / VCHAR ),
     * and short enough for HTTP_RESPONSE_FIXED_MAX. */
    for (unsigned code = 100; code <= 599; code++) {
        const char *s = http_status_reason(code);
        assert_non_null(s);
        assert_true(strlen(s) > 0 && strlen(s) <= 32);
        for (const char *p = s; *p; p++)
            assert_true(*p == ' ' || (*p > 0x20 && *p < 0x7f));
    }
}

/* The biggest head: longest reason, 20-digit length, the longest
 * Content-Type and Connection lines; every cap below it gives 0 and writes
 * nothing past cap; HTTP_RESPONSE_HEAD_MAX(extra) is enough. */
static void check_caps(const struct http_head *r)
{
    static char ref[4096];
    size_t len = http_response_head(r, &date, ref, sizeof(ref));
    assert_true(len > 0);
    assert_true(len <= HTTP_RESPONSE_HEAD_MAX(r->extra_len));
    for (size_t cap = 0; cap <= len + 1; cap++) {
        unsigned char *buf = malloc(cap + GUARD);
        assert_non_null(buf);
        memset(buf, GUARD_BYTE, cap + GUARD);
        size_t got = http_response_head(r, &date, (char *)buf, cap);
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
}

static void test_caps_and_max(void **state)
{
    (void)state;
    unsigned longest = 100;
    for (unsigned code = 100; code <= 599; code++)
        if (http_status_has_body(code) &&
            strlen(http_status_reason(code)) > strlen(http_status_reason(longest)))
            longest = code;
    struct http_head r = {.status = longest, .ctype = HTTP_CT_METRICS, .length = UINT64_MAX,
                              .conn = HTTP_CONN_KEEP_ALIVE};
    check_caps(&r);
    static char extra[1000];
    memset(extra, 'x', sizeof(extra));
    r.extra = extra;
    r.extra_len = sizeof(extra);
    check_caps(&r);
    r = (struct http_head){.status = 200, .ctype = HTTP_CT_OCTET, .chunked = true};
    check_caps(&r);
    /* Out-of-range inputs are refused, not printed. */
    char buf[512];
    r = (struct http_head){.status = 600};
    assert_int_equal(http_response_head(&r, &date, buf, sizeof(buf)), 0);
    r = (struct http_head){.status = 99};
    assert_int_equal(http_response_head(&r, &date, buf, sizeof(buf)), 0);
}

static void test_error_responses(void **state)
{
    (void)state;
    char buf[HTTP_ERROR_MAX + 1];
    size_t n = http_response_error(400, NULL, false, &date, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    assert_string_equal(buf, "HTTP/1.1 400 Bad Request\r\n" SOME_DATE SERVER
                             "Content-Type: text/plain\r\nContent-Length: 15\r\n"
                             "Connection: close\r\n" NOSNIFF "\r\n400 Bad Request");

    n = http_response_error(400, "bad status value", false, &date, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    assert_string_equal(buf, "HTTP/1.1 400 Bad Request\r\n" SOME_DATE SERVER
                             "Content-Type: text/plain\r\nContent-Length: 20\r\n"
                             "Connection: close\r\n" NOSNIFF "\r\n400 bad status value");

    /* A parser reason is already "NNN what": not doubled. */
    char twice[HTTP_ERROR_MAX + 1];
    size_t t = http_response_error(400, "400 bad status value", false, &date, twice,
                                   sizeof(twice) - 1);
    assert_int_equal(t, n);
    assert_memory_equal(twice, buf, n);
    t = http_response_error(505, "505 HTTP version not supported", false, &date, twice,
                            sizeof(twice) - 1);
    twice[t] = '\0';
    assert_non_null(strstr(twice, "\r\n\r\n505 HTTP version not supported"));
    assert_null(strstr(twice, "505 505"));
    /* ...but only for its own status. */
    t = http_response_error(400, "413 x", false, &date, twice, sizeof(twice) - 1);
    twice[t] = '\0';
    assert_non_null(strstr(twice, "\r\n\r\n400 413 x"));

    /* HEAD: the same head, no body. */
    size_t h = http_response_error(400, "bad status value", true, &date, buf, sizeof(buf) - 1);
    assert_int_equal(h, n - 20);
    buf[h] = '\0';
    assert_non_null(strstr(buf, "Content-Length: 20\r\n"));
    assert_memory_equal(buf + h - 4, "\r\n\r\n", 4);

    /* Every error of http.md's table. */
    static const unsigned codes[] = {400, 408, 413, 414, 417, 431, 501, 503, 505};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        n = http_response_error(codes[i], NULL, false, &date, buf, sizeof(buf) - 1);
        assert_true(n > 0);
        buf[n] = '\0';
        char body[64];
        snprintf(body, sizeof(body), "\r\n\r\n%u %s", codes[i], http_status_reason(codes[i]));
        assert_non_null(strstr(buf, body));
        assert_int_equal(strlen(strstr(buf, body)), strlen(body));   /* it ends the response */
        char cl[64];
        snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", strlen(body) - 4);
        assert_non_null(strstr(buf, cl));
        assert_non_null(strstr(buf, "Connection: close\r\n"));
    }

    /* The longest detail fits HTTP_ERROR_MAX with the longest reason line;
     * a longer detail is cut to HTTP_ERROR_DETAIL_MAX. */
    char detail[HTTP_ERROR_DETAIL_MAX * 2 + 1];
    memset(detail, 'd', sizeof(detail) - 1);
    detail[sizeof(detail) - 1] = '\0';
    n = http_response_error(431, detail, false, &date, buf, HTTP_ERROR_MAX);
    assert_true(n > 0);
    assert_memory_equal(buf + n - HTTP_ERROR_DETAIL_MAX - 4, "431 ", 4);
    /* Too small a buffer: 0. */
    for (size_t cap = 0; cap < n; cap++)
        assert_int_equal(http_response_error(431, detail, false, &date, buf, cap), 0);
    assert_int_equal(http_response_error(600, NULL, false, &date, buf, sizeof(buf)), 0);
}

static void test_continue(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(http_response_continue(buf, sizeof(buf)), 25);
    assert_memory_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    assert_int_equal(http_response_continue(buf, 24), 0);
    assert_int_equal(HTTP_RESPONSE_CONTINUE_LEN, 25);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_date_line, setup),
        cmocka_unit_test_setup(test_date_once_per_second, setup),
        cmocka_unit_test_setup(test_typical_heads, setup),
        cmocka_unit_test_setup(test_no_body_statuses, setup),
        cmocka_unit_test_setup(test_reasons, setup),
        cmocka_unit_test_setup(test_caps_and_max, setup),
        cmocka_unit_test_setup(test_error_responses, setup),
        cmocka_unit_test_setup(test_continue, setup),
    };
    return cmocka_run_group_tests_name("http_response", tests, NULL, NULL);
}
