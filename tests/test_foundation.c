/* Foundations: version, status strings, random generator, allocation helpers. */
#include "support.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "common.h"
#include "rng.h"

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(disrnn_version_number(), DISRNN_VERSION_NUMBER);
    assert_string_equal(disrnn_version_string(), DISRNN_VERSION_STRING);
    assert_int_equal(DISRNN_VERSION_NUMBER, DISRNN_VERSION_MAJOR * 10000 + DISRNN_VERSION_MINOR * 100 + DISRNN_VERSION_PATCH);
}

static void test_status_strings(void **state)
{
    (void)state;
    for (int s = -12; s <= 2; s++) {
        const char *t = disrnn_status_string(s);
        assert_non_null(t);
        assert_true(strlen(t) > 0);
        assert_string_not_equal(t, "unknown status");
    }
    assert_string_equal(disrnn_status_string(-999), "unknown status");
    assert_string_equal(disrnn_status_string(77), "unknown status");
    assert_int_equal(DISRNN_OK, 0);
    assert_true(DISRNN_ERR_INVALID_ARG < 0 && DISRNN_STOPPED > 0);
}

static void test_rng_reproducible(void **state)
{
    disrnn__rng a, b;
    double x[101], y[101];
    (void)state;
    disrnn__rng_seed(&a, 42);
    disrnn__rng_seed(&b, 42);
    disrnn__rng_normal(&a, x, 101);
    disrnn__rng_normal(&b, y, 101);
    assert_memory_equal(x, y, sizeof x);
    disrnn__rng_seed(&b, 43);
    disrnn__rng_normal(&b, y, 101);
    assert_true(memcmp(x, y, sizeof x) != 0);
}

static void test_rng_moments(void **state)
{
    disrnn__rng r;
    enum { n = 200000 };
    static double x[n];
    double m = 0, v = 0, u = 0;
    (void)state;
    disrnn__rng_seed(&r, 7);
    disrnn__rng_normal(&r, x, n);
    for (int i = 0; i < n; i++) m += x[i];
    m /= n;
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    v /= n;
    assert_true(m > -0.01 && m < 0.01);
    assert_true(v > 0.98 && v < 1.02);
    for (int i = 0; i < n; i++) {
        double w = disrnn__rng_uniform(&r);
        assert_true(w >= 0.0 && w < 1.0);
        u += w;
    }
    assert_true(u / n > 0.49 && u / n < 0.51);
    for (int i = 0; i < 1000; i++) assert_true(disrnn__rng_below(&r, 7) < 7);
}

static void test_rng_shuffle_is_permutation(void **state)
{
    disrnn__rng r;
    size_t a[50], seen[50] = {0};
    (void)state;
    for (size_t i = 0; i < 50; i++) a[i] = i;
    disrnn__rng_seed(&r, 3);
    disrnn__rng_shuffle(&r, a, 50);
    for (size_t i = 0; i < 50; i++) seen[a[i]]++;
    for (size_t i = 0; i < 50; i++) assert_int_equal(seen[i], 1);
}

static void test_size_arithmetic(void **state)
{
    size_t out;
    (void)state;
    assert_int_equal(disrnn__mul_size(SIZE_MAX / 2 + 1, 2, &out), -1);
    assert_int_equal(disrnn__mul_size(3, 5, &out), 0);
    assert_int_equal(out, 15);
    assert_int_equal(disrnn__add_size(SIZE_MAX, 1, &out), -1);
    assert_null(disrnn__calloc(disrnn__default_allocator(), SIZE_MAX / 4, 8));
}

/* The finite check every layer uses (the whole gradient each step): every kind of non-finite
 * value at every position, around the vector widths, and every kind of finite extreme. */
static void test_all_finite(void **state)
{
    const double bad[] = {INFINITY, -INFINITY, NAN, -NAN};
    const double good[] = {0.0, -0.0, DBL_MAX, -DBL_MAX, DBL_MIN, 4.9e-324, -4.9e-324, 1.0};
    double x[41] = {0};
    (void)state;
    assert_int_equal(disrnn__all_finite(x, 0, 1, 0), 1);
    for (size_t n = 1; n <= 41; n++) {
        for (size_t i = 0; i < n; i++) x[i] = good[i % 8];
        assert_int_equal(disrnn__all_finite(x, n, 1, n), 1);
        for (size_t pos = 0; pos < n; pos++)
            for (int k = 0; k < 4; k++) {
                x[pos] = bad[k];
                assert_int_equal(disrnn__all_finite(x, n, 1, n), 0);
                x[pos] = good[pos % 8];
            }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_status_strings),
        cmocka_unit_test(test_rng_reproducible),
        cmocka_unit_test(test_rng_moments),
        cmocka_unit_test(test_rng_shuffle_is_permutation),
        cmocka_unit_test(test_size_arithmetic),
        cmocka_unit_test(test_all_finite),
    };
    return cmocka_run_group_tests_name("foundation", tests, NULL, NULL);
}
