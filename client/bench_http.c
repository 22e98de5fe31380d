/* bench_http.c - echobench's HTTP/1.1 response decoder (see bench_http.h).
 *
 * The head is parsed in place when one read holds it whole (the usual case)
 * and gathered in the caller's buffer only when it is split; the parser keeps
 * its place, so a head split anywhere is scanned once.
 */
#include "client/bench_http.h"

#include <string.h>

enum {
    ST_HEAD,
    ST_BODY_LEN,        /* remaining bytes of a Content-Length body */
    ST_BODY_EOF,        /* everything to the connection's end */
    ST_CHUNKED,
    ST_END,             /* the response is complete: report it */
};

void bench_http_decoder_init(struct bench_http_decoder *d, uint8_t *head_buf)
{
    memset(d, 0, sizeof(*d));
    d->head_buf = head_buf;
    http_response_parser_init(&d->parser, BENCH_HTTP_RESP_HEAD_MAX);
}

/* A complete head: where its body goes. Returns false for an interim 1xx. */
static bool start_body(struct bench_http_decoder *d, const struct http_response *resp,
                       struct bench_http_ev *ev)
{
    http_response_parser_init(&d->parser, BENCH_HTTP_RESP_HEAD_MAX);
    if (resp->status < 200)
        return false;
    ev->kind = BENCH_HTTP_EV_HEAD;
    ev->status = resp->status;
    ev->close = resp->conn_close || (resp->minor == 0 && !resp->conn_keep_alive);
    ev->until_eof = false;
    if (resp->status == 204 || resp->status == 304) {
        d->state = ST_END;
    } else if (resp->chunked) {
        http_chunked_init(&d->chunked, BENCH_HTTP_RESP_HEAD_MAX);
        d->state = ST_CHUNKED;
    } else if (resp->has_content_length) {
        d->remaining = resp->content_length;
        d->state = d->remaining > 0 ? ST_BODY_LEN : ST_END;
    } else {
        d->state = ST_BODY_EOF;
        ev->until_eof = true;
    }
    return true;
}

/* The head, from p (or from the bytes gathered so far). */
static size_t decode_head(struct bench_http_decoder *d, const uint8_t *p, size_t n,
                          struct bench_http_ev *ev, bool *needs_buf)
{
    size_t used = 0;
    while (used < n) {
        struct http_response resp;
        enum http_result rc;
        size_t old = d->head_len, take = 0;
        if (old == 0) {
            rc = http_parse_response(&d->parser, p + used, n - used, &resp);
        } else {
            take = n - used;
            if (old + take > BENCH_HTTP_RESP_HEAD_MAX)
                take = BENCH_HTTP_RESP_HEAD_MAX - old;
            memcpy(d->head_buf + old, p + used, take);
            rc = http_parse_response(&d->parser, d->head_buf, old + take, &resp);
        }
        if (rc == HTTP_ERROR) {
            ev->kind = BENCH_HTTP_EV_ERROR;
            return used;
        }
        if (rc == HTTP_NEED_MORE) {
            if (old == 0) {
                /* Split: keep what came, in the buffer, at the same offsets. */
                if (d->head_buf == NULL) {
                    *needs_buf = true;
                    return used;
                }
                take = n - used;
                memcpy(d->head_buf, p + used, take);
            }
            d->head_len = (uint32_t)(old + take);
            return n;
        }
        used += resp.head_len - old;
        d->head_len = 0;
        if (start_body(d, &resp, ev))
            return used;
        /* 1xx: the real response follows. */
    }
    return used;
}

size_t bench_http_decode(struct bench_http_decoder *d, const uint8_t *p, size_t n,
                         struct bench_http_ev *ev, bool *needs_buf)
{
    ev->kind = BENCH_HTTP_EV_NONE;
    *needs_buf = false;
    switch (d->state) {
    case ST_HEAD:
        return decode_head(d, p, n, ev, needs_buf);
    case ST_END:
        d->state = ST_HEAD;
        ev->kind = BENCH_HTTP_EV_END;
        return 0;
    case ST_BODY_LEN: {
        if (n == 0)
            return 0;
        size_t take = n < d->remaining ? n : (size_t)d->remaining;
        d->remaining -= take;
        if (d->remaining == 0)
            d->state = ST_END;
        ev->kind = BENCH_HTTP_EV_BODY;
        ev->data = p;
        ev->size = take;
        return take;
    }
    case ST_BODY_EOF:
        if (n > 0) {
            ev->kind = BENCH_HTTP_EV_BODY;
            ev->data = p;
            ev->size = n;
        }
        return n;
    case ST_CHUNKED: {
        struct http_chunk_event ce;
        size_t used = http_chunked_decode(&d->chunked, p, n, &ce);
        switch (ce.kind) {
        case HTTP_CHUNK_DATA:
            ev->kind = BENCH_HTTP_EV_BODY;
            ev->data = ce.data;
            ev->size = ce.size;
            break;
        case HTTP_CHUNK_END:
            d->state = ST_HEAD;
            ev->kind = BENCH_HTTP_EV_END;
            break;
        case HTTP_CHUNK_ERROR:
            ev->kind = BENCH_HTTP_EV_ERROR;
            break;
        default:
            break;
        }
        return used;
    }
    }
    ev->kind = BENCH_HTTP_EV_ERROR;
    return 0;
}
