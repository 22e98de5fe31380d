/* test_bench_http.c - echobench's HTTP response decoder (client/bench_http.c)
 * and its request heads (client/bench_wire.c): a stream of responses (an
 * interim 100, chunked with an extension and a trailer, Content-Length, a
 * 204, and an HTTP/1.0 body to EOF) decodes to the same events whatever two
 * or three pieces it is cut into; a head split across reads is gathered in
 * the lent buffer; malformed responses are errors; the RESP and HTTP request
 * encodings are byte for byte what the protocols say.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/bench_http.h"
#include "client/bench_wire.h"

static const char stream[] =
    "HTTP/1.1 100 Continue\r\n\r\n"
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3;x=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-T: 1\r\n\r\n"
    "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc"
    "HTTP/1.1 204 No Content\r\nServer: t\r\n\r\n"
    "HTTP/1.0 200 OK\r\n\r\nto the end";

/* What the decoder reported, as text: "H200 Bhello E H404 ..." */
struct trace {
    char text[512];
    size_t len;
    char body[64];
    size_t body_len;
};

static void add(struct trace *t, const char *s)
{
    t->len += (size_t)snprintf(t->text + t->len, sizeof(t->text) - t->len, "%s", s);
}

static void flush_body(struct trace *t)
{
    if (t->body_len == 0)
        return;
    char tmp[80];
    snprintf(tmp, sizeof(tmp), "B%.*s ", (int)t->body_len, t->body);
    add(t, tmp);
    t->body_len = 0;
}

/* Feed p[0..n) to d; returns false on an error event. */
static bool feed(struct bench_http_decoder *d, const uint8_t *p, size_t n, struct trace *t)
{
    for (;;) {
        struct bench_http_ev ev;
        bool needs_buf;
        size_t used = bench_http_decode(d, p, n, &ev, &needs_buf);
        assert_false(needs_buf);    /* the test lends a buffer from the start */
        p += used;
        n -= used;
        char tmp[40];
        switch (ev.kind) {
        case BENCH_HTTP_EV_NONE:
            assert_int_equal(n, 0);
            return true;
        case BENCH_HTTP_EV_HEAD:
            snprintf(tmp, sizeof(tmp), "H%u%s%s ", ev.status, ev.close ? "c" : "",
                     ev.until_eof ? "u" : "");
            add(t, tmp);
            break;
        case BENCH_HTTP_EV_BODY:
            assert_true(t->body_len + ev.size <= sizeof(t->body));
            memcpy(t->body + t->body_len, ev.data, ev.size);
            t->body_len += ev.size;
            break;
        case BENCH_HTTP_EV_END:
            flush_body(t);
            add(t, "E ");
            break;
        default:
            add(t, "ERR ");
            return false;
        }
    }
}

static const char expected[] = "H200 Bhello E H404 Babc E H204 E H200cu ";

static void decode_cut(size_t a, size_t b, struct trace *t)
{
    static uint8_t buf[BENCH_HTTP_RESP_HEAD_MAX];
    struct bench_http_decoder d;
    bench_http_decoder_init(&d, buf);
    size_t n = sizeof(stream) - 1;
    const uint8_t *s = (const uint8_t *)stream;
    memset(t, 0, sizeof(*t));
    assert_true(feed(&d, s, a, t));
    assert_true(feed(&d, s + a, b - a, t));
    assert_true(feed(&d, s + b, n - b, t));
    flush_body(t);  /* the last body ends with the connection */
}

static void test_every_two_way_cut(void **state)
{
    (void)state;
    size_t n = sizeof(stream) - 1;
    for (size_t a = 0; a <= n; a++) {
        struct trace t;
        decode_cut(a, a, &t);
        assert_string_equal(t.text, "H200 Bhello E H404 Babc E H204 E H200cu Bto the end ");
    }
}

static void test_three_way_cuts(void **state)
{
    (void)state;
    size_t n = sizeof(stream) - 1;
    for (size_t a = 0; a <= n; a += 3) {
        for (size_t b = a; b <= n; b += 5) {
            struct trace t;
            decode_cut(a, b, &t);
            assert_int_equal(strncmp(t.text, expected, strlen(expected)), 0);
        }
    }
}

static void test_split_head_asks_for_a_buffer(void **state)
{
    (void)state;
    const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    struct bench_http_decoder d;
    bench_http_decoder_init(&d, NULL);
    struct bench_http_ev ev;
    bool needs_buf;
    size_t used = bench_http_decode(&d, (const uint8_t *)r, 10, &ev, &needs_buf);
    assert_true(needs_buf);
    assert_int_equal(used, 0);
    static uint8_t buf[BENCH_HTTP_RESP_HEAD_MAX];
    d.head_buf = buf;
    used = bench_http_decode(&d, (const uint8_t *)r, 10, &ev, &needs_buf);
    assert_int_equal(used, 10);
    assert_int_equal(ev.kind, BENCH_HTTP_EV_NONE);
    used = bench_http_decode(&d, (const uint8_t *)r + 10, strlen(r) - 10, &ev, &needs_buf);
    assert_int_equal(ev.kind, BENCH_HTTP_EV_HEAD);
    assert_int_equal(ev.status, 200);
    assert_int_equal(10 + used, strlen(r) - 2);
}

static void test_malformed_is_an_error(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "HTTX/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct bench_http_decoder d;
        static uint8_t buf[BENCH_HTTP_RESP_HEAD_MAX];
        bench_http_decoder_init(&d, buf);
        struct trace t = {0};
        assert_false(feed(&d, (const uint8_t *)bad[i], strlen(bad[i]), &t));
    }
}

static void test_request_encodings(void **state)
{
    (void)state;
    static uint8_t pattern[64];
    memcpy(pattern, "abcdefghij", 10);
    struct bench_wire w = {.proto = BENCH_PROTO_REDIS, .pattern = pattern};
    uint8_t tmp[BENCH_TMP_MAX], out[256];
    struct bench_piece pc[BENCH_PIECES_MAX];
    uint32_t len;
    unsigned n = bench_wire_request(&w, 'E', 10, 0, tmp, pc, &len);
    size_t k = 0;
    for (unsigned i = 0; i < n; i++) {
        memcpy(out + k, pc[i].p, pc[i].len);
        k += pc[i].len;
    }
    assert_int_equal(k, len);
    assert_memory_equal(out, "*2\r\n$4\r\nECHO\r\n$10\r\nabcdefghij\r\n", k);
    const uint8_t *tail;
    uint32_t tl, pl;
    unsigned hl = bench_wire_reply(&w, 10, tmp, &tail, &tl, &pl);
    assert_int_equal(hl, 5);
    assert_memory_equal(tmp, "$10\r\n", 5);
    assert_int_equal(pl, 10);
    assert_int_equal(tl, 2);

    static struct bench_wire h = {.proto = BENCH_PROTO_HTTP, .pattern = pattern};
    const char *hdrs[] = {"X-A: 1"};
    assert_int_equal(bench_wire_http_init(&h, "/p", "127.0.0.1:80", hdrs, 1, true, true), 0);
    n = bench_wire_request(&h, 'E', 3, 0, tmp, pc, &len);
    k = 0;
    for (unsigned i = 0; i < n; i++) {
        memcpy(out + k, pc[i].p, pc[i].len);
        k += pc[i].len;
    }
    const char *want = "POST /p HTTP/1.1\r\nHost: 127.0.0.1:80\r\nX-A: 1\r\nConnection: close\r\n"
                       "Content-Type: application/octet-stream\r\nContent-Length: 3\r\n\r\nabc";
    assert_int_equal(k, strlen(want));
    assert_memory_equal(out, want, k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_two_way_cut),
        cmocka_unit_test(test_three_way_cuts),
        cmocka_unit_test(test_split_head_asks_for_a_buffer),
        cmocka_unit_test(test_malformed_is_an_error),
        cmocka_unit_test(test_request_encodings),
    };
    return cmocka_run_group_tests_name("bench_http", tests, NULL, NULL);
}
