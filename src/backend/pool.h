/*
 * pool.h — a small fixed thread pool for data-parallel regions.
 *
 * zpool_run(p, fn, arg, n_tasks) calls fn(arg, task, thread) for task = 0..n_tasks-1
 * spread over the pool's threads (the caller is thread 0) and returns when all are
 * done.  Tasks are handed out dynamically, so callers must make every task's output
 * independent of which thread ran it: that keeps results identical for any thread
 * count.  Workers spin briefly between regions (decode issues hundreds of regions
 * per token) and then sleep.
 */
#ifndef ZMLX_BACKEND_POOL_H
#define ZMLX_BACKEND_POOL_H

#include "zmlx.h"

#include <stdint.h>

typedef struct zpool zpool;
typedef void (*zpool_fn)(void *arg, int64_t task, int thread);

zmlx_status zpool_init(int n_threads, zpool **out);
void zpool_free(zpool *p);
int zpool_threads(const zpool *p);
void zpool_run(zpool *p, zpool_fn fn, void *arg, int64_t n_tasks);

/* Number of online cores (at least 1). */
int zpool_online_cores(void);

#endif
