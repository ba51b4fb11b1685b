/*
 * variants.c — what `zmlx bench --variants` means: the named variants of SYSTEM.md
 * section 4 (each adds patterns to the shared unpatched baseline), the list parser
 * (named variants and ad-hoc sets written with '+'), and the per-variant decisions taken
 * before anything runs: a set the registry refuses is ERROR, a set holding an `unsafe`
 * pattern is SKIP unless --allow-unsafe.  Not for: running anything (bench.c).
 */
#include "tools/harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct named_variant {
    const char *name, *spec;
} named_variant;

static const named_variant k_variants[] = {
    {"control_swiglu_moe", "swiglu_mlp,moe_mlp"},
    {"glm47_rope", "swiglu_mlp,moe_mlp,glm47_rope"},
    {"shared_experts_overlap", "swiglu_mlp,moe_mlp,shared_overlap"},
    {"downproj_combine", "swiglu_mlp,moe_mlp,downproj_combine"},
    {"moe_combine", "swiglu_mlp,moe_mlp,moe_combine"},
    {"residual_norm", "swiglu_mlp,moe_mlp,residual_norm"},
    {"deepseek_router", "swiglu_mlp,moe_mlp,deepseek_router"},
    {"preset", "default"},
};
#define N_VARIANTS ((int)(sizeof k_variants / sizeof k_variants[0]))

const char *zverdict_name(zverdict v) {
    switch (v) {
    case ZV_PASS: return "PASS";
    case ZV_FAIL: return "FAIL";
    case ZV_SKIP: return "SKIP";
    default: return "ERROR";
    }
}

const char *zbench_variant_name(int i) {
    return i >= 0 && i < N_VARIANTS ? k_variants[i].name : NULL;
}

const char *zbench_variant_spec(const char *name) {
    for (int i = 0; i < N_VARIANTS; i++)
        if (!strcmp(k_variants[i].name, name)) return k_variants[i].spec;
    return NULL;
}

static void variant_init(zbench_variant *v, const char *name, size_t name_len, const char *spec) {
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%.*s", (int)name_len, name);
    snprintf(v->spec, sizeof v->spec, "%s", spec);
    v->verdict = ZV_SKIP;
    v->first_divergence = v->first_divergence_run = -1;
    v->patched.median_prefill = v->patched.median_decode = v->patched.peak_mem_mb = NAN;
    v->decode_speedup = v->prefill_change = v->achieved_GBps = v->roofline_fraction = NAN;
}

static zmlx_status add_variant(zbench_result *r, const char *name, const char *spec, zerr *e) {
    if (r->n_variants == ZBENCH_MAX_VARIANTS)
        return zerr_set(e, ZMLX_ERR_LIMIT, "at most %d variants per bench", ZBENCH_MAX_VARIANTS);
    if (!strcmp(name, "meta"))
        return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                        "\"meta\" is reserved (the capsule's metadata key)");
    for (int i = 0; i < r->n_variants; i++)
        if (!strcmp(r->v[i].name, name))
            return zerr_set(e, ZMLX_ERR_INVALID_ARG, "%s is listed twice", name);
    variant_init(&r->v[r->n_variants++], name, strlen(name), spec);
    return ZMLX_OK;
}

zmlx_status zbench_add_set(zbench_result *r, const char *spec, zerr *e) {
    char name[sizeof r->v[0].name];
    if (!spec || !*spec || !strcmp(spec, "default")) {
        snprintf(name, sizeof name, "preset");
        spec = "default";
    } else {
        size_t len = strlen(spec);
        if (len + 6 > sizeof name)
            return zerr_set(e, ZMLX_ERR_INVALID_ARG, "--patterns \"%s\": too long", spec);
        for (size_t i = 0; i <= len; i++)
            name[i] = spec[i] == ',' ? '+' : spec[i];
        if (zbench_variant_spec(name)) strcat(name, "-only");
    }
    return add_variant(r, name, spec, e);
}

zmlx_status zbench_parse_variants(const char *list, zbench_result *r, zerr *e) {
    r->n_variants = 0;
    if (!list || !*list) {
        for (int i = 0; i < N_VARIANTS; i++)
            variant_init(&r->v[r->n_variants++], k_variants[i].name, strlen(k_variants[i].name),
                         k_variants[i].spec);
        return ZMLX_OK;
    }
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof r->v[0].name)
            return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                            "--variants \"%s\": item %d is %s (give names or sets like a+b, "
                            "separated by commas)",
                            list, r->n_variants + 1, len ? "too long" : "empty");
        char name[sizeof r->v[0].name];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        const char *spec = zbench_variant_spec(name);
        zerr ie = {{0}};
        if (add_variant(r, name, spec ? spec : name, &ie) != ZMLX_OK)
            return zerr_set(e, ZMLX_ERR_INVALID_ARG, "--variants: %s", ie.msg);
        p += len;
        if (*p) p++;
    }
    return ZMLX_OK;
}

int zbench_first_unsafe(const zpattern *table, int n, zpatch_set set) {
    for (int i = 0; i < n; i++)
        if ((set & (1u << i)) && table[i].status == ZPS_UNSAFE) return i;
    return -1;
}

void zbench_resolve(zbench_result *r, zfamily family, const zpattern *table, int n_table,
                    bool allow_unsafe) {
    for (int i = 0; i < r->n_variants; i++) {
        zbench_variant *v = &r->v[i];
        zerr e = {{0}};
        v->active = false;
        if (zpatch_parse(v->spec, family, &v->set, &e) != ZMLX_OK) {
            v->verdict = ZV_ERROR;
            snprintf(v->error, sizeof v->error, "%s", e.msg);
            snprintf(v->detail, sizeof v->detail, "ERROR: %s", e.msg);
            continue;
        }
        zpatch_format(v->set, v->patterns, sizeof v->patterns);
        int u = zbench_first_unsafe(table, n_table, v->set);
        if (u >= 0 && !allow_unsafe) {
            v->verdict = ZV_SKIP;
            snprintf(v->detail, sizeof v->detail,
                     "SKIP(unsafe): %s is marked unsafe in the registry (--allow-unsafe runs it)",
                     table[u].name);
            continue;
        }
        v->active = true;
    }
}
