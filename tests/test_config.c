/*
 * test_config.c — config.json parsing: the shared fixture configs of every family in both
 * key dialects, defaults, and one error case per validation (each message must name the
 * field at fault and be one line).  Error cases are built by editing a fixture with jansson.
 */
#include "io/config.h"
#include "tcheck.h"

#include <jansson.h>
#include <stdbool.h>
#include <math.h>

/* Load a shared fixture; false (a counted failure) when it cannot be read or parsed. */
static bool load_fixture(const char *rel, zmlx_config *c) {
    char path[1024];
    zerr e = {{0}};
    zmlx_status st = zcfg_load(tc_shared(path, sizeof path, rel), c, &e);
    CHECKF(st == ZMLX_OK, "%s: %s", rel, e.msg);
    return st == ZMLX_OK;
}

/* Parse `text` (NUL-terminated); the message lands in e. */
static zmlx_status parse(const char *text, zmlx_config *c, zerr *e) {
    e->msg[0] = 0;
    return zcfg_parse(text, strlen(text), "config.json", c, e);
}

/* A fixture with one key replaced (value = JSON text) or removed (value = NULL); "a.b" edits
 * key b of object a.  Returns a malloc'd JSON string. */
static char *edit(const char *rel, const char *key, const char *value) {
    char path[1024];
    json_error_t je;
    json_t *root = json_load_file(tc_shared(path, sizeof path, rel), 0, &je);
    CHECKF(root != NULL, "%s: %s", rel, je.text);
    if (!root) return strdup("{}");
    json_t *obj = root;
    char k[128];
    snprintf(k, sizeof k, "%s", key);
    char *dot = strchr(k, '.');
    if (dot) {
        *dot = 0;
        obj = json_object_get(root, k);
        memmove(k, dot + 1, strlen(dot + 1) + 1);
    }
    if (value)
        json_object_set_new(obj, k, json_loads(value, JSON_DECODE_ANY, &je));
    else
        json_object_del(obj, k);
    char *s = json_dumps(root, 0);
    json_decref(root);
    return s;
}

/* Expect an edit of a fixture to fail with `want`, naming `field` in the message. */
static void expect_err(const char *rel, const char *key, const char *value, zmlx_status want,
                       const char *field) {
    char *text = edit(rel, key, value);
    zmlx_config c;
    zerr e;
    zmlx_status st = parse(text, &c, &e);
    CHECKF(st == want, "%s=%s: status %d, want %d (%s)", key, value ? value : "<del>", st, want,
           e.msg);
    CHECKF(strstr(e.msg, field) != NULL, "%s=%s: message lacks %s: %s", key,
           value ? value : "<del>", field, e.msg);
    CHECKF(strchr(e.msg, '\n') == NULL && strncmp(e.msg, "config.json", 11) == 0,
           "not one line naming the file: %s", e.msg);
    free(text);
}

/* Expect an edit of a fixture to parse; the result lands in c. */
static void expect_ok(const char *rel, const char *key, const char *value, zmlx_config *c) {
    char *text = edit(rel, key, value);
    zerr e;
    memset(c, 0, sizeof *c); /* defined values for the caller's checks even on failure */
    zmlx_status st = parse(text, c, &e);
    CHECKF(st == ZMLX_OK, "%s=%s: %s", key, value ? value : "<del>", e.msg);
    free(text);
}

#define SAME(f) CHECKF(a->f == b->f, "field %s differs", #f)
static void check_same(const zmlx_config *a, const zmlx_config *b) {
    SAME(family);
    SAME(vocab_size);
    SAME(hidden_size);
    SAME(n_layers);
    SAME(n_heads);
    SAME(q_lora_rank);
    SAME(kv_lora_rank);
    SAME(qk_nope_dim);
    SAME(qk_rope_dim);
    SAME(v_head_dim);
    SAME(intermediate_size);
    SAME(moe_intermediate_size);
    SAME(n_routed_experts);
    SAME(n_shared_experts);
    SAME(experts_per_tok);
    SAME(n_group);
    SAME(topk_group);
    SAME(routed_scaling_factor);
    SAME(norm_topk_prob);
    SAME(scoring);
    SAME(n_dense_layers);
    SAME(rms_norm_eps);
    SAME(attn_norm_eps);
    SAME(rope_type);
    SAME(rope_theta);
    SAME(rope_factor);
    SAME(rope_beta_fast);
    SAME(rope_beta_slow);
    SAME(rope_mscale);
    SAME(rope_mscale_all_dim);
    SAME(rope_orig_max_pos);
    SAME(max_position_embeddings);
    SAME(tie_word_embeddings);
    SAME(bos_id);
    SAME(pad_id);
    SAME(n_eos);
    SAME(index_n_heads);
    SAME(index_head_dim);
    SAME(index_topk);
    CHECK(strcmp(a->model_type, b->model_type) == 0);
    CHECK(strcmp(a->tensor_prefix, b->tensor_prefix) == 0);
    CHECK(memcmp(a->layer_is_moe, b->layer_is_moe, sizeof a->layer_is_moe) == 0);
    CHECK(memcmp(a->eos_ids, b->eos_ids, sizeof a->eos_ids) == 0);
}
#undef SAME

static void test_glm_tiny_dialects(void) {
    zmlx_config a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0xAB, sizeof b);
    if (!load_fixture("fixtures/models/glm47-tiny/config.json", &a) ||
        !load_fixture("fixtures/models/glm47-tiny-v5/config.json", &b))
        return;
    check_same(&a, &b);
    CHECK(a.family == ZFAM_GLM4_MOE_LITE && strcmp(zfamily_name(a.family), "glm4_moe_lite") == 0);
    CHECK(a.n_layers == 3 && a.layer_is_moe[0] == 0 && a.layer_is_moe[1] == 1);
    CHECK(a.layer_is_moe[2] == 1 && a.n_dense_layers == 1);
    CHECK(a.n_eos == 1 && a.eos_ids[0] == 1 && a.bos_id == 0 && a.pad_id == -1);
    CHECK(a.rope_type == ZROPE_DEFAULT && a.rope_theta == 1e6);
    CHECK(a.rms_norm_eps == 1e-5f && a.attn_norm_eps == 1e-5f);
    CHECK(a.scoring == ZSCORE_SIGMOID && a.norm_topk_prob && a.routed_scaling_factor == 1.8f);
    CHECK(a.q_lora_rank == 64 && a.qk_nope_dim == 32 && a.qk_rope_dim == 16);
    CHECK(a.tensor_prefix[0] == 0);
}

static void test_glm_flash(void) {
    zmlx_config c;
    if (!load_fixture("fixtures/configs/glm-4.7-flash.config.json", &c)) return;
    CHECK(c.family == ZFAM_GLM4_MOE_LITE && strcmp(c.model_type, "glm4_moe_lite") == 0);
    CHECK(c.n_layers == 47 && c.n_routed_experts == 64 && c.experts_per_tok == 4);
    CHECK(c.hidden_size == 2048 && c.vocab_size == 154880 && c.n_heads == 20);
    CHECK(c.n_eos == 3 && c.eos_ids[0] == 154820 && c.eos_ids[1] == 154827);
    CHECK(c.eos_ids[2] == 154829 && c.pad_id == 154820 && c.bos_id == -1);
    CHECK(c.q_lora_rank == 768 && c.kv_lora_rank == 512 && c.qk_nope_dim == 192);
    CHECK(c.qk_rope_dim == 64 && c.v_head_dim == 256 && c.max_position_embeddings == 202752);
    CHECK(c.scoring == ZSCORE_SIGMOID); /* scoring_func is absent in this file */
    CHECK(c.intermediate_size == 10240 && c.moe_intermediate_size == 1536);
    CHECK(c.n_shared_experts == 1 && c.n_group == 1 && c.topk_group == 1);
    CHECK(c.layer_is_moe[0] == 0 && c.layer_is_moe[1] == 1 && c.layer_is_moe[46] == 1);
    CHECK(c.n_dense_layers == 1 && c.rope_type == ZROPE_DEFAULT && c.rope_theta == 1e6);
    CHECK(c.routed_scaling_factor == 1.8f && !c.tie_word_embeddings);
    CHECK(c.index_n_heads == 0 && c.index_topk == 0);
}

static void test_deepseek_v32(void) {
    zmlx_config c;
    if (!load_fixture("fixtures/configs/deepseek-v3.2.config.json", &c)) return;
    CHECK(c.family == ZFAM_DEEPSEEK_V32 && strcmp(zfamily_name(c.family), "deepseek_v32") == 0);
    CHECK(c.rope_type == ZROPE_YARN && c.rope_factor == 40.0 && c.rope_orig_max_pos == 4096);
    CHECK(c.rope_beta_fast == 32.0 && c.rope_beta_slow == 1.0 && c.rope_theta == 10000.0);
    CHECK(c.rope_mscale == 1.0 && c.rope_mscale_all_dim == 1.0);
    CHECK(c.index_n_heads == 64 && c.index_head_dim == 128 && c.index_topk == 2048);
    CHECK(c.n_dense_layers == 3 && !c.layer_is_moe[2] && c.layer_is_moe[3] && c.layer_is_moe[60]);
    CHECK(c.attn_norm_eps == 1e-6f && c.rms_norm_eps == 1e-6f);
    CHECK(c.n_layers == 61 && c.n_routed_experts == 256 && c.experts_per_tok == 8);
    CHECK(c.n_group == 8 && c.topk_group == 4 && c.routed_scaling_factor == 2.5f);
    CHECK(c.bos_id == 0 && c.n_eos == 1 && c.eos_ids[0] == 1 && c.pad_id == -1);
    CHECK(c.max_position_embeddings == 163840 && c.q_lora_rank == 1536);
}

static void test_kimi(void) {
    zmlx_config c;
    if (!load_fixture("fixtures/configs/kimi-k2.5.config.json", &c)) return;
    CHECK(c.family == ZFAM_KIMI_K25 && strcmp(c.model_type, "kimi_k25") == 0);
    CHECK(strcmp(c.tensor_prefix, "language_model.") == 0);
    CHECK(c.n_routed_experts == 384 && c.experts_per_tok == 8 && c.n_heads == 64);
    CHECK(c.rope_type == ZROPE_YARN && c.rope_factor == 64.0 && c.rope_beta_fast == 32.0);
    CHECK(c.rope_theta == 50000.0 && c.rope_orig_max_pos == 4096);
    CHECK(c.max_position_embeddings == 262144 && c.vocab_size == 163840);
    CHECK(c.bos_id == 163584 && c.eos_ids[0] == 163585 && c.n_eos == 1 && c.pad_id == 163839);
    CHECK(c.attn_norm_eps == 1e-6f && c.rms_norm_eps == 1e-5f && c.n_dense_layers == 1);
    CHECK(c.routed_scaling_factor == 2.827f && c.index_topk == 0);
    /* beta_fast is read from the file, never assumed */
    expect_ok("fixtures/configs/kimi-k2.5.config.json", "text_config.rope_scaling",
              "{\"type\":\"yarn\",\"factor\":64,\"beta_fast\":1.0,\"beta_slow\":1.0,"
              "\"original_max_position_embeddings\":4096}",
              &c);
    CHECK(c.rope_beta_fast == 1.0 && c.rope_mscale == 1.0 && c.rope_mscale_all_dim == 0.0);
    expect_ok("fixtures/configs/kimi-k2.5.config.json", "text_config.model_type", "\"deepseek_v3\"",
              &c);
    CHECK(c.family == ZFAM_KIMI_K25);
    expect_ok("fixtures/configs/kimi-k2.5.config.json", "text_config.eos_token_id", NULL, &c);
    CHECK(c.n_eos == 1 && c.eos_ids[0] == 163585); /* from the top level */
}

static void test_tiny_deepseek(void) {
    zmlx_config c;
    if (!load_fixture("fixtures/models/dsv3-tiny/config.json", &c)) return;
    CHECK(c.family == ZFAM_DEEPSEEK_V3 && c.rope_type == ZROPE_YARN && c.rope_factor == 4.0);
    CHECK(c.rope_theta == 10000.0 && c.rope_mscale_all_dim == 1.0 && c.rope_orig_max_pos == 4096);
    CHECK(c.qk_nope_dim == 32 && c.qk_rope_dim == 16); /* "head_dim": 16 is not the head size */
    CHECK(c.n_group == 4 && c.topk_group == 2 && c.n_routed_experts == 16);
    CHECK(c.n_dense_layers == 1 && c.layer_is_moe[1] && c.layer_is_moe[2]);
    CHECK(c.attn_norm_eps == 1e-6f && c.index_n_heads == 0 && c.pad_id == -1);

    if (!load_fixture("fixtures/models/dsv32-tiny/config.json", &c)) return;
    CHECK(c.family == ZFAM_DEEPSEEK_V32 && c.index_n_heads == 16 && c.index_head_dim == 32);
    CHECK(c.index_topk == 8 && c.n_dense_layers == 1 && !c.layer_is_moe[0] && c.layer_is_moe[2]);
    CHECK(c.rope_type == ZROPE_YARN && c.rope_factor == 4.0 && c.attn_norm_eps == 1e-6f);
}

static void test_defaults_and_precedence(void) {
    const char *v1 = "fixtures/models/glm47-tiny/config.json";
    const char *v5 = "fixtures/models/glm47-tiny-v5/config.json";
    zmlx_config c;
    expect_ok(v1, "rope_scaling", "{\"type\":\"yarn\",\"factor\":4}", &c);
    CHECK(c.rope_type == ZROPE_YARN && c.rope_factor == 4.0 && c.rope_beta_fast == 32.0);
    CHECK(c.rope_beta_slow == 1.0 && c.rope_mscale == 1.0 && c.rope_mscale_all_dim == 0.0);
    CHECK(c.rope_orig_max_pos == c.max_position_embeddings);
    expect_ok(v5, "rope_theta", "5", &c); /* rope_parameters wins over a stray rope_theta */
    CHECK(c.rope_theta == 1e6);
    expect_ok(v1, "rope_parameters", "{\"rope_type\":\"yarn\",\"factor\":2}", &c);
    CHECK(c.rope_type == ZROPE_YARN && c.rope_factor == 2.0 && c.rope_theta == 1e6);
    expect_ok(v1, "moe_layer_freq", "2", &c);
    CHECK(!c.layer_is_moe[0] && !c.layer_is_moe[1] && c.layer_is_moe[2] && c.n_dense_layers == 2);
    expect_ok(v5, "first_k_dense_replace", "3", &c); /* mlp_layer_types decides */
    CHECK(c.n_dense_layers == 1);
    expect_ok(v1, "q_lora_rank", "null", &c);
    CHECK(c.q_lora_rank == 0);
    expect_ok(v1, "scoring_func", "\"softmax\"", &c);
    CHECK(c.scoring == ZSCORE_SOFTMAX);
    expect_ok(v1, "routed_scaling_factor", NULL, &c);
    CHECK(c.routed_scaling_factor == 1.0f);
    expect_ok(v1, "norm_topk_prob", NULL, &c);
    CHECK(c.norm_topk_prob);
    expect_ok(v1, "n_group", NULL, &c);
    CHECK(c.n_group == 1 && c.topk_group == 1);
    expect_ok(v1, "eos_token_id", NULL, &c);
    CHECK(c.n_eos == 0);
    expect_ok(v1, "topk_method", "\"greedy\"", &c);
    expect_ok(v1, "model_type", "\"kimi_k2\"", &c);
    CHECK(c.family == ZFAM_DEEPSEEK_V3 && strcmp(c.model_type, "kimi_k2") == 0);
    CHECK(c.attn_norm_eps == 1e-6f);
    expect_ok(v1, "head_dim", "999", &c);
    CHECK(c.qk_nope_dim == 32 && c.qk_rope_dim == 16);
}

static void test_raw_errors(void) {
    zmlx_config c;
    zerr e;
    memset(&c, 0x5A, sizeof c);
    zmlx_config before = c;
    CHECK(parse("{\"model_type\": \"glm4_moe_lite\",,}", &c, &e) == ZMLX_ERR_FORMAT);
    CHECKF(strstr(e.msg, "config.json:1:") && strstr(e.msg, "invalid JSON"), "%s", e.msg);
    CHECK(memcmp(&c, &before, sizeof c) == 0); /* *out untouched on failure */
    CHECK(parse("{\n\"a\": [1,\n 2,\n}", &c, &e) == ZMLX_ERR_FORMAT);
    CHECKF(strstr(e.msg, "config.json:4:") && !strchr(e.msg, '\n'), "%s", e.msg);
    CHECK(parse("", &c, &e) == ZMLX_ERR_FORMAT);
    CHECK(parse("[1, 2]", &c, &e) == ZMLX_ERR_FORMAT);
    CHECKF(strstr(e.msg, "object") != NULL, "%s", e.msg);
    CHECK(parse("{\"model_type\": 7}", &c, &e) == ZMLX_ERR_FORMAT);
    CHECKF(strstr(e.msg, "\"model_type\" = 7") != NULL, "%s", e.msg);
    CHECK(zcfg_parse(NULL, 0, NULL, &c, &e) == ZMLX_ERR_FORMAT);
    CHECK(zcfg_load("/nonexistent/config.json", &c, &e) == ZMLX_ERR_IO);
    CHECKF(strstr(e.msg, "/nonexistent/config.json") != NULL, "%s", e.msg);
    CHECK(zcfg_load("/", &c, &e) == ZMLX_ERR_IO);
    CHECK(strcmp(zfamily_name((zfamily)99), "unknown") == 0);
}

static void test_field_errors(void) {
    const char *v1 = "fixtures/models/glm47-tiny/config.json";
    const char *v5 = "fixtures/models/glm47-tiny-v5/config.json";
    const char *kimi = "fixtures/configs/kimi-k2.5.config.json";
    const char *v32 = "fixtures/configs/deepseek-v3.2.config.json";
    zmlx_status F = ZMLX_ERR_FORMAT, U = ZMLX_ERR_UNSUPPORTED;
    zmlx_config c;
    expect_err(v1, "model_type", "\"llama\"", U, "\"model_type\" = \"llama\"");
    expect_err(v1, "model_type", "\"llama\"", U, "glm4_moe_lite, deepseek_v3");
    expect_err(v1, "model_type", NULL, F, "\"model_type\"");
    expect_err(v1, "hidden_size", "\"2048\"", F, "\"hidden_size\" = \"2048\"");
    expect_err(v1, "hidden_size", "128.0", F, "\"hidden_size\"");
    expect_err(v1, "hidden_size", "0", F, "\"hidden_size\" = 0 must be >= 1");
    expect_err(v1, "vocab_size", "4294967296", F, "\"vocab_size\"");
    expect_err(v1, "kv_lora_rank", NULL, F, "\"kv_lora_rank\" is missing");
    expect_err(v5, "mlp_layer_types", "[\"dense\",\"sparse\"]", F, "\"mlp_layer_types\"");
    expect_err(v5, "mlp_layer_types", "[\"dense\",\"moe\",\"sparse\"]", F, "mlp_layer_types[1]");
    expect_err(v5, "mlp_layer_types", "[\"dense\",3,\"sparse\"]", F, "mlp_layer_types[1]");
    expect_err(v5, "mlp_layer_types", "\"dense\"", F, "\"mlp_layer_types\"");
    expect_err(v1, "num_experts_per_tok", "12", F,
               "config.json: field \"num_experts_per_tok\" = 12 exceeds n_routed_experts = 8");
    expect_err(v1, "qk_rope_head_dim", "15", F, "\"qk_rope_head_dim\" = 15 must be even");
    expect_err(v1, "eos_token_id", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", U, "\"eos_token_id\"");
    expect_err(v1, "eos_token_id", "[1,5000]", F, "\"eos_token_id[1]\" = 5000");
    expect_err(v1, "eos_token_id", "\"1\"", F, "\"eos_token_id\"");
    expect_err(v1, "bos_token_id", "-7", F, "\"bos_token_id\"");
    expect_err(v1, "eos_token_id", "-1", F, "\"eos_token_id\" = -1");
    expect_ok(v1, "pad_token_id", "-1", &c);
    CHECK(c.pad_id == -1);
    expect_err(v1, "scoring_func", "\"tanh\"", U, "\"scoring_func\" = \"tanh\"");
    expect_err(v1, "n_group", "3", F, "\"n_group\" = 3");
    expect_err(v1, "topk_group", "2", F, "\"topk_group\" = 2 exceeds n_group = 1");
    expect_err("fixtures/models/dsv3-tiny/config.json", "n_group", "16", F,
               "\"num_experts_per_tok\" = 4 exceeds topk_group * experts per group = 2");
    expect_err(v1, "num_hidden_layers", "600", U, "\"num_hidden_layers\" = 600");
    expect_err(v1, "first_k_dense_replace", NULL, F, "\"first_k_dense_replace\"");
    expect_err(v1, "moe_layer_freq", "0", F, "\"moe_layer_freq\"");
    expect_err(v1, "rms_norm_eps", "-1e-5", F, "\"rms_norm_eps\"");
    expect_err(v1, "rms_norm_eps", "1e300", F, "\"rms_norm_eps\"");
    expect_err(v1, "rms_norm_eps", "1e-50", F, "\"rms_norm_eps\" = 1e-50");
    expect_err(v1, "rope_theta", "0", F, "\"rope_theta\" = 0");
    expect_err(v1, "rope_theta", NULL, F, "\"rope_theta\"");
    expect_err(v5, "rope_parameters", "{\"rope_type\":\"default\",\"rope_theta\":\"x\"}", F,
               "\"rope_parameters.rope_theta\"");
    expect_err(v1, "max_position_embeddings", "0", F, "\"max_position_embeddings\"");
    expect_err(v1, "rope_scaling", "{\"type\":\"linear\",\"factor\":2}", U,
               "\"rope_scaling.type\"");
    expect_err(v1, "rope_scaling", "{\"type\":\"yarn\"}", F, "\"rope_scaling.factor\"");
    expect_err(v1, "rope_scaling", "{\"type\":\"yarn\",\"factor\":4,\"beta_fast\":\"32\"}", F,
               "\"rope_scaling.beta_fast\"");
    expect_err(v1, "rope_scaling", "{\"type\":\"yarn\",\"factor\":4,\"attention_factor\":1}", U,
               "\"rope_scaling.attention_factor\"");
    expect_err(v1, "rope_scaling", "[1]", F, "\"rope_scaling\"");
    expect_err(v1, "norm_topk_prob", "1", F, "\"norm_topk_prob\" = 1");
    expect_err(v1, "tie_word_embeddings", "\"no\"", F, "\"tie_word_embeddings\"");
    expect_err(v32, "index_topk", NULL, F, "\"index_topk\"");
    expect_err(v32, "index_head_dim", "32", F, "\"index_head_dim\" = 32");
    expect_err(kimi, "text_config.model_type", "\"llama\"", U, "\"text_config.model_type\"");
    expect_err(kimi, "text_config", NULL, F, "\"text_config\"");
    expect_err(kimi, "text_config", "[]", F, "\"text_config\"");
    expect_err(kimi, "text_config.hidden_size", "-5", F, "\"text_config.hidden_size\" = -5");
    expect_err(kimi, "text_config.rope_scaling", "{\"type\":\"yarn\",\"factor\":0}", F,
               "\"text_config.rope_scaling.factor\" = 0");
}

int main(void) {
    test_glm_tiny_dialects();
    test_glm_flash();
    test_deepseek_v32();
    test_kimi();
    test_tiny_deepseek();
    test_defaults_and_precedence();
    test_raw_errors();
    test_field_errors();
    return tc_done();
}
