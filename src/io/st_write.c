/*
 * st_write.c — the safetensors writer, mlx-lm's sharding rule and its index file
 * (layouts in st_write.h).  Every file goes to a mkstemp name in its directory and is
 * renamed into place only when complete.
 */
#include "io/st_write.h"

#include "io/pyjson.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct zst_writer {
    char *path, *tmp;
    int fd;
    size_t n;
    char **names;
    uint64_t *begin, *nbytes, *written; /* per tensor, offsets relative to the data start */
    uint64_t data_start;
};

uint64_t zst_wspec_nbytes(const zst_wspec *t) {
    uint64_t n = zdtype_table[t->dtype].size;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0) return 0;
        uint64_t d = (uint64_t)t->shape[i];
        if (d && n > UINT64_MAX / d) return 0;
        n *= d;
    }
    return n;
}

/* path + ".tmp-XXXXXX" created with mkstemp; *fd open for writing. */
static zmlx_status make_temp(const char *path, char **tmp, int *fd, zerr *e) {
    size_t len = strlen(path) + 16;
    *tmp = malloc(len);
    if (!*tmp) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory writing %s", path);
    snprintf(*tmp, len, "%s.tmp-XXXXXX", path);
    *fd = mkstemp(*tmp);
    if (*fd >= 0) { /* mkstemp makes 0600; give the file the mode a plain create would */
        mode_t um = umask(0);
        umask(um);
        (void)fchmod(*fd, 0666 & ~um); /* not fatal: the file is still ours */
    }
    if (*fd < 0) {
        zmlx_status st = zerr_set(e, ZMLX_ERR_IO, "%s: cannot create a temporary file: %s", path,
                                  strerror(errno));
        free(*tmp);
        *tmp = NULL;
        return st;
    }
    return ZMLX_OK;
}

static zmlx_status write_all(int fd, const void *data, size_t n, off_t at, const char *path,
                             zerr *e) {
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t k = pwrite(fd, p, n, at);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return zerr_set(e, ZMLX_ERR_IO, "%s: write failed: %s", path,
                            k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
        at += k;
    }
    return ZMLX_OK;
}

/* fsync, close, rename tmp -> path.  Removes tmp on failure. */
static zmlx_status commit(int fd, const char *tmp, const char *path, zerr *e) {
    zmlx_status st = ZMLX_OK;
    if (fsync(fd) != 0 && errno != EINVAL)
        st = zerr_set(e, ZMLX_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && st == ZMLX_OK)
        st = zerr_set(e, ZMLX_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (st == ZMLX_OK && rename(tmp, path) != 0)
        st = zerr_set(e, ZMLX_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp,
                      strerror(errno));
    if (st != ZMLX_OK) unlink(tmp);
    return st;
}

zmlx_status zst_write_file_atomic(const char *path, const void *data, size_t len, zerr *e) {
    char *tmp;
    int fd;
    zmlx_status st = make_temp(path, &tmp, &fd, e);
    if (st != ZMLX_OK) return st;
    st = write_all(fd, data, len, 0, path, e);
    if (st == ZMLX_OK) {
        st = commit(fd, tmp, path, e);
    } else {
        close(fd);
        unlink(tmp);
    }
    free(tmp);
    return st;
}

static void writer_free(zst_writer *w) {
    if (!w) return;
    for (size_t i = 0; w->names && i < w->n; i++) free(w->names[i]);
    free(w->names);
    free(w->begin);
    free(w->nbytes);
    free(w->written);
    free(w->path);
    free(w->tmp);
    free(w);
}

void zst_writer_abort(zst_writer *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (w->tmp) unlink(w->tmp);
    writer_free(w);
}

typedef struct order_ent {
    const char *name;
    size_t i;
} order_ent;

static int cmp_order(const void *a, const void *b) {
    return strcmp(((const order_ent *)a)->name, ((const order_ent *)b)->name);
}

/* The header JSON (sorted keys, compact: what mlx writes) with data offsets assigned in
   name order; fills w->begin.  NULL on out of memory. */
static char *build_header(zst_writer *w, const zst_wspec *t, zerr *e, zmlx_status *st) {
    order_ent *ord = malloc((w->n ? w->n : 1) * sizeof *ord);
    json_t *root = json_object(), *meta = json_object();
    char *text = NULL;
    if (!ord || !root || !meta) goto oom;
    for (size_t i = 0; i < w->n; i++) ord[i] = (order_ent){w->names[i], i};
    qsort(ord, w->n, sizeof *ord, cmp_order);
    for (size_t k = 1; k < w->n; k++)
        if (!strcmp(ord[k].name, ord[k - 1].name)) {
            *st = zerr_set(e, ZMLX_ERR_INVALID_ARG, "%s: tensor \"%s\" is listed twice", w->path,
                           ord[k].name);
            goto out;
        }
    json_object_set_new(meta, "format", json_string("mlx"));
    json_object_set(root, "__metadata__", meta);
    uint64_t off = 0;
    for (size_t k = 0; k < w->n; k++) {
        size_t i = ord[k].i;
        json_t *ent = json_object(), *shape = json_array(), *offs = json_array();
        if (!ent || !shape || !offs) {
            json_decref(ent);
            json_decref(shape);
            json_decref(offs);
            goto oom;
        }
        for (int d = 0; d < t[i].ndim; d++) json_array_append_new(shape, json_integer(t[i].shape[d]));
        w->begin[i] = off;
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + w->nbytes[i])));
        json_object_set_new(ent, "data_offsets", offs);
        json_object_set_new(ent, "dtype", json_string(zdtype_table[t[i].dtype].name));
        json_object_set_new(ent, "shape", shape);
        json_object_set_new(root, w->names[i], ent);
        off += w->nbytes[i];
    }
    text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) goto oom;
    goto out;
oom:
    *st = zerr_set(e, ZMLX_ERR_NOMEM, "out of memory building the header of %s", w->path);
out:
    free(ord);
    json_decref(meta);
    json_decref(root);
    return text;
}

zmlx_status zst_writer_open(const char *path, const zst_wspec *t, size_t n, zst_writer **out,
                            zerr *e) {
    *out = NULL;
    zst_writer *w = calloc(1, sizeof *w);
    if (!w) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory writing %s", path);
    w->fd = -1;
    w->n = n;
    w->path = strdup(path);
    w->names = calloc(n ? n : 1, sizeof *w->names);
    w->begin = calloc(n ? n : 1, sizeof *w->begin);
    w->nbytes = calloc(n ? n : 1, sizeof *w->nbytes);
    w->written = calloc(n ? n : 1, sizeof *w->written);
    if (!w->path || !w->names || !w->begin || !w->nbytes || !w->written) {
        writer_free(w);
        return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory writing %s", path);
    }
    for (size_t i = 0; i < n; i++) {
        if (t[i].ndim < 0 || t[i].ndim > ZST_MAX_DIMS || t[i].dtype >= ZDT_COUNT) {
            writer_free(w);
            return zerr_set(e, ZMLX_ERR_INVALID_ARG, "%s: tensor \"%s\" has %d dimensions or a bad "
                            "dtype", path, t[i].name, t[i].ndim);
        }
        w->names[i] = strdup(t[i].name);
        w->nbytes[i] = zst_wspec_nbytes(&t[i]);
        bool empty = false;
        for (int d = 0; d < t[i].ndim; d++) empty |= t[i].shape[d] == 0;
        if (!w->names[i] || (w->nbytes[i] == 0 && !empty)) {
            writer_free(w);
            return zerr_set(e, ZMLX_ERR_INVALID_ARG, "%s: tensor \"%s\": bad shape or out of memory",
                            path, t[i].name);
        }
    }
    zmlx_status st = ZMLX_OK;
    char *hdr = build_header(w, t, e, &st);
    if (!hdr) {
        writer_free(w);
        return st;
    }
    size_t hl = strlen(hdr), padded = (hl + 8 + 7) / 8 * 8 - 8;
    uint8_t *buf = malloc(8 + padded);
    if (!buf) {
        free(hdr);
        writer_free(w);
        return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory writing %s", path);
    }
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    free(hdr);
    w->data_start = 8 + padded;
    st = make_temp(path, &w->tmp, &w->fd, e);
    if (st == ZMLX_OK) st = write_all(w->fd, buf, 8 + padded, 0, path, e);
    free(buf);
    if (st != ZMLX_OK) {
        zst_writer_abort(w);
        return st;
    }
    *out = w;
    return ZMLX_OK;
}

zmlx_status zst_writer_put(zst_writer *w, size_t i, uint64_t offset, const void *data, size_t n,
                           zerr *e) {
    if (i >= w->n || offset > w->nbytes[i] || n > w->nbytes[i] - offset)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "%s: write of %zu bytes at %llu outside tensor %zu",
                        w->path, n, (unsigned long long)offset, i);
    zmlx_status st = write_all(w->fd, data, n, (off_t)(w->data_start + w->begin[i] + offset),
                               w->path, e);
    if (st == ZMLX_OK) w->written[i] += n;
    return st;
}

zmlx_status zst_writer_finish(zst_writer *w, zerr *e) {
    for (size_t i = 0; i < w->n; i++)
        if (w->written[i] != w->nbytes[i]) {
            zmlx_status st = zerr_set(e, ZMLX_ERR_INVALID_ARG,
                                      "%s: tensor \"%s\" got %llu of its %llu bytes", w->path,
                                      w->names[i], (unsigned long long)w->written[i],
                                      (unsigned long long)w->nbytes[i]);
            zst_writer_abort(w);
            return st;
        }
    zmlx_status st = commit(w->fd, w->tmp, w->path, e);
    w->fd = -1;
    writer_free(w);
    return st;
}

int zst_plan_shards(const uint64_t *nbytes, size_t n, uint64_t max_bytes, int *shard_of) {
    int shards = 0;
    uint64_t size = 0;
    for (size_t k = 0; k < n; k++) {
        if (shards == 0 || size + nbytes[k] > max_bytes) {
            shards++;
            size = 0;
        }
        shard_of[k] = shards - 1;
        size += nbytes[k];
    }
    return shards;
}

void zst_shard_name(char *buf, size_t n, int shard, int count) {
    if (count == 1) snprintf(buf, n, "model.safetensors");
    else snprintf(buf, n, "model-%05d-of-%05d.safetensors", shard + 1, count);
}

typedef struct name_shard {
    const char *name;
    int shard;
} name_shard;

static int cmp_name_shard(const void *a, const void *b) {
    return strcmp(((const name_shard *)a)->name, ((const name_shard *)b)->name);
}

zmlx_status zst_write_index(const char *path, const char *const *names, const int *shard_of,
                            size_t n, int n_shards, uint64_t total_size,
                            uint64_t total_parameters, zerr *e) {
    name_shard *ns = malloc((n ? n : 1) * sizeof *ns);
    json_t *root = json_object(), *meta = json_object(), *map = json_object();
    char *text = NULL;
    zmlx_status st = ZMLX_OK;
    if (!ns || !root || !meta || !map) goto oom;
    for (size_t k = 0; k < n; k++) ns[k] = (name_shard){names[k], shard_of[k]};
    qsort(ns, n, sizeof *ns, cmp_name_shard);
    json_object_set_new(meta, "total_size", json_integer((json_int_t)total_size));
    json_object_set_new(meta, "total_parameters", json_integer((json_int_t)total_parameters));
    for (size_t k = 0; k < n; k++) {
        char file[64];
        zst_shard_name(file, sizeof file, ns[k].shard, n_shards);
        if (json_object_set_new(map, ns[k].name, json_string(file)) != 0) goto oom;
    }
    json_object_set(root, "metadata", meta);
    json_object_set(root, "weight_map", map);
    text = zpyjson_dumps(root, 4, false);
    if (!text) goto oom;
    st = zst_write_file_atomic(path, text, strlen(text), e);
    goto out;
oom:
    st = zerr_set(e, ZMLX_ERR_NOMEM, "out of memory writing %s", path);
out:
    free(text);
    free(ns);
    json_decref(map);
    json_decref(meta);
    json_decref(root);
    return st;
}
