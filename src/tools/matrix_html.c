/*
 * matrix_html.c — `zmlx matrix html`: the ledger as ONE self-contained HTML page (inline
 * CSS and inline SVG; no scripts, fonts or other external resources), so it can be
 * attached to a CI run or opened from disk:
 *   1. a heatmap of decode speedup, latest entry per model (rows) x pattern set (columns),
 *      green faster / red slower, "~" inside the noise band, grey for SKIP/ERROR;
 *   2. per model, decode tok/s over its bench runs (oldest left): the baseline and each
 *      pattern set as one series;
 *   3. the latest entries as a table.
 * Details sit in SVG <title> tooltips.  Not for: the text views (matrix.c).
 */
#include "tools/harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CELL_W 104
#define CELL_H 46
#define CHART_W 940
#define CHART_H 280

static const char *const k_palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                        "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};

static void esc(FILE *out, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*s, out);
        }
    }
}

static const char *set_of(const json_t *e) {
    const char *s = zj_str(e, "pattern_set", NULL);
    return s && *s ? s : zj_str(e, "variant", "?");
}

/* Index of s in the string array a, appending it when absent. */
static size_t intern(json_t *a, const char *s) {
    size_t i;
    const json_t *x;
    json_array_foreach(a, i, x) {
        if (!strcmp(json_string_value(x), s)) return i;
    }
    json_array_append_new(a, json_string(s));
    return json_array_size(a) - 1;
}

/* Cell colour: white at 1.0x, to green at +15% and red at -15%; pale when neutral. */
static void speed_color(double s, bool neutral, char *buf, size_t n) {
    double t = (s - 1.0) / 0.15 * (neutral ? 0.3 : 1.0);
    t = t > 1 ? 1 : t < -1 ? -1 : t;
    int r, g, b;
    if (t >= 0) {
        r = (int)(255 + t * (26 - 255)), g = (int)(255 + t * (152 - 255)),
        b = (int)(255 + t * (80 - 255));
    } else {
        t = -t;
        r = (int)(255 + t * (215 - 255)), g = (int)(255 + t * (48 - 255)),
        b = (int)(255 + t * (39 - 255));
    }
    snprintf(buf, n, "#%02x%02x%02x", r, g, b);
}

typedef struct column {
    int rank; /* the named variant's position, or 1000 for other sets */
    const char *label, *set;
} column;

static int cmp_column(const void *a, const void *b) {
    const column *x = a, *y = b;
    return x->rank != y->rank ? x->rank - y->rank : strcmp(x->label, y->label);
}

static int variant_rank(const char *name) {
    for (int i = 0; zbench_variant_name(i); i++)
        if (!strcmp(zbench_variant_name(i), name)) return i;
    return 1000;
}

/* Columns: one per pattern set, labelled by a named variant when one of its entries has
   one, in the named variants' order, then the other sets by label. */
static void columns(const json_t *entries, json_t *sets, json_t *labels) {
    size_t n = json_array_size(entries), m = 0, i;
    column *c = calloc(n ? n : 1, sizeof *c);
    const json_t *e;
    if (!c) return;
    json_array_foreach(entries, i, e) {
        const char *set = set_of(e), *label = zj_str(e, "variant", set);
        size_t j = 0;
        while (j < m && strcmp(c[j].set, set))
            j++;
        if (j == m)
            c[m++] = (column){variant_rank(label), label, set};
        else if (variant_rank(label) < c[j].rank)
            c[j] = (column){variant_rank(label), label, set};
    }
    qsort(c, m, sizeof *c, cmp_column);
    for (size_t j = 0; j < m; j++) {
        json_array_append_new(sets, json_string(c[j].set));
        json_array_append_new(labels, json_string(c[j].label));
    }
    free(c);
}

static void heatmap(FILE *out, const json_t *latest, const json_t *entries) {
    json_t *models = json_array(), *sets = json_array(), *labels = json_array();
    size_t i;
    const json_t *e;
    json_array_foreach(latest, i, e) intern(models, zj_str(e, "model_id", "?"));
    columns(entries, sets, labels); /* every set of the ledger is in latest too */
    size_t nm = json_array_size(models), ns = json_array_size(sets), left = 120;
    json_array_foreach(models, i, e) {
        size_t w = strlen(json_string_value(e)) * 7 + 16;
        left = w > left ? w : left;
    }
    const size_t top = 120, W = left + ns * CELL_W + 20, H = top + nm * CELL_H + 20;
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%zu\" height=\"%zu\" "
            "viewBox=\"0 0 %zu %zu\" role=\"img\" aria-label=\"decode speedup heatmap\">\n",
            W, H, W, H);
    for (size_t c = 0; c < ns; c++) {
        double x = (double)(left + c * CELL_W + CELL_W / 2);
        fprintf(out,
                "<text x=\"%.0f\" y=\"%zu\" font-size=\"12\" transform=\"rotate(-30 %.0f %zu)\">",
                x, top - 8, x, top - 8);
        esc(out, json_string_value(json_array_get(labels, c)));
        fprintf(out, "<title>");
        esc(out, json_string_value(json_array_get(sets, c)));
        fprintf(out, "</title></text>\n");
    }
    for (size_t r = 0; r < nm; r++) {
        size_t y = top + r * CELL_H;
        fprintf(out, "<text x=\"%zu\" y=\"%zu\" font-size=\"12\" text-anchor=\"end\">", left - 8,
                y + CELL_H / 2 + 4);
        esc(out, json_string_value(json_array_get(models, r)));
        fprintf(out, "</text>\n");
    }
    json_array_foreach(latest, i, e) {
        size_t r = intern(models, zj_str(e, "model_id", "?")), c = intern(sets, set_of(e));
        size_t x = left + c * CELL_W, y = top + r * CELL_H;
        char fill[16], label[40], verdict[32];
        zfmt_verdict(verdict, sizeof verdict, zj_str(e, "fidelity", "?"),
                     zj_str(e, "fidelity_detail", ""));
        double s = zj_num(e, "decode_speedup", NAN);
        double noise =
            zj_num(e, "noise_band", zstats_spread(json_object_get(e, "decode_runs_baseline")));
        bool measured = isfinite(s) && (!strcmp(verdict, "PASS") || !strcmp(verdict, "FAIL"));
        const bool neutral = isfinite(noise) && fabs(s - 1) <= noise;
        if (measured)
            speed_color(s, neutral, fill, sizeof fill);
        else
            snprintf(fill, sizeof fill, "%s", !strcmp(verdict, "ERROR") ? "#b8b8b8" : "#e6e6e6");
        if (measured)
            snprintf(label, sizeof label, "%s%.3fx", neutral ? "~" : "", s);
        else
            snprintf(label, sizeof label, "-");
        fprintf(out,
                "<g><rect x=\"%zu\" y=\"%zu\" width=\"%d\" height=\"%d\" fill=\"%s\" "
                "stroke=\"%s\" stroke-width=\"%d\"/>",
                x + 1, y + 1, CELL_W - 2, CELL_H - 2, fill,
                !strcmp(verdict, "FAIL") ? "#a50026" : "#ffffff", !strcmp(verdict, "FAIL") ? 3 : 1);
        fprintf(out,
                "<text x=\"%zu\" y=\"%zu\" font-size=\"13\" font-weight=\"bold\" "
                "text-anchor=\"middle\">%s</text>",
                x + CELL_W / 2, y + 20, label);
        fprintf(out, "<text x=\"%zu\" y=\"%zu\" font-size=\"11\" text-anchor=\"middle\">",
                x + CELL_W / 2, y + 36);
        esc(out, verdict);
        fprintf(out, "</text><title>");
        esc(out, zj_str(e, "model_id", "?"));
        fprintf(out, " | ");
        esc(out, set_of(e));
        fprintf(out, " | %s | %.2f -&gt; %.2f tok/s | ", verdict,
                zj_num(e, "decode_tps_baseline", NAN), zj_num(e, "decode_tps_patched", NAN));
        esc(out, zj_str(e, "fidelity_detail", ""));
        fprintf(out, " | ");
        esc(out, zj_str(e, "timestamp", ""));
        fprintf(out, "</title></g>\n");
    }
    fprintf(out, "</svg>\n<p class=\"note\">Columns (pattern sets): ");
    for (size_t c = 0; c < ns; c++) {
        fprintf(out, "%s<b>", c ? "; " : "");
        esc(out, json_string_value(json_array_get(labels, c)));
        fprintf(out, "</b> = ");
        esc(out, json_string_value(json_array_get(sets, c)));
    }
    fprintf(out, ".</p>\n");
    json_decref(models);
    json_decref(sets);
    json_decref(labels);
}

/* A round step for an axis covering [0, hi]. */
static double nice_step(double hi) {
    double raw = hi / 5, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/* The bench run an entry belongs to: "timestamp|capsule". */
static void run_key_of(const json_t *e, char *key, size_t n) {
    snprintf(key, n, "%s|%s", zj_str(e, "timestamp", "?"), zj_str(e, "capsule", ""));
}

/* The time chart's plot area: left, top, width, height, axis maximum, number of runs. */
typedef struct chart_area {
    double L, T, pw, ph, top;
    size_t nr;
} chart_area;

static double run_x(const chart_area *a, size_t r) {
    return a->nr > 1 ? a->L + 20 + (a->pw - 40) * (double)r / (double)(a->nr - 1) : a->L + a->pw / 2;
}

/* Entry e's point in series s of `series` (s == ns: the unpatched baseline of every
   entry): its x and value; false when e is another model's or another set's, or has no
   finite value. */
static bool series_point(const json_t *e, const char *model, const json_t *series, size_t s,
                         size_t ns, json_t *runs, const chart_area *a, double *x, double *v) {
    if (strcmp(zj_str(e, "model_id", ""), model)) return false;
    if (s < ns && strcmp(set_of(e), json_string_value(json_array_get(series, s)))) return false;
    char run_key[160];
    run_key_of(e, run_key, sizeof run_key);
    *x = run_x(a, intern(runs, run_key));
    *v = zj_num(e, s == ns ? "decode_tps_baseline" : "decode_tps_patched", NAN);
    return isfinite(*v);
}

/* Decode tok/s of one model over its bench runs (distinct timestamps, file order). */
static void time_chart(FILE *out, const json_t *entries, const char *model) {
    json_t *runs = json_array(), *series = json_array(), *names = json_array();
    double hi = 0;
    size_t i;
    const json_t *e;
    json_array_foreach(entries, i, e) {
        if (strcmp(zj_str(e, "model_id", ""), model)) continue;
        char run_key[160];
        run_key_of(e, run_key, sizeof run_key);
        intern(runs, run_key);
        if (intern(series, set_of(e)) == json_array_size(names))
            json_array_append_new(names, json_string(zj_str(e, "variant", set_of(e))));
        double b = zj_num(e, "decode_tps_baseline", NAN), p = zj_num(e, "decode_tps_patched", NAN);
        hi = isfinite(b) && b > hi ? b : hi;
        hi = isfinite(p) && p > hi ? p : hi;
    }
    size_t nr = json_array_size(runs), ns = json_array_size(series);
    if (hi <= 0) {
        fprintf(
            out,
            "<p class=\"note\">No measured runs for this model (only SKIP/ERROR entries).</p>\n");
        goto done;
    }
    const double L = 60, R = 230, T = 14, B = 70, pw = CHART_W - L - R, ph = CHART_H - T - B;
    const double step = nice_step(hi * 1.1), top = ceil(hi * 1.1 / step) * step;
    const chart_area area = {L, T, pw, ph, top, nr};
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 "
            "%d %d\" role=\"img\" aria-label=\"decode tok/s over time\">\n",
            CHART_W, CHART_H, CHART_W, CHART_H);
    fprintf(out,
            "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" "
            "stroke=\"#999\"/>\n",
            L, T, pw, ph);
    for (double v = 0; v <= top + step * 0.01; v += step) {
        double y = T + ph - v / top * ph;
        fprintf(out,
                "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>"
                "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n",
                L, L + pw, y, y, L - 6, y + 4, v);
    }
    fprintf(out,
            "<text x=\"14\" y=\"%.0f\" font-size=\"11\" transform=\"rotate(-90 14 %.0f)\" "
            "text-anchor=\"middle\">decode tok/s</text>\n",
            T + ph / 2, T + ph / 2);
    const size_t every = nr > 12 ? (nr + 11) / 12 : 1;
    for (size_t r = 0; r < nr; r++) {
        double x = run_x(&area, r);
        if (r % every && r + 1 != nr) continue;
        const char *key = json_string_value(json_array_get(runs, r));
        fprintf(out,
                "<text x=\"%.1f\" y=\"%.0f\" font-size=\"10\" text-anchor=\"end\" "
                "transform=\"rotate(-35 %.1f %.0f)\">%.*s</text>\n",
                x, T + ph + 14, x, T + ph + 14,
                (int)(strcspn(key, "|") < 16 ? strcspn(key, "|") : 16), key);
    }
    /* series 0..ns-1: patched per pattern set; series ns: the baseline */
    for (size_t s = 0; s <= ns; s++) {
        const char *color = s == ns ? "#333333" : k_palette[s % 10];
        fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s points=\"", color,
                s == ns ? "2" : "1.5", s == ns ? " stroke-dasharray=\"5 3\"" : "");
        double last_x = -1, x, v;
        json_array_foreach(entries, i, e) {
            if (!series_point(e, model, series, s, ns, runs, &area, &x, &v) || x == last_x) continue;
            last_x = x;
            fprintf(out, "%.1f,%.1f ", x, T + ph - v / top * ph);
        }
        fprintf(out, "\"/>\n");
        last_x = -1;
        json_array_foreach(entries, i, e) {
            if (!series_point(e, model, series, s, ns, runs, &area, &x, &v) || x == last_x) continue;
            last_x = x;
            fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\"><title>", x,
                    T + ph - v / top * ph, s == ns ? "4" : "3.5", color);
            esc(out, s == ns ? "baseline" : zj_str(e, "variant", "?"));
            fprintf(out, ": %.2f tok/s at ", v);
            esc(out, zj_str(e, "timestamp", "?"));
            fprintf(out, " (%s)</title></circle>\n", zj_str(e, "fidelity", "?"));
        }
        double ly = T + 12 + 18 * (double)s;
        fprintf(out,
                "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
                "stroke-width=\"3\"/><text x=\"%.0f\" y=\"%.0f\" font-size=\"11\">",
                L + pw + 12, L + pw + 32, ly, ly, color, L + pw + 38, ly + 4);
        esc(out, s == ns ? "baseline (unpatched)" : json_string_value(json_array_get(names, s)));
        fprintf(out, "</text>\n");
    }
    fprintf(out, "</svg>\n");
done:
    json_decref(runs);
    json_decref(series);
    json_decref(names);
}

static void latest_table(FILE *out, const json_t *latest) {
    fprintf(out,
            "<table><tr><th>model</th><th>variant</th><th>pattern set</th><th>fidelity</th>"
            "<th>baseline tok/s</th><th>patched tok/s</th><th>speedup</th><th>GB/s</th>"
            "<th>roofline</th><th>backend</th><th>date</th><th>commit</th><th>notes</th></tr>\n");
    size_t i;
    const json_t *e;
    json_array_foreach(latest, i, e) {
        char verdict[32];
        zfmt_verdict(verdict, sizeof verdict, zj_str(e, "fidelity", "?"),
                     zj_str(e, "fidelity_detail", ""));
        const char *cols[] = {zj_str(e, "model_id", "?"), zj_str(e, "variant", "-"), set_of(e),
                              verdict};
        fprintf(out, "<tr>");
        for (int c = 0; c < 4; c++) {
            fprintf(out, c == 2 ? "<td class=\"set\">" : "<td>");
            for (const char *p = cols[c]; c == 2 && *p; p++) { /* break lines after commas */
                char ch[2] = {*p, 0};
                esc(out, ch);
                if (*p == ',') fputs("<wbr>", out);
            }
            if (c != 2) esc(out, cols[c]);
            fprintf(out, "</td>");
        }
        const double nums[] = {zj_num(e, "decode_tps_baseline", NAN),
                               zj_num(e, "decode_tps_patched", NAN),
                               zj_num(e, "decode_speedup", NAN), zj_num(e, "achieved_GBps", NAN),
                               100 * zj_num(e, "roofline_fraction", NAN)};
        for (int c = 0; c < 5; c++) {
            if (!isfinite(nums[c]))
                fprintf(out, "<td class=\"n\">-</td>");
            else if (c == 2)
                fprintf(out, "<td class=\"n\">%.3fx</td>", nums[c]);
            else if (c == 4)
                fprintf(out, "<td class=\"n\">%.1f%%</td>", nums[c]);
            else
                fprintf(out, "<td class=\"n\">%.2f</td>", nums[c]);
        }
        const char *tail[] = {zj_str(e, "backend", "?"), zj_str(e, "timestamp", "?"),
                              zj_str(e, "zmlx_commit", "?"), zj_str(e, "notes", "")};
        for (int c = 0; c < 4; c++) {
            fprintf(out, c == 3 ? "<td class=\"notes\">" : "<td>");
            esc(out, tail[c]);
            fprintf(out, "</td>");
        }
        fprintf(out, "</tr>\n");
    }
    fprintf(out, "</table>\n");
}

void zmatrix_html(FILE *out, const json_t *entries, const char *ledger_name) {
    json_t *latest = zmatrix_latest(entries), *models = json_array();
    size_t i;
    const json_t *e;
    json_array_foreach(entries, i, e) intern(models, zj_str(e, "model_id", "?"));
    fprintf(out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            "<title>zmlx matrix</title>\n<style>\n"
            "body{font:14px/1.45 -apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;"
            "color:#1b1b1b;background:#fff}\nh1{font-size:22px;margin:0 0 6px}h2{font-size:17px;"
            "margin:28px 0 8px}h3{font-size:14px;margin:18px 0 4px;font-family:monospace}\n"
            ".note{color:#555;font-size:12px;max-width:1100px}\ntable{border-collapse:collapse;"
            "font-size:12px}td,th{border:1px solid #d8d8d8;padding:3px 7px;text-align:left;"
            "vertical-align:top}td.set{font-size:11px;color:#444}td.notes{min-width:24em;"
            "font-size:11px;color:#444}"
            "th{background:#f2f2f2}td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
            "svg{display:block;margin:6px 0}\n</style></head>\n<body>\n<h1>zmlx matrix</h1>\n"
            "<p class=\"note\">Ledger <code>");
    esc(out, ledger_name ? ledger_name : "");
    fprintf(out,
            "</code>: %zu entries, %zu models, %zu model &times; pattern set combinations. "
            "Speedup = median patched / median unpatched decode tok/s of one bench (greedy, "
            "batch 1, interleaved runs); &ldquo;~&rdquo; (and a pale colour) marks a change "
            "inside the baseline noise band (its runs' (max&minus;min)/median); a red border "
            "marks a fidelity FAIL. Hover a cell or point for details."
            "</p>\n<h2>Decode speedup (latest entry per model &times; pattern set)</h2>\n",
            json_array_size(entries), json_array_size(models), json_array_size(latest));
    if (json_array_size(latest))
        heatmap(out, latest, entries);
    else
        fprintf(out, "<p>The ledger has no entries yet.</p>\n");
    fprintf(out, "<h2>Decode tok/s over time (bench runs, oldest left)</h2>\n");
    json_array_foreach(models, i, e) {
        fprintf(out, "<h3>");
        esc(out, json_string_value(e));
        fprintf(out, "</h3>\n");
        time_chart(out, entries, json_string_value(e));
    }
    fprintf(out, "<h2>Latest entries</h2>\n");
    latest_table(out, latest);
    fprintf(out, "</body></html>\n");
    json_decref(models);
    json_decref(latest);
}
