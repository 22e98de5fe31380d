/* test_buf.c - byte buffers and the buffer pool (common/buf.c): append,
 * produce, consume, compact, space; an append that does not fit leaves the
 * buffer untouched; the pool reuses what was returned, keeps no more than
 * `keep`, and counts what is lent. Leaks show under SAN=address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/buf.h"

/* Small enough to fill by hand. */
#define CAP 16

static void test_new_is_empty(void **state)
{
    (void)state;
    struct buf *b = buf_new(CAP);
    assert_non_null(b);
    assert_int_equal(b->cap, CAP);
    assert_int_equal(buf_len(b), 0);
    assert_int_equal(buf_space(b), CAP);
    assert_ptr_equal(buf_head(b), b->data);
    assert_ptr_equal(buf_tail(b), b->data);
    buf_free(b);
}

static void test_append_and_consume(void **state)
{
    (void)state;
    struct buf *b = buf_new(CAP);
    assert_int_equal(buf_append(b, "0123456789", 10), 0);
    assert_int_equal(buf_len(b), 10);
    assert_int_equal(buf_space(b), CAP - 10);
    assert_memory_equal(buf_head(b), "0123456789", 10);

    buf_consume(b, 4);
    assert_int_equal(buf_len(b), 6);
    assert_memory_equal(buf_head(b), "456789", 6);
    /* Consuming does not make room at the tail by itself. */
    assert_int_equal(buf_space(b), CAP - 10);

    assert_int_equal(buf_append(b, "ab", 2), 0);
    assert_int_equal(buf_len(b), 8);
    assert_memory_equal(buf_head(b), "456789ab", 8);

    buf_consume(b, 8);
    assert_int_equal(buf_len(b), 0);
    /* Zero bytes always fit. */
    assert_int_equal(buf_append(b, "", 0), 0);
    assert_int_equal(buf_len(b), 0);
    buf_free(b);
}

static void test_produce_writes_at_tail(void **state)
{
    (void)state;
    struct buf *b = buf_new(CAP);
    memcpy(buf_tail(b), "xyz", 3);
    buf_produce(b, 3);
    assert_int_equal(buf_len(b), 3);
    assert_memory_equal(buf_head(b), "xyz", 3);
    memcpy(buf_tail(b), "w", 1);
    buf_produce(b, 1);
    assert_memory_equal(buf_head(b), "xyzw", 4);
    assert_int_equal(buf_space(b), CAP - 4);
    buf_free(b);
}

static void test_compact(void **state)
{
    (void)state;
    struct buf *b = buf_new(CAP);
    assert_int_equal(buf_append(b, "0123456789abcdef", CAP), 0);
    assert_int_equal(buf_space(b), 0);
    buf_consume(b, 10);
    buf_compact(b);
    assert_int_equal(b->start, 0);
    assert_int_equal(buf_len(b), 6);
    assert_int_equal(buf_space(b), CAP - 6);
    assert_memory_equal(b->data, "abcdef", 6);
    /* Compacting a buffer already at the front changes nothing. */
    buf_compact(b);
    assert_int_equal(buf_len(b), 6);
    assert_memory_equal(buf_head(b), "abcdef", 6);
    buf_free(b);
}

/* Room exists only once the consumed bytes are reclaimed: append compacts. */
static void test_append_compacts_when_needed(void **state)
{
    (void)state;
    struct buf *b = buf_new(CAP);
    assert_int_equal(buf_append(b, "0123456789abcdef", CAP), 0);
    buf_consume(b, 12);
    assert_int_equal(buf_append(b, "WXYZ", 4), 0);
    assert_int_equal(buf_len(b), 8);
    assert_memory_equal(buf_head(b), "cdefWXYZ", 8);
    assert_int_equal(b->start, 0);
    buf_free(b);
}

static void test_append_too_big_leaves_buffer_untouched(void **state)
{
    (void)state;
    struct buf *b = buf_new(CAP);
    assert_int_equal(buf_append(b, "0123456789abcdef", CAP), 0);
    buf_consume(b, 4);      /* 12 live bytes, 4 reclaimable */
    uint32_t start = b->start, end = b->end;
    uint8_t before[CAP];
    memcpy(before, b->data, CAP);

    assert_int_equal(buf_append(b, "vwxyz", 5), -1);
    assert_int_equal(b->start, start);
    assert_int_equal(b->end, end);
    assert_memory_equal(b->data, before, CAP);

    /* Exactly the reclaimable amount still fits. */
    assert_int_equal(buf_append(b, "wxyz", 4), 0);
    assert_int_equal(buf_len(b), CAP);
    assert_memory_equal(buf_head(b), "456789abcdefwxyz", CAP);
    assert_int_equal(buf_append(b, "!", 1), -1);
    assert_int_equal(buf_len(b), CAP);

    struct buf *e = buf_new(CAP);
    assert_int_equal(buf_append(e, "0123456789abcdefg", CAP + 1), -1);
    assert_int_equal(buf_len(e), 0);
    assert_int_equal(buf_space(e), CAP);
    buf_free(e);
    buf_free(b);
}

static void test_reset(void **state)
{
    (void)state;
    struct buf *b = buf_new(CAP);
    assert_int_equal(buf_append(b, "abc", 3), 0);
    buf_consume(b, 1);
    buf_reset(b);
    assert_int_equal(buf_len(b), 0);
    assert_int_equal(buf_space(b), CAP);
    buf_free(b);
}

/* ---- pool ---- */

static void test_pool_reuses_returned_buffer(void **state)
{
    (void)state;
    struct buf_pool p;
    buf_pool_init(&p, CAP, 2);
    struct buf *a = buf_pool_get(&p);
    assert_non_null(a);
    assert_int_equal(a->cap, CAP);
    assert_int_equal(buf_len(a), 0);
    assert_int_equal(p.lent, 1);
    assert_int_equal(buf_append(a, "dirty", 5), 0);
    buf_consume(a, 1);

    buf_pool_put(&p, a);
    assert_int_equal(p.lent, 0);
    assert_int_equal(p.nfree, 1);

    struct buf *again = buf_pool_get(&p);
    assert_ptr_equal(again, a);
    /* Comes back empty, whatever it held when returned. */
    assert_int_equal(buf_len(again), 0);
    assert_int_equal(buf_space(again), CAP);
    assert_int_equal(p.lent, 1);
    assert_int_equal(p.nfree, 0);
    buf_pool_put(&p, again);
    buf_pool_destroy(&p);
    assert_int_equal(p.nfree, 0);
}

static void test_pool_keep_limit(void **state)
{
    (void)state;
    enum { KEEP = 2, TAKE = 5 };
    struct buf_pool p;
    buf_pool_init(&p, CAP, KEEP);
    struct buf *b[TAKE];
    for (int i = 0; i < TAKE; i++) {
        b[i] = buf_pool_get(&p);
        assert_non_null(b[i]);
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(b[i], b[j]);
        assert_int_equal(p.lent, (size_t)i + 1);
    }
    for (int i = 0; i < TAKE; i++) {
        buf_pool_put(&p, b[i]);
        assert_int_equal(p.lent, (size_t)(TAKE - i - 1));
        /* Never more than KEEP held; the rest are freed (ASan checks). */
        assert_int_equal(p.nfree, (size_t)(i + 1 < KEEP ? i + 1 : KEEP));
    }
    /* The held ones are lent again before anything new is allocated. */
    struct buf *x = buf_pool_get(&p);
    struct buf *y = buf_pool_get(&p);
    assert_true(x == b[0] || x == b[1]);
    assert_true(y == b[0] || y == b[1]);
    assert_ptr_not_equal(x, y);
    assert_int_equal(p.nfree, 0);
    assert_int_equal(p.lent, 2);
    buf_pool_put(&p, x);
    buf_pool_put(&p, y);
    buf_pool_destroy(&p);
}

static void test_pool_keep_zero_and_null(void **state)
{
    (void)state;
    struct buf_pool p;
    buf_pool_init(&p, CAP, 0);
    struct buf *b = buf_pool_get(&p);
    assert_non_null(b);
    buf_pool_put(&p, b);
    assert_int_equal(p.nfree, 0);
    assert_int_equal(p.lent, 0);
    buf_pool_put(&p, NULL);
    assert_int_equal(p.lent, 0);
    buf_pool_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_is_empty),
        cmocka_unit_test(test_append_and_consume),
        cmocka_unit_test(test_produce_writes_at_tail),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_append_compacts_when_needed),
        cmocka_unit_test(test_append_too_big_leaves_buffer_untouched),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_pool_reuses_returned_buffer),
        cmocka_unit_test(test_pool_keep_limit),
        cmocka_unit_test(test_pool_keep_zero_and_null),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
