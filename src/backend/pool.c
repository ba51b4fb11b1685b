/* pool.c — the thread pool of pool.h: one job slot, a generation counter, spin-then-sleep. */
#include "backend/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN_ITERS 20000

typedef struct worker {
    struct zpool *pool;
    int index;
    pthread_t thread;
} worker;

struct zpool {
    int n_threads;
    worker *workers; /* n_threads - 1 */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint_fast64_t generation; /* bumped once per region */
    atomic_int_fast64_t next_task;
    atomic_int active;               /* workers still inside the current region */
    atomic_bool quit;
    zpool_fn fn;
    void *arg;
    int64_t n_tasks;
};

static void drain(zpool *p, int thread) {
    for (;;) {
        int64_t t = atomic_fetch_add(&p->next_task, 1);
        if (t >= p->n_tasks) break;
        p->fn(p->arg, t, thread);
    }
}

static void *worker_main(void *vw) {
    worker *w = vw;
    zpool *p = w->pool;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g;
        int spins = 0;
        while ((g = atomic_load(&p->generation)) == seen && !atomic_load(&p->quit)) {
            if (++spins < SPIN_ITERS) continue;
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit)) return NULL;
        seen = g;
        drain(p, w->index);
        atomic_fetch_sub(&p->active, 1);
    }
}

int zpool_online_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

zmlx_status zpool_init(int n_threads, zpool **out) {
    *out = NULL;
    if (n_threads < 1) n_threads = 1;
    zpool *p = calloc(1, sizeof *p);
    if (!p) return ZMLX_ERR_NOMEM;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            zpool_free(p);
            return ZMLX_ERR_NOMEM;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            p->workers[i].pool = p;
            p->workers[i].index = i + 1;
            if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i])) {
                p->n_threads = i + 1; /* threads started so far, for zpool_free */
                zpool_free(p);
                return ZMLX_ERR_NOMEM;
            }
        }
    }
    *out = p;
    return ZMLX_OK;
}

void zpool_free(zpool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads - 1 && p->workers; i++) pthread_join(p->workers[i].thread, NULL);
    free(p->workers);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

int zpool_threads(const zpool *p) {
    return p->n_threads;
}

void zpool_run(zpool *p, zpool_fn fn, void *arg, int64_t n_tasks) {
    if (n_tasks <= 0) return;
    if (p->n_threads == 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++) fn(arg, t, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store(&p->next_task, 0);
    atomic_store(&p->active, p->n_threads - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->generation, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    drain(p, 0);
    while (atomic_load(&p->active) > 0) sched_yield();
}
