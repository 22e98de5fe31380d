/* conn.h - one client connection: the state machine from first byte to close.
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
 */
#ifndef ECHOD_CONN_H
#define ECHOD_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/frame.h"
#include "server/pipe_pool.h"
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
    struct splice_pipe *pipe;   /* while a large ECHO streams with splice(2) */
    struct frame_decoder dec;
    int fd;
    uint8_t state;              /* enum conn_state */
    uint8_t timer_kind;         /* enum timer_kind */
    uint8_t frame_seq;          /* frames completed (mod 256): restarts the read timer */
    uint8_t timer_seq;          /* frame_seq when the read timer started */
    bool readable : 1;          /* the socket may have input (edge-triggered) */
    bool writable : 1;          /* the socket may take output */
    bool peer_eof : 1;          /* recv() returned 0 */
    bool rdhup : 1;             /* epoll saw the peer's FIN: read on to reach it */
    bool reply_started : 1;     /* the current ECHO's reply header is out */
    bool stats_pending : 1;     /* a STATS reply waits for room */
    bool queued : 1;            /* in the ready queue */
    bool draining : 1;          /* the server is shutting down */
    bool drain_wait_frame : 1;  /* ... but a frame begun before that completes */
    bool rejecting : 1;         /* accepted over the limit: 503, then close */
    bool pipe_ok : 1;           /* splice may be tried (a pipe could be had) */
    bool linger : 1;            /* the peer may still be sending: lingering close */
};

/* Take ownership of fd (non-blocking) and start serving it. NULL when out of
 * memory (fd is then closed). With reject set, answer 503 and close. */
struct conn *conn_open(struct worker *w, int fd, bool reject);

/* epoll reported events for this connection. */
void conn_on_events(struct conn *c, uint32_t events);
/* Continue where a previous turn stopped (the ready queue). */
void conn_run(struct conn *c);
/* The timer of kind c->timer_kind expired. */
void conn_on_timeout(struct conn *c);
/* The server is shutting down: finish the frame in progress, then close.
 * Only marks the connection and queues it; it runs on the next turn. */
void conn_drain(struct conn *c);
/* Close now, whatever is pending (drain deadline, worker exit). */
void conn_abort(struct conn *c, const char *reason);

#endif
