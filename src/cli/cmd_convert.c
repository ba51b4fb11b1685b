/*
 * cmd_convert.c — `zmlx convert SRC DST`: a Hugging Face checkpoint (or a builtin
 * model) into the MLX layout mlx-lm writes (tools/convert.h does the work).
 *
 *   zmlx convert SRC DST [--q-bits 4] [--q-group-size 64] [--q-mode affine|mxfp4]
 *                        [--no-quant] [--dtype bfloat16|float32] [--force] [--threads N]
 *                        [--json]
 *
 * Progress goes to stderr: a bar redrawn in place when stderr is a terminal, else one
 * summary line at the end.  --json prints one JSON object to stdout at the end.
 * Exit codes: 0 done; 2 usage errors, a bad SRC, DST already there; 1 the conversion
 * failed while writing (nothing is left behind); 128 + signal (130 for Ctrl-C) when
 * interrupted (likewise).
 */
#include "cli/cli.h"
#include "tools/convert.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct cv_opts {
    const char *src, *dst;
    zcv_params p;
    long long bits, group; /* -1 = the mode's default */
    bool no_quant, json;
} cv_opts;

/* Set by SIGINT / SIGTERM, polled by the converter between row blocks.  The one piece of
   file-static state: a signal handler can reach nothing else. */
static volatile sig_atomic_t g_cancel;

static void on_signal(int sig) { g_cancel = sig; }

static void usage(void) {
    printf("usage: zmlx convert SRC DST [--q-bits B] [--q-group-size G] [--q-mode affine|mxfp4]\n"
           "                    [--no-quant] [--dtype bfloat16|float32] [--force] [--threads N]\n"
           "                    [--json]\n"
           "Writes SRC (a Hugging Face checkpoint directory, or builtin:NAME[:k=v,...]) to the\n"
           "new directory DST in the MLX layout mlx-lm's convert writes: stacked experts,\n"
           "embed_q/unembed_out, quantized modules, 5 GiB shards + index, config.json with\n"
           "\"quantization\", tokenizer files copied.\n"
           "  --q-mode affine|mxfp4  quantization mode (default affine)\n"
           "  --q-bits B             affine: 2, 3, 4, 5, 6 or 8 (default 4); mxfp4: 4\n"
           "  --q-group-size G       affine: 32, 64 or 128 (default 64); mxfp4: 32\n"
           "  --no-quant             keep every weight dense (mlx_lm.convert without -q)\n"
           "  --dtype D              unquantized tensors and scales as bfloat16 or float32\n"
           "                         (default: config.json's torch_dtype, else as stored)\n"
           "  --force                replace DST if it is a checkpoint directory\n"
           "  --threads N            threads (default: all cores)\n"
           "  --json                 print a JSON summary to stdout\n"
           "Exit: 0 done, 2 usage / bad SRC / DST exists, 1 write failure, 128+signal interrupted.\n");
}

/* 0 to go on, else the exit code. */
static int parse(cv_opts *o, int argc, char **argv) {
    o->p = zcv_default_params();
    o->bits = o->group = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return -1;
        } else if (!strcmp(a, "--q-bits")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 1, 16, &o->bits)) return EXIT_USAGE;
        } else if (!strcmp(a, "--q-group-size")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 1, 1 << 20, &o->group))
                return EXIT_USAGE;
        } else if (!strcmp(a, "--q-mode")) {
            if (!(v = cli_value(argc, argv, &i))) return EXIT_USAGE;
            if (!strcmp(v, "affine")) o->p.mode = ZCV_Q_AFFINE;
            else if (!strcmp(v, "mxfp4")) o->p.mode = ZCV_Q_MXFP4;
            else {
                cli_error("--q-mode %s: expected affine or mxfp4", v);
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--no-quant")) {
            o->no_quant = true;
        } else if (!strcmp(a, "--dtype")) {
            if (!(v = cli_value(argc, argv, &i))) return EXIT_USAGE;
            if (!strcmp(v, "bfloat16") || !strcmp(v, "bf16")) o->p.dtype = ZDT_BF16;
            else if (!strcmp(v, "float32") || !strcmp(v, "f32")) o->p.dtype = ZDT_F32;
            else {
                cli_error("--dtype %s: expected bfloat16 or float32", v);
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--force")) {
            o->p.force = true;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--threads")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_int(a, v, 0, 1024, &n)) return EXIT_USAGE;
            o->p.threads = (int)n;
        } else if (a[0] == '-' && a[1]) {
            cli_error("convert: unknown option %s (run `zmlx convert --help`)", a);
            return EXIT_USAGE;
        } else if (!o->src) {
            o->src = a;
        } else if (!o->dst) {
            o->dst = a;
        } else {
            cli_error("convert: unexpected argument \"%s\" (SRC and DST are already given)", a);
            return EXIT_USAGE;
        }
    }
    if (!o->src || !o->dst) {
        cli_error("convert: needs SRC and DST (run `zmlx convert --help`)");
        return EXIT_USAGE;
    }
    if (o->no_quant && (o->bits >= 0 || o->group >= 0)) {
        cli_error("convert: --no-quant cannot be combined with --q-bits / --q-group-size");
        return EXIT_USAGE;
    }
    bool mx = o->p.mode == ZCV_Q_MXFP4; /* mlx-lm's defaults per mode */
    o->p.bits = o->bits >= 0 ? (int)o->bits : 4;
    o->p.group = o->group >= 0 ? (int)o->group : mx ? 32 : 64;
    if (o->no_quant) o->p.mode = ZCV_Q_NONE;
    zerr e = {{0}};
    if (!zcv_params_check(&o->p, &e)) {
        cli_error("%s", e.msg);
        return EXIT_USAGE;
    }
    return 0;
}

typedef struct bar {
    double t0, last;
    bool tty;
} bar;

static void fmt_bytes(char *buf, size_t n, uint64_t b) {
    if (b >= (1ull << 30)) snprintf(buf, n, "%.2f GiB", (double)b / 1073741824.0);
    else snprintf(buf, n, "%.1f MiB", (double)b / 1048576.0);
}

static void on_progress(void *ctx, const zcv_progress *p) {
    bar *b = ctx;
    double now = cli_now();
    bool done = p->bytes_done == p->bytes_total;
    if (!b->tty || (!done && now - b->last < 0.1)) return;
    b->last = now;
    const int W = 30;
    double f = p->bytes_total ? (double)p->bytes_done / (double)p->bytes_total : 1.0;
    char bars[64], d[32], t[32];
    int k = (int)(f * W);
    for (int i = 0; i < W; i++) bars[i] = i < k ? '#' : '.';
    bars[W] = '\0';
    fmt_bytes(d, sizeof d, p->bytes_done);
    fmt_bytes(t, sizeof t, p->bytes_total);
    fprintf(stderr, "\r\033[Kconvert [%s] %3.0f%%  %zu/%zu tensors  %s / %s  %.0fs  %.40s", bars,
            100.0 * f, p->tensors_done, p->tensors_total, d, t, now - b->t0,
            p->current ? p->current : "");
    if (done) fputc('\n', stderr);
    fflush(stderr);
}

int cmd_convert(int argc, char **argv) {
    cv_opts o = {0};
    int rc = parse(&o, argc, argv);
    if (rc) return rc < 0 ? 0 : rc;
    bar b = {.t0 = cli_now(), .tty = isatty(STDERR_FILENO) != 0};
    o.p.progress = on_progress;
    o.p.progress_ctx = &b;
    g_cancel = 0;
    o.p.cancel = &g_cancel;
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    zcv_summary sum = {0};
    zerr e = {{0}};
    zmlx_status st = zcv_convert(o.src, o.dst, &o.p, &sum, &e);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    double secs = cli_now() - b.t0;
    if (st != ZMLX_OK) {
        if (b.tty) fputc('\n', stderr);
        if (g_cancel) {
            cli_error("convert: interrupted; %s was not written", o.dst);
            return 128 + (int)g_cancel;
        }
        cli_error("%s", e.msg);
        /* bad arguments, SRC or DST are usage/load errors; failures while writing are 1 */
        return sum.writing ? 1 : EXIT_USAGE;
    }
    char q[64], sz[32];
    if (o.p.mode == ZCV_Q_NONE) snprintf(q, sizeof q, "not quantized");
    else snprintf(q, sizeof q, "%s %d-bit g%d", o.p.mode == ZCV_Q_MXFP4 ? "mxfp4" : "affine",
                  o.p.bits, o.p.group);
    fmt_bytes(sz, sizeof sz, sum.total_bytes);
    char kept[48] = "";
    if (sum.n_kept_int4) snprintf(kept, sizeof kept, ", %zu kept int4", sum.n_kept_int4);
    fprintf(stderr, "zmlx convert: %s -> %s (%s, %s): %zu tensors (%zu modules quantized%s), "
            "%d shard%s, %s, %.1f s\n", o.src, o.dst, sum.model_type, q, sum.n_tensors,
            sum.n_quantized, kept, sum.n_shards, sum.n_shards == 1 ? "" : "s", sz, secs);
    if (o.json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:i, s:f}", "src",
                              o.src, "dst", o.dst, "model_type", sum.model_type, "mode",
                              o.p.mode == ZCV_Q_NONE    ? "none"
                              : o.p.mode == ZCV_Q_MXFP4 ? "mxfp4"
                                                        : "affine",
                              "bits", o.p.bits, "group_size", o.p.group, "tensors",
                              (json_int_t)sum.n_tensors, "bytes", (json_int_t)sum.total_bytes,
                              "parameters", (json_int_t)sum.total_parameters, "shards",
                              sum.n_shards, "seconds", secs);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (s) printf("%s\n", s);
        free(s);
        json_decref(j);
    }
    return 0;
}
