/*
 * builtin.c — synthetic models with the real architecture and deterministic random
 * weights generated in memory (no files): `builtin:NAME[:key=value,...]`.
 *
 *   glm47-tiny   the dimensions of the glm47-tiny fixture (3 layers, d 128)
 *   glm47-mini   a small GLM-shaped model for a quick demo on 2 cores
 *   glm47-flash  the real GLM-4.7-Flash dimensions (47 layers, 64 experts, d 2048)
 *   dsv32-tiny   the dimensions of the dsv32-tiny fixture (DSA indexer, index_topk 8)
 *   dsv32        the real DeepSeek-V3.2 dimensions (61 layers, 256 experts, d 7168)
 *   kimi-k25     the real Kimi-K2.5 text-model dimensions (61 layers, 384 experts)
 * Overrides: layers, experts, topk, vocab, ctx, bits, group, mode, seed, and index_topk
 * (deepseek_v32 models only).
 *
 * Weight format, like the checkpoints users download (mlx-community's `-4bit`): by
 * default every Linear weight, the embedding and lm_head are MLX affine 4-bit with
 * group 64 (bf16 scales and biases); bits=2|3|5|6|8 and group=32|128 choose other
 * affine layouts, mode=mxfp4 the OCP mxfp4 layout (4-bit E2M1, E8M0 scale per 32), and
 * bits=16 bf16.  As in MLX checkpoints, the MoE router gate and every norm stay
 * unquantized, and so does a weight whose input width is not a multiple of the group.
 *
 * Values: bf16 weights uniform with std 1/sqrt(fan_in) (never exactly zero); quantized
 * weights as random codes with per-group scales and biases drawn so that
 * w = scale * q + bias has the same standard deviation, groups centred to within ~5%
 * (mxfp4: random E2M1 codes, scales 2^e or 2^(e+1) of that size); the packed codes,
 * scales and biases are generated directly, never through a quantizer.  Norm weights 1 +- 0.1, a non-zero
 * router correction bias, indexer LayerNorm bias +- 0.1.  Values depend only on (seed,
 * tensor, element), never on the thread count.  This file is not for checkpoint loading.
 */
#include "backend/pool.h"
#include "model/model.h"

#include <errno.h>
#include <sys/mman.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a builtin model takes from its family beyond the dimensions. */
typedef struct family_extra {
    int32_t first_k_dense; /* layers before the first MoE layer */
    int32_t eos[3];        /* the released end-of-sequence ids (-1 = none) */
} family_extra;

static void glm_base(zmlx_config *c) {
    memset(c, 0, sizeof *c);
    c->family = ZFAM_GLM4_MOE_LITE;
    snprintf(c->model_type, sizeof c->model_type, "glm4_moe_lite");
    c->n_group = c->topk_group = 1;
    c->routed_scaling_factor = 1.8f;
    c->norm_topk_prob = true;
    c->scoring = ZSCORE_SIGMOID;
    c->rms_norm_eps = c->attn_norm_eps = 1e-5f;
    c->rope_type = ZROPE_DEFAULT;
    c->rope_theta = 1e6;
    c->n_shared_experts = 1;
    c->bos_id = c->pad_id = -1;
}

/* DeepSeek-V3.2 and Kimi-K2.5 (MODELS.md 1.2, 1.3): YaRN with original context 4096,
   beta 32/1, mscale 1/1; q_a/kv_a norms at 1e-6. */
static void deepseek_base(zmlx_config *c, zfamily fam, double theta, double factor,
                          float scale, int32_t n_group, int32_t topk_group, float eps) {
    glm_base(c);
    c->family = fam;
    snprintf(c->model_type, sizeof c->model_type, "%s", zfamily_name(fam));
    c->rope_type = ZROPE_YARN;
    c->rope_theta = theta;
    c->rope_factor = factor;
    c->rope_orig_max_pos = 4096;
    c->rope_beta_fast = 32.0;
    c->rope_beta_slow = 1.0;
    c->rope_mscale = c->rope_mscale_all_dim = 1.0;
    c->routed_scaling_factor = scale;
    c->n_group = n_group;
    c->topk_group = topk_group;
    c->rms_norm_eps = eps;
    c->attn_norm_eps = 1e-6f;
}

static void set_dims(zmlx_config *c, int32_t V, int32_t d, int32_t L, int32_t H, int32_t ql,
                     int32_t kvl, int32_t nope, int32_t rope, int32_t v, int32_t I, int32_t mI,
                     int32_t E, int32_t K, int64_t ctx) {
    c->vocab_size = V;
    c->hidden_size = d;
    c->n_layers = L;
    c->n_heads = H;
    c->q_lora_rank = ql;
    c->kv_lora_rank = kvl;
    c->qk_nope_dim = nope;
    c->qk_rope_dim = rope;
    c->v_head_dim = v;
    c->intermediate_size = I;
    c->moe_intermediate_size = mI;
    c->n_routed_experts = E;
    c->experts_per_tok = K;
    c->max_position_embeddings = ctx;
}

static void set_indexer(zmlx_config *c, int32_t n_heads, int32_t head_dim, int32_t topk) {
    c->index_n_heads = n_heads;
    c->index_head_dim = head_dim;
    c->index_topk = topk;
}

static zmlx_status base_config(const char *name, size_t len, zmlx_config *c, family_extra *x,
                               zerr *e) {
    const family_extra glm = {1, {154820, 154827, 154829}}, ds = {3, {1, -1, -1}};
    const family_extra kimi = {1, {163585, -1, -1}};
    glm_base(c);
    *x = glm;
#define IS(s) (len == strlen(s) && !memcmp(name, s, len))
    if (IS("glm47-tiny")) {
        set_dims(c, 1024, 128, 3, 4, 64, 64, 32, 16, 32, 192, 64, 8, 4, 4096);
    } else if (IS("glm47-mini")) {
        set_dims(c, 4096, 512, 6, 8, 192, 128, 64, 32, 64, 1536, 256, 16, 4, 16384);
    } else if (IS("glm47-flash")) {
        set_dims(c, 154880, 2048, 47, 20, 768, 512, 192, 64, 256, 10240, 1536, 64, 4, 202752);
    } else if (IS("dsv32-tiny")) {
        deepseek_base(c, ZFAM_DEEPSEEK_V32, 1e4, 4.0, 2.5f, 4, 2, 1e-6f);
        set_dims(c, 1024, 128, 3, 4, 64, 64, 32, 16, 32, 192, 64, 16, 4, 16384);
        set_indexer(c, 16, 32, 8);
        *x = ds;
        x->first_k_dense = 1;
        c->bos_id = 0;
    } else if (IS("dsv32")) {
        deepseek_base(c, ZFAM_DEEPSEEK_V32, 1e4, 40.0, 2.5f, 8, 4, 1e-6f);
        set_dims(c, 129280, 7168, 61, 128, 1536, 512, 128, 64, 128, 18432, 2048, 256, 8, 163840);
        set_indexer(c, 64, 128, 2048);
        *x = ds;
        c->bos_id = 0;
    } else if (IS("kimi-k25")) {
        deepseek_base(c, ZFAM_KIMI_K25, 5e4, 64.0, 2.827f, 1, 1, 1e-5f);
        set_dims(c, 163840, 7168, 61, 64, 1536, 512, 128, 64, 128, 18432, 2048, 384, 8, 262144);
        *x = kimi;
        c->bos_id = 163584;
        c->pad_id = 163839;
    } else {
        return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                        "builtin:%.*s: unknown builtin model (known: glm47-tiny, glm47-mini, "
                        "glm47-flash, dsv32-tiny, dsv32, kimi-k25)",
                        (int)len, name);
    }
#undef IS
    return ZMLX_OK;
}

static zmlx_status parse_int(const char *key, const char *val, size_t vlen, long long lo,
                             long long hi, long long *out, zerr *e) {
    char buf[32];
    if (vlen == 0 || vlen >= sizeof buf)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "builtin override %s=%.*s: not an integer", key,
                        (int)vlen, val);
    memcpy(buf, val, vlen);
    buf[vlen] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                        "builtin override %s=%s: must be an integer in [%lld, %lld]", key, buf, lo,
                        hi);
    *out = v;
    return ZMLX_OK;
}

static zmlx_status apply_override(zmlx_config *c, uint64_t *seed, zbuiltin_quant *q,
                                  const char *kv, size_t len, zerr *e) {
    const char *eq = memchr(kv, '=', len);
    if (!eq)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "builtin override \"%.*s\": expected key=value",
                        (int)len, kv);
    size_t klen = (size_t)(eq - kv), vlen = len - klen - 1;
    char key[16];
    snprintf(key, sizeof key, "%.*s", (int)(klen < 15 ? klen : 15), kv);
    long long v;
    zmlx_status st;
#define KEY(s) (klen == strlen(s) && !memcmp(kv, s, klen))
    if (KEY("layers")) {
        if ((st = parse_int(key, eq + 1, vlen, 1, ZCFG_MAX_LAYERS, &v, e))) return st;
        c->n_layers = (int32_t)v;
    } else if (KEY("experts")) {
        if ((st = parse_int(key, eq + 1, vlen, 1, 4096, &v, e))) return st;
        c->n_routed_experts = (int32_t)v;
    } else if (KEY("topk")) {
        if ((st = parse_int(key, eq + 1, vlen, 1, 64, &v, e))) return st;
        c->experts_per_tok = (int32_t)v;
    } else if (KEY("vocab")) {
        if ((st = parse_int(key, eq + 1, vlen, 257, 1 << 22, &v, e))) return st;
        c->vocab_size = (int32_t)v;
    } else if (KEY("ctx")) {
        if ((st = parse_int(key, eq + 1, vlen, 1, 1 << 24, &v, e))) return st;
        c->max_position_embeddings = v;
    } else if (KEY("seed")) {
        if ((st = parse_int(key, eq + 1, vlen, 0, 0x7fffffffffffffffLL, &v, e))) return st;
        *seed = (uint64_t)v;
    } else if (KEY("bits")) {
        if ((st = parse_int(key, eq + 1, vlen, 2, 16, &v, e))) return st;
        if (v == 7 || (v > 8 && v != 16))
            return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                            "builtin override bits=%lld: must be 2, 3, 4, 5, 6, 8 (MLX affine) or "
                            "16 (bf16)", v);
        q->bits = (int)v;
    } else if (KEY("mode")) {
        if (vlen == 6 && !memcmp(eq + 1, "affine", 6)) q->mode = ZQ_AFFINE;
        else if (vlen == 5 && !memcmp(eq + 1, "mxfp4", 5)) q->mode = ZQ_MXFP4;
        else
            return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                            "builtin override mode=%.*s: must be affine or mxfp4", (int)vlen, eq + 1);
    } else if (KEY("index_topk")) {
        if (c->family != ZFAM_DEEPSEEK_V32)
            return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                            "builtin override index_topk: only deepseek_v32 models (dsv32, "
                            "dsv32-tiny) have an indexer");
        if ((st = parse_int(key, eq + 1, vlen, 1, 1 << 24, &v, e))) return st;
        c->index_topk = (int32_t)v;
    } else if (KEY("group")) {
        if ((st = parse_int(key, eq + 1, vlen, 32, 128, &v, e))) return st;
        if (v != 32 && v != 64 && v != 128)
            return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                            "builtin override group=%lld: must be 32, 64 or 128", v);
        q->group = (int)v; /* ignored for bf16 */
    } else {
        return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                        "builtin override \"%s\": unknown key (known: layers, experts, topk, "
                        "vocab, ctx, bits, group, mode, seed, index_topk)",
                        key);
    }
#undef KEY
    return ZMLX_OK;
}

/* The weight format the overrides ask for: affine 4-bit g64 unless told otherwise;
 * mxfp4 is 4-bit with group 32. */
static zmlx_status check_quant(const char *spec, zbuiltin_quant *q, zerr *e) {
    if (q->mode != ZQ_MXFP4) {
        if (!q->group) q->group = 64;
        return ZMLX_OK;
    }
    if (q->bits != 4 || (q->group && q->group != 32))
        return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                        "builtin:%s: mode=mxfp4 is 4-bit with group 32 (drop bits/group or use "
                        "mode=affine)", spec);
    q->group = 32;
    return ZMLX_OK;
}

zmlx_status zbuiltin_config(const char *spec, zmlx_config *c, uint64_t *seed, zbuiltin_quant *q,
                            zerr *e) {
    const char *colon = strchr(spec, ':');
    size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
    family_extra x;
    zmlx_status st = base_config(spec, nlen, c, &x, e);
    if (st != ZMLX_OK) return st;
    *seed = 1234;
    *q = (zbuiltin_quant){.bits = 4, .group = 0, .mode = ZQ_AFFINE};
    for (const char *p = colon ? colon + 1 : NULL; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if ((st = apply_override(c, seed, q, p, len, e)) != ZMLX_OK) return st;
        p = comma ? comma + 1 : NULL;
    }
    if ((st = check_quant(spec, q, e)) != ZMLX_OK) return st;
    c->n_dense_layers = 0;
    for (int l = 0; l < c->n_layers; l++) {
        c->layer_is_moe[l] = l >= x.first_k_dense;
        c->n_dense_layers += !c->layer_is_moe[l];
    }
    /* end of sequence: the real ids when the vocabulary has them, else the last id */
    c->n_eos = 0;
    for (int i = 0; i < 3; i++)
        if (x.eos[i] >= 0 && x.eos[i] < c->vocab_size) c->eos_ids[c->n_eos++] = x.eos[i];
    if (c->bos_id >= c->vocab_size) c->bos_id = -1;
    if (c->pad_id >= c->vocab_size) c->pad_id = -1;
    if (c->n_eos == 0) c->eos_ids[c->n_eos++] = c->vocab_size - 1;
    return zmodel_check_limits(c, spec, e);
}

/* ---- deterministic generation ---- */

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* What one generation item writes: bf16 (or E8M0 bytes) through a draw -> value table,
   or raw random bytes (packed codes: every bit pattern is a valid code). */
typedef enum gen_kind { GEN_LUT16 = 0, GEN_LUT8, GEN_RAW } gen_kind;

typedef struct gen_item {
    void *dst;
    int64_t n;           /* elements (GEN_RAW: bytes) */
    gen_kind kind;
    const uint16_t *lut; /* [65536] value of each 16-bit draw (LUT8: the low byte) */
    uint64_t stream;     /* seed ^ item index */
} gen_item;

/* distinct value tables of one model: a uniform per fan-in (d, q_lora, kv_lora, H*v, I,
   mI, ...), and per fan-in a scale and a bias table when quantized */
#define GEN_MAX_LUTS 48

#define GEN_BLOCK 65536

typedef struct gen_region {
    const gen_item *items;
    int64_t *first_block; /* prefix sums of blocks per item */
    int n_items;
} gen_region;

/* wyrand: one 64x64->128 multiply per 64 random bits; iterations are independent */
static inline uint64_t wyrand(uint64_t *st) {
    *st += 0xa0761d6478bd642fULL;
    __uint128_t t = (__uint128_t)*st * (*st ^ 0xe7037ed1a0b428dbULL);
    return (uint64_t)(t >> 64) ^ (uint64_t)t;
}

static void gen_task(void *arg, int64_t task, int thread) {
    const gen_region *r = arg;
    int i = 0;
    while (r->first_block[i + 1] <= task) i++;
    const gen_item *it = &r->items[i];
    int64_t b = task - r->first_block[i], lo = b * GEN_BLOCK;
    int64_t hi = lo + GEN_BLOCK < it->n ? lo + GEN_BLOCK : it->n;
    uint64_t st = mix64(it->stream ^ mix64((uint64_t)b));
    if (it->kind == GEN_RAW) {
        for (int64_t k = lo; k < hi; k += 8) {
            uint64_t bits = wyrand(&st);
            memcpy((uint8_t *)it->dst + k, &bits, (size_t)(hi - k < 8 ? hi - k : 8));
        }
        return;
    }
    for (int64_t k = lo; k < hi; k += 4) {
        uint64_t bits = wyrand(&st);
        for (int64_t j = 0; j < 4 && k + j < hi; j++) {
            uint16_t v = it->lut[(uint16_t)(bits >> (16 * j))];
            if (it->kind == GEN_LUT16) ((uint16_t *)it->dst)[k + j] = v;
            else ((uint8_t *)it->dst)[k + j] = (uint8_t)v;
        }
    }
}

/* The value tables: kind 0 uniform(-a, a) (the bf16 weights), 1 uniform [a, b) (bf16
   scales, biases), 2 E8M0 bytes: a with probability b, else a + 1 (mxfp4 scales). */
typedef struct lut_key {
    int kind;
    float a, b;
} lut_key;

/* The plan: first a counting pass (sizes only, base NULL), then the real one. */
typedef struct gen_plan {
    gen_item *items;
    int n, cap;
    uint8_t *base;     /* the arena, NULL while counting */
    size_t used;       /* bytes handed out (64-byte aligned pieces) */
    uint64_t seed;
    zbuiltin_quant q;
    lut_key lut_keys[GEN_MAX_LUTS];
    uint16_t *luts;    /* [GEN_MAX_LUTS][65536] */
    int n_luts;
} gen_plan;

static const uint16_t *lut_get(gen_plan *p, int kind, float a, float b) {
    for (int i = 0; i < p->n_luts; i++)
        if (p->lut_keys[i].kind == kind && p->lut_keys[i].a == a && p->lut_keys[i].b == b)
            return p->luts + (size_t)i * 65536;
    int i = p->n_luts < GEN_MAX_LUTS ? p->n_luts++ : GEN_MAX_LUTS - 1;
    uint16_t *t = p->luts + (size_t)i * 65536;
    p->lut_keys[i] = (lut_key){kind, a, b};
    for (int v = 0; v < 65536; v++) {
        if (kind == 0) /* (q + 0.5) * a / 32768 for the signed draw q: never zero */
            t[v] = zf32_to_bf16(a / 32768.0f * ((float)(int16_t)(uint16_t)v + 0.5f));
        else if (kind == 1)
            t[v] = zf32_to_bf16(a + (b - a) * (((float)v + 0.5f) / 65536.0f));
        else
            t[v] = (uint16_t)(a + (((float)v + 0.5f) / 65536.0f < b ? 0.0f : 1.0f));
    }
    return t;
}

/* bytes from the arena (NULL while counting) */
static void *plan_bytes(gen_plan *p, size_t n) {
    void *d = p->base ? p->base + p->used : NULL;
    p->used += (n + 63) & ~(size_t)63;
    return d;
}

static void plan_item(gen_plan *p, void *dst, int64_t n, gen_kind kind, const uint16_t *lut) {
    if (p->base) p->items[p->n] = (gen_item){dst, n, kind, lut, mix64(p->seed ^ (uint64_t)p->n)};
    p->n++;
}

/*
 * A [rows, cols] weight of values of half-width amp (std amp / sqrt 3): bf16, or in the
 * builtin's quantized layout when `quant` and cols is a multiple of the group.  With
 * N = 2^bits uniform codes (std sqrt((N^2 - 1) / 12)):
 *   affine: scales in [0.95, 1.05) * s0, s0 = 2 amp / sqrt(N^2 - 1), biases in
 *           [1.05, 0.95) * -s0 (N - 1) / 2: the same std, groups centred to within ~5%
 *   mxfp4:  E2M1 codes (std 2.926) with scale 2^e or 2^(e+1) around t = amp / (2.926 sqrt 3),
 *           2^e with the probability that makes the mean square scale t^2
 */
static zweight plan_linear(gen_plan *p, int64_t rows, int64_t cols, float amp, bool quant) {
    const zbuiltin_quant *q = &p->q;
    if (!quant || q->bits == 16 || cols % q->group) {
        zweight w = {.dtype = ZDT_BF16, .rows = rows, .cols = cols,
                     .data = plan_bytes(p, (size_t)(rows * cols) * 2)};
        plan_item(p, (void *)w.data, rows * cols, GEN_LUT16, p->base ? lut_get(p, 0, amp, 0) : NULL);
        return w;
    }
    const bool mx = q->mode == ZQ_MXFP4;
    const int64_t ng = rows * (cols / q->group), nb = rows * cols * q->bits / 8;
    zweight w = {.dtype = ZDT_U32, .rows = rows, .cols = cols, .q = q->mode, .bits = q->bits,
                 .group = q->group, .sdtype = mx ? ZDT_U8 : ZDT_BF16};
    w.data = plan_bytes(p, (size_t)nb);
    w.scales = plan_bytes(p, (size_t)ng * (mx ? 1 : 2));
    w.biases = mx ? NULL : plan_bytes(p, (size_t)ng * 2);
    plan_item(p, (void *)w.data, nb, GEN_RAW, NULL);
    if (mx) {
        const float t = amp / (2.926f * sqrtf(3.0f)), e = floorf(log2f(t)), lo = ldexpf(1.0f, (int)e);
        const float p_lo = (4.0f * lo * lo - t * t) / (3.0f * lo * lo); /* E[s^2] = t^2 */
        plan_item(p, (void *)w.scales, ng, GEN_LUT8,
                  p->base ? lut_get(p, 2, 127.0f + e, p_lo) : NULL);
        return w;
    }
    const float N = (float)(1 << q->bits), s0 = 2.0f * amp / sqrtf(N * N - 1.0f);
    const float c = -s0 * (N - 1.0f) / 2.0f;
    plan_item(p, (void *)w.scales, ng, GEN_LUT16, p->base ? lut_get(p, 1, 0.95f * s0, 1.05f * s0) : NULL);
    plan_item(p, (void *)w.biases, ng, GEN_LUT16, p->base ? lut_get(p, 1, 1.05f * c, 0.95f * c) : NULL);
    return w;
}

/* A Linear layer's weight: std 1/sqrt(fan_in), quantized like the checkpoints. */
static zweight plan_weight(gen_plan *p, int64_t rows, int64_t cols) {
    return plan_linear(p, rows, cols, sqrtf(3.0f / (float)cols), true);
}

static float *plan_norm(const gen_plan *p, float **cursor, int64_t n, uint64_t seed, float center,
                        float amp) {
    if (!p->base) return NULL; /* counting */
    float *v = *cursor;
    uint64_t s = mix64(seed);
    for (int64_t i = 0; i < n; i++) {
        s = mix64(s);
        float u = (float)((double)(s >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
        v[i] = zbf16_to_f32(zf32_to_bf16(center + amp * u));
        if (v[i] == 0.0f) v[i] = amp * 0.5f;
    }
    *cursor += n;
    return v;
}

/* The DSA indexer of one layer (deepseek_v32). */
static void plan_indexer(gen_plan *p, float **fc, uint64_t *ns, const zmlx_config *c,
                         zlayer *L) {
    const int64_t nI = c->index_n_heads, dI = c->index_head_dim;
    L->idx_wq_b = plan_weight(p, nI * dI, c->q_lora_rank);
    L->idx_wk = plan_weight(p, dI, c->hidden_size);
    L->idx_k_norm = plan_norm(p, fc, dI, (*ns)++, 1.0f, 0.1f);
    L->idx_k_bias = plan_norm(p, fc, dI, (*ns)++, 0.0f, 0.1f);
    L->idx_w = plan_weight(p, nI, c->hidden_size);
}

/* Every weight of the model, in a fixed order (the item index seeds each tensor). */
static void plan_model(gen_plan *p, zmlx_model *m, uint64_t seed) {
    const zmlx_config *c = &m->cfg;
    const int64_t d = c->hidden_size, E = c->n_routed_experts, V = c->vocab_size;
    float *fc = m->f32_arena;
    uint64_t ns = seed * 7919u + 17u;
    m->embed = plan_linear(p, V, d, 1.0f, true); /* embedding rows of O(1) values */
    m->lm_head = plan_weight(p, V, d);
    m->final_norm = plan_norm(p, &fc, d, ns++, 1.0f, 0.1f);
    const int64_t H = c->n_heads, qk = c->qk_nope_dim + c->qk_rope_dim, mI = c->moe_intermediate_size;
    zweight *ex = m->expert_arena;
    for (int l = 0; l < c->n_layers; l++) {
        zlayer *L = &m->layers[l];
        L->moe = c->layer_is_moe[l];
        L->attn_norm = plan_norm(p, &fc, d, ns++, 1.0f, 0.1f);
        L->ffn_norm = plan_norm(p, &fc, d, ns++, 1.0f, 0.1f);
        L->q_a = plan_weight(p, c->q_lora_rank, d);
        L->q_a_norm = plan_norm(p, &fc, c->q_lora_rank, ns++, 1.0f, 0.1f);
        L->q_b = plan_weight(p, H * qk, c->q_lora_rank);
        L->kv_a = plan_weight(p, c->kv_lora_rank + c->qk_rope_dim, d);
        L->kv_a_norm = plan_norm(p, &fc, c->kv_lora_rank, ns++, 1.0f, 0.1f);
        L->kv_b = plan_weight(p, H * (c->qk_nope_dim + c->v_head_dim), c->kv_lora_rank);
        L->o = plan_weight(p, d, H * c->v_head_dim);
        if (c->family == ZFAM_DEEPSEEK_V32) plan_indexer(p, &fc, &ns, c, L);
        if (!L->moe) {
            L->gate = plan_weight(p, c->intermediate_size, d);
            L->up = plan_weight(p, c->intermediate_size, d);
            L->down = plan_weight(p, d, c->intermediate_size);
            continue;
        }
        L->router = plan_linear(p, E, d, sqrtf(3.0f / (float)d), false); /* bf16, as MLX keeps it */
        L->router_bias = plan_norm(p, &fc, E, ns++, 0.0f, 0.1f);
        L->exp_gate = ex;
        L->exp_up = ex + E;
        L->exp_down = ex + 2 * E;
        ex += 3 * E;
        for (int64_t x = 0; x < E; x++) {
            L->exp_gate[x] = plan_weight(p, mI, d);
            L->exp_up[x] = plan_weight(p, mI, d);
            L->exp_down[x] = plan_weight(p, d, mI);
        }
        L->sh_gate = plan_weight(p, mI * c->n_shared_experts, d);
        L->sh_up = plan_weight(p, mI * c->n_shared_experts, d);
        L->sh_down = plan_weight(p, d, mI * c->n_shared_experts);
    }
}

/* Fill every item in parallel: blocks of GEN_BLOCK elements, each seeded by (item, block). */
static zmlx_status fill(const gen_plan *p, int threads) {
    int64_t *first = calloc((size_t)p->n + 1, sizeof(int64_t));
    zpool *pool = NULL;
    if (!first || zpool_init(threads > 0 ? threads : zpool_online_cores(), &pool) != ZMLX_OK) {
        free(first);
        return ZMLX_ERR_NOMEM;
    }
    for (int i = 0; i < p->n; i++)
        first[i + 1] = first[i] + (p->items[i].n + GEN_BLOCK - 1) / GEN_BLOCK;
    gen_region r = {.items = p->items, .first_block = first, .n_items = p->n};
    zpool_run(pool, gen_task, &r, first[p->n]);
    zpool_free(pool);
    free(first);
    return ZMLX_OK;
}

zmlx_status zmodel_load_builtin(zmlx_model *m, const char *spec, zerr *e) {
    uint64_t seed;
    zbuiltin_quant q;
    zmlx_status st = zbuiltin_config(spec, &m->cfg, &seed, &q, e);
    if (st != ZMLX_OK) return st;
    zbuiltin_quant_describe(&q, m->weight_format, sizeof m->weight_format); /* zmlx info */
    const zmlx_config *c = &m->cfg;
    const int64_t d = c->hidden_size, E = c->n_routed_experts;
    int64_t n_moe = c->n_layers - c->n_dense_layers;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    m->expert_arena = calloc((size_t)(n_moe * 3 * E + 1), sizeof(zweight));
    if (!m->layers || !m->expert_arena)
        return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory describing builtin:%s", spec);
    gen_plan p = {.seed = mix64(seed), .q = q};
    plan_model(&p, m, seed); /* counting: sizes and items only */
    const size_t bytes = p.used;
    int64_t avail = zmem_available();
    if (avail >= 0 && (int64_t)bytes > avail - avail / 8)
        return zerr_set(e, ZMLX_ERR_LIMIT,
                        "SKIP(RAM): builtin:%s needs %.2f GiB for its weights but this "
                        "machine has %.2f GiB available; use fewer layers (e.g. :layers=8)",
                        spec, (double)bytes / 1073741824.0, (double)avail / 1073741824.0);
    m->arena = zarena_map(bytes, &m->arena_map, &m->arena_map_bytes);
    m->arena_bytes = bytes;
    m->f32_arena = calloc((size_t)(d + c->n_layers * (2 * d + c->q_lora_rank + c->kv_lora_rank + E +
                                                      2 * (int64_t)c->index_head_dim)),
                          sizeof(float));
    p.cap = p.n;
    p.items = calloc((size_t)p.cap + 1, sizeof(gen_item));
    p.luts = malloc((size_t)GEN_MAX_LUTS * 65536 * 2);
    if (!m->arena || !m->f32_arena || !p.items || !p.luts) {
        free(p.items);
        free(p.luts);
        return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory generating builtin:%s (%.2f GiB)", spec,
                        (double)bytes / 1073741824.0);
    }
    p.base = m->arena;
    p.used = 0;
    p.n = 0;
    plan_model(&p, m, seed);
    st = fill(&p, m->params.threads);
    free(p.items);
    free(p.luts);
    if (st != ZMLX_OK) return zerr_set(e, st, "out of memory starting weight generation");
    return ZMLX_OK;
}
