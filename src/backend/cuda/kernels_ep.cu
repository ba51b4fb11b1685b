/*
 * kernels_ep.cu — the one kernel expert parallelism adds to the step: a route's expert
 * ids mapped to this rank's slice (ep.h).  The expert products then skip a slot whose
 * local id is -1 and write +0.0 there (cuk_matvec), which is what the all-reduce of the
 * slot buffer needs (dist.h).
 */
#include "backend/cuda/ep.h"

__global__ void k_ep_localize(const int32_t *idx, int64_t n, int32_t e0, int32_t ne,
                              int32_t *lidx) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int32_t l = idx[i] - e0;
    lidx[i] = l >= 0 && l < ne ? l : -1;
}

extern "C" cudaError_t cuk_ep_localize(const int32_t *idx, int64_t n, int32_t e0, int32_t ne,
                                       int32_t *lidx, cudaStream_t st) {
    if (n <= 0) return cudaSuccess;
    k_ep_localize<<<(unsigned)((n + 255) / 256), 256, 0, st>>>(idx, n, e0, ne, lidx);
    return cudaGetLastError();
}
