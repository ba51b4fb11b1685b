/*
 * attn.cuh — what the two absorbed-attention split kernels share (kernels_attn.cu's float32
 * one, kernels_attn_tc.cu's tensor-core one): which positions a split reads, so both
 * feed the same merge.
 */
#ifndef ZMLX_BACKEND_CUDA_ATTN_CUH
#define ZMLX_BACKEND_CUDA_ATTN_CUH

#include "backend/cuda/common.cuh"

/* Query qi's entries [t0, t1) in split `split`: its context is positions 0 .. pos + qi
   (dense) or the idx_n[qi] listed positions ix (sparse, DeepSeek-V3.2); the context of
   the whole step (pos + n_q, or the list) is cut into nsplit spans of a multiple of
   `tile` entries.  Reads the step and the lists: call after pdl_wait(). */
struct attn_span {
    const int32_t *ix; /* sparse: the positions (ascending); NULL dense */
    int64_t t0, t1;
};
__device__ __forceinline__ attn_span attn_span_of(const cu_attn &p, int64_t qi, int64_t split, int tile) {
    const int64_t pos = p.step->pos;
    int64_t Ti = pos + qi + 1, tot = pos + p.n_q;
    attn_span a = {nullptr, 0, 0};
    if (p.idx && p.idx_n[qi] >= 0) {
        a.ix = p.idx + qi * p.idx_stride;
        Ti = tot = p.idx_n[qi];
    }
    int64_t span = (tot + p.nsplit - 1) / p.nsplit;
    span = (span + tile - 1) / tile * tile;
    a.t0 = split * span;
    a.t1 = a.t0 + span < Ti ? a.t0 + span : Ti;
    return a;
}

#endif
