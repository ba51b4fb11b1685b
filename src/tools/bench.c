/*
 * bench.c — `zmlx bench` as library code: one loaded model, one shared unpatched
 * baseline and any number of variants (pattern sets), timed in rounds of baseline, v1,
 * v2, ... so that drift of a shared machine hits every side alike (PERFORMANCE.md), with
 * the fidelity of every variant against the first baseline run's greedy tokens, medians,
 * and the bandwidth summary (achieved GB/s = bytes per token x median decode tok/s, as a
 * fraction of the read bandwidth measured once per bench).
 * Not for: loading the model or its tokenizer, writing files or printing (the CLI and
 * capsule.c / ledger.c do that).
 */
#include "model/model.h"
#include "tools/harness.h"
#include "tools/tools.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BW_BUFFER_BYTES ((size_t)512 << 20) /* several times any CPU cache */

zbench_params zbench_default_params(void) {
    return (zbench_params){.mp = zmlx_model_default_params(),
                           .runs = 5,
                           .max_tokens = 64,
                           .warmup = 1,
                           .bw_seconds = 2.5};
}

static double gib(int64_t b) {
    return (double)b / 1073741824.0;
}

static void side_init(zbench_side *s) {
    memset(s, 0, sizeof *s);
    s->median_prefill = s->median_decode = s->peak_mem_mb = NAN;
}

/* The device of a device backend's run into the capsule's sysinfo (left empty if the
   backend cannot say). */
static void describe_device(const zmlx_model_params *mp, zsysinfo *sys) {
    const zbackend_ops *be = zbackend_get(mp->backend);
    if (!be || !be->describe || (be->probe && be->probe(&(zerr){{0}}) != ZMLX_OK)) return;
    zdev_desc d;
    zerr e = {{0}};
    if (be->describe(mp->dist.gpus, mp->dist.n_gpus, &d, &e) != ZMLX_OK) return;
    snprintf(sys->gpu_name, sizeof sys->gpu_name, "%s", d.name);
    sys->gpu_memory_bytes = d.memory_bytes;
    snprintf(sys->gpu_driver, sizeof sys->gpu_driver, "%s", d.driver);
    sys->gpu_count = d.count;
}

zmlx_status zbench_prepare(const zbench_params *p, zbench_result *r, zerr *e) {
    memset(r, 0, sizeof *r);
    zsysinfo_get(&r->sys);
    side_init(&r->baseline);
    r->read_GBps = NAN;
    if (!p->model || !*p->model) return zerr_set(e, ZMLX_ERR_INVALID_ARG, "bench: no model given");
    if (p->runs < 1 || p->runs > ZMLX_VALIDATE_MAX_RUNS || p->max_tokens < 1 || p->warmup < 0)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                        "bench: runs must be in [1, %d], max_tokens >= 1 and warmup >= 0",
                        ZMLX_VALIDATE_MAX_RUNS);
    snprintf(r->model, sizeof r->model, "%s", p->model);
    snprintf(r->notes, sizeof r->notes, "%s", p->notes ? p->notes : "");
    snprintf(r->invocation, sizeof r->invocation, "%s", p->invocation ? p->invocation : "");
    snprintf(r->prompt_arg, sizeof r->prompt_arg, "%s", p->prompt_arg ? p->prompt_arg : "");
    snprintf(r->precision, sizeof r->precision, "%s",
             p->mp.precision == ZMLX_PRECISION_EXACT ? "exact" : "fast");
    r->runs = p->runs;
    r->max_tokens = p->max_tokens;
    r->warmup = p->warmup;
    r->bw_seconds = p->read_gbps > 0 ? 0 : p->bw_seconds; /* 0: given, not measured here */
    zmlx_status st = ZMLX_OK;
    if (p->n_sets > 0) {
        for (int i = 0; i < p->n_sets && st == ZMLX_OK; i++)
            st = zbench_add_set(r, p->sets[i], e);
    } else {
        st = zbench_parse_variants(p->variants, r, e);
    }
    if (st != ZMLX_OK) return st;

    zmlx_model_info info;
    char err[ZMLX_ERR_MAX];
    if ((st = zmlx_model_probe(p->model, &p->mp, &info, err, sizeof err)) != ZMLX_OK)
        return zerr_set(e, st, "%s", err);
    snprintf(r->family, sizeof r->family, "%s", info.model_type);
    snprintf(r->weights, sizeof r->weights, "%s", info.weight_format);
    snprintf(r->backend, sizeof r->backend, "%s", info.backend);
    snprintf(r->kv_dtype, sizeof r->kv_dtype, "%s", info.kv_dtype);
    r->threads = info.threads;
    describe_device(&p->mp, &r->sys);
    r->bytes_per_token = info.bytes_per_token;
    r->mem_needed_bytes = info.mem_needed_bytes;
    r->mem_available_bytes = info.mem_available_bytes;
    if (info.fits) return ZMLX_OK;

    /* SKIP(RAM): record the numbers that decided it; the model is never loaded. */
    r->ram_skip = true;
    zfamily fam = ZFAM_GLM4_MOE_LITE;
    for (int f = ZFAM_GLM4_MOE_LITE; f <= ZFAM_KIMI_K25; f++)
        if (!strcmp(zfamily_name((zfamily)f), info.model_type)) fam = (zfamily)f;
    for (int i = 0; i < r->n_variants; i++) {
        zbench_variant *v = &r->v[i];
        zerr ignore;
        if (zpatch_parse(v->spec, fam, &v->set, &ignore) == ZMLX_OK)
            zpatch_format(v->set, v->patterns, sizeof v->patterns);
        v->verdict = ZV_SKIP;
        v->active = false;
        snprintf(v->detail, sizeof v->detail,
                 "SKIP(RAM): needs %.2f GiB (weights + cache at %lld positions), %.2f GiB "
                 "available; not loaded",
                 gib(info.mem_needed_bytes), (long long)info.mem_ctx,
                 gib(info.mem_available_bytes));
    }
    return ZMLX_OK;
}

/* A command line that reruns one variant alone with the same settings. */
static void variant_command(const zbench_result *r, const zbench_variant *v, bool allow_unsafe,
                            char *buf, size_t n) {
    snprintf(buf, n,
             "zmlx bench %s --variants %s --runs %d --max-tokens %d --warmup %d --backend %s "
             "--precision %s --kv-dtype %s --threads %d%s%s%s",
             r->model, v->name, r->runs, r->max_tokens, r->warmup, r->backend, r->precision,
             r->kv_dtype, r->threads, r->prompt_arg[0] ? " " : "", r->prompt_arg,
             allow_unsafe ? " --allow-unsafe" : "");
}

/* Count matches of got against ref; remember the first divergence. */
static void compare(const int32_t *ref, const int32_t *got, int32_t n, int32_t run_id,
                    int64_t *matched, int64_t *total, int32_t *first, int32_t *first_run) {
    for (int32_t i = 0; i < n; i++) {
        ++*total;
        if (ref[i] == got[i]) {
            ++*matched;
        } else if (*first < 0) {
            *first = i;
            *first_run = run_id;
        }
    }
}

static void side_finish(zbench_side *s, int64_t weight_bytes) {
    if (s->n == 0) return;
    s->median_prefill = ztool_median(s->t, s->n, false);
    s->median_decode = ztool_median(s->t, s->n, true);
    s->peak_mem_mb = (double)(weight_bytes + s->peak_session_bytes) / 1048576.0;
}

static void variant_error(zbench_variant *v, const char *msg) {
    v->verdict = ZV_ERROR;
    v->active = false;
    snprintf(v->error, sizeof v->error, "%s", msg);
    snprintf(v->detail, sizeof v->detail, "ERROR: %s", msg);
}

/* Medians, verdict and summary of one variant once the rounds are over. */
static void variant_finish(zbench_result *r, zbench_variant *v, int64_t weight_bytes, int64_t bm,
                           int64_t bt, int32_t bfirst, int32_t bfirst_run) {
    if (!v->active) return;
    side_finish(&v->patched, weight_bytes);
    v->matched += bm;
    v->total += bt;
    if (v->first_divergence < 0 && bfirst >= 0) {
        v->first_divergence = bfirst;
        v->first_divergence_run = bfirst_run;
    }
    v->verdict = v->matched == v->total ? ZV_PASS : ZV_FAIL;
    if (v->verdict == ZV_PASS)
        snprintf(v->detail, sizeof v->detail, "%lld/%lld tokens identical", (long long)v->matched,
                 (long long)v->total);
    else
        snprintf(v->detail, sizeof v->detail,
                 "%lld/%lld tokens identical; first divergence at token %d of %s run %d",
                 (long long)v->matched, (long long)v->total, v->first_divergence,
                 v->first_divergence_run >= 0 ? "variant" : "baseline",
                 v->first_divergence_run >= 0 ? v->first_divergence_run + 1
                                              : -v->first_divergence_run);
    const zbench_side *b = &r->baseline;
    v->decode_speedup = v->patched.median_decode / b->median_decode;
    v->prefill_change = v->patched.median_prefill / b->median_prefill - 1.0;
    v->achieved_GBps = (double)r->bytes_per_token * v->patched.median_decode * 1e-9;
    v->roofline_fraction = v->achieved_GBps / r->read_GBps; /* NaN when not measured */
}

/* One greedy run of `set`; returns the status and fills t, tokens and the peak. */
static zmlx_status timed_run(zmlx_model *m, zpatch_set set, const zbench_result *r, int32_t *toks,
                             zbench_side *side, bool record, zerr *e) {
    zmlx_run_times t;
    int64_t peak = side->peak_session_bytes;
    zmlx_status st = ztool_greedy_run(m, set, r->prompt, r->n_prompt, r->max_tokens, toks, &t, &peak, e);
    if (st != ZMLX_OK) return st;
    side->peak_session_bytes = peak;
    if (record) side->t[side->n++] = t;
    return ZMLX_OK;
}

zmlx_status zbench_execute(zmlx_model *m, const int32_t *prompt, size_t n_prompt,
                           const zbench_params *p, zbench_result *r, zerr *e) {
    if (!prompt || n_prompt == 0 || n_prompt > ZBENCH_MAX_PROMPT)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "bench: the prompt must hold 1 to %d tokens",
                        ZBENCH_MAX_PROMPT);
    memcpy(r->prompt, prompt, n_prompt * sizeof *prompt);
    r->n_prompt = n_prompt;
    zmlx_model_info info;
    zmlx_model_get_info(m, &info);
    snprintf(r->backend, sizeof r->backend, "%s", info.backend);
    snprintf(r->kv_dtype, sizeof r->kv_dtype, "%s", info.kv_dtype);
    snprintf(r->weights, sizeof r->weights, "%s", info.weight_format);
    r->threads = info.threads;
    r->bytes_per_token = info.bytes_per_token;
    r->gen_tokens = r->max_tokens;
    zbench_resolve(r, m->cfg.family, zpattern_table, ZPAT_COUNT, p->allow_unsafe);
    int active = 0;
    for (int i = 0; i < r->n_variants; i++) {
        variant_command(r, &r->v[i], p->allow_unsafe, r->v[i].command, sizeof r->v[i].command);
        active += r->v[i].active;
    }
    if (active == 0) return ZMLX_OK; /* every variant was decided before running */

    if (p->read_gbps > 0) {
        r->read_GBps = p->read_gbps;
    } else if (p->bw_seconds > 0) {
        double bw = zmlx_measure_read_bandwidth(info.threads, BW_BUFFER_BYTES, p->bw_seconds);
        r->read_GBps = bw > 0 ? bw * 1e-9 : NAN;
    }
    const int32_t T = r->max_tokens;
    int32_t *ref = malloc((size_t)T * sizeof *ref), *got = malloc((size_t)T * sizeof *got);
    const zpatch_set saved = ztool_get_patterns(m);
    zmlx_status st = ZMLX_OK;
    int64_t bm = 0, bt = 0;
    int32_t bfirst = -1, bfirst_run = -1;
    if (!ref || !got) {
        st = zerr_set(e, ZMLX_ERR_NOMEM, "bench: out of memory");
        goto out;
    }
    /* round -1..-warmup are the warm-up (not recorded), then the timed rounds */
    for (int round = -p->warmup; round < r->runs && st == ZMLX_OK; round++) {
        const bool timed = round >= 0;
        if (p->progress) p->progress(p->user, timed ? round : -1, r->runs, "baseline");
        int32_t *btoks = timed && round > 0 ? got : ref;
        st = timed_run(m, 0, r, btoks, &r->baseline, timed, e);
        if (st != ZMLX_OK) break;
        if (timed && round > 0) compare(ref, got, T, -1 - round, &bm, &bt, &bfirst, &bfirst_run);
        for (int i = 0; i < r->n_variants; i++) {
            zbench_variant *v = &r->v[i];
            if (!v->active) continue;
            if (p->progress) p->progress(p->user, timed ? round : -1, r->runs, v->name);
            zerr ve = {{0}};
            if (timed_run(m, v->set, r, got, &v->patched, timed, &ve) != ZMLX_OK) {
                variant_error(v, ve.msg);
                continue;
            }
            if (timed)
                compare(ref, got, T, round, &v->matched, &v->total, &v->first_divergence,
                        &v->first_divergence_run);
        }
    }
    if (st != ZMLX_OK) {
        char msg[ZMLX_ERR_MAX + 32];
        snprintf(msg, sizeof msg, "baseline run failed: %.480s", e->msg);
        for (int i = 0; i < r->n_variants; i++)
            if (r->v[i].active) variant_error(&r->v[i], msg);
        goto out;
    }
    side_finish(&r->baseline, info.weight_bytes_total);
    for (int i = 0; i < r->n_variants; i++)
        variant_finish(r, &r->v[i], info.weight_bytes_total, bm, bt, bfirst, bfirst_run);
out:
    ztool_set_patterns(m, saved);
    free(ref);
    free(got);
    return st;
}
