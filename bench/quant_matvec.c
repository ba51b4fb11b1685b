/*
 * quant_matvec.c — `zmlx-quant_matvec [--seconds S] [--hot] [--precision exact|fast]
 * [--json]`: times the decode
 * matrix-vector product (n = 1 token) of the `cpu` backend for GLM-4.7-Flash shapes
 * ([1536, 2048] gate/up, [2048, 1536] down, [154880, 2048] lm_head) with MLX affine
 * 4-bit g64, 8-bit g64 and bf16 weights, on 1 and 2 threads (or the --threads list),
 * in the given precision mode (default fast, ZMLX_CPU_ISA picks the kernels),
 * and prints achieved GB/s
 * (weight bytes read, packed data + scales + biases, per second) against the
 * measured read bandwidth.  A benchmark, not a test: tests/test_quant.c checks values.
 *
 * Weights are random bits (values do not change the time).  Unless --hot, each
 * call reads a different copy of the weight, with at least 256 MiB of copies, so the
 * data comes from DRAM as in real decode (each weight read once per token).
 * Uses internal headers: the bench targets have src/ on their include path.
 */
#include "backend/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLD_BYTES (256.0 * 1024 * 1024)
#define MAX_T 16

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_u64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* n bytes of random bits */
static void *rand_bytes(size_t n, uint64_t *rng) {
    uint8_t *p = malloc(n + 8);
    if (!p) return NULL;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = rng_u64(rng);
        memcpy(p + i, &v, 8);
    }
    return p;
}

/* n bf16 values in [-1, 1) (random bits would include NaN and inf) */
static uint16_t *rand_bf16(size_t n, uint64_t *rng) {
    uint16_t *p = malloc(n * sizeof *p + 8);
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng_u64(rng);
        p[i] = (uint16_t)(((r & 1) << 15) | (uint64_t)(0x3c00 + (r >> 1) % 0x380)); /* 2^-7..1 */
    }
    return p;
}

typedef struct fmt {
    const char *name;
    zqfmt q;
    int bits;
} fmt;

/* One weight descriptor with fresh buffers; NULL data on allocation failure. */
static zweight make(const fmt *f, int64_t rows, int64_t cols, uint64_t *rng) {
    if (f->q == ZQ_NONE)
        return (zweight){.dtype = ZDT_BF16, .rows = rows, .cols = cols,
                         .data = rand_bf16((size_t)(rows * cols), rng)};
    size_t ng = (size_t)(rows * (cols / 64));
    return (zweight){.dtype = ZDT_U32, .rows = rows, .cols = cols, .q = f->q, .bits = f->bits,
                     .group = 64, .sdtype = ZDT_BF16,
                     .data = rand_bytes((size_t)(rows * cols * f->bits / 8), rng),
                     .scales = rand_bf16(ng, rng), .biases = rand_bf16(ng, rng)};
}

static void release(zweight *w) {
    free((void *)w->data);
    free((void *)w->scales);
    free((void *)w->biases);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    uint64_t rng = 0x5eedu;
    double seconds = 1.0;
    int hot = 0, json = 0, threads[MAX_T] = {1, 2}, nt = 2;
    zmlx_precision prec = ZMLX_PRECISION_FAST;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--hot")) hot = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            nt = 0;
            for (char *p = argv[++i]; *p && nt < MAX_T; p += *p == ',') threads[nt++] = (int)strtol(p, &p, 10);
            if (nt == 0 || threads[0] <= 0) nt = 0;
        }
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "exact")) prec = ZMLX_PRECISION_EXACT;
            else if (strcmp(v, "fast")) nt = 0;
            if (!nt) break;
        }
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else {
            nt = 0;
            break;
        }
    }
    if (nt == 0) {
        fprintf(stderr, "usage: zmlx-quant_matvec [--threads 1,2,..] [--seconds S] [--hot] "
                        "[--precision exact|fast] [--json]\n");
        return 2;
    }
    static const int64_t shapes[][2] = {{1536, 2048}, {2048, 1536}, {154880, 2048}};
    static const fmt fmts[] = {{"affine4 g64", ZQ_AFFINE, 4}, {"affine8 g64", ZQ_AFFINE, 8},
                               {"bf16", ZQ_NONE, 16}};
    void *ctx[MAX_T];
    for (int t = 0; t < nt; t++)
        if (zbackend_cpu.init(threads[t], &ctx[t]) != ZMLX_OK) {
            fprintf(stderr, "zmlx-quant_matvec: cpu backend failed to start\n");
            return 1;
        } else {
            zbackend_cpu.set_precision(ctx[t], prec);
        }
    double peak[MAX_T];
    for (int t = 0; t < nt; t++) peak[t] = zmlx_measure_read_bandwidth(threads[t], 512u << 20, 1.0) * 1e-9;
    if (json) printf("{\"hot\":%s,\"peak_GBps\":[", hot ? "true" : "false");
    for (int t = 0; t < nt; t++)
        printf(json ? "%s{\"threads\":%d,\"GBps\":%.3f}" : "%sread bandwidth %d thread(s): %.2f GB/s",
               t ? (json ? "," : "; ") : "", threads[t], peak[t]);
    if (json) printf("],\"runs\":[");
    else printf("\n%s weights\n\n| shape | format | MB | threads | us/call (median) | min | GB/s | of "
                "peak |\n|---|---|---:|---:|---:|---:|---:|---:|\n",
                hot ? "hot (cache-resident)" : "cold (rotating copies, >= 256 MiB)");
    int first = 1;
    for (size_t s = 0; s < 3; s++)
        for (size_t f = 0; f < 3; f++) {
            const int64_t rows = shapes[s][0], cols = shapes[s][1];
            zweight proto = make(&fmts[f], 1, cols, &rng); /* for the byte count */
            double bytes = (double)zweight_row_bytes(&proto) * (double)rows;
            release(&proto);
            int copies = hot ? 1 : (int)(COLD_BYTES / bytes) + 1;
            zweight *w = calloc((size_t)copies, sizeof *w);
            float *x = malloc((size_t)cols * sizeof(float)), *y = malloc((size_t)rows * sizeof(float));
            if (!w || !x || !y) return 1;
            for (int c = 0; c < copies; c++) {
                w[c] = make(&fmts[f], rows, cols, &rng);
                if (!w[c].data) {
                    fprintf(stderr, "zmlx-quant_matvec: out of memory\n");
                    return 1;
                }
            }
            for (int64_t i = 0; i < cols; i++) x[i] = (float)((double)(rng_u64(&rng) >> 40) / 16777216.0 - 0.5);
            for (int t = 0; t < nt; t++) {
                enum { MAX_REPS = 100000 };
                double *dt = malloc(MAX_REPS * sizeof *dt);
                if (!dt) return 1;
                int reps = 0, c = 0;
                for (int i = 0; i < 3; i++) { /* warm-up */
                    zmm_job j = {.w = w[c], .x = x, .y = y, .n = 1};
                    zbackend_cpu.matmul(ctx[t], &j, 1);
                    c = (c + 1) % copies;
                }
                double t_end = now_s() + seconds;
                while (reps < MAX_REPS && (reps < 5 || now_s() < t_end)) {
                    zmm_job j = {.w = w[c], .x = x, .y = y, .n = 1};
                    double t0 = now_s();
                    zbackend_cpu.matmul(ctx[t], &j, 1);
                    dt[reps++] = now_s() - t0;
                    c = (c + 1) % copies;
                }
                qsort(dt, (size_t)reps, sizeof dt[0], cmp_double);
                double med = dt[reps / 2], gbs = bytes / med * 1e-9;
                if (json)
                    printf("%s{\"rows\":%lld,\"cols\":%lld,\"format\":\"%s\",\"threads\":%d,"
                           "\"bytes\":%.0f,\"us_median\":%.2f,\"us_min\":%.2f,\"GBps\":%.3f}",
                           first ? "" : ",", (long long)rows, (long long)cols, fmts[f].name,
                           threads[t], bytes, med * 1e6, dt[0] * 1e6, gbs);
                else
                    printf("| [%lld, %lld] | %s | %.2f | %d | %.1f | %.1f | %.2f | %.0f%% |\n",
                           (long long)rows, (long long)cols, fmts[f].name, bytes * 1e-6, threads[t],
                           med * 1e6, dt[0] * 1e6, gbs, 100.0 * gbs / peak[t]);
                first = 0;
                fflush(stdout);
                free(dt);
            }
            for (int c = 0; c < copies; c++) release(&w[c]);
            free(w);
            free(x);
            free(y);
        }
    if (json) printf("]}\n");
    for (int t = 0; t < nt; t++) zbackend_cpu.free(ctx[t]);
    return 0;
}
