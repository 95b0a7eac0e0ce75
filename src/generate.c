/* Rolling the generative RNN forward (MODEL.md section 5, "Generation"):
 *   h_t = sum_l psi_l sigma(x_{t-l} / kappa),  mu_t = B h_t + d [+ D u_t],  z_t = mu_t [+ s eps],
 *   eta_t = A z_t + c [+ E u_t],  x_t = mean(eta_t) [or a draw from the observation model],
 * and k-step-ahead prediction R^2 on a dataset. */
#include "analysis.h"
#include "blas.h"

#include <math.h>
#include <string.h>

/* ---- Poisson draws ---------------------------------------------------------------------------- */

/* Inversion by sequential search: exact, O(lam) uniforms-free steps; used for small means. */
static double poisson_inversion(disrnn__rng *r, double lam)
{
    const double u = disrnn__rng_uniform(r);
    double p = exp(-lam), cdf = p, k = 0.0;
    /* the tail beyond k = 1000 has mass below 1e-300 for lam < 10: stop there against rounding */
    while (u >= cdf && k < 1000.0) {
        k += 1.0;
        p *= lam / k;
        cdf += p;
    }
    return k;
}

/* Transformed rejection with squeeze (Hormann 1993, "The transformed rejection method for
 * generating Poisson random variables", algorithm PTRS): exact for lam >= 10. A hat built from a
 * transformed uniform proposes k; most proposals are accepted by the cheap squeeze, the rest by
 * comparing with the exact log pmf. */
static double poisson_ptrs(disrnn__rng *r, double lam)
{
    const double slam = sqrt(lam), loglam = log(lam);
    const double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
    const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4), v_r = 0.9277 - 3.6224 / (b - 2.0);
    for (;;) {
        const double u = disrnn__rng_uniform(r) - 0.5, v = disrnn__rng_uniform(r);
        const double us = 0.5 - fabs(u);
        const double k = floor((2.0 * a / us + b) * u + lam + 0.43);
        if (us >= 0.07 && v <= v_r) return k;
        if (k < 0.0 || (us < 0.013 && v > us)) continue;
        if (log(v) + log(inv_alpha) - log(a / (us * us) + b) <= -lam + k * loglam - disrnn__log_factorial(k))
            return k;
    }
}

double disrnn__an_poisson(disrnn__rng *r, double lam)
{
    if (!(lam > 0.0)) return 0.0;
    return lam < 10.0 ? poisson_inversion(r, lam) : poisson_ptrs(r, lam);
}

/* ---- One generative step ---------------------------------------------------------------------- */

typedef struct gen_ctx {
    const disrnn_model_t *m;
    size_t N, K, L, P;
    double *h, *mu, *eta; /* N, K, N */
} gen_ctx;

/* Shapes of the model, and h and eta laid out after the N activations at act0. */
static void gen_init(gen_ctx *g, const disrnn_model_t *m, double *act0)
{
    g->m = m;
    g->N = m->spec.N;
    g->K = m->spec.K;
    g->L = m->spec.L;
    g->P = m->spec.P;
    g->h = act0 + g->N;
    g->eta = g->h + g->N;
}

/* The encoder input from activated history columns: act(l) is sigma(x_{t-l} / kappa) for
 * l = 1..L, or NULL for a zero column. */
static void encoder_input(gen_ctx *g, const double *const *act)
{
    const double *psi = g->m->spec.psi;
    memset(g->h, 0, g->N * sizeof(double));
    for (size_t l = 0; l < g->L; l++) {
        if (!act[l]) continue;
        for (size_t n = 0; n < g->N; n++) g->h[n] += psi[l] * act[l][n];
    }
}

static void activate(const disrnn_model_t *m, const double *x, double *act)
{
    const double inv_kappa = 1.0 / m->spec.kappa;
    for (size_t n = 0; n < m->spec.N; n++) act[n] = disrnn__sigma(m->spec.sigma, x[n] * inv_kappa);
}

/* From g->h and input u (P values or NULL): mu, z (optionally noisy; may alias nothing), eta and
 * the decoder mean into x. Returns 0 when every value is finite. */
static int step(gen_ctx *g, const double *u, const double *eps, const double *s, double *z, double *x)
{
    const disrnn_model_t *m = g->m;
    int ok = 1;
    disrnn__an_encode(m, 1, g->h, g->N, u, g->P, g->mu, g->K);
    for (size_t k = 0; k < g->K; k++) z[k] = eps ? g->mu[k] + s[k] * eps[k] : g->mu[k];
    disrnn__an_decode_eta(m, 1, z, g->K, u, g->P, g->eta, g->N);
    for (size_t n = 0; n < g->N; n++) {
        x[n] = disrnn__obs_mean(m->spec.obs, g->eta[n]);
        ok = ok && isfinite(x[n]);
    }
    return ok;
}

int disrnn_model_generate(const disrnn_model_t *model, size_t n_init, const double *x_init, size_t ldinit,
                          size_t n_steps, const double *u, size_t ldu, int flags, uint64_t seed,
                          double *x, size_t ldx, double *z, size_t ldz)
{
    const disrnn__allocator *al;
    gen_ctx g;
    disrnn__rng rng;
    size_t N, K, L, P, last, nwork;
    double *work = NULL, *ring, *act0, *s, *eps, *zt;
    const double **hist = NULL;
    int rc = DISRNN_OK, have_first;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    al = &model->base.al;
    N = model->spec.N;
    K = model->spec.K;
    L = model->spec.L;
    P = model->spec.P;
    if (flags & ~(DISRNN_GEN_LATENT_NOISE | DISRNN_GEN_OBS_NOISE))
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_generate: unknown flags 0x%x.", (unsigned)flags);
    if (n_steps == 0 || !x)
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_generate: n_steps must be >= 1 and x non-NULL.");
    if (ldx < N || (z && ldz < K))
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG,
                            "disrnn_model_generate: ldx (%zu) must be >= N = %zu and ldz (%zu) >= K = %zu.", ldx, N, ldz, K);
    if (n_init > 0 && (!x_init || ldinit < N))
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG,
                            "disrnn_model_generate: %zu initial bins need x_init with ldinit >= N = %zu.", n_init, N);
    if (P > 0 && (!u || ldu < P))
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG,
                            "disrnn_model_generate: the model takes P = %zu inputs: u must be non-NULL with ldu >= P.", P);
    if (disrnn__mul_size(n_steps - 1, ldx, &last) || disrnn__add_size(last, N, &last) ||
        (z && (disrnn__mul_size(n_steps - 1, ldz, &last) || disrnn__add_size(last, K, &last))) ||
        (P > 0 && (disrnn__mul_size(n_steps - 1, ldu, &last) || disrnn__add_size(last, P, &last))) ||
        (n_init > 0 && (disrnn__mul_size(n_init - 1, ldinit, &last) || disrnn__add_size(last, N, &last))))
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_generate: the array sizes overflow.");
    if (n_init > 0 && !disrnn__all_finite(x_init, N, n_init, ldinit))
        return disrnn__fail(&model->base, DISRNN_ERR_NONFINITE, "disrnn_model_generate: x_init holds NaN or Inf.");
    if (P > 0 && !disrnn__all_finite(u, P, n_steps, ldu))
        return disrnn__fail(&model->base, DISRNN_ERR_NONFINITE, "disrnn_model_generate: u holds NaN or Inf.");
    /* ring: L activated bins; act0: the first bin's activation (repeat padding); h, eta: N;
     * mu, s, eps (K + 1: normals come in pairs), z: K */
    if (disrnn__mul_size(N, L + 4, &nwork) || disrnn__add_size(nwork, 4 * K + 1, &nwork) ||
        !(work = disrnn__alloc_doubles(al, nwork)) || !(hist = (const double **)disrnn__calloc(al, L, sizeof(double *)))) {
        disrnn__free(al, work);
        return disrnn__fail(&model->base, DISRNN_ERR_NOMEM, "disrnn_model_generate: out of memory.");
    }
    ring = work;
    act0 = ring + N * L;
    gen_init(&g, model, act0);
    g.mu = g.eta + N;
    s = g.mu + K;
    eps = s + K;
    zt = eps + K + 1;
    for (size_t k = 0; k < K; k++) s[k] = disrnn__model_s(model, k);
    if ((flags & DISRNN_GEN_LATENT_NOISE))
        for (size_t k = 0; k < K; k++)
            if (!(s[k] > 0.0 && isfinite(s[k]))) {
                rc = disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG,
                                  "disrnn_model_generate: latent noise needs the encoder std (Scott's rule needs DISRNN_OPT_N_TOT).");
                goto done;
            }
    disrnn__rng_seed(&rng, seed);
    /* Bin t of the whole sequence (initial bins, then generated ones) lives in ring slot t % L. */
    have_first = n_init > 0;
    if (have_first) activate(model, x_init, act0);
    for (size_t t = (n_init > L ? n_init - L : 0); t < n_init; t++) activate(model, x_init + t * ldinit, ring + (t % L) * N);
    for (size_t i = 0; i < n_steps; i++) {
        const size_t t = n_init + i;
        double *xt = x + i * ldx, *zi = z ? z + i * ldz : zt;
        const double *ut = P > 0 ? u + i * ldu : NULL;
        for (size_t l = 1; l <= L; l++) {
            if (t >= l)
                hist[l - 1] = ring + ((t - l) % L) * N;
            else if (model->spec.padding == DISRNN_PAD_REPEAT && have_first)
                hist[l - 1] = act0; /* before the first bin: repeat it, once it exists */
            else
                hist[l - 1] = NULL; /* zero padding; drop has no samples there, so it pads with 0 too */
        }
        encoder_input(&g, hist);
        if (flags & DISRNN_GEN_LATENT_NOISE) disrnn__rng_normal(&rng, eps, K);
        if (!step(&g, ut, (flags & DISRNN_GEN_LATENT_NOISE) ? eps : NULL, s, zi, xt)) {
            rc = disrnn__fail(&model->base, DISRNN_ERR_NONFINITE,
                              "disrnn_model_generate: the decoder mean became non-finite at step %zu.", i);
            goto done;
        }
        if (flags & DISRNN_GEN_OBS_NOISE) {
            if (disrnn__obs_is_poisson(model->spec.obs)) {
                for (size_t n = 0; n < N; n++) xt[n] = disrnn__an_poisson(&rng, xt[n]);
            } else {
                const double *rho = model->blk[DISRNN_BLOCK_RHO];
                disrnn__rng_normal(&rng, g.eta, N); /* eta is free once the mean is formed */
                for (size_t n = 0; n < N; n++) xt[n] += exp(rho[n]) * g.eta[n];
            }
        }
        if (!have_first) {
            activate(model, xt, act0);
            have_first = 1;
        }
        activate(model, xt, ring + (t % L) * N);
    }
done:
    disrnn__free(al, (void *)hist);
    disrnn__free(al, work);
    return rc;
}

/* ---- k-step-ahead prediction R^2 ------------------------------------------------------------- */

int disrnn_model_kstep_r2(const disrnn_model_t *model, const disrnn_dataset_t *ds, size_t k_max, double *r2, size_t len)
{
    const disrnn__allocator *al;
    disrnn__samples smp;
    gen_ctx g;
    size_t N, K, L, P, nacc, nwin;
    double *acc = NULL, *win = NULL, *act0 = NULL, *buf = NULL, *pred;
    const double **hist = NULL;
    int rc;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    al = &model->base.al;
    N = model->spec.N;
    K = model->spec.K;
    L = model->spec.L;
    P = model->spec.P;
    if (!ds || !r2 || k_max == 0)
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_kstep_r2: ds and r2 must be non-NULL and k_max >= 1.");
    if (len < k_max)
        return disrnn__fail(&model->base, DISRNN_ERR_BUFFER_TOO_SMALL,
                            "disrnn_model_kstep_r2: r2 has room for %zu values, k_max = %zu.", len, k_max);
    /* the samples give the starts (and check N, P and counts); the history comes from the trials */
    rc = disrnn__samples_build(ds, model, al, &smp, &model->base);
    if (rc != DISRNN_OK) return rc;
    if (smp.S == 0) {
        disrnn__samples_free(al, &smp);
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_kstep_r2: the dataset has no samples.");
    }
    /* Per (k, channel): count, mean, M2 (Welford, so one pass gives a stable SST) and SSE. */
    if (disrnn__mul_size(k_max, N, &nacc) || disrnn__mul_size(nacc, 4, &nacc) ||
        disrnn__add_size(L, k_max, &nwin) || disrnn__mul_size(nwin, N, &nwin)) {
        rc = disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_kstep_r2: k_max = %zu is too large.", k_max);
        goto done;
    }
    acc = (double *)disrnn__calloc(al, nacc, sizeof(double));
    win = disrnn__alloc_doubles(al, nwin);
    buf = disrnn__alloc_doubles(al, 4 * N + 3 * K);
    hist = (const double **)disrnn__calloc(al, L, sizeof(double *));
    if (!acc || !win || !buf || !hist) {
        rc = disrnn__fail(&model->base, DISRNN_ERR_NOMEM, "disrnn_model_kstep_r2: out of memory.");
        goto done;
    }
    act0 = buf;
    gen_init(&g, model, act0);
    pred = g.eta + N;
    g.mu = pred + N;
    for (size_t j = 0; j < smp.S; j++) {
        const size_t r = smp.trial[j], t0 = smp.bin[j], T = ds->len[r], base = ds->start[r];
        const int repeat = model->spec.padding == DISRNN_PAD_REPEAT;
        /* window slot w holds the activation of bin t0 - L + w; the first L are true history */
        activate(model, ds->x + base * N, act0);
        for (size_t w = 0; w < L; w++)
            if (t0 + w >= L) activate(model, ds->x + (base + t0 + w - L) * N, win + w * N);
        for (size_t k = 1; k <= k_max && t0 + k - 1 < T; k++) {
            const size_t t = t0 + k - 1, col = base + t;
            double *zk = g.mu + K; /* z = mu at the means: a separate buffer keeps step() simple */
            for (size_t l = 1; l <= L; l++) {
                const size_t w = L + (k - 1) - l; /* slot of bin t - l */
                hist[l - 1] = t >= l ? win + w * N : (repeat ? act0 : NULL);
            }
            encoder_input(&g, hist);
            if (!step(&g, P > 0 ? ds->u + col * P : NULL, NULL, NULL, zk, pred)) {
                rc = disrnn__fail(&model->base, DISRNN_ERR_NONFINITE,
                                  "disrnn_model_kstep_r2: a prediction became non-finite (trial %zu, bin %zu).", r, t);
                goto done;
            }
            for (size_t n = 0; n < N; n++) {
                double *a = acc + 4 * (n + (k - 1) * N), y, dlt;
                if (ds->mask && !ds->mask[n + col * N]) continue;
                y = ds->x[n + col * N];
                a[0] += 1.0;
                dlt = y - a[1];
                a[1] += dlt / a[0];
                a[2] += dlt * (y - a[1]);
                a[3] += (y - pred[n]) * (y - pred[n]);
            }
            if (k < k_max) activate(model, pred, win + (L + k - 1) * N);
        }
    }
    for (size_t k = 0; k < k_max; k++) {
        double sum = 0.0;
        size_t cnt = 0;
        for (size_t n = 0; n < N; n++) {
            const double *a = acc + 4 * (n + k * N);
            if (a[2] > 0.0) {
                sum += 1.0 - a[3] / a[2];
                cnt++;
            }
        }
        r2[k] = cnt ? sum / (double)cnt : NAN;
    }
    rc = DISRNN_OK;
done:
    disrnn__free(al, (void *)hist);
    disrnn__free(al, buf);
    disrnn__free(al, win);
    disrnn__free(al, acc);
    disrnn__samples_free(al, &smp);
    return rc;
}
