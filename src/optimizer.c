/* Adam / AdamW with PyTorch's arithmetic (torch.optim._single_tensor_adam(w)), clip_grad_norm_'s
 * scale and the per-epoch learning-rate schedules. Written out operation by operation in PyTorch's
 * order so a model fitted here and one fitted by the reference scripts differ only by the data and
 * noise draws, not by the update rule. */
#include "optimizer.h"

#include <math.h>

#include "disrnn.h"

void disrnn__adam_step(const disrnn__adam *o, size_t n, double *theta, const double *grad, double *m, double *v,
                       int64_t step)
{
    const double w = 1.0 - o->beta1; /* exp_avg.lerp_(grad, 1 - beta1) */
    const double bc1 = 1.0 - pow(o->beta1, (double)step);
    const double bc2 = 1.0 - pow(o->beta2, (double)step);
    const double step_size = o->lr / bc1;
    const double bc2_sqrt = sqrt(bc2);
    /* decoupled decay multiplies by (1 - lr * wd) first; Adam's weight_decay is documented as
     * AdamW-only, so plain Adam ignores it (with wd = 0 both paths do the same arithmetic) */
    const double decay = o->adamw ? 1.0 - o->lr * o->weight_decay : 1.0;
    for (size_t i = 0; i < n; i++) {
        const double g = grad[i];
        double denom;
        if (o->adamw) theta[i] *= decay;
        /* torch's lerp switches formula at weight 0.5 to stay exact at both ends */
        if (w < 0.5)
            m[i] = m[i] + w * (g - m[i]);
        else
            m[i] = g - (g - m[i]) * (1.0 - w);
        v[i] = v[i] * o->beta2 + (1.0 - o->beta2) * g * g;
        denom = sqrt(v[i]) / bc2_sqrt + o->eps;
        theta[i] = theta[i] + (-step_size) * (m[i] / denom);
    }
}

double disrnn__grad_norm(const double *g, size_t n)
{
    /* scaled so a huge but finite gradient does not overflow the sum of squares */
    double big = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double a = fabs(g[i]);
        if (a > big) big = a;
    }
    if (big == 0.0 || !isfinite(big)) return big;
    for (size_t i = 0; i < n; i++) {
        const double r = g[i] / big;
        s += r * r;
    }
    return big * sqrt(s);
}

double disrnn__clip_scale(double norm, double max_norm)
{
    /* torch: clip_coef = max_norm / (total_norm + 1e-6), clamped to at most 1 */
    double c;
    if (max_norm <= 0.0) return 1.0;
    c = max_norm / (norm + 1e-6);
    return c < 1.0 ? c : 1.0;
}

double disrnn__schedule_lr(int schedule, double lr, double gamma, double lr_min, int64_t epoch, int64_t epochs)
{
    const double pi = 3.14159265358979323846;
    switch (schedule) {
    case DISRNN_SCHED_EXPONENTIAL:
        return lr * pow(gamma, (double)epoch);
    case DISRNN_SCHED_COSINE:
        /* past the planned epochs the rate stays at lr_min instead of rising again */
        if (epochs <= 0) return lr;
        if (epoch > epochs) epoch = epochs;
        return lr_min + (lr - lr_min) * (1.0 + cos(pi * (double)epoch / (double)epochs)) / 2.0;
    default:
        return lr;
    }
}
