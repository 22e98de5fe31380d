/* stats_metrics.c - the /metrics families beyond metrics.c's base set:
 * requests by listener protocol, HTTP responses by status code, and the
 * server-side latency histogram per protocol. */
#include "server/stats_metrics.h"

static const char *const proto_labels[STATS_PROTOS] = {
    "proto=\"framed\"", "proto=\"raw\"", "proto=\"http\""};

void stats_metrics_describe(const struct stats *s, uint64_t now_ms, struct stats_metrics *m)
{
    const struct stats_worker *w0 = &s->workers[0];
    m->fam[0] = (struct metrics_family){
        .name = "echod_requests_total",
        .help = "Requests answered, by listener protocol.",
        .type = METRICS_COUNTER,
        .series = {.labels = proto_labels, .nseries = STATS_PROTOS},
        .where = {.first = &w0->requests_by_proto[0],
                  .series_stride = sizeof(w0->requests_by_proto[0]),
                  .worker_stride = sizeof(*w0), .nworkers = s->nworkers},
    };
    m->fam[1] = (struct metrics_family){
        .name = "echod_http_responses_total",
        .help = "HTTP responses sent, by status code.",
        .type = METRICS_COUNTER,
        .series = {.name = "code", .base = STATS_HTTP_CODE_MIN, .nseries = STATS_HTTP_CODES},
        .where = {.first = &w0->http_responses[0],
                  .series_stride = sizeof(w0->http_responses[0]),
                  .worker_stride = sizeof(*w0), .nworkers = s->nworkers},
        .skip_zero = true,
    };
    m->hist[0] = (struct metrics_hist_family){
        .name = "echod_request_duration_seconds",
        .help = "Server-side latency: from the loop turn that read a request to its reply's "
                "last byte written, by listener protocol.",
        .series = {.labels = proto_labels, .nseries = STATS_PROTOS},
        .where = {.first = &w0->latency[0], .series_stride = sizeof(w0->latency[0]),
                  .worker_stride = sizeof(*w0), .nworkers = s->nworkers},
    };
    m->src = (struct metrics_source){
        .stats = s,
        .now_ms = now_ms,
        .families = m->fam,
        .nfamilies = STATS_METRICS_FAMILIES,
        .hists = m->hist,
        .nhists = STATS_METRICS_HISTS,
    };
}
