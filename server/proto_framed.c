/* proto_framed.c - the framed protocol (protocol.md) over the transport:
 * decode frames, answer ECHO, PING and STATS in order, and say errors with
 * '!' frames.
 *
 * ECHO payload bytes are their own reply, so they are echoed through the
 * transport as they arrive (conn_echo), and a long payload is handed to the
 * transport's splice path (splice_len). A run of whole pipelined ECHO frames
 * is copied in one piece (frame_echo_run).
 *
 * The drain (SIGTERM) ends at a frame boundary: the frame in progress when
 * it began is read and answered whole; after it, only frames already whole
 * in the input buffer are answered, and a frame begun but not whole gets a
 * 503 before any byte of its reply goes out. So a drain with time left never
 * cuts a reply.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/frame.h"
#include "common/log.h"
#include "server/conn.h"
#include "server/stats.h"
#include "server/worker.h"

/* Room kept free in the output buffer before decoding the next event, so any
 * reply but STATS (PING, ECHO header, error frames) always fits. */
#define REPLY_RESERVE 256
/* Longest error frame payload we build. */
#define ERROR_TEXT_MAX 128

#define ST(c) (&(c)->p.framed)

static bool out_header(struct conn *c, uint8_t type, uint32_t length)
{
    uint8_t h[FRAME_HEADER_SIZE];
    frame_header_encode(h, type, length);
    return conn_out_put(c, h, sizeof(h));
}

/* Queue an error frame and stop taking requests (unless keep_open). */
static void send_error(struct conn *c, bool keep_open, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_error(struct conn *c, bool keep_open, const char *fmt, ...)
{
    char text[ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(text))
        n = sizeof(text) - 1;
    /* Every text starts with its code. */
    conn_count_error(c, stats_error_of_status((unsigned)atoi(text)));
    log_debug("fd %d: %s", c->fd, text);
    if (conn_out_room(c) >= FRAME_HEADER_SIZE + (size_t)n) {
        if (!out_header(c, FRAME_ERROR, (uint32_t)n) || !conn_out_put(c, text, (size_t)n))
            return;
    }
    if (!keep_open)
        conn_stop_input(c, true);   /* the peer may be sending more: no RST */
}

/* Take ECHO payload bytes: they are the reply. Returns how many were taken;
 * fewer than n means the output is full for now. */
static size_t echo_payload(struct conn *c, const uint8_t *p, size_t n)
{
    if (!ST(c)->reply_started) {
        if (!out_header(c, FRAME_ECHO, ST(c)->dec.length))
            return n;
        ST(c)->reply_started = true;
    }
    return conn_echo(c, p, n);
}

static void answer_stats(struct conn *c)
{
    struct worker *w = c->w;
    size_t max = stats_json_max(w->all_stats->nworkers);
    if (conn_out_room(c) < FRAME_HEADER_SIZE + max) {
        ST(c)->stats_pending = true;
        return;
    }
    struct buf *b = conn_out_buf(c);
    if (b == NULL)
        return;
    ST(c)->stats_pending = false;
    buf_compact(b);
    size_t len = stats_render_json(w->all_stats, w->now_ms, (char *)buf_tail(b) + FRAME_HEADER_SIZE,
                                   buf_space(b) - FRAME_HEADER_SIZE);
    if (len == 0) {     /* cannot happen while STATS_JSON_MAX holds */
        conn_abort(c, "STATS reply did not fit");
        return;
    }
    frame_header_encode(buf_tail(b), FRAME_STATS, (uint32_t)len);
    buf_produce(b, FRAME_HEADER_SIZE + len);
}

/* A frame is complete: queue its reply. */
static enum stats_request_kind kind_of(uint8_t type)
{
    switch (type) {
    case FRAME_ECHO: return SK_FRAMED_ECHO;
    case FRAME_PING: return SK_FRAMED_PING;
    case FRAME_STATS: return SK_FRAMED_STATS;
    default: return SK_FRAMED_UNKNOWN;
    }
}

static void frame_done(struct conn *c, uint8_t type)
{
    conn_request_done(c, kind_of(type), 1);
    switch (type) {
    case FRAME_ECHO:
        if (!ST(c)->reply_started)
            out_header(c, FRAME_ECHO, 0);
        ST(c)->reply_started = false;
        break;
    case FRAME_PING:
        out_header(c, FRAME_PING, 0);
        break;
    case FRAME_STATS:
        answer_stats(c);
        break;
    default:
        send_error(c, true, "400 unknown frame type 0x%02x", type);
        break;
    }
}

static bool echo_streaming(const struct conn *c)
{
    return ST(c)->dec.state != FRAME_DEC_HEADER && ST(c)->dec.type == FRAME_ECHO &&
           ST(c)->reply_started;
}

/* The peer's EOF with all its bytes decoded: end the last request. */
static void input_ended(struct conn *c)
{
    struct frame_decoder *d = &ST(c)->dec;
    if (frame_decoder_in_frame(d)) {
        if (d->state == FRAME_DEC_OPEN) {
            /* The open-length ECHO ends here, as it should. */
            conn_request_done(c, SK_FRAMED_ECHO, 1);
        } else if (!echo_streaming(c)) {
            uint64_t got, want;
            frame_decoder_truncation(d, &got, &want);
            send_error(c, false, "400 truncated frame: got %" PRIu64 " of %" PRIu64 " bytes",
                       got, want);
            return;
        }
        /* else: the reply is cut short like the request; closing says so. */
    }
    conn_stop_input(c, false);
}

/* Draining, with the frame in progress at the drain answered: is the next
 * frame whole in the input buffer? Only such a frame is still answered, so
 * that no reply is begun that the drain would cut. */
static bool next_frame_whole(struct conn *c)
{
    size_t avail = c->in ? buf_len(c->in) : 0;
    if (avail < FRAME_HEADER_SIZE)
        return false;
    const uint8_t *h = buf_head(c->in);
    uint32_t len = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
    if (len == FRAME_OPEN_LENGTH || len > ST(c)->dec.max_frame_size)
        return true;    /* answered at once with its error */
    return avail - FRAME_HEADER_SIZE >= len;
}

/* Fast path for pipelined ECHO: a run of whole ECHO frames at a frame
 * boundary is copied to the output in one piece, skipping the per-event
 * decoding. Returns true if it took anything. */
static bool echo_run(struct conn *c)
{
    struct frame_decoder *d = &ST(c)->dec;
    if (c->in == NULL || d->state != FRAME_DEC_HEADER || d->header_have != 0)
        return false;
    uint32_t frames;
    size_t len = frame_echo_run(buf_head(c->in), buf_len(c->in), conn_out_room(c),
                                d->max_frame_size, &frames);
    if (frames == 0)
        return false;
    if (!conn_out_put(c, buf_head(c->in), len))
        return true;    /* aborted: the caller sees the closed state */
    buf_consume(c->in, len);
    conn_request_done(c, SK_FRAMED_ECHO, frames);
    return true;
}

/* Decode what the input holds and queue replies. Returns true on progress. */
static bool framed_on_input(struct conn *c)
{
    struct proto_framed_state *st = ST(c);
    bool progress = false;
    while (c->state == CONN_OPEN) {
        if (st->stats_pending) {
            answer_stats(c);
            if (st->stats_pending)
                break;
        }
        if (conn_out_room(c) < REPLY_RESERVE)
            break;
        bool at_boundary = !frame_decoder_in_frame(&st->dec);
        if (c->draining && !c->drain_finish && at_boundary && !next_frame_whole(c)) {
            /* Draining and the frames read are answered. A frame begun
             * after them but not whole gets a 503; none: close. */
            if (c->in != NULL && buf_len(c->in) > 0)
                send_error(c, false, "503 server shutting down");
            else
                conn_stop_input(c, false);
            return true;
        }
        if (echo_run(c)) {
            progress = true;
            continue;
        }
        size_t avail = c->in ? buf_len(c->in) : 0;
        const uint8_t *data = c->in ? buf_head(c->in) : NULL;
        struct frame_event ev;
        size_t used = frame_decode(&st->dec, data, avail, &ev);
        size_t consumed = used;
        switch (ev.kind) {
        case FRAME_EV_NONE:
            break;
        case FRAME_EV_HEADER:
            if (ev.length == FRAME_OPEN_LENGTH) {
                /* Open length: the reply header goes out at once. */
                out_header(c, FRAME_ECHO, FRAME_OPEN_LENGTH);
                st->reply_started = true;
            }
            if (c->draining)
                c->drain_finish = true;     /* whole (checked above): answer it */
            break;
        case FRAME_EV_PAYLOAD:
            if (ev.type == FRAME_ECHO) {
                consumed = echo_payload(c, ev.data, ev.size);
                if (consumed < ev.size)
                    frame_decoder_unread(&st->dec, ev.size - consumed);
            }
            break;
        case FRAME_EV_END:
            frame_done(c, ev.type);
            break;
        case FRAME_EV_TOO_LARGE:
            send_error(c, false, "413 frame too large: %" PRIu32 " bytes, max_frame_size is %" PRIu32,
                       ev.length, st->dec.max_frame_size);
            break;
        case FRAME_EV_OPEN_NOT_ECHO:
            send_error(c, false, "400 open length is only allowed on ECHO");
            break;
        }
        /* A failed send or allocation above closed the connection and
         * returned its buffers: nothing left to consume. */
        if (c->state == CONN_CLOSED)
            return true;
        if (consumed > 0) {
            buf_consume(c->in, consumed);
            progress = true;
        }
        if (ev.kind == FRAME_EV_END || ev.kind == FRAME_EV_HEADER)
            progress = true;
        if (ev.kind == FRAME_EV_PAYLOAD && consumed < ev.size)
            break;          /* output full: wait for it to drain */
        if (ev.kind != FRAME_EV_NONE)
            continue;

        /* All input decoded. */
        if (c->peer_eof) {
            input_ended(c);
            progress = true;
        }
        break;
    }
    return progress;
}

static void framed_open(struct conn *c)
{
    frame_decoder_init(&ST(c)->dec, c->w->cfg->max_frame_size);
}

static void framed_close(struct conn *c)
{
    (void)c;
}

static bool framed_in_request(const struct conn *c)
{
    return frame_decoder_in_frame(&ST(c)->dec);
}

static void framed_on_read_timeout(struct conn *c)
{
    if (echo_streaming(c)) {
        /* Part of this ECHO's reply is out: an error frame now would be
         * read as its payload. Cut it short and close, as at EOF. */
        conn_count_error(c, SE_READ_TIMEOUT);
        conn_stop_input(c, true);
    } else {
        send_error(c, false, "408 read timeout: frame not completed within read_timeout");
    }
}

/* An ECHO whose reply has started: the rest of its payload is verbatim
 * (the transport splices it when it is long). */
static uint64_t framed_splice_len(const struct conn *c)
{
    const struct frame_decoder *d = &ST(c)->dec;
    if (d->type != FRAME_ECHO || !ST(c)->reply_started)
        return 0;
    if (d->state == FRAME_DEC_OPEN)
        return UINT64_MAX;
    if (d->state == FRAME_DEC_PAYLOAD)
        return frame_decoder_remaining(d);
    return 0;
}

static void framed_spliced(struct conn *c, size_t n)
{
    frame_decoder_skip(&ST(c)->dec, n);
}

static void framed_reject(struct conn *c, enum proto_reject why)
{
    if (why == PROTO_REJECT_LIMIT)
        send_error(c, false, "503 too many connections: max_connections is %" PRIu32,
                   c->w->cfg->max_connections);
    else if (why == PROTO_REJECT_CLIENT_LIMIT)
        send_error(c, false, "503 too many connections from this address: "
                   "max_connections_per_client is %" PRIu32,
                   c->w->cfg->max_connections_per_client);
    else
        send_error(c, false, "503 server shutting down");
}

const struct proto_ops proto_framed_ops = {
    .kind = PROTO_FRAMED,
    .name = "framed",
    .open = framed_open,
    .close = framed_close,
    .on_input = framed_on_input,
    .in_request = framed_in_request,
    .on_read_timeout = framed_on_read_timeout,
    .splice_len = framed_splice_len,
    .spliced = framed_spliced,
    .received = NULL,
    .reject = framed_reject,
};
