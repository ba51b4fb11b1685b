/*
 * dist_allreduce.c — `zmlx-dist_allreduce`: the time of one expert-parallel all-reduce
 * (the float32 slot buffer of a MoE layer, dist.h) as the decode step runs it: through the
 * engine's NCCL wrapper (backend/cuda/nccl.c), one thread and communicator per GPU, N
 * all-reduces captured in one CUDA graph per GPU and replayed, so the figure is the
 * in-graph cost per all-reduce (no launch overhead), median of the repeats.  Also the eager
 * cost (one launch per all-reduce).  Sizes default to K * d of the models:
 *   glm47-flash  4 x 2048 = 8192 floats (32 KiB)      kimi-k25 / dsv32  8 x 7168 = 57344
 * and a prefill chunk of 128 tokens of each.
 *
 *   zmlx-dist_allreduce [--gpus 0,1] [--floats N,N,...] [--iters 200] [--reps 5]
 *
 * Prints a markdown table, then one JSON line.  Without CUDA: "SKIP: ..." and exit 0.
 */
#include "zmlx.h"

#ifndef ZMLX_HAVE_CUDA
#include <stdio.h>
int main(void) {
    printf("SKIP: built without CUDA\n");
    return 0;
}
#else

#include "backend/cuda/ep.h"

#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIZES 16
#define MAX_REPS 32

typedef struct shared {
    int n, iters, reps, n_sizes;
    size_t sizes[MAX_SIZES];
    zcu_nccl nccl;
    zcu_comm comm[ZMLX_MAX_GPUS];
    int32_t gpus[ZMLX_MAX_GPUS];
    pthread_barrier_t bar;
    double graph_us[MAX_SIZES][MAX_REPS], eager_us[MAX_SIZES][MAX_REPS]; /* rank 0's */
    int failed;
} shared;

typedef struct targ {
    shared *sh;
    int r;
} targ;

#define CK(call)                                                                        \
    do {                                                                                \
        cudaError_t e_ = (call);                                                        \
        if (e_ != cudaSuccess) {                                                        \
            fprintf(stderr, "GPU rank %d: %s: %s\n", a->r, #call, cudaGetErrorString(e_)); \
            a->sh->failed = 1;                                                          \
            return NULL;                                                                \
        }                                                                               \
    } while (0)

static int cmp_d(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static void *rank_main(void *p) {
    targ *a = p;
    shared *sh = a->sh;
    zerr e;
    CK(cudaSetDevice(sh->gpus[a->r]));
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    size_t most = 0;
    for (int i = 0; i < sh->n_sizes; i++) most = sh->sizes[i] > most ? sh->sizes[i] : most;
    float *buf;
    CK(cudaMalloc((void **)&buf, most * sizeof(float)));
    CK(cudaMemsetAsync(buf, 0, most * sizeof(float), st));
    cudaEvent_t t0, t1;
    CK(cudaEventCreate(&t0));
    CK(cudaEventCreate(&t1));
    for (int si = 0; si < sh->n_sizes; si++) {
        const size_t cnt = sh->sizes[si];
        /* eager: one launch per all-reduce */
        for (int rep = 0; rep < sh->reps; rep++) {
            pthread_barrier_wait(&sh->bar);
            CK(cudaEventRecord(t0, st));
            for (int i = 0; i < sh->iters; i++)
                if (zcu_nccl_sum(&sh->nccl, sh->comm[a->r], buf, cnt, st, &e) != ZMLX_OK) {
                    fprintf(stderr, "%s\n", e.msg);
                    sh->failed = 1;
                    return NULL;
                }
            CK(cudaEventRecord(t1, st));
            CK(cudaEventSynchronize(t1));
            float ms;
            CK(cudaEventElapsedTime(&ms, t0, t1));
            if (a->r == 0) sh->eager_us[si][rep] = 1000.0 * ms / sh->iters;
        }
        /* in a graph, as the decode step */
        cudaGraph_t g;
        cudaGraphExec_t ge;
        pthread_barrier_wait(&sh->bar);
        CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
        for (int i = 0; i < sh->iters; i++) zcu_nccl_sum(&sh->nccl, sh->comm[a->r], buf, cnt, st, &e);
        CK(cudaStreamEndCapture(st, &g));
        CK(cudaGraphInstantiate(&ge, g, 0));
        pthread_barrier_wait(&sh->bar);
        CK(cudaGraphLaunch(ge, st)); /* warm-up */
        CK(cudaStreamSynchronize(st));
        for (int rep = 0; rep < sh->reps; rep++) {
            pthread_barrier_wait(&sh->bar);
            CK(cudaEventRecord(t0, st));
            CK(cudaGraphLaunch(ge, st));
            CK(cudaEventRecord(t1, st));
            CK(cudaEventSynchronize(t1));
            float ms;
            CK(cudaEventElapsedTime(&ms, t0, t1));
            if (a->r == 0) sh->graph_us[si][rep] = 1000.0 * ms / sh->iters;
        }
        cudaGraphExecDestroy(ge);
        cudaGraphDestroy(g);
    }
    cudaFree(buf);
    return NULL;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

int main(int argc, char **argv) {
    static shared sh;
    sh.iters = 200;
    sh.reps = 5;
    const char *gpus = "0,1", *floats = "8192,57344,1048576,7340032";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--gpus")) gpus = argv[i + 1];
        else if (!strcmp(argv[i], "--floats")) floats = argv[i + 1];
        else if (!strcmp(argv[i], "--iters")) sh.iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) sh.reps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (sh.iters < 1 || sh.reps < 1 || sh.reps > MAX_REPS) return 2;
    zmlx_dist_params d = {0};
    char err[ZMLX_ERR_MAX];
    if (zmlx_dist_parse_gpus(gpus, &d, err, sizeof err) != ZMLX_OK || d.n_gpus < 2) {
        fprintf(stderr, "--gpus: %s\n", d.n_gpus < 2 ? "give two GPUs or more" : err);
        return 2;
    }
    sh.n = d.n_gpus;
    memcpy(sh.gpus, d.gpus, sizeof sh.gpus);
    for (const char *p = floats; *p && sh.n_sizes < MAX_SIZES; p += strcspn(p, ","), p += *p == ',')
        sh.sizes[sh.n_sizes++] = (size_t)strtoull(p, NULL, 10);
    zerr e;
    if (zcu_nccl_open(&sh.nccl, &e) != ZMLX_OK) {
        printf("SKIP: %s\n", e.msg);
        return 0;
    }
    int rc = sh.nccl.comm_init_all(sh.comm, sh.n, sh.gpus);
    if (rc) {
        zcu_nccl_fail(&sh.nccl, NULL, rc, "ncclCommInitAll", __FILE__, __LINE__, &e);
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    pthread_barrier_init(&sh.bar, NULL, (unsigned)sh.n);
    pthread_t th[ZMLX_MAX_GPUS];
    targ args[ZMLX_MAX_GPUS];
    for (int r = 0; r < sh.n; r++) {
        args[r] = (targ){&sh, r};
        pthread_create(&th[r], NULL, rank_main, &args[r]);
    }
    for (int r = 0; r < sh.n; r++) pthread_join(th[r], NULL);
    if (sh.failed) return 1;
    struct cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, sh.gpus[0]);
    printf("NCCL %d, %d x %s, float32 sum, %d per graph, median of %d\n\n", sh.nccl.version,
           sh.n, prop.name, sh.iters, sh.reps);
    printf("| floats | bytes | in graph us | eager us | algbw GB/s (graph) |\n|---:|---:|---:|---:|---:|\n");
    char json[4096];
    int o = snprintf(json, sizeof json, "JSON {\"gpus\":%d,\"gpu\":\"%s\",\"nccl\":%d,\"sizes\":[",
                     sh.n, prop.name, sh.nccl.version);
    for (int si = 0; si < sh.n_sizes; si++) {
        const double g = median(sh.graph_us[si], sh.reps), ea = median(sh.eager_us[si], sh.reps);
        const double bytes = (double)sh.sizes[si] * 4.0;
        printf("| %zu | %.0f | %.2f | %.2f | %.1f |\n", sh.sizes[si], bytes, g, ea,
               bytes / (g * 1e3));
        if (o > 0 && (size_t)o < sizeof json)
            o += snprintf(json + o, sizeof json - (size_t)o,
                          "%s{\"floats\":%zu,\"graph_us\":%.3f,\"eager_us\":%.3f}", si ? "," : "",
                          sh.sizes[si], g, ea);
    }
    printf("\n%s]}\n", json);
    for (int r = 0; r < sh.n; r++) sh.nccl.comm_destroy(sh.comm[r]);
    return 0;
}
#endif
