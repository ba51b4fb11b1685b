/*
 * kernels_gemm.cu — the prefill products Y = X W^T over a chunk of tokens: a tiled
 * float32 GEMM on the CUDA cores (64 weight rows x 64 tokens per block, 32-deep k steps
 * through shared memory, 4x4 outputs per thread), the weight tile dequantized on the fly
 * with the reference's roundings (dot.cuh deq8: any layout), an optional row gather of X
 * and a grouped form for the routed experts (one grid slice per expert, its rows found
 * from the device-side offsets, so routing needs no host round trip).
 *
 * `--precision exact` keeps float32 inputs (no tensor cores); fast mode runs the
 * tensor-core kernel of kernels_gemm_tc.cu (bf16 operands) wherever its tiles fit.
 */
#include "backend/cuda/dot.cuh"

enum { GB_M = 64, GB_N = 64, GB_K = 32, GB_THREADS = 256 };

template <int K>
__global__ void __launch_bounds__(GB_THREADS)
    k_gemm(const __grid_constant__ cuw w, const float *X, int64_t ldx, const int32_t *xrows, float *Y,
           int64_t ldy, int64_t n, const int32_t *goff) {
    __shared__ float Ws[GB_K][GB_M + 1];
    __shared__ float Xs[GB_K][GB_N + 1];
    pdl_launch();
    pdl_wait();
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int64_t r0 = (int64_t)blockIdx.x * GB_M, j0 = (int64_t)blockIdx.y * GB_N;
    const gemm_group gg = gemm_group_of(goff, n);
    const int64_t base = gg.base, cnt = gg.cnt, e = gg.e;
    if (j0 >= cnt) return; /* uniform over the block */
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    const int wr = tid / 4, wp = tid % 4; /* this thread's weight row and piece of the tile */
    const bool wrow_ok = r0 + wr < w.rows;
    const rowp rp = row_of(w, e, wrow_ok ? r0 + wr : 0);

    for (int64_t k0 = 0; k0 < w.cols; k0 += GB_K) {
        float v[8];
        if (wrow_ok) deq8<K>(w, rp, k0 + 8 * wp, v);
#pragma unroll
        for (int i = 0; i < 8; i++) Ws[8 * wp + i][wr] = wrow_ok ? v[i] : 0.0f;
#pragma unroll
        for (int q = 0; q < 8; q++) {
            const int el = tid + GB_THREADS * q; /* 0 .. 2047 */
            const int jj = el / GB_K, kk = el % GB_K;
            const int64_t j = j0 + jj;
            float xv = 0.0f;
            if (j < cnt) {
                const int64_t row = xrows ? (int64_t)xrows[base + j] : base + j;
                xv = X[row * ldx + k0 + kk];
            }
            Xs[kk][jj] = xv;
        }
        __syncthreads();
#pragma unroll 8
        for (int kk = 0; kk < GB_K; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = Ws[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; j++) b[j] = Xs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int64_t r = r0 + ty + 16 * i, jj = j0 + tx + 16 * j;
            if (r < w.rows && jj < cnt) Y[(base + jj) * ldy + r] = acc[i][j];
        }
}

extern "C" cudaError_t cuk_gemm(cuw w, const float *x, int64_t ldx, const int32_t *xrows,
                                float *y, int64_t ldy, int64_t n, const int32_t *goff,
                                int64_t groups, cu_q q) {
    if (n <= 0 || w.rows <= 0) return cudaSuccess;
    if (q.fast && cuk_gemm_tc_ok(w, x, ldx)) return cuk_gemm_tc(w, x, ldx, xrows, y, ldy, n, goff, groups, q);
    if (!cuk_kind_ok(w.kind) || w.cols % GB_K) return cudaErrorInvalidValue;
    const int64_t gz = goff ? groups : 1;
    const int64_t gx = (w.rows + GB_M - 1) / GB_M, gy = (n + GB_N - 1) / GB_N;
    if (gz < 1 || gz > 65535 || gy > 65535 || gx > 0x7fffffff) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)gz);
    cudaError_t err = cudaSuccess;
    ZCU_DISPATCH(w.kind, err = launch(q, grid, dim3(GB_THREADS), 0, k_gemm<K>, w, x, ldx, xrows, y,
                                      ldy, n, goff));
    return err;
}
