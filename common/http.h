/* http.h - the HTTP/1.1 message codec (RFC 9112): request and response head
 * parsers, a chunked body decoder, and the chunk size line encoder.
 *
 * No I/O and no allocation; like frame.h this is pure decoding over the
 * caller's bytes. Why a parser of our own and exactly what it rejects:
 * docs/http-parser.md.
 *
 * Head parsers. The caller keeps the head-so-far contiguous at buf[0..len)
 * (it may be moved between calls as long as the same bytes stay at the same
 * offsets) and calls again as bytes arrive; the parser remembers how far it
 * has scanned, so a head arriving a byte at a time costs O(n) in total. A
 * call returns
 *   HTTP_NEED_MORE  the head is not complete and nothing is wrong yet;
 *   HTTP_DONE       the head is complete: the message struct is filled, its
 *                   head_len bytes (ending with the empty line) are the head;
 *                   bytes after them (a body, the next request) are not read;
 *   HTTP_ERROR      p->err_status (400, 414, 431, 501, 505) and p->err_reason,
 *                   a static string "NNN what" fit for a text/plain body.
 * An error is reported at the first byte that makes it certain (a request line
 * that cannot end within max_header_size is a 414 once max_header_size bytes
 * are in, its CRLF never waited for), so a buffer of max_header_size bytes is
 * always enough. After DONE or ERROR the parser keeps returning the same
 * result; http_*_parser_init() starts the next message. Every span is an
 * offset into buf.
 *
 * Chunked bodies. http_chunked_decode() is fed any split of the body like
 * frame_decode(): each call consumes control bytes (chunk lines, CRLFs,
 * trailers) and reports at most one event: DATA (a span pointing into the
 * caller's bytes), END (last chunk, trailers and final CRLF consumed) or
 * ERROR. It holds no bytes between calls, so memory does not depend on chunk
 * sizes, and bounds a chunk line (HTTP_CHUNK_LINE_MAX) and the trailer section.
 *
 * Usage, server side (error handling trimmed):
 *
 *     struct http_parser p;
 *     struct http_request req;
 *     http_request_parser_init(&p, cfg->http_max_header_size);
 *     ...on every read, with the head-so-far at in[0..n):
 *     switch (http_parse_request(&p, in, n, &req)) {
 *     case HTTP_NEED_MORE: return;                      // read more
 *     case HTTP_ERROR: reply_error(p.err_status, p.err_reason); return;
 *     case HTTP_DONE: break;
 *     }
 *     // the head to echo: in[req.skip .. req.head_len)
 *     struct http_header_iter it = {0};
 *     struct http_span name, value;
 *     while (http_header_next(in, req.head_len, &it, &name, &value))
 *         json_pair(in + name.off, name.len, in + value.off, value.len);
 *     if (req.chunked) {
 *         struct http_chunked ch;
 *         http_chunked_init(&ch, cfg->http_max_header_size);
 *         size_t off = req.head_len;
 *         for (;;) {
 *             struct http_chunk_event ev;
 *             off += http_chunked_decode(&ch, in + off, n - off, &ev);
 *             if (ev.kind == HTTP_CHUNK_NONE) break;        // read more
 *             if (http_chunked_announced(&ch) > max_frame_size) reply 413;
 *             if (ev.kind == HTTP_CHUNK_DATA) echo(ev.data, ev.size);
 *             if (ev.kind == HTTP_CHUNK_END) break;         // next request at off
 *             if (ev.kind == HTTP_CHUNK_ERROR) reply ev.status, ev.reason;
 *         }
 *     }
 *
 *     // encoding a chunked response:
 *     uint8_t line[HTTP_CHUNK_HEADER_MAX];
 *     size_t k = http_chunk_header(line, size);   // "1f40\r\n"
 *     ...then the data, then HTTP_CRLF; finally HTTP_CHUNK_LAST.
 */
#ifndef ECHOD_HTTP_H
#define ECHOD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 9110 recommends supporting request lines of at least 8000 octets; this
 * is the default of the http_max_header_size config key. */
#define HTTP_MAX_HEADER_SIZE_DEFAULT 16384
/* The longest method token accepted (a longer one is 501): longer than any
 * registered method, short enough that no one mistakes it for a buffer. */
#define HTTP_METHOD_MAX 32
/* The longest chunk line (size, extensions, CRLF) accepted: extensions are
 * skipped, so they are bounded here instead of becoming a buffer. */
#define HTTP_CHUNK_LINE_MAX 4096
/* The longest chunk size line http_chunk_header() writes: 16 hex digits + CRLF. */
#define HTTP_CHUNK_HEADER_MAX 18

#define HTTP_CRLF "\r\n"
/* The last chunk and the empty trailer section that end a chunked body. */
#define HTTP_CHUNK_LAST "0\r\n\r\n"

enum http_result {
    HTTP_NEED_MORE,
    HTTP_DONE,
    HTTP_ERROR,
};

/* Methods are case-sensitive (RFC 9110 9.1); anything else is OTHER. */
enum http_method {
    HTTP_METHOD_OTHER,
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
    HTTP_METHOD_PUT,
    HTTP_METHOD_DELETE,
    HTTP_METHOD_OPTIONS,
    HTTP_METHOD_TRACE,
    HTTP_METHOD_CONNECT,
    HTTP_METHOD_PATCH,
};

enum http_expect {
    HTTP_EXPECT_NONE,           /* no Expect field (or only empty ones) */
    HTTP_EXPECT_CONTINUE,       /* exactly 100-continue (any case); HTTP/1.1
                                 * only, HTTP/1.0 ignores it (RFC 9110 10.1.1) */
    HTTP_EXPECT_OTHER,          /* anything else: the server answers 417 */
};

/* A span of the caller's buffer: buf[off .. off+len). */
struct http_span {
    uint32_t off;
    uint32_t len;
};

struct http_request {
    struct http_span method;
    struct http_span target;    /* the request-target as sent */
    struct http_span path;      /* target up to '?' (origin-form); for an
                                 * absolute-form target, from the first '/'
                                 * after the authority (len 0 if none) */
    struct http_span query;     /* after the '?', len 0 if none or empty */
    uint8_t method_id;          /* enum http_method */
    uint8_t minor;              /* HTTP/1.minor: 0 or 1 */
    uint8_t expect;             /* enum http_expect */
    bool has_query;             /* the target has a '?' */
    bool has_content_length;
    bool chunked;               /* Transfer-Encoding: ..., chunked (the only
                                 * coding accepted); never with Content-Length */
    bool conn_close;            /* Connection lists "close" */
    bool conn_keep_alive;       /* Connection lists "keep-alive" */
    uint16_t host_count;        /* 1 for HTTP/1.1; 0 or 1 for HTTP/1.0 */
    uint32_t skip;              /* empty lines (CRLFs) skipped before the request
                                 * line: the head as sent is [skip, head_len) */
    uint32_t head_len;          /* bytes up to and including the final CRLFCRLF */
    uint64_t content_length;    /* when has_content_length */
};

struct http_response {
    uint16_t status;            /* 100..999 */
    uint8_t minor;              /* HTTP/1.minor: 0 or 1 */
    bool has_content_length;
    bool chunked;
    bool conn_close;
    bool conn_keep_alive;
    struct http_span reason;    /* the reason phrase, may be empty */
    uint32_t head_len;
    uint64_t content_length;
};

/* Parser state; read only err_status and err_reason, after HTTP_ERROR. */
struct http_parser {
    uint32_t max;               /* max_header_size */
    uint32_t pos;               /* bytes scanned */
    uint32_t line;              /* offset of the current line */
    uint32_t colon;             /* offset of the current field's colon */
    uint32_t n;                 /* bytes in the current element (method, target...) */
    uint8_t state;
    uint8_t response;           /* parsing a response head */
    uint8_t field;              /* kind of the current field */
    uint8_t cl_state;           /* Content-Length digits: none, in, after */
    uint8_t te_flags;           /* Transfer-Encoding seen so far */
    uint8_t result;             /* enum http_result once DONE or ERROR */
    uint16_t err_status;        /* after HTTP_ERROR */
    const char *err_reason;     /* after HTTP_ERROR: "NNN reason", static */
    union {
        struct http_request req;
        struct http_response resp;
    } m;
};

void http_request_parser_init(struct http_parser *p, uint32_t max_header_size);
void http_response_parser_init(struct http_parser *p, uint32_t max_header_size);

/* Scan buf[0..len), the head so far; on DONE fill *req (or *resp). */
enum http_result http_parse_request(struct http_parser *p, const uint8_t *buf, size_t len,
                                    struct http_request *req)
    __attribute__((warn_unused_result));
enum http_result http_parse_response(struct http_parser *p, const uint8_t *buf, size_t len,
                                     struct http_response *resp)
    __attribute__((warn_unused_result));

/* Walks the header fields of a head that a parser reported DONE (head_len
 * bytes), in order as sent, duplicates included: name as sent, value without
 * its leading and trailing whitespace. Start with an iterator set to {0}.
 * Returns false after the last field. */
struct http_header_iter {
    uint32_t pos;
};
bool http_header_next(const uint8_t *head, size_t len, struct http_header_iter *it,
                      struct http_span *name, struct http_span *value);

/* Case-insensitive comparison of a span of buf with a NUL-terminated string. */
bool http_span_equals(const uint8_t *buf, struct http_span s, const char *lower);

enum http_chunk_event_kind {
    HTTP_CHUNK_NONE,            /* all input consumed, more bytes needed */
    HTTP_CHUNK_DATA,            /* data/size: next bytes of the body */
    HTTP_CHUNK_END,             /* the body is complete; later calls consume
                                 * nothing and report END again */
    HTTP_CHUNK_ERROR,           /* status (400, 431) and reason; stays in error */
};

struct http_chunk_event {
    enum http_chunk_event_kind kind;
    const uint8_t *data;        /* DATA: points into the buffer given */
    size_t size;                /* DATA */
    uint16_t status;            /* ERROR */
    const char *reason;         /* ERROR: "NNN reason", static */
};

struct http_chunked {
    uint64_t remaining;         /* data bytes left in the current chunk */
    uint64_t size;              /* chunk size being read / of the current chunk */
    uint64_t total;             /* data bytes reported so far */
    uint64_t announced;         /* sum of the chunk sizes read so far */
    uint32_t line;              /* bytes of the current chunk line */
    uint32_t trailer;           /* bytes of the trailer section so far */
    uint32_t max_trailer;
    uint16_t err_status;        /* once in error: repeated by every call */
    uint8_t state;
    const char *err_reason;
};

/* max_trailer_size bounds the trailer section (its fields and the final
 * CRLF; the http_max_header_size of the server): beyond it, a 431. */
void http_chunked_init(struct http_chunked *d, uint32_t max_trailer_size);

/* Consume bytes from buf[0..size) and report the next event in *ev. Returns
 * how many bytes were consumed: control bytes and, for DATA, the data itself
 * (ev->data is within the consumed bytes, at their end). Call again with the
 * rest until it reports NONE (or END, or ERROR). */
size_t http_chunked_decode(struct http_chunked *d, const uint8_t *buf, size_t size,
                           struct http_chunk_event *ev)
    __attribute__((warn_unused_result));

/* Give back the last n bytes of the DATA event just reported: the caller could
 * not take them yet and will offer them again (and not count them as consumed). */
void http_chunked_unread(struct http_chunked *d, size_t n);

/* Data bytes reported so far. */
static inline uint64_t http_chunked_total(const struct http_chunked *d)
{
    return d->total;
}

/* Bytes the chunk lines read so far announce (reported or not): compare with
 * a body limit to refuse a chunk as soon as its size line is in (413). */
static inline uint64_t http_chunked_announced(const struct http_chunked *d)
{
    return d->announced;
}

/* True once the decoder has consumed something of the body and not its end:
 * an EOF now cuts the body short. */
bool http_chunked_in_body(const struct http_chunked *d);

/* Write the chunk size line for a chunk of n bytes (n > 0; lowercase hex and
 * CRLF) into out; returns its length, at most HTTP_CHUNK_HEADER_MAX. */
size_t http_chunk_header(uint8_t out[HTTP_CHUNK_HEADER_MAX], uint64_t n);

#endif
