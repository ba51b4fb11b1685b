/*
 * registry.c — the one table of patterns, the family presets, `--patterns` parsing with
 * the composition rules, and the stage plan a pattern set gives a layer.
 *
 * Composition: two patterns may share a stage only when one refines the other (the
 * more specific one takes the shared stages over): deepseek_router takes moe_mlp's
 * router; moe_combine takes moe_mlp's combine and, on MoE layers, residual_norm's
 * residual add; downproj_combine takes the weighted sum from moe_mlp and moe_combine.
 */
#include "patch/patch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P(id) (1u << (id))

const zpattern zpattern_table[ZPAT_COUNT] = {
    [ZPAT_MOE_MLP] = {
        .name = "moe_mlp",
        .fuses = "router + gate/up/SwiGLU of every selected expert in one pass over x + fixed-order combine",
        .stages = ZSTAGE_ROUTER | ZSTAGE_EXPERT_GATEUP | ZSTAGE_COMBINE,
        .families = ZFAM_ALL, .fidelity = ZFID_EXACT,
        .why = "each expert row is the same dot product in the same order; SiLU*up and the combine are the baseline's expressions",
        .status = ZPS_STABLE, .default_on = ZFAM_ALL},
    [ZPAT_SWIGLU_MLP] = {
        .name = "swiglu_mlp",
        .fuses = "gate + up + SiLU*up of the dense MLP and the shared expert in one pass over x",
        .stages = ZSTAGE_DENSE_GATEUP,
        .families = ZFAM_ALL, .fidelity = ZFID_EXACT,
        .why = "same per-row dot products; the SiLU*up expression is the baseline's",
        .status = ZPS_STABLE, .default_on = ZFAM_ALL},
    [ZPAT_GLM47_ROPE] = {
        .name = "glm47_rope",
        .fuses = "RoPE of q_pe and k_pe from one shared cos/sin table grown in powers of two, instead of cos/sin per step",
        .stages = ZSTAGE_ROPE_CACHE,
        .families = ZFAM_ALL, .fidelity = ZFID_EXACT,
        .why = "the table holds exactly the values the baseline computes per step",
        .status = ZPS_STABLE, .default_on = ZFAM_ALL, .decode_only = true},
    [ZPAT_DEEPSEEK_ROUTER] = {
        .name = "deepseek_router",
        .fuses = "router logits + sigmoid + bias + group-limited top-k + normalise + scale in one region",
        .stages = ZSTAGE_ROUTER, .refines = P(ZPAT_MOE_MLP),
        .families = ZFAM_ALL, .fidelity = ZFID_EXACT,
        .why = "same logits kernel and the same selection and weight arithmetic",
        .status = ZPS_EXPERIMENTAL, .default_on = 0},
    [ZPAT_MOE_COMBINE] = {
        .name = "moe_combine",
        .fuses = "shared + sum_k w_k * expert_k + residual in one pass",
        .stages = ZSTAGE_COMBINE | ZSTAGE_SHARED_ADD | ZSTAGE_RESIDUAL,
        .refines = P(ZPAT_MOE_MLP) | P(ZPAT_RESIDUAL_NORM),
        .families = ZFAM_ALL, .fidelity = ZFID_EXACT,
        .why = "evaluates x + ((sum_k w_k*y_k) + shared) with the baseline's order and roundings",
        .status = ZPS_STABLE, .default_on = ZFAM_ALL},
    [ZPAT_DOWNPROJ_COMBINE] = {
        .name = "downproj_combine",
        .fuses = "down projection of the K selected experts streamed into the weighted sum (no (K, d) buffer)",
        .stages = ZSTAGE_EXPERT_DOWN | ZSTAGE_COMBINE,
        .refines = P(ZPAT_MOE_MLP) | P(ZPAT_MOE_COMBINE),
        .families = ZFAM_ALL, .fidelity = ZFID_EXACT,
        .why = "each output row's K dot products are the baseline's, summed in route order without FMA",
        .status = ZPS_STABLE, .default_on = ZFAM_ALL, .decode_only = true},
    [ZPAT_RESIDUAL_NORM] = {
        .name = "residual_norm",
        .fuses = "residual add + the next RMSNorm in one pass",
        .stages = ZSTAGE_RESIDUAL | ZSTAGE_NORM,
        .families = ZFAM_ALL, .fidelity = ZFID_EXACT,
        .why = "the sum of squares runs over the updated x in index order, as the baseline's norm",
        .status = ZPS_STABLE, .default_on = ZFAM_ALL},
    [ZPAT_SHARED_OVERLAP] = {
        .name = "shared_overlap",
        .fuses = "the shared expert runs concurrently with the routed experts (same parallel regions)",
        .stages = ZSTAGE_SCHEDULE,
        .families = ZFAM_ALL, .fidelity = ZFID_EXACT,
        .why = "only the schedule changes; every value is computed by the same kernel",
        .status = ZPS_STABLE, .default_on = ZFAM_ALL},
};

zpatch_set zpatch_preset(zfamily family) {
    zpatch_set s = 0;
    for (int i = 0; i < ZPAT_COUNT; i++) {
        const zpattern *p = &zpattern_table[i];
        if ((p->default_on & ZFAMBIT(family)) && p->status == ZPS_STABLE) s |= P(i);
    }
    return s;
}

static int find(const char *name, size_t len) {
    for (int i = 0; i < ZPAT_COUNT; i++)
        if (strlen(zpattern_table[i].name) == len && !memcmp(zpattern_table[i].name, name, len))
            return i;
    return -1;
}

zmlx_status zpatch_check_compose(const zpattern *table, int n, zpatch_set s, zerr *e) {
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++) {
            if (!(s & P(a)) || !(s & P(b))) continue;
            const zpattern *pa = &table[a], *pb = &table[b];
            if (!(pa->stages & pb->stages)) continue;
            if ((pa->refines & P(b)) || (pb->refines & P(a))) continue;
            return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                            "--patterns: %s and %s replace the same stage and cannot compose",
                            pa->name, pb->name);
        }
    return ZMLX_OK;
}

zmlx_status zpatch_parse(const char *spec, zfamily family, zpatch_set *out, zerr *e) {
    *out = 0;
    if (!spec || !*spec || !strcmp(spec, "default")) {
        *out = zpatch_preset(family);
        return ZMLX_OK;
    }
    if (!strcmp(spec, "none")) return ZMLX_OK;
    zpatch_set s = 0;
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, ",+");
        if (len == 0) return zerr_set(e, ZMLX_ERR_INVALID_ARG, "--patterns \"%s\": empty name", spec);
        int id = find(p, len);
        if (id < 0)
            return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                            "--patterns: unknown pattern \"%.*s\" (run `zmlx patterns` for the list)",
                            (int)len, p);
        const zpattern *pt = &zpattern_table[id];
        if (!(pt->families & ZFAMBIT(family)))
            return zerr_set(e, ZMLX_ERR_INVALID_ARG, "--patterns: %s does not apply to %s", pt->name,
                            zfamily_name(family));
        if (pt->env_gate) {
            const char *v = getenv(pt->env_gate);
            if (!v || strcmp(v, "1"))
                return zerr_set(e, ZMLX_ERR_INVALID_ARG, "--patterns: %s needs %s=1 in the environment",
                                pt->name, pt->env_gate);
        }
        s |= P(id);
        p += len;
        if (*p) p++;
    }
    zmlx_status st = zpatch_check_compose(zpattern_table, ZPAT_COUNT, s, e);
    if (st == ZMLX_OK) *out = s;
    return st;
}

size_t zpatch_format(zpatch_set set, char *buf, size_t n) {
    size_t o = 0;
    for (int i = 0; i < ZPAT_COUNT; i++) {
        if (!(set & P(i))) continue;
        int w = snprintf(buf ? buf + o : NULL, buf && o < n ? n - o : 0, "%s%s", o ? "," : "",
                         zpattern_table[i].name);
        o += (size_t)w;
    }
    if (o == 0 && buf && n) snprintf(buf, n, "none");
    return o ? o : 4;
}

void zpatch_plan(zpatch_set s, zstage_plan *plan) {
    *plan = (zstage_plan){
        .glu_fused = s & P(ZPAT_SWIGLU_MLP),
        .experts_fused = s & P(ZPAT_MOE_MLP),
        .router_fused = s & P(ZPAT_DEEPSEEK_ROUTER),
        .down_combine = s & P(ZPAT_DOWNPROJ_COMBINE),
        .combine_residual = s & P(ZPAT_MOE_COMBINE),
        .shared_overlap = s & P(ZPAT_SHARED_OVERLAP),
        .residual_norm = s & P(ZPAT_RESIDUAL_NORM),
        .rope_table = s & P(ZPAT_GLM47_ROPE),
    };
}
