/*
 * capsule_read.c — reading a capsule back: the schema check (every field SYSTEM.md
 * section 4 names must be present; unmeasured numbers may be null) and the matrix-ledger
 * entry of one variant (ZMLX's field names plus backend, device and capsule path).
 * Not for: building capsules from a bench (capsule.c).
 */
#include "tools/harness.h"

#include <stdio.h>
#include <string.h>

/* Fields every capsule must hold ("a.b" = key b inside object a). */
/* clang-format off */
static const char *const k_meta_fields[] = {
    "date", "zmlx_version", "git_commit", "compiler", "compiler_flags", "backend",
    "precision", "kv_dtype", "threads", "device", "device.cpu_model", "device.cpu_cores",
    "device.mem_total_bytes", "device.gpu", "device.gpu.name", "device.gpu.memory_bytes",
    "device.gpu.driver", "hardware", "memory_bandwidth", "memory_bandwidth.read_GBps", "model",
    "command_line", "command_lines", "notes", NULL};
static const char *const k_variant_fields[] = {
    "model", "variant", "patterns", "env", "max_tokens", "gen_tokens", "runs", "fidelity",
    "fidelity.matched", "fidelity.total", "fidelity.verdict", "fidelity.first_divergence",
    "baseline", "baseline.prefill_tok_s", "baseline.decode_tok_s", "baseline.median_prefill",
    "baseline.median_decode", "baseline.peak_mem_mb", "patched", "patched.prefill_tok_s",
    "patched.decode_tok_s", "patched.median_prefill", "patched.median_decode",
    "patched.peak_mem_mb", "summary", "summary.decode_speedup", "summary.prefill_change",
    "summary.bytes_per_token", "summary.achieved_GBps", "summary.roofline_fraction", "notes",
    "error", NULL};
/* clang-format on */

/* The value at a dotted path, or NULL when a key is missing. */
static const json_t *at(const json_t *o, const char *path) {
    char key[64];
    while (o && *path) {
        size_t len = strcspn(path, ".");
        snprintf(key, sizeof key, "%.*s", (int)len, path);
        o = json_is_object(o) ? json_object_get(o, key) : NULL;
        path += len;
        if (*path) path++;
    }
    return o;
}

static zmlx_status check_fields(const json_t *o, const char *const *fields, const char *what,
                                const char *section, zerr *e) {
    for (int i = 0; fields[i]; i++)
        if (!at(o, fields[i]))
            return zerr_set(e, ZMLX_ERR_FORMAT,
                            "%s: \"%s\" lacks the field %s (not a zmlx capsule?)", what, section,
                            fields[i]);
    return ZMLX_OK;
}

zmlx_status zcapsule_check(const json_t *c, const char *what, zerr *e) {
    if (!json_is_object(c))
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s: a capsule is a JSON object", what);
    const json_t *meta = json_object_get(c, "meta");
    if (!json_is_object(meta))
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s: no \"meta\" object (not a zmlx capsule?)", what);
    zmlx_status st = check_fields(meta, k_meta_fields, what, "meta", e);
    if (st != ZMLX_OK) return st;
    const char *key;
    const json_t *v;
    int n = 0;
    json_object_foreach((json_t *)c, key, v) {
        if (!strcmp(key, "meta")) continue;
        if (!json_is_object(v))
            return zerr_set(e, ZMLX_ERR_FORMAT, "%s: variant \"%s\" is not an object", what, key);
        if ((st = check_fields(v, k_variant_fields, what, key, e)) != ZMLX_OK) return st;
        const char *verdict = zj_str(json_object_get(v, "fidelity"), "verdict", "");
        if (strcmp(verdict, "PASS") && strcmp(verdict, "FAIL") && strcmp(verdict, "SKIP") &&
            strcmp(verdict, "ERROR"))
            return zerr_set(e, ZMLX_ERR_FORMAT,
                            "%s: variant \"%s\": fidelity.verdict \"%s\" is not PASS, FAIL, SKIP "
                            "or ERROR",
                            what, key, verdict);
        n++;
    }
    if (n == 0) return zerr_set(e, ZMLX_ERR_FORMAT, "%s: the capsule holds no variant", what);
    return ZMLX_OK;
}

zmlx_status zcapsule_read(const char *path, json_t **out, zerr *e) {
    *out = NULL;
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    if (!c) return zerr_set(e, ZMLX_ERR_FORMAT, "%s: line %d: %s", path, je.line, je.text);
    zmlx_status st = zcapsule_check(c, path, e);
    if (st != ZMLX_OK) {
        json_decref(c);
        return st;
    }
    *out = c;
    return ZMLX_OK;
}

static json_t *copy_of(const json_t *o, const char *path) {
    const json_t *v = at(o, path);
    return v ? json_deep_copy(v) : json_null();
}

static json_t *gb_of_mb(const json_t *o, const char *path) {
    const json_t *v = at(o, path);
    return json_is_number(v) ? json_real(json_number_value(v) / 1024.0) : json_null();
}

json_t *zcapsule_ledger_entry(const json_t *c, const char *variant, const char *capsule_path) {
    const json_t *m = json_object_get(c, "meta"), *v = json_object_get(c, variant);
    if (!m || !v) return NULL;
    json_t *e = json_object();
    json_object_set_new(e, "model_id", copy_of(v, "model"));
    json_object_set_new(e, "model_family", copy_of(m, "model_family"));
    json_object_set_new(e, "architecture", json_string("moe"));
    json_object_set_new(e, "variant", json_string(variant));
    json_object_set_new(e, "patterns_applied", copy_of(v, "patterns"));
    json_object_set_new(e, "pattern_set", copy_of(v, "pattern_set"));
    json_object_set_new(e, "hardware", copy_of(m, "hardware"));
    json_object_set_new(e, "notes", copy_of(v, "notes"));
    json_object_set_new(e, "zmlx_version", copy_of(m, "zmlx_version"));
    json_object_set_new(e, "zmlx_commit", copy_of(m, "git_commit"));
    json_object_set_new(e, "compiler", copy_of(m, "compiler"));
    json_object_set_new(e, "timestamp", copy_of(m, "date"));
    json_object_set_new(e, "fidelity", copy_of(v, "fidelity.verdict"));
    json_object_set_new(e, "fidelity_detail", copy_of(v, "fidelity.detail"));
    json_object_set_new(e, "tokens_matched", copy_of(v, "fidelity.matched"));
    json_object_set_new(e, "tokens_total", copy_of(v, "fidelity.total"));
    json_object_set_new(e, "decode_tps_baseline", copy_of(v, "baseline.median_decode"));
    json_object_set_new(e, "decode_tps_patched", copy_of(v, "patched.median_decode"));
    json_object_set_new(e, "decode_speedup", copy_of(v, "summary.decode_speedup"));
    json_object_set_new(e, "decode_runs_baseline", copy_of(v, "baseline.decode_tok_s"));
    json_object_set_new(e, "decode_runs_patched", copy_of(v, "patched.decode_tok_s"));
    json_object_set_new(e, "prefill_tps_baseline", copy_of(v, "baseline.median_prefill"));
    json_object_set_new(e, "prefill_tps_patched", copy_of(v, "patched.median_prefill"));
    json_object_set_new(e, "prefill_change", copy_of(v, "summary.prefill_change"));
    json_object_set_new(e, "prefill_runs_baseline", copy_of(v, "baseline.prefill_tok_s"));
    json_object_set_new(e, "prefill_runs_patched", copy_of(v, "patched.prefill_tok_s"));
    json_object_set_new(e, "peak_mem_baseline_gb", gb_of_mb(v, "baseline.peak_mem_mb"));
    json_object_set_new(e, "peak_mem_patched_gb", gb_of_mb(v, "patched.peak_mem_mb"));
    json_object_set_new(e, "max_tokens", copy_of(v, "max_tokens"));
    json_object_set_new(e, "gen_tokens", copy_of(v, "gen_tokens"));
    json_object_set_new(e, "runs", copy_of(v, "runs"));
    json_object_set_new(e, "bytes_per_token", copy_of(v, "summary.bytes_per_token"));
    json_object_set_new(e, "achieved_GBps", copy_of(v, "summary.achieved_GBps"));
    json_object_set_new(e, "roofline_fraction", copy_of(v, "summary.roofline_fraction"));
    json_object_set_new(e, "read_GBps", copy_of(m, "memory_bandwidth.read_GBps"));
    json_object_set_new(e, "noise_band", copy_of(v, "summary.noise_band"));
    json_object_set_new(e, "backend", copy_of(m, "backend"));
    json_object_set_new(e, "precision", copy_of(m, "precision"));
    json_object_set_new(e, "kv_dtype", copy_of(m, "kv_dtype"));
    json_object_set_new(e, "threads", copy_of(m, "threads"));
    json_object_set_new(e, "device", copy_of(m, "device"));
    json_object_set_new(e, "error", copy_of(v, "error"));
    json_object_set_new(e, "capsule", capsule_path ? json_string(capsule_path) : json_null());
    return e;
}
