/*
 * tiktoken_bpe.c — encoding with a tiktoken tokenizer, exactly as tokenization_kimi.py's
 * encode() calls tiktoken:
 *
 *   1. the text is cut into windows of 400,000 chars, and each window so that no run of
 *      whitespace or of non-whitespace chars (Python str.isspace) is longer than 25,000;
 *   2. each part is encoded on its own: specials found in it (parse_special = 1,
 *      allowed_special="all"; with 0 they are plain text, disallowed_special=()), the text
 *      between them split by the Kimi pattern (kimi_regex.c);
 *   3. each piece: its id if the whole piece is a token, else byte-pair merging by rank:
 *      starting from single bytes, merge the adjacent pair whose concatenation has the
 *      lowest rank (the leftmost among equals) until no pair is a token.
 *
 * Step 3 is tiktoken's _byte_pair_merge done with a heap (O(n log n) for long pieces): a
 * candidate is (rank of the concatenation, left position); it is stale when either side
 * has grown since, which shows as a different total length.  Ranks are unique per byte
 * string, so the order of merges — and the ids — are tiktoken's.
 * Invalid UTF-8 (which a Python str cannot hold) is encoded byte-wise: the pattern never
 * matches it, and the bytes between matches are merged like a piece.  A char here is a
 * valid UTF-8 sequence or one invalid byte.
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

#define TOK_TK_WINDOW 400000 /* chars: TIKTOKEN_MAX_ENCODE_CHARS of tokenization_kimi.py */
#define TOK_TK_RUN 25000     /* chars: MAX_NO_WHITESPACES_CHARS */

int tok_py_isspace(uint32_t cp) {
    /* bidirectional class WS, B or S, or category Zs (stable since Unicode 6.3) */
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* ------------------------------------------------------------ one piece */

static int32_t tok_rank(const tok_tiktoken *tk, const char *s, size_t n) {
    return tok_strmap_get(&tk->ranks, s, n);
}

/* Candidate merge of sy[pos] with its right neighbour, if their bytes form a token. */
static void tok_tk_candidate(const tok_tiktoken *tk, const char *w, const tok_sym *sy, int32_t pos,
                             tok_heap_item *h, size_t *nh) {
    if (pos < 0 || sy[pos].next < 0) return;
    uint32_t len = sy[pos].len + sy[sy[pos].next].len;
    int32_t r = tok_rank(tk, w + pos, len);
    if (r >= 0) tok_heap_push(h, nh, (tok_heap_item){(uint32_t)r, (uint32_t)pos, (int32_t)len});
}

zmlx_status tok_tk_piece(const tok_tiktoken *tk, tok_scratch *sc, const char *w, size_t n,
                         tok_out *out) {
    if (n == 0) return ZMLX_OK;
    int32_t whole = tok_rank(tk, w, n);
    if (whole >= 0) {
        tok_out_push(out, whole);
        return ZMLX_OK;
    }
    if (n >= UINT32_MAX / 4) return ZMLX_ERR_LIMIT;
    /* one symbol per byte; a symbol's index is the offset of its first byte */
    if (tok_grow((void **)&sc->syms, &sc->syms_cap, n, sizeof *sc->syms) ||
        tok_grow((void **)&sc->heap, &sc->heap_cap, 3 * n, sizeof *sc->heap))
        return ZMLX_ERR_NOMEM;
    tok_sym *sy = sc->syms;
    tok_heap_item *h = sc->heap;
    size_t nh = 0;
    for (size_t i = 0; i < n; i++)
        sy[i] =
            (tok_sym){tok_rank(tk, w + i, 1), (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, 1};
    for (size_t i = 0; i + 1 < n; i++)
        tok_tk_candidate(tk, w, sy, (int32_t)i, h, &nh);
    /* heap item: rank, left position, and (in `id`) the byte length the pair had */
    while (nh) {
        tok_heap_item top = tok_heap_pop(h, &nh);
        tok_sym *cur = &sy[top.pos];
        if (cur->len == 0 || cur->next < 0 || cur->len + sy[cur->next].len != (uint32_t)top.id)
            continue; /* stale: one side merged since */
        tok_sym *right = &sy[cur->next];
        cur->id = (int32_t)top.rank;
        cur->len += right->len;
        cur->next = right->next;
        right->len = 0;
        if (cur->next >= 0) sy[cur->next].prev = (int32_t)top.pos;
        tok_tk_candidate(tk, w, sy, cur->prev, h, &nh);
        tok_tk_candidate(tk, w, sy, (int32_t)top.pos, h, &nh);
    }
    for (size_t i = 0; i < n; i++)
        if (sy[i].len) tok_out_push(out, sy[i].id);
    return ZMLX_OK;
}

/* ------------------------------------------------------------ one part */

/* Text without specials: regex pieces; unmatched bytes (invalid UTF-8) merged as pieces. */
static zmlx_status tok_tk_segment(const tok_tiktoken *tk, tok_scratch *sc, const char *s, size_t n,
                                  tok_out *out) {
    tok_regex_iter it = {0, 0};
    size_t done = 0, ms, me;
    zmlx_status st = ZMLX_OK;
    for (;;) {
        int rc = tok_regex_next(tk->re, s, n, &it, sc, &ms, &me);
        if (rc < 0) return ZMLX_ERR_UNSUPPORTED; /* PCRE2 ran into one of its limits */
        if (rc == 0) break;
        if (ms > done && (st = tok_tk_piece(tk, sc, s + done, ms - done, out))) return st;
        if ((st = tok_tk_piece(tk, sc, s + ms, me - ms, out))) return st;
        done = me;
    }
    return done < n ? tok_tk_piece(tk, sc, s + done, n - done, out) : ZMLX_OK;
}

/* The special token starting at s[0..n), longest first (no special is a prefix of another,
 * checked at load, so this is tiktoken's match too): its id and length, or -1. */
static int32_t tok_tk_special_at(const tok_tiktoken *tk, const char *s, size_t n, size_t *len) {
    const tok_strmap *m = &tk->specials;
    for (size_t i = 0; i < m->n_ents; i++) {
        const tok_strent *en = &m->ents[i];
        if (en->len <= n && memcmp(m->pool + en->off, s, en->len) == 0) {
            *len = en->len;
            return en->val;
        }
    }
    return -1;
}

static zmlx_status tok_tk_part(const tok_tiktoken *tk, tok_scratch *sc, const char *s, size_t n,
                               int parse_special, tok_out *out) {
    size_t start = 0;
    for (size_t i = 0; parse_special && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t len;
        int32_t id;
        if (!(tk->special_first[c >> 3] & (1u << (c & 7))) ||
            (id = tok_tk_special_at(tk, s + i, n - i, &len)) < 0)
            continue;
        zmlx_status st = tok_tk_segment(tk, sc, s + start, i - start, out);
        if (st) return st;
        tok_out_push(out, id);
        start = i + len;
        i = start - 1;
    }
    return tok_tk_segment(tk, sc, s + start, n - start, out);
}

/* ------------------------------------------------------------ the whole text */

/* One char at s[0..n): its byte length and whether Python's isspace() holds for it. */
static size_t tok_tk_char(const char *s, size_t n, int *space) {
    uint32_t cp;
    size_t l = tok_utf8_dec(s, n, &cp);
    *space = l && tok_py_isspace(cp);
    return l ? l : 1;
}

/* tokenization_kimi.py's _split_whitespaces_or_nonwhitespaces over one window. */
static zmlx_status tok_tk_window(const tok_tiktoken *tk, tok_scratch *sc, const char *s, size_t n,
                                 int parse_special, tok_out *out) {
    size_t start = 0, run = 0;
    int run_space = 0;
    if (n) tok_tk_char(s, n, &run_space);
    for (size_t i = 0; i < n;) {
        int space;
        size_t l = tok_tk_char(s + i, n - i, &space);
        if (space != run_space) {
            run = 1;
            run_space = space;
        } else if (++run > TOK_TK_RUN) {
            zmlx_status st = tok_tk_part(tk, sc, s + start, i - start, parse_special, out);
            if (st) return st;
            start = i;
            run = 1;
        }
        i += l;
    }
    return tok_tk_part(tk, sc, s + start, n - start, parse_special, out);
}

zmlx_status tok_tk_encode(const zmlx_tokenizer *t, tok_scratch *sc, const char *s, size_t n,
                          int parse_special, tok_out *out) {
    for (size_t start = 0; start < n;) {
        size_t end = start;
        for (size_t chars = 0; end < n && chars < TOK_TK_WINDOW; chars++) {
            int space;
            end += tok_tk_char(s + end, n - end, &space);
        }
        zmlx_status st = tok_tk_window(t->tk, sc, s + start, end - start, parse_special, out);
        if (st) return st;
        start = end;
    }
    return ZMLX_OK;
}
