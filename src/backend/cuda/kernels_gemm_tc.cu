/*
 * kernels_gemm_tc.cu — the prefill products Y = X W^T of fast mode on the tensor cores:
 * bf16 operands, float32 accumulation (SYSTEM.md section 1 allows both in fast mode).
 *
 * A block computes 64 weight rows x 64 tokens in k steps of 32: each thread dequantizes
 * 8 weight elements of the tile with the reference's roundings (dot.cuh deq8: any layout,
 * so every stored format runs here without being expanded in memory) and rounds them to
 * bf16, and converts 8 activations to bf16; the two tiles go to shared memory (two
 * buffers: one barrier per step, the next step's loads in flight during the products);
 * eight warps each compute 16 rows x 32 tokens with wmma 16x16x16 bf16 products.  The
 * row gather of X and the grouped form for the routed experts (one grid slice per
 * expert, rows from the device-side offsets) are kernels_gemm.cu's.
 *
 * Error: each product sees its weight and activation rounded to bf16 (relative 2^-8
 * each) and the sum in float32 in the tensor cores' order; tests/test_cuda_kernels.c
 * holds the result to a double-precision dot of the same bf16 values.
 * `--precision exact` never comes here (kernels_gemm.cu's float32 kernel).
 */
#include "backend/cuda/dot.cuh"

#include <mma.h>

enum { TC_M = 64, TC_N = 64, TC_K = 32, TC_THREADS = 256, TC_LD = TC_K + 8, TC_OLD = TC_M + 4 };

union tc_smem {
    struct {
        __nv_bfloat16 w[2][TC_M * TC_LD]; /* [row][k] */
        __nv_bfloat16 x[2][TC_N * TC_LD]; /* [token][k] */
    } in;
    float out[TC_N * TC_OLD]; /* [token][row] */
};

template <int K>
__global__ void __launch_bounds__(TC_THREADS)
    k_gemm_tc(const __grid_constant__ cuw w, const float *X, int64_t ldx, const int32_t *xrows,
              float *Y, int64_t ldy, int64_t n, const int32_t *goff) {
    using namespace nvcuda;
    __shared__ __align__(128) tc_smem sm;
    pdl_launch();
    pdl_wait();
    const int tid = threadIdx.x, warp = tid >> 5;
    const int64_t r0 = (int64_t)blockIdx.x * TC_M, j0 = (int64_t)blockIdx.y * TC_N;
    const gemm_group gg = gemm_group_of(goff, n);
    const int64_t base = gg.base, cnt = gg.cnt, e = gg.e;
    if (j0 >= cnt) return; /* uniform over the block */

    /* this thread's 8 elements of each tile: weight row / token tid / 4, k piece tid % 4 */
    const int tr = tid >> 2, tp = (tid & 3) * 8;
    const bool wok = r0 + tr < w.rows, xok = j0 + tr < cnt;
    const rowp rp = row_of(w, e, wok ? r0 + tr : 0);
    const float *xr = X;
    if (xok) xr += (xrows ? (int64_t)xrows[base + j0 + tr] : base + j0 + tr) * ldx;
    float wv[8], xv[8];
    auto load = [&](int64_t k0) {
        if (wok) deq8<K>(w, rp, k0 + tp, wv);
        else
#pragma unroll
            for (int i = 0; i < 8; i++) wv[i] = 0.0f;
        if (xok) {
            const float4 a = __ldg(reinterpret_cast<const float4 *>(xr + k0 + tp));
            const float4 b = __ldg(reinterpret_cast<const float4 *>(xr + k0 + tp) + 1);
            xv[0] = a.x, xv[1] = a.y, xv[2] = a.z, xv[3] = a.w;
            xv[4] = b.x, xv[5] = b.y, xv[6] = b.z, xv[7] = b.w;
        } else {
#pragma unroll
            for (int i = 0; i < 8; i++) xv[i] = 0.0f;
        }
    };

    /* warp: rows 16 * (warp % 4) .. +16, tokens 32 * (warp / 4) .. +32 */
    const int wm = (warp & 3) * 16, wn = (warp >> 2) * 32;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2];
    wmma::fill_fragment(acc[0], 0.0f);
    wmma::fill_fragment(acc[1], 0.0f);
    load(0);
    int buf = 0;
    for (int64_t k0 = 0; k0 < w.cols; k0 += TC_K, buf ^= 1) {
        st_bf16x8(sm.in.w[buf] + tr * TC_LD + tp, wv);
        st_bf16x8(sm.in.x[buf] + tr * TC_LD + tp, xv);
        __syncthreads(); /* also: the buffer written now was last read two steps ago */
        if (k0 + TC_K < w.cols) load(k0 + TC_K);
#pragma unroll
        for (int kk = 0; kk < TC_K; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
            wmma::load_matrix_sync(a, sm.in.w[buf] + wm * TC_LD + kk, TC_LD);
#pragma unroll
            for (int b = 0; b < 2; b++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> bx;
                wmma::load_matrix_sync(bx, sm.in.x[buf] + (wn + 16 * b) * TC_LD + kk, TC_LD);
                wmma::mma_sync(acc[b], a, bx, acc[b]);
            }
        }
    }
    __syncthreads(); /* the input tiles are dead: out reuses them */
#pragma unroll
    for (int b = 0; b < 2; b++)
        wmma::store_matrix_sync(sm.out + (wn + 16 * b) * TC_OLD + wm, acc[b], TC_OLD, wmma::mem_col_major);
    __syncthreads();
    for (int i = tid; i < TC_M * TC_N; i += TC_THREADS) {
        const int jj = i / TC_M, rr = i % TC_M;
        if (r0 + rr < w.rows && j0 + jj < cnt) Y[(base + j0 + jj) * ldy + r0 + rr] = sm.out[jj * TC_OLD + rr];
    }
}

/* The operands of the cuBLAS form (blas.c): the weight (matrix e of a stack) and the
   activations as bf16, row-major and packed (rows x cols, n x cols), the values the tile
   kernel above puts in shared memory (deq8 rounded to nearest even; the float32
   activations rounded the same way). */
template <int K>
__global__ void __launch_bounds__(256) k_deq_bf16(const __grid_constant__ cuw w, int64_t e, __nv_bfloat16 *dst) {
    pdl_launch();
    pdl_wait();
    const int64_t per = w.cols / 8, total = w.rows * per;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / per, c0 = (i - r * per) * 8;
        float v[8];
        deq8<K>(w, row_of(w, e, r), c0, v);
        st_bf16x8(dst + r * w.cols + c0, v);
    }
}

__global__ void __launch_bounds__(256) k_to_bf16(const float *x, int64_t ldx, int64_t n, int64_t cols,
                                                 __nv_bfloat16 *dst) {
    pdl_launch();
    pdl_wait();
    const int64_t per = cols / 8, total = n * per;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t j = i / per, c0 = (i - j * per) * 8;
        const float4 a = __ldg(reinterpret_cast<const float4 *>(x + j * ldx + c0));
        const float4 b = __ldg(reinterpret_cast<const float4 *>(x + j * ldx + c0) + 1);
        const float v[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
        st_bf16x8(dst + j * cols + c0, v);
    }
}

extern "C" cudaError_t cuk_deq_bf16(cuw w, int64_t e, void *dst, cu_q q) {
    if (w.rows <= 0) return cudaSuccess;
    if (!cuk_kind_ok(w.kind) || w.cols % 32 || ((uintptr_t)dst & 15)) return cudaErrorInvalidValue;
    cudaError_t err = cudaSuccess;
    const dim3 grid(grid_blocks(w.rows * (w.cols / 8), 256, 8192));
    ZCU_DISPATCH(w.kind, err = launch(q, grid, dim3(256), 0, k_deq_bf16<K>, w, e, static_cast<__nv_bfloat16 *>(dst)));
    return err;
}

extern "C" cudaError_t cuk_to_bf16(const float *x, int64_t ldx, int64_t n, int64_t cols, void *dst, cu_q q) {
    if (n <= 0) return cudaSuccess;
    if (cols % 8 || ldx % 4 || ldx < cols || ((uintptr_t)x & 15) || ((uintptr_t)dst & 15)) return cudaErrorInvalidValue;
    return launch(q, dim3(grid_blocks(n * (cols / 8), 256, 8192)), dim3(256), 0, k_to_bf16, x, ldx, n, cols,
                  static_cast<__nv_bfloat16 *>(dst));
}

extern "C" bool cuk_gemm_tc_ok(cuw w, const float *x, int64_t ldx) {
    return cuk_kind_ok(w.kind) && w.cols % TC_K == 0 && ldx % 4 == 0 && ((uintptr_t)x & 15) == 0;
}

extern "C" cudaError_t cuk_gemm_tc(cuw w, const float *x, int64_t ldx, const int32_t *xrows,
                                   float *y, int64_t ldy, int64_t n, const int32_t *goff,
                                   int64_t groups, cu_q q) {
    if (n <= 0 || w.rows <= 0) return cudaSuccess;
    if (!cuk_gemm_tc_ok(w, x, ldx)) return cudaErrorInvalidValue;
    const int64_t gz = goff ? groups : 1;
    const int64_t gx = (w.rows + TC_M - 1) / TC_M, gy = (n + TC_N - 1) / TC_N;
    if (gz < 1 || gz > 65535 || gy > 65535 || gx > 0x7fffffff) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)gz);
    cudaError_t err = cudaSuccess;
    ZCU_DISPATCH(w.kind, err = launch(q, grid, dim3(TC_THREADS), 0, k_gemm_tc<K>, w, x, ldx, xrows,
                                      y, ldy, n, goff));
    return err;
}
