/* test_pipe_pool.c - the splice pipe pool (server/pipe_pool.c): a lent pipe
 * is open, non-blocking, close-on-exec and has a capacity; an empty pipe that
 * comes back is lent again, at most `keep` are kept, a pipe that still holds
 * bytes is closed (its descriptors really are), destroy closes what is kept,
 * and bytes really move socket -> pipe -> socket with splice(2) through a
 * lent pipe, also through one that was returned and lent again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/pipe_pool.h"

/* The capacity asked for, as the daemon does: big enough to matter. */
#define PIPE_SIZE (1u << 20)
/* Kept idle pipes in most tests. */
#define KEEP 2
/* Bytes pushed through a lent pipe. */
#define XFER_BYTES (1u << 20)
/* Bytes written to the source socket per step. */
#define XFER_CHUNK (32u * 1024)
/* Steps without progress before the transfer test gives up. */
#define XFER_MAX_STALLS 1000

static bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void assert_fd_closed(int fd)
{
    errno = 0;
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
}

/* A freshly lent pipe: open ends, both non-blocking and close-on-exec,
 * empty, and its cap is what the kernel says it is. */
static void check_lent(const struct splice_pipe *sp)
{
    assert_non_null(sp);
    assert_true(sp->rfd >= 0);
    assert_true(sp->wfd >= 0);
    assert_int_not_equal(sp->rfd, sp->wfd);
    int fds[2] = {sp->rfd, sp->wfd};
    for (int i = 0; i < 2; i++) {
        int fdfl = fcntl(fds[i], F_GETFD);
        assert_true(fdfl >= 0);
        assert_true(fdfl & FD_CLOEXEC);
        int fl = fcntl(fds[i], F_GETFL);
        assert_true(fl >= 0);
        assert_true(fl & O_NONBLOCK);
    }
    assert_int_equal(fcntl(sp->rfd, F_GETFL) & O_ACCMODE, O_RDONLY);
    assert_int_equal(fcntl(sp->wfd, F_GETFL) & O_ACCMODE, O_WRONLY);
    assert_int_equal(sp->bytes, 0);
    assert_true(sp->cap > 0);
    assert_int_equal(sp->cap, fcntl(sp->wfd, F_GETPIPE_SZ));
    int queued = -1;
    assert_int_equal(ioctl(sp->rfd, FIONREAD, &queued), 0);
    assert_int_equal(queued, 0);
}

static void test_init(void **state)
{
    (void)state;
    struct pipe_pool p;
    memset(&p, 0xff, sizeof(p));
    pipe_pool_init(&p, PIPE_SIZE, KEEP);
    assert_null(p.free_list);
    assert_int_equal(p.nfree, 0);
    assert_int_equal(p.keep, KEEP);
    assert_int_equal(p.size, PIPE_SIZE);
    pipe_pool_destroy(&p);
    assert_int_equal(p.nfree, 0);
}

static void test_get_gives_a_usable_pipe(void **state)
{
    (void)state;
    struct pipe_pool p;
    pipe_pool_init(&p, PIPE_SIZE, KEEP);
    struct splice_pipe *sp = pipe_pool_get(&p);
    check_lent(sp);
    /* Where this process may have a PIPE_SIZE pipe, the pool asked for one. */
    int probe[2];
    assert_int_equal(pipe(probe), 0);
    if (fcntl(probe[1], F_SETPIPE_SZ, (int)PIPE_SIZE) >= 0)
        assert_true(sp->cap >= PIPE_SIZE);
    close(probe[0]);
    close(probe[1]);
    /* It is a working pipe. */
    assert_int_equal(write(sp->wfd, "abc", 3), 3);
    char got[4] = "";
    assert_int_equal(read(sp->rfd, got, sizeof(got)), 3);
    assert_memory_equal(got, "abc", 3);
    pipe_pool_put(&p, sp);
    pipe_pool_destroy(&p);
}

/* A size the kernel refuses still gives a pipe, at its default capacity. */
static void test_refused_size_falls_back(void **state)
{
    (void)state;
    struct pipe_pool p;
    /* Over 2^31: rejected by F_SETPIPE_SZ whatever the privileges. */
    pipe_pool_init(&p, 0x80000001u, KEEP);
    struct splice_pipe *sp = pipe_pool_get(&p);
    check_lent(sp);
    pipe_pool_put(&p, sp);
    pipe_pool_destroy(&p);
}

static void test_put_then_get_reuses(void **state)
{
    (void)state;
    struct pipe_pool p;
    pipe_pool_init(&p, PIPE_SIZE, KEEP);
    struct splice_pipe *sp = pipe_pool_get(&p);
    check_lent(sp);
    int rfd = sp->rfd, wfd = sp->wfd;
    pipe_pool_put(&p, sp);
    assert_int_equal(p.nfree, 1);
    assert_true(fd_is_open(rfd));
    assert_true(fd_is_open(wfd));

    struct splice_pipe *again = pipe_pool_get(&p);
    assert_ptr_equal(again, sp);
    assert_int_equal(again->rfd, rfd);
    assert_int_equal(again->wfd, wfd);
    assert_int_equal(p.nfree, 0);
    check_lent(again);

    /* Two lent at once are different pipes. */
    struct splice_pipe *other = pipe_pool_get(&p);
    check_lent(other);
    assert_ptr_not_equal(other, again);
    assert_int_not_equal(other->rfd, rfd);
    pipe_pool_put(&p, again);
    pipe_pool_put(&p, other);
    assert_int_equal(p.nfree, 2);
    pipe_pool_destroy(&p);
}

static void test_keep_limit(void **state)
{
    (void)state;
    enum { LENT = KEEP + 2 };
    struct pipe_pool p;
    pipe_pool_init(&p, PIPE_SIZE, KEEP);
    struct splice_pipe *sp[LENT];
    int rfd[LENT], wfd[LENT];
    for (int i = 0; i < LENT; i++) {
        sp[i] = pipe_pool_get(&p);
        check_lent(sp[i]);
        rfd[i] = sp[i]->rfd;
        wfd[i] = sp[i]->wfd;
    }
    for (int i = 0; i < LENT; i++) {
        pipe_pool_put(&p, sp[i]);
        assert_int_equal(p.nfree, i < KEEP ? (size_t)i + 1 : KEEP);
    }
    /* The first KEEP are kept open, the rest closed. */
    for (int i = 0; i < LENT; i++) {
        if (i < KEEP) {
            assert_true(fd_is_open(rfd[i]));
            assert_true(fd_is_open(wfd[i]));
        } else {
            assert_fd_closed(rfd[i]);
            assert_fd_closed(wfd[i]);
        }
    }
    /* Destroy closes the kept ones. */
    pipe_pool_destroy(&p);
    assert_int_equal(p.nfree, 0);
    assert_null(p.free_list);
    for (int i = 0; i < KEEP; i++) {
        assert_fd_closed(rfd[i]);
        assert_fd_closed(wfd[i]);
    }
}

static void test_keep_zero_closes_every_pipe(void **state)
{
    (void)state;
    struct pipe_pool p;
    pipe_pool_init(&p, PIPE_SIZE, 0);
    struct splice_pipe *sp = pipe_pool_get(&p);
    check_lent(sp);
    int rfd = sp->rfd, wfd = sp->wfd;
    pipe_pool_put(&p, sp);
    assert_int_equal(p.nfree, 0);
    assert_fd_closed(rfd);
    assert_fd_closed(wfd);
    pipe_pool_destroy(&p);
}

/* A pipe that still holds bytes (its connection died mid-stream) must not be
 * lent again: those bytes would go to the next connection. */
static void test_nonempty_pipe_is_closed(void **state)
{
    (void)state;
    struct pipe_pool p;
    pipe_pool_init(&p, PIPE_SIZE, KEEP);
    struct splice_pipe *sp = pipe_pool_get(&p);
    check_lent(sp);
    int rfd = sp->rfd, wfd = sp->wfd;
    assert_int_equal(write(sp->wfd, "leftover", 8), 8);
    sp->bytes = 8;
    pipe_pool_put(&p, sp);
    assert_int_equal(p.nfree, 0);
    assert_null(p.free_list);
    assert_fd_closed(rfd);
    assert_fd_closed(wfd);

    /* The next one lent is a fresh, empty pipe. */
    struct splice_pipe *next = pipe_pool_get(&p);
    check_lent(next);
    pipe_pool_put(&p, next);
    assert_int_equal(p.nfree, 1);
    pipe_pool_destroy(&p);
}

static void test_put_null_is_ignored(void **state)
{
    (void)state;
    struct pipe_pool p;
    pipe_pool_init(&p, PIPE_SIZE, KEEP);
    pipe_pool_put(&p, NULL);
    assert_int_equal(p.nfree, 0);
    assert_null(p.free_list);
    struct splice_pipe *sp = pipe_pool_get(&p);
    pipe_pool_put(&p, sp);
    pipe_pool_put(&p, NULL);
    assert_int_equal(p.nfree, 1);
    pipe_pool_destroy(&p);
}

static unsigned char pattern_byte(size_t i)
{
    return (unsigned char)((i * 131u + (i >> 11)) & 0xff);
}

/* Move XFER_BYTES from src[1] -> src[0] -> pipe -> dst[0] -> dst[1] with
 * splice, keeping sp->bytes as the daemon does; the pipe ends empty. */
static void transfer_through(struct splice_pipe *sp, int src[2], int dst[2])
{
    unsigned char *chunk = malloc(XFER_CHUNK);
    unsigned char *got = malloc(XFER_CHUNK);
    assert_non_null(chunk);
    assert_non_null(got);
    size_t written = 0, received = 0;
    int stalls = 0;
    while (received < XFER_BYTES) {
        bool progress = false;
        /* Feed the source socket. */
        if (written < XFER_BYTES) {
            size_t n = XFER_BYTES - written < XFER_CHUNK ? XFER_BYTES - written : XFER_CHUNK;
            for (size_t i = 0; i < n; i++)
                chunk[i] = pattern_byte(written + i);
            ssize_t w = send(src[1], chunk, n, MSG_DONTWAIT);
            if (w > 0) {
                written += (size_t)w;
                progress = true;
            } else {
                assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            }
        }
        /* Socket -> pipe, up to the room left in the pipe. */
        if (sp->bytes < sp->cap) {
            ssize_t s = splice(src[0], NULL, sp->wfd, NULL, sp->cap - sp->bytes,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (s > 0) {
                sp->bytes += (uint32_t)s;
                progress = true;
            } else {
                assert_true(s < 0 && errno == EAGAIN);
            }
        }
        /* Pipe -> socket. */
        if (sp->bytes > 0) {
            ssize_t s = splice(sp->rfd, NULL, dst[0], NULL, sp->bytes,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (s > 0) {
                assert_true((size_t)s <= sp->bytes);
                sp->bytes -= (uint32_t)s;
                progress = true;
            } else {
                assert_true(s < 0 && errno == EAGAIN);
            }
        }
        /* Drain the far end and check every byte. */
        ssize_t r = recv(dst[1], got, XFER_CHUNK, MSG_DONTWAIT);
        if (r > 0) {
            for (ssize_t i = 0; i < r; i++)
                if (got[i] != pattern_byte(received + (size_t)i))
                    fail_msg("byte %zu differs", received + (size_t)i);
            received += (size_t)r;
            progress = true;
        } else {
            assert_true(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        }
        stalls = progress ? 0 : stalls + 1;
        if (stalls > XFER_MAX_STALLS)
            fail_msg("transfer stalled at %zu of %u bytes", received, XFER_BYTES);
    }
    assert_int_equal(written, XFER_BYTES);
    assert_int_equal(sp->bytes, 0);
    int queued = -1;
    assert_int_equal(ioctl(sp->rfd, FIONREAD, &queued), 0);
    assert_int_equal(queued, 0);
    free(chunk);
    free(got);
}

static void test_data_moves_through_lent_pipe(void **state)
{
    (void)state;
    int src[2], dst[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, src), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, dst), 0);
    struct pipe_pool p;
    pipe_pool_init(&p, PIPE_SIZE, KEEP);

    struct splice_pipe *sp = pipe_pool_get(&p);
    check_lent(sp);
    transfer_through(sp, src, dst);
    /* Empty again: it goes back to the pool and is lent again, still working. */
    pipe_pool_put(&p, sp);
    assert_int_equal(p.nfree, 1);
    struct splice_pipe *again = pipe_pool_get(&p);
    assert_ptr_equal(again, sp);
    check_lent(again);
    transfer_through(again, src, dst);
    pipe_pool_put(&p, again);
    assert_int_equal(p.nfree, 1);

    pipe_pool_destroy(&p);
    for (int i = 0; i < 2; i++) {
        close(src[i]);
        close(dst[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_get_gives_a_usable_pipe),
        cmocka_unit_test(test_refused_size_falls_back),
        cmocka_unit_test(test_put_then_get_reuses),
        cmocka_unit_test(test_keep_limit),
        cmocka_unit_test(test_keep_zero_closes_every_pipe),
        cmocka_unit_test(test_nonempty_pipe_is_closed),
        cmocka_unit_test(test_put_null_is_ignored),
        cmocka_unit_test(test_data_moves_through_lent_pipe),
    };
    return cmocka_run_group_tests_name("pipe_pool", tests, NULL, NULL);
}
