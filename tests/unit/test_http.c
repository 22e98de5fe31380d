/* test_http.c - the HTTP/1.1 codec (common/http.c): every rejection of
 * http.md's table with its status, each fed whole and one byte at a time
 * (the results and the byte at which an error is reported must agree with
 * "as early as certain"); what a good request head reports; the header
 * iterator; the chunked decoder over every split; the response parser and
 * the chunk size encoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"

#define MAX_HEAD 16384
#define BIG 70000

/* What a parse gave: the result, the error, the message, and (byte at a
 * time) how many bytes were in when the result came. */
struct outcome {
    enum http_result r;
    uint16_t status;
    const char *reason;
    size_t at;
    struct http_request req;
    struct http_response resp;
};

static struct outcome parse_req_whole(const char *s, size_t n, uint32_t max)
{
    struct outcome o = {0};
    struct http_parser p;
    http_request_parser_init(&p, max);
    o.r = http_parse_request(&p, (const uint8_t *)s, n, &o.req);
    o.at = n;
    if (o.r == HTTP_ERROR) {
        o.status = p.err_status;
        o.reason = p.err_reason;
    }
    /* a second call repeats the result */
    struct http_request again;
    assert_int_equal(http_parse_request(&p, (const uint8_t *)s, n, &again), o.r);
    return o;
}

/* len = 1, 2, ... n: the whole head so far each time, as a server keeps it. */
static struct outcome parse_req_bytes(const char *s, size_t n, uint32_t max)
{
    struct outcome o = {0};
    struct http_parser p;
    http_request_parser_init(&p, max);
    o.r = HTTP_NEED_MORE;
    for (size_t k = 0; k <= n && o.r == HTTP_NEED_MORE; k++) {
        o.r = http_parse_request(&p, (const uint8_t *)s, k, &o.req);
        o.at = k;
    }
    if (o.r == HTTP_ERROR) {
        o.status = p.err_status;
        o.reason = p.err_reason;
    }
    return o;
}

static void assert_req_equal(const struct http_request *a, const struct http_request *b)
{
    assert_int_equal(a->method.off, b->method.off);
    assert_int_equal(a->method.len, b->method.len);
    assert_int_equal(a->target.off, b->target.off);
    assert_int_equal(a->target.len, b->target.len);
    assert_int_equal(a->path.off, b->path.off);
    assert_int_equal(a->path.len, b->path.len);
    assert_int_equal(a->query.off, b->query.off);
    assert_int_equal(a->query.len, b->query.len);
    assert_int_equal(a->method_id, b->method_id);
    assert_int_equal(a->minor, b->minor);
    assert_int_equal(a->expect, b->expect);
    assert_int_equal(a->has_query, b->has_query);
    assert_int_equal(a->has_content_length, b->has_content_length);
    assert_int_equal(a->chunked, b->chunked);
    assert_int_equal(a->conn_close, b->conn_close);
    assert_int_equal(a->conn_keep_alive, b->conn_keep_alive);
    assert_int_equal(a->host_count, b->host_count);
    assert_int_equal(a->skip, b->skip);
    assert_int_equal(a->head_len, b->head_len);
    assert_true(a->content_length == b->content_length);
}

/* Whole and byte at a time must agree; returns the whole outcome. When the
 * input is an error, byte at a time must report it no later than the whole
 * input did (the same byte, since whole input ends where it is certain). */
static struct outcome parse_req_max(const char *s, size_t n, uint32_t max)
{
    struct outcome w = parse_req_whole(s, n, max);
    struct outcome b = parse_req_bytes(s, n, max);
    assert_int_equal(w.r, b.r);
    assert_int_equal(w.status, b.status);
    if (w.r == HTTP_ERROR)
        assert_string_equal(w.reason, b.reason);
    if (w.r == HTTP_DONE) {
        assert_req_equal(&w.req, &b.req);
        assert_int_equal(b.at, w.req.head_len);
    }
    w.at = b.at;
    return w;
}

static struct outcome parse_req(const char *s)
{
    return parse_req_max(s, strlen(s), MAX_HEAD);
}

/* An error with this status and reason. Each error input in these tests ends
 * at the byte that makes it certain, so byte at a time reports it exactly when
 * the last byte arrives: never later (waiting), never earlier. */
static void expect_error(const char *s, uint16_t status, const char *reason)
{
    struct outcome o = parse_req(s);
    if (o.r != HTTP_ERROR)
        fail_msg("accepted (%d): %s", o.r, s);
    assert_int_equal(o.status, status);
    assert_string_equal(o.reason, reason);
    assert_int_equal(o.at, strlen(s));
}

static struct http_request expect_done(const char *s)
{
    struct outcome o = parse_req(s);
    if (o.r != HTTP_DONE)
        fail_msg("not DONE (%d, %s): %s", o.r, o.reason ? o.reason : "", s);
    return o.req;
}

static bool span_is(const char *buf, struct http_span sp, const char *want)
{
    return sp.len == strlen(want) && memcmp(buf + sp.off, want, sp.len) == 0;
}

#define H11 " HTTP/1.1\r\nHost: a\r\n"

/* ---- good requests ---- */

static void test_simple_get(void **state)
{
    (void)state;
    const char *s = "GET /index.html?a=1&b=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n";
    struct http_request r = expect_done(s);
    assert_true(span_is(s, r.method, "GET"));
    assert_int_equal(r.method_id, HTTP_METHOD_GET);
    assert_true(span_is(s, r.target, "/index.html?a=1&b=2"));
    assert_true(span_is(s, r.path, "/index.html"));
    assert_true(span_is(s, r.query, "a=1&b=2"));
    assert_true(r.has_query);
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.head_len, strlen(s));
    assert_int_equal(r.skip, 0);
    assert_int_equal(r.host_count, 1);
    assert_false(r.has_content_length);
    assert_false(r.chunked);
    assert_false(r.conn_close);
    assert_false(r.conn_keep_alive);
    assert_int_equal(r.expect, HTTP_EXPECT_NONE);
}

static void test_methods(void **state)
{
    (void)state;
    static const struct { const char *m; int id; } ms[] = {
        {"GET", HTTP_METHOD_GET}, {"HEAD", HTTP_METHOD_HEAD}, {"POST", HTTP_METHOD_POST},
        {"PUT", HTTP_METHOD_PUT}, {"DELETE", HTTP_METHOD_DELETE},
        {"OPTIONS", HTTP_METHOD_OPTIONS}, {"TRACE", HTTP_METHOD_TRACE},
        {"CONNECT", HTTP_METHOD_CONNECT}, {"PATCH", HTTP_METHOD_PATCH},
        {"get", HTTP_METHOD_OTHER}, {"PROPFIND", HTTP_METHOD_OTHER}, {"X-1!", HTTP_METHOD_OTHER},
    };
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        char s[128];
        snprintf(s, sizeof(s), "%s /" H11 "\r\n", ms[i].m);
        struct http_request r = expect_done(s);
        assert_int_equal(r.method_id, ms[i].id);
        assert_true(span_is(s, r.method, ms[i].m));
    }
}

static void test_no_query_and_empty_query(void **state)
{
    (void)state;
    const char *s = "GET /p" H11 "\r\n";
    struct http_request r = expect_done(s);
    assert_false(r.has_query);
    assert_int_equal(r.query.len, 0);
    assert_true(span_is(s, r.path, "/p"));
    s = "GET /p?" H11 "\r\n";
    r = expect_done(s);
    assert_true(r.has_query);
    assert_int_equal(r.query.len, 0);
    assert_true(span_is(s, r.path, "/p"));
}

static void test_target_forms(void **state)
{
    (void)state;
    const char *s = "GET http://example.com:8080/a/b?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
    struct http_request r = expect_done(s);
    assert_true(span_is(s, r.path, "/a/b"));
    assert_true(span_is(s, r.query, "x=1"));
    s = "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n";
    r = expect_done(s);
    assert_int_equal(r.path.len, 0);
    s = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    r = expect_done(s);
    assert_int_equal(r.path.len, 0);
    assert_true(span_is(s, r.target, "example.com:443"));
    s = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    r = expect_done(s);
    assert_true(span_is(s, r.path, "*"));
}

static void test_http10_without_host(void **state)
{
    (void)state;
    struct http_request r = expect_done("GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(r.minor, 0);
    assert_int_equal(r.host_count, 0);
    r = expect_done("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_true(r.conn_keep_alive);
}

static void test_leading_empty_lines_skipped(void **state)
{
    (void)state;
    const char *s = "\r\n\r\nGET /" H11 "\r\n";
    struct http_request r = expect_done(s);
    assert_int_equal(r.skip, 4);
    assert_true(span_is(s, r.method, "GET"));
    assert_int_equal(r.head_len, strlen(s));
    /* a bare LF as an "empty line" is still a bare LF */
    expect_error("\n", 400, "400 bare LF");
    expect_error("\r\r", 400, "400 bare CR");
    expect_error("\r\n ", 400, "400 bad method");
}

static void test_content_length(void **state)
{
    (void)state;
    const char *s = "POST /" H11 "Content-Length: 5\r\n\r\nhelloGET /";
    struct http_request r = expect_done(s);
    assert_true(r.has_content_length);
    assert_true(r.content_length == 5);
    /* the head ends at its empty line; the body and what follows are not read */
    assert_int_equal(r.head_len, strlen(s) - strlen("helloGET /"));
    r = expect_done("POST /" H11 "content-LENGTH: \t 0012 \t\r\n\r\n");
    assert_true(r.content_length == 12);
    r = expect_done("POST /" H11 "Content-Length: 0\r\n\r\n");
    assert_true(r.has_content_length && r.content_length == 0);
    r = expect_done("POST /" H11 "Content-Length: 18446744073709551615\r\n\r\n");
    assert_true(r.content_length == UINT64_MAX);
}

static void test_chunked_request(void **state)
{
    (void)state;
    struct http_request r = expect_done("POST /" H11 "Transfer-Encoding: chunked\r\n\r\n");
    assert_true(r.chunked);
    assert_false(r.has_content_length);
    r = expect_done("POST /" H11 "Transfer-Encoding:  CHUNKED \r\n\r\n");
    assert_true(r.chunked);
}

static void test_connection_tokens(void **state)
{
    (void)state;
    struct http_request r = expect_done("GET /" H11 "Connection: Upgrade, CLOSE\r\n\r\n");
    assert_true(r.conn_close);
    assert_false(r.conn_keep_alive);
    r = expect_done("GET /" H11 "Connection: keep-alive\r\nConnection: ,, Close ,\r\n\r\n");
    assert_true(r.conn_close);
    assert_true(r.conn_keep_alive);
    r = expect_done("GET /" H11 "Connection: closed, keep-alive-ish\r\n\r\n");
    assert_false(r.conn_close);
    assert_false(r.conn_keep_alive);
}

static void test_expect(void **state)
{
    (void)state;
    struct http_request r = expect_done("POST /" H11 "Expect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
    assert_int_equal(r.expect, HTTP_EXPECT_CONTINUE);
    r = expect_done("POST /" H11 "Expect: 200-ok\r\n\r\n");
    assert_int_equal(r.expect, HTTP_EXPECT_OTHER);
    r = expect_done("POST /" H11 "Expect: 100-continue, x\r\n\r\n");
    assert_int_equal(r.expect, HTTP_EXPECT_OTHER);
    r = expect_done("POST /" H11 "Expect: x\r\nExpect: 100-continue\r\n\r\n");
    assert_int_equal(r.expect, HTTP_EXPECT_OTHER);
    r = expect_done("POST /" H11 "Expect:\r\n\r\n");
    assert_int_equal(r.expect, HTTP_EXPECT_NONE);
    /* an HTTP/1.0 server ignores 100-continue (RFC 9110 10.1.1) */
    r = expect_done("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
    assert_int_equal(r.expect, HTTP_EXPECT_NONE);
    r = expect_done("POST / HTTP/1.0\r\nExpect: other\r\n\r\n");
    assert_int_equal(r.expect, HTTP_EXPECT_OTHER);
}

static void test_value_bytes_accepted(void **state)
{
    (void)state;
    /* obs-text and HTAB in values, an empty value, every tchar in a name */
    expect_done("GET /" H11 "X: caf\xc3\xa9\tok\r\nY:\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n");
}

static void test_head_exactly_max(void **state)
{
    (void)state;
    const char *s = "GET /" H11 "X: 123456789\r\n\r\n";
    size_t n = strlen(s);
    struct outcome o = parse_req_max(s, n, (uint32_t)n);
    assert_int_equal(o.r, HTTP_DONE);
    o = parse_req_max(s, n, (uint32_t)n - 1);
    assert_int_equal(o.r, HTTP_ERROR);
    assert_int_equal(o.status, 431);
    assert_int_equal(o.at, n - 1);
}

static void test_done_then_next_request(void **state)
{
    (void)state;
    const char *s = "GET /1" H11 "\r\nGET /2" H11 "\r\n";
    struct http_parser p;
    struct http_request r;
    http_request_parser_init(&p, MAX_HEAD);
    assert_int_equal(http_parse_request(&p, (const uint8_t *)s, strlen(s), &r), HTTP_DONE);
    size_t first = r.head_len;
    http_request_parser_init(&p, MAX_HEAD);
    assert_int_equal(http_parse_request(&p, (const uint8_t *)s + first, strlen(s) - first, &r),
                     HTTP_DONE);
    assert_true(span_is(s + first, r.target, "/2"));
    assert_int_equal(first + r.head_len, strlen(s));
}

/* ---- the request line: 400 ---- */

static void test_400_method_not_token(void **state)
{
    (void)state;
    expect_error("G(", 400, "400 bad method");
    expect_error("GE\x01", 400, "400 bad method");
    expect_error(" ", 400, "400 bad method");
}

static void test_400_double_space(void **state)
{
    (void)state;
    expect_error("GET  ", 400, "400 bad request target");
    expect_error("GET /  ", 400, "400 bad HTTP version");
}

static void test_400_target_bytes(void **state)
{
    (void)state;
    expect_error("GET /a\x01", 400, "400 bad request target");
    expect_error("GET /a\t", 400, "400 bad request target");
    expect_error("GET /caf\xc3", 400, "400 bad request target");
    expect_error("GET /a\x7f", 400, "400 bad request target");
    expect_error("GET /a\r", 400, "400 bad request target");
    expect_error("GET /a\n", 400, "400 bare LF");
    expect_error("GET \r", 400, "400 bad request target");
}

static void test_400_version_syntax(void **state)
{
    (void)state;
    expect_error("GET / h", 400, "400 bad HTTP version");
    expect_error("GET / HTTP/1,", 400, "400 bad HTTP version");
    expect_error("GET / HTTP/11", 400, "400 bad HTTP version");
    expect_error("GET / HTTP/1.x", 400, "400 bad HTTP version");
    expect_error("GET / HTTP/1.1 ", 400, "400 bad HTTP version");
    expect_error("GET / HTTP/1.10", 400, "400 bad HTTP version");
    expect_error("GET / HTTP/\r", 400, "400 bad HTTP version");
    expect_error("GET / HTTP/1.1\n", 400, "400 bare LF");
    expect_error("GET / HTTP/1.1\rX", 400, "400 bare CR");
    expect_error("GET\r", 400, "400 bad method");
    expect_error("GET\n", 400, "400 bare LF");
}

/* ---- header lines: 400 ---- */

static void test_400_header_name_not_token(void **state)
{
    (void)state;
    expect_error("GET /" H11 "Ho(", 400, "400 bad header name");
    expect_error("GET /" H11 "X\x01", 400, "400 bad header name");
    expect_error("GET /" H11 "\xc3", 400, "400 bad header name");
    expect_error("GET /" H11 ":", 400, "400 bad header name");
}

static void test_400_whitespace_before_colon(void **state)
{
    (void)state;
    expect_error("GET / HTTP/1.1\r\nHost ", 400, "400 whitespace before colon");
    expect_error("GET /" H11 "Content-Length\t", 400, "400 whitespace before colon");
}

static void test_400_header_without_colon(void **state)
{
    (void)state;
    expect_error("GET /" H11 "Foo\r", 400, "400 header without colon");
    expect_error("GET /" H11 "Foo\n", 400, "400 header without colon");
}

static void test_400_obs_fold(void **state)
{
    (void)state;
    expect_error("GET /" H11 "X: a\r\n ", 400, "400 obs-fold");
    expect_error("GET /" H11 "X: a\r\n\t", 400, "400 obs-fold");
    /* whitespace between the request line and the first field */
    expect_error("GET / HTTP/1.1\r\n ", 400, "400 obs-fold");
}

static void test_400_ctl_in_value(void **state)
{
    (void)state;
    static const char ctl[] = {0, 1, 8, 0x0b, 0x0c, 0x1f, 0x7f};
    for (size_t i = 0; i < sizeof(ctl); i++) {
        char s[64];
        int n = snprintf(s, sizeof(s), "GET /" H11 "X: a");
        s[n] = ctl[i];
        struct outcome o = parse_req_max(s, (size_t)n + 1, MAX_HEAD);
        assert_int_equal(o.r, HTTP_ERROR);
        assert_int_equal(o.status, 400);
        assert_string_equal(o.reason, "400 control character in header value");
        assert_int_equal(o.at, (size_t)n + 1);
    }
}

static void test_400_bare_cr(void **state)
{
    (void)state;
    expect_error("GET /" H11 "X: a\rb", 400, "400 bare CR");
    expect_error("GET /" H11 "\rX", 400, "400 bare CR");
    expect_error("GET /" H11 "X: a\r\r", 400, "400 bare CR");
}

static void test_400_bare_lf(void **state)
{
    (void)state;
    expect_error("GET /" H11 "X: a\n", 400, "400 bare LF");
    expect_error("GET /" H11 "\n", 400, "400 bare LF");
    expect_error("GET / HTTP/1.1\r\nHost: a\n", 400, "400 bare LF");
}

static void test_400_host_missing(void **state)
{
    (void)state;
    expect_error("GET / HTTP/1.1\r\nX: a\r\n\r\n", 400, "400 missing Host");
    expect_error("GET / HTTP/1.1\r\n\r\n", 400, "400 missing Host");
}

static void test_400_host_repeated(void **state)
{
    (void)state;
    expect_error("GET /" H11 "host:", 400, "400 repeated Host");
    expect_error("GET / HTTP/1.0\r\nHost: a\r\nHOST:", 400, "400 repeated Host");
}

static void test_400_bad_host(void **state)
{
    (void)state;
    expect_error("GET / HTTP/1.1\r\nHost: a b\r\n", 400, "400 bad Host");
    expect_error("GET / HTTP/1.1\r\nHost: a/b\r\n", 400, "400 bad Host");
    expect_error("GET / HTTP/1.1\r\nHost: u@a\r\n", 400, "400 bad Host");
    expect_error("GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n", 400, "400 bad Host");
    expect_done("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    expect_done("GET / HTTP/1.1\r\nHost: xn--caf-dma.example:80\r\n\r\n");
    expect_done("GET / HTTP/1.1\r\nHost:\r\n\r\n");
}

static void test_400_content_length_and_transfer_encoding(void **state)
{
    (void)state;
    expect_error("POST /" H11 "Content-Length: 5\r\nTransfer-Encoding:", 400,
                 "400 Content-Length with Transfer-Encoding");
    expect_error("POST /" H11 "Transfer-Encoding: chunked\r\nContent-Length:", 400,
                 "400 Content-Length with Transfer-Encoding");
}

static void test_400_content_length_repeated(void **state)
{
    (void)state;
    expect_error("POST /" H11 "Content-Length: 5\r\nContent-Length:", 400,
                 "400 repeated Content-Length");
    expect_error("POST /" H11 "Content-Length: 5\r\ncontent-length:", 400,
                 "400 repeated Content-Length");
}

static void test_400_content_length_signed(void **state)
{
    (void)state;
    expect_error("POST /" H11 "Content-Length: +", 400, "400 bad Content-Length");
    expect_error("POST /" H11 "Content-Length: -", 400, "400 bad Content-Length");
}

static void test_400_content_length_non_decimal(void **state)
{
    (void)state;
    expect_error("POST /" H11 "Content-Length: 0x", 400, "400 bad Content-Length");
    expect_error("POST /" H11 "Content-Length: 5a", 400, "400 bad Content-Length");
    expect_error("POST /" H11 "Content-Length: 1 2", 400, "400 bad Content-Length");
    expect_error("POST /" H11 "Content-Length: 1.", 400, "400 bad Content-Length");
    expect_error("POST /" H11 "Content-Length: \xd9", 400, "400 bad Content-Length");
}

static void test_400_content_length_list(void **state)
{
    (void)state;
    expect_error("POST /" H11 "Content-Length: 5,", 400, "400 bad Content-Length");
    expect_error("POST /" H11 "Content-Length: 5 ,", 400, "400 bad Content-Length");
}

static void test_400_content_length_empty(void **state)
{
    (void)state;
    expect_error("POST /" H11 "Content-Length:\r\n", 400, "400 bad Content-Length");
    expect_error("POST /" H11 "Content-Length: \t \r\n", 400, "400 bad Content-Length");
}

static void test_400_content_length_overflow(void **state)
{
    (void)state;
    expect_error("POST /" H11 "Content-Length: 18446744073709551616", 400,
                 "400 Content-Length overflow");
    expect_error("POST /" H11 "Content-Length: 99999999999999999999", 400,
                 "400 Content-Length overflow");
}

static void test_400_transfer_encoding_not_chunked_last(void **state)
{
    (void)state;
    expect_error("POST /" H11 "Transfer-Encoding: gzip\r\n\r\n", 400,
                 "400 Transfer-Encoding not ending in chunked");
    expect_error("POST /" H11 "Transfer-Encoding: chunked, gzip\r\n", 400,
                 "400 Transfer-Encoding not ending in chunked");
    expect_error("POST /" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
                 400, "400 Transfer-Encoding not ending in chunked");
    expect_error("POST /" H11 "Transfer-Encoding: xchunked\r\n\r\n", 400,
                 "400 Transfer-Encoding not ending in chunked");
}

static void test_400_chunked_twice(void **state)
{
    (void)state;
    expect_error("POST /" H11 "Transfer-Encoding: chunked, chunked\r\n", 400,
                 "400 chunked applied twice");
    expect_error("POST /" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: Chunked\r\n",
                 400, "400 chunked applied twice");
}

static void test_400_transfer_encoding_syntax(void **state)
{
    (void)state;
    expect_error("POST /" H11 "Transfer-Encoding:\r\n", 400, "400 bad Transfer-Encoding");
    expect_error("POST /" H11 "Transfer-Encoding: chunked,\r\n", 400, "400 bad Transfer-Encoding");
    expect_error("POST /" H11 "Transfer-Encoding: chun ked\r\n", 400, "400 bad Transfer-Encoding");
    expect_error("POST /" H11 "Transfer-Encoding: \"chunked\"\r\n", 400, "400 bad Transfer-Encoding");
    expect_error("POST /" H11 "Transfer-Encoding: chunked;x=1\r\n", 400, "400 bad Transfer-Encoding");
}

static void test_400_transfer_encoding_http10(void **state)
{
    (void)state;
    expect_error("POST / HTTP/1.0\r\nTransfer-Encoding:", 400, "400 Transfer-Encoding in HTTP/1.0");
}

/* ---- the other statuses ---- */

static void test_414_request_line_too_long(void **state)
{
    (void)state;
    /* no CRLF ever: a 414 once max bytes are in */
    char s[200];
    memset(s, 'a', sizeof(s));
    memcpy(s, "GET /", 5);
    struct outcome o = parse_req_max(s, sizeof(s), 64);
    assert_int_equal(o.r, HTTP_ERROR);
    assert_int_equal(o.status, 414);
    assert_string_equal(o.reason, "414 request line too long");
    assert_int_equal(o.at, 64);
    /* the version not complete at max bytes, too */
    const char *t = "GET /abc HTTP/1.1\r\n";
    o = parse_req_max(t, strlen(t), 12);
    assert_int_equal(o.status, 414);
    /* with the default limit */
    static char big[BIG];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /", 5);
    o = parse_req_max(big, sizeof(big), HTTP_MAX_HEADER_SIZE_DEFAULT);
    assert_int_equal(o.status, 414);
    assert_int_equal(o.at, HTTP_MAX_HEADER_SIZE_DEFAULT);
    /* leading empty lines count */
    o = parse_req_max("\r\n\r\n\r\n\r\n", 8, 6);
    assert_int_equal(o.status, 414);
}

static void test_431_header_section_too_large(void **state)
{
    (void)state;
    static char big[BIG];
    int n = snprintf(big, sizeof(big), "GET /" H11);
    memset(big + n, 'x', sizeof(big) - (size_t)n);
    big[n] = 'X';
    big[n + 1] = ':';
    struct outcome o = parse_req_max(big, sizeof(big), HTTP_MAX_HEADER_SIZE_DEFAULT);
    assert_int_equal(o.r, HTTP_ERROR);
    assert_int_equal(o.status, 431);
    assert_string_equal(o.reason, "431 header section too large");
    assert_int_equal(o.at, HTTP_MAX_HEADER_SIZE_DEFAULT);
    /* many small fields */
    size_t k = (size_t)n;
    while (k + 8 < sizeof(big)) {
        memcpy(big + k, "A: b\r\n", 6);
        k += 6;
    }
    o = parse_req_max(big, k, 1000);
    assert_int_equal(o.status, 431);
    assert_int_equal(o.at, 1000);
}

static void test_501_method_too_long(void **state)
{
    (void)state;
    char s[128];
    memset(s, 'M', 40);
    s[40] = '\0';
    struct outcome o = parse_req_max(s, 40, MAX_HEAD);
    assert_int_equal(o.r, HTTP_ERROR);
    assert_int_equal(o.status, 501);
    assert_string_equal(o.reason, "501 method too long");
    assert_int_equal(o.at, HTTP_METHOD_MAX + 1);  /* at the 33rd byte */
    /* 32 bytes is fine */
    memset(s, 'M', HTTP_METHOD_MAX);
    snprintf(s + HTTP_METHOD_MAX, sizeof(s) - HTTP_METHOD_MAX, " /" H11 "\r\n");
    struct http_request r = expect_done(s);
    assert_int_equal(r.method.len, HTTP_METHOD_MAX);
}

static void test_501_transfer_coding(void **state)
{
    (void)state;
    expect_error("POST /" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n", 501,
                 "501 transfer coding not implemented");
    expect_error("POST /" H11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
                 501, "501 transfer coding not implemented");
    expect_error("POST /" H11 "Transfer-Encoding: x;q=\"1\", chunked\r\n\r\n", 501,
                 "501 transfer coding not implemented");
}

static void test_505_version(void **state)
{
    (void)state;
    expect_error("PRI * HTTP/2", 505, "505 HTTP version not supported");
    expect_error("GET / HTTP/1.2", 505, "505 HTTP version not supported");
    expect_error("GET / HTTP/0", 505, "505 HTTP version not supported");
    expect_error("GET / HTTP/3", 505, "505 HTTP version not supported");
    /* the whole HTTP/2 preface gives the same answer */
    struct outcome o = parse_req("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert_int_equal(o.status, 505);
}

static void test_errors_are_sticky(void **state)
{
    (void)state;
    const char *s = "GET /" H11 "X: a\nmore bytes\r\n\r\n";
    struct http_parser p;
    struct http_request r;
    http_request_parser_init(&p, MAX_HEAD);
    assert_int_equal(http_parse_request(&p, (const uint8_t *)s, strlen(s), &r), HTTP_ERROR);
    assert_int_equal(http_parse_request(&p, (const uint8_t *)s, strlen(s), &r), HTTP_ERROR);
    assert_string_equal(p.err_reason, "400 bare LF");
}

/* Every prefix of a good head is NEED_MORE, and the head moved elsewhere
 * between calls gives the same result. */
static void test_prefixes_and_moved_buffer(void **state)
{
    (void)state;
    const char *s = "\r\nPOST /x?y HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                    "Connection: close\r\nX:  v \r\n\r\n";
    size_t n = strlen(s);
    char a[256], b[256];
    struct http_parser p;
    struct http_request r;
    http_request_parser_init(&p, MAX_HEAD);
    for (size_t k = 0; k < n; k++) {
        char *buf = k % 2 ? a : b;
        memcpy(buf, s, k);
        assert_int_equal(http_parse_request(&p, (const uint8_t *)buf, k, &r), HTTP_NEED_MORE);
    }
    memcpy(a, s, n);
    assert_int_equal(http_parse_request(&p, (const uint8_t *)a, n, &r), HTTP_DONE);
    assert_int_equal(r.head_len, n);
    assert_int_equal(r.skip, 2);
    assert_true(r.conn_close && r.content_length == 3);
}

/* ---- the header iterator ---- */

static void test_header_iterator(void **state)
{
    (void)state;
    const char *s = "\r\nGET / HTTP/1.1\r\nHost: a\r\nX-Dup:  one \r\nx-dup:two\r\n"
                    "Empty:\r\nSpaces: \t \r\nInner: a  b\r\n\r\nBODY: no\r\n";
    struct http_request r = expect_done(s);
    static const char *want[][2] = {
        {"Host", "a"}, {"X-Dup", "one"}, {"x-dup", "two"}, {"Empty", ""}, {"Spaces", ""},
        {"Inner", "a  b"},
    };
    struct http_header_iter it = {0};
    struct http_span name, value;
    size_t i = 0;
    while (http_header_next((const uint8_t *)s, r.head_len, &it, &name, &value)) {
        assert_true(i < sizeof(want) / sizeof(want[0]));
        assert_true(span_is(s, name, want[i][0]));
        assert_true(span_is(s, value, want[i][1]));
        i++;
    }
    assert_int_equal(i, sizeof(want) / sizeof(want[0]));
    /* exhausted stays exhausted */
    assert_false(http_header_next((const uint8_t *)s, r.head_len, &it, &name, &value));

    const char *none = "GET / HTTP/1.0\r\n\r\n";
    r = expect_done(none);
    struct http_header_iter it2 = {0};
    assert_false(http_header_next((const uint8_t *)none, r.head_len, &it2, &name, &value));
}

static void test_span_equals(void **state)
{
    (void)state;
    const uint8_t b[] = "xxHeAlThZ";
    struct http_span sp = {2, 7};
    assert_true(http_span_equals(b, sp, "healthz"));
    assert_false(http_span_equals(b, sp, "health"));
}

/* ---- chunked bodies ---- */

#define MAX_BODY 8192

struct chunk_rec {
    uint8_t data[MAX_BODY];
    size_t n;
    enum http_chunk_event_kind last;    /* NONE (wants more), END or ERROR */
    uint16_t status;
    const char *reason;
    size_t consumed;                    /* bytes consumed up to END or ERROR */
};

/* Feed buf[0..n) in pieces of `step` bytes (0: whole). */
static struct chunk_rec chunk_run(const char *s, size_t n, size_t step, uint32_t max_trailer)
{
    static struct chunk_rec rec;
    memset(&rec, 0, sizeof(rec));
    struct http_chunked d;
    http_chunked_init(&d, max_trailer);
    const uint8_t *buf = (const uint8_t *)s;
    size_t off = 0;
    size_t limit = step ? 0 : n;
    while (rec.last == HTTP_CHUNK_NONE) {
        if (step) {
            if (limit == n && off == n)
                break;
            limit = limit + step < n ? limit + step : n;
        }
        for (;;) {
            struct http_chunk_event ev;
            size_t used = http_chunked_decode(&d, buf + off, limit - off, &ev);
            assert_true(used <= limit - off);
            if (ev.kind == HTTP_CHUNK_DATA) {
                assert_true(ev.size > 0);
                assert_ptr_equal(ev.data + ev.size, buf + off + used);
                assert_true(rec.n + ev.size <= MAX_BODY);
                memcpy(rec.data + rec.n, ev.data, ev.size);
                rec.n += ev.size;
                assert_true(http_chunked_total(&d) == rec.n);
                assert_true(http_chunked_announced(&d) >= rec.n);
            }
            off += used;
            if (ev.kind == HTTP_CHUNK_NONE) {
                assert_int_equal(off, limit);
                break;
            }
            if (ev.kind == HTTP_CHUNK_END || ev.kind == HTTP_CHUNK_ERROR) {
                rec.last = ev.kind;
                rec.status = ev.status;
                rec.reason = ev.reason;
                rec.consumed = off;
                /* sticky: the same event, nothing consumed */
                struct http_chunk_event again;
                assert_int_equal(http_chunked_decode(&d, buf + off, n - off, &again), 0);
                assert_int_equal(again.kind, ev.kind);
                assert_false(http_chunked_in_body(&d));
                break;
            }
        }
        if (!step)
            break;
    }
    if (rec.last == HTTP_CHUNK_NONE)
        rec.consumed = off;
    return rec;
}

/* Whole, a byte at a time and in 3-byte pieces must agree. */
static struct chunk_rec chunk_parse_max(const char *s, size_t n, uint32_t max_trailer)
{
    struct chunk_rec w = chunk_run(s, n, 0, max_trailer);
    static struct chunk_rec whole;
    whole = w;
    static const size_t steps[] = {1, 2, 3, 7};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct chunk_rec b = chunk_run(s, n, steps[i], max_trailer);
        assert_int_equal(b.last, whole.last);
        assert_int_equal(b.n, whole.n);
        assert_memory_equal(b.data, whole.data, whole.n);
        assert_int_equal(b.status, whole.status);
        assert_int_equal(b.consumed, whole.consumed);
        if (whole.reason)
            assert_string_equal(b.reason, whole.reason);
    }
    return whole;
}

static struct chunk_rec chunk_parse(const char *s)
{
    return chunk_parse_max(s, strlen(s), MAX_HEAD);
}

static void chunk_ok(const char *s, const char *body, size_t rest)
{
    struct chunk_rec r = chunk_parse(s);
    if (r.last != HTTP_CHUNK_END)
        fail_msg("not END (%d %s): %s", r.last, r.reason ? r.reason : "", s);
    assert_int_equal(r.n, strlen(body));
    assert_memory_equal(r.data, body, r.n);
    assert_int_equal(r.consumed, strlen(s) - rest);
}

static void chunk_err(const char *s, uint16_t status, const char *reason)
{
    struct chunk_rec r = chunk_parse(s);
    if (r.last != HTTP_CHUNK_ERROR)
        fail_msg("not ERROR (%d): %s", r.last, s);
    assert_int_equal(r.status, status);
    assert_string_equal(r.reason, reason);
    /* the error is at the last byte: certain there, not before */
    assert_int_equal(r.consumed, strlen(s) - 1);
}

static void test_chunked_simple(void **state)
{
    (void)state;
    chunk_ok("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", 0);
    /* what follows the body is not consumed */
    chunk_ok("3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "abc", strlen("GET / HTTP/1.1\r\n"));
}

static void test_chunked_zero_only(void **state)
{
    (void)state;
    chunk_ok("0\r\n\r\n", "", 0);
    chunk_ok("000\r\n\r\n", "", 0);
}

static void test_chunked_uppercase_hex(void **state)
{
    (void)state;
    chunk_ok("A\r\n0123456789\r\n0\r\n\r\n", "0123456789", 0);
    chunk_ok("a\r\n0123456789\r\n00\r\n\r\n", "0123456789", 0);
    chunk_ok("0000000000000000000001\r\nx\r\n0\r\n\r\n", "x", 0);
}

static void test_chunked_extensions(void **state)
{
    (void)state;
    chunk_ok("3;name\r\nabc\r\n0\r\n\r\n", "abc", 0);
    chunk_ok("3;a=b;c;d=\"x y;\\\" z\"\r\nabc\r\n0;last=1\r\n\r\n", "abc", 0);
    chunk_ok("3 ; a = b ;\tc = \"q\"\r\nabc\r\n0\r\n\r\n", "abc", 0);
    chunk_err("3;\r", 400, "400 bad chunk extension");
    chunk_err("3;=", 400, "400 bad chunk extension");
    chunk_err("3;a=\r", 400, "400 bad chunk extension");
    chunk_err("3;a=\"x\r", 400, "400 bad chunk extension");
    chunk_err("3;a=\"x\"y", 400, "400 bad chunk extension");
    chunk_err("3;a b", 400, "400 bad chunk extension");
    chunk_err("3 \r", 400, "400 bad chunk extension");
    chunk_err("3;a=b \r", 400, "400 bad chunk extension");
    chunk_err("3;a=(", 400, "400 bad chunk extension");
    chunk_err("3;a=\"\x01", 400, "400 bad chunk extension");
}

static void test_chunked_trailers(void **state)
{
    (void)state;
    chunk_ok("2\r\nab\r\n0\r\nX-Sum: 1\r\nY:\r\nZ: a b\r\n\r\nnext", "ab", 4);
    chunk_err("0\r\nX ", 400, "400 whitespace before colon in trailer");
    chunk_err("0\r\nX: 1\r\n ", 400, "400 obs-fold in trailer");
    chunk_err("0\r\nX: \x01", 400, "400 bad trailer field");
    chunk_err("0\r\nX\r", 400, "400 bad trailer field");
    chunk_err("0\r\n(", 400, "400 bad trailer field");
    chunk_err("0\r\nX: 1\n", 400, "400 bare LF in trailer");
    chunk_err("0\r\nX: 1\rX", 400, "400 bare CR in trailer");
    chunk_err("0\r\n\n", 400, "400 bare LF in trailer");
    chunk_err("0\r\n\rX", 400, "400 bare CR in trailer");
}

static void test_chunked_trailer_limit(void **state)
{
    (void)state;
    const char *s = "0\r\nX-Long: 0123456789\r\n\r\n";      /* trailer: 22 bytes */
    struct chunk_rec r = chunk_parse_max(s, strlen(s), 22);
    assert_int_equal(r.last, HTTP_CHUNK_END);
    r = chunk_parse_max(s, strlen(s), 21);
    assert_int_equal(r.last, HTTP_CHUNK_ERROR);
    assert_int_equal(r.status, 431);
    assert_string_equal(r.reason, "431 trailer section too large");
}

static void test_chunked_huge_hex(void **state)
{
    (void)state;
    /* the largest size is accepted and announced before any data */
    struct http_chunked d;
    http_chunked_init(&d, MAX_HEAD);
    struct http_chunk_event ev;
    const char *s = "ffffffffffffffff\r\nab";
    size_t used = http_chunked_decode(&d, (const uint8_t *)s, strlen(s), &ev);
    assert_int_equal(ev.kind, HTTP_CHUNK_DATA);
    assert_int_equal(used, strlen(s));
    assert_true(http_chunked_announced(&d) == UINT64_MAX);
    assert_true(http_chunked_total(&d) == 2);
    chunk_err("10000000000000000", 400, "400 chunk size overflow");
    /* a second chunk overflowing the sum */
    chunk_err("1\r\nx\r\nffffffffffffffff\r\n", 400, "400 chunked body too large");
}

static void test_chunked_announced_before_data(void **state)
{
    (void)state;
    struct http_chunked d;
    http_chunked_init(&d, MAX_HEAD);
    struct http_chunk_event ev;
    const char *s = "100000\r\n";
    assert_int_equal(http_chunked_decode(&d, (const uint8_t *)s, strlen(s), &ev), strlen(s));
    assert_int_equal(ev.kind, HTTP_CHUNK_NONE);
    assert_true(http_chunked_announced(&d) == 0x100000);
    assert_true(http_chunked_total(&d) == 0);
    assert_true(http_chunked_in_body(&d));
}

static void test_chunked_bad_framing(void **state)
{
    (void)state;
    chunk_err("g", 400, "400 bad chunk size");
    chunk_err("\r", 400, "400 bad chunk size");
    chunk_err("-", 400, "400 bad chunk size");
    chunk_err("0x", 400, "400 bad chunk size");
    chunk_err("5\n", 400, "400 bare LF in chunk line");
    chunk_err("\n", 400, "400 bare LF in chunk line");
    chunk_err("5\rh", 400, "400 bare CR in chunk line");
    chunk_err("5;a\n", 400, "400 bare LF in chunk line");
    chunk_err("5\r\nhelloX", 400, "400 missing CRLF after chunk data");
    chunk_err("5\r\nhello\rX", 400, "400 missing CRLF after chunk data");
    chunk_err("5\r\nhello\n", 400, "400 missing CRLF after chunk data");
    chunk_err("0\r\n\rX", 400, "400 bare CR in trailer");
}

static void test_chunked_line_limit(void **state)
{
    (void)state;
    static char s[HTTP_CHUNK_LINE_MAX + 64];
    memset(s, 'a', sizeof(s));
    memcpy(s, "1;", 2);
    struct chunk_rec r = chunk_parse_max(s, sizeof(s), MAX_HEAD);
    assert_int_equal(r.last, HTTP_CHUNK_ERROR);
    assert_string_equal(r.reason, "400 chunk line too long");
    assert_int_equal(r.consumed, HTTP_CHUNK_LINE_MAX);
    /* a line of exactly the limit passes */
    memset(s, 'a', sizeof(s));
    memcpy(s, "1;", 2);
    memcpy(s + HTTP_CHUNK_LINE_MAX - 2, "\r\nx\r\n0\r\n\r\n", 10);
    r = chunk_parse_max(s, HTTP_CHUNK_LINE_MAX + 8, MAX_HEAD);
    assert_int_equal(r.last, HTTP_CHUNK_END);
    assert_int_equal(r.n, 1);
}

static void test_chunked_missing_final_crlf(void **state)
{
    (void)state;
    const char *s = "3\r\nabc\r\n0\r\n";
    struct chunk_rec r = chunk_parse(s);
    assert_int_equal(r.last, HTTP_CHUNK_NONE);
    assert_int_equal(r.n, 3);
    struct http_chunked d;
    http_chunked_init(&d, MAX_HEAD);
    assert_false(http_chunked_in_body(&d));
    struct http_chunk_event ev;
    size_t off = 0;
    do {
        off += http_chunked_decode(&d, (const uint8_t *)s + off, strlen(s) - off, &ev);
    } while (ev.kind != HTTP_CHUNK_NONE);
    assert_true(http_chunked_in_body(&d));    /* an EOF now cuts the body short */
    /* data cut short */
    r = chunk_parse("5\r\nhel");
    assert_int_equal(r.last, HTTP_CHUNK_NONE);
    assert_int_equal(r.n, 3);
}

static void test_chunked_unread(void **state)
{
    (void)state;
    const char *s = "6\r\nabcdef\r\n0\r\n\r\n";
    struct http_chunked d;
    http_chunked_init(&d, MAX_HEAD);
    struct http_chunk_event ev;
    size_t used = http_chunked_decode(&d, (const uint8_t *)s, strlen(s), &ev);
    assert_int_equal(ev.kind, HTTP_CHUNK_DATA);
    assert_int_equal(ev.size, 6);
    /* the caller takes 2 bytes only */
    http_chunked_unread(&d, 4);
    used -= 4;
    assert_true(http_chunked_total(&d) == 2);
    used += http_chunked_decode(&d, (const uint8_t *)s + used, strlen(s) - used, &ev);
    assert_int_equal(ev.kind, HTTP_CHUNK_DATA);
    assert_int_equal(ev.size, 4);
    assert_memory_equal(ev.data, "cdef", 4);
    used += http_chunked_decode(&d, (const uint8_t *)s + used, strlen(s) - used, &ev);
    assert_int_equal(ev.kind, HTTP_CHUNK_END);
    assert_int_equal(used, strlen(s));
}

static void test_chunk_header_encode(void **state)
{
    (void)state;
    uint8_t b[HTTP_CHUNK_HEADER_MAX];
    size_t n = http_chunk_header(b, 0x1f40);
    assert_int_equal(n, 6);
    assert_memory_equal(b, "1f40\r\n", 6);
    n = http_chunk_header(b, 1);
    assert_memory_equal(b, "1\r\n", n);
    n = http_chunk_header(b, UINT64_MAX);
    assert_int_equal(n, HTTP_CHUNK_HEADER_MAX);
    assert_memory_equal(b, "ffffffffffffffff\r\n", n);
    /* round trip through the decoder */
    char s[64];
    n = http_chunk_header(b, 11);
    memcpy(s, b, n);
    memcpy(s + n, "hello world" HTTP_CRLF HTTP_CHUNK_LAST, 11 + 2 + 5);
    s[n + 18] = '\0';
    chunk_ok(s, "hello world", 0);
}

/* ---- responses ---- */

static struct outcome parse_resp_max(const char *s, size_t n, uint32_t max)
{
    struct outcome w = {0}, b = {0};
    struct http_parser p;
    http_response_parser_init(&p, max);
    w.r = http_parse_response(&p, (const uint8_t *)s, n, &w.resp);
    if (w.r == HTTP_ERROR) {
        w.status = p.err_status;
        w.reason = p.err_reason;
    }
    http_response_parser_init(&p, max);
    b.r = HTTP_NEED_MORE;
    for (size_t k = 0; k <= n && b.r == HTTP_NEED_MORE; k++) {
        b.r = http_parse_response(&p, (const uint8_t *)s, k, &b.resp);
        b.at = k;
    }
    if (b.r == HTTP_ERROR) {
        b.status = p.err_status;
        b.reason = p.err_reason;
    }
    assert_int_equal(w.r, b.r);
    assert_int_equal(w.status, b.status);
    if (w.r == HTTP_DONE) {
        assert_int_equal(w.resp.status, b.resp.status);
        assert_int_equal(w.resp.head_len, b.resp.head_len);
        assert_int_equal(w.resp.head_len, b.at);
        assert_true(w.resp.content_length == b.resp.content_length);
        assert_int_equal(w.resp.chunked, b.resp.chunked);
        assert_int_equal(w.resp.conn_close, b.resp.conn_close);
        assert_int_equal(w.resp.reason.off, b.resp.reason.off);
        assert_int_equal(w.resp.reason.len, b.resp.reason.len);
    }
    w.at = b.at;
    return w;
}

static struct outcome parse_resp(const char *s)
{
    return parse_resp_max(s, strlen(s), MAX_HEAD);
}

static void test_response_content_length(void **state)
{
    (void)state;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDate: x\r\n\r\nhello";
    struct outcome o = parse_resp(s);
    assert_int_equal(o.r, HTTP_DONE);
    assert_int_equal(o.resp.status, 200);
    assert_int_equal(o.resp.minor, 1);
    assert_true(o.resp.has_content_length && o.resp.content_length == 5);
    assert_false(o.resp.chunked);
    assert_int_equal(o.resp.head_len, strlen(s) - 5);
    assert_true(span_is(s, o.resp.reason, "OK"));
}

static void test_response_chunked_and_connection(void **state)
{
    (void)state;
    struct outcome o = parse_resp("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n"
                                  "Connection: close\r\n\r\n");
    assert_int_equal(o.r, HTTP_DONE);
    assert_int_equal(o.resp.status, 404);
    assert_true(o.resp.chunked);
    assert_true(o.resp.conn_close);
    o = parse_resp("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(o.r, HTTP_DONE);
    assert_int_equal(o.resp.minor, 0);
    assert_true(o.resp.conn_keep_alive);
}

static void test_response_reason_forms(void **state)
{
    (void)state;
    const char *s = "HTTP/1.1 204\r\n\r\n";
    struct outcome o = parse_resp(s);
    assert_int_equal(o.r, HTTP_DONE);
    assert_int_equal(o.resp.status, 204);
    assert_int_equal(o.resp.reason.len, 0);
    o = parse_resp("HTTP/1.1 200 \r\n\r\n");
    assert_int_equal(o.r, HTTP_DONE);
    assert_int_equal(o.resp.reason.len, 0);
    s = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n";
    o = parse_resp(s);
    assert_int_equal(o.resp.status, 100);
    assert_int_equal(o.resp.head_len, strlen("HTTP/1.1 100 Continue\r\n\r\n"));
    /* no Host needed, and Host/Expect carry no meaning in a response */
    o = parse_resp("HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\n\r\n");
    assert_int_equal(o.r, HTTP_DONE);
}

static void test_response_errors(void **state)
{
    (void)state;
    static const struct { const char *s; uint16_t status; } bad[] = {
        {"HTTP/1.1 20 OK\r\n\r\n", 400},
        {"HTTP/1.1 2000 OK\r\n\r\n", 400},
        {"HTTP/1.1 099 OK\r\n\r\n", 400},
        {"HTTP/1.1  200 OK\r\n\r\n", 400},
        {"http/1.1 200 OK\r\n\r\n", 400},
        {"HTTP/2 200 OK\r\n\r\n", 505},
        {"HTTP/1.1 200 OK\n\r\n", 400},
        {"HTTP/1.1 200 OK\r\nX: a\n\r\n", 400},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", 400},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"HTTP/1.1 200 OK\r\n X: a\r\n\r\n", 400},
        {"\r\nHTTP/1.1 200 OK\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct outcome o = parse_resp(bad[i].s);
        if (o.r != HTTP_ERROR)
            fail_msg("accepted: %s", bad[i].s);
        assert_int_equal(o.status, bad[i].status);
    }
    char big[256];
    memset(big, 'a', sizeof(big));
    memcpy(big, "HTTP/1.1 200 ", 13);
    struct outcome o = parse_resp_max(big, sizeof(big), 100);
    assert_int_equal(o.r, HTTP_ERROR);
    assert_int_equal(o.status, 431);
    assert_int_equal(o.at, 100);
}

static void test_response_header_iterator(void **state)
{
    (void)state;
    const char *s = "HTTP/1.1 200 OK\r\nA: 1\r\nB:2\r\n\r\n";
    struct outcome o = parse_resp(s);
    struct http_header_iter it = {0};
    struct http_span name, value;
    assert_true(http_header_next((const uint8_t *)s, o.resp.head_len, &it, &name, &value));
    assert_true(span_is(s, name, "A") && span_is(s, value, "1"));
    assert_true(http_header_next((const uint8_t *)s, o.resp.head_len, &it, &name, &value));
    assert_true(span_is(s, name, "B") && span_is(s, value, "2"));
    assert_false(http_header_next((const uint8_t *)s, o.resp.head_len, &it, &name, &value));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_no_query_and_empty_query),
        cmocka_unit_test(test_target_forms),
        cmocka_unit_test(test_http10_without_host),
        cmocka_unit_test(test_leading_empty_lines_skipped),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked_request),
        cmocka_unit_test(test_connection_tokens),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_value_bytes_accepted),
        cmocka_unit_test(test_head_exactly_max),
        cmocka_unit_test(test_done_then_next_request),
        cmocka_unit_test(test_400_method_not_token),
        cmocka_unit_test(test_400_double_space),
        cmocka_unit_test(test_400_target_bytes),
        cmocka_unit_test(test_400_version_syntax),
        cmocka_unit_test(test_400_header_name_not_token),
        cmocka_unit_test(test_400_whitespace_before_colon),
        cmocka_unit_test(test_400_header_without_colon),
        cmocka_unit_test(test_400_obs_fold),
        cmocka_unit_test(test_400_ctl_in_value),
        cmocka_unit_test(test_400_bare_cr),
        cmocka_unit_test(test_400_bare_lf),
        cmocka_unit_test(test_400_host_missing),
        cmocka_unit_test(test_400_host_repeated),
        cmocka_unit_test(test_400_bad_host),
        cmocka_unit_test(test_400_content_length_and_transfer_encoding),
        cmocka_unit_test(test_400_content_length_repeated),
        cmocka_unit_test(test_400_content_length_signed),
        cmocka_unit_test(test_400_content_length_non_decimal),
        cmocka_unit_test(test_400_content_length_list),
        cmocka_unit_test(test_400_content_length_empty),
        cmocka_unit_test(test_400_content_length_overflow),
        cmocka_unit_test(test_400_transfer_encoding_not_chunked_last),
        cmocka_unit_test(test_400_chunked_twice),
        cmocka_unit_test(test_400_transfer_encoding_syntax),
        cmocka_unit_test(test_400_transfer_encoding_http10),
        cmocka_unit_test(test_414_request_line_too_long),
        cmocka_unit_test(test_431_header_section_too_large),
        cmocka_unit_test(test_501_method_too_long),
        cmocka_unit_test(test_501_transfer_coding),
        cmocka_unit_test(test_505_version),
        cmocka_unit_test(test_errors_are_sticky),
        cmocka_unit_test(test_prefixes_and_moved_buffer),
        cmocka_unit_test(test_header_iterator),
        cmocka_unit_test(test_span_equals),
        cmocka_unit_test(test_chunked_simple),
        cmocka_unit_test(test_chunked_zero_only),
        cmocka_unit_test(test_chunked_uppercase_hex),
        cmocka_unit_test(test_chunked_extensions),
        cmocka_unit_test(test_chunked_trailers),
        cmocka_unit_test(test_chunked_trailer_limit),
        cmocka_unit_test(test_chunked_huge_hex),
        cmocka_unit_test(test_chunked_announced_before_data),
        cmocka_unit_test(test_chunked_bad_framing),
        cmocka_unit_test(test_chunked_line_limit),
        cmocka_unit_test(test_chunked_missing_final_crlf),
        cmocka_unit_test(test_chunked_unread),
        cmocka_unit_test(test_chunk_header_encode),
        cmocka_unit_test(test_response_content_length),
        cmocka_unit_test(test_response_chunked_and_connection),
        cmocka_unit_test(test_response_reason_forms),
        cmocka_unit_test(test_response_errors),
        cmocka_unit_test(test_response_header_iterator),
    };
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
