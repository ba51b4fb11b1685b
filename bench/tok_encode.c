/*
 * tok_encode.c — `zmlx-tok_encode TOKENIZER FILE [--repeat N]`: single-thread encode
 * throughput of zmlx's tokenizer on a text file, one line (a JSON string) at a time, as
 * MB/s of input text; prints the total id count so the result can be checked against
 * another implementation.  A benchmark, not a test (bench/tokenizer_encode.sh runs it).
 */
#include "zmlx.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: zmlx-tok_encode TOKENIZER FILE.jsonl [--repeat N]\n");
        return 2;
    }
    int repeat = argc > 4 && !strcmp(argv[3], "--repeat") ? atoi(argv[4]) : 3;
    zmlx_tokenizer *t = NULL;
    char err[ZMLX_ERR_MAX];
    if (zmlx_tokenizer_load(argv[1], &t, err, sizeof err) != ZMLX_OK) {
        fprintf(stderr, "zmlx-tok_encode: %s\n", err);
        return 2;
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        fprintf(stderr, "zmlx-tok_encode: cannot open %s\n", argv[2]);
        return 2;
    }
    size_t n_lines = 0, cap = 1024, bytes = 0;
    char **lines = malloc(cap * sizeof *lines);
    size_t *lens = malloc(cap * sizeof *lens);
    char buf[1 << 16];
    while (fgets(buf, sizeof buf, f)) {
        json_t *j = json_loads(buf, JSON_DECODE_ANY, NULL);
        if (!json_is_string(j)) {
            json_decref(j);
            continue;
        }
        if (n_lines == cap) {
            cap *= 2;
            lines = realloc(lines, cap * sizeof *lines);
            lens = realloc(lens, cap * sizeof *lens);
        }
        lens[n_lines] = json_string_length(j);
        lines[n_lines] = malloc(lens[n_lines] + 1);
        memcpy(lines[n_lines], json_string_value(j), lens[n_lines] + 1);
        bytes += lens[n_lines++];
        json_decref(j);
    }
    fclose(f);
    size_t id_cap = 1 << 20, total = 0;
    int32_t *ids = malloc(id_cap * sizeof *ids);
    double best = 1e30;
    for (int r = 0; r < repeat; r++) {
        total = 0;
        double t0 = now_s();
        for (size_t i = 0; i < n_lines; i++) {
            size_t n = 0;
            if (zmlx_tokenizer_encode(t, lines[i], lens[i], 1, ids, id_cap, &n) != ZMLX_OK) {
                fprintf(stderr, "zmlx-tok_encode: line %zu failed\n", i + 1);
                return 1;
            }
            total += n;
        }
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    printf("{\"impl\":\"zmlx\",\"lines\":%zu,\"bytes\":%zu,\"ids\":%zu,\"seconds\":%.4f,\"MBps\":%.2f}\n",
           n_lines, bytes, total, best, (double)bytes / best * 1e-6);
    for (size_t i = 0; i < n_lines; i++) free(lines[i]);
    free(lines);
    free(lens);
    free(ids);
    zmlx_tokenizer_free(t);
    return 0;
}
