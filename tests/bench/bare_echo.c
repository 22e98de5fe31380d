/* bare_echo.c - the benchmark floor: the least an epoll echo server can do.
 *
 *     bare_echo [PORT]      listen on 127.0.0.1:PORT (0 or none: any free port)
 *
 * One thread, one level-triggered epoll loop, plain echo (RFC 862): read what
 * arrives, write it back. When the peer does not take it all, the rest is kept
 * and reading stops until it drains (so memory is bounded by one read per
 * connection); the peer's EOF is seen by the next read, after the data
 * before it was echoed, and the connection is closed. No framing, no timeouts, no limits beyond descriptors:
 * it exists so `make bench` can show what echod costs on top of the syscalls.
 * Prints "port N" on stdout once listening; stops on SIGTERM/SIGINT.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bytes read at once; also the most a connection ever holds back. */
#define CHUNK (64 * 1024)
#define MAX_EVENTS 256
#define BACKLOG 4096

struct conn {
    uint8_t *pending;       /* bytes read but not yet written back */
    size_t off, len;
};

static volatile sig_atomic_t stopping;
static struct conn *conns;  /* indexed by fd */
static size_t nconns;
static int epfd;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void conn_close(int fd)
{
    free(conns[fd].pending);
    memset(&conns[fd], 0, sizeof(conns[fd]));
    close(fd);
}

static void set_events(int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
}

/* Write what is pending; returns false if the connection was closed. */
static bool conn_flush(int fd)
{
    struct conn *c = &conns[fd];
    while (c->off < c->len) {
        ssize_t w = send(fd, c->pending + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return true;
            conn_close(fd);
            return false;
        }
        c->off += (size_t)w;
    }
    /* Read again; an EOF that came meanwhile waits behind the data. */
    c->off = c->len = 0;
    set_events(fd, EPOLLIN);
    return true;
}

static void conn_read(int fd, uint8_t *buf)
{
    struct conn *c = &conns[fd];
    ssize_t n = recv(fd, buf, CHUNK, 0);
    if (n == 0) {
        conn_close(fd);     /* nothing pending: we only read when flushed */
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            conn_close(fd);
        return;
    }
    ssize_t w = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            conn_close(fd);
            return;
        }
        w = 0;
    }
    if (w == n)
        return;
    /* Keep the rest and stop reading until it is gone. */
    if (c->pending == NULL && (c->pending = malloc(CHUNK)) == NULL) {
        conn_close(fd);
        return;
    }
    memcpy(c->pending, buf + w, (size_t)(n - w));
    c->off = 0;
    c->len = (size_t)(n - w);
    set_events(fd, EPOLLOUT);
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if ((size_t)fd >= nconns) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            close(fd);
    }
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        nconns = rl.rlim_cur;
    }
    conns = calloc(nconns, sizeof(*conns));
    static uint8_t buf[CHUNK];

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    if (conns == NULL || lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        listen(lfd, BACKLOG) < 0 || getsockname(lfd, (struct sockaddr *)&sin, &len) < 0) {
        perror("bare_echo");
        return 1;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    printf("port %u\n", ntohs(sin.sin_port));
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    while (!stopping) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                accept_all(lfd);
                continue;
            }
            uint32_t e = events[i].events;
            if (conns[fd].len > 0) {
                if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                    conn_flush(fd);
            } else {
                conn_read(fd, buf);
            }
        }
    }
    return 0;
}
