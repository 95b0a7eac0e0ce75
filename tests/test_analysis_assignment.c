/* Exact maximum-weight assignment (Hungarian method) against brute force over every injective
 * map of rows to columns. */
#include "support.h"

#include <math.h>
#include <string.h>

#include "analysis.h"

/* |a - b| <= tol, printing both values when not (cmocka here has no double comparison). */
#define assert_near(a, b, tol) near_impl((a), (b), (tol), __FILE__, __LINE__)
static void near_impl(double a, double b, double tol, const char *file, int line)
{
    if (!(fabs(a - b) <= tol)) {
        print_error("%s:%d: %.17g and %.17g differ by more than %g\n", file, line, a, b, tol);
        fail();
    }
}

/* Best total over all injective maps rows -> cols, by depth-first enumeration. */
static void brute(size_t row, size_t rows, size_t cols, const double *w, size_t ld, int *used, double acc, double *best)
{
    if (row == rows) {
        if (acc > *best) *best = acc;
        return;
    }
    for (size_t j = 0; j < cols; j++) {
        if (used[j]) continue;
        used[j] = 1;
        brute(row + 1, rows, cols, w, ld, used, acc + w[row + j * ld], best);
        used[j] = 0;
    }
}

static void check_against_brute(size_t rows, size_t cols, const double *w, size_t ld)
{
    size_t asg[8];
    int used[8] = {0}, seen[8] = {0};
    double best = -INFINITY, total = NAN, sum = 0.0;
    assert_ok(disrnn_assignment_max(rows, cols, w, ld, asg, &total));
    brute(0, rows, cols, w, ld, used, 0.0, &best);
    for (size_t i = 0; i < rows; i++) {
        assert_true(asg[i] < cols);
        assert_int_equal(seen[asg[i]], 0); /* distinct columns */
        seen[asg[i]] = 1;
        sum += w[i + asg[i] * ld];
    }
    assert_near(total, sum, 1e-12);
    assert_near(total, best, 1e-9 * (1.0 + fabs(best)));
}

static void test_matches_brute_force(void **state)
{
    uint64_t rs = 2025;
    double w[7 * 9];
    (void)state;
    for (size_t rows = 1; rows <= 7; rows++)
        for (size_t cols = rows; cols <= 7; cols++)
            for (int seed = 0; seed < (rows + cols > 12 ? 8 : 40); seed++) {
                const size_t ld = rows + (size_t)(seed % 3); /* also exercise ld > rows */
                test_uniform(&rs, w, ld * cols, -1.0, 1.0);
                if (seed % 5 == 1) /* integer weights: many ties */
                    for (size_t i = 0; i < ld * cols; i++) w[i] = floor(3.0 * w[i]);
                if (seed % 5 == 2) /* R^2-like values in [0, 1] */
                    for (size_t i = 0; i < ld * cols; i++) w[i] = 0.5 * (w[i] + 1.0);
                check_against_brute(rows, cols, w, ld);
            }
}

static void test_known_case(void **state)
{
    /* rows: 0 1 2, cols 0..3 (column-major). Best: 0->3 (9), 1->0 (8), 2->2 (7) = 24. */
    const double w[12] = {1, 8, 2, /* col 0 */ 5, 6, 3, /* col 1 */ 4, 1, 7, /* col 2 */ 9, 7, 6};
    size_t asg[3];
    double total;
    (void)state;
    assert_ok(disrnn_assignment_max(3, 4, w, 3, asg, &total));
    assert_int_equal(asg[0], 3);
    assert_int_equal(asg[1], 0);
    assert_int_equal(asg[2], 2);
    assert_near(total, 24.0, 0.0);
    assert_ok(disrnn_assignment_max(3, 4, w, 3, asg, NULL)); /* total is optional */
}

static void test_huge_weights(void **state)
{
    /* weights near DBL_MAX would overflow potential differences without the exact rescaling */
    const double big = 1e307;
    const double w[4] = {big, -big, -big, big * 1.5};
    size_t asg[2];
    double total;
    (void)state;
    assert_ok(disrnn_assignment_max(2, 2, w, 2, asg, &total));
    assert_int_equal(asg[0], 0);
    assert_int_equal(asg[1], 1);
    assert_true(total > 2.4e307);
}

static void test_internal_allocator_failure(void **state)
{
    test_chaos chaos = {-1, 0, 0};
    disrnn__allocator al = {test_chaos_alloc, test_chaos_free, NULL};
    const double w[4] = {1, 2, 3, 4};
    size_t asg[2];
    (void)state;
    al.user_data = &chaos;
    for (long k = 0; k < 6; k++) {
        chaos.fail_at = k;
        chaos.count = 0;
        assert_status(disrnn__an_assign(&al, 2, 2, w, 2, asg, NULL), DISRNN_ERR_NOMEM);
        assert_int_equal(chaos.live, 0);
    }
    chaos.fail_at = -1;
    assert_ok(disrnn__an_assign(&al, 2, 2, w, 2, asg, NULL));
    assert_int_equal(chaos.live, 0);
    assert_int_equal(asg[0], 1); /* 2 + 3 = 5 beats 1 + 4 */
    assert_int_equal(asg[1], 0);
}

static void test_bad_inputs(void **state)
{
    double w[6] = {1, 2, 3, 4, 5, 6};
    size_t asg[3];
    (void)state;
    assert_status(disrnn_assignment_max(2, 3, NULL, 2, asg, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_assignment_max(2, 3, w, 2, NULL, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_assignment_max(0, 3, w, 2, asg, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_assignment_max(3, 2, w, 3, asg, NULL), DISRNN_ERR_INVALID_ARG); /* rows > cols */
    assert_status(disrnn_assignment_max(2, 3, w, 1, asg, NULL), DISRNN_ERR_INVALID_ARG); /* ld < rows */
    assert_status(disrnn_assignment_max(2, SIZE_MAX, w, 2, asg, NULL), DISRNN_ERR_INVALID_ARG);
    w[4] = NAN;
    assert_status(disrnn_assignment_max(2, 3, w, 2, asg, NULL), DISRNN_ERR_NONFINITE);
    w[4] = INFINITY;
    assert_status(disrnn_assignment_max(2, 3, w, 2, asg, NULL), DISRNN_ERR_NONFINITE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_brute_force),
        cmocka_unit_test(test_known_case),
        cmocka_unit_test(test_huge_weights),
        cmocka_unit_test(test_internal_allocator_failure),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
