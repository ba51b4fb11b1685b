/*
 * vocab.c — the two hash tables of the tokenizer: strings -> ids (vocabulary, added
 * tokens) and id pairs -> (rank, merged id) (BPE merges).  Open addressing with linear
 * probing, power-of-two sizes, no deletion.  Not thread-safe to build; read-only after.
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

static uint64_t tok_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

void tok_strmap_free(tok_strmap *m) {
    free(m->pool);
    free(m->ents);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static int tok_strmap_rehash(tok_strmap *m, size_t size) {
    uint32_t *slots = calloc(size, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < m->n_ents; i++) {
        const tok_strent *en = &m->ents[i];
        size_t j = tok_hash(m->pool + en->off, en->len) & (size - 1);
        while (slots[j])
            j = (j + 1) & (size - 1);
        slots[j] = (uint32_t)(i + 1);
    }
    free(m->slots);
    m->slots = slots;
    m->mask = size - 1;
    return 0;
}

int64_t tok_strmap_find(const tok_strmap *m, const char *s, size_t n) {
    if (!m->slots) return -1;
    size_t j = tok_hash(s, n) & m->mask;
    for (;;) {
        uint32_t k = m->slots[j];
        if (!k) return -1;
        const tok_strent *en = &m->ents[k - 1];
        if (en->len == n && memcmp(m->pool + en->off, s, n) == 0) return (int64_t)(k - 1);
        j = (j + 1) & m->mask;
    }
}

int32_t tok_strmap_get(const tok_strmap *m, const char *s, size_t n) {
    int64_t k = tok_strmap_find(m, s, n);
    return k < 0 ? -1 : m->ents[k].val;
}

int64_t tok_strmap_put(tok_strmap *m, const char *s, size_t n, int32_t val) {
    int64_t k = tok_strmap_find(m, s, n);
    if (k >= 0) {
        m->ents[k].val = val;
        return k;
    }
    /* pool offsets and lengths are 32-bit; entry indices must fit the slots */
    if (n >= UINT32_MAX || m->pool_len > UINT32_MAX - n - 1 || m->n_ents >= UINT32_MAX - 1)
        return -1;
    if ((m->n_ents + 1) * 2 > (m->slots ? m->mask + 1 : 0)) {
        size_t size = m->slots ? (m->mask + 1) * 2 : 64;
        if (tok_strmap_rehash(m, size)) return -1;
    }
    if (tok_grow((void **)&m->ents, &m->cap_ents, m->n_ents + 1, sizeof *m->ents)) return -1;
    if (tok_grow((void **)&m->pool, &m->pool_cap, m->pool_len + n + 1, 1)) return -1;
    memcpy(m->pool + m->pool_len, s, n);
    m->pool[m->pool_len + n] = '\0'; /* so contents can be printed */
    tok_strent *en = &m->ents[m->n_ents];
    en->off = (uint32_t)m->pool_len;
    en->len = (uint32_t)n;
    en->val = val;
    m->pool_len += n + 1;
    size_t j = tok_hash(s, n) & m->mask;
    while (m->slots[j])
        j = (j + 1) & m->mask;
    m->slots[j] = (uint32_t)(m->n_ents + 1);
    return (int64_t)m->n_ents++;
}

/* ------------------------------------------------------------ merges */

static uint64_t tok_pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

int tok_mergemap_init(tok_mergemap *m, size_t expected) {
    size_t size = 64;
    while (size < expected * 2) {
        if (size > SIZE_MAX / 32) return -1;
        size *= 2;
    }
    memset(m, 0, sizeof *m);
    m->slots = malloc(size * sizeof *m->slots);
    if (!m->slots) return -1;
    for (size_t i = 0; i < size; i++)
        m->slots[i].key = UINT64_MAX;
    m->mask = size - 1;
    return 0;
}

void tok_mergemap_free(tok_mergemap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* The caller sized the table for every pair it inserts (init's `expected`). */
void tok_mergemap_put(tok_mergemap *m, int32_t a, int32_t b, uint32_t rank, int32_t id) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t j = tok_pair_hash(key) & m->mask;
    while (m->slots[j].key != UINT64_MAX && m->slots[j].key != key)
        j = (j + 1) & m->mask;
    if (m->slots[j].key == UINT64_MAX) m->n++;
    /* a later merge of the same pair replaces the earlier one */
    m->slots[j] = (tok_merge_slot){key, rank, id};
}

int tok_mergemap_get(const tok_mergemap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *id) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (size_t j = tok_pair_hash(key) & m->mask;; j = (j + 1) & m->mask) {
        const tok_merge_slot *sl = &m->slots[j];
        if (sl->key == key) {
            *rank = sl->rank;
            *id = sl->id;
            return 1;
        }
        if (sl->key == UINT64_MAX) return 0;
    }
}
