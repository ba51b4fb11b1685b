/*
 * owned.c — memory the loader makes and the model owns: the biases of compressed-tensors
 * int weights, weights dequantized at load, the rebuilt MLA kv_b of split MLX
 * checkpoints.  A list of large zeroed chunks carved in 64-byte aligned pieces, freed
 * all at once with the model (no per-piece free).  Not for the decode loop.
 */
#include "model/model.h"

#include <stdlib.h>

#define OWNED_CHUNK ((size_t)16 << 20)
#define OWNED_ALIGN ((size_t)64)

struct zowned {
    zowned *next;
    size_t cap, used;
    void *base; /* aligned start of the chunk's data */
    void *mem;  /* what calloc returned */
};

void *zmodel_alloc(zmlx_model *m, size_t bytes) {
    if (bytes > SIZE_MAX / 2) return NULL;
    bytes = (bytes + OWNED_ALIGN - 1) & ~(OWNED_ALIGN - 1);
    zowned *h = m->owned;
    if (!h || h->cap - h->used < bytes) {
        size_t cap = bytes > OWNED_CHUNK ? bytes : OWNED_CHUNK;
        zowned *c = calloc(1, sizeof *c);
        void *mem = c && cap <= SIZE_MAX - OWNED_ALIGN ? calloc(1, cap + OWNED_ALIGN) : NULL;
        if (!mem) {
            free(c);
            return NULL;
        }
        c->mem = mem;
        c->base = (void *)(((uintptr_t)mem + OWNED_ALIGN - 1) & ~(uintptr_t)(OWNED_ALIGN - 1));
        c->cap = cap;
        /* a big piece gets a chunk of its own behind the current one, which keeps filling */
        if (h && bytes > OWNED_CHUNK) {
            c->next = h->next;
            h->next = c;
            c->used = bytes;
            return c->base;
        }
        c->next = h;
        m->owned = h = c;
    }
    void *p = (char *)h->base + h->used;
    h->used += bytes;
    return p;
}

int64_t zmodel_owned_bytes(const zmlx_model *m) {
    int64_t n = 0;
    for (const zowned *c = m->owned; c; c = c->next) n += (int64_t)c->used;
    return n;
}

void zmodel_owned_free(zowned *c) {
    while (c) {
        zowned *next = c->next;
        free(c->mem);
        free(c);
        c = next;
    }
}
