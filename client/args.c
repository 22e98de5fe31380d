/* args.c - target resolution and number parsing for the client tools.
 *
 * Convention: 0 on success, -EINVAL with a reason in err on bad input.
 */
#include "client/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, const char *what)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, fmt, what);
    return -EINVAL;
}

bool args_target_option(int opt, const char *arg, struct args_target *t)
{
    switch (opt) {
    case 'H': t->host = arg; return true;
    case 'p': t->port = arg; return true;
    case 'U': t->unix_path = arg; return true;
    case '4': t->family = AF_INET; return true;
    case '6': t->family = AF_INET6; return true;
    default: return false;
    }
}

int args_resolve_target(const struct args_target *t, struct net_addr *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (t->unix_path != NULL) {
        char text[sizeof("unix:") + 108];
        if ((size_t)snprintf(text, sizeof(text), "unix:%s", t->unix_path) >= sizeof(text))
            return fail(err, errlen, "unix socket path too long: %s", t->unix_path);
        return net_addr_parse(text, out, err, errlen);
    }
    const char *host = t->host;
    if (host == NULL)
        host = t->family == AF_INET6 ? ARGS_DEFAULT_HOST6 : ARGS_DEFAULT_HOST;
    const char *port = t->port != NULL ? t->port : ARGS_DEFAULT_PORT;
    char *end;
    long p = strtol(port, &end, 10);
    if (*port == '\0' || *end != '\0' || p < 1 || p > 65535)
        return fail(err, errlen, "port must be a number from 1 to 65535: %s", port);

    return net_addr_resolve(host, (int)p, t->family, out, err, errlen);
}

/* The multiplier of a unit suffix, or 0 when the suffix is not known. */
static uint64_t suffix_factor(const char *suffix, const char *units)
{
    bool bytes = units != NULL && strcmp(units, "bytes") == 0;
    uint64_t base = bytes ? 1024 : 1000;
    if (*suffix == '\0')
        return 1;
    if (bytes && strcmp(suffix, "B") == 0)
        return 1;
    if (suffix[1] != '\0' && !(bytes && strcmp(suffix + 1, "iB") == 0))
        return 0;
    switch (suffix[0]) {
    case 'k': case 'K': return base;
    case 'M': return base * base;
    case 'G': return base * base * base;
    default: return 0;
    }
}

int args_parse_u64(const char *s, const char *units, uint64_t min, uint64_t max, uint64_t *out,
                   char *err, size_t errlen)
{
    if (*s < '0' || *s > '9')
        return fail(err, errlen, "not a number: %s", s);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t f = suffix_factor(end, units);
    if (errno != 0 || f == 0)
        return fail(err, errlen, "not a number: %s", s);
    if (v > UINT64_MAX / f)
        return fail(err, errlen, "number too large: %s", s);
    uint64_t r = (uint64_t)v * f;
    if (r < min || r > max) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s is out of range %llu..%llu", s, (unsigned long long)min,
                     (unsigned long long)max);
        return -EINVAL;
    }
    *out = r;
    return 0;
}

int args_parse_seconds(const char *s, double min, double max, double *out, char *err,
                       size_t errlen)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !isfinite(v))
        return fail(err, errlen, "not a number of seconds: %s", s);
    if (strcmp(end, "ms") == 0)
        v /= 1000.0;
    else if (*end != '\0' && strcmp(end, "s") != 0)
        return fail(err, errlen, "not a number of seconds: %s", s);
    if (v < min || v > max) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s is out of range %g..%g seconds", s, min, max);
        return -EINVAL;
    }
    *out = v;
    return 0;
}
