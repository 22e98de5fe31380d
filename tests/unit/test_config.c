/* test_config.c - the configuration loader (server/config.c): every key at its
 * limits and just past them, every wrong type, unknown keys, syntax errors with
 * their line numbers, the exact "FILE:LINE: message" form, defaults, the
 * restart-only keys and the example files in config/. Run from the repo root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/config.h"

/* Name given to config_load_string; every error message starts with it. */
#define NAME "t.conf"
/* Room for a generated config text. */
#define TEXT_MAX 8192

static struct config *load_ok(const char *text)
{
    struct config *c = NULL;
    char err[CONFIG_ERR_MAX] = "";
    int rc = config_load_string(text, NAME, &c, err, sizeof(err));
    if (rc != 0)
        fail_msg("expected to load:\n%s\nbut got: %s", text, err);
    assert_non_null(c);
    return c;
}

/* The text must be rejected with exactly this message. */
static void expect_err(const char *text, const char *want)
{
    struct config *c = (struct config *)1;
    char err[CONFIG_ERR_MAX] = "";
    int rc = config_load_string(text, NAME, &c, err, sizeof(err));
    if (rc != -1)
        fail_msg("expected rejection of:\n%s", text);
    assert_null(c);
    assert_string_equal(err, want);
}

/* The same, the message given as a format. */
static void expect_errf(const char *text, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void expect_errf(const char *text, const char *fmt, ...)
{
    char want[CONFIG_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof(want), fmt, ap);
    va_end(ap);
    expect_err(text, want);
}

/* Rejected with a message starting with prefix (the rest comes from elsewhere,
 * e.g. net.c's reason for a bad address). */
static void expect_err_prefix(const char *text, const char *prefix)
{
    struct config *c = NULL;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(config_load_string(text, NAME, &c, err, sizeof(err)), -1);
    assert_null(c);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error '%s' does not start with '%s'", err, prefix);
}

/* Every key but listen at its built-in default. */
static void check_defaults_but_listen(const struct config *c)
{
    assert_int_equal(c->workers, 0);
    assert_int_equal(c->backlog, 511);
    assert_int_equal(c->max_connections, 10000);
    assert_int_equal(c->max_frame_size, 16777216);
    assert_true(c->idle_timeout == 300.0);
    assert_true(c->read_timeout == 30.0);
    assert_true(c->write_timeout == 30.0);
    assert_true(c->drain_timeout == 10.0);
    assert_true(c->tcp_nodelay);
    assert_true(c->tcp_keepalive);
    assert_int_equal(c->max_connections_per_client, 0);
    assert_int_equal(c->tcp_keepalive_idle, 60);
    assert_int_equal(c->tcp_keepalive_interval, 10);
    assert_int_equal(c->tcp_keepalive_count, 6);
    assert_true(c->tcp_user_timeout == 120.0);
    assert_int_equal(c->http_max_header_size, 16384);
    assert_true(c->http_max_delay == 10.0);
    assert_true(c->http_metrics);
    assert_int_equal(c->log_level, LOG_LVL_INFO);
    assert_string_equal(c->user, "");
}

static void check_defaults(const struct config *c)
{
    assert_int_equal(c->nlisten, 1);
    assert_string_equal(c->listen[0], "127.0.0.1:7007");
    check_defaults_but_listen(c);
}

static void test_new_defaults(void **state)
{
    (void)state;
    struct config *c = config_new_defaults();
    assert_non_null(c);
    check_defaults(c);
    assert_int_equal(atomic_load(&c->refs), 1);
    assert_null(c->path);
    config_unref(c);
}

static void test_empty_file_gives_defaults(void **state)
{
    (void)state;
    struct config *c = load_ok("# nothing but a comment\n");
    check_defaults(c);
    assert_string_equal(c->path, NAME);
    config_unref(c);
    c = load_ok("");
    check_defaults(c);
    config_unref(c);
}

static void test_absent_keys_keep_defaults(void **state)
{
    (void)state;
    struct config *c = load_ok("workers = 3;\n");
    assert_int_equal(c->workers, 3);
    c->workers = 0;     /* the rest must be exactly the defaults */
    check_defaults(c);
    config_unref(c);
}

/* ---- integer keys ---- */

struct int_key {
    const char *name;
    long long min, max;
    size_t offset;
    bool is_signed;     /* int field; otherwise unsigned / uint32_t */
};

static const struct int_key int_keys[] = {
    {"workers", 0, CONFIG_WORKERS_MAX, offsetof(struct config, workers), false},
    {"backlog", 1, 65535, offsetof(struct config, backlog), true},
    {"max_connections", 1, 1000000, offsetof(struct config, max_connections), false},
    {"max_frame_size", 1, 4294967294LL, offsetof(struct config, max_frame_size), false},
    {"max_connections_per_client", 0, 1000000,
     offsetof(struct config, max_connections_per_client), false},
    /* Linux's ceilings: TCP_KEEPIDLE/TCP_KEEPINTVL 32767 s, TCP_KEEPCNT 127. */
    {"tcp_keepalive_idle", 1, 32767, offsetof(struct config, tcp_keepalive_idle), true},
    {"tcp_keepalive_interval", 1, 32767, offsetof(struct config, tcp_keepalive_interval), true},
    {"tcp_keepalive_count", 1, 127, offsetof(struct config, tcp_keepalive_count), true},
};

static long long int_field(const struct config *c, const struct int_key *k)
{
    const char *p = (const char *)c + k->offset;
    if (k->is_signed)
        return *(const int *)(const void *)p;
    return *(const unsigned *)(const void *)p;
}

static void check_int_value(const struct int_key *k, long long v, const char *suffix)
{
    char text[TEXT_MAX];
    snprintf(text, sizeof(text), "%s = %lld%s;\n", k->name, v, suffix);
    struct config *c = load_ok(text);
    assert_int_equal(int_field(c, k), v);
    config_unref(c);
}

static void check_int_range_error(const struct int_key *k, long long v, const char *suffix)
{
    char text[TEXT_MAX];
    snprintf(text, sizeof(text), "%s = %lld%s;\n", k->name, v, suffix);
    expect_errf(text, NAME ":1: %s: must be between %lld and %lld (got %lld)", k->name, k->min,
                k->max, v);
}

static void test_int_keys_at_limits(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(int_keys) / sizeof(int_keys[0]); i++) {
        const struct int_key *k = &int_keys[i];
        check_int_value(k, k->min, "");
        check_int_value(k, k->max, "");
        check_int_value(k, k->min, "L");
        check_int_value(k, k->max, "L");
    }
}

static void test_int_keys_past_limits(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(int_keys) / sizeof(int_keys[0]); i++) {
        const struct int_key *k = &int_keys[i];
        check_int_range_error(k, k->min - 1, "");
        check_int_range_error(k, k->max + 1, "");
        check_int_range_error(k, k->min - 1, "L");
        check_int_range_error(k, k->max + 1, "L");
        check_int_range_error(k, -1, "");
        check_int_range_error(k, INT32_MIN, "");
    }
}

/* Values beyond 32 bits are checked whole, never wrapped into range. */
static void test_int_not_truncated(void **state)
{
    (void)state;
    /* 2^32 + 1 would wrap to 1, which is in range. */
    expect_err("max_connections = 4294967297;",
               NAME ":1: max_connections: must be between 1 and 1000000 (got 4294967297)");
    expect_err("backlog = 4294967808L;",
               NAME ":1: backlog: must be between 1 and 65535 (got 4294967808)");
    expect_err("workers = 0x100000001;",
               NAME ":1: workers: must be between 0 and 256 (got 4294967297)");
    expect_err("max_frame_size = 4294967295;",
               NAME ":1: max_frame_size: must be between 1 and 4294967294 (got 4294967295)");
    expect_err("backlog = 99999999999999999999;",
               NAME ":1: backlog: must be between 1 and 65535 (got a number beyond 64 bits)");
    expect_err("backlog = -99999999999999999999L;",
               NAME ":1: backlog: must be between 1 and 65535 (got a number beyond 64 bits)");

    struct config *c = load_ok("max_frame_size = 0xFFFFFFFE;");
    assert_int_equal(c->max_frame_size, UINT32_C(0xFFFFFFFE));
    config_unref(c);
    c = load_ok("backlog = 0x10; workers = +7; max_connections = 0x0F4240L;");
    assert_int_equal(c->backlog, 16);
    assert_int_equal(c->workers, 7);
    assert_int_equal(c->max_connections, 1000000);
    config_unref(c);
}

static void test_int_wrong_types(void **state)
{
    (void)state;
    static const struct {
        const char *value, *got;
    } bad[] = {
        {"\"10\"", "a string"}, {"1.5", "a float"},     {"1e3", "a float"},
        {"true", "a boolean"},  {"{ a = 1; }", "a group"}, {"[ 1 ]", "an array"},
        {"( 1 )", "a list"},    {"[ ]", "an array"},
    };
    for (size_t i = 0; i < sizeof(int_keys) / sizeof(int_keys[0]); i++) {
        for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
            char text[TEXT_MAX];
            snprintf(text, sizeof(text), "%s = %s;\n", int_keys[i].name, bad[j].value);
            expect_errf(text, NAME ":1: %s: must be an integer (got %s)", int_keys[i].name,
                        bad[j].got);
        }
    }
}

/* ---- timeouts ---- */

static const char *const seconds_keys[] = {"idle_timeout", "read_timeout", "write_timeout",
                                           "drain_timeout"};

static double seconds_field(const struct config *c, const char *name)
{
    if (strcmp(name, "idle_timeout") == 0)
        return c->idle_timeout;
    if (strcmp(name, "read_timeout") == 0)
        return c->read_timeout;
    if (strcmp(name, "write_timeout") == 0)
        return c->write_timeout;
    return c->drain_timeout;
}

static void check_seconds(const char *name, const char *value, double want)
{
    char text[TEXT_MAX];
    snprintf(text, sizeof(text), "%s = %s;\n", name, value);
    struct config *c = load_ok(text);
    assert_true(seconds_field(c, name) == want);
    config_unref(c);
}

static void test_timeouts_int_and_float(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(seconds_keys) / sizeof(seconds_keys[0]); i++) {
        const char *k = seconds_keys[i];
        check_seconds(k, "0", 0.0);
        check_seconds(k, "0.0", 0.0);
        check_seconds(k, "31536000", 31536000.0);
        check_seconds(k, "31536000.0", 31536000.0);
        check_seconds(k, "31536000L", 31536000.0);
        check_seconds(k, "1", 1.0);
        check_seconds(k, "0.25", 0.25);
        check_seconds(k, "2.5e-1", 0.25);
        check_seconds(k, "1e2", 100.0);
        check_seconds(k, ".5", 0.5);
    }
}

static void test_timeouts_out_of_range(void **state)
{
    (void)state;
    static const struct {
        const char *value, *got;
    } bad[] = {
        {"-1", "-1"},
        {"31536001", "31536001"},
        {"-0.001", "-0.001"},
        {"31536000.5", "3.1536e+07"},
        {"1e400", "inf"},
        {"-1e400", "-inf"},
        {"4294967296", "4294967296"},
    };
    for (size_t i = 0; i < sizeof(seconds_keys) / sizeof(seconds_keys[0]); i++) {
        for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
            char text[TEXT_MAX];
            snprintf(text, sizeof(text), "%s = %s;\n", seconds_keys[i], bad[j].value);
            expect_errf(text, NAME ":1: %s: must be between 0 and 31536000 (got %s)",
                        seconds_keys[i], bad[j].got);
        }
    }
}

static void test_timeouts_wrong_types(void **state)
{
    (void)state;
    static const struct {
        const char *value, *got;
    } bad[] = {
        {"\"30\"", "a string"}, {"false", "a boolean"}, {"{ s = 1; }", "a group"},
        {"[ 1.0 ]", "an array"}, {"( 30 )", "a list"},
    };
    for (size_t i = 0; i < sizeof(seconds_keys) / sizeof(seconds_keys[0]); i++) {
        for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
            char text[TEXT_MAX];
            snprintf(text, sizeof(text), "%s = %s;\n", seconds_keys[i], bad[j].value);
            expect_errf(text,
                        NAME ":1: %s: must be a number of seconds, integer or float (got %s)",
                        seconds_keys[i], bad[j].got);
        }
    }
}

/* tcp_user_timeout: seconds like the timeouts, but milliseconds in an int
 * for the kernel, so it stops at 2147483 s. */
static void test_user_timeout(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        double want;
    } good[] = {
        {"0", 0.0}, {"0.0", 0.0}, {"0.001", 0.001}, {"3", 3.0}, {"2.5", 2.5},
        {"2147483", 2147483.0}, {"2147483L", 2147483.0},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char text[TEXT_MAX];
        snprintf(text, sizeof(text), "tcp_user_timeout = %s;\n", good[i].value);
        struct config *c = load_ok(text);
        assert_true(c->tcp_user_timeout == good[i].want);
        config_unref(c);
    }
    expect_err("tcp_user_timeout = -1;",
               NAME ":1: tcp_user_timeout: must be between 0 and 2147483 (got -1)");
    expect_err("tcp_user_timeout = 2147484;",
               NAME ":1: tcp_user_timeout: must be between 0 and 2147483 (got 2147484)");
    expect_err("tcp_user_timeout = 2147483.5;",
               NAME ":1: tcp_user_timeout: must be between 0 and 2147483 (got 2.14748e+06)");
    expect_err("tcp_user_timeout = 4294967297;",
               NAME ":1: tcp_user_timeout: must be between 0 and 2147483 (got 4294967297)");
    expect_err("tcp_user_timeout = \"3\";",
               NAME ":1: tcp_user_timeout: must be a number of seconds, integer or float "
               "(got a string)");
    expect_err("tcp_user_timeout = true;",
               NAME ":1: tcp_user_timeout: must be a number of seconds, integer or float "
               "(got a boolean)");
    /* Keepalive timing is whole seconds, as the kernel takes it. */
    expect_err("tcp_keepalive_idle = 1.5;",
               NAME ":1: tcp_keepalive_idle: must be an integer (got a float)");
}

/* The dead-peer keys together, each on its own line, errors at their line. */
static void test_dead_peer_keys_together(void **state)
{
    (void)state;
    struct config *c = load_ok("tcp_keepalive_idle = 1;\ntcp_keepalive_interval = 2;\n"
                               "tcp_keepalive_count = 3;\ntcp_user_timeout = 4.5;\n"
                               "max_connections_per_client = 7;\n");
    assert_int_equal(c->tcp_keepalive_idle, 1);
    assert_int_equal(c->tcp_keepalive_interval, 2);
    assert_int_equal(c->tcp_keepalive_count, 3);
    assert_true(c->tcp_user_timeout == 4.5);
    assert_int_equal(c->max_connections_per_client, 7);
    config_unref(c);
    expect_err("tcp_keepalive_idle = 1;\ntcp_keepalive_interval = 2;\n"
               "tcp_keepalive_count = 128;\n",
               NAME ":3: tcp_keepalive_count: must be between 1 and 127 (got 128)");
    expect_err("tcp_keepalive_idle = 1;\n\n\ntcp_keepalive_interval = 0;\n",
               NAME ":4: tcp_keepalive_interval: must be between 1 and 32767 (got 0)");
    expect_err("tcp_keepalive_idle = 1;\ntcp_keepalive_idle = 2;\n",
               NAME ":2: duplicate setting name");
}

/* ---- booleans, log level, user ---- */

static void test_bools(void **state)
{
    (void)state;
    struct config *c = load_ok("tcp_nodelay = false; tcp_keepalive = false;");
    assert_false(c->tcp_nodelay);
    assert_false(c->tcp_keepalive);
    config_unref(c);
    c = load_ok("tcp_nodelay = TRUE; tcp_keepalive = True;");
    assert_true(c->tcp_nodelay);
    assert_true(c->tcp_keepalive);
    config_unref(c);

    static const struct {
        const char *value, *got;
    } bad[] = {
        {"1", "an integer"}, {"0", "an integer"}, {"\"true\"", "a string"},
        {"1.0", "a float"},  {"{ }", "a group"},  {"[ true ]", "an array"},
    };
    static const char *const names[] = {"tcp_nodelay", "tcp_keepalive"};
    for (size_t i = 0; i < 2; i++) {
        for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
            char text[TEXT_MAX];
            snprintf(text, sizeof(text), "%s = %s;", names[i], bad[j].value);
            expect_errf(text, NAME ":1: %s: must be true or false (got %s)", names[i],
                        bad[j].got);
        }
    }
}

static void test_log_level(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum log_level level;
    } ok[] = {
        {"error", LOG_LVL_ERROR}, {"warn", LOG_LVL_WARN},
        {"info", LOG_LVL_INFO},   {"debug", LOG_LVL_DEBUG},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char text[TEXT_MAX];
        snprintf(text, sizeof(text), "log_level = \"%s\";", ok[i].name);
        struct config *c = load_ok(text);
        assert_int_equal(c->log_level, ok[i].level);
        config_unref(c);
    }
    expect_err("log_level = \"verbose\";",
               NAME ":1: log_level: must be \"error\", \"warn\", \"info\" or \"debug\" "
                    "(got \"verbose\")");
    expect_err("log_level = \"\";",
               NAME ":1: log_level: must be \"error\", \"warn\", \"info\" or \"debug\" "
                    "(got \"\")");
    expect_err("log_level = 7;", NAME ":1: log_level: must be a string (got an integer)");
    expect_err("log_level = [ \"info\" ];", NAME ":1: log_level: must be a string (got an array)");
    expect_err("log_level = { x = \"info\"; };",
               NAME ":1: log_level: must be a string (got a group)");
}

static void test_user(void **state)
{
    (void)state;
    struct config *c = load_ok("user = \"root\";");
    assert_string_equal(c->user, "root");
    config_unref(c);
    c = load_ok("user = \"\";");
    assert_string_equal(c->user, "");
    config_unref(c);
    expect_err("user = \"no-such-user-echod\";",
               NAME ":1: user: no such user 'no-such-user-echod'");
    expect_err("user = 0;", NAME ":1: user: must be a string (got an integer)");
    expect_err("user = false;", NAME ":1: user: must be a string (got a boolean)");
    expect_err("user = ( \"root\" );", NAME ":1: user: must be a string (got a list)");
}

/* ---- listen ---- */

static void test_listen_list_and_array(void **state)
{
    (void)state;
    struct config *c = load_ok(
        "listen = [ \"127.0.0.1:7007\", \"[::1]:7007\", \"unix:/tmp/echod-test.sock\" ];");
    assert_int_equal(c->nlisten, 3);
    assert_string_equal(c->listen[0], "127.0.0.1:7007");
    assert_string_equal(c->listen[1], "[::1]:7007");
    assert_string_equal(c->listen[2], "unix:/tmp/echod-test.sock");
    config_unref(c);

    c = load_ok("listen = ( \"127.0.0.1:1\",\n  \"unix:@echod-test\" );");
    assert_int_equal(c->nlisten, 2);
    assert_string_equal(c->listen[0], "127.0.0.1:1");
    assert_string_equal(c->listen[1], "unix:@echod-test");
    config_unref(c);

    c = load_ok("listen = [ \"0.0.0.0:65535\" ];");
    assert_int_equal(c->nlisten, 1);
    assert_string_equal(c->listen[0], "0.0.0.0:65535");
    config_unref(c);
}

static void test_listen_errors(void **state)
{
    (void)state;
    expect_err("listen = \"127.0.0.1:7007\";",
               NAME ":1: listen: must be a list or array of address strings (got a string)");
    expect_err("listen = 7007;",
               NAME ":1: listen: must be a list or array of address strings (got an integer)");
    expect_err("listen = { a = \"127.0.0.1:7007\"; };",
               NAME ":1: listen: must be a list or array of address strings (got a group)");
    expect_err("listen = [ ];", NAME ":1: listen: needs at least one address");
    expect_err("listen = ( );", NAME ":1: listen: needs at least one address");
    expect_err("listen = [ 7007 ];", NAME ":1: listen[0]: must be a string (got an integer)");
    /* The element's own line is named. */
    expect_err("listen = ( \"127.0.0.1:1\",\n\n  7007 );",
               NAME ":3: listen[1]: must be a string (got an integer)");
    expect_err("listen = ( \"127.0.0.1:1\", [ \"127.0.0.1:2\" ] );",
               NAME ":1: listen[1]: must be a string (got an array)");
    expect_err_prefix("listen = [ \"127.0.0.1\" ];",
                      NAME ":1: listen[0]: bad address \"127.0.0.1\": ");
    expect_err_prefix("listen = [ \"127.0.0.1:1\",\n \"127.0.0.1:70000\" ];",
                      NAME ":2: listen[1]: bad address \"127.0.0.1:70000\": ");
    expect_err_prefix("listen = [ \"::1:7007\" ];", NAME ":1: listen[0]: bad address ");
    expect_err_prefix("listen = [ \"\" ];", NAME ":1: listen[0]: bad address \"\": ");
}

static void test_listen_schemes(void **state)
{
    (void)state;
    struct config *c = NULL;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(config_load_string("listen = [ \"framed://127.0.0.1:1\", \"raw://[::1]:2\",\n"
                                        "  \"http://unix:/tmp/x.sock\", \"127.0.0.1:3\" ];",
                                        NAME, &c, err, sizeof(err)), 0);
    assert_int_equal(c->nlisten, 4);
    assert_string_equal(c->listen[1], "raw://[::1]:2");     /* kept as written */
    config_unref(c);
    expect_err("listen = [ \"127.0.0.1:1\",\n  \"gopher://127.0.0.1:70\" ];",
               NAME ":2: listen[1]: unknown protocol in \"gopher://127.0.0.1:70\" "
               "(framed://, raw:// or http://)");
    expect_err("listen = [ \"HTTP://127.0.0.1:80\" ];",
               NAME ":1: listen[0]: unknown protocol in \"HTTP://127.0.0.1:80\" "
               "(framed://, raw:// or http://)");
    expect_err_prefix("listen = [ \"raw://\" ];", NAME ":1: listen[0]: bad address \"raw://\": ");
    /* One address under two schemes is one socket: refused. */
    expect_err("listen = [ \"raw://127.0.0.1:7007\",\n \"http://127.0.0.1:7007\" ];",
               NAME ":2: listen[1]: \"http://127.0.0.1:7007\" is the same address as listen[0]");
}

static void test_listen_duplicates(void **state)
{
    (void)state;
    expect_err("listen = [ \"127.0.0.1:7007\",\n \"127.0.0.1:7007\" ];",
               NAME ":2: listen[1]: \"127.0.0.1:7007\" is the same address as listen[0]");
    /* Spelled differently, the same socket address. */
    expect_err("listen = [ \"[::1]:7007\", \"127.0.0.1:1\", \"[0:0::1]:7007\" ];",
               NAME ":1: listen[2]: \"[0:0::1]:7007\" is the same address as listen[0]");
    expect_err("listen = ( \"unix:/tmp/x.sock\", \"unix:/tmp/x.sock\" );",
               NAME ":1: listen[1]: \"unix:/tmp/x.sock\" is the same address as listen[0]");
    /* Same host, other port; same port, other family: both fine. */
    struct config *c = load_ok("listen = [ \"127.0.0.1:1\", \"127.0.0.1:2\", \"[::1]:1\" ];");
    assert_int_equal(c->nlisten, 3);
    config_unref(c);
}

static void test_listen_count_limit(void **state)
{
    (void)state;
    char text[TEXT_MAX];
    for (int n = CONFIG_LISTEN_MAX; n <= CONFIG_LISTEN_MAX + 1; n++) {
        size_t used = (size_t)snprintf(text, sizeof(text), "listen = [");
        for (int i = 0; i < n; i++)
            used += (size_t)snprintf(text + used, sizeof(text) - used, "%s\"127.0.0.1:%d\"",
                                     i ? ", " : " ", 10000 + i);
        snprintf(text + used, sizeof(text) - used, " ];");
        if (n == CONFIG_LISTEN_MAX) {
            struct config *c = load_ok(text);
            assert_int_equal(c->nlisten, CONFIG_LISTEN_MAX);
            config_unref(c);
        } else {
            expect_errf(text, NAME ":1: listen: at most %d addresses (got %d)",
                        CONFIG_LISTEN_MAX, n);
        }
    }
}

/* ---- unknown keys, syntax, lines ---- */

static void test_unknown_key(void **state)
{
    (void)state;
    expect_err("foo = 1;", NAME ":1: unknown key 'foo'");
    expect_err("workers = 1;\n\n\nWorkers = 2;\n", NAME ":4: unknown key 'Workers'");
    expect_err("server = { workers = 1; };", NAME ":1: unknown key 'server'");
    /* Digits in a name stay part of the name. */
    expect_err("listen6 = 5;", NAME ":1: unknown key 'listen6'");
    expect_err("max-connections = 5;", NAME ":1: unknown key 'max-connections'");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_err("workers = 1;\nbacklog = ;\n", NAME ":2: syntax error");
    expect_err("workers = 1\nbacklog 5;\n", NAME ":2: syntax error");
    /* An unterminated string is reported where it starts. */
    expect_err("# comment\n/* block\n comment */\nuser = \"x;\n\n", NAME ":4: unterminated string");
    expect_err("user = \"a\\\"", NAME ":1: unterminated string");
    expect_err("workers = 1;\nworkers = 2;\n", NAME ":2: duplicate setting name");
    expect_err("listen = [ \"a\", 1 ];", NAME ":1: mismatched element type in array");
    expect_err("=", NAME ":1: syntax error");
}

static void test_error_line_deep_in_file(void **state)
{
    (void)state;
    static const char text[] =
        "# echod\n"
        "listen = [ \"127.0.0.1:7007\" ];\n"
        "workers = 0;\n"
        "/* limits\n"
        "   below */\n"
        "backlog = 511;\n"
        "max_connections = 0;\n"
        "max_frame_size = 16777216;\n";
    struct config *c = NULL;
    char err[CONFIG_ERR_MAX];
    assert_int_equal(config_load_string(text, "echod.conf", &c, err, sizeof(err)), -1);
    assert_string_equal(err, "echod.conf:7: max_connections: must be between 1 and 1000000 (got 0)");
}

static void test_include_refused(void **state)
{
    (void)state;
    expect_err("workers = 1;\n@include \"other.conf\"\n",
               NAME ":2: @include is not supported: keep the configuration in one file");
    /* Inside a string or comment it is only text. */
    struct config *c = load_ok("# @include \"x\"\nuser = \"\"; /* @include */\n");
    config_unref(c);
}

/* Numbers inside strings and comments are left alone by the integer widening. */
static void test_numbers_in_strings_and_comments(void **state)
{
    (void)state;
    struct config *c = load_ok(
        "listen = [ \"127.0.0.1:7007\", \"[::1]:8\" ]; # 127 0 1\n"
        "// 12 34\n"
        "log_level = /* 5 */ \"debug\";\n"
        "backlog = 12 /* 34 */;\n"
        "idle_timeout = 1.5;\n");
    assert_string_equal(c->listen[0], "127.0.0.1:7007");
    assert_string_equal(c->listen[1], "[::1]:8");
    assert_int_equal(c->log_level, LOG_LVL_DEBUG);
    assert_int_equal(c->backlog, 12);
    assert_true(c->idle_timeout == 1.5);
    config_unref(c);

    /* An escaped quote does not end the string. */
    expect_err("user = \"a\\\"1\";", NAME ":1: user: no such user 'a\"1'");
}

static void test_colon_assignment(void **state)
{
    (void)state;
    struct config *c = load_ok("workers : 2\nbacklog : 7,\n");
    assert_int_equal(c->workers, 2);
    assert_int_equal(c->backlog, 7);
    config_unref(c);
}

/* ---- files ---- */

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void test_file_missing(void **state)
{
    (void)state;
    struct config *c = (struct config *)1;
    char err[CONFIG_ERR_MAX];
    assert_int_equal(config_load_file("tests/no/such.conf", &c, err, sizeof(err)), -1);
    assert_null(c);
    char want[CONFIG_ERR_MAX];
    snprintf(want, sizeof(want), "tests/no/such.conf: cannot open: %s", strerror(ENOENT));
    assert_string_equal(err, want);
}

static void test_file_errors_name_the_path(void **state)
{
    (void)state;
    char path[] = "/tmp/echod-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);

    static const char text[] = "workers = 2;\n\ntcp_nodelay = 1;\n";
    write_file(path, text, sizeof(text) - 1);
    struct config *c = NULL;
    char err[CONFIG_ERR_MAX], want[CONFIG_ERR_MAX];
    assert_int_equal(config_load_file(path, &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:3: tcp_nodelay: must be true or false (got an integer)",
             path);
    assert_string_equal(err, want);

    static const char good[] = "workers = 2;\n";
    write_file(path, good, sizeof(good) - 1);
    assert_int_equal(config_load_file(path, &c, err, sizeof(err)), 0);
    assert_int_equal(c->workers, 2);
    assert_string_equal(c->path, path);
    config_unref(c);

    static const char nul[] = "workers = 2;\0\n";
    write_file(path, nul, sizeof(nul) - 1);
    assert_int_equal(config_load_file(path, &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: contains a NUL byte; not a text file", path);
    assert_string_equal(err, want);

    assert_int_equal(config_load_file("/tmp", &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "/tmp: cannot read: %s", strerror(EISDIR));
    assert_string_equal(err, want);
    unlink(path);
}

static void test_shipped_echod_conf(void **state)
{
    (void)state;
    struct config *c = NULL;
    char err[CONFIG_ERR_MAX] = "";
    if (config_load_file("config/echod.conf", &c, err, sizeof(err)) != 0)
        fail_msg("config/echod.conf: %s", err);
    /* The documented default is the built-in one, key for key, but for an
     * HTTP listener beside the framed one. */
    assert_int_equal(c->nlisten, 2);
    assert_string_equal(c->listen[0], "127.0.0.1:7007");
    assert_string_equal(c->listen[1], "http://127.0.0.1:8080");
    check_defaults_but_listen(c);
    config_unref(c);
}

static void test_shipped_loadtest_conf(void **state)
{
    (void)state;
    struct config *c = NULL;
    char err[CONFIG_ERR_MAX] = "";
    if (config_load_file("config/loadtest.conf", &c, err, sizeof(err)) != 0)
        fail_msg("config/loadtest.conf: %s", err);
    assert_true(c->nlisten >= 1);
    assert_true(c->max_connections > 10000);
    config_unref(c);
}

/* ---- restart keys, refcount, help ---- */

static void test_restart_keys(void **state)
{
    (void)state;
    struct config *a = config_new_defaults();
    struct config *b = load_ok("workers = 0; user = \"\";");
    char out[256];
    config_restart_keys(a, b, out, sizeof(out));
    assert_string_equal(out, "");
    config_unref(b);

    /* Everything that a reload can apply is not reported. */
    b = load_ok("listen = [ \"127.0.0.1:9\" ]; backlog = 5; max_connections = 5;\n"
                "max_frame_size = 5; idle_timeout = 1; read_timeout = 1; write_timeout = 1;\n"
                "drain_timeout = 1; tcp_nodelay = false; tcp_keepalive = false;\n"
                "log_level = \"debug\"; max_connections_per_client = 1;\n"
                "tcp_keepalive_idle = 1; tcp_keepalive_interval = 1; tcp_keepalive_count = 1;\n"
                "tcp_user_timeout = 1;");
    config_restart_keys(a, b, out, sizeof(out));
    assert_string_equal(out, "");
    config_unref(b);

    b = load_ok("workers = 4;");
    config_restart_keys(a, b, out, sizeof(out));
    assert_string_equal(out, "workers");
    config_unref(b);

    b = load_ok("user = \"root\";");
    config_restart_keys(a, b, out, sizeof(out));
    assert_string_equal(out, "user");
    config_unref(b);

    b = load_ok("user = \"root\"; workers = 1;");
    config_restart_keys(a, b, out, sizeof(out));
    assert_string_equal(out, "workers, user");
    /* A short buffer is still a terminated string. */
    char tiny[4];
    config_restart_keys(a, b, tiny, sizeof(tiny));
    assert_true(strlen(tiny) < sizeof(tiny));
    config_unref(b);
    config_unref(a);
}

static void test_refcount(void **state)
{
    (void)state;
    struct config *c = config_new_defaults();
    assert_ptr_equal(config_ref(c), c);
    assert_int_equal(atomic_load(&c->refs), 2);
    config_unref(c);
    assert_int_equal(atomic_load(&c->refs), 1);
    config_unref(c);        /* freed: the leak checker sees nothing left */
    config_unref(NULL);
}

static void test_print_keys(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_print_keys(f);
    assert_int_equal(fclose(f), 0);
    static const char *const names[] = {
        "listen", "workers", "backlog", "max_connections", "max_frame_size",
        "idle_timeout", "read_timeout", "write_timeout", "drain_timeout",
        "tcp_nodelay", "tcp_keepalive", "log_level", "user", "max_connections_per_client",
        "tcp_keepalive_idle", "tcp_keepalive_interval", "tcp_keepalive_count",
        "tcp_user_timeout",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char want[64];
        snprintf(want, sizeof(want), "  %s ", names[i]);
        if (strstr(text, want) == NULL)
            fail_msg("config_print_keys lacks %s:\n%s", names[i], text);
    }
    assert_non_null(strstr(text, "integer 1..4294967294"));
    assert_non_null(strstr(text, "default 16777216"));
    free(text);
}

static void test_error_buffer_edge_cases(void **state)
{
    (void)state;
    struct config *c = NULL;
    assert_int_equal(config_load_string("foo = 1;", NAME, &c, NULL, 0), -1);
    assert_null(c);
    char small[8];
    assert_int_equal(config_load_string("foo = 1;", NAME, &c, small, sizeof(small)), -1);
    assert_string_equal(small, "t.conf:");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_defaults),
        cmocka_unit_test(test_empty_file_gives_defaults),
        cmocka_unit_test(test_absent_keys_keep_defaults),
        cmocka_unit_test(test_int_keys_at_limits),
        cmocka_unit_test(test_int_keys_past_limits),
        cmocka_unit_test(test_int_not_truncated),
        cmocka_unit_test(test_int_wrong_types),
        cmocka_unit_test(test_timeouts_int_and_float),
        cmocka_unit_test(test_timeouts_out_of_range),
        cmocka_unit_test(test_timeouts_wrong_types),
        cmocka_unit_test(test_user_timeout),
        cmocka_unit_test(test_dead_peer_keys_together),
        cmocka_unit_test(test_bools),
        cmocka_unit_test(test_log_level),
        cmocka_unit_test(test_user),
        cmocka_unit_test(test_listen_list_and_array),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_listen_schemes),
        cmocka_unit_test(test_listen_duplicates),
        cmocka_unit_test(test_listen_count_limit),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_error_line_deep_in_file),
        cmocka_unit_test(test_include_refused),
        cmocka_unit_test(test_numbers_in_strings_and_comments),
        cmocka_unit_test(test_colon_assignment),
        cmocka_unit_test(test_file_missing),
        cmocka_unit_test(test_file_errors_name_the_path),
        cmocka_unit_test(test_shipped_echod_conf),
        cmocka_unit_test(test_shipped_loadtest_conf),
        cmocka_unit_test(test_restart_keys),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_print_keys),
        cmocka_unit_test(test_error_buffer_edge_cases),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
