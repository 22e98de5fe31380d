/* timer.h - per-worker timeout lists.
 *
 * One intrusive doubly-linked list per kind of timeout (idle, read, write,
 * linger). Entries are appended with the time they entered, so every list is
 * ordered by that time; since all entries of a list share one duration, the
 * head is always the first to expire, and the worker only ever looks at heads.
 * A reload that changes a duration keeps that order: the entry times do not
 * change, only the threshold the head is compared with.
 *
 * The one exception is TIMER_HOLD (a protocol waiting for a time of its own,
 * such as a delayed HTTP response): durations differ, so its entries hold
 * their due time and are inserted in order, searched from the tail, which is
 * where an entry goes when the delays asked for are alike.
 */
#ifndef ECHOD_TIMER_H
#define ECHOD_TIMER_H

#include <stddef.h>
#include <stdint.h>

enum timer_kind {
    TIMER_NONE = 0,
    TIMER_IDLE,     /* no frame in progress, no output pending */
    TIMER_READ,     /* a frame has started and is not complete */
    TIMER_WRITE,    /* output pending and the socket takes none of it */
    TIMER_LINGER,   /* closing: discarding what the peer still sends */
    TIMER_HOLD,     /* the protocol waits until since_ms (a due time) */
    TIMER_KINDS,
};

struct timer_entry {
    struct timer_entry *prev;
    struct timer_entry *next;
    uint64_t since_ms;      /* when the entry joined its list */
};

struct timer_list {
    struct timer_entry head;    /* sentinel: head.next is the oldest entry */
    uint64_t duration_ms;       /* 0 = never expires */
};

static inline void timer_list_init(struct timer_list *l, uint64_t duration_ms)
{
    l->head.prev = l->head.next = &l->head;
    l->duration_ms = duration_ms;
}

static inline void timer_entry_unlink(struct timer_entry *e)
{
    if (e->next == NULL)
        return;
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = NULL;
}

static inline void timer_list_append(struct timer_list *l, struct timer_entry *e, uint64_t now_ms)
{
    e->since_ms = now_ms;
    e->prev = l->head.prev;
    e->next = &l->head;
    l->head.prev->next = e;
    l->head.prev = e;
}

/* The oldest entry if it has expired at now_ms, else NULL. */
static inline struct timer_entry *timer_list_expired(struct timer_list *l, uint64_t now_ms)
{
    struct timer_entry *e = l->head.next;
    if (e == &l->head || l->duration_ms == 0)
        return NULL;
    return e->since_ms + l->duration_ms <= now_ms ? e : NULL;
}

/* Milliseconds until the head expires (0 if it has), or UINT64_MAX if never. */
static inline uint64_t timer_list_wait_ms(const struct timer_list *l, uint64_t now_ms)
{
    const struct timer_entry *e = l->head.next;
    if (e == &l->head || l->duration_ms == 0)
        return UINT64_MAX;
    uint64_t due = e->since_ms + l->duration_ms;
    return due <= now_ms ? 0 : due - now_ms;
}

/* TIMER_HOLD lists: insert e due at due_ms, keeping the list ordered by due time. */
static inline void timer_list_insert_due(struct timer_list *l, struct timer_entry *e, uint64_t due_ms)
{
    struct timer_entry *after = l->head.prev;
    while (after != &l->head && after->since_ms > due_ms)
        after = after->prev;
    e->since_ms = due_ms;
    e->prev = after;
    e->next = after->next;
    after->next->prev = e;
    after->next = e;
}

/* The earliest entry of a TIMER_HOLD list if it is due at now_ms, else NULL. */
static inline struct timer_entry *timer_list_due(struct timer_list *l, uint64_t now_ms)
{
    struct timer_entry *e = l->head.next;
    return e != &l->head && e->since_ms <= now_ms ? e : NULL;
}

/* Milliseconds until the first TIMER_HOLD entry is due, or UINT64_MAX. */
static inline uint64_t timer_list_due_wait_ms(const struct timer_list *l, uint64_t now_ms)
{
    const struct timer_entry *e = l->head.next;
    if (e == &l->head)
        return UINT64_MAX;
    return e->since_ms <= now_ms ? 0 : e->since_ms - now_ms;
}

#endif
