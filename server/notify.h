/* notify.h - systemd integration: readiness and state (sd_notify), the
 * watchdog, and socket activation (inherited listening sockets).
 *
 * Every function is a no-op when the daemon is not run by systemd (no
 * NOTIFY_SOCKET, WATCHDOG_USEC or LISTEN_FDS in the environment), so the
 * daemon calls them unconditionally. Called from the main thread only.
 */
#ifndef ECHOD_NOTIFY_H
#define ECHOD_NOTIFY_H

#include <stdint.h>

/* Read NOTIFY_SOCKET / WATCHDOG_USEC / WATCHDOG_PID once, at start-up. */
void notify_init(void);

void notify_ready(void);                 /* READY=1 */
void notify_reloading(void);             /* RELOADING=1 + MONOTONIC_USEC=now */
void notify_stopping(void);              /* STOPPING=1 */
void notify_status(const char *fmt, ...) /* STATUS=... */
    __attribute__((format(printf, 1, 2)));

/* The watchdog interval in microseconds when systemd asked for pings (and
 * WATCHDOG_PID, if set, is this process), else 0. The caller pings at half of it. */
uint64_t notify_watchdog_usec(void);
void notify_watchdog_ping(void);         /* WATCHDOG=1 */

/* Socket activation: when LISTEN_PID is this process, the inherited listening
 * sockets (fds 3 .. 3+LISTEN_FDS-1) and their LISTEN_FDNAMES names. Returns the
 * count (0 when not socket-activated) and fills fds[i] (made close-on-exec and
 * non-blocking) up to max; names[i] points to static storage (valid until the
 * next call) or NULL. Descriptors that are not listening stream sockets, and
 * those beyond max, are closed. Unsets the LISTEN_* variables so children do
 * not inherit them. */
int notify_listen_fds(int *fds, const char **names, int max);

#endif
