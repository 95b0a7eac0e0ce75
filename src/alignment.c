/* Group-aligned latent R^2 (MODEL.md section 5): every (reference group a, fitted group b) pair is
 * scored by the R^2 of an affine least-squares map z_b -> ref_a; an exact assignment maximises the
 * total R^2; the overall score is the R^2 of the aligned latents, uniform over reference
 * dimensions. */
#include "analysis.h"
#include "blas.h"

#include <math.h>
#include <string.h>

/* Least-squares coefficients X C = Y for centred X (n x p) and Y (n x q), both overwritten; C
 * (p x q) is written to coef. QR (dgels) first; an exactly rank-deficient X (a constant fitted
 * dimension) makes dgels fail, and then the minimum-norm solution through the SVD is used. */
static int lstsq_coef(size_t n, size_t p, size_t q, double *x, double *y,
                      const double *x_orig, const double *y_orig, double *coef, double *work)
{
    int info = disrnn__lstsq(n, p, q, x, n, y, n);
    if (info < 0) return DISRNN_ERR_LAPACK;
    if (info == 0) {
        for (size_t j = 0; j < q; j++) memcpy(coef + j * p, y + j * n, p * sizeof(double));
        return DISRNN_OK;
    }
    {
        /* X = U S V^T; C = V S^+ U^T Y with singular values below n eps s_max dropped */
        double *s = work, *u = s + p, *vt = u + n * p, *uty = vt + p * p;
        double smax, cut;
        memcpy(x, x_orig, n * p * sizeof(double));
        if (disrnn__svd(n, p, x, n, s, u, n, vt, p) != 0) return DISRNN_ERR_LAPACK;
        smax = s[0];
        cut = smax * (double)n * 2.220446049250313e-16;
        disrnn__gemm(1, 0, p, q, n, 1.0, u, n, y_orig, n, 0.0, uty, p);
        for (size_t j = 0; j < q; j++)
            for (size_t i = 0; i < p; i++) uty[i + j * p] = s[i] > cut ? uty[i + j * p] / s[i] : 0.0;
        disrnn__gemm(1, 0, p, q, p, 1.0, vt, p, uty, p, 0.0, coef, p);
        return DISRNN_OK;
    }
}

static int sizes_ok(const size_t *sizes, size_t G, size_t *K, size_t *hmax)
{
    size_t tot = 0;
    *hmax = 0;
    if (!sizes || G == 0) return 0;
    for (size_t g = 0; g < G; g++) {
        if (sizes[g] == 0 || disrnn__add_size(tot, sizes[g], &tot)) return 0;
        if (sizes[g] > *hmax) *hmax = sizes[g];
    }
    *K = tot;
    return 1;
}

int disrnn_align_r2(size_t n, const double *ref, size_t ldref, const size_t *ref_groups, size_t n_ref_groups,
                    const double *fit, size_t ldfit, const size_t *fit_groups, size_t n_fit_groups,
                    double *r2, double *r2_matrix, size_t *assignment, double *aligned, size_t ldaligned)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    size_t Kr, Kf, hr, hf, last, nk, ncoef = 0, work_len;
    double *ref_c = NULL, *fit_c = NULL, *mr = NULL, *sst = NULL, *coef = NULL, *mat = NULL;
    double *xa = NULL, *ya = NULL, *work = NULL;
    size_t *rs = NULL, *fs = NULL, *coff = NULL, *asg = NULL;
    int rc = DISRNN_ERR_NOMEM;
    if (!ref || !fit || n == 0) return DISRNN_ERR_INVALID_ARG;
    if (!sizes_ok(ref_groups, n_ref_groups, &Kr, &hr) || !sizes_ok(fit_groups, n_fit_groups, &Kf, &hf))
        return DISRNN_ERR_INVALID_ARG;
    if (n_ref_groups > n_fit_groups || ldref < Kr || ldfit < Kf || (aligned && ldaligned < Kr)) return DISRNN_ERR_INVALID_ARG;
    /* an affine map from H_b dimensions needs more than H_b samples */
    if (n <= hr || n <= hf) return DISRNN_ERR_INVALID_ARG;
    if (disrnn__mul_size(n - 1, ldref, &last) || disrnn__add_size(last, Kr, &last) ||
        disrnn__mul_size(n - 1, ldfit, &last) || disrnn__add_size(last, Kf, &last) ||
        (aligned && (disrnn__mul_size(n - 1, ldaligned, &last) || disrnn__add_size(last, Kr, &last))))
        return DISRNN_ERR_INVALID_ARG;
    if (!disrnn__blas_fits(n, Kr, Kf)) return DISRNN_ERR_INVALID_ARG;
    if (!disrnn__all_finite(ref, Kr, n, ldref) || !disrnn__all_finite(fit, Kf, n, ldfit)) return DISRNN_ERR_INVALID_ARG;
    if (disrnn__mul_size(n, Kr > Kf ? Kr : Kf, &nk)) return DISRNN_ERR_INVALID_ARG;

    rs = (size_t *)disrnn__calloc(al, n_ref_groups + 1, sizeof(size_t));
    fs = (size_t *)disrnn__calloc(al, n_fit_groups + 1, sizeof(size_t));
    coff = (size_t *)disrnn__calloc(al, n_ref_groups * n_fit_groups + 1, sizeof(size_t));
    asg = (size_t *)disrnn__calloc(al, n_ref_groups, sizeof(size_t));
    if (!rs || !fs || !coff || !asg) goto done;
    for (size_t g = 0; g < n_ref_groups; g++) rs[g + 1] = rs[g] + ref_groups[g];
    for (size_t g = 0; g < n_fit_groups; g++) fs[g + 1] = fs[g] + fit_groups[g];
    for (size_t b = 0; b < n_fit_groups; b++)
        for (size_t a = 0; a < n_ref_groups; a++) {
            coff[a + b * n_ref_groups] = ncoef;
            ncoef += ref_groups[a] * fit_groups[b]; /* at most Kr * Kf in total */
        }
    /* SVD fallback workspace: s (hf), u (n hf), vt (hf^2), U^T Y (hf hr) */
    work_len = hf + n * hf + hf * hf + hf * hr;
    ref_c = disrnn__alloc_doubles(al, n * Kr);
    fit_c = disrnn__alloc_doubles(al, n * Kf);
    mr = disrnn__alloc_doubles(al, Kr);
    sst = disrnn__alloc_doubles(al, Kr);
    coef = disrnn__alloc_doubles(al, ncoef);
    mat = disrnn__alloc_doubles(al, n_ref_groups * n_fit_groups);
    xa = disrnn__alloc_doubles(al, n * hf);
    ya = disrnn__alloc_doubles(al, n * hr);
    work = disrnn__alloc_doubles(al, work_len);
    if (!ref_c || !fit_c || !mr || !sst || !coef || !mat || !xa || !ya || !work) goto done;

    /* Centred copies, dimension-major (n contiguous values per dimension, the layout LAPACK wants
     * for the n x H design matrices); centring makes the constant column implicit and the QR
     * better conditioned. */
    for (size_t k = 0; k < Kr; k++) {
        double m = 0.0, q = 0.0;
        for (size_t i = 0; i < n; i++) m += ref[k + i * ldref];
        m /= (double)n;
        for (size_t i = 0; i < n; i++) {
            const double v = ref[k + i * ldref] - m;
            ref_c[k * n + i] = v;
            q += v * v;
        }
        mr[k] = m;
        sst[k] = q;
        if (!(q > 0.0)) { rc = DISRNN_ERR_INVALID_ARG; goto done; } /* a constant reference has no R^2 */
    }
    for (size_t k = 0; k < Kf; k++) {
        double m = 0.0, q = 0.0, q0 = 0.0;
        for (size_t i = 0; i < n; i++) m += fit[k + i * ldfit];
        m /= (double)n;
        for (size_t i = 0; i < n; i++) {
            const double v = fit[k + i * ldfit] - m;
            fit_c[k * n + i] = v;
            q += v * v;
            q0 += fit[k + i * ldfit] * fit[k + i * ldfit];
        }
        /* A constant fitted dimension (a collapsed latent) leaves only rounding after centring;
         * zeroing it makes the rank deficiency exact, so the SVD fallback drops it instead of
         * QR fitting the rounding noise. */
        if (q <= 1e-24 * q0)
            for (size_t i = 0; i < n; i++) fit_c[k * n + i] = 0.0;
    }
    for (size_t b = 0; b < n_fit_groups; b++)
        for (size_t a = 0; a < n_ref_groups; a++) {
            const size_t p = fit_groups[b], q = ref_groups[a];
            const double *xb = fit_c + fs[b] * n, *ya_orig = ref_c + rs[a] * n;
            double *c = coef + coff[a + b * n_ref_groups], score = 0.0;
            memcpy(xa, xb, n * p * sizeof(double));
            memcpy(ya, ya_orig, n * q * sizeof(double));
            rc = lstsq_coef(n, p, q, xa, ya, xb, ya_orig, c, work);
            if (rc != DISRNN_OK) goto done;
            /* residuals from the coefficients, not from dgels's tail: the same formula serves the
             * SVD fallback and the aligned output */
            memcpy(ya, ya_orig, n * q * sizeof(double));
            disrnn__gemm(0, 0, n, q, p, -1.0, xb, n, c, p, 1.0, ya, n);
            for (size_t h = 0; h < q; h++) {
                double sse = 0.0;
                for (size_t i = 0; i < n; i++) sse += ya[h * n + i] * ya[h * n + i];
                score += 1.0 - sse / sst[rs[a] + h];
            }
            mat[a + b * n_ref_groups] = score / (double)q;
        }
    rc = disrnn__an_assign(al, n_ref_groups, n_fit_groups, mat, n_ref_groups, asg, NULL);
    if (rc != DISRNN_OK) goto done;
    {
        double tot = 0.0;
        for (size_t a = 0; a < n_ref_groups; a++) tot += (double)ref_groups[a] * mat[a + asg[a] * n_ref_groups];
        if (r2) *r2 = tot / (double)Kr;
    }
    if (r2_matrix) memcpy(r2_matrix, mat, n_ref_groups * n_fit_groups * sizeof(double));
    if (assignment) memcpy(assignment, asg, n_ref_groups * sizeof(size_t));
    if (aligned) {
        for (size_t a = 0; a < n_ref_groups; a++) {
            const size_t b = asg[a], p = fit_groups[b], q = ref_groups[a];
            const double *c = coef + coff[a + b * n_ref_groups], *xb = fit_c + fs[b] * n;
            /* aligned_a = mean(ref_a) + (z_b - mean(z_b)) C, written sample-major */
            disrnn__gemm(0, 0, n, q, p, 1.0, xb, n, c, p, 0.0, ya, n);
            for (size_t h = 0; h < q; h++)
                for (size_t i = 0; i < n; i++) aligned[rs[a] + h + i * ldaligned] = mr[rs[a] + h] + ya[h * n + i];
        }
    }
    rc = DISRNN_OK;
done:
    disrnn__free(al, work);
    disrnn__free(al, ya);
    disrnn__free(al, xa);
    disrnn__free(al, mat);
    disrnn__free(al, coef);
    disrnn__free(al, sst);
    disrnn__free(al, mr);
    disrnn__free(al, fit_c);
    disrnn__free(al, ref_c);
    disrnn__free(al, asg);
    disrnn__free(al, coff);
    disrnn__free(al, fs);
    disrnn__free(al, rs);
    return rc;
}
