/* Thread-safety contract: different handles used from different threads at once give exactly the
 * results they give alone (no hidden shared state), also when each trainer runs its steps on
 * threads of its own, and const calls on one model may run together.
 * Run it under ThreadSanitizer with: make check-tsan. */
#include "support.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { N = 12, K = 4, T = 300, THREADS = 4 };

typedef struct job {
    uint64_t seed;
    int64_t own_threads;
    double *params; /* out */
    size_t n_params;
    int status;
} job;

static void make_data(double *x)
{
    uint64_t st = 99;
    test_normal(&st, x, (size_t)N * T);
    for (size_t t = 1; t < T; t++)
        for (size_t n = 0; n < N; n++) x[t * N + n] = 0.8 * x[(t - 1) * N + n] + 0.3 * x[t * N + n];
}

static int fit(uint64_t seed, int64_t own_threads, double **params, size_t *n_params)
{
    static const size_t groups[2] = {2, 2};
    double *x = malloc(sizeof(double) * N * T);
    disrnn_config_t *cfg = NULL;
    disrnn_model_t *m = NULL;
    disrnn_dataset_t *ds = NULL;
    disrnn_trainer_t *tr = NULL;
    int st;
    make_data(x);
    if ((st = disrnn_config_create(&cfg, N, K)) != DISRNN_OK) goto done;
    disrnn_config_set_groups(cfg, groups, 2);
    disrnn_config_set_double(cfg, DISRNN_OPT_BETA, 5.0);
    disrnn_config_set_seed(cfg, seed);
    if ((st = disrnn_model_create(&m, cfg)) != DISRNN_OK) goto done;
    if ((st = disrnn_dataset_create(&ds, N, 0, DISRNN_DATA_CONTINUOUS)) != DISRNN_OK) goto done;
    if ((st = disrnn_dataset_add_trial(ds, T, x, N, NULL, 0, NULL, 0)) != DISRNN_OK) goto done;
    if ((st = disrnn_trainer_create(&tr, m, ds, seed + 7)) != DISRNN_OK) goto done;
    disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 15);
    disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 64);
    if ((st = disrnn_trainer_set_int(tr, DISRNN_TRAIN_THREADS, own_threads)) != DISRNN_OK) goto done;
    if ((st = disrnn_trainer_fit(tr)) != DISRNN_OK) goto done;
    *n_params = disrnn_model_num_params(m);
    *params = malloc(sizeof(double) * *n_params);
    st = disrnn_model_get_params(m, *params, *n_params);
done:
    disrnn_trainer_free(tr);
    disrnn_dataset_free(ds);
    disrnn_model_free(m);
    disrnn_config_free(cfg);
    free(x);
    return st;
}

static void *run_job(void *arg)
{
    job *j = (job *)arg;
    j->status = fit(j->seed, j->own_threads, &j->params, &j->n_params);
    return NULL;
}

static void test_concurrent_fits_match_sequential(void **state)
{
    job jobs[THREADS];
    pthread_t th[THREADS];
    (void)state;
    for (int i = 0; i < THREADS; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].seed = (uint64_t)(i % 2 + 1); /* two pairs of identical jobs */
        jobs[i].own_threads = i < 2 ? 1 : 2;  /* one of each pair on 2 threads of its own */
        assert_int_equal(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < THREADS; i++) assert_ok(jobs[i].status);
    for (int i = 0; i < 2; i++) {
        double *alone = NULL;
        size_t n = 0;
        assert_ok(fit((uint64_t)(i + 1), 1, &alone, &n));
        for (int j = i; j < THREADS; j += 2) {
            assert_int_equal(jobs[j].n_params, n);
            assert_memory_equal(jobs[j].params, alone, n * sizeof(double));
        }
        free(alone);
    }
    assert_true(memcmp(jobs[0].params, jobs[1].params, jobs[0].n_params * sizeof(double)) != 0);
    for (int i = 0; i < THREADS; i++) free(jobs[i].params);
}

typedef struct const_job {
    const disrnn_model_t *m;
    const disrnn_dataset_t *ds;
    double *mu;
    double pc;
    int status;
} const_job;

static void *run_const(void *arg)
{
    const_job *j = (const_job *)arg;
    j->status = disrnn_model_latents(j->m, j->ds, j->mu, K, T);
    if (j->status == DISRNN_OK) j->status = disrnn_model_eval_pc(j->m, j->ds, 2, 5, &j->pc, NULL);
    return NULL;
}

static void test_const_calls_share_a_model(void **state)
{
    static const size_t groups[2] = {2, 2};
    double *x = malloc(sizeof(double) * N * T);
    disrnn_config_t *cfg;
    disrnn_model_t *m;
    disrnn_dataset_t *ds;
    const_job jobs[THREADS];
    pthread_t th[THREADS];
    (void)state;
    make_data(x);
    assert_ok(disrnn_config_create(&cfg, N, K));
    assert_ok(disrnn_config_set_groups(cfg, groups, 2));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_N_TOT, T));
    assert_ok(disrnn_model_create(&m, cfg));
    assert_ok(disrnn_dataset_create(&ds, N, 0, DISRNN_DATA_CONTINUOUS));
    assert_ok(disrnn_dataset_add_trial(ds, T, x, N, NULL, 0, NULL, 0));
    for (int i = 0; i < THREADS; i++) {
        jobs[i].m = m;
        jobs[i].ds = ds;
        jobs[i].mu = malloc(sizeof(double) * K * T);
        assert_int_equal(pthread_create(&th[i], NULL, run_const, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_ok(jobs[i].status);
        assert_memory_equal(jobs[i].mu, jobs[0].mu, sizeof(double) * K * T);
        assert_memory_equal(&jobs[i].pc, &jobs[0].pc, sizeof(double));
    }
    for (int i = 0; i < THREADS; i++) free(jobs[i].mu);
    disrnn_dataset_free(ds);
    disrnn_model_free(m);
    disrnn_config_free(cfg);
    free(x);
}

static void test_constants_match_functions(void **state)
{
    (void)state;
    assert_int_equal(disrnn_num_blocks(), DISRNN_BLOCK_LOG_S + 1);
    assert_int_equal(disrnn_num_terms(), DISRNN_TERM_BD + 1);
    assert_int_equal(disrnn_num_metrics(), DISRNN_METRIC_MSE + 1);
    assert_int_equal(disrnn_npy_max_dims(), DISRNN_NPY_MAX_DIMS);
    assert_int_equal(disrnn_version_number(), DISRNN_VERSION_NUMBER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constants_match_functions),
        cmocka_unit_test(test_concurrent_fits_match_sequential),
        cmocka_unit_test(test_const_calls_share_a_model),
    };
    return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
