/*
 * model.c — zmlx_model_load / free / info: picks the source (directory or builtin),
 * resolves the run-time settings (backend, precision, KV dtype, patterns), and
 * derives what every source shares: rope frequencies (plain or YaRN), the softmax
 * scale, and the cost figures `zmlx info` reports.
 */
#include "io/qconfig.h"
#include "model/model.h"
#include "backend/cpu/kernels.h"
#include "backend/pool.h"
#include "dist/dist.h"
#include "ops/ops.h"

#include <math.h>
#include <stdint.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

zmlx_model_params zmlx_model_default_params(void) {
    return (zmlx_model_params){.backend = ZMLX_BACKEND_CPU, .precision = ZMLX_PRECISION_FAST,
                               .kv_dtype = ZMLX_KV_DEFAULT, .threads = 0, .patterns = NULL};
}

void *zarena_map(size_t bytes, void **map, size_t *map_bytes) {
    const size_t huge = 2u << 20;
    size_t n = bytes + huge;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    *map = p;
    *map_bytes = n;
    void *a = (void *)(((uintptr_t)p + huge - 1) & ~(uintptr_t)(huge - 1));
#ifdef MADV_HUGEPAGE
    madvise(a, bytes, MADV_HUGEPAGE); /* advice only: fine if refused */
#endif
    return a;
}

void zarena_unmap(void *map, size_t map_bytes) {
    if (map) munmap(map, map_bytes);
}

int64_t zmem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
}

/* Parse a pattern spec for this model's family and fill every layer's stage plan. */
static zmlx_status apply_patterns(zmlx_model *m, const char *spec, zerr *e) {
    zpatch_set set;
    zmlx_status st = zpatch_parse(spec, m->cfg.family, &set, e);
    if (st != ZMLX_OK) return st;
    if (!m->plan) {
        m->plan = calloc((size_t)m->cfg.n_layers, sizeof *m->plan);
        if (!m->plan) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory (stage plan)");
    }
    for (int l = 0; l < m->cfg.n_layers; l++) zpatch_plan(set, &m->plan[l]);
    m->patterns = set;
    return ZMLX_OK;
}

zmlx_status zmlx_model_set_patterns(zmlx_model *m, const char *spec, char *err, size_t err_size) {
    zerr e = {{0}};
    zmlx_status st = apply_patterns(m, spec, &e);
    if (st != ZMLX_OK) zerr_copy(&e, err, err_size);
    return st;
}

size_t zmlx_model_patterns(const zmlx_model *m, char *buf, size_t size) {
    return zpatch_format(m->patterns, buf, size);
}

static double yarn_mscale(double factor, double m) {
    return factor <= 1.0 ? 1.0 : 0.1 * m * log(factor) + 1.0;
}

void zrope_params(const zmlx_config *c, float *inv_freq, float *rope_mscale, float *attn_scale) {
    const int64_t d = c->qk_rope_dim, half = d / 2;
    double scale = 1.0 / sqrt((double)(c->qk_nope_dim + c->qk_rope_dim));
    *rope_mscale = 1.0f;
    double low = 0, high = 0;
    if (c->rope_type == ZROPE_YARN) {
        const double th = c->rope_theta, orig = (double)c->rope_orig_max_pos;
        double cd_fast = d * log(orig / (c->rope_beta_fast * 2 * M_PI)) / (2 * log(th));
        double cd_slow = d * log(orig / (c->rope_beta_slow * 2 * M_PI)) / (2 * log(th));
        low = floor(cd_fast) > 0 ? floor(cd_fast) : 0;
        high = ceil(cd_slow) < d - 1 ? ceil(cd_slow) : d - 1;
        if (low == high) high += 0.001;
        if (c->rope_mscale_all_dim > 0) {
            double ms = yarn_mscale(c->rope_factor, c->rope_mscale_all_dim);
            scale *= ms * ms;
            *rope_mscale = (float)(yarn_mscale(c->rope_factor, c->rope_mscale) / ms);
        } else {
            *rope_mscale = (float)yarn_mscale(c->rope_factor, c->rope_mscale);
        }
    }
    for (int64_t i = 0; i < half; i++) {
        double base = 1.0 / pow(c->rope_theta, (double)(2 * i) / (double)d);
        if (c->rope_type == ZROPE_YARN) {
            double ramp = ((double)i - low) / (high - low);
            ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
            base = base * (1 - ramp) + base / c->rope_factor * ramp;
        }
        inv_freq[i] = (float)base;
    }
    *attn_scale = (float)scale;
}

static zmlx_status rope_setup(zmlx_model *m, zerr *e) {
    const int64_t half = m->cfg.qk_rope_dim / 2;
    m->inv_freq = calloc((size_t)(half > 0 ? half : 1), sizeof(float));
    if (!m->inv_freq) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory (rope table)");
    zrope_params(&m->cfg, m->inv_freq, &m->rope_mscale, &m->attn_scale);
    return ZMLX_OK;
}

zmlx_status zmodel_finish(zmlx_model *m, zerr *e) {
    zmlx_status st = rope_setup(m, e);
    if (st != ZMLX_OK) return st;
    st = m->be->init(m->params.threads, &m->be_ctx);
    if (st != ZMLX_OK)
        return zerr_set(e, st, "backend %s failed to start (%s)", m->be->name, zmlx_status_str(st));
    if (m->be->set_precision) m->be->set_precision(m->be_ctx, m->params.precision);
    if (m->be->model_init) return m->be->model_init(m->be_ctx, m, e); /* device: upload */
    return ZMLX_OK;
}

zmlx_status zmlx_model_load(const char *path, const zmlx_model_params *params,
                            zmlx_model **out, char *err, size_t err_size) {
    zerr e = {{0}};
    zmlx_status st;
    *out = NULL;
    zmlx_model *m = calloc(1, sizeof *m);
    if (!m) return ZMLX_ERR_NOMEM;
    m->params = params ? *params : zmlx_model_default_params();
    snprintf(m->name, sizeof m->name, "%s", path ? path : "");
    m->be = zbackend_get(m->params.backend);
    if (!m->be) {
        st = zerr_set(&e, ZMLX_ERR_BACKEND,
                      "backend cuda is unavailable: this zmlx was built without CUDA "
                      "(no nvcc at build time); use --backend cpu");
        goto fail;
    }
    if ((st = zdist_check_run(&m->params, &e)) != ZMLX_OK) goto fail; /* --gpus */
    if (m->be->probe && (st = m->be->probe(&e)) != ZMLX_OK) goto fail; /* e.g. no GPU */
    if (m->params.threads < 0) {
        st = zerr_set(&e, ZMLX_ERR_INVALID_ARG, "--threads %d: must be 0 (all cores) or more",
                      m->params.threads);
        goto fail;
    }
    m->kv_dtype = m->params.kv_dtype;
    if (m->kv_dtype == ZMLX_KV_DEFAULT)
        m->kv_dtype = m->params.precision == ZMLX_PRECISION_EXACT ? ZMLX_KV_F32 : ZMLX_KV_BF16;
    if (!path || !*path) {
        st = zerr_set(&e, ZMLX_ERR_INVALID_ARG, "no model given");
        goto fail;
    }
    if (!strncmp(path, "builtin:", 8)) st = zmodel_load_builtin(m, path + 8, &e);
    else st = zmodel_load_dir(m, path, &e);
    if (st != ZMLX_OK) goto fail;
    st = apply_patterns(m, m->params.patterns, &e);
    if (st != ZMLX_OK) goto fail;
    st = zmodel_finish(m, &e);
    if (st != ZMLX_OK) goto fail;
    *out = m;
    return ZMLX_OK;
fail:
    zerr_copy(&e, err, err_size);
    zmlx_model_free(m);
    return st;
}

void zmlx_model_free(zmlx_model *m) {
    if (!m) return;
    if (m->be && m->be_ctx) m->be->free(m->be_ctx);
    zst_close(m->archive);
    zarena_unmap(m->arena_map, m->arena_map_bytes);
    free(m->f32_arena);
    free(m->expert_arena);
    zmodel_owned_free(m->owned);
    free(m->layers);
    free(m->inv_freq);
    free(m->plan);
    free(m);
}

int32_t zmlx_model_vocab_size(const zmlx_model *m) {
    return m->cfg.vocab_size;
}

int64_t zmlx_model_max_positions(const zmlx_model *m) {
    return m->cfg.max_position_embeddings;
}

size_t zmlx_model_eos_ids(const zmlx_model *m, int32_t *ids, size_t cap) {
    size_t n = (size_t)m->cfg.n_eos;
    for (size_t i = 0; i < n && i < cap; i++) ids[i] = m->cfg.eos_ids[i];
    return n;
}

/* deepseek_v32: the indexer reads q_a_layernorm's output and ropes its first
   qk_rope_head_dim dims. */
static zmlx_status check_indexer(const zmlx_config *c, const char *where, zerr *e) {
    if (c->q_lora_rank < 1)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                        "%s: deepseek_v32 needs q_lora_rank > 0 (its indexer reads the q_a "
                        "projection)", where);
    if (c->index_n_heads < 1 || c->index_topk < 1 || c->index_head_dim < c->qk_rope_dim ||
        c->index_head_dim < 1)
        return zerr_set(e, ZMLX_ERR_FORMAT,
                        "%s: index_n_heads %d, index_head_dim %d, index_topk %d must be >= 1 "
                        "(index_head_dim >= qk_rope_head_dim %d)",
                        where, c->index_n_heads, c->index_head_dim, c->index_topk, c->qk_rope_dim);
    return ZMLX_OK;
}

zmlx_status zmodel_check_limits(const zmlx_config *c, const char *where, zerr *e) {
    if (c->n_group > ZOP_MAX_GROUPS)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED, "%s: n_group %d exceeds the supported %d", where,
                        c->n_group, ZOP_MAX_GROUPS);
    if (c->n_group > 0 && c->n_routed_experts % c->n_group)
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s: n_routed_experts %d is not a multiple of n_group %d",
                        where, c->n_routed_experts, c->n_group);
    if (c->experts_per_tok > ZCOMBINE_MAX_K)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED, "%s: num_experts_per_tok %d exceeds the supported %d",
                        where, c->experts_per_tok, ZCOMBINE_MAX_K);
    if (c->experts_per_tok > c->n_routed_experts || c->experts_per_tok < 1)
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s: num_experts_per_tok %d must be in [1, %d]", where,
                        c->experts_per_tok, c->n_routed_experts);
    if (c->qk_rope_dim % 2)
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s: qk_rope_head_dim %d must be even", where,
                        c->qk_rope_dim);
    if (c->n_layers < 1 || c->n_layers > ZCFG_MAX_LAYERS)
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s: num_hidden_layers %d must be in [1, %d]", where,
                        c->n_layers, ZCFG_MAX_LAYERS);
    if (c->family == ZFAM_DEEPSEEK_V32)
        return check_indexer(c, where, e);
    return ZMLX_OK;
}

/* The CPU kernel level a backend kind runs (zmlx_model_info.cpu_isa). */
static void info_isa(zmlx_backend_kind kind, zmlx_model_info *info) {
    if (kind == ZMLX_BACKEND_CPU) zk_isa_describe(info->cpu_isa, sizeof info->cpu_isa);
    else if (kind == ZMLX_BACKEND_CPU_REF) snprintf(info->cpu_isa, sizeof info->cpu_isa, "scalar (reference)");
    else info->cpu_isa[0] = '\0';
}

void zmlx_model_get_info(const zmlx_model *m, zmlx_model_info *info) {
    zinfo_model(m, m->kv_dtype == ZMLX_KV_BF16 ? 2 : 4, info);
    snprintf(info->name, sizeof info->name, "%s", m->name);
    info->backend = m->be->name;
    info->threads = m->be_ctx ? m->be->threads(m->be_ctx) : 0;
    info_isa(m->params.backend, info);
}

/* From a checkpoint's headers (when it has any): the dense dtype (of the final norm,
   always dense) and whether the MLA weights are MLX's split embed_q / unembed_out. */
static void probe_tensors(const char *dir, const zmlx_config *c, zdtype *dense, bool *mla_split) {
    zst_archive *a = NULL;
    zerr ignore;
    if (zst_open(dir, &a, &ignore) != ZMLX_OK) return;
    char name[96];
    snprintf(name, sizeof name, "%smodel.norm.weight", c->tensor_prefix);
    const zst_tensor *t = zst_find(a, name);
    if (t && zdtype_table[t->dtype].compute) *dense = t->dtype;
    snprintf(name, sizeof name, "%smodel.layers.0.self_attn.embed_q.weight", c->tensor_prefix);
    *mla_split = zst_find(a, name) != NULL;
    zst_close(a);
}

/* The config of `path` (a directory or a builtin spec), its quantization block (*q, NULL
   when none or when q is NULL), a builtin's weight format (*bq, bits 16 for a directory)
   and what the tensor headers say (dense dtype, MLA split). */
static zmlx_status read_config(const char *path, zmlx_config *c, zqcfg **q, zbuiltin_quant *bq,
                               zdtype *wdt, bool *mla_split, zerr *e) {
    zmlx_status st;
    *wdt = ZDT_BF16;
    *bq = (zbuiltin_quant){.bits = 16};
    if (q) *q = NULL;
    *mla_split = true; /* what current mlx-lm writes; the headers say when present */
    if (!path || !*path) {
        st = zerr_set(e, ZMLX_ERR_INVALID_ARG, "no model given");
    } else if (!strncmp(path, "builtin:", 8)) {
        uint64_t seed;
        st = zbuiltin_config(path + 8, c, &seed, bq, e);
    } else {
        char cfg_path[4096];
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", path);
        zqcfg *qq = NULL;
        st = zcfg_load_quant(cfg_path, c, &qq, e);
        if (st == ZMLX_OK) probe_tensors(path, c, wdt, mla_split);
        if (q) *q = qq;
        else zqcfg_free(qq);
    }
    return st;
}

zmlx_status zmodel_read_config(const char *path, zmlx_config *c, zdtype *wdt, zbuiltin_quant *bq,
                               zerr *e) {
    bool mla_split;
    zbuiltin_quant b;
    return read_config(path, c, NULL, bq ? bq : &b, wdt, &mla_split, e);
}

zmlx_status zmlx_model_probe(const char *path, const zmlx_model_params *params,
                             zmlx_model_info *info, char *err, size_t err_size) {
    zerr e = {{0}};
    zmlx_config c;
    zdtype wdt;
    bool mla_split;
    zqcfg *q = NULL;
    zbuiltin_quant bq;
    zmlx_model_params p = params ? *params : zmlx_model_default_params();
    zmlx_status st = read_config(path, &c, &q, &bq, &wdt, &mla_split, &e);
    if (st != ZMLX_OK) {
        zerr_copy(&e, err, err_size);
        return st;
    }
    zmlx_kv_dtype kv = p.kv_dtype;
    if (kv == ZMLX_KV_DEFAULT) kv = p.precision == ZMLX_PRECISION_EXACT ? ZMLX_KV_F32 : ZMLX_KV_BF16;
    const zbackend_ops *be = zbackend_get(p.backend);
    const int kv_elem = kv == ZMLX_KV_BF16 ? 2 : 4;
    zinfo_mla mla = !mla_split ? ZINFO_MLA_KV_B
                    : be && !zmla_split_native(be) ? ZINFO_MLA_REBUILT : ZINFO_MLA_SPLIT;
    if (!strncmp(path, "builtin:", 8)) zinfo_builtin(&c, &bq, kv_elem, info);
    else zinfo_config(&c, q, wdt, mla, kv_elem, info);
    zqcfg_free(q);
    snprintf(info->name, sizeof info->name, "%s", path);
    info->backend = be ? be->name : "unavailable";
    info->threads = p.threads > 0 ? p.threads : zpool_online_cores();
    info_isa(p.backend, info);
    return ZMLX_OK;
}
