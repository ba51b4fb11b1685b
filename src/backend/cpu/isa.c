/*
 * isa.c — which kernels of kernels.h this CPU runs: feature detection (cpuid + xgetbv
 * on x86-64, getauxval on Linux/aarch64, sysctl on Apple), the ZMLX_CPU_ISA override,
 * and the assembly of one level's kernel table per precision mode.
 */
#include "backend/cpu/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(ZMLX_HAVE_X86)
#include <cpuid.h>
#elif defined(ZMLX_HAVE_NEON) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(ZMLX_HAVE_NEON) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

static const char *const isa_names[ZK_ISA_COUNT] = {"scalar", "avx2",    "avx512",
                                                    "avx512vnni", "neon", "neondot"};

/* What the CPU reports, as bits. */
enum {
    F_AVX2 = 1 << 0, F_FMA = 1 << 1, F_F16C = 1 << 2, F_AVX512F = 1 << 3, F_AVX512BW = 1 << 4,
    F_AVX512DQ = 1 << 5, F_AVX512VL = 1 << 6, F_AVX512VNNI = 1 << 7, F_AVX512BF16 = 1 << 8,
    F_OS_AVX = 1 << 9, F_OS_AVX512 = 1 << 10, F_ASIMD = 1 << 11, F_ASIMDDP = 1 << 12,
};

static const struct {
    unsigned bit;
    const char *name;
} feature_names[] = {
    {F_AVX2, "avx2"},         {F_FMA, "fma"},           {F_F16C, "f16c"},
    {F_AVX512F, "avx512f"},   {F_AVX512BW, "avx512bw"}, {F_AVX512DQ, "avx512dq"},
    {F_AVX512VL, "avx512vl"}, {F_AVX512VNNI, "avx512vnni"}, {F_AVX512BF16, "avx512bf16"},
    {F_ASIMD, "asimd"},       {F_ASIMDDP, "asimddp"},
};

#if defined(ZMLX_HAVE_X86)
static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

static unsigned cpu_features(void) {
    unsigned f = 0;
#if defined(ZMLX_HAVE_X86)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (c & bit_FMA) f |= F_FMA;
    if (c & bit_F16C) f |= F_F16C;
    if (c & bit_OSXSAVE) {
        unsigned long long x = xgetbv0();
        if ((x & 0x6) == 0x6) f |= F_OS_AVX;             /* XMM and YMM state */
        if ((x & 0xe6) == 0xe6) f |= F_OS_AVX512;        /* + opmask, ZMM state */
    }
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        if (b & (1u << 5)) f |= F_AVX2;
        if (b & (1u << 16)) f |= F_AVX512F;
        if (b & (1u << 17)) f |= F_AVX512DQ;
        if (b & (1u << 30)) f |= F_AVX512BW;
        if (b & (1u << 31)) f |= F_AVX512VL;
        if (c & (1u << 11)) f |= F_AVX512VNNI;
        if (a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5)))
            f |= F_AVX512BF16;
    }
#elif defined(ZMLX_HAVE_NEON) && defined(__linux__)
    unsigned long hw = getauxval(AT_HWCAP);
    f |= F_ASIMD; /* architectural on aarch64 */
    if (hw & (1ul << 20)) f |= F_ASIMDDP; /* HWCAP_ASIMDDP */
#elif defined(ZMLX_HAVE_NEON) && defined(__APPLE__)
    int v = 0;
    size_t len = sizeof v;
    f |= F_ASIMD;
    if (sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) == 0 && v) f |= F_ASIMDDP;
#endif
    return f;
}

/* The features a level needs (beyond what the build has). */
static unsigned isa_needs(zk_isa isa) {
    const unsigned avx2 = F_AVX2 | F_FMA | F_F16C | F_OS_AVX;
    const unsigned avx512 = avx2 | F_AVX512F | F_AVX512BW | F_AVX512DQ | F_AVX512VL | F_OS_AVX512;
    switch (isa) {
    case ZK_AVX2: return avx2;
    case ZK_AVX512: return avx512;
    case ZK_AVX512VNNI: return avx512 | F_AVX512VNNI;
    case ZK_NEON: return F_ASIMD;
    case ZK_NEONDOT: return F_ASIMD | F_ASIMDDP;
    default: return 0;
    }
}

/* Is the level compiled into this build? */
static bool isa_built(zk_isa isa) {
    switch (isa) {
    case ZK_SCALAR: return true;
#if defined(ZMLX_HAVE_X86)
    case ZK_AVX2:
    case ZK_AVX512:
    case ZK_AVX512VNNI: return true;
#endif
#if defined(ZMLX_HAVE_NEON)
    case ZK_NEON:
    case ZK_NEONDOT: return true;
#endif
    default: return false;
    }
}

const char *zk_isa_name(zk_isa isa) {
    return (unsigned)isa < ZK_ISA_COUNT ? isa_names[isa] : "?";
}

/* "avx2 fma f16c" for the bits of f that name a feature */
static void feature_list(unsigned f, char *buf, size_t n) {
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof feature_names / sizeof feature_names[0]; i++)
        if ((f & feature_names[i].bit) && o < n)
            o += (size_t)snprintf(buf + o, n - o, "%s%s", o ? " " : "", feature_names[i].name);
    if (!o) snprintf(buf, n, "none");
}

/* "scalar avx2" */
static void supported_list(char *buf, size_t n) {
    size_t o = 0;
    for (int i = 0; i < ZK_ISA_COUNT && o < n; i++)
        if (zk_isa_supported((zk_isa)i, NULL, 0))
            o += (size_t)snprintf(buf + o, n - o, "%s%s", o ? " " : "", isa_names[i]);
}

bool zk_isa_supported(zk_isa isa, char *why, size_t n) {
    if ((unsigned)isa >= ZK_ISA_COUNT) {
        if (why) snprintf(why, n, "unknown ISA level %d", (int)isa);
        return false;
    }
    if (!isa_built(isa)) {
        if (why) snprintf(why, n, "%s kernels are not part of this build (another architecture)",
                          isa_names[isa]);
        return false;
    }
    const unsigned have = cpu_features(), missing = isa_needs(isa) & ~have;
    if (missing && why) {
        char lacks[160], has[160];
        feature_list(missing, lacks, sizeof lacks);
        feature_list(have, has, sizeof has);
        if (!(missing & ~(unsigned)(F_OS_AVX | F_OS_AVX512))) /* the CPU has it, the OS not */
            snprintf(lacks, sizeof lacks, "OS support of the %s vector state",
                     missing & F_OS_AVX512 ? "AVX-512" : "AVX");
        snprintf(why, n, "this CPU lacks %s for %s (it has: %s)", lacks, isa_names[isa], has);
    }
    return !missing;
}

zk_isa zk_isa_best(void) {
    zk_isa best = ZK_SCALAR;
    for (int i = 0; i < ZK_ISA_COUNT; i++)
        if (zk_isa_supported((zk_isa)i, NULL, 0)) best = (zk_isa)i; /* levels ascend per arch */
    return best;
}

bool zk_isa_choose(zk_isa *isa, char *why, size_t n) {
    const char *env = getenv("ZMLX_CPU_ISA");
    if (!env || !*env || !strcmp(env, "auto")) {
        *isa = zk_isa_best();
        return true;
    }
    char list[128] = "";
    supported_list(list, sizeof list);
    for (int i = 0; i < ZK_ISA_COUNT; i++) {
        if (strcmp(env, isa_names[i])) continue;
        char lack[256];
        if (!zk_isa_supported((zk_isa)i, lack, sizeof lack)) {
            if (why) snprintf(why, n, "ZMLX_CPU_ISA=%s: %s; this machine runs: %s", env, lack, list);
            return false;
        }
        *isa = (zk_isa)i;
        return true;
    }
    if (why)
        snprintf(why, n, "ZMLX_CPU_ISA=%.32s: unknown ISA level (known: auto scalar avx2 avx512 "
                 "avx512vnni neon neondot; this machine runs: %s)", env, list);
    return false;
}

bool zk_isa_bf16_dot(zk_isa isa) {
    return isa == ZK_AVX512VNNI && (cpu_features() & F_AVX512BF16);
}

void zk_isa_describe(char *buf, size_t n) {
    zk_isa isa;
    char why[320], feats[200];
    feature_list(cpu_features(), feats, sizeof feats);
    if (!zk_isa_choose(&isa, why, sizeof why)) {
        snprintf(buf, n, "error: %s", why);
        return;
    }
    const char *env = getenv("ZMLX_CPU_ISA");
    snprintf(buf, n, "%s (%s%s; cpu: %s)", isa_names[isa],
             env && *env && strcmp(env, "auto") ? "forced by ZMLX_CPU_ISA" : "auto",
             zk_isa_bf16_dot(isa) ? ", bf16 dot" : "", feats);
}

zk_table zk_table_get(zk_isa isa, bool fast) {
    zk_rows_fn rows = zk_rows_generic, qrows = zk_qrows_generic, bf16 = NULL;
    zk_cols_fn cols = zk_cols_generic, qcols = zk_qcols_generic;
    switch (isa) {
#if defined(ZMLX_HAVE_X86)
    case ZK_AVX2:
        rows = zk_rows_avx2, cols = zk_cols_avx2, qcols = zk_qcols_avx2;
        qrows = fast ? zk_qrows_q8_avx2 : zk_qrows_avx2;
        break;
    case ZK_AVX512:
    case ZK_AVX512VNNI:
        rows = zk_rows_avx512, cols = zk_cols_avx512, qcols = zk_qcols_avx2;
        qrows = !fast ? zk_qrows_avx2 /* exact quantized: the AVX2 kernels */
                      : isa == ZK_AVX512VNNI ? zk_qrows_q8_avx512vnni : zk_qrows_q8_avx512;
        if (fast && zk_isa_bf16_dot(isa)) bf16 = zk_rows_bf16dot_avx512bf16;
        break;
#endif
#if defined(ZMLX_HAVE_NEON)
    case ZK_NEON:
    case ZK_NEONDOT:
        rows = zk_rows_neon, cols = zk_cols_neon, qcols = zk_qcols_neon;
        qrows = !fast ? zk_qrows_neon : isa == ZK_NEONDOT ? zk_qrows_q8_neondot : zk_qrows_q8_neon;
        break;
#endif
    default: isa = ZK_SCALAR; break;
    }
    zk_table k = {.isa = isa_names[isa], .fast = fast};
    for (int i = 0; i < ZW_COUNT; i++) {
        const bool dense = zwfmt_table[i].q == ZQ_NONE;
        k.rows[i] = dense ? rows : qrows;
        k.cols[i] = dense ? cols : qcols;
    }
    if (bf16) k.rows[ZW_BF16] = bf16;
    zk_fp8_install(&k); /* fp8 block weights: their own kernels (fp8.c) */
    return k;
}

zk_table zk_select(void) {
    zk_isa isa;
    if (!zk_isa_choose(&isa, NULL, 0)) isa = zk_isa_best();
    return zk_table_get(isa, false);
}
