/*
 * convert_plan.c — mlx-lm's model for a config, walked in module order (the order of
 * tree_flatten(model.parameters()), which decides the shards): which source tensors
 * make each parameter (mlx-lm's sanitize for glm4_moe_lite / deepseek_v3 /
 * deepseek_v32), its dtype after the cast, and whether nn.quantize's predicate
 * quantizes it.  Every source tensor is checked for its exact shape and must be used
 * or deliberately dropped (MTP layers, rotary tables, vision towers), as mlx-lm's
 * strict load_weights demands.
 *
 * Module order per layer (mlx-lm __init__ order):
 *   self_attn: q_a_proj, q_a_layernorm, q_b_proj (or q_proj), kv_a_proj_with_mqa,
 *              kv_a_layernorm, embed_q, unembed_out, o_proj, [indexer: wq_b, wk,
 *              k_norm.weight, k_norm.bias, weights_proj]
 *   mlp:       dense gate_proj, up_proj, down_proj | switch_mlp.{gate,up,down}_proj,
 *              gate.weight, gate.e_score_correction_bias, shared_experts.{gate,up,down}_proj
 *   input_layernorm, post_attention_layernorm
 * around them model.embed_tokens first, model.norm and lm_head last.
 */
#include "io/st_write.h"
#include "tools/convert_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct walker {
    zcv_srcset *s;
    const zcv_params *p;
    zdtype cast;
    zcv_plan *plan;
    zerr *e;
    zmlx_status st;
} walker;

static const char *where(const walker *w) { return w->s->builtin ? "builtin model" : w->s->dir; }

/* The source `name` with exactly [r, c] (r == 0: a 1-D vector of c). */
static zcv_src *need(walker *w, const char *name, int64_t r, int64_t c) {
    if (w->st != ZMLX_OK) return NULL;
    zcv_src *t = zcv_src_find(w->s, name);
    if (!t) {
        char packed[320];
        snprintf(packed, sizeof packed, "%s_packed", name);
        w->st = zcv_src_find(w->s, packed)
                    ? zerr_set(w->e, ZMLX_ERR_UNSUPPORTED, "%s: \"%s\" is compressed-tensors int4 "
                               "(Kimi's routed experts); zmlx convert does not read it yet",
                               where(w), packed)
                    : zerr_set(w->e, ZMLX_ERR_NOT_FOUND, "%s: tensor \"%s\" is missing",
                               where(w), name);
        return NULL;
    }
    int nd = r == 0 ? 1 : 2;
    if (t->ndim != nd || t->shape[0] != (r ? r : 1) || t->shape[1] != c) {
        char want[64], got[64];
        if (r) snprintf(want, sizeof want, "[%lld, %lld]", (long long)r, (long long)c);
        else snprintf(want, sizeof want, "[%lld]", (long long)c);
        if (t->ndim == 2)
            snprintf(got, sizeof got, "[%lld, %lld]", (long long)t->shape[0], (long long)t->shape[1]);
        else if (t->ndim == 1) snprintf(got, sizeof got, "[%lld]", (long long)t->shape[1]);
        else snprintf(got, sizeof got, "%d dimensions", t->ndim);
        w->st = zerr_set(w->e, ZMLX_ERR_FORMAT, "%s: tensor \"%s\" has shape %s but config.json "
                         "implies %s", where(w), name, got, want);
        return NULL;
    }
    bool ok = t->fp8_scale || t->i4_packed || t->w.q != ZQ_NONE || t->dtype == ZDT_F32 ||
              t->dtype == ZDT_BF16 || t->dtype == ZDT_F16;
    if (!ok) {
        w->st = zerr_set(w->e, ZMLX_ERR_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s (expected F32, "
                         "F16, BF16 or fp8 with weight_scale_inv)", where(w), name,
                         zdtype_table[t->dtype].name);
        return NULL;
    }
    t->used = true;
    return t;
}

static int add_out(walker *w, const char *name, const char *suffix, zdtype dt, int ndim,
                   const int64_t *shape) {
    zcv_plan *pl = w->plan;
    if (pl->n_out == pl->cap_out) {
        size_t nc = pl->cap_out ? pl->cap_out * 2 : 256;
        zst_wspec *v = realloc(pl->out, nc * sizeof *v);
        if (!v) return -1;
        pl->out = v;
        pl->cap_out = nc;
    }
    size_t len = strlen(name) + strlen(suffix) + 1;
    char *full = malloc(len);
    if (!full) return -1;
    snprintf(full, len, "%s%s", name, suffix);
    zst_wspec *o = &pl->out[pl->n_out];
    *o = (zst_wspec){.name = full, .dtype = dt, .ndim = ndim};
    memcpy(o->shape, shape, (size_t)ndim * sizeof *shape);
    return (int)pl->n_out++;
}

/* A new unit over `src` (n_src of them) with the logical shape; dtype, predicate, outputs. */
static void unit(walker *w, const char *name, bool module, zcv_op op, zcv_src **src, int n_src,
                 int ndim, const int64_t *shape) {
    if (w->st != ZMLX_OK) return;
    zcv_plan *pl = w->plan;
    if (pl->n_units == pl->cap_units) {
        size_t nc = pl->cap_units ? pl->cap_units * 2 : 256;
        zcv_unit *v = realloc(pl->u, nc * sizeof *v);
        if (!v) goto oom;
        pl->u = v;
        pl->cap_units = nc;
    }
    zcv_unit *u = &pl->u[pl->n_units];
    *u = (zcv_unit){.module = module, .op = op, .n_src = n_src, .ndim = ndim};
    snprintf(u->name, sizeof u->name, "%s", name);
    u->src = malloc((size_t)n_src * sizeof *u->src);
    if (!u->src) goto oom;
    memcpy(u->src, src, (size_t)n_src * sizeof *src);
    memcpy(u->shape, shape, (size_t)ndim * sizeof *shape);
    u->cols = shape[ndim - 1];
    u->rows = 1;
    for (int i = 0; i < ndim - 1; i++) u->rows *= shape[i];
    /* mlx-lm casts every floating parameter but the router bias (cast_predicate) */
    u->dt = src[0]->dtype;
    if (w->cast != ZDT_COUNT && !strstr(name, "e_score_correction_bias")) u->dt = w->cast;
    if (u->dt == ZDT_F16) {
        w->st = zerr_set(w->e, ZMLX_ERR_UNSUPPORTED, "%s: \"%s\" is F16; convert with --dtype "
                         "bfloat16 or --dtype float32", where(w), src[0]->name);
        return;
    }
    const zcv_params *p = w->p;
    u->raw_int4 = src[0]->i4_packed != NULL;
    for (int i = 1; i < n_src; i++)
        if ((src[i]->i4_packed != NULL) != u->raw_int4) {
            w->st = zerr_set(w->e, ZMLX_ERR_UNSUPPORTED, "%s: \"%s\" mixes int4 and dense experts",
                             where(w), name);
            return;
        }
    if (u->raw_int4 && (!module || op == ZCV_OP_EMBED_Q || op == ZCV_OP_UNEMBED)) {
        w->st = zerr_set(w->e, ZMLX_ERR_UNSUPPORTED, "%s: \"%s\" is compressed-tensors int4; zmlx "
                         "convert keeps int4 only for Linear weights and routed experts", where(w),
                         src[0]->name);
        return;
    }
    u->quant = u->raw_int4 || (module && p->mode != ZCV_Q_NONE && u->cols % p->group == 0);
    int64_t sh[3];
    memcpy(sh, shape, (size_t)ndim * sizeof *sh);
    u->out0 = (int)pl->n_out;
    if (u->raw_int4) { /* mlx-lm's remap: affine 4-bit g32, never requantized */
        sh[ndim - 1] = u->cols / 8;
        if (add_out(w, name, ".weight", ZDT_U32, ndim, sh) < 0) goto oom;
        sh[ndim - 1] = u->cols / 32;
        if (add_out(w, name, ".scales", u->dt, ndim, sh) < 0) goto oom;
        if (add_out(w, name, ".biases", u->dt, ndim, sh) < 0) goto oom;
        pl->n_raw_int4++;
    } else if (!u->quant) {
        if (add_out(w, name, module ? ".weight" : "", u->dt, ndim, sh) < 0) goto oom;
    } else {
        sh[ndim - 1] = u->cols * p->bits / 32;
        if (add_out(w, name, ".weight", ZDT_U32, ndim, sh) < 0) goto oom;
        sh[ndim - 1] = u->cols / p->group;
        if (add_out(w, name, ".scales", p->mode == ZCV_Q_MXFP4 ? ZDT_U8 : u->dt, ndim, sh) < 0)
            goto oom;
        if (p->mode == ZCV_Q_AFFINE && add_out(w, name, ".biases", u->dt, ndim, sh) < 0) goto oom;
        pl->n_quantized++;
    }
    u->n_out = (int)pl->n_out - u->out0;
    pl->total_params += (uint64_t)(u->rows * u->cols);
    pl->n_units++;
    return;
oom:
    w->st = zerr_set(w->e, ZMLX_ERR_NOMEM, "out of memory planning the conversion");
}

static void fmt_name(char *buf, size_t n, const char *pre, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void fmt_name(char *buf, size_t n, const char *pre, const char *fmt, va_list ap) {
    int o = snprintf(buf, n, "%s", pre);
    vsnprintf(buf + o, n - (size_t)o, fmt, ap);
}

/* A Linear / Embedding: <path>.weight [r, c]. */
static void module(walker *w, int64_t r, int64_t c, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void module(walker *w, int64_t r, int64_t c, const char *fmt, ...) {
    char path[240], name[256];
    va_list ap;
    va_start(ap, fmt);
    fmt_name(path, sizeof path, w->s->cfg.tensor_prefix, fmt, ap);
    va_end(ap);
    snprintf(name, sizeof name, "%s.weight", path);
    zcv_src *t = need(w, name, r, c);
    if (t) unit(w, path, true, ZCV_OP_COPY, &t, 1, 2, (int64_t[]){r, c});
}

/* A plain parameter (norm weight or bias, router): [c] when r == 0, else [r, c]. */
static void param(walker *w, int64_t r, int64_t c, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void param(walker *w, int64_t r, int64_t c, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    fmt_name(name, sizeof name, w->s->cfg.tensor_prefix, fmt, ap);
    va_end(ap);
    zcv_src *t = need(w, name, r, c);
    if (!t) return;
    if (r == 0) unit(w, name, false, ZCV_OP_COPY, &t, 1, 1, (int64_t[]){c});
    else unit(w, name, false, ZCV_OP_COPY, &t, 1, 2, (int64_t[]){r, c});
}

/* switch_mlp.<proj>: the E experts' <proj>.weight [r, c] stacked to [E, r, c]. */
static void stack(walker *w, int l, const char *proj, int64_t r, int64_t c) {
    const int E = w->s->cfg.n_routed_experts;
    zcv_src **src = calloc((size_t)E, sizeof *src);
    if (!src) {
        w->st = zerr_set(w->e, ZMLX_ERR_NOMEM, "out of memory planning the conversion");
        return;
    }
    char name[256], path[240];
    const char *pre = w->s->cfg.tensor_prefix;
    for (int x = 0; x < E && w->st == ZMLX_OK; x++) {
        snprintf(name, sizeof name, "%smodel.layers.%d.mlp.experts.%d.%s.weight", pre, l, x, proj);
        src[x] = need(w, name, r, c);
    }
    snprintf(path, sizeof path, "%smodel.layers.%d.mlp.switch_mlp.%s", pre, l, proj);
    unit(w, path, true, ZCV_OP_STACK, src, E, 3, (int64_t[]){E, r, c});
    free(src);
}

/* kv_b_proj [H*(nope+v), kv_lora] -> embed_q [H, kv_lora, nope], unembed_out [H, v, kv_lora]. */
static void kv_b(walker *w, int l) {
    const zmlx_config *c = &w->s->cfg;
    const int64_t H = c->n_heads, nope = c->qk_nope_dim, v = c->v_head_dim, kvl = c->kv_lora_rank;
    char name[256], path[240];
    const char *pre = c->tensor_prefix;
    snprintf(name, sizeof name, "%smodel.layers.%d.self_attn.kv_b_proj.weight", pre, l);
    zcv_src *t = need(w, name, H * (nope + v), kvl);
    if (!t) return;
    snprintf(path, sizeof path, "%smodel.layers.%d.self_attn.embed_q", pre, l);
    unit(w, path, true, ZCV_OP_EMBED_Q, &t, 1, 3, (int64_t[]){H, kvl, nope});
    snprintf(path, sizeof path, "%smodel.layers.%d.self_attn.unembed_out", pre, l);
    unit(w, path, true, ZCV_OP_UNEMBED, &t, 1, 3, (int64_t[]){H, v, kvl});
}

static void layer(walker *w, int l) {
    const zmlx_config *c = &w->s->cfg;
    const int64_t d = c->hidden_size, H = c->n_heads, qk = c->qk_nope_dim + c->qk_rope_dim;
    const int64_t ql = c->q_lora_rank, mI = c->moe_intermediate_size, E = c->n_routed_experts;
#define AT(sfx) "model.layers.%d.self_attn." sfx
    if (ql > 0) {
        module(w, ql, d, AT("q_a_proj"), l);
        param(w, 0, ql, AT("q_a_layernorm.weight"), l);
        module(w, H * qk, ql, AT("q_b_proj"), l);
    } else {
        module(w, H * qk, d, AT("q_proj"), l);
    }
    module(w, c->kv_lora_rank + c->qk_rope_dim, d, AT("kv_a_proj_with_mqa"), l);
    param(w, 0, c->kv_lora_rank, AT("kv_a_layernorm.weight"), l);
    kv_b(w, l);
    module(w, d, H * c->v_head_dim, AT("o_proj"), l);
    if (c->family == ZFAM_DEEPSEEK_V32) {
        const int64_t nI = c->index_n_heads, dI = c->index_head_dim;
        module(w, nI * dI, ql, AT("indexer.wq_b"), l);
        module(w, dI, d, AT("indexer.wk"), l);
        param(w, 0, dI, AT("indexer.k_norm.weight"), l);
        param(w, 0, dI, AT("indexer.k_norm.bias"), l);
        module(w, nI, d, AT("indexer.weights_proj"), l);
    }
#undef AT
#define MT(sfx) "model.layers.%d.mlp." sfx
    if (!c->layer_is_moe[l]) {
        module(w, c->intermediate_size, d, MT("gate_proj"), l);
        module(w, c->intermediate_size, d, MT("up_proj"), l);
        module(w, d, c->intermediate_size, MT("down_proj"), l);
    } else {
        stack(w, l, "gate_proj", mI, d);
        stack(w, l, "up_proj", mI, d);
        stack(w, l, "down_proj", d, mI);
        param(w, E, d, MT("gate.weight"), l);
        param(w, 0, E, MT("gate.e_score_correction_bias"), l);
        if (c->n_shared_experts > 0) {
            const int64_t sI = mI * c->n_shared_experts;
            module(w, sI, d, MT("shared_experts.gate_proj"), l);
            module(w, sI, d, MT("shared_experts.up_proj"), l);
            module(w, d, sI, MT("shared_experts.down_proj"), l);
        }
    }
#undef MT
    param(w, 0, d, "model.layers.%d.input_layernorm.weight", l);
    param(w, 0, d, "model.layers.%d.post_attention_layernorm.weight", l);
}

/* Tensors mlx-lm's sanitize drops: layers >= num_hidden_layers (MTP), rotary tables and
   Kimi's vision tower. */
static bool dropped(const zcv_srcset *s, const char *name) {
    const char *pre = s->cfg.tensor_prefix;
    size_t pl = strlen(pre);
    if (strstr(name, "rotary_emb.inv_freq")) return true;
    static const char *const vision[] = {"vision_tower", "vision_model", "multi_modal_projector",
                                         "mm_projector"};
    for (size_t i = 0; i < sizeof vision / sizeof vision[0]; i++)
        if (!strncmp(name, vision[i], strlen(vision[i]))) return true;
    if (strncmp(name, pre, pl) != 0 || strncmp(name + pl, "model.layers.", 13) != 0) return false;
    return atol(name + pl + 13) >= s->cfg.n_layers;
}

zmlx_status zcv_plan_build(zcv_srcset *s, const zcv_params *p, zdtype cast, zcv_plan *plan,
                           zerr *e) {
    memset(plan, 0, sizeof *plan);
    walker w = {.s = s, .p = p, .cast = cast, .plan = plan, .e = e};
    const zmlx_config *c = &s->cfg;
    const int64_t V = c->vocab_size, d = c->hidden_size;
    module(&w, V, d, "model.embed_tokens");
    for (int l = 0; l < c->n_layers; l++) layer(&w, l);
    param(&w, 0, d, "model.norm.weight");
    if (!c->tie_word_embeddings) module(&w, V, d, "lm_head");
    for (size_t i = 0; w.st == ZMLX_OK && i < s->n; i++)
        if (!s->v[i].used && !dropped(s, s->v[i].name))
            w.st = zerr_set(e, ZMLX_ERR_FORMAT, "%s: tensor \"%s\" is not part of the %s model "
                            "(mlx-lm's strict load would reject it too)", where(&w),
                            s->v[i].name, zfamily_name(c->family));
    if (w.st != ZMLX_OK) zcv_plan_free(plan);
    return w.st;
}

void zcv_plan_free(zcv_plan *plan) {
    for (size_t i = 0; i < plan->n_units; i++) free(plan->u[i].src);
    for (size_t i = 0; i < plan->n_out; i++) free((char *)plan->out[i].name);
    free(plan->u);
    free(plan->out);
    memset(plan, 0, sizeof *plan);
}

/* ---- reading a unit's rows ---- */

static void round_to(zdtype dt, float *v, int64_t n) {
    if (dt != ZDT_BF16) return;
    for (int64_t i = 0; i < n; i++) v[i] = zbf16_to_f32(zf32_to_bf16(v[i]));
}

void zcv_unit_rows(const zcv_unit *u, int64_t r0, int64_t n, float *out) {
    const zcv_src *t = u->src[0];
    for (int64_t i = 0; i < n; i++) {
        int64_t r = r0 + i;
        float *o = out + i * u->cols;
        switch (u->op) {
        case ZCV_OP_COPY: zcv_src_row(t, r, o); break;
        case ZCV_OP_STACK: zcv_src_row(u->src[r / u->shape[1]], r % u->shape[1], o); break;
        case ZCV_OP_EMBED_Q: { /* row (h, c) of [H, kv_lora, nope]: kv_b[h*(nope+v) + j][c] */
            int64_t kvl = u->shape[1], nope = u->shape[2], hd = t->shape[0] / u->shape[0];
            int64_t h = r / kvl, c = r % kvl;
            for (int64_t j = 0; j < nope; j++) o[j] = zcv_src_at(t, h * hd + j, c);
            break;
        }
        case ZCV_OP_UNEMBED: { /* row (h, i) of [H, v, kv_lora]: kv_b[h*(nope+v) + nope + i] */
            int64_t v = u->shape[1], hd = t->shape[0] / u->shape[0];
            zcv_src_row(t, (r / v) * hd + (hd - v) + r % v, o);
            break;
        }
        }
        round_to(u->dt, o, u->cols);
    }
}
