/*
 * convert.c — running a conversion (convert.h): plan, shards, the tensors quantized
 * or cast in parallel row blocks (each block's result depends only on its rows, so
 * any thread count writes the same bytes), index, config, copied files, all in
 * DST.tmp-XXXXXX, renamed to DST at the end and removed on any failure.
 */
#include "backend/pool.h"
#include "io/st_write.h"
#include "ops/quant.h"
#include "tools/convert_int.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

zcv_params zcv_default_params(void) {
    return (zcv_params){.mode = ZCV_Q_AFFINE, .bits = 4, .group = 64, .dtype = ZDT_COUNT};
}

bool zcv_params_check(const zcv_params *p, zerr *e) {
    if (p->mode == ZCV_Q_MXFP4 && (p->bits != 4 || p->group != 32)) {
        zerr_set(e, ZMLX_ERR_INVALID_ARG, "--q-mode mxfp4 needs --q-bits 4 and --q-group-size 32 "
                 "(got %d and %d)", p->bits, p->group);
        return false;
    }
    if (p->mode == ZCV_Q_AFFINE) {
        bool bits = p->bits == 2 || p->bits == 3 || p->bits == 4 || p->bits == 5 ||
                    p->bits == 6 || p->bits == 8;
        if (!bits || (p->group != 32 && p->group != 64 && p->group != 128)) {
            zerr_set(e, ZMLX_ERR_INVALID_ARG, "--q-bits %d --q-group-size %d: affine needs bits 2, "
                     "3, 4, 5, 6 or 8 and group size 32, 64 or 128", p->bits, p->group);
            return false;
        }
    }
    if (p->dtype != ZDT_COUNT && p->dtype != ZDT_BF16 && p->dtype != ZDT_F32) {
        zerr_set(e, ZMLX_ERR_INVALID_ARG, "--dtype: bfloat16 or float32");
        return false;
    }
    return true;
}

/* ---- directories ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* --force may replace only an empty directory or a checkpoint (one with config.json). */
static bool replaceable(const char *dst) {
    struct stat sb;
    if (stat(dst, &sb) != 0 || !S_ISDIR(sb.st_mode)) return false;
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", dst);
    if (access(p, F_OK) == 0) return true;
    DIR *d = opendir(dst);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    if (d) closedir(d);
    return d && n == 0;
}

/* Move tmp to dst (replacing an old dst when force). */
static zmlx_status install(const char *tmp, const char *dst, bool force, zerr *e) {
    char old[4200] = "";
    if (force && access(dst, F_OK) == 0) {
        snprintf(old, sizeof old, "%s.old-XXXXXX", dst);
        if (!mkdtemp(old) || rename(dst, old) != 0)
            return zerr_set(e, ZMLX_ERR_IO, "%s: cannot move the old checkpoint aside: %s", dst,
                            strerror(errno));
    }
    if (rename(tmp, dst) != 0) {
        zmlx_status st = zerr_set(e, ZMLX_ERR_IO, "%s: cannot rename %s into place: %s", dst, tmp,
                                  strerror(errno));
        if (old[0]) rename(old, dst);
        return st;
    }
    if (old[0]) rm_tree(old);
    return ZMLX_OK;
}

/* ---- tensors ---- */

typedef struct job {
    const zcv_unit *u;
    const zcv_params *p;
    int64_t r0, n_rows, rows_per_task;
    float **scratch;             /* per thread: rows_per_task * cols floats */
    uint8_t *obuf[3];            /* the super-block's bytes of each output */
    size_t orow[3];              /* bytes per row of each output */
} job;

/* Rows of a compressed-tensors int4 unit as mlx-lm remaps them: the packed words as they
   are (q + 8 nibbles, low first, as MLX packs), scales = weight_scale, biases = -8 * scale. */
static void raw_int4_rows(const job *j, int64_t r, int64_t n) {
    const zcv_unit *u = j->u;
    const int64_t ng = u->cols / 32;
    for (int64_t i = 0; i < n; i++) {
        int64_t row = r + i;
        const zcv_src *t = u->src[0];
        if (u->op == ZCV_OP_STACK) {
            t = u->src[row / u->shape[1]];
            row %= u->shape[1];
        }
        size_t k = (size_t)(r - j->r0 + i);
        memcpy(j->obuf[0] + k * j->orow[0], t->i4_packed + (size_t)row * (size_t)u->cols / 2,
               (size_t)u->cols / 2);
        for (int64_t g = 0; g < ng; g++) {
            float sc = zweight_scale_at(t->i4_sdtype, t->i4_scale, row * ng + g), b = -8.0f * sc;
            uint8_t *ps = j->obuf[1] + k * j->orow[1], *pb = j->obuf[2] + k * j->orow[2];
            if (u->dt == ZDT_F32) {
                memcpy(ps + 4 * g, &sc, 4);
                memcpy(pb + 4 * g, &b, 4);
            } else {
                uint16_t hs = zf32_to_bf16(sc), hb = zf32_to_bf16(b);
                memcpy(ps + 2 * g, &hs, 2);
                memcpy(pb + 2 * g, &hb, 2);
            }
        }
    }
}

static void encode_rows(void *arg, int64_t task, int thread) {
    const job *j = arg;
    const zcv_unit *u = j->u;
    int64_t r = j->r0 + task * j->rows_per_task;
    int64_t n = j->r0 + j->n_rows - r < j->rows_per_task ? j->r0 + j->n_rows - r : j->rows_per_task;
    if (u->raw_int4) {
        raw_int4_rows(j, r, n);
        return;
    }
    float *x = j->scratch[thread];
    zcv_unit_rows(u, r, n, x);
    for (int64_t i = 0; i < n; i++) {
        const float *row = x + i * u->cols;
        size_t k = (size_t)(r - j->r0 + i);
        uint8_t *o0 = j->obuf[0] + k * j->orow[0];
        if (!u->quant) {
            if (u->dt == ZDT_F32) {
                memcpy(o0, row, (size_t)u->cols * 4);
            } else {
                for (int64_t c = 0; c < u->cols; c++) {
                    uint16_t h = zf32_to_bf16(row[c]);
                    memcpy(o0 + 2 * c, &h, 2);
                }
            }
        } else if (j->p->mode == ZCV_Q_MXFP4) {
            zquant_mxfp4_row(row, u->cols, (uint32_t *)o0, j->obuf[1] + k * j->orow[1]);
        } else {
            zquant_affine_row_as(row, u->cols, j->p->bits, j->p->group, (uint32_t *)o0, u->dt,
                                 j->obuf[1] + k * j->orow[1], j->obuf[2] + k * j->orow[2]);
        }
    }
}

typedef struct run {
    const zcv_params *p;
    zcv_plan *plan;
    zst_writer **w;  /* per shard */
    int *shard_of;   /* per output */
    size_t *local;   /* per output: index within its shard */
    zpool *pool;
    float **scratch;
    int64_t scratch_floats;
    zcv_progress prog;
} run;

static zmlx_status put(run *R, int out, uint64_t off, const void *data, size_t n, zerr *e) {
    zmlx_status st = zst_writer_put(R->w[R->shard_of[out]], R->local[out], off, data, n, e);
    R->prog.bytes_done += n;
    return st;
}

static zmlx_status write_unit(run *R, const zcv_unit *u, zerr *e) {
    const int nth = zpool_threads(R->pool);
    int64_t rpt = R->scratch_floats / u->cols;
    rpt = rpt < 1 ? 1 : rpt;
    if (rpt * u->cols > R->scratch_floats) { /* one row longer than the scratch */
        for (int t = 0; t < nth; t++) {
            float *s = realloc(R->scratch[t], (size_t)u->cols * sizeof(float));
            if (!s) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory converting %s", u->name);
            R->scratch[t] = s;
        }
        R->scratch_floats = u->cols;
    }
    job j = {.u = u, .p = R->p, .rows_per_task = rpt, .scratch = R->scratch};
    const int64_t super = rpt * 16 * nth;
    size_t total[3] = {0};
    for (int k = 0; k < u->n_out; k++) {
        total[k] = (size_t)zst_wspec_nbytes(&R->plan->out[u->out0 + k]);
        j.orow[k] = total[k] / (size_t)u->rows;
        j.obuf[k] = malloc(j.orow[k] * (size_t)(super < u->rows ? super : u->rows) + 1);
    }
    zmlx_status st = ZMLX_OK;
    for (int k = 0; k < u->n_out; k++)
        if (!j.obuf[k]) st = zerr_set(e, ZMLX_ERR_NOMEM, "out of memory converting %s", u->name);
    for (int64_t r0 = 0; st == ZMLX_OK && r0 < u->rows; r0 += super) {
        j.r0 = r0;
        j.n_rows = u->rows - r0 < super ? u->rows - r0 : super;
        zpool_run(R->pool, encode_rows, &j, (j.n_rows + rpt - 1) / rpt);
        for (int k = 0; st == ZMLX_OK && k < u->n_out; k++)
            st = put(R, u->out0 + k, (uint64_t)r0 * j.orow[k], j.obuf[k],
                     (size_t)j.n_rows * j.orow[k], e);
        if (st == ZMLX_OK && R->p->cancel && *R->p->cancel)
            st = zerr_set(e, ZMLX_ERR_LIMIT, "interrupted");
        if (r0 + j.n_rows == u->rows) R->prog.tensors_done += (size_t)u->n_out;
        R->prog.current = u->name;
        if (R->p->progress && st == ZMLX_OK) R->p->progress(R->p->progress_ctx, &R->prog);
    }
    for (int k = 0; k < u->n_out; k++) free(j.obuf[k]);
    return st;
}

/* Shards in module order, one writer each; then every unit. */
static zmlx_status write_tensors(run *R, const char *tmp, int *n_shards, zerr *e) {
    zcv_plan *pl = R->plan;
    uint64_t *nb = malloc((pl->n_out + 1) * sizeof *nb);
    zst_wspec *specs = malloc((pl->n_out + 1) * sizeof *specs);
    zmlx_status st = ZMLX_OK;
    if (!nb || !specs) {
        st = zerr_set(e, ZMLX_ERR_NOMEM, "out of memory planning shards");
        goto out;
    }
    for (size_t i = 0; i < pl->n_out; i++) {
        nb[i] = zst_wspec_nbytes(&pl->out[i]);
        R->prog.bytes_total += nb[i];
    }
    R->prog.tensors_total = pl->n_out;
    *n_shards = zst_plan_shards(nb, pl->n_out, ZST_SHARD_MAX_BYTES, R->shard_of);
    R->w = calloc((size_t)*n_shards + 1, sizeof *R->w);
    if (!R->w) {
        st = zerr_set(e, ZMLX_ERR_NOMEM, "out of memory planning shards");
        goto out;
    }
    for (int s = 0; st == ZMLX_OK && s < *n_shards; s++) {
        size_t k = 0;
        for (size_t i = 0; i < pl->n_out; i++)
            if (R->shard_of[i] == s) {
                R->local[i] = k;
                specs[k++] = pl->out[i];
            }
        char name[64], path[4400];
        zst_shard_name(name, sizeof name, s, *n_shards);
        snprintf(path, sizeof path, "%s/%s", tmp, name);
        st = zst_writer_open(path, specs, k, &R->w[s], e);
    }
    for (size_t i = 0; st == ZMLX_OK && i < pl->n_units; i++) st = write_unit(R, &pl->u[i], e);
    for (int s = 0; s < *n_shards; s++) {
        if (!R->w[s]) continue;
        if (st == ZMLX_OK) st = zst_writer_finish(R->w[s], e);
        else zst_writer_abort(R->w[s]);
        R->w[s] = NULL;
    }
out:
    free(nb);
    free(specs);
    return st;
}

static zmlx_status convert_into(zcv_srcset *s, const zcv_params *p, zcv_plan *pl,
                                const char *tmp, zcv_summary *sum, zerr *e) {
    zcv_plan plan = *pl;
    zmlx_status st = ZMLX_OK;
    run R = {.p = p, .plan = &plan, .scratch_floats = 1 << 16};
    R.shard_of = malloc((plan.n_out + 1) * sizeof *R.shard_of);
    R.local = malloc((plan.n_out + 1) * sizeof *R.local);
    int nth = p->threads > 0 ? p->threads : zpool_online_cores();
    R.scratch = calloc((size_t)nth, sizeof *R.scratch);
    for (int t = 0; R.scratch && t < nth; t++)
        if (!(R.scratch[t] = malloc((size_t)R.scratch_floats * sizeof(float)))) nth = t;
    if (!R.shard_of || !R.local || !R.scratch || nth < 1 || zpool_init(nth, &R.pool) != ZMLX_OK) {
        st = zerr_set(e, ZMLX_ERR_NOMEM, "out of memory starting the conversion");
    } else {
        int n_shards = 0;
        st = write_tensors(&R, tmp, &n_shards, e);
        const char **names = malloc((plan.n_out + 1) * sizeof *names);
        if (st == ZMLX_OK && !names) st = zerr_set(e, ZMLX_ERR_NOMEM, "out of memory");
        if (st == ZMLX_OK) {
            char path[4400];
            for (size_t i = 0; i < plan.n_out; i++) names[i] = plan.out[i].name;
            snprintf(path, sizeof path, "%s/model.safetensors.index.json", tmp);
            st = zst_write_index(path, names, R.shard_of, plan.n_out, n_shards,
                                 R.prog.bytes_total, plan.total_params, e);
        }
        free(names);
        *sum = (zcv_summary){.n_tensors = plan.n_out, .n_quantized = plan.n_quantized,
                             .n_kept_int4 = plan.n_raw_int4,
                             .n_shards = n_shards, .total_bytes = R.prog.bytes_total,
                             .total_parameters = plan.total_params};
        snprintf(sum->model_type, sizeof sum->model_type, "%s", zfamily_name(s->cfg.family));
    }
    if (R.pool) zpool_free(R.pool);
    for (int t = 0; R.scratch && t < nth; t++) free(R.scratch[t]);
    free(R.scratch);
    free(R.w);
    free(R.shard_of);
    free(R.local);
    if (st == ZMLX_OK) st = zcv_config_write(s, p, &plan, tmp, e);
    if (st == ZMLX_OK) st = zcv_copy_files(s, tmp, e);
    return st;
}

zmlx_status zcv_convert(const char *src, const char *dst_in, const zcv_params *p, zcv_summary *out,
                        zerr *e) {
    zcv_summary sum = {0};
    if (!zcv_params_check(p, e)) return ZMLX_ERR_INVALID_ARG;
    char dst[4096];
    snprintf(dst, sizeof dst, "%s", dst_in);
    for (size_t n = strlen(dst); n > 1 && dst[n - 1] == '/'; n--) dst[n - 1] = '\0';
    if (!dst[0]) return zerr_set(e, ZMLX_ERR_INVALID_ARG, "no destination given");
    if (access(dst, F_OK) == 0 && !p->force)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "%s already exists (remove it, choose another "
                        "DST, or pass --force to replace it)", dst);
    if (access(dst, F_OK) == 0 && !replaceable(dst))
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "%s exists and is not a checkpoint directory "
                        "(no config.json) nor empty: --force will not replace it", dst);
    zcv_srcset s;
    zmlx_status st = zcv_src_open(src, p->threads, &s, e);
    if (st != ZMLX_OK) return st;
    zcv_plan plan;
    zdtype cast = p->dtype != ZDT_COUNT ? p->dtype : zcv_config_cast(s.config);
    if ((st = zcv_plan_build(&s, p, cast, &plan, e)) != ZMLX_OK) {
        zcv_src_close(&s);
        return st;
    }
    if (out) out->writing = true; /* from here on a failure is a failure to write */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", dst);
    if (mkdtemp(tmp)) { /* mkdtemp makes 0700: give it the mode a plain mkdir would */
        mode_t um = umask(0);
        umask(um);
        (void)chmod(tmp, 0777 & ~um);
    } else {
        st = zerr_set(e, ZMLX_ERR_IO, "%s: cannot create a temporary directory next to it: %s",
                      dst, strerror(errno));
        zcv_plan_free(&plan);
        zcv_src_close(&s);
        return st;
    }
    st = convert_into(&s, p, &plan, tmp, &sum, e);
    zcv_plan_free(&plan);
    zcv_src_close(&s);
    if (st == ZMLX_OK) st = install(tmp, dst, p->force, e);
    if (st != ZMLX_OK) rm_tree(tmp);
    if (st == ZMLX_OK && out) {
        *out = sum;
        out->writing = true;
    }
    return st;
}
