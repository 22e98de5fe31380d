/* bench_wire.c - request encoding and expected replies per protocol (see
 * bench_wire.h). Called once per request on the hot path: no allocation, no
 * formatting through stdio.
 */
#include "client/bench_wire.h"

#include <stdio.h>
#include <string.h>

#include "common/frame.h"

static const uint8_t crlf[] = "\r\n";
static const uint8_t mn_request[] = "mn\r\n";
static const uint8_t mn_reply[] = "MN\r\n";
static const uint8_t resp_echo[] = "*2\r\n$4\r\nECHO\r\n$";

const char *bench_proto_name(enum bench_proto p)
{
    static const char *const names[] = {
        [BENCH_PROTO_FRAMED] = "framed", [BENCH_PROTO_RAW] = "raw",
        [BENCH_PROTO_REDIS] = "redis", [BENCH_PROTO_MEMCACHE] = "memcache",
        [BENCH_PROTO_HTTP] = "http",
    };
    return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "unknown";
}

int bench_wire_http_init(struct bench_wire *w, const char *path, const char *host,
                         const char *const *headers, unsigned nheaders, bool post, bool close)
{
    char *out = (char *)w->http_head;
    size_t cap = sizeof(w->http_head), n = 0;
    bool have_host = false;
    for (unsigned i = 0; i < nheaders; i++)
        if (strncasecmp(headers[i], "host:", 5) == 0)
            have_host = true;
    int k = snprintf(out, cap, "%s %s HTTP/1.1\r\n", post ? "POST" : "GET", path);
    if (k < 0 || (size_t)k >= cap)
        return -1;
    n = (size_t)k;
    if (!have_host) {
        k = snprintf(out + n, cap - n, "Host: %s\r\n", host);
        if (k < 0 || (size_t)k >= cap - n)
            return -1;
        n += (size_t)k;
    }
    for (unsigned i = 0; i < nheaders; i++) {
        k = snprintf(out + n, cap - n, "%s\r\n", headers[i]);
        if (k < 0 || (size_t)k >= cap - n)
            return -1;
        n += (size_t)k;
    }
    k = snprintf(out + n, cap - n, "%s%s", close ? "Connection: close\r\n" : "",
                 post ? "Content-Type: application/octet-stream\r\n" : "\r\n");
    if (k < 0 || (size_t)k >= cap - n)
        return -1;
    w->http_head_len = (uint32_t)(n + (size_t)k);
    w->http_post = post;
    return 0;
}

unsigned bench_wire_request(const struct bench_wire *w, uint8_t type, uint32_t size,
                            uint32_t pat_off, uint8_t *tmp, struct bench_piece *out,
                            uint32_t *wire_len)
{
    unsigned n = 0;
    const uint8_t *payload = w->pattern + pat_off;
    switch (w->proto) {
    case BENCH_PROTO_FRAMED:
        frame_header_encode(tmp, type, size);
        out[n++] = (struct bench_piece){tmp, FRAME_HEADER_SIZE, true};
        if (size > 0)
            out[n++] = (struct bench_piece){payload, size, false};
        break;
    case BENCH_PROTO_RAW:
        out[n++] = (struct bench_piece){payload, size, false};
        break;
    case BENCH_PROTO_REDIS: {
        uint32_t h = sizeof(resp_echo) - 1;
        memcpy(tmp, resp_echo, h);
        h += bench_u32_dec(size, tmp + h);
        tmp[h++] = '\r';
        tmp[h++] = '\n';
        out[n++] = (struct bench_piece){tmp, h, true};
        if (size > 0)
            out[n++] = (struct bench_piece){payload, size, false};
        out[n++] = (struct bench_piece){crlf, 2, false};
        break;
    }
    case BENCH_PROTO_MEMCACHE:
        out[n++] = (struct bench_piece){mn_request, sizeof(mn_request) - 1, false};
        break;
    case BENCH_PROTO_HTTP:
        out[n++] = (struct bench_piece){w->http_head, w->http_head_len, false};
        if (w->http_post) {
            static const char cl[] = "Content-Length: ";
            uint32_t h = sizeof(cl) - 1;
            memcpy(tmp, cl, h);
            h += bench_u32_dec(size, tmp + h);
            memcpy(tmp + h, "\r\n\r\n", 4);
            out[n++] = (struct bench_piece){tmp, h + 4, true};
            if (size > 0)
                out[n++] = (struct bench_piece){payload, size, false};
        }
        break;
    }
    uint32_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += out[i].len;
    *wire_len = total;
    return n;
}

unsigned bench_wire_reply(const struct bench_wire *w, uint32_t size, uint8_t *head,
                          const uint8_t **tail, uint32_t *tail_len, uint32_t *payload)
{
    *tail = crlf;
    *tail_len = 0;
    *payload = 0;
    switch (w->proto) {
    case BENCH_PROTO_RAW:
        *payload = size;
        return 0;
    case BENCH_PROTO_REDIS: {
        unsigned h = 0;
        head[h++] = '$';
        h += bench_u32_dec(size, head + h);
        head[h++] = '\r';
        head[h++] = '\n';
        *payload = size;
        *tail_len = 2;
        return h;
    }
    case BENCH_PROTO_MEMCACHE:
        memcpy(head, mn_reply, 4);
        return 4;
    default:
        return 0;   /* framed and http replies are decoded, not predicted */
    }
}
