/*
 * tok_internal.h — the types shared by the files of the tokenizer module
 * (src/tokenizer/): the loaded tokenizer, its string tables, BPE merges, pre-tokenizer
 * steps, added tokens and the per-call scratch space.
 *
 * Not a public header: only the .c files of src/tokenizer/, the tokenizer tests and the
 * fuzz target include it.  The public API is the tokenizer block of include/zmlx.h.
 *
 * Pipeline of one encode call (the order Hugging Face tokenizers 0.23 uses):
 *
 *   text --added.c--> [segment | added id | segment ...]       (two passes: tokens with
 *        |                                                      normalized=false, then =true)
 *        +-segment--pretok.c--> pieces (Split / Digits / ByteLevel steps, regex.c)
 *                                 +-piece--bpe.c--> ids
 *
 * The normalizer is always the identity (any real normalizer is refused at load).
 *
 * tiktoken tokenizers (Kimi: tiktoken.model + tokenizer_config.json) take another path,
 * tiktoken.c / tiktoken_bpe.c / kimi_regex.c, and keep their tables in `tk`:
 *
 *   text --> 400k-char windows --> runs of <= 25000 (non-)space chars     (tokenization_kimi.py)
 *        --> [segment | special id | ...] --> Kimi regex pieces --> rank-merge BPE --> ids
 */
#ifndef ZMLX_TOKENIZER_TOK_INTERNAL_H
#define ZMLX_TOKENIZER_TOK_INTERNAL_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <jansson.h>
#include <pcre2.h>

#include "core/err.h"
#include "zmlx.h"

#include <stddef.h>
#include <stdint.h>

#define TOK_MAX_ID ((int32_t)1 << 24) /* every token id must be below this */
#define TOK_ID_SLACK 65536            /* ... and below 2 * (number of tokens) + this */
#define TOK_MAX_STEPS 64              /* pre-tokenizer steps once Sequences are flattened */
#define TOK_MAX_DEPTH 8               /* nesting of Sequence objects */
#define TOK_PATH_MAX 160              /* length of a JSON field path in messages */

/* ------------------------------------------------------------ string map (vocab.c) */

/* Strings (any bytes) -> int32 values, with the strings copied into one pool. */
typedef struct tok_strent {
    uint32_t off, len; /* in pool */
    int32_t val;
} tok_strent;

typedef struct tok_strmap {
    char *pool;
    size_t pool_len, pool_cap;
    tok_strent *ents;
    size_t n_ents, cap_ents;
    uint32_t *slots; /* entry index + 1; 0 = empty; power-of-two size */
    size_t mask;
} tok_strmap;

void tok_strmap_free(tok_strmap *m);
/* Insert or overwrite (a later value replaces an earlier one, as a HashMap does).
 * Returns the entry index, or -1 when memory runs out. */
int64_t tok_strmap_put(tok_strmap *m, const char *s, size_t n, int32_t val);
/* Entry index of s, or -1. */
int64_t tok_strmap_find(const tok_strmap *m, const char *s, size_t n);
/* Value of s, or -1. */
int32_t tok_strmap_get(const tok_strmap *m, const char *s, size_t n);
static inline const char *tok_strmap_str(const tok_strmap *m, size_t ent) {
    return m->pool + m->ents[ent].off;
}

/* (a, b) id pairs -> (rank, merged id): the BPE merge table. */
typedef struct tok_merge_slot {
    uint64_t key; /* (a << 32) | b; UINT64_MAX = empty */
    uint32_t rank;
    int32_t id;
} tok_merge_slot;

typedef struct tok_mergemap {
    tok_merge_slot *slots;
    size_t mask, n;
} tok_mergemap;

int tok_mergemap_init(tok_mergemap *m, size_t expected);
void tok_mergemap_free(tok_mergemap *m);
void tok_mergemap_put(tok_mergemap *m, int32_t a, int32_t b, uint32_t rank, int32_t id);
/* 1 and (*rank, *id) when the pair merges, else 0. */
int tok_mergemap_get(const tok_mergemap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *id);

/* ------------------------------------------------------------ pre-tokenizer steps */

typedef enum tok_behavior {
    TOK_REMOVED = 0,
    TOK_ISOLATED,
    TOK_MERGED_WITH_PREVIOUS,
    TOK_MERGED_WITH_NEXT,
    TOK_CONTIGUOUS,
} tok_behavior;

typedef enum tok_step_kind {
    TOK_STEP_SPLIT = 0, /* Split, and Digits (a Split on \p{N}) */
    TOK_STEP_BYTELEVEL, /* optional prefix space, optional GPT-2 regex split, byte mapping */
} tok_step_kind;

typedef struct tok_step {
    tok_step_kind kind;
    pcre2_code *re; /* SPLIT: the pattern; BYTELEVEL: the GPT-2 regex or NULL */
    tok_behavior behavior;
    int invert;
    int add_prefix_space;
} tok_step;

/* ------------------------------------------------------------ added tokens (added.c) */

typedef struct tok_added_tok {
    uint32_t off, len; /* content, in the added content map's pool */
    int32_t id;
    unsigned char single_word, lstrip, rstrip, normalized, special;
    unsigned char special_content; /* content is in the special set (what encode checks) */
} tok_added_tok;

typedef struct tok_trie_node {
    int32_t child, sibling; /* node indices, -1 = none */
    int32_t term;           /* token id when a pattern ends here, else -1 */
    unsigned char byte;
} tok_trie_node;

/* Byte trie for leftmost-longest matching (what HF's Aho-Corasick does). */
typedef struct tok_trie {
    tok_trie_node *nodes; /* nodes[0] is the root */
    size_t n, cap;
    unsigned char first[32]; /* bitmap of first bytes */
} tok_trie;

typedef struct tok_added {
    tok_strmap content;  /* content -> id        (HF added_tokens_map) */
    tok_strmap special;  /* contents seen special (HF special_tokens_set) */
    tok_added_tok *toks; /* every token ever stored; by_id points at the live ones */
    size_t n_toks, cap_toks;
    int32_t *by_id; /* id -> index in toks or -1 (HF added_tokens_map_r); n_by_id entries */
    size_t n_by_id;
    int32_t max_id;      /* largest id in `content` (-1: none) */
    tok_trie raw;        /* tokens with normalized=false, matched first on the raw text */
    tok_trie norm;       /* tokens with normalized=true, matched on what is left */
    pcre2_code *word_re; /* Unicode \w for single_word tokens; NULL when none */
} tok_added;

/* ------------------------------------------------------------ tiktoken (tiktoken.c) */

#define TOK_TK_SPECIALS 256 /* ids n_base .. n_base + 255, as tokenization_kimi.py reserves */

typedef struct tok_tiktoken {
    tok_strmap ranks;    /* token bytes -> rank, which is the id; ranks are 0 .. n_base - 1 */
    int32_t n_base;      /* number of ranks (tiktoken's len(mergeable_ranks)) */
    tok_strmap specials; /* content -> id in [n_base, n_base + TOK_TK_SPECIALS) */
    unsigned char special_first[32]; /* bitmap of the specials' first bytes */
    pcre2_code *re;                  /* the Kimi pre-tokenizer pattern (kimi_regex.c) */
} tok_tiktoken;

/* ------------------------------------------------------------ the tokenizer */

struct zmlx_tokenizer {
    int bytes_only;  /* the builtin byte-level fallback: none of the tables below */
    int32_t n_ids;   /* one more than the largest id known */
    tok_tiktoken *tk; /* tiktoken.model tokenizers: the tables used instead of model/steps/added */

    /* model (BPE) */
    tok_strmap vocab;   /* token -> id */
    size_t vocab_count; /* distinct vocab entries (HF get_vocab_size) */
    int32_t *vocab_ent; /* [vocab_n] id -> vocab entry index, -1 */
    int32_t vocab_n;    /* one more than the largest vocab id */
    tok_mergemap merges;
    int32_t unk_id; /* -1 = no unk_token */
    int fuse_unk, ignore_merges;
    char *prefix, *suffix; /* continuing_subword_prefix / end_of_word_suffix or NULL */
    size_t prefix_len, suffix_len;
    int32_t *cp_id; /* [0x800] id of the one-char token of each code point < 0x800, -1;
                       NULL when a prefix or suffix makes it inapplicable */

    tok_step steps[TOK_MAX_STEPS];
    size_t n_steps;

    tok_added added;

    /* decoding: the bytes each id stands for (ByteLevel decoder applied) */
    char *dec_pool;
    uint32_t *dec_off, *dec_len; /* [n_ids]; dec_len = UINT32_MAX for unknown ids */
};

/* ------------------------------------------------------------ per-call scratch */

typedef struct tok_piece {
    const char *p;
    size_t n;
} tok_piece;

typedef struct tok_event {
    size_t start, end;
    int flag; /* is_match before the fold, remove after it */
} tok_event;

typedef struct tok_sym {
    int32_t id, prev, next;
    uint32_t len; /* bytes covered; 0 = merged away */
} tok_sym;

typedef struct tok_heap_item {
    uint32_t rank, pos;
    int32_t id;
} tok_heap_item;

typedef struct tok_scratch {
    pcre2_match_data *md;
    tok_piece *pc[2];
    size_t pc_cap[2];
    char *buf[2]; /* ByteLevel outputs (alternating) */
    size_t buf_cap[2];
    char *tmp; /* prefix-space copy */
    size_t tmp_cap;
    tok_event *ev;
    size_t ev_cap;
    tok_sym *syms;
    size_t syms_cap;
    tok_heap_item *heap;
    size_t heap_cap;
    char *word; /* prefix + char + suffix lookups */
    size_t word_cap;
} tok_scratch;

/* Output ids: counted past cap so a too-small buffer reports the size needed. */
typedef struct tok_out {
    int32_t *ids;
    size_t cap, n;
} tok_out;

static inline void tok_out_push(tok_out *o, int32_t id) {
    if (o->n < o->cap) o->ids[o->n] = id;
    o->n++;
}

/* Grow *p (elements of `size` bytes) to hold at least `need`; 0 on success. */
int tok_grow(void **p, size_t *cap, size_t need, size_t size);

/* ------------------------------------------------------------ bytelevel.c */

uint32_t tok_byte_to_cp(unsigned char b);
int tok_cp_to_byte(uint32_t cp); /* -1 when cp is not in the GPT-2 alphabet */
/* Map bytes to the UTF-8 of their alphabet chars; out needs 2 * n bytes. Returns length. */
size_t tok_bytelevel_map(const char *s, size_t n, char *out);
/* Length (1-4) of the valid UTF-8 sequence starting s[0..n), or 0 if invalid. */
size_t tok_utf8_dec(const char *s, size_t n, uint32_t *cp);
/* Length of the char before s[end] (0 if none or invalid) */
size_t tok_utf8_dec_prev(const char *s, size_t end, uint32_t *cp);
/* Bytes to step over at s[0..n): a valid char's length, else 1 (n > 0). */
size_t tok_utf8_step(const char *s, size_t n);
size_t tok_utf8_enc(uint32_t cp, char *out);
int tok_is_white_space(uint32_t cp); /* Unicode White_Space (Rust char::is_whitespace) */

/* ------------------------------------------------------------ unicode.c */

#define TOK_UNI_MAX 4096 /* room for every range of the Unicode 16 table, written out */

/* Ranges "\x{..}-\x{..}..." of code points that entered (entering=1) or left general
 * category `set` ("L", "Lu", "LC", or "W" = word categories) between Unicode 14 and 16.
 * Returns the length (output truncated to cap). */
size_t tok_uni_ranges(const char *set, int entering, char *out, size_t cap);
/* Canonical short general category of a property name (loose: "Letter", "lu", ...). */
int tok_gc_name(const char *name, size_t n, char out[3]);
/* Body of a character class for a word char, as one of these engines sees it: */
enum {
    TOK_WORD_RUST = 0,   /* Rust regex \w: HF's single_word check */
    TOK_WORD_ONIG,       /* Oniguruma \w outside a class: HF's regexes */
    TOK_WORD_ONIG_CLASS, /* Oniguruma \w inside [...] */
};
void tok_word_class(char *out, size_t cap, int kind);

/* ------------------------------------------------------------ regex.c */

enum {
    TOK_RE_ONIG = 0, /* a tokenizer.json regex (Oniguruma syntax, as HF compiles it) */
    TOK_RE_LITERAL,  /* a plain string (Split {"String": ...}) */
    TOK_RE_PCRE2,    /* a pattern written for PCRE2 by this module */
};

/* Compile a pattern into PCRE2 (UTF, UCP, invalid UTF-8 allowed in subjects, JIT). */
zmlx_status tok_regex_compile(const char *pat, size_t len, int mode, const char *field,
                              pcre2_code **out, zerr *e);

/* Onig-style successive non-overlapping matches (onig crate FindMatches). */
typedef struct tok_regex_iter {
    size_t last_end;
    int skip_next_empty;
} tok_regex_iter;

/* 1 = match in [*ms, *me), 0 = no more, <0 = PCRE2 error. */
int tok_regex_next(const pcre2_code *re, const char *s, size_t n, tok_regex_iter *it,
                   tok_scratch *sc, size_t *ms, size_t *me);
/* Does re match at exactly s[0..n) from its start (anchored)? */
int tok_regex_match_at(const pcre2_code *re, const char *s, size_t n, tok_scratch *sc);

/* ------------------------------------------------------------ vocab.c / bpe.c */

/* The min-heap of merge candidates, ordered by (rank, pos); the caller sized h. */
void tok_heap_push(tok_heap_item *h, size_t *n, tok_heap_item it);
tok_heap_item tok_heap_pop(tok_heap_item *h, size_t *n);

zmlx_status tok_bpe_load(zmlx_tokenizer *t, json_t *model, zerr *e);
/* One pre-tokenized piece (byte-level mapped) -> ids. */
zmlx_status tok_bpe_word(const zmlx_tokenizer *t, tok_scratch *sc, const char *w, size_t n,
                         tok_out *out);

/* ------------------------------------------------------------ pretok.c */

zmlx_status tok_pretok_load(zmlx_tokenizer *t, json_t *pre, zerr *e);
/* A text segment (no added tokens in it) -> pieces -> BPE ids. */
zmlx_status tok_pretok_encode(const zmlx_tokenizer *t, tok_scratch *sc, const char *s, size_t n,
                              tok_out *out);

/* ------------------------------------------------------------ added.c */

zmlx_status tok_added_load(zmlx_tokenizer *t, json_t *arr, zerr *e);
void tok_added_free(tok_added *a);
zmlx_status tok_added_encode(const zmlx_tokenizer *t, tok_scratch *sc, const char *s, size_t n,
                             int parse_special, tok_out *out);
/* Content of added token `id`, or NULL. */
const char *tok_added_content(const tok_added *a, int32_t id, size_t *len);
int32_t tok_added_id(const tok_added *a, const char *s, size_t n);

/* ------------------------------------------------------------ load.c / tokenizer.c */

/* Parse a tokenizer.json held in memory; `name` names it in messages. */
zmlx_status tok_load_json(const char *data, size_t len, const char *name, zmlx_tokenizer **out,
                          zerr *e);
/* Field helpers for the loaders: each fails with a message naming `path`. */
zmlx_status tok_json_keys(json_t *obj, const char *path, const char *const *allowed, zerr *e);
zmlx_status tok_json_bool(json_t *obj, const char *key, int def, const char *path, int *out,
                          zerr *e);
/* NULL string (JSON null or absent) is returned as *out = NULL. */
zmlx_status tok_json_str(json_t *obj, const char *key, int required, const char *path,
                         const char **out, size_t *len, zerr *e);
/* Make a message one line of valid UTF-8 (control bytes, invalid UTF-8 -> '?'). */
void tok_clean(char *m);
/* s quoted for a message in buf (control bytes escaped, long strings cut with "..."). */
const char *tok_quote(const char *s, size_t n, char *buf, size_t size);

/* Build dec_pool / dec_off / dec_len once the model and added tokens are loaded. */
zmlx_status tok_decode_table(zmlx_tokenizer *t, zerr *e);

/* The bytes id decodes to (*p, *n); buf (16 bytes) backs the byte tokenizer's "<id>". */
zmlx_status tok_decode_id(const zmlx_tokenizer *t, int32_t id, char *buf, const char **p,
                          size_t *n);

void tok_scratch_free(tok_scratch *sc);
zmlx_status tok_scratch_init(tok_scratch *sc);

/* Read a whole file (at most 1 GiB) into a malloc'd buffer. */
zmlx_status tok_read_file(const char *path, char **data, size_t *len, zerr *e);

/* ------------------------------------------------------------ tiktoken.c / tiktoken_bpe.c */

/* Parse a tiktoken.model and a tokenizer_config.json held in memory (`config` may be NULL:
 * every special is then "<|reserved_token_N|>"); `name`, the directory, starts messages:
 * "NAME/tiktoken.model: line 3: ...". */
zmlx_status tok_tk_parse(const char *model, size_t model_len, const char *config,
                         size_t config_len, const char *name, zmlx_tokenizer **out, zerr *e);
/* Load dir/tiktoken.model and dir/tokenizer_config.json. */
zmlx_status tok_tk_load(const char *dir, zmlx_tokenizer **out, zerr *e);
void tok_tk_free(tok_tiktoken *tk);
/* The whole encode of a tiktoken tokenizer (what tokenization_kimi.py's encode does). */
zmlx_status tok_tk_encode(const zmlx_tokenizer *t, tok_scratch *sc, const char *s, size_t n,
                          int parse_special, tok_out *out);
/* One regex piece -> ids: whole-piece lookup, else merge by lowest rank (tiktoken). */
zmlx_status tok_tk_piece(const tok_tiktoken *tk, tok_scratch *sc, const char *w, size_t n,
                         tok_out *out);
/* Id of an exact token: specials first, then the ranks; -1 if absent. */
int32_t tok_tk_token_id(const tok_tiktoken *tk, const char *s, size_t n);
/* Python's str.isspace() (tokenization_kimi.py splits runs with it). */
int tok_py_isspace(uint32_t cp);

/* ------------------------------------------------------------ kimi_regex.c */

/* Kimi's pat_str (tiktoken / Rust regex syntax, with && class intersections) compiled as an
 * equivalent PCRE2 pattern; *text (optional) receives the PCRE2 source, malloc'd. */
zmlx_status tok_kimi_regex(pcre2_code **out, char **text, zerr *e);

#endif
