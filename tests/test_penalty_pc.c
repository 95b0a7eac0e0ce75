/* The optimised PC kernel (src/penalty_pc.c) against a plain, obviously-correct reference written
 * here: every path of the kernel (group sizes 1 to 4 and wider, batch sizes around multiples of
 * the 8 vector lanes and of the AVX-512 kernel's blocks of 4 rows, a padded row stride (M 512),
 * the rows redone exactly when
 * their sums underflow, inputs beyond 1e100, N_tot <= 1) must give the same value and gradients;
 * and its vector exponential must stay within 1 ulp of exp2 on every instruction set. */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "objective_internal.h"

/* Straight from MODEL.md section 4: l_ij^g with its constants, log-sum-exps shifted by the row
 * maximum, W_ij^g = (P_ij - Q_ij^g) / M, and the chain rule through the normal log densities. */
static double ref_pc(size_t K, size_t M, const double *mu, const double *z, const double *s, size_t G,
                     const size_t *gs, double n_tot, double *dz, double *dmu, double *dls)
{
    const double lw = n_tot > 1.0 ? log((n_tot - 1.0) / (double)(M - 1)) : -INFINITY;
    double *l = (double *)calloc((G + 1) * M, sizeof(double)), *lse = (double *)calloc(G + 1, sizeof(double));
    double pc = 0.0;
    memset(dz, 0, K * M * sizeof(double));
    memset(dmu, 0, K * M * sizeof(double));
    memset(dls, 0, K * sizeof(double));
    for (size_t i = 0; i < M; i++) {
        for (size_t j = 0; j < M; j++) {
            l[G * M + j] = 0.0;
            for (size_t g = 0; g < G; g++) {
                double v = 0.0;
                for (size_t k = gs[g]; k < gs[g + 1]; k++) {
                    const double t = (z[k + i * K] - mu[k + j * K]) / s[k];
                    v += -0.5 * t * t - log(s[k]) - 0.91893853320467274178;
                }
                l[g * M + j] = v;
                l[G * M + j] += v;
            }
        }
        for (size_t r = 0; r <= G; r++) {
            double mx = -INFINITY, acc = 0.0;
            for (size_t j = 0; j < M; j++) mx = fmax(mx, l[r * M + j] + (j == i ? 0.0 : lw));
            for (size_t j = 0; j < M; j++) acc += exp(l[r * M + j] + (j == i ? 0.0 : lw) - mx);
            lse[r] = mx + log(acc) - log(n_tot);
        }
        pc += lse[G];
        for (size_t g = 0; g < G; g++) pc -= lse[g];
        for (size_t g = 0; g < G; g++)
            for (size_t j = 0; j < M; j++) {
                const double w8 = j == i ? 0.0 : lw;
                const double W = (exp(l[G * M + j] + w8 - lse[G] - log(n_tot)) -
                                  exp(l[g * M + j] + w8 - lse[g] - log(n_tot))) / (double)M;
                for (size_t k = gs[g]; k < gs[g + 1]; k++) {
                    const double d = (z[k + i * K] - mu[k + j * K]) / s[k];
                    dz[k + i * K] -= W * d / s[k];
                    dmu[k + j * K] += W * d / s[k];
                    dls[k] += W * (d * d - 1.0);
                }
            }
    }
    free(l);
    free(lse);
    return pc / (double)M;
}

static double max_abs(const double *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* Worst difference relative to the largest reference entry, or to floor when that is smaller. A
 * gradient that cancels to nearly nothing (spread-out centres: a row's weights P_ii and Q_ii^g
 * all round to 1, and their difference, exactly tiny, is computed with an error of a few 1e-16)
 * can only be held to the rounding of its terms, which are of order 1 / M (scale_floor). */
static double rel_diff(const double *a, const double *b, size_t n, double scale_floor)
{
    const double sc = fmax(max_abs(b, n), scale_floor);
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return sc > 0.0 ? m / sc : m;
}

typedef struct pc_case {
    size_t M;
    size_t G;
    size_t sizes[6];
    double n_tot, eps_scale, mu_scale;
    size_t outlier_every; /* every this many samples has 40 times the noise (0: none) */
} pc_case;

static void check_case(const pc_case *pcs, uint64_t seed, double *worst_val, double *worst_grad)
{
    size_t K = 0, gs[7];
    const size_t M = pcs->M, G = pcs->G;
    double *mu, *z, *eps, *dz, *dmu, *rdz, *rdmu, *work, s[32], ls[32], dls[32], rdls[32];
    double pc, pc_value_only, ref, dv, dg;
    size_t nwork;
    gs[0] = 0;
    for (size_t g = 0; g < G; g++) gs[g + 1] = (K += pcs->sizes[g]);
    mu = (double *)calloc(K * M, sizeof(double));
    z = (double *)calloc(K * M, sizeof(double));
    eps = (double *)calloc(K * M, sizeof(double));
    dz = (double *)calloc(K * M, sizeof(double));
    dmu = (double *)calloc(K * M, sizeof(double));
    rdz = (double *)calloc(K * M, sizeof(double));
    rdmu = (double *)calloc(K * M, sizeof(double));
    test_normal(&seed, mu, K * M);
    test_normal(&seed, eps, K * M);
    test_uniform(&seed, s, K, 0.3, 0.8);
    for (size_t k = 0; k < K; k++) ls[k] = log(s[k]);
    for (size_t i = 0; i < K * M; i++) mu[i] *= pcs->mu_scale;
    for (size_t i = 0; i < M; i++)
        for (size_t k = 0; k < K; k++)
            z[k + i * K] = mu[k + i * K] + s[k] * pcs->eps_scale * eps[k + i * K] *
                                               (pcs->outlier_every && i % pcs->outlier_every == 1 ? 40.0 : 1.0);
    nwork = disrnn__pc_work_size(K, M, G);
    assert_true(nwork > 0);
    work = (double *)calloc(nwork, sizeof(double));
    pc = disrnn__pc(K, M, mu, z, s, ls, G, gs, pcs->n_tot, work, dz, dmu, dls, NULL);
    pc_value_only = disrnn__pc(K, M, mu, z, s, ls, G, gs, pcs->n_tot, work, NULL, NULL, NULL, NULL);
    ref = ref_pc(K, M, mu, z, s, G, gs, pcs->n_tot, rdz, rdmu, rdls);
    /* the value is a difference of log-sum-exps of size ln M: compare on that scale */
    dv = fabs(pc - ref) / fmax(fabs(ref), 1.0);
    assert_true(pc == pc_value_only);
    assert_true(isfinite(pc));
    dg = fmax(rel_diff(dz, rdz, K * M, 1.0 / (double)M),
              fmax(rel_diff(dmu, rdmu, K * M, 1.0 / (double)M), rel_diff(dls, rdls, K, 1.0 / (double)M)));
    if (dv > 1e-12 || dg > 1e-9)
        fprintf(stderr, "M %zu G %zu K %zu n_tot %g eps x%g mu x%g outliers %zu: value %.17g vs %.17g (%.3g), gradient %.3g\n",
                M, G, K, pcs->n_tot, pcs->eps_scale, pcs->mu_scale, pcs->outlier_every, pc, ref, dv, dg);
    assert_true(dv <= 1e-12);
    assert_true(dg <= 1e-9);
    if (dv > *worst_val) *worst_val = dv;
    if (dg > *worst_grad) *worst_grad = dg;
    free(mu);
    free(z);
    free(eps);
    free(dz);
    free(dmu);
    free(rdz);
    free(rdmu);
    free(work);
}

static void test_against_reference(void **state)
{
    static const pc_case cases[] = {
        /* group sizes 1..4 (specialised loops) and 5, 6 (the general one) */
        {128, 2, {3, 3}, 1000.0, 1.0, 1.0, 0},
        {128, 2, {2, 2}, 1000.0, 1.0, 1.0, 0},
        {128, 6, {2, 2, 2, 2, 2, 2}, 1000.0, 1.0, 1.0, 0},
        {64, 4, {4, 4, 4, 4}, 1000.0, 1.0, 1.0, 0},
        {40, 3, {1, 5, 6}, 1000.0, 1.0, 1.0, 0},
        {33, 2, {1, 1}, 1000.0, 1.0, 1.0, 0},
        /* batch sizes around the 8 lanes (padding components) */
        {2, 2, {1, 2}, 1000.0, 1.0, 1.0, 0},
        {7, 2, {2, 1}, 1000.0, 1.0, 1.0, 0},
        {8, 2, {3, 3}, 1000.0, 1.0, 1.0, 0},
        {9, 2, {3, 3}, 1000.0, 1.0, 1.0, 0},
        {129, 3, {2, 3, 1}, 1000.0, 1.0, 1.0, 0},
        /* importance weights: none (N_tot <= 1), tiny, huge */
        {50, 2, {3, 3}, 1.0, 1.0, 1.0, 0},
        {50, 2, {3, 3}, 1.5, 1.0, 1.0, 0},
        {50, 2, {3, 3}, 1e7, 1.0, 1.0, 0},
        /* noise so large that row sums underflow: the exact rows take over, for every row or for
         * some rows among the others */
        {24, 2, {3, 3}, 1000.0, 40.0, 1.0, 0},
        {30, 2, {3, 3}, 1000.0, 1.0, 1.0, 3},
        {29, 3, {2, 2, 5}, 1000.0, 1.0, 1.0, 5},
        /* spread-out centres (most pairs far apart) and inputs beyond 1e100 */
        {24, 2, {2, 2}, 1000.0, 1.0, 30.0, 0},
        {16, 2, {2, 1}, 1000.0, 1.0, 1e101, 0},
        /* rows padded apart (at 512 columns every row would start 4 KB after the last); last, so
         * that the cases above keep their seeds */
        {512, 2, {2, 2}, 1000.0, 1.0, 1.0, 0},
    };
    double worst_val = 0.0, worst_grad = 0.0;
    (void)state;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) check_case(&cases[c], 1000 + c, &worst_val, &worst_grad);
    /* the spread-out case over many draws: its gradients range from 1e-6 down to rounding noise */
    {
        static const pc_case spread = {24, 2, {2, 2}, 1000.0, 1.0, 30.0, 0};
        for (uint64_t sd = 2000; sd < 2040; sd++) check_case(&spread, sd, &worst_val, &worst_grad);
    }
    printf("PC kernel against the plain reference: %zu cases and 40 draws of a spread-out one, worst value "
           "difference %.3g, worst gradient difference %.3g\n",
           sizeof cases / sizeof cases[0], worst_val, worst_grad);
}

/* NaN in the inputs reaches the value (the objective then reports DISRNN_ERR_NONFINITE). */
static void test_nan_propagates(void **state)
{
    const size_t K = 4, M = 16, gs[3] = {0, 2, 4};
    double mu[64], z[64], s[4] = {0.5, 0.5, 0.5, 0.5}, ls[4], dz[64], dmu[64], dls[4], *work;
    uint64_t seed = 3;
    (void)state;
    test_normal(&seed, mu, K * M);
    test_normal(&seed, z, K * M);
    for (size_t k = 0; k < K; k++) ls[k] = log(s[k]);
    z[5] = NAN;
    work = (double *)calloc(disrnn__pc_work_size(K, M, 2), sizeof(double));
    assert_true(isnan(disrnn__pc(K, M, mu, z, s, ls, 2, gs, 100.0, work, dz, dmu, dls, NULL)));
    free(work);
}

/* Units in the last place between two non-negative doubles. */
static uint64_t ulp_distance(double a, double b)
{
    int64_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    return ia > ib ? (uint64_t)(ia - ib) : (uint64_t)(ib - ia);
}

/* The kernel's exponential on every instruction set this CPU has: within 1 ulp of exp2 on
 * [-1021, 0] (random arguments over the whole range and near 0, the table's rounding ties at odd
 * multiples of 1/32 and their neighbours, the end points, -0), exactly 0 below -1021 (also at
 * -inf), NaN for NaN, and a length that is not a multiple of the 8 lanes. */
static void test_exp2_accuracy(void **state)
{
    static const double below[] = {-1021.0000000000002, -1021.5, -1022.0, -1074.0, -1080.0, -1e300, -INFINITY};
    const size_t n = ((size_t)1 << 22) + 3, nb = sizeof below / sizeof below[0];
    double *x = (double *)malloc(n * sizeof(double)), *y = (double *)malloc(n * sizeof(double)), t[16];
    size_t done = 0;
    uint64_t seed = 77;
    (void)state;
    assert_non_null(x);
    assert_non_null(y);
    test_uniform(&seed, x, n, -1021.0, 0.0);
    for (size_t i = 0; i < n; i += 4) x[i] *= 0x1p-10; /* a quarter in [-1, 0] */
    for (size_t i = 1; i < n; i += 16) x[i] *= 0x1p-30;
    for (size_t i = 2; i < n; i += 8) {
        /* the ties of the rounding to sixteenths and their neighbours */
        const double tie = -(double)(2 * (i / 8 % 16336) + 1) / 32.0;
        x[i] = i % 3 == 0 ? tie : nextafter(tie, i % 3 == 1 ? 0.0 : -2000.0);
    }
    x[0] = 0.0;
    x[1] = -0.0;
    x[2] = -1021.0;
    x[3] = nextafter(-1021.0, 0.0);
    x[4] = -0x1p-1074;
    x[5] = -0.5;
    for (int isa = 0; isa <= 2; isa++) {
        uint64_t worst = 0;
        memcpy(y, x, n * sizeof(double));
        if (!disrnn__pc_exp2(isa, y, n)) {
            printf("exp2: instruction set %d not available here\n", isa);
            continue;
        }
        done++;
        for (size_t i = 0; i < n; i++) {
            const uint64_t d = ulp_distance(y[i], exp2(x[i]));
            if (d > worst) worst = d;
            if (d > 1) fprintf(stderr, "isa %d: 2^%.17g = %.17g, exp2 %.17g\n", isa, x[i], y[i], exp2(x[i]));
            assert_true(d <= 1);
        }
        assert_true(y[1] == 1.0 && y[0] == 1.0);
        assert_true(y[2] == 0x1p-1021);
        /* below the range: +0; NaN stays NaN; 11 values check the padded tail */
        for (size_t i = 0; i < 16; i++) t[i] = i < nb ? below[i] : i == nb ? NAN : -0.25 * (double)i;
        assert_int_equal(disrnn__pc_exp2(isa, t, 11), 1);
        for (size_t i = 0; i < nb; i++) assert_true(t[i] == 0.0 && !signbit(t[i]));
        assert_true(isnan(t[nb]));
        for (size_t i = nb + 1; i < 11; i++) assert_true(ulp_distance(t[i], exp2(-0.25 * (double)i)) <= 1);
        for (size_t i = 11; i < 16; i++) assert_true(t[i] == -0.25 * (double)i);
        printf("exp2, instruction set %d: %zu arguments, worst %u ulp from exp2\n", isa, n, (unsigned)worst);
    }
    free(x);
    free(y);
    if (!done) skip();
}

/* Work sizes overflow to 0 instead of wrapping. */
static void test_work_size(void **state)
{
    (void)state;
    assert_true(disrnn__pc_work_size(6, 128, 2) > 0);
    assert_int_equal(disrnn__pc_work_size(6, SIZE_MAX - 3, 2), 0);
    assert_int_equal(disrnn__pc_work_size(SIZE_MAX / 2, 128, 2), 0);
}

/* Rows in chunks on a pool of 2 or 3 threads: the value and every gradient are the bits of the
 * calling thread alone (M = 129, 300 and 512 make 2, 3 and 4 chunks). */
static void test_pool_same_bits(void **state)
{
    const size_t Ms[] = {129, 300, 512}, Ks[] = {4, 12, 16}, Gs[] = {2, 6, 4};
    uint64_t seed = 31;
    (void)state;
    for (size_t threads = 2; threads <= 3; threads++) {
        disrnn__pool *pool = disrnn__pool_create(disrnn__default_allocator(), threads);
        assert_non_null(pool);
        for (size_t c = 0; c < 3; c++) {
            const size_t M = Ms[c], K = Ks[c], G = Gs[c];
            size_t gs[17];
            double *mu = malloc(K * M * sizeof(double)), *z = malloc(K * M * sizeof(double));
            double s[16], ls[16], dls[2][16], pc[2], *dz[2], *dmu[2];
            double *work = calloc(disrnn__pc_work_size(K, M, G), sizeof(double));
            assert_true(mu && z && work);
            for (size_t g = 0; g <= G; g++) gs[g] = g * K / G;
            test_normal(&seed, mu, K * M);
            test_normal(&seed, z, K * M);
            test_uniform(&seed, s, K, 0.3, 0.8);
            for (size_t k = 0; k < K; k++) ls[k] = log(s[k]);
            for (size_t i = 0; i < K * M; i++) z[i] = mu[i] + 0.5 * z[i];
            for (int r = 0; r < 2; r++) {
                dz[r] = malloc(K * M * sizeof(double));
                dmu[r] = malloc(K * M * sizeof(double));
                assert_true(dz[r] && dmu[r]);
                pc[r] = disrnn__pc(K, M, mu, z, s, ls, G, gs, 5000.0, work, dz[r], dmu[r], dls[r], r ? pool : NULL);
            }
            assert_memory_equal(&pc[0], &pc[1], sizeof(double));
            assert_memory_equal(dz[0], dz[1], K * M * sizeof(double));
            assert_memory_equal(dmu[0], dmu[1], K * M * sizeof(double));
            assert_memory_equal(dls[0], dls[1], K * sizeof(double));
            for (int r = 0; r < 2; r++) {
                free(dz[r]);
                free(dmu[r]);
            }
            free(mu);
            free(z);
            free(work);
        }
        disrnn__pool_free(pool);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_nan_propagates),
        cmocka_unit_test(test_work_size),
        cmocka_unit_test(test_exp2_accuracy),
        cmocka_unit_test(test_pool_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
