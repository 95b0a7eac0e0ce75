/* Connectivity of a fitted model (W = A B, the sub-circuits W_g, J = B A, b = A d + c), its SVD
 * ("LINT") view and comparisons between connectivities (MODEL.md section 5). */
#include "analysis.h"
#include "blas.h"

#include <math.h>
#include <string.h>

int disrnn_model_connectivity(const disrnn_model_t *model, int what, size_t group, double *out, size_t len)
{
    size_t N, K, need;
    const double *A, *B;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    N = model->spec.N;
    K = model->spec.K;
    A = model->blk[DISRNN_BLOCK_A];
    B = model->blk[DISRNN_BLOCK_B];
    if (!out) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_connectivity: out is NULL.");
    switch (what) {
    case DISRNN_CONN_W:
    case DISRNN_CONN_W_GROUP:
        if (disrnn__mul_size(N, N, &need))
            return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_connectivity: N x N overflows.");
        break;
    case DISRNN_CONN_J: need = K * K; break; /* K x K fits: B (K x N) is allocated */
    case DISRNN_CONN_BIAS: need = N; break;
    default:
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_connectivity: unknown matrix %d.", what);
    }
    if (what == DISRNN_CONN_W_GROUP && group >= model->spec.G)
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG,
                            "disrnn_model_connectivity: group %zu does not exist (the model has %zu groups).", group,
                            model->spec.G);
    if (len < need)
        return disrnn__fail(&model->base, DISRNN_ERR_BUFFER_TOO_SMALL,
                            "disrnn_model_connectivity: out has room for %zu values, %zu are needed.", len, need);
    if (!disrnn__blas_fits(N, K, 1))
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_connectivity: sizes exceed BLAS integers.");
    switch (what) {
    case DISRNN_CONN_W: disrnn__gemm(0, 0, N, N, K, 1.0, A, N, B, K, 0.0, out, N); break;
    case DISRNN_CONN_W_GROUP: {
        const size_t g0 = model->spec.group_start[group], H = model->spec.groups[group];
        disrnn__gemm(0, 0, N, N, H, 1.0, A + g0 * N, N, B + g0, K, 0.0, out, N);
        break;
    }
    case DISRNN_CONN_J: disrnn__gemm(0, 0, K, K, N, 1.0, B, K, A, N, 0.0, out, K); break;
    default:
        memcpy(out, model->blk[DISRNN_BLOCK_BIAS_C], N * sizeof(double));
        disrnn__gemv(0, N, K, 1.0, A, N, model->blk[DISRNN_BLOCK_BIAS_D], 1.0, out);
        break;
    }
    return DISRNN_OK;
}

/* Thin SVD of an m x n copy; u (m x r), s (r), vt (r x n) with r = min(m, n). */
static int svd_copy(const disrnn__allocator *al, size_t m, size_t n, const double *a, size_t lda, double *s,
                    double *u, double *vt)
{
    double *w = disrnn__alloc_doubles(al, m * n);
    int info;
    if (!w) return DISRNN_ERR_NOMEM;
    for (size_t j = 0; j < n; j++) memcpy(w + j * m, a + j * lda, m * sizeof(double));
    info = disrnn__svd(m, n, w, m, s, u, m, vt, m < n ? m : n);
    disrnn__free(al, w);
    return info == 0 ? DISRNN_OK : DISRNN_ERR_LAPACK;
}

int disrnn_model_svd(const disrnn_model_t *model, size_t group, double *left, double *right, double *sv, size_t rank_cap)
{
    const disrnn__allocator *al;
    size_t N, K, H, g0, r0;
    double *ws = NULL;
    int rc;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    al = &model->base.al;
    N = model->spec.N;
    K = model->spec.K;
    if (group == SIZE_MAX) {
        g0 = 0;
        H = K;
    } else if (group < model->spec.G) {
        g0 = model->spec.group_start[group];
        H = model->spec.groups[group];
    } else {
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG,
                            "disrnn_model_svd: group %zu does not exist (the model has %zu groups; SIZE_MAX for W).",
                            group, model->spec.G);
    }
    if (rank_cap < H)
        return disrnn__fail(&model->base, DISRNN_ERR_BUFFER_TOO_SMALL,
                            "disrnn_model_svd: rank_cap = %zu is below the rank %zu of the factors.", rank_cap, H);
    if (!disrnn__blas_fits(N, K, 1))
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_svd: sizes exceed BLAS integers.");
    /* W_g = A_g B_g is never formed (N x N can be large): with A_g = Ua Sa Va^T and
     * B_g^T = Ub Sb Vb^T, W_g = Ua (Sa Va^T Vb Sb) Ub^T, and the SVD of the small r0 x r0 core
     * C = Uc Sc Vc^T gives W_g = (Ua Uc) Sc (Ub Vc)^T, in O(N H^2). */
    r0 = N < H ? N : H;
    {
        size_t need = 0, t;
        /* Ua, Ub: N r0; sa, sb, sc: r0; Vat, Vbt: r0 H; C, Uc, Vct: r0^2; Bt copy: N H */
        int bad = disrnn__mul_size(N, r0, &t) || disrnn__add_size(need, 2 * t, &need);
        bad = bad || disrnn__mul_size(r0, H, &t) || disrnn__add_size(need, 2 * t, &need);
        bad = bad || disrnn__mul_size(r0, r0, &t) || disrnn__add_size(need, 3 * t + 3 * r0, &need);
        bad = bad || disrnn__mul_size(N, H, &t) || disrnn__add_size(need, t, &need);
        if (bad || !(ws = disrnn__alloc_doubles(al, need)))
            return disrnn__fail(&model->base, DISRNN_ERR_NOMEM, "disrnn_model_svd: out of memory.");
    }
    {
        double *ua = ws, *ub = ua + N * r0, *sa = ub + N * r0, *sb = sa + r0, *sc = sb + r0;
        double *vat = sc + r0, *vbt = vat + r0 * H, *c = vbt + r0 * H, *uc = c + r0 * r0, *vct = uc + r0 * r0;
        double *bt = vct + r0 * r0;
        const double *A = model->blk[DISRNN_BLOCK_A] + g0 * N, *B = model->blk[DISRNN_BLOCK_B] + g0;
        for (size_t n = 0; n < N; n++)
            for (size_t h = 0; h < H; h++) bt[n + h * N] = B[h + n * K];
        rc = svd_copy(al, N, H, A, N, sa, ua, vat);
        if (rc == DISRNN_OK) rc = svd_copy(al, N, H, bt, N, sb, ub, vbt);
        if (rc == DISRNN_OK) {
            /* C = diag(sa) Vat Vbt^T diag(sb) */
            disrnn__gemm(0, 1, r0, r0, H, 1.0, vat, r0, vbt, r0, 0.0, c, r0);
            for (size_t j = 0; j < r0; j++)
                for (size_t i = 0; i < r0; i++) c[i + j * r0] *= sa[i] * sb[j];
            rc = svd_copy(al, r0, r0, c, r0, sc, uc, vct);
        }
        if (rc == DISRNN_OK) {
            /* U = Ua Uc (into ua's space via c), V^T = Vc^T Ub^T; fix signs so the largest-magnitude
             * entry of each left vector is positive, making the factors reproducible across LAPACKs. */
            double *U = bt; /* the copy of B_g^T is no longer needed and holds N x H >= N x r0 */
            disrnn__gemm(0, 0, N, r0, r0, 1.0, ua, N, uc, r0, 0.0, U, N);
            disrnn__gemm(0, 1, r0, N, r0, 1.0, vct, r0, ub, N, 0.0, ua, r0); /* ua now holds V^T, r0 x N */
            for (size_t k = 0; k < r0; k++) {
                size_t imax = 0;
                double sgn;
                for (size_t n = 1; n < N; n++)
                    if (fabs(U[n + k * N]) > fabs(U[imax + k * N])) imax = n;
                sgn = U[imax + k * N] < 0.0 ? -1.0 : 1.0;
                if (left)
                    for (size_t n = 0; n < N; n++) left[n + k * N] = sgn * sc[k] * U[n + k * N];
                if (right)
                    for (size_t n = 0; n < N; n++) right[k + n * H] = sgn * ua[k + n * r0];
                if (sv) sv[k] = sc[k];
            }
            /* rank H exceeds N only when K > N: the extra singular values are 0 */
            for (size_t k = r0; k < H; k++) {
                if (left) memset(left + k * N, 0, N * sizeof(double));
                if (right)
                    for (size_t n = 0; n < N; n++) right[k + n * H] = 0.0;
                if (sv) sv[k] = 0.0;
            }
        }
    }
    disrnn__free(al, ws);
    if (rc == DISRNN_ERR_NOMEM) return disrnn__fail(&model->base, rc, "disrnn_model_svd: out of memory.");
    if (rc != DISRNN_OK) return disrnn__fail(&model->base, rc, "disrnn_model_svd: the LAPACK SVD did not converge.");
    return DISRNN_OK;
}

/* Mean, and sqrt of the sum of squared deviations, of n values. */
static void center_stats(size_t n, const double *a, double *mean, double *norm)
{
    double s = 0.0, q = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i];
    s /= (double)n;
    for (size_t i = 0; i < n; i++) q += (a[i] - s) * (a[i] - s);
    *mean = s;
    *norm = sqrt(q);
}

static double pearson(size_t n, const double *a, double ma, double na, const double *b, double mb, double nb)
{
    double c = 0.0;
    if (na == 0.0 || nb == 0.0) return NAN;
    for (size_t i = 0; i < n; i++) c += (a[i] - ma) * (b[i] - mb);
    return c / (na * nb);
}

int disrnn_compare_matrices(size_t n, const double *a, const double *b, double *out, size_t len)
{
    double ma, mb, na, nb, sse = 0.0, sae = 0.0;
    if (!a || !b || !out || n < 2) return DISRNN_ERR_INVALID_ARG;
    if (len < DISRNN_CMP_MAE + 1) return DISRNN_ERR_BUFFER_TOO_SMALL;
    if (!disrnn__all_finite(a, n, 1, n) || !disrnn__all_finite(b, n, 1, n)) return DISRNN_ERR_INVALID_ARG;
    center_stats(n, a, &ma, &na);
    center_stats(n, b, &mb, &nb);
    for (size_t i = 0; i < n; i++) {
        const double e = a[i] - b[i];
        sse += e * e;
        sae += fabs(e);
    }
    out[DISRNN_CMP_CORR] = pearson(n, a, ma, na, b, mb, nb);
    out[DISRNN_CMP_RMSE] = sqrt(sse / (double)n);
    out[DISRNN_CMP_R2] = na > 0.0 ? 1.0 - sse / (na * na) : NAN;
    out[DISRNN_CMP_MAE] = sae / (double)n;
    return DISRNN_OK;
}

int disrnn_compare_grouped(size_t n_obs, size_t n_a, const double *a, size_t n_b, const double *b,
                           size_t *assignment, double *corr, double *mean_corr)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    size_t nn, tot, ma, mb;
    double *stats = NULL, *cm = NULL;
    size_t *asg = NULL;
    int rc;
    if (!a || !b || n_obs == 0 || n_a == 0 || n_b < n_a) return DISRNN_ERR_INVALID_ARG;
    if (disrnn__mul_size(n_obs, n_obs, &nn) || nn < 2 || disrnn__mul_size(nn, n_a, &ma) ||
        disrnn__mul_size(nn, n_b, &mb) || disrnn__mul_size(n_a, n_b, &tot) || tot > SIZE_MAX / 2 ||
        n_b > SIZE_MAX / 4)
        return DISRNN_ERR_INVALID_ARG;
    if (!disrnn__all_finite(a, ma, 1, ma) || !disrnn__all_finite(b, mb, 1, mb)) return DISRNN_ERR_INVALID_ARG;
    stats = disrnn__alloc_doubles(al, 2 * (n_a + n_b));
    cm = disrnn__alloc_doubles(al, 2 * tot);
    asg = (size_t *)disrnn__calloc(al, n_a, sizeof(size_t));
    if (!stats || !cm || !asg) {
        rc = DISRNN_ERR_NOMEM;
        goto done;
    }
    for (size_t g = 0; g < n_a; g++) center_stats(nn, a + g * nn, stats + 2 * g, stats + 2 * g + 1);
    for (size_t g = 0; g < n_b; g++) center_stats(nn, b + g * nn, stats + 2 * (n_a + g), stats + 2 * (n_a + g) + 1);
    {
        double *w = cm + tot, sum = 0.0;
        for (size_t gb = 0; gb < n_b; gb++)
            for (size_t ga = 0; ga < n_a; ga++) {
                const double *sa = stats + 2 * ga, *sb = stats + 2 * (n_a + gb);
                const double r = pearson(nn, a + ga * nn, sa[0], sa[1], b + gb * nn, sb[0], sb[1]);
                cm[ga + gb * n_a] = r;
                /* a constant matrix has no correlation: any defined one is preferred when matching */
                w[ga + gb * n_a] = isnan(r) ? -2.0 : r;
            }
        rc = disrnn__an_assign(al, n_a, n_b, w, n_a, asg, NULL);
        if (rc != DISRNN_OK) goto done;
        for (size_t ga = 0; ga < n_a; ga++) {
            const double r = cm[ga + asg[ga] * n_a];
            if (assignment) assignment[ga] = asg[ga];
            if (corr) corr[ga] = r;
            sum += r;
        }
        if (mean_corr) *mean_corr = sum / (double)n_a;
    }
    rc = DISRNN_OK;
done:
    disrnn__free(al, asg);
    disrnn__free(al, cm);
    disrnn__free(al, stats);
    return rc;
}
