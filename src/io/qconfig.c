/*
 * qconfig.c — the quantization block of config.json (see qconfig.h): MLX
 * "quantization" with per-module entries, DeepSeek fp8 and compressed-tensors
 * pack-quantized, validated field by field.
 *
 * Accepted values (anything else is an error naming the field):
 *   MLX            mode affine (bits 2, 3, 4, 5, 6, 8; group_size 32, 64, 128) or mxfp4
 *                  (bits 4, group_size 32); nvfp4 / mxfp8 are refused as unsupported.
 *                  Top level: group_size and bits required (mlx-lm reads both), mode
 *                  defaults to affine.  A module entry is false (dense), true (the top
 *                  level's parameters) or an object whose missing keys take the mode's
 *                  defaults (affine 64 / 4, mxfp4 32 / 4), as mlx's to_quantized.
 *   fp8            fmt "e4m3" (default), weight_block_size [B, B] with 1 <= B <= 4096
 *                  (default [128, 128]; non-square blocks unsupported), activation_scheme
 *                  "dynamic" (activations stay float32 here), scale_fmt "ue8m0" or absent,
 *                  modules_to_not_convert a list of names (the stored tensors decide).
 *   compressed-    format "pack-quantized"; quantization_status "compressed"; every
 *   tensors        config group: weights {type "int", symmetric true, strategy "group",
 *                  num_bits 2..6 or 8, group_size 32, 64 or 128, dynamic false, no
 *                  actorder / block_structure}, no input/output activation scheme; no
 *                  kv_cache_scheme, sparsity or transform config.  Targets and `ignore`
 *                  entries are module names, "re:" regexes (Python re.match semantics:
 *                  anchored at the start only; PCRE2 here) or the class names "Linear" /
 *                  "Embedding".  A module is quantized by the first group whose targets
 *                  match it, unless an ignore entry matches (compressed-tensors'
 *                  match_name).
 */
#include "io/qconfig.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct zqmatch {
    char *name;     /* exact module name or class name, or NULL */
    pcre2_code *re; /* "re:" pattern, anchored at the start */
} zqmatch;

typedef struct zqgroup {
    zqmatch *targets;
    size_t n_targets;
    zqmod mod;
} zqgroup;

typedef struct zqover {
    char *path;
    zqdecl decl; /* DENSE or QUANT */
    zqmod mod;
} zqover;

struct zqcfg {
    zqmethod method;
    zqmod def;           /* MLX top level; fp8 block */
    zqover *over;        /* MLX module entries, sorted by path */
    size_t n_over;
    zqgroup *groups;     /* compressed-tensors config groups, in file order */
    size_t n_groups;
    zqmatch *ignore;     /* compressed-tensors ignore list */
    size_t n_ignore;
    pcre2_match_data *md;
    pcre2_match_context *mc;
};

/* Where messages point: the file and the object's key path ("quantization_config."). */
typedef struct qctx {
    const char *fname;
    char scope[160];
    zerr *e;
} qctx;

static const json_t *qget(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static zmlx_status qbad(const qctx *c, zmlx_status st, const char *key, const json_t *v,
                        const char *why) {
    char b[64];
    if (!v) return zerr_set(c->e, st, "%s: field \"%s%s\" is missing: %s", c->fname, c->scope, key, why);
    return zerr_set(c->e, st, "%s: field \"%s%s\" = %s %s", c->fname, c->scope, key,
                    zcfg_json_show(v, b, sizeof b), why);
}

/* An optional string field; *out NULL when absent. */
static zmlx_status qstr(const qctx *c, const json_t *obj, const char *key, const char **out) {
    const json_t *v = qget(obj, key);
    *out = NULL;
    if (!v) return ZMLX_OK;
    if (!json_is_string(v)) return qbad(c, ZMLX_ERR_FORMAT, key, v, "must be a string");
    *out = json_string_value(v);
    return ZMLX_OK;
}

/* An integer field; *out keeps its value when absent and !required. */
static zmlx_status qint(const qctx *c, const json_t *obj, const char *key, bool required,
                        int *out) {
    const json_t *v = qget(obj, key);
    if (!v) return required ? qbad(c, ZMLX_ERR_FORMAT, key, NULL, "required") : ZMLX_OK;
    if (!json_is_integer(v)) return qbad(c, ZMLX_ERR_FORMAT, key, v, "must be an integer");
    json_int_t x = json_integer_value(v);
    if (x < -1000000 || x > 1000000) return qbad(c, ZMLX_ERR_FORMAT, key, v, "is out of range");
    *out = (int)x;
    return ZMLX_OK;
}

/* A field that must be absent/null, or the one accepted string. */
static zmlx_status qonly(const qctx *c, const json_t *obj, const char *key, const char *ok,
                         const char *why) {
    const char *s;
    zmlx_status st = qstr(c, obj, key, &s);
    if (st || !s || !strcmp(s, ok)) return st;
    return qbad(c, ZMLX_ERR_UNSUPPORTED, key, qget(obj, key), why);
}

/* A field that must be absent, null, false or an empty object / array. */
static zmlx_status qnone(const qctx *c, const json_t *obj, const char *key, const char *why) {
    const json_t *v = qget(obj, key);
    if (!v || json_is_false(v) || (json_is_object(v) && json_object_size(v) == 0) ||
        (json_is_array(v) && json_array_size(v) == 0))
        return ZMLX_OK;
    return qbad(c, ZMLX_ERR_UNSUPPORTED, key, v, why);
}

static bool affine_bits_ok(int b) {
    return b == 2 || b == 3 || b == 4 || b == 5 || b == 6 || b == 8;
}

static bool group_ok(int g) {
    return g == 32 || g == 64 || g == 128;
}

/* ---------------------------------------------------------------- MLX */

/* {group_size, bits, mode} of the top level (top: keys required) or of a module entry. */
static zmlx_status mlx_params(const qctx *c, const json_t *obj, bool top, zqmod *m) {
    const char *mode;
    zmlx_status st = qstr(c, obj, "mode", &mode);
    if (st) return st;
    if (!mode || !strcmp(mode, "affine")) {
        *m = (zqmod){ZQMODE_AFFINE, 4, 64};
    } else if (!strcmp(mode, "mxfp4")) {
        *m = (zqmod){ZQMODE_MXFP4, 4, 32};
    } else {
        return qbad(c, ZMLX_ERR_UNSUPPORTED, "mode", qget(obj, "mode"),
                    "is not supported (supported: affine, mxfp4)");
    }
    if ((st = qint(c, obj, "group_size", top, &m->group)) || (st = qint(c, obj, "bits", top, &m->bits)))
        return st;
    if (m->mode == ZQMODE_AFFINE && !affine_bits_ok(m->bits))
        return qbad(c, ZMLX_ERR_UNSUPPORTED, "bits", qget(obj, "bits"),
                    "is not supported for affine (2, 3, 4, 5, 6, 8)");
    if (m->mode == ZQMODE_AFFINE && !group_ok(m->group))
        return qbad(c, ZMLX_ERR_UNSUPPORTED, "group_size", qget(obj, "group_size"),
                    "is not supported for affine (32, 64, 128)");
    if (m->mode == ZQMODE_MXFP4 && m->bits != 4)
        return qbad(c, ZMLX_ERR_FORMAT, "bits", qget(obj, "bits"), "must be 4 for mxfp4");
    if (m->mode == ZQMODE_MXFP4 && m->group != 32)
        return qbad(c, ZMLX_ERR_FORMAT, "group_size", qget(obj, "group_size"), "must be 32 for mxfp4");
    return ZMLX_OK;
}

static int over_cmp(const void *a, const void *b) {
    return strcmp(((const zqover *)a)->path, ((const zqover *)b)->path);
}

static zmlx_status parse_mlx(const qctx *c, const json_t *obj, zqcfg *q) {
    zmlx_status st = mlx_params(c, obj, true, &q->def);
    if (st) return st;
    q->over = calloc(json_object_size(obj) + 1, sizeof *q->over);
    if (!q->over) return zerr_set(c->e, ZMLX_ERR_NOMEM, "%s: out of memory", c->fname);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (!strcmp(key, "group_size") || !strcmp(key, "bits") || !strcmp(key, "mode")) continue;
        zqover *o = &q->over[q->n_over];
        if (json_is_boolean(v)) {
            o->decl = json_is_true(v) ? ZQDECL_QUANT : ZQDECL_DENSE;
            o->mod = q->def;
        } else if (json_is_object(v)) {
            qctx sub = *c;
            snprintf(sub.scope, sizeof sub.scope, "%.60s%.80s.", c->scope, key);
            if ((st = mlx_params(&sub, v, false, &o->mod))) return st;
            o->decl = ZQDECL_QUANT;
        } else {
            return qbad(c, ZMLX_ERR_FORMAT, key, v,
                        "must be false, true or an object {group_size, bits, mode}");
        }
        if (!(o->path = strdup(key))) return zerr_set(c->e, ZMLX_ERR_NOMEM, "%s: out of memory", c->fname);
        q->n_over++;
    }
    qsort(q->over, q->n_over, sizeof *q->over, over_cmp);
    return ZMLX_OK;
}

/* ---------------------------------------------------------------- fp8 */

static zmlx_status parse_fp8(const qctx *c, const json_t *obj, zqcfg *q) {
    zmlx_status st;
    if ((st = qonly(c, obj, "fmt", "e4m3", "is not supported (supported: e4m3)")) ||
        (st = qonly(c, obj, "activation_scheme", "dynamic",
                    "is not supported (supported: dynamic; activations stay float32)")) ||
        (st = qonly(c, obj, "scale_fmt", "ue8m0", "is not supported (supported: ue8m0 or absent)")))
        return st;
    q->def = (zqmod){ZQMODE_FP8_BLOCK, 8, 128};
    const json_t *bs = qget(obj, "weight_block_size");
    if (bs) {
        const json_t *b0 = json_array_get(bs, 0), *b1 = json_array_get(bs, 1);
        if (!json_is_array(bs) || json_array_size(bs) != 2 || !json_is_integer(b0) ||
            !json_is_integer(b1))
            return qbad(c, ZMLX_ERR_FORMAT, "weight_block_size", bs, "must be [rows, cols] integers");
        json_int_t r = json_integer_value(b0), k = json_integer_value(b1);
        if (r < 1 || r > 4096 || k < 1 || k > 4096)
            return qbad(c, ZMLX_ERR_FORMAT, "weight_block_size", bs, "entries must be in [1, 4096]");
        if (r != k)
            return qbad(c, ZMLX_ERR_UNSUPPORTED, "weight_block_size", bs,
                        "is not supported (square blocks only, e.g. [128, 128])");
        q->def.group = (int)r;
    }
    const json_t *nc = qget(obj, "modules_to_not_convert");
    if (nc && !json_is_array(nc))
        return qbad(c, ZMLX_ERR_FORMAT, "modules_to_not_convert", nc, "must be a list of names");
    for (size_t i = 0; nc && i < json_array_size(nc); i++)
        if (!json_is_string(json_array_get(nc, i)))
            return qbad(c, ZMLX_ERR_FORMAT, "modules_to_not_convert", nc, "must be a list of names");
    return ZMLX_OK;
}

/* ---------------------------------------------------------------- compressed-tensors */

/* One target / ignore entry. */
static zmlx_status parse_match(const qctx *c, const char *key, const json_t *v, zqmatch *m) {
    if (!json_is_string(v)) return qbad(c, ZMLX_ERR_FORMAT, key, v, "must be a string");
    const char *s = json_string_value(v);
    if (strncmp(s, "re:", 3) != 0) {
        m->name = strdup(s);
        return m->name ? ZMLX_OK : zerr_set(c->e, ZMLX_ERR_NOMEM, "%s: out of memory", c->fname);
    }
    int err;
    PCRE2_SIZE off;
    m->re = pcre2_compile((PCRE2_SPTR)(s + 3), json_string_length(v) - 3, PCRE2_ANCHORED | PCRE2_UTF,
                          &err, &off, NULL);
    if (!m->re) {
        char msg[128], why[200];
        pcre2_get_error_message(err, (PCRE2_UCHAR *)msg, sizeof msg);
        snprintf(why, sizeof why, "is not a valid regular expression (%s at offset %zu)", msg, (size_t)off);
        return qbad(c, ZMLX_ERR_FORMAT, key, v, why);
    }
    return ZMLX_OK;
}

/* A list of target / ignore entries. */
static zmlx_status parse_matches(const qctx *c, const char *key, const json_t *list, bool need,
                                 zqmatch **out, size_t *n) {
    if (!list && !need) return ZMLX_OK;
    if (!json_is_array(list) || (need && json_array_size(list) == 0))
        return qbad(c, ZMLX_ERR_FORMAT, key, list, need ? "must be a non-empty list of names" : "must be a list of names");
    *out = calloc(json_array_size(list) + 1, sizeof **out);
    if (!*out) return zerr_set(c->e, ZMLX_ERR_NOMEM, "%s: out of memory", c->fname);
    for (size_t i = 0; i < json_array_size(list); i++) {
        char k[64];
        snprintf(k, sizeof k, "%s[%zu]", key, i);
        zmlx_status st = parse_match(c, k, json_array_get(list, i), &(*out)[i]);
        *n = i + 1;
        if (st) return st;
    }
    return ZMLX_OK;
}

/* weights of one config group: symmetric int, group strategy. */
static zmlx_status parse_ct_weights(const qctx *c, const json_t *w, zqmod *m) {
    zmlx_status st;
    const char *s;
    if ((st = qonly(c, w, "type", "int", "is not supported (supported: int)")) ||
        (st = qonly(c, w, "strategy", "group", "is not supported (supported: group)")) ||
        (st = qonly(c, w, "format", "pack-quantized", "is not supported (supported: pack-quantized)")) ||
        (st = qnone(c, w, "actorder", "is not supported (no activation reordering)")) ||
        (st = qnone(c, w, "block_structure", "is not supported")) ||
        (st = qnone(c, w, "dynamic", "is not supported (static weight scales only)")))
        return st;
    if ((st = qstr(c, w, "type", &s))) return st;
    if (!s) return qbad(c, ZMLX_ERR_FORMAT, "type", NULL, "required (int)");
    const json_t *sym = qget(w, "symmetric");
    if (!json_is_true(sym)) return qbad(c, ZMLX_ERR_UNSUPPORTED, "symmetric", sym, "is not supported (symmetric true only)");
    *m = (zqmod){ZQMODE_INT_SYM, 0, 0};
    if ((st = qint(c, w, "num_bits", true, &m->bits)) || (st = qint(c, w, "group_size", true, &m->group)))
        return st;
    if (!affine_bits_ok(m->bits))
        return qbad(c, ZMLX_ERR_UNSUPPORTED, "num_bits", qget(w, "num_bits"),
                    "is not supported (2, 3, 4, 5, 6, 8)");
    if (!group_ok(m->group))
        return qbad(c, ZMLX_ERR_UNSUPPORTED, "group_size", qget(w, "group_size"),
                    "is not supported (32, 64, 128)");
    return ZMLX_OK;
}

static zmlx_status parse_ct_group(const qctx *c, const char *name, const json_t *g, zqgroup *out) {
    qctx gc = *c;
    snprintf(gc.scope, sizeof gc.scope, "%.60sconfig_groups.%.32s.", c->scope, name);
    if (!json_is_object(g)) return qbad(c, ZMLX_ERR_FORMAT, name, g, "must be an object");
    zmlx_status st;
    if ((st = qnone(&gc, g, "input_activations", "is not supported (weight-only quantization)")) ||
        (st = qnone(&gc, g, "output_activations", "is not supported (weight-only quantization)")) ||
        (st = qonly(&gc, g, "format", "pack-quantized", "is not supported (supported: pack-quantized)")))
        return st;
    const json_t *w = qget(g, "weights");
    if (!json_is_object(w)) return qbad(&gc, ZMLX_ERR_FORMAT, "weights", w, "must be an object");
    qctx wc = gc;
    snprintf(wc.scope, sizeof wc.scope, "%.140sweights.", gc.scope);
    if ((st = parse_ct_weights(&wc, w, &out->mod))) return st;
    return parse_matches(&gc, "targets", qget(g, "targets"), true, &out->targets, &out->n_targets);
}

static zmlx_status parse_ct(const qctx *c, const json_t *obj, zqcfg *q) {
    zmlx_status st;
    const char *fmt;
    if ((st = qstr(c, obj, "format", &fmt))) return st;
    if (!fmt || strcmp(fmt, "pack-quantized") != 0)
        return qbad(c, ZMLX_ERR_UNSUPPORTED, "format", qget(obj, "format"),
                    "is not supported (supported: pack-quantized)");
    if ((st = qonly(c, obj, "quantization_status", "compressed",
                    "is not supported (supported: compressed)")) ||
        (st = qnone(c, obj, "kv_cache_scheme", "is not supported (the latent cache is float)")) ||
        (st = qnone(c, obj, "sparsity_config", "is not supported")) ||
        (st = qnone(c, obj, "transform_config", "is not supported")))
        return st;
    const json_t *groups = qget(obj, "config_groups");
    if (!json_is_object(groups) || json_object_size(groups) == 0)
        return qbad(c, ZMLX_ERR_FORMAT, "config_groups", groups, "must be a non-empty object");
    q->groups = calloc(json_object_size(groups), sizeof *q->groups);
    if (!q->groups) return zerr_set(c->e, ZMLX_ERR_NOMEM, "%s: out of memory", c->fname);
    const char *key;
    const json_t *g;
    json_object_foreach((json_t *)groups, key, g) {
        st = parse_ct_group(c, key, g, &q->groups[q->n_groups]);
        q->n_groups++;
        if (st) return st;
    }
    q->def = q->groups[0].mod;
    return parse_matches(c, "ignore", qget(obj, "ignore"), false, &q->ignore, &q->n_ignore);
}

/* ---------------------------------------------------------------- the block */

static zmlx_status parse_qc(const qctx *c, const json_t *obj, zqcfg *q) {
    const char *m;
    zmlx_status st = qstr(c, obj, "quant_method", &m);
    if (st) return st;
    if (!m) return qbad(c, ZMLX_ERR_FORMAT, "quant_method", NULL, "required");
    if (!strcmp(m, "fp8")) {
        q->method = ZQM_FP8;
        return parse_fp8(c, obj, q);
    }
    if (!strcmp(m, "compressed-tensors")) {
        q->method = ZQM_COMPRESSED;
        return parse_ct(c, obj, q);
    }
    return qbad(c, ZMLX_ERR_UNSUPPORTED, "quant_method", qget(obj, "quant_method"),
                "is not supported (supported: fp8, compressed-tensors; MLX writes \"quantization\")");
}

void zqcfg_free(zqcfg *q) {
    if (!q) return;
    for (size_t i = 0; i < q->n_over; i++) free(q->over[i].path);
    free(q->over);
    zqmatch *lists[2] = {q->ignore, NULL};
    size_t ns[2] = {q->n_ignore, 0};
    for (size_t g = 0; g < q->n_groups; g++) {
        lists[1] = q->groups[g].targets, ns[1] = q->groups[g].n_targets;
        for (size_t i = 0; i < ns[1]; i++) free(lists[1][i].name), pcre2_code_free(lists[1][i].re);
        free(lists[1]);
    }
    for (size_t i = 0; i < ns[0]; i++) free(lists[0][i].name), pcre2_code_free(lists[0][i].re);
    free(q->ignore);
    free(q->groups);
    pcre2_match_data_free(q->md);
    pcre2_match_context_free(q->mc);
    free(q);
}

zmlx_status zqcfg_parse(const json_t *root, const json_t *text, const char *text_scope,
                        const char *fname, zqcfg **out, zerr *e) {
    static const char *const keys[] = {"quantization", "quantization_config"};
    const json_t *objs[2] = {root, text};
    const char *scopes[2] = {"", text_scope ? text_scope : ""};
    if (out) *out = NULL;
    const json_t *blk = NULL;
    int which = 0, k = 0;
    for (int o = 0; o < 2 && !blk; o++)
        for (int kk = 0; kk < 2 && !blk; kk++)
            if ((blk = qget(objs[o], keys[kk]))) which = o, k = kk;
    if (!blk) return ZMLX_OK;
    qctx c = {.fname = fname, .e = e};
    snprintf(c.scope, sizeof c.scope, "%s", scopes[which]);
    if (!json_is_object(blk)) return qbad(&c, ZMLX_ERR_FORMAT, keys[k], blk, "must be an object");
    snprintf(c.scope, sizeof c.scope, "%s%s.", scopes[which], keys[k]);
    zqcfg *q = calloc(1, sizeof *q);
    if (!q) return zerr_set(e, ZMLX_ERR_NOMEM, "%s: out of memory", fname);
    zmlx_status st;
    if (k == 0) {
        q->method = ZQM_MLX;
        st = parse_mlx(&c, blk, q);
    } else {
        st = parse_qc(&c, blk, q);
    }
    if (!st && q->n_groups + q->n_ignore > 0) {
        q->md = pcre2_match_data_create(1, NULL);
        q->mc = pcre2_match_context_create(NULL);
        if (!q->md || !q->mc) st = zerr_set(e, ZMLX_ERR_NOMEM, "%s: out of memory", fname);
        else pcre2_set_match_limit(q->mc, 1000000);
    }
    if (st || !out) zqcfg_free(q);
    else *out = q;
    return st;
}

zqmethod zqcfg_method(const zqcfg *q) {
    return q ? q->method : ZQM_NONE;
}

const char *zqmethod_name(zqmethod m) {
    switch (m) {
    case ZQM_NONE: return "none";
    case ZQM_MLX: return "mlx";
    case ZQM_FP8: return "fp8";
    case ZQM_COMPRESSED: return "compressed-tensors";
    }
    return "?";
}

const char *zqmode_name(zqmode m) {
    switch (m) {
    case ZQMODE_DENSE: return "dense";
    case ZQMODE_AFFINE: return "affine";
    case ZQMODE_MXFP4: return "mxfp4";
    case ZQMODE_FP8_BLOCK: return "fp8 block";
    case ZQMODE_INT_SYM: return "symmetric int";
    }
    return "?";
}

/* Does entry m match module `name` (class: "Linear" or "Embedding")? */
static bool match_one(const zqcfg *q, const zqmatch *m, const char *name, const char *cls) {
    if (m->name) return !strcmp(m->name, name) || !strcmp(m->name, cls);
    return pcre2_match(m->re, (PCRE2_SPTR)name, strlen(name), 0, 0, q->md, q->mc) >= 0;
}

/* Any entry of the list, against the path with and without the tensor prefix. */
static bool match_any(const zqcfg *q, const zqmatch *list, size_t n, const char *path,
                      const char *prefix, const char *cls) {
    size_t pl = strlen(prefix);
    const char *bare = pl && !strncmp(path, prefix, pl) ? path + pl : NULL;
    for (size_t i = 0; i < n; i++)
        if (match_one(q, &list[i], path, cls) || (bare && match_one(q, &list[i], bare, cls)))
            return true;
    return false;
}

zqdecl zqcfg_module(const zqcfg *q, const char *path, const char *prefix, bool linear,
                    zqmod *mod) {
    *mod = (zqmod){ZQMODE_DENSE, 0, 0};
    if (!q) return ZQDECL_DENSE;
    switch (q->method) {
    case ZQM_MLX: {
        zqover key = {.path = (char *)path};
        const zqover *o = bsearch(&key, q->over, q->n_over, sizeof *q->over, over_cmp);
        *mod = o ? o->mod : q->def;
        if (o && o->decl == ZQDECL_DENSE) *mod = (zqmod){ZQMODE_DENSE, 0, 0};
        return o ? o->decl : ZQDECL_IF_STORED;
    }
    case ZQM_FP8: *mod = q->def; return ZQDECL_IF_STORED;
    case ZQM_COMPRESSED: {
        const char *cls = linear ? "Linear" : "Embedding";
        if (!prefix) prefix = "";
        if (match_any(q, q->ignore, q->n_ignore, path, prefix, cls)) return ZQDECL_DENSE;
        for (size_t g = 0; g < q->n_groups; g++)
            if (match_any(q, q->groups[g].targets, q->groups[g].n_targets, path, prefix, cls)) {
                *mod = q->groups[g].mod;
                return ZQDECL_QUANT;
            }
        return ZQDECL_DENSE;
    }
    case ZQM_NONE: break;
    }
    return ZQDECL_DENSE;
}

void zqcfg_describe(const zqcfg *q, char *buf, size_t n) {
    switch (zqcfg_method(q)) {
    case ZQM_NONE: snprintf(buf, n, "dense"); break;
    case ZQM_MLX:
        if (q->def.mode == ZQMODE_MXFP4) snprintf(buf, n, "mlx mxfp4%s", q->n_over ? " mixed" : "");
        else snprintf(buf, n, "mlx affine%d g%d%s", q->def.bits, q->def.group, q->n_over ? " mixed" : "");
        break;
    case ZQM_FP8: snprintf(buf, n, "fp8 e4m3 b%d", q->def.group); break;
    case ZQM_COMPRESSED: snprintf(buf, n, "ct int%d g%d", q->def.bits, q->def.group); break;
    }
}
