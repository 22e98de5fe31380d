/* http_response.c - response heads from prebuilt pieces (see http_response.h). */
#include "server/http_response.h"

#include <string.h>
#include <time.h>

#include "common/textbuf.h"

#ifndef ECHOD_VERSION
#error "ECHOD_VERSION must be defined by the build"
#endif

/* A piece of a head: a string literal and its length, known at compile time. */
#define PIECE(s) {s, sizeof(s) - 1}
struct piece {
    const char *s;
    size_t len;
};

static const struct piece server_line = PIECE("Server: echod/" ECHOD_VERSION "\r\n");
static const struct piece nosniff_line = PIECE("X-Content-Type-Options: nosniff\r\n");
static const struct piece chunked_line = PIECE("Transfer-Encoding: chunked\r\n");
static const struct piece length_prefix = PIECE("Content-Length: ");

static const struct piece ctype_lines[] = {
    [HTTP_CT_NONE] = {"", 0},
    [HTTP_CT_OCTET] = PIECE("Content-Type: application/octet-stream\r\n"),
    [HTTP_CT_TEXT] = PIECE("Content-Type: text/plain\r\n"),
    [HTTP_CT_JSON] = PIECE("Content-Type: application/json\r\n"),
    [HTTP_CT_METRICS] = PIECE("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
};

static const struct piece conn_lines[] = {
    [HTTP_CONN_PERSIST] = {"", 0},
    [HTTP_CONN_CLOSE] = PIECE("Connection: close\r\n"),
    [HTTP_CONN_KEEP_ALIVE] = PIECE("Connection: keep-alive\r\n"),
};

/* The worst head but its extras: a status line with a 32-byte reason (the
 * unit test holds every reason to that), a 20-digit length, the longest
 * Content-Type and Connection lines. */
#define REASON_MAX 32
_Static_assert(sizeof("HTTP/1.1 000 \r\n") - 1 + REASON_MAX + HTTP_DATE_LINE_LEN +
               sizeof("Server: echod/" ECHOD_VERSION "\r\n") - 1 +
               sizeof("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") - 1 +
               sizeof("Content-Length: 18446744073709551615\r\n") - 1 +
               sizeof("Connection: keep-alive\r\n") - 1 +
               sizeof("X-Content-Type-Options: nosniff\r\n") - 1 + 2 <= HTTP_RESPONSE_FIXED_MAX,
               "HTTP_RESPONSE_FIXED_MAX is too small for the longest head");

/* ---- reason phrases ---- */

#define STATUS_LOWEST 100
#define STATUS_HIGHEST 599

static const char *const reasons[STATUS_HIGHEST + 1] = {
    [100] = "Continue", [101] = "Switching Protocols", [102] = "Processing", [103] = "Early Hints",
    [200] = "OK", [201] = "Created", [202] = "Accepted", [203] = "Non-Authoritative Information",
    [204] = "No Content", [205] = "Reset Content", [206] = "Partial Content",
    [207] = "Multi-Status", [208] = "Already Reported", [226] = "IM Used",
    [300] = "Multiple Choices", [301] = "Moved Permanently", [302] = "Found", [303] = "See Other",
    [304] = "Not Modified", [305] = "Use Proxy", [307] = "Temporary Redirect",
    [308] = "Permanent Redirect",
    [400] = "Bad Request", [401] = "Unauthorized", [402] = "Payment Required", [403] = "Forbidden",
    [404] = "Not Found", [405] = "Method Not Allowed", [406] = "Not Acceptable",
    [407] = "Proxy Authentication Required", [408] = "Request Timeout", [409] = "Conflict",
    [410] = "Gone", [411] = "Length Required", [412] = "Precondition Failed",
    [413] = "Content Too Large", [414] = "URI Too Long", [415] = "Unsupported Media Type",
    [416] = "Range Not Satisfiable", [417] = "Expectation Failed", [418] = "I'm a teapot",
    [421] = "Misdirected Request", [422] = "Unprocessable Content", [423] = "Locked",
    [424] = "Failed Dependency", [425] = "Too Early", [426] = "Upgrade Required",
    [428] = "Precondition Required", [429] = "Too Many Requests",
    [431] = "Request Header Fields Too Large", [451] = "Unavailable For Legal Reasons",
    [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
    [503] = "Service Unavailable", [504] = "Gateway Timeout",
    [505] = "HTTP Version Not Supported", [506] = "Variant Also Negotiates",
    [507] = "Insufficient Storage", [508] = "Loop Detected", [510] = "Not Extended",
    [511] = "Network Authentication Required",
};

/* For codes without a name of their own (RFC 9110 15: a client treats an
 * unknown code as the x00 of its class). */
static const char *const class_reasons[] = {
    "Informational", "Success", "Redirection", "Client Error", "Server Error",
};

const char *http_status_reason(unsigned status)
{
    if (status < STATUS_LOWEST || status > STATUS_HIGHEST)
        return "Unknown";
    if (reasons[status] != NULL)
        return reasons[status];
    return class_reasons[status / 100 - 1];
}

bool http_status_has_body(unsigned status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* ---- the Date cache ---- */

static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

void http_date_init(struct http_date *d)
{
    d->sec = -1;
    http_date_update(d, 0);
    d->sec = -1;        /* formatted as the epoch, but due for a real update */
}

/* Formatted by hand: strftime would follow the locale, and this is the only
 * place the clock becomes text. */
bool http_date_update(struct http_date *d, int64_t now_s)
{
    if (now_s == d->sec)
        return false;
    time_t t = (time_t)now_s;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
        return false;   /* a clock beyond four-digit years: keep the last line */
    char *p = d->line;
    memcpy(p, "Date: ", 6);
    p += 6;
    memcpy(p, wdays[tm.tm_wday], 3);
    p[3] = ',';
    p[4] = ' ';
    put2(p + 5, tm.tm_mday);
    p[7] = ' ';
    memcpy(p + 8, months[tm.tm_mon], 3);
    p[11] = ' ';
    int year = tm.tm_year + 1900;
    put2(p + 12, year / 100);
    put2(p + 14, year % 100);
    p[16] = ' ';
    put2(p + 17, tm.tm_hour);
    p[19] = ':';
    put2(p + 20, tm.tm_min);
    p[22] = ':';
    put2(p + 23, tm.tm_sec);
    memcpy(p + 25, " GMT\r\n", 6);
    d->sec = now_s;
    return true;
}

/* ---- heads ---- */

/* A bounded writer: once something does not fit, ok stays false. */
static void put_piece(struct textbuf *o, const struct piece *pc)
{
    textbuf_put(o, pc->s, pc->len);
}

static void put_status_line(struct textbuf *o, unsigned status)
{
    char line[16] = "HTTP/1.1 000 ";
    line[9] = (char)('0' + status / 100 % 10);
    line[10] = (char)('0' + status / 10 % 10);
    line[11] = (char)('0' + status % 10);
    textbuf_put(o, line, 13);
    const char *reason = http_status_reason(status);
    textbuf_put(o, reason, strlen(reason));
    textbuf_put(o, "\r\n", 2);
}

static void put_common(struct textbuf *o, unsigned status, const struct http_date *d)
{
    put_status_line(o, status);
    textbuf_put(o, d->line, HTTP_DATE_LINE_LEN);
    put_piece(o, &server_line);
}

size_t http_response_head(const struct http_head *r, const struct http_date *d,
                          char *out, size_t cap)
{
    struct textbuf o = textbuf_into(out, cap);
    if (r->status < STATUS_LOWEST || r->status > STATUS_HIGHEST ||
        (unsigned)r->ctype >= sizeof(ctype_lines) / sizeof(ctype_lines[0]) ||
        (unsigned)r->conn >= sizeof(conn_lines) / sizeof(conn_lines[0]))
        return 0;
    put_common(&o, r->status, d);
    if (http_status_has_body(r->status)) {
        put_piece(&o, &ctype_lines[r->ctype]);
        if (r->chunked) {
            put_piece(&o, &chunked_line);
        } else {
            put_piece(&o, &length_prefix);
            textbuf_put_u64(&o, r->length);
            textbuf_put(&o, "\r\n", 2);
        }
    }
    put_piece(&o, &conn_lines[r->conn]);
    put_piece(&o, &nosniff_line);
    if (r->extra_len > 0)
        textbuf_put(&o, r->extra, r->extra_len);
    textbuf_put(&o, "\r\n", 2);
    return o.ok ? o.len : 0;
}

size_t http_response_error(unsigned status, const char *detail, bool head_only,
                           const struct http_date *d, char *out, size_t cap)
{
    if (status < STATUS_LOWEST || status > STATUS_HIGHEST)
        return 0;
    const char *reason = detail != NULL ? detail : http_status_reason(status);
    /* The parser's reasons are whole bodies ("400 bare LF"): take them as they are. */
    if (detail != NULL && strlen(detail) >= 4 && detail[3] == ' ' &&
        detail[0] == (char)('0' + status / 100) && detail[1] == (char)('0' + status / 10 % 10) &&
        detail[2] == (char)('0' + status % 10))
        reason = detail + 4;
    size_t rlen = strnlen(reason, HTTP_ERROR_DETAIL_MAX);
    struct http_head r = {
        .status = status,
        .ctype = HTTP_CT_TEXT,
        .length = http_status_has_body(status) ? 4 + rlen : 0,
        .conn = HTTP_CONN_CLOSE,
    };
    size_t n = http_response_head(&r, d, out, cap);
    if (n == 0 || head_only || r.length == 0)
        return n;
    struct textbuf o = textbuf_into(out, cap);
    o.len = n;
    char code[4] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10),
                    (char)('0' + status % 10), ' '};
    textbuf_put(&o, code, sizeof(code));
    textbuf_put(&o, reason, rlen);
    return o.ok ? o.len : 0;
}

size_t http_response_continue(char *out, size_t cap)
{
    if (cap < HTTP_RESPONSE_CONTINUE_LEN)
        return 0;
    memcpy(out, HTTP_RESPONSE_CONTINUE, HTTP_RESPONSE_CONTINUE_LEN);
    return HTTP_RESPONSE_CONTINUE_LEN;
}
