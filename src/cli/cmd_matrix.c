/*
 * cmd_matrix.c — `zmlx matrix`: the ledger and its views.
 *   run MODEL [--patterns SET]... [--runs N] [--max-tokens N] [--notes TEXT]
 *                              a bench of explicit pattern sets (default: the preset)
 *   history SUBSTR             entries whose model id contains SUBSTR (any case)
 *   report                     latest entry per model x pattern set
 *   csv                        every entry as CSV
 *   html [--out FILE]          one self-contained HTML page (heatmap + charts)
 * each with [--ledger FILE] (default benchmarks/matrix.jsonl).  Exit 0, or 2 on usage
 * errors or a ledger that cannot be read (`run` follows `zmlx bench`).
 */
#include "cli/cmd_harness.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MATRIX_MAX_SETS 16

static void matrix_usage(void) {
    printf(
        "usage: zmlx matrix run MODEL [--patterns SET]... [--runs N] [--max-tokens N]\n"
        "                  [--notes TEXT] [--ledger FILE] [--json-out CAPSULE] [common options]\n"
        "       zmlx matrix history SUBSTR [--ledger FILE]\n"
        "       zmlx matrix report [--ledger FILE]\n"
        "       zmlx matrix csv [--ledger FILE]\n"
        "       zmlx matrix html [--out FILE] [--ledger FILE]\n"
        "\n"
        "The matrix ledger (default %s) is JSONL, append-only: one line per bench\n"
        "variant.  `run` benches each --patterns SET (a,b,c or a+b; default = the family\n"
        "preset) against the unpatched baseline and appends the results (see zmlx bench).\n"
        "`history` matches a case-insensitive substring of the model id; `report` shows\n"
        "the latest entry per model x pattern set; `html` writes one self-contained page\n"
        "(default benchmarks/matrix.html).  Malformed ledger lines are skipped with a\n"
        "warning; the ledger is never rewritten.\n",
        ZMLX_DEFAULT_LEDGER);
}

static int matrix_run(int argc, char **argv) {
    bench_cli o;
    memset(&o, 0, sizeof o);
    cli_common_init(&o.c);
    o.p = zbench_default_params();
    const char *sets[MATRIX_MAX_SETS];
    int n_sets = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v;
        long long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            matrix_usage();
            return 0;
        }
        if (!strcmp(a, "--allow-unsafe")) {
            o.p.allow_unsafe = true;
            continue;
        }
        if (!strcmp(a, "--patterns")) {
            if (!(v = cli_value(argc, argv, &i))) return EXIT_USAGE;
            if (n_sets == MATRIX_MAX_SETS) {
                cli_error("matrix run: at most %d --patterns sets", MATRIX_MAX_SETS);
                return EXIT_USAGE;
            }
            sets[n_sets++] = v;
            continue;
        }
        int r = cli_common_arg(&o.c, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        static const char *const valued[] = {
            "--runs",     "--max-tokens", "--notes",      "--ledger",
            "--json-out", "--warmup",     "--prompt-ids", NULL};
        bool known = false;
        for (int k = 0; valued[k]; k++)
            known |= !strcmp(a, valued[k]);
        if (!known) {
            cli_error("matrix run: unknown option %s (see zmlx matrix --help)", a);
            return EXIT_USAGE;
        }
        if (!(v = cli_value(argc, argv, &i))) return EXIT_USAGE;
        if (!strcmp(a, "--notes"))
            o.p.notes = v;
        else if (!strcmp(a, "--ledger"))
            o.ledger = v;
        else if (!strcmp(a, "--json-out"))
            o.json_out = v;
        else if (!strcmp(a, "--prompt-ids"))
            o.prompt_ids = v;
        else if (!strcmp(a, "--runs")) {
            if (!cli_int(a, v, 1, ZMLX_VALIDATE_MAX_RUNS, &n)) return EXIT_USAGE;
            o.p.runs = (int32_t)n;
        } else if (!strcmp(a, "--max-tokens")) {
            if (!cli_int(a, v, 1, 1 << 20, &n)) return EXIT_USAGE;
            o.p.max_tokens = (int32_t)n;
        } else {
            if (!cli_int(a, v, 0, 100, &n)) return EXIT_USAGE;
            o.p.warmup = (int32_t)n;
        }
    }
    if (!o.c.model) {
        cli_error("matrix run: give a MODEL (a checkpoint directory or builtin:NAME)");
        return EXIT_USAGE;
    }
    if (n_sets == 0) sets[n_sets++] = "default";
    o.p.sets = sets;
    o.p.n_sets = n_sets;
    cli_join_argv(o.invocation, sizeof o.invocation, argc, argv);
    return cli_bench_run(&o);
}

/* The view subcommands: options, then the ledger read with warnings. */
static int matrix_view(const char *sub, int argc, char **argv) {
    const char *ledger = ZMLX_DEFAULT_LEDGER, *out_path = "benchmarks/matrix.html", *substr = NULL;
    const bool history = !strcmp(sub, "history"), html = !strcmp(sub, "html");
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            matrix_usage();
            return 0;
        }
        if (!strcmp(a, "--ledger") || (html && !strcmp(a, "--out"))) {
            const char *v = cli_value(argc, argv, &i);
            if (!v) return EXIT_USAGE;
            if (!strcmp(a, "--ledger"))
                ledger = v;
            else
                out_path = v;
        } else if (history && !substr && a[0] != '-') {
            substr = a;
        } else {
            cli_error("matrix %s: unexpected argument %s (see zmlx matrix --help)", sub, a);
            return EXIT_USAGE;
        }
    }
    if (history && !substr) {
        cli_error("matrix history: give a SUBSTR of the model id (\"\" matches every entry)");
        return EXIT_USAGE;
    }
    json_t *entries = NULL;
    zerr e = {{0}};
    zmlx_status st = zledger_read(ledger, &entries, cli_ledger_warn, NULL, &e);
    if (st != ZMLX_OK) {
        if (st == ZMLX_ERR_NOT_FOUND)
            cli_error("%s (run `zmlx bench` or `zmlx matrix run MODEL` first, or pass --ledger)",
                      e.msg);
        else
            cli_error("%s", e.msg);
        return EXIT_USAGE;
    }
    int rc = 0;
    if (history) {
        if (zmatrix_history(stdout, entries, substr) == 0)
            printf("no entry of %s has a model id containing \"%s\"\n", ledger, substr);
    } else if (!strcmp(sub, "report")) {
        zmatrix_report(stdout, entries);
    } else if (!strcmp(sub, "csv")) {
        zmatrix_csv(stdout, entries);
    } else {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (f) {
            zmatrix_html(f, entries, ledger);
            fclose(f);
        }
        if (!f || !buf || zfile_write_atomic(out_path, buf, len, &e) != ZMLX_OK) {
            cli_error("--out %s", f && buf ? e.msg : "out of memory");
            rc = EXIT_USAGE;
        } else {
            printf("%s (%zu entries)\n", out_path, json_array_size(entries));
        }
        free(buf);
    }
    json_decref(entries);
    return rc;
}

int cmd_matrix(int argc, char **argv) {
    if (argc < 2) {
        cli_error("matrix: give a subcommand: run, history, report, csv or html");
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        matrix_usage();
        return 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "run")) return matrix_run(argc, argv);
    if (!strcmp(sub, "history") || !strcmp(sub, "report") || !strcmp(sub, "csv") ||
        !strcmp(sub, "html"))
        return matrix_view(sub, argc, argv);
    cli_error("matrix: unknown subcommand \"%s\" (run, history, report, csv or html)", sub);
    return EXIT_USAGE;
}
