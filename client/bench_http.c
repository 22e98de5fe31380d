/* bench_http.c - echobench's HTTP/1.1 response decoder (see bench_http.h).
 *
 * The head is parsed in place when one read holds it whole (the usual case)
 * and gathered in the caller's buffer only when it is split. Chunk-size lines
 * and trailers are read byte by byte through small states, so a chunked body
 * can be split anywhere.
 */
#include "client/bench_http.h"

#include <string.h>
#include <strings.h>

enum {
    ST_HEAD,
    ST_BODY_LEN,        /* remaining bytes of a Content-Length body */
    ST_BODY_EOF,        /* everything to the connection's end */
    ST_CHUNK_LINE,      /* chunk size [; ext] CRLF */
    ST_CHUNK_DATA,
    ST_CHUNK_CRLF,      /* the CRLF after a chunk's data */
    ST_TRAILER,         /* trailer lines up to the blank line */
    ST_END,             /* the response is complete: report it */
};

/* Chunk line sub-states. */
enum { CL_START, CL_DIGITS, CL_EXT, CL_LF };
/* A chunk size beyond this is refused (it could not be real). */
#define CHUNK_SIZE_MAX (UINT64_C(1) << 60)

void bench_http_decoder_init(struct bench_http_decoder *d, uint8_t *head_buf)
{
    memset(d, 0, sizeof(*d));
    d->head_buf = head_buf;
}

static bool token_eq(const uint8_t *p, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp((const char *)p, word, n) == 0;
}

/* Does the comma-separated list v[0..n) hold `word` (case-insensitive)?
 * last: only as its last element. */
static bool list_has(const uint8_t *v, size_t n, const char *word, bool last)
{
    size_t i = 0;
    bool found = false;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end > start)
            found = token_eq(v + start, end - start, word) ? true : (last ? false : found);
    }
    return found;
}

int bench_http_parse_head(const uint8_t *h, size_t len, uint16_t *status, bool *close,
                          bool *chunked, bool *has_length, uint64_t *length)
{
    /* "HTTP/1.x NNN" then anything to CRLF. */
    if (len < 14 || memcmp(h, "HTTP/1.", 7) != 0 || (h[7] != '0' && h[7] != '1') ||
        h[8] != ' ')
        return -1;
    bool http10 = h[7] == '0';
    unsigned code = 0;
    for (int i = 9; i < 12; i++) {
        if (h[i] < '0' || h[i] > '9')
            return -1;
        code = code * 10 + (unsigned)(h[i] - '0');
    }
    if (h[12] != ' ' && h[12] != '\r')
        return -1;
    *status = (uint16_t)code;
    *chunked = *has_length = false;
    *length = 0;
    bool keep_alive = false, conn_close = false;
    const uint8_t *end = h + len, *p = memchr(h, '\n', len);
    if (p == NULL)
        return -1;
    p++;
    while (p < end) {
        const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL || eol == p || eol[-1] != '\r')
            return -1;
        size_t line = (size_t)(eol - 1 - p);
        if (line == 0)
            break;      /* the blank line */
        const uint8_t *colon = memchr(p, ':', line);
        if (colon == NULL || colon == p)
            return -1;
        size_t nlen = (size_t)(colon - p);
        const uint8_t *v = colon + 1, *vend = eol - 1;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        size_t vlen = (size_t)(vend - v);
        if (token_eq(p, nlen, "content-length")) {
            uint64_t x = 0;
            if (vlen == 0 || vlen > 18)
                return -1;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return -1;
                x = x * 10 + (uint64_t)(v[i] - '0');
            }
            if (*has_length && x != *length)
                return -1;
            *has_length = true;
            *length = x;
        } else if (token_eq(p, nlen, "transfer-encoding")) {
            *chunked = list_has(v, vlen, "chunked", true);
        } else if (token_eq(p, nlen, "connection")) {
            conn_close = conn_close || list_has(v, vlen, "close", false);
            keep_alive = keep_alive || list_has(v, vlen, "keep-alive", false);
        }
        p = eol + 1;
    }
    *close = conn_close || (http10 && !keep_alive);
    return 0;
}

/* After a head: where the body starts, and the HEAD event. */
static int start_body(struct bench_http_decoder *d, const uint8_t *h, size_t len,
                      struct bench_http_ev *ev)
{
    uint16_t status;
    bool close, chunked, has_length;
    uint64_t length;
    if (bench_http_parse_head(h, len, &status, &close, &chunked, &has_length, &length) < 0)
        return -1;
    if (status >= 100 && status < 200)
        return 1;   /* interim: the real response follows */
    ev->kind = BENCH_HTTP_EV_HEAD;
    ev->status = status;
    ev->close = close;
    ev->until_eof = false;
    if (status == 204 || status == 304) {
        d->state = ST_END;
    } else if (chunked) {
        d->state = ST_CHUNK_LINE;
        d->chunk_state = CL_START;
        d->remaining = 0;
    } else if (has_length) {
        d->remaining = length;
        d->state = length > 0 ? ST_BODY_LEN : ST_END;
    } else {
        d->state = ST_BODY_EOF;
        ev->until_eof = true;
    }
    return 0;
}

static int hex_value(uint8_t ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The head: find its blank line in p (or in the gathered bytes). */
static size_t decode_head(struct bench_http_decoder *d, const uint8_t *p, size_t n,
                          struct bench_http_ev *ev, bool *needs_buf)
{
    size_t used = 0;
    for (;;) {
        if (d->head_len == 0) {
            const uint8_t *e = memmem(p + used, n - used, "\r\n\r\n", 4);
            if (e != NULL) {
                size_t hl = (size_t)(e + 4 - (p + used));
                int rc = start_body(d, p + used, hl, ev);
                if (rc < 0) {
                    ev->kind = BENCH_HTTP_EV_ERROR;
                    return used;
                }
                used += hl;
                if (rc > 0)
                    continue;   /* 1xx: parse the next head */
                return used;
            }
            if (used == n)
                return used;
        }
        /* Split head: gather it. */
        if (d->head_buf == NULL) {
            *needs_buf = true;
            return used;
        }
        size_t old = d->head_len, take = n - used;
        if (old + take > BENCH_HTTP_RESP_HEAD_MAX)
            take = BENCH_HTTP_RESP_HEAD_MAX - old;
        memcpy(d->head_buf + old, p + used, take);
        size_t from = old >= 3 ? old - 3 : 0;
        const uint8_t *e = memmem(d->head_buf + from, old + take - from, "\r\n\r\n", 4);
        if (e == NULL) {
            if (old + take == BENCH_HTTP_RESP_HEAD_MAX) {
                ev->kind = BENCH_HTTP_EV_ERROR;     /* a head larger than we accept */
                return used;
            }
            d->head_len = (uint32_t)(old + take);
            return n;
        }
        size_t hl = (size_t)(e + 4 - d->head_buf);
        used += hl - old;
        d->head_len = 0;
        int rc = start_body(d, d->head_buf, hl, ev);
        if (rc < 0) {
            ev->kind = BENCH_HTTP_EV_ERROR;
            return used;
        }
        if (rc > 0)
            continue;
        return used;
    }
}

size_t bench_http_decode(struct bench_http_decoder *d, const uint8_t *p, size_t n,
                         struct bench_http_ev *ev, bool *needs_buf)
{
    size_t used = 0;
    ev->kind = BENCH_HTTP_EV_NONE;
    *needs_buf = false;
    for (;;) {
        switch (d->state) {
        case ST_HEAD:
            if (used == n)
                return used;
            return used + decode_head(d, p + used, n - used, ev, needs_buf);
        case ST_END:
            d->state = ST_HEAD;
            ev->kind = BENCH_HTTP_EV_END;
            return used;
        case ST_BODY_LEN:
        case ST_CHUNK_DATA: {
            if (used == n)
                return used;
            size_t take = n - used;
            if (take > d->remaining)
                take = (size_t)d->remaining;
            d->remaining -= take;
            if (d->remaining == 0) {
                d->state = d->state == ST_BODY_LEN ? ST_END : ST_CHUNK_CRLF;
                d->chunk_state = 0;
            }
            ev->kind = BENCH_HTTP_EV_BODY;
            ev->data = p + used;
            ev->size = take;
            return used + take;
        }
        case ST_BODY_EOF:
            if (used == n)
                return used;
            ev->kind = BENCH_HTTP_EV_BODY;
            ev->data = p + used;
            ev->size = n - used;
            return n;
        case ST_CHUNK_LINE:
            for (; used < n && d->state == ST_CHUNK_LINE; used++) {
                uint8_t ch = p[used];
                int hv = hex_value(ch);
                if (d->chunk_state == CL_LF) {
                    if (ch != '\n')
                        goto bad;
                    d->state = d->remaining == 0 ? ST_TRAILER : ST_CHUNK_DATA;
                    d->chunk_state = 0;
                } else if (hv >= 0 && d->chunk_state != CL_EXT) {
                    if (d->remaining > CHUNK_SIZE_MAX)
                        goto bad;
                    d->remaining = d->remaining * 16 + (uint64_t)hv;
                    d->chunk_state = CL_DIGITS;
                } else if (d->chunk_state == CL_START) {
                    goto bad;
                } else if (ch == '\r') {
                    d->chunk_state = CL_LF;
                } else if (ch == '\n') {
                    goto bad;
                } else {
                    d->chunk_state = CL_EXT;    /* ";ext" or whitespace: skipped */
                }
            }
            if (d->state == ST_CHUNK_LINE)
                return used;
            continue;
        case ST_CHUNK_CRLF:
            for (; used < n && d->state == ST_CHUNK_CRLF; used++) {
                if (p[used] != (d->chunk_state == 0 ? '\r' : '\n'))
                    goto bad;
                if (d->chunk_state++ == 1) {
                    d->state = ST_CHUNK_LINE;
                    d->chunk_state = CL_START;
                    d->remaining = 0;
                }
            }
            if (d->state == ST_CHUNK_CRLF)
                return used;
            continue;
        case ST_TRAILER:
            /* chunk_state: 0 line start, 1 in a line, 2 CR at line start, 3 CR in a line. */
            for (; used < n && d->state == ST_TRAILER; used++) {
                uint8_t ch = p[used];
                switch (d->chunk_state) {
                case 0: d->chunk_state = ch == '\r' ? 2 : 1; break;
                case 1: if (ch == '\r') d->chunk_state = 3; break;
                case 2:
                    if (ch != '\n')
                        goto bad;
                    d->state = ST_END;
                    break;
                default:
                    if (ch != '\n')
                        goto bad;
                    d->chunk_state = 0;
                    break;
                }
            }
            if (d->state == ST_TRAILER)
                return used;
            continue;
        }
    }
bad:
    ev->kind = BENCH_HTTP_EV_ERROR;
    return used;
}
