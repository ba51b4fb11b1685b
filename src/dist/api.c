/*
 * api.c — the public zmlx_dist_* calls that need a device: whether a GPU is there and a
 * fresh NCCL unique id.  Both go through the cuda backend's table (device_count,
 * dist_id), so a build without CUDA answers "CUDA unavailable" instead of failing to link.
 */
#include "backend/backend.h"
#include "dist/dist.h"

/* The cuda table and its probe, or why there is none. */
static zmlx_status cuda_table(const zbackend_ops **out, zerr *e) {
    const zbackend_ops *be = zbackend_get(ZMLX_BACKEND_CUDA);
    *out = be;
    if (!be || !be->device_count || !be->dist_id)
        return zerr_set(e, ZMLX_ERR_BACKEND,
                        "CUDA unavailable: this zmlx was built without CUDA (no nvcc at build "
                        "time); several GPUs need the cuda backend");
    return be->probe ? be->probe(e) : ZMLX_OK;
}

zmlx_status zmlx_dist_check_gpu(int32_t gpu, char *err, size_t err_size) {
    zerr e = {{0}};
    const zbackend_ops *be;
    int32_t n = 0;
    zmlx_status st = cuda_table(&be, &e);
    if (st == ZMLX_OK) st = be->device_count(&n, &e);
    if (st == ZMLX_OK) {
        zmlx_dist_params d = {.n_gpus = 1, .gpus = {gpu}};
        st = gpu < 0 ? zerr_set(&e, ZMLX_ERR_INVALID_ARG, "GPU %d: negative ordinal", gpu)
                     : zdist_check_devices(&d, n, &e);
    }
    if (st != ZMLX_OK) zerr_copy(&e, err, err_size);
    return st;
}

zmlx_status zmlx_dist_unique_id(uint8_t id[ZMLX_DIST_ID_BYTES], char *err, size_t err_size) {
    zerr e = {{0}};
    const zbackend_ops *be;
    zmlx_status st = cuda_table(&be, &e);
    if (st == ZMLX_OK) st = be->dist_id(id, &e);
    if (st != ZMLX_OK) zerr_copy(&e, err, err_size);
    return st;
}
