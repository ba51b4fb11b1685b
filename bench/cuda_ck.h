/*
 * cuda_ck.h — the GPU benchmark tools' check of a CUDA runtime call: on failure, print
 * where, the call and the runtime's message, and exit 1 (a benchmark has nothing to
 * unwind).
 */
#ifndef ZMLX_BENCH_CUDA_CK_H
#define ZMLX_BENCH_CUDA_CK_H

#include <cstdio>
#include <cstdlib>

#define CK(call)                                                                       \
    do {                                                                               \
        cudaError_t e_ = (call);                                                       \
        if (e_ != cudaSuccess) {                                                       \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,              \
                    cudaGetErrorString(e_));                                           \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#endif
