/* json_read.c - recursive-descent JSON parsing into nodes (see json_read.h). */
#include "client/json_read.h"

#include <stdlib.h>
#include <string.h>

/* Nesting beyond this is refused (echobench's reports nest 4 deep). */
#define JSON_DEPTH_MAX 64

struct parser {
    const char *s;
    size_t i;
    bool bad;
};

static void skip_ws(struct parser *p)
{
    while (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')
        p->i++;
}

static struct json *node(struct parser *p, enum json_type t)
{
    struct json *j = calloc(1, sizeof(*j));
    if (j == NULL)
        p->bad = true;
    else
        j->type = t;
    return j;
}

static char *parse_string_text(struct parser *p)
{
    /* p->s[p->i] is the opening quote. The result is never longer than the source. */
    size_t start = ++p->i, k = 0, end = start;
    while (p->s[end] != '\0' && p->s[end] != '"')
        end += p->s[end] == '\\' && p->s[end + 1] != '\0' ? 2 : 1;
    char *out = malloc(end - start + 1);
    if (out == NULL) {
        p->bad = true;
        return NULL;
    }
    for (;;) {
        char c = p->s[p->i];
        if (c == '\0' || (unsigned char)c < 0x20) {
            p->bad = true;
            free(out);
            return NULL;
        }
        p->i++;
        if (c == '"')
            break;
        if (c == '\\') {
            char x = p->s[p->i++];
            switch (x) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u':
                /* Our reports escape only control characters: keep the low byte. */
                if (strlen(p->s + p->i) < 4) {
                    p->bad = true;
                    free(out);
                    return NULL;
                }
                c = (char)strtol((char[]){p->s[p->i + 2], p->s[p->i + 3], 0}, NULL, 16);
                p->i += 4;
                break;
            case '"': case '\\': case '/': c = x; break;
            default:
                p->bad = true;
                free(out);
                return NULL;
            }
            /* An escape is at least two source bytes for one output byte. */
        }
        out[k++] = c;
    }
    out[k] = '\0';
    return out;
}

static struct json *parse_value(struct parser *p, int depth);

static struct json *parse_container(struct parser *p, int depth, bool object)
{
    struct json *j = node(p, object ? JSON_OBJECT : JSON_ARRAY);
    if (j == NULL)
        return NULL;
    char close = object ? '}' : ']';
    p->i++;
    skip_ws(p);
    struct json **tail = &j->child;
    if (p->s[p->i] == close) {
        p->i++;
        return j;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(p);
        if (object) {
            if (p->s[p->i] != '"' || (key = parse_string_text(p)) == NULL)
                goto bad;
            skip_ws(p);
            if (p->s[p->i++] != ':') {
                free(key);
                goto bad;
            }
        }
        struct json *v = parse_value(p, depth + 1);
        if (v == NULL) {
            free(key);
            goto bad;
        }
        v->key = key;
        *tail = v;
        tail = &v->next;
        j->n++;
        skip_ws(p);
        if (p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->s[p->i] == close) {
            p->i++;
            return j;
        }
        goto bad;
    }
bad:
    p->bad = true;
    json_free(j);
    return NULL;
}

static struct json *parse_value(struct parser *p, int depth)
{
    if (depth > JSON_DEPTH_MAX) {
        p->bad = true;
        return NULL;
    }
    skip_ws(p);
    char c = p->s[p->i];
    if (c == '{' || c == '[')
        return parse_container(p, depth, c == '{');
    if (c == '"') {
        struct json *j = node(p, JSON_STRING);
        if (j != NULL && (j->str = parse_string_text(p)) == NULL) {
            free(j);
            return NULL;
        }
        return j;
    }
    static const struct { const char *word; enum json_type t; bool b; } words[] = {
        {"true", JSON_BOOL, true}, {"false", JSON_BOOL, false}, {"null", JSON_NULL, false},
    };
    for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
        size_t n = strlen(words[k].word);
        if (strncmp(p->s + p->i, words[k].word, n) == 0) {
            p->i += n;
            struct json *j = node(p, words[k].t);
            if (j != NULL)
                j->b = words[k].b;
            return j;
        }
    }
    char *end;
    double v = strtod(p->s + p->i, &end);
    if (end == p->s + p->i) {
        p->bad = true;
        return NULL;
    }
    struct json *j = node(p, JSON_NUMBER);
    if (j == NULL)
        return NULL;
    j->num = v;
    size_t n = (size_t)(end - (p->s + p->i));
    j->str = malloc(n + 1);
    if (j->str == NULL) {
        free(j);
        p->bad = true;
        return NULL;
    }
    memcpy(j->str, p->s + p->i, n);
    j->str[n] = '\0';
    p->i += n;
    return j;
}

struct json *json_parse(const char *text, size_t *err_at)
{
    struct parser p = {.s = text};
    struct json *j = parse_value(&p, 0);
    if (j != NULL) {
        skip_ws(&p);
        if (p.s[p.i] != '\0') {
            json_free(j);
            j = NULL;
        }
    }
    if (j == NULL && err_at != NULL)
        *err_at = p.i;
    return j;
}

void json_free(struct json *j)
{
    while (j != NULL) {
        struct json *next = j->next;
        json_free(j->child);
        free(j->str);
        free(j->key);
        free(j);
        j = next;
    }
}

const struct json *json_get(const struct json *j, const char *key)
{
    if (j == NULL || j->type != JSON_OBJECT)
        return NULL;
    for (const struct json *c = j->child; c != NULL; c = c->next)
        if (strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

double json_num(const struct json *j, const char *key, double def)
{
    const struct json *v = json_get(j, key);
    return v != NULL && v->type == JSON_NUMBER ? v->num : def;
}

uint64_t json_as_u64(const struct json *j)
{
    if (j == NULL || j->type != JSON_NUMBER || j->str[0] == '-')
        return 0;
    return strtoull(j->str, NULL, 10);
}

uint64_t json_u64(const struct json *j, const char *key, uint64_t def)
{
    const struct json *v = json_get(j, key);
    return v != NULL && v->type == JSON_NUMBER ? json_as_u64(v) : def;
}

const char *json_str(const struct json *j, const char *key, const char *def)
{
    const struct json *v = json_get(j, key);
    return v != NULL && v->type == JSON_STRING ? v->str : def;
}

bool json_bool(const struct json *j, const char *key, bool def)
{
    const struct json *v = json_get(j, key);
    return v != NULL && v->type == JSON_BOOL ? v->b : def;
}
