/*
 * membw.c — this machine's memory read bandwidth, measured the way decode reads
 * weights: every thread of a pool streams its own slice of a buffer several times the
 * size of the caches, repeatedly, and the best pass counts.  Benchmarks report
 * achieved GB/s against this number (PERFORMANCE.md).
 */
#include "backend/pool.h"
#include "zmlx.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef uint64_t v4u64 __attribute__((vector_size(32)));

typedef struct bw_region {
    const v4u64 *buf;
    size_t n_vec;     /* vectors in the buffer */
    int threads;
    v4u64 sink[64];   /* per-thread results, so the reads cannot be optimised away */
} bw_region;

static void bw_task(void *arg, int64_t task, int thread) {
    bw_region *r = arg;
    size_t per = r->n_vec / (size_t)r->threads, lo = (size_t)task * per;
    const v4u64 *p = r->buf + lo;
    v4u64 a = {0}, b = {0}, c = {0}, d = {0};
    for (size_t i = 0; i + 4 <= per; i += 4) {
        a ^= p[i];
        b ^= p[i + 1];
        c ^= p[i + 2];
        d ^= p[i + 3];
    }
    r->sink[task & 63] = a ^ b ^ c ^ d;
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double zmlx_measure_read_bandwidth(int threads, size_t bytes, double seconds) {
    if (threads <= 0) threads = zpool_online_cores();
    if (threads > 64) threads = 64;
    if (bytes < (64u << 20)) bytes = 64u << 20;
    zpool *pool = NULL;
    v4u64 *buf = aligned_alloc(64, bytes);
    if (!buf || zpool_init(threads, &pool) != ZMLX_OK) {
        free(buf);
        return 0.0;
    }
    memset(buf, 0x5a, bytes); /* touch every page first */
    bw_region r = {.buf = buf, .n_vec = bytes / sizeof(v4u64), .threads = threads};
    double best = 0.0, start = seconds_now();
    do {
        double t0 = seconds_now();
        zpool_run(pool, bw_task, &r, threads);
        double dt = seconds_now() - t0;
        double bw = (double)(r.n_vec / (size_t)threads * (size_t)threads) * sizeof(v4u64) / dt;
        if (bw > best) best = bw;
    } while (seconds_now() - start < seconds);
    zpool_free(pool);
    free(buf);
    return best;
}
