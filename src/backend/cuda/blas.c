/*
 * blas.c — the dense prefill products of fast mode through cuBLAS, loaded at run time (as
 * nccl.c loads NCCL: a zmlx built with CUDA runs where libcublas is not installed, with
 * the tile kernel for every product, and builds without cuBLAS's headers).  Y[n, rows] = X[n, cols] W^T as one cublasGemmEx
 * over bf16 copies of both operands (cuk_deq_bf16: the weight dequantized with deq8's
 * values and rounded to nearest even, the tile kernel's operands; cuk_to_bf16: the
 * activations) with float32 accumulation and output — another summation order of the same
 * bf16 products, held to the tile kernel's error bound by test_cuda_kernels.  The bf16
 * copies live in scratch buffers of the session, grown to the largest product seen.
 */
#include "backend/cuda/cuda_internal.h"

#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cuBLAS's C API as the library exports it since CUDA 11 (cublasStatus_t and its enums
   are C enums, passed as int; cublasHandle_t a pointer), declared here so that building
   needs no cuBLAS headers. */
enum {
    CUBLAS_OK = 0, OP_N = 0, OP_T = 1, R_32F = 0 /* CUDA_R_32F */, R_16BF = 14 /* CUDA_R_16BF */,
    COMPUTE_32F = 68 /* CUBLAS_COMPUTE_32F */, GEMM_DEFAULT = -1 /* CUBLAS_GEMM_DEFAULT */
};
struct zcu_blas_fns {
    int (*create)(void **);
    int (*destroy)(void *);
    int (*set_stream)(void *, cudaStream_t);
    int (*gemm_ex)(void *, int, int, int, int, int, const void *, const void *, int, int, const void *, int, int,
                   const void *, void *, int, int, int, int);
};

/* The library names to try: the build's CUDA major first. */
static int lib_names(const char **names, char (*buf)[32]) {
    int n = 0;
    snprintf(buf[0], sizeof buf[0], "libcublas.so.%d", CUDART_VERSION / 1000);
    names[n++] = buf[0];
    if (CUDART_VERSION / 1000 != 13) names[n++] = "libcublas.so.13";
    if (CUDART_VERSION / 1000 != 12) names[n++] = "libcublas.so.12";
    names[n++] = "libcublas.so";
    return n;
}

/* Resolve the calls from lib and make a handle; false (nothing kept) if any step fails. */
static bool open_from(zcu_blas *b, void *lib) {
    static const struct {
        const char *name;
        size_t off;
    } syms[] = {
        {"cublasCreate_v2", offsetof(struct zcu_blas_fns, create)},
        {"cublasDestroy_v2", offsetof(struct zcu_blas_fns, destroy)},
        {"cublasSetStream_v2", offsetof(struct zcu_blas_fns, set_stream)},
        {"cublasGemmEx", offsetof(struct zcu_blas_fns, gemm_ex)},
    };
    struct zcu_blas_fns *f = calloc(1, sizeof *f);
    bool ok = f != NULL;
    for (size_t i = 0; ok && i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(lib, syms[i].name);
        ok = p != NULL;
        if (ok) memcpy((char *)f + syms[i].off, &p, sizeof p); /* object -> function pointer */
    }
    void *h = NULL;
    if (ok) ok = f->create(&h) == CUBLAS_OK && h;
    if (!ok) {
        free(f);
        return false;
    }
    b->fns = f;
    b->handle = h;
    return true;
}

/* The library stays mapped once loaded (never dlclose'd, as NCCL: cuBLAS keeps
   per-thread state that may outlive a session). */
bool zcu_blas_ready(zcu_blas *b) {
    if (b->tried) return b->handle != NULL;
    b->tried = true;
    const char *names[4];
    char buf[1][32];
    const int n = lib_names(names, buf);
    for (int i = 0; i < n && !b->handle; i++) {
        void *lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (lib && !open_from(b, lib)) (void)cudaGetLastError();
    }
    return b->handle != NULL;
}

void zcu_blas_free(zcu_blas *b) {
    if (b->handle) b->fns->destroy(b->handle);
    if (b->w16) cudaFree(b->w16);
    if (b->x16) cudaFree(b->x16);
    free(b->fns);
    memset(b, 0, sizeof *b);
}

/* *buf holds at least `bytes`: grown by freeing and allocating, once the stream's work
   queued so far (which may still read the old buffer) is done. */
static zmlx_status grow(void **buf, size_t *cap, size_t bytes, cudaStream_t st, const char *what, zerr *e) {
    if (*cap >= bytes) return ZMLX_OK;
    CU_TRY(e, cudaStreamSynchronize(st));
    if (*buf) cudaFree(*buf);
    *buf = NULL;
    *cap = 0;
    const cudaError_t err = cudaMalloc(buf, bytes);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return zerr_set(e, ZMLX_ERR_LIMIT, "out of GPU memory: %s needs %.1f MiB (%s)", what,
                        (double)bytes / 1048576.0, cudaGetErrorString(err));
    }
    *cap = bytes;
    return ZMLX_OK;
}

zmlx_status zcu_blas_x16(zcu_blas *b, const float *x, int64_t ldx, int64_t n, int64_t cols, cu_q q,
                         const void **out, zerr *e) {
    const zmlx_status st = grow(&b->x16, &b->xcap, (size_t)(n * cols) * 2, q.st, "the bf16 activations", e);
    if (st != ZMLX_OK) return st;
    if (x) CU_TRY(e, cuk_to_bf16(x, ldx, n, cols, b->x16, q));
    *out = b->x16;
    return ZMLX_OK;
}

zmlx_status zcu_blas_gemm(zcu_blas *b, const cuw *w, const float *x, int64_t ldx, float *y, int64_t ldy,
                          int64_t n, cu_q q, zerr *e) {
    if (n <= 0 || w->rows <= 0) return ZMLX_OK;
    if (!b->handle || w->stride || w->rows > INT32_MAX || w->cols > INT32_MAX || n > INT32_MAX || ldy > INT32_MAX ||
        ldy < w->rows)
        return zerr_set(e, ZMLX_ERR_BACKEND, "cuBLAS GEMM: unsupported shape (%lld x %lld, %lld rows, ldy %lld)",
                        (long long)w->rows, (long long)w->cols, (long long)n, (long long)ldy);
    zmlx_status st = grow(&b->w16, &b->wcap, (size_t)(w->rows * w->cols) * 2, q.st, "the bf16 weights", e);
    const void *x16 = NULL;
    if (st == ZMLX_OK) st = zcu_blas_x16(b, x, ldx, n, w->cols, q, &x16, e);
    if (st != ZMLX_OK) return st;
    CU_TRY(e, cuk_deq_bf16(*w, 0, b->w16, q));
    /* column-major: Y^T [rows, n] (ld ldy) = (W viewed [cols, rows], ld cols)^T X^T [cols, n] */
    const float one = 1.0f, zero = 0.0f;
    int rc = b->fns->set_stream(b->handle, q.st);
    if (rc == CUBLAS_OK)
        rc = b->fns->gemm_ex(b->handle, OP_T, OP_N, (int)w->rows, (int)n, (int)w->cols, &one, b->w16, R_16BF,
                             (int)w->cols, x16, R_16BF, (int)w->cols, &zero, y, R_32F, (int)ldy, COMPUTE_32F,
                             GEMM_DEFAULT);
    if (rc != CUBLAS_OK)
        return zerr_set(e, ZMLX_ERR_BACKEND, "cuBLAS GEMM (%lld x %lld by %lld rows) failed: status %d",
                        (long long)w->rows, (long long)w->cols, (long long)n, rc);
    return ZMLX_OK;
}
