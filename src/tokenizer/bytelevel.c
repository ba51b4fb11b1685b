/*
 * bytelevel.c — the GPT-2 byte <-> unicode alphabet behind the ByteLevel pre-tokenizer
 * and decoder, plus the small UTF-8 and White_Space helpers the module shares.
 *
 * GPT-2's bytes_to_unicode(): the printable bytes 0x21-0x7E, 0xA1-0xAC and 0xAE-0xFF
 * stand for themselves; the other 68 bytes (0x00-0x20, 0x7F-0xA0, 0xAD), in increasing
 * order, become U+0100 + n.  So ' ' (0x20) is U+0120 'Ġ' and '\n' is U+010A 'Ċ'.
 * Computed arithmetically: no table, no state.
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

static int tok_byte_is_self(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t tok_byte_to_cp(unsigned char b) {
    if (tok_byte_is_self(b)) return b;
    if (b <= 0x20) return 256u + b;                 /* n = 0..32 */
    if (b <= 0xA0) return 256u + 33u + (b - 0x7Fu); /* n = 33..66 */
    return 256u + 67u;                              /* 0xAD */
}

int tok_cp_to_byte(uint32_t cp) {
    if (cp < 256) return tok_byte_is_self(cp) ? (int)cp : -1;
    if (cp > 256 + 67) return -1;
    uint32_t n = cp - 256;
    if (n <= 32) return (int)n;
    if (n <= 66) return (int)(0x7F + (n - 33));
    return 0xAD;
}

size_t tok_bytelevel_map(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = tok_byte_to_cp((unsigned char)s[i]);
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else { /* every alphabet char is below U+0800: two bytes */
            out[o++] = (char)(0xC0 | (cp >> 6));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return o;
}

size_t tok_utf8_dec(const char *s, size_t n, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0) return 0;
    unsigned c = u[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len) return 0;
    if (u[1] < lo || u[1] > hi) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (u[i] & 0x3F);
    }
    if (v < min) return 0;
    *cp = v;
    return len;
}

size_t tok_utf8_dec_prev(const char *s, size_t end, uint32_t *cp) {
    for (size_t k = 1; k <= 4 && k <= end; k++) {
        unsigned c = (unsigned char)s[end - k];
        if ((c & 0xC0) != 0x80) {
            size_t l = tok_utf8_dec(s + end - k, k, cp);
            return l == k ? l : 0;
        }
    }
    return 0;
}

size_t tok_utf8_step(const char *s, size_t n) {
    uint32_t cp;
    size_t l = tok_utf8_dec(s, n, &cp);
    return l ? l : 1;
}

size_t tok_utf8_enc(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int tok_is_white_space(uint32_t cp) {
    /* PropList.txt White_Space, the set Rust's char::is_whitespace and regex \s use */
    if (cp >= 0x09 && cp <= 0x0D) return 1;
    if (cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680) return 1;
    if (cp >= 0x2000 && cp <= 0x200A) return 1;
    return cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

int tok_grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2) return -1;
        c *= 2;
    }
    if (c > SIZE_MAX / size) return -1;
    void *q = realloc(*p, c * size);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}
