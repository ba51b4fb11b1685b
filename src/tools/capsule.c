/*
 * capsule.c — a bench result as a repro capsule (SYSTEM.md section 4): a top-level
 * "meta" object (date, version, commit, compiler and flags, backend and settings, the
 * device, the measured read bandwidth, the command line of every variant) and one object
 * per variant keyed by its name.  Written with a temp file + rename, so a reader never
 * sees half a capsule.  Numbers that were not measured are JSON null, never 0.
 * Not for: reading capsules back (capsule_read.c) or the ledger (ledger.c).
 */
#include "tools/harness.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A finite number, or null. */
static json_t *jnum(double x) {
    return isfinite(x) ? json_real(x) : json_null();
}

static json_t *times_json(const zbench_side *s, bool decode) {
    json_t *a = json_array();
    for (int i = 0; i < s->n; i++)
        json_array_append_new(a, jnum(decode ? s->t[i].decode_tok_s : s->t[i].prefill_tok_s));
    return a;
}

static json_t *side_json(const zbench_side *s) {
    json_t *dec = times_json(s, true);
    json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "prefill_tok_s", times_json(s, false),
                          "decode_tok_s", dec, "median_prefill", jnum(s->median_prefill),
                          "median_decode", jnum(s->median_decode), "peak_mem_mb",
                          jnum(s->peak_mem_mb), "decode_spread", jnum(zstats_spread(dec)));
    return o;
}

/* The ZMLX_* environment of this process (pattern gates and switches). */
static json_t *env_json(void) {
    json_t *o = json_object();
    for (char **p = environ; p && *p; p++) {
        if (strncmp(*p, "ZMLX_", 5)) continue;
        const char *eq = strchr(*p, '=');
        if (!eq) continue;
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(eq - *p), *p);
        json_object_set_new(o, key, json_string(eq + 1));
    }
    return o;
}

static json_t *patterns_json(const char *list) {
    json_t *a = json_array();
    if (!list[0] || !strcmp(list, "none")) return a;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        json_array_append_new(a, json_stringn(p, len));
        p += len;
        if (*p) p++;
    }
    return a;
}

static json_t *variant_json(const zbench_result *r, const zbench_variant *v, json_t *env) {
    const bool ran = v->patched.n > 0;
    json_t *fid = json_pack("{s:I, s:I, s:s, s:i, s:i, s:s}", "matched", (json_int_t)v->matched,
                            "total", (json_int_t)v->total, "verdict", zverdict_name(v->verdict),
                            "first_divergence", v->first_divergence, "first_divergence_run",
                            v->first_divergence_run, "detail", v->detail);
    json_t *base = side_json(&r->baseline); /* the shared baseline (empty if it never ran) */
    double noise = zstats_spread(json_object_get(base, "decode_tok_s"));
    json_t *sum =
        json_pack("{s:o, s:o, s:I, s:o, s:o, s:o, s:o}", "decode_speedup", jnum(v->decode_speedup),
                  "prefill_change", jnum(v->prefill_change), "bytes_per_token",
                  (json_int_t)r->bytes_per_token, "achieved_GBps", jnum(v->achieved_GBps),
                  "roofline_fraction", jnum(v->roofline_fraction), "baseline_achieved_GBps",
                  jnum((double)r->bytes_per_token * r->baseline.median_decode * 1e-9), "noise_band",
                  jnum(noise));
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(r->model));
    json_object_set_new(o, "variant", json_string(v->name));
    json_object_set_new(o, "patterns", patterns_json(v->patterns));
    json_object_set_new(o, "pattern_set", json_string(v->patterns[0] ? v->patterns : v->spec));
    json_object_set_new(o, "spec", json_string(v->spec));
    json_object_set_new(o, "env", json_deep_copy(env));
    json_object_set_new(o, "max_tokens", json_integer(r->max_tokens));
    json_object_set_new(o, "gen_tokens", json_integer(ran ? r->gen_tokens : 0));
    json_object_set_new(o, "runs", json_integer(v->patched.n));
    json_object_set_new(o, "fidelity", fid);
    json_object_set_new(o, "baseline", base);
    json_object_set_new(o, "patched", side_json(&v->patched));
    json_object_set_new(o, "summary", sum);
    json_object_set_new(o, "notes", json_string(r->notes));
    json_object_set_new(o, "error", v->verdict == ZV_ERROR ? json_string(v->error) : json_null());
    if (r->ram_skip)
        json_object_set_new(o, "memory",
                            json_pack("{s:I, s:I}", "needed_bytes", (json_int_t)r->mem_needed_bytes,
                                      "available_bytes", (json_int_t)r->mem_available_bytes));
    return o;
}

static json_t *meta_json(const zbench_result *r) {
    const zsysinfo *s = &r->sys;
    json_t *m = json_object();
    json_object_set_new(m, "schema", json_string("zmlx.capsule/1"));
    json_object_set_new(m, "date", json_string(s->date));
    json_object_set_new(m, "zmlx_version", json_string(s->version));
    json_object_set_new(m, "git_commit", json_string(s->commit));
    json_object_set_new(m, "compiler", json_string(s->compiler));
    json_object_set_new(m, "compiler_flags", json_string(s->cflags));
    json_object_set_new(m, "build_type", json_string(s->build_type));
    json_object_set_new(m, "backend", json_string(r->backend));
    json_object_set_new(m, "precision", json_string(r->precision));
    json_object_set_new(m, "kv_dtype", json_string(r->kv_dtype));
    json_object_set_new(m, "threads", json_integer(r->threads));
    json_object_set_new(m, "device", zsysinfo_device_json(s));
    json_object_set_new(m, "hardware", json_string(s->hardware));
    json_object_set_new(m, "memory_bandwidth",
                        json_pack("{s:o, s:i, s:f, s:I, s:s}", "read_GBps", jnum(r->read_GBps),
                                  "threads", r->threads, "seconds", r->bw_seconds, "buffer_bytes",
                                  (json_int_t)512 << 20, "method",
                                  r->bw_seconds > 0 ? "zmlx_measure_read_bandwidth, best pass, once per bench"
                                  : isfinite(r->read_GBps) ? "given (--read-gbps: the device's, measured by zmlx-cuda_bw)"
                                                           : "not measured"));
    json_object_set_new(m, "model", json_string(r->model));
    json_object_set_new(m, "model_family", json_string(r->family));
    json_object_set_new(m, "weights", json_string(r->weights));
    json_object_set_new(m, "bytes_per_token", json_integer(r->bytes_per_token));
    json_object_set_new(m, "memory",
                        json_pack("{s:I, s:I, s:b}", "needed_bytes",
                                  (json_int_t)r->mem_needed_bytes, "available_bytes",
                                  (json_int_t)r->mem_available_bytes, "fits", !r->ram_skip));
    json_object_set_new(m, "runs", json_integer(r->runs));
    json_object_set_new(m, "warmup", json_integer(r->warmup));
    json_object_set_new(m, "max_tokens", json_integer(r->max_tokens));
    json_t *ids = json_array();
    for (size_t i = 0; i < r->n_prompt; i++)
        json_array_append_new(ids, json_integer(r->prompt[i]));
    json_object_set_new(m, "prompt_ids", ids);
    json_object_set_new(m, "baseline", side_json(&r->baseline));
    json_object_set_new(m, "command_line", json_string(r->invocation));
    json_t *cmds = json_object(), *names = json_array();
    for (int i = 0; i < r->n_variants; i++) {
        json_object_set_new(cmds, r->v[i].name, json_string(r->v[i].command));
        json_array_append_new(names, json_string(r->v[i].name));
    }
    json_object_set_new(m, "command_lines", cmds);
    json_object_set_new(m, "variants", names);
    json_object_set_new(m, "notes", json_string(r->notes));
    return m;
}

json_t *zcapsule_build(const zbench_result *r) {
    json_t *c = json_object(), *env = env_json();
    json_object_set_new(c, "meta", meta_json(r));
    for (int i = 0; i < r->n_variants; i++)
        json_object_set_new(c, r->v[i].name, variant_json(r, &r->v[i], env));
    json_decref(env);
    return c;
}

void zcapsule_default_path(const zbench_result *r, char *buf, size_t n) {
    /* slug of the model's last path component (or the whole builtin spec) */
    const char *name = r->model;
    size_t len = strlen(name);
    while (len > 1 && name[len - 1] == '/')
        len--;
    if (strncmp(name, "builtin:", 8)) {
        for (size_t i = len; i > 0; i--)
            if (name[i - 1] == '/') {
                name += i;
                len -= i;
                break;
            }
    }
    char slug[96];
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < sizeof slug; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (isalnum(ch))
            slug[o++] = (char)tolower(ch);
        else if (o && slug[o - 1] != '-')
            slug[o++] = '-';
    }
    while (o && slug[o - 1] == '-')
        o--;
    slug[o] = '\0';
    snprintf(buf, n, "benchmarks/capsules/%s-%s.json", o ? slug : "model", r->sys.stamp);
    struct stat st;
    for (int k = 2; k < 100 && stat(buf, &st) == 0; k++)
        snprintf(buf, n, "benchmarks/capsules/%s-%s-%d.json", o ? slug : "model", r->sys.stamp, k);
}

zmlx_status zfile_make_parents(const char *path, zerr *e) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) return ZMLX_OK;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            return zerr_set(e, ZMLX_ERR_IO, "%s: cannot create the folder: %s", dir,
                            strerror(errno));
        *p = '/';
    }
    if (dir[0] && mkdir(dir, 0777) != 0 && errno != EEXIST)
        return zerr_set(e, ZMLX_ERR_IO, "%s: cannot create the folder: %s", dir, strerror(errno));
    return ZMLX_OK;
}

zmlx_status zfile_write_atomic(const char *path, const void *data, size_t n, zerr *e) {
    zmlx_status st = zfile_make_parents(path, e);
    if (st != ZMLX_OK) return st;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return zerr_set(e, ZMLX_ERR_IO, "%s: cannot create a temp file: %s", path, strerror(errno));
    const char *p = data;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    int saved = errno;
    bool ok = done == n && fsync(fd) == 0;
    if (!ok) saved = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (ok && rename(tmp, path) == 0) return ZMLX_OK;
    if (ok) saved = errno;
    unlink(tmp);
    return zerr_set(e, ZMLX_ERR_IO, "%s: could not write the file: %s", path, strerror(saved));
}

zmlx_status zjson_write_file(const json_t *j, const char *path, zerr *e) {
    char *text = json_dumps(j, JSON_INDENT(1) | JSON_ENSURE_ASCII);
    if (!text) return zerr_set(e, ZMLX_ERR_NOMEM, "%s: could not serialize the JSON", path);
    size_t n = strlen(text);
    char *buf = realloc(text, n + 2);
    if (!buf) {
        free(text);
        return zerr_set(e, ZMLX_ERR_NOMEM, "%s: out of memory", path);
    }
    buf[n] = '\n';
    zmlx_status st = zfile_write_atomic(path, buf, n + 1, e);
    free(buf);
    return st;
}
