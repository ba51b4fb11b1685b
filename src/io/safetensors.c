/*
 * safetensors.c — the safetensors reader of safetensors.h: zst_parse() validates one
 * file image in memory (it is the fuzz target), zst_open() maps a checkpoint
 * directory and merges the tensors of all its shards into one sorted list.
 *
 * Not for: interpreting tensors (quantized layouts live in model/weight.h) or
 * aligning data — tensor pointers point straight into the mapping and may be
 * unaligned; readers use memcpy or check alignment before vector loads.
 */
#include "io/safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ZST_QUOTE_MAX 120 /* longest name/value quoted in a message */
#define ZST_INDEX_NAME "model.safetensors.index.json"

/* ------------------------------------------------------------ message helpers */

/* Copy s[0..len) into buf for a one-line message: control bytes become \xNN, and so
 * do quotes and backslashes of a name (!ascii) or bytes >= 0x80 of free text (ascii,
 * jansson's error text, which may quote the undecodable input); long text ends in "...". */
static const char *quote(char *buf, size_t n, const char *s, size_t len, bool ascii) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool esc = c < 0x20 || c == 0x7f || (ascii ? c >= 0x80 : c == '"' || c == '\\');
        if (o + (esc ? 4 : 1) + 4 > n || o >= ZST_QUOTE_MAX) {
            while (!ascii && o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
                o--;
            if (!ascii && o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0xc0) o--;
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (esc) {
            snprintf(buf + o, n - o, "\\x%02x", c);
            o += 4;
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o] = '\0';
    return buf;
}

static const char *qstr(char *buf, size_t n, const char *s) {
    return quote(buf, n, s, strlen(s), false);
}

/* A JSON value as compact ASCII text (jansson escapes it), for "shape[1] is 2.5". */
static const char *jdesc(char *buf, size_t n, const json_t *v) {
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!s) return "(unprintable)";
    if (strlen(s) >= n || strlen(s) > ZST_QUOTE_MAX)
        snprintf(buf, n, "%.*s...", ZST_QUOTE_MAX, s);
    else
        snprintf(buf, n, "%s", s);
    free(s);
    return buf;
}

static const char *fmt_shape(char *buf, size_t n, const int64_t *shape, int ndim) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
    return buf;
}

/* ------------------------------------------------------------------ parsing */

typedef struct zst_ctx {
    const char *fname;
    const char *tname;   /* tensor being parsed, or NULL */
    const uint8_t *base; /* start of the data section */
    uint64_t data_len;
    zerr *e;
} zst_ctx;

/* A format error about the tensor being parsed: "<file>: tensor "<name>": <what>". */
__attribute__((format(printf, 2, 3))) static zmlx_status tfail(const zst_ctx *c, const char *fmt,
                                                               ...) {
    char q[160], m[ZMLX_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return zerr_set(c->e, ZMLX_ERR_FORMAT, "%s: tensor \"%s\": %s", c->fname,
                    qstr(q, sizeof q, c->tname), m);
}

static zmlx_status bad_value(const zst_ctx *c, const char *field, const char *want,
                             const json_t *v) {
    char d[160];
    return tfail(c, "%s is %s, expected %s", field, jdesc(d, sizeof d, v), want);
}

static zmlx_status nomem(zerr *e, const char *where) {
    return zerr_set(e, ZMLX_ERR_NOMEM, "%s: out of memory", where);
}

static bool mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return false;
    *out = a * b;
    return true;
}

/* An object of strings, or null (no metadata: what mlx.save_safetensors writes when
   given none; the reference reads it as Option::None). */
static zmlx_status parse_metadata(const zst_ctx *c, const json_t *meta) {
    char q[160], d[160];
    if (json_is_null(meta)) return ZMLX_OK;
    if (!json_is_object(meta))
        return zerr_set(c->e, ZMLX_ERR_FORMAT, "%s: \"__metadata__\" is %s, expected an object",
                        c->fname, jdesc(d, sizeof d, meta));
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)meta, key, v) {
        if (!json_is_string(v))
            return zerr_set(c->e, ZMLX_ERR_FORMAT,
                            "%s: \"__metadata__\" key \"%s\" is %s, expected a string", c->fname,
                            qstr(q, sizeof q, key), jdesc(d, sizeof d, v));
    }
    return ZMLX_OK;
}

static zmlx_status parse_dtype(const zst_ctx *c, const json_t *v, zst_tensor *t) {
    char d[160];
    if (!json_is_string(v)) return bad_value(c, "dtype", "a string", v);
    if (zdtype_from_name(json_string_value(v), json_string_length(v), &t->dtype)) return ZMLX_OK;
    char known[256];
    size_t o = 0;
    for (int i = 0; i < ZDT_COUNT && o < sizeof known; i++)
        o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "",
                              zdtype_table[i].name);
    return tfail(c, "unknown dtype \"%s\" (known: %s)",
                 quote(d, sizeof d, json_string_value(v), json_string_length(v), false), known);
}

/* A JSON value that must be an integer >= 0. */
static bool get_count(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static zmlx_status parse_shape(const zst_ctx *c, const json_t *v, zst_tensor *t) {
    char field[32];
    if (!json_is_array(v)) return bad_value(c, "shape", "an array", v);
    if (json_array_size(v) > ZST_MAX_DIMS)
        return tfail(c, "shape has %zu dims, at most %d allowed", json_array_size(v), ZST_MAX_DIMS);
    t->ndim = (int)json_array_size(v);
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d;
        if (!get_count(json_array_get(v, (size_t)i), &d)) {
            snprintf(field, sizeof field, "shape[%d]", i);
            return bad_value(c, field, "a non-negative integer", json_array_get(v, (size_t)i));
        }
        t->shape[i] = (int64_t)d;
    }
    return ZMLX_OK;
}

/* data_offsets [begin, end] -> t->data; checks the range and the byte count. */
static zmlx_status parse_offsets(const zst_ctx *c, const json_t *v, zst_tensor *t) {
    char s[160];
    uint64_t b, en, n = zdtype_table[t->dtype].size;
    const char *dt = zdtype_table[t->dtype].name;
    if (!json_is_array(v) || json_array_size(v) != 2 || !get_count(json_array_get(v, 0), &b) ||
        !get_count(json_array_get(v, 1), &en))
        return bad_value(c, "data_offsets", "[begin, end] of non-negative integers", v);
    if (en < b) return tfail(c, "data_offsets [%" PRIu64 ", %" PRIu64 "] end before begin", b, en);
    if (en > c->data_len)
        return tfail(c,
                     "data_offsets [%" PRIu64 ", %" PRIu64
                     "] past the end of the data section (%" PRIu64 " bytes)",
                     b, en, c->data_len);
    fmt_shape(s, sizeof s, t->shape, t->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (!mul_u64(n, (uint64_t)t->shape[i], &n))
            return tfail(c, "shape %s x %s overflows 64 bits", s, dt);
    if (n != en - b)
        return tfail(c,
                     "data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
                     " bytes but shape %s x %s needs %" PRIu64,
                     b, en, en - b, s, dt, n);
    t->nbytes = n;
    t->data = c->base + b;
    return ZMLX_OK;
}

static zmlx_status parse_entry(zst_ctx *c, const char *name, const json_t *v, zst_tensor *t) {
    c->tname = name;
    if (!json_is_object(v))
        return bad_value(c, "entry", "an object with dtype, shape and data_offsets", v);
    static const char *const fields[3] = {"dtype", "shape", "data_offsets"};
    for (int i = 0; i < 3; i++)
        if (!json_object_get(v, fields[i])) return tfail(c, "missing \"%s\"", fields[i]);
    zmlx_status st = parse_dtype(c, json_object_get(v, "dtype"), t);
    if (st == ZMLX_OK) st = parse_shape(c, json_object_get(v, "shape"), t);
    if (st == ZMLX_OK) st = parse_offsets(c, json_object_get(v, "data_offsets"), t);
    if (st != ZMLX_OK) return st;
    t->name = strdup(name);
    if (!t->name) return nomem(c->e, c->fname);
    return ZMLX_OK;
}

static int cmp_offset(const void *pa, const void *pb) {
    const zst_tensor *a = pa, *b = pb;
    if (a->data != b->data) return a->data < b->data ? -1 : 1;
    return (a->nbytes > b->nbytes) - (a->nbytes < b->nbytes);
}

static int cmp_name(const void *pa, const void *pb) {
    return strcmp(((const zst_tensor *)pa)->name, ((const zst_tensor *)pb)->name);
}

/* Sorts h->tensors by offset; no two non-empty byte ranges may share a byte. */
static zmlx_status check_overlaps(zst_ctx *c, zst_header *h) {
    qsort(h->tensors, h->n_tensors, sizeof *h->tensors, cmp_offset);
    const zst_tensor *last = NULL; /* the non-empty tensor reaching furthest so far */
    for (size_t i = 0; i < h->n_tensors; i++) {
        const zst_tensor *t = &h->tensors[i];
        if (t->nbytes == 0) continue;
        if (last && t->data < last->data + last->nbytes) {
            char q[160];
            uint64_t tb = (uint64_t)(t->data - c->base), lb = (uint64_t)(last->data - c->base);
            c->tname = t->name;
            return tfail(c,
                         "data_offsets [%" PRIu64 ", %" PRIu64
                         "] overlap tensor \"%s\" data_offsets [%" PRIu64 ", %" PRIu64 "]",
                         tb, tb + t->nbytes, qstr(q, sizeof q, last->name), lb, lb + last->nbytes);
        }
        if (!last || t->data + t->nbytes > last->data + last->nbytes) last = t;
    }
    return ZMLX_OK;
}

/* Reads the 8-byte length and decodes the JSON header into *root. */
static zmlx_status load_header(const uint8_t *data, size_t size, const char *fname, json_t **root,
                               uint64_t *hlen, zerr *e) {
    if (size < 8)
        return zerr_set(e, ZMLX_ERR_FORMAT,
                        "%s: file is %zu bytes, shorter than the 8-byte header length", fname,
                        size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | data[i];
    if (n > ZST_MAX_HEADER)
        return zerr_set(e, ZMLX_ERR_FORMAT,
                        "%s: header length %" PRIu64 " exceeds the %u-byte limit", fname, n,
                        ZST_MAX_HEADER);
    if (n > size - 8)
        return zerr_set(e, ZMLX_ERR_FORMAT,
                        "%s: header length %" PRIu64 " runs past the end of the file (%zu bytes)",
                        fname, n, size);
    json_error_t je;
    *root = json_loadb((const char *)data + 8, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    char q[160];
    if (!*root)
        return zerr_set(e, ZMLX_ERR_FORMAT,
                        "%s: header (%" PRIu64 " bytes) is not valid JSON at byte %d: %s", fname, n,
                        je.position, quote(q, sizeof q, je.text, strlen(je.text), true));
    if (!json_is_object(*root))
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s: header is %s, expected a JSON object", fname,
                        jdesc(q, sizeof q, *root));
    *hlen = n;
    return ZMLX_OK;
}

static zmlx_status parse_entries(zst_ctx *c, const json_t *root, zst_header *h) {
    h->tensors = calloc(json_object_size(root) + 1, sizeof *h->tensors);
    if (!h->tensors) return nomem(c->e, c->fname);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)root, key, v) {
        zmlx_status st = strcmp(key, "__metadata__") == 0
                             ? parse_metadata(c, v)
                             : parse_entry(c, key, v, &h->tensors[h->n_tensors]);
        if (st != ZMLX_OK) return st;
        if (strcmp(key, "__metadata__") != 0) h->n_tensors++;
    }
    return ZMLX_OK;
}

zmlx_status zst_parse(const uint8_t *data, size_t size, const char *fname, zst_header *out,
                      zerr *e) {
    memset(out, 0, sizeof *out);
    if (!fname) fname = "(memory)";
    json_t *root = NULL;
    uint64_t n = 0;
    zmlx_status st = load_header(data, size, fname, &root, &n, e);
    if (st == ZMLX_OK) {
        zst_ctx c = {fname, NULL, data + 8 + n, (uint64_t)size - 8 - n, e};
        st = parse_entries(&c, root, out);
        if (st == ZMLX_OK) st = check_overlaps(&c, out);
    }
    json_decref(root);
    if (st != ZMLX_OK) {
        zst_header_free(out);
        return st;
    }
    qsort(out->tensors, out->n_tensors, sizeof *out->tensors, cmp_name);
    out->data_start = 8 + n; /* names are unique: JSON_REJECT_DUPLICATES refused repeats */
    return ZMLX_OK;
}

void zst_header_free(zst_header *h) {
    if (!h) return;
    for (size_t i = 0; i < h->n_tensors; i++)
        free(h->tensors[i].name);
    free(h->tensors);
    memset(h, 0, sizeof *h);
}

/* ------------------------------------------------------------------ archives */

typedef struct zst_shard {
    char *path;
    const char *fname; /* basename inside path */
    uint8_t *map;
    size_t size;
    zst_header h;
} zst_shard;

struct zst_archive {
    zst_shard *shards;
    int n_shards;
    const zst_tensor **index; /* every shard's tensors, sorted by name */
    size_t n_index;
};

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) snprintf(p, a + b + 2, "%s/%s", dir, name);
    return p;
}

static zmlx_status io_error(zerr *e, const char *path, const char *what) {
    int err = errno;
    return zerr_set(e, err == ENOENT ? ZMLX_ERR_NOT_FOUND : ZMLX_ERR_IO, "%s: cannot %s: %s", path,
                    what, strerror(err));
}

/* Map path read-only and close it; an empty file is refused (mmap cannot map it). */
static zmlx_status map_file(const char *path, uint8_t **map, size_t *size, zerr *e) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_error(e, path, "open");
    struct stat sb;
    zmlx_status st = ZMLX_OK;
    if (fstat(fd, &sb) != 0)
        st = io_error(e, path, "stat");
    else if (!S_ISREG(sb.st_mode))
        st = zerr_set(e, ZMLX_ERR_IO, "%s: not a regular file", path);
    else if (sb.st_size == 0) /* (shorter files are zst_parse's to refuse) */
        st = zerr_set(e, ZMLX_ERR_FORMAT, "%s: file is empty", path);
    if (st == ZMLX_OK) {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            st = io_error(e, path, "mmap");
        else
            *map = m, *size = (size_t)sb.st_size;
    }
    close(fd);
    return st;
}

static zmlx_status add_shard(zst_archive *a, const char *dir, const char *name, zerr *e) {
    zst_shard *s = &a->shards[a->n_shards];
    memset(s, 0, sizeof *s);
    s->path = join(dir, name);
    if (!s->path) return nomem(e, dir);
    s->fname = s->path + strlen(dir) + 1;
    a->n_shards++;
    zmlx_status st = map_file(s->path, &s->map, &s->size, e);
    if (st == ZMLX_OK) st = zst_parse(s->map, s->size, s->path, &s->h, e);
    for (size_t i = 0; i < s->h.n_tensors; i++)
        s->h.tensors[i].shard = a->n_shards - 1;
    return st;
}

static int cmp_index(const void *pa, const void *pb) {
    return strcmp((*(const zst_tensor *const *)pa)->name, (*(const zst_tensor *const *)pb)->name);
}

/* Merge all shards' tensors into a->index; a name in two shards is an error. */
static zmlx_status build_index(zst_archive *a, const char *dir, zerr *e) {
    size_t n = 0;
    for (int i = 0; i < a->n_shards; i++)
        n += a->shards[i].h.n_tensors;
    a->index = malloc((n + 1) * sizeof *a->index);
    if (!a->index) return nomem(e, dir);
    for (int i = 0; i < a->n_shards; i++)
        for (size_t j = 0; j < a->shards[i].h.n_tensors; j++)
            a->index[a->n_index++] = &a->shards[i].h.tensors[j];
    qsort(a->index, n, sizeof *a->index, cmp_index);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(a->index[i - 1]->name, a->index[i]->name) != 0) continue;
        char q[160];
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s: tensor \"%s\" appears in both %s and %s", dir,
                        qstr(q, sizeof q, a->index[i]->name),
                        a->shards[a->index[i - 1]->shard].fname,
                        a->shards[a->index[i]->shard].fname);
    }
    return ZMLX_OK;
}

/* Each weight_map value must name a file directly inside dir that exists. */
static zmlx_status check_weight_map(const char *path, const char *dir, json_t *map, zerr *e) {
    char q[160], d[160];
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        if (!s || !*s || strchr(s, '/') || strstr(s, ".."))
            return zerr_set(e, ZMLX_ERR_FORMAT,
                            "%s: weight_map \"%s\" names shard %s, expected a file name inside %s",
                            path, qstr(q, sizeof q, key), jdesc(d, sizeof d, v), dir);
        char *p = join(dir, s);
        if (!p) return nomem(e, path);
        bool ok = exists(p);
        free(p);
        if (!ok)
            return zerr_set(e, ZMLX_ERR_NOT_FOUND,
                            "%s: weight_map \"%s\" names shard \"%s\", which does not exist in %s",
                            path, qstr(q, sizeof q, key), qstr(d, sizeof d, s), dir);
    }
    return ZMLX_OK;
}

/* Reads the index file and returns its "weight_map", validated, in *wm (a new ref). */
static zmlx_status load_weight_map(const char *path, const char *dir, json_t **wm, zerr *e) {
    json_error_t je;
    char q[160], d[160];
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s: not valid JSON at line %d column %d: %s", path,
                        je.line, je.column, quote(q, sizeof q, je.text, strlen(je.text), true));
    json_t *map = json_object_get(root, "weight_map");
    zmlx_status st;
    if (!json_is_object(map) || json_object_size(map) == 0)
        st = zerr_set(e, ZMLX_ERR_FORMAT, "%s: \"weight_map\" is %s, expected a non-empty object",
                      path, map ? jdesc(d, sizeof d, map) : "missing");
    else
        st = check_weight_map(path, dir, map, e);
    if (st == ZMLX_OK) *wm = json_incref(map);
    json_decref(root);
    return st;
}

static int find_shard(const zst_archive *a, const char *fname) {
    for (int i = 0; i < a->n_shards; i++)
        if (strcmp(a->shards[i].fname, fname) == 0) return i;
    return -1;
}

static zmlx_status open_indexed(zst_archive *a, const char *dir, const char *path, zerr *e) {
    json_t *wm = NULL, *v;
    const char *key;
    zmlx_status st = load_weight_map(path, dir, &wm, e);
    if (st != ZMLX_OK) return st;
    a->shards = calloc(json_object_size(wm) + 1, sizeof *a->shards);
    if (!a->shards) st = nomem(e, path);
    json_object_foreach(wm, key, v) {
        if (st != ZMLX_OK) break;
        if (find_shard(a, json_string_value(v)) < 0)
            st = add_shard(a, dir, json_string_value(v), e);
    }
    if (st == ZMLX_OK) st = build_index(a, dir, e);
    json_object_foreach(wm, key, v) {
        if (st != ZMLX_OK) break;
        const zst_tensor *t = zst_find(a, key);
        if (t && strcmp(a->shards[t->shard].fname, json_string_value(v)) == 0) continue;
        char q[160], d[160];
        st = zerr_set(e, ZMLX_ERR_FORMAT, "%s: weight_map puts tensor \"%s\" in %s, but %s%s", path,
                      qstr(q, sizeof q, key), qstr(d, sizeof d, json_string_value(v)),
                      t ? "it is in " : "no shard holds it", t ? a->shards[t->shard].fname : "");
    }
    json_decref(wm);
    return st;
}

/* Hidden files (macOS "._x.safetensors" resource forks) are not shards. */
static bool is_st_name(const char *s) {
    size_t n = strlen(s), k = strlen(".safetensors");
    return n > k && strcmp(s + n - k, ".safetensors") == 0 && s[0] != '.';
}

/* The names of every *.safetensors file in dir, unsorted, into (*out, *n). */
static zmlx_status list_dir(const char *dir, char ***out, size_t *n, zerr *e) {
    DIR *d = opendir(dir);
    if (!d) return io_error(e, dir, "open directory");
    zmlx_status st = ZMLX_OK;
    size_t cap = 0;
    struct dirent *de;
    while (st == ZMLX_OK && (de = readdir(d)) != NULL) {
        if (!is_st_name(de->d_name)) continue;
        if (*n + 1 >= cap) {
            cap = cap ? cap * 2 : 16;
            char **p = realloc(*out, cap * sizeof *p);
            if (!p)
                st = nomem(e, dir);
            else
                *out = p;
        }
        if (st == ZMLX_OK && !((*out)[*n] = strdup(de->d_name))) st = nomem(e, dir);
        if (st == ZMLX_OK) ++*n;
    }
    closedir(d);
    return st;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Map and parse the files names[0..n) of dir as shards 0..n-1, then merge them. */
static zmlx_status open_names(zst_archive *a, const char *dir, const char *const *names, size_t n,
                              zerr *e) {
    a->shards = calloc(n, sizeof *a->shards);
    if (!a->shards) return nomem(e, dir);
    zmlx_status st = ZMLX_OK;
    for (size_t i = 0; st == ZMLX_OK && i < n; i++)
        st = add_shard(a, dir, names[i], e);
    return st == ZMLX_OK ? build_index(a, dir, e) : st;
}

static zmlx_status open_listed(zst_archive *a, const char *dir, zerr *e) {
    char **names = NULL;
    size_t n = 0;
    zmlx_status st = list_dir(dir, &names, &n, e);
    if (st == ZMLX_OK && n == 0)
        st = zerr_set(e, ZMLX_ERR_NOT_FOUND,
                      "%s: no model.safetensors, " ZST_INDEX_NAME
                      " or *.safetensors file in this directory",
                      dir);
    if (st == ZMLX_OK) qsort(names, n, sizeof *names, cmp_str);
    if (st == ZMLX_OK) st = open_names(a, dir, (const char *const *)names, n, e);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return st;
}

/* The index wins over model.safetensors, which wins over a directory listing. */
zmlx_status zst_open(const char *dir, zst_archive **out, zerr *e) {
    *out = NULL;
    zst_archive *a = calloc(1, sizeof *a);
    char *idx = join(dir, ZST_INDEX_NAME), *single = join(dir, "model.safetensors");
    static const char *const single_name[1] = {"model.safetensors"};
    zmlx_status st = !a || !idx || !single ? nomem(e, dir)
                     : exists(idx)         ? open_indexed(a, dir, idx, e)
                     : exists(single)      ? open_names(a, dir, single_name, 1, e)
                                           : open_listed(a, dir, e);
    free(idx);
    free(single);
    if (st != ZMLX_OK)
        zst_close(a);
    else
        *out = a;
    return st;
}

void zst_close(zst_archive *a) {
    if (!a) return;
    for (int i = 0; i < a->n_shards; i++) {
        zst_shard *s = &a->shards[i];
        if (s->map) munmap(s->map, s->size);
        zst_header_free(&s->h);
        free(s->path);
    }
    free(a->shards);
    free(a->index);
    free(a);
}

const zst_tensor *zst_find(const zst_archive *a, const char *name) {
    zst_tensor key = {.name = (char *)name};
    const zst_tensor *kp = &key, *const * hit;
    hit = bsearch(&kp, a->index, a->n_index, sizeof *a->index, cmp_index);
    return hit ? *hit : NULL;
}

size_t zst_count(const zst_archive *a) {
    return a->n_index;
}

const zst_tensor *zst_at(const zst_archive *a, size_t i) {
    return i < a->n_index ? a->index[i] : NULL;
}

const char *zst_shard_path(const zst_archive *a, int shard) {
    return shard >= 0 && shard < a->n_shards ? a->shards[shard].path : NULL;
}
