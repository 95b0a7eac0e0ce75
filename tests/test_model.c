/* Configurations and models: options and their bounds, groups and kernel validation, parameter
 * blocks and the flat vector, initialisation, clone, allocation failures, Scott's rule, the
 * encoder input and the specification check that guards file loading. */
#include "support.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "model.h"

/* ---------------------------------------------------------------------------------------- */
/* helpers */

static disrnn_config_t *make_cfg(size_t N, size_t K)
{
    disrnn_config_t *c = NULL;
    assert_ok(disrnn_config_create(&c, N, K));
    assert_non_null(c);
    return c;
}

static disrnn_model_t *make_model(const disrnn_config_t *c)
{
    disrnn_model_t *m = NULL;
    assert_ok(disrnn_model_create(&m, c));
    assert_non_null(m);
    return m;
}

static size_t block_size(const disrnn_model_t *m, int b)
{
    size_t r = 0, c = 0;
    assert_ok(disrnn_model_block_info(m, b, &r, &c, NULL, NULL));
    return r * c;
}

/* All parameters (flat vector and every block) of a model, for "unchanged" checks. */
typedef struct snapshot {
    double v[4096];
    size_t n;
} snapshot;

static void take(const disrnn_model_t *m, snapshot *s)
{
    size_t np = disrnn_model_num_params(m);
    s->n = 0;
    assert_true(np < 2048);
    assert_ok(disrnn_model_get_params(m, s->v, np));
    s->n = np;
    for (int b = 0; b < DISRNN__NUM_BLOCKS; b++) {
        size_t n = block_size(m, b);
        assert_true(s->n + n <= 4096);
        assert_ok(disrnn_model_get_param(m, b, s->v + s->n, n));
        s->n += n;
    }
}

static void assert_same(const snapshot *a, const snapshot *b)
{
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->v, b->v, a->n * sizeof(double));
}

static const int int_options[] = {DISRNN_OPT_SIGMA, DISRNN_OPT_PADDING, DISRNN_OPT_OBS, DISRNN_OPT_NUM_INPUTS,
                                  DISRNN_OPT_INPUT_E, DISRNN_OPT_INPUT_D, DISRNN_OPT_STD_MODE};
static const int dbl_options[] = {DISRNN_OPT_KAPPA, DISRNN_OPT_STD_VALUE, DISRNN_OPT_N_TOT, DISRNN_OPT_BETA, DISRNN_OPT_ALPHA};

/* ---------------------------------------------------------------------------------------- */
/* options */

static void test_defaults(void **state)
{
    disrnn_config_t *c = make_cfg(5, 4);
    disrnn_model_t *m;
    int64_t v;
    double d;
    size_t N, K, G, L, P, sizes[4];
    (void)state;
    m = make_model(c);
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_SIGMA, &v)); assert_int_equal(v, DISRNN_SIGMA_TANH);
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_PADDING, &v)); assert_int_equal(v, DISRNN_PAD_REPEAT);
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_OBS, &v)); assert_int_equal(v, DISRNN_OBS_GAUSSIAN);
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_NUM_INPUTS, &v)); assert_int_equal(v, 0);
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_INPUT_E, &v)); assert_int_equal(v, DISRNN_INPUT_NONE);
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_INPUT_D, &v)); assert_int_equal(v, DISRNN_INPUT_NONE);
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_STD_MODE, &v)); assert_int_equal(v, DISRNN_STD_SCOTT);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_KAPPA, &d)); assert_true(d == 1.0);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_STD_VALUE, &d)); assert_true(d == 0.1);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_N_TOT, &d)); assert_true(d == 0.0);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_BETA, &d)); assert_true(d == 0.0);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_ALPHA, &d)); assert_true(d == 0.0);
    assert_ok(disrnn_model_dims(m, &N, &K, &G, &L, &P));
    assert_int_equal(N, 5); assert_int_equal(K, 4); assert_int_equal(G, 1); assert_int_equal(L, 1); assert_int_equal(P, 0);
    assert_ok(disrnn_model_groups(m, sizes, 4));
    assert_int_equal(sizes[0], 4);
    assert_true(m->spec.psi[0] == 1.0);
    assert_true(m->spec.seed == 0);
    /* Gaussian, no inputs, Scott: A, B, c, d, rho learned; log s fixed */
    assert_int_equal(disrnn_model_num_params(m), 5 * 4 + 4 * 5 + 5 + 4 + 5);
    assert_string_equal(disrnn_model_last_error(m), "");
    assert_string_equal(disrnn_config_last_error(c), "");
    disrnn_model_free(m);
    disrnn_config_free(c);
}

static void test_option_roundtrip(void **state)
{
    static const int64_t ivals[] = {DISRNN_SIGMA_RELU, DISRNN_PAD_DROP, DISRNN_OBS_POISSON_EXP, 3,
                                    DISRNN_INPUT_FIXED, DISRNN_INPUT_LEARNED, DISRNN_STD_FIXED};
    static const double dvals[] = {2.5, 0.25, 512.0, 20.0, 1.5};
    disrnn_config_t *c = make_cfg(6, 4);
    disrnn_model_t *m;
    (void)state;
    for (size_t i = 0; i < sizeof int_options / sizeof int_options[0]; i++)
        assert_ok(disrnn_config_set_int(c, int_options[i], ivals[i]));
    for (size_t i = 0; i < sizeof dbl_options / sizeof dbl_options[0]; i++)
        assert_ok(disrnn_config_set_double(c, dbl_options[i], dvals[i]));
    assert_ok(disrnn_config_set_seed(c, 12345));
    m = make_model(c);
    for (size_t i = 0; i < sizeof int_options / sizeof int_options[0]; i++) {
        int64_t v = -1;
        assert_ok(disrnn_model_get_int(m, int_options[i], &v));
        assert_int_equal(v, ivals[i]);
    }
    for (size_t i = 0; i < sizeof dbl_options / sizeof dbl_options[0]; i++) {
        double v = -1;
        assert_ok(disrnn_model_get_double(m, dbl_options[i], &v));
        assert_true(v == dvals[i]);
    }
    assert_true(m->spec.seed == 12345);
    disrnn_model_free(m);
    disrnn_config_free(c);
}

static void test_option_bounds(void **state)
{
    disrnn_config_t *c = make_cfg(4, 3);
    double lo, hi;
    int is_int;
    (void)state;
    for (int opt = 0; opt <= DISRNN_OPT_ALPHA; opt++) {
        assert_ok(disrnn_option_bounds(opt, &lo, &hi, &is_int));
        assert_true(lo <= hi);
        assert_ok(disrnn_option_bounds(opt, NULL, NULL, NULL));
        if (is_int) {
            assert_ok(disrnn_config_set_int(c, opt, (int64_t)lo));
            assert_ok(disrnn_config_set_int(c, opt, (int64_t)hi));
            assert_status(disrnn_config_set_int(c, opt, (int64_t)lo - 1), DISRNN_ERR_INVALID_ARG);
            assert_true(strlen(disrnn_config_last_error(c)) > 0);
            assert_status(disrnn_config_set_int(c, opt, (int64_t)hi + 1), DISRNN_ERR_INVALID_ARG);
            assert_status(disrnn_config_set_int(c, opt, INT64_MIN), DISRNN_ERR_INVALID_ARG);
            assert_status(disrnn_config_set_int(c, opt, INT64_MAX), DISRNN_ERR_INVALID_ARG);
            /* wrong-type setter */
            assert_status(disrnn_config_set_double(c, opt, lo), DISRNN_ERR_INVALID_ARG);
            assert_ok(disrnn_config_set_int(c, opt, (int64_t)lo)); /* leave a valid value */
        } else {
            assert_ok(disrnn_config_set_double(c, opt, lo));
            assert_ok(disrnn_config_set_double(c, opt, hi));
            assert_status(disrnn_config_set_double(c, opt, hi * 2.0), DISRNN_ERR_INVALID_ARG);
            assert_status(disrnn_config_set_double(c, opt, lo > 0 ? lo / 2.0 : -1e-300), DISRNN_ERR_INVALID_ARG);
            assert_status(disrnn_config_set_double(c, opt, NAN), DISRNN_ERR_INVALID_ARG);
            assert_status(disrnn_config_set_double(c, opt, INFINITY), DISRNN_ERR_INVALID_ARG);
            assert_status(disrnn_config_set_double(c, opt, -INFINITY), DISRNN_ERR_INVALID_ARG);
            assert_status(disrnn_config_set_int(c, opt, 1), DISRNN_ERR_INVALID_ARG);
            assert_true(strlen(disrnn_config_last_error(c)) > 0);
        }
    }
    /* N_tot between 0 and 1 would make the PC weights negative */
    assert_status(disrnn_config_set_double(c, DISRNN_OPT_N_TOT, 0.5), DISRNN_ERR_INVALID_ARG);
    assert_ok(disrnn_config_set_double(c, DISRNN_OPT_N_TOT, 1.0));
    /* unknown options */
    for (int opt = -3; opt < 20; opt++) {
        if (opt >= 0 && opt <= DISRNN_OPT_ALPHA) continue;
        assert_status(disrnn_option_bounds(opt, &lo, &hi, &is_int), DISRNN_ERR_INVALID_ARG);
        assert_status(disrnn_config_set_int(c, opt, 0), DISRNN_ERR_INVALID_ARG);
        assert_status(disrnn_config_set_double(c, opt, 0.0), DISRNN_ERR_INVALID_ARG);
    }
    disrnn_config_free(c);
}

static void test_option_failure_keeps_config(void **state)
{
    disrnn_config_t *c = make_cfg(4, 3);
    disrnn_model_t *m;
    int64_t v;
    double d;
    (void)state;
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_SIGMA, DISRNN_SIGMA_RELU));
    assert_ok(disrnn_config_set_double(c, DISRNN_OPT_KAPPA, 3.0));
    assert_status(disrnn_config_set_int(c, DISRNN_OPT_SIGMA, 7), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_double(c, DISRNN_OPT_KAPPA, -1.0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_double(c, DISRNN_OPT_KAPPA, 0.0), DISRNN_ERR_INVALID_ARG);
    m = make_model(c);
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_SIGMA, &v));
    assert_int_equal(v, DISRNN_SIGMA_RELU);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_KAPPA, &d));
    assert_true(d == 3.0);
    disrnn_model_free(m);
    disrnn_config_free(c);
}

static void test_enum_values(void **state)
{
    double lo, hi;
    int is_int;
    (void)state;
    assert_int_equal(disrnn_num_blocks(), 8);
    assert_int_equal(disrnn_num_blocks(), DISRNN_BLOCK_LOG_S + 1);
    assert_int_equal(disrnn_num_blocks(), DISRNN__NUM_BLOCKS);
    assert_ok(disrnn_option_bounds(DISRNN_OPT_SIGMA, &lo, &hi, &is_int));
    assert_true(is_int && lo == DISRNN_SIGMA_TANH && hi == DISRNN_SIGMA_RELU);
    assert_ok(disrnn_option_bounds(DISRNN_OPT_PADDING, &lo, &hi, &is_int));
    assert_true(is_int && lo == DISRNN_PAD_REPEAT && hi == DISRNN_PAD_DROP);
    assert_ok(disrnn_option_bounds(DISRNN_OPT_OBS, &lo, &hi, &is_int));
    assert_true(is_int && lo == DISRNN_OBS_GAUSSIAN && hi == DISRNN_OBS_POISSON_EXP);
    assert_ok(disrnn_option_bounds(DISRNN_OPT_INPUT_E, &lo, &hi, &is_int));
    assert_true(is_int && lo == DISRNN_INPUT_NONE && hi == DISRNN_INPUT_FIXED);
    assert_ok(disrnn_option_bounds(DISRNN_OPT_INPUT_D, &lo, &hi, &is_int));
    assert_true(is_int && lo == DISRNN_INPUT_NONE && hi == DISRNN_INPUT_FIXED);
    assert_ok(disrnn_option_bounds(DISRNN_OPT_STD_MODE, &lo, &hi, &is_int));
    assert_true(is_int && lo == DISRNN_STD_SCOTT && hi == DISRNN_STD_LEARNED);
    assert_ok(disrnn_option_bounds(DISRNN_OPT_NUM_INPUTS, &lo, &hi, &is_int));
    assert_true(is_int && lo == 0 && hi >= 1);
    for (size_t i = 0; i < sizeof int_options / sizeof int_options[0]; i++) {
        assert_ok(disrnn_option_bounds(int_options[i], NULL, NULL, &is_int));
        assert_int_equal(is_int, 1);
    }
    for (size_t i = 0; i < sizeof dbl_options / sizeof dbl_options[0]; i++) {
        assert_ok(disrnn_option_bounds(dbl_options[i], &lo, NULL, &is_int));
        assert_int_equal(is_int, 0);
    }
    /* "> 0" options have a positive lower bound, ">= 0" ones a zero lower bound */
    assert_ok(disrnn_option_bounds(DISRNN_OPT_KAPPA, &lo, NULL, NULL)); assert_true(lo > 0);
    assert_ok(disrnn_option_bounds(DISRNN_OPT_STD_VALUE, &lo, NULL, NULL)); assert_true(lo > 0);
    assert_ok(disrnn_option_bounds(DISRNN_OPT_N_TOT, &lo, NULL, NULL)); assert_true(lo == 0);
    assert_ok(disrnn_option_bounds(DISRNN_OPT_BETA, &lo, NULL, NULL)); assert_true(lo == 0);
    assert_ok(disrnn_option_bounds(DISRNN_OPT_ALPHA, &lo, NULL, NULL)); assert_true(lo == 0);
    assert_int_equal(DISRNN_OPT_SIGMA, 0);
    assert_int_equal(DISRNN_OPT_ALPHA, 11);
}

/* ---------------------------------------------------------------------------------------- */
/* groups and kernel */

static void test_groups_validation(void **state)
{
    disrnn_config_t *c = make_cfg(8, 6);
    disrnn_model_t *m;
    const size_t bad_sum[2] = {3, 2}, zero[3] = {3, 0, 3}, ok[3] = {1, 2, 3}, seven[7] = {1, 1, 1, 1, 1, 1, 0};
    const size_t huge[2] = {SIZE_MAX, 7}, full[6] = {1, 1, 1, 1, 1, 1};
    size_t got[3] = {0, 0, 0}, G;
    (void)state;
    assert_status(disrnn_config_set_groups(c, bad_sum, 2), DISRNN_ERR_INVALID_ARG);
    assert_non_null(strstr(disrnn_config_last_error(c), "sum"));
    assert_status(disrnn_config_set_groups(c, zero, 3), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_groups(c, seven, 7), DISRNN_ERR_INVALID_ARG); /* G > K */
    assert_status(disrnn_config_set_groups(c, ok, 0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_groups(c, NULL, 2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_groups(c, huge, 2), DISRNN_ERR_INVALID_ARG); /* would wrap a naive sum */
    assert_status(disrnn_config_set_groups(NULL, ok, 3), DISRNN_ERR_INVALID_ARG);
    /* failures left the single default group */
    m = make_model(c);
    assert_ok(disrnn_model_dims(m, NULL, NULL, &G, NULL, NULL));
    assert_int_equal(G, 1);
    disrnn_model_free(m);
    /* unequal sizes and G = K are fine */
    assert_ok(disrnn_config_set_groups(c, full, 6));
    assert_ok(disrnn_config_set_groups(c, ok, 3));
    m = make_model(c);
    assert_ok(disrnn_model_dims(m, NULL, NULL, &G, NULL, NULL));
    assert_int_equal(G, 3);
    assert_status(disrnn_model_groups(m, got, 2), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_true(got[0] == 0 && got[1] == 0);
    assert_ok(disrnn_model_groups(m, got, 3));
    assert_memory_equal(got, ok, sizeof ok);
    assert_int_equal(m->spec.group_start[0], 0);
    assert_int_equal(m->spec.group_start[1], 1);
    assert_int_equal(m->spec.group_start[2], 3);
    assert_int_equal(m->spec.group_start[3], 6);
    assert_status(disrnn_model_groups(m, NULL, 3), DISRNN_ERR_INVALID_ARG);
    disrnn_model_free(m);
    disrnn_config_free(c);
}

static void test_kernel_validation(void **state)
{
    disrnn_config_t *c = make_cfg(4, 2);
    disrnn_model_t *m;
    const double neg[2] = {1.5, -0.5}, half[2] = {0.25, 0.25}, nan2[2] = {NAN, 1.0}, inf2[2] = {INFINITY, 0.0};
    const double ok[3] = {0.5, 0.3, 0.2}, near[2] = {0.5, 0.5 + 5e-10}, far[2] = {0.5, 0.5 + 5e-9};
    size_t L;
    (void)state;
    assert_status(disrnn_config_set_kernel(c, neg, 2), DISRNN_ERR_INVALID_ARG);
    assert_non_null(strstr(disrnn_config_last_error(c), "negative"));
    assert_status(disrnn_config_set_kernel(c, half, 2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_kernel(c, nan2, 2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_kernel(c, inf2, 2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_kernel(c, ok, 0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_kernel(c, NULL, 1), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_kernel(c, far, 2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_kernel(NULL, ok, 3), DISRNN_ERR_INVALID_ARG);
    m = make_model(c);
    assert_ok(disrnn_model_dims(m, NULL, NULL, NULL, &L, NULL));
    assert_int_equal(L, 1);
    disrnn_model_free(m);
    assert_ok(disrnn_config_set_kernel(c, near, 2));
    assert_ok(disrnn_config_set_kernel(c, ok, 3));
    m = make_model(c);
    assert_ok(disrnn_model_dims(m, NULL, NULL, NULL, &L, NULL));
    assert_int_equal(L, 3);
    assert_memory_equal(m->spec.psi, ok, sizeof ok);
    disrnn_model_free(m);
    disrnn_config_free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* inputs and block shapes */

static void test_input_modes(void **state)
{
    disrnn_config_t *c = make_cfg(4, 3);
    disrnn_model_t *m = NULL;
    int64_t v;
    (void)state;
    /* E or D with P = 0 is an error at model creation, with a message on the configuration */
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_E, DISRNN_INPUT_LEARNED));
    assert_status(disrnn_model_create(&m, c), DISRNN_ERR_INVALID_ARG);
    assert_null(m);
    assert_non_null(strstr(disrnn_config_last_error(c), "P > 0"));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_E, DISRNN_INPUT_NONE));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_D, DISRNN_INPUT_FIXED));
    assert_status(disrnn_model_create(&m, c), DISRNN_ERR_INVALID_ARG);
    assert_null(m);
    /* setting P to 0 clears both modes */
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, 0));
    m = make_model(c);
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_INPUT_D, &v));
    assert_int_equal(v, DISRNN_INPUT_NONE);
    disrnn_model_free(m);
    /* P > 0 makes E learned by default; D stays none */
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, 2));
    m = make_model(c);
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_INPUT_E, &v));
    assert_int_equal(v, DISRNN_INPUT_LEARNED);
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_INPUT_D, &v));
    assert_int_equal(v, DISRNN_INPUT_NONE);
    disrnn_model_free(m);
    /* choices made after P are kept, also when P changes between positive values */
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_E, DISRNN_INPUT_FIXED));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_D, DISRNN_INPUT_LEARNED));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, 5));
    m = make_model(c);
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_INPUT_E, &v));
    assert_int_equal(v, DISRNN_INPUT_FIXED);
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_INPUT_D, &v));
    assert_int_equal(v, DISRNN_INPUT_LEARNED);
    disrnn_model_free(m);
    /* P = 0 with both modes NONE again is fine */
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, 0));
    m = make_model(c);
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_INPUT_E, &v));
    assert_int_equal(v, DISRNN_INPUT_NONE);
    disrnn_model_free(m);
    disrnn_config_free(c);
}

static void test_block_shapes(void **state)
{
    const size_t N = 5, K = 4, P = 3;
    (void)state;
    for (int obs = 0; obs <= DISRNN_OBS_POISSON_EXP; obs++)
        for (int em = 0; em <= DISRNN_INPUT_FIXED; em++)
            for (int dm = 0; dm <= DISRNN_INPUT_FIXED; dm++)
                for (int sm = 0; sm <= DISRNN_STD_LEARNED; sm++) {
                    disrnn_config_t *c = make_cfg(N, K);
                    disrnn_model_t *m;
                    size_t er[8], ec[8], expect_off = 0, r, cc, off;
                    int el[8], lr;
                    const int gauss = obs == DISRNN_OBS_GAUSSIAN || obs == DISRNN_OBS_GAUSSIAN_RELU;
                    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_OBS, obs));
                    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, (int64_t)P));
                    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_E, em));
                    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_D, dm));
                    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_STD_MODE, sm));
                    m = make_model(c);
                    er[DISRNN_BLOCK_A] = N; ec[DISRNN_BLOCK_A] = K; el[DISRNN_BLOCK_A] = 1;
                    er[DISRNN_BLOCK_B] = K; ec[DISRNN_BLOCK_B] = N; el[DISRNN_BLOCK_B] = 1;
                    er[DISRNN_BLOCK_BIAS_C] = N; ec[DISRNN_BLOCK_BIAS_C] = 1; el[DISRNN_BLOCK_BIAS_C] = 1;
                    er[DISRNN_BLOCK_BIAS_D] = K; ec[DISRNN_BLOCK_BIAS_D] = 1; el[DISRNN_BLOCK_BIAS_D] = 1;
                    er[DISRNN_BLOCK_RHO] = gauss ? N : 0; ec[DISRNN_BLOCK_RHO] = gauss ? 1 : 0; el[DISRNN_BLOCK_RHO] = gauss;
                    er[DISRNN_BLOCK_E] = em ? N : 0; ec[DISRNN_BLOCK_E] = em ? P : 0; el[DISRNN_BLOCK_E] = em == DISRNN_INPUT_LEARNED;
                    er[DISRNN_BLOCK_D] = dm ? K : 0; ec[DISRNN_BLOCK_D] = dm ? P : 0; el[DISRNN_BLOCK_D] = dm == DISRNN_INPUT_LEARNED;
                    er[DISRNN_BLOCK_LOG_S] = K; ec[DISRNN_BLOCK_LOG_S] = 1; el[DISRNN_BLOCK_LOG_S] = sm == DISRNN_STD_LEARNED;
                    for (int b = 0; b < 8; b++) {
                        assert_ok(disrnn_model_block_info(m, b, &r, &cc, &off, &lr));
                        assert_int_equal(r, er[b]);
                        assert_int_equal(cc, ec[b]);
                        assert_int_equal(lr, el[b]);
                        if (el[b]) {
                            assert_int_equal(off, expect_off); /* learned blocks packed in enum order */
                            expect_off += r * cc;
                        } else {
                            assert_true(off == SIZE_MAX);
                        }
                        if (r * cc == 0) assert_null(m->blk[b]);
                        else assert_non_null(m->blk[b]);
                    }
                    assert_int_equal(disrnn_model_num_params(m), expect_off);
                    disrnn_model_free(m);
                    disrnn_config_free(c);
                }
}

/* ---------------------------------------------------------------------------------------- */
/* parameter access */

static void test_flat_roundtrip(void **state)
{
    disrnn_config_t *c = make_cfg(5, 3);
    disrnn_model_t *m;
    double theta[256], back[256], blk[64], e[10];
    size_t np, off, r, cc;
    int learned;
    uint64_t rs = 99;
    (void)state;
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, 2));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_E, DISRNN_INPUT_FIXED));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_D, DISRNN_INPUT_LEARNED));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_STD_MODE, DISRNN_STD_LEARNED));
    m = make_model(c);
    np = disrnn_model_num_params(m);
    assert_int_equal(np, 15 + 15 + 5 + 3 + 5 + 6 + 3);
    assert_ok(disrnn_model_get_params(m, theta, np));
    /* each learned block is the slice of the flat vector at its offset */
    for (int b = 0; b < 8; b++) {
        assert_ok(disrnn_model_block_info(m, b, &r, &cc, &off, &learned));
        assert_ok(disrnn_model_get_param(m, b, blk, 64));
        if (learned) assert_memory_equal(blk, theta + off, r * cc * sizeof(double));
    }
    test_uniform(&rs, theta, np, -2.0, 2.0);
    assert_ok(disrnn_model_set_params(m, theta, np));
    assert_ok(disrnn_model_get_params(m, back, np));
    assert_memory_equal(theta, back, np * sizeof(double));
    /* a block write lands in the flat vector */
    assert_ok(disrnn_model_block_info(m, DISRNN_BLOCK_D, &r, &cc, &off, NULL));
    test_uniform(&rs, blk, r * cc, -1.0, 1.0);
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_D, blk, r * cc));
    assert_ok(disrnn_model_get_params(m, back, np));
    assert_memory_equal(back + off, blk, r * cc * sizeof(double));
    /* fixed E: readable and writable, never in the flat vector */
    test_uniform(&rs, e, 10, -1.0, 1.0);
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_E, e, 10));
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_E, blk, 10));
    assert_memory_equal(blk, e, sizeof e);
    memcpy(theta, back, np * sizeof(double));
    assert_ok(disrnn_model_get_params(m, back, np));
    assert_memory_equal(theta, back, np * sizeof(double));
    /* a larger buffer is fine; a smaller one is refused untouched */
    assert_ok(disrnn_model_get_params(m, back, 256));
    back[0] = 12345.0;
    assert_status(disrnn_model_get_params(m, back, np - 1), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_true(back[0] == 12345.0);
    blk[0] = 777.0;
    assert_status(disrnn_model_get_param(m, DISRNN_BLOCK_A, blk, 14), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_true(blk[0] == 777.0);
    assert_true(strlen(disrnn_model_last_error(m)) > 0);
    disrnn_model_free(m);
    disrnn_config_free(c);
}

static void test_set_rejects_bad_values(void **state)
{
    disrnn_config_t *c = make_cfg(4, 2);
    disrnn_model_t *m;
    snapshot before, after;
    double v[64];
    size_t np;
    (void)state;
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_OBS, DISRNN_OBS_POISSON_SOFTPLUS));
    m = make_model(c);
    take(m, &before);
    np = disrnn_model_num_params(m);
    for (size_t i = 0; i < 64; i++) v[i] = 0.5;
    /* NaN / Inf anywhere in the block: nothing is written */
    v[3] = NAN;
    assert_status(disrnn_model_set_param(m, DISRNN_BLOCK_A, v, 8), DISRNN_ERR_NONFINITE);
    assert_true(strlen(disrnn_model_last_error(m)) > 0);
    v[3] = 0.5;
    v[7] = -INFINITY;
    assert_status(disrnn_model_set_param(m, DISRNN_BLOCK_A, v, 8), DISRNN_ERR_NONFINITE);
    v[np - 1] = INFINITY;
    assert_status(disrnn_model_set_params(m, v, np), DISRNN_ERR_NONFINITE);
    v[np - 1] = NAN;
    assert_status(disrnn_model_set_params(m, v, np), DISRNN_ERR_NONFINITE);
    v[np - 1] = 0.5;
    v[7] = 0.5;
    /* wrong lengths, NULLs, absent or unknown blocks */
    assert_status(disrnn_model_set_param(m, DISRNN_BLOCK_A, v, 7), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_param(m, DISRNN_BLOCK_A, v, 9), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_param(m, DISRNN_BLOCK_A, NULL, 8), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_params(m, v, np - 1), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_params(m, v, np + 1), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_params(m, NULL, np), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_param(m, DISRNN_BLOCK_RHO, v, 4), DISRNN_ERR_INVALID_ARG); /* Poisson: no rho */
    assert_status(disrnn_model_set_param(m, DISRNN_BLOCK_E, v, 0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_param(m, -1, v, 8), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_param(m, 8, v, 8), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_get_param(m, 8, v, 8), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_block_info(m, -1, NULL, NULL, NULL, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_block_info(m, 8, NULL, NULL, NULL, NULL), DISRNN_ERR_INVALID_ARG);
    /* log s under Scott's rule follows N_tot and cannot be written */
    assert_status(disrnn_model_set_param(m, DISRNN_BLOCK_LOG_S, v, 2), DISRNN_ERR_INVALID_ARG);
    /* an absent block reads as nothing */
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_RHO, NULL, 0));
    assert_status(disrnn_model_get_param(m, DISRNN_BLOCK_A, NULL, 8), DISRNN_ERR_INVALID_ARG);
    take(m, &after);
    assert_same(&before, &after);
    disrnn_model_free(m);
    disrnn_config_free(c);
}

static void test_fixed_log_s_settable(void **state)
{
    disrnn_config_t *c = make_cfg(3, 2);
    disrnn_model_t *m;
    const double ls[2] = {-1.0, -2.0};
    (void)state;
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_STD_MODE, DISRNN_STD_FIXED));
    assert_ok(disrnn_config_set_double(c, DISRNN_OPT_STD_VALUE, 0.3));
    m = make_model(c);
    assert_true(fabs(disrnn__model_s(m, 0) - 0.3) < 1e-15);
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_LOG_S, ls, 2));
    assert_true(disrnn__model_s(m, 0) == exp(-1.0));
    assert_true(disrnn__model_s(m, 1) == exp(-2.0));
    /* N_tot does not touch a fixed s */
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_N_TOT, 1000.0));
    assert_true(disrnn__model_s(m, 1) == exp(-2.0));
    disrnn_model_free(m);
    disrnn_config_free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* initialisation */

static void check_range(const double *a, size_t n, double bound)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        assert_true(fabs(a[i]) <= bound);
        if (a[i] < lo) lo = a[i];
        if (a[i] > hi) hi = a[i];
    }
    /* enough draws to cover most of the interval on both sides */
    if (n >= 20) assert_true(lo < -0.5 * bound && hi > 0.5 * bound);
}

static void test_init_ranges(void **state)
{
    const size_t N = 12, K = 5, P = 7;
    disrnn_config_t *c = make_cfg(N, K);
    disrnn_model_t *m;
    double buf[256];
    (void)state;
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, (int64_t)P));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_D, DISRNN_INPUT_LEARNED));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_STD_MODE, DISRNN_STD_LEARNED));
    assert_ok(disrnn_config_set_double(c, DISRNN_OPT_STD_VALUE, 0.2));
    assert_ok(disrnn_config_set_seed(c, 5));
    m = make_model(c);
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_A, buf, 256)); check_range(buf, N * K, 1.0 / sqrt((double)K));
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_BIAS_C, buf, 256)); check_range(buf, N, 1.0 / sqrt((double)K));
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_B, buf, 256)); check_range(buf, K * N, 1.0 / sqrt((double)N));
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_BIAS_D, buf, 256)); check_range(buf, K, 1.0 / sqrt((double)N));
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_E, buf, 256)); check_range(buf, N * P, 1.0 / sqrt((double)P));
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_D, buf, 256)); check_range(buf, K * P, 1.0 / sqrt((double)P));
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_RHO, buf, 256));
    for (size_t i = 0; i < N; i++) assert_true(buf[i] == -1.0);
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_LOG_S, buf, 256));
    for (size_t k = 0; k < K; k++) assert_true(buf[k] == log(0.2));
    disrnn_model_free(m);
    disrnn_config_free(c);
}

static void test_init_draw_order(void **state)
{
    /* the documented order: A, c, B, d, E, D, each column-major, b * (2u - 1) */
    const size_t N = 3, K = 2, P = 2;
    disrnn_config_t *c = make_cfg(N, K);
    disrnn_model_t *m;
    disrnn__rng r;
    double got[16];
    const int order[6] = {DISRNN_BLOCK_A, DISRNN_BLOCK_BIAS_C, DISRNN_BLOCK_B, DISRNN_BLOCK_BIAS_D, DISRNN_BLOCK_E, DISRNN_BLOCK_D};
    const double bound[6] = {1 / sqrt(2.0), 1 / sqrt(2.0), 1 / sqrt(3.0), 1 / sqrt(3.0), 1 / sqrt(2.0), 1 / sqrt(2.0)};
    (void)state;
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, (int64_t)P));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_D, DISRNN_INPUT_LEARNED));
    assert_ok(disrnn_config_set_seed(c, 777));
    m = make_model(c);
    disrnn__rng_seed(&r, 777);
    for (int i = 0; i < 6; i++) {
        size_t n = block_size(m, order[i]);
        assert_ok(disrnn_model_get_param(m, order[i], got, 16));
        for (size_t j = 0; j < n; j++) assert_true(got[j] == bound[i] * (2.0 * disrnn__rng_uniform(&r) - 1.0));
    }
    /* the generator continues from there for later noise draws */
    assert_memory_equal(&r, &m->rng, sizeof r);
    disrnn_model_free(m);
    disrnn_config_free(c);
}

static void test_init_fixed_inputs(void **state)
{
    disrnn_config_t *c = make_cfg(4, 2);
    disrnn_model_t *m;
    double e[32], d[16];
    (void)state;
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, 4));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_E, DISRNN_INPUT_FIXED));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_D, DISRNN_INPUT_FIXED));
    m = make_model(c);
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_E, e, 32));
    for (size_t j = 0; j < 4; j++)
        for (size_t i = 0; i < 4; i++) assert_true(e[i + 4 * j] == (i == j ? 1.0 : 0.0));
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_D, d, 16));
    for (size_t i = 0; i < 8; i++) assert_true(d[i] == 0.0);
    assert_int_equal(disrnn_model_num_params(m), 8 + 8 + 4 + 2 + 4);
    disrnn_model_free(m);
    /* P != N: fixed E starts at zero */
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, 3));
    m = make_model(c);
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_E, e, 32));
    for (size_t i = 0; i < 12; i++) assert_true(e[i] == 0.0);
    disrnn_model_free(m);
    disrnn_config_free(c);
}

static void test_reproducible(void **state)
{
    disrnn_config_t *c = make_cfg(10, 4);
    disrnn_model_t *a, *b, *o;
    double pa[256], pb[256];
    size_t np;
    (void)state;
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, 3));
    assert_ok(disrnn_config_set_seed(c, 2024));
    a = make_model(c);
    b = make_model(c);
    assert_ok(disrnn_config_set_seed(c, 2025));
    o = make_model(c);
    np = disrnn_model_num_params(a);
    assert_ok(disrnn_model_get_params(a, pa, 256));
    assert_ok(disrnn_model_get_params(b, pb, 256));
    assert_memory_equal(pa, pb, np * sizeof(double));
    assert_memory_equal(&a->rng, &b->rng, sizeof a->rng);
    assert_ok(disrnn_model_get_params(o, pb, 256));
    assert_true(memcmp(pa, pb, np * sizeof(double)) != 0);
    disrnn_model_free(a);
    disrnn_model_free(b);
    disrnn_model_free(o);
    disrnn_config_free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* clone, allocation failures, NULL safety */

static int log_count;
static void count_log(int level, const char *msg, void *ud)
{
    (void)msg;
    if (level == DISRNN_LOG_ERROR && ud == &log_count) log_count++;
}

static void test_clone(void **state)
{
    const size_t groups[2] = {1, 2};
    disrnn_config_t *c = make_cfg(6, 3);
    disrnn_model_t *m, *k = NULL;
    snapshot sm, sk;
    double v[64];
    size_t gs[2];
    double d;
    (void)state;
    assert_ok(disrnn_config_set_groups(c, groups, 2));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, 2));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_E, DISRNN_INPUT_FIXED));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_D, DISRNN_INPUT_LEARNED));
    m = make_model(c);
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_BETA, 20.0));
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_N_TOT, 1000.0));
    assert_ok(disrnn_model_set_log(m, count_log, DISRNN_LOG_ERROR, &log_count));
    disrnn__rng_next(&m->rng); /* the clone copies the generator's current state */
    assert_ok(disrnn_model_clone(&k, m));
    assert_non_null(k);
    assert_null(k->ws);
    take(m, &sm);
    take(k, &sk);
    assert_same(&sm, &sk);
    assert_memory_equal(&m->rng, &k->rng, sizeof m->rng);
    assert_true(disrnn__spec_compatible(&m->spec, &k->spec));
    assert_ok(disrnn_model_get_double(k, DISRNN_OPT_BETA, &d)); assert_true(d == 20.0);
    assert_ok(disrnn_model_get_double(k, DISRNN_OPT_N_TOT, &d)); assert_true(d == 1000.0);
    assert_ok(disrnn_model_groups(k, gs, 2));
    assert_memory_equal(gs, groups, sizeof groups);
    assert_true(k->spec.groups != m->spec.groups && k->spec.psi != m->spec.psi && k->theta != m->theta);
    /* independence: writes to the clone leave the original alone, and the other way round */
    for (size_t i = 0; i < 64; i++) v[i] = 0.125;
    assert_ok(disrnn_model_set_param(k, DISRNN_BLOCK_A, v, 18));
    assert_ok(disrnn_model_set_param(k, DISRNN_BLOCK_E, v, 12));
    assert_ok(disrnn_model_set_double(k, DISRNN_OPT_BETA, 1.0));
    take(m, &sk);
    assert_same(&sm, &sk);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_BETA, &d)); assert_true(d == 20.0);
    assert_ok(disrnn_model_set_params(m, v, disrnn_model_num_params(m)));
    assert_ok(disrnn_model_get_param(k, DISRNN_BLOCK_B, v, 64));
    assert_true(v[0] == sm.v[18]); /* B starts after the 18 values of A */
    /* the log callback was copied */
    log_count = 0;
    assert_status(disrnn_model_set_param(k, 99, v, 1), DISRNN_ERR_INVALID_ARG);
    assert_int_equal(log_count, 1);
    disrnn_model_free(k);
    disrnn_model_free(m);
    disrnn_config_free(c);
}

static void test_alloc_failure(void **state)
{
    const size_t groups[2] = {2, 2};
    const double psi[2] = {0.75, 0.25};
    disrnn_config_t *c = make_cfg(5, 4);
    test_chaos chaos;
    disrnn_model_t *m = NULL, *k = NULL, *ref;
    long failures = 0;
    snapshot sr, sm;
    (void)state;
    assert_ok(disrnn_config_set_groups(c, groups, 2));
    assert_ok(disrnn_config_set_kernel(c, psi, 2));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, 2));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_E, DISRNN_INPUT_FIXED)); /* also needs fixed storage */
    ref = make_model(c);
    for (long at = 0;; at++) {
        int st;
        chaos.fail_at = at;
        chaos.count = 0;
        chaos.live = 0;
        m = (disrnn_model_t *)&chaos; /* must be reset to NULL on failure */
        st = disrnn_model_create_with_allocator(&m, c, test_chaos_alloc, test_chaos_free, &chaos);
        if (st == DISRNN_OK) break;
        assert_int_equal(st, DISRNN_ERR_NOMEM);
        assert_null(m);
        assert_int_equal(chaos.live, 0);
        failures++;
        assert_true(at < 100);
    }
    assert_true(failures >= 5); /* model, groups, offsets, kernel, parameters, fixed blocks */
    assert_true(chaos.live > 0);
    take(ref, &sr);
    take(m, &sm);
    assert_same(&sr, &sm); /* the hooks do not change the result */
    /* clone through the same hooks */
    for (long at = 0;; at++) {
        const long live = chaos.live;
        int st;
        chaos.fail_at = at;
        chaos.count = 0;
        k = m;
        st = disrnn_model_clone(&k, m);
        if (st == DISRNN_OK) break;
        assert_int_equal(st, DISRNN_ERR_NOMEM);
        assert_null(k);
        assert_int_equal(chaos.live, live);
        assert_true(strlen(disrnn_model_last_error(m)) > 0);
        assert_true(at < 100);
    }
    assert_non_null(k);
    disrnn_model_free(k);
    disrnn_model_free(m);
    assert_int_equal(chaos.live, 0);
    /* one hook without the other */
    assert_status(disrnn_model_create_with_allocator(&m, c, test_chaos_alloc, NULL, &chaos), DISRNN_ERR_INVALID_ARG);
    assert_null(m);
    assert_status(disrnn_model_create_with_allocator(&m, c, NULL, test_chaos_free, &chaos), DISRNN_ERR_INVALID_ARG);
    disrnn_model_free(ref);
    disrnn_config_free(c);
}

static void test_null_safety(void **state)
{
    disrnn_config_t *c = NULL;
    disrnn_model_t *m = NULL;
    int64_t iv;
    double d, buf[4];
    size_t s;
    int li;
    (void)state;
    assert_status(disrnn_config_create(NULL, 3, 2), DISRNN_ERR_INVALID_ARG);
    c = (disrnn_config_t *)&iv;
    assert_status(disrnn_config_create(&c, 0, 2), DISRNN_ERR_INVALID_ARG);
    assert_null(c);
    assert_status(disrnn_config_create(&c, 3, 0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_create(&c, (size_t)1 << 25, 2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_create(&c, SIZE_MAX, SIZE_MAX), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_create(&c, (size_t)1 << 20, (size_t)1 << 20), DISRNN_ERR_INVALID_ARG); /* N * K too big */
    disrnn_config_free(NULL);
    assert_status(disrnn_config_set_groups(NULL, &s, 1), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_kernel(NULL, &d, 1), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_int(NULL, DISRNN_OPT_SIGMA, 0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_double(NULL, DISRNN_OPT_BETA, 0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_config_set_seed(NULL, 1), DISRNN_ERR_INVALID_ARG);
    assert_string_equal(disrnn_config_last_error(NULL), "");
    assert_status(disrnn_model_create(NULL, NULL), DISRNN_ERR_INVALID_ARG);
    m = (disrnn_model_t *)&iv;
    assert_status(disrnn_model_create(&m, NULL), DISRNN_ERR_INVALID_ARG);
    assert_null(m);
    assert_status(disrnn_model_create_with_allocator(&m, NULL, test_chaos_alloc, test_chaos_free, NULL), DISRNN_ERR_INVALID_ARG);
    disrnn_model_free(NULL);
    assert_status(disrnn_model_clone(NULL, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_clone(&m, NULL), DISRNN_ERR_INVALID_ARG);
    assert_null(m);
    assert_string_equal(disrnn_model_last_error(NULL), "");
    assert_status(disrnn_model_set_log(NULL, NULL, 0, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_get_int(NULL, DISRNN_OPT_SIGMA, &iv), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_get_double(NULL, DISRNN_OPT_BETA, &d), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_double(NULL, DISRNN_OPT_BETA, 1.0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_dims(NULL, &s, &s, &s, &s, &s), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_groups(NULL, &s, 1), DISRNN_ERR_INVALID_ARG);
    assert_int_equal(disrnn_model_num_params(NULL), 0);
    assert_status(disrnn_model_block_info(NULL, 0, &s, &s, &s, &li), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_get_param(NULL, 0, buf, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_param(NULL, 0, buf, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_get_params(NULL, buf, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_params(NULL, buf, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_encoder_input(NULL, 1, buf, 4, buf, 4), DISRNN_ERR_INVALID_ARG);
    /* NULL outputs on a live handle */
    c = make_cfg(3, 2);
    m = make_model(c);
    assert_status(disrnn_model_get_int(m, DISRNN_OPT_SIGMA, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_get_double(m, DISRNN_OPT_BETA, NULL), DISRNN_ERR_INVALID_ARG);
    assert_ok(disrnn_model_dims(m, NULL, NULL, NULL, NULL, NULL));
    assert_ok(disrnn_model_block_info(m, 0, NULL, NULL, NULL, NULL));
    assert_status(disrnn_model_get_params(m, NULL, 100), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_encoder_input(m, 1, NULL, 3, buf, 3), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_encoder_input(m, 1, buf, 3, NULL, 3), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_clone(NULL, m), DISRNN_ERR_INVALID_ARG);
    disrnn_model_free(m);
    disrnn_config_free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* settings on a model */

static void test_model_settings(void **state)
{
    disrnn_config_t *c = make_cfg(4, 3);
    disrnn_model_t *m;
    double d;
    int64_t iv;
    (void)state;
    m = make_model(c);
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_BETA, 2.0));
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_ALPHA, 1.0));
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_BETA, &d)); assert_true(d == 2.0);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_ALPHA, &d)); assert_true(d == 1.0);
    /* bad values: rejected, unchanged */
    assert_status(disrnn_model_set_double(m, DISRNN_OPT_BETA, -1.0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_double(m, DISRNN_OPT_BETA, NAN), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_double(m, DISRNN_OPT_ALPHA, INFINITY), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_double(m, DISRNN_OPT_N_TOT, 0.25), DISRNN_ERR_INVALID_ARG);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_BETA, &d)); assert_true(d == 2.0);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_ALPHA, &d)); assert_true(d == 1.0);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_N_TOT, &d)); assert_true(d == 0.0);
    /* immutable, integer-valued and unknown options */
    assert_status(disrnn_model_set_double(m, DISRNN_OPT_KAPPA, 2.0), DISRNN_ERR_INVALID_ARG);
    assert_non_null(strstr(disrnn_model_last_error(m), "KAPPA"));
    assert_status(disrnn_model_set_double(m, DISRNN_OPT_STD_VALUE, 0.2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_double(m, DISRNN_OPT_SIGMA, 1.0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_set_double(m, 42, 1.0), DISRNN_ERR_INVALID_ARG);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_KAPPA, &d)); assert_true(d == 1.0);
    /* wrong-type and unknown getters */
    assert_status(disrnn_model_get_int(m, DISRNN_OPT_BETA, &iv), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_get_double(m, DISRNN_OPT_SIGMA, &d), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_get_int(m, -1, &iv), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_get_double(m, 12, &d), DISRNN_ERR_INVALID_ARG);
    /* log callback */
    log_count = 0;
    assert_status(disrnn_model_set_log(m, count_log, 7, &log_count), DISRNN_ERR_INVALID_ARG);
    assert_ok(disrnn_model_set_log(m, count_log, DISRNN_LOG_DEBUG, &log_count));
    assert_status(disrnn_model_set_double(m, DISRNN_OPT_KAPPA, 2.0), DISRNN_ERR_INVALID_ARG);
    assert_int_equal(log_count, 1);
    assert_ok(disrnn_model_set_log(m, NULL, DISRNN_LOG_ERROR, NULL));
    assert_status(disrnn_model_set_double(m, DISRNN_OPT_KAPPA, 2.0), DISRNN_ERR_INVALID_ARG);
    assert_int_equal(log_count, 1);
    disrnn_model_free(m);
    disrnn_config_free(c);
}

static void test_scott(void **state)
{
    disrnn_config_t *c = make_cfg(20, 6);
    disrnn_model_t *m;
    const double want = pow(1000.0, -0.1);
    double d, ls[6];
    (void)state;
    m = make_model(c);
    /* N_tot unset: s reported as 0 ("unset"), the option reads as its placeholder */
    assert_true(disrnn__model_n_tot(m) == 0.0);
    assert_true(disrnn__model_s(m, 0) == 0.0);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_STD_VALUE, &d));
    assert_true(d == 0.1);
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_N_TOT, 1000.0));
    assert_true(disrnn__model_n_tot(m) == 1000.0);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_STD_VALUE, &d));
    assert_true(fabs(d - want) <= 4 * DBL_EPSILON * want);
    for (size_t k = 0; k < 6; k++) assert_true(fabs(disrnn__model_s(m, k) - want) <= 4 * DBL_EPSILON * want);
    assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_LOG_S, ls, 6));
    assert_true(fabs(ls[5] - (-0.1 * log(1000.0))) < 1e-15);
    /* a new N_tot refreshes s; back to 0 means unset again */
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_N_TOT, 512.0));
    assert_true(fabs(disrnn__model_s(m, 2) - pow(512.0, -0.1)) <= 4 * DBL_EPSILON);
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_N_TOT, 0.0));
    assert_true(disrnn__model_s(m, 0) == 0.0);
    disrnn_model_free(m);
    /* N_tot given in the configuration applies at creation */
    assert_ok(disrnn_config_set_double(c, DISRNN_OPT_N_TOT, 1000.0));
    m = make_model(c);
    assert_true(fabs(disrnn__model_s(m, 0) - want) <= 4 * DBL_EPSILON * want);
    disrnn_model_free(m);
    /* under FIXED or LEARNED, N_tot leaves s alone */
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_STD_MODE, DISRNN_STD_LEARNED));
    m = make_model(c);
    assert_true(fabs(disrnn__model_s(m, 0) - 0.1) < 1e-16);
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_STD_VALUE, &d));
    assert_true(d == 0.1);
    disrnn_model_free(m);
    disrnn_config_free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* encoder input and element functions */

static double ref_sigma(int s, double v) { return s == DISRNN_SIGMA_TANH ? tanh(v) : s == DISRNN_SIGMA_RELU ? (v > 0 ? v : 0) : v; }

static void test_encoder_input(void **state)
{
    enum { N = 4, L = 3, M = 5, LDP = N * L + 2, LDH = N + 3 };
    const double psi[L] = {0.5, 0.3, 0.2};
    double xprev[LDP * M], h[LDH * M], h2[N * M];
    uint64_t rs = 11;
    (void)state;
    test_uniform(&rs, xprev, LDP * M, -3.0, 3.0);
    for (int sg = 0; sg <= DISRNN_SIGMA_RELU; sg++) {
        disrnn_config_t *c = make_cfg(N, 2);
        disrnn_model_t *m;
        assert_ok(disrnn_config_set_kernel(c, psi, L));
        assert_ok(disrnn_config_set_double(c, DISRNN_OPT_KAPPA, 2.0));
        assert_ok(disrnn_config_set_int(c, DISRNN_OPT_SIGMA, sg));
        m = make_model(c);
        for (size_t i = 0; i < LDH * M; i++) h[i] = -99.0;
        assert_ok(disrnn_model_encoder_input(m, M, xprev, LDP, h, LDH));
        for (size_t j = 0; j < M; j++) {
            for (size_t n = 0; n < N; n++) {
                double want = 0.0;
                for (size_t l = 0; l < L; l++) want += psi[l] * ref_sigma(sg, xprev[l * N + n + j * LDP] / 2.0);
                assert_true(fabs(h[n + j * LDH] - want) <= 1e-15 * (1.0 + fabs(want)));
            }
            for (size_t n = N; n < LDH; n++) assert_true(h[n + j * LDH] == -99.0); /* padding untouched */
        }
        /* the internal function computes the same, contiguous */
        disrnn__encoder_input(&m->spec, M, xprev, LDP, h2, N);
        for (size_t j = 0; j < M; j++) assert_memory_equal(h2 + j * N, h + j * LDH, N * sizeof(double));
        /* argument checks */
        assert_status(disrnn_model_encoder_input(m, 0, xprev, LDP, h, LDH), DISRNN_ERR_INVALID_ARG);
        assert_status(disrnn_model_encoder_input(m, M, xprev, N * L - 1, h, LDH), DISRNN_ERR_INVALID_ARG);
        assert_status(disrnn_model_encoder_input(m, M, xprev, LDP, h, N - 1), DISRNN_ERR_INVALID_ARG);
        xprev[N * L - 1 + LDP * 2] = NAN;
        assert_status(disrnn_model_encoder_input(m, M, xprev, LDP, h, LDH), DISRNN_ERR_NONFINITE);
        xprev[N * L - 1 + LDP * 2] = INFINITY;
        assert_status(disrnn_model_encoder_input(m, M, xprev, LDP, h, LDH), DISRNN_ERR_NONFINITE);
        xprev[N * L - 1 + LDP * 2] = 1.0;
        xprev[N * L + LDP * 2] = NAN; /* beyond the rows used: ignored */
        assert_ok(disrnn_model_encoder_input(m, M, xprev, LDP, h, LDH));
        xprev[N * L + LDP * 2] = 0.0;
        disrnn_model_free(m);
        disrnn_config_free(c);
    }
}

static void test_elementwise(void **state)
{
    (void)state;
    assert_true(disrnn__sigma(DISRNN_SIGMA_TANH, 0.3) == tanh(0.3));
    assert_true(disrnn__sigma(DISRNN_SIGMA_IDENTITY, -2.5) == -2.5);
    assert_true(disrnn__sigma(DISRNN_SIGMA_RELU, -2.5) == 0.0);
    assert_true(disrnn__sigma(DISRNN_SIGMA_RELU, 2.5) == 2.5);
    assert_true(disrnn__obs_mean(DISRNN_OBS_GAUSSIAN, -3.0) == -3.0);
    assert_true(disrnn__obs_mean(DISRNN_OBS_GAUSSIAN_RELU, -3.0) == 0.0);
    assert_true(disrnn__obs_mean(DISRNN_OBS_GAUSSIAN_RELU, 3.0) == 3.0);
    assert_true(fabs(disrnn__obs_mean(DISRNN_OBS_POISSON_SOFTPLUS, 0.7) - log(1.0 + exp(0.7))) < 1e-15);
    assert_true(disrnn__obs_mean(DISRNN_OBS_POISSON_SOFTPLUS, 700.0) == 700.0);
    assert_true(disrnn__obs_mean(DISRNN_OBS_POISSON_SOFTPLUS, -700.0) > 0.0);
    assert_true(fabs(disrnn__obs_mean(DISRNN_OBS_POISSON_SOFTPLUS, -30.0) / exp(-30.0) - 1.0) < 1e-12);
    assert_true(disrnn__obs_mean(DISRNN_OBS_POISSON_EXP, 1.0) == exp(1.0));
}

/* ---------------------------------------------------------------------------------------- */
/* specification check (the guard of file loading) */

static void expect_bad(disrnn__spec *s, const disrnn__base *b, int line)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    disrnn_model_t *m = (disrnn_model_t *)s;
    const int st = disrnn__spec_check(s, b);
    if (st != DISRNN_ERR_INVALID_ARG) fail_msg("the spec mutated at line %d gave status %d", line, st);
    assert_true(strlen(b->err) > 0);
    assert_status(disrnn__model_new(&m, s, al), DISRNN_ERR_INVALID_ARG);
    assert_null(m);
}

static void test_spec_check(void **state)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    disrnn__base b;
    disrnn__spec good, s;
    size_t groups[3] = {2, 2, 2}, starts[4] = {0, 2, 4, 6}, badg[3] = {2, 2, 3}, bads[4] = {0, 2, 5, 6};
    double psi[2] = {0.6, 0.4}, badpsi[2] = {0.6, 0.5}, negpsi[2] = {1.2, -0.2}, nanpsi[2] = {NAN, 1.0};
    disrnn_model_t *m = NULL;
    (void)state;
    disrnn__base_init(&b, NULL, NULL, NULL);
    assert_ok(disrnn__spec_init(al, &good, 8, 6));
    disrnn__spec_free(al, &good);
    memset(&good, 0, sizeof good);
    good.N = 8; good.K = 6; good.G = 3; good.L = 2; good.P = 2;
    good.groups = groups; good.group_start = starts; good.psi = psi;
    good.sigma = DISRNN_SIGMA_TANH; good.padding = DISRNN_PAD_ZERO; good.obs = DISRNN_OBS_POISSON_SOFTPLUS;
    good.input_e = DISRNN_INPUT_LEARNED; good.input_d = DISRNN_INPUT_FIXED; good.std_mode = DISRNN_STD_SCOTT;
    good.kappa = 1.0; good.std_value = 0.1; good.n_tot = 1000; good.beta = 20; good.alpha = 0;
    assert_ok(disrnn__spec_check(&good, &b));
    assert_ok(disrnn__model_new(&m, &good, al));
    assert_non_null(m);
    disrnn_model_free(m);
    assert_status(disrnn__spec_check(NULL, &b), DISRNN_ERR_INVALID_ARG);

#define BAD(stmt) do { s = good; stmt; b.err[0] = 0; expect_bad(&s, &b, __LINE__); } while (0)
    BAD(s.N = 0);
    BAD(s.N = ((size_t)1 << 24) + 1);
    BAD(s.K = 0);
    BAD(s.N = (size_t)1 << 20; s.K = (size_t)1 << 10); /* N * K beyond the cap */
    BAD(s.N = SIZE_MAX);
    BAD(s.G = 0);
    BAD(s.G = 7);
    BAD(s.groups = NULL);
    BAD(s.group_start = NULL);
    BAD(s.groups = badg);
    BAD(s.group_start = bads);
    BAD(s.psi = NULL);
    BAD(s.L = 0);
    BAD(s.psi = badpsi);
    BAD(s.psi = negpsi);
    BAD(s.psi = nanpsi);
    BAD(s.L = (size_t)1 << 25);
    BAD(s.sigma = 3);
    BAD(s.sigma = -1);
    BAD(s.padding = 3);
    BAD(s.obs = 4);
    BAD(s.input_e = 3);
    BAD(s.input_d = -1);
    BAD(s.std_mode = 3);
    BAD(s.P = 0);                           /* E learned and D fixed need inputs */
    BAD(s.P = ((size_t)1 << 24) + 1);
    BAD(s.N = (size_t)1 << 20; s.P = (size_t)1 << 9); /* N * P beyond the cap (N * K is fine) */
    BAD(s.kappa = 0.0);
    BAD(s.kappa = NAN);
    BAD(s.kappa = -1.0);
    BAD(s.std_value = INFINITY);
    BAD(s.std_value = 0.0);
    BAD(s.n_tot = 0.5);
    BAD(s.n_tot = -1.0);
    BAD(s.n_tot = NAN);
    BAD(s.beta = -1.0);
    BAD(s.beta = INFINITY);
    BAD(s.alpha = NAN);
#undef BAD
    disrnn__base_init(&b, NULL, NULL, NULL);
    assert_status(disrnn__model_new(NULL, &good, al), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn__model_new(&m, NULL, al), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn__model_new(&m, &good, NULL), DISRNN_ERR_INVALID_ARG);
}

static void test_spec_copy_compatible(void **state)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    disrnn_config_t *c = make_cfg(6, 4);
    const size_t groups[2] = {1, 3};
    const double psi[2] = {0.5, 0.5};
    disrnn__spec cp, tmp;
    disrnn__base b;
    (void)state;
    disrnn__base_init(&b, NULL, NULL, NULL);
    assert_ok(disrnn_config_set_groups(c, groups, 2));
    assert_ok(disrnn_config_set_kernel(c, psi, 2));
    assert_ok(disrnn__spec_copy(al, &cp, &c->spec));
    assert_true(cp.groups != c->spec.groups);
    assert_true(disrnn__spec_compatible(&cp, &c->spec));
    assert_ok(disrnn__spec_check(&cp, &b));
    /* settings ignored by compatibility */
    cp.beta = 3.0; cp.alpha = 1.0; cp.n_tot = 99.0; cp.seed = 17;
    assert_true(disrnn__spec_compatible(&cp, &c->spec));
    /* shape or option differences are not */
    tmp = cp; tmp.sigma = DISRNN_SIGMA_RELU; assert_false(disrnn__spec_compatible(&tmp, &c->spec));
    tmp = cp; tmp.kappa = 2.0; assert_false(disrnn__spec_compatible(&tmp, &c->spec));
    tmp = cp; tmp.obs = DISRNN_OBS_POISSON_EXP; assert_false(disrnn__spec_compatible(&tmp, &c->spec));
    cp.groups[0] = 2; cp.groups[1] = 2;
    assert_false(disrnn__spec_compatible(&cp, &c->spec));
    cp.groups[0] = 1; cp.groups[1] = 3;
    cp.psi[0] = 0.25; cp.psi[1] = 0.75;
    assert_false(disrnn__spec_compatible(&cp, &c->spec));
    assert_false(disrnn__spec_compatible(NULL, &c->spec));
    /* a failed setter leaves the spec as it was */
    tmp = cp;
    assert_status(disrnn__spec_set_int(&cp, DISRNN_OPT_OBS, 9, &b), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn__spec_set_int(&cp, DISRNN_OPT_NUM_INPUTS, (int64_t)1 << 26, &b), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn__spec_set_double(&cp, DISRNN_OPT_BETA, -2.0, &b), DISRNN_ERR_INVALID_ARG);
    assert_memory_equal(&tmp, &cp, sizeof cp);
    disrnn__spec_free(al, &cp);
    assert_null(cp.groups);
    disrnn__spec_free(al, &cp); /* twice is harmless */
    disrnn__spec_free(al, NULL);
    disrnn_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_option_roundtrip),
        cmocka_unit_test(test_option_bounds),
        cmocka_unit_test(test_option_failure_keeps_config),
        cmocka_unit_test(test_enum_values),
        cmocka_unit_test(test_groups_validation),
        cmocka_unit_test(test_kernel_validation),
        cmocka_unit_test(test_input_modes),
        cmocka_unit_test(test_block_shapes),
        cmocka_unit_test(test_flat_roundtrip),
        cmocka_unit_test(test_set_rejects_bad_values),
        cmocka_unit_test(test_fixed_log_s_settable),
        cmocka_unit_test(test_init_ranges),
        cmocka_unit_test(test_init_draw_order),
        cmocka_unit_test(test_init_fixed_inputs),
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_clone),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_null_safety),
        cmocka_unit_test(test_model_settings),
        cmocka_unit_test(test_scott),
        cmocka_unit_test(test_encoder_input),
        cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_spec_check),
        cmocka_unit_test(test_spec_copy_compatible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
