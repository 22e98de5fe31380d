/* echobench.c - the load generator's command line, threads, progress and exit.
 *
 *     echobench [-H host] [-p port] [-U path] [-t threads] [-c conns] [-P depth]
 *               [-s size|min-max] [-d s | -n count] [-w s] [-R rate] ...
 *     echobench merge [--json] A.json B.json ...
 *
 * This file only orchestrates: it parses options into a struct bench_config,
 * raises the descriptor limit, starts the load threads (client/bench_loop.c),
 * prints a progress line each second, collects the threads' seconds for the
 * series and --hdr-log (client/hdr_log.c), merges the threads' results and
 * reports them (client/bench_report.c), once or once per staircase step, and
 * turns --slo (client/bench_slo.c) into the exit status. `merge` is
 * client/bench_merge.c. docs/echobench.md has the details and the --json
 * schema.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "client/args.h"
#include "client/bench.h"
#include "client/bench_merge.h"
#include "client/bench_slo.h"
#include "client/hdr_log.h"

enum exit_code {
    EXIT_OK = 0,
    EXIT_FAILED_REQUESTS = 1,   /* some requests failed, or none succeeded */
    EXIT_USAGE = 2,
    EXIT_NO_RUN = 3,            /* the target could not be used at all */
    EXIT_SLO_MISSED = 4,        /* --slo: the run (or every staircase step) missed it */
};
/* Staircase steps at most (-R START:END:STEP, --steps). */
#define MAX_STEPS 256

#define DEFAULT_CONNECTIONS 50
#define DEFAULT_DURATION_S 10.0
#define DEFAULT_TIMEOUT_S 10.0
#define DEFAULT_SIZE 64
#define MAX_THREADS 1024
#define MAX_CONNECTIONS 1000000
#define MAX_SECONDS 31536000.0
/* Descriptors the process needs besides its connections (epoll, stdio, logs). */
#define FD_RESERVE 64
/* How often the main thread looks whether the threads are done. */
#define POLL_INTERVAL_NS 20000000ull
#define PROGRESS_INTERVAL_NS 1000000000ull
#define NS_PER_S 1e9

static const char usage_text[] =
    "usage: echobench [options]\n"
    "       echobench merge [--json] A.json B.json ...   (runs of several hosts, exactly)\n"
    "\n"
    "Load generator for echod, plain echo servers, redis, memcached and HTTP servers.\n"
    "\n"
    "target:\n"
    "  -H HOST          server host (default 127.0.0.1, ::1 with -6)\n"
    "  -p PORT          server port (default 7007)\n"
    "  -U PATH          unix socket path (@name: abstract namespace)\n"
    "  -4, -6           resolve HOST to IPv4 / IPv6 only\n"
    "load:\n"
    "  -t THREADS       load threads, each one epoll loop (default 1)\n"
    "  -c CONNS         connections in total, spread over the threads (default 50)\n"
    "  -P DEPTH         requests in flight per connection (pipeline; default 1)\n"
    "  -s SIZE|MIN-MAX  payload bytes, fixed or uniform in MIN..MAX; K/M suffixes\n"
    "                   (binary) allowed (default 64; http: 0, a GET)\n"
    "  --mix E:P        weights of ECHO and PING requests, e.g. 9:1 (default 1:0)\n"
    "  -d SECONDS       measured duration (default 10 unless -n)\n"
    "  -n COUNT         measured requests in total instead of a duration (k/M/G allowed)\n"
    "  -w SECONDS       warm-up before the measurement, not counted (default 0)\n"
    "  -R RATE          open loop: RATE requests/s over all connections (with --oneshot,\n"
    "                   connections/s); latency counts from each request's intended send\n"
    "                   time, so a stall cannot hide (no coordinated omission)\n"
    "  -R START:END:STEP, --steps R1,R2,...\n"
    "                   a staircase of open-loop runs, a line each; reports the knee (the\n"
    "                   highest rate that met --slo) and stops at the first step missing it\n"
    "  --slo TERMS      e.g. 'p99<2ms,p99.9<10ms,errors<0.1%,rate>=95%': exit 0 when all\n"
    "                   hold, 4 when one is missed\n"
    "  -T SECONDS       a request or connect without progress this long fails (default 10)\n"
    "  --oneshot        a connection per request: connect, send, shutdown(SHUT_WR), read\n"
    "                   to EOF, close; reports connections/s and connect time apart\n"
    "  --no-spread      with --oneshot to 127.x: do not spread source addresses over 127/8\n"
    "  --idle           open the connections and hold them for -d seconds, no requests\n"
    "  --proto P        framed (echod, default), raw (plain echo, RFC 862), redis (RESP\n"
    "                   ECHO), memcache (meta no-op mn) or http (HTTP/1.1 GET or POST)\n"
    "  --path PATH      http: the request path (default /)\n"
    "  -H 'Name: value', --header 'Name: value'\n"
    "                   http: a request header (repeatable)\n"
    "  --no-check-body  http: accept any 2xx body to a POST (servers that do not echo)\n"
    "  --spin           busy-poll instead of sleeping: open-loop sends leave on time even\n"
    "                   where waking a sleeping CPU is slow (VMs), at one CPU per thread\n"
    "  --start-at TIME  begin at TIME (seconds since the epoch, or HH:MM[:SS] UTC), so\n"
    "                   several hosts run together\n"
    "output:\n"
    "  --json           one JSON object on stdout instead of the text report\n"
    "  --hdr-log FILE   each second's latency histogram in HdrHistogram's interval log\n"
    "  --latency-csv F  write the latency percentile distribution to F (CSV)\n"
    "  --progress       a progress line on stderr each second (default when a TTY)\n"
    "  --no-progress\n"
    "  -h, --help\n"
    "\n"
    "Every reply byte is checked. Errors are counted by kind: connect_refused,\n"
    "connect_timeout, connect_other, ports_exhausted, reset, closed, timeout,\n"
    "mismatch, fd_limit, error frames and HTTP statuses by code; a failed request\n"
    "never counts as a success.\n"
    "\n"
    "--json prints one object: tool, version, target, proto, mode (closed|open|idle),\n"
    "oneshot, threads, connections, pipeline, size_min, size_max, ping_ratio,\n"
    "rate_target, warmup_s, duration_s, requests, requests_per_s, connections_per_s,\n"
    "payload_bytes, mb_per_s, latency_us {count min p50 p90 p99 p99_9 p99_99 max mean\n"
    "stdev}, connect_us, send_lag_us, errors {total, <kind>..., error_frames {code: n},\n"
    "http_status {code: n}}, totals {issued ok bytes_out bytes_in connections_opened\n"
    "connections_max_open}, stalled, client_cpu_s, client_wall_s,\n"
    "client_cpu_us_per_request, client_busy_max, notes [...], slo, steps, knee_rate,\n"
    "window_start_unix, window_end_unix, series [...], histograms {...}.\n"
    "See docs/echobench.md.\n"
    "\n"
    "exit status: 0 all requests succeeded; 1 some failed (or none succeeded);\n"
    "2 usage error; 3 the target could not be used at all; 4 --slo missed.\n";

static atomic_bool stop_flag;
/* --start-at: the wall-clock time the (first) run begins; 0: at once. */
static double start_at_unix;
static atomic_uint threads_done;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_flag, true);
}

static void die_usage(const char *fmt, const char *what)
{
    fprintf(stderr, "echobench: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n(see echobench -h)\n");
    exit(EXIT_USAGE);
}

struct cli {
    struct args_target target;
    bool no_spread;
    bool json;
    int progress;           /* -1 auto, 0 off, 1 on */
    const char *csv_path;
    bool have_duration;
    struct bench_slo slo;
    const char *hdr_path;       /* --hdr-log */
    double steps[MAX_STEPS];    /* staircase rates; nsteps 0: one run */
    unsigned nsteps;
};

static uint64_t parse_u64_or_die(const char *opt, const char *s, const char *units, uint64_t min,
                                 uint64_t max)
{
    uint64_t v;
    char err[200];
    if (args_parse_u64(s, units, min, max, &v, err, sizeof(err)) < 0)
        die_usage(opt, err);
    return v;
}

static double parse_seconds_or_die(const char *opt, const char *s, double min)
{
    double v;
    char err[200];
    if (args_parse_seconds(s, min, MAX_SECONDS, &v, err, sizeof(err)) < 0)
        die_usage(opt, err);
    return v;
}

static void parse_size(const char *s, struct bench_config *cfg)
{
    char lo[64];
    const char *dash = strchr(s, '-');
    if (dash == NULL) {
        cfg->size_min = cfg->size_max =
            (uint32_t)parse_u64_or_die("-s: %s", s, "bytes", 0, BENCH_SIZE_MAX);
        return;
    }
    size_t n = (size_t)(dash - s);
    if (n == 0 || n >= sizeof(lo))
        die_usage("-s: expected SIZE or MIN-MAX: %s", s);
    memcpy(lo, s, n);
    lo[n] = '\0';
    cfg->size_min = (uint32_t)parse_u64_or_die("-s: %s", lo, "bytes", 0, BENCH_SIZE_MAX);
    cfg->size_max = (uint32_t)parse_u64_or_die("-s: %s", dash + 1, "bytes", 0, BENCH_SIZE_MAX);
    if (cfg->size_max < cfg->size_min)
        die_usage("-s: MIN is above MAX: %s", s);
}

static void parse_mix(const char *s, struct bench_config *cfg)
{
    char *end;
    errno = 0;
    double e = strtod(s, &end);
    if (end == s || *end != ':' || errno != 0)
        die_usage("--mix: expected ECHO:PING weights, e.g. 9:1: %s", s);
    const char *p_text = end + 1;
    double p = strtod(p_text, &end);
    if (end == p_text || *end != '\0' || errno != 0 || !(e >= 0) || !(p >= 0) || e + p <= 0 ||
        !isfinite(e + p))
        die_usage("--mix: expected ECHO:PING weights, e.g. 9:1: %s", s);
    cfg->ping_ratio = p / (e + p);
}

static double parse_rate_or_die(const char *opt, const char *s)
{
    double v;
    char err[200];
    if (args_parse_seconds(s, 0.001, 1e9, &v, err, sizeof(err)) < 0) {
        fprintf(stderr, "echobench: %s: expected requests per second (a number): %s\n", opt, s);
        exit(EXIT_USAGE);
    }
    return v;
}

static double realtime_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --start-at: seconds since the epoch ("1764598200.5"), or HH:MM[:SS] today
 * in UTC. Not more than a day ahead, not in the past. */
static double parse_start_at(const char *s)
{
    double now = realtime_s(), t;
    char *end;
    unsigned h, m, sec = 0;
    int used = 0, more = 0;
    if (sscanf(s, "%2u:%2u%n", &h, &m, &used) == 2 &&
        (s[used] == '\0' ||
         (sscanf(s + used, ":%2u%n", &sec, &more) == 1 && s[used + more] == '\0'))) {
        if (h > 23 || m > 59 || sec > 59)
            die_usage("--start-at: not a time of day: %s", s);
        double day = floor(now / 86400) * 86400;
        t = day + h * 3600.0 + m * 60.0 + sec;
    } else {
        errno = 0;
        t = strtod(s, &end);
        if (end == s || *end != '\0' || errno != 0)
            die_usage("--start-at: expected seconds since the epoch or HH:MM[:SS] (UTC): %s", s);
    }
    if (t < now - 1 || t > now + 86400)
        die_usage("--start-at: not within the next day: %s", s);
    return t;
}

/* -R START:END:STEP: START, START+STEP, ... up to END (inclusive). */
static void parse_staircase(const char *s, struct cli *cli)
{
    char buf[128];
    if (strlen(s) >= sizeof(buf))
        die_usage("-R: expected START:END:STEP: %s", s);
    strcpy(buf, s);
    char *a = strtok(buf, ":"), *b = strtok(NULL, ":"), *c = strtok(NULL, ":");
    if (a == NULL || b == NULL || c == NULL || strtok(NULL, ":") != NULL)
        die_usage("-R: expected START:END:STEP: %s", s);
    double start = parse_rate_or_die("-R", a), end = parse_rate_or_die("-R", b),
           step = parse_rate_or_die("-R", c);
    if (end < start)
        die_usage("-R: END is below START: %s", s);
    cli->nsteps = 0;
    for (double r = start; r <= end * (1 + 1e-9); r += step) {
        if (cli->nsteps == MAX_STEPS)
            die_usage("-R: more than 256 steps: %s", s);
        cli->steps[cli->nsteps++] = r;
    }
}

/* --steps R1,R2,...: rates in the order given. */
static void parse_steps(const char *s, struct cli *cli)
{
    char buf[4096];
    if (strlen(s) >= sizeof(buf))
        die_usage("--steps: too long: %s", s);
    strcpy(buf, s);
    cli->nsteps = 0;
    for (char *t = strtok(buf, ","); t != NULL; t = strtok(NULL, ",")) {
        if (cli->nsteps == MAX_STEPS)
            die_usage("--steps: more than 256 steps: %s", s);
        cli->steps[cli->nsteps++] = parse_rate_or_die("--steps", t);
    }
    if (cli->nsteps == 0)
        die_usage("--steps: expected a list of rates: %s", s);
}

/* -H takes a host or, for --proto http, a header: "Name: value" (a token,
 * then a colon) that is not an IPv6 address. */
static bool looks_like_header(const char *s)
{
    struct in6_addr a6;
    if (inet_pton(AF_INET6, s, &a6) == 1)
        return false;
    size_t n = strspn(s, "!#$%&'*+-.^_`|~0123456789"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
    return n > 0 && s[n] == ':' && s[n + 1] != ':' && strpbrk(s, "\r\n") == NULL;
}

static void add_header(struct bench_config *cfg, const char *h)
{
    if (cfg->http_nheaders == sizeof(cfg->http_headers) / sizeof(cfg->http_headers[0]))
        die_usage("%s", "too many headers (at most 64)");
    cfg->http_headers[cfg->http_nheaders++] = h;
}

static void parse_options(int argc, char **argv, struct bench_config *cfg, struct cli *cli)
{
    enum {
        OPT_MIX = 256, OPT_ONESHOT, OPT_NO_SPREAD, OPT_IDLE, OPT_PROTO, OPT_JSON, OPT_CSV,
        OPT_PROGRESS, OPT_NO_PROGRESS, OPT_SPIN, OPT_PATH, OPT_HEADER, OPT_NO_CHECK_BODY,
        OPT_STEPS, OPT_SLO, OPT_HDR_LOG, OPT_START_AT,
    };
    static const struct option longopts[] = {
        {"mix", required_argument, NULL, OPT_MIX},
        {"oneshot", no_argument, NULL, OPT_ONESHOT},
        {"no-spread", no_argument, NULL, OPT_NO_SPREAD},
        {"idle", no_argument, NULL, OPT_IDLE},
        {"proto", required_argument, NULL, OPT_PROTO},
        {"json", no_argument, NULL, OPT_JSON},
        {"latency-csv", required_argument, NULL, OPT_CSV},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
        {"spin", no_argument, NULL, OPT_SPIN},
        {"path", required_argument, NULL, OPT_PATH},
        {"header", required_argument, NULL, OPT_HEADER},
        {"no-check-body", no_argument, NULL, OPT_NO_CHECK_BODY},
        {"steps", required_argument, NULL, OPT_STEPS},
        {"slo", required_argument, NULL, OPT_SLO},
        {"hdr-log", required_argument, NULL, OPT_HDR_LOG},
        {"start-at", required_argument, NULL, OPT_START_AT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cfg->threads = 1;
    cfg->connections = DEFAULT_CONNECTIONS;
    cfg->pipeline = 1;
    cfg->size_min = cfg->size_max = DEFAULT_SIZE;
    cfg->timeout_s = DEFAULT_TIMEOUT_S;
    cfg->mode = BENCH_MODE_CLOSED;
    cfg->proto = BENCH_PROTO_FRAMED;
    cli->target.family = AF_UNSPEC;
    cli->progress = -1;
    bool idle = false;
    int c;
    cfg->http_path = "/";
    cfg->http_check_body = true;
    bool size_given = false;
    while ((c = getopt_long(argc, argv, "H:p:U:46t:c:P:s:d:n:w:R:T:h", longopts, NULL)) != -1) {
        if (c == 'H' && looks_like_header(optarg)) {
            add_header(cfg, optarg);
            continue;
        }
        if (args_target_option(c, optarg, &cli->target))
            continue;
        switch (c) {
        case 't':
            cfg->threads = (unsigned)parse_u64_or_die("-t: %s", optarg, NULL, 1, MAX_THREADS);
            break;
        case 'c':
            cfg->connections =
                (unsigned)parse_u64_or_die("-c: %s", optarg, "count", 1, MAX_CONNECTIONS);
            break;
        case 'P':
            cfg->pipeline =
                (unsigned)parse_u64_or_die("-P: %s", optarg, NULL, 1, BENCH_PIPELINE_MAX);
            break;
        case 's':
            parse_size(optarg, cfg);
            size_given = true;
            break;
        case OPT_PATH:
            if (optarg[0] != '/' || strpbrk(optarg, " \r\n") != NULL)
                die_usage("--path: a path starting with / (no spaces): %s", optarg);
            cfg->http_path = optarg;
            break;
        case OPT_HEADER:
            if (!looks_like_header(optarg))
                die_usage("--header: expected 'Name: value': %s", optarg);
            add_header(cfg, optarg);
            break;
        case OPT_NO_CHECK_BODY: cfg->http_check_body = false; break;
        case 'd':
            cfg->duration_s = parse_seconds_or_die("-d: %s", optarg, 0.001);
            cli->have_duration = true;
            break;
        case 'n':
            cfg->requests = parse_u64_or_die("-n: %s", optarg, "count", 1, UINT64_MAX / 2);
            break;
        case 'w': cfg->warmup_s = parse_seconds_or_die("-w: %s", optarg, 0); break;
        case 'R':
            if (strchr(optarg, ':') != NULL)
                parse_staircase(optarg, cli);
            else
                cfg->rate = parse_rate_or_die("-R", optarg);
            cfg->mode = BENCH_MODE_OPEN;
            break;
        case OPT_HDR_LOG: cli->hdr_path = optarg; break;
        case OPT_START_AT: start_at_unix = parse_start_at(optarg); break;
        case OPT_STEPS: parse_steps(optarg, cli); cfg->mode = BENCH_MODE_OPEN; break;
        case OPT_SLO: {
            char err[200];
            if (bench_slo_parse(optarg, &cli->slo, err, sizeof(err)) < 0)
                die_usage("--slo: %s", err);
            break;
        }
        case 'T': cfg->timeout_s = parse_seconds_or_die("-T: %s", optarg, 0.001); break;
        case OPT_MIX: parse_mix(optarg, cfg); break;
        case OPT_ONESHOT: cfg->oneshot = true; break;
        case OPT_NO_SPREAD: cli->no_spread = true; break;
        case OPT_IDLE: idle = true; break;
        case OPT_PROTO:
            if (strcmp(optarg, "framed") == 0)
                cfg->proto = BENCH_PROTO_FRAMED;
            else if (strcmp(optarg, "raw") == 0)
                cfg->proto = BENCH_PROTO_RAW;
            else if (strcmp(optarg, "redis") == 0)
                cfg->proto = BENCH_PROTO_REDIS;
            else if (strcmp(optarg, "memcache") == 0)
                cfg->proto = BENCH_PROTO_MEMCACHE;
            else if (strcmp(optarg, "http") == 0)
                cfg->proto = BENCH_PROTO_HTTP;
            else
                die_usage("--proto: framed, raw, redis, memcache or http, not %s", optarg);
            break;
        case OPT_JSON: cli->json = true; break;
        case OPT_CSV: cli->csv_path = optarg; break;
        case OPT_PROGRESS: cli->progress = 1; break;
        case OPT_NO_PROGRESS: cli->progress = 0; break;
        case OPT_SPIN: cfg->spin = true; break;
        case 'h':
            fputs(usage_text, stdout);
            exit(EXIT_OK);
        default:
            fputs(usage_text, stderr);
            exit(EXIT_USAGE);
        }
    }
    if (optind < argc)
        die_usage("unexpected argument: %s", argv[optind]);

    if (idle) {
        if (cfg->mode == BENCH_MODE_OPEN || cfg->oneshot || cfg->requests > 0)
            die_usage("%s", "--idle holds connections for -d seconds: no -R, -n or --oneshot");
        cfg->mode = BENCH_MODE_IDLE;
    }
    if (cli->have_duration && cfg->requests > 0)
        die_usage("%s", "give -d or -n, not both");
    if (cli->nsteps > 0 && (cfg->requests > 0 || cfg->mode != BENCH_MODE_OPEN))
        die_usage("%s", "a staircase (-R START:END:STEP or --steps) runs each step for -d seconds: no -n, no --idle");
    if (!cli->have_duration && cfg->requests == 0)
        cfg->duration_s = DEFAULT_DURATION_S;
    if (cfg->proto != BENCH_PROTO_FRAMED && cfg->ping_ratio > 0)
        die_usage("%s", "only --proto framed has PING: drop --mix");
    if (cfg->proto == BENCH_PROTO_MEMCACHE)
        cfg->size_min = cfg->size_max = 0;      /* mn carries no payload */
    if (cfg->proto == BENCH_PROTO_HTTP && !size_given)
        cfg->size_min = cfg->size_max = 0;      /* GET unless a body size is asked */
    if (cfg->proto != BENCH_PROTO_HTTP && (cfg->http_nheaders > 0 || strcmp(cfg->http_path, "/")))
        die_usage("%s", "--path and headers (-H 'Name: value') are for --proto http");
    if (cfg->proto == BENCH_PROTO_RAW) {
        if (cfg->size_min == 0)
            die_usage("%s", "--proto raw needs requests of at least 1 byte (-s)");
    }
    if (cfg->threads > cfg->connections)
        cfg->threads = cfg->connections;
    if (cfg->pipeline > 1 && cfg->oneshot)
        cfg->pipeline = 1;      /* one request per connection */
}

/* Raise the soft descriptor limit to what the connections need (and the hard
 * one too when privileged). Returns the limit in force. */
static rlim_t raise_nofile(rlim_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    if (rl.rlim_cur >= need)
        return rl.rlim_cur;
    if (rl.rlim_max < need) {
        struct rlimit want = {need, need};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            return need;
    }
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    return rl.rlim_cur;
}

static bool is_loopback_v4(const struct net_addr *a)
{
    if (a->family != AF_INET)
        return false;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
    return (ntohl(sin->sin_addr.s_addr) & BENCH_LOOPBACK_MASK) == BENCH_LOOPBACK_NET;
}

static void *thread_entry(void *arg)
{
    bench_thread_main(arg);
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        if (atomic_load(&stop_flag))
            break;
}

struct progress_state {
    uint64_t last_ns;
    uint64_t last_ok;
    struct hist merged;
};

static void print_progress(const struct bench_config *cfg, struct bench_thread *threads,
                           uint64_t start_ns, uint64_t now, struct progress_state *ps)
{
    uint64_t ok = 0, errors = 0, open = 0;
    hist_init(&ps->merged);
    for (unsigned i = 0; i < cfg->threads; i++) {
        struct bench_progress *p = &threads[i].progress;
        ok += atomic_load_explicit(&p->ok_total, memory_order_relaxed);
        errors += atomic_load_explicit(&p->errors, memory_order_relaxed);
        open += atomic_load_explicit(&p->open, memory_order_relaxed);
        pthread_mutex_lock(&p->lock);
        hist_merge(&ps->merged, &p->snapshot);
        pthread_mutex_unlock(&p->lock);
    }
    double dt = (double)(now - ps->last_ns) / NS_PER_S;
    double elapsed = (double)(now - start_ns) / NS_PER_S;
    const char *phase = elapsed < cfg->warmup_s ? "  (warm-up)" : "";
    if (cfg->mode == BENCH_MODE_IDLE) {
        fprintf(stderr, "%7.1fs  %llu connections open  errors %llu\n", elapsed,
                (unsigned long long)open, (unsigned long long)errors);
    } else if (ps->merged.count > 0) {
        fprintf(stderr, "%7.1fs  %10.0f %s  p99 %.1f us  errors %llu%s\n", elapsed,
                dt > 0 ? (double)(ok - ps->last_ok) / dt : 0.0, cfg->oneshot ? "conn/s" : "req/s",
                (double)hist_percentile(&ps->merged, 99) / 1000.0, (unsigned long long)errors,
                phase);
    } else {
        fprintf(stderr, "%7.1fs  %10.0f %s  p99 -  errors %llu%s\n", elapsed,
                dt > 0 ? (double)(ok - ps->last_ok) / dt : 0.0, cfg->oneshot ? "conn/s" : "req/s",
                (unsigned long long)errors, phase);
    }
    ps->last_ns = now;
    ps->last_ok = ok;
}

/* Gathers the threads' seconds into the series and the --hdr-log file. */
struct collector {
    uint64_t next;              /* the next second to collect */
    struct bench_second *v;
    size_t n, cap;
    FILE *hdr;                  /* --hdr-log, or NULL */
    double hdr_base_unix;       /* the log's base time */
    double window_unix;         /* this run's measured window starts */
    bool overrun;
    bool failed;                /* out of memory or the log could not be written */
    struct hist sec;
};

static struct collector coll;

/* Collect every second that is over and that all threads have handed over
 * (final: all there are). now_rel: seconds into the measured window (at the
 * end: where the run ended, which cuts the last second short). */
static void collect(struct bench_thread *threads, unsigned n, bool final, double now_rel)
{
    for (;;) {
        uint64_t have = UINT64_MAX, most = 0;
        for (unsigned i = 0; i < n; i++) {
            uint64_t p = atomic_load(&threads[i].intervals->published);
            have = p < have ? p : have;
            most = p > most ? p : most;
        }
        if (final)
            have = most;
        if (n == 0 || coll.next >= have || (!final && (double)(coll.next + 1) > now_rel))
            return;
        uint64_t k = coll.next++;
        hist_init(&coll.sec);
        uint64_t ok = 0, errors = 0;
        for (unsigned i = 0; i < n; i++) {
            struct bench_intervals *iv = threads[i].intervals;
            struct bench_interval *slot = &iv->slot[k % BENCH_INTERVAL_SLOTS];
            pthread_mutex_lock(&iv->lock);
            if (slot->full && slot->sec == k) {
                hist_merge(&coll.sec, &slot->lat);
                ok += slot->ok;
                errors += slot->errors;
                slot->full = false;
            }
            pthread_mutex_unlock(&iv->lock);
            if (atomic_load(&iv->overrun))
                coll.overrun = true;
        }
        double length = 1.0;
        if (final && k + 1 == have && now_rel > (double)k && now_rel < (double)(k + 1))
            length = now_rel - (double)k;
        if (coll.n == coll.cap) {
            size_t cap = coll.cap ? 2 * coll.cap : 64;
            struct bench_second *v = realloc(coll.v, cap * sizeof(*v));
            if (v == NULL) {
                coll.failed = true;
                return;
            }
            coll.v = v;
            coll.cap = cap;
        }
        coll.v[coll.n++] = (struct bench_second){
            .length_s = length, .ok = ok, .errors = errors,
            .p50_us = (double)hist_percentile(&coll.sec, 50) / 1e3,
            .p99_us = (double)hist_percentile(&coll.sec, 99) / 1e3,
            .max_us = (double)coll.sec.max / 1e3 * (coll.sec.count > 0),
        };
        if (coll.hdr != NULL &&
            (hdr_log_interval(coll.hdr, coll.window_unix - coll.hdr_base_unix + (double)k,
                              length, &coll.sec) < 0 || fflush(coll.hdr) != 0))
            coll.failed = true;
    }
}

/* One run's outcome. */
struct run_out {
    struct bench_result total;
    struct bench_summary sum;
    int thread_error;           /* a load thread failed: -errno */
    bool setup_failed;
};

static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Start the load threads, wait for them, merge their results into out.
 * Returns 0, or -1 when set-up failed (said on stderr). */
static int run_load(const struct bench_config *cfg, struct run_out *out)
{
    memset(out, 0, sizeof(*out));
    atomic_store(&threads_done, 0);
    double cpu0 = cpu_seconds();
    struct bench_thread *threads = calloc(cfg->threads, sizeof(*threads));
    pthread_t *tids = calloc(cfg->threads, sizeof(*tids));
    if (threads == NULL || tids == NULL) {
        fprintf(stderr, "echobench: out of memory\n");
        free(threads);
        free(tids);
        return -1;
    }
    /* Connections, rate and request count are shared out in proportion, the
     * remainders going to the first threads so the totals are exact. */
    unsigned conns_before = 0, prepared = 0;
    int rc = 0;
    for (unsigned i = 0; i < cfg->threads; i++) {
        struct bench_thread *t = &threads[i];
        t->cfg = cfg;
        t->id = i;
        t->connections = cfg->connections / cfg->threads + (i < cfg->connections % cfg->threads);
        t->rate = cfg->rate * t->connections / cfg->connections;
        uint64_t before = (uint64_t)((unsigned __int128)cfg->requests * conns_before / cfg->connections);
        conns_before += t->connections;
        uint64_t upto = (uint64_t)((unsigned __int128)cfg->requests * conns_before / cfg->connections);
        t->requests = upto - before;
        t->stop = &stop_flag;
        pthread_mutex_init(&t->progress.lock, NULL);
        prepared++;
        rc = bench_thread_prepare(t);
        if (rc < 0) {
            fprintf(stderr, "echobench: preparing thread %u: %s\n", i, strerror(-rc));
            break;
        }
    }

    if (rc == 0 && start_at_unix > 0) {
        /* --start-at: several hosts begin together (their clocks agreeing). */
        struct timespec ts = {.tv_sec = (time_t)start_at_unix,
                              .tv_nsec = (long)((start_at_unix - floor(start_at_unix)) * 1e9)};
        while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR &&
               !atomic_load(&stop_flag))
            ;
        start_at_unix = 0;      /* a staircase's later steps follow at once */
    }
    uint64_t start_ns = bench_now_ns();
    double start_unix = realtime_s();
    coll.next = 0;
    coll.n = 0;
    coll.window_unix = start_unix + cfg->warmup_s;
    if (coll.hdr != NULL && coll.hdr_base_unix == 0) {
        coll.hdr_base_unix = start_unix;
        if (hdr_log_header(coll.hdr, start_unix) < 0)
            coll.failed = true;
    }
    unsigned started = 0;
    for (unsigned i = 0; rc == 0 && i < cfg->threads; i++) {
        threads[i].start_ns = start_ns;
        int e = pthread_create(&tids[i], NULL, thread_entry, &threads[i]);
        if (e != 0) {
            fprintf(stderr, "echobench: starting thread %u: %s\n", i, strerror(e));
            atomic_store(&stop_flag, true);
            rc = -e;
            break;
        }
        started++;
    }

    static struct progress_state ps;
    ps.last_ns = start_ns;
    ps.last_ok = 0;
    uint64_t next_progress = start_ns + PROGRESS_INTERVAL_NS;
    uint64_t interrupted_ns = 0;
    while (rc == 0 && atomic_load(&threads_done) < cfg->threads) {
        sleep_ns(POLL_INTERVAL_NS);
        uint64_t now = bench_now_ns();
        if (interrupted_ns == 0 && atomic_load(&stop_flag))
            interrupted_ns = now;
        if (cfg->progress && now >= next_progress) {
            print_progress(cfg, threads, start_ns, now, &ps);
            next_progress += PROGRESS_INTERVAL_NS;
        }
        uint64_t wu = start_ns + (uint64_t)(cfg->warmup_s * NS_PER_S);
        collect(threads, started, false, now > wu ? (double)(now - wu) / NS_PER_S : 0);
    }

    struct bench_result *total = &out->total;
    hist_init(&total->latency);
    hist_init(&total->connect);
    hist_init(&total->send_lag);
    for (unsigned i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
        bench_result_merge(total, &threads[i].result);
        if (threads[i].error < 0)
            out->thread_error = threads[i].error;
    }
    if (out->thread_error < 0)
        fprintf(stderr, "echobench: a load thread failed: %s\n", strerror(-out->thread_error));
    uint64_t end_ns = bench_now_ns();
    uint64_t warmup_end_ns = start_ns + (uint64_t)(cfg->warmup_s * NS_PER_S);
    collect(threads, started, true,
            end_ns > warmup_end_ns ? (double)(end_ns - warmup_end_ns) / NS_PER_S : 0);

    /* The measured window: from the end of warm-up to the end of the run (or
     * the interrupt); with -n, to the last measured reply. */
    uint64_t warmup_end = start_ns + (uint64_t)(cfg->warmup_s * NS_PER_S);
    uint64_t window_end = warmup_end + (uint64_t)(cfg->duration_s * NS_PER_S);
    if (cfg->requests > 0)
        window_end = total->last_done_ns;
    if (interrupted_ns != 0 && interrupted_ns < window_end)
        window_end = interrupted_ns;
    struct bench_summary *sum = &out->sum;
    sum->cfg = cfg;
    sum->r = total;
    sum->window_s = window_end > warmup_end ? (double)(window_end - warmup_end) / NS_PER_S : 0;
    sum->cpu_s = cpu_seconds() - cpu0;
    if (total->last_done_ns > window_end && cfg->requests == 0)
        sum->late_s = (double)(total->last_done_ns - window_end) / NS_PER_S;
    sum->wall_s = (double)(bench_now_ns() - start_ns) / NS_PER_S;
    for (int k = 0; k < BENCH_ERR_KINDS; k++)
        sum->errors_total += total->errors[k];
    for (unsigned i = 0; i < started; i++)
        if (threads[i].wall_s > 0 && threads[i].cpu_s / threads[i].wall_s > sum->busiest)
            sum->busiest = threads[i].cpu_s / threads[i].wall_s;

    for (unsigned i = 0; i < prepared; i++) {
        pthread_mutex_destroy(&threads[i].progress.lock);
        if (threads[i].intervals != NULL) {
            pthread_mutex_destroy(&threads[i].intervals->lock);
            free(threads[i].intervals);
        }
    }
    for (unsigned i = started; i < prepared; i++)
        bench_thread_discard(&threads[i]);
    free(threads);
    free(tids);
    out->setup_failed = rc < 0;
    return rc < 0 ? -1 : 0;
}

/* The exit status of one run without --slo. */
static int run_status(const struct bench_config *cfg, const struct run_out *o)
{
    if (o->setup_failed || o->total.connects == 0 || o->thread_error < 0)
        return EXIT_NO_RUN;
    if (o->sum.errors_total > 0 || (cfg->mode != BENCH_MODE_IDLE && o->total.ok_total == 0))
        return EXIT_FAILED_REQUESTS;
    return EXIT_OK;
}

/* Did a step (or the run) meet the SLO? Without --slo: no errors and, in
 * open loop, at least 95% of the asked rate. */
static bool step_met(const struct cli *cli, const struct bench_summary *s)
{
    if (cli->slo.n > 0)
        return bench_slo_met(&cli->slo, s);
    double rate = bench_sustained_rate(s);
    return s->errors_total == 0 && s->r->ok > 0 &&
           (s->cfg->mode != BENCH_MODE_OPEN || rate >= 0.95 * s->cfg->rate);
}

int main(int argc, char **argv)
{
    static struct bench_config cfg;
    static struct cli cli;
    if (argc > 1 && strcmp(argv[1], "merge") == 0)
        return bench_merge_main(argc - 1, argv + 1);
    parse_options(argc, argv, &cfg, &cli);
    cfg.progress = cli.progress == 1 || (cli.progress == -1 && isatty(STDERR_FILENO) == 1);

    char err[256];
    if (args_resolve_target(&cli.target, &cfg.addr, err, sizeof(err)) < 0) {
        fprintf(stderr, "echobench: %s\n", err);
        return EXIT_NO_RUN;
    }
    net_addr_format(&cfg.addr, cfg.target, sizeof(cfg.target));
    snprintf(cfg.http_host, sizeof(cfg.http_host), "%s",
             cfg.addr.family == AF_UNIX ? "localhost" : cfg.target);
    cfg.spread_sources = cfg.oneshot && !cli.no_spread && is_loopback_v4(&cfg.addr);

    rlim_t need = (rlim_t)cfg.connections + (rlim_t)cfg.threads * 2 + FD_RESERVE;
    rlim_t have = raise_nofile(need);
    if (have < need)
        fprintf(stderr, "echobench: warning: the descriptor limit is %llu, %u connections need "
                        "about %llu (ulimit -n)\n",
                (unsigned long long)have, cfg.connections, (unsigned long long)need);

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (cli.hdr_path != NULL && (coll.hdr = fopen(cli.hdr_path, "w")) == NULL) {
        fprintf(stderr, "echobench: --hdr-log %s: %s\n", cli.hdr_path, strerror(errno));
        return EXIT_NO_RUN;
    }

    unsigned nsteps = cli.nsteps > 0 ? cli.nsteps : 1;
    static struct run_out out;
    static struct bench_step steps[MAX_STEPS];
    unsigned done = 0;
    int status = EXIT_OK;
    double knee = 0;
    bool knee_found = false, missed = false;
    for (unsigned k = 0; k < nsteps && !atomic_load(&stop_flag); k++) {
        if (cli.nsteps > 0)
            cfg.rate = cli.steps[k];
        if (run_load(&cfg, &out) < 0)
            return EXIT_NO_RUN;
        out.sum.fd_have = have;
        out.sum.fd_need = need;
        bool met = step_met(&cli, &out.sum);
        status = run_status(&cfg, &out);
        if (cli.nsteps > 0) {
            bench_step_record(&steps[done++], &out.sum, met);
            if (!cli.json)
                bench_report_step(stdout, &steps[done - 1], k == 0);
            if (met && !missed) {
                knee = cfg.rate;
                knee_found = true;
            }
            if (!met) {
                missed = true;
                break;  /* past the knee: higher rates only make it worse */
            }
            if (status == EXIT_NO_RUN)
                break;
        }
    }
    if (done == 0 && cli.nsteps > 0)
        return EXIT_NO_RUN;     /* interrupted before the first step */

    struct bench_extra extra = {
        .slo = cli.slo.n > 0 ? &cli.slo : NULL,
        .steps = cli.nsteps > 0 ? steps : NULL,
        .nsteps = done,
        .knee_rate = knee_found ? knee : -1,
        .series = coll.v,
        .nseries = coll.n,
        .series_overrun = coll.overrun,
        .window_start_unix = coll.window_unix,
    };
    if (coll.hdr != NULL && fclose(coll.hdr) != 0)
        coll.failed = true;
    if (coll.failed)
        fprintf(stderr, "echobench: the per-second series%s is incomplete (out of memory or "
                        "a write error)\n", cli.hdr_path != NULL ? " or the --hdr-log file" : "");
    if (cli.json)
        bench_report_json(stdout, &out.sum, &extra);
    else
        bench_report_text(stdout, &out.sum, &extra);
    fflush(stdout);
    if (cli.csv_path != NULL) {
        int rc = bench_report_csv(cli.csv_path, &out.sum);
        if (rc < 0)
            fprintf(stderr, "echobench: writing %s: %s\n", cli.csv_path, strerror(-rc));
    }

    if (status == EXIT_NO_RUN)
        return EXIT_NO_RUN;
    if (cli.nsteps > 0)
        return knee_found ? EXIT_OK : cli.slo.n > 0 ? EXIT_SLO_MISSED : EXIT_FAILED_REQUESTS;
    if (cli.slo.n > 0)
        return bench_slo_met(&cli.slo, &out.sum) ? EXIT_OK : EXIT_SLO_MISSED;
    return status;
}
