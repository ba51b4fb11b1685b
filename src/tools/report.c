/*
 * report.c — `zmlx report`: capsules as text.  One block per capsule (model, settings,
 * machine with its measured read bandwidth, build, noise band) and a table of the shared
 * baseline and every variant: fidelity, median decode tok/s (min-max) and its change,
 * median prefill and its change, peak memory, achieved GB/s and % of the roofline.  A
 * change inside the noise band — the baseline runs' relative spread (max-min)/median —
 * is marked "neutral".  With several capsules, a side-by-side table of decode speedups.
 * Not for: reading files (capsule_read.c) or the ledger views (matrix.c).
 */
#include "tools/harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void fmt_num(char *buf, size_t n, double x, int prec) {
    if (isfinite(x))
        snprintf(buf, n, "%.*f", prec, x);
    else
        snprintf(buf, n, "-");
}

/* "12.34 (11.90-12.50)" from a side object. */
static void fmt_rate(char *buf, size_t n, const json_t *side, const char *runs_key,
                     const char *median_key, int prec) {
    const json_t *arr = json_object_get(side, runs_key);
    double med = zj_num(side, median_key, NAN), lo = INFINITY, hi = -INFINITY;
    size_t i;
    const json_t *x;
    json_array_foreach(arr, i, x) {
        if (!json_is_number(x)) continue;
        double v = json_number_value(x);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (!isfinite(med))
        snprintf(buf, n, "-");
    else if (isfinite(lo) && json_array_size(arr) > 1)
        snprintf(buf, n, "%.*f (%.*f-%.*f)", prec, med, prec, lo, prec, hi);
    else
        snprintf(buf, n, "%.*f", prec, med);
}

static const json_t *meta_baseline(const json_t *c) {
    const json_t *b = json_object_get(json_object_get(c, "meta"), "baseline");
    if (b) return b;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)c, key, v) {
        if (strcmp(key, "meta")) return json_object_get(v, "baseline");
    }
    return NULL;
}

/* One table row; returns its roofline fraction (NaN if unknown). */
static double print_row(FILE *out, int w, const char *name, const char *fid, const json_t *side,
                        double dchange, double pchange, double noise, double bpt, double bw) {
    char dec[48], pre[48], dch[32], pch[32], mem[24], gbs[24], roof[24];
    fmt_rate(dec, sizeof dec, side, "decode_tok_s", "median_decode", 2);
    fmt_rate(pre, sizeof pre, side, "prefill_tok_s", "median_prefill", 1);
    zfmt_change(dch, sizeof dch, dchange, noise);
    zfmt_change(pch, sizeof pch, pchange, noise);
    fmt_num(mem, sizeof mem, zj_num(side, "peak_mem_mb", NAN), 0);
    double gb = bpt * zj_num(side, "median_decode", NAN) * 1e-9;
    fmt_num(gbs, sizeof gbs, gb, 2);
    if (isfinite(gb / bw))
        snprintf(roof, sizeof roof, "%.1f%%", 100.0 * gb / bw);
    else
        snprintf(roof, sizeof roof, "-");
    fprintf(out, "%-*s  %-14s %-27s %-14s %-25s %-14s %9s %8s %8s\n", w, name, fid, dec, dch, pre,
            pch, mem, gbs, roof);
    return gb / bw;
}

static void report_one(FILE *out, const json_t *c, const char *name, int idx) {
    const json_t *m = json_object_get(c, "meta"), *dev = json_object_get(m, "device");
    const json_t *base = meta_baseline(c);
    const double bw = zj_num(json_object_get(m, "memory_bandwidth"), "read_GBps", NAN);
    const double bpt = zj_num(m, "bytes_per_token", NAN);
    const double noise = zstats_spread(json_object_get(base, "decode_tok_s"));
    fprintf(out, "== [%d] %s\n", idx, name);
    fprintf(out, "model     %s (%s, %s weights), %.3f GB read per decoded token\n",
            zj_str(m, "model", "?"), zj_str(m, "model_family", "?"), zj_str(m, "weights", "?"),
            bpt * 1e-9);
    fprintf(out,
            "settings  %s backend, %s precision, kv %s, %d threads; %d runs x %d tokens after "
            "%d warm-up, interleaved\n",
            zj_str(m, "backend", "?"), zj_str(m, "precision", "?"), zj_str(m, "kv_dtype", "?"),
            (int)zj_num(m, "threads", 0), (int)zj_num(m, "runs", 0),
            (int)zj_num(m, "max_tokens", 0), (int)zj_num(m, "warmup", 0));
    if (isfinite(bw))
        fprintf(out, "machine   %s; measured read bandwidth %.1f GB/s\n",
                zj_str(m, "hardware", zj_str(dev, "cpu_model", "?")), bw);
    else
        fprintf(out, "machine   %s; read bandwidth not measured\n",
                zj_str(m, "hardware", zj_str(dev, "cpu_model", "?")));
    fprintf(out, "build     zmlx %s (%s), %s %s, %s\n", zj_str(m, "zmlx_version", "?"),
            zj_str(m, "git_commit", "?"), zj_str(m, "compiler", "?"), zj_str(m, "build_type", ""),
            zj_str(m, "date", "?"));
    if (isfinite(noise))
        fprintf(out, "noise     baseline decode spread %.1f%%: changes within it are \"neutral\"\n",
                100.0 * noise);
    const char *notes = zj_str(m, "notes", "");
    if (notes[0]) fprintf(out, "notes     %s\n", notes);

    int w = 8;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)c, key, v) {
        if (strcmp(key, "meta") && (int)strlen(key) > w) w = (int)strlen(key);
    }
    fprintf(out, "\n%-*s  %-14s %-27s %-14s %-25s %-14s %9s %8s %8s\n", w, "variant", "fidelity",
            "decode tok/s (min-max)", "decode chg", "prefill tok/s", "prefill chg", "peak MiB",
            "GB/s", "roofline");
    double roof_max = print_row(out, w, "baseline", "-", base, NAN, NAN, noise, bpt, bw);
    json_object_foreach((json_t *)c, key, v) {
        if (!strcmp(key, "meta")) continue;
        const json_t *fid = json_object_get(v, "fidelity"), *sum = json_object_get(v, "summary");
        char fs[48], label[32];
        zfmt_verdict(label, sizeof label, zj_str(fid, "verdict", "?"), zj_str(fid, "detail", ""));
        if (!strcmp(label, "PASS") || !strcmp(label, "FAIL"))
            snprintf(fs, sizeof fs, "%s %lld/%lld", label, (long long)zj_num(fid, "matched", 0),
                     (long long)zj_num(fid, "total", 0));
        else
            snprintf(fs, sizeof fs, "%s", label);
        double rf = print_row(out, w, key, fs, json_object_get(v, "patched"),
                              zj_num(sum, "decode_speedup", NAN) - 1.0,
                              zj_num(sum, "prefill_change", NAN), noise, bpt, bw);
        roof_max = isfinite(rf) && !(rf <= roof_max) ? rf : roof_max;
    }
    if (roof_max > 1.0)
        fprintf(out, "\nnote: achieved GB/s exceeds the measured read bandwidth: the machine was "
                     "busier while the bandwidth was measured than during decode, so the roofline "
                     "%% is not reliable here.\n");
    bool header = false;
    json_object_foreach((json_t *)c, key, v) {
        if (!strcmp(key, "meta")) continue;
        const json_t *fid = json_object_get(v, "fidelity");
        if (!strcmp(zj_str(fid, "verdict", ""), "PASS")) continue;
        if (!header) fputc('\n', out);
        header = true;
        fprintf(out, "%s: %s\n", key, zj_str(fid, "detail", zj_str(v, "error", "")));
    }
    fputc('\n', out);
}

/* Side by side: one row per variant name, one column per capsule. */
static void side_by_side(FILE *out, const json_t *const *caps, int n) {
    json_t *names = json_array();
    int w = 8;
    for (int i = 0; i < n; i++) {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)caps[i], key, v) {
            if (!strcmp(key, "meta")) continue;
            bool seen = false;
            size_t k;
            const json_t *x;
            json_array_foreach(names, k, x) seen |= !strcmp(json_string_value(x), key);
            if (!seen) json_array_append_new(names, json_string(key));
            if ((int)strlen(key) > w) w = (int)strlen(key);
        }
    }
    fprintf(out, "== side by side: decode speedup vs each capsule's baseline (fidelity)\n");
    fprintf(out, "%-*s", w, "variant");
    for (int i = 0; i < n; i++) {
        char h[16];
        snprintf(h, sizeof h, "[%d]", i + 1);
        fprintf(out, "  %-24s", h);
    }
    fputc('\n', out);
    size_t k;
    const json_t *x;
    json_array_foreach(names, k, x) {
        const char *name = json_string_value(x);
        fprintf(out, "%-*s", w, name);
        for (int i = 0; i < n; i++) {
            const json_t *v = json_object_get(caps[i], name);
            char cell[64], label[32];
            if (!v) {
                snprintf(cell, sizeof cell, "-");
            } else {
                const json_t *fid = json_object_get(v, "fidelity");
                zfmt_verdict(label, sizeof label, zj_str(fid, "verdict", "?"),
                             zj_str(fid, "detail", ""));
                double s = zj_num(json_object_get(v, "summary"), "decode_speedup", NAN);
                double noise =
                    zstats_spread(json_object_get(meta_baseline(caps[i]), "decode_tok_s"));
                if (isfinite(s))
                    snprintf(cell, sizeof cell, "%.3fx%s %s", s,
                             isfinite(noise) && fabs(s - 1.0) <= noise ? " neutral" : "", label);
                else
                    snprintf(cell, sizeof cell, "%s", label);
            }
            fprintf(out, "  %-24s", cell);
        }
        fputc('\n', out);
    }
    json_decref(names);
}

void zreport_capsules(FILE *out, const json_t *const *caps, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        report_one(out, caps[i], names[i], i + 1);
    if (n > 1) side_by_side(out, caps, n);
}
