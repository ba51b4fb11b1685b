/*
 * cmd_info.c — `zmlx info MODEL`: the config summary, parameter counts (total and
 * active per token), bytes read per decoded token, KV bytes per position, memory
 * needed and whether it fits this machine (else a SKIP(RAM) line with the numbers).
 * Works from the config alone: no weights are loaded or generated.
 */
#include "cli/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double gib(int64_t b) {
    return (double)b / 1073741824.0;
}

static void print_text(const zmlx_model_info *i) {
    printf("model            %s\n", i->name);
    printf("model_type       %s\n", i->model_type);
    printf("weights          %s\n", i->weight_format);
    printf("layers           %d (%d dense, %d MoE)\n", i->n_layers, i->n_dense_layers,
           i->n_layers - i->n_dense_layers);
    printf("hidden / vocab   %d / %d\n", i->hidden_size, i->vocab_size);
    printf("attention        MLA, %d heads, q_lora %d, kv_lora %d, nope %d, rope %d, v %d\n",
           i->n_heads, i->q_lora_rank, i->kv_lora_rank, i->qk_nope_dim, i->qk_rope_dim,
           i->v_head_dim);
    printf("experts          %d routed (top-%d) + %d shared, expert ffn %d, dense ffn %d\n",
           i->n_routed_experts, i->experts_per_tok, i->n_shared_experts,
           i->moe_intermediate_size, i->intermediate_size);
    printf("max positions    %lld\n", (long long)i->max_position_embeddings);
    if (i->cpu_isa[0]) printf("cpu kernels      %s\n", i->cpu_isa);
    printf("params           %.3f B total, %.3f B active per token\n",
           (double)i->params_total * 1e-9, (double)i->params_active * 1e-9);
    printf("weights          %.2f GiB\n", gib(i->weight_bytes_total));
    printf("bytes/token      %.3f GB (weights read per decoded token, batch 1)\n",
           (double)i->bytes_per_token * 1e-9);
    printf("kv cache         %lld bytes per position (%s)\n",
           (long long)i->kv_bytes_per_position, i->kv_dtype);
    printf("memory needed    %.2f GiB at %lld positions of context\n", gib(i->mem_needed_bytes),
           (long long)i->mem_ctx);
    if (i->mem_available_bytes < 0) printf("fits             unknown (no /proc/meminfo)\n");
    else if (i->fits) printf("fits             yes (%.2f GiB available)\n", gib(i->mem_available_bytes));
    else
        printf("fits             SKIP(RAM): needs %.2f GiB, %.2f GiB available\n",
               gib(i->mem_needed_bytes), gib(i->mem_available_bytes));
}

static void print_json(const zmlx_model_info *i) {
    json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:b, s:s}",
                          "model", i->name, "model_type", i->model_type, "weights", i->weight_format,
                          "layers", i->n_layers, "dense_layers", i->n_dense_layers,
                          "hidden_size", i->hidden_size, "vocab_size", i->vocab_size,
                          "n_heads", i->n_heads, "n_routed_experts", i->n_routed_experts,
                          "experts_per_tok", i->experts_per_tok,
                          "n_shared_experts", i->n_shared_experts,
                          "max_position_embeddings", (json_int_t)i->max_position_embeddings,
                          "params_total", (json_int_t)i->params_total,
                          "params_active", (json_int_t)i->params_active,
                          "weight_bytes", (json_int_t)i->weight_bytes_total,
                          "bytes_per_token", (json_int_t)i->bytes_per_token,
                          "kv_dtype", i->kv_dtype,
                          "kv_bytes_per_position", (json_int_t)i->kv_bytes_per_position,
                          "mem_needed_bytes", (json_int_t)i->mem_needed_bytes,
                          "mem_available_bytes", (json_int_t)i->mem_available_bytes,
                          "fits", i->fits, "verdict", i->fits ? "OK" : "SKIP(RAM)");
    if (j) json_object_set_new(j, "cpu_isa", json_string(i->cpu_isa));
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s) puts(s);
    free(s);
    json_decref(j);
}

int cmd_info(int argc, char **argv) {
    cli_common c;
    cli_common_init(&c);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: zmlx info [MODEL] [--json] [common options]\n"
                   "Describes MODEL from its config without loading weights.\n");
            return 0;
        }
        int r = cli_common_arg(&c, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r == 0) {
            cli_error("info: unknown option %s (see zmlx info --help)", argv[i]);
            return EXIT_USAGE;
        }
    }
    zmlx_model_info info;
    char err[ZMLX_ERR_MAX];
    const char *path = c.model ? c.model : ZMLX_DEFAULT_MODEL;
    if (zmlx_model_probe(path, &c.mp, &info, err, sizeof err) != ZMLX_OK) {
        cli_error("%s", err);
        return EXIT_USAGE;
    }
    if (c.json) print_json(&info);
    else print_text(&info);
    return 0;
}
