/* http_controls.h - the query-string controls of an HTTP echo request.
 *
 * `?status=503&delay=250&size=1024&close=1&header=X-A:b&format=json` asks the
 * echo for a particular response (http.md, "Controls in the query string").
 * http_controls_parse() turns the raw query (the bytes after '?') into a
 * small fixed-size struct, percent-decoding keys and values on the way. Added
 * response headers are validated and written, already as "Name: value\r\n"
 * lines, into a buffer the caller lends, so the response builder copies them
 * with one memcpy and nothing is allocated. Parsing is one pass over the
 * query; it never reads past len and never writes past the caller's buffer.
 *
 * Choices where http.md is silent (docs/http-controls.md says why):
 * - '+' decodes to a space (as HTML forms, Python's parse_qs, Go, PHP); a
 *   literal plus is %2B. A '%' not followed by two hex digits in a known key's
 *   value is a 400; a key that does not decode is just an unknown key.
 * - A repeated scalar key: every occurrence is checked, the last one wins.
 * - `delay=` when http_max_delay is 0 (delays off): any delay above 0 is over
 *   the limit, so it is a 400 like any delay over the limit; delay=0 is fine.
 * - `size=` over the limit, including a number too long to represent: 413.
 * - `close=` takes 1 or 0; `format=` other than json is ignored.
 * - `header=` also refuses Content-Type and X-Content-Type-Options: http.md
 *   says no request chooses a Content-Type a browser would render. The value
 *   has its surrounding spaces and tabs trimmed, as a field parser would.
 * - The added header lines are bounded by the caller's buffer; beyond it: 400.
 */
#ifndef ECHOD_HTTP_CONTROLS_H
#define ECHOD_HTTP_CONTROLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A room the caller may lend for added header lines: enough for a handful of
 * headers, small enough for a worker's scratch area. */
#define HTTP_CONTROLS_HEADERS_MAX 2048

/* The range a `status=` may ask for. */
#define HTTP_CONTROLS_STATUS_MIN 200
#define HTTP_CONTROLS_STATUS_MAX 599

struct http_controls_limits {
    uint64_t max_delay_ms;      /* http_max_delay in milliseconds; 0 = delays off */
    uint64_t max_size;          /* max_frame_size: the largest `size=` */
};

struct http_controls {
    unsigned status;            /* 0 when not asked (the response's own status holds) */
    bool close;                 /* close=1 */
    bool json;                  /* format=json */
    bool has_size;              /* size= was given (0 is a valid size) */
    uint64_t size;
    uint64_t delay_ms;          /* 0 = none */
    unsigned nheaders;          /* header= lines written to the caller's buffer */
    size_t headers_len;         /* their bytes, each line "Name: value\r\n" */
    const char *error;          /* why, when parse returned an error status */
};

/* Parse query[0..len) (without the '?'; NULL with len 0 is an empty query).
 * Added header lines go to hdrs[0..hdrs_cap). Returns 0 on success, or the
 * HTTP status to answer (400 or 413) with c->error set to a short lower-case
 * reason such as "bad status value". c is always fully written. */
int http_controls_parse(struct http_controls *c, const char *query, size_t len,
                        const struct http_controls_limits *lim, char *hdrs, size_t hdrs_cap)
    __attribute__((warn_unused_result));

#endif
