/* textbuf.h - text written into a caller's buffer with a bound, or only
 * measured.
 *
 * The HTTP response heads, the format=json object and the /metrics page are
 * all rendered into a buffer the caller lends. A textbuf appends until the
 * bound, then remembers that something did not fit (ok = false) instead of
 * writing past it, so a renderer writes straight through and checks once at
 * the end. With p == NULL it only counts, which gives the exact size a
 * rendering will take before any byte is written.
 */
#ifndef ECHOD_TEXTBUF_H
#define ECHOD_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct textbuf {
    char *p;            /* NULL: count only */
    size_t cap, len;
    bool ok;            /* everything so far fitted */
};

/* Longest decimal uint64_t (UINT64_MAX). */
#define TEXTBUF_U64_DIGITS 20

static inline struct textbuf textbuf_into(char *p, size_t cap)
{
    return (struct textbuf){.p = p, .cap = cap, .len = 0, .ok = true};
}

static inline struct textbuf textbuf_measure(void)
{
    return (struct textbuf){.p = NULL, .cap = 0, .len = 0, .ok = true};
}

static inline bool textbuf_measuring(const struct textbuf *t)
{
    return t->p == NULL;
}

static inline void textbuf_put(struct textbuf *t, const char *s, size_t n)
{
    if (n == 0)
        return;     /* s may be NULL then (an empty span), which memcpy does not allow */
    if (!textbuf_measuring(t)) {
        if (!t->ok || n > t->cap - t->len) {
            t->ok = false;
            return;
        }
        memcpy(t->p + t->len, s, n);
    }
    t->len += n;
}

#define TEXTBUF_LIT(t, lit) textbuf_put((t), (lit), sizeof(lit) - 1)

static inline void textbuf_put_u64(struct textbuf *t, uint64_t v)
{
    char tmp[TEXTBUF_U64_DIGITS];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    textbuf_put(t, tmp + i, sizeof(tmp) - i);
}

#endif
