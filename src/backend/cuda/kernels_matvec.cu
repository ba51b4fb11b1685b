/*
 * kernels_matvec.cu — the decode products (one token): bandwidth-bound matrix-vector
 * kernels over the dense weight kinds.  One warp per output row (two rows for SwiGLU:
 * gate and up together; a long row split over up to 8 warps), 16-byte weight loads
 * coalesced across the warp with eight in flight per lane before the first use, float32
 * accumulation with FMA, a warp shuffle reduction.  Several independent products share one launch (blocks are dealt out job by
 * job), so the decode step needs fewer launches.  A scalar path serves rows that are not
 * 16-byte aligned.
 *   cuk_matvec    grouped / per-head / routed-expert y = W x, or SwiGLU of two such
 *   cuk_matvec_t  y = W^T x over a row range (absorbed MLA's W_UK^T q_nope), with q_pe's rope
 */
#include "backend/cuda/common.cuh"

enum { MV_WARPS = 8 }; /* rows (warps) per block */

/* Lane `lane`'s share of NR dot products W[k][0:cols] · x[0:cols], loads interleaved. */
template <typename T, bool VEC, int NR>
__device__ __forceinline__ void dot_lane(const T *const *W, const float *x, int64_t cols,
                                         int lane, int step, float *acc) {
#pragma unroll
    for (int k = 0; k < NR; k++) acc[k] = 0.0f;
    if constexpr (VEC) {
        /* U loads per row per lane issued before any is used (predicated at the end of the
           row), so a short row is one round trip too */
        constexpr int N = vec16<T>::N, U = 8 / NR;
        const int64_t nv = cols / N;
        for (int64_t v = lane; v < nv; v += (int64_t)step * U) {
            uint4 r[NR][U];
#pragma unroll
            for (int u = 0; u < U; u++)
#pragma unroll
                for (int k = 0; k < NR; k++)
                    r[k][u] = v + step * u < nv ? ld16_stream(W[k] + (v + step * u) * N) : make_uint4(0, 0, 0, 0);
#pragma unroll
            for (int u = 0; u < U; u++) {
                if (v + step * u >= nv) break;
                float xv[N];
                const float4 *xp = reinterpret_cast<const float4 *>(x + (v + step * u) * N);
#pragma unroll
                for (int i = 0; i < N / 4; i++) {
                    const float4 q = xp[i];
                    xv[4 * i] = q.x, xv[4 * i + 1] = q.y, xv[4 * i + 2] = q.z, xv[4 * i + 3] = q.w;
                }
#pragma unroll
                for (int k = 0; k < NR; k++) {
                    float f[N];
                    vec16<T>::cvt(r[k][u], f);
#pragma unroll
                    for (int i = 0; i < N; i++) acc[k] = fmaf(f[i], xv[i], acc[k]);
                }
            }
        }
    } else {
        for (int64_t c = lane; c < cols; c += step)
#pragma unroll
            for (int k = 0; k < NR; k++) acc[k] = fmaf(tof(W[k][c]), x[c], acc[k]);
    }
#pragma unroll
    for (int k = 0; k < NR; k++) acc[k] = warp_sum(acc[k]);
}

/* A long row is split over `wpr` warps of the block (split-K; a power of two dividing
   MV_WARPS): warp w works on row slot w / wpr, piece w % wpr; the pieces' sums are added
   in piece order (deterministic) by the slot's first warp. */
typedef struct mv_batch {
    cu_mv job[ZCU_MV_JOBS];
    int64_t first[ZCU_MV_JOBS + 1]; /* first block of each job */
    int wpr[ZCU_MV_JOBS];           /* warps per row of each job */
    int n;
} mv_batch;

template <typename T, bool VEC>
__device__ __forceinline__ void mv_rows(const cu_mv &p, int64_t blk, int wpr, int warp, int lane) {
    __shared__ float part[MV_WARPS][2];
    const int slot = warp / wpr, piece = warp % wpr;
    const int64_t o = blk * (MV_WARPS / wpr) + slot;
    const bool valid = o < p.groups * p.rpg; /* warp-uniform */
    const int64_t g = valid ? o / p.rpg : 0, r = valid ? o - g * p.rpg : 0;
    const int64_t e = valid && p.idx ? (int64_t)p.idx[g] : 0;
    const int64_t row = p.row0 + (g % p.gmod) * p.grs + r;
    const float *x = p.x + g * p.xs;
    const int start = lane + 32 * piece, step = 32 * wpr;
    float acc[2] = {0.0f, 0.0f};
    if (valid && e >= 0) { /* e < 0: an expert held by another GPU, output +0.0 (ep.h) */
        if (p.up.data) {
            const T *W[2] = {static_cast<const T *>(p.w.data) + e * p.w.stride + row * p.w.ld,
                             static_cast<const T *>(p.up.data) + e * p.up.stride + row * p.up.ld};
            dot_lane<T, VEC, 2>(W, x, p.w.cols, start, step, acc);
        } else {
            const T *W[1] = {static_cast<const T *>(p.w.data) + e * p.w.stride + row * p.w.ld};
            dot_lane<T, VEC, 1>(W, x, p.w.cols, start, step, acc);
        }
    }
    if (wpr > 1) { /* uniform over the block: every warp reaches the barrier */
        if (lane == 0) {
            part[warp][0] = acc[0];
            part[warp][1] = acc[1];
        }
        __syncthreads();
        if (piece == 0) {
            acc[0] = acc[1] = 0.0f;
            for (int i = 0; i < wpr; i++) {
                acc[0] += part[warp + i][0];
                acc[1] += part[warp + i][1];
            }
        }
    }
    if (!valid || piece != 0 || lane != 0) return;
    if (p.up.data) { /* zop_silu_mul's roundings: no contraction */
        const float s = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-acc[0])));
        p.y[g * p.ys + r] = __fmul_rn(__fmul_rn(acc[0], s), acc[1]);
    } else {
        p.y[g * p.ys + r] = acc[0];
    }
}

template <typename T, bool VEC>
__global__ void __launch_bounds__(MV_WARPS * 32) k_matvec(mv_batch b) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t blk = blockIdx.x;
    int j = 0;
    while (j + 1 < b.n && b.first[j + 1] <= blk) j++;
    switch (j) { /* constant indices: the job stays in the parameter bank */
    case 0: mv_rows<T, VEC>(b.job[0], blk - b.first[0], b.wpr[0], warp, lane); break;
    case 1: mv_rows<T, VEC>(b.job[1], blk - b.first[1], b.wpr[1], warp, lane); break;
    case 2: mv_rows<T, VEC>(b.job[2], blk - b.first[2], b.wpr[2], warp, lane); break;
    default: mv_rows<T, VEC>(b.job[3], blk - b.first[3], b.wpr[3], warp, lane); break;
    }
}

/* Warps per row: enough that each lane has one round of loads (8 in flight) per row. */
static int mv_wpr(const cu_mv &p, int esize, bool vec) {
    if (!vec) return 1;
    const int64_t nv = p.w.cols / (16 / esize), per_warp = 32 * (p.up.data ? 4 : 8);
    int w = 1;
    while (w < MV_WARPS && (int64_t)w * per_warp < nv) w *= 2;
    return w;
}

/* Can job p's rows be read 16 bytes at a time? */
static bool mv_vec_ok(const cu_mv &p, int esize) {
    const int N = 16 / esize;
    bool ok = aligned16(p.w.data) && (p.w.ld * esize) % 16 == 0 && (p.w.stride * esize) % 16 == 0 &&
              p.w.cols % N == 0 && aligned16(p.x) && p.xs % 4 == 0;
    if (p.up.data)
        ok = ok && aligned16(p.up.data) && (p.up.ld * esize) % 16 == 0 && (p.up.stride * esize) % 16 == 0;
    return ok;
}

static cudaError_t mv_launch(mv_batch &b, bool vec, int32_t kind, cudaStream_t st) {
    if (b.first[b.n] == 0) return cudaSuccess;
    if (b.first[b.n] > 0x7fffffff) return cudaErrorInvalidValue;
    const unsigned blocks = (unsigned)b.first[b.n];
    ZCU_DISPATCH(kind, {
        if (vec) k_matvec<T, true><<<blocks, MV_WARPS * 32, 0, st>>>(b);
        else k_matvec<T, false><<<blocks, MV_WARPS * 32, 0, st>>>(b);
    });
    return cudaGetLastError();
}

extern "C" cudaError_t cuk_matvec(const cu_mv *jobs, int n_jobs, cudaStream_t st) {
    if (n_jobs < 0 || n_jobs > ZCU_MV_JOBS) return cudaErrorInvalidValue;
    for (int i = 0; i < n_jobs; i++) {
        const cu_mv &p = jobs[i];
        if (!cuk_kind_ok(p.w.kind) || p.gmod < 1 ||
            (p.up.data && (p.up.kind != p.w.kind || p.up.rows != p.w.rows || p.up.cols != p.w.cols)))
            return cudaErrorInvalidValue;
    }
    /* one launch per run of jobs with the same kind and alignment */
    for (int i = 0; i < n_jobs;) {
        const int es = cuk_kind_size(jobs[i].w.kind);
        const bool vec = mv_vec_ok(jobs[i], es);
        mv_batch b = {};
        int j = i;
        while (j < n_jobs && jobs[j].w.kind == jobs[i].w.kind && mv_vec_ok(jobs[j], es) == vec) {
            b.job[b.n] = jobs[j];
            b.wpr[b.n] = mv_wpr(jobs[j], es, vec);
            const int64_t outs = jobs[j].groups * jobs[j].rpg, rows = MV_WARPS / b.wpr[b.n];
            b.first[b.n + 1] = b.first[b.n] + (outs > 0 ? (outs + rows - 1) / rows : 0);
            b.n++;
            j++;
        }
        cudaError_t err = mv_launch(b, vec, jobs[i].w.kind, st);
        if (err != cudaSuccess) return err;
        i = j;
    }
    return cudaSuccess;
}

/* Transposed: a block covers TM_CG column vectors x TM_RS row slices; each slice sums its
   rows in order, then the slices are summed in order (deterministic). */
enum { TM_CG = 16, TM_RS = 16 };

template <typename T, bool VEC>
__global__ void __launch_bounds__(TM_CG * TM_RS) k_matvec_t(cu_mvt p) {
    constexpr int N = VEC ? vec16<T>::N : 1;
    __shared__ float red[TM_RS][TM_CG * 8];
    const int cg = threadIdx.x % TM_CG, rs = threadIdx.x / TM_CG;
    const int64_t g = blockIdx.y;
    const int64_t cb = (int64_t)blockIdx.x * TM_CG * N, c0 = cb + (int64_t)cg * N;
    const T *W = static_cast<const T *>(p.w.data) + (p.row0 + (g % p.gmod) * p.grs) * p.w.ld;
    const float *xg = p.x + g * p.xs;
    if (p.cs && blockIdx.x == 0) { /* rope of q_pe into the columns after W^T x */
        const int64_t half = p.rope / 2;
        const float *c_t = p.cs + (g / p.gmod) * p.rope;
        for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
            const float a = xg[p.nr + 2 * i], b = xg[p.nr + 2 * i + 1], c = c_t[i], s = c_t[half + i];
            p.y[g * p.ys + p.w.cols + 2 * i] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
            p.y[g * p.ys + p.w.cols + 2 * i + 1] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
        }
    }
    float acc[N];
#pragma unroll
    for (int j = 0; j < N; j++) acc[j] = 0.0f;
    if (c0 < p.w.cols) {
#pragma unroll 4
        for (int64_t i = rs; i < p.nr; i += TM_RS) {
            const float xi = xg[i];
            float f[N];
            if constexpr (VEC) vec16<T>::cvt(ld16_stream(W + i * p.w.ld + c0), f);
            else f[0] = tof(W[i * p.w.ld + c0]);
#pragma unroll
            for (int j = 0; j < N; j++) acc[j] = fmaf(f[j], xi, acc[j]);
        }
    }
#pragma unroll
    for (int j = 0; j < N; j++) red[rs][cg * N + j] = acc[j];
    __syncthreads();
    for (int t = threadIdx.x; t < TM_CG * N; t += blockDim.x) {
        const int64_t c = cb + t;
        if (c < p.w.cols) {
            float s = 0.0f;
            for (int k = 0; k < TM_RS; k++) s += red[k][t];
            p.y[g * p.ys + c] = s;
        }
    }
}

extern "C" cudaError_t cuk_matvec_t(const cu_mvt *p, cudaStream_t st) {
    if (p->groups <= 0 || p->w.cols <= 0) return cudaSuccess;
    if (p->groups > 65535 || p->gmod < 1 || (p->cs && p->rope % 2)) return cudaErrorInvalidValue;
    ZCU_DISPATCH(p->w.kind, {
        const int N = 16 / (int)sizeof(T);
        const bool vec = aligned16(p->w.data) && (p->w.ld * (int64_t)sizeof(T)) % 16 == 0 &&
                         p->w.cols % N == 0;
        if (vec) {
            dim3 grid((unsigned)((p->w.cols + TM_CG * N - 1) / (TM_CG * N)), (unsigned)p->groups);
            k_matvec_t<T, true><<<grid, TM_CG * TM_RS, 0, st>>>(*p);
        } else {
            dim3 grid((unsigned)((p->w.cols + TM_CG - 1) / TM_CG), (unsigned)p->groups);
            k_matvec_t<T, false><<<grid, TM_CG * TM_RS, 0, st>>>(*p);
        }
    });
    return cudaGetLastError();
}

extern "C" bool cuk_kind_ok(int32_t kind) {
    return kind == ZW_F32 || kind == ZW_F16 || kind == ZW_BF16;
}

extern "C" int cuk_kind_size(int32_t kind) {
    switch (kind) {
    case ZW_F32: return 4;
    case ZW_F16:
    case ZW_BF16: return 2;
    default: return 0;
    }
}
