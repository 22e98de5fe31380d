/* http_json.c - rendering the format=json object (see http_json.h).
 *
 * One writer serves both the size computation and the rendering: with a NULL
 * buffer it only counts, so the two can never disagree.
 */
#include "server/http_json.h"

#include <string.h>

#include "common/http.h"
#include "common/textbuf.h"

static const char hex[] = "0123456789abcdef";

/* A JSON string of the bytes s[0..n): runs of plain bytes are copied whole. */
static void put_string(struct textbuf *w, struct http_json_str s)
{
    TEXTBUF_LIT(w, "\"");
    if (s.len == 0) {       /* s.p may be NULL: no arithmetic on it */
        TEXTBUF_LIT(w, "\"");
        return;
    }
    const unsigned char *p = (const unsigned char *)s.p, *end = p + s.len, *run = p;
    for (; p < end; p++) {
        unsigned char c = *p;
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\')
            continue;
        textbuf_put(w, (const char *)run, (size_t)(p - run));
        run = p + 1;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            textbuf_put(w, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
            textbuf_put(w, esc, 6);
        }
    }
    textbuf_put(w, (const char *)run, (size_t)(p - run));
    TEXTBUF_LIT(w, "\"");
}

static void render_begin(const struct http_json_request *r, struct textbuf *w)
{
    TEXTBUF_LIT(w, "{\"method\":");
    put_string(w, r->method);
    TEXTBUF_LIT(w, ",\"target\":");
    put_string(w, r->target);
    TEXTBUF_LIT(w, ",\"path\":");
    put_string(w, r->path);
    TEXTBUF_LIT(w, ",\"query\":");
    put_string(w, r->query);
    TEXTBUF_LIT(w, ",\"version\":");
    put_string(w, r->version);
    TEXTBUF_LIT(w, ",\"headers\":[");
    if (r->next_header != NULL) {
        size_t cursor = 0;
        struct http_json_str name, value;
        for (bool first = true; r->next_header(r->header_ctx, &cursor, &name, &value);
             first = false) {
            if (!first)
                TEXTBUF_LIT(w, ",");
            TEXTBUF_LIT(w, "[");
            put_string(w, name);
            TEXTBUF_LIT(w, ",");
            put_string(w, value);
            TEXTBUF_LIT(w, "]");
        }
    }
    TEXTBUF_LIT(w, "],\"remote\":");
    put_string(w, r->remote);
    TEXTBUF_LIT(w, ",\"listener\":");
    put_string(w, r->listener);
    TEXTBUF_LIT(w, ",\"worker\":");
    textbuf_put_u64(w, r->worker);
    TEXTBUF_LIT(w, ",\"body_bytes\":");
}

size_t http_json_begin_size(const struct http_json_request *r)
{
    struct textbuf w = textbuf_measure();
    render_begin(r, &w);
    return w.len;
}

size_t http_json_begin(const struct http_json_request *r, char *out, size_t cap)
{
    struct textbuf w = textbuf_into(out, cap);
    render_begin(r, &w);
    return w.ok ? w.len : 0;
}

size_t http_json_finish_len(uint64_t body_bytes)
{
    struct textbuf w = textbuf_measure();
    textbuf_put_u64(&w, body_bytes);
    return w.len + 1;
}

size_t http_json_finish(uint64_t body_bytes, char *out, size_t cap)
{
    struct textbuf w = textbuf_into(out, cap);
    textbuf_put_u64(&w, body_bytes);
    TEXTBUF_LIT(&w, "}");
    return w.ok ? w.len : 0;
}

bool http_json_header_array(void *ctx, size_t *cursor, struct http_json_str *name,
                            struct http_json_str *value)
{
    const struct http_json_headers *h = ctx;
    if (*cursor >= h->n)
        return false;
    *name = h->pairs[2 * *cursor];
    *value = h->pairs[2 * *cursor + 1];
    (*cursor)++;
    return true;
}

bool http_json_header_head(void *ctx, size_t *cursor, struct http_json_str *name,
                           struct http_json_str *value)
{
    const struct http_json_head *h = ctx;
    struct http_header_iter it = {(uint32_t)*cursor};
    struct http_span n, v;
    if (!http_header_next(h->in, h->len, &it, &n, &v))
        return false;
    *name = (struct http_json_str){(const char *)h->in + n.off, n.len};
    *value = (struct http_json_str){(const char *)h->in + v.off, v.len};
    *cursor = it.pos;
    return true;
}

static struct http_json_str str_at(const uint8_t *in, struct http_span s)
{
    return (struct http_json_str){(const char *)in + s.off, s.len};
}

void http_json_from_request(struct http_json_request *r, struct http_json_head *head,
                            const uint8_t *in, const struct http_request *req)
{
    /* The parser accepts only these two versions; the text is as sent. */
    static const char v10[] = "HTTP/1.0", v11[] = "HTTP/1.1";
    head->in = in;
    head->len = req->head_len;
    r->method = str_at(in, req->method);
    r->target = str_at(in, req->target);
    r->path = str_at(in, req->path);
    r->query = str_at(in, req->query);
    r->version = req->minor == 0 ? (struct http_json_str){v10, sizeof(v10) - 1}
                                 : (struct http_json_str){v11, sizeof(v11) - 1};
    r->next_header = http_json_header_head;
    r->header_ctx = head;
}
