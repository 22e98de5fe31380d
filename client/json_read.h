/* json_read.h - a small JSON reader for `echobench merge`: a whole document
 * into a tree of nodes, then look-ups by key. Not for the load path: it
 * allocates freely and reads files of a few megabytes at most.
 *
 * Numbers keep their text too, so 64-bit counts read back exactly (a double
 * holds integers only to 2^53).
 */
#ifndef ECHOD_JSON_READ_H
#define ECHOD_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
    enum json_type type;
    bool b;
    double num;
    char *str;              /* JSON_STRING: the text, unescaped; JSON_NUMBER: as written */
    char *key;              /* a member of an object: its name */
    struct json *child;     /* arrays and objects: the first element */
    struct json *next;      /* the next element of the parent */
    size_t n;               /* arrays and objects: elements */
};

/* Parse text; NULL on a syntax error (with the offset in *err_at). */
struct json *json_parse(const char *text, size_t *err_at);
void json_free(struct json *j);

/* The member `key` of object j (NULL if j is not an object or has none). */
const struct json *json_get(const struct json *j, const char *key);
/* Typed look-ups with a default when absent or of another type. */
double json_num(const struct json *j, const char *key, double def);
uint64_t json_u64(const struct json *j, const char *key, uint64_t def);
const char *json_str(const struct json *j, const char *key, const char *def);
bool json_bool(const struct json *j, const char *key, bool def);
/* An element's value as an unsigned integer (0 unless a number). */
uint64_t json_as_u64(const struct json *j);

#endif
