/* The fused encoder / decoder kernels of src/linear_kernels.c against plain loops, for every latent
 * count they take (1 to 16, padded internally to 4, 8, 12 or 16), channel counts around the
 * 8-channel tiles and the channel tasks, sample counts around the sample groups, samples read in
 * place or through scattered indices, on the calling thread and on pools; and the whole objective
 * with the kernels against its BLAS path. The kernels run on CPUs with AVX-512 only; elsewhere
 * these tests skip (the objective's other tests then cover the BLAS path). */
#include "support.h"

#include "model.h"
#include "objective_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shape {
    size_t N, K, M;
} shape;

/* |a - b| <= tol (1 + |b|), elementwise, with a message naming the first failure. */
static void assert_close(const char *what, const double *a, const double *b, size_t n, double tol, const shape *s)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= tol * (1.0 + fabs(b[i])))) {
            fprintf(stderr, "%s: N %zu K %zu M %zu, entry %zu: %.17g against %.17g\n", what, s->N, s->K, s->M, i,
                    a[i], b[i]);
            fail();
        }
}

static void skip_without_kernels(void)
{
    if (!disrnn__lin_supports(1)) {
        print_message("the fused kernels need AVX-512, which this CPU lacks: skipped\n");
        skip();
    }
}

/* A store of S samples (N values each) and M indices into it, scattered or consecutive. */
static void run_shape(const shape *s, int scattered, uint64_t *rs, disrnn__pool *pool)
{
    const size_t N = s->N, K = s->K, M = s->M, S = 2 * M + 3;
    double *store = malloc(N * S * sizeof(double)), *B = malloc(K * N * sizeof(double));
    double *A = malloc(N * K * sizeof(double)), *z = malloc(K * M * sizeof(double));
    double *c = malloc(N * sizeof(double)), *iv = malloc(N * sizeof(double));
    double *mu = malloc(K * M * sizeof(double)), *mu_ref = calloc(K * M, sizeof(double));
    double *qs = malloc(N * sizeof(double)), *dc = malloc(N * sizeof(double));
    double *qs_ref = calloc(N, sizeof(double)), *dc_ref = calloc(N, sizeof(double));
    double *dA = malloc(N * K * sizeof(double)), *dA_ref = calloc(N * K, sizeof(double));
    double *dz = malloc(K * M * sizeof(double)), *dz_ref = calloc(K * M, sizeof(double));
    double *dB = malloc(K * N * sizeof(double)), *dB_ref = calloc(K * N, sizeof(double));
    double *work = malloc(disrnn__lin_work_size(N, K, M) * sizeof(double));
    size_t *cols = malloc(M * sizeof(size_t));
    const double scale = 1.0 / (double)M;
    assert_true(store && B && A && z && c && iv && mu && mu_ref && qs && dc && qs_ref && dc_ref && dA && dA_ref &&
                dz && dz_ref && dB && dB_ref && work && cols);
    test_normal(rs, store, N * S);
    test_normal(rs, B, K * N);
    test_normal(rs, A, N * K);
    test_normal(rs, z, K * M);
    test_normal(rs, c, N);
    test_uniform(rs, iv, N, 0.5, 2.0);
    for (size_t j = 0; j < M; j++) cols[j] = scattered ? (7 * j + 3) % S : j;
    /* plain loops: mu = B h, the Gaussian pass, dA = dETA z^T, dz = A^T dETA, dB = dz h^T (z as dmu) */
    for (size_t j = 0; j < M; j++) {
        const double *xj = store + cols[j] * N;
        for (size_t n = 0; n < N; n++) {
            double eta = c[n], r, d;
            for (size_t k = 0; k < K; k++) {
                mu_ref[k + j * K] += B[k + n * K] * xj[n];
                eta += A[n + k * N] * z[k + j * K];
            }
            r = xj[n] - eta;
            d = -scale * r * iv[n];
            qs_ref[n] += r * r * iv[n];
            dc_ref[n] += d;
            for (size_t k = 0; k < K; k++) {
                dA_ref[n + k * N] += d * z[k + j * K];
                dz_ref[k + j * K] += A[n + k * N] * d;
                dB_ref[k + n * K] += z[k + j * K] * xj[n];
            }
        }
    }
    /* NaN-filled outputs: every value the kernels promise must be written */
    for (size_t i = 0; i < K * M; i++) mu[i] = dz[i] = NAN;
    for (size_t i = 0; i < N * K; i++) dA[i] = dB[i] = NAN;
    for (size_t i = 0; i < N; i++) qs[i] = dc[i] = NAN;
    disrnn__lin_enc_fwd(pool, N, K, M, B, store, N, scattered ? cols : NULL, mu, work);
    disrnn__lin_dec_gauss(pool, N, K, M, A, z, c, iv, scale, store, N, scattered ? cols : NULL, qs, dc, dA, dz, work);
    disrnn__lin_enc_bwd(pool, N, K, M, z, store, N, scattered ? cols : NULL, dB, work);
    assert_close("mu", mu, mu_ref, K * M, 1e-13, s);
    assert_close("qsum", qs, qs_ref, N, 1e-13, s);
    assert_close("dc", dc, dc_ref, N, 1e-13, s);
    assert_close("dA", dA, dA_ref, N * K, 1e-13, s);
    assert_close("dz", dz, dz_ref, K * M, 1e-13, s);
    assert_close("dB", dB, dB_ref, K * N, 1e-13, s);
    /* without a gradient only the sums are written, and they are the same bits */
    {
        double *qs2 = malloc(N * sizeof(double)), *dc2 = malloc(N * sizeof(double));
        assert_non_null(qs2);
        assert_non_null(dc2);
        disrnn__lin_dec_gauss(pool, N, K, M, A, z, c, iv, scale, store, N, scattered ? cols : NULL, qs2, dc2, NULL,
                              NULL, work);
        assert_memory_equal(qs2, qs, N * sizeof(double));
        assert_memory_equal(dc2, dc, N * sizeof(double));
        free(qs2);
        free(dc2);
    }
    free(store); free(B); free(A); free(z); free(c); free(iv); free(mu); free(mu_ref); free(qs); free(dc);
    free(qs_ref); free(dc_ref); free(dA); free(dA_ref); free(dz); free(dz_ref); free(dB); free(dB_ref);
    free(work); free(cols);
}

static void test_kernels_match_plain_loops(void **state)
{
    const size_t Ns[] = {1, 7, 8, 9, 23, 64, 154, 300};
    const size_t Ms[] = {1, 2, 15, 16, 17, 33, 40};
    uint64_t rs = 77;
    int runs = 0;
    (void)state;
    skip_without_kernels();
    for (size_t K = 1; K <= 16; K++)
        for (size_t a = 0; a < sizeof Ns / sizeof Ns[0]; a++) {
            const shape s = {Ns[a], K, Ms[(K + a) % (sizeof Ms / sizeof Ms[0])]};
            run_shape(&s, (int)((K + a) % 2), &rs, NULL);
            runs++;
        }
    printf("fused kernels: %d shapes agree with plain loops\n", runs);
}

/* Consecutive samples given as indices give the bits of the same samples read in place. */
static void test_indexed_equals_in_place(void **state)
{
    enum { N = 37, K = 12, M = 21 };
    double *store = malloc(N * M * 3 * sizeof(double)), *B = malloc(K * N * sizeof(double));
    double *mu1 = malloc(K * M * sizeof(double)), *mu2 = malloc(K * M * sizeof(double));
    double *dB1 = malloc(K * N * sizeof(double)), *dB2 = malloc(K * N * sizeof(double));
    double *z = malloc(K * M * sizeof(double)), *work = malloc(disrnn__lin_work_size(N, K, M) * sizeof(double));
    size_t cols[M];
    uint64_t rs = 3;
    disrnn__pool *pool = NULL;
    (void)state;
    skip_without_kernels();
    assert_true(store && B && mu1 && mu2 && dB1 && dB2 && z && work);
    test_normal(&rs, store, N * M * 3);
    test_normal(&rs, B, K * N);
    test_normal(&rs, z, K * M);
    for (size_t j = 0; j < M; j++) cols[j] = M + j; /* consecutive, given as indices */
    disrnn__lin_enc_fwd(pool, N, K, M, B, store + M * N, N, NULL, mu1, work);
    disrnn__lin_enc_fwd(pool, N, K, M, B, store, N, cols, mu2, work);
    assert_memory_equal(mu1, mu2, K * M * sizeof(double));
    disrnn__lin_enc_bwd(pool, N, K, M, z, store + M * N, N, NULL, dB1, work);
    disrnn__lin_enc_bwd(pool, N, K, M, z, store, N, cols, dB2, work);
    assert_memory_equal(dB1, dB2, K * N * sizeof(double));
    assert_false(disrnn__lin_supports(0));
    assert_false(disrnn__lin_supports(17));
    free(store); free(B); free(mu1); free(mu2); free(dB1); free(dB2); free(z); free(work);
}

/* Every kernel on a pool of 2 or 3 threads gives the bits of the calling thread alone, for shapes
 * with several channel tasks (N > 256) and several sample tasks. */
static void test_pool_same_bits(void **state)
{
    const size_t Ns[] = {300, 1001}, Ks[] = {3, 9, 16}, M = 37;
    uint64_t rs = 5;
    (void)state;
    skip_without_kernels();
    for (size_t threads = 2; threads <= 3; threads++) {
        disrnn__pool *pool = disrnn__pool_create(disrnn__default_allocator(), threads);
        assert_non_null(pool);
        assert_int_equal(disrnn__pool_threads(pool), threads);
        for (size_t a = 0; a < 2; a++)
            for (size_t b = 0; b < 3; b++) {
                const size_t N = Ns[a], K = Ks[b], S = 2 * M;
                double *store = malloc(N * S * sizeof(double)), *B = malloc(K * N * sizeof(double));
                double *A = malloc(N * K * sizeof(double)), *z = malloc(K * M * sizeof(double));
                double *c = malloc(N * sizeof(double)), *iv = malloc(N * sizeof(double));
                double *out[2][6], *work = malloc(disrnn__lin_work_size(N, K, M) * sizeof(double));
                size_t cols[37];
                assert_true(store && B && A && z && c && iv && work);
                test_normal(&rs, store, N * S);
                test_normal(&rs, B, K * N);
                test_normal(&rs, A, N * K);
                test_normal(&rs, z, K * M);
                test_normal(&rs, c, N);
                test_uniform(&rs, iv, N, 0.5, 2.0);
                for (size_t j = 0; j < M; j++) cols[j] = (5 * j + 1) % S;
                for (int r = 0; r < 2; r++) {
                    disrnn__pool *p = r ? pool : NULL;
                    out[r][0] = malloc(K * M * sizeof(double)); /* mu */
                    out[r][1] = malloc(N * sizeof(double));     /* qsum */
                    out[r][2] = malloc(N * sizeof(double));     /* dc */
                    out[r][3] = malloc(N * K * sizeof(double)); /* dA */
                    out[r][4] = malloc(K * M * sizeof(double)); /* dz */
                    out[r][5] = malloc(K * N * sizeof(double)); /* dB */
                    for (int i = 0; i < 6; i++) assert_non_null(out[r][i]);
                    disrnn__lin_enc_fwd(p, N, K, M, B, store, N, cols, out[r][0], work);
                    disrnn__lin_dec_gauss(p, N, K, M, A, z, c, iv, 0.1, store, N, cols, out[r][1], out[r][2],
                                          out[r][3], out[r][4], work);
                    disrnn__lin_enc_bwd(p, N, K, M, z, store, N, cols, out[r][5], work);
                }
                assert_memory_equal(out[0][0], out[1][0], K * M * sizeof(double));
                assert_memory_equal(out[0][1], out[1][1], N * sizeof(double));
                assert_memory_equal(out[0][2], out[1][2], N * sizeof(double));
                assert_memory_equal(out[0][3], out[1][3], N * K * sizeof(double));
                assert_memory_equal(out[0][4], out[1][4], K * M * sizeof(double));
                assert_memory_equal(out[0][5], out[1][5], K * N * sizeof(double));
                for (int r = 0; r < 2; r++)
                    for (int i = 0; i < 6; i++) free(out[r][i]);
                free(store); free(B); free(A); free(z); free(c); free(iv); free(work);
            }
        disrnn__pool_free(pool);
    }
    /* a pool of one thread is no pool; runs without one go in order on the caller */
    assert_null(disrnn__pool_create(disrnn__default_allocator(), 1));
    assert_int_equal(disrnn__pool_threads(NULL), 1);
}

/* The objective through the kernels and through its BLAS path (the one CPUs without AVX-512
 * take): the same loss terms and gradient to rounding, for Gaussian models of several sizes. */
static void test_objective_paths_agree(void **state)
{
    const size_t Ns[] = {5, 154, 700}, Ks[] = {1, 4, 6, 12, 16};
    uint64_t rs = 9;
    (void)state;
    skip_without_kernels();
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 5; b++) {
            const size_t N = Ns[a], K = Ks[b], M = 33;
            const size_t groups2[2] = {K / 2, K - K / 2};
            disrnn_config_t *cfg = NULL;
            disrnn_model_t *m = NULL;
            double *x = malloc(N * M * sizeof(double)), *h = malloc(N * M * sizeof(double));
            double *eps = malloc(K * M * sizeof(double)), t1[5], t2[5], *g1, *g2;
            size_t np;
            const shape s = {N, K, M};
            assert_true(x && h && eps);
            test_normal(&rs, x, N * M);
            test_uniform(&rs, h, N * M, -1.0, 1.0);
            test_normal(&rs, eps, K * M);
            assert_ok(disrnn_config_create(&cfg, N, K));
            if (K >= 2) assert_ok(disrnn_config_set_groups(cfg, groups2, 2));
            assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, 2.0));
            assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_ALPHA, 0.5));
            assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_N_TOT, 500.0));
            assert_ok(disrnn_config_set_seed(cfg, 3 + a + b));
            assert_ok(disrnn_model_create(&m, cfg));
            disrnn_config_free(cfg);
            np = disrnn_model_num_params(m);
            g1 = malloc(np * sizeof(double));
            g2 = malloc(np * sizeof(double));
            assert_true(g1 && g2);
            assert_ok(disrnn_model_loss(m, M, x, N, h, N, NULL, 0, NULL, 0, eps, K, t1, 5, g1, np));
            m->blas_only = 1;
            assert_ok(disrnn_model_loss(m, M, x, N, h, N, NULL, 0, NULL, 0, eps, K, t2, 5, g2, np));
            assert_close("terms", t1, t2, 5, 1e-12, &s);
            assert_close("gradient", g1, g2, np, 1e-11, &s);
            free(x); free(h); free(eps); free(g1); free(g2);
            disrnn_model_free(m);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_match_plain_loops),
        cmocka_unit_test(test_indexed_equals_in_place),
        cmocka_unit_test(test_pool_same_bits),
        cmocka_unit_test(test_objective_paths_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
