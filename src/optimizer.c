/* Adam / AdamW with PyTorch's update rule (torch.optim._single_tensor_adam(w)), clip_grad_norm_'s
 * scale and the per-epoch learning-rate schedules. The moments are PyTorch's operations in
 * PyTorch's order, the same bits. The step m / (sqrt(v) / bc2 + eps) is computed without the
 * divider on CPUs with fused multiply-adds (adam_block_fast; within 3 ulps of the exact quotient,
 * as PyTorch's own rounded formula is) and with PyTorch's square root and two divisions elsewhere.
 *
 * The update is one pass over blocks of the arrays that stay in L1, with the finite-value check
 * folded in. Every operation is either correctly rounded or an explicit fma() (never a contraction
 * left to the compiler), so the AVX-512 and AVX2 + FMA copies give the same bits, those of the
 * scalar formula, and the baseline copy gives PyTorch's. */
#include "optimizer.h"

#include <math.h>
#include <string.h>

#include "disrnn.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#if defined(__GNUC__) && !defined(__clang__)
#define AD_OPT optimize("fp-contract=off", "vect-cost-model=dynamic")
#define AD_FN_ATTR __attribute__((AD_OPT))
#define AD_BODY_ATTR __attribute__((always_inline, AD_OPT))
#else
#define AD_FN_ATTR
#define AD_BODY_ATTR
#endif
/* No copies under ThreadSanitizer: its runtime starts after the CPU checks would run. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
#define AD_CLONES 1
#include <immintrin.h>
#else
#define AD_CLONES 0
#endif

#define AD_BLOCK 512
#define EXP_MASK 0x7ff0000000000000ULL
#define EXP_ONE 0x0010000000000000ULL /* exponent all ones + this sets bit 63, nothing else does */
/* First guesses at 1/sqrt(x) and 1/x from the bits of x (the exponent halved or negated, the
 * mantissa's error spread): the constants minimise the largest relative error of the guess over
 * every mantissa and both exponent parities, searched here (3.4% and 5.1%). */
#define RSQRT_SEED 0x5fe6ec8400000000ULL
#define RCP_SEED 0x7fde623800000000ULL

typedef struct adam_c {
    double w, beta2, one_m_beta2, bc2_sqrt, eps, neg_step, decay;
    double inv_bc2_sqrt, vmin; /* for adam_block_fast */
    int fast;
} adam_c;

/* Nonzero bit 63 when x is infinite or NaN; OR-ed over arrays without a branch. */
static inline uint64_t nonfinite_bit(double x) { return (disrnn__bits_of(x) & EXP_MASK) + EXP_ONE; }

/* exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2).
 * torch's lerp switches formula at weight 0.5 to stay exact at both ends; the test is hoisted. */
AD_BODY_ATTR static inline uint64_t adam_moments(const adam_c *c, size_t len, const double *restrict g,
                                                 const double *restrict m, const double *restrict v,
                                                 double *restrict mo, double *restrict vo)
{
    const double w = c->w, b2 = c->beta2, ob2 = c->one_m_beta2, omw = 1.0 - c->w;
    uint64_t bad = 0;
    if (w < 0.5) {
        for (size_t i = 0; i < len; i++) {
            const double mn = m[i] + w * (g[i] - m[i]), vn = v[i] * b2 + ob2 * g[i] * g[i];
            mo[i] = mn;
            vo[i] = vn;
            bad |= nonfinite_bit(mn) | nonfinite_bit(vn);
        }
    } else {
        for (size_t i = 0; i < len; i++) {
            const double mn = g[i] - (g[i] - m[i]) * omw, vn = v[i] * b2 + ob2 * g[i] * g[i];
            mo[i] = mn;
            vo[i] = vn;
            bad |= nonfinite_bit(mn) | nonfinite_bit(vn);
        }
    }
    return bad;
}

/* denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps); AdamW's param.mul_(1 - lr wd)
 * (decay = 1 for Adam, which leaves every value as it is); param.addcdiv_(exp_avg, denom,
 * value=-step_size). sq holds sqrt(v). */
AD_BODY_ATTR static inline uint64_t adam_params(const adam_c *c, size_t len, const double *restrict th,
                                                double *restrict th_new, const double *restrict mo,
                                                const double *restrict sq)
{
    const double bc = c->bc2_sqrt, eps = c->eps, ns = c->neg_step, decay = c->decay;
    uint64_t bad = 0;
    for (size_t i = 0; i < len; i++) {
        const double denom = sq[i] / bc + eps, tn = th[i] * decay + ns * (mo[i] / denom);
        th_new[i] = tn;
        bad |= nonfinite_bit(tn);
    }
    return bad;
}

/* The same update without the divider, whose two divisions and square root per parameter (about
 * 2.5 ns whatever the vector width) were most of its time: sqrt(v) from a first guess at
 * 1/sqrt(v) refined by three coupled Newton steps (s -> sqrt v, h -> 1 / (2 sqrt v); the error
 * goes 3.4e-2, 1.8e-3, 4.6e-6, 3.2e-11) and a last correction s += (v - s^2) h; 1 / denom by
 * three Newton steps from its guess (5.1e-2 to 4.2e-11) and the quotient corrected once,
 * q += (m - denom q) / denom. Each correction squares the error, so the step ends within 3 ulps
 * of the exact quotient, as PyTorch's rounded square root and divisions do (tests/test_optimizer.c
 * measures both). Values of v below vmin are raised to vmin: there sqrt(v) / bc2 is below
 * 2^-60 eps and the denominator rounds to eps either way, and every guess starts from a normal
 * number (c->fast is 0, and the exact form runs, when eps bc2 is too small for that, below
 * 2^-400).
 *
 * Three loops over the block, not one: a value's chain of dependent operations is about 30 long,
 * and in one loop the scheduler cannot hold enough of them to keep the vector units busy. The
 * finite check is fma(x, 0, 0), +0 for every finite x and NaN otherwise, OR-ed as bits; it looks
 * at v and at the parameter only, as a non-finite m makes the parameter NaN. Returns nonzero
 * bits when something is not finite. */
AD_BODY_ATTR static inline uint64_t adam_fast_first(const adam_c *c, size_t len, int lerp_hi,
                                                    const double *restrict g, const double *restrict m,
                                                    const double *restrict v, double *restrict mo,
                                                    double *restrict vo, double *restrict den)
{
    const double w = c->w, omw = 1.0 - c->w, b2 = c->beta2, ob2 = c->one_m_beta2, vmin = c->vmin;
    const double ibc = c->inv_bc2_sqrt, eps = c->eps;
    uint64_t bad = 0;
    for (size_t i = 0; i < len; i++) {
        const double mn = lerp_hi ? g[i] - (g[i] - m[i]) * omw : m[i] + w * (g[i] - m[i]);
        const double vn = v[i] * b2 + ob2 * g[i] * g[i], vv = vn > vmin ? vn : vmin;
        double y = disrnn__double_of(RSQRT_SEED - (disrnn__bits_of(vv) >> 1)), s = vv * y, h = 0.5 * y, r;
        mo[i] = mn;
        vo[i] = vn;
        bad |= disrnn__bits_of(fma(vn, 0.0, 0.0));
        r = fma(-s, h, 0.5);
        s = fma(s, r, s);
        h = fma(h, r, h);
        r = fma(-s, h, 0.5);
        s = fma(s, r, s);
        h = fma(h, r, h);
        r = fma(-s, h, 0.5);
        s = fma(s, r, s);
        h = fma(h, r, h);
        s = fma(fma(-s, s, vv), h, s);
        den[i] = fma(s, ibc, eps);
    }
    return bad;
}

AD_BODY_ATTR static inline uint64_t adam_block_fast(const adam_c *c, size_t len, const double *restrict th,
                                                    double *restrict th_new, const double *restrict g,
                                                    const double *restrict m, const double *restrict v,
                                                    double *restrict mo, double *restrict vo,
                                                    double *restrict den, double *restrict rd)
{
    const double ns = c->neg_step, decay = c->decay;
    uint64_t bad = c->w < 0.5 ? adam_fast_first(c, len, 0, g, m, v, mo, vo, den)
                              : adam_fast_first(c, len, 1, g, m, v, mo, vo, den);
    for (size_t i = 0; i < len; i++) {
        const double d = den[i];
        double y = disrnn__double_of(RCP_SEED - disrnn__bits_of(d));
        y = fma(y, fma(-d, y, 1.0), y);
        y = fma(y, fma(-d, y, 1.0), y);
        rd[i] = fma(y, fma(-d, y, 1.0), y);
    }
    for (size_t i = 0; i < len; i++) {
        const double d = den[i], y = rd[i], mn = mo[i];
        double q = mn * y, tn;
        q = fma(fma(-d, q, mn), y, q);
        tn = fma(ns, q, th[i] * decay);
        th_new[i] = tn;
        bad |= disrnn__bits_of(fma(tn, 0.0, 0.0));
    }
    return bad ? 1ULL << 63 : 0;
}

/* The next block's inputs, asked for one block ahead: with n in the tens of thousands the arrays
 * come from L3, and four streams at once outrun the hardware prefetcher (S3: about 30 us of a
 * 1.4 ms step, measured; asking for the outputs too was slower). */
#if defined(__GNUC__)
#define AD_AHEAD(n, i0, g, m, v, th)                                                                         \
    do {                                                                                                     \
        if ((i0) + 2 * AD_BLOCK <= (n))                                                                      \
            for (size_t q_ = (i0) + AD_BLOCK; q_ < (i0) + 2 * AD_BLOCK; q_ += 8) {                           \
                __builtin_prefetch((g) + q_, 0, 3);                                                          \
                __builtin_prefetch((m) + q_, 0, 3);                                                          \
                __builtin_prefetch((v) + q_, 0, 3);                                                          \
                __builtin_prefetch((th) + q_, 0, 3);                                                         \
            }                                                                                                \
    } while (0)
#else
#define AD_AHEAD(n, i0, g, m, v, th) ((void)0)
#endif

/* The square roots of a block with the vector instructions (libm's sqrt sets errno, which keeps
 * the vectoriser away; both are correctly rounded, so the bits agree). hw_fma: the copy may take
 * adam_block_fast, which only copies with fused multiply-adds in hardware do (elsewhere fma() is
 * a library call, slower than the divider). */
#define AD_KERNEL(name, attr, width, sqrt_vec, hw_fma)                                                        \
    attr static uint64_t name(const adam_c *c, size_t n, const double *th, double *th_new, const double *g,   \
                              const double *m, const double *v, double *mo, double *vo)                      \
    {                                                                                                        \
        double sq[AD_BLOCK], rd[AD_BLOCK];                                                                   \
        uint64_t bad = 0;                                                                                    \
        for (size_t i0 = 0; i0 < n; i0 += AD_BLOCK) {                                                        \
            const size_t len = n - i0 < AD_BLOCK ? n - i0 : AD_BLOCK;                                        \
            size_t i = 0;                                                                                    \
            AD_AHEAD(n, i0, g, m, v, th);                                                                    \
            if ((hw_fma) && c->fast) {                                                                       \
                bad |= adam_block_fast(c, len, th + i0, th_new + i0, g + i0, m + i0, v + i0, mo + i0, vo + i0,   \
                                       sq, rd);                                                              \
                continue;                                                                                    \
            }                                                                                                \
            bad |= adam_moments(c, len, g + i0, m + i0, v + i0, mo + i0, vo + i0);                           \
            for (; i + (width) <= len; i += (width)) sqrt_vec(sq + i, vo + i0 + i);                          \
            for (; i < len; i++) sq[i] = sqrt(vo[i0 + i]);                                                   \
            bad |= adam_params(c, len, th + i0, th_new + i0, mo + i0, sq);                                   \
        }                                                                                                    \
        return bad;                                                                                          \
    }

#define SQRT_SCALAR(dst, src) (*(dst) = sqrt(*(src)))
#if AD_CLONES
#define SQRT_512(dst, src) _mm512_storeu_pd((dst), _mm512_sqrt_pd(_mm512_loadu_pd(src)))
#define SQRT_256(dst, src) _mm256_storeu_pd((dst), _mm256_sqrt_pd(_mm256_loadu_pd(src)))
#define SQRT_128(dst, src) _mm_storeu_pd((dst), _mm_sqrt_pd(_mm_loadu_pd(src)))
AD_KERNEL(adam_avx512, __attribute__((target("avx512f"), AD_OPT)), 8, SQRT_512, 1)
AD_KERNEL(adam_avx2, __attribute__((target("avx2,fma"), AD_OPT)), 4, SQRT_256, 1)
AD_KERNEL(adam_base, AD_FN_ATTR, 2, SQRT_128, 0)
#else
AD_KERNEL(adam_base, AD_FN_ATTR, 1, SQRT_SCALAR, 0)
#endif

typedef uint64_t (*adam_fn)(const adam_c *, size_t, const double *, double *, const double *, const double *,
                            const double *, double *, double *);

static adam_fn adam_pick(void)
{
#if AD_CLONES
    if (__builtin_cpu_supports("avx512f")) return adam_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return adam_avx2;
#endif
    return adam_base;
}

int disrnn__adam_divider_free(void) { return adam_pick() != adam_base; }

static void adam_consts(const disrnn__adam *o, int64_t step, adam_c *c)
{
    const double bc1 = 1.0 - pow(o->beta1, (double)step);
    const double bc2 = 1.0 - pow(o->beta2, (double)step);
    c->w = 1.0 - o->beta1;
    c->beta2 = o->beta2;
    c->one_m_beta2 = 1.0 - o->beta2;
    c->bc2_sqrt = sqrt(bc2);
    c->eps = o->eps;
    c->neg_step = -(o->lr / bc1);
    /* decoupled decay multiplies by (1 - lr * wd) first; Adam's weight_decay is documented as
     * AdamW-only, so plain Adam ignores it (a factor 1 changes no value) */
    c->decay = o->adamw ? 1.0 - o->lr * o->weight_decay : 1.0;
    c->inv_bc2_sqrt = 1.0 / c->bc2_sqrt;
    c->fast = o->eps * c->bc2_sqrt >= 0x1p-400;
    c->vmin = c->fast ? (o->eps * c->bc2_sqrt * 0x1p-60) * (o->eps * c->bc2_sqrt * 0x1p-60) : 0.0;
}

/* Tasks: at least 16384 parameters (a multiple of AD_BLOCK) and at most AD_TASKS of them. */
#define AD_TASKS 64
typedef struct adam_ctx {
    adam_fn fn;
    adam_c c;
    size_t n, per;
    double *theta_new, *m_out, *v_out;
    const double *theta, *grad, *m, *v;
    uint64_t bad[AD_TASKS];
} adam_ctx;

static void adam_task(void *ctx, size_t t)
{
    adam_ctx *a = (adam_ctx *)ctx;
    const size_t i0 = t * a->per, len = a->n - i0 < a->per ? a->n - i0 : a->per;
    a->bad[t] = a->fn(&a->c, len, a->theta + i0, a->theta_new + i0, a->grad + i0, a->m + i0, a->v + i0,
                      a->m_out + i0, a->v_out + i0);
}

int disrnn__adam_update(const disrnn__adam *o, disrnn__pool *pool, size_t n, const double *theta, double *theta_new,
                        const double *grad, const double *m, const double *v, double *m_out, double *v_out,
                        int64_t step)
{
    adam_ctx a;
    size_t tasks, per = (n + AD_TASKS - 1) / AD_TASKS;
    uint64_t bad = 0;
    per = (per + AD_BLOCK - 1) / AD_BLOCK * AD_BLOCK;
    if (per < 16384) per = 16384;
    tasks = n ? (n + per - 1) / per : 0;
    adam_consts(o, step, &a.c);
    a.fn = adam_pick();
    a.n = n;
    a.per = per;
    a.theta = theta;
    a.theta_new = theta_new;
    a.grad = grad;
    a.m = m;
    a.v = v;
    a.m_out = m_out;
    a.v_out = v_out;
    disrnn__pool_run(pool, tasks, adam_task, &a);
    for (size_t t = 0; t < tasks; t++) bad |= a.bad[t];
    return (bad >> 63) == 0;
}

void disrnn__adam_step(const disrnn__adam *o, size_t n, double *theta, const double *grad, double *m, double *v,
                       int64_t step)
{
    double tn[AD_BLOCK], mo[AD_BLOCK], vo[AD_BLOCK];
    const adam_fn fn = adam_pick();
    adam_c c;
    adam_consts(o, step, &c);
    for (size_t i0 = 0; i0 < n; i0 += AD_BLOCK) {
        const size_t len = n - i0 < AD_BLOCK ? n - i0 : AD_BLOCK;
        (void)fn(&c, len, theta + i0, tn, grad + i0, m + i0, v + i0, mo, vo);
        memcpy(theta + i0, tn, len * sizeof(double));
        memcpy(m + i0, mo, len * sizeof(double));
        memcpy(v + i0, vo, len * sizeof(double));
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
