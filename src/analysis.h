/* Private interface among the analysis files (latents.c, mixture_pc.c, alignment.c, assignment.c,
 * connectivity.c, generate.c, fixed_points.c). Not for other files. */
#ifndef DISRNN_ANALYSIS_H
#define DISRNN_ANALYSIS_H

#include "dataset.h"
#include "rng.h"

/* latents.c */

/** 1 when the model has a latent-space input term D u (P > 0 and D present). */
int disrnn__an_has_d(const disrnn_model_t *m);
/** 1 when the model has a neuron-space input term E u (P > 0 and E present). */
int disrnn__an_has_e(const disrnn_model_t *m);
/** mu = B h + d [+ D u] for S columns: h N x S (ld ldh), u P x S (ld ldu, ignored without D),
 *  mu K x S (ld ldmu). Sizes must already fit the BLAS integer type. */
void disrnn__an_encode(const disrnn_model_t *m, size_t S, const double *h, size_t ldh, const double *u, size_t ldu,
                       double *mu, size_t ldmu);
/** eta = A z + c [+ E u] for S columns: z K x S, u P x S, eta N x S. */
void disrnn__an_decode_eta(const disrnn_model_t *m, size_t S, const double *z, size_t ldz, const double *u,
                           size_t ldu, double *eta, size_t ldeta);
/** Posterior means (K x S, ld K) of already built samples, into a new array from al (NULL when S = 0
 *  or out of memory; *nomem tells which). */
double *disrnn__an_samples_mu(const disrnn_model_t *m, const disrnn__samples *s, const disrnn__allocator *al,
                              int *nomem);
/** log of the Poisson rate link(eta) for the two Poisson models, finite for every finite eta. */
double disrnn__an_log_rate(int obs, double eta);

/* mixture_pc.c */

/** PC and TC of the mixture (1/n) sum_j N(mu_j, diag s^2) with G groups given by G + 1 offsets
 *  (group_start), n_mc draws per point, seeded. force_log = 1 uses the slow log-domain path for
 *  every draw (kept for tests; the fast path falls back to it by itself when exponentials could
 *  leave the double range). Arguments must already be valid. Returns DISRNN_OK or NOMEM. */
int disrnn__an_mixture_pc(const disrnn__allocator *al, size_t K, const size_t *group_start, size_t G, size_t n,
                          const double *mu, size_t ldmu, const double *s, size_t n_mc, uint64_t seed,
                          int force_log, double *pc, double *tc);

/* assignment.c */

/** Maximum-weight assignment of rows to distinct columns (rows <= cols, finite weights, already
 *  validated), workspace from al. Returns DISRNN_OK or DISRNN_ERR_NOMEM. */
int disrnn__an_assign(const disrnn__allocator *al, size_t rows, size_t cols, const double *w, size_t ld,
                      size_t *assignment, double *total);

/* generate.c */

/** One exact Poisson draw with mean lam >= 0 (inversion below 10, Hormann's PTRS above). */
double disrnn__an_poisson(disrnn__rng *r, double lam);

#endif
