/* Connectivity: W, W_g, J, b against direct sums over the parameters; the SVD ("LINT") view
 * reconstructs W and every W_g and agrees with the singular values of the explicit matrices. */
#include "support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "blas.h"

#define assert_near(a, b, tol) near_impl((a), (b), (tol), __FILE__, __LINE__)
static void near_impl(double a, double b, double tol, const char *file, int line)
{
    if (!(fabs(a - b) <= tol)) {
        print_error("%s:%d: %.17g and %.17g differ by more than %g\n", file, line, a, b, tol);
        fail();
    }
}

static disrnn_model_t *make_model(size_t N, size_t K, const size_t *groups, size_t G, uint64_t seed)
{
    disrnn_config_t *c = NULL;
    disrnn_model_t *m = NULL;
    assert_ok(disrnn_config_create(&c, N, K));
    if (groups) assert_ok(disrnn_config_set_groups(c, groups, G));
    assert_ok(disrnn_config_set_seed(c, seed));
    assert_ok(disrnn_model_create(&m, c));
    disrnn_config_free(c);
    return m;
}

static void get_block(const disrnn_model_t *m, int b, double *out, size_t n)
{
    assert_ok(disrnn_model_get_param(m, b, out, n));
}

static void test_matrices_match_sums(void **state)
{
    const size_t N = 7, K = 5, groups[3] = {2, 1, 2}, start[4] = {0, 2, 3, 5};
    disrnn_model_t *m = make_model(N, K, groups, 3, 3);
    double A[35], B[35], c[7], d[5], W[49], Wg[49], sum[49] = {0}, J[25], b[7];
    (void)state;
    get_block(m, DISRNN_BLOCK_A, A, N * K);
    get_block(m, DISRNN_BLOCK_B, B, N * K);
    get_block(m, DISRNN_BLOCK_BIAS_C, c, N);
    get_block(m, DISRNN_BLOCK_BIAS_D, d, K);
    assert_ok(disrnn_model_connectivity(m, DISRNN_CONN_W, 0, W, 49));
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            double w = 0.0;
            for (size_t k = 0; k < K; k++) w += A[i + k * N] * B[k + j * K];
            assert_near(W[i + j * N], w, 1e-14);
        }
    for (size_t g = 0; g < 3; g++) {
        assert_ok(disrnn_model_connectivity(m, DISRNN_CONN_W_GROUP, g, Wg, 49));
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < N; j++) {
                double w = 0.0;
                for (size_t k = start[g]; k < start[g + 1]; k++) w += A[i + k * N] * B[k + j * K];
                assert_near(Wg[i + j * N], w, 1e-14);
                sum[i + j * N] += Wg[i + j * N];
            }
    }
    for (size_t i = 0; i < N * N; i++) assert_near(sum[i], W[i], 1e-14); /* W = sum_g W_g */
    assert_ok(disrnn_model_connectivity(m, DISRNN_CONN_J, 99, J, 25)); /* group ignored */
    for (size_t i = 0; i < K; i++)
        for (size_t j = 0; j < K; j++) {
            double v = 0.0;
            for (size_t n = 0; n < N; n++) v += B[i + n * K] * A[n + j * N];
            assert_near(J[i + j * K], v, 1e-14);
        }
    assert_ok(disrnn_model_connectivity(m, DISRNN_CONN_BIAS, 0, b, 7));
    for (size_t i = 0; i < N; i++) {
        double v = c[i];
        for (size_t k = 0; k < K; k++) v += A[i + k * N] * d[k];
        assert_near(b[i], v, 1e-14);
    }
    disrnn_model_free(m);
}

static void test_connectivity_bad_inputs(void **state)
{
    disrnn_model_t *m = make_model(4, 2, NULL, 0, 1);
    double out[16];
    (void)state;
    out[0] = 42.0;
    assert_status(disrnn_model_connectivity(m, DISRNN_CONN_W, 0, out, 15), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_true(out[0] == 42.0);
    assert_true(strlen(disrnn_model_last_error(m)) > 0);
    assert_status(disrnn_model_connectivity(m, DISRNN_CONN_J, 0, out, 3), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_status(disrnn_model_connectivity(m, DISRNN_CONN_BIAS, 0, out, 3), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_status(disrnn_model_connectivity(m, DISRNN_CONN_W_GROUP, 1, out, 16), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_connectivity(m, 4, 0, out, 16), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_connectivity(m, -1, 0, out, 16), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_connectivity(m, DISRNN_CONN_W, 0, NULL, 16), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_connectivity(NULL, DISRNN_CONN_W, 0, out, 16), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_svd(m, 1, out, out, out, 4), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_svd(m, SIZE_MAX, out, out, out, 1), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_status(disrnn_model_svd(NULL, SIZE_MAX, out, out, out, 4), DISRNN_ERR_INVALID_ARG);
    disrnn_model_free(m);
}

/* Singular values of an explicit N x N matrix via the library's LAPACK wrapper (descending). */
static void explicit_sv(size_t N, const double *W, double *s)
{
    double *a = malloc(N * N * sizeof(double)), *u = malloc(N * N * sizeof(double)), *vt = malloc(N * N * sizeof(double));
    memcpy(a, W, N * N * sizeof(double));
    assert_int_equal(disrnn__svd(N, N, a, N, s, u, N, vt, N), 0);
    free(vt);
    free(u);
    free(a);
}

static void check_svd(const disrnn_model_t *m, size_t N, size_t group, size_t r, const double *W)
{
    double left[64 * 8], right[8 * 64], sv[8], full_sv[64], rec;
    assert_ok(disrnn_model_svd(m, group, left, right, sv, 8));
    explicit_sv(N, W, full_sv);
    for (size_t k = 0; k < r; k++) {
        assert_near(sv[k], full_sv[k], 1e-12 * (1.0 + full_sv[0]));
        if (k > 0) assert_true(sv[k] <= sv[k - 1]);
    }
    for (size_t k = r; k < N; k++) assert_near(full_sv[k], 0.0, 1e-12 * (1.0 + full_sv[0])); /* rank r */
    /* left * right == W */
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            rec = 0.0;
            for (size_t k = 0; k < r; k++) rec += left[i + k * N] * right[k + j * r];
            assert_near(rec, W[i + j * N], 1e-10);
        }
    /* right has orthonormal rows (V^T); left's columns are orthogonal with norms sv */
    for (size_t a = 0; a < r; a++)
        for (size_t b = 0; b < r; b++) {
            double vv = 0.0, uu = 0.0;
            for (size_t n = 0; n < N; n++) {
                vv += right[a + n * r] * right[b + n * r];
                uu += left[n + a * N] * left[n + b * N];
            }
            assert_near(vv, a == b ? 1.0 : 0.0, 1e-12);
            assert_near(uu, a == b ? sv[a] * sv[a] : 0.0, 1e-10 * (1.0 + sv[0] * sv[0]));
        }
    /* sign convention: the largest-magnitude entry of each left column is positive */
    for (size_t k = 0; k < r; k++) {
        size_t imax = 0;
        for (size_t n = 1; n < N; n++)
            if (fabs(left[n + k * N]) > fabs(left[imax + k * N])) imax = n;
        assert_true(left[imax + k * N] > 0.0);
    }
}

static void test_svd_reconstructs(void **state)
{
    const size_t N = 9, K = 6, groups[3] = {3, 1, 2};
    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        disrnn_model_t *m = make_model(N, K, groups, 3, seed);
        double W[81], A[54];
        uint64_t rs = seed;
        /* scale up A so that entries are O(1) and the check is not trivially small */
        get_block(m, DISRNN_BLOCK_A, A, N * K);
        test_uniform(&rs, A, N * K, -2.0, 2.0);
        assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_A, A, N * K));
        assert_ok(disrnn_model_connectivity(m, DISRNN_CONN_W, 0, W, 81));
        check_svd(m, N, SIZE_MAX, K, W);
        for (size_t g = 0; g < 3; g++) {
            assert_ok(disrnn_model_connectivity(m, DISRNN_CONN_W_GROUP, g, W, 81));
            check_svd(m, N, g, groups[g], W);
        }
        {
            double sv[8];
            assert_ok(disrnn_model_svd(m, 0, NULL, NULL, sv, 3)); /* outputs optional */
            assert_ok(disrnn_model_svd(m, 0, NULL, NULL, NULL, 3));
        }
        disrnn_model_free(m);
    }
}

static void test_svd_more_latents_than_channels(void **state)
{
    /* K > N: W has rank N; the extra factors are zero and the product still equals W */
    disrnn_model_t *m = make_model(3, 5, NULL, 0, 4);
    double W[9], left[3 * 5], right[5 * 3], sv[5];
    (void)state;
    assert_ok(disrnn_model_connectivity(m, DISRNN_CONN_W, 0, W, 9));
    assert_ok(disrnn_model_svd(m, SIZE_MAX, left, right, sv, 5));
    assert_true(sv[3] == 0.0 && sv[4] == 0.0);
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 3; j++) {
            double rec = 0.0;
            for (size_t k = 0; k < 5; k++) rec += left[i + k * 3] * right[k + j * 5];
            assert_near(rec, W[i + j * 3], 1e-12);
        }
    disrnn_model_free(m);
}

static void test_svd_allocation_failure(void **state)
{
    disrnn_config_t *c = NULL;
    disrnn_model_t *m = NULL;
    test_chaos chaos = {-1, 0, 0};
    double left[6 * 3], right[3 * 6], sv[3];
    int ok = 0;
    (void)state;
    assert_ok(disrnn_config_create(&c, 6, 3));
    assert_ok(disrnn_model_create_with_allocator(&m, c, test_chaos_alloc, test_chaos_free, &chaos));
    for (long k = 0; k < 20 && !ok; k++) {
        const long live = chaos.live;
        int rc;
        chaos.fail_at = k;
        chaos.count = 0;
        rc = disrnn_model_svd(m, SIZE_MAX, left, right, sv, 3);
        assert_true(rc == DISRNN_OK || rc == DISRNN_ERR_NOMEM);
        assert_int_equal(chaos.live, live);
        ok = rc == DISRNN_OK;
    }
    assert_true(ok);
    chaos.fail_at = -1;
    disrnn_model_free(m);
    disrnn_config_free(c);
    assert_int_equal(chaos.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrices_match_sums),
        cmocka_unit_test(test_connectivity_bad_inputs),
        cmocka_unit_test(test_svd_reconstructs),
        cmocka_unit_test(test_svd_more_latents_than_channels),
        cmocka_unit_test(test_svd_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
