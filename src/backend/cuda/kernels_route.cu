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

/* One block: the chunk's N = n x K choices staged in shared memory, then each warp takes
   experts e = warp, warp + 32, ...: a count pass (ballots over 32 choices at a time), the
   offsets (thread 0, in expert order), and a fill pass in which every choice of expert e
   gets the next row in flat (token, then k) order: moe.c's grouping, in a few
   microseconds (one thread walking the choices took 208 us for a chunk of 512 on an H100). */
enum { MG_THREADS = 1024 };

__global__ void __launch_bounds__(MG_THREADS) k_moe_group(const int32_t *idx, int64_t n, int64_t K, int64_t E,
                                                          int32_t *goff, int32_t *list, int32_t *slot) {
    extern __shared__ int32_t gsm[];
    int32_t *cnt = gsm, *ch = gsm + E; /* [E] counts, then offsets; [N] the choices */
    pdl_launch();
    pdl_wait();
    const int64_t N = n * K;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = MG_THREADS / 32;
    for (int64_t i = threadIdx.x; i < N; i += MG_THREADS) ch[i] = idx[i];
    __syncthreads();
    for (int64_t e = warp; e < E; e += nw) {
        int c = 0;
        for (int64_t i0 = 0; i0 < N; i0 += 32)
            c += __popc(__ballot_sync(0xffffffffu, i0 + lane < N && ch[i0 + lane] == e));
        if (lane == 0) cnt[e] = c;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        int32_t s = 0;
        goff[0] = 0;
        for (int64_t e = 0; e < E; e++) {
            const int32_t c = cnt[e];
            cnt[e] = s; /* the expert's first row */
            s += c;
            goff[e + 1] = s;
        }
    }
    __syncthreads();
    for (int64_t e = warp; e < E; e += nw) {
        int32_t base = cnt[e];
        for (int64_t i0 = 0; i0 < N; i0 += 32) {
            const int64_t i = i0 + lane;
            const bool hit = i < N && ch[i] == e;
            const unsigned m = __ballot_sync(0xffffffffu, hit);
            if (hit) {
                const int32_t s = base + __popc(m & ((1u << lane) - 1u));
                slot[i] = s;
                list[s] = (int32_t)(i / K);
            }
            base += __popc(m);
        }
    }
}

extern "C" cudaError_t cuk_moe_group(const int32_t *idx, int64_t n, int64_t K, int64_t E,
                                     int32_t *goff, int32_t *list, int32_t *slot, cu_q q) {
    if (n <= 0) return cudaSuccess;
    const size_t smem = (size_t)(E + n * K) * sizeof(int32_t);
    if (E < 1 || E > ZCU_ROUTE_MAX_E || K < 1 || K > ZCU_ROUTE_MAX_K || smem > 48 * 1024)
        return cudaErrorInvalidValue;
    return launch(q, dim3(1), dim3(MG_THREADS), smem, k_moe_group, idx, n, K, E, goff, list, slot);
}
