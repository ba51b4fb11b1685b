/*
 * cuda.c — the `cuda` backend table: device probe ("CUDA unavailable: ..." when there is
 * no GPU or driver, never a crash), context (device, stream, kernel attributes), and the
 * whole-step entries of backend.h.  The host-buffer entries (matmul, attention, ...) are
 * not used with a device backend: the model calls model_init / session_* instead.
 */
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/ep.h"

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
    zcu_ep_free(c); /* several GPUs: the other contexts, communicators, threads */
    if (c->device >= 0) {
        zcu_upload_free(c);
        if (c->stream) cudaStreamDestroy(c->stream);
    }
    free(c);
}

static int cuda_threads(const void *vc) {
    return 1;
}

/* An integer setting from the environment: def when unset, lo .. hi or an error naming it. */
static zmlx_status env_int(const char *name, int def, int lo, int hi, int *out, zerr *e) {
    const char *v = getenv(name);
    *out = def;
    if (!v || !*v) return ZMLX_OK;
    char *end = NULL;
    const long x = strtol(v, &end, 10);
    if (*end || x < lo || x > hi)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "%s=%s: expected %d .. %d", name, v, lo, hi);
    *out = (int)x;
    return ZMLX_OK;
}

zmlx_status zcu_ctx_open(cu_ctx *c, int device, const zmlx_model *m, zerr *e) {
    zmlx_status st = cuda_probe(e);
    if (st != ZMLX_OK) return st;
    if (device >= 0) CU_TRY(e, cudaSetDevice(device));
    CU_TRY(e, cudaGetDevice(&c->device));
    struct cudaDeviceProp prop;
    CU_TRY(e, cudaGetDeviceProperties(&prop, c->device));
    snprintf(c->name, sizeof c->name, "%s", prop.name);
    c->sms = prop.multiProcessorCount;
    /* programmatic dependent launch: Hopper and later, in a build with their code;
       ZMLX_CUDA_PDL=0 turns it off */
    c->hopper = cuk_hopper_code();
    const char *pdl = getenv("ZMLX_CUDA_PDL");
    c->pdl = c->hopper && !(pdl && !strcmp(pdl, "0"));
    /* measuring knobs: the short-context attention with W_UV's blocks per head (decode.c;
       0 = off), the decode attention's least positions per split and most splits (step.c;
       0 = one per multiprocessor), and (1) the float32 splits of 8 heads a block for graphs
       of at most 2,048 positions instead of the tensor-core splits; (0) the decode's
       attention without its early start (cu_attn.early); (0) the splits converting the float
       queries in every block instead of copying W_UK^T's bf16 ones (cu_attn.q16); (0) the
       chunk's dense products in fast mode on the tile kernel instead of cuBLAS (chunk.c);
       (0) the routed experts' 4-bit products on the tile kernel instead of
       kernels_gemm_q4.cu's (chunk.c); (1) the routed experts' launch routing first on o_proj's
       partial logits where their bound certifies the route (decode.c; off by default: -2%
       on an H200, cuda-log.md), (2) o_proj writing those partials without their use, (3)
       o_proj asking L2 for the router's rows instead */
    st = env_int("ZMLX_CUDA_ATTN_UV", 8, 0, 64, &c->attn_uv_split, e);
    if (st == ZMLX_OK) st = env_int("ZMLX_CUDA_DEC_SPAN", 32, 32, 1 << 20, &c->dec_span, e);
    if (st == ZMLX_OK) st = env_int("ZMLX_CUDA_DEC_SPLITS", 0, 0, 256, &c->dec_splits, e);
    if (st == ZMLX_OK) st = env_int("ZMLX_CUDA_ATTN_HB8", 0, 0, 1, &c->attn_hb8, e);
    if (st == ZMLX_OK) st = env_int("ZMLX_CUDA_DEC_EARLY", 1, 0, 1, &c->dec_early, e);
    if (st == ZMLX_OK) st = env_int("ZMLX_CUDA_DEC_Q16", 1, 0, 1, &c->dec_q16, e);
    if (st == ZMLX_OK) st = env_int("ZMLX_CUDA_ROUTE_CERT", 0, 0, 3, &c->route_cert, e);
    if (st == ZMLX_OK) st = env_int("ZMLX_CUDA_GEMM_BLAS", 1, 0, 1, &c->gemm_blas, e);
    if (st == ZMLX_OK) st = env_int("ZMLX_CUDA_GEMM_Q4", 1, 0, 1, &c->gemm_q4, e);
    if (st != ZMLX_OK) return st;
    CU_TRY(e, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    CU_TRY(e, cuk_init());
    c->m = m;
    return ZMLX_OK;
}

/* One GPU or several (--gpus, a launcher's rank): ep.c opens them and uploads. */
static zmlx_status cuda_model_init(void *vc, const zmlx_model *m, zerr *e) {
    return zcu_ep_model_init(vc, m, e);
}

/* Sessions of a context driving several GPUs go to all of them (ep.c). */
static zmlx_status cuda_session_init(void *vc, int64_t max_pos, void **dev, int64_t *bytes,
                                     zerr *e) {
    cu_ctx *c = vc;
    if (c->group) return zcu_group_session_init(c, max_pos, dev, bytes, e);
    return zcu_session_init(c, max_pos, dev, bytes, e);
}

static void cuda_session_free(void *vc, void *dev) {
    cu_ctx *c = vc;
    if (c->group) zcu_group_session_free(c, dev);
    else zcu_session_free(c, dev);
}

static zmlx_status cuda_session_eval(void *vc, void *dev, const zdev_eval *ev, int64_t *bytes,
                                     zerr *e) {
    cu_ctx *c = vc;
    if (c->group) return zcu_group_session_eval(c, dev, ev, bytes, e);
    return zcu_session_eval(c, dev, ev, bytes, e);
}

static zmlx_status cuda_device_count(int32_t *n, zerr *e) {
    int k = 0;
    CU_TRY(e, cudaGetDeviceCount(&k));
    *n = k;
    return ZMLX_OK;
}

static zmlx_status cuda_dist_id(uint8_t *id, zerr *e) {
    zcu_nccl n;
    zmlx_status st = zcu_nccl_open(&n, e);
    if (st != ZMLX_OK) return st;
    zcu_nccl_id u;
    int rc = n.get_unique_id(&u);
    if (rc) st = zcu_nccl_fail(&n, NULL, rc, "ncclGetUniqueId", __FILE__, __LINE__, e);
    else memcpy(id, u.internal, ZMLX_DIST_ID_BYTES);
    zcu_nccl_close(&n);
    return st;
}

/* The NVIDIA driver's version (/proc/driver/nvidia/version), else the CUDA driver API's. */
static void driver_version(char *out, size_t n) {
    FILE *f = fopen("/proc/driver/nvidia/version", "r");
    char line[512] = "";
    if (f) {
        if (!fgets(line, sizeof line, f)) line[0] = 0;
        fclose(f);
    }
    if (zdev_driver_version(line, out, n)) return;
    int v = 0;
    if (cudaDriverGetVersion(&v) == cudaSuccess) snprintf(out, n, "CUDA %d.%d", v / 1000, v % 1000 / 10);
    else snprintf(out, n, "unknown");
}

static zmlx_status cuda_describe(const int32_t *gpus, int32_t n_gpus, zdev_desc *d, zerr *e) {
    memset(d, 0, sizeof *d);
    int dev = 0;
    if (n_gpus > 0) dev = gpus[0];
    else CU_TRY(e, cudaGetDevice(&dev));
    struct cudaDeviceProp p;
    CU_TRY(e, cudaGetDeviceProperties(&p, dev));
    snprintf(d->name, sizeof d->name, "%.120s", p.name);
    d->memory_bytes = (int64_t)p.totalGlobalMem;
    driver_version(d->driver, sizeof d->driver);
    d->count = n_gpus > 0 ? n_gpus : 1;
    return ZMLX_OK;
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
    .session_init = cuda_session_init,
    .session_free = cuda_session_free,
    .session_eval = cuda_session_eval,
    .device_count = cuda_device_count,
    .dist_id = cuda_dist_id,
    .describe = cuda_describe,
};
