/*
 * st_write.h — writing safetensors checkpoints the way mlx-lm saves them, so that
 * mlx-lm, zmlx (io/safetensors.h) and the Hugging Face reader all load the result.
 *
 * One file:
 *   +----------------+------------------------------------+------------------------+
 *   | u64 LE: N      | N bytes: JSON header, space-padded | data, tensors in header |
 *   |                | so that 8 + N is a multiple of 8   | (name) order, no gaps   |
 *   +----------------+------------------------------------+------------------------+
 *   Header: {"__metadata__":{"format":"mlx"},"<name>":{"data_offsets":[b,e],
 *            "dtype":"BF16","shape":[..]},...}, keys sorted, compact, as mlx writes
 *   it (mlx does not pad the header; the safetensors reference does, and aligned data
 *   lets a reader use the mapped tensors in place).
 *
 * The writer knows every tensor up front, so the data may arrive in any order and in
 * pieces (zst_writer_put writes at the tensor's offset): a quantizer can emit the
 * packed words, scales and biases of a row block together.  The file is written
 * under a temporary name in the destination directory and renamed into place by
 * zst_writer_finish once every byte has been written; zst_writer_abort removes it.
 *
 * Sharding follows mlx-lm's save_model: tensors in module order fill shards of at
 * most 5 GiB (a tensor bigger than that gets a shard of its own), named
 * model.safetensors when there is one shard and model-0000k-of-0000N.safetensors
 * otherwise, plus model.safetensors.index.json (always).
 */
#ifndef ZMLX_IO_ST_WRITE_H
#define ZMLX_IO_ST_WRITE_H

#include "core/dtype.h"
#include "core/err.h"
#include "io/safetensors.h"

#include <stddef.h>
#include <stdint.h>

#define ZST_SHARD_MAX_BYTES (5ull << 30) /* mlx-lm MAX_FILE_SIZE_GB = 5, as 5 << 30 */

/* One tensor to write. */
typedef struct zst_wspec {
    const char *name;
    zdtype dtype;
    int ndim; /* 0 .. ZST_MAX_DIMS */
    int64_t shape[ZST_MAX_DIMS];
} zst_wspec;

/* prod(shape) * dtype size; 0 on overflow or a negative dimension. */
uint64_t zst_wspec_nbytes(const zst_wspec *t);

typedef struct zst_writer zst_writer;

/*
 * Create `path` (through a temporary file next to it) for the n tensors of `t`
 * (names unique, copied) with metadata {"format": "mlx"}.  The header is written now.
 */
zmlx_status zst_writer_open(const char *path, const zst_wspec *t, size_t n, zst_writer **out,
                            zerr *e);
/* Write n bytes at byte `offset` of tensor i's data. */
zmlx_status zst_writer_put(zst_writer *w, size_t i, uint64_t offset, const void *data, size_t n,
                           zerr *e);
/* Check that every tensor got all its bytes, flush, close and rename into place; frees w
   (on failure too, after removing the temporary file). */
zmlx_status zst_writer_finish(zst_writer *w, zerr *e);
/* Close and remove the temporary file; frees w.  NULL is ignored. */
void zst_writer_abort(zst_writer *w);

/*
 * mlx-lm's make_shards: tensor k (in order) starts a new shard when the current one
 * is empty-less-than-nothing or adding it would exceed max_bytes.  Writes shard_of[k]
 * and returns the number of shards (0 when n == 0).
 */
int zst_plan_shards(const uint64_t *nbytes, size_t n, uint64_t max_bytes, int *shard_of);
/* "model.safetensors" (count == 1) or "model-%05d-of-%05d.safetensors" (shard + 1). */
void zst_shard_name(char *buf, size_t n, int shard, int count);

/*
 * model.safetensors.index.json as mlx-lm writes it (json.dump, indent 4):
 * {"metadata": {"total_size": .., "total_parameters": ..}, "weight_map": {name: shard
 * file, sorted by name}}.  Written to a temporary file and renamed.
 */
zmlx_status zst_write_index(const char *path, const char *const *names, const int *shard_of,
                            size_t n, int n_shards, uint64_t total_size,
                            uint64_t total_parameters, zerr *e);

/* Write `len` bytes to `path` through a temporary file in the same directory + rename. */
zmlx_status zst_write_file_atomic(const char *path, const void *data, size_t len, zerr *e);

#endif
