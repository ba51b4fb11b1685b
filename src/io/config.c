/*
 * config.c — config.json -> zmlx_config for every supported family (see config.h).
 *
 * What it is for: reading both key dialects, filling defaults and rejecting anything
 * malformed or out of range with one line naming the file, the field and the value.
 * What it is not for: deciding whether a family can run (the model loader does).  The
 * quantization block is validated here too but parsed by qconfig.c (zcfg_load_quant
 * returns it).
 *
 * Dialect precedence: a transformers-5 `rope_parameters` object (non-null) wins over the
 * released `rope_theta`/`rope_scaling` pair, because transformers 5 rebuilds
 * rope_parameters from the legacy keys on load and then reads only it; a top-level
 * `rope_theta` is used only when rope_parameters lacks one.  Likewise `mlp_layer_types`,
 * when present, alone decides which layers are MoE; first_k_dense_replace and
 * moe_layer_freq are then not read.
 *
 * Defaults (a JSON null is the same as an absent key):
 *   q_lora_rank 0 (plain q_proj), n_group 1, topk_group 1, moe_layer_freq 1,
 *   routed_scaling_factor 1.0 (mlx-lm; transformers' DeepseekV3Config says 2.5, but every
 *   released config writes the key), norm_topk_prob true (transformers and mlx-lm),
 *   tie_word_embeddings false, scoring_func sigmoid (GLM-4.7-Flash omits it; MODELS.md),
 *   bos/pad -1, no eos ids.  Kimi's token ids and tie_word_embeddings fall back from
 *   text_config to the top level.
 *   YaRN: beta_fast 32, beta_slow 1, mscale 1, mscale_all_dim 0 (DeepSeek's reference and
 *   transformers: a missing mscale_all_dim means no softmax-scale correction);
 *   original_max_position_embeddings = max_position_embeddings (transformers).
 * Keys that size tensors, or whose defaults differ between families or references
 * (first_k_dense_replace, n_shared_experts, rms_norm_eps, rope_theta, yarn factor), are
 * required.  Integer fields must be JSON integers; real fields accept either.  Not read:
 * head_dim (an alias of qk_rope_head_dim in transformers 5), num_key_value_heads,
 * partial_rotary_factor, rope_interleave (the family decides).
 */
#include "io/config.h"
#include "io/qconfig.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_FILE_MAX ((size_t)16 << 20) /* a config.json is a few KB */

/* Where keys are looked up and how errors name them. */
typedef struct pctx {
    const char *fname;
    const json_t *obj;
    const char *scope; /* printed before keys: "", "text_config.", "rope_scaling." */
    zerr *e;
} pctx;

/* One int32 field of zmlx_config read straight from the text-model object. */
typedef struct int_field {
    const char *key;
    size_t off; /* of an int32_t inside zmlx_config */
    bool required;
    int32_t def, min; /* def applies when the key is absent or null */
} int_field;

#define F(name) offsetof(zmlx_config, name)
static const int_field k_ints[] = {
    {"vocab_size", F(vocab_size), true, 0, 1},
    {"hidden_size", F(hidden_size), true, 0, 1},
    {"num_hidden_layers", F(n_layers), true, 0, 1},
    {"num_attention_heads", F(n_heads), true, 0, 1},
    {"q_lora_rank", F(q_lora_rank), false, 0, 0},
    {"kv_lora_rank", F(kv_lora_rank), true, 0, 1},
    {"qk_nope_head_dim", F(qk_nope_dim), true, 0, 1},
    {"qk_rope_head_dim", F(qk_rope_dim), true, 0, 2},
    {"v_head_dim", F(v_head_dim), true, 0, 1},
    {"intermediate_size", F(intermediate_size), true, 0, 1},
    {"moe_intermediate_size", F(moe_intermediate_size), true, 0, 1},
    {"n_routed_experts", F(n_routed_experts), true, 0, 1},
    {"n_shared_experts", F(n_shared_experts), true, 0, 0},
    {"num_experts_per_tok", F(experts_per_tok), true, 0, 1},
    {"n_group", F(n_group), false, 1, 1},
    {"topk_group", F(topk_group), false, 1, 1},
};
static const int_field k_index_ints[] = {
    {"index_n_heads", F(index_n_heads), true, 0, 1},
    {"index_head_dim", F(index_head_dim), true, 0, 1},
    {"index_topk", F(index_topk), true, 0, 1},
};
#undef F

static const struct {
    const char *name;
    zfamily family;
} k_types[] = {
    {"glm4_moe_lite", ZFAM_GLM4_MOE_LITE}, {"deepseek_v3", ZFAM_DEEPSEEK_V3},
    {"deepseek_v32", ZFAM_DEEPSEEK_V32},   {"kimi_k25", ZFAM_KIMI_K25},
    {"kimi_k2", ZFAM_DEEPSEEK_V3}, /* mlx-lm's MODEL_REMAPPING */
};
#define SUPPORTED_TYPES "glm4_moe_lite, deepseek_v3, deepseek_v32, kimi_k25, kimi_k2"

const char *zfamily_name(zfamily f) {
    switch (f) {
    case ZFAM_GLM4_MOE_LITE: return "glm4_moe_lite";
    case ZFAM_DEEPSEEK_V3: return "deepseek_v3";
    case ZFAM_DEEPSEEK_V32: return "deepseek_v32";
    case ZFAM_KIMI_K25: return "kimi_k25";
    }
    return "unknown";
}

/* A short one-line rendering of a JSON value for messages (also used by qconfig.c). */
const char *zcfg_json_show(const json_t *v, char *buf, size_t n) {
    switch (json_typeof(v)) {
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v), k = 0, cap = n - 6; /* quotes, "...", NUL */
        buf[k++] = '"';
        for (size_t i = 0; i < len && k < cap; i++)
            buf[k++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
        if (len > cap - 1) k += (size_t)snprintf(buf + k, n - k, "...");
        snprintf(buf + k, n - k, "\"");
        break;
    }
    case JSON_INTEGER: snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: snprintf(buf, n, "%.9g", json_real_value(v)); break;
    case JSON_TRUE: snprintf(buf, n, "true"); break;
    case JSON_FALSE: snprintf(buf, n, "false"); break;
    case JSON_NULL: snprintf(buf, n, "null"); break;
    case JSON_OBJECT: snprintf(buf, n, "{...}"); break;
    case JSON_ARRAY: snprintf(buf, n, "[...]"); break;
    }
    return buf;
}

/* The value of key, or NULL when absent or null. */
static const json_t *get(const pctx *p, const char *key) {
    const json_t *v = p->obj ? json_object_get(p->obj, key) : NULL;
    return json_is_null(v) ? NULL : v;
}

static zmlx_status missing(const pctx *p, const char *key) {
    return zerr_set(p->e, ZMLX_ERR_FORMAT, "%s: required field \"%s%s\" is missing", p->fname,
                    p->scope, key);
}

static zmlx_status bad(const pctx *p, zmlx_status st, const char *key, const json_t *v,
                       const char *why) {
    char b[64];
    return zerr_set(p->e, st, "%s: field \"%s%s\" = %s %s", p->fname, p->scope, key,
                    zcfg_json_show(v, b, sizeof b), why);
}

/* An integer in [lo, hi]; *out is left alone when the key is absent and optional. */
static zmlx_status get_int(const pctx *p, const char *key, bool required, int64_t lo, int64_t hi,
                           int64_t *out) {
    const json_t *v = get(p, key);
    if (!v) return required ? missing(p, key) : ZMLX_OK;
    if (!json_is_integer(v)) return bad(p, ZMLX_ERR_FORMAT, key, v, "must be an integer");
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) {
        char why[64];
        if (x < lo)
            snprintf(why, sizeof why, "must be >= %lld", (long long)lo);
        else
            snprintf(why, sizeof why, "must be <= %lld", (long long)hi);
        return bad(p, ZMLX_ERR_FORMAT, key, v, why);
    }
    *out = x;
    return ZMLX_OK;
}

/* A number (integer or real) > lo (open) or >= lo; *out is left alone when absent. */
static zmlx_status get_real(const pctx *p, const char *key, bool required, double lo, bool open,
                            double *out) {
    const json_t *v = get(p, key);
    if (!v) return required ? missing(p, key) : ZMLX_OK;
    if (!json_is_number(v)) return bad(p, ZMLX_ERR_FORMAT, key, v, "must be a number");
    double x = json_number_value(v);
    if (!isfinite(x) || (open ? x <= lo : x < lo)) {
        char why[48];
        snprintf(why, sizeof why, "must be %s %g", open ? ">" : ">=", lo);
        return bad(p, ZMLX_ERR_FORMAT, key, v, why);
    }
    *out = x;
    return ZMLX_OK;
}

/* A positive real that stays positive and finite as a float (eps, scaling factor). */
static zmlx_status get_float(const pctx *p, const char *key, bool required, float *out) {
    double x = *out;
    zmlx_status st = get_real(p, key, required, 0.0, true, &x);
    if (!st && (x > FLT_MAX || x < FLT_MIN))
        return bad(p, ZMLX_ERR_FORMAT, key, get(p, key), "is outside the float range");
    if (!st) *out = (float)x;
    return st;
}

static zmlx_status get_bool(const pctx *p, const char *key, bool *out) {
    const json_t *v = get(p, key);
    if (!v) return ZMLX_OK;
    if (!json_is_boolean(v)) return bad(p, ZMLX_ERR_FORMAT, key, v, "must be true or false");
    *out = json_is_true(v);
    return ZMLX_OK;
}

/* A string; *out is NULL when absent and optional. */
static zmlx_status get_str(const pctx *p, const char *key, bool required, const char **out) {
    const json_t *v = get(p, key);
    *out = NULL;
    if (!v) return required ? missing(p, key) : ZMLX_OK;
    if (!json_is_string(v)) return bad(p, ZMLX_ERR_FORMAT, key, v, "must be a string");
    *out = json_string_value(v);
    return ZMLX_OK;
}

static zmlx_status read_int_table(const pctx *p, const int_field *t, size_t n, zmlx_config *c) {
    for (size_t i = 0; i < n; i++) {
        int64_t v = t[i].def;
        zmlx_status st = get_int(p, t[i].key, t[i].required, t[i].min, INT32_MAX, &v);
        if (st) return st;
        *(int32_t *)(void *)((char *)c + t[i].off) = (int32_t)v;
    }
    return ZMLX_OK;
}

/* model_type -> family; for kimi_k25 points *text at `text_config`. */
static zmlx_status parse_family(const pctx *root, zmlx_config *c, pctx *text) {
    const char *mt;
    zmlx_status st = get_str(root, "model_type", true, &mt);
    if (st) return st;
    size_t i = 0, n = sizeof k_types / sizeof k_types[0];
    while (i < n && strcmp(mt, k_types[i].name) != 0)
        i++;
    if (i == n)
        return bad(root, ZMLX_ERR_UNSUPPORTED, "model_type", get(root, "model_type"),
                   "is not supported (supported: " SUPPORTED_TYPES ")");
    c->family = k_types[i].family;
    snprintf(c->model_type, sizeof c->model_type, "%s", mt);
    *text = *root;
    if (c->family != ZFAM_KIMI_K25) return ZMLX_OK;

    const json_t *tc = get(root, "text_config");
    if (!tc) return missing(root, "text_config");
    if (!json_is_object(tc))
        return bad(root, ZMLX_ERR_FORMAT, "text_config", tc, "must be an object");
    text->obj = tc;
    text->scope = "text_config.";
    snprintf(c->tensor_prefix, sizeof c->tensor_prefix, "language_model.");
    if ((st = get_str(text, "model_type", false, &mt))) return st;
    if (mt && strcmp(mt, "kimi_k2") != 0 && strcmp(mt, "deepseek_v3") != 0)
        return bad(text, ZMLX_ERR_UNSUPPORTED, "model_type", get(text, "model_type"),
                   "is not supported inside kimi_k25 (supported: kimi_k2, deepseek_v3)");
    return ZMLX_OK;
}

/* The YaRN keys of a rope_scaling / rope_parameters object (defaults: file comment). */
static zmlx_status parse_yarn(const pctx *rp, zmlx_config *c) {
    zmlx_status st;
    c->rope_type = ZROPE_YARN;
    if (get(rp, "attention_factor"))
        return bad(
            rp, ZMLX_ERR_UNSUPPORTED, "attention_factor", get(rp, "attention_factor"),
            "is not supported (the softmax and rope scales come from mscale/mscale_all_dim)");
    if ((st = get_real(rp, "factor", true, 0.0, true, &c->rope_factor))) return st;
    if ((st = get_real(rp, "beta_fast", false, 0.0, true, &c->rope_beta_fast))) return st;
    if ((st = get_real(rp, "beta_slow", false, 0.0, true, &c->rope_beta_slow))) return st;
    if ((st = get_real(rp, "mscale", false, 0.0, false, &c->rope_mscale))) return st;
    if ((st = get_real(rp, "mscale_all_dim", false, 0.0, false, &c->rope_mscale_all_dim)))
        return st;
    return get_int(rp, "original_max_position_embeddings", false, 1, INT64_MAX,
                   &c->rope_orig_max_pos);
}

/* rope_theta and the rope type (precedence: file comment). */
static zmlx_status parse_rope(const pctx *p, zmlx_config *c) {
    const char *key = "rope_parameters";
    const json_t *obj = get(p, key);
    if (!obj) obj = get(p, key = "rope_scaling");
    if (obj && !json_is_object(obj))
        return bad(p, ZMLX_ERR_FORMAT, key, obj, "must be an object or null");
    char scope[64];
    snprintf(scope, sizeof scope, "%s%s.", p->scope, key);
    pctx rp = {p->fname, obj, scope, p->e};

    zmlx_status st;
    bool own_theta = obj && strcmp(key, "rope_parameters") == 0 && get(&rp, "rope_theta");
    if ((st = get_real(own_theta ? &rp : p, "rope_theta", true, 0.0, true, &c->rope_theta)))
        return st;

    c->rope_type = ZROPE_DEFAULT;
    c->rope_factor = 1.0, c->rope_beta_fast = 32.0, c->rope_beta_slow = 1.0;
    c->rope_mscale = 1.0, c->rope_mscale_all_dim = 0.0;
    c->rope_orig_max_pos = c->max_position_embeddings;
    const char *tkey = "rope_type", *type;
    if ((st = get_str(&rp, tkey, false, &type))) return st;
    if (!type && (st = get_str(&rp, tkey = "type", false, &type))) return st;
    if (!type || strcmp(type, "default") == 0) return ZMLX_OK;
    if (strcmp(type, "yarn") == 0) return parse_yarn(&rp, c);
    return bad(&rp, ZMLX_ERR_UNSUPPORTED, tkey, get(&rp, tkey),
               "is not supported (supported: default, yarn)");
}

/* layer_is_moe from mlp_layer_types, else first_k_dense_replace / moe_layer_freq. */
static zmlx_status parse_layers(const pctx *p, zmlx_config *c) {
    const json_t *types = get(p, "mlp_layer_types");
    if (types) {
        if (!json_is_array(types))
            return bad(p, ZMLX_ERR_FORMAT, "mlp_layer_types", types, "must be an array");
        size_t n = json_array_size(types);
        if (n != (size_t)c->n_layers)
            return zerr_set(p->e, ZMLX_ERR_FORMAT,
                            "%s: field \"%smlp_layer_types\" has %zu entries but "
                            "num_hidden_layers = %d",
                            p->fname, p->scope, n, c->n_layers);
        for (size_t i = 0; i < n; i++) {
            const json_t *t = json_array_get(types, i);
            const char *s = json_is_string(t) ? json_string_value(t) : "";
            if (strcmp(s, "dense") != 0 && strcmp(s, "sparse") != 0) {
                char key[48];
                snprintf(key, sizeof key, "mlp_layer_types[%zu]", i);
                return bad(p, ZMLX_ERR_FORMAT, key, t, "must be \"dense\" or \"sparse\"");
            }
            c->layer_is_moe[i] = s[0] == 's';
        }
        return ZMLX_OK;
    }
    int64_t first = 0, freq = 1;
    zmlx_status st = get_int(p, "first_k_dense_replace", true, 0, INT32_MAX, &first);
    if (!st) st = get_int(p, "moe_layer_freq", false, 1, INT32_MAX, &freq);
    for (int32_t i = 0; !st && i < c->n_layers; i++)
        c->layer_is_moe[i] = i >= first && i % freq == 0;
    return st;
}

/* One token id: an integer in [lo, vocab_size); lo = -1 lets -1 mean "none" (bos/pad). */
static zmlx_status token_id(const pctx *p, const char *key, const json_t *v, int lo, int32_t vocab,
                            int32_t *out) {
    if (!json_is_integer(v)) return bad(p, ZMLX_ERR_FORMAT, key, v, "must be an integer");
    json_int_t x = json_integer_value(v);
    if (x < lo || x >= vocab) {
        char why[64];
        snprintf(why, sizeof why, "is outside the vocabulary (vocab_size = %d)", vocab);
        return bad(p, ZMLX_ERR_FORMAT, key, v, why);
    }
    *out = (int32_t)x;
    return ZMLX_OK;
}

/* Token ids live in the text model's object; Kimi's are also at top level (`outer`). */
static zmlx_status parse_tokens(const pctx *text, const pctx *outer, zmlx_config *c) {
    static const char *const keys[] = {"bos_token_id", "pad_token_id", "eos_token_id"};
    int32_t *dst[] = {&c->bos_id, &c->pad_id, NULL};
    c->bos_id = c->pad_id = -1;
    for (int k = 0; k < 3; k++) {
        const pctx *p = get(text, keys[k]) ? text : outer;
        const json_t *v = get(p, keys[k]);
        zmlx_status st = ZMLX_OK;
        if (!v) continue;
        if (dst[k]) {
            st = token_id(p, keys[k], v, -1, c->vocab_size, dst[k]);
        } else if (!json_is_array(v)) {
            c->n_eos = 1;
            st = token_id(p, keys[k], v, 0, c->vocab_size, &c->eos_ids[0]);
        } else if (json_array_size(v) > ZCFG_MAX_EOS) {
            return zerr_set(p->e, ZMLX_ERR_UNSUPPORTED,
                            "%s: field \"%s%s\" lists %zu ids, more than ZCFG_MAX_EOS = %d",
                            p->fname, p->scope, keys[k], json_array_size(v), ZCFG_MAX_EOS);
        } else {
            c->n_eos = (int32_t)json_array_size(v);
            for (int32_t i = 0; !st && i < c->n_eos; i++) {
                char key[40];
                snprintf(key, sizeof key, "%s[%d]", keys[k], i);
                st = token_id(p, key, json_array_get(v, (size_t)i), 0, c->vocab_size,
                              &c->eos_ids[i]);
            }
        }
        if (st) return st;
    }
    return ZMLX_OK;
}

/* "file: field "key" = val why = ref" (a value inconsistent with another field). */
static zmlx_status cross(const pctx *p, const char *key, int32_t val, const char *why,
                         int32_t ref) {
    return zerr_set(p->e, ZMLX_ERR_FORMAT, "%s: field \"%s%s\" = %d %s = %d", p->fname, p->scope,
                    key, val, why, ref);
}

/* Top-k must be satisfiable: k <= experts, groups divide experts, k fits the kept groups. */
static zmlx_status check_experts(const pctx *p, const zmlx_config *c) {
    int32_t per_group = c->n_routed_experts / c->n_group;
    if (c->experts_per_tok > c->n_routed_experts)
        return cross(p, "num_experts_per_tok", c->experts_per_tok, "exceeds n_routed_experts",
                     c->n_routed_experts);
    if (c->n_routed_experts % c->n_group)
        return cross(p, "n_group", c->n_group, "does not divide n_routed_experts",
                     c->n_routed_experts);
    if (c->topk_group > c->n_group)
        return cross(p, "topk_group", c->topk_group, "exceeds n_group", c->n_group);
    if (c->experts_per_tok > c->topk_group * per_group)
        return cross(p, "num_experts_per_tok", c->experts_per_tok,
                     "exceeds topk_group * experts per group", c->topk_group * per_group);
    return ZMLX_OK;
}

/* scoring_func, topk_method, scaling, and the top-k / group consistency checks. */
static zmlx_status parse_router(const pctx *p, zmlx_config *c) {
    const char *s;
    zmlx_status st = get_str(p, "scoring_func", false, &s);
    if (st) return st;
    c->scoring = ZSCORE_SIGMOID;
    if (s && strcmp(s, "softmax") == 0)
        c->scoring = ZSCORE_SOFTMAX;
    else if (s && strcmp(s, "sigmoid") != 0)
        return bad(p, ZMLX_ERR_UNSUPPORTED, "scoring_func", get(p, "scoring_func"),
                   "is not supported (supported: sigmoid, softmax)");
    if ((st = get_str(p, "topk_method", false, &s))) return st;
    c->routed_scaling_factor = 1.0f;
    if ((st = get_float(p, "routed_scaling_factor", false, &c->routed_scaling_factor))) return st;
    c->norm_topk_prob = true;
    if ((st = get_bool(p, "norm_topk_prob", &c->norm_topk_prob))) return st;

    return check_experts(p, c);
}

/* Sizes, layer count and rope dims (the int table only checked each field alone). */
static zmlx_status check_dims(const pctx *p, const zmlx_config *c) {
    if (c->n_layers > ZCFG_MAX_LAYERS)
        return zerr_set(p->e, ZMLX_ERR_UNSUPPORTED,
                        "%s: field \"%snum_hidden_layers\" = %d exceeds ZCFG_MAX_LAYERS = %d",
                        p->fname, p->scope, c->n_layers, ZCFG_MAX_LAYERS);
    if (c->qk_rope_dim % 2)
        return zerr_set(p->e, ZMLX_ERR_FORMAT, "%s: field \"%sqk_rope_head_dim\" = %d must be even",
                        p->fname, p->scope, c->qk_rope_dim);
    if (c->family == ZFAM_DEEPSEEK_V32 && c->index_head_dim < c->qk_rope_dim)
        return zerr_set(p->e, ZMLX_ERR_FORMAT,
                        "%s: field \"%sindex_head_dim\" = %d is smaller than qk_rope_head_dim = %d",
                        p->fname, p->scope, c->index_head_dim, c->qk_rope_dim);
    return ZMLX_OK;
}

static zmlx_status parse_text_model(const pctx *p, const pctx *outer, zmlx_config *c) {
    zmlx_status st = read_int_table(p, k_ints, sizeof k_ints / sizeof k_ints[0], c);
    if (!st && c->family == ZFAM_DEEPSEEK_V32)
        st = read_int_table(p, k_index_ints, sizeof k_index_ints / sizeof k_index_ints[0], c);
    if (!st) st = check_dims(p, c);
    if (st) return st;

    if ((st = get_float(p, "rms_norm_eps", true, &c->rms_norm_eps))) return st;
    c->attn_norm_eps = c->family == ZFAM_GLM4_MOE_LITE ? c->rms_norm_eps : 1e-6f;
    if ((st = get_int(p, "max_position_embeddings", true, 1, INT64_MAX,
                      &c->max_position_embeddings)))
        return st;
    if ((st = parse_rope(p, c)) || (st = parse_layers(p, c)) || (st = parse_router(p, c)))
        return st;
    for (int32_t i = 0; i < c->n_layers; i++)
        c->n_dense_layers += !c->layer_is_moe[i];
    const pctx *tie = get(p, "tie_word_embeddings") ? p : outer;
    if ((st = get_bool(tie, "tie_word_embeddings", &c->tie_word_embeddings))) return st;
    return parse_tokens(p, outer, c);
}

/* Parse text into *out and, when q is not NULL, the quantization table into *q. */
static zmlx_status parse_text(const char *text, size_t len, const char *fname, zmlx_config *out,
                              zqcfg **q, zerr *e) {
    if (!out || (!text && len))
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "zcfg_parse: NULL argument");
    if (!fname) fname = "config.json";
    json_error_t je;
    json_t *root = json_loadb(text ? text : "", len, 0, &je);
    if (!root) {
        for (char *s = je.text; *s; s++)
            if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?'; /* keep it one line */
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s:%d:%d: invalid JSON: %s", fname, je.line, je.column,
                        je.text);
    }
    zmlx_config c;
    memset(&c, 0, sizeof c);
    pctx outer = {fname, root, "", e}, model;
    zmlx_status st;
    if (!json_is_object(root))
        st = zerr_set(e, ZMLX_ERR_FORMAT, "%s: the top level must be a JSON object", fname);
    else if (!(st = parse_family(&outer, &c, &model)) && !(st = parse_text_model(&model, &outer, &c)))
        st = zqcfg_parse(root, model.obj, model.scope, fname, q, e);
    json_decref(root);
    if (!st) *out = c;
    return st;
}

zmlx_status zcfg_parse(const char *text, size_t len, const char *fname, zmlx_config *out, zerr *e) {
    return parse_text(text, len, fname, out, NULL, e);
}

/* The whole file into a malloc'd buffer, refusing anything over CFG_FILE_MAX. */
static zmlx_status read_all(FILE *f, const char *path, char **buf, size_t *len, zerr *e) {
    size_t cap = 0, n = 0;
    char *b = NULL;
    for (;;) {
        if (n == cap) {
            if (cap >= CFG_FILE_MAX) {
                free(b);
                return zerr_set(e, ZMLX_ERR_FORMAT, "%s: larger than %zu MiB; not a config.json",
                                path, CFG_FILE_MAX >> 20);
            }
            cap = cap ? cap * 2 : 16384;
            char *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                return zerr_set(e, ZMLX_ERR_NOMEM, "%s: out of memory reading the file", path);
            }
            b = nb;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        int err = errno;
        free(b);
        return zerr_set(e, ZMLX_ERR_IO, "%s: cannot read: %s", path, strerror(err));
    }
    *buf = b, *len = n;
    return ZMLX_OK;
}

zmlx_status zcfg_load_quant(const char *path, zmlx_config *out, zqcfg **q, zerr *e) {
    if (!path || !out) return zerr_set(e, ZMLX_ERR_INVALID_ARG, "zcfg_load: NULL argument");
    if (q) *q = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return zerr_set(e, ZMLX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0;
    zmlx_status st = read_all(f, path, &buf, &len, e);
    fclose(f);
    if (!st) st = parse_text(buf, len, path, out, q, e);
    free(buf);
    return st;
}

zmlx_status zcfg_load(const char *path, zmlx_config *out, zerr *e) {
    return zcfg_load_quant(path, out, NULL, e);
}
