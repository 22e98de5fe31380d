/* http_controls.c - parsing the query-string controls (see http_controls.h).
 *
 * The query is read once, pair by pair ('&' separates, the first '=' splits a
 * key from its value). Values are percent-decoded byte by byte as they are
 * consumed, so nothing is copied except the added header lines, which are
 * decoded straight into the caller's buffer and checked there.
 */
#include "server/http_controls.h"

#include <string.h>
#include <strings.h>

/* Longest key we know ("status", "format", "header"); a longer key is unknown. */
#define KEY_MAX 8
/* Digits of the largest status. */
#define STATUS_DIGITS 3

/* A percent-decoding cursor over one key or value. */
struct cursor {
    const char *p, *end;
};

enum { CUR_END = -1, CUR_BAD = -2 };

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The next decoded byte, CUR_END at the end, CUR_BAD on a broken escape. */
static int cur_next(struct cursor *c)
{
    if (c->p >= c->end)
        return CUR_END;
    char ch = *c->p++;
    if (ch == '+')
        return ' ';
    if (ch != '%')
        return (unsigned char)ch;
    if (c->end - c->p < 2)
        return CUR_BAD;
    int hi = hexval(c->p[0]), lo = hexval(c->p[1]);
    if (hi < 0 || lo < 0)
        return CUR_BAD;
    c->p += 2;
    return hi << 4 | lo;
}

static bool is_digit(int b)
{
    return b >= '0' && b <= '9';
}

/* RFC 9110 tchar: "!#$%&'*+-.^_`|~", digits and letters, as a 128-bit set. */
#define TCHAR_LO UINT64_C(0x03ff6cfa00000000)   /* bytes 0-63 */
#define TCHAR_HI UINT64_C(0x57ffffffc7fffffe)   /* bytes 64-127 */

static bool is_tchar(int b)
{
    if (b < 0 || b >= 128)
        return false;
    return b < 64 ? (TCHAR_LO >> b) & 1 : (TCHAR_HI >> (b - 64)) & 1;
}

/* What a control may put in a field value: visible ASCII, SP, HTAB. */
static bool is_value_byte(int b)
{
    return (b >= 0x21 && b <= 0x7E) || b == ' ' || b == '\t';
}

/* Decimal digits only, at least one; *overflow when it does not fit 64 bits. */
static bool parse_u64(struct cursor *c, uint64_t *out, bool *overflow)
{
    uint64_t v = 0;
    unsigned n = 0;
    int b;
    *overflow = false;
    while ((b = cur_next(c)) != CUR_END) {
        if (!is_digit(b))
            return false;
        unsigned d = (unsigned)(b - '0');
        if (v > (UINT64_MAX - d) / 10)
            *overflow = true;
        else
            v = v * 10 + d;
        n++;
    }
    *out = v;
    return n > 0;
}

static int fail(struct http_controls *c, int status, const char *why)
{
    c->error = why;
    return status;
}

/* Header names a control may not set: the framing and connection headers the
 * server owns, Date, and the two that keep a browser from rendering the body. */
static const char *const refused_headers[] = {
    "content-length", "transfer-encoding", "connection", "date",
    "content-type", "x-content-type-options",
};

static bool header_refused(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(refused_headers) / sizeof(refused_headers[0]); i++)
        if (strlen(refused_headers[i]) == len && strncasecmp(refused_headers[i], name, len) == 0)
            return true;
    return false;
}

/* Decode "NAME:VALUE" into "NAME: VALUE\r\n" at hdrs + c->headers_len. */
static int parse_header(struct http_controls *c, struct cursor *v, char *hdrs, size_t cap)
{
    size_t at = c->headers_len, o = at;
    int b;
    while ((b = cur_next(v)) != ':') {
        if (b < 0 || !is_tchar(b))
            return fail(c, 400, "bad header value");
        if (o >= cap)
            return fail(c, 400, "added headers too long");
        hdrs[o++] = (char)b;
    }
    size_t name_len = o - at;
    if (name_len == 0)
        return fail(c, 400, "bad header value");
    if (header_refused(hdrs + at, name_len))
        return fail(c, 400, "header not allowed");
    if (cap - o < 2)
        return fail(c, 400, "added headers too long");
    hdrs[o++] = ':';
    hdrs[o++] = ' ';
    size_t value_at = o;
    while ((b = cur_next(v)) != CUR_END) {
        if (b < 0 || !is_value_byte(b))
            return fail(c, 400, "bad header value");
        if (o == value_at && (b == ' ' || b == '\t'))
            continue;               /* leading whitespace */
        if (o >= cap)
            return fail(c, 400, "added headers too long");
        hdrs[o++] = (char)b;
    }
    while (o > value_at && (hdrs[o - 1] == ' ' || hdrs[o - 1] == '\t'))
        o--;                        /* trailing whitespace */
    if (cap - o < 2)
        return fail(c, 400, "added headers too long");
    hdrs[o++] = '\r';
    hdrs[o++] = '\n';
    c->headers_len = o;
    c->nheaders++;
    return 0;
}

static int parse_pair(struct http_controls *c, struct cursor *k, struct cursor *v,
                      const struct http_controls_limits *lim, char *hdrs, size_t cap)
{
    char key[KEY_MAX];
    size_t klen = 0;
    int b;
    while ((b = cur_next(k)) != CUR_END) {
        if (b < 0 || klen == KEY_MAX)
            return 0;               /* not a key we know: ignored */
        key[klen++] = (char)b;
    }
#define KEY_IS(lit) (klen == sizeof(lit) - 1 && memcmp(key, lit, klen) == 0)
    uint64_t n;
    bool overflow;
    if (KEY_IS("status")) {
        struct cursor probe = *v;
        unsigned digits = 0;
        while (cur_next(&probe) != CUR_END)
            digits++;
        if (digits != STATUS_DIGITS || !parse_u64(v, &n, &overflow) ||
            n < HTTP_CONTROLS_STATUS_MIN || n > HTTP_CONTROLS_STATUS_MAX)
            return fail(c, 400, "bad status value");
        c->status = (unsigned)n;
    } else if (KEY_IS("delay")) {
        if (!parse_u64(v, &n, &overflow))
            return fail(c, 400, "bad delay value");
        if (overflow || n > lim->max_delay_ms)
            return fail(c, 400, lim->max_delay_ms ? "delay over http_max_delay" : "delays are off");
        c->delay_ms = n;
    } else if (KEY_IS("size")) {
        if (!parse_u64(v, &n, &overflow))
            return fail(c, 400, "bad size value");
        if (overflow || n > lim->max_size)
            return fail(c, 413, "size over max_frame_size");
        c->size = n;
        c->has_size = true;
    } else if (KEY_IS("close")) {
        int d = cur_next(v);
        if ((d != '0' && d != '1') || cur_next(v) != CUR_END)
            return fail(c, 400, "bad close value");
        c->close = d == '1';
    } else if (KEY_IS("format")) {
        /* Only json means anything; any other value keeps the default. */
        static const char json[] = "json";
        size_t i = 0;
        bool is_json = true;
        while ((b = cur_next(v)) != CUR_END)
            if (i >= sizeof(json) - 1 || b != json[i++])
                is_json = false;
        c->json = is_json && i == sizeof(json) - 1;
    } else if (KEY_IS("header")) {
        return parse_header(c, v, hdrs, cap);
    }
#undef KEY_IS
    return 0;
}

int http_controls_parse(struct http_controls *c, const char *query, size_t len,
                        const struct http_controls_limits *lim, char *hdrs, size_t hdrs_cap)
{
    memset(c, 0, sizeof(*c));
    if (len == 0)
        return 0;           /* query may be NULL: no arithmetic on it */
    const char *p = query, *end = query + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pair_end = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pair_end - p));
        struct cursor k = {p, eq ? eq : pair_end};
        struct cursor v = {eq ? eq + 1 : pair_end, pair_end};
        if (k.p < k.end) {
            int rc = parse_pair(c, &k, &v, lim, hdrs, hdrs_cap);
            if (rc != 0)
                return rc;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}
