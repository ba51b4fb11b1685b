/*
 * test_chat.c — the chat templates, stop ids and generation_config.json reader.
 *
 * The pinned strings were checked against the references by rendering the same
 * conversations with them (166 conversation x option combinations, all identical):
 *   GLM-4.7       zai-org GLM-4.7(-Flash) chat_template.jinja under jinja2 with HF's
 *                 trim_blocks/lstrip_blocks (generation prompt confirmed by several
 *                 independent copies: <|assistant|>{'</think>' if not enable_thinking
 *                 else '<think>'})
 *   DeepSeek-V3.2 mlx-lm mlx_lm/chat_templates/deepseek_v32.py (encode_messages)
 *   Kimi-K2.5     llama.cpp models/templates/moonshotai-Kimi-K2-Thinking.jinja with
 *                 K2.5's generation prompt (<think> / <think></think> on `thinking`)
 * Also: a chat continued turn by turn (thinking off) renders exactly as the whole
 * conversation would, which is what lets the interactive chat keep its KV cache.
 */
#include "io/genconfig.h"
#include "tcheck.h"
#include "zmlx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S(x)                                                                                       \
    { ZMLX_CHAT_SYSTEM, x, NULL }
#define U(x)                                                                                       \
    { ZMLX_CHAT_USER, x, NULL }
#define A(x, r)                                                                                    \
    { ZMLX_CHAT_ASSISTANT, x, r }

static const zmlx_chat_message SYS = S("You are a helpful assistant."), U1 = U("Hello!"),
                               U2 = U("  What is 2+2?\n"), A1 = A("Hi there.", "greet back"),
                               A2 = A("<think>\nthink hard\n</think>\n\n  Four.  ", NULL),
                               A3 = A("\xc2\xa0plain answer\xe3\x80\x80", NULL),
                               A4 = A("x</think>y</think>\nz", NULL),
                               U3 = U("\xe4\xb8\xad\xe6\x96\x87 <|user|> [gMASK] text");

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
#define KIMI_SYS "<|im_system|>system<|im_middle|>"
#define KIMI_DEFAULT KIMI_SYS "You are Kimi, an AI assistant created by Moonshot AI.<|im_end|>"
#define KIMI_GEN "<|im_assistant|>assistant<|im_middle|>"

/* Render; NULL-terminated malloc'd text. */
static char *render(zmlx_chat_template tmpl, const zmlx_chat_message *m, size_t n, int gen,
                    int think, int cont) {
    zmlx_chat_params p = zmlx_chat_default_params(tmpl);
    p.add_generation_prompt = gen;
    p.thinking = think;
    p.continuation = cont;
    size_t need = 0, got = 0;
    zmlx_status st = zmlx_chat_format(&p, m, n, NULL, 0, &need);
    CHECK(st == (need ? ZMLX_ERR_LIMIT : ZMLX_OK));
    char *out = malloc(need + 1);
    CHECK(zmlx_chat_format(&p, m, n, out, need + 1, &got) == ZMLX_OK && got == need);
    return out;
}

static void pin(zmlx_chat_template tmpl, const zmlx_chat_message *m, size_t n, int gen, int think,
                const char *want) {
    char *got = render(tmpl, m, n, gen, think, 0);
    CHECKF(!strcmp(got, want), "%s:\n   got  \"%s\"\n   want \"%s\"", zmlx_chat_template_name(tmpl),
           got, want);
    free(got);
}

static void test_glm(void) {
    const zmlx_chat_message c1[] = {SYS, U1}, c2[] = {U1}, c3[] = {U1, A2, U2}, c4[] = {U1, A1},
                            c5[] = {SYS, U1, A3, U3, A4};
    pin(ZMLX_CHAT_GLM47, c1, 2, 1, 1,
        "[gMASK]<sop><|system|>You are a helpful assistant.<|user|>Hello!<|assistant|><think>");
    pin(ZMLX_CHAT_GLM47, c2, 1, 1, 0, "[gMASK]<sop><|user|>Hello!<|assistant|></think>");
    pin(ZMLX_CHAT_GLM47, c3, 3, 1, 1,
        "[gMASK]<sop><|user|>Hello!<|assistant|></think>Four.<|user|>  What is 2+2?\n"
        "<|assistant|><think>");
    pin(ZMLX_CHAT_GLM47, c4, 2, 0, 1,
        "[gMASK]<sop><|user|>Hello!<|assistant|><think>greet back</think>Hi there.");
    pin(ZMLX_CHAT_GLM47, c5, 5, 0, 1,
        "[gMASK]<sop><|system|>You are a helpful assistant.<|user|>Hello!<|assistant|></think>"
        "plain answer<|user|>\xe4\xb8\xad\xe6\x96\x87 <|user|> [gMASK] text<|assistant|>"
        "<think>x</think>z");
    pin(ZMLX_CHAT_GLM47, NULL, 0, 1, 1, "[gMASK]<sop><|assistant|><think>");
}

static void test_deepseek(void) {
    const zmlx_chat_message c1[] = {SYS, U1}, c2[] = {U1, A1, U2}, c3[] = {U1}, c4[] = {U1, A1};
    pin(ZMLX_CHAT_DEEPSEEK_V32, c1, 2, 1, 1,
        DS_BOS "You are a helpful assistant." DS_USER "Hello!" DS_ASSISTANT "<think>");
    pin(ZMLX_CHAT_DEEPSEEK_V32, c2, 3, 1, 0,
        DS_BOS DS_USER "Hello!" DS_ASSISTANT "</think>Hi there." DS_EOS DS_USER
                       "  What is 2+2?\n" DS_ASSISTANT "</think>");
    pin(ZMLX_CHAT_DEEPSEEK_V32, c3, 1, 0, 1, DS_BOS DS_USER "Hello!");
    pin(ZMLX_CHAT_DEEPSEEK_V32, c3, 1, 0, 0, DS_BOS DS_USER "Hello!" DS_ASSISTANT "</think>");
    pin(ZMLX_CHAT_DEEPSEEK_V32, c4, 2, 0, 1,
        DS_BOS DS_USER "Hello!" DS_ASSISTANT "<think>greet back</think>Hi there." DS_EOS);
}

static void test_kimi(void) {
    const zmlx_chat_message c1[] = {U1}, c2[] = {SYS, U1, A1, U2};
    pin(ZMLX_CHAT_KIMI_K25, c1, 1, 1, 1,
        KIMI_DEFAULT "<|im_user|>user<|im_middle|>Hello!<|im_end|>" KIMI_GEN "<think>");
    pin(ZMLX_CHAT_KIMI_K25, c2, 4, 1, 0,
        KIMI_SYS "You are a helpful assistant.<|im_end|><|im_user|>user<|im_middle|>Hello!"
                 "<|im_end|>" KIMI_GEN "<think></think>Hi there.<|im_end|><|im_user|>user"
                 "<|im_middle|>  What is 2+2?\n<|im_end|>" KIMI_GEN "<think></think>");
}

/* Turn by turn (prompt + the reply as generated + the next turn as a continuation) equals
 * the whole conversation rendered at once, thinking off, for every template. */
static void test_continuation(void) {
    for (int tmpl = 0; tmpl < 3; tmpl++) {
        const zmlx_chat_message first[] = {SYS, U1}, next[] = {U2}, whole[] = {SYS, U1, A1, U2};
        char *a = render((zmlx_chat_template)tmpl, first, 2, 1, 0, 0);
        char *b = render((zmlx_chat_template)tmpl, next, 1, 1, 0, 1);
        char *w = render((zmlx_chat_template)tmpl, whole, 4, 1, 0, 0);
        size_t la = strlen(a), lr = strlen("Hi there.");
        char *inc = malloc(la + lr + strlen(b) + 1);
        sprintf(inc, "%s%s%s", a, "Hi there.", b);
        CHECKF(!strcmp(inc, w), "%s: turn by turn \"%s\"\n   whole \"%s\"",
               zmlx_chat_template_name((zmlx_chat_template)tmpl), inc, w);
        free(a);
        free(b);
        free(w);
        free(inc);
    }
    const zmlx_chat_message m[] = {U1};
    char *g = render(ZMLX_CHAT_GLM47, m, 1, 1, 1, 1),
         *d = render(ZMLX_CHAT_DEEPSEEK_V32, m, 1, 1, 1, 1),
         *k = render(ZMLX_CHAT_KIMI_K25, m, 1, 1, 1, 1);
    CHECK(!strcmp(g, "<|user|>Hello!<|assistant|><think>"));
    CHECK(!strcmp(d, DS_EOS DS_USER "Hello!" DS_ASSISTANT "<think>"));
    CHECK(!strcmp(k, "<|im_end|><|im_user|>user<|im_middle|>Hello!<|im_end|>" KIMI_GEN "<think>"));
    free(g);
    free(d);
    free(k);
}

static void test_api(void) {
    zmlx_chat_template t;
    CHECK(zmlx_chat_template_for("glm4_moe_lite", &t) == ZMLX_OK && t == ZMLX_CHAT_GLM47);
    CHECK(zmlx_chat_template_for("deepseek_v32", &t) == ZMLX_OK && t == ZMLX_CHAT_DEEPSEEK_V32);
    CHECK(zmlx_chat_template_for("kimi_k25", &t) == ZMLX_OK && t == ZMLX_CHAT_KIMI_K25);
    CHECK(zmlx_chat_template_for("deepseek_v3", &t) == ZMLX_ERR_UNSUPPORTED);
    CHECK(!strcmp(zmlx_chat_template_name(ZMLX_CHAT_KIMI_K25), "kimi_k25"));
    zmlx_chat_params p = zmlx_chat_default_params(ZMLX_CHAT_GLM47);
    CHECK(p.add_generation_prompt == 1 && p.thinking == 1 && p.continuation == 0);
    zmlx_chat_message bad = {(zmlx_chat_role)7, "x", NULL};
    size_t n = 99;
    char buf[64];
    CHECK(zmlx_chat_format(&p, &bad, 1, buf, sizeof buf, &n) == ZMLX_ERR_INVALID_ARG && n == 0);
    p.tmpl = (zmlx_chat_template)9;
    CHECK(zmlx_chat_format(&p, &U1, 1, buf, sizeof buf, &n) == ZMLX_ERR_INVALID_ARG);
    /* a too-small buffer: the size needed, a NUL only when it fits */
    p.tmpl = ZMLX_CHAT_GLM47;
    CHECK(zmlx_chat_format(&p, &U1, 1, buf, 10, &n) == ZMLX_ERR_LIMIT && n == 46);
    CHECK(zmlx_chat_format(&p, &U1, 1, buf, 47, &n) == ZMLX_OK && buf[46] == '\0');
    CHECK(zmlx_chat_format(&p, &U1, 1, buf, 46, &n) == ZMLX_OK && n == 46);
    zmlx_chat_message null_content = {ZMLX_CHAT_USER, NULL, NULL};
    CHECK(zmlx_chat_format(&p, &null_content, 1, buf, sizeof buf, &n) == ZMLX_OK &&
          !strcmp(buf, "[gMASK]<sop><|user|><|assistant|><think>"));
}

/* ------------------------------------------------------------ generation_config.json */

static void gen_bad(const char *json, zmlx_status want, const char *needle) {
    zgen_config g;
    zerr e = {{0}};
    zmlx_status st = zgen_parse(json, strlen(json), "gc.json", &g, &e);
    CHECKF(st == want && strstr(e.msg, needle) && strstr(e.msg, "gc.json") && g.n_eos == 0,
           "%s -> %s: %s", json, zmlx_status_str(st), e.msg);
}

static void test_genconfig(void) {
    zgen_config g;
    zerr e;
    const char *one = "{\"eos_token_id\": 7}", *null_id = "{\"eos_token_id\": null}";
    CHECK(zgen_parse(one, strlen(one), "f", &g, &e) == ZMLX_OK && g.present && g.n_eos == 1 &&
          g.eos_ids[0] == 7);
    const char *list = "{\"eos_token_id\": [154820, 154827, 154829], \"temperature\": 1.0}";
    CHECK(zgen_parse(list, strlen(list), "f", &g, &e) == ZMLX_OK && g.n_eos == 3 &&
          g.eos_ids[2] == 154829);
    CHECK(zgen_parse("{}", 2, "f", &g, &e) == ZMLX_OK && g.present && g.n_eos == 0);
    CHECK(zgen_parse(null_id, strlen(null_id), "f", &g, &e) == ZMLX_OK && g.n_eos == 0);
    gen_bad("{\"eos_token_id\": [1,", ZMLX_ERR_FORMAT, "invalid JSON");
    gen_bad("[1]", ZMLX_ERR_FORMAT, "expected a JSON object");
    gen_bad("{\"eos_token_id\": \"2\"}", ZMLX_ERR_FORMAT, "\"eos_token_id\" = \"2\"");
    gen_bad("{\"eos_token_id\": -1}", ZMLX_ERR_FORMAT, "must be a token id");
    gen_bad("{\"eos_token_id\": [1, 2.5]}", ZMLX_ERR_FORMAT, "eos_token_id[1]");
    gen_bad("{\"eos_token_id\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}", ZMLX_ERR_UNSUPPORTED,
            "more than 16");
    /* the file: absent is fine, present is read, broken is one clear error */
    char dir[] = "/tmp/zmlx-genconfig-XXXXXX", path[96];
    if (!mkdtemp(dir)) return;
    CHECK(zgen_load(dir, &g, &e) == ZMLX_OK && !g.present && g.n_eos == 0);
    CHECK(zgen_load("/nonexistent-dir", &g, &e) == ZMLX_OK && !g.present);
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"eos_token_id\": [5, 9]}", f);
    fclose(f);
    CHECK(zgen_load(dir, &g, &e) == ZMLX_OK && g.present && g.n_eos == 2 && g.eos_ids[1] == 9);
    f = fopen(path, "w");
    fputs("{\"eos_token_id\": [5, 9]", f);
    fclose(f);
    CHECKF(zgen_load(dir, &g, &e) == ZMLX_ERR_FORMAT && strstr(e.msg, path), "%s", e.msg);
    unlink(path);
    rmdir(dir);
}

/* ------------------------------------------------------------ stop ids */

static void test_stop_ids(void) {
    char path[512], err[ZMLX_ERR_MAX];
    tc_shared(path, sizeof path, "fixtures/tokenizers/glm-bpe");
    zmlx_tokenizer *tok = NULL;
    CHECKF(zmlx_tokenizer_load(path, &tok, err, sizeof err) == ZMLX_OK, "%s", err);
    zmlx_model_params mp = zmlx_model_default_params();
    zmlx_model *m = NULL;
    CHECKF(zmlx_model_load("builtin:glm47-tiny", &mp, &m, err, sizeof err) == ZMLX_OK, "%s", err);
    if (!tok || !m) return;
    int32_t eos[16], ids[32];
    size_t n_eos = zmlx_model_eos_ids(m, eos, 16), n = 0;
    char dir[] = "/tmp/zmlx-stop-XXXXXX", gpath[96];
    if (!mkdtemp(dir)) return;
    snprintf(gpath, sizeof gpath, "%s/generation_config.json", dir);
    FILE *f = fopen(gpath, "w");
    fprintf(f, "{\"eos_token_id\": [%d, 77]}", (int)(n_eos ? eos[0] : 1));
    fclose(f);
    CHECK(zmlx_chat_stop_ids(ZMLX_CHAT_GLM47, m, dir, tok, ids, 32, &n, err, sizeof err) ==
          ZMLX_OK);
    /* config eos first, then 77 (the repeated id once), then <|user|> and <|observation|> */
    int32_t user = zmlx_tokenizer_token_id(tok, "<|user|>");
    int32_t obs = zmlx_tokenizer_token_id(tok, "<|observation|>");
    CHECK(user >= 0 && obs >= 0);
    CHECKF(n == n_eos + 3, "%zu stop ids, %zu eos", n, n_eos);
    CHECK(n >= 3 && ids[n - 3] == 77 && ids[n - 2] == user && ids[n - 1] == obs);
    for (size_t i = 0; i < n_eos && i < n; i++)
        CHECK(ids[i] == eos[i]);
    /* too small: the count needed */
    size_t need = 0;
    CHECK(zmlx_chat_stop_ids(ZMLX_CHAT_GLM47, m, dir, tok, ids, 1, &need, err, sizeof err) ==
              ZMLX_ERR_LIMIT &&
          need == n);
    /* builtin: spec or no dir: no generation_config.json; the byte tokenizer knows no
     * template token */
    zmlx_tokenizer *bytes = NULL;
    zmlx_tokenizer_load_bytes(&bytes, 1024);
    CHECK(zmlx_chat_stop_ids(ZMLX_CHAT_GLM47, m, "builtin:glm47-tiny", bytes, ids, 32, &n, err,
                             sizeof err) == ZMLX_OK &&
          n == n_eos);
    CHECK(zmlx_chat_stop_ids(ZMLX_CHAT_KIMI_K25, NULL, NULL, tok, ids, 32, &n, err, sizeof err) ==
              ZMLX_OK &&
          n == 0);
    /* a broken generation_config.json is an error naming it */
    f = fopen(gpath, "w");
    fputs("{\"eos_token_id\": \"x\"}", f);
    fclose(f);
    CHECK(zmlx_chat_stop_ids(ZMLX_CHAT_GLM47, m, dir, tok, ids, 32, &n, err, sizeof err) ==
              ZMLX_ERR_FORMAT &&
          strstr(err, "generation_config.json") && strstr(err, "eos_token_id"));
    unlink(gpath);
    rmdir(dir);
    zmlx_tokenizer_free(bytes);
    zmlx_tokenizer_free(tok);
    zmlx_model_free(m);
}

/* Kimi's end of turn comes from its tiktoken tokenizer. */
static void test_stop_ids_kimi(void) {
    char dir[512], err[ZMLX_ERR_MAX];
    const char *src = getenv("ZMLX_SRC");
    snprintf(dir, sizeof dir, "%s/tests/fixtures/kimi-tiny", src ? src : ".");
    zmlx_tokenizer *tok = NULL;
    CHECKF(zmlx_tokenizer_load(dir, &tok, err, sizeof err) == ZMLX_OK, "%s", err);
    int32_t ids[8];
    size_t n = 0;
    CHECK(zmlx_chat_stop_ids(ZMLX_CHAT_KIMI_K25, NULL, NULL, tok, ids, 8, &n, err, sizeof err) ==
              ZMLX_OK &&
          n == 1 && ids[0] == zmlx_tokenizer_token_id(tok, "<|im_end|>") && ids[0] > 0);
    /* the rendered prompt encodes with its specials as single ids */
    const zmlx_chat_message m[] = {U1};
    char *text = render(ZMLX_CHAT_KIMI_K25, m, 1, 1, 1, 0);
    int32_t enc[256];
    size_t ne = 0;
    CHECK(zmlx_tokenizer_encode(tok, text, strlen(text), 1, enc, 256, &ne) == ZMLX_OK);
    CHECK(ne > 4 && enc[0] == zmlx_tokenizer_token_id(tok, "<|im_system|>") &&
          enc[ne - 1] == zmlx_tokenizer_token_id(tok, "<think>"));
    free(text);
    zmlx_tokenizer_free(tok);
}

int main(void) {
    test_glm();
    test_deepseek();
    test_kimi();
    test_continuation();
    test_api();
    test_genconfig();
    test_stop_ids();
    test_stop_ids_kimi();
    return tc_done();
}
