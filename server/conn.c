/* conn.c - one connection's transport: reading, writing, splicing, timers,
 * backpressure and closing, the same for every protocol (proto.h).
 *
 * Data flows one way: recv() into the input buffer -> the protocol's
 * on_input decodes it and queues replies into the output buffer (bytes that
 * are their own reply, such as echoed payloads, are copied once, or sent
 * straight from the input buffer when nothing is queued ahead of them) ->
 * send(). When the output buffer has no room the protocol stops decoding, the
 * input buffer fills, and reading stops: that is the backpressure, and it is
 * why a connection never holds more than its two buffers whatever the
 * request sizes. Long runs of verbatim bytes skip user space altogether:
 * socket -> pipe -> socket with splice(2).
 *
 * Closing: replies first, then shutdown(SHUT_WR); if the peer has not sent its
 * EOF yet we keep reading and discarding for a bounded time (a lingering
 * close, as nginx does), because close() on a socket with unread input sends
 * an RST that can destroy replies the peer has not read yet.
 */
#include "server/conn.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "server/listener.h"
#include "server/worker.h"

/* A connection's struct is all an idle connection costs; keep it small. */
_Static_assert(sizeof(struct conn) <= 128, "struct conn over its size budget");

/* A chunk of echoed bytes at least this large is sent straight from the
 * input buffer when no earlier reply is waiting, instead of being copied. */
#define PASSTHROUGH_MIN 4096
/* Read/decode/send rounds per turn before yielding to other connections. */
#define CONN_TURN_ROUNDS 16
/* A verbatim run (splice_len) at least this long, with nothing buffered
 * ahead of it, streams socket -> pipe -> socket with splice(2): its bytes
 * never enter user space. Shorter ones are cheaper to copy. Once streaming,
 * the run goes on through the pipe to its end. */
#define SPLICE_MIN (64 * 1024)
/* Reads of discarded input per turn while lingering. */
#define LINGER_READS_PER_TURN 16

static void conn_close(struct conn *c, const char *reason);
static void observe_latency(struct conn *c);

/* Latency stamps: ns >> 10, about a microsecond each, in 32 bits so that
 * struct conn stays small; the histogram's finest bucket is 10 us. */
#define CONN_STAMP_SHIFT 10
static inline uint32_t stamp(uint64_t ns)
{
    return (uint32_t)(ns >> CONN_STAMP_SHIFT);
}

/* ---- output, for the protocols ------------------------------------------ */

struct buf *conn_out_buf(struct conn *c)
{
    if (c->out == NULL) {
        c->out = buf_pool_get(&c->w->out_pool);
        if (c->out == NULL)
            conn_abort(c, "out of memory");
    }
    return c->out;
}

size_t conn_out_room(const struct conn *c)
{
    if (c->out == NULL)
        return c->w->out_pool.cap;
    return c->out->cap - buf_len(c->out);
}

bool conn_out_put(struct conn *c, const void *p, size_t n)
{
    struct buf *b = conn_out_buf(c);
    if (b == NULL)
        return false;
    if (buf_append(b, p, n) < 0) {
        conn_abort(c, "output overflow");
        return false;
    }
    return true;
}

size_t conn_echo(struct conn *c, const uint8_t *p, size_t n)
{
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
    size_t room = conn_out_room(c);
    if (copy > room)
        copy = room;
    if (copy > 0 && !conn_out_put(c, p + taken, copy))
        return n;
    return taken + copy;
}

void conn_request_done(struct conn *c, enum stats_request_kind kind, uint32_t n)
{
    stats_add(&c->w->stats->requests_by_kind[kind], n);
    if (c->pending == 0)
        c->pending_since = stamp(c->w->now_ns);
    c->pending += n;
    c->req_seq = (uint8_t)(c->req_seq + n);
    c->drain_finish = false;
    stats_add(&c->w->stats->requests_total, n);
    stats_add(&c->w->stats->requests_by_proto[c->ops->kind], n);
}

void conn_count_error(struct conn *c, enum stats_error_kind kind)
{
    stats_add(&c->w->stats->errors_total, 1);
    stats_add(&c->w->stats->errors_by_kind[kind], 1);
}

void conn_stop_input(struct conn *c, bool linger)
{
    if (c->state != CONN_OPEN)
        return;
    c->state = CONN_FINISHING;
    c->linger = linger;
}

void *conn_state_borrow(struct conn *c, size_t size)
{
    if (size > CONN_STATE_MAX) {
        conn_abort(c, "protocol state over CONN_STATE_MAX");
        return NULL;
    }
    struct buf *b = buf_pool_get(&c->w->state_pool);
    if (b == NULL) {
        conn_abort(c, "out of memory");
        return NULL;
    }
    memset(b->data, 0, size);
    return b->data;
}

void conn_state_return(struct conn *c, void *state)
{
    if (state != NULL)
        buf_pool_put(&c->w->state_pool, (struct buf *)((char *)state - offsetof(struct buf, data)));
}

uint64_t conn_now_ms(const struct conn *c)
{
    return c->w->now_ms;
}

void conn_hold(struct conn *c, uint64_t due_ms)
{
    timer_entry_unlink(&c->timer);
    c->timer_kind = TIMER_HOLD;
    c->held = true;
    timer_list_insert_due(&c->w->timers[TIMER_HOLD], &c->timer, due_ms);
}

/* ---- the socket ---------------------------------------------------------- */

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

static bool can_read(const struct conn *c)
{
    return c->state == CONN_OPEN && c->readable && !c->peer_eof && !c->held &&
           (!c->draining || c->drain_finish);
}

/* Bytes the protocol wants spliced, when nothing is buffered ahead of them. */
static uint64_t splice_wanted(const struct conn *c)
{
    if (c->state != CONN_OPEN || c->peer_eof || c->ops->splice_len == NULL)
        return 0;
    return c->ops->splice_len(c);
}

static bool splice_eligible(const struct conn *c)
{
    if ((c->in != NULL && buf_len(c->in) > 0) || (c->out != NULL && buf_len(c->out) > 0))
        return false;
    return splice_wanted(c) >= SPLICE_MIN;
}

/* One step of zero-copy streaming: pipe -> socket, then socket -> pipe.
 * The pipe goes back to the pool once it is empty and the protocol wants no
 * more spliced (or the peer's EOF cut the stream short). Returns true on
 * progress. */
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
    uint64_t want = p->cap - p->bytes;
    uint64_t wanted = splice_wanted(c);
    if (want > wanted)
        want = wanted;
    if (want > 0 && can_read(c)) {
        ssize_t n = splice(c->fd, NULL, p->wfd, NULL, (size_t)want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            p->bytes += (uint32_t)n;
            stats_add(&c->w->stats->bytes_in, (uint64_t)n);
            if (c->ops->received != NULL)
                c->ops->received(c, (size_t)n);
            c->ops->spliced(c, (size_t)n);
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
    bool stream_over = splice_wanted(c) == 0 || c->peer_eof || c->state != CONN_OPEN ||
                       (c->draining && !c->drain_finish);
    if (p->bytes == 0 && stream_over) {
        pipe_pool_put(&c->w->pipes, p);
        c->pipe = NULL;
        progress = true;
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
        if (c->ops->received != NULL)
            c->ops->received(c, (size_t)n);
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

/* Let the protocol decode; unread input is dropped once it takes no more. */
static bool process_input(struct conn *c)
{
    bool progress = c->ops->on_input(c);
    if (c->state == CONN_CLOSED)
        return true;
    if (c->state != CONN_OPEN && c->in != NULL) {
        buf_pool_put(&c->w->in_pool, c->in);
        c->in = NULL;
    }
    return progress;
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

/* Our replies still in the kernel: written, but not yet acknowledged. */
static bool replies_in_flight(const struct conn *c)
{
    int queued = 0;
    return ioctl(c->fd, SIOCOUTQ, &queued) == 0 && queued > 0;
}

/* Replies are all out: send our FIN, and if we cut the peer off, wait for
 * its FIN while discarding what it still sends. Without a lingering close,
 * input arriving after close() makes the kernel answer with an RST, which
 * also throws away replies it has not delivered yet; so a peer we did not
 * cut off is closed at once only when nothing of ours is still in flight
 * (an idle peer at the idle timeout, or drained between requests). */
static void finish(struct conn *c)
{
    observe_latency(c);
    bool linger = c->linger || replies_in_flight(c);
    if (shutdown(c->fd, SHUT_WR) < 0 || c->peer_eof || !linger) {
        conn_close(c, "done");
        return;
    }
    c->state = CONN_LINGER;
    timer_entry_unlink(&c->timer);
    c->timer_kind = TIMER_LINGER;
    timer_list_append(&c->w->timers[TIMER_LINGER], &c->timer, c->w->now_ms);
    linger_discard(c);
}

/* Choose the timer that applies now (see protocol.md: idle/read/write). */
static void update_timer(struct conn *c, bool progress)
{
    if (c->state == CONN_CLOSED || c->state == CONN_LINGER || c->held)
        return;
    enum timer_kind kind;
    bool pending = (c->out != NULL && buf_len(c->out) > 0) || (c->pipe != NULL && c->pipe->bytes > 0);
    if (pending && !c->writable)
        kind = TIMER_WRITE;
    else if (c->state == CONN_OPEN && c->ops->in_request(c))
        kind = TIMER_READ;
    else
        kind = TIMER_IDLE;

    bool restart = kind != c->timer_kind ||
                   (kind == TIMER_READ && c->timer_seq != c->req_seq) ||
                   (kind != TIMER_READ && progress && c->timer.since_ms != c->w->now_ms);
    if (!restart)
        return;
    timer_entry_unlink(&c->timer);
    c->timer_kind = (uint8_t)kind;
    c->timer_seq = c->req_seq;
    timer_list_append(&c->w->timers[kind], &c->timer, c->w->now_ms);
}

/* Replies all written: the requests behind them go into the latency
 * histogram, timed from the turn that read the oldest (one clock read per
 * batch of replies, not per request). */
static void observe_latency(struct conn *c)
{
    if (c->pending == 0)
        return;
    if ((c->out != NULL && buf_len(c->out) > 0) || (c->pipe != NULL && c->pipe->bytes > 0))
        return;
    /* Unsigned arithmetic modulo 2^32 gives the difference across a wrap. */
    uint64_t took = (uint64_t)(uint32_t)(stamp(worker_now_ns()) - c->pending_since) << CONN_STAMP_SHIFT;
    metrics_hist_observe_n(&c->w->stats->latency[c->ops->kind], took, c->pending);
    c->pending = 0;
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
        if (c->state == CONN_OPEN && !c->held)
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
        /* While a long verbatim run waits to switch to splice, leave its
         * bytes in the socket rather than copying them in. */
        if (can_read(c) && !(c->pipe_ok && splice_wanted(c) >= SPLICE_MIN)) {
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
    observe_latency(c);
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
    if (c->timer_kind >= TIMER_IDLE && c->timer_kind <= TIMER_LINGER)
        stats_add(&c->w->stats->timeouts[c->timer_kind - TIMER_IDLE], 1);
    switch (c->timer_kind) {
    case TIMER_IDLE:
        log_debug("fd %d: idle timeout", c->fd);
        conn_stop_input(c, false);
        break;
    case TIMER_READ:
        c->ops->on_read_timeout(c);
        break;
    case TIMER_WRITE:
        conn_count_error(c, SE_WRITE_TIMEOUT);
        conn_abort(c, "write timeout");
        return;
    case TIMER_HOLD:
        c->held = false;
        break;
    default:
        conn_close(c, "linger time over");
        return;
    }
    /* Leave the expired list whatever happens next. */
    timer_entry_unlink(&c->timer);
    c->timer_kind = TIMER_NONE;
    conn_run(c);
}

/* Bytes the peer sent that wait in the kernel, not yet read. */
static bool input_waiting(const struct conn *c)
{
    int n = 0;
    return ioctl(c->fd, FIONREAD, &n) == 0 && n > 0;
}

void conn_drain(struct conn *c)
{
    if (c->state != CONN_OPEN || c->draining)
        return;
    c->draining = true;
    /* A request in progress is read to its end; so is one that has arrived
     * but not been read yet: a connection that looks idle may have a request
     * in its socket (a balancer reusing it at this very moment), and closing
     * would lose it. */
    c->drain_finish = c->ops->in_request(c) || input_waiting(c);
    worker_schedule(c->w, c);
}

struct conn *conn_open(struct worker *w, int fd, const struct proto_ops *ops,
                       enum proto_reject reject)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        /* Undo what the listener counted for it, as conn_close would. */
        if (reject == PROTO_REJECT_NONE) {
            atomic_fetch_sub_explicit(w->conns_global, 1, memory_order_relaxed);
            listener_client_release(fd);
        }
        close(fd);
        return NULL;
    }
    c->w = w;
    c->fd = fd;
    c->ops = ops;
    c->state = CONN_OPEN;
    /* Writable until a send says otherwise; readable when epoll says so
     * (adding an fd that already has input reports it at once). */
    c->writable = true;
    c->pipe_ok = true;
    c->rejecting = reject != PROTO_REJECT_NONE;
    ops->open(c);
    w->nconns++;
    if (!c->rejecting) {
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
    if (c->rejecting)
        ops->reject(c, reject);
    else if (w->draining)
        ops->reject(c, PROTO_REJECT_DRAINING);
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
    c->ops->close(c);
    buf_pool_put(&w->in_pool, c->in);
    buf_pool_put(&w->out_pool, c->out);
    pipe_pool_put(&w->pipes, c->pipe);
    c->in = c->out = NULL;
    c->pipe = NULL;
    /* Uncount it from its client address (max_connections_per_client)
     * before the fd number can be reused by a new connection. */
    listener_client_release(c->fd);
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
