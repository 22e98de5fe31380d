/* frame.h - the echod wire format: header encoding and an incremental decoder.
 *
 *     frame = type:u8  length:u32 big-endian  payload:length bytes
 *
 * No I/O here. The decoder is fed whatever bytes arrived (any split: one byte at
 * a time or many frames at once) and reports events: a header, a chunk of
 * payload (pointing into the caller's bytes, never copied), the end of a frame,
 * or a protocol error. It holds at most the 5 header bytes between calls, so
 * memory does not depend on frame size.
 */
#ifndef ECHOD_FRAME_H
#define ECHOD_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_SIZE 5
/* Length value meaning "payload runs until the sender's EOF" (ECHO only). */
#define FRAME_OPEN_LENGTH UINT32_C(0xFFFFFFFF)

enum frame_type {
    FRAME_ECHO = 'E',
    FRAME_PING = 'P',
    FRAME_STATS = 'S',
    FRAME_ERROR = '!',
};

/* Write a 5-byte header into out. */
void frame_header_encode(uint8_t out[FRAME_HEADER_SIZE], uint8_t type, uint32_t length);
/* Read a 5-byte header. */
void frame_header_decode(const uint8_t in[FRAME_HEADER_SIZE], uint8_t *type, uint32_t *length);

enum frame_event_kind {
    FRAME_EV_NONE,          /* all input consumed, more bytes needed */
    FRAME_EV_HEADER,        /* a header: type, length (FRAME_OPEN_LENGTH if open) */
    FRAME_EV_PAYLOAD,       /* data/size: next payload bytes of the current frame */
    FRAME_EV_END,           /* the current frame is complete */
    FRAME_EV_TOO_LARGE,     /* length > max_frame_size (and not open): a 413 */
    FRAME_EV_OPEN_NOT_ECHO, /* open length on a type other than ECHO: a 400 */
};

struct frame_event {
    enum frame_event_kind kind;
    uint8_t type;           /* HEADER, END, errors */
    uint32_t length;        /* HEADER, errors: the announced length */
    const uint8_t *data;    /* PAYLOAD: points into the buffer given to frame_decode */
    size_t size;            /* PAYLOAD */
};

enum frame_decoder_state {
    FRAME_DEC_HEADER,       /* between frames or inside a header */
    FRAME_DEC_PAYLOAD,      /* inside a payload of known length */
    FRAME_DEC_OPEN,         /* inside an open-length payload (ends only at EOF) */
    FRAME_DEC_ERROR,        /* an error was reported; the stream cannot go on */
};

struct frame_decoder {
    uint8_t header[FRAME_HEADER_SIZE];
    uint8_t header_have;    /* header bytes held so far */
    uint8_t state;          /* enum frame_decoder_state */
    uint8_t type;           /* type of the current frame */
    uint32_t length;        /* announced length of the current frame */
    uint32_t remaining;     /* payload bytes still to come (known length) */
    uint32_t max_frame_size;
};

void frame_decoder_init(struct frame_decoder *d, uint32_t max_frame_size);

/* Consume bytes from buf[0..size) and report the next event in *ev.
 * Returns how many bytes were consumed (possibly 0 for END, or for an error).
 * Call again with the rest until it reports FRAME_EV_NONE. A PAYLOAD event's
 * data points into buf. After an error event the decoder stays in the error state. */
size_t frame_decode(struct frame_decoder *d, const uint8_t *buf, size_t size,
                    struct frame_event *ev);

/* The longest prefix of buf[0..size), at most limit bytes, made of whole
 * ECHO frames of known length (not above max_frame_size). An ECHO reply is
 * byte-identical to its request, so such a run is its own reply and can be
 * moved in one piece. *count receives the number of frames. Only valid at a
 * frame boundary. */
size_t frame_echo_run(const uint8_t *buf, size_t size, size_t limit, uint32_t max_frame_size,
                      uint32_t *count);

/* Give back the last n bytes of the PAYLOAD event just reported: the caller
 * could not take them yet and will offer them again. */
void frame_decoder_unread(struct frame_decoder *d, size_t n);

/* n payload bytes of the current frame were moved by the caller without
 * passing through frame_decode (zero-copy streaming); n <= what remains. */
void frame_decoder_skip(struct frame_decoder *d, size_t n);

/* How many payload bytes the current frame still expects (known length). */
static inline uint32_t frame_decoder_remaining(const struct frame_decoder *d)
{
    return d->state == FRAME_DEC_PAYLOAD ? d->remaining : 0;
}

/* True when a frame has started (some header byte seen) and is not complete. */
bool frame_decoder_in_frame(const struct frame_decoder *d);

/* At the peer's EOF in the middle of a frame: how many bytes of the unit that
 * was cut short arrived and how many were announced. Inside a header that is
 * header bytes (got of 5); inside a payload, payload bytes (got of length). */
void frame_decoder_truncation(const struct frame_decoder *d, uint64_t *got, uint64_t *want);

#endif
