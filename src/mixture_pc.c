/* Evaluation PC and TC of the aggregated posterior (MODEL.md section 5): a plain mixture of n
 * Gaussians N(mu_j, diag s^2), n_mc draws z ~ N(mu_i, diag s^2) per point i, and
 *   ln q(z) = logsumexp_j l(z, j) - ln n   (and the same per group and per dimension),
 *   PC = mean of ln q(z) - sum_g ln q_g(z_g),  TC = the same with every dimension its own group.
 *
 * The cost is n^2 n_mc K exponentials, so the inner loop is what matters:
 * - The per-dimension densities are the only exponentials: a group's density is the product of
 *   its dimensions', the full density the product of the groups'. That is K exponentials per
 *   (draw, component) instead of K + G + 1.
 * - Each dimension is offset by the draw's own term, 0.5 eps_k^2, so the component j = i
 *   contributes about 1 to every sum: the sums never underflow, and terms far enough out to
 *   underflow (or to be clamped at exp(-708)) are below 1e-300 of them. The normalising constants (log s, log 2 pi, the offsets) cancel
 *   between ln q and sum_g ln q_g, leaving PC = log S - sum_g log S_g + (G - 1) ln n.
 * - Components are processed in blocks, dimension by dimension, through a branch-free
 *   exponential that compilers vectorise; means are stored transposed and divided by s.
 * - A draw whose offsets could overflow a product (0.5 |eps|^2 > 600, only for K in the
 *   thousands) takes a log-domain path with running maxima instead. Memory is O(n K). */
#include "analysis.h"
#include "blas.h"

#include <math.h>
#include <string.h>

#define BLOCK 256
#define MAX_FAST_OFFSET 600.0

/* t[j] = exp(c - 0.5 (z - m[j])^2) for one block of BLOCK components, with exponents clamped at
 * -708 (a term below 1e-307 instead of a smaller one or 0: negligible against the sums of about 1
 * it joins, see above). Cody-Waite reduction x = k ln2 + r, |r| <= ln2 / 2, degree-12 Taylor
 * polynomial (truncation below 2e-16 relative), 2^k assembled in the exponent bits. The clamp and
 * the exponential are separate loops without calls, branches or variable trip counts: under the
 * default -ftrapping-math GCC vectorises neither a comparison mixed into the polynomial loop nor a
 * select, but it does vectorise each loop alone. */
static void exp_block(double *restrict t, const double *restrict m, double z, double c)
{
    const double log2e = 1.4426950408889634074, ln2_hi = 6.93147180369123816490e-01,
                 ln2_lo = 1.90821492927058770002e-10, shift = 0x1.8p52;
    for (size_t i = 0; i < BLOCK; i++) {
        const double d = z - m[i], v = c - 0.5 * d * d;
        t[i] = v < -708.0 ? -708.0 : v;
    }
    for (size_t i = 0; i < BLOCK; i++) {
        const double v = t[i], kd = v * log2e + shift, k = kd - shift;
        const double r = (v - k * ln2_hi) - k * ln2_lo;
        /* Estrin's scheme: shorter dependency chains than Horner, same terms */
        const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
        const double a0 = 1.0 + r, a1 = 0.5 + r * (1.0 / 6.0), a2 = 1.0 / 24.0 + r * (1.0 / 120.0);
        const double a3 = 1.0 / 720.0 + r * (1.0 / 5040.0), a4 = 1.0 / 40320.0 + r * (1.0 / 362880.0);
        const double a5 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0), a6 = 1.0 / 479001600.0;
        const double p = ((a0 + r2 * a1) + r4 * (a2 + r2 * a3)) + r8 * ((a4 + r2 * a5) + r4 * a6);
        uint64_t bits;
        double scale;
        memcpy(&bits, &kd, sizeof bits);
        bits = (bits + 1023u) << 52; /* the low bits of kd hold k; k + 1023 is the biased exponent */
        memcpy(&scale, &bits, sizeof scale);
        t[i] = p * scale;
    }
}

static double sum_block(const double *x)
{
    /* four partial sums in a fixed order: independent chains, the same result every run */
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
    for (size_t i = 0; i < BLOCK; i += 4) {
        a0 += x[i];
        a1 += x[i + 1];
        a2 += x[i + 2];
        a3 += x[i + 3];
    }
    return (a0 + a1) + (a2 + a3);
}

static void mul_block(double *restrict p, const double *restrict t)
{
    for (size_t i = 0; i < BLOCK; i++) p[i] *= t[i];
}

/* Streaming log-sum-exp accumulator with a running maximum. */
typedef struct lse {
    double mx, sm;
} lse;

static void lse_add(lse *a, double v)
{
    if (v > a->mx) {
        a->sm = a->sm * exp(a->mx - v) + 1.0;
        a->mx = v;
    } else {
        a->sm += exp(v - a->mx);
    }
}

static double lse_value(const lse *a) { return a->mx + log(a->sm); }

typedef struct pc_work {
    size_t K, G, n, np; /* np: n rounded up to whole blocks */
    const size_t *gs;   /* G + 1 offsets */
    const double *ms;   /* K x np transposed: ms[k * np + j] = mu_jk / s_k, padding far away */
    double *t;          /* K x BLOCK scaled per-dimension terms */
    double *prod;       /* BLOCK group products */
    double *full;       /* BLOCK full products */
    double *sum;        /* 1 + G + K sums: full, groups, dimensions */
    lse *acc;           /* the same in the log domain */
} pc_work;

/* Fast path: fills w->sum with S_full, S_g, S_k for the draw zs (z / s) with offsets c. */
static void draw_sums_fast(pc_work *w, const double *zs, const double *c)
{
    const size_t K = w->K, G = w->G, np = w->np;
    double *sum = w->sum;
    memset(sum, 0, (1 + G + K) * sizeof(double));
    for (size_t j0 = 0; j0 < np; j0 += BLOCK) {
        for (size_t k = 0; k < K; k++) {
            double *t = w->t + k * BLOCK;
            exp_block(t, w->ms + k * np + j0, zs[k], c[k]);
            sum[1 + G + k] += sum_block(t);
        }
        for (size_t g = 0; g < G; g++) {
            const size_t k0 = w->gs[g], k1 = w->gs[g + 1];
            double *p = G == 1 ? w->full : w->prod;
            memcpy(p, w->t + k0 * BLOCK, BLOCK * sizeof(double));
            for (size_t k = k0 + 1; k < k1; k++) mul_block(p, w->t + k * BLOCK);
            sum[1 + g] += sum_block(p);
            if (G == 1) break;
            if (g == 0)
                memcpy(w->full, p, BLOCK * sizeof(double));
            else
                mul_block(w->full, p);
        }
        /* with one group the full density is that group's, bit for bit, so PC = 0 exactly */
        sum[0] = G == 1 ? sum[1] : sum[0] + sum_block(w->full);
    }
}

/* Log-domain path: w->sum receives log S_full, log S_g, log S_k. */
static void draw_logsums(pc_work *w, const double *zs, const double *c)
{
    const size_t K = w->K, G = w->G, n = w->n;
    for (size_t a = 0; a < 1 + G + K; a++) {
        w->acc[a].mx = -INFINITY;
        w->acc[a].sm = 0.0;
    }
    for (size_t j = 0; j < n; j++) {
        double full = 0.0;
        for (size_t g = 0; g < G; g++) {
            double lg = 0.0;
            for (size_t k = w->gs[g]; k < w->gs[g + 1]; k++) {
                const double d = zs[k] - w->ms[k * w->np + j], l = c[k] - 0.5 * d * d;
                lse_add(&w->acc[1 + G + k], l);
                lg += l;
            }
            lse_add(&w->acc[1 + g], lg);
            full += lg;
        }
        lse_add(&w->acc[0], full);
    }
    for (size_t a = 0; a < 1 + G + K; a++) w->sum[a] = lse_value(&w->acc[a]);
}

int disrnn__an_mixture_pc(const disrnn__allocator *al, size_t K, const size_t *group_start, size_t G, size_t n,
                          const double *mu, size_t ldmu, const double *s, size_t n_mc, uint64_t seed,
                          int force_log, double *pc, double *tc)
{
    pc_work w;
    disrnn__rng rng;
    double *ms = NULL, *buf = NULL;
    double pc_sum = 0.0, tc_sum = 0.0;
    const double log_n = log((double)n);
    const size_t np = n + (BLOCK - n % BLOCK) % BLOCK;
    size_t nk;
    if (np < n || disrnn__mul_size(np, K, &nk) || !(ms = disrnn__alloc_doubles(al, nk))) return DISRNN_ERR_NOMEM;
    /* t: K BLOCK; prod, full: BLOCK each; sum: 1 + G + K; zs, c, eps: K each (eps K + 1 for pairs) */
    buf = disrnn__alloc_doubles(al, K * BLOCK + 2 * BLOCK + 1 + G + K + 3 * K + 1);
    w.acc = (lse *)disrnn__calloc(al, 1 + G + K, sizeof(lse));
    if (!buf || !w.acc) {
        disrnn__free(al, w.acc);
        disrnn__free(al, buf);
        disrnn__free(al, ms);
        return DISRNN_ERR_NOMEM;
    }
    for (size_t k = 0; k < K; k++) {
        const double inv = 1.0 / s[k];
        double far = 0.0;
        for (size_t j = 0; j < n; j++) {
            ms[k * np + j] = mu[k + j * ldmu] * inv;
            far = fmax(far, fabs(ms[k * np + j]));
        }
        /* padding components sit a million standard deviations beyond every mean, so every draw
         * (within 9 of a mean) gives them the clamped term exp(-708): nothing, against sums >= ~1 */
        far = 2.0 * far + 1e6;
        for (size_t j = n; j < np; j++) ms[k * np + j] = far;
    }
    w.K = K;
    w.G = G;
    w.n = n;
    w.np = np;
    w.gs = group_start;
    w.ms = ms;
    w.t = buf;
    w.prod = w.t + K * BLOCK;
    w.full = w.prod + BLOCK;
    w.sum = w.full + BLOCK;
    {
        double *zs = w.sum + 1 + G + K, *c = zs + K, *eps = c + K;
        disrnn__rng_seed(&rng, seed);
        for (size_t i = 0; i < n; i++)
            for (size_t m = 0; m < n_mc; m++) {
                double off = 0.0, lfull, lgroups = 0.0, ldims = 0.0;
                disrnn__rng_normal(&rng, eps, K);
                for (size_t k = 0; k < K; k++) {
                    zs[k] = ms[k * np + i] + eps[k];
                    c[k] = 0.5 * eps[k] * eps[k];
                    off += c[k];
                }
                if (!force_log && off <= MAX_FAST_OFFSET) {
                    draw_sums_fast(&w, zs, c);
                    lfull = log(w.sum[0]);
                    for (size_t g = 0; g < G; g++) lgroups += log(w.sum[1 + g]);
                    for (size_t k = 0; k < K; k++) ldims += log(w.sum[1 + G + k]);
                } else {
                    draw_logsums(&w, zs, c);
                    lfull = w.sum[0];
                    for (size_t g = 0; g < G; g++) lgroups += w.sum[1 + g];
                    for (size_t k = 0; k < K; k++) ldims += w.sum[1 + G + k];
                }
                pc_sum += G == 1 ? 0.0 : lfull - lgroups + (double)(G - 1) * log_n;
                tc_sum += K == 1 ? 0.0 : lfull - ldims + (double)(K - 1) * log_n;
            }
    }
    if (pc) *pc = pc_sum / ((double)n * (double)n_mc);
    if (tc) *tc = tc_sum / ((double)n * (double)n_mc);
    disrnn__free(al, w.acc);
    disrnn__free(al, buf);
    disrnn__free(al, ms);
    return DISRNN_OK;
}

/* Group offsets from sizes; NULL with *status set on bad sizes or no memory. */
static size_t *group_offsets(const disrnn__allocator *al, size_t K, const size_t *sizes, size_t G, int *status)
{
    size_t *gs, tot = 0;
    *status = DISRNN_ERR_INVALID_ARG;
    if (!sizes || G == 0 || G > K) return NULL;
    for (size_t g = 0; g < G; g++) {
        if (sizes[g] == 0 || disrnn__add_size(tot, sizes[g], &tot)) return NULL;
    }
    if (tot != K) return NULL;
    gs = (size_t *)disrnn__calloc(al, G + 1, sizeof(size_t));
    if (!gs) {
        *status = DISRNN_ERR_NOMEM;
        return NULL;
    }
    for (size_t g = 0; g < G; g++) gs[g + 1] = gs[g] + sizes[g];
    *status = DISRNN_OK;
    return gs;
}

int disrnn_mixture_pc(size_t n_latent, const size_t *group_sizes, size_t n_groups, size_t n, const double *mu,
                      size_t ldmu, const double *s, size_t n_mc, uint64_t seed, double *pc, double *tc)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    size_t *gs, last;
    int rc;
    if (n_latent == 0 || n == 0 || !mu || !s || ldmu < n_latent || n_mc == 0) return DISRNN_ERR_INVALID_ARG;
    if (disrnn__mul_size(n - 1, ldmu, &last) || disrnn__add_size(last, n_latent, &last)) return DISRNN_ERR_INVALID_ARG;
    /* the workspace counts 1 + G + K + 4 K + K BLOCK doubles */
    if (n_latent > SIZE_MAX / (2 * BLOCK + 16)) return DISRNN_ERR_INVALID_ARG;
    for (size_t k = 0; k < n_latent; k++)
        if (!(isfinite(s[k]) && s[k] > 0.0)) return DISRNN_ERR_INVALID_ARG;
    if (!disrnn__all_finite(mu, n_latent, n, ldmu)) return DISRNN_ERR_INVALID_ARG;
    gs = group_offsets(al, n_latent, group_sizes, n_groups, &rc);
    if (!gs) return rc;
    if (pc || tc) rc = disrnn__an_mixture_pc(al, n_latent, gs, n_groups, n, mu, ldmu, s, n_mc, seed, 0, pc, tc);
    disrnn__free(al, gs);
    return rc;
}

int disrnn_model_eval_pc(const disrnn_model_t *model, const disrnn_dataset_t *ds, size_t n_mc, uint64_t seed,
                         double *pc, double *tc)
{
    const disrnn__allocator *al;
    disrnn__samples smp;
    double *mu = NULL, *s = NULL;
    size_t K;
    int rc, nomem;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    al = &model->base.al;
    K = model->spec.K;
    if (!ds) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_eval_pc: the dataset is NULL.");
    if (n_mc == 0) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_eval_pc: n_mc must be at least 1.");
    if (!(s = disrnn__alloc_doubles(al, K)))
        return disrnn__fail(&model->base, DISRNN_ERR_NOMEM, "disrnn_model_eval_pc: out of memory.");
    for (size_t k = 0; k < K; k++) {
        s[k] = disrnn__model_s(model, k);
        if (!(isfinite(s[k]) && s[k] > 0.0)) {
            disrnn__free(al, s);
            return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG,
                                "disrnn_model_eval_pc: the encoder std is not set (Scott's rule needs DISRNN_OPT_N_TOT or a trainer).");
        }
    }
    rc = disrnn__samples_build(ds, model, al, &smp, &model->base);
    if (rc != DISRNN_OK) {
        disrnn__free(al, s);
        return rc;
    }
    if (smp.S == 0) {
        rc = disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_eval_pc: the dataset has no samples.");
    } else if (!disrnn__blas_fits(smp.S, model->spec.N, K)) {
        rc = disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_eval_pc: too many samples for BLAS integers.");
    } else if (!(mu = disrnn__an_samples_mu(model, &smp, al, &nomem))) {
        rc = disrnn__fail(&model->base, DISRNN_ERR_NOMEM, "disrnn_model_eval_pc: out of memory for %zu samples.", smp.S);
    } else {
        const size_t S = smp.S;
        disrnn__samples_free(al, &smp); /* only the means are needed from here on */
        rc = disrnn__an_mixture_pc(al, K, model->spec.group_start, model->spec.G, S, mu, K, s, n_mc, seed, 0, pc, tc);
        if (rc != DISRNN_OK) rc = disrnn__fail(&model->base, rc, "disrnn_model_eval_pc: out of memory for %zu samples.", S);
    }
    disrnn__free(al, mu);
    disrnn__free(al, s);
    disrnn__samples_free(al, &smp);
    return rc;
}
