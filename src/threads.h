/* A small pool of worker threads for one handle. Work is cut into tasks whose number and
 * boundaries never depend on how many threads run them, and each task writes its own outputs
 * (or its own partial sums, which the caller adds in task order), so results are the same bits
 * for any thread count. Without POSIX threads every task runs on the calling thread. */
#ifndef DISRNN_THREADS_H
#define DISRNN_THREADS_H

#include "common.h"

typedef struct disrnn__pool disrnn__pool;

/** A task: fn(ctx, task) for one task index. */
typedef void (*disrnn__task_fn)(void *ctx, size_t task);

/** A pool of n_threads - 1 workers plus the caller (n_threads >= 2); NULL when out of memory or
 *  when threads cannot be started (the caller then runs everything itself). */
disrnn__pool *disrnn__pool_create(const disrnn__allocator *al, size_t n_threads);

/** Stop and join the workers and free the pool (NULL is fine). */
void disrnn__pool_free(disrnn__pool *p);

/** Threads of the pool, the caller included (1 for NULL). */
size_t disrnn__pool_threads(const disrnn__pool *p);

/** Run fn(ctx, t) for every t in [0, n_tasks) and return when all are done. The calling thread
 *  takes part; with a NULL pool it runs them all, in order. One run at a time per pool. */
void disrnn__pool_run(disrnn__pool *p, size_t n_tasks, disrnn__task_fn fn, void *ctx);

#endif
