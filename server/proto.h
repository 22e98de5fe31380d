/* proto.h - the interface between the transport (conn.c) and the protocol a
 * listener speaks (proto_framed.c, proto_raw.c, proto_http.c).
 *
 * The transport owns the socket, the buffers lent by the worker, splice,
 * backpressure, timers, lingering close and the drain. A protocol owns only
 * the meaning of the bytes: it decodes what the input buffer holds and queues
 * replies through the conn_out_* / conn_echo calls of conn.h. It never touches
 * epoll or the worker. The transport asks; the protocol answers:
 *
 *   open        a connection starts (set up the per-connection state)
 *   close       it ends (release anything the state holds)
 *   on_input    decode c->in and queue replies; called every round while the
 *               connection is open, also with no new input (the output may
 *               have room again, the peer's EOF or the drain may have come).
 *               When it needs more bytes and c->peer_eof is set, it ends the
 *               last request (conn_stop_input); when c->draining is set and no
 *               request is left to finish (c->drain_finish clear), it stops
 *               taking requests. Returns true on progress.
 *   in_request  a request has begun and not ended: read_timeout runs
 *   on_read_timeout   ... and expired
 *   splice_len  how many of the next input bytes are to be sent back
 *               verbatim (0: none; UINT64_MAX: until the peer's EOF). When
 *               the run is long and nothing is buffered in either direction,
 *               the transport moves it socket -> pipe -> socket with
 *               splice(2), and goes on until the answer drops to 0.
 *   spliced     n such bytes were read into the pipe
 *   received    n bytes were read from the socket (optional)
 *   reject      answer "over the limit" (or "shutting down") and stop
 *
 * Several listener protocols share one worker, one transport and one set of
 * counters; only this table differs per connection.
 */
#ifndef ECHOD_PROTO_H
#define ECHOD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/frame.h"

struct conn;

enum proto_kind {
    PROTO_FRAMED = 0,   /* protocol.md: length-prefixed frames (the default) */
    PROTO_RAW,          /* RFC 862 echo */
    PROTO_HTTP,         /* HTTP/1.1 echo and test backend */
    PROTO_KINDS,
};

enum proto_reject {
    PROTO_REJECT_NONE,          /* served, not refused */
    PROTO_REJECT_LIMIT,         /* over max_connections */
    PROTO_REJECT_CLIENT_LIMIT,  /* its address holds max_connections_per_client */
    PROTO_REJECT_DRAINING,      /* accepted after the drain began */
};

struct proto_ops {
    enum proto_kind kind;
    const char *name;
    void (*open)(struct conn *c);
    void (*close)(struct conn *c);
    bool (*on_input)(struct conn *c);
    bool (*in_request)(const struct conn *c);
    void (*on_read_timeout)(struct conn *c);
    uint64_t (*splice_len)(const struct conn *c);
    void (*spliced)(struct conn *c, size_t n);
    void (*received)(struct conn *c, size_t n);     /* NULL: not interested */
    void (*reject)(struct conn *c, enum proto_reject why);
};

/* Per-connection protocol state lives inside struct conn (its size budget
 * is shared), so each member here stays small. */
struct proto_framed_state {
    struct frame_decoder dec;
    bool reply_started;     /* the current ECHO's reply header is out */
    bool stats_pending;     /* a STATS reply waits for room */
};

struct proto_raw_state {
    bool bulk;              /* reads fill the buffer: stream with splice */
};

struct proto_http_state;    /* lent by the worker while a request is in flight */

union proto_state {
    struct proto_framed_state framed;
    struct proto_raw_state raw;
    struct proto_http_state *http;
};

extern const struct proto_ops proto_framed_ops;
extern const struct proto_ops proto_raw_ops;
extern const struct proto_ops proto_http_ops;

/* The ops of a protocol, or NULL if this build does not serve it. */
const struct proto_ops *proto_ops_of(enum proto_kind kind);
const char *proto_name(enum proto_kind kind);

/* Split a `listen` entry "[SCHEME://]ADDRESS": the protocol (no scheme =
 * framed) and where the address starts. -1 for an unknown scheme. */
int proto_parse_listen(const char *entry, enum proto_kind *kind, const char **address);

/* The protocol of a socket inherited from systemd, by its LISTEN_FDNAMES
 * name ("framed", "raw", "http"); false (and framed) for any other name. */
bool proto_from_fdname(const char *name, enum proto_kind *kind);

/* The bytes that say "503" in a protocol, for a socket no worker could take
 * (the listener sends them itself). Returns the length written to out. */
size_t proto_reject_bytes(enum proto_kind kind, const char *reason, uint8_t *out, size_t cap);

#endif
