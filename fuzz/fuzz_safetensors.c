/*
 * fuzz_safetensors.c — libFuzzer target for zst_parse(): any byte string is a
 * candidate file image; the parser must refuse it cleanly or list tensors whose
 * ranges lie inside it.  Seeds: fuzz/corpus/safetensors (made by make_seeds.py).
 */
#include "io/safetensors.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    zst_header h;
    zerr e;
    if (zst_parse(data, size, "fuzz", &h, &e) != ZMLX_OK) {
        /* A refusal leaves nothing to free and one line of text behind. */
        if (h.tensors || h.n_tensors || !memchr(e.msg, '\0', sizeof e.msg)) abort();
        for (const char *p = e.msg; *p; p++)
            if ((unsigned char)*p < 0x20) abort();
        return 0;
    }
    /* Every accepted tensor must lie inside the image: touch its first and last byte. */
    volatile unsigned sum = 0; /* volatile: keeps the reads ASan checks */
    for (size_t i = 0; i < h.n_tensors; i++) {
        const zst_tensor *t = &h.tensors[i];
        if (t->data < data + h.data_start || t->nbytes > (uint64_t)(data + size - t->data)) abort();
        if (i > 0 && strcmp(h.tensors[i - 1].name, t->name) >= 0) abort();
        if (t->nbytes) sum += t->data[0] + t->data[t->nbytes - 1];
    }
    (void)sum;
    zst_header_free(&h);
    return 0;
}
