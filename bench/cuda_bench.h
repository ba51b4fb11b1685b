/*
 * cuda_bench.h — what the GPU benchmark tools share: CK, the check of a CUDA runtime call
 * (on failure: where, the call and the runtime's message, then exit 1 — a benchmark has
 * nothing to unwind), and timing by CUDA events: time_it (a warm-up of three, then the
 * median and best of the repeats) and time_graph (launches captured into one graph as
 * decode runs them, PDL after the first where asked; the time per launch).
 */
#ifndef ZMLX_BENCH_CUDA_BENCH_H
#define ZMLX_BENCH_CUDA_BENCH_H

#include "backend/cuda/kernels.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CK(call)                                                                       \
    do {                                                                               \
        cudaError_t e_ = (call);                                                       \
        if (e_ != cudaSuccess) {                                                       \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,              \
                    cudaGetErrorString(e_));                                           \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

struct timing {
    double med_ms, best_ms;
};

template <typename F> static timing time_it(F f, int reps, cudaStream_t st) {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) f(i); /* warm-up */
    CK(cudaStreamSynchronize(st));
    std::vector<double> ms;
    for (int i = 0; i < reps; i++) {
        CK(cudaEventRecord(a, st));
        f(i);
        CK(cudaEventRecord(b, st));
        CK(cudaEventSynchronize(b));
        float t;
        CK(cudaEventElapsedTime(&t, a, b));
        ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return {ms[ms.size() / 2], ms[0]};
}

/* f(i, q) for i < n captured into one graph (launch i > 0 with PDL where the GPU has
   it), replayed; the time per launch. */
template <typename F> static timing time_graph(F f, int n, int reps, bool pdl, bool fast, cudaStream_t st) {
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < n; i++) f(i, cu_q{st, pdl && i > 0, fast});
    CK(cudaStreamEndCapture(st, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    timing t = time_it([&](int) { CK(cudaGraphLaunch(ge, st)); }, reps, st);
    CK(cudaGraphExecDestroy(ge));
    CK(cudaGraphDestroy(g));
    t.med_ms /= n, t.best_ms /= n;
    return t;
}

#endif
