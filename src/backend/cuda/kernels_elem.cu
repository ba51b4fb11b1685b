/*
 * kernels_elem.cu — the elementwise and per-row steps of the forward pass: embedding,
 * RMSNorm (alone and after the residual add), the rope table, the MLA projections'
 * epilogue (prep.cuh), q rope, SwiGLU, the MoE combine, the cache conversion and the
 * greedy argmax of a row of logits.
 *
 * The arithmetic that must repeat the reference's roundings (rope, SwiGLU, the combine)
 * is written with explicit roundings (common.cuh); the RMSNorm's sum of squares runs in
 * the canonical order of common.cuh (tokens-class against the CPU, bit for bit against
 * the fused kernels that normalise on load).
 */
#include "backend/cuda/dot.cuh"
#include "backend/cuda/prep.cuh"

#include <math.h>

enum { EW_THREADS = 256, ROW_THREADS = 256 };

template <int K>
__global__ void __launch_bounds__(ROW_THREADS) k_embed(cuw w, const cu_step *step, float *x) {
    pdl_launch();
    pdl_wait();
    const int64_t t = blockIdx.x;
    const rowp r = row_of(w, 0, (int64_t)step->ids[t]);
    for (int64_t c0 = (int64_t)threadIdx.x * 8; c0 < w.cols; c0 += (int64_t)blockDim.x * 8) {
        float v[8];
        deq8<K>(w, r, c0, v);
#pragma unroll
        for (int e = 0; e < 8; e++) x[t * w.cols + c0 + e] = v[e];
    }
}

extern "C" cudaError_t cuk_embed(cuw w, const cu_step *step, int64_t n, float *x, cu_q q) {
    if (n <= 0) return cudaSuccess;
    if (!cuk_kind_ok(w.kind) || w.cols % 32) return cudaErrorInvalidValue;
    cudaError_t err = cudaSuccess;
    ZCU_DISPATCH(w.kind, err = launch(q, dim3((unsigned)n), dim3(ROW_THREADS), 0, k_embed<K>, w, step, x));
    return err;
}

/* y = rmsnorm(x) * w of one row by the whole block (warp 0 sums the squares in the
   canonical order); x is read after a barrier, so the block may have just written it. */
__device__ __forceinline__ void block_rmsnorm(const float *xr, const float *w, int64_t d, float eps,
                                              float *yr, float *red) {
    __syncthreads();
    if (threadIdx.x < 32) {
        const float ss = warp_sumsq(xr, d);
        if (threadIdx.x == 0) *red = ss;
    }
    __syncthreads();
    const float inv = rms_inv(*red, d, eps);
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) yr[c] = norm_el(w[c], xr[c], inv);
}

__global__ void __launch_bounds__(ROW_THREADS) k_rmsnorm(const float *x, int64_t xs, const float *w,
                                                         int64_t d, float eps, float *y, int64_t ys) {
    __shared__ float red;
    pdl_launch();
    pdl_wait();
    block_rmsnorm(x + (int64_t)blockIdx.x * xs, w, d, eps, y + (int64_t)blockIdx.x * ys, &red);
}

extern "C" cudaError_t cuk_rmsnorm(const float *x, int64_t xs, const float *w, int64_t d,
                                   float eps, float *y, int64_t ys, int64_t n, cu_q q) {
    if (n <= 0) return cudaSuccess;
    return launch(q, dim3((unsigned)n), dim3(ROW_THREADS), 0, k_rmsnorm, x, xs, w, d, eps, y, ys);
}

__global__ void __launch_bounds__(ROW_THREADS) k_add_rmsnorm(float *x, const float *f, const float *w,
                                                             int64_t d, float eps, float *xn) {
    __shared__ float red;
    pdl_launch();
    pdl_wait();
    const int64_t t = blockIdx.x;
    float *xr = x + t * d;
    const float *fr = f + t * d;
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) xr[c] = __fadd_rn(xr[c], fr[c]);
    if (w) block_rmsnorm(xr, w, d, eps, xn + t * d, &red);
}

extern "C" cudaError_t cuk_add_rmsnorm(float *x, const float *f, const float *w, int64_t d,
                                       float eps, float *xn, int64_t n, cu_q q) {
    if (n <= 0) return cudaSuccess;
    return launch(q, dim3((unsigned)n), dim3(ROW_THREADS), 0, k_add_rmsnorm, x, f, w, d, eps, xn);
}

__global__ void __launch_bounds__(EW_THREADS) k_rope_table(float *table, int64_t p0, int64_t p1,
                                                           const float *inv_freq, float mscale,
                                                           int64_t rope) {
    pdl_launch();
    pdl_wait();
    const int64_t half = rope / 2;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (p1 - p0) * half;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t pos = p0 + i / half, f = i % half;
        float c, s;
        rope_cs(pos, inv_freq, f, mscale, &c, &s);
        table[pos * rope + f] = c;
        table[pos * rope + half + f] = s;
    }
}

extern "C" cudaError_t cuk_rope_table(float *table, int64_t p0, int64_t p1, const float *inv_freq,
                                      float mscale, int64_t rope, cu_q q) {
    if (p1 <= p0 || rope <= 0) return cudaSuccess;
    const dim3 grid(grid_blocks((p1 - p0) * (rope / 2), EW_THREADS, 4096));
    return launch(q, grid, dim3(EW_THREADS), 0, k_rope_table, table, p0, p1, inv_freq, mscale, rope);
}

__global__ void __launch_bounds__(ROW_THREADS) k_attn_prep(const __grid_constant__ cu_prep p) {
    __shared__ float red[2], css[128];
    pdl_launch();
    pdl_wait();
    prep_token(p, blockIdx.x, red, css);
}

extern "C" cudaError_t cuk_attn_prep(const cu_prep *p, cu_q q) {
    if (p->n <= 0) return cudaSuccess;
    if (p->rope > 128 || p->rope % 2) return cudaErrorInvalidValue;
    return launch(q, dim3((unsigned)p->n), dim3(ROW_THREADS), 0, k_attn_prep, *p);
}

__global__ void __launch_bounds__(EW_THREADS) k_q_rope(float *q, int64_t H, int64_t nope, int64_t rope,
                                                       const float *cs, float *qabs, int64_t R) {
    pdl_launch();
    pdl_wait();
    const int64_t t = blockIdx.x, half = rope / 2;
    const float *c_t = cs + t * rope;
    for (int64_t k = threadIdx.x; k < H * half; k += blockDim.x) {
        const int64_t h = k / half, i = k % half;
        float *x = q + (t * H + h) * (nope + rope) + nope;
        float ra, rb;
        rope_pair(x[2 * i], x[2 * i + 1], c_t[i], c_t[half + i], &ra, &rb);
        x[2 * i] = ra;
        x[2 * i + 1] = rb;
        if (qabs) {
            float *o = qabs + (t * H + h) * (R + rope) + R;
            o[2 * i] = ra;
            o[2 * i + 1] = rb;
        }
    }
}

extern "C" cudaError_t cuk_q_rope(float *q, int64_t n, int64_t H, int64_t nope, int64_t rope,
                                  const float *cs, float *qabs, int64_t R, cu_q q_) {
    if (n <= 0) return cudaSuccess;
    return launch(q_, dim3((unsigned)n), dim3(EW_THREADS), 0, k_q_rope, q, H, nope, rope, cs, qabs, R);
}

__global__ void __launch_bounds__(EW_THREADS) k_silu_mul(const float *g, const float *u, int64_t n, float *h) {
    pdl_launch();
    pdl_wait();
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        h[i] = silu_mul(g[i], u[i]);
}

extern "C" cudaError_t cuk_silu_mul(const float *g, const float *u, int64_t n, float *h, cu_q q) {
    if (n <= 0) return cudaSuccess;
    return launch(q, dim3(grid_blocks(n, EW_THREADS, 4096)), dim3(EW_THREADS), 0, k_silu_mul, g, u, n, h);
}

__global__ void __launch_bounds__(ROW_THREADS) k_moe_combine(const float *w, const int32_t *slot, int64_t K,
                                                             const float *de, const float *sd, float *x,
                                                             float *out, const float *norm_w, float eps,
                                                             float *xn, int64_t d) {
    __shared__ float red, wk[ZCU_COMBINE_MAX_K];
    __shared__ int64_t rows[ZCU_COMBINE_MAX_K];
    pdl_launch();
    pdl_wait();
    const int64_t t = blockIdx.x;
    if (threadIdx.x < K) {
        wk[threadIdx.x] = w[t * K + threadIdx.x];
        rows[threadIdx.x] = (slot ? (int64_t)slot[t * K + threadIdx.x] : t * K + threadIdx.x) * d;
    }
    __syncthreads();
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
        float acc = 0.0f;
        for (int64_t k = 0; k < K; k++) /* route order: score descending, ties to lower id */
            acc = __fadd_rn(acc, __fmul_rn(wk[k], de[rows[k] + c]));
        if (sd) acc = __fadd_rn(acc, sd[t * d + c]);
        if (x) x[t * d + c] = __fadd_rn(x[t * d + c], acc);
        else out[t * d + c] = acc;
    }
    if (x && norm_w) block_rmsnorm(x + t * d, norm_w, d, eps, xn + t * d, &red);
}

extern "C" cudaError_t cuk_moe_combine(const float *w, const int32_t *slot, int64_t K,
                                       const float *de, const float *sd, float *x, float *out,
                                       const float *norm_w, float eps, float *xn, int64_t d,
                                       int64_t n, cu_q q) {
    if (n <= 0) return cudaSuccess;
    if (K < 1 || K > ZCU_COMBINE_MAX_K || (!x && !out)) return cudaErrorInvalidValue;
    return launch(q, dim3((unsigned)n), dim3(ROW_THREADS), 0, k_moe_combine, w, slot, K, de, sd,
                  x, out, norm_w, eps, xn, d);
}

__global__ void __launch_bounds__(EW_THREADS) k_cache_to_f32(const void *cache, bool bf16, int64_t W,
                                                             int64_t R, int64_t T, float *out) {
    pdl_launch();
    pdl_wait();
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < T * R;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / R, c = i % R;
        out[i] = load_elem(cache, bf16, t * W + c);
    }
}

extern "C" cudaError_t cuk_cache_to_f32(const void *cache, bool bf16, int64_t W, int64_t R,
                                        int64_t T, float *out, cu_q q) {
    if (T <= 0) return cudaSuccess;
    return launch(q, dim3(grid_blocks(T * R, EW_THREADS, 4096)), dim3(EW_THREADS), 0, k_cache_to_f32, cache, bf16, W,
                  R, T, out);
}

__global__ void __launch_bounds__(EW_THREADS) k_fill_random(void *p, int64_t n, bool bf16, uint32_t seed) {
    pdl_launch();
    pdl_wait();
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        uint32_t x = (uint32_t)i * 2654435761u ^ seed ^ (uint32_t)(i >> 32) * 0x9e3779b9u;
        x ^= x >> 15;
        x *= 0x2c1b3c6du;
        x ^= x >> 12;
        x *= 0x297a2d39u;
        x ^= x >> 15;
        const float v = (float)(x >> 8) * (2.0f / 16777216.0f) - 1.0f;
        store_elem(p, bf16, i, v);
    }
}

extern "C" cudaError_t cuk_fill_random(void *p, int64_t n, bool bf16, uint32_t seed, cu_q q) {
    if (n <= 0) return cudaSuccess;
    return launch(q, dim3(grid_blocks(n, EW_THREADS, 8192)), dim3(EW_THREADS), 0, k_fill_random, p, n, bf16, seed);
}

/* ---------------------------------------------------------------- argmax */

enum { AM_THREADS = 256, AM_PER = 4, AM_MAX_BLOCKS = 1024 };

/* k_argmax's work: the finished-block counter (a pair of int32, so what follows stays
   8-byte aligned), the blocks' best values, then their indices. */
enum {
    AM_VALUES = 2 * sizeof(int32_t),
    AM_INDICES = AM_VALUES + AM_MAX_BLOCKS * sizeof(float),
    AM_WORK = AM_INDICES + AM_MAX_BLOCKS * sizeof(int64_t)
};
static_assert(AM_INDICES % 8 == 0, "the indices are int64");

/* (v, i) beats the best so far (bv, bi; bi < 0: none): NaN never does, a larger value
   does, an equal one with a lower index does.  A strict order on the candidates, so a
   reduction gives one answer whatever the order it combines them in. */
__device__ __forceinline__ bool am_better(float v, int64_t i, float bv, int64_t bi) {
    return i >= 0 && !isnan(v) && (bi < 0 || v > bv || (v == bv && i < bi));
}

/* The block's best of (bv, bi) into (*v, *i) of thread 0 (sv, si: shared scratch). */
__device__ __forceinline__ void am_block(float bv, int64_t bi, float *sv, int64_t *si) {
    for (int o = 16; o > 0; o >>= 1) {
        const float v = __shfl_xor_sync(0xffffffffu, bv, o);
        const int64_t i = __shfl_xor_sync(0xffffffffu, bi, o);
        if (am_better(v, i, bv, bi)) bv = v, bi = i;
    }
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) sv[warp] = bv, si[warp] = bi;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x >> 5); w++)
            if (am_better(sv[w], si[w], bv, bi)) bv = sv[w], bi = si[w];
        sv[0] = bv, si[0] = bi;
    }
}

/* zmlx_logits_argmax on the device: every block takes the best of its AM_PER elements per
   thread (loads in flight together) into work's partials; the last block to finish (a
   counter in work, reset for the next launch) reduces them.  x[0] NaN gives 0, as the
   sequential scan that starts from it does. */
__global__ void __launch_bounds__(AM_THREADS) k_argmax(const float *x, int64_t n, int32_t *work, int32_t *out) {
    __shared__ float sv[AM_THREADS / 32];
    __shared__ int64_t si[AM_THREADS / 32];
    __shared__ bool last;
    pdl_launch();
    pdl_wait();
    const int64_t stride = (int64_t)gridDim.x * blockDim.x, i0 = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    float bv = 0.0f;
    int64_t bi = -1;
    for (int64_t b = i0; b < n; b += AM_PER * stride) {
        float v[AM_PER];
#pragma unroll
        for (int k = 0; k < AM_PER; k++) v[k] = b + k * stride < n ? x[b + k * stride] : 0.0f;
#pragma unroll
        for (int k = 0; k < AM_PER; k++)
            if (b + k * stride < n && am_better(v[k], b + k * stride, bv, bi)) bv = v[k], bi = b + k * stride;
    }
    am_block(bv, bi, sv, si);
    float *pv = reinterpret_cast<float *>(reinterpret_cast<char *>(work) + AM_VALUES);
    int64_t *pi = reinterpret_cast<int64_t *>(reinterpret_cast<char *>(work) + AM_INDICES);
    if (threadIdx.x == 0) {
        pv[blockIdx.x] = sv[0];
        pi[blockIdx.x] = si[0];
        __threadfence();
        last = atomicAdd(work, 1) == (int)gridDim.x - 1;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    bv = 0.0f, bi = -1;
    for (int b = threadIdx.x; b < (int)gridDim.x; b += blockDim.x) {
        const float v = __ldcg(pv + b);
        const int64_t i = __ldcg(pi + b);
        if (am_better(v, i, bv, bi)) bv = v, bi = i;
    }
    __syncthreads(); /* sv, si reused */
    am_block(bv, bi, sv, si);
    if (threadIdx.x == 0) {
        *out = (int32_t)(si[0] < 0 || isnan(x[0]) ? 0 : si[0]);
        *work = 0;
    }
}

extern "C" size_t cuk_argmax_work_bytes(void) {
    return AM_WORK;
}

extern "C" cudaError_t cuk_argmax(const float *x, int64_t n, int32_t *work, int32_t *out, cu_q q) {
    if (n < 1 || n > 0x7fffffff || !work || ((uintptr_t)work & 7)) return cudaErrorInvalidValue;
    const dim3 grid(grid_blocks(n, AM_THREADS * AM_PER, AM_MAX_BLOCKS));
    return launch(q, grid, dim3(AM_THREADS), 0, k_argmax, x, n, work, out);
}
