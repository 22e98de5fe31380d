/* worker.c - one worker thread: its epoll loop, its inbox, its timers.
 *
 * A loop turn: wait for events (or the earliest timer, or at most
 * WORKER_TICK_MS so the watchdog heartbeat keeps moving), run the connections
 * that have events, then those left over from the previous turn (fairness:
 * a connection gets a bounded number of rounds per turn), then expire timers,
 * then free the connections closed during the turn.
 */
#include "server/worker.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/log.h"
#include "common/net.h"
#include "server/conn.h"

/* Events taken from epoll per turn. */
#define WORKER_EVENTS_MAX 256
/* Longest sleep of an idle worker: bounds how stale its heartbeat gets. */
#define WORKER_TICK_MS 500
/* Free buffers a pool keeps for reuse; beyond this they go back to malloc. */
#define WORKER_POOL_KEEP 64
/* Buffer sizes: large enough that one recv() carries many small frames and
 * bulk ECHO moves in big chunks, small enough that a busy connection's two
 * buffers stay cheap. */
#define WORKER_IN_BUF_SIZE (64 * 1024)
#define WORKER_OUT_BUF_SIZE (64 * 1024)
/* Pipes for splice: 1 MiB moves a large ECHO in few calls (the default
 * pipe-max-size, so it needs no privilege); a few are kept open per worker. */
#define WORKER_PIPE_SIZE (1024 * 1024)
#define WORKER_PIPES_KEEP 8
/* A STATS reply is built whole in the output buffer. */
_Static_assert(FRAME_HEADER_SIZE + STATS_JSON_MAX(CONFIG_WORKERS_MAX) <= WORKER_OUT_BUF_SIZE,
               "STATS for the most workers must fit one output buffer");
/* nginx's lingering_timeout is 5 s; ours bounds the whole lingering close. */
#define WORKER_LINGER_MS 5000
/* Inbox messages taken under the lock at a time. */
#define WORKER_INBOX_BATCH 64

/* Read the clock once for the turn: now_ms for the timers, now_ns for the
 * latency histograms. */
static void read_clock(struct worker *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    w->now_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    w->now_ms = w->now_ns / 1000000;
}

uint64_t worker_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t worker_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t seconds_to_ms(double s)
{
    return (uint64_t)(s * 1000.0 + 0.5);
}

static void apply_timeouts(struct worker *w)
{
    w->timers[TIMER_IDLE].duration_ms = seconds_to_ms(w->cfg->idle_timeout);
    w->timers[TIMER_READ].duration_ms = seconds_to_ms(w->cfg->read_timeout);
    w->timers[TIMER_WRITE].duration_ms = seconds_to_ms(w->cfg->write_timeout);
    w->timers[TIMER_LINGER].duration_ms = WORKER_LINGER_MS;
}

int worker_init(struct worker *w, unsigned id, struct config *cfg, struct stats *stats,
                atomic_uint *conns_global)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->epfd = -1;
    w->wakefd = -1;
    w->cfg = config_ref(cfg);
    w->stats = &stats->workers[id];
    w->all_stats = stats;
    w->conns_global = conns_global;
    buf_pool_init(&w->in_pool, WORKER_IN_BUF_SIZE, WORKER_POOL_KEEP);
    buf_pool_init(&w->out_pool, WORKER_OUT_BUF_SIZE, WORKER_POOL_KEEP);
    buf_pool_init(&w->state_pool, CONN_STATE_MAX, WORKER_POOL_KEEP);
    http_date_init(&w->http_date);
    pipe_pool_init(&w->pipes, WORKER_PIPE_SIZE, WORKER_PIPES_KEEP);
    for (int k = 0; k < TIMER_KINDS; k++)
        timer_list_init(&w->timers[k], 0);
    apply_timeouts(w);
    read_clock(w);
    atomic_store(&w->heartbeat_ms, w->now_ms);

    const char *stall = getenv("ECHOD_DEBUG_STALL_WORKER");
    if (id == 0 && stall != NULL)
        w->stall_after_s = atof(stall);

    int err = pthread_mutex_init(&w->inbox_lock, NULL);
    if (err != 0)
        return -err;
    w->inbox = calloc(WORKER_INBOX_SIZE, sizeof(*w->inbox));
    if (w->inbox == NULL)
        return -ENOMEM;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0)
        return -errno;
    w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wakefd < 0)
        return -errno;
    /* data.ptr NULL marks the wake-up fd; connections carry their struct. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev) < 0)
        return -errno;
    return 0;
}

int worker_enqueue(struct worker *w, const struct worker_msg *msg)
{
    pthread_mutex_lock(&w->inbox_lock);
    if (w->inbox_len == WORKER_INBOX_SIZE) {
        pthread_mutex_unlock(&w->inbox_lock);
        return -EAGAIN;
    }
    bool was_empty = w->inbox_len == 0;
    w->inbox[(w->inbox_head + w->inbox_len) % WORKER_INBOX_SIZE] = *msg;
    w->inbox_len++;
    pthread_mutex_unlock(&w->inbox_lock);
    /* Only the first message of a batch needs to wake the worker: it
     * empties the whole inbox once awake. */
    return was_empty;
}

void worker_wake(struct worker *w)
{
    uint64_t one = 1;
    while (write(w->wakefd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

int worker_submit(struct worker *w, const struct worker_msg *msg)
{
    int rc = worker_enqueue(w, msg);
    if (rc > 0)
        worker_wake(w);
    return rc < 0 ? rc : 0;
}

void worker_schedule(struct worker *w, struct conn *c)
{
    if (c->queued)
        return;
    c->queued = true;
    c->next_ready = w->ready;
    w->ready = c;
}

void worker_release(struct worker *w, struct conn *c)
{
    /* A queued connection is freed by the ready-queue walk, which still
     * holds it; any other goes on the dead list, freed at the end of the turn. */
    if (c->queued)
        return;
    c->next_ready = w->dead;
    w->dead = c;
}

static void start_drain(struct worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    w->drain_deadline_ms = w->now_ms + seconds_to_ms(w->cfg->drain_timeout);
    /* Every open connection is in exactly one timer list. */
    for (int k = TIMER_IDLE; k < TIMER_KINDS; k++) {
        struct timer_list *l = &w->timers[k];
        for (struct timer_entry *e = l->head.next; e != &l->head; e = e->next)
            conn_drain((struct conn *)((char *)e - offsetof(struct conn, timer)));
    }
}

static void handle_msg(struct worker *w, struct worker_msg *m)
{
    switch (m->kind) {
    case WORKER_MSG_CONN:
    case WORKER_MSG_REJECT: {
        /* TCP_NODELAY and SO_KEEPALIVE came with the socket from its
         * listening socket (see listener.c). */
        const struct proto_ops *ops = proto_ops_of((enum proto_kind)m->proto);
        if (ops == NULL) {      /* the listener only hands off served protocols */
            close(m->fd);
            break;
        }
        conn_open(w, m->fd, ops,
                  m->kind == WORKER_MSG_REJECT ? (enum proto_reject)m->reject : PROTO_REJECT_NONE);
        break;
    }
    case WORKER_MSG_RELOAD:
        config_unref(w->cfg);
        w->cfg = m->cfg;
        apply_timeouts(w);
        break;
    case WORKER_MSG_DRAIN:
        start_drain(w);
        break;
    }
}

static void drain_inbox(struct worker *w)
{
    uint64_t count;
    /* Reset the eventfd before taking messages: a message posted after this
     * read writes it again, so none is left unnoticed. */
    while (read(w->wakefd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    for (;;) {
        struct worker_msg batch[WORKER_INBOX_BATCH];
        unsigned n = 0;
        pthread_mutex_lock(&w->inbox_lock);
        while (n < WORKER_INBOX_BATCH && w->inbox_len > 0) {
            batch[n++] = w->inbox[w->inbox_head];
            w->inbox_head = (w->inbox_head + 1) % WORKER_INBOX_SIZE;
            w->inbox_len--;
        }
        pthread_mutex_unlock(&w->inbox_lock);
        if (n == 0)
            return;
        for (unsigned i = 0; i < n; i++)
            handle_msg(w, &batch[i]);
    }
}

static void run_ready(struct worker *w)
{
    struct conn *c = w->ready;
    w->ready = NULL;
    while (c != NULL) {
        struct conn *next = c->next_ready;
        c->queued = false;
        if (c->state == CONN_CLOSED)
            free(c);
        else
            conn_run(c);
        c = next;
    }
}

static void expire_timers(struct worker *w)
{
    struct timer_entry *e;
    for (int k = TIMER_IDLE; k < TIMER_HOLD; k++) {
        while ((e = timer_list_expired(&w->timers[k], w->now_ms)) != NULL)
            conn_on_timeout((struct conn *)((char *)e - offsetof(struct conn, timer)));
    }
    while ((e = timer_list_due(&w->timers[TIMER_HOLD], w->now_ms)) != NULL)
        conn_on_timeout((struct conn *)((char *)e - offsetof(struct conn, timer)));
}

static void free_dead(struct worker *w)
{
    while (w->dead != NULL) {
        struct conn *c = w->dead;
        w->dead = c->next_ready;
        free(c);
    }
}

static void abort_all(struct worker *w, const char *reason)
{
    for (int k = TIMER_IDLE; k < TIMER_KINDS; k++) {
        struct timer_list *l = &w->timers[k];
        while (l->head.next != &l->head)
            conn_abort((struct conn *)((char *)l->head.next - offsetof(struct conn, timer)), reason);
    }
}

static int next_timeout_ms(struct worker *w)
{
    if (w->ready != NULL)
        return 0;
    uint64_t wait = WORKER_TICK_MS;
    for (int k = TIMER_IDLE; k < TIMER_HOLD; k++) {
        uint64_t t = timer_list_wait_ms(&w->timers[k], w->now_ms);
        if (t < wait)
            wait = t;
    }
    uint64_t due = timer_list_due_wait_ms(&w->timers[TIMER_HOLD], w->now_ms);
    if (due < wait)
        wait = due;
    if (w->draining) {
        uint64_t t = w->drain_deadline_ms > w->now_ms ? w->drain_deadline_ms - w->now_ms : 0;
        if (t < wait)
            wait = t;
    }
    return (int)wait;
}

/* ECHOD_DEBUG_STALL_WORKER=<seconds>: worker 0 hangs after that long, so the
 * watchdog tests can see the pings stop. Never set in production. */
static void debug_stall(struct worker *w, uint64_t started_ms)
{
    if (w->stall_after_s <= 0 || w->now_ms - started_ms < seconds_to_ms(w->stall_after_s))
        return;
    log_warn("worker %u: stalling on purpose (ECHOD_DEBUG_STALL_WORKER)", w->id);
    for (;;)
        sleep(1);
}

/* Once per busy turn: how long the turn took (one clock read), and what
 * the pools have lent, for /metrics. */
static void publish_gauges(struct worker *w)
{
    struct stats_worker *s = w->stats;
    metrics_hist_observe(&s->turn, worker_now_ns() - w->now_ns);
    atomic_store_explicit(&s->buffers_in_use, w->in_pool.lent + w->out_pool.lent,
                          memory_order_relaxed);
    atomic_store_explicit(&s->pipes_in_use, w->pipes.lent, memory_order_relaxed);
    atomic_store_explicit(&s->states_in_use, w->state_pool.lent, memory_order_relaxed);
}

int worker_turn(struct worker *w, int max_wait_ms)
{
    struct epoll_event events[WORKER_EVENTS_MAX];
    int wait = next_timeout_ms(w);
    if (max_wait_ms >= 0 && max_wait_ms < wait)
        wait = max_wait_ms;
    int n = epoll_wait(w->epfd, events, WORKER_EVENTS_MAX, wait);
    if (n < 0 && errno != EINTR) {
        log_error("worker %u: epoll_wait: %s", w->id, strerror(errno));
        return -1;
    }
    read_clock(w);
    for (int i = 0; i < n; i++) {
        if (events[i].data.ptr == NULL)
            drain_inbox(w);
        else
            conn_on_events(events[i].data.ptr, events[i].events);
    }
    run_ready(w);
    expire_timers(w);
    free_dead(w);
    if (n > 0)
        publish_gauges(w);
    return 0;
}

void worker_close_all(struct worker *w, const char *reason)
{
    abort_all(w, reason);
    run_ready(w);
    free_dead(w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint64_t started_ms = worker_now_ms();

    for (;;) {
        read_clock(w);
        atomic_store_explicit(&w->heartbeat_ms, w->now_ms, memory_order_relaxed);
        debug_stall(w, started_ms);
        if (w->draining && (w->nconns == 0 || w->now_ms >= w->drain_deadline_ms))
            break;
        if (worker_turn(w, -1) < 0)
            break;
    }
    if (w->nconns > 0)
        log_warn("worker %u: drain_timeout reached, closing %u connections", w->id, w->nconns);
    worker_close_all(w, "drain timeout");
    return NULL;
}

int worker_start(struct worker *w)
{
    int err = pthread_create(&w->thread, NULL, worker_main, w);
    return -err;
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
}

void worker_destroy(struct worker *w)
{
    /* Connections handed off but never taken (the worker stopped first). */
    for (; w->inbox != NULL && w->inbox_len > 0; w->inbox_len--) {
        struct worker_msg *m = &w->inbox[w->inbox_head];
        w->inbox_head = (w->inbox_head + 1) % WORKER_INBOX_SIZE;
        if (m->kind == WORKER_MSG_CONN || m->kind == WORKER_MSG_REJECT)
            close(m->fd);
        else if (m->kind == WORKER_MSG_RELOAD)
            config_unref(m->cfg);
    }
    buf_pool_destroy(&w->in_pool);
    buf_pool_destroy(&w->out_pool);
    buf_pool_destroy(&w->state_pool);
    pipe_pool_destroy(&w->pipes);
    config_unref(w->cfg);
    free(w->inbox);
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->wakefd >= 0)
        close(w->wakefd);
    pthread_mutex_destroy(&w->inbox_lock);
}
