/* http_json.h - the `format=json` body: the request described as one JSON object.
 *
 *   {"method":"POST","target":"/a?format=json","path":"/a","query":"format=json",
 *    "version":"HTTP/1.1","headers":[["Host","x"],["Content-Length","3"]],
 *    "remote":"127.0.0.1:40000","listener":"http://127.0.0.1:8080","worker":0,
 *    "body_bytes":3}
 *
 * (one line, no spaces, no trailing newline). The body is counted, not echoed,
 * and its count is known only once it has been read, while the rest must be
 * rendered while the request head is still in the input buffer. So the object
 * is written in two steps: http_json_begin() renders everything up to
 * `"body_bytes":`, and http_json_finish() appends the count and the closing
 * brace. Their lengths are known in advance (http_json_begin_size,
 * http_json_finish_len), so the response's Content-Length can be computed
 * before anything is sent.
 *
 * Strings are the bytes as received (path and query are slices of the target,
 * not percent-decoded). Escaping always yields valid JSON, and valid UTF-8:
 * '"' and '\' get a backslash, bytes below 0x20, 0x7F, and every byte from
 * 0x80 up become \u00XX, i.e. each byte is read as the Latin-1 character of
 * that value (the way HTTP/1.1 has always treated header bytes, RFC 9110
 * 5.5). The mapping is lossless: encoding a string back to Latin-1 gives the
 * exact bytes, which kept-if-valid UTF-8 would not promise.
 *
 * The header list comes through a cursor callback, so this module does not
 * depend on the HTTP parser's types; http_json_header_array() adapts a plain
 * array of name/value spans.
 */
#ifndef ECHOD_HTTP_JSON_H
#define ECHOD_HTTP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_json_str {
    const char *p;
    size_t len;
};

/* Yield the header at *cursor (the caller starts at 0 and the callback moves
 * it on) into name and value; false when there are no more. Called once per
 * header by each of http_json_begin_size and http_json_begin. */
typedef bool (*http_json_header_fn)(void *ctx, size_t *cursor, struct http_json_str *name,
                                    struct http_json_str *value);

struct http_json_request {
    struct http_json_str method, target, path, query, version;
    http_json_header_fn next_header;        /* NULL: no headers */
    void *header_ctx;
    struct http_json_str remote;                /* the peer's address text */
    struct http_json_str listener;              /* the listener's address text */
    unsigned worker;
};

/* A ready-made header source: ctx points to this, and pairs[2i], pairs[2i+1]
 * are the name and value of header i. */
struct http_json_headers {
    const struct http_json_str *pairs;
    size_t n;                               /* headers, i.e. half the spans */
};
bool http_json_header_array(void *ctx, size_t *cursor, struct http_json_str *name,
                            struct http_json_str *value);

/* The adapter to common/http.h: a request head the parser reported DONE.
 * http_json_from_request() fills r's method, target, path, query, version
 * and header source from it (remote, listener and worker are the caller's);
 * head must outlive r, and in[0..req->head_len) must stay put until
 * http_json_begin has run. */
struct http_request;
struct http_json_head {
    const uint8_t *in;
    size_t len;
};
bool http_json_header_head(void *ctx, size_t *cursor, struct http_json_str *name,
                           struct http_json_str *value);
void http_json_from_request(struct http_json_request *r, struct http_json_head *head,
                            const uint8_t *in, const struct http_request *req);

/* Exact bytes http_json_begin writes for r. */
size_t http_json_begin_size(const struct http_json_request *r);
/* Render up to and including "body_bytes":; the length, or 0 if over cap. */
size_t http_json_begin(const struct http_json_request *r, char *out, size_t cap);

/* The count and '}': at most 21 bytes. */
#define HTTP_JSON_FINISH_MAX 21
size_t http_json_finish_len(uint64_t body_bytes);
size_t http_json_finish(uint64_t body_bytes, char *out, size_t cap);

/* Bytes of the object with every string empty, no header, and the longest
 * worker id and count (10 and 20 digits). */
#define HTTP_JSON_FIXED_MAX                                                                  \
    (sizeof("{\"method\":\"\",\"target\":\"\",\"path\":\"\",\"query\":\"\",\"version\":\"\"," \
            "\"headers\":[],\"remote\":\"\",\"listener\":\"\",\"worker\":,\"body_bytes\":}") - \
     1 + 10 + 20)
/* A bound on the whole object from the request head's length (request line,
 * header lines and the empty line, as received) and the bytes of the remote
 * and listener texts. Why it holds: an input byte takes at most 6 output
 * bytes; the target is written twice (as itself, and as path plus query), so
 * the request line counts twice: 12 bytes per head byte. A header costs 8
 * bytes of punctuation (["",""] and a comma) and its line at least 4 (a
 * one-byte name, ':' and CRLF), so 2 more per head byte cover them. */
#define HTTP_JSON_MAX(head_len, addr_len) \
    (HTTP_JSON_FIXED_MAX + 14 * (size_t)(head_len) + 6 * (size_t)(addr_len))

#endif
