/* Generation and k-step prediction: rollouts at the means reproduce the one-step predictions when
 * fed the true history, k-step R^2 against rollouts and metrics, padding at the start, the noise
 * distributions (latent, Gaussian, Poisson) and the exactness of the Poisson sampler. */
#include "support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

#define assert_near(a, b, tol) near_impl((a), (b), (tol), __FILE__, __LINE__)
static void near_impl(double a, double b, double tol, const char *file, int line)
{
    if (!(fabs(a - b) <= tol)) {
        print_error("%s:%d: %.17g and %.17g differ by more than %g\n", file, line, a, b, tol);
        fail();
    }
}

static disrnn_model_t *make_model(size_t N, size_t K, size_t P, const double *psi, size_t L, int padding, int obs,
                                  uint64_t seed)
{
    disrnn_config_t *c = NULL;
    disrnn_model_t *m = NULL;
    assert_ok(disrnn_config_create(&c, N, K));
    if (psi) assert_ok(disrnn_config_set_kernel(c, psi, L));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_PADDING, padding));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_OBS, obs));
    if (P) {
        assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, (int64_t)P));
        assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_D, DISRNN_INPUT_LEARNED));
    }
    assert_ok(disrnn_config_set_double(c, DISRNN_OPT_KAPPA, 1.5));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_STD_MODE, DISRNN_STD_FIXED));
    assert_ok(disrnn_config_set_double(c, DISRNN_OPT_STD_VALUE, 0.3));
    assert_ok(disrnn_config_set_seed(c, seed));
    assert_ok(disrnn_model_create(&m, c));
    disrnn_config_free(c);
    return m;
}

/* ---------------------------------------------------------------------------------------- */

static void test_generation_reproduces_predictions(void **state)
{
    const double psi[3] = {0.5, 0.3, 0.2};
    const int pads[3] = {DISRNN_PAD_REPEAT, DISRNN_PAD_ZERO, DISRNN_PAD_DROP};
    (void)state;
    for (int pi = 0; pi < 3; pi++)
        for (int obs = 0; obs < 4; obs++) {
            const size_t N = 5, K = 3, P = 2, T = 9, L = 3;
            disrnn_model_t *m = make_model(N, K, P, psi, L, pads[pi], obs, 21 + (uint64_t)obs);
            disrnn_dataset_t *ds = NULL;
            double x[5 * 9], u[2 * 9], xh[5 * 9], mu[3 * 9], xg[5], zg[3];
            size_t S, t0, col = 0;
            uint64_t rs = 5 + (uint64_t)obs;
            test_uniform(&rs, x, N * T, 0.0, 4.0);
            for (size_t i = 0; i < N * T; i++) x[i] = floor(x[i]); /* counts suit every model */
            test_uniform(&rs, u, P * T, -1.0, 1.0);
            assert_ok(disrnn_dataset_create(&ds, N, P, obs >= 2 ? DISRNN_DATA_COUNTS : DISRNN_DATA_CONTINUOUS));
            assert_ok(disrnn_dataset_add_trial(ds, T, x, N, u, P, NULL, 0));
            S = disrnn_dataset_num_samples(ds, m);
            assert_ok(disrnn_model_predict(m, ds, xh, N, S));
            assert_ok(disrnn_model_latents(m, ds, mu, K, S));
            t0 = pads[pi] == DISRNN_PAD_DROP ? L : 0;
            for (size_t t = t0; t < T; t++, col++) {
                /* at t = 0 repeat padding uses x_0 itself as history, which a rollout cannot know */
                if (t == 0 && pads[pi] == DISRNN_PAD_REPEAT) continue;
                assert_ok(disrnn_model_generate(m, t, t ? x : NULL, N, 1, u + t * P, P, DISRNN_GEN_MEAN, 0, xg, N, zg, K));
                for (size_t n = 0; n < N; n++) assert_near(xg[n], xh[n + col * N], 1e-12 * (1.0 + fabs(xh[n + col * N])));
                for (size_t k = 0; k < K; k++) assert_near(zg[k], mu[k + col * K], 1e-12);
            }
            assert_int_equal(col, S);
            disrnn_dataset_free(ds);
            disrnn_model_free(m);
        }
}

static double sgm(double v) { return tanh(v); }

static void test_generation_padding_at_start(void **state)
{
    /* no initial bins: the history starts as zeros; with repeat padding, once the first bin
     * exists it fills the positions before the start */
    const double psi[2] = {0.6, 0.4};
    (void)state;
    for (int pad = DISRNN_PAD_REPEAT; pad <= DISRNN_PAD_DROP; pad++) {
        const size_t N = 3, K = 2;
        disrnn_model_t *m = make_model(N, K, 0, psi, 2, pad, DISRNN_OBS_GAUSSIAN, 8);
        double A[6], B[6], c[3], d[2], x[3 * 3], z[2 * 3], h[3], want_z[2];
        assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_A, A, 6));
        assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_B, B, 6));
        assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_BIAS_C, c, 3));
        assert_ok(disrnn_model_get_param(m, DISRNN_BLOCK_BIAS_D, d, 2));
        assert_ok(disrnn_model_generate(m, 0, NULL, N, 3, NULL, 0, DISRNN_GEN_MEAN, 0, x, N, z, K));
        for (size_t t = 0; t < 3; t++) {
            for (size_t n = 0; n < N; n++) {
                const double s1 = t >= 1 ? sgm(x[n + (t - 1) * N] / 1.5) : 0.0;
                const double s2 = t >= 2 ? sgm(x[n + (t - 2) * N] / 1.5)
                                         : (t == 1 && pad == DISRNN_PAD_REPEAT ? sgm(x[n] / 1.5) : 0.0);
                h[n] = 0.6 * s1 + 0.4 * s2;
            }
            for (size_t k = 0; k < K; k++) {
                want_z[k] = d[k];
                for (size_t n = 0; n < N; n++) want_z[k] += B[k + n * K] * h[n];
                assert_near(z[k + t * K], want_z[k], 1e-14);
            }
            for (size_t n = 0; n < N; n++) {
                double e = c[n];
                for (size_t k = 0; k < K; k++) e += A[n + k * N] * want_z[k];
                assert_near(x[n + t * N], e, 1e-14);
            }
        }
        disrnn_model_free(m);
    }
}

/* R^2 (uniform over channels) of predictions pred against y (N x n, mask optional). */
static double r2_ref(size_t N, size_t n, const double *y, const double *pred, const uint8_t *mask)
{
    double tot = 0.0;
    size_t cnt = 0;
    for (size_t c = 0; c < N; c++) {
        double mean = 0.0, k = 0.0, sst = 0.0, sse = 0.0;
        for (size_t i = 0; i < n; i++)
            if (!mask || mask[c + i * N]) mean += y[c + i * N], k += 1.0;
        mean /= k;
        for (size_t i = 0; i < n; i++)
            if (!mask || mask[c + i * N]) {
                sst += (y[c + i * N] - mean) * (y[c + i * N] - mean);
                sse += (y[c + i * N] - pred[c + i * N]) * (y[c + i * N] - pred[c + i * N]);
            }
        if (sst > 0) tot += 1.0 - sse / sst, cnt++;
    }
    return tot / (double)cnt;
}

static void test_kstep_r2(void **state)
{
    const double psi[2] = {0.7, 0.3};
    const size_t N = 4, K = 2, P = 1, T[2] = {12, 15};
    disrnn_model_t *m = make_model(N, K, P, psi, 2, DISRNN_PAD_ZERO, DISRNN_OBS_GAUSSIAN, 3);
    disrnn_dataset_t *ds = NULL;
    double x[2][4 * 15], u[2][15], r2[3], met[4], pred3[4 * 30], tgt3[4 * 30], out[4 * 3], A[8];
    uint8_t mask[2][4 * 15];
    size_t nk = 0;
    uint64_t rs = 44;
    (void)state;
    /* a stronger decoder so that predictions carry signal */
    test_uniform(&rs, A, 8, -2.0, 2.0);
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_A, A, 8));
    assert_ok(disrnn_dataset_create(&ds, N, P, DISRNN_DATA_CONTINUOUS));
    for (int r = 0; r < 2; r++) {
        test_uniform(&rs, x[r], N * T[r], -1.0, 1.0);
        test_uniform(&rs, u[r], T[r], -1.0, 1.0);
        for (size_t i = 0; i < N * T[r]; i++) mask[r][i] = (uint8_t)(i % 5 != 2);
        assert_ok(disrnn_dataset_add_trial(ds, T[r], x[r], N, u[r], P, mask[r], N));
        for (size_t i = 0; i < N * T[r]; i++) /* the dataset stores masked entries as 0 */
            if (!mask[r][i]) x[r][i] = 0.0;
    }
    assert_ok(disrnn_model_kstep_r2(m, ds, 3, r2, 3));
    assert_ok(disrnn_model_evaluate(m, ds, met, 4));
    assert_near(r2[0], met[DISRNN_METRIC_R2], 1e-12); /* k = 1 is the one-step prediction */
    /* k = 3 against rollouts from the true history, built with disrnn_model_generate */
    {
        uint8_t mk[4 * 30];
        for (int r = 0; r < 2; r++)
            for (size_t t0 = 0; t0 + 2 < T[r]; t0++, nk++) {
                assert_ok(disrnn_model_generate(m, t0, t0 ? x[r] : NULL, N, 3, u[r] + t0, 1, DISRNN_GEN_MEAN, 0, out, N, NULL, 0));
                memcpy(pred3 + nk * N, out + 2 * N, N * sizeof(double));
                memcpy(tgt3 + nk * N, x[r] + (t0 + 2) * N, N * sizeof(double));
                memcpy(mk + nk * N, mask[r] + (t0 + 2) * N, N);
            }
        assert_near(r2[2], r2_ref(N, nk, tgt3, pred3, mk), 1e-12);
    }
    assert_true(r2[2] != r2[0]);
    /* bad inputs */
    assert_status(disrnn_model_kstep_r2(m, ds, 3, r2, 2), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_status(disrnn_model_kstep_r2(m, ds, 0, r2, 3), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_kstep_r2(m, NULL, 3, r2, 3), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_kstep_r2(m, ds, 3, NULL, 3), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_kstep_r2(NULL, ds, 3, r2, 3), DISRNN_ERR_INVALID_ARG);
    {
        disrnn_dataset_t *wrong = NULL;
        assert_ok(disrnn_dataset_create(&wrong, N, 0, DISRNN_DATA_CONTINUOUS));
        assert_ok(disrnn_dataset_add_trial(wrong, 5, x[0], N, NULL, 0, NULL, 0));
        assert_status(disrnn_model_kstep_r2(m, wrong, 3, r2, 3), DISRNN_ERR_INVALID_ARG);
        disrnn_dataset_free(wrong);
    }
    disrnn_dataset_free(ds);
    disrnn_model_free(m);
}

static void test_noise_distributions_and_seeds(void **state)
{
    const size_t N = 2, K = 2, T = 40000;
    disrnn_model_t *m = make_model(N, K, 0, NULL, 1, DISRNN_PAD_REPEAT, DISRNN_OBS_GAUSSIAN, 2);
    double *x = malloc(N * T * sizeof(double)), *z = malloc(K * T * sizeof(double)), *x2 = malloc(N * T * sizeof(double));
    const double zeroB[4] = {0}, d[2] = {0.5, -1.0}, c[2] = {2.0, -3.0}, rho[2] = {-1.0, 0.5};
    (void)state;
    /* B = 0: mu = d whatever the history, so z ~ N(d, s^2) and x ~ N(A z + c, exp(2 rho)) */
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_B, zeroB, 4));
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_BIAS_D, d, 2));
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_A, zeroB, 4));
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_BIAS_C, c, 2));
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_RHO, rho, 2));
    assert_ok(disrnn_model_generate(m, 0, NULL, N, T, NULL, 0, DISRNN_GEN_LATENT_NOISE | DISRNN_GEN_OBS_NOISE, 7, x, N, z, K));
    for (size_t k = 0; k < K; k++) {
        double mean = 0, var = 0;
        for (size_t t = 0; t < T; t++) mean += z[k + t * K] / (double)T;
        for (size_t t = 0; t < T; t++) var += (z[k + t * K] - mean) * (z[k + t * K] - mean) / (double)T;
        assert_near(mean, d[k], 5 * 0.3 / sqrt((double)T));
        assert_near(sqrt(var), 0.3, 0.01);
    }
    for (size_t n = 0; n < N; n++) {
        double mean = 0, var = 0;
        for (size_t t = 0; t < T; t++) mean += x[n + t * N] / (double)T;
        for (size_t t = 0; t < T; t++) var += (x[n + t * N] - mean) * (x[n + t * N] - mean) / (double)T;
        assert_near(mean, c[n], 5 * exp(rho[n]) / sqrt((double)T));
        assert_near(sqrt(var), exp(rho[n]), 0.03 * exp(rho[n]));
    }
    /* same seed, same bits; another seed, other values; means only: no randomness at all */
    assert_ok(disrnn_model_generate(m, 0, NULL, N, 100, NULL, 0, DISRNN_GEN_LATENT_NOISE | DISRNN_GEN_OBS_NOISE, 7, x2, N, NULL, 0));
    assert_memory_equal(x, x2, 100 * N * sizeof(double));
    assert_ok(disrnn_model_generate(m, 0, NULL, N, 100, NULL, 0, DISRNN_GEN_LATENT_NOISE | DISRNN_GEN_OBS_NOISE, 8, x2, N, NULL, 0));
    assert_true(memcmp(x, x2, 100 * N * sizeof(double)) != 0);
    assert_ok(disrnn_model_generate(m, 0, NULL, N, 5, NULL, 0, DISRNN_GEN_MEAN, 1, x, N, NULL, 0));
    assert_ok(disrnn_model_generate(m, 0, NULL, N, 5, NULL, 0, DISRNN_GEN_MEAN, 2, x2, N, NULL, 0));
    assert_memory_equal(x, x2, 5 * N * sizeof(double));
    assert_near(x[0], c[0], 0.0);
    free(x2);
    free(z);
    free(x);
    disrnn_model_free(m);
}

static void test_poisson_observation_noise(void **state)
{
    const size_t N = 3, T = 30000;
    disrnn_model_t *m = make_model(N, 1, 0, NULL, 1, DISRNN_PAD_REPEAT, DISRNN_OBS_POISSON_EXP, 2);
    double *x = malloc(N * T * sizeof(double));
    const double zero[3] = {0}, lam[3] = {0.7, 12.0, 150.0};
    double c[3];
    (void)state;
    for (size_t n = 0; n < N; n++) c[n] = log(lam[n]);
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_A, zero, 3));
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_BIAS_C, c, 3));
    assert_ok(disrnn_model_generate(m, 0, NULL, N, T, NULL, 0, DISRNN_GEN_OBS_NOISE, 3, x, N, NULL, 0));
    for (size_t n = 0; n < N; n++) {
        double mean = 0, var = 0;
        for (size_t t = 0; t < T; t++) {
            const double v = x[n + t * N];
            assert_true(v >= 0.0 && v == floor(v));
            mean += v / (double)T;
        }
        for (size_t t = 0; t < T; t++) var += (x[n + t * N] - mean) * (x[n + t * N] - mean) / (double)T;
        assert_near(mean, lam[n], 5 * sqrt(lam[n] / (double)T));
        assert_near(var, lam[n], 0.06 * lam[n]);
    }
    free(x);
    disrnn_model_free(m);
}

/* Poisson pmf in the log domain, independent of the library. */
static double pois_logpmf(double k, double lam)
{
    double lf = 0.0;
    for (double i = 2.0; i <= k; i += 1.0) lf += log(i);
    return k * log(lam) - lam - lf;
}

static void test_poisson_sampler_exact(void **state)
{
    const double lams[8] = {0.05, 0.9, 4.0, 9.99, 10.0, 15.0, 37.5, 2000.0};
    const size_t n = 200000;
    double *v = malloc(n * sizeof(double));
    (void)state;
    for (int li = 0; li < 8; li++) {
        const double lam = lams[li];
        disrnn__rng r;
        double mean = 0.0, var = 0.0;
        disrnn__rng_seed(&r, (uint64_t)(100 + li));
        for (size_t i = 0; i < n; i++) {
            v[i] = disrnn__an_poisson(&r, lam);
            assert_true(v[i] >= 0.0 && v[i] == floor(v[i]));
            mean += v[i] / (double)n;
        }
        for (size_t i = 0; i < n; i++) var += (v[i] - mean) * (v[i] - mean) / (double)(n - 1);
        assert_near(mean, lam, 5.0 * sqrt(lam / (double)n));
        /* var of the sample variance: (mu4 - sigma^4 (n-3)/(n-1)) / n, mu4 = lam (1 + 3 lam) */
        assert_near(var, lam, 5.0 * sqrt((lam * (1.0 + 3.0 * lam) - lam * lam) / (double)n));
        /* chi-square goodness of fit against the pmf on cells with expectation >= 20 */
        {
            const size_t kmax = (size_t)(lam + 12.0 * sqrt(lam) + 20.0);
            double *cnt = calloc(kmax + 2, sizeof(double)), chi = 0.0, acc_o = 0.0, acc_e = 0.0;
            size_t df = 0;
            for (size_t i = 0; i < n; i++) cnt[v[i] > (double)kmax ? kmax + 1 : (size_t)v[i]] += 1.0;
            for (size_t k = 0; k <= kmax + 1; k++) {
                double e = k <= kmax ? (double)n * exp(pois_logpmf((double)k, lam)) : 0.0;
                if (k == kmax + 1) { /* the tail beyond kmax */
                    double head = 0.0;
                    for (size_t j = 0; j <= kmax; j++) head += exp(pois_logpmf((double)j, lam));
                    e = (double)n * fmax(0.0, 1.0 - head);
                }
                acc_o += cnt[k];
                acc_e += e;
                if (acc_e >= 20.0) {
                    chi += (acc_o - acc_e) * (acc_o - acc_e) / acc_e;
                    df++;
                    acc_o = acc_e = 0.0;
                }
            }
            if (acc_e > 0.0) chi += (acc_o - acc_e) * (acc_o - acc_e) / fmax(acc_e, 1.0);
            /* far beyond the 99.99% quantile for df cells, yet a wrong distribution lands far above */
            assert_true(df >= 1);
            assert_true(chi < (double)df + 8.0 * sqrt(2.0 * (double)df) + 10.0);
            free(cnt);
        }
    }
    {
        disrnn__rng r;
        disrnn__rng_seed(&r, 1);
        assert_true(disrnn__an_poisson(&r, 0.0) == 0.0);
        assert_true(disrnn__an_poisson(&r, -1.0) == 0.0);
        assert_true(disrnn__an_poisson(&r, 1e12) > 0.99e12); /* huge means stay finite and right */
    }
    free(v);
}

static void test_generate_bad_inputs(void **state)
{
    disrnn_model_t *m = make_model(3, 2, 1, NULL, 1, DISRNN_PAD_REPEAT, DISRNN_OBS_GAUSSIAN, 1);
    disrnn_model_t *p = make_model(2, 1, 0, NULL, 1, DISRNN_PAD_REPEAT, DISRNN_OBS_POISSON_EXP, 1);
    disrnn_config_t *c = NULL;
    disrnn_model_t *scott = NULL;
    double x[3 * 4] = {0}, z[2 * 4], u[4] = {0}, xi[3 * 2] = {0};
    const double big[2] = {800.0, 800.0};
    (void)state;
    assert_status(disrnn_model_generate(NULL, 0, NULL, 3, 4, u, 1, 0, 0, x, 3, z, 2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_generate(m, 0, NULL, 3, 4, u, 1, 4, 0, x, 3, z, 2), DISRNN_ERR_INVALID_ARG);
    assert_true(strlen(disrnn_model_last_error(m)) > 0);
    assert_status(disrnn_model_generate(m, 0, NULL, 3, 0, u, 1, 0, 0, x, 3, z, 2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_generate(m, 0, NULL, 3, 4, u, 1, 0, 0, NULL, 3, z, 2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_generate(m, 0, NULL, 3, 4, u, 1, 0, 0, x, 2, z, 2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_generate(m, 0, NULL, 3, 4, u, 1, 0, 0, x, 3, z, 1), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_generate(m, 2, NULL, 3, 4, u, 1, 0, 0, x, 3, z, 2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_generate(m, 2, xi, 2, 4, u, 1, 0, 0, x, 3, z, 2), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_generate(m, 0, NULL, 3, 4, NULL, 1, 0, 0, x, 3, z, 2), DISRNN_ERR_INVALID_ARG); /* P = 1 */
    assert_status(disrnn_model_generate(m, 0, NULL, 3, SIZE_MAX, u, 1, 0, 0, x, 3, z, 2), DISRNN_ERR_INVALID_ARG);
    xi[4] = NAN;
    assert_status(disrnn_model_generate(m, 2, xi, 3, 4, u, 1, 0, 0, x, 3, z, 2), DISRNN_ERR_NONFINITE);
    u[2] = INFINITY;
    assert_status(disrnn_model_generate(m, 0, NULL, 3, 4, u, 1, 0, 0, x, 3, z, 2), DISRNN_ERR_NONFINITE);
    assert_ok(disrnn_model_generate(m, 0, NULL, 3, 2, u, 1, 0, 0, x, 3, NULL, 0)); /* only the first 2 inputs read */
    /* exp link overflow */
    assert_ok(disrnn_model_set_param(p, DISRNN_BLOCK_BIAS_C, big, 2));
    assert_status(disrnn_model_generate(p, 0, NULL, 2, 2, NULL, 0, 0, 0, x, 2, NULL, 0), DISRNN_ERR_NONFINITE);
    /* latent noise needs s: Scott's rule without N_tot has none */
    assert_ok(disrnn_config_create(&c, 3, 2));
    assert_ok(disrnn_model_create(&scott, c));
    assert_status(disrnn_model_generate(scott, 0, NULL, 3, 2, NULL, 0, DISRNN_GEN_LATENT_NOISE, 0, x, 3, NULL, 0),
                  DISRNN_ERR_INVALID_ARG);
    assert_ok(disrnn_model_generate(scott, 0, NULL, 3, 2, NULL, 0, DISRNN_GEN_OBS_NOISE, 0, x, 3, NULL, 0));
    disrnn_model_free(scott);
    disrnn_config_free(c);
    disrnn_model_free(p);
    disrnn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generation_reproduces_predictions),
        cmocka_unit_test(test_generation_padding_at_start),
        cmocka_unit_test(test_kstep_r2),
        cmocka_unit_test(test_noise_distributions_and_seeds),
        cmocka_unit_test(test_poisson_observation_noise),
        cmocka_unit_test(test_poisson_sampler_exact),
        cmocka_unit_test(test_generate_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
