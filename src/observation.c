/* Observation models: the negative log-likelihood of a batch and its derivatives (MODEL.md
 * section 2, "Observation models"). Every Poisson quantity is formed in log space so that counts up
 * to 1e4 and eta anywhere in [-700, 700] give finite values and gradients. */
#include "model.h"
#include "objective_internal.h"

#include <math.h>

#define HALF_LOG_2PI 0.91893853320467274178032973640562

double disrnn__log_factorial(double x)
{
    /* Up to 18! every partial product is an integer below 2^53, so the product is exact and one
     * log is correctly rounded. Above, Stirling's series to 1/n^7 is accurate to ~1e-16 relative
     * (next term 1/(1188 n^9) < 3e-15 at n = 19). Avoids lgamma, which writes the global signgam
     * and so is not thread-safe. */
    if (x <= 18.0) {
        double p = 1.0;
        for (double k = 2.0; k <= x; k += 1.0) p *= k;
        return log(p);
    }
    {
        const double r = 1.0 / x, r2 = r * r;
        const double series = r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 * (1.0 / 1680.0))));
        return x * log(x) - x + 0.5 * log(x) + HALF_LOG_2PI + series;
    }
}

/* log(1 + exp(v)) without overflow or loss of the small tail. */
static double softplus(double v)
{
    return v > 0.0 ? v + log1p(exp(-v)) : log1p(exp(v));
}

double disrnn__log_softplus(double eta)
{
    /* For eta < -20, softplus(eta) = y (1 - y/2 + y^2/3 - ...) with y = exp(eta) < 3e-9, so
     * log softplus = eta + log1p(-y/2 + ...), and the dropped y^2/3 is below 1e-17. This stays
     * finite where exp(eta) underflows to 0 (eta < -745) and never takes log(0). */
    if (eta < -20.0) return eta + log1p(-0.5 * exp(eta));
    return log(softplus(eta));
}

double disrnn__obs_nll(int obs, size_t N, size_t M, const double *x, size_t ldx, const uint8_t *mask,
                       size_t ldmask, const double *eta, const double *rho, double scale, double *deta,
                       double *drho)
{
    double total = 0.0;
    for (size_t n = 0; n < N; n++) {
        double row = 0.0, drow = 0.0;
        const int gaussian = obs == DISRNN_OBS_GAUSSIAN || obs == DISRNN_OBS_GAUSSIAN_RELU;
        const double r = gaussian ? rho[n] : 0.0;
        const double inv_var = gaussian ? exp(-2.0 * r) : 0.0;
        for (size_t j = 0; j < M; j++) {
            const size_t ie = n + j * N;
            const double e = eta[ie];
            double v, d;
            if (mask && !mask[n + j * ldmask]) {
                if (deta) deta[ie] = 0.0;
                continue;
            }
            {
                const double xv = x[n + j * ldx];
                switch (obs) {
                case DISRNN_OBS_GAUSSIAN:
                case DISRNN_OBS_GAUSSIAN_RELU: {
                    const int active = obs == DISRNN_OBS_GAUSSIAN || e > 0.0;
                    const double res = xv - (active ? e : 0.0);
                    const double q = res * res * inv_var;
                    v = HALF_LOG_2PI + r + 0.5 * q;
                    d = active ? -res * inv_var : 0.0;
                    drow += 1.0 - q;
                    break;
                }
                case DISRNN_OBS_POISSON_SOFTPLUS: {
                    const double log_lam = disrnn__log_softplus(e);
                    /* log sigmoid(e) = -softplus(-e); the ratio sigmoid / softplus tends to 1 as
                     * e -> -inf, so x / lambda * dlambda never forms x / lambda on its own. */
                    const double log_sig = -softplus(-e);
                    v = softplus(e) + (xv > 0.0 ? -xv * log_lam + disrnn__log_factorial(xv) : 0.0);
                    d = exp(log_sig) - (xv > 0.0 ? xv * exp(log_sig - log_lam) : 0.0);
                    break;
                }
                default: { /* DISRNN_OBS_POISSON_EXP: log lambda = eta exactly */
                    const double lam = exp(e);
                    v = lam - xv * e + (xv > 0.0 ? disrnn__log_factorial(xv) : 0.0);
                    d = lam - xv;
                    break;
                }
                }
            }
            row += v;
            if (deta) deta[ie] = scale * d;
        }
        total += scale * row;
        if (drho && gaussian) drho[n] = scale * drow;
    }
    return total;
}

int disrnn__obs_check(int obs, size_t N, size_t M, const double *x, size_t ldx, const uint8_t *mask,
                      size_t ldmask, size_t *bad_row, size_t *bad_col)
{
    const int poisson = obs == DISRNN_OBS_POISSON_SOFTPLUS || obs == DISRNN_OBS_POISSON_EXP;
    for (size_t j = 0; j < M; j++)
        for (size_t n = 0; n < N; n++) {
            const double v = x[n + j * ldx];
            int bad = 0;
            if (mask && !mask[n + j * ldmask]) continue;
            if (!isfinite(v)) bad = 1;
            else if (poisson && (v < 0.0 || v != floor(v))) bad = 2;
            if (bad) {
                *bad_row = n;
                *bad_col = j;
                return bad;
            }
        }
    return 0;
}
