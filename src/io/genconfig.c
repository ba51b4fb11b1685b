/*
 * genconfig.c — reading generation_config.json (see genconfig.h).  Tolerant of absence
 * (most builtin and test models have none), strict on content: invalid JSON or an
 * eos_token_id of the wrong type is one line naming the file, the field and the value.
 */
#include "io/genconfig.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_FILE_MAX ((size_t)1 << 20) /* the file is a few hundred bytes */

/* One id: a JSON integer in [0, 2^31). */
static zmlx_status gen_id(const char *fname, const char *field, const json_t *v, int32_t *out,
                          zerr *e) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        zerr_set(e, ZMLX_ERR_FORMAT,
                 "%s: field \"%s\" = %.40s must be a token id (an integer >= 0)", fname, field,
                 s ? s : "?");
        free(s);
        return ZMLX_ERR_FORMAT;
    }
    *out = (int32_t)json_integer_value(v);
    return ZMLX_OK;
}

static zmlx_status gen_eos(const char *fname, const json_t *v, zgen_config *out, zerr *e) {
    if (!v || json_is_null(v)) return ZMLX_OK;
    if (!json_is_array(v)) return gen_id(fname, "eos_token_id", v, &out->eos_ids[out->n_eos++], e);
    if (json_array_size(v) > ZCFG_MAX_EOS)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                        "%s: field \"eos_token_id\" lists %zu ids, more than %d", fname,
                        json_array_size(v), ZCFG_MAX_EOS);
    for (size_t i = 0; i < json_array_size(v); i++) {
        char field[40];
        snprintf(field, sizeof field, "eos_token_id[%zu]", i);
        zmlx_status st = gen_id(fname, field, json_array_get(v, i), &out->eos_ids[out->n_eos++], e);
        if (st) return st;
    }
    return ZMLX_OK;
}

zmlx_status zgen_parse(const char *text, size_t len, const char *fname, zgen_config *out, zerr *e) {
    memset(out, 0, sizeof *out);
    out->present = true;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root)
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s: invalid JSON at line %d column %d: %s", fname,
                        jerr.line, jerr.column, jerr.text);
    zmlx_status st = json_is_object(root)
                         ? gen_eos(fname, json_object_get(root, "eos_token_id"), out, e)
                         : zerr_set(e, ZMLX_ERR_FORMAT, "%s: expected a JSON object", fname);
    json_decref(root);
    if (st) out->n_eos = 0;
    return st;
}

zmlx_status zgen_load(const char *dir, zgen_config *out, zerr *e) {
    char path[4096];
    memset(out, 0, sizeof *out);
    if ((size_t)snprintf(path, sizeof path, "%s/generation_config.json", dir) >= sizeof path)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "%s: path too long", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR) return ZMLX_OK;
        return zerr_set(e, ZMLX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    char *buf = malloc(GEN_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, GEN_FILE_MAX + 1, f) : 0;
    int bad = buf && ferror(f);
    fclose(f);
    zmlx_status st;
    if (!buf)
        st = zerr_set(e, ZMLX_ERR_NOMEM, "%s: out of memory", path);
    else if (bad)
        st = zerr_set(e, ZMLX_ERR_IO, "%s: read error", path);
    else if (n > GEN_FILE_MAX)
        st = zerr_set(e, ZMLX_ERR_LIMIT, "%s: larger than %zu bytes", path, GEN_FILE_MAX);
    else
        st = zgen_parse(buf, n, path, out, e);
    free(buf);
    return st;
}
