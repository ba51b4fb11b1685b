/*
 * cuda.c — the `cuda` backend table: device probe ("CUDA unavailable: ..." when there is
 * no GPU or driver, never a crash), context (device, stream, kernel attributes), and the
 * whole-step entries of backend.h.  The host-buffer entries (matmul, attention, ...) are
 * not used with a device backend: the model calls model_init / session_* instead.
 */
#include "backend/cuda/cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

zmlx_status zcu_fail(zerr *e, cudaError_t err, const char *what, const char *file, int line,
                     const char *func) {
    const char *base = strrchr(file, '/');
    return zerr_set(e, ZMLX_ERR_BACKEND, "CUDA error in %s (%s:%d): %s: %s", func,
                    base ? base + 1 : file, line, what, cudaGetErrorString(err));
}

static zmlx_status cuda_probe(zerr *e) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess)
        return zerr_set(e, ZMLX_ERR_BACKEND,
                        "CUDA unavailable: %s (--backend cuda needs an NVIDIA GPU and its "
                        "driver; use --backend cpu)", cudaGetErrorString(err));
    if (n < 1)
        return zerr_set(e, ZMLX_ERR_BACKEND,
                        "CUDA unavailable: no CUDA device found (--backend cuda needs an NVIDIA "
                        "GPU; use --backend cpu)");
    return ZMLX_OK;
}

static bool cuda_supports_weight(const zweight *w) {
    return zweight_check(w, NULL, 0) && cuk_kind_ok((int32_t)zweight_kind(w)) && w->cols % 32 == 0;
}

static bool cuda_supports(zdtype dt) {
    return dt == ZDT_F32 || dt == ZDT_F16 || dt == ZDT_BF16;
}

static void cuda_free(void *vc);

/* The device is opened in model_init (which can report why it failed); this only makes
   the context. */
static zmlx_status cuda_init(int threads, void **out) {
    cu_ctx *c = calloc(1, sizeof *c);
    if (!c) return ZMLX_ERR_NOMEM;
    c->device = -1;
    *out = c;
    return ZMLX_OK;
}

static void cuda_free(void *vc) {
    cu_ctx *c = vc;
    if (!c) return;
    if (c->device >= 0) {
        zcu_upload_free(c);
        if (c->stream) cudaStreamDestroy(c->stream);
    }
    free(c);
}

static int cuda_threads(const void *vc) {
    return 1;
}

static zmlx_status cuda_model_init(void *vc, const zmlx_model *m, zerr *e) {
    cu_ctx *c = vc;
    zmlx_status st = cuda_probe(e);
    if (st != ZMLX_OK) return st;
    CU_TRY(e, cudaGetDevice(&c->device));
    struct cudaDeviceProp prop;
    CU_TRY(e, cudaGetDeviceProperties(&prop, c->device));
    snprintf(c->name, sizeof c->name, "%s", prop.name);
    c->sms = prop.multiProcessorCount;
    c->cc_major = prop.major;
    /* programmatic dependent launch: Hopper and later; ZMLX_CUDA_PDL=0 turns it off */
    const char *pdl = getenv("ZMLX_CUDA_PDL");
    c->pdl = prop.major >= 9 && !(pdl && !strcmp(pdl, "0"));
    CU_TRY(e, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    CU_TRY(e, cuk_init());
    c->m = m;
    return zcu_upload(c, m, e);
}

/* Host-buffer entries: a device backend never receives these (the model delegates whole
   steps); they exist so the table is complete, and abort on a programmer error. */
static void cuda_no_host_op(const char *what) {
    fprintf(stderr, "zmlx: internal error: host op %s called on the cuda backend\n", what);
    abort();
}
static void cuda_matmul(void *c, const zmm_job *j, int n) { cuda_no_host_op("matmul"); }
static void cuda_matmul_t(void *c, const zmm_job *j, int n) { cuda_no_host_op("matmul_t"); }
static void cuda_attention(void *c, const zattn_job *j) { cuda_no_host_op("attention"); }
static void cuda_glu(void *c, const zglu_job *j, int n) { cuda_no_host_op("glu"); }
static void cuda_combine(void *c, const zcombine_job *j) { cuda_no_host_op("combine"); }
static void cuda_route(void *c, const zroute_job *j) { cuda_no_host_op("route"); }

const zbackend_ops zbackend_cuda = {
    .name = "cuda",
    .probe = cuda_probe,
    .supports = cuda_supports,
    .supports_weight = cuda_supports_weight,
    .init = cuda_init,
    .free = cuda_free,
    .threads = cuda_threads,
    .matmul = cuda_matmul,
    .matmul_t = cuda_matmul_t,
    .attention = cuda_attention,
    .glu = cuda_glu,
    .combine = cuda_combine,
    .route = cuda_route,
    .model_init = cuda_model_init,
    .session_init = zcu_session_init,
    .session_free = zcu_session_free,
    .session_eval = zcu_session_eval,
};
