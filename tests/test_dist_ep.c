/*
 * test_dist_ep.c — the exact expert-parallel combine (dist.h), emulated on the CPU with
 * every rank's slice run in one process:
 *   - model level: for every MoE layer of builtin:glm47-tiny (8 experts, top-4),
 *     builtin:glm47-mini (16, top-4) and builtin:dsv32-tiny (16 experts in 4 groups),
 *     on normal-distributed inputs of 1 token (decode) and 7 tokens (a chunk), each rank
 *     computes only the experts it holds (its other expert rows are NaN, so a read of one
 *     would show), fills its slot buffer, the all-reduce is emulated in several rank
 *     orders (as a ring starting anywhere would add them), the shared expert and the
 *     combine run on the sum: the output equals zffn_forward's (the one-GPU MoE block,
 *     patterns none, cpu-ref) bit for bit, for 1, 2, 3 and 4 ranks and both partitions;
 *   - negative control: the plain alternative (each rank sums its own weighted outputs,
 *     then an all-reduce of the partial sums) is checked to differ from the one-GPU bits
 *     somewhere over the same inputs, so the test above can fail;
 *   - signed zeros and specials, exhaustively: every assignment of {+-0, +-1, +-2^-149,
 *     +-FLT_MAX, +-inf} to K = 3 slots, every ownership over 3 ranks and a shared term from
 *     the same set: combine(all-reduce(slots)) == combine(one rank's slots) bit for bit
 *     (the all-reduce turns -0 into +0; the combine's +0 start makes that invisible).
 */
#include "dist/dist.h"
#include "model/session.h"
#include "ops/ops.h"
#include "tcheck.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static float gauss(void) {
    double s = 0;
    for (int i = 0; i < 12; i++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        s += (double)(rng >> 11) / 9007199254740992.0;
    }
    return (float)(s - 6.0);
}

static void mm(const zmlx_model *m, const zweight *w, const float *x, float *y) {
    zmm_job j = {.w = *w, .x = x, .y = y, .n = 1};
    m->be->matmul(m->be_ctx, &j, 1);
}

/* One expert (or the shared MLP) on one row, as moe.c's unfused chain: down(silu(g) * u). */
static void mlp_row(const zmlx_model *m, const zweight *g, const zweight *u, const zweight *dn,
                    const float *x, float *gb, float *ub, float *y) {
    mm(m, g, x, gb);
    mm(m, u, x, ub);
    zop_silu_mul(gb, ub, g->rows, gb);
    mm(m, dn, gb, y);
}

typedef struct layer_io {
    int64_t n, d, K;
    const float *xn;  /* [n, d] */
    int32_t *idx;     /* [n, K] route */
    float *w;         /* [n, K] */
    float *y_all;     /* [n*K, d] every chosen expert's output (for the naive control) */
    float *sd;        /* [n, d] shared expert or NULL */
} layer_io;

/* Router and shared expert: what every rank computes for itself (replicated). */
static void replicated_part(const zmlx_model *m, const zlayer *L, layer_io *io, float *scratch) {
    const zmlx_config *c = &m->cfg;
    const int64_t E = c->n_routed_experts, d = io->d;
    zrouter_cfg rc = {.n_experts = (int32_t)E, .k = (int32_t)io->K, .n_group = c->n_group,
                      .topk_group = c->topk_group, .norm_topk_prob = c->norm_topk_prob,
                      .scale = c->routed_scaling_factor,
                      .softmax_scoring = c->scoring == ZSCORE_SOFTMAX};
    float *logits = scratch, *work = scratch + E;
    for (int64_t t = 0; t < io->n; t++) {
        mm(m, &L->router, io->xn + t * d, logits);
        zop_route(&rc, logits, L->router_bias, work, io->idx + t * io->K, io->w + t * io->K);
        if (io->sd) {
            float *gb = scratch + 3 * E, *ub = gb + L->sh_gate.rows;
            mlp_row(m, &L->sh_gate, &L->sh_up, &L->sh_down, io->xn + t * d, gb, ub, io->sd + t * d);
        }
    }
}

/* Rank r's expert outputs: only the experts it holds; other rows stay NaN. */
static void rank_experts(const zmlx_model *m, const zlayer *L, const zdist_part *p, int32_t r,
                         const layer_io *io, float *y, float *gb, float *ub) {
    for (int64_t s = 0; s < io->n * io->K; s++) {
        const int32_t e = io->idx[s];
        if (zdist_owner(p, e) != r) {
            for (int64_t i = 0; i < io->d; i++) y[s * io->d + i] = NAN;
            continue;
        }
        mlp_row(m, &L->exp_gate[e], &L->exp_up[e], &L->exp_down[e], io->xn + (s / io->K) * io->d,
                gb, ub, y + s * io->d);
    }
}

typedef struct emu_stats {
    int64_t cases, exact, naive_differs;
} emu_stats;

/* One layer, one input: the emulation for R ranks (both schemes) against f_ref. */
static void emulate(const zmlx_model *m, const zlayer *L, layer_io *io, const float *f_ref,
                    int32_t R, emu_stats *st) {
    const int64_t n = io->n, d = io->d, K = io->K, len = n * K * d;
    const int64_t mI = m->cfg.moe_intermediate_size;
    float *y = malloc((size_t)len * sizeof(float));
    float **slots = malloc((size_t)R * sizeof(float *));
    float *sum = malloc((size_t)len * sizeof(float)), *f = malloc((size_t)(n * d) * sizeof(float));
    float *gb = malloc((size_t)mI * sizeof(float)), *ub = malloc((size_t)mI * sizeof(float));
    int32_t order[8];
    for (int s = 0; s < 2; s++) {
        zdist_part p;
        zerr e;
        if (zdist_part_init(&p, m->cfg.n_routed_experts, R, (zdist_scheme)s, &e) != ZMLX_OK) {
            CHECKF(0, "%s", e.msg);
            break;
        }
        for (int32_t r = 0; r < R; r++) {
            slots[r] = malloc((size_t)len * sizeof(float));
            rank_experts(m, L, &p, r, io, y, gb, ub);
            zdist_slots_fill(&p, r, io->idx, n, (int32_t)K, d, y, slots[r]);
        }
        for (int32_t start = 0; start < R; start++)
            for (int dir = 0; dir < 2; dir++) { /* ring orders, both directions */
                for (int32_t i = 0; i < R; i++) order[i] = (start + (dir ? R - i : i)) % R;
                zdist_allreduce_emu((const float *const *)slots, order, R, len, sum);
                zdist_combine(io->w, sum, io->sd, n, (int32_t)K, d, f);
                st->cases++;
                st->exact += !memcmp(f, f_ref, (size_t)(n * d) * sizeof(float));
            }
        /* the plain alternative: per-rank partial sums in route order, then their sum */
        if (R > 1) {
            bool differs = false;
            for (int64_t t = 0; t < n; t++)
                for (int64_t i = 0; i < d; i++) {
                    float total = 0.0f;
                    for (int32_t r = 0; r < R; r++) {
                        float part = 0.0f;
                        for (int64_t k = 0; k < K; k++)
                            if (zdist_owner(&p, io->idx[t * K + k]) == r)
                                part += io->w[t * K + k] * io->y_all[(t * K + k) * d + i];
                        total += part;
                    }
                    if (io->sd) total += io->sd[t * d + i];
                    differs |= memcmp(&total, &f_ref[t * d + i], sizeof total) != 0;
                }
            st->naive_differs += differs;
        }
        for (int32_t r = 0; r < R; r++) free(slots[r]);
    }
    free(y), free(slots), free(sum), free(f), free(gb), free(ub);
}

static void test_model(const char *spec) {
    zmlx_model_params mp = zmlx_model_default_params();
    mp.backend = ZMLX_BACKEND_CPU_REF;
    mp.precision = ZMLX_PRECISION_EXACT;
    mp.patterns = "none";
    zmlx_model *m = NULL;
    zmlx_session *s = NULL;
    char err[ZMLX_ERR_MAX];
    zmlx_session_params sp = zmlx_session_default_params();
    sp.max_positions = 64;
    if (zmlx_model_load(spec, &mp, &m, err, sizeof err) != ZMLX_OK ||
        zmlx_session_init(m, &sp, &s, err, sizeof err) != ZMLX_OK) {
        fprintf(stderr, "%s: %s\n", spec, err);
        CHECK(0);
        zmlx_model_free(m);
        return;
    }
    const zmlx_config *c = &m->cfg;
    const int64_t d = c->hidden_size, K = c->experts_per_tok, E = c->n_routed_experts;
    const int64_t mI = c->moe_intermediate_size, sI = mI * c->n_shared_experts;
    zscratch *z = &s->s;
    emu_stats st = {0};
    int64_t layers = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const zlayer *L = &m->layers[l];
        if (!L->moe) continue;
        layers++;
        for (int64_t n = 1; n <= 7; n += 6)
            for (int trial = 0; trial < 3; trial++) {
                for (int64_t i = 0; i < n * d; i++) z->xn[i] = gauss();
                const bool added = zffn_forward(s, l, n);
                CHECK(!added);
                float *f_ref = malloc((size_t)(n * d) * sizeof(float));
                memcpy(f_ref, z->f, (size_t)(n * d) * sizeof(float));
                float *xn = malloc((size_t)(n * d) * sizeof(float));
                memcpy(xn, z->xn, (size_t)(n * d) * sizeof(float));
                layer_io io = {.n = n, .d = d, .K = K, .xn = xn};
                io.idx = malloc((size_t)(n * K) * sizeof(int32_t));
                io.w = malloc((size_t)(n * K) * sizeof(float));
                io.y_all = malloc((size_t)(n * K * d) * sizeof(float));
                io.sd = c->n_shared_experts ? malloc((size_t)(n * d) * sizeof(float)) : NULL;
                float *scratch = malloc((size_t)(3 * E + 2 * sI + 2 * mI) * sizeof(float));
                replicated_part(m, L, &io, scratch);
                zdist_part one;
                zerr e;
                zdist_part_init(&one, (int32_t)E, 1, ZDIST_CONTIGUOUS, &e);
                rank_experts(m, L, &one, 0, &io, io.y_all, scratch + 3 * E, scratch + 3 * E + mI);
                for (int32_t R = 1; R <= 4; R++) emulate(m, L, &io, f_ref, R, &st);
                free(f_ref), free(xn), free(io.idx), free(io.w), free(io.y_all), free(io.sd);
                free(scratch);
            }
    }
    CHECKF(layers > 0 && st.cases > 0 && st.exact == st.cases,
           "%s: %lld of %lld emulated combines bit-identical to the one-GPU block", spec,
           (long long)st.exact, (long long)st.cases);
    CHECKF(st.naive_differs > 0, "%s: the partial-sum all-reduce never differed (control)", spec);
    printf("%s: %lld MoE layers, %lld emulated combines bit-identical, partial sums differed "
           "in %lld inputs\n", spec, (long long)layers, (long long)st.exact,
           (long long)st.naive_differs);
    zmlx_session_free(s);
    zmlx_model_free(m);
}

static bool same(float a, float b) {
    return (isnan(a) && isnan(b)) || !memcmp(&a, &b, sizeof a);
}

static void test_specials(void) {
    const float vals[] = {0.0f, -0.0f, 1.0f, -1.0f, 0x1p-149f, -0x1p-149f, FLT_MAX, -FLT_MAX,
                          INFINITY, -INFINITY};
    const int nv = (int)(sizeof vals / sizeof vals[0]);
    const float w[3] = {0.5f, 0.25f, 0x1p-126f};
    int64_t cases = 0, ok = 0, neg0 = 0;
    float one[3], rk[3][3], sum[3], order_sum[3], fa, fb;
    for (int a = 0; a < nv; a++)
        for (int b = 0; b < nv; b++)
            for (int cc = 0; cc < nv; cc++)
                for (int own = 0; own < 27; own++) /* owner of each slot: 3 ranks */
                    for (int sh = 0; sh < nv; sh++) {
                        one[0] = vals[a], one[1] = vals[b], one[2] = vals[cc];
                        /* three ranks: experts 0,1,2 -> owners from `own` (emulated as a
                           round-robin part of 3 ranks on permuted expert ids) */
                        int owner[3] = {own % 3, own / 3 % 3, own / 9};
                        for (int r = 0; r < 3; r++)
                            for (int k = 0; k < 3; k++) rk[r][k] = owner[k] == r ? one[k] : 0.0f;
                        const float *bufs[3] = {rk[0], rk[1], rk[2]};
                        const int32_t ord[3] = {2, 0, 1};
                        zdist_allreduce_emu(bufs, (const int32_t[]){0, 1, 2}, 3, 3, sum);
                        zdist_allreduce_emu(bufs, ord, 3, 3, order_sum);
                        const float sd = vals[sh];
                        zdist_combine(w, one, &sd, 1, 3, 1, &fa);
                        /* d = 1: slots are [K, 1] */
                        zdist_combine(w, sum, &sd, 1, 3, 1, &fb);
                        bool good = same(fa, fb);
                        zdist_combine(w, order_sum, &sd, 1, 3, 1, &fb);
                        good = good && same(fa, fb);
                        for (int k = 0; k < 3; k++) neg0 += signbit(one[k]) && one[k] == 0 && !signbit(sum[k]);
                        cases++;
                        ok += good;
                    }
    CHECKF(ok == cases, "specials: %lld of %lld combines equal", (long long)ok, (long long)cases);
    CHECK(neg0 > 0); /* the all-reduce did turn -0 into +0 somewhere: the case was covered */
}

int main(void) {
    test_specials();
    test_model("builtin:glm47-tiny");
    test_model("builtin:glm47-mini");
    test_model("builtin:dsv32-tiny");
    return tc_done();
}
