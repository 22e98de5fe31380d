/* config.h - the daemon's configuration: a libconfig file turned into a
 * validated, immutable snapshot.
 *
 * Every key lives in one table in config.c (name, type, range, default,
 * whether a reload may change it); validation, `echod -t` and the defaults all
 * come from it. A snapshot is never modified after loading: a reload builds a
 * new one and threads switch to it, and the reference count frees the old one
 * when the last thread lets go.
 */
#ifndef ECHOD_CONFIG_H
#define ECHOD_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"

/* Room for "FILE:LINE: message". */
#define CONFIG_ERR_MAX 512
/* Most `listen` addresses accepted; the listener keeps a fixed table this big. */
#define CONFIG_LISTEN_MAX 64
/* Most worker threads: far beyond any core count, and few enough that the
 * STATS reply (an entry per worker) fits one output buffer. */
#define CONFIG_WORKERS_MAX 256

struct config {
    atomic_int refs;
    char *path;                 /* the file it came from; NULL for built-in defaults */

    char **listen;              /* addresses in net.h syntax */
    size_t nlisten;
    unsigned workers;           /* 0 = one per online CPU (resolved by the caller) */
    int backlog;
    uint32_t max_connections;
    uint32_t max_connections_per_client;    /* per source address; 0 = no limit */
    uint32_t max_frame_size;
    double idle_timeout;        /* seconds; 0 = never */
    double read_timeout;        /* seconds; 0 = never */
    double write_timeout;       /* seconds; 0 = never */
    double drain_delay;         /* seconds of readiness off (/readyz 503) before the drain */
    double drain_timeout;       /* seconds; 0 = close everything at once */
    bool tcp_nodelay;
    bool tcp_keepalive;
    unsigned http_max_header_size;  /* bytes of request line + headers; 414 / 431 beyond */
    double http_max_delay;      /* seconds: the most `delay=` may ask; 0 = delays off */
    bool http_metrics;          /* serve /metrics and /stats on http listeners */
    int tcp_keepalive_idle;     /* seconds idle before the first probe (TCP_KEEPIDLE) */
    int tcp_keepalive_interval; /* seconds between probes (TCP_KEEPINTVL) */
    int tcp_keepalive_count;    /* unanswered probes before giving up (TCP_KEEPCNT) */
    double tcp_user_timeout;    /* seconds data may stay unacknowledged; 0 = kernel's */
    bool reuse_port;            /* SO_REUSEPORT on TCP listeners opened from now on */
    enum log_level log_level;
    char *user;                 /* "" = stay who we are */
};

/* The built-in defaults (listen 127.0.0.1:7007 and the documented values),
 * or NULL when out of memory. refs = 1. */
struct config *config_new_defaults(void);

/* Load and validate a file. On success *out holds a new snapshot (refs = 1)
 * and 0 is returned; on failure -1 and err holds "FILE:LINE: message" (the
 * line of the offending setting; the file's own name for errors without one,
 * e.g. "echod.conf: cannot open: No such file or directory"). */
int config_load_file(const char *path, struct config **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The same from text in memory; `name` stands for the file name in errors. */
int config_load_string(const char *text, const char *name, struct config **out,
                       char *err, size_t errlen) __attribute__((warn_unused_result));

struct config *config_ref(struct config *c);
void config_unref(struct config *c);        /* frees at zero; NULL is ignored */

/* Names of keys whose change needs a restart and differ between a and b,
 * written comma-separated into out (empty when none). */
void config_restart_keys(const struct config *a, const struct config *b, char *out, size_t outlen);

/* Print every key with its type, range and default (for `echod -h`). */
void config_print_keys(FILE *f);

#endif
