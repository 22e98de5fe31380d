/* client_table.h - open connections per client IP address, for
 * max_connections_per_client.
 *
 * Two fixed tables, allocated once, no lock:
 *   - address slots, open addressing keyed by the full address (family and
 *     16 bytes), each with an atomic count of open connections. An address
 *     lives only within the CLIENT_TABLE_WINDOW slots after its hash, so a
 *     lookup scans that window whole and two addresses never share a count:
 *     a collision can make an address go uncounted (the window is full of
 *     other live addresses), never refuse it wrongly;
 *   - one entry per descriptor number: the slot its connection counts in. The
 *     closing side names the connection by its fd, which stays its own until
 *     close(2), so it needs neither the address (a reset socket has no peer
 *     name any more) nor room in struct conn.
 *
 * Threads: client_table_acquire is for one thread only (the listener); it
 * alone writes a slot's address, and only while that slot's count is 0, when
 * no connection refers to it. client_table_release may run on any thread.
 */
#ifndef ECHOD_CLIENT_TABLE_H
#define ECHOD_CLIENT_TABLE_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

/* Slots an address may occupy after its hash. With the table at most half
 * full, 32 live neighbours in a row are practically never seen; when it
 * happens the connection is served uncounted (and logged once). */
#define CLIENT_TABLE_WINDOW 32

struct client_slot {
    atomic_uint count;          /* open connections from addr; 0 = free */
    uint8_t family;             /* AF_INET or AF_INET6 (listener thread only) */
    uint8_t addr[16];           /* IPv4 in the first 4 bytes */
};

struct client_table {
    struct client_slot *slots;
    uint32_t mask;              /* slots - 1 (a power of two) */
    atomic_uint *by_fd;         /* slot index + 1 of fd's connection; 0 = none */
    uint32_t nfds;
    uint64_t seed;              /* hash key, random per process */
    uint64_t stale_releases;    /* counts found unreleased when their fd came back
                                 * (a close path that skipped the release; listener) */
};

enum client_verdict {
    CLIENT_COUNTED,             /* counted: release it when it closes */
    CLIENT_OVER_LIMIT,          /* the address has `limit` open: refuse (not counted) */
    CLIENT_UNCOUNTED,           /* a unix client, an fd beyond the table, or a full window */
};

/* Room for at least `connections` addresses at half load, and for fds below
 * nfds. Returns 0 or -ENOMEM. */
int client_table_init(struct client_table *t, uint32_t connections, uint32_t nfds)
    __attribute__((warn_unused_result));
void client_table_destroy(struct client_table *t);

/* Count the connection on fd from peer (limit 0 = count, never refuse).
 * A count still held by an earlier connection on the same fd number is
 * released first (and stale_releases grows). */
enum client_verdict client_table_acquire(struct client_table *t, int fd,
                                         const struct sockaddr_storage *peer, uint32_t limit);

/* fd's connection is closing: uncount it. Call before close(fd); a no-op for
 * an fd that was not counted, and for the second call. Any thread. */
void client_table_release(struct client_table *t, int fd);

/* Open connections counted for peer (tests and diagnostics; listener thread). */
uint32_t client_table_count(const struct client_table *t, const struct sockaddr_storage *peer);

#endif
