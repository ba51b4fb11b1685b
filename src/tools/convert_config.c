/*
 * convert_config.c — the non-tensor files of a converted checkpoint: config.json as
 * mlx-lm's save_config writes it (the source config minus `_name_or_path` and
 * `vision_config`, plus "quantization" and an identical "quantization_config", top-level
 * keys sorted, json.dump indent 4), a config.json in the released checkpoints' dialect
 * for builtin models, and the tokenizer / chat template / generation_config.json /
 * *.py files copied from the source (builtin models get a byte-level tokenizer.json
 * whose ids 0-255 are the bytes, as zmlx's fallback tokenizer).
 */
#include "io/pyjson.h"
#include "io/st_write.h"
#include "tools/convert_int.h"

#include <dirent.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

zdtype zcv_config_cast(const json_t *config) {
    const char *s = json_string_value(json_object_get(config, "torch_dtype"));
    const json_t *tc = json_object_get(config, "text_config");
    if (!s && json_is_object(tc)) s = json_string_value(json_object_get(tc, "dtype"));
    if (!s) return ZDT_COUNT;
    if (!strcmp(s, "bfloat16")) return ZDT_BF16;
    if (!strcmp(s, "float16")) return ZDT_F16;
    if (!strcmp(s, "float32")) return ZDT_F32;
    return ZDT_COUNT;
}

/*
 * mlx-lm 0.32 reads only the released checkpoints' keys: rope_theta + rope_scaling and
 * first_k_dense_replace.  A transformers-5 config (rope_parameters, mlp_layer_types)
 * gets them added, so that mlx-lm builds the same model (its own convert copies such a
 * config as is, and its DeepSeek model then silently runs without YaRN).  rope_scaling
 * is rope_parameters without rope_theta, with rope_type renamed to type.
 */
static bool is_str(const json_t *v, const char *s) {
    return json_is_string(v) && !strcmp(json_string_value(v), s);
}

static void add_released_keys(json_t *cfg) {
    json_t *rp = json_object_get(cfg, "rope_parameters");
    if (json_is_object(rp)) {
        json_t *theta = json_object_get(rp, "rope_theta");
        if (theta && !json_object_get(cfg, "rope_theta"))
            json_object_set(cfg, "rope_theta", theta);
        const char *type = json_string_value(json_object_get(rp, "rope_type"));
        json_t *rs = json_object_get(cfg, "rope_scaling");
        if (type && strcmp(type, "default") != 0 && (!rs || json_is_null(rs))) {
            json_t *c = json_deep_copy(rp);
            json_t *t = json_incref(json_object_get(c, "rope_type"));
            json_object_del(c, "rope_theta");
            json_object_del(c, "rope_type");
            json_object_set_new(c, "type", t);
            json_object_set_new(cfg, "rope_scaling", c);
        }
    }
    json_t *types = json_object_get(cfg, "mlp_layer_types");
    if (json_is_array(types) && !json_object_get(cfg, "first_k_dense_replace")) {
        size_t k = 0, n = json_array_size(types);
        while (k < n && is_str(json_array_get(types, k), "dense")) k++;
        bool rest_sparse = true; /* else no first_k_dense_replace describes it */
        for (size_t i = k; i < n; i++) rest_sparse &= is_str(json_array_get(types, i), "sparse");
        if (rest_sparse) json_object_set_new(cfg, "first_k_dense_replace", json_integer((json_int_t)k));
    }
}

static json_t *qparams(int group, int bits, const char *mode) {
    json_t *q = json_object();
    json_object_set_new(q, "group_size", json_integer(group));
    json_object_set_new(q, "bits", json_integer(bits));
    json_object_set_new(q, "mode", json_string(mode));
    return q;
}

zmlx_status zcv_config_write(const zcv_srcset *s, const zcv_params *p, const zcv_plan *plan,
                             const char *dir, zerr *e) {
    json_t *cfg = json_deep_copy(s->config);
    char path[4400];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!cfg) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory writing %s", path);
    json_object_del(cfg, "_name_or_path");
    json_object_del(cfg, "vision_config");
    add_released_keys(cfg);
    if (json_is_object(json_object_get(cfg, "text_config")))
        add_released_keys(json_object_get(cfg, "text_config")); /* Kimi's text model */
    /* a source quantization_config describes weights this conversion decoded (fp8 blocks);
       mlx-lm without -q would keep it, which no longer matches the tensors */
    const char *qm = json_string_value(
        json_object_get(json_object_get(cfg, "quantization_config"), "quant_method"));
    if (qm && !strcmp(qm, "fp8")) json_object_del(cfg, "quantization_config");
    const char *mode = p->mode == ZCV_Q_MXFP4 ? "mxfp4" : "affine";
    json_t *q = NULL;
    if (plan->n_raw_int4 > 0) {
        /* mlx-lm's load maps compressed-tensors to {32, 4, affine}; its quantize_model then
           names every module it quantizes itself (fine-grained config), in module order */
        q = qparams(32, 4, "affine");
        for (size_t i = 0; p->mode != ZCV_Q_NONE && i < plan->n_units; i++)
            if (plan->u[i].quant && !plan->u[i].raw_int4)
                json_object_set_new(q, plan->u[i].name, qparams(p->group, p->bits, mode));
    } else if (p->mode != ZCV_Q_NONE) {
        q = qparams(p->group, p->bits, mode);
    }
    if (q) {
        json_object_set(cfg, "quantization", q);
        json_object_set_new(cfg, "quantization_config", q);
    }
    char *text = zpyjson_dumps(cfg, 4, true);
    json_decref(cfg);
    if (!text)
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s: the source config.json holds a value JSON "
                        "cannot write (NaN or infinity)", path);
    zmlx_status st = zst_write_file_atomic(path, text, strlen(text), e);
    free(text);
    return st;
}

/* ---- builtin models ---- */

/* The shortest decimal that reads back as the float f, as a double (1e-5f -> 1e-05). */
static json_t *f32_real(float f) {
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if ((float)strtod(buf, NULL) == f) break;
    }
    return json_real(strtod(buf, NULL));
}

static void set_int(json_t *o, const char *k, long long v) { json_object_set_new(o, k, json_integer(v)); }

json_t *zcv_builtin_config(const zmlx_config *c) {
    json_t *o = json_object();
    if (!o) return NULL;
    const char *arch = c->family == ZFAM_GLM4_MOE_LITE  ? "Glm4MoeLiteForCausalLM"
                       : c->family == ZFAM_DEEPSEEK_V32 ? "DeepseekV32ForCausalLM"
                                                        : "DeepseekV3ForCausalLM";
    json_t *archs = json_array();
    json_array_append_new(archs, json_string(arch));
    json_object_set_new(o, "architectures", archs);
    json_object_set_new(o, "model_type", json_string(zfamily_name(c->family)));
    set_int(o, "vocab_size", c->vocab_size);
    set_int(o, "hidden_size", c->hidden_size);
    set_int(o, "intermediate_size", c->intermediate_size);
    set_int(o, "moe_intermediate_size", c->moe_intermediate_size);
    set_int(o, "num_hidden_layers", c->n_layers);
    set_int(o, "num_attention_heads", c->n_heads);
    set_int(o, "num_key_value_heads", c->n_heads);
    set_int(o, "n_shared_experts", c->n_shared_experts);
    set_int(o, "n_routed_experts", c->n_routed_experts);
    json_object_set_new(o, "routed_scaling_factor", f32_real(c->routed_scaling_factor));
    set_int(o, "kv_lora_rank", c->kv_lora_rank);
    json_object_set_new(o, "q_lora_rank", c->q_lora_rank ? json_integer(c->q_lora_rank) : json_null());
    set_int(o, "qk_rope_head_dim", c->qk_rope_dim);
    set_int(o, "qk_nope_head_dim", c->qk_nope_dim);
    set_int(o, "v_head_dim", c->v_head_dim);
    json_object_set_new(o, "topk_method", json_string("noaux_tc"));
    json_object_set_new(o, "scoring_func", json_string(c->scoring == ZSCORE_SOFTMAX ? "softmax" : "sigmoid"));
    json_object_set_new(o, "norm_topk_prob", json_boolean(c->norm_topk_prob));
    set_int(o, "n_group", c->n_group);
    set_int(o, "topk_group", c->topk_group);
    set_int(o, "num_experts_per_tok", c->experts_per_tok);
    set_int(o, "moe_layer_freq", 1);
    int first = 0;
    while (first < c->n_layers && !c->layer_is_moe[first]) first++;
    set_int(o, "first_k_dense_replace", first);
    set_int(o, "max_position_embeddings", c->max_position_embeddings);
    json_object_set_new(o, "rms_norm_eps", f32_real(c->rms_norm_eps));
    json_object_set_new(o, "rope_theta", json_real(c->rope_theta));
    if (c->rope_type == ZROPE_YARN) {
        json_t *y = json_object();
        json_object_set_new(y, "type", json_string("yarn"));
        json_object_set_new(y, "factor", json_real(c->rope_factor));
        set_int(y, "original_max_position_embeddings", c->rope_orig_max_pos);
        json_object_set_new(y, "beta_fast", json_real(c->rope_beta_fast));
        json_object_set_new(y, "beta_slow", json_real(c->rope_beta_slow));
        json_object_set_new(y, "mscale", json_real(c->rope_mscale));
        json_object_set_new(y, "mscale_all_dim", json_real(c->rope_mscale_all_dim));
        json_object_set_new(o, "rope_scaling", y);
    } else {
        json_object_set_new(o, "rope_scaling", json_null());
    }
    json_object_set_new(o, "attention_bias", json_false());
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    json_object_set_new(o, "bos_token_id", c->bos_id >= 0 ? json_integer(c->bos_id) : json_null());
    json_object_set_new(o, "pad_token_id", c->pad_id >= 0 ? json_integer(c->pad_id) : json_null());
    json_t *eos = json_array();
    for (int i = 0; i < c->n_eos; i++) json_array_append_new(eos, json_integer(c->eos_ids[i]));
    json_object_set_new(o, "eos_token_id", eos);
    set_int(o, "num_nextn_predict_layers", 0);
    json_object_set_new(o, "torch_dtype", json_string("bfloat16"));
    if (c->family == ZFAM_GLM4_MOE_LITE) json_object_set_new(o, "partial_rotary_factor", json_real(1.0));
    if (c->family == ZFAM_DEEPSEEK_V32) {
        set_int(o, "index_n_heads", c->index_n_heads);
        set_int(o, "index_head_dim", c->index_head_dim);
        set_int(o, "index_topk", c->index_topk);
    }
    return o;
}

/* GPT-2's bytes_to_unicode: the printable bytes map to themselves, the others to 256+k. */
static uint32_t byte_char(int b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    if (printable) return (uint32_t)b;
    int k = 0;
    for (int x = 0; x < b; x++)
        k += !((x >= '!' && x <= '~') || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff));
    return 256u + (uint32_t)k;
}

static json_t *byte_tokenizer(void) {
    json_t *vocab = json_object();
    for (int b = 0; b < 256; b++) {
        uint32_t u = byte_char(b);
        char s[4];
        if (u < 0x80) s[0] = (char)u, s[1] = 0;
        else s[0] = (char)(0xc0 | (u >> 6)), s[1] = (char)(0x80 | (u & 0x3f)), s[2] = 0;
        json_object_set_new(vocab, s, json_integer(b));
    }
    json_error_t je;
    json_t *t = json_pack_ex(&je, 0,
                             "{s:s, s:n, s:n, s:[], s:n, s:{s:s, s:b, s:b, s:b}, s:n, "
                             "s:{s:s, s:b, s:b, s:b}, s:{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, "
                             "s:o, s:[]}}",
                             "version", "1.0", "truncation", "padding", "added_tokens",
                             "normalizer", "pre_tokenizer", "type", "ByteLevel",
                             "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 0,
                             "post_processor", "decoder", "type", "ByteLevel",
                             "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 0, "model",
                             "type", "BPE", "dropout", "unk_token", "continuing_subword_prefix",
                             "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0,
                             "ignore_merges", 0, "vocab", vocab, "merges");
    return t;
}

static zmlx_status write_json(const char *dir, const char *name, json_t *v, zerr *e) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = v ? zpyjson_dumps(v, 2, false) : NULL;
    json_decref(v);
    if (!text) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory writing %s", path);
    zmlx_status st = zst_write_file_atomic(path, text, strlen(text), e);
    free(text);
    return st;
}

static zmlx_status builtin_files(const char *dir, zerr *e) {
    zmlx_status st = write_json(dir, "tokenizer.json", byte_tokenizer(), e);
    if (st != ZMLX_OK) return st;
    return write_json(dir, "tokenizer_config.json",
                      json_pack("{s:s, s:I}", "tokenizer_class", "PreTrainedTokenizerFast",
                                "model_max_length", (json_int_t)1 << 40),
                      e);
}

/* The files mlx-lm's save carries over (its tokenizer re-save writes the first group). */
static bool carried(const char *name) {
    static const char *const pats[] = {
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "tokenizer.model", "tiktoken.model", "*.tiktoken", "vocab.json", "merges.txt",
        "chat_template.jinja", "chat_template.json", "generation_config.json", "*.py"};
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++)
        if (fnmatch(pats[i], name, 0) == 0) return true;
    return false;
}

static zmlx_status copy_one(const char *from, const char *to, zerr *e) {
    FILE *f = fopen(from, "rb");
    if (!f) return zerr_set(e, ZMLX_ERR_IO, "%s: cannot open", from);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    zmlx_status st = ZMLX_OK;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            char *nb = realloc(buf, cap);
            if (!nb) {
                st = zerr_set(e, ZMLX_ERR_NOMEM, "out of memory copying %s", from);
                break;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) {
            if (ferror(f)) st = zerr_set(e, ZMLX_ERR_IO, "%s: read error", from);
            break;
        }
    }
    fclose(f);
    if (st == ZMLX_OK) st = zst_write_file_atomic(to, buf ? buf : "", n, e);
    free(buf);
    return st;
}

zmlx_status zcv_copy_files(const zcv_srcset *s, const char *dir, zerr *e) {
    if (s->builtin) return builtin_files(dir, e);
    DIR *d = opendir(s->dir);
    if (!d) return zerr_set(e, ZMLX_ERR_IO, "%s: cannot list the directory", s->dir);
    zmlx_status st = ZMLX_OK;
    struct dirent *de;
    while (st == ZMLX_OK && (de = readdir(d))) {
        if (de->d_name[0] == '.' || !carried(de->d_name)) continue;
        char from[4400], to[4400];
        snprintf(from, sizeof from, "%s/%s", s->dir, de->d_name);
        snprintf(to, sizeof to, "%s/%s", dir, de->d_name);
        st = copy_one(from, to, e);
    }
    closedir(d);
    return st;
}
