/*
 * harness.h — the experiment harness as library code (SYSTEM.md section 4):
 *   sysinfo.c      date, version, commit, compiler, CPU/memory (GPU fields null for now)
 *   variants.c     the named bench variants and the list parser, the unsafe decision
 *   bench.c        `zmlx bench`: one shared baseline, variants interleaved per round
 *   capsule.c      a bench result as a capsule (JSON), written by temp file + rename
 *   capsule_read.c reading a capsule back with its schema checked; ledger entries from it
 *   ledger.c       the append-only JSONL matrix ledger (flock + one O_APPEND write)
 *   report.c       the text table of one or more capsules (`zmlx report`)
 *   matrix.c       ledger views: history, latest per model x pattern set, CSV
 *   matrix_html.c  one self-contained HTML page: speedup heatmap + decode over time
 *
 * Not for: printing to the terminal or choosing exit codes (the CLI's job).  Views write
 * to a FILE* the caller gives; readers report skipped lines through a warning callback.
 */
#ifndef ZMLX_TOOLS_HARNESS_H
#define ZMLX_TOOLS_HARNESS_H

#include "core/err.h"
#include "patch/patch.h"
#include "zmlx.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- sysinfo */

typedef struct zsysinfo {
    char date[32];           /* UTC ISO-8601 of the start, "2026-01-31T12:00:00Z" */
    char stamp[32];          /* the same instant for file names, "20260131T120000Z" */
    char version[16];        /* ZMLX_VERSION */
    char commit[48];         /* git rev-parse --short HEAD at configure time, or "unknown" */
    char compiler[96];       /* "GNU 12.2.0" */
    char build_type[24];     /* "Release" */
    char cflags[1024];       /* the compile options the library was built with */
    char cpu_model[128];     /* /proc/cpuinfo "model name" (or "unknown") */
    char os[128];            /* uname: "Linux 6.1.0-18-amd64 x86_64" */
    int cpu_cores;           /* online cores */
    int64_t mem_total_bytes; /* MemTotal, -1 unknown */
    char hardware[256];      /* one line for tables: "AMD EPYC 7R13, 2 cores, 23.4 GiB" */
    char cpu_isa[320];       /* the cpu backend's kernels: "avx2 (auto; cpu: avx2 fma f16c)" */
    char gpu_name[128];      /* a device backend's device ("NVIDIA H200"), "" for host runs */
    int64_t gpu_memory_bytes;
    char gpu_driver[48];     /* "580.159.04" */
    int32_t gpu_count;       /* GPUs the run uses (--gpus) */
} zsysinfo;

void zsysinfo_get(zsysinfo *s);
/* {cpu_model, cpu_cores, mem_total_bytes, os, hardware, cpu_isa, gpu {name, memory_bytes,
   driver, count}} — the GPU fields null for host backends (zbench_prepare fills them
   from the device backend's `describe`). */
json_t *zsysinfo_device_json(const zsysinfo *s);

/* ---------------------------------------------------------------- variants */

#define ZBENCH_MAX_VARIANTS 24
#define ZBENCH_MAX_PROMPT 4096

typedef enum zverdict { ZV_PASS = 0, ZV_FAIL, ZV_SKIP, ZV_ERROR } zverdict;
const char *zverdict_name(zverdict v);

/* The named variants of SYSTEM.md section 4, in table order: name -> pattern spec
   ("swiglu_mlp,moe_mlp", or "default" for the family preset).  NULL past the end. */
const char *zbench_variant_name(int i);
const char *zbench_variant_spec(const char *name); /* NULL if not a named variant */

/* One side of the comparison: the timed runs (warm-up excluded) and the peak memory. */
typedef struct zbench_side {
    zmlx_run_times t[ZMLX_VALIDATE_MAX_RUNS];
    int n;
    int64_t peak_session_bytes; /* the largest session (cache + scratch) of these runs */
    double median_prefill, median_decode, peak_mem_mb; /* NaN until measured */
} zbench_side;

typedef struct zbench_variant {
    char name[160];     /* the capsule key: a named variant or the set as written */
    char spec[256];     /* the pattern set requested ("swiglu_mlp,moe_mlp", "a+b", "default") */
    char patterns[256]; /* resolved "a,b,c" in registry order; "" if it did not resolve */
    zpatch_set set;
    zverdict verdict;
    bool active;            /* still runs in the rounds */
    char detail[640];       /* fidelity_detail: "96/96 tokens identical", "SKIP(RAM): ...", ... */
    char error[640];        /* the ERROR message ("" otherwise) */
    int64_t matched, total; /* tokens equal to the reference, over baseline + variant runs */
    int32_t first_divergence, first_divergence_run; /* -1 none; run < 0: baseline run -1-run */
    zbench_side patched;
    double decode_speedup, prefill_change, achieved_GBps, roofline_fraction; /* NaN if none */
    char command[2048]; /* a command line that reruns this variant alone */
} zbench_variant;

/*
 * Split a --variants list (comma separated; each item a named variant or an ad-hoc set
 * written with '+') into r->v[].  NULL or "" = every named variant.  Refuses (usage
 * error) empty items, duplicates, the name "meta" and more than ZBENCH_MAX_VARIANTS.
 * Unknown patterns are not refused here: they become ERROR verdicts when resolved.
 */
typedef struct zbench_result zbench_result;
zmlx_status zbench_parse_variants(const char *list, zbench_result *r, zerr *e);
/* Add one explicit pattern set ("a,b,c", "a+b" or "default") as a variant: named
   "preset" for default, else the set written with '+' ("-only" appended when that would
   read as a named variant). */
zmlx_status zbench_add_set(zbench_result *r, const char *spec, zerr *e);
/* Index into `table` of the first pattern of `set` whose status is unsafe, or -1. */
int zbench_first_unsafe(const zpattern *table, int n, zpatch_set set);
/*
 * Resolve every variant's spec for `family` (zpatch_parse): a refused set becomes ERROR
 * with the parser's message; a set holding an unsafe pattern becomes SKIP unless
 * allow_unsafe; the rest are marked active.
 */
void zbench_resolve(zbench_result *r, zfamily family, const zpattern *table, int n_table,
                    bool allow_unsafe);

/* ---------------------------------------------------------------- bench */

typedef struct zbench_params {
    const char *model;       /* path or builtin spec, as given */
    zmlx_model_params mp;    /* backend, precision, kv dtype, threads (patterns ignored) */
    const char *variants;    /* --variants list; NULL = every named variant */
    const char *const *sets; /* or explicit pattern sets (`matrix run --patterns`), n_sets > 0 */
    int n_sets;
    int32_t runs, max_tokens, warmup;
    bool allow_unsafe;
    const char *notes;      /* free text for the capsule and the ledger */
    const char *invocation; /* the command line as typed */
    const char *prompt_arg; /* how the prompt was given ("--prompt-ids 1,2" or NULL = default) */
    double bw_seconds;      /* bandwidth measurement time (default 2.5 s; 0 = do not measure) */
    double read_gbps;       /* > 0: the device's read bandwidth, given (a GPU: zmlx-cuda_bw) */
    /* called before each timed or warm-up run; round -1 = warm-up; may be NULL */
    void (*progress)(void *user, int round, int rounds, const char *variant);
    void *user;
} zbench_params;

struct zbench_result {
    zsysinfo sys;
    char model[256], family[32], weights[32], backend[16], precision[8], kv_dtype[8];
    int32_t threads, runs, max_tokens, gen_tokens, warmup;
    int32_t prompt[ZBENCH_MAX_PROMPT];
    size_t n_prompt;
    int64_t bytes_per_token, mem_needed_bytes, mem_available_bytes;
    bool ram_skip;    /* the model did not fit: nothing was loaded or run */
    double read_GBps; /* measured read bandwidth (NaN if not measured) */
    double bw_seconds;
    char notes[1024];
    char invocation[2048];
    char prompt_arg[1024];
    zbench_side baseline;
    int n_variants;
    zbench_variant v[ZBENCH_MAX_VARIANTS];
};

zbench_params zbench_default_params(void);
/*
 * Everything before loading: sysinfo, settings, the variant list, and the probe of the
 * model's config.  When the model does not fit this machine (probe fits == 0) every
 * variant is SKIP with "SKIP(RAM): needs X GiB, Y GiB available" and r->ram_skip is
 * set: the caller must not load it.  Errors: bad parameters or a model that cannot be
 * probed (the load errors of `zmlx info`).
 */
zmlx_status zbench_prepare(const zbench_params *p, zbench_result *r, zerr *e);
/*
 * Run the bench on the loaded model m (loaded with patterns "none" and the settings of
 * p->mp): resolve the variants, measure the read bandwidth once, warm-up, then `runs`
 * rounds of baseline, v1, v2, ...; fidelity of each variant against the first baseline
 * run's tokens; medians and summary numbers.  A variant whose run fails becomes ERROR and
 * the others go on; only a failing baseline run fails the bench (every variant still
 * active is then ERROR too).  The model's pattern set is restored.
 */
zmlx_status zbench_execute(zmlx_model *m, const int32_t *prompt, size_t n_prompt,
                           const zbench_params *p, zbench_result *r, zerr *e);

/* ---------------------------------------------------------------- capsules */

/* The capsule of a bench result: {"meta": {...}, "<variant>": {...}, ...}. */
json_t *zcapsule_build(const zbench_result *r);
/* benchmarks/capsules/<model-slug>-<UTC stamp>.json (relative to the working directory). */
void zcapsule_default_path(const zbench_result *r, char *buf, size_t n);
/* mkdir -p of the folder holding path. */
zmlx_status zfile_make_parents(const char *path, zerr *e);
/* Write n bytes to path (parent folders created) via a temp file + rename. */
zmlx_status zfile_write_atomic(const char *path, const void *data, size_t n, zerr *e);
/* Write any JSON value to path (parent folders created) via a temp file + rename. */
zmlx_status zjson_write_file(const json_t *j, const char *path, zerr *e);
/* Read a capsule and check its schema (every field of SYSTEM.md section 4). */
zmlx_status zcapsule_read(const char *path, json_t **out, zerr *e);
zmlx_status zcapsule_check(const json_t *capsule, const char *what, zerr *e);
/* The matrix entry of one variant of a capsule (capsule_path recorded as given). */
json_t *zcapsule_ledger_entry(const json_t *capsule, const char *variant, const char *capsule_path);

/* ---------------------------------------------------------------- ledger */

typedef void (*zwarn_fn)(void *user, const char *msg);

/* Append one entry as one line: O_APPEND, flock(LOCK_EX), a single write(2). */
zmlx_status zledger_append(const char *path, const json_t *entry, zerr *e);
/* Every valid entry, in file order, into a new JSON array.  A malformed or torn line is
   skipped with a warning "FILE:LINE: ..." through warn (may be NULL); the file is only
   read.  A missing file is ZMLX_ERR_NOT_FOUND. */
zmlx_status zledger_read(const char *path, json_t **entries, zwarn_fn warn, void *user, zerr *e);

/* ---------------------------------------------------------------- views */

/* Relative spread (max - min) / median of a JSON array of numbers; NaN if < 2 numbers. */
double zstats_spread(const json_t *values);
/* Median of a JSON array of numbers; NaN if empty. */
double zstats_median(const json_t *values);
/* "+3.1%", or "+0.4% neutral" when |change| is inside the noise band. */
void zfmt_change(char *buf, size_t n, double change, double noise_band);

/* The verdict as shown: "SKIP(RAM)" / "SKIP(unsafe)" from the detail, else the verdict. */
void zfmt_verdict(char *buf, size_t n, const char *verdict, const char *detail);

/* `zmlx report`: one block per capsule, then a side-by-side table when n > 1. */
void zreport_capsules(FILE *out, const json_t *const *capsules, const char *const *names, int n);
/* Ledger views; entries is the array of zledger_read.  history returns how many matched. */
int zmatrix_history(FILE *out, const json_t *entries, const char *substr);
void zmatrix_report(FILE *out, const json_t *entries);
void zmatrix_csv(FILE *out, const json_t *entries);
void zmatrix_html(FILE *out, const json_t *entries, const char *ledger_name);
/* Latest entry per model x pattern set (new array, sorted by model then pattern set). */
json_t *zmatrix_latest(const json_t *entries);
/* Small JSON accessors shared by the views (a missing or null field gives def). */
double zj_num(const json_t *o, const char *key, double def);
const char *zj_str(const json_t *o, const char *key, const char *def);

#endif
