/* stats_metrics.c - the /metrics families beyond metrics.c's base set:
 * requests by listener protocol and by kind, HTTP responses by status code,
 * errors and timeouts by kind, refusals by reason, accept pauses, what the
 * worker pools have lent, and two histograms: the server-side latency per
 * protocol and the length of the workers' busy loop turns. */
#include "server/stats_metrics.h"

static const char *const proto_labels[STATS_PROTOS] = {
    "proto=\"framed\"", "proto=\"raw\"", "proto=\"http\""};

static const char *const kind_labels[STATS_REQUEST_KINDS] = {
    [SK_FRAMED_ECHO] = "proto=\"framed\",kind=\"echo\"",
    [SK_FRAMED_PING] = "proto=\"framed\",kind=\"ping\"",
    [SK_FRAMED_STATS] = "proto=\"framed\",kind=\"stats\"",
    [SK_FRAMED_UNKNOWN] = "proto=\"framed\",kind=\"unknown\"",
    [SK_RAW_CHUNK] = "proto=\"raw\",kind=\"chunk\"",
    [SK_HTTP_HEAD_ECHO] = "proto=\"http\",kind=\"head_echo\"",
    [SK_HTTP_BODY_ECHO] = "proto=\"http\",kind=\"body_echo\"",
    [SK_HTTP_GENERATED] = "proto=\"http\",kind=\"generated\"",
    [SK_HTTP_JSON] = "proto=\"http\",kind=\"json\"",
    [SK_HTTP_PAGE] = "proto=\"http\",kind=\"page\"",
};

static const char *const error_labels[STATS_ERROR_KINDS] = {
    [SE_BAD_REQUEST] = "kind=\"bad_request\"",
    [SE_TOO_LARGE] = "kind=\"too_large\"",
    [SE_READ_TIMEOUT] = "kind=\"read_timeout\"",
    [SE_WRITE_TIMEOUT] = "kind=\"write_timeout\"",
    [SE_UNSUPPORTED] = "kind=\"unsupported\"",
    [SE_UNAVAILABLE] = "kind=\"unavailable\"",
    [SE_CUT] = "kind=\"cut\"",
    [SE_OTHER] = "kind=\"other\"",
};

static const char *const timeout_labels[STATS_TIMEOUT_KINDS] = {
    "kind=\"idle\"", "kind=\"read\"", "kind=\"write\"", "kind=\"linger\""};

static const char *const reject_labels[STATS_REJECT_REASONS] = {
    [SR_MAX_CONNECTIONS] = "reason=\"max_connections\"",
    [SR_PER_CLIENT] = "reason=\"max_connections_per_client\"",
    [SR_OVERLOADED] = "reason=\"overloaded\"",
};

/* A family of per-worker counters: an array in struct stats_worker. */
#define PER_WORKER(member, labels_, n)                                                   \
    .series = {.labels = (labels_), .nseries = (n)},                                    \
    .where = {.first = &w0->member, .series_stride = sizeof(w0->member),                \
              .worker_stride = sizeof(*w0), .nworkers = s->nworkers}

/* A family of process-wide counters in struct stats (written by one thread). */
#define GLOBAL(member, labels_, n)                                                       \
    .series = {.labels = (labels_), .nseries = (n)},                                    \
    .where = {.first = &s->member, .series_stride = sizeof(s->member),                  \
              .worker_stride = 0, .nworkers = 1}

void stats_metrics_describe(const struct stats *s, uint64_t now_ms, struct stats_metrics *m)
{
    const struct stats_worker *w0 = &s->workers[0];
    struct metrics_family *f = m->fam;
    *f++ = (struct metrics_family){
        .name = "echod_requests_total",
        .help = "Requests answered, by listener protocol.",
        .type = METRICS_COUNTER,
        PER_WORKER(requests_by_proto[0], proto_labels, STATS_PROTOS),
    };
    *f++ = (struct metrics_family){
        .name = "echod_requests_by_kind_total",
        .help = "Requests answered, by listener protocol and kind of request.",
        .type = METRICS_COUNTER,
        PER_WORKER(requests_by_kind[0], kind_labels, STATS_REQUEST_KINDS),
    };
    *f++ = (struct metrics_family){
        .name = "echod_http_responses_total",
        .help = "HTTP responses sent, by status code.",
        .type = METRICS_COUNTER,
        .series = {.name = "code", .base = STATS_HTTP_CODE_MIN, .nseries = STATS_HTTP_CODES},
        .where = {.first = &w0->http_responses[0],
                  .series_stride = sizeof(w0->http_responses[0]),
                  .worker_stride = sizeof(*w0), .nworkers = s->nworkers},
        .skip_zero = true,
    };
    *f++ = (struct metrics_family){
        .name = "echod_errors_by_kind_total",
        .help = "Errors answered to clients, or replies cut short, by kind.",
        .type = METRICS_COUNTER,
        PER_WORKER(errors_by_kind[0], error_labels, STATS_ERROR_KINDS),
    };
    *f++ = (struct metrics_family){
        .name = "echod_timeouts_total",
        .help = "Connection timers that expired, by kind (idle, read, write, lingering close).",
        .type = METRICS_COUNTER,
        PER_WORKER(timeouts[0], timeout_labels, STATS_TIMEOUT_KINDS),
    };
    *f++ = (struct metrics_family){
        .name = "echod_connections_rejected_by_reason_total",
        .help = "Connections the listener refused with a 503, by reason.",
        .type = METRICS_COUNTER,
        GLOBAL(rejected_by_reason[0], reject_labels, STATS_REJECT_REASONS),
    };
    *f++ = (struct metrics_family){
        .name = "echod_accept_pauses_total",
        .help = "Times accepting paused because descriptors or memory ran out.",
        .type = METRICS_COUNTER,
        GLOBAL(accept_pauses, NULL, 1),
    };
    *f++ = (struct metrics_family){
        .name = "echod_buffers_in_use",
        .help = "Input and output buffers lent to connections (64 KiB each).",
        .type = METRICS_GAUGE,
        PER_WORKER(buffers_in_use, NULL, 1),
    };
    *f++ = (struct metrics_family){
        .name = "echod_pipes_in_use",
        .help = "splice(2) pipes lent to connections.",
        .type = METRICS_GAUGE,
        PER_WORKER(pipes_in_use, NULL, 1),
    };
    *f++ = (struct metrics_family){
        .name = "echod_request_states_in_use",
        .help = "Protocol state blocks lent to connections with an HTTP request in flight.",
        .type = METRICS_GAUGE,
        PER_WORKER(states_in_use, NULL, 1),
    };
    struct metrics_hist_family *h = m->hist;
    *h++ = (struct metrics_hist_family){
        .name = "echod_request_duration_seconds",
        .help = "Server-side latency: from the loop turn that read a request to its reply's "
                "last byte written, by listener protocol.",
        .series = {.labels = proto_labels, .nseries = STATS_PROTOS},
        .where = {.first = &w0->latency[0], .series_stride = sizeof(w0->latency[0]),
                  .worker_stride = sizeof(*w0), .nworkers = s->nworkers},
    };
    *h++ = (struct metrics_hist_family){
        .name = "echod_worker_turn_seconds",
        .help = "Length of the workers' busy loop turns: how long an event can wait "
                "behind the others (the loop's lag).",
        .series = {.nseries = 1},
        .where = {.first = &w0->turn, .series_stride = 0, .worker_stride = sizeof(*w0),
                  .nworkers = s->nworkers},
    };
    m->src = (struct metrics_source){
        .stats = s,
        .now_ms = now_ms,
        .families = m->fam,
        .nfamilies = (size_t)(f - m->fam),
        .hists = m->hist,
        .nhists = (size_t)(h - m->hist),
    };
}
