/*
 * blas.c — the dense prefill products of fast mode through cuBLAS, loaded at run time (as
 * nccl.c loads NCCL: a zmlx built with CUDA runs where libcublas is not installed, with
 * the tile kernel for every product).  Y[n, rows] = X[n, cols] W^T as one cublasGemmEx
 * over bf16 copies of both operands (cuk_deq_bf16: the weight dequantized with deq8's
 * values and rounded to nearest even, the tile kernel's operands; cuk_to_bf16: the
 * activations) with float32 accumulation and output — another summation order of the same
 * bf16 products, held to the tile kernel's error bound by test_cuda_kernels.  The bf16
 * copies live in scratch buffers of the session, grown to the largest product seen.
 */
#include "backend/cuda/cuda_internal.h"

#include <cublas_api.h>
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct zcu_blas_fns {
    cublasStatus_t (*create)(cublasHandle_t *);
    cublasStatus_t (*destroy)(cublasHandle_t);
    cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                              const void *, const void *, cudaDataType, int, const void *, cudaDataType, int,
                              const void *, void *, cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
};

bool zcu_blas_ready(zcu_blas *b) {
    if (b->tried) return b->handle != NULL;
    b->tried = true;
    static const char *const names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !b->lib; i++) b->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!b->lib) return false;
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
        void *p = dlsym(b->lib, syms[i].name);
        ok = p != NULL;
        if (ok) memcpy((char *)f + syms[i].off, &p, sizeof p); /* object -> function pointer */
    }
    cublasHandle_t h = NULL;
    if (ok) ok = f->create(&h) == CUBLAS_STATUS_SUCCESS;
    if (!ok) {
        free(f);
        dlclose(b->lib);
        b->lib = NULL;
        return false;
    }
    b->fns = f;
    b->handle = h;
    return true;
}

void zcu_blas_free(zcu_blas *b) {
    if (b->handle) b->fns->destroy(b->handle);
    if (b->w16) cudaFree(b->w16);
    if (b->x16) cudaFree(b->x16);
    free(b->fns);
    if (b->lib) dlclose(b->lib);
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
        *buf = NULL;
        return zerr_set(e, ZMLX_ERR_LIMIT, "out of GPU memory: %s needs %.1f MiB (%s)", what,
                        (double)bytes / 1048576.0, cudaGetErrorString(err));
    }
    *cap = bytes;
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
    if (st == ZMLX_OK) st = grow(&b->x16, &b->xcap, (size_t)(n * w->cols) * 2, q.st, "the bf16 activations", e);
    if (st != ZMLX_OK) return st;
    CU_TRY(e, cuk_deq_bf16(*w, 0, b->w16, q));
    CU_TRY(e, cuk_to_bf16(x, ldx, n, w->cols, b->x16, q));
    /* column-major: Y^T [rows, n] (ld ldy) = (W viewed [cols, rows], ld cols)^T X^T [cols, n] */
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t rc = b->fns->set_stream(b->handle, q.st);
    if (rc == CUBLAS_STATUS_SUCCESS)
        rc = b->fns->gemm_ex(b->handle, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->rows, (int)n, (int)w->cols, &one, b->w16,
                             CUDA_R_16BF, (int)w->cols, b->x16, CUDA_R_16BF, (int)w->cols, &zero, y, CUDA_R_32F,
                             (int)ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (rc != CUBLAS_STATUS_SUCCESS)
        return zerr_set(e, ZMLX_ERR_BACKEND, "cuBLAS GEMM (%lld x %lld by %lld rows) failed: status %d",
                        (long long)w->rows, (long long)w->cols, (long long)n, (int)rc);
    return ZMLX_OK;
}
