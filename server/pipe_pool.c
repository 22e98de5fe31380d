/* pipe_pool.c - pipes for splice(2), lent per worker. */
#include "server/pipe_pool.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

void pipe_pool_init(struct pipe_pool *p, uint32_t size, size_t keep)
{
    p->free_list = NULL;
    p->nfree = 0;
    p->keep = keep;
    p->size = size;
}

static void pipe_close(struct splice_pipe *sp)
{
    close(sp->rfd);
    close(sp->wfd);
    free(sp);
}

void pipe_pool_destroy(struct pipe_pool *p)
{
    while (p->free_list != NULL) {
        struct splice_pipe *sp = p->free_list;
        p->free_list = sp->next_free;
        pipe_close(sp);
    }
    p->nfree = 0;
}

struct splice_pipe *pipe_pool_get(struct pipe_pool *p)
{
    struct splice_pipe *sp = p->free_list;
    if (sp != NULL) {
        p->free_list = sp->next_free;
        p->nfree--;
        p->lent++;
        return sp;
    }
    sp = calloc(1, sizeof(*sp));
    if (sp == NULL)
        return NULL;
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        free(sp);
        return NULL;
    }
    sp->rfd = fds[0];
    sp->wfd = fds[1];
    /* A bigger pipe moves more per splice call; if the system refuses
     * (pipe-max-size, per-user limits), the default size still works. */
    int cap = fcntl(sp->wfd, F_SETPIPE_SZ, (int)p->size);
    if (cap < 0)
        cap = fcntl(sp->wfd, F_GETPIPE_SZ);
    sp->cap = cap > 0 ? (uint32_t)cap : 0;
    if (sp->cap == 0) {
        pipe_close(sp);
        return NULL;
    }
    p->lent++;
    return sp;
}

void pipe_pool_put(struct pipe_pool *p, struct splice_pipe *sp)
{
    if (sp == NULL)
        return;
    p->lent--;
    if (sp->bytes != 0 || p->nfree >= p->keep) {
        pipe_close(sp);
        return;
    }
    sp->next_free = p->free_list;
    p->free_list = sp;
    p->nfree++;
}
