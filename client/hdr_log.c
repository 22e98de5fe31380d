/* hdr_log.c - HdrHistogram V2 compressed encoding and the interval log
 * (see hdr_log.h). Runs in the main thread once per interval: it allocates.
 */
#include "client/hdr_log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

/* V2 cookies with the word-size bits of the "TLZE" encoding (base | 0x10). */
#define HDR_V2_COOKIE 0x1c849313u
#define HDR_V2_COMPRESSED_COOKIE 0x1c849314u
#define HDR_HEADER_SIZE 40
/* ZigZag LEB128-64b9B needs up to 9 bytes a word. */
#define HDR_WORD_MAX 9

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* HdrHistogram's ZigZag LEB128-64b9B: 7 bits a byte, the 9th byte whole. */
static size_t put_zigzag(uint8_t *p, int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (n < 8 && u >= 0x80) {
        p[n++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    p[n++] = (uint8_t)u;
    return n;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64(const uint8_t *p, size_t n)
{
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (out == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[k++] = b64[(v >> 18) & 63];
        out[k++] = b64[(v >> 12) & 63];
        out[k++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[k++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[k] = '\0';
    return out;
}

char *hdr_encode_base64(const struct hist *h)
{
    /* Counts up to the bucket of the largest value, as HdrHistogram does. */
    size_t limit = h->count > 0 ? hist_index(h->max) + 1 : 0;
    size_t cap = HDR_HEADER_SIZE + limit * HDR_WORD_MAX;
    uint8_t *raw = malloc(cap);
    uLongf zcap = compressBound((uLong)cap);
    uint8_t *z = malloc(8 + zcap);
    char *text = NULL;
    if (raw == NULL || z == NULL)
        goto out;
    size_t n = HDR_HEADER_SIZE;
    for (size_t i = 0; i < limit;) {
        uint64_t c = h->buckets[i++];
        if (c == 0) {
            int64_t zeros = 1;
            while (i < limit && h->buckets[i] == 0) {
                zeros++;
                i++;
            }
            n += put_zigzag(raw + n, zeros > 1 ? -zeros : 0);
        } else {
            n += put_zigzag(raw + n, (int64_t)c);
        }
    }
    put_be32(raw, HDR_V2_COOKIE);
    put_be32(raw + 4, (uint32_t)(n - HDR_HEADER_SIZE));     /* payload length */
    put_be32(raw + 8, 0);                                   /* normalizing index offset */
    put_be32(raw + 12, HDR_SIGNIFICANT_DIGITS);
    put_be64(raw + 16, HDR_LOWEST);
    put_be64(raw + 24, HIST_MAX_VALUE);
    double ratio = 1.0;                     /* integer to double conversion ratio */
    uint64_t bits;
    memcpy(&bits, &ratio, sizeof(bits));
    put_be64(raw + 32, bits);
    if (compress(z + 8, &zcap, raw, (uLong)n) != Z_OK)
        goto out;
    put_be32(z, HDR_V2_COMPRESSED_COOKIE);
    put_be32(z + 4, (uint32_t)zcap);
    text = base64(z, 8 + zcap);
out:
    free(raw);
    free(z);
    return text;
}

int hdr_log_header(FILE *f, double start_unix)
{
    time_t t = (time_t)start_unix;
    char when[64];
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%a %b %d %H:%M:%S UTC %Y", &tm) == 0)
        when[0] = '\0';
    fprintf(f, "#[Histogram log format version 1.3]\n");
    fprintf(f, "#[StartTime: %.3f (seconds since epoch), %s]\n", start_unix, when);
    fprintf(f, "#[BaseTime: %.3f (seconds since epoch)]\n", start_unix);
    fprintf(f, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\","
               "\"Interval_Compressed_Histogram\"\n");
    return ferror(f) ? -1 : 0;
}

int hdr_log_interval(FILE *f, double start_s, double length_s, const struct hist *h)
{
    char *text = hdr_encode_base64(h);
    if (text == NULL)
        return -1;
    fprintf(f, "%.3f,%.3f,%.3f,%s\n", start_s, length_s,
            h->count > 0 ? (double)h->max / 1e6 : 0.0, text);
    free(text);
    return ferror(f) ? -1 : 0;
}
