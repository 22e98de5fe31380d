/* buf.c - fixed-capacity byte buffers and the per-thread pool that lends them. */
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

struct buf *buf_new(size_t cap)
{
    struct buf *b = malloc(sizeof(*b) + cap);
    if (b == NULL)
        return NULL;
    b->start = 0;
    b->end = 0;
    b->cap = (uint32_t)cap;
    b->next_free = NULL;
    return b;
}

void buf_free(struct buf *b)
{
    free(b);
}

void buf_reset(struct buf *b)
{
    b->start = 0;
    b->end = 0;
}

void buf_produce(struct buf *b, size_t n)
{
    b->end += (uint32_t)n;
}

void buf_consume(struct buf *b, size_t n)
{
    b->start += (uint32_t)n;
    if (b->start == b->end)
        buf_reset(b);
}

void buf_compact(struct buf *b)
{
    if (b->start == 0)
        return;
    size_t len = buf_len(b);
    memmove(b->data, b->data + b->start, len);
    b->start = 0;
    b->end = (uint32_t)len;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n > buf_space(b)) {
        if (n > b->cap - buf_len(b))
            return -1;
        buf_compact(b);
    }
    memcpy(buf_tail(b), p, n);
    b->end += (uint32_t)n;
    return 0;
}

void buf_pool_init(struct buf_pool *p, size_t cap, size_t keep)
{
    p->cap = cap;
    p->keep = keep;
    p->nfree = 0;
    p->lent = 0;
    p->free_list = NULL;
}

void buf_pool_destroy(struct buf_pool *p)
{
    while (p->free_list != NULL) {
        struct buf *b = p->free_list;
        p->free_list = b->next_free;
        buf_free(b);
    }
    p->nfree = 0;
}

struct buf *buf_pool_get(struct buf_pool *p)
{
    struct buf *b = p->free_list;
    if (b != NULL) {
        p->free_list = b->next_free;
        p->nfree--;
        b->next_free = NULL;
    } else {
        b = buf_new(p->cap);
        if (b == NULL)
            return NULL;
    }
    buf_reset(b);
    p->lent++;
    return b;
}

void buf_pool_put(struct buf_pool *p, struct buf *b)
{
    if (b == NULL)
        return;
    p->lent--;
    if (p->nfree >= p->keep) {
        buf_free(b);
        return;
    }
    b->next_free = p->free_list;
    p->free_list = b;
    p->nfree++;
}
