/* How the trainer assembles a batch: consecutive samples are read where they are, others copied
 * (targets, encoder inputs, known inputs and masks alike) or, for the plain Gaussian model, read
 * through their indices in blocks of channels; every way gives the same bits. */
#include "support.h"

#include "trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 6, P = 2, K = 4, T = 40 };

/* Two identical trials (so sample j and its twin j + S/2 hold the same data), known inputs, and
 * a few missing entries when masked. */
static disrnn_dataset_t *twin_data(int masked)
{
    disrnn_dataset_t *ds = NULL;
    double x[N * T], u[P * T];
    unsigned char mask[N * T];
    uint64_t rs = 21;
    test_normal(&rs, x, N * T);
    test_uniform(&rs, u, P * T, -1.0, 1.0);
    for (size_t i = 0; i < N * T; i++) mask[i] = (unsigned char)(i % 7 != 3);
    assert_ok(disrnn_dataset_create(&ds, N, P, DISRNN_DATA_CONTINUOUS));
    for (int r = 0; r < 2; r++)
        assert_ok(disrnn_dataset_add_trial(ds, T, x, N, u, P, masked ? mask : NULL, masked ? N : 0));
    return ds;
}

static disrnn_model_t *model_with_inputs(void)
{
    disrnn_config_t *cfg = NULL;
    disrnn_model_t *m = NULL;
    const size_t groups[2] = {2, 2};
    const double psi[2] = {0.6, 0.4};
    assert_ok(disrnn_config_create(&cfg, N, K));
    assert_ok(disrnn_config_set_groups(cfg, groups, 2));
    assert_ok(disrnn_config_set_kernel(cfg, psi, 2));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_NUM_INPUTS, P));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_INPUT_D, DISRNN_INPUT_LEARNED));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, 2.0));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_N_TOT, 100.0));
    assert_ok(disrnn_config_set_seed(cfg, 4));
    assert_ok(disrnn_model_create(&m, cfg));
    disrnn_config_free(cfg);
    return m;
}

/* Loss terms and gradient of the given samples from a fresh trainer (seed 9). */
static void gradient_of(disrnn_model_t *m, const disrnn_dataset_t *ds, const size_t *idx, size_t n, double *terms,
                        double *grad)
{
    disrnn_trainer_t *tr = NULL;
    assert_ok(disrnn_trainer_create(&tr, m, ds, 9));
    assert_ok(disrnn_trainer_gradient(tr, idx, n, terms, 5, grad, disrnn_model_num_params(m)));
    disrnn_trainer_free(tr);
}

static void test_copied_and_direct_batches_agree(void **state)
{
    (void)state;
    for (int masked = 0; masked < 2; masked++) {
        disrnn_dataset_t *ds = twin_data(masked);
        disrnn_model_t *m = model_with_inputs();
        const size_t np = disrnn_model_num_params(m), S = disrnn_dataset_num_samples(ds, m), h = S / 2;
        const size_t direct[5] = {3, 4, 5, 6, 7}, twin[5] = {h + 3, h + 4, h + 5, h + 6, h + 7};
        const size_t mixed[5] = {3, h + 4, 5, h + 6, 7};
        double t0[5], t1[5], t2[5], *g0 = malloc(np * sizeof(double)), *g1 = malloc(np * sizeof(double)),
                                    *g2 = malloc(np * sizeof(double));
        assert_true(S % 2 == 0 && S >= 16);
        gradient_of(m, ds, direct, 5, t0, g0); /* read in place */
        gradient_of(m, ds, twin, 5, t1, g1);   /* in place, the other trial */
        gradient_of(m, ds, mixed, 5, t2, g2);  /* copied */
        assert_memory_equal(t0, t1, sizeof t0);
        assert_memory_equal(t0, t2, sizeof t0);
        assert_memory_equal(g0, g1, np * sizeof(double));
        assert_memory_equal(g0, g2, np * sizeof(double));
        if (masked) {
            /* the mask reaches the objective on both paths: without it the loss differs */
            disrnn_dataset_t *full = twin_data(0);
            double t3[5];
            gradient_of(m, full, mixed, 5, t3, g1);
            assert_true(t3[0] != t2[0]);
            disrnn_dataset_free(full);
        }
        free(g0); free(g1); free(g2);
        disrnn_model_free(m);
        disrnn_dataset_free(ds);
    }
}

/* The plain Gaussian model (no inputs, no mask) reads scattered samples through their indices,
 * block by block of channels. With N large enough for several blocks (the last one partial), the
 * terms and gradient equal those of the same samples read in place and those of the public
 * disrnn_model_loss on copies of the batch with the trainer's noise. */
static void test_indexed_blocks_match_in_place_and_copies(void **state)
{
    enum { NB = 1100, KB = 8, TB = 80, MB = 64 };
    disrnn_dataset_t *ds = NULL;
    disrnn_config_t *cfg = NULL;
    disrnn_model_t *m = NULL;
    const size_t groups[2] = {4, 4};
    double *x = malloc((size_t)NB * TB * sizeof(double));
    size_t direct[MB], twin[MB], mixed[MB], np, S;
    double t0[5], t1[5], t2[5], t3[5], *g0, *g1, *g2, *g3, *bx, *bh, *eps;
    uint64_t rs = 5;
    (void)state;
    assert_non_null(x);
    test_normal(&rs, x, (size_t)NB * TB);
    assert_ok(disrnn_dataset_create(&ds, NB, 0, DISRNN_DATA_CONTINUOUS));
    for (int r = 0; r < 2; r++) assert_ok(disrnn_dataset_add_trial(ds, TB, x, NB, NULL, 0, NULL, 0));
    assert_ok(disrnn_config_create(&cfg, NB, KB));
    assert_ok(disrnn_config_set_groups(cfg, groups, 2));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, 3.0));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_N_TOT, 90.0));
    assert_ok(disrnn_config_set_seed(cfg, 8));
    assert_ok(disrnn_model_create(&m, cfg));
    disrnn_config_free(cfg);
    np = disrnn_model_num_params(m);
    S = disrnn_dataset_num_samples(ds, m);
    assert_true(S == 2 * TB && (double)NB * KB * MB > 262144.0 * 2); /* three blocks of channels */
    for (size_t j = 0; j < MB; j++) {
        direct[j] = j + 1; /* from t = 1: no padding bin involved */
        twin[j] = direct[j] + TB;
        mixed[j] = j % 3 ? direct[j] : twin[j]; /* not consecutive: read through the indices */
    }
    g0 = malloc(np * sizeof(double));
    g1 = malloc(np * sizeof(double));
    g2 = malloc(np * sizeof(double));
    g3 = malloc(np * sizeof(double));
    bx = malloc((size_t)NB * MB * sizeof(double));
    bh = malloc((size_t)NB * MB * sizeof(double));
    eps = malloc((size_t)KB * MB * sizeof(double));
    assert_true(g0 && g1 && g2 && g3 && bx && bh && eps);
    gradient_of(m, ds, direct, MB, t0, g0);
    gradient_of(m, ds, twin, MB, t1, g1);
    gradient_of(m, ds, mixed, MB, t2, g2);
    assert_memory_equal(t0, t1, sizeof t0);
    assert_memory_equal(t0, t2, sizeof t0);
    assert_memory_equal(g0, g1, np * sizeof(double));
    assert_memory_equal(g0, g2, np * sizeof(double));
    /* the public loss on copies: x_t and h_t = tanh(x_{t-1}), with the trainer's noise */
    {
        disrnn_trainer_t *tr = NULL;
        disrnn__rng r;
        assert_ok(disrnn_trainer_create(&tr, m, ds, 9));
        r = tr->rng;
        disrnn__rng_normal(&r, eps, (size_t)KB * MB);
        disrnn_trainer_free(tr);
    }
    for (size_t j = 0; j < MB; j++) {
        const size_t t = mixed[j] % TB;
        for (size_t n = 0; n < NB; n++) {
            bx[n + j * NB] = x[n + t * NB];
            bh[n + j * NB] = tanh(x[n + (t - 1) * NB]);
        }
    }
    assert_ok(disrnn_model_loss(m, MB, bx, NB, bh, NB, NULL, 0, NULL, 0, eps, KB, t3, 5, g3, np));
    assert_memory_equal(t0, t3, sizeof t0);
    assert_memory_equal(g0, g3, np * sizeof(double));
    free(g0); free(g1); free(g2); free(g3); free(bx); free(bh); free(eps); free(x);
    disrnn_model_free(m);
    disrnn_dataset_free(ds);
}

/* Training without shuffling reads every batch in place; with the same batches given through
 * disrnn_trainer_gradient as copied index lists (the twin trial's samples interleaved), the fitted
 * parameters are the same bits. */
static void test_unshuffled_training_matches_copied_batches(void **state)
{
    disrnn_dataset_t *ds = twin_data(1);
    disrnn_model_t *a = model_with_inputs(), *b = NULL;
    disrnn_trainer_t *ta = NULL, *tb = NULL;
    const size_t np = disrnn_model_num_params(a), S = disrnn_dataset_num_samples(ds, a), h = S / 2, B = 8;
    double *g = malloc(np * sizeof(double)), *pa = malloc(np * sizeof(double)), *pb = malloc(np * sizeof(double));
    size_t idx[8];
    (void)state;
    assert_ok(disrnn_model_clone(&b, a));
    assert_ok(disrnn_trainer_create(&ta, a, ds, 3));
    assert_ok(disrnn_trainer_create(&tb, b, ds, 3));
    assert_ok(disrnn_trainer_set_int(ta, DISRNN_TRAIN_SHUFFLE, 0));
    assert_ok(disrnn_trainer_set_int(ta, DISRNN_TRAIN_BATCH_SIZE, (int64_t)B));
    for (size_t pos = 0; pos + B <= h; pos += B) {
        assert_ok(disrnn_trainer_step(ta, NULL, 0));
        for (size_t j = 0; j < B; j++) idx[j] = pos + j + (j % 2 ? h : 0);
        assert_ok(disrnn_trainer_gradient(tb, idx, B, NULL, 0, g, np));
        assert_ok(disrnn_trainer_apply(tb, g, np));
    }
    assert_ok(disrnn_model_get_params(a, pa, np));
    assert_ok(disrnn_model_get_params(b, pb, np));
    assert_memory_equal(pa, pb, np * sizeof(double));
    free(g); free(pa); free(pb);
    disrnn_trainer_free(ta);
    disrnn_trainer_free(tb);
    disrnn_model_free(a);
    disrnn_model_free(b);
    disrnn_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copied_and_direct_batches_agree),
        cmocka_unit_test(test_indexed_blocks_match_in_place_and_copies),
        cmocka_unit_test(test_unshuffled_training_matches_copied_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
