/* net.c - address parsing and socket set-up for the daemon and the clients.
 *
 * Convention: functions return 0 or an fd on success and a negative errno on
 * failure. Nothing here logs; callers decide what an error means to them.
 */
#include "common/net.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define UNIX_PREFIX "unix:"

static int addr_error(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
    return -EINVAL;
}

static int parse_unix(const char *path, struct net_addr *out, char *err, size_t errlen)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
    size_t n = strlen(path);
    if (n == 0)
        return addr_error(err, errlen, "empty unix socket path");
    if (n >= sizeof(sun->sun_path))
        return addr_error(err, errlen, "unix socket path too long");
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n);
    if (path[0] == '@') {
        /* Abstract namespace: a leading NUL, and the length says where it ends. */
        if (n == 1)
            return addr_error(err, errlen, "empty abstract socket name");
        sun->sun_path[0] = '\0';
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        out->len = (socklen_t)sizeof(*sun);
    }
    out->family = AF_UNIX;
    return 0;
}

static int parse_port(const char *s, char *err, size_t errlen)
{
    if (*s == '\0')
        return addr_error(err, errlen, "missing port");
    if (*s < '0' || *s > '9')   /* strtol would take spaces and signs */
        return addr_error(err, errlen, "port must be a number from 0 to 65535");
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || errno != 0 || v < 0 || v > 65535)
        return addr_error(err, errlen, "port must be a number from 0 to 65535");
    return (int)v;
}

int net_addr_parse(const char *text, struct net_addr *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(text, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0)
        return parse_unix(text + strlen(UNIX_PREFIX), out, err, errlen);

    char host[256];
    const char *port_text;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return addr_error(err, errlen, "expected [IPv6]:port");
        size_t n = (size_t)(close - text - 1);
        if (n == 0 || n >= sizeof(host))
            return addr_error(err, errlen, "bad IPv6 address");
        memcpy(host, text + 1, n);
        host[n] = '\0';
        port_text = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL)
            return addr_error(err, errlen, "expected host:port, [IPv6]:port or unix:/path");
        size_t n = (size_t)(colon - text);
        if (n == 0 || n >= sizeof(host))
            return addr_error(err, errlen, "bad host");
        if (memchr(text, ':', n) != NULL)
            return addr_error(err, errlen, "IPv6 addresses need brackets: [addr]:port");
        memcpy(host, text, n);
        host[n] = '\0';
        port_text = colon + 1;
    }
    int port = parse_port(port_text, err, errlen);
    if (port < 0)
        return port;

    if (text[0] == '[') {
        /* Brackets hold an IPv6 literal, never a name. */
        struct in6_addr probe;
        if (inet_pton(AF_INET6, host, &probe) != 1)
            return addr_error(err, errlen, "bad IPv6 address");
        return net_addr_resolve(host, port, AF_INET6, out, err, errlen);
    }
    return net_addr_resolve(host, port, AF_UNSPEC, out, err, errlen);
}

int net_addr_resolve(const char *host, int port, int family, struct net_addr *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
    /* Literals need no resolver (and no DNS round trip at start-up). */
    if (family != AF_INET6 && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        out->len = sizeof(*sin);
        out->family = AF_INET;
    } else if (family != AF_INET && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        out->len = sizeof(*sin6);
        out->family = AF_INET6;
    } else {
        struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_ADDRCONFIG};
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(host, NULL, &hints, &res);
        if (rc != 0 || res == NULL) {
            if (err != NULL && errlen > 0)
                snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
            return -EINVAL;
        }
        memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
        out->len = res->ai_addrlen;
        out->family = res->ai_family;
        freeaddrinfo(res);
    }
    if (out->family == AF_INET)
        sin->sin_port = htons((uint16_t)port);
    else
        sin6->sin6_port = htons((uint16_t)port);
    return 0;
}

void net_addr_format(const struct net_addr *a, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN];
    if (a->family == AF_UNIX) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;
        size_t base = offsetof(struct sockaddr_un, sun_path);
        size_t path = a->len > base ? a->len - base : 0;
        if (path > sizeof(sun->sun_path))
            path = sizeof(sun->sun_path);
        if (path == 0) {
            /* An unbound client socket (what accept() reports for most
             * unix clients) has no name at all. */
            snprintf(out, outlen, "unix:");
        } else if (sun->sun_path[0] == '\0') {
            snprintf(out, outlen, "unix:@%.*s", (int)(path - 1), sun->sun_path + 1);
        } else {
            snprintf(out, outlen, "unix:%.*s", (int)path, sun->sun_path);
        }
    } else if (a->family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(out, outlen, "[%s]:%u", host, ntohs(sin6->sin6_port));
    } else {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(out, outlen, "%s:%u", host, ntohs(sin->sin_port));
    }
}

int net_listen(const struct net_addr *a, int backlog)
{
    return net_listen_reuse(a, backlog, false);
}

int net_listen_reuse(const struct net_addr *a, int backlog, bool reuse_port)
{
    int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (a->family != AF_UNIX &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    if (a->family != AF_UNIX && reuse_port &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto fail;
    /* An IPv6 listener serves IPv6 only, so "[::]:p" and "0.0.0.0:p" can both be configured. */
    if (a->family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto fail;
    if (a->family == AF_UNIX) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;
        struct stat st;
        /* A socket file left by an earlier run would make bind fail; replace
         * it, but never anything that is not a socket, nor a socket someone
         * still listens on (a connect there must be refused first). */
        if (sun->sun_path[0] != '\0' && lstat(sun->sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            bool live = probe >= 0 && connect(probe, (const struct sockaddr *)&a->ss, a->len) == 0;
            if (probe >= 0)
                close(probe);
            if (live) {
                errno = EADDRINUSE;
                goto fail;
            }
            unlink(sun->sun_path);
        }
    }
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
        goto fail;
    /* Connecting needs write permission on the file. Like systemd's
     * SocketMode= default, anyone may connect: the umask would otherwise
     * lock out every user but the one echod ran as at bind time (root,
     * before the privilege drop). Restrict access with the directory. */
    if (a->family == AF_UNIX) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;
        if (sun->sun_path[0] != '\0' && chmod(sun->sun_path, 0666) < 0)
            goto fail;
    }
    if (listen(fd, backlog) < 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    return -e;
}

int net_connect(const struct net_addr *a, int timeout_ms)
{
    int fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC | (timeout_ms > 0 ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
        if (errno != EINPROGRESS || timeout_ms <= 0)
            goto fail;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int rc;
        do
            rc = poll(&pfd, 1, timeout_ms);
        while (rc < 0 && errno == EINTR);
        if (rc == 0) {
            errno = ETIMEDOUT;
            goto fail;
        }
        if (rc < 0)
            goto fail;
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
            goto fail;
        if (soerr != 0) {
            errno = soerr;
            goto fail;
        }
    }
    if (timeout_ms > 0) {
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        if (net_set_nonblock(fd, false) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
            goto fail;
    }
    return fd;
fail:;
    int e = errno;
    close(fd);
    return -e;
}

int net_set_nonblock(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -errno;
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, flags) < 0 ? -errno : 0;
}

/* Options that only mean something on TCP: on a unix socket the kernel says
 * EOPNOTSUPP (or ENOPROTOOPT), which is not an error for us. */
static int set_int_opt(int fd, int level, int name, int v)
{
    if (setsockopt(fd, level, name, &v, sizeof(v)) < 0)
        return (errno == EOPNOTSUPP || errno == ENOPROTOOPT) ? 0 : -errno;
    return 0;
}

static int set_opt(int fd, int level, int name, bool on)
{
    return set_int_opt(fd, level, name, on);
}

int net_set_nodelay(int fd, bool on)
{
    return set_opt(fd, IPPROTO_TCP, TCP_NODELAY, on);
}

int net_set_keepalive(int fd, bool on)
{
    return set_opt(fd, SOL_SOCKET, SO_KEEPALIVE, on);
}

int net_set_keepalive_timing(int fd, int idle_s, int interval_s, int count)
{
    int rc = set_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_s);
    if (rc == 0)
        rc = set_int_opt(fd, IPPROTO_TCP, TCP_KEEPINTVL, interval_s);
    if (rc == 0)
        rc = set_int_opt(fd, IPPROTO_TCP, TCP_KEEPCNT, count);
    return rc;
}

int net_set_user_timeout(int fd, unsigned ms)
{
    if (ms > INT_MAX)
        return -EINVAL;
    return set_int_opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, (int)ms);
}

int net_send_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t net_recv_all(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, p + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}
