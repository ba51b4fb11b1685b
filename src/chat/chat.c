/*
 * chat.c — the chat templates of include/zmlx.h, written out in C: GLM-4.7, DeepSeek-V3.2
 * and Kimi-K2.5 conversations rendered to text with their special tokens as text, and
 * the ids that end a reply.
 *
 * Each render function follows one reference, named above it, for conversations of
 * system, user and assistant messages; tools, tool calls and images are not rendered
 * (the API has no way to pass them).  Python string methods the templates use are kept
 * exactly: str.strip() uses Python's whitespace (tok_py_isspace), rstrip('\n') only '\n'.
 * Not here: tokenizing (the caller encodes with parse_special = 1) and the chat loop (CLI).
 */
#include "io/genconfig.h"
#include "tokenizer/tok_internal.h" /* UTF-8 helpers and Python's isspace */
#include "zmlx.h"

#include <stdio.h>
#include <string.h>

#define GLM_USER "<|user|>"
#define GLM_ASSISTANT "<|assistant|>"
#define DS_BOS                                                                                     \
    "<\xef\xbd\x9c"                                                                                \
    "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define DS_EOS                                                                                     \
    "<\xef\xbd\x9c"                                                                                \
    "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define DS_USER "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define DS_ASSISTANT                                                                               \
    "<\xef\xbd\x9c"                                                                                \
    "Assistant\xef\xbd\x9c>"
#define KIMI_END "<|im_end|>"
#define KIMI_ASSISTANT "<|im_assistant|>assistant<|im_middle|>"
#define KIMI_SYSTEM "<|im_system|>system<|im_middle|>"

/* Output text, counted past cap so a too-small buffer reports the size needed. */
typedef struct chat_out {
    char *p;
    size_t cap, n;
} chat_out;

static void put_n(chat_out *o, const char *s, size_t n) {
    if (o->n < o->cap) memcpy(o->p + o->n, s, o->cap - o->n < n ? o->cap - o->n : n);
    o->n += n;
}

static void put(chat_out *o, const char *s) {
    put_n(o, s, strlen(s));
}

/* Python's s.strip() on s[0..n): the stripped span. */
static void py_strip(const char **s, size_t *n) {
    uint32_t cp;
    size_t l;
    while (*n && (l = tok_utf8_dec(*s, *n, &cp)) && tok_py_isspace(cp))
        *s += l, *n -= l;
    while (*n && (l = tok_utf8_dec_prev(*s, *n, &cp)) && tok_py_isspace(cp))
        *n -= l;
}

/* The first (or last) occurrence of pat in s[0..n), or NULL. */
static const char *find(const char *s, size_t n, const char *pat, int last) {
    size_t k = strlen(pat);
    const char *hit = NULL;
    for (const char *p = s; k <= n && p <= s + n - k; p++)
        if (!memcmp(p, pat, k)) {
            hit = p;
            if (!last) break;
        }
    return hit;
}

/* ------------------------------------------------------------ GLM-4.7 */

/*
 * zai-org/GLM-4.7(-Flash) chat_template.jinja, assistant branch: without reasoning_content,
 * a content holding "</think>" is split: reasoning = content.split('</think>')[0]
 * .rstrip('\n').split('<think>')[-1].lstrip('\n'), content = content.split('</think>')[-1]
 * .lstrip('\n').  Reasoning is kept (stripped, in <think>...</think>) only after the last
 * user turn; otherwise a bare "</think>" (clear_thinking).  Then content.strip().
 */
static void glm_assistant(chat_out *o, const zmlx_chat_message *m, int keep_reasoning) {
    const char *c = m->content ? m->content : "", *r = m->reasoning;
    size_t cn = strlen(c), rn = r ? strlen(r) : 0;
    const char *end_first = r ? NULL : find(c, cn, "</think>", 0);
    if (end_first) {
        const char *end_last = find(c, cn, "</think>", 1), *open;
        rn = (size_t)(end_first - c);
        while (rn && c[rn - 1] == '\n')
            rn--;
        r = (open = find(c, rn, "<think>", 1)) ? open + 7 : c;
        rn -= (size_t)(r - c);
        while (rn && *r == '\n')
            r++, rn--;
        cn -= (size_t)(end_last + 8 - c);
        c = end_last + 8;
        while (cn && *c == '\n')
            c++, cn--;
    }
    put(o, GLM_ASSISTANT);
    if (keep_reasoning && rn) {
        py_strip(&r, &rn);
        put(o, "<think>");
        put_n(o, r, rn);
        put(o, "</think>");
    } else {
        put(o, "</think>");
    }
    py_strip(&c, &cn);
    put_n(o, c, cn);
}

static void render_glm(chat_out *o, const zmlx_chat_params *p, const zmlx_chat_message *m, size_t n,
                       size_t last_user) {
    if (!p->continuation) put(o, "[gMASK]<sop>");
    for (size_t i = 0; i < n; i++) {
        const char *c = m[i].content ? m[i].content : "";
        if (m[i].role == ZMLX_CHAT_SYSTEM) {
            put(o, "<|system|>");
            put(o, c);
        } else if (m[i].role == ZMLX_CHAT_USER) {
            put(o, GLM_USER);
            put(o, c);
        } else {
            glm_assistant(o, &m[i], last_user == (size_t)-1 || i > last_user);
        }
    }
    if (p->add_generation_prompt)
        put(o, p->thinking ? GLM_ASSISTANT "<think>" : GLM_ASSISTANT "</think>");
}

/* ------------------------------------------------------------ DeepSeek-V3.2 */

/*
 * mlx-lm mlx_lm/chat_templates/deepseek_v32.py, encode_messages + apply_chat_template
 * (drop_thinking=True): system = content; user = <｜User｜>content<｜Assistant｜> then
 * <think> when it is the last user turn in thinking mode, else </think>; assistant =
 * (reasoning</think> when thinking and after the last user turn) content <｜end▁of▁sentence｜>.
 * Without add_generation_prompt a final user turn loses "<｜Assistant｜><think>" (only that
 * suffix: in chat mode "<｜Assistant｜></think>" stays, as in mlx-lm).
 */
static void render_deepseek(chat_out *o, const zmlx_chat_params *p, const zmlx_chat_message *m,
                            size_t n, size_t last_user) {
    if (p->continuation)
        put(o, DS_EOS);
    else
        put(o, DS_BOS);
    for (size_t i = 0; i < n; i++) {
        const char *c = m[i].content ? m[i].content : "";
        if (m[i].role == ZMLX_CHAT_SYSTEM) {
            put(o, c);
        } else if (m[i].role == ZMLX_CHAT_USER) {
            put(o, DS_USER);
            put(o, c);
            int open = i == last_user && p->thinking;
            if (open && i + 1 == n && !p->add_generation_prompt) continue;
            put(o, DS_ASSISTANT);
            put(o, open ? "<think>" : "</think>");
        } else {
            if (p->thinking && (last_user == (size_t)-1 || i > last_user)) {
                put(o, m[i].reasoning ? m[i].reasoning : "");
                put(o, "</think>");
            }
            put(o, c);
            put(o, DS_EOS);
        }
    }
}

/* ------------------------------------------------------------ Kimi-K2.5 */

/*
 * moonshotai Kimi-K2.5 chat_template.jinja (the K2-Thinking template of llama.cpp
 * models/templates/Kimi-K2-Thinking.jinja plus K2.5's thinking switch): a default system
 * turn unless the first message is a system one; every assistant turn without tool calls
 * is history: <think></think>{content} (its reasoning is dropped); the generation prompt
 * opens <think> (thinking) or writes <think></think> (thinking off).
 */
static void render_kimi(chat_out *o, const zmlx_chat_params *p, const zmlx_chat_message *m,
                        size_t n) {
    if (p->continuation)
        put(o, KIMI_END);
    else if (n == 0 || m[0].role != ZMLX_CHAT_SYSTEM)
        put(o, KIMI_SYSTEM "You are Kimi, an AI assistant created by Moonshot AI." KIMI_END);
    for (size_t i = 0; i < n; i++) {
        const char *c = m[i].content ? m[i].content : "";
        if (m[i].role == ZMLX_CHAT_SYSTEM)
            put(o, KIMI_SYSTEM);
        else if (m[i].role == ZMLX_CHAT_USER)
            put(o, "<|im_user|>user<|im_middle|>");
        else
            put(o, KIMI_ASSISTANT "<think></think>");
        put(o, c);
        put(o, KIMI_END);
    }
    if (p->add_generation_prompt)
        put(o, p->thinking ? KIMI_ASSISTANT "<think>" : KIMI_ASSISTANT "<think></think>");
}

/* ------------------------------------------------------------ API */

zmlx_chat_params zmlx_chat_default_params(zmlx_chat_template tmpl) {
    zmlx_chat_params p = {tmpl, 1, 1, 0};
    return p;
}

zmlx_status zmlx_chat_template_for(const char *model_type, zmlx_chat_template *out) {
    static const struct {
        const char *type;
        zmlx_chat_template tmpl;
    } map[] = {{"glm4_moe_lite", ZMLX_CHAT_GLM47},
               {"deepseek_v32", ZMLX_CHAT_DEEPSEEK_V32},
               {"kimi_k25", ZMLX_CHAT_KIMI_K25}};
    for (size_t i = 0; model_type && out && i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(model_type, map[i].type)) {
            *out = map[i].tmpl;
            return ZMLX_OK;
        }
    return out ? ZMLX_ERR_UNSUPPORTED : ZMLX_ERR_INVALID_ARG;
}

const char *zmlx_chat_template_name(zmlx_chat_template tmpl) {
    switch (tmpl) {
    case ZMLX_CHAT_GLM47: return "glm47";
    case ZMLX_CHAT_DEEPSEEK_V32: return "deepseek_v32";
    case ZMLX_CHAT_KIMI_K25: return "kimi_k25";
    }
    return "?";
}

zmlx_status zmlx_chat_format(const zmlx_chat_params *p, const zmlx_chat_message *m, size_t n,
                             char *out, size_t cap, size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!p || !n_out || (!m && n) || (!out && cap)) return ZMLX_ERR_INVALID_ARG;
    size_t last_user = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        if (m[i].role != ZMLX_CHAT_SYSTEM && m[i].role != ZMLX_CHAT_USER &&
            m[i].role != ZMLX_CHAT_ASSISTANT)
            return ZMLX_ERR_INVALID_ARG;
        if (m[i].role == ZMLX_CHAT_USER) last_user = i;
    }
    chat_out o = {out, cap, 0};
    switch (p->tmpl) {
    case ZMLX_CHAT_GLM47: render_glm(&o, p, m, n, last_user); break;
    case ZMLX_CHAT_DEEPSEEK_V32: render_deepseek(&o, p, m, n, last_user); break;
    case ZMLX_CHAT_KIMI_K25: render_kimi(&o, p, m, n); break;
    default: return ZMLX_ERR_INVALID_ARG;
    }
    *n_out = o.n;
    if (o.n < cap) out[o.n] = '\0';
    return o.n > cap ? ZMLX_ERR_LIMIT : ZMLX_OK;
}

/* ------------------------------------------------------------ stop ids */

static void add_id(int32_t *ids, size_t cap, size_t *n, int32_t id) {
    if (id < 0) return;
    for (size_t i = 0; i < *n && i < cap; i++)
        if (ids[i] == id) return;
    if (*n < cap) ids[*n] = id;
    (*n)++;
}

zmlx_status zmlx_chat_stop_ids(zmlx_chat_template tmpl, const zmlx_model *model,
                               const char *model_dir, const zmlx_tokenizer *tok, int32_t *ids,
                               size_t cap, size_t *n_out, char *err, size_t err_size) {
    static const char *const ends[][3] = {
        [ZMLX_CHAT_GLM47] = {GLM_USER, "<|observation|>", NULL},
        [ZMLX_CHAT_DEEPSEEK_V32] = {DS_EOS, NULL, NULL},
        [ZMLX_CHAT_KIMI_K25] = {KIMI_END, NULL, NULL},
    };
    zerr e = {{0}};
    if (n_out) *n_out = 0;
    if (!n_out || (!ids && cap) || (unsigned)tmpl > ZMLX_CHAT_KIMI_K25) return ZMLX_ERR_INVALID_ARG;
    size_t n = 0;
    if (model) {
        int32_t eos[ZCFG_MAX_EOS];
        size_t k = zmlx_model_eos_ids(model, eos, ZCFG_MAX_EOS);
        for (size_t i = 0; i < k && i < ZCFG_MAX_EOS; i++)
            add_id(ids, cap, &n, eos[i]);
    }
    if (model_dir && strncmp(model_dir, "builtin:", 8) != 0) {
        zgen_config g;
        zmlx_status st = zgen_load(model_dir, &g, &e);
        if (st) {
            zerr_copy(&e, err, err_size);
            return st;
        }
        for (int32_t i = 0; i < g.n_eos; i++)
            add_id(ids, cap, &n, g.eos_ids[i]);
    }
    /* -1 (not a token: the byte tokenizer's case, where template tokens are plain text)
     * adds nothing */
    for (size_t i = 0; tok && ends[tmpl][i]; i++)
        add_id(ids, cap, &n, zmlx_tokenizer_token_id(tok, ends[tmpl][i]));
    *n_out = n;
    return n > cap ? ZMLX_ERR_LIMIT : ZMLX_OK;
}
