/*
 * common.cuh — device helpers shared by the kernels_*.cu files: element conversion of
 * the dense weight kinds, 16-byte vector loads, warp and block reductions, and the
 * dispatch from a zwkind to a kernel template.  Not for kernels themselves.
 */
#ifndef ZMLX_BACKEND_CUDA_COMMON_CUH
#define ZMLX_BACKEND_CUDA_COMMON_CUH

#include "backend/cuda/kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

extern "C" {
#include "model/weight.h"
}

/* Element type tags of the dense kinds. */
typedef float wf32;
typedef __half wf16;
typedef __nv_bfloat16 wbf16;

__device__ __forceinline__ float tof(float v) { return v; }
__device__ __forceinline__ float tof(__half v) { return __half2float(v); }
__device__ __forceinline__ float tof(__nv_bfloat16 v) { return __bfloat162float(v); }

/* Elements per 16-byte load of T, and that load converted to floats. */
template <typename T> struct vec16;
template <> struct vec16<float> {
    static constexpr int N = 4;
    static __device__ __forceinline__ void cvt(const uint4 &v, float *f) {
        f[0] = __uint_as_float(v.x);
        f[1] = __uint_as_float(v.y);
        f[2] = __uint_as_float(v.z);
        f[3] = __uint_as_float(v.w);
    }
};
template <> struct vec16<__nv_bfloat16> {
    static constexpr int N = 8;
    static __device__ __forceinline__ void cvt(const uint4 &v, float *f) {
        const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            f[2 * i] = __uint_as_float(w[i] << 16);
            f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
        }
    }
};
template <> struct vec16<__half> {
    static constexpr int N = 8;
    static __device__ __forceinline__ void cvt(const uint4 &v, float *f) {
        const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            __half2 h;
            memcpy(&h, &w[i], sizeof h);
            float2 p = __half22float2(h);
            f[2 * i] = p.x;
            f[2 * i + 1] = p.y;
        }
    }
};

/* A 16-byte load that bypasses L1 (weights are read once per step). */
__device__ __forceinline__ uint4 ld16_stream(const void *p) {
    return __ldg(reinterpret_cast<const uint4 *>(p));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
   `red` is 32 floats of shared memory; the call has its own barriers. */
__device__ __forceinline__ float block_sum(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* red may still be read by a previous call */
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float s = 0.0f;
    for (int i = 0; i < nw; i++) s += red[i]; /* same order in every thread */
    return s;
}

__device__ __forceinline__ float block_max(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float s = red[0];
    for (int i = 1; i < nw; i++) s = fmaxf(s, red[i]);
    return s;
}

/* Is p aligned to 16 bytes? */
static inline bool aligned16(const void *p) {
    return ((uintptr_t)p & 15u) == 0;
}

/* Call f.template operator()<T>() with the element type of a dense kind. */
#define ZCU_DISPATCH(kind, ...)                                                        \
    do {                                                                               \
        switch (kind) {                                                                \
        case ZW_F32: { typedef float T; __VA_ARGS__; } break;                          \
        case ZW_F16: { typedef __half T; __VA_ARGS__; } break;                         \
        case ZW_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; } break;                 \
        default: return cudaErrorInvalidValue;                                         \
        }                                                                              \
    } while (0)

#endif
