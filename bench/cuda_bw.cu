/*
 * cuda_bw.cu — the GPU's two ceilings for batch-1 decode and how close the production
 * decode kernels get: a plain 16-byte read kernel over a buffer far larger than L2 (the
 * read bandwidth every GB/s figure is compared with), a device-to-device copy, and the
 * shipped matvec kernels (backend/cuda/kernels.h, not private copies) on GLM-4.7-Flash
 * shapes (bf16 and MLX affine 4-bit), inputs rotated so L2 cannot serve them.  The kernels
 * are timed as decode runs them: a CUDA graph of back-to-back launches (programmatic
 * dependent launch from sm_90 on), the time per launch = the graph's time / launches.
 * Also a grid-wide barrier of the matvec's resident blocks (a persistent kernel's step
 * between stages) against that launch floor, and what the down + combine launch is made
 * of: its routed rows' loads alone (as its warps ask for them, or by the tensor memory
 * accelerator), a plain read of the same bytes, and the combine with h pre-staged.
 * CUDA events, warm-up first, median and best of the repeats.  Prints a markdown table
 * and one JSON line.
 *
 * Usage: zmlx-cuda_bw [--gib N] [--only TEXT]
 *   --gib   the read buffer (default 4)
 *   --only  time only the kernels whose name contains TEXT (the read and copy always run;
 *           for a profiler: each graph is then the only one of its kind)
 */
#include "backend/cuda/common.cuh"
#include "backend/cuda/dot.cuh"
#include "backend/cuda/kernels.h"
#include "cuda_bench.h"

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

__device__ __forceinline__ void read_fold(const uint4 *p, size_t n, unsigned *sink) {
    uint32_t acc = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        uint4 v = __ldg(p + i);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x12345678u) *sink = acc; /* keeps the loads; practically never true */
}

__global__ void k_read(const uint4 *p, size_t n, unsigned *sink) {
    read_fold(p, n, sink);
}

/* k_read as a decode launch: after the PDL wait (a short read's floor in a graph) */
__global__ void k_read_pdl(const uint4 *p, size_t n, unsigned *sink) {
    pdl_launch();
    pdl_wait();
    read_fold(p, n, sink);
}

/* A grid-wide barrier of a grid whose blocks are all resident (a cooperative launch), as
   a persistent kernel would meet between stages: writes before it are visible to every
   block after it.  `ns`: nanoseconds between polls (0: poll without pause).  The last
   block to arrive resets the count and starts the next generation; the others wait for
   it (the generation is read before arriving, so it cannot have moved on). */
__device__ __forceinline__ void grid_sync(uint32_t *bar, unsigned ns) {
    __syncthreads();
    if (threadIdx.x == 0) {
        uint32_t g;
        asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(g) : "l"(bar + 1) : "memory");
        __threadfence();
        const uint32_t n = gridDim.x * gridDim.y * gridDim.z;
        if (atomicAdd(bar, 1u) == n - 1) {
            bar[0] = 0;
            __threadfence();
            asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(bar + 1), "r"(g + 1) : "memory");
        } else {
            uint32_t now;
            for (;;) {
                asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(now) : "l"(bar + 1) : "memory");
                if (now != g) break;
                if (ns) __nanosleep(ns);
            }
        }
        __threadfence();
    }
    __syncthreads();
}

/* n grid-wide barriers (a cooperative launch: every block resident), polling every ns
   nanoseconds (0: without pause). */
__global__ void k_barrier(uint32_t *bar, int n, unsigned ns) {
    pdl_launch();
    pdl_wait();
    for (int i = 0; i < n; i++) grid_sync(bar, ns);
}

/* The floor of one launch in a decode graph: a kernel of the matvec's block shape that
   only waits for its predecessor (PDL) and writes one float. */
__global__ void k_floor(float *y) {
    pdl_launch();
    pdl_wait();
    if (threadIdx.x == 0 && blockIdx.x == 0) y[0] = y[0] + 1.0f;
}

/*
 * The down + combine launch's routed-row traffic alone, two ways (what the rows of a
 * short routed launch wait for: the loads' path or the memory): block b's BU_WARPS warps,
 * warp w's row 16 b + w of each of the K = 4 matrices idx[0..4) of an affine 4-bit stack
 * (bf16 scales and biases), after the PDL wait, as k_combine EARLY asks for them —
 *   ldg:  dot.cuh's wd_load (16-byte units, 2-byte scales and biases a unit, per lane);
 *   bulk: the block's 16 rows of each matrix are contiguous: one thread asks the tensor
 *         memory accelerator for them (cp.async.bulk, 12 copies a block: data, scales,
 *         biases of each matrix) into shared memory, the warps wait on an mbarrier (sm_90).
 * Both fold what they read into one word a warp (kept by a store that never happens).
 */
enum { BU_WARPS = 16, BU_K = 4 };
typedef struct burst_args {
    cuw w;
    const int32_t *idx;
    unsigned *sink;
} burst_args;

__global__ void __launch_bounds__(BU_WARPS * 32, 1) k_burst_ldg(const __grid_constant__ burst_args a) {
    pdl_launch();
    pdl_wait();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nu = (int)(a.w.cols / 32);
    const int64_t r = (int64_t)blockIdx.x * BU_WARPS + warp;
    if (r >= a.w.rows) return;
    rowp rp[BU_K];
    bool valid[BU_K];
#pragma unroll
    for (int k = 0; k < BU_K; k++) valid[k] = true, rp[k] = row_of(a.w, a.idx[k], r);
    wd_raw<ZW_AFFINE4, BU_K, WD_NJ> raw;
    wd_load<ZW_AFFINE4, BU_K, WD_NJ, CU_SDT_BF16>(rp, valid, lane_units(nu, lane), a.w.group, raw);
    uint32_t acc = 0;
#pragma unroll
    for (int k = 0; k < BU_K; k++)
#pragma unroll
        for (int j = 0; j < WD_NJ; j++) {
            if (j >= lane_units(nu, lane)) continue;
#pragma unroll
            for (int i = 0; i < 4; i++) acc ^= raw.w[k][j][i];
            acc ^= __float_as_uint(raw.sc[k][j]) ^ __float_as_uint(raw.bi[k][j]);
        }
    acc = __reduce_xor_sync(0xffffffffu, acc);
    if (acc == 0x9e3779b9u) *a.sink = acc;
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
#endif

__global__ void __launch_bounds__(BU_WARPS * 32, 1) k_burst_bulk(const __grid_constant__ burst_args a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    extern __shared__ __align__(128) uint8_t sm[];
    __shared__ __align__(8) uint64_t bar;
    pdl_launch();
    const int64_t r0 = (int64_t)blockIdx.x * BU_WARPS;
    const int64_t ng = a.w.cols / a.w.group;
    const uint32_t db = (uint32_t)(BU_WARPS * a.w.ld), sb = (uint32_t)(BU_WARPS * ng * 2), per = db + 2 * sb;
    if (threadIdx.x == 0) {
        asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(smem_u32(&bar)) : "memory");
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    pdl_wait();
    if (threadIdx.x == 0) {
        int32_t e[BU_K]; /* all four in one trip (the asm below orders memory) */
#pragma unroll
        for (int k = 0; k < BU_K; k++) e[k] = a.idx[k];
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(&bar)), "r"(BU_K * per)
                     : "memory");
#pragma unroll
        for (int k = 0; k < BU_K; k++) {
            const rowp rp = row_of(a.w, e[k], r0);
            const void *src[3] = {rp.d, rp.s, rp.b};
            const uint32_t n[3] = {db, sb, sb}, off[3] = {0, db, db + sb};
            for (int c = 0; c < 3; c++)
                asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                                 smem_u32(sm + k * per + off[c])),
                             "l"(src[c]), "r"(n[c]), "r"(smem_u32(&bar))
                             : "memory");
        }
    }
    asm volatile("{\n .reg .pred p;\n BU_WAIT%=:\n mbarrier.try_wait.parity.shared::cta.b64 p, [%0], 0;\n @!p bra BU_WAIT%=;\n}" ::"r"(
                     smem_u32(&bar))
                 : "memory");
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    uint32_t acc = 0;
    for (int k = 0; k < BU_K; k++) { /* the warp's row of each matrix, a word a lane at a time */
        const uint32_t *row = reinterpret_cast<const uint32_t *>(sm + k * per + warp * a.w.ld);
        for (int i = lane; i < a.w.ld / 4; i += 32) acc ^= row[i];
        const uint16_t *s = reinterpret_cast<const uint16_t *>(sm + k * per + db) + warp * ng;
        const uint16_t *b = reinterpret_cast<const uint16_t *>(sm + k * per + db + sb) + warp * ng;
        for (int i = lane; i < ng; i += 32) acc ^= (uint32_t)s[i] ^ ((uint32_t)b[i] << 16);
    }
    acc = __reduce_xor_sync(0xffffffffu, acc);
    if (acc == 0x9e3779b9u) *a.sink = acc;
#endif
}

/* h's K rows staged once into global memory as k_combine stages them (fast, affine 4-bit):
   the pre-staged combine's input */
__global__ void k_stage_h(const float *h, int64_t hs, int nu, int K, float *hq, int64_t sf, int group) {
    stage_rows<ZW_AFFINE4, true>(h, hs, nu, (int64_t)K * nu, threadIdx.x, hq, sf, group);
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

/* floats in [-1, 1) */
__global__ void k_fillf(float *p, size_t n, uint32_t seed) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        uint32_t x = (uint32_t)i * 2654435761u ^ seed;
        x ^= x >> 15;
        x *= 0x2c1b3c6du;
        x ^= x >> 12;
        p[i] = (float)(x >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
}

/* n stacked random matrices [R, C] of a kind (bf16, or affine 4-bit g64 with bf16 scales
   and biases), on the device. */
struct dmat {
    int kind;
    int64_t R, C, n;
    void *data, *scales, *biases;
    size_t dstep, sstep; /* bytes between stacked matrices */
    size_t bytes1;       /* bytes one matrix reads: data + scales + biases */
    cuw at(int64_t i) const {
        cuw w = stack();
        w.data = (const char *)data + i * dstep;
        if (scales) {
            w.scales = (const char *)scales + i * sstep;
            w.biases = (const char *)biases + i * sstep;
        }
        w.stride = 0, w.sstride = 0;
        return w;
    }
    cuw stack() const {
        cuw w = {};
        w.data = data, w.kind = kind, w.rows = R, w.cols = C;
        w.ld = kind == ZW_AFFINE4 ? C / 2 : C * 2;
        w.stride = (int64_t)dstep;
        if (scales) {
            w.scales = scales, w.biases = biases, w.group = 64, w.sdt = CU_SDT_BF16;
            w.sstride = (int64_t)(sstep / 2);
        }
        return w;
    }
    void free_all() {
        CK(cudaFree(data));
        if (scales) CK(cudaFree(scales));
        if (biases) CK(cudaFree(biases));
    }
};

static dmat dmat_new(int kind, int64_t R, int64_t C, int64_t n, int grid, cudaStream_t st) {
    dmat m = {kind, R, C, n, nullptr, nullptr, nullptr, 0, 0, 0};
    const bool q4 = kind == ZW_AFFINE4;
    const size_t db = (size_t)(R * C) * (q4 ? 1 : 4) / 2, sb = q4 ? (size_t)(R * C / 64) * 2 : 0;
    m.dstep = (db + 255) & ~(size_t)255;
    m.sstep = (sb + 255) & ~(size_t)255;
    m.bytes1 = db + 2 * sb;
    CK(cudaMalloc(&m.data, m.dstep * (size_t)n));
    k_fill<<<grid, 256, 0, st>>>((uint32_t *)m.data, m.dstep * (size_t)n / 4, (uint32_t)(R ^ C));
    if (q4) { /* bf16 scales and biases in [-1, 1): k_fill's bf16 pairs */
        CK(cudaMalloc(&m.scales, m.sstep * (size_t)n));
        CK(cudaMalloc(&m.biases, m.sstep * (size_t)n));
        k_fill<<<grid, 256, 0, st>>>((uint32_t *)m.scales, m.sstep * (size_t)n / 4, 11u);
        k_fill<<<grid, 256, 0, st>>>((uint32_t *)m.biases, m.sstep * (size_t)n / 4, 12u);
    }
    CK(cudaGetLastError());
    return m;
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
    const char *only = nullptr;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--gib") && i + 1 < argc) gib = atof(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: zmlx-cuda_bw [--gib N] [--only TEXT]\n");
            return 2;
        }
    }
    auto want = [&](const char *name) { return !only || strstr(name, only) != nullptr; };
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

    /* production kernels on GLM-4.7-Flash shapes, bf16 and MLX affine 4-bit g64 (bf16
       scales and biases; exact, and fast: int8 activations), `copies` matrices rotated so
       L2 cannot serve them (more than twice its size), `launches` per graph */
    const bool pdl = prop.major >= 9;
    if (want("empty launch (graph floor)")) {
        float *y;
        CK(cudaMalloc(&y, 4));
        const int blocks = prop.multiProcessorCount * 2;
        timing t = time_graph([&](int, cu_q q) { CK(launch(q, dim3(blocks), dim3(256), 0, k_floor, y)); },
                              160, 20, pdl, false, st);
        row("empty launch (graph floor)", 0.0, t, read_gbs, js, false);
        CK(cudaFree(y));
    }
    /* a grid-wide barrier of as many blocks as the matvec keeps resident, against the
       launch floor above: the time per barrier (what a persistent kernel would pay between
       stages instead of a launch) */
    uint32_t *bar;
    CK(cudaMalloc(&bar, 8));
    CK(cudaMemset(bar, 0, 8));
    for (unsigned ns : {0u, 32u, 128u}) {
        char name[64];
        snprintf(name, sizeof name, "grid barrier, poll %uns (per barrier)", ns);
        if (!want(name)) continue;
        const int blocks = prop.multiProcessorCount * 2, per = 32;
        timing t = time_graph([&](int, cu_q q) {
            CK(launch_as(q, true, dim3(blocks), dim3(256), 0, k_barrier, bar, per, ns));
        }, 20, 20, pdl, false, st);
        t.med_ms /= per, t.best_ms /= per;
        row(name, 0.0, t, read_gbs, js, false);
    }
    CK(cudaFree(bar));
    for (int v = 0; v < 3; v++) {
        const int kind = v == 0 ? (int)ZW_BF16 : (int)ZW_AFFINE4;
        const char *kn = v == 0 ? "bf16" : v == 1 ? "affine4" : "affine4 fast";
        const bool fast = v == 2;
        const int64_t shapes[3][4] = {{154880, 2048, 2, 8}, {2048, 5120, 48, 48}, {768, 2048, 160, 160}};
        for (int si = 0; si < 3; si++) {
            const int64_t R = shapes[si][0], C = shapes[si][1], copies = shapes[si][2];
            const int launches = (int)shapes[si][3];
            char name[64];
            snprintf(name, sizeof name, "matvec %lldx%lld %s", (long long)R, (long long)C, kn);
            if (!want(name)) continue;
            dmat m = dmat_new(kind, R, C, copies, grid, st);
            float *x, *y;
            CK(cudaMalloc(&x, C * 4));
            CK(cudaMalloc(&y, R * 4));
            k_fillf<<<grid, 256, 0, st>>>(x, C, 7u);
            timing t = time_graph([&](int i, cu_q q) {
                cu_mv p = {};
                p.w = m.at(i % copies);
                p.groups = 1, p.rpg = R, p.gmod = 1, p.x = x, p.y = y;
                CK(cuk_matvec(&p, 1, q));
            }, launches, 20, pdl, fast, st);
            row(name, (double)m.bytes1, t, read_gbs, js, false);
            m.free_all();
            CK(cudaFree(x));
            CK(cudaFree(y));
        }
        /* routed experts: SwiGLU of K = 4 of 64 stacked [1536, 2048] gate/up, then the
           down projections streamed into the combine (downproj_combine) */
        const int64_t E = 64, K = 4, mI = 1536, d = 2048, sets = 16;
        char name[64], name2[64];
        snprintf(name, sizeof name, "glu 4 of 64 experts %s", kn);
        snprintf(name2, sizeof name2, "down+combine 4 of 64 %s", kn);
        /* the combine's parts (affine 4-bit; the pre-staged h in fast mode) */
        const char *const n_ldg = "down rows 4 of 64, ldg", *const n_bulk = "down rows 4 of 64, bulk",
                          *const n_pre = "down+combine 4 of 64, h pre-staged";
        const bool extra = (v == 1 && (want(n_ldg) || want(n_bulk) || want("short read"))) || (v == 2 && want(n_pre));
        if (!want(name) && !want(name2) && !extra) continue;
        dmat g = dmat_new(kind, mI, d, E, grid, st), u = dmat_new(kind, mI, d, E, grid, st);
        dmat dn = dmat_new(kind, d, mI, E, grid, st);
        float *x, *h, *y, *w;
        int32_t *idx;
        CK(cudaMalloc(&x, d * 4));
        CK(cudaMalloc(&h, K * mI * 4));
        CK(cudaMalloc(&y, d * 4));
        CK(cudaMalloc(&w, K * 4));
        k_fillf<<<grid, 256, 0, st>>>(x, d, 8u);
        k_fillf<<<grid, 256, 0, st>>>(h, K * mI, 9u);
        k_fillf<<<grid, 256, 0, st>>>(w, K, 10u);
        std::vector<int32_t> hidx(sets * K);
        for (int64_t i = 0; i < sets * K; i++) hidx[i] = (int32_t)((i * 17 + i / K) % E);
        CK(cudaMalloc(&idx, hidx.size() * 4));
        CK(cudaMemcpy(idx, hidx.data(), hidx.size() * 4, cudaMemcpyHostToDevice));
        if (want(name)) {
            timing t = time_graph([&](int i, cu_q q) {
                cu_mv p = {};
                p.w = g.stack(), p.up = u.stack(), p.idx = idx + (i % sets) * K, p.groups = K, p.rpg = mI;
                p.gmod = 1, p.x = x, p.y = h, p.ys = mI, p.epi = CU_EPI_SWIGLU;
                CK(cuk_matvec(&p, 1, q));
            }, sets, 20, pdl, fast, st);
            row(name, (double)(2 * K) * g.bytes1, t, read_gbs, js, false);
        }
        /* the combine's routed rows alone (k_burst_*: their loads without the staging of h
           or the sums) */
        if (v == 1 && want("short read")) { /* the same bytes as one plain read, 128 blocks of 512 */
            const size_t nb = (size_t)K * dn.bytes1 / 16;
            char name5[64];
            snprintf(name5, sizeof name5, "short read %.1f MiB", (double)nb * 16 / 1048576.0);
            timing t5 = time_graph([&](int i, cu_q q) {
                const uint4 *src = reinterpret_cast<const uint4 *>(dn.data) + (size_t)(i % 12) * nb; /* 12 x 6.8 MB within the stack */
                CK(launch(q, dim3((unsigned)(d / BU_WARPS)), dim3(BU_WARPS * 32), 0, k_read_pdl, src, nb, (unsigned *)y));
            }, sets, 20, pdl, fast, st);
            row(name5, (double)nb * 16, t5, read_gbs, js, false);
        }
        if (v == 1 && want(n_ldg)) {
            timing t3 = time_graph([&](int i, cu_q q) {
                const burst_args ba = {dn.stack(), idx + (i % sets) * K, (unsigned *)y};
                CK(launch(q, dim3((unsigned)(d / BU_WARPS)), dim3(BU_WARPS * 32), 0, k_burst_ldg, ba));
            }, sets, 20, pdl, fast, st);
            row(n_ldg, (double)K * dn.bytes1, t3, read_gbs, js, false);
        }
        if (v == 1 && pdl && want(n_bulk)) {
            const int64_t ng = mI / 64;
            const size_t smem = (size_t)K * (size_t)(BU_WARPS * (mI / 2) + 2 * BU_WARPS * ng * 2);
            CK(cudaFuncSetAttribute(k_burst_bulk, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
            timing t4 = time_graph([&](int i, cu_q q) {
                const burst_args ba = {dn.stack(), idx + (i % sets) * K, (unsigned *)y};
                CK(launch(q, dim3((unsigned)(d / BU_WARPS)), dim3(BU_WARPS * 32), smem, k_burst_bulk, ba));
            }, sets, 20, pdl, fast, st);
            row(n_bulk, (double)K * dn.bytes1, t4, read_gbs, js, false);
        }
        if (v == 2 && want(n_pre)) { /* its h read as int8 tails */
            const int64_t sf = stage_floats(mI, true);
            float *hq;
            CK(cudaMalloc(&hq, (size_t)(K * sf) * 4));
            k_stage_h<<<1, 256, 0, st>>>(h, mI, (int)(mI / 32), (int)K, hq, sf, 64);
            CK(cudaGetLastError());
            timing t6 = time_graph([&](int i, cu_q q) {
                cu_combine p = {};
                p.down = dn.stack(), p.idx = idx + (i % sets) * K, p.w = w, p.K = K, p.h = h, p.hs = mI;
                p.x = y, p.residual = true, p.hq = hq;
                CK(cuk_combine(&p, q));
            }, sets, 20, pdl, fast, st);
            row(n_pre, (double)K * dn.bytes1, t6, read_gbs, js, false);
            CK(cudaFree(hq));
        }
        if (want(name2)) {
            timing t2 = time_graph([&](int i, cu_q q) {
                cu_combine p = {};
                p.down = dn.stack(), p.idx = idx + (i % sets) * K, p.w = w, p.K = K, p.h = h, p.hs = mI;
                p.x = y, p.residual = true;
                CK(cuk_combine(&p, q));
            }, sets, 20, pdl, fast, st);
            row(name2, (double)K * dn.bytes1, t2, read_gbs, js, false);
        }
        g.free_all();
        u.free_all();
        dn.free_all();
        CK(cudaFree(x));
        CK(cudaFree(h));
        CK(cudaFree(y));
        CK(cudaFree(w));
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
