/* fuzz_config.c - libFuzzer target for the configuration loader
 * (server/config.c): any text must load or be refused with a "NAME:..."
 * message, never crash or leak; a loaded snapshot must hold values inside
 * every key's range.
 *
 * Host names in `listen` resolve to nothing here (getaddrinfo below), so the
 * fuzzer sends no DNS queries; numeric and unix addresses are parsed as usual.
 *
 * One leak is libconfig 1.5's own and is suppressed: a string token the
 * grammar rejects (`a = 1 "x";`, a lone `"x"`, `a "" = 1;`) is never freed
 * by its parser (up to 64 bytes per failed load, allocated by its scanner:
 * strbuf_append, or libconfig_yylex for an empty string). Leaks of anything
 * else, settings included, still fail the run.
 */
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"

/* The name errors must start with. */
#define FUZZ_NAME "fuzz.conf"
/* Longest input tried: a config file is a page of text. */
#define FUZZ_INPUT_MAX 65536

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    (void)node;
    (void)service;
    (void)hints;
    *res = NULL;
    return EAI_NONAME;
}

const char *__lsan_default_suppressions(void);

const char *__lsan_default_suppressions(void)
{
    return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

static void check_snapshot(const struct config *c)
{
    /* Ranges of contract.md; a violation is a loader bug. */
    if (c->nlisten < 1 || c->nlisten > CONFIG_LISTEN_MAX || c->workers > 1024 ||
        c->backlog < 1 || c->backlog > 65535 || c->max_connections < 1 ||
        c->max_connections > 1000000 || c->max_frame_size < 1 ||
        c->max_frame_size == UINT32_MAX || c->user == NULL)
        abort();
    const double t[] = {c->idle_timeout, c->read_timeout, c->write_timeout, c->drain_timeout};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (!(t[i] >= 0 && t[i] <= 31536000))
            abort();
    for (size_t i = 0; i < c->nlisten; i++)
        if (c->listen[i] == NULL || c->listen[i][0] == '\0')
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_INPUT_MAX)
        return 0;
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    struct config *c = NULL;
    char err[CONFIG_ERR_MAX];
    if (config_load_string(text, FUZZ_NAME, &c, err, sizeof(err)) == 0) {
        if (c == NULL)
            abort();
        check_snapshot(c);
        struct config *d = config_new_defaults();
        char restart[128];
        if (d != NULL)
            config_restart_keys(d, c, restart, sizeof(restart));
        config_unref(d);
        config_unref(config_ref(c));
        config_unref(c);
    } else if (c != NULL || strncmp(err, FUZZ_NAME ":", strlen(FUZZ_NAME ":")) != 0 ||
               strlen(err) == strlen(FUZZ_NAME ":")) {
        abort();
    }
    free(text);
    return 0;
}
