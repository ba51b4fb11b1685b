/*
 * kernels_elem.cu — the elementwise and per-row steps of the forward pass: embedding,
 * RMSNorm (alone and after the residual add), the MLA projections' epilogue (norms,
 * interleaved RoPE, the latent-cache write), q rope, SwiGLU and the MoE combine.
 *
 * Built with --fmad=false (CMakeLists.txt): every `a * b + c` here is two roundings, as
 * in the scalar reference (ops/ops_ref.c, built with -ffp-contract=off), so the combine
 * and rope reproduce the reference's arithmetic on equal inputs.  Reductions (the RMSNorm
 * sum of squares) run as a tree, not in index order: `tokens`-class differences only.
 */
#include "backend/cuda/common.cuh"

#include <math.h>

/* Per-row kernels use a whole 1024-thread block per row: a 2048-wide row is two elements
   a thread, so each pass costs one or two memory round trips. */
enum { EW_THREADS = 256, ROW_THREADS = 1024 };

template <typename T>
__global__ void __launch_bounds__(ROW_THREADS) k_embed(cuw w, const cu_step *step, float *x) {
    const int64_t t = blockIdx.x;
    const T *row = static_cast<const T *>(w.data) + (int64_t)step->ids[t] * w.ld;
#pragma unroll 4
    for (int64_t c = threadIdx.x; c < w.cols; c += blockDim.x) x[t * w.cols + c] = tof(row[c]);
}

extern "C" cudaError_t cuk_embed(cuw w, const cu_step *step, int64_t n, float *x,
                                 cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    ZCU_DISPATCH(w.kind, k_embed<T><<<(unsigned)n, ROW_THREADS, 0, st>>>(w, step, x));
    return cudaGetLastError();
}

/* 1 / sqrt(mean(x^2) + eps) of one row, the whole block cooperating. */
__device__ float row_inv_rms(const float *x, int64_t d, float eps, float *red) {
    float ss = 0.0f;
#pragma unroll 4
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) ss += x[c] * x[c];
    ss = block_sum(ss, red);
    return 1.0f / sqrtf(ss / (float)d + eps);
}

__global__ void __launch_bounds__(ROW_THREADS) k_rmsnorm(const float *x, int64_t xs, const float *w, int64_t d, float eps,
                          float *y, int64_t ys) {
    __shared__ float red[32];
    const int64_t t = blockIdx.x;
    const float *xr = x + t * xs;
    float *yr = y + t * ys;
    const float inv = row_inv_rms(xr, d, eps, red);
#pragma unroll 4
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) yr[c] = w[c] * (xr[c] * inv);
}

extern "C" cudaError_t cuk_rmsnorm(const float *x, int64_t xs, const float *w, int64_t d,
                                   float eps, float *y, int64_t ys, int64_t n, cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    k_rmsnorm<<<(unsigned)n, ROW_THREADS, 0, st>>>(x, xs, w, d, eps, y, ys);
    return cudaGetLastError();
}

__global__ void __launch_bounds__(ROW_THREADS) k_add_rmsnorm(float *x, const float *f, const float *w, int64_t d, float eps,
                              float *xn) {
    __shared__ float red[32];
    const int64_t t = blockIdx.x;
    float *xr = x + t * d;
    const float *fr = f + t * d;
#pragma unroll 4
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) xr[c] = xr[c] + fr[c];
    if (!w) return;
    const float inv = row_inv_rms(xr, d, eps, red); /* each thread reads back its own writes */
#pragma unroll 4
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) xn[t * d + c] = w[c] * (xr[c] * inv);
}

extern "C" cudaError_t cuk_add_rmsnorm(float *x, const float *f, const float *w, int64_t d,
                                       float eps, float *xn, int64_t n, cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    k_add_rmsnorm<<<(unsigned)n, ROW_THREADS, 0, st>>>(x, f, w, d, eps, xn);
    return cudaGetLastError();
}

__device__ __forceinline__ void store_elem(void *cache, bool bf16, int64_t i, float v) {
    if (bf16) static_cast<__nv_bfloat16 *>(cache)[i] = __float2bfloat16_rn(v);
    else static_cast<float *>(cache)[i] = v;
}

__device__ __forceinline__ float load_elem(const void *cache, bool bf16, int64_t i) {
    return bf16 ? __bfloat162float(static_cast<const __nv_bfloat16 *>(cache)[i])
                : static_cast<const float *>(cache)[i];
}

__global__ void __launch_bounds__(ROW_THREADS) k_attn_prep(cu_prep p) {
    __shared__ float red[32];
    const int64_t t = blockIdx.x, pos = (int64_t)p.step->pos + t, half = p.rope / 2;
    const int64_t W = p.R + p.rope;
    float *cs = p.cs + t * p.rope, *kv = p.kv + t * W;
    for (int64_t i = threadIdx.x; i < half; i += blockDim.x) { /* zop_rope_table */
        const float ang = (float)pos * p.inv_freq[i];
        cs[i] = (float)cos((double)ang) * p.mscale;
        cs[half + i] = (float)sin((double)ang) * p.mscale;
    }
    float inv = row_inv_rms(kv, p.R, p.eps, red);
    for (int64_t c = threadIdx.x; c < p.R; c += blockDim.x) kv[c] = p.kv_norm[c] * (kv[c] * inv);
    if (p.qa) {
        float *qa = p.qa + t * p.ql;
        inv = row_inv_rms(qa, p.ql, p.eps, red);
        for (int64_t c = threadIdx.x; c < p.ql; c += blockDim.x) qa[c] = p.q_norm[c] * (qa[c] * inv);
    }
    __syncthreads(); /* cs and the normed latent visible to the block */
    for (int64_t i = threadIdx.x; i < half; i += blockDim.x) { /* zop_rope_interleaved */
        float *x = kv + p.R;
        const float a = x[2 * i], b = x[2 * i + 1], c = cs[i], s = cs[half + i];
        x[2 * i] = a * c - b * s;
        x[2 * i + 1] = b * c + a * s;
    }
    __syncthreads();
    for (int64_t c = threadIdx.x; c < W; c += blockDim.x)
        store_elem(p.cache, p.cache_bf16, pos * W + c, kv[c]);
}

extern "C" cudaError_t cuk_attn_prep(const cu_prep *p, cudaStream_t st) {
    if (p->n <= 0) return cudaSuccess;
    k_attn_prep<<<(unsigned)p->n, ROW_THREADS, 0, st>>>(*p);
    return cudaGetLastError();
}

__global__ void __launch_bounds__(EW_THREADS) k_q_rope(float *q, int64_t H, int64_t nope, int64_t rope, const float *cs,
                         float *qabs, int64_t R) {
    const int64_t t = blockIdx.x, half = rope / 2;
    const float *c_t = cs + t * rope;
    for (int64_t k = threadIdx.x; k < H * half; k += blockDim.x) {
        const int64_t h = k / half, i = k % half;
        float *x = q + (t * H + h) * (nope + rope) + nope;
        const float a = x[2 * i], b = x[2 * i + 1], c = c_t[i], s = c_t[half + i];
        const float ra = a * c - b * s, rb = b * c + a * s;
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
                                  const float *cs, float *qabs, int64_t R, cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    k_q_rope<<<(unsigned)n, EW_THREADS, 0, st>>>(q, H, nope, rope, cs, qabs, R);
    return cudaGetLastError();
}

__global__ void __launch_bounds__(EW_THREADS) k_silu_mul(const float *g, const float *u, int64_t n, float *h) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const float s = 1.0f / (1.0f + expf(-g[i]));
        h[i] = (g[i] * s) * u[i];
    }
}

extern "C" cudaError_t cuk_silu_mul(const float *g, const float *u, int64_t n, float *h,
                                    cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    int64_t blocks = (n + EW_THREADS - 1) / EW_THREADS;
    if (blocks > 4096) blocks = 4096;
    k_silu_mul<<<(unsigned)blocks, EW_THREADS, 0, st>>>(g, u, n, h);
    return cudaGetLastError();
}

__global__ void __launch_bounds__(ROW_THREADS) k_moe_combine(const float *w, const int32_t *slot, int64_t K, const float *de,
                              const float *sd, float *x, const float *norm_w, float eps,
                              float *xn, int64_t d) {
    __shared__ float red[32], wk[ZCU_COMBINE_MAX_K];
    __shared__ int64_t rows[ZCU_COMBINE_MAX_K];
    const int64_t t = blockIdx.x;
    if (threadIdx.x < K) {
        wk[threadIdx.x] = w[t * K + threadIdx.x];
        rows[threadIdx.x] = (slot ? (int64_t)slot[t * K + threadIdx.x] : t * K + threadIdx.x) * d;
    }
    __syncthreads();
    float *xr = x + t * d;
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
        float acc = 0.0f;
#pragma unroll
        for (int k = 0; k < ZCU_COMBINE_MAX_K; k++) /* route order: score descending, ties to lower id */
            if (k < K) acc += wk[k] * de[rows[k] + c];
        if (sd) acc += sd[t * d + c];
        xr[c] = xr[c] + acc;
    }
    if (!norm_w) return;
    const float inv = row_inv_rms(xr, d, eps, red);
#pragma unroll 4
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) xn[t * d + c] = norm_w[c] * (xr[c] * inv);
}

extern "C" cudaError_t cuk_moe_combine(const float *w, const int32_t *slot, int64_t K,
                                       const float *de, const float *sd, float *x,
                                       const float *norm_w, float eps, float *xn, int64_t d,
                                       int64_t n, cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    if (K < 1 || K > ZCU_COMBINE_MAX_K) return cudaErrorInvalidValue;
    k_moe_combine<<<(unsigned)n, ROW_THREADS, 0, st>>>(w, slot, K, de, sd, x, norm_w, eps, xn, d);
    return cudaGetLastError();
}

__global__ void __launch_bounds__(EW_THREADS) k_cache_to_f32(const void *cache, bool bf16, int64_t W, int64_t R, int64_t T,
                               float *out) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < T * R;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / R, c = i % R;
        out[i] = load_elem(cache, bf16, t * W + c);
    }
}

extern "C" cudaError_t cuk_cache_to_f32(const void *cache, bool bf16, int64_t W, int64_t R,
                                        int64_t T, float *out, cudaStream_t st) {
    if (T <= 0) return cudaSuccess;
    int64_t blocks = (T * R + EW_THREADS - 1) / EW_THREADS;
    if (blocks > 4096) blocks = 4096;
    k_cache_to_f32<<<(unsigned)blocks, EW_THREADS, 0, st>>>(cache, bf16, W, R, T, out);
    return cudaGetLastError();
}
