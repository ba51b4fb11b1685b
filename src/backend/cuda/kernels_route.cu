/*
 * kernels_route.cu — the MoE router after its logits (zop_route, one warp per token: the
 * arithmetic of route.cuh), and the grouping of a chunk's choices by expert for the
 * prefill GEMMs.
 */
#include "backend/cuda/route.cuh"

__global__ void k_route(cu_route_cfg c, const float *logits, const float *bias, int32_t *idx,
                        float *w) {
    extern __shared__ float sm[];
    pdl_launch();
    pdl_wait();
    const int64_t t = blockIdx.x;
    const int *chosen;
    const float *wsel;
    warp_route(c, logits + t * c.n_experts, bias, sm, &chosen, &wsel);
    const int lane = threadIdx.x;
    if (lane < c.k) {
        idx[t * c.k + lane] = chosen[lane];
        w[t * c.k + lane] = wsel[lane];
    }
}

extern "C" cudaError_t cuk_route(cu_route_cfg cfg, const float *logits, const float *bias,
                                 int64_t n, int32_t *idx, float *w, cu_q q) {
    if (n <= 0) return cudaSuccess;
    const int G = cfg.n_group > 1 ? cfg.n_group : 1;
    if (cfg.n_experts < 1 || cfg.n_experts > ZCU_ROUTE_MAX_E || cfg.k < 1 ||
        cfg.k > cfg.n_experts || cfg.k > ZCU_ROUTE_MAX_K || cfg.n_experts % G || n > 0x7fffffff)
        return cudaErrorInvalidValue;
    return launch(q, dim3((unsigned)n), dim3(32), route_smem(cfg.n_experts, G), k_route, cfg,
                  logits, bias, idx, w);
}

/* One block of 32 warps; warp w takes the w-th of 32 contiguous segments of the chunk's N =
   n x K choices, 32 at a time in flat (token, then k) order.  Pass 1: each warp counts
   its segment's choices per expert (__match_any_sync: the lanes of one expert, the
   lowest of them adds their number to wc[w][e]).  Then the experts' offsets (goff, in
   expert order) and each warp's first row of each expert (the expert's offset plus the
   earlier segments' counts).  Pass 2: the same walk, each choice's row = its warp's next
   row of its expert plus its rank among the iteration's lanes of that expert.  So every
   choice of expert e gets the next row in flat order: moe.c's grouping.  Shared memory:
   32 x E 16-bit counts and E offsets, whatever N (at most 65,535); each warp walks N / 32
   choices twice (the per-expert scans of all N choices before took 41 / 76 us for chunks
   of 512 / 1,024 on an H100). */
enum { MG_THREADS = 1024, MG_WARPS = MG_THREADS / 32 };

__global__ void __launch_bounds__(MG_THREADS) k_moe_group(const int32_t *idx, int64_t n, int64_t K, int64_t E,
                                                          int32_t *goff, int32_t *list, int32_t *slot) {
    extern __shared__ int32_t gsm[];
    int32_t *start = gsm;                                      /* [E] the experts' first rows */
    uint16_t *wc = reinterpret_cast<uint16_t *>(gsm + E);      /* [MG_WARPS][E] */
    pdl_launch();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int N = (int)(n * K), k = (int)K, ne = (int)E;
    const int seg = (N + MG_WARPS * 32 - 1) / (MG_WARPS * 32) * 32; /* a warp's choices, whole iterations */
    const int i0 = warp * seg, i1 = i0 + seg < N ? i0 + seg : N;
    for (int i = threadIdx.x; i < MG_WARPS * ne; i += MG_THREADS) wc[i] = 0;
    pdl_wait();
    __syncthreads();
    uint16_t *my = wc + warp * ne;
    for (int i = i0; i < i1; i += 32) { /* pass 1: the segment's counts */
        const int e = i + lane < i1 ? idx[i + lane] : -1;
        const unsigned peers = __match_any_sync(0xffffffffu, e);
        if (e >= 0 && lane == __ffs(peers) - 1) my[e] = (uint16_t)(my[e] + __popc(peers));
        __syncwarp();
    }
    __syncthreads();
    for (int e = threadIdx.x; e < ne; e += MG_THREADS) { /* the experts' totals */
        int t = 0;
        for (int w = 0; w < MG_WARPS; w++) t += wc[w * ne + e];
        start[e] = t;
    }
    __syncthreads();
    if (warp == 0) { /* exclusive scan of the totals, in expert order */
        int run = 0;
        if (lane == 0) goff[0] = 0;
        for (int e0 = 0; e0 < ne; e0 += 32) {
            const int c = e0 + lane < ne ? start[e0 + lane] : 0;
            int incl = c;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const int v = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += v;
            }
            if (e0 + lane < ne) {
                start[e0 + lane] = run + incl - c;
                goff[e0 + lane + 1] = run + incl;
            }
            run += __shfl_sync(0xffffffffu, incl, 31);
        }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < ne; e += MG_THREADS) { /* each warp's first row of expert e */
        int base = start[e];
        for (int w = 0; w < MG_WARPS; w++) {
            const int c = wc[w * ne + e];
            wc[w * ne + e] = (uint16_t)base;
            base += c;
        }
    }
    __syncthreads();
    for (int i = i0; i < i1; i += 32) { /* pass 2: the rows */
        const int e = i + lane < i1 ? idx[i + lane] : -1;
        const unsigned peers = __match_any_sync(0xffffffffu, e);
        if (e >= 0) {
            const int s = my[e] + __popc(peers & ((1u << lane) - 1u));
            slot[i + lane] = s;
            list[s] = (i + lane) / k;
        }
        __syncwarp();
        if (e >= 0 && lane == __ffs(peers) - 1) my[e] = (uint16_t)(my[e] + __popc(peers));
        __syncwarp();
    }
}

extern "C" cudaError_t cuk_moe_group(const int32_t *idx, int64_t n, int64_t K, int64_t E,
                                     int32_t *goff, int32_t *list, int32_t *slot, cu_q q) {
    if (n <= 0) return cudaSuccess;
    const size_t smem = (size_t)E * sizeof(int32_t) + (size_t)(MG_WARPS * E) * sizeof(uint16_t);
    if (E < 1 || E > ZCU_ROUTE_MAX_E || K < 1 || K > ZCU_ROUTE_MAX_K || n * K > 65535)
        return cudaErrorInvalidValue;
    if (smem > 48 * 1024) { /* over 704 experts: the opt-in shared memory */
        const cudaError_t err = cudaFuncSetAttribute(k_moe_group, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (err != cudaSuccess) return err;
    }
    return launch(q, dim3(1), dim3(MG_THREADS), smem, k_moe_group, idx, n, K, E, goff, list, slot);
}
