/*
 * tcheck.h — the minimal test harness every C test uses: CHECK macros that count,
 * a closing line "N passed, N failed" (read by CI), and fixture-path helpers.
 * A missing fixture is a failure, never a skip.
 */
#ifndef ZMLX_TCHECK_H
#define ZMLX_TCHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tc_pass, tc_fail;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) {                                                                    \
            tc_pass++;                                                                 \
        } else {                                                                       \
            tc_fail++;                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

#define CHECKF(cond, ...)                                                              \
    do {                                                                               \
        if (cond) {                                                                    \
            tc_pass++;                                                                 \
        } else {                                                                       \
            tc_fail++;                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
        }                                                                              \
    } while (0)

static inline int tc_done(void) {
    printf("%d passed, %d failed\n", tc_pass, tc_fail);
    return tc_fail ? 1 : 0;
}

/* $ZMLX_SHARED/<rel> into buf (the ../shared folder next to the checkout). */
static inline const char *tc_shared(char *buf, size_t n, const char *rel) {
    const char *root = getenv("ZMLX_SHARED");
    snprintf(buf, n, "%s/%s", root ? root : "../shared", rel);
    return buf;
}

/* The model fixture $ZMLX_SHARED/fixtures/models/<name> into buf. */
static inline const char *tc_model_fixture(char *buf, size_t n, const char *name) {
    char rel[512];
    snprintf(rel, sizeof rel, "fixtures/models/%s", name);
    return tc_shared(buf, n, rel);
}

#endif
