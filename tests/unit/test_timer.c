/* test_timer.c - the per-worker timeout lists (server/timer.h): append and
 * unlink keep the list whole in both directions, the head expires first and
 * exactly at since + duration, duration 0 never expires, wait_ms counts down
 * to the head's expiry, a changed duration keeps the order and moves the
 * threshold, and unlinking twice (or never linked) does nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "server/timer.h"

/* A duration long enough that no test time reaches it by accident. */
#define DURATION 1000
/* Entries in the bulk test. */
#define MANY 1000

/* The list is a ring through the sentinel, prev and next agree, and the
 * entries are exactly want[0..n) in that order with non-decreasing since_ms. */
static void check_list(const struct timer_list *l, struct timer_entry *const *want, size_t n)
{
    const struct timer_entry *e = l->head.next;
    const struct timer_entry *prev = &l->head;
    for (size_t i = 0; i < n; i++) {
        if (e != want[i])
            fail_msg("position %zu: wrong entry", i);
        assert_ptr_equal(e->prev, prev);
        if (i > 0)
            assert_true(want[i - 1]->since_ms <= e->since_ms);
        prev = e;
        e = e->next;
    }
    assert_ptr_equal(e, &l->head);
    assert_ptr_equal(l->head.prev, prev);
}

static void test_empty_list(void **state)
{
    (void)state;
    struct timer_list l;
    timer_list_init(&l, DURATION);
    assert_int_equal(l.duration_ms, DURATION);
    check_list(&l, NULL, 0);
    assert_null(timer_list_expired(&l, 0));
    assert_null(timer_list_expired(&l, UINT64_MAX));
    assert_true(timer_list_wait_ms(&l, 0) == UINT64_MAX);
    assert_true(timer_list_wait_ms(&l, UINT64_MAX) == UINT64_MAX);
}

static void test_append_and_unlink(void **state)
{
    (void)state;
    struct timer_list l;
    timer_list_init(&l, DURATION);
    struct timer_entry a = {0}, b = {0}, c = {0};
    timer_list_append(&l, &a, 10);
    timer_list_append(&l, &b, 20);
    timer_list_append(&l, &c, 30);
    assert_int_equal(a.since_ms, 10);
    assert_int_equal(c.since_ms, 30);
    check_list(&l, (struct timer_entry *[]){&a, &b, &c}, 3);

    /* Middle, then tail, then the only one left. */
    timer_entry_unlink(&b);
    assert_null(b.next);
    assert_null(b.prev);
    check_list(&l, (struct timer_entry *[]){&a, &c}, 2);
    timer_entry_unlink(&c);
    check_list(&l, (struct timer_entry *[]){&a}, 1);
    timer_entry_unlink(&a);
    check_list(&l, NULL, 0);
    assert_true(timer_list_wait_ms(&l, 0) == UINT64_MAX);

    /* A re-appended entry goes to the tail with its new time. */
    timer_list_append(&l, &b, 40);
    timer_list_append(&l, &a, 50);
    check_list(&l, (struct timer_entry *[]){&b, &a}, 2);
    assert_int_equal(a.since_ms, 50);
    timer_entry_unlink(&b);
    timer_entry_unlink(&a);
    check_list(&l, NULL, 0);
}

static void test_unlink_twice_is_harmless(void **state)
{
    (void)state;
    struct timer_list l;
    timer_list_init(&l, DURATION);
    struct timer_entry a = {0}, b = {0}, c = {0};
    timer_list_append(&l, &a, 1);
    timer_list_append(&l, &b, 2);
    timer_list_append(&l, &c, 3);
    timer_entry_unlink(&b);
    timer_entry_unlink(&b);
    check_list(&l, (struct timer_entry *[]){&a, &c}, 2);
    timer_entry_unlink(&a);
    timer_entry_unlink(&a);
    check_list(&l, (struct timer_entry *[]){&c}, 1);

    /* An entry that was never linked (zeroed, as in a fresh connection). */
    struct timer_entry never = {0};
    timer_entry_unlink(&never);
    assert_null(never.next);
    check_list(&l, (struct timer_entry *[]){&c}, 1);

    timer_entry_unlink(&c);
    timer_entry_unlink(&c);
    check_list(&l, NULL, 0);
}

static void test_expiry_order_and_boundary(void **state)
{
    (void)state;
    struct timer_list l;
    timer_list_init(&l, DURATION);
    struct timer_entry a = {0}, b = {0}, c = {0};
    timer_list_append(&l, &a, 100);
    timer_list_append(&l, &b, 200);
    timer_list_append(&l, &c, 200);     /* same time as b: still after it */

    assert_null(timer_list_expired(&l, 100));
    assert_null(timer_list_expired(&l, 100 + DURATION - 1));
    /* Expired exactly at since + duration. */
    assert_ptr_equal(timer_list_expired(&l, 100 + DURATION), &a);
    /* Asking again without unlinking gives the same head. */
    assert_ptr_equal(timer_list_expired(&l, 100 + DURATION), &a);
    timer_entry_unlink(&a);
    assert_null(timer_list_expired(&l, 100 + DURATION));
    assert_null(timer_list_expired(&l, 200 + DURATION - 1));
    assert_ptr_equal(timer_list_expired(&l, 200 + DURATION), &b);
    timer_entry_unlink(&b);
    assert_ptr_equal(timer_list_expired(&l, 200 + DURATION), &c);
    timer_entry_unlink(&c);
    assert_null(timer_list_expired(&l, UINT64_MAX));
}

/* The way the worker drains a list: take heads while they are expired. */
static void test_drain_in_order(void **state)
{
    (void)state;
    struct timer_list l;
    timer_list_init(&l, DURATION);
    struct timer_entry e[5] = {{0}};
    for (int i = 0; i < 5; i++)
        timer_list_append(&l, &e[i], (uint64_t)i * 10);
    /* At 1025 entries appended at 0, 10, 20 have expired, 30 and 40 not. */
    struct timer_entry *x;
    int n = 0;
    while ((x = timer_list_expired(&l, 1025)) != NULL) {
        assert_ptr_equal(x, &e[n]);
        timer_entry_unlink(x);
        n++;
    }
    assert_int_equal(n, 3);
    check_list(&l, (struct timer_entry *[]){&e[3], &e[4]}, 2);
    assert_int_equal(timer_list_wait_ms(&l, 1025), 5);
}

static void test_duration_zero_never_expires(void **state)
{
    (void)state;
    struct timer_list l;
    timer_list_init(&l, 0);
    struct timer_entry a = {0};
    timer_list_append(&l, &a, 0);
    assert_null(timer_list_expired(&l, 0));
    assert_null(timer_list_expired(&l, 1));
    assert_null(timer_list_expired(&l, UINT64_MAX));
    assert_true(timer_list_wait_ms(&l, 0) == UINT64_MAX);
    assert_true(timer_list_wait_ms(&l, UINT64_MAX) == UINT64_MAX);
    /* Still a member of the list. */
    check_list(&l, (struct timer_entry *[]){&a}, 1);
    timer_entry_unlink(&a);
}

static void test_wait_ms(void **state)
{
    (void)state;
    struct timer_list l;
    timer_list_init(&l, DURATION);
    struct timer_entry a = {0}, b = {0};
    timer_list_append(&l, &a, 500);
    timer_list_append(&l, &b, 700);
    assert_int_equal(timer_list_wait_ms(&l, 500), DURATION);
    assert_int_equal(timer_list_wait_ms(&l, 600), DURATION - 100);
    assert_int_equal(timer_list_wait_ms(&l, 500 + DURATION - 1), 1);
    assert_int_equal(timer_list_wait_ms(&l, 500 + DURATION), 0);
    assert_int_equal(timer_list_wait_ms(&l, 500 + DURATION + 12345), 0);
    assert_int_equal(timer_list_wait_ms(&l, UINT64_MAX), 0);
    /* wait_ms and expired agree at every step around the boundary. */
    for (uint64_t now = 500 + DURATION - 3; now <= 500 + DURATION + 3; now++)
        assert_true((timer_list_wait_ms(&l, now) == 0) == (timer_list_expired(&l, now) != NULL));
    /* Once the head goes, the next one counts. */
    timer_entry_unlink(&a);
    assert_int_equal(timer_list_wait_ms(&l, 600), 700 + DURATION - 600);
    timer_entry_unlink(&b);
    assert_true(timer_list_wait_ms(&l, 600) == UINT64_MAX);
}

/* A reload changes duration_ms in place: entries keep their order and times,
 * only the threshold moves. */
static void test_duration_change(void **state)
{
    (void)state;
    struct timer_list l;
    timer_list_init(&l, 10000);
    struct timer_entry a = {0}, b = {0}, c = {0};
    timer_list_append(&l, &a, 0);
    timer_list_append(&l, &b, 100);
    timer_list_append(&l, &c, 200);
    assert_null(timer_list_expired(&l, 120));
    assert_int_equal(timer_list_wait_ms(&l, 120), 10000 - 120);

    /* Shortened: a (0 + 50 <= 120) is now late, b (150) is not yet. */
    l.duration_ms = 50;
    check_list(&l, (struct timer_entry *[]){&a, &b, &c}, 3);
    assert_ptr_equal(timer_list_expired(&l, 120), &a);
    timer_entry_unlink(&a);
    assert_null(timer_list_expired(&l, 120));
    assert_int_equal(timer_list_wait_ms(&l, 120), 30);
    assert_ptr_equal(timer_list_expired(&l, 150), &b);

    /* Lengthened: nothing is late any more; b now expires at 1100. */
    l.duration_ms = 1000;
    assert_null(timer_list_expired(&l, 1099));
    assert_int_equal(timer_list_wait_ms(&l, 1000), 100);
    assert_ptr_equal(timer_list_expired(&l, 1100), &b);
    timer_entry_unlink(&b);
    assert_ptr_equal(timer_list_expired(&l, 1200), &c);

    /* Turned off: nothing expires, the entry stays. */
    l.duration_ms = 0;
    assert_null(timer_list_expired(&l, UINT64_MAX));
    assert_true(timer_list_wait_ms(&l, 5000) == UINT64_MAX);
    /* Turned on again. */
    l.duration_ms = 1;
    assert_ptr_equal(timer_list_expired(&l, 201), &c);
    timer_entry_unlink(&c);
    check_list(&l, NULL, 0);
}

/* An entry moves from one kind of list to another (idle -> read). */
static void test_move_between_lists(void **state)
{
    (void)state;
    struct timer_list idle, rd;
    timer_list_init(&idle, 300);
    timer_list_init(&rd, 30);
    struct timer_entry a = {0}, b = {0};
    timer_list_append(&idle, &a, 0);
    timer_list_append(&idle, &b, 5);
    timer_entry_unlink(&a);
    timer_list_append(&rd, &a, 10);
    check_list(&idle, (struct timer_entry *[]){&b}, 1);
    check_list(&rd, (struct timer_entry *[]){&a}, 1);
    assert_ptr_equal(timer_list_expired(&rd, 40), &a);
    assert_null(timer_list_expired(&idle, 40));
    assert_int_equal(timer_list_wait_ms(&idle, 40), 265);
    timer_entry_unlink(&a);
    timer_entry_unlink(&b);
    check_list(&idle, NULL, 0);
    check_list(&rd, NULL, 0);
}

/* Many entries, every third unlinked, then drained: the survivors come out
 * in the order they went in. */
static void test_many(void **state)
{
    (void)state;
    struct timer_list l;
    timer_list_init(&l, DURATION);
    struct timer_entry *e = calloc(MANY, sizeof(*e));
    struct timer_entry **want = calloc(MANY, sizeof(*want));
    assert_non_null(e);
    assert_non_null(want);
    for (size_t i = 0; i < MANY; i++)
        timer_list_append(&l, &e[i], i / 2);    /* pairs share a time */
    size_t n = 0;
    for (size_t i = 0; i < MANY; i++) {
        if (i % 3 == 0)
            timer_entry_unlink(&e[i]);
        else
            want[n++] = &e[i];
    }
    check_list(&l, want, n);
    size_t got = 0;
    struct timer_entry *x;
    while ((x = timer_list_expired(&l, MANY + DURATION)) != NULL) {
        assert_ptr_equal(x, want[got]);
        timer_entry_unlink(x);
        got++;
    }
    assert_int_equal(got, n);
    check_list(&l, NULL, 0);
    free(want);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_list),
        cmocka_unit_test(test_append_and_unlink),
        cmocka_unit_test(test_unlink_twice_is_harmless),
        cmocka_unit_test(test_expiry_order_and_boundary),
        cmocka_unit_test(test_drain_in_order),
        cmocka_unit_test(test_duration_zero_never_expires),
        cmocka_unit_test(test_wait_ms),
        cmocka_unit_test(test_duration_change),
        cmocka_unit_test(test_move_between_lists),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests_name("timer", tests, NULL, NULL);
}
