/*
 * matrix.c — text views of the matrix ledger: `history SUBSTR` (every entry whose model
 * id contains SUBSTR, case-insensitive, oldest first), `report` (the latest entry per
 * model x pattern set) and `csv` (every entry, one row each, RFC 4180 quoting).
 * "Latest" is the last in file order: the ledger is append-only, so that is the newest.
 * Not for: reading the file (ledger.c) or the HTML page (matrix_html.c).
 */
#include "tools/harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The entry's pattern set: "pattern_set", else patterns_applied joined, else the variant. */
static void entry_set(const json_t *e, char *buf, size_t n) {
    const char *s = zj_str(e, "pattern_set", NULL);
    if (s && *s) {
        snprintf(buf, n, "%s", s);
        return;
    }
    const json_t *arr = json_object_get(e, "patterns_applied");
    size_t o = 0, i;
    const json_t *x;
    buf[0] = '\0';
    json_array_foreach(arr, i, x) {
        if (json_is_string(x) && o < n)
            o += (size_t)snprintf(buf + o, n - o, "%s%s", o ? "," : "", json_string_value(x));
    }
    if (!o) snprintf(buf, n, "%s", zj_str(e, "variant", "none"));
}

typedef struct keyed {
    const json_t *e;
    char model[256], set[256];
} keyed;

static int cmp_keyed(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    int c = strcmp(x->model, y->model);
    return c ? c : strcmp(x->set, y->set);
}

json_t *zmatrix_latest(const json_t *entries) {
    size_t n = json_array_size(entries), m = 0, i;
    keyed *k = calloc(n ? n : 1, sizeof *k);
    json_t *out = json_array();
    if (!k) return out;
    const json_t *e;
    json_array_foreach(entries, i, e) {
        char model[256], set[256];
        snprintf(model, sizeof model, "%s", zj_str(e, "model_id", "?"));
        entry_set(e, set, sizeof set);
        size_t j = 0;
        while (j < m && (strcmp(k[j].model, model) || strcmp(k[j].set, set)))
            j++;
        if (j == m) m++;
        k[j].e = e; /* a later entry replaces an earlier one */
        memcpy(k[j].model, model, sizeof model);
        memcpy(k[j].set, set, sizeof set);
    }
    qsort(k, m, sizeof *k, cmp_keyed);
    for (size_t j = 0; j < m; j++)
        json_array_append(out, (json_t *)k[j].e);
    free(k);
    return out;
}

static double entry_noise(const json_t *e) {
    double nb = zj_num(e, "noise_band", NAN);
    return isfinite(nb) ? nb : zstats_spread(json_object_get(e, "decode_runs_baseline"));
}

static void fmt_cell(char *buf, size_t n, double x, int prec) {
    if (isfinite(x))
        snprintf(buf, n, "%.*f", prec, x);
    else
        snprintf(buf, n, "-");
}

/* The shared columns of history and report rows. */
static void row_numbers(const json_t *e, char *fid, char *base, char *pat, char *spd, char *pch,
                        size_t n) {
    zfmt_verdict(fid, n, zj_str(e, "fidelity", "?"), zj_str(e, "fidelity_detail", ""));
    fmt_cell(base, n, zj_num(e, "decode_tps_baseline", NAN), 2);
    fmt_cell(pat, n, zj_num(e, "decode_tps_patched", NAN), 2);
    double s = zj_num(e, "decode_speedup", NAN), noise = entry_noise(e);
    if (isfinite(s))
        snprintf(spd, n, "%.3fx%s", s, isfinite(noise) && fabs(s - 1.0) <= noise ? " neutral" : "");
    else
        snprintf(spd, n, "-");
    zfmt_change(pch, n, zj_num(e, "prefill_change", NAN), noise);
}

int zmatrix_history(FILE *out, const json_t *entries, const char *substr) {
    size_t i;
    const json_t *e;
    int count = 0;
    json_array_foreach(entries, i, e) {
        const char *model = zj_str(e, "model_id", "?");
        if (substr && *substr && !strcasestr(model, substr)) continue;
        if (count++ == 0)
            fprintf(out, "%-20s  %-30s %-22s %-12s %9s %9s %-15s %-14s %-8s %-8s %s\n", "timestamp",
                    "model", "variant", "fidelity", "base t/s", "patch t/s", "decode speedup",
                    "prefill chg", "backend", "commit", "pattern set / notes");
        char fid[64], base[64], pat[64], spd[64], pch[64], set[256];
        row_numbers(e, fid, base, pat, spd, pch, 64);
        entry_set(e, set, sizeof set);
        const char *notes = zj_str(e, "notes", "");
        fprintf(out, "%-20s  %-30s %-22s %-12s %9s %9s %-15s %-14s %-8s %-8s %s%s%s\n",
                zj_str(e, "timestamp", "?"), model, zj_str(e, "variant", "-"), fid, base, pat, spd,
                pch, zj_str(e, "backend", "?"), zj_str(e, "zmlx_commit", "?"), set,
                notes[0] ? " / " : "", notes);
    }
    return count;
}

void zmatrix_report(FILE *out, const json_t *entries) {
    json_t *latest = zmatrix_latest(entries);
    fprintf(out, "%-30s %-24s %-12s %9s %9s %-15s %-14s %7s %8s %-20s  %s\n", "model", "variant",
            "fidelity", "base t/s", "patch t/s", "decode speedup", "prefill chg", "GB/s",
            "roofline", "latest", "pattern set");
    size_t i;
    const json_t *e;
    json_array_foreach(latest, i, e) {
        char fid[64], base[64], pat[64], spd[64], pch[64], set[256], gbs[32], roof[32];
        row_numbers(e, fid, base, pat, spd, pch, 64);
        entry_set(e, set, sizeof set);
        fmt_cell(gbs, sizeof gbs, zj_num(e, "achieved_GBps", NAN), 2);
        double rf = zj_num(e, "roofline_fraction", NAN);
        if (isfinite(rf))
            snprintf(roof, sizeof roof, "%.1f%%", 100.0 * rf);
        else
            snprintf(roof, sizeof roof, "-");
        fprintf(out, "%-30s %-24s %-12s %9s %9s %-15s %-14s %7s %8s %-20s  %s\n",
                zj_str(e, "model_id", "?"), zj_str(e, "variant", "-"), fid, base, pat, spd, pch,
                gbs, roof, zj_str(e, "timestamp", "?"), set);
    }
    fprintf(out, "%zu model x pattern set combinations, %zu entries in the ledger\n",
            json_array_size(latest), json_array_size(entries));
    json_decref(latest);
}

/* One CSV field: quoted when it holds a comma, quote or line break; arrays joined by ';'. */
static void csv_field(FILE *out, const json_t *v) {
    char buf[2048];
    buf[0] = '\0';
    if (json_is_string(v)) {
        snprintf(buf, sizeof buf, "%s", json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(buf, sizeof buf, "%.6g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(buf, sizeof buf, "%s", json_is_true(v) ? "true" : "false");
    } else if (json_is_array(v)) {
        size_t i, o = 0;
        const json_t *x;
        json_array_foreach(v, i, x) {
            if (o >= sizeof buf) break;
            if (json_is_string(x))
                o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", i ? ";" : "",
                                      json_string_value(x));
            else if (json_is_number(x))
                o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%.6g", i ? ";" : "",
                                      json_number_value(x));
        }
    }
    if (!strpbrk(buf, ",\"\r\n")) {
        fputs(buf, out);
        return;
    }
    fputc('"', out);
    for (const char *p = buf; *p; p++) {
        if (*p == '"') fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

void zmatrix_csv(FILE *out, const json_t *entries) {
    /* clang-format off */
    static const char *const cols[] = {
        "timestamp", "model_id", "model_family", "variant", "pattern_set", "fidelity",
        "fidelity_detail", "decode_tps_baseline", "decode_tps_patched", "decode_speedup",
        "prefill_tps_baseline", "prefill_tps_patched", "prefill_change", "peak_mem_baseline_gb",
        "peak_mem_patched_gb", "bytes_per_token", "achieved_GBps", "roofline_fraction",
        "read_GBps", "noise_band", "max_tokens", "gen_tokens", "runs", "backend", "precision",
        "kv_dtype", "threads", "hardware", "zmlx_version", "zmlx_commit", "notes", "error",
        "capsule", "decode_runs_baseline", "decode_runs_patched", NULL};
    /* clang-format on */
    for (int c = 0; cols[c]; c++)
        fprintf(out, "%s%s", c ? "," : "", cols[c]);
    fputc('\n', out);
    size_t i;
    const json_t *e;
    json_array_foreach(entries, i, e) {
        for (int c = 0; cols[c]; c++) {
            if (c) fputc(',', out);
            csv_field(out, json_object_get(e, cols[c]));
        }
        fputc('\n', out);
    }
}
