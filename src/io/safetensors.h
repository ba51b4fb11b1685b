/*
 * safetensors.h — reading Hugging Face / MLX safetensors checkpoints.
 *
 * Two layers, kept apart so the parser can be fuzzed without files:
 *   zst_parse()   validates one file image already in memory (header length, JSON,
 *                 dtype names, shapes, offsets, byte counts, overlaps) and lists its
 *                 tensors; it trusts nothing it reads.
 *   zst_open()    maps a checkpoint directory (model.safetensors, or the shards named
 *                 by model.safetensors.index.json, or every *.safetensors) read-only
 *                 and parses each file; tensors are then looked up by name.
 *
 * File layout:
 *   +----------------+----------------------------+---------------------------+
 *   | u64 LE: N      | N bytes of UTF-8 JSON      | data section (tensors)    |
 *   +----------------+----------------------------+---------------------------+
 *   JSON: { "__metadata__": {str: str}?, "<name>": {"dtype": "BF16",
 *           "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ... }
 *   Offsets are relative to the start of the data section; end - begin must equal
 *   prod(shape) * sizeof(dtype); ranges may not overlap or leave the file.
 */
#ifndef ZMLX_IO_SAFETENSORS_H
#define ZMLX_IO_SAFETENSORS_H

#include "core/dtype.h"
#include "core/err.h"

#include <stddef.h>
#include <stdint.h>

#define ZST_MAX_DIMS 8
#define ZST_MAX_HEADER (100u << 20) /* 100 MiB, the limit the reference library uses */

typedef struct zst_tensor {
    char *name;                   /* NUL-terminated, valid UTF-8 */
    zdtype dtype;
    int ndim;                     /* 0 .. ZST_MAX_DIMS */
    int64_t shape[ZST_MAX_DIMS];
    uint64_t nbytes;              /* prod(shape) * dtype size */
    const uint8_t *data;          /* points into the file image */
    int shard;                    /* index of the file it came from */
} zst_tensor;

/* One parsed file image: owns the tensor list, not the bytes. */
typedef struct zst_header {
    zst_tensor *tensors; /* sorted by name */
    size_t n_tensors;
    uint64_t data_start; /* 8 + N */
} zst_header;

/*
 * Parse and validate a whole file image [data, data+size).  `fname` is only used in
 * error messages.  On success the tensors' data pointers point into `data`.
 */
zmlx_status zst_parse(const uint8_t *data, size_t size, const char *fname, zst_header *out,
                      zerr *e);
void zst_header_free(zst_header *h);

/* A checkpoint directory, mapped. */
typedef struct zst_archive zst_archive;

zmlx_status zst_open(const char *dir, zst_archive **out, zerr *e);
void zst_close(zst_archive *a);

/* NULL if absent. */
const zst_tensor *zst_find(const zst_archive *a, const char *name);
size_t zst_count(const zst_archive *a);
const zst_tensor *zst_at(const zst_archive *a, size_t i);
/* The path of shard i (for error messages). */
const char *zst_shard_path(const zst_archive *a, int shard);

#endif
