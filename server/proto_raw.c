/* proto_raw.c - RFC 862 echo over the transport: every byte read is sent
 * back, in order, with the same backpressure and bounded memory as framed
 * ECHO.
 *
 * Small chunks are copied (one recv, one send: as cheap as echo gets); once
 * reads come in big chunks the connection switches to splice(2), and back to
 * copying when they shrink again. The client's EOF: everything owed is
 * flushed, then our FIN, then close. A "request" in the counters is one chunk
 * received. There are no frames, so there is no read timeout and nothing to
 * say when refusing a connection: it is closed without a byte.
 */
#include "server/conn.h"

/* A read at least this large means bulk: stream the rest with splice. */
#define RAW_BULK_ENTER (32 * 1024)
/* A splice read under this much means the bulk is over: copy again. */
#define RAW_BULK_LEAVE (4 * 1024)

static void raw_open(struct conn *c)
{
    c->p.raw.bulk = false;
}

static void raw_close(struct conn *c)
{
    (void)c;
}

static bool raw_on_input(struct conn *c)
{
    bool progress = false;
    if (c->in != NULL && buf_len(c->in) > 0) {
        size_t taken = conn_echo(c, buf_head(c->in), buf_len(c->in));
        if (c->state == CONN_CLOSED)
            return true;
        if (taken > 0) {
            buf_consume(c->in, taken);
            progress = true;
        }
    }
    if (c->in == NULL || buf_len(c->in) == 0) {
        /* All read is echoed: the peer's EOF or the drain ends it here. */
        if (c->peer_eof || (c->draining && !c->drain_finish)) {
            conn_stop_input(c, !c->peer_eof);
            progress = true;
        }
    }
    return progress;
}

static bool raw_in_request(const struct conn *c)
{
    (void)c;
    return false;
}

static void raw_on_read_timeout(struct conn *c)
{
    (void)c;    /* never armed: raw has no requests in progress */
}

static uint64_t raw_splice_len(const struct conn *c)
{
    return c->p.raw.bulk ? UINT64_MAX : 0;
}

static void raw_spliced(struct conn *c, size_t n)
{
    if (n < RAW_BULK_LEAVE)
        c->p.raw.bulk = false;
}

static void raw_received(struct conn *c, size_t n)
{
    conn_request_done(c, SK_RAW_CHUNK, 1);
    if (n >= RAW_BULK_ENTER)
        c->p.raw.bulk = true;
}

static void raw_reject(struct conn *c, enum proto_reject why)
{
    (void)why;
    conn_stop_input(c, false);
}

const struct proto_ops proto_raw_ops = {
    .kind = PROTO_RAW,
    .name = "raw",
    .open = raw_open,
    .close = raw_close,
    .on_input = raw_on_input,
    .in_request = raw_in_request,
    .on_read_timeout = raw_on_read_timeout,
    .splice_len = raw_splice_len,
    .spliced = raw_spliced,
    .received = raw_received,
    .reject = raw_reject,
};
