/* fuzz_conn.c - byte streams through a whole connection: the transport and
 * each protocol (framed, raw, http) together, as a client would drive them.
 *
 * Input: byte 0 picks the protocol, byte 1 seeds the chunk sizes the rest is
 * written in; the rest is what the client sends. A real worker (its epoll
 * loop run a turn at a time in this thread) serves one end of a unix
 * socketpair; the fuzzer writes the other end in chunks, reads and drops
 * whatever comes back, then sends its EOF and lets the connection finish.
 * Sanitizers catch memory errors; the asserts catch a connection that never
 * ends and leaks of buffers, pipes or state blocks.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/config.h"
#include "server/conn.h"
#include "server/proto.h"
#include "server/stats.h"
#include "server/worker.h"

/* Loop turns allowed after the client's EOF before the connection must be
 * gone: every protocol finishes at EOF without waiting on a timer. */
#define TURNS_AFTER_EOF 200

static struct config *cfg;
static struct stats stats;
static struct stats_worker block;
static atomic_uint conns;
static struct worker w;

static void setup(void)
{
    char err[CONFIG_ERR_MAX];
    /* Short limits reach the error paths with small inputs; no delays, so
     * nothing waits on the clock. */
    static const char text[] =
        "workers = 1;\nmax_frame_size = 4096;\nhttp_max_header_size = 1024;\n"
        "http_max_delay = 0;\nlog_level = \"error\";\n";
    if (config_load_string(text, "fuzz.conf", &cfg, err, sizeof(err)) < 0)
        abort();
    stats.workers = &block;
    stats.nworkers = 1;
    if (worker_init(&w, 0, cfg, &stats, &conns) < 0)
        abort();
}

static void drop_output(int fd)
{
    uint8_t sink[65536];
    while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 2)
        return 0;
    const struct proto_ops *ops = proto_ops_of((enum proto_kind)(data[0] % PROTO_KINDS));
    unsigned seed = data[1];
    data += 2;
    size -= 2;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    atomic_fetch_add(&conns, 1);
    struct conn *c = conn_open(&w, sv[0], ops, PROTO_REJECT_NONE);
    assert(c != NULL);

    size_t off = 0;
    while (off < size) {
        size_t chunk = 1 + (seed * 31 + off) % 97;
        seed = seed * 1103515245u + 12345u;
        if (chunk > size - off)
            chunk = size - off;
        ssize_t n = send(sv[1], data + off, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno != EAGAIN)
            break;      /* echod closed: the rest cannot be sent */
        worker_turn(&w, 0);
        drop_output(sv[1]);
    }
    shutdown(sv[1], SHUT_WR);
    int turns = 0;
    for (; turns < TURNS_AFTER_EOF && w.nconns > 0; turns++) {
        worker_turn(&w, 0);
        drop_output(sv[1]);
    }
    assert(w.nconns == 0 && "a connection did not finish after the client's EOF");
    close(sv[1]);
    /* Everything lent to the connection came back. */
    assert(w.in_pool.lent == 0 && w.out_pool.lent == 0 && w.state_pool.lent == 0);
    return 0;
}
