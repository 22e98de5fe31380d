/* fuzz_http.c - libFuzzer target for the HTTP codec (common/http.c).
 *
 * Input: either a plain request stream (any first byte below 0x80, which is
 * what a request starts with: the default head limit, split in the middle),
 * or a control header and the bytes:
 *     [mode] [split hi] [split lo] [bytes...]
 *   mode   bit 7 set (marks the header);
 *          bit 0: parse response heads instead of request heads;
 *          bit 1: treat the bytes as a chunked body only (no head);
 *          bits 2-6: the head limit, small (16 + 16*k bytes) so that 414 and
 *          431 are reached, 31 standing for the default 16384;
 *   split  where the bytes are cut in two (modulo their length + 1).
 * The stream is read as consecutive messages (a pipeline): each head is
 * parsed whole, in two pieces, and one byte at a time, and the three must
 * agree on everything (result, status, reason, every field).
 * A DONE head is checked: it ends with CRLFCRLF, has no bare CR or LF and no
 * obs-fold, never both Content-Length and chunked, its spans lie inside it,
 * the header iterator walks it to its end, the framing fields recounted from
 * the iterator (Host, Content-Length and its decimal value, Transfer-Encoding)
 * agree with what the parser reported, and the head alone parses the same.
 * After a DONE chunked head (and in chunked-only mode) the rest is decoded as
 * a chunked body whole, split, and one byte at a time: all must report the
 * same data, the same end and the same error at the same byte, and an
 * accepted body decoded again by a naive whole-buffer decoder gives the same
 * data. A Content-Length body is skipped. The next message starts after the
 * body, up to MAX_MESSAGES.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

#define MODE_HEADER 0x80
#define MODE_RESPONSE 0x01
#define MODE_CHUNKED_ONLY 0x02
#define LIMIT_SHIFT 2
#define LIMIT_MASK 0x1F
#define LIMIT_DEFAULT_SEL 31
#define LIMIT_STEP 16
#define LIMIT_BASE 16
/* Messages of a pipeline checked per input: enough to reach the parser
 * being reused, few enough to keep runs fast. */
#define MAX_MESSAGES 8

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

static bool name_is(const uint8_t *b, struct http_span s, const char *lower)
{
    if (s.len != strlen(lower))
        return false;
    for (uint32_t i = 0; i < s.len; i++) {
        uint8_t c = b[s.off + i];
        if (c >= 'A' && c <= 'Z')
            c |= 0x20;
        if (c != (uint8_t)lower[i])
            return false;
    }
    return true;
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
    size_t fields = 0, lines = 0, hosts = 0, cls = 0, tes = 0;
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
        /* the framing fields, recounted independently of the parser */
        hosts += name_is(b, name, "host");
        tes += name_is(b, name, "transfer-encoding");
        if (name_is(b, name, "content-length")) {
            cls++;
            uint64_t v = 0;
            CHECK(value.len >= 1);
            for (uint32_t i = 0; i < value.len; i++) {
                uint8_t c = b[value.off + i];
                CHECK(c >= '0' && c <= '9');
                CHECK(v <= (UINT64_MAX - (c - '0')) / 10);
                v = v * 10 + (c - '0');
            }
            CHECK(v == (response ? o->resp.content_length : o->req.content_length));
        }
    }
    CHECK(cls <= 1 && has_cl == (cls == 1));
    CHECK(chunked == (tes > 0));
    if (!response)
        CHECK(hosts == o->req.host_count);
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

/* A chunked body the decoder accepted (b[0..n), ending at its END), decoded
 * again the naive way, whole: each line up to CRLF, the size its leading hex
 * digits, the data that many bytes, then CRLF; after the zero size, lines up
 * to the empty one. Its data must be what the decoder reported. */
static uint64_t reference_chunked(const uint8_t *b, size_t n, size_t *data)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    size_t pos = 0;
    *data = 0;
    for (;;) {
        const uint8_t *lf = memchr(b + pos, '\n', n - pos);
        CHECK(lf && lf > b + pos && lf[-1] == '\r');
        uint64_t size = 0;
        size_t i = pos;
        for (; b[i] != ';' && b[i] != ' ' && b[i] != '\t' && b[i] != '\r'; i++) {
            uint8_t c = b[i];
            unsigned v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
            CHECK(v < 16);
            size = size << 4 | v;
        }
        CHECK(i > pos);
        pos = (size_t)(lf - b) + 1;
        if (size == 0)
            break;
        CHECK(n >= pos + 2 && size <= n - pos - 2);
        for (size_t k = 0; k < size; k++)
            mix(&h, b[pos + k]);
        *data += size;
        pos += size;
        CHECK(b[pos] == '\r' && b[pos + 1] == '\n');
        pos += 2;
    }
    for (;;) {
        const uint8_t *lf = memchr(b + pos, '\n', n - pos);
        CHECK(lf && lf > b + pos && lf[-1] == '\r');
        bool empty = lf == b + pos + 1;
        pos = (size_t)(lf - b) + 1;
        if (empty)
            break;
    }
    CHECK(pos == n);
    return h;
}

/* Feed b[0..n) as the pieces [0..k) and [k..n), or (bytewise) one byte more
 * each time. */
static struct body run_chunked(const uint8_t *b, size_t n, size_t k, bool bytewise,
                               uint32_t max_trailer)
{
    struct body out = {.digest = UINT64_C(0xcbf29ce484222325)};
    struct http_chunked d;
    http_chunked_init(&d, max_trailer);
    size_t off = 0;
    CHECK(!http_chunked_in_body(&d));
    size_t pieces = bytewise ? n + 1 : 2;
    for (size_t piece = 0; piece < pieces && out.last == HTTP_CHUNK_NONE; piece++) {
        size_t end = bytewise ? piece : piece == 0 ? k : n;
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

static void body_same(const struct body *w, const struct body *s)
{
    CHECK(w->digest == s->digest && w->data == s->data && w->last == s->last);
    CHECK(w->status == s->status && w->consumed == s->consumed);
    CHECK(w->reason == s->reason || (w->reason && s->reason && !strcmp(w->reason, s->reason)));
}

/* Returns the bytes the body took when it ended (END), else 0. */
static size_t check_chunked(const uint8_t *b, size_t n, size_t k, uint32_t max_trailer)
{
    struct body w = run_chunked(b, n, n, false, max_trailer);
    struct body s = run_chunked(b, n, k, false, max_trailer);
    struct body o = run_chunked(b, n, 0, true, max_trailer);
    if (w.last == HTTP_CHUNK_END) {
        size_t data = 0;
        CHECK(reference_chunked(b, w.consumed, &data) == w.digest && data == w.data);
    }
    body_same(&w, &s);
    body_same(&w, &o);
    return w.last == HTTP_CHUNK_END ? w.consumed : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One message at b[0..n): returns how many bytes it took (head and body), or
 * 0 when the stream cannot go on (an error, an incomplete message). */
static size_t check_message(const uint8_t *b, size_t n, size_t k, bool response, uint32_t max)
{
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

    size_t rest = n - head_len;
    if (response ? w.resp.chunked : w.req.chunked) {
        size_t body = check_chunked(b + head_len, rest, k < head_len ? 0 : k - head_len, max);
        return body ? head_len + body : 0;
    }
    uint64_t cl = response ? w.resp.content_length : w.req.content_length;
    if (cl > rest)
        return 0;
    return head_len + (size_t)cl;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = 0;
    uint32_t max = HTTP_MAX_HEADER_SIZE_DEFAULT;
    const uint8_t *b = data;
    size_t n = size, k = size / 2;
    if (data[0] & MODE_HEADER) {
        if (size < 3)
            return 0;
        mode = data[0];
        unsigned sel = (mode >> LIMIT_SHIFT) & LIMIT_MASK;
        if (sel != LIMIT_DEFAULT_SEL)
            max = LIMIT_BASE + LIMIT_STEP * sel;
        b = data + 3;
        n = size - 3;
        k = ((size_t)data[1] << 8 | data[2]) % (n + 1);
    }
    if (mode & MODE_CHUNKED_ONLY) {
        check_chunked(b, n, k, max);
        return 0;
    }
    for (int i = 0; i < MAX_MESSAGES && n > 0; i++) {
        size_t used = check_message(b, n, k, mode & MODE_RESPONSE, max);
        if (used == 0)
            break;
        b += used;
        n -= used;
        k = k > used ? k - used : 0;
    }
    return 0;
}
