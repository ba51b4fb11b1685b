/*
 * tiktoken.c — loading a tiktoken tokenizer (Kimi-K2.5): `tiktoken.model` plus the special
 * tokens of `tokenizer_config.json`, the way tokenization_kimi.py builds its
 * tiktoken.Encoding.  Encoding is in tiktoken_bpe.c, the pre-tokenizer pattern in
 * kimi_regex.c.
 *
 *   tiktoken.model      one "base64(token bytes) SP rank" line per token:
 *                         "IQ== 0\n" "Ig== 1\n" ... "5L2g5aW9 101374\n"
 *   tokenizer_config    {"added_tokens_decoder": {"163584": {"content": "[BOS]", ...}, ...}}
 *
 * Ids: a token's id is its rank; the n_base = (number of ranks) ids after them are the
 * specials, TOK_TK_SPECIALS of them: an entry of added_tokens_decoder names its id,
 * the others are "<|reserved_token_ID|>" (tokenization_kimi.py).  Entries outside that
 * range are ignored, as tokenization_kimi.py ignores them.
 *
 * Policy (as load.c): whatever would make zmlx encode differently from tiktoken is refused.
 * Stricter than Python where Python is lenient: base64 must be canonical (no stray
 * characters), ranks plain decimal; duplicate tokens or ranks, ranks that are not exactly
 * 0 .. n - 1, a byte without a rank (tiktoken would panic on it), an empty special or one
 * special that is a prefix of another (tiktoken's match order between them is a hash
 * map's order) are refused.  Not for: tokenizer.json (load.c), chat templates.
 */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tok_tk_free(tok_tiktoken *tk) {
    if (!tk) return;
    tok_strmap_free(&tk->ranks);
    tok_strmap_free(&tk->specials);
    pcre2_code_free(tk->re);
    free(tk);
}

/* ------------------------------------------------------------ tiktoken.model */

static int tok_b64_val(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Canonical standard base64 of s[0..n) into out (room for 3 * n / 4 bytes); length or -1.
 * '=' padding only at the very end; the bits it pads must be zero. */
static long tok_b64_decode(const char *s, size_t n, unsigned char *out) {
    if (n == 0 || n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = i + 4 == n ? (s[i + 3] == '=') + (s[i + 3] == '=' && s[i + 2] == '=') : 0;
        uint32_t w = 0;
        for (int k = 0; k < 4; k++) {
            int v = k < 4 - pad ? tok_b64_val((unsigned char)s[i + k]) : 0;
            if (v < 0) return -1;
            w = w << 6 | (uint32_t)v;
        }
        if ((pad == 1 && (w & 0xFF)) || (pad == 2 && (w & 0xFFFF))) return -1;
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2) out[o++] = (unsigned char)(w >> 8);
        if (pad < 1) out[o++] = (unsigned char)w;
    }
    return (long)o;
}

static int tok_blank(char c) {
    return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

/* One line "base64 rank" (no line break in it): the token bytes into buf, *rank. */
static zmlx_status tok_tk_line(const char *p, size_t n, size_t line, unsigned char *buf,
                               size_t *len, int64_t *rank, zerr *e) {
    size_t a = 0;
    while (a < n && tok_blank(p[a]))
        a++;
    size_t b = a;
    while (b < n && !tok_blank(p[b]))
        b++;
    size_t c = b;
    while (c < n && tok_blank(p[c]))
        c++;
    size_t d = c;
    while (d < n && p[d] >= '0' && p[d] <= '9')
        d++;
    size_t z = d;
    while (z < n && tok_blank(p[z]))
        z++;
    if (b == a || c == b || d == c || z != n || d - c > 9)
        return zerr_set(e, ZMLX_ERR_FORMAT,
                        "line %zu: expected \"<base64 token> <rank>\" (a decimal rank)", line);
    long got = tok_b64_decode(p + a, b - a, buf);
    if (got <= 0)
        return zerr_set(e, ZMLX_ERR_FORMAT, "line %zu: the token is not canonical base64", line);
    *len = (size_t)got;
    *rank = 0;
    for (size_t i = c; i < d; i++)
        *rank = *rank * 10 + (p[i] - '0');
    if (*rank >= TOK_MAX_ID - TOK_TK_SPECIALS)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED, "line %zu: rank %lld is too large", line,
                        (long long)*rank);
    return ZMLX_OK;
}

/* Every line into tk->ranks; *max_rank is the largest rank. */
static zmlx_status tok_tk_ranks(tok_tiktoken *tk, const char *s, size_t n, int64_t *max_rank,
                                zerr *e) {
    unsigned char *buf = NULL;
    size_t buf_cap = 0, line = 0;
    zmlx_status st = ZMLX_OK;
    *max_rank = -1;
    for (size_t i = 0; i < n && st == ZMLX_OK;) {
        size_t j = i;
        while (j < n && s[j] != '\n' && s[j] != '\r')
            j++;
        line++;
        if (j > i) {
            size_t len = 0;
            int64_t rank = 0;
            if (tok_grow((void **)&buf, &buf_cap, j - i, 1)) {
                st = zerr_set(e, ZMLX_ERR_NOMEM, "out of memory");
                break;
            }
            if ((st = tok_tk_line(s + i, j - i, line, buf, &len, &rank, e))) break;
            if (tok_strmap_find(&tk->ranks, (const char *)buf, len) >= 0) {
                st = zerr_set(e, ZMLX_ERR_FORMAT, "line %zu: the token is listed twice", line);
                break;
            }
            if (tok_strmap_put(&tk->ranks, (const char *)buf, len, (int32_t)rank) < 0) {
                st = zerr_set(e, ZMLX_ERR_NOMEM, "out of memory");
                break;
            }
            if (rank > *max_rank) *max_rank = rank;
        }
        /* "\r\n" is one line break, as Python's bytes.splitlines() */
        i = j + (j + 1 < n && s[j] == '\r' && s[j + 1] == '\n' ? 2 : 1);
    }
    free(buf);
    return st;
}

/* Ranks must be exactly 0 .. n - 1 (the specials follow them) and cover every byte. */
static zmlx_status tok_tk_check_ranks(tok_tiktoken *tk, int64_t max_rank, zerr *e) {
    size_t n = tk->ranks.n_ents;
    if (n == 0) return zerr_set(e, ZMLX_ERR_FORMAT, "no tokens");
    if (max_rank != (int64_t)n - 1)
        return zerr_set(e, ZMLX_ERR_FORMAT,
                        "ranks must be 0 .. %zu, each once (the largest is %lld, or one is "
                        "repeated)",
                        n - 1, (long long)max_rank);
    unsigned char *seen = calloc(n, 1);
    if (!seen) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory");
    zmlx_status st = ZMLX_OK;
    for (size_t i = 0; i < n && !st; i++) {
        int32_t r = tk->ranks.ents[i].val;
        if (seen[r]++) st = zerr_set(e, ZMLX_ERR_FORMAT, "rank %d is used twice", (int)r);
    }
    free(seen);
    for (int b = 0; b < 256 && !st; b++) {
        char c = (char)b;
        if (tok_strmap_get(&tk->ranks, &c, 1) < 0)
            st = zerr_set(e, ZMLX_ERR_FORMAT, "byte 0x%02x has no token (every byte needs one)", b);
    }
    tk->n_base = (int32_t)n;
    return st;
}

/* ------------------------------------------------------------ specials */

/* added_tokens_decoder[key] for id n_base + k, or NULL. */
static zmlx_status tok_tk_named(json_t *dec, int32_t id, const char **s, size_t *len, zerr *e) {
    char key[16];
    snprintf(key, sizeof key, "%d", (int)id);
    json_t *ent = dec ? json_object_get(dec, key) : NULL;
    *s = NULL;
    if (!ent) return ZMLX_OK;
    char path[64];
    snprintf(path, sizeof path, "added_tokens_decoder[\"%s\"]", key);
    if (!json_is_object(ent)) return zerr_set(e, ZMLX_ERR_FORMAT, "%s: expected an object", path);
    zmlx_status st = tok_json_str(ent, "content", 1, path, s, len, e);
    if (!st && *len == 0) st = zerr_set(e, ZMLX_ERR_FORMAT, "%s.content: empty", path);
    return st;
}

static zmlx_status tok_tk_specials(tok_tiktoken *tk, json_t *dec, zerr *e) {
    for (int32_t k = 0; k < TOK_TK_SPECIALS; k++) {
        int32_t id = tk->n_base + k;
        const char *s;
        size_t len;
        char name[48];
        zmlx_status st = tok_tk_named(dec, id, &s, &len, e);
        if (st) return st;
        if (!s) {
            len = (size_t)snprintf(name, sizeof name, "<|reserved_token_%d|>", (int)id);
            s = name;
        }
        if (tok_strmap_find(&tk->specials, s, len) >= 0) {
            char q[80];
            return zerr_set(e, ZMLX_ERR_FORMAT, "special token %s is given to two ids",
                            tok_quote(s, len, q, sizeof q));
        }
        if (tok_strmap_put(&tk->specials, s, len, id) < 0)
            return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory");
        tk->special_first[(unsigned char)s[0] >> 3] |= (unsigned char)(1u << (s[0] & 7));
    }
    /* leftmost-longest (here) and tiktoken's leftmost-first agree unless a special is a
     * prefix of another */
    const tok_strmap *m = &tk->specials;
    for (size_t i = 0; i < m->n_ents; i++)
        for (size_t j = 0; j < m->n_ents; j++) {
            const tok_strent *a = &m->ents[i], *b = &m->ents[j];
            if (i != j && a->len < b->len &&
                memcmp(m->pool + a->off, m->pool + b->off, a->len) == 0) {
                char q[80], q2[80];
                return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                                "special token %s is a prefix of %s (not supported)",
                                tok_quote(m->pool + a->off, a->len, q, sizeof q),
                                tok_quote(m->pool + b->off, b->len, q2, sizeof q2));
            }
        }
    return ZMLX_OK;
}

/* tokenizer_config.json: only added_tokens_decoder matters (the pattern and the special
 * count are constants of tokenization_kimi.py, not read from files). */
static zmlx_status tok_tk_config(tok_tiktoken *tk, const char *cfg, size_t len, zerr *e) {
    json_t *root = NULL, *dec = NULL;
    if (cfg) {
        json_error_t jerr;
        root = json_loadb(cfg, len, 0, &jerr);
        if (!root)
            return zerr_set(e, ZMLX_ERR_FORMAT, "invalid JSON at line %d column %d: %s", jerr.line,
                            jerr.column, jerr.text);
        dec = json_object_get(root, "added_tokens_decoder");
        if (!json_is_object(root) || (dec && !json_is_object(dec))) {
            json_decref(root);
            return zerr_set(e, ZMLX_ERR_FORMAT, "added_tokens_decoder must be an object");
        }
    }
    zmlx_status st = tok_tk_specials(tk, dec, e);
    json_decref(root);
    return st;
}

/* ------------------------------------------------------------ decode table */

static zmlx_status tok_tk_decode_table(zmlx_tokenizer *t, zerr *e) {
    const tok_tiktoken *tk = t->tk;
    size_t n = (size_t)t->n_ids;
    size_t total = tk->ranks.pool_len + tk->specials.pool_len;
    t->dec_off = malloc(n * sizeof *t->dec_off);
    t->dec_len = malloc(n * sizeof *t->dec_len);
    t->dec_pool = malloc(total + 1);
    if (!t->dec_off || !t->dec_len || !t->dec_pool)
        return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory");
    if (total >= UINT32_MAX) return zerr_set(e, ZMLX_ERR_LIMIT, "vocabulary text over 4 GiB");
    size_t o = 0;
    const tok_strmap *maps[2] = {&tk->ranks, &tk->specials};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < maps[k]->n_ents; i++) {
            const tok_strent *en = &maps[k]->ents[i];
            memcpy(t->dec_pool + o, maps[k]->pool + en->off, en->len);
            t->dec_off[en->val] = (uint32_t)o;
            t->dec_len[en->val] = en->len;
            o += en->len;
        }
    return ZMLX_OK;
}

/* ------------------------------------------------------------ entry points */

zmlx_status tok_tk_parse(const char *model, size_t model_len, const char *config, size_t config_len,
                         const char *name, zmlx_tokenizer **out, zerr *e) {
    *out = NULL;
    zmlx_tokenizer *t = calloc(1, sizeof *t);
    zerr sub = {{0}};
    zmlx_status st = ZMLX_OK;
    int64_t max_rank;
    if (!t || !(t->tk = calloc(1, sizeof *t->tk))) {
        free(t);
        return zerr_set(e, ZMLX_ERR_NOMEM, "%s: out of memory", name);
    }
    t->unk_id = -1;
    if ((st = tok_tk_ranks(t->tk, model, model_len, &max_rank, &sub)) ||
        (st = tok_tk_check_ranks(t->tk, max_rank, &sub))) {
        zerr_set(e, st, "%s/tiktoken.model: %s", name, sub.msg);
    } else if ((t->n_ids = t->tk->n_base + TOK_TK_SPECIALS),
               (st = tok_tk_config(t->tk, config, config_len, &sub))) {
        zerr_set(e, st, "%s/tokenizer_config.json: %s", name, sub.msg);
    } else if ((st = tok_kimi_regex(&t->tk->re, NULL, &sub)) ||
               (st = tok_tk_decode_table(t, &sub))) {
        zerr_set(e, st, "%s: %s", name, sub.msg);
    }
    if (st) {
        if (e) tok_clean(e->msg);
        zmlx_tokenizer_free(t);
        return st;
    }
    *out = t;
    return ZMLX_OK;
}

zmlx_status tok_tk_load(const char *dir, zmlx_tokenizer **out, zerr *e) {
    char path[4200], cpath[4200];
    snprintf(path, sizeof path, "%s/tiktoken.model", dir);
    snprintf(cpath, sizeof cpath, "%s/tokenizer_config.json", dir);
    char *model = NULL, *cfg = NULL;
    size_t model_len = 0, cfg_len = 0;
    zerr sub;
    zmlx_status st = tok_read_file(path, &model, &model_len, e);
    if (st) return st;
    /* tokenization_kimi.py cannot run without its specials ([BOS] must exist) */
    if ((st = tok_read_file(cpath, &cfg, &cfg_len, &sub))) {
        free(model);
        return zerr_set(e, st, "%s (needed beside tiktoken.model for the special tokens)", sub.msg);
    }
    st = tok_tk_parse(model, model_len, cfg, cfg_len, dir, out, e);
    free(model);
    free(cfg);
    return st;
}

int32_t tok_tk_token_id(const tok_tiktoken *tk, const char *s, size_t n) {
    int32_t id = tok_strmap_get(&tk->specials, s, n);
    return id >= 0 ? id : tok_strmap_get(&tk->ranks, s, n);
}
