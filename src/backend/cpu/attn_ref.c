/*
 * attn_ref.c — the reference attention kernel for one (query position, head):
 * scores in float32 in position order, softmax, weighted sum of value rows in
 * position order.  Both CPU backends call it, so they agree bit for bit on attention.
 * With a selection list (DeepSeek-V3.2 sparse attention) the same loops run over the
 * listed positions only.
 */
#include "backend/backend.h"
#include "ops/ops.h"

static float row_dot(const float *q, const void *row, int64_t d, zdtype dt) {
    float acc = 0.0f;
    if (dt == ZDT_BF16) {
        const uint16_t *r = row;
        for (int64_t i = 0; i < d; i++) acc += q[i] * zbf16_to_f32(r[i]);
    } else {
        const float *r = row;
        for (int64_t i = 0; i < d; i++) acc += q[i] * r[i];
    }
    return acc;
}

static const void *row_at(const void *base, int64_t elem_off, zdtype dt) {
    return (const uint8_t *)base + (size_t)elem_off * zdtype_table[dt].size;
}

/* The positions query qi attends to: *list (NULL = 0, 1, ..., n-1, the dense causal
   prefix) and its length. */
static int64_t visible(const zattn_job *j, int64_t qi, const int32_t **list) {
    *list = NULL;
    if (j->idx && j->idx_n[qi] >= 0) {
        *list = j->idx + qi * j->idx_stride;
        return j->idx_n[qi];
    }
    return j->T - j->n_q + qi + 1; /* causal: positions up to this query */
}

void zattn_head_ref(const zattn_job *j, int64_t qi, int64_t h, float *scores) {
    const int32_t *list;
    const int64_t n = visible(j, qi, &list);
    const float *q = j->q + (qi * j->n_heads + h) * j->dk;
    const float *qr = j->qr + (qi * j->n_heads + h) * j->dr;
    for (int64_t i = 0; i < n; i++) {
        const int64_t t = list ? list[i] : i;
        float s = row_dot(q, row_at(j->k, t * j->k_stride + h * j->k_head, j->kv_dtype), j->dk,
                          j->kv_dtype);
        float r = row_dot(qr, row_at(j->kr, t * j->kr_stride, j->kr_dtype), j->dr, j->kr_dtype);
        scores[i] = (s + r) * j->scale;
    }
    zop_softmax(scores, n);
    float *out = j->out + (qi * j->n_heads + h) * j->dv;
    for (int64_t i = 0; i < j->dv; i++) out[i] = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        const int64_t t = list ? list[i] : i;
        const void *v = row_at(j->v, t * j->v_stride + h * j->v_head, j->kv_dtype);
        float p = scores[i];
        if (j->kv_dtype == ZDT_BF16) {
            const uint16_t *vr = v;
            for (int64_t c = 0; c < j->dv; c++) out[c] += p * zbf16_to_f32(vr[c]);
        } else {
            const float *vr = v;
            for (int64_t c = 0; c < j->dv; c++) out[c] += p * vr[c];
        }
    }
}
