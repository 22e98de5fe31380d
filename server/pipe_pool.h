/* pipe_pool.h - pipes for zero-copy ECHO streaming, lent per worker.
 *
 * A large ECHO payload is moved socket -> pipe -> socket with splice(2), so
 * its bytes never enter user space. A pipe is lent to a connection only
 * while such a payload streams, and an empty one goes back to the pool for
 * the next; one that still holds bytes when its connection dies is closed.
 * A pool belongs to one worker thread and takes no lock.
 */
#ifndef ECHOD_PIPE_POOL_H
#define ECHOD_PIPE_POOL_H

#include <stddef.h>
#include <stdint.h>

struct splice_pipe {
    int rfd;
    int wfd;
    uint32_t bytes;             /* in the pipe, not yet sent on */
    uint32_t cap;               /* the pipe's capacity */
    struct splice_pipe *next_free;
};

struct pipe_pool {
    struct splice_pipe *free_list;
    size_t nfree;
    size_t lent;                /* pipes out with connections now */
    size_t keep;                /* most idle pipes kept open */
    uint32_t size;              /* capacity asked for with F_SETPIPE_SZ */
};

void pipe_pool_init(struct pipe_pool *p, uint32_t size, size_t keep);
void pipe_pool_destroy(struct pipe_pool *p);
/* A pipe, or NULL (out of descriptors or memory: the caller copies instead). */
struct splice_pipe *pipe_pool_get(struct pipe_pool *p);
/* Give a pipe back; a non-empty one is closed. NULL is ignored. */
void pipe_pool_put(struct pipe_pool *p, struct splice_pipe *sp);

#endif
