/*
 * validate.c — `zmlx validate` as library code: baseline vs a pattern set on one loaded
 * model, interleaved runs, medians, memory, and the fidelity verdict (every run's greedy
 * tokens identical to the reference run).  Printing and exit codes are the CLI's.
 */
#include "model/model.h"
#include "tools/tools.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

zmlx_validate_params zmlx_validate_default_params(void) {
    return (zmlx_validate_params){.patterns = "default", .max_tokens = 200, .runs = 3, .warmup = 1};
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double ztool_median(const zmlx_run_times *t, int n, bool decode) {
    double v[ZMLX_VALIDATE_MAX_RUNS];
    for (int i = 0; i < n; i++) v[i] = decode ? t[i].decode_tok_s : t[i].prefill_tok_s;
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void ztool_set_patterns(zmlx_model *m, zpatch_set set) {
    m->patterns = set;
    for (int l = 0; l < m->cfg.n_layers; l++) zpatch_plan(set, &m->plan[l]);
}

zpatch_set ztool_get_patterns(const zmlx_model *m) {
    return m->patterns;
}

zmlx_status ztool_greedy_run(zmlx_model *m, zpatch_set set, const int32_t *prompt,
                             size_t n_prompt, int32_t max_tokens, int32_t *toks,
                             zmlx_run_times *t, int64_t *peak, zerr *e) {
    ztool_set_patterns(m, set);
    zmlx_session *s = NULL;
    char err[ZMLX_ERR_MAX];
    zmlx_status st = zmlx_session_init(m, NULL, &s, err, sizeof err);
    if (st != ZMLX_OK) return zerr_set(e, st, "%s", err);
    int32_t next = 0;
    double t0 = now_s();
    st = zmlx_session_eval_greedy(s, prompt, n_prompt, &next);
    double t1 = now_s();
    for (int32_t i = 0; st == ZMLX_OK && i < max_tokens; i++) {
        toks[i] = next;
        if (i + 1 < max_tokens) st = zmlx_session_eval_greedy(s, &toks[i], 1, &next);
    }
    double t2 = now_s();
    if (st != ZMLX_OK) zerr_set(e, st, "%s", zmlx_session_error(s));
    t->prefill_tok_s = (double)n_prompt / (t1 - t0);
    t->decode_tok_s = max_tokens > 1 ? (double)(max_tokens - 1) / (t2 - t1) : 0.0;
    if (zmlx_session_peak_bytes(s) > *peak) *peak = zmlx_session_peak_bytes(s);
    zmlx_session_free(s);
    return st;
}

/* Compare a run with the reference; record the first divergence. */
static void compare(zmlx_validate_result *r, const int32_t *ref, const int32_t *got, int32_t n,
                    int32_t run_id) {
    for (int32_t i = 0; i < n; i++) {
        r->total++;
        if (ref[i] == got[i]) {
            r->matched++;
        } else if (r->first_divergence < 0) {
            r->first_divergence = i;
            r->first_divergence_run = run_id;
        }
    }
}

zmlx_status zmlx_validate(zmlx_model *m, const zmlx_validate_params *params,
                          zmlx_validate_result *r, char *err, size_t err_size) {
    zerr e = {{0}};
    zmlx_validate_params p = params ? *params : zmlx_validate_default_params();
    memset(r, 0, sizeof *r);
    r->first_divergence = r->first_divergence_run = -1;
    zmlx_status st = ZMLX_OK;
    if (p.runs < 1 || p.runs > ZMLX_VALIDATE_MAX_RUNS || p.max_tokens < 1 || p.warmup < 0 ||
        !p.prompt || p.n_prompt == 0) {
        zerr_set(&e, ZMLX_ERR_INVALID_ARG,
                 "validate: runs must be in [1, %d], max_tokens >= 1, warmup >= 0 and the prompt "
                 "non-empty",
                 ZMLX_VALIDATE_MAX_RUNS);
        zerr_copy(&e, err, err_size);
        return ZMLX_ERR_INVALID_ARG;
    }
    const zpatch_set saved = m->patterns;
    zpatch_set patched;
    if ((st = zpatch_parse(p.patterns, m->cfg.family, &patched, &e)) != ZMLX_OK) {
        zerr_copy(&e, err, err_size);
        return st;
    }
    zpatch_format(patched, r->patterns, sizeof r->patterns);
    const int32_t T = p.max_tokens;
    int32_t *ref = malloc((size_t)T * sizeof *ref), *got = malloc((size_t)T * sizeof *got);
    if (!ref || !got) {
        st = zerr_set(&e, ZMLX_ERR_NOMEM, "validate: out of memory");
        goto out;
    }
    r->runs = p.runs;
    r->gen_tokens = T;
    int64_t peak[2] = {0, 0};
    const zpatch_set sets[2] = {0, patched};
    zmlx_run_times scratch;
    for (int w = 0; w < p.warmup && st == ZMLX_OK; w++)
        for (int side = 0; side < 2 && st == ZMLX_OK; side++) {
            if (p.progress) p.progress(p.user, "warmup", w, p.warmup);
            st = ztool_greedy_run(m, sets[side], p.prompt, p.n_prompt, T, side ? got : ref, &scratch,
                                  &peak[side], &e);
        }
    for (int run = 0; run < p.runs && st == ZMLX_OK; run++)
        for (int side = 0; side < 2 && st == ZMLX_OK; side++) {
            if (p.progress) p.progress(p.user, side ? "patched" : "baseline", run, p.runs);
            zmlx_run_times *t = side ? &r->patched[run] : &r->baseline[run];
            bool reference = side == 0 && run == 0;
            st = ztool_greedy_run(m, sets[side], p.prompt, p.n_prompt, T, reference ? ref : got, t,
                                  &peak[side], &e);
            if (st == ZMLX_OK && !reference) compare(r, ref, got, T, side ? run : -1 - run);
        }
    if (st == ZMLX_OK) {
        r->median_prefill_baseline = ztool_median(r->baseline, p.runs, false);
        r->median_decode_baseline = ztool_median(r->baseline, p.runs, true);
        r->median_prefill_patched = ztool_median(r->patched, p.runs, false);
        r->median_decode_patched = ztool_median(r->patched, p.runs, true);
        r->decode_speedup = r->median_decode_patched / r->median_decode_baseline;
        r->prefill_change = r->median_prefill_patched / r->median_prefill_baseline - 1.0;
        zmlx_model_info info;
        zmlx_model_get_info(m, &info);
        r->peak_mem_mb_baseline = (double)(info.weight_bytes_total + peak[0]) / 1048576.0;
        r->peak_mem_mb_patched = (double)(info.weight_bytes_total + peak[1]) / 1048576.0;
        r->pass = r->matched == r->total;
    }
out:
    ztool_set_patterns(m, saved);
    free(ref);
    free(got);
    if (st != ZMLX_OK) zerr_copy(&e, err, err_size);
    return st;
}
