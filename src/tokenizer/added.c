/*
 * added.c — added tokens (`added_tokens`: special tokens such as "[gMASK]" and any
 * user-added ones): loading them the way HF's AddedVocabulary does, and splitting the
 * raw text on them before pre-tokenization.
 *
 * Loading replays HF's add_tokens() one token at a time, so ids, flags and the two
 * match sets come out as HF computes them (the "id" written in the file is checked for
 * type only; HF also recomputes it).  Matching is leftmost-longest, non-overlapping, like
 * HF's Aho-Corasick: tokens with normalized=false are matched first on the raw text, then
 * tokens with normalized=true on what is left (the normalizer is always the identity).
 * With parse_special=0 a match of a special token is skipped, as HF's
 * encode_special_tokens does; non-special added tokens still match.
 * HF quirk kept: the search resumes at the end of a match, not after the whitespace its
 * rstrip swallowed, so a whitespace added token there is emitted too.  Even so the gaps
 * never overlap, which keeps zmlx_tokenizer_encode_bound() a bound.
 */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tok_added_free(tok_added *a) {
    tok_strmap_free(&a->content);
    tok_strmap_free(&a->special);
    free(a->toks);
    free(a->by_id);
    free(a->raw.nodes);
    free(a->norm.nodes);
    pcre2_code_free(a->word_re);
    memset(a, 0, sizeof *a);
}

static int tok_trie_new(tok_trie *tr, unsigned char byte) {
    if (tok_grow((void **)&tr->nodes, &tr->cap, tr->n + 1, sizeof *tr->nodes)) return -1;
    tr->nodes[tr->n] = (tok_trie_node){-1, -1, -1, byte};
    return (int)tr->n++;
}

static int tok_trie_add(tok_trie *tr, const char *s, size_t n, int32_t id) {
    if (!tr->n && tok_trie_new(tr, 0) < 0) return -1;
    int32_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int32_t ch = tr->nodes[cur].child;
        while (ch >= 0 && tr->nodes[ch].byte != c)
            ch = tr->nodes[ch].sibling;
        if (ch < 0) {
            int nn = tok_trie_new(tr, c);
            if (nn < 0) return -1;
            tr->nodes[nn].sibling = tr->nodes[cur].child;
            tr->nodes[cur].child = ch = nn;
        }
        cur = ch;
    }
    tr->first[(unsigned char)s[0] >> 3] |= (unsigned char)(1u << (s[0] & 7));
    if (tr->nodes[cur].term < 0) tr->nodes[cur].term = id; /* equal contents share one id */
    return 0;
}

/* Leftmost-longest match at or after `from`: 1 and [*ms, *me) with its id, or 0. */
static int tok_trie_find(const tok_trie *tr, const char *s, size_t n, size_t from, size_t *ms,
                         size_t *me, int32_t *id) {
    if (!tr->n) return 0;
    for (size_t i = from; i < n; i++) {
        unsigned char c0 = (unsigned char)s[i];
        if (!(tr->first[c0 >> 3] & (1u << (c0 & 7)))) continue;
        int32_t cur = 0, best = -1;
        size_t best_end = 0;
        for (size_t k = i; k < n; k++) {
            int32_t ch = tr->nodes[cur].child;
            while (ch >= 0 && tr->nodes[ch].byte != (unsigned char)s[k])
                ch = tr->nodes[ch].sibling;
            if (ch < 0) break;
            cur = ch;
            if (tr->nodes[cur].term >= 0) best = tr->nodes[cur].term, best_end = k + 1;
        }
        if (best >= 0) {
            *ms = i, *me = best_end, *id = best;
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ loading */

static const tok_added_tok *tok_live(const tok_added *a, int32_t id) {
    if (id < 0 || (size_t)id >= a->n_by_id || a->by_id[id] < 0) return NULL;
    return &a->toks[a->by_id[id]];
}

const char *tok_added_content(const tok_added *a, int32_t id, size_t *len) {
    const tok_added_tok *k = tok_live(a, id);
    if (!k) return NULL;
    *len = k->len;
    return a->content.pool + k->off;
}

int32_t tok_added_id(const tok_added *a, const char *s, size_t n) {
    return tok_strmap_get(&a->content, s, n);
}

typedef struct tok_listed { /* an entry of HF's special_tokens / added_tokens lists */
    uint32_t off, len;      /* content, in the content map's pool */
    unsigned char normalized;
} tok_listed;

typedef struct tok_lists {
    tok_listed *v;
    size_t n, cap;
} tok_lists;

static int tok_list_push(tok_lists *l, uint32_t off, uint32_t len, int normalized) {
    if (tok_grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v)) return -1;
    l->v[l->n++] = (tok_listed){off, len, (unsigned char)normalized};
    return 0;
}

/* HF AddedVocabulary::add_tokens(&[token]) for added_tokens[i]. */
static zmlx_status tok_added_one(zmlx_tokenizer *t, json_t *j, size_t i, tok_lists *special_list,
                                 tok_lists *added_list, zerr *e) {
    static const char *const keys[] = {"id",     "content",    "single_word", "lstrip",
                                       "rstrip", "normalized", "special",     NULL};
    tok_added *a = &t->added;
    char path[64];
    snprintf(path, sizeof path, "added_tokens[%zu]", i);
    if (!json_is_object(j)) return zerr_set(e, ZMLX_ERR_FORMAT, "%s: expected an object", path);
    zmlx_status st = tok_json_keys(j, path, keys, e);
    if (st) return st;
    json_t *jid = json_object_get(j, "id");
    if (!json_is_integer(jid) || json_integer_value(jid) < 0 ||
        json_integer_value(jid) > UINT32_MAX)
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s.id: expected an integer id", path);
    const char *s;
    size_t n;
    int sw, ls, rs, norm, special;
    if ((st = tok_json_str(j, "content", 1, path, &s, &n, e)) ||
        (st = tok_json_bool(j, "single_word", 0, path, &sw, e)) ||
        (st = tok_json_bool(j, "lstrip", 0, path, &ls, e)) ||
        (st = tok_json_bool(j, "rstrip", 0, path, &rs, e)) ||
        (st = tok_json_bool(j, "normalized", 1, path, &norm, e)) ||
        (st = tok_json_bool(j, "special", 0, path, &special, e)))
        return st;
    if (n == 0) return ZMLX_OK; /* HF ignores empty contents */
    int64_t ent = tok_strmap_find(&a->content, s, n);
    int32_t old = ent >= 0 ? a->content.ents[ent].val : -1;
    if (ent < 0 && (ent = tok_strmap_put(&a->content, s, n, -1)) < 0)
        return zerr_set(e, ZMLX_ERR_NOMEM, "%s: out of memory", path);
    uint32_t off = a->content.ents[ent].off;
    if (special && tok_strmap_find(&a->special, s, n) < 0) {
        if (tok_strmap_put(&a->special, s, n, 1) < 0 ||
            tok_list_push(special_list, off, (uint32_t)n, norm))
            return zerr_set(e, ZMLX_ERR_NOMEM, "%s: out of memory", path);
    }
    const tok_added_tok *live = tok_live(a, old);
    if (live && live->off == off && live->single_word == sw && live->lstrip == ls &&
        live->rstrip == rs && live->normalized == norm && live->special == special)
        return ZMLX_OK; /* the very same token again */
    int32_t id = old;
    if (id < 0) id = tok_strmap_get(&t->vocab, s, n);
    if (id < 0) { /* HF: one past the largest added id, or the model's vocab size */
        int32_t vs = (int32_t)t->vocab_count;
        id = a->max_id < 0 ? vs : ((a->max_id >= vs || vs == 0) ? a->max_id + 1 : vs);
    }
    if ((size_t)id >= a->n_by_id) /* cannot happen: n_by_id bounds every id HF can assign */
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s: id %d out of range", path, (int)id);
    a->content.ents[ent].val = id;
    if (id > a->max_id) a->max_id = id;
    if (tok_grow((void **)&a->toks, &a->cap_toks, a->n_toks + 1, sizeof *a->toks))
        return zerr_set(e, ZMLX_ERR_NOMEM, "%s: out of memory", path);
    a->toks[a->n_toks] = (tok_added_tok){.off = off,
                                         .len = (uint32_t)n,
                                         .id = id,
                                         .single_word = (unsigned char)sw,
                                         .lstrip = (unsigned char)ls,
                                         .rstrip = (unsigned char)rs,
                                         .normalized = (unsigned char)norm,
                                         .special = (unsigned char)special};
    a->by_id[id] = (int32_t)a->n_toks++;
    if (tok_strmap_find(&a->special, s, n) < 0 && tok_list_push(added_list, off, (uint32_t)n, norm))
        return zerr_set(e, ZMLX_ERR_NOMEM, "%s: out of memory", path);
    return ZMLX_OK;
}

zmlx_status tok_added_load(zmlx_tokenizer *t, json_t *arr, zerr *e) {
    tok_added *a = &t->added;
    if (!json_is_array(arr)) return zerr_set(e, ZMLX_ERR_FORMAT, "added_tokens: expected an array");
    size_t n = json_array_size(arr);
    if (n >= (size_t)TOK_MAX_ID)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED, "added_tokens: more than %d entries", TOK_MAX_ID);
    /* every id HF can assign is a vocab id or below max(vocab ids, vocab size) + n */
    size_t base = (size_t)t->n_ids > t->vocab_count ? (size_t)t->n_ids : t->vocab_count;
    a->n_by_id = base + n + 1;
    a->max_id = -1;
    a->by_id = malloc(a->n_by_id * sizeof *a->by_id);
    if (!a->by_id) return zerr_set(e, ZMLX_ERR_NOMEM, "added_tokens: out of memory");
    for (size_t i = 0; i < a->n_by_id; i++)
        a->by_id[i] = -1;
    tok_lists special_list = {0}, added_list = {0};
    zmlx_status st = ZMLX_OK;
    for (size_t i = 0; i < n && st == ZMLX_OK; i++)
        st = tok_added_one(t, json_array_get(arr, i), i, &special_list, &added_list, e);
    /* HF refresh_added_tokens: special_tokens then added_tokens, split by `normalized` */
    for (size_t l = 0; l < 2 && st == ZMLX_OK; l++) {
        const tok_lists *list = l == 0 ? &special_list : &added_list;
        for (size_t i = 0; i < list->n && st == ZMLX_OK; i++) {
            const tok_listed *x = &list->v[i];
            const char *s = a->content.pool + x->off;
            int32_t id = tok_strmap_get(&a->content, s, x->len);
            if (tok_trie_add(x->normalized ? &a->norm : &a->raw, s, x->len, id))
                st = zerr_set(e, ZMLX_ERR_NOMEM, "added_tokens: out of memory");
        }
    }
    free(special_list.v);
    free(added_list.v);
    if (st) return st;
    int need_word = 0;
    for (size_t i = 0; i < a->n_toks; i++) {
        tok_added_tok *k = &a->toks[i];
        k->special_content = tok_strmap_find(&a->special, a->content.pool + k->off, k->len) >= 0;
        need_word |= k->single_word;
    }
    if ((size_t)(a->max_id + 1) > (size_t)t->n_ids) t->n_ids = a->max_id + 1;
    if (!need_word) return ZMLX_OK;
    /* Rust regex \w, which HF's single_word check uses */
    char word[TOK_UNI_MAX + 80] = "[";
    tok_word_class(word + 1, sizeof word - 2, TOK_WORD_RUST);
    strcat(word, "]");
    return tok_regex_compile(word, strlen(word), TOK_RE_PCRE2, "added_tokens.single_word",
                             &a->word_re, e);
}

/* ------------------------------------------------------------ matching */

static int tok_word_before(const tok_added *a, tok_scratch *sc, const char *s, size_t end) {
    uint32_t cp;
    size_t l = tok_utf8_dec_prev(s, end, &cp);
    return l && tok_regex_match_at(a->word_re, s + end - l, l, sc);
}

static int tok_word_after(const tok_added *a, tok_scratch *sc, const char *s, size_t n) {
    uint32_t cp;
    size_t l = tok_utf8_dec(s, n, &cp);
    return l && tok_regex_match_at(a->word_re, s, l, sc);
}

/* HF AddedVocabulary::find_matches over s[0..n) with one trie.  The text between matches
 * goes on to the normalized-token trie (pass 0) or to the pre-tokenizer (pass 1). */
static zmlx_status tok_split_on(const zmlx_tokenizer *t, const tok_trie *tr, tok_scratch *sc,
                                const char *s, size_t n, int parse_special, int pass, tok_out *out);

static zmlx_status tok_gap(const zmlx_tokenizer *t, tok_scratch *sc, const char *s, size_t n,
                           int parse_special, int pass, tok_out *out) {
    if (n == 0) return ZMLX_OK;
    if (pass == 0) return tok_split_on(t, &t->added.norm, sc, s, n, parse_special, 1, out);
    return tok_pretok_encode(t, sc, s, n, out);
}

static zmlx_status tok_split_on(const zmlx_tokenizer *t, const tok_trie *tr, tok_scratch *sc,
                                const char *s, size_t n, int parse_special, int pass,
                                tok_out *out) {
    const tok_added *a = &t->added;
    size_t start_offset = 0, pos = 0, ms, me;
    int32_t id;
    zmlx_status st;
    while (tok_trie_find(tr, s, n, pos, &ms, &me, &id)) {
        pos = me;
        const tok_added_tok *k = tok_live(a, id);
        size_t start = ms, stop = me;
        if (!k || (!parse_special && k->special_content)) continue;
        if (k->single_word && ((start > 0 && tok_word_before(a, sc, s, start)) ||
                               (stop < n && tok_word_after(a, sc, s + stop, n - stop))))
            continue;
        if (k->lstrip) {
            size_t ns = start;
            uint32_t cp;
            size_t l;
            while ((l = tok_utf8_dec_prev(s, ns, &cp)) && tok_is_white_space(cp))
                ns -= l;
            start = ns > start_offset ? ns : start_offset;
        }
        if (k->rstrip) {
            uint32_t cp;
            size_t l;
            while ((l = tok_utf8_dec(s + stop, n - stop, &cp)) && tok_is_white_space(cp))
                stop += l;
        }
        if (start_offset < start &&
            (st = tok_gap(t, sc, s + start_offset, start - start_offset, parse_special, pass, out)))
            return st;
        tok_out_push(out, id);
        start_offset = stop;
    }
    return tok_gap(t, sc, s + start_offset, n - start_offset, parse_special, pass, out);
}

zmlx_status tok_added_encode(const zmlx_tokenizer *t, tok_scratch *sc, const char *s, size_t n,
                             int parse_special, tok_out *out) {
    return tok_split_on(t, &t->added.raw, sc, s, n, parse_special, 0, out);
}
