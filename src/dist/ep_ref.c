/*
 * ep_ref.c — the host reference of the expert-parallel combine (dist.h says why it is
 * exact): a rank's slot buffer, an all-reduce emulated in a chosen rank order, and the
 * combine in route order.  The device path (backend/cuda/ep.c + step.c) is the same
 * three steps with ncclAllReduce in the middle; tests/test_dist_ep.c runs these with the
 * ranks' slices in one process against the one-rank MoE block.  Built, like ops_ref.c,
 * without FMA contraction.
 */
#include "dist/dist.h"

void zdist_slots_fill(const zdist_part *p, int32_t rank, const int32_t *idx, int64_t n,
                      int32_t K, int64_t d, const float *y, float *slots) {
    for (int64_t s = 0; s < n * K; s++) {
        const bool mine = zdist_owner(p, idx[s]) == rank;
        for (int64_t i = 0; i < d; i++) slots[s * d + i] = mine ? y[s * d + i] : 0.0f;
    }
}

void zdist_allreduce_emu(const float *const *bufs, const int32_t *order, int32_t n_ranks,
                         int64_t len, float *out) {
    for (int64_t i = 0; i < len; i++) {
        float acc = bufs[order[0]][i];
        for (int32_t r = 1; r < n_ranks; r++) acc += bufs[order[r]][i];
        out[i] = acc;
    }
}

void zdist_combine(const float *w, const float *slots, const float *sd, int64_t n, int32_t K,
                   int64_t d, float *f) {
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < d; i++) {
            float acc = 0.0f; /* route order: score descending, ties to the lower index */
            for (int32_t k = 0; k < K; k++) acc += w[t * K + k] * slots[(t * K + k) * d + i];
            if (sd) acc += sd[t * d + i];
            f[t * d + i] = acc;
        }
}
