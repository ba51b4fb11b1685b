/*
 * kernels.h — the CPU matrix kernels behind the `cpu` backend, one function per ISA,
 * precision mode and weight layout with the same contract: rows [r0, r1) of
 * Y[n, w.rows] = X[n, w.cols] @ W^T, or columns [c0, c1) of Y[n, w.cols] = X[n, w.rows] @ W.
 * n = 1 is the decode matrix-vector product, n > 1 prefill's matrix-matrix product.
 * A row's value never depends on [r0, r1) or on n: the backend splits rows across
 * threads and the fused kernels call them on tiles.
 *
 * Two precision modes (SYSTEM.md section 1):
 *   exact  float32 activations and accumulation; the summation order differs from the
 *          reference (vector lanes, FMA, the factored affine form
 *          scale * sum(q*x) + bias * sum(x)); tests bound the difference.
 *   fast   quantized layouts: the activations of each group are quantized to int8 with
 *          one float scale (xq.h) and dotted with the codes in integers
 *          (AVX2 maddubs, AVX-512 VNNI vpdpbusd, NEON sdot); bf16 weights on
 *          AVX-512 BF16 CPUs: bf16 activations and vdpbf16ps.  Everything else as exact.
 *
 * ISA levels (zk_isa), chosen at run time from the CPU's features, or forced with the
 * environment variable ZMLX_CPU_ISA=scalar|avx2|avx512|avx512vnni|neon|neondot (an
 * error when the CPU lacks it).  `scalar` is the portable C of kernels.c: the
 * reference math in both modes.
 *
 * zk_table is one level's fast-path table, parallel to model/weight.h's zwfmt_table:
 * one entry per weight layout (zwkind).
 */
#ifndef ZMLX_BACKEND_CPU_KERNELS_H
#define ZMLX_BACKEND_CPU_KERNELS_H

#include "model/weight.h"

#include <stdbool.h>
#include <stddef.h>

typedef void (*zk_rows_fn)(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                           int64_t r1);
typedef void (*zk_cols_fn)(const zweight *w, const float *x, int64_t n, float *y, int64_t c0,
                           int64_t c1);

typedef enum zk_isa {
    ZK_SCALAR = 0,  /* portable C, any CPU */
    ZK_AVX2,        /* x86-64: AVX2 + FMA + F16C */
    ZK_AVX512,      /* x86-64: AVX-512 F, BW, DQ, VL (+ FMA, F16C) */
    ZK_AVX512VNNI,  /* + AVX512_VNNI (vpdpbusd); bf16 dot where the CPU has AVX512_BF16 */
    ZK_NEON,        /* aarch64: Advanced SIMD */
    ZK_NEONDOT,     /* aarch64: + the dot product instructions (sdot) */
    ZK_ISA_COUNT
} zk_isa;

typedef struct zk_table {
    const char *isa;           /* zk_isa_name */
    bool fast;                 /* the fast-mode table */
    zk_rows_fn rows[ZW_COUNT]; /* matmul, per layout */
    zk_cols_fn cols[ZW_COUNT]; /* transposed matmul, per layout */
} zk_table;

/* "scalar", "avx2", ... */
const char *zk_isa_name(zk_isa isa);
/* Does this CPU (and its OS) run isa?  On false, why[n] says what it lacks. */
bool zk_isa_supported(zk_isa isa, char *why, size_t n);
/* The best level this CPU runs. */
zk_isa zk_isa_best(void);
/* The level to use: ZMLX_CPU_ISA if set (and not "auto"), else the best.  False, with a
 * one-line reason in why[n], for an unknown name or a level this CPU lacks. */
bool zk_isa_choose(zk_isa *isa, char *why, size_t n);
/* One line for reports: "avx2 (auto; cpu: avx2 fma f16c)", "avx512vnni (forced; ...)". */
void zk_isa_describe(char *buf, size_t n);
/* Whether the level's fast mode uses a bf16 dot for bf16 weights on this CPU. */
bool zk_isa_bf16_dot(zk_isa isa);

/* The kernels of one level (which must be supported) and precision mode. */
zk_table zk_table_get(zk_isa isa, bool fast);
/* The exact kernels of the level the cpu backend runs (zk_isa_choose; the best level
 * when ZMLX_CPU_ISA names none this CPU has): tests, benchmarks. */
zk_table zk_select(void);

/* The entries for w's layout; NULL when w has none (zweight_check fails). */
static inline zk_rows_fn zk_rows_for(const zk_table *k, const zweight *w) {
    zwkind kd = zweight_kind(w);
    return kd < ZW_COUNT ? k->rows[kd] : NULL;
}
static inline zk_cols_fn zk_cols_for(const zk_table *k, const zweight *w) {
    zwkind kd = zweight_kind(w);
    return kd < ZW_COUNT ? k->cols[kd] : NULL;
}

/* Portable, any layout (element access through zweight_get). zk_cols_generic is the
 * reference zop_matmul_t_ref itself. */
void zk_rows_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                     int64_t r1);
void zk_cols_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t c0,
                     int64_t c1);
/* Portable, quantized layouts (affine, mxfp4): rows in the factored form; columns
 * dequantize a row slice and accumulate over rows in order (bit-identical to
 * zop_matmul_t_ref). */
void zk_qrows_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                      int64_t r1);
void zk_qcols_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t c0,
                      int64_t c1);
/* Portable model of the fast mode's arithmetic (xq.h): int8 activations, exact integer
 * group dots.  Not in any table; the tests compare the SIMD fast kernels with it. */
void zk_qrows_q8_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                         int64_t r1);

/* fp8 e4m3 block weights (fp8.c, fp8_avx2.c): rows kernels, and zk_fp8_install, which
 * puts the fp8 entries (rows: the best of these for k->isa; columns: zk_qcols_generic)
 * into a table zk_table_get has filled. */
void zk_fp8_rows_generic(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                         int64_t r1);
void zk_fp8_install(zk_table *k);

enum {
    ZK_QSUMS = 1024 /* group sums a quantized kernel keeps on its stack (tokens x groups) */
};

/* For the SIMD kernel files: F(b) with the affine bit width as a constant. */
#define ZK_AFFINE_BITS(bits, F)                                                                \
    switch (bits) {                                                                            \
    case 2: F(2); break;                                                                       \
    case 3: F(3); break;                                                                       \
    case 4: F(4); break;                                                                       \
    case 5: F(5); break;                                                                       \
    case 6: F(6); break;                                                                       \
    default: F(8); break;                                                                      \
    }

/* The dense products' walk: pairs of tokens x fours of rows, the decode tile (one token x
 * four rows) as its own instantiation; TILE(t, N, r, R). */
#define ZK_DENSE_TILES(n, r0, r1, TILE)                                                        \
    for (int64_t t_ = 0; t_ < (n); t_ += 2) {                                                  \
        const int N_ = (n) - t_ >= 2 ? 2 : 1;                                                  \
        for (int64_t r_ = (r0); r_ < (r1); r_ += 4) {                                          \
            const int R_ = (r1) - r_ >= 4 ? 4 : (int)((r1) - r_);                              \
            if (N_ == 1 && R_ == 4) TILE(t_, 1, r_, 4);                                        \
            else TILE(t_, N_, r_, R_);                                                         \
        }                                                                                      \
    }

/* F(dt) with a dense weight dtype as a constant (BF16, F16, else F32). */
#define ZK_DENSE_DTYPE(dtype, F)                                                               \
    switch (dtype) {                                                                           \
    case ZDT_BF16: F(ZDT_BF16); break;                                                         \
    case ZDT_F16: F(ZDT_F16); break;                                                           \
    default: F(ZDT_F32); break;                                                                \
    }

/* Columns [c0, c1) of a transposed quantized product: the whole blocks of 8 columns
 * through BODY(a0, a1) (a macro of the caller), the unaligned head and tail through the
 * reference, which gives the same values (needs ops/ops.h). */
#define ZK_QCOLS_BLOCKS8(w, x, n, y, c0, c1, BODY)                                             \
    do {                                                                                       \
        const int64_t a0_ = ((c0) + 7) & ~(int64_t)7, a1_ = (c1) & ~(int64_t)7;               \
        if (a0_ >= a1_) {                                                                      \
            zop_matmul_t_ref(w, x, n, y, c0, c1);                                              \
            break;                                                                             \
        }                                                                                      \
        zop_matmul_t_ref(w, x, n, y, c0, a0_);                                                 \
        BODY(a0_, a1_);                                                                        \
        zop_matmul_t_ref(w, x, n, y, a1_, c1);                                                 \
    } while (0)

/* Rows [r0, r1) in the tiles of the quantized SIMD products: R = 2 rows when a pair of
 * tokens goes together (two), else 4, spaced S = (r1 - r0) / R rows apart, so that each
 * tile reads R sequential streams in different pages (packed rows are short: 4 adjacent
 * 1 KB rows interleaved in one page halve what the prefetchers fetch); then the rest one
 * by one.  TILE(r, R, N, S) handles rows r, r + S, .. r + (R-1) S with constant R and N;
 * every (row, token) takes the same steps in any tile. */
#define ZK_ROW_TILES(r0, r1, two, TILE)                                                        \
    do {                                                                                       \
        const int64_t s2_ = ((r1) - (r0)) / 2, s4_ = ((r1) - (r0)) / 4;                        \
        int64_t r_ = (r0);                                                                     \
        if (two) {                                                                             \
            for (int64_t j_ = 0; j_ < s2_; j_++) TILE((r0) + j_, 2, 2, s2_);                   \
            r_ += 2 * s2_;                                                                     \
        } else {                                                                               \
            for (int64_t j_ = 0; j_ < s4_; j_++) TILE((r0) + j_, 4, 1, s4_);                   \
            r_ += 4 * s4_;                                                                     \
        }                                                                                      \
        for (; r_ < (r1); r_++) {                                                              \
            if (two) TILE(r_, 1, 2, 1);                                                        \
            else TILE(r_, 1, 1, 1);                                                            \
        }                                                                                      \
    } while (0)

/* Per ISA (each file compiled with its ISA's flags, called only after zk_isa_supported):
 *   rows / cols       dense F32, F16, BF16 (exact)
 *   qrows             quantized, exact (the avx512 levels use the AVX2 ones)
 *   qcols             quantized, transposed, both modes (AVX2: the factored form; NEON:
 *                     the reference's arithmetic, bit-identical; avx512: the AVX2 one)
 *   qrows_q8          quantized, fast (int8 activations)
 *   rows_bf16dot      BF16 weights, fast (bf16 activations) */
#if defined(ZMLX_HAVE_X86)
void zk_rows_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1);
void zk_cols_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1);
void zk_qrows_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1);
void zk_fp8_rows_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                      int64_t r1);
void zk_qcols_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1);
void zk_qrows_q8_avx2(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                      int64_t r1);
void zk_rows_avx512(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1);
void zk_cols_avx512(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1);
void zk_qrows_q8_avx512(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                        int64_t r1);
void zk_qrows_q8_avx512vnni(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                            int64_t r1);
void zk_rows_bf16dot_avx512bf16(const zweight *w, const float *x, int64_t n, float *y,
                                int64_t r0, int64_t r1);
#endif
#if defined(ZMLX_HAVE_NEON)
void zk_rows_neon(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1);
void zk_cols_neon(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1);
void zk_qrows_neon(const zweight *w, const float *x, int64_t n, float *y, int64_t r0, int64_t r1);
void zk_qcols_neon(const zweight *w, const float *x, int64_t n, float *y, int64_t c0, int64_t c1);
void zk_qrows_q8_neon(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                      int64_t r1);
void zk_qrows_q8_neondot(const zweight *w, const float *x, int64_t n, float *y, int64_t r0,
                         int64_t r1);
#endif

#endif
