/* bench.h - echobench's parts: the run settings, one load thread's results,
 * and the functions that run a thread (bench_loop.c) and report (bench_report.c).
 *
 * echobench.c parses the command line into a struct bench_config, starts
 * `threads` load threads (each one epoll loop owning its connections), prints
 * progress while they run, then merges their struct bench_result and reports.
 * Threads share only the config (read-only), the stop flag and their progress
 * block; everything else is owned by one thread.
 */
#ifndef ECHOD_BENCH_H
#define ECHOD_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "client/bench_wire.h"
#include "client/hist.h"
#include "common/net.h"


enum bench_mode {
    BENCH_MODE_CLOSED,      /* a new request as soon as a reply frees a slot */
    BENCH_MODE_OPEN,        /* requests at a fixed rate, latency from the schedule */
    BENCH_MODE_IDLE,        /* open the connections and hold them, no requests */
};

/* Most requests in flight per connection (-P). */
#define BENCH_PIPELINE_MAX 4096
/* Loopback network 127.0.0.0/8 in host byte order (oneshot source spreading). */
#define BENCH_LOOPBACK_NET 0x7F000000u
#define BENCH_LOOPBACK_MASK 0xFF000000u
/* Largest payload (-s): the default max_frame_size of echod is 16 MiB. */
#define BENCH_SIZE_MAX (256u * 1024 * 1024)

struct bench_config {
    struct net_addr addr;
    char target[160];       /* addr as text, for the report */
    enum bench_proto proto;
    enum bench_mode mode;
    bool oneshot;           /* a connection per request */
    bool spread_sources;    /* oneshot to 127/8: bind source addresses over 127/8 */
    unsigned threads;
    unsigned connections;   /* total, spread over the threads */
    unsigned pipeline;
    uint32_t size_min, size_max;
    double ping_ratio;      /* fraction of requests that are PING (framed only) */
    double rate;            /* open loop: requests (or connections) per second, total */
    double duration_s;      /* measured seconds (0: until `requests` are done) */
    double warmup_s;        /* before the measured part; its requests are not counted */
    uint64_t requests;      /* -n: measured requests in total (0: run for duration_s) */
    double timeout_s;       /* a request (or connect) with no progress this long fails */
    const char *http_path;  /* http: the request target (default "/") */
    char http_host[170];    /* http: the Host header (the target, or localhost) */
    const char *http_headers[64];   /* http: "Name: value" lines from -H */
    unsigned http_nheaders;
    bool http_check_body;   /* http POST: the body must come back as sent */
    bool progress;
    bool spin;              /* never sleep in epoll (precise timing, burns the CPU) */
};

/* Error kinds; a failed request is counted under exactly one. */
enum bench_err {
    BENCH_ERR_CONNECT_REFUSED,
    BENCH_ERR_CONNECT_TIMEOUT,
    BENCH_ERR_CONNECT_OTHER,
    BENCH_ERR_PORTS_EXHAUSTED,  /* EADDRNOTAVAIL: no source port left */
    BENCH_ERR_RESET,            /* the connection was reset with requests in flight */
    BENCH_ERR_CLOSED,           /* the server closed with requests unanswered */
    BENCH_ERR_TIMEOUT,          /* no reply within timeout_s */
    BENCH_ERR_MISMATCH,         /* a reply differed from the request (or broke framing) */
    BENCH_ERR_FD_LIMIT,         /* EMFILE/ENFILE: out of descriptors, a client-side limit */
    BENCH_ERR_FRAME,            /* an error frame ('!'); by code in error_codes */
    BENCH_ERR_HTTP_STATUS,      /* http: a status other than 2xx; by code in error_codes */
    BENCH_ERR_KINDS,
};

/* Error frame codes kept one by one: 100..599 ("NNN reason"); others in slot 0. */
#define BENCH_CODE_MIN 100
#define BENCH_CODE_MAX 599
#define BENCH_CODE_SLOTS (BENCH_CODE_MAX - BENCH_CODE_MIN + 2)

struct bench_result {
    /* Measured part (after warm-up). */
    uint64_t ok;                /* requests answered correctly */
    uint64_t payload_bytes;     /* ECHO payload bytes that came back correctly */
    uint64_t last_done_ns;      /* when the last measured request finished */
    struct hist latency;        /* ns, from the intended send time */
    struct hist connect;        /* ns, oneshot: connect() to connected */
    struct hist send_lag;       /* ns, open loop: intended send time to actual */
    /* Whole run, warm-up included. */
    uint64_t issued;            /* requests handed to a connection */
    uint64_t ok_total;
    uint64_t bytes_out, bytes_in;
    uint64_t connects;          /* connections established */
    uint64_t max_open;          /* most connections open at once */
    uint64_t errors[BENCH_ERR_KINDS];
    uint64_t error_codes[BENCH_CODE_SLOTS];
    bool stalled;               /* stopped early: no progress for timeout_s */
};

/* What a thread publishes for the progress line, read by the main thread. */
struct bench_progress {
    atomic_uint_least64_t ok_total;
    atomic_uint_least64_t errors;
    atomic_uint_least64_t open;     /* connections open now */
    pthread_mutex_t lock;           /* guards snapshot */
    struct hist snapshot;           /* a recent copy of the thread's latency */
};

/* One load thread. */
struct bench_thread {
    const struct bench_config *cfg;
    unsigned id;
    unsigned connections;       /* this thread's share */
    double rate;                /* this thread's share of cfg->rate */
    uint64_t requests;          /* this thread's share of cfg->requests */
    uint64_t start_ns;          /* CLOCK_MONOTONIC: the run starts (warm-up first) */
    const atomic_bool *stop;    /* set on SIGINT: finish what is in flight and end */
    struct bench_progress progress;
    struct bench_result result;
    int error;                  /* set up failed: -errno */
    double cpu_s;               /* the thread's own CPU time (RUSAGE_THREAD), at its end */
    double wall_s;              /* its run time */
    struct bench_loop *loop;    /* the thread's own state (bench_loop.c) */
};

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Run one load thread to the end (pthread start routine; arg is the thread). */
void *bench_thread_main(void *arg);
/* Allocate a thread's epoll loop and connections before the clock starts;
 * returns 0 or -errno. bench_thread_main frees them. */
int bench_thread_prepare(struct bench_thread *t) __attribute__((warn_unused_result));

/* Add src into dst (histograms merged, counters added, maxima kept). */
void bench_result_merge(struct bench_result *dst, const struct bench_result *src);

/* The names used in reports for each error kind ("connect_refused", ...). */
const char *bench_err_name(enum bench_err e);

/* The merged outcome with the measured window, ready to print. */
struct bench_summary {
    const struct bench_config *cfg;
    const struct bench_result *r;
    double window_s;            /* seconds the measured figures cover */
    double cpu_s;               /* echobench's own CPU time (user + system) */
    double wall_s;              /* the whole run, warm-up included */
    uint64_t errors_total;
    double busiest;             /* highest load thread CPU / its run time (0..1) */
    uint64_t fd_have, fd_need;  /* descriptor limit in force, and what -c needs */
};

/* Words for what may have limited the run (client CPU, rate, connections,
 * descriptors, ports); up to BENCH_NOTES_MAX lines, each BENCH_NOTE_LEN. */
#define BENCH_NOTES_MAX 8
#define BENCH_NOTE_LEN 240
unsigned bench_notes(const struct bench_summary *s, char notes[][BENCH_NOTE_LEN]);
/* Client CPU per answered request in microseconds (whole run), 0 if none. */
double bench_cpu_us_per_request(const struct bench_summary *s);

void bench_report_text(FILE *out, const struct bench_summary *s);
void bench_report_json(FILE *out, const struct bench_summary *s);
/* Percentile distribution for plotting; returns 0 or -errno. */
int bench_report_csv(const char *path, const struct bench_summary *s)
    __attribute__((warn_unused_result));

#endif
