/* Datasets and the samples a model sees: validation, missing entries, splits, sample indices under
 * each padding mode, encoder inputs against a direct computation, and ragged trials against the
 * equivalent padded-and-masked data. */
#include "support.h"

#include <math.h>
#include <string.h>

#include "dataset.h"

static disrnn_model_t *make_model(size_t N, size_t K, int padding, const double *psi, size_t L, int sigma, double kappa,
                                  size_t P, int obs)
{
    disrnn_config_t *cfg = NULL;
    disrnn_model_t *m = NULL;
    assert_ok(disrnn_config_create(&cfg, N, K));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_PADDING, padding));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_SIGMA, sigma));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_OBS, obs));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_KAPPA, kappa));
    if (P) assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_NUM_INPUTS, (int64_t)P));
    if (psi) assert_ok(disrnn_config_set_kernel(cfg, psi, L));
    assert_ok(disrnn_model_create(&m, cfg));
    disrnn_config_free(cfg);
    return m;
}

/* Snapshot of a dataset's observable content, to check a failed call changed nothing. */
typedef struct snap {
    size_t trials, bins, selected, cap;
    double x[64];
} snap;

static void take(const disrnn_dataset_t *ds, snap *s)
{
    memset(s, 0, sizeof *s);
    s->trials = ds->n_trials;
    s->bins = ds->total_bins;
    s->selected = ds->n_selected;
    s->cap = ds->cap_bins;
    if (ds->total_bins * ds->N <= 64 && ds->total_bins) memcpy(s->x, ds->x, ds->total_bins * ds->N * sizeof(double));
}

static void test_create_and_arguments(void **state)
{
    disrnn_dataset_t *ds = NULL;
    double x[6] = {1, 2, 3, 4, 5, 6}, u[2] = {0.5, -0.5};
    (void)state;
    assert_status(disrnn_dataset_create(&ds, 0, 0, DISRNN_DATA_CONTINUOUS), DISRNN_ERR_INVALID_ARG);
    assert_null(ds);
    assert_status(disrnn_dataset_create(&ds, 3, 0, 7), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_dataset_create(&ds, (size_t)1 << 40, 0, DISRNN_DATA_CONTINUOUS), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_dataset_create(NULL, 3, 0, DISRNN_DATA_CONTINUOUS), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_dataset_create_with_allocator(&ds, 3, 0, 0, test_chaos_alloc, NULL, NULL), DISRNN_ERR_INVALID_ARG);
    assert_ok(disrnn_dataset_create(&ds, 3, 1, DISRNN_DATA_CONTINUOUS));
    assert_string_equal(disrnn_dataset_last_error(ds), "");
    assert_status(disrnn_dataset_add_trial(ds, 2, x, 3, NULL, 1, NULL, 0), DISRNN_ERR_INVALID_ARG); /* u missing */
    assert_true(strlen(disrnn_dataset_last_error(ds)) > 0);
    assert_status(disrnn_dataset_add_trial(ds, 2, x, 2, u, 1, NULL, 0), DISRNN_ERR_INVALID_ARG);  /* ldx < N */
    assert_status(disrnn_dataset_add_trial(ds, 0, x, 3, u, 1, NULL, 0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_dataset_add_trial(ds, 2, NULL, 3, u, 1, NULL, 0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_dataset_add_trial(ds, 2, x, 3, u, 0, NULL, 0), DISRNN_ERR_INVALID_ARG);  /* ldu < P */
    assert_status(disrnn_dataset_add_trial(ds, 2, x, 3, u, 1, (const uint8_t *)"ab", 2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_dataset_add_trial(NULL, 2, x, 3, u, 1, NULL, 0), DISRNN_ERR_INVALID_ARG);
    assert_int_equal(disrnn_dataset_num_trials(ds), 0);
    u[1] = INFINITY;
    assert_status(disrnn_dataset_add_trial(ds, 2, x, 3, u, 1, NULL, 0), DISRNN_ERR_NONFINITE);
    u[1] = -0.5;
    assert_ok(disrnn_dataset_add_trial(ds, 2, x, 3, u, 1, NULL, 0));
    assert_int_equal(disrnn_dataset_num_trials(ds), 1);
    assert_int_equal(disrnn_dataset_trial_length(ds, 0), 2);
    assert_int_equal(disrnn_dataset_trial_length(ds, 1), 0);
    assert_int_equal(disrnn_dataset_num_selected(ds), 2);
    assert_null(ds->mask); /* nothing missing, no mask kept */
    assert_memory_equal(ds->x, x, sizeof x);
    assert_true(ds->u[0] == 0.5 && ds->u[1] == -0.5);
    assert_int_equal(disrnn_dataset_num_trials(NULL), 0);
    assert_int_equal(disrnn_dataset_num_selected(NULL), 0);
    assert_string_equal(disrnn_dataset_last_error(NULL), "");
    disrnn_dataset_free(ds);
    disrnn_dataset_free(NULL);
}

static void test_dims(void **state)
{
    disrnn_dataset_t *a, *b, *sub;
    size_t n = 0, p = 0, one = 0;
    int kind = -1;
    double x[6] = {0, 1, 2, 3, 4, 5}, u[2] = {0.5, -0.5};
    (void)state;
    assert_ok(disrnn_dataset_create(&a, 3, 0, DISRNN_DATA_COUNTS));
    assert_ok(disrnn_dataset_create(&b, 3, 1, DISRNN_DATA_CONTINUOUS));
    assert_ok(disrnn_dataset_dims(a, &n, &p, &kind));
    assert_int_equal(n, 3);
    assert_int_equal(p, 0);
    assert_int_equal(kind, DISRNN_DATA_COUNTS);
    assert_ok(disrnn_dataset_dims(b, &n, &p, &kind));
    assert_int_equal(n, 3);
    assert_int_equal(p, 1);
    assert_int_equal(kind, DISRNN_DATA_CONTINUOUS);
    /* a subset keeps the shape and kind of its source */
    assert_ok(disrnn_dataset_add_trial(b, 2, x, 3, u, 1, NULL, 0));
    assert_ok(disrnn_dataset_subset_trials(b, &one, 1, &sub));
    assert_ok(disrnn_dataset_dims(sub, &n, &p, &kind));
    assert_int_equal(n, 3);
    assert_int_equal(p, 1);
    assert_int_equal(kind, DISRNN_DATA_CONTINUOUS);
    assert_ok(disrnn_dataset_dims(a, NULL, NULL, NULL));
    assert_status(disrnn_dataset_dims(NULL, &n, &p, &kind), DISRNN_ERR_INVALID_ARG);
    disrnn_dataset_free(sub);
    disrnn_dataset_free(b);
    disrnn_dataset_free(a);
}

static void test_nan_and_mask(void **state)
{
    disrnn_dataset_t *ds = NULL;
    /* N = 2, T = 3; ld 3 leaves a gap row that must be ignored */
    double x[9] = {1, NAN, 99, 2, 3, 99, 4, 5, 99};
    uint8_t mk[6] = {1, 1, 0, 1, 1, 1};
    double clean[4] = {7, 8, 9, 10};
    (void)state;
    assert_ok(disrnn_dataset_create(&ds, 2, 0, DISRNN_DATA_CONTINUOUS));
    assert_ok(disrnn_dataset_add_trial(ds, 2, clean, 2, NULL, 0, NULL, 0));
    assert_null(ds->mask);
    assert_ok(disrnn_dataset_add_trial(ds, 3, x, 3, NULL, 0, mk, 2));
    assert_non_null(ds->mask);
    /* the first trial had no missing entries: its mask was filled with ones */
    for (int i = 0; i < 4; i++) assert_int_equal(ds->mask[i], 1);
    {
        const double want_x[6] = {1, 0, 0, 3, 4, 5};
        const uint8_t want_m[6] = {1, 0, 0, 1, 1, 1};
        assert_memory_equal(ds->x + 4, want_x, sizeof want_x);
        assert_memory_equal(ds->mask + 4, want_m, sizeof want_m);
    }
    assert_int_equal(disrnn_dataset_num_selected(ds), 5);
    /* Inf is an error, not a missing value; a masked Inf is simply missing */
    x[0] = INFINITY;
    assert_status(disrnn_dataset_add_trial(ds, 3, x, 3, NULL, 0, NULL, 0), DISRNN_ERR_NONFINITE);
    mk[0] = 0;
    assert_ok(disrnn_dataset_add_trial(ds, 3, x, 3, NULL, 0, mk, 2));
    assert_true(ds->x[(5) * 2] == 0.0 && ds->mask[5 * 2] == 0);
    disrnn_dataset_free(ds);
}

static void test_counts_validation_leaves_dataset_unchanged(void **state)
{
    disrnn_dataset_t *ds = NULL;
    double ok[4] = {0, 1, 2, 3}, neg[4] = {0, 1, -1, 3}, frac[4] = {0, 1.5, 2, 3}, big[4] = {0, 1e300, 2, 3};
    double masked_neg[4] = {0, 1, -1, 3};
    const uint8_t mk[4] = {1, 1, 0, 1};
    snap before, after;
    (void)state;
    assert_ok(disrnn_dataset_create(&ds, 2, 0, DISRNN_DATA_COUNTS));
    assert_ok(disrnn_dataset_add_trial(ds, 2, ok, 2, NULL, 0, NULL, 0));
    take(ds, &before);
    assert_status(disrnn_dataset_add_trial(ds, 2, neg, 2, NULL, 0, NULL, 0), DISRNN_ERR_DATA);
    assert_non_null(strstr(disrnn_dataset_last_error(ds), "count"));
    assert_status(disrnn_dataset_add_trial(ds, 2, frac, 2, NULL, 0, NULL, 0), DISRNN_ERR_DATA);
    take(ds, &after);
    assert_memory_equal(&before, &after, sizeof before);
    assert_null(ds->mask);
    /* a large integer-valued count is a count; a masked negative value is not checked */
    assert_ok(disrnn_dataset_add_trial(ds, 2, big, 2, NULL, 0, NULL, 0));
    assert_ok(disrnn_dataset_add_trial(ds, 2, masked_neg, 2, NULL, 0, mk, 2));
    assert_int_equal(disrnn_dataset_num_trials(ds), 3);
    assert_true(ds->x[2 * 2 * 2 + 2] == 0.0);
    disrnn_dataset_free(ds);
}

static void test_growth_many_trials(void **state)
{
    disrnn_dataset_t *ds = NULL;
    double x[3 * 7];
    (void)state;
    assert_ok(disrnn_dataset_create(&ds, 3, 0, DISRNN_DATA_CONTINUOUS));
    for (size_t r = 0; r < 100; r++) {
        const size_t T = 1 + r % 7;
        for (size_t i = 0; i < 3 * T; i++) x[i] = (double)(r * 100 + i);
        assert_ok(disrnn_dataset_add_trial(ds, T, x, 3, NULL, 0, NULL, 0));
    }
    assert_int_equal(disrnn_dataset_num_trials(ds), 100);
    for (size_t r = 0; r < 100; r++) {
        const size_t T = 1 + r % 7;
        assert_int_equal(disrnn_dataset_trial_length(ds, r), T);
        for (size_t i = 0; i < 3 * T; i++) assert_true(ds->x[ds->start[r] * 3 + i] == (double)(r * 100 + i));
    }
    disrnn_dataset_free(ds);
}

static disrnn_dataset_t *ragged(void)
{
    /* N = 2, trials of 4, 1 and 3 bins; x = 10 * trial + bin on channel 0, its negative on channel 1 */
    disrnn_dataset_t *ds = NULL;
    const size_t T[3] = {4, 1, 3};
    assert_ok(disrnn_dataset_create(&ds, 2, 0, DISRNN_DATA_CONTINUOUS));
    for (size_t r = 0; r < 3; r++) {
        double x[8];
        for (size_t t = 0; t < T[r]; t++) {
            x[2 * t] = (double)(10 * r + t);
            x[2 * t + 1] = -(double)(10 * r + t);
        }
        assert_ok(disrnn_dataset_add_trial(ds, T[r], x, 2, NULL, 0, NULL, 0));
    }
    return ds;
}

static void test_subsets(void **state)
{
    disrnn_dataset_t *ds = ragged(), *a = NULL, *b = NULL, *c = NULL;
    const size_t pick[2] = {2, 0}, dup[2] = {1, 1}, bad[1] = {3};
    const size_t bt[3] = {0, 2, 0}, bb[3] = {3, 0, 3}, bad_bin[1] = {1};
    (void)state;
    assert_ok(disrnn_dataset_subset_trials(ds, pick, 2, &a));
    assert_int_equal(disrnn_dataset_num_trials(a), 2);
    assert_int_equal(disrnn_dataset_trial_length(a, 0), 3);
    assert_int_equal(disrnn_dataset_trial_length(a, 1), 4);
    assert_true(a->x[0] == 20.0 && a->x[3 * 2] == 0.0 && a->x[3 * 2 + 1] == -0.0);
    assert_int_equal(disrnn_dataset_num_selected(a), 7);
    assert_status(disrnn_dataset_subset_trials(ds, dup, 2, &b), DISRNN_ERR_INVALID_ARG);
    assert_null(b);
    assert_status(disrnn_dataset_subset_trials(ds, bad, 1, &b), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_dataset_subset_trials(ds, pick, 0, &b), DISRNN_ERR_INVALID_ARG);
    disrnn_dataset_free(a);

    /* the paper's even/odd split: a partition of the bins, with the trials intact */
    assert_ok(disrnn_dataset_subset_interleaved(ds, 2, 0, &a));
    assert_ok(disrnn_dataset_subset_interleaved(ds, 2, 1, &b));
    assert_int_equal(disrnn_dataset_num_trials(a), 3);
    assert_int_equal(disrnn_dataset_num_selected(a) + disrnn_dataset_num_selected(b), 8);
    assert_int_equal(disrnn_dataset_num_selected(a), 2 + 1 + 2);
    for (size_t k = 0; k < a->total_bins; k++) assert_int_equal(a->selected[k] + b->selected[k], 1);
    assert_memory_equal(a->x, ds->x, ds->total_bins * 2 * sizeof(double));
    /* a split of a split refines it */
    assert_ok(disrnn_dataset_subset_interleaved(a, 4, 0, &c));
    assert_int_equal(disrnn_dataset_num_selected(c), 1 + 1 + 0 + 0 + 1); /* bins 0 of each trial */
    disrnn_dataset_free(c);
    c = NULL;
    assert_status(disrnn_dataset_subset_interleaved(ds, 2, 2, &c), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_dataset_subset_interleaved(ds, 0, 0, &c), DISRNN_ERR_INVALID_ARG);
    disrnn_dataset_free(a);
    disrnn_dataset_free(b);

    assert_ok(disrnn_dataset_subset_bins(ds, bt, bb, 3, &a)); /* a repeated bin counts once */
    assert_int_equal(disrnn_dataset_num_selected(a), 2);
    assert_int_equal(a->selected[3], 1);
    assert_int_equal(a->selected[5], 1);
    assert_status(disrnn_dataset_subset_bins(ds, dup, bad_bin, 1, &c), DISRNN_ERR_INVALID_ARG); /* trial 1 has one bin */
    assert_status(disrnn_dataset_subset_bins(ds, bad, bb, 1, &c), DISRNN_ERR_INVALID_ARG);
    assert_null(c);
    disrnn_dataset_free(a);
    disrnn_dataset_free(ds);
}

static void test_sample_index_padding(void **state)
{
    disrnn_dataset_t *ds = ragged(), *odd = NULL;
    const double psi[2] = {0.5, 0.5};
    disrnn_model_t *rep = make_model(2, 1, DISRNN_PAD_REPEAT, psi, 2, DISRNN_SIGMA_TANH, 1.0, 0, DISRNN_OBS_GAUSSIAN);
    disrnn_model_t *drop = make_model(2, 1, DISRNN_PAD_DROP, psi, 2, DISRNN_SIGMA_TANH, 1.0, 0, DISRNN_OBS_GAUSSIAN);
    size_t tr[8], bn[8];
    (void)state;
    assert_int_equal(disrnn_dataset_num_samples(ds, rep), 8);
    /* drop removes bins 0 and 1 of every trial: 2 + 0 + 1 */
    assert_int_equal(disrnn_dataset_num_samples(ds, drop), 3);
    assert_ok(disrnn_dataset_sample_index(ds, drop, tr, bn, 3));
    assert_true(tr[0] == 0 && bn[0] == 2 && tr[1] == 0 && bn[1] == 3 && tr[2] == 2 && bn[2] == 2);
    assert_status(disrnn_dataset_sample_index(ds, drop, tr, bn, 2), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_ok(disrnn_dataset_sample_index(ds, drop, NULL, NULL, 0));
    assert_ok(disrnn_dataset_sample_index(ds, rep, NULL, bn, 8));
    assert_true(bn[4] == 0 && bn[5] == 0 && bn[7] == 2);
    assert_status(disrnn_dataset_sample_index(ds, NULL, tr, bn, 8), DISRNN_ERR_INVALID_ARG);
    assert_int_equal(disrnn_dataset_num_samples(NULL, rep), 0);
    /* selection and drop combine */
    assert_ok(disrnn_dataset_subset_interleaved(ds, 2, 1, &odd));
    assert_int_equal(disrnn_dataset_num_samples(odd, drop), 1); /* only trial 0, bin 3 */
    assert_ok(disrnn_dataset_sample_index(odd, drop, tr, bn, 8));
    assert_true(tr[0] == 0 && bn[0] == 3);
    disrnn_dataset_free(odd);
    disrnn_model_free(rep);
    disrnn_model_free(drop);
    disrnn_dataset_free(ds);
}

/* h of sample (trial r, bin t) computed directly from MODEL.md's definition. */
static double direct_h(const disrnn_dataset_t *ds, size_t r, size_t t, size_t i, const double *psi, size_t L, int pad,
                       double kappa, int sigma)
{
    double h = 0.0;
    for (size_t l = 1; l <= L; l++) {
        double v;
        if (t >= l)
            v = ds->x[(ds->start[r] + t - l) * ds->N + i];
        else if (pad == DISRNN_PAD_REPEAT)
            v = ds->x[ds->start[r] * ds->N + i];
        else
            v = 0.0;
        v /= kappa;
        if (sigma == DISRNN_SIGMA_TANH) v = tanh(v);
        else if (sigma == DISRNN_SIGMA_RELU) v = v > 0 ? v : 0;
        h += psi[l - 1] * v;
    }
    return h;
}

static void test_samples_history(void **state)
{
    const double psi[3] = {0.6, 0.3, 0.1};
    const int pads[3] = {DISRNN_PAD_REPEAT, DISRNN_PAD_ZERO, DISRNN_PAD_DROP};
    const int sigmas[3] = {DISRNN_SIGMA_TANH, DISRNN_SIGMA_IDENTITY, DISRNN_SIGMA_RELU};
    disrnn_dataset_t *ds = NULL;
    uint64_t rs = 11;
    (void)state;
    assert_ok(disrnn_dataset_create(&ds, 3, 1, DISRNN_DATA_CONTINUOUS));
    for (size_t r = 0; r < 4; r++) {
        double x[3 * 6], u[6];
        const size_t T = 2 + r;
        test_normal(&rs, x, 3 * T);
        test_normal(&rs, u, T);
        if (r == 1) x[4] = NAN; /* a missing entry counts as 0 in the history */
        assert_ok(disrnn_dataset_add_trial(ds, T, x, 3, u, 1, NULL, 0));
    }
    for (int p = 0; p < 3; p++)
        for (int sg = 0; sg < 3; sg++) {
            disrnn_model_t *m = make_model(3, 2, pads[p], psi, 3, sigmas[sg], 1.7, 1, DISRNN_OBS_GAUSSIAN);
            disrnn__samples s;
            const size_t S = disrnn_dataset_num_samples(ds, m);
            assert_ok(disrnn__samples_build(ds, m, &m->base.al, &s, &m->base));
            assert_int_equal(s.S, S);
            assert_int_equal(S, pads[p] == DISRNN_PAD_DROP ? 0 + 0 + 1 + 2 : 2 + 3 + 4 + 5);
            /* under drop the sample with the missing entry is gone, and so is the mask */
            if (pads[p] == DISRNN_PAD_DROP) assert_null(s.mask);
            else assert_non_null(s.mask);
            for (size_t j = 0; j < S; j++) {
                const size_t r = s.trial[j], t = s.bin[j], col = ds->start[r] + t;
                for (size_t i = 0; i < 3; i++) {
                    const double want = direct_h(ds, r, t, i, psi, 3, pads[p], 1.7, sigmas[sg]);
                    assert_true(fabs(s.h[j * 3 + i] - want) <= 1e-15 * (1.0 + fabs(want)));
                    assert_true(s.x[j * 3 + i] == ds->x[col * 3 + i]);
                    if (s.mask) assert_int_equal(s.mask[j * 3 + i], ds->mask[col * 3 + i]);
                }
                assert_true(s.u[j] == ds->u[col]);
            }
            disrnn__samples_free(&m->base.al, &s);
            disrnn_model_free(m);
        }
    disrnn_dataset_free(ds);
}

static void test_samples_checks(void **state)
{
    disrnn_dataset_t *cont = ragged(), *counts = NULL;
    disrnn_model_t *pois = make_model(2, 1, DISRNN_PAD_REPEAT, NULL, 1, DISRNN_SIGMA_TANH, 1.0, 0, DISRNN_OBS_POISSON_SOFTPLUS);
    disrnn_model_t *n3 = make_model(3, 1, DISRNN_PAD_REPEAT, NULL, 1, DISRNN_SIGMA_TANH, 1.0, 0, DISRNN_OBS_GAUSSIAN);
    disrnn_model_t *p1 = make_model(2, 1, DISRNN_PAD_REPEAT, NULL, 1, DISRNN_SIGMA_TANH, 1.0, 1, DISRNN_OBS_GAUSSIAN);
    disrnn_model_t *tiny = make_model(2, 1, DISRNN_PAD_REPEAT, NULL, 1, DISRNN_SIGMA_IDENTITY, 1e-100, 0, DISRNN_OBS_GAUSSIAN);
    disrnn__samples s;
    double c[4] = {0, 1, 2, 3};
    (void)state;
    assert_status(disrnn__samples_build(cont, pois, &pois->base.al, &s, &pois->base), DISRNN_ERR_DATA);
    assert_non_null(strstr(disrnn_model_last_error(pois), "counts"));
    assert_status(disrnn__samples_build(cont, n3, &n3->base.al, &s, &n3->base), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn__samples_build(cont, p1, &p1->base.al, &s, &p1->base), DISRNN_ERR_INVALID_ARG);
    {
        double big[2] = {1e300, 1e300};
        disrnn_dataset_t *b = NULL;
        assert_ok(disrnn_dataset_create(&b, 2, 0, DISRNN_DATA_CONTINUOUS));
        assert_ok(disrnn_dataset_add_trial(b, 1, big, 2, NULL, 0, NULL, 0));
        assert_status(disrnn__samples_build(b, tiny, &tiny->base.al, &s, &tiny->base), DISRNN_ERR_NONFINITE);
        disrnn_dataset_free(b);
    }
    assert_ok(disrnn_dataset_create(&counts, 2, 0, DISRNN_DATA_COUNTS));
    assert_ok(disrnn_dataset_add_trial(counts, 2, c, 2, NULL, 0, NULL, 0));
    assert_ok(disrnn__samples_build(counts, pois, &pois->base.al, &s, &pois->base));
    assert_int_equal(s.S, 2);
    assert_null(s.mask);
    disrnn__samples_free(&pois->base.al, &s);
    disrnn_dataset_free(counts);
    disrnn_dataset_free(cont);
    disrnn_model_free(pois);
    disrnn_model_free(n3);
    disrnn_model_free(p1);
    disrnn_model_free(tiny);
}

/* Ragged trials with masks give exactly the loss of the same data padded to a common length with
 * masked bins, once only the real bins are selected. */
static void test_ragged_equals_padded(void **state)
{
    const size_t T[3] = {5, 2, 7}, N = 4, K = 2, Tmax = 7;
    const double psi[2] = {0.7, 0.3};
    const size_t groups[2] = {1, 1};
    disrnn_dataset_t *rag = NULL, *pad_all = NULL, *pad = NULL;
    disrnn_config_t *cfg = NULL;
    disrnn_model_t *m = NULL;
    disrnn__samples a, b;
    size_t sel_t[14], sel_b[14], ns = 0;
    uint64_t rs = 5;
    (void)state;
    assert_ok(disrnn_config_create(&cfg, N, K));
    assert_ok(disrnn_config_set_groups(cfg, groups, 2));
    assert_ok(disrnn_config_set_kernel(cfg, psi, 2));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, 3.0));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_N_TOT, 100.0));
    assert_ok(disrnn_model_create(&m, cfg));
    disrnn_config_free(cfg);
    assert_ok(disrnn_dataset_create(&rag, N, 0, DISRNN_DATA_CONTINUOUS));
    assert_ok(disrnn_dataset_create(&pad_all, N, 0, DISRNN_DATA_CONTINUOUS));
    for (size_t r = 0; r < 3; r++) {
        double x[4 * 7], xp[4 * 7];
        uint8_t mk[4 * 7], mp[4 * 7];
        test_normal(&rs, x, N * T[r]);
        for (size_t k = 0; k < N * T[r]; k++) mk[k] = (uint8_t)((k * 7 + r) % 5 != 0);
        for (size_t k = 0; k < N * Tmax; k++) {
            xp[k] = k < N * T[r] ? x[k] : 123.0; /* garbage, masked */
            mp[k] = k < N * T[r] ? mk[k] : 0;
        }
        assert_ok(disrnn_dataset_add_trial(rag, T[r], x, N, NULL, 0, mk, N));
        assert_ok(disrnn_dataset_add_trial(pad_all, Tmax, xp, N, NULL, 0, mp, N));
        for (size_t t = 0; t < T[r]; t++) {
            sel_t[ns] = r;
            sel_b[ns++] = t;
        }
    }
    assert_ok(disrnn_dataset_subset_bins(pad_all, sel_t, sel_b, ns, &pad));
    assert_int_equal(disrnn_dataset_num_samples(pad, m), disrnn_dataset_num_samples(rag, m));
    assert_ok(disrnn__samples_build(rag, m, &m->base.al, &a, &m->base));
    assert_ok(disrnn__samples_build(pad, m, &m->base.al, &b, &m->base));
    assert_int_equal(a.S, 14);
    assert_memory_equal(a.x, b.x, N * a.S * sizeof(double));
    assert_memory_equal(a.h, b.h, N * a.S * sizeof(double));
    assert_memory_equal(a.mask, b.mask, N * a.S);
    {
        double eps[2 * 14], ta[5], tb[5], ga[64], gb[64];
        const size_t np = disrnn_model_num_params(m);
        assert_true(np <= 64);
        test_normal(&rs, eps, K * a.S);
        assert_ok(disrnn_model_loss(m, a.S, a.x, N, a.h, N, NULL, 0, a.mask, N, eps, K, ta, 5, ga, np));
        assert_ok(disrnn_model_loss(m, b.S, b.x, N, b.h, N, NULL, 0, b.mask, N, eps, K, tb, 5, gb, np));
        assert_memory_equal(ta, tb, sizeof ta);
        assert_memory_equal(ga, gb, np * sizeof(double));
        assert_true(isfinite(ta[0]) && ta[DISRNN_TERM_PC] != 0.0);
    }
    disrnn__samples_free(&m->base.al, &a);
    disrnn__samples_free(&m->base.al, &b);
    /* the same through the trainer's public evaluation */
    {
        disrnn_trainer_t *tr = NULL;
        double ea[5], eb[5];
        assert_ok(disrnn_trainer_create(&tr, m, rag, 3));
        assert_ok(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 4));
        assert_ok(disrnn_trainer_evaluate(tr, rag, ea, 5));
        assert_ok(disrnn_trainer_evaluate(tr, pad, eb, 5));
        assert_memory_equal(ea, eb, sizeof ea);
        disrnn_trainer_free(tr);
    }
    disrnn_dataset_free(rag);
    disrnn_dataset_free(pad_all);
    disrnn_dataset_free(pad);
    disrnn_model_free(m);
}

static void test_allocation_failures(void **state)
{
    double x[2 * 40];
    uint8_t mk[2 * 40];
    (void)state;
    for (size_t i = 0; i < 80; i++) {
        x[i] = (double)i;
        mk[i] = (uint8_t)(i % 3 != 0);
    }
    for (long k = 0; k < 200; k++) {
        test_chaos c = {k, 0, 0};
        disrnn_dataset_t *ds = NULL, *sub = NULL;
        int rc = disrnn_dataset_create_with_allocator(&ds, 2, 0, DISRNN_DATA_CONTINUOUS, test_chaos_alloc, test_chaos_free, &c);
        int done = 1;
        if (rc != DISRNN_OK) {
            assert_status(rc, DISRNN_ERR_NOMEM);
            assert_null(ds);
            assert_int_equal(c.live, 0);
            continue;
        }
        for (size_t r = 0; r < 6; r++) {
            const size_t before = ds->n_trials, bins = ds->total_bins;
            rc = disrnn_dataset_add_trial(ds, 3 + 5 * r, x, 2, NULL, 0, r == 3 ? mk : NULL, 0 + 2 * (r == 3));
            if (rc != DISRNN_OK) {
                assert_status(rc, DISRNN_ERR_NOMEM);
                assert_int_equal(ds->n_trials, before);
                assert_int_equal(ds->total_bins, bins);
                done = 0;
            }
        }
        rc = disrnn_dataset_subset_interleaved(ds, 2, 0, &sub);
        if (rc != DISRNN_OK) {
            assert_status(rc, DISRNN_ERR_NOMEM);
            assert_null(sub);
            done = 0;
        }
        disrnn_dataset_free(sub);
        disrnn_dataset_free(ds);
        assert_int_equal(c.live, 0);
        if (done && c.fail_at >= c.count) break;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_arguments),
        cmocka_unit_test(test_dims),
        cmocka_unit_test(test_nan_and_mask),
        cmocka_unit_test(test_counts_validation_leaves_dataset_unchanged),
        cmocka_unit_test(test_growth_many_trials),
        cmocka_unit_test(test_subsets),
        cmocka_unit_test(test_sample_index_padding),
        cmocka_unit_test(test_samples_history),
        cmocka_unit_test(test_samples_checks),
        cmocka_unit_test(test_ragged_equals_padded),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
