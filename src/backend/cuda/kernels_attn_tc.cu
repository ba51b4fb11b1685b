/*
 * kernels_attn_tc.cu — the expanded (prefill) MLA attention of fast mode on the tensor
 * cores, FlashAttention-2 style: bf16 operands, float32 scores, softmax and sums.
 *
 * A block is one head and 128 queries of the chunk (eight warps of 16; 64 and four where
 * that does not fit the device's shared memory); it walks the keys its queries see in
 * tiles of 64: the tile's keys [k_nope | k_pe] (kvb and the cache's rope columns) and
 * values (kvb) are rounded to bf16 in shared memory, row by row (whole 8-byte pieces: no
 * bank conflicts), each warp computes its 16 x 64 scores with mma.sync m16n8k16 (the
 * queries' and the keys' operands by ldmatrix), masks the causal part, keeps the online
 * softmax (running max and sum per row, in the registers of the row's four lanes) and
 * adds P V with the probabilities rounded to bf16 straight from the score registers (the
 * accumulator layout of one mma is the operand layout of the next) and the values'
 * operands by ldmatrix.trans.  Output = O / l.  Where the cache is bf16 and the chunk
 * step gave the keys and values' bf16 twin (cu_attn_x.kvb16, cuk_to_bf16 of kvb: the
 * values the tiles round to), k_attn_tc16 takes the tiles by cp.async into two buffers,
 * the next tile's rows in flight during this one's products: the same products, the same
 * bits (Hopper: 198 KB of shared memory for GLM's 256 + 256 columns).  Where its blocks
 * are fewer than two a multiprocessor, the keys are cut into spans (a grid dimension:
 * cuk_attn_tc16_split) whose partial sums and (m, l) k_fa_merge combines.
 *
 * Dense only: DeepSeek-V3.2's sparse lists (a key set per query) and layouts these tiles
 * do not hold (qk or vd not a multiple of 16, qk or vd over 256) take the float32 kernel
 * (kernels_attn.cu), as does `--precision exact`.
 *
 * Absorbed (decode) on a bf16 cache, k_attn_dec_tc: the heads are the rows of the
 * products (up to 32 per block, two m16 tiles), a block walks one split of the context
 * (the spans of kernels_attn.cu, whose merge it feeds) in tiles of 32 latent rows
 * [lat | k_pe] copied into shared memory by cp.async one tile ahead (rows past the span
 * zero-filled; sparse lists gathered); S = Q K^T by mma.sync (eight warps, one 16 x 8
 * tile each), the online softmax per head (one warp per four heads side by side, eight
 * lanes a head, a lane four or eight positions: three shuffles per reduction, the sums in
 * warp_sum's tree; exp2 of scores in log2 units, the maxima handed to the merge in natural
 * units), then O += P V
 * with V = the same rows' latent columns read by ldmatrix.trans (each warp 16 x 128 of the
 * 32 x 512 output), which leaves through shared memory in whole 16-byte pieces.  In the
 * decode step (cu_attn.early) the span and a first tile without the step's own row come
 * before the PDL wait, and the queries may arrive as bf16 (cu_attn.q16, W_UK^T's launch).
 * The cache is exact bf16; the queries and the probabilities are rounded to bf16.
 *
 * tests/test_cuda_attn.c holds both to a double-precision attention of the same bf16
 * inputs.
 */
#include "backend/cuda/attn.cuh"
#include "backend/cuda/mma.cuh"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A block: NW warps of 16 queries (FA_NW_WIDE where its tiles fit the device's shared
   memory, else FA_NW: each key tile then serves twice the queries), key tiles of FA_KV. */
enum { FA_NW = 4, FA_NW_WIDE = 8, FA_KV = 64, FA_MAXD = 256 };
enum { FA_LD = 8 }; /* tile loads in flight per thread */

/* bf16 elements of one key / value tile buffer: Ks [64][qk + 8], then Vs [64][vd + 8]
   (rows 8 elements longer than their data: the eight 16-byte rows of an ldmatrix fall in
   distinct banks). */
__host__ __device__ __forceinline__ int64_t fa_kv_elems(int64_t qk, int64_t vd) {
    return FA_KV * (qk + 8) + FA_KV * (vd + 8);
}

/* Dynamic shared memory of a block of nw warps: Qs [16 nw][qk + 8] and one tile buffer,
   bf16. */
static size_t fa_smem(int64_t qk, int64_t vd, int nw) {
    return (size_t)(16 * nw * (qk + 8) + fa_kv_elems(qk, vd)) * 2;
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t *>(&h);
}

/* Four floats as bf16 into dst (8-byte aligned). */
__device__ __forceinline__ void st_bf16x4(__nv_bfloat16 *dst, float a, float b, float c, float d) {
    uint2 v;
    v.x = pack_bf16(a, b);
    v.y = pack_bf16(c, d);
    *reinterpret_cast<uint2 *>(dst) = v;
}

/* Copy tot float4s of a tile: element i = ld(i), stored by st(i, v); FA_LD loads of each
   thread in flight before their stores (one at a time, a tile of 64 keys waited ~40 us). */
template <int NTH, typename LD, typename ST>
__device__ __forceinline__ void tile_copy(int64_t tot, LD ld, ST st) {
    for (int64_t i0 = threadIdx.x; i0 < tot; i0 += FA_LD * NTH) {
        float4 v[FA_LD];
#pragma unroll
        for (int k = 0; k < FA_LD; k++) {
            const int64_t i = i0 + k * NTH;
            v[k] = i < tot ? ld(i) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
#pragma unroll
        for (int k = 0; k < FA_LD; k++)
            if (i0 + k * NTH < tot) st(i0 + k * NTH, v[k]);
    }
}

/* One warp's 16 query rows against one key tile in shared memory: S = Q K^T (the
   lane's ldmatrix addresses qa, kb: its rows of the queries and of the tile's keys), the
   causal mask (keys past lim0 / lim1), the online softmax (running max m, sum l of the
   lane's two rows), O += P V (vb: its rows of the tile's values, transposed by ldmatrix). */
struct fa_rows {
    float m0, m1, l0, l1;
};
template <int NT>
__device__ __forceinline__ void fa_tile(uint32_t qa, uint32_t kb, uint32_t vb, int64_t qk, int64_t QLD,
                                        int64_t VLD, int nvt, int64_t kt, int64_t lim0, int64_t lim1, int t,
                                        float sl2, fa_rows &st, float (&acc)[NT][4]) {
    /* S = Q K^T: 16 rows x 64 keys, eight tiles of 8 keys */
    float s[8][4];
#pragma unroll
    for (int j = 0; j < 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
    for (int64_t kk = 0; kk < qk; kk += 16) {
        uint32_t a0, a1, a2, a3;
        ldsm_x4<false>(qa + 2u * (uint32_t)kk, a0, a1, a2, a3);
#pragma unroll
        for (int j = 0; j < 8; j += 2) {
            uint32_t b0, b1, b2, b3;
            ldsm_x4<false>(kb + 2u * (uint32_t)(8 * j * QLD + kk), b0, b1, b2, b3);
            mma_bf16(s[j], a0, a1, a2, a3, b0, b1);
            mma_bf16(s[j + 1], a0, a1, a2, a3, b2, b3);
        }
    }

    /* mask, online softmax (the row's max over its four lanes) */
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const int64_t u = kt + 8 * j + 2 * t + e;
            s[j][e] = u <= lim0 ? s[j][e] * sl2 : -INFINITY;
            s[j][2 + e] = u <= lim1 ? s[j][2 + e] * sl2 : -INFINITY;
            mx0 = fmaxf(mx0, s[j][e]);
            mx1 = fmaxf(mx1, s[j][2 + e]);
        }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    /* key 0 is in every row's first tile, so the running max is finite from then on; a
       span of the keys (k_attn_tc16's splits) may mask a row's every key so far: its max
       stays -inf, subtracted as 0 (every p and alpha 0, not NaN) */
    const float n0 = fmaxf(st.m0, mx0), n1 = fmaxf(st.m1, mx1);
    const float z0 = n0 == -INFINITY ? 0.0f : n0, z1 = n1 == -INFINITY ? 0.0f : n1;
    const float al0 = exp2f(st.m0 - z0), al1 = exp2f(st.m1 - z1);
    st.m0 = n0, st.m1 = n1;
    float ps0 = 0.0f, ps1 = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            s[j][e] = exp2f(s[j][e] - z0);
            s[j][2 + e] = exp2f(s[j][2 + e] - z1);
            ps0 += s[j][e];
            ps1 += s[j][2 + e];
        }
    st.l0 = fmaf(st.l0, al0, ps0);
    st.l1 = fmaf(st.l1, al1, ps1);
#pragma unroll
    for (int j = 0; j < NT; j++) {
        acc[j][0] *= al0, acc[j][1] *= al0;
        acc[j][2] *= al1, acc[j][3] *= al1;
    }

    /* O += P V: the probabilities of keys 16 kb .. +16 are the A operand as they lie */
#pragma unroll
    for (int kb2 = 0; kb2 < 4; kb2++) {
        const uint32_t a0 = pack_bf16(s[2 * kb2][0], s[2 * kb2][1]);
        const uint32_t a1 = pack_bf16(s[2 * kb2][2], s[2 * kb2][3]);
        const uint32_t a2 = pack_bf16(s[2 * kb2 + 1][0], s[2 * kb2 + 1][1]);
        const uint32_t a3 = pack_bf16(s[2 * kb2 + 1][2], s[2 * kb2 + 1][3]);
        const uint32_t v = vb + 2u * (uint32_t)(16 * kb2 * VLD);
#pragma unroll
        for (int j = 0; j < NT; j += 2) { /* vd % 16 == 0: n tiles come in pairs */
            if (j < nvt) {
                uint32_t b0, b1, b2, b3;
                ldsm_x4<true>(v + 16u * (uint32_t)j, b0, b1, b2, b3);
                mma_bf16(acc[j], a0, a1, a2, a3, b0, b1);
                mma_bf16(acc[j + 1], a0, a1, a2, a3, b2, b3);
            }
        }
    }
}

/* One past the last key the block of queries q0 .. q0 + nq sees. */
__device__ __forceinline__ int64_t fa_kend(const cu_attn_x &p, int64_t q0, int nq) {
    return p.step->pos + (q0 + nq < p.n ? q0 + nq : p.n);
}

/* The block's setup shared by both tile feeds: the queries of head h, rows q0 .. q0 + 16 NW
   into Qs as bf16; the lane's ldmatrix addresses (relative to a key / value buffer). */
template <int NW> struct fa_block {
    int64_t qk, QLD, VLD, n, kend, lim0, lim1;
    int wq, g, t, nvt;
    float sl2;
    uint32_t qa, ko, vo; /* the queries' address; the keys' and values' offsets in a buffer */

    __device__ __forceinline__ void init(const cu_attn_x &p, __nv_bfloat16 *Qs, int64_t h, int64_t q0) {
        constexpr int FA_Q = 16 * NW, FA_THREADS = NW * 32;
        const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
        qk = p.nope + p.rope, QLD = qk + 8, VLD = p.vd + 8;
        g = lane >> 2, t = lane & 3, nvt = (int)(p.vd / 8);
        const int64_t pos = p.step->pos;
        n = p.n;
        kend = fa_kend(p, q0, FA_Q); /* keys this block reads */
        const int64_t q4 = qk / 4;
        for (int64_t i = tid; i < FA_Q * q4; i += FA_THREADS) { /* the queries, bf16 */
            const int64_t r = i / q4, c = (i - r * q4) * 4;
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (q0 + r < n) v = __ldg(reinterpret_cast<const float4 *>(p.q + ((q0 + r) * p.H + h) * qk + c));
            st_bf16x4(Qs + r * QLD + c, v.x, v.y, v.z, v.w);
        }
        /* this lane's rows: wq + g and wq + g + 8; the last key each may see */
        wq = warp * 16;
        lim0 = pos + (q0 + wq + g < n ? q0 + wq + g : n - 1);
        lim1 = pos + (q0 + wq + g + 8 < n ? q0 + wq + g + 8 : n - 1);
        sl2 = p.scale * 1.4426950408889634f; /* scores in log2 units: exp2 */
        /* ldmatrix rows: the warp's queries (a_lane's four matrices); keys 8 j + 0-7 at
           columns kk and kk + 8, then keys 8 j + 8-15 (B of n tiles j and j + 1); values:
           keys 16 kb + 0-15 at columns 8 j and 8 j + 8, transposed (B of n tiles j, j + 1) */
        qa = (uint32_t)__cvta_generic_to_shared(Qs + wq * QLD + a_lane(lane, (int)QLD));
        ko = 2u * (uint32_t)(((lane & 7) + (lane >> 4) * 8) * QLD + ((lane >> 3) & 1) * 8);
        vo = 2u * (uint32_t)((lane & 15) * VLD + (lane >> 4) * 8);
    }

    /* Output = O / l (the row sums over the row's four lanes); or, for span sp of
       nsplit > 1, the partial O and (m in natural units, l) that k_fa_merge combines. */
    template <int NT>
    __device__ __forceinline__ void store(const cu_attn_x &p, int64_t h, int64_t q0, fa_rows st,
                                          const float (&acc)[NT][4], int64_t nsplit = 1, int64_t sp = 0) const {
        st.l0 += __shfl_xor_sync(0xffffffffu, st.l0, 1);
        st.l0 += __shfl_xor_sync(0xffffffffu, st.l0, 2);
        st.l1 += __shfl_xor_sync(0xffffffffu, st.l1, 1);
        st.l1 += __shfl_xor_sync(0xffffffffu, st.l1, 2);
        const int64_t r0 = q0 + wq + g, r1 = r0 + 8;
        if (nsplit > 1) {
            const int64_t i0 = (r0 * nsplit + sp) * p.H + h, i1 = (r1 * nsplit + sp) * p.H + h;
#pragma unroll
            for (int j = 0; j < NT; j++) {
                if (j >= nvt) continue;
                const int64_t c = 8 * j + 2 * t;
                if (r0 < n) *reinterpret_cast<float2 *>(p.part_o + i0 * p.vd + c) = make_float2(acc[j][0], acc[j][1]);
                if (r1 < n) *reinterpret_cast<float2 *>(p.part_o + i1 * p.vd + c) = make_float2(acc[j][2], acc[j][3]);
            }
            if (t == 0 && r0 < n)
                *reinterpret_cast<float2 *>(p.part_ml + i0 * 2) = make_float2(st.m0 * 0.6931471805599453f, st.l0);
            if (t == 0 && r1 < n)
                *reinterpret_cast<float2 *>(p.part_ml + i1 * 2) = make_float2(st.m1 * 0.6931471805599453f, st.l1);
            return;
        }
#pragma unroll
        for (int j = 0; j < NT; j++) {
            if (j >= nvt) continue;
            const int64_t c = 8 * j + 2 * t;
            if (r0 < n) {
                float *o = p.out + (r0 * p.H + h) * p.vd + c;
                o[0] = acc[j][0] / st.l0, o[1] = acc[j][1] / st.l0;
            }
            if (r1 < n) {
                float *o = p.out + (r1 * p.H + h) * p.vd + c;
                o[0] = acc[j][2] / st.l1, o[1] = acc[j][3] / st.l1;
            }
        }
    }
};

/* NT = value columns / 8 this instance holds (vd <= 8 NT); NW warps, 16 queries each.
   The tiles from float kvb (and a float or bf16 cache): loaded, rounded, stored. */
template <bool BF16, int NT, int NW>
__global__ void __launch_bounds__(NW * 32) k_attn_tc(const __grid_constant__ cu_attn_x p) {
    constexpr int FA_Q = 16 * NW, FA_THREADS = NW * 32;
    extern __shared__ __align__(16) __nv_bfloat16 fsm[];
    pdl_launch();
    const int64_t qk = p.nope + p.rope, hs = p.nope + p.vd, W = p.R + p.rope;
    const int64_t h = blockIdx.x, q0 = (int64_t)blockIdx.y * FA_Q;
    __nv_bfloat16 *Qs = fsm, *Ks = Qs + FA_Q * (qk + 8), *Vs = Ks + FA_KV * (qk + 8);
    pdl_wait();
    fa_block<NW> fb;
    fb.init(p, Qs, h, q0);
    const int64_t q4 = qk / 4, v4 = p.vd / 4, QLD = fb.QLD, VLD = fb.VLD, kend = fb.kend;
    const uint32_t kb = (uint32_t)__cvta_generic_to_shared(Ks) + fb.ko;
    const uint32_t vb = (uint32_t)__cvta_generic_to_shared(Vs) + fb.vo;
    fa_rows st = {-INFINITY, -INFINITY, 0.0f, 0.0f};
    float acc[NT][4];
#pragma unroll
    for (int j = 0; j < NT; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;

    for (int64_t kt = 0; kt < kend; kt += FA_KV) {
        __syncthreads(); /* the previous tile is consumed (and Qs written) */
        /* keys [k_nope | k_pe], then values, a row of the tile a row of the buffer */
        tile_copy<FA_THREADS>(FA_KV * q4, [&](int64_t i) {
            const int64_t r = i / q4, c = (i - r * q4) * 4, u = kt + r;
            if (u >= kend) return make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (c < p.nope) return __ldg(reinterpret_cast<const float4 *>(p.kvb + (u * p.H + h) * hs + c));
            return cache4<BF16>(p.cache, u * W + p.R + (c - p.nope));
        }, [&](int64_t i, float4 v) {
            const int64_t r = i / q4, c = (i - r * q4) * 4;
            st_bf16x4(Ks + r * QLD + c, v.x, v.y, v.z, v.w);
        });
        tile_copy<FA_THREADS>(FA_KV * v4, [&](int64_t i) {
            const int64_t r = i / v4, c = (i - r * v4) * 4, u = kt + r;
            if (u >= kend) return make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            return __ldg(reinterpret_cast<const float4 *>(p.kvb + (u * p.H + h) * hs + p.nope + c));
        }, [&](int64_t i, float4 v) {
            const int64_t r = i / v4, c = (i - r * v4) * 4;
            st_bf16x4(Vs + r * VLD + c, v.x, v.y, v.z, v.w);
        });
        __syncthreads();
        fa_tile<NT>(fb.qa, kb, vb, qk, QLD, VLD, fb.nvt, kt, fb.lim0, fb.lim1, fb.t, fb.sl2, st, acc);
    }
    fb.template store<NT>(p, h, q0, st, acc);
}

/* The same block over bf16 keys and values (cu_attn_x.kvb16, a bf16 cache's rope
   columns: the values k_attn_tc rounds them to, so the same bits): the tiles come by
   cp.async into two buffers, the next tile's rows in flight during this one's products
   (Hopper: 198 KB of shared memory for GLM's 256 + 256 columns). */
template <int NT>
__global__ void __launch_bounds__(FA_NW_WIDE * 32) k_attn_tc16(const __grid_constant__ cu_attn_x p) {
    constexpr int NW = FA_NW_WIDE, FA_Q = 16 * NW, FA_THREADS = NW * 32;
    extern __shared__ __align__(16) __nv_bfloat16 fsm[];
    pdl_launch();
    const int64_t qk = p.nope + p.rope, hs = p.nope + p.vd, W = p.R + p.rope;
    const int64_t h = blockIdx.x, q0 = (int64_t)blockIdx.y * FA_Q, sp = blockIdx.z;
    const int64_t KVB = fa_kv_elems(qk, p.vd); /* one buffer: keys, then values */
    __nv_bfloat16 *Qs = fsm, *B0 = Qs + FA_Q * (qk + 8);
    const int64_t nsplit = p.nsplit > 1 ? p.nsplit : 1;
    pdl_wait();
    /* this block's span of the keys: tiles sp * split_tiles .. +split_tiles (all of them
       without splits); an empty span still says so to the merge (l = 0) */
    const int64_t t_lo = nsplit > 1 ? sp * p.split_tiles * FA_KV : 0;
    if (t_lo >= fa_kend(p, q0, FA_Q)) {
        for (int64_t r = q0 + threadIdx.x; r < q0 + FA_Q && r < p.n; r += FA_THREADS)
            *reinterpret_cast<float2 *>(p.part_ml + ((r * nsplit + sp) * p.H + h) * 2) = make_float2(0.0f, 0.0f);
        return;
    }
    fa_block<NW> fb;
    fb.init(p, Qs, h, q0);
    const int64_t QLD = fb.QLD, VLD = fb.VLD;
    const int64_t kend = nsplit > 1 && t_lo + p.split_tiles * FA_KV < fb.kend ? t_lo + p.split_tiles * FA_KV : fb.kend;
    const int kc = (int)(qk / 8), per = kc + (int)(p.vd / 8), nope8 = (int)(p.nope / 8);
    const __nv_bfloat16 *kv16 = static_cast<const __nv_bfloat16 *>(p.kvb16) + h * hs;
    const __nv_bfloat16 *rope16 = static_cast<const __nv_bfloat16 *>(p.cache) + p.R - p.nope;
    /* tile kt's rows into buffer b: 16-byte pieces, rows past kend zero-filled */
    auto issue = [&](int64_t kt, int b) {
        __nv_bfloat16 *Kd = B0 + b * KVB, *Vd = Kd + FA_KV * QLD;
        for (int i = threadIdx.x; i < FA_KV * per; i += FA_THREADS) {
            const int r = i / per, c8 = i - r * per;
            const int64_t u = kt + r < kend ? kt + r : 0;
            const __nv_bfloat16 *src;
            __nv_bfloat16 *dst;
            if (c8 < kc) {
                src = c8 < nope8 ? kv16 + u * p.H * hs + 8 * c8 : rope16 + u * W + 8 * c8;
                dst = Kd + r * QLD + 8 * c8;
            } else {
                src = kv16 + u * p.H * hs + p.nope + 8 * (c8 - kc);
                dst = Vd + r * VLD + 8 * (c8 - kc);
            }
            cp_async16(dst, src, kt + r < kend);
        }
        cp_async_commit();
    };
    issue(t_lo, 0);
    const uint32_t b0 = (uint32_t)__cvta_generic_to_shared(B0);
    fa_rows st = {-INFINITY, -INFINITY, 0.0f, 0.0f};
    float acc[NT][4];
#pragma unroll
    for (int j = 0; j < NT; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
    int b = 0;
    for (int64_t kt = t_lo; kt < kend; kt += FA_KV, b ^= 1) {
        if (kt + FA_KV < kend) { /* the next tile into the other buffer, freed by the barrier below */
            issue(kt + FA_KV, b ^ 1);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads(); /* this tile's rows (every thread's pieces) have landed; Qs written */
        const uint32_t kb = b0 + 2u * (uint32_t)(b * KVB);
        fa_tile<NT>(fb.qa, kb + fb.ko, kb + 2u * (uint32_t)(FA_KV * QLD) + fb.vo, qk, QLD, VLD, fb.nvt, kt,
                    fb.lim0, fb.lim1, fb.t, fb.sl2, st, acc);
        __syncthreads(); /* this buffer is read: the next iteration's copies may refill it */
    }
    fb.template store<NT>(p, h, q0, st, acc, nsplit, sp);
}

/* The dynamic shared memory a kernel may open, as its init set it (0 where it cannot be
   read). */
static size_t smem_room(const void *kernel) {
    cudaFuncAttributes fa;
    if (cudaFuncGetAttributes(&fa, kernel) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return (size_t)fa.maxDynamicSharedSizeBytes;
}

extern "C" bool cuk_attn_tc_ok(const cu_attn_x *p) {
    const int64_t qk = p->nope + p->rope;
    if (p->idx || p->nope % 4 || qk % 16 || qk > FA_MAXD || p->vd % 16 || p->vd > FA_MAXD ||
        p->R % 4 || p->rope % 4 || p->H > 0x7fffffff || p->n > 65535 * (int64_t)(16 * FA_NW))
        return false;
    /* the tiles must fit what cuk_attn_tc_init could open (99 KB on sm_89, 227 on Hopper) */
    return fa_smem(qk, p->vd, FA_NW) <= smem_room((const void *)k_attn_tc<true, 32, FA_NW>);
}

/* Dynamic shared memory of k_attn_tc16: the queries and two key / value buffers. */
static size_t fa16_smem(int64_t qk, int64_t vd) {
    return fa_smem(qk, vd, FA_NW_WIDE) + (size_t)fa_kv_elems(qk, vd) * 2;
}

extern "C" bool cuk_attn_tc16_ok(const cu_attn_x *p) {
    const int64_t qk = p->nope + p->rope;
    return cuk_attn_tc_ok(p) && p->cache_bf16 && p->nope % 8 == 0 && (p->R + p->rope) % 8 == 0 &&
           p->R % 8 == 0 && p->n > 16 * FA_NW && fa16_smem(qk, p->vd) <= smem_room((const void *)k_attn_tc16<32>) &&
           cu_knob("ZMLX_CUDA_FA_ASYNC", 1) != 0 && cu_knob("ZMLX_CUDA_FA_WARPS", FA_NW_WIDE) == FA_NW_WIDE;
}

template <bool BF16, int NT, int NW> static cudaError_t fa_go(const cu_attn_x *p, cu_q q) {
    const dim3 grid((unsigned)p->H, (unsigned)((p->n + 16 * NW - 1) / (16 * NW)));
    return launch(q, grid, dim3(NW * 32), fa_smem(p->nope + p->rope, p->vd, NW), k_attn_tc<BF16, NT, NW>, *p);
}

template <int NW> static cudaError_t fa_nt_go(const cu_attn_x *p, cu_q q) {
    const int64_t nt = p->vd / 8;
    if (nt <= 8) return p->cache_bf16 ? fa_go<true, 8, NW>(p, q) : fa_go<false, 8, NW>(p, q);
    if (nt <= 16) return p->cache_bf16 ? fa_go<true, 16, NW>(p, q) : fa_go<false, 16, NW>(p, q);
    return p->cache_bf16 ? fa_go<true, 32, NW>(p, q) : fa_go<false, 32, NW>(p, q);
}

extern "C" void cuk_attn_tc16_split(cu_attn_x *p, int64_t T, int sms) {
    const int64_t blocks = p->H * ((p->n + 16 * FA_NW_WIDE - 1) / (16 * FA_NW_WIDE));
    const int64_t tiles = (T + FA_KV - 1) / FA_KV;
    int64_t ns = cu_knob("ZMLX_CUDA_FA_SPLITS", 0);
    if (ns <= 0) ns = blocks < 2 * (int64_t)sms ? 2 : 1; /* H100: 2 beat 3 and 4 at 512 and 4,096 */
    if (ns > ZCU_FA_MAX_SPLIT) ns = ZCU_FA_MAX_SPLIT;
    if (ns > tiles) ns = tiles;
    if (ns < 1) ns = 1;
    p->split_tiles = (tiles + ns - 1) / ns;
    p->nsplit = (tiles + p->split_tiles - 1) / p->split_tiles; /* no span left empty by rounding */
}

/* The spans' merge: a thread per four output columns of a (query, head): the spans' (m, l)
   and partial sums (every span below nsplit wrote its (m, l); l = 0: no weight, its sums
   not read), out = sum_s w_s o_s / sum_s w_s l_s with w_s = e^(m_s - max m), in span order. */
__global__ void __launch_bounds__(256) k_fa_merge(const __grid_constant__ cu_attn_x p) {
    pdl_launch();
    const int64_t v4 = p.vd / 4, i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    pdl_wait();
    if (i >= p.n * p.H * v4) return;
    const int64_t rh = i / v4, c = (i - rh * v4) * 4, r = rh / p.H, h = rh - r * p.H, ns = p.nsplit;
    float2 ml[ZCU_FA_MAX_SPLIT];
    float M = -INFINITY;
#pragma unroll
    for (int s = 0; s < ZCU_FA_MAX_SPLIT; s++) {
        ml[s] = s < ns ? *reinterpret_cast<const float2 *>(p.part_ml + ((r * ns + s) * p.H + h) * 2)
                       : make_float2(0.0f, 0.0f);
        if (ml[s].y > 0.0f) M = fmaxf(M, ml[s].x);
    }
    float L = 0.0f;
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int s = 0; s < ZCU_FA_MAX_SPLIT; s++) {
        if (!(ml[s].y > 0.0f)) continue;
        const float w = expf(ml[s].x - M);
        const float4 v = *reinterpret_cast<const float4 *>(p.part_o + ((r * ns + s) * p.H + h) * p.vd + c);
        L = fmaf(ml[s].y, w, L);
        o.x = fmaf(w, v.x, o.x), o.y = fmaf(w, v.y, o.y), o.z = fmaf(w, v.z, o.z), o.w = fmaf(w, v.w, o.w);
    }
    *reinterpret_cast<float4 *>(p.out + rh * p.vd + c) = make_float4(o.x / L, o.y / L, o.z / L, o.w / L);
}

template <int NT> static cudaError_t fa16_go(const cu_attn_x *p, cu_q q) {
    const int64_t ns = p->nsplit > 1 ? p->nsplit : 1;
    const dim3 grid((unsigned)p->H, (unsigned)((p->n + 16 * FA_NW_WIDE - 1) / (16 * FA_NW_WIDE)), (unsigned)ns);
    cudaError_t err = launch(q, grid, dim3(FA_NW_WIDE * 32), fa16_smem(p->nope + p->rope, p->vd), k_attn_tc16<NT>, *p);
    if (err != cudaSuccess || ns == 1) return err;
    return launch(q, dim3(grid_blocks(p->n * p->H * (p->vd / 4), 256, 1 << 30)), dim3(256), 0, k_fa_merge, *p);
}

extern "C" cudaError_t cuk_attn_tc(const cu_attn_x *p, cu_q q) {
    if (p->n <= 0) return cudaSuccess;
    if (!cuk_attn_tc_ok(p)) return cudaErrorInvalidValue;
    if (p->kvb16) { /* cuk_attn_tc16_ok was asked */
        const int64_t nt = p->vd / 8;
        return nt <= 8 ? fa16_go<8>(p, q) : nt <= 16 ? fa16_go<16>(p, q) : fa16_go<32>(p, q);
    }
    /* blocks of 128 queries where they fit (Hopper, A100), each key tile read once for
       twice the queries (ZMLX_CUDA_FA_WARPS=4: blocks of 64, for measuring) */
    if (cu_knob("ZMLX_CUDA_FA_WARPS", FA_NW_WIDE) == FA_NW_WIDE && p->n > 16 * FA_NW &&
        fa_smem(p->nope + p->rope, p->vd, FA_NW_WIDE) <= smem_room((const void *)k_attn_tc<true, 32, FA_NW_WIDE>))
        return fa_nt_go<FA_NW_WIDE>(p, q);
    return fa_nt_go<FA_NW>(p, q);
}

static cudaError_t dt_init(int optin);

/* The largest tiles' dynamic shared memory (cuk_init). */
extern "C" cudaError_t cuk_attn_tc_init(int optin) {
    const cudaFuncAttribute a = cudaFuncAttributeMaxDynamicSharedMemorySize;
    cudaError_t err = cudaSuccess;
#define ZCU_FA_ATTR(NW)                                                                                       \
    do {                                                                                                      \
        const size_t want = fa_smem(FA_MAXD, FA_MAXD, NW);                                                     \
        const int bytes = want < (size_t)optin ? (int)want : optin;                                           \
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_tc<true, 8, NW>, a, bytes);                \
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_tc<false, 8, NW>, a, bytes);               \
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_tc<true, 16, NW>, a, bytes);               \
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_tc<false, 16, NW>, a, bytes);              \
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_tc<true, 32, NW>, a, bytes);               \
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_tc<false, 32, NW>, a, bytes);              \
    } while (0)
    ZCU_FA_ATTR(FA_NW);
    ZCU_FA_ATTR(FA_NW_WIDE);
#undef ZCU_FA_ATTR
    {
        const size_t want = fa16_smem(FA_MAXD, FA_MAXD);
        const int bytes = want < (size_t)optin ? (int)want : optin;
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_tc16<8>, a, bytes);
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_tc16<16>, a, bytes);
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_attn_tc16<32>, a, bytes);
    }
    if (err == cudaSuccess) err = dt_init(optin);
    return err;
}

/* ------------------------------------------------------------------ decode (absorbed) */

enum { DT_HB = 32, DT_WARPS = 8, DT_THREADS = DT_WARPS * 32, DT_MAXW = 576 + 64, DT_ST_FEW = 2 };
static_assert(DT_THREADS == AS_WARPS * 32 && DT_MAXW <= AS_CH * 128, "attn_short's block and row");

/* Dynamic shared memory for rows of width W and ST tile buffers of TK rows: Qs [32][W + 8],
   ST K tiles [TK][W + 8] (bf16), S [32][TK + 8] (f32), alpha [32] (f32), P [32][TK + 8]
   (bf16). */
static size_t dt_smem(int64_t W, int ST, int TK) {
    return (size_t)((DT_HB + ST * TK) * (W + 8)) * 2 + (size_t)(DT_HB * (TK + 8) + DT_HB) * 4 +
           (size_t)(DT_HB * (TK + 8)) * 2;
}

/* ST >= 2: the next ST - 1 tiles' rows in flight during this tile's products (one block
   per SM at W = 576); ST = 1: one buffer, two blocks per SM overlap each other instead.
   WC: the row width as a constant (576: MLA's 512 latent and 64 rope columns, GLM's and
   DeepSeek's; the arithmetic then folds), 0: p.R + p.rope at run time.  TK: rows a tile
   (32, or 64 for long splits: half the barriers and butterflies a row; each lane then
   holds two positions of the softmax and each warp two key tiles of the scores). */
template <int ST, int WC, int TK>
__global__ void __launch_bounds__(DT_THREADS, ST == 1 ? 2 : 1) k_attn_dec_tc(const __grid_constant__ cu_attn p) {
    static_assert(TK == 32 || TK == 64, "tiles of 32 or 64 rows");
    /* SLD = TK + 8: the softmax's eight-lane groups read four heads' rows at banks 8 apart,
       the score stores' half-warps land on distinct banks */
    constexpr int SLD = TK + 8, PLD = TK + 8, NKT = TK / 32; /* NKT: key tiles of 8 a warp */
    extern __shared__ __align__(16) __nv_bfloat16 dsm[];
    pdl_launch();
    const int W = WC ? WC : (int)(p.R + p.rope), R = WC ? WC - 64 : (int)p.R, LD = W + 8;
    __nv_bfloat16 *Qs = dsm, *Kb = Qs + DT_HB * LD; /* Kb: ST tiles */
    float *Ss = reinterpret_cast<float *>(Kb + ST * TK * LD), *al = Ss + DT_HB * SLD;
    __nv_bfloat16 *Ps = reinterpret_cast<__nv_bfloat16 *>(al + DT_HB);
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int64_t split = blockIdx.x, h0 = (int64_t)blockIdx.y * DT_HB, qi = blockIdx.z;
    const int nh = (int)(p.H - h0 < DT_HB ? p.H - h0 : DT_HB);
    /* p.early (the decode step): the step and every cache row but its own were written
       before this launch's chain began, so the span, and below the first tile where it
       holds no row of the step's, come before the wait (the step's row is written by the
       launch before) */
    const bool early = p.early && p.n_q == 1 && !p.idx;
    if (!early) pdl_wait();
    const bool shortq = attn_short_q(p, qi);
    const attn_span sp = shortq || split >= p.nsplit ? attn_span{nullptr, 0, 0}
                                                     : attn_span_of(p, qi, split, TK); /* kernels_attn.cu's spans */
    const int32_t *ix = sp.ix;
    const int64_t t0 = sp.t0, t1 = sp.t1;
    const bool tile0_early = early && !ix && t0 < t1 && (t0 + TK < t1 ? t0 + TK : t1) <= (int64_t)p.step->pos;

    const uint32_t c16 = (uint32_t)(W / 8); /* 16-byte pieces of a row (32-bit index math) */
    const uint8_t *cb = static_cast<const uint8_t *>(p.cache);
    auto issue = [&](int64_t tt, __nv_bfloat16 *dst) {
        if (!ix) { /* dense: the tile's rows are one run of the cache; piece i lands at
                      row r = i / c16 of the padded tile, (i + r) * 8 */
            const uint8_t *src = cb + (size_t)tt * W * 2;
            if (tt + TK <= t1) { /* a whole tile (all but a split's last): no guards */
                const uint32_t sd = (uint32_t)__cvta_generic_to_shared(dst);
#pragma unroll
                for (uint32_t i = tid; i < TK * c16; i += DT_THREADS)
                    cp_async16s(sd + (i + i / c16) * 16, src + (size_t)i * 16);
                return;
            }
            const uint32_t rows = (uint32_t)(t1 - tt);
#pragma unroll
            for (uint32_t i = tid; i < TK * c16; i += DT_THREADS) {
                const uint32_t r = i / c16;
                cp_async16(dst + (i + r) * 8, r < rows ? src + (size_t)i * 16 : cb, r < rows);
            }
            return;
        }
        for (uint32_t i = tid; i < TK * c16; i += DT_THREADS) {
            const uint32_t r = i / c16, c = (i - r * c16) * 8;
            const int64_t u = tt + r;
            const bool ok = u < t1;
            const int64_t row = ok ? (int64_t)ix[u] : 0;
            cp_async16(dst + r * LD + c, cb + (size_t)(row * W + c) * 2, ok);
        }
    };
    if (tile0_early) { /* rows 0 .. pos - 1 only (entries of a dense decode query: 0 .. pos) */
        issue(t0, Kb);
        cp_async_commit();
    }
    if (early) pdl_wait();
    if (shortq) { /* attn.cuh: the whole query here, float32, no merge */
        attn_short<true, ST >= 2 ? 4 : 2>(p, qi, reinterpret_cast<float *>(dsm));
        return;
    }
    if (split >= p.nsplit) return; /* a block the short path asked for */
    /* the queries as bf16 (p.q16: W_UK^T's launch wrote them) by cp.async, rows past nh
       zero-filled: with the first tile's group, or in a group of their own after the early
       one (the loop's first wait leaves only later tiles' groups in flight); a split
       without entries needs no queries */
    const bool q16 = p.q16 != nullptr && t0 < t1;
    auto issue_q = [&]() {
        const uint8_t *src = static_cast<const uint8_t *>(p.q16) + (size_t)(qi * p.H + h0) * W * 2;
        for (uint32_t i = tid; i < DT_HB * c16; i += DT_THREADS) {
            const uint32_t r = i / c16;
            cp_async16(Qs + (i + r) * 8, r < (uint32_t)nh ? src + (size_t)i * 16 : src, r < (uint32_t)nh);
        }
    };
    if (!tile0_early) {
        if (t0 < t1) issue(t0, Kb);
        if (q16) issue_q();
        cp_async_commit();
    } else if (q16) {
        issue_q();
        cp_async_commit();
    }
#pragma unroll
    for (int k = 1; k < ST - 1; k++) { /* the next tiles but one, each a group of its own */
        if (t0 + k * TK < t1) issue(t0 + k * TK, Kb + k * TK * LD);
        cp_async_commit();
    }
    if (!q16 && t0 < t1) { /* the queries, bf16: the block's rows are consecutive, twelve loads
                              of a thread in flight (GLM's 20 heads of 576: one trip) */
        const uint32_t w4 = (uint32_t)(W / 4), tot = DT_HB * w4, have = (uint32_t)nh * w4;
        const float4 *src = reinterpret_cast<const float4 *>(p.q + (qi * p.H + h0) * W);
        for (uint32_t i0 = tid; i0 < tot; i0 += 12 * DT_THREADS) {
            float4 v[12];
#pragma unroll
            for (int k = 0; k < 12; k++) {
                const uint32_t i = i0 + k * DT_THREADS;
                v[k] = i < have ? __ldg(src + i) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            }
#pragma unroll
            for (int k = 0; k < 12; k++) {
                const uint32_t i = i0 + k * DT_THREADS, r = i / w4;
                if (i < tot) st_bf16x4(Qs + r * LD + (i - r * w4) * 4, v[k].x, v[k].y, v[k].z, v[k].w);
            }
        }
    }

    /* softmax state of head 4 w + hq (uniform over its eight lanes) */
    float m = -INFINITY, l = 0.0f;
    /* output: warp w holds heads 16 (w & 1) .. +16, columns 128 (w >> 1) .. +128 */
    const int om = (warp & 1) * 16, on = (warp >> 1) * 128;
    float acc[16][4];
#pragma unroll
    for (int j = 0; j < 16; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
    /* scores: warp w computes heads 16 (w & 1) .. +16 x keys 8 NKT (w >> 1) .. +8 NKT; its
       ldmatrix rows: the queries' A operand, and each key tile's B operands of two k steps
       (k 0-7, 8-15, 16-23, 24-31 of keys sn + 8 u .. +7) */
    const int sm_ = (warp & 1) * 16, sn = (warp >> 1) * 8 * NKT;
    /* shared-space byte addresses of the lane's ldmatrix rows (one conversion, not one per load) */
    const uint32_t qa = (uint32_t)__cvta_generic_to_shared(Qs + sm_ * LD + a_lane(lane, LD));
    const uint32_t pa = (uint32_t)__cvta_generic_to_shared(Ps + om * PLD + a_lane(lane, PLD));
    const uint32_t kb0 = (uint32_t)__cvta_generic_to_shared(Kb);
    const uint32_t kb_off = 2u * (uint32_t)((sn + (lane & 7)) * LD + (lane >> 3) * 8);
    const uint32_t vb_off = 2u * (uint32_t)((lane & 15) * LD + on + (lane >> 4) * 8); /* V: keys kb + 0-15, columns +0 / +8 */
    /* softmax: the warp's four heads side by side, eight lanes each; lane j of head 4 w + hq
       holds positions j + 8 i (and 32 + j + 8 i when TK = 64): warp_sum's lanes j + 8 i, so
       the in-lane pairs and three shuffles add in warp_sum's tree (the same bits) */
    const int hq = lane >> 3, hj = lane & 7;

    const float sl2 = p.scale * 1.4426950408889634f; /* scores in log2 units: exp2 */
    int buf = 0; /* this tile's buffer */
    for (int64_t tt = t0; tt < t1; tt += TK, buf = buf + 1 == ST ? 0 : buf + 1) {
        if constexpr (ST >= 2) { /* tile tt + ST - 1 into the buffer the last tile left */
            const int64_t ta = tt + (int64_t)(ST - 1) * TK;
            if (ta < t1) issue(ta, Kb + (buf == 0 ? ST - 1 : buf - 1) * TK * LD);
            cp_async_commit();
            cp_async_wait<ST - 1>(); /* this tile's rows have landed (the later tiles' may not) */
        } else {
            if (tt != t0) { /* the first tile was issued before the queries */
                issue(tt, Kb);
                cp_async_commit();
            }
            cp_async_wait<0>();
        }
        __syncthreads();
        const uint32_t Ks = kb0 + 2u * (uint32_t)(buf * TK * LD);
        {
            /* two chains of products per key tile (even and odd k steps; W % 16 == 0), then
               their sum */
            float sc[NKT][4], s2[NKT][4];
#pragma unroll
            for (int u = 0; u < NKT; u++)
#pragma unroll
                for (int i = 0; i < 4; i++) sc[u][i] = s2[u][i] = 0.0f;
            const uint32_t kb = Ks + kb_off;
#pragma unroll
            for (int kk = 0; kk < W; kk += 32) {
                uint32_t a0, a1, a2, a3, c0, c1, c2, c3;
                ldsm_x4<false>(qa + 2 * kk, a0, a1, a2, a3);
                if (kk + 16 < W) {
                    ldsm_x4<false>(qa + 2 * (kk + 16), c0, c1, c2, c3);
#pragma unroll
                    for (int u = 0; u < NKT; u++) {
                        uint32_t b0, b1, b2, b3;
                        ldsm_x4<false>(kb + 2 * (u * 8 * LD + kk), b0, b1, b2, b3);
                        mma_bf16(sc[u], a0, a1, a2, a3, b0, b1);
                        mma_bf16(s2[u], c0, c1, c2, c3, b2, b3);
                    }
                } else {
#pragma unroll
                    for (int u = 0; u < NKT; u++) {
                        uint32_t b0, b1;
                        ldsm_x2(kb + 2 * (u * 8 * LD + kk), b0, b1);
                        mma_bf16(sc[u], a0, a1, a2, a3, b0, b1);
                    }
                }
            }
#pragma unroll
            for (int u = 0; u < NKT; u++) {
#pragma unroll
                for (int i = 0; i < 4; i++) sc[u][i] += s2[u][i];
                float *sr = Ss + (sm_ + g) * SLD + sn + 8 * u + 2 * t;
                sr[0] = sc[u][0], sr[1] = sc[u][1], sr[8 * SLD] = sc[u][2], sr[8 * SLD + 1] = sc[u][3];
            }
        }
        __syncthreads();
        { /* head hh, lane j: positions j + 8 i (the original lanes j + 8 i; with TK = 64 also
             32 + j + 8 i, their second positions) */
            const int hh = 4 * warp + hq;
            const float *srow = Ss + hh * SLD + hj;
            float s[4], s_2[4], top = -INFINITY;
#pragma unroll
            for (int i = 0; i < 4; i++) {
                s[i] = tt + hj + 8 * i < t1 ? __fmul_rn(srow[8 * i], sl2) : -INFINITY;
                top = fmaxf(top, s[i]);
                if constexpr (NKT == 2) {
                    s_2[i] = tt + 32 + hj + 8 * i < t1 ? __fmul_rn(srow[32 + 8 * i], sl2) : -INFINITY;
                    top = fmaxf(top, s_2[i]);
                }
            }
#pragma unroll
            for (int o = 4; o > 0; o >>= 1) top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, o));
            const float mn = fmaxf(m, top); /* finite: the tile has a valid row */
            float v[4];
            __nv_bfloat16 *prow = Ps + hh * PLD + hj;
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const float pr = tt + hj + 8 * i < t1 ? exp2f(s[i] - mn) : 0.0f;
                prow[8 * i] = __float2bfloat16_rn(pr);
                v[i] = pr;
                if constexpr (NKT == 2) {
                    const float pr2 = tt + 32 + hj + 8 * i < t1 ? exp2f(s_2[i] - mn) : 0.0f;
                    prow[32 + 8 * i] = __float2bfloat16_rn(pr2);
                    v[i] = __fadd_rn(pr, pr2);
                }
            }
            /* warp_sum's tree: lanes L and L ^ 16, then ^ 8 (in the lane), then ^ 4, 2, 1 */
            float sum = __fadd_rn(__fadd_rn(v[0], v[2]), __fadd_rn(v[1], v[3]));
#pragma unroll
            for (int o = 4; o > 0; o >>= 1) sum = __fadd_rn(sum, __shfl_xor_sync(0xffffffffu, sum, o));
            const float alpha = exp2f(m - mn);
            l = fmaf(l, alpha, sum);
            m = mn;
            if (hj == 0) al[hh] = alpha;
        }
        __syncthreads();
        {
            const float a0 = al[om + g], a1 = al[om + g + 8];
            if (__any_sync(0xffffffffu, a0 != 1.0f || a1 != 1.0f)) /* x * 1 is x: skipped */
#pragma unroll
                for (int j = 0; j < 16; j++) acc[j][0] *= a0, acc[j][1] *= a0, acc[j][2] *= a1, acc[j][3] *= a1;
#pragma unroll
            for (int kb = 0; kb < TK; kb += 16) {
                uint32_t a0r, a1r, a2r, a3r;
                ldsm_x4<false>(pa + 2 * kb, a0r, a1r, a2r, a3r);
                const uint32_t vb = Ks + 2u * (uint32_t)(kb * LD) + vb_off;
#pragma unroll
                for (int j = 0; j < 16; j += 2) { /* R % 16 == 0: n tiles come in pairs */
                    if (on + 8 * j >= R) break;
                    uint32_t b0, b1, b2, b3;
                    ldsm_x4<true>(vb + 16 * j, b0, b1, b2, b3);
                    mma_bf16(acc[j], a0r, a1r, a2r, a3r, b0, b1);
                    mma_bf16(acc[j + 1], a0r, a1r, a2r, a3r, b2, b3);
                }
            }
        }
        __syncthreads(); /* S, P, alpha and this K buffer are rewritten next */
    }

    /* the block's nh output rows are one run of part_o: through shared memory (the
       queries' and the tiles' buffers: 32 rows of R + 4 floats fit in the queries' and one
       tile's), then stored in whole 16-byte pieces, a warp's stores whole lines — the
       accumulators' own pieces are 8 bytes of a row each, 32 rows apart.  The barrier:
       a split with entries has passed the loop's last one since its reads of the buffers,
       one without entries stages nothing; this one keeps the staging below independent of
       which of the paths above ran (racecheck found the hazard when the queries' staging
       still ran in splits without entries) */
    const int64_t base = (qi * p.nsplit + split) * p.H + h0;
    const int OLD = R + 4;
    float *Os = reinterpret_cast<float *>(dsm);
    __syncthreads();
#pragma unroll
    for (int j = 0; j < 16; j++) {
        const int c = on + 8 * j + 2 * t;
        if (c >= R) break;
        *reinterpret_cast<float2 *>(Os + (om + g) * OLD + c) = make_float2(acc[j][0], acc[j][1]);
        *reinterpret_cast<float2 *>(Os + (om + g + 8) * OLD + c) = make_float2(acc[j][2], acc[j][3]);
    }
    if (4 * warp + hq < nh && hj == 0) {
        const int64_t hh = base + 4 * warp + hq;
        p.part_ml[hh * 2] = m * 0.6931471805599453f; /* the merge's natural units */
        p.part_ml[hh * 2 + 1] = l;
    }
    __syncthreads();
    const uint32_t r4 = (uint32_t)(R / 4), n4 = (uint32_t)nh * r4;
    float4 *dst = reinterpret_cast<float4 *>(p.part_o + base * R);
    for (uint32_t i = tid; i < n4; i += DT_THREADS) {
        const uint32_t r = i / r4;
        dst[i] = *reinterpret_cast<const float4 *>(Os + r * OLD + (i - r * r4) * 4);
    }
}

typedef void (*dt_fn)(cu_attn);

/* The instance for st tile buffers (1 .. 4; tiles of 64 rows: 1 .. 2, more do not fit an
   SM) and rows of MLA's 576 columns or any. */
template <int WC> static dt_fn dt_kernel_w(int st, int tk) {
    if (tk == 64) return st <= 1 ? k_attn_dec_tc<1, WC, 64> : k_attn_dec_tc<2, WC, 64>;
    return st <= 1   ? k_attn_dec_tc<1, WC, 32>
           : st == 2 ? k_attn_dec_tc<2, WC, 32>
           : st == 3 ? k_attn_dec_tc<3, WC, 32>
                     : k_attn_dec_tc<4, WC, 32>;
}
static dt_fn dt_kernel(const cu_attn *p, int st, int tk) {
    return p->R == 512 && p->rope == 64 ? dt_kernel_w<576>(st, tk) : dt_kernel_w<0>(st, tk);
}

/* Does the instance fit this device's shared memory (its attribute as dt_init set it)? */
static bool dt_fits(const cu_attn *p, int st, int tk) {
    return dt_smem(p->R + p->rope, st, tk) <= smem_room((const void *)dt_kernel(p, st, tk));
}

extern "C" bool cuk_attn_dec_tc_ok(const cu_attn *p) {
    const int64_t W = p->R + p->rope;
    if (!p->cache_bf16 || p->R % 16 || p->R > 512 || W % 16 || W > DT_MAXW || p->H < 1 ||
        (p->H + DT_HB - 1) / DT_HB > 65535 || p->n_q > 65535 || p->nsplit < 1 ||
        p->nsplit > ZCU_ATTN_MAX_SPLIT)
        return false;
    return dt_fits(p, 2, 32);
}

/* The splits (the merge follows in cuk_attn_absorbed). */
extern "C" cudaError_t cuk_attn_dec_tc(const cu_attn *p, cu_q q) {
    if (!cuk_attn_dec_tc_ok(p)) return cudaErrorInvalidValue;
    const unsigned gy = (unsigned)((p->H + DT_HB - 1) / DT_HB);
    const dim3 grid((unsigned)attn_grid_x(p, gy), gy, (unsigned)p->n_q);
    /* more blocks than SMs: one tile buffer, so two blocks fit an SM (H200, 32k: 117 -> 129
       tok/s); fewer: DT_ST_FEW buffers, the next tile in flight (4k: 174.5 vs 172.4 with
       one; H100, 32k, 132 splits: three buffers 0.99x of two, four 0.98x).
       ZMLX_CUDA_DEC_STAGES=1..4 (a measuring knob) chooses.  Tiles of 64 rows where the
       cache's capacity gives every split at least two of them (ZMLX_CUDA_DEC_TILE=32|64). */
    int dev = 0, sms = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
        (void)cudaGetLastError();
    const int64_t blocks = p->nsplit * grid.y * grid.z; /* the splits' */
    int st = (int)cu_knob("ZMLX_CUDA_DEC_STAGES", blocks > sms ? 1 : DT_ST_FEW);
    st = st < 1 ? 1 : st > 4 ? 4 : st;
    int tk = (int)cu_knob("ZMLX_CUDA_DEC_TILE", p->cap > 0 && p->cap / p->nsplit >= 128 ? 64 : 32) == 64 ? 64 : 32;
    if (tk == 64 && st > 2) st = 2;
    while (st > 1 && !dt_fits(p, st, tk)) st--; /* what this device's shared memory holds */
    if (tk == 64 && !dt_fits(p, st, tk)) tk = 32;
    return launch(q, grid, dim3(DT_THREADS), dt_smem(p->R + p->rope, st, tk), dt_kernel(p, st, tk), *p);
}

static cudaError_t dt_init(int optin) {
    cudaError_t err = cudaSuccess;
    for (int tk = 32; tk <= 64; tk += 32)
        for (int st = 1; st <= (tk == 64 ? 2 : 4) && err == cudaSuccess; st++) { /* as much as each asks, within the opt-in */
            const size_t want = dt_smem(DT_MAXW, st, tk);
            const int bytes = want < (size_t)optin ? (int)want : optin;
            const cudaFuncAttribute at = cudaFuncAttributeMaxDynamicSharedMemorySize;
            err = cudaFuncSetAttribute(dt_kernel_w<0>(st, tk), at, bytes);
            if (err == cudaSuccess) err = cudaFuncSetAttribute(dt_kernel_w<576>(st, tk), at, bytes);
        }
    return err;
}
