/*
 * test_capsule.c — the bench harness as library code: variant-list parsing and naming,
 * the unsafe SKIP decision (with a registry copy holding an unsafe pattern, since none
 * of the shipped ones is), SKIP(RAM) decided from the probe without loading, a real tiny
 * bench (PASS variants and an ERROR variant that does not stop the others), and the
 * capsule round trip: build -> write (temp + rename) -> read with every SYSTEM.md field
 * -> ledger entry -> report text holding the numbers; the GPU fields of a device run
 * and the driver version read from /proc/driver/nvidia/version's text.
 */
#include "backend/backend.h"
#include "patch/patch.h"
#include "tcheck.h"
#include "tools/harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static zbench_result *new_result(void) {
    zbench_result *r = calloc(1, sizeof *r);
    if (!r) abort();
    return r;
}

static void parsing(void) {
    zbench_result *r = new_result();
    zerr e = {{0}};
    CHECK(zbench_parse_variants(NULL, r, &e) == ZMLX_OK && r->n_variants == 8);
    CHECK(!strcmp(r->v[0].name, "control_swiglu_moe") &&
          !strcmp(r->v[0].spec, "swiglu_mlp,moe_mlp"));
    CHECK(!strcmp(r->v[7].name, "preset") && !strcmp(r->v[7].spec, "default"));
    CHECK(zbench_parse_variants("glm47_rope,moe_mlp+swiglu_mlp", r, &e) == ZMLX_OK &&
          r->n_variants == 2);
    CHECK(!strcmp(r->v[0].spec, "swiglu_mlp,moe_mlp,glm47_rope"));
    CHECK(!strcmp(r->v[1].name, "moe_mlp+swiglu_mlp") &&
          !strcmp(r->v[1].spec, "moe_mlp+swiglu_mlp"));
    CHECKF(zbench_parse_variants("preset,,glm47_rope", r, &e) == ZMLX_ERR_INVALID_ARG &&
               strstr(e.msg, "empty"),
           "%s", e.msg);
    CHECKF(zbench_parse_variants("preset,preset", r, &e) == ZMLX_ERR_INVALID_ARG &&
               strstr(e.msg, "twice"),
           "%s", e.msg);
    CHECK(zbench_parse_variants("meta", r, &e) == ZMLX_ERR_INVALID_ARG);
    r->n_variants = 0;
    CHECK(zbench_add_set(r, "default", &e) == ZMLX_OK && !strcmp(r->v[0].name, "preset"));
    CHECK(zbench_add_set(r, "moe_mlp,swiglu_mlp", &e) == ZMLX_OK &&
          !strcmp(r->v[1].name, "moe_mlp+swiglu_mlp"));
    CHECK(zbench_add_set(r, "glm47_rope", &e) == ZMLX_OK &&
          !strcmp(r->v[2].name, "glm47_rope-only") && !strcmp(r->v[2].spec, "glm47_rope"));
    free(r);
}

/* The unsafe decision on a registry copy where downproj_combine is unsafe. */
static void unsafe_decision(void) {
    zpattern table[ZPAT_COUNT];
    memcpy(table, zpattern_table, sizeof table);
    table[ZPAT_DOWNPROJ_COMBINE].status = ZPS_UNSAFE;
    CHECK(zbench_first_unsafe(table, ZPAT_COUNT, 1u << ZPAT_MOE_MLP) == -1);
    CHECK(zbench_first_unsafe(table, ZPAT_COUNT,
                              (1u << ZPAT_MOE_MLP) | (1u << ZPAT_DOWNPROJ_COMBINE)) ==
          ZPAT_DOWNPROJ_COMBINE);
    for (int allow = 0; allow < 2; allow++) {
        zbench_result *r = new_result();
        zerr e = {{0}};
        CHECK(zbench_parse_variants("downproj_combine,control_swiglu_moe,moe_mlp+nonexistent", r,
                                    &e) == ZMLX_OK);
        zbench_resolve(r, ZFAM_GLM4_MOE_LITE, table, ZPAT_COUNT, allow);
        if (!allow)
            CHECKF(r->v[0].verdict == ZV_SKIP && !r->v[0].active &&
                       strstr(r->v[0].detail, "unsafe") &&
                       strstr(r->v[0].detail, "downproj_combine"),
                   "%s", r->v[0].detail);
        else
            CHECK(r->v[0].active);
        CHECK(r->v[1].active);
        CHECKF(r->v[2].verdict == ZV_ERROR && !r->v[2].active &&
                   strstr(r->v[2].error, "nonexistent"),
               "%s", r->v[2].error);
        free(r);
    }
    /* the shipped registry: nothing unsafe, so the named variants all resolve to active */
    zbench_result *r = new_result();
    zerr e = {{0}};
    CHECK(zbench_parse_variants(NULL, r, &e) == ZMLX_OK);
    zbench_resolve(r, ZFAM_GLM4_MOE_LITE, zpattern_table, ZPAT_COUNT, false);
    for (int i = 0; i < r->n_variants; i++)
        CHECKF(r->v[i].active, "%s: %s", r->v[i].name, r->v[i].detail);
    free(r);
}

static void ram_skip(void) {
    zbench_params p = zbench_default_params();
    p.model = "builtin:glm47-flash:bits=16"; /* bf16, ~56 GiB: never fits a CI machine */
    p.variants = "preset,glm47_rope";
    zbench_result *r = new_result();
    zerr e = {{0}};
    CHECKF(zbench_prepare(&p, r, &e) == ZMLX_OK, "%s", e.msg);
    CHECK(r->ram_skip && r->mem_needed_bytes > r->mem_available_bytes);
    for (int i = 0; i < r->n_variants; i++)
        CHECKF(r->v[i].verdict == ZV_SKIP && strstr(r->v[i].detail, "SKIP(RAM)") &&
                   strstr(r->v[i].detail, "GiB"),
               "%s", r->v[i].detail);
    json_t *c = zcapsule_build(r);
    CHECKF(zcapsule_check(c, "ram", &e) == ZMLX_OK, "%s", e.msg);
    const json_t *v = json_object_get(c, "preset");
    CHECK(json_is_null(json_object_get(json_object_get(v, "patched"), "median_decode")));
    CHECK(json_integer_value(json_object_get(json_object_get(v, "memory"), "needed_bytes")) ==
          r->mem_needed_bytes);
    char label[32];
    zfmt_verdict(label, sizeof label, "SKIP", r->v[0].detail);
    CHECKF(!strcmp(label, "SKIP(RAM)"), "%s", label);
    json_decref(c);
    free(r);
}

/* A real bench on glm47-tiny, then the capsule round trip. */
static void bench_round_trip(void) {
    zbench_params p = zbench_default_params();
    p.model = "builtin:glm47-tiny";
    p.variants = "control_swiglu_moe,preset,moe_mlp+bogus_pattern";
    p.runs = 3;
    p.max_tokens = 12;
    p.bw_seconds = 0.2;
    p.notes = "unit test";
    p.invocation = "zmlx bench builtin:glm47-tiny (test)";
    p.mp.patterns = "none";
    zbench_result *r = new_result();
    zerr e = {{0}};
    CHECKF(zbench_prepare(&p, r, &e) == ZMLX_OK && !r->ram_skip, "%s", e.msg);
    zmlx_model *m = NULL;
    char err[ZMLX_ERR_MAX];
    CHECKF(zmlx_model_load(p.model, &p.mp, &m, err, sizeof err) == ZMLX_OK, "%s", err);
    if (!m) return;
    const int32_t prompt[] = {1, 50, 7, 300, 12, 9};
    CHECKF(zbench_execute(m, prompt, 6, &p, r, &e) == ZMLX_OK, "%s", e.msg);
    char pats[64];
    zmlx_model_patterns(m, pats, sizeof pats);
    CHECKF(!strcmp(pats, "none"), "bench left patterns %s", pats);
    zmlx_model_free(m);
    CHECK(r->baseline.n == 3 && r->read_GBps > 0);
    CHECKF(r->v[0].verdict == ZV_PASS && r->v[0].patched.n == 3 && r->v[0].total == 5 * 12,
           "%s %lld", r->v[0].detail, (long long)r->v[0].total);
    CHECK(r->v[1].verdict == ZV_PASS && strstr(r->v[1].patterns, "moe_combine"));
    CHECKF(r->v[2].verdict == ZV_ERROR && strstr(r->v[2].error, "bogus_pattern"), "%s",
           r->v[2].error);
    CHECK(fabs(r->v[0].achieved_GBps - r->bytes_per_token * r->v[0].patched.median_decode * 1e-9) <
          1e-9);
    CHECK(fabs(r->v[0].roofline_fraction - r->v[0].achieved_GBps / r->read_GBps) < 1e-9);

    char dir[] = "/tmp/zmlx_capsuleXXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/sub/cap.json", dir);
    json_t *c = zcapsule_build(r);
    CHECKF(zjson_write_file(c, path, &e) == ZMLX_OK, "%s", e.msg);
    json_t *back = NULL;
    CHECKF(zcapsule_read(path, &back, &e) == ZMLX_OK, "%s", e.msg);
    CHECK(back && json_equal(c, back));
    if (back) {
        const json_t *meta = json_object_get(back, "meta");
        CHECK(strlen(zj_str(meta, "date", "")) == 20 && zj_str(meta, "date", "")[19] == 'Z');
        CHECK(!strcmp(zj_str(meta, "zmlx_version", ""), ZMLX_VERSION));
        CHECK(strcmp(zj_str(meta, "compiler", "unknown"), "unknown") != 0);
        CHECK(json_is_null(
            json_object_get(json_object_get(json_object_get(meta, "device"), "gpu"), "name")));
        CHECK(zj_num(json_object_get(meta, "memory_bandwidth"), "read_GBps", 0) > 0);
        CHECK(strstr(zj_str(json_object_get(meta, "command_lines"), "preset", ""),
                     "--variants preset"));
        CHECK(json_object_size(back) == 4);
        const json_t *v = json_object_get(back, "control_swiglu_moe");
        CHECK(json_array_size(json_object_get(json_object_get(v, "patched"), "decode_tok_s")) == 3);
        CHECK(!strcmp(zj_str(json_object_get(v, "fidelity"), "verdict", ""), "PASS"));
        CHECK(!strcmp(zj_str(json_object_get(back, "moe_mlp+bogus_pattern"), "error", ""),
                      r->v[2].error));

        json_t *entry = zcapsule_ledger_entry(back, "control_swiglu_moe", path);
        /* clang-format off */
        static const char *const fields[] = {
            "model_id", "model_family", "architecture", "patterns_applied", "hardware", "notes",
            "zmlx_version", "zmlx_commit", "timestamp", "fidelity", "fidelity_detail",
            "decode_tps_baseline", "decode_tps_patched", "decode_speedup", "decode_runs_baseline",
            "decode_runs_patched", "prefill_tps_baseline", "prefill_tps_patched", "prefill_change",
            "peak_mem_baseline_gb", "peak_mem_patched_gb", "max_tokens", "gen_tokens", "runs",
            "backend", "device", "capsule", NULL};
        /* clang-format on */
        for (int i = 0; fields[i]; i++)
            CHECKF(json_object_get(entry, fields[i]), "entry lacks %s", fields[i]);
        CHECK(!strcmp(zj_str(entry, "capsule", ""), path));
        json_decref(entry);

        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        const json_t *caps[2] = {back, back};
        const char *names[2] = {path, "again"};
        zreport_capsules(f, caps, names, 2);
        fclose(f);
        char num[32];
        snprintf(num, sizeof num, "%.2f", r->v[0].patched.median_decode);
        CHECKF(text && strstr(text, num), "report lacks %s:\n%s", num, text);
        snprintf(num, sizeof num, "%.2f", r->baseline.median_decode);
        CHECKF(text && strstr(text, num), "report lacks the baseline %s", num);
        snprintf(num, sizeof num, "%.1f GB/s", r->read_GBps);
        CHECKF(text && strstr(text, num), "report lacks the bandwidth %s", num);
        CHECK(text && strstr(text, "PASS 60/60") && strstr(text, "ERROR") &&
              strstr(text, "side by side") && strstr(text, "bogus_pattern"));
        free(text);
        /* a capsule missing a field is refused, naming it */
        json_object_del(json_object_get(json_object_get(back, "preset"), "fidelity"), "verdict");
        CHECKF(zcapsule_check(back, "x", &e) == ZMLX_ERR_FORMAT &&
                   strstr(e.msg, "fidelity.verdict"),
               "%s", e.msg);
        json_decref(back);
    }
    json_decref(c);
    unlink(path);
    snprintf(path, sizeof path, "%s/sub", dir);
    rmdir(path);
    rmdir(dir);
    free(r);
}

static void stats(void) {
    json_t *a = json_pack("[f, f, f, f]", 10.0, 11.0, 9.0, 10.0);
    CHECK(fabs(zstats_median(a) - 10.0) < 1e-12);
    CHECK(fabs(zstats_spread(a) - 0.2) < 1e-12);
    char buf[32];
    zfmt_change(buf, sizeof buf, 0.05, 0.2);
    CHECKF(!strcmp(buf, "+5.0% neutral"), "%s", buf);
    zfmt_change(buf, sizeof buf, -0.25, 0.2);
    CHECKF(!strcmp(buf, "-25.0%"), "%s", buf);
    zfmt_change(buf, sizeof buf, NAN, 0.2);
    CHECK(!strcmp(buf, "-"));
    json_decref(a);
}

/* A device run's GPU in the capsule; the driver's version from both module flavours. */
static void gpu_fields(void) {
    zsysinfo s;
    zsysinfo_get(&s);
    json_t *d = zsysinfo_device_json(&s);
    CHECK(json_is_null(json_object_get(json_object_get(d, "gpu"), "count")));
    json_decref(d);
    snprintf(s.gpu_name, sizeof s.gpu_name, "NVIDIA H200");
    s.gpu_memory_bytes = 150109880320;
    snprintf(s.gpu_driver, sizeof s.gpu_driver, "580.159.04");
    s.gpu_count = 2;
    d = zsysinfo_device_json(&s);
    const json_t *g = json_object_get(d, "gpu");
    CHECK(!strcmp(zj_str(g, "name", ""), "NVIDIA H200") && !strcmp(zj_str(g, "driver", ""), "580.159.04"));
    CHECK(json_integer_value(json_object_get(g, "memory_bytes")) == 150109880320 &&
          json_integer_value(json_object_get(g, "count")) == 2);
    json_decref(d);
    char v[48];
    CHECK(zdev_driver_version("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  "
                              "Release Build  (dvs-builder@U16-I1-N07-12-3)  Thu Oct  2 20:48:40 UTC 2025\n"
                              "GCC version:  gcc version 13.3.0\n", v, sizeof v) &&
          !strcmp(v, "580.159.04"));
    CHECK(zdev_driver_version("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 "
                              "01:15:15 UTC 2023", v, sizeof v) && !strcmp(v, "535.104.05"));
    CHECK(!zdev_driver_version("NVRM version: unknown\nGCC version:  gcc version 13.3.0\n", v, sizeof v));
    CHECK(!zdev_driver_version("", v, sizeof v) && !zdev_driver_version(NULL, v, sizeof v));
}

int main(void) {
    gpu_fields();
    parsing();
    unsafe_decision();
    ram_skip();
    bench_round_trip();
    stats();
    return tc_done();
}
