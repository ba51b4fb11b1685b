/*
 * pyjson.c — CPython json.dump formatting over jansson values (see pyjson.h).
 */
#include "io/pyjson.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool bad; /* out of memory or a value JSON cannot hold */
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->bad) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->bad = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

void zpyjson_float_repr(double x, char *buf, size_t n) {
    if (x == 0.0) {
        snprintf(buf, n, "%s", signbit(x) ? "-0.0" : "0.0");
        return;
    }
    /* the shortest %.{p-1}e that reads back as x: digits d1..dp and decimal exponent E */
    char tmp[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, x);
        if (strtod(tmp, NULL) == x) break;
    }
    const char *s = tmp;
    char sign[2] = {0};
    if (*s == '-') {
        sign[0] = '-';
        s++;
    }
    char dig[24];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.') dig[nd++] = *s;
    while (nd > 1 && dig[nd - 1] == '0') nd--; /* %.{p}e never pads here, but be sure */
    dig[nd] = '\0';
    int E = atoi(s + 1);
    if (E < -4 || E >= 16) {
        /* d[.ddd]e[+-]XX */
        snprintf(buf, n, "%s%c%s%.*se%c%02d", sign, dig[0], nd > 1 ? "." : "", nd - 1, dig + 1,
                 E < 0 ? '-' : '+', E < 0 ? -E : E);
    } else if (E >= 0) {
        char ip[24], fp[24];
        int ni = E + 1;
        for (int i = 0; i < ni; i++) ip[i] = i < nd ? dig[i] : '0';
        ip[ni] = '\0';
        if (nd > ni) snprintf(fp, sizeof fp, "%s", dig + ni);
        else snprintf(fp, sizeof fp, "0");
        snprintf(buf, n, "%s%s.%s", sign, ip, fp);
    } else { /* -4 <= E < 0: 0.000ddd */
        snprintf(buf, n, "%s0.%.*s%s", sign, -E - 1, "000", dig);
    }
}

/* Decode one UTF-8 sequence (jansson strings are valid UTF-8). */
static uint32_t utf8_next(const unsigned char **s) {
    const unsigned char *p = *s;
    uint32_t c = p[0];
    int len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (len > 1) c &= 0x3fu >> (len - 1);
    for (int i = 1; i < len; i++) c = (c << 6) | (p[i] & 0x3fu);
    *s = p + len;
    return c;
}

static void put_str(sbuf *b, const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    char u[16];
    put(b, "\"", 1);
    while (s < end) {
        uint32_t c = utf8_next(&s);
        switch (c) {
        case '"': puts_(b, "\\\""); continue;
        case '\\': puts_(b, "\\\\"); continue;
        case '\n': puts_(b, "\\n"); continue;
        case '\r': puts_(b, "\\r"); continue;
        case '\t': puts_(b, "\\t"); continue;
        case '\b': puts_(b, "\\b"); continue;
        case '\f': puts_(b, "\\f"); continue;
        default: break;
        }
        if (c >= 0x20 && c < 0x7f) {
            char ch = (char)c;
            put(b, &ch, 1);
        } else if (c < 0x10000) {
            snprintf(u, sizeof u, "\\u%04x", c);
            puts_(b, u);
        } else {
            uint32_t v = c - 0x10000;
            snprintf(u, sizeof u, "\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
            puts_(b, u);
        }
    }
    put(b, "\"", 1);
}

static void newline(sbuf *b, int indent, int depth) {
    if (indent <= 0) return;
    put(b, "\n", 1);
    for (int i = 0; i < indent * depth; i++) put(b, " ", 1);
}

static int cmp_keys(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void dump(sbuf *b, const json_t *v, int indent, int depth, bool sort) {
    char num[48];
    const char *sep = indent > 0 ? "," : ", ";
    switch (json_typeof(v)) {
    case JSON_NULL: puts_(b, "null"); return;
    case JSON_TRUE: puts_(b, "true"); return;
    case JSON_FALSE: puts_(b, "false"); return;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        puts_(b, num);
        return;
    case JSON_REAL:
        if (!isfinite(json_real_value(v))) {
            b->bad = true;
            return;
        }
        zpyjson_float_repr(json_real_value(v), num, sizeof num);
        puts_(b, num);
        return;
    case JSON_STRING: put_str(b, json_string_value(v), json_string_length(v)); return;
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (n == 0) {
            puts_(b, "[]");
            return;
        }
        puts_(b, "[");
        for (size_t i = 0; i < n; i++) {
            if (i) puts_(b, sep);
            newline(b, indent, depth + 1);
            dump(b, json_array_get(v, i), indent, depth + 1, false);
        }
        newline(b, indent, depth);
        puts_(b, "]");
        return;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        if (n == 0) {
            puts_(b, "{}");
            return;
        }
        const char **keys = malloc(n * sizeof *keys);
        if (!keys) {
            b->bad = true;
            return;
        }
        size_t k = 0;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) keys[k++] = key;
        if (sort) qsort(keys, n, sizeof *keys, cmp_keys);
        puts_(b, "{");
        for (size_t i = 0; i < n; i++) {
            if (i) puts_(b, sep);
            newline(b, indent, depth + 1);
            put_str(b, keys[i], strlen(keys[i]));
            puts_(b, ": ");
            dump(b, json_object_get(v, keys[i]), indent, depth + 1, false);
        }
        free(keys);
        newline(b, indent, depth);
        puts_(b, "}");
        return;
    }
    }
}

char *zpyjson_dumps(const json_t *v, int indent, bool sort_top_keys) {
    sbuf b = {0};
    dump(&b, v, indent, 0, sort_top_keys);
    if (b.bad) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
