/* bench_slo.h - service level objectives for echobench's exit status.
 *
 *     --slo 'p99<2ms,p99.9<10ms,errors<0.1%,rate>=95%'
 *
 * A list of terms METRIC OP VALUE, all of which must hold:
 *   pNN, pNN.N...   a latency percentile; mean; max     VALUE with ns, us, ms or s
 *                                                       (a bare number is us)
 *   errors          failed requests: a count, or with % a share of all requests
 *   rate            requests/s achieved: a number, or with % a share of -R
 * OP is <, <=, > or >=. Parsing happens once at start-up; checking reads a
 * finished run's summary. No allocation.
 */
#ifndef ECHOD_BENCH_SLO_H
#define ECHOD_BENCH_SLO_H

#include <stdbool.h>
#include <stddef.h>

#include "client/bench.h"

#define BENCH_SLO_TERMS_MAX 16

enum bench_slo_metric {
    BENCH_SLO_PERCENTILE,
    BENCH_SLO_MEAN,
    BENCH_SLO_MAX,
    BENCH_SLO_ERRORS,
    BENCH_SLO_RATE,
};

struct bench_slo_term {
    char text[48];          /* as given, for the report */
    enum bench_slo_metric metric;
    double pct;             /* BENCH_SLO_PERCENTILE */
    char op[3];             /* "<", "<=", ">", ">=" */
    double value;           /* latency in us; errors and rate as given */
    bool relative;          /* value is a percentage */
};

struct bench_slo {
    unsigned n;
    struct bench_slo_term terms[BENCH_SLO_TERMS_MAX];
};

/* Parse spec into slo; returns 0, or -1 with a reason in err. */
int bench_slo_parse(const char *spec, struct bench_slo *slo, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The measured value of a term for a run (latency in us, errors as a count
 * or percent, rate in req/s or percent of -R); NAN when it cannot be had
 * (a relative rate without -R). */
double bench_slo_value(const struct bench_slo_term *t, const struct bench_summary *s);
bool bench_slo_term_met(const struct bench_slo_term *t, double value);
/* Every term holds (true for an empty SLO). */
bool bench_slo_met(const struct bench_slo *slo, const struct bench_summary *s);

#endif
