/*
 * load_weight.c — one logical weight from a checkpoint, in whatever layout it is stored
 * (see load_weight.h and docs/formats.md): find its tensors, decide the stored layout
 * from which tensors exist, check it against what config.json declares for the module,
 * check every shape and dtype, build the zweight, and ask the backend whether it runs it.
 *
 * Compressed-tensors int weights become MLX affine weights (same packed stream: element
 * j at stream bits [j*bits, (j+1)*bits) of little-endian 32-bit words) whose biases are
 * made here: bias = -2^(bits-1) * scale, exact in the scale's own dtype, and
 * scale * q + bias == scale * (q - 2^(bits-1)) exactly in float32 for BF16 / F16 scales
 * (both products have at most 16 + 8 significant bits).  F16 scales are widened to F32
 * (with their biases) so biases and scales share one dtype.  When cols is not a multiple
 * of the group, the weight is dequantized to float32 instead (exact, 4 bytes/element).
 */
#include "model/load_weight.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The tensors that may make up one module, looked up once. */
typedef struct parts {
    char base[256];
    const zst_tensor *weight, *scales, *biases;     /* dense, MLX */
    const zst_tensor *scale_inv;                    /* fp8 */
    const zst_tensor *packed, *wscale, *wshape;     /* compressed-tensors */
    const zst_tensor *zero, *gidx;                  /* unsupported extras */
} parts;

static const zst_tensor *part(const zloader *ld, const parts *p, const char *suffix) {
    char name[300];
    snprintf(name, sizeof name, "%s.%s", p->base, suffix);
    return zst_find(ld->m->archive, name);
}

static void find_parts(const zloader *ld, parts *p) {
    p->weight = part(ld, p, "weight");
    p->scales = part(ld, p, "scales");
    p->biases = part(ld, p, "biases");
    p->scale_inv = part(ld, p, "weight_scale_inv");
    p->packed = part(ld, p, "weight_packed");
    p->wscale = part(ld, p, "weight_scale");
    p->wshape = part(ld, p, "weight_shape");
    p->zero = part(ld, p, "weight_zero_point");
    p->gidx = part(ld, p, "weight_g_idx");
}

static const char *file_of(const zloader *ld, const zst_tensor *t) {
    return zst_shard_path(ld->m->archive, t->shard);
}

__attribute__((format(printf, 3, 4))) static bool fail(zloader *ld, zmlx_status st, const char *fmt,
                                                       ...);

static bool fail(zloader *ld, zmlx_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char msg[ZMLX_ERR_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ld->st = zerr_set(ld->e, st, "%s", msg);
    return false;
}

static void dims_str(const int64_t *d, int nd, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < nd && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)d[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* t has dims [stack?, a, b] (stack 0: 2-D) and one of the dtypes in `ok` (ZDT_COUNT ends). */
static bool check_tensor(zloader *ld, const zst_tensor *t, const char *name, int64_t stack,
                         int64_t a, int64_t b, const zdtype *ok, const char *what) {
    int64_t want[3];
    int nd = 0;
    if (stack) want[nd++] = stack;
    want[nd++] = a;
    want[nd++] = b;
    bool shape_ok = t->ndim == nd;
    for (int i = 0; shape_ok && i < nd; i++) shape_ok = t->shape[i] == want[i];
    if (!shape_ok) {
        char w[96], g[96];
        dims_str(want, nd, w, sizeof w);
        dims_str(t->shape, t->ndim, g, sizeof g);
        return fail(ld, ZMLX_ERR_FORMAT, "%s: tensor \"%s\" has shape %s but config.json implies %s (%s)",
                    file_of(ld, t), name, g, w, what);
    }
    char names[96] = "";
    for (int i = 0; ok[i] != ZDT_COUNT; i++) {
        if (t->dtype == ok[i]) return true;
        size_t o = strlen(names);
        snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "", zdtype_table[ok[i]].name);
    }
    return fail(ld, ZMLX_ERR_FORMAT, "%s: tensor \"%s\" has dtype %s, expected %s (%s)",
                file_of(ld, t), name, zdtype_table[t->dtype].name, names, what);
}

static const zdtype k_dense[] = {ZDT_F32, ZDT_F16, ZDT_BF16, ZDT_COUNT};
static const zdtype k_u32[] = {ZDT_U32, ZDT_COUNT};
static const zdtype k_u8[] = {ZDT_U8, ZDT_COUNT};
static const zdtype k_i32[] = {ZDT_I32, ZDT_U32, ZDT_COUNT};
static const zdtype k_f8[] = {ZDT_F8_E4M3, ZDT_COUNT};

/* "<base>.<suffix>" for messages */
static const char *tname(const parts *p, const char *suffix, char *buf, size_t n) {
    snprintf(buf, n, "%s.%s", p->base, suffix);
    return buf;
}

/* ---------------------------------------------------------------- one layout each */

static bool build_dense(zloader *ld, const parts *p, const zwant *wt, zweight *w) {
    char n[640];
    if (p->weight->dtype == ZDT_F8_E4M3)
        return fail(ld, ZMLX_ERR_FORMAT,
                    "%s: tensor \"%s\" is F8_E4M3 but \"%s\" is missing (fp8 weights need "
                    "their block scales)", file_of(ld, p->weight), tname(p, "weight", n, sizeof n),
                    tname(p, "weight_scale_inv", n + 320, sizeof n - 320));
    if (!check_tensor(ld, p->weight, tname(p, "weight", n, sizeof n), wt->stack, wt->rows, wt->cols,
                      k_dense, "a dense weight"))
        return false;
    *w = (zweight){.dtype = p->weight->dtype, .rows = (wt->stack ? wt->stack : 1) * wt->rows,
                   .cols = wt->cols, .data = p->weight->data};
    return true;
}

/* MLX affine / mxfp4: packed uint32 rows, scales (and biases) per group. */
static bool build_mlx(zloader *ld, const parts *p, const zwant *wt, const zqmod *mod, zweight *w) {
    char n[640], what[128];
    const bool fp4 = mod->mode == ZQMODE_MXFP4;
    snprintf(what, sizeof what, "%s%d group %d, declared by config.json", fp4 ? "mxfp" : "affine",
             mod->bits, mod->group);
    if (wt->cols % mod->group)
        return fail(ld, ZMLX_ERR_FORMAT,
                    "%s: tensor \"%s\" is quantized, but its %lld input columns are not a multiple "
                    "of the group size %d that config.json declares for \"%s\"",
                    file_of(ld, p->weight), tname(p, "weight", n, sizeof n), (long long)wt->cols,
                    mod->group, p->base);
    const int64_t words = wt->cols * mod->bits / 32, groups = wt->cols / mod->group;
    static const zdtype k_affine_s[] = {ZDT_BF16, ZDT_F16, ZDT_F32, ZDT_COUNT};
    if (!check_tensor(ld, p->weight, tname(p, "weight", n, sizeof n), wt->stack, wt->rows, words,
                      k_u32, what) ||
        !check_tensor(ld, p->scales, tname(p, "scales", n, sizeof n), wt->stack, wt->rows, groups,
                      fp4 ? k_u8 : k_affine_s, what))
        return false;
    if (fp4 && p->biases)
        return fail(ld, ZMLX_ERR_FORMAT, "%s: tensor \"%s\" exists but \"%s\" is declared mxfp4 (no biases)",
                    file_of(ld, p->biases), tname(p, "biases", n, sizeof n), p->base);
    if (!fp4 && !p->biases)
        return fail(ld, ZMLX_ERR_NOT_FOUND, "%s: tensor \"%s\" is missing (affine weights need biases)",
                    ld->dir, tname(p, "biases", n, sizeof n));
    if (!fp4) {
        const zdtype same[] = {p->scales->dtype, ZDT_COUNT};
        if (!check_tensor(ld, p->biases, tname(p, "biases", n, sizeof n), wt->stack, wt->rows, groups,
                          same, "the dtype of its scales"))
            return false;
    }
    *w = (zweight){.dtype = ZDT_U32, .rows = (wt->stack ? wt->stack : 1) * wt->rows, .cols = wt->cols,
                   .data = p->weight->data, .q = fp4 ? ZQ_MXFP4 : ZQ_AFFINE, .bits = mod->bits,
                   .group = mod->group, .sdtype = p->scales->dtype, .scales = p->scales->data,
                   .biases = fp4 ? NULL : p->biases->data};
    return true;
}

static bool build_fp8(zloader *ld, const parts *p, const zwant *wt, const zqmod *mod, zweight *w) {
    char n[640], what[128];
    if (wt->stack)
        return fail(ld, ZMLX_ERR_UNSUPPORTED,
                    "%s: tensor \"%s\": stacked fp8 block weights are not supported",
                    file_of(ld, p->weight), tname(p, "weight", n, sizeof n));
    const int64_t B = mod->group;
    snprintf(what, sizeof what, "fp8 blocks of %lld x %lld, declared by config.json", (long long)B,
             (long long)B);
    static const zdtype k_s[] = {ZDT_F32, ZDT_BF16, ZDT_F16, ZDT_COUNT};
    if (!check_tensor(ld, p->weight, tname(p, "weight", n, sizeof n), 0, wt->rows, wt->cols, k_f8, what) ||
        !check_tensor(ld, p->scale_inv, tname(p, "weight_scale_inv", n, sizeof n), 0,
                      (wt->rows + B - 1) / B, (wt->cols + B - 1) / B, k_s, what))
        return false;
    *w = (zweight){.dtype = ZDT_F8_E4M3, .rows = wt->rows, .cols = wt->cols, .data = p->weight->data,
                   .q = ZQ_FP8_BLOCK, .bits = 8, .group = (int)B, .sdtype = p->scale_inv->dtype,
                   .scales = p->scale_inv->data};
    return true;
}

/* Element i of an I32 / I64 tensor. */
static int64_t int_at(const zst_tensor *t, int64_t i) {
    if (t->dtype == ZDT_I64) {
        int64_t v;
        memcpy(&v, t->data + 8 * i, sizeof v);
        return v;
    }
    int32_t v;
    memcpy(&v, t->data + 4 * i, sizeof v);
    return v;
}

/* int weight with cols % group != 0: w = scale * (q - off) into float32 (exact). */
static bool int_to_f32(zloader *ld, const zst_tensor *pk, const zst_tensor *sc, const zwant *wt,
                       const zqmod *mod, zweight *w) {
    const int64_t R = wt->rows, K = wt->cols, wpr = (K * mod->bits + 31) / 32;
    const int64_t ng = (K + mod->group - 1) / mod->group, off = (int64_t)1 << (mod->bits - 1);
    float *out = zmodel_alloc(ld->m, (size_t)(R * K) * sizeof(float));
    if (!out) return fail(ld, ZMLX_ERR_NOMEM, "out of memory dequantizing an int weight to float32");
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < K; c++) {
            float s = zweight_scale_at(sc->dtype, sc->data, r * ng + c / mod->group);
            out[r * K + c] = s * (float)((int64_t)zq_code(pk->data + 4 * r * wpr, c, mod->bits) - off);
        }
    *w = (zweight){.dtype = ZDT_F32, .rows = R, .cols = K, .data = out};
    return true;
}

/* The biases -off * scale for every scale of sc, in `dt` (BF16 or F32), into owned memory;
   F16 scales come back widened to F32 in *scales_f32. */
static bool int_biases(zloader *ld, const zst_tensor *sc, int64_t n, int off, zdtype dt,
                       void **biases, float **scales_f32) {
    const size_t es = zdtype_table[dt].size;
    *biases = zmodel_alloc(ld->m, (size_t)n * es);
    *scales_f32 = NULL;
    if (sc->dtype == ZDT_F16) *scales_f32 = zmodel_alloc(ld->m, (size_t)n * sizeof(float));
    if (!*biases || (sc->dtype == ZDT_F16 && !*scales_f32))
        return fail(ld, ZMLX_ERR_NOMEM, "out of memory making int biases");
    for (int64_t i = 0; i < n; i++) {
        float s = zweight_scale_at(sc->dtype, sc->data, i), b = -(float)off * s;
        if (*scales_f32) (*scales_f32)[i] = s;
        if (dt == ZDT_BF16) {
            uint16_t h = zf32_to_bf16(b); /* exact: a power-of-two multiple of a bf16 */
            memcpy((uint8_t *)*biases + 2 * i, &h, 2);
        } else {
            memcpy((uint8_t *)*biases + 4 * i, &b, 4);
        }
    }
    return true;
}

static bool build_int(zloader *ld, const parts *p, const zwant *wt, const zqmod *mod, zweight *w) {
    char n[640], what[128];
    if (wt->stack)
        return fail(ld, ZMLX_ERR_UNSUPPORTED, "%s: tensor \"%s\": stacked int weights are not supported",
                    file_of(ld, p->packed), tname(p, "weight_packed", n, sizeof n));
    if (!p->wscale || !p->wshape)
        return fail(ld, ZMLX_ERR_NOT_FOUND, "%s: tensor \"%s\" is missing (compressed-tensors int "
                    "weights need weight_scale and weight_shape)", ld->dir,
                    tname(p, p->wscale ? "weight_shape" : "weight_scale", n, sizeof n));
    const int64_t R = wt->rows, K = wt->cols;
    snprintf(what, sizeof what, "int%d group %d, declared by config.json", mod->bits, mod->group);
    static const zdtype k_s[] = {ZDT_BF16, ZDT_F16, ZDT_F32, ZDT_COUNT};
    if (!check_tensor(ld, p->packed, tname(p, "weight_packed", n, sizeof n), 0, R,
                      (K * mod->bits + 31) / 32, k_i32, what) ||
        !check_tensor(ld, p->wscale, tname(p, "weight_scale", n, sizeof n), 0, R,
                      (K + mod->group - 1) / mod->group, k_s, what))
        return false;
    tname(p, "weight_shape", n, sizeof n);
    if (p->wshape->ndim != 1 || p->wshape->shape[0] != 2 ||
        (p->wshape->dtype != ZDT_I32 && p->wshape->dtype != ZDT_I64))
        return fail(ld, ZMLX_ERR_FORMAT, "%s: tensor \"%s\" must be an I32 or I64 vector of 2",
                    file_of(ld, p->wshape), n);
    if (int_at(p->wshape, 0) != R || int_at(p->wshape, 1) != K)
        return fail(ld, ZMLX_ERR_FORMAT, "%s: tensor \"%s\" = [%lld, %lld] but config.json implies [%lld, %lld]",
                    file_of(ld, p->wshape), n, (long long)int_at(p->wshape, 0),
                    (long long)int_at(p->wshape, 1), (long long)R, (long long)K);
    if (K % mod->group) return int_to_f32(ld, p->packed, p->wscale, wt, mod, w);
    const int64_t ns = R * (K / mod->group);
    const zdtype bdt = p->wscale->dtype == ZDT_BF16 ? ZDT_BF16 : ZDT_F32;
    void *biases;
    float *s32;
    if (!int_biases(ld, p->wscale, ns, 1 << (mod->bits - 1), bdt, &biases, &s32)) return false;
    *w = (zweight){.dtype = ZDT_U32, .rows = R, .cols = K, .data = p->packed->data, .q = ZQ_AFFINE,
                   .bits = mod->bits, .group = mod->group, .sdtype = bdt,
                   .scales = s32 ? (const void *)s32 : p->wscale->data, .biases = biases};
    return true;
}

/* ---------------------------------------------------------------- the resolver */

typedef enum stored { ST_DENSE, ST_MLX, ST_FP8, ST_INT } stored;

static const char *stored_name(stored s) {
    switch (s) {
    case ST_DENSE: return "dense";
    case ST_MLX: return "MLX quantized";
    case ST_FP8: return "fp8 with block scales";
    case ST_INT: return "compressed-tensors packed int";
    }
    return "?";
}

/* Which layout the tensors present make; false when they make none. */
static bool stored_layout(zloader *ld, const parts *p, stored *s) {
    char n[640];
    const zst_tensor *odd = p->zero ? p->zero : p->gidx;
    if (odd)
        return fail(ld, ZMLX_ERR_UNSUPPORTED,
                    "%s: tensor \"%s\" is not supported (symmetric weights without activation "
                    "reordering only)", file_of(ld, odd), tname(p, p->zero ? "weight_zero_point" : "weight_g_idx", n, sizeof n));
    if (p->packed) {
        if (p->weight || p->scales)
            return fail(ld, ZMLX_ERR_FORMAT, "%s: module \"%s\" has both \"weight_packed\" and \"%s\"",
                        file_of(ld, p->packed), p->base, p->weight ? "weight" : "scales");
        *s = ST_INT;
        return true;
    }
    if (!p->weight)
        return fail(ld, ZMLX_ERR_NOT_FOUND, "%s: tensor \"%s\" is missing from the checkpoint", ld->dir,
                    tname(p, "weight", n, sizeof n));
    if (p->scale_inv && p->scales)
        return fail(ld, ZMLX_ERR_FORMAT, "%s: module \"%s\" has both \"scales\" and \"weight_scale_inv\"",
                    file_of(ld, p->weight), p->base);
    if (p->biases && !p->scales)
        return fail(ld, ZMLX_ERR_NOT_FOUND, "%s: tensor \"%s\" exists but \"%s\" is missing",
                    file_of(ld, p->biases), tname(p, "biases", n, sizeof n), tname(p, "scales", n + 320, sizeof n - 320));
    *s = p->scale_inv ? ST_FP8 : p->scales ? ST_MLX : ST_DENSE;
    return true;
}

/* The method a stored quantized layout belongs to. */
static zqmethod method_of(stored s) {
    return s == ST_MLX ? ZQM_MLX : s == ST_FP8 ? ZQM_FP8 : s == ST_INT ? ZQM_COMPRESSED : ZQM_NONE;
}

/* The mode a stored layout has, as far as the tensors tell. */
static zqmode mode_of(const parts *p, stored s) {
    switch (s) {
    case ST_MLX: return p->scales->dtype == ZDT_U8 ? ZQMODE_MXFP4 : ZQMODE_AFFINE;
    case ST_FP8: return ZQMODE_FP8_BLOCK;
    case ST_INT: return ZQMODE_INT_SYM;
    default: return ZQMODE_DENSE;
    }
}

/* Stored layout vs the declaration; false with a message naming both. */
static bool agree(zloader *ld, const parts *p, stored s, zqdecl d, const zqmod *mod, const zwant *wt) {
    const zst_tensor *t = s == ST_INT ? p->packed : p->weight;
    const char *file = file_of(ld, t);
    if (s == ST_DENSE) {
        if (d != ZQDECL_QUANT) return true;
        return fail(ld, ZMLX_ERR_FORMAT,
                    "%s: module \"%s\" is stored dense (%s) but config.json declares it %s %d-bit "
                    "group %d", file, p->base, zdtype_table[t->dtype].name, zqmode_name(mod->mode),
                    mod->bits, mod->group);
    }
    if (wt->dense_only)
        return fail(ld, ZMLX_ERR_UNSUPPORTED, "%s: module \"%s\" (the MoE router) is stored %s; "
                    "routers must be unquantized", file, p->base, stored_name(s));
    zqmethod m = zqcfg_method(ld->q);
    if (m != method_of(s))
        return fail(ld, ZMLX_ERR_FORMAT, "%s: module \"%s\" is stored %s but config.json declares %s",
                    file, p->base, stored_name(s),
                    m == ZQM_NONE ? "no quantization" : zqmethod_name(m));
    if (d == ZQDECL_DENSE)
        return fail(ld, ZMLX_ERR_FORMAT,
                    "%s: module \"%s\" is stored %s but config.json declares it unquantized", file,
                    p->base, stored_name(s));
    if (s == ST_MLX && mode_of(p, s) != mod->mode)
        return fail(ld, ZMLX_ERR_FORMAT,
                    "%s: module \"%s\" is stored %s (scales %s) but config.json declares mode %s",
                    file, p->base, zqmode_name(mode_of(p, s)), zdtype_table[p->scales->dtype].name,
                    zqmode_name(mod->mode));
    return true;
}

/* zweight_check and the backend's verdict. */
static bool runnable(zloader *ld, const parts *p, const zweight *w) {
    char why[160];
    const zst_tensor *t = p->packed ? p->packed : p->weight;
    if (!zweight_check(w, why, sizeof why))
        return fail(ld, ZMLX_ERR_FORMAT, "%s: module \"%s\": %s", file_of(ld, t), p->base, why);
    if (!ld->m->be->supports_weight(w)) {
        zwkind k = zweight_kind(w);
        return fail(ld, ZMLX_ERR_UNSUPPORTED,
                    "%s: module \"%s\" is %s (group %d), which the %s backend cannot run "
                    "(try --backend cpu)", file_of(ld, t), p->base, zwfmt_table[k].name,
                    w->group, ld->m->be->name);
    }
    return true;
}

/* p->base = the tensor prefix + the formatted module name; the module's tensors found. */
static void init_parts(const zloader *ld, parts *p, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void init_parts(const zloader *ld, parts *p, const char *fmt, va_list ap) {
    memset(p, 0, sizeof *p);
    int o = snprintf(p->base, sizeof p->base, "%s", ld->m->cfg.tensor_prefix);
    vsnprintf(p->base + o, sizeof p->base - (size_t)o, fmt, ap);
    find_parts(ld, p);
}

bool zload_weight(zloader *ld, const zwant *want, zweight *w, const char *fmt, ...) {
    parts p;
    va_list ap;
    va_start(ap, fmt);
    init_parts(ld, &p, fmt, ap);
    va_end(ap);
    stored s;
    zqmod mod;
    zqdecl d = want->dense_only ? ZQDECL_DENSE
                                : zqcfg_module(ld->q, p.base, ld->m->cfg.tensor_prefix, want->linear, &mod);
    if (want->dense_only) mod = (zqmod){ZQMODE_DENSE, 0, 0};
    if (!stored_layout(ld, &p, &s) || !agree(ld, &p, s, d, &mod, want)) return false;
    bool ok;
    switch (s) {
    case ST_MLX: ok = build_mlx(ld, &p, want, &mod, w); break;
    case ST_FP8: ok = build_fp8(ld, &p, want, &mod, w); break;
    case ST_INT: ok = build_int(ld, &p, want, &mod, w); break;
    default: ok = build_dense(ld, &p, want, w); break;
    }
    return ok && runnable(ld, &p, w);
}

bool zload_has(const zloader *ld, const char *fmt, ...) {
    parts p;
    va_list ap;
    va_start(ap, fmt);
    init_parts(ld, &p, fmt, ap);
    va_end(ap);
    return p.weight || p.packed;
}

bool zload_vector(zloader *ld, float *out, int64_t n, const char *fmt, ...) {
    char name[320];
    va_list ap;
    va_start(ap, fmt);
    int o = snprintf(name, sizeof name, "%s", ld->m->cfg.tensor_prefix);
    vsnprintf(name + o, sizeof name - (size_t)o, fmt, ap);
    va_end(ap);
    const zst_tensor *t = zst_find(ld->m->archive, name);
    if (!t)
        return fail(ld, ZMLX_ERR_NOT_FOUND, "%s: tensor \"%s\" is missing from the checkpoint",
                    ld->dir, name);
    if (t->ndim != 1 || t->shape[0] != n || !zdtype_table[t->dtype].compute) {
        char got[96];
        dims_str(t->shape, t->ndim, got, sizeof got);
        return fail(ld, ZMLX_ERR_FORMAT,
                    "%s: tensor \"%s\" is %s %s but config.json implies a float vector [%lld]",
                    file_of(ld, t), name, zdtype_table[t->dtype].name, got, (long long)n);
    }
    zweight w = {.dtype = t->dtype, .rows = 1, .cols = n, .data = t->data};
    zweight_row_f32(&w, 0, out);
    return true;
}
