/* main.c — `zmlx`: subcommand dispatch and the top-level usage text (cli_main; the
   process entry is entry.c, or the MPI launcher's, src/cli/mpi/). */
#include "cli/cli.h"
#include "cli/cmd_harness.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "zmlx %s — fast, faithful inference for DeepSeek-style MoE LLMs (GLM-4.7-Flash)\n"
            "\n"
            "usage: zmlx COMMAND [MODEL] [options]\n"
            "\n"
            "commands:\n"
            "  generate   generate tokens (streams text; --json for one JSON object)\n"
            "  validate   baseline vs a pattern set: fidelity verdict and speedup\n"
            "  patterns   the registry of fused patterns and the family presets\n"
            "  info       config summary, parameters, bytes per token, memory needed\n"
            "  tokenize   text to token ids (JSON); detokenize: ids to text\n"
            "  bench      baseline vs named variants, interleaved: capsule + matrix ledger\n"
            "  report     capsules written by bench as a table\n"
            "  matrix     the ledger: run MODEL, history SUBSTR, report, csv, html\n"
            "  convert    SRC DST: a Hugging Face checkpoint (or builtin) in mlx-lm's MLX layout\n"
            "  dist       several GPUs: plan (experts and memory per GPU)\n"
            "\n"
            "MODEL is a checkpoint directory (config.json + *.safetensors) or\n"
            "builtin:NAME[:key=value,...] with NAME glm47-tiny, glm47-mini or glm47-flash\n"
            "(keys: layers, experts, topk, vocab, ctx, bits, group, seed).\n"
            "Default model: %s.\n"
            "\n"
            "common options: --backend cpu|cpu-ref|cuda  --precision exact|fast\n"
            "                --kv-dtype f32|bf16  --threads N  --patterns default|none|LIST  --json\n"
            "                --gpus 0,1,...  (cuda: split the routed experts over these GPUs)\n"
            "Run `zmlx COMMAND --help` for the options of one command.\n",
            ZMLX_VERSION, ZMLX_DEFAULT_MODEL);
}

int cli_main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("zmlx %s\n", ZMLX_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "validate")) return cmd_validate(argc - 1, argv + 1);
    if (!strcmp(cmd, "patterns")) return cmd_patterns(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "detokenize")) return cmd_detokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "report")) return cmd_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "matrix")) return cmd_matrix(argc - 1, argv + 1);
    if (!strcmp(cmd, "convert")) return cmd_convert(argc - 1, argv + 1);
    if (!strcmp(cmd, "dist")) return cmd_dist(argc - 1, argv + 1);
    cli_error("unknown command \"%s\" (run `zmlx --help` for the list)", cmd);
    return EXIT_USAGE;
}
