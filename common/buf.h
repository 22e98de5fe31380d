/* buf.h - a byte buffer with a fixed capacity, and a free list to lend them.
 *
 * A buf holds bytes in data[start..end); consumers advance start, producers
 * advance end, and buf_compact() moves the live bytes to the front. The capacity
 * never grows: the owner decides what to do when a buffer is full (stop reading,
 * wait for the peer), which is what keeps memory per connection bounded.
 *
 * A buf_pool lends buffers of one capacity and keeps up to `keep` returned ones
 * for reuse, so a busy loop borrows and returns without calling malloc. A pool
 * belongs to one thread and takes no lock.
 */
#ifndef ECHOD_BUF_H
#define ECHOD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    uint32_t start;         /* first unread byte */
    uint32_t end;           /* one past the last written byte */
    uint32_t cap;           /* size of data[] */
    union {
        struct buf *next_free; /* while in the pool's free list */
        uint64_t align_;
    };
    uint8_t data[];
};

static inline size_t buf_len(const struct buf *b) { return b->end - b->start; }
static inline size_t buf_space(const struct buf *b) { return b->cap - b->end; }
static inline uint8_t *buf_head(struct buf *b) { return b->data + b->start; }
static inline uint8_t *buf_tail(struct buf *b) { return b->data + b->end; }

/* A new empty buffer of capacity cap, or NULL when out of memory. */
struct buf *buf_new(size_t cap);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Mark n bytes at the tail as written / n bytes at the head as consumed. */
void buf_produce(struct buf *b, size_t n);
void buf_consume(struct buf *b, size_t n);
/* Move live bytes to the front so all free space is at the tail. */
void buf_compact(struct buf *b);
/* Append n bytes; returns 0, or -1 (nothing written) when they do not fit
 * even after compacting. */
int buf_append(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));

struct buf_pool {
    size_t cap;             /* capacity of every buffer lent */
    size_t keep;            /* most free buffers held for reuse */
    size_t nfree;
    size_t lent;            /* buffers currently out */
    struct buf *free_list;
};

void buf_pool_init(struct buf_pool *p, size_t cap, size_t keep);
/* Free every buffer held; buffers still lent must be returned first. */
void buf_pool_destroy(struct buf_pool *p);
/* An empty buffer, or NULL when out of memory. */
struct buf *buf_pool_get(struct buf_pool *p);
/* Give a buffer back (NULL is ignored). */
void buf_pool_put(struct buf_pool *p, struct buf *b);

#endif
