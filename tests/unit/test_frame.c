/* test_frame.c - the wire codec (common/frame.c): one multi-frame stream cut at
 * every split point (and fed a byte at a time) must give the same events and
 * payload bytes; every error path; truncation info; header byte order; the
 * ECHO run finder and unread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/frame.h"

/* Enough for the test streams' events and payload bytes. */
#define MAX_EVENTS 64
#define MAX_BYTES 256
/* The limit the decoders in these tests use unless a test says otherwise. */
#define TEST_MAX_FRAME 100

/* Events with consecutive PAYLOAD chunks merged, so that any split of the
 * input gives the same record. */
struct rec_event {
    enum frame_event_kind kind;
    uint8_t type;
    uint32_t length;
    size_t off, size;       /* PAYLOAD: its bytes in rec.bytes */
};

struct rec {
    struct rec_event ev[MAX_EVENTS];
    size_t nev;
    uint8_t bytes[MAX_BYTES];
    size_t nbytes;
    bool errored;
};

static void rec_add(struct rec *r, const struct frame_event *ev)
{
    if (ev->kind == FRAME_EV_PAYLOAD) {
        assert_true(ev->size > 0);
        assert_true(r->nbytes + ev->size <= MAX_BYTES);
        memcpy(r->bytes + r->nbytes, ev->data, ev->size);
        r->nbytes += ev->size;
        if (r->nev > 0 && r->ev[r->nev - 1].kind == FRAME_EV_PAYLOAD) {
            r->ev[r->nev - 1].size += ev->size;
            return;
        }
    }
    assert_true(r->nev < MAX_EVENTS);
    struct rec_event *e = &r->ev[r->nev++];
    e->kind = ev->kind;
    e->type = ev->kind == FRAME_EV_PAYLOAD ? 0 : ev->type;
    e->length = ev->kind == FRAME_EV_PAYLOAD ? 0 : ev->length;
    e->off = r->nbytes - (ev->kind == FRAME_EV_PAYLOAD ? ev->size : 0);
    e->size = ev->kind == FRAME_EV_PAYLOAD ? ev->size : 0;
}

static bool is_error(enum frame_event_kind k)
{
    return k == FRAME_EV_TOO_LARGE || k == FRAME_EV_OPEN_NOT_ECHO;
}

/* Feed one chunk, recording events until the decoder wants more input. */
static void feed(struct frame_decoder *d, const uint8_t *p, size_t n, struct rec *r)
{
    size_t off = 0;
    for (;;) {
        struct frame_event ev;
        size_t used = frame_decode(d, p + off, n - off, &ev);
        assert_true(used <= n - off);
        if (r->errored) {
            /* Nothing after an error: no event, no byte taken. */
            assert_int_equal(ev.kind, FRAME_EV_NONE);
            assert_int_equal(used, 0);
            return;
        }
        if (ev.kind == FRAME_EV_PAYLOAD) {
            /* A payload chunk is exactly the bytes consumed, in place. */
            assert_ptr_equal(ev.data, p + off);
            assert_int_equal(ev.size, used);
        }
        off += used;
        if (ev.kind == FRAME_EV_NONE) {
            assert_int_equal(off, n);
            return;
        }
        rec_add(r, &ev);
        if (is_error(ev.kind))
            r->errored = true;
    }
}

static void assert_rec_equal(const struct rec *a, const struct rec *b)
{
    assert_int_equal(a->nev, b->nev);
    for (size_t i = 0; i < a->nev; i++) {
        assert_int_equal(a->ev[i].kind, b->ev[i].kind);
        assert_int_equal(a->ev[i].type, b->ev[i].type);
        assert_int_equal(a->ev[i].length, b->ev[i].length);
        assert_int_equal(a->ev[i].off, b->ev[i].off);
        assert_int_equal(a->ev[i].size, b->ev[i].size);
    }
    assert_int_equal(a->nbytes, b->nbytes);
    assert_memory_equal(a->bytes, b->bytes, a->nbytes);
    assert_int_equal(a->errored, b->errored);
}

/* A stream builder. */
struct stream {
    uint8_t b[MAX_BYTES];
    size_t n;
};

static void put_frame(struct stream *s, uint8_t type, uint32_t length, const char *payload)
{
    size_t plen = payload != NULL ? strlen(payload) : 0;
    assert_true(s->n + FRAME_HEADER_SIZE + plen <= sizeof(s->b));
    frame_header_encode(s->b + s->n, type, length);
    s->n += FRAME_HEADER_SIZE;
    if (plen > 0)
        memcpy(s->b + s->n, payload, plen);
    s->n += plen;
}

/* E "abc", P (0), S "xy", unknown 'Z' "1234", E (0), then an open-length E
 * whose payload runs to the end. */
static void build_mixed(struct stream *s)
{
    s->n = 0;
    put_frame(s, FRAME_ECHO, 3, "abc");
    put_frame(s, FRAME_PING, 0, NULL);
    put_frame(s, FRAME_STATS, 2, "xy");
    put_frame(s, 'Z', 4, "1234");
    put_frame(s, FRAME_ECHO, 0, NULL);
    put_frame(s, FRAME_ECHO, FRAME_OPEN_LENGTH, "tail, until EOF");
}

static void decode_whole(const uint8_t *p, size_t n, uint32_t max, struct rec *r)
{
    struct frame_decoder d;
    frame_decoder_init(&d, max);
    memset(r, 0, sizeof(*r));
    feed(&d, p, n, r);
}

static void test_mixed_stream_events(void **state)
{
    (void)state;
    struct stream s;
    build_mixed(&s);
    struct rec r;
    decode_whole(s.b, s.n, TEST_MAX_FRAME, &r);

    static const struct {
        enum frame_event_kind kind;
        uint8_t type;
        uint32_t length;
        const char *payload;
    } want[] = {
        {FRAME_EV_HEADER, 'E', 3, NULL},   {FRAME_EV_PAYLOAD, 0, 0, "abc"},
        {FRAME_EV_END, 'E', 3, NULL},      {FRAME_EV_HEADER, 'P', 0, NULL},
        {FRAME_EV_END, 'P', 0, NULL},      {FRAME_EV_HEADER, 'S', 2, NULL},
        {FRAME_EV_PAYLOAD, 0, 0, "xy"},    {FRAME_EV_END, 'S', 2, NULL},
        {FRAME_EV_HEADER, 'Z', 4, NULL},   {FRAME_EV_PAYLOAD, 0, 0, "1234"},
        {FRAME_EV_END, 'Z', 4, NULL},      {FRAME_EV_HEADER, 'E', 0, NULL},
        {FRAME_EV_END, 'E', 0, NULL},      {FRAME_EV_HEADER, 'E', FRAME_OPEN_LENGTH, NULL},
        {FRAME_EV_PAYLOAD, 0, 0, "tail, until EOF"},
    };
    assert_int_equal(r.nev, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < r.nev; i++) {
        assert_int_equal(r.ev[i].kind, want[i].kind);
        if (want[i].kind == FRAME_EV_PAYLOAD) {
            assert_int_equal(r.ev[i].size, strlen(want[i].payload));
            assert_memory_equal(r.bytes + r.ev[i].off, want[i].payload, r.ev[i].size);
        } else {
            assert_int_equal(r.ev[i].type, want[i].type);
            assert_int_equal(r.ev[i].length, want[i].length);
        }
    }
    assert_false(r.errored);
}

static void test_every_split_point(void **state)
{
    (void)state;
    struct stream s;
    build_mixed(&s);
    struct rec whole;
    decode_whole(s.b, s.n, TEST_MAX_FRAME, &whole);

    for (size_t cut = 0; cut <= s.n; cut++) {
        struct frame_decoder d;
        frame_decoder_init(&d, TEST_MAX_FRAME);
        struct rec r;
        memset(&r, 0, sizeof(r));
        feed(&d, s.b, cut, &r);
        feed(&d, s.b + cut, s.n - cut, &r);
        assert_rec_equal(&whole, &r);
    }
}

/* Every pair of cut points: three pieces, any of them possibly empty. */
static void test_every_pair_of_split_points(void **state)
{
    (void)state;
    struct stream s;
    build_mixed(&s);
    struct rec whole;
    decode_whole(s.b, s.n, TEST_MAX_FRAME, &whole);

    for (size_t a = 0; a <= s.n; a++) {
        for (size_t b = a; b <= s.n; b++) {
            struct frame_decoder d;
            frame_decoder_init(&d, TEST_MAX_FRAME);
            struct rec r;
            memset(&r, 0, sizeof(r));
            feed(&d, s.b, a, &r);
            feed(&d, s.b + a, b - a, &r);
            feed(&d, s.b + b, s.n - b, &r);
            assert_rec_equal(&whole, &r);
        }
    }
}

static void test_one_byte_at_a_time(void **state)
{
    (void)state;
    struct stream s;
    build_mixed(&s);
    struct rec whole;
    decode_whole(s.b, s.n, TEST_MAX_FRAME, &whole);

    struct frame_decoder d;
    frame_decoder_init(&d, TEST_MAX_FRAME);
    struct rec r;
    memset(&r, 0, sizeof(r));
    for (size_t i = 0; i < s.n; i++)
        feed(&d, s.b + i, 1, &r);
    assert_rec_equal(&whole, &r);
}

/* An error in the middle: every split gives the same events up to the error
 * and nothing after it. */
static void test_error_stream_every_split(void **state)
{
    (void)state;
    struct stream s;
    s.n = 0;
    put_frame(&s, FRAME_ECHO, 2, "hi");
    put_frame(&s, FRAME_PING, 0, NULL);
    put_frame(&s, FRAME_ECHO, TEST_MAX_FRAME + 1, "never looked at");
    put_frame(&s, FRAME_PING, 0, NULL);
    struct rec whole;
    decode_whole(s.b, s.n, TEST_MAX_FRAME, &whole);
    assert_true(whole.errored);
    assert_int_equal(whole.nev, 6);
    assert_int_equal(whole.ev[5].kind, FRAME_EV_TOO_LARGE);
    assert_int_equal(whole.ev[5].type, FRAME_ECHO);
    assert_int_equal(whole.ev[5].length, TEST_MAX_FRAME + 1);

    for (size_t cut = 0; cut <= s.n; cut++) {
        struct frame_decoder d;
        frame_decoder_init(&d, TEST_MAX_FRAME);
        struct rec r;
        memset(&r, 0, sizeof(r));
        feed(&d, s.b, cut, &r);
        feed(&d, s.b + cut, s.n - cut, &r);
        assert_rec_equal(&whole, &r);
    }
}

/* ---- limits and errors ---- */

/* Decode one header; return the event. */
static struct frame_event decode_header(struct frame_decoder *d, uint8_t type, uint32_t length)
{
    uint8_t h[FRAME_HEADER_SIZE];
    frame_header_encode(h, type, length);
    struct frame_event ev;
    assert_int_equal(frame_decode(d, h, sizeof(h), &ev), FRAME_HEADER_SIZE);
    return ev;
}

static void test_max_frame_size_boundary(void **state)
{
    (void)state;
    static const uint8_t types[] = {FRAME_ECHO, FRAME_PING, FRAME_STATS, 'Z'};
    for (size_t i = 0; i < sizeof(types); i++) {
        struct frame_decoder d;
        frame_decoder_init(&d, TEST_MAX_FRAME);
        struct frame_event ev = decode_header(&d, types[i], TEST_MAX_FRAME);
        assert_int_equal(ev.kind, FRAME_EV_HEADER);
        assert_int_equal(ev.length, TEST_MAX_FRAME);

        frame_decoder_init(&d, TEST_MAX_FRAME);
        ev = decode_header(&d, types[i], TEST_MAX_FRAME + 1);
        assert_int_equal(ev.kind, FRAME_EV_TOO_LARGE);
        assert_int_equal(ev.type, types[i]);
        assert_int_equal(ev.length, TEST_MAX_FRAME + 1);
    }
    /* The largest limit the config allows: one below the open length. */
    struct frame_decoder d;
    frame_decoder_init(&d, FRAME_OPEN_LENGTH - 1);
    struct frame_event ev = decode_header(&d, FRAME_ECHO, FRAME_OPEN_LENGTH - 1);
    assert_int_equal(ev.kind, FRAME_EV_HEADER);
    assert_int_equal(ev.length, FRAME_OPEN_LENGTH - 1);
    /* A limit of 1: a zero-length and a one-byte frame pass, two bytes do not. */
    frame_decoder_init(&d, 1);
    assert_int_equal(decode_header(&d, FRAME_PING, 0).kind, FRAME_EV_HEADER);
    frame_decoder_init(&d, 1);
    assert_int_equal(decode_header(&d, FRAME_ECHO, 1).kind, FRAME_EV_HEADER);
    frame_decoder_init(&d, 1);
    assert_int_equal(decode_header(&d, FRAME_ECHO, 2).kind, FRAME_EV_TOO_LARGE);
}

static void test_open_length(void **state)
{
    (void)state;
    /* Allowed on ECHO whatever the size limit. */
    struct frame_decoder d;
    frame_decoder_init(&d, 1);
    struct frame_event ev = decode_header(&d, FRAME_ECHO, FRAME_OPEN_LENGTH);
    assert_int_equal(ev.kind, FRAME_EV_HEADER);
    assert_int_equal(ev.type, FRAME_ECHO);
    assert_int_equal(ev.length, FRAME_OPEN_LENGTH);
    assert_true(frame_decoder_in_frame(&d));
    /* The payload has no end: bytes that look like headers are payload too. */
    uint8_t more[2 * FRAME_HEADER_SIZE];
    frame_header_encode(more, FRAME_PING, 0);
    frame_header_encode(more + FRAME_HEADER_SIZE, FRAME_ECHO, 1000);
    assert_int_equal(frame_decode(&d, more, sizeof(more), &ev), sizeof(more));
    assert_int_equal(ev.kind, FRAME_EV_PAYLOAD);
    assert_ptr_equal(ev.data, more);
    assert_int_equal(ev.size, sizeof(more));
    assert_int_equal(frame_decode(&d, more, 0, &ev), 0);
    assert_int_equal(ev.kind, FRAME_EV_NONE);

    static const uint8_t others[] = {FRAME_PING, FRAME_STATS, FRAME_ERROR, 'Z', 0};
    for (size_t i = 0; i < sizeof(others); i++) {
        frame_decoder_init(&d, TEST_MAX_FRAME);
        ev = decode_header(&d, others[i], FRAME_OPEN_LENGTH);
        assert_int_equal(ev.kind, FRAME_EV_OPEN_NOT_ECHO);
        assert_int_equal(ev.type, others[i]);
        assert_int_equal(ev.length, FRAME_OPEN_LENGTH);
    }
}

static void test_no_events_after_error(void **state)
{
    (void)state;
    struct frame_decoder d;
    frame_decoder_init(&d, TEST_MAX_FRAME);
    assert_int_equal(decode_header(&d, FRAME_PING, FRAME_OPEN_LENGTH).kind,
                     FRAME_EV_OPEN_NOT_ECHO);
    assert_false(frame_decoder_in_frame(&d));
    uint8_t h[FRAME_HEADER_SIZE];
    frame_header_encode(h, FRAME_PING, 0);
    for (int i = 0; i < 3; i++) {
        struct frame_event ev;
        assert_int_equal(frame_decode(&d, h, sizeof(h), &ev), 0);
        assert_int_equal(ev.kind, FRAME_EV_NONE);
        assert_int_equal(frame_decode(&d, h, 0, &ev), 0);
        assert_int_equal(ev.kind, FRAME_EV_NONE);
    }
}

/* ---- truncation ---- */

static void test_truncation_in_header(void **state)
{
    (void)state;
    struct frame_decoder d;
    frame_decoder_init(&d, TEST_MAX_FRAME);
    assert_false(frame_decoder_in_frame(&d));
    uint8_t h[FRAME_HEADER_SIZE];
    frame_header_encode(h, FRAME_ECHO, 10);
    for (size_t have = 1; have < FRAME_HEADER_SIZE; have++) {
        struct frame_event ev;
        assert_int_equal(frame_decode(&d, h + have - 1, 1, &ev), 1);
        assert_int_equal(ev.kind, FRAME_EV_NONE);
        assert_true(frame_decoder_in_frame(&d));
        uint64_t got = 0, want = 0;
        frame_decoder_truncation(&d, &got, &want);
        assert_int_equal(got, have);
        assert_int_equal(want, FRAME_HEADER_SIZE);
    }
}

static void test_truncation_in_payload(void **state)
{
    (void)state;
    struct frame_decoder d;
    frame_decoder_init(&d, TEST_MAX_FRAME);
    assert_int_equal(decode_header(&d, FRAME_ECHO, 10).kind, FRAME_EV_HEADER);
    assert_true(frame_decoder_in_frame(&d));
    uint64_t got = 99, want = 0;
    frame_decoder_truncation(&d, &got, &want);
    assert_int_equal(got, 0);
    assert_int_equal(want, 10);

    static const uint8_t part[4] = {1, 2, 3, 4};
    struct frame_event ev;
    assert_int_equal(frame_decode(&d, part, sizeof(part), &ev), sizeof(part));
    assert_int_equal(ev.kind, FRAME_EV_PAYLOAD);
    frame_decoder_truncation(&d, &got, &want);
    assert_int_equal(got, 4);
    assert_int_equal(want, 10);

    /* The rest completes it: no longer in a frame. */
    static const uint8_t rest[6] = {5, 6, 7, 8, 9, 10};
    assert_int_equal(frame_decode(&d, rest, sizeof(rest), &ev), sizeof(rest));
    assert_int_equal(ev.kind, FRAME_EV_PAYLOAD);
    assert_int_equal(frame_decode(&d, rest, 0, &ev), 0);
    assert_int_equal(ev.kind, FRAME_EV_END);
    assert_int_equal(ev.type, FRAME_ECHO);
    assert_false(frame_decoder_in_frame(&d));
}

static void test_in_frame_between_frames(void **state)
{
    (void)state;
    struct stream s;
    s.n = 0;
    put_frame(&s, FRAME_PING, 0, NULL);
    put_frame(&s, FRAME_ECHO, 1, "x");
    struct frame_decoder d;
    frame_decoder_init(&d, TEST_MAX_FRAME);
    struct rec r;
    memset(&r, 0, sizeof(r));
    feed(&d, s.b, s.n, &r);
    assert_int_equal(r.nev, 5);
    assert_false(frame_decoder_in_frame(&d));
}

/* ---- header codec ---- */

static void test_header_big_endian(void **state)
{
    (void)state;
    uint8_t h[FRAME_HEADER_SIZE];
    frame_header_encode(h, FRAME_ECHO, UINT32_C(0x01020304));
    static const uint8_t want[] = {'E', 0x01, 0x02, 0x03, 0x04};
    assert_memory_equal(h, want, sizeof(want));
    frame_header_encode(h, FRAME_PING, FRAME_OPEN_LENGTH);
    static const uint8_t open[] = {'P', 0xFF, 0xFF, 0xFF, 0xFF};
    assert_memory_equal(h, open, sizeof(open));
    frame_header_encode(h, FRAME_ERROR, 300);
    static const uint8_t e300[] = {'!', 0x00, 0x00, 0x01, 0x2C};
    assert_memory_equal(h, e300, sizeof(e300));
}

static void test_header_round_trip(void **state)
{
    (void)state;
    static const uint32_t lengths[] = {0, 1, 0xFF, 0x100, 0xFFFF, 0x10000, 0x01020304,
                                       0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF};
    for (unsigned t = 0; t < 256; t += 17) {
        for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
            uint8_t h[FRAME_HEADER_SIZE];
            frame_header_encode(h, (uint8_t)t, lengths[i]);
            uint8_t type = 0;
            uint32_t length = 0;
            frame_header_decode(h, &type, &length);
            assert_int_equal(type, t);
            assert_int_equal(length, lengths[i]);
        }
    }
    static const uint8_t raw[] = {'S', 0xDE, 0xAD, 0xBE, 0xEF};
    uint8_t type;
    uint32_t length;
    frame_header_decode(raw, &type, &length);
    assert_int_equal(type, 'S');
    assert_int_equal(length, UINT32_C(0xDEADBEEF));
}

/* ---- unread and ECHO runs ---- */

static void test_unread(void **state)
{
    (void)state;
    struct frame_decoder d;
    frame_decoder_init(&d, TEST_MAX_FRAME);
    assert_int_equal(decode_header(&d, FRAME_ECHO, 10).kind, FRAME_EV_HEADER);
    static const uint8_t payload[10] = "0123456789";
    struct frame_event ev;
    assert_int_equal(frame_decode(&d, payload, sizeof(payload), &ev), 10);
    assert_int_equal(ev.size, 10);
    /* Only 6 could be taken; the last 4 come again. */
    frame_decoder_unread(&d, 4);
    assert_true(frame_decoder_in_frame(&d));
    uint64_t got, want;
    frame_decoder_truncation(&d, &got, &want);
    assert_int_equal(got, 6);
    assert_int_equal(want, 10);
    assert_int_equal(frame_decode(&d, payload + 6, 4, &ev), 4);
    assert_int_equal(ev.kind, FRAME_EV_PAYLOAD);
    assert_ptr_equal(ev.data, payload + 6);
    assert_int_equal(frame_decode(&d, payload, 0, &ev), 0);
    assert_int_equal(ev.kind, FRAME_EV_END);
}

static void test_echo_run(void **state)
{
    (void)state;
    struct stream s;
    s.n = 0;
    put_frame(&s, FRAME_ECHO, 3, "abc");        /* 8 bytes */
    put_frame(&s, FRAME_ECHO, 0, NULL);         /* 13 */
    put_frame(&s, FRAME_ECHO, 2, "de");         /* 20 */
    put_frame(&s, FRAME_PING, 0, NULL);         /* 25 */
    put_frame(&s, FRAME_ECHO, 1, "f");
    uint32_t count = 99;

    assert_int_equal(frame_echo_run(s.b, s.n, s.n, TEST_MAX_FRAME, &count), 20);
    assert_int_equal(count, 3);
    /* The limit cuts the third frame: only whole frames count. */
    assert_int_equal(frame_echo_run(s.b, s.n, 19, TEST_MAX_FRAME, &count), 13);
    assert_int_equal(count, 2);
    assert_int_equal(frame_echo_run(s.b, 12, s.n, TEST_MAX_FRAME, &count), 8);
    assert_int_equal(count, 1);
    assert_int_equal(frame_echo_run(s.b, s.n, 4, TEST_MAX_FRAME, &count), 0);
    assert_int_equal(count, 0);
    /* A frame over the size limit ends the run (the decoder reports it). */
    assert_int_equal(frame_echo_run(s.b, s.n, s.n, 2, &count), 0);
    assert_int_equal(count, 0);
    /* A non-ECHO first frame: no run. */
    assert_int_equal(frame_echo_run(s.b + 20, s.n - 20, s.n, TEST_MAX_FRAME, &count), 0);
    assert_int_equal(count, 0);

    s.n = 0;
    put_frame(&s, FRAME_ECHO, 1, "a");
    put_frame(&s, FRAME_ECHO, FRAME_OPEN_LENGTH, "streamed");
    assert_int_equal(frame_echo_run(s.b, s.n, s.n, TEST_MAX_FRAME, &count), 6);
    assert_int_equal(count, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixed_stream_events),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_every_pair_of_split_points),
        cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_error_stream_every_split),
        cmocka_unit_test(test_max_frame_size_boundary),
        cmocka_unit_test(test_open_length),
        cmocka_unit_test(test_no_events_after_error),
        cmocka_unit_test(test_truncation_in_header),
        cmocka_unit_test(test_truncation_in_payload),
        cmocka_unit_test(test_in_frame_between_frames),
        cmocka_unit_test(test_header_big_endian),
        cmocka_unit_test(test_header_round_trip),
        cmocka_unit_test(test_unread),
        cmocka_unit_test(test_echo_run),
    };
    return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
