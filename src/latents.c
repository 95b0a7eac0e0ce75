/* Posterior means (latent trajectories), one-step predictions and reconstruction metrics on the
 * samples of a dataset (MODEL.md section 5). */
#include "analysis.h"
#include "blas.h"

#include <math.h>
#include <string.h>

#define HALF_LOG_2PI 0.91893853320467274178032973640562
#define LN2 0.69314718055994530941723212145818
/* The Neural Latents Benchmark replaces zero rates by this floor before taking logs. */
#define NLB_RATE_FLOOR 1e-9

int disrnn_num_metrics(void) { return DISRNN_METRIC_MSE + 1; }

int disrnn__an_has_d(const disrnn_model_t *m)
{
    return m->spec.P > 0 && m->blk[DISRNN_BLOCK_D] && m->rows[DISRNN_BLOCK_D] == m->spec.K &&
           m->cols[DISRNN_BLOCK_D] == m->spec.P;
}

int disrnn__an_has_e(const disrnn_model_t *m)
{
    return m->spec.P > 0 && m->blk[DISRNN_BLOCK_E] && m->rows[DISRNN_BLOCK_E] == m->spec.N &&
           m->cols[DISRNN_BLOCK_E] == m->spec.P;
}

void disrnn__an_encode(const disrnn_model_t *m, size_t S, const double *h, size_t ldh, const double *u, size_t ldu,
                       double *mu, size_t ldmu)
{
    const size_t K = m->spec.K, N = m->spec.N;
    const double *d = m->blk[DISRNN_BLOCK_BIAS_D];
    for (size_t j = 0; j < S; j++) memcpy(mu + j * ldmu, d, K * sizeof(double));
    disrnn__gemm(0, 0, K, S, N, 1.0, m->blk[DISRNN_BLOCK_B], K, h, ldh, 1.0, mu, ldmu);
    if (disrnn__an_has_d(m) && u)
        disrnn__gemm(0, 0, K, S, m->spec.P, 1.0, m->blk[DISRNN_BLOCK_D], K, u, ldu, 1.0, mu, ldmu);
}

void disrnn__an_decode_eta(const disrnn_model_t *m, size_t S, const double *z, size_t ldz, const double *u,
                           size_t ldu, double *eta, size_t ldeta)
{
    const size_t K = m->spec.K, N = m->spec.N;
    const double *c = m->blk[DISRNN_BLOCK_BIAS_C];
    for (size_t j = 0; j < S; j++) memcpy(eta + j * ldeta, c, N * sizeof(double));
    disrnn__gemm(0, 0, N, S, K, 1.0, m->blk[DISRNN_BLOCK_A], N, z, ldz, 1.0, eta, ldeta);
    if (disrnn__an_has_e(m) && u)
        disrnn__gemm(0, 0, N, S, m->spec.P, 1.0, m->blk[DISRNN_BLOCK_E], N, u, ldu, 1.0, eta, ldeta);
}

double *disrnn__an_samples_mu(const disrnn_model_t *m, const disrnn__samples *s, const disrnn__allocator *al,
                              int *nomem)
{
    size_t n;
    double *mu;
    *nomem = 0;
    if (s->S == 0) return NULL;
    if (disrnn__mul_size(m->spec.K, s->S, &n) || !(mu = disrnn__alloc_doubles(al, n))) {
        *nomem = 1;
        return NULL;
    }
    disrnn__an_encode(m, s->S, s->h, s->N, s->u, s->P, mu, m->spec.K);
    return mu;
}

double disrnn__an_log_rate(int obs, double eta)
{
    return obs == DISRNN_OBS_POISSON_EXP ? eta : disrnn__log_softplus(eta);
}

/* The checks and sample building shared by the three per-sample entry points. */
static int prepare(const disrnn_model_t *model, const disrnn_dataset_t *ds, disrnn__samples *s, const char *what)
{
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if (!ds) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "%s: the dataset is NULL.", what);
    return disrnn__samples_build(ds, model, &model->base.al, s, &model->base);
}

static int check_fits(const disrnn_model_t *m, size_t S, const char *what)
{
    if (!disrnn__blas_fits(S, m->spec.N, m->spec.K) || !disrnn__blas_fits(m->spec.P, 1, 1))
        return disrnn__fail(&m->base, DISRNN_ERR_INVALID_ARG, "%s: %zu samples exceed the BLAS integer range.", what, S);
    return DISRNN_OK;
}

int disrnn_model_latents(const disrnn_model_t *model, const disrnn_dataset_t *ds, double *mu, size_t ldmu, size_t n_cols)
{
    disrnn__samples s;
    int rc;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if (!mu) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_latents: mu is NULL.");
    if (ldmu < model->spec.K)
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG,
                            "disrnn_model_latents: ldmu = %zu is smaller than K = %zu.", ldmu, model->spec.K);
    rc = prepare(model, ds, &s, "disrnn_model_latents");
    if (rc != DISRNN_OK) return rc;
    if (n_cols < s.S) {
        const size_t S = s.S;
        disrnn__samples_free(&model->base.al, &s);
        return disrnn__fail(&model->base, DISRNN_ERR_BUFFER_TOO_SMALL,
                            "disrnn_model_latents: mu has room for %zu columns but the dataset has %zu samples.",
                            n_cols, S);
    }
    rc = check_fits(model, s.S, "disrnn_model_latents");
    if (rc == DISRNN_OK && !disrnn__blas_fits(ldmu, 1, 1))
        rc = disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_latents: ldmu is too large.");
    if (rc == DISRNN_OK && s.S > 0) disrnn__an_encode(model, s.S, s.h, s.N, s.u, s.P, mu, ldmu);
    disrnn__samples_free(&model->base.al, &s);
    return rc;
}

int disrnn_model_predict(const disrnn_model_t *model, const disrnn_dataset_t *ds, double *xhat, size_t ldx, size_t n_cols)
{
    disrnn__samples s;
    double *mu;
    int rc, nomem;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if (!xhat) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_predict: xhat is NULL.");
    if (ldx < model->spec.N || !disrnn__blas_fits(ldx, 1, 1))
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG,
                            "disrnn_model_predict: ldx = %zu must be at least N = %zu (and fit BLAS integers).", ldx,
                            model->spec.N);
    rc = prepare(model, ds, &s, "disrnn_model_predict");
    if (rc != DISRNN_OK) return rc;
    if (n_cols < s.S) {
        const size_t S = s.S;
        disrnn__samples_free(&model->base.al, &s);
        return disrnn__fail(&model->base, DISRNN_ERR_BUFFER_TOO_SMALL,
                            "disrnn_model_predict: xhat has room for %zu columns but the dataset has %zu samples.",
                            n_cols, S);
    }
    rc = check_fits(model, s.S, "disrnn_model_predict");
    if (rc != DISRNN_OK || s.S == 0) {
        disrnn__samples_free(&model->base.al, &s);
        return rc;
    }
    mu = disrnn__an_samples_mu(model, &s, &model->base.al, &nomem);
    if (!mu) {
        const size_t S = s.S;
        disrnn__samples_free(&model->base.al, &s);
        return disrnn__fail(&model->base, DISRNN_ERR_NOMEM, "disrnn_model_predict: out of memory for %zu samples.", S);
    }
    disrnn__an_decode_eta(model, s.S, mu, model->spec.K, s.u, s.P, xhat, ldx);
    for (size_t j = 0; j < s.S; j++)
        for (size_t n = 0; n < model->spec.N; n++) xhat[n + j * ldx] = disrnn__obs_mean(model->spec.obs, xhat[n + j * ldx]);
    disrnn__free(&model->base.al, mu);
    disrnn__samples_free(&model->base.al, &s);
    return DISRNN_OK;
}

/* Conditional log-likelihood of one observed entry at predictor eta. */
static double entry_loglik(int obs, double x, double eta, double rho)
{
    if (!disrnn__obs_is_poisson(obs)) {
        const double mean = disrnn__obs_mean(obs, eta), r = x - mean;
        return -HALF_LOG_2PI - rho - 0.5 * r * r * exp(-2.0 * rho);
    }
    {
        const double lam = disrnn__obs_mean(obs, eta);
        /* x log(lambda) is 0 for x = 0 even where lambda underflows. */
        const double xl = x > 0.0 ? x * disrnn__an_log_rate(obs, eta) - disrnn__log_factorial(x) : 0.0;
        return xl - lam;
    }
}

/* Poisson log-likelihood with the NLB floor on the rate (lgamma terms omitted: they cancel between
 * the model and the null). */
static double nlb_loglik(double x, double lam, double log_lam)
{
    if (lam < NLB_RATE_FLOOR) {
        lam = NLB_RATE_FLOOR;
        log_lam = log(NLB_RATE_FLOOR);
    }
    return (x > 0.0 ? x * log_lam : 0.0) - lam;
}

int disrnn_model_evaluate(const disrnn_model_t *model, const disrnn_dataset_t *ds, double *metrics, size_t len)
{
    disrnn__samples s;
    double *mu = NULL, *eta = NULL, *chan = NULL;
    size_t N, S, nobs = 0;
    int rc, nomem, obs;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if (!metrics) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_evaluate: metrics is NULL.");
    if (len < (size_t)disrnn_num_metrics())
        return disrnn__fail(&model->base, DISRNN_ERR_BUFFER_TOO_SMALL,
                            "disrnn_model_evaluate: metrics has room for %zu values, %d are needed.", len,
                            disrnn_num_metrics());
    rc = prepare(model, ds, &s, "disrnn_model_evaluate");
    if (rc != DISRNN_OK) return rc;
    N = model->spec.N;
    S = s.S;
    obs = model->spec.obs;
    if (S == 0) {
        disrnn__samples_free(&model->base.al, &s);
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_model_evaluate: the dataset has no samples.");
    }
    rc = check_fits(model, S, "disrnn_model_evaluate");
    if (rc != DISRNN_OK) {
        disrnn__samples_free(&model->base.al, &s);
        return rc;
    }
    mu = disrnn__an_samples_mu(model, &s, &model->base.al, &nomem);
    eta = disrnn__alloc_doubles(&model->base.al, S * N); /* S * N fits: the samples hold as many */
    chan = (double *)disrnn__calloc(&model->base.al, N, 5 * sizeof(double));
    if (!mu || !eta || !chan) {
        rc = disrnn__fail(&model->base, DISRNN_ERR_NOMEM, "disrnn_model_evaluate: out of memory for %zu samples.", S);
        goto done;
    }
    disrnn__an_decode_eta(model, S, mu, model->spec.K, s.u, s.P, eta, N);
    {
        /* Per channel: count, mean of x (first pass), then SST, SSE (second pass). Two passes
         * keep SST accurate when the mean is large against the spread. */
        double *cnt = chan, *mean = chan + N, *sst = chan + 2 * N, *sse = chan + 3 * N, *xsum = chan + 4 * N;
        const double *rho = disrnn__obs_is_poisson(obs) ? NULL : model->blk[DISRNN_BLOCK_RHO];
        double ll = 0.0, ll_model = 0.0, ll_null = 0.0, spikes = 0.0, r2sum = 0.0, sse_all = 0.0;
        size_t r2n = 0;
        for (size_t j = 0; j < S; j++)
            for (size_t n = 0; n < N; n++) {
                if (s.mask && !s.mask[n + j * N]) continue;
                cnt[n] += 1.0;
                xsum[n] += s.x[n + j * N];
            }
        for (size_t n = 0; n < N; n++) mean[n] = cnt[n] > 0.0 ? xsum[n] / cnt[n] : 0.0;
        for (size_t j = 0; j < S; j++)
            for (size_t n = 0; n < N; n++) {
                const double x = s.x[n + j * N], e = eta[n + j * N];
                double pred, dx, dm;
                if (s.mask && !s.mask[n + j * N]) continue;
                nobs++;
                pred = disrnn__obs_mean(obs, e);
                dx = x - pred;
                dm = x - mean[n];
                sse[n] += dx * dx;
                sst[n] += dm * dm;
                ll += entry_loglik(obs, x, e, rho ? rho[n] : 0.0);
                if (rho == NULL) {
                    ll_model += nlb_loglik(x, pred, disrnn__an_log_rate(obs, e));
                    ll_null += nlb_loglik(x, mean[n], log(mean[n]));
                    spikes += x;
                }
            }
        for (size_t n = 0; n < N; n++) {
            sse_all += sse[n];
            if (sst[n] > 0.0) {
                r2sum += 1.0 - sse[n] / sst[n];
                r2n++;
            }
        }
        metrics[DISRNN_METRIC_R2] = r2n ? r2sum / (double)r2n : NAN;
        metrics[DISRNN_METRIC_LOGLIK] = ll / (double)S;
        metrics[DISRNN_METRIC_BITS_PER_SPIKE] = rho == NULL && spikes > 0.0 ? (ll_model - ll_null) / (spikes * LN2) : NAN;
        metrics[DISRNN_METRIC_MSE] = nobs ? sse_all / (double)nobs : NAN;
        if (!isfinite(metrics[DISRNN_METRIC_LOGLIK]))
            disrnn__log(&model->base, DISRNN_LOG_WARN, "disrnn_model_evaluate: the log-likelihood is not finite.");
    }
    rc = DISRNN_OK;
done:
    disrnn__free(&model->base.al, chan);
    disrnn__free(&model->base.al, eta);
    disrnn__free(&model->base.al, mu);
    disrnn__samples_free(&model->base.al, &s);
    return rc;
}
