/* hdr_log.h - HdrHistogram's interval log, written from client/hist.c histograms.
 *
 * hist.c's layout (exact below 256, then 128 buckets per power of two) is
 * bucket for bucket the layout of an HdrHistogram with lowest discernible
 * value 1, 2 significant digits and highest trackable value HIST_MAX_VALUE:
 * both have 30 x 128 counts and hist_index(v) equals HdrHistogram's
 * countsArrayIndex(v). So a histogram is written exactly, with no re-binning:
 * the V2 encoding (a 40-byte header, then the counts as ZigZag LEB128 with
 * runs of zeros as negative lengths), deflated with zlib behind an 8-byte
 * header (the "compressed" cookie), in base64, one interval per line:
 *
 *     #[Histogram log format version 1.3]
 *     #[StartTime: 1764598200.000 (seconds since epoch), Tue Dec  1 14:10:00 2026]
 *     #[BaseTime: 1764598200.000 (seconds since epoch)]
 *     "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
 *     1.000,1.000,0.412,HISTFAAAA...
 *
 * Timestamps are seconds from BaseTime, Interval_Max is in milliseconds (the
 * values are nanoseconds), as HdrHistogram's own tools write and read them.
 */
#ifndef ECHOD_HDR_LOG_H
#define ECHOD_HDR_LOG_H

#include <stddef.h>
#include <stdio.h>

#include "client/hist.h"

/* HdrHistogram's parameters for hist.c's layout. */
#define HDR_SIGNIFICANT_DIGITS 2
#define HDR_LOWEST 1

/* The base64 text of h's compressed V2 encoding into a string the caller
 * frees; NULL when out of memory or zlib fails. */
char *hdr_encode_base64(const struct hist *h);

/* Write the log's header lines; start_unix is the run's start (and base). */
int hdr_log_header(FILE *f, double start_unix);
/* One interval: start and length in seconds from the base time. */
int hdr_log_interval(FILE *f, double start_s, double length_s, const struct hist *h);

#endif
