/* listener.c - the accept thread.
 *
 * One epoll set holds the listening sockets and a command eventfd. New
 * clients are accepted in batches (accept4: non-blocking, close-on-exec),
 * counted against max_connections, and handed to the workers round-robin.
 * Over the limit, a worker answers "503" and closes (a lingering close, so
 * the answer is not lost to an RST); if even that cannot be queued, the
 * listener sends the 503 itself. The same for a client IP address that
 * already holds max_connections_per_client: every TCP connection is counted
 * per address in a client_table, and the worker that closes it uncounts it
 * through listener_client_release.
 *
 * Each socket speaks one protocol (framed, raw or http: the `listen` scheme,
 * or the systemd socket's name); the hand-off carries it to the worker.
 *
 * Out of descriptors (EMFILE/ENFILE) the pending connection cannot be
 * accepted, and a level-triggered listening socket would wake us forever: the
 * sockets leave the epoll set for ACCEPT_PAUSE_MS, as nginx does, and come
 * back when descriptors may have been freed.
 */
#include "server/listener.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/net.h"
#include "server/client_table.h"
#include "server/proto.h"

/* Most listening sockets (the `listen` list, or inherited ones). */
#define LISTENER_MAX CONFIG_LISTEN_MAX
/* Connections accepted from one socket per wake-up before looking at others. */
#define ACCEPT_BATCH 64
/* Back-off when out of file descriptors. */
#define ACCEPT_PAUSE_MS 100
/* Least time between two warnings about unreleased per-client counts. */
#define STALE_WARN_MS 60000
/* Longest sleep, so the heartbeat keeps moving. */
#define LISTENER_TICK_MS 500

struct listen_socket {
    int fd;
    uint8_t proto;          /* enum proto_kind */
    char name[128];         /* the address (no scheme) as configured or as inherited */
    char unix_path[108];    /* a socket file we created and remove at close */
    bool inherited;
};

enum listener_cmd {
    CMD_NONE,
    CMD_RELOAD,
    CMD_STOP,
};

struct listener {
    pthread_t thread;
    bool started;
    int epfd;
    int cmdfd;                          /* eventfd: a command is waiting */
    struct config *cfg;
    struct listen_socket socks[LISTENER_MAX];
    unsigned nsocks;
    bool inherited;                     /* serving inherited sockets: ignore `listen` */

    struct worker *workers;
    unsigned nworkers;
    unsigned next_worker;
    bool wake[CONFIG_WORKERS_MAX];      /* worker has hand-offs waiting for a wake-up */
    unsigned nwake;
    struct stats *stats;
    atomic_uint *conns_global;
    struct client_table clients;        /* open connections per client address */
    uint64_t stale_logged;              /* clients.stale_releases already warned of */
    uint64_t stale_warn_ms;

    bool paused;                        /* out of descriptors: sockets off epoll */
    bool starved;                       /* ... and not yet recovered (logged once) */
    uint64_t resume_ms;
    atomic_uint_least64_t heartbeat_ms;

    pthread_mutex_t cmd_lock;
    pthread_cond_t cmd_done;
    enum listener_cmd cmd;
    struct config *cmd_cfg;
    int cmd_result;
};

/* The listener whose client table listener_client_release updates: there
 * is one per process, and closing connections know only their fd. */
static _Atomic(struct listener *) the_listener;

/* Descriptor numbers the client table covers: the process's limit. */
static uint32_t fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > UINT32_MAX)
        return UINT32_MAX >> 8;     /* far beyond any descriptor in use */
    return (uint32_t)rl.rlim_cur;
}

struct listener *listener_create(struct config *cfg, struct worker *workers, unsigned nworkers,
                                 struct stats *stats, atomic_uint *conns_global)
{
    struct listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        log_error("listener: out of memory");
        return NULL;
    }
    if (client_table_init(&l->clients, cfg->max_connections, fd_limit()) < 0) {
        log_error("listener: out of memory for the per-client table");
        free(l);
        return NULL;
    }
    l->cfg = config_ref(cfg);
    l->workers = workers;
    l->nworkers = nworkers;
    l->stats = stats;
    l->conns_global = conns_global;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->cmdfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&l->cmd_lock, NULL);
    pthread_cond_init(&l->cmd_done, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (l->epfd < 0 || l->cmdfd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->cmdfd, &ev) < 0) {
        log_error("listener: %s", strerror(errno));
        listener_destroy(l);
        return NULL;
    }
    atomic_store(&l->heartbeat_ms, worker_now_ms());
    atomic_store(&the_listener, l);
    return l;
}

void listener_client_release(int fd)
{
    struct listener *l = atomic_load_explicit(&the_listener, memory_order_acquire);
    if (l != NULL)
        client_table_release(&l->clients, fd);
}

static int watch(struct listener *l, struct listen_socket *s)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, s->fd, &ev);
}

static void close_socket(struct listen_socket *s)
{
    if (s->fd < 0)
        return;
    close(s->fd);   /* also leaves the epoll set */
    s->fd = -1;
    if (s->unix_path[0] != '\0')
        unlink(s->unix_path);
}

int listener_add_inherited(struct listener *l, int fd, const char *name)
{
    if (l->nsocks == LISTENER_MAX) {
        log_error("too many inherited sockets (at most %d)", LISTENER_MAX);
        return -1;
    }
    struct listen_socket *s = &l->socks[l->nsocks];
    memset(s, 0, sizeof(*s));
    s->fd = fd;
    s->inherited = true;
    enum proto_kind kind;
    bool named = proto_from_fdname(name, &kind);
    if (proto_ops_of(kind) == NULL) {
        log_error("inherited socket %s: protocol %s is not served by this build", name,
                  proto_name(kind));
        return -1;
    }
    s->proto = (uint8_t)kind;
    struct net_addr a = {.len = sizeof(a.ss)};
    if (getsockname(fd, (struct sockaddr *)&a.ss, &a.len) == 0) {
        a.family = a.ss.ss_family;
        net_addr_format(&a, s->name, sizeof(s->name));
    } else {
        snprintf(s->name, sizeof(s->name), "fd %d", fd);
    }
    if (watch(l, s) < 0) {
        log_error("inherited socket %s: %s", s->name, strerror(errno));
        return -1;
    }
    l->nsocks++;
    l->inherited = true;
    /* A name that is no protocol (systemd's default is the unit's name) means
     * framed, and the log says so. */
    log_info("listening on %s (inherited from systemd%s%s; %s%s)", s->name, name ? ", " : "",
             name ? name : "", proto_name(kind), named ? "" : " by default");
    return 0;
}

/* The protocol and address of a `listen` entry (checked by config.c). */
static void split_entry(const char *entry, enum proto_kind *kind, const char **address)
{
    if (proto_parse_listen(entry, kind, address) < 0) {
        *kind = PROTO_FRAMED;
        *address = entry;
    }
}

/* Open one configured address into s. Returns 0 or -1 (logged). */
static int open_socket(struct listen_socket *s, const char *entry, int backlog, bool reuse_port)
{
    struct net_addr a;
    char err[128];
    enum proto_kind kind;
    const char *text;
    split_entry(entry, &kind, &text);
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->proto = (uint8_t)kind;
    snprintf(s->name, sizeof(s->name), "%s", text);
    if (net_addr_parse(text, &a, err, sizeof(err)) < 0) {
        log_error("listen %s: %s", entry, err);
        return -1;
    }
    int fd = net_listen_reuse(&a, backlog, reuse_port);
    if (fd < 0) {
        log_error("listen %s: %s", entry, strerror(-fd));
        return -1;
    }
    s->fd = fd;
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&a.ss;
    if (a.family == AF_UNIX && sun->sun_path[0] != '\0')
        snprintf(s->unix_path, sizeof(s->unix_path), "%s", sun->sun_path);
    return 0;
}

static struct listen_socket *find_socket(struct listener *l, const char *name)
{
    for (unsigned i = 0; i < l->nsocks; i++)
        if (strcmp(l->socks[i].name, name) == 0)
            return &l->socks[i];
    return NULL;
}

/* Build the socket set for cfg: keep sockets whose address stays, open the
 * new ones. On failure nothing changes. */
static int apply_addresses(struct listener *l, struct config *cfg)
{
    if (l->inherited)
        return 0;   /* socket activation: systemd owns the addresses */
    if (cfg->nlisten > LISTENER_MAX) {
        log_error("too many listen addresses (at most %d)", LISTENER_MAX);
        return -1;
    }
    struct listen_socket next[LISTENER_MAX];
    bool kept[LISTENER_MAX] = {false};
    unsigned n = 0;
    for (size_t i = 0; i < cfg->nlisten; i++, n++) {
        enum proto_kind kind;
        const char *address;
        split_entry(cfg->listen[i], &kind, &address);
        struct listen_socket *old = find_socket(l, address);
        if (old != NULL) {
            next[n] = *old;
            kept[old - l->socks] = true;
            if (old->proto != kind) {
                /* Same socket, new protocol: for connections from now on. */
                log_info("listening on %s (%s, was %s)", old->name, proto_name(kind),
                         proto_name((enum proto_kind)old->proto));
                next[n].proto = (uint8_t)kind;
            }
            /* Linux takes a new backlog on a listening socket as is. */
            if (listen(old->fd, cfg->backlog) < 0)
                log_warn("listen %s: backlog %d: %s", old->name, cfg->backlog, strerror(errno));
            continue;
        }
        if (open_socket(&next[n], cfg->listen[i], cfg->backlog, cfg->reuse_port) < 0) {
            /* Undo: close what this attempt opened, keep the old set. */
            for (unsigned j = 0; j < n; j++)
                if (find_socket(l, next[j].name) == NULL)
                    close_socket(&next[j]);
            return -1;
        }
        log_info("listening on %s (%s)", next[n].name, proto_name((enum proto_kind)next[n].proto));
    }
    for (unsigned i = 0; i < l->nsocks; i++) {
        if (!kept[i]) {
            log_info("no longer listening on %s", l->socks[i].name);
            close_socket(&l->socks[i]);
        }
    }
    /* Re-register everything: the epoll data points into socks[]. */
    for (unsigned i = 0; i < n; i++) {
        l->socks[i] = next[i];
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->socks[i].fd, NULL);
        if (!l->paused && watch(l, &l->socks[i]) < 0)
            log_error("listen %s: epoll: %s", l->socks[i].name, strerror(errno));
    }
    l->nsocks = n;
    return 0;
}

/* Accepted sockets inherit TCP_NODELAY, SO_KEEPALIVE, the keepalive timing
 * and TCP_USER_TIMEOUT from their listening socket (Linux copies them all,
 * and starts the keepalive timer), so they are set here once instead of with
 * calls per connection. A reload sets them again: new connections get the
 * new values, open ones keep theirs. Unix listeners ignore them. */
static void set_accepted_options(struct listen_socket *s, const struct config *cfg)
{
    /* In range by the config table: at most USER_TIMEOUT_MAX s fits an int of ms. */
    unsigned user_timeout_ms = (unsigned)(cfg->tcp_user_timeout * 1000.0 + 0.5);
    int rc = net_set_nodelay(s->fd, cfg->tcp_nodelay);
    if (rc == 0)
        rc = net_set_keepalive(s->fd, cfg->tcp_keepalive);
    if (rc == 0)
        rc = net_set_keepalive_timing(s->fd, cfg->tcp_keepalive_idle,
                                      cfg->tcp_keepalive_interval, cfg->tcp_keepalive_count);
    if (rc == 0)
        rc = net_set_user_timeout(s->fd, user_timeout_ms);
    if (rc < 0)
        log_warn("listen %s: socket options: %s", s->name, strerror(-rc));
}

/* Make the listening sockets what cfg asks for: addresses (unless systemd
 * passed them) and the options new connections get. The listener thread's
 * own code (or the main thread before it starts). */
static int apply_listen(struct listener *l, struct config *cfg)
{
    int rc = apply_addresses(l, cfg);
    if (rc == 0)
        for (unsigned i = 0; i < l->nsocks; i++)
            set_accepted_options(&l->socks[i], cfg);
    return rc;
}

int listener_bind(struct listener *l)
{
    return apply_listen(l, l->cfg);
}

/* Answer 503 on a socket no worker could take. Best effort: the reply fits
 * in an empty socket buffer, so one non-blocking send delivers it. */
static void reject_here(int fd, uint8_t proto, const char *text)
{
    uint8_t reply[512];
    size_t n = proto_reject_bytes((enum proto_kind)proto, text, reply, sizeof(reply));
    if (n > 0 && send(fd, reply, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        log_debug("fd %d: 503 not sent: %s", fd, strerror(errno));
    shutdown(fd, SHUT_WR);
    close(fd);
}

/* Post msg to a worker, trying each from the round-robin position. The
 * wake-up waits for flush_wakes: a batch of accepts costs one per worker,
 * and a worker sharing a CPU with this thread is not switched to once per
 * connection. */
static bool hand_off(struct listener *l, struct worker_msg *msg)
{
    for (unsigned tries = 0; tries < l->nworkers; tries++) {
        unsigned i = l->next_worker;
        l->next_worker = (l->next_worker + 1) % l->nworkers;
        int rc = worker_enqueue(&l->workers[i], msg);
        if (rc < 0)
            continue;
        if (rc > 0 && !l->wake[i]) {
            l->wake[i] = true;
            l->nwake++;
        }
        return true;
    }
    return false;
}

static void flush_wakes(struct listener *l)
{
    for (unsigned i = 0; l->nwake > 0 && i < l->nworkers; i++) {
        if (l->wake[i]) {
            l->wake[i] = false;
            l->nwake--;
            worker_wake(&l->workers[i]);
        }
    }
}

/* Counts found unreleased (see client_table_acquire) mean a close path that
 * misses listener_client_release: say so, at most once a minute. */
static void warn_stale(struct listener *l)
{
    if (l->clients.stale_releases == l->stale_logged)
        return;
    uint64_t now = worker_now_ms();
    if (l->stale_logged != 0 && now - l->stale_warn_ms < STALE_WARN_MS)
        return;
    /* A warning only where it matters: with the limit on, such counts
     * refuse clients until their fd numbers come back. */
    enum log_level lvl = l->cfg->max_connections_per_client > 0 ? LOG_LVL_WARN : LOG_LVL_DEBUG;
    log_msg(lvl, "%" PRIu64 " closed connections were never released from their per-client "
            "count (a close path misses listener_client_release); released as their fds "
            "came back", l->clients.stale_releases - l->stale_logged);
    l->stale_logged = l->clients.stale_releases;
    l->stale_warn_ms = now;
}

static void reject(struct listener *l, struct worker_msg *msg, enum proto_reject why)
{
    atomic_fetch_add_explicit(&l->stats->connections_rejected, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->stats->rejected_by_reason[why == PROTO_REJECT_CLIENT_LIMIT
                                                                ? SR_PER_CLIENT
                                                                : SR_MAX_CONNECTIONS],
                              1, memory_order_relaxed);
    msg->kind = WORKER_MSG_REJECT;
    msg->reject = (uint8_t)why;
    if (!hand_off(l, msg))
        reject_here(msg->fd, msg->proto, why == PROTO_REJECT_CLIENT_LIMIT
                                             ? "503 too many connections from this address"
                                             : "503 too many connections");
}

static void dispatch(struct listener *l, int fd, uint8_t proto,
                     const struct sockaddr_storage *peer)
{
    struct worker_msg msg = {.kind = WORKER_MSG_CONN, .fd = fd, .proto = proto};
    unsigned before = atomic_fetch_add_explicit(l->conns_global, 1, memory_order_relaxed);
    if (before >= l->cfg->max_connections) {
        atomic_fetch_sub_explicit(l->conns_global, 1, memory_order_relaxed);
        reject(l, &msg, PROTO_REJECT_LIMIT);
        return;
    }
    enum client_verdict v =
        client_table_acquire(&l->clients, fd, peer, l->cfg->max_connections_per_client);
    if (v == CLIENT_OVER_LIMIT) {
        atomic_fetch_sub_explicit(l->conns_global, 1, memory_order_relaxed);
        reject(l, &msg, PROTO_REJECT_CLIENT_LIMIT);
        return;
    }
    if (!hand_off(l, &msg)) {
        client_table_release(&l->clients, fd);
        atomic_fetch_sub_explicit(l->conns_global, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&l->stats->connections_rejected, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&l->stats->rejected_by_reason[SR_OVERLOADED], 1,
                                  memory_order_relaxed);
        log_warn("every worker's inbox is full; rejecting connections");
        reject_here(fd, proto, "503 server overloaded");
    }
}

static void pause_accepting(struct listener *l, int err)
{
    if (!l->starved)
        log_warn("accept: %s; pausing accepts %d ms at a time until descriptors free up",
                 strerror(err), ACCEPT_PAUSE_MS);
    l->starved = true;
    l->paused = true;
    atomic_fetch_add_explicit(&l->stats->accept_pauses, 1, memory_order_relaxed);
    l->resume_ms = worker_now_ms() + ACCEPT_PAUSE_MS;
    for (unsigned i = 0; i < l->nsocks; i++)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->socks[i].fd, NULL);
}

static void resume_accepting(struct listener *l)
{
    l->paused = false;
    for (unsigned i = 0; i < l->nsocks; i++)
        if (watch(l, &l->socks[i]) < 0)
            log_error("listen %s: epoll: %s", l->socks[i].name, strerror(errno));
}

/* Accept up to limit connections from s. Returns false when it paused. */
static bool accept_some(struct listener *l, struct listen_socket *s, int limit)
{
    for (int i = 0; i < limit; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(s->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (l->starved) {
                l->starved = false;
                log_info("accepting connections again");
            }
            if (plen > sizeof(peer))
                peer.ss_family = AF_UNSPEC;     /* cannot happen; then uncounted */
            dispatch(l, fd, s->proto, &peer);
            continue;
        }
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return true;
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM:     /* a firewall refused it */
            continue;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            pause_accepting(l, errno);
            return false;
        default:
            log_error("accept on %s: %s", s->name, strerror(errno));
            return true;
        }
    }
    return true;
}

static bool accept_batch(struct listener *l, struct listen_socket *s, int limit)
{
    bool ok = accept_some(l, s, limit);
    flush_wakes(l);
    warn_stale(l);
    return ok;
}

static void finish_command(struct listener *l, int result)
{
    pthread_mutex_lock(&l->cmd_lock);
    l->cmd = CMD_NONE;
    l->cmd_result = result;
    pthread_cond_broadcast(&l->cmd_done);
    pthread_mutex_unlock(&l->cmd_lock);
}

/* Returns false when the thread should end. */
static bool handle_command(struct listener *l)
{
    uint64_t count;
    while (read(l->cmdfd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&l->cmd_lock);
    enum listener_cmd cmd = l->cmd;
    struct config *cfg = l->cmd_cfg;
    pthread_mutex_unlock(&l->cmd_lock);

    if (cmd == CMD_RELOAD) {
        int rc = apply_listen(l, cfg);
        if (rc == 0) {
            config_unref(l->cfg);
            l->cfg = config_ref(cfg);
        }
        finish_command(l, rc);
    } else if (cmd == CMD_STOP) {
        /* Connections the kernel already completed are ours to serve. */
        for (unsigned i = 0; i < l->nsocks; i++) {
            for (;;) {
                struct sockaddr_storage peer;
                socklen_t plen = sizeof(peer);
                int fd = accept4(l->socks[i].fd, (struct sockaddr *)&peer, &plen,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd >= 0)
                    dispatch(l, fd, l->socks[i].proto, &peer);
                else if (errno != EINTR && errno != ECONNABORTED)
                    break;
            }
            close_socket(&l->socks[i]);
        }
        flush_wakes(l);
        l->nsocks = 0;
        finish_command(l, 0);
        return false;
    }
    return true;
}

static void *listener_main(void *arg)
{
    struct listener *l = arg;
    struct epoll_event events[LISTENER_MAX + 1];
    for (;;) {
        uint64_t now = worker_now_ms();
        atomic_store_explicit(&l->heartbeat_ms, now, memory_order_relaxed);
        if (l->paused && now >= l->resume_ms)
            resume_accepting(l);
        int timeout = LISTENER_TICK_MS;
        if (l->paused)
            timeout = (int)(l->resume_ms > now ? l->resume_ms - now : 0);
        int n = epoll_wait(l->epfd, events, LISTENER_MAX + 1, timeout);
        if (n < 0 && errno != EINTR) {
            log_error("listener: epoll_wait: %s", strerror(errno));
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            struct listen_socket *s = events[i].data.ptr;
            if (s == NULL) {
                if (!handle_command(l))
                    return NULL;
                break;  /* the socket set may have changed under the other events */
            }
            if (!l->paused && !accept_batch(l, s, ACCEPT_BATCH))
                break;
        }
    }
}

int listener_start(struct listener *l)
{
    int err = pthread_create(&l->thread, NULL, listener_main, l);
    if (err != 0) {
        log_error("listener thread: %s", strerror(err));
        return -1;
    }
    l->started = true;
    return 0;
}

/* Post a command and wait for the thread's answer. */
static int command(struct listener *l, enum listener_cmd cmd, struct config *cfg)
{
    pthread_mutex_lock(&l->cmd_lock);
    l->cmd = cmd;
    l->cmd_cfg = cfg;
    pthread_mutex_unlock(&l->cmd_lock);
    uint64_t one = 1;
    while (write(l->cmdfd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&l->cmd_lock);
    while (l->cmd != CMD_NONE)
        pthread_cond_wait(&l->cmd_done, &l->cmd_lock);
    int rc = l->cmd_result;
    pthread_mutex_unlock(&l->cmd_lock);
    return rc;
}

int listener_reload(struct listener *l, struct config *cfg)
{
    return command(l, CMD_RELOAD, cfg);
}

void listener_stop(struct listener *l)
{
    if (!l->started)
        return;
    command(l, CMD_STOP, NULL);
    pthread_join(l->thread, NULL);
    l->started = false;
}

void listener_destroy(struct listener *l)
{
    if (l == NULL)
        return;
    listener_stop(l);
    /* Workers are gone by now (main joins them first); nothing releases any more. */
    struct listener *expected = l;
    atomic_compare_exchange_strong(&the_listener, &expected, NULL);
    for (unsigned i = 0; i < l->nsocks; i++)
        close_socket(&l->socks[i]);
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->cmdfd >= 0)
        close(l->cmdfd);
    pthread_mutex_destroy(&l->cmd_lock);
    pthread_cond_destroy(&l->cmd_done);
    config_unref(l->cfg);
    client_table_destroy(&l->clients);
    free(l);
}

uint64_t listener_heartbeat_ms(struct listener *l)
{
    return atomic_load_explicit(&l->heartbeat_ms, memory_order_relaxed);
}

void listener_describe(struct listener *l, char *out, size_t len)
{
    size_t off = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < l->nsocks && off < len; i++) {
        const struct listen_socket *s = &l->socks[i];
        /* Framed, the default, is shown without a scheme, as configured. */
        int n = snprintf(out + off, len - off, "%s%s%s%s", i ? ", " : "",
                         s->proto == PROTO_FRAMED ? "" : proto_name((enum proto_kind)s->proto),
                         s->proto == PROTO_FRAMED ? "" : "://", s->name);
        if (n < 0)
            break;
        off += (size_t)n;
    }
}
