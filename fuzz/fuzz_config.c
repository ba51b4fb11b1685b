/*
 * fuzz_config.c — libFuzzer target for the config.json parser (zcfg_parse).
 *
 * Any input must either parse into a config whose declared limits hold or fail with a
 * non-empty one-line message; anything else (a crash, a sanitizer report, a broken
 * invariant) is a bug.  Seeds: fuzz/corpus/config/.
 */
#include "io/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The promises a successful parse makes to the model loader. */
static int config_ok(const zmlx_config *c) {
    int dense = 0;
    for (int32_t i = 0; i < c->n_layers; i++)
        dense += !c->layer_is_moe[i];
    return c->n_layers >= 1 && c->n_layers <= ZCFG_MAX_LAYERS && dense == c->n_dense_layers &&
           c->experts_per_tok >= 1 && c->experts_per_tok <= c->n_routed_experts &&
           c->n_group >= 1 && c->n_routed_experts % c->n_group == 0 && c->topk_group >= 1 &&
           c->topk_group <= c->n_group && c->qk_rope_dim % 2 == 0 && c->n_eos >= 0 &&
           c->n_eos <= ZCFG_MAX_EOS && c->rope_theta > 0.0 && c->rms_norm_eps > 0.0f &&
           c->max_position_embeddings > 0 && memchr(c->model_type, 0, sizeof c->model_type) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    zmlx_config c;
    zerr e;
    e.msg[0] = 0;
    zmlx_status st = zcfg_parse((const char *)data, size, "fuzz.json", &c, &e);
    if (st == ZMLX_OK && !config_ok(&c)) abort();
    if (st != ZMLX_OK && (e.msg[0] == 0 || strchr(e.msg, '\n') != NULL)) abort();
    return 0;
}
