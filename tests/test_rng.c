/* The random generator's derived draws: the vectorised Box-Muller normals (accuracy against a
 * higher-precision evaluation of their definition, exact values at the quadrant boundaries, the
 * same bits on every code path, the stream layout, the distribution) and the bounded integers. */
#include "support.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

static const char *const path_name[3] = {"baseline", "AVX2", "AVX-512"};

/* Distance of got from the exact value ref in units in the last place of ref (as a double). */
static double ulps(double got, long double ref)
{
    const double r = (double)ref, a = fabs(r);
    const double u = a < DBL_MIN ? DBL_MIN * DBL_EPSILON : nextafter(a, INFINITY) - a;
    return (double)fabsl((long double)got - ref) / u;
}

/* cos and sin of 2 pi v in long double, with the quadrant taken exactly so the reference keeps its
 * relative accuracy next to the zeros. */
static void ref_cos_sin(long double v, long double *c, long double *s)
{
    const long double half_pi = 1.57079632679489661923132169163975144L;
    const long double y = 4.0L * v, n = roundl(y), a = (y - n) * half_pi;
    const long double ca = cosl(a), sa = sinl(a);
    switch ((int)n & 3) {
    case 0: *c = ca; *s = sa; break;
    case 1: *c = -sa; *s = ca; break;
    case 2: *c = -ca; *s = -sa; break;
    default: *c = sa; *s = -ca; break;
    }
}

/* Every value within 3 ulps of its definition, evaluated in long double from the same uniforms. */
static void test_normal_accuracy(void **state)
{
    enum { n = 1 << 18 };
    double *x = malloc(n * sizeof *x);
    disrnn__rng r, u;
    double worst = 0.0;
    volatile long double one = 1.0L, tiny = LDBL_EPSILON;
    (void)state;
    assert_non_null(x);
    /* the reference needs extended precision (valgrind, for one, computes long double as double) */
    if (LDBL_MANT_DIG < 64 || one + tiny == one) {
        free(x);
        print_message("long double arithmetic has no more than double's precision here; skipping\n");
        skip();
    }
    disrnn__rng_seed(&r, 2024);
    u = r;
    disrnn__rng_normal(&r, x, n);
    for (size_t i = 0; i < n; i += 2) {
        const long double u1 = 1.0L - (long double)disrnn__rng_uniform(&u), v = disrnn__rng_uniform(&u);
        const long double rad = sqrtl(-2.0L * logl(u1));
        long double c, s;
        double e;
        ref_cos_sin(v, &c, &s);
        e = ulps(x[i], rad * c);
        if (e > worst) worst = e;
        e = ulps(x[i + 1], rad * s);
        if (e > worst) worst = e;
    }
    /* the two uniforms per pair are all the stream consumed */
    assert_memory_equal(r.s, u.s, sizeof r.s);
    print_message("worst error over %d normal draws: %.2f ulp\n", n, worst);
    assert_true(worst <= 3.0);
    free(x);
}

static uint64_t word_for(double uniform) { return (uint64_t)(uniform * 0x1.0p53) << 11; }

/* Exact values where the definition has them: radius 0 at u1 = 1, the quadrant boundaries of the
 * angle, the largest radius sqrt(106 ln 2) at u1 = 2^-53, and 1/sqrt(2) at the octants. */
static void test_normal_special_words(void **state)
{
    const double v[] = {0.0, 0.25, 0.5, 0.75, 0.125, 0.375, 0.625, 0.875};
    const double c_exp[] = {1, 0, -1, 0}, s_exp[] = {0, 1, 0, -1};
    const double rt = 0.70710678118654752440;
    uint64_t a[8], b[8], top = ~(uint64_t)0;
    double out[16];
    (void)state;
    for (int p = 0; p < 3; p++) {
        for (int i = 0; i < 8; i++) {
            a[i] = word_for(0.5); /* u1 = 1/2: radius sqrt(2 ln 2) */
            b[i] = word_for(v[i]);
        }
        if (!disrnn__rng_box_muller(p, a, b, 8, out)) continue;
        for (int i = 0; i < 4; i++) {
            const double rad = sqrt(2.0 * log(2.0));
            assert_true(fabs(out[2 * i] - rad * c_exp[i]) <= 2e-16 * rad);
            assert_true(fabs(out[2 * i + 1] - rad * s_exp[i]) <= 2e-16 * rad);
            /* the zero of the pair is exact, not a rounding residue of 2 pi v */
            assert_true(out[2 * i] * out[2 * i + 1] == 0.0);
        }
        for (int i = 4; i < 8; i++) {
            const double rad = sqrt(2.0 * log(2.0));
            const double cs = i == 4 || i == 7 ? rt : -rt, sn = i < 6 ? rt : -rt;
            assert_true(fabs(out[2 * i] - rad * cs) <= 3e-16 * rad);
            assert_true(fabs(out[2 * i + 1] - rad * sn) <= 3e-16 * rad);
        }
        /* u1 = 1 (U = 0): both zero; u1 = 2^-53 (U = 1 - 2^-53): the largest radius */
        a[0] = 0;
        a[1] = top;
        b[0] = b[1] = word_for(0.0);
        assert_true(disrnn__rng_box_muller(p, a, b, 2, out));
        assert_true(out[0] == 0.0 && out[1] == 0.0);
        assert_true(fabs(out[2] - sqrt(106.0 * log(2.0))) <= 4e-16 * out[2]);
        assert_true(out[3] == 0.0);
    }
}

/* Each code path this CPU runs gives the bits of the default one (no fused multiply-adds, every
 * operation correctly rounded). */
static void test_normal_paths_identical(void **state)
{
    enum { n = 1001 };
    double ref[n], got[n];
    disrnn__rng r0, r;
    (void)state;
    disrnn__rng_seed(&r0, 99);
    r = r0;
    disrnn__rng_normal(&r, ref, n);
    for (int p = 0; p < 3; p++) {
        disrnn__rng q = r0;
        memset(got, 0, sizeof got);
        if (!disrnn__rng_normal_path(p, &q, got, n)) {
            print_message("%s path not available on this machine or build\n", path_name[p]);
            continue;
        }
        print_message("%s path compared\n", path_name[p]);
        assert_memory_equal(got, ref, sizeof ref);
        assert_memory_equal(q.s, r.s, sizeof q.s);
    }
    assert_int_equal(disrnn__rng_normal_path(3, &r, got, 2), 0);
}

/* The stream does not depend on how the draws are split into calls (even counts), an odd count
 * drops only the last sine, and nothing but the four state words carries over. */
static void test_normal_stream_layout(void **state)
{
    double all[600], part[600];
    disrnn__rng a, b, c;
    (void)state;
    disrnn__rng_seed(&a, 5);
    b = c = a;
    disrnn__rng_normal(&a, all, 600);
    disrnn__rng_normal(&b, part, 256);
    disrnn__rng_normal(&b, part + 256, 2);
    disrnn__rng_normal(&b, part + 258, 342);
    assert_memory_equal(all, part, sizeof all);
    assert_memory_equal(a.s, b.s, sizeof a.s);
    /* odd: 7 values are the first 7 of 8, and the generator moved as for 8 */
    disrnn__rng_normal(&c, part, 7);
    assert_memory_equal(part, all, 7 * sizeof(double));
    b = c;
    disrnn__rng_seed(&a, 5);
    disrnn__rng_normal(&a, part, 8);
    assert_memory_equal(a.s, b.s, sizeof a.s);
    /* nothing drawn, nothing moved */
    b = a;
    disrnn__rng_normal(&a, part, 0);
    assert_memory_equal(a.s, b.s, sizeof a.s);
}

static int cmp_double(const void *p, const void *q)
{
    const double a = *(const double *)p, b = *(const double *)q;
    return (a > b) - (a < b);
}

/* Kolmogorov-Smirnov distance to the normal distribution, the tails, and no correlation between
 * the two values of a pair. */
static void test_normal_distribution(void **state)
{
    enum { n = 1 << 17 };
    double *x = malloc(n * sizeof *x), d = 0.0, tail = 0.0, sxy = 0.0, sxx = 0.0, syy = 0.0, corr, ks;
    disrnn__rng r;
    (void)state;
    assert_non_null(x);
    disrnn__rng_seed(&r, 31337);
    disrnn__rng_normal(&r, x, n);
    for (size_t i = 0; i < n; i += 2) {
        sxy += x[i] * x[i + 1];
        sxx += x[i] * x[i];
        syy += x[i + 1] * x[i + 1];
    }
    corr = sxy / sqrt(sxx * syy);
    for (size_t i = 0; i < n; i++) tail += fabs(x[i]) > 3.0;
    qsort(x, n, sizeof *x, cmp_double);
    for (size_t i = 0; i < n; i++) {
        const double cdf = 0.5 * erfc(-x[i] / sqrt(2.0));
        const double lo = fabs(cdf - (double)i / n), hi = fabs(cdf - (double)(i + 1) / n);
        if (lo > d) d = lo;
        if (hi > d) d = hi;
    }
    ks = d * sqrt((double)n);
    print_message("KS statistic %.3f (1%% critical value 1.63), P(|z| > 3) %.5f (0.00270), pair correlation %.4f\n", ks,
                  tail / n, corr);
    assert_true(ks < 1.63);
    /* 0.0027 n = 354 expected, standard deviation about 19 */
    assert_true(fabs(tail - 0.0026998 * n) < 5.0 * sqrt(0.0027 * n));
    assert_true(fabs(corr) < 5.0 / sqrt(n / 2.0));
    free(x);
}

/* Bounded integers: in range, unbiased by a chi-square test, and correct when nearly half the
 * products are rejected (n just above 2^63). */
static void test_below(void **state)
{
    enum { draws = 70000 };
    const uint64_t big = ((uint64_t)1 << 63) + 12345;
    long count[7] = {0};
    double chi2 = 0.0, high = 0.0;
    disrnn__rng r;
    (void)state;
    disrnn__rng_seed(&r, 8);
    for (int i = 0; i < 100; i++) assert_true(disrnn__rng_below(&r, 1) == 0);
    for (int i = 0; i < draws; i++) {
        const uint64_t v = disrnn__rng_below(&r, 7);
        assert_true(v < 7);
        count[v]++;
    }
    for (int k = 0; k < 7; k++) chi2 += ((double)count[k] - draws / 7.0) * ((double)count[k] - draws / 7.0) / (draws / 7.0);
    print_message("chi-square over 7 values: %.2f (6 degrees of freedom, 0.1%% critical value 22.5)\n", chi2);
    assert_true(chi2 < 22.5);
    for (int i = 0; i < 20000; i++) {
        const uint64_t v = disrnn__rng_below(&r, big);
        assert_true(v < big);
        high += v >= big / 2;
    }
    assert_true(fabs(high / 20000.0 - 0.5) < 0.02);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normal_accuracy),     cmocka_unit_test(test_normal_special_words),
        cmocka_unit_test(test_normal_paths_identical), cmocka_unit_test(test_normal_stream_layout),
        cmocka_unit_test(test_normal_distribution), cmocka_unit_test(test_below),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
