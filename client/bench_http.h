/* bench_http.h - an incremental HTTP/1.1 response decoder for echobench.
 *
 * Fed any span of bytes, it yields one event at a time, as common/frame.c's
 * decoder does for frames: a response head (status, Connection: close),
 * pieces of its body (Content-Length or chunked, decoded), the end of the
 * response, or an error. Interim 1xx responses are skipped. A head split
 * across reads is gathered in a buffer of BENCH_HTTP_RESP_HEAD_MAX bytes that
 * the caller lends (one per connection, taken only when a head is split).
 * No I/O; it never allocates.
 *
 * The parsing is common/http.c's, shared with the server: its response head
 * parser and chunked decoder. This module adds what a client must to find
 * the end of a response (RFC 9112 section 6.3): 1xx heads are skipped, 204
 * and 304 have no body, chunked bodies are decoded, else Content-Length,
 * else the body runs to the connection's end (BENCH_HTTP_EV_BODY until the
 * caller sees EOF).
 */
#ifndef ECHOD_BENCH_HTTP_H
#define ECHOD_BENCH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/http.h"

#define BENCH_HTTP_RESP_HEAD_MAX HTTP_MAX_HEADER_SIZE_DEFAULT

enum bench_http_ev_kind {
    BENCH_HTTP_EV_NONE,     /* everything given was used: feed more */
    BENCH_HTTP_EV_HEAD,     /* status and close are set */
    BENCH_HTTP_EV_BODY,     /* data, size: a piece of the (decoded) body */
    BENCH_HTTP_EV_END,      /* the response is complete */
    BENCH_HTTP_EV_ERROR,    /* not a valid response: the stream is lost */
};

struct bench_http_ev {
    enum bench_http_ev_kind kind;
    uint16_t status;
    bool close;             /* the response said Connection: close (or HTTP/1.0) */
    bool until_eof;         /* no length: the body ends with the connection */
    const uint8_t *data;
    size_t size;
};

struct bench_http_decoder {
    uint8_t state;
    uint32_t head_len;      /* bytes of a split head gathered in head_buf */
    uint64_t remaining;     /* Content-Length bytes still to come */
    uint8_t *head_buf;      /* the caller's, BENCH_HTTP_RESP_HEAD_MAX bytes (may be NULL) */
    struct http_parser parser;
    struct http_chunked chunked;
};

void bench_http_decoder_init(struct bench_http_decoder *d, uint8_t *head_buf);
/* Decode from p[0..n): returns the bytes used and sets *ev. Call again with
 * the rest until it says BENCH_HTTP_EV_NONE. needs_buf is set when a split
 * head needs head_buf and the decoder has none: give it one and call again. */
size_t bench_http_decode(struct bench_http_decoder *d, const uint8_t *p, size_t n,
                         struct bench_http_ev *ev, bool *needs_buf);

#endif
