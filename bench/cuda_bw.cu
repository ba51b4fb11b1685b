/*
 * cuda_bw.cu — the GPU's two ceilings for batch-1 decode and how close the production
 * decode kernels get: a plain 16-byte read kernel over a buffer far larger than L2 (the
 * read bandwidth every GB/s figure is compared with), a device-to-device copy, and the
 * shipped matvec kernels (backend/cuda/kernels.h, not private copies) on GLM-4.7-Flash
 * shapes, inputs rotated so L2 cannot serve them.  CUDA events, warm-up first, median
 * and best of the repeats.  Prints a markdown table and one JSON line.
 *
 * Usage: zmlx-cuda_bw [--gib N]   (read buffer, default 4)
 */
#include "backend/cuda/kernels.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" {
#include "model/weight.h"
}

#define CK(call)                                                                       \
    do {                                                                               \
        cudaError_t e_ = (call);                                                       \
        if (e_ != cudaSuccess) {                                                       \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,              \
                    cudaGetErrorString(e_));                                           \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

__global__ void k_read(const uint4 *p, size_t n, unsigned *sink) {
    uint32_t acc = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        uint4 v = __ldg(p + i);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x12345678u) *sink = acc; /* keeps the loads; practically never true */
}

__global__ void k_fill(uint32_t *p, size_t n, uint32_t seed) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        uint32_t x = (uint32_t)i * 2654435761u ^ seed;
        x ^= x >> 13;
        x *= 0x5bd1e995u;
        /* two bf16 in [-1, 1): keep the exponent small, never zero */
        p[i] = (x & 0x807f807fu) | 0x3c003c00u;
    }
}

struct timing {
    double med_ms, best_ms;
};

template <typename F> static timing time_it(F f, int reps, cudaStream_t st) {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) f(i); /* warm-up */
    CK(cudaStreamSynchronize(st));
    std::vector<double> ms;
    for (int i = 0; i < reps; i++) {
        CK(cudaEventRecord(a, st));
        f(i);
        CK(cudaEventRecord(b, st));
        CK(cudaEventSynchronize(b));
        float t;
        CK(cudaEventElapsedTime(&t, a, b));
        ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return {ms[ms.size() / 2], ms[0]};
}

static void row(const char *name, double bytes, timing t, double ref_gbs, FILE *js, bool first) {
    const double gbs = bytes / (t.med_ms * 1e-3) / 1e9, best = bytes / (t.best_ms * 1e-3) / 1e9;
    printf("| %-34s | %10.1f | %9.1f | %8.0f | %8.0f | %5.1f%% |\n", name, bytes / 1048576.0,
           t.med_ms * 1e3, gbs, best, ref_gbs > 0 ? 100.0 * gbs / ref_gbs : 100.0);
    fprintf(js, "%s\"%s\":{\"bytes\":%.0f,\"median_us\":%.2f,\"GBps\":%.1f,\"best_GBps\":%.1f}",
            first ? "" : ",", name, bytes, t.med_ms * 1e3, gbs, best);
}

int main(int argc, char **argv) {
    double gib = 4;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--gib") && i + 1 < argc) gib = atof(argv[++i]);
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev < 1) {
        printf("SKIP: no CUDA device\n");
        return 0;
    }
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    cudaStream_t st;
    CK(cudaStreamCreate(&st));
    CK(cuk_init());
    const int grid = prop.multiProcessorCount * 8;
    printf("device: %s, %d SMs, L2 %.0f MiB, %.1f GiB\n\n", prop.name, prop.multiProcessorCount,
           prop.l2CacheSize / 1048576.0, prop.totalGlobalMem / 1073741824.0);
    printf("| %-34s | %10s | %9s | %8s | %8s | %6s |\n", "kernel", "MiB moved", "median us",
           "GB/s", "best", "%read");
    printf("|%s|%s|%s|%s|%s|%s|\n", "------------------------------------", "------------",
           "-----------", "----------", "----------", "--------");
    FILE *js = tmpfile();

    /* read bandwidth: the reference ceiling */
    const size_t bytes = (size_t)(gib * 1073741824.0) & ~(size_t)15;
    uint4 *buf;
    unsigned *sink;
    CK(cudaMalloc(&buf, bytes));
    CK(cudaMalloc(&sink, 4));
    k_fill<<<grid, 256, 0, st>>>((uint32_t *)buf, bytes / 4, 1u);
    CK(cudaGetLastError());
    timing tr = time_it([&](int) { k_read<<<grid, 512, 0, st>>>(buf, bytes / 16, sink); }, 20, st);
    const double read_gbs = (double)bytes / (tr.med_ms * 1e-3) / 1e9;
    row("read (16 B loads)", (double)bytes, tr, read_gbs, js, true);
    const size_t half = bytes / 2;
    timing tc = time_it([&](int) { CK(cudaMemcpyAsync((char *)buf + half, buf, half, cudaMemcpyDeviceToDevice, st)); }, 10, st);
    row("copy d2d (read + write)", 2.0 * half, tc, read_gbs, js, false);
    CK(cudaFree(buf));

    /* production matvec: lm_head [154880, 2048] bf16 */
    {
        const int64_t R = 154880, C = 2048;
        void *w;
        float *x, *y;
        CK(cudaMalloc(&w, (size_t)(R * C) * 2));
        CK(cudaMalloc(&x, C * 4));
        CK(cudaMalloc(&y, R * 4));
        k_fill<<<grid, 256, 0, st>>>((uint32_t *)w, (size_t)(R * C) / 2, 2u);
        CK(cudaMemset(x, 0, C * 4));
        cu_mv p = {};
        p.w = cuw{w, nullptr, nullptr, ZW_BF16, 0, 0, R, C, C, 0};
        p.groups = 1, p.rpg = R, p.gmod = 1, p.x = x, p.y = y;
        timing t = time_it([&](int) { CK(cuk_matvec(&p, 1, st)); }, 20, st);
        row("matvec lm_head 154880x2048 bf16", (double)(R * C) * 2, t, read_gbs, js, false);
        CK(cudaFree(w));
        CK(cudaFree(x));
        CK(cudaFree(y));
    }
    /* o_proj [2048, 5120] and q_a [768, 2048] bf16, 48 copies rotated (beyond L2) */
    const int64_t shapes[2][2] = {{2048, 5120}, {768, 2048}};
    for (int s = 0; s < 2; s++) {
        const int64_t R = shapes[s][0], C = shapes[s][1], copies = 48;
        void *w;
        float *x, *y;
        CK(cudaMalloc(&w, (size_t)(copies * R * C) * 2));
        CK(cudaMalloc(&x, C * 4));
        CK(cudaMalloc(&y, R * 4));
        k_fill<<<grid, 256, 0, st>>>((uint32_t *)w, (size_t)(copies * R * C) / 2, 3u);
        CK(cudaMemset(x, 0, C * 4));
        timing t = time_it([&](int i) {
            cu_mv p = {};
            p.w = cuw{(char *)w + (size_t)((i % copies) * R * C) * 2, nullptr, nullptr, ZW_BF16, 0, 0, R, C, C, 0};
            p.groups = 1, p.rpg = R, p.gmod = 1, p.x = x, p.y = y;
            CK(cuk_matvec(&p, 1, st));
        }, 48, st);
        char name[64];
        snprintf(name, sizeof name, "matvec %lldx%lld bf16", (long long)R, (long long)C);
        row(name, (double)(R * C) * 2, t, read_gbs, js, false);
        CK(cudaFree(w));
        CK(cudaFree(x));
        CK(cudaFree(y));
    }
    /* routed experts: SwiGLU of K = 4 of 64 stacked [1536, 2048] gate/up, then down */
    {
        const int64_t E = 64, K = 4, mI = 1536, d = 2048, sets = 16;
        void *g, *u, *dn;
        float *x, *h, *y;
        int32_t *idx;
        const size_t one = (size_t)(mI * d) * 2;
        CK(cudaMalloc(&g, E * one));
        CK(cudaMalloc(&u, E * one));
        CK(cudaMalloc(&dn, E * one));
        CK(cudaMalloc(&x, d * 4));
        CK(cudaMalloc(&h, K * mI * 4));
        CK(cudaMalloc(&y, K * d * 4));
        k_fill<<<grid, 256, 0, st>>>((uint32_t *)g, E * one / 4, 4u);
        k_fill<<<grid, 256, 0, st>>>((uint32_t *)u, E * one / 4, 5u);
        k_fill<<<grid, 256, 0, st>>>((uint32_t *)dn, E * one / 4, 6u);
        CK(cudaMemset(x, 0, d * 4));
        std::vector<int32_t> hidx(sets * K);
        for (int64_t i = 0; i < sets * K; i++) hidx[i] = (int32_t)((i * 17 + i / K) % E);
        CK(cudaMalloc(&idx, hidx.size() * 4));
        CK(cudaMemcpy(idx, hidx.data(), hidx.size() * 4, cudaMemcpyHostToDevice));
        const int64_t stride = (int64_t)(one / 2);
        cuw gw{g, nullptr, nullptr, ZW_BF16, 0, 0, mI, d, d, stride};
        cuw uw{u, nullptr, nullptr, ZW_BF16, 0, 0, mI, d, d, stride};
        cuw dw{dn, nullptr, nullptr, ZW_BF16, 0, 0, d, mI, mI, stride};
        timing t = time_it([&](int i) {
            cu_mv p = {};
            p.w = gw, p.up = uw, p.idx = idx + (i % sets) * K, p.groups = K, p.rpg = mI, p.gmod = 1;
            p.x = x, p.y = h, p.ys = mI;
            CK(cuk_matvec(&p, 1, st));
        }, 48, st);
        row("glu matvec 4 of 64 experts", (double)(2 * K) * one, t, read_gbs, js, false);
        timing t2 = time_it([&](int i) {
            cu_mv p = {};
            p.w = dw, p.idx = idx + (i % sets) * K, p.groups = K, p.rpg = d, p.gmod = 1;
            p.x = h, p.xs = mI, p.y = y, p.ys = d;
            CK(cuk_matvec(&p, 1, st));
        }, 48, st);
        row("down matvec 4 of 64 experts", (double)K * one, t2, read_gbs, js, false);
        CK(cudaFree(g));
        CK(cudaFree(u));
        CK(cudaFree(dn));
        CK(cudaFree(x));
        CK(cudaFree(h));
        CK(cudaFree(y));
        CK(cudaFree(idx));
    }
    /* the JSON line */
    fflush(js);
    long n = ftell(js);
    rewind(js);
    std::vector<char> body((size_t)n + 1, 0);
    if (fread(body.data(), 1, (size_t)n, js) != (size_t)n) return 1;
    printf("\n{\"device\":\"%s\",\"read_GBps\":%.1f,\"kernels\":{%s}}\n", prop.name, read_gbs, body.data());
    return 0;
}
