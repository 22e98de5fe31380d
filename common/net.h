/* net.h - addresses and socket helpers shared by the daemon and the clients.
 *
 * Address syntax (the config's `listen` and the clients' targets):
 *     "127.0.0.1:7007"   IPv4
 *     "[::1]:7007"       IPv6 (brackets required)
 *     "localhost:7007"   a host name (resolved with getaddrinfo, first result)
 *     "unix:/run/x.sock" a unix stream socket path
 *     "unix:@name"       a unix socket in the abstract namespace
 *
 * Functions return 0 (or an fd) on success and a negative errno on failure,
 * except where noted. Nothing here logs; callers decide.
 */
#ifndef ECHOD_NET_H
#define ECHOD_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

struct net_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    int family;             /* AF_INET, AF_INET6 or AF_UNIX */
};

/* Parse an address; on error returns -EINVAL (and, if err is non-NULL, writes
 * a short reason into err[errlen]). Host names are resolved. */
int net_addr_parse(const char *text, struct net_addr *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* host (a literal or a name, resolved with getaddrinfo, first result) and
 * port as an address of the given family (AF_UNSPEC: any). Same errors. */
int net_addr_resolve(const char *host, int port, int family, struct net_addr *out, char *err,
                     size_t errlen) __attribute__((warn_unused_result));
/* Render an address back as text ("[::1]:7007", "unix:/x"). */
void net_addr_format(const struct net_addr *a, char *out, size_t outlen);

/* A non-blocking, close-on-exec listening socket bound to a (SO_REUSEADDR; a
 * stale unix socket file is replaced). Returns the fd or -errno. */
int net_listen(const struct net_addr *a, int backlog) __attribute__((warn_unused_result));
/* The same; reuse_port sets SO_REUSEPORT on a TCP socket before bind, so
 * processes of one uid can listen on one port and the kernel spreads new
 * connections over them (by a hash of the 4-tuple). Ignored for unix. */
int net_listen_reuse(const struct net_addr *a, int backlog, bool reuse_port)
    __attribute__((warn_unused_result));

/* A connected blocking socket (close-on-exec), or -errno. timeout_ms > 0
 * bounds the connect and sets SO_RCVTIMEO/SO_SNDTIMEO on the socket. */
int net_connect(const struct net_addr *a, int timeout_ms) __attribute__((warn_unused_result));

int net_set_nonblock(int fd, bool on);
/* TCP_NODELAY / SO_KEEPALIVE; no-ops (returning 0) on unix sockets. */
int net_set_nodelay(int fd, bool on);
int net_set_keepalive(int fd, bool on);
/* Keepalive timing (TCP_KEEPIDLE, TCP_KEEPINTVL seconds; TCP_KEEPCNT probes)
 * and TCP_USER_TIMEOUT in milliseconds (0 = the kernel's default); both
 * no-ops on unix sockets. On a listening socket, accepted sockets inherit them. */
int net_set_keepalive_timing(int fd, int idle_s, int interval_s, int count);
int net_set_user_timeout(int fd, unsigned ms);

/* Blocking helpers for the clients: send all of buf (retrying partial writes
 * and EINTR, MSG_NOSIGNAL), or receive exactly n bytes. net_recv_all returns n,
 * fewer at EOF, or -errno. */
int net_send_all(int fd, const void *buf, size_t n) __attribute__((warn_unused_result));
ssize_t net_recv_all(int fd, void *buf, size_t n);

#endif
