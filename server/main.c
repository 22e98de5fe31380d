/* main.c - echod's command line, start-up and shutdown order, and signals.
 *
 * Start-up: load the config, bind (or inherit) the listening sockets, drop
 * privileges, start the workers and the listener, then tell systemd we are
 * ready. Every thread blocks every signal; this thread takes them from a
 * signalfd, so a handler never runs in the middle of a worker's request:
 *   SIGHUP          reload the config file (a bad one is logged and ignored)
 *   SIGTERM/SIGINT  drain: stop accepting, answer what was read, exit 0
 * SIGPIPE is ignored (and every send uses MSG_NOSIGNAL anyway).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/log.h"
#include "server/config.h"
#include "server/listener.h"
#include "server/notify.h"
#include "server/privdrop.h"
#include "server/stats.h"
#include "server/worker.h"

/* How often STATUS= is refreshed for `systemctl status`. */
#define STATUS_INTERVAL_MS 5000
/* Inherited sockets we accept at most. */
#define MAX_INHERITED 64
/* Descriptors beyond max_connections: listeners, epoll, eventfds, logs. */
#define FD_RESERVE 64

struct server {
    struct config *cfg;         /* main thread's current snapshot */
    struct config *boot_cfg;    /* the one we started with: restart-only keys come from it */
    const char *config_path;    /* NULL: built-in defaults, nothing to reload */
    struct stats stats;
    struct worker *workers;
    unsigned nworkers;
    struct listener *listener;
    atomic_uint conns_global;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: echod [-c FILE] [-t] [-V] [-h]\n"
            "  -c FILE  configuration file (libconfig syntax); without it, built-in defaults\n"
            "  -t       check the configuration and exit (0: \"configuration ok\")\n"
            "  -V       print the version and exit\n"
            "  -h       this help\n"
            "Runs in the foreground and logs to stderr. Signals: SIGHUP reloads the\n"
            "configuration, SIGTERM/SIGINT drain and exit.\n\n"
            "configuration keys:\n");
    config_print_keys(f);
}

static struct config *load_config(const char *path)
{
    struct config *cfg = NULL;
    char err[CONFIG_ERR_MAX];
    if (path == NULL) {
        cfg = config_new_defaults();
        if (cfg == NULL)
            fprintf(stderr, "echod: out of memory\n");
        return cfg;
    }
    if (config_load_file(path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    return cfg;
}

/* Lift the descriptor limit as far as allowed: each connection is one. */
static void raise_fd_limit(uint32_t max_connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            return;
    }
    if (rl.rlim_cur < (rlim_t)max_connections + FD_RESERVE)
        log_warn("file descriptor limit %llu is below max_connections %u + %d; "
                 "raise LimitNOFILE/ulimit -n",
                 (unsigned long long)rl.rlim_cur, max_connections, FD_RESERVE);
}

static unsigned resolve_workers(const struct config *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Post to a worker, waiting out a full inbox (it drains every loop turn). */
static void submit_wait(struct worker *w, struct worker_msg *m)
{
    while (worker_submit(w, m) < 0)
        usleep(1000);
}

static void update_status(struct server *s)
{
    char where[512];
    listener_describe(s->listener, where, sizeof(where));
    unsigned conns = atomic_load(&s->conns_global);
    notify_status("%u connection%s; %u worker%s; listening on %s", conns, conns == 1 ? "" : "s",
                  s->nworkers, s->nworkers == 1 ? "" : "s", where);
}

static void reload(struct server *s)
{
    if (s->config_path == NULL) {
        log_warn("SIGHUP: no configuration file (-c) to reload; ignored");
        return;
    }
    notify_reloading();
    struct config *cfg = NULL;
    char err[CONFIG_ERR_MAX];
    if (config_load_file(s->config_path, &cfg, err, sizeof(err)) < 0) {
        log_error("reload failed, keeping the running configuration: %s", err);
        notify_ready();
        return;
    }
    char restart[256];
    config_restart_keys(s->boot_cfg, cfg, restart, sizeof(restart));
    if (restart[0] != '\0')
        log_warn("reload: %s changed; that takes a restart, the running value stays", restart);
    if (listener_reload(s->listener, cfg) < 0) {
        log_error("reload failed, keeping the running configuration: cannot open listeners");
        config_unref(cfg);
        notify_ready();
        return;
    }
    log_set_level(cfg->log_level);
    for (unsigned i = 0; i < s->nworkers; i++) {
        struct worker_msg m = {.kind = WORKER_MSG_RELOAD, .fd = -1, .cfg = config_ref(cfg)};
        submit_wait(&s->workers[i], &m);
    }
    config_unref(s->cfg);
    s->cfg = cfg;
    log_info("configuration reloaded from %s", s->config_path);
    notify_ready();
    update_status(s);
}

/* The listener and every worker went round their loops recently. */
static bool threads_alive(struct server *s, uint64_t max_age_ms)
{
    uint64_t now = worker_now_ms();
    if (now - listener_heartbeat_ms(s->listener) > max_age_ms)
        return false;
    for (unsigned i = 0; i < s->nworkers; i++)
        if (now - atomic_load_explicit(&s->workers[i].heartbeat_ms, memory_order_relaxed) > max_age_ms)
            return false;
    return true;
}

/* Wait for signals; returns when it is time to shut down. */
static void serve(struct server *s, int sigfd)
{
    uint64_t watchdog_ms = notify_watchdog_usec() / 1000;
    uint64_t next_ping = 0, next_status = worker_now_ms() + STATUS_INTERVAL_MS;
    uint64_t stop_at = 0;       /* drain_delay running: the drain starts then */
    bool warned_stuck = false;
    for (;;) {
        uint64_t now = worker_now_ms();
        if (stop_at != 0 && now >= stop_at) {
            log_info("drain_delay over: shutting down (drain_timeout %.3g s)", s->cfg->drain_timeout);
            return;
        }
        if (watchdog_ms > 0 && now >= next_ping) {
            /* A thread stuck for a whole interval stops the pings, and systemd
             * restarts us: that is the point of the watchdog. */
            if (threads_alive(s, watchdog_ms > 1000 ? watchdog_ms : 1000)) {
                notify_watchdog_ping();
                warned_stuck = false;
            } else if (!warned_stuck) {
                log_error("a worker or the listener is not making progress; watchdog pings stop");
                warned_stuck = true;
            }
            next_ping = now + watchdog_ms / 2;
        }
        if (now >= next_status) {
            update_status(s);
            next_status = now + STATUS_INTERVAL_MS;
        }
        uint64_t wake = next_status;
        if (watchdog_ms > 0 && next_ping < wake)
            wake = next_ping;
        if (stop_at != 0 && stop_at < wake)
            wake = stop_at;
        struct pollfd pfd = {.fd = sigfd, .events = POLLIN};
        int rc = poll(&pfd, 1, wake > now ? (int)(wake - now) : 0);
        if (rc <= 0)
            continue;
        struct signalfd_siginfo si;
        if (read(sigfd, &si, sizeof(si)) != sizeof(si))
            continue;
        if (si.ssi_signo == SIGHUP) {
            log_info("SIGHUP: reloading %s", s->config_path ? s->config_path : "(defaults)");
            reload(s);
        } else if (stop_at == 0 && s->cfg->drain_delay > 0) {
            /* Readiness off first, listeners still open: a balancer's health
             * check sees /readyz's 503 and takes this instance out before
             * any connection is refused. A second signal skips the wait. */
            atomic_store(&s->stats.unready, true);
            log_info("%s: /readyz answers 503; draining in %.3g s (drain_delay)",
                     si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM", s->cfg->drain_delay);
            notify_status("stopping in %.3g s: /readyz answers 503", s->cfg->drain_delay);
            stop_at = now + (uint64_t)(s->cfg->drain_delay * 1000.0 + 0.5);
        } else {
            log_info("%s: shutting down (drain_timeout %.3g s)",
                     si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM", s->cfg->drain_timeout);
            return;
        }
    }
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool check_only = false;
    int opt;
    while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            check_only = true;
            break;
        case 'V':
            printf("echod %s\n", ECHOD_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "echod: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    struct server s = {.config_path = path};
    s.cfg = load_config(path);
    if (s.cfg == NULL)
        return 1;
    if (check_only) {
        printf("configuration ok\n");
        config_unref(s.cfg);
        return 0;
    }
    log_set_level(s.cfg->log_level);
    s.boot_cfg = config_ref(s.cfg);

    /* Signals: blocked everywhere (threads inherit the mask), read here. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    int sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sigfd < 0) {
        log_error("signalfd: %s", strerror(errno));
        return 1;
    }

    notify_init();
    raise_fd_limit(s.cfg->max_connections);
    s.nworkers = resolve_workers(s.cfg);
    s.stats.nworkers = s.nworkers;
    s.stats.start_ms = worker_now_ms();
    s.stats.workers = aligned_alloc(64, sizeof(struct stats_worker) * s.nworkers);
    s.workers = calloc(s.nworkers, sizeof(*s.workers));
    if (s.stats.workers == NULL || s.workers == NULL) {
        log_error("out of memory");
        return 1;
    }
    memset(s.stats.workers, 0, sizeof(struct stats_worker) * s.nworkers);

    int rc = 1;
    unsigned started = 0;
    s.listener = listener_create(s.cfg, s.workers, s.nworkers, &s.stats, &s.conns_global);
    if (s.listener == NULL)
        goto out;
    int fds[MAX_INHERITED];
    const char *names[MAX_INHERITED];
    int ninherited = notify_listen_fds(fds, names, MAX_INHERITED);
    for (int i = 0; i < ninherited; i++)
        if (listener_add_inherited(s.listener, fds[i], names[i]) < 0)
            goto out;
    if (listener_bind(s.listener) < 0)
        goto out;
    if (privdrop_apply(s.cfg->user) < 0)
        goto out;

    for (; started < s.nworkers; started++) {
        int err = worker_init(&s.workers[started], started, s.cfg, &s.stats, &s.conns_global);
        if (err == 0)
            err = worker_start(&s.workers[started]);
        if (err < 0) {
            log_error("worker %u: %s", started, strerror(-err));
            worker_destroy(&s.workers[started]);
            goto out;
        }
    }
    if (listener_start(s.listener) < 0)
        goto out;

    char where[512];
    listener_describe(s.listener, where, sizeof(where));
    log_info("echod %s ready: %u workers, max_connections %u, listening on %s", ECHOD_VERSION,
             s.nworkers, s.cfg->max_connections, where);
    notify_ready();
    update_status(&s);

    serve(&s, sigfd);
    rc = 0;
out:
    /* Shutdown order: stop accepting (the kernel's queue is handed to the
     * workers), then drain the workers, which exit once their connections
     * are closed or drain_timeout has passed. */
    if (rc == 0)
        notify_stopping();
    if (s.listener != NULL)
        listener_stop(s.listener);
    for (unsigned i = 0; i < started; i++) {
        struct worker_msg m = {.kind = WORKER_MSG_DRAIN, .fd = -1};
        submit_wait(&s.workers[i], &m);
    }
    for (unsigned i = 0; i < started; i++)
        worker_join(&s.workers[i]);
    for (unsigned i = 0; i < started; i++)
        worker_destroy(&s.workers[i]);
    listener_destroy(s.listener);
    free(s.workers);
    free(s.stats.workers);
    config_unref(s.cfg);
    config_unref(s.boot_cfg);
    close(sigfd);
    if (rc == 0)
        log_info("stopped");
    return rc;
}
