/* Fixed points of the latent map F(z) = B sigma(link(A z + c) / kappa) + d (L = 1, no input; for
 * the Gaussian identity link this is MODEL.md's z = B sigma(A z + c) + d), with the eigenvalues
 * of the Jacobian J_F = B diag(sigma'(v)) diag(link'(eta) / kappa) A at each.
 *
 * Damped Newton on G(z) = F(z) - z from seeded starts drawn uniformly in a box that contains every
 * fixed point when sigma is bounded, with a backtracking line search on ||G||; converged points
 * are deduplicated and sorted lexicographically so the output does not depend on which start
 * found which point. */
#include "analysis.h"
#include "blas.h"

#include <math.h>
#include <string.h>

#define MAX_NEWTON 200
#define DEDUP_REL 1e-6

static double link_deriv(int obs, double eta)
{
    switch (obs) {
    case DISRNN_OBS_GAUSSIAN_RELU: return eta > 0.0 ? 1.0 : 0.0;
    case DISRNN_OBS_POISSON_SOFTPLUS: return 1.0 / (1.0 + exp(-eta)); /* logistic */
    case DISRNN_OBS_POISSON_EXP: return exp(eta);
    default: return 1.0;
    }
}

static double sigma_deriv(int sigma, double v)
{
    switch (sigma) {
    case DISRNN_SIGMA_TANH: {
        const double t = tanh(v);
        return 1.0 - t * t;
    }
    case DISRNN_SIGMA_RELU: return v > 0.0 ? 1.0 : 0.0;
    default: return 1.0;
    }
}

typedef struct fp_ctx {
    const disrnn_model_t *m;
    size_t N, K;
    double *eta, *act, *dact; /* N each */
} fp_ctx;

/* G(z) = F(z) - z into gz; returns ||G||_2 (NaN/Inf when not finite). With jac non-NULL, also
 * J_F (K x K) into jac. */
static double residual(fp_ctx *c, const double *z, double *gz, double *jac)
{
    const disrnn_model_t *m = c->m;
    const size_t N = c->N, K = c->K;
    const double inv_kappa = 1.0 / m->spec.kappa;
    double nrm = 0.0;
    disrnn__an_decode_eta(m, 1, z, K, NULL, 0, c->eta, N);
    for (size_t n = 0; n < N; n++) {
        const double e = c->eta[n], v = disrnn__obs_mean(m->spec.obs, e) * inv_kappa;
        c->act[n] = disrnn__sigma(m->spec.sigma, v);
        c->dact[n] = sigma_deriv(m->spec.sigma, v) * link_deriv(m->spec.obs, e) * inv_kappa;
    }
    memcpy(gz, m->blk[DISRNN_BLOCK_BIAS_D], K * sizeof(double));
    disrnn__gemv(0, K, N, 1.0, m->blk[DISRNN_BLOCK_B], K, c->act, 1.0, gz);
    for (size_t k = 0; k < K; k++) {
        gz[k] -= z[k];
        nrm += gz[k] * gz[k];
    }
    if (jac) {
        /* J_F[k][j] = sum_n B[k][n] dact[n] A[n][j] */
        const double *A = m->blk[DISRNN_BLOCK_A], *B = m->blk[DISRNN_BLOCK_B];
        memset(jac, 0, K * K * sizeof(double));
        for (size_t n = 0; n < N; n++) {
            const double dn = c->dact[n];
            if (dn == 0.0) continue;
            for (size_t j = 0; j < K; j++) {
                const double a = dn * A[n + j * N];
                for (size_t k = 0; k < K; k++) jac[k + j * K] += B[k + n * K] * a;
            }
        }
    }
    return sqrt(nrm);
}

/* Lexicographic order of two K-vectors. */
static int lex_less(const double *a, const double *b, size_t K)
{
    for (size_t k = 0; k < K; k++) {
        if (a[k] < b[k]) return 1;
        if (a[k] > b[k]) return 0;
    }
    return 0;
}

/* Eigenvalues ordered by decreasing modulus, then real part, then imaginary part. */
static int eig_before(double ra, double ia, double rb, double ib)
{
    const double ma = hypot(ra, ia), mb = hypot(rb, ib);
    if (ma != mb) return ma > mb;
    if (ra != rb) return ra > rb;
    return ia > ib;
}

int disrnn_model_fixed_points(const disrnn_model_t *model, size_t n_starts, uint64_t seed, double tol,
                              size_t *n_found, double *z, double *eig_re, double *eig_im, size_t cap)
{
    const disrnn__allocator *al;
    fp_ctx c;
    disrnn__rng rng;
    size_t N, K, found = 0, nz, nwork;
    double *pts = NULL, *work = NULL, *box, *zc, *gz, *zt, *gt, *jac, *dz, *wr, *wi;
    disrnn__blasint *ipiv = NULL;
    int rc = DISRNN_OK;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    al = &model->base.al;
    N = model->spec.N;
    K = model->spec.K;
    if (!n_found || n_starts == 0 || !(tol > 0.0) || !isfinite(tol))
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG,
                            "disrnn_model_fixed_points: n_found must be non-NULL, n_starts >= 1 and tol a positive number.");
    if (model->spec.L != 1)
        return disrnn__fail(&model->base, DISRNN_ERR_UNSUPPORTED,
                            "disrnn_model_fixed_points: the latent map is defined for a kernel of length 1 (L = %zu).",
                            model->spec.L);
    if (disrnn__an_has_d(model))
        return disrnn__fail(&model->base, DISRNN_ERR_UNSUPPORTED,
                            "disrnn_model_fixed_points: a latent-space input D u has no input-free fixed point.");
    if (!disrnn__blas_fits(N, K, K * K))
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_fixed_points: sizes exceed BLAS integers.");
    if (disrnn__mul_size(n_starts, K, &nz) || disrnn__mul_size(K, K + 10, &nwork) || disrnn__add_size(nwork, 3 * N, &nwork) ||
        !(pts = disrnn__alloc_doubles(al, nz)) || !(work = disrnn__alloc_doubles(al, nwork)) ||
        !(ipiv = (disrnn__blasint *)disrnn__calloc(al, K, sizeof(disrnn__blasint)))) {
        rc = disrnn__fail(&model->base, DISRNN_ERR_NOMEM, "disrnn_model_fixed_points: out of memory for %zu starts.", n_starts);
        goto done;
    }
    c.m = model;
    c.N = N;
    c.K = K;
    c.eta = work;
    c.act = c.eta + N;
    c.dact = c.act + N;
    box = c.dact + N;
    zc = box + K;
    gz = zc + K;
    zt = gz + K;
    gt = zt + K;
    dz = gt + K;
    wr = dz + K;
    wi = wr + K;
    jac = wi + K; /* K x K; the LU overwrites it, and it is rebuilt at every iterate */
    {
        /* |z_k| <= sum_n |B_kn| max|sigma| + |d_k| for a bounded sigma (tanh, |sigma| <= 1); for
         * identity and relu no such bound exists and the scale of B and d sets the box. */
        const double *B = model->blk[DISRNN_BLOCK_B], *d = model->blk[DISRNN_BLOCK_BIAS_D];
        for (size_t k = 0; k < K; k++) {
            double b = fabs(d[k]);
            for (size_t n = 0; n < N; n++) b += fabs(B[k + n * K]);
            box[k] = model->spec.sigma == DISRNN_SIGMA_TANH ? b : 2.0 * b + 1.0;
        }
    }
    disrnn__rng_seed(&rng, seed);
    for (size_t st = 0; st < n_starts; st++) {
        double nrm;
        int ok = 0;
        for (size_t k = 0; k < K; k++) zc[k] = box[k] * (2.0 * disrnn__rng_uniform(&rng) - 1.0);
        nrm = residual(&c, zc, gz, jac);
        for (int it = 0; it < MAX_NEWTON && isfinite(nrm); it++) {
            double step = 1.0, nt;
            if (nrm < tol) {
                ok = 1;
                break;
            }
            /* (J_F - I) dz = -G */
            for (size_t k = 0; k < K; k++) {
                jac[k + k * K] -= 1.0;
                dz[k] = -gz[k];
            }
            if (disrnn__solve(K, 1, jac, K, ipiv, dz, K) != 0) break; /* singular: give up this start */
            for (;;) {
                for (size_t k = 0; k < K; k++) zt[k] = zc[k] + step * dz[k];
                nt = residual(&c, zt, gt, NULL);
                if (isfinite(nt) && nt <= (1.0 - 1e-4 * step) * nrm) break;
                step *= 0.5;
                if (step < 1e-12) break;
            }
            if (!(isfinite(nt) && nt < nrm)) {
                /* no decrease: at the attainable accuracy (rounding) or stuck */
                break;
            }
            memcpy(zc, zt, K * sizeof(double));
            nrm = residual(&c, zc, gz, jac);
        }
        if (!ok) continue;
        {
            double zn = 0.0;
            int dup = 0;
            for (size_t k = 0; k < K; k++) zn += zc[k] * zc[k];
            zn = sqrt(zn);
            for (size_t f = 0; f < found && !dup; f++) {
                double dd = 0.0;
                for (size_t k = 0; k < K; k++) dd += (pts[f * K + k] - zc[k]) * (pts[f * K + k] - zc[k]);
                dup = sqrt(dd) <= DEDUP_REL * (zn > 1.0 ? zn : 1.0);
            }
            if (!dup) memcpy(pts + (found++) * K, zc, K * sizeof(double));
        }
    }
    /* insertion sort: deterministic whatever order the starts found the points in */
    for (size_t i = 1; i < found; i++)
        for (size_t j = i; j > 0 && lex_less(pts + j * K, pts + (j - 1) * K, K); j--)
            for (size_t k = 0; k < K; k++) {
                const double t = pts[j * K + k];
                pts[j * K + k] = pts[(j - 1) * K + k];
                pts[(j - 1) * K + k] = t;
            }
    for (size_t f = 0; f < found && f < cap; f++) {
        if (z) memcpy(z + f * K, pts + f * K, K * sizeof(double));
        if (eig_re || eig_im) {
            residual(&c, pts + f * K, gz, jac);
            if (disrnn__eig(K, jac, K, wr, wi) != 0) {
                rc = disrnn__fail(&model->base, DISRNN_ERR_LAPACK,
                                  "disrnn_model_fixed_points: the eigenvalue routine failed at fixed point %zu.", f);
                goto done;
            }
            for (size_t i = 1; i < K; i++)
                for (size_t j = i; j > 0 && eig_before(wr[j], wi[j], wr[j - 1], wi[j - 1]); j--) {
                    double t = wr[j];
                    wr[j] = wr[j - 1];
                    wr[j - 1] = t;
                    t = wi[j];
                    wi[j] = wi[j - 1];
                    wi[j - 1] = t;
                }
            if (eig_re) memcpy(eig_re + f * K, wr, K * sizeof(double));
            if (eig_im) memcpy(eig_im + f * K, wi, K * sizeof(double));
        }
    }
    *n_found = found;
done:
    disrnn__free(al, ipiv);
    disrnn__free(al, work);
    disrnn__free(al, pts);
    return rc;
}
