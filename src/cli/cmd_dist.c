/*
 * cmd_dist.c — `zmlx dist`: planning a run over several GPUs, and the pieces of a
 * multi-process start that a launcher uses.
 *   zmlx dist plan [MODEL] (--gpus LIST | --ranks N) [--gpu-mem GIB] [--ctx N]
 *                  [--bits B [--group G]] [--scheme contiguous|round-robin] [--json]
 * cli_dist_env reads what a launcher (zmlx-mpi, or a script) sets for each process.
 * The plan works from the config alone: no weights are loaded, so it answers for a
 * 671B model on a laptop.
 */
#include "cli/cli.h"
#include "dist/dist.h"
#include "model/model.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cli_dist_env(zmlx_dist_params *d) {
    const char *w = getenv("ZMLX_DIST_WORLD");
    if (!w) return true;
    static const char *const names[2] = {"ZMLX_DIST_RANK", "ZMLX_DIST_GPU"};
    const char *v[2], *id = getenv("ZMLX_DIST_ID"), *root = getenv("NCCL_COMM_ID");
    for (int i = 0; i < 2; i++)
        if (!(v[i] = getenv(names[i]))) {
            cli_error("ZMLX_DIST_WORLD=%s is set but %s is not: a launcher of one process per "
                      "GPU sets ZMLX_DIST_WORLD, ZMLX_DIST_RANK, ZMLX_DIST_GPU, and ZMLX_DIST_ID "
                      "or NCCL_COMM_ID (zmlx-mpi does)", w, names[i]);
            return false;
        }
    if (!id && !root) {
        cli_error("ZMLX_DIST_WORLD=%s is set but neither ZMLX_DIST_ID (rank 0's NCCL id, what "
                  "zmlx-mpi passes) nor NCCL_COMM_ID=host:port (rank 0 listens there) is", w);
        return false;
    }
    if (d->n_gpus > 0) {
        cli_error("--gpus was given but ZMLX_DIST_WORLD=%s is set: this process is one rank of "
                  "a launcher's run and drives the GPU of ZMLX_DIST_GPU; drop --gpus", w);
        return false;
    }
    long long world, rank, gpu;
    if (!cli_int("ZMLX_DIST_WORLD", w, 1, ZDIST_MAX_RANKS, &world) ||
        !cli_int("ZMLX_DIST_RANK", v[0], 0, world - 1, &rank) ||
        !cli_int("ZMLX_DIST_GPU", v[1], 0, 1023, &gpu))
        return false;
    if (id && !zdist_id_from_hex(id, d->id)) {
        cli_error("ZMLX_DIST_ID: expected %d hex digits (rank 0's NCCL unique id, the same in "
                  "every process)", 2 * ZMLX_DIST_ID_BYTES);
        return false;
    }
    char err[ZMLX_ERR_MAX];
    if (!id && zmlx_dist_unique_id(d->id, err, sizeof err) != ZMLX_OK) { /* from NCCL_COMM_ID */
        cli_error("rank %lld of %lld: %s", rank, world, err);
        return false;
    }
    d->world = (int32_t)world;
    d->rank = (int32_t)rank;
    d->n_gpus = 1;
    d->gpus[0] = (int32_t)gpu;
    return true;
}

static void dist_usage(void) {
    printf("usage: zmlx dist plan [MODEL] (--gpus LIST | --ranks N) [--gpu-mem GIB] [--ctx N]\n"
           "                      [--bits B [--group G]] [--scheme contiguous|round-robin] [--json]\n"
           "Which routed experts each GPU holds and the memory it needs: weights every GPU\n"
           "keeps (embeddings, attention, routers, shared experts, dense layers), its experts,\n"
           "the KV cache at --ctx positions (default min(4096, max)), buffers.  From the\n"
           "config alone (no weights loaded); weights as stored (the lm_head dtype; a builtin's\n"
           "own format) or MLX affine --bits B, group G (default 64).  With --gpu-mem (GiB free per GPU) it says\n"
           "whether each slice fits and exits 2 when one does not.\n"
           "\n"
           "Running on several GPUs: `--backend cuda --gpus 0,1,...` on any command (one\n"
           "process), or one process per GPU: `mpirun -n N zmlx-mpi COMMAND ... --gpus LIST`,\n"
           "or any launcher that sets ZMLX_DIST_WORLD, ZMLX_DIST_RANK, ZMLX_DIST_GPU and\n"
           "NCCL_COMM_ID=host:port (rank 0 listens there) in each process (docs/dist.md).\n");
}

typedef struct plan_opts {
    cli_common c;
    long long ranks, ctx, bits, group;
    double gpu_mem; /* GiB, < 0 = not given */
    zdist_scheme scheme;
} plan_opts;

static int plan_parse(plan_opts *o, int argc, char **argv) {
    cli_common_init(&o->c);
    o->ranks = o->ctx = o->bits = 0;
    o->group = 64;
    o->gpu_mem = -1;
    o->scheme = ZDIST_CONTIGUOUS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = cli_common_arg(&o->c, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            dist_usage();
            return 0;
        }
        static const char *const valued[] = {"--ranks", "--ctx", "--bits", "--group",
                                             "--gpu-mem", "--scheme", NULL};
        bool known = false;
        for (int k = 0; valued[k]; k++) known |= !strcmp(a, valued[k]);
        if (!known) {
            cli_error("dist plan: unknown option %s (see zmlx dist --help)", a);
            return EXIT_USAGE;
        }
        if (!(v = cli_value(argc, argv, &i))) return EXIT_USAGE;
        bool ok = true;
        if (!strcmp(a, "--ranks")) ok = cli_int(a, v, 1, ZDIST_MAX_RANKS, &o->ranks);
        else if (!strcmp(a, "--ctx")) ok = cli_int(a, v, 1, 1LL << 24, &o->ctx);
        else if (!strcmp(a, "--bits")) ok = cli_int(a, v, 2, 8, &o->bits);
        else if (!strcmp(a, "--group")) ok = cli_int(a, v, 32, 128, &o->group);
        else if (!strcmp(a, "--gpu-mem")) ok = cli_float(a, v, 0.001, 1e6, &o->gpu_mem);
        else if (!strcmp(v, "contiguous")) o->scheme = ZDIST_CONTIGUOUS;
        else if (!strcmp(v, "round-robin")) o->scheme = ZDIST_ROUND_ROBIN;
        else {
            cli_error("--scheme %s: expected contiguous or round-robin", v);
            ok = false;
        }
        if (!ok) return EXIT_USAGE;
    }
    if (o->ranks && o->c.mp.dist.n_gpus) {
        cli_error("dist plan: give --gpus or --ranks, not both");
        return EXIT_USAGE;
    }
    if (!o->ranks && !o->c.mp.dist.n_gpus) {
        cli_error("dist plan: give --gpus LIST (this machine's GPUs) or --ranks N (GPUs in all)");
        return EXIT_USAGE;
    }
    return -1;
}

static double gib(int64_t b) {
    return (double)b / 1073741824.0;
}

static int cmd_plan(int argc, char **argv) {
    plan_opts o;
    int rc = plan_parse(&o, argc, argv);
    if (rc >= 0) return rc;
    const char *path = o.c.model ? o.c.model : ZMLX_DEFAULT_MODEL;
    zmlx_config cfg;
    zdtype wdt;
    zerr e = {{0}};
    zdist_part part;
    const int32_t n = o.ranks ? (int32_t)o.ranks : o.c.mp.dist.n_gpus;
    zbuiltin_quant bq;
    zmlx_status st = zmodel_read_config(path, &cfg, &wdt, &bq, &e);
    if (st == ZMLX_OK) st = zdist_part_init(&part, cfg.n_routed_experts, n, o.scheme, &e);
    if (st != ZMLX_OK) {
        cli_error("%s", e.msg);
        return EXIT_USAGE;
    }
    zweight fmt = {.dtype = wdt};
    if (o.bits) {
        fmt = (zweight){.dtype = ZDT_U32, .q = ZQ_AFFINE, .bits = (int)o.bits,
                        .group = (int)o.group, .sdtype = ZDT_BF16};
        if (cfg.hidden_size % o.group || cfg.moe_intermediate_size % o.group) {
            cli_error("--group %lld does not divide the model's widths (%d, %d)", o.group,
                      cfg.hidden_size, cfg.moe_intermediate_size);
            return EXIT_USAGE;
        }
    } else if (bq.bits != 16) { /* a builtin's own format (builtin.c) */
        const bool mx = bq.mode == ZQ_MXFP4;
        fmt = (zweight){.dtype = ZDT_U32, .q = bq.mode, .bits = bq.bits, .group = bq.group,
                        .sdtype = mx ? ZDT_U8 : ZDT_BF16};
    }
    zmlx_kv_dtype kv = o.c.mp.kv_dtype;
    if (kv == ZMLX_KV_DEFAULT) kv = o.c.mp.precision == ZMLX_PRECISION_EXACT ? ZMLX_KV_F32 : ZMLX_KV_BF16;
    const int kv_elem = kv == ZMLX_KV_BF16 ? 2 : 4;
    const int64_t ctx = o.ctx ? o.ctx : cfg.max_position_embeddings < 4096 ? cfg.max_position_embeddings : 4096;
    const int64_t avail = o.gpu_mem > 0 ? (int64_t)(o.gpu_mem * 1073741824.0) : -1;
    json_t *ranks = json_array();
    bool all_fit = true;
    char first_err[ZMLX_ERR_MAX] = "";
    if (!o.c.json)
        printf("%s over %d GPUs, %s slices of %d routed experts (x %d MoE layers)\n"
               "rank  gpu  experts          replicated  experts    kv cache   buffers    total\n",
               path, n, zdist_scheme_name(o.scheme), cfg.n_routed_experts,
               cfg.n_layers - cfg.n_dense_layers);
    for (int32_t r = 0; r < n; r++) {
        zdist_bytes b;
        zdist_rank_bytes(&cfg, &fmt, &fmt, kv_elem, ctx, &part, r, &b);
        const int32_t gpu = o.ranks ? r : o.c.mp.dist.gpus[r];
        const int32_t e0 = b.n_experts ? zdist_expert(&part, r, 0) : -1;
        const int32_t e1 = b.n_experts ? zdist_expert(&part, r, b.n_experts - 1) : -1;
        bool fits = true;
        if (avail >= 0) {
            zdist_where w = {.rank = r, .n_ranks = n, .gpu = gpu};
            zerr fe = {{0}};
            fits = zdist_fit(&cfg, &fmt, &fmt, kv_elem, ctx, &part, &w, avail, &fe) == ZMLX_OK;
            if (!fits && all_fit) snprintf(first_err, sizeof first_err, "%s", fe.msg);
            all_fit &= fits;
        }
        char ex[48];
        if (o.scheme == ZDIST_CONTIGUOUS) snprintf(ex, sizeof ex, "%d-%d (%d)", e0, e1, b.n_experts);
        else snprintf(ex, sizeof ex, "%d+%dk (%d)", e0, n, b.n_experts);
        if (!o.c.json)
            printf("%4d %4d  %-15s %8.2f GiB %7.2f GiB %7.2f GiB %7.2f GiB %7.2f GiB%s\n", r, gpu,
                   ex, gib(b.replicated), gib(b.experts), gib(b.cache), gib(b.buffers),
                   gib(b.total), avail < 0 ? "" : fits ? "  fits" : "  DOES NOT FIT");
        json_array_append_new(
            ranks, json_pack("{s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:b}", "rank", r,
                             "gpu", gpu, "first_expert", e0, "last_expert", e1, "n_experts",
                             b.n_experts, "replicated_bytes", (json_int_t)b.replicated,
                             "expert_bytes", (json_int_t)b.experts, "cache_bytes",
                             (json_int_t)b.cache, "buffer_bytes", (json_int_t)b.buffers,
                             "total_bytes", (json_int_t)b.total, "fits", fits));
    }
    if (o.c.json) {
        json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:o, s:b}", "model", path, "scheme",
                              zdist_scheme_name(o.scheme), "n_ranks", n, "n_experts",
                              cfg.n_routed_experts, "ctx", (json_int_t)ctx, "gpu_mem_bytes",
                              (json_int_t)avail, "ranks", ranks, "fits", all_fit);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (s) puts(s);
        free(s);
        json_decref(j);
    } else {
        json_decref(ranks);
    }
    if (!all_fit) {
        cli_error("%s", first_err);
        return EXIT_USAGE;
    }
    return 0;
}

int cmd_dist(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        dist_usage();
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (!strcmp(argv[1], "plan")) return cmd_plan(argc - 1, argv + 1);
    cli_error("dist: unknown action \"%s\" (plan)", argv[1]);
    return EXIT_USAGE;
}
