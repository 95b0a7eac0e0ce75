/* Private interface among objective.c (the loss and its gradient), observation.c (likelihood
 * terms) and penalty_pc.c (the importance-sampled group total correlation). Not for other files. */
#ifndef DISRNN_OBJECTIVE_INTERNAL_H
#define DISRNN_OBJECTIVE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "threads.h"

/* observation.c */

/** Negative log-likelihood of an N x M batch under observation model obs (a ::disrnn_obs),
 *  summed over observed entries (mask NULL = all observed) and multiplied by scale.
 *  eta (N x M, ld N) holds A z + c + E u on entry; when deta is non-NULL it receives
 *  scale * d nll / d eta (0 on masked entries; deta may alias eta). rho (N values) is used by the
 *  Gaussian models only; when drho is non-NULL it receives scale * d nll / d rho (N values,
 *  overwritten; Gaussian only). x must hold valid values on observed entries (finite; non-negative
 *  integers for Poisson); masked entries are never read. */
double disrnn__obs_nll(int obs, size_t N, size_t M, const double *x, size_t ldx, const uint8_t *mask,
                       size_t ldmask, const double *eta, const double *rho, double scale, double *deta,
                       double *drho);

/** Check the observed entries of x for observation model obs: 0 when valid, otherwise 1 for a
 *  non-finite value, 2 for a negative or non-integer Poisson count; *bad_row / *bad_col tell where. */
int disrnn__obs_check(int obs, size_t N, size_t M, const double *x, size_t ldx, const uint8_t *mask,
                      size_t ldmask, size_t *bad_row, size_t *bad_col);

/* penalty_pc.c */


/** Number of doubles of workspace disrnn__pc() needs for K latents, M samples and G groups
 *  (0 on overflow). */
size_t disrnn__pc_work_size(size_t K, size_t M, size_t G);

/** Importance-sampled group total correlation of MODEL.md section 4 on M >= 2 samples.
 *  mu, z: K x M (ld K); s, log_s: K values; groups: G + 1 offsets into 0..K (G >= 2);
 *  n_tot >= 1 weighs the off-diagonal mixture components; work: disrnn__pc_work_size(K, M, G)
 *  doubles. Returns PC_hat. When dz is non-NULL, dz (K x M), dmu (K x M) and dlog_s (K) receive
 *  the gradient of PC_hat w.r.t. z, mu (as mixture centres; the dependence of z on mu is the
 *  caller's chain rule) and log s (through the normal densities with z held fixed); all three
 *  are overwritten. The rows run in chunks fixed by M on pool (NULL: the calling thread), the
 *  same bits for any thread count. */
double disrnn__pc(size_t K, size_t M, const double *mu, const double *z, const double *s, const double *log_s,
                  size_t G, const size_t *group_start, double n_tot, double *work, double *dz, double *dmu,
                  double *dlog_s, disrnn__pool *pool);

/** The PC kernel's vector exponential on its own (for the tests): x[i] = 2^x[i] in place, within
 *  1 ulp of exp2 for x in [-1021, 0], 0 below, NaN propagated, with the instruction set isa
 *  (0 baseline, 1 AVX2 + FMA, 2 AVX-512). Returns 1, or 0 (x untouched) when this build or CPU
 *  lacks isa. */
int disrnn__pc_exp2(int isa, double *x, size_t n);

/* linear_kernels.c: the encoder and decoder products as fused vector kernels (K <= 16, CPUs with
 * AVX-512). Sample j of x or h is at base + cols[j] ld (base + j ld when cols is NULL); N channels
 * each. The work is cut into tasks run on pool (NULL: on the calling thread), the same bits for
 * any thread count. */

/** Whether the kernels below run here for K latents (1 <= K <= 16 and the CPU has AVX-512). */
int disrnn__lin_supports(size_t K);

/** Doubles of work space the kernels need (0 on overflow). */
size_t disrnn__lin_work_size(size_t N, size_t K, size_t M);

/** mu = B h (K x M, ld K; B is K x N, ld K). */
void disrnn__lin_enc_fwd(disrnn__pool *pool, size_t N, size_t K, size_t M, const double *B, const double *h,
                         size_t ldh, const size_t *cols, double *mu, double *work);

/** Decoder and Gaussian likelihood (identity link, no mask) with its gradients, in one pass:
 *  eta = A z + c (A: N x K, ld N; z: K x M, ld K), r = x - eta, q = r^2 inv_var, dETA = -scale r
 *  inv_var. qsum[n] = sum_j q_nj and dc[n] = sum_j dETA_nj (both overwritten). When dA is
 *  non-NULL: dA = dETA z^T (N x K, ld N, overwritten) and dz = A^T dETA (K x M, ld K). */
void disrnn__lin_dec_gauss(disrnn__pool *pool, size_t N, size_t K, size_t M, const double *A,
                           const double *z, const double *c, const double *inv_var, double scale, const double *x,
                           size_t ldx, const size_t *cols, double *qsum, double *dc, double *dA, double *dz,
                           double *work);

/** dB = dmu h^T (K x N, ld K, overwritten; dmu K x M, ld K). */
void disrnn__lin_enc_bwd(disrnn__pool *pool, size_t N, size_t K, size_t M, const double *dmu,
                         const double *h, size_t ldh, const size_t *cols, double *dB, double *work);

#endif
