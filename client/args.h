/* args.h - command-line pieces shared by echoc and echobench: the target
 * (-H host, -p port, -U unix path, -4/-6) and number parsing with units.
 *
 * Functions return 0 on success and -EINVAL on bad input, with a short reason
 * in err[errlen] for the caller to print. Nothing here prints or exits.
 */
#ifndef ECHOD_ARGS_H
#define ECHOD_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net.h"

/* The daemon's built-in listen address (contract.md). */
#define ARGS_DEFAULT_HOST "127.0.0.1"
#define ARGS_DEFAULT_HOST6 "::1"
#define ARGS_DEFAULT_PORT "7007"

struct args_target {
    const char *host;       /* NULL: the default for the family */
    const char *port;       /* NULL: ARGS_DEFAULT_PORT */
    const char *unix_path;  /* set: a unix socket; host and port are ignored */
    int family;             /* AF_UNSPEC, or AF_INET / AF_INET6 from -4 / -6 */
};

/* Resolve the target into an address (a host name takes the first result of
 * the requested family). */
/* Take a target option (-H, -p, -U, -4, -6) into t; false for any other. */
bool args_target_option(int opt, const char *arg, struct args_target *t);

int args_resolve_target(const struct args_target *t, struct net_addr *out, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

/* An unsigned integer in [min, max], with an optional decimal suffix
 * k, M, G (x1000) when `units` is "count", or binary K, M, G (x1024, "k"
 * accepted too) when `units` is "bytes". */
int args_parse_u64(const char *s, const char *units, uint64_t min, uint64_t max, uint64_t *out,
                   char *err, size_t errlen) __attribute__((warn_unused_result));

/* Seconds as a decimal ("10", "0.5"), optional suffix "s" or "ms", in [min, max]. */
int args_parse_seconds(const char *s, double min, double max, double *out, char *err,
                       size_t errlen) __attribute__((warn_unused_result));

#endif
