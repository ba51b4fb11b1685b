/*
 * cuda_pdl.cu — does a decode launch overlap the one before it?  A chain of dependent
 * 4-bit matvec launches (each one's input is the previous one's output, its weights its
 * own, L2 cannot serve them), captured in a CUDA graph with programmatic dependent launch,
 * timed per launch for block layouts that differ only in how many of them an SM holds:
 *
 *   one-an-SM   one block of 16 warps a multiprocessor (dynamic shared memory fills the
 *               SM, as 128 registers x 512 threads do in the decode kernels): the next
 *               launch's blocks start only as this one's blocks exit;
 *   co-resident the same grid (one block an SM) in blocks that take half an SM (8 or 16
 *               warps at <= 128 or <= 64 registers): every block of the next launch can
 *               start during this one and load its rows before its wait;
 *   full-8      two blocks of 8 warps an SM (the grid fills every slot).
 *
 * Each block asks for its rows (the whole row of each of its warps' rows, in registers)
 * before the PDL wait when `early`, after it otherwise; after the wait it stages x (the
 * previous launch's 2,048 outputs) in shared memory, sums, and writes its outputs.  The
 * question this answers: does the per-launch time of the decode kernels (3.6-6 us whatever
 * their bytes, docs/cuda.md) come from blocks that cannot start early?  And, for the small
 * launches, what that time is made of: the same chain without staging x, with x staged by
 * one warp a block, and with x written in 4 or 16 copies that the blocks read in turn (the
 * same lines asked of L2 by every block, or spread over more of its slices).
 *
 * Usage: zmlx-cuda_pdl [--launches N] [--reps N] [--probe]
 *   --probe  also stamp (globaltimer) when the blocks of the 0.5 and 12.6 MB 16-warp dp4a
 *            chains start, leave their wait, have x staged and end (four launches shown;
 *            x's staging time of the blocks dispatched before their predecessor ended
 *            against the others)
 * Prints a markdown table and one JSON line per row.
 */
#include "backend/cuda/common.cuh"
#include "backend/cuda/kernels.h"
#include "cuda_bench.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

enum { PK = 2048, PUNITS = PK / 32, MAXC = 16 }; /* inputs a row; 16-byte units (32 nibbles) a row */

typedef struct pdl_args {
    const uint4 *w; /* rows x PUNITS units */
    const float *x; /* PK inputs (the previous launch's outputs) */
    float *y;       /* rows outputs */
    int rows;
    int early;
    int copies;  /* x read from copy blockIdx % copies; y written to every copy */
    int stage;   /* x staged by every warp (1), by warp 0 alone (2), not at all (0); dp4a: 3, read
                    coalesced into shared memory first (float4 a thread), then staged from there */
    int xstride; /* floats between copies */
    int dot;     /* 0: nibbles to floats, one FMA each; 1: x as int8, dp4a (the fast mode's cost) */
    int cg;      /* dp4a's staging loads from L2 only (ld.global.cg) */
    int cluster; /* dp4a, > 1: x read from L2 once a cluster of that many blocks, by the tensor
                    memory accelerator, multicast into every block's shared memory (sm_90) */
    int *smid; /* when set, block b writes the multiprocessor it ran on to smid[b] */
    unsigned long long *stamps; /* when set, block b's start, wait's end, x staged and end (globaltimer, ns)
                                   at 4 b */
} pdl_args;

__device__ __forceinline__ unsigned long long gtime(void) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

/* One warp's sum of one row: lane l holds units l and l + 32. */
__device__ __forceinline__ float row_dot(uint4 a, uint4 b, const float *xs, int lane) {
    float acc = 0.0f;
    const uint32_t wa[4] = {a.x, a.y, a.z, a.w}, wb[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const float *xu = xs + lane + 32 * h; /* xs[e * PUNITS + u]: input u * 32 + e */
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const uint32_t v = h ? wb[q] : wa[q];
#pragma unroll
            for (int t = 0; t < 8; t++)
                acc = fmaf((float)((int)((v >> (4 * t)) & 15u) - 8), xu[(q * 8 + t) * PUNITS], acc);
        }
    }
#pragma unroll
    for (int o = 16; o; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    return acc;
}

/* The same with x staged as int8 words: xq[(q * 2 + o) * PUNITS + u] holds inputs
   u * 32 + q * 8 + o + 2k (k = 0..3), the bytes of nibbles 2k + o of word q of unit u. */
__device__ __forceinline__ float row_dot8(uint4 a, uint4 b, const int *xq, int lane) {
    int acc = 0;
    const uint32_t wa[4] = {a.x, a.y, a.z, a.w}, wb[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
    for (int h = 0; h < 2; h++)
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const uint32_t v = h ? wb[q] : wa[q];
            acc = __dp4a((int)(v & 0x0f0f0f0fu), xq[(q * 2) * PUNITS + lane + 32 * h], acc);
            acc = __dp4a((int)((v >> 4) & 0x0f0f0f0fu), xq[(q * 2 + 1) * PUNITS + lane + 32 * h], acc);
        }
#pragma unroll
    for (int o = 16; o; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    return (float)acc * (1.0f / 64.0f);
}

__device__ __forceinline__ uint32_t sh_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

template <int WARPS, int R, int MINB>
__global__ void __launch_bounds__(WARPS * 32, MINB) k_chain(const __grid_constant__ pdl_args a) {
    extern __shared__ __align__(128) float xs[]; /* PK floats (staged), PK floats (x as read), then
                                                    whatever fills the SM */
    pdl_launch();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    __shared__ __align__(8) uint64_t xbar; /* a.cluster: the multicast copy's arrival */
    if (a.cluster > 1) { /* the barrier ready in every block of the cluster before the wait */
        if (threadIdx.x == 0) {
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(sh_addr(&xbar)) : "memory");
            asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        }
        asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
        if (threadIdx.x == 0)
            asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(sh_addr(&xbar)),
                         "r"((int)(PK * sizeof(float)))
                         : "memory");
    }
#endif
    unsigned long long t0 = 0;
    if (a.stamps && threadIdx.x == 0) t0 = gtime();
    if (a.smid && threadIdx.x == 0) {
        int sm;
        asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
        a.smid[blockIdx.x] = sm;
    }
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int nw = gridDim.x * WARPS, w0 = blockIdx.x * WARPS + warp;
    uint4 ra[R], rb[R];
#pragma unroll
    for (int i = 0; i < R; i++) ra[i] = rb[i] = make_uint4(0, 0, 0, 0);
    auto load = [&]() {
#pragma unroll
        for (int i = 0; i < R; i++) {
            const int r = w0 + i * nw;
            if (r < a.rows) {
                ra[i] = __ldg(a.w + (size_t)r * PUNITS + lane);
                rb[i] = __ldg(a.w + (size_t)r * PUNITS + lane + 32);
            }
        }
    };
    if (a.early) load();
    if (a.early == 2) { /* the rows arrived before the wait, whatever the compiler's order */
        uint32_t f = 0;
#pragma unroll
        for (int i = 0; i < R; i++) f ^= ra[i].x ^ rb[i].w;
        asm volatile("" ::"r"(f));
    }
    pdl_wait();
    if (a.stamps && threadIdx.x == 0) a.stamps[4 * blockIdx.x] = t0, a.stamps[4 * blockIdx.x + 1] = gtime();
    if (!a.early) load();
    const float *x = a.x + (size_t)(blockIdx.x % a.copies) * a.xstride;
    int *xq = reinterpret_cast<int *>(xs);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (a.cluster > 1) { /* rank 0 asks for x once; every block waits for its copy */
        float *xr = xs + PK;
        uint32_t rank;
        asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
#if defined(__CUDA_ARCH_FEAT_SM90_ALL) /* .multicast::cluster: sm_90a code (the host checks) */
        if (rank == 0 && threadIdx.x == 0)
            asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
                         " [%0], [%1], %2, [%3], %4;" ::"r"(sh_addr(xr)),
                         "l"(x), "r"((int)(PK * sizeof(float))), "r"(sh_addr(&xbar)),
                         "h"((unsigned short)((1u << a.cluster) - 1))
                         : "memory");
#else
        (void)rank;
        __trap();
#endif
        asm volatile("{\n .reg .pred p;\n XW%=:\n mbarrier.try_wait.parity.shared::cta.b64 p, [%0], 0;\n"
                     " @!p bra XW%=;\n}" ::"r"(sh_addr(&xbar))
                     : "memory");
        x = xr;
    }
#endif
    if (a.dot == 1 && a.stage == 3) { /* x as read into shared memory first, coalesced */
        float *xr = xs + PK;
        for (int j = threadIdx.x; j < PK / 4; j += WARPS * 32)
            reinterpret_cast<float4 *>(xr)[j] = reinterpret_cast<const float4 *>(x)[j];
        __syncthreads();
        x = xr;
    }
    if (a.dot == 1) { /* PK / 4 words, each from 4 inputs 8 bytes apart */
#pragma unroll
        for (int i = 0; i < PK / 4 / (WARPS * 32); i++) {
            const int t = threadIdx.x + i * WARPS * 32, u = t % PUNITS, c = t / PUNITS;
            const float *p = x + u * 32 + (c >> 1) * 8 + (c & 1);
            uint32_t wv = 0;
#pragma unroll
            for (int k = 0; k < 4; k++)
                wv |= (uint32_t)(uint8_t)(int8_t)__float2int_rn(
                          fminf(fmaxf((a.cg && a.cluster <= 1 ? __ldcg(p + 2 * k) : p[2 * k]) * 64.0f, -127.0f),
                                127.0f))
                      << (8 * k);
            xq[c * PUNITS + u] = (int)wv;
        }
    } else if (a.stage == 1) { /* every thread's loads in flight at once; transposed: lanes read apart banks */
        float v[PK / (WARPS * 32)];
#pragma unroll
        for (int i = 0; i < PK / (WARPS * 32); i++) v[i] = x[threadIdx.x + i * WARPS * 32];
#pragma unroll
        for (int i = 0; i < PK / (WARPS * 32); i++) {
            const int j = threadIdx.x + i * WARPS * 32;
            xs[(j & 31) * PUNITS + (j >> 5)] = v[i];
        }
    } else if (a.stage == 2 && warp == 0) {
        float v[PK / 32];
#pragma unroll
        for (int i = 0; i < PK / 32; i++) v[i] = x[lane + i * 32];
#pragma unroll
        for (int i = 0; i < PK / 32; i++) xs[lane * PUNITS + i] = v[i];
    }
    __syncthreads();
    if (a.stamps && threadIdx.x == 0) a.stamps[4 * blockIdx.x + 2] = gtime();
#pragma unroll
    for (int i = 0; i < R; i++) {
        const int r = w0 + i * nw;
        if (r >= a.rows) break;
        const float s = a.dot == 1 ? row_dot8(ra[i], rb[i], xq, lane) : row_dot(ra[i], rb[i], xs, lane);
        const float v = fminf(fmaxf(s * (1.0f / 256.0f), -1.0f), 1.0f);
        if (lane == 0)
            for (int c = 0; c < a.copies; c++) a.y[(size_t)c * a.xstride + r] = v;
    }
    if (a.stamps) {
        __syncthreads();
        if (threadIdx.x == 0) a.stamps[4 * blockIdx.x + 3] = gtime();
    }
}

typedef void (*kfn)(pdl_args);

/* 1 when the device code for this GPU has the multicast copy (built for sm_90a). */
__global__ void k_multicast_built(int *o) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    *o = 1;
#else
    *o = 0;
#endif
}

/* One launch of the chain: PDL (pdl) and clusters of `cluster` blocks along x (> 1), as
   the decode launches (common.cuh's launch_as). */
static cudaError_t launch_chain(kfn k, const pdl_args &a, int grid, int threads, size_t smem, cudaStream_t st,
                                int cluster, bool pdl) {
    const cu_q q = {st, pdl, true};
    return launch_as(q, cluster > 1 ? (unsigned)cluster : 0u, dim3(grid), dim3(threads), smem, k, a);
}

/* The instance for WARPS warps a block, MINB blocks an SM at most registers-wise, and a
   row count per warp of at least need (nullptr when none is instantiated). */
template <int WARPS, int MINB>
static kfn pick(int need, int *r) {
    static const int rs[] = {1, 2, 3, 4, 6, 8, 12, 16};
    static const kfn ks[] = {k_chain<WARPS, 1, MINB>, k_chain<WARPS, 2, MINB>,  k_chain<WARPS, 3, MINB>,
                             k_chain<WARPS, 4, MINB>, k_chain<WARPS, 6, MINB>,  k_chain<WARPS, 8, MINB>,
                             k_chain<WARPS, 12, MINB>, k_chain<WARPS, 16, MINB>};
    for (int i = 0; i < 8; i++)
        if (rs[i] >= need) return *r = rs[i], ks[i];
    return nullptr;
}

typedef struct layout {
    const char *name;
    int warps;     /* a block */
    int minb;      /* __launch_bounds__ blocks an SM */
    int grid_mult; /* blocks = grid_mult x SMs */
    int fill;      /* dynamic shared memory fills the SM to one (1) or two (2) blocks; 0: x only */
    int early;
    int copies; /* of x (spread over L2 slices) */
    int stage;  /* as pdl_args.stage */
    int small;  /* only the launches of at most 2 MB */
    int dot;    /* as pdl_args.dot */
    int xfix;   /* 1: x from a buffer no launch writes (the chain's order kept by the waits alone);
                   2: that, staged from L2 only (ld.global.cg); 3: the written x by ld.global.cg */
    int cluster; /* as pdl_args.cluster (dp4a; 0 or 1: none) */
} layout;

int main(int argc, char **argv) {
    int launches = 64, reps = 30, probe = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--launches") && i + 1 < argc)
            launches = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--probe"))
            probe = 1;
        else {
            fprintf(stderr, "usage: zmlx-cuda_pdl [--launches N] [--reps N] [--probe]\n");
            return 2;
        }
    }
    if (launches < 2 || launches > 4096 || reps < 3 || reps > 10000) {
        fprintf(stderr, "zmlx-cuda_pdl: --launches must be 2..4096 and --reps 3..10000\n");
        return 2;
    }
    int dev = 0, nsm = 0, smem_sm = 0, n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        fprintf(stderr, "zmlx-cuda_pdl: no CUDA device\n");
        return 1;
    }
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, dev));
    nsm = prop.multiProcessorCount;
    smem_sm = (int)prop.sharedMemPerMultiprocessor;
    printf("# %s, %d SMs, %d KB shared memory an SM, %d launches a graph\n\n", prop.name, nsm, smem_sm / 1024,
           launches);

    const layout lays[] = {
        {"one-an-SM 16w early", 16, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
        {"one-an-SM 16w late", 16, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0},
        {"co-resident 16w early", 16, 2, 1, 2, 1, 1, 1, 0, 0, 0, 0},
        {"co-resident 16w late", 16, 2, 1, 2, 0, 1, 1, 0, 0, 0, 0},
        {"co-resident 8w early", 8, 2, 1, 2, 1, 1, 1, 0, 0, 0, 0},
        {"co-resident 8w late", 8, 2, 1, 2, 0, 1, 1, 0, 0, 0, 0},
        {"full-8 (2 an SM) early", 8, 2, 2, 2, 1, 1, 1, 0, 0, 0, 0},
        {"one-an-SM 8w early", 8, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
        /* what the time of a small launch is made of, and x from more than one place */
        {"one-an-SM 16w early, x not staged", 16, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0},
        {"one-an-SM 16w early, x by warp 0", 16, 1, 1, 1, 1, 1, 2, 1, 0, 0, 0},
        {"one-an-SM 16w early, x in 4 copies", 16, 1, 1, 1, 1, 4, 1, 1, 0, 0, 0},
        {"one-an-SM 16w early, x in 16 copies", 16, 1, 1, 1, 1, 16, 1, 1, 0, 0, 0},
        {"one-an-SM 16w early, x in 16 copies by warp 0", 16, 1, 1, 1, 1, 16, 2, 1, 0, 0, 0},
        /* int8 x and dp4a: about the instructions a 4-bit row costs in the fast mode */
        {"one-an-SM 16w early, dp4a", 16, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0},
        {"one-an-SM 16w late, dp4a", 16, 1, 1, 1, 0, 1, 1, 0, 1, 0, 0},
        {"co-resident 16w early, dp4a", 16, 2, 1, 2, 1, 1, 1, 0, 1, 0, 0},
        {"co-resident 8w early, dp4a", 8, 2, 1, 2, 1, 1, 1, 0, 1, 0, 0},
        {"co-resident 8w late, dp4a", 8, 2, 1, 2, 0, 1, 1, 0, 1, 0, 0},
        /* the rows' arrival before the wait forced (early = 2) */
        {"one-an-SM 16w arrived, dp4a", 16, 1, 1, 1, 2, 1, 1, 0, 1, 0, 0},
        {"co-resident 16w arrived, dp4a", 16, 2, 1, 2, 2, 1, 1, 0, 1, 0, 0},
        {"co-resident 8w arrived, dp4a", 8, 2, 1, 2, 2, 1, 1, 0, 1, 0, 0},
        {"co-resident 16w arrived", 16, 2, 1, 2, 2, 1, 1, 0, 0, 0, 0},
        /* x that no launch wrote: is a freshly written x slower to stage? */
        {"one-an-SM 16w early, dp4a, x never written", 16, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {"co-resident 16w early, dp4a, x never written", 16, 2, 1, 2, 1, 1, 1, 1, 1, 1, 0},
        {"one-an-SM 16w early, dp4a, x never written, ld.cg", 16, 1, 1, 1, 1, 1, 1, 1, 1, 2, 0},
        {"one-an-SM 16w early, dp4a, ld.cg", 16, 1, 1, 1, 1, 1, 1, 1, 1, 3, 0},
        /* x read once a cluster, multicast by the tensor memory accelerator */
        {"one-an-SM 16w early, dp4a, x multicast to 2", 16, 1, 1, 1, 1, 1, 1, 0, 1, 0, 2},
        {"one-an-SM 16w early, dp4a, x multicast to 4", 16, 1, 1, 1, 1, 1, 1, 0, 1, 0, 4},
        {"co-resident 16w early, dp4a, x multicast to 4", 16, 2, 1, 2, 1, 1, 1, 0, 1, 0, 4},
        /* x read coalesced (a float4 a thread) into shared memory, then staged from there */
        {"one-an-SM 16w early, dp4a, x coalesced first", 16, 1, 1, 1, 1, 1, 3, 0, 1, 0, 0},
        {"co-resident 8w early, dp4a, x coalesced first", 8, 2, 1, 2, 1, 1, 3, 0, 1, 0, 0},
    };
    const int sizes_rows[] = {512, 2048, 6144, 12288}; /* 0.5, 2, 6, 12 MB of 4-bit rows */

    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    int multicast = 0;
    {
        int *d = nullptr;
        CK(cudaMalloc(&d, sizeof(int)));
        k_multicast_built<<<1, 1, 0, st>>>(d);
        CK(cudaGetLastError());
        CK(cudaMemcpy(&multicast, d, sizeof(int), cudaMemcpyDeviceToHost));
        cudaFree(d);
        if (!multicast) printf("(no multicast code for this GPU: the cluster rows are left out)\n\n");
    }
    const size_t max_rows = 12288, row_bytes = PUNITS * sizeof(uint4);
    uint4 *w = nullptr;
    float *ys = nullptr;
    int *smids = nullptr;
    CK(cudaMalloc(&smids, 4 * nsm * sizeof(int)));
    unsigned long long *stamps = nullptr;
    CK(cudaMalloc(&stamps, (size_t)launches * 4 * 2 * nsm * sizeof(unsigned long long)));
    CK(cudaMalloc(&w, (size_t)launches * max_rows * row_bytes));
    const size_t xstride = max_rows + 32; /* floats between copies of one launch's outputs */
    CK(cudaMalloc(&ys, (size_t)(launches + 1) * MAXC * xstride * sizeof(float)));
    CK(cudaMemset(ys, 0, (size_t)(launches + 1) * MAXC * xstride * sizeof(float)));
    {
        /* weights: a pattern of nibbles; outputs start small */
        std::vector<uint32_t> h(max_rows * PUNITS * 4);
        uint32_t s = 0x2545f491u;
        for (auto &v : h) s = s * 1664525u + 1013904223u, v = s;
        for (int l = 0; l < launches; l++)
            CK(cudaMemcpy(reinterpret_cast<char *>(w) + (size_t)l * max_rows * row_bytes, h.data(),
                          max_rows * row_bytes, cudaMemcpyHostToDevice));
        std::vector<float> x(max_rows);
        for (size_t i = 0; i < max_rows; i++) x[i] = (float)((int)(i * 37 % 201) - 100) / 100.0f;
        CK(cudaMemcpy(ys, x.data(), max_rows * sizeof(float), cudaMemcpyHostToDevice));
    }
    printf("| layout | MB a launch | blocks | SMs used | blocks an SM | registers | spill B | us a launch | GB/s |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int rows : sizes_rows) {
        for (const layout &L : lays) {
            const int grid = L.grid_mult * nsm, nw = grid * L.warps, need = (rows + nw - 1) / nw;
            if (L.small && rows > 2048) continue;
            if (L.cluster > 1 && !multicast) continue; /* the multicast: sm_90a code */
            int rr = 0;
            kfn k = nullptr;
            if (L.warps == 16 && L.minb == 1) k = pick<16, 1>(need, &rr);
            if (L.warps == 16 && L.minb == 2) k = pick<16, 2>(need, &rr);
            if (L.warps == 8 && L.minb == 1) k = pick<8, 1>(need, &rr);
            if (L.warps == 8 && L.minb == 2) k = pick<8, 2>(need, &rr);
            if (!k) continue;
            /* shared memory: x staged and as read, or enough that only `fill` blocks fit an SM */
            size_t smem = 2 * PK * sizeof(float);
            if (L.fill) smem = std::max(smem, (size_t)(smem_sm / L.fill - 2048));
            CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
            cudaFuncAttributes fa;
            CK(cudaFuncGetAttributes(&fa, k));
            int occ = 0;
            CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, k, L.warps * 32, smem));

            /* launch l's arguments (stamps: 4 x grid words a launch, or none) */
            auto args_of = [&](int l, unsigned long long *st4) {
                pdl_args a;
                a.w = w + (size_t)l * max_rows * PUNITS;
                a.x = L.xfix == 1 || L.xfix == 2 ? ys : ys + (size_t)l * xstride * MAXC;
                a.y = ys + (size_t)(l + 1) * xstride * MAXC;
                a.rows = rows;
                a.early = L.early;
                a.copies = L.copies;
                a.stage = L.stage;
                a.xstride = (int)xstride;
                a.dot = L.dot;
                a.cg = L.xfix >= 2;
                a.cluster = L.cluster;
                a.smid = nullptr;
                a.stamps = st4 ? st4 + (size_t)l * 4 * grid : nullptr;
                return a;
            };
            /* how many multiprocessors one launch's blocks land on */
            int used = 0;
            {
                pdl_args a = args_of(0, nullptr);
                a.smid = smids;
                CK(launch_chain(k, a, grid, L.warps * 32, smem, st, L.cluster, false));
                std::vector<int> h(grid);
                CK(cudaMemcpyAsync(h.data(), smids, grid * sizeof(int), cudaMemcpyDeviceToHost, st));
                CK(cudaStreamSynchronize(st));
                std::sort(h.begin(), h.end());
                used = (int)(std::unique(h.begin(), h.end()) - h.begin());
            }
            /* the chain as a graph, replayed (cuda_bench.h's time_graph) */
            auto chain = [&](unsigned long long *st4, int n_reps) {
                return time_graph(
                    [&](int l, cu_q q) {
                        CK(launch_chain(k, args_of(l, st4), grid, L.warps * 32, smem, q.st, L.cluster, q.pdl));
                    },
                    launches, n_reps, true, true, st);
            };
            const timing t = chain(nullptr, reps);
            if (probe && L.dot == 1 && L.early == 1 && L.warps == 16 && (rows == 12288 || rows == 512)) {
                /* when each launch's blocks start, leave their wait, have x staged and end
                   (the last replay's stamps) */
                chain(stamps, 1);
                std::vector<unsigned long long> h((size_t)launches * 4 * grid);
                CK(cudaMemcpy(h.data(), stamps, h.size() * sizeof(h[0]), cudaMemcpyDeviceToHost));
                auto at = [&](int l, int b, int c) { return (long long)h[((size_t)l * grid + b) * 4 + c]; };
                std::vector<long long> mn(4 * launches, 0), mx(4 * launches, 0);
                for (int l = 0; l < launches; l++)
                    for (int c = 0; c < 4; c++) {
                        mn[4 * l + c] = mx[4 * l + c] = at(l, 0, c);
                        for (int b = 1; b < grid; b++) {
                            mn[4 * l + c] = std::min(mn[4 * l + c], at(l, b, c));
                            mx[4 * l + c] = std::max(mx[4 * l + c], at(l, b, c));
                        }
                    }
                const long long o = mn[4 * (launches / 2)];
                const double mb = rows * row_bytes / 1e6;
                printf("\n%s, %.1f MB: ns from launch %d's first start (first / last block)\n\n", L.name, mb,
                       launches / 2);
                printf("| launch | start | wait over | x staged | end |\n|---|---|---|---|---|\n");
                for (int l = launches / 2; l < launches / 2 + 4 && l < launches; l++) {
                    printf("| %d |", l);
                    for (int c = 0; c < 4; c++) printf(" %lld / %lld |", mn[4 * l + c] - o, mx[4 * l + c] - o);
                    printf("\n");
                }
                /* blocks that started before their predecessor's last block ended (dispatched
                   early) against the others: how long x's staging took after their wait */
                std::vector<long long> se, sl;
                const int l0 = std::max(1, launches / 4);
                for (int l = l0; l < launches; l++)
                    for (int b = 0; b < grid; b++)
                        (at(l, b, 0) < mx[4 * (l - 1) + 3] ? se : sl).push_back(at(l, b, 2) - at(l, b, 1));
                auto med = [](std::vector<long long> v) { /* -1: none */
                    if (v.empty()) return -1LL;
                    std::sort(v.begin(), v.end());
                    return v[v.size() / 2];
                };
                printf("\nx staged after the wait, launches %d-%d: blocks dispatched before the launch ahead "
                       "ended %zu (median %lld ns), after %zu (median %lld ns)\n\n",
                       l0, launches - 1, se.size(), med(se), sl.size(), med(sl));
            }
            const double us = t.med_ms * 1000.0, mb = rows * row_bytes / 1e6;
            printf("| %s | %.1f | %d | %d | %d | %d | %zu | %.2f | %.0f |\n", L.name, mb, grid, used, occ, fa.numRegs,
                   (size_t)fa.localSizeBytes, us, mb * 1e3 / us);
            fprintf(stderr,
                    "{\"layout\":\"%s\",\"mb\":%.2f,\"blocks\":%d,\"per_sm\":%d,\"regs\":%d,\"rows_per_warp\":%d,"
                    "\"us\":%.3f}\n",
                    L.name, mb, grid, occ, fa.numRegs, rr, us);
        }
    }
    CK(cudaGetLastError());
    cudaFree(w);
    cudaFree(ys);
    cudaFree(smids);
    cudaFree(stamps);
    return 0;
}
