/*
 * cmd_bench.c — `zmlx bench`: the experiment harness on one model.  Probes the model
 * first (a model that does not fit is recorded as SKIP(RAM) without loading it), runs
 * the shared baseline and every variant interleaved (tools/bench.c), writes the capsule
 * (temp file + rename), appends one ledger entry per variant, and prints the summary
 * table last.  A progress line goes to stderr only when it is a terminal.
 * Also the driver `matrix run` uses (cli_bench_run).
 */
#include "cli/cmd_harness.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void bench_usage(void) {
    printf("usage: zmlx bench [MODEL] [--variants LIST] [--runs N] [--max-tokens N] [--warmup N]\n"
           "       [--json-out CAPSULE] [--ledger FILE|none] [--allow-unsafe] [--notes TEXT]\n"
           "       [--prompt TEXT | --prompt-ids 1,2,3] [--bw-seconds S] [--read-gbps G]\n"
           "       [common options]\n"
           "\n"
           "One shared unpatched baseline and each variant, timed interleaved (baseline, v1, v2,\n"
           "... per round, after --warmup rounds); greedy tokens, EOS ignored.  Fidelity of each\n"
           "variant = every run's tokens identical to the first baseline run's.\n"
           "\n"
           "  --variants LIST   comma-separated: named variants or ad-hoc sets written a+b\n"
           "                    (default: every named variant).  Named variants:\n");
    for (int i = 0; zbench_variant_name(i); i++)
        printf("                      %-22s %s\n", zbench_variant_name(i),
               zbench_variant_spec(zbench_variant_name(i)));
    printf("  --runs N          timed rounds (default 5, at most %d)\n"
           "  --max-tokens N    greedy tokens per run (default 64)\n"
           "  --json-out FILE   the capsule (default benchmarks/capsules/<model>-<UTC time>.json)\n"
           "  --ledger FILE     matrix ledger to append to (default %s; none = no ledger)\n"
           "  --allow-unsafe    run variants holding a pattern marked unsafe (else SKIP)\n"
           "  --notes TEXT      free text stored in the capsule and the ledger\n"
           "  --bw-seconds S    time spent measuring the read bandwidth (default 2.5; 0 = skip)\n"
           "  --read-gbps G     the read bandwidth to compare with, measured elsewhere (a GPU's,\n"
           "                    from zmlx-cuda_bw); no measurement is made\n"
           "  --json            print the capsule as one JSON line instead of the table\n"
           "\n"
           "Verdicts per variant: PASS, FAIL (tokens differ), SKIP (unsafe pattern, or SKIP(RAM)\n"
           "when the model does not fit this machine: it is then never loaded), ERROR (the set\n"
           "is refused or a run failed; the other variants still run).\n"
           "Exit 0 when the bench ran and its capsule was written, whatever the verdicts;\n"
           "1 when the baseline itself failed (capsule and ledger still record it);\n"
           "2 on usage or load errors, or when the capsule or ledger cannot be written.\n",
           ZMLX_VALIDATE_MAX_RUNS, ZMLX_DEFAULT_LEDGER);
}

/* Append len bytes of s to buf (capacity n, *o used), dropping what does not fit. */
static void put(char *buf, size_t n, size_t *o, const char *s, size_t len) {
    const size_t room = *o + 1 < n ? n - *o - 1 : 0;
    for (size_t i = 0; i < len && i < room; i++)
        buf[(*o)++] = s[i];
    if (*o < n) buf[*o] = '\0';
}

void cli_join_argv(char *buf, size_t n, int argc, char **argv) {
    size_t o = 0;
    buf[0] = '\0';
    put(buf, n, &o, "zmlx", 4);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        put(buf, n, &o, " ", 1);
        if (a[0] && !strpbrk(a, " \t\n\"'$`\\*?;&|<>()")) {
            put(buf, n, &o, a, strlen(a));
            continue;
        }
        put(buf, n, &o, "'", 1); /* POSIX shell quoting: ' becomes '\'' */
        for (; *a; a++)
            put(buf, n, &o, *a == '\'' ? "'\\''" : a, *a == '\'' ? 4 : 1);
        put(buf, n, &o, "'", 1);
    }
}

void cli_ledger_warn(void *user, const char *msg) {
    (void)user;
    fprintf(stderr, "zmlx: warning: %s\n", msg);
}

static void progress(void *user, int round, int rounds, const char *variant) {
    (void)user;
    if (!isatty(2)) return;
    if (round < 0)
        fprintf(stderr, "\r\033[Kbench: warm-up, %s ...", variant);
    else
        fprintf(stderr, "\r\033[Kbench: round %d/%d, %s ...", round + 1, rounds, variant);
    fflush(stderr);
}

static int parse(bench_cli *o, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long long n;
        double d;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            bench_usage();
            return 0;
        }
        if (!strcmp(a, "--allow-unsafe")) {
            o->p.allow_unsafe = true;
            continue;
        }
        if (!strcmp(a, "--patterns")) {
            cli_error("bench: use --variants (named variants, or pattern sets written a+b)");
            return EXIT_USAGE;
        }
        int r = cli_common_arg(&o->c, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        static const char *const valued[] = {
            "--variants", "--runs",   "--max-tokens", "--warmup",     "--json-out", "--ledger",
            "--notes",    "--prompt", "--prompt-ids", "--bw-seconds", "--read-gbps", NULL};
        bool known = false;
        for (int k = 0; valued[k]; k++)
            known |= !strcmp(a, valued[k]);
        if (!known) {
            cli_error("bench: unknown option %s (see zmlx bench --help)", a);
            return EXIT_USAGE;
        }
        if (!(v = cli_value(argc, argv, &i))) return EXIT_USAGE;
        if (!strcmp(a, "--variants"))
            o->p.variants = v;
        else if (!strcmp(a, "--json-out"))
            o->json_out = v;
        else if (!strcmp(a, "--ledger"))
            o->ledger = v;
        else if (!strcmp(a, "--notes"))
            o->p.notes = v;
        else if (!strcmp(a, "--prompt"))
            o->prompt = v;
        else if (!strcmp(a, "--prompt-ids"))
            o->prompt_ids = v;
        else if (!strcmp(a, "--bw-seconds")) {
            if (!cli_float(a, v, 0, 60, &d)) return EXIT_USAGE;
            o->p.bw_seconds = d;
        } else if (!strcmp(a, "--read-gbps")) {
            if (!cli_float(a, v, 0.001, 1e6, &d)) return EXIT_USAGE;
            o->p.read_gbps = d;
        } else {
            long long hi = !strcmp(a, "--runs") ? ZMLX_VALIDATE_MAX_RUNS : 1 << 20;
            if (!cli_int(a, v, !strcmp(a, "--warmup") ? 0 : 1, hi, &n)) return EXIT_USAGE;
            if (!strcmp(a, "--runs"))
                o->p.runs = (int32_t)n;
            else if (!strcmp(a, "--max-tokens"))
                o->p.max_tokens = (int32_t)n;
            else
                o->p.warmup = (int32_t)n;
        }
    }
    return -1;
}

/* Load, tokenize the prompt and run the bench; returns an exit code. */
static int run_loaded(bench_cli *o, zbench_result *r) {
    o->c.mp.patterns = "none";
    zmlx_model *m = cli_load_model(&o->c);
    if (!m) return EXIT_USAGE;
    int rc = EXIT_USAGE;
    zmlx_tokenizer *tok = o->prompt_ids ? NULL : cli_load_tokenizer(&o->c, m, o->prompt != NULL);
    size_t n_prompt = 0;
    int32_t *prompt = cli_prompt_ids(o->prompt, o->prompt_ids, tok, m, &n_prompt);
    if (prompt) {
        zerr e = {{0}};
        zmlx_status st = zbench_execute(m, prompt, n_prompt, &o->p, r, &e);
        if (isatty(2)) fprintf(stderr, "\r\033[K");
        rc = 0;
        if (st != ZMLX_OK) {
            cli_error("bench: %s", e.msg);
            rc = st == ZMLX_ERR_INVALID_ARG ? EXIT_USAGE : 1;
        }
    }
    free(prompt);
    zmlx_tokenizer_free(tok);
    zmlx_model_free(m);
    return rc;
}

int cli_bench_run(bench_cli *o) {
    o->p.model = o->c.model ? o->c.model : ZMLX_DEFAULT_MODEL;
    o->p.mp = o->c.mp;
    o->p.invocation = o->invocation;
    char prompt_arg[1024] = "";
    if (o->prompt_ids || o->prompt) { /* quoted for a shell, without the leading "zmlx " */
        char *pa[2] = {o->prompt_ids ? "--prompt-ids" : "--prompt",
                       (char *)(o->prompt_ids ? o->prompt_ids : o->prompt)};
        cli_join_argv(prompt_arg, sizeof prompt_arg, 2, pa);
        memmove(prompt_arg, prompt_arg + 5, strlen(prompt_arg + 5) + 1);
    }
    o->p.prompt_arg = prompt_arg;
    o->p.progress = progress;
    zbench_result *r = calloc(1, sizeof *r);
    if (!r) {
        cli_error("bench: out of memory");
        return EXIT_USAGE;
    }
    zerr e = {{0}};
    int rc = 0;
    if (zbench_prepare(&o->p, r, &e) != ZMLX_OK) {
        cli_error("%s", e.msg);
        free(r);
        return EXIT_USAGE;
    }
    if (!r->ram_skip) rc = run_loaded(o, r);
    if (rc == EXIT_USAGE) {
        free(r);
        return rc;
    }
    char path[4096];
    if (o->json_out)
        snprintf(path, sizeof path, "%s", o->json_out);
    else
        zcapsule_default_path(r, path, sizeof path);
    json_t *cap = zcapsule_build(r);
    if (zjson_write_file(cap, path, &e) != ZMLX_OK) {
        cli_error("--json-out %s", e.msg);
        rc = EXIT_USAGE;
        goto out;
    }
    const char *ledger = o->ledger ? o->ledger : ZMLX_DEFAULT_LEDGER;
    int appended = 0;
    if (strcmp(ledger, "none")) {
        for (int i = 0; i < r->n_variants; i++) {
            json_t *entry = zcapsule_ledger_entry(cap, r->v[i].name, path);
            zmlx_status st = zledger_append(ledger, entry, &e);
            json_decref(entry);
            if (st != ZMLX_OK) {
                cli_error("--ledger %s", e.msg);
                rc = EXIT_USAGE;
                goto out;
            }
            appended++;
        }
    }
    if (o->c.json) {
        char *s = json_dumps(cap, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (s) puts(s);
        free(s);
    } else {
        const json_t *caps[1] = {cap};
        const char *names[1] = {path};
        zreport_capsules(stdout, caps, names, 1);
        printf("capsule   %s\n", path);
        if (appended)
            printf("ledger    %s (+%d entries)\n", ledger, appended);
        else
            printf("ledger    none\n");
    }
out:
    json_decref(cap);
    free(r);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    bench_cli o;
    memset(&o, 0, sizeof o);
    cli_common_init(&o.c);
    o.p = zbench_default_params();
    int rc = parse(&o, argc, argv);
    if (rc >= 0) return rc;
    cli_join_argv(o.invocation, sizeof o.invocation, argc, argv);
    return cli_bench_run(&o);
}
