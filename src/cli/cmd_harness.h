/*
 * cmd_harness.h — the experiment-harness subcommands (`bench`, `report`, `matrix`) and
 * the bench driver that `bench` and `matrix run` share: probe (SKIP(RAM) without
 * loading), load, bench, capsule, ledger, summary table.
 */
#ifndef ZMLX_CLI_CMD_HARNESS_H
#define ZMLX_CLI_CMD_HARNESS_H

#include "cli/cli.h"
#include "tools/harness.h"

#define ZMLX_DEFAULT_LEDGER "benchmarks/matrix.jsonl"

typedef struct bench_cli {
    cli_common c;
    zbench_params p;
    const char *json_out; /* capsule path; NULL = benchmarks/capsules/<slug>-<stamp>.json */
    const char *ledger;   /* ledger path, or "none" */
    const char *prompt, *prompt_ids;
    char invocation[2048];
} bench_cli;

/* Run a parsed bench; returns the exit code (0 ran, 1 baseline failed, 2 usage/load/IO). */
int cli_bench_run(bench_cli *o);
/* "zmlx <argv joined>" with arguments holding spaces quoted. */
void cli_join_argv(char *buf, size_t n, int argc, char **argv);
/* Ledger-reader warnings: "zmlx: warning: FILE:LINE: skipping ..." on stderr. */
void cli_ledger_warn(void *user, const char *msg);

int cmd_bench(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_matrix(int argc, char **argv);

#endif
