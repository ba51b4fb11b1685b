/*
 * test_validate.c — `validate` (library zmlx_validate) passes with every pattern alone,
 * with the family preset and with every pattern at once (the preset + the experimental
 * deepseek_router), 200 greedy tokens, on the fixtures glm47-tiny and glm47-tiny-v5,
 * dsv3-tiny (group-limited routing 4/2, YaRN) and dsv32-tiny (DSA indexer, sparse from
 * the 9th key), builtin:glm47-mini and builtin:glm47-flash:layers=4; bad parameters are
 * refused; the model's own pattern set is restored afterwards (the DeepSeek fixtures run
 * 48 tokens when ZMLX_SKIP_SLOW=1, as in the sanitizer build).  (The DeepSeek-V3.2 and
 * Kimi-K2.5 presets at the released widths: tests/test_builtin_families.c.)
 * The builtin models are slow under the sanitizers (flash reads ~1.2 GB per token): they
 * are skipped when ZMLX_SKIP_SLOW=1 (the sanitizer build sets it; the release build runs them).
 */
#include "patch/patch.h"
#include "tcheck.h"
#include "zmlx.h"

#include <string.h>

static zmlx_model *load(const char *path) {
    zmlx_model_params mp = zmlx_model_default_params();
    mp.patterns = "none";
    mp.precision = ZMLX_PRECISION_EXACT;
    zmlx_model *m = NULL;
    char err[ZMLX_ERR_MAX];
    CHECKF(zmlx_model_load(path, &mp, &m, err, sizeof err) == ZMLX_OK, "%s: %s", path, err);
    return m;
}

static void validate_all(const char *path, int32_t tokens) {
    char full[1024];
    if (strncmp(path, "builtin:", 8)) path = tc_shared(full, sizeof full, path);
    zmlx_model *m = load(path);
    if (!m) return;
    const int32_t prompt[] = {0, 5, 17, 99, 400, 3, 250, 811, 42, 7, 1000, 64};
    char every[512] = "";
    for (int i = 0; i < ZPAT_COUNT; i++)
        snprintf(every + strlen(every), sizeof every - strlen(every), "%s%s", i ? "," : "",
                 zpattern_table[i].name);
    for (int i = 0; i <= ZPAT_COUNT + 1; i++) {
        const char *p = i < ZPAT_COUNT ? zpattern_table[i].name : i == ZPAT_COUNT ? "default" : every;
        zmlx_validate_params vp = zmlx_validate_default_params();
        vp.patterns = p;
        vp.prompt = prompt;
        vp.n_prompt = sizeof prompt / sizeof prompt[0];
        vp.max_tokens = tokens;
        vp.runs = 1;
        vp.warmup = 0;
        zmlx_validate_result r;
        char err[ZMLX_ERR_MAX];
        zmlx_status st = zmlx_validate(m, &vp, &r, err, sizeof err);
        CHECKF(st == ZMLX_OK, "%s %s: %s", path, p, err);
        CHECKF(st == ZMLX_OK && r.pass && r.total == tokens, "%s with %s: %lld/%lld tokens, first divergence %d",
               path, p, (long long)r.matched, (long long)r.total, r.first_divergence);
        printf("%s  %-17s PASS %lld/%lld  decode %.1f -> %.1f tok/s\n", path, p, (long long)r.matched,
               (long long)r.total, r.median_decode_baseline, r.median_decode_patched);
    }
    char pats[256];
    zmlx_model_patterns(m, pats, sizeof pats);
    CHECKF(!strcmp(pats, "none"), "validate left the model's patterns at %s", pats);
    zmlx_model_free(m);
}

static void bad_params(void) {
    zmlx_model *m = load("builtin:glm47-tiny");
    if (!m) return;
    int32_t prompt[] = {1, 2, 3};
    zmlx_validate_params vp = zmlx_validate_default_params();
    vp.prompt = prompt;
    vp.n_prompt = 3;
    zmlx_validate_result r;
    char err[ZMLX_ERR_MAX];
    vp.patterns = "moe_mlp,nonexistent";
    CHECK(zmlx_validate(m, &vp, &r, err, sizeof err) == ZMLX_ERR_INVALID_ARG && strstr(err, "nonexistent"));
    vp.patterns = "default";
    vp.runs = 0;
    CHECK(zmlx_validate(m, &vp, &r, err, sizeof err) == ZMLX_ERR_INVALID_ARG);
    vp.runs = 2;
    vp.max_tokens = 10;
    vp.warmup = 1;
    CHECK(zmlx_validate(m, &vp, &r, err, sizeof err) == ZMLX_OK && r.pass && r.total == 30);
    CHECK(r.decode_speedup > 0 && r.median_decode_baseline > 0 && r.peak_mem_mb_patched > 0);
    zmlx_model_free(m);
}

int main(void) {
    bad_params();
    const char *skip = getenv("ZMLX_SKIP_SLOW");
    const bool slow = !(skip && !strcmp(skip, "1"));
    validate_all("fixtures/models/glm47-tiny", 200);
    validate_all("fixtures/models/glm47-tiny-v5", 200);
    /* the DeepSeek fixtures: 48 tokens under the sanitizers (sparse attention starts at
       the 9th key, decode-only patterns at the first step) */
    validate_all("fixtures/models/dsv3-tiny", slow ? 200 : 48);
    validate_all("fixtures/models/dsv32-tiny", slow ? 200 : 48);
    if (!slow) {
        printf("builtin:glm47-mini and builtin:glm47-flash:layers=4 skipped (ZMLX_SKIP_SLOW=1)\n");
    } else {
        validate_all("builtin:glm47-mini", 200);
        validate_all("builtin:glm47-flash:layers=4", 200);
    }
    return tc_done();
}
