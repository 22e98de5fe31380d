/* log.c - leveled logging to stderr with journald "<N>" priority prefixes.
 *
 * A message is formatted into a stack buffer and written with a single
 * write(2), so lines from different threads never interleave. Messages longer
 * than the buffer are cut (with "...") rather than split.
 */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Longest line written; longer messages are truncated. */
#define LOG_LINE_MAX 1024

static atomic_int current_level = LOG_LVL_INFO;

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&current_level, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load_explicit(&current_level, memory_order_relaxed);
}

bool log_enabled(enum log_level level)
{
    return (int)level <= atomic_load_explicit(&current_level, memory_order_relaxed);
}

static const struct {
    const char *name;
    enum log_level level;
} level_names[] = {
    {"error", LOG_LVL_ERROR},
    {"warn", LOG_LVL_WARN},
    {"info", LOG_LVL_INFO},
    {"debug", LOG_LVL_DEBUG},
};

int log_level_parse(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i].name) == 0) {
            *out = level_names[i].level;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(enum log_level level)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (level_names[i].level == level)
            return level_names[i].name;
    return "?";
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;

    int saved_errno = errno;
    char line[LOG_LINE_MAX];
    int n = snprintf(line, sizeof(line), "<%d>", (int)level);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
        memcpy(line + len - 3, "...", 3);
    }
    line[len++] = '\n';

    /* One write keeps the line whole; a short write to a pipe is rare
     * enough that finishing it in a loop is all the care it needs. */
    const char *p = line;
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        len -= (size_t)w;
    }
    errno = saved_errno;
}
