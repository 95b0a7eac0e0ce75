/* The importance-sampled group total correlation PC_hat of MODEL.md section 4 and its gradient:
 * the training step's hot spot (G M^2 exponentials and M^2 K distance terms, forward and back).
 *
 * With l_ij^g the log density of z_i's group-g coordinates under component j, l_ij = sum_g l_ij^g
 * and w_ij the importance weight (1 on the diagonal, w = (N_tot - 1) / (M - 1) elsewhere),
 *   PC_hat = (1/M) sum_i [ ln sum_j w_ij e^{l_ij} - sum_g ln sum_j w_ij e^{l_ij^g} ] + (G - 1) ln N_tot,
 * and dPC/dl_ij^g = W_ij^g = (P_ij - Q_ij^g) / M with P and Q^g the row-wise softmax weights of
 * the full and the group mixtures (l_ij enters every group's density).
 *
 * How it is computed (docs/performance.md has the measurements), a row i (or a block of rows) at
 * a time, with everything of those rows in L1:
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
 *   and latent. (sum_j W_ij is 0 but for rounding; it is summed all the same, because the same
 *   rounded W in both sums cancels the error of the large terms when |b| >> |a - b|.)
 * - The M row contributions are logarithms of ratios S / prod_g S_g: their product is
 *   accumulated (with an exact power-of-two exponent) and one logarithm taken at the end.
 * - Nothing is allocated: the caller's work buffer holds b transposed (k-major, samples
 *   contiguous, padded to a multiple of 8, rows 8 further apart when that is a multiple of 4 KB:
 *   pc_stride), the centre sums and the buffers of PC_BLK rows, O((K + G) M).
 * Three implementations of the rows, chosen at run time:
 * - AVX-512 (pc_rows_avx512, intrinsics), a block of PC_BLK rows at a time. The forward loop is
 *   bound by the throughput of its vector instructions: about 20 per 8 pairs and group (2 H for
 *   the distances, 14 for the exponential), all on the two 512-bit ports, which it keeps about
 *   88% busy (perf annotate; 3.37 GHz measured under this load). Its latency does not matter:
 *   an exponential with a shorter chain (Estrin's scheme, or vreducepd for r) measured the same.
 *   The backward loop runs at about two thirds of its multiply-add bound (R x H accumulators and
 *   the rows' multipliers do not fit the 32 registers); at M 512 the traffic to L2 adds to it (b,
 *   the centre sums and the row buffers no longer fit L1). Hence: a table-driven exponential
 *   (pc_exp2_512: 14 instructions instead of 21, and more accurate, 0.59 ulp from the exact
 *   value against 0.88); a forward pass per block of 4 rows (pc_fwd512), which share the loads
 *   of b and the per-row set-up and lane sums, the full mixture's products formed in the last
 *   group's loop (no pass of their own); a backward pass per block, whose rows share the loads
 *   and stores of b, of the centre sums and of the column sums; W = f U with one instruction for
 *   U (pc_bwd512); and a diagonal that costs a mask in the forward loop and nothing in the
 *   backward loop, its weight being written into the row buffer where the off-diagonal formula
 *   finds it (choosing the diagonal chunk's weights cost 20% of the backward pass). That trick
 *   divides by the off-diagonal weight, so N_tot <= 1 (weight 0) takes the next implementation.
 *   Measured per call, value and gradient, one thread (CPU time, medians): S1 (K 6, groups 3+3,
 *   M 128) 44 -> 35 us, S2 (K 4, 2+2, M 128) 37 -> 29 us, S3 (K 12, six groups of 2, M 128)
 *   116 -> 84 us, S4 (K 16, four groups of 4, M 512) 1.84 -> 1.21 ms; then the blocked forward
 *   and the padded stride, in alternated runs of both on a busier machine: S1 36.6 -> 35.1 us,
 *   S2 28.5 -> 27.2 us, S3 88 -> 85 us, S4 1.22 -> 1.18 ms (3 to 4.5%, the same bits).
 * - AVX2 + FMA and the baseline instruction set: the same 8-lane GCC vector extension code
 *   (pc_rows_vec) compiled twice, with the polynomial exponential pc_vexp2. Compilers without
 *   vector extensions use pc_row_exact() for every row.
 * All three agree with a plain implementation to rounding (tests/test_penalty_pc.c). Results
 * depend only on the inputs and the instruction set (AVX-512, AVX2 + FMA or neither), never on
 * timing or threads. */
#include "model.h"
#include "objective_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(DISRNN_PC_SCALAR) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

/* Lanes of the vector code. */
#define PC_W 8
/* Rows per block of the AVX-512 kernel (forward passes, then one backward pass for all): the row
 * buffers are this many times over. */
#define PC_BLK 4
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
    size_t K, M, Mp, Mj, G; /* Mp: the stride of the M-long arrays; Mj: M rounded up to 8 */
    const size_t *gs;     /* G + 1 group offsets */
    const double *z;      /* K x M samples */
    const double *inv_s;  /* K: kappa / s_k, the scale of a and b */
    const double *gsc;    /* K: 1 / (kappa s_k), the scale of the gradients */
    const double *bT;     /* K x Mp: b_jk = kappa mu_jk / s_k; padding columns far away */
    double *dmuT;         /* K x Mp: sum_i W_ij a_ik (b_jk CS_j taken off at the end) */
    double *Ef, *Eg, *W;  /* PC_BLK x Mp, PC_BLK x G x Mp, Mp: row buffers */
    double *Sg;           /* PC_BLK x G: the row's group sums */
    double *CS;           /* G x Mp: column sums sum_i W_ij^g */
    double *SW;           /* G: sum_i sum_j W_ij^g (0 up to rounding) */
    double *a;            /* PC_BLK x K: a_ik = kappa z_ik / s_k of the current row */
    double *dls;          /* K accumulators of dPC/dlog s, or NULL */
    double *dz;           /* K x M output, or NULL for the value only */
    double w_off, lw_off, inv_m;
    double m_woff;        /* M / w_off (0 without weights) */
    int exact_all;        /* 1: every row through pc_row_exact() (inputs beyond 1e100) */
    size_t r0, r1;        /* the rows of this task */
} pc_ctx;

/* Tasks (threads.h): the rows in chunks of pc_chunk_rows(M), a multiple of PC_BLK fixed by M
 * alone; each chunk has its own row buffers and its own centre, column and log s sums, added in
 * chunk order at the end, so the bits do not depend on the thread count. Chunks of at least 128
 * rows (one chunk up to M = 128: splitting there cost 3 to 5% of a one-thread step, measured)
 * and at most 8 of them keep that reduction (8 (K + G) M values) small next to the rows' M^2
 * work. */
#define PC_MAX_CHUNKS 8
static size_t pc_chunk_rows(size_t M)
{
    size_t r = (M + PC_MAX_CHUNKS - 1) / PC_MAX_CHUNKS;
    r = (r + PC_BLK - 1) / PC_BLK * PC_BLK;
    return r > 128 ? r : 128;
}
static size_t pc_chunks(size_t M) { return (M + pc_chunk_rows(M) - 1) / pc_chunk_rows(M); }

/* The stride of the M-long arrays: M rounded up to the 8 lanes, and 8 more when that is a
 * multiple of 4 KB: the rows of the work buffer would otherwise all share their low 12 address
 * bits, and a load that matches a pending store there waits for it (4K aliasing; 7% of the
 * call at M 512, measured). */
static size_t pc_stride(size_t M)
{
    const size_t mj = (M + PC_W - 1) / PC_W * PC_W;
    return mj % 512 == 0 ? mj + PC_W : mj;
}

/* Doubles of one chunk's own part of the work buffer: Ef, Eg, W, dmuT, CS (Mp long each, PC_BLK
 * rows of Ef and Eg), a, Sg, SW, dls; a multiple of 8 so that every chunk stays 64-byte aligned. */
static size_t pc_chunk_size(size_t K, size_t Mp, size_t G)
{
    const size_t n = (PC_BLK + PC_BLK * G + 1 + K + G) * Mp + PC_BLK * K + PC_BLK * G + G + K;
    return (n + 7) / 8 * 8;
}


size_t disrnn__pc_work_size(size_t K, size_t M, size_t G)
{
    size_t mp, a, b, n;
    if (M > SIZE_MAX / 2 - PC_W || K > SIZE_MAX / 64 || G > SIZE_MAX / 64) return 0;
    mp = pc_stride(M);
    /* bT (K Mp), inv_s and gsc (2 K, rounded up to 8 doubles), the chunks' own parts, alignment
     * slack */
    if (disrnn__mul_size(K, mp, &a) || disrnn__mul_size(pc_chunks(M), pc_chunk_size(K, mp, G), &b) ||
        disrnn__add_size(a, b, &n) || disrnn__add_size(n, (2 * K + 7) / 8 * 8 + PC_W, &n))
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
 * built in the exponent bits. Within 1 ulp of glibc's exp2 over [-1021, 0] (tested); at most 0.88
 * ulp from the exact value with FMA, 1.16 without (20 million arguments against exp2l). The AVX-512
 * kernel has its own, pc_exp2_512. */
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
    pc_fwd_range(bT, Mp, a, H, ib + PC_W, c->Mj, eg, &acc);
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
    pc_bwd_range(c, g, H, ib + PC_W, c->Mj, &af, &ag, &sw, acck);
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
    for (size_t jb = 0; jb < c->Mj; jb += PC_W) {
        pc_vd f, e, w;
        vload(&f, c->Ef + jb);
        vload(&e, eg + jb);
        w = af * f - ag * e;
        vstore(c->W + jb, &w);
    }
    c->W[i] = (c->Ef[i] / sf - eg[i] / c->Sg[g]) * c->inv_m;
    for (size_t jb = 0; jb < c->Mj; jb += PC_W) {
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
        for (size_t jb = 0; jb < c->Mj; jb += PC_W) {
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
    for (size_t jb = 0; jb < c->Mj; jb += PC_W) {
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
    for (size_t i = c->r0; i < c->r1; i++) {
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
__attribute__((target("avx2,fma") PC_CONTRACT)) static double pc_rows_avx2(const pc_ctx *c) { return pc_rows_vec(c); }

/* ---- The AVX-512 kernel, written with intrinsics: every multiply-add is explicit, so no
 * contraction flag is needed, and the instructions the generic code cannot name (permutes, scalef,
 * masks) are available. */

#define PC512 static inline __attribute__((always_inline, target("avx512f")))

/* 2^(j/16) rounded to double, and the relative remainder (2^(j/16) - hi) / hi, from mpmath at 50
 * digits. */
static const double pc_exp_hi[16] = {
    0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, 0x1.2387a6e756238p+0,
    0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0, 0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0,
    0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, 0x1.9c49182a3f090p+0,
    0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0, 0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0};
static const double pc_exp_lo[16] = {
    0.0, 0x1.79aa65d837b6dp-54, -0x1.01b15eaa59348p-55, 0x1.68efde3a8a894p-54,
    0x1.34d754db0abb6p-55, 0x1.59f48a72a4c6dp-55, 0x1.690cebb7aafb0p-56, 0x1.063e1e21c5409p-54,
    -0x1.3b3efbf5e2228p-54, -0x1.b32dcb94da51dp-56, 0x1.db72fc1f0eab4p-55, 0x1.1affc2b91ce27p-56,
    0x1.c1a7792cb3387p-55, 0x1.36eae30af0cb3p-56, 0x1.4a385a63d07a7p-56, -0x1.ff7128fd391f0p-55};

/* The two tables in four registers, loaded once per evaluation. */
typedef struct pc_tab {
    __m512d hi0, hi1, lo0, lo1;
} pc_tab;

/* 2^x for x <= 0 with the contract of pc_vexp2 (within 1 ulp of exp2 on [-1021, 0], 0 below,
 * NaN propagated), 14 instructions instead of about 21: x = n + j/16 + r with |r| <= 1/32, the
 * 1.5 * 2^48 shift rounding x to sixteenths so that the low 4 bits of t are j (the permute index)
 * and t - shift = n + j/16 (scalef takes its floor, n); 2^(j/16) = hi (1 + lo) from the tables
 * (one permute each: 16 entries in two registers); 2^r - 1 = r q(r) with q of degree 5, a minimax
 * fit on |r| <= 1/32 (Lawson's algorithm in 50-digit arithmetic, error 7e-18 = 0.03 ulp) with the
 * coefficients rounded to double one at a time and the others refitted. hi (1 + lo)(1 + r q) =
 * hi + hi (r q + lo) up to hi lo r q < 3e-18: the table's remainder keeps the result within 0.59
 * ulp of the exact value (20 million arguments against exp2l; 2.9% not correctly rounded). The
 * underflow mask rides on scalef's zeroing mask. */
PC512 __m512d pc_exp2_512(__m512d x, const pc_tab *tb)
{
    const __m512d shift = _mm512_set1_pd(0x1.8p48);
    const __m512d t = _mm512_add_pd(x, shift);
    const __m512d nj = _mm512_sub_pd(t, shift);
    const __m512d r = _mm512_sub_pd(x, nj);
    const __m512i j = _mm512_castpd_si512(t);
    const __mmask8 keep = _mm512_cmp_pd_mask(x, _mm512_set1_pd(-1021.0), _CMP_NLT_UQ);
    __m512d q, hi, lo, v;
    q = _mm512_fmadd_pd(_mm512_set1_pd(0x1.430a9bf0f8234p-13), r, _mm512_set1_pd(0x1.5d89bd67fb85ep-10));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.3b2ab6fa93eb5p-7));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.c6b08d6e8cc0fp-5));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.ebfbdff82c59dp-3));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.62e42fefa39fdp-1));
    lo = _mm512_permutex2var_pd(tb->lo0, j, tb->lo1);
    hi = _mm512_permutex2var_pd(tb->hi0, j, tb->hi1);
    v = _mm512_fmadd_pd(q, r, lo);
    return _mm512_maskz_scalef_pd(keep, _mm512_fmadd_pd(hi, v, hi), nj);
}

/* vhsum's order. */
PC512 double pc_hsum512(__m512d v)
{
    const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    const __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(q) + _mm_cvtsd_f64(_mm_unpackhi_pd(q, q));
}

/* A row in flight: its exponentials and sums, kept from its forward to its backward pass. */
typedef struct pc_row512 {
    double *Ef, *Eg, *Sg, *a; /* Sg holds 1 / S_g once the forward pass is done */
    double rsf;               /* 1 / S */
    double sf;                /* S, from the forward pass */
    size_t i;
} pc_row512;

/* Forward of group g (H latents, a constant in the specialised calls) for the PC_BLK rows of a
 * block: the exponentials into Eg, and with last (the final group) the full mixture's products
 * prod_g E^g into Ef in the same pass; S_g into Sg[g] and, with last, S into sf. The rows share
 * the loads of b and give PC_BLK independent exponentials per chunk. The rows of a block lie in
 * one chunk of 8 (blocks start at multiples of 4), so the diagonal lanes are masked out of the
 * sums in that chunk and added with weight 1 (no split of the loop around them). */
PC512 void pc_fwd512(const pc_ctx *c, pc_row512 *rw, size_t g, size_t H, int last, const pc_tab *tb)
{
    const size_t Mp = c->Mp, k0 = c->gs[g], G = c->G, ib = rw[0].i / PC_W * PC_W;
    const double *bT = c->bT + k0 * Mp;
    __mmask8 dmask[PC_BLK];
    double *eg[PC_BLK];
    __m512d acc[PC_BLK], accf[PC_BLK];
    PC_UNROLL
    for (size_t r = 0; r < PC_BLK; r++) {
        dmask[r] = (__mmask8)(~(1u << (rw[r].i % PC_W)) & 0xFFu);
        eg[r] = rw[r].Eg + g * Mp;
        acc[r] = _mm512_setzero_pd();
        accf[r] = _mm512_setzero_pd();
    }
    for (size_t jb = 0; jb < c->Mj; jb += PC_W) {
        const int diag = jb == ib;
        __m512d bv[4];
        if (H <= 4) {
            PC_UNROLL
            for (size_t h = 0; h < H; h++) bv[h] = _mm512_loadu_pd(bT + h * Mp + jb);
        }
        PC_UNROLL
        for (size_t r = 0; r < PC_BLK; r++) {
            const __mmask8 m = diag ? dmask[r] : (__mmask8)0xFF;
            const double *a = rw[r].a + k0;
            __m512d x = _mm512_setzero_pd(), e;
            if (H <= 4) {
                PC_UNROLL
                for (size_t h = 0; h < H; h++) {
                    const __m512d d = _mm512_sub_pd(bv[h], _mm512_set1_pd(a[h]));
                    x = _mm512_fnmadd_pd(d, d, x);
                }
            } else {
                for (size_t h = 0; h < H; h++) {
                    const __m512d d = _mm512_sub_pd(_mm512_loadu_pd(bT + h * Mp + jb), _mm512_set1_pd(a[h]));
                    x = _mm512_fnmadd_pd(d, d, x);
                }
            }
            e = pc_exp2_512(x, tb);
            _mm512_storeu_pd(eg[r] + jb, e);
            acc[r] = _mm512_mask_add_pd(acc[r], m, acc[r], e);
            if (last) {
                __m512d f = e;
                for (size_t h = 0; h + 1 < G; h++) f = _mm512_mul_pd(f, _mm512_loadu_pd(rw[r].Eg + h * Mp + jb));
                _mm512_storeu_pd(rw[r].Ef + jb, f);
                accf[r] = _mm512_mask_add_pd(accf[r], m, accf[r], f);
            }
        }
    }
    PC_UNROLL
    for (size_t r = 0; r < PC_BLK; r++) {
        rw[r].Sg[g] = c->w_off * pc_hsum512(acc[r]) + eg[r][rw[r].i];
        if (last) rw[r].sf = c->w_off * pc_hsum512(accf[r]) + rw[r].Ef[rw[r].i];
    }
}

/* dz and dlog s of row rw from swi = sum_j W_ij (0 but for rounding; summed all the same, as it
 * cancels the rounding of wb's large terms when |b| >> |a - b|) and wb = sum_j W_ij b_jk. */
PC512 void pc_finish512(const pc_ctx *c, const pc_row512 *rw, size_t g, size_t h, double swi, double wb)
{
    const size_t k = c->gs[g] + h;
    const double ak = rw->a[k];
    c->dz[k + rw->i * c->K] = -(ak * swi - wb) * c->gsc[k];
    if (c->dls) c->dls[k] += ak * ak * swi - 2.0 * ak * wb;
}

/* Backward of group g as pc_bwd_group for the R rows rw[0..R) (R and H constants in the
 * specialised calls) in one pass over the chunks. W_ij = f_i U_ij with f_i = w_off / (M S_i) and
 * U_ij = E_ij - (S_i / S_ig) E_ij^g: one instruction for U, and f_i goes into the multipliers of
 * the column and centre sums and, at the end, into sum_j U_ij b_jk. The rows share the loads and
 * stores of b, of the centre sums and of the column sums (the stores and, at M 512, the traffic
 * to L2 bound this loop), and row r's terms are added after row r - 1's. The diagonal weights
 * sit in Eg (pc_row512_tail), so every chunk is alike. */
PC512 void pc_bwd512(const pc_ctx *c, const pc_row512 *const *rw, size_t R, size_t g, size_t H)
{
    const size_t Mp = c->Mp, k0 = c->gs[g];
    const double *bT = c->bT + k0 * Mp, *ef[PC_BLK], *eg[PC_BLK];
    double *dmT = c->dmuT + k0 * Mp, *cs = c->CS + g * Mp, fr[PC_BLK];
    __m512d rho[PC_BLK], fv[PC_BLK], fa[PC_BLK][4], acc[PC_BLK][4], su[PC_BLK];
    PC_UNROLL
    for (size_t r = 0; r < R; r++) {
        ef[r] = rw[r]->Ef;
        eg[r] = rw[r]->Eg + g * Mp;
        fr[r] = c->w_off * c->inv_m * rw[r]->rsf;
        fv[r] = _mm512_set1_pd(fr[r]);
        rho[r] = _mm512_set1_pd(rw[r]->Sg[g] / rw[r]->rsf);
        su[r] = _mm512_setzero_pd();
        PC_UNROLL
        for (size_t h = 0; h < H; h++) {
            fa[r][h] = _mm512_set1_pd(fr[r] * rw[r]->a[k0 + h]);
            acc[r][h] = _mm512_setzero_pd();
        }
    }
    for (size_t jb = 0; jb < c->Mj; jb += PC_W) {
        __m512d u[PC_BLK], col = _mm512_loadu_pd(cs + jb);
        PC_UNROLL
        for (size_t r = 0; r < R; r++) {
            u[r] = _mm512_fnmadd_pd(rho[r], _mm512_loadu_pd(eg[r] + jb), _mm512_loadu_pd(ef[r] + jb));
            su[r] = _mm512_add_pd(su[r], u[r]);
            col = _mm512_fmadd_pd(u[r], fv[r], col);
        }
        _mm512_storeu_pd(cs + jb, col);
        PC_UNROLL
        for (size_t h = 0; h < H; h++) {
            const __m512d b = _mm512_loadu_pd(bT + h * Mp + jb);
            __m512d m = _mm512_loadu_pd(dmT + h * Mp + jb);
            PC_UNROLL
            for (size_t r = 0; r < R; r++) {
                acc[r][h] = _mm512_fmadd_pd(u[r], b, acc[r][h]);
                m = _mm512_fmadd_pd(u[r], fa[r][h], m);
            }
            _mm512_storeu_pd(dmT + h * Mp + jb, m);
        }
    }
    PC_UNROLL
    for (size_t r = 0; r < R; r++) {
        const double swi = fr[r] * pc_hsum512(su[r]);
        c->SW[g] += swi;
        for (size_t h = 0; h < H; h++) pc_finish512(c, rw[r], g, h, swi, fr[r] * pc_hsum512(acc[r][h]));
    }
}

/* The same for groups larger than 4, one row: U stored first (with the column sums), then one
 * pass per latent. */
PC512 void pc_bwd512_wide(const pc_ctx *c, const pc_row512 *rw, size_t g)
{
    const size_t Mp = c->Mp, k0 = c->gs[g], k1 = c->gs[g + 1];
    const double *eg = rw->Eg + g * Mp, *ef = rw->Ef;
    double *cs = c->CS + g * Mp, *U = c->W;
    const double fr = c->w_off * c->inv_m * rw->rsf;
    const __m512d rho = _mm512_set1_pd(rw->Sg[g] / rw->rsf), fv = _mm512_set1_pd(fr);
    __m512d su = _mm512_setzero_pd();
    double swi;
    for (size_t jb = 0; jb < c->Mj; jb += PC_W) {
        const __m512d u = _mm512_fnmadd_pd(rho, _mm512_loadu_pd(eg + jb), _mm512_loadu_pd(ef + jb));
        _mm512_storeu_pd(U + jb, u);
        su = _mm512_add_pd(su, u);
        _mm512_storeu_pd(cs + jb, _mm512_fmadd_pd(u, fv, _mm512_loadu_pd(cs + jb)));
    }
    swi = fr * pc_hsum512(su);
    c->SW[g] += swi;
    for (size_t k = k0; k < k1; k++) {
        const double *b = c->bT + k * Mp;
        double *dm = c->dmuT + k * Mp;
        const __m512d fak = _mm512_set1_pd(fr * rw->a[k]);
        __m512d acc = _mm512_setzero_pd();
        for (size_t jb = 0; jb < c->Mj; jb += PC_W) {
            const __m512d u = _mm512_loadu_pd(U + jb);
            acc = _mm512_fmadd_pd(u, _mm512_loadu_pd(b + jb), acc);
            _mm512_storeu_pd(dm + jb, _mm512_fmadd_pd(u, fak, _mm512_loadu_pd(dm + jb)));
        }
        pc_finish512(c, rw, g, k - k0, swi, fr * pc_hsum512(acc));
    }
}

/* The forward passes of a block of PC_BLK rows, one per group. */
PC512 void pc_rows512_fwd(const pc_ctx *c, pc_row512 *rw, const pc_tab *tb)
{
    const size_t G = c->G;
    for (size_t g = 0; g < G; g++) {
        const size_t H = c->gs[g + 1] - c->gs[g];
        if (g + 1 < G) {
            switch (H) {
            case 1: pc_fwd512(c, rw, g, 1, 0, tb); break;
            case 2: pc_fwd512(c, rw, g, 2, 0, tb); break;
            case 3: pc_fwd512(c, rw, g, 3, 0, tb); break;
            case 4: pc_fwd512(c, rw, g, 4, 0, tb); break;
            default: pc_fwd512(c, rw, g, H, 0, tb); break;
            }
        } else {
            switch (H) {
            case 1: pc_fwd512(c, rw, g, 1, 1, tb); break;
            case 2: pc_fwd512(c, rw, g, 2, 1, tb); break;
            case 3: pc_fwd512(c, rw, g, 3, 1, tb); break;
            case 4: pc_fwd512(c, rw, g, 4, 1, tb); break;
            default: pc_fwd512(c, rw, g, H, 1, tb); break;
            }
        }
    }
}

/* The rest of a row's forward, as pc_row_vec's first half: 1 when a sum is too small (the caller
 * then uses pc_row_exact()), else 0 with the ratio or the contribution. */
PC512 int pc_row512_tail(const pc_ctx *c, pc_row512 *rw, double *contrib, double *ratio_out)
{
    const size_t G = c->G, Mp = c->Mp, i = rw->i;
    const double sf = rw->sf;
    double ratio, ed;
    for (size_t g = 0; g < G; g++)
        if (!(rw->Sg[g] >= PC_TINY)) return 1;
    if (!(sf >= PC_TINY)) return 1;
    /* the reciprocals for the backward pass (independent divisions), the ratio as a product, and
     * the diagonal weights W_ii^g = (E_ii / S - E_ii^g / S_g) / M written where the backward pass
     * finds them: E_ii as 0 and E_ii^g as the value that the off-diagonal formula
     * -w_off E^g / (M S_g) turns into W_ii^g, so that every chunk is alike there */
    rw->rsf = 1.0 / sf;
    ratio = sf;
    ed = rw->Ef[i];
    rw->Ef[i] = 0.0;
    for (size_t g = 0; g < G; g++) {
        const double S = rw->Sg[g], r = 1.0 / S;
        rw->Sg[g] = r;
        ratio *= r;
        rw->Eg[g * Mp + i] = -((ed * rw->rsf - rw->Eg[g * Mp + i] * r) * c->inv_m) * (S * c->m_woff);
    }
    if (ratio > 0x1p-400 && ratio < 0x1p400) {
        *ratio_out = ratio;
    } else {
        double logs = 0.0;
        *ratio_out = -1.0;
        for (size_t g = 0; g < G; g++) logs -= log(rw->Sg[g]);
        *contrib = log(sf) - logs;
    }
    return 0;
}

/* Backward of the R rows rw[0..R) (1 <= R <= PC_BLK), one pass per group. */
PC512 void pc_rows512_bwd(const pc_ctx *c, const pc_row512 *const *rw, size_t R)
{
#define PC_BWD_R(H)                                                                                     \
    switch (R) {                                                                                        \
    case 1: pc_bwd512(c, rw, 1, g, H); break;                                                           \
    case 2: pc_bwd512(c, rw, 2, g, H); break;                                                           \
    case 3: pc_bwd512(c, rw, 3, g, H); break;                                                           \
    default: pc_bwd512(c, rw, 4, g, H); break;                                                          \
    }
    for (size_t g = 0; g < c->G; g++) {
        switch (c->gs[g + 1] - c->gs[g]) {
        case 1: PC_BWD_R(1); break;
        case 2: PC_BWD_R(2); break;
        case 3: PC_BWD_R(3); break;
        case 4: PC_BWD_R(4); break;
        default:
            for (size_t r = 0; r < R; r++) pc_bwd512_wide(c, rw[r], g);
            break;
        }
    }
#undef PC_BWD_R
}

/* All rows as pc_rows_vec, in blocks of PC_BLK rows: the forward passes of a block, then one
 * backward pass per group for the whole block. The backward passes add their terms in row order
 * (an exact row first takes the pending rows' backward), so the results are those of one row at
 * a time. */
__attribute__((target("avx512f"))) static double pc_rows_avx512(const pc_ctx *c)
{
    pc_tab tb;
    pc_row512 rows[PC_BLK];
    const pc_row512 *pend[PC_BLK];
    size_t npend = 0;
    double total = 0.0, prod = 1.0;
    long e2 = 0;
    const size_t K = c->K, M = c->r1;
    tb.hi0 = _mm512_loadu_pd(pc_exp_hi);
    tb.hi1 = _mm512_loadu_pd(pc_exp_hi + 8);
    tb.lo0 = _mm512_loadu_pd(pc_exp_lo);
    tb.lo1 = _mm512_loadu_pd(pc_exp_lo + 8);
    for (size_t s = 0; s < PC_BLK; s++) {
        rows[s].Ef = c->Ef + s * c->Mp;
        rows[s].Eg = c->Eg + s * c->G * c->Mp;
        rows[s].Sg = c->Sg + s * c->G;
        rows[s].a = c->a + s * K;
    }
#define PC_FLUSH()                                                                                      \
    do {                                                                                                \
        if (npend) pc_rows512_bwd(c, pend, npend);                                                      \
        npend = 0;                                                                                      \
    } while (0)
    for (size_t i0 = c->r0; i0 < M; i0 += PC_BLK) {
        const size_t n = M - i0 < PC_BLK ? M - i0 : PC_BLK;
        double contrib[PC_BLK], ratio[PC_BLK];
        int exact[PC_BLK];
        /* a short last block repeats its last row in the spare row buffers (results unused) */
        for (size_t r = 0; r < PC_BLK; r++) {
            pc_row512 *rw = rows + r;
            rw->i = i0 + (r < n ? r : n - 1);
            contrib[r] = 0.0;
            ratio[r] = -1.0;
            for (size_t k = 0; k < K; k++) rw->a[k] = c->z[k + rw->i * K] * c->inv_s[k];
        }
        if (!c->exact_all) pc_rows512_fwd(c, rows, &tb);
        for (size_t r = 0; r < n; r++)
            exact[r] = c->exact_all || pc_row512_tail(c, rows + r, contrib + r, ratio + r);
        for (size_t r = 0; r < n; r++) {
            pc_row512 *rw = rows + r;
            if (exact[r]) {
                /* the exact row works in this row's buffers, after the earlier rows' backward */
                pc_ctx cx = *c;
                PC_FLUSH();
                cx.a = rw->a;
                cx.Ef = rw->Ef;
                cx.Eg = rw->Eg;
                contrib[r] = pc_row_exact(&cx, rw->i);
                ratio[r] = -1.0;
            } else if (c->dz) {
                pend[npend++] = rw;
            }
            if (ratio[r] < 0.0) {
                total += contrib[r];
            } else {
                prod *= ratio[r];
                if (!(prod > 0x1p-500 && prod < 0x1p500)) {
                    int e;
                    prod = frexp(prod, &e);
                    e2 += e;
                }
            }
        }
        PC_FLUSH();
    }
#undef PC_FLUSH
    return total + (log(prod) + (double)e2 * LN2);
}
#endif
static double pc_rows_base(const pc_ctx *c) { return pc_rows_vec(c); }

static double pc_rows(const pc_ctx *c)
{
#if defined(__x86_64__) || defined(__i386__)
    /* the AVX-512 kernel divides by w_off (pc_row512_tail): N_tot <= 1 (w_off = 0) and absurd
     * weights take the next one */
    if (__builtin_cpu_supports("avx512f") && c->w_off >= 0x1p-500 && c->w_off <= 0x1p500) return pc_rows_avx512(c);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return pc_rows_avx2(c);
#endif
    return pc_rows_base(c);
}

#else /* no vector extensions: every row exact */

static double pc_rows(const pc_ctx *c)
{
    double total = 0.0;
    for (size_t i = c->r0; i < c->r1; i++) {
        for (size_t k = 0; k < c->K; k++) c->a[k] = c->z[k + i * c->K] * c->inv_s[k];
        total += pc_row_exact(c, i);
    }
    return total;
}

#endif

/* ---- The exponential on its own, for the tests (disrnn__pc_exp2). */

#if PC_VEC
/* n values through pc_vexp2, the last chunk padded. */
PC_INLINE void pc_exp2_vec(double *x, size_t n)
{
    for (size_t j = 0; j < n; j += PC_W) {
        const size_t m = n - j < PC_W ? n - j : PC_W;
        double t[PC_W] = {0};
        pc_vd v;
        memcpy(t, x + j, m * sizeof(double));
        vload(&v, t);
        pc_vexp2(&v);
        vstore(t, &v);
        memcpy(x + j, t, m * sizeof(double));
    }
}
static void pc_exp2_base(double *x, size_t n) { pc_exp2_vec(x, n); }
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma") PC_CONTRACT)) static void pc_exp2_avx2(double *x, size_t n) { pc_exp2_vec(x, n); }
__attribute__((target("avx512f"))) static void pc_exp2_avx512(double *x, size_t n)
{
    pc_tab tb;
    tb.hi0 = _mm512_loadu_pd(pc_exp_hi);
    tb.hi1 = _mm512_loadu_pd(pc_exp_hi + 8);
    tb.lo0 = _mm512_loadu_pd(pc_exp_lo);
    tb.lo1 = _mm512_loadu_pd(pc_exp_lo + 8);
    for (size_t j = 0; j < n; j += PC_W) {
        const __mmask8 m = (__mmask8)(n - j < PC_W ? (1u << (n - j)) - 1u : 0xFFu);
        _mm512_mask_storeu_pd(x + j, m, pc_exp2_512(_mm512_maskz_loadu_pd(m, x + j), &tb));
    }
}
#endif
#endif

int disrnn__pc_exp2(int isa, double *x, size_t n)
{
#if PC_VEC
    if (isa == 0) {
        pc_exp2_base(x, n);
        return 1;
    }
#if defined(__x86_64__) || defined(__i386__)
    if (isa == 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        pc_exp2_avx2(x, n);
        return 1;
    }
    if (isa == 2 && __builtin_cpu_supports("avx512f")) {
        pc_exp2_avx512(x, n);
        return 1;
    }
#endif
#endif
    (void)isa;
    (void)x;
    (void)n;
    return 0;
}

static double *align64(double *p)
{
    const uintptr_t u = (uintptr_t)p, r = u % 64;
    return r ? (double *)(u + (64 - r)) : p;
}

typedef struct pc_job {
    pc_ctx ctx[PC_MAX_CHUNKS];
    double part[PC_MAX_CHUNKS];
} pc_job;

static void pc_task(void *job, size_t t)
{
    pc_job *jb = (pc_job *)job;
    jb->part[t] = pc_rows(&jb->ctx[t]);
}

double disrnn__pc(size_t K, size_t M, const double *mu, const double *z, const double *s, const double *log_s,
                  size_t G, const size_t *group_start, double n_tot, double *work, double *dz, double *dmu,
                  double *dlog_s, disrnn__pool *pool)
{
    const size_t Mp = pc_stride(M), C = pc_chunks(M), R = pc_chunk_rows(M);
    const size_t csz = pc_chunk_size(K, Mp, G);
    double *p = align64(work);
    double *bT, *inv_s, *gsc;
    pc_ctx c;
    pc_job jb;
    double total = 0.0, big = 0.0;
    (void)log_s; /* the constants c_g cancel; ln s enters the gradient only as a constant -1 */
    memset(&c, 0, sizeof c);
    c.K = K;
    c.M = M;
    c.Mp = Mp;
    c.Mj = (M + PC_W - 1) / PC_W * PC_W;
    c.G = G;
    c.gs = group_start;
    c.z = z;
    /* the shared arrays, then each chunk's own part; every Mp-long array 64-byte aligned */
    bT = p;
    p += K * Mp;
    inv_s = p;
    gsc = p + K;
    p += (2 * K + 7) / 8 * 8;
    c.dz = dz;
    c.w_off = n_tot > 1.0 ? (n_tot - 1.0) / (double)(M - 1) : 0.0;
    c.lw_off = n_tot > 1.0 ? log(c.w_off) : -INFINITY;
    c.inv_m = 1.0 / (double)M;
    c.m_woff = c.w_off > 0.0 ? (double)M / c.w_off : 0.0;
    for (size_t k = 0; k < K; k++) {
        inv_s[k] = KAPPA / s[k];
        gsc[k] = 1.0 / (KAPPA * s[k]);
    }
    c.inv_s = inv_s;
    c.gsc = gsc;
    {
        /* the largest scaled magnitude, NaN left out (as the comparisons leave it), in four
         * independent maxima */
        double bg[4] = {0.0, 0.0, 0.0, 0.0};
        for (size_t k = 0; k < K; k++) {
            double *row = bT + k * Mp;
            for (size_t j = 0; j < M; j++) {
                const double vb = fabs(mu[k + j * K] * inv_s[k]), va = fabs(z[k + j * K] * inv_s[k]);
                double *g = bg + (j & 3);
                row[j] = mu[k + j * K] * inv_s[k];
                if (vb > *g) *g = vb;
                if (va > *g) *g = va;
            }
        }
        for (int u = 0; u < 4; u++)
            if (bg[u] > big) big = bg[u];
    }
    /* Padding components sit at least 64 scaled units from every sample (d > 4096), so their
     * exponentials are exactly 0 and they add nothing; beyond 1e100 the exact rows, which never
     * look at padding, take over (NaN needs no care: it reaches the result either way). */
    c.exact_all = !(big <= 1e100) || !PC_VEC;
    for (size_t k = 0; k < K; k++)
        for (size_t j = M; j < Mp; j++) bT[k * Mp + j] = c.exact_all ? 0.0 : 2.0 * big + 64.0;
    c.bT = bT;
    for (size_t t = 0; t < C; t++) {
        pc_ctx *ct = &jb.ctx[t];
        double *q = p + t * csz;
        *ct = c;
        ct->r0 = t * R;
        ct->r1 = M - ct->r0 < R ? M : ct->r0 + R;
        ct->Ef = q;
        q += PC_BLK * Mp;
        ct->Eg = q;
        q += PC_BLK * G * Mp;
        ct->W = q;
        q += Mp;
        ct->dmuT = q;
        q += K * Mp;
        ct->CS = q;
        q += G * Mp;
        ct->a = q;
        q += PC_BLK * K;
        ct->Sg = q;
        q += PC_BLK * G;
        ct->SW = q;
        q += G;
        ct->dls = dz && dlog_s ? q : NULL;
        if (dz) {
            memset(ct->dmuT, 0, K * Mp * sizeof(double));
            memset(ct->CS, 0, G * Mp * sizeof(double));
            memset(ct->SW, 0, G * sizeof(double));
            if (ct->dls) memset(ct->dls, 0, K * sizeof(double));
        }
    }
    disrnn__pool_run(pool, C, pc_task, &jb);
    for (size_t t = 0; t < C; t++) total += jb.part[t];
    if (dz) {
        /* the chunks' sums, added in chunk order into the first chunk's */
        pc_ctx *c0 = &jb.ctx[0];
        for (size_t t = 1; t < C; t++) {
            const pc_ctx *ct = &jb.ctx[t];
            for (size_t i = 0; i < K * Mp; i++) c0->dmuT[i] += ct->dmuT[i];
            for (size_t i = 0; i < G * Mp; i++) c0->CS[i] += ct->CS[i];
            for (size_t g = 0; g < G; g++) c0->SW[g] += ct->SW[g];
            if (c0->dls)
                for (size_t k = 0; k < K; k++) c0->dls[k] += ct->dls[k];
        }
        /* dmu_jk = (sum_i W_ij a_ik - b_jk sum_i W_ij) / s_k; for log s add sum_j b_jk^2 CS_j and
         * the constant's -sum W (0 up to rounding) */
        for (size_t g = 0; g < G; g++)
            for (size_t k = group_start[g]; k < group_start[g + 1]; k++) {
                const double *b = bT + k * Mp, *cs = c0->CS + g * Mp, *dm = c0->dmuT + k * Mp;
                double bb = 0.0;
                for (size_t j = 0; j < M; j++) {
                    dmu[k + j * K] = (dm[j] - b[j] * cs[j]) * gsc[k];
                    bb += b[j] * b[j] * cs[j];
                }
                /* squared distances in natural units are the scaled ones times 1 / KAPPA^2 */
                if (c0->dls) dlog_s[k] = (c0->dls[k] + bb) * TWO_LN2 - c0->SW[g];
            }
    }
    return total * c.inv_m + (double)(G - 1) * log(n_tot);
}
