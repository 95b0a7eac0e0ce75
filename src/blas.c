/* The BLAS/LAPACKE shim (see blas.h). */
#include "blas.h"

#include <limits.h>

#ifdef DISRNN_BLAS_ILP64
#define DISRNN__BLASINT_MAX LLONG_MAX
#else
#define DISRNN__BLASINT_MAX INT_MAX
#endif

int disrnn__blas_fits(size_t a, size_t b, size_t c)
{
    const size_t lim = (size_t)DISRNN__BLASINT_MAX;
    return a <= lim && b <= lim && c <= lim;
}

static disrnn__blasint bi(size_t v) { return (disrnn__blasint)v; }
static disrnn__blasint ld1(size_t v) { return (disrnn__blasint)(v ? v : 1); }

static void gemm_call(int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha, const double *a,
                      size_t lda, const double *b, size_t ldb, double beta, double *c, size_t ldc)
{
    cblas_dgemm(CblasColMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, bi(m),
                bi(n), bi(k), alpha, a, ld1(lda), b, ld1(ldb), beta, c, ld1(ldc));
}

void disrnn__gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha, const double *a,
                  size_t lda, const double *b, size_t ldb, double beta, double *c, size_t ldc)
{
    size_t pm, pn, pk, e;
    if (m == 0 || n == 0) return;
    if (k == 0 || (double)m * (double)n * (double)k <= DISRNN__GEMM_PIECE) {
        gemm_call(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    /* the inner dimension is cut only when one output element's sum alone is too long */
    pk = (double)k > DISRNN__GEMM_PIECE ? (size_t)DISRNN__GEMM_PIECE : k;
    e = (size_t)(DISRNN__GEMM_PIECE / (double)pk); /* output elements per piece, >= 1 */
    /* keep the smaller output dimension whole when possible, cut the larger */
    if (m >= n) {
        pn = n < e ? n : e;
        pm = e / pn < m ? e / pn : m;
    } else {
        pm = m < e ? m : e;
        pn = e / pm < n ? e / pm : n;
    }
    for (size_t j = 0; j < n; j += pn)
        for (size_t i = 0; i < m; i += pm)
            for (size_t l = 0; l < k; l += pk) {
                const size_t mm = m - i < pm ? m - i : pm, nn = n - j < pn ? n - j : pn, kk = k - l < pk ? k - l : pk;
                const double *ap = trans_a ? a + l + i * lda : a + i + l * lda;
                const double *bp = trans_b ? b + j + l * ldb : b + l + j * ldb;
                gemm_call(trans_a, trans_b, mm, nn, kk, alpha, ap, lda, bp, ldb, l == 0 ? beta : 1.0,
                          c + i + j * ldc, ldc);
            }
}

void disrnn__gemv(int trans_a, size_t m, size_t n, double alpha, const double *a, size_t lda, const double *x,
                  double beta, double *y)
{
    if (m == 0 || n == 0) return;
    cblas_dgemv(CblasColMajor, trans_a ? CblasTrans : CblasNoTrans, bi(m), bi(n), alpha, a, ld1(lda), x, 1, beta,
                y, 1);
}

int disrnn__svd(size_t m, size_t n, double *a, size_t lda, double *s, double *u, size_t ldu, double *vt, size_t ldvt)
{
    return (int)LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', bi(m), bi(n), a, ld1(lda), s, u, ld1(ldu), vt, ld1(ldvt));
}

int disrnn__lstsq(size_t m, size_t n, size_t nrhs, double *a, size_t lda, double *b, size_t ldb)
{
    return (int)LAPACKE_dgels(LAPACK_COL_MAJOR, 'N', bi(m), bi(n), bi(nrhs), a, ld1(lda), b, ld1(ldb));
}

int disrnn__eig(size_t n, double *a, size_t lda, double *wr, double *wi)
{
    return (int)LAPACKE_dgeev(LAPACK_COL_MAJOR, 'N', 'N', bi(n), a, ld1(lda), wr, wi, NULL, 1, NULL, 1);
}

int disrnn__solve(size_t n, size_t nrhs, double *a, size_t lda, disrnn__blasint *ipiv, double *b, size_t ldb)
{
    return (int)LAPACKE_dgesv(LAPACK_COL_MAJOR, bi(n), bi(nrhs), a, ld1(lda), (lapack_int *)ipiv, b, ld1(ldb));
}
