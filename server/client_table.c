/* client_table.c - open connections per client IP address (see
 * client_table.h for the two tables and who may touch what).
 *
 * The hash is keyed with a random seed per process, so nobody outside can
 * pick addresses that crowd one window; and a crowded window only ever
 * leaves a connection uncounted, never refuses one.
 */
#include "server/client_table.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Fewest slots: a handful of pages, whatever max_connections says. */
#define SLOTS_MIN 1024u
/* Most slots (2^21, 48 MiB of address space, touched only where used):
 * max_connections is at most a million, so the table stays half empty. */
#define SLOTS_MAX (1u << 21)

struct client_key {
    uint8_t family;
    uint8_t addr[16];
};

/* The address of peer as a key; false for anything but IPv4/IPv6. An
 * IPv4-mapped IPv6 address is the IPv4 client it stands for. */
static bool key_of(const struct sockaddr_storage *peer, struct client_key *k)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(k, 0, sizeof(*k));
    if (peer->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)peer;
        k->family = AF_INET;
        memcpy(k->addr, &sin->sin_addr, 4);
        return true;
    }
    if (peer->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)peer;
        const uint8_t *a = sin6->sin6_addr.s6_addr;
        if (memcmp(a, mapped, sizeof(mapped)) == 0) {
            k->family = AF_INET;
            memcpy(k->addr, a + 12, 4);
        } else {
            k->family = AF_INET6;
            memcpy(k->addr, a, 16);
        }
        return true;
    }
    return false;
}

/* A 64-bit finaliser (MurmurHash3's); enough mixing for a keyed table index. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    return x;
}

static uint32_t hash_of(const struct client_table *t, const struct client_key *k)
{
    uint64_t lo, hi;
    memcpy(&lo, k->addr, 8);
    memcpy(&hi, k->addr + 8, 8);
    uint64_t h = mix(t->seed ^ k->family);
    h = mix(h ^ lo);
    h = mix(h ^ hi);
    return (uint32_t)h & t->mask;
}

static bool same_key(const struct client_slot *s, const struct client_key *k)
{
    return s->family == k->family && memcmp(s->addr, k->addr, sizeof(k->addr)) == 0;
}

int client_table_init(struct client_table *t, uint32_t connections, uint32_t nfds)
{
    memset(t, 0, sizeof(*t));
    uint32_t n = SLOTS_MIN;
    while (n < SLOTS_MAX && n / 2 < connections)
        n *= 2;
    t->slots = calloc(n, sizeof(*t->slots));
    t->by_fd = calloc(nfds > 0 ? nfds : 1, sizeof(*t->by_fd));
    if (t->slots == NULL || t->by_fd == NULL) {
        client_table_destroy(t);
        return -ENOMEM;
    }
    t->mask = n - 1;
    t->nfds = nfds;
    if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t)sizeof(t->seed)) {
        /* Early boot without entropy: still different per run. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t->seed = mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uintptr_t)t);
    }
    return 0;
}

void client_table_destroy(struct client_table *t)
{
    free(t->slots);
    free(t->by_fd);
    t->slots = NULL;
    t->by_fd = NULL;
    t->nfds = 0;
}

enum client_verdict client_table_acquire(struct client_table *t, int fd,
                                         const struct sockaddr_storage *peer, uint32_t limit)
{
    if (fd < 0 || (uint32_t)fd >= t->nfds)
        return CLIENT_UNCOUNTED;
    /* The kernel hands out fd only after its last holder closed it: a count
     * still recorded for it was never released. Release it now, and tell. */
    uint32_t stale = atomic_exchange_explicit(&t->by_fd[fd], 0, memory_order_acq_rel);
    if (stale != 0) {
        atomic_fetch_sub_explicit(&t->slots[stale - 1].count, 1, memory_order_release);
        t->stale_releases++;
    }
    struct client_key k;
    if (!key_of(peer, &k))
        return CLIENT_UNCOUNTED;
    uint32_t home = hash_of(t, &k);
    uint32_t found = UINT32_MAX, free_slot = UINT32_MAX;
    for (uint32_t i = 0; i < CLIENT_TABLE_WINDOW; i++) {
        uint32_t idx = (home + i) & t->mask;
        const struct client_slot *s = &t->slots[idx];
        if (same_key(s, &k)) {
            found = idx;
            break;
        }
        if (free_slot == UINT32_MAX &&
            atomic_load_explicit(&s->count, memory_order_acquire) == 0)
            free_slot = idx;
    }
    if (found != UINT32_MAX) {
        struct client_slot *s = &t->slots[found];
        /* Only this thread adds, so the count cannot grow between the check
         * and the add (it can only fall, as other threads release). */
        if (limit > 0 && atomic_load_explicit(&s->count, memory_order_acquire) >= limit)
            return CLIENT_OVER_LIMIT;
        atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    } else {
        if (free_slot == UINT32_MAX)
            return CLIENT_UNCOUNTED;
        /* Count 0: no connection refers to the slot, so it may change hands. */
        struct client_slot *s = &t->slots[free_slot];
        s->family = k.family;
        memcpy(s->addr, k.addr, sizeof(k.addr));
        atomic_store_explicit(&s->count, 1, memory_order_relaxed);
        found = free_slot;
    }
    atomic_store_explicit(&t->by_fd[fd], found + 1, memory_order_release);
    return CLIENT_COUNTED;
}

void client_table_release(struct client_table *t, int fd)
{
    if (fd < 0 || (uint32_t)fd >= t->nfds)
        return;
    uint32_t v = atomic_exchange_explicit(&t->by_fd[fd], 0, memory_order_acq_rel);
    if (v != 0)
        atomic_fetch_sub_explicit(&t->slots[v - 1].count, 1, memory_order_release);
}

uint32_t client_table_count(const struct client_table *t, const struct sockaddr_storage *peer)
{
    struct client_key k;
    if (!key_of(peer, &k))
        return 0;
    uint32_t home = hash_of(t, &k);
    for (uint32_t i = 0; i < CLIENT_TABLE_WINDOW; i++) {
        const struct client_slot *s = &t->slots[(home + i) & t->mask];
        if (same_key(s, &k))
            return atomic_load_explicit(&s->count, memory_order_acquire);
    }
    return 0;
}
