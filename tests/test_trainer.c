/* The trainer: settings, the optimiser arithmetic, a short DisRNN fit on synthetic data,
 * reproducibility (repeat fits, thread counts, checkpoint resume), refusal of non-finite steps,
 * hostile checkpoint files, callbacks, early stopping and allocation failures. */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "optimizer.h"
#include "trainer.h"

/* ---------------------------------------------------------------------------------------- */
/* Synthetic data: two independent 3-dimensional linear latent systems (damped rotations about
 * random axes, driven by noise) read out by a random 20 x 6 matrix plus noise. */

static void rotation(uint64_t *rs, double angle, double damp, double *R /* 3 x 3 column-major */)
{
    double a[3], nrm, c = cos(angle), s = sin(angle);
    test_normal(rs, a, 3);
    nrm = sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
    for (int i = 0; i < 3; i++) a[i] /= nrm;
    /* Rodrigues: R = c I + s [a]x + (1 - c) a a^T */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) R[i + 3 * j] = (1 - c) * a[i] * a[j] + (i == j ? c : 0.0);
    R[1 + 3 * 0] += s * a[2];
    R[2 + 3 * 0] -= s * a[1];
    R[0 + 3 * 1] -= s * a[2];
    R[2 + 3 * 1] += s * a[0];
    R[0 + 3 * 2] += s * a[1];
    R[1 + 3 * 2] -= s * a[0];
    for (int k = 0; k < 9; k++) R[k] *= damp;
}

static void synth(size_t N, size_t T, uint64_t seed, double *x)
{
    uint64_t rs = seed;
    double R[2][9], *A = malloc(N * 6 * sizeof(double)), c[64], z[6], zn[6], e[64];
    assert_non_null(A);
    rotation(&rs, 0.30, 0.97, R[0]);
    rotation(&rs, 0.17, 0.97, R[1]);
    test_normal(&rs, A, N * 6);
    for (size_t k = 0; k < N * 6; k++) A[k] /= sqrt(3.0);
    test_normal(&rs, c, N);
    for (size_t i = 0; i < N; i++) c[i] *= 0.1;
    test_normal(&rs, z, 6);
    for (size_t t = 0; t < T; t++) {
        test_normal(&rs, e, 6);
        for (int g = 0; g < 2; g++)
            for (int i = 0; i < 3; i++) {
                double v = 0.15 * e[3 * g + i];
                for (int j = 0; j < 3; j++) v += R[g][i + 3 * j] * z[3 * g + j];
                zn[3 * g + i] = v;
            }
        memcpy(z, zn, sizeof z);
        test_normal(&rs, e, N);
        for (size_t i = 0; i < N; i++) {
            double v = c[i] + 0.1 * e[i];
            for (size_t k = 0; k < 6; k++) v += A[i + N * k] * z[k];
            x[t * N + i] = v;
        }
    }
    free(A);
}

static disrnn_model_t *make_model(size_t N, size_t K, size_t G, double beta, uint64_t seed)
{
    disrnn_config_t *cfg = NULL;
    disrnn_model_t *m = NULL;
    size_t groups[8];
    assert_ok(disrnn_config_create(&cfg, N, K));
    for (size_t g = 0; g < G; g++) groups[g] = K / G + (g < K % G);
    assert_ok(disrnn_config_set_groups(cfg, groups, G));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, beta));
    assert_ok(disrnn_config_set_seed(cfg, seed));
    assert_ok(disrnn_model_create(&m, cfg));
    disrnn_config_free(cfg);
    return m;
}

static disrnn_dataset_t *make_data(size_t N, size_t T, uint64_t seed)
{
    disrnn_dataset_t *ds = NULL;
    double *x = malloc(N * T * sizeof(double));
    assert_non_null(x);
    synth(N, T, seed, x);
    assert_ok(disrnn_dataset_create(&ds, N, 0, DISRNN_DATA_CONTINUOUS));
    assert_ok(disrnn_dataset_add_trial(ds, T, x, N, NULL, 0, NULL, 0));
    free(x);
    return ds;
}

static double *params_of(const disrnn_model_t *m)
{
    const size_t n = disrnn_model_num_params(m);
    double *p = malloc(n * sizeof(double));
    assert_non_null(p);
    assert_ok(disrnn_model_get_params(m, p, n));
    return p;
}

static uint64_t hash_params(const disrnn_model_t *m)
{
    const size_t n = disrnn_model_num_params(m);
    double *p = params_of(m);
    const unsigned char *b = (const unsigned char *)p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n * sizeof(double); i++) h = (h ^ b[i]) * 1099511628211ULL;
    free(p);
    return h;
}

/* Everything observable about a trainer and its model, to show a failed call changed nothing. */
typedef struct tstate {
    double *params, *opt;
    size_t n;
    int64_t step, epoch, batch;
    disrnn__train_progress pr;
    disrnn__rng rng;
} tstate;

static void tstate_take(const disrnn_trainer_t *tr, tstate *s)
{
    s->params = params_of(tr->model);
    s->n = disrnn_trainer_state_size(tr);
    s->opt = malloc(s->n * sizeof(double));
    assert_non_null(s->opt);
    assert_ok(disrnn_trainer_get_state(tr, s->opt, s->n));
    assert_ok(disrnn_trainer_progress(tr, &s->step, &s->epoch));
    assert_ok(disrnn_trainer_get_int(tr, DISRNN_TRAIN_BATCH_SIZE, &s->batch));
    s->pr = tr->pr;
    s->rng = tr->rng;
}

static void tstate_same(const disrnn_trainer_t *tr, const tstate *s)
{
    tstate now;
    tstate_take(tr, &now);
    assert_int_equal(now.n, s->n);
    assert_memory_equal(now.params, s->params, (s->n - 1) / 2 * sizeof(double));
    assert_memory_equal(now.opt, s->opt, s->n * sizeof(double));
    assert_true(now.step == s->step && now.epoch == s->epoch && now.batch == s->batch);
    assert_memory_equal(&now.pr, &s->pr, sizeof now.pr);
    assert_memory_equal(&now.rng, &s->rng, sizeof now.rng);
    free(now.params);
    free(now.opt);
}

static void tstate_free(tstate *s)
{
    free(s->params);
    free(s->opt);
}

/* Progress recorder: epoch terms, validation losses and (optionally) parameters per epoch. */
typedef struct recorder {
    int64_t stop_at;  /* > 0: return stop_ret at this epoch */
    int stop_ret;
    size_t count;
    double loss[512], val[512], pc[512];
    int64_t epoch[512], step[512];
    disrnn_model_t *model;
    double *snap; /* 512 x n parameters when non-NULL */
} recorder;

static int record(int64_t epoch, int64_t step, const double *terms, size_t n_terms, double val_loss, double elapsed,
                  void *ud)
{
    recorder *r = (recorder *)ud;
    assert_int_equal(n_terms, DISRNN_TERM_BD + 1);
    assert_true(elapsed >= 0.0);
    if (r->count < 512) {
        r->loss[r->count] = terms[DISRNN_TERM_LOSS];
        r->pc[r->count] = terms[DISRNN_TERM_PC];
        r->val[r->count] = val_loss;
        r->epoch[r->count] = epoch;
        r->step[r->count] = step;
        if (r->snap) {
            const size_t n = disrnn_model_num_params(r->model);
            assert_ok(disrnn_model_get_params(r->model, r->snap + r->count * n, n));
        }
        r->count++;
    }
    if (r->stop_at > 0 && epoch == r->stop_at) return r->stop_ret;
    return 0;
}

/* Held-out reconstruction R^2 of the decoder mean at z = mu (MODEL.md section 5). */
static double recon_r2(disrnn_model_t *m, const disrnn_dataset_t *ds)
{
    disrnn__samples s;
    const size_t N = m->spec.N, K = m->spec.K;
    double *A = m->blk[DISRNN_BLOCK_A], *B = m->blk[DISRNN_BLOCK_B], *c = m->blk[DISRNN_BLOCK_BIAS_C],
           *d = m->blk[DISRNN_BLOCK_BIAS_D];
    double *xhat, r2 = 0.0;
    assert_ok(disrnn__samples_build(ds, m, &m->base.al, &s, &m->base));
    xhat = malloc(N * s.S * sizeof(double));
    assert_non_null(xhat);
    for (size_t j = 0; j < s.S; j++) {
        double mu[16];
        for (size_t k = 0; k < K; k++) {
            mu[k] = d[k];
            for (size_t i = 0; i < N; i++) mu[k] += B[k + K * i] * s.h[j * N + i];
        }
        for (size_t i = 0; i < N; i++) {
            double v = c[i];
            for (size_t k = 0; k < K; k++) v += A[i + N * k] * mu[k];
            xhat[j * N + i] = v;
        }
    }
    for (size_t i = 0; i < N; i++) {
        double mean = 0, sst = 0, sse = 0;
        for (size_t j = 0; j < s.S; j++) mean += s.x[j * N + i];
        mean /= (double)s.S;
        for (size_t j = 0; j < s.S; j++) {
            const double e = s.x[j * N + i] - xhat[j * N + i], f = s.x[j * N + i] - mean;
            sse += e * e;
            sst += f * f;
        }
        r2 += 1.0 - sse / sst;
    }
    free(xhat);
    disrnn__samples_free(&m->base.al, &s);
    return r2 / (double)N;
}

/* ---------------------------------------------------------------------------------------- */
/* Settings */

static void test_settings(void **state)
{
    disrnn_model_t *m = make_model(4, 2, 1, 0.0, 1);
    disrnn_dataset_t *ds = make_data(4, 40, 2);
    disrnn_trainer_t *tr = NULL;
    double lo, hi, dv;
    int64_t iv;
    int is_int;
    (void)state;
    assert_ok(disrnn_trainer_create(&tr, m, ds, 1));
    /* documented defaults */
    assert_ok(disrnn_trainer_get_int(tr, DISRNN_TRAIN_OPTIMIZER, &iv)); assert_int_equal(iv, DISRNN_OPTIM_ADAM);
    assert_ok(disrnn_trainer_get_double(tr, DISRNN_TRAIN_LR, &dv)); assert_true(dv == 1e-3);
    assert_ok(disrnn_trainer_get_double(tr, DISRNN_TRAIN_BETA1, &dv)); assert_true(dv == 0.9);
    assert_ok(disrnn_trainer_get_double(tr, DISRNN_TRAIN_BETA2, &dv)); assert_true(dv == 0.999);
    assert_ok(disrnn_trainer_get_double(tr, DISRNN_TRAIN_EPS, &dv)); assert_true(dv == 1e-8);
    assert_ok(disrnn_trainer_get_double(tr, DISRNN_TRAIN_WEIGHT_DECAY, &dv)); assert_true(dv == 0.01);
    assert_ok(disrnn_trainer_get_int(tr, DISRNN_TRAIN_BATCH_SIZE, &iv)); assert_int_equal(iv, 128);
    assert_ok(disrnn_trainer_get_int(tr, DISRNN_TRAIN_EPOCHS, &iv)); assert_int_equal(iv, 1000);
    assert_ok(disrnn_trainer_get_int(tr, DISRNN_TRAIN_MAX_STEPS, &iv)); assert_int_equal(iv, 0);
    assert_ok(disrnn_trainer_get_double(tr, DISRNN_TRAIN_CLIP_NORM, &dv)); assert_true(dv == 0.0);
    assert_ok(disrnn_trainer_get_int(tr, DISRNN_TRAIN_SCHEDULE, &iv)); assert_int_equal(iv, DISRNN_SCHED_CONSTANT);
    assert_ok(disrnn_trainer_get_double(tr, DISRNN_TRAIN_LR_GAMMA, &dv)); assert_true(dv == 1.0);
    assert_ok(disrnn_trainer_get_double(tr, DISRNN_TRAIN_LR_MIN, &dv)); assert_true(dv == 0.0);
    assert_ok(disrnn_trainer_get_int(tr, DISRNN_TRAIN_PATIENCE, &iv)); assert_int_equal(iv, 0);
    assert_ok(disrnn_trainer_get_int(tr, DISRNN_TRAIN_KEEP_BEST, &iv)); assert_int_equal(iv, 0);
    assert_ok(disrnn_trainer_get_int(tr, DISRNN_TRAIN_SHUFFLE, &iv)); assert_int_equal(iv, 1);
    assert_ok(disrnn_trainer_get_int(tr, DISRNN_TRAIN_DROP_LAST, &iv)); assert_int_equal(iv, 0);
    assert_ok(disrnn_trainer_get_int(tr, DISRNN_TRAIN_THREADS, &iv)); assert_int_equal(iv, 1);

    /* every option: bounds are accepted, just outside them is rejected, the wrong type is rejected */
    for (int o = 0; o <= DISRNN_TRAIN_THREADS; o++) {
        assert_ok(disrnn_train_option_bounds(o, &lo, &hi, &is_int));
        assert_true(lo <= hi);
        if (is_int) {
            assert_ok(disrnn_trainer_set_int(tr, o, (int64_t)lo));
            assert_ok(disrnn_trainer_get_int(tr, o, &iv));
            assert_true((double)iv == lo);
            /* a huge batch is valid but would size the workspace; 256 threads would start them */
            if (o != DISRNN_TRAIN_BATCH_SIZE && o != DISRNN_TRAIN_THREADS) {
                assert_ok(disrnn_trainer_set_int(tr, o, (int64_t)hi));
            }
            assert_status(disrnn_trainer_set_int(tr, o, (int64_t)lo - 1), DISRNN_ERR_INVALID_ARG);
            assert_status(disrnn_trainer_set_int(tr, o, (int64_t)hi + 1), DISRNN_ERR_INVALID_ARG);
            assert_status(disrnn_trainer_set_double(tr, o, lo), DISRNN_ERR_INVALID_ARG);
            assert_status(disrnn_trainer_get_double(tr, o, &dv), DISRNN_ERR_INVALID_ARG);
        } else {
            assert_ok(disrnn_trainer_set_double(tr, o, lo));
            assert_ok(disrnn_trainer_set_double(tr, o, hi));
            assert_ok(disrnn_trainer_get_double(tr, o, &dv));
            assert_true(dv == hi);
            assert_status(disrnn_trainer_set_double(tr, o, nextafter(lo, -INFINITY)), DISRNN_ERR_INVALID_ARG);
            assert_status(disrnn_trainer_set_double(tr, o, nextafter(hi, INFINITY)), DISRNN_ERR_INVALID_ARG);
            assert_status(disrnn_trainer_set_double(tr, o, NAN), DISRNN_ERR_INVALID_ARG);
            assert_status(disrnn_trainer_set_int(tr, o, 0), DISRNN_ERR_INVALID_ARG);
            assert_status(disrnn_trainer_get_int(tr, o, &iv), DISRNN_ERR_INVALID_ARG);
        }
        assert_true(strlen(disrnn_trainer_last_error(tr)) > 0);
    }
    assert_status(disrnn_train_option_bounds(-1, &lo, &hi, &is_int), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_train_option_bounds(18, &lo, &hi, &is_int), DISRNN_ERR_INVALID_ARG);
    assert_ok(disrnn_train_option_bounds(DISRNN_TRAIN_LR, NULL, NULL, NULL));
    assert_status(disrnn_trainer_set_int(tr, 18, 1), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_trainer_set_double(tr, -1, 1.0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_trainer_get_int(tr, DISRNN_TRAIN_EPOCHS, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_trainer_set_int(NULL, DISRNN_TRAIN_EPOCHS, 1), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_trainer_set_double(tr, DISRNN_TRAIN_BETA1, 1.0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_trainer_set_double(tr, DISRNN_TRAIN_LR, 0.0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_trainer_set_double(tr, DISRNN_TRAIN_LR, INFINITY), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_trainer_set_int(tr, DISRNN_TRAIN_OPTIMIZER, 2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_trainer_set_int(tr, DISRNN_TRAIN_SCHEDULE, -1), DISRNN_ERR_INVALID_ARG);
    /* reset restores the defaults, except the thread count (a resource, not a setting) */
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_THREADS, 3));
    assert_ok(disrnn_trainer_reset_settings(tr));
    assert_ok(disrnn_trainer_get_int(tr, DISRNN_TRAIN_THREADS, &iv)); assert_int_equal(iv, 3);
    assert_ok(disrnn_trainer_get_double(tr, DISRNN_TRAIN_LR, &dv)); assert_true(dv == 1e-3);
    assert_ok(disrnn_trainer_get_int(tr, DISRNN_TRAIN_SHUFFLE, &iv)); assert_int_equal(iv, 1);
    assert_ok(disrnn_trainer_get_double(tr, DISRNN_TRAIN_LR_GAMMA, &dv)); assert_true(dv == 1.0);
    assert_status(disrnn_trainer_reset_settings(NULL), DISRNN_ERR_INVALID_ARG);
    assert_string_equal(disrnn_trainer_last_error(NULL), "");
    assert_int_equal(disrnn_trainer_state_size(NULL), 0);
    assert_status(disrnn_trainer_set_log(tr, NULL, 9, NULL), DISRNN_ERR_INVALID_ARG);
    assert_ok(disrnn_trainer_set_log(tr, NULL, DISRNN_LOG_INFO, NULL));
    disrnn_trainer_free(tr);
    disrnn_trainer_free(NULL);
    disrnn_dataset_free(ds);
    disrnn_model_free(m);
}

static void test_create_checks_and_n_tot(void **state)
{
    disrnn_model_t *m = make_model(4, 2, 1, 0.0, 1), *m5 = make_model(5, 2, 1, 0.0, 1);
    disrnn_dataset_t *ds = make_data(4, 30, 3), *ev = NULL;
    disrnn_trainer_t *tr = NULL;
    disrnn_config_t *cfg = NULL;
    disrnn_model_t *pois = NULL;
    double v;
    (void)state;
    assert_status(disrnn_trainer_create(&tr, NULL, ds, 1), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_trainer_create(&tr, m, NULL, 1), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_trainer_create(NULL, m, ds, 1), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_trainer_create(&tr, m5, ds, 1), DISRNN_ERR_INVALID_ARG);
    assert_null(tr);
    assert_ok(disrnn_config_create(&cfg, 4, 2));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_OBS, DISRNN_OBS_POISSON_SOFTPLUS));
    assert_ok(disrnn_model_create(&pois, cfg));
    disrnn_config_free(cfg);
    assert_status(disrnn_trainer_create(&tr, pois, ds, 1), DISRNN_ERR_DATA);
    assert_ok(disrnn_model_get_double(pois, DISRNN_OPT_N_TOT, &v));
    assert_true(v == 0.0); /* a failed create leaves the model alone */
    /* N_tot becomes the number of training samples; an explicit value is kept */
    assert_ok(disrnn_trainer_create(&tr, m, ds, 1));
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_N_TOT, &v));
    assert_true(v == 30.0);
    assert_int_equal(disrnn_trainer_state_size(tr), 2 * disrnn_model_num_params(m) + 1);
    disrnn_trainer_free(tr);
    assert_ok(disrnn_model_set_double(m5, DISRNN_OPT_N_TOT, 512.0));
    {
        disrnn_dataset_t *d5 = make_data(5, 20, 3);
        assert_ok(disrnn_trainer_create(&tr, m5, d5, 1));
        assert_ok(disrnn_model_get_double(m5, DISRNN_OPT_N_TOT, &v));
        assert_true(v == 512.0);
        /* validation data must match the model too */
        assert_status(disrnn_trainer_set_validation(tr, ds), DISRNN_ERR_INVALID_ARG);
        assert_ok(disrnn_trainer_set_validation(tr, d5));
        assert_ok(disrnn_trainer_set_validation(tr, NULL));
        assert_status(disrnn_trainer_evaluate(tr, ds, &v, 1), DISRNN_ERR_BUFFER_TOO_SMALL);
        disrnn_trainer_free(tr);
        disrnn_dataset_free(d5);
    }
    assert_ok(disrnn_dataset_create(&ev, 4, 0, DISRNN_DATA_CONTINUOUS));
    assert_status(disrnn_trainer_create(&tr, m, ev, 1), DISRNN_ERR_INVALID_ARG); /* no samples */
    disrnn_dataset_free(ev);
    disrnn_dataset_free(ds);
    disrnn_model_free(m);
    disrnn_model_free(m5);
    disrnn_model_free(pois);
}

/* ---------------------------------------------------------------------------------------- */
/* The optimiser arithmetic */

static void test_adam_hand_computation(void **state)
{
    const double g[3][4] = {{0.5, -1.0, 2.0, 0.0}, {-0.25, 3.0, 2.0, 1e-3}, {1.0, -2.0, -0.5, 4.0}};
    double th[4] = {0.1, -0.2, 0.3, 1.0}, m[4] = {0}, v[4] = {0};
    double eth[4], em[4] = {0}, ev[4] = {0};
    (void)state;
    for (int wdflag = 0; wdflag < 2; wdflag++) {
        const disrnn__adam o = {wdflag, 0.01, 0.8, 0.95, 1e-6, 0.1};
        memcpy(eth, th, sizeof th);
        memset(m, 0, sizeof m); memset(v, 0, sizeof v);
        memset(em, 0, sizeof em); memset(ev, 0, sizeof ev);
        {
            double t2[4];
            memcpy(t2, th, sizeof th);
            for (int s = 0; s < 3; s++) {
                disrnn__adam_step(&o, 4, t2, g[s], m, v, s + 1);
                /* by hand: the textbook form of PyTorch's Adam / AdamW */
                for (int i = 0; i < 4; i++) {
                    double mh, vh;
                    em[i] = 0.8 * em[i] + 0.2 * g[s][i];
                    ev[i] = 0.95 * ev[i] + 0.05 * g[s][i] * g[s][i];
                    if (wdflag) eth[i] *= 1.0 - 0.01 * 0.1;
                    mh = em[i] / (1.0 - pow(0.8, s + 1));
                    vh = ev[i] / (1.0 - pow(0.95, s + 1));
                    eth[i] -= 0.01 * mh / (sqrt(vh) + 1e-6);
                }
                for (int i = 0; i < 4; i++) {
                    assert_true(fabs(t2[i] - eth[i]) <= 1e-15 * (1 + fabs(eth[i])));
                    assert_true(fabs(m[i] - em[i]) <= 1e-15 * (1 + fabs(em[i])));
                    assert_true(fabs(v[i] - ev[i]) <= 1e-15 * (1 + fabs(ev[i])));
                }
            }
            /* plain Adam ignores the weight decay (it is documented as AdamW-only) */
            if (!wdflag) {
                const disrnn__adam o0 = {0, 0.01, 0.8, 0.95, 1e-6, 0.0};
                double t3[4], m3[4] = {0}, v3[4] = {0};
                memcpy(t3, th, sizeof th);
                for (int s = 0; s < 3; s++) disrnn__adam_step(&o0, 4, t3, g[s], m3, v3, s + 1);
                assert_memory_equal(t3, t2, sizeof t3);
            }
        }
    }
}

static void test_apply_matches_hand(void **state)
{
    disrnn_model_t *m = make_model(3, 2, 1, 0.0, 4);
    disrnn_dataset_t *ds = make_data(3, 20, 5);
    disrnn_trainer_t *tr = NULL;
    const size_t n = disrnn_model_num_params(m);
    double *th = params_of(m), *g = malloc(n * sizeof(double)), *em = calloc(n, sizeof(double)),
           *ev = calloc(n, sizeof(double)), *st = malloc((2 * n + 1) * sizeof(double));
    uint64_t rs = 77;
    (void)state;
    assert_ok(disrnn_trainer_create(&tr, m, ds, 1));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_OPTIMIZER, DISRNN_OPTIM_ADAMW));
    assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_LR, 0.02));
    assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_WEIGHT_DECAY, 0.5));
    for (int s = 1; s <= 3; s++) {
        test_normal(&rs, g, n);
        assert_ok(disrnn_trainer_apply(tr, g, n));
        for (size_t i = 0; i < n; i++) {
            em[i] = 0.9 * em[i] + 0.1 * g[i];
            ev[i] = 0.999 * ev[i] + 0.001 * g[i] * g[i];
            th[i] *= 1.0 - 0.02 * 0.5;
            th[i] -= 0.02 * (em[i] / (1 - pow(0.9, s))) / (sqrt(ev[i] / (1 - pow(0.999, s))) + 1e-8);
        }
    }
    {
        double *p = params_of(m);
        assert_ok(disrnn_trainer_get_state(tr, st, 2 * n + 1));
        for (size_t i = 0; i < n; i++) {
            assert_true(fabs(p[i] - th[i]) <= 1e-14 * (1 + fabs(th[i])));
            assert_true(fabs(st[i] - em[i]) <= 1e-14 * (1 + fabs(em[i])));
            assert_true(fabs(st[n + i] - ev[i]) <= 1e-14 * (1 + fabs(ev[i])));
        }
        assert_true(st[2 * n] == 3.0);
        free(p);
    }
    /* state round trip and validation */
    assert_status(disrnn_trainer_get_state(tr, st, 2 * n), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_ok(disrnn_trainer_get_state(tr, st, 2 * n + 1));
    st[n] = -1.0;
    assert_status(disrnn_trainer_set_state(tr, st, 2 * n + 1), DISRNN_ERR_INVALID_ARG);
    st[n] = 0.5;
    st[2 * n] = 2.5;
    assert_status(disrnn_trainer_set_state(tr, st, 2 * n + 1), DISRNN_ERR_INVALID_ARG);
    st[2 * n] = 7.0;
    st[0] = NAN;
    assert_status(disrnn_trainer_set_state(tr, st, 2 * n + 1), DISRNN_ERR_INVALID_ARG);
    st[0] = 0.25;
    assert_status(disrnn_trainer_set_state(tr, st, 2 * n), DISRNN_ERR_INVALID_ARG);
    assert_ok(disrnn_trainer_set_state(tr, st, 2 * n + 1));
    {
        double *back = malloc((2 * n + 1) * sizeof(double));
        int64_t step;
        assert_ok(disrnn_trainer_get_state(tr, back, 2 * n + 1));
        assert_memory_equal(back, st, (2 * n + 1) * sizeof(double));
        assert_ok(disrnn_trainer_progress(tr, &step, NULL));
        assert_int_equal(step, 7);
        free(back);
    }
    assert_status(disrnn_trainer_apply(tr, g, n - 1), DISRNN_ERR_INVALID_ARG);
    disrnn_trainer_free(tr);
    disrnn_dataset_free(ds);
    disrnn_model_free(m);
    free(th); free(g); free(em); free(ev); free(st);
}

static void test_clipping(void **state)
{
    disrnn_model_t *m = make_model(3, 2, 1, 0.0, 4);
    disrnn_dataset_t *ds = make_data(3, 20, 5);
    disrnn_trainer_t *tr = NULL;
    const size_t n = disrnn_model_num_params(m);
    double *g = malloc(n * sizeof(double)), *st = malloc((2 * n + 1) * sizeof(double)), norm, scale;
    uint64_t rs = 3;
    (void)state;
    /* PyTorch's clip_grad_norm_: scale = max_norm / (norm + 1e-6), never above 1 */
    {
        const double v[3] = {3.0, 0.0, -4.0};
        assert_true(fabs(disrnn__grad_norm(v, 3) - 5.0) < 1e-15);
        assert_true(disrnn__clip_scale(5.0, 1.0) == 1.0 / (5.0 + 1e-6));
        assert_true(disrnn__clip_scale(0.5, 1.0) == 1.0);
        assert_true(disrnn__clip_scale(1.0, 1.0) == 1.0 / (1.0 + 1e-6)); /* at the limit torch still scales */
        assert_true(disrnn__clip_scale(5.0, 0.0) == 1.0);
        {
            const double huge[2] = {1e200, 1e200};
            assert_true(fabs(disrnn__grad_norm(huge, 2) / (sqrt(2.0) * 1e200) - 1.0) < 1e-15);
        }
    }
    assert_ok(disrnn_trainer_create(&tr, m, ds, 1));
    assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_CLIP_NORM, 0.5));
    test_normal(&rs, g, n);
    for (size_t i = 0; i < n; i++) g[i] *= 10.0;
    norm = disrnn__grad_norm(g, n);
    scale = 0.5 / (norm + 1e-6);
    assert_ok(disrnn_trainer_apply(tr, g, n));
    assert_ok(disrnn_trainer_get_state(tr, st, 2 * n + 1));
    /* the first moment after one step is (1 - beta1) times the clipped gradient */
    for (size_t i = 0; i < n; i++) assert_true(fabs(st[i] - 0.1 * (g[i] * scale)) <= 1e-15 * fabs(g[i]));
    disrnn_trainer_free(tr);
    disrnn_dataset_free(ds);
    disrnn_model_free(m);
    free(g);
    free(st);
}

static void test_schedules(void **state)
{
    (void)state;
    assert_true(disrnn__schedule_lr(DISRNN_SCHED_CONSTANT, 0.1, 0.5, 0.0, 7, 10) == 0.1);
    assert_true(disrnn__schedule_lr(DISRNN_SCHED_EXPONENTIAL, 0.1, 0.5, 0.0, 0, 10) == 0.1);
    assert_true(fabs(disrnn__schedule_lr(DISRNN_SCHED_EXPONENTIAL, 0.1, 0.5, 0.0, 3, 10) - 0.0125) < 1e-17);
    assert_true(disrnn__schedule_lr(DISRNN_SCHED_COSINE, 0.1, 1.0, 0.01, 0, 10) == 0.1);
    assert_true(fabs(disrnn__schedule_lr(DISRNN_SCHED_COSINE, 0.1, 1.0, 0.01, 5, 10) - 0.055) < 1e-15);
    assert_true(fabs(disrnn__schedule_lr(DISRNN_SCHED_COSINE, 0.1, 1.0, 0.01, 10, 10) - 0.01) < 1e-15);
    assert_true(fabs(disrnn__schedule_lr(DISRNN_SCHED_COSINE, 0.1, 1.0, 0.01, 15, 10) - 0.01) < 1e-15);
    assert_true(disrnn__schedule_lr(DISRNN_SCHED_COSINE, 0.1, 1.0, 0.01, 3, 0) == 0.1);
    /* through the trainer: the exponential schedule at epoch 2 halves twice. Adam's first step moves
     * every parameter by about lr (sign of the gradient), which shows the rate in force. */
    {
        disrnn_model_t *m = make_model(3, 2, 1, 0.0, 4);
        disrnn_dataset_t *ds = make_data(3, 8, 5);
        disrnn_trainer_t *tr = NULL;
        const size_t n = disrnn_model_num_params(m);
        double *before, *after, *zero = calloc(2 * n + 1, sizeof(double));
        assert_ok(disrnn_trainer_create(&tr, m, ds, 1));
        assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_SCHEDULE, DISRNN_SCHED_EXPONENTIAL));
        assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_LR_GAMMA, 0.5));
        assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_LR, 0.1));
        assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 8));
        assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 2));
        assert_ok(disrnn_trainer_fit(tr)); /* two epochs of one batch */
        assert_ok(disrnn_trainer_set_state(tr, zero, 2 * n + 1));
        before = params_of(m);
        assert_ok(disrnn_trainer_step(tr, NULL, 0)); /* first step of epoch index 2 */
        after = params_of(m);
        for (size_t i = 0; i < n; i++) {
            const double d = fabs(after[i] - before[i]);
            assert_true(d < 0.025 * (1 + 1e-6));
            if (d > 0) assert_true(d > 0.025 * 0.99);
        }
        free(before); free(after); free(zero);
        disrnn_trainer_free(tr);
        disrnn_dataset_free(ds);
        disrnn_model_free(m);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Fitting */

enum { SYN_N = 20, SYN_T = 1000 };

static void split(disrnn_dataset_t **train, disrnn_dataset_t **test, size_t T, uint64_t seed)
{
    disrnn_dataset_t *all = make_data(SYN_N, T, seed);
    assert_ok(disrnn_dataset_subset_interleaved(all, 2, 0, train));
    assert_ok(disrnn_dataset_subset_interleaved(all, 2, 1, test));
    disrnn_dataset_free(all);
}

static void test_fit_synthetic(void **state)
{
    disrnn_dataset_t *train = NULL, *test = NULL;
    disrnn_model_t *m = make_model(SYN_N, 6, 2, 20.0, 11);
    disrnn_trainer_t *tr = NULL;
    recorder *rec = calloc(1, sizeof *rec);
    double first = 0, last = 0, r2_before, r2_after, val[5];
    const int64_t epochs = 300;
    (void)state;
    split(&train, &test, SYN_T, 21);
    assert_ok(disrnn_trainer_create(&tr, m, train, 5));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_OPTIMIZER, DISRNN_OPTIM_ADAMW));
    assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_LR, 5e-3));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, epochs));
    assert_ok(disrnn_trainer_set_validation(tr, test));
    assert_ok(disrnn_trainer_set_progress(tr, record, rec));
    r2_before = recon_r2(m, test);
    assert_ok(disrnn_trainer_fit(tr));
    r2_after = recon_r2(m, test);
    assert_int_equal(rec->count, (size_t)epochs);
    for (int k = 0; k < 5; k++) {
        first += rec->loss[k] / 5;
        last += rec->loss[epochs - 5 + k] / 5;
    }
    print_message("synthetic fit: loss first-5 mean %.4f, last-5 mean %.4f, final PC %.4f, val %.4f, "
                  "held-out reconstruction R^2 %.4f (before %.4f)\n",
                  first, last, rec->pc[epochs - 1], rec->val[epochs - 1], r2_after, r2_before);
    assert_true(last < first);
    assert_true(rec->val[epochs - 1] < rec->val[0]);
    assert_true(r2_after > 0.6);
    assert_true(r2_after > r2_before);
    /* 500 training samples in batches of 128: 4 steps an epoch, the last one of 116 */
    assert_true(rec->step[0] == 4 && rec->epoch[epochs - 1] == epochs);
    /* the callback's validation loss is disrnn_trainer_evaluate() at that epoch */
    assert_ok(disrnn_trainer_evaluate(tr, test, val, 5));
    assert_true(val[DISRNN_TERM_LOSS] == rec->val[epochs - 1]);
    assert_status(disrnn_trainer_evaluate(tr, test, val, 4), DISRNN_ERR_BUFFER_TOO_SMALL);
    disrnn_trainer_free(tr);
    disrnn_dataset_free(train);
    disrnn_dataset_free(test);
    disrnn_model_free(m);
    free(rec);
}

/* A fit of the given length; returns the model (caller frees). */
static disrnn_model_t *short_fit(const disrnn_dataset_t *ds, uint64_t seed, int optimizer, double wd, int64_t epochs,
                                 recorder *rec)
{
    disrnn_model_t *m = make_model(SYN_N, 6, 2, 20.0, 11);
    disrnn_trainer_t *tr = NULL;
    assert_ok(disrnn_trainer_create(&tr, m, ds, seed));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_OPTIMIZER, optimizer));
    assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_WEIGHT_DECAY, wd));
    assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_LR, 5e-3));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 48));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, epochs));
    assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_CLIP_NORM, 5.0));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_SCHEDULE, DISRNN_SCHED_COSINE));
    if (rec) assert_ok(disrnn_trainer_set_progress(tr, record, rec));
    assert_ok(disrnn_trainer_fit(tr));
    disrnn_trainer_free(tr);
    return m;
}

static void test_repeat_fits_bit_identical(void **state)
{
    disrnn_dataset_t *ds = make_data(SYN_N, 200, 8);
    disrnn_model_t *a = short_fit(ds, 3, DISRNN_OPTIM_ADAMW, 0.01, 8, NULL);
    disrnn_model_t *b = short_fit(ds, 3, DISRNN_OPTIM_ADAMW, 0.01, 8, NULL);
    disrnn_model_t *c = short_fit(ds, 4, DISRNN_OPTIM_ADAMW, 0.01, 8, NULL);
    (void)state;
    assert_true(hash_params(a) == hash_params(b));
    {
        double *pa = params_of(a), *pb = params_of(b);
        assert_memory_equal(pa, pb, disrnn_model_num_params(a) * sizeof(double));
        free(pa); free(pb);
    }
    assert_true(hash_params(a) != hash_params(c)); /* the seed matters */
    disrnn_model_free(a); disrnn_model_free(b); disrnn_model_free(c);
    disrnn_dataset_free(ds);
}

static void test_adamw_wd0_equals_adam(void **state)
{
    disrnn_dataset_t *ds = make_data(SYN_N, 200, 8);
    disrnn_model_t *a = short_fit(ds, 3, DISRNN_OPTIM_ADAM, 0.0, 6, NULL);
    disrnn_model_t *w = short_fit(ds, 3, DISRNN_OPTIM_ADAMW, 0.0, 6, NULL);
    disrnn_model_t *w1 = short_fit(ds, 3, DISRNN_OPTIM_ADAMW, 0.05, 6, NULL);
    disrnn_model_t *a1 = short_fit(ds, 3, DISRNN_OPTIM_ADAM, 0.05, 6, NULL);
    double *pa = params_of(a), *pw = params_of(w);
    (void)state;
    assert_memory_equal(pa, pw, disrnn_model_num_params(a) * sizeof(double));
    assert_true(hash_params(w1) != hash_params(w)); /* decay does act in AdamW */
    assert_true(hash_params(a1) == hash_params(a));  /* and is ignored by Adam */
    free(pa); free(pw);
    disrnn_model_free(a); disrnn_model_free(w); disrnn_model_free(w1); disrnn_model_free(a1);
    disrnn_dataset_free(ds);
}

static void test_step_equals_gradient_apply(void **state)
{
    disrnn_dataset_t *ds = make_data(SYN_N, 100, 9);
    disrnn_model_t *m1 = make_model(SYN_N, 6, 2, 20.0, 11), *m2 = make_model(SYN_N, 6, 2, 20.0, 11);
    disrnn_trainer_t *t1 = NULL, *t2 = NULL;
    const size_t n = disrnn_model_num_params(m1);
    size_t idx[32];
    double terms1[5], terms2[5], *g = malloc(n * sizeof(double));
    (void)state;
    assert_ok(disrnn_trainer_create(&t1, m1, ds, 2));
    assert_ok(disrnn_trainer_create(&t2, m2, ds, 2));
    for (int k = 0; k < 2; k++) {
        assert_ok(disrnn_trainer_set_int(k ? t2 : t1, DISRNN_TRAIN_SHUFFLE, 0));
        assert_ok(disrnn_trainer_set_int(k ? t2 : t1, DISRNN_TRAIN_BATCH_SIZE, 32));
    }
    for (int s = 0; s < 3; s++) {
        for (size_t j = 0; j < 32; j++) idx[j] = 32 * (size_t)s + j;
        assert_ok(disrnn_trainer_step(t1, terms1, 5));
        assert_ok(disrnn_trainer_gradient(t2, idx, 32, terms2, 5, g, n));
        assert_ok(disrnn_trainer_apply(t2, g, n));
        assert_memory_equal(terms1, terms2, sizeof terms1);
    }
    assert_true(hash_params(m1) == hash_params(m2));
    assert_status(disrnn_trainer_step(t1, terms1, 4), DISRNN_ERR_BUFFER_TOO_SMALL);
    idx[0] = 100;
    assert_status(disrnn_trainer_gradient(t2, idx, 2, NULL, 0, g, n), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_trainer_gradient(t2, idx, 0, NULL, 0, g, n), DISRNN_ERR_INVALID_ARG);
    idx[0] = 1;
    assert_status(disrnn_trainer_gradient(t2, idx, 2, NULL, 0, g, n - 1), DISRNN_ERR_BUFFER_TOO_SMALL);
    /* a batch of one sample cannot estimate PC; the last single sample of an epoch is merged */
    assert_status(disrnn_trainer_gradient(t2, idx, 1, NULL, 0, g, n), DISRNN_ERR_INVALID_ARG);
    disrnn_trainer_free(t1); disrnn_trainer_free(t2);
    disrnn_model_free(m1); disrnn_model_free(m2);
    disrnn_dataset_free(ds);
    free(g);
}

static void test_batch_layout(void **state)
{
    disrnn_dataset_t *ds = make_data(4, 33, 9);
    disrnn_model_t *m = make_model(4, 2, 2, 1.0, 1);
    disrnn_trainer_t *tr = NULL;
    int64_t step, epoch;
    (void)state;
    assert_ok(disrnn_trainer_create(&tr, m, ds, 2));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 8));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 1));
    /* 33 = 8 + 8 + 8 + 9: the single leftover sample joins the last batch */
    assert_ok(disrnn_trainer_fit(tr));
    assert_ok(disrnn_trainer_progress(tr, &step, &epoch));
    assert_true(step == 4 && epoch == 1);
    /* without PC the leftover is a batch of its own */
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_BETA, 0.0));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 2));
    assert_ok(disrnn_trainer_fit(tr));
    assert_ok(disrnn_trainer_progress(tr, &step, &epoch));
    assert_true(step == 9 && epoch == 2);
    /* drop_last drops it */
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_DROP_LAST, 1));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 3));
    assert_ok(disrnn_trainer_fit(tr));
    assert_ok(disrnn_trainer_progress(tr, &step, &epoch));
    assert_true(step == 13 && epoch == 3);
    /* max steps stops mid-epoch; a second fit continues from there */
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 5));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_MAX_STEPS, 15));
    assert_ok(disrnn_trainer_fit(tr));
    assert_ok(disrnn_trainer_progress(tr, &step, &epoch));
    assert_true(step == 15 && epoch == 3);
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_MAX_STEPS, 0));
    assert_ok(disrnn_trainer_fit(tr));
    assert_ok(disrnn_trainer_progress(tr, &step, &epoch));
    assert_true(step == 21 && epoch == 5);
    /* drop_last with a batch larger than the data leaves no batch at all */
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 64));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 6));
    assert_status(disrnn_trainer_fit(tr), DISRNN_ERR_INVALID_ARG);
    assert_ok(disrnn_trainer_progress(tr, &step, &epoch));
    assert_true(step == 21 && epoch == 5);
    disrnn_trainer_free(tr);
    disrnn_model_free(m);
    disrnn_dataset_free(ds);
}

/* ---------------------------------------------------------------------------------------- */
/* Checkpoints */

/* Checkpoints go to the suite's scratch folder (support.h), removed with its contents at the end. */
static void make_tmpdir(void) { assert_true(test_scratch[0] != '\0'); }

static void tmp_path(char *out, size_t len, const char *name)
{
    const int n = snprintf(out, len, "%s/%s", test_scratch, name);
    assert_true(n > 0 && (size_t)n < len);
}

static disrnn_trainer_t *resume_trainer(disrnn_model_t **m, const disrnn_dataset_t *ds, uint64_t seed, uint64_t model_seed)
{
    disrnn_trainer_t *tr = NULL;
    *m = make_model(SYN_N, 6, 2, 20.0, model_seed);
    assert_ok(disrnn_trainer_create(&tr, *m, ds, seed));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_OPTIMIZER, DISRNN_OPTIM_ADAMW));
    assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_LR, 5e-3));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 32));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 6));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_SCHEDULE, DISRNN_SCHED_COSINE));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_PATIENCE, 50));
    return tr;
}

static void test_resume_bit_identical(void **state)
{
    disrnn_dataset_t *all = make_data(SYN_N, 200, 12), *train = NULL, *val = NULL;
    disrnn_model_t *ma, *mb, *mc;
    disrnn_trainer_t *ta, *tb, *tc;
    recorder *ra = calloc(1, sizeof *ra), *rc = calloc(1, sizeof *rc);
    char path[128];
    (void)state;
    make_tmpdir();
    tmp_path(path, sizeof path, "resume.ckpt");
    assert_ok(disrnn_dataset_subset_interleaved(all, 2, 0, &train));
    assert_ok(disrnn_dataset_subset_interleaved(all, 2, 1, &val));
    /* uninterrupted: 100 samples = 32 + 32 + 32 + 4 per epoch */
    ta = resume_trainer(&ma, train, 9, 11);
    assert_ok(disrnn_trainer_set_validation(ta, val));
    assert_ok(disrnn_trainer_set_progress(ta, record, ra));
    assert_ok(disrnn_trainer_fit(ta));
    assert_int_equal(ra->count, 6);

    /* interrupted after step 7 (in the middle of epoch 2), saved, restored into another trainer
     * with a different seed and a model with different initial parameters */
    for (int variant = 0; variant < 2; variant++) {
        tb = resume_trainer(&mb, train, 9, 11);
        assert_ok(disrnn_trainer_set_validation(tb, val));
        if (variant == 0) {
            assert_ok(disrnn_trainer_set_int(tb, DISRNN_TRAIN_MAX_STEPS, 7));
            assert_ok(disrnn_trainer_fit(tb));
        } else {
            /* single steps: the exhausted epochs are closed by the next step, without validation,
             * which the uninterrupted run does not skip; so only 2 steps here, inside epoch 1 */
            assert_ok(disrnn_trainer_step(tb, NULL, 0));
            assert_ok(disrnn_trainer_step(tb, NULL, 0));
        }
        assert_ok(disrnn_trainer_save(tb, path));
        disrnn_trainer_free(tb);
        disrnn_model_free(mb);

        tc = resume_trainer(&mc, train, 12345, 99);
        assert_ok(disrnn_trainer_set_validation(tc, val));
        memset(rc, 0, sizeof *rc);
        assert_ok(disrnn_trainer_set_progress(tc, record, rc));
        assert_ok(disrnn_trainer_load(tc, path));
        {
            int64_t step;
            assert_ok(disrnn_trainer_progress(tc, &step, NULL));
            assert_int_equal(step, variant == 0 ? 7 : 2);
        }
        assert_ok(disrnn_trainer_set_int(tc, DISRNN_TRAIN_MAX_STEPS, 0));
        assert_ok(disrnn_trainer_fit(tc));
        assert_true(hash_params(mc) == hash_params(ma));
        {
            double *pa = params_of(ma), *pc = params_of(mc);
            assert_memory_equal(pa, pc, disrnn_model_num_params(ma) * sizeof(double));
            free(pa); free(pc);
        }
        /* the epochs after the resume report the same numbers */
        {
            const size_t skip = 6 - rc->count;
            assert_int_equal(rc->count, variant == 0 ? 5 : 6);
            for (size_t k = 0; k < rc->count; k++) {
                assert_true(rc->loss[k] == ra->loss[skip + k]);
                assert_true(rc->val[k] == ra->val[skip + k]);
                assert_true(rc->step[k] == ra->step[skip + k]);
            }
        }
        disrnn_trainer_free(tc);
        disrnn_model_free(mc);
    }
    /* a trainer whose training set differs in size refuses the checkpoint */
    {
        disrnn_model_t *md;
        disrnn_trainer_t *td = resume_trainer(&md, all, 9, 11);
        tstate before;
        tstate_take(td, &before);
        assert_status(disrnn_trainer_load(td, path), DISRNN_ERR_INVALID_ARG);
        tstate_same(td, &before);
        tstate_free(&before);
        disrnn_trainer_free(td);
        disrnn_model_free(md);
    }
    /* and so does one whose model has another shape */
    {
        disrnn_model_t *me = make_model(SYN_N, 4, 2, 20.0, 11);
        disrnn_trainer_t *te = NULL;
        assert_ok(disrnn_trainer_create(&te, me, train, 1));
        assert_status(disrnn_trainer_load(te, path), DISRNN_ERR_INVALID_ARG);
        assert_status(disrnn_trainer_load(te, "/nonexistent/dir/x.ckpt"), DISRNN_ERR_IO);
        assert_status(disrnn_trainer_save(te, "/nonexistent/dir/x.ckpt"), DISRNN_ERR_IO);
        assert_status(disrnn_trainer_save(te, NULL), DISRNN_ERR_INVALID_ARG);
        disrnn_trainer_free(te);
        disrnn_model_free(me);
    }
    remove(path);
    disrnn_trainer_free(ta);
    disrnn_model_free(ma);
    disrnn_dataset_free(all);
    disrnn_dataset_free(train);
    disrnn_dataset_free(val);
    free(ra);
    free(rc);
}

static int write_file(const char *path, const unsigned char *b, size_t n)
{
    FILE *f;
    size_t w;
    /* a fresh file each time: ext4 flushes a file truncated and rewritten in place on close,
     * which would make thousands of rewrites slow */
    remove(path);
    f = fopen(path, "wb");
    if (!f) return -1;
    w = fwrite(b, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static void test_checkpoint_corruption(void **state)
{
    disrnn_dataset_t *ds = make_data(3, 10, 4);
    disrnn_model_t *m = make_model(3, 2, 2, 1.0, 1);
    disrnn_trainer_t *tr = NULL;
    char good[128], bad[128];
    unsigned char *buf;
    size_t len;
    long at;
    FILE *f;
    tstate before;
    size_t n_rejected = 0;
    (void)state;
    make_tmpdir();
    tmp_path(good, sizeof good, "small.ckpt");
    tmp_path(bad, sizeof bad, "bad.ckpt");
    assert_ok(disrnn_trainer_create(&tr, m, ds, 1));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 4));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 2));
    assert_ok(disrnn_trainer_fit(tr));
    assert_ok(disrnn_trainer_step(tr, NULL, 0));
    assert_ok(disrnn_trainer_save(tr, good));
    f = fopen(good, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    at = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(at > 0);
    len = (size_t)at;
    buf = malloc(len);
    assert_int_equal(fread(buf, 1, len, f), len);
    fclose(f);
    /* move the trainer on, so a wrongly accepted file would show */
    assert_ok(disrnn_trainer_step(tr, NULL, 0));
    tstate_take(tr, &before);
    for (size_t cut = 0; cut < len; cut++) {
        int rc;
        assert_int_equal(write_file(bad, buf, cut), 0);
        rc = disrnn_trainer_load(tr, bad);
        assert_true(rc == DISRNN_ERR_CORRUPT || rc == DISRNN_ERR_IO);
        n_rejected++;
    }
    tstate_same(tr, &before);
    for (size_t i = 0; i < len; i++) {
        int rc;
        buf[i] ^= (unsigned char)(1u << (i % 8));
        assert_int_equal(write_file(bad, buf, len), 0);
        rc = disrnn_trainer_load(tr, bad);
        buf[i] ^= (unsigned char)(1u << (i % 8));
        assert_true(rc == DISRNN_ERR_CORRUPT || rc == DISRNN_ERR_VERSION);
        n_rejected++;
    }
    tstate_same(tr, &before);
    print_message("checkpoint of %zu bytes: %zu truncated or flipped versions rejected\n", len, n_rejected);
    /* the intact file still loads and takes the trainer back one step */
    assert_ok(disrnn_trainer_load(tr, good));
    {
        int64_t step;
        assert_ok(disrnn_trainer_progress(tr, &step, NULL));
        assert_int_equal(step, before.step - 1);
    }
    remove(good);
    remove(bad);
    tstate_free(&before);
    free(buf);
    disrnn_trainer_free(tr);
    disrnn_model_free(m);
    disrnn_dataset_free(ds);
}

/* ---------------------------------------------------------------------------------------- */
/* Non-finite steps */

static void test_nonfinite_refused(void **state)
{
    disrnn_dataset_t *ds = make_data(SYN_N, 120, 13);
    disrnn_model_t *m = make_model(SYN_N, 6, 2, 20.0, 11);
    disrnn_trainer_t *tr = NULL;
    const size_t n = disrnn_model_num_params(m);
    double *A = malloc(SYN_N * 6 * sizeof(double)), *huge = malloc(SYN_N * 6 * sizeof(double));
    double *g = calloc(n, sizeof(double));
    tstate before;
    (void)state;
    assert_ok(disrnn_trainer_create(&tr, m, ds, 1));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 32));
    assert_ok(disrnn_trainer_step(tr, NULL, 0));
    assert_ok(disrnn_trainer_step(tr, NULL, 0));
    /* decoder weights so large that the squared error overflows */
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_A, A, SYN_N * 6));
    for (size_t i = 0; i < SYN_N * 6; i++) huge[i] = 1e300;
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_A, huge, SYN_N * 6));
    tstate_take(tr, &before);
    assert_status(disrnn_trainer_step(tr, NULL, 0), DISRNN_ERR_NONFINITE);
    assert_non_null(strstr(disrnn_trainer_last_error(tr), "step 3"));
    tstate_same(tr, &before);
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 3));
    assert_status(disrnn_trainer_fit(tr), DISRNN_ERR_NONFINITE);
    assert_non_null(strstr(disrnn_trainer_last_error(tr), "epoch 1"));
    tstate_same(tr, &before);
    /* a NaN gradient given by the caller, and one whose square overflows the second moment */
    g[3] = NAN;
    assert_status(disrnn_trainer_apply(tr, g, n), DISRNN_ERR_NONFINITE);
    tstate_same(tr, &before);
    g[3] = 1e200;
    assert_status(disrnn_trainer_apply(tr, g, n), DISRNN_ERR_NONFINITE);
    tstate_same(tr, &before);
    /* with sane parameters the same trainer continues */
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_A, A, SYN_N * 6));
    assert_ok(disrnn_trainer_fit(tr));
    {
        int64_t epoch;
        assert_ok(disrnn_trainer_progress(tr, NULL, &epoch));
        assert_int_equal(epoch, 3);
    }
    tstate_free(&before);
    free(A); free(huge); free(g);
    disrnn_trainer_free(tr);
    disrnn_model_free(m);
    disrnn_dataset_free(ds);
}

/* ---------------------------------------------------------------------------------------- */
/* Callbacks and early stopping */

static void test_callback_stop_and_continue(void **state)
{
    disrnn_dataset_t *ds = make_data(SYN_N, 100, 14);
    disrnn_model_t *ref = short_fit(ds, 6, DISRNN_OPTIM_ADAMW, 0.01, 6, NULL);
    disrnn_model_t *m = make_model(SYN_N, 6, 2, 20.0, 11);
    disrnn_trainer_t *tr = NULL;
    recorder *rec = calloc(1, sizeof *rec);
    int64_t epoch;
    (void)state;
    assert_ok(disrnn_trainer_create(&tr, m, ds, 6));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_OPTIMIZER, DISRNN_OPTIM_ADAMW));
    assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_WEIGHT_DECAY, 0.01));
    assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_LR, 5e-3));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 48));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 6));
    assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_CLIP_NORM, 5.0));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_SCHEDULE, DISRNN_SCHED_COSINE));
    assert_ok(disrnn_trainer_set_progress(tr, record, rec));
    rec->stop_at = 2;
    rec->stop_ret = 1;
    assert_status(disrnn_trainer_fit(tr), DISRNN_STOPPED);
    assert_ok(disrnn_trainer_progress(tr, NULL, &epoch));
    assert_int_equal(epoch, 2);
    assert_true(isnan(rec->val[0])); /* no validation set */
    rec->stop_at = 4;
    rec->stop_ret = -3;
    assert_status(disrnn_trainer_fit(tr), DISRNN_ERR_CALLBACK);
    assert_non_null(strstr(disrnn_trainer_last_error(tr), "-3"));
    rec->stop_at = 0;
    assert_ok(disrnn_trainer_fit(tr));
    assert_int_equal(rec->count, 6);
    /* stopping and continuing changes nothing in the result */
    assert_true(hash_params(m) == hash_params(ref));
    /* a finished fit called again does nothing */
    assert_ok(disrnn_trainer_fit(tr));
    assert_int_equal(rec->count, 6);
    assert_ok(disrnn_trainer_set_progress(tr, NULL, NULL));
    disrnn_trainer_free(tr);
    disrnn_model_free(m);
    disrnn_model_free(ref);
    disrnn_dataset_free(ds);
    free(rec);
}

static void test_early_stopping_keep_best(void **state)
{
    disrnn_dataset_t *all = make_data(SYN_N, 240, 15), *train = NULL, *val = NULL;
    disrnn_model_t *m = make_model(SYN_N, 6, 2, 20.0, 11);
    disrnn_trainer_t *tr = NULL;
    recorder *rec = calloc(1, sizeof *rec);
    const size_t n = disrnn_model_num_params(m);
    size_t best = 0;
    int64_t epoch;
    int rc;
    (void)state;
    assert_ok(disrnn_dataset_subset_interleaved(all, 2, 0, &train));
    assert_ok(disrnn_dataset_subset_interleaved(all, 2, 1, &val));
    rec->model = m;
    rec->snap = malloc(512 * n * sizeof(double));
    assert_ok(disrnn_trainer_create(&tr, m, train, 8));
    assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_LR, 0.05)); /* large: the validation loss soon rises */
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 40));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 500));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_PATIENCE, 3));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_KEEP_BEST, 1));
    assert_ok(disrnn_trainer_set_validation(tr, val));
    assert_ok(disrnn_trainer_set_progress(tr, record, rec));
    rc = disrnn_trainer_fit(tr);
    assert_status(rc, DISRNN_EARLY_STOPPED);
    assert_ok(disrnn_trainer_progress(tr, NULL, &epoch));
    assert_int_equal((size_t)epoch, rec->count);
    for (size_t k = 1; k < rec->count; k++)
        if (rec->val[k] < rec->val[best]) best = k;
    print_message("early stopping after %zu epochs, best validation loss %.4f at epoch %zu\n", rec->count,
                  rec->val[best], best + 1);
    /* patience 3: the last three epochs did not improve on the best */
    assert_int_equal(rec->count, best + 1 + 3);
    {
        double *p = params_of(m);
        assert_memory_equal(p, rec->snap + best * n, n * sizeof(double));
        free(p);
    }
    free(rec->snap);
    free(rec);
    disrnn_trainer_free(tr);
    disrnn_model_free(m);
    disrnn_dataset_free(all);
    disrnn_dataset_free(train);
    disrnn_dataset_free(val);
}

static void test_keep_best_at_end(void **state)
{
    disrnn_dataset_t *all = make_data(SYN_N, 240, 15), *train = NULL, *val = NULL;
    disrnn_model_t *m = make_model(SYN_N, 6, 2, 20.0, 11);
    disrnn_trainer_t *tr = NULL;
    recorder *rec = calloc(1, sizeof *rec);
    const size_t n = disrnn_model_num_params(m);
    size_t best = 0;
    (void)state;
    assert_ok(disrnn_dataset_subset_interleaved(all, 2, 0, &train));
    assert_ok(disrnn_dataset_subset_interleaved(all, 2, 1, &val));
    rec->model = m;
    rec->snap = malloc(512 * n * sizeof(double));
    assert_ok(disrnn_trainer_create(&tr, m, train, 8));
    assert_ok(disrnn_trainer_set_double(tr, DISRNN_TRAIN_LR, 0.05));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 40));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 25));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_KEEP_BEST, 1));
    assert_ok(disrnn_trainer_set_validation(tr, val));
    assert_ok(disrnn_trainer_set_progress(tr, record, rec));
    assert_ok(disrnn_trainer_fit(tr)); /* no patience: all 25 epochs run */
    assert_int_equal(rec->count, 25);
    for (size_t k = 1; k < rec->count; k++)
        if (rec->val[k] < rec->val[best]) best = k;
    assert_true(best < 24); /* the large rate makes the validation loss wander */
    {
        double *p = params_of(m);
        assert_memory_equal(p, rec->snap + best * n, n * sizeof(double));
        free(p);
    }
    free(rec->snap);
    free(rec);
    disrnn_trainer_free(tr);
    disrnn_model_free(m);
    disrnn_dataset_free(all);
    disrnn_dataset_free(train);
    disrnn_dataset_free(val);
}

/* ---------------------------------------------------------------------------------------- */
/* Allocation failures */

/* A 4-channel model with 2 groups of 1 latent, beta 1, allocating through the counting allocator c. */
static disrnn_model_t *chaos_model(test_chaos *c)
{
    disrnn_config_t *cfg = NULL;
    disrnn_model_t *m = NULL;
    size_t groups[2] = {1, 1};
    assert_ok(disrnn_config_create(&cfg, 4, 2));
    assert_ok(disrnn_config_set_groups(cfg, groups, 2));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, 1.0));
    assert_ok(disrnn_model_create_with_allocator(&m, cfg, test_chaos_alloc, test_chaos_free, c));
    disrnn_config_free(cfg);
    return m;
}

static void test_allocation_failures(void **state)
{
    disrnn_dataset_t *ds = make_data(4, 50, 16), *val = make_data(4, 20, 17);
    test_chaos c = {-1, 0, 0};
    disrnn_model_t *m = chaos_model(&c);
    int finished = 0;
    (void)state;
    for (long k = 0; k < 500 && !finished; k++) {
        const long live = c.live;
        disrnn_trainer_t *tr = NULL;
        double v;
        int rc;
        c.count = 0;
        c.fail_at = k;
        rc = disrnn_trainer_create(&tr, m, ds, 1);
        if (rc != DISRNN_OK) {
            assert_status(rc, DISRNN_ERR_NOMEM);
            assert_null(tr);
            assert_int_equal(c.live, live);
            assert_ok(disrnn_model_get_double(m, DISRNN_OPT_N_TOT, &v));
            assert_true(v == 0.0);
            continue;
        }
        /* the calls after creation that allocate fail cleanly too */
        rc = disrnn_trainer_set_validation(tr, val);
        if (rc == DISRNN_OK) rc = disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 30);
        if (rc == DISRNN_OK) rc = disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 1);
        if (rc == DISRNN_OK) rc = disrnn_trainer_fit(tr);
        if (rc != DISRNN_OK) assert_status(rc, DISRNN_ERR_NOMEM);
        finished = c.count <= c.fail_at; /* no allocation failed: every point was covered */
        disrnn_trainer_free(tr);
        assert_ok(disrnn_model_set_double(m, DISRNN_OPT_N_TOT, 0.0));
    }
    assert_true(finished);
    disrnn_model_free(m);
    assert_int_equal(c.live, 0);
    disrnn_dataset_free(ds);
    disrnn_dataset_free(val);
}

/* A step writes the new parameters beside the old ones and exchanges the arrays with the model:
 * the model reads the new values through every block, a refused step leaves them, and whichever
 * handle is freed first, every array is freed once (the counting allocator ends at zero; the
 * sanitizer run would see a double free). */
static void test_parameter_arrays_exchanged(void **state)
{
    disrnn_dataset_t *ds = make_data(4, 50, 16);
    for (int model_first = 0; model_first < 2; model_first++) {
        test_chaos c = {-1, 0, 0};
        disrnn_model_t *m = chaos_model(&c);
        disrnn_trainer_t *tr = NULL;
        size_t n;
        double *before, *after, terms[DISRNN__NUM_TERMS];
        (void)state;
        assert_ok(disrnn_trainer_create(&tr, m, ds, 3));
        n = disrnn_model_num_params(m);
        before = params_of(m);
        for (int k = 0; k < 3; k++) assert_ok(disrnn_trainer_step(tr, terms, DISRNN__NUM_TERMS));
        after = params_of(m);
        assert_true(memcmp(before, after, n * sizeof(double)) != 0);
        /* the loss seen through the blocks is the loss of the exchanged parameters: the same
         * terms as a model given them through disrnn_model_set_params */
        {
            enum { MB = 6 };
            disrnn_model_t *copy = NULL;
            double x[4 * MB], h[4 * MB], eps[2 * MB], t1[DISRNN__NUM_TERMS], t2[DISRNN__NUM_TERMS];
            uint64_t rs = 5;
            test_normal(&rs, x, 4 * MB);
            test_normal(&rs, h, 4 * MB);
            test_normal(&rs, eps, 2 * MB);
            assert_ok(disrnn_model_clone(&copy, m));
            assert_ok(disrnn_model_set_params(copy, before, n));
            assert_ok(disrnn_model_set_params(copy, after, n));
            assert_ok(disrnn_model_loss(m, MB, x, 4, h, 4, NULL, 0, NULL, 0, eps, 2, t1, DISRNN__NUM_TERMS, NULL, 0));
            assert_ok(disrnn_model_loss(copy, MB, x, 4, h, 4, NULL, 0, NULL, 0, eps, 2, t2, DISRNN__NUM_TERMS, NULL, 0));
            assert_memory_equal(t1, t2, sizeof t1);
            disrnn_model_free(copy);
        }
        if (model_first) {
            disrnn_model_free(m);
            disrnn_trainer_free(tr);
        } else {
            disrnn_trainer_free(tr);
            disrnn_model_free(m);
        }
        assert_int_equal(c.live, 0);
        free(before);
        free(after);
    }
    disrnn_dataset_free(ds);
}

/* ---------------------------------------------------------------------------------------- */
/* Thread counts: the same fit in child processes with OPENBLAS_NUM_THREADS = 1 and 2 */

static uint64_t thread_probe_fit(void)
{
    disrnn_dataset_t *ds = make_data(64, 1200, 18);
    disrnn_model_t *m = NULL;
    disrnn_trainer_t *tr = NULL;
    disrnn_config_t *cfg = NULL;
    size_t groups[2] = {4, 4};
    uint64_t h;
    assert_ok(disrnn_config_create(&cfg, 64, 8));
    assert_ok(disrnn_config_set_groups(cfg, groups, 2));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, 20.0));
    assert_ok(disrnn_model_create(&m, cfg));
    disrnn_config_free(cfg);
    assert_ok(disrnn_trainer_create(&tr, m, ds, 3));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 400));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 3));
    assert_ok(disrnn_trainer_fit(tr));
    h = hash_params(m);
    disrnn_trainer_free(tr);
    disrnn_model_free(m);
    disrnn_dataset_free(ds);
    return h;
}

static const char *self_path = "/proc/self/exe"; /* argv[0] when it is a path (also right under valgrind) */

static int child_hash(const char *threads, uint64_t *h)
{
    int fd[2], status;
    char line[64] = {0};
    ssize_t got;
    pid_t pid;
    if (pipe(fd) != 0) return -1;
    pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        char *const args[] = {(char *)"test_trainer", (char *)"--thread-probe", NULL};
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        setenv("OPENBLAS_NUM_THREADS", threads, 1);
        setenv("OMP_NUM_THREADS", threads, 1);
        execv(self_path, args);
        _exit(127);
    }
    close(fd[1]);
    got = read(fd[0], line, sizeof line - 1);
    close(fd[0]);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || got <= 0) return -1;
    return sscanf(line, "%llx", (unsigned long long *)h) == 1 ? 0 : -1;
}

static void test_thread_count_independence(void **state)
{
    uint64_t h1 = 0, h2 = 0, here;
    (void)state;
    if (child_hash("1", &h1) != 0 || child_hash("2", &h2) != 0) {
        print_message("cannot re-run the test binary in a child process; skipping\n");
        skip();
    }
    here = thread_probe_fit();
    print_message("parameter hash: 1 thread %016llx, 2 threads %016llx, this process %016llx\n",
                  (unsigned long long)h1, (unsigned long long)h2, (unsigned long long)here);
    assert_true(h1 == h2);
    assert_true(h1 == here);
}

/* The trainer's own threads: the same fit on 1, 2 and 3 threads gives the same bits (a model wide
 * enough for several channel tasks, a batch of several sample tasks, Adam in several tasks), and
 * so does a run that switches its thread count halfway; the count is not part of a checkpoint. */
static uint64_t fit_on_threads(int64_t t_first, int64_t t_second, const char *ckpt)
{
    disrnn_dataset_t *ds = NULL;
    double *x = malloc(700 * 300 * sizeof(double));
    uint64_t rs = 19;
    disrnn_model_t *m = NULL;
    disrnn_trainer_t *tr = NULL;
    disrnn_config_t *cfg = NULL;
    size_t groups[3] = {2, 3, 4};
    int64_t iv;
    uint64_t h;
    assert_non_null(x);
    test_normal(&rs, x, 700 * 300); /* N = 700 > 256: several channel tasks */
    assert_ok(disrnn_dataset_create(&ds, 700, 0, DISRNN_DATA_CONTINUOUS));
    assert_ok(disrnn_dataset_add_trial(ds, 300, x, 700, NULL, 0, NULL, 0));
    free(x);
    assert_ok(disrnn_config_create(&cfg, 700, 9));
    assert_ok(disrnn_config_set_groups(cfg, groups, 3));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, 5.0));
    assert_ok(disrnn_model_create(&m, cfg));
    disrnn_config_free(cfg);
    assert_ok(disrnn_trainer_create(&tr, m, ds, 11));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 70));
    assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_THREADS, t_first));
    for (int s = 0; s < 6; s++) assert_ok(disrnn_trainer_step(tr, NULL, 0));
    if (ckpt) {
        assert_ok(disrnn_trainer_save(tr, ckpt));
        assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_THREADS, t_second));
        assert_ok(disrnn_trainer_load(tr, ckpt));
        assert_ok(disrnn_trainer_get_int(tr, DISRNN_TRAIN_THREADS, &iv));
        assert_int_equal(iv, t_second);
    } else {
        assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_THREADS, t_second));
    }
    for (int s = 0; s < 6; s++) assert_ok(disrnn_trainer_step(tr, NULL, 0));
    h = hash_params(m);
    disrnn_trainer_free(tr);
    disrnn_model_free(m);
    disrnn_dataset_free(ds);
    return h;
}

static void test_own_threads_same_bits(void **state)
{
    char path[128];
    const uint64_t h1 = fit_on_threads(1, 1, NULL);
    (void)state;
    make_tmpdir();
    tmp_path(path, sizeof path, "threads.ckpt");
    assert_true(fit_on_threads(2, 2, NULL) == h1);
    assert_true(fit_on_threads(3, 3, NULL) == h1);
    assert_true(fit_on_threads(2, 1, NULL) == h1);
    assert_true(fit_on_threads(1, 3, path) == h1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_create_checks_and_n_tot),
        cmocka_unit_test(test_adam_hand_computation),
        cmocka_unit_test(test_apply_matches_hand),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_fit_synthetic),
        cmocka_unit_test(test_repeat_fits_bit_identical),
        cmocka_unit_test(test_adamw_wd0_equals_adam),
        cmocka_unit_test(test_step_equals_gradient_apply),
        cmocka_unit_test(test_batch_layout),
        cmocka_unit_test(test_resume_bit_identical),
        cmocka_unit_test(test_checkpoint_corruption),
        cmocka_unit_test(test_nonfinite_refused),
        cmocka_unit_test(test_callback_stop_and_continue),
        cmocka_unit_test(test_early_stopping_keep_best),
        cmocka_unit_test(test_keep_best_at_end),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_parameter_arrays_exchanged),
        cmocka_unit_test(test_thread_count_independence),
        cmocka_unit_test(test_own_threads_same_bits),
    };
    int rc;
    if (argc > 0 && argv[0] && strchr(argv[0], '/')) self_path = argv[0];
    if (argc > 1 && strcmp(argv[1], "--thread-probe") == 0) {
        printf("%016llx\n", (unsigned long long)thread_probe_fit());
        return 0;
    }
    rc = cmocka_run_group_tests(tests, test_scratch_setup, test_scratch_teardown);
    return rc;
}
