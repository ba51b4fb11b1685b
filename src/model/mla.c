/*
 * mla.c — MLX's split MLA weights.  mlx-lm stores each layer's kv_b_proj as
 * `self_attn.embed_q` [H, kv_lora, nope] (W_UK[h]^T per head, quantized along nope) and
 * `self_attn.unembed_out` [H, v, kv_lora] (W_UV[h], quantized along kv_lora).  The host
 * backends run them as stored (attention.c: the absorbed path's products are plain
 * Y = X W^T over them, the expanded path's k_nope the transposed product); a device
 * backend, which uploads one kv_b [H * (nope + v), kv_lora], gets it rebuilt here, and so
 * do the tests' reference runs.  The rebuild is exact: a copy when both are dense of one
 * dtype, else both dequantized into float32 (the two are quantized along different axes,
 * so no single quantized kv_b could hold them without requantizing).
 */
#include "model/model.h"

#include <string.h>

bool zmla_split_native(const zbackend_ops *be) {
    return be->model_init == NULL;
}

bool zmla_rebuild_kv_b(zmlx_model *m, zlayer *L) {
    const zmlx_config *c = &m->cfg;
    const zweight *eq = &L->embed_q, *uo = &L->unembed_out;
    const int64_t H = c->n_heads, nope = c->qk_nope_dim, v = c->v_head_dim, R = c->kv_lora_rank;
    const bool copy = eq->q == ZQ_NONE && uo->q == ZQ_NONE && eq->dtype == uo->dtype;
    const zdtype dt = copy ? eq->dtype : ZDT_F32;
    const size_t es = zdtype_table[dt].size;
    const int64_t hs = nope + v;
    uint8_t *out = zmodel_alloc(m, (size_t)(H * hs * R) * es);
    float *row = zmodel_alloc(m, (size_t)(R > nope ? R : nope) * sizeof(float));
    if (!out || !row) return false;
    for (int64_t h = 0; h < H; h++) {
        uint8_t *dst = out + (size_t)(h * hs * R) * es;
        for (int64_t j = 0; j < R; j++) { /* embed_q row h*R + j = column j of W_UK[h] */
            if (copy) {
                const uint8_t *src = (const uint8_t *)eq->data + (size_t)((h * R + j) * nope) * es;
                for (int64_t i = 0; i < nope; i++)
                    memcpy(dst + (size_t)(i * R + j) * es, src + i * es, es);
            } else {
                zweight_row_f32(eq, h * R + j, row);
                for (int64_t i = 0; i < nope; i++)
                    memcpy(dst + (size_t)(i * R + j) * 4, &row[i], 4);
            }
        }
        for (int64_t i = 0; i < v; i++) { /* unembed_out row h*v + i = W_UV[h] row i */
            uint8_t *d = dst + (size_t)((nope + i) * R) * es;
            if (copy) {
                memcpy(d, (const uint8_t *)uo->data + (size_t)((h * v + i) * R) * es,
                       (size_t)R * es);
            } else {
                zweight_row_f32(uo, h * v + i, row);
                memcpy(d, row, (size_t)R * 4);
            }
        }
    }
    L->kv_b = (zweight){.dtype = dt, .rows = H * hs, .cols = R, .data = out};
    L->embed_q = L->unembed_out = (zweight){0};
    return true;
}

zmlx_status zmodel_mla_rebuild(zmlx_model *m, zerr *e) {
    for (int l = 0; l < m->cfg.n_layers; l++) {
        zlayer *L = &m->layers[l];
        if (L->embed_q.data && !zmla_rebuild_kv_b(m, L))
            return zerr_set(e, ZMLX_ERR_NOMEM, "out of memory rebuilding kv_b of layer %d", l);
    }
    return ZMLX_OK;
}
