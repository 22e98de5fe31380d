/* conn.c - one client connection: reading frames, answering them in order,
 * and closing the way the protocol asks.
 *
 * Data flows one way: recv() into the input buffer -> frame decoder -> replies
 * into the output buffer (ECHO payload bytes are the reply, so they are copied
 * once, or sent straight from the input buffer when nothing is queued ahead
 * of them) -> send(). When the output buffer has no room the decoder stops,
 * the input buffer fills, and reading stops: that is the backpressure, and it
 * is why a connection never holds more than its two buffers whatever the
 * frame sizes.
 *
 * Closing: replies first, then shutdown(SHUT_WR); if the peer has not sent its
 * EOF yet we keep reading and discarding for a bounded time (a lingering
 * close, as nginx does), because close() on a socket with unread input sends
 * an RST that can destroy replies the peer has not read yet.
 */
#include "server/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/net.h"
#include "server/worker.h"

/* A connection's struct is all an idle connection costs; keep it small. */
_Static_assert(sizeof(struct conn) <= 128, "struct conn over its size budget");

/* Room kept free in the output buffer before decoding the next event, so any
 * reply but STATS (PING, ECHO header, error frames) always fits. */
#define REPLY_RESERVE 256
/* An ECHO payload chunk at least this large is sent straight from the input
 * buffer when no earlier reply is waiting, instead of being copied. */
#define PASSTHROUGH_MIN 4096
/* Read/decode/send rounds per turn before yielding to other connections. */
#define CONN_TURN_ROUNDS 16
/* An ECHO payload with at least this much still to come, and nothing
 * buffered ahead of it, streams socket -> pipe -> socket with splice(2):
 * its bytes never enter user space. Smaller ones are cheaper to copy. */
#define SPLICE_MIN (64 * 1024)
/* Reads of discarded input per turn while lingering. */
#define LINGER_READS_PER_TURN 16
/* Longest error frame payload we build. */
#define ERROR_TEXT_MAX 128

static void conn_close(struct conn *c, const char *reason);

static struct buf *out_buf(struct conn *c)
{
    if (c->out == NULL)
        c->out = buf_pool_get(&c->w->out_pool);
    return c->out;
}

static size_t out_room(struct conn *c)
{
    if (c->out == NULL)
        return c->w->out_pool.cap;
    return c->out->cap - buf_len(c->out);
}

/* Append bytes to the output; the caller made sure they fit. */
static bool out_put(struct conn *c, const void *p, size_t n)
{
    struct buf *b = out_buf(c);
    if (b == NULL) {
        conn_abort(c, "out of memory");
        return false;
    }
    if (buf_append(b, p, n) < 0) {
        conn_abort(c, "output overflow");
        return false;
    }
    return true;
}

static bool out_header(struct conn *c, uint8_t type, uint32_t length)
{
    uint8_t h[FRAME_HEADER_SIZE];
    frame_header_encode(h, type, length);
    return out_put(c, h, sizeof(h));
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
    stats_add(&c->w->stats->errors_total, 1);
    log_debug("fd %d: %s", c->fd, text);
    if (out_room(c) >= FRAME_HEADER_SIZE + (size_t)n) {
        if (!out_header(c, FRAME_ERROR, (uint32_t)n) || !out_put(c, text, (size_t)n))
            return;
    }
    if (!keep_open) {
        c->state = CONN_FINISHING;
        c->linger = true;   /* the peer may be sending more: do not answer with an RST */
    }
}

/* Send what the output buffer holds. Returns true if any byte went out. */
static bool flush_out(struct conn *c)
{
    if (c->out == NULL || buf_len(c->out) == 0 || !c->writable)
        return false;
    ssize_t n = send(c->fd, buf_head(c->out), buf_len(c->out), MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            c->writable = false;
        else if (errno != EINTR)
            conn_abort(c, strerror(errno));
        return false;
    }
    stats_add(&c->w->stats->bytes_out, (uint64_t)n);
    if ((size_t)n < buf_len(c->out))
        c->writable = false;   /* a short write means the socket buffer is full */
    buf_consume(c->out, (size_t)n);
    return n > 0;
}

/* Take ECHO payload bytes: they are the reply. Returns how many were taken;
 * fewer than n means the output is full for now. */
static size_t echo_payload(struct conn *c, const uint8_t *p, size_t n)
{
    if (!c->reply_started) {
        if (!out_header(c, FRAME_ECHO, c->dec.length))
            return n;
        c->reply_started = true;
    }
    size_t taken = 0;
    if (n >= PASSTHROUGH_MIN && c->writable) {
        /* Send queued bytes and this chunk in one writev, straight from the
         * input buffer: no copy for the common bulk case. */
        size_t queued = c->out ? buf_len(c->out) : 0;
        struct iovec iov[2] = {
            {.iov_base = c->out ? buf_head(c->out) : NULL, .iov_len = queued},
            {.iov_base = (void *)p, .iov_len = n},
        };
        ssize_t w = writev(c->fd, queued ? iov : iov + 1, queued ? 2 : 1);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->writable = false;
            } else if (errno != EINTR) {
                conn_abort(c, strerror(errno));
                return n;
            }
            w = 0;
        }
        stats_add(&c->w->stats->bytes_out, (uint64_t)w);
        size_t from_queue = (size_t)w < queued ? (size_t)w : queued;
        if (from_queue)
            buf_consume(c->out, from_queue);
        taken = (size_t)w - from_queue;
        if (taken < n)
            c->writable = false;
    }
    size_t copy = n - taken;
    size_t room = out_room(c);
    if (copy > room)
        copy = room;
    if (copy > 0 && !out_put(c, p + taken, copy))
        return n;
    return taken + copy;
}

static void answer_stats(struct conn *c)
{
    struct worker *w = c->w;
    size_t max = stats_json_max(w->all_stats->nworkers);
    if (out_room(c) < FRAME_HEADER_SIZE + max) {
        c->stats_pending = true;
        return;
    }
    struct buf *b = out_buf(c);
    if (b == NULL) {
        conn_abort(c, "out of memory");
        return;
    }
    c->stats_pending = false;
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
static void frame_done(struct conn *c, uint8_t type)
{
    c->frame_seq++;
    c->drain_wait_frame = false;
    stats_add(&c->w->stats->requests_total, 1);
    switch (type) {
    case FRAME_ECHO:
        if (!c->reply_started)
            out_header(c, FRAME_ECHO, 0);
        c->reply_started = false;
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

/* The peer's EOF with all its bytes decoded: end the last request. */
static void input_ended(struct conn *c)
{
    if (frame_decoder_in_frame(&c->dec)) {
        bool echo_streaming = c->dec.state != FRAME_DEC_HEADER && c->dec.type == FRAME_ECHO &&
                              c->reply_started;
        if (c->dec.state == FRAME_DEC_OPEN) {
            /* The open-length ECHO ends here, as it should. */
            stats_add(&c->w->stats->requests_total, 1);
        } else if (!echo_streaming) {
            uint64_t got, want;
            frame_decoder_truncation(&c->dec, &got, &want);
            send_error(c, false, "400 truncated frame: got %" PRIu64 " of %" PRIu64 " bytes",
                       got, want);
        }
        /* else: the reply is cut short like the request; closing says so. */
    }
    c->state = CONN_FINISHING;
}

static bool can_read(const struct conn *c)
{
    return c->state == CONN_OPEN && c->readable && !c->peer_eof &&
           (!c->draining || c->drain_wait_frame);
}

/* A large ECHO payload is streaming: its rest should go through a pipe. */
static bool splice_wanted(const struct conn *c)
{
    if (c->state != CONN_OPEN || c->peer_eof || c->dec.type != FRAME_ECHO || !c->reply_started)
        return false;
    return c->dec.state == FRAME_DEC_OPEN ||
           (c->dec.state == FRAME_DEC_PAYLOAD && frame_decoder_remaining(&c->dec) >= SPLICE_MIN);
}

/* ... and can: nothing is buffered ahead of it. */
static bool splice_eligible(const struct conn *c)
{
    if ((c->in != NULL && buf_len(c->in) > 0) || (c->out != NULL && buf_len(c->out) > 0))
        return false;
    return splice_wanted(c);
}

/* One step of zero-copy ECHO streaming: pipe -> socket, then socket -> pipe.
 * The pipe goes back to the pool once it is empty and the payload is over
 * (or the peer's EOF cut it short). Returns true on progress. */
static bool splice_step(struct conn *c)
{
    struct splice_pipe *p = c->pipe;
    bool progress = false;
    if (p->bytes > 0 && c->writable) {
        ssize_t n = splice(p->rfd, NULL, c->fd, NULL, p->bytes, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            p->bytes -= (uint32_t)n;
            stats_add(&c->w->stats->bytes_out, (uint64_t)n);
            progress = true;
            /* A read that failed because the pipe was full looked like an
             * empty socket: try reading again now there is room. */
            if (!c->peer_eof)
                c->readable = true;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->writable = false;
        } else if (n < 0 && errno != EINTR) {
            conn_abort(c, strerror(errno));
            return false;
        }
    }
    size_t want = p->cap - p->bytes;
    if (c->dec.state == FRAME_DEC_PAYLOAD && want > frame_decoder_remaining(&c->dec))
        want = frame_decoder_remaining(&c->dec);
    if (want > 0 && can_read(c)) {
        ssize_t n = splice(c->fd, NULL, p->wfd, NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            p->bytes += (uint32_t)n;
            frame_decoder_skip(&c->dec, (size_t)n);
            stats_add(&c->w->stats->bytes_in, (uint64_t)n);
            progress = true;
        } else if (n == 0) {
            c->peer_eof = true;
            c->readable = false;
            progress = true;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->readable = false;
        } else if (errno != EINTR) {
            conn_abort(c, strerror(errno));
            return false;
        }
    }
    bool streaming = c->dec.state == FRAME_DEC_OPEN || frame_decoder_remaining(&c->dec) > 0;
    if (p->bytes == 0 && (!streaming || c->peer_eof || c->state != CONN_OPEN)) {
        pipe_pool_put(&c->w->pipes, p);
        c->pipe = NULL;
        progress = true;
    }
    return progress;
}

/* Fast path for pipelined ECHO: a run of whole ECHO frames at a frame
 * boundary is copied to the output in one piece, skipping the per-event
 * decoding. Returns true if it took anything. */
static bool echo_run(struct conn *c)
{
    if (c->in == NULL || c->dec.state != FRAME_DEC_HEADER || c->dec.header_have != 0)
        return false;
    uint32_t frames;
    size_t len = frame_echo_run(buf_head(c->in), buf_len(c->in), out_room(c),
                                c->dec.max_frame_size, &frames);
    if (frames == 0)
        return false;
    if (!out_put(c, buf_head(c->in), len))
        return true;    /* aborted: the caller sees the closed state */
    buf_consume(c->in, len);
    c->frame_seq = (uint8_t)(c->frame_seq + frames);
    c->drain_wait_frame = false;
    stats_add(&c->w->stats->requests_total, frames);
    return true;
}

/* Decode what the input holds and queue replies. Returns true on progress. */
static bool process_input(struct conn *c)
{
    bool progress = false;
    while (c->state == CONN_OPEN) {
        if (c->stats_pending) {
            answer_stats(c);
            if (c->stats_pending)
                break;
        }
        if (out_room(c) < REPLY_RESERVE)
            break;
        if (echo_run(c)) {
            progress = true;
            continue;
        }
        size_t avail = c->in ? buf_len(c->in) : 0;
        const uint8_t *data = c->in ? buf_head(c->in) : NULL;
        struct frame_event ev;
        size_t used = frame_decode(&c->dec, data, avail, &ev);
        size_t consumed = used;
        switch (ev.kind) {
        case FRAME_EV_NONE:
            break;
        case FRAME_EV_HEADER:
            if (ev.length == FRAME_OPEN_LENGTH) {
                /* Open length: the reply header goes out at once. */
                out_header(c, FRAME_ECHO, FRAME_OPEN_LENGTH);
                c->reply_started = true;
            }
            break;
        case FRAME_EV_PAYLOAD:
            if (ev.type == FRAME_ECHO) {
                consumed = echo_payload(c, ev.data, ev.size);
                if (consumed < ev.size)
                    frame_decoder_unread(&c->dec, ev.size - consumed);
            }
            break;
        case FRAME_EV_END:
            frame_done(c, ev.type);
            break;
        case FRAME_EV_TOO_LARGE:
            send_error(c, false, "413 frame too large: %" PRIu32 " bytes, max_frame_size is %" PRIu32,
                       ev.length, c->dec.max_frame_size);
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
        } else if (c->draining && !c->drain_wait_frame) {
            /* Shutting down, and the frames read are answered. A frame begun
             * after them gets a 503, unless it is an ECHO whose reply already
             * streams: then the reply is cut short, as at EOF, since an error
             * frame would be read as its payload. */
            bool streaming = c->dec.type == FRAME_ECHO && c->reply_started;
            if (frame_decoder_in_frame(&c->dec) && !streaming) {
                send_error(c, false, "503 server shutting down");
            } else {
                c->state = CONN_FINISHING;
                c->linger = frame_decoder_in_frame(&c->dec);
            }
        }
        break;
    }
    if (c->state != CONN_OPEN && c->in != NULL) {
        /* Nothing more will be decoded: unread input is dropped. */
        buf_pool_put(&c->w->in_pool, c->in);
        c->in = NULL;
    }
    return progress;
}

/* Read once into the input buffer. Returns true on progress (bytes or EOF). */
static bool read_input(struct conn *c)
{
    if (c->in == NULL) {
        c->in = buf_pool_get(&c->w->in_pool);
        if (c->in == NULL) {
            conn_abort(c, "out of memory");
            return false;
        }
    }
    if (buf_space(c->in) == 0)
        buf_compact(c->in);
    size_t space = buf_space(c->in);
    if (space == 0)
        return false;   /* backpressure: wait until replies drain */
    ssize_t n = recv(c->fd, buf_tail(c->in), space, 0);
    if (n > 0) {
        buf_produce(c->in, (size_t)n);
        stats_add(&c->w->stats->bytes_in, (uint64_t)n);
        /* Edge-triggered: a short read drained the socket; the next
         * arrival brings a new event. Not so for a FIN that came with the
         * data: no event will follow it, so read on until recv() says 0. */
        if ((size_t)n < space && !c->rdhup)
            c->readable = false;
        return true;
    }
    if (n == 0) {
        c->peer_eof = true;
        c->readable = false;
        return true;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->readable = false;
        return false;
    }
    if (errno == EINTR)
        return true;
    conn_abort(c, strerror(errno));
    return false;
}

/* Lingering close: read and drop what the peer still sends. */
static void linger_discard(struct conn *c)
{
    uint8_t sink[4096];
    for (int i = 0; c->state == CONN_LINGER && c->readable; i++) {
        if (i == LINGER_READS_PER_TURN) {
            worker_schedule(c->w, c);   /* a flood must not hold the worker */
            return;
        }
        ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
        if (n > 0)
            continue;
        if (n == 0) {
            conn_close(c, "closed");
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            c->readable = false;
        else
            conn_close(c, strerror(errno));
        return;
    }
}

/* Replies are all out: send our FIN, and if we cut the peer off, wait for
 * its FIN while discarding what it still sends. An idle peer (idle timeout,
 * drain between requests) has nothing in flight and is closed at once. */
static void finish(struct conn *c)
{
    if (shutdown(c->fd, SHUT_WR) < 0 || c->peer_eof || !c->linger) {
        conn_close(c, "done");
        return;
    }
    c->state = CONN_LINGER;
    timer_entry_unlink(&c->timer);
    c->timer_kind = TIMER_LINGER;
    timer_list_append(&c->w->timers[TIMER_LINGER], &c->timer, c->w->now_ms);
    linger_discard(c);
}


/* Choose the timer that applies now (see protocol: idle/read/write). */
static void update_timer(struct conn *c, bool progress)
{
    if (c->state == CONN_CLOSED || c->state == CONN_LINGER)
        return;
    enum timer_kind kind;
    bool pending = (c->out != NULL && buf_len(c->out) > 0) || (c->pipe != NULL && c->pipe->bytes > 0);
    if (pending && !c->writable)
        kind = TIMER_WRITE;
    else if (frame_decoder_in_frame(&c->dec))
        kind = TIMER_READ;
    else
        kind = TIMER_IDLE;

    bool restart = kind != c->timer_kind ||
                   (kind == TIMER_READ && c->timer_seq != c->frame_seq) ||
                   (kind != TIMER_READ && progress && c->timer.since_ms != c->w->now_ms);
    if (!restart)
        return;
    timer_entry_unlink(&c->timer);
    c->timer_kind = (uint8_t)kind;
    c->timer_seq = c->frame_seq;
    timer_list_append(&c->w->timers[kind], &c->timer, c->w->now_ms);
}

/* Hand back buffers that hold nothing. */
static void release_idle_buffers(struct conn *c)
{
    if (c->in != NULL && buf_len(c->in) == 0) {
        buf_pool_put(&c->w->in_pool, c->in);
        c->in = NULL;
    }
    if (c->out != NULL && buf_len(c->out) == 0) {
        buf_pool_put(&c->w->out_pool, c->out);
        c->out = NULL;
    }
}

void conn_run(struct conn *c)
{
    bool any = false;
    int round;
    for (round = 0; round < CONN_TURN_ROUNDS && c->state != CONN_CLOSED; round++) {
        if (c->state == CONN_LINGER) {
            linger_discard(c);
            break;
        }
        bool progress = false;
        if (c->pipe == NULL && c->pipe_ok && splice_eligible(c)) {
            c->pipe = pipe_pool_get(&c->w->pipes);
            c->pipe_ok = c->pipe != NULL;   /* no pipe to be had: copy instead */
        }
        if (c->pipe != NULL) {
            progress = splice_step(c);
            any |= progress;
            if (!progress)
                break;
            continue;
        }
        if (c->state == CONN_OPEN)
            progress |= process_input(c);
        progress |= flush_out(c);
        if (c->state == CONN_CLOSED)
            break;
        any |= progress;
        if (c->state == CONN_FINISHING) {
            if (c->out == NULL || buf_len(c->out) == 0)
                finish(c);
            else if (!progress)
                break;
            continue;
        }
        /* While a large ECHO waits to switch to splice, leave its bytes in
         * the socket rather than copying them in. */
        if (can_read(c) && !(c->pipe_ok && splice_wanted(c))) {
            progress |= read_input(c);
            any |= progress;
        }
        if (!progress)
            break;
    }
    if (c->state == CONN_CLOSED)
        return;
    if (round == CONN_TURN_ROUNDS)
        worker_schedule(c->w, c);   /* more to do: yield, come back next turn */
    release_idle_buffers(c);
    update_timer(c, any);
}

void conn_on_events(struct conn *c, uint32_t events)
{
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->readable = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->rdhup = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        c->writable = true;
    conn_run(c);
}

void conn_on_timeout(struct conn *c)
{
    switch (c->timer_kind) {
    case TIMER_IDLE:
        log_debug("fd %d: idle timeout", c->fd);
        c->state = CONN_FINISHING;
        break;
    case TIMER_READ:
        if (c->dec.type == FRAME_ECHO && c->reply_started) {
            /* Part of this ECHO's reply is out: an error frame now would be
             * read as its payload. Cut it short and close, as at EOF. */
            stats_add(&c->w->stats->errors_total, 1);
            c->state = CONN_FINISHING;
            c->linger = true;
        } else {
            send_error(c, false, "408 read timeout: frame not completed within read_timeout");
        }
        break;
    case TIMER_WRITE:
        stats_add(&c->w->stats->errors_total, 1);
        conn_abort(c, "write timeout");
        return;
    default:
        conn_close(c, "linger time over");
        return;
    }
    /* Leave the expired list whatever happens next. */
    timer_entry_unlink(&c->timer);
    c->timer_kind = TIMER_NONE;
    conn_run(c);
}

void conn_drain(struct conn *c)
{
    if (c->state != CONN_OPEN)
        return;
    c->draining = true;
    c->drain_wait_frame = frame_decoder_in_frame(&c->dec);
    worker_schedule(c->w, c);
}

struct conn *conn_open(struct worker *w, int fd, bool reject)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    c->w = w;
    c->fd = fd;
    c->state = CONN_OPEN;
    /* Writable until a send says otherwise; readable when epoll says so
     * (adding an fd that already has input reports it at once). */
    c->writable = true;
    c->pipe_ok = true;
    c->rejecting = reject;
    frame_decoder_init(&c->dec, w->cfg->max_frame_size);
    w->nconns++;
    if (!reject) {
        stats_add(&w->stats->connections_current, 1);
        stats_add(&w->stats->connections_total, 1);
    }

    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.ptr = c,
    };
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        log_warn("epoll_ctl(ADD) fd %d: %s", fd, strerror(errno));
        conn_close(c, "epoll_ctl failed");
        return NULL;
    }
    if (reject) {
        send_error(c, false, "503 too many connections: max_connections is %" PRIu32,
                   w->cfg->max_connections);
    } else if (w->draining) {
        send_error(c, false, "503 server shutting down");
    }
    conn_run(c);
    return c;
}

void conn_abort(struct conn *c, const char *reason)
{
    if (c->state == CONN_CLOSED)
        return;
    conn_close(c, reason);
}

/* The one place a connection's resources are released. */
static void conn_close(struct conn *c, const char *reason)
{
    struct worker *w = c->w;
    if (c->state == CONN_CLOSED)
        return;
    log_debug("fd %d: close (%s)", c->fd, reason);
    timer_entry_unlink(&c->timer);
    c->timer_kind = TIMER_NONE;
    buf_pool_put(&w->in_pool, c->in);
    buf_pool_put(&w->out_pool, c->out);
    pipe_pool_put(&w->pipes, c->pipe);
    c->in = c->out = NULL;
    c->pipe = NULL;
    /* close() also removes the fd from the epoll set: it is never dup'ed. */
    close(c->fd);
    c->fd = -1;
    c->state = CONN_CLOSED;
    w->nconns--;
    if (!c->rejecting) {
        atomic_fetch_sub_explicit(w->conns_global, 1, memory_order_relaxed);
        stats_add(&w->stats->connections_current, (uint64_t)-1);
    }
    worker_release(w, c);
}
