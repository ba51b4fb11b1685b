/*
 * load.c — parsing tokenizer.json (held in memory) into a zmlx_tokenizer: the top-level
 * fields, the normalizer and decoder checks, and the JSON field helpers the other
 * loaders use.  The model, pre-tokenizer and added tokens are parsed by bpe.c, pretok.c
 * and added.c.
 *
 * Policy: anything that would make zmlx tokenize differently from Hugging Face
 * tokenizers 0.23 is refused with ZMLX_ERR_UNSUPPORTED naming the field and value;
 * malformed input is ZMLX_ERR_FORMAT.  Unknown top-level keys are ignored (as HF does);
 * unknown keys inside a component are refused (they might change its behaviour).
 * The post_processor is ignored: encode is add_special_tokens=False.
 */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tok_quote(const char *s, size_t n, char *buf, size_t size) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, max = size > 8 ? size - 8 : 0;
    buf[o++] = '"';
    for (size_t i = 0; i < n && o < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F || c == '"' || c == '\\') {
            buf[o++] = '\\';
            if (c == '"' || c == '\\') {
                buf[o++] = (char)c;
            } else {
                buf[o++] = 'x';
                buf[o++] = hex[c >> 4];
                buf[o++] = hex[c & 15];
            }
        } else {
            buf[o++] = (char)c;
        }
        if (i + 1 < n && o >= max) {
            memcpy(buf + o, "...", 3);
            o += 3;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* Make a message one line of valid UTF-8: control bytes and invalid UTF-8 (from the
 * input, quoted by jansson or cut by truncation) become '?'. */
void tok_clean(char *m) {
    size_t n = strlen(m);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = tok_utf8_dec(m + i, n - i, &cp);
        if (!l || cp < 0x20 || cp == 0x7F) {
            m[i++] = '?';
            continue;
        }
        i += l;
    }
}

zmlx_status tok_json_keys(json_t *obj, const char *path, const char *const *allowed, zerr *e) {
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i]) {
            char q[80];
            return zerr_set(e, ZMLX_ERR_UNSUPPORTED, "%s.%s: unknown field (not supported)", path,
                            tok_quote(key, strlen(key), q, sizeof q));
        }
    }
    return ZMLX_OK;
}

zmlx_status tok_json_bool(json_t *obj, const char *key, int def, const char *path, int *out,
                          zerr *e) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = def;
        return ZMLX_OK;
    }
    if (!json_is_boolean(v))
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s.%s: expected true or false", path, key);
    *out = json_is_true(v);
    return ZMLX_OK;
}

zmlx_status tok_json_str(json_t *obj, const char *key, int required, const char *path,
                         const char **out, size_t *len, zerr *e) {
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    *len = 0;
    if (!v || json_is_null(v)) {
        if (required) return zerr_set(e, ZMLX_ERR_FORMAT, "%s.%s: missing", path, key);
        return ZMLX_OK;
    }
    if (!json_is_string(v))
        return zerr_set(e, ZMLX_ERR_FORMAT, "%s.%s: expected a string", path, key);
    *out = json_string_value(v);
    *len = json_string_length(v);
    return ZMLX_OK;
}

/* normalizer: null or (nested) empty Sequences.  NFC and friends would need Unicode
 * composition tables zmlx does not carry; refusing beats guessing. */
static zmlx_status tok_normalizer_check(json_t *n, const char *path, int depth, zerr *e) {
    if (!n || json_is_null(n)) return ZMLX_OK;
    const char *type;
    size_t tlen;
    if (!json_is_object(n)) return zerr_set(e, ZMLX_ERR_FORMAT, "%s: expected an object", path);
    zmlx_status st = tok_json_str(n, "type", 1, path, &type, &tlen, e);
    if (st) return st;
    if (strcmp(type, "Sequence") == 0 && depth < TOK_MAX_DEPTH) {
        static const char *const keys[] = {"type", "normalizers", NULL};
        if ((st = tok_json_keys(n, path, keys, e))) return st;
        json_t *arr = json_object_get(n, "normalizers");
        if (!json_is_array(arr))
            return zerr_set(e, ZMLX_ERR_FORMAT, "%s.normalizers: expected an array", path);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char sub[TOK_PATH_MAX];
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", path, i);
            if ((st = tok_normalizer_check(json_array_get(arr, i), sub, depth + 1, e))) return st;
        }
        return ZMLX_OK;
    }
    char q[80];
    return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                    "%s.type: normalizer %s is not supported (only null or an empty Sequence)",
                    path, tok_quote(type, tlen, q, sizeof q));
}

/* decoder: ByteLevel, or a Sequence whose only member is ByteLevel. */
static zmlx_status tok_decoder_check(json_t *d, zerr *e) {
    static const char *const bl_keys[] = {"type", "add_prefix_space", "trim_offsets", "use_regex",
                                          NULL};
    if (!d || json_is_null(d))
        return zerr_set(
            e, ZMLX_ERR_UNSUPPORTED,
            "decoder: null is not supported (byte-level BPE needs a ByteLevel decoder)");
    char path[TOK_PATH_MAX] = "decoder";
    for (int depth = 0;; depth++) {
        const char *type;
        size_t tlen;
        char q[80];
        if (!json_is_object(d)) return zerr_set(e, ZMLX_ERR_FORMAT, "%s: expected an object", path);
        zmlx_status st = tok_json_str(d, "type", 1, path, &type, &tlen, e);
        if (st) return st;
        if (strcmp(type, "ByteLevel") == 0) {
            int flag; /* the ByteLevel decoder ignores its options; only their types matter */
            for (size_t i = 1; i < 4 && st == ZMLX_OK; i++)
                st = tok_json_bool(d, bl_keys[i], 1, path, &flag, e);
            return st ? st : tok_json_keys(d, path, bl_keys, e);
        }
        json_t *arr = json_object_get(d, "decoders");
        if (strcmp(type, "Sequence") != 0 || depth >= TOK_MAX_DEPTH)
            return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                            "%s.type: decoder %s is not supported (only ByteLevel)", path,
                            tok_quote(type, tlen, q, sizeof q));
        if (!json_is_array(arr) || json_array_size(arr) != 1)
            return zerr_set(e, ZMLX_ERR_UNSUPPORTED,
                            "%s.decoders: only a Sequence holding exactly one ByteLevel is "
                            "supported",
                            path);
        strcat(path, ".decoders[0]"); /* 7 + 12 * TOK_MAX_DEPTH < TOK_PATH_MAX */
        d = json_array_get(arr, 0);
    }
}

zmlx_status tok_load_json(const char *data, size_t len, const char *name, zmlx_tokenizer **out,
                          zerr *e) {
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        zerr_set(e, ZMLX_ERR_FORMAT, "%s: invalid JSON at line %d column %d: %s", name, jerr.line,
                 jerr.column, jerr.text);
        if (e) tok_clean(e->msg);
        return ZMLX_ERR_FORMAT;
    }
    zmlx_tokenizer *t = calloc(1, sizeof *t);
    zerr sub;
    zmlx_status st = ZMLX_OK;
    if (!t) {
        st = zerr_set(&sub, ZMLX_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (!json_is_object(root)) {
        st = zerr_set(&sub, ZMLX_ERR_FORMAT, "expected a JSON object at the top level");
        goto done;
    }
    json_t *v = json_object_get(root, "version");
    if (v && !(json_is_string(v) && strcmp(json_string_value(v), "1.0") == 0)) {
        st = zerr_set(&sub, ZMLX_ERR_UNSUPPORTED, "version: only \"1.0\" is supported");
        goto done;
    }
    static const char *const unsupported_if_set[] = {"truncation", "padding"};
    for (size_t i = 0; i < 2; i++) {
        v = json_object_get(root, unsupported_if_set[i]);
        if (v && !json_is_null(v)) {
            st = zerr_set(&sub, ZMLX_ERR_UNSUPPORTED, "%s: must be null (not supported)",
                          unsupported_if_set[i]);
            goto done;
        }
    }
    json_t *model = json_object_get(root, "model");
    const char *type;
    size_t tlen;
    if (!json_is_object(model)) {
        st = zerr_set(&sub, ZMLX_ERR_FORMAT, "model: missing or not an object");
        goto done;
    }
    if ((st = tok_json_str(model, "type", 1, "model", &type, &tlen, &sub))) goto done;
    if (strcmp(type, "BPE") != 0) {
        char q[80];
        st = zerr_set(&sub, ZMLX_ERR_UNSUPPORTED,
                      "model.type: %s is not supported (only BPE with a ByteLevel pre-tokenizer)",
                      tok_quote(type, tlen, q, sizeof q));
        goto done;
    }
    if ((st = tok_normalizer_check(json_object_get(root, "normalizer"), "normalizer", 0, &sub)))
        goto done;
    if ((st = tok_decoder_check(json_object_get(root, "decoder"), &sub))) goto done;
    if ((st = tok_bpe_load(t, model, &sub))) goto done;
    if ((st = tok_pretok_load(t, json_object_get(root, "pre_tokenizer"), &sub))) goto done;
    v = json_object_get(root, "added_tokens");
    if (v && !json_is_null(v) && (st = tok_added_load(t, v, &sub))) goto done;
    st = tok_decode_table(t, &sub);
done:
    json_decref(root);
    if (st) {
        zmlx_tokenizer_free(t);
        zerr_set(e, st, "%s: %s", name, sub.msg);
        if (e) tok_clean(e->msg);
        return st;
    }
    *out = t;
    return ZMLX_OK;
}
