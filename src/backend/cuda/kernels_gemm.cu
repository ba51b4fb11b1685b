/*
 * kernels_gemm.cu — the prefill products Y = X W^T over a chunk of tokens: a plain tiled
 * float32 GEMM on the CUDA cores (64 weight rows x 64 tokens per block, 16-deep k steps
 * through shared memory, 4x4 outputs per thread), with an optional row gather of X and a
 * grouped form for the routed experts (one grid slice per expert, its rows found from the
 * device-side offsets, so routing needs no host round trip).
 *
 * Correct and simple first: no tensor cores (`--precision exact` keeps float32 inputs);
 * a faster prefill is future work and will be checked against this one.
 */
#include "backend/cuda/common.cuh"

enum { GB_M = 64, GB_N = 64, GB_K = 16, GB_THREADS = 256 };

template <typename T>
__global__ void __launch_bounds__(GB_THREADS)
    k_gemm(cuw w, const float *X, int64_t ldx, const int32_t *xrows, float *Y, int64_t ldy,
           int64_t n, const int32_t *goff) {
    __shared__ float Ws[GB_K][GB_M + 1];
    __shared__ float Xs[GB_K][GB_N + 1];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int64_t r0 = (int64_t)blockIdx.x * GB_M, j0 = (int64_t)blockIdx.y * GB_N;
    int64_t base = 0, cnt = n;
    const T *Wb = static_cast<const T *>(w.data);
    if (goff) {
        const int64_t e = blockIdx.z;
        base = goff[e];
        cnt = goff[e + 1] - base;
        Wb += e * w.stride;
    }
    if (j0 >= cnt) return; /* uniform over the block */
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;

    for (int64_t k0 = 0; k0 < w.cols; k0 += GB_K) {
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const int e = tid + GB_THREADS * q; /* 0 .. 1023 */
            const int rr = e / GB_K, kk = e % GB_K;
            const int64_t k = k0 + kk, r = r0 + rr, j = j0 + rr;
            Ws[kk][rr] = (r < w.rows && k < w.cols) ? tof(Wb[r * w.ld + k]) : 0.0f;
            float xv = 0.0f;
            if (j < cnt && k < w.cols) {
                const int64_t row = xrows ? (int64_t)xrows[base + j] : base + j;
                xv = X[row * ldx + k];
            }
            Xs[kk][rr] = xv;
        }
        __syncthreads();
#pragma unroll
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
                                int64_t groups, cudaStream_t st) {
    if (n <= 0 || w.rows <= 0) return cudaSuccess;
    const int64_t gz = goff ? groups : 1;
    const int64_t gx = (w.rows + GB_M - 1) / GB_M, gy = (n + GB_N - 1) / GB_N;
    if (gz < 1 || gz > 65535 || gy > 65535 || gx > 0x7fffffff) return cudaErrorInvalidValue;
    dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)gz);
    ZCU_DISPATCH(w.kind, k_gemm<T><<<grid, GB_THREADS, 0, st>>>(w, x, ldx, xrows, y, ldy, n, goff));
    return cudaGetLastError();
}
