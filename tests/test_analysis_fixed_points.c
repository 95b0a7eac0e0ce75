/* Latent fixed points: the linear case (one point, solved in closed form), the 1-D tanh case
 * z = 2 tanh(z) with three roots, residuals to 1e-10, Jacobian eigenvalues against analytic
 * derivatives, determinism, and the unsupported configurations. */
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

static disrnn_model_t *make(size_t N, size_t K, int sigma, int obs, double kappa)
{
    disrnn_config_t *c = NULL;
    disrnn_model_t *m = NULL;
    assert_ok(disrnn_config_create(&c, N, K));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_SIGMA, sigma));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_OBS, obs));
    assert_ok(disrnn_config_set_double(c, DISRNN_OPT_KAPPA, kappa));
    assert_ok(disrnn_model_create(&m, c));
    disrnn_config_free(c);
    return m;
}

static void set4(disrnn_model_t *m, const double *A, const double *B, const double *c, const double *d, size_t N, size_t K)
{
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_A, A, N * K));
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_B, B, N * K));
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_BIAS_C, c, N));
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_BIAS_D, d, K));
}

static void test_one_dim_tanh_three_roots(void **state)
{
    /* K = N = 1, A = 1, B = 2, c = d = 0: z = 2 tanh(z) has roots 0 and +-z*, z* = 1.9150...
     * The Jacobian is 2 (1 - tanh^2 z): 2 at 0 (repelling), 2 (1 - (z* / 2)^2) < 1 at +-z*. */
    disrnn_model_t *m = make(1, 1, DISRNN_SIGMA_TANH, DISRNN_OBS_GAUSSIAN, 1.0);
    const double A = 1.0, B = 2.0, zero = 0.0;
    double z[4], re[4], im[4];
    size_t nf = 0;
    (void)state;
    set4(m, &A, &B, &zero, &zero, 1, 1);
    assert_ok(disrnn_model_fixed_points(m, 50, 7, 1e-13, &nf, z, re, im, 4));
    assert_int_equal(nf, 3);
    assert_true(z[0] < z[1] && z[1] < z[2]); /* sorted */
    assert_near(z[1], 0.0, 1e-12);
    assert_near(z[0], -z[2], 1e-12);
    assert_true(z[2] > 1.9 && z[2] < 1.92);
    for (size_t i = 0; i < 3; i++) {
        const double t = tanh(z[i]);
        assert_near(2.0 * t - z[i], 0.0, 1e-10);
        assert_near(re[i], 2.0 * (1.0 - t * t), 1e-12);
        assert_true(im[i] == 0.0);
    }
    assert_true(re[1] > 1.0 && re[0] < 1.0 && re[2] < 1.0);
    /* only the count when nothing is written; fewer slots than points */
    assert_ok(disrnn_model_fixed_points(m, 50, 7, 1e-13, &nf, NULL, NULL, NULL, 0));
    assert_int_equal(nf, 3);
    assert_ok(disrnn_model_fixed_points(m, 50, 7, 1e-13, &nf, z, NULL, NULL, 1));
    assert_int_equal(nf, 3);
    assert_true(z[0] < -1.9);
    disrnn_model_free(m);
}

static void test_linear_unique_fixed_point(void **state)
{
    /* identity sigma, Gaussian identity link: z = B (A z + c) + d, one point solving
     * (I - BA) z = B c + d; the Jacobian is BA. K = 2 solved by Cramer's rule. */
    const size_t N = 3, K = 2;
    disrnn_model_t *m = make(N, K, DISRNN_SIGMA_IDENTITY, DISRNN_OBS_GAUSSIAN, 1.0);
    const double A[6] = {0.5, -0.3, 0.2, 0.1, 0.4, -0.6}, B[6] = {0.7, 0.2, -0.4, 0.5, 0.3, 0.8};
    const double c[3] = {1.0, -2.0, 0.5}, d[2] = {0.3, -0.7};
    double z[2 * 4], re[2 * 4], im[2 * 4], J[4] = {0}, M[4], rhs[2], det, want[2];
    size_t nf = 0;
    (void)state;
    set4(m, A, B, c, d, N, K);
    for (size_t i = 0; i < K; i++)
        for (size_t j = 0; j < K; j++)
            for (size_t n = 0; n < N; n++) J[i + j * K] += B[i + n * K] * A[n + j * N];
    for (size_t i = 0; i < K; i++) {
        rhs[i] = d[i];
        for (size_t n = 0; n < N; n++) rhs[i] += B[i + n * K] * c[n];
    }
    M[0] = 1.0 - J[0], M[1] = -J[1], M[2] = -J[2], M[3] = 1.0 - J[3];
    det = M[0] * M[3] - M[2] * M[1];
    want[0] = (rhs[0] * M[3] - M[2] * rhs[1]) / det;
    want[1] = (M[0] * rhs[1] - rhs[0] * M[1]) / det;
    assert_ok(disrnn_model_fixed_points(m, 20, 3, 1e-12, &nf, z, re, im, 4));
    assert_int_equal(nf, 1);
    assert_near(z[0], want[0], 1e-12);
    assert_near(z[1], want[1], 1e-12);
    {
        /* eigenvalues of the 2 x 2 J from its trace and determinant */
        const double tr = J[0] + J[3], dt = J[0] * J[3] - J[1] * J[2], disc = tr * tr / 4.0 - dt;
        if (disc >= 0) {
            const double l1 = tr / 2.0 + sqrt(disc), l2 = tr / 2.0 - sqrt(disc);
            const double hi = fabs(l1) >= fabs(l2) ? l1 : l2, lo = fabs(l1) >= fabs(l2) ? l2 : l1;
            assert_near(re[0], hi, 1e-12);
            assert_near(re[1], lo, 1e-12);
            assert_true(im[0] == 0.0 && im[1] == 0.0);
        } else {
            assert_near(re[0], tr / 2.0, 1e-12);
            assert_near(re[1], tr / 2.0, 1e-12);
            assert_near(fabs(im[0]), sqrt(-disc), 1e-12);
            assert_near(im[0], -im[1], 1e-12);
        }
    }
    disrnn_model_free(m);
}

static void test_residuals_and_jacobian_general(void **state)
{
    /* a random tanh model with a Poisson softplus link and kappa != 1: every reported point
     * satisfies z = B tanh(softplus(A z + c) / kappa) + d to 1e-10, its eigenvalues match those of
     * a finite-difference Jacobian, and the result does not depend on anything but the seed */
    const size_t N = 6, K = 3;
    disrnn_model_t *m = make(N, K, DISRNN_SIGMA_TANH, DISRNN_OBS_POISSON_SOFTPLUS, 0.8);
    double A[18], B[18], c[6], d[3], z[3 * 16], re[3 * 16], im[3 * 16], z2[3 * 16], re2[3 * 16];
    size_t nf = 0, nf2 = 0;
    uint64_t rs = 15;
    (void)state;
    test_uniform(&rs, A, 18, -2.0, 2.0);
    test_uniform(&rs, B, 18, -2.0, 2.0);
    test_uniform(&rs, c, 6, -1.0, 1.0);
    test_uniform(&rs, d, 3, -0.5, 0.5);
    set4(m, A, B, c, d, N, K);
    assert_ok(disrnn_model_fixed_points(m, 200, 11, 1e-12, &nf, z, re, im, 16));
    assert_true(nf >= 1 && nf <= 16);
    for (size_t f = 0; f < nf; f++) {
        double F[3];
        const double *zf = z + f * K;
        for (size_t k = 0; k < K; k++) {
            F[k] = d[k];
            for (size_t n = 0; n < N; n++) {
                double e = c[n];
                for (size_t j = 0; j < K; j++) e += A[n + j * N] * zf[j];
                F[k] += B[k + n * K] * tanh(log1p(exp(e)) / 0.8);
            }
            assert_near(F[k], zf[k], 1e-10);
        }
        if (f > 0) assert_true(zf[0] >= z[(f - 1) * K]);
        /* eigenvalue sum and product equal trace and determinant of the Jacobian */
        {
            double Jfd[9], tr = 0.0, sre = 0.0, sim = 0.0;
            for (size_t j = 0; j < K; j++) {
                double zp[3], zm[3], Fp[3], Fm[3];
                memcpy(zp, zf, sizeof zp);
                memcpy(zm, zf, sizeof zm);
                zp[j] += 1e-6;
                zm[j] -= 1e-6;
                for (size_t k = 0; k < K; k++) {
                    Fp[k] = Fm[k] = d[k];
                    for (size_t n = 0; n < N; n++) {
                        double ep = c[n], em = c[n];
                        for (size_t i = 0; i < K; i++) ep += A[n + i * N] * zp[i], em += A[n + i * N] * zm[i];
                        Fp[k] += B[k + n * K] * tanh(log1p(exp(ep)) / 0.8);
                        Fm[k] += B[k + n * K] * tanh(log1p(exp(em)) / 0.8);
                    }
                    Jfd[k + j * K] = (Fp[k] - Fm[k]) / 2e-6;
                }
            }
            for (size_t k = 0; k < K; k++) {
                tr += Jfd[k + k * K];
                sre += re[f * K + k];
                sim += im[f * K + k];
                if (k > 0) assert_true(hypot(re[f * K + k], im[f * K + k]) <= hypot(re[f * K + k - 1], im[f * K + k - 1]) + 1e-15);
            }
            assert_near(sre, tr, 1e-6);
            assert_near(sim, 0.0, 1e-12);
            {
                const double det = Jfd[0] * (Jfd[4] * Jfd[8] - Jfd[7] * Jfd[5]) - Jfd[3] * (Jfd[1] * Jfd[8] - Jfd[7] * Jfd[2]) +
                                   Jfd[6] * (Jfd[1] * Jfd[5] - Jfd[4] * Jfd[2]);
                double pr_re = 1.0, pr_im = 0.0;
                for (size_t k = 0; k < K; k++) {
                    const double a = pr_re * re[f * K + k] - pr_im * im[f * K + k];
                    pr_im = pr_re * im[f * K + k] + pr_im * re[f * K + k];
                    pr_re = a;
                }
                assert_near(pr_re, det, 1e-6 * (1.0 + fabs(det)));
            }
        }
    }
    assert_ok(disrnn_model_fixed_points(m, 200, 11, 1e-12, &nf2, z2, re2, NULL, 16));
    assert_int_equal(nf, nf2);
    assert_memory_equal(z, z2, nf * K * sizeof(double));
    assert_memory_equal(re, re2, nf * K * sizeof(double));
    disrnn_model_free(m);
}

static void test_fixed_points_unsupported_and_bad(void **state)
{
    disrnn_config_t *c = NULL;
    disrnn_model_t *m = NULL, *ok = make(2, 1, DISRNN_SIGMA_TANH, DISRNN_OBS_GAUSSIAN, 1.0);
    const double psi[2] = {0.5, 0.5};
    double z[4];
    size_t nf = 99;
    (void)state;
    assert_ok(disrnn_config_create(&c, 2, 1));
    assert_ok(disrnn_config_set_kernel(c, psi, 2));
    assert_ok(disrnn_model_create(&m, c));
    assert_status(disrnn_model_fixed_points(m, 5, 1, 1e-12, &nf, z, NULL, NULL, 4), DISRNN_ERR_UNSUPPORTED);
    assert_true(strlen(disrnn_model_last_error(m)) > 0);
    disrnn_model_free(m);
    disrnn_config_free(c);
    assert_ok(disrnn_config_create(&c, 2, 1));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, 1));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_INPUT_D, DISRNN_INPUT_LEARNED));
    assert_ok(disrnn_model_create(&m, c));
    assert_status(disrnn_model_fixed_points(m, 5, 1, 1e-12, &nf, z, NULL, NULL, 4), DISRNN_ERR_UNSUPPORTED);
    disrnn_model_free(m);
    disrnn_config_free(c);
    /* E u alone is fine: without input it vanishes */
    assert_ok(disrnn_config_create(&c, 2, 1));
    assert_ok(disrnn_config_set_int(c, DISRNN_OPT_NUM_INPUTS, 1));
    assert_ok(disrnn_model_create(&m, c));
    assert_ok(disrnn_model_fixed_points(m, 5, 1, 1e-12, &nf, z, NULL, NULL, 4));
    disrnn_model_free(m);
    disrnn_config_free(c);
    assert_status(disrnn_model_fixed_points(NULL, 5, 1, 1e-12, &nf, z, NULL, NULL, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_fixed_points(ok, 0, 1, 1e-12, &nf, z, NULL, NULL, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_fixed_points(ok, 5, 1, 0.0, &nf, z, NULL, NULL, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_fixed_points(ok, 5, 1, NAN, &nf, z, NULL, NULL, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_fixed_points(ok, 5, 1, 1e-12, NULL, z, NULL, NULL, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_fixed_points(ok, SIZE_MAX, 1, 1e-12, &nf, z, NULL, NULL, 4), DISRNN_ERR_NOMEM);
    disrnn_model_free(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_dim_tanh_three_roots),
        cmocka_unit_test(test_linear_unique_fixed_point),
        cmocka_unit_test(test_residuals_and_jacobian_general),
        cmocka_unit_test(test_fixed_points_unsupported_and_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
