/* http.c - the HTTP/1.1 message codec: head parsers, chunked decoder, encoder.
 *
 * Both head parsers are one byte-level state machine (the start lines differ,
 * the field lines are shared). It is strict on purpose: every leniency a
 * front end and a back end resolve differently is a request smuggling vector,
 * so anything the grammar of RFC 9112 does not allow is an error, reported at
 * the byte that makes it certain. The reasons and their RFC sections are in
 * docs/http-parser.md. Semantics needing a whole field value (Transfer-Encoding,
 * Connection, Expect lists) are read once, when the field's line ends, by
 * looking back at it in the caller's buffer; everything else is decided as the
 * bytes arrive, so each byte is looked at a bounded number of times.
 */
#include "common/http.h"

#include <string.h>

/* Character classes (RFC 9110 5.6.2 tchar, 5.5 field-vchar, RFC 5234 core). */
enum {
    C_TCHAR = 1 << 0,       /* token character */
    C_VCHAR = 1 << 1,       /* visible ASCII 0x21-0x7E */
    C_OBS = 1 << 2,         /* obs-text 0x80-0xFF */
    C_WS = 1 << 3,          /* SP, HTAB */
    C_DIGIT = 1 << 4,
    C_HEX = 1 << 5,
};
#define C_TV (C_TCHAR | C_VCHAR)
#define C_FIELD (C_VCHAR | C_OBS | C_WS)

/* Ranges do not overlap (each byte is set once). */
static const uint8_t cls[256] = {
    ['\t'] = C_WS, [' '] = C_WS,
    ['!'] = C_TV, ['"'] = C_VCHAR, ['#' ... '\''] = C_TV, ['(' ... ')'] = C_VCHAR,
    ['*' ... '+'] = C_TV, [','] = C_VCHAR, ['-' ... '.'] = C_TV, ['/'] = C_VCHAR,
    ['0' ... '9'] = C_TV | C_DIGIT | C_HEX, [':' ... '@'] = C_VCHAR,
    ['A' ... 'F'] = C_TV | C_HEX, ['G' ... 'Z'] = C_TV, ['[' ... ']'] = C_VCHAR,
    ['^' ... '`'] = C_TV, ['a' ... 'f'] = C_TV | C_HEX, ['g' ... 'z'] = C_TV,
    ['{'] = C_VCHAR, ['|'] = C_TV, ['}'] = C_VCHAR, ['~'] = C_TV,
    [0x80 ... 0xFF] = C_OBS,
};

static inline bool is(uint8_t c, unsigned mask) { return (cls[c] & mask) != 0; }
static inline uint8_t lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? (uint8_t)(c | 0x20) : c; }

static bool ieq(const uint8_t *a, size_t n, const char *lower_s)
{
    size_t m = strlen(lower_s);
    if (n != m)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != (uint8_t)lower_s[i])
            return false;
    return true;
}

bool http_span_equals(const uint8_t *buf, struct http_span s, const char *lower_s)
{
    return ieq(buf + s.off, s.len, lower_s);
}

/* ---- head parsers ---------------------------------------------------- */

enum head_state {
    RQ_START,               /* before the request line: empty lines skipped */
    RQ_START_LF,            /* a CR of a leading empty line */
    RQ_METHOD,
    RQ_TARGET_FIRST,
    RQ_TARGET,
    RQ_VERSION,             /* p->n: index into "HTTP/D.D" */
    RQ_CR,
    RS_VERSION,             /* p->n: index into "HTTP/D.D " */
    RS_STATUS,              /* p->n: status digits so far */
    RS_AFTER_STATUS,        /* SP before the reason, or CR */
    RS_REASON,
    LINE_LF,                /* CR ending the start line seen */
    H_LINE_START,
    H_NAME,
    H_VALUE,
    H_VALUE_LF,
    H_END_LF,
    H_DONE,
    H_ERROR,
};

/* Fields whose semantics we read; any other field is only validated. */
enum field_kind { F_OTHER, F_CONTENT_LENGTH, F_TRANSFER_ENCODING, F_HOST, F_CONNECTION, F_EXPECT };

/* Content-Length value: OWS 1*DIGIT OWS. */
enum { CL_BEFORE, CL_DIGITS, CL_AFTER };

/* Transfer-Encoding codings seen so far, over every such field line. */
enum {
    TE_SEEN = 1 << 0,
    TE_CHUNKED = 1 << 1,        /* chunked appeared */
    TE_LAST_CHUNKED = 1 << 2,   /* ... and is the last coding so far */
    TE_OTHER = 1 << 3,          /* a coding other than chunked appeared */
};

static enum http_result fail(struct http_parser *p, uint16_t status, const char *reason)
{
    p->state = H_ERROR;
    p->result = HTTP_ERROR;
    p->err_status = status;
    p->err_reason = reason;
    return HTTP_ERROR;
}

static void parser_init(struct http_parser *p, uint32_t max, bool response)
{
    memset(p, 0, sizeof(*p));
    p->max = max;
    p->response = response;
    p->state = response ? RS_VERSION : RQ_START;
    p->result = HTTP_NEED_MORE;
}

void http_request_parser_init(struct http_parser *p, uint32_t max_header_size)
{
    parser_init(p, max_header_size, false);
}

void http_response_parser_init(struct http_parser *p, uint32_t max_header_size)
{
    parser_init(p, max_header_size, true);
}

/* Where the message fields live while parsing. */
#define REQ(p) (&(p)->m.req)
#define RESP(p) (&(p)->m.resp)

static bool *has_cl(struct http_parser *p)
{
    return p->response ? &RESP(p)->has_content_length : &REQ(p)->has_content_length;
}

static uint64_t *cl_value(struct http_parser *p)
{
    return p->response ? &RESP(p)->content_length : &REQ(p)->content_length;
}

static uint8_t version_minor(const struct http_parser *p)
{
    return p->response ? p->m.resp.minor : p->m.req.minor;
}

static const struct {
    const char *name;
    uint8_t id;
} methods[] = {
    {"GET", HTTP_METHOD_GET}, {"HEAD", HTTP_METHOD_HEAD}, {"POST", HTTP_METHOD_POST},
    {"PUT", HTTP_METHOD_PUT}, {"DELETE", HTTP_METHOD_DELETE}, {"OPTIONS", HTTP_METHOD_OPTIONS},
    {"TRACE", HTTP_METHOD_TRACE}, {"CONNECT", HTTP_METHOD_CONNECT}, {"PATCH", HTTP_METHOD_PATCH},
};

static uint8_t method_id(const uint8_t *m, size_t n)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i].name) == n && memcmp(methods[i].name, m, n) == 0)
            return methods[i].id;
    return HTTP_METHOD_OTHER;
}

/* The target is complete at target[0..n): find its path and query. */
static void split_target(struct http_request *r, const uint8_t *buf)
{
    const uint8_t *t = buf + r->target.off;
    uint32_t n = r->target.len;
    const uint8_t *q = memchr(t, '?', n);
    uint32_t end = q ? (uint32_t)(q - t) : n;
    if (q) {
        r->has_query = true;
        r->query.off = r->target.off + end + 1;
        r->query.len = n - end - 1;
    } else {
        r->query.off = r->target.off + n;
    }
    uint32_t start = 0;
    if (t[0] != '/' && t[0] != '*') {
        /* absolute-form "scheme://authority/path" or authority-form: the
         * path starts at the first '/' after "://" (none: empty). */
        start = end;
        for (uint32_t i = 0; i + 2 < end; i++) {
            if (t[i] == ':' && t[i + 1] == '/' && t[i + 2] == '/') {
                const uint8_t *s = memchr(t + i + 3, '/', end - i - 3);
                start = s ? (uint32_t)(s - t) : end;
                break;
            }
        }
    }
    r->path.off = r->target.off + start;
    r->path.len = end - start;
}

/* The field name ends at p->colon: classify it and reject the repetitions and
 * combinations that are errors whatever the value. */
static enum http_result field_name_done(struct http_parser *p, const uint8_t *buf)
{
    const uint8_t *name = buf + p->line;
    size_t n = p->colon - p->line;
    p->field = F_OTHER;
    if (ieq(name, n, "content-length")) {
        if (*has_cl(p))
            return fail(p, 400, "400 repeated Content-Length");
        if (p->te_flags & TE_SEEN)
            return fail(p, 400, "400 Content-Length with Transfer-Encoding");
        *has_cl(p) = true;
        p->field = F_CONTENT_LENGTH;
        p->cl_state = CL_BEFORE;
    } else if (ieq(name, n, "transfer-encoding")) {
        if (*has_cl(p))
            return fail(p, 400, "400 Content-Length with Transfer-Encoding");
        if (version_minor(p) == 0)
            return fail(p, 400, "400 Transfer-Encoding in HTTP/1.0");
        p->te_flags |= TE_SEEN;
        p->field = F_TRANSFER_ENCODING;
    } else if (ieq(name, n, "connection")) {
        p->field = F_CONNECTION;
    } else if (!p->response && ieq(name, n, "host")) {
        if (++REQ(p)->host_count > 1)
            return fail(p, 400, "400 repeated Host");
        p->field = F_HOST;
    } else if (!p->response && ieq(name, n, "expect")) {
        p->field = F_EXPECT;
    }
    return HTTP_NEED_MORE;
}

/* One element of a comma-separated list at v[0..n), with OWS around the
 * commas; returns false when the list is exhausted. Empty elements come out
 * with len 0. */
struct list_iter {
    const uint8_t *v;
    size_t n, pos;
    bool done;
};

static bool list_next(struct list_iter *it, const uint8_t **e, size_t *len)
{
    if (it->done)
        return false;
    size_t i = it->pos;
    const uint8_t *comma = memchr(it->v + i, ',', it->n - i);
    size_t end = comma ? (size_t)(comma - it->v) : it->n;
    size_t a = i, b = end;
    while (a < b && is(it->v[a], C_WS))
        a++;
    while (b > a && is(it->v[b - 1], C_WS))
        b--;
    *e = it->v + a;
    *len = b - a;
    if (comma)
        it->pos = end + 1;
    else
        it->done = true;
    return true;
}

static enum http_result transfer_encoding_line(struct http_parser *p, const uint8_t *v, size_t n)
{
    struct list_iter it = {.v = v, .n = n};
    const uint8_t *e;
    size_t len;
    while (list_next(&it, &e, &len)) {
        if (len == 0)
            return fail(p, 400, "400 bad Transfer-Encoding");
        /* transfer-coding = token *( OWS ";" OWS transfer-parameter ) */
        size_t t = 0;
        while (t < len && is(e[t], C_TCHAR))
            t++;
        if (t == 0)
            return fail(p, 400, "400 bad Transfer-Encoding");
        if (t < len) {
            size_t k = t;
            while (k < len && is(e[k], C_WS))
                k++;
            if (k == len || e[k] != ';')
                return fail(p, 400, "400 bad Transfer-Encoding");
        }
        if (p->te_flags & TE_CHUNKED)
            /* chunked again (twice) or followed by another coding: either
             * way the body is not "chunked, last". */
            return fail(p, 400, ieq(e, t, "chunked") ? "400 chunked applied twice"
                                                     : "400 Transfer-Encoding not ending in chunked");
        if (ieq(e, t, "chunked")) {
            if (t < len)
                return fail(p, 400, "400 bad Transfer-Encoding");  /* chunked has no parameters */
            p->te_flags |= TE_CHUNKED | TE_LAST_CHUNKED;
        } else {
            p->te_flags |= TE_OTHER;
        }
    }
    return HTTP_NEED_MORE;
}

static void connection_line(struct http_parser *p, const uint8_t *v, size_t n)
{
    struct list_iter it = {.v = v, .n = n};
    const uint8_t *e;
    size_t len;
    bool *close = p->response ? &RESP(p)->conn_close : &REQ(p)->conn_close;
    bool *keep = p->response ? &RESP(p)->conn_keep_alive : &REQ(p)->conn_keep_alive;
    while (list_next(&it, &e, &len)) {
        if (ieq(e, len, "close"))
            *close = true;
        else if (ieq(e, len, "keep-alive"))
            *keep = true;
    }
}

static void expect_line(struct http_parser *p, const uint8_t *v, size_t n)
{
    struct http_request *r = REQ(p);
    if (n == 0)
        return;
    if (ieq(v, n, "100-continue")) {
        /* RFC 9110 10.1.1: ignored in an HTTP/1.0 request */
        if (r->expect == HTTP_EXPECT_NONE && r->minor == 1)
            r->expect = HTTP_EXPECT_CONTINUE;
    } else {
        r->expect = HTTP_EXPECT_OTHER;
    }
}

/* Host = uri-host [ ":" port ] (RFC 9112 3.2, RFC 3986 3.2.2): reg-name,
 * IP literal or IPv4 characters, and the port's colon; empty is allowed. No
 * '/', '?', '#', '@', whitespace or obs-text, which would let the authority
 * seen here differ from the one a proxy routed on. */
static bool host_valid(const uint8_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = v[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        if (!memchr("-._~%!$&'()*+,;=:[]", c, 19))
            return false;
    }
    return true;
}

/* A field line ends: its CR is at p->pos - 1 (the LF at p->pos not yet counted). */
static enum http_result field_line_done(struct http_parser *p, const uint8_t *buf)
{
    size_t a = p->colon + 1, b = p->pos - 1;
    while (a < b && is(buf[a], C_WS))
        a++;
    while (b > a && is(buf[b - 1], C_WS))
        b--;
    switch (p->field) {
    case F_CONTENT_LENGTH:
        if (p->cl_state == CL_BEFORE)
            return fail(p, 400, "400 bad Content-Length");
        break;
    case F_TRANSFER_ENCODING:
        return transfer_encoding_line(p, buf + a, b - a);
    case F_CONNECTION:
        connection_line(p, buf + a, b - a);
        break;
    case F_EXPECT:
        expect_line(p, buf + a, b - a);
        break;
    case F_HOST:
        if (!host_valid(buf + a, b - a))
            return fail(p, 400, "400 bad Host");
        break;
    default:
        break;
    }
    return HTTP_NEED_MORE;
}

/* The empty line ending the head has been consumed (p->pos past its LF). */
static enum http_result head_done(struct http_parser *p)
{
    if (p->te_flags & TE_SEEN) {
        if (!(p->te_flags & TE_LAST_CHUNKED))
            return fail(p, 400, "400 Transfer-Encoding not ending in chunked");
        if (p->te_flags & TE_OTHER)
            return fail(p, 501, "501 transfer coding not implemented");
    }
    if (p->response) {
        RESP(p)->chunked = (p->te_flags & TE_SEEN) != 0;
        RESP(p)->head_len = p->pos;
    } else {
        struct http_request *r = REQ(p);
        if (r->minor == 1 && r->host_count == 0)
            return fail(p, 400, "400 missing Host");
        r->chunked = (p->te_flags & TE_SEEN) != 0;
        r->head_len = p->pos;
    }
    p->state = H_DONE;
    p->result = HTTP_DONE;
    return HTTP_DONE;
}

/* One Content-Length value byte (any field byte already known valid). */
static enum http_result content_length_byte(struct http_parser *p, uint8_t c)
{
    if (is(c, C_DIGIT)) {
        if (p->cl_state == CL_AFTER)
            return fail(p, 400, "400 bad Content-Length");
        uint64_t *v = cl_value(p);
        unsigned d = (unsigned)(c - '0');
        if (*v > (UINT64_MAX - d) / 10)
            return fail(p, 400, "400 Content-Length overflow");
        *v = *v * 10 + d;
        p->cl_state = CL_DIGITS;
    } else if (is(c, C_WS)) {
        if (p->cl_state == CL_DIGITS)
            p->cl_state = CL_AFTER;
    } else {
        return fail(p, 400, "400 bad Content-Length");
    }
    return HTTP_NEED_MORE;
}

static const char version_prefix[] = "HTTP/";

/* One byte of "HTTP/D.D" at index p->n; HTTP_DONE when the version is complete. */
static enum http_result version_byte(struct http_parser *p, uint8_t c, uint8_t *minor)
{
    uint32_t i = p->n++;
    if (i < 5) {
        if (c != (uint8_t)version_prefix[i])
            return fail(p, 400, "400 bad HTTP version");
    } else if (i == 5 || i == 7) {
        if (!is(c, C_DIGIT))
            return fail(p, 400, "400 bad HTTP version");
        if ((i == 5 && c != '1') || (i == 7 && c != '0' && c != '1'))
            return fail(p, 505, "505 HTTP version not supported");
        if (i == 7) {
            *minor = (uint8_t)(c - '0');
            return HTTP_DONE;
        }
    } else if (c != '.') {
        return fail(p, 400, "400 bad HTTP version");
    }
    return HTTP_NEED_MORE;
}

static bool in_start_line(const struct http_parser *p)
{
    return p->state < H_LINE_START;
}

/* Scan buf[p->pos .. end); returns DONE or ERROR, or NEED_MORE at end. */
static enum http_result scan(struct http_parser *p, const uint8_t *buf, uint32_t end)
{
    enum http_result r;
    while (p->pos < end) {
        uint8_t c = buf[p->pos];
        switch (p->state) {
        case RQ_START:
            if (c == '\r') {
                p->state = RQ_START_LF;
                break;
            }
            if (c == '\n')
                return fail(p, 400, "400 bare LF");
            if (!is(c, C_TCHAR))
                return fail(p, 400, "400 bad method");
            REQ(p)->skip = p->pos;
            REQ(p)->method.off = p->pos;
            p->state = RQ_METHOD;
            continue;           /* the same byte, as the method's first */
        case RQ_START_LF:
            if (c != '\n')
                return fail(p, 400, "400 bare CR");
            p->state = RQ_START;
            break;
        case RQ_METHOD: {
            /* tight loop over the token bytes */
            uint32_t i = p->pos;
            while (i < end && is(buf[i], C_TCHAR))
                i++;
            p->n += i - p->pos;
            p->pos = i;
            if (p->n > HTTP_METHOD_MAX)
                return fail(p, 501, "501 method too long");
            if (i == end)
                continue;
            if (buf[i] != ' ')
                return fail(p, 400, buf[i] == '\n' ? "400 bare LF" : "400 bad method");
            struct http_request *rq = REQ(p);
            rq->method.len = p->n;
            rq->method_id = method_id(buf + rq->method.off, p->n);
            p->state = RQ_TARGET_FIRST;
            break;
        }
        case RQ_TARGET_FIRST:
            if (!is(c, C_VCHAR))
                return fail(p, 400, c == '\n' ? "400 bare LF" : "400 bad request target");
            REQ(p)->target.off = p->pos;
            p->state = RQ_TARGET;
            break;
        case RQ_TARGET: {
            uint32_t i = p->pos;
            while (i < end && is(buf[i], C_VCHAR))
                i++;
            p->pos = i;
            if (i == end)
                continue;
            if (buf[i] != ' ')
                return fail(p, 400, buf[i] == '\n' ? "400 bare LF" : "400 bad request target");
            struct http_request *rq = REQ(p);
            rq->target.len = i - rq->target.off;
            split_target(rq, buf);
            p->n = 0;
            p->state = RQ_VERSION;
            break;
        }
        case RQ_VERSION:
            r = version_byte(p, c, &REQ(p)->minor);
            if (r == HTTP_ERROR)
                return r;
            if (r == HTTP_DONE)
                p->state = RQ_CR;
            break;
        case RQ_CR:
            if (c != '\r')
                return fail(p, 400, c == '\n' ? "400 bare LF" : "400 bad HTTP version");
            p->state = LINE_LF;
            break;
        case RS_VERSION:
            if (p->n == 8) {
                if (c != ' ')
                    return fail(p, 400, "400 bad status line");
                p->n = 0;
                p->state = RS_STATUS;
                break;
            }
            r = version_byte(p, c, &RESP(p)->minor);
            if (r == HTTP_ERROR)
                return r;
            break;
        case RS_STATUS:
            if (!is(c, C_DIGIT) || (p->n == 0 && c == '0'))
                return fail(p, 400, "400 bad status line");
            RESP(p)->status = (uint16_t)(RESP(p)->status * 10 + (c - '0'));
            if (++p->n == 3)
                p->state = RS_AFTER_STATUS;
            break;
        case RS_AFTER_STATUS:
            /* RFC 9112 4 requires the SP; a client accepts its absence. */
            if (c == '\r') {
                RESP(p)->reason.off = p->pos;
                p->state = LINE_LF;
            } else if (c == ' ') {
                RESP(p)->reason.off = p->pos + 1;
                p->state = RS_REASON;
            } else {
                return fail(p, 400, c == '\n' ? "400 bare LF" : "400 bad status line");
            }
            break;
        case RS_REASON: {
            uint32_t i = p->pos;
            while (i < end && is(buf[i], C_FIELD))
                i++;
            p->pos = i;
            if (i == end)
                continue;
            if (buf[i] != '\r')
                return fail(p, 400, buf[i] == '\n' ? "400 bare LF" : "400 bad status line");
            RESP(p)->reason.len = i - RESP(p)->reason.off;
            p->state = LINE_LF;
            break;
        }
        case LINE_LF:
            if (c != '\n')
                return fail(p, 400, "400 bare CR");
            p->state = H_LINE_START;
            break;
        case H_LINE_START:
            if (c == '\r') {
                p->state = H_END_LF;
                break;
            }
            if (c == '\n')
                return fail(p, 400, "400 bare LF");
            if (is(c, C_WS))
                return fail(p, 400, "400 obs-fold");
            if (!is(c, C_TCHAR))
                return fail(p, 400, "400 bad header name");
            p->line = p->pos;
            p->state = H_NAME;
            break;
        case H_NAME: {
            uint32_t i = p->pos;
            while (i < end && is(buf[i], C_TCHAR))
                i++;
            p->pos = i;
            if (i == end)
                continue;
            c = buf[i];
            if (c == ':') {
                p->colon = i;
                if (field_name_done(p, buf) == HTTP_ERROR)
                    return HTTP_ERROR;
                p->state = H_VALUE;
            } else if (is(c, C_WS)) {
                return fail(p, 400, "400 whitespace before colon");
            } else if (c == '\r' || c == '\n') {
                return fail(p, 400, "400 header without colon");
            } else {
                return fail(p, 400, "400 bad header name");
            }
            break;
        }
        case H_VALUE:
            if (p->field != F_CONTENT_LENGTH) {
                uint32_t i = p->pos;
                while (i < end && is(buf[i], C_FIELD))
                    i++;
                p->pos = i;
                if (i == end)
                    continue;
                c = buf[i];
            } else if (is(c, C_FIELD)) {
                if (content_length_byte(p, c) == HTTP_ERROR)
                    return HTTP_ERROR;
                break;
            }
            if (c == '\r')
                p->state = H_VALUE_LF;
            else
                return fail(p, 400, c == '\n' ? "400 bare LF" : "400 control character in header value");
            break;
        case H_VALUE_LF:
            if (c != '\n')
                return fail(p, 400, "400 bare CR");
            if (field_line_done(p, buf) == HTTP_ERROR)
                return HTTP_ERROR;
            p->state = H_LINE_START;
            break;
        case H_END_LF:
            if (c != '\n')
                return fail(p, 400, "400 bare CR");
            p->pos++;
            return head_done(p);
        default:
            return (enum http_result)p->result;
        }
        p->pos++;
    }
    return HTTP_NEED_MORE;
}

static enum http_result parse(struct http_parser *p, const uint8_t *buf, size_t len)
{
    if (p->result != HTTP_NEED_MORE)
        return (enum http_result)p->result;
    uint32_t end = len < p->max ? (uint32_t)len : p->max;
    enum http_result r = scan(p, buf, end);
    if (r != HTTP_NEED_MORE)
        return r;
    if (p->pos >= p->max) {
        /* max bytes in and the head not over: it cannot fit any more. */
        if (in_start_line(p))
            return fail(p, p->response ? 431 : 414,
                        p->response ? "431 status line too long" : "414 request line too long");
        return fail(p, 431, "431 header section too large");
    }
    return HTTP_NEED_MORE;
}

enum http_result http_parse_request(struct http_parser *p, const uint8_t *buf, size_t len,
                                    struct http_request *req)
{
    enum http_result r = parse(p, buf, len);
    if (r == HTTP_DONE)
        *req = p->m.req;
    return r;
}

enum http_result http_parse_response(struct http_parser *p, const uint8_t *buf, size_t len,
                                     struct http_response *resp)
{
    enum http_result r = parse(p, buf, len);
    if (r == HTTP_DONE)
        *resp = p->m.resp;
    return r;
}

bool http_header_next(const uint8_t *head, size_t len, struct http_header_iter *it,
                      struct http_span *name, struct http_span *value)
{
    size_t pos = it->pos;
    if (pos == 0) {
        /* skip the empty lines before the start line, then the start line */
        while (pos + 1 < len && head[pos] == '\r' && head[pos + 1] == '\n')
            pos += 2;
        const uint8_t *lf = memchr(head + pos, '\n', len - pos);
        if (!lf)
            return false;
        pos = (size_t)(lf - head) + 1;
        it->pos = (uint32_t)pos;
    }
    if (pos >= len || head[pos] == '\r')
        return false;
    const uint8_t *colon = memchr(head + pos, ':', len - pos);
    const uint8_t *lf = memchr(head + pos, '\n', len - pos);
    if (!colon || !lf || colon > lf)
        return false;
    size_t a = (size_t)(colon - head) + 1, b = (size_t)(lf - head) - 1;  /* b: the CR */
    while (a < b && is(head[a], C_WS))
        a++;
    while (b > a && is(head[b - 1], C_WS))
        b--;
    name->off = (uint32_t)pos;
    name->len = (uint32_t)(colon - head - pos);
    value->off = (uint32_t)a;
    value->len = (uint32_t)(b - a);
    it->pos = (uint32_t)(lf - head) + 1;
    return true;
}

/* ---- chunked bodies --------------------------------------------------- */

enum chunk_state {
    CH_SIZE_FIRST,          /* first hex digit of a chunk size */
    CH_SIZE,
    CH_SIZE_WS,             /* BWS after the size: only ';' may follow */
    CH_EXT_PRE_NAME,        /* after ';' */
    CH_EXT_NAME,
    CH_EXT_POST_NAME,       /* BWS after a name: '=' or ';' */
    CH_EXT_PRE_VALUE,       /* after '=' */
    CH_EXT_TOKEN,
    CH_EXT_QUOTED,
    CH_EXT_QUOTED_ESC,
    CH_EXT_AFTER_VALUE,     /* after a quoted value: ';', BWS or CR */
    CH_EXT_POST_VALUE,      /* BWS after a value: only ';' may follow */
    CH_LINE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TR_LINE_START,
    CH_TR_NAME,
    CH_TR_VALUE,
    CH_TR_LF,
    CH_END_LF,
    CH_DONE,
    CH_ERROR,
};

void http_chunked_init(struct http_chunked *d, uint32_t max_trailer_size)
{
    memset(d, 0, sizeof(*d));
    d->max_trailer = max_trailer_size;
    d->state = CH_SIZE_FIRST;
}

bool http_chunked_in_body(const struct http_chunked *d)
{
    if (d->state == CH_DONE || d->state == CH_ERROR)
        return false;
    return !(d->state == CH_SIZE_FIRST && d->line == 0 && d->announced == 0);
}

void http_chunked_unread(struct http_chunked *d, size_t n)
{
    if (n == 0)
        return;
    d->remaining += n;
    d->total -= n;
    d->state = CH_DATA;
}

static size_t chunk_fail(struct http_chunked *d, struct http_chunk_event *ev, size_t used,
                         uint16_t status, const char *reason)
{
    d->state = CH_ERROR;
    d->err_status = status;
    d->err_reason = reason;
    ev->kind = HTTP_CHUNK_ERROR;
    ev->status = status;
    ev->reason = reason;
    return used;
}

/* The chunk line ended (its LF consumed): a data chunk, or the last chunk. */
static bool chunk_line_done(struct http_chunked *d)
{
    if (d->size > UINT64_MAX - d->announced)
        return false;
    d->announced += d->size;
    d->remaining = d->size;
    d->state = d->size ? CH_DATA : CH_TR_LINE_START;
    return true;
}

size_t http_chunked_decode(struct http_chunked *d, const uint8_t *buf, size_t size,
                           struct http_chunk_event *ev)
{
    ev->kind = HTTP_CHUNK_NONE;
    ev->data = NULL;
    ev->size = 0;
    ev->status = 0;
    ev->reason = NULL;
    size_t i = 0;
    if (d->state == CH_ERROR)
        return chunk_fail(d, ev, 0, d->err_status, d->err_reason);
    if (d->state == CH_DONE) {
        ev->kind = HTTP_CHUNK_END;
        return 0;
    }
    for (; i < size; i++) {
        uint8_t c = buf[i];
        if (d->state <= CH_LINE_LF && ++d->line > HTTP_CHUNK_LINE_MAX)
            return chunk_fail(d, ev, i, 400, "400 chunk line too long");
        if (d->state >= CH_TR_LINE_START && d->state <= CH_END_LF &&
            ++d->trailer > d->max_trailer)
            return chunk_fail(d, ev, i, 431, "431 trailer section too large");
        switch (d->state) {
        case CH_SIZE_FIRST:
            if (!is(c, C_HEX))
                return chunk_fail(d, ev, i, 400, c == '\n' ? "400 bare LF in chunk line"
                                                            : "400 bad chunk size");
            d->size = 0;
            d->state = CH_SIZE;
            __attribute__((fallthrough));
        case CH_SIZE:
            if (is(c, C_HEX)) {
                if (d->size > UINT64_MAX >> 4)
                    return chunk_fail(d, ev, i, 400, "400 chunk size overflow");
                unsigned v = is(c, C_DIGIT) ? (unsigned)(c - '0') : (unsigned)(lower(c) - 'a' + 10);
                d->size = d->size << 4 | v;
            } else if (c == ';') {
                d->state = CH_EXT_PRE_NAME;
            } else if (is(c, C_WS)) {
                d->state = CH_SIZE_WS;
            } else if (c == '\r') {
                d->state = CH_LINE_LF;
            } else {
                return chunk_fail(d, ev, i, 400, c == '\n' ? "400 bare LF in chunk line"
                                                            : "400 bad chunk size");
            }
            break;
        case CH_SIZE_WS:
        case CH_EXT_POST_VALUE:
            if (c == ';')
                d->state = CH_EXT_PRE_NAME;
            else if (!is(c, C_WS))
                return chunk_fail(d, ev, i, 400, "400 bad chunk extension");
            break;
        case CH_EXT_PRE_NAME:
            if (is(c, C_TCHAR))
                d->state = CH_EXT_NAME;
            else if (!is(c, C_WS))
                return chunk_fail(d, ev, i, 400, "400 bad chunk extension");
            break;
        case CH_EXT_NAME:
            if (c == '\r')
                d->state = CH_LINE_LF;
            else if (c == ';')
                d->state = CH_EXT_PRE_NAME;
            else if (c == '=')
                d->state = CH_EXT_PRE_VALUE;
            else if (is(c, C_WS))
                d->state = CH_EXT_POST_NAME;
            else if (!is(c, C_TCHAR))
                return chunk_fail(d, ev, i, 400, c == '\n' ? "400 bare LF in chunk line"
                                                            : "400 bad chunk extension");
            break;
        case CH_EXT_POST_NAME:
            if (c == ';')
                d->state = CH_EXT_PRE_NAME;
            else if (c == '=')
                d->state = CH_EXT_PRE_VALUE;
            else if (!is(c, C_WS))
                return chunk_fail(d, ev, i, 400, "400 bad chunk extension");
            break;
        case CH_EXT_PRE_VALUE:
            if (c == '"')
                d->state = CH_EXT_QUOTED;
            else if (is(c, C_TCHAR))
                d->state = CH_EXT_TOKEN;
            else if (!is(c, C_WS))
                return chunk_fail(d, ev, i, 400, "400 bad chunk extension");
            break;
        case CH_EXT_TOKEN:
            if (c == '\r')
                d->state = CH_LINE_LF;
            else if (c == ';')
                d->state = CH_EXT_PRE_NAME;
            else if (is(c, C_WS))
                d->state = CH_EXT_POST_VALUE;
            else if (!is(c, C_TCHAR))
                return chunk_fail(d, ev, i, 400, c == '\n' ? "400 bare LF in chunk line"
                                                            : "400 bad chunk extension");
            break;
        case CH_EXT_QUOTED:
            /* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
            if (c == '"')
                d->state = CH_EXT_AFTER_VALUE;
            else if (c == '\\')
                d->state = CH_EXT_QUOTED_ESC;
            else if (!is(c, C_FIELD))
                return chunk_fail(d, ev, i, 400, "400 bad chunk extension");
            break;
        case CH_EXT_QUOTED_ESC:
            if (!is(c, C_FIELD))
                return chunk_fail(d, ev, i, 400, "400 bad chunk extension");
            d->state = CH_EXT_QUOTED;
            break;
        case CH_EXT_AFTER_VALUE:
            if (c == '\r')
                d->state = CH_LINE_LF;
            else if (c == ';')
                d->state = CH_EXT_PRE_NAME;
            else if (is(c, C_WS))
                d->state = CH_EXT_POST_VALUE;
            else
                return chunk_fail(d, ev, i, 400, c == '\n' ? "400 bare LF in chunk line"
                                                            : "400 bad chunk extension");
            break;
        case CH_LINE_LF:
            if (c != '\n')
                return chunk_fail(d, ev, i, 400, "400 bare CR in chunk line");
            if (!chunk_line_done(d))
                return chunk_fail(d, ev, i, 400, "400 chunked body too large");
            d->line = 0;
            break;              /* the data, if any, from the next byte */
        case CH_DATA: {
            size_t n = size - i < d->remaining ? size - i : (size_t)d->remaining;
            d->remaining -= n;
            d->total += n;
            if (d->remaining == 0)
                d->state = CH_DATA_CR;
            ev->kind = HTTP_CHUNK_DATA;
            ev->data = buf + i;
            ev->size = n;
            return i + n;
        }
        case CH_DATA_CR:
            if (c != '\r')
                return chunk_fail(d, ev, i, 400, "400 missing CRLF after chunk data");
            d->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                return chunk_fail(d, ev, i, 400, "400 missing CRLF after chunk data");
            d->state = CH_SIZE_FIRST;
            break;
        case CH_TR_LINE_START:
            if (c == '\r')
                d->state = CH_END_LF;
            else if (c == '\n')
                return chunk_fail(d, ev, i, 400, "400 bare LF in trailer");
            else if (is(c, C_WS))
                return chunk_fail(d, ev, i, 400, "400 obs-fold in trailer");
            else if (is(c, C_TCHAR))
                d->state = CH_TR_NAME;
            else
                return chunk_fail(d, ev, i, 400, "400 bad trailer field");
            break;
        case CH_TR_NAME:
            if (c == ':')
                d->state = CH_TR_VALUE;
            else if (!is(c, C_TCHAR))
                return chunk_fail(d, ev, i, 400, is(c, C_WS) ? "400 whitespace before colon in trailer"
                                                             : "400 bad trailer field");
            break;
        case CH_TR_VALUE:
            if (c == '\r')
                d->state = CH_TR_LF;
            else if (!is(c, C_FIELD))
                return chunk_fail(d, ev, i, 400, c == '\n' ? "400 bare LF in trailer"
                                                            : "400 bad trailer field");
            break;
        case CH_TR_LF:
            if (c != '\n')
                return chunk_fail(d, ev, i, 400, "400 bare CR in trailer");
            d->state = CH_TR_LINE_START;
            break;
        case CH_END_LF:
            if (c != '\n')
                return chunk_fail(d, ev, i, 400, "400 bare CR in trailer");
            d->state = CH_DONE;
            ev->kind = HTTP_CHUNK_END;
            return i + 1;
        default:
            return 0;           /* CH_DONE, CH_ERROR: handled above */
        }
    }
    return i;
}

size_t http_chunk_header(uint8_t out[HTTP_CHUNK_HEADER_MAX], uint64_t n)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t tmp[16];
    size_t k = 0;
    do {
        tmp[k++] = (uint8_t)hex[n & 0xF];
        n >>= 4;
    } while (n);
    size_t len = 0;
    while (k)
        out[len++] = tmp[--k];
    out[len++] = '\r';
    out[len++] = '\n';
    return len;
}
