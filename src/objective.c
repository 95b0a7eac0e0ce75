/* The DisRNN objective and its exact gradient (MODEL.md sections 2 and 4).
 *
 * Forward, for M samples in columns:
 *   MU = B H + d + D U,  Z = MU + s .* EPS,  ETA = A Z + c + E U,
 *   loss = NLL(X | ETA) / M + KL / M + beta PC_hat(MU, Z, s) + alpha BD(B A).
 * Backward is the chain rule in reverse: dETA (from the observation model) gives dA, dc, dE and
 * dZ = A^T dETA; the PC penalty adds its own dZ and mixture-centre dMU; dMU = dZ + MU / M + ...
 * gives dB, dd, dD; log s collects dZ .* s .* EPS plus the KL and PC direct terms. */
#include "model.h"
#include "objective_internal.h"

#include "blas.h"

#include <math.h>
#include <string.h>

/* Buffers of one loss evaluation, sized for up to M samples, carved from one allocation so that
 * evaluations at or below that M allocate nothing. Without the fused kernels (linear_kernels.c)
 * the encoder and the common Gaussian path work on groups of R samples (blk_cols()), so their
 * N x M intermediates shrink to N x R buffers that are reused for every group and stay in cache
 * (R = 0 where the kernels run: they need none); the other observation models keep a whole
 * N x M eta. */
struct disrnn__objws {
    size_t M, N, K, P, G, R;
    size_t eta_cap;                        /* doubles in eta: N x R, or N x M when full */
    double *buf;
    double *mu, *z, *eps, *dz, *dmu;       /* K x M */
    double *pc_dz, *pc_dmu, *pc_dlog_s;    /* PC gradient pieces (K x M, K x M, K) */
    double *eta;                           /* N x M or N x R: eta, then dETA after the NLL */
    double *hb;                            /* N x R: a group of gathered encoder inputs */
    double *s, *log_s;                     /* K */
    double *J;                             /* K x K: B A, then dBD/dJ */
    double *inv_var, *qsum, *dc_tmp;       /* N: exp(-2 rho), sum_j q_nj, dc without a gradient */
    double *pc_work;                       /* disrnn__pc_work_size(K, M, G) */
    double *lin_work;                      /* disrnn__lin_work_size(N, K, M), or NULL */
};

int disrnn_num_terms(void) { return DISRNN__NUM_TERMS; }

void disrnn__objws_free(const disrnn__allocator *al, struct disrnn__objws *ws)
{
    if (!ws) return;
    disrnn__free(al, ws->buf);
    disrnn__free(al, ws);
}

/* Samples per group: one group's products (N x R x K multiply-adds) are single deterministic
 * GEMM pieces when N K allows, and its N x R buffers stay in the L2 cache. Whole samples (columns
 * of N contiguous values) are the unit, so a scattered minibatch is read as long sequential runs
 * the hardware prefetcher follows. A multiple of 4 when R >= 8. */
static size_t blk_cols(size_t N, size_t K, size_t M)
{
    size_t nb = (size_t)(DISRNN__GEMM_PIECE / ((double)(N ? N : 1) * (double)(K ? K : 1)));
    nb = nb >= 8 ? nb / 4 * 4 : (nb ? nb : 1);
    return nb < M ? nb : (M ? M : 1);
}

/* Total doubles for the buffers above (0 on overflow). */
static size_t ws_size(size_t N, size_t K, size_t M, size_t G, size_t R, size_t eta_n)
{
    size_t km, rm, kk, pcw, lw, n = 0;
    if (disrnn__mul_size(K, M, &km) || disrnn__mul_size(N, R, &rm) || disrnn__mul_size(K, K, &kk)) return 0;
    pcw = G > 1 ? disrnn__pc_work_size(K, M, G) : 0;
    if (G > 1 && pcw == 0) return 0;
    lw = disrnn__lin_supports(K) ? disrnn__lin_work_size(N, K, M) : 0;
    if (disrnn__lin_supports(K) && (lw == 0 || disrnn__add_size(pcw, lw, &pcw))) return 0;
    if (disrnn__mul_size(km, 7, &n) || disrnn__add_size(n, eta_n, &n) || disrnn__add_size(n, rm, &n) ||
        disrnn__add_size(n, 3 * K, &n) || disrnn__add_size(n, kk, &n) || disrnn__add_size(n, pcw, &n) ||
        N > SIZE_MAX / 4 || disrnn__add_size(n, 3 * N, &n))
        return 0;
    return n;
}

/* Make m->ws fit M samples, with a whole N x M eta when full. The old workspace is released only
 * after the new one exists, so a failure leaves the model as it was. */
static int ws_ensure(disrnn_model_t *m, size_t M, int full)
{
    const disrnn__spec *sp = &m->spec;
    struct disrnn__objws *ws = m->ws, *nw;
    /* the BLAS path's N x R group buffers only where that path runs */
    const size_t R = !m->blas_only && disrnn__lin_supports(sp->K) ? 0 : blk_cols(sp->N, sp->K, M);
    size_t total, km, eta_n;
    double *p;
    if (disrnn__mul_size(sp->N, full ? M : R, &eta_n))
        return disrnn__fail(&m->base, DISRNN_ERR_NOMEM, "The loss workspace for %zu samples is too large.", M);
    if (ws && ws->M >= M && ws->N == sp->N && ws->K == sp->K && ws->P == sp->P && ws->G == sp->G &&
        ws->R >= R && ws->eta_cap >= eta_n)
        return DISRNN_OK;
    /* a workspace that had a whole eta keeps one, so alternating paths do not reallocate */
    if (!full && ws && ws->N == sp->N && ws->eta_cap >= ws->N * ws->M &&
        disrnn__mul_size(sp->N, M, &eta_n))
        return disrnn__fail(&m->base, DISRNN_ERR_NOMEM, "The loss workspace for %zu samples is too large.", M);
    total = ws_size(sp->N, sp->K, M, sp->G, R, eta_n);
    if (total == 0)
        return disrnn__fail(&m->base, DISRNN_ERR_NOMEM, "The loss workspace for %zu samples is too large.", M);
    nw = (struct disrnn__objws *)disrnn__calloc(&m->base.al, 1, sizeof *nw);
    if (!nw) return disrnn__fail(&m->base, DISRNN_ERR_NOMEM, "Out of memory allocating the loss workspace.");
    nw->buf = disrnn__alloc_doubles(&m->base.al, total);
    if (!nw->buf) {
        disrnn__free(&m->base.al, nw);
        return disrnn__fail(&m->base, DISRNN_ERR_NOMEM,
                            "Out of memory allocating the loss workspace for %zu samples.", M);
    }
    nw->M = M;
    nw->N = sp->N;
    nw->K = sp->K;
    nw->P = sp->P;
    nw->G = sp->G;
    nw->R = R;
    nw->eta_cap = eta_n;
    km = sp->K * M;
    p = nw->buf;
    nw->mu = p; p += km;
    nw->z = p; p += km;
    nw->eps = p; p += km;
    nw->dz = p; p += km;
    nw->dmu = p; p += km;
    nw->pc_dz = p; p += km;
    nw->pc_dmu = p; p += km;
    nw->eta = p; p += eta_n;
    nw->hb = p; p += sp->N * R;
    nw->pc_dlog_s = p; p += sp->K;
    nw->s = p; p += sp->K;
    nw->log_s = p; p += sp->K;
    nw->J = p; p += sp->K * sp->K;
    nw->inv_var = p; p += sp->N;
    nw->qsum = p; p += sp->N;
    nw->dc_tmp = p; p += sp->N;
    nw->pc_work = p;
    p += sp->G > 1 ? disrnn__pc_work_size(sp->K, M, sp->G) : 0;
    nw->lin_work = disrnn__lin_supports(sp->K) ? p : NULL;
    disrnn__objws_free(&m->base.al, ws);
    m->ws = nw;
    return DISRNN_OK;
}

/* Add v[r] to every column of the rows x M matrix a (ld rows). */
static void add_col(double *a, size_t rows, size_t M, const double *v)
{
    for (size_t j = 0; j < M; j++)
        for (size_t r = 0; r < rows; r++) a[r + j * rows] += v[r];
}

/* out[r] = sum over columns of the rows x M matrix a (ld rows). */
static void row_sums(const double *a, size_t rows, size_t M, double *out)
{
    for (size_t r = 0; r < rows; r++) out[r] = 0.0;
    for (size_t j = 0; j < M; j++)
        for (size_t r = 0; r < rows; r++) out[r] += a[r + j * rows];
}

/* A scattered minibatch is read sample by sample; the next sample's run of values is requested
 * while the current one is used, one cache line per line consumed, so the loads find their data
 * in cache without the hardware prefetcher first having to detect each new stream. */
#define PF_RUN 64
#if defined(__GNUC__)
static inline void prefetch_run(const double *p, size_t n)
{
    for (size_t i = 0; i < n; i += 8) __builtin_prefetch(p + i, 0, 3);
}
#else
static inline void prefetch_run(const double *p, size_t n)
{
    (void)p;
    (void)n;
}
#endif

/* The Gaussian likelihood with identity link and no mask, the common case, on M samples of nb
 * channels in one contiguous pass (disrnn__obs_nll walks the batch row by row, which strides
 * through memory at large N). Column j of x is at x + cols[j] ldx (x + j ldx when cols is NULL), so
 * a minibatch is read where it lies in the sample store. eta (ld lde) holds A z on entry (the bias
 * c is added here) and scale * dNLL/deta on exit; sum_j (x - eta)^2 / sigma_n^2 is added to
 * qsum[n] and the sum of dNLL/deta over the samples to dc[n] (the bias gradient), so a batch can be
 * taken in groups of samples. The loop over channels is contiguous and vectorised, with the widest
 * vectors the CPU has. This is the path of CPUs without AVX-512 and of more than 16 latents; the
 * others take disrnn__lin_dec_gauss. */
/* No clones under ThreadSanitizer: their ifunc resolver runs before the sanitizer's runtime. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("vect-cost-model=dynamic")))
#endif
static void gauss_block(size_t nb, size_t M, const double *restrict x, size_t ldx, const size_t *cols,
                          double *restrict eta, size_t lde, const double *restrict c, const double *restrict inv_var,
                          double scale, double *restrict qsum, double *restrict dc)
{
    for (size_t j = 0; j < M; j++) {
        const double *xj = x + (cols ? cols[j] : j) * ldx;
        const double *xn = j + 1 < M ? x + (cols ? cols[j + 1] : j + 1) * ldx : xj;
        double *ej = eta + j * lde;
        for (size_t n0 = 0; n0 < nb; n0 += PF_RUN) {
            const size_t n1 = nb - n0 < PF_RUN ? nb : n0 + PF_RUN;
            prefetch_run(xn + n0, n1 - n0);
            for (size_t n = n0; n < n1; n++) {
                const double r = xj[n] - (ej[n] + c[n]);
                const double w = r * inv_var[n];
                const double d = -scale * w;
                qsum[n] += r * w;
                ej[n] = d;
                dc[n] += d;
            }
        }
    }
}

/* 1 when latents a and b are in different groups (an off-block entry of J). */
static int off_block(const disrnn__spec *sp, size_t a, size_t b)
{
    size_t ga = 0, gb = 0;
    while (a >= sp->group_start[ga + 1]) ga++;
    while (b >= sp->group_start[gb + 1]) gb++;
    return ga != gb;
}

/* Block-diagonal penalty: mean over the K x K entries of (Moff .* J)^2, J = B A. With want_grad,
 * J is left holding scale * dBD/dJ (scale = alpha), ready for the two products of the chain rule. */
static double block_penalty(const disrnn_model_t *m, double *J, double scale, int want_grad)
{
    const disrnn__spec *sp = &m->spec;
    const size_t K = sp->K;
    const double inv = 1.0 / ((double)K * (double)K);
    double acc = 0.0;
    disrnn__gemm(0, 0, K, K, sp->N, 1.0, m->blk[DISRNN_BLOCK_B], K, m->blk[DISRNN_BLOCK_A], sp->N, 0.0, J, K);
    for (size_t b = 0; b < K; b++)
        for (size_t a = 0; a < K; a++) {
            double *v = J + a + b * K;
            if (off_block(sp, a, b)) {
                acc += *v * *v;
                if (want_grad) *v *= 2.0 * inv * scale;
            } else if (want_grad) {
                *v = 0.0;
            }
        }
    return acc * inv;
}

/* sum of v[i]^2 in four interleaved partial sums (a fixed order; four times fewer dependent
 * additions than one running sum). */
static double sum_squares(const double *v, size_t n)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += v[i] * v[i];
        s1 += v[i + 1] * v[i + 1];
        s2 += v[i + 2] * v[i + 2];
        s3 += v[i + 3] * v[i + 3];
    }
    for (; i < n; i++) s0 += v[i] * v[i];
    return (s0 + s1) + (s2 + s3);
}

/* Whether the loss can read a minibatch through column indices (disrnn__loss with cols): the
 * Gaussian identity-link path without a mask, known inputs or a neuron-space input matrix. */
static int fast_gauss_model(const disrnn_model_t *m)
{
    const disrnn__spec *sp = &m->spec;
    /* c is always learned (the bias block has no fixed mode), so its gradient slot exists */
    return sp->obs == DISRNN_OBS_GAUSSIAN && m->learned[DISRNN_BLOCK_BIAS_C] && m->blk[DISRNN_BLOCK_E] == NULL;
}

int disrnn__loss_takes_cols(const disrnn_model_t *m) { return fast_gauss_model(m) && m->spec.P == 0; }

/* Samples [j0, j0 + nc) of h (N values each; sample j at h + col(j) ldh) as an N x nc matrix:
 * the columns themselves when they are consecutive, else copies in buf (ld N). */
static const double *h_cols(const double *h, size_t ldh, const size_t *cols, size_t N, size_t j0, size_t nc,
                            double *buf, size_t *ld)
{
    if (!cols) {
        *ld = ldh;
        return h + j0 * ldh;
    }
    for (size_t j = 0; j < nc; j++) {
        const double *src = h + cols[j0 + j] * ldh;
        const double *next = j + 1 < nc ? h + cols[j0 + j + 1] * ldh : src;
        for (size_t n0 = 0; n0 < N; n0 += PF_RUN) {
            const size_t len = N - n0 < PF_RUN ? N - n0 : PF_RUN;
            prefetch_run(next + n0, len);
            memcpy(buf + j * N + n0, src + n0, len * sizeof(double));
        }
    }
    *ld = N;
    return buf;
}

int disrnn__loss(disrnn_model_t *m, disrnn__pool *pool, size_t M, const double *x, size_t ldx, const double *h,
                 size_t ldh, const size_t *cols, const double *u, size_t ldu, const uint8_t *mask, size_t ldmask,
                 const double *eps, size_t ldeps, double *terms, double *grad, int check_grad)
{
    const disrnn__spec *sp = &m->spec;
    const size_t N = sp->N, K = sp->K, P = sp->P, G = sp->G;
    const double beta = sp->beta, alpha = sp->alpha, n_tot = disrnn__model_n_tot(m);
    const double inv_m = 1.0 / (double)M;
    const int has_e = m->blk[DISRNN_BLOCK_E] != NULL, has_d = m->blk[DISRNN_BLOCK_D] != NULL;
    /* PC is reported whenever it can be estimated; its gradient is needed only when beta > 0. */
    const int pc_on = G > 1 && M >= 2 && n_tot > 0.0;
    const int pc_grad = grad != NULL && pc_on && beta > 0.0;
    const disrnn__rng saved_rng = m->rng;
    const int fast_gauss = mask == NULL && fast_gauss_model(m);
    const int lin = !m->blas_only && disrnn__lin_supports(K);
    struct disrnn__objws *ws;
    size_t R;
    double nll, kl = 0.0, pc = 0.0, bd = 0.0, t[DISRNN__NUM_TERMS];
    int st;

    if (sp->std_mode == DISRNN_STD_SCOTT && !(n_tot > 0.0))
        return disrnn__fail(&m->base, DISRNN_ERR_BAD_STATE,
                            "The encoder std follows Scott's rule but N_tot is unset; set DISRNN_OPT_N_TOT "
                            "(a trainer sets it to the number of training samples).");
    if (beta > 0.0 && G > 1 && !(n_tot > 0.0))
        return disrnn__fail(&m->base, DISRNN_ERR_BAD_STATE,
                            "The PC penalty (beta > 0, %zu groups) needs N_tot; set DISRNN_OPT_N_TOT "
                            "(a trainer sets it to the number of training samples).", G);
    if (beta > 0.0 && G > 1 && M < 2)
        return disrnn__fail(&m->base, DISRNN_ERR_INVALID_ARG,
                            "The PC estimator needs M >= 2 samples when beta > 0 and G > 1 (got M = %zu).", M);
    if (cols && (!fast_gauss || P > 0))
        return disrnn__fail(&m->base, DISRNN_ERR_INVALID_ARG,
                            "Indexed columns need the Gaussian model without mask or known inputs.");
    if ((st = ws_ensure(m, M, !fast_gauss)) != DISRNN_OK) return st;
    ws = m->ws;
    R = blk_cols(N, K, M);

    for (size_t k = 0; k < K; k++) {
        ws->log_s[k] = m->blk[DISRNN_BLOCK_LOG_S][k];
        ws->s[k] = disrnn__model_s(m, k);
    }
    if (!eps) {
        disrnn__rng_normal(&m->rng, ws->eps, K * M);
        eps = ws->eps;
        ldeps = K;
    }

    /* encoder: MU = B H + d (+ D U); Z = MU + s .* EPS. Up to 16 latents through the fused
     * kernels; otherwise BLAS in groups of R samples (a gathered group stays in cache; the same
     * groups with or without cols, so the same bits) */
    if (lin) {
        disrnn__lin_enc_fwd(pool, N, K, M, m->blk[DISRNN_BLOCK_B], h, ldh, cols, ws->mu, ws->lin_work);
    } else {
        for (size_t j0 = 0; j0 < M; j0 += R) {
            const size_t nc = M - j0 < R ? M - j0 : R;
            size_t ldb;
            const double *hp = h_cols(h, ldh, cols, N, j0, nc, ws->hb, &ldb);
            disrnn__gemm(0, 0, K, nc, N, 1.0, m->blk[DISRNN_BLOCK_B], K, hp, ldb, 0.0, ws->mu + j0 * K, K);
        }
    }
    add_col(ws->mu, K, M, m->blk[DISRNN_BLOCK_BIAS_D]);
    if (has_d) disrnn__gemm(0, 0, K, M, P, 1.0, m->blk[DISRNN_BLOCK_D], K, u, ldu, 1.0, ws->mu, K);
    for (size_t j = 0; j < M; j++)
        for (size_t k = 0; k < K; k++) ws->z[k + j * K] = ws->mu[k + j * K] + ws->s[k] * eps[k + j * ldeps];

    /* every learned block's gradient is written below (no clearing pass over grad first) */
    if (fast_gauss) {
        /* Decoder, likelihood and decoder gradients fused, in blocks of channels small enough
         * that a block of eta stays in cache between the product, the likelihood pass and the
         * two gradient products (and that every product is one deterministic piece):
         * NLL = (1/M) sum_nj [ln(2 pi)/2 + rho_n + q_nj / 2], q = (x - eta)^2 exp(-2 rho). */
        const double *rho = m->blk[DISRNN_BLOCK_RHO], *A = m->blk[DISRNN_BLOCK_A];
        const double *c = m->blk[DISRNN_BLOCK_BIAS_C];
        double *dc = grad ? grad + m->off[DISRNN_BLOCK_BIAS_C] : ws->dc_tmp;
        double rho_sum = 0.0, qtot = 0.0;
        for (size_t n = 0; n < N; n++) {
            ws->inv_var[n] = exp(-2.0 * rho[n]);
            rho_sum += rho[n];
        }
        if (lin) {
            disrnn__lin_dec_gauss(pool, N, K, M, A, ws->z, c, ws->inv_var, inv_m, x, ldx, cols, ws->qsum, dc,
                                  grad ? grad + m->off[DISRNN_BLOCK_A] : NULL, ws->dz, ws->lin_work);
        } else {
        for (size_t n = 0; n < N; n++) ws->qsum[n] = dc[n] = 0.0;
        for (size_t j0 = 0; j0 < M; j0 += R) {
            const size_t nc = M - j0 < R ? M - j0 : R;
            double *eb = ws->eta; /* N x nc, reused for every group */
            const double *zg = ws->z + j0 * K;
            disrnn__gemm(0, 0, N, nc, K, 1.0, A, N, zg, K, 0.0, eb, N);
            gauss_block(N, nc, cols ? x : x + j0 * ldx, ldx, cols ? cols + j0 : NULL, eb, N, c, ws->inv_var, inv_m,
                        ws->qsum, dc);
            if (grad) {
                disrnn__gemm(0, 1, N, K, nc, 1.0, eb, N, zg, K, j0 ? 1.0 : 0.0, grad + m->off[DISRNN_BLOCK_A], N);
                disrnn__gemm(1, 0, K, nc, N, 1.0, A, N, eb, N, 0.0, ws->dz + j0 * K, K);
            }
        }
        }
        for (size_t n = 0; n < N; n++) qtot += ws->qsum[n];
        nll = (double)N * 0.91893853320467274178 + rho_sum + 0.5 * qtot * inv_m;
        if (grad && m->learned[DISRNN_BLOCK_RHO]) {
            double *gr = grad + m->off[DISRNN_BLOCK_RHO];
            for (size_t n = 0; n < N; n++) gr[n] = inv_m * ((double)M - ws->qsum[n]);
        }
    } else {
        /* decoder: ETA = A Z + c (+ E U) */
        disrnn__gemm(0, 0, N, M, K, 1.0, m->blk[DISRNN_BLOCK_A], N, ws->z, K, 0.0, ws->eta, N);
        add_col(ws->eta, N, M, m->blk[DISRNN_BLOCK_BIAS_C]);
        if (has_e) disrnn__gemm(0, 0, N, M, P, 1.0, m->blk[DISRNN_BLOCK_E], N, u, ldu, 1.0, ws->eta, N);
        nll = disrnn__obs_nll(sp->obs, N, M, x, ldx, mask, ldmask, ws->eta, m->blk[DISRNN_BLOCK_RHO], inv_m,
                              grad ? ws->eta : NULL,
                              grad && m->learned[DISRNN_BLOCK_RHO] ? grad + m->off[DISRNN_BLOCK_RHO] : NULL);
        if (grad) {
            /* decoder side; ws->eta now holds dETA */
            disrnn__gemm(0, 1, N, K, M, 1.0, ws->eta, N, ws->z, K, 0.0, grad + m->off[DISRNN_BLOCK_A], N);
            row_sums(ws->eta, N, M, grad + m->off[DISRNN_BLOCK_BIAS_C]);
            if (has_e && m->learned[DISRNN_BLOCK_E])
                disrnn__gemm(0, 1, N, P, M, 1.0, ws->eta, N, u, ldu, 0.0, grad + m->off[DISRNN_BLOCK_E], N);
            disrnn__gemm(1, 0, K, M, N, 1.0, m->blk[DISRNN_BLOCK_A], N, ws->eta, N, 0.0, ws->dz, K);
        }
    }

    kl = sum_squares(ws->mu, K * M);
    kl *= 0.5 * inv_m;
    for (size_t k = 0; k < K; k++) kl += 0.5 * (ws->s[k] * ws->s[k] - 1.0 - 2.0 * ws->log_s[k]);

    if (pc_on)
        pc = disrnn__pc(K, M, ws->mu, ws->z, ws->s, ws->log_s, G, sp->group_start, n_tot, ws->pc_work,
                        pc_grad ? ws->pc_dz : NULL, ws->pc_dmu, ws->pc_dlog_s, pool);

    if (grad) {
        if (pc_grad)
            for (size_t i = 0; i < K * M; i++) ws->dz[i] += beta * ws->pc_dz[i];
        /* encoder side: z depends on mu with slope 1, KL adds mu / M, PC adds the centre term */
        for (size_t i = 0; i < K * M; i++) ws->dmu[i] = ws->dz[i] + inv_m * ws->mu[i];
        if (pc_grad)
            for (size_t i = 0; i < K * M; i++) ws->dmu[i] += beta * ws->pc_dmu[i];
        if (lin)
            disrnn__lin_enc_bwd(pool, N, K, M, ws->dmu, h, ldh, cols, grad + m->off[DISRNN_BLOCK_B], ws->lin_work);
        else
            for (size_t j0 = 0; j0 < M; j0 += R) {
                const size_t nc = M - j0 < R ? M - j0 : R;
                size_t ldb = N;
                /* a single group gathered for MU is still in hb */
                const double *hp = cols && R >= M ? ws->hb : h_cols(h, ldh, cols, N, j0, nc, ws->hb, &ldb);
                disrnn__gemm(0, 1, K, N, nc, 1.0, ws->dmu + j0 * K, K, hp, ldb, j0 ? 1.0 : 0.0,
                             grad + m->off[DISRNN_BLOCK_B], K);
            }
        row_sums(ws->dmu, K, M, grad + m->off[DISRNN_BLOCK_BIAS_D]);
        if (has_d && m->learned[DISRNN_BLOCK_D])
            disrnn__gemm(0, 1, K, P, M, 1.0, ws->dmu, K, u, ldu, 0.0, grad + m->off[DISRNN_BLOCK_D], K);
        if (m->learned[DISRNN_BLOCK_LOG_S]) {
            double *gs = grad + m->off[DISRNN_BLOCK_LOG_S];
            for (size_t k = 0; k < K; k++) {
                double acc = 0.0;
                for (size_t j = 0; j < M; j++) acc += ws->dz[k + j * K] * eps[k + j * ldeps];
                /* dz/dlog s = s eps; dKL/dlog s = s^2 - 1 */
                gs[k] = acc * ws->s[k] + ws->s[k] * ws->s[k] - 1.0;
                if (pc_grad) gs[k] += beta * ws->pc_dlog_s[k];
            }
        }
    }

    if (G > 1) {
        const int bd_grad = grad != NULL && alpha > 0.0;
        bd = block_penalty(m, ws->J, alpha, bd_grad);
        if (bd_grad) {
            /* J = B A: dB += dJ A^T, dA += B^T dJ */
            disrnn__gemm(0, 1, K, N, K, 1.0, ws->J, K, m->blk[DISRNN_BLOCK_A], N, 1.0,
                         grad + m->off[DISRNN_BLOCK_B], K);
            disrnn__gemm(1, 0, N, K, K, 1.0, m->blk[DISRNN_BLOCK_B], K, ws->J, K, 1.0,
                         grad + m->off[DISRNN_BLOCK_A], N);
        }
    }

    t[DISRNN_TERM_NLL] = nll;
    t[DISRNN_TERM_KL] = kl;
    t[DISRNN_TERM_PC] = pc;
    t[DISRNN_TERM_BD] = bd;
    t[DISRNN_TERM_LOSS] = nll + kl + beta * pc + alpha * bd;
    if (!disrnn__all_finite(t, DISRNN__NUM_TERMS, 1, DISRNN__NUM_TERMS) ||
        (grad && check_grad && !disrnn__all_finite(grad, m->n_params, 1, m->n_params))) {
        m->rng = saved_rng;
        return disrnn__fail(&m->base, DISRNN_ERR_NONFINITE,
                            "The loss or its gradient is not finite (NLL %g, KL %g, PC %g, BD %g); the "
                            "parameters may have diverged.", nll, kl, pc, bd);
    }
    if (terms) memcpy(terms, t, sizeof t);
    return DISRNN_OK;
}

/* Column j of a rows x M matrix (ld) holding a non-finite value, or M when none. */
static size_t first_nonfinite_col(const double *a, size_t rows, size_t M, size_t ld)
{
    for (size_t j = 0; j < M; j++)
        for (size_t r = 0; r < rows; r++)
            if (!isfinite(a[r + j * ld])) return j;
    return M;
}

/* ld * M stays addressable and fits the BLAS integer type. */
static int ld_ok(size_t ld, size_t M)
{
    size_t n;
    return disrnn__mul_size(ld, M, &n) == 0 && disrnn__blas_fits(ld, M, 1);
}

int disrnn_model_loss(disrnn_model_t *model, size_t n_samples, const double *x, size_t ldx, const double *h,
                      size_t ldh, const double *u, size_t ldu, const uint8_t *mask, size_t ldmask,
                      const double *eps, size_t ldeps, double *terms, size_t nterms, double *grad, size_t ngrad)
{
    const disrnn__base *b;
    const disrnn__spec *sp;
    const size_t M = n_samples;
    size_t N, K, P, row = 0, col = 0;
    int bad;
    if (!model) return disrnn__fail(NULL, DISRNN_ERR_INVALID_ARG, "The model is NULL.");
    b = &model->base;
    sp = &model->spec;
    N = sp->N;
    K = sp->K;
    P = sp->P;
    if (!x || !h) return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The observations x and encoder inputs h must not be NULL.");
    if (M == 0) return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The batch is empty (n_samples = 0).");
    if (P > 0 && !u)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The model has %zu known inputs but u is NULL.", P);
    if (ldx < N || ldh < N)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "Leading dimensions ldx = %zu and ldh = %zu must be >= N = %zu.",
                            ldx, ldh, N);
    if (P > 0 && ldu < P)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "Leading dimension ldu = %zu must be >= P = %zu.", ldu, P);
    if (mask && ldmask < N)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "Leading dimension ldmask = %zu must be >= N = %zu.", ldmask, N);
    if (eps && ldeps < K)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "Leading dimension ldeps = %zu must be >= K = %zu.", ldeps, K);
    if (!ld_ok(ldx, M) || !ld_ok(ldh, M) || (P > 0 && !ld_ok(ldu, M)) || (mask && !ld_ok(ldmask, M)) ||
        (eps && !ld_ok(ldeps, M)))
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The batch of %zu samples is too large to address.", M);
    if (M == 1 && sp->beta > 0.0 && sp->G > 1)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG,
                            "The PC estimator needs M >= 2 samples when beta > 0 and G > 1 (got M = 1).");
    if (terms && nterms < DISRNN__NUM_TERMS)
        return disrnn__fail(b, DISRNN_ERR_BUFFER_TOO_SMALL, "terms holds %zu values; %d are needed.", nterms,
                            DISRNN__NUM_TERMS);
    if (grad && ngrad < model->n_params)
        return disrnn__fail(b, DISRNN_ERR_BUFFER_TOO_SMALL, "grad holds %zu values; the model has %zu parameters.",
                            ngrad, model->n_params);
    bad = disrnn__obs_check(sp->obs, N, M, x, ldx, mask, ldmask, &row, &col);
    if (bad == 1)
        return disrnn__fail(b, DISRNN_ERR_NONFINITE, "x[%zu] of sample %zu is not finite (mask it if missing).",
                            row, col);
    if (bad == 2)
        return disrnn__fail(b, DISRNN_ERR_DATA,
                            "x[%zu] of sample %zu = %g is not a non-negative integer count, as the Poisson model needs.",
                            row, col, x[row + col * ldx]);
    if ((col = first_nonfinite_col(h, N, M, ldh)) < M)
        return disrnn__fail(b, DISRNN_ERR_NONFINITE, "The encoder input h of sample %zu is not finite.", col);
    if (P > 0 && (col = first_nonfinite_col(u, P, M, ldu)) < M)
        return disrnn__fail(b, DISRNN_ERR_NONFINITE, "The known input u of sample %zu is not finite.", col);
    if (eps && (col = first_nonfinite_col(eps, K, M, ldeps)) < M)
        return disrnn__fail(b, DISRNN_ERR_NONFINITE, "The noise eps of sample %zu is not finite.", col);
    return disrnn__loss(model, NULL, M, x, ldx, h, ldh, NULL, u, ldu, mask, ldmask, eps, ldeps, terms, grad, 1);
}
