/* fuzz_frame.c - libFuzzer target for the frame decoder (common/frame.c).
 *
 * Input layout:  [max] [n] [n chunk sizes] [stream...]
 *   max    the decoder's max_frame_size (255 stands for the largest allowed,
 *          0xFFFFFFFE), so both small limits and huge frames are reached;
 *   n      low 4 bits: how many chunk-size bytes follow (0: one chunk);
 *   sizes  the stream is fed in chunks of these sizes, used in turn (a 0 is
 *          an empty feed).
 * Checked: a call never consumes more than it was given; a PAYLOAD is exactly
 * the bytes consumed, in place; events follow HEADER -> PAYLOAD* -> END and a
 * frame's payload never exceeds its announced length; errors come only for
 * what the limits forbid, and nothing follows an error; in_frame and the
 * truncation numbers agree with what was fed; any chunking gives the same
 * events as one feed; frame_echo_run returns only whole, valid ECHO frames.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/frame.h"

/* The max byte meaning "the largest max_frame_size the config allows". */
#define MAX_SELECT_LARGEST 255
/* At most this many chunk-size bytes (low 4 bits of n). */
#define CHUNK_SIZES_MASK 0x0F

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

enum expect { AT_BOUNDARY, IN_PAYLOAD, IN_OPEN, AFTER_ERROR };

/* What the events should look like, tracked independently of the decoder,
 * plus a digest of everything reported so two runs can be compared. */
struct track {
    uint32_t max;
    enum expect state;
    uint8_t type;
    uint32_t length;
    uint64_t remaining;         /* IN_PAYLOAD */
    size_t header_bytes;        /* AT_BOUNDARY: bytes of a header so far */
    uint64_t digest;            /* of every event, payload split ignored */
    uint64_t events;            /* events other than PAYLOAD */
    uint64_t headers;
    bool non_echo;              /* a HEADER of another type than ECHO was seen */
};

static void mix(struct track *t, uint64_t v)
{
    /* FNV-1a over 64-bit words: cheap and order-sensitive. */
    t->digest ^= v;
    t->digest *= UINT64_C(0x100000001b3);
}

static void on_event(struct track *t, const struct frame_decoder *d,
                     const struct frame_event *ev)
{
    if (ev->kind != FRAME_EV_PAYLOAD) {
        t->events++;
        mix(t, (uint64_t)ev->kind << 8 | ev->type);
    }
    switch (ev->kind) {
    case FRAME_EV_HEADER:
        CHECK(t->state == AT_BOUNDARY && t->header_bytes == FRAME_HEADER_SIZE);
        t->header_bytes = 0;
        t->headers++;
        t->non_echo |= ev->type != FRAME_ECHO;
        t->type = ev->type;
        t->length = ev->length;
        mix(t, ev->length);
        if (ev->length == FRAME_OPEN_LENGTH) {
            CHECK(ev->type == FRAME_ECHO);
            t->state = IN_OPEN;
        } else {
            CHECK(ev->length <= t->max);
            t->state = IN_PAYLOAD;
            t->remaining = ev->length;
        }
        CHECK(frame_decoder_in_frame(d));
        break;
    case FRAME_EV_PAYLOAD:
        CHECK(t->state == IN_PAYLOAD || t->state == IN_OPEN);
        CHECK(ev->size > 0);
        if (t->state == IN_PAYLOAD) {
            CHECK(ev->size <= t->remaining);
            t->remaining -= ev->size;
        }
        for (size_t i = 0; i < ev->size; i++)
            mix(t, ev->data[i]);
        break;
    case FRAME_EV_END:
        CHECK(t->state == IN_PAYLOAD && t->remaining == 0);
        CHECK(ev->type == t->type);
        t->state = AT_BOUNDARY;
        CHECK(!frame_decoder_in_frame(d));
        break;
    case FRAME_EV_TOO_LARGE:
        CHECK(t->state == AT_BOUNDARY && t->header_bytes == FRAME_HEADER_SIZE);
        CHECK(ev->length > t->max && ev->length != FRAME_OPEN_LENGTH);
        mix(t, ev->length);
        t->state = AFTER_ERROR;
        CHECK(!frame_decoder_in_frame(d));
        break;
    case FRAME_EV_OPEN_NOT_ECHO:
        CHECK(t->state == AT_BOUNDARY && t->header_bytes == FRAME_HEADER_SIZE);
        CHECK(ev->length == FRAME_OPEN_LENGTH && ev->type != FRAME_ECHO);
        t->state = AFTER_ERROR;
        CHECK(!frame_decoder_in_frame(d));
        break;
    case FRAME_EV_NONE:
        abort();
    }
}

static void feed(struct frame_decoder *d, struct track *t, const uint8_t *p, size_t n)
{
    size_t off = 0;
    for (;;) {
        struct frame_event ev;
        size_t used = frame_decode(d, p + off, n - off, &ev);
        CHECK(used <= n - off);
        if (t->state == AFTER_ERROR) {
            CHECK(ev.kind == FRAME_EV_NONE && used == 0);
            return;
        }
        if (ev.kind == FRAME_EV_PAYLOAD)
            CHECK(ev.data == p + off && ev.size == used);
        else if (t->state == AT_BOUNDARY)
            t->header_bytes += used;
        else
            CHECK(used == 0);
        off += used;
        if (ev.kind == FRAME_EV_NONE) {
            CHECK(off == n);
            return;
        }
        on_event(t, d, &ev);
    }
}

static void check_truncation(const struct frame_decoder *d, const struct track *t)
{
    uint64_t got = 0, want = 0;
    switch (t->state) {
    case AT_BOUNDARY:
        CHECK(frame_decoder_in_frame(d) == (t->header_bytes > 0));
        if (t->header_bytes > 0) {
            frame_decoder_truncation(d, &got, &want);
            CHECK(got == t->header_bytes && want == FRAME_HEADER_SIZE);
        }
        break;
    case IN_PAYLOAD:
        CHECK(frame_decoder_in_frame(d));
        frame_decoder_truncation(d, &got, &want);
        CHECK(want == t->length && got == t->length - t->remaining);
        break;
    default:
        break;
    }
}

/* The run must decode as exactly count whole ECHO frames. */
static void check_echo_run(const uint8_t *p, size_t n, size_t limit, uint32_t max)
{
    uint32_t count = 0;
    size_t run = frame_echo_run(p, n, limit, max, &count);
    CHECK(run <= n && run <= limit);
    struct frame_decoder d;
    frame_decoder_init(&d, max);
    struct track t = {.max = max, .state = AT_BOUNDARY};
    feed(&d, &t, p, run);
    CHECK(t.state == AT_BOUNDARY && t.header_bytes == 0);
    CHECK(!t.non_echo && t.headers == count);
    /* A run ends before an open length: that frame is streamed, not moved whole. */
    CHECK(t.events == 2 * (uint64_t)count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t max = data[0] == MAX_SELECT_LARGEST ? FRAME_OPEN_LENGTH - 1 : data[0];
    size_t nsizes = data[1] & CHUNK_SIZES_MASK;
    if (size < 2 + nsizes)
        return 0;
    const uint8_t *sizes = data + 2;
    const uint8_t *stream = sizes + nsizes;
    size_t len = size - 2 - nsizes;

    /* One feed: the reference. */
    struct frame_decoder whole;
    frame_decoder_init(&whole, max);
    struct track tw = {.max = max, .state = AT_BOUNDARY};
    feed(&whole, &tw, stream, len);
    check_truncation(&whole, &tw);

    /* The same stream in the chunks the input asks for. */
    struct frame_decoder d;
    frame_decoder_init(&d, max);
    struct track tc = {.max = max, .state = AT_BOUNDARY};
    size_t off = 0;
    for (size_t i = 0; off < len; i++) {
        size_t want = nsizes > 0 ? sizes[i % nsizes] : len;
        size_t n = want < len - off ? want : len - off;
        feed(&d, &tc, stream + off, n);
        off += n;
        if (i > 4 * len + 16 && n == 0)
            break;      /* every size byte is 0: the stream cannot advance */
    }
    if (off == len) {
        CHECK(tc.state == tw.state && tc.header_bytes == tw.header_bytes);
        CHECK(tc.remaining == tw.remaining && tc.length == tw.length);
        CHECK(tc.events == tw.events && tc.digest == tw.digest);
        check_truncation(&d, &tc);
    }

    check_echo_run(stream, len, len, max);
    if (nsizes > 0)
        check_echo_run(stream, len, sizes[0], max);
    return 0;
}
