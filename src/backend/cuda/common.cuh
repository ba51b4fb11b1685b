/*
 * common.cuh — device helpers shared by the kernels_*.cu files: warp reductions, the
 * launch helper (programmatic dependent launch on Hopper), the canonical RMSNorm and
 * rope arithmetic (every kernel that computes a norm or a rotation calls these, so fused
 * and unfused kernels agree bit for bit), and the dispatch from a zwkind to a kernel
 * template.  Not for kernels themselves.
 *
 * Every .cu file is built with --fmad=false: nothing is contracted behind our back, and
 * each FMA in the code is written as fmaf().
 */
#ifndef ZMLX_BACKEND_CUDA_COMMON_CUH
#define ZMLX_BACKEND_CUDA_COMMON_CUH

#include "backend/cuda/kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>

extern "C" {
#include "model/weight.h"
}

/* A measuring knob's value, from the environment (host): `def` when unset or not a
   number >= 0. */
static inline int64_t cu_knob(const char *name, int64_t def) {
    const char *e = getenv(name);
    if (!e || !*e) return def;
    char *end;
    const long long v = strtoll(e, &end, 10);
    return *end || v < 0 ? def : (int64_t)v;
}

/* An attribute of the current device (host; 0 where it cannot be read). */
static inline int cu_dev_attr(cudaDeviceAttr a) {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, a, dev) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return v;
}

/* Blocks of a grid-stride launch over `items`, `per` a block: at least one, at most `cap`. */
static inline unsigned grid_blocks(int64_t items, int64_t per, int64_t cap) {
    const int64_t b = (items + per - 1) / per;
    return (unsigned)(b < 1 ? 1 : b > cap ? cap : b);
}

/* ------------------------------------------------------------------ loads */

/* Loads of weights, read once per step: bypass L1 so activations stay there. */
__device__ __forceinline__ uint4 ldw4(const void *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}
__device__ __forceinline__ uint2 ldw2(const void *p) {
    uint2 v;
    asm volatile("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(p));
    return v;
}
__device__ __forceinline__ uint32_t ldw1(const void *p) {
    uint32_t v;
    asm volatile("ld.global.nc.L1::no_allocate.u32 %0, [%1];" : "=r"(v) : "l"(p));
    return v;
}

/* cp.async: 16 bytes global -> shared (valid false: the 16 bytes zero-filled, nothing read). */
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, bool valid) {
    const uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(s), "l"(gmem), "r"(valid ? 16 : 0));
}
/* A whole 16-byte piece to a shared-memory address. */
__device__ __forceinline__ void cp_async16s(uint32_t s, const void *gmem) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit(void) {
    asm volatile("cp.async.commit_group;");
}
/* Wait until at most N of this thread's newest copy groups are in flight. */
template <int N> __device__ __forceinline__ void cp_async_wait(void) {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

/* Eight floats as bf16 (round to nearest even), one 16-byte store. */
__device__ __forceinline__ void st_bf16x8(__nv_bfloat16 *dst, const float (&v)[8]) {
    __nv_bfloat162 h[4];
#pragma unroll
    for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
    *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(h);
}

/* Scale / bias i of a quantized weight (CU_SDT_*). */
__device__ __forceinline__ float ld_scale(int sdt, const void *p, int64_t i) {
    switch (sdt) {
    case CU_SDT_BF16:
        return __uint_as_float((uint32_t)__ldg(static_cast<const unsigned short *>(p) + i) << 16);
    case CU_SDT_F16: return __half2float(__ldg(static_cast<const __half *>(p) + i));
    case CU_SDT_F32: return __ldg(static_cast<const float *>(p) + i);
    default: { /* E8M0, as ze8m0_to_f32 */
        const uint32_t s = __ldg(static_cast<const unsigned char *>(p) + i);
        return __uint_as_float(s == 0 ? 0x00400000u : s << 23);
    }
    }
}

__device__ __forceinline__ int sdt_size(int sdt) {
    return sdt == CU_SDT_F32 ? 4 : sdt == CU_SDT_E8M0 ? 1 : 2;
}

/* Exact float of an unsigned integer code below 2^23, without I2F. */
__device__ __forceinline__ float code_f(uint32_t c) {
    return __fsub_rn(__uint_as_float(0x4B000000u | c), 8388608.0f);
}

/* ------------------------------------------------------------------ reductions */

/* xor butterfly: every lane ends with the same bits (addition commutes exactly). */
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, o));
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
    for (int i = 0; i < nw; i++) s = __fadd_rn(s, red[i]); /* same order in every thread */
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

/* ------------------------------------------------------------------ canonical arithmetic */

/* Sum of squares of x[0..d) in the one order every norm uses: lane l sums elements
   l, l + 32, ... (FMA chain), then the warp's butterfly.  SQ_FLIGHT loads of a lane are
   in flight before their FMAs (same order: a prologue waits on this).  Eight: 64 (a row
   of 2,048 in one trip) made the decode 7% slower on an H100 (the registers it holds;
   benchmarks/device-2026-11-26u-h100-sq-fold/).  warp_sumsq_f<F>: F in flight (the lean
   kernels, which have the registers).  Call with a whole warp. */
#ifndef ZMLX_CUDA_SQ_FLIGHT
#define ZMLX_CUDA_SQ_FLIGHT 8 /* -D to build another depth, for measuring */
#endif
enum { SQ_FLIGHT = ZMLX_CUDA_SQ_FLIGHT };
template <int F>
__device__ __forceinline__ float warp_sumsq_f(const float *x, int64_t d) {
    const int lane = threadIdx.x & 31;
    float a = 0.0f;
    for (int64_t c0 = lane; c0 < d; c0 += F * 32) {
        float v[F];
#pragma unroll
        for (int k = 0; k < F; k++) v[k] = c0 + 32 * k < d ? x[c0 + 32 * k] : 0.0f;
#pragma unroll
        for (int k = 0; k < F; k++)
            if (c0 + 32 * k < d) a = fmaf(v[k], v[k], a);
    }
    return warp_sum(a);
}
__device__ __forceinline__ float warp_sumsq(const float *x, int64_t d) {
    return warp_sumsq_f<SQ_FLIGHT>(x, d);
}

/* 1 / sqrt(mean square + eps), as zop_rmsnorm. */
__device__ __forceinline__ float rms_inv(float ss, int64_t d, float eps) {
    return __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(ss, (float)d), eps)));
}

/* One normalised element: w * (x * inv). */
__device__ __forceinline__ float norm_el(float w, float x, float inv) {
    return __fmul_rn(w, __fmul_rn(x, inv));
}

/* silu(g) * u with zop_silu_mul's roundings. */
__device__ __forceinline__ float silu_mul(float g, float u) {
    const float s = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-g)));
    return __fmul_rn(__fmul_rn(g, s), u);
}

/* cos and sin of frequency i at `pos` (zop_rope_table): double-precision cos/sin of the
   float angle, times mscale. */
__device__ __forceinline__ void rope_cs(int64_t pos, const float *inv_freq, int64_t i, float mscale,
                                        float *c, float *s) {
    const float ang = __fmul_rn((float)pos, inv_freq[i]);
    *c = __fmul_rn((float)cos((double)ang), mscale);
    *s = __fmul_rn((float)sin((double)ang), mscale);
}

/* The interleaved rotation of the pair (a, b) (zop_rope_interleaved). */
__device__ __forceinline__ void rope_pair(float a, float b, float c, float s, float *ra, float *rb) {
    *ra = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    *rb = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
}

/* A float another block of the running grid may write: a relaxed load at GPU scope, a
   volatile asm (read again on every call; __ldcv's asm may be hoisted out of a loop). */
__device__ __forceinline__ float ld_relaxed_gpu(const float *p) {
    float v;
    asm volatile("ld.relaxed.gpu.global.f32 %0, [%1];" : "=f"(v) : "l"(p) : "memory");
    return v;
}

/* ------------------------------------------------------------------ PDL and launches */

/* Let the next kernel on the stream launch (its blocks still wait for our completion
   before they read what we write). */
__device__ __forceinline__ void pdl_launch(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Wait until the previous kernel has completed and its writes are visible.  A no-op
   when the kernel was not launched as a programmatic dependent. */
__device__ __forceinline__ void pdl_wait(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/* Ask L2 to fetch [p, p + bytes) (lines spread over the block's threads). */
__device__ __forceinline__ void prefetch_l2(const void *p, int64_t bytes) {
    const char *b = static_cast<const char *>(p);
    for (int64_t o = (int64_t)threadIdx.x * 128; o < bytes; o += (int64_t)blockDim.x * 128)
        asm volatile("prefetch.global.L2 [%0];" ::"l"(b + o));
}

/* Ask L2 for the line holding p (this thread alone). */
__device__ __forceinline__ void prefetch_line(const void *p) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

/* Every kernel starts with pdl_launch() and calls pdl_wait() before it reads an earlier
   kernel's output or writes anything; launched through here, q.pdl lets it overlap.
   `cluster`: thread-block clusters of that many blocks along x (Hopper; 0: none). */
template <typename... KA, typename... A>
static cudaError_t launch_as(cu_q q, unsigned cluster, dim3 grid, dim3 block, size_t smem, void (*k)(KA...),
                             A... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = q.st;
    cudaLaunchAttribute at[2];
    unsigned n = 0;
    if (q.pdl) {
        at[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[n++].val.programmaticStreamSerializationAllowed = 1;
    }
    if (cluster) {
        at[n].id = cudaLaunchAttributeClusterDimension;
        at[n].val.clusterDim.x = cluster;
        at[n].val.clusterDim.y = 1;
        at[n++].val.clusterDim.z = 1;
    }
    cfg.attrs = n ? at : nullptr;
    cfg.numAttrs = n;
    return cudaLaunchKernelEx(&cfg, k, static_cast<KA>(args)...);
}

template <typename... KA, typename... A>
static cudaError_t launch(cu_q q, dim3 grid, dim3 block, size_t smem, void (*k)(KA...), A... args) {
    return launch_as(q, 0, grid, block, smem, k, args...);
}

/* Call __VA_ARGS__ with `K` a compile-time zwkind. */
#define ZCU_DISPATCH(kind, ...)                                                        \
    do {                                                                               \
        switch (kind) {                                                                \
        case ZW_F32: { constexpr int K = ZW_F32; __VA_ARGS__; } break;                 \
        case ZW_F16: { constexpr int K = ZW_F16; __VA_ARGS__; } break;                 \
        case ZW_BF16: { constexpr int K = ZW_BF16; __VA_ARGS__; } break;               \
        case ZW_AFFINE2: { constexpr int K = ZW_AFFINE2; __VA_ARGS__; } break;         \
        case ZW_AFFINE3: { constexpr int K = ZW_AFFINE3; __VA_ARGS__; } break;         \
        case ZW_AFFINE4: { constexpr int K = ZW_AFFINE4; __VA_ARGS__; } break;         \
        case ZW_AFFINE5: { constexpr int K = ZW_AFFINE5; __VA_ARGS__; } break;         \
        case ZW_AFFINE6: { constexpr int K = ZW_AFFINE6; __VA_ARGS__; } break;         \
        case ZW_AFFINE8: { constexpr int K = ZW_AFFINE8; __VA_ARGS__; } break;         \
        case ZW_MXFP4: { constexpr int K = ZW_MXFP4; __VA_ARGS__; } break;             \
        default: return cudaErrorInvalidValue;                                         \
        }                                                                              \
    } while (0)

#endif
