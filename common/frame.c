/* frame.c - the wire format: header encoding and the incremental decoder.
 *
 * The decoder is a small state machine over (HEADER, PAYLOAD, OPEN, ERROR).
 * It never copies payload: a PAYLOAD event points into the caller's bytes,
 * which is what lets the daemon stream an ECHO of any size through a fixed
 * buffer.
 */
#include "common/frame.h"

#include <string.h>

void frame_header_encode(uint8_t out[FRAME_HEADER_SIZE], uint8_t type, uint32_t length)
{
    out[0] = type;
    out[1] = (uint8_t)(length >> 24);
    out[2] = (uint8_t)(length >> 16);
    out[3] = (uint8_t)(length >> 8);
    out[4] = (uint8_t)length;
}

void frame_header_decode(const uint8_t in[FRAME_HEADER_SIZE], uint8_t *type, uint32_t *length)
{
    *type = in[0];
    *length = (uint32_t)in[1] << 24 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 8 | in[4];
}

void frame_decoder_init(struct frame_decoder *d, uint32_t max_frame_size)
{
    memset(d, 0, sizeof(*d));
    d->state = FRAME_DEC_HEADER;
    d->max_frame_size = max_frame_size;
}

bool frame_decoder_in_frame(const struct frame_decoder *d)
{
    switch (d->state) {
    case FRAME_DEC_HEADER:
        return d->header_have > 0;
    case FRAME_DEC_PAYLOAD:
    case FRAME_DEC_OPEN:
        return true;
    default:
        return false;
    }
}

size_t frame_echo_run(const uint8_t *buf, size_t size, size_t limit, uint32_t max_frame_size,
                      uint32_t *count)
{
    size_t off = 0;
    uint32_t n = 0;
    if (limit > size)
        limit = size;
    while (limit - off >= FRAME_HEADER_SIZE && buf[off] == FRAME_ECHO) {
        uint8_t type;
        uint32_t length;
        frame_header_decode(buf + off, &type, &length);
        if (length == FRAME_OPEN_LENGTH || length > max_frame_size ||
            length > limit - off - FRAME_HEADER_SIZE)
            break;
        off += FRAME_HEADER_SIZE + length;
        n++;
    }
    *count = n;
    return off;
}

void frame_decoder_unread(struct frame_decoder *d, size_t n)
{
    /* An open-length payload has no count to restore. */
    if (d->state == FRAME_DEC_PAYLOAD)
        d->remaining += (uint32_t)n;
}

void frame_decoder_skip(struct frame_decoder *d, size_t n)
{
    if (d->state == FRAME_DEC_PAYLOAD)
        d->remaining -= (uint32_t)n;
}

void frame_decoder_truncation(const struct frame_decoder *d, uint64_t *got, uint64_t *want)
{
    if (d->state == FRAME_DEC_PAYLOAD) {
        *got = (uint64_t)d->length - d->remaining;
        *want = d->length;
    } else {
        *got = d->header_have;
        *want = FRAME_HEADER_SIZE;
    }
}

/* A complete header is in d->header: validate it and enter the payload. */
static void decode_header_done(struct frame_decoder *d, struct frame_event *ev)
{
    frame_header_decode(d->header, &d->type, &d->length);
    d->header_have = 0;
    ev->type = d->type;
    ev->length = d->length;

    if (d->length == FRAME_OPEN_LENGTH) {
        if (d->type != FRAME_ECHO) {
            d->state = FRAME_DEC_ERROR;
            ev->kind = FRAME_EV_OPEN_NOT_ECHO;
            return;
        }
        d->state = FRAME_DEC_OPEN;
    } else if (d->length > d->max_frame_size) {
        d->state = FRAME_DEC_ERROR;
        ev->kind = FRAME_EV_TOO_LARGE;
        return;
    } else {
        d->state = FRAME_DEC_PAYLOAD;
        d->remaining = d->length;
    }
    ev->kind = FRAME_EV_HEADER;
}

size_t frame_decode(struct frame_decoder *d, const uint8_t *buf, size_t size,
                    struct frame_event *ev)
{
    ev->kind = FRAME_EV_NONE;
    ev->data = NULL;
    ev->size = 0;

    switch (d->state) {
    case FRAME_DEC_HEADER: {
        if (size == 0)
            return 0;
        /* Headers may arrive split anywhere; gather them in d->header. */
        size_t need = FRAME_HEADER_SIZE - d->header_have;
        size_t take = size < need ? size : need;
        memcpy(d->header + d->header_have, buf, take);
        d->header_have = (uint8_t)(d->header_have + take);
        if (d->header_have == FRAME_HEADER_SIZE)
            decode_header_done(d, ev);
        return take;
    }
    case FRAME_DEC_PAYLOAD:
        if (d->remaining == 0) {
            ev->kind = FRAME_EV_END;
            ev->type = d->type;
            ev->length = d->length;
            d->state = FRAME_DEC_HEADER;
            return 0;
        }
        if (size == 0)
            return 0;
        ev->kind = FRAME_EV_PAYLOAD;
        ev->type = d->type;
        ev->data = buf;
        ev->size = size < d->remaining ? size : d->remaining;
        d->remaining -= (uint32_t)ev->size;
        return ev->size;
    case FRAME_DEC_OPEN:
        if (size == 0)
            return 0;
        ev->kind = FRAME_EV_PAYLOAD;
        ev->type = d->type;
        ev->data = buf;
        ev->size = size;
        return size;
    default:
        ev->type = d->type;
        ev->length = d->length;
        return 0;
    }
}
