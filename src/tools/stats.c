/*
 * stats.c — small helpers the harness views share: tolerant JSON accessors (a missing
 * or null field gives the default), median and relative spread of a list of rates, and
 * the wording of a change against the noise band and of a verdict ("SKIP(RAM)").
 */
#include "tools/harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double zj_num(const json_t *o, const char *key, double def) {
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_number(v) ? json_number_value(v) : def;
}

const char *zj_str(const json_t *o, const char *key, const char *def) {
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : def;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The finite numbers of a JSON array, sorted; returns how many (at most cap). */
static size_t sorted_values(const json_t *arr, double *v, size_t cap) {
    size_t n = 0, i;
    const json_t *x;
    if (!json_is_array(arr)) return 0;
    json_array_foreach(arr, i, x) {
        if (n < cap && json_is_number(x) && isfinite(json_number_value(x)))
            v[n++] = json_number_value(x);
    }
    qsort(v, n, sizeof *v, cmp_double);
    return n;
}

double zstats_median(const json_t *values) {
    double v[256];
    size_t n = sorted_values(values, v, 256);
    if (n == 0) return NAN;
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double zstats_spread(const json_t *values) {
    double v[256];
    size_t n = sorted_values(values, v, 256);
    if (n < 2) return NAN;
    double med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return med > 0 ? (v[n - 1] - v[0]) / med : NAN;
}

void zfmt_change(char *buf, size_t n, double change, double noise_band) {
    if (!isfinite(change)) {
        snprintf(buf, n, "-");
        return;
    }
    bool neutral = isfinite(noise_band) && fabs(change) <= noise_band;
    snprintf(buf, n, "%+.1f%%%s", 100.0 * change, neutral ? " neutral" : "");
}

void zfmt_verdict(char *buf, size_t n, const char *verdict, const char *detail) {
    if (!strcmp(verdict, "SKIP") && detail && !strncmp(detail, "SKIP(", 5)) {
        size_t len = strcspn(detail, ")");
        snprintf(buf, n, "%.*s", (int)(detail[len] ? len + 1 : len), detail);
        return;
    }
    snprintf(buf, n, "%s", verdict);
}
