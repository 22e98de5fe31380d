/* conn.h - one client connection's transport: the state machine from first
 * byte to close, whatever protocol the listener speaks.
 *
 *   OPEN ──(peer EOF, protocol error, drain, idle timeout)──> FINISHING
 *   FINISHING ──(all replies flushed)──> shutdown(SHUT_WR) ──> LINGER when we
 *             cut the peer off (an error, a drain mid-pipeline); otherwise closed
 *   LINGER ──(peer EOF, or LINGER time)──> closed
 *   any state ──(reset, write timeout, send error)──> closed at once
 *
 * An idle connection holds no buffers: input and output buffers are borrowed
 * from the worker's pools only while bytes are in flight, which is how an idle
 * connection costs about sizeof(struct conn).
 *
 * The second half of this header is what a protocol module (proto.h) may
 * call: the output buffer, the verbatim echo of input bytes, the end of a
 * request, and the end of input.
 */
#ifndef ECHOD_CONN_H
#define ECHOD_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "server/pipe_pool.h"
#include "server/proto.h"
#include "server/stats.h"
#include "server/timer.h"

struct worker;

enum conn_state {
    CONN_OPEN,          /* reading requests, answering them */
    CONN_FINISHING,     /* no more requests: flushing the last replies */
    CONN_LINGER,        /* our FIN sent: discarding input until the peer's EOF */
    CONN_CLOSED,        /* fd closed; the struct is freed after this loop turn */
};

struct conn {
    struct timer_entry timer;   /* in the worker's list for timer_kind */
    struct worker *w;
    struct buf *in;             /* received, not yet decoded (NULL when empty) */
    struct buf *out;            /* replies not yet sent (NULL when empty) */
    struct conn *next_ready;    /* worker's ready queue */
    struct splice_pipe *pipe;   /* while bytes stream with splice(2) */
    const struct proto_ops *ops;
    union proto_state p;        /* the protocol's own (proto.h) */
    int fd;
    uint8_t state;              /* enum conn_state */
    uint8_t timer_kind;         /* enum timer_kind */
    uint8_t req_seq;            /* requests completed (mod 256): restarts the read timer */
    uint8_t timer_seq;          /* req_seq when the read timer started */
    uint32_t pending;           /* requests answered whose replies are not all out */
    uint32_t pending_since;     /* the turn that read the oldest of them, in units of
                                 * 1024 ns, modulo 2^32 (conn.c: stamp) */
    bool readable : 1;          /* the socket may have input (edge-triggered) */
    bool writable : 1;          /* the socket may take output */
    bool peer_eof : 1;          /* recv() returned 0 */
    bool rdhup : 1;             /* epoll saw the peer's FIN: read on to reach it */
    bool queued : 1;            /* in the ready queue */
    bool draining : 1;          /* the server is shutting down */
    bool drain_finish : 1;      /* ... but the request begun before that is read whole */
    bool rejecting : 1;         /* accepted over the limit: 503, then close */
    bool pipe_ok : 1;           /* splice may be tried (a pipe could be had) */
    bool linger : 1;            /* the peer may still be sending: lingering close */
    bool held : 1;              /* the protocol waits for a time (conn_hold) */
};

/* Take ownership of fd (non-blocking) and start serving it with the given
 * protocol. NULL when out of memory (fd is then closed). With a reject
 * reason (not PROTO_REJECT_NONE), answer 503 the protocol's way and close. */
struct conn *conn_open(struct worker *w, int fd, const struct proto_ops *ops,
                       enum proto_reject reject);

/* epoll reported events for this connection. */
void conn_on_events(struct conn *c, uint32_t events);
/* Continue where a previous turn stopped (the ready queue). */
void conn_run(struct conn *c);
/* The timer of kind c->timer_kind expired. */
void conn_on_timeout(struct conn *c);
/* The server is shutting down: finish the request in progress, then close.
 * Only marks the connection and queues it; it runs on the next turn. */
void conn_drain(struct conn *c);
/* Close now, whatever is pending (drain deadline, worker exit, failed send). */
void conn_abort(struct conn *c, const char *reason);

/* ---- for protocol modules ------------------------------------------------ */

/* Bytes the output can take now (a whole buffer's worth while none is lent). */
size_t conn_out_room(const struct conn *c);
/* The output buffer, borrowed if needed, to write a reply in place; NULL
 * when out of memory (the connection is then closed). */
struct buf *conn_out_buf(struct conn *c);
/* Append a reply the caller made sure fits (conn_out_room). Returns false
 * when the connection had to be closed (out of memory). */
bool conn_out_put(struct conn *c, const void *p, size_t n);
/* Send input bytes back as they are (an echo): straight from the input
 * buffer with one writev when they are many and nothing waits ahead of them,
 * else copied to the output. Returns how many were taken; fewer than n means
 * the output is full for now. Check c->state: a failed send closes. */
size_t conn_echo(struct conn *c, const uint8_t *p, size_t n);
/* n requests were answered (or their replies queued): counters, the read
 * timer, and the drain's "finish the request in progress". */
void conn_request_done(struct conn *c, enum stats_request_kind kind, uint32_t n);
/* Count an error answered to the client, or that cut it off (errors_total
 * and by kind). */
void conn_count_error(struct conn *c, enum stats_error_kind kind);
/* No more requests on this connection: flush what is queued, then close.
 * linger: the peer may still be sending (we cut it off), so read and drop
 * its bytes for a bounded time before closing, instead of resetting. */
void conn_stop_input(struct conn *c, bool linger);
/* Run again at due_ms (monotonic ms), e.g. a delayed response. While held,
 * no other timer runs for the connection; on_input is called at due_ms. */
void conn_hold(struct conn *c, uint64_t due_ms);
/* Protocol state too large for struct conn, lent by the worker only while
 * a request is in flight (so an idle connection still costs only its
 * struct): a zeroed block of size <= CONN_STATE_MAX, or NULL when out of
 * memory (the connection is then closed). Give it back with conn_state_return. */
#define CONN_STATE_MAX 512
void *conn_state_borrow(struct conn *c, size_t size);
void conn_state_return(struct conn *c, void *state);
/* The worker's clock (read once per loop turn), in monotonic ms. */
uint64_t conn_now_ms(const struct conn *c);

#endif
