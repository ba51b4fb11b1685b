/*
 * cuda_decode.c — batch-1 decode and prefill throughput of one model on one backend
 * through the public API (the model is loaded once), for one pattern set or two compared
 * run by run (A B A B ...):
 *   decode: for each context length, a warm-up, then N runs of (context, one untimed
 *     token, T timed greedy tokens, as generate decodes them: zmlx_session_eval_greedy,
 *     the argmax on the device; --host-argmax: the logits copied out and the argmax taken
 *     on the host, as before); the context is a real prefill, or with --synthetic
 *     (cuda only) the latent cache filled with pseudo-random rows (decode reads the same
 *     bytes; prefill is not run).  Median and range of tok/s, and achieved GB/s =
 *     (weight bytes per token + KV-cache bytes at the mean decode context) x tok/s
 *     against a read bandwidth given with --bw (zmlx-cuda_bw or zmlx-membw).
 *   prefill (--prefill 512,4096): N runs of a prompt of that many tokens, tok/s.
 * Prints markdown tables, then one JSON line.
 *
 * Usage: zmlx-cuda_decode [MODEL] [--backend cuda|cpu|cpu-ref] [--kv-dtype f32|bf16]
 *        [--precision exact|fast] [--patterns SET] [--vs SET] [--runs 5] [--tokens 64]
 *        [--ctx 16,4096] [--synthetic] [--prefill 512,4096] [--bw GB/s] [--host-argmax]
 *        [--gpus 0,1,...]   (GB/s is then the whole model's bytes over all GPUs)
 */
#include "zmlx.h"
#ifdef ZMLX_HAVE_CUDA
#include "backend/cuda/cuda_internal.h"
#include "model/session.h"
#endif

#include <math.h>
#include <stdbool.h>
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

static void random_ids(int32_t *ids, int64_t n, int32_t V) {
    uint64_t r = 0x2545f4914f6cdd1dULL;
    for (int64_t i = 0; i < n; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        ids[i] = (int32_t)(r % (uint64_t)V);
    }
}

/* A context of ctx positions: a real prefill (its tok/s in *pre), or synthetic. */
static int make_context(zmlx_session *s, const int32_t *ids, int64_t ctx, bool synthetic,
                        float *logits, double *pre) {
    zmlx_session_reset(s);
    *pre = 0;
    if (synthetic) {
#ifdef ZMLX_HAVE_CUDA
        if (!s->dev) return 0;
        zerr e = {{0}};
        if (zcu_synthetic_context(s->dev, ctx, 0x5eed, &e) != ZMLX_OK) {
            fprintf(stderr, "zmlx-cuda_decode: %s\n", e.msg);
            return 0;
        }
        s->n_past = ctx - 1; /* the last context token is evaluated for real */
        return zmlx_session_eval(s, ids + ctx - 1, 1, logits, 0) == ZMLX_OK;
#else
        return 0;
#endif
    }
    const double a = now();
    const int ok = zmlx_session_eval(s, ids, (size_t)ctx, logits, 0) == ZMLX_OK;
    *pre = (double)ctx / (now() - a);
    return ok;
}

typedef struct side {
    const char *patterns;
    double pre[64], dec[64];
} side;

int main(int argc, char **argv) {
    const char *model = "builtin:glm47-flash:layers=8,bits=16", *ctx_list = "16,4096";
    const char *prefill_list = NULL;
    zmlx_model_params mp = zmlx_model_default_params();
    mp.backend = ZMLX_BACKEND_CUDA;
    mp.precision = ZMLX_PRECISION_EXACT;
    mp.kv_dtype = ZMLX_KV_BF16;
    mp.patterns = "none";
    const char *vs = NULL;
    int runs = 5, tokens = 64;
    bool synthetic = false, host_argmax = false;
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
        } else if (!strcmp(a, "--patterns") && v) {
            mp.patterns = v, i++;
        } else if (!strcmp(a, "--vs") && v) {
            vs = v, i++;
        } else if (!strcmp(a, "--runs") && v) {
            runs = atoi(v), i++;
        } else if (!strcmp(a, "--tokens") && v) {
            tokens = atoi(v), i++;
        } else if (!strcmp(a, "--ctx") && v) {
            ctx_list = v, i++;
        } else if (!strcmp(a, "--prefill") && v) {
            prefill_list = v, i++;
        } else if (!strcmp(a, "--synthetic")) {
            synthetic = true;
        } else if (!strcmp(a, "--host-argmax")) {
            host_argmax = true;
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
            fprintf(stderr, "usage: %s [MODEL] [--backend B] [--kv-dtype f32|bf16] [--precision P] "
                            "[--patterns SET] [--vs SET] [--runs N] [--tokens N] [--ctx 16,4096] "
                            "[--synthetic] [--prefill 512,4096] [--bw GB/s] [--host-argmax] [--gpus LIST]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > 64 || tokens < 1) {
        fprintf(stderr, "--runs must be in [1, 64] and --tokens >= 1\n");
        return 2;
    }
    if (synthetic && mp.dist.n_gpus > 1) { /* the session is then one per GPU (ep.c) */
        fprintf(stderr, "--synthetic is for one GPU; with --gpus LIST give real contexts\n");
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
    side sides[2] = {{.patterns = mp.patterns}, {.patterns = vs}};
    const int ns = vs ? 2 : 1;
    for (int k = 0; k < ns; k++)
        if (zmlx_model_set_patterns(m, sides[k].patterns, err, sizeof err) != ZMLX_OK) {
            fprintf(stderr, "zmlx-cuda_decode: %s\n", err);
            return 2;
        }
    float *logits = malloc((size_t)V * sizeof(float));
    printf("model %s, backend %s, precision %s, kv %s, weights/token %.3f GB, kv/position %lld B%s\n\n",
           model, info.backend, mp.precision == ZMLX_PRECISION_EXACT ? "exact" : "fast", info.kv_dtype,
           (double)info.bytes_per_token * 1e-9, (long long)info.kv_bytes_per_position,
           synthetic ? ", synthetic contexts (random latents, no prefill)" : "");
    char json[8192];
    int jo = snprintf(json, sizeof json, "{\"model\":\"%s\",\"backend\":\"%s\",\"kv_dtype\":\"%s\","
                      "\"precision\":\"%s\",\"bytes_per_token\":%lld,\"kv_bytes_per_position\":%lld,"
                      "\"runs\":%d,\"tokens\":%d,\"synthetic\":%s,\"bw_GBps\":%.1f,\"decode\":[",
                      model, info.backend, info.kv_dtype,
                      mp.precision == ZMLX_PRECISION_EXACT ? "exact" : "fast",
                      (long long)info.bytes_per_token, (long long)info.kv_bytes_per_position, runs,
                      tokens, synthetic ? "true" : "false", bw);
    printf("| patterns | ctx | decode tok/s (med) | min-max | ms/tok | GB/s | %%bw |\n");
    printf("|---|----:|----:|----|----:|----:|----:|\n");
    char list[256];
    snprintf(list, sizeof list, "%s", ctx_list);
    int first = 1, ok = 1;
    for (char *tok = strtok(list, ","); tok && ok; tok = strtok(NULL, ",")) {
        const int64_t ctx = atoll(tok) > 0 ? atoll(tok) : 1;
        int32_t *ids = malloc((size_t)ctx * sizeof(int32_t));
        random_ids(ids, ctx, V);
        for (int run = -1; run < runs && ok; run++) /* run -1: warm-up */
            for (int k = 0; k < ns && ok; k++) {
                ok = zmlx_model_set_patterns(m, sides[k].patterns, err, sizeof err) == ZMLX_OK;
                double pre = 0;
                ok = ok && make_context(s, ids, ctx, synthetic && ctx > 1, logits, &pre);
                int32_t next = zmlx_logits_argmax(logits, V);
                double b = 0.0;
                for (int t = -1; t < tokens && ok; t++) { /* t = -1: untimed (graph capture) */
                    if (t == 0) b = now();
                    const int32_t in = next;
                    if (host_argmax) {
                        ok = zmlx_session_eval(s, &in, 1, logits, 0) == ZMLX_OK;
                        next = zmlx_logits_argmax(logits, V);
                    } else {
                        ok = zmlx_session_eval_greedy(s, &in, 1, &next) == ZMLX_OK;
                    }
                }
                if (run >= 0) sides[k].dec[run] = (double)tokens / (now() - b);
            }
        free(ids);
        if (!ok) {
            fprintf(stderr, "zmlx-cuda_decode: ctx %lld: %s %s\n", (long long)ctx, zmlx_session_error(s), err);
            break;
        }
        for (int k = 0; k < ns; k++) {
            double *dec = sides[k].dec;
            qsort(dec, (size_t)runs, sizeof(double), cmp_d);
            const double dm = dec[runs / 2], mean_ctx = (double)ctx + 1.0 + (double)tokens / 2.0;
            const double bytes = (double)info.bytes_per_token + mean_ctx * (double)info.kv_bytes_per_position;
            const double gbs = bytes * dm * 1e-9;
            printf("| %s | %lld | %.1f | %.1f-%.1f | %.3f | %.0f | %.1f%% |\n", sides[k].patterns,
                   (long long)ctx, dm, dec[0], dec[runs - 1], 1e3 / dm, gbs, bw > 0 ? 100.0 * gbs / bw : 0.0);
            jo += snprintf(json + jo, sizeof json - (size_t)jo,
                           "%s{\"patterns\":\"%s\",\"ctx\":%lld,\"decode_tok_s\":%.2f,\"decode_min\":%.2f,"
                           "\"decode_max\":%.2f,\"bytes_per_token_at_ctx\":%.0f,\"GBps\":%.1f}",
                           first ? "" : ",", sides[k].patterns, (long long)ctx, dm, dec[0],
                           dec[runs - 1], bytes, gbs);
            first = 0;
        }
        if (ns == 2)
            printf("| speedup | %lld | %.3fx | | | | |\n", (long long)ctx,
                   sides[1].dec[runs / 2] / sides[0].dec[runs / 2]);
        if (jo >= (int)sizeof json - 512) break;
    }
    jo += snprintf(json + jo, sizeof json - (size_t)jo, "],\"prefill\":[");
    if (prefill_list && ok) {
        printf("\n| patterns | prompt | prefill tok/s (med) | min-max | s |\n|---|----:|----:|----|----:|\n");
        snprintf(list, sizeof list, "%s", prefill_list);
        first = 1;
        for (char *tok = strtok(list, ","); tok && ok; tok = strtok(NULL, ",")) {
            const int64_t n = atoll(tok) > 0 ? atoll(tok) : 1;
            int32_t *ids = malloc((size_t)n * sizeof(int32_t));
            random_ids(ids, n, V);
            for (int run = -1; run < runs && ok; run++)
                for (int k = 0; k < ns && ok; k++) {
                    ok = zmlx_model_set_patterns(m, sides[k].patterns, err, sizeof err) == ZMLX_OK;
                    double pre = 0;
                    ok = ok && make_context(s, ids, n, false, logits, &pre);
                    if (run >= 0) sides[k].pre[run] = pre;
                }
            free(ids);
            if (!ok) {
                fprintf(stderr, "zmlx-cuda_decode: prefill %lld: %s\n", (long long)n, zmlx_session_error(s));
                break;
            }
            for (int k = 0; k < ns; k++) {
                double *pre = sides[k].pre;
                qsort(pre, (size_t)runs, sizeof(double), cmp_d);
                printf("| %s | %lld | %.1f | %.1f-%.1f | %.2f |\n", sides[k].patterns, (long long)n,
                       pre[runs / 2], pre[0], pre[runs - 1], (double)n / pre[runs / 2]);
                jo += snprintf(json + jo, sizeof json - (size_t)jo,
                               "%s{\"patterns\":\"%s\",\"prompt\":%lld,\"prefill_tok_s\":%.2f,"
                               "\"prefill_min\":%.2f,\"prefill_max\":%.2f}",
                               first ? "" : ",", sides[k].patterns, (long long)n, pre[runs / 2],
                               pre[0], pre[runs - 1]);
                first = 0;
            }
            if (jo >= (int)sizeof json - 512) break;
        }
    }
    printf("\n%s]}\n", json);
    free(logits);
    zmlx_session_free(s);
    zmlx_model_free(m);
    return ok ? 0 : 1;
}
