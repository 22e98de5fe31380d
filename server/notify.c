/* notify.c - systemd integration through libsystemd: readiness and state
 * messages (sd_notify), the watchdog interval, and socket activation.
 *
 * libsystemd rather than the datagram protocol by hand: it is already a
 * build dependency, and it carries the details that are easy to get subtly
 * wrong (abstract "@" socket names, the WATCHDOG_PID check, LISTEN_PID and
 * LISTEN_FDNAMES parsing, close-on-exec on the inherited descriptors);
 * docs/systemd.md says more. Everything is a no-op outside systemd, so the
 * daemon calls these unconditionally. Main thread only: libsystemd reads and
 * (for LISTEN_*) unsets environment variables, which is not thread-safe.
 * A message that cannot be sent is logged once and otherwise ignored: losing
 * a STATUS line must never stop the daemon.
 */
#include "server/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "common/log.h"

/* Longest STATUS= text sent; longer ones are cut (systemctl shows one line). */
#define NOTIFY_STATUS_MAX 256
#define USEC_PER_SEC 1000000ULL
#define NSEC_PER_USEC 1000ULL

static bool notify_enabled;         /* NOTIFY_SOCKET was set at start-up */
static uint64_t watchdog_usec;      /* 0: systemd asked for no pings */
static bool send_failed_logged;     /* a failed send is reported once */
static char **listen_names;         /* LISTEN_FDNAMES, kept until the next call */

void notify_init(void)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    notify_enabled = sock != NULL && sock[0] != '\0';

    /* sd_watchdog_enabled checks WATCHDOG_PID against our pid, so a variable
     * meant for a parent (or a child we are) does not make us ping. */
    uint64_t usec = 0;
    int rc = sd_watchdog_enabled(0, &usec);
    if (rc < 0)
        log_warn("systemd watchdog: ignoring WATCHDOG_USEC: %s", strerror(-rc));
    watchdog_usec = rc > 0 ? usec : 0;
    if (watchdog_usec > 0)
        log_info("systemd watchdog: every %.3g s, pinging at half of it",
                 (double)watchdog_usec / USEC_PER_SEC);
}

static void notify_send(const char *msg)
{
    if (!notify_enabled)
        return;
    int rc = sd_notify(0, msg);
    if (rc < 0 && !send_failed_logged) {
        log_warn("systemd notification failed (further failures not logged): %s",
                 strerror(-rc));
        send_failed_logged = true;
    }
}

void notify_ready(void)
{
    notify_send("READY=1");
}

void notify_reloading(void)
{
    /* MONOTONIC_USEC lets systemd tell this reload from an earlier one
     * (systemd >= 253 requires it with RELOADING=1; older ones ignore it). */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long now = (unsigned long long)ts.tv_sec * USEC_PER_SEC +
                             (unsigned long long)ts.tv_nsec / NSEC_PER_USEC;
    char msg[64];
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu", now);
    notify_send(msg);
}

void notify_stopping(void)
{
    notify_send("STOPPING=1");
}

void notify_status(const char *fmt, ...)
{
    if (!notify_enabled)
        return;
    char msg[sizeof("STATUS=") + NOTIFY_STATUS_MAX];
    size_t off = strlen("STATUS=");
    memcpy(msg, "STATUS=", off);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + off, sizeof(msg) - off, fmt, ap);
    va_end(ap);
    /* A newline would start another assignment in the datagram. */
    for (char *p = msg + off; *p != '\0'; p++)
        if (*p == '\n')
            *p = ' ';
    notify_send(msg);
}

uint64_t notify_watchdog_usec(void)
{
    return watchdog_usec;
}

void notify_watchdog_ping(void)
{
    if (watchdog_usec > 0)
        notify_send("WATCHDOG=1");
}

/* Only listening stream sockets can be served; anything else is closed. */
static bool usable_listener(int fd)
{
    if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0)
        return false;
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

static void free_names(char **v)
{
    for (char **p = v; p != NULL && *p != NULL; p++)
        free(*p);
    free(v);
}

int notify_listen_fds(int *fds, const char **names, int max)
{
    char **fdnames = NULL;
    /* Checks LISTEN_PID, sets close-on-exec, unsets LISTEN_*. */
    int n = sd_listen_fds_with_names(1, &fdnames);
    if (n < 0) {
        log_error("socket activation: ignoring LISTEN_FDS: %s", strerror(-n));
        return 0;
    }
    free_names(listen_names);
    listen_names = fdnames;
    int count = 0;
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        const char *name = fdnames != NULL ? fdnames[i] : NULL;
        if (!usable_listener(fd)) {
            log_error("socket activation: fd %d (%s) is not a listening stream socket; closed",
                      fd, name ? name : "unnamed");
            close(fd);
        } else if (count >= max) {
            log_error("socket activation: more than %d sockets; closing fd %d (%s)", max, fd,
                      name ? name : "unnamed");
            close(fd);
        } else {
            fds[count] = fd;
            names[count] = name;
            count++;
        }
    }
    return count;
}
