/* test_notify.c - systemd integration (server/notify.c) against a datagram
 * socket standing in for systemd's NOTIFY_SOCKET: the exact messages (READY,
 * RELOADING with a current MONOTONIC_USEC, STOPPING, STATUS on one line and
 * bounded), abstract "@" names, silence without NOTIFY_SOCKET; the watchdog
 * interval honouring WATCHDOG_PID; socket activation taking listening
 * sockets from fd 3 on (with names, non-blocking, close-on-exec), closing
 * what cannot be served, ignoring LISTEN_PID of another process, and
 * unsetting LISTEN_*.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "server/notify.h"

/* How long a test waits for a datagram that should come. */
#define RECV_TIMEOUT_MS 2000
/* And for one that should not. */
#define SILENCE_MS 100
/* Longest STATUS= text notify.c sends (NOTIFY_STATUS_MAX there). */
#define STATUS_MAX 256
/* First inherited descriptor (SD_LISTEN_FDS_START). */
#define FDS_START 3

struct notify_sock {
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void set_timeout(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

/* A datagram socket bound to a fresh path (or abstract name), exported as
 * NOTIFY_SOCKET, and notify_init() run. */
static void notify_sock_open(struct notify_sock *n, int abstract)
{
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(n->fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    socklen_t len;
    if (abstract) {
        snprintf(n->path, sizeof(n->path), "@echod-test-notify-%d", (int)getpid());
        memcpy(sa.sun_path + 1, n->path + 1, strlen(n->path));   /* sun_path[0] = 0 */
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(n->path));
    } else {
        snprintf(n->path, sizeof(n->path), "/tmp/echod-test-notify-%d", (int)getpid());
        unlink(n->path);
        memcpy(sa.sun_path, n->path, strlen(n->path) + 1);
        len = sizeof(sa);
    }
    assert_int_equal(bind(n->fd, (struct sockaddr *)&sa, len), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", n->path, 1), 0);
    notify_init();
}

static void notify_sock_close(struct notify_sock *n)
{
    close(n->fd);
    if (n->path[0] == '/')
        unlink(n->path);
    unsetenv("NOTIFY_SOCKET");
}

/* The next datagram as a string, or "" if none within ms. */
static void recv_msg(struct notify_sock *n, char *out, size_t outlen, int ms)
{
    set_timeout(n->fd, ms);
    ssize_t r = recv(n->fd, out, outlen - 1, 0);
    out[r > 0 ? (size_t)r : 0] = '\0';
}

static void expect_msg(struct notify_sock *n, const char *want)
{
    char got[1024];
    recv_msg(n, got, sizeof(got), RECV_TIMEOUT_MS);
    assert_string_equal(got, want);
}

static void expect_silence(struct notify_sock *n)
{
    char got[1024];
    recv_msg(n, got, sizeof(got), SILENCE_MS);
    assert_string_equal(got, "");
}

static unsigned long long monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
}

static void test_state_messages(void **state)
{
    (void)state;
    struct notify_sock n;
    notify_sock_open(&n, 0);
    notify_ready();
    expect_msg(&n, "READY=1");
    notify_stopping();
    expect_msg(&n, "STOPPING=1");

    unsigned long long before = monotonic_usec();
    notify_reloading();
    unsigned long long after = monotonic_usec();
    char got[1024];
    recv_msg(&n, got, sizeof(got), RECV_TIMEOUT_MS);
    unsigned long long usec = 0;
    assert_int_equal(sscanf(got, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec), 1);
    assert_true(before <= usec && usec <= after);
    notify_sock_close(&n);
}

static void test_status_is_one_bounded_line(void **state)
{
    (void)state;
    struct notify_sock n;
    notify_sock_open(&n, 0);
    notify_status("%d connections\n%s", 7, "injected=1");
    expect_msg(&n, "STATUS=7 connections injected=1");

    char longtext[STATUS_MAX * 2];
    memset(longtext, 'x', sizeof(longtext) - 1);
    longtext[sizeof(longtext) - 1] = '\0';
    notify_status("%s", longtext);
    char got[1024];
    recv_msg(&n, got, sizeof(got), RECV_TIMEOUT_MS);
    assert_int_equal(strncmp(got, "STATUS=xxx", 10), 0);
    assert_true(strlen(got) <= strlen("STATUS=") + STATUS_MAX);
    notify_sock_close(&n);
}

static void test_abstract_socket(void **state)
{
    (void)state;
    struct notify_sock n;
    notify_sock_open(&n, 1);
    notify_ready();
    expect_msg(&n, "READY=1");
    notify_sock_close(&n);
}

static void test_silent_without_notify_socket(void **state)
{
    (void)state;
    struct notify_sock n;
    notify_sock_open(&n, 0);
    unsetenv("NOTIFY_SOCKET");
    setenv("WATCHDOG_USEC", "1000000", 1);
    notify_init();
    notify_ready();
    notify_status("x");
    notify_watchdog_ping();
    expect_silence(&n);
    unsetenv("WATCHDOG_USEC");
    notify_sock_close(&n);
}

static void test_watchdog_interval_and_pid(void **state)
{
    (void)state;
    struct notify_sock n;
    notify_sock_open(&n, 0);
    char pid[32];

    setenv("WATCHDOG_USEC", "3000000", 1);
    unsetenv("WATCHDOG_PID");
    notify_init();
    assert_int_equal(notify_watchdog_usec(), 3000000);
    notify_watchdog_ping();
    expect_msg(&n, "WATCHDOG=1");

    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    notify_init();
    assert_int_equal(notify_watchdog_usec(), 3000000);

    snprintf(pid, sizeof(pid), "%d", (int)getppid());   /* someone else */
    setenv("WATCHDOG_PID", pid, 1);
    notify_init();
    assert_int_equal(notify_watchdog_usec(), 0);
    notify_watchdog_ping();
    expect_silence(&n);

    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "soon", 1);
    notify_init();
    assert_int_equal(notify_watchdog_usec(), 0);

    unsetenv("WATCHDOG_USEC");
    notify_init();
    assert_int_equal(notify_watchdog_usec(), 0);
    notify_sock_close(&n);
}

/* A listening socket put on descriptor `at`. */
static void listen_at(int at, int type, int do_listen)
{
    int fd = socket(AF_INET, type, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (do_listen)
        assert_int_equal(listen(fd, 1), 0);
    if (fd != at) {
        assert_int_equal(dup2(fd, at), at);
        close(fd);
    }
}

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void set_listen_env(int n, const char *names, pid_t pid)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%d", n);
    setenv("LISTEN_FDS", buf, 1);
    snprintf(buf, sizeof(buf), "%d", (int)pid);
    setenv("LISTEN_PID", buf, 1);
    if (names != NULL)
        setenv("LISTEN_FDNAMES", names, 1);
    else
        unsetenv("LISTEN_FDNAMES");
}

/* Descriptors 3.. must be free for these tests to place sockets there. */
static int fds_free(void **state)
{
    (void)state;
    for (int fd = FDS_START; fd < FDS_START + 4; fd++)
        if (fd_open(fd))
            return -1;
    return 0;
}

static void test_listen_fds_are_taken_with_names(void **state)
{
    (void)state;
    listen_at(FDS_START, SOCK_STREAM, 1);
    listen_at(FDS_START + 1, SOCK_STREAM, 1);
    set_listen_env(2, "tcp:other", getpid());
    int fds[4];
    const char *names[4];
    assert_int_equal(notify_listen_fds(fds, names, 4), 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fds[i], FDS_START + i);
        assert_true(fcntl(fds[i], F_GETFL) & O_NONBLOCK);
        assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
    }
    assert_string_equal(names[0], "tcp");
    assert_string_equal(names[1], "other");
    /* Children must not see them. */
    assert_null(getenv("LISTEN_FDS"));
    assert_null(getenv("LISTEN_PID"));
    assert_null(getenv("LISTEN_FDNAMES"));
    close(FDS_START);
    close(FDS_START + 1);
}

static void test_unusable_and_surplus_fds_are_closed(void **state)
{
    (void)state;
    listen_at(FDS_START, SOCK_STREAM, 1);
    listen_at(FDS_START + 1, SOCK_DGRAM, 0);       /* not a stream socket */
    listen_at(FDS_START + 2, SOCK_STREAM, 0);      /* not listening */
    listen_at(FDS_START + 3, SOCK_STREAM, 1);      /* beyond max */
    set_listen_env(4, NULL, getpid());
    int fds[1];
    const char *names[1];
    assert_int_equal(notify_listen_fds(fds, names, 1), 1);
    assert_int_equal(fds[0], FDS_START);
    assert_true(fd_open(FDS_START));
    assert_false(fd_open(FDS_START + 1));
    assert_false(fd_open(FDS_START + 2));
    assert_false(fd_open(FDS_START + 3));
    close(FDS_START);
}

static void test_listen_fds_for_another_pid_are_left_alone(void **state)
{
    (void)state;
    listen_at(FDS_START, SOCK_STREAM, 1);
    set_listen_env(1, "x", getppid());
    int fds[2];
    const char *names[2];
    assert_int_equal(notify_listen_fds(fds, names, 2), 0);
    assert_true(fd_open(FDS_START));
    assert_false(fcntl(FDS_START, F_GETFL) & O_NONBLOCK);
    close(FDS_START);

    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    assert_int_equal(notify_listen_fds(fds, names, 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_messages),
        cmocka_unit_test(test_status_is_one_bounded_line),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_silent_without_notify_socket),
        cmocka_unit_test(test_watchdog_interval_and_pid),
        cmocka_unit_test_setup(test_listen_fds_are_taken_with_names, fds_free),
        cmocka_unit_test_setup(test_unusable_and_surplus_fds_are_closed, fds_free),
        cmocka_unit_test_setup(test_listen_fds_for_another_pid_are_left_alone, fds_free),
    };
    return cmocka_run_group_tests_name("notify", tests, NULL, NULL);
}
