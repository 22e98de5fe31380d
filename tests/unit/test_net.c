/* test_net.c - addresses and sockets (common/net.c): parsing every address
 * form and every error with its message, formatting back to the same text,
 * listening and connecting over 127.0.0.1, ::1 (skipped where IPv6 is off),
 * a unix path and an abstract name, moving 1 MiB each way, send_all/recv_all
 * through partial transfers and signal interruptions, EOF and errors, the
 * stale-socket replacement that never removes anything else, and the TCP
 * options. Only loopback and unix sockets; every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/net.h"

/* Room for any error message or formatted address here. */
#define TEXT_MAX 512
/* Room for a temporary directory name, and for a file path inside it. */
#define DIR_MAX 64
#define FILE_MAX 128
/* Bytes moved each way over a connection. */
#define XFER_BYTES (1u << 20)
/* Bytes moved while signals interrupt the transfer. */
#define EINTR_BYTES (2u << 20)
/* Piece size and pause of the slow side in the interruption tests. */
#define SLOW_CHUNK (16u * 1024)
#define SLOW_PAUSE_NS 500000L
/* Gap between two interrupting signals. */
#define SIGNAL_GAP_NS 100000L
/* Longest any single wait in these tests may take. */
#define WAIT_MS 5000
/* The whole binary is killed after this long, so a hang is a failure
 * (generous: the tests take about a second, more under sanitizers). */
#define WATCHDOG_S 300
/* Connection timeout used where a connect is expected to hang. */
#define HANG_TIMEOUT_MS 300
/* Connects tried to overflow an accept queue of one. */
#define HANG_TRIES 16
/* Receive timeout in the SO_RCVTIMEO test. */
#define RECV_TIMEOUT_MS 200
/* sun_path holds this many bytes, the NUL included. */
#define SUN_PATH_MAX ((int)sizeof(((struct sockaddr_un *)0)->sun_path))

/* ---- helpers ---- */

static struct net_addr parse_ok(const char *text)
{
    struct net_addr a;
    char err[TEXT_MAX] = "";
    int rc = net_addr_parse(text, &a, err, sizeof(err));
    if (rc != 0)
        fail_msg("'%s' should parse, got %d: %s", text, rc, err);
    return a;
}

/* The text is rejected with -EINVAL and a message containing want. */
static void expect_parse_error(const char *text, const char *want)
{
    struct net_addr a;
    char err[TEXT_MAX] = "";
    int rc = net_addr_parse(text, &a, err, sizeof(err));
    if (rc != -EINVAL)
        fail_msg("'%s' should be rejected with -EINVAL, got %d", text, rc);
    if (strstr(err, want) == NULL)
        fail_msg("'%s': error '%s' does not mention '%s'", text, err, want);
}

static void format(const struct net_addr *a, char *out)
{
    net_addr_format(a, out, TEXT_MAX);
}

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* The address a listening socket really has (the kernel's port for port 0). */
static struct net_addr bound_addr(int fd)
{
    struct net_addr a;
    memset(&a, 0, sizeof(a));
    a.len = sizeof(a.ss);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a.ss, &a.len), 0);
    a.family = a.ss.ss_family;
    return a;
}

static uint16_t addr_port(const struct net_addr *a)
{
    if (a->family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

static int accept_within(int lfd)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, WAIT_MS), 1);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

static unsigned char pattern_byte(size_t i, unsigned seed)
{
    return (unsigned char)((i * 7u + (i >> 9) + seed) & 0xff);
}

static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = pattern_byte(i, seed);
    return p;
}

static int getsockopt_int(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof(v);
    assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
    return v;
}

/* Bound every later blocking send and receive on fd, so a failure on the
 * other side ends the test instead of hanging it. */
static void bound_waits(int fd)
{
    struct timeval tv = {.tv_sec = WAIT_MS / 1000};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
}

static bool ipv6_loopback_available(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
    close(fd);
    return ok;
}

/* Tests with unix socket paths get a fresh private directory as their state;
 * the teardown removes it with whatever is left in it, also after a failure. */
static int tmpdir_setup(void **state)
{
    char *dir = malloc(DIR_MAX);
    if (dir == NULL)
        return -1;
    snprintf(dir, DIR_MAX, "/tmp/echod-test-net-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Entries deep enough for anything these tests create. */
#define TMPDIR_FDS 8

static int tmpdir_teardown(void **state)
{
    char *dir = *state;
    int rc = nftw(dir, remove_entry, TMPDIR_FDS, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return rc;
}

/* ---- net_addr_parse: the good forms ---- */

static void test_parse_ipv4(void **state)
{
    (void)state;
    struct net_addr a = parse_ok("127.0.0.1:7007");
    assert_int_equal(a.family, AF_INET);
    assert_int_equal(a.len, sizeof(struct sockaddr_in));
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.ss;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 7007);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);

    a = parse_ok("0.0.0.0:0");
    assert_int_equal(a.family, AF_INET);
    assert_int_equal(addr_port(&a), 0);
    assert_int_equal(((const struct sockaddr_in *)&a.ss)->sin_addr.s_addr, htonl(INADDR_ANY));

    a = parse_ok("255.255.255.255:65535");
    assert_int_equal(addr_port(&a), 65535);
    assert_int_equal(((const struct sockaddr_in *)&a.ss)->sin_addr.s_addr, htonl(0xffffffffu));

    a = parse_ok("10.1.2.3:1");
    assert_int_equal(ntohl(((const struct sockaddr_in *)&a.ss)->sin_addr.s_addr), 0x0a010203u);
    assert_int_equal(addr_port(&a), 1);
}

static void test_parse_ipv6(void **state)
{
    (void)state;
    struct net_addr a = parse_ok("[::1]:7007");
    assert_int_equal(a.family, AF_INET6);
    assert_int_equal(a.len, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.ss;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 7007);
    assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));

    a = parse_ok("[::]:0");
    assert_int_equal(a.family, AF_INET6);
    assert_true(IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a.ss)->sin6_addr));
    assert_int_equal(addr_port(&a), 0);

    a = parse_ok("[2001:db8::42]:65535");
    struct in6_addr want;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::42", &want), 1);
    assert_memory_equal(&((const struct sockaddr_in6 *)&a.ss)->sin6_addr, &want, sizeof(want));
    assert_int_equal(addr_port(&a), 65535);

    a = parse_ok("[::ffff:192.0.2.1]:80");
    assert_int_equal(a.family, AF_INET6);
    assert_true(IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)&a.ss)->sin6_addr));
}

static void test_parse_hostname(void **state)
{
    (void)state;
    struct net_addr a = parse_ok("localhost:8080");
    assert_int_equal(addr_port(&a), 8080);
    if (a.family == AF_INET) {
        assert_int_equal(a.len, sizeof(struct sockaddr_in));
        /* Anything in 127/8 is loopback. */
        assert_int_equal(ntohl(((const struct sockaddr_in *)&a.ss)->sin_addr.s_addr) >> 24, 127);
    } else {
        assert_int_equal(a.family, AF_INET6);
        assert_int_equal(a.len, sizeof(struct sockaddr_in6));
        assert_true(IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&a.ss)->sin6_addr));
    }
    assert_int_equal(a.ss.ss_family, a.family);
}

static void test_parse_unix_path(void **state)
{
    (void)state;
    struct net_addr a = parse_ok("unix:/run/echod/echod.sock");
    assert_int_equal(a.family, AF_UNIX);
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&a.ss;
    assert_int_equal(sun->sun_family, AF_UNIX);
    assert_string_equal(sun->sun_path, "/run/echod/echod.sock");
    assert_true(a.len >= offsetof(struct sockaddr_un, sun_path) + strlen(sun->sun_path) + 1);
    assert_true(a.len <= sizeof(struct sockaddr_un));

    /* A relative path is a path too. */
    a = parse_ok("unix:echod.sock");
    assert_string_equal(((const struct sockaddr_un *)&a.ss)->sun_path, "echod.sock");

    /* The longest path that fits: SUN_PATH_MAX - 1 bytes and the NUL. */
    char text[TEXT_MAX];
    int n = snprintf(text, sizeof(text), "unix:/");
    memset(text + n, 'p', (size_t)(SUN_PATH_MAX - 2));
    text[n + SUN_PATH_MAX - 2] = '\0';
    a = parse_ok(text);
    assert_int_equal(strlen(((const struct sockaddr_un *)&a.ss)->sun_path), SUN_PATH_MAX - 1);
}

static void test_parse_unix_abstract(void **state)
{
    (void)state;
    struct net_addr a = parse_ok("unix:@echod-test");
    assert_int_equal(a.family, AF_UNIX);
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&a.ss;
    assert_int_equal(sun->sun_family, AF_UNIX);
    /* A leading NUL, then the name; the length (not a NUL) ends it. */
    assert_int_equal(sun->sun_path[0], '\0');
    assert_memory_equal(sun->sun_path + 1, "echod-test", 10);
    assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + 1 + 10);

    a = parse_ok("unix:@x");
    assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + 2);
    assert_int_equal(((const struct sockaddr_un *)&a.ss)->sun_path[1], 'x');
}

/* ---- net_addr_parse: every error, with its message ---- */

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"127.0.0.1:", "missing port"},
        {"[::1]:", "missing port"},
        {"localhost:", "missing port"},
        {"127.0.0.1", "host:port"},
        {"localhost", "host:port"},
        {"", "host:port"},
        {"127.0.0.1:65536", "0 to 65535"},
        {"127.0.0.1:99999999999999999999999", "0 to 65535"},
        {"127.0.0.1:-1", "0 to 65535"},
        {"127.0.0.1:http", "0 to 65535"},
        {"127.0.0.1:80x", "0 to 65535"},
        {"127.0.0.1:0x50", "0 to 65535"},
        {"127.0.0.1:8.0", "0 to 65535"},
        {"[::1]:65536", "0 to 65535"},
        {"[::1]:abc", "0 to 65535"},
        {"::1:7007", "brackets"},
        {"2001:db8::1:80", "brackets"},
        {"fe80::1:80", "brackets"},
        {"[::1", "[IPv6]:port"},
        {"[::1]", "[IPv6]:port"},
        {"[::1]7007", "[IPv6]:port"},
        {"[::1]x:7007", "[IPv6]:port"},
        {"[]:80", "bad IPv6"},
        {"[::g]:80", "bad IPv6"},
        {"[1:2:3:4:5:6:7:8:9]:80", "bad IPv6"},
        {"[127.0.0.1]:80", "bad IPv6"},
        {"[localhost]:80", "bad IPv6"},
        {":80", "bad host"},
        {"unix:", "empty unix socket path"},
        {"unix:@", "empty abstract socket name"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_parse_error(cases[i].text, cases[i].want);
}

static void test_parse_too_long(void **state)
{
    (void)state;
    char text[TEXT_MAX];
    /* A path of SUN_PATH_MAX bytes leaves no room for the NUL. */
    int n = snprintf(text, sizeof(text), "unix:/");
    memset(text + n, 'p', (size_t)(SUN_PATH_MAX - 1));
    text[n + SUN_PATH_MAX - 1] = '\0';
    expect_parse_error(text, "too long");

    /* Much longer than sun_path. */
    n = snprintf(text, sizeof(text), "unix:/");
    memset(text + n, 'q', 300);
    text[n + 300] = '\0';
    expect_parse_error(text, "too long");

    n = snprintf(text, sizeof(text), "unix:@");
    memset(text + n, 'a', 300);
    text[n + 300] = '\0';
    expect_parse_error(text, "too long");

    /* A host name longer than any DNS name. */
    memset(text, 'h', 300);
    snprintf(text + 300, sizeof(text) - 300, ":80");
    expect_parse_error(text, "bad host");
    text[0] = '[';
    memset(text + 1, '1', 300);
    snprintf(text + 301, sizeof(text) - 301, "]:80");
    expect_parse_error(text, "bad IPv6");
}

/* The error text is bounded by errlen, and err may be left out. */
static void test_parse_error_buffer(void **state)
{
    (void)state;
    struct net_addr a;
    assert_int_equal(net_addr_parse("127.0.0.1", &a, NULL, 0), -EINVAL);
    assert_int_equal(net_addr_parse("127.0.0.1:70000", &a, NULL, 123), -EINVAL);

    char err[16];
    memset(err, 'Z', sizeof(err));
    assert_int_equal(net_addr_parse("unix:", &a, err, 0), -EINVAL);
    for (size_t i = 0; i < sizeof(err); i++)
        assert_int_equal(err[i], 'Z');

    /* Eight bytes: seven of the message and a NUL; nothing after. */
    assert_int_equal(net_addr_parse("unix:", &a, err, 8), -EINVAL);
    assert_int_equal(strlen(err), 7);
    assert_memory_equal(err, "empty u", 7);
    for (size_t i = 8; i < sizeof(err); i++)
        assert_int_equal(err[i], 'Z');
}

/* ---- net_addr_format ---- */

static void test_format_round_trip(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "127.0.0.1:7007", "0.0.0.0:0", "255.255.255.255:65535", "[::1]:7007", "[::]:0",
        "[2001:db8::42]:65535", "[::ffff:192.0.2.1]:80", "unix:/run/echod/echod.sock",
        "unix:relative.sock", "unix:@echod-test", "unix:@x",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct net_addr a = parse_ok(texts[i]);
        char out[TEXT_MAX];
        format(&a, out);
        assert_string_equal(out, texts[i]);
        /* And the text parses back to the same address. */
        struct net_addr b = parse_ok(out);
        assert_int_equal(b.family, a.family);
        assert_int_equal(b.len, a.len);
        assert_memory_equal(&b.ss, &a.ss, a.len);
    }
    /* A name comes back as the address it resolved to. */
    struct net_addr a = parse_ok("localhost:9");
    char out[TEXT_MAX];
    format(&a, out);
    assert_true(strcmp(out, "127.0.0.1:9") == 0 || strcmp(out, "[::1]:9") == 0);
}

/* What accept() reports for an unbound unix client: no name at all. Its
 * path bytes (garbage here) are never read. */
static void test_format_unnamed_unix(void **state)
{
    (void)state;
    struct net_addr a;
    memset(&a, 'x', sizeof(a));
    a.family = AF_UNIX;
    a.ss.ss_family = AF_UNIX;
    a.len = (socklen_t)offsetof(struct sockaddr_un, sun_path);
    char out[TEXT_MAX];
    format(&a, out);
    assert_string_equal(out, "unix:");
    /* An abstract name whose bytes fill the length, with no NUL: bounded. */
    struct sockaddr_un *sun = (struct sockaddr_un *)&a.ss;
    sun->sun_path[0] = '\0';
    memcpy(sun->sun_path + 1, "abc", 3);
    a.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 4);
    format(&a, out);
    assert_string_equal(out, "unix:@abc");
}

/* A short buffer gets a truncated, terminated text and nothing past it. */
static void test_format_short_buffer(void **state)
{
    (void)state;
    static const char *const texts[] = {"127.0.0.1:7007", "[::1]:7007", "unix:/a/b/c",
                                        "unix:@abc"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct net_addr a = parse_ok(texts[i]);
        for (size_t cap = 1; cap <= strlen(texts[i]) + 1; cap++) {
            /* Exactly cap bytes: an overrun shows under ASan. */
            char *out = malloc(cap);
            assert_non_null(out);
            net_addr_format(&a, out, cap);
            assert_int_equal(strlen(out), cap - 1);
            assert_memory_equal(out, texts[i], cap - 1);
            free(out);
        }
    }
}

/* ---- listening and connecting ---- */

struct echo_job {
    int fd;
    size_t n;
    ssize_t got;        /* what net_recv_all returned */
    int sent;           /* what net_send_all returned */
};

/* The far side: receive n bytes, send them back, then shut down writing. */
static void *echo_thread(void *arg)
{
    struct echo_job *j = arg;
    unsigned char *buf = malloc(j->n);
    if (buf == NULL) {
        j->got = -ENOMEM;
        return NULL;
    }
    j->got = net_recv_all(j->fd, buf, j->n);
    j->sent = j->got == (ssize_t)j->n ? net_send_all(j->fd, buf, j->n) : -EIO;
    shutdown(j->fd, SHUT_WR);
    free(buf);
    return NULL;
}

/* XFER_BYTES from cfd to sfd and back again, then EOF on cfd. */
static void exchange(int cfd, int sfd)
{
    struct echo_job j = {.fd = sfd, .n = XFER_BYTES};
    bound_waits(cfd);
    bound_waits(sfd);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, echo_thread, &j), 0);
    unsigned char *out = pattern(XFER_BYTES, 3);
    unsigned char *in = malloc(XFER_BYTES);
    assert_non_null(in);
    int sent = net_send_all(cfd, out, XFER_BYTES);
    ssize_t got = net_recv_all(cfd, in, XFER_BYTES);
    /* The far side shut down: EOF now. */
    char extra;
    ssize_t eof = net_recv_all(cfd, &extra, 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(sent, 0);
    assert_int_equal(j.got, XFER_BYTES);
    assert_int_equal(j.sent, 0);
    assert_int_equal(got, XFER_BYTES);
    assert_memory_equal(in, out, XFER_BYTES);
    assert_int_equal(eof, 0);
    free(out);
    free(in);
}

/* A listener as promised: non-blocking, close-on-exec, listening. */
static void check_listener(int fd)
{
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(getsockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
    assert_int_equal(getsockopt_int(fd, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
}

/* A client socket as promised: blocking, close-on-exec. */
static void check_client(int fd)
{
    assert_true(fd >= 0);
    assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

/* Listen on text (port 0), connect to where it really is, move data. */
static void listen_connect_exchange(const char *text, int timeout_ms)
{
    struct net_addr a = parse_ok(text);
    int lfd = net_listen(&a, 16);
    check_listener(lfd);
    struct net_addr b = bound_addr(lfd);
    assert_int_equal(b.family, a.family);
    assert_int_not_equal(addr_port(&b), 0);

    /* The port the kernel chose, through format and parse. */
    char where[TEXT_MAX];
    format(&b, where);
    struct net_addr c = parse_ok(where);

    int cfd = net_connect(&c, timeout_ms);
    check_client(cfd);
    int sfd = accept_within(lfd);
    exchange(cfd, sfd);
    close(cfd);
    close(sfd);
    close(lfd);
}

static void test_tcp_ipv4(void **state)
{
    (void)state;
    listen_connect_exchange("127.0.0.1:0", 0);
    listen_connect_exchange("127.0.0.1:0", WAIT_MS);
}

static void test_tcp_localhost(void **state)
{
    (void)state;
    listen_connect_exchange("localhost:0", WAIT_MS);
}

static void test_tcp_ipv6(void **state)
{
    (void)state;
    if (!ipv6_loopback_available())
        skip();
    listen_connect_exchange("[::1]:0", 0);
    listen_connect_exchange("[::1]:0", WAIT_MS);

    /* An IPv6 listener is IPv6 only, so "[::]:p" and an IPv4 listener on p
     * can coexist. Only the wildcard shows it (binding ::1 implies v6-only);
     * it is held for an instant and nothing connects to it. */
    struct net_addr a = parse_ok("[::]:0");
    int lfd = net_listen(&a, 4);
    check_listener(lfd);
    assert_int_equal(getsockopt_int(lfd, IPPROTO_IPV6, IPV6_V6ONLY), 1);
    char text[TEXT_MAX];
    struct net_addr b = bound_addr(lfd);
    snprintf(text, sizeof(text), "127.0.0.1:%u", (unsigned)addr_port(&b));
    struct net_addr v4 = parse_ok(text);
    int lfd4 = net_listen(&v4, 4);
    check_listener(lfd4);
    close(lfd4);
    close(lfd);
}

static void test_tcp_listener_options(void **state)
{
    (void)state;
    struct net_addr a = parse_ok("127.0.0.1:0");
    int lfd = net_listen(&a, 4);
    check_listener(lfd);
    /* So a restart can bind while old connections sit in TIME_WAIT. */
    assert_true(getsockopt_int(lfd, SOL_SOCKET, SO_REUSEADDR) != 0);
    close(lfd);
}

static void test_unix_path(void **state)
{
    const char *dir = *state;
    char text[TEXT_MAX], where[TEXT_MAX];
    snprintf(text, sizeof(text), "unix:%s/echod.sock", dir);
    struct net_addr a = parse_ok(text);
    int lfd = net_listen(&a, 16);
    check_listener(lfd);
    struct stat st;
    assert_int_equal(lstat(text + strlen("unix:"), &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    format(&a, where);
    assert_string_equal(where, text);

    int cfd = net_connect(&a, 0);
    check_client(cfd);
    int sfd = accept_within(lfd);
    exchange(cfd, sfd);
    close(cfd);
    close(sfd);

    /* With a timeout too. */
    cfd = net_connect(&a, WAIT_MS);
    check_client(cfd);
    sfd = accept_within(lfd);
    exchange(cfd, sfd);
    close(cfd);
    close(sfd);
    close(lfd);
}

/* The longest path sun_path holds works end to end. */
static void test_unix_longest_path(void **state)
{
    const char *dir = *state;
    char text[TEXT_MAX];
    int n = snprintf(text, sizeof(text), "unix:%s/", dir);
    int fill = (int)strlen("unix:") + SUN_PATH_MAX - 1 - n;
    assert_true(fill > 0);
    memset(text + n, 's', (size_t)fill);
    text[n + fill] = '\0';
    const char *path = text + strlen("unix:");
    assert_int_equal(strlen(path), SUN_PATH_MAX - 1);

    struct net_addr a = parse_ok(text);
    int lfd = net_listen(&a, 4);
    check_listener(lfd);
    int cfd = net_connect(&a, WAIT_MS);
    check_client(cfd);
    int sfd = accept_within(lfd);
    assert_int_equal(net_send_all(cfd, "ping", 4), 0);
    char got[4];
    assert_int_equal(net_recv_all(sfd, got, 4), 4);
    assert_memory_equal(got, "ping", 4);
    close(cfd);
    close(sfd);
    close(lfd);
}

static void test_unix_abstract(void **state)
{
    (void)state;
    char text[TEXT_MAX], where[TEXT_MAX];
    snprintf(text, sizeof(text), "unix:@echod-test-net-%ld", (long)getpid());
    struct net_addr a = parse_ok(text);
    int lfd = net_listen(&a, 16);
    check_listener(lfd);
    /* The kernel holds exactly this name. */
    struct net_addr b = bound_addr(lfd);
    assert_int_equal(b.len, a.len);
    assert_memory_equal(&b.ss, &a.ss, a.len);
    format(&b, where);
    assert_string_equal(where, text);

    int cfd = net_connect(&a, WAIT_MS);
    check_client(cfd);
    int sfd = accept_within(lfd);
    exchange(cfd, sfd);
    close(cfd);
    close(sfd);

    /* The name is taken while the listener lives. */
    int fds = count_open_fds();
    assert_int_equal(net_listen(&a, 4), -EADDRINUSE);
    assert_int_equal(count_open_fds(), fds);
    close(lfd);
}

/* A timeout also bounds every later send and receive. */
static void test_connect_timeout_sets_socket_timeouts(void **state)
{
    (void)state;
    struct net_addr a = parse_ok("127.0.0.1:0");
    int lfd = net_listen(&a, 4);
    check_listener(lfd);
    struct net_addr b = bound_addr(lfd);

    int cfd = net_connect(&b, 1500);
    check_client(cfd);
    struct timeval tv;
    socklen_t len = sizeof(tv);
    assert_int_equal(getsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len), 0);
    assert_int_equal(tv.tv_sec, 1);
    assert_int_equal(tv.tv_usec, 500000);
    len = sizeof(tv);
    assert_int_equal(getsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len), 0);
    assert_int_equal(tv.tv_sec, 1);
    assert_int_equal(tv.tv_usec, 500000);
    close(cfd);
    close(accept_within(lfd));

    /* Without one, no socket timeout either. */
    cfd = net_connect(&b, 0);
    check_client(cfd);
    len = sizeof(tv);
    assert_int_equal(getsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len), 0);
    assert_int_equal(tv.tv_sec, 0);
    assert_int_equal(tv.tv_usec, 0);
    close(cfd);
    close(accept_within(lfd));

    /* A receive with nothing coming ends with -EAGAIN after the timeout. */
    cfd = net_connect(&b, RECV_TIMEOUT_MS);
    check_client(cfd);
    int sfd = accept_within(lfd);
    char c;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ssize_t r = net_recv_all(cfd, &c, 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(r == -EAGAIN || r == -EWOULDBLOCK);
    assert_true(t1.tv_sec - t0.tv_sec < WAIT_MS / 1000);
    close(cfd);
    close(sfd);
    close(lfd);
}

/* A full accept queue drops SYNs, so the connect hangs: the timeout ends it. */
static void test_connect_times_out(void **state)
{
    (void)state;
    struct net_addr a = parse_ok("127.0.0.1:0");
    int lfd = net_listen(&a, 0);
    check_listener(lfd);
    struct net_addr b = bound_addr(lfd);
    int fds[HANG_TRIES];
    int nfds = 0;
    int rc = 0;
    int before = count_open_fds();
    for (int i = 0; i < HANG_TRIES; i++) {
        rc = net_connect(&b, HANG_TIMEOUT_MS);
        if (rc < 0)
            break;
        fds[nfds++] = rc;
        before++;
    }
    assert_int_equal(rc, -ETIMEDOUT);
    /* The failed attempt left no descriptor behind. */
    assert_int_equal(count_open_fds(), before);
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    close(lfd);
}

static void test_connect_refused(void **state)
{
    /* A bound socket that does not listen: the port is ours and refuses. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    struct net_addr b = bound_addr(fd);
    int fds = count_open_fds();
    assert_int_equal(net_connect(&b, 0), -ECONNREFUSED);
    assert_int_equal(net_connect(&b, WAIT_MS), -ECONNREFUSED);
    assert_int_equal(count_open_fds(), fds);
    close(fd);

    /* A unix path nobody created, and a socket file nobody listens on. */
    const char *dir = *state;
    char text[TEXT_MAX];
    fds = count_open_fds();
    snprintf(text, sizeof(text), "unix:%s/none.sock", dir);
    struct net_addr u = parse_ok(text);
    assert_int_equal(net_connect(&u, 0), -ENOENT);
    assert_int_equal(net_connect(&u, WAIT_MS), -ENOENT);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&u.ss, u.len), 0);
    close(fd);
    assert_int_equal(net_connect(&u, 0), -ECONNREFUSED);
    assert_int_equal(net_connect(&u, WAIT_MS), -ECONNREFUSED);
    assert_int_equal(count_open_fds(), fds);
}

static void test_listen_errors(void **state)
{
    (void)state;
    /* The port of a live listener cannot be taken, SO_REUSEADDR or not. */
    struct net_addr a = parse_ok("127.0.0.1:0");
    int lfd = net_listen(&a, 4);
    check_listener(lfd);
    struct net_addr b = bound_addr(lfd);
    int fds = count_open_fds();
    assert_int_equal(net_listen(&b, 4), -EADDRINUSE);
    assert_int_equal(count_open_fds(), fds);
    close(lfd);

    /* A directory that does not exist. */
    struct net_addr u = parse_ok("unix:/nonexistent-echod-dir/x/echod.sock");
    fds = count_open_fds();
    assert_int_equal(net_listen(&u, 4), -ENOENT);
    assert_int_equal(count_open_fds(), fds);
}

/* ---- stale unix socket files ---- */

static void test_listen_replaces_stale_socket(void **state)
{
    const char *dir = *state;
    char text[TEXT_MAX];
    snprintf(text, sizeof(text), "unix:%s/stale.sock", dir);
    const char *path = text + strlen("unix:");
    struct net_addr a = parse_ok(text);

    /* What a crashed run leaves: a socket file with no one behind it. */
    int old = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(old >= 0);
    assert_int_equal(bind(old, (struct sockaddr *)&a.ss, a.len), 0);
    close(old);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(net_connect(&a, 0), -ECONNREFUSED);

    int lfd = net_listen(&a, 4);
    check_listener(lfd);
    int cfd = net_connect(&a, WAIT_MS);
    check_client(cfd);
    int sfd = accept_within(lfd);
    assert_int_equal(net_send_all(cfd, "fresh", 5), 0);
    char got[5];
    assert_int_equal(net_recv_all(sfd, got, 5), 5);
    assert_memory_equal(got, "fresh", 5);
    close(cfd);
    close(sfd);
    close(lfd);
}

/* Anyone may connect to a unix listener, whatever the umask at bind time. */
static void test_unix_socket_mode(void **state)
{
    const char *dir = *state;
    char text[TEXT_MAX];
    snprintf(text, sizeof(text), "unix:%s/mode.sock", dir);
    struct net_addr a = parse_ok(text);
    mode_t old = umask(077);
    int lfd = net_listen(&a, 4);
    umask(old);
    check_listener(lfd);
    struct stat st;
    assert_int_equal(lstat(text + strlen("unix:"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0666);
    close(lfd);
}

/* A socket someone still listens on is in use, not stale: it stays, and
 * its listener keeps its clients. */
static void test_listen_keeps_live_socket(void **state)
{
    const char *dir = *state;
    char text[TEXT_MAX];
    snprintf(text, sizeof(text), "unix:%s/live.sock", dir);
    struct net_addr a = parse_ok(text);
    int first = net_listen(&a, 4);
    check_listener(first);
    /* The probe connection net_listen makes lands in first's backlog. */
    int fds = count_open_fds();
    assert_int_equal(net_listen(&a, 4), -EADDRINUSE);
    assert_int_equal(count_open_fds(), fds);
    int probe = accept_within(first);
    close(probe);

    int cfd = net_connect(&a, WAIT_MS);
    check_client(cfd);
    int sfd = accept_within(first);
    exchange(cfd, sfd);
    close(cfd);
    close(sfd);
    close(first);
}

/* Nothing but a socket is ever removed: a regular file, a symlink to one
 * and a directory at the path all make bind fail and stay as they were. */
static void test_listen_keeps_other_files(void **state)
{
    static const char content[] = "precious data\n";
    const char *dir = *state;
    char file[FILE_MAX], text[TEXT_MAX];
    snprintf(file, sizeof(file), "%s/file", dir);

    FILE *f = fopen(file, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, sizeof(content) - 1, f), sizeof(content) - 1);
    assert_int_equal(fclose(f), 0);

    int fds = count_open_fds();
    snprintf(text, sizeof(text), "unix:%s", file);
    struct net_addr a = parse_ok(text);
    assert_int_equal(net_listen(&a, 4), -EADDRINUSE);
    assert_int_equal(count_open_fds(), fds);
    struct stat st;
    assert_int_equal(lstat(file, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    char got[64] = "";
    f = fopen(file, "r");
    assert_non_null(f);
    assert_int_equal(fread(got, 1, sizeof(got) - 1, f), sizeof(content) - 1);
    fclose(f);
    assert_string_equal(got, content);

    /* A symlink to it. */
    char link_path[FILE_MAX];
    snprintf(link_path, sizeof(link_path), "%s/link", dir);
    assert_int_equal(symlink(file, link_path), 0);
    snprintf(text, sizeof(text), "unix:%s", link_path);
    a = parse_ok(text);
    assert_int_equal(net_listen(&a, 4), -EADDRINUSE);
    assert_int_equal(lstat(link_path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(lstat(file, &st), 0);
    assert_true(S_ISREG(st.st_mode));

    /* A directory. */
    char sub[FILE_MAX];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(text, sizeof(text), "unix:%s", sub);
    a = parse_ok(text);
    assert_int_equal(net_listen(&a, 4), -EADDRINUSE);
    assert_int_equal(lstat(sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(count_open_fds(), fds);

}

/* ---- net_send_all / net_recv_all ---- */

static void test_send_recv_socketpair(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    exchange(sv[0], sv[1]);
    close(sv[0]);
    close(sv[1]);
}

static void test_recv_all_short_at_eof(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(net_send_all(sv[0], "0123456789", 10), 0);
    assert_int_equal(shutdown(sv[0], SHUT_WR), 0);
    char buf[100];
    memset(buf, 0, sizeof(buf));
    assert_int_equal(net_recv_all(sv[1], buf, sizeof(buf)), 10);
    assert_memory_equal(buf, "0123456789", 10);
    assert_int_equal(net_recv_all(sv[1], buf, sizeof(buf)), 0);
    /* Zero bytes asked, zero given, without blocking. */
    assert_int_equal(net_recv_all(sv[1], buf, 0), 0);
    assert_int_equal(net_send_all(sv[1], buf, 0), 0);
    close(sv[0]);
    close(sv[1]);

    /* Exactly n when more is waiting: the rest stays for the next call. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(net_send_all(sv[0], "abcdef", 6), 0);
    assert_int_equal(net_recv_all(sv[1], buf, 4), 4);
    assert_memory_equal(buf, "abcd", 4);
    close(sv[0]);
    assert_int_equal(net_recv_all(sv[1], buf, 4), 2);
    assert_memory_equal(buf, "ef", 2);
    close(sv[1]);
}

static void test_send_recv_errors(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    /* Non-blocking with nothing to read: the error, not a hang. */
    assert_int_equal(net_set_nonblock(sv[1], true), 0);
    char c;
    ssize_t r = net_recv_all(sv[1], &c, 1);
    assert_true(r == -EAGAIN || r == -EWOULDBLOCK);

    /* Sending to a closed peer fails with -EPIPE and raises no SIGPIPE,
     * which would kill this process. */
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
    assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
    close(sv[1]);
    assert_int_equal(net_send_all(sv[0], "x", 1), -EPIPE);
    assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
    close(sv[0]);

    /* Not a descriptor at all. */
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(net_send_all(fd, "x", 1), -EBADF);
    assert_int_equal(net_recv_all(fd, &c, 1), -EBADF);
}

/* Signals landing while the calls block: EINTR is retried and a partial
 * transfer continues where it stopped, so the caller sees all or an error. */
static atomic_int signals_seen;

static void count_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&signals_seen, 1);
}

struct interrupter {
    pthread_t target;
    atomic_bool stop;
};

static void *interrupt_thread(void *arg)
{
    struct interrupter *it = arg;
    struct timespec gap = {.tv_nsec = SIGNAL_GAP_NS};
    while (!atomic_load(&it->stop)) {
        pthread_kill(it->target, SIGUSR1);
        nanosleep(&gap, NULL);
    }
    return NULL;
}

struct slow_job {
    int fd;
    bool ok;
};

/* Reads EINTR_BYTES in small pieces with pauses, checking the pattern. */
static void *slow_reader(void *arg)
{
    struct slow_job *j = arg;
    unsigned char *buf = malloc(SLOW_CHUNK);
    struct timespec pause = {.tv_nsec = SLOW_PAUSE_NS};
    j->ok = buf != NULL;
    for (size_t off = 0; j->ok && off < EINTR_BYTES; off += SLOW_CHUNK) {
        if (net_recv_all(j->fd, buf, SLOW_CHUNK) != SLOW_CHUNK)
            j->ok = false;
        for (size_t i = 0; j->ok && i < SLOW_CHUNK; i++)
            j->ok = buf[i] == pattern_byte(off + i, 5);
        nanosleep(&pause, NULL);
    }
    free(buf);
    return NULL;
}

/* Writes EINTR_BYTES in small pieces with pauses. */
static void *slow_writer(void *arg)
{
    struct slow_job *j = arg;
    unsigned char *all = malloc(EINTR_BYTES);
    struct timespec pause = {.tv_nsec = SLOW_PAUSE_NS};
    j->ok = all != NULL;
    for (size_t i = 0; j->ok && i < EINTR_BYTES; i++)
        all[i] = pattern_byte(i, 5);
    for (size_t off = 0; j->ok && off < EINTR_BYTES; off += SLOW_CHUNK) {
        j->ok = net_send_all(j->fd, all + off, SLOW_CHUNK) == 0;
        nanosleep(&pause, NULL);
    }
    free(all);
    return NULL;
}

static void test_send_all_through_signals(void **state)
{
    (void)state;
    struct sigaction sa = {.sa_handler = count_signal}, old;   /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    atomic_store(&signals_seen, 0);

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    bound_waits(sv[1]);
    struct slow_job reader = {.fd = sv[1]};
    struct interrupter it = {.target = pthread_self()};
    atomic_init(&it.stop, false);
    pthread_t rt, st;
    assert_int_equal(pthread_create(&rt, NULL, slow_reader, &reader), 0);
    assert_int_equal(pthread_create(&st, NULL, interrupt_thread, &it), 0);
    /* One call for everything: it blocks on the slow reader most of the time. */
    unsigned char *all = pattern(EINTR_BYTES, 5);
    int rc = net_send_all(sv[0], all, EINTR_BYTES);
    atomic_store(&it.stop, true);
    /* Should the send stop short, the reader sees EOF rather than waiting. */
    shutdown(sv[0], SHUT_WR);
    assert_int_equal(pthread_join(st, NULL), 0);
    assert_int_equal(pthread_join(rt, NULL), 0);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
    assert_int_equal(rc, 0);
    assert_true(reader.ok);
    assert_true(atomic_load(&signals_seen) > 0);
    free(all);
    close(sv[0]);
    close(sv[1]);
}

static void test_recv_all_through_signals(void **state)
{
    (void)state;
    struct sigaction sa = {.sa_handler = count_signal}, old;   /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    atomic_store(&signals_seen, 0);

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    bound_waits(sv[0]);
    struct slow_job writer = {.fd = sv[0]};
    struct interrupter it = {.target = pthread_self()};
    atomic_init(&it.stop, false);
    pthread_t wt, st;
    assert_int_equal(pthread_create(&wt, NULL, slow_writer, &writer), 0);
    assert_int_equal(pthread_create(&st, NULL, interrupt_thread, &it), 0);
    /* One call for everything, arriving in small pieces between signals. */
    unsigned char *in = malloc(EINTR_BYTES);
    assert_non_null(in);
    ssize_t got = net_recv_all(sv[1], in, EINTR_BYTES);
    atomic_store(&it.stop, true);
    /* Should the receive stop short, the writer's sends fail rather than wait. */
    shutdown(sv[1], SHUT_RDWR);
    assert_int_equal(pthread_join(st, NULL), 0);
    assert_int_equal(pthread_join(wt, NULL), 0);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
    assert_true(writer.ok);
    assert_int_equal(got, EINTR_BYTES);
    for (size_t i = 0; i < EINTR_BYTES; i++)
        if (in[i] != pattern_byte(i, 5))
            fail_msg("byte %zu differs", i);
    assert_true(atomic_load(&signals_seen) > 0);
    free(in);
    close(sv[0]);
    close(sv[1]);
}

/* ---- socket options ---- */

static void test_nonblock(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(net_set_nonblock(sv[0], true), 0);
    assert_true(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    assert_int_equal(net_set_nonblock(sv[0], true), 0);
    assert_true(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    assert_int_equal(net_set_nonblock(sv[0], false), 0);
    assert_false(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    /* Other flags are left alone. */
    assert_int_equal(fcntl(sv[0], F_SETFL, O_APPEND), 0);
    int before = fcntl(sv[0], F_GETFL);
    assert_int_equal(net_set_nonblock(sv[0], true), 0);
    assert_int_equal(fcntl(sv[0], F_GETFL), before | O_NONBLOCK);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(net_set_nonblock(sv[0], true), -EBADF);
}

static void test_tcp_options(void **state)
{
    (void)state;
    struct net_addr a = parse_ok("127.0.0.1:0");
    int lfd = net_listen(&a, 4);
    check_listener(lfd);
    struct net_addr b = bound_addr(lfd);
    int cfd = net_connect(&b, WAIT_MS);
    check_client(cfd);
    int sfd = accept_within(lfd);

    int fds[2] = {cfd, sfd};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(getsockopt_int(fds[i], IPPROTO_TCP, TCP_NODELAY), 0);
        assert_int_equal(net_set_nodelay(fds[i], true), 0);
        assert_true(getsockopt_int(fds[i], IPPROTO_TCP, TCP_NODELAY) != 0);
        assert_int_equal(net_set_nodelay(fds[i], false), 0);
        assert_int_equal(getsockopt_int(fds[i], IPPROTO_TCP, TCP_NODELAY), 0);

        assert_int_equal(getsockopt_int(fds[i], SOL_SOCKET, SO_KEEPALIVE), 0);
        assert_int_equal(net_set_keepalive(fds[i], true), 0);
        assert_true(getsockopt_int(fds[i], SOL_SOCKET, SO_KEEPALIVE) != 0);
        assert_int_equal(net_set_keepalive(fds[i], false), 0);
        assert_int_equal(getsockopt_int(fds[i], SOL_SOCKET, SO_KEEPALIVE), 0);
    }
    close(cfd);
    close(sfd);
    close(lfd);
}

static void test_options_on_unix_are_noops(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(net_set_nodelay(sv[0], true), 0);
    assert_int_equal(net_set_nodelay(sv[0], false), 0);
    assert_int_equal(net_set_keepalive(sv[0], true), 0);
    assert_int_equal(net_set_keepalive(sv[0], false), 0);
    /* Still a working connection. */
    assert_int_equal(net_send_all(sv[0], "ok", 2), 0);
    char got[2];
    assert_int_equal(net_recv_all(sv[1], got, 2), 2);
    assert_memory_equal(got, "ok", 2);
    close(sv[0]);
    close(sv[1]);

    /* Real errors are still errors: not a socket, not a descriptor. */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(net_set_nodelay(p[0], true), -ENOTSOCK);
    assert_int_equal(net_set_keepalive(p[0], true), -ENOTSOCK);
    close(p[0]);
    close(p[1]);
    assert_int_equal(net_set_nodelay(p[0], true), -EBADF);
    assert_int_equal(net_set_keepalive(p[0], true), -EBADF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ipv4),
        cmocka_unit_test(test_parse_ipv6),
        cmocka_unit_test(test_parse_hostname),
        cmocka_unit_test(test_parse_unix_path),
        cmocka_unit_test(test_parse_unix_abstract),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_too_long),
        cmocka_unit_test(test_parse_error_buffer),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_format_unnamed_unix),
        cmocka_unit_test(test_format_short_buffer),
        cmocka_unit_test(test_tcp_ipv4),
        cmocka_unit_test(test_tcp_localhost),
        cmocka_unit_test(test_tcp_ipv6),
        cmocka_unit_test(test_tcp_listener_options),
        cmocka_unit_test_setup_teardown(test_unix_path, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_unix_longest_path, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test(test_unix_abstract),
        cmocka_unit_test(test_connect_timeout_sets_socket_timeouts),
        cmocka_unit_test(test_connect_times_out),
        cmocka_unit_test_setup_teardown(test_connect_refused, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test_setup_teardown(test_listen_replaces_stale_socket, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_listen_keeps_other_files, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_unix_socket_mode, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_listen_keeps_live_socket, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test(test_send_recv_socketpair),
        cmocka_unit_test(test_recv_all_short_at_eof),
        cmocka_unit_test(test_send_recv_errors),
        cmocka_unit_test(test_send_all_through_signals),
        cmocka_unit_test(test_recv_all_through_signals),
        cmocka_unit_test(test_nonblock),
        cmocka_unit_test(test_tcp_options),
        cmocka_unit_test(test_options_on_unix_are_noops),
    };
    alarm(WATCHDOG_S);
    return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
