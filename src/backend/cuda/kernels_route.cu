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

/* One thread: the chunk is at most ZCU_CHUNK tokens x K choices (a few microseconds). */
__global__ void k_moe_group(const int32_t *idx, int64_t n, int64_t K, int64_t E, int32_t *goff,
                            int32_t *list, int32_t *slot) {
    extern __shared__ int32_t cnt[];
    pdl_launch();
    pdl_wait();
    if (threadIdx.x != 0) return;
    for (int64_t e = 0; e < E; e++) cnt[e] = 0;
    for (int64_t i = 0; i < n * K; i++) cnt[idx[i]]++;
    goff[0] = 0;
    for (int64_t e = 0; e < E; e++) {
        goff[e + 1] = goff[e] + cnt[e];
        cnt[e] = 0; /* reused as fill cursor */
    }
    for (int64_t t = 0; t < n; t++)
        for (int64_t k = 0; k < K; k++) {
            const int32_t e = idx[t * K + k], s = goff[e] + cnt[e]++;
            slot[t * K + k] = s;
            list[s] = (int32_t)t;
        }
}

extern "C" cudaError_t cuk_moe_group(const int32_t *idx, int64_t n, int64_t K, int64_t E,
                                     int32_t *goff, int32_t *list, int32_t *slot, cu_q q) {
    if (n <= 0) return cudaSuccess;
    if (E < 1 || E > ZCU_ROUTE_MAX_E) return cudaErrorInvalidValue;
    return launch(q, dim3(1), dim3(32), (size_t)E * sizeof(int32_t), k_moe_group, idx, n, K, E,
                  goff, list, slot);
}
