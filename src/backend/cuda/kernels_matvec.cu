/*
 * kernels_matvec.cu — the decode products (one token): bandwidth-bound matrix-vector
 * kernels over every weight layout (dot.cuh), one warp per output row (one to four rows
 * per warp in flight), the activation staged once per block in shared memory.
 *
 *   cuk_matvec    up to four jobs per launch (blocks dealt out job by job): plain,
 *                 per-head, routed-expert, SwiGLU pairs, residual add; the activation
 *                 optionally RMS-normalised on load (residual_norm) and the experts
 *                 optionally chosen in the block's prologue from the router logits
 *                 (moe_mlp)
 *   cuk_glu_router  the router's logits in the first blocks of the routed experts'
 *                 SwiGLU launch, whose routing warps wait for them (moe_mlp with a bf16
 *                 router beside quantized experts: one launch boundary fewer)
 *   cuk_combine   the K routed down projections (+ the shared one) streamed into the
 *                 route-ordered weighted sum and the residual (downproj_combine,
 *                 moe_combine)
 *   cuk_matvec_t  y = W^T x over a row range (absorbed MLA's W_UK^T) with q_pe's rope,
 *                 optionally with the MLA epilogue in extra blocks (glm47_rope)
 *
 * Schedule.  A warp computes `opw` outputs at a time (a batch: their rows' loads in
 * flight together).  When a launch has more batches than the GPU holds warps at once,
 * it is cut into as many blocks as are resident (each a contiguous run of batches,
 * dealt to its warps in turn), and a warp asks L2 for its next batch's rows before it
 * computes the current one: every block is resident from the start, and its prologue
 * (staging, normalising and quantizing x, routing) is paid once per block, not once per
 * handful of rows.  ZMLX_CUDA_MV_LOOP=0 restores one batch per warp (for measuring).
 * Which warp computes an output never changes its arithmetic.
 *
 * Before waiting for the previous kernel (PDL), a block asks L2 for the weight rows of
 * its first batch whenever they do not depend on the route, and puts the norm's weights
 * in shared memory.  After the wait the prologue is one pass (dot.cuh's stage_load /
 * stage_store: each thread stages whole units of x from its registers; a warp that
 * stages units of a normalised row sums its squares itself, so no barrier comes before
 * the store) beside the route (warp 0).
 */
#include "backend/cuda/dot.cuh"
#include "backend/cuda/prep.cuh"
#include "backend/cuda/route.cuh"

#include <stdlib.h>

enum { MV_WARPS = 8, MV_THREADS = MV_WARPS * 32 };
#define MV_PREFETCH_BLOCKS 264 /* two per multiprocessor of an H100 */

#define MV_SMEM_MAX (160 * 1024)

typedef struct mv_batch {
    cu_mv job[ZCU_MV_JOBS];
    int64_t first[ZCU_MV_JOBS + 1]; /* first block of each job */
    int64_t nbat[ZCU_MV_JOBS];      /* batches of the job: ceil(outputs / opw) */
    int32_t opw[ZCU_MV_JOBS];       /* outputs per batch: 1, 2 or 4 (SwiGLU: 1 or 2) */
    int n;
    bool stage1;                    /* the one-pass prologue (ZMLX_CUDA_STAGE=0: off) */
} mv_batch;

/* Staged activation row of output group g (rows g_lo .. of the block). */
struct stage_set {
    float *base;
    int64_t sf;   /* floats per staged row (stage_floats) */
    int64_t cols;
    int64_t g_lo;
    bool shared;  /* xs == 0: one row for every group */
};

__device__ __forceinline__ xstage stage_of(const stage_set &ss, int64_t g) {
    const int64_t i = ss.shared ? 0 : g - ss.g_lo;
    return xstage_at(ss.base + i * ss.sf, ss.cols);
}

/* Group and row in the group of output o (32-bit: outputs < 2^31, checked at launch). */
__device__ __forceinline__ void out_pos(const cu_mv &p, int64_t o, int64_t *g, int64_t *rr) {
    if (p.groups == 1) {
        *g = 0;
        *rr = o;
        return;
    }
    const uint32_t q = (uint32_t)o / (uint32_t)p.rpg;
    *g = q;
    *rr = (int64_t)((uint32_t)o - q * (uint32_t)p.rpg);
}

/* Row of the matrix that output (g, rr) reads. */
__device__ __forceinline__ int64_t out_row(const cu_mv &p, int64_t g, int64_t rr) {
    const int64_t gm = p.gmod == 1 ? 0 : (int64_t)((uint32_t)g % (uint32_t)p.gmod);
    return p.row0 + gm * p.grs + rr;
}

/* The warp's OPW outputs o .. o + OPW (those below o_hi) of job p. */
template <int K, bool FAST, int OPW>
__device__ __forceinline__ void mv_outputs(const cu_mv &p, const stage_set &ss, const int *sidx,
                                           int64_t o, int64_t o_hi) {
    const bool glu = p.epi == CU_EPI_SWIGLU;
    /* rows in flight: plain, the OPW rows (two when OPW = 1, the second unused);
       SwiGLU (OPW <= 2), gate and up of each output */
    constexpr int NR = OPW == 4 ? 4 : 2 * OPW;
    rowp r[NR];
    bool valid[NR], live[NR]; /* live: the row is read (not another GPU's expert) */
    xstage xs[NR];
#pragma unroll
    for (int k = 0; k < NR; k++) {
        const int oi = glu ? k / 2 : k;
        const int64_t oo = o + oi;
        valid[k] = oi < OPW && oo < o_hi;
        int64_t g = 0, rr = 0;
        if (valid[k]) out_pos(p, oo, &g, &rr);
        int64_t e = !valid[k] ? 0 : p.routed ? sidx[g] : p.idx ? p.idx[g] : 0;
        live[k] = valid[k];
        if (p.ne > 0 && (p.routed || p.idx)) { /* expert slice: local id, or none here */
            e -= p.e0;
            if (e < 0 || e >= p.ne) live[k] = false, e = 0;
        }
        const int64_t row = out_row(p, g, rr);
        r[k] = row_of(glu && (k & 1) ? p.up : p.w, e, row);
        xs[k] = stage_of(ss, g);
    }
    float out[NR]; /* +0.0 where not live */
    warp_dots_s<K, NR, FAST>(r, live, xs, p.w.cols, p.w.group, p.w.sdt, out);
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int k = 0; k < NR; k++) {
        const int oi = glu ? k / 2 : k;
        if (glu && (k & 1)) continue;
        if (lane != oi || !valid[k]) continue;
        int64_t g, rr;
        out_pos(p, o + oi, &g, &rr);
        float *y = p.y + g * p.ys + rr;
        if (glu) *y = silu_mul(out[k], out[k + 1 < NR ? k + 1 : k]);
        else if (p.epi == CU_EPI_ADD) *y = __fadd_rn(*y, out[k]);
        else *y = out[k];
    }
}

/* The warp's batches: outputs o, o + obw, ... (OPW each) below o_hi; while one computes,
   the next one's rows go to L2 (plain jobs: consecutive rows of one matrix; the lanes
   share the data's lines, four of them take the first and last line of the scales and
   biases: mv_prefetch over the warp per batch measured 2% slower at context 16). */
template <int K, bool FAST, int OPW>
__device__ __forceinline__ void mv_batches(const cu_mv &p, const stage_set &ss, const int *sidx, int64_t o,
                                           int64_t o_hi, int64_t obw) {
    const bool plain = !p.routed && !p.idx;
    for (; o < o_hi; o += obw) {
        if (plain && o + obw < o_hi) {
            const int64_t on = o + obw;
            const int64_t n = o_hi - on < OPW ? o_hi - on : OPW;
            int64_t g, rr;
            out_pos(p, on, &g, &rr);
            const int64_t nr = p.rpg - rr < n ? p.rpg - rr : n; /* rows of on's group */
            const cuw *ws[2] = {&p.w, &p.up};
            const int lane = threadIdx.x & 31;
            for (int i = 0; i < (p.epi == CU_EPI_SWIGLU ? 2 : 1); i++) {
                const rowp rp = row_of(*ws[i], 0, out_row(p, g, rr));
                for (int64_t off = (int64_t)lane * 128; off < nr * ws[i]->ld; off += 32 * 128)
                    prefetch_line(rp.d + off);
                if (ws[i]->scales && lane < 4) { /* first and last line of scales, biases */
                    const int64_t sb = nr * (ws[i]->cols >> lg2(ws[i]->group)) * sdt_size(ws[i]->sdt);
                    const char *base = static_cast<const char *>((lane & 2) ? rp.b : rp.s);
                    if (base) prefetch_line(base + ((lane & 1) ? sb - 1 : 0));
                }
            }
        }
        mv_outputs<K, FAST, OPW>(p, ss, sidx, o, o_hi);
    }
}

/* Ask L2 for n rows of matrix e of w from `row` on: data, scales, biases (the block's
   threads spread over the lines). */
__device__ __forceinline__ void prefetch_rows(const cuw &w, int64_t e, int64_t row, int64_t n) {
    const rowp rp = row_of(w, e, row);
    prefetch_l2(rp.d, n * w.ld);
    if (w.scales) {
        const int64_t sb = n * (w.cols >> lg2(w.group)) * sdt_size(w.sdt);
        prefetch_l2(rp.s, sb);
        if (w.biases) prefetch_l2(rp.b, sb);
    }
}

/* Ask L2 for the weight rows of outputs [o_lo, o_hi) of group g_lo (not routed). */
__device__ __forceinline__ void mv_prefetch(const cu_mv &p, int64_t o_lo, int64_t o_hi) {
    int64_t g, r0;
    out_pos(p, o_lo, &g, &r0);
    int64_t r1 = o_hi - g * p.rpg;
    if (r1 > p.rpg) r1 = p.rpg;
    const int64_t row = out_row(p, g, r0), n = r1 - r0;
    prefetch_rows(p.w, 0, row, n);
    if (p.epi == CU_EPI_SWIGLU) prefetch_rows(p.up, 0, row, n);
}

template <int K, bool FAST>
__global__ void __launch_bounds__(MV_THREADS, 2) k_matvec(const __grid_constant__ mv_batch b) {
    extern __shared__ __align__(16) float sm[];
    __shared__ int sidx[ZCU_ROUTE_MAX_K];
    __shared__ float red[2];
    pdl_launch();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t blk = blockIdx.x;
    int j = 0;
    while (j + 1 < b.n && b.first[j + 1] <= blk) j++;
    /* constant indices keep the job in the parameter bank */
    const cu_mv &p = j == 0 ? b.job[0] : j == 1 ? b.job[1] : j == 2 ? b.job[2] : b.job[3];
    const int opw = j == 0 ? b.opw[0] : j == 1 ? b.opw[1] : j == 2 ? b.opw[2] : b.opw[3];
    const int64_t W = j == 0 ? b.nbat[0] : j == 1 ? b.nbat[1] : j == 2 ? b.nbat[2] : b.nbat[3];
    const int64_t obw = (int64_t)MV_WARPS * opw; /* outputs of one batch of each warp */
    const int64_t B = b.first[j + 1] - b.first[j], bj = blk - b.first[j], total = p.groups * p.rpg;
    const int64_t o_lo = bj * W / B * opw, o_end = (bj + 1) * W / B * opw; /* batches bj*W/B .. */
    const int64_t o_hi = o_end < total ? o_end : total;
    /* blocks of the first wave ask L2 for their first batch's rows before the wait (later
       ones would only duplicate their own loads; every block asking for up to 64 KB of its
       rows measured the same, H100 2026-11-26) */
    if (!p.routed && !p.idx && blk < MV_PREFETCH_BLOCKS)
        mv_prefetch(p, o_lo, o_lo + obw < o_hi ? o_lo + obw : o_hi);
    /* the prologue's parts run side by side: warp 0 routes (moe_mlp), the threads from
       warp 2 on stage x's units (norm on load: each such warp also sums x's squares) */
    float *stg = sm;
    if (p.routed) {
        const int G = p.route.cfg.n_group > 1 ? p.route.cfg.n_group : 1;
        stg = sm + ((route_smem(p.route.cfg.n_experts, G) + 15) & ~(size_t)15) / 4;
    }
    stage_set ss;
    ss.base = stg;
    ss.sf = stage_floats(p.w.cols, FAST);
    ss.cols = p.w.cols;
    ss.shared = p.xs == 0;
    int64_t g_hi, rr_;
    out_pos(p, o_lo, &ss.g_lo, &rr_);
    if (ss.shared) g_hi = ss.g_lo;
    else out_pos(p, o_hi - 1, &g_hi, &rr_);
    const int64_t nu = p.w.cols / 32, tot = (g_hi - ss.g_lo + 1) * nu;
    const float *xb = p.x + ss.g_lo * p.xs;
    /* one pass (stage_load / stage_store), unless ZMLX_CUDA_STAGE=0 (the three passes
       before, for measuring) or a normalised row has more units than the block threads */
    const bool one = b.stage1 && (!p.norm || tot <= MV_THREADS);
    const int64_t tt = (threadIdx.x + MV_THREADS - 64) % MV_THREADS; /* task of this thread */
    if (one && p.norm) stage_norm(p.norm, nu, tt, stg); /* constants: before the wait */
    pdl_wait();

    float4 xv[8];
    if (one && p.norm) stage_load(xb, p.xs, nu, tt, tot, xv);
    if (p.routed && warp == 0) { /* this token's experts, as cuk_route chooses them */
        const int *chosen;
        const float *wsel;
        warp_route(p.route.cfg, p.route.logits, p.route.bias, sm, &chosen, &wsel);
        if (lane < p.route.cfg.k) {
            sidx[lane] = chosen[lane];
            if (blk == b.first[j]) {
                if (p.route.idx) p.route.idx[lane] = chosen[lane];
                if (p.route.w) p.route.w[lane] = wsel[lane];
            }
        }
    }
    if (p.norm && !one && warp == (p.routed ? 1 : 0)) {
        const float sq = warp_sumsq(p.x, p.w.cols);
        if (lane == 0) red[0] = sq;
    }
    if (one) {
        if (p.norm) {
            /* each warp that stages units sums the squares itself (the same order): no
               barrier before the store */
            const bool mine = tt - lane < tot;
            const float inv = mine ? rms_inv(warp_sumsq(p.x, p.w.cols), p.w.cols, p.eps) : 0.0f;
            stage_store<K, FAST>(xv, tt, tot, nu, stg, ss.sf, true, inv, p.w.group);
        } else {
            stage_rows<K, FAST>(xb, p.xs, nu, tot, tt, stg, ss.sf, p.w.group);
        }
        __syncthreads();
    } else {
        stage_raw_n(xb, p.xs, (int)(g_hi - ss.g_lo + 1), p.w.cols, stg, ss.sf);
        __syncthreads();
        const float inv = p.norm ? rms_inv(red[0], p.w.cols, p.eps) : 0.0f;
        for (int64_t g = ss.g_lo; g <= g_hi; g++) {
            stage_finish<fmt<K>::affine>(p.w.cols, p.norm, inv, stg + (g - ss.g_lo) * ss.sf);
            if constexpr (FAST) stage_q8<K>(p.w.cols, p.w.group, stg + (g - ss.g_lo) * ss.sf);
        }
    }

    const int64_t o = o_lo + (int64_t)warp * opw;
    if (opw == 1) mv_batches<K, FAST, 1>(p, ss, sidx, o, o_hi, obw);
    else if (opw == 2) mv_batches<K, FAST, 2>(p, ss, sidx, o, o_hi, obw);
    else mv_batches<K, FAST, 4>(p, ss, sidx, o, o_hi, obw);
}

#ifndef ZMLX_CUDA_SQ_LEAN
#define ZMLX_CUDA_SQ_LEAN 32 /* the lean kernels' sum of squares: loads in flight per lane */
#endif
enum { SQ_LEAN = ZMLX_CUDA_SQ_LEAN };

/*
 * The lean launches (k_mv_lean): one or two jobs of one layout, each plain (x shared by
 * every output) or per head (x row per group, W_UV), optionally normalised on load (x
 * shared), with the store or residual-add epilogue — q_a + kv_a, q_b, W_UV, o, the bf16
 * router and lm_head.  k_matvec's arithmetic (stage_norm / stage_load / stage_store,
 * warp_sumsq's order, warp_dots: the same bits) in a kernel of their own, with the flags
 * as template constants and no job table, routes or 64-bit divisions: the prologue and
 * the bookkeeping around the products are most of a small launch's time (instructions
 * per warp x cycles per instruction: ncu on an H100,
 * benchmarks/device-2026-11-26zr-h100-hotspots/).  ZMLX_CUDA_MV_LEAN=0: k_matvec for
 * these too (for measuring).
 */
typedef struct mv_lean_args {
    cu_mv job[2];
    int32_t opb[2]; /* outputs per block of each job (a multiple of MV_WARPS * OPW) */
    int32_t first1; /* the first block of job 1 (grid size when there is one job) */
    int32_t route_reg; /* k_mv_glu: the route in registers (route.cuh's warp_route_reg; 2: picks on keys) */
} mv_lean_args;

/* k_mv_glu's arguments: its jobs, and with ROUTER the router's logits in its first rb
   blocks (r: a one-job lean launch, bf16 rows normalised on load, a row a warp), which
   the routed blocks wait for (warp_route_reg's poll: the logits start as ZCU_LOGIT_UNSET
   and the combine sets them back, cu_combine.reset). */
typedef struct glu_args {
    mv_lean_args a;
    mv_lean_args r;
    int32_t rb;
    int32_t rfirst; /* the router's first block (0, or after the experts' blocks) */
    float cert_c;   /* the certified route (cu_mv_route.part): a logit's bound / route.bound[e] */
} glu_args;

/* Floats of a routed k_mv_glu block's shared memory before its staged x: warp_route's, or
   with the certified route each warp's sums of the partials (W rows of E + 1), 16-byte
   aligned. */
__host__ __device__ __forceinline__ int64_t glu_route_floats(int E, int W, bool cert) {
    const int64_t a = (int64_t)route_smem(E, 1), b = cert ? (int64_t)W * (E + 1) * 4 : 0;
    return (((a > b ? a : b) + 15) & ~(int64_t)15) / 4;
}

/* The end of a lean norm-on-load prologue (one row, a unit per task): the staging warps
   (tasks ts of this lane's warp below nu) sum x's squares, warp_sumsq's order with
   SQ_LEAN loads in flight, and store their units normalised (v: stage_load's values). */
template <int K, bool FAST>
__device__ __forceinline__ void lean_norm_store(const cu_mv &p, float4 (&v)[8], int ts, int nu, float *sm,
                                                int64_t sf) {
    if (ts - (int)(threadIdx.x & 31) >= nu) return;
    const float inv = rms_inv(warp_sumsq_f<SQ_LEAN>(p.x, p.w.cols), p.w.cols, p.eps);
    stage_store<K, FAST, true>(v, ts, nu, nu, sm, sf, true, inv, p.w.group);
}

/* Group and row of output o of a per-head job (32-bit). */
__device__ __forceinline__ void lean_pos(const cu_mv &p, int o, int *g, int *rr) {
    const uint32_t q = (uint32_t)o / (uint32_t)p.rpg;
    *g = (int)q;
    *rr = (int)((uint32_t)o - q * (uint32_t)p.rpg);
}

/* Block blk's job of a lean launch, its index among the job's blocks and its outputs
   [o_lo, o_hi). */
__device__ __forceinline__ const cu_mv &lean_job(const mv_lean_args &a, int blk, int *bj, int *o_lo, int *o_hi) {
    const int j = blk >= a.first1 ? 1 : 0, opb = j ? a.opb[1] : a.opb[0];
    const cu_mv &p = j ? a.job[1] : a.job[0];
    const int total = (int)(p.groups * p.rpg);
    *bj = blk - (j ? a.first1 : 0);
    *o_lo = *bj * opb;
    *o_hi = total - *o_lo < opb ? total : *o_lo + opb;
    return p;
}

/* The router's partials (cu_rpart) of a block's nr outputs [o_lo, o_lo + nr), one a warp,
   E * nr <= 2 * blockDim (rp_blocks): rp_load, before the wait, takes the router's weights
   of elements tid and tid + blockDim (expert t / nr, output t % nr: the rows read along
   their columns) and the norm's into registers; rp_sums, after the products, puts their
   products wg[j * E + e] = w[e][o_lo + j] * g[o_lo + j] and each warp's output y (lane 0)
   in shared memory and has thread e < E sum wg * y over the block's outputs in order,
   thread E their squares — the sums the certified route adds up (route.cuh's
   warp_route_cert bounds their distance from the exact logits). */
__device__ __forceinline__ void rp_load(const cu_mv &p, int o_lo, int nr, uint32_t (&w)[2], float (&g)[2]) {
    const int E = (int)p.rp.w.rows;
    const uint8_t *wd = static_cast<const uint8_t *>(p.rp.w.data);
#pragma unroll
    for (int k = 0; k < 2; k++) {
        const int t = (int)threadIdx.x + k * (int)blockDim.x, e = t / nr, j = t - e * nr;
        w[k] = 0u, g[k] = 0.0f;
        if (t < nr * E) {
            w[k] = reinterpret_cast<const uint16_t *>(wd + (int64_t)e * p.rp.w.ld)[o_lo + j];
            g[k] = p.rp.g[o_lo + j];
        }
    }
}

__device__ __forceinline__ void rp_sums(const cu_mv &p, int bj, int nr, float y, const uint32_t (&w)[2],
                                        const float (&g)[2], float *wg) {
    const int E = (int)p.rp.w.rows, tid = (int)threadIdx.x;
    float *ys = wg + nr * E;
#pragma unroll
    for (int k = 0; k < 2; k++) {
        const int t = tid + k * (int)blockDim.x, e = t / nr, j = t - e * nr;
        if (t < nr * E) wg[j * E + e] = __fmul_rn(__uint_as_float(w[k] << 16), g[k]);
    }
    if ((tid & 31) == 0 && (tid >> 5) < nr) ys[tid >> 5] = y;
    __syncthreads();
    if (tid > E) return;
    float s = 0.0f;
    if (tid < E) {
        for (int j = 0; j < nr; j++) s = __fadd_rn(s, __fmul_rn(wg[j * E + tid], ys[j]));
    } else {
        for (int j = 0; j < nr; j++) s = __fadd_rn(s, __fmul_rn(ys[j], ys[j]));
    }
    p.rp.out[(int64_t)bj * (E + 1) + tid] = s;
}

/* NJ > 0 (affine 4-bit fast with bf16 scales, or bf16 rows exact; the block's outputs at
   most one batch a warp, at most NJ units of a row a lane): the warp's batch is loaded
   into registers before the PDL wait (dot.cuh's wd_load; model constants) and summed after
   the staging (wd_sum: warp_dots' arithmetic, the same bits), so the rows' trip to memory
   overlaps the previous launch instead of following the staging (lean_early_go).
   PIPE (NJ 0, one row a batch, rows that wd_fits: the deep instance's loop): each warp's
   next row is loaded (wd_load) while it sums the current one (wd_sum: the same bits), two
   rows of each warp in flight instead of one. */
template <int K, bool FAST, int OPW, bool NORM, bool HEADS, int NJ = 0, bool PIPE = false, bool RP = false>
__device__ __forceinline__ void mv_lean_run(const mv_lean_args &a, int blk) {
    static_assert(!PIPE || (NJ == 0 && OPW == 1 && !HEADS), "mv_lean_run PIPE: the one-row loop");
    static_assert(!RP || (NJ > 0 && OPW == 1 && !HEADS && !NORM), "mv_lean_run RP: one plain row a warp, rows early");
    extern __shared__ __align__(16) float sm[];
    pdl_launch();
    int bj, o_lo, o_hi;
    const cu_mv &p = lean_job(a, blk, &bj, &o_lo, &o_hi);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, tid = threadIdx.x;
    const int nu = (int)(p.w.cols / 32);
    const int64_t sf = stage_floats(p.w.cols, FAST);
    int g_lo = 0, g_hi = 0, r_lo = o_lo;
    if constexpr (HEADS) {
        int r_;
        lean_pos(p, o_lo, &g_lo, &r_lo);
        lean_pos(p, o_hi - 1, &g_hi, &r_);
    }
    /* the rows of batch o (valid: o + k < o_hi), their groups and rows */
    rowp r[OPW];
    bool valid[OPW];
    int gk[OPW], rk[OPW];
    auto batch = [&](int o) {
#pragma unroll
        for (int k = 0; k < OPW; k++) {
            valid[k] = o + k < o_hi;
            gk[k] = HEADS ? g_lo : 0, rk[k] = o + k;
            if (HEADS && valid[k]) lean_pos(p, o + k, &gk[k], &rk[k]);
            const int64_t row = p.row0 + (int64_t)(HEADS ? gk[k] % p.gmod : 0) * p.grs + rk[k];
            r[k] = row_of(p.w, 0, row);
        }
    };
    /* lane k stores output k of the batch (RP: lane 0 keeps it) */
    [[maybe_unused]] float ylast = 0.0f;
    auto store = [&](const float (&out)[OPW]) {
#pragma unroll
        for (int k = 0; k < OPW; k++) {
            if (lane != k || !valid[k]) continue;
            float *y = p.y + (int64_t)gk[k] * p.ys + rk[k];
            const float v = p.epi == CU_EPI_ADD ? __fadd_rn(*y, out[k]) : out[k];
            *y = v;
            if constexpr (RP) ylast = v;
        }
    };
    wd_raw<K, OPW, NJ ? NJ : 1> raw;
    if constexpr (NJ > 0) {
        batch(o_lo + warp * OPW);
        wd_load<K, OPW, NJ, CU_SDT_BF16>(r, valid, lane_units(nu, lane), p.w.group, raw);
        /* this block's slice of the next launch's constants, to L2 (cu_mv.l2).  The branch
           also keeps the rows' loads above before the wait: without it ptxas (CUDA 13)
           sank every one of o_proj's below griddepcontrol.wait (its SASS: 0 of 33 loads
           before ACQBULK, 24 with the branch; +1.7% a token at context 16 on an H200,
           cuda-log.md; tools/cuda_sass_early.sh checks it on a device) */
        if (p.l2) {
            const int64_t sl = ((p.l2_bytes + gridDim.x - 1) / gridDim.x + 127) & ~(int64_t)127;
            const int64_t b0 = (int64_t)blk * sl, b1 = b0 + sl < p.l2_bytes ? b0 + sl : p.l2_bytes;
            if (b0 < b1) prefetch_l2(static_cast<const char *>(p.l2) + b0, b1 - b0);
        }
    } else { /* the block's first batch of rows to L2 before the wait (model constants) */
        int n = o_hi - o_lo < MV_WARPS * OPW ? o_hi - o_lo : MV_WARPS * OPW;
        if (HEADS && n > p.rpg - r_lo) n = (int)p.rpg - r_lo;
        prefetch_rows(p.w, 0, p.row0 + (int64_t)(HEADS ? g_lo % p.gmod : 0) * p.grs + r_lo, n);
    }
    if constexpr (NORM) stage_norm(p.norm, nu, tid, sm); /* constants: before the wait */
    [[maybe_unused]] uint32_t rpw[2];
    [[maybe_unused]] float rpg[2];
    if constexpr (RP) rp_load(p, o_lo, o_hi - o_lo, rpw, rpg); /* constants: before the wait */
    pdl_wait();
    if constexpr (NORM) { /* one row, nu <= MV_THREADS units: a unit per thread */
        float4 v[8];
        stage_load(p.x, 0, nu, tid, nu, v);
        lean_norm_store<K, FAST>(p, v, tid, nu, sm, sf);
    } else {
        stage_rows32<K, FAST>(p.x + (int64_t)g_lo * p.xs, p.xs, nu, HEADS ? g_hi - g_lo + 1 : 1, sm, sf, p.w.group);
    }
    __syncthreads();
    if constexpr (NJ > 0) {
        xstage xs[OPW];
#pragma unroll
        for (int k = 0; k < OPW; k++) xs[k] = xstage_at(sm + (HEADS ? gk[k] - g_lo : 0) * sf, p.w.cols);
        float out[OPW];
        wd_sum<K, OPW, NJ>(raw, valid, xs, lane_units(nu, lane), out);
        store(out);
        if constexpr (RP) rp_sums(p, bj, o_hi - o_lo, ylast, rpw, rpg, sm + sf);
    } else if constexpr (PIPE) {
        const int nj = lane_units(nu, lane);
        const xstage xs[1] = {xstage_at(sm, p.w.cols)};
        int o = o_lo + warp;
        rowp rc[1] = {row_of(p.w, 0, p.row0 + (o < o_hi ? o : o_lo))};
        bool vc[1] = {o < o_hi};
        wd_raw<K, 1, WD_NJ> cur, nxt;
        wd_load<K, 1, WD_NJ, CU_SDT_BF16>(rc, vc, nj, p.w.group, cur);
        for (; o < o_hi; o += MV_WARPS) {
            const int o2 = o + MV_WARPS;
            const rowp rn[1] = {row_of(p.w, 0, p.row0 + (o2 < o_hi ? o2 : o))};
            const bool vn[1] = {o2 < o_hi};
            wd_load<K, 1, WD_NJ, CU_SDT_BF16>(rn, vn, nj, p.w.group, nxt); /* in flight while we sum */
            float out[1];
            wd_sum<K, 1, WD_NJ>(cur, vc, xs, nj, out);
            valid[0] = true, gk[0] = 0, rk[0] = o; /* the store's row (o < o_hi here) */
            store(out);
            cur = nxt, vc[0] = vn[0];
        }
    } else {
        for (int o = o_lo + warp * OPW; o < o_hi; o += MV_WARPS * OPW) {
            batch(o);
            xstage xs[OPW];
#pragma unroll
            for (int k = 0; k < OPW; k++) xs[k] = xstage_at(sm + (HEADS ? gk[k] - g_lo : 0) * sf, p.w.cols);
            float out[OPW];
            warp_dots_s<K, OPW, FAST>(r, valid, xs, p.w.cols, p.w.group, p.w.sdt, out);
            store(out);
        }
    }
}

/* MINB: blocks a multiprocessor holds (4: the deep instances of large launches, 64
   registers, twice the warps to hide their loads' and sums' latency; mv_lean's deep).
   RP: with the router's partials (cu_rpart; o_proj, rp_go). */
template <int K, bool FAST, int OPW, bool NORM, bool HEADS, int NJ = 0, int MINB = 2, int W = MV_WARPS,
          bool PIPE = false, bool RP = false>
__global__ void __launch_bounds__(W * 32, MINB * MV_WARPS / W) k_mv_lean(const __grid_constant__ mv_lean_args a) {
    mv_lean_run<K, FAST, OPW, NORM, HEADS, NJ, PIPE, RP>(a, (int)blockIdx.x);
}

/* Can rows of w go through dot.cuh's wd_load / wd_sum (bf16 scales, at most WD_NJ units
   a lane), alike (same columns and group) to `like` when given? */
static bool wd_fits(const cuw &w, const cuw *like = nullptr) {
    return w.cols <= WD_NJ * 32 * 32 && w.sdt == CU_SDT_BF16 &&
           (!like || (w.cols == like->cols && w.group == like->group));
}

/*
 * The lean SwiGLU launch (k_mv_glu): one or two SwiGLU jobs normalised on load, the first
 * optionally routed (moe_mlp: the routed experts' gate/up beside the shared expert's,
 * the dense FFN's gate/up) — k_matvec's route (warp 0, warp_route), one-pass staging and
 * SwiGLU products, the same bits, in a kernel of its own.  PIPE (one output a batch, rows
 * of at most 2,048 columns, bf16 scales): each warp's next gate and up rows are loaded
 * (dot.cuh's wd_load) while it sums the current ones (wd_sum: the same bits).
 */
template <int K, int OPW, bool PIPE, bool ROUTER = false, int W = MV_WARPS>
__global__ void __launch_bounds__(W * 32, 2 * MV_WARPS / W) k_mv_glu(const __grid_constant__ glu_args ga) {
    extern __shared__ __align__(16) float sm[];
    __shared__ int sidx[ZCU_ROUTE_MAX_K];
    const mv_lean_args &a = ga.a;
    const cu_mv_route &rt = a.job[0].route;
    const bool cert = ROUTER && rt.part != nullptr; /* the certified route (route.cuh) */
    int blk = (int)blockIdx.x;
    if constexpr (ROUTER) { /* blocks [rfirst, rfirst + rb): the router's logits, k_mv_lean's bf16 rows-early path */
        if (blk >= ga.rfirst && blk < ga.rfirst + ga.rb) {
            mv_lean_run<ZW_BF16, false, 1, true, false, 2>(ga.r, blk - ga.rfirst);
            /* with the certified route the routed blocks may not read the logits: the
               router's first block writes the exact route (as the routed block 0 would) */
            if (cert && blk == ga.rfirst && (threadIdx.x >> 5) == 0) {
                const int lane = threadIdx.x & 31, E = rt.cfg.n_experts;
                const float b0 = rt.bias && lane < E ? rt.bias[lane] : 0.0f;
                const float b1 = rt.bias && lane + 32 < E ? rt.bias[lane + 32] : 0.0f;
                int ce;
                float cw;
                warp_route_reg(rt.cfg, rt.logits, b0, b1, rt.bias != nullptr, true, a.route_reg > 1, &ce, &cw);
                if (lane < rt.cfg.k) {
                    if (rt.idx) rt.idx[lane] = ce;
                    if (rt.w) rt.w[lane] = cw;
                }
            }
            return;
        }
        if (blk >= ga.rfirst) blk -= ga.rb;
    }
    pdl_launch();
    int bj, o_lo, o_hi;
    const cu_mv &p = lean_job(a, blk, &bj, &o_lo, &o_hi);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, tid = threadIdx.x;
    const int nu = (int)(p.w.cols / 32);
    const int64_t sf = stage_floats(p.w.cols, true);
    float *stg = sm;
    if (p.routed) stg = sm + glu_route_floats(p.route.cfg.n_experts, W, cert);
    [[maybe_unused]] float *ysm = stg + sf; /* yq: the block's outputs */
    if (!p.routed) { /* the block's first batch of gate and up rows to L2 (model constants) */
        const int n = o_hi - o_lo < W * OPW ? o_hi - o_lo : W * OPW;
        prefetch_rows(p.w, 0, p.row0 + o_lo, n);
        prefetch_rows(p.up, 0, p.row0 + o_lo, n);
    }
    /* warp 0 routes, the staging tasks start at warp 2 (k_matvec's split) */
    const int ts = (tid + W * 32 - 64) % (W * 32);
    stage_norm(p.norm, nu, ts, stg); /* constants: before the wait */
    const bool rreg = p.routed && a.route_reg;
    const bool rcert = cert && p.routed; /* this block routes on the partials (every warp) */
    const int E = p.route.cfg.n_experts;
    float rb0 = 0.0f, rb1 = 0.0f; /* the router's bias (a constant): before the wait */
    if (rreg && (warp == 0 || rcert) && p.route.bias) {
        if (lane < E) rb0 = p.route.bias[lane];
        if (lane + 32 < E) rb1 = p.route.bias[lane + 32];
    }
    float cb0 = 0.0f, cb1 = 0.0f; /* the certified route: the logits' bounds (constants) */
    if (rcert) {
        if (lane < E) cb0 = __fmul_rn(ga.cert_c, p.route.bound[lane]);
        if (lane + 32 < E) cb1 = __fmul_rn(ga.cert_c, p.route.bound[lane + 32]);
    }
    pdl_wait();
    float4 v[8];
    stage_load(p.x, 0, nu, ts, nu, v);
    if (rcert) { /* each warp sums its share of the previous launch's blocks' partials (blocks
                    warp, warp + W, ... in order), eight blocks' loads in flight at once */
        const float *pp = p.route.part;
        const int nb = p.route.nparts;
        float a0 = 0.0f, a1 = 0.0f, aq = 0.0f;
        constexpr int PB = 8;
        for (int b0 = warp; b0 < nb; b0 += PB * W) {
            float v0[PB], v1[PB], vq[PB];
#pragma unroll
            for (int i = 0; i < PB; i++) {
                const int b = b0 + i * W;
                const float *pb = pp + (int64_t)(b < nb ? b : 0) * (E + 1);
                v0[i] = b < nb && lane < E ? pb[lane] : 0.0f;
                v1[i] = b < nb && lane + 32 < E ? pb[lane + 32] : 0.0f;
                vq[i] = b < nb ? pb[E] : 0.0f;
            }
#pragma unroll
            for (int i = 0; i < PB; i++) a0 = __fadd_rn(a0, v0[i]), a1 = __fadd_rn(a1, v1[i]), aq = __fadd_rn(aq, vq[i]);
        }
        float *pw = sm + warp * (E + 1);
        if (lane < E) pw[lane] = a0;
        if (lane + 32 < E) pw[lane + 32] = a1;
        if (lane == 0) pw[E] = aq;
    } else if (p.routed && warp == 0) { /* this token's experts, as cuk_route chooses them */
        int ce;
        float cw;
        if (rreg) {
            warp_route_reg(p.route.cfg, p.route.logits, rb0, rb1, p.route.bias != nullptr, ROUTER, a.route_reg > 1,
                           &ce, &cw);
        } else {
            const int *chosen;
            const float *wsel;
            warp_route(p.route.cfg, p.route.logits, p.route.bias, sm, &chosen, &wsel);
            ce = lane < p.route.cfg.k ? chosen[lane] : 0;
            cw = lane < p.route.cfg.k ? wsel[lane] : 0.0f;
        }
        if (lane < p.route.cfg.k) {
            sidx[lane] = ce;
            if (bj == 0) {
                if (p.route.idx) p.route.idx[lane] = ce;
                if (p.route.w) p.route.w[lane] = cw;
            }
        }
    }
    lean_norm_store<K, true>(p, v, ts, nu, stg, sf);
    __syncthreads();
    int rte = -1; /* the certified route: lane n < k's pick n, in every warp */
    if (rcert) {
        float s0 = 0.0f, s1 = 0.0f, ss = 0.0f;
        for (int w = 0; w < W; w++) {
            const float *pw = sm + w * (E + 1);
            s0 = __fadd_rn(s0, lane < E ? pw[lane] : 0.0f);
            s1 = __fadd_rn(s1, lane + 32 < E ? pw[lane + 32] : 0.0f);
            ss = __fadd_rn(ss, pw[E]);
        }
        const float r = rms_inv(ss, p.w.cols, p.eps);
        const float l0 = __fmul_rn(r, s0), l1 = __fmul_rn(r, s1);
        const bool ok = warp_route_cert(p.route.cfg, l0, l1, cb0, cb1, rb0, rb1, p.route.bias != nullptr, &rte);
        if (!ok) { /* the exact logits, as without (the router's first block writes the route) */
            float cw;
            warp_route_reg(p.route.cfg, p.route.logits, rb0, rb1, p.route.bias != nullptr, true, a.route_reg > 1,
                           &rte, &cw);
        }
        if (p.route.stat && bj == 0 && warp == 0) { /* tests: how often, and how close the bound */
            if (lane == 0) atomicAdd(p.route.stat + (ok ? 0 : 1), 1);
            if (ok) {
                float x0, x1;
                do {
                    x0 = lane < E ? ld_relaxed_gpu(p.route.logits + lane) : 0.0f;
                    x1 = lane + 32 < E ? ld_relaxed_gpu(p.route.logits + lane + 32) : 0.0f;
                } while (!__all_sync(0xffffffffu, __float_as_uint(x0) != ZCU_LOGIT_UNSET &&
                                                      __float_as_uint(x1) != ZCU_LOGIT_UNSET));
                float q = 0.0f;
                if (lane < E) q = fmaxf(q, fabsf(l0 - x0) / cb0);
                if (lane + 32 < E) q = fmaxf(q, fabsf(l1 - x1) / cb1);
                q = warp_max(q);
                if (lane == 0) atomicMax(p.route.stat + 2, __float_as_int(q));
            }
        }
    }
    const xstage xs0 = xstage_at(stg, p.w.cols);
    constexpr int NR = 2 * OPW;
    if constexpr (PIPE) {
        static_assert(OPW == 1, "k_mv_glu PIPE: one output a batch");
        const int nj = lane_units(nu, lane);
        const xstage xs[2] = {xs0, xs0};
        /* output o's gate and up rows (valid: o < o_hi), its group g and row rr; a warp's
           next output is W further: within the group its rows are W rows on
           (pointer steps), past it the next group's (row_of) — no division per batch */
        auto rows_at = [&](int g, int rr, rowp (&r)[2]) {
            const int64_t e = !p.routed ? 0 : rcert ? __shfl_sync(0xffffffffu, rte, g) : sidx[g];
            r[0] = row_of(p.w, e, p.row0 + rr), r[1] = row_of(p.up, e, p.row0 + rr);
        };
        const int64_t sd0 = (int64_t)W * p.w.ld, sd1 = (int64_t)W * p.up.ld;
        /* scale rows: PIPE's rows have bf16 scales (wd_fits) */
        const int64_t ss0 = (int64_t)W * (p.w.cols >> lg2(p.w.group)) * sdt_size(CU_SDT_BF16);
        auto step = [&](const rowp &a, int64_t sd) {
            rowp b;
            b.d = a.d + sd;
            b.s = a.s ? static_cast<const uint8_t *>(a.s) + ss0 : nullptr;
            b.b = a.b ? static_cast<const uint8_t *>(a.b) + ss0 : nullptr;
            return b;
        };
        rowp r[2];
        bool valid[2];
        int o = o_lo + warp, g = 0, rr = o;
        if (o < o_hi && p.groups > 1) lean_pos(p, o, &g, &rr);
        valid[0] = valid[1] = o < o_hi;
        if (o < o_hi) rows_at(g, rr, r);
        wd_raw<K, 2, WD_NJ> cur, nxt;
        wd_load<K, 2, WD_NJ, CU_SDT_BF16>(r, valid, nj, p.w.group, cur);
        for (; o < o_hi; o += W) {
            rowp r2[2] = {r[0], r[1]};
            bool valid2[2];
            int g2 = g, rr2 = rr + W;
            valid2[0] = valid2[1] = o + W < o_hi;
            if (valid2[0]) {
                if (rr2 < p.rpg) {
                    r2[0] = step(r[0], sd0), r2[1] = step(r[1], sd1);
                } else {
                    while (rr2 >= p.rpg) rr2 -= (int)p.rpg, g2++;
                    rows_at(g2, rr2, r2);
                }
            }
            wd_load<K, 2, WD_NJ, CU_SDT_BF16>(r2, valid2, nj, p.w.group, nxt); /* in flight while we sum */
            float out[2];
            wd_sum<K, 2, WD_NJ>(cur, valid, xs, nj, out);
            if (lane == 0) {
                const float yv = silu_mul(out[0], out[1]);
                p.y[(int64_t)g * p.ys + rr] = yv;
                if (p.yq) ysm[o - o_lo] = yv; /* the block's outputs, for their int8 form below */
            }
            cur = nxt, valid[0] = valid2[0], valid[1] = valid2[1], g = g2, rr = rr2, r[0] = r2[0], r[1] = r2[1];
        }
        if (p.yq) { /* y's staged int8 form (k_combine's hq): the block's outputs are whole
                       groups of yq_group (yq_fits, mv_lean's step), quantized here once, as
                       every block of the combine would stage them (stage_store, a unit a thread) */
            __syncthreads(); /* the block's outputs in ysm */
            const int nur = (int)(p.rpg / 32), nub = (o_hi - o_lo) / 32;
            const int64_t sq = stage_floats(p.rpg, true);
            for (int t = tid; t - lane < nub; t += W * 32) {
                const bool on = t < nub;
                const int o = o_lo + (on ? t : 0) * 32, gq = (int)((uint32_t)o / (uint32_t)p.rpg);
                const int u = (o - gq * (int)p.rpg) / 32;
                const float4 *src = reinterpret_cast<const float4 *>(ysm + (on ? t : 0) * 32);
                float4 v[8];
#pragma unroll
                for (int i = 0; i < 8; i++) v[i] = on ? src[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                stage_store<K, true, true>(v, on ? u : nur, nur, nur, p.yq + (int64_t)gq * sq, sq, false, 0.0f,
                                           p.yq_group);
            }
        }
    } else {
        for (int o = o_lo + warp * OPW; o < o_hi; o += W * OPW) {
            rowp r[NR];
            bool valid[NR];
            xstage xs[NR];
            int gk[OPW], rk[OPW];
#pragma unroll
            for (int i = 0; i < OPW; i++) {
                gk[i] = 0, rk[i] = o + i;
                if (o + i < o_hi && p.groups > 1) lean_pos(p, o + i, &gk[i], &rk[i]);
                const int64_t e = o + i < o_hi && p.routed ? sidx[gk[i]] : 0;
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    valid[2 * i + h] = o + i < o_hi;
                    r[2 * i + h] = row_of(h ? p.up : p.w, e, p.row0 + rk[i]);
                    xs[2 * i + h] = xs0;
                }
            }
            float out[NR];
            warp_dots_s<K, NR, true>(r, valid, xs, p.w.cols, p.w.group, p.w.sdt, out);
#pragma unroll
            for (int i = 0; i < OPW; i++)
                if (lane == i && o + i < o_hi) p.y[(int64_t)gk[i] * p.ys + rk[i]] = silu_mul(out[2 * i], out[2 * i + 1]);
        }
    }
}

/* Can k_mv_glu run job p (k: its place in the launch)? */
static bool glu_ok(const cu_mv &p, int k) {
    return p.epi == CU_EPI_SWIGLU && p.norm && p.xs == 0 && !p.idx && p.ne == 0 && p.gmod == 1 &&
           p.w.cols / 32 <= MV_THREADS && p.groups >= 1 && p.groups * p.rpg < 0x40000000 &&
           (!p.routed || (k == 0 && p.route.cfg.n_group <= 1 && p.groups <= p.route.cfg.k)) &&
           (p.routed || p.groups == 1);
}

/* The lean form of job p: 0 none, else 1 + NORM + 2 HEADS (plain, norm, per head). */
static int lean_form(const cu_mv &p) {
    if (p.routed || p.idx || (p.epi != CU_EPI_STORE && p.epi != CU_EPI_ADD) || p.groups < 1 ||
        p.groups * p.rpg >= 0x40000000 || p.ne > 0)
        return 0;
    if (p.norm) return p.xs == 0 && p.groups == 1 && p.w.cols / 32 <= MV_THREADS ? 2 : 0;
    return p.xs == 0 && p.groups == 1 && p.gmod == 1 ? 1 : 3;
}

/* Shared memory of a lean job whose blocks cover opb outputs. */
static size_t lean_smem(const cu_mv &p, int64_t opb, bool fast) {
    int64_t span = lean_form(p) == 3 ? (opb + p.rpg - 2) / p.rpg + 1 : 1;
    if (span > p.groups) span = p.groups;
    return (size_t)span * (size_t)stage_floats(p.w.cols, fast) * sizeof(float);
}

template <int K, bool FAST, int OPW, bool NORM, bool HEADS, int NJ = 0, int W = MV_WARPS>
static cudaError_t lean_go(cu_q q, mv_lean_args a, unsigned blocks, size_t smem) {
    return launch(q, dim3(blocks), dim3(W * 32), smem, k_mv_lean<K, FAST, OPW, NORM, HEADS, NJ, 2, W>, a);
}

template <int K, bool FAST, int OPW, int NJ = 0, int W = MV_WARPS>
static cudaError_t lean_form_go(int form, cu_q q, const mv_lean_args &a, unsigned blocks, size_t smem) {
    if (form == 1) return lean_go<K, FAST, OPW, false, false, NJ, W>(q, a, blocks, smem);
    if (form == 2) return lean_go<K, FAST, OPW, true, false, NJ, W>(q, a, blocks, smem);
    if constexpr (W != MV_WARPS) return cudaErrorInvalidValue; /* per head: blocks of MV_WARPS */
    else return lean_go<K, FAST, OPW, false, true, NJ, W>(q, a, blocks, smem);
}

/* The rows-before-the-wait instances (k_mv_lean's NJ): one batch a warp, affine 4-bit
   fast or bf16 (the router: rows of 2,048, one warp each); nj: the most units of a row a
   lane holds, at most early_nj_max.  NJ_EARLY_MAX: o_proj's 5,120 columns. */
enum { NJ_EARLY_MAX = 8 };
static int early_nj_max(bool bf, int opw) {
    return bf ? 2 : opw == 4 ? 1 : NJ_EARLY_MAX;
}
/* wide: blocks of LEAN_WIDE warps (affine 4-bit, one x row), half the blocks staging x */
enum { LEAN_WIDE = 2 * MV_WARPS, GLU_WIDE = 2 * MV_WARPS };
static cudaError_t lean_early_go(int kind, int opw, int nj, int form, bool wide, cu_q q, const mv_lean_args &a,
                                 unsigned blocks, size_t smem) {
    constexpr int WW = LEAN_WIDE;
    if (kind == ZW_BF16) return lean_form_go<ZW_BF16, false, 1, 2>(form, q, a, blocks, smem);
    if (opw == 4 && nj <= 1)
        return wide ? lean_form_go<ZW_AFFINE4, true, 4, 1, WW>(form, q, a, blocks, smem)
                    : lean_form_go<ZW_AFFINE4, true, 4, 1>(form, q, a, blocks, smem);
    if (opw == 1 && nj <= 2)
        return wide ? lean_form_go<ZW_AFFINE4, true, 1, 2, WW>(form, q, a, blocks, smem)
                    : lean_form_go<ZW_AFFINE4, true, 1, 2>(form, q, a, blocks, smem);
    return wide ? lean_form_go<ZW_AFFINE4, true, 1, NJ_EARLY_MAX, WW>(form, q, a, blocks, smem)
                : lean_form_go<ZW_AFFINE4, true, 1, NJ_EARLY_MAX>(form, q, a, blocks, smem);
}

/* rp_go's instance and its shared memory: the staged x, then rp_sums' products of the
   block's LEAN_WIDE outputs and their outputs. */
static void (*rp_kernel(void))(mv_lean_args) {
    return k_mv_lean<ZW_AFFINE4, true, 1, false, false, NJ_EARLY_MAX, 2, LEAN_WIDE, false, true>;
}
static size_t rp_smem(const cu_mv &p) {
    return (size_t)(stage_floats(p.w.cols, true) + (int64_t)LEAN_WIDE * (p.rp.w.rows + 1)) * sizeof(float);
}

/* The deep instances (k_mv_lean's MINB 4): affine 4-bit fast, plain or normalised on
   load, one row a batch (two spill in the loop at 64 registers); pipe: the loop with
   each warp's next row in flight (mv_lean_run's PIPE; rows that wd_fits). */
enum { MV_DEEP_MINB = 4 };
template <bool NORM, bool PIPE>
static void (*deep_kernel(void))(mv_lean_args) {
    return k_mv_lean<ZW_AFFINE4, true, 1, NORM, false, 0, MV_DEEP_MINB, MV_WARPS, PIPE>;
}
static void (*deep_pick(bool norm, bool pipe))(mv_lean_args) {
    return norm ? (pipe ? deep_kernel<true, true>() : deep_kernel<true, false>())
                : (pipe ? deep_kernel<false, true>() : deep_kernel<false, false>());
}
static cudaError_t lean_deep_go(int form, bool pipe, cu_q q, const mv_lean_args &a, unsigned blocks, size_t smem) {
    return launch(q, dim3(blocks), dim3(MV_THREADS), smem, deep_pick(form == 2, pipe), a);
}

/* Blocks of the deep instance an SM holds with smem bytes of shared memory (0: unknown). */
static int deep_occupancy(bool norm, bool pipe, size_t smem) {
    int n = 0;
    const cudaError_t err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, deep_pick(norm, pipe), MV_THREADS, smem);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

template <int K, bool FAST>
static cudaError_t lean_opw_go(int opw, int form, cu_q q, const mv_lean_args &a, unsigned blocks, size_t smem) {
    if (opw == 1) return lean_form_go<K, FAST, 1>(form, q, a, blocks, smem);
    if (opw == 2) return lean_form_go<K, FAST, 2>(form, q, a, blocks, smem);
    return lean_form_go<K, FAST, 4>(form, q, a, blocks, smem);
}

template <int K, bool FAST>
static cudaError_t lean_attrs(int lim) {
    const cudaFuncAttribute at = cudaFuncAttributeMaxDynamicSharedMemorySize;
    cudaError_t err = cudaSuccess;
#define ZCU_LEAN_ATTR(OPW)                                                                              \
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_mv_lean<K, FAST, OPW, false, false>, at, lim); \
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_mv_lean<K, FAST, OPW, true, false>, at, lim);  \
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_mv_lean<K, FAST, OPW, false, true>, at, lim);
    ZCU_LEAN_ATTR(1)
    ZCU_LEAN_ATTR(2)
    ZCU_LEAN_ATTR(4)
#undef ZCU_LEAN_ATTR
    if constexpr (K == ZW_BF16 && !FAST) {
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_mv_lean<K, FAST, 1, false, false, 2>, at, lim);
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_mv_lean<K, FAST, 1, true, false, 2>, at, lim);
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_mv_lean<K, FAST, 1, false, true, 2>, at, lim);
    }
    if constexpr (K == ZW_AFFINE4 && FAST) {
#define ZCU_EARLY_ATTR(OPW, NJ)                                                                                   \
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_mv_lean<K, FAST, OPW, false, false, NJ>, at, lim);      \
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_mv_lean<K, FAST, OPW, true, false, NJ>, at, lim);       \
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_mv_lean<K, FAST, OPW, false, true, NJ>, at, lim);
        ZCU_EARLY_ATTR(4, 1)
        ZCU_EARLY_ATTR(1, 2)
        ZCU_EARLY_ATTR(1, NJ_EARLY_MAX)
#undef ZCU_EARLY_ATTR
        for (int k = 0; k < 4 && err == cudaSuccess; k++) err = cudaFuncSetAttribute(deep_pick(k & 1, k & 2), at, lim);
        if (err == cudaSuccess) err = cudaFuncSetAttribute(rp_kernel(), at, lim);
    }
    return err;
}

static bool mv_job_ok(const cu_mv &p) {
    const cuw &w = p.w;
    if (!cuk_kind_ok(w.kind) || w.cols % 32 || w.cols <= 0 || p.gmod < 1 || p.rpg < 1 || p.groups < 0)
        return false;
    if (p.epi == CU_EPI_SWIGLU && (!p.up.data || p.up.kind != w.kind || p.up.rows != w.rows ||
                                   p.up.cols != w.cols || p.up.group != w.group || p.up.sdt != w.sdt))
        return false;
    if (p.norm && p.xs != 0) return false;
    if (p.routed && (p.route.cfg.k < 1 || p.route.cfg.k > ZCU_ROUTE_MAX_K || p.groups > p.route.cfg.k))
        return false;
    if (((uintptr_t)p.x & 15) || p.xs % 4 || ((uintptr_t)p.norm & 15)) return false;
    return true;
}

/* Outputs per batch: one, unless the launch is large (then two or four rows in flight per
   warp; SwiGLU at most two outputs, four rows), or its rows are short: under 2048 columns
   a row is less than two units of 32 per lane, so a warp takes two or four rows at once
   (q_b's 768 columns, W_UV's 512) while that still leaves 64 batches per warp slot. */
static int mv_opw(const cu_mv &p) {
    const int64_t outs = p.groups * p.rpg;
    const int max = p.epi == CU_EPI_SWIGLU ? 2 : 4;
    /* ZMLX_CUDA_MV_ROWCOLS (default 2048): the row length under which warps take several
       rows; for measuring other thresholds */
    int64_t short_cols = cu_knob("ZMLX_CUDA_MV_ROWCOLS", 2048);
    if (short_cols == 0) short_cols = 2048;
    int opw = 1;
    while (opw < max && outs / ((int64_t)MV_WARPS * opw * 2) >= 512) opw *= 2;
    while (opw < max && p.w.cols * opw < short_cols && outs / ((int64_t)MV_WARPS * opw * 2) >= 64) opw *= 2;
    return opw;
}

/* Shared memory of a job whose blocks cover `opb` outputs: the staged rows of the groups
   they touch (+ the route's scratch). */
static size_t mv_need(const cu_mv &p, int64_t opb, bool fast) {
    int64_t span = p.xs == 0 ? 1 : (opb + p.rpg - 2) / p.rpg + 1;
    if (span > p.groups) span = p.groups > 0 ? p.groups : 1;
    size_t need = (size_t)span * (size_t)stage_floats(p.w.cols, fast) * sizeof(float);
    if (p.routed) {
        const int G = p.route.cfg.n_group > 1 ? p.route.cfg.n_group : 1;
        need += (route_smem(p.route.cfg.n_experts, G) + 15) & ~(size_t)15;
    }
    return need;
}

/* ZMLX_CUDA_MV_LOOP=0: one batch per warp (every launch as many blocks as batches), the
   schedule before warps looped; for measuring the difference. */
static bool mv_loop(void) {
    return cu_knob("ZMLX_CUDA_MV_LOOP", 1) != 0;
}

template <int K>
static int mv_occupancy(bool fast, size_t smem) {
    int n = 0;
    cudaError_t err;
    if constexpr (q8k<K>::ok)
        if (fast) {
            err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, k_matvec<K, true>, MV_THREADS, smem);
            return err == cudaSuccess ? n : 0;
        }
    err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, k_matvec<K, false>, MV_THREADS, smem);
    return err == cudaSuccess ? n : 0;
}

/* Multiprocessors of the current device (0: unknown). */
static int sm_count(void) {
    return cu_dev_attr(cudaDevAttrMultiProcessorCount);
}

/* Blocks of k_matvec the GPU holds at once (0: unknown). */
static int64_t mv_resident(int kind, bool fast, size_t smem) {
    const int sms = sm_count();
    int per = 0;
    if (sms == 0) return 0;
    ZCU_DISPATCH(kind, per = mv_occupancy<K>(fast, smem));
    (void)cudaGetLastError();
    return (int64_t)sms * per;
}

/* The launch of k_matvec<K, fast> (the fast kernel only exists for q8k layouts). */
template <int K>
static cudaError_t mv_go(cu_q q, unsigned blocks, size_t smem, const mv_batch &b, bool fast) {
    if constexpr (q8k<K>::ok)
        if (fast) return launch(q, dim3(blocks), dim3(MV_THREADS), smem, k_matvec<K, true>, b);
    return launch(q, dim3(blocks), dim3(MV_THREADS), smem, k_matvec<K, false>, b);
}

/*
 * The certified route's bound on |estimate - exact| of a logit, as a multiple of
 * route.bound[e] = sqrt(d) ||w_e * g||_2, which bounds r * sum_i |w_ei g_i h_i| (r the
 * norm's 1 / rms: r ||h|| <= sqrt(d), then Cauchy-Schwarz).  Both logits are sums over
 * that vector's terms, so each is within gamma_n = n u / (1 - n u) of that sum (u = 2^-24)
 * for a summation tree whose paths pass n roundings, plus the error of its 1 / rms, half
 * that of its sum of squares and four roundings (rms_inv):
 *   exact (the router's launch, dot.cuh): 10 in a unit (unit_dot), one per unit of a lane
 *     (d / 1,024), 5 across the warp, 2 in the normalised x; its squares d / 32 + 5
 *     (warp_sumsq_f);
 *   estimate: 16 outputs a block (rp_sums, one product each and the norm weights' product),
 *     nparts / W blocks a warp, W warps, the product by r; its squares likewise.
 * The factor 4 leaves room for what this count leaves out (gamma's denominator).
 */
static float cert_c(int64_t d, int32_t nparts, int W) {
    const double u = 1.0 / 16777216.0;
    const double per = (double)((nparts + W - 1) / W);
    const double dot = 10.0 + (double)(d + 1023) / 1024.0 + 5.0 + 2.0; /* the exact logit */
    const double est = (double)LEAN_WIDE + 2.0 + per + (double)W + 1.0; /* the estimate */
    const double sq = ((double)d / 32.0 + 5.0 + (double)LEAN_WIDE + per + (double)W) / 2.0 + 8.0;
    return (float)(4.0 * u * (dot + est + sq));
}

/* Can router (the bf16 router's logits, normalised on load, a row a warp) run in the
   first blocks of the routed experts' SwiGLU launch (jobs: the routed experts, then
   optionally the shared expert), which then waits for its logits instead of a launch
   boundary?  Only where the experts' launch is k_mv_glu's pipelined loop with the route in
   registers and the router's launch would be k_mv_lean's rows-early bf16 instance. */
static bool router_in_ok(const cu_mv &r, const cu_mv *jobs, int n, cu_q q) {
    if (n < 1 || n > 2 || !q.fast || jobs[0].w.kind != ZW_AFFINE4 || !jobs[0].routed ||
        !route_reg_ok(jobs[0].route.cfg) || jobs[0].route.logits != r.y || !mv_loop())
        return false;
    const cu_mv_route &rt = jobs[0].route;
    if (rt.part && (!rt.bound || rt.nparts < 1 || cu_knob("ZMLX_CUDA_ROUTE_REG", 1) == 0 ||
                    cu_knob("ZMLX_CUDA_ROUTE_KEYS", 1) == 0))
        return false;
    for (int k = 0; k < n; k++)
        if (!mv_job_ok(jobs[k]) || !glu_ok(jobs[k], k) || jobs[k].w.kind != ZW_AFFINE4 || !wd_fits(jobs[k].w) ||
            !wd_fits(jobs[k].up, &jobs[k].w))
            return false;
    const char *knobs[] = {"ZMLX_CUDA_MV_LEAN", "ZMLX_CUDA_STAGE", "ZMLX_CUDA_GLU_PIPE", "ZMLX_CUDA_ROUTE_REG",
                           "ZMLX_CUDA_MV_EARLY", "ZMLX_CUDA_ROUTER_IN"};
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
        if (cu_knob(knobs[i], 1) == 0) return false;
    return mv_job_ok(r) && r.w.kind == ZW_BF16 && lean_form(r) == 2 && r.epi == CU_EPI_STORE &&
           r.w.cols <= 2 * 32 * 32 && mv_opw(r) == 1 && r.w.rows == jobs[0].route.cfg.n_experts &&
           r.groups * r.rpg <= (int64_t)MV_WARPS * 32;
}

/* Can the router-in launch also write job p's SwiGLU outputs' staged int8 form (cu_mv.yq)?
   Rows of whole groups, float4-aligned outputs. */
static bool yq_fits(const cu_mv &p) {
    const int G = p.yq_group;
    return p.yq && G >= 32 && G <= 32 * 32 && (G & (G - 1)) == 0 && p.rpg % G == 0 && p.ys % 4 == 0 &&
           (p.groups == 1 || p.ys >= p.rpg) && ((uintptr_t)p.y & 15) == 0 && ((uintptr_t)p.yq & 15) == 0;
}

extern "C" bool cuk_glu_router_yq_ok(const cu_mv *router, const cu_mv *jobs, int n, cu_q q) {
    if (!router || !jobs || !router_in_ok(*router, jobs, n, q) || cu_knob("ZMLX_CUDA_HQ", 1) == 0) return false;
    for (int k = 0; k < n; k++)
        if (!yq_fits(jobs[k])) return false;
    return true;
}

/* The router's partials in a plain affine 4-bit launch (cu_mv.rp: o_proj): k_mv_lean's
   rows-early instance in blocks of LEAN_WIDE warps, one output a warp, with rp_load /
   rp_sums (the same products, the same bits as without).  Its blocks, or 0 where p does
   not fit it. */
static int32_t rp_blocks(const cu_mv &p, cu_q q) {
    const cu_rpart &r = p.rp;
    if (!q.fast || !mv_loop() || !mv_job_ok(p) || p.w.kind != ZW_AFFINE4 || p.w.sdt != CU_SDT_BF16 ||
        lean_form(p) != 1 || mv_opw(p) != 1 || (p.w.cols / 32 + 31) / 32 > NJ_EARLY_MAX)
        return 0;
    const int64_t rows = p.groups * p.rpg;
    if (!r.out || !r.g || !r.w.data || r.w.kind != ZW_BF16 || r.w.cols != rows || r.w.rows < 1 ||
        r.w.rows > 2 * 32 || r.w.ld < 2 * rows) /* rp_load: E * LEAN_WIDE <= 2 * LEAN_WIDE * 32 */
        return 0;
    const char *knobs[] = {"ZMLX_CUDA_MV_LEAN", "ZMLX_CUDA_STAGE", "ZMLX_CUDA_MV_EARLY"};
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
        if (cu_knob(knobs[i], 1) == 0) return 0;
    if (rp_smem(p) > MV_SMEM_MAX) return 0;
    return (int32_t)((rows + LEAN_WIDE - 1) / LEAN_WIDE);
}

static cudaError_t rp_go(const cu_mv &p, cu_q q) {
    const int32_t blocks = rp_blocks(p, q);
    if (blocks <= 0) return cudaErrorInvalidValue;
    mv_lean_args a = {};
    a.job[0] = p;
    a.opb[0] = LEAN_WIDE;
    a.first1 = blocks;
    return launch(q, dim3((unsigned)blocks), dim3(LEAN_WIDE * 32), rp_smem(p), rp_kernel(), a);
}

extern "C" int32_t cuk_rpart_blocks(const cu_mv *p, cu_q q) {
    return p ? rp_blocks(*p, q) : 0;
}

extern "C" int64_t cuk_rpart_floats(int64_t rows, int32_t E) {
    return (rows + LEAN_WIDE - 1) / LEAN_WIDE * ((int64_t)E + 1);
}

/* Launch jobs[0..n) (n <= 2, one layout) on k_mv_lean / k_mv_glu if they fit them (*done),
   else leave them to k_matvec; with router (router_in_ok), its logits in k_mv_glu's first
   blocks. */
static cudaError_t mv_lean(const cu_mv *jobs, int n, cu_q q, bool fast, bool *done, const cu_mv *router = nullptr) {
    *done = false;
    if (n == 1 && jobs[0].rp.out) { /* o_proj with the router's partials: that instance or an error */
        const cudaError_t err = rp_go(jobs[0], q);
        *done = err == cudaSuccess;
        return err;
    }
    const int kind = jobs[0].w.kind;
    const bool q8 = fast && (kind == ZW_AFFINE4 || kind == ZW_AFFINE8);
    if ((!q8 && kind != ZW_BF16) || !mv_loop() || cu_knob("ZMLX_CUDA_MV_LEAN", 1) == 0 ||
        cu_knob("ZMLX_CUDA_STAGE", 1) == 0)
        return cudaSuccess;
    const bool glu = q8 && glu_ok(jobs[0], 0) && (n < 2 || glu_ok(jobs[1], 1));
    /* SwiGLU rows that fit the pipelined loop (one output a batch, its next rows in flight)
       take it whatever the launch's size (ZMLX_CUDA_GLU_PIPE=0: not, for measuring) */
    bool pipe = glu && cu_knob("ZMLX_CUDA_GLU_PIPE", 1) != 0;
    for (int k = 0; k < n && pipe; k++) pipe = wd_fits(jobs[k].w) && wd_fits(jobs[k].up, &jobs[k].w);
    const int form = glu ? 4 : lean_form(jobs[0]);
    int opw = pipe ? 1 : mv_opw(jobs[0]);
    for (int k = 0; k < n; k++)
        if ((!glu && lean_form(jobs[k]) != form) || (!pipe && mv_opw(jobs[k]) != opw) || form == 0)
            return cudaSuccess;
    size_t smem = 0;
    /* the router-in experts' launch (affine 4-bit, the pipelined loop) in blocks of GLU_WIDE
       warps: half the blocks read and stage x and route (ZMLX_CUDA_GLU_WARPS=8: blocks of
       MV_WARPS, for measuring) */
    const bool gwide = router && pipe && kind == ZW_AFFINE4 && cu_knob("ZMLX_CUDA_GLU_WARPS", GLU_WIDE) == GLU_WIDE;
    const int gw = gwide ? (int)GLU_WIDE : (int)MV_WARPS;
    /* router: its blocks first, a batch of gw rows each */
    const int32_t rb = router ? (int32_t)((router->groups * router->rpg + gw - 1) / gw) : 0;
    const size_t s1 = (size_t)stage_floats(jobs[0].w.cols, q8) * sizeof(float);
    int64_t res = mv_resident(kind, q8, s1) * MV_WARPS / gw - rb;
    /* a large plain or normalised launch of one affine 4-bit job, 8 or more batches a
       warp (the lm_head) in the deep instance, twice the blocks an SM (ZMLX_CUDA_MV_DEEP=0:
       not, for measuring); each row's sum as before */
    const int64_t outs0 = jobs[0].groups * jobs[0].rpg;
    bool deep = !glu && !router && n == 1 && q8 && kind == ZW_AFFINE4 && (form == 1 || form == 2) && res > 0 &&
                outs0 / (res * MV_WARPS * opw) >= 8 && cu_knob("ZMLX_CUDA_MV_DEEP", 1) != 0;
    /* the deep loop with each warp's next row in flight (ZMLX_CUDA_MV_DEEP_PIPE=0: one row
       at a time, for measuring) */
    const bool dpipe = deep && wd_fits(jobs[0].w) && cu_knob("ZMLX_CUDA_MV_DEEP_PIPE", 1) != 0;
    if (deep) { /* where the deep instance does not fit four blocks an SM: the usual one */
        const int per = deep_occupancy(form == 2, dpipe, s1), sms = sm_count();
        deep = per >= MV_DEEP_MINB && sms > 0;
        if (deep) opw = 1, res = (int64_t)sms * per; /* one row a batch */
    }
    int64_t blocks1[2], total1 = 0, B[2];
    int64_t step = (int64_t)gw * opw;
    /* yq (the router-in launch only): each block's outputs whole groups of yq_group */
    for (int k = 0; k < n; k++) {
        if (!jobs[k].yq) continue;
        if (!router || !yq_fits(jobs[k])) return cudaErrorInvalidValue;
        if (jobs[k].yq_group > step) step = jobs[k].yq_group; /* both powers of two */
    }
    mv_lean_args a = {};
    for (int k = 0; k < n; k++) {
        blocks1[k] = (jobs[k].groups * jobs[k].rpg + step - 1) / step;
        total1 += blocks1[k];
    }
    for (int k = 0; k < n; k++) {
        const int64_t outs = jobs[k].groups * jobs[k].rpg;
        B[k] = blocks1[k];
        if (res > 0 && total1 > res) B[k] = res * blocks1[k] / total1 > 0 ? res * blocks1[k] / total1 : 1;
        const int64_t opb = ((outs + B[k] - 1) / B[k] + step - 1) / step * step;
        B[k] = (outs + opb - 1) / opb;
        const size_t need = glu ? (size_t)stage_floats(jobs[k].w.cols, true) * sizeof(float) +
                                      (jobs[k].routed ? (size_t)glu_route_floats(jobs[k].route.cfg.n_experts, gw,
                                                                                 router && jobs[k].route.part) * 4
                                                      : 0) +
                                      (jobs[k].yq ? (size_t)opb * sizeof(float) : 0) /* yq: the block's outputs */
                                : lean_smem(jobs[k], opb, q8);
        if (need > MV_SMEM_MAX) return cudaSuccess;
        if (need > smem) smem = need;
        a.job[k] = jobs[k];
        a.opb[k] = (int32_t)opb;
    }
    a.first1 = (int32_t)B[0];
    /* ZMLX_CUDA_ROUTE_REG=0: warp_route's shared-memory form in k_mv_glu; ZMLX_CUDA_ROUTE_KEYS=0:
       warp_route_reg's picks by shuffles instead of redux.sync on keys (for measuring) */
    a.route_reg = glu && jobs[0].routed && route_reg_ok(jobs[0].route.cfg) && cu_knob("ZMLX_CUDA_ROUTE_REG", 1) != 0;
    if (a.route_reg && cu_knob("ZMLX_CUDA_ROUTE_KEYS", 1) != 0) a.route_reg = 2;
    glu_args ga = {a, {}, rb, 0, 0.0f};
    const unsigned blocks = (unsigned)(B[0] + (n > 1 ? B[1] : 0));
    if (router) {
        ga.r.job[0] = *router;
        ga.r.opb[0] = gw;
        ga.r.first1 = rb;
        const size_t need = lean_smem(*router, gw, false);
        if (need > smem) smem = need;
        /* ZMLX_CUDA_ROUTER_LAST=1: the router's blocks after the experts' (for measuring) */
        if (cu_knob("ZMLX_CUDA_ROUTER_LAST", 0) != 0) ga.rfirst = (int32_t)blocks;
        if (jobs[0].route.part) ga.cert_c = cert_c(jobs[0].w.cols, jobs[0].route.nparts, gw);
    }
    if (blocks == 0) {
        *done = true;
        return cudaSuccess;
    }
    /* rows before the wait (k_mv_lean's NJ): every block one batch a warp;
       ZMLX_CUDA_MV_EARLY=0 turns it off (for measuring) */
    int early_nj = 0;
    const bool bf = kind == ZW_BF16 && !q8;
    if (!glu && ((q8 && kind == ZW_AFFINE4 && (opw == 1 || opw == 4)) || (bf && opw == 1)) &&
        cu_knob("ZMLX_CUDA_MV_EARLY", 1) != 0) {
        early_nj = 1;
        for (int k = 0; k < n && early_nj > 0; k++) {
            const int nj = (int)((jobs[k].w.cols / 32 + 31) / 32);
            if (a.opb[k] > (int64_t)MV_WARPS * opw || (!bf && jobs[k].w.sdt != CU_SDT_BF16) ||
                nj > early_nj_max(bf, opw))
                early_nj = 0;
            else if (nj > early_nj)
                early_nj = nj;
        }
    }
    /* the affine 4-bit rows-before-the-wait launches of one x row (q_a + kv_a, q_b, o) in
       blocks of LEAN_WIDE warps, one batch a warp still: half the blocks read and stage x
       (H100: 1.018x a token at context 16, 1.008x at 4k; per head, W_UV at the splits'
       contexts lost 1.1%: blocks of MV_WARPS; ZMLX_CUDA_LEAN_WARPS=8: all, for measuring) */
    bool wide = false;
    unsigned nb = blocks;
    if (early_nj > 0 && q8 && kind == ZW_AFFINE4 && (form == 1 || form == 2) &&
        cu_knob("ZMLX_CUDA_LEAN_WARPS", LEAN_WIDE) == LEAN_WIDE) {
        const int64_t wstep = (int64_t)LEAN_WIDE * opw;
        size_t wsmem = 0;
        int64_t wb[2] = {0, 0};
        for (int k = 0; k < n; k++) {
            wb[k] = (jobs[k].groups * jobs[k].rpg + wstep - 1) / wstep;
            const size_t need = lean_smem(jobs[k], wstep, q8);
            if (need > wsmem) wsmem = need;
        }
        if (wsmem <= MV_SMEM_MAX) {
            wide = true;
            for (int k = 0; k < n; k++) a.opb[k] = (int32_t)wstep;
            a.first1 = (int32_t)wb[0];
            nb = (unsigned)(wb[0] + (n > 1 ? wb[1] : 0));
            smem = wsmem;
        }
    }
    cudaError_t err;
    if (router) /* router_in_ok: affine 4-bit, the pipelined loop */
        err = !(glu && pipe && kind == ZW_AFFINE4 && a.route_reg) ? cudaErrorInvalidValue
              : gwide ? launch(q, dim3(blocks + (unsigned)rb), dim3(GLU_WIDE * 32), smem,
                               k_mv_glu<ZW_AFFINE4, 1, true, true, GLU_WIDE>, ga)
                      : launch(q, dim3(blocks + (unsigned)rb), dim3(MV_THREADS), smem, k_mv_glu<ZW_AFFINE4, 1, true, true>, ga);
    else if (glu && kind == ZW_AFFINE4)
        err = pipe     ? launch(q, dim3(blocks), dim3(MV_THREADS), smem, k_mv_glu<ZW_AFFINE4, 1, true>, ga)
              : opw == 1 ? launch(q, dim3(blocks), dim3(MV_THREADS), smem, k_mv_glu<ZW_AFFINE4, 1, false>, ga)
                       : launch(q, dim3(blocks), dim3(MV_THREADS), smem, k_mv_glu<ZW_AFFINE4, 2, false>, ga);
    else if (glu)
        err = pipe     ? launch(q, dim3(blocks), dim3(MV_THREADS), smem, k_mv_glu<ZW_AFFINE8, 1, true>, ga)
              : opw == 1 ? launch(q, dim3(blocks), dim3(MV_THREADS), smem, k_mv_glu<ZW_AFFINE8, 1, false>, ga)
                       : launch(q, dim3(blocks), dim3(MV_THREADS), smem, k_mv_glu<ZW_AFFINE8, 2, false>, ga);
    else if (deep) err = lean_deep_go(form, dpipe, q, a, blocks, smem);
    else if (early_nj > 0) err = lean_early_go(kind, opw, early_nj, form, wide, q, a, nb, smem);
    else if (kind == ZW_AFFINE4 && q8) err = lean_opw_go<ZW_AFFINE4, true>(opw, form, q, a, blocks, smem);
    else if (kind == ZW_AFFINE8 && q8) err = lean_opw_go<ZW_AFFINE8, true>(opw, form, q, a, blocks, smem);
    else err = lean_opw_go<ZW_BF16, false>(opw, form, q, a, blocks, smem);
    *done = err == cudaSuccess;
    return err;
}

extern "C" int64_t cuk_stage_floats(int64_t cols) {
    return stage_floats(cols, true);
}

extern "C" bool cuk_glu_router_ok(const cu_mv *router, const cu_mv *jobs, int n, cu_q q) {
    return router && jobs && router_in_ok(*router, jobs, n, q);
}

extern "C" cudaError_t cuk_glu_router(const cu_mv *router, const cu_mv *jobs, int n, cu_q q) {
    if (!cuk_glu_router_ok(router, jobs, n, q)) return cudaErrorInvalidValue;
    bool done = false;
    const cudaError_t err = mv_lean(jobs, n, q, true, &done, router);
    return err == cudaSuccess && !done ? cudaErrorInvalidValue : err;
}

extern "C" cudaError_t cuk_matvec(const cu_mv *jobs, int n_jobs, cu_q q) {
    if (n_jobs < 0 || n_jobs > ZCU_MV_JOBS) return cudaErrorInvalidValue;
    for (int i = 0; i < n_jobs; i++)
        if (!mv_job_ok(jobs[i]) || jobs[i].groups * jobs[i].rpg > 0x7fffffff || (jobs[i].rp.out && n_jobs != 1))
            return cudaErrorInvalidValue;
    /* one launch per run of jobs with the same kind */
    for (int i = 0; i < n_jobs;) {
        const bool fast = q.fast && cuk_q8_kind(jobs[i].w.kind);
        int jn = 1; /* the run of jobs of this kind */
        while (i + jn < n_jobs && jobs[i + jn].w.kind == jobs[i].w.kind) jn++;
        if (jn <= 2) {
            bool done = false;
            cudaError_t err = mv_lean(jobs + i, jn, q, fast, &done);
            if (err != cudaSuccess) return err;
            if (done) {
                i += jn;
                continue;
            }
        }
        mv_batch b = {};
        int j = i;
        while (j < n_jobs && jobs[j].w.kind == jobs[i].w.kind) b.job[b.n++] = jobs[j++];
        /* blocks resident at once (0: unknown, or ZMLX_CUDA_MV_LOOP=0: one batch per warp,
           as many blocks as that takes) */
        int64_t res = 0;
        if (mv_loop()) {
            size_t s1 = 0;
            for (int k = 0; k < b.n; k++) {
                const size_t need = mv_need(b.job[k], MV_WARPS, fast);
                if (need > s1) s1 = need;
            }
            res = mv_resident(jobs[i].w.kind, fast, s1);
        }
        b.stage1 = cu_knob("ZMLX_CUDA_STAGE", 1) != 0;
        int64_t total1 = 0, blocks1[ZCU_MV_JOBS]; /* blocks of one batch per warp */
        for (int k = 0; k < b.n; k++) {
            const cu_mv &p = b.job[k];
            b.opw[k] = mv_opw(p);
            b.nbat[k] = (p.groups * p.rpg + b.opw[k] - 1) / b.opw[k];
            blocks1[k] = (b.nbat[k] + MV_WARPS - 1) / MV_WARPS;
            total1 += blocks1[k];
        }
        size_t smem = 0;
        for (int k = 0; k < b.n; k++) {
            const cu_mv &p = b.job[k];
            /* the job's share of the resident blocks, fewer batches each where its staged
               rows would not fit */
            int64_t B = blocks1[k];
            if (res > 0 && total1 > res) {
                B = res * blocks1[k] / total1;
                if (B < 1) B = 1;
            }
            size_t need;
            while ((need = mv_need(p, (b.nbat[k] + B - 1) / B * b.opw[k], fast)) > MV_SMEM_MAX && B < blocks1[k])
                B++;
            if (need > MV_SMEM_MAX) return cudaErrorInvalidValue;
            if (need > smem) smem = need;
            b.first[k + 1] = b.first[k] + B;
        }
        if (b.first[b.n] > 0x7fffffff) return cudaErrorInvalidValue;
        if (b.first[b.n] > 0) {
            cudaError_t err = cudaSuccess;
            const unsigned blocks = (unsigned)b.first[b.n];
            ZCU_DISPATCH(jobs[i].w.kind, err = mv_go<K>(q, blocks, smem, b, fast));
            if (err != cudaSuccess) return err;
        }
        i = j;
    }
    return cudaSuccess;
}

/* ---------------------------------------------------------------- combine */

/* k_combine's end: the shared expert's output added when it was computed elsewhere
   (sh_out; sh: its row was in this launch), then lane 0 stores or adds to the residual. */
__device__ __forceinline__ void combine_store(const cu_combine &p, int64_t r, float acc, bool sh) {
    if (!sh && p.sh_out) acc = __fadd_rn(acc, p.sh_out[r]);
    if ((threadIdx.x & 31) != 0) return;
    if (p.residual) p.x[r] = __fadd_rn(p.x[r], acc);
    else p.out[r] = acc;
}

/* EARLY (fast, affine 4-bit, bf16 scales, at most four experts, rows of at most 2,048 columns, the shared
   expert's of the same shape): the warp's routed rows and the shared expert's row are
   loaded into registers (dot.cuh's wd_load) as soon as the route is read, before the
   block stages h, and summed after it (wd_sum: the same bits). */
template <int K, bool FAST, bool EARLY, int W = MV_WARPS>
__global__ void __launch_bounds__(W * 32, 2 * MV_WARPS / W) k_combine(const __grid_constant__ cu_combine p) {
    extern __shared__ __align__(16) float sm[];
    pdl_launch();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t d = p.down.rows, r = (int64_t)blockIdx.x * W + warp;
    const bool sh = p.sh_h && p.sh_down.rows > 0;
    /* EARLY: the warp's row of the shared expert's down projection into registers before
       the wait (a model constant, it does not depend on the route); else to L2 */
    wd_raw<K, 1, WD_NJ> rsh;
    bool vs[1] = {sh && r < d};
    /* EARLY: the units of a row and this lane's share of them (the early rows and the sums) */
    [[maybe_unused]] const int nu32 = (int)(p.down.cols / 32), nj = lane_units(nu32, lane);
    if constexpr (EARLY) {
        const rowp rs[1] = {row_of(p.sh_down, 0, r)};
        wd_load<K, 1, WD_NJ, CU_SDT_BF16>(rs, vs, nj, p.sh_down.group, rsh);
    } else if (sh) {
        const int64_t r0 = (int64_t)blockIdx.x * W;
        const int64_t n = d - r0 < W ? d - r0 : W;
        prefetch_rows(p.sh_down, 0, r0, n);
    }
    pdl_wait();
    if (p.reset && blockIdx.x == 0) /* the router's logits read by the experts' launch (cuk_glu_router) */
        for (int i = threadIdx.x; i < p.nreset; i += W * 32) reinterpret_cast<uint32_t *>(p.reset)[i] = ZCU_LOGIT_UNSET;
    if constexpr (EARLY) {
        rowp rp[4];
        bool valid[4];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            valid[i] = i < p.K && r < d;
            rp[i] = row_of(p.down, valid[i] ? (int64_t)p.idx[i] : 0, r);
        }
        wd_raw<K, 4, WD_NJ> raw;
        wd_load<K, 4, WD_NJ, CU_SDT_BF16>(rp, valid, nj, p.down.group, raw);
        const int64_t sf = stage_floats(p.down.cols, true);
        if (p.hq) { /* h already staged (its int8 tails, sf floats a row): copy them */
            stage_copy_q8(p.hq, (int)p.K + (sh ? 1 : 0), nu32, sm, sf, W * 32);
        } else {
            stage_rows<K, true>(p.h, p.hs, nu32, p.K * nu32, threadIdx.x, sm, sf, p.down.group);
            if (sh) stage_rows<K, true>(p.sh_h, 0, nu32, nu32, threadIdx.x, sm + p.K * sf, 0, p.sh_down.group);
        }
        __syncthreads();
        if (r >= d) return;
        xstage xs[4], xsh[1] = {xstage_at(sm + p.K * sf, p.down.cols)};
#pragma unroll
        for (int i = 0; i < 4; i++) xs[i] = xstage_at(sm + (i < p.K ? i : 0) * sf, p.down.cols);
        float out[4], osh[1];
        wd_sum<K, 4, WD_NJ>(raw, valid, xs, nj, out);
        float acc = 0.0f; /* route order, no FMA: k_combine's sum */
#pragma unroll
        for (int i = 0; i < 4; i++)
            if (valid[i]) acc = __fadd_rn(acc, __fmul_rn(p.w[i], out[i]));
        if (sh) {
            wd_sum<K, 1, WD_NJ>(rsh, vs, xsh, nj, osh);
            acc = __fadd_rn(acc, osh[0]);
        }
        combine_store(p, r, acc, sh);
    } else {
        /* the one-pass prologue (dot.cuh): the K rows of h, then the shared expert's row */
        const int64_t sf = stage_floats(p.down.cols, FAST), nu = p.down.cols / 32;
        stage_rows<K, FAST>(p.h, p.hs, nu, p.K * nu, threadIdx.x, sm, sf, p.down.group);
        xstage xsh = {};
        if (sh) {
            const int64_t snu = p.sh_down.cols / 32;
            stage_rows<K, FAST>(p.sh_h, 0, snu, snu, threadIdx.x, sm + p.K * sf, 0, p.sh_down.group);
            xsh = xstage_at(sm + p.K * sf, p.sh_down.cols);
        }
        __syncthreads();
        if (r >= d) return;
        /* route order: score descending, ties to the lower expert index; no FMA */
        float acc = 0.0f;
        for (int64_t k0 = 0; k0 < p.K; k0 += 4) {
            rowp rp[4];
            bool valid[4];
            xstage xs[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                valid[i] = k0 + i < p.K;
                const int64_t k = valid[i] ? k0 + i : 0;
                rp[i] = row_of(p.down, valid[i] ? (int64_t)p.idx[k] : 0, r);
                xs[i] = xstage_at(sm + k * sf, p.down.cols);
            }
            float out[4];
            warp_dots_s<K, 4, FAST>(rp, valid, xs, p.down.cols, p.down.group, p.down.sdt, out);
#pragma unroll
            for (int i = 0; i < 4; i++)
                if (valid[i]) acc = __fadd_rn(acc, __fmul_rn(p.w[k0 + i], out[i]));
        }
        if (sh) {
            rowp rp[1] = {row_of(p.sh_down, 0, r)};
            bool valid[1] = {true};
            xstage xs[1] = {xsh};
            float out[1];
            warp_dots_s<K, 1, FAST>(rp, valid, xs, p.sh_down.cols, p.sh_down.group, p.sh_down.sdt, out);
            acc = __fadd_rn(acc, out[0]);
        }
        combine_store(p, r, acc, sh);
    }
}

/* k_combine EARLY in blocks of COMBINE_WIDE warps, one an SM: every block stages all K
   rows of h (+ the shared one) from L2, so half the blocks read half as much beside the
   down rows (+1.6% at context 16 on the H100); ZMLX_CUDA_COMBINE_WARPS=8: blocks of
   MV_WARPS (for measuring) */
enum { COMBINE_WIDE = 2 * MV_WARPS };

template <int K>
static cudaError_t combine_go(cu_q q, size_t smem, const cu_combine &p, bool fast) {
    const unsigned blocks = (unsigned)((p.down.rows + MV_WARPS - 1) / MV_WARPS);
    if constexpr (q8k<K>::ok) {
        const bool sh = p.sh_h && p.sh_down.rows > 0;
        /* affine 4-bit only: 8-bit rows in registers spill */
        const bool early = K == ZW_AFFINE4 && fast && p.K <= 4 && wd_fits(p.down) &&
                           (!sh || wd_fits(p.sh_down, &p.down)) && cu_knob("ZMLX_CUDA_COMBINE_EARLY", 1) != 0;
        if constexpr (K == ZW_AFFINE4) {
            if (early && cu_knob("ZMLX_CUDA_COMBINE_WARPS", COMBINE_WIDE) == COMBINE_WIDE)
                return launch(q, dim3((unsigned)((p.down.rows + COMBINE_WIDE - 1) / COMBINE_WIDE)),
                              dim3(COMBINE_WIDE * 32), smem, k_combine<K, true, true, COMBINE_WIDE>, p);
            if (early) return launch(q, dim3(blocks), dim3(MV_THREADS), smem, k_combine<K, true, true>, p);
        }
        if (fast) return launch(q, dim3(blocks), dim3(MV_THREADS), smem, k_combine<K, true, false>, p);
    }
    return launch(q, dim3(blocks), dim3(MV_THREADS), smem, k_combine<K, false, false>, p);
}

extern "C" cudaError_t cuk_combine(const cu_combine *p, cu_q q) {
    if (p->down.rows <= 0) return cudaSuccess;
    const bool sh = p->sh_h && p->sh_down.rows > 0;
    if (!cuk_kind_ok(p->down.kind) || p->K < 1 || p->K > ZCU_COMBINE_MAX_K || p->down.cols % 32 ||
        (sh && (p->sh_down.kind != p->down.kind || p->sh_down.rows != p->down.rows ||
                p->sh_down.cols % 32)) ||
        ((uintptr_t)p->h & 15) || p->hs % 4 || ((uintptr_t)p->sh_h & 15) ||
        (p->residual ? !p->x : !p->out))
        return cudaErrorInvalidValue;
    const bool fast = q.fast && cuk_q8_kind(p->down.kind);
    const size_t smem = ((size_t)p->K * (size_t)stage_floats(p->down.cols, fast) +
                         (sh ? (size_t)stage_floats(p->sh_down.cols, fast) : 0)) * sizeof(float);
    if (smem > MV_SMEM_MAX) return cudaErrorInvalidValue;
    cudaError_t err = cudaSuccess;
    ZCU_DISPATCH(p->down.kind, err = combine_go<K>(q, smem, *p, fast));
    return err;
}

/* ---------------------------------------------------------------- transposed */

/* A block covers TM_CG pieces of 8 columns x TM_RS row slices; each slice sums its rows
   in order, then the slices are summed in order (deterministic).  Narrow blocks of many
   slices: a head's W_UK (192 or 128 rows) is 2-3 rows per thread, all loads in flight at
   once, and GLM's 20 heads x 512 columns make 320 blocks (16 x 16 made 80: 16 us, most
   of it waiting on memory one row group at a time). */
enum { TM_CG = 4, TM_RS = 64, TM_THREADS = TM_CG * TM_RS, TM_NR = 4 /* rows of a slice before the wait */ };

typedef struct mvt_args {
    cu_mvt p;
    cu_prep prep;
    bool with_prep;
} mvt_args;

template <int K>
__global__ void __launch_bounds__(TM_THREADS) k_matvec_t(const __grid_constant__ mvt_args a) {
    __shared__ float red[TM_RS][TM_CG * 8 + 1];
    __shared__ float pr[2], css[128];
    pdl_launch();
    const cu_mvt &p = a.p;
    const int64_t g = blockIdx.y;
    if (g >= p.groups) { /* the MLA epilogue's extra block */
        pdl_wait();
        if (a.with_prep && blockIdx.x == 0) prep_token(a.prep, 0, pr, css);
        return;
    }
    const int cg = threadIdx.x % TM_CG, rs = threadIdx.x / TM_CG;
    const int64_t cb = (int64_t)blockIdx.x * TM_CG * 8, c0 = cb + (int64_t)cg * 8;
    const int64_t rbase = p.row0 + (g % p.gmod) * p.grs;
    /* the slice's first TM_NR rows (rs, rs + TM_RS, ..), dequantized before the wait: model
       constants, so their trip to memory overlaps the previous launch */
    float wv[TM_NR][8];
    if (c0 < p.w.cols) {
#pragma unroll
        for (int j = 0; j < TM_NR; j++)
            if (rs + (int64_t)j * TM_RS < p.nr) deq8<K>(p.w, row_of(p.w, 0, rbase + rs + (int64_t)j * TM_RS), c0, wv[j]);
    }
    pdl_wait();
    const float *xg = p.x + g * p.xs;
    if (p.rope > 0 && blockIdx.x == 0) { /* rope of q_pe into the columns after W^T x */
        const int64_t half = p.rope / 2, pos = (int64_t)p.step->pos + g / p.gmod;
        for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
            float c, s, ra, rb;
            pos_cs(p.table, pos, p.inv_freq, p.mscale, p.rope, i, &c, &s);
            rope_pair(xg[p.nr + 2 * i], xg[p.nr + 2 * i + 1], c, s, &ra, &rb);
            p.y[g * p.ys + p.w.cols + 2 * i] = ra;
            p.y[g * p.ys + p.w.cols + 2 * i + 1] = rb;
            if (p.y16)
                reinterpret_cast<__nv_bfloat162 *>(static_cast<__nv_bfloat16 *>(p.y16) + g * p.ys + p.w.cols)[i] =
                    __floats2bfloat162_rn(ra, rb);
        }
    }
    float acc[8];
#pragma unroll
    for (int e = 0; e < 8; e++) acc[e] = 0.0f;
    if (c0 < p.w.cols) {
#pragma unroll
        for (int j = 0; j < TM_NR; j++) {
            const int64_t i = rs + (int64_t)j * TM_RS;
            if (i >= p.nr) break;
            const float xi = xg[i];
#pragma unroll
            for (int e = 0; e < 8; e++) acc[e] = fmaf(wv[j][e], xi, acc[e]);
        }
        for (int64_t i = rs + (int64_t)TM_NR * TM_RS; i < p.nr; i += TM_RS) { /* rows past TM_NR * TM_RS */
            const float xi = xg[i];
            float w1[8];
            deq8<K>(p.w, row_of(p.w, 0, rbase + i), c0, w1);
#pragma unroll
            for (int e = 0; e < 8; e++) acc[e] = fmaf(w1[e], xi, acc[e]);
        }
    }
#pragma unroll
    for (int e = 0; e < 8; e++) red[rs][cg * 8 + e] = acc[e];
    __syncthreads();
    for (int t = threadIdx.x; t < TM_CG * 8; t += blockDim.x) {
        const int64_t c = cb + t;
        if (c < p.w.cols) {
            float s = 0.0f;
            for (int k = 0; k < TM_RS; k++) s = __fadd_rn(s, red[k][t]);
            p.y[g * p.ys + c] = s;
            if (p.y16) static_cast<__nv_bfloat16 *>(p.y16)[g * p.ys + c] = __float2bfloat16_rn(s);
        }
    }
}

extern "C" cudaError_t cuk_matvec_t(const cu_mvt *p, cu_q q) {
    if (p->groups <= 0 || p->w.cols <= 0) return cudaSuccess;
    if (!cuk_kind_ok(p->w.kind) || p->w.cols % 32 || p->groups > 65534 || p->gmod < 1 ||
        p->rope % 2 || p->rope > 256 || (p->rope > 0 && !p->step) ||
        (p->prep && (p->prep->n != 1 || p->prep->rope > 128)) ||
        (p->y16 && (p->ys % 2 || (uintptr_t)p->y16 % 4))) /* y16's rope pairs: 4-byte stores */
        return cudaErrorInvalidValue;
    mvt_args a = {};
    a.p = *p;
    a.with_prep = p->prep != nullptr;
    if (p->prep) a.prep = *p->prep;
    const dim3 grid((unsigned)((p->w.cols + TM_CG * 8 - 1) / (TM_CG * 8)),
                    (unsigned)(p->groups + (p->prep ? 1 : 0)));
    cudaError_t err = cudaSuccess;
    ZCU_DISPATCH(p->w.kind, err = launch(q, grid, dim3(TM_THREADS), 0, k_matvec_t<K>, a));
    return err;
}

extern "C" cudaError_t cuk_attn_init(void); /* kernels_attn.cu */
extern "C" cudaError_t cuk_idx_init(void);  /* kernels_idx.cu */
extern "C" cudaError_t cuk_attn_tc_init(int optin); /* kernels_attn_tc.cu */
extern "C" cudaError_t cuk_attn_uv_init(int optin); /* kernels_attn_uv.cu */
extern "C" cudaError_t cuk_gemm_q4_init(int optin); /* kernels_gemm_q4.cu */

/* Large dynamic shared memory for the matvec and combine kernels of layout K. */
template <int K>
static cudaError_t mv_attrs(int lim) {
    const cudaFuncAttribute a = cudaFuncAttributeMaxDynamicSharedMemorySize;
    cudaError_t err = cudaFuncSetAttribute(k_matvec<K, false>, a, lim);
    if (err == cudaSuccess) err = cudaFuncSetAttribute(k_combine<K, false, false>, a, lim);
    if constexpr (q8k<K>::ok) {
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_matvec<K, true>, a, lim);
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_combine<K, true, false>, a, lim);
        if constexpr (K == ZW_AFFINE4) {
            if (err == cudaSuccess) err = cudaFuncSetAttribute(k_combine<K, true, true>, a, lim);
            if (err == cudaSuccess) err = cudaFuncSetAttribute(k_combine<K, true, true, COMBINE_WIDE>, a, lim);
        }
        if (err == cudaSuccess) err = lean_attrs<K, true>(lim);
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_mv_glu<K, 1, false>, a, lim);
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_mv_glu<K, 2, false>, a, lim);
        if (err == cudaSuccess) err = cudaFuncSetAttribute(k_mv_glu<K, 1, true>, a, lim);
        if constexpr (K == ZW_AFFINE4)
            if (err == cudaSuccess) err = cudaFuncSetAttribute(k_mv_glu<K, 1, true, true>, a, lim);
    }
    if constexpr (K == ZW_BF16)
        if (err == cudaSuccess) err = lean_attrs<K, false>(lim);
    return err;
}

extern "C" cudaError_t cuk_init(void) {
    int dev = 0, optin = 48 * 1024;
    cudaError_t err = cudaGetDevice(&dev);
    if (err == cudaSuccess) err = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    if (err == cudaSuccess) err = cuk_attn_init();
    if (err == cudaSuccess) err = cuk_idx_init();
    if (err == cudaSuccess) err = cuk_attn_tc_init(optin);
    if (err == cudaSuccess) err = cuk_attn_uv_init(optin);
    if (err == cudaSuccess) err = cuk_gemm_q4_init(optin);
    const int lim = optin < MV_SMEM_MAX ? optin : MV_SMEM_MAX;
    for (int kind = 0; kind < ZW_COUNT && err == cudaSuccess; kind++) {
        if (!cuk_kind_ok(kind)) continue; /* a layout with no device kernels (fp8) */
        ZCU_DISPATCH(kind, err = mv_attrs<K>(lim));
    }
    return err;
}

extern "C" bool cuk_hopper_code(void) {
    int dev = 0, cc = 0;
    cudaFuncAttributes fa;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&cc, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaFuncGetAttributes(&fa, k_matvec_t<ZW_BF16>) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    /* every .cu of the backend is built for the same targets: one kernel answers for all;
       ptxVersion is the virtual architecture its code was compiled for (80 for sm_80's
       PTX even where the driver compiled it for an sm_90 device) */
    return cc >= 9 && fa.ptxVersion >= 90;
}

extern "C" bool cuk_q8_kind(int32_t kind) { /* q8k<K>::ok at run time */
    return kind == ZW_AFFINE4 || kind == ZW_AFFINE8;
}

extern "C" bool cuk_kind_ok(int32_t kind) {
    return kind >= ZW_F32 && kind <= ZW_MXFP4; /* fp8 block weights: not on the device yet */
}

extern "C" int64_t cuk_row_bytes(int32_t kind, int64_t cols) {
    switch (kind) {
    case ZW_F32: return cols * 4;
    case ZW_F16:
    case ZW_BF16: return cols * 2;
    default: return cuk_kind_ok(kind) ? cols * zwfmt_table[kind].bits / 8 : 0;
    }
}
