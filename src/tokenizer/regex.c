/*
 * regex.c — the regexes of tokenizer.json, written for Oniguruma (HF compiles them with
 * the onig crate), run with PCRE2 in UTF + UCP mode.
 *
 * The two engines mostly agree; where they do not, the pattern is rewritten or refused:
 *   \s \S      onig: Unicode White_Space; PCRE2 adds U+180E  -> \p{White_Space} / \P{...}
 *   \d \D      onig: Nd                                      -> \p{Nd} / \P{Nd} (+ Unicode 16)
 *   \w \W      onig: Alphabetic|M|Nd|Pc and ²³¹¼½¾           -> that class spelled out
 *   \b \B      word boundary on that \w                      -> lookarounds
 *   \h \H      onig: hex digit; PCRE2: horizontal space      -> [0-9a-fA-F]
 *   \v         onig: vertical tab                            -> \x0b
 *   \uHHHH     onig only                                     -> \x{HHHH}
 *   \p{gc}     onig: Unicode 16; PCRE2 10.42: Unicode 14     -> + ranges from unicode.c
 *   (?m)       onig (Ruby): dot matches newline              -> (?s)
 *   {,n}       onig: {0,n}; PCRE2 10.42: literal             -> {0,n}
 *   ^ $        onig: line anchors                            -> PCRE2_MULTILINE, newline LF
 * Refused: scripts and binary properties other than White_Space (their Unicode 16 data is
 * not here), nested classes, && in classes, POSIX brackets, backreferences, \X, \W or
 * \H inside a class, {n}? and {n,m}+ (other meanings), option letters other than i/m.
 * Remaining difference: onig's multi-char case folding under (?i) ("ss" vs "\u00df"),
 * which the GLM/DeepSeek patterns cannot hit.  Every class above was checked code point
 * by code point against HF tokenizers 0.23.2.
 * Subjects may be invalid UTF-8 (PCRE2_MATCH_INVALID_UTF): invalid bytes never match
 * anything, so they end up in the unmatched pieces.
 */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tok_rbuf {
    char *p;
    size_t n, cap;
    int oom;
} tok_rbuf;

static void rb_put(tok_rbuf *b, const char *s, size_t n) {
    if (b->oom || tok_grow((void **)&b->p, &b->cap, b->n + n + 1, 1)) {
        b->oom = 1;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void rb_puts(tok_rbuf *b, const char *s) {
    rb_put(b, s, strlen(s));
}

static const uint32_t tok_copts =
    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_MULTILINE | PCRE2_NEVER_BACKSLASH_C;

static int tok_in(const char *set, char c) {
    return c && strchr(set, c);
}

static pcre2_code *tok_pcre_compile(const char *p, size_t n, uint32_t extra, int *errc,
                                    size_t *erro) {
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc) {
        *errc = PCRE2_ERROR_NOMEMORY;
        *erro = 0;
        return NULL;
    }
    pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    PCRE2_SIZE off = 0;
    uint32_t opts =
        extra & PCRE2_LITERAL ? PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | extra : tok_copts | extra;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)p, n, opts, errc, &off, cc);
    pcre2_compile_context_free(cc);
    *erro = off;
    return re;
}

/* \p{X} / \P{X} / \p{^X}: p points after the backslash.  General categories get the
 * Unicode 16 corrections of unicode.c; White_Space and Any are the same in both engines;
 * anything else (scripts, binary properties) is refused.  Returns chars consumed or 0. */
static size_t tok_tr_prop(const char *p, size_t n, int in_class, tok_rbuf *b, const char **why) {
    if (n < 3 || p[1] != '{') return 0;
    const char *close = memchr(p + 2, '}', n - 2);
    if (!close) return 0;
    int neg = p[0] == 'P';
    const char *name = p + 2;
    size_t len = (size_t)(close - name);
    if (len && name[0] == '^') neg = !neg, name++, len--;
    size_t used = (size_t)(close - p) + 1;
    char gc[3], key[16] = "";
    for (size_t i = 0, k = 0; i < len && k + 1 < sizeof key; i++)
        if (name[i] != '_' && name[i] != ' ' && name[i] != '-')
            key[k++] = (char)(name[i] | 0x20), key[k] = '\0';
    if (strcmp(key, "whitespace") == 0 || strcmp(key, "wspace") == 0 || strcmp(key, "space") == 0 ||
        strcmp(key, "any") == 0) {
        rb_puts(b, neg ? "\\P{" : "\\p{");
        rb_puts(b, key[0] == 'a' ? "Any}" : "White_Space}");
        return used;
    }
    if (!tok_gc_name(name, len, gc)) {
        *why = "a \\p{...} property other than a general category or White_Space";
        return used;
    }
    /* \p{gc} = PCRE2's gc + what entered it - what left it; \P{gc} the other way round */
    char plus[TOK_UNI_MAX], minus[TOK_UNI_MAX], base[16];
    tok_uni_ranges(gc, !neg, plus, sizeof plus);
    tok_uni_ranges(gc, neg, minus, sizeof minus);
    snprintf(base, sizeof base, "\\%c{%s}", neg ? 'P' : 'p', gc);
    if (in_class) {
        if (minus[0]) *why = "a \\p{...} inside a class that would need Unicode 16 subtraction";
        rb_puts(b, base);
        rb_puts(b, plus);
        return used;
    }
    if (minus[0]) {
        rb_puts(b, "(?:(?![");
        rb_puts(b, minus);
        rb_puts(b, "])");
    }
    if (plus[0]) rb_puts(b, "[");
    rb_puts(b, base);
    if (plus[0]) {
        rb_puts(b, plus);
        rb_puts(b, "]");
    }
    if (minus[0]) rb_puts(b, ")");
    return used;
}

/* Rewrite an Oniguruma pattern for PCRE2; NULL + *why when it cannot be done exactly. */
static char *tok_translate(const char *p, size_t n, const char **why) {
    tok_rbuf b = {0}, wb = {0}, nw = {0}, bb = {0}, nb = {0};
    char word[TOK_UNI_MAX + 64], cword[TOK_UNI_MAX + 64];
    tok_word_class(word, sizeof word, TOK_WORD_ONIG);
    tok_word_class(cword, sizeof cword, TOK_WORD_ONIG_CLASS);
    const char *parts_b[] = {"(?:(?<=[", word,     "])(?![", word, "])|(?<![",
                             word,       "])(?=[", word,     "]))"};
    const char *parts_nb[] = {"(?:(?<=[", word,     "])(?=[", word, "])|(?<![",
                              word,       "])(?![", word,     "]))"};
    rb_puts(&wb, "[");
    rb_puts(&wb, word);
    rb_puts(&wb, "]");
    for (size_t k = 0; k < 9; k++)
        rb_puts(&bb, parts_b[k]), rb_puts(&nb, parts_nb[k]);
    rb_puts(&nw, "[^");
    rb_puts(&nw, word);
    rb_puts(&nw, "]");
    int in_class = 0; /* inside [...] */
    size_t class_start = 0;
    for (size_t i = 0; i < n && !*why;) {
        char c = p[i];
        if (c == '\\') {
            if (i + 1 >= n) {
                *why = "trailing backslash";
                break;
            }
            char d = p[i + 1];
            const char *rep = NULL;
            switch (d) {
            case 's': rep = "\\p{White_Space}"; break;
            case 'S': rep = "\\P{White_Space}"; break;
            case 'd':
            case 'D': /* Nd, with the Unicode 16 digits */
                tok_tr_prop(d == 'd' ? "p{Nd}" : "P{Nd}", 5, in_class, &b, why);
                i += 2;
                continue;
            case 'v': rep = "\\x0b"; break;
            case 'w': rep = in_class ? cword : wb.p; break;
            case 'h': rep = in_class ? "0-9a-fA-F" : "[0-9a-fA-F]"; break;
            case 'W':
                if (in_class) *why = "\\W inside a character class";
                rep = nw.p;
                break;
            case 'H':
                if (in_class) *why = "\\H inside a character class";
                rep = "[^0-9a-fA-F]";
                break;
            case 'b':
                if (!in_class) rep = bb.p;
                break;
            case 'B':
                if (in_class) *why = "\\B inside a character class";
                rep = nb.p;
                break;
            case 'X': *why = "\\X (grapheme clusters differ between engines)"; break;
            case 'k':
            case 'g': *why = "backreferences and subroutine calls"; break;
            case 'p':
            case 'P': {
                size_t used = tok_tr_prop(p + i + 1, n - i - 1, in_class, &b, why);
                if (!used) {
                    *why = "malformed \\p{...}";
                    break;
                }
                i += 1 + used;
                continue;
            }
            case 'x':
            case 'o': {
                /* \x{HHHH} / \o{ooo}: copy whole, so the braces are not read as a quantifier */
                const char *close =
                    i + 2 < n && p[i + 2] == '{' ? memchr(p + i + 2, '}', n - i - 2) : NULL;
                if (!close) break;
                rb_put(&b, p + i, (size_t)(close - (p + i)) + 1);
                i = (size_t)(close - p) + 1;
                continue;
            }
            case 'u': {
                size_t k = 0;
                while (k < 4 && i + 2 + k < n && tok_in("0123456789abcdefABCDEF", p[i + 2 + k]))
                    k++;
                if (k != 4) {
                    *why = "\\u needs four hex digits";
                    break;
                }
                char tmp[16];
                snprintf(tmp, sizeof tmp, "\\x{%.4s}", p + i + 2);
                rb_puts(&b, tmp);
                i += 6;
                continue;
            }
            default:
                if (d >= '1' && d <= '9') *why = "backreferences";
                break;
            }
            if (*why) break;
            if (rep) {
                rb_puts(&b, rep);
            } else {
                rb_put(&b, p + i, 2);
            }
            i += 2;
            continue;
        }
        if (in_class) {
            if (c == '[') {
                *why = i + 1 < n && p[i + 1] == ':' ? "POSIX bracket expressions"
                                                    : "nested character classes";
                break;
            }
            if (c == '&' && i + 1 < n && p[i + 1] == '&') {
                *why = "&& (class intersection)";
                break;
            }
            /* a ']' right after '[' or '[^' is a literal in both engines */
            if (c == ']' && i > class_start) in_class = 0;
            rb_put(&b, &c, 1);
            i++;
            continue;
        }
        if (c == '[') {
            in_class = 1;
            rb_put(&b, &c, 1);
            i++;
            if (i < n && p[i] == '^') rb_put(&b, p + i++, 1);
            class_start = i;
            continue;
        }
        if (c == '(' && i + 2 < n && p[i + 1] == '?' && tok_in("imx-", p[i + 2])) {
            /* inline options: (?i), (?m-i:...), ... */
            size_t k = i + 2;
            rb_puts(&b, "(?");
            while (k < n && tok_in("imx-", p[k])) {
                if (p[k] == 'x') {
                    *why = "the x (extended) option";
                    break;
                }
                rb_put(&b, p[k] == 'm' ? "s" : p + k, 1);
                k++;
            }
            if (!*why && (k >= n || (p[k] != ')' && p[k] != ':')))
                *why = "unknown inline option letter";
            i = k;
            continue;
        }
        if (c == '{') {
            /* {,n} -> {0,n}; {n}? and {n,m}+ mean other things in Oniguruma */
            size_t k = i + 1;
            int comma = 0, digits = 0;
            while (k < n && ((p[k] >= '0' && p[k] <= '9') || p[k] == ',')) {
                comma += p[k] == ',';
                digits += p[k] != ',';
                k++;
            }
            if (k < n && p[k] == '}' && comma <= 1 && digits > 0) {
                if (k + 1 < n && ((!comma && p[k + 1] == '?') || (comma && p[k + 1] == '+'))) {
                    *why = comma ? "{n,m}+ (not possessive in Oniguruma)"
                                 : "{n}? (means (?:x{n})? in Oniguruma)";
                    break;
                }
                if (p[i + 1] == ',')
                    rb_puts(&b, "{0");
                else
                    rb_put(&b, "{", 1);
                rb_put(&b, p + i + 1, k - i);
                i = k + 1;
                continue;
            }
        }
        rb_put(&b, &c, 1);
        i++;
    }
    if (!*why && in_class) *why = "unterminated character class";
    if (!*why && (b.oom || wb.oom || nw.oom || bb.oom || nb.oom)) *why = "out of memory";
    free(wb.p);
    free(nw.p);
    free(bb.p);
    free(nb.p);
    if (*why) {
        free(b.p);
        return NULL;
    }
    if (!b.p) rb_put(&b, "", 0);
    return b.p;
}

zmlx_status tok_regex_compile(const char *pat, size_t len, int mode, const char *field,
                              pcre2_code **out, zerr *e) {
    char q[80];
    const char *why = NULL;
    char *tr = NULL;
    const char *src = pat; /* as written, for messages */
    size_t src_len = len;
    *out = NULL;
    if (mode == TOK_RE_ONIG) {
        if (!(tr = tok_translate(pat, len, &why)))
            return zerr_set(e, ZMLX_ERR_UNSUPPORTED, "%s: regex %s uses %s, which is not supported",
                            field, tok_quote(pat, len, q, sizeof q), why);
        pat = tr;
        len = strlen(tr);
    }
    int errc;
    size_t erro;
    pcre2_code *re =
        tok_pcre_compile(pat, len, mode == TOK_RE_LITERAL ? PCRE2_LITERAL : 0, &errc, &erro);
    free(tr);
    if (!re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(errc, msg, sizeof msg);
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED, "%s: regex %s is not supported by PCRE2: %s",
                        field, tok_quote(src, src_len, q, sizeof q), (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* the interpreter stays as a fallback */
    *out = re;
    return ZMLX_OK;
}

static int tok_match(const pcre2_code *re, const char *s, size_t n, size_t start, uint32_t opts,
                     tok_scratch *sc) {
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, start, opts, sc->md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re, (PCRE2_SPTR)s, n, start, opts | PCRE2_NO_JIT, sc->md, NULL);
    return rc;
}

int tok_regex_next(const pcre2_code *re, const char *s, size_t n, tok_regex_iter *it,
                   tok_scratch *sc, size_t *ms, size_t *me) {
    for (;;) {
        if (it->last_end > n) return 0;
        int rc = tok_match(re, s, n, it->last_end, 0, sc);
        if (rc == PCRE2_ERROR_NOMATCH) return 0;
        if (rc < 0) return rc;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
        size_t st = ov[0], en = ov[1];
        if (st > en || en > n) return PCRE2_ERROR_INTERNAL; /* \K tricks */
        it->last_end = en;
        if (st == en) { /* never accept an empty match right after a match */
            it->last_end += en < n ? tok_utf8_step(s + en, n - en) : 1;
            if (it->skip_next_empty) {
                it->skip_next_empty = 0;
                continue;
            }
        } else {
            it->skip_next_empty = 1;
        }
        *ms = st;
        *me = en;
        return 1;
    }
}

int tok_regex_match_at(const pcre2_code *re, const char *s, size_t n, tok_scratch *sc) {
    int rc = tok_match(re, s, n, 0, PCRE2_ANCHORED, sc);
    return rc >= 0;
}
