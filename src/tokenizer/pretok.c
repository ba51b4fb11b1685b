/*
 * pretok.c — the pre-tokenizer: loading `pre_tokenizer` into a flat list of steps and
 * running them over one text segment, then handing each final piece to the BPE model.
 *
 * Supported: Sequence (nested), Split (Regex or String pattern; Removed, Isolated,
 * MergedWithPrevious, MergedWithNext, Contiguous; invert), Digits (a Split on \p{N}, as
 * HF's char::is_numeric), ByteLevel (add_prefix_space, use_regex = the GPT-2 regex;
 * trim_offsets only affects offsets).  Exactly one ByteLevel is required: it is what
 * makes every byte of the input a vocabulary char.  Each step runs on every piece the
 * previous one produced; empty pieces are dropped (HF PreTokenizedString::split).
 */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char tok_gpt2_re[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static zmlx_status tok_step_add(zmlx_tokenizer *t, const char *path, tok_step **out, zerr *e) {
    if (t->n_steps >= TOK_MAX_STEPS)
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED, "%s: more than %d pre-tokenizer steps", path,
                        TOK_MAX_STEPS);
    *out = &t->steps[t->n_steps++];
    memset(*out, 0, sizeof **out);
    return ZMLX_OK;
}

static zmlx_status tok_split_load(zmlx_tokenizer *t, json_t *j, const char *path, zerr *e) {
    static const char *const keys[] = {"type", "pattern", "behavior", "invert", NULL};
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious",
                                        "MergedWithNext", "Contiguous"};
    zmlx_status st = tok_json_keys(j, path, keys, e);
    if (st) return st;
    json_t *pat = json_object_get(j, "pattern");
    const char *which = NULL;
    json_t *val = NULL;
    if (json_is_object(pat) && json_object_size(pat) == 1) {
        which = json_object_iter_key(json_object_iter(pat));
        val = json_object_get(pat, which);
    }
    if (!which || (strcmp(which, "Regex") != 0 && strcmp(which, "String") != 0) ||
        !json_is_string(val))
        return zerr_set(e, ZMLX_ERR_FORMAT,
                        "%s.pattern: expected {\"Regex\": \"...\"} or {\"String\": \"...\"}", path);
    const char *beh;
    size_t blen;
    if ((st = tok_json_str(j, "behavior", 1, path, &beh, &blen, e))) return st;
    size_t b = 0;
    while (b < 5 && strcmp(names[b], beh) != 0)
        b++;
    if (b == 5) {
        char q[80];
        return zerr_set(e, ZMLX_ERR_UNSUPPORTED, "%s.behavior: %s is not supported", path,
                        tok_quote(beh, blen, q, sizeof q));
    }
    tok_step *s = NULL;
    if ((st = tok_step_add(t, path, &s, e))) return st;
    s->kind = TOK_STEP_SPLIT;
    s->behavior = (tok_behavior)b;
    if ((st = tok_json_bool(j, "invert", 0, path, &s->invert, e))) return st;
    char field[TOK_PATH_MAX];
    snprintf(field, sizeof field, "%s.pattern.%s", path, which);
    return tok_regex_compile(json_string_value(val), json_string_length(val),
                             strcmp(which, "String") == 0 ? TOK_RE_LITERAL : TOK_RE_ONIG, field,
                             &s->re, e);
}

static zmlx_status tok_pre_load(zmlx_tokenizer *t, json_t *j, const char *path, int depth,
                                zerr *e) {
    if (!json_is_object(j)) return zerr_set(e, ZMLX_ERR_FORMAT, "%s: expected an object", path);
    const char *type;
    size_t tlen;
    zmlx_status st = tok_json_str(j, "type", 1, path, &type, &tlen, e);
    if (st) return st;
    if (strcmp(type, "Sequence") == 0 && depth < TOK_MAX_DEPTH) {
        static const char *const keys[] = {"type", "pretokenizers", NULL};
        if ((st = tok_json_keys(j, path, keys, e))) return st;
        json_t *arr = json_object_get(j, "pretokenizers");
        if (!json_is_array(arr))
            return zerr_set(e, ZMLX_ERR_FORMAT, "%s.pretokenizers: expected an array", path);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char sub[TOK_PATH_MAX];
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", path, i);
            if ((st = tok_pre_load(t, json_array_get(arr, i), sub, depth + 1, e))) return st;
        }
        return ZMLX_OK;
    }
    if (strcmp(type, "Split") == 0) return tok_split_load(t, j, path, e);
    tok_step *s = NULL;
    if (strcmp(type, "Digits") == 0) {
        static const char *const keys[] = {"type", "individual_digits", NULL};
        int individual;
        if ((st = tok_json_keys(j, path, keys, e))) return st;
        if ((st = tok_json_bool(j, "individual_digits", 0, path, &individual, e))) return st;
        if ((st = tok_step_add(t, path, &s, e))) return st;
        s->kind = TOK_STEP_SPLIT;
        s->behavior = individual ? TOK_ISOLATED : TOK_CONTIGUOUS;
        return tok_regex_compile("\\p{N}", 5, TOK_RE_ONIG, path, &s->re, e);
    }
    if (strcmp(type, "ByteLevel") == 0) {
        static const char *const keys[] = {"type", "add_prefix_space", "trim_offsets", "use_regex",
                                           NULL};
        int use_regex, trim;
        for (size_t i = 0; i < t->n_steps; i++)
            if (t->steps[i].kind == TOK_STEP_BYTELEVEL)
                return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                                "%s: a second ByteLevel pre-tokenizer is not supported", path);
        if ((st = tok_json_keys(j, path, keys, e))) return st;
        if ((st = tok_step_add(t, path, &s, e))) return st;
        s->kind = TOK_STEP_BYTELEVEL;
        if ((st = tok_json_bool(j, "add_prefix_space", 1, path, &s->add_prefix_space, e)) ||
            (st = tok_json_bool(j, "trim_offsets", 1, path, &trim, e)) ||
            (st = tok_json_bool(j, "use_regex", 1, path, &use_regex, e)))
            return st;
        if (!use_regex) return ZMLX_OK;
        return tok_regex_compile(tok_gpt2_re, sizeof tok_gpt2_re - 1, TOK_RE_ONIG, path, &s->re, e);
    }
    char q[80];
    return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                    "%s.type: pre-tokenizer %s is not supported (supported: Sequence, Split, "
                    "ByteLevel, Digits)",
                    path, tok_quote(type, tlen, q, sizeof q));
}

zmlx_status tok_pretok_load(zmlx_tokenizer *t, json_t *pre, zerr *e) {
    zmlx_status st = ZMLX_OK;
    if (pre && !json_is_null(pre) && (st = tok_pre_load(t, pre, "pre_tokenizer", 0, e))) return st;
    for (size_t i = 0; i < t->n_steps; i++)
        if (t->steps[i].kind == TOK_STEP_BYTELEVEL) return ZMLX_OK;
    return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                    "pre_tokenizer: no ByteLevel step (only byte-level BPE is supported)");
}

/* ------------------------------------------------------------ running */

static zmlx_status tok_push_piece(tok_scratch *sc, int w, size_t *n, const char *p, size_t len) {
    if (len == 0) return ZMLX_OK;
    if (tok_grow((void **)&sc->pc[w], &sc->pc_cap[w], *n + 1, sizeof *sc->pc[w]))
        return ZMLX_ERR_NOMEM;
    sc->pc[w][(*n)++] = (tok_piece){p, len};
    return ZMLX_OK;
}

/* Regex matches of one piece as HF's Pattern::find_matches, folded per behaviour
 * (NormalizedString::split); the kept parts are appended to pieces list w. */
static zmlx_status tok_split_piece(const tok_step *s, tok_behavior beh, tok_scratch *sc,
                                   const char *p, size_t n, int w, size_t *nw) {
    size_t ne = 0, prev = 0, ms, me;
    tok_regex_iter it = {0, 0};
    int rc;
    /* at most 2 events per match plus one; matches are at most n + 1 */
    while ((rc = tok_regex_next(s->re, p, n, &it, sc, &ms, &me)) == 1) {
        if (tok_grow((void **)&sc->ev, &sc->ev_cap, ne + 3, sizeof *sc->ev)) return ZMLX_ERR_NOMEM;
        if (prev != ms) sc->ev[ne++] = (tok_event){prev, ms, 0};
        sc->ev[ne++] = (tok_event){ms, me, 1};
        prev = me;
    }
    if (rc < 0) return rc == PCRE2_ERROR_NOMEMORY ? ZMLX_ERR_NOMEM : ZMLX_ERR_UNSUPPORTED;
    if (tok_grow((void **)&sc->ev, &sc->ev_cap, ne + 1, sizeof *sc->ev)) return ZMLX_ERR_NOMEM;
    if (prev != n) sc->ev[ne++] = (tok_event){prev, n, 0};
    if (s->invert)
        for (size_t i = 0; i < ne; i++)
            sc->ev[i].flag = !sc->ev[i].flag;

    tok_event *ev = sc->ev;
    size_t na = 0; /* folded in place: acc never grows faster than the input is read */
    int prev_match = 0;
    switch (beh) {
    case TOK_REMOVED: na = ne; break; /* flag = is_match = remove */
    case TOK_ISOLATED:
        for (size_t i = 0; i < ne; i++)
            ev[i].flag = 0;
        na = ne;
        break;
    case TOK_CONTIGUOUS:
    case TOK_MERGED_WITH_PREVIOUS:
        for (size_t i = 0; i < ne; i++) {
            int m = ev[i].flag;
            int merge = beh == TOK_CONTIGUOUS ? m == prev_match : (m && !prev_match);
            if (merge && na)
                ev[na - 1].end = ev[i].end;
            else
                ev[na++] = (tok_event){ev[i].start, ev[i].end, 0};
            prev_match = m;
        }
        break;
    case TOK_MERGED_WITH_NEXT: /* the same fold run backwards, growing the front */
        for (size_t i = ne; i-- > 0;) {
            int m = ev[i].flag;
            if (m && !prev_match && na) {
                ev[ne - na].start = ev[i].start;
            } else {
                tok_event x = {ev[i].start, ev[i].end, 0};
                ev[ne - 1 - na++] = x;
            }
            prev_match = m;
        }
        memmove(ev, ev + ne - na, na * sizeof *ev);
        break;
    }
    for (size_t i = 0; i < na; i++) {
        if (ev[i].flag) continue;
        zmlx_status st = tok_push_piece(sc, w, nw, p + ev[i].start, ev[i].end - ev[i].start);
        if (st) return st;
    }
    return ZMLX_OK;
}

/* ByteLevel on one piece: prefix space, optional GPT-2 split, then byte -> char mapping
 * into out (room for 2 * (n + 1) bytes). */
static zmlx_status tok_bytelevel_piece(const tok_step *s, tok_scratch *sc, const char *p, size_t n,
                                       int w, size_t *nw, char **out) {
    if (s->add_prefix_space && p[0] != ' ') {
        if (tok_grow((void **)&sc->tmp, &sc->tmp_cap, n + 1, 1)) return ZMLX_ERR_NOMEM;
        sc->tmp[0] = ' ';
        memcpy(sc->tmp + 1, p, n);
        p = sc->tmp;
        n++;
    }
    size_t first = *nw;
    if (s->re) {
        zmlx_status st = tok_split_piece(s, TOK_ISOLATED, sc, p, n, w, nw);
        if (st) return st;
    } else {
        zmlx_status st = tok_push_piece(sc, w, nw, p, n);
        if (st) return st;
    }
    for (size_t i = first; i < *nw; i++) { /* re-point each new piece at its mapped copy */
        tok_piece *pc = &sc->pc[w][i];
        size_t len = tok_bytelevel_map(pc->p, pc->n, *out);
        pc->p = *out;
        pc->n = len;
        *out += len;
    }
    return ZMLX_OK;
}

zmlx_status tok_pretok_encode(const zmlx_tokenizer *t, tok_scratch *sc, const char *s, size_t n,
                              tok_out *out) {
    int r = 0; /* pieces are read from list r, written to 1 - r */
    size_t nr = 0;
    zmlx_status st = tok_push_piece(sc, r, &nr, s, n);
    int buf = -1; /* which ByteLevel buffer the pieces point into (-1: the text) */
    for (size_t k = 0; k < t->n_steps && st == ZMLX_OK; k++) {
        const tok_step *step = &t->steps[k];
        int w = 1 - r;
        size_t nw = 0;
        if (step->kind == TOK_STEP_SPLIT) {
            for (size_t i = 0; i < nr && st == ZMLX_OK; i++)
                st = tok_split_piece(step, step->behavior, sc, sc->pc[r][i].p, sc->pc[r][i].n, w,
                                     &nw);
        } else {
            size_t need = 0;
            int b = buf == 0 ? 1 : 0;
            for (size_t i = 0; i < nr; i++)
                need += 2 * (sc->pc[r][i].n + 1);
            if (tok_grow((void **)&sc->buf[b], &sc->buf_cap[b], need + 1, 1)) return ZMLX_ERR_NOMEM;
            char *o = sc->buf[b];
            for (size_t i = 0; i < nr && st == ZMLX_OK; i++)
                st = tok_bytelevel_piece(step, sc, sc->pc[r][i].p, sc->pc[r][i].n, w, &nw, &o);
            buf = b;
        }
        r = w;
        nr = nw;
    }
    for (size_t i = 0; i < nr && st == ZMLX_OK; i++)
        st = tok_bpe_word(t, sc, sc->pc[r][i].p, sc->pc[r][i].n, out);
    return st;
}
