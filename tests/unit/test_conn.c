/* test_conn.c - the transport (server/conn.c) driven directly: a real worker
 * run a turn at a time in this thread, serving one end of a socketpair.
 *
 * These are the cases an outside test cannot time: what the drain does with
 * a connection whose request is in the socket but not yet read when the
 * drain reaches it, and with one that is truly idle.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/frame.h"
#include "server/config.h"
#include "server/conn.h"
#include "server/stats.h"
#include "server/worker.h"

struct bed {
    struct config *cfg;
    struct stats stats;
    struct stats_worker block;
    atomic_uint conns;
    struct worker w;
    int peer;
    struct conn *c;
};

static struct bed *bed_new(enum proto_kind proto)
{
    static struct bed b;
    memset(&b, 0, sizeof(b));
    char err[CONFIG_ERR_MAX];
    assert_int_equal(config_load_string("workers = 1;\nlog_level = \"error\";\n", "t.conf", &b.cfg,
                                        err, sizeof(err)), 0);
    b.stats.workers = &b.block;
    b.stats.nworkers = 1;
    assert_int_equal(worker_init(&b.w, 0, b.cfg, &b.stats, &b.conns), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    b.peer = sv[1];
    atomic_fetch_add(&b.conns, 1);
    b.c = conn_open(&b.w, sv[0], proto_ops_of(proto), PROTO_REJECT_NONE);
    assert_non_null(b.c);
    worker_turn(&b.w, 0);
    return &b;
}

static void bed_free(struct bed *b)
{
    worker_close_all(&b->w, "test over");
    close(b->peer);
    worker_destroy(&b->w);
    config_unref(b->cfg);
}

/* Run turns until the connection is gone (or a bound); collect what the
 * peer received. Returns its length; *eof tells whether the server closed. */
static size_t run_to_close(struct bed *b, uint8_t *got, size_t cap, bool *eof)
{
    size_t n = 0;
    *eof = false;
    for (int turns = 0; turns < 200 && !*eof; turns++) {
        worker_turn(&b->w, 10);
        for (;;) {
            ssize_t r = recv(b->peer, got + n, cap - n, MSG_DONTWAIT);
            if (r > 0) {
                n += (size_t)r;
                continue;
            }
            if (r == 0)
                *eof = true;
            break;
        }
    }
    return n;
}

static void test_drain_answers_a_frame_waiting_in_the_socket(void **state)
{
    (void)state;
    struct bed *b = bed_new(PROTO_FRAMED);
    uint8_t ping[FRAME_HEADER_SIZE];
    frame_header_encode(ping, FRAME_PING, 0);
    assert_int_equal(send(b->peer, ping, sizeof(ping), 0), (ssize_t)sizeof(ping));
    /* The drain reaches the connection before its read: the PING is in the
     * socket, not in echod. */
    conn_drain(b->c);
    uint8_t got[64];
    bool eof;
    size_t n = run_to_close(b, got, sizeof(got), &eof);
    assert_true(eof);
    assert_int_equal(n, FRAME_HEADER_SIZE);
    assert_memory_equal(got, ping, FRAME_HEADER_SIZE);
    bed_free(b);
}

static void test_drain_answers_an_http_request_waiting_in_the_socket(void **state)
{
    (void)state;
    struct bed *b = bed_new(PROTO_HTTP);
    static const char req[] = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(send(b->peer, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
    conn_drain(b->c);
    char got[2048];
    bool eof;
    size_t n = run_to_close(b, (uint8_t *)got, sizeof(got) - 1, &eof);
    got[n] = '\0';
    assert_true(eof);
    assert_true(strncmp(got, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(got, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(got, "\r\n\r\nGET /x HTTP/1.1\r\n"));
    bed_free(b);
}

static void test_drain_closes_an_idle_connection_at_once(void **state)
{
    (void)state;
    struct bed *b = bed_new(PROTO_FRAMED);
    conn_drain(b->c);
    uint8_t got[16];
    bool eof;
    assert_int_equal(run_to_close(b, got, sizeof(got), &eof), 0);
    assert_true(eof);
    assert_int_equal(b->w.nconns, 0);
    bed_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drain_answers_a_frame_waiting_in_the_socket),
        cmocka_unit_test(test_drain_answers_an_http_request_waiting_in_the_socket),
        cmocka_unit_test(test_drain_closes_an_idle_connection_at_once),
    };
    return cmocka_run_group_tests_name("conn", tests, NULL, NULL);
}
