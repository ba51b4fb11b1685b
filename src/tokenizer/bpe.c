/*
 * bpe.c — the BPE model: loading `model` (vocab, merges and options) from tokenizer.json
 * and turning one pre-tokenized piece into ids.
 *
 * The merge loop is HF tokenizers' Word::merge_all: every adjacent pair that has a merge
 * goes into a min-heap ordered by (rank, position); the best is applied, stale entries are
 * skipped, and the two new neighbour pairs are pushed.  O(n log n) per piece.  Rank is the
 * merge's index in `merges`; a pair listed twice keeps its last index (HF builds a HashMap).
 * Not here: dropout and byte_fallback (refused at load).
 */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ loading */

static zmlx_status tok_vocab_load(zmlx_tokenizer *t, json_t *vocab, zerr *e) {
    if (!json_is_object(vocab))
        return zerr_set(e, ZMLX_ERR_FORMAT, "model.vocab: expected an object of token -> id");
    const char *key;
    size_t klen;
    json_t *val;
    char q[80];
    int32_t max_id = -1;
    json_object_keylen_foreach(vocab, key, klen, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= TOK_MAX_ID)
            return zerr_set(e, ZMLX_ERR_FORMAT, "model.vocab[%s]: id must be an integer in [0, %d)",
                            tok_quote(key, klen, q, sizeof q), (int)TOK_MAX_ID);
        int32_t id = (int32_t)json_integer_value(val);
        if (tok_strmap_put(&t->vocab, key, klen, id) < 0)
            return zerr_set(e, ZMLX_ERR_NOMEM, "model.vocab: out of memory");
        if (id > max_id) max_id = id;
    }
    t->vocab_count = t->vocab.n_ents;
    if (max_id >= 0 && (size_t)max_id >= 2 * t->vocab_count + TOK_ID_SLACK)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                        "model.vocab: id %d is far beyond the %zu entries (sparse ids are not "
                        "supported)",
                        (int)max_id, t->vocab_count);
    t->n_ids = t->vocab_n = max_id + 1;
    t->vocab_ent = malloc(((size_t)t->vocab_n + 1) * sizeof *t->vocab_ent);
    if (!t->vocab_ent) return zerr_set(e, ZMLX_ERR_NOMEM, "model.vocab: out of memory");
    for (int32_t i = 0; i < t->vocab_n; i++)
        t->vocab_ent[i] = -1;
    for (size_t i = 0; i < t->vocab.n_ents; i++) {
        const tok_strent *en = &t->vocab.ents[i];
        int32_t prev = t->vocab_ent[en->val];
        if (prev >= 0) {
            char q2[80];
            const tok_strent *pe = &t->vocab.ents[prev];
            return zerr_set(
                e, ZMLX_ERR_FORMAT, "model.vocab: id %d is used by both %s and %s", (int)en->val,
                tok_quote(tok_strmap_str(&t->vocab, (size_t)prev), pe->len, q, sizeof q),
                tok_quote(tok_strmap_str(&t->vocab, i), en->len, q2, sizeof q2));
        }
        t->vocab_ent[en->val] = (int32_t)i;
    }
    return ZMLX_OK;
}

/* The two sides of merges[i], either "a b" or ["a", "b"]; *skip for "#version" lines. */
static zmlx_status tok_merge_sides(json_t *m, size_t i, int legacy, const char **a, size_t *alen,
                                   const char **b, size_t *blen, int *skip, zerr *e) {
    *skip = 0;
    if (legacy) {
        if (!json_is_string(m))
            return zerr_set(e, ZMLX_ERR_FORMAT,
                            "model.merges[%zu]: expected a string like \"a b\" (all merges must "
                            "have the same form)",
                            i);
        const char *s = json_string_value(m);
        size_t n = json_string_length(m);
        if (n >= 8 && memcmp(s, "#version", 8) == 0) {
            *skip = 1;
            return ZMLX_OK;
        }
        const char *sp = memchr(s, ' ', n);
        if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)))
            return zerr_set(e, ZMLX_ERR_FORMAT,
                            "model.merges[%zu]: expected exactly one space in \"a b\"", i);
        *a = s, *alen = (size_t)(sp - s);
        *b = sp + 1, *blen = n - *alen - 1;
        return ZMLX_OK;
    }
    if (!json_is_array(m) || json_array_size(m) != 2 || !json_is_string(json_array_get(m, 0)) ||
        !json_is_string(json_array_get(m, 1)))
        return zerr_set(e, ZMLX_ERR_FORMAT,
                        "model.merges[%zu]: expected a pair of strings [\"a\", \"b\"] (all "
                        "merges must have the same form)",
                        i);
    *a = json_string_value(json_array_get(m, 0));
    *alen = json_string_length(json_array_get(m, 0));
    *b = json_string_value(json_array_get(m, 1));
    *blen = json_string_length(json_array_get(m, 1));
    return ZMLX_OK;
}

static zmlx_status tok_merges_load(zmlx_tokenizer *t, json_t *merges, zerr *e) {
    if (!json_is_array(merges))
        return zerr_set(e, ZMLX_ERR_FORMAT, "model.merges: expected an array");
    size_t n = json_array_size(merges);
    if (tok_mergemap_init(&t->merges, n))
        return zerr_set(e, ZMLX_ERR_NOMEM, "model.merges: out of memory");
    int legacy = n > 0 && json_is_string(json_array_get(merges, 0));
    char *buf = NULL;
    size_t buf_cap = 0;
    uint32_t rank = 0;
    char q[80];
    zmlx_status st = ZMLX_OK;
    for (size_t i = 0; i < n && st == ZMLX_OK; i++) {
        const char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        int skip = 0;
        st = tok_merge_sides(json_array_get(merges, i), i, legacy, &a, &alen, &b, &blen, &skip, e);
        if (st || skip) continue;
        int32_t ida = tok_strmap_get(&t->vocab, a, alen);
        int32_t idb = tok_strmap_get(&t->vocab, b, blen);
        if (ida < 0 || idb < 0) {
            st = zerr_set(
                e, ZMLX_ERR_FORMAT, "model.merges[%zu]: token %s is not in model.vocab", i,
                ida < 0 ? tok_quote(a, alen, q, sizeof q) : tok_quote(b, blen, q, sizeof q));
            continue;
        }
        /* the merged token drops the continuing_subword_prefix of the right side */
        size_t plen = t->prefix_len;
        if (plen && (blen < plen || memcmp(b, t->prefix, plen) != 0)) {
            st = zerr_set(e, ZMLX_ERR_FORMAT,
                          "model.merges[%zu]: %s does not start with continuing_subword_prefix", i,
                          tok_quote(b, blen, q, sizeof q));
            continue;
        }
        if (tok_grow((void **)&buf, &buf_cap, alen + blen + 1, 1)) {
            st = zerr_set(e, ZMLX_ERR_NOMEM, "model.merges: out of memory");
            continue;
        }
        memcpy(buf, a, alen);
        memcpy(buf + alen, b + plen, blen - plen);
        int32_t id = tok_strmap_get(&t->vocab, buf, alen + blen - plen);
        if (id < 0) {
            st = zerr_set(e, ZMLX_ERR_FORMAT,
                          "model.merges[%zu]: merged token %s is not in model.vocab", i,
                          tok_quote(buf, alen + blen - plen, q, sizeof q));
            continue;
        }
        tok_mergemap_put(&t->merges, ida, idb, rank++, id);
    }
    free(buf);
    return st;
}

static zmlx_status tok_affix(json_t *model, const char *key, char **out, size_t *len, zerr *e) {
    const char *s;
    size_t n;
    zmlx_status st = tok_json_str(model, key, 0, "model", &s, &n, e);
    if (st || !s) return st;
    *out = malloc(n + 1);
    if (!*out) return zerr_set(e, ZMLX_ERR_NOMEM, "model.%s: out of memory", key);
    memcpy(*out, s, n + 1);
    *len = n;
    return ZMLX_OK;
}

zmlx_status tok_bpe_load(zmlx_tokenizer *t, json_t *model, zerr *e) {
    static const char *const keys[] = {"type",
                                       "dropout",
                                       "unk_token",
                                       "continuing_subword_prefix",
                                       "end_of_word_suffix",
                                       "fuse_unk",
                                       "byte_fallback",
                                       "ignore_merges",
                                       "vocab",
                                       "merges",
                                       NULL};
    zmlx_status st = tok_json_keys(model, "model", keys, e);
    if (st) return st;
    json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) &&
        !(json_is_number(dropout) && json_number_value(dropout) == 0.0))
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                        "model.dropout: BPE dropout is not supported (must be null or 0)");
    int byte_fallback;
    if ((st = tok_json_bool(model, "byte_fallback", 0, "model", &byte_fallback, e))) return st;
    if (byte_fallback)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                        "model.byte_fallback: true is not supported (byte-level BPE needs no "
                        "<0xNN> fallback tokens)");
    if ((st = tok_json_bool(model, "fuse_unk", 0, "model", &t->fuse_unk, e))) return st;
    if ((st = tok_json_bool(model, "ignore_merges", 0, "model", &t->ignore_merges, e))) return st;
    if ((st = tok_affix(model, "continuing_subword_prefix", &t->prefix, &t->prefix_len, e)))
        return st;
    if ((st = tok_affix(model, "end_of_word_suffix", &t->suffix, &t->suffix_len, e))) return st;
    if ((st = tok_vocab_load(t, json_object_get(model, "vocab"), e))) return st;
    if ((st = tok_merges_load(t, json_object_get(model, "merges"), e))) return st;

    const char *unk;
    size_t unk_len;
    if ((st = tok_json_str(model, "unk_token", 0, "model", &unk, &unk_len, e))) return st;
    t->unk_id = -1;
    if (unk) {
        char q[80];
        t->unk_id = tok_strmap_get(&t->vocab, unk, unk_len);
        if (t->unk_id < 0)
            return zerr_set(e, ZMLX_ERR_FORMAT, "model.unk_token: %s is not in model.vocab",
                            tok_quote(unk, unk_len, q, sizeof q));
    }
    if (!t->prefix && !t->suffix) { /* one-char lookups without hashing */
        t->cp_id = malloc(0x800 * sizeof *t->cp_id);
        if (!t->cp_id) return zerr_set(e, ZMLX_ERR_NOMEM, "model.vocab: out of memory");
        for (uint32_t cp = 0; cp < 0x800; cp++) {
            char u[4];
            size_t l = tok_utf8_enc(cp, u);
            t->cp_id[cp] = tok_strmap_get(&t->vocab, u, l);
        }
    }
    return ZMLX_OK;
}

/* ------------------------------------------------------------ encoding one piece */

static int tok_heap_less(const tok_heap_item *x, const tok_heap_item *y) {
    return x->rank != y->rank ? x->rank < y->rank : x->pos < y->pos;
}

void tok_heap_push(tok_heap_item *h, size_t *n, tok_heap_item it) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!tok_heap_less(&it, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
}

tok_heap_item tok_heap_pop(tok_heap_item *h, size_t *n) {
    tok_heap_item top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && tok_heap_less(&h[c + 1], &h[c])) c++;
        if (!tok_heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* Vocab id of one char of the piece, with the prefix/suffix HF adds; -1 if absent. */
static int32_t tok_char_id(const zmlx_tokenizer *t, tok_scratch *sc, const char *c, size_t l,
                           int first, int last) {
    if (t->cp_id) {
        uint32_t cp;
        if (l <= 2 && tok_utf8_dec(c, l, &cp) == l) return t->cp_id[cp];
        return tok_strmap_get(&t->vocab, c, l);
    }
    size_t pl = first ? 0 : t->prefix_len, sl = last ? t->suffix_len : 0;
    if (tok_grow((void **)&sc->word, &sc->word_cap, pl + l + sl, 1)) return -2;
    if (pl) memcpy(sc->word, t->prefix, pl);
    memcpy(sc->word + pl, c, l);
    if (sl) memcpy(sc->word + pl + l, t->suffix, sl);
    return tok_strmap_get(&t->vocab, sc->word, pl + l + sl);
}

zmlx_status tok_bpe_word(const zmlx_tokenizer *t, tok_scratch *sc, const char *w, size_t n,
                         tok_out *out) {
    if (n == 0) return ZMLX_OK;
    if (t->ignore_merges) {
        int32_t id = tok_strmap_get(&t->vocab, w, n);
        if (id >= 0) {
            tok_out_push(out, id);
            return ZMLX_OK;
        }
    }
    if (tok_grow((void **)&sc->syms, &sc->syms_cap, n, sizeof *sc->syms)) return ZMLX_ERR_NOMEM;
    tok_sym *sy = sc->syms;
    size_t ns = 0;
    int32_t unk_len = -1; /* pending unk symbol: bytes covered */
    for (size_t i = 0; i < n;) {
        size_t l = tok_utf8_step(w + i, n - i);
        int32_t id = tok_char_id(t, sc, w + i, l, i == 0, i + l == n);
        if (id == -2) return ZMLX_ERR_NOMEM;
        i += l;
        if (id >= 0) {
            if (unk_len >= 0) sy[ns++] = (tok_sym){t->unk_id, 0, 0, (uint32_t)unk_len};
            unk_len = -1;
            sy[ns++] = (tok_sym){id, 0, 0, (uint32_t)l};
        } else if (t->unk_id >= 0) { /* without unk_token HF drops the char */
            if (unk_len >= 0 && t->fuse_unk) {
                unk_len += (int32_t)l;
            } else {
                if (unk_len >= 0) sy[ns++] = (tok_sym){t->unk_id, 0, 0, (uint32_t)unk_len};
                unk_len = (int32_t)l;
            }
        }
    }
    if (unk_len >= 0) sy[ns++] = (tok_sym){t->unk_id, 0, 0, (uint32_t)unk_len};
    for (size_t i = 0; i < ns; i++) {
        sy[i].prev = (int32_t)i - 1;
        sy[i].next = i + 1 < ns ? (int32_t)i + 1 : -1;
    }

    /* each merge removes a symbol and pushes at most two entries */
    if (tok_grow((void **)&sc->heap, &sc->heap_cap, 3 * ns + 1, sizeof *sc->heap))
        return ZMLX_ERR_NOMEM;
    tok_heap_item *h = sc->heap;
    size_t nh = 0;
    uint32_t rank;
    int32_t mid;
    for (size_t i = 0; i + 1 < ns; i++)
        if (tok_mergemap_get(&t->merges, sy[i].id, sy[i + 1].id, &rank, &mid))
            tok_heap_push(h, &nh, (tok_heap_item){rank, (uint32_t)i, mid});
    while (nh) {
        tok_heap_item top = tok_heap_pop(h, &nh);
        tok_sym *cur = &sy[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        tok_sym *right = &sy[cur->next];
        if (!tok_mergemap_get(&t->merges, cur->id, right->id, &rank, &mid) || mid != top.id)
            continue; /* stale entry */
        cur->id = top.id;
        cur->len += right->len;
        cur->next = right->next;
        right->len = 0;
        if (cur->next >= 0) sy[cur->next].prev = (int32_t)top.pos;
        if (cur->prev >= 0 && tok_mergemap_get(&t->merges, sy[cur->prev].id, cur->id, &rank, &mid))
            tok_heap_push(h, &nh, (tok_heap_item){rank, (uint32_t)cur->prev, mid});
        if (cur->next >= 0 && tok_mergemap_get(&t->merges, cur->id, sy[cur->next].id, &rank, &mid))
            tok_heap_push(h, &nh, (tok_heap_item){rank, top.pos, mid});
    }
    for (size_t i = 0; i < ns; i++)
        if (sy[i].len) tok_out_push(out, sy[i].id);
    return ZMLX_OK;
}
