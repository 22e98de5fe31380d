/* http_response.h - HTTP/1.1 response heads, written into a caller's buffer.
 *
 * The builders are pure: no I/O, no allocation, no clock read. Every head is
 * assembled from prebuilt pieces with memcpy (the status line, the Date line
 * cached per worker, the fixed headers), so a head costs a few copies and one
 * integer conversion for Content-Length. Each returns the bytes written, or 0
 * when the head does not fit cap (nothing useful is left in out then); a
 * buffer of HTTP_RESPONSE_HEAD_MAX(extra_len) bytes always fits.
 *
 * Header order: status line, Date, Server, Content-Type, Content-Length or
 * Transfer-Encoding, Connection, X-Content-Type-Options, the extra lines
 * (from `header=` controls), then the empty line. 1xx, 204 and 304 carry no
 * Content-Type, Content-Length or Transfer-Encoding (RFC 9110 8.6, 15.3.5,
 * 15.4.5: they never have a body, and a 304's length would describe a
 * representation it does not send).
 */
#ifndef ECHOD_HTTP_RESPONSE_H
#define ECHOD_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "Sun, 06 Nov 1994 08:49:37 GMT": IMF-fixdate, RFC 9110 5.6.7. */
#define HTTP_DATE_LEN 29
/* "Date: " IMF-fixdate CRLF */
#define HTTP_DATE_LINE_LEN (6 + HTTP_DATE_LEN + 2)

/* A worker's Date cache: formatted when the second changes, not per request. */
struct http_date {
    int64_t sec;                        /* the second `line` shows; -1 before the first update */
    char line[HTTP_DATE_LINE_LEN];      /* "Date: ...\r\n", not NUL-terminated */
};

void http_date_init(struct http_date *d);
/* Bring the cache to now_s (seconds since the epoch, UTC). Returns true when
 * it formatted a new line, false when the second had not changed. */
bool http_date_update(struct http_date *d, int64_t now_s);

/* The Content-Types echod sends; none of them is rendered by a browser as a
 * page (the body is never HTML and nosniff is always set). */
enum http_ctype {
    HTTP_CT_NONE,       /* no Content-Type line */
    HTTP_CT_OCTET,      /* application/octet-stream: an echoed body */
    HTTP_CT_TEXT,       /* text/plain: the echoed head, errors, /healthz */
    HTTP_CT_JSON,       /* application/json: format=json, /stats */
    HTTP_CT_METRICS,    /* text/plain; version=0.0.4; charset=utf-8: /metrics */
};

/* What the Connection header says. */
enum http_conn {
    HTTP_CONN_PERSIST,      /* nothing: HTTP/1.1 stays open by default */
    HTTP_CONN_CLOSE,        /* "Connection: close" */
    HTTP_CONN_KEEP_ALIVE,   /* "Connection: keep-alive": an HTTP/1.0 client that asked */
};

struct http_head {
    unsigned status;            /* 100-599 */
    enum http_ctype ctype;
    bool chunked;               /* Transfer-Encoding: chunked instead of Content-Length */
    uint64_t length;            /* Content-Length, when not chunked */
    enum http_conn conn;
    const char *extra;          /* complete "Name: value\r\n" lines, or NULL */
    size_t extra_len;
};

/* Room for any head but its extra lines: the longest status line (46), Date
 * (37), Server, the longest Content-Type (56), a 20-digit Content-Length (38),
 * Connection (24), nosniff (33) and the final CRLF come to 257 bytes with a
 * 5-byte version; 320 leaves room for a longer version (the unit test checks
 * the worst case). */
#define HTTP_RESPONSE_FIXED_MAX 320
#define HTTP_RESPONSE_HEAD_MAX(extra_len) (HTTP_RESPONSE_FIXED_MAX + (size_t)(extra_len))

/* The head of r, with the Date of d. */
size_t http_response_head(const struct http_head *r, const struct http_date *d,
                          char *out, size_t cap);

/* Longest detail http_response_error accepts; a longer one is cut there. */
#define HTTP_ERROR_DETAIL_MAX 64
/* Room for any error response: the fixed head and "NNN " + the detail. */
#define HTTP_ERROR_MAX (HTTP_RESPONSE_FIXED_MAX + 4 + HTTP_ERROR_DETAIL_MAX)

/* An error response: status, Content-Type: text/plain, Connection: close, and
 * the body "NNN reason" (no newline), where reason is detail or, when detail
 * is NULL, the status's reason phrase. A detail that already starts with
 * "NNN " for this status (common/http.h's err_reason) is used as the whole
 * body. head_only (a HEAD request) leaves the body out but keeps its
 * Content-Length. */
size_t http_response_error(unsigned status, const char *detail, bool head_only,
                           const struct http_date *d, char *out, size_t cap);

/* The interim response to "Expect: 100-continue". */
#define HTTP_RESPONSE_CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"
#define HTTP_RESPONSE_CONTINUE_LEN (sizeof(HTTP_RESPONSE_CONTINUE) - 1)
size_t http_response_continue(char *out, size_t cap);

/* The reason phrase of a status (RFC 9110 names, plus the registered ones in
 * common use); a code without one gets its class ("Client Error", ...), and
 * anything outside 100-599 "Unknown". Never NULL. */
const char *http_status_reason(unsigned status);

/* Whether a response with this status may carry a body (not 1xx, 204, 304). */
bool http_status_has_body(unsigned status);

#endif
