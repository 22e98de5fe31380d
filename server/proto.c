/* proto.c - which protocol a listener speaks: the `listen` scheme, the
 * socket-activation name, and the table of protocol modules. */
#include "server/proto.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/frame.h"
#include "server/stats.h"

_Static_assert(PROTO_KINDS == STATS_PROTOS, "STATS counts requests per protocol");

static const struct {
    const char *name;
    const struct proto_ops *ops;
} protocols[PROTO_KINDS] = {
    [PROTO_FRAMED] = {"framed", &proto_framed_ops},
    [PROTO_RAW] = {"raw", &proto_raw_ops},
    [PROTO_HTTP] = {"http", &proto_http_ops},
};

const struct proto_ops *proto_ops_of(enum proto_kind kind)
{
    return (unsigned)kind < PROTO_KINDS ? protocols[kind].ops : NULL;
}

const char *proto_name(enum proto_kind kind)
{
    return (unsigned)kind < PROTO_KINDS ? protocols[kind].name : "?";
}

static bool lookup(const char *name, size_t len, enum proto_kind *kind)
{
    for (int k = 0; k < PROTO_KINDS; k++) {
        if (strlen(protocols[k].name) == len && memcmp(protocols[k].name, name, len) == 0) {
            *kind = (enum proto_kind)k;
            return true;
        }
    }
    return false;
}

int proto_parse_listen(const char *entry, enum proto_kind *kind, const char **address)
{
    const char *sep = strstr(entry, "://");
    *kind = PROTO_FRAMED;
    *address = entry;
    if (sep == NULL)
        return 0;
    if (!lookup(entry, (size_t)(sep - entry), kind))
        return -1;
    *address = sep + 3;
    return 0;
}

bool proto_from_fdname(const char *name, enum proto_kind *kind)
{
    *kind = PROTO_FRAMED;
    return name != NULL && lookup(name, strlen(name), kind);
}

size_t proto_reject_bytes(enum proto_kind kind, const char *reason, uint8_t *out, size_t cap)
{
    size_t n = strlen(reason);
    switch (kind) {
    case PROTO_FRAMED:
        if (cap < FRAME_HEADER_SIZE)
            return 0;
        if (n > cap - FRAME_HEADER_SIZE)
            n = cap - FRAME_HEADER_SIZE;
        frame_header_encode(out, FRAME_ERROR, (uint32_t)n);
        memcpy(out + FRAME_HEADER_SIZE, reason, n);
        return FRAME_HEADER_SIZE + n;
    case PROTO_HTTP: {
        /* Rare (every worker's inbox full): the date is formatted here. */
        char date[64];
        struct tm tm;
        time_t now = time(NULL);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
        int len = snprintf((char *)out, cap,
                           "HTTP/1.1 503 Service Unavailable\r\nDate: %s\r\nServer: echod/%s\r\n"
                           "Content-Type: text/plain\r\nX-Content-Type-Options: nosniff\r\n"
                           "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                           date, ECHOD_VERSION, n, reason);
        return len > 0 && (size_t)len < cap ? (size_t)len : 0;
    }
    default:
        return 0;   /* raw: nothing to say; the close says it */
    }
}
