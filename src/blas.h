/* The one place that knows how BLAS and LAPACKE are called. Every product and factorisation in
 * src/ goes through these wrappers, so the integer type (LP64 or ILP64) and the symbol names can
 * change with a Makefile variable without touching the numerical code, and no BLAS type reaches
 * the public header. Build with -DDISRNN_BLAS_ILP64 for a 64-bit-integer BLAS. */
#ifndef DISRNN_BLAS_H
#define DISRNN_BLAS_H

#include <stddef.h>

#include <cblas.h>
#include <lapacke.h>

#ifdef DISRNN_BLAS_ILP64
typedef long long disrnn__blasint;
#else
typedef int disrnn__blasint;
#endif

/** 1 when every size fits the BLAS integer type. */
int disrnn__blas_fits(size_t a, size_t b, size_t c);

/** Largest product (m n k multiply-adds) handed to BLAS in one call. OpenBLAS runs a product of
 *  m n k <= 65536 * GEMM_MULTITHREAD_THRESHOLD (4 by default) on the calling thread and splits
 *  larger ones among its threads, which changes the order of the sums (measured: results differ
 *  between OPENBLAS_NUM_THREADS=1 and 2 from m n k of about 350000). disrnn__gemm cuts every larger
 *  product into the same pieces of at most this size, so results do not depend on the thread
 *  count; at the library's skinny shapes (K of 4 to 16) the pieces also fit the caches better and
 *  the whole is faster than one call (measured on the S3 step: 1.10 ms against 1.45 ms). */
#define DISRNN__GEMM_PIECE 262144.0

/** C = alpha op(A) op(B) + beta C, column-major; trans flags 0/1. Sizes must pass disrnn__blas_fits.
 *  Bit-identical whatever the BLAS thread count (see DISRNN__GEMM_PIECE). */
void disrnn__gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha, const double *a,
                  size_t lda, const double *b, size_t ldb, double beta, double *c, size_t ldc);
/** y = alpha op(A) x + beta y. */
void disrnn__gemv(int trans_a, size_t m, size_t n, double alpha, const double *a, size_t lda, const double *x,
                  double beta, double *y);
/** Thin SVD of an m x n column-major matrix (overwritten): u m x min, s min, vt min x n.
 *  Returns 0, or the LAPACK info (non-zero) on failure. */
int disrnn__svd(size_t m, size_t n, double *a, size_t lda, double *s, double *u, size_t ldu, double *vt, size_t ldvt);
/** Least squares min ||A X - B|| for an m x n A (m >= n, overwritten) and m x nrhs B (overwritten;
 *  the first n rows hold X). Returns 0 or the LAPACK info. */
int disrnn__lstsq(size_t m, size_t n, size_t nrhs, double *a, size_t lda, double *b, size_t ldb);
/** Eigenvalues of a general n x n matrix (overwritten). Returns 0 or the LAPACK info. */
int disrnn__eig(size_t n, double *a, size_t lda, double *wr, double *wi);
/** Solve A X = B for a square n x n A (overwritten, LU); ipiv has n entries. Returns 0 or info. */
int disrnn__solve(size_t n, size_t nrhs, double *a, size_t lda, disrnn__blasint *ipiv, double *b, size_t ldb);

#endif
