/* The importance-sampled group total correlation PC_hat of MODEL.md section 4 and its gradient:
 * the training step's hot spot (G M^2 exponentials and M^2 K distance terms, forward and back).
 *
 * With l_ij^g the log density of z_i's group-g coordinates under component j, l_ij = sum_g l_ij^g
 * and w_ij the importance weight (1 on the diagonal, w = (N_tot - 1) / (M - 1) elsewhere),
 *   PC_hat = (1/M) sum_i [ ln sum_j w_ij e^{l_ij} - sum_g ln sum_j w_ij e^{l_ij^g} ] + (G - 1) ln N_tot,
 * and dPC/dl_ij^g = W_ij^g = (P_ij - Q_ij^g) / M with P and Q^g the row-wise softmax weights of
 * the full and the group mixtures (l_ij enters every group's density).
 *
 * How it is computed (docs/performance.md has the measurements), one row i at a time, with
 * everything of that row in L1:
 * - In units scaled by s (a_ik = z_ik / s_k, b_jk = mu_jk / s_k), l_ij^g = c_g - d_ij^g / 2 with
 *   d_ij^g = sum_{k in g} (a_ik - b_jk)^2 and c_g = -sum_{k in g} (ln s_k + ln(2 pi) / 2). The c_g
 *   cancel in the row's contribution (c = sum_g c_g) and in the softmax weights, so only
 *   E_ij^g = exp(-d_ij^g / 2) is needed; a and b also carry KAPPA = sqrt(log2(e) / 2), so that
 *   E = 2^-d with no scaling. As d >= 0, E <= 1 and the log-sum-exp needs no shift by the row
 *   maximum (one pass fewer). The diagonal term E_ii^g = exp(-|eps_i,g|^2 / 2) keeps every sum far
 *   from underflow; a row whose sum still falls below 2^-900 (only for absurd noise) is
 *   recomputed by pc_row_exact() with the exact maximum shift.
 * - The full mixture's exponentials are products of the group ones, E_ij = prod_g E_ij^g: G
 *   exponentials per pair instead of G + 1, each taken once and kept for the backward pass.
 * - Distances are plain differences (H multiply-adds per pair and group: as cheap as a GEMM for
 *   groups of a few latents, and free of the cancellation in |a|^2 + |b|^2 - 2 a.b).
 * - The backward pass is rank-one updates: sum_j W_ij (a_ik - b_jk) = a_ik sum_j W_ij -
 *   sum_j W_ij b_jk gives dz_i; the mixture centres collect sum_i W_ij a_ik and, at the end,
 *   - b_jk sum_i W_ij; the log s gradient follows from the same sums. Two multiply-adds per pair
 *   and latent.
 * - The exponential is a vector polynomial over 8 lanes of GCC vector extensions (pc_vexp2:
 *   within 1 ulp of glibc's exp2, flushing results below 2^-1021 to 0), compiled three times and
 *   chosen at run time: AVX-512, AVX2 + FMA, or the baseline instruction set. Compilers without
 *   vector extensions use pc_row_exact() for every row.
 * - The M row contributions are logarithms of ratios S / prod_g S_g: their product is
 *   accumulated (with an exact power-of-two exponent) and one logarithm taken at the end.
 * - Nothing is allocated: the caller's work buffer holds b transposed (k-major, samples
 *   contiguous, padded to a multiple of 8), the centre sums and the row buffers, O((K + G) M).
 * Results depend only on the inputs and the instruction set (with or without FMA), never on
 * timing or threads. */
#include "model.h"
#include "objective_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Lanes of the vector code. */
#define PC_W 8
/* A row sum below this is recomputed with the exact log-sum-exp shift. */
#define PC_TINY 0x1p-900
/* Distances are taken in units where exp(-d/2) = 2^(-d'): a and b carry the factor
 * KAPPA = sqrt(log2(e) / 2), so the exponential needs no scaling. */
#define KAPPA 0.84932180028801907
#define LN2 0.69314718055994529
#define TWO_LN2 1.3862943611198906 /* 1 / KAPPA^2 */

#if defined(__GNUC__) && !defined(DISRNN_PC_SCALAR)
#define PC_VEC 1
typedef double pc_vd __attribute__((vector_size(8 * PC_W)));
typedef long long pc_vl __attribute__((vector_size(8 * PC_W)));
typedef unsigned long long pc_vu __attribute__((vector_size(8 * PC_W)));
#define PC_INLINE static inline __attribute__((always_inline))
/* the group-size loops have constant trip counts (1 to 4) in the specialised copies: unroll them
 * so their accumulators live in registers */
#if defined(__clang__)
#define PC_UNROLL _Pragma("unroll 4")
#else
#define PC_UNROLL _Pragma("GCC unroll 4")
#endif
#else
#define PC_VEC 0
#endif

/* Everything a row needs. Arrays with a T suffix are transposed: k-major, j contiguous, Mp wide. */
typedef struct pc_ctx {
    size_t K, M, Mp, G;
    const size_t *gs;     /* G + 1 group offsets */
    const double *z;      /* K x M samples */
    const double *inv_s;  /* K: kappa / s_k, the scale of a and b */
    const double *gsc;    /* K: 1 / (kappa s_k), the scale of the gradients */
    const double *bT;     /* K x Mp: b_jk = kappa mu_jk / s_k; padding columns far away */
    double *dmuT;         /* K x Mp: sum_i W_ij a_ik (b_jk CS_j taken off at the end) */
    double *Ef, *Eg, *W;  /* Mp, G x Mp, Mp: row buffers */
    double *Sg;           /* G: the row's group sums */
    double *CS;           /* G x Mp: column sums sum_i W_ij^g */
    double *SW;           /* G: sum_i sum_j W_ij^g (0 up to rounding) */
    double *a;            /* K: a_ik = kappa z_ik / s_k of the current row */
    double *dls;          /* K accumulators of dPC/dlog s, or NULL */
    double *dz;           /* K x M output, or NULL for the value only */
    double w_off, lw_off, inv_m;
    int exact_all;        /* 1: every row through pc_row_exact() (inputs beyond 1e100) */
} pc_ctx;

size_t disrnn__pc_work_size(size_t K, size_t M, size_t G)
{
    size_t mp, a, b, n;
    if (M > SIZE_MAX - PC_W) return 0;
    mp = (M + PC_W - 1) / PC_W * PC_W;
    /* bT and dmuT (2 K Mp), Ef, Eg, W, CS ((2 G + 2) Mp), a, inv_s, gsc, dls (4 K), Sg, SW (2 G),
     * alignment slack */
    if (K > SIZE_MAX / 4 || G > SIZE_MAX / 4 || disrnn__mul_size(2 * K, mp, &a) ||
        disrnn__mul_size(2 * G + 2, mp, &b) || disrnn__add_size(a, b, &n) || disrnn__add_size(n, 4 * K + 2 * G + PC_W, &n))
        return 0;
    return n;
}

/* Row i with the exact maximum shift, scalar and libm's exp: the fallback for rows whose sums
 * underflow and the whole computation for compilers without vector extensions. Accumulates the
 * same quantities as the vector row and returns its contribution ln S - sum_g ln S_g. */
static double pc_row_exact(const pc_ctx *c, size_t i)
{
    const size_t M = c->M, Mp = c->Mp, G = c->G;
    double *lf = c->Ef, *lg = c->Eg;
    double lse_f, contrib, mx, acc;
    for (size_t j = 0; j < M; j++) lf[j] = 0.0;
    for (size_t g = 0; g < G; g++) {
        double *l = lg + g * Mp;
        for (size_t j = 0; j < M; j++) {
            double d = 0.0;
            for (size_t k = c->gs[g]; k < c->gs[g + 1]; k++) {
                const double t = c->a[k] - c->bT[k * Mp + j];
                d += t * t;
            }
            l[j] = -LN2 * d; /* d is in log2 units: -d ln 2 = -d_natural / 2 */
            lf[j] += l[j];
        }
    }
    /* log-sum-exps with the row maximum; the weights enter as log weights */
#define PC_LSE(l, out)                                                                                  \
    do {                                                                                                \
        mx = (l)[i];                                                                                    \
        for (size_t j = 0; j < M; j++)                                                                  \
            if (j != i && (l)[j] + c->lw_off > mx) mx = (l)[j] + c->lw_off;                             \
        acc = 0.0;                                                                                      \
        for (size_t j = 0; j < M; j++) acc += exp((l)[j] + (j == i ? 0.0 : c->lw_off) - mx);            \
        (out) = mx + log(acc);                                                                          \
    } while (0)
    PC_LSE(lf, lse_f);
    contrib = lse_f;
    if (!c->dz) {
        for (size_t g = 0; g < G; g++) {
            double lse_g;
            PC_LSE(lg + g * Mp, lse_g);
            contrib -= lse_g;
        }
        return contrib;
    }
    for (size_t g = 0; g < G; g++) {
        double *l = lg + g * Mp, lse_g;
        PC_LSE(l, lse_g);
        contrib -= lse_g;
        for (size_t j = 0; j < M; j++) {
            const double lw = j == i ? 0.0 : c->lw_off;
            c->W[j] = (exp(lf[j] + lw - lse_f) - exp(l[j] + lw - lse_g)) * c->inv_m;
        }
        {
            double swi = 0.0;
            for (size_t j = 0; j < M; j++) {
                swi += c->W[j];
                c->CS[g * Mp + j] += c->W[j];
            }
            c->SW[g] += swi;
            for (size_t k = c->gs[g]; k < c->gs[g + 1]; k++) {
                const double ak = c->a[k];
                double wb = 0.0;
                for (size_t j = 0; j < M; j++) {
                    wb += c->W[j] * c->bT[k * Mp + j];
                    c->dmuT[k * Mp + j] += c->W[j] * ak;
                }
                c->dz[k + i * c->K] = -(ak * swi - wb) * c->gsc[k];
                if (c->dls) c->dls[k] += ak * ak * swi - 2.0 * ak * wb;
            }
        }
    }
#undef PC_LSE
    return contrib;
}

#if PC_VEC

PC_INLINE void vload(pc_vd *v, const double *p) { memcpy(v, p, sizeof *v); }
PC_INLINE void vstore(double *p, const pc_vd *v) { memcpy(p, v, sizeof *v); }

/* Sum of the lanes in a fixed order, the same on every instruction set. */
PC_INLINE double vhsum(const pc_vd *v)
{
    double s[PC_W];
    memcpy(s, v, sizeof s);
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

/* In place 2^x for arguments x <= 0 (NaN propagates; below -1021 the result, under 2^-1021, is
 * flushed to 0, an absolute error the callers' sums never notice). x = n + r with n the nearest
 * integer (the 1.5 * 2^52 shift rounds) and |r| <= 1/2 exact; 2^r = 1 + r Q(r) with Q of degree 10
 * fitted at Chebyshev nodes (relative error 2e-17; the final multiply-add rounds once); 2^n is
 * built in the exponent bits. Within 1 ulp of glibc's exp2 over [-1021, 0] (16.8 million
 * arguments tested); 0.39 ns per value with AVX-512 on the development machine, against 0.59 ns
 * for glibc's vector exp. */
PC_INLINE void pc_vexp2(pc_vd *px)
{
    const pc_vd x = *px, zero = {0};
    const pc_vd shift = zero + 0x1.8p52;
    const pc_vd t = x + shift;
    const pc_vd r = x - (t - shift);
    pc_vd q;
    pc_vu scale;
    pc_vl under;
    q = zero + 4.4549605981865186e-10;
    q = q * r + 7.0725859492692234e-09;
    q = q * r + 1.0178062445845774e-07;
    q = q * r + 1.3215442587921689e-06;
    q = q * r + 1.5252733829836119e-05;
    q = q * r + 0.0001540353044173605;
    q = q * r + 0.0013333558146416936;
    q = q * r + 0.0096181291076068882;
    q = q * r + 0.055504108664821597;
    q = q * r + 0.24022650695910097;
    q = q * r + 0.69314718055994529;
    q = q * r + 1.0;
    /* 2^n: n is the difference of the bit patterns of t and the shift */
    scale = (((pc_vu)t - (pc_vu)shift) + 1023u) << 52;
    q = q * (pc_vd)scale; /* a NaN x gives a NaN q, whatever the scale */
    under = x < -1021.0;
    *px = (pc_vd)((pc_vl)q & ~under);
}

/* Group g's exponentials E_ij^g = exp(-d_ij^g / 2) over the chunks [j0, j1), stored in eg; their
 * sum is added to *acc. H is a constant in the specialised copies, so the k loop unrolls. */
PC_INLINE void pc_fwd_range(const double *bT, size_t Mp, const double *a, size_t H, size_t j0, size_t j1,
                            double *eg, pc_vd *acc)
{
    pc_vd s = *acc;
    for (size_t jb = j0; jb < j1; jb += PC_W) {
        pc_vd d = {0}, e;
        PC_UNROLL
        for (size_t h = 0; h < H; h++) {
            pc_vd b, diff;
            vload(&b, bT + h * Mp + jb);
            diff = a[h] - b;
            d = d + diff * diff;
        }
        e = -d;
        pc_vexp2(&e);
        vstore(eg + jb, &e);
        s = s + e;
    }
    *acc = s;
}

/* Weighted row sum of a buffer of exponentials: w_off times the other lanes, the diagonal at 1.
 * acc holds the sum of every chunk but the diagonal's. */
PC_INLINE double pc_row_sum(const pc_vd *acc, const double *e, size_t ib, size_t il, double w_off)
{
    double s = 0.0;
    for (size_t l = 0; l < PC_W; l++)
        if (l != il) s += e[ib + l];
    return w_off * (vhsum(acc) + s) + e[ib + il];
}

/* Forward of group g for row i: exponentials into eg, returns the weighted sum S_g. */
PC_INLINE double pc_fwd_group(const pc_ctx *c, size_t g, size_t H, size_t ib, size_t il)
{
    const size_t Mp = c->Mp, k0 = c->gs[g];
    const double *bT = c->bT + k0 * Mp, *a = c->a + k0;
    double *eg = c->Eg + g * Mp;
    pc_vd acc = {0}, skip = {0};
    pc_fwd_range(bT, Mp, a, H, 0, ib, eg, &acc);
    pc_fwd_range(bT, Mp, a, H, ib, ib + PC_W, eg, &skip);
    pc_fwd_range(bT, Mp, a, H, ib + PC_W, Mp, eg, &acc);
    return pc_row_sum(&acc, eg, ib, il, c->w_off);
}

/* Backward of group g for row i over the chunks [j0, j1) with lane weights af, ag:
 * W_j = af E_ij - ag E_ij^g; accumulates the column sums CS, the row sum *sw, the mixture-centre
 * sums dmuT_k += W a_k and, per k, acc_k += W b_jk. Specialised for H <= 4 (all k in one pass). */
PC_INLINE void pc_bwd_range(const pc_ctx *c, size_t g, size_t H, size_t j0, size_t j1, const pc_vd *af,
                            const pc_vd *ag, pc_vd *sw, pc_vd *acck)
{
    const size_t Mp = c->Mp, k0 = c->gs[g];
    const double *bT = c->bT + k0 * Mp, *a = c->a + k0, *eg = c->Eg + g * Mp, *ef = c->Ef;
    double *dmT = c->dmuT + k0 * Mp, *cs = c->CS + g * Mp;
    pc_vd s = *sw, acc[4];
    PC_UNROLL
    for (size_t h = 0; h < H; h++) acc[h] = acck[h];
    for (size_t jb = j0; jb < j1; jb += PC_W) {
        pc_vd f, e, w, col;
        vload(&f, ef + jb);
        vload(&e, eg + jb);
        vload(&col, cs + jb);
        w = *af * f - *ag * e;
        s = s + w;
        col = col + w;
        vstore(cs + jb, &col);
        PC_UNROLL
        for (size_t h = 0; h < H; h++) {
            pc_vd b, m;
            vload(&b, bT + h * Mp + jb);
            vload(&m, dmT + h * Mp + jb);
            acc[h] = acc[h] + w * b;
            m = m + w * a[h];
            vstore(dmT + h * Mp + jb, &m);
        }
    }
    *sw = s;
    PC_UNROLL
    for (size_t h = 0; h < H; h++) acck[h] = acc[h];
}

/* Backward of group g for row i: W_j = (w_ij / M) (E_ij / S - E_ij^g / S_g), the diagonal's
 * weight being 1. sum_j W_ij (a_ik - b_jk) = a_ik sw_i - sum_j W_ij b_jk gives dz; the mixture
 * centres collect sum_i W_ij a_ik now and - b_jk sum_i W_ij (the column sums) at the end. */
PC_INLINE void pc_bwd_group(const pc_ctx *c, size_t g, size_t H, size_t i, size_t ib, size_t il, double sf)
{
    const size_t k0 = c->gs[g];
    const double Sg = c->Sg[g];
    const pc_vd zero = {0};
    const pc_vd af = zero + c->w_off * c->inv_m / sf, ag = zero + c->w_off * c->inv_m / Sg;
    pc_vd afd = af, agd = ag, sw = {0}, acck[4] = {{0}, {0}, {0}, {0}};
    double swi;
    afd[il] = c->inv_m / sf;
    agd[il] = c->inv_m / Sg;
    pc_bwd_range(c, g, H, 0, ib, &af, &ag, &sw, acck);
    pc_bwd_range(c, g, H, ib, ib + PC_W, &afd, &agd, &sw, acck);
    pc_bwd_range(c, g, H, ib + PC_W, c->Mp, &af, &ag, &sw, acck);
    swi = vhsum(&sw);
    c->SW[g] += swi;
    for (size_t h = 0; h < H; h++) {
        const size_t k = k0 + h;
        const double ak = c->a[k], wb = vhsum(&acck[h]);
        c->dz[k + i * c->K] = -(ak * swi - wb) * c->gsc[k];
        if (c->dls) c->dls[k] += ak * ak * swi - 2.0 * ak * wb;
    }
}

/* The same for groups larger than 4: W is stored first, then one pass per latent. */
static void pc_bwd_group_wide(const pc_ctx *c, size_t g, size_t i, size_t ib, size_t il, double sf)
{
    const size_t Mp = c->Mp, k0 = c->gs[g], k1 = c->gs[g + 1];
    const double *eg = c->Eg + g * Mp;
    double *cs = c->CS + g * Mp;
    const double af = c->w_off * c->inv_m / sf, ag = c->w_off * c->inv_m / c->Sg[g];
    pc_vd sw = {0};
    double swi;
    (void)ib;
    (void)il;
    for (size_t jb = 0; jb < Mp; jb += PC_W) {
        pc_vd f, e, w;
        vload(&f, c->Ef + jb);
        vload(&e, eg + jb);
        w = af * f - ag * e;
        vstore(c->W + jb, &w);
    }
    c->W[i] = (c->Ef[i] / sf - eg[i] / c->Sg[g]) * c->inv_m;
    for (size_t jb = 0; jb < Mp; jb += PC_W) {
        pc_vd w, col;
        vload(&w, c->W + jb);
        vload(&col, cs + jb);
        sw = sw + w;
        col = col + w;
        vstore(cs + jb, &col);
    }
    swi = vhsum(&sw);
    c->SW[g] += swi;
    for (size_t k = k0; k < k1; k++) {
        const double ak = c->a[k];
        double *dm = c->dmuT + k * Mp;
        const double *b = c->bT + k * Mp;
        pc_vd acc = {0};
        double wb;
        for (size_t jb = 0; jb < Mp; jb += PC_W) {
            pc_vd bb, w, m;
            vload(&bb, b + jb);
            vload(&w, c->W + jb);
            vload(&m, dm + jb);
            acc = acc + w * bb;
            m = m + w * ak;
            vstore(dm + jb, &m);
        }
        wb = vhsum(&acc);
        c->dz[k + i * c->K] = -(ak * swi - wb) * c->gsc[k];
        if (c->dls) c->dls[k] += ak * ak * swi - 2.0 * ak * wb;
    }
}

/* Forward and backward of row i through the vector code; returns 0 and either the ratio whose
 * logarithm is the contribution (*ratio_out > 0) or the contribution itself (*ratio_out < 0), or 1
 * when a sum is too small (the caller then uses pc_row_exact(); nothing but row buffers has been
 * written). */
PC_INLINE int pc_row_vec(const pc_ctx *c, size_t i, double *contrib, double *ratio_out)
{
    const size_t Mp = c->Mp, G = c->G, ib = i / PC_W * PC_W, il = i % PC_W;
    double sf, ratio;
    pc_vd acc = {0};
    for (size_t g = 0; g < G; g++) {
        const size_t H = c->gs[g + 1] - c->gs[g];
        double s;
        switch (H) {
        case 1: s = pc_fwd_group(c, g, 1, ib, il); break;
        case 2: s = pc_fwd_group(c, g, 2, ib, il); break;
        case 3: s = pc_fwd_group(c, g, 3, ib, il); break;
        case 4: s = pc_fwd_group(c, g, 4, ib, il); break;
        default: s = pc_fwd_group(c, g, H, ib, il); break;
        }
        if (!(s >= PC_TINY)) return 1;
        c->Sg[g] = s;
    }
    /* the full mixture: E_ij = prod_g E_ij^g */
    for (size_t jb = 0; jb < Mp; jb += PC_W) {
        pc_vd f, e;
        vload(&f, c->Eg + jb);
        for (size_t g = 1; g < G; g++) {
            vload(&e, c->Eg + g * Mp + jb);
            f = f * e;
        }
        vstore(c->Ef + jb, &f);
        if (jb != ib) acc = acc + f;
    }
    sf = pc_row_sum(&acc, c->Ef, ib, il, c->w_off);
    if (!(sf >= PC_TINY)) return 1;
    /* the contribution ln S - sum_g ln S_g: as the ratio S / prod_g S_g, whose logarithm the
     * caller takes for all rows at once, while it stays in range */
    ratio = sf;
    for (size_t g = 0; g < G; g++) ratio /= c->Sg[g];
    if (ratio > 0x1p-400 && ratio < 0x1p400) {
        *ratio_out = ratio;
    } else {
        *ratio_out = -1.0;
        double logs = 0.0;
        for (size_t g = 0; g < G; g++) logs += log(c->Sg[g]);
        *contrib = log(sf) - logs;
    }
    if (!c->dz) return 0;
    for (size_t g = 0; g < G; g++) {
        switch (c->gs[g + 1] - c->gs[g]) {
        case 1: pc_bwd_group(c, g, 1, i, ib, il, sf); break;
        case 2: pc_bwd_group(c, g, 2, i, ib, il, sf); break;
        case 3: pc_bwd_group(c, g, 3, i, ib, il, sf); break;
        case 4: pc_bwd_group(c, g, 4, i, ib, il, sf); break;
        default: pc_bwd_group_wide(c, g, i, ib, il, sf); break;
        }
    }
    return 0;
}

/* All rows through the vector code; inlined into one function per instruction set. */
PC_INLINE double pc_rows_vec(const pc_ctx *c)
{
    /* sum_i ln ratio_i as ln prod_i ratio_i: one logarithm instead of M; the product is kept in
     * [2^-500, 2^500] by moving powers of two into an integer exponent (exact) */
    double total = 0.0, prod = 1.0;
    long e2 = 0;
    for (size_t i = 0; i < c->M; i++) {
        double contrib = 0.0, ratio = -1.0;
        const size_t K = c->K;
        for (size_t k = 0; k < K; k++) c->a[k] = c->z[k + i * K] * c->inv_s[k];
        if (c->exact_all || pc_row_vec(c, i, &contrib, &ratio)) {
            contrib = pc_row_exact(c, i);
            ratio = -1.0;
        }
        if (ratio < 0.0) {
            total += contrib;
        } else {
            prod *= ratio;
            if (!(prod > 0x1p-500 && prod < 0x1p500)) {
                int e;
                prod = frexp(prod, &e);
                e2 += e;
            }
        }
    }
    return total + (log(prod) + (double)e2 * LN2);
}

/* One copy per instruction set. FMA contraction is asked for here, where it pays (the polynomial
 * and the distances: 1.5 times faster), so the rest of the library keeps the ISO C default. */
#if defined(__GNUC__) && !defined(__clang__)
#define PC_CONTRACT , optimize("fp-contract=fast")
#else
#define PC_CONTRACT
#endif
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f") PC_CONTRACT)) static double pc_rows_avx512(const pc_ctx *c) { return pc_rows_vec(c); }
__attribute__((target("avx2,fma") PC_CONTRACT)) static double pc_rows_avx2(const pc_ctx *c) { return pc_rows_vec(c); }
#endif
static double pc_rows_base(const pc_ctx *c) { return pc_rows_vec(c); }

static double pc_rows(const pc_ctx *c)
{
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx512f")) return pc_rows_avx512(c);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return pc_rows_avx2(c);
#endif
    return pc_rows_base(c);
}

#else /* no vector extensions: every row exact */

static double pc_rows(const pc_ctx *c)
{
    double total = 0.0;
    for (size_t i = 0; i < c->M; i++) {
        for (size_t k = 0; k < c->K; k++) c->a[k] = c->z[k + i * c->K] * c->inv_s[k];
        total += pc_row_exact(c, i);
    }
    return total;
}

#endif

static double *align64(double *p)
{
    const uintptr_t u = (uintptr_t)p, r = u % 64;
    return r ? (double *)(u + (64 - r)) : p;
}

double disrnn__pc(size_t K, size_t M, const double *mu, const double *z, const double *s, const double *log_s,
                  size_t G, const size_t *group_start, double n_tot, double *work, double *dz, double *dmu,
                  double *dlog_s)
{
    const size_t Mp = (M + PC_W - 1) / PC_W * PC_W;
    double *p = align64(work);
    double *bT, *inv_s, *gsc;
    pc_ctx c;
    double total, big = 0.0;
    (void)log_s; /* the constants c_g cancel; ln s enters the gradient only as a constant -1 */
    c.K = K;
    c.M = M;
    c.Mp = Mp;
    c.G = G;
    c.gs = group_start;
    c.z = z;
    bT = p;
    p += K * Mp;
    c.dmuT = p;
    p += K * Mp;
    c.Ef = p;
    p += Mp;
    c.Eg = p;
    p += G * Mp;
    c.W = p;
    p += Mp;
    c.a = p;
    p += K;
    inv_s = p;
    p += K;
    gsc = p;
    p += K;
    c.dls = dz && dlog_s ? p : NULL;
    p += K;
    c.Sg = p;
    p += G;
    c.SW = p;
    p += G;
    c.CS = p;
    c.dz = dz;
    c.w_off = n_tot > 1.0 ? (n_tot - 1.0) / (double)(M - 1) : 0.0;
    c.lw_off = n_tot > 1.0 ? log(c.w_off) : -INFINITY;
    c.inv_m = 1.0 / (double)M;
    for (size_t k = 0; k < K; k++) {
        inv_s[k] = KAPPA / s[k];
        gsc[k] = 1.0 / (KAPPA * s[k]);
    }
    c.inv_s = inv_s;
    c.gsc = gsc;
    for (size_t k = 0; k < K; k++) {
        double *row = bT + k * Mp;
        for (size_t j = 0; j < M; j++) {
            const double vb = fabs(mu[k + j * K] * inv_s[k]), va = fabs(z[k + j * K] * inv_s[k]);
            row[j] = mu[k + j * K] * inv_s[k];
            if (vb > big) big = vb;
            if (va > big) big = va;
        }
    }
    /* Padding components sit at least 64 scaled units from every sample (d > 4096), so their
     * exponentials are exactly 0 and they add nothing; beyond 1e100 the exact rows, which never
     * look at padding, take over (NaN needs no care: it reaches the result either way). */
    c.exact_all = !(big <= 1e100) || !PC_VEC;
    for (size_t k = 0; k < K; k++)
        for (size_t j = M; j < Mp; j++) bT[k * Mp + j] = c.exact_all ? 0.0 : 2.0 * big + 64.0;
    c.bT = bT;
    if (dz) {
        memset(c.dmuT, 0, K * Mp * sizeof(double));
        memset(c.CS, 0, G * Mp * sizeof(double));
        memset(c.SW, 0, G * sizeof(double));
        if (c.dls) memset(c.dls, 0, K * sizeof(double));
    }
    total = pc_rows(&c);
    if (dz) {
        /* dmu_jk = (sum_i W_ij a_ik - b_jk sum_i W_ij) / s_k; for log s add sum_j b_jk^2 CS_j and
         * the constant's -sum W (0 up to rounding) */
        for (size_t g = 0; g < G; g++)
            for (size_t k = group_start[g]; k < group_start[g + 1]; k++) {
                const double *b = bT + k * Mp, *cs = c.CS + g * Mp, *dm = c.dmuT + k * Mp;
                double bb = 0.0;
                for (size_t j = 0; j < M; j++) {
                    dmu[k + j * K] = (dm[j] - b[j] * cs[j]) * gsc[k];
                    bb += b[j] * b[j] * cs[j];
                }
                /* squared distances in natural units are the scaled ones times 1 / KAPPA^2 */
                if (c.dls) dlog_s[k] = (c.dls[k] + bb) * TWO_LN2 - c.SW[g];
            }
    }
    return total * c.inv_m + (double)(G - 1) * log(n_tot);
}
