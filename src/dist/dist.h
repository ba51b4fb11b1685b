/*
 * dist.h — expert parallelism over several GPUs, the parts that need no GPU:
 *   part.c    which rank holds which routed experts (contiguous or round-robin slices;
 *             everything else is replicated), what a rank's slice costs in memory and
 *             whether it fits a GPU, with the numbers when it does not
 *   gpus.c    `--gpus` lists, rank / world / device-count checks, the NCCL id as text
 *   ep_ref.c  the host reference of the exact expert-parallel combine that the device
 *             path (backend/cuda/ep.c) follows, and its all-reduce emulation
 *   api.c     the public zmlx_dist_* entry points (backend table entries underneath)
 * Not here: the NCCL communicator (backend/cuda/nccl.c) and process launch (the MPI
 * launcher in src/cli/mpi/, the environment read by the CLI).
 *
 * Why slots (SYSTEM.md section 1): one GPU sums a token's K routed outputs in route order
 * (biased score descending, ties to the lower index).  Summing per-rank partial sums with
 * an all-reduce would change that order.  Instead every rank writes the outputs of the
 * experts it holds into their route slots of a [n, K, d] buffer that is +0.0 elsewhere;
 * one all-reduce (sum) of that buffer is exact (each element has at most one non-zero
 * term, and x + 0 == x), and every rank then combines the K slots in route order: the
 * one-GPU arithmetic, bit for bit.  The only value an all-reduce can change is the sign
 * of a zero (-0 + +0 = +0); the combine starts its accumulator at +0.0, so a zero's sign
 * never reaches its result (acc + -0 == acc + +0 for every acc that is not -0, and an
 * accumulator started at +0 is never -0).
 */
#ifndef ZMLX_DIST_DIST_H
#define ZMLX_DIST_DIST_H

#include "core/err.h"
#include "io/config.h"
#include "model/weight.h"
#include "zmlx.h"

#include <stdbool.h>
#include <stdint.h>

#define ZDIST_MAX_RANKS 4096 /* ranks of one run (processes x GPUs), checked */

/* ---------------------------------------------------------------- partition (part.c) */

typedef enum zdist_scheme {
    ZDIST_CONTIGUOUS = 0, /* rank r holds experts [first(r), first(r) + count(r)) */
    ZDIST_ROUND_ROBIN,    /* rank r holds experts r, r + R, r + 2R, ... */
} zdist_scheme;

typedef struct zdist_part {
    int32_t n_experts, n_ranks;
    zdist_scheme scheme;
} zdist_part;

/* n_ranks in [1, ZDIST_MAX_RANKS] and no more ranks than experts (else a rank would hold
   none: ZMLX_ERR_INVALID_ARG saying so).  A dense model (0 experts) takes one rank. */
zmlx_status zdist_part_init(zdist_part *p, int32_t n_experts, int32_t n_ranks,
                            zdist_scheme scheme, zerr *e);
int32_t zdist_owner(const zdist_part *p, int32_t expert);
/* Index of `expert` in its owner's slice (its place in that rank's stacked experts). */
int32_t zdist_local(const zdist_part *p, int32_t expert);
int32_t zdist_count(const zdist_part *p, int32_t rank);
/* The i-th expert (i < zdist_count) of rank's slice, ascending. */
int32_t zdist_expert(const zdist_part *p, int32_t rank, int32_t i);
/* Contiguous slices: rank's first expert. */
int32_t zdist_first(const zdist_part *p, int32_t rank);
const char *zdist_scheme_name(zdist_scheme s);

/*
 * What one rank holds, in bytes.  Matrices are sized with the layout of a template weight
 * (dense dtype, or affine/mxfp4 bits, group and scale dtype; rows/cols ignored): `expert`
 * for the routed experts, `other` for every other matrix (embeddings, attention, the
 * deepseek_v32 indexer, dense MLPs, routers, shared experts, lm_head).  Norms and biases
 * are float32, as the backends keep them.
 */
typedef struct zdist_bytes {
    int64_t replicated;  /* weights every rank holds */
    int64_t experts;     /* this rank's routed experts, all MoE layers */
    int64_t expert_one;  /* one routed expert of one layer */
    int32_t n_experts;   /* routed experts per MoE layer on this rank */
    int32_t moe_layers;
    int64_t ctx;         /* positions the cache estimate assumes */
    int64_t cache;       /* the latent KV cache at ctx positions */
    int64_t buffers;     /* a session's planned buffers (estimate) */
    int64_t total;
} zdist_bytes;

void zdist_rank_bytes(const zmlx_config *c, const zweight *expert, const zweight *other,
                      int kv_elem, int64_t ctx, const zdist_part *p, int32_t rank,
                      zdist_bytes *out);

/* Where a rank runs, for messages: "rank 1 of 2 (GPU 1, NVIDIA H100 80GB HBM3)". */
typedef struct zdist_where {
    int32_t rank, n_ranks, gpu;
    const char *gpu_name; /* or NULL */
} zdist_where;

/*
 * Does the slice of b fit `avail` bytes (what the GPU has free)?  ZMLX_OK, or
 * ZMLX_ERR_LIMIT with the whole account: replicated + experts (count x layers) + cache +
 * buffers against what is free, and the smallest number of such GPUs that would hold
 * the model (or that none would: the replicated part alone is too big).
 */
zmlx_status zdist_fit(const zmlx_config *c, const zweight *expert, const zweight *other,
                      int kv_elem, int64_t ctx, const zdist_part *p, const zdist_where *w,
                      int64_t avail, zerr *e);

/* ---------------------------------------------------------------- ranks and GPUs (gpus.c) */

/* The distribution a run asks for, checked: a one-process list (world 0: 0..ZMLX_MAX_GPUS
   distinct ordinals) or one process of a world (0 <= rank < world <= ZDIST_MAX_RANKS,
   exactly one GPU).  *n_ranks = ranks in the run (1 when nothing was asked). */
zmlx_status zdist_check_params(const zmlx_dist_params *d, int32_t *n_ranks, zerr *e);
/* zdist_check_params, and that GPUs were asked of the cuda backend (zmlx_model_load). */
zmlx_status zdist_check_run(const zmlx_model_params *p, zerr *e);
/* Every ordinal of d below `device_count` (the machine's CUDA devices). */
zmlx_status zdist_check_devices(const zmlx_dist_params *d, int32_t device_count, zerr *e);
/* The id as 2 * ZMLX_DIST_ID_BYTES lowercase hex digits (+ NUL), and back (false if the
   text is not exactly that). */
void zdist_id_to_hex(const uint8_t id[ZMLX_DIST_ID_BYTES], char hex[2 * ZMLX_DIST_ID_BYTES + 1]);
bool zdist_id_from_hex(const char *hex, uint8_t id[ZMLX_DIST_ID_BYTES]);
/* The ordinals of d as "0,1,2" (for messages); writes at most n bytes. */
void zdist_gpus_str(const zmlx_dist_params *d, char *buf, size_t n);

/* ---------------------------------------------------------------- exact combine (ep_ref.c) */

/*
 * Rank `rank`'s slot buffer for n tokens: slots[(t*K + k)*d + i] = y[(t*K + k)*d + i] when
 * the rank holds expert idx[t*K + k], else +0.0.  y holds the rank's own experts' outputs
 * in route slots (other rows are not read).
 */
void zdist_slots_fill(const zdist_part *p, int32_t rank, const int32_t *idx, int64_t n,
                      int32_t K, int64_t d, const float *y, float *slots);
/* An all-reduce (sum) emulated: out[i] = sum of bufs[order[0]][i], bufs[order[1]][i], ...
   left to right (order: a permutation of the ranks, as a ring or tree might take them). */
void zdist_allreduce_emu(const float *const *bufs, const int32_t *order, int32_t n_ranks,
                         int64_t len, float *out);
/*
 * The combine every rank runs after the all-reduce (moe.c's, in route order):
 *   acc = +0.0;  acc += w[t*K + k] * slots[t*K + k]  for k = 0 .. K-1;  acc += sd[t] (if sd)
 *   f[t] = acc
 */
void zdist_combine(const float *w, const float *slots, const float *sd, int64_t n, int32_t K,
                   int64_t d, float *f);

#endif
