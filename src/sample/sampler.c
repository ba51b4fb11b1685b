/*
 * sampler.c — choosing the next token: greedy (temperature 0, ties to the lowest id),
 * or temperature + top-k + top-p (nucleus) sampling with a seeded generator
 * (xoshiro256**), so the same seed gives the same output.  Buffers are planned at
 * init; sampling allocates nothing.
 */
#include "zmlx.h"

#include <math.h>
#include <stdlib.h>

typedef struct cand {
    float v;
    int32_t id;
} cand;

struct zmlx_sampler {
    zmlx_sampler_params p;
    int32_t vocab;
    uint64_t s[4];
    cand *c; /* [vocab] */
};

zmlx_sampler_params zmlx_sampler_default_params(void) {
    return (zmlx_sampler_params){.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .seed = 0};
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

zmlx_status zmlx_sampler_init(const zmlx_sampler_params *params, int32_t vocab,
                              zmlx_sampler **out) {
    *out = NULL;
    zmlx_sampler_params p = params ? *params : zmlx_sampler_default_params();
    if (vocab <= 0 || !(p.temperature >= 0.0f) || p.top_k < 0 || !(p.top_p > 0.0f) ||
        p.top_p > 1.0f)
        return ZMLX_ERR_INVALID_ARG;
    zmlx_sampler *sm = calloc(1, sizeof *sm);
    if (!sm) return ZMLX_ERR_NOMEM;
    sm->c = malloc((size_t)vocab * sizeof *sm->c);
    if (!sm->c) {
        free(sm);
        return ZMLX_ERR_NOMEM;
    }
    sm->p = p;
    sm->vocab = vocab;
    uint64_t x = p.seed;
    for (int i = 0; i < 4; i++) sm->s[i] = splitmix(&x);
    *out = sm;
    return ZMLX_OK;
}

void zmlx_sampler_free(zmlx_sampler *sm) {
    if (!sm) return;
    free(sm->c);
    free(sm);
}

static int by_value_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int32_t zmlx_logits_argmax(const float *logits, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

int zmlx_sampler_params_greedy(const zmlx_sampler_params *p) {
    return p->temperature == 0.0f || p->top_k == 1;
}

int32_t zmlx_sampler_sample(zmlx_sampler *sm, const float *logits) {
    const zmlx_sampler_params *p = &sm->p;
    if (zmlx_sampler_params_greedy(p)) return zmlx_logits_argmax(logits, sm->vocab);
    int32_t n = sm->vocab, best = zmlx_logits_argmax(logits, n);
    const double mx = logits[best];
    if (isinf(mx)) return best; /* an infinite logit takes all the mass */
    /* scale after subtracting the max, in double: a tiny temperature cannot overflow */
    for (int32_t i = 0; i < n; i++)
        sm->c[i] = (cand){(float)(((double)logits[i] - mx) / (double)p->temperature), i};
    qsort(sm->c, (size_t)n, sizeof *sm->c, by_value_desc);
    if (p->top_k > 0 && p->top_k < n) n = p->top_k;
    /* softmax over the survivors (the best is 0, so exp <= 1), then cut the nucleus */
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        sm->c[i].v = (float)exp((double)sm->c[i].v);
        sum += sm->c[i].v;
    }
    if (p->top_p < 1.0f) {
        double acc = 0.0;
        for (int32_t i = 0; i < n; i++) {
            acc += sm->c[i].v / sum;
            if (acc >= p->top_p) {
                n = i + 1;
                break;
            }
        }
        sum = 0.0;
        for (int32_t i = 0; i < n; i++) sum += sm->c[i].v;
    }
    double r = (double)(next_u64(sm->s) >> 11) * (1.0 / 9007199254740992.0) * sum;
    double acc = 0.0;
    for (int32_t i = 0; i < n; i++) {
        acc += sm->c[i].v;
        if (r < acc) return sm->c[i].id;
    }
    return sm->c[n - 1].id;
}
