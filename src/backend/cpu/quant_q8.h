/*
 * quant_q8.h — what the fast-mode kernel templates (quant_q8_x86.h, quant_q8_neon.h)
 * share: the int8 activations of a token tile over one column chunk (xq.h) on the
 * stack, and the arguments of a tile of rows x tokens.
 */
#ifndef ZMLX_BACKEND_CPU_QUANT_Q8_H
#define ZMLX_BACKEND_CPU_QUANT_Q8_H

#include "model/weight.h"

enum { XQ_BYTES = 16384 }; /* int8 activations on the stack: tile tokens x chunk columns */

typedef struct q8x {
    int8_t q[XQ_BYTES];                                         /* [nt][cw], zxq_perm order */
    float d[XQ_BYTES / 32], s[XQ_BYTES / 32], c[XQ_BYTES / 32]; /* [nt][gn] */
} q8x;

typedef struct q8args {
    const zweight *w;
    const q8x *a;
    float *y;
    int64_t t, t_abs;   /* first token of the tile in a (relative) and in y */
    int64_t g0, gn, cw; /* the column chunk in groups; its width */
    int64_t rb;         /* packed bytes per row */
} q8args;

/* The scale of group i of a row: affine a (bf16 without a switch), mxfp4 E8M0 / 2 (its
 * codes are 2 E2M1).  fp4 and bf16 are constants at every call site. */
static inline __attribute__((always_inline)) float zk_q8_scale(const zweight *w, int64_t i, int fp4,
                                                             int bf16) {
    if (fp4) return 0.5f * ze8m0_to_f32(((const uint8_t *)w->scales)[i]);
    if (bf16) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)w->scales + 2 * i, sizeof h);
        return zbf16_to_f32(h);
    }
    return zweight_scale_at(w->sdtype, w->scales, i);
}

#endif
