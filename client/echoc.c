/* echoc.c - the command-line client: one request, its reply, an exit code.
 *
 *     echoc [-H host] [-p port] [-U path] [-4|-6] [-t seconds] [--hex] COMMAND
 *
 * Every command sends one frame, says "no more requests" with
 * shutdown(SHUT_WR) and reads replies to EOF, as the protocol asks. Sending
 * and receiving run together in one poll loop, because the server streams an
 * ECHO back while it is still arriving and stops reading when the client does
 * not read: a client that sent everything first would deadlock on large
 * payloads. `stream` sends stdin as an open-length ECHO and copies the reply to
 * stdout as it comes, binary-safe (nc -N with framing).
 *
 * Limits: `echo` without DATA holds stdin in memory to know the frame length
 * (use `stream` for unbounded input); error and STATS payloads are kept up to
 * REPLY_TEXT_MAX bytes.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/args.h"
#include "common/frame.h"
#include "common/net.h"

enum exit_code {
    EXIT_OK = 0,
    EXIT_SERVER_ERROR = 1,  /* the server answered an error frame */
    EXIT_USAGE = 2,
    EXIT_CONNECTION = 3,    /* connect, timeout, reset, or a reply that breaks the protocol */
};

/* Default -t: long enough for a loaded server, short enough for a script. */
#define DEFAULT_TIMEOUT_S 10.0
#define MAX_TIMEOUT_S 86400.0
/* Bytes moved per read(2)/recv(2). */
#define IO_CHUNK 65536
/* Error texts and STATS JSON kept for printing; the rest is dropped. */
#define REPLY_TEXT_MAX (1024 * 1024)
/* Hex dump layout: bytes per line. */
#define HEX_LINE 16

static const char usage_text[] =
    "usage: echoc [options] COMMAND [ARGS]\n"
    "\n"
    "Send one request to echod and print the reply.\n"
    "\n"
    "commands:\n"
    "  ping              PING; prints PONG\n"
    "  stats             STATS; pretty-prints the server's JSON counters\n"
    "  echo [DATA...]    ECHO of DATA (words joined by spaces), or of stdin when no\n"
    "                    DATA; prints the payload that came back\n"
    "  stream            stdin as an open-length ECHO, the reply copied to stdout as it\n"
    "                    arrives until EOF (binary-safe)\n"
    "  send TYPE [DATA]  a frame of any TYPE (one character, or a byte as 0xNN or a\n"
    "                    decimal number), payload DATA; prints whatever comes back\n"
    "\n"
    "options:\n"
    "  -H HOST       server host name or address (default 127.0.0.1, ::1 with -6)\n"
    "  -p PORT       server port (default 7007)\n"
    "  -U PATH       unix socket path (@name for the abstract namespace)\n"
    "  -4, -6        resolve HOST to IPv4 / IPv6 only\n"
    "  -t SECONDS    connect and reply timeout (default 10; fractions allowed)\n"
    "  --hex         hex dump of every reply frame, header included, instead of payloads\n"
    "  -h, --help    this text\n"
    "\n"
    "Payloads are written raw (a newline is added when stdout is a terminal and the\n"
    "payload does not end with one). Error replies ('!' frames) go to stderr.\n"
    "\n"
    "exit status:\n"
    "  0  success\n"
    "  1  the server answered an error frame (its text is printed on stderr)\n"
    "  2  usage error\n"
    "  3  connection or timeout failure, or a reply that breaks the protocol\n";

struct options {
    struct args_target target;
    double timeout_s;
    bool hex;
};

/* What was sent, so the reply can be checked against it. */
enum command {
    CMD_PING,
    CMD_STATS,
    CMD_ECHO,
    CMD_STREAM,
    CMD_SEND,
};

/* A hex dump that is fed bytes in any split and prints whole lines. */
struct hexdump {
    uint64_t offset;        /* of line[0] in the frame */
    unsigned have;          /* bytes in line[] */
    uint8_t line[HEX_LINE];
};

/* Reply state for the whole connection. */
struct reply {
    enum command cmd;
    bool hex;
    bool tty;               /* stdout is a terminal */
    struct frame_decoder dec;
    struct hexdump dump;
    uint8_t type;           /* of the frame being read */
    uint64_t frames;        /* complete replies */
    uint64_t errors;        /* '!' replies */
    bool open;              /* inside an open-length reply */
    bool last_newline;      /* the last payload byte printed was '\n' */
    bool printed;           /* some payload byte was printed */
    char *text;             /* '!' and 'S' payloads (REPLY_TEXT_MAX at most) */
    size_t text_len;
    size_t text_cap;
};

static void die_usage(const char *fmt, const char *what)
{
    fprintf(stderr, "echoc: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n(see echoc -h)\n");
    exit(EXIT_USAGE);
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static void out_write(const void *p, size_t n)
{
    if (n > 0 && write_all(STDOUT_FILENO, p, n) < 0) {
        fprintf(stderr, "echoc: writing output: %s\n", strerror(errno));
        exit(EXIT_CONNECTION);
    }
}

static void hexdump_flush(struct hexdump *d)
{
    if (d->have == 0)
        return;
    char line[128];
    int n = snprintf(line, sizeof(line), "%08llx ", (unsigned long long)d->offset);
    for (unsigned i = 0; i < HEX_LINE; i++) {
        if (i == HEX_LINE / 2)
            line[n++] = ' ';
        if (i < d->have)
            n += snprintf(line + n, sizeof(line) - (size_t)n, " %02x", d->line[i]);
        else
            n += snprintf(line + n, sizeof(line) - (size_t)n, "   ");
    }
    n += snprintf(line + n, sizeof(line) - (size_t)n, "  |");
    for (unsigned i = 0; i < d->have; i++)
        line[n++] = (d->line[i] >= 0x20 && d->line[i] < 0x7f) ? (char)d->line[i] : '.';
    line[n++] = '|';
    line[n++] = '\n';
    out_write(line, (size_t)n);
    d->offset += d->have;
    d->have = 0;
}

static void hexdump_feed(struct hexdump *d, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t take = HEX_LINE - d->have;
        if (take > n)
            take = n;
        memcpy(d->line + d->have, p, take);
        d->have += (unsigned)take;
        p += take;
        n -= take;
        if (d->have == HEX_LINE)
            hexdump_flush(d);
    }
}

static void text_append(struct reply *r, const uint8_t *p, size_t n)
{
    if (r->text_len + n > REPLY_TEXT_MAX)
        n = REPLY_TEXT_MAX - r->text_len;
    if (r->text_len + n + 1 > r->text_cap) {
        size_t cap = r->text_cap ? r->text_cap : 256;
        while (cap < r->text_len + n + 1)
            cap *= 2;
        char *t = realloc(r->text, cap);
        if (t == NULL) {
            fprintf(stderr, "echoc: out of memory\n");
            exit(EXIT_CONNECTION);
        }
        r->text = t;
        r->text_cap = cap;
    }
    memcpy(r->text + r->text_len, p, n);
    r->text_len += n;
    r->text[r->text_len] = '\0';
}

/* Re-indent compact JSON, two spaces a level; strings pass through untouched. */
static void print_json_pretty(const char *s, size_t n)
{
    FILE *o = stdout;
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            fputc(c, o);
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        switch (c) {
        case '"':
            in_str = true;
            fputc(c, o);
            break;
        case '{':
        case '[': {
            /* Keep empty containers on one line. */
            size_t j = i + 1;
            while (j < n && (s[j] == ' ' || s[j] == '\n' || s[j] == '\t' || s[j] == '\r'))
                j++;
            if (j < n && (s[j] == '}' || s[j] == ']')) {
                fputc(c, o);
                fputc(s[j], o);
                i = j;
                break;
            }
            fputc(c, o);
            depth++;
            fprintf(o, "\n%*s", depth * 2, "");
            break;
        }
        case '}':
        case ']':
            depth--;
            fprintf(o, "\n%*s%c", depth * 2 > 0 ? depth * 2 : 0, "", c);
            break;
        case ',':
            fprintf(o, ",\n%*s", depth * 2, "");
            break;
        case ':':
            fputs(": ", o);
            break;
        case ' ':
        case '\n':
        case '\t':
        case '\r':
            break;
        default:
            fputc(c, o);
        }
    }
    fputc('\n', o);
    fflush(o);
}

/* Where a payload chunk goes depends on the frame type and the command. */
static void reply_payload(struct reply *r, const uint8_t *p, size_t n)
{
    if (r->hex)
        hexdump_feed(&r->dump, p, n);
    if (r->type == FRAME_ERROR || (r->type == FRAME_STATS && !r->hex)) {
        text_append(r, p, n);
        return;
    }
    if (r->hex || n == 0)
        return;
    out_write(p, n);
    r->printed = true;
    r->last_newline = p[n - 1] == '\n';
}

static void reply_header(struct reply *r, uint8_t type, uint32_t length)
{
    r->type = type;
    r->text_len = 0;
    r->open = length == FRAME_OPEN_LENGTH;
    if (r->hex) {
        uint8_t h[FRAME_HEADER_SIZE];
        frame_header_encode(h, type, length);
        r->dump.offset = 0;
        r->dump.have = 0;
        hexdump_feed(&r->dump, h, sizeof(h));
    }
}

static void reply_end(struct reply *r)
{
    r->frames++;
    if (r->hex)
        hexdump_flush(&r->dump);
    if (r->type == FRAME_ERROR) {
        r->errors++;
        fprintf(stderr, "echoc: server error: %.*s\n", (int)r->text_len, r->text ? r->text : "");
    } else if (r->type == FRAME_STATS && !r->hex) {
        print_json_pretty(r->text ? r->text : "", r->text_len);
    } else if (r->type == FRAME_PING && !r->hex && r->cmd == CMD_PING) {
        out_write("PONG\n", 5);
    } else if (!r->hex && r->tty && r->printed && !r->last_newline) {
        out_write("\n", 1);
    }
    r->printed = false;
    r->last_newline = false;
}

/* Feed reply bytes to the decoder; returns false on a reply that breaks the protocol. */
static bool reply_feed(struct reply *r, const uint8_t *p, size_t n)
{
    for (;;) {
        struct frame_event ev;
        size_t used = frame_decode(&r->dec, p, n, &ev);
        p += used;
        n -= used;
        switch (ev.kind) {
        case FRAME_EV_NONE:
            return true;
        case FRAME_EV_HEADER:
            reply_header(r, ev.type, ev.length);
            break;
        case FRAME_EV_PAYLOAD:
            reply_payload(r, ev.data, ev.size);
            break;
        case FRAME_EV_END:
            reply_end(r);
            break;
        default:
            fprintf(stderr, "echoc: malformed reply: open length on a '%c' frame\n", ev.type);
            return false;
        }
    }
}

/* The reply stream ended (EOF): was it complete? */
static bool reply_finish(struct reply *r)
{
    if (r->open) {
        /* An open-length reply ends at EOF by definition. */
        if (r->hex)
            hexdump_flush(&r->dump);
        else if (r->tty && r->printed && !r->last_newline)
            out_write("\n", 1);
        r->frames++;
        return true;
    }
    if (frame_decoder_in_frame(&r->dec)) {
        uint64_t got, want;
        frame_decoder_truncation(&r->dec, &got, &want);
        if (r->hex)
            hexdump_flush(&r->dump);
        fprintf(stderr, "echoc: reply cut short: got %llu of %llu bytes\n",
                (unsigned long long)got, (unsigned long long)want);
        return false;
    }
    if (r->frames == 0) {
        fprintf(stderr, "echoc: connection closed without a reply\n");
        return false;
    }
    return true;
}

/* The request: bytes in memory, optionally followed by stdin until EOF. */
struct request {
    const uint8_t *data;
    size_t len;
    size_t sent;
    bool from_stdin;        /* after data, copy stdin (open-length stream) */
    bool stdin_eof;
    uint8_t chunk[IO_CHUNK];   /* stdin bytes read but not yet sent */
    size_t chunk_len;
    size_t chunk_sent;
};

static bool request_pending(const struct request *q)
{
    return q->sent < q->len || q->chunk_sent < q->chunk_len;
}

static bool request_done(const struct request *q)
{
    return !request_pending(q) && (!q->from_stdin || q->stdin_eof);
}

static int timeout_ms_of(double s)
{
    double ms = ceil(s * 1000.0);
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Send the request and read replies to EOF. Returns an exit code. */
static int exchange(int fd, struct request *q, struct reply *r, double timeout_s)
{
    static uint8_t rbuf[IO_CHUNK];
    bool shut = false;
    for (;;) {
        if (!shut && request_done(q)) {
            if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN) {
                fprintf(stderr, "echoc: shutdown: %s\n", strerror(errno));
                return EXIT_CONNECTION;
            }
            shut = true;
        }
        struct pollfd pfd[2] = {
            {.fd = fd, .events = POLLIN | (request_pending(q) ? POLLOUT : 0)},
            {.fd = STDIN_FILENO, .events = POLLIN},
        };
        /* Read stdin only when the previous chunk is gone: that is what
         * passes the server's backpressure on to our input. */
        bool want_stdin = q->from_stdin && !q->stdin_eof && !request_pending(q);
        /* While we wait for our own input, the server owes us nothing. */
        int wait = want_stdin ? -1 : timeout_ms_of(timeout_s);
        int rc = poll(pfd, want_stdin ? 2 : 1, wait);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "echoc: poll: %s\n", strerror(errno));
            return EXIT_CONNECTION;
        }
        if (rc == 0) {
            fprintf(stderr, "echoc: timed out after %g s waiting for the server\n", timeout_s);
            return EXIT_CONNECTION;
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, rbuf, sizeof(rbuf), 0);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                fprintf(stderr, "echoc: receive: %s\n", strerror(errno));
                return EXIT_CONNECTION;
            }
            if (n == 0) {
                if (!reply_finish(r))
                    return EXIT_CONNECTION;
                if (!shut && !request_done(q))
                    fprintf(stderr, "echoc: the server closed before the request was sent\n");
                return r->errors > 0 ? EXIT_SERVER_ERROR
                                     : (shut ? EXIT_OK : EXIT_CONNECTION);
            }
            if (n > 0 && !reply_feed(r, rbuf, (size_t)n))
                return EXIT_CONNECTION;
        }
        if (request_pending(q) && (pfd[0].revents & POLLOUT)) {
            const uint8_t *p = q->sent < q->len ? q->data + q->sent : q->chunk + q->chunk_sent;
            size_t left = q->sent < q->len ? q->len - q->sent : q->chunk_len - q->chunk_sent;
            ssize_t w = send(fd, p, left, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                /* The server may have answered an error and closed: read on. */
                if (errno == EPIPE || errno == ECONNRESET) {
                    q->len = q->sent;
                    q->chunk_len = q->chunk_sent = 0;
                    q->stdin_eof = true;
                    shut = true;
                    continue;
                }
                fprintf(stderr, "echoc: send: %s\n", strerror(errno));
                return EXIT_CONNECTION;
            }
            if (w > 0) {
                if (q->sent < q->len)
                    q->sent += (size_t)w;
                else
                    q->chunk_sent += (size_t)w;
            }
        }
        if (want_stdin && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(STDIN_FILENO, q->chunk, sizeof(q->chunk));
            if (n < 0 && errno != EINTR && errno != EAGAIN) {
                fprintf(stderr, "echoc: reading stdin: %s\n", strerror(errno));
                return EXIT_CONNECTION;
            }
            if (n == 0)
                q->stdin_eof = true;
            else if (n > 0) {
                q->chunk_len = (size_t)n;
                q->chunk_sent = 0;
            }
        }
    }
}

/* All of stdin in memory, for `echo` without DATA. */
static uint8_t *read_stdin(size_t *len)
{
    size_t cap = IO_CHUNK, n = 0;
    uint8_t *b = malloc(cap);
    for (;;) {
        if (b == NULL) {
            fprintf(stderr, "echoc: out of memory reading stdin\n");
            exit(EXIT_CONNECTION);
        }
        ssize_t r = read(STDIN_FILENO, b + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "echoc: reading stdin: %s\n", strerror(errno));
            exit(EXIT_CONNECTION);
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n >= FRAME_OPEN_LENGTH) {
            fprintf(stderr, "echoc: stdin is longer than a frame can be; use `stream`\n");
            exit(EXIT_USAGE);
        }
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap);
        }
    }
    *len = n;
    return b;
}

/* Words joined by single spaces, like echo(1). */
static uint8_t *join_words(char **words, int count, size_t *len)
{
    size_t n = 0;
    for (int i = 0; i < count; i++)
        n += strlen(words[i]) + 1;
    uint8_t *b = malloc(n + 1);
    if (b == NULL) {
        fprintf(stderr, "echoc: out of memory\n");
        exit(EXIT_CONNECTION);
    }
    size_t off = 0;
    for (int i = 0; i < count; i++) {
        if (i > 0)
            b[off++] = ' ';
        size_t w = strlen(words[i]);
        memcpy(b + off, words[i], w);
        off += w;
    }
    *len = off;
    return b;
}

static uint8_t parse_type(const char *s)
{
    if (s[0] != '\0' && s[1] == '\0')
        return (uint8_t)s[0];
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (*s == '\0' || *end != '\0' || errno != 0 || v > UINT8_MAX)
        die_usage("TYPE must be one character or a byte (0xNN or 0..255): %s", s);
    return (uint8_t)v;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    enum { OPT_HEX = 256 };
    static const struct option longopts[] = {
        {"hex", no_argument, NULL, OPT_HEX},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char err[256];
    o->timeout_s = DEFAULT_TIMEOUT_S;
    o->target.family = AF_UNSPEC;
    int c;
    /* "+": options end at the command, so DATA may start with '-'. */
    while ((c = getopt_long(argc, argv, "+H:p:U:46t:h", longopts, NULL)) != -1) {
        if (args_target_option(c, optarg, &o->target))
            continue;
        switch (c) {
        case 't':
            if (args_parse_seconds(optarg, 0.001, MAX_TIMEOUT_S, &o->timeout_s, err,
                                   sizeof(err)) < 0)
                die_usage("-t: %s", err);
            break;
        case OPT_HEX: o->hex = true; break;
        case 'h':
            fputs(usage_text, stdout);
            exit(EXIT_OK);
        default:
            fputs(usage_text, stderr);
            exit(EXIT_USAGE);
        }
    }
}

int main(int argc, char **argv)
{
    struct options o = {0};
    parse_options(argc, argv, &o);
    if (optind >= argc)
        die_usage("%s", "missing COMMAND");
    const char *name = argv[optind];
    char **rest = argv + optind + 1;
    int nrest = argc - optind - 1;

    /* Build the request frame: header, then the payload in memory. */
    enum command cmd;
    uint8_t type;
    uint8_t *payload = NULL;
    size_t plen = 0;
    if (strcmp(name, "ping") == 0 || strcmp(name, "stats") == 0) {
        if (nrest > 0)
            die_usage("%s takes no arguments", name);
        cmd = name[0] == 'p' ? CMD_PING : CMD_STATS;
        type = name[0] == 'p' ? FRAME_PING : FRAME_STATS;
    } else if (strcmp(name, "echo") == 0) {
        cmd = CMD_ECHO;
        type = FRAME_ECHO;
        payload = nrest > 0 ? join_words(rest, nrest, &plen) : read_stdin(&plen);
    } else if (strcmp(name, "stream") == 0) {
        if (nrest > 0)
            die_usage("%s takes no arguments (it sends stdin)", name);
        cmd = CMD_STREAM;
        type = FRAME_ECHO;
    } else if (strcmp(name, "send") == 0) {
        if (nrest < 1)
            die_usage("%s", "send needs a TYPE");
        cmd = CMD_SEND;
        type = parse_type(rest[0]);
        if (nrest > 1)
            payload = join_words(rest + 1, nrest - 1, &plen);
    } else {
        die_usage("unknown command: %s", name);
        return EXIT_USAGE;
    }
    if (plen >= FRAME_OPEN_LENGTH)
        die_usage("%s", "payload too large for one frame");

    struct net_addr addr;
    char err[256];
    if (args_resolve_target(&o.target, &addr, err, sizeof(err)) < 0) {
        fprintf(stderr, "echoc: %s\n", err);
        return EXIT_CONNECTION;
    }
    signal(SIGPIPE, SIG_IGN);
    int fd = net_connect(&addr, timeout_ms_of(o.timeout_s));
    if (fd < 0) {
        char where[160];
        net_addr_format(&addr, where, sizeof(where));
        fprintf(stderr, "echoc: cannot connect to %s: %s\n", where,
                fd == -ETIMEDOUT ? "timed out" : strerror(-fd));
        return EXIT_CONNECTION;
    }
    if (net_set_nonblock(fd, true) < 0 || net_set_nodelay(fd, true) < 0) {
        fprintf(stderr, "echoc: socket setup: %s\n", strerror(errno));
        return EXIT_CONNECTION;
    }

    uint32_t length = cmd == CMD_STREAM ? FRAME_OPEN_LENGTH : (uint32_t)plen;
    size_t qlen = FRAME_HEADER_SIZE + plen;
    uint8_t *frame = malloc(qlen);
    if (frame == NULL) {
        fprintf(stderr, "echoc: out of memory\n");
        return EXIT_CONNECTION;
    }
    frame_header_encode(frame, type, length);
    if (plen > 0)
        memcpy(frame + FRAME_HEADER_SIZE, payload, plen);
    free(payload);

    static struct request q;
    q.data = frame;
    q.len = qlen;
    q.from_stdin = cmd == CMD_STREAM;

    struct reply r = {.cmd = cmd, .hex = o.hex, .tty = isatty(STDOUT_FILENO) == 1};
    /* The client accepts any reply length: the limit is the server's business. */
    frame_decoder_init(&r.dec, FRAME_OPEN_LENGTH - 1);

    int rc = exchange(fd, &q, &r, o.timeout_s);
    /* Every request but `send` has one right answer type (or an error). */
    if (rc == EXIT_OK && cmd != CMD_SEND && r.type != type) {
        fprintf(stderr, "echoc: unexpected reply type 0x%02x to '%c'\n", r.type, type);
        rc = EXIT_CONNECTION;
    }
    close(fd);
    free(frame);
    free(r.text);
    return rc;
}
