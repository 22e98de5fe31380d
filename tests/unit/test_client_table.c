/* test_client_table.c - per-address connection counts (server/client_table.c):
 * counting, the limit, release by fd, address kinds, a crowded table that
 * must never refuse a new address, counts left behind on a reused fd, and
 * releases from other threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <string.h>
#include <sys/un.h>

#include "server/client_table.h"

#define NFDS 8192

static struct sockaddr_storage v4(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(40000);
    assert_int_equal(inet_pton(AF_INET, text, &sin->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *text, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
    return ss;
}

static struct sockaddr_storage v4_n(uint32_t n)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(0x0a000000u + n);
    return ss;
}

static void test_count_limit_release(void **state)
{
    (void)state;
    struct client_table t;
    assert_int_equal(client_table_init(&t, 100, NFDS), 0);
    struct sockaddr_storage a = v4("127.0.0.2"), b = v4("127.0.0.3");
    assert_int_equal(client_table_acquire(&t, 10, &a, 2), CLIENT_COUNTED);
    assert_int_equal(client_table_acquire(&t, 11, &a, 2), CLIENT_COUNTED);
    assert_int_equal(client_table_acquire(&t, 12, &a, 2), CLIENT_OVER_LIMIT);
    /* Another address has its own count. */
    assert_int_equal(client_table_acquire(&t, 12, &b, 2), CLIENT_COUNTED);
    assert_int_equal(client_table_count(&t, &a), 2);
    assert_int_equal(client_table_count(&t, &b), 1);
    /* A refused connection was not counted, so nothing to release for fd 13. */
    client_table_release(&t, 13);
    assert_int_equal(client_table_count(&t, &a), 2);
    client_table_release(&t, 10);
    assert_int_equal(client_table_count(&t, &a), 1);
    client_table_release(&t, 10);   /* a second release changes nothing */
    assert_int_equal(client_table_count(&t, &a), 1);
    assert_int_equal(client_table_acquire(&t, 10, &a, 2), CLIENT_COUNTED);
    assert_int_equal(client_table_acquire(&t, 13, &a, 2), CLIENT_OVER_LIMIT);
    /* Limit 0 counts without refusing; a lower limit refuses at once. */
    assert_int_equal(client_table_acquire(&t, 13, &a, 0), CLIENT_COUNTED);
    assert_int_equal(client_table_count(&t, &a), 3);
    assert_int_equal(client_table_acquire(&t, 14, &a, 1), CLIENT_OVER_LIMIT);
    for (int fd = 10; fd <= 14; fd++)
        client_table_release(&t, fd);
    assert_int_equal(client_table_count(&t, &a), 0);
    assert_int_equal(client_table_count(&t, &b), 0);
    assert_int_equal(t.stale_releases, 0);
    client_table_destroy(&t);
}

static void test_address_kinds(void **state)
{
    (void)state;
    struct client_table t;
    assert_int_equal(client_table_init(&t, 100, NFDS), 0);
    struct sockaddr_storage a = v4("10.1.2.3");
    struct sockaddr_storage mapped = v6("::ffff:10.1.2.3", 1);
    struct sockaddr_storage six = v6("2001:db8::1", 2), six_other_port = v6("2001:db8::1", 3);
    struct sockaddr_storage six2 = v6("2001:db8::2", 2);
    /* The port is not part of the client: the same host on another port counts together. */
    assert_int_equal(client_table_acquire(&t, 1, &six, 2), CLIENT_COUNTED);
    assert_int_equal(client_table_acquire(&t, 2, &six_other_port, 2), CLIENT_COUNTED);
    assert_int_equal(client_table_acquire(&t, 3, &six, 2), CLIENT_OVER_LIMIT);
    assert_int_equal(client_table_acquire(&t, 3, &six2, 2), CLIENT_COUNTED);
    /* An IPv4-mapped IPv6 address is that IPv4 client. */
    assert_int_equal(client_table_acquire(&t, 4, &a, 2), CLIENT_COUNTED);
    assert_int_equal(client_table_acquire(&t, 5, &mapped, 2), CLIENT_COUNTED);
    assert_int_equal(client_table_acquire(&t, 6, &a, 2), CLIENT_OVER_LIMIT);
    /* Unix clients and unknown families are never counted nor refused. */
    struct sockaddr_storage un;
    memset(&un, 0, sizeof(un));
    un.ss_family = AF_UNIX;
    for (int fd = 100; fd < 110; fd++)
        assert_int_equal(client_table_acquire(&t, fd, &un, 1), CLIENT_UNCOUNTED);
    un.ss_family = AF_UNSPEC;
    assert_int_equal(client_table_acquire(&t, 110, &un, 1), CLIENT_UNCOUNTED);
    /* An fd beyond the table is served uncounted. */
    assert_int_equal(client_table_acquire(&t, NFDS, &a, 2), CLIENT_UNCOUNTED);
    assert_int_equal(client_table_acquire(&t, -1, &a, 2), CLIENT_UNCOUNTED);
    client_table_release(&t, NFDS);
    client_table_release(&t, -1);
    client_table_destroy(&t);
}

/* Far more live addresses than the table was sized for: windows fill up. A
 * new address must then go uncounted, never be refused; and every address
 * that was counted is refused at its limit, never another's. */
static void test_crowded_table_never_refuses_wrongly(void **state)
{
    (void)state;
    struct client_table t;
    assert_int_equal(client_table_init(&t, 1, NFDS), 0);   /* the smallest table */
    enum { N = 4000 };
    static enum client_verdict first[N];
    unsigned counted = 0, uncounted = 0;
    for (uint32_t i = 0; i < N; i++) {
        struct sockaddr_storage a = v4_n(i);
        first[i] = client_table_acquire(&t, (int)i, &a, 1);
        assert_int_not_equal(first[i], CLIENT_OVER_LIMIT);
        if (first[i] == CLIENT_COUNTED)
            counted++;
        else
            uncounted++;
    }
    assert_true(counted >= t.mask + 1 - CLIENT_TABLE_WINDOW);   /* nearly every slot used */
    assert_true(uncounted > 0);
    for (uint32_t i = 0; i < N; i++) {
        struct sockaddr_storage a = v4_n(i);
        enum client_verdict again = client_table_acquire(&t, (int)(N + i), &a, 1);
        if (first[i] == CLIENT_COUNTED)
            assert_int_equal(again, CLIENT_OVER_LIMIT);
        else
            assert_int_not_equal(again, CLIENT_OVER_LIMIT);
        client_table_release(&t, (int)(N + i));
    }
    /* Released, every slot is free again and anyone is counted once more. */
    for (uint32_t i = 0; i < N; i++)
        client_table_release(&t, (int)i);
    struct sockaddr_storage late = v4_n(N + 1);
    assert_int_equal(client_table_acquire(&t, 1, &late, 1), CLIENT_COUNTED);
    assert_int_equal(client_table_acquire(&t, 2, &late, 1), CLIENT_OVER_LIMIT);
    client_table_destroy(&t);
}

/* A close path that skipped the release: the fd number coming back proves
 * the old connection is gone, so its count is released then. */
static void test_stale_count_released_when_fd_returns(void **state)
{
    (void)state;
    struct client_table t;
    assert_int_equal(client_table_init(&t, 100, NFDS), 0);
    struct sockaddr_storage a = v4("127.0.0.2"), b = v4("127.0.0.3");
    assert_int_equal(client_table_acquire(&t, 7, &a, 1), CLIENT_COUNTED);
    /* fd 7 closed without a release, then accepted again for b. */
    assert_int_equal(client_table_acquire(&t, 7, &b, 1), CLIENT_COUNTED);
    assert_int_equal(t.stale_releases, 1);
    assert_int_equal(client_table_count(&t, &a), 0);
    assert_int_equal(client_table_acquire(&t, 8, &a, 1), CLIENT_COUNTED);
    client_table_release(&t, 7);
    client_table_release(&t, 8);
    assert_int_equal(client_table_count(&t, &a), 0);
    assert_int_equal(client_table_count(&t, &b), 0);
    client_table_destroy(&t);
}

struct releaser {
    struct client_table *t;
    int first, n;
};

static void *release_range(void *arg)
{
    struct releaser *r = arg;
    for (int fd = r->first; fd < r->first + r->n; fd++)
        client_table_release(r->t, fd);
    return NULL;
}

/* Workers release while the listener goes on counting (run under TSan too). */
static void test_release_from_other_threads(void **state)
{
    (void)state;
    struct client_table t;
    assert_int_equal(client_table_init(&t, 1000, NFDS), 0);
    struct sockaddr_storage a = v4("192.0.2.1");
    enum { PER_THREAD = 1000 };
    for (int fd = 0; fd < 2 * PER_THREAD; fd++)
        assert_int_equal(client_table_acquire(&t, fd, &a, 0), CLIENT_COUNTED);
    struct releaser r[2] = {{&t, 0, PER_THREAD}, {&t, PER_THREAD, PER_THREAD}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, release_range, &r[i]), 0);
    struct sockaddr_storage b = v4("192.0.2.2");
    for (int fd = 2 * PER_THREAD; fd < 3 * PER_THREAD; fd++)
        assert_int_equal(client_table_acquire(&t, fd, &b, 0), CLIENT_COUNTED);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(client_table_count(&t, &a), 0);
    assert_int_equal(client_table_count(&t, &b), PER_THREAD);
    assert_int_equal(client_table_acquire(&t, 0, &a, 1), CLIENT_COUNTED);
    assert_int_equal(client_table_acquire(&t, 1, &a, 1), CLIENT_OVER_LIMIT);
    client_table_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_limit_release),
        cmocka_unit_test(test_address_kinds),
        cmocka_unit_test(test_crowded_table_never_refuses_wrongly),
        cmocka_unit_test(test_stale_count_released_when_fd_returns),
        cmocka_unit_test(test_release_from_other_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
