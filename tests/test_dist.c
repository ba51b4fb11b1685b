/*
 * test_dist.c — expert parallelism without a GPU (src/dist/):
 *   - partitions: for every expert count 1..70, 256, 384 and rank count up to 9 and 16,
 *     both schemes: each expert has exactly one owner, zdist_expert(owner, local) gives it
 *     back, slices differ by at most one expert, contiguous slices are consecutive runs in
 *     rank order; a rank count above the expert count (or 0) is refused;
 *   - `--gpus` lists: ranges, order kept, and the errors (empty, trailing comma, letters,
 *     negative, backwards range, a GPU twice, more than ZMLX_MAX_GPUS, ordinal > 1023);
 *   - rank checks: world / rank / GPU count combinations, a GPU past the machine's count
 *     ("GPU 2 does not exist: this machine has 2 CUDA devices (0-1)"), --gpus with a CPU
 *     backend refused by zmlx_model_load; the NCCL id survives hex and bad hex is refused;
 *   - memory: for loaded builtin models (glm47-mini, dsv32-tiny with its indexer) the
 *     one-rank estimate equals the bytes the loader holds (every zweight + every float
 *     array), exactly; the ranks' expert bytes add up to the whole; the fit check passes
 *     at the total and fails one byte below it, with the numbers and the smallest GPU
 *     count that fits, which is checked to fit while one fewer does not; with the full
 *     Kimi-K2.5 at 4 bits on 80 GiB GPUs that count is computed and the message is whole.
 */
#include "dist/dist.h"
#include "model/model.h"
#include "tcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_partitions(void) {
    int32_t Es[80], nE = 0;
    for (int32_t e = 1; e <= 70; e++) Es[nE++] = e;
    Es[nE++] = 256;
    Es[nE++] = 384;
    const int32_t Rs[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16};
    int bad = 0;
    for (int i = 0; i < nE; i++)
        for (size_t ri = 0; ri < sizeof Rs / sizeof Rs[0]; ri++) {
            const int32_t R = Rs[ri];
            for (int s = 0; s < 2; s++) {
                const int32_t E = Es[i];
                zdist_part p;
                zerr e;
                zmlx_status st = zdist_part_init(&p, E, R, (zdist_scheme)s, &e);
                if (R > E) {
                    bad += st != ZMLX_ERR_INVALID_ARG || !strstr(e.msg, "would hold none");
                    continue;
                }
                if (st != ZMLX_OK) {
                    bad++;
                    continue;
                }
                int32_t total = 0, lo = E, hi = 0, next = 0;
                for (int32_t r = 0; r < R; r++) {
                    const int32_t n = zdist_count(&p, r);
                    total += n;
                    lo = n < lo ? n : lo;
                    hi = n > hi ? n : hi;
                    for (int32_t j = 0; j < n; j++) {
                        const int32_t x = zdist_expert(&p, r, j);
                        bad += x < 0 || x >= E || zdist_owner(&p, x) != r || zdist_local(&p, x) != j;
                        if (s == ZDIST_CONTIGUOUS) bad += x != next++ || (j == 0 && x != zdist_first(&p, r));
                    }
                }
                bad += total != E || hi - lo > 1;
                for (int32_t x = 0; x < E; x++) {
                    const int32_t o = zdist_owner(&p, x);
                    bad += o < 0 || o >= R || zdist_expert(&p, o, zdist_local(&p, x)) != x;
                }
                if (bad) {
                    fprintf(stderr, "partition E=%d R=%d scheme %d wrong\n", E, R, s);
                    CHECK(0);
                    return;
                }
            }
        }
    CHECK(bad == 0);
    zdist_part p;
    zerr e;
    CHECK(zdist_part_init(&p, 8, 0, ZDIST_CONTIGUOUS, &e) == ZMLX_ERR_INVALID_ARG);
    CHECK(zdist_part_init(&p, 0, 2, ZDIST_CONTIGUOUS, &e) == ZMLX_ERR_UNSUPPORTED);
    CHECK(zdist_part_init(&p, 0, 1, ZDIST_CONTIGUOUS, &e) == ZMLX_OK);
    CHECKF(zdist_part_init(&p, 2, 4, ZDIST_CONTIGUOUS, &e) == ZMLX_ERR_INVALID_ARG &&
               strstr(e.msg, "4 GPUs but the model has 2 routed experts"), "%s", e.msg);
    /* 64 experts over 3: 22, 21, 21 */
    zdist_part_init(&p, 64, 3, ZDIST_CONTIGUOUS, &e);
    CHECK(zdist_count(&p, 0) == 22 && zdist_count(&p, 1) == 21 && zdist_first(&p, 1) == 22 &&
          zdist_first(&p, 2) == 43 && zdist_owner(&p, 42) == 1 && zdist_owner(&p, 43) == 2);
}

static void expect_gpus(const char *list, int32_t n, const int32_t *ids) {
    zmlx_dist_params d = {0};
    char err[ZMLX_ERR_MAX] = "";
    zmlx_status st = zmlx_dist_parse_gpus(list, &d, err, sizeof err);
    bool ok = st == ZMLX_OK && d.n_gpus == n;
    for (int32_t i = 0; ok && i < n; i++) ok = d.gpus[i] == ids[i];
    CHECKF(ok, "--gpus %s: %s", list, err);
}

static void expect_gpus_err(const char *list, const char *what) {
    zmlx_dist_params d = {0};
    char err[ZMLX_ERR_MAX] = "";
    zmlx_status st = zmlx_dist_parse_gpus(list, &d, err, sizeof err);
    CHECKF(st == ZMLX_ERR_INVALID_ARG && strstr(err, what) && d.n_gpus == 0,
           "--gpus \"%s\": got \"%s\", wanted \"%s\"", list, err, what);
}

static void test_gpus(void) {
    expect_gpus("0", 1, (const int32_t[]){0});
    expect_gpus("0,1", 2, (const int32_t[]){0, 1});
    expect_gpus("3,1,2", 3, (const int32_t[]){3, 1, 2});
    expect_gpus("0-3", 4, (const int32_t[]){0, 1, 2, 3});
    expect_gpus("6,0-2,7", 5, (const int32_t[]){6, 0, 1, 2, 7});
    expect_gpus("1023", 1, (const int32_t[]){1023});
    expect_gpus_err("", "empty list");
    expect_gpus_err("0,", "trailing comma");
    expect_gpus_err("0,,1", "expected device ordinals");
    expect_gpus_err("a", "\"a\" is not a device ordinal");
    expect_gpus_err("-1", "expected device ordinals");
    expect_gpus_err(" 1", "is not a device ordinal");
    expect_gpus_err("1024", "\"1024\" is not a device ordinal (0 to 1023)");
    expect_gpus_err("3-1", "range 3-1 runs backwards");
    expect_gpus_err("0,1,0", "GPU 0 is listed twice");
    expect_gpus_err("0-2,1", "GPU 1 is listed twice");
    expect_gpus_err("0-64", "more than 64 GPUs for one process");
    expect_gpus_err("0-", "expected device ordinals");
}

static void test_ranks(void) {
    zerr e;
    int32_t n = -1;
    zmlx_dist_params d = {0};
    CHECK(zdist_check_params(&d, &n, &e) == ZMLX_OK && n == 1);
    d = (zmlx_dist_params){.n_gpus = 4, .gpus = {0, 1, 2, 3}};
    CHECK(zdist_check_params(&d, &n, &e) == ZMLX_OK && n == 4);
    d = (zmlx_dist_params){.n_gpus = 1, .gpus = {5}, .world = 16, .rank = 15};
    CHECK(zdist_check_params(&d, &n, &e) == ZMLX_OK && n == 16);
    d.rank = 16;
    CHECKF(zdist_check_params(&d, &n, &e) == ZMLX_ERR_INVALID_ARG &&
               strstr(e.msg, "rank 16 of a world of 16: expected 0 to 15"), "%s", e.msg);
    d = (zmlx_dist_params){.n_gpus = 2, .gpus = {0, 1}, .world = 4, .rank = 1};
    CHECKF(zdist_check_params(&d, &n, &e) == ZMLX_ERR_INVALID_ARG &&
               strstr(e.msg, "drives exactly one"), "%s", e.msg);
    d = (zmlx_dist_params){.rank = 2};
    CHECK(zdist_check_params(&d, &n, &e) == ZMLX_ERR_INVALID_ARG);
    d = (zmlx_dist_params){.n_gpus = 2, .gpus = {1, 1}};
    CHECK(zdist_check_params(&d, &n, &e) == ZMLX_ERR_INVALID_ARG && strstr(e.msg, "twice"));
    d = (zmlx_dist_params){.n_gpus = 3, .gpus = {0, 1, 2}};
    CHECKF(zdist_check_devices(&d, 2, &e) == ZMLX_ERR_INVALID_ARG &&
               strstr(e.msg, "--gpus 0,1,2: GPU 2 does not exist: this machine has 2 CUDA "
                             "devices (0-1)"), "%s", e.msg);
    CHECK(zdist_check_devices(&d, 3, &e) == ZMLX_OK);
    CHECKF(zdist_check_devices(&d, 1, &e) == ZMLX_ERR_INVALID_ARG &&
               strstr(e.msg, "has 1 CUDA device (0)"), "%s", e.msg);

    /* --gpus needs the cuda backend (refused before any weight is made) */
    zmlx_model_params mp = zmlx_model_default_params();
    mp.dist = (zmlx_dist_params){.n_gpus = 2, .gpus = {0, 1}};
    zmlx_model *m = NULL;
    char err[ZMLX_ERR_MAX] = "";
    zmlx_status st = zmlx_model_load("builtin:glm47-tiny", &mp, &m, err, sizeof err);
    CHECKF(st == ZMLX_ERR_INVALID_ARG && !m &&
               strstr(err, "--gpus 0,1: GPUs are for --backend cuda (this run uses cpu)"),
           "%s", err);

    uint8_t id[ZMLX_DIST_ID_BYTES], back[ZMLX_DIST_ID_BYTES];
    char hex[2 * ZMLX_DIST_ID_BYTES + 1];
    for (int i = 0; i < ZMLX_DIST_ID_BYTES; i++) id[i] = (uint8_t)(i * 37 + 11);
    zdist_id_to_hex(id, hex);
    CHECK(strlen(hex) == 256 && zdist_id_from_hex(hex, back) && !memcmp(id, back, sizeof id));
    hex[7] = 'g';
    CHECK(!zdist_id_from_hex(hex, back));
    CHECK(!zdist_id_from_hex("00", back) && !zdist_id_from_hex(NULL, back));
}

/* Every byte the loader holds for m's weights (zweights + float arrays). */
static int64_t loaded_bytes(const zmlx_model *m, int64_t *experts) {
    const zmlx_config *c = &m->cfg;
    const int64_t d = c->hidden_size, f = 4;
    int64_t b = zweight_bytes(&m->embed) + (m->lm_head.data == m->embed.data ? 0 : zweight_bytes(&m->lm_head));
    b += (d + c->qk_rope_dim / 2) * f;
    *experts = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const zlayer *L = &m->layers[l];
        const zweight *ws[] = {&L->q_a, &L->q_b, &L->kv_a, &L->kv_b, &L->o, &L->idx_wq_b,
                               &L->idx_wk, &L->idx_w, &L->gate, &L->up, &L->down, &L->router,
                               &L->sh_gate, &L->sh_up, &L->sh_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) b += ws[i]->data ? zweight_bytes(ws[i]) : 0;
        b += (2 * d + c->q_lora_rank + c->kv_lora_rank) * f;
        if (L->idx_k_norm) b += 2 * c->index_head_dim * f;
        if (L->router_bias) b += c->n_routed_experts * f;
        if (!L->moe) continue;
        for (int32_t e = 0; e < c->n_routed_experts; e++)
            *experts += zweight_bytes(&L->exp_gate[e]) + zweight_bytes(&L->exp_up[e]) +
                        zweight_bytes(&L->exp_down[e]);
    }
    return b;
}

static void test_bytes_of(const char *spec) {
    zmlx_model_params mp = zmlx_model_default_params();
    zmlx_model *m = NULL;
    char err[ZMLX_ERR_MAX];
    if (zmlx_model_load(spec, &mp, &m, err, sizeof err) != ZMLX_OK) {
        fprintf(stderr, "%s: %s\n", spec, err);
        CHECK(0);
        return;
    }
    const zmlx_config *c = &m->cfg;
    int l0 = 0;
    while (!m->layers[l0].moe) l0++;
    int64_t experts;
    const int64_t other = loaded_bytes(m, &experts);
    zdist_part p;
    zerr e;
    for (int32_t R = 1; R <= 4; R++) {
        CHECK(zdist_part_init(&p, c->n_routed_experts, R, ZDIST_CONTIGUOUS, &e) == ZMLX_OK);
        int64_t sum = 0;
        for (int32_t r = 0; r < R; r++) {
            zdist_bytes b;
            zdist_rank_bytes(c, &m->layers[l0].exp_gate[0], &m->layers[0].q_a, 4, 256, &p, r, &b);
            CHECKF(b.replicated == other, "%s: replicated %lld, loader %lld", spec,
                   (long long)b.replicated, (long long)other);
            CHECK(b.total == b.replicated + b.experts + b.cache + b.buffers);
            CHECK(b.cache == (int64_t)c->n_layers * 256 * 4 *
                                 (c->kv_lora_rank + c->qk_rope_dim +
                                  (c->family == ZFAM_DEEPSEEK_V32 ? c->index_head_dim : 0)));
            sum += b.experts;
            /* fits at the total, not one byte below */
            zdist_where w = {.rank = r, .n_ranks = R, .gpu = r, .gpu_name = "Test GPU"};
            CHECK(zdist_fit(c, &m->layers[l0].exp_gate[0], &m->layers[0].q_a, 4, 256, &p, &w,
                            b.total, &e) == ZMLX_OK);
            zmlx_status st = zdist_fit(c, &m->layers[l0].exp_gate[0], &m->layers[0].q_a, 4, 256,
                                       &p, &w, b.total - 1, &e);
            char want[64];
            snprintf(want, sizeof want, "rank %d of %d (GPU %d, Test GPU) cannot hold", r, R, r);
            CHECKF(st == ZMLX_ERR_LIMIT && strstr(e.msg, want), "%s", e.msg);
        }
        CHECKF(sum == experts, "%s R=%d: ranks' experts %lld, loader %lld", spec, R,
               (long long)sum, (long long)experts);
    }
    zmlx_model_free(m);
}

/* The smallest-count hint of the fit message: that many fit, one fewer does not. */
static void test_fit_hint(void) {
    zmlx_config c;
    zerr e;
    uint64_t seed;
    zbuiltin_quant bq;
    CHECK(zbuiltin_config("kimi-k25", &c, &seed, &bq, &e) == ZMLX_OK);
    const zweight q4 = {.dtype = ZDT_U32, .q = ZQ_AFFINE, .bits = 4, .group = 64, .sdtype = ZDT_BF16};
    const int64_t avail = 80LL << 30;
    zdist_part p;
    zdist_part_init(&p, c.n_routed_experts, 4, ZDIST_CONTIGUOUS, &e);
    zdist_where w = {.rank = 0, .n_ranks = 4, .gpu = 0, .gpu_name = "NVIDIA H100 80GB HBM3"};
    zmlx_status st = zdist_fit(&c, &q4, &q4, 2, 4096, &p, &w, avail, &e);
    const char *at = strstr(e.msg, "needs at least ");
    CHECKF(st == ZMLX_ERR_LIMIT && at && strstr(e.msg, "of 384 in each of 60 MoE layers") &&
               strstr(e.msg, "fewer bits per weight)"), "%s", e.msg);
    if (!at) return;
    const int need = atoi(at + strlen("needs at least "));
    CHECKF(need == 8, "Kimi-K2.5 at 4 bits needs %d GPUs of 80 GiB (expected 8)", need);
    for (int32_t R = need - 1; R <= need; R++) {
        zdist_part_init(&p, c.n_routed_experts, R, ZDIST_CONTIGUOUS, &e);
        w.n_ranks = R;
        CHECK((zdist_fit(&c, &q4, &q4, 2, 4096, &p, &w, avail, &e) == ZMLX_OK) == (R == need));
    }
    /* bf16 Kimi on 80 GiB GPUs: what every GPU keeps is too big for any count */
    zdist_part_init(&p, c.n_routed_experts, 8, ZDIST_CONTIGUOUS, &e);
    const zweight bf = {.dtype = ZDT_BF16};
    st = zdist_fit(&c, &bf, &bf, 2, 4096, &p, &w, 10LL << 30, &e);
    CHECKF(st == ZMLX_ERR_LIMIT && strstr(e.msg, "no number of such GPUs holds it"), "%s", e.msg);
}

int main(void) {
    test_partitions();
    test_gpus();
    test_ranks();
    test_bytes_of("builtin:glm47-mini");
    test_bytes_of("builtin:dsv32-tiny");
    test_fit_hint();
    return tc_done();
}
