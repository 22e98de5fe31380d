/* test_http_json.c - the format=json object (server/http_json.c): the exact
 * text for a typical request, begin + finish in two steps, escaping of every
 * byte value (always valid JSON, and lossless: unescaping gives the bytes
 * back), the size functions agree with what is written, every cap short of
 * the size gives 0 without writing past it, and HTTP_JSON_MAX bounds the
 * worst heads.
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
#include "server/http_json.h"

#define GUARD 32
#define GUARD_BYTE 0xA5

static struct http_json_str S(const char *s)
{
    return (struct http_json_str){s, strlen(s)};
}

/* ---- a strict JSON checker that also unescapes strings ---- */

struct jp {
    const char *p, *end;
};

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A string into out (bytes: \u00XX read back as one byte; anything above
 * \u00ff is not something we write, so it fails). Returns its length or -1. */
static long jp_string(struct jp *j, unsigned char *out, size_t cap)
{
    size_t n = 0;
    if (j->p >= j->end || *j->p != '"')
        return -1;
    j->p++;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p++;
        if (c == '"')
            return (long)n;
        if (c < 0x20 || c >= 0x80)
            return -1;      /* we promise ASCII-only output */
        if (c == '\\') {
            if (j->p >= j->end)
                return -1;
            char e = *j->p++;
            if (e == '"' || e == '\\' || e == '/') {
                c = (unsigned char)e;
            } else if (e == 'u') {
                if (j->end - j->p < 4 || j->p[0] != '0' || j->p[1] != '0')
                    return -1;
                int hi = hexv(j->p[2]), lo = hexv(j->p[3]);
                if (hi < 0 || lo < 0)
                    return -1;
                c = (unsigned char)(hi << 4 | lo);
                j->p += 4;
            } else {
                return -1;
            }
        }
        if (n >= cap)
            return -1;
        out[n++] = c;
    }
    return -1;
}

static bool jp_lit(struct jp *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return false;
    j->p += n;
    return true;
}

static bool jp_uint(struct jp *j, uint64_t *v)
{
    const char *s = j->p;
    *v = 0;
    if (j->p < j->end && *j->p == '0') {
        j->p++;
        return true;
    }
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        *v = *v * 10 + (uint64_t)(*j->p++ - '0');
    return j->p > s;
}

/* What the object says, unescaped. */
#define FIELD_MAX 4096
#define HDRS_MAX 16
struct parsed {
    unsigned char method[FIELD_MAX], target[FIELD_MAX], path[FIELD_MAX], query[FIELD_MAX],
        version[FIELD_MAX], remote[FIELD_MAX], listener[FIELD_MAX];
    long method_len, target_len, path_len, query_len, version_len, remote_len, listener_len;
    unsigned char names[HDRS_MAX][FIELD_MAX], values[HDRS_MAX][FIELD_MAX];
    long name_len[HDRS_MAX], value_len[HDRS_MAX];
    size_t nheaders;
    uint64_t worker, body_bytes;
};

/* Parse exactly the layout we promise (key order included). */
static bool parse_object(const char *s, size_t len, struct parsed *o)
{
    struct jp j = {s, s + len};
#define STR(key, field)                                                      \
    if (!jp_lit(&j, key) || (o->field##_len = jp_string(&j, o->field, FIELD_MAX)) < 0) \
        return false;
    STR("{\"method\":", method);
    STR(",\"target\":", target);
    STR(",\"path\":", path);
    STR(",\"query\":", query);
    STR(",\"version\":", version);
    if (!jp_lit(&j, ",\"headers\":["))
        return false;
    o->nheaders = 0;
    while (!jp_lit(&j, "]")) {
        if (o->nheaders > 0 && !jp_lit(&j, ","))
            return false;
        size_t i = o->nheaders++;
        if (i >= HDRS_MAX || !jp_lit(&j, "["))
            return false;
        if ((o->name_len[i] = jp_string(&j, o->names[i], FIELD_MAX)) < 0 || !jp_lit(&j, ",") ||
            (o->value_len[i] = jp_string(&j, o->values[i], FIELD_MAX)) < 0 || !jp_lit(&j, "]"))
            return false;
    }
    STR(",\"remote\":", remote);
    STR(",\"listener\":", listener);
#undef STR
    if (!jp_lit(&j, ",\"worker\":") || !jp_uint(&j, &o->worker))
        return false;
    if (!jp_lit(&j, ",\"body_bytes\":") || !jp_uint(&j, &o->body_bytes))
        return false;
    return jp_lit(&j, "}") && j.p == j.end;
}

/* ---- helpers ---- */

static char *render(const struct http_json_request *r, uint64_t body, size_t *len)
{
    size_t need = http_json_begin_size(r) + http_json_finish_len(body);
    char *out = malloc(need + 1);
    assert_non_null(out);
    size_t a = http_json_begin(r, out, need);
    assert_int_equal(a, http_json_begin_size(r));
    size_t b = http_json_finish(body, out + a, need - a);
    assert_int_equal(b, http_json_finish_len(body));
    assert_int_equal(a + b, need);
    out[need] = '\0';
    *len = need;
    return out;
}

static void test_typical(void **state)
{
    (void)state;
    struct http_json_str hdrs[] = {S("Host"), S("x"), S("Content-Length"), S("3"),
                               S("X-Dup"), S("1"), S("x-dup"), S("2")};
    struct http_json_headers hs = {hdrs, 4};
    struct http_json_request r = {
        .method = S("POST"), .target = S("/a?format=json"), .path = S("/a"),
        .query = S("format=json"), .version = S("HTTP/1.1"),
        .next_header = http_json_header_array, .header_ctx = &hs,
        .remote = S("127.0.0.1:40000"), .listener = S("http://127.0.0.1:8080"), .worker = 1,
    };
    size_t len;
    char *s = render(&r, 3, &len);
    assert_string_equal(s, "{\"method\":\"POST\",\"target\":\"/a?format=json\",\"path\":\"/a\","
                           "\"query\":\"format=json\",\"version\":\"HTTP/1.1\",\"headers\":"
                           "[[\"Host\",\"x\"],[\"Content-Length\",\"3\"],[\"X-Dup\",\"1\"],"
                           "[\"x-dup\",\"2\"]],\"remote\":\"127.0.0.1:40000\","
                           "\"listener\":\"http://127.0.0.1:8080\",\"worker\":1,\"body_bytes\":3}");
    free(s);

    /* No headers, empty strings, the largest numbers. */
    struct http_json_request e = {.worker = 4294967295u};
    s = render(&e, UINT64_MAX, &len);
    assert_string_equal(s, "{\"method\":\"\",\"target\":\"\",\"path\":\"\",\"query\":\"\","
                           "\"version\":\"\",\"headers\":[],\"remote\":\"\",\"listener\":\"\","
                           "\"worker\":4294967295,\"body_bytes\":18446744073709551615}");
    assert_int_equal(len, HTTP_JSON_FIXED_MAX);
    free(s);
    assert_int_equal(http_json_finish_len(0), 2);
    assert_int_equal(http_json_finish_len(9), 2);
    assert_int_equal(http_json_finish_len(10), 3);
    assert_int_equal(http_json_finish_len(UINT64_MAX), HTTP_JSON_FINISH_MAX);
}

/* Every byte value in every string: valid, ASCII-only JSON, and the bytes come back. */
static void test_every_byte(void **state)
{
    (void)state;
    static char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    struct http_json_str a = {all, sizeof(all)};
    struct http_json_str hdrs[] = {a, a, S("plain"), {all + 128, 128}};
    struct http_json_headers hs = {hdrs, 2};
    struct http_json_request r = {.method = a, .target = a, .path = a, .query = a, .version = a,
                                  .next_header = http_json_header_array, .header_ctx = &hs,
                                  .remote = a, .listener = a, .worker = 7};
    size_t len;
    char *s = render(&r, 12345, &len);
    static struct parsed o;
    if (!parse_object(s, len, &o))
        fail_msg("not the promised JSON: %s", s);
    assert_int_equal(o.method_len, 256);
    assert_memory_equal(o.method, all, 256);
    assert_memory_equal(o.target, all, 256);
    assert_memory_equal(o.path, all, 256);
    assert_memory_equal(o.query, all, 256);
    assert_memory_equal(o.version, all, 256);
    assert_memory_equal(o.remote, all, 256);
    assert_memory_equal(o.listener, all, 256);
    assert_int_equal(o.nheaders, 2);
    assert_int_equal(o.name_len[0], 256);
    assert_memory_equal(o.names[0], all, 256);
    assert_memory_equal(o.values[0], all, 256);
    assert_int_equal(o.name_len[1], 5);
    assert_int_equal(o.value_len[1], 128);
    assert_memory_equal(o.values[1], all + 128, 128);
    assert_int_equal(o.worker, 7);
    assert_int_equal(o.body_bytes, 12345);
    /* The escapes themselves. */
    assert_non_null(strstr(s, "\\u0000\\u0001"));
    assert_non_null(strstr(s, "\\u001f !\\\"#"));
    assert_non_null(strstr(s, "[\\\\]"));
    assert_non_null(strstr(s, "~\\u007f\\u0080"));
    assert_non_null(strstr(s, "\\u00ff\""));
    free(s);
}

/* Every cap from 0 to the size: 0 until it fits, never a byte past cap. */
static void test_caps(void **state)
{
    (void)state;
    struct http_json_str hdrs[] = {S("Host"), S("h\x01\"")};
    struct http_json_headers hs = {hdrs, 1};
    struct http_json_request r = {.method = S("GET"), .target = S("/\xff"), .path = S("/\xff"),
                                  .version = S("HTTP/1.0"), .next_header = http_json_header_array,
                                  .header_ctx = &hs, .remote = S("[::1]:1"),
                                  .listener = S("unix:/x"), .worker = 12};
    size_t need = http_json_begin_size(&r);
    char *ref = malloc(need);
    assert_non_null(ref);
    assert_int_equal(http_json_begin(&r, ref, need), need);
    for (size_t cap = 0; cap <= need + 1; cap++) {
        unsigned char *buf = malloc(cap + GUARD);
        assert_non_null(buf);
        memset(buf, GUARD_BYTE, cap + GUARD);
        size_t got = http_json_begin(&r, (char *)buf, cap);
        for (size_t i = cap; i < cap + GUARD; i++)
            if (buf[i] != GUARD_BYTE)
                fail_msg("cap %zu: byte %zu written past the cap", cap, i);
        if (cap < need) {
            assert_int_equal(got, 0);
        } else {
            assert_int_equal(got, need);
            assert_memory_equal(buf, ref, need);
        }
        free(buf);
    }
    free(ref);
    char fin[HTTP_JSON_FINISH_MAX];
    for (size_t cap = 0; cap < 3; cap++)
        assert_int_equal(http_json_finish(42, fin, cap), 0);
    assert_int_equal(http_json_finish(42, fin, 3), 3);
    assert_memory_equal(fin, "42}", 3);
    assert_int_equal(http_json_finish(UINT64_MAX, fin, sizeof(fin)), HTTP_JSON_FINISH_MAX);
}

/* HTTP_JSON_MAX from the head's length holds for the worst heads: every byte
 * a 6-byte escape, the target twice, the most one-byte headers. */
static void check_bound(const char *method, const char *target, size_t qoff, size_t nhdr,
                        const char *name, const char *value)
{
    /* The head as a client sent it: "M T V\r\n" + "N:V\r\n"*n + "\r\n". */
    const char *version = "HTTP/1.1";
    size_t head_len = strlen(method) + 1 + strlen(target) + 1 + strlen(version) + 2 +
                      nhdr * (strlen(name) + 1 + strlen(value) + 2) + 2;
    struct http_json_str *pairs = calloc(2 * (nhdr ? nhdr : 1), sizeof(*pairs));
    assert_non_null(pairs);
    for (size_t i = 0; i < nhdr; i++) {
        pairs[2 * i] = S(name);
        pairs[2 * i + 1] = S(value);
    }
    struct http_json_headers hs = {pairs, nhdr};
    size_t tlen = strlen(target);
    struct http_json_request r = {
        .method = S(method), .target = S(target), .path = {target, qoff ? qoff - 1 : tlen},
        .query = {target + qoff, qoff ? tlen - qoff : 0}, .version = S(version),
        .next_header = http_json_header_array, .header_ctx = &hs,
        .remote = S("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
        .listener = S("http://[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
        .worker = 4294967295u,
    };
    size_t addr_len = r.remote.len + r.listener.len;
    size_t total = http_json_begin_size(&r) + HTTP_JSON_FINISH_MAX;
    if (total > HTTP_JSON_MAX(head_len, addr_len))
        fail_msg("head %zu bytes, %zu headers: needs %zu > HTTP_JSON_MAX %zu", head_len, nhdr,
                 total, HTTP_JSON_MAX(head_len, addr_len));
    free(pairs);
}

static void test_bound(void **state)
{
    (void)state;
    static char ctl[8193];
    memset(ctl, 0x01, sizeof(ctl) - 1);
    check_bound("GET", "/", 0, 0, "a", "");
    check_bound("\x01\x01\x01", ctl, 4000, 0, "a", "");
    check_bound("GET", "/", 0, 1000, "a", "");            /* the most headers per byte */
    check_bound("GET", "/", 0, 100, "\x01", ctl + 8000);
    check_bound("\x01", ctl, 1, 50, ctl + 8100, ctl + 8100);
}

/* A parser-style iterator: the cursor is a byte offset into the header
 * block, as an http_header_next(head, &pos, ...) would keep it. */
static bool next_line(void *ctx, size_t *cursor, struct http_json_str *name, struct http_json_str *value)
{
    const char *block = ctx;
    const char *line = block + *cursor;
    const char *eol = strstr(line, "\r\n");
    if (eol == NULL || eol == line)
        return false;
    const char *colon = memchr(line, ':', (size_t)(eol - line));
    assert_non_null(colon);
    const char *v = colon + 1;
    while (*v == ' ')
        v++;
    *name = (struct http_json_str){line, (size_t)(colon - line)};
    *value = (struct http_json_str){v, (size_t)(eol - v)};
    *cursor = (size_t)(eol + 2 - block);
    return true;
}

static void test_header_iterators(void **state)
{
    (void)state;
    char block[] = "Host: a\r\nX-B: 2\r\nhost: c\r\n\r\n";
    struct http_json_request r = {.method = S("GET"), .next_header = next_line,
                                  .header_ctx = block};
    size_t len;
    char *s = render(&r, 0, &len);
    assert_non_null(strstr(s, "\"headers\":[[\"Host\",\"a\"],[\"X-B\",\"2\"],[\"host\",\"c\"]],"));
    free(s);
    /* No iterator and an empty array are both no headers. */
    r.next_header = NULL;
    s = render(&r, 0, &len);
    assert_non_null(strstr(s, "\"headers\":[],"));
    free(s);
    struct http_json_headers none = {NULL, 0};
    r.next_header = http_json_header_array;
    r.header_ctx = &none;
    s = render(&r, 0, &len);
    assert_non_null(strstr(s, "\"headers\":[],"));
    free(s);
}

/* With the real parser: what a client sent, through common/http.c. */
static void test_from_parsed_request(void **state)
{
    (void)state;
    static const char wire[] = "\r\nPOST /p/q?format=json&x=%41 HTTP/1.0\r\n"
                               "Host: h\r\nX-Sp:   a b  \r\nx-sp: 2\r\n"
                               "Content-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n";
    struct http_parser p;
    struct http_request req;
    http_request_parser_init(&p, 16384);
    assert_int_equal(http_parse_request(&p, (const uint8_t *)wire, sizeof(wire) - 1, &req),
                     HTTP_DONE);
    struct http_json_request r = {.remote = S("[::1]:9"), .listener = S("http://[::1]:80"),
                                  .worker = 3};
    struct http_json_head head;
    http_json_from_request(&r, &head, (const uint8_t *)wire, &req);
    size_t len;
    char *s = render(&r, 3, &len);
    assert_string_equal(s, "{\"method\":\"POST\",\"target\":\"/p/q?format=json&x=%41\","
                           "\"path\":\"/p/q\",\"query\":\"format=json&x=%41\","
                           "\"version\":\"HTTP/1.0\",\"headers\":[[\"Host\",\"h\"],"
                           "[\"X-Sp\",\"a b\"],[\"x-sp\",\"2\"],[\"Content-Length\",\"3\"]],"
                           "\"remote\":\"[::1]:9\",\"listener\":\"http://[::1]:80\","
                           "\"worker\":3,\"body_bytes\":3}");
    free(s);
    /* The bound from the head's length holds for it too. */
    assert_true(len <= HTTP_JSON_MAX(req.head_len, r.remote.len + r.listener.len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typical),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_header_iterators),
        cmocka_unit_test(test_from_parsed_request),
    };
    return cmocka_run_group_tests_name("http_json", tests, NULL, NULL);
}
