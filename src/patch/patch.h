/*
 * patch.h — the pattern registry: every fused kernel ("pattern") the engine can apply,
 * described in one table (name, what it fuses, the stages it replaces, families,
 * fidelity class, status, default-on families, env gate), the family presets, the
 * parser of `--patterns default|none|a,b,c`, the composition rules, and the per-layer
 * stage plan the model's forward pass follows.
 *
 * Not for: the kernels themselves (src/model/moe.c, forward.c, rope_cache.c and the
 * backend table) — this file only decides which implementation runs each stage.
 */
#ifndef ZMLX_PATCH_PATCH_H
#define ZMLX_PATCH_PATCH_H

#include "core/err.h"
#include "io/config.h"

#include <stdbool.h>
#include <stdint.h>

/* The stages of a decoder layer a pattern may replace. */
enum {
    ZSTAGE_ROUTER = 1u << 0,       /* router logits -> selection -> weights */
    ZSTAGE_EXPERT_GATEUP = 1u << 1,/* routed experts' gate/up/SwiGLU */
    ZSTAGE_EXPERT_DOWN = 1u << 2,  /* routed experts' down projection */
    ZSTAGE_COMBINE = 1u << 3,      /* weighted sum of the routed outputs */
    ZSTAGE_SHARED_ADD = 1u << 4,   /* + shared expert output */
    ZSTAGE_RESIDUAL = 1u << 5,     /* + residual */
    ZSTAGE_NORM = 1u << 6,         /* the following RMSNorm */
    ZSTAGE_DENSE_GATEUP = 1u << 7, /* dense MLP / shared expert gate/up/SwiGLU */
    ZSTAGE_ROPE_CACHE = 1u << 8,   /* rope of q_pe/k_pe and the cache write */
    ZSTAGE_SCHEDULE = 1u << 9,     /* when the shared expert runs (no arithmetic) */
};

typedef enum zfidelity {
    ZFID_EXACT = 0, /* same arithmetic, same order: bit-identical */
    ZFID_TOKENS,    /* may reorder sums; must stay token-identical in validate */
    ZFID_APPROX,    /* changes the math; reports divergence; never default */
} zfidelity;

typedef enum zpstatus { ZPS_STABLE = 0, ZPS_EXPERIMENTAL, ZPS_UNSAFE } zpstatus;

typedef enum zpattern_id {
    ZPAT_MOE_MLP = 0,
    ZPAT_SWIGLU_MLP,
    ZPAT_GLM47_ROPE,
    ZPAT_DEEPSEEK_ROUTER,
    ZPAT_MOE_COMBINE,
    ZPAT_DOWNPROJ_COMBINE,
    ZPAT_RESIDUAL_NORM,
    ZPAT_SHARED_OVERLAP,
    ZPAT_COUNT
} zpattern_id;

#define ZFAMBIT(f) (1u << (f))
#define ZFAM_ALL (ZFAMBIT(ZFAM_GLM4_MOE_LITE) | ZFAMBIT(ZFAM_DEEPSEEK_V3) | \
                  ZFAMBIT(ZFAM_DEEPSEEK_V32) | ZFAMBIT(ZFAM_KIMI_K25))

typedef struct zpattern {
    const char *name;
    const char *fuses;       /* one line: what it fuses */
    uint32_t stages;         /* ZSTAGE_* it replaces */
    uint32_t refines;        /* bit set of pattern ids whose overlapping stages it takes over */
    uint32_t families;       /* ZFAMBIT set it applies to */
    zfidelity fidelity;
    const char *why;         /* why this fidelity class (for tokens/approx: what differs) */
    zpstatus status;
    uint32_t default_on;     /* ZFAMBIT set whose preset includes it */
    bool decode_only;        /* falls back to the baseline for prefill chunks */
    const char *env_gate;    /* environment variable that must be "1" to enable, or NULL */
} zpattern;

extern const zpattern zpattern_table[ZPAT_COUNT];

typedef uint32_t zpatch_set; /* bit i = pattern id i */

/*
 * Parse `--patterns`: "default" (the family preset), "none", or a comma (or '+')
 * separated list of names.  Unknown names, patterns that do not apply to the family,
 * patterns whose env gate is not set, and combinations that cannot compose are refused
 * (ZMLX_ERR_INVALID_ARG naming the pattern(s)).
 */
zmlx_status zpatch_parse(const char *spec, zfamily family, zpatch_set *out, zerr *e);
zpatch_set zpatch_preset(zfamily family);
/* The composition rule over any table (tests use their own): ZMLX_OK, or an error
   naming the first two patterns of `set` that share a stage without one refining the other. */
zmlx_status zpatch_check_compose(const zpattern *table, int n, zpatch_set set, zerr *e);
/* "a,b,c" of a set (buf may be NULL to size); returns the length. */
size_t zpatch_format(zpatch_set set, char *buf, size_t n);

/* Which implementation runs each stage of one layer (filled at load from the set). */
typedef struct zstage_plan {
    bool glu_fused;        /* swiglu_mlp: dense MLP / shared expert gate+up+SiLU in one pass */
    bool experts_fused;    /* moe_mlp: routed gate+up+SiLU in one pass, one region */
    bool router_fused;     /* deepseek_router: logits + selection in one region */
    bool down_combine;     /* downproj_combine (decode): down streamed into the weighted sum */
    bool combine_residual; /* moe_combine: shared + residual folded into the combine */
    bool shared_overlap;   /* shared expert runs in the routed experts' regions */
    bool residual_norm;    /* residual add fused with the next RMSNorm */
    bool rope_table;       /* glm47_rope (decode): shared cos/sin table + fused cache write */
} zstage_plan;

void zpatch_plan(zpatch_set set, zstage_plan *plan);

#endif
