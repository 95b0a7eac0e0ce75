/* The worker pool (see threads.h). Workers sleep on a condition variable between runs; a run
 * publishes (fn, ctx, n_tasks) under the lock with a new generation number, and every thread,
 * the caller included, takes the next task index under the lock until none is left. Tasks are
 * coarse (a few to a few hundred per run), so the lock is not contended. */
#include "threads.h"

#if defined(_POSIX_THREADS) || defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#if defined(_POSIX_THREADS) && _POSIX_THREADS > 0
#include <pthread.h>
#define HAVE_PTHREADS 1
#else
#define HAVE_PTHREADS 0
#endif

#if HAVE_PTHREADS

struct disrnn__pool {
    disrnn__allocator al;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    pthread_t *workers;
    size_t n_workers;
    /* the current run, guarded by lock */
    disrnn__task_fn fn;
    void *ctx;
    size_t n_tasks, next, finished;
    unsigned long generation;
    int stop;
};

/* Take and run tasks of the current run until none is left; called with the lock held, returns
 * with it held. */
static void drain(disrnn__pool *p)
{
    while (p->next < p->n_tasks) {
        const size_t t = p->next++;
        disrnn__task_fn fn = p->fn;
        void *ctx = p->ctx;
        pthread_mutex_unlock(&p->lock);
        fn(ctx, t);
        pthread_mutex_lock(&p->lock);
        if (++p->finished == p->n_tasks) pthread_cond_signal(&p->done);
    }
}

static void *worker(void *arg)
{
    disrnn__pool *p = (disrnn__pool *)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop) break;
        seen = p->generation;
        drain(p);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

disrnn__pool *disrnn__pool_create(const disrnn__allocator *al, size_t n_threads)
{
    disrnn__pool *p;
    if (n_threads < 2) return NULL;
    p = (disrnn__pool *)disrnn__calloc(al, 1, sizeof *p);
    if (!p) return NULL;
    p->al = *al;
    p->workers = (pthread_t *)disrnn__calloc(al, n_threads - 1, sizeof(pthread_t));
    if (!p->workers) {
        disrnn__free(al, p);
        return NULL;
    }
    if (pthread_mutex_init(&p->lock, NULL) != 0) goto fail_mutex;
    if (pthread_cond_init(&p->wake, NULL) != 0) goto fail_wake;
    if (pthread_cond_init(&p->done, NULL) != 0) goto fail_done;
    for (; p->n_workers < n_threads - 1; p->n_workers++)
        if (pthread_create(&p->workers[p->n_workers], NULL, worker, p) != 0) {
            disrnn__pool_free(p); /* joins the ones already started */
            return NULL;
        }
    return p;
fail_done:
    pthread_cond_destroy(&p->wake);
fail_wake:
    pthread_mutex_destroy(&p->lock);
fail_mutex:
    disrnn__free(al, p->workers);
    disrnn__free(al, p);
    return NULL;
}

void disrnn__pool_free(disrnn__pool *p)
{
    disrnn__allocator al;
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < p->n_workers; i++) pthread_join(p->workers[i], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    al = p->al;
    disrnn__free(&al, p->workers);
    disrnn__free(&al, p);
}

size_t disrnn__pool_threads(const disrnn__pool *p) { return p ? p->n_workers + 1 : 1; }

void disrnn__pool_run(disrnn__pool *p, size_t n_tasks, disrnn__task_fn fn, void *ctx)
{
    if (n_tasks == 0) return;
    if (!p || n_tasks == 1) {
        for (size_t t = 0; t < n_tasks; t++) fn(ctx, t);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    p->next = 0;
    p->finished = 0;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    drain(p);
    while (p->finished < p->n_tasks) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

#else /* no POSIX threads: everything on the calling thread */

disrnn__pool *disrnn__pool_create(const disrnn__allocator *al, size_t n_threads)
{
    (void)al;
    (void)n_threads;
    return NULL;
}

void disrnn__pool_free(disrnn__pool *p) { (void)p; }

size_t disrnn__pool_threads(const disrnn__pool *p)
{
    (void)p;
    return 1;
}

void disrnn__pool_run(disrnn__pool *p, size_t n_tasks, disrnn__task_fn fn, void *ctx)
{
    (void)p;
    for (size_t t = 0; t < n_tasks; t++) fn(ctx, t);
}

#endif
