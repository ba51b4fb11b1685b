/*
 * test_qconfig.c — the quantization block of config.json (io/qconfig.h):
 *   - the released configs: DeepSeek-V3.2 (fp8 e4m3, blocks of 128) and Kimi-K2.5
 *     (compressed-tensors int4 group 32, its ignore list): what they declare for the
 *     modules the loader asks about (attention, dense MLP, shared and routed experts,
 *     lm_head, the embedding, with and without the `language_model.` prefix);
 *   - MLX blocks with per-module entries (false, true, objects with defaults by mode);
 *   - one error per validated field: the status, and a one-line message naming the file,
 *     the field path and the value.  Configs are the fixtures edited with jansson.
 */
#include "io/config.h"
#include "io/qconfig.h"
#include "tcheck.h"

#include <jansson.h>
#include <stdbool.h>

static json_t *fixture_json(const char *rel) {
    char path[1024];
    json_error_t je;
    json_t *j = json_load_file(tc_shared(path, sizeof path, rel), 0, &je);
    CHECKF(j != NULL, "%s: %s", rel, je.text);
    return j ? j : json_object();
}

/* Set (value JSON text) or delete (NULL) the member at a '/'-separated path of root. */
static void set_path(json_t *root, const char *path, const char *value) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *obj = root;
    char *key = buf, *slash;
    while ((slash = strchr(key, '/'))) {
        *slash = 0;
        obj = json_object_get(obj, key);
        key = slash + 1;
    }
    CHECKF(json_is_object(obj), "bad path %s", path);
    if (!json_is_object(obj)) return;
    json_error_t je;
    if (value) json_object_set_new(obj, key, json_loads(value, JSON_DECODE_ANY, &je));
    else json_object_del(obj, key);
}

/* zcfg_parse of root (which is consumed), the quantization table into *q. */
static zmlx_status parse(json_t *root, zqcfg **q, zerr *e) {
    char *text = json_dumps(root, 0);
    json_decref(root);
    json_error_t je;
    json_t *again = json_loads(text, 0, &je);
    zmlx_config c;
    e->msg[0] = 0;
    zmlx_status st = zcfg_parse(text, strlen(text), "config.json", &c, e);
    if (q) {
        *q = NULL;
        const json_t *tc = json_object_get(again, "text_config");
        zerr e2 = {{0}};
        if (st == ZMLX_OK)
            CHECK(zqcfg_parse(again, tc ? tc : again, tc ? "text_config." : "", "config.json", q, &e2) == ZMLX_OK);
    }
    json_decref(again);
    free(text);
    return st;
}

static bool one_line(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20) return false;
    return true;
}

/* The fixture `rel` with `path` set to `value` must fail with `want`, naming `field`. */
static void expect_err(int line, const char *rel, const char *path, const char *value,
                       zmlx_status want, const char *field) {
    json_t *root = fixture_json(rel);
    set_path(root, path, value);
    zerr e;
    zmlx_status st = parse(root, NULL, &e);
    CHECKF(st == want, "line %d: status %d, want %d (%s)", line, st, want, e.msg);
    CHECKF(strstr(e.msg, field) && !strncmp(e.msg, "config.json: ", 13) && one_line(e.msg),
           "line %d: message \"%s\" should name \"%s\"", line, e.msg, field);
}

static zqdecl decl(const zqcfg *q, const char *path, const char *prefix, bool linear, zqmod *m) {
    return zqcfg_module(q, path, prefix, linear, m);
}

static void test_deepseek(void) {
    zqcfg *q;
    zerr e;
    CHECKF(parse(fixture_json("fixtures/configs/deepseek-v3.2.config.json"), &q, &e) == ZMLX_OK, "%s", e.msg);
    CHECK(zqcfg_method(q) == ZQM_FP8);
    zqmod m;
    CHECK(decl(q, "model.layers.5.mlp.experts.3.gate_proj", "", true, &m) == ZQDECL_IF_STORED &&
          m.mode == ZQMODE_FP8_BLOCK && m.group == 128 && m.bits == 8);
    char d[64];
    zqcfg_describe(q, d, sizeof d);
    CHECKF(!strcmp(d, "fp8 e4m3 b128"), "%s", d);
    zqcfg_free(q);
}

static void test_kimi(void) {
    zqcfg *q;
    zerr e;
    CHECKF(parse(fixture_json("fixtures/configs/kimi-k2.5.config.json"), &q, &e) == ZMLX_OK, "%s", e.msg);
    CHECK(zqcfg_method(q) == ZQM_COMPRESSED);
    static const struct {
        const char *path;
        bool linear;
        zqdecl want;
    } cases[] = {
        {"language_model.model.layers.3.mlp.experts.17.gate_proj", true, ZQDECL_QUANT},
        {"language_model.model.layers.3.mlp.experts.17.down_proj", true, ZQDECL_QUANT},
        {"model.layers.60.mlp.experts.383.up_proj", true, ZQDECL_QUANT},
        {"language_model.model.layers.3.mlp.shared_experts.gate_proj", true, ZQDECL_DENSE},
        {"language_model.model.layers.0.mlp.gate_proj", true, ZQDECL_DENSE},
        {"language_model.model.layers.0.mlp.down_proj", true, ZQDECL_DENSE},
        {"language_model.model.layers.7.self_attn.kv_b_proj", true, ZQDECL_DENSE},
        {"language_model.lm_head", true, ZQDECL_DENSE}, /* "lm_head" matches without the prefix */
        {"language_model.model.embed_tokens", false, ZQDECL_DENSE}, /* not a Linear */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zqmod m;
        zqdecl d = decl(q, cases[i].path, "language_model.", cases[i].linear, &m);
        CHECKF(d == cases[i].want, "%s: %d", cases[i].path, d);
        if (d == ZQDECL_QUANT) CHECK(m.mode == ZQMODE_INT_SYM && m.bits == 4 && m.group == 32);
    }
    zqcfg_free(q);
}

static void test_mlx(void) {
    json_t *root = fixture_json("fixtures/models/glm47-tiny/config.json");
    set_path(root, "quantization",
             "{\"group_size\": 64, \"bits\": 4, \"mode\": \"affine\","
             " \"model.layers.0.mlp.down_proj\": {\"group_size\": 32, \"bits\": 8},"
             " \"model.layers.1.mlp.gate\": false, \"lm_head\": true,"
             " \"model.embed_tokens\": {\"mode\": \"mxfp4\"}}");
    set_path(root, "quantization_config", "{\"group_size\": 64, \"bits\": 4}");
    zqcfg *q;
    zerr e;
    CHECKF(parse(root, &q, &e) == ZMLX_OK, "%s", e.msg);
    zqmod m;
    CHECK(decl(q, "model.layers.0.mlp.down_proj", "", true, &m) == ZQDECL_QUANT && m.mode == ZQMODE_AFFINE &&
          m.bits == 8 && m.group == 32);
    CHECK(decl(q, "model.layers.1.mlp.gate", "", true, &m) == ZQDECL_DENSE && m.mode == ZQMODE_DENSE);
    CHECK(decl(q, "lm_head", "", true, &m) == ZQDECL_QUANT && m.bits == 4 && m.group == 64);
    CHECK(decl(q, "model.embed_tokens", "", false, &m) == ZQDECL_QUANT && m.mode == ZQMODE_MXFP4 &&
          m.group == 32 && m.bits == 4);
    CHECK(decl(q, "model.layers.1.self_attn.o_proj", "", true, &m) == ZQDECL_IF_STORED && m.bits == 4 &&
          m.group == 64 && m.mode == ZQMODE_AFFINE);
    char d[64];
    zqcfg_describe(q, d, sizeof d);
    CHECKF(!strcmp(d, "mlx affine4 g64 mixed"), "%s", d);
    zqcfg_free(q);
    CHECK(zqcfg_module(NULL, "x", "", true, &m) == ZQDECL_DENSE);
}

static void test_errors(void) {
    const char *glm = "fixtures/models/glm47-tiny/config.json";
    const char *ds = "fixtures/configs/deepseek-v3.2.config.json";
    const char *kimi = "fixtures/configs/kimi-k2.5.config.json";
    const char *g0 = "quantization_config/config_groups/group_0";
    char p[160];
#define E(rel, path, value, st, field) expect_err(__LINE__, rel, path, value, st, field)
    /* MLX */
    E(glm, "quantization", "[1]", ZMLX_ERR_FORMAT, "\"quantization\" = [...]");
    E(glm, "quantization", "{\"group_size\": 64}", ZMLX_ERR_FORMAT, "quantization.bits");
    E(glm, "quantization", "{\"bits\": 4}", ZMLX_ERR_FORMAT, "quantization.group_size");
    E(glm, "quantization", "{\"group_size\": 64, \"bits\": 7}", ZMLX_ERR_UNSUPPORTED, "quantization.bits\" = 7");
    E(glm, "quantization", "{\"group_size\": 48, \"bits\": 4}", ZMLX_ERR_UNSUPPORTED, "quantization.group_size\" = 48");
    E(glm, "quantization", "{\"group_size\": 64, \"bits\": \"4\"}", ZMLX_ERR_FORMAT, "quantization.bits\" = \"4\"");
    E(glm, "quantization", "{\"group_size\": 16, \"bits\": 4, \"mode\": \"nvfp4\"}", ZMLX_ERR_UNSUPPORTED,
      "quantization.mode\" = \"nvfp4\"");
    E(glm, "quantization", "{\"group_size\": 32, \"bits\": 8, \"mode\": \"mxfp4\"}", ZMLX_ERR_FORMAT,
      "quantization.bits\" = 8");
    E(glm, "quantization", "{\"group_size\": 64, \"bits\": 4, \"model.layers.0.mlp.up_proj\": \"yes\"}",
      ZMLX_ERR_FORMAT, "quantization.model.layers.0.mlp.up_proj\" = \"yes\"");
    E(glm, "quantization", "{\"group_size\": 64, \"bits\": 4, \"lm_head\": {\"bits\": 1}}", ZMLX_ERR_UNSUPPORTED,
      "quantization.lm_head.bits\" = 1");
    /* fp8 */
    E(ds, "quantization_config/weight_block_size", "[128, 64]", ZMLX_ERR_UNSUPPORTED, "weight_block_size\" = [...]");
    E(ds, "quantization_config/weight_block_size", "[0, 0]", ZMLX_ERR_FORMAT, "quantization_config.weight_block_size");
    E(ds, "quantization_config/weight_block_size", "128", ZMLX_ERR_FORMAT, "weight_block_size\" = 128");
    E(ds, "quantization_config/fmt", "\"e5m2\"", ZMLX_ERR_UNSUPPORTED, "quantization_config.fmt\" = \"e5m2\"");
    E(ds, "quantization_config/activation_scheme", "\"static\"", ZMLX_ERR_UNSUPPORTED, "activation_scheme\" = \"static\"");
    E(ds, "quantization_config/scale_fmt", "\"fp32\"", ZMLX_ERR_UNSUPPORTED, "scale_fmt\" = \"fp32\"");
    E(ds, "quantization_config/quant_method", "\"awq\"", ZMLX_ERR_UNSUPPORTED, "quant_method\" = \"awq\"");
    E(ds, "quantization_config/quant_method", NULL, ZMLX_ERR_FORMAT, "quantization_config.quant_method");
    E(ds, "quantization_config/modules_to_not_convert", "[1]", ZMLX_ERR_FORMAT, "modules_to_not_convert");
    /* compressed-tensors (Kimi: the block is at the top level) */
    E(kimi, "quantization_config/format", "\"float-quantized\"", ZMLX_ERR_UNSUPPORTED,
      "quantization_config.format\" = \"float-quantized\"");
    E(kimi, "quantization_config/quantization_status", "\"frozen\"", ZMLX_ERR_UNSUPPORTED, "quantization_status");
    E(kimi, "quantization_config/config_groups", "{}", ZMLX_ERR_FORMAT, "config_groups");
    E(kimi, "quantization_config/kv_cache_scheme", "{\"num_bits\": 8}", ZMLX_ERR_UNSUPPORTED, "kv_cache_scheme");
    E(kimi, "quantization_config/ignore", "[\"re:(\"]", ZMLX_ERR_FORMAT, "quantization_config.ignore[0]\" = \"re:(\"");
    E(kimi, "quantization_config/ignore", "\"lm_head\"", ZMLX_ERR_FORMAT, "quantization_config.ignore\"");
    static const struct {
        const char *key, *value;
        zmlx_status st;
        const char *field;
    } groups[] = {
        {"targets", "[]", ZMLX_ERR_FORMAT, "config_groups.group_0.targets"},
        {"input_activations", "{\"num_bits\": 8}", ZMLX_ERR_UNSUPPORTED, "group_0.input_activations"},
        {"weights/num_bits", "7", ZMLX_ERR_UNSUPPORTED, "group_0.weights.num_bits\" = 7"},
        {"weights/symmetric", "false", ZMLX_ERR_UNSUPPORTED, "group_0.weights.symmetric\" = false"},
        {"weights/strategy", "\"channel\"", ZMLX_ERR_UNSUPPORTED, "group_0.weights.strategy\" = \"channel\""},
        {"weights/group_size", "48", ZMLX_ERR_UNSUPPORTED, "group_0.weights.group_size\" = 48"},
        {"weights/type", "\"float\"", ZMLX_ERR_UNSUPPORTED, "group_0.weights.type\" = \"float\""},
        {"weights/actorder", "\"group\"", ZMLX_ERR_UNSUPPORTED, "group_0.weights.actorder\" = \"group\""},
        {"weights/dynamic", "true", ZMLX_ERR_UNSUPPORTED, "group_0.weights.dynamic\" = true"},
    };
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", g0, groups[i].key);
        E(kimi, p, groups[i].value, groups[i].st, groups[i].field);
    }
#undef E
}

int main(void) {
    test_deepseek();
    test_kimi();
    test_mlx();
    test_errors();
    return tc_done();
}
