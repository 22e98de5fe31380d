/* fuzz_http.c - libFuzzer target for the HTTP codec (common/http.c).
 *
 * Input layout:  [mode] [split hi] [split lo] [bytes...]
 *   mode   bit 0: parse a response head instead of a request head;
 *          bit 1: treat the bytes as a chunked body only (no head);
 *          bits 2-7: the head limit, small (16 + 8*k bytes) so that 414 and
 *          431 are reached, 63 standing for the default 16384;
 *   split  where the bytes are cut in two (modulo their length + 1).
 * A request head is parsed whole, in the two pieces, and one byte at a time;
 * the three must agree on everything (result, status, reason, every field).
 * A DONE head is checked: it ends with CRLFCRLF, has no bare CR or LF and no
 * obs-fold, never both Content-Length and chunked, its spans lie inside it,
 * the header iterator walks it to its end, and the head alone parses the
 * same. After a DONE chunked request head (and in chunked-only mode) the rest
 * is decoded as a chunked body whole and split, and the two must report the
 * same data, the same end and the same error at the same byte.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

#define MODE_RESPONSE 0x01
#define MODE_CHUNKED_ONLY 0x02
#define LIMIT_SHIFT 2
#define LIMIT_DEFAULT_SEL 63
#define LIMIT_STEP 8
#define LIMIT_BASE 16

struct outcome {
    enum http_result r;
    uint16_t status;
    const char *reason;
    size_t at;              /* bytes given when the result came (byte at a time) */
    struct http_request req;
    struct http_response resp;
};

static void outcome_error(struct outcome *o, const struct http_parser *p)
{
    if (o->r == HTTP_ERROR) {
        o->status = p->err_status;
        o->reason = p->err_reason;
        CHECK(o->reason != NULL && o->status >= 400 && o->status <= 505);
    }
}

static enum http_result parse(struct http_parser *p, bool response, const uint8_t *b, size_t n,
                              struct outcome *o)
{
    return response ? http_parse_response(p, b, n, &o->resp) : http_parse_request(p, b, n, &o->req);
}

static struct outcome run_whole(bool response, uint32_t max, const uint8_t *b, size_t n)
{
    struct outcome o = {0};
    struct http_parser p;
    (response ? http_response_parser_init : http_request_parser_init)(&p, max);
    o.r = parse(&p, response, b, n, &o);
    outcome_error(&o, &p);
    return o;
}

static struct outcome run_split(bool response, uint32_t max, const uint8_t *b, size_t n, size_t k)
{
    struct outcome o = {0};
    struct http_parser p;
    (response ? http_response_parser_init : http_request_parser_init)(&p, max);
    o.r = parse(&p, response, b, k, &o);
    if (o.r == HTTP_NEED_MORE)
        o.r = parse(&p, response, b, n, &o);
    outcome_error(&o, &p);
    return o;
}

static struct outcome run_bytes(bool response, uint32_t max, const uint8_t *b, size_t n)
{
    struct outcome o = {0};
    struct http_parser p;
    (response ? http_response_parser_init : http_request_parser_init)(&p, max);
    o.r = HTTP_NEED_MORE;
    for (size_t k = 0; k <= n && o.r == HTTP_NEED_MORE; k++) {
        o.r = parse(&p, response, b, k, &o);
        o.at = k;
    }
    outcome_error(&o, &p);
    return o;
}

static bool span_eq(struct http_span a, struct http_span b)
{
    return a.off == b.off && a.len == b.len;
}

static void check_same(const struct outcome *a, const struct outcome *b, bool response)
{
    CHECK(a->r == b->r);
    CHECK(a->status == b->status);
    CHECK(a->reason == b->reason || (a->reason && b->reason && !strcmp(a->reason, b->reason)));
    if (a->r != HTTP_DONE)
        return;
    if (response) {
        const struct http_response *x = &a->resp, *y = &b->resp;
        CHECK(x->status == y->status && x->minor == y->minor);
        CHECK(x->has_content_length == y->has_content_length && x->content_length == y->content_length);
        CHECK(x->chunked == y->chunked && x->conn_close == y->conn_close);
        CHECK(x->conn_keep_alive == y->conn_keep_alive && x->head_len == y->head_len);
        CHECK(span_eq(x->reason, y->reason));
        return;
    }
    const struct http_request *x = &a->req, *y = &b->req;
    CHECK(span_eq(x->method, y->method) && span_eq(x->target, y->target));
    CHECK(span_eq(x->path, y->path) && span_eq(x->query, y->query));
    CHECK(x->method_id == y->method_id && x->minor == y->minor && x->expect == y->expect);
    CHECK(x->has_query == y->has_query && x->has_content_length == y->has_content_length);
    CHECK(x->content_length == y->content_length && x->chunked == y->chunked);
    CHECK(x->conn_close == y->conn_close && x->conn_keep_alive == y->conn_keep_alive);
    CHECK(x->host_count == y->host_count && x->skip == y->skip && x->head_len == y->head_len);
}

static bool is_tchar(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void check_span(struct http_span s, size_t head_len)
{
    CHECK((size_t)s.off + s.len <= head_len);
}

/* Properties of an accepted head that matter for smuggling, checked here
 * independently of the parser's own logic. */
static void check_head(const uint8_t *b, size_t len, bool response, const struct outcome *o)
{
    CHECK(len >= 4 && memcmp(b + len - 4, "\r\n\r\n", 4) == 0);
    for (size_t i = 0; i < len; i++) {
        if (b[i] == '\r')
            CHECK(i + 1 < len && b[i + 1] == '\n');
        if (b[i] == '\n')
            CHECK(i > 0 && b[i - 1] == '\r');
        if (b[i] == '\n' && i + 1 < len)
            CHECK(b[i + 1] != ' ' && b[i + 1] != '\t');
        CHECK(b[i] == '\t' || b[i] >= 0x20 || b[i] == '\r' || b[i] == '\n');
        CHECK(b[i] != 0x7f);
    }
    bool has_cl = response ? o->resp.has_content_length : o->req.has_content_length;
    bool chunked = response ? o->resp.chunked : o->req.chunked;
    CHECK(!(has_cl && chunked));
    if (!response) {
        const struct http_request *r = &o->req;
        check_span(r->method, len);
        check_span(r->target, len);
        check_span(r->path, len);
        check_span(r->query, len);
        CHECK(r->method.len >= 1 && r->method.len <= HTTP_METHOD_MAX);
        for (uint32_t i = 0; i < r->method.len; i++)
            CHECK(is_tchar(b[r->method.off + i]));
        CHECK(r->target.len >= 1);
        CHECK(r->minor <= 1);
        CHECK(r->host_count <= 1 && (r->minor == 0 || r->host_count == 1));
        CHECK(!(chunked && r->minor == 0));
        for (uint32_t i = 0; i < r->skip; i += 2)
            CHECK(b[i] == '\r' && b[i + 1] == '\n');
    } else {
        check_span(o->resp.reason, len);
        CHECK(o->resp.status >= 100 && o->resp.status <= 999);
    }

    /* the iterator walks every field line up to the empty line */
    struct http_header_iter it = {0};
    struct http_span name, value;
    size_t fields = 0, lines = 0;
    for (size_t i = 0; i + 1 < len; i++)
        lines += b[i] == '\r';
    while (http_header_next(b, len, &it, &name, &value)) {
        fields++;
        check_span(name, len);
        check_span(value, len);
        CHECK(name.len >= 1 && b[name.off + name.len] == ':');
        for (uint32_t i = 0; i < name.len; i++)
            CHECK(is_tchar(b[name.off + i]));
        for (uint32_t i = 0; i < value.len; i++)
            CHECK(b[value.off + i] != '\r' && b[value.off + i] != '\n');
        if (value.len)
            CHECK(b[value.off] != ' ' && b[value.off] != '\t');
        CHECK(fields <= len);
    }
    CHECK(it.pos == len - 2);
    /* lines: skipped empty lines + start line + fields + the final empty line */
    size_t skip = response ? 0 : o->req.skip / 2;
    CHECK(lines == skip + 1 + fields + 1);
}

struct body {
    uint64_t digest;
    size_t data;
    enum http_chunk_event_kind last;
    uint16_t status;
    const char *reason;
    size_t consumed;
};

static void mix(uint64_t *h, uint64_t v)
{
    *h ^= v;
    *h *= UINT64_C(0x100000001b3);
}

/* Feed b[0..n) as the pieces [0..k) and [k..n). */
static struct body run_chunked(const uint8_t *b, size_t n, size_t k, uint32_t max_trailer)
{
    struct body out = {.digest = UINT64_C(0xcbf29ce484222325)};
    struct http_chunked d;
    http_chunked_init(&d, max_trailer);
    size_t off = 0;
    CHECK(!http_chunked_in_body(&d));
    for (int piece = 0; piece < 2 && out.last == HTTP_CHUNK_NONE; piece++) {
        size_t end = piece == 0 ? k : n;
        for (;;) {
            struct http_chunk_event ev;
            size_t used = http_chunked_decode(&d, b + off, end - off, &ev);
            CHECK(used <= end - off);
            if (ev.kind == HTTP_CHUNK_DATA) {
                CHECK(ev.size > 0 && ev.data + ev.size == b + off + used);
                for (size_t i = 0; i < ev.size; i++)
                    mix(&out.digest, ev.data[i]);
                out.data += ev.size;
                CHECK(http_chunked_total(&d) == out.data);
                CHECK(http_chunked_announced(&d) >= out.data);
            }
            off += used;
            if (ev.kind == HTTP_CHUNK_NONE) {
                CHECK(off == end);
                break;
            }
            if (ev.kind == HTTP_CHUNK_END || ev.kind == HTTP_CHUNK_ERROR) {
                out.last = ev.kind;
                out.status = ev.status;
                out.reason = ev.reason;
                CHECK(!http_chunked_in_body(&d));
                if (ev.kind == HTTP_CHUNK_END) {
                    CHECK(off >= 5 && memcmp(b + off - 2, "\r\n", 2) == 0);
                    CHECK(http_chunked_total(&d) == http_chunked_announced(&d));
                } else {
                    CHECK(ev.reason && (ev.status == 400 || ev.status == 431));
                }
                struct http_chunk_event again;
                CHECK(http_chunked_decode(&d, b + off, n - off, &again) == 0);
                CHECK(again.kind == ev.kind);
                break;
            }
        }
    }
    out.consumed = off;
    return out;
}

static void check_chunked(const uint8_t *b, size_t n, size_t k, uint32_t max_trailer)
{
    struct body w = run_chunked(b, n, n, max_trailer);
    struct body s = run_chunked(b, n, k, max_trailer);
    CHECK(w.digest == s.digest && w.data == s.data && w.last == s.last);
    CHECK(w.status == s.status && w.consumed == s.consumed);
    CHECK(w.reason == s.reason || (w.reason && s.reason && !strcmp(w.reason, s.reason)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t mode = data[0];
    unsigned sel = mode >> LIMIT_SHIFT;
    uint32_t max = sel == LIMIT_DEFAULT_SEL ? HTTP_MAX_HEADER_SIZE_DEFAULT
                                            : LIMIT_BASE + LIMIT_STEP * sel;
    const uint8_t *b = data + 3;
    size_t n = size - 3;
    size_t k = ((size_t)data[1] << 8 | data[2]) % (n + 1);

    if (mode & MODE_CHUNKED_ONLY) {
        check_chunked(b, n, k, max);
        return 0;
    }
    bool response = mode & MODE_RESPONSE;
    struct outcome w = run_whole(response, max, b, n);
    struct outcome s = run_split(response, max, b, n, k);
    struct outcome o = run_bytes(response, max, b, n);
    check_same(&w, &s, response);
    check_same(&w, &o, response);
    if (w.r == HTTP_ERROR)
        CHECK(o.at <= max);
    if (w.r != HTTP_DONE)
        return 0;

    size_t head_len = response ? w.resp.head_len : w.req.head_len;
    CHECK(head_len <= n && head_len <= max && o.at == head_len);
    check_head(b, head_len, response, &w);
    /* the head alone gives the same */
    struct outcome h = run_whole(response, max, b, head_len);
    check_same(&w, &h, response);

    bool chunked = response ? w.resp.chunked : w.req.chunked;
    if (chunked) {
        size_t rest = n - head_len;
        check_chunked(b + head_len, rest, k < head_len ? 0 : k - head_len, max);
    }
    return 0;
}
