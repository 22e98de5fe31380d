/* worker.h - a worker thread: its epoll loop, its hand-off inbox, its timers.
 *
 * The listener (and the main thread, for reloads and shutdown) talk to a
 * worker only through its inbox: a bounded ring of typed messages behind a
 * mutex, plus an eventfd that is written only when the ring goes from empty
 * to non-empty, so a burst of hand-offs costs one wake-up. Everything else a
 * worker touches (its connections, buffer pools, timer lists, counters) is its
 * own, so the request path takes no lock.
 */
#ifndef ECHOD_WORKER_H
#define ECHOD_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "server/config.h"
#include "server/http_response.h"
#include "server/pipe_pool.h"
#include "server/stats.h"
#include "server/timer.h"

struct conn;

enum worker_msg_kind {
    WORKER_MSG_CONN,        /* serve fd */
    WORKER_MSG_REJECT,      /* answer fd with a 503 and close it */
    WORKER_MSG_RELOAD,      /* switch to cfg (the message holds a reference) */
    WORKER_MSG_DRAIN,       /* finish what was read, close everything, exit */
};

struct worker_msg {
    enum worker_msg_kind kind;
    int fd;
    uint8_t proto;          /* enum proto_kind of the listener (CONN, REJECT) */
    uint8_t reject;         /* REJECT: why (enum proto_reject) */
    struct config *cfg;
};

/* Hand-offs a worker can have waiting; beyond it the listener answers 503.
 * A worker drains its inbox on every loop turn, so this only fills if the
 * worker is stuck or the accept rate is extreme. */
#define WORKER_INBOX_SIZE 4096

struct worker {
    unsigned id;
    pthread_t thread;
    int epfd;
    int wakefd;                     /* eventfd: inbox became non-empty */

    pthread_mutex_t inbox_lock;
    struct worker_msg *inbox;       /* ring of WORKER_INBOX_SIZE */
    unsigned inbox_head, inbox_len;

    struct config *cfg;             /* this worker's snapshot (a reference) */
    struct stats_worker *stats;
    struct stats *all_stats;        /* to answer STATS */
    atomic_uint *conns_global;      /* connections open in the whole server */

    struct buf_pool in_pool;
    struct buf_pool out_pool;
    struct buf_pool state_pool;     /* protocol state blocks (conn_state_borrow) */
    struct http_date http_date;     /* the Date line of HTTP responses, once a second */
    struct pipe_pool pipes;
    struct timer_list timers[TIMER_KINDS];
    struct conn *ready;             /* connections with work left over from a turn */
    struct conn *dead;              /* closed connections, freed at the end of a turn */
    uint64_t now_ms;                /* monotonic clock, read once per turn */
    uint64_t now_ns;                /* the same reading, in ns */
    uint32_t nconns;

    bool draining;
    uint64_t drain_deadline_ms;
    bool stop;

    atomic_uint_least64_t heartbeat_ms; /* last loop turn, for the watchdog */
    double stall_after_s;           /* ECHOD_DEBUG_STALL_WORKER (worker 0 only) */
};

/* Set up a worker (not yet running). Returns 0 or -errno. */
int worker_init(struct worker *w, unsigned id, struct config *cfg, struct stats *stats,
                atomic_uint *conns_global) __attribute__((warn_unused_result));
int worker_start(struct worker *w) __attribute__((warn_unused_result));
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);

/* Post a message; returns 0, or -EAGAIN when the inbox is full (the caller
 * keeps ownership of msg->fd and msg->cfg then). Any thread. */
int worker_submit(struct worker *w, const struct worker_msg *msg) __attribute__((warn_unused_result));
/* The same in two steps, so a batch of messages costs one wake-up: queue msg
 * (or -EAGAIN when full) and return 1 if the worker must then be woken with
 * worker_wake (the inbox was empty), 0 if an earlier wake covers it. */
int worker_enqueue(struct worker *w, const struct worker_msg *msg) __attribute__((warn_unused_result));
void worker_wake(struct worker *w);

/* Connections handled since the last call (for choosing the least loaded). */
static inline uint64_t worker_load(const struct worker *w)
{
    return atomic_load_explicit(&w->stats->connections_current, memory_order_relaxed);
}

/* One loop turn, the thread's or a test's: wait for events (at most
 * max_wait_ms, or until the next timer when negative), run the connections,
 * expire timers, free what closed. Returns 0, or -1 when epoll failed. */
int worker_turn(struct worker *w, int max_wait_ms);
/* Close every connection now and free them. */
void worker_close_all(struct worker *w, const char *reason);

uint64_t worker_now_ms(void);
uint64_t worker_now_ns(void);

/* Called by conn.c: */
void worker_schedule(struct worker *w, struct conn *c);    /* run again next turn */
void worker_release(struct worker *w, struct conn *c);     /* free after this turn */

#endif
