/*
 * cmd_validate.c — `zmlx validate`: baseline vs a pattern set on one model (warm-up,
 * interleaved runs, medians, memory, fidelity over every run, speedup), printed as a
 * table or written as JSON (--json-out, temp file + rename).  Exit 0 PASS, 1 FAIL,
 * 2 usage or load errors.
 */
#include "cli/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct val_opts {
    cli_common c;
    const char *patterns, *prompt, *prompt_ids, *json_out;
    long long max_tokens, runs, warmup;
} val_opts;

static void val_usage(void) {
    printf("usage: zmlx validate [MODEL] [--patterns LIST|default] [--max-tokens 200] [--runs 3]\n"
           "       [--warmup 1] [--prompt TEXT | --prompt-ids 1,2,3] [--json-out FILE]\n"
           "       [common options]\n"
           "Baseline (no patterns) vs the pattern set, interleaved greedy runs; PASS when every\n"
           "run's tokens are identical.  Exit 0 PASS, 1 FAIL, 2 error.\n");
}

static int parse(val_opts *o, int argc, char **argv) {
    cli_common_init(&o->c);
    o->patterns = "default";
    o->max_tokens = 200;
    o->runs = 3;
    o->warmup = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            val_usage();
            return 0;
        }
        if (!strcmp(a, "--patterns")) { /* the patched set; the model loads unpatched */
            if (!(v = cli_value(argc, argv, &i))) return EXIT_USAGE;
            o->patterns = v;
            continue;
        }
        int r = cli_common_arg(&o->c, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        static const char *const valued[] = {"--prompt", "--prompt-ids", "--json-out", "--max-tokens",
                                             "--runs", "--warmup", NULL};
        if (!(v = cli_valued("validate", valued, argc, argv, &i))) return EXIT_USAGE;
        if (!strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "--prompt-ids")) o->prompt_ids = v;
        else if (!strcmp(a, "--json-out")) o->json_out = v;
        else if (!strcmp(a, "--max-tokens")) {
            if (!cli_int(a, v, 1, 1 << 20, &o->max_tokens)) return EXIT_USAGE;
        } else if (!strcmp(a, "--runs")) {
            if (!cli_int(a, v, 1, ZMLX_VALIDATE_MAX_RUNS, &o->runs)) return EXIT_USAGE;
        } else if (!cli_int(a, v, 0, 100, &o->warmup)) {
            return EXIT_USAGE;
        }
    }
    o->c.mp.patterns = "none";
    return -1;
}

static void progress(void *user, const char *phase, int run, int runs) {
    if (!isatty(2)) return;
    fprintf(stderr, "\r\033[K%s run %d/%d ...", phase, run + 1, runs);
    fflush(stderr);
}

static json_t *times_json(const zmlx_run_times *t, int n, bool decode) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_real(decode ? t[i].decode_tok_s : t[i].prefill_tok_s));
    return a;
}

static bool write_json(const char *path, const val_opts *o, const zmlx_model_info *info,
                       const zmlx_validate_result *r) {
    json_t *j = json_object();
    json_object_set_new(j, "model", json_string(info->name));
    json_object_set_new(j, "backend", json_string(info->backend));
    json_object_set_new(j, "threads", json_integer(info->threads));
    json_object_set_new(j, "kv_dtype", json_string(info->kv_dtype));
    json_object_set_new(j, "precision", json_string(o->c.mp.precision == ZMLX_PRECISION_EXACT ? "exact" : "fast"));
    json_object_set_new(j, "patterns", json_string(r->patterns));
    json_object_set_new(j, "max_tokens", json_integer(r->gen_tokens));
    json_object_set_new(j, "runs", json_integer(r->runs));
    json_t *fid = json_pack("{s:I, s:I, s:s, s:i, s:i}", "matched", (json_int_t)r->matched,
                            "total", (json_int_t)r->total, "verdict", r->pass ? "PASS" : "FAIL",
                            "first_divergence", r->first_divergence, "first_divergence_run",
                            r->first_divergence_run);
    json_object_set_new(j, "fidelity", fid);
    json_object_set_new(j, "baseline", json_pack("{s:o, s:o, s:f, s:f, s:f}",
        "prefill_tok_s", times_json(r->baseline, r->runs, false), "decode_tok_s", times_json(r->baseline, r->runs, true),
        "median_prefill", r->median_prefill_baseline, "median_decode", r->median_decode_baseline,
        "peak_mem_mb", r->peak_mem_mb_baseline));
    json_object_set_new(j, "patched", json_pack("{s:o, s:o, s:f, s:f, s:f}",
        "prefill_tok_s", times_json(r->patched, r->runs, false), "decode_tok_s", times_json(r->patched, r->runs, true),
        "median_prefill", r->median_prefill_patched, "median_decode", r->median_decode_patched,
        "peak_mem_mb", r->peak_mem_mb_patched));
    json_object_set_new(j, "decode_speedup", json_real(r->decode_speedup));
    json_object_set_new(j, "prefill_change", json_real(r->prefill_change));
    json_object_set_new(j, "bytes_per_token", json_integer(info->bytes_per_token));
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    bool ok = f && json_dumpf(j, f, JSON_INDENT(1)) == 0;
    if (f) ok = (fclose(f) == 0) && ok;
    else if (fd >= 0) close(fd);
    if (ok) ok = rename(tmp, path) == 0;
    if (!ok) {
        if (fd >= 0) unlink(tmp);
        cli_error("--json-out %s: could not write the file", path);
    }
    json_decref(j);
    return ok;
}

static void print_table(const zmlx_model_info *info, const zmlx_validate_result *r) {
    printf("model     %s (%s, weights %s, kv %s, %d threads)\n", info->name, info->backend, info->weight_format,
           info->kv_dtype, info->threads);
    printf("patterns  %s\n", r->patterns);
    printf("runs      %d x %d greedy tokens, interleaved after warm-up\n\n", r->runs, r->gen_tokens);
    printf("            decode tok/s   prefill tok/s   peak MiB\n");
    printf("baseline    %12.2f   %13.1f   %8.0f\n", r->median_decode_baseline,
           r->median_prefill_baseline, r->peak_mem_mb_baseline);
    printf("patched     %12.2f   %13.1f   %8.0f\n", r->median_decode_patched,
           r->median_prefill_patched, r->peak_mem_mb_patched);
    printf("\ndecode speedup %.3fx, prefill change %+.1f%% (medians)\n", r->decode_speedup,
           100.0 * r->prefill_change);
    if (r->pass)
        printf("fidelity  PASS: %lld/%lld tokens identical\n", (long long)r->matched, (long long)r->total);
    else
        printf("fidelity  FAIL: %lld/%lld tokens identical; first divergence at token %d of %s run %d\n",
               (long long)r->matched, (long long)r->total, r->first_divergence,
               r->first_divergence_run >= 0 ? "patched" : "baseline",
               r->first_divergence_run >= 0 ? r->first_divergence_run + 1 : -r->first_divergence_run);
}

int cmd_validate(int argc, char **argv) {
    val_opts o = {0};
    int rc = parse(&o, argc, argv);
    if (rc >= 0) return rc;
    zmlx_model *m = cli_load_model(&o.c);
    if (!m) return EXIT_USAGE;
    rc = EXIT_USAGE;
    zmlx_tokenizer *tok = cli_load_tokenizer(&o.c, m, o.prompt != NULL);
    size_t n_prompt = 0;
    int32_t *prompt = cli_prompt_ids(o.prompt, o.prompt_ids, tok, m, &n_prompt);
    if (prompt) {
        zmlx_validate_params vp = zmlx_validate_default_params();
        vp.patterns = o.patterns;
        vp.prompt = prompt;
        vp.n_prompt = n_prompt;
        vp.max_tokens = (int32_t)o.max_tokens;
        vp.runs = (int32_t)o.runs;
        vp.warmup = (int32_t)o.warmup;
        vp.progress = progress;
        zmlx_validate_result r;
        char err[ZMLX_ERR_MAX];
        zmlx_status st = zmlx_validate(m, &vp, &r, err, sizeof err);
        if (isatty(2)) fprintf(stderr, "\r\033[K");
        if (st != ZMLX_OK) {
            cli_error("%s", err);
        } else {
            zmlx_model_info info;
            zmlx_model_get_info(m, &info);
            print_table(&info, &r);
            rc = r.pass ? 0 : 1;
            if (o.json_out && !write_json(o.json_out, &o, &info, &r)) rc = EXIT_USAGE;
        }
    }
    free(prompt);
    zmlx_tokenizer_free(tok);
    zmlx_model_free(m);
    return rc;
}
