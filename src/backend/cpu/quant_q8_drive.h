/*
 * quant_q8_drive.h — the end of the fast-mode kernel templates (quant_q8_x86.h,
 * quant_q8_neon.h), included after their ISA parts: perm_of(bits, fp4, G),
 * prep_token(...), q8tile(A, r, R, N, S, bits, fp4, bf16) and Q8_CORR8 (the correction
 * kind of 8-bit codes).  Defines Q8_NAME, the kernel of kernels.h.
 *
 * One layout: column chunks whose int8 activations fit XQ_BYTES for one token, token
 * tiles that fit it, rows in fours (one token) or pairs of rows x pairs of tokens.
 */
#define ZK_Q8_AI static inline __attribute__((always_inline))

ZK_Q8_AI void rows_fmt(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                       int64_t r1, int bits, int fp4, int bf16) {
    const int64_t K = w->cols, G = w->group, ng = K / G;
    if (ng == 0) { /* empty dot products */
        for (int64_t t = 0; t < n; t++)
            for (int64_t r = r0; r < r1; r++) y[t * w->rows + r] = 0.0f;
        return;
    }
    const zxq_perm perm = perm_of(bits, fp4, (int)G);
    const int corr = fp4 ? 0 : bits == 8 ? Q8_CORR8 : 1;
    const float m = fp4 ? 0.0f : (float)(1 << (bits - 1));
    const int64_t gmax = XQ_BYTES / G < ng ? XQ_BYTES / G : ng;
    q8x a;
    q8args A = {.w = w, .a = &a, .y = y, .rb = zweight_row_data_bytes(w)};
    for (A.g0 = 0; A.g0 < ng; A.g0 += gmax) {
        A.gn = ng - A.g0 < gmax ? ng - A.g0 : gmax;
        A.cw = A.gn * G;
        const int64_t tile = XQ_BYTES / A.cw;
        for (int64_t t0 = 0; t0 < n; t0 += tile) {
            const int64_t nt = n - t0 < tile ? n - t0 : tile;
            for (int64_t t = 0; t < nt; t++)
                prep_token(x + (t0 + t) * K + A.g0 * G, A.gn, (int)G, perm, corr, m,
                           a.q + t * A.cw, a.d + t * A.gn, a.s + t * A.gn, a.c + t * A.gn);
            for (int64_t t = 0; t < nt; t += 2) {
                A.t = t;
                A.t_abs = t0 + t;
#define TILE(r, R, N, S) q8tile(&A, r, R, N, S, bits, fp4, bf16)
                ZK_ROW_TILES(r0, r1, nt - t >= 2, TILE);
#undef TILE
            }
        }
    }
}

ZK_Q8_AI void rows_bits(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                        int64_t r1, int bf16) {
#define FMT(b) rows_fmt(w, x, n, y, r0, r1, b, 0, bf16)
    ZK_AFFINE_BITS(w->bits, FMT)
#undef FMT
}

void Q8_NAME(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1) {
    if (w->q == ZQ_MXFP4) rows_fmt(w, x, n, y, r0, r1, 4, 1, 0);
    else if (w->sdtype == ZDT_BF16) rows_bits(w, x, n, y, r0, r1, 1);
    else rows_bits(w, x, n, y, r0, r1, 0);
}
