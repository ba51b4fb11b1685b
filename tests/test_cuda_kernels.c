/*
 * test_cuda_kernels.c — every kernel of the `cuda` backend against the CPU reference, ggml
 * test-backend-ops style, on random inputs in every weight layout (f32, f16, bf16, MLX
 * affine 2/3/4/5/6/8-bit with groups 32/64/128 and bf16/f16/f32 scales, mxfp4), GLM-4.7-
 * Flash shapes and small ones:
 *   - every device output lies between guard floats and starts as a NaN canary: a guard
 *     that changed is an out-of-bounds write, an unwritten element stays NaN, and NaN
 *     always fails;
 *   - products (matvec, per-head, routed, GEMM, grouped GEMM, transposed) against a
 *     double-precision dot with the rigorous bound of any summation order (tcuda.h);
 *   - each pattern's fused kernel against the unfused chain it replaces, BIT FOR BIT:
 *     norm-on-load vs rmsnorm + matvec, SwiGLU job vs gate + up + silu_mul, residual
 *     epilogue vs store + add, the route in the experts' prologue vs route + indexed
 *     experts, down + combine vs down + shared + combine, the MLA epilogue in the W_UK^T
 *     launch vs the standalone one, the rope table vs computed cos/sin, several jobs per
 *     launch vs one each, different rows-per-warp schedules (and ZMLX_CUDA_MV_LOOP=0's
 *     one batch per warp), PDL launches vs plain ones;
 *   - elementwise steps that repeat the reference's arithmetic (rope, combine residual,
 *     embedding of every layout, cache conversion) bit for bit; the RMSNorms and SwiGLU
 *     within a few ulps;
 *   - expert slices (several GPUs): a rank's products over its own stack of experts give
 *     the one-GPU bits where it holds the expert, +0.0 elsewhere, and the ranks' sum of
 *     the down buffer is the one-GPU buffer;
 *   - the router: chosen experts and their order exactly as zop_route (ties included),
 *     weights to 1e-6; the grouping of a chunk by expert exactly as moe.c.
 * The attention kernels and the DSA indexer's: test_cuda_attn.c.  Without a GPU: "SKIP: no CUDA device".  ZMLX_TEST_CUDA_QUICK=1 runs a smaller set (for
 * compute-sanitizer).
 */
#include "tcheck.h"

#ifndef ZMLX_HAVE_CUDA
int main(void) {
    printf("SKIP: built without CUDA\n0 passed, 0 failed, 1 skipped\n");
    return 0;
}
#else

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/cuda/cuda_internal.h"
#include "core/err.h"
#include "model/indexer.h"
#include "ops/ops.h"
#include "tcuda.h"

static const wfmt F_BF16 = {ZW_BF16, 0, ZDT_BF16}, F_F32 = {ZW_F32, 0, ZDT_F32};
static const wfmt F_F16 = {ZW_F16, 0, ZDT_F16}, F_Q4 = {ZW_AFFINE4, 64, ZDT_BF16};
static const wfmt F_MX = {ZW_MXFP4, 32, ZDT_U8};

/* ------------------------------------------------------------------ products */

/* The one-pass prologue (dot.cuh's stage_load / stage_store, the default) and the three
   passes before it (ZMLX_CUDA_STAGE=0) stage the same values: job p's n outputs are the
   same bits either way.  The lean kernels (k_mv_lean, k_mv_glu) take their jobs by
   default and k_matvec's three passes under ZMLX_CUDA_STAGE=0, so this also holds them
   to k_matvec's bits.  knob_same: the same with another knob set to 0. */
static bool knob_same(cu_mv p, size_t n, const char *knob) {
    dout a = out_new(n), b = out_new(n);
    float *ha = malloc(n * 4), *hb = malloc(n * 4);
    p.y = a.p;
    CHECK(cuk_matvec(&p, 1, QPDL) == cudaSuccess);
    setenv(knob, "0", 1);
    p.y = b.p;
    CHECK(cuk_matvec(&p, 1, QPDL) == cudaSuccess);
    unsetenv(knob);
    const bool ok = out_fetch(&a, ha, "default") && out_fetch(&b, hb, knob) && same_bits(ha, hb, n);
    out_free(&a);
    out_free(&b);
    free(ha);
    free(hb);
    return ok;
}

static bool stage_same(cu_mv p, size_t n) {
    return knob_same(p, n, "ZMLX_CUDA_STAGE");
}

/* Plain matvec against the bound; then, bit for bit: a slice of rows launched alone (a
   different rows-per-warp schedule), norm-on-load vs rmsnorm + matvec, the residual
   epilogue vs store + add, and (Hopper) a PDL launch. */
static void case_matvec(wfmt f, int64_t rows, int64_t cols) {
    char fn[48];
    wfmt_name(f, fn, sizeof fn);
    hmat m = hmat_new(f, rows, cols);
    float *x = malloc((size_t)cols * 4), *y = malloc((size_t)rows * 4), *y2 = malloc((size_t)rows * 4);
    float *nw = malloc((size_t)cols * 4);
    fill(x, (size_t)cols, 2.0f);
    fill(nw, (size_t)cols, 1.0f);
    cuw dw = to_dev(&m);
    float *dx = dup_dev(x, (size_t)cols * 4), *dnw = dup_dev(nw, (size_t)cols * 4);
    dout o = out_new((size_t)rows);
    cu_mv p = {.w = dw, .groups = 1, .rpg = rows, .gmod = 1, .x = dx, .y = o.p};
    CHECK(cuk_matvec(&p, 1, Q) == cudaSuccess);
    CHECKF(out_fetch(&o, y, "matvec"), "matvec %s [%lld, %lld]", fn, (long long)rows, (long long)cols);
    dotchk c = {0};
    for (int64_t r = 0; r < rows; r++) {
        double ex, as;
        dot_exact(&m.w, r, x, &ex, &as);
        dot_check_q(&c, y[r], ex, as, dot_fast_err(&m.w, r, x), cols);
    }
    DOTCHK_OK(c, "matvec%s %s [%lld, %lld]", tq_fast ? " fast" : "", fn, (long long)rows, (long long)cols);
    if (tq_fast && cuk_q8_kind(f.kind)) {
        /* the same int8 values and integer dots as the CPU's portable model of fast mode:
           only the order of the float sums differs (any wrong code, order, group or scale
           fails by orders of magnitude) */
        float *ym = malloc((size_t)rows * 4);
        zk_qrows_q8_generic(&m.w, x, 1, ym, 0, rows);
        const double e = nmse(y, ym, (size_t)rows);
        CHECKF(e < 1e-9, "matvec fast %s [%lld, %lld]: nmse %.3g against zk_qrows_q8_generic", fn,
               (long long)rows, (long long)cols, e);
        free(ym);
    }

    /* the last 40 rows (or fewer) as a matrix of their own */
    const int64_t r0 = rows > 40 ? rows - 40 : 0, nr = rows - r0;
    cuw sub = dw;
    sub.data = (const uint8_t *)dw.data + r0 * dw.ld;
    if (dw.scales) {
        const int64_t ss = (dw.sdt == CU_SDT_F32 ? 4 : dw.sdt == CU_SDT_E8M0 ? 1 : 2) * (cols / dw.group);
        sub.scales = (const uint8_t *)dw.scales + r0 * ss;
        if (dw.biases) sub.biases = (const uint8_t *)dw.biases + r0 * ss;
    }
    sub.rows = nr;
    dout os = out_new((size_t)nr);
    cu_mv ps = {.w = sub, .groups = 1, .rpg = nr, .gmod = 1, .x = dx, .y = os.p};
    CHECK(cuk_matvec(&ps, 1, Q) == cudaSuccess);
    CHECKF(out_fetch(&os, y2, "matvec slice") && same_bits(y2, y + r0, (size_t)nr),
           "matvec %s: rows %lld.. alone differ from the whole launch", fn, (long long)r0);
    out_free(&os);

    /* one batch per warp and as many blocks as that takes (ZMLX_CUDA_MV_LOOP=0) instead of
       the resident blocks looping over their batches: the same bits */
    dout o1 = out_new((size_t)rows);
    cu_mv p1 = p;
    p1.y = o1.p;
    setenv("ZMLX_CUDA_MV_LOOP", "0", 1);
    CHECK(cuk_matvec(&p1, 1, Q) == cudaSuccess);
    unsetenv("ZMLX_CUDA_MV_LOOP");
    CHECKF(out_fetch(&o1, y2, "matvec one batch") && same_bits(y2, y, (size_t)rows),
           "matvec %s [%lld, %lld]: the one-batch schedule differs", fn, (long long)rows, (long long)cols);
    out_free(&o1);

    /* norm on load == rmsnorm kernel then matvec */
    const float eps = 1e-5f;
    dout xn = out_new((size_t)cols), a = out_new((size_t)rows), b = out_new((size_t)rows);
    CHECK(cuk_rmsnorm(dx, cols, dnw, cols, eps, xn.p, cols, 1, Q) == cudaSuccess);
    cu_mv pa = {.w = dw, .groups = 1, .rpg = rows, .gmod = 1, .x = xn.p, .y = a.p};
    cu_mv pb = {.w = dw, .groups = 1, .rpg = rows, .gmod = 1, .x = dx, .norm = dnw, .eps = eps, .y = b.p};
    CHECK(cuk_matvec(&pa, 1, Q) == cudaSuccess);
    CHECK(cuk_matvec(&pb, 1, QPDL) == cudaSuccess); /* PDL on Hopper, plain elsewhere */
    CHECKF(out_fetch(&a, y, "norm a") && out_fetch(&b, y2, "norm b") && same_bits(y, y2, (size_t)rows),
           "matvec %s: rmsnorm on load differs from rmsnorm + matvec", fn);
    CHECKF(stage_same(p, (size_t)rows) && stage_same(pb, (size_t)rows),
           "matvec %s [%lld, %lld]: the one-pass prologue differs from the three passes", fn,
           (long long)rows, (long long)cols);
    CHECKF(knob_same(p, (size_t)rows, "ZMLX_CUDA_MV_EARLY") && knob_same(pb, (size_t)rows, "ZMLX_CUDA_MV_EARLY"),
           "matvec %s [%lld, %lld]: the rows loaded before the wait differ from the batch loop's", fn,
           (long long)rows, (long long)cols);
    CHECKF(knob_same(p, (size_t)rows, "ZMLX_CUDA_LEAN_WARPS") && knob_same(pb, (size_t)rows, "ZMLX_CUDA_LEAN_WARPS"),
           "matvec %s [%lld, %lld]: the rows-before-the-wait blocks of 16 warps differ from those of 8", fn,
           (long long)rows, (long long)cols);
    CHECKF(knob_same(p, (size_t)rows, "ZMLX_CUDA_MV_DEEP") && knob_same(pb, (size_t)rows, "ZMLX_CUDA_MV_DEEP"),
           "matvec %s [%lld, %lld]: the deep instance (four blocks an SM) differs from the usual one", fn,
           (long long)rows, (long long)cols);
    CHECKF(knob_same(p, (size_t)rows, "ZMLX_CUDA_MV_DEEP_PIPE") && knob_same(pb, (size_t)rows, "ZMLX_CUDA_MV_DEEP_PIPE"),
           "matvec %s [%lld, %lld]: the deep loop with the next row in flight differs from the one-row loop", fn,
           (long long)rows, (long long)cols);

    /* residual epilogue: y = r + W x  ==  (W x) then r + that */
    float *res = malloc((size_t)rows * 4), *want = malloc((size_t)rows * 4);
    fill(res, (size_t)rows, 3.0f);
    dout ra = out_from(res, (size_t)rows);
    cu_mv pr = {.w = dw, .groups = 1, .rpg = rows, .gmod = 1, .x = dx, .y = ra.p, .epi = CU_EPI_ADD};
    CHECK(cuk_matvec(&pr, 1, Q) == cudaSuccess);
    CHECKF(out_fetch(&ra, y2, "add"), "matvec add %s", fn);
    CU(cudaMemcpy(want, o.p, (size_t)rows * 4, cudaMemcpyDeviceToHost));
    for (int64_t r = 0; r < rows; r++) want[r] = res[r] + want[r];
    CHECKF(same_bits(y2, want, (size_t)rows), "matvec %s: residual epilogue differs from store + add", fn);
    out_free(&ra);
    out_free(&xn);
    out_free(&a);
    out_free(&b);
    out_free(&o);
    cuw_free(&dw);
    cudaFree(dx);
    cudaFree(dnw);
    hmat_free(&m);
    free(x);
    free(y);
    free(y2);
    free(nw);
    free(res);
    free(want);
}

/* Absorbed MLA's W_UV per head: y[h, r] = kv_b[h*hs + nope + r] · x[h]; and W_UK^T with
   q_pe's rope (computed cos/sin, then the table: same bits), and the MLA epilogue in
   extra blocks (same bits as cuk_attn_prep). */
static void case_per_head(wfmt f, int64_t H, int64_t nope, int64_t vd, int64_t R, int64_t rope) {
    char fn[48];
    wfmt_name(f, fn, sizeof fn);
    const int64_t hs = nope + vd;
    hmat m = hmat_new(f, H * hs, R);
    cuw dw = to_dev(&m);
    float *x = malloc((size_t)(H * R) * 4), *y = malloc((size_t)(H * vd) * 4);
    fill(x, (size_t)(H * R), 1.0f);
    float *dx = dup_dev(x, (size_t)(H * R) * 4);
    dout o = out_new((size_t)(H * vd));
    cu_mv p = {.w = dw, .groups = H, .rpg = vd, .row0 = nope, .grs = hs, .gmod = H, .x = dx,
               .xs = R, .y = o.p, .ys = vd};
    CHECK(cuk_matvec(&p, 1, Q) == cudaSuccess);
    CHECKF(out_fetch(&o, y, "per-head"), "per-head matvec %s", fn);
    dotchk c = {0};
    for (int64_t h = 0; h < H; h++)
        for (int64_t r = 0; r < vd; r++) {
            double ex, as;
            dot_exact(&m.w, h * hs + nope + r, x + h * R, &ex, &as);
            dot_check_q(&c, y[h * vd + r], ex, as, dot_fast_err(&m.w, h * hs + nope + r, x + h * R), R);
        }
    DOTCHK_OK(c, "per-head W_UV %s H=%lld", fn, (long long)H);
    CHECKF(stage_same(p, (size_t)(H * vd)), "per-head W_UV %s: the one-pass prologue differs", fn);
    CHECKF(knob_same(p, (size_t)(H * vd), "ZMLX_CUDA_MV_EARLY"),
           "per-head W_UV %s: the rows loaded before the wait differ from the batch loop's", fn);
    out_free(&o);

    /* transposed into rows of R + rope + 3 (3 canaries after each) at position 11 */
    const int64_t ys = R + rope + 3, qk = nope + rope, pos = 11, half = rope / 2;
    float *q = malloc((size_t)(H * qk) * 4), *yt = malloc((size_t)(H * ys) * 4);
    float *yt2 = malloc((size_t)(H * ys) * 4), *inv = malloc((size_t)(half + 1) * 4);
    fill(q, (size_t)(H * qk), 1.0f);
    for (int64_t i = 0; i < half; i++) inv[i] = (float)(1.0 / pow(1e4, (double)(2 * i) / (double)rope));
    cu_step step = {.pos = (int32_t)pos, .n = 1};
    cu_step *dstep = dup_dev(&step, sizeof step);
    float *dq = dup_dev(q, (size_t)(H * qk) * 4), *dinv = dup_dev(inv, (size_t)(half + 1) * 4);
    float *tab;
    CU(cudaMalloc((void **)&tab, (size_t)((pos + 1) * rope + 1) * 4));
    CHECK(cuk_rope_table(tab, 0, pos + 1, dinv, 1.0f, rope, Q) == cudaSuccess);
    dout ot = out_new((size_t)(H * ys)), ot2 = out_new((size_t)(H * ys));
    cu_mvt pt = {.w = dw, .nr = nope, .row0 = 0, .grs = hs, .gmod = H, .groups = H, .x = dq,
                 .xs = qk, .y = ot.p, .ys = ys, .rope = rope, .inv_freq = dinv, .mscale = 1.0f,
                 .step = dstep};
    CHECK(cuk_matvec_t(&pt, Q) == cudaSuccess);
    CHECKF(out_fetch(&ot, yt, "matvec_t"), "matvec_t %s", fn);
    pt.y = ot2.p;
    pt.table = tab;
    CHECK(cuk_matvec_t(&pt, Q) == cudaSuccess);
    CHECKF(out_fetch(&ot2, yt2, "matvec_t table") && same_bits(yt, yt2, (size_t)(H * ys)),
           "matvec_t %s: the rope table gives other bits than computed cos/sin", fn);
    dotchk ct = {0};
    int64_t good = 0;
    float *cr = malloc((size_t)(half + 1) * 4), *sr = malloc((size_t)(half + 1) * 4);
    zop_rope_table(pos, inv, half, 1.0f, cr, sr);
    for (int64_t h = 0; h < H; h++) {
        for (int64_t col = 0; col < R; col++) {
            double s = 0, a = 0;
            for (int64_t i = 0; i < nope; i++) {
                double pr = (double)zweight_get(&m.w, h * hs + i, col) * q[h * qk + i];
                s += pr;
                a += fabs(pr);
            }
            dot_check(&ct, yt[h * ys + col], s, a, nope);
        }
        float qp[128];
        memcpy(qp, q + h * qk + nope, (size_t)rope * 4);
        zop_rope_interleaved(qp, rope, cr, sr);
        good += !memcmp(qp, yt + h * ys + R, (size_t)rope * 4); /* bit for bit */
        for (int64_t col = R + rope; col < ys; col++) good += f2u(yt[h * ys + col]) == CANARY;
    }
    DOTCHK_OK(ct, "transposed W_UK^T %s", fn);
    CHECKF(good == H * 4, "matvec_t %s: q_pe rope not bit-identical or a write past its columns "
           "(%lld of %lld)", fn, (long long)good, (long long)(H * 4));

    /* the MLA epilogue in the same launch == the standalone kernel */
    const int64_t W = R + rope, cap = pos + 2;
    float *kv = malloc((size_t)W * 4), *kvn = malloc((size_t)R * 4);
    fill(kv, (size_t)W, 2.0f);
    fill(kvn, (size_t)R, 1.0f);
    float *dkvn = dup_dev(kvn, (size_t)R * 4);
    for (int bf = 0; bf < 2; bf++) {
        float *hc[2], *hkv[2];
        for (int fused = 0; fused < 2; fused++) {
            float *dkv = dup_dev(kv, (size_t)W * 4);
            dout cache = out_new((size_t)(cap * W)), cs = out_new((size_t)rope);
            cu_prep pp = {.kv = dkv, .R = R, .rope = rope, .kv_norm = dkvn, .eps = 1e-6f,
                          .inv_freq = dinv, .mscale = 1.0f, .table = fused ? tab : NULL,
                          .cache = cache.p, .cache_bf16 = bf, .cs = cs.p, .step = dstep, .n = 1};
            if (fused) {
                cu_mvt pf = pt;
                pf.y = ot2.p;
                pf.prep = &pp;
                CHECK(cuk_matvec_t(&pf, Q) == cudaSuccess);
            } else {
                CHECK(cuk_attn_prep(&pp, Q) == cudaSuccess);
            }
            hc[fused] = malloc((size_t)(cap * W) * 4);
            hkv[fused] = malloc((size_t)W * 4);
            CHECKF(out_fetch(&cache, hc[fused], "prep cache"), "prep cache fused=%d", fused);
            CU(cudaMemcpy(hkv[fused], dkv, (size_t)W * 4, cudaMemcpyDeviceToHost));
            out_free(&cache);
            out_free(&cs);
            cudaFree(dkv);
        }
        CHECKF(same_bits(hc[0], hc[1], (size_t)(cap * W)) && same_bits(hkv[0], hkv[1], (size_t)W),
               "MLA epilogue in the W_UK^T launch differs from cuk_attn_prep (bf16=%d)", bf);
        for (int i = 0; i < 2; i++) {
            free(hc[i]);
            free(hkv[i]);
        }
    }
    CHECKF(out_fetch(&ot2, yt2, "matvec_t prep") && same_bits(yt, yt2, (size_t)(H * ys)),
           "matvec_t %s: the extra blocks changed the product", fn);
    cudaFree(dkvn);
    free(kv);
    free(kvn);
    free(cr);
    free(sr);
    cudaFree(tab);
    cudaFree(dstep);
    cudaFree(dinv);
    out_free(&ot);
    out_free(&ot2);
    cudaFree(dq);
    free(q);
    free(yt);
    free(yt2);
    free(inv);
    cudaFree(dx);
    cuw_free(&dw);
    hmat_free(&m);
    free(x);
    free(y);
}

/* A layer's routed experts on the host: gate, up [mI, d] and down [d, mI] of E experts. */
typedef struct hexperts {
    hmat *g, *u, *dn;
    int E;
} hexperts;

static hexperts hexperts_new(wfmt f, int E, int64_t mI, int64_t d) {
    hexperts x = {malloc((size_t)E * sizeof(hmat)), malloc((size_t)E * sizeof(hmat)),
                  malloc((size_t)E * sizeof(hmat)), E};
    for (int e = 0; e < E; e++) {
        x.g[e] = hmat_new(f, mI, d);
        x.u[e] = hmat_new(f, mI, d);
        x.dn[e] = hmat_new(f, d, mI);
    }
    return x;
}

static void hexperts_free(hexperts *x) {
    for (int e = 0; e < x->E; e++) {
        hmat_free(&x->g[e]);
        hmat_free(&x->u[e]);
        hmat_free(&x->dn[e]);
    }
    free(x->g);
    free(x->u);
    free(x->dn);
}

/*
 * The MoE decode step of one token, fused against unfused, bit for bit:
 *   route kernel + gate (idx) + up (idx) + silu_mul   ==  experts job with the route in
 *                                                          its prologue (moe_mlp)
 *   down (idx) + shared down + combine kernel         ==  cuk_combine (downproj_combine,
 *                                                          moe_combine, shared_overlap)
 * and the SwiGLU outputs against the double reference (bound propagated through silu).
 */
static void case_moe(wfmt f, int E, int K, int64_t mI, int64_t d, bool shared, bool ties) {
    char fn[48];
    wfmt_name(f, fn, sizeof fn);
    hexperts hx = hexperts_new(f, E, mI, d);
    hmat *g = hx.g, *u = hx.u, *dn = hx.dn;
    hmat shd = hmat_new(f, d, mI);
    cuw dg = stack_dev(g, E), du = stack_dev(u, E), dd = stack_dev(dn, E), dsh = to_dev(&shd);
    float *x = malloc((size_t)d * 4), *lg = malloc((size_t)E * 4), *bias = malloc((size_t)E * 4);
    float *sh = malloc((size_t)mI * 4), *res = malloc((size_t)d * 4);
    fill(x, (size_t)d, 1.0f);
    fill(lg, (size_t)E, 3.0f);
    fill(bias, (size_t)E, 0.1f);
    if (ties) /* pairs of equal scores: the lower expert first */
        for (int e = 0; e < E; e++) lg[e] = (float)(e / 2) * 0.125f - 1.0f, bias[e] = 0.0f;
    fill(sh, (size_t)mI, 1.0f);
    fill(res, (size_t)d, 2.0f);
    float *dx = dup_dev(x, (size_t)d * 4), *dl = dup_dev(lg, (size_t)E * 4), *db = dup_dev(bias, (size_t)E * 4);
    float *dsh_h = dup_dev(sh, (size_t)mI * 4);
    const cu_route_cfg rc = {.n_experts = E, .k = K, .n_group = 1, .topk_group = 1,
                             .norm_topk_prob = true, .scale = 1.8f};
    /* unfused */
    int32_t *ridx;
    CU(cudaMalloc((void **)&ridx, (size_t)K * 4));
    dout rw = out_new((size_t)K), ge = out_new((size_t)(K * mI)), ue = out_new((size_t)(K * mI));
    CHECK(cuk_route(rc, dl, db, 1, ridx, rw.p, Q) == cudaSuccess);
    cu_mv j2[2] = {{.w = dg, .idx = ridx, .groups = K, .rpg = mI, .gmod = 1, .x = dx, .y = ge.p, .ys = mI},
                   {.w = du, .idx = ridx, .groups = K, .rpg = mI, .gmod = 1, .x = dx, .y = ue.p, .ys = mI}};
    CHECK(cuk_matvec(j2, 2, Q) == cudaSuccess);
    CHECK(cuk_silu_mul(ge.p, ue.p, K * mI, ge.p, Q) == cudaSuccess);
    /* fused */
    int32_t *fidx;
    CU(cudaMalloc((void **)&fidx, (size_t)K * 4));
    dout fw = out_new((size_t)K), fh = out_new((size_t)(K * mI));
    cu_mv jf = {.w = dg, .up = du, .routed = true,
                .route = {.logits = dl, .bias = db, .cfg = rc, .idx = fidx, .w = fw.p},
                .groups = K, .rpg = mI, .gmod = 1, .x = dx, .y = fh.p, .ys = mI, .epi = CU_EPI_SWIGLU};
    CHECK(cuk_matvec(&jf, 1, QPDL) == cudaSuccess);
    float *h1 = malloc((size_t)(K * mI) * 4), *h2 = malloc((size_t)(K * mI) * 4);
    float *w1 = malloc((size_t)K * 4), *w2 = malloc((size_t)K * 4);
    int32_t i1[ZCU_ROUTE_MAX_K], i2[ZCU_ROUTE_MAX_K];
    CHECKF(out_fetch(&ge, h1, "glu unfused") && out_fetch(&fh, h2, "glu fused") &&
               out_fetch(&rw, w1, "route w") && out_fetch(&fw, w2, "fused route w"),
           "moe %s outputs", fn);
    CU(cudaMemcpy(i1, ridx, (size_t)K * 4, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(i2, fidx, (size_t)K * 4, cudaMemcpyDeviceToHost));
    CHECKF(same_bits(h1, h2, (size_t)(K * mI)) && !memcmp(i1, i2, (size_t)K * 4) && same_bits(w1, w2, (size_t)K),
           "moe %s E=%d K=%d: fused route + SwiGLU differ from route + gate + up + silu_mul", fn, E, K);
    {   /* the prologue with the route and the norm on load side by side */
        float *nw = malloc((size_t)d * 4);
        fill(nw, (size_t)d, 0.5f);
        float *dnw = dup_dev(nw, (size_t)d * 4);
        cu_mv jn = jf;
        jn.norm = dnw;
        jn.eps = 1e-5f;
        CHECKF(stage_same(jf, (size_t)(K * mI)) && stage_same(jn, (size_t)(K * mI)),
               "moe %s E=%d K=%d: the one-pass prologue differs from the three passes", fn, E, K);
        /* k_mv_glu with the next rows in flight (PIPE) and without */
        CHECKF(knob_same(jn, (size_t)(K * mI), "ZMLX_CUDA_GLU_PIPE"),
               "moe %s E=%d K=%d: k_mv_glu's pipelined loop differs from its plain one", fn, E, K);
        /* k_mv_glu's route, in registers and in warp_route's shared-memory form: cuk_route's
           experts and weights, bit for bit */
        for (int v = 0; v < 3; v++) { /* registers (picks on keys), shared memory, registers (shuffles) */
            const char *kn = v == 1 ? "ZMLX_CUDA_ROUTE_REG" : "ZMLX_CUDA_ROUTE_KEYS";
            int32_t *gidx, i3[ZCU_ROUTE_MAX_K];
            CU(cudaMalloc((void **)&gidx, (size_t)K * 4));
            dout gw = out_new((size_t)K), gy = out_new((size_t)(K * mI));
            cu_mv jr = jn;
            jr.route.idx = gidx, jr.route.w = gw.p, jr.y = gy.p;
            if (v) setenv(kn, "0", 1);
            CHECK(cuk_matvec(&jr, 1, QPDL) == cudaSuccess);
            if (v) unsetenv(kn);
            float *w3 = malloc((size_t)K * 4);
            CHECKF(out_fetch(&gw, w3, "glu route w"), "moe %s glu route", fn);
            CU(cudaMemcpy(i3, gidx, (size_t)K * 4, cudaMemcpyDeviceToHost));
            CHECKF(!memcmp(i1, i3, (size_t)K * 4) && same_bits(w1, w3, (size_t)K),
                   "moe %s E=%d K=%d ties=%d: the SwiGLU launch's route (%s) differs from cuk_route", fn, E,
                   K, (int)ties, v == 1 ? "shared memory" : v ? "registers, shuffles" : "registers, keys");
            free(w3);
            out_free(&gw);
            out_free(&gy);
            cudaFree(gidx);
        }
        cudaFree(dnw);
        free(nw);
    }
    /* SwiGLU against the double reference */
    int64_t bad = 0;
    double worst = 0;
    for (int k = 0; k < K; k++)
        for (int64_t r = 0; r < mI; r++) {
            double eg, ag, eu, au;
            dot_exact(&g[i1[k]].w, r, x, &eg, &ag);
            dot_exact(&u[i1[k]].w, r, x, &eu, &au);
            const double sg = 1.0 / (1.0 + exp(-eg)), ref = eg * sg * eu;
            /* fast mode: gate and up each off by up to their Q as well (silu' <= 1.1) */
            const double qg = dot_fast_err(&g[i1[k]].w, r, x), qu = dot_fast_err(&u[i1[k]].w, r, x);
            const double gam = (double)(d + 2 * (d / 32) + (tq_fast ? 16 : 8)) / 16777216.0;
            const double eg1 = gam * (ag + qg) + qg, eu1 = gam * (au + qu) + qu;
            const double bound = 1.2 * eg1 * (fabs(eu) + (qu > 0 ? eu1 : 0.0)) + eu1 * fabs(eg * sg) +
                                 4e-7 * fabs(ref) + 1e-30;
            double r_ = fabs(h1[k * mI + r] - ref) / bound;
            if (isnan(h1[k * mI + r]) || r_ > 1.0) bad++;
            if (r_ > worst) worst = r_;
        }
    CHECKF(bad == 0, "experts SwiGLU %s: %lld bad (worst %.3g)", fn, (long long)bad, worst);

    /* down + combine: unfused chain */
    dout de = out_new((size_t)(K * d)), sd = out_new((size_t)d), xa = out_from(res, (size_t)d);
    cu_mv jd[2] = {{.w = dd, .idx = ridx, .groups = K, .rpg = d, .gmod = 1, .x = ge.p, .xs = mI,
                    .y = de.p, .ys = d},
                   {.w = dsh, .groups = 1, .rpg = d, .gmod = 1, .x = dsh_h, .y = sd.p}};
    CHECK(cuk_matvec(jd, shared ? 2 : 1, Q) == cudaSuccess);
    CHECK(cuk_moe_combine(rw.p, NULL, K, de.p, shared ? sd.p : NULL, xa.p, NULL, NULL, 0.0f, NULL, d, 1, Q) ==
          cudaSuccess);
    float *ya = malloc((size_t)d * 4), *yb = malloc((size_t)d * 4), *yc = malloc((size_t)d * 4);
    CHECKF(out_fetch(&xa, ya, "combine unfused"), "combine unfused %s", fn);
    /* fused, shared expert's down inside (shared_overlap) */
    dout xb = out_from(res, (size_t)d), oc = out_new((size_t)d);
    cu_combine cb = {.down = dd, .idx = ridx, .w = rw.p, .K = K, .h = ge.p, .hs = mI,
                     .sh_down = shared ? dsh : (cuw){0}, .sh_h = shared ? dsh_h : NULL, .x = xb.p,
                     .residual = true};
    CHECK(cuk_combine(&cb, QPDL) == cudaSuccess);
    CHECKF(out_fetch(&xb, yb, "combine fused") && same_bits(ya, yb, (size_t)d),
           "moe %s: down + combine + residual (fused) differ from the unfused chain", fn);
    { /* the rows loaded before the staging (EARLY, where it applies) and after it */
        dout xe = out_from(res, (size_t)d);
        cu_combine ce = cb;
        ce.x = xe.p;
        setenv("ZMLX_CUDA_COMBINE_EARLY", "0", 1);
        CHECK(cuk_combine(&ce, QPDL) == cudaSuccess);
        unsetenv("ZMLX_CUDA_COMBINE_EARLY");
        float *ye = malloc((size_t)d * 4);
        CHECKF(out_fetch(&xe, ye, "combine, rows after the staging") && same_bits(yb, ye, (size_t)d),
               "moe %s: k_combine's early rows differ from its rows after the staging", fn);
        CU(cudaMemcpy(xe.p, res, (size_t)d * 4, cudaMemcpyHostToDevice)); /* blocks of 8 warps, not 16 */
        setenv("ZMLX_CUDA_COMBINE_WARPS", "8", 1);
        CHECK(cuk_combine(&ce, QPDL) == cudaSuccess);
        unsetenv("ZMLX_CUDA_COMBINE_WARPS");
        CHECKF(out_fetch(&xe, ye, "combine, 8 warps a block") && same_bits(yb, ye, (size_t)d),
               "moe %s: k_combine in blocks of 8 warps differs from blocks of 16", fn);
        free(ye);
        out_free(&xe);
    }
    /* fused with the shared output precomputed, no residual */
    cu_combine cc = cb;
    cc.sh_down = (cuw){0};
    cc.sh_h = NULL;
    cc.sh_out = shared ? sd.p : NULL;
    cc.residual = false;
    cc.x = NULL;
    cc.out = oc.p;
    CHECK(cuk_combine(&cc, Q) == cudaSuccess);
    CHECKF(out_fetch(&oc, yc, "combine out"), "combine out %s", fn);
    for (int64_t i = 0; i < d; i++) yc[i] = res[i] + yc[i];
    CHECKF(same_bits(ya, yc, (size_t)d), "moe %s: combine into out + add differs", fn);
    out_free(&de);
    out_free(&sd);
    out_free(&xa);
    out_free(&xb);
    out_free(&oc);
    out_free(&rw);
    out_free(&ge);
    out_free(&ue);
    out_free(&fw);
    out_free(&fh);
    cudaFree(ridx);
    cudaFree(fidx);
    cudaFree(dx);
    cudaFree(dl);
    cudaFree(db);
    cudaFree(dsh_h);
    cuw_free(&dg);
    cuw_free(&du);
    cuw_free(&dd);
    cuw_free(&dsh);
    hexperts_free(&hx);
    hmat_free(&shd);
    free(x);
    free(lg);
    free(bias);
    free(sh);
    free(res);
    free(h1);
    free(h2);
    free(w1);
    free(w2);
    free(ya);
    free(yb);
    free(yc);
}

/*
 * The router inside the experts' launch (cuk_glu_router): the bf16 router's logits
 * (normalised on load) in the launch's first blocks, the routed experts' SwiGLU (and the
 * shared expert's) routing once they are written — logits, route, SwiGLU outputs bit for
 * bit those of the router's launch then the experts' (cuk_matvec), five times in a row
 * (blocks of 16 warps, the default, and of 8; the last two also writing h's staged int8
 * form for the combine, which must then match the combine staging h itself) with
 * cuk_combine setting the logits back to ZCU_LOGIT_UNSET between; exact mode and a
 * logits buffer that is not the route's fall back (cuk_glu_router_ok false).
 */
static void case_router_in(int E, int K, int64_t mI, int64_t d, bool shared) {
    hexperts hx = hexperts_new(F_Q4, E, mI, d);
    hmat rm = hmat_new(F_BF16, E, d), sg = hmat_new(F_Q4, mI, d), su = hmat_new(F_Q4, mI, d);
    hmat shd = hmat_new(F_Q4, d, mI);
    cuw dg = stack_dev(hx.g, E), du = stack_dev(hx.u, E), dd = stack_dev(hx.dn, E), dr = to_dev(&rm);
    cuw dsg = to_dev(&sg), dsu = to_dev(&su), dsh = to_dev(&shd);
    float *x = malloc((size_t)d * 4), *nw = malloc((size_t)d * 4), *bias = malloc((size_t)E * 4);
    fill(x, (size_t)d, 1.0f);
    for (int64_t i = 0; i < d; i++) nw[i] = 0.75f + 0.25f * (float)(i % 3);
    fill(bias, (size_t)E, 0.1f);
    float *dx = dup_dev(x, (size_t)d * 4), *dnw = dup_dev(nw, (size_t)d * 4), *db = dup_dev(bias, (size_t)E * 4);
    const cu_route_cfg rc = {.n_experts = E, .k = K, .n_group = 1, .topk_group = 1,
                             .norm_topk_prob = true, .scale = 2.5f};
    const size_t nh = (size_t)(K * mI);
    /* two launches */
    dout lg1 = out_new((size_t)E), h1 = out_new(nh), w1 = out_new((size_t)K), s1 = out_new((size_t)mI);
    int32_t *idx1, *idx2;
    CU(cudaMalloc((void **)&idx1, (size_t)K * 4));
    CU(cudaMalloc((void **)&idx2, (size_t)K * 4));
    const cu_mv rj = {.w = dr, .groups = 1, .rpg = E, .gmod = 1, .x = dx, .norm = dnw, .eps = 1e-5f, .y = lg1.p};
    cu_mv ex[2] = {{.w = dg, .up = du, .routed = true,
                    .route = {.logits = lg1.p, .bias = db, .cfg = rc, .idx = idx1, .w = w1.p},
                    .groups = K, .rpg = mI, .gmod = 1, .x = dx, .norm = dnw, .eps = 1e-5f, .y = h1.p, .ys = mI,
                    .epi = CU_EPI_SWIGLU},
                   {.w = dsg, .up = dsu, .groups = 1, .rpg = mI, .gmod = 1, .x = dx, .norm = dnw, .eps = 1e-5f,
                    .y = s1.p, .epi = CU_EPI_SWIGLU}};
    const int n = shared ? 2 : 1;
    CHECK(cuk_matvec(&rj, 1, QPDL) == cudaSuccess);
    CHECK(cuk_matvec(ex, n, QPDL) == cudaSuccess);
    float *a[4], *b[4];
    const size_t sz[4] = {(size_t)E, nh, (size_t)K, (size_t)mI};
    dout *o1[4] = {&lg1, &h1, &w1, &s1};
    for (int i = 0; i < 4; i++) {
        a[i] = malloc(sz[i] * 4), b[i] = malloc(sz[i] * 4);
        CHECKF(out_fetch(o1[i], a[i], "router + experts"), "router_in E=%d: two launches (output %d)", E, i);
    }
    int32_t i1[ZCU_ROUTE_MAX_K], i2[ZCU_ROUTE_MAX_K];
    CU(cudaMemcpy(i1, idx1, (size_t)K * 4, cudaMemcpyDeviceToHost));
    /* one launch, twice (the combine sets the logits back between) */
    float *sig;
    CU(cudaMalloc((void **)&sig, (size_t)E * 4));
    CU(cudaMemset(sig, 0xff, (size_t)E * 4));
    CU(cudaDeviceSynchronize());
    dout h2 = out_new(nh), w2 = out_new((size_t)K), s2 = out_new((size_t)mI);
    cu_mv rj2 = rj, ex2[2] = {ex[0], ex[1]};
    rj2.y = sig;
    ex2[0].route.logits = sig, ex2[0].route.idx = idx2, ex2[0].route.w = w2.p, ex2[0].y = h2.p, ex2[1].y = s2.p;
    CHECKF(!cuk_glu_router_ok(&rj, ex2, n, QPDL), "router_in: a router writing elsewhere than the route's logits");
    if (!tq_fast) { /* the int8 SwiGLU only */
        CHECKF(!cuk_glu_router_ok(&rj2, ex2, n, QPDL), "router_in: exact mode");
    } else {
        CHECKF(cuk_glu_router_ok(&rj2, ex2, n, QPDL), "router_in E=%d K=%d: cuk_glu_router_ok", E, K);
        /* the fourth and fifth also write h's staged int8 form (yq, the combine's hq; blocks
           of 16 and of 8 warps) */
        const int64_t sq = cuk_stage_floats(mI);
        float *hq, *xr0 = malloc((size_t)d * 4), *xr1 = malloc((size_t)d * 4);
        CU(cudaMalloc((void **)&hq, (size_t)((K + 1) * sq) * 4));
        cu_mv ex3[2] = {ex2[0], ex2[1]};
        ex3[0].yq = hq, ex3[1].yq = hq + K * sq, ex3[0].yq_group = ex3[1].yq_group = dd.group;
        CHECKF(cuk_glu_router_yq_ok(&rj2, ex3, n, QPDL), "router_in E=%d K=%d: cuk_glu_router_yq_ok", E, K);
        setenv("ZMLX_CUDA_HQ", "0", 1);
        CHECKF(!cuk_glu_router_yq_ok(&rj2, ex3, n, QPDL), "router_in: ZMLX_CUDA_HQ=0");
        unsetenv("ZMLX_CUDA_HQ");
        for (int rep = 0; rep < 5; rep++) { /* the third and fifth in blocks of 8 warps (ZMLX_CUDA_GLU_WARPS=8) */
            const bool yq = rep >= 3;
            if (rep == 2 || rep == 4) setenv("ZMLX_CUDA_GLU_WARPS", "8", 1);
            if (yq) CU(cudaMemset(hq, 0xff, (size_t)((K + 1) * sq) * 4));
            CHECK(cuk_glu_router(&rj2, yq ? ex3 : ex2, n, QPDL) == cudaSuccess);
            unsetenv("ZMLX_CUDA_GLU_WARPS");
            if (yq) { /* written: no 0xff left in the routed rows' and the shared row's int8 tails */
                const int64_t nup = ZCU_STG_NUP(mI / 32);
                uint32_t *hh = malloc((size_t)((K + 1) * sq) * 4);
                CU(cudaStreamSynchronize(S));
                CU(cudaMemcpy(hh, hq, (size_t)((K + 1) * sq) * 4, cudaMemcpyDeviceToHost));
                int64_t left = 0;
                for (int64_t k = 0; k < K + (shared ? 1 : 0); k++)
                    for (int64_t u = 0; u < mI / 32; u++) /* each unit's sum, scale, int8 sum */
                        left += (hh[k * sq + nup * ZCU_STG_SUM + u] == 0xffffffffu) +
                                (hh[k * sq + nup * ZCU_STG_D + u] == 0xffffffffu) +
                                (hh[k * sq + nup * ZCU_STG_QS + u] == 0xffffffffu);
                CHECKF(left == 0, "router_in E=%d K=%d run %d: %lld words of hq not written", E, K, rep, (long long)left);
                free(hh);
            }
            dout lgc = out_new((size_t)E);
            CU(cudaStreamSynchronize(S));
            CU(cudaMemcpy(lgc.p, sig, (size_t)E * 4, cudaMemcpyDeviceToDevice));
            dout *o2[4] = {&lgc, &h2, &w2, &s2};
            int same = 0;
            for (int i = 0; i < 4; i++) {
                CHECKF(out_fetch(o2[i], b[i], "router in the experts' launch"), "router_in: output %d", i);
                same += (i == 3 && !shared) || same_bits(a[i], b[i], sz[i]);
            }
            CU(cudaMemcpy(i2, idx2, (size_t)K * 4, cudaMemcpyDeviceToHost));
            CHECKF(same == 4 && !memcmp(i1, i2, (size_t)K * 4),
                   "router_in E=%d K=%d shared=%d run %d: %d of 4 outputs (logits, SwiGLU, route w, shared) "
                   "and the route match the two launches",
                   E, K, (int)shared, rep, same);
            out_free(&lgc);
            /* the combine after it sets the logits back */
            dout xr = out_from(x, (size_t)d); /* a residual of numbers: the outputs compare */
            const cu_combine cb = {.down = dd, .idx = idx2, .w = w2.p, .K = K, .h = h2.p, .hs = mI,
                                   .sh_down = shared ? dsh : (cuw){0}, .sh_h = shared ? s2.p : NULL, .x = xr.p,
                                   .residual = true, .reset = sig, .nreset = E, .hq = yq ? hq : NULL};
            CHECK(cuk_combine(&cb, QPDL) == cudaSuccess);
            /* with hq, the combine's output bit for bit the one that staged h itself */
            CHECKF(out_fetch(&xr, rep == 0 ? xr0 : xr1, "combine"), "router_in: combine run %d", rep);
            if (rep > 0)
                CHECKF(same_bits(xr0, xr1, (size_t)d), "router_in E=%d K=%d shared=%d run %d: the combine (hq %d) "
                       "differs from run 0's", E, K, (int)shared, rep, (int)yq);
            if (yq && K <= 4 && mI <= 2048) { /* the combine's 4-bit early path reads hq, not h: zeroed, it differs */
                dout xz = out_from(x, (size_t)d);
                cu_combine cz = cb;
                cz.x = xz.p, cz.reset = NULL, cz.nreset = 0;
                CU(cudaMemset(hq, 0, (size_t)((K + 1) * sq) * 4));
                CHECK(cuk_combine(&cz, QPDL) == cudaSuccess);
                CHECKF(out_fetch(&xz, xr1, "combine, hq zeroed") && !same_bits(xr0, xr1, (size_t)d),
                       "router_in E=%d K=%d run %d: the combine ignored hq", E, K, rep);
                out_free(&xz);
            }
            uint32_t *hs = malloc((size_t)E * 4);
            CU(cudaStreamSynchronize(S));
            CU(cudaMemcpy(hs, sig, (size_t)E * 4, cudaMemcpyDeviceToHost));
            int unset = 0;
            for (int e = 0; e < E; e++) unset += hs[e] == ZCU_LOGIT_UNSET;
            CHECKF(unset == E, "router_in: the combine set %d of %d logits back", unset, E);
            free(hs);
            out_free(&xr);
        }
        cudaFree(hq);
        free(xr0), free(xr1);
    }
    for (int i = 0; i < 4; i++) free(a[i]), free(b[i]);
    out_free(&lg1), out_free(&h1), out_free(&w1), out_free(&s1);
    out_free(&h2), out_free(&w2), out_free(&s2);
    cudaFree(idx1), cudaFree(idx2), cudaFree(sig), cudaFree(dx), cudaFree(dnw), cudaFree(db);
    cuw_free(&dg), cuw_free(&du), cuw_free(&dd), cuw_free(&dr), cuw_free(&dsg), cuw_free(&dsu), cuw_free(&dsh);
    hexperts_free(&hx);
    hmat_free(&rm), hmat_free(&sg), hmat_free(&su), hmat_free(&shd);
    free(x), free(nw), free(bias);
}

/*
 * The certified route (cu_mv_route.part, route.cuh's warp_route_cert): o_proj with the
 * router's partials (cu_mv.rp), then the router-in experts' launch routing on them, against
 * o_proj alone, the router's launch and the experts' (cuk_matvec) — the residual, the
 * logits, the route (experts and weights) and the SwiGLU outputs bit for bit, run after
 * run on new attention outputs.  Router rows at a realistic scale (logits of about unit
 * spread): most routes certify (stat[0]), and the largest |estimate - exact| / bound seen
 * stays below 1 — the bound holds with room; `near` (every router row the same but for
 * one element a few bf16 steps apart: scores closer than any bound) every route must wait
 * for the exact logits (stat[1]) and still pick their order.  The router's blocks first
 * and last (ZMLX_CUDA_ROUTER_LAST).  cuk_rpart_blocks says no for an exact-mode queue.
 */
static void case_route_cert(int E, int K, int64_t mI, int64_t d, int64_t oc, bool near, int runs) {
    hexperts hx = hexperts_new(F_Q4, E, mI, d);
    hmat om = hmat_new(F_Q4, d, oc);
    uint16_t *rw16 = malloc((size_t)(E * d) * 2);
    float *x = malloc((size_t)d * 4), *nw = malloc((size_t)d * 4), *bias = malloc((size_t)E * 4);
    float *att = malloc((size_t)oc * 4), *bnd = malloc((size_t)E * 4);
    for (int64_t i = 0; i < E * d; i++) {
        const int64_t e = i / d, c = i % d;
        float v = rng_unif(&cu_rng) * 0.03f;
        if (near) v = c == 0 ? 0.02f + 0.0001f * (float)(e % 5) : (float)((c * 37) % 11) * 0.003f - 0.015f;
        rw16[i] = zf32_to_bf16(v);
    }
    fill(x, (size_t)d, 1.0f);
    for (int64_t i = 0; i < d; i++) nw[i] = 0.75f + 0.25f * (float)(i % 3);
    fill(bias, (size_t)E, near ? 0.0f : 0.05f);
    for (int e = 0; e < E; e++) { /* upload.c's bound: sqrt(d) ||w_e * g||_2, rounded up */
        double ss = 0.0;
        for (int64_t i = 0; i < d; i++) {
            const double v = (double)zbf16_to_f32(rw16[e * d + i]) * (double)nw[i];
            ss += v * v;
        }
        bnd[e] = (float)(sqrt((double)d * ss) * (1.0 + 1e-6));
    }
    const hmat rm = {.w = {.dtype = ZDT_BF16, .rows = E, .cols = d, .data = rw16}, .data = rw16};
    cuw dg = stack_dev(hx.g, E), du = stack_dev(hx.u, E), dr = to_dev(&rm), dom = to_dev(&om);
    float *dnw = dup_dev(nw, (size_t)d * 4), *db = dup_dev(bias, (size_t)E * 4), *dbnd = dup_dev(bnd, (size_t)E * 4);
    float *part, *sig;
    int32_t *idx1, *idx2, *stat;
    CU(cudaMalloc((void **)&part, (size_t)cuk_rpart_floats(d, E) * 4));
    CU(cudaMalloc((void **)&sig, (size_t)E * 4));
    CU(cudaMalloc((void **)&idx1, (size_t)K * 4));
    CU(cudaMalloc((void **)&idx2, (size_t)K * 4));
    CU(cudaMalloc((void **)&stat, 3 * 4));
    CU(cudaMemset(stat, 0, 3 * 4));
    const cu_route_cfg rc = {.n_experts = E, .k = K, .n_group = 1, .topk_group = 1,
                             .norm_topk_prob = true, .scale = 1.8f};
    const size_t nh = (size_t)(K * mI);
    float *a[4], *b[4];
    const size_t sz[4] = {(size_t)d, (size_t)E, nh, (size_t)K};
    for (int i = 0; i < 4; i++) a[i] = malloc(sz[i] * 4), b[i] = malloc(sz[i] * 4);
    int same_runs = 0;
    for (int run = 0; run < runs; run++) {
        fill(att, (size_t)oc, 0.05f);
        float *datt = dup_dev(att, (size_t)oc * 4);
        /* o_proj, the router's launch, the experts' */
        dout x1 = out_from(x, (size_t)d), lg1 = out_new((size_t)E), h1 = out_new(nh), w1 = out_new((size_t)K);
        const cu_mv o1 = {.w = dom, .groups = 1, .rpg = d, .gmod = 1, .x = datt, .y = x1.p, .epi = CU_EPI_ADD};
        const cu_mv rj1 = {.w = dr, .groups = 1, .rpg = E, .gmod = 1, .x = x1.p, .norm = dnw, .eps = 1e-5f, .y = lg1.p};
        const cu_mv ex1 = {.w = dg, .up = du, .routed = true,
                           .route = {.logits = lg1.p, .bias = db, .cfg = rc, .idx = idx1, .w = w1.p},
                           .groups = K, .rpg = mI, .gmod = 1, .x = x1.p, .norm = dnw, .eps = 1e-5f, .y = h1.p,
                           .ys = mI, .epi = CU_EPI_SWIGLU};
        CHECK(cuk_matvec(&o1, 1, QPDL) == cudaSuccess);
        CHECK(cuk_matvec(&rj1, 1, QPDL) == cudaSuccess);
        CHECK(cuk_matvec(&ex1, 1, QPDL) == cudaSuccess);
        /* o_proj with the partials, the experts' launch routing on them */
        dout x2 = out_from(x, (size_t)d), h2 = out_new(nh), w2 = out_new((size_t)K);
        cu_mv o2 = o1;
        o2.y = x2.p;
        o2.rp = (cu_rpart){.w = dr, .g = dnw, .out = part};
        const int32_t nb = cuk_rpart_blocks(&o2, QPDL);
        CHECKF(nb == (int32_t)((d + 15) / 16), "route_cert d=%lld: cuk_rpart_blocks %d", (long long)d, (int)nb);
        CHECKF(cuk_rpart_blocks(&o2, (cu_q){S, true, false}) == 0, "route_cert: partials in exact mode");
        CU(cudaMemset(sig, 0xff, (size_t)E * 4));
        CHECK(cuk_matvec(&o2, 1, QPDL) == cudaSuccess);
        cu_mv rj2 = rj1, ex2 = ex1;
        rj2.x = x2.p, rj2.y = sig;
        ex2.x = x2.p, ex2.y = h2.p, ex2.route.logits = sig, ex2.route.idx = idx2, ex2.route.w = w2.p;
        ex2.route.part = part, ex2.route.nparts = nb, ex2.route.bound = dbnd, ex2.route.stat = stat;
        CHECKF(cuk_glu_router_ok(&rj2, &ex2, 1, QPDL), "route_cert E=%d K=%d: cuk_glu_router_ok", E, K);
        if (run & 1) setenv("ZMLX_CUDA_ROUTER_LAST", "1", 1);
        CHECK(cuk_glu_router(&rj2, &ex2, 1, QPDL) == cudaSuccess);
        unsetenv("ZMLX_CUDA_ROUTER_LAST");
        dout lg2 = out_new((size_t)E);
        CU(cudaStreamSynchronize(S));
        CU(cudaMemcpy(lg2.p, sig, (size_t)E * 4, cudaMemcpyDeviceToDevice));
        dout *o1s[4] = {&x1, &lg1, &h1, &w1}, *o2s[4] = {&x2, &lg2, &h2, &w2};
        int same = 0;
        for (int i = 0; i < 4; i++) {
            CHECKF(out_fetch(o1s[i], a[i], "o, router, experts") && out_fetch(o2s[i], b[i], "certified route"),
                   "route_cert: output %d", i);
            same += same_bits(a[i], b[i], sz[i]);
        }
        int32_t i1[ZCU_ROUTE_MAX_K], i2[ZCU_ROUTE_MAX_K];
        CU(cudaMemcpy(i1, idx1, (size_t)K * 4, cudaMemcpyDeviceToHost));
        CU(cudaMemcpy(i2, idx2, (size_t)K * 4, cudaMemcpyDeviceToHost));
        CHECKF(same == 4 && !memcmp(i1, i2, (size_t)K * 4),
               "route_cert E=%d K=%d near=%d run %d: %d of 4 outputs (residual, logits, SwiGLU, route w) and "
               "the route (%d %d ...; want %d %d ...) match",
               E, K, (int)near, run, same, i2[0], i2[1], i1[0], i1[1]);
        same_runs += same == 4;
        for (int i = 0; i < 4; i++) out_free(o1s[i]), out_free(o2s[i]);
        cudaFree(datt);
    }
    int32_t st[3];
    CU(cudaMemcpy(st, stat, sizeof st, cudaMemcpyDeviceToHost));
    float worst;
    memcpy(&worst, &st[2], 4);
    printf("route_cert E=%d K=%d d=%lld near=%d: %d certified, %d waited, |estimate - exact| <= %.3g of the "
           "bound, %d of %d runs the same bits\n",
           E, K, (long long)d, (int)near, st[0], st[1], (double)worst, same_runs, runs);
    CHECKF(st[0] + st[1] == runs, "route_cert: %d + %d routes counted for %d runs", st[0], st[1], runs);
    if (near) {
        CHECKF(st[0] == 0, "route_cert near: %d routes certified on scores closer than their bound", st[0]);
    } else {
        CHECKF(st[0] * 2 > runs, "route_cert E=%d K=%d: only %d of %d routes certified", E, K, st[0], runs);
        CHECKF(worst < 1.0f && worst > 0.0f, "route_cert: |estimate - exact| reached %g of the bound", (double)worst);
    }
    for (int i = 0; i < 4; i++) free(a[i]), free(b[i]);
    cudaFree(part), cudaFree(sig), cudaFree(idx1), cudaFree(idx2), cudaFree(stat);
    cudaFree(dnw), cudaFree(db), cudaFree(dbnd);
    cuw_free(&dg), cuw_free(&du), cuw_free(&dr), cuw_free(&dom);
    hexperts_free(&hx);
    hmat_free(&om);
    free(rw16), free(x), free(nw), free(bias), free(att), free(bnd);
}

/*
 * Expert slices (several GPUs, backend/cuda/ep.h): rank r of R holds experts
 * [e0, e0 + ne) as its own stack and runs the experts' products with cu_mv.e0 / ne —
 * routed gate + up (idx) + silu_mul, the fused route + SwiGLU (moe_mlp), the down
 * products.  A slot the rank does not hold is +0.0 (sign bit clear), a slot it holds has
 * the one-GPU bits, and the ranks' sum of the [K, d] down buffer (what the all-reduce
 * computes) is the one-GPU buffer bit for bit.
 */
static void case_moe_slices(wfmt f, int E, int K, int64_t mI, int64_t d, int R) {
    char fn[48];
    wfmt_name(f, fn, sizeof fn);
    hexperts hx = hexperts_new(f, E, mI, d);
    hmat *g = hx.g, *u = hx.u, *dn = hx.dn;
    cuw dg = stack_dev(g, E), du = stack_dev(u, E), dd = stack_dev(dn, E);
    float *x = malloc((size_t)d * 4), *lg = malloc((size_t)E * 4), *bias = malloc((size_t)E * 4);
    fill(x, (size_t)d, 1.0f);
    fill(lg, (size_t)E, 3.0f);
    fill(bias, (size_t)E, 0.1f);
    float *dx = dup_dev(x, (size_t)d * 4), *dl = dup_dev(lg, (size_t)E * 4), *db = dup_dev(bias, (size_t)E * 4);
    const cu_route_cfg rc = {.n_experts = E, .k = K, .n_group = 1, .topk_group = 1,
                             .norm_topk_prob = true, .scale = 1.8f};
    int32_t *ridx, i0[ZCU_ROUTE_MAX_K];
    CU(cudaMalloc((void **)&ridx, (size_t)K * 4));
    dout rw = out_new((size_t)K), h0 = out_new((size_t)(K * mI)), de0 = out_new((size_t)(K * d));
    CHECK(cuk_route(rc, dl, db, 1, ridx, rw.p, Q) == cudaSuccess);
    cu_mv jf = {.w = dg, .up = du, .routed = true, .route = {.logits = dl, .bias = db, .cfg = rc},
                .groups = K, .rpg = mI, .gmod = 1, .x = dx, .y = h0.p, .ys = mI, .epi = CU_EPI_SWIGLU};
    CHECK(cuk_matvec(&jf, 1, Q) == cudaSuccess);
    cu_mv jd = {.w = dd, .idx = ridx, .groups = K, .rpg = d, .gmod = 1, .x = h0.p, .xs = mI,
                .y = de0.p, .ys = d};
    CHECK(cuk_matvec(&jd, 1, Q) == cudaSuccess);
    float *hh0 = malloc((size_t)(K * mI) * 4), *hde0 = malloc((size_t)(K * d) * 4);
    float *h1 = malloc((size_t)(K * mI) * 4), *h2 = malloc((size_t)(K * mI) * 4);
    float *dr = malloc((size_t)(K * d) * 4), *sum = calloc((size_t)(K * d), 4);
    CHECKF(out_fetch(&h0, hh0, "slices: one-GPU SwiGLU") && out_fetch(&de0, hde0, "slices: one-GPU down"),
           "slices %s outputs", fn);
    CU(cudaMemcpy(i0, ridx, (size_t)K * 4, cudaMemcpyDeviceToHost));
    for (int r = 0; r < R; r++) {
        const int32_t base = E / R, extra = E % R, ne = base + (r < extra);
        const int32_t e0 = r * base + (r < extra ? r : extra);
        cuw sg = stack_dev(g + e0, ne), su = stack_dev(u + e0, ne), sdn = stack_dev(dn + e0, ne);
        dout ge = out_new((size_t)(K * mI)), ue = out_new((size_t)(K * mI));
        dout fh = out_new((size_t)(K * mI)), de = out_new((size_t)(K * d));
        cu_mv j2[2] = {{.w = sg, .idx = ridx, .groups = K, .rpg = mI, .gmod = 1, .x = dx, .y = ge.p,
                        .ys = mI, .e0 = e0, .ne = ne},
                       {.w = su, .idx = ridx, .groups = K, .rpg = mI, .gmod = 1, .x = dx, .y = ue.p,
                        .ys = mI, .e0 = e0, .ne = ne}};
        CHECK(cuk_matvec(j2, 2, Q) == cudaSuccess);
        CHECK(cuk_silu_mul(ge.p, ue.p, K * mI, ge.p, Q) == cudaSuccess);
        cu_mv js = jf;
        js.w = sg, js.up = su, js.y = fh.p, js.e0 = e0, js.ne = ne;
        CHECK(cuk_matvec(&js, 1, QPDL) == cudaSuccess);
        cu_mv jr = {.w = sdn, .idx = ridx, .groups = K, .rpg = d, .gmod = 1, .x = fh.p, .xs = mI,
                    .y = de.p, .ys = d, .e0 = e0, .ne = ne};
        CHECK(cuk_matvec(&jr, 1, Q) == cudaSuccess);
        CHECKF(out_fetch(&ge, h1, "slice glu") && out_fetch(&fh, h2, "slice fused glu") &&
                   out_fetch(&de, dr, "slice down"), "slices %s rank %d outputs", fn, r);
        int64_t bad = 0;
        for (int k = 0; k < K; k++) {
            const bool own = i0[k] >= e0 && i0[k] < e0 + ne;
            for (int64_t i = 0; i < mI; i++) {
                const int64_t o = k * mI + i;
                bad += f2u(h1[o]) != f2u(h2[o]) || (own ? f2u(h1[o]) != f2u(hh0[o]) : f2u(h1[o]) != 0);
            }
            for (int64_t i = 0; i < d; i++) {
                const int64_t o = k * d + i;
                bad += own ? f2u(dr[o]) != f2u(hde0[o]) : f2u(dr[o]) != 0;
                sum[o] += dr[o];
            }
        }
        CHECKF(bad == 0, "slices %s E=%d K=%d rank %d of %d (experts %d-%d): %lld values differ "
               "from one GPU or are not +0.0", fn, E, K, r, R, e0, e0 + ne - 1, (long long)bad);
        out_free(&ge);
        out_free(&ue);
        out_free(&fh);
        out_free(&de);
        cuw_free(&sg);
        cuw_free(&su);
        cuw_free(&sdn);
    }
    CHECKF(same_bits(sum, hde0, (size_t)(K * d)), "slices %s E=%d K=%d R=%d: the ranks' sum of the "
           "slot buffer differs from one GPU", fn, E, K, R);
    out_free(&rw);
    out_free(&h0);
    out_free(&de0);
    cudaFree(ridx);
    cudaFree(dx);
    cudaFree(dl);
    cudaFree(db);
    cuw_free(&dg);
    cuw_free(&du);
    cuw_free(&dd);
    hexperts_free(&hx);
    free(x);
    free(lg);
    free(bias);
    free(hh0);
    free(hde0);
    free(h1);
    free(h2);
    free(dr);
    free(sum);
}

/* Several products in one call (mixed kinds: split into runs) give the same bits as one
   call each; a SwiGLU partner of another layout is refused. */
static void case_multi(void) {
    hmat a = hmat_new(F_Q4, 576, 2048), b = hmat_new(F_BF16, 64, 2048);
    hmat c = hmat_new(F_Q4, 768, 2048), u = hmat_new(F_Q4, 768, 2048);
    float *x = malloc(2048 * 4);
    fill(x, 2048, 1.0f);
    float *dx = dup_dev(x, 2048 * 4);
    cuw da = to_dev(&a), db = to_dev(&b), dc = to_dev(&c), du = to_dev(&u);
    const int64_t outs[3] = {576, 64, 768};
    dout o[3], one[3];
    for (int i = 0; i < 3; i++) {
        o[i] = out_new((size_t)outs[i]);
        one[i] = out_new((size_t)outs[i]);
    }
    cu_mv j[3] = {{.w = da, .groups = 1, .rpg = 576, .gmod = 1, .x = dx, .y = o[0].p},
                  {.w = db, .groups = 1, .rpg = 64, .gmod = 1, .x = dx, .y = o[1].p},
                  {.w = dc, .up = du, .groups = 1, .rpg = 768, .gmod = 1, .x = dx, .y = o[2].p,
                   .epi = CU_EPI_SWIGLU}};
    CHECK(cuk_matvec(j, 3, Q) == cudaSuccess);
    int64_t same = 0;
    for (int i = 0; i < 3; i++) {
        cu_mv s1 = j[i];
        s1.y = one[i].p;
        CHECK(cuk_matvec(&s1, 1, Q) == cudaSuccess);
        float *h1 = malloc((size_t)outs[i] * 4), *h2 = malloc((size_t)outs[i] * 4);
        CHECKF(out_fetch(&o[i], h1, "multi") && out_fetch(&one[i], h2, "single"), "multi job %d", i);
        same += same_bits(h1, h2, (size_t)outs[i]);
        free(h1);
        free(h2);
        out_free(&o[i]);
        out_free(&one[i]);
    }
    CHECKF(same == 3, "matvec: %lld of 3 jobs of a batch match their single launch", (long long)same);
    { /* a large dense SwiGLU (two rows a batch by its size) in the pipelined loop, one
         output a batch, against the plain loop (ZMLX_CUDA_GLU_PIPE=0); the matrices from a
         copy of the generator, so the later cases draw what they drew before */
        const trng keep = cu_rng;
        hmat g2 = hmat_new(F_Q4, 6144, 1024), u2 = hmat_new(F_Q4, 6144, 1024);
        cu_rng = keep;
        float *nw = malloc(1024 * 4);
        for (int i = 0; i < 1024; i++) nw[i] = 0.75f + 0.25f * (float)(i % 3);
        float *dnw = dup_dev(nw, 1024 * 4);
        cuw dg2 = to_dev(&g2), du2 = to_dev(&u2);
        const cu_mv jg = {.w = dg2, .up = du2, .groups = 1, .rpg = 6144, .gmod = 1, .x = dx, .norm = dnw,
                          .eps = 1e-5f, .epi = CU_EPI_SWIGLU};
        CHECKF(knob_same(jg, 6144, "ZMLX_CUDA_GLU_PIPE"),
               "matvec: a dense SwiGLU's pipelined loop differs from its plain one");
        cuw_free(&dg2);
        cuw_free(&du2);
        hmat_free(&g2);
        hmat_free(&u2);
        cudaFree(dnw);
        free(nw);
    }
    { /* q_a + kv_a: two jobs normalised on load in one launch (their rows loaded before the
         PDL wait, blocks of 16 warps) give each one's single launch, the batch loop's and
         blocks of 8 warps' (ZMLX_CUDA_LEAN_WARPS=8) bits */
        float *nw = malloc(2048 * 4);
        fill(nw, 2048, 0.5f);
        float *dnw = dup_dev(nw, 2048 * 4);
        const int64_t n2[2] = {768, 576};
        dout pr[2], sg[2], lp[2], w8[2];
        cu_mv q2[2], q3[2], q4[2];
        for (int i = 0; i < 2; i++) {
            pr[i] = out_new((size_t)n2[i]), sg[i] = out_new((size_t)n2[i]), lp[i] = out_new((size_t)n2[i]);
            w8[i] = out_new((size_t)n2[i]);
            q2[i] = (cu_mv){.w = i ? da : dc, .groups = 1, .rpg = n2[i], .gmod = 1, .x = dx, .norm = dnw,
                            .eps = 1e-5f, .y = pr[i].p};
            q3[i] = q4[i] = q2[i];
            q3[i].y = lp[i].p;
            q4[i].y = w8[i].p;
        }
        CHECK(cuk_matvec(q2, 2, QPDL) == cudaSuccess);
        setenv("ZMLX_CUDA_MV_EARLY", "0", 1);
        CHECK(cuk_matvec(q3, 2, QPDL) == cudaSuccess);
        unsetenv("ZMLX_CUDA_MV_EARLY");
        setenv("ZMLX_CUDA_LEAN_WARPS", "8", 1);
        CHECK(cuk_matvec(q4, 2, QPDL) == cudaSuccess);
        unsetenv("ZMLX_CUDA_LEAN_WARPS");
        int64_t ok2 = 0;
        for (int i = 0; i < 2; i++) {
            cu_mv s1 = q2[i];
            s1.y = sg[i].p;
            CHECK(cuk_matvec(&s1, 1, QPDL) == cudaSuccess);
            float *h1 = malloc((size_t)n2[i] * 4), *h2 = malloc((size_t)n2[i] * 4), *h3 = malloc((size_t)n2[i] * 4);
            float *h4 = malloc((size_t)n2[i] * 4);
            CHECKF(out_fetch(&pr[i], h1, "pair") && out_fetch(&sg[i], h2, "single") && out_fetch(&lp[i], h3, "loop") &&
                       out_fetch(&w8[i], h4, "blocks of 8 warps"),
                   "norm pair job %d", i);
            ok2 += same_bits(h1, h2, (size_t)n2[i]) && same_bits(h1, h3, (size_t)n2[i]) &&
                   same_bits(h1, h4, (size_t)n2[i]);
            free(h1);
            free(h2);
            free(h3);
            free(h4);
            out_free(&pr[i]);
            out_free(&sg[i]);
            out_free(&lp[i]);
            out_free(&w8[i]);
        }
        CHECKF(ok2 == 2, "matvec: %lld of 2 jobs normalised on load in one launch match their single launch, "
                         "the batch loop and blocks of 8 warps", (long long)ok2);
        cudaFree(dnw);
        free(nw);
    }
    cu_mv bad = j[2];
    bad.up = db; /* up of another kind and shape: refused */
    CHECK(cuk_matvec(&bad, 1, Q) == cudaErrorInvalidValue);
    (void)cudaGetLastError();
    cuw ws[] = {da, db, dc, du};
    for (int i = 0; i < 4; i++) cuw_free(&ws[i]);
    cudaFree(dx);
    free(x);
    hmat_free(&a);
    hmat_free(&b);
    hmat_free(&c);
    hmat_free(&u);
}

/* Fast mode's 4-bit kernel (kernels_gemm_q4.cu) over the bf16 copy of x [nx, cols]
   against the tile kernel's y [ny, ldy] of the same call, bit for bit (the same bf16
   operands and the same sequence of tensor-core products); nothing where it does not take
   the layout (then says so for a 4-bit one). */
static void q4_same(cuw dw, const float *dx, int64_t nx, int64_t cols, const int32_t *xrows, const float *y,
                    int64_t ny, int64_t ldy, int64_t n, const int32_t *goff, int64_t groups, int64_t tot,
                    const char *what) {
    if (!tq_fast) return;
    if (!cuk_gemm_q4_ok(dw)) {
        if (dw.kind == ZW_AFFINE4) printf("%s: not the 4-bit kernel's layout, tile kernel only\n", what);
        return;
    }
    void *xb;
    CU(cudaMalloc(&xb, (size_t)(nx * cols) * 2));
    CHECK(cuk_to_bf16(dx, cols, nx, cols, xb, Q) == cudaSuccess);
    /* the default, then the measuring knob's form: a grid slice per group */
    static const char *const knobs[][2] = {{NULL, NULL}, {"ZMLX_CUDA_Q4_COMPACT", "0"}};
    float *y4 = malloc((size_t)(ny * ldy) * 4);
    for (size_t v = 0; v < sizeof knobs / sizeof knobs[0]; v++) {
        if (knobs[v][0]) setenv(knobs[v][0], knobs[v][1], 1);
        dout o = out_new((size_t)(ny * ldy));
        CHECKF(cuk_gemm_q4(dw, xb, cols, xrows, o.p, ldy, n, goff, groups, tot, Q) == cudaSuccess, "%s: q4 launch",
               what);
        CHECKF(out_fetch(&o, y4, what), "%s: q4 wrote outside its output", what);
        int64_t same = 0;
        for (int64_t i = 0; i < ny * ldy; i++) same += f2u(y4[i]) == f2u(y[i]);
        CHECKF(same == ny * ldy, "%s%s%s: the 4-bit kernel differs from the tile kernel in %lld of %lld values", what,
               knobs[v][0] ? " " : "", knobs[v][0] ? knobs[v][0] : "", (long long)(ny * ldy - same),
               (long long)(ny * ldy));
        out_free(&o);
        if (knobs[v][0]) unsetenv(knobs[v][0]);
    }
    free(y4);
    cudaFree(xb);
}

/* Y = X W^T over n tokens, plain and with a row gather. */
static void case_gemm(wfmt f, int64_t rows, int64_t cols, int64_t n) {
    char fn[48];
    wfmt_name(f, fn, sizeof fn);
    hmat m = hmat_new(f, rows, cols);
    const int64_t nx = n + 3;
    float *x = malloc((size_t)(nx * cols) * 4), *y = malloc((size_t)(n * rows) * 4);
    fill(x, (size_t)(nx * cols), 1.0f);
    int32_t *rows_of = malloc((size_t)n * 4);
    for (int64_t j = 0; j < n; j++) rows_of[j] = (int32_t)(rng_u64(&cu_rng) % (uint64_t)nx);
    cuw dw = to_dev(&m);
    float *dx = dup_dev(x, (size_t)(nx * cols) * 4);
    int32_t *drows = dup_dev(rows_of, (size_t)n * 4);
    for (int gather = 0; gather < 2; gather++) {
        dout o = out_new((size_t)(n * rows));
        CHECK(cuk_gemm(dw, dx, cols, gather ? drows : NULL, o.p, rows, n, NULL, 0, Q) == cudaSuccess);
        CHECKF(out_fetch(&o, y, "gemm"), "gemm %s", fn);
        dotchk c = {0};
        for (int64_t j = 0; j < n; j++)
            for (int64_t r = 0; r < rows; r++) {
                const float *xj = x + (gather ? rows_of[j] : j) * cols;
                double ex, as, big;
                if (tq_fast) { /* the tensor-core kernel: bf16 operands */
                    dot_bf16(&m.w, r, xj, &ex, &as, &big);
                    dot_check_tc(&c, y[j * rows + r], ex, as, big, cols);
                } else {
                    dot_exact(&m.w, r, xj, &ex, &as);
                    dot_check(&c, y[j * rows + r], ex, as, cols);
                }
            }
        DOTCHK_OK(c, "gemm%s %s [%lld, %lld] n=%lld gather=%d", tq_fast ? " tc" : "", fn, (long long)rows,
                  (long long)cols, (long long)n, gather);
        q4_same(dw, dx, nx, cols, gather ? drows : NULL, y, n, rows, n, NULL, 0, 0, "gemm q4");
        out_free(&o);
    }
    cuw_free(&dw);
    cudaFree(dx);
    cudaFree(drows);
    hmat_free(&m);
    free(x);
    free(y);
    free(rows_of);
}

/* The chunk's dense products through cuBLAS on bf16 copies (blas.c), fast mode: the same
   bound as the tile kernel's (the same bf16 operands, another order of the sums), into
   rows ldy apart from rows ldx apart, and the bf16 copies themselves bit for bit against
   the host's rounding of deq8's values.  Skipped where libcublas does not load. */
static void case_gemm_blas(zcu_blas *b, wfmt f, int64_t rows, int64_t cols, int64_t n) {
    char fn[48];
    wfmt_name(f, fn, sizeof fn);
    if (!zcu_blas_ready(b)) {
        printf("gemm blas %s: libcublas not loaded here, skipped\n", fn);
        return;
    }
    hmat m = hmat_new(f, rows, cols);
    const int64_t ldx = cols + 4, ldy = rows + 3;
    float *x = malloc((size_t)(n * ldx) * 4), *y = malloc((size_t)(n * ldy) * 4);
    fill(x, (size_t)(n * ldx), 1.0f);
    cuw dw = to_dev(&m);
    float *dx = dup_dev(x, (size_t)(n * ldx) * 4);
    dout o = out_new((size_t)(n * ldy));
    zerr e = {{0}};
    const zmlx_status st = zcu_blas_gemm(b, &dw, dx, ldx, o.p, ldy, n, Q, &e);
    CHECKF(st == ZMLX_OK, "gemm blas %s: %s", fn, e.msg);
    CHECKF(out_fetch(&o, y, "gemm blas"), "gemm blas %s: a write past its rows", fn);
    dotchk c = {0};
    int64_t kept = 0;
    for (int64_t j = 0; j < n; j++) {
        for (int64_t r = 0; r < rows; r++) {
            double ex, as, big;
            dot_bf16(&m.w, r, x + j * ldx, &ex, &as, &big);
            dot_check_tc(&c, y[j * ldy + r], ex, as, big, cols);
        }
        for (int64_t r = rows; r < ldy; r++) kept += f2u(y[j * ldy + r]) == CANARY;
    }
    DOTCHK_OK(c, "gemm blas %s [%lld, %lld] n=%lld", fn, (long long)rows, (long long)cols, (long long)n);
    CHECKF(kept == n * (ldy - rows), "gemm blas %s: wrote between its rows (%lld of %lld kept)", fn,
           (long long)kept, (long long)(n * (ldy - rows)));
    /* the bf16 weight copy: deq8's values rounded to nearest even */
    uint16_t *w16 = malloc((size_t)(rows * cols) * 2);
    CU(cudaStreamSynchronize(S));
    CU(cudaMemcpy(w16, b->w16, (size_t)(rows * cols) * 2, cudaMemcpyDeviceToHost));
    int64_t same = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < cols; k++) {
            const uint32_t u = f2u(zweight_get(&m.w, r, k));
            const uint16_t want = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16); /* finite values */
            same += w16[r * cols + k] == want;
        }
    CHECKF(same == rows * cols, "gemm blas %s: %lld of %lld bf16 weights differ from the rounded dequantized values",
           fn, (long long)(rows * cols - same), (long long)(rows * cols));
    free(w16);
    out_free(&o);
    cuw_free(&dw);
    cudaFree(dx);
    hmat_free(&m);
    free(x);
    free(y);
}

/* The host grouping of moe.c's route(): goff, list (token of each row), slot. */
static void group_ref(const int32_t *idx, int64_t n, int64_t K, int64_t E, int32_t *goff,
                      int32_t *list, int32_t *slot) {
    int32_t *cnt = calloc((size_t)E, 4);
    for (int64_t i = 0; i < n * K; i++) cnt[idx[i]]++;
    goff[0] = 0;
    for (int64_t e = 0; e < E; e++) {
        goff[e + 1] = goff[e] + cnt[e];
        cnt[e] = 0;
    }
    for (int64_t t = 0; t < n; t++)
        for (int64_t k = 0; k < K; k++) {
            int32_t e = idx[t * K + k], s = goff[e] + cnt[e]++;
            slot[t * K + k] = s;
            list[s] = (int32_t)t;
        }
    free(cnt);
}

/* K distinct experts of E for each of n tokens (some experts left without a token). */
static void pick_experts(int32_t *idx, int E, int64_t K, int64_t n) {
    for (int64_t t = 0; t < n; t++)
        for (int64_t k = 0; k < K; k++) {
            int32_t e;
            bool dup;
            do {
                e = (int32_t)(rng_u64(&cu_rng) % (uint64_t)E);
                dup = false;
                for (int64_t j = 0; j < k; j++) dup |= idx[t * K + j] == e;
            } while (dup);
            idx[t * K + k] = e;
        }
}

/* cuk_moe_group on the device (outputs poisoned first) against moe.c's grouping of the
   same choices; the device's offsets and row list stay in *dgoff / *dlist. */
static void group_dev(const int32_t *idx, int64_t n, int64_t K, int E, const char *what, int32_t **dgoff,
                      int32_t **dlist) {
    int32_t *goff = malloc((size_t)(E + 1) * 4), *list = malloc((size_t)(n * K) * 4);
    int32_t *slot = malloc((size_t)(n * K) * 4);
    group_ref(idx, n, K, E, goff, list, slot);
    int32_t *didx = dup_dev(idx, (size_t)(n * K) * 4), *dslot;
    CU(cudaMalloc((void **)dgoff, (size_t)(E + 1) * 4));
    CU(cudaMalloc((void **)dlist, (size_t)(n * K) * 4));
    CU(cudaMalloc((void **)&dslot, (size_t)(n * K) * 4));
    CU(cudaMemset(*dgoff, 0xff, (size_t)(E + 1) * 4));
    CU(cudaMemset(*dlist, 0xff, (size_t)(n * K) * 4));
    CU(cudaMemset(dslot, 0xff, (size_t)(n * K) * 4));
    CHECK(cuk_moe_group(didx, n, K, E, *dgoff, *dlist, dslot, Q) == cudaSuccess);
    int32_t *hg = malloc((size_t)(E + 1) * 4), *hl = malloc((size_t)(n * K) * 4), *hs = malloc((size_t)(n * K) * 4);
    CU(cudaMemcpy(hg, *dgoff, (size_t)(E + 1) * 4, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(hl, *dlist, (size_t)(n * K) * 4, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(hs, dslot, (size_t)(n * K) * 4, cudaMemcpyDeviceToHost));
    CHECKF(!memcmp(hg, goff, (size_t)(E + 1) * 4) && !memcmp(hl, list, (size_t)(n * K) * 4) &&
               !memcmp(hs, slot, (size_t)(n * K) * 4),
           "moe_group differs from moe.c's grouping (%s: E=%d K=%lld n=%lld)", what, E, (long long)K, (long long)n);
    CU(cudaFree(didx));
    CU(cudaFree(dslot));
    free(goff), free(list), free(slot), free(hg), free(hl), free(hs);
}

/* cuk_moe_group alone, up to whole chunks (1,024 tokens) and Kimi's 384 experts x 8;
   skewed picks (most tokens on few experts) included. */
static void case_group(int E, int64_t K, int64_t n, bool skew) {
    int32_t *idx = malloc((size_t)(n * K) * 4), *dgoff, *dlist;
    pick_experts(idx, skew ? (int)K + 3 : E, K, n);
    if (skew) /* the first K + 3 experts' numbers spread over E */
        for (int64_t i = 0; i < n * K; i++) idx[i] = (int32_t)((idx[i] * 7919) % E);
    group_dev(idx, n, K, E, skew ? "skewed" : "uniform", &dgoff, &dlist);
    CU(cudaFree(dgoff));
    CU(cudaFree(dlist));
    free(idx);
}

/* The prefill MoE: grouping on the device, then a grouped GEMM over the gathered rows. */
static void case_grouped(wfmt f, int E, int64_t K, int64_t rows, int64_t cols, int64_t n) {
    char fn[48];
    wfmt_name(f, fn, sizeof fn);
    int32_t *idx = malloc((size_t)(n * K) * 4);
    pick_experts(idx, E, K, n); /* K distinct experts per token */
    int32_t *goff = malloc((size_t)(E + 1) * 4), *list = malloc((size_t)(n * K) * 4);
    int32_t *slot = malloc((size_t)(n * K) * 4);
    group_ref(idx, n, K, E, goff, list, slot); /* the rows each choice's output lands in */
    int32_t *dgoff, *dlist;
    group_dev(idx, n, K, E, fn, &dgoff, &dlist);
    hmat *ms = malloc((size_t)E * sizeof *ms);
    for (int e = 0; e < E; e++) ms[e] = hmat_new(f, rows, cols);
    cuw dw = stack_dev(ms, E);
    float *x = malloc((size_t)(n * cols) * 4), *y = malloc((size_t)(n * K * rows) * 4);
    fill(x, (size_t)(n * cols), 1.0f);
    float *dx = dup_dev(x, (size_t)(n * cols) * 4);
    dout o = out_new((size_t)(n * K * rows));
    CHECK(cuk_gemm(dw, dx, cols, dlist, o.p, rows, n, dgoff, E, Q) == cudaSuccess);
    CHECKF(out_fetch(&o, y, "grouped gemm"), "grouped gemm %s", fn);
    dotchk c = {0};
    for (int64_t t = 0; t < n; t++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t r = 0; r < rows; r++) {
                const zweight *wk = &ms[idx[t * K + k]].w;
                const float yk = y[(int64_t)slot[t * K + k] * rows + r];
                double ex, as, big;
                if (tq_fast) {
                    dot_bf16(wk, r, x + t * cols, &ex, &as, &big);
                    dot_check_tc(&c, yk, ex, as, big, cols);
                } else {
                    dot_exact(wk, r, x + t * cols, &ex, &as);
                    dot_check(&c, yk, ex, as, cols);
                }
            }
    DOTCHK_OK(c, "grouped gemm%s %s E=%d n=%lld", tq_fast ? " tc" : "", fn, E, (long long)n);
    q4_same(dw, dx, n, cols, dlist, y, n * K, rows, n, dgoff, E, n * K, "grouped gemm q4");
    q4_same(dw, dx, n, cols, dlist, y, n * K, rows, n, dgoff, E, 0, "grouped gemm q4 (no total)");
    if (tq_fast && cuk_gemm_q4_ok(dw)) { /* the pair (gate and up) in one launch: each as alone */
        hmat *m2 = malloc((size_t)E * sizeof *m2);
        for (int e = 0; e < E; e++) m2[e] = hmat_new(f, rows, cols);
        cuw dw2 = stack_dev(m2, E);
        float *y2 = malloc((size_t)(n * K * rows) * 4), *p1 = malloc((size_t)(n * K * rows) * 4);
        float *p2 = malloc((size_t)(n * K * rows) * 4);
        dout o2 = out_new((size_t)(n * K * rows));
        CHECK(cuk_gemm(dw2, dx, cols, dlist, o2.p, rows, n, dgoff, E, Q) == cudaSuccess);
        CHECKF(out_fetch(&o2, y2, "grouped gemm 2"), "grouped gemm 2 %s", fn);
        void *xb;
        CU(cudaMalloc(&xb, (size_t)(n * cols) * 2));
        CHECK(cuk_to_bf16(dx, cols, n, cols, xb, Q) == cudaSuccess);
        for (int knob = 0; knob < 2; knob++) { /* one launch, then ZMLX_CUDA_Q4_PAIR=0's two */
            if (knob) setenv("ZMLX_CUDA_Q4_PAIR", "0", 1);
            dout a = out_new((size_t)(n * K * rows)), b = out_new((size_t)(n * K * rows));
            CHECK(cuk_gemm_q4_pair(dw, dw2, xb, cols, dlist, a.p, b.p, rows, n, dgoff, E, n * K, Q) == cudaSuccess);
            CHECKF(out_fetch(&a, p1, "q4 pair") && out_fetch(&b, p2, "q4 pair"), "q4 pair %s: guards", fn);
            int64_t same = 0;
            for (int64_t i = 0; i < n * K * rows; i++) same += (f2u(p1[i]) == f2u(y[i])) + (f2u(p2[i]) == f2u(y2[i]));
            CHECKF(same == 2 * n * K * rows, "q4 pair %s E=%d n=%lld knob=%d: %lld of %lld values differ", fn, E,
                   (long long)n, knob, (long long)(2 * n * K * rows - same), (long long)(2 * n * K * rows));
            out_free(&a);
            out_free(&b);
            if (knob) unsetenv("ZMLX_CUDA_Q4_PAIR");
        }
        cudaFree(xb);
        out_free(&o2);
        cuw_free(&dw2);
        for (int e = 0; e < E; e++) hmat_free(&m2[e]);
        free(m2);
        free(y2);
        free(p1);
        free(p2);
    }
    out_free(&o);
    cuw_free(&dw);
    cudaFree(dx);
    cudaFree(dgoff);
    cudaFree(dlist);
    for (int e = 0; e < E; e++) hmat_free(&ms[e]);
    free(ms);
    free(idx);
    free(goff);
    free(list);
    free(slot);
    free(x);
    free(y);
}

/* ------------------------------------------------------------------ elementwise */

static bool near_rel(const float *a, const float *ref, size_t n, double rel, double abs_,
                     double *worst) {
    bool ok = true;
    *worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]), b = rel * fabs(ref[i]) + abs_;
        if (isnan(a[i]) || d > b) ok = false;
        if (d / b > *worst) *worst = d / b;
    }
    return ok;
}

static void case_norms(int64_t d, int64_t n) {
    const float eps = 1e-5f;
    float *x = malloc((size_t)(n * d) * 4), *f = malloc((size_t)(n * d) * 4), *w = malloc((size_t)d * 4);
    float *y = malloc((size_t)(n * d) * 4), *ref = malloc((size_t)(n * d) * 4);
    fill(x, (size_t)(n * d), 3.0f);
    fill(f, (size_t)(n * d), 1.0f);
    fill(w, (size_t)d, 1.0f);
    float *dx = dup_dev(x, (size_t)(n * d) * 4), *dw = dup_dev(w, (size_t)d * 4);
    float *df = dup_dev(f, (size_t)(n * d) * 4);
    dout o = out_new((size_t)(n * d));
    CHECK(cuk_rmsnorm(dx, d, dw, d, eps, o.p, d, n, Q) == cudaSuccess);
    CHECKF(out_fetch(&o, y, "rmsnorm"), "rmsnorm d=%lld", (long long)d);
    for (int64_t t = 0; t < n; t++) zop_rmsnorm(x + t * d, w, d, eps, ref + t * d);
    double worst;
    CHECKF(near_rel(y, ref, (size_t)(n * d), 2e-6, 1e-7, &worst), "rmsnorm d=%lld worst %.3g",
           (long long)d, worst);
    /* x += f, xn = rmsnorm(x): x bit for bit, xn within a few ulps */
    CHECK(cuk_add_rmsnorm(dx, df, dw, d, eps, o.p, n, Q) == cudaSuccess);
    CHECKF(out_fetch(&o, y, "add_rmsnorm"), "add_rmsnorm d=%lld", (long long)d);
    float *xs = malloc((size_t)(n * d) * 4);
    CU(cudaMemcpy(xs, dx, (size_t)(n * d) * 4, cudaMemcpyDeviceToHost));
    for (int64_t t = 0; t < n; t++) {
        zop_add(x + t * d, f + t * d, d);
        zop_rmsnorm(x + t * d, w, d, eps, ref + t * d);
    }
    CHECKF(!memcmp(xs, x, (size_t)(n * d) * 4), "add_rmsnorm: residual not bit-identical");
    CHECKF(near_rel(y, ref, (size_t)(n * d), 2e-6, 1e-7, &worst), "add_rmsnorm worst %.3g", worst);
    out_free(&o);
    cudaFree(dx);
    cudaFree(dw);
    cudaFree(df);
    free(x);
    free(f);
    free(w);
    free(y);
    free(ref);
    free(xs);
}

/* MLA epilogue: rope table, q_a / kv_a norms, k_pe rope, the cache write; then q rope. */
static void case_attn_prep(bool bf16, int64_t R, int64_t rope, int64_t ql, int64_t H,
                           int64_t nope, int64_t pos, int64_t n, float mscale) {
    const int64_t W = R + rope, half = rope / 2, cap = pos + n + 3;
    const float eps = 1e-6f;
    float *kv = malloc((size_t)(n * W) * 4), *qa = malloc((size_t)(n * ql) * 4);
    float *kvn = malloc((size_t)R * 4), *qn = malloc((size_t)ql * 4), *inv = malloc((size_t)half * 4);
    fill(kv, (size_t)(n * W), 2.0f);
    fill(qa, (size_t)(n * ql), 2.0f);
    fill(kvn, (size_t)R, 1.0f);
    fill(qn, (size_t)ql, 1.0f);
    for (int64_t i = 0; i < half; i++) inv[i] = (float)(1.0 / pow(1e4, (double)(2 * i) / (double)rope));
    cu_step step = {.pos = (int32_t)pos, .n = (int32_t)n};
    cu_step *dstep = dup_dev(&step, sizeof step);
    float *dkv = dup_dev(kv, (size_t)(n * W) * 4), *dqa = dup_dev(qa, (size_t)(n * ql) * 4);
    float *dkvn = dup_dev(kvn, (size_t)R * 4), *dqn = dup_dev(qn, (size_t)ql * 4);
    float *dinv = dup_dev(inv, (size_t)half * 4);
    const size_t es = bf16 ? 2 : 4, cache_floats = ((size_t)(cap * W) * es + 3) / 4;
    dout cache = out_new(cache_floats), cs = out_new((size_t)(n * rope));
    cu_prep p = {.kv = dkv, .R = R, .rope = rope, .qa = dqa, .ql = ql, .kv_norm = dkvn,
                 .q_norm = dqn, .eps = eps, .inv_freq = dinv, .mscale = mscale,
                 .cache = cache.p, .cache_bf16 = bf16, .cs = cs.p, .step = dstep, .n = n};
    CHECK(cuk_attn_prep(&p, Q) == cudaSuccess);
    float *hcs = malloc((size_t)(n * rope) * 4), *hcache = malloc(cache_floats * 4);
    CHECKF(out_fetch(&cs, hcs, "prep cs"), "attn_prep cs");
    CHECKF(out_fetch(&cache, hcache, "prep cache"), "attn_prep cache (bf16=%d)", bf16);
    float *gkv = malloc((size_t)(n * W) * 4), *gqa = malloc((size_t)(n * ql) * 4);
    CU(cudaMemcpy(gkv, dkv, (size_t)(n * W) * 4, cudaMemcpyDeviceToHost));
    CU(cudaMemcpy(gqa, dqa, (size_t)(n * ql) * 4, cudaMemcpyDeviceToHost));
    /* the rope table rows: the same bits as computed cos/sin */
    float *tab;
    CU(cudaMalloc((void **)&tab, (size_t)(cap * rope) * 4));
    CHECK(cuk_rope_table(tab, 0, cap, dinv, mscale, rope, Q) == cudaSuccess);
    float *htab = malloc((size_t)(cap * rope) * 4);
    CU(cudaMemcpy(htab, tab, (size_t)(cap * rope) * 4, cudaMemcpyDeviceToHost));
    int64_t cs_bad = 0, kv_bad = 0, rope_bad = 0, cache_bad = 0, untouched = 0;
    for (int64_t t = 0; t < n; t++) {
        float c_ref[64], s_ref[64];
        zop_rope_table(pos + t, inv, half, mscale, c_ref, s_ref);
        for (int64_t i = 0; i < half; i++)
            cs_bad += f2u(hcs[t * rope + i]) != f2u(c_ref[i]) || f2u(hcs[t * rope + half + i]) != f2u(s_ref[i]);
        cs_bad += memcmp(hcs + t * rope, htab + (pos + t) * rope, (size_t)rope * 4) != 0;
        float *k = kv + t * W, *q = qa + t * ql;
        zop_rmsnorm(k, kvn, R, eps, k);
        zop_rmsnorm(q, qn, ql, eps, q);
        double worst;
        kv_bad += !near_rel(gkv + t * W, k, (size_t)R, 2e-6, 1e-7, &worst);
        kv_bad += !near_rel(gqa + t * ql, q, (size_t)ql, 2e-6, 1e-7, &worst);
        /* rope on the device's own k_pe input: bit for bit with the device cs */
        float kp[128];
        memcpy(kp, kv + t * W + R, (size_t)rope * 4);
        zop_rope_interleaved(kp, rope, hcs + t * rope, hcs + t * rope + half);
        rope_bad += memcmp(kp, gkv + t * W + R, (size_t)rope * 4) != 0;
        for (int64_t c = 0; c < W; c++) {
            float want = gkv[t * W + c], got;
            if (bf16) {
                got = zbf16_to_f32(((uint16_t *)hcache)[(pos + t) * W + c]);
                want = zbf16_to_f32(zf32_to_bf16(want));
            } else {
                got = hcache[(pos + t) * W + c];
            }
            cache_bad += f2u(got) != f2u(want);
        }
    }
    /* rows outside pos .. pos + n - 1 untouched */
    for (int64_t t = 0; t < cap; t++) {
        if (t >= pos && t < pos + n) continue;
        const uint8_t *row = (const uint8_t *)hcache + (size_t)(t * W) * es;
        bool same = true;
        for (size_t b = 0; b < (size_t)W * es && (size_t)(t * W) * es + b < cache_floats * 4; b++)
            same = same && row[b] == ((const uint8_t *)&(uint32_t){CANARY})[((size_t)(t * W) * es + b) % 4];
        untouched += same;
    }
    CHECKF(cs_bad == 0, "attn_prep rope table: %lld values off", (long long)cs_bad);
    CHECKF(kv_bad == 0, "attn_prep norms: %lld rows off", (long long)kv_bad);
    CHECKF(rope_bad == 0, "attn_prep k_pe rope not bit-identical (%lld rows)", (long long)rope_bad);
    CHECKF(cache_bad == 0, "attn_prep cache write: %lld values off (bf16=%d)", (long long)cache_bad, bf16);
    CHECKF(untouched == cap - n, "attn_prep wrote other cache rows (%lld of %lld intact)",
           (long long)untouched, (long long)(cap - n));

    /* q rope per head, and the copy into the absorbed query rows */
    const int64_t qk = nope + rope;
    float *q = malloc((size_t)(n * H * qk) * 4), *gq = malloc((size_t)(n * H * qk) * 4);
    fill(q, (size_t)(n * H * qk), 1.0f);
    float *dq = dup_dev(q, (size_t)(n * H * qk) * 4);
    float *dcs = dup_dev(hcs, (size_t)(n * rope) * 4);
    dout qabs = out_new((size_t)(n * H * W));
    float *hq = malloc((size_t)(n * H * W) * 4);
    CHECK(cuk_q_rope(dq, n, H, nope, rope, dcs, qabs.p, R, Q) == cudaSuccess);
    CHECKF(out_fetch(&qabs, hq, "q_rope"), "q_rope");
    CU(cudaMemcpy(gq, dq, (size_t)(n * H * qk) * 4, cudaMemcpyDeviceToHost));
    int64_t qbad = 0;
    for (int64_t t = 0; t < n; t++)
        for (int64_t h = 0; h < H; h++) {
            float *x = q + (t * H + h) * qk;
            zop_rope_interleaved(x + nope, rope, hcs + t * rope, hcs + t * rope + half);
            qbad += memcmp(x, gq + (t * H + h) * qk, (size_t)qk * 4) != 0;
            qbad += memcmp(x + nope, hq + (t * H + h) * W + R, (size_t)rope * 4) != 0;
            for (int64_t c = 0; c < R; c++) qbad += f2u(hq[(t * H + h) * W + c]) != CANARY;
        }
    CHECKF(qbad == 0, "q_rope not bit-identical to zop_rope_interleaved (%lld)", (long long)qbad);
    out_free(&qabs);
    out_free(&cache);
    out_free(&cs);
    cudaFree(tab);
    cudaFree(dq);
    cudaFree(dcs);
    cudaFree(dstep);
    cudaFree(dkv);
    cudaFree(dqa);
    cudaFree(dkvn);
    cudaFree(dqn);
    cudaFree(dinv);
    free(kv);
    free(qa);
    free(kvn);
    free(qn);
    free(inv);
    free(hcs);
    free(hcache);
    free(htab);
    free(gkv);
    free(gqa);
    free(q);
    free(gq);
    free(hq);
}

static void case_silu_combine(int64_t d, int64_t K, int64_t n) {
    /* silu_mul */
    const int64_t m = 3001;
    float *g = malloc((size_t)m * 4), *u = malloc((size_t)m * 4), *h = malloc((size_t)m * 4), *ref = malloc((size_t)m * 4);
    fill(g, (size_t)m, 6.0f);
    fill(u, (size_t)m, 2.0f);
    float *dg = dup_dev(g, (size_t)m * 4), *du = dup_dev(u, (size_t)m * 4);
    dout o = out_new((size_t)m);
    CHECK(cuk_silu_mul(dg, du, m, o.p, Q) == cudaSuccess);
    CHECKF(out_fetch(&o, h, "silu"), "silu_mul");
    zop_silu_mul(g, u, m, ref);
    double worst;
    CHECKF(near_rel(h, ref, (size_t)m, 1e-6, 1e-30, &worst), "silu_mul worst %.3g", worst);
    out_free(&o);

    /* combine in route order; the residual bit for bit (no contraction), then the norm */
    float *w = malloc((size_t)(n * K) * 4), *de = malloc((size_t)(n * K * d) * 4);
    float *sd = malloc((size_t)(n * d) * 4), *x = malloc((size_t)(n * d) * 4), *nw = malloc((size_t)d * 4);
    int32_t *slot = malloc((size_t)(n * K) * 4);
    fill(w, (size_t)(n * K), 1.0f);
    fill(de, (size_t)(n * K * d), 1.0f);
    fill(sd, (size_t)(n * d), 1.0f);
    fill(x, (size_t)(n * d), 1.0f);
    fill(nw, (size_t)d, 1.0f);
    for (int64_t i = 0; i < n * K; i++) slot[i] = (int32_t)((i * 7 + 3) % (n * K)); /* a permutation when gcd(7, nK) = 1 */
    float *dw = dup_dev(w, (size_t)(n * K) * 4), *dde = dup_dev(de, (size_t)(n * K * d) * 4);
    float *dsd = dup_dev(sd, (size_t)(n * d) * 4), *dnw = dup_dev(nw, (size_t)d * 4);
    int32_t *dslot = dup_dev(slot, (size_t)(n * K) * 4);
    for (int with_slot = 0; with_slot < 2; with_slot++) {
        float *dx = dup_dev(x, (size_t)(n * d) * 4);
        dout xn = out_new((size_t)(n * d)), fo = out_new((size_t)(n * d));
        CHECK(cuk_moe_combine(dw, with_slot ? dslot : NULL, K, dde, dsd, dx, NULL, dnw, 1e-5f, xn.p, d,
                              n, Q) == cudaSuccess);
        CHECK(cuk_moe_combine(dw, with_slot ? dslot : NULL, K, dde, dsd, NULL, fo.p, NULL, 1e-5f, NULL, d,
                              n, Q) == cudaSuccess);
        float *gx = malloc((size_t)(n * d) * 4), *gxn = malloc((size_t)(n * d) * 4), *gf = malloc((size_t)(n * d) * 4);
        float *rx = malloc((size_t)(n * d) * 4), *rxn = malloc((size_t)(n * d) * 4), *rf = malloc((size_t)(n * d) * 4);
        CHECKF(out_fetch(&xn, gxn, "combine") && out_fetch(&fo, gf, "combine out"), "moe_combine");
        CU(cudaMemcpy(gx, dx, (size_t)(n * d) * 4, cudaMemcpyDeviceToHost));
        memcpy(rx, x, (size_t)(n * d) * 4);
        for (int64_t t = 0; t < n; t++) { /* moe.c's loop, then forward.c's add */
            for (int64_t i = 0; i < d; i++) {
                float acc = 0.0f;
                for (int64_t k = 0; k < K; k++) {
                    int64_t s = with_slot ? slot[t * K + k] : t * K + k;
                    acc += w[t * K + k] * de[s * d + i];
                }
                acc += sd[t * d + i];
                rf[t * d + i] = acc;
                rx[t * d + i] += acc;
            }
            zop_rmsnorm(rx + t * d, nw, d, 1e-5f, rxn + t * d);
        }
        CHECKF(!memcmp(gx, rx, (size_t)(n * d) * 4) && !memcmp(gf, rf, (size_t)(n * d) * 4),
               "moe_combine (slot=%d): not bit-identical to moe.c", with_slot);
        CHECKF(near_rel(gxn, rxn, (size_t)(n * d), 2e-6, 1e-7, &worst), "moe_combine norm worst %.3g", worst);
        out_free(&xn);
        out_free(&fo);
        cudaFree(dx);
        free(gx);
        free(gxn);
        free(gf);
        free(rx);
        free(rxn);
        free(rf);
    }
    cudaFree(dg);
    cudaFree(du);
    cudaFree(dw);
    cudaFree(dde);
    cudaFree(dsd);
    cudaFree(dnw);
    cudaFree(dslot);
    free(g);
    free(u);
    free(h);
    free(ref);
    free(w);
    free(de);
    free(sd);
    free(x);
    free(nw);
    free(slot);
}

/* The device's greedy argmax against zmlx_logits_argmax: random rows of a vocabulary's
   length, the maximum twice (the lower index wins), NaNs inside (skipped) and first
   (0), -0.0 against +0.0, all -inf, one element. */
static void case_argmax(void) {
    enum { V = 151552 };
    float *h = malloc((size_t)V * 4);
    int32_t *d_out, *work;
    CU(cudaMalloc((void **)&d_out, 4));
    CU(cudaMalloc((void **)&work, cuk_argmax_work_bytes()));
    CU(cudaMemset(work, 0, cuk_argmax_work_bytes()));
    float *dx;
    CU(cudaMalloc((void **)&dx, (size_t)V * 4));
    int bad = 0;
    for (int c = 0; c < 9; c++) {
        int64_t n = c == 8 ? 1 : c == 7 ? 33 : V;
        fill(h, (size_t)n, 4.0f);
        if (c == 1) h[70001] = h[90001] = 9.5f;             /* a tie: 70001 */
        if (c == 2) h[5] = NAN, h[6] = 100.0f, h[7] = NAN;  /* NaN skipped: 6 */
        if (c == 3) h[0] = NAN, h[8] = 100.0f;              /* leading NaN: 0 */
        if (c == 4)
            for (int64_t i = 0; i < n; i++) h[i] = -INFINITY;
        if (c == 5)
            for (int64_t i = 0; i < n; i++) h[i] = (i & 1) ? 0.0f : -0.0f;
        if (c == 6) h[n - 1] = 50.0f;                       /* the last element */
        CU(cudaMemcpy(dx, h, (size_t)n * 4, cudaMemcpyHostToDevice));
        int32_t got = -1;
        CHECK(cuk_argmax(dx, n, work, d_out, QPDL) == cudaSuccess);
        CU(cudaMemcpy(&got, d_out, 4, cudaMemcpyDeviceToHost));
        const int32_t want = zmlx_logits_argmax(h, (int32_t)n);
        if (got != want) {
            bad++;
            fprintf(stderr, "argmax case %d (n %lld): device %d, host %d\n", c, (long long)n, got, want);
        }
    }
    CHECKF(bad == 0, "argmax: %d of 9 rows differ from zmlx_logits_argmax", bad);
    CHECK(cuk_argmax(dx, 0, work, d_out, Q) == cudaErrorInvalidValue);
    (void)cudaGetLastError();
    cudaFree(dx);
    cudaFree(d_out);
    cudaFree(work);
    free(h);
}

/* Embedding rows of every layout: the reference dequantizer's values, bit for bit. */
static void case_embed(wfmt f, int64_t V, int64_t d) {
    char fn[48];
    wfmt_name(f, fn, sizeof fn);
    hmat m = hmat_new(f, V, d);
    cuw dw = to_dev(&m);
    cu_step step = {.pos = 0, .n = 3, .ids = {(int32_t)(V - 1), 0, (int32_t)(V / 2)}};
    cu_step *dstep = dup_dev(&step, sizeof step);
    dout o = out_new((size_t)(3 * d));
    float *y = malloc((size_t)(3 * d) * 4), *ref = malloc((size_t)d * 4);
    CHECK(cuk_embed(dw, dstep, 3, o.p, Q) == cudaSuccess);
    CHECKF(out_fetch(&o, y, "embed"), "embed %s", fn);
    int64_t bad = 0;
    for (int t = 0; t < 3; t++) {
        zop_embed(&m.w, step.ids[t], ref);
        bad += memcmp(ref, y + t * d, (size_t)d * 4) != 0;
    }
    CHECKF(bad == 0, "embed %s not bit-identical", fn);
    out_free(&o);
    cuw_free(&dw);
    cudaFree(dstep);
    hmat_free(&m);
    free(y);
    free(ref);
}

static void case_cache_convert(void) {
    const int64_t T = 9, R = 24, W = 33;
    uint16_t *c16 = malloc((size_t)(T * W) * 2);
    float *c32 = malloc((size_t)(T * W) * 4), *lat = malloc((size_t)(T * R) * 4);
    fill(c32, (size_t)(T * W), 1.0f);
    for (int64_t i = 0; i < T * W; i++) c16[i] = zf32_to_bf16(c32[i]);
    for (int b = 0; b < 2; b++) {
        void *dc = b ? dup_dev(c16, (size_t)(T * W) * 2) : dup_dev(c32, (size_t)(T * W) * 4);
        dout ol = out_new((size_t)(T * R));
        CHECK(cuk_cache_to_f32(dc, b, W, R, T, ol.p, Q) == cudaSuccess);
        CHECKF(out_fetch(&ol, lat, "cache_to_f32"), "cache_to_f32");
        int64_t cb = 0;
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < R; c++)
                cb += f2u(lat[t * R + c]) != f2u(b ? zbf16_to_f32(c16[t * W + c]) : c32[t * W + c]);
        CHECKF(cb == 0, "cache_to_f32 (bf16=%d): %lld values off", b, (long long)cb);
        out_free(&ol);
        cudaFree(dc);
    }
    free(c16);
    free(c32);
    free(lat);
}

/* ------------------------------------------------------------------ router */

static void case_route(int E, int K, int G, int TG, bool softmax, bool norm, float scale,
                       int ties, int64_t n) {
    float *lg = malloc((size_t)(n * E) * 4), *bias = malloc((size_t)E * 4);
    if (ties == 1) { /* all equal: the lowest ids, in order */
        for (int64_t i = 0; i < n * E; i++) lg[i] = 0.25f;
        for (int e = 0; e < E; e++) bias[e] = 0.0f;
    } else if (ties == 2) { /* pairs of equal scores */
        for (int64_t i = 0; i < n * E; i++) lg[i] = (float)((i % E) / 2) * 0.125f - 1.0f;
        for (int e = 0; e < E; e++) bias[e] = 0.0f;
    } else {
        fill(lg, (size_t)(n * E), 4.0f);
        fill(bias, (size_t)E, 0.1f);
    }
    cu_route_cfg cfg = {.n_experts = E, .k = K, .n_group = G, .topk_group = TG,
                        .norm_topk_prob = norm, .softmax_scoring = softmax, .scale = scale};
    zrouter_cfg rc = {.n_experts = E, .k = K, .n_group = G, .topk_group = TG,
                      .norm_topk_prob = norm, .scale = scale, .softmax_scoring = softmax};
    float *dl = dup_dev(lg, (size_t)(n * E) * 4), *db = dup_dev(bias, (size_t)E * 4);
    int32_t *didx;
    CU(cudaMalloc((void **)&didx, (size_t)(n * K) * 4));
    dout ow = out_new((size_t)(n * K));
    CHECK(cuk_route(cfg, dl, db, n, didx, ow.p, Q) == cudaSuccess);
    float *w = malloc((size_t)(n * K) * 4), *work = malloc((size_t)(2 * E) * 4), rw[64];
    int32_t *idx = malloc((size_t)(n * K) * 4), ri[64];
    CHECKF(out_fetch(&ow, w, "route"), "route");
    CU(cudaMemcpy(idx, didx, (size_t)(n * K) * 4, cudaMemcpyDeviceToHost));
    int64_t idx_bad = 0, w_bad = 0;
    for (int64_t t = 0; t < n; t++) {
        zop_route(&rc, lg + t * E, bias, work, ri, rw);
        for (int k = 0; k < K; k++) {
            idx_bad += idx[t * K + k] != ri[k];
            w_bad += isnan(w[t * K + k]) || fabsf(w[t * K + k] - rw[k]) > 1e-6f * fabsf(rw[k]) + 1e-30f;
        }
    }
    CHECKF(idx_bad == 0, "route E=%d K=%d G=%d/%d softmax=%d ties=%d: %lld experts differ from zop_route",
           E, K, G, TG, softmax, ties, (long long)idx_bad);
    CHECKF(w_bad == 0, "route E=%d K=%d: %lld weights off", E, K, (long long)w_bad);
    out_free(&ow);
    cudaFree(dl);
    cudaFree(db);
    cudaFree(didx);
    free(lg);
    free(bias);
    free(w);
    free(work);
    free(idx);
}

/* ------------------------------------------------------------------ cases */

static void product_cases(bool quick) {
    /* every layout on a GLM-4.7-Flash shape (q_a) and a small one */
    const int bits[6] = {2, 3, 4, 5, 6, 8};
    const zwkind ak[6] = {ZW_AFFINE2, ZW_AFFINE3, ZW_AFFINE4, ZW_AFFINE5, ZW_AFFINE6, ZW_AFFINE8};
    const int groups[3] = {32, 64, 128};
    const zdtype sdts[3] = {ZDT_BF16, ZDT_F16, ZDT_F32};
    for (int b = 0; b < 6; b++)
        for (int g = 0; g < 3; g++) {
            wfmt f = {ak[b], groups[g], sdts[(b + g) % 3]};
            if (!quick || (bits[b] == 4 && g == 1)) case_matvec(f, 768, 2048);
            if (!quick) case_matvec(f, 37, 256);
        }
    case_matvec(F_MX, 768, 2048);
    case_matvec(F_MX, 9, 96);
    case_matvec(F_BF16, 576, 2048);
    case_matvec(F_F32, 64, 2048);
    case_matvec(F_F16, 256, 2048);
    case_matvec(F_BF16, 33, 64);
    case_matvec(F_Q4, 2048, 5120);  /* o_proj */
    case_matvec(F_Q4, 5120, 768);   /* q_b */
    case_matvec(F_Q4, 2048, 10240); /* the dense MLP's down */
    if (!quick) {
        case_matvec(F_Q4, 20000, 2048); /* lm_head-like: four rows per warp */
        case_matvec(F_BF16, 9000, 2048); /* two rows per warp */
        case_matvec(F_MX, 20000, 2048);
    }
    case_per_head(F_Q4, 20, 192, 256, 512, 64); /* GLM-4.7-Flash kv_b */
    case_per_head(F_BF16, 20, 192, 256, 512, 64);
    case_per_head(F_F32, 4, 32, 32, 64, 16);      /* the tiny fixtures */
    case_per_head((wfmt){ZW_AFFINE8, 32, ZDT_F16}, 3, 8, 16, 96, 8);
    if (!quick) case_per_head(F_MX, 5, 16, 32, 128, 32);
    case_multi();
    case_moe(F_Q4, quick ? 8 : 64, 4, 1536, 2048, true, false);
    case_moe(F_BF16, 8, 4, 256, 512, true, false);
    case_moe(F_F32, 5, 3, 64, 128, false, false);
    case_moe((wfmt){ZW_AFFINE3, 64, ZDT_BF16}, 6, 4, 64, 128, true, false);
    case_moe(F_MX, 16, 8, 64, 128, true, false); /* K = 8: two chunks of four experts */
    case_moe_slices(F_Q4, 64, 4, 256, 512, 2);  /* several GPUs: expert slices (ep.h) */
    case_moe_slices(F_BF16, 10, 4, 64, 128, 3);
    case_moe_slices(F_MX, 16, 8, 64, 128, 4);
    case_gemm(F_BF16, 768, 2048, 37);
    case_gemm(F_Q4, 768, 2048, 37);
    case_gemm(F_F32, 100, 128, 5);
    case_gemm(F_F16, 129, 64, 130);
    case_gemm((wfmt){ZW_AFFINE6, 128, ZDT_F32}, 70, 256, 9);
    case_gemm((wfmt){ZW_AFFINE2, 32, ZDT_BF16}, 64, 96, 3);
    case_gemm(F_MX, 33, 64, 66);
    case_group(64, 4, 1024, false); /* GLM-4.7-Flash, a whole chunk */
    case_group(64, 4, 1024, true);
    case_group(64, 4, 1, false);
    case_group(384, 8, 1024, false); /* Kimi-K2.5 */
    case_group(256, 8, 1000, true);  /* DeepSeek, a partial segment */
    case_group(1024, 16, 37, false); /* the limits: opt-in shared memory */
    case_grouped(F_Q4, 64, 4, 96, 256, 70);
    case_grouped(F_F32, 16, 4, 64, 128, 128);
    case_grouped(F_BF16, 8, 4, 33, 64, 3);
}


/* Fast mode (tq_fast): the int8-activation layouts (affine 4- and 8-bit) in every group
   and scale type against the bound with the activations' error and the CPU's model of the
   same arithmetic, the patterns' fused kernels against their unfused chains bit for bit
   (norm on load, residual epilogue, SwiGLU, route in the prologue, down + combine, several
   jobs per launch, expert slices); the other layouts run their exact kernels. */
static void fast_cases(bool quick) {
    const zwkind ak[2] = {ZW_AFFINE4, ZW_AFFINE8};
    const int groups[3] = {32, 64, 128};
    const zdtype sdts[3] = {ZDT_BF16, ZDT_F16, ZDT_F32};
    for (int b = 0; b < 2; b++)
        for (int g = 0; g < 3; g++) {
            wfmt f = {ak[b], groups[g], sdts[(b + g) % 3]};
            case_matvec(f, 768, 2048);
            case_matvec(f, 37, 256);
        }
    case_matvec(F_BF16, 33, 64); /* no int8 path: the exact kernel */
    case_matvec(F_BF16, 64, 2048); /* the router: its rows before the wait */
    case_matvec(F_Q4, 2048, 5120);
    case_matvec(F_Q4, 5120, 768);
    case_matvec(F_Q4, 2048, 1536); /* the experts' down: 48 units per row */
    if (!quick) case_matvec(F_Q4, 20000, 2048);
    if (!quick) case_matvec(F_Q4, 70000, 2048); /* the lm_head's deep instance: 8+ batches a warp */
    case_per_head(F_Q4, 20, 192, 256, 512, 64);
    case_per_head((wfmt){ZW_AFFINE8, 32, ZDT_F16}, 3, 8, 16, 96, 8);
    case_multi();
    case_moe(F_Q4, quick ? 8 : 64, 4, 1536, 2048, true, false);
    case_moe((wfmt){ZW_AFFINE8, 128, ZDT_F32}, 6, 4, 256, 512, true, false);
    case_moe(F_Q4, 16, 8, 64, 128, false, false); /* K = 8: two chunks of four experts */
    case_moe(F_Q4, 64, 4, 64, 128, true, true);   /* ties in the route */
    case_moe(F_Q4, 48, 6, 64, 128, false, true);  /* experts l and l + 32 on some lanes only */
    case_moe(F_Q4, 20, 4, 64, 128, true, true);   /* fewer experts than lanes */
    case_router_in(quick ? 16 : 64, 4, 1536, 2048, true);
    case_router_in(48, 6, 64, 128, false);
    if (tq_fast) { /* the certified route: GLM-4.7-Flash's shapes, and a small model's */
        case_route_cert(64, 4, quick ? 256 : 1536, 2048, 5120, false, quick ? 4 : 24);
        case_route_cert(64, 4, 256, 2048, 5120, true, 4);
        case_route_cert(48, 6, 64, 512, 256, false, 8);
    }
    case_moe_slices(F_Q4, 64, 4, 256, 512, 2);
    /* prefill on the tensor cores (kernels_gemm_tc.cu, kernels_attn_tc.cu): every layout,
       partial tiles of rows and tokens, gathers, grouped experts */
    case_gemm(F_Q4, 768, 2048, 37);
    case_gemm(F_Q4, 520, 1536, 130); /* the experts' down shape over a whole chunk */
    case_gemm(F_BF16, 100, 128, 5);
    case_gemm(F_F32, 100, 128, 65);
    case_gemm(F_F16, 129, 64, 130);
    case_gemm((wfmt){ZW_AFFINE6, 128, ZDT_F32}, 70, 256, 9);
    case_gemm((wfmt){ZW_AFFINE3, 32, ZDT_F16}, 64, 96, 3);
    case_gemm((wfmt){ZW_AFFINE8, 64, ZDT_BF16}, 65, 128, 64);
    case_gemm(F_MX, 33, 64, 66);
    case_grouped(F_Q4, 64, 4, 96, 256, 70);
    case_grouped(F_Q4, 64, 4, 200, 2048, 128); /* GLM-4.7-Flash's experts, one chunk */
    /* the 4-bit kernel (kernels_gemm_q4.cu): several 64-token tiles an expert, partial
       128-row tiles, groups of 32 / 128, f16 scales, the down shape */
    case_grouped(F_Q4, 8, 4, 200, 2048, 300);
    case_grouped((wfmt){ZW_AFFINE4, 32, ZDT_F16}, 8, 2, 130, 512, 100);
    case_grouped((wfmt){ZW_AFFINE4, 128, ZDT_BF16}, 16, 4, 64, 1024, 50);
    case_grouped(F_Q4, 16, 4, 256, 1536, 90);
    case_grouped(F_Q4, 64, 4, 130, 512, 40); /* experts with no rows, two scans of 32 */
    {
        zcu_blas b = {0};
        case_gemm_blas(&b, F_Q4, 768, 2048, 100);
        case_gemm_blas(&b, F_Q4, 200, 512, 300); /* kv_b's expansion shape, a larger scratch */
        case_gemm_blas(&b, F_BF16, 64, 2048, 70); /* the router */
        case_gemm_blas(&b, (wfmt){ZW_AFFINE8, 32, ZDT_F16}, 130, 256, 65);
        case_gemm_blas(&b, F_MX, 96, 64, 64);
        zcu_blas_free(&b);
    }
    case_grouped(F_BF16, 8, 4, 33, 64, 3);
}

static void other_cases(bool quick) {
    case_norms(2048, 3);
    case_norms(130, 2);
    for (int b = 0; b < 2; b++) {
        case_attn_prep(b, 512, 64, 768, 20, 192, 5, 3, 1.0f);  /* GLM-4.7-Flash */
        case_attn_prep(b, 64, 16, 64, 4, 32, 0, 1, 1.2f);      /* tiny, YaRN mscale */
        case_attn_prep(b, 512, 64, 1536, 2, 128, 70000, 2, 1.0f); /* DeepSeek-V3, far position */
        case_attn_prep(b, 1088, 64, 64, 2, 32, 9, 2, 1.0f);       /* past the loads before the barrier */
    }
    case_silu_combine(2048, 4, 1);
    case_silu_combine(130, 8, 5);
    case_silu_combine(64, 16, 3);
    case_embed(F_BF16, 1000, 2048);
    case_embed(F_F32, 10, 96);
    case_embed(F_F16, 17, 32);
    case_embed(F_Q4, 300, 2048);
    case_embed(F_MX, 20, 64);
    case_argmax();
    case_embed((wfmt){ZW_AFFINE5, 32, ZDT_F16}, 7, 64);
    case_embed((wfmt){ZW_AFFINE3, 128, ZDT_F32}, 7, 128);
    case_cache_convert();
    /* router: GLM-4.7-Flash, DeepSeek-V3 groups, Kimi, the tiny fixtures, softmax, ties */
    case_route(64, 4, 1, 1, false, true, 1.8f, 0, 7);
    case_route(256, 8, 8, 4, false, true, 2.5f, 0, 5);
    case_route(384, 8, 1, 1, false, true, 2.827f, 0, 3);
    case_route(16, 4, 4, 2, false, true, 2.5f, 0, 9);
    case_route(8, 4, 1, 1, false, true, 1.8f, 0, 4);
    case_route(64, 6, 1, 1, true, false, 1.0f, 0, 3);
    case_route(64, 4, 1, 1, false, true, 1.8f, 1, 2);
    case_route(64, 8, 8, 4, false, true, 2.5f, 1, 2);
    case_route(64, 16, 4, 2, false, false, 1.0f, 2, 2);
    case_route(1024, 16, 1, 1, false, true, 1.0f, 0, 2);
}

int main(void) {
    bool quick = false;
    if (!tcu_begin(&quick)) return tc_fail ? 1 : 0;
    product_cases(quick);
    printf("product cases: %d passed, %d failed\n", tc_pass, tc_fail);
    tq_fast = true;
    fast_cases(quick);
    tq_fast = false;
    printf("fast product cases: %d passed, %d failed\n", tc_pass, tc_fail);
    other_cases(quick);
    CU(cudaStreamSynchronize(S));
    CU(cudaGetLastError());
    return tc_done();
}
#endif
