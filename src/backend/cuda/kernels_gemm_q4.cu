/*
 * kernels_gemm_q4.cu — the routed experts' grouped products of a prefill chunk in fast
 * mode, for affine 4-bit weights (bf16 or f16 scales, groups of 32 or more): Y = X W^T
 * with the weight streamed as its packed codes and X already in bf16 (cuk_to_bf16).
 *
 * kernels_gemm_tc.cu's tile kernel dequantizes 8 elements a thread per 32-deep step from
 * global memory, one step ahead: a block keeps 1 KB of codes in flight, and the experts'
 * products ran at about 320 GB/s (a 512-token chunk's largest piece).  Here a block is
 * 128 weight rows x 64 tokens, 64-deep steps, and the raw codes (4 KB a step) and X's
 * bf16 tile come into shared memory by cp.async Q4_ST - 1 steps ahead; the block's
 * scales and biases for the whole row come once at the start.  Each step a thread
 * dequantizes the 32 codes it copied (tile row tid / 2, elements 32 (tid % 2) ..) into
 * the bf16 weight tile with deq8's values (s * q + b in float32, then to nearest even),
 * and eight warps compute 32 rows x 32 tokens each with mma.sync m16n8k16 on ldmatrix
 * loads (mma.cuh).  Grouped, the grid is the list of the groups' tiles (q4_tile), not a
 * slice per group mostly idle; the experts' gate and up share a launch
 * (cuk_gemm_q4_pair: 64 rows of each a tile, one X tile for both).
 *
 * The operands are the tile kernel's bf16 values and every output's sum is the same
 * sequence of 16-deep tensor-core products in k order (wmma's 16 x 16 x 16 is two of
 * these m16n8k16), so the two kernels agree bit for bit (tests/test_cuda_kernels.c holds
 * them to it, and both to a double-precision dot of the bf16 values).
 */
#include "backend/cuda/dot.cuh"
#include "backend/cuda/mma.cuh"

enum {
    Q4_M = 128, Q4_N = 64, Q4_K = 64, Q4_THREADS = 256, Q4_ST = 3,
    Q4_LD = Q4_K + 8,              /* bf16 elements between rows of the weight and X tiles */
    Q4_OLD = Q4_M + 4,             /* floats between tokens of the output tile */
    Q4_CODES = Q4_M * Q4_K / 2,    /* bytes of one step's codes */
    Q4_NG_MAX = 64                 /* scale groups a row: 4,096 columns at g64 */
};

/* Shared memory: Q4_ST steps of codes, Q4_ST of X [token][k], the weight tile [row][k],
   then the block's scales and biases [row][group] (raw 2-byte values); the
   output tile [token][row] (floats) reuses the first two after the loop. */
static size_t q4_smem(int64_t ng) {
    return (size_t)Q4_ST * Q4_CODES + (size_t)(Q4_ST * Q4_N + Q4_M) * Q4_LD * 2 + (size_t)(2 * Q4_M * ng) * 2;
}
static_assert(Q4_N * Q4_OLD * 4 <= Q4_ST * Q4_CODES + Q4_ST * Q4_N * Q4_LD * 2, "the output tile fits the steps");

template <int SDT>
__device__ __forceinline__ float q4_scale(const uint16_t *p) {
    if constexpr (SDT == CU_SDT_BF16) return __uint_as_float((uint32_t)*p << 16);
    else return __half2float(__ushort_as_half(*p));
}

/* The grouped launch's tile t (blockIdx.y) as a group and its first row: the groups'
   64-row tiles in order, counted by each warp from goff (a warp-wide scan of 32 groups at
   a time); false past the last tile. */
__device__ __forceinline__ bool q4_tile(const int32_t *goff, int64_t groups, int64_t t, gemm_group *gg,
                                        int64_t *j0) {
    const int lane = threadIdx.x & 31;
    int64_t before = 0; /* tiles of the groups already passed */
    for (int64_t e0 = 0; e0 < groups; e0 += 32) {
        const int64_t e = e0 + lane;
        const int64_t cnt = e < groups ? (int64_t)goff[e + 1] - goff[e] : 0;
        int64_t inc = (cnt + Q4_N - 1) / Q4_N; /* inclusive prefix over the lanes */
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const int64_t v = __shfl_up_sync(0xffffffffu, inc, o);
            if (lane >= o) inc += v;
        }
        const int64_t all = __shfl_sync(0xffffffffu, inc, 31);
        if (t < before + all) { /* the first lane whose prefix passes t */
            const unsigned m = __ballot_sync(0xffffffffu, before + inc > t);
            const int l = __ffs(m) - 1;
            const int64_t first = before + __shfl_sync(0xffffffffu, inc, l) -
                                  (__shfl_sync(0xffffffffu, cnt, l) + Q4_N - 1) / Q4_N;
            const int64_t ge = e0 + l;
            *gg = {goff[ge], (int64_t)goff[ge + 1] - goff[ge], ge};
            *j0 = (t - first) * Q4_N;
            return true;
        }
        before += all;
    }
    return false;
}

/* Row tr of the block's tile: its matrix (*m: 1 for w2 in a pair's launch, whose tiles
   are 64 rows of each of two matrices of one shape) and its row there. */
__device__ __forceinline__ int64_t q4_row(bool pair, int tr, int64_t r0, int *m) {
    *m = pair && tr >= Q4_M / 2;
    return r0 + (pair ? tr & (Q4_M / 2 - 1) : tr);
}

/* The 32 elements of a thread's step (codes cw, scale s, bias b) as bf16 at dst: the
   code as a float (the byte under 2^23's exponent, less 2^23: exact), then
   fmaf(s, q, b), which is deq8's __fadd_rn(__fmul_rn(s, q), b) because s q is exact (a
   bf16 or f16 scale times a 4-bit code: at most 15 significant bits, and a product below
   float's normal range is a multiple of 2^-133, which float's subnormals hold). */
__device__ __forceinline__ void q4_deq32(uint4 cw, float s, float b, __nv_bfloat16 *dst) {
    const uint32_t ws[4] = {cw.x, cw.y, cw.z, cw.w};
#pragma unroll
    for (int q = 0; q < 4; q++) {
        const uint32_t lo = ws[q] & 0x0F0F0F0Fu, hi = (ws[q] >> 4) & 0x0F0F0F0Fu; /* elements 2k, 2k + 1: byte k */
        float v[8];
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const float qe = __fsub_rn(__uint_as_float(__byte_perm(lo, 0x4B000000u, 0x7440u | k)), 8388608.0f);
            const float qo = __fsub_rn(__uint_as_float(__byte_perm(hi, 0x4B000000u, 0x7440u | k)), 8388608.0f);
            v[2 * k] = fmaf(s, qe, b);
            v[2 * k + 1] = fmaf(s, qo, b);
        }
        st_bf16x8(dst + q * 8, v);
    }
}

template <int SDT>
__global__ void __launch_bounds__(Q4_THREADS, 2)
    k_gemm_q4(const __grid_constant__ cuw w, const __grid_constant__ cuw w2, const __nv_bfloat16 *X, int64_t ldx,
              const int32_t *xrows, float *Y, float *Y2, int64_t ldy, int64_t n, const int32_t *goff,
              int64_t groups) {
    extern __shared__ __align__(128) uint8_t smq[];
    pdl_launch();
    pdl_wait();
    const int tid = threadIdx.x, warp = tid >> 5;
    const bool pair = Y2 != nullptr;
    const int64_t r0 = (int64_t)blockIdx.x * (pair ? Q4_M / 2 : Q4_M);
    /* groups > 0: the compact grid (blockIdx.y a tile of q4_tile's list, z 0), else
       gemm_group_of's (z the group, y its tile) */
    gemm_group gg;
    int64_t j0;
    if (groups > 0) {
        if (!q4_tile(goff, groups, blockIdx.y, &gg, &j0)) return; /* uniform over the block */
    } else {
        gg = gemm_group_of(goff, n);
        j0 = (int64_t)blockIdx.y * Q4_N;
    }
    const int64_t base = gg.base, cnt = gg.cnt, e = gg.e;
    if (j0 >= cnt) return; /* uniform over the block */
    const int ng = (int)(w.cols >> lg2(w.group)), nk = (int)(w.cols / Q4_K), gsh = lg2(w.group);
    uint8_t *codes = smq;
    __nv_bfloat16 *xs = reinterpret_cast<__nv_bfloat16 *>(smq + Q4_ST * Q4_CODES);
    __nv_bfloat16 *wt = xs + Q4_ST * Q4_N * Q4_LD;
    uint16_t *sc = reinterpret_cast<uint16_t *>(wt + Q4_M * Q4_LD);
    uint16_t *bi = sc + Q4_M * ng;

    /* the block's scales and biases, ng / 8 pieces of 16 bytes a row (rows past the
       matrix zero-filled) */
    {
        const int sp = ng >> 3;
        for (int i = tid; i < Q4_M * sp; i += Q4_THREADS) {
            int m;
            const int64_t row = q4_row(pair, i / sp, r0, &m);
            const cuw &wm = m ? w2 : w;
            const bool ok = row < wm.rows;
            const int64_t so = (e * wm.sstride + (ok ? row : 0) * ng) * 2 + (int64_t)(i % sp) * 16;
            cp_async16(sc + i * 8, static_cast<const uint8_t *>(wm.scales) + so, ok);
            cp_async16(bi + i * 8, static_cast<const uint8_t *>(wm.biases) + so, ok);
        }
    }
    /* this thread's piece of each step: the codes of tile row cr, bytes 16 ch .. (the 32 it
       dequantizes), and two 16-byte pieces of X's tile (tokens xt and xt + 32, piece xp) */
    const int cr = tid >> 1, ch = tid & 1, xt = tid >> 3, xp = tid & 7;
    int cm;
    const int64_t crow = q4_row(pair, cr, r0, &cm);
    const cuw &cw_ = cm ? w2 : w;
    const bool cok = crow < cw_.rows;
    const uint8_t *csrc = static_cast<const uint8_t *>(cw_.data) + e * cw_.stride + (cok ? crow : 0) * cw_.ld + ch * 16;
    constexpr int XN = Q4_N / 32; /* pieces of X's tile a thread copies */
    const __nv_bfloat16 *xsrc[XN];
    bool xok[XN];
#pragma unroll
    for (int i = 0; i < XN; i++) {
        const int64_t j = j0 + xt + 32 * i;
        xok[i] = j < cnt;
        const int64_t row = !xok[i] ? 0 : xrows ? (int64_t)xrows[base + j] : base + j;
        xsrc[i] = X + row * ldx + xp * 8;
    }
    auto issue = [&](int kt) {
        const int b = kt % Q4_ST;
        cp_async16(codes + b * Q4_CODES + cr * 32 + ch * 16, csrc + (int64_t)kt * (Q4_K / 2), cok);
#pragma unroll
        for (int i = 0; i < XN; i++)
            cp_async16(xs + (b * Q4_N + xt + 32 * i) * Q4_LD + xp * 8, xsrc[i] + (int64_t)kt * Q4_K, xok[i]);
    };
#pragma unroll
    for (int s = 0; s < Q4_ST - 1; s++) { /* the scales travel with step 0 */
        if (s < nk) issue(s);
        cp_async_commit();
    }

    /* warp: rows 32 * (warp % 4) .. +32 (two m16 tiles), tokens 32 * (warp / 4) .. +32
       (four n8 tiles); the lane's ldmatrix rows as shared-space byte addresses */
    const int lane = tid & 31, wm = (warp & 3) * 32, wn = (warp >> 2) * 32;
    const uint32_t wa = (uint32_t)__cvta_generic_to_shared(wt + wm * Q4_LD + a_lane(lane, Q4_LD));
    /* B: matrices (tokens 0-7, k 0-7), (0-7, 8-15), (8-15, 0-7), (8-15, 8-15) of a pair of n8 tiles */
    const uint32_t xa = (uint32_t)__cvta_generic_to_shared(
        xs + (wn + ((lane >> 4) << 3) + (lane & 7)) * Q4_LD + ((lane >> 3) & 1) * 8);
    float acc[2][4][4] = {};
    for (int kt = 0; kt < nk; kt++) {
        cp_async_wait<Q4_ST - 2>();
        /* step kt has landed for every thread, and every warp is done with step kt - 1's
           products: its buffers (the weight tile, step kt - 1's X) may be rewritten */
        __syncthreads();
        if (kt + Q4_ST - 1 < nk) issue(kt + Q4_ST - 1);
        cp_async_commit();
        {
            const uint4 cw = *reinterpret_cast<const uint4 *>(codes + (kt % Q4_ST) * Q4_CODES + cr * 32 + ch * 16);
            const int g = (kt * Q4_K + ch * 32) >> gsh; /* the 32 elements lie in one group */
            q4_deq32(cw, q4_scale<SDT>(sc + cr * ng + g), q4_scale<SDT>(bi + cr * ng + g),
                     wt + cr * Q4_LD + ch * 32);
        }
        __syncthreads();
        const uint32_t xk = xa + (uint32_t)((kt % Q4_ST) * Q4_N * Q4_LD * 2);
#pragma unroll
        for (int kk = 0; kk < Q4_K; kk += 16) {
            uint32_t a[2][4], bq[4][2];
#pragma unroll
            for (int i = 0; i < 2; i++) ldsm_x4<false>(wa + (uint32_t)((16 * i * Q4_LD + kk) * 2), a[i][0], a[i][1], a[i][2], a[i][3]);
#pragma unroll
            for (int j = 0; j < 2; j++)
                ldsm_x4<false>(xk + (uint32_t)((16 * j * Q4_LD + kk) * 2), bq[2 * j][0], bq[2 * j][1], bq[2 * j + 1][0],
                               bq[2 * j + 1][1]);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) mma_bf16(acc[i][j], a[i][0], a[i][1], a[i][2], a[i][3], bq[j][0], bq[j][1]);
        }
    }
    cp_async_wait<0>();
    __syncthreads(); /* the steps' buffers are dead: the output tile reuses them */
    float *out = reinterpret_cast<float *>(smq);
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int c = 0; c < 4; c++) {
                const int row = wm + 16 * i + (lane >> 2) + (c >> 1) * 8, tok = wn + 8 * j + (lane & 3) * 2 + (c & 1);
                out[tok * Q4_OLD + row] = acc[i][j][c];
            }
    __syncthreads();
    for (int i = tid; i < Q4_M * Q4_N; i += Q4_THREADS) {
        const int jj = i / Q4_M, rr = i % Q4_M;
        int m;
        const int64_t row = q4_row(pair, rr, r0, &m);
        if (row < w.rows && j0 + jj < cnt) (m ? Y2 : Y)[(base + j0 + jj) * ldy + row] = out[jj * Q4_OLD + rr];
    }
}

/* The device's opt-in shared memory a block (0 where it cannot be read). */
static int q4_optin(void) {
    return cu_dev_attr(cudaDevAttrMaxSharedMemoryPerBlockOptin);
}

extern "C" cudaError_t cuk_gemm_q4_init(int optin) {
    const size_t most = q4_smem(Q4_NG_MAX);
    const int lim = (size_t)optin < most ? optin : (int)most;
    const cudaFuncAttribute at = cudaFuncAttributeMaxDynamicSharedMemorySize;
    cudaError_t err = cudaFuncSetAttribute(k_gemm_q4<CU_SDT_BF16>, at, lim);
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_gemm_q4<CU_SDT_F16>, at, lim);
    return err;
}

extern "C" bool cuk_gemm_q4_ok(cuw w) {
    if (w.kind != ZW_AFFINE4 || !w.data || !w.scales || !w.biases || (w.sdt != CU_SDT_BF16 && w.sdt != CU_SDT_F16) ||
        w.group < 32 || (w.group & (w.group - 1)) || w.cols <= 0 || w.cols % Q4_K || w.cols % w.group)
        return false;
    const int64_t ng = w.cols / w.group;
    if (ng % 8 || ng > Q4_NG_MAX || w.sstride % 8 || w.ld % 16 || w.stride % 16 ||
        (((uintptr_t)w.data | (uintptr_t)w.scales | (uintptr_t)w.biases) & 15))
        return false;
    return q4_smem(ng) <= (size_t)q4_optin();
}

/* One launch: w alone (y2 NULL), or w and w2 (one shape) in the same tiles into y and y2. */
static cudaError_t q4_go(const cuw &w, const cuw &w2, const void *x, int64_t ldx, const int32_t *xrows, float *y,
                         float *y2, int64_t ldy, int64_t n, const int32_t *goff, int64_t groups, int64_t tot,
                         cu_q q) {
    if (n <= 0 || w.rows <= 0) return cudaSuccess;
    if (!cuk_gemm_q4_ok(w) || ldx % 8 || ldx < w.cols || ((uintptr_t)x & 15)) return cudaErrorInvalidValue;
    const int64_t rt = y2 ? Q4_M / 2 : Q4_M, gx = (w.rows + rt - 1) / rt, tiles = (n + Q4_N - 1) / Q4_N;
    /* grouped: the groups' tiles one after another (at most tot / 64 + groups of them, and
       never more than groups x n / 64), no block left idle by a small group
       (ZMLX_CUDA_Q4_COMPACT=0: a grid slice per group, for measuring) */
    const bool compact = goff && cu_knob("ZMLX_CUDA_Q4_COMPACT", 1) != 0;
    int64_t gy = tiles, gz = goff ? groups : 1;
    if (compact) {
        gy = tot > 0 ? (tot + Q4_N - 1) / Q4_N + groups : tiles * groups;
        if (gy > tiles * groups) gy = tiles * groups;
        gz = 1;
    }
    if (gz < 1 || gz > 65535 || gy > 65535 || gx > 0x7fffffff || (goff && groups < 1) || groups > 0x7fffffff)
        return cudaErrorInvalidValue;
    const dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)gz), blk(Q4_THREADS);
    const size_t smem = q4_smem(w.cols / w.group);
    const __nv_bfloat16 *xb = static_cast<const __nv_bfloat16 *>(x);
    const int64_t gr = compact ? groups : 0;
    return w.sdt == CU_SDT_BF16
               ? launch(q, grid, blk, smem, k_gemm_q4<CU_SDT_BF16>, w, w2, xb, ldx, xrows, y, y2, ldy, n, goff, gr)
               : launch(q, grid, blk, smem, k_gemm_q4<CU_SDT_F16>, w, w2, xb, ldx, xrows, y, y2, ldy, n, goff, gr);
}

extern "C" cudaError_t cuk_gemm_q4(cuw w, const void *x, int64_t ldx, const int32_t *xrows, float *y,
                                   int64_t ldy, int64_t n, const int32_t *goff, int64_t groups, int64_t tot,
                                   cu_q q) {
    return q4_go(w, w, x, ldx, xrows, y, nullptr, ldy, n, goff, groups, tot, q);
}

extern "C" bool cuk_gemm_q4_pair_ok(cuw w, cuw w2) {
    return w2.kind == w.kind && w2.rows == w.rows && w2.cols == w.cols && w2.group == w.group && w2.sdt == w.sdt &&
           cuk_gemm_q4_ok(w) && cuk_gemm_q4_ok(w2);
}

extern "C" cudaError_t cuk_gemm_q4_pair(cuw w, cuw w2, const void *x, int64_t ldx, const int32_t *xrows, float *y,
                                        float *y2, int64_t ldy, int64_t n, const int32_t *goff, int64_t groups,
                                        int64_t tot, cu_q q) {
    if (!cuk_gemm_q4_pair_ok(w, w2) || !y || !y2) return cudaErrorInvalidValue;
    /* ZMLX_CUDA_Q4_PAIR=0: a launch each (for measuring) */
    if (cu_knob("ZMLX_CUDA_Q4_PAIR", 1) == 0) {
        const cudaError_t err = q4_go(w, w, x, ldx, xrows, y, nullptr, ldy, n, goff, groups, tot, q);
        return err != cudaSuccess ? err : q4_go(w2, w2, x, ldx, xrows, y2, nullptr, ldy, n, goff, groups, tot, q);
    }
    return q4_go(w, w2, x, ldx, xrows, y, y2, ldy, n, goff, groups, tot, q);
}
