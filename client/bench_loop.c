/* bench_loop.c - one echobench load thread: an epoll loop over its connections.
 *
 * A connection keeps a ring of up to `pipeline` requests in flight. A request
 * is not stored as bytes: it is (type, size, offset into the thread's random
 * pattern), so the bytes to send and the bytes expected back are both read
 * from the pattern (client/bench_wire.c encodes them per protocol). Nothing is
 * allocated per request. Replies are checked byte for byte as they arrive, in
 * the pass that parses them (framed through common/frame.c's decoder; raw,
 * redis and memcache against the exact reply expected; http through
 * client/bench_http.c), and a request is a success only when its whole reply
 * matched.
 *
 * Latencies go into the current second's histogram; when a second ends it is
 * added to the thread's total and handed to the main thread (one lock per
 * second) for the per-second series and --hdr-log.
 *
 * Timing. Closed loop: a request's clock starts when it is first offered to
 * sendmsg. Open loop (-R): request k of this thread is due at start + k/rate
 * and its latency runs from that intended time, even when no connection was
 * free to send it (the wrk2 correction for coordinated omission); due requests
 * wait in order for a connection with room in its pipeline.
 *
 * Sockets are edge-triggered (EPOLLIN|EPOLLOUT|EPOLLET, registered once), so a
 * connection is never modified in epoll: reads go on until a short read or
 * EAGAIN, writes until EAGAIN. Pending writes are gathered per loop round
 * (the dirty list) and sent with one sendmsg per connection; small pieces are
 * copied into a scratch buffer so a pipeline batch is a few iovecs.
 *
 * --oneshot: each connection slot runs connect, request, shutdown(SHUT_WR),
 * read to EOF, close; for IPv4 loopback targets the source address is spread
 * over 127/8 with IP_BIND_ADDRESS_NO_PORT so ephemeral ports are not the limit.
 *
 * Limits: replies must come in request order (the protocol says so); the
 * pattern gives PATTERN_PERIOD distinct payloads for one size.
 */
#include "client/bench.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "client/bench_http.h"
#include "common/frame.h"

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
/* Bytes read per recv(2): large, so a burst of pipelined replies is one call. */
#define RECV_BUF_SIZE (256 * 1024)
/* Small request pieces are copied here so a pipeline batch leaves in few iovecs. */
#define SCRATCH_SIZE (64 * 1024)
/* Pieces up to this size are copied into the scratch; larger ones go by pointer. */
#define COPY_MAX 2048
/* iovecs per sendmsg: enough for a deep batch of large payloads. */
#define IOV_BATCH 64
/* Bytes offered to one sendmsg; the socket takes what fits. */
#define WRITE_BATCH_MAX (4u * 1024 * 1024)
/* epoll events taken per wait. */
#define MAX_EVENTS 512
/* The payload pattern repeats with this (prime) period; payload start offsets
 * stay below PATTERN_WINDOW, so the pattern is PATTERN_WINDOW + size_max long. */
#define PATTERN_PERIOD 251
#define PATTERN_WINDOW 16384
/* Housekeeping period: timeouts, progress, the stop checks. */
#define TICK_NS (100 * NS_PER_MS)
/* Pause before a failed connection (or oneshot slot) is tried again. */
#define RETRY_DELAY_NS (50 * NS_PER_MS)
/* Connects in progress at once per thread, so 10,000 connections do not
 * overflow the server's listen backlog (a dropped SYN costs a 1 s retry). */
#define CONNECTS_IN_FLIGHT 256
/* reply_type of an HTTP response with a status other than 2xx. */
#define REPLY_HTTP_STATUS 'H'
/* Source addresses per thread for oneshot spreading: each has its own
 * ephemeral port range toward the target, 4096 x 28k ports. */
#define SOURCE_SPREAD 4096
/* 53 random bits over 2^53: a double uniform in [0, 1). */
#define UNIT_DIVISOR 9007199254740992.0
/* Second octet choices for per-thread source pools (1..254). */
#define SOURCE_POOLS 254
/* A thread with nothing to do still wakes this often to notice the stop flag. */
#define MAX_SLEEP_NS TICK_NS

enum conn_state {
    CS_WAITING,     /* in the waiting list: to connect (or a oneshot slot cooling off) */
    CS_FREE,        /* oneshot: a free slot (in the ready list in open loop) */
    CS_CONNECTING,
    CS_OPEN,
    CS_DONE,        /* the run is over for this connection */
};

/* One request in a connection's ring. */
struct req {
    uint64_t t_ns;          /* intended send time (0: stamp when first written) */
    uint32_t size;          /* payload bytes */
    uint32_t wire_len;      /* request bytes on the wire */
    uint16_t pat_off;       /* where its payload starts in the pattern */
    uint8_t type;           /* FRAME_ECHO or FRAME_PING */
    uint8_t measured;       /* issued after warm-up: counts in the figures */
    uint8_t offered;        /* has been offered to sendmsg */
};

/* List links are connection indexes + 1; 0 ends a list. */
struct fifo {
    uint32_t head, tail;
};

struct conn {
    int fd;
    uint8_t state;
    bool in_ready;          /* linked in the ready list (may be stale; see pop) */
    bool in_dirty;          /* has bytes to write this round */
    bool shut;              /* oneshot: SHUT_WR sent */
    bool reply_bad;         /* the current reply differed from its request */
    bool orphan;            /* an error frame with no request (a 503 at accept) */
    bool closing;           /* an error frame came: the server will close, send no more */
    bool replied;           /* oneshot: the reply is complete (and counted if it failed) */
    bool reply_ok;          /* oneshot: ... and it matched; a success once EOF comes */
    uint8_t reply_type;
    uint8_t code_digits;    /* digits of an error frame's code read so far */
    uint16_t code;
    uint32_t head;          /* ring index of the oldest request */
    uint32_t count;         /* requests in the ring */
    uint32_t written;       /* of those, fully written */
    uint32_t out_off;       /* bytes written of the request after them */
    uint32_t reply_got;     /* payload bytes of the current reply checked */
    uint32_t next_wait, next_ready;
    uint16_t next_off;      /* pattern offset of the next request's payload */
    struct frame_decoder dec;
    struct bench_http_decoder *http;    /* http runs only */
    bool http_until_eof;    /* http: this response's body ends with the connection */
    bool http_close;        /* http: the server said Connection: close */
    uint64_t progress_ns;   /* last sign of life: for the request timeout */
    uint64_t connect_ns;    /* connect() started */
    uint64_t not_before_ns; /* CS_WAITING: earliest next try */
    struct req *ring;
};

struct bench_loop {
    struct bench_thread *t;
    const struct bench_config *cfg;
    struct bench_result *res;
    struct hist *cur;       /* latencies of the current second */
    uint64_t cur_sec;       /* its index in the measured window */
    uint64_t next_sec_ns;   /* when it ends */
    uint64_t sec_ok_base, sec_err_base;     /* res->ok and errors when it began */
    int epfd;
    unsigned n;
    struct conn *conns;
    struct req *rings;
    struct bench_http_decoder *https;   /* http: one per connection */
    uint32_t ring_mask;     /* ring slots per connection - 1 (a power of two) */
    uint32_t fixed_wire_len;    /* every request has this length (0: they vary) */
    uint8_t *pattern;
    struct bench_wire wire; /* the protocol's constant parts */
    bool copy_small;        /* copy small stable pieces (raw: never, so a batch
                             * stays one span of the pattern) */
    uint8_t *rbuf;
    uint8_t *scratch;
    struct conn **dirty;
    unsigned ndirty;
    struct fifo waiting;    /* all with the same delay, so ordered by not_before */
    struct fifo ready;      /* open loop: connections (or oneshot slots) with room */
    unsigned connecting;
    unsigned open;
    uint64_t inflight;      /* requests in all rings (oneshot: connections under way) */
    uint64_t rng;
    uint64_t now;
    uint64_t warmup_end_ns;
    uint64_t end_ns;        /* no request is issued at or after this (UINT64_MAX: -n) */
    uint64_t scheduled;     /* open loop: requests scheduled so far */
    double interval_ns;     /* open loop: ns between this thread's requests */
    uint64_t measured_issued;
    uint64_t last_progress_ns;
    uint64_t next_tick_ns;
    uint64_t drain_deadline_ns;
    uint64_t source_counter;
    uint32_t source_pool;
    bool stopping;          /* past the end (or -n done): finishing what is in flight */
    bool halted;            /* interrupted or stalled: not even due requests go out */
};

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: fast, and good enough to pick sizes and request types. */
static uint64_t rng_next(struct bench_loop *L)
{
    L->rng ^= L->rng >> 12;
    L->rng ^= L->rng << 25;
    L->rng ^= L->rng >> 27;
    return L->rng * UINT64_C(2685821657736338717);
}

static uint32_t conn_index(const struct bench_loop *L, const struct conn *c)
{
    return (uint32_t)(c - L->conns);
}

static void fifo_push(struct bench_loop *L, struct fifo *f, struct conn *c, bool ready)
{
    uint32_t link = conn_index(L, c) + 1;
    if (ready)
        c->next_ready = 0;
    else
        c->next_wait = 0;
    if (f->tail == 0) {
        f->head = f->tail = link;
        return;
    }
    struct conn *tail = &L->conns[f->tail - 1];
    if (ready)
        tail->next_ready = link;
    else
        tail->next_wait = link;
    f->tail = link;
}

static struct conn *fifo_peek(struct bench_loop *L, const struct fifo *f)
{
    return f->head == 0 ? NULL : &L->conns[f->head - 1];
}

static struct conn *fifo_pop(struct bench_loop *L, struct fifo *f, bool ready)
{
    if (f->head == 0)
        return NULL;
    struct conn *c = &L->conns[f->head - 1];
    f->head = ready ? c->next_ready : c->next_wait;
    if (f->head == 0)
        f->tail = 0;
    return c;
}

static void mark_dirty(struct bench_loop *L, struct conn *c)
{
    if (!c->in_dirty) {
        c->in_dirty = true;
        L->dirty[L->ndirty++] = c;
    }
}

static void count_error(struct bench_loop *L, enum bench_err kind, uint64_t n)
{
    L->res->errors[kind] += n;
}

/* ---- issuing requests ---------------------------------------------------- */

/* Open loop: the time of the next scheduled request. */
static uint64_t next_due_ns(const struct bench_loop *L)
{
    return L->t->start_ns + (uint64_t)((double)L->scheduled * L->interval_ns);
}

/* May another request be issued now (or at intended time t, open loop)? */
static bool can_issue(struct bench_loop *L, uint64_t t)
{
    if (L->halted || t >= L->end_ns)
        return false;
    if (L->t->requests > 0 && t >= L->warmup_end_ns && L->measured_issued >= L->t->requests)
        return false;
    return true;
}

static bool oneshot_mode(const struct bench_loop *L)
{
    return L->cfg->oneshot;
}

/* Bytes of request r on the wire. */
static uint32_t request_wire_len(const struct bench_loop *L, const struct req *r)
{
    uint8_t tmp[BENCH_TMP_MAX];
    struct bench_piece piece[BENCH_PIECES_MAX];
    uint32_t len;
    (void)bench_wire_request(&L->wire, r->type, r->size, r->pat_off, tmp, piece, &len);
    return len;
}

/* Put a new request in c's ring. t = intended send time, 0 for "when written". */
static void conn_enqueue(struct bench_loop *L, struct conn *c, uint64_t t)
{
    const struct bench_config *cfg = L->cfg;
    struct req *r = &c->ring[(c->head + c->count) & L->ring_mask];
    r->t_ns = t;
    r->offered = 0;
    r->size = cfg->size_min;
    if (cfg->size_max > cfg->size_min)
        r->size += (uint32_t)(rng_next(L) % ((uint64_t)cfg->size_max - cfg->size_min + 1));
    r->type = FRAME_ECHO;
    if (cfg->ping_ratio > 0 &&
        (double)(rng_next(L) >> 11) / UNIT_DIVISOR < cfg->ping_ratio) {
        r->type = FRAME_PING;
        r->size = 0;
    }
    /* Payloads follow each other in the periodic pattern, so a batch of raw
     * requests is one contiguous span (one iovec, no copy); the period is
     * prime, so consecutive payloads of one size still differ. */
    r->pat_off = c->next_off;
    uint32_t next = (uint32_t)c->next_off + r->size;
    c->next_off = (uint16_t)(next < PATTERN_WINDOW ? next : next % PATTERN_PERIOD);
    r->wire_len = L->fixed_wire_len != 0 ? L->fixed_wire_len : request_wire_len(L, r);
    uint64_t when = t != 0 ? t : L->now;
    r->measured = when >= L->warmup_end_ns;
    if (r->measured)
        L->measured_issued++;
    if (c->count == 0)
        c->progress_ns = L->now;
    c->count++;
    L->inflight++;
    L->res->issued++;
    mark_dirty(L, c);
}

/* Closed loop: fill c's pipeline. */
static void conn_refill(struct bench_loop *L, struct conn *c)
{
    uint32_t room = c->count < L->cfg->pipeline ? L->cfg->pipeline - c->count : 0;
    if (room == 0 || c->closing || !can_issue(L, L->now))
        return;
    if (L->fixed_wire_len == 0 || L->now < L->warmup_end_ns) {
        while (c->count < L->cfg->pipeline && !c->closing && can_issue(L, L->now))
            conn_enqueue(L, c, 0);
        return;
    }
    /* Fixed requests, measured: the same request `room` times (up to what
     * -n leaves), with no per-request decisions. */
    if (L->t->requests > 0 && L->t->requests - L->measured_issued < room)
        room = (uint32_t)(L->t->requests - L->measured_issued);
    uint32_t size = L->cfg->size_min;
    uint32_t off = c->next_off;
    for (uint32_t i = 0; i < room; i++) {
        struct req *r = &c->ring[(c->head + c->count + i) & L->ring_mask];
        r->t_ns = 0;
        r->offered = 0;
        r->size = size;
        r->type = FRAME_ECHO;
        r->measured = 1;
        r->wire_len = L->fixed_wire_len;
        r->pat_off = (uint16_t)off;
        off += size;
        if (off >= PATTERN_WINDOW)
            off %= PATTERN_PERIOD;
    }
    c->next_off = (uint16_t)off;
    if (c->count == 0)
        c->progress_ns = L->now;
    c->count += room;
    L->inflight += room;
    L->res->issued += room;
    L->measured_issued += room;
    mark_dirty(L, c);
}

/* ---- connections ----------------------------------------------------------- */

static void conn_reset_ring(struct bench_loop *L, struct conn *c)
{
    L->inflight -= c->count;
    c->head = c->count = c->written = c->out_off = 0;
    c->reply_got = 0;
    c->reply_bad = false;
    c->orphan = false;
    c->closing = false;
    c->replied = false;
    c->reply_ok = false;
    c->shut = false;
    c->http_until_eof = false;
    c->http_close = false;
    frame_decoder_init(&c->dec, FRAME_OPEN_LENGTH - 1);
    if (c->http != NULL)
        bench_http_decoder_init(c->http, c->http->head_buf);
}

/* Back to the waiting list after a failure (or for the next oneshot). */
static void conn_wait(struct bench_loop *L, struct conn *c, uint64_t delay_ns)
{
    c->state = CS_WAITING;
    c->not_before_ns = L->now + delay_ns;
    fifo_push(L, &L->waiting, c, false);
}

static void conn_close_fd(struct bench_loop *L, struct conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->state == CS_OPEN)
        L->open--;
    else if (c->state == CS_CONNECTING)
        L->connecting--;
}

static void slot_release(struct bench_loop *L, struct conn *c, uint64_t delay_ns);

/* The connection ends abnormally: its requests fail as `kind` (a oneshot
 * whose reply was already counted adds nothing), and it is retried after
 * delay_ns (a persistent connection always waits RETRY_DELAY_NS). */
static void conn_abort(struct bench_loop *L, struct conn *c, enum bench_err kind,
                       uint64_t delay_ns)
{
    uint64_t failed = c->count;
    if (oneshot_mode(L) && c->replied)
        failed = 0;
    if (failed > 0)
        count_error(L, kind, failed);
    conn_close_fd(L, c);
    conn_reset_ring(L, c);
    if (oneshot_mode(L))
        slot_release(L, c, delay_ns);
    else
        conn_wait(L, c, RETRY_DELAY_NS);
}

static enum bench_err connect_error_kind(int err)
{
    switch (err) {
    case ECONNREFUSED:
    case ENOENT:        /* a unix socket path that does not exist */
        return BENCH_ERR_CONNECT_REFUSED;
    case ETIMEDOUT:
        return BENCH_ERR_CONNECT_TIMEOUT;
    case EADDRNOTAVAIL:
    case EADDRINUSE:
        return BENCH_ERR_PORTS_EXHAUSTED;
    case EMFILE:
    case ENFILE:
        return BENCH_ERR_FD_LIMIT;
    default:
        return BENCH_ERR_CONNECT_OTHER;
    }
}

/* A connect attempt failed with err. A oneshot's request fails with it; a
 * persistent connection just counts the attempt. */
static void conn_connect_failed(struct bench_loop *L, struct conn *c, int err)
{
    enum bench_err kind = connect_error_kind(err);
    if (c->count == 0)
        count_error(L, kind, 1);
    conn_abort(L, c, kind, RETRY_DELAY_NS);
}

static void conn_connected(struct bench_loop *L, struct conn *c);
static void oneshot_try_send(struct bench_loop *L, struct conn *c);

/* Spread oneshot source addresses over 127/8 (IPv4 loopback targets). */
static int bind_spread_source(struct bench_loop *L, int fd)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0)
        return -errno;
    uint32_t host = 1 + (uint32_t)(L->source_counter++ % SOURCE_SPREAD);
    struct sockaddr_in src = {
        .sin_family = AF_INET,
        .sin_addr.s_addr = htonl(BENCH_LOOPBACK_NET | (L->source_pool << 16) | host),
    };
    return bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ? -errno : 0;
}

static void conn_start_connect(struct bench_loop *L, struct conn *c)
{
    const struct bench_config *cfg = L->cfg;
    int fd = socket(cfg->addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->connect_ns = L->now;
    c->progress_ns = L->now;
    if (fd < 0) {
        c->fd = -1;
        c->state = CS_WAITING;   /* not counted as connecting */
        conn_connect_failed(L, c, errno);
        return;
    }
    c->fd = fd;
    c->state = CS_CONNECTING;
    L->connecting++;
    if (cfg->addr.family != AF_UNIX && !cfg->oneshot) {
        int one = 1;
        /* Requests are whole when written: do not let Nagle hold them. (A
         * oneshot's request leaves with its FIN, which Nagle never holds.) */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (cfg->oneshot && cfg->spread_sources) {
        int rc = bind_spread_source(L, fd);
        if (rc < 0) {
            conn_connect_failed(L, c, -rc);
            return;
        }
    }
    int rc = connect(fd, (const struct sockaddr *)&cfg->addr.ss, cfg->addr.len);
    if (rc < 0 && errno != EINPROGRESS) {
        conn_connect_failed(L, c, errno);
        return;
    }
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.ptr = c,
    };
    if (epoll_ctl(L->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        conn_connect_failed(L, c, errno);
        return;
    }
    if (rc == 0)
        conn_connected(L, c);
    else if (cfg->oneshot)
        oneshot_try_send(L, c);
}

/* Oneshot: start a connection carrying one request intended at t (0: now). */
static void oneshot_start(struct bench_loop *L, struct conn *c, uint64_t t)
{
    /* Marked dirty, but nothing is written before the connect completes. */
    conn_enqueue(L, c, t != 0 ? t : L->now);
    if (t != 0 && c->ring[c->head].measured)
        hist_record(&L->res->send_lag, L->now > t ? L->now - t : 0);
    conn_start_connect(L, c);
}

static void conn_connected(struct bench_loop *L, struct conn *c)
{
    L->connecting--;
    L->open++;
    c->state = CS_OPEN;
    c->progress_ns = L->now;
    L->last_progress_ns = L->now;
    L->res->connects++;
    if (L->open > L->res->max_open)
        L->res->max_open = L->open;
    if (oneshot_mode(L)) {
        if (c->count > 0 && c->ring[c->head].measured)
            hist_record(&L->res->connect, L->now - c->connect_ns);
        mark_dirty(L, c);
        return;
    }
    switch (L->cfg->mode) {
    case BENCH_MODE_CLOSED:
        conn_refill(L, c);
        break;
    case BENCH_MODE_OPEN:
        if (!c->in_ready) {
            c->in_ready = true;
            fifo_push(L, &L->ready, c, true);
        }
        break;
    case BENCH_MODE_IDLE:
        break;
    }
}

/* A oneshot slot is free again: it takes the next connection at once (closed
 * loop) or when the schedule says (open loop), after delay_ns if it failed. */
static void slot_release(struct bench_loop *L, struct conn *c, uint64_t delay_ns)
{
    if (delay_ns > 0) {
        conn_wait(L, c, delay_ns);
        return;
    }
    c->state = CS_FREE;
    if (L->cfg->mode == BENCH_MODE_OPEN) {
        if (!c->in_ready) {
            c->in_ready = true;
            fifo_push(L, &L->ready, c, true);
        }
    } else if (can_issue(L, L->now)) {
        oneshot_start(L, c, 0);
    }
}

/* ---- replies --------------------------------------------------------------- */

/* A request answered correctly: counted always, timed if measured. */
static uint64_t errors_sum(const struct bench_result *res)
{
    uint64_t e = 0;
    for (int k = 0; k < BENCH_ERR_KINDS; k++)
        e += res->errors[k];
    return e;
}

/* Hand the current second (and any empty ones up to now) to the main
 * thread, merge it into the thread's total, and start the next. */
static void interval_rotate(struct bench_loop *L, uint64_t now)
{
    struct bench_intervals *iv = L->t->intervals;
    do {
        struct bench_interval *slot = &iv->slot[L->cur_sec % BENCH_INTERVAL_SLOTS];
        uint64_t errors = errors_sum(L->res);
        pthread_mutex_lock(&iv->lock);
        if (slot->full && slot->sec != L->cur_sec)
            atomic_store(&iv->overrun, true);   /* the main thread fell 4 s behind */
        if (!slot->full || slot->sec != L->cur_sec) {
            hist_init(&slot->lat);
            slot->ok = slot->errors = 0;
        }
        slot->sec = L->cur_sec;
        slot->ok += L->res->ok - L->sec_ok_base;
        slot->errors += errors - L->sec_err_base;
        hist_merge(&slot->lat, L->cur);
        slot->full = true;
        pthread_mutex_unlock(&iv->lock);
        hist_merge(&L->res->latency, L->cur);
        if (L->cur->count > 0)
            hist_init(L->cur);
        L->sec_ok_base = L->res->ok;
        L->sec_err_base = errors;
        L->cur_sec++;
        L->next_sec_ns += NS_PER_S;
        atomic_store(&iv->published, L->cur_sec);
    } while (now >= L->next_sec_ns);
}

static void record_success(struct bench_loop *L, const struct req *r)
{
    struct bench_result *res = L->res;
    res->ok_total++;
    if (!r->measured)
        return;
    if (L->now >= L->next_sec_ns)
        interval_rotate(L, L->now);
    res->ok++;
    hist_record(L->cur, L->now > r->t_ns ? L->now - r->t_ns : 0);
    if (r->type == FRAME_ECHO)
        res->payload_bytes += r->size;
    res->last_done_ns = L->now;
}

/* An error frame or a non-2xx HTTP status, counted by its code. */
static void count_error_code(struct bench_loop *L, const struct conn *c, enum bench_err kind)
{
    unsigned code = c->code;
    bool known = c->code_digits == 3 && code >= BENCH_CODE_MIN && code <= BENCH_CODE_MAX;
    L->res->error_codes[known ? code - BENCH_CODE_MIN + 1 : 0]++;
    L->res->errors[kind]++;
}

static void count_error_frame(struct bench_loop *L, const struct conn *c)
{
    count_error_code(L, c, BENCH_ERR_FRAME);
}

/* The oldest request got its whole reply (or an error frame). */
static bool conn_complete_head(struct bench_loop *L, struct conn *c)
{
    struct bench_result *res = L->res;
    if (c->written == 0) {
        /* A reply to a request that was never sent: the server is confused. */
        conn_abort(L, c, BENCH_ERR_MISMATCH, 0);
        return false;
    }
    struct req *r = &c->ring[c->head];
    bool ok = false;
    if (c->reply_type == FRAME_ERROR) {
        /* echobench sends only valid requests, so an error frame is one that
         * ends the connection (413, 408, 503): wait for its EOF. */
        count_error_frame(L, c);
        c->closing = true;
    }
    else if (c->reply_type == REPLY_HTTP_STATUS)
        count_error_code(L, c, BENCH_ERR_HTTP_STATUS);
    else if (c->reply_bad)
        res->errors[BENCH_ERR_MISMATCH]++;
    else
        ok = true;
    if (oneshot_mode(L)) {
        /* A oneshot is done when the server has closed: a success counts at EOF. */
        c->replied = true;
        c->reply_ok = ok;
        c->reply_got = 0;
        return true;
    }
    if (ok)
        record_success(L, r);
    c->head = (c->head + 1) & L->ring_mask;
    c->count--;
    c->written--;
    L->inflight--;
    c->reply_got = 0;
    c->reply_bad = false;
    return true;
}

/* Oneshot EOF after a correct reply: the success, timed to the close. */
static void oneshot_success(struct bench_loop *L, struct conn *c)
{
    record_success(L, &c->ring[c->head]);
}

static void error_code_digits(struct conn *c, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && c->code_digits < 3; i++) {
        if (p[i] < '0' || p[i] > '9') {
            c->code_digits = 4;     /* not a code: counted as "other" */
            return;
        }
        c->code = (uint16_t)(c->code * 10 + (p[i] - '0'));
        c->code_digits++;
    }
}

/* Framed replies; returns false when the connection was failed. */
static bool consume_framed(struct bench_loop *L, struct conn *c, const uint8_t *p, size_t n)
{
    for (;;) {
        struct frame_event ev;
        size_t used = frame_decode(&c->dec, p, n, &ev);
        p += used;
        n -= used;
        switch (ev.kind) {
        case FRAME_EV_NONE:
            return true;
        case FRAME_EV_HEADER: {
            c->reply_type = ev.type;
            c->reply_got = 0;
            c->reply_bad = false;
            c->code = 0;
            c->code_digits = 0;
            if (c->replied || (c->count == 0 && ev.type != FRAME_ERROR)) {
                /* A reply nobody asked for. */
                count_error(L, BENCH_ERR_MISMATCH, 1);
                conn_abort(L, c, BENCH_ERR_MISMATCH, 0);
                return false;
            }
            if (ev.type == FRAME_ERROR) {
                c->orphan = c->count == 0;     /* e.g. 503 sent at accept */
                break;
            }
            const struct req *r = &c->ring[c->head];
            uint32_t want = r->type == FRAME_ECHO ? r->size : 0;
            if (ev.type != r->type || ev.length != want) {
                conn_abort(L, c, BENCH_ERR_MISMATCH, 0);   /* the stream is out of step */
                return false;
            }
            break;
        }
        case FRAME_EV_PAYLOAD:
            if (c->reply_type == FRAME_ERROR) {
                error_code_digits(c, ev.data, ev.size);
            } else if (!c->reply_bad) {
                const struct req *r = &c->ring[c->head];
                if (memcmp(L->pattern + r->pat_off + c->reply_got, ev.data, ev.size) != 0)
                    c->reply_bad = true;
                c->reply_got += (uint32_t)ev.size;
            }
            break;
        case FRAME_EV_END:
            if (c->orphan) {
                count_error_frame(L, c);
                c->orphan = false;
                break;
            }
            if (!conn_complete_head(L, c))
                return false;
            break;
        default:
            conn_abort(L, c, BENCH_ERR_MISMATCH, 0);
            return false;
        }
    }
}

/* HTTP responses: the status must be 2xx; a POST's body must equal what was
 * sent (unless --no-check-body); any body is read to its end. */
static bool consume_http(struct bench_loop *L, struct conn *c, const uint8_t *p, size_t n)
{
    bool check = L->wire.http_post && L->cfg->http_check_body;
    for (;;) {
        struct bench_http_ev ev;
        bool needs_buf;
        size_t used = bench_http_decode(c->http, p, n, &ev, &needs_buf);
        p += used;
        n -= used;
        if (needs_buf) {
            /* A head split across reads: this connection gets a buffer, once. */
            c->http->head_buf = malloc(BENCH_HTTP_RESP_HEAD_MAX);
            if (c->http->head_buf == NULL) {
                conn_abort(L, c, BENCH_ERR_CONNECT_OTHER, 0);
                return false;
            }
            continue;
        }
        switch (ev.kind) {
        case BENCH_HTTP_EV_NONE:
            return true;
        case BENCH_HTTP_EV_HEAD:
            if (c->count == 0 || c->replied) {
                count_error(L, BENCH_ERR_MISMATCH, 1);  /* a response nobody asked for */
                conn_abort(L, c, BENCH_ERR_MISMATCH, 0);
                return false;
            }
            c->reply_type = ev.status >= 200 && ev.status < 300 ? 0 : REPLY_HTTP_STATUS;
            c->code = ev.status;
            c->code_digits = 3;
            c->reply_got = 0;
            c->reply_bad = false;
            c->http_until_eof = ev.until_eof;
            if (ev.close) {
                c->closing = true;      /* send no more: the server closes after this */
                c->http_close = true;
            }
            break;
        case BENCH_HTTP_EV_BODY:
            if (check && c->reply_type == 0 && !c->reply_bad) {
                const struct req *r = &c->ring[c->head];
                if (c->reply_got + ev.size > r->size ||
                    memcmp(L->pattern + r->pat_off + c->reply_got, ev.data, ev.size) != 0)
                    c->reply_bad = true;
            }
            c->reply_got += (uint32_t)ev.size;
            break;
        case BENCH_HTTP_EV_END:
            if (check && c->reply_got != c->ring[c->head].size)
                c->reply_bad = true;
            if (!conn_complete_head(L, c))
                return false;
            break;
        default:
            conn_abort(L, c, BENCH_ERR_MISMATCH, 0);
            return false;
        }
    }
}

/* Replies known in advance (raw, redis, memcache): head, payload, tail,
 * compared byte for byte as they arrive. A payload that differs is a
 * mismatch of that request; a head or tail that differs means the stream is
 * out of step, and the connection is failed. */
/* Raw, persistent, the common case: the replies to the oldest written
 * requests, whole, compared with one memcmp (their payloads lie end to end in
 * the pattern) and completed in one sweep. Returns the bytes taken; 0 leaves
 * everything (a mismatch, a partial reply, a wrap in the pattern) to the
 * request-by-request path. */
static size_t consume_raw_run(struct bench_loop *L, struct conn *c, const uint8_t *p, size_t n)
{
    if (c->reply_bad || c->written == 0)
        return 0;
    const struct req *first = &c->ring[c->head];
    const uint8_t *want = L->pattern + first->pat_off + c->reply_got;
    size_t span = 0;
    uint32_t k = 0, end = first->pat_off;
    while (k < c->written) {
        const struct req *r = &c->ring[(c->head + k) & L->ring_mask];
        if (r->pat_off != end)
            break;      /* the pattern wrapped: the next run starts over */
        size_t need = r->size - (k == 0 ? c->reply_got : 0);
        if (span + need > n)
            break;
        span += need;
        end = (uint32_t)r->pat_off + r->size;
        k++;
    }
    if (k == 0 || memcmp(want, p, span) != 0)
        return 0;
    /* record_success for k requests that all completed at L->now. */
    struct bench_result *res = L->res;
    if (L->now >= L->next_sec_ns)
        interval_rotate(L, L->now);
    uint64_t measured = 0, bytes = 0;
    for (uint32_t i = 0; i < k; i++) {
        const struct req *r = &c->ring[c->head];
        if (r->measured) {
            hist_record(L->cur, L->now > r->t_ns ? L->now - r->t_ns : 0);
            measured++;
            bytes += r->size;
        }
        c->head = (c->head + 1) & L->ring_mask;
    }
    res->ok_total += k;
    res->ok += measured;
    res->payload_bytes += bytes;
    if (measured > 0)
        res->last_done_ns = L->now;
    c->count -= k;
    c->written -= k;
    L->inflight -= k;
    c->reply_got = 0;
    return span;
}

static bool consume_exact(struct bench_loop *L, struct conn *c, const uint8_t *p, size_t n)
{
    bool raw = L->cfg->proto == BENCH_PROTO_RAW;
    if (raw && !oneshot_mode(L)) {
        size_t took = consume_raw_run(L, c, p, n);
        p += took;
        n -= took;
    }
    while (n > 0) {
        if (c->count == 0 || c->replied) {
            count_error(L, BENCH_ERR_MISMATCH, 1);  /* bytes nobody asked for */
            conn_abort(L, c, BENCH_ERR_MISMATCH, 0);
            return false;
        }
        const struct req *r = &c->ring[c->head];
        uint8_t head[BENCH_TMP_MAX];
        const uint8_t *tail = NULL;
        uint32_t hl = 0, pl = r->size, tl = 0;
        if (!raw)
            hl = bench_wire_reply(&L->wire, r->size, head, &tail, &tl, &pl);
        uint32_t pos = c->reply_got;
        size_t take;
        if (pos < hl) {
            take = hl - pos < n ? hl - pos : n;
            if (memcmp(head + pos, p, take) != 0) {
                conn_abort(L, c, BENCH_ERR_MISMATCH, 0);
                return false;
            }
        } else if (pos < hl + pl) {
            take = hl + pl - pos < n ? hl + pl - pos : n;
            if (!c->reply_bad && memcmp(L->pattern + r->pat_off + (pos - hl), p, take) != 0)
                c->reply_bad = true;
        } else {
            take = hl + pl + tl - pos < n ? hl + pl + tl - pos : n;
            if (memcmp(tail + (pos - hl - pl), p, take) != 0) {
                conn_abort(L, c, BENCH_ERR_MISMATCH, 0);
                return false;
            }
        }
        c->reply_got += (uint32_t)take;
        p += take;
        n -= take;
        if (c->reply_got == hl + pl + tl && !conn_complete_head(L, c))
            return false;
    }
    return true;
}

/* The peer closed its side. */
static void conn_eof(struct bench_loop *L, struct conn *c)
{
    if (L->cfg->proto == BENCH_PROTO_HTTP && c->http_until_eof && c->count > 0 && !c->replied) {
        /* A body without a length ends here. */
        bool check = L->wire.http_post && L->cfg->http_check_body;
        if (check && c->reply_got != c->ring[c->head].size)
            c->reply_bad = true;
        c->http_until_eof = false;
        if (!conn_complete_head(L, c))
            return;
    }
    if (!oneshot_mode(L) && c->http_close) {
        /* The server announced the close: the requests behind that response
         * were never taken up, so they are withdrawn, not failed, and the
         * connection is opened again at once. */
        for (uint32_t i = 0; i < c->count; i++)
            if (c->ring[(c->head + i) & L->ring_mask].measured)
                L->measured_issued--;
        L->res->issued -= c->count;
        conn_close_fd(L, c);
        conn_reset_ring(L, c);
        conn_wait(L, c, 0);
        return;
    }
    if (oneshot_mode(L) && c->replied) {
        if (c->reply_ok)
            oneshot_success(L, c);
        conn_close_fd(L, c);
        conn_reset_ring(L, c);
        slot_release(L, c, 0);
        return;
    }
    conn_abort(L, c, BENCH_ERR_CLOSED, 0);
}

/* Read until the socket is empty. peer_shut: the event said the peer closed
 * its side, so read on to the EOF even after a short read. */
static void conn_read(struct bench_loop *L, struct conn *c, bool peer_shut)
{
    for (;;) {
        ssize_t n = recv(c->fd, L->rbuf, RECV_BUF_SIZE, 0);
        if (n > 0) {
            L->res->bytes_in += (uint64_t)n;
            c->progress_ns = L->now;
            L->last_progress_ns = L->now;
            bool ok;
            if (L->cfg->proto == BENCH_PROTO_FRAMED)
                ok = consume_framed(L, c, L->rbuf, (size_t)n);
            else if (L->cfg->proto == BENCH_PROTO_HTTP)
                ok = consume_http(L, c, L->rbuf, (size_t)n);
            else
                ok = consume_exact(L, c, L->rbuf, (size_t)n);
            if (!ok)
                return;
            /* Edge-triggered: a short read means the socket is empty (an
             * EOF arriving later brings its own event). */
            if ((size_t)n < RECV_BUF_SIZE && !peer_shut)
                break;
            continue;
        }
        if (n == 0) {
            conn_eof(L, c);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        conn_abort(L, c, BENCH_ERR_RESET, 0);
        return;
    }
    if (oneshot_mode(L) || c->state != CS_OPEN)
        return;
    if (L->cfg->mode == BENCH_MODE_CLOSED) {
        conn_refill(L, c);
    } else if (L->cfg->mode == BENCH_MODE_OPEN && c->count < L->cfg->pipeline && !c->in_ready &&
               !c->closing) {
        c->in_ready = true;
        fifo_push(L, &L->ready, c, true);
    }
}

/* ---- writing ---------------------------------------------------------------- */

/* Add piece p (l bytes) to the batch: built pieces are copied into the
 * scratch, stable ones extend the last iovec when they continue it (raw
 * payloads laid end to end in the pattern), are copied when small (so a batch
 * of headers and payloads is a few iovecs), or go by pointer. Returns false
 * when the batch is full. */
static bool iov_add(struct bench_loop *L, struct iovec *iov, int *niov, size_t *used,
                    const uint8_t *p, size_t l, bool temp)
{
    struct iovec *last = *niov > 0 ? &iov[*niov - 1] : NULL;
    if (!temp && last != NULL && (const uint8_t *)last->iov_base + last->iov_len == p) {
        last->iov_len += l;
        return true;
    }
    if (temp || (L->copy_small && l <= COPY_MAX)) {
        if (*used + l > SCRATCH_SIZE)
            return false;
        uint8_t *dst = L->scratch + *used;
        memcpy(dst, p, l);
        *used += l;
        if (last != NULL && (uint8_t *)last->iov_base + last->iov_len == dst) {
            last->iov_len += l;
            return true;
        }
        p = dst;
    }
    if (*niov == IOV_BATCH)
        return false;
    iov[*niov].iov_base = (void *)p;
    iov[(*niov)++].iov_len = l;
    return true;
}

/* Gather the unwritten requests of c into iov; returns the iovec count and
 * the byte total in *total. */
static int build_iov(struct bench_loop *L, struct conn *c, struct iovec *iov, size_t *total)
{
    const struct bench_config *cfg = L->cfg;
    int niov = 0;
    size_t used = 0, sum = 0;
    uint32_t skip = c->out_off;
    uint64_t stamp = 0;
    if (cfg->proto == BENCH_PROTO_RAW && !cfg->oneshot && cfg->mode == BENCH_MODE_CLOSED) {
        /* Raw closed loop: payloads by pointer, runs of them one iovec. */
        for (uint32_t i = c->written; i < c->count; i++) {
            struct req *r = &c->ring[(c->head + i) & L->ring_mask];
            if (!r->offered) {
                r->offered = 1;
                if (stamp == 0)
                    stamp = bench_now_ns();
                r->t_ns = stamp;
            }
            const uint8_t *p = L->pattern + r->pat_off + skip;
            size_t l = r->size - skip;
            skip = 0;
            if (niov > 0 && (const uint8_t *)iov[niov - 1].iov_base + iov[niov - 1].iov_len == p) {
                iov[niov - 1].iov_len += l;
            } else {
                if (niov == IOV_BATCH)
                    break;
                iov[niov].iov_base = (void *)p;
                iov[niov++].iov_len = l;
            }
            sum += l;
            if (sum >= WRITE_BATCH_MAX)
                break;
        }
        *total = sum;
        return niov;
    }
    for (uint32_t i = c->written; i < c->count; i++) {
        struct req *r = &c->ring[(c->head + i) & L->ring_mask];
        if (!r->offered) {
            r->offered = 1;
            if (stamp == 0)
                stamp = bench_now_ns();
            if (r->t_ns == 0)
                r->t_ns = stamp;    /* closed loop: the clock starts now */
            else if (r->measured && !cfg->oneshot)
                hist_record(&L->res->send_lag, stamp > r->t_ns ? stamp - r->t_ns : 0);
        }
        uint8_t tmp[BENCH_TMP_MAX];
        struct bench_piece piece[BENCH_PIECES_MAX];
        uint32_t wire_len;
        unsigned npieces;
        if (cfg->proto == BENCH_PROTO_RAW) {
            /* The common benchmark case, without the call. */
            piece[0] = (struct bench_piece){L->pattern + r->pat_off, r->size, false};
            npieces = 1;
        } else {
            npieces = bench_wire_request(&L->wire, r->type, r->size, r->pat_off, tmp, piece,
                                         &wire_len);
        }
        for (unsigned k = 0; k < npieces; k++) {
            const uint8_t *p = piece[k].p;
            size_t l = piece[k].len;
            if (skip >= l) {
                skip -= (uint32_t)l;
                continue;
            }
            p += skip;
            l -= skip;
            skip = 0;
            if (!iov_add(L, iov, &niov, &used, p, l, piece[k].temp))
                goto full;
            sum += l;
            if (sum >= WRITE_BATCH_MAX)
                goto full;
        }
    }
full:
    *total = sum;
    return niov;
}

/* Mark w bytes as written. */
static void advance_written(struct bench_loop *L, struct conn *c, size_t w)
{
    if (L->fixed_wire_len != 0) {
        /* Every request has the same length: no walk over the ring. */
        uint64_t done = (uint64_t)c->out_off + w;
        c->written += (uint32_t)(done / L->fixed_wire_len);
        c->out_off = (uint32_t)(done % L->fixed_wire_len);
        return;
    }
    while (w > 0) {
        const struct req *r = &c->ring[(c->head + c->written) & L->ring_mask];
        size_t left = r->wire_len - c->out_off;
        if (w >= left) {
            w -= left;
            c->written++;
            c->out_off = 0;
        } else {
            c->out_off += (uint32_t)w;
            w = 0;
        }
    }
}

/* Send flags: a oneshot's request is held (MSG_MORE) until shutdown(SHUT_WR)
 * so request and FIN leave in one segment. */
static int send_flags(const struct bench_loop *L)
{
    return MSG_NOSIGNAL | (oneshot_mode(L) ? MSG_MORE : 0);
}

/* Oneshot, right after connect() said EINPROGRESS: on loopback the handshake
 * usually completed inside connect() already, so try the request at once and
 * save a trip through epoll. EAGAIN means "not yet": EPOLLOUT will come. */
static void oneshot_try_send(struct bench_loop *L, struct conn *c)
{
    struct iovec iov[IOV_BATCH];
    size_t total;
    struct msghdr msg = {.msg_iov = iov};
    msg.msg_iovlen = (size_t)build_iov(L, c, iov, &total);
    ssize_t w = sendmsg(c->fd, &msg, send_flags(L));
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_connect_failed(L, c, errno);
        return;
    }
    L->now = bench_now_ns();   /* the connect time ends now */
    conn_connected(L, c);      /* it is: marks c dirty, the flush sends the FIN */
    L->res->bytes_out += (uint64_t)w;
    advance_written(L, c, (size_t)w);
}

static void conn_flush(struct bench_loop *L, struct conn *c)
{
    if (c->state != CS_OPEN)
        return;
    /* A framed PING or empty ECHO is still 5 bytes; a raw request has >= 1. */
    while (c->written < c->count) {
        struct iovec iov[IOV_BATCH];
        size_t total;
        int niov = build_iov(L, c, iov, &total);
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
        ssize_t w = sendmsg(c->fd, &msg, send_flags(L));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;     /* EPOLLOUT (edge) says when to go on */
            conn_abort(L, c, BENCH_ERR_RESET, 0);
            return;
        }
        L->res->bytes_out += (uint64_t)w;
        advance_written(L, c, (size_t)w);
        if ((size_t)w < total)
            return;
    }
    if (oneshot_mode(L) && !c->shut) {
        /* "No more requests": the server answers, then closes. */
        c->shut = true;
        if (shutdown(c->fd, SHUT_WR) < 0)
            conn_abort(L, c, BENCH_ERR_RESET, 0);
    }
}

static void flush_dirty(struct bench_loop *L)
{
    for (unsigned i = 0; i < L->ndirty; i++) {
        struct conn *c = L->dirty[i];
        c->in_dirty = false;
        conn_flush(L, c);
    }
    L->ndirty = 0;
}

/* ---- the loop ----------------------------------------------------------------- */

static void handle_event(struct bench_loop *L, struct conn *c, uint32_t events)
{
    if (c->state == CS_CONNECTING) {
        if (events & (EPOLLERR | EPOLLHUP)) {
            int err = 0;
            socklen_t len = sizeof(err);
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0)
                err = ECONNREFUSED;
            conn_connect_failed(L, c, err);
            return;
        }
        if (!(events & EPOLLOUT))
            return;
        conn_connected(L, c);
    }
    if (c->state != CS_OPEN)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
        conn_read(L, c, (events & (EPOLLRDHUP | EPOLLHUP)) != 0);
        if (c->state != CS_OPEN)
            return;
    }
    if ((events & EPOLLOUT) && c->written < c->count)
        mark_dirty(L, c);
}

/* Open loop: hand every due request to a connection with room. */
static void issue_due(struct bench_loop *L)
{
    for (;;) {
        uint64_t t = next_due_ns(L);
        if (t > L->now || !can_issue(L, t))
            return;
        struct conn *c = fifo_pop(L, &L->ready, true);
        if (c == NULL)
            return;         /* all busy: the request waits, its clock running */
        c->in_ready = false;
        if (oneshot_mode(L)) {
            if (c->state != CS_FREE)
                continue;
            oneshot_start(L, c, t);
        } else {
            if (c->state != CS_OPEN || c->count >= L->cfg->pipeline || c->closing)
                continue;   /* stale entry */
            conn_enqueue(L, c, t);
            if (c->count < L->cfg->pipeline) {
                c->in_ready = true;
                fifo_push(L, &L->ready, c, true);
            }
        }
        L->scheduled++;
    }
}

/* Start connections whose wait is over. */
static void start_waiting(struct bench_loop *L)
{
    struct conn *c;
    while ((c = fifo_peek(L, &L->waiting)) != NULL && c->not_before_ns <= L->now) {
        if (oneshot_mode(L)) {
            fifo_pop(L, &L->waiting, false);
            slot_release(L, c, 0);
            continue;
        }
        if (L->stopping || L->connecting >= CONNECTS_IN_FLIGHT)
            return;
        fifo_pop(L, &L->waiting, false);
        conn_start_connect(L, c);
    }
}

/* Requests or connects that made no progress for timeout_s fail. */
static void check_timeouts(struct bench_loop *L)
{
    uint64_t limit = (uint64_t)(L->cfg->timeout_s * (double)NS_PER_S);
    for (unsigned i = 0; i < L->n; i++) {
        struct conn *c = &L->conns[i];
        if (c->state == CS_CONNECTING && L->now - c->connect_ns > limit)
            conn_connect_failed(L, c, ETIMEDOUT);
        else if (c->state == CS_OPEN && (c->count > 0 || c->closing) &&
                 L->now - c->progress_ns > limit)
            conn_abort(L, c, BENCH_ERR_TIMEOUT, 0);
    }
}

static void publish_progress(struct bench_loop *L)
{
    struct bench_progress *p = &L->t->progress;
    uint64_t errors = 0;
    for (int k = 0; k < BENCH_ERR_KINDS; k++)
        errors += L->res->errors[k];
    atomic_store_explicit(&p->ok_total, L->res->ok_total, memory_order_relaxed);
    atomic_store_explicit(&p->errors, errors, memory_order_relaxed);
    atomic_store_explicit(&p->open, L->open, memory_order_relaxed);
    if (L->cfg->progress) {
        pthread_mutex_lock(&p->lock);
        memcpy(&p->snapshot, &L->res->latency, sizeof(p->snapshot));
        hist_merge(&p->snapshot, L->cur);   /* the second under way too */
        pthread_mutex_unlock(&p->lock);
    }
}

/* Is there nothing more to issue? Then begin the drain. */
static void check_stop(struct bench_loop *L)
{
    bool stop = atomic_load_explicit(L->t->stop, memory_order_relaxed);
    if (stop)
        L->halted = true;   /* even while draining: no late open-loop backlog */
    if (L->stopping)
        return;
    if (L->now >= L->end_ns)
        stop = true;
    if (L->t->requests > 0 && L->measured_issued >= L->t->requests)
        stop = true;
    uint64_t limit = (uint64_t)(L->cfg->timeout_s * (double)NS_PER_S);
    if (L->now - L->last_progress_ns > limit && L->cfg->mode != BENCH_MODE_IDLE &&
        L->end_ns == UINT64_MAX) {
        /* With -n and no end time, a dead server must not hold us forever. */
        L->res->stalled = true;
        L->halted = true;
        stop = true;
    }
    if (stop) {
        L->stopping = true;
        L->drain_deadline_ns = L->now + limit;
    }
}

static bool finished(struct bench_loop *L)
{
    if (!L->stopping)
        return false;
    if (L->cfg->mode == BENCH_MODE_IDLE)
        return true;
    /* Open loop: requests that fell due before the end but found every
     * connection busy still go out, late, their clocks running. */
    bool backlog = L->cfg->mode == BENCH_MODE_OPEN && can_issue(L, next_due_ns(L)) &&
                   next_due_ns(L) <= L->now;
    if (L->inflight == 0 && !backlog)
        return true;
    if (L->now >= L->drain_deadline_ns) {
        count_error(L, BENCH_ERR_TIMEOUT, L->inflight);
        return true;
    }
    return false;
}

static void loop_free(struct bench_loop *L)
{
    if (L == NULL)
        return;
    if (L->conns != NULL) {
        for (unsigned i = 0; i < L->n; i++) {
            if (L->conns[i].fd >= 0)
                close(L->conns[i].fd);
            if (L->conns[i].http != NULL)
                free(L->conns[i].http->head_buf);
        }
    }
    if (L->epfd >= 0)
        close(L->epfd);
    free(L->conns);
    free(L->rings);
    free(L->https);
    free(L->cur);
    free(L->pattern);
    free(L->rbuf);
    free(L->scratch);
    free(L->dirty);
    free(L);
}

int bench_thread_prepare(struct bench_thread *t)
{
    const struct bench_config *cfg = t->cfg;
    struct bench_loop *L = calloc(1, sizeof(*L));
    if (L == NULL)
        return -ENOMEM;
    L->t = t;
    L->cfg = cfg;
    L->res = &t->result;
    L->n = t->connections;
    L->epfd = epoll_create1(EPOLL_CLOEXEC);
    size_t pattern_len = (size_t)cfg->size_max + PATTERN_WINDOW;
    uint32_t slots = 1;
    while (slots < cfg->pipeline)
        slots <<= 1;
    L->ring_mask = slots - 1;
    L->conns = calloc(L->n ? L->n : 1, sizeof(*L->conns));
    L->rings = calloc((size_t)(L->n ? L->n : 1) * slots, sizeof(*L->rings));
    L->pattern = malloc(pattern_len);
    L->rbuf = malloc(RECV_BUF_SIZE);
    L->scratch = malloc(SCRATCH_SIZE);
    L->dirty = calloc(L->n ? L->n : 1, sizeof(*L->dirty));
    if (L->epfd < 0 || !L->conns || !L->rings || !L->pattern || !L->rbuf || !L->scratch ||
        !L->dirty) {
        int err = L->epfd < 0 ? -errno : -ENOMEM;
        loop_free(L);
        return err;
    }
    /* Seeded per thread, so threads send different bytes. */
    L->rng = UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)(t->id + 1) * UINT64_C(0xD1B54A32D192ED03));
    for (size_t i = 0; i < pattern_len; i++)
        L->pattern[i] = i < PATTERN_PERIOD ? (uint8_t)(rng_next(L) >> 56)
                                           : L->pattern[i - PATTERN_PERIOD];
    for (unsigned i = 0; i < L->n; i++) {
        L->conns[i].fd = -1;
        L->conns[i].ring = L->rings + (size_t)i * slots;
        frame_decoder_init(&L->conns[i].dec, FRAME_OPEN_LENGTH - 1);
    }
    L->source_pool = 1 + t->id % SOURCE_POOLS;
    L->cur = malloc(sizeof(*L->cur));
    t->intervals = calloc(1, sizeof(*t->intervals));
    if (L->cur == NULL || t->intervals == NULL) {
        loop_free(L);
        return -ENOMEM;
    }
    hist_init(L->cur);
    pthread_mutex_init(&t->intervals->lock, NULL);
    L->wire.proto = cfg->proto;
    L->wire.pattern = L->pattern;
    L->copy_small = cfg->proto != BENCH_PROTO_RAW;
    if (cfg->proto == BENCH_PROTO_HTTP) {
        L->https = calloc(L->n ? L->n : 1, sizeof(*L->https));
        if (L->https == NULL) {
            loop_free(L);
            return -ENOMEM;
        }
        for (unsigned i = 0; i < L->n; i++) {
            L->conns[i].http = &L->https[i];
            bench_http_decoder_init(L->conns[i].http, NULL);
        }
    }
    if (cfg->proto == BENCH_PROTO_HTTP &&
        bench_wire_http_init(&L->wire, cfg->http_path, cfg->http_host, cfg->http_headers,
                             cfg->http_nheaders, cfg->size_max > 0, cfg->oneshot) < 0) {
        loop_free(L);
        return -E2BIG;
    }
    if (cfg->size_min == cfg->size_max && cfg->ping_ratio == 0) {
        struct req probe = {.type = FRAME_ECHO, .size = cfg->size_min};
        L->fixed_wire_len = request_wire_len(L, &probe);
    }
    hist_init(&t->result.latency);
    hist_init(&t->result.connect);
    hist_init(&t->result.send_lag);
    hist_init(&t->progress.snapshot);
    t->loop = L;
    return 0;
}

static void loop_run(struct bench_loop *L)
{
    const struct bench_config *cfg = L->cfg;
    struct bench_thread *t = L->t;
    struct epoll_event events[MAX_EVENTS];
    L->now = bench_now_ns();
    L->warmup_end_ns = t->start_ns + (uint64_t)(cfg->warmup_s * (double)NS_PER_S);
    L->next_sec_ns = L->warmup_end_ns + NS_PER_S;
    L->end_ns = cfg->duration_s > 0
                    ? L->warmup_end_ns + (uint64_t)(cfg->duration_s * (double)NS_PER_S)
                    : UINT64_MAX;
    if (cfg->mode == BENCH_MODE_OPEN && t->rate > 0)
        L->interval_ns = (double)NS_PER_S / t->rate;
    L->last_progress_ns = L->now;
    L->next_tick_ns = L->now + TICK_NS;
    if (cfg->mode == BENCH_MODE_OPEN)
        /* Wake on time for the schedule: the default slack would add 50 us. */
        (void)prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    for (unsigned i = 0; i < L->n; i++)
        conn_wait(L, &L->conns[i], 0);
    if (L->n == 0 || (t->requests == 0 && cfg->requests > 0))
        L->stopping = true;

    bool use_pwait2 = true;
    for (;;) {
        L->now = bench_now_ns();
        if (L->now >= L->next_tick_ns) {
            check_timeouts(L);
            if (L->now >= L->next_sec_ns)
                interval_rotate(L, L->now);
            publish_progress(L);
            L->next_tick_ns = L->now + TICK_NS;
        }
        check_stop(L);
        if (finished(L))
            break;
        start_waiting(L);
        if (cfg->mode == BENCH_MODE_OPEN)
            issue_due(L);
        flush_dirty(L);

        uint64_t deadline = L->next_tick_ns;
        if (cfg->mode == BENCH_MODE_OPEN && L->ready.head != 0 && !L->halted) {
            uint64_t due = next_due_ns(L);
            if (due < deadline)
                deadline = due;
        }
        struct conn *w = fifo_peek(L, &L->waiting);
        if (w != NULL && w->not_before_ns < deadline &&
            (oneshot_mode(L) || L->connecting < CONNECTS_IN_FLIGHT))
            deadline = w->not_before_ns;
        uint64_t now = bench_now_ns();
        uint64_t wait = deadline > now ? deadline - now : 0;
        if (wait > MAX_SLEEP_NS)
            wait = MAX_SLEEP_NS;
        if (cfg->spin)
            wait = 0;       /* busy-poll: no wake-up latency, one CPU per thread */
        int n;
        if (use_pwait2) {
            struct timespec ts = {.tv_sec = (time_t)(wait / NS_PER_S),
                                  .tv_nsec = (long)(wait % NS_PER_S)};
            n = epoll_pwait2(L->epfd, events, MAX_EVENTS, &ts, NULL);
            if (n < 0 && errno == ENOSYS) {
                use_pwait2 = false;     /* kernels before 5.11 */
                continue;
            }
        } else {
            n = epoll_wait(L->epfd, events, MAX_EVENTS, (int)((wait + NS_PER_MS - 1) / NS_PER_MS));
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            t->error = -errno;
            break;
        }
        for (int i = 0; i < n; i++) {
            L->now = bench_now_ns();
            handle_event(L, events[i].data.ptr, events[i].events);
        }
        flush_dirty(L);
    }
    /* The last (partial) second; past the end of the run it is whatever the
     * drain brought in. */
    interval_rotate(L, L->now);
    publish_progress(L);
}

void bench_thread_discard(struct bench_thread *t)
{
    loop_free(t->loop);
    t->loop = NULL;
}

void *bench_thread_main(void *arg)
{
    struct bench_thread *t = arg;
    if (t->loop != NULL) {
        uint64_t t0 = bench_now_ns();
        loop_run(t->loop);
        struct rusage ru;
        if (getrusage(RUSAGE_THREAD, &ru) == 0)
            t->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        t->wall_s = (double)(bench_now_ns() - t0) / (double)NS_PER_S;
        loop_free(t->loop);
        t->loop = NULL;
    }
    return NULL;
}
