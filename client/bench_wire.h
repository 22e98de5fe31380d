/* bench_wire.h - what echobench's requests look like on the wire, per protocol.
 *
 * A request is (type, payload size, offset into the thread's pattern); this
 * module turns it into at most BENCH_PIECES_MAX pieces of bytes to send, and,
 * for the protocols whose reply is known in advance (raw, redis, memcache),
 * into the exact bytes expected back. Pieces are either stable (the pattern,
 * constant strings, the run's HTTP head: valid for the whole run) or built in
 * a caller's small buffer (headers carrying a length), which the caller must
 * copy before the next request is encoded. Nothing here allocates or does I/O.
 *
 *   framed    'E' len payload / 'P' 0            reply: the same frame
 *   raw       payload                            reply: the same bytes
 *   redis     *2 $4 ECHO $n payload (RESP)       reply: $n payload
 *   memcache  mn (meta no-op)                    reply: MN
 *   http      GET path (-s 0) or POST with a body of n bytes; replies are
 *             parsed (client/bench_http.c), not predicted
 */
#ifndef ECHOD_BENCH_WIRE_H
#define ECHOD_BENCH_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_PIECES_MAX 4
/* The largest built piece (a RESP request head, an HTTP Content-Length line). */
#define BENCH_TMP_MAX 48
/* Largest HTTP request head built from --path, -H and the Host header. */
#define BENCH_HTTP_HEAD_MAX 8192

enum bench_proto {
    BENCH_PROTO_FRAMED,     /* echod frames: ECHO and PING */
    BENCH_PROTO_RAW,        /* plain echo (RFC 862): bytes back as sent */
    BENCH_PROTO_REDIS,      /* RESP ECHO */
    BENCH_PROTO_MEMCACHE,   /* memcached meta no-op */
    BENCH_PROTO_HTTP,       /* HTTP/1.1 GET or POST */
};

struct bench_piece {
    const uint8_t *p;
    uint32_t len;
    bool temp;              /* lives in the caller's buffer: copy it */
};

/* The run's constant parts, built once per thread. */
struct bench_wire {
    enum bench_proto proto;
    const uint8_t *pattern;
    /* http: the request head up to (POST) or including (GET) its blank line. */
    uint8_t http_head[BENCH_HTTP_HEAD_MAX];
    uint32_t http_head_len;
    bool http_post;
};

/* "framed", "raw", "redis", "memcache" or "http". */
const char *bench_proto_name(enum bench_proto p);

/* Decimal digits of v into out (no terminator); returns their count (1..10). */
static inline unsigned bench_u32_dec(uint32_t v, uint8_t *out)
{
    uint8_t tmp[10];
    unsigned n = 0;
    do {
        tmp[n++] = (uint8_t)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (unsigned i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* Build the HTTP head for the run: method, path, Host, the user's headers
 * (each "Name: value"), Connection: close when oneshot. Returns 0, or -1 when
 * it does not fit BENCH_HTTP_HEAD_MAX. */
int bench_wire_http_init(struct bench_wire *w, const char *path, const char *host,
                         const char *const *headers, unsigned nheaders, bool post, bool close)
    __attribute__((warn_unused_result));

/* The pieces of a request (type is 'E' or 'P', framed only); tmp holds
 * BENCH_TMP_MAX bytes. Returns the count; *wire_len gets the total bytes. */
unsigned bench_wire_request(const struct bench_wire *w, uint8_t type, uint32_t size,
                            uint32_t pat_off, uint8_t *tmp, struct bench_piece *out,
                            uint32_t *wire_len);

/* Exact-reply protocols (raw, redis, memcache): the reply is head, payload,
 * tail. Writes the head into head (BENCH_TMP_MAX bytes) and returns its
 * length; *tail and *tail_len get the tail; *payload the payload bytes. */
unsigned bench_wire_reply(const struct bench_wire *w, uint32_t size, uint8_t *head,
                          const uint8_t **tail, uint32_t *tail_len, uint32_t *payload);

#endif
