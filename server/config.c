/* config.c - the configuration file: libconfig text -> a validated, immutable
 * struct config, or one "FILE:LINE: message" error.
 *
 * Every key is one row of keys[] (name, type, range, default, restart-only,
 * help). Loading, the built-in defaults, `echod -h` (config_print_keys) and the
 * reload check (config_restart_keys) all walk that one table, so a key is added
 * in one place.
 *
 * Three things are stricter than plain libconfig 1.5:
 *   - Its scanner keeps an integer without the L suffix in an int and wraps it
 *     silently (4294967297 reads as 1). Before parsing, every integer literal
 *     is given the L suffix, so each value arrives as 64 bits and is
 *     range-checked here instead of being wrapped.
 *   - @include is refused: a configuration is the one file that a reload reads
 *     again.
 *   - An unterminated string is reported at the line where it starts (libconfig
 *     would say "syntax error" at the end of the file, and leak).
 *
 * Errors: loaders return 0 or -1 with the message in the caller's buffer.
 * No state outside the snapshots; safe from any thread.
 */
#include "server/config.h"

#include <errno.h>
#include <limits.h>
#include <libconfig.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/frame.h"
#include "common/net.h"
#include "server/proto.h"

/* The built-in listen address: loopback, so a default start exposes nothing. */
#define DEFAULT_LISTEN "127.0.0.1:7007"
/* Longest timeout accepted: one year. Anything longer is surely a typo. */
#define SECONDS_MAX 31536000
/* listen(2) backlog: the kernel's own ceiling for somaxconn. */
#define BACKLOG_MAX 65535
/* Open connections: a million descriptors is past any sane ulimit already. */
#define MAX_CONNECTIONS_MAX 1000000
/* Linux's own ceilings for TCP_KEEPIDLE/TCP_KEEPINTVL and TCP_KEEPCNT. */
#define KEEPALIVE_SECONDS_MAX 32767
#define KEEPALIVE_COUNT_MAX 127
/* TCP_USER_TIMEOUT takes milliseconds in an int: about 24.8 days. */
#define USER_TIMEOUT_MAX 2147483
/* The largest frame length; FRAME_OPEN_LENGTH itself means "until EOF". */
#define FRAME_SIZE_MAX ((int64_t)FRAME_OPEN_LENGTH - 1)
/* An HTTP request head must fit one input buffer (64 KiB) whole, since it is
 * echoed byte for byte; below 1 KiB ordinary clients would be refused. */
#define HTTP_HEADER_SIZE_MIN 1024
#define HTTP_HEADER_SIZE_MAX 65536
/* The longest readiness-off period before a drain: ten minutes, far past
 * any balancer's health-check interval times its fall count. */
#define DRAIN_DELAY_MAX 600
/* The longest delay= a configuration may allow: an hour. */
#define HTTP_DELAY_MAX 3600
/* A configuration file is a page of text; refuse anything absurdly large. */
#define CONFIG_FILE_MAX (1024 * 1024)
/* getpwnam_r's scratch buffer: start small, grow up to this on ERANGE. */
#define PW_BUF_START 1024
#define PW_BUF_MAX (1024 * 1024)

enum key_type {
    KEY_LISTEN,     /* list or array of address strings (net.h syntax) */
    KEY_INT,        /* integer in [min, max] */
    KEY_SECONDS,    /* integer or float seconds in [min, max] */
    KEY_BOOL,
    KEY_LOG_LEVEL,  /* "error" | "warn" | "info" | "debug" */
    KEY_USER,       /* string; non-empty must name an existing user */
};

/* How a KEY_INT field is stored; picked from the field's declared type. */
enum int_store { STORE_INT, STORE_UNSIGNED };

struct key {
    const char *name;
    enum key_type type;
    int64_t min, max;           /* KEY_INT, KEY_SECONDS */
    int64_t def_int;            /* KEY_INT */
    double def_seconds;         /* KEY_SECONDS */
    bool def_bool;              /* KEY_BOOL */
    const char *def_text;       /* KEY_LISTEN, KEY_LOG_LEVEL, KEY_USER */
    size_t offset;              /* the field in struct config */
    enum int_store store;       /* KEY_INT */
    bool restart;               /* a reload cannot change it */
    const char *help;
};

#define FIELD(f) .offset = offsetof(struct config, f)
/* An integer field, its storage chosen by its C type so table and struct
 * cannot disagree (uint32_t is unsigned int on every Linux ABI). */
#define INT_FIELD(f)                                                   \
    FIELD(f), .store = _Generic(((struct config *)0)->f,              \
                                int: STORE_INT, unsigned: STORE_UNSIGNED)

static const struct key keys[] = {
    {.name = "listen", .type = KEY_LISTEN, .def_text = DEFAULT_LISTEN,
     .help = "addresses: \"host:port\", \"[v6]:port\", \"unix:/path\"; at least one"},
    {.name = "workers", .type = KEY_INT, .min = 0, .max = CONFIG_WORKERS_MAX, .def_int = 0,
     INT_FIELD(workers), .restart = true,
     .help = "worker threads; 0 = one per online CPU"},
    {.name = "backlog", .type = KEY_INT, .min = 1, .max = BACKLOG_MAX, .def_int = 511,
     INT_FIELD(backlog), .help = "listen(2) backlog"},
    {.name = "max_connections", .type = KEY_INT, .min = 1, .max = MAX_CONNECTIONS_MAX,
     .def_int = 10000, INT_FIELD(max_connections),
     .help = "open connections; beyond it a 503 and close"},
    {.name = "max_connections_per_client", .type = KEY_INT, .min = 0,
     .max = MAX_CONNECTIONS_MAX, .def_int = 0, INT_FIELD(max_connections_per_client),
     .help = "open connections from one IP address; beyond it a 503; 0 = no limit"},
    {.name = "max_frame_size", .type = KEY_INT, .min = 1, .max = FRAME_SIZE_MAX,
     .def_int = 16777216, INT_FIELD(max_frame_size),
     .help = "largest frame length in bytes; larger: a 413 and close"},
    {.name = "idle_timeout", .type = KEY_SECONDS, .min = 0, .max = SECONDS_MAX,
     .def_seconds = 300, FIELD(idle_timeout),
     .help = "close a connection idle this long; 0 = never"},
    {.name = "read_timeout", .type = KEY_SECONDS, .min = 0, .max = SECONDS_MAX,
     .def_seconds = 30, FIELD(read_timeout),
     .help = "a started frame must complete within; else a 408; 0 = never"},
    {.name = "write_timeout", .type = KEY_SECONDS, .min = 0, .max = SECONDS_MAX,
     .def_seconds = 30, FIELD(write_timeout),
     .help = "pending output must make progress within; 0 = never"},
    {.name = "drain_delay", .type = KEY_SECONDS, .min = 0, .max = DRAIN_DELAY_MAX,
     .def_seconds = 0, FIELD(drain_delay),
     .help = "at SIGTERM, seconds of /readyz 503 before listeners close; 0 = none"},
    {.name = "drain_timeout", .type = KEY_SECONDS, .min = 0, .max = SECONDS_MAX,
     .def_seconds = 10, FIELD(drain_timeout),
     .help = "at SIGTERM, time to finish; 0 = close at once"},
    {.name = "tcp_nodelay", .type = KEY_BOOL, .def_bool = true, FIELD(tcp_nodelay),
     .help = "TCP_NODELAY on client sockets"},
    {.name = "tcp_keepalive", .type = KEY_BOOL, .def_bool = true, FIELD(tcp_keepalive),
     .help = "SO_KEEPALIVE on client sockets"},
    {.name = "http_max_header_size", .type = KEY_INT, .min = HTTP_HEADER_SIZE_MIN,
     .max = HTTP_HEADER_SIZE_MAX, .def_int = 16384, INT_FIELD(http_max_header_size),
     .help = "bytes of an HTTP request line and headers; beyond: a 414 or 431"},
    {.name = "http_max_delay", .type = KEY_SECONDS, .min = 0, .max = HTTP_DELAY_MAX,
     .def_seconds = 10, FIELD(http_max_delay),
     .help = "seconds: the longest delay= an HTTP request may ask; 0 = delays off"},
    {.name = "http_metrics", .type = KEY_BOOL, .def_bool = true, FIELD(http_metrics),
     .help = "serve /metrics and /stats on http listeners"},
    /* Defaults: a dead idle peer is found within 60 + 10 * 6 = 120 s, under
     * every common NAT/load-balancer idle timeout; tcp_user_timeout matches
     * that sum, since once set it (not the probe count) ends the connection. */
    {.name = "tcp_keepalive_idle", .type = KEY_INT, .min = 1, .max = KEEPALIVE_SECONDS_MAX,
     .def_int = 60, INT_FIELD(tcp_keepalive_idle),
     .help = "seconds idle before the first keepalive probe"},
    {.name = "tcp_keepalive_interval", .type = KEY_INT, .min = 1,
     .max = KEEPALIVE_SECONDS_MAX, .def_int = 10, INT_FIELD(tcp_keepalive_interval),
     .help = "seconds between keepalive probes"},
    {.name = "tcp_keepalive_count", .type = KEY_INT, .min = 1, .max = KEEPALIVE_COUNT_MAX,
     .def_int = 6, INT_FIELD(tcp_keepalive_count),
     .help = "unanswered probes before the peer is dead"},
    {.name = "tcp_user_timeout", .type = KEY_SECONDS, .min = 0, .max = USER_TIMEOUT_MAX,
     .def_seconds = 120, FIELD(tcp_user_timeout),
     .help = "sent data unacknowledged this long: dead peer; 0 = kernel default"},
    {.name = "reuse_port", .type = KEY_BOOL, .def_bool = false, FIELD(reuse_port),
     .help = "SO_REUSEPORT on TCP listeners: instances share a port"},
    {.name = "log_level", .type = KEY_LOG_LEVEL, .def_text = "info", FIELD(log_level),
     .help = "error | warn | info | debug"},
    {.name = "user", .type = KEY_USER, .def_text = "", FIELD(user), .restart = true,
     .help = "drop privileges to this user after binding; \"\" = stay"},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Where a load reports its error. */
struct load_ctx {
    const char *name;           /* the file name in messages */
    char *err;
    size_t errlen;
};

static void set_err(struct load_ctx *ctx, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(struct load_ctx *ctx, unsigned line, const char *fmt, ...)
{
    if (ctx->err == NULL || ctx->errlen == 0)
        return;
    int n = line > 0 ? snprintf(ctx->err, ctx->errlen, "%s:%u: ", ctx->name, line)
                     : snprintf(ctx->err, ctx->errlen, "%s: ", ctx->name);
    if (n < 0 || (size_t)n >= ctx->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static void *field_of(struct config *c, const struct key *k)
{
    return (char *)c + k->offset;
}

static const void *cfield_of(const struct config *c, const struct key *k)
{
    return (const char *)c + k->offset;
}

static void store_int(struct config *c, const struct key *k, int64_t v)
{
    /* v is within the key's range, which the table keeps within the field. */
    if (k->store == STORE_INT)
        *(int *)field_of(c, k) = (int)v;
    else
        *(unsigned *)field_of(c, k) = (unsigned)v;
}

static int64_t load_int(const struct config *c, const struct key *k)
{
    if (k->store == STORE_INT)
        return *(const int *)cfield_of(c, k);
    return *(const unsigned *)cfield_of(c, k);
}

static void free_listen(struct config *c)
{
    for (size_t i = 0; i < c->nlisten; i++)
        free(c->listen[i]);
    free(c->listen);
    c->listen = NULL;
    c->nlisten = 0;
}

static void config_free(struct config *c)
{
    free_listen(c);
    free(c->user);
    free(c->path);
    free(c);
}

/* Set key k to its default. Returns 0 or -1 when out of memory. */
static int apply_default(struct config *c, const struct key *k)
{
    switch (k->type) {
    case KEY_LISTEN:
        free_listen(c);
        c->listen = calloc(1, sizeof(*c->listen));
        if (c->listen == NULL)
            return -1;
        c->listen[0] = strdup(k->def_text);
        if (c->listen[0] == NULL)
            return -1;      /* config_free copes: nlisten stays 0 */
        c->nlisten = 1;
        return 0;
    case KEY_INT:
        store_int(c, k, k->def_int);
        return 0;
    case KEY_SECONDS:
        *(double *)field_of(c, k) = k->def_seconds;
        return 0;
    case KEY_BOOL:
        *(bool *)field_of(c, k) = k->def_bool;
        return 0;
    case KEY_LOG_LEVEL:
        return log_level_parse(k->def_text, (enum log_level *)field_of(c, k));
    case KEY_USER: {
        char **p = field_of(c, k);
        free(*p);
        *p = strdup(k->def_text);
        return *p == NULL ? -1 : 0;
    }
    }
    return -1;
}

struct config *config_new_defaults(void)
{
    struct config *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    atomic_init(&c->refs, 1);
    for (size_t i = 0; i < NKEYS; i++) {
        if (apply_default(c, &keys[i]) < 0) {
            config_free(c);
            return NULL;
        }
    }
    return c;
}

struct config *config_ref(struct config *c)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void config_unref(struct config *c)
{
    if (c == NULL)
        return;
    /* acq_rel: the thread that frees sees every other thread's last reads done. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        config_free(c);
}

/* ---- reading one setting ---- */

static const char *type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a float";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    default: return "nothing";
    }
}

static bool is_integer(const config_setting_t *s)
{
    return config_setting_type(s) == CONFIG_TYPE_INT ||
           config_setting_type(s) == CONFIG_TYPE_INT64;
}

static void range_error(struct load_ctx *ctx, const config_setting_t *s, const struct key *k,
                        const char *got)
{
    set_err(ctx, config_setting_source_line(s), "%s: must be between %lld and %lld (got %s)",
            k->name, (long long)k->min, (long long)k->max, got);
}

/* An integer setting as text for messages; libconfig saturates what does not
 * fit in 64 bits, so the extremes are named as such. */
static void int_text(long long v, char *out, size_t outlen)
{
    if (v == LLONG_MAX || v == LLONG_MIN)
        snprintf(out, outlen, "a number beyond 64 bits");
    else
        snprintf(out, outlen, "%lld", v);
}

static int read_int(struct config *c, const struct key *k, const config_setting_t *s,
                    struct load_ctx *ctx)
{
    if (!is_integer(s)) {
        set_err(ctx, config_setting_source_line(s), "%s: must be an integer (got %s)",
                k->name, type_name(s));
        return -1;
    }
    long long v = config_setting_get_int64(s);
    if (v < k->min || v > k->max) {
        char got[32];
        int_text(v, got, sizeof(got));
        range_error(ctx, s, k, got);
        return -1;
    }
    store_int(c, k, v);
    return 0;
}

static int read_seconds(struct config *c, const struct key *k, const config_setting_t *s,
                        struct load_ctx *ctx)
{
    char got[32];
    double v;
    if (is_integer(s)) {
        long long i = config_setting_get_int64(s);
        int_text(i, got, sizeof(got));
        if (i < k->min || i > k->max) {
            range_error(ctx, s, k, got);
            return -1;
        }
        v = (double)i;
    } else if (config_setting_type(s) == CONFIG_TYPE_FLOAT) {
        v = config_setting_get_float(s);
        snprintf(got, sizeof(got), "%g", v);
        /* The negated test also rejects NaN. */
        if (!(v >= (double)k->min && v <= (double)k->max)) {
            range_error(ctx, s, k, got);
            return -1;
        }
    } else {
        set_err(ctx, config_setting_source_line(s),
                "%s: must be a number of seconds, integer or float (got %s)", k->name,
                type_name(s));
        return -1;
    }
    *(double *)field_of(c, k) = v;
    return 0;
}

static int read_bool(struct config *c, const struct key *k, const config_setting_t *s,
                     struct load_ctx *ctx)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        set_err(ctx, config_setting_source_line(s), "%s: must be true or false (got %s)",
                k->name, type_name(s));
        return -1;
    }
    *(bool *)field_of(c, k) = config_setting_get_bool(s) != 0;
    return 0;
}

static int read_log_level(struct config *c, const struct key *k, const config_setting_t *s,
                          struct load_ctx *ctx)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        set_err(ctx, config_setting_source_line(s), "%s: must be a string (got %s)", k->name,
                type_name(s));
        return -1;
    }
    const char *text = config_setting_get_string(s);
    if (log_level_parse(text, (enum log_level *)field_of(c, k)) < 0) {
        set_err(ctx, config_setting_source_line(s),
                "%s: must be \"error\", \"warn\", \"info\" or \"debug\" (got \"%s\")", k->name,
                text);
        return -1;
    }
    return 0;
}

/* Does the system know this user? 1 yes, 0 no, -errno when the lookup failed. */
static int user_exists(const char *name)
{
    size_t len = PW_BUF_START;
    for (;;) {
        char *buf = malloc(len);
        if (buf == NULL)
            return -ENOMEM;
        struct passwd pw, *res = NULL;
        int rc = getpwnam_r(name, &pw, buf, len, &res);
        free(buf);
        if (res != NULL)
            return 1;
        if (rc == ERANGE && len < PW_BUF_MAX) {
            len *= 2;
            continue;
        }
        /* getpwnam_r(3): these all mean "not found". */
        if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
            return 0;
        return -rc;
    }
}

static int read_user(struct config *c, const struct key *k, const config_setting_t *s,
                     struct load_ctx *ctx)
{
    unsigned line = config_setting_source_line(s);
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        set_err(ctx, line, "%s: must be a string (got %s)", k->name, type_name(s));
        return -1;
    }
    const char *name = config_setting_get_string(s);
    if (name[0] != '\0') {
        int rc = user_exists(name);
        if (rc == 0) {
            set_err(ctx, line, "%s: no such user '%s'", k->name, name);
            return -1;
        }
        if (rc < 0) {
            set_err(ctx, line, "%s: cannot look up '%s': %s", k->name, name, strerror(-rc));
            return -1;
        }
    }
    char *copy = strdup(name);
    if (copy == NULL) {
        set_err(ctx, line, "%s: out of memory", k->name);
        return -1;
    }
    char **p = field_of(c, k);
    free(*p);
    *p = copy;
    return 0;
}

static bool same_addr(const struct net_addr *a, const struct net_addr *b)
{
    /* net_addr_parse zeroes the whole struct first, so bytes compare exactly. */
    return a->family == b->family && a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* Check every address of the setting; on success the strings move into c. */
static int read_listen(struct config *c, const struct key *k, const config_setting_t *s,
                       struct load_ctx *ctx)
{
    unsigned line = config_setting_source_line(s);
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_ARRAY) {
        set_err(ctx, line, "%s: must be a list or array of address strings (got %s)", k->name,
                type_name(s));
        return -1;
    }
    int n = config_setting_length(s);
    if (n == 0) {
        set_err(ctx, line, "%s: needs at least one address", k->name);
        return -1;
    }
    if (n > CONFIG_LISTEN_MAX) {
        set_err(ctx, line, "%s: at most %d addresses (got %d)", k->name, CONFIG_LISTEN_MAX, n);
        return -1;
    }

    struct net_addr addrs[CONFIG_LISTEN_MAX];
    char **list = calloc((size_t)n, sizeof(*list));
    if (list == NULL) {
        set_err(ctx, line, "%s: out of memory", k->name);
        return -1;
    }
    int i;
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        unsigned eline = config_setting_source_line(e);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            set_err(ctx, eline, "%s[%d]: must be a string (got %s)", k->name, i, type_name(e));
            goto fail;
        }
        const char *text = config_setting_get_string(e);
        enum proto_kind kind;
        const char *address;
        if (proto_parse_listen(text, &kind, &address) < 0) {
            set_err(ctx, eline, "%s[%d]: unknown protocol in \"%s\" (framed://, raw:// or http://)",
                    k->name, i, text);
            goto fail;
        }
        if (proto_ops_of(kind) == NULL) {
            set_err(ctx, eline, "%s[%d]: protocol %s is not served by this build", k->name, i,
                    proto_name(kind));
            goto fail;
        }
        char why[128];
        if (net_addr_parse(address, &addrs[i], why, sizeof(why)) < 0) {
            set_err(ctx, eline, "%s[%d]: bad address \"%s\": %s", k->name, i, text, why);
            goto fail;
        }
        for (int j = 0; j < i; j++) {
            if (strcmp(list[j], text) == 0 || same_addr(&addrs[j], &addrs[i])) {
                set_err(ctx, eline, "%s[%d]: \"%s\" is the same address as %s[%d]", k->name,
                        i, text, k->name, j);
                goto fail;
            }
        }
        list[i] = strdup(text);
        if (list[i] == NULL) {
            set_err(ctx, eline, "%s: out of memory", k->name);
            goto fail;
        }
    }
    free_listen(c);
    c->listen = list;
    c->nlisten = (size_t)n;
    return 0;

fail:
    for (int j = 0; j < i; j++)
        free(list[j]);
    free(list);
    return -1;
}

static int read_setting(struct config *c, const struct key *k, const config_setting_t *s,
                        struct load_ctx *ctx)
{
    switch (k->type) {
    case KEY_LISTEN: return read_listen(c, k, s, ctx);
    case KEY_INT: return read_int(c, k, s, ctx);
    case KEY_SECONDS: return read_seconds(c, k, s, ctx);
    case KEY_BOOL: return read_bool(c, k, s, ctx);
    case KEY_LOG_LEVEL: return read_log_level(c, k, s, ctx);
    case KEY_USER: return read_user(c, k, s, ctx);
    }
    return -1;
}

static const struct key *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* ---- text before libconfig sees it ---- */

static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static bool is_hex(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}
static bool is_name_start(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '*';
}
static bool is_name_char(char ch)
{
    return is_name_start(ch) || is_digit(ch) || ch == '-' || ch == '_';
}

/* Length of the number token at p (libconfig's rules: [+-]?digits, 0x hex,
 * floats with '.' or an exponent); *is_int tells whether it is an integer
 * literal still lacking the L suffix. */
static size_t scan_number(const char *p, bool *is_int)
{
    size_t i = 0;
    *is_int = false;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && is_hex(p[2])) {
        i = 2;
        while (is_hex(p[i]))
            i++;
        *is_int = p[i] != 'L';
        return i;
    }
    if (p[i] == '+' || p[i] == '-')
        i++;
    while (is_digit(p[i]))
        i++;
    bool is_float = false;
    if (p[i] == '.') {
        is_float = true;
        i++;
        while (is_digit(p[i]))
            i++;
    }
    size_t e = i;
    if (p[e] == 'e' || p[e] == 'E') {
        e++;
        if (p[e] == '+' || p[e] == '-')
            e++;
        if (is_digit(p[e])) {
            is_float = true;
            while (is_digit(p[e]))
                e++;
            i = e;
        }
    }
    *is_int = !is_float && p[i] != 'L';
    return i;
}

/* Copy text with an L after every integer literal that lacks one (see the
 * file comment), leaving strings and comments alone. Refuses @include. Returns
 * a new string, or NULL with the error set. */
static char *widen_integers(const char *text, struct load_ctx *ctx)
{
    size_t len = strlen(text);
    /* Worst case "1,1,1...": one L per two input bytes, so 2 * len covers it. */
    char *out = malloc(2 * len + 1);
    if (out == NULL) {
        set_err(ctx, 0, "out of memory");
        return NULL;
    }
    const char *p = text;
    char *o = out;
    unsigned line = 1;
    while (*p != '\0') {
        char ch = *p;
        if (ch == '"') {
            unsigned first = line;
            *o++ = *p++;
            while (*p != '\0' && *p != '"') {
                if (*p == '\n')
                    line++;
                if (*p == '\\' && p[1] != '\0')
                    *o++ = *p++;
                *o++ = *p++;
            }
            if (*p != '"') {
                /* Caught here: libconfig 1.5 leaks the string it was building. */
                set_err(ctx, first, "unterminated string");
                free(out);
                return NULL;
            }
            *o++ = *p++;
        } else if (ch == '#' || (ch == '/' && p[1] == '/')) {
            while (*p != '\0' && *p != '\n')
                *o++ = *p++;
        } else if (ch == '/' && p[1] == '*') {
            *o++ = *p++;
            *o++ = *p++;
            while (*p != '\0' && !(p[0] == '*' && p[1] == '/')) {
                if (*p == '\n')
                    line++;
                *o++ = *p++;
            }
            if (*p != '\0') {
                *o++ = *p++;
                *o++ = *p++;
            }
        } else if (ch == '@' && strncmp(p, "@include", strlen("@include")) == 0) {
            set_err(ctx, line, "@include is not supported: keep the configuration in one file");
            free(out);
            return NULL;
        } else if (is_name_start(ch)) {
            while (is_name_char(*p))
                *o++ = *p++;
        } else if (is_digit(ch) || ch == '.' ||
                   ((ch == '+' || ch == '-') && (is_digit(p[1]) || p[1] == '.'))) {
            bool add_l;
            size_t n = scan_number(p, &add_l);
            memcpy(o, p, n);
            o += n;
            p += n;
            if (add_l)
                *o++ = 'L';
        } else {
            if (ch == '\n')
                line++;
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

/* ---- loading ---- */

static int load_text(const char *text, const char *name, struct config **out,
                     char *err, size_t errlen)
{
    struct load_ctx ctx = {.name = name != NULL ? name : "(config)", .err = err,
                           .errlen = errlen};
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    *out = NULL;

    char *wide = widen_integers(text, &ctx);
    if (wide == NULL)
        return -1;
    config_t lc;
    config_init(&lc);
    int rc = -1;
    struct config *c = NULL;
    if (config_read_string(&lc, wide) != CONFIG_TRUE) {
        const char *why = config_error_text(&lc);
        set_err(&ctx, (unsigned)config_error_line(&lc), "%s", why != NULL ? why : "syntax error");
        goto done;
    }
    c = config_new_defaults();
    if (c == NULL || (c->path = strdup(ctx.name)) == NULL) {
        set_err(&ctx, 0, "out of memory");
        goto done;
    }
    const config_setting_t *root = config_root_setting(&lc);
    int n = config_setting_length(root);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const struct key *k = find_key(config_setting_name(s));
        if (k == NULL) {
            set_err(&ctx, config_setting_source_line(s), "unknown key '%s'",
                    config_setting_name(s));
            goto done;
        }
        if (read_setting(c, k, s, &ctx) < 0)
            goto done;
    }
    *out = c;
    c = NULL;
    rc = 0;
done:
    if (c != NULL)
        config_free(c);
    config_destroy(&lc);
    free(wide);
    return rc;
}

int config_load_string(const char *text, const char *name, struct config **out,
                       char *err, size_t errlen)
{
    return load_text(text, name, out, err, errlen);
}

int config_load_file(const char *path, struct config **out, char *err, size_t errlen)
{
    struct load_ctx ctx = {.name = path, .err = err, .errlen = errlen};
    *out = NULL;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        set_err(&ctx, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    char *text = malloc(CONFIG_FILE_MAX + 1);
    if (text == NULL) {
        fclose(f);
        set_err(&ctx, 0, "out of memory");
        return -1;
    }
    size_t len = fread(text, 1, CONFIG_FILE_MAX + 1, f);
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    int rc = -1;
    if (read_errno != 0)
        set_err(&ctx, 0, "cannot read: %s", strerror(read_errno));
    else if (len > CONFIG_FILE_MAX)
        set_err(&ctx, 0, "larger than %d bytes", CONFIG_FILE_MAX);
    else if (memchr(text, '\0', len) != NULL)
        set_err(&ctx, 0, "contains a NUL byte; not a text file");
    else {
        text[len] = '\0';
        rc = load_text(text, path, out, err, errlen);
    }
    free(text);
    return rc;
}

/* ---- comparing and describing ---- */

static bool key_equal(const struct config *a, const struct config *b, const struct key *k)
{
    switch (k->type) {
    case KEY_LISTEN:
        if (a->nlisten != b->nlisten)
            return false;
        for (size_t i = 0; i < a->nlisten; i++)
            if (strcmp(a->listen[i], b->listen[i]) != 0)
                return false;
        return true;
    case KEY_INT:
        return load_int(a, k) == load_int(b, k);
    case KEY_SECONDS:
        return *(const double *)cfield_of(a, k) == *(const double *)cfield_of(b, k);
    case KEY_BOOL:
        return *(const bool *)cfield_of(a, k) == *(const bool *)cfield_of(b, k);
    case KEY_LOG_LEVEL:
        return *(const enum log_level *)cfield_of(a, k) ==
               *(const enum log_level *)cfield_of(b, k);
    case KEY_USER:
        return strcmp(*(char *const *)cfield_of(a, k), *(char *const *)cfield_of(b, k)) == 0;
    }
    return false;
}

void config_restart_keys(const struct config *a, const struct config *b, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    out[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        if (!keys[i].restart || key_equal(a, b, &keys[i]))
            continue;
        int n = snprintf(out + used, outlen - used, "%s%s", used > 0 ? ", " : "",
                         keys[i].name);
        if (n < 0 || (size_t)n >= outlen - used)
            return;     /* truncated, still terminated */
        used += (size_t)n;
    }
}

static void describe_type(const struct key *k, char *out, size_t outlen)
{
    switch (k->type) {
    case KEY_LISTEN: snprintf(out, outlen, "list of strings"); return;
    case KEY_INT:
        snprintf(out, outlen, "integer %lld..%lld", (long long)k->min, (long long)k->max);
        return;
    case KEY_SECONDS:
        snprintf(out, outlen, "seconds %lld..%lld", (long long)k->min, (long long)k->max);
        return;
    case KEY_BOOL: snprintf(out, outlen, "true | false"); return;
    case KEY_LOG_LEVEL: snprintf(out, outlen, "string"); return;
    case KEY_USER: snprintf(out, outlen, "string"); return;
    }
}

static void describe_default(const struct key *k, char *out, size_t outlen)
{
    switch (k->type) {
    case KEY_LISTEN: snprintf(out, outlen, "[ \"%s\" ]", k->def_text); return;
    case KEY_INT: snprintf(out, outlen, "%lld", (long long)k->def_int); return;
    case KEY_SECONDS: snprintf(out, outlen, "%g", k->def_seconds); return;
    case KEY_BOOL: snprintf(out, outlen, "%s", k->def_bool ? "true" : "false"); return;
    case KEY_LOG_LEVEL:
    case KEY_USER: snprintf(out, outlen, "\"%s\"", k->def_text); return;
    }
}

void config_print_keys(FILE *f)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        char type[64], def[64];
        describe_type(k, type, sizeof(type));
        describe_default(k, def, sizeof(def));
        fprintf(f, "  %-26s %-26s default %s%s\n", k->name, type, def,
                k->restart ? " (restart to change)" : "");
        fprintf(f, "  %-26s %s\n", "", k->help);
    }
}
