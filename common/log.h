/* log.h - leveled logging to stderr with journald priority prefixes.
 *
 * Each message is written with one write(2) as "<N>text\n", N being the syslog
 * priority (3 error, 4 warning, 6 info, 7 debug), which journald (and anything
 * reading the daemon's stderr) understands. The level is a process-wide atomic
 * so a reload can change it while other threads log. Safe from any thread.
 */
#ifndef ECHOD_LOG_H
#define ECHOD_LOG_H

#include <stdbool.h>

enum log_level {
    LOG_LVL_ERROR = 3,
    LOG_LVL_WARN = 4,
    LOG_LVL_INFO = 6,
    LOG_LVL_DEBUG = 7,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
bool log_enabled(enum log_level level);

/* Parse "error", "warn", "info", "debug"; returns 0 or -1 for an unknown name. */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
/* Debug messages skip argument formatting entirely when the level is lower. */
#define log_debug(...) \
    do { if (log_enabled(LOG_LVL_DEBUG)) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
