/* bench_slo.c - --slo terms: parsing and checking (see bench_slo.h). */
#include "client/bench_slo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *why, const char *term)
{
    snprintf(err, errlen, "%s: %s", why, term);
    return -1;
}

/* One term, text[0..n). */
static int parse_term(const char *text, size_t n, struct bench_slo_term *t, char *err,
                      size_t errlen)
{
    if (n == 0 || n >= sizeof(t->text))
        return fail(err, errlen, "empty or too long SLO term", text);
    memcpy(t->text, text, n);
    t->text[n] = '\0';
    const char *s = t->text;
    size_t m = strcspn(s, "<>");
    if (s[m] == '\0')
        return fail(err, errlen, "an SLO term needs < <= > or >=", s);
    char metric[16];
    if (m == 0 || m >= sizeof(metric))
        return fail(err, errlen, "unknown SLO metric", s);
    memcpy(metric, s, m);
    metric[m] = '\0';
    const char *op = s + m;
    size_t oplen = op[1] == '=' ? 2 : 1;
    memcpy(t->op, op, oplen);
    t->op[oplen] = '\0';

    if (metric[0] == 'p' && metric[1] != '\0') {
        char *end;
        t->pct = strtod(metric + 1, &end);
        if (*end != '\0' || !(t->pct > 0) || !(t->pct < 100))
            return fail(err, errlen, "a percentile is p0.1 to p99.999", s);
        t->metric = BENCH_SLO_PERCENTILE;
    } else if (strcmp(metric, "mean") == 0) {
        t->metric = BENCH_SLO_MEAN;
    } else if (strcmp(metric, "max") == 0) {
        t->metric = BENCH_SLO_MAX;
    } else if (strcmp(metric, "errors") == 0) {
        t->metric = BENCH_SLO_ERRORS;
    } else if (strcmp(metric, "rate") == 0) {
        t->metric = BENCH_SLO_RATE;
    } else {
        return fail(err, errlen, "unknown SLO metric (pNN, mean, max, errors, rate)", s);
    }

    const char *v = op + oplen;
    char *end;
    t->value = strtod(v, &end);
    if (end == v || !isfinite(t->value) || t->value < 0)
        return fail(err, errlen, "an SLO term needs a number", s);
    bool latency = t->metric <= BENCH_SLO_MAX;
    if (latency) {
        if (strcmp(end, "ns") == 0)
            t->value /= 1000;
        else if (strcmp(end, "ms") == 0)
            t->value *= 1000;
        else if (strcmp(end, "s") == 0)
            t->value *= 1e6;
        else if (*end != '\0' && strcmp(end, "us") != 0)
            return fail(err, errlen, "a latency is in ns, us, ms or s", s);
    } else if (strcmp(end, "%") == 0) {
        t->relative = true;
    } else if (*end != '\0') {
        return fail(err, errlen, "errors and rate take a number or a percentage", s);
    }
    return 0;
}

int bench_slo_parse(const char *spec, struct bench_slo *slo, char *err, size_t errlen)
{
    memset(slo, 0, sizeof(*slo));
    const char *p = spec;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (slo->n == BENCH_SLO_TERMS_MAX)
            return fail(err, errlen, "too many SLO terms", spec);
        if (parse_term(p, n, &slo->terms[slo->n], err, errlen) < 0)
            return -1;
        slo->n++;
        if (p[n] == '\0')
            return 0;
        p += n + 1;
    }
}

double bench_slo_value(const struct bench_slo_term *t, const struct bench_summary *s)
{
    const struct hist *h = &s->r->latency;
    switch (t->metric) {
    case BENCH_SLO_PERCENTILE:
        return (double)hist_percentile(h, t->pct) / 1000.0;
    case BENCH_SLO_MEAN:
        return hist_mean(h) / 1000.0;
    case BENCH_SLO_MAX:
        return (double)h->max / 1000.0;
    case BENCH_SLO_ERRORS: {
        /* Errors are counted over the whole run, so are the requests. */
        double all = (double)(s->r->ok_total + s->errors_total);
        if (!t->relative)
            return (double)s->errors_total;
        return all > 0 ? 100.0 * (double)s->errors_total / all : 0.0;
    }
    case BENCH_SLO_RATE: {
        double rate = bench_sustained_rate(s);
        if (!t->relative)
            return rate;
        if (s->cfg->mode != BENCH_MODE_OPEN || s->cfg->rate <= 0)
            return NAN;
        return 100.0 * rate / s->cfg->rate;
    }
    }
    return NAN;
}

bool bench_slo_term_met(const struct bench_slo_term *t, double v)
{
    if (isnan(v))
        return false;
    if (strcmp(t->op, "<") == 0)
        return v < t->value;
    if (strcmp(t->op, "<=") == 0)
        return v <= t->value;
    if (strcmp(t->op, ">") == 0)
        return v > t->value;
    return v >= t->value;
}

bool bench_slo_met(const struct bench_slo *slo, const struct bench_summary *s)
{
    for (unsigned i = 0; i < slo->n; i++)
        if (!bench_slo_term_met(&slo->terms[i], bench_slo_value(&slo->terms[i], s)))
            return false;
    return true;
}
