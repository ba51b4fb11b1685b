/*
 * tokenizer.c — the public tokenizer API of include/zmlx.h: loading from a file or
 * directory, the builtin byte-level fallback, encode, decode and lookups.
 *
 * What it is not for: parsing tokenizer.json (load.c and friends), the pre-tokenizer
 * and BPE (pretok.c, bpe.c), tiktoken.model files (tiktoken.c), streaming decode
 * (stream.c), chat templates (src/chat/).
 * A loaded tokenizer is never modified: encode and decode keep their state in a
 * per-call tok_scratch, so one tokenizer can serve several threads.
 */
#include "tokenizer/tok_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TOK_MAX_FILE ((size_t)1 << 30) /* tokenizer.json files are tens of MB */

zmlx_status tok_read_file(const char *path, char **data, size_t *len, zerr *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return zerr_set(e, ZMLX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    zmlx_status st = ZMLX_OK;
    for (;;) {
        if (tok_grow((void **)&buf, &cap, n + 65536, 1)) {
            st = zerr_set(e, ZMLX_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                st = zerr_set(e, ZMLX_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
        if (n > TOK_MAX_FILE) {
            st = zerr_set(e, ZMLX_ERR_LIMIT, "%s: larger than %zu bytes", path, TOK_MAX_FILE);
            break;
        }
    }
    fclose(f);
    if (st) {
        free(buf);
        return st;
    }
    *data = buf;
    *len = n;
    return ZMLX_OK;
}

zmlx_status zmlx_tokenizer_load(const char *path, zmlx_tokenizer **out, char *err,
                                size_t err_size) {
    zerr e = {{0}};
    zmlx_status st;
    if (out) *out = NULL;
    if (!path || !out) {
        st = zerr_set(&e, ZMLX_ERR_INVALID_ARG, "zmlx_tokenizer_load: path and out are required");
        zerr_copy(&e, err, err_size);
        return st;
    }
    char file[4096];
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if ((size_t)snprintf(file, sizeof file, "%s/tokenizer.json", path) >= sizeof file - 16) {
            st = zerr_set(&e, ZMLX_ERR_INVALID_ARG, "%s: path too long", path);
            zerr_copy(&e, err, err_size);
            return st;
        }
        /* no tokenizer.json but a tiktoken.model: Kimi's tokenizer */
        char tk[4096 + 16];
        snprintf(tk, sizeof tk, "%s/tiktoken.model", path);
        if (stat(file, &sb) != 0 && stat(tk, &sb) == 0) {
            st = tok_tk_load(path, out, &e);
            if (st) zerr_copy(&e, err, err_size);
            return st;
        }
        path = file;
    } else {
        /* .../tiktoken.model: the directory holding it (its tokenizer_config.json too) */
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (!strcmp(base, "tiktoken.model")) {
            snprintf(file, sizeof file, "%.*s", base > path ? (int)(base - path - 1) : 1,
                     base > path ? path : ".");
            st = tok_tk_load(file, out, &e);
            if (st) zerr_copy(&e, err, err_size);
            return st;
        }
    }
    char *data = NULL;
    size_t len = 0;
    st = tok_read_file(path, &data, &len, &e);
    if (st == ZMLX_OK) st = tok_load_json(data, len, path, out, &e);
    free(data);
    if (st) zerr_copy(&e, err, err_size);
    return st;
}

zmlx_status zmlx_tokenizer_load_bytes(zmlx_tokenizer **out, int32_t vocab_size) {
    if (!out) return ZMLX_ERR_INVALID_ARG;
    *out = NULL;
    if (vocab_size < 256) return ZMLX_ERR_INVALID_ARG;
    zmlx_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return ZMLX_ERR_NOMEM;
    t->bytes_only = 1;
    t->n_ids = vocab_size;
    *out = t;
    return ZMLX_OK;
}

void zmlx_tokenizer_free(zmlx_tokenizer *t) {
    if (!t) return;
    tok_tk_free(t->tk);
    tok_strmap_free(&t->vocab);
    free(t->vocab_ent);
    tok_mergemap_free(&t->merges);
    free(t->prefix);
    free(t->suffix);
    free(t->cp_id);
    for (size_t i = 0; i < t->n_steps; i++)
        pcre2_code_free(t->steps[i].re);
    tok_added_free(&t->added);
    free(t->dec_pool);
    free(t->dec_off);
    free(t->dec_len);
    free(t);
}

/* The text an id stands for before decoding: an added token's content first, then the
 * model's token (HF: added_vocabulary.simple_id_to_token(id).or_else(model)). */
static const char *tok_id_text(const zmlx_tokenizer *t, int32_t id, size_t *len) {
    const char *s = tok_added_content(&t->added, id, len);
    if (s || id < 0 || id >= t->vocab_n || t->vocab_ent[id] < 0) return s;
    *len = t->vocab.ents[t->vocab_ent[id]].len;
    return tok_strmap_str(&t->vocab, (size_t)t->vocab_ent[id]);
}

/* ByteLevel decoder on one token: its chars mapped back to bytes when every char is in
 * the GPT-2 alphabet, else its UTF-8 as is (so "<｜User｜>" decodes to itself). */
static size_t tok_decode_one(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = tok_utf8_dec(s + i, n - i, &cp);
        int b = l ? tok_cp_to_byte(cp) : -1;
        if (b < 0) {
            memcpy(out, s, n);
            return n;
        }
        out[o++] = (char)b;
        i += l;
    }
    return o;
}

zmlx_status tok_decode_table(zmlx_tokenizer *t, zerr *e) {
    size_t n = (size_t)t->n_ids, total = 0;
    t->dec_off = malloc((n + 1) * sizeof *t->dec_off);
    t->dec_len = malloc((n + 1) * sizeof *t->dec_len);
    if (!t->dec_off || !t->dec_len) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory");
    for (size_t id = 0; id < n; id++) {
        size_t len;
        if (tok_id_text(t, (int32_t)id, &len)) total += len;
    }
    if (total >= UINT32_MAX) return zerr_set(e, ZMLX_ERR_LIMIT, "vocabulary text over 4 GiB");
    t->dec_pool = malloc(total + 1);
    if (!t->dec_pool) return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory");
    size_t o = 0;
    for (size_t id = 0; id < n; id++) {
        size_t len;
        const char *s = tok_id_text(t, (int32_t)id, &len);
        t->dec_off[id] = (uint32_t)o;
        t->dec_len[id] = UINT32_MAX;
        if (!s) continue;
        t->dec_len[id] = (uint32_t)tok_decode_one(s, len, t->dec_pool + o);
        o += t->dec_len[id];
    }
    return ZMLX_OK;
}

/* ------------------------------------------------------------ scratch */

zmlx_status tok_scratch_init(tok_scratch *sc) {
    memset(sc, 0, sizeof *sc);
    /* JIT matching runs on PCRE2's default 32 KiB stack; a pattern that needs more falls
     * back to the interpreter (regex.c), so no JIT stack is mapped per call */
    sc->md = pcre2_match_data_create(1, NULL);
    if (!sc->md) return ZMLX_ERR_NOMEM;
    return ZMLX_OK;
}

void tok_scratch_free(tok_scratch *sc) {
    pcre2_match_data_free(sc->md);
    for (int i = 0; i < 2; i++) {
        free(sc->pc[i]);
        free(sc->buf[i]);
    }
    free(sc->tmp);
    free(sc->ev);
    free(sc->syms);
    free(sc->heap);
    free(sc->word);
    memset(sc, 0, sizeof *sc);
}

/* ------------------------------------------------------------ encode / decode */

size_t zmlx_tokenizer_encode_bound(size_t text_len) {
    /* a piece of m bytes gives at most m chars plus one prefix space; pieces <= bytes */
    return text_len > (SIZE_MAX - 1) / 2 ? SIZE_MAX : 2 * text_len + 1;
}

zmlx_status zmlx_tokenizer_encode(const zmlx_tokenizer *t, const char *text, size_t len,
                                  int parse_special, int32_t *ids, size_t cap, size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!t || !n_out || (!text && len) || (!ids && cap)) return ZMLX_ERR_INVALID_ARG;
    tok_out out = {ids, cap, 0};
    zmlx_status st = ZMLX_OK;
    if (t->bytes_only) {
        for (size_t i = 0; i < len; i++)
            tok_out_push(&out, (unsigned char)text[i]);
    } else if (len) {
        tok_scratch sc;
        if ((st = tok_scratch_init(&sc))) return st;
        st = t->tk ? tok_tk_encode(t, &sc, text, len, parse_special, &out)
                   : tok_added_encode(t, &sc, text, len, parse_special, &out);
        tok_scratch_free(&sc);
    }
    if (st) return st;
    *n_out = out.n;
    return out.n > cap ? ZMLX_ERR_LIMIT : ZMLX_OK;
}

zmlx_status tok_decode_id(const zmlx_tokenizer *t, int32_t id, char *buf, const char **p,
                          size_t *n) {
    if (id < 0) return ZMLX_ERR_INVALID_ARG;
    if (t->bytes_only) {
        if (id < 256) {
            buf[0] = (char)id;
            *n = 1;
        } else {
            *n = (size_t)snprintf(buf, 16, "<%d>", (int)id);
        }
        *p = buf;
        return ZMLX_OK;
    }
    *n = 0; /* ids the tokenizer does not know decode to nothing, as in HF */
    *p = buf;
    if (id < t->n_ids && t->dec_len[id] != UINT32_MAX) {
        *p = t->dec_pool + t->dec_off[id];
        *n = t->dec_len[id];
    }
    return ZMLX_OK;
}

zmlx_status zmlx_tokenizer_decode(const zmlx_tokenizer *t, const int32_t *ids, size_t n, char *out,
                                  size_t cap, size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!t || !n_out || (!ids && n) || (!out && cap)) return ZMLX_ERR_INVALID_ARG;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char buf[16];
        const char *p;
        size_t len;
        zmlx_status st = tok_decode_id(t, ids[i], buf, &p, &len);
        if (st) return st;
        if (o < cap) memcpy(out + o, p, len <= cap - o ? len : cap - o);
        o += len;
    }
    *n_out = o;
    if (o < cap) out[o] = '\0';
    return o > cap ? ZMLX_ERR_LIMIT : ZMLX_OK;
}

int32_t zmlx_tokenizer_token_id(const zmlx_tokenizer *t, const char *token) {
    if (!t || !token) return -1;
    size_t n = strlen(token);
    if (t->bytes_only) return n == 1 ? (unsigned char)token[0] : -1;
    if (t->tk) return tok_tk_token_id(t->tk, token, n);
    int32_t id = tok_added_id(&t->added, token, n);
    return id >= 0 ? id : tok_strmap_get(&t->vocab, token, n);
}

int32_t zmlx_tokenizer_vocab_size(const zmlx_tokenizer *t) {
    return t ? t->n_ids : 0;
}
