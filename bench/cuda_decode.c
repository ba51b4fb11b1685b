/*
 * cuda_decode.c — batch-1 prefill and decode throughput of one model on one backend
 * through the public API (the model is loaded once): for each context length, a warm-up
 * run, then N runs of (prefill the context, decode T greedy tokens); median and range of
 * tok/s, and achieved GB/s = (weight bytes per token + KV-cache bytes read at the mean
 * decode context) x tok/s, against a read bandwidth given with --bw (measured by
 * zmlx-cuda_bw or zmlx-membw).  Prints a markdown table, then one JSON line.
 *
 * Usage: zmlx-cuda_decode [MODEL] [--backend cuda|cpu|cpu-ref] [--kv-dtype f32|bf16]
 *        [--precision exact|fast] [--runs 5] [--tokens 64] [--ctx 16,4096] [--bw GB/s]
 *        [--gpus 0,1,...]   (GB/s is then the whole model's bytes over all GPUs)
 */
#include "zmlx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t b = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

int main(int argc, char **argv) {
    const char *model = "builtin:glm47-flash:layers=8,bits=16", *ctx_list = "16,4096";
    zmlx_model_params mp = zmlx_model_default_params();
    mp.backend = ZMLX_BACKEND_CUDA;
    mp.precision = ZMLX_PRECISION_EXACT;
    mp.kv_dtype = ZMLX_KV_BF16;
    mp.patterns = "none";
    int runs = 5, tokens = 64;
    double bw = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--backend") && v) {
            mp.backend = !strcmp(v, "cpu") ? ZMLX_BACKEND_CPU
                         : !strcmp(v, "cpu-ref") ? ZMLX_BACKEND_CPU_REF : ZMLX_BACKEND_CUDA;
            i++;
        } else if (!strcmp(a, "--kv-dtype") && v) {
            mp.kv_dtype = !strcmp(v, "f32") ? ZMLX_KV_F32 : ZMLX_KV_BF16;
            i++;
        } else if (!strcmp(a, "--precision") && v) {
            mp.precision = !strcmp(v, "fast") ? ZMLX_PRECISION_FAST : ZMLX_PRECISION_EXACT;
            i++;
        } else if (!strcmp(a, "--runs") && v) {
            runs = atoi(v), i++;
        } else if (!strcmp(a, "--tokens") && v) {
            tokens = atoi(v), i++;
        } else if (!strcmp(a, "--ctx") && v) {
            ctx_list = v, i++;
        } else if (!strcmp(a, "--bw") && v) {
            bw = atof(v), i++;
        } else if (!strcmp(a, "--gpus") && v) { /* expert parallel over these GPUs */
            char err[ZMLX_ERR_MAX];
            if (zmlx_dist_parse_gpus(v, &mp.dist, err, sizeof err) != ZMLX_OK) {
                fprintf(stderr, "%s\n", err);
                return 2;
            }
            i++;
        } else if (a[0] != '-') {
            model = a;
        } else {
            fprintf(stderr, "usage: %s [MODEL] [--backend B] [--kv-dtype f32|bf16] [--runs N] "
                            "[--tokens N] [--ctx 16,4096] [--bw GB/s] [--gpus LIST]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > 64 || tokens < 1) {
        fprintf(stderr, "--runs must be in [1, 64] and --tokens >= 1\n");
        return 2;
    }
    char err[ZMLX_ERR_MAX];
    zmlx_model *m = NULL;
    double t0 = now();
    if (zmlx_model_load(model, &mp, &m, err, sizeof err) != ZMLX_OK) {
        fprintf(stderr, "zmlx-cuda_decode: %s\n", err);
        return 2;
    }
    zmlx_model_info info;
    zmlx_model_get_info(m, &info);
    fprintf(stderr, "loaded %s on %s in %.1f s\n", model, info.backend, now() - t0);
    const int32_t V = zmlx_model_vocab_size(m);
    zmlx_session *s = NULL;
    if (zmlx_session_init(m, NULL, &s, err, sizeof err) != ZMLX_OK) {
        fprintf(stderr, "zmlx-cuda_decode: %s\n", err);
        return 2;
    }
    float *logits = malloc((size_t)V * sizeof(float));
    printf("model %s, backend %s, kv %s, weights/token %.3f GB, kv/position %lld B\n\n", model,
           info.backend, info.kv_dtype, (double)info.bytes_per_token * 1e-9,
           (long long)info.kv_bytes_per_position);
    printf("| ctx | prefill tok/s (med) | decode tok/s (med) | min-max | ms/tok | GB/s | %%bw |\n");
    printf("|----:|----:|----:|----|----:|----:|----:|\n");
    char json[4096];
    int jo = snprintf(json, sizeof json, "{\"model\":\"%s\",\"backend\":\"%s\",\"kv_dtype\":\"%s\","
                      "\"bytes_per_token\":%lld,\"kv_bytes_per_position\":%lld,\"runs\":%d,"
                      "\"tokens\":%d,\"bw_GBps\":%.1f,\"results\":[",
                      model, info.backend, info.kv_dtype, (long long)info.bytes_per_token,
                      (long long)info.kv_bytes_per_position, runs, tokens, bw);
    char list[256];
    snprintf(list, sizeof list, "%s", ctx_list);
    int first = 1;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        const int64_t ctx = atoll(tok) > 0 ? atoll(tok) : 1;
        int32_t *ids = malloc((size_t)ctx * sizeof(int32_t));
        uint64_t r = 0x2545f4914f6cdd1dULL;
        for (int64_t i = 0; i < ctx; i++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            ids[i] = (int32_t)(r % (uint64_t)V);
        }
        double pre[64], dec[64];
        int ok = 1;
        for (int run = -1; run < runs && ok; run++) { /* run -1: warm-up */
            zmlx_session_reset(s);
            double a = now();
            ok = zmlx_session_eval(s, ids, (size_t)ctx, logits, 0) == ZMLX_OK;
            double b = now();
            for (int t = 0; t < tokens && ok; t++) {
                int32_t next = argmax(logits, V);
                ok = zmlx_session_eval(s, &next, 1, logits, 0) == ZMLX_OK;
            }
            double c = now();
            if (run >= 0) {
                pre[run] = (double)ctx / (b - a);
                dec[run] = (double)tokens / (c - b);
            }
        }
        if (!ok) {
            fprintf(stderr, "zmlx-cuda_decode: ctx %lld: %s\n", (long long)ctx, zmlx_session_error(s));
            free(ids);
            break;
        }
        qsort(pre, (size_t)runs, sizeof(double), cmp_d);
        qsort(dec, (size_t)runs, sizeof(double), cmp_d);
        const double pm = pre[runs / 2], dm = dec[runs / 2];
        const double mean_ctx = (double)ctx + (double)tokens / 2.0;
        const double bytes = (double)info.bytes_per_token + mean_ctx * (double)info.kv_bytes_per_position;
        const double gbs = bytes * dm * 1e-9;
        printf("| %lld | %.1f | %.1f | %.1f-%.1f | %.3f | %.0f | %.1f%% |\n", (long long)ctx, pm, dm,
               dec[0], dec[runs - 1], 1e3 / dm, gbs, bw > 0 ? 100.0 * gbs / bw : 0.0);
        jo += snprintf(json + jo, sizeof json - (size_t)jo,
                       "%s{\"ctx\":%lld,\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.2f,"
                       "\"decode_min\":%.2f,\"decode_max\":%.2f,\"bytes_per_token_at_ctx\":%.0f,"
                       "\"GBps\":%.1f}",
                       first ? "" : ",", (long long)ctx, pm, dm, dec[0], dec[runs - 1], bytes, gbs);
        first = 0;
        free(ids);
        if (jo >= (int)sizeof json - 256) break;
    }
    printf("\n%s]}\n", json);
    free(logits);
    zmlx_session_free(s);
    zmlx_model_free(m);
    return 0;
}
