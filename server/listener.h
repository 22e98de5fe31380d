/* listener.h - the accept thread: listening sockets, the connection limit,
 * and the hand-off of each new client to a worker.
 *
 * The listener thread owns its sockets. The main thread asks it for changes
 * (a reload's new `listen` list, shutdown) through a command slot and waits
 * for the answer, so a reload either applies whole or not at all.
 */
#ifndef ECHOD_LISTENER_H
#define ECHOD_LISTENER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "server/config.h"
#include "server/stats.h"
#include "server/worker.h"

struct listener;

/* A listener over the given workers; conns_global counts open connections
 * server-wide (the listener adds, workers subtract). NULL on failure (logged). */
struct listener *listener_create(struct config *cfg, struct worker *workers, unsigned nworkers,
                                 struct stats *stats, atomic_uint *conns_global);

/* Serve an inherited socket (socket activation) instead of binding `listen`.
 * Call before listener_bind. Returns 0 or -1 (logged). */
int listener_add_inherited(struct listener *l, int fd, const char *name);

/* Bind every address of cfg->listen (unless sockets were inherited).
 * Returns 0 or -1 after logging which address failed and why. */
int listener_bind(struct listener *l) __attribute__((warn_unused_result));

int listener_start(struct listener *l) __attribute__((warn_unused_result));

/* Switch to cfg: bind new addresses, close removed ones, take the new
 * limits. All or nothing: returns 0, or -1 (logged) with nothing changed.
 * Main thread, while the listener runs. */
int listener_reload(struct listener *l, struct config *cfg) __attribute__((warn_unused_result));

/* Stop accepting: hand the connections already queued by the kernel to the
 * workers, close every listening socket, end the thread. */
void listener_stop(struct listener *l);
void listener_destroy(struct listener *l);

/* A client connection handed off by the listener is closing: uncount it from
 * its address's max_connections_per_client count. Call it exactly where the
 * connection's fd is closed, just before close(fd) (never after: the number
 * may then already belong to a new connection). Any thread, lock-free, no
 * system call; a no-op for a descriptor that was not counted (unix clients,
 * rejected ones) and for a second call. Until every close path calls it,
 * counts of missed closes are only corrected when the fd number is accepted
 * again (logged as a warning). */
void listener_client_release(int fd);

/* Last time (monotonic ms) the thread went round its loop, for the watchdog. */
uint64_t listener_heartbeat_ms(struct listener *l);
/* "127.0.0.1:7007, unix:/run/echod.sock" into out. */
void listener_describe(struct listener *l, char *out, size_t len);

#endif
