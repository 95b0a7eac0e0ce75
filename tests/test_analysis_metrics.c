/* Analysis metrics: posterior means and predictions against a hand-written forward pass,
 * reconstruction metrics against direct formulas, evaluation PC/TC on mixtures with known
 * structure, group- and component-aligned R^2, and matrix comparisons. */
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

/* ---------------------------------------------------------------------------------------- */
/* helpers */

typedef struct model_opts {
    size_t N, K, P, L;
    const size_t *groups;
    size_t G;
    const double *psi;
    int sigma, padding, obs, input_e, input_d;
    double kappa;
} model_opts;

static disrnn_model_t *make_model(const model_opts *o, uint64_t seed)
{
    disrnn_config_t *c = NULL;
    disrnn_model_t *m = NULL;
    assert_ok(disrnn_config_create(&c, o->N, o->K));
    if (o->groups) assert_ok(disrnn_config_set_groups(c, o->groups, o->G));
    if (o->psi) assert_ok(disrnn_config_set_kernel(c, o->psi, o->L));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_SIGMA, o->sigma));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_PADDING, o->padding));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_OBS, o->obs));
    if (o->P) {
        assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, (int64_t)o->P));
        assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_E, o->input_e));
        assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_D, o->input_d));
    }
    if (o->kappa > 0.0) assert_ok(disrnn_config_set_double(c, DISRNN_OPT_KAPPA, o->kappa));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_STD_MODE, DISRNN_STD_FIXED));
    assert_ok(disrnn_config_set_double(c, DISRNN_OPT_STD_VALUE, 0.2));
    assert_ok(disrnn_config_set_seed(c, seed));
    assert_ok(disrnn_model_create(&m, c));
    disrnn_config_free(c);
    return m;
}

static void get_block(const disrnn_model_t *m, int b, double *out, size_t cap)
{
    size_t r, c;
    assert_ok(disrnn_model_block_info(m, b, &r, &c, NULL, NULL));
    assert_true(r * c <= cap);
    if (r * c > 0) assert_ok(disrnn_model_get_param(m, b, out, r * c));
}

static double sig(int s, double v) { return s == DISRNN_SIGMA_TANH ? tanh(v) : s == DISRNN_SIGMA_RELU ? (v > 0 ? v : 0) : v; }

static double link_mean(int obs, double e)
{
    switch (obs) {
    case DISRNN_OBS_GAUSSIAN_RELU: return e > 0 ? e : 0;
    case DISRNN_OBS_POISSON_SOFTPLUS: return log1p(exp(e));
    case DISRNN_OBS_POISSON_EXP: return exp(e);
    default: return e;
    }
}

/* Hand-written encoder mean for bin t of a trial x (N x T), u (P x T). */
static void manual_mu(const model_opts *o, const double *B, const double *d, const double *D, const double *x,
                      const double *u, size_t t, double *mu)
{
    const double kap = o->kappa > 0 ? o->kappa : 1.0;
    for (size_t k = 0; k < o->K; k++) {
        double v = d[k];
        for (size_t l = 1; l <= o->L; l++) {
            const double w = o->psi ? o->psi[l - 1] : 1.0;
            for (size_t n = 0; n < o->N; n++) {
                double xp;
                if (t >= l) xp = x[n + (t - l) * o->N];
                else if (o->padding == DISRNN_PAD_REPEAT) xp = x[n];
                else xp = 0.0;
                v += B[k + n * o->K] * w * sig(o->sigma, xp / kap);
            }
        }
        if (D)
            for (size_t p = 0; p < o->P; p++) v += D[k + p * o->K] * u[p + t * o->P];
        mu[k] = v;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* latents and predictions */

static void test_latents_and_predictions_match_manual(void **state)
{
    const double psi[2] = {0.7, 0.3};
    const size_t groups[2] = {1, 2};
    const int pads[3] = {DISRNN_PAD_REPEAT, DISRNN_PAD_ZERO, DISRNN_PAD_DROP};
    (void)state;
    for (int pi = 0; pi < 3; pi++)
        for (int obs = 0; obs < 4; obs++) {
            model_opts o = {4, 3, 2, 2, groups, 2, psi, DISRNN_SIGMA_TANH, pads[pi], obs, DISRNN_INPUT_LEARNED,
                            DISRNN_INPUT_LEARNED, 2.0};
            disrnn_model_t *m = make_model(&o, 11 + (uint64_t)obs);
            disrnn_dataset_t *ds = NULL;
            const size_t T[2] = {5, 7};
            double x[2][4 * 7], u[2][2 * 7], A[12], B[12], c[4], d[3], D[6], E[8], mu[3 * 12], xh[4 * 12], want[3];
            uint64_t rs = 99;
            size_t S, col = 0;
            const int counts = obs >= DISRNN_OBS_POISSON_SOFTPLUS;
            assert_ok(disrnn_dataset_create(&ds, 4, 2, counts ? DISRNN_DATA_COUNTS : DISRNN_DATA_CONTINUOUS));
            for (int r = 0; r < 2; r++) {
                test_uniform(&rs, x[r], 4 * T[r], counts ? 0.0 : -2.0, 3.0);
                if (counts)
                    for (size_t i = 0; i < 4 * T[r]; i++) x[r][i] = floor(x[r][i] + 0.5);
                test_uniform(&rs, u[r], 2 * T[r], -1.0, 1.0);
                assert_ok(disrnn_dataset_add_trial(ds, T[r], x[r], 4, u[r], 2, NULL, 0));
            }
            get_block(m, DISRNN_BLOCK_A, A, 12);
            get_block(m, DISRNN_BLOCK_B, B, 12);
            get_block(m, DISRNN_BLOCK_BIAS_C, c, 4);
            get_block(m, DISRNN_BLOCK_BIAS_D, d, 3);
            get_block(m, DISRNN_BLOCK_D, D, 6);
            get_block(m, DISRNN_BLOCK_E, E, 8);
            S = disrnn_dataset_num_samples(ds, m);
            assert_int_equal(S, pads[pi] == DISRNN_PAD_DROP ? 12 - 4 : 12);
            assert_ok(disrnn_model_latents(m, ds, mu, 3, S));
            assert_ok(disrnn_model_predict(m, ds, xh, 4, S));
            for (int r = 0; r < 2; r++)
                for (size_t t = pads[pi] == DISRNN_PAD_DROP ? 2 : 0; t < T[r]; t++, col++) {
                    manual_mu(&o, B, d, D, x[r], u[r], t, want);
                    for (size_t k = 0; k < 3; k++) assert_near(mu[k + col * 3], want[k], 1e-12);
                    for (size_t n = 0; n < 4; n++) {
                        double e = c[n];
                        for (size_t k = 0; k < 3; k++) e += A[n + k * 4] * want[k];
                        for (size_t p = 0; p < 2; p++) e += E[n + p * 4] * u[r][p + t * 2];
                        assert_near(xh[n + col * 4], link_mean(obs, e), 1e-12 * (1.0 + fabs(link_mean(obs, e))));
                    }
                }
            assert_int_equal(col, S);
            disrnn_dataset_free(ds);
            disrnn_model_free(m);
        }
}

static void test_latents_bad_inputs(void **state)
{
    model_opts o = {3, 2, 0, 1, NULL, 0, NULL, DISRNN_SIGMA_TANH, DISRNN_PAD_REPEAT, DISRNN_OBS_GAUSSIAN, 0, 0, 0.0};
    disrnn_model_t *m = make_model(&o, 1);
    disrnn_dataset_t *ds = NULL, *wrong = NULL, *empty = NULL;
    double x[3 * 6] = {0}, mu[2 * 6], xh[3 * 6], met[4];
    (void)state;
    assert_ok(disrnn_dataset_create(&ds, 3, 0, DISRNN_DATA_CONTINUOUS));
    assert_ok(disrnn_dataset_add_trial(ds, 6, x, 3, NULL, 0, NULL, 0));
    assert_ok(disrnn_dataset_create(&wrong, 4, 0, DISRNN_DATA_CONTINUOUS));
    assert_ok(disrnn_dataset_add_trial(wrong, 4, x, 4, NULL, 0, NULL, 0));
    assert_ok(disrnn_dataset_create(&empty, 3, 0, DISRNN_DATA_CONTINUOUS));

    assert_status(disrnn_model_latents(NULL, ds, mu, 2, 6), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_latents(m, NULL, mu, 2, 6), DISRNN_ERR_INVALID_ARG);
    assert_true(strlen(disrnn_model_last_error(m)) > 0);
    assert_status(disrnn_model_latents(m, ds, NULL, 2, 6), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_latents(m, ds, mu, 1, 6), DISRNN_ERR_INVALID_ARG);
    mu[0] = 12345.0;
    assert_status(disrnn_model_latents(m, ds, mu, 2, 5), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_true(mu[0] == 12345.0); /* nothing written */
    assert_non_null(strstr(disrnn_model_last_error(m), "6 samples"));
    assert_status(disrnn_model_latents(m, wrong, mu, 2, 6), DISRNN_ERR_INVALID_ARG);
    assert_ok(disrnn_model_latents(m, empty, mu, 2, 0)); /* no samples: nothing to write */

    assert_status(disrnn_model_predict(m, ds, xh, 2, 6), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_predict(m, ds, xh, 3, 2), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_status(disrnn_model_predict(m, ds, NULL, 3, 6), DISRNN_ERR_INVALID_ARG);

    assert_status(disrnn_model_evaluate(m, ds, met, 3), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_status(disrnn_model_evaluate(m, ds, NULL, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_evaluate(m, empty, met, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_evaluate(m, wrong, met, 4), DISRNN_ERR_INVALID_ARG);
    assert_int_equal(disrnn_num_metrics(), DISRNN_METRIC_MSE + 1);
    disrnn_dataset_free(empty);
    disrnn_dataset_free(wrong);
    disrnn_dataset_free(ds);
    disrnn_model_free(m);
}

static void test_allocation_failures(void **state)
{
    /* every allocation of latents, predict, evaluate and eval_pc may fail: NOMEM, no leak */
    disrnn_config_t *c = NULL;
    disrnn_model_t *m = NULL;
    disrnn_dataset_t *ds = NULL;
    test_chaos chaos = {-1, 0, 0};
    double x[3 * 8], out[3 * 8], pc;
    uint64_t rs = 3;
    (void)state;
    assert_ok(disrnn_config_create(&c, 3, 2));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_STD_MODE, DISRNN_STD_FIXED));
    assert_ok(disrnn_model_create_with_allocator(&m, c, test_chaos_alloc, test_chaos_free, &chaos));
    test_uniform(&rs, x, 24, -1, 1);
    assert_ok(disrnn_dataset_create(&ds, 3, 0, DISRNN_DATA_CONTINUOUS));
    assert_ok(disrnn_dataset_add_trial(ds, 8, x, 3, NULL, 0, NULL, 0));
    for (int f = 0; f < 4; f++) {
        int reached_ok = 0;
        for (long k = 0; k < 40 && !reached_ok; k++) {
            const long live = chaos.live;
            int rc;
            chaos.fail_at = k;
            chaos.count = 0;
            switch (f) {
            case 0: rc = disrnn_model_latents(m, ds, out, 2, 8); break;
            case 1: rc = disrnn_model_predict(m, ds, out, 3, 8); break;
            case 2: rc = disrnn_model_evaluate(m, ds, out, 4); break;
            default: rc = disrnn_model_eval_pc(m, ds, 2, 1, &pc, NULL); break;
            }
            assert_true(rc == DISRNN_OK || rc == DISRNN_ERR_NOMEM);
            assert_int_equal(chaos.live, live);
            reached_ok = rc == DISRNN_OK;
        }
        assert_true(reached_ok);
    }
    chaos.fail_at = -1;
    disrnn_dataset_free(ds);
    disrnn_model_free(m);
    disrnn_config_free(c);
    assert_int_equal(chaos.live, 0);
}

/* ---------------------------------------------------------------------------------------- */
/* reconstruction metrics */

static void test_evaluate_gaussian_matches_formulas(void **state)
{
    model_opts o = {4, 2, 0, 1, NULL, 0, NULL, DISRNN_SIGMA_TANH, DISRNN_PAD_REPEAT, DISRNN_OBS_GAUSSIAN, 0, 0, 0.0};
    disrnn_model_t *m = make_model(&o, 5);
    disrnn_dataset_t *ds = NULL;
    double x[4 * 30], xh[4 * 30], rho[4] = {-0.5, 0.1, 0.3, -1.0}, met[4];
    uint8_t mask[4 * 30];
    uint64_t rs = 17;
    (void)state;
    test_uniform(&rs, x, 120, -1.0, 2.0);
    for (int i = 0; i < 120; i++) mask[i] = (uint8_t)(i % 7 != 3);
    for (int t = 0; t < 30; t++) mask[3 + t * 4] = 1; /* channel 3 fully observed */
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_RHO, rho, 4));
    assert_ok(disrnn_dataset_create(&ds, 4, 0, DISRNN_DATA_CONTINUOUS));
    assert_ok(disrnn_dataset_add_trial(ds, 30, x, 4, NULL, 0, mask, 4));
    assert_ok(disrnn_model_predict(m, ds, xh, 4, 30));
    assert_ok(disrnn_model_evaluate(m, ds, met, 4));
    {
        double r2 = 0.0, ll = 0.0, sse_all = 0.0;
        size_t nobs = 0;
        for (size_t n = 0; n < 4; n++) {
            double mean = 0.0, cnt = 0.0, sst = 0.0, sse = 0.0;
            for (size_t t = 0; t < 30; t++)
                if (mask[n + t * 4]) {
                    mean += x[n + t * 4];
                    cnt += 1.0;
                }
            mean /= cnt;
            for (size_t t = 0; t < 30; t++)
                if (mask[n + t * 4]) {
                    const double e = x[n + t * 4] - xh[n + t * 4];
                    sst += (x[n + t * 4] - mean) * (x[n + t * 4] - mean);
                    sse += e * e;
                    ll += -0.5 * log(2.0 * 3.14159265358979323846) - rho[n] - 0.5 * e * e / exp(2.0 * rho[n]);
                    nobs++;
                }
            r2 += 1.0 - sse / sst;
            sse_all += sse;
        }
        assert_near(met[DISRNN_METRIC_R2], r2 / 4.0, 1e-12);
        assert_near(met[DISRNN_METRIC_LOGLIK], ll / 30.0, 1e-10);
        assert_near(met[DISRNN_METRIC_MSE], sse_all / (double)nobs, 1e-12);
        assert_true(isnan(met[DISRNN_METRIC_BITS_PER_SPIKE]));
    }
    disrnn_dataset_free(ds);
    disrnn_model_free(m);
}

static double log_fact(double k)
{
    double s = 0.0;
    for (double i = 2.0; i <= k; i += 1.0) s += log(i);
    return s;
}

static void test_evaluate_poisson_bits_per_spike(void **state)
{
    const size_t N = 5, T = 60;
    double x[5 * 60], xh[5 * 60], met[4], mean[5] = {0}, zero[5 * 2] = {0}, c[5];
    uint64_t rs = 23;
    (void)state;
    test_uniform(&rs, x, N * T, 0.0, 6.0);
    for (size_t i = 0; i < N * T; i++) x[i] = floor(x[i]);
    for (size_t t = 0; t < T; t++) x[4 + t * N] = 0.0; /* a silent channel: null rate floored at 1e-9 */
    for (size_t t = 0; t < T; t++)
        for (size_t n = 0; n < N; n++) mean[n] += x[n + t * N] / (double)T;
    for (int obs = DISRNN_OBS_POISSON_SOFTPLUS; obs <= DISRNN_OBS_POISSON_EXP; obs++) {
        model_opts o = {5, 2, 0, 1, NULL, 0, NULL, DISRNN_SIGMA_TANH, DISRNN_PAD_ZERO, obs, 0, 0, 4.0};
        disrnn_model_t *m = make_model(&o, 7);
        disrnn_dataset_t *ds = NULL;
        assert_ok(disrnn_dataset_create(&ds, N, 0, DISRNN_DATA_COUNTS));
        assert_ok(disrnn_dataset_add_trial(ds, T, x, N, NULL, 0, NULL, 0));

        /* a random model: bits per spike and log-likelihood from the formulas */
        assert_ok(disrnn_model_predict(m, ds, xh, N, T));
        assert_ok(disrnn_model_evaluate(m, ds, met, 4));
        {
            double llm = 0.0, lln = 0.0, ll = 0.0, spikes = 0.0;
            for (size_t t = 0; t < T; t++)
                for (size_t n = 0; n < N; n++) {
                    const double k = x[n + t * N], lam = xh[n + t * N];
                    const double lf = lam < 1e-9 ? 1e-9 : lam, ln = mean[n] < 1e-9 ? 1e-9 : mean[n];
                    ll += k * log(lam) - lam - log_fact(k);
                    llm += k * log(lf) - lf - log_fact(k);
                    lln += k * log(ln) - ln - log_fact(k);
                    spikes += k;
                }
            assert_near(met[DISRNN_METRIC_LOGLIK], ll / (double)T, 1e-9);
            assert_near(met[DISRNN_METRIC_BITS_PER_SPIKE], (llm - lln) / (spikes * log(2.0)), 1e-10);
        }
        /* rates equal to the per-channel mean: bits per spike 0 */
        assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_A, zero, 10));
        for (size_t n = 0; n < N; n++) {
            const double r = mean[n] > 0 ? mean[n] : 1e-12;
            c[n] = obs == DISRNN_OBS_POISSON_EXP ? log(r) : log(expm1(r));
        }
        assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_BIAS_C, c, N));
        assert_ok(disrnn_model_evaluate(m, ds, met, 4));
        assert_near(met[DISRNN_METRIC_BITS_PER_SPIKE], 0.0, 1e-10);
        assert_near(met[DISRNN_METRIC_R2], 0.0, 1e-10); /* the mean predicts nothing */
        disrnn_dataset_free(ds);
        disrnn_model_free(m);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* evaluation PC and TC */

static void test_mixture_pc_structure(void **state)
{
    const size_t n = 1500, K = 4, groups[2] = {2, 2}, single[1] = {4};
    const double s[4] = {0.4, 0.4, 0.4, 0.4};
    double *mu = malloc(n * K * sizeof(double)), pc_ind, tc_ind, pc_dup, tc_dup, pc1, tc1, pc_cor, tc_cor;
    uint64_t rs = 31;
    (void)state;
    assert_non_null(mu);
    /* independent groups, independent dimensions: PC and TC near 0 */
    test_normal(&rs, mu, n * K);
    assert_ok(disrnn_mixture_pc(K, groups, 2, n, mu, K, s, 2, 5, &pc_ind, &tc_ind));
    assert_true(fabs(pc_ind) < 0.1);
    assert_true(fabs(tc_ind) < 0.2);
    /* one group: PC is exactly 0 */
    assert_ok(disrnn_mixture_pc(K, single, 1, n, mu, K, s, 2, 5, &pc1, &tc1));
    assert_true(pc1 == 0.0);
    assert_near(tc1, tc_ind, 1e-12); /* TC does not depend on the groups, same draws */
    /* within-group correlation: TC well above PC, PC still near 0 */
    for (size_t i = 0; i < n; i++) {
        mu[1 + i * K] = 0.95 * mu[0 + i * K] + 0.3 * mu[1 + i * K];
        mu[3 + i * K] = 0.95 * mu[2 + i * K] + 0.3 * mu[3 + i * K];
    }
    assert_ok(disrnn_mixture_pc(K, groups, 2, n, mu, K, s, 2, 5, &pc_cor, &tc_cor));
    assert_true(fabs(pc_cor) < 0.1);
    assert_true(tc_cor > pc_cor + 0.3);
    /* the second group duplicates the first: PC large (the mutual information of two noisy
     * copies, 2 x -0.5 log(1 - (1 / (1 + s^2))^2) = 1.36 nats here), TC >= PC */
    test_normal(&rs, mu, n * K);
    for (size_t i = 0; i < n; i++) {
        mu[2 + i * K] = mu[0 + i * K];
        mu[3 + i * K] = mu[1 + i * K];
    }
    assert_ok(disrnn_mixture_pc(K, groups, 2, n, mu, K, s, 2, 5, &pc_dup, &tc_dup));
    assert_true(pc_dup > 1.0);
    assert_true(tc_dup >= pc_dup);
    free(mu);
}

static void test_mixture_pc_gaussian_reference(void **state)
{
    /* Points from a 2-D Gaussian with correlation r, s small against the spread: the mixture is
     * close to the Gaussian N(0, Sigma + s^2 I), whose TC is -0.5 log(1 - r_eff^2). With n large
     * the estimate approaches it (the kernel estimate's bias is of order s^2 and 1/(n s^2)). */
    const size_t n = 3000, groups[2] = {1, 1};
    const double r = 0.8, s[2] = {0.25, 0.25};
    double *mu = malloc(2 * n * sizeof(double)), pc, tc, e[2];
    uint64_t rs = 77;
    (void)state;
    assert_non_null(mu);
    for (size_t i = 0; i < n; i++) {
        test_normal(&rs, e, 2);
        mu[2 * i] = e[0];
        mu[2 * i + 1] = r * e[0] + sqrt(1 - r * r) * e[1];
    }
    assert_ok(disrnn_mixture_pc(2, groups, 2, n, mu, 2, s, 1, 9, &pc, &tc));
    {
        const double v = 1.0 + s[0] * s[0], reff = r / v, want = -0.5 * log(1.0 - reff * reff);
        assert_true(fabs(pc - want) < 0.08);
        assert_near(pc, tc, 1e-12); /* every group a single dimension: PC = TC */
    }
    free(mu);
}

static void test_mixture_pc_fast_path_equals_log_domain(void **state)
{
    const size_t n = 700, K = 5, gs[3] = {0, 2, 5};
    double mu[5 * 700], s[5] = {0.3, 0.5, 0.2, 1.0, 0.7}, pcf, tcf, pcl, tcl;
    uint64_t rs = 41;
    (void)state;
    test_normal(&rs, mu, n * K);
    for (size_t i = 0; i < n; i++) mu[3 + i * K] += 0.7 * mu[4 + i * K];
    for (size_t i = 0; i < n * K; i++) mu[i] *= 3.0; /* spread: many far, underflowing terms */
    assert_ok(disrnn__an_mixture_pc(disrnn__default_allocator(), K, gs, 2, n, mu, K, s, 3, 8, 0, &pcf, &tcf));
    assert_ok(disrnn__an_mixture_pc(disrnn__default_allocator(), K, gs, 2, n, mu, K, s, 3, 8, 1, &pcl, &tcl));
    assert_near(pcf, pcl, 1e-11 * (1.0 + fabs(pcl)));
    assert_near(tcf, tcl, 1e-11 * (1.0 + fabs(tcl)));
    assert_true(tcl >= pcl);
}

static void test_mixture_pc_reproducible(void **state)
{
    const size_t n = 300, K = 3, groups[2] = {1, 2};
    double mu[3 * 300], s[3] = {0.3, 0.3, 0.3}, a, b, c, ta, tb;
    uint64_t rs = 5;
    (void)state;
    test_normal(&rs, mu, n * K);
    assert_ok(disrnn_mixture_pc(K, groups, 2, n, mu, K, s, 4, 123, &a, &ta));
    assert_ok(disrnn_mixture_pc(K, groups, 2, n, mu, K, s, 4, 123, &b, &tb));
    assert_memory_equal(&a, &b, sizeof a);
    assert_memory_equal(&ta, &tb, sizeof ta);
    assert_ok(disrnn_mixture_pc(K, groups, 2, n, mu, K, s, 4, 124, &c, NULL));
    assert_true(c != a);
    assert_ok(disrnn_mixture_pc(K, groups, 2, n, mu, K, s, 4, 123, NULL, &tb)); /* either output optional */
    assert_memory_equal(&ta, &tb, sizeof ta);
    /* one point: the mixture is that one Gaussian, PC = TC = 0 */
    assert_ok(disrnn_mixture_pc(K, groups, 2, 1, mu, K, s, 3, 1, &a, &ta));
    assert_near(a, 0.0, 1e-12);
    assert_near(ta, 0.0, 1e-12);
}

static void test_mixture_pc_bad_inputs(void **state)
{
    const size_t g2[2] = {1, 2}, bad_sum[2] = {1, 1}, zero[2] = {0, 3};
    double mu[3 * 4] = {0}, s[3] = {0.3, 0.3, 0.3}, pc;
    (void)state;
    assert_status(disrnn_mixture_pc(0, g2, 2, 4, mu, 3, s, 1, 0, &pc, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_mixture_pc(3, NULL, 2, 4, mu, 3, s, 1, 0, &pc, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_mixture_pc(3, g2, 0, 4, mu, 3, s, 1, 0, &pc, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_mixture_pc(3, bad_sum, 2, 4, mu, 3, s, 1, 0, &pc, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_mixture_pc(3, zero, 2, 4, mu, 3, s, 1, 0, &pc, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_mixture_pc(3, g2, 2, 0, mu, 3, s, 1, 0, &pc, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_mixture_pc(3, g2, 2, 4, NULL, 3, s, 1, 0, &pc, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_mixture_pc(3, g2, 2, 4, mu, 2, s, 1, 0, &pc, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_mixture_pc(3, g2, 2, 4, mu, 3, NULL, 1, 0, &pc, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_mixture_pc(3, g2, 2, 4, mu, 3, s, 0, 0, &pc, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_mixture_pc(3, g2, 2, SIZE_MAX, mu, 3, s, 1, 0, &pc, NULL), DISRNN_ERR_INVALID_ARG);
    s[1] = 0.0;
    assert_status(disrnn_mixture_pc(3, g2, 2, 4, mu, 3, s, 1, 0, &pc, NULL), DISRNN_ERR_INVALID_ARG);
    s[1] = NAN;
    assert_status(disrnn_mixture_pc(3, g2, 2, 4, mu, 3, s, 1, 0, &pc, NULL), DISRNN_ERR_INVALID_ARG);
    s[1] = 0.3;
    mu[5] = NAN;
    assert_status(disrnn_mixture_pc(3, g2, 2, 4, mu, 3, s, 1, 0, &pc, NULL), DISRNN_ERR_INVALID_ARG);
}

static void test_model_eval_pc(void **state)
{
    const size_t groups[2] = {1, 1};
    model_opts o = {3, 2, 0, 1, groups, 2, NULL, DISRNN_SIGMA_TANH, DISRNN_PAD_REPEAT, DISRNN_OBS_GAUSSIAN, 0, 0, 0.0};
    disrnn_model_t *m = make_model(&o, 9);
    disrnn_dataset_t *ds = NULL, *empty = NULL;
    disrnn_config_t *c = NULL;
    disrnn_model_t *scott = NULL;
    double x[3 * 40], mu[2 * 40], s[2], pc, tc, pc2, tc2;
    uint64_t rs = 8;
    (void)state;
    test_uniform(&rs, x, 120, -2.0, 2.0);
    assert_ok(disrnn_dataset_create(&ds, 3, 0, DISRNN_DATA_CONTINUOUS));
    assert_ok(disrnn_dataset_add_trial(ds, 40, x, 3, NULL, 0, NULL, 0));
    assert_ok(disrnn_model_eval_pc(m, ds, 3, 77, &pc, &tc));
    /* the same as the mixture of the posterior means with the model's s and groups */
    assert_ok(disrnn_model_latents(m, ds, mu, 2, 40));
    s[0] = s[1] = 0.2;
    assert_ok(disrnn_mixture_pc(2, groups, 2, 40, mu, 2, s, 3, 77, &pc2, &tc2));
    assert_memory_equal(&pc, &pc2, sizeof pc);
    assert_memory_equal(&tc, &tc2, sizeof tc);
    assert_status(disrnn_model_eval_pc(NULL, ds, 3, 1, &pc, &tc), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_eval_pc(m, NULL, 3, 1, &pc, &tc), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_eval_pc(m, ds, 0, 1, &pc, &tc), DISRNN_ERR_INVALID_ARG);
    assert_ok(disrnn_dataset_create(&empty, 3, 0, DISRNN_DATA_CONTINUOUS));
    assert_status(disrnn_model_eval_pc(m, empty, 1, 1, &pc, &tc), DISRNN_ERR_INVALID_ARG);
    /* Scott's rule without N_tot: no encoder std yet */
    assert_ok(disrnn_config_create(&c, 3, 2));
    assert_ok(disrnn_model_create(&scott, c));
    assert_status(disrnn_model_eval_pc(scott, ds, 1, 1, &pc, &tc), DISRNN_ERR_INVALID_ARG);
    assert_non_null(strstr(disrnn_model_last_error(scott), "N_TOT"));
    assert_ok(disrnn_model_set_double(scott, DISRNN_OPT_N_TOT, 40.0));
    assert_ok(disrnn_model_eval_pc(scott, ds, 1, 1, &pc, &tc));
    disrnn_model_free(scott);
    disrnn_config_free(c);
    disrnn_dataset_free(empty);
    disrnn_dataset_free(ds);
    disrnn_model_free(m);
}

/* ---------------------------------------------------------------------------------------- */
/* alignment */

/* Solve the p x p system M c = r (Gaussian elimination with partial pivoting, M overwritten). */
static void solve_small(size_t p, double *M, double *r)
{
    for (size_t i = 0; i < p; i++) {
        size_t piv = i;
        for (size_t k = i + 1; k < p; k++)
            if (fabs(M[k * p + i]) > fabs(M[piv * p + i])) piv = k;
        for (size_t j = 0; j < p; j++) {
            const double t = M[i * p + j];
            M[i * p + j] = M[piv * p + j];
            M[piv * p + j] = t;
        }
        {
            const double t = r[i];
            r[i] = r[piv];
            r[piv] = t;
        }
        for (size_t k = i + 1; k < p; k++) {
            const double f = M[k * p + i] / M[i * p + i];
            for (size_t j = i; j < p; j++) M[k * p + j] -= f * M[i * p + j];
            r[k] -= f * r[i];
        }
    }
    for (size_t i = p; i-- > 0;) {
        for (size_t j = i + 1; j < p; j++) r[i] -= M[i * p + j] * r[j];
        r[i] /= M[i * p + i];
    }
}

/* R^2 of the affine least-squares map from rows f0..f0+p-1 of fit to row a of ref (normal
 * equations with an explicit constant, independent of the library's QR). */
static double pair_r2_dim(size_t n, const double *ref, size_t Kr, size_t a, const double *fit, size_t Kf, size_t f0,
                          size_t p)
{
    double M[16] = {0}, rhs[4] = {0}, mean = 0.0, sst = 0.0, sse = 0.0;
    const size_t q = p + 1;
    for (size_t i = 0; i < n; i++) {
        double xrow[4];
        for (size_t j = 0; j < p; j++) xrow[j] = fit[f0 + j + i * Kf];
        xrow[p] = 1.0;
        for (size_t j = 0; j < q; j++) {
            rhs[j] += xrow[j] * ref[a + i * Kr];
            for (size_t k = 0; k < q; k++) M[j * q + k] += xrow[j] * xrow[k];
        }
        mean += ref[a + i * Kr] / (double)n;
    }
    solve_small(q, M, rhs);
    for (size_t i = 0; i < n; i++) {
        double pred = rhs[p];
        for (size_t j = 0; j < p; j++) pred += rhs[j] * fit[f0 + j + i * Kf];
        sse += (ref[a + i * Kr] - pred) * (ref[a + i * Kr] - pred);
        sst += (ref[a + i * Kr] - mean) * (ref[a + i * Kr] - mean);
    }
    return 1.0 - sse / sst;
}

static void test_align_affine_permuted_copy(void **state)
{
    const size_t n = 400, Kr = 6, rg[2] = {3, 3}, fg[3] = {2, 3, 3}, Kf = 8;
    double *ref = malloc(n * Kr * sizeof(double)), *fit = malloc(n * Kf * sizeof(double));
    double *al = malloc(n * Kr * sizeof(double)), M1[9], M2[9], off[6], r2, mat[6];
    size_t asg[2];
    uint64_t rs = 4;
    (void)state;
    test_normal(&rs, ref, n * Kr);
    test_normal(&rs, fit, n * Kf); /* fitted group 0 (2 dims) stays noise */
    test_uniform(&rs, M1, 9, -1, 1);
    test_uniform(&rs, M2, 9, -1, 1);
    M1[0] += 2.0, M1[4] += 2.0, M1[8] += 2.0; /* well conditioned */
    M2[0] -= 2.0, M2[4] += 2.0, M2[8] -= 2.0;
    test_uniform(&rs, off, 6, -5, 5);
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < 3; r++) {
            double a = off[r], b = off[3 + r];
            for (size_t c = 0; c < 3; c++) {
                a += M1[r + c * 3] * ref[3 + c + i * Kr]; /* fitted group 1 <- reference group 1 */
                b += M2[r + c * 3] * ref[c + i * Kr];     /* fitted group 2 <- reference group 0 */
            }
            fit[2 + r + i * Kf] = a;
            fit[5 + r + i * Kf] = b;
        }
    assert_ok(disrnn_align_r2(n, ref, Kr, rg, 2, fit, Kf, fg, 3, &r2, mat, asg, al, Kr));
    assert_near(r2, 1.0, 1e-10);
    assert_int_equal(asg[0], 2);
    assert_int_equal(asg[1], 1);
    assert_near(mat[0 + 2 * 2], 1.0, 1e-10);
    assert_near(mat[1 + 1 * 2], 1.0, 1e-10);
    assert_true(mat[0 + 0 * 2] < 0.1 && mat[1 + 2 * 2] < 0.1); /* unrelated pairs */
    for (size_t i = 0; i < n * Kr; i++) assert_near(al[i], ref[i], 1e-9);
    /* the pair R^2 values match an independent normal-equations fit (per dimension, averaged) */
    for (size_t a = 0; a < 2; a++)
        for (size_t b = 0; b < 3; b++) {
            const size_t f0 = b == 0 ? 0 : (b == 1 ? 2 : 5);
            double want = 0.0;
            for (size_t h = 0; h < 3; h++) want += pair_r2_dim(n, ref, Kr, 3 * a + h, fit, Kf, f0, fg[b]) / 3.0;
            assert_near(mat[a + b * 2], want, 1e-9);
        }
    free(al);
    free(fit);
    free(ref);
}

static void test_align_components_and_noise(void **state)
{
    const size_t n = 300, K = 4, ones[4] = {1, 1, 1, 1};
    double ref[4 * 300], fit[4 * 300], noise[4 * 300], r2, mat[16], al[4 * 300];
    size_t asg[4];
    const size_t perm[4] = {2, 0, 3, 1};
    uint64_t rs = 12;
    (void)state;
    test_normal(&rs, ref, n * K);
    test_normal(&rs, noise, n * K);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < K; k++) fit[perm[k] + i * K] = -3.0 * ref[k + i * K] + 1.5 + 0.5 * (double)k;
    assert_ok(disrnn_align_r2(n, ref, K, ones, 4, fit, K, ones, 4, &r2, mat, asg, al, K));
    assert_near(r2, 1.0, 1e-10);
    for (size_t k = 0; k < K; k++) assert_int_equal(asg[k], perm[k]);
    for (size_t i = 0; i < n * K; i++) assert_near(al[i], ref[i], 1e-9);
    /* with noise of known size the aligned R^2 is the mean of the pair R^2s of the matching */
    for (size_t i = 0; i < n * K; i++) fit[i] += 0.5 * (double)(1 + i % K) * noise[i];
    assert_ok(disrnn_align_r2(n, ref, K, ones, 4, fit, K, ones, 4, &r2, mat, asg, NULL, 0));
    {
        double want = 0.0;
        for (size_t k = 0; k < K; k++) {
            assert_int_equal(asg[k], perm[k]);
            assert_near(mat[k + asg[k] * 4], pair_r2_dim(n, ref, K, k, fit, K, asg[k], 1), 1e-10);
            want += mat[k + asg[k] * 4] / 4.0;
        }
        assert_near(r2, want, 1e-14);
        assert_true(r2 < 0.99 && r2 > 0.3);
    }
}

static void test_align_constant_fitted_dimension(void **state)
{
    /* a collapsed (constant) fitted latent: the fit equals the one without that dimension */
    const size_t n = 200, rg[1] = {2}, fg3[1] = {3}, fg2[1] = {2};
    double ref[2 * 200], fit3[3 * 200], fit2[2 * 200], r2a, r2b, ma, mb;
    uint64_t rs = 8;
    (void)state;
    test_normal(&rs, ref, 2 * n);
    test_normal(&rs, fit2, 2 * n);
    for (size_t i = 0; i < n; i++) {
        fit2[i * 2] += ref[i * 2];
        fit3[i * 3] = fit2[i * 2];
        fit3[i * 3 + 1] = 0.1; /* constant */
        fit3[i * 3 + 2] = fit2[i * 2 + 1];
    }
    assert_ok(disrnn_align_r2(n, ref, 2, rg, 1, fit3, 3, fg3, 1, &r2a, &ma, NULL, NULL, 0));
    assert_ok(disrnn_align_r2(n, ref, 2, rg, 1, fit2, 2, fg2, 1, &r2b, &mb, NULL, NULL, 0));
    assert_near(r2a, r2b, 1e-10);
    assert_near(ma, mb, 1e-10);
}

static void test_align_bad_inputs(void **state)
{
    const size_t g2[2] = {1, 1}, g1[1] = {2}, g0[2] = {0, 2}, g3[3] = {1, 1, 1};
    double ref[2 * 10], fit[3 * 10], r2, al[2 * 10];
    uint64_t rs = 1;
    (void)state;
    test_normal(&rs, ref, 20);
    test_normal(&rs, fit, 30);
    assert_status(disrnn_align_r2(10, ref, 2, g2, 2, fit, 2, g1, 1, &r2, NULL, NULL, NULL, 0), DISRNN_ERR_INVALID_ARG); /* G_ref > G_fit */
    assert_status(disrnn_align_r2(10, NULL, 2, g2, 2, fit, 3, g3, 3, &r2, NULL, NULL, NULL, 0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_align_r2(10, ref, 2, g2, 2, NULL, 3, g3, 3, &r2, NULL, NULL, NULL, 0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_align_r2(10, ref, 2, NULL, 2, fit, 3, g3, 3, &r2, NULL, NULL, NULL, 0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_align_r2(10, ref, 2, g0, 2, fit, 3, g3, 3, &r2, NULL, NULL, NULL, 0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_align_r2(10, ref, 1, g2, 2, fit, 3, g3, 3, &r2, NULL, NULL, NULL, 0), DISRNN_ERR_INVALID_ARG); /* ld < K */
    assert_status(disrnn_align_r2(10, ref, 2, g2, 2, fit, 3, g3, 3, &r2, NULL, NULL, al, 1), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_align_r2(1, ref, 2, g2, 2, fit, 3, g3, 3, &r2, NULL, NULL, NULL, 0), DISRNN_ERR_INVALID_ARG); /* n too small */
    assert_status(disrnn_align_r2(2, ref, 2, g1, 1, fit, 3, g3, 3, &r2, NULL, NULL, NULL, 0), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_align_r2(0, ref, 2, g2, 2, fit, 3, g3, 3, &r2, NULL, NULL, NULL, 0), DISRNN_ERR_INVALID_ARG);
    fit[4] = NAN;
    assert_status(disrnn_align_r2(10, ref, 2, g2, 2, fit, 3, g3, 3, &r2, NULL, NULL, NULL, 0), DISRNN_ERR_INVALID_ARG);
    fit[4] = 0.0;
    for (size_t i = 0; i < 10; i++) ref[1 + 2 * i] = 3.0; /* constant reference dimension */
    assert_status(disrnn_align_r2(10, ref, 2, g2, 2, fit, 3, g3, 3, &r2, NULL, NULL, NULL, 0), DISRNN_ERR_INVALID_ARG);
}

/* ---------------------------------------------------------------------------------------- */
/* comparisons */

static void test_compare_matrices_known(void **state)
{
    const double a[4] = {1, 2, 3, 4}, b[4] = {2, 4, 6, 8}, c[4] = {4, 3, 2, 1}, k[4] = {5, 5, 5, 5};
    double out[4];
    (void)state;
    assert_ok(disrnn_compare_matrices(4, a, b, out, 4));
    assert_near(out[DISRNN_CMP_CORR], 1.0, 1e-15);
    assert_near(out[DISRNN_CMP_RMSE], sqrt(7.5), 1e-15);
    assert_near(out[DISRNN_CMP_R2], 1.0 - 30.0 / 5.0, 1e-15);
    assert_near(out[DISRNN_CMP_MAE], 2.5, 1e-15);
    assert_ok(disrnn_compare_matrices(4, a, a, out, 4));
    assert_near(out[DISRNN_CMP_CORR], 1.0, 1e-15);
    assert_true(out[DISRNN_CMP_RMSE] == 0.0 && out[DISRNN_CMP_MAE] == 0.0 && out[DISRNN_CMP_R2] == 1.0);
    assert_ok(disrnn_compare_matrices(4, a, c, out, 4));
    assert_near(out[DISRNN_CMP_CORR], -1.0, 1e-15);
    assert_near(out[DISRNN_CMP_MAE], 2.0, 1e-15); /* |1-4| |2-3| |3-2| |4-1| */
    assert_ok(disrnn_compare_matrices(4, k, a, out, 4));
    assert_true(isnan(out[DISRNN_CMP_CORR]) && isnan(out[DISRNN_CMP_R2]));
    assert_near(out[DISRNN_CMP_MAE], 2.5, 1e-15);
    assert_status(disrnn_compare_matrices(1, a, b, out, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_compare_matrices(4, NULL, b, out, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_compare_matrices(4, a, NULL, out, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_compare_matrices(4, a, b, NULL, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_compare_matrices(4, a, b, out, 3), DISRNN_ERR_BUFFER_TOO_SMALL);
    {
        double bad[4] = {1, NAN, 3, 4};
        assert_status(disrnn_compare_matrices(4, a, bad, out, 4), DISRNN_ERR_INVALID_ARG);
    }
}

static double pearson_ref(size_t n, const double *a, const double *b)
{
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++) ma += a[i] / (double)n, mb += b[i] / (double)n;
    for (size_t i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return sab / sqrt(saa * sbb);
}

static void test_compare_grouped(void **state)
{
    const size_t N = 5, nn = 25;
    double a[2 * 25], b[3 * 25], noise[25], corr[2], mean;
    size_t asg[2];
    uint64_t rs = 61;
    (void)state;
    test_normal(&rs, a, 2 * nn);
    test_normal(&rs, b, nn); /* b0: unrelated */
    test_normal(&rs, noise, nn);
    for (size_t i = 0; i < nn; i++) {
        b[nn + i] = 2.0 * a[nn + i] + 1.0;           /* b1 = affine copy of a1 */
        b[2 * nn + i] = a[i] + 0.3 * noise[i];       /* b2 = noisy copy of a0 */
    }
    assert_ok(disrnn_compare_grouped(N, 2, a, 3, b, asg, corr, &mean));
    assert_int_equal(asg[0], 2);
    assert_int_equal(asg[1], 1);
    assert_near(corr[0], pearson_ref(nn, a, b + 2 * nn), 1e-13);
    assert_near(corr[1], 1.0, 1e-13);
    assert_near(mean, 0.5 * (corr[0] + corr[1]), 1e-15);
    assert_ok(disrnn_compare_grouped(N, 2, a, 3, b, NULL, NULL, &mean)); /* outputs optional */
    assert_status(disrnn_compare_grouped(N, 3, b, 2, a, asg, corr, &mean), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_compare_grouped(0, 2, a, 3, b, asg, corr, &mean), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_compare_grouped(N, 2, NULL, 3, b, asg, corr, &mean), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_compare_grouped(N, 0, a, 3, b, asg, corr, &mean), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_compare_grouped(1, 1, a, 1, b, asg, corr, &mean), DISRNN_ERR_INVALID_ARG); /* 1 value */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latents_and_predictions_match_manual),
        cmocka_unit_test(test_latents_bad_inputs),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_evaluate_gaussian_matches_formulas),
        cmocka_unit_test(test_evaluate_poisson_bits_per_spike),
        cmocka_unit_test(test_mixture_pc_structure),
        cmocka_unit_test(test_mixture_pc_gaussian_reference),
        cmocka_unit_test(test_mixture_pc_fast_path_equals_log_domain),
        cmocka_unit_test(test_mixture_pc_reproducible),
        cmocka_unit_test(test_mixture_pc_bad_inputs),
        cmocka_unit_test(test_model_eval_pc),
        cmocka_unit_test(test_align_affine_permuted_copy),
        cmocka_unit_test(test_align_components_and_noise),
        cmocka_unit_test(test_align_constant_fitted_dimension),
        cmocka_unit_test(test_align_bad_inputs),
        cmocka_unit_test(test_compare_matrices_known),
        cmocka_unit_test(test_compare_grouped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
