/* The worker pool (see threads.h). A run publishes (fn, ctx, n_tasks) under the lock with a new
 * generation number, and every thread, the caller included, takes the next task index under the
 * lock until none is left. Tasks are coarse (a few to a few hundred per run), so the lock is not
 * contended. A training step makes several runs a few microseconds apart, and waking a sleeping
 * thread costs about as much as a task on a virtual machine, so after a run the workers (and the
 * caller waiting for the last task) spin for a while, watching the generation (or the count of
 * finished tasks) with atomic loads, before they sleep on a condition variable. */
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
    int stop, sleepers; /* sleepers: threads waiting on wake or done */
};

/* Spin iterations before sleeping (each a pause instruction or so: about 50-100 us). */
#define SPIN 20000

/* generation, finished and stop change under the lock but are also watched without it: every
 * access to them is atomic */
#if defined(__GNUC__)
#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#if defined(__x86_64__) || defined(__i386__)
#define RELAX() __builtin_ia32_pause()
#else
#define RELAX() ((void)0)
#endif
#else /* no atomics: no spinning, the condition variables alone */
#define LOAD_ACQ(p) (*(p))
#define STORE_REL(p, v) (*(p) = (v))
#define RELAX() ((void)0)
#undef SPIN
#define SPIN 0
#endif

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
        STORE_REL(&p->finished, LOAD_ACQ(&p->finished) + 1);
        if (LOAD_ACQ(&p->finished) == p->n_tasks && p->sleepers) pthread_cond_broadcast(&p->done);
    }
}

static void *worker(void *arg)
{
    disrnn__pool *p = (disrnn__pool *)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (!LOAD_ACQ(&p->stop) && LOAD_ACQ(&p->generation) == seen) {
            /* spin (without the lock) while the next run is likely to come soon */
            pthread_mutex_unlock(&p->lock);
            for (int i = 0; i < SPIN && LOAD_ACQ(&p->generation) == seen && !LOAD_ACQ(&p->stop); i++) RELAX();
            pthread_mutex_lock(&p->lock);
            while (!LOAD_ACQ(&p->stop) && LOAD_ACQ(&p->generation) == seen) {
                p->sleepers++;
                pthread_cond_wait(&p->wake, &p->lock);
                p->sleepers--;
            }
        }
        if (LOAD_ACQ(&p->stop)) break;
        seen = LOAD_ACQ(&p->generation);
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
    STORE_REL(&p->stop, 1);
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
    STORE_REL(&p->finished, (size_t)0);
    STORE_REL(&p->generation, LOAD_ACQ(&p->generation) + 1);
    if (p->sleepers) pthread_cond_broadcast(&p->wake);
    drain(p);
    if (LOAD_ACQ(&p->finished) < p->n_tasks) {
        pthread_mutex_unlock(&p->lock);
        for (int i = 0; i < SPIN && LOAD_ACQ(&p->finished) < n_tasks; i++) RELAX();
        pthread_mutex_lock(&p->lock);
        while (LOAD_ACQ(&p->finished) < p->n_tasks) {
            p->sleepers++;
            pthread_cond_wait(&p->done, &p->lock);
            p->sleepers--;
        }
    }
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
