/* The encoder and decoder products of the training step as fused vector kernels, for K <= 16
 * latents (every configuration of the benchmarks and of the paper) on CPUs with AVX-512.
 *
 * Why not BLAS: the step's products are skinny (K = 4 to 16 against N channels and M samples),
 * OpenBLAS runs them at half its DGEMM rate, and between them the step made four passes over an
 * N x M buffer (decoder product, likelihood, two gradient products) and, for a shuffled batch, a
 * copy of 2 N M values. Here:
 * - mu = B h (disrnn__lin_enc_fwd) takes 8 samples at a time straight from where they lie (no
 *   copy) and keeps their 8 x K sums in registers, vectorised over the latents: each column
 *   B[:, n] is read as one or two 8-lane vectors (the lanes past K belong to the next column and
 *   are dropped; the last columns, where that would run past B, come from a padded copy). For
 *   K <= 4, where a column fills half a vector, it runs over 8 channels x 4 samples instead, with
 *   B transposed.
 * - The decoder, the Gaussian likelihood and dA (disrnn__lin_dec_gauss) are one pass over tiles of
 *   8 channels x 32 samples: eta = A z + c, the residual, the per-channel sums, dETA and
 *   dA += dETA z^T, with dA's tile in registers; only dETA is stored (an N x 32 buffer that stays
 *   in L2), and dz = A^T dETA follows by blocks of 4 latents x 4 samples.
 * - dB = dmu h^T (disrnn__lin_enc_bwd) runs over the same tiles with the K sums of a tile in
 *   registers, into a k-major buffer that is transposed at the end.
 * Every kernel reads the samples of a group as sequential runs and asks for the next tile's lines
 * ahead of use; the last channels of a sample, when N is not a multiple of 8, come through masked
 * loads. Latent counts are rounded up to KS = 4, 8, 12 or 16 (zero padding: a padded latent adds
 * exact zeros) so each size is compiled with its loops unrolled into registers. Accumulators are
 * never addressed through pointers or indexed in loops of run-time length, which would keep them
 * in memory (lane sums go through the REDUCE8 macro).
 *
 * The work is cut into tasks (threads.h) by channel chunks (decoder, dB) or sample groups (mu)
 * fixed by the sizes; each task writes its own outputs or its own share of dz, added in task
 * order. Sums run in a fixed order (over n, or over the samples, lane by lane), so results depend
 * only on the inputs, never on threads, and are the same whether a batch is read in place or
 * through indices. Other CPUs keep the objective's BLAS path: compiled for AVX2, these 8-lane
 * kernels were 7 to 10x slower than on AVX-512 (GCC emulates 64-byte vectors through memory). */
#include "objective_internal.h"

#include "common.h"
#include "threads.h"

#include <string.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(DISRNN_LIN_OFF)
#define LIN_VEC 1
#include <immintrin.h>
#else
#define LIN_VEC 0
#endif

/* Samples per decoder group (the dETA buffer is N x DEC_JG) and per dB group. */
#define DEC_JG 32
#define EB_JG 32
#define ENC_JG 8
/* Tasks (see threads.h): mu by groups of ENC_COLS samples, the decoder and dB by chunks of
 * rows_per_task(N) channels; both cuts depend on the sizes only, never on the thread count. */
#define ENC_COLS 16
#define MAX_ROW_TASKS 64
/* Lines asked for ahead of the tile in use (tiles of 8 channels = one line per sample). */
#define PF_TILES 4

static size_t ks_of(size_t K) { return (K + 3) / 4 * 4; }
static size_t pad8(size_t N) { return (N + 7) / 8 * 8; }
/* Channels per task: 256, or more so that there are at most MAX_ROW_TASKS tasks; a multiple of 8. */
static size_t rows_per_task(size_t N)
{
    const size_t r = pad8((N + MAX_ROW_TASKS - 1) / MAX_ROW_TASKS);
    return r > 256 ? r : 256;
}
static size_t row_tasks(size_t N) { return (N + rows_per_task(N) - 1) / rows_per_task(N); }

int disrnn__lin_supports(size_t K)
{
#if LIN_VEC
    return K >= 1 && K <= 16 && __builtin_cpu_supports("avx512f");
#else
    (void)K;
    return 0;
#endif
}

/* Layout of the work space: the padded latents (KS x M), dETA (Np x DEC_JG), the k-major dB
 * (KS x Np; B transposed before that for K <= 4), the decoder tasks' partial dz (tasks x K x M). */
size_t disrnn__lin_work_size(size_t N, size_t K, size_t M)
{
    size_t a, b, c, d, n;
    if (N > SIZE_MAX - 8 || disrnn__mul_size(ks_of(K), M, &a) || disrnn__mul_size(pad8(N), DEC_JG, &b) ||
        disrnn__mul_size(ks_of(K), pad8(N), &c) || disrnn__mul_size(row_tasks(N) * K, M, &d) ||
        disrnn__add_size(a, b, &n) || disrnn__add_size(n, c, &n) || disrnn__add_size(n, d, &n))
        return 0;
    return n;
}

#if LIN_VEC

typedef double lin_vd __attribute__((vector_size(64)));
/* the same vector at any 8-byte boundary, allowed to alias doubles: loads and stores through it
 * are plain unaligned vector moves (and no vector is passed by value, which would tie the
 * functions' ABI to one instruction set) */
typedef double lin_vu __attribute__((vector_size(64), aligned(8), may_alias));
#define LIN_INLINE static inline __attribute__((always_inline, target("avx512f")))
#if defined(__clang__)
#define LIN_UNROLL _Pragma("unroll")
#else
#define LIN_UNROLL _Pragma("GCC unroll 16")
#endif

#define vld(p) ((lin_vd)(*(const lin_vu *)(const void *)(p)))
#define vst(p, v) (*(lin_vu *)(void *)(p) = (v))
/* The first lanes of a vector (mask m), zeros elsewhere, reading nothing past them: the last
 * channels of a sample, whose run ends inside a tile. */
#define vld_mask(p, m) ((lin_vd)_mm512_maskz_loadu_pd((__mmask8)(m), (p)))
#define FULL 0xFFu
LIN_INLINE const double *colp(const double *base, size_t ld, const size_t *cols, size_t j)
{
    return base + (cols ? cols[j] : j) * ld;
}
LIN_INLINE void ahead(const double *p) { __builtin_prefetch(p, 0, 3); }
/* The first lines of samples [j0, j1) (at most N values each), asked for one group ahead. */
LIN_INLINE void ahead_group(const double *base, size_t ld, const size_t *cols, size_t j0, size_t j1, size_t N)
{
    for (size_t j = j0; j < j1; j++)
        for (size_t n = 0; n < N && n < 8 * PF_TILES; n += 8) ahead(colp(base, ld, cols, j) + n);
}

/* ---- mu = B h ------------------------------------------------------------------------------ */

/* One step n of 8 samples: acc[t] += B[:, n] h_t[n]. */
LIN_INLINE void enc_fwd_step(size_t KV, const lin_vd *b0, const lin_vd *b1, const double *const *hc, size_t n,
                             lin_vd acc[][2])
{
    LIN_UNROLL
    for (size_t t = 0; t < ENC_JG; t++) {
        const double hv = hc[t][n];
        acc[t][0] += *b0 * hv;
        if (KV == 2) acc[t][1] += *b1 * hv;
    }
}

LIN_INLINE void enc_fwd_body(size_t KV, size_t N, size_t K, size_t ja, size_t M, const double *B, const double *h,
                             size_t ldh, const size_t *cols, double *mu)
{
    const size_t width = 8 * KV;
    /* n < n_safe: B[:, n] read as width values stays inside B */
    const size_t n_safe = N * K >= width ? (N * K - width) / K + 1 : 0;
    const lin_vd zero = {0};
    for (size_t j0 = ja; j0 < M; j0 += ENC_JG) {
        const double *hc[ENC_JG];
        lin_vd acc[ENC_JG][2];
        size_t n = 0;
        /* a short last group repeats its last sample, whose sums are then dropped */
        for (size_t t = 0; t < ENC_JG; t++) {
            hc[t] = colp(h, ldh, cols, j0 + t < M ? j0 + t : M - 1);
            acc[t][0] = acc[t][1] = zero;
        }
        ahead_group(h, ldh, cols, j0 + ENC_JG, j0 + 2 * ENC_JG < M ? j0 + 2 * ENC_JG : M, N);
        for (; n + 8 <= n_safe; n += 8) {
            if (n + 64 < N)
                for (size_t t = 0; t < ENC_JG; t++) ahead(hc[t] + n + 64);
            for (size_t u = n; u < n + 8; u++) {
                const lin_vd b0 = vld(B + u * K), b1 = KV == 2 ? vld(B + u * K + 8) : zero;
                enc_fwd_step(KV, &b0, &b1, hc, u, acc);
            }
        }
        for (; n < N; n++) {
            double pad[16] = {0};
            lin_vd b0, b1;
            memcpy(pad, B + n * K, K * sizeof(double));
            b0 = vld(pad);
            b1 = vld(pad + 8);
            enc_fwd_step(KV, &b0, &b1, hc, n, acc);
        }
        /* constant trip counts, so that acc is never indexed at run time and stays in
         * registers */
        LIN_UNROLL
        for (size_t t = 0; t < ENC_JG; t++) {
            double out[16];
            vst(out, acc[t][0]);
            vst(out + 8, acc[t][1]);
            if (j0 + t < M) memcpy(mu + (j0 + t) * K, out, K * sizeof(double));
        }
    }
}

/* The same for K <= 4, where a column of B fills only half a vector: vectorised over the channels
 * instead, with B transposed (Bt: 4 x Np, k-major, zeros past N and past K) and 4 samples at a
 * time; each sum is the 8 lane sums added in a fixed order. */
#define DOT_JG 4

/* The lane sums of 8 vectors at once, in 14 shuffles and 7 additions instead of 8 x 7 scalar
 * additions: out[l] = ((a_l0 + a_l1) + (a_l2 + a_l3)) + ((a_l4 + a_l5) + (a_l6 + a_l7)) for the
 * vectors a_0 .. a_7 (AVX-512 intrinsics: the kernels are compiled for AVX-512 only). A macro, so
 * that no accumulator's address is taken (which would keep them in memory, not registers). */
#define REDUCE8(a0, a1, a2, a3, a4, a5, a6, a7, out)                                                         \
    do {                                                                                                     \
        const __m512d p0_ = _mm512_add_pd(_mm512_unpacklo_pd((__m512d)(a0), (__m512d)(a1)),                 \
                                          _mm512_unpackhi_pd((__m512d)(a0), (__m512d)(a1)));                 \
        const __m512d p1_ = _mm512_add_pd(_mm512_unpacklo_pd((__m512d)(a2), (__m512d)(a3)),                 \
                                          _mm512_unpackhi_pd((__m512d)(a2), (__m512d)(a3)));                 \
        const __m512d p2_ = _mm512_add_pd(_mm512_unpacklo_pd((__m512d)(a4), (__m512d)(a5)),                 \
                                          _mm512_unpackhi_pd((__m512d)(a4), (__m512d)(a5)));                 \
        const __m512d p3_ = _mm512_add_pd(_mm512_unpacklo_pd((__m512d)(a6), (__m512d)(a7)),                 \
                                          _mm512_unpackhi_pd((__m512d)(a6), (__m512d)(a7)));                 \
        const __m512d q0_ =                                                                                  \
            _mm512_add_pd(_mm512_shuffle_f64x2(p0_, p1_, 0x88), _mm512_shuffle_f64x2(p0_, p1_, 0xDD));       \
        const __m512d q1_ =                                                                                  \
            _mm512_add_pd(_mm512_shuffle_f64x2(p2_, p3_, 0x88), _mm512_shuffle_f64x2(p2_, p3_, 0xDD));       \
        _mm512_storeu_pd((out), _mm512_add_pd(_mm512_shuffle_f64x2(q0_, q1_, 0x88),                          \
                                              _mm512_shuffle_f64x2(q0_, q1_, 0xDD)));                        \
    } while (0)

/* One step of 8 channels for the group: acc[k][t] += Bt[k][n0..] h_t[n0..]. */
LIN_INLINE void dot_step(const double *Bt, size_t Np, size_t n0, const double *const *hp, unsigned m,
                         lin_vd acc[4][DOT_JG])
{
    lin_vd hv[DOT_JG];
    LIN_UNROLL
    for (size_t t = 0; t < DOT_JG; t++) hv[t] = vld_mask(hp[t], m);
    LIN_UNROLL
    for (size_t k = 0; k < 4; k++) {
        const lin_vd bv = vld(Bt + k * Np + n0);
        LIN_UNROLL
        for (size_t t = 0; t < DOT_JG; t++) acc[k][t] += bv * hv[t];
    }
}

LIN_INLINE void enc_fwd_dot(size_t N, size_t K, size_t ja, size_t M, const double *Bt, const double *h, size_t ldh,
                            const size_t *cols, double *mu)
{
    const size_t Np = pad8(N), Nf = N / 8 * 8;
    const lin_vd zero = {0};
    for (size_t j0 = ja; j0 < M; j0 += DOT_JG) {
        const double *hc[DOT_JG], *hp[DOT_JG];
        lin_vd acc[4][DOT_JG];
        LIN_UNROLL
        for (size_t t = 0; t < DOT_JG; t++) {
            hc[t] = colp(h, ldh, cols, j0 + t < M ? j0 + t : M - 1);
            LIN_UNROLL
            for (size_t k = 0; k < 4; k++) acc[k][t] = zero;
        }
        ahead_group(h, ldh, cols, j0 + DOT_JG, j0 + 2 * DOT_JG < M ? j0 + 2 * DOT_JG : M, N);
        for (size_t n0 = 0; n0 < Nf; n0 += 8) {
            LIN_UNROLL
            for (size_t t = 0; t < DOT_JG; t++) {
                hp[t] = hc[t] + n0;
                if (n0 + 8 * PF_TILES < N) ahead(hp[t] + 8 * PF_TILES);
            }
            dot_step(Bt, Np, n0, hp, FULL, acc);
        }
        if (Nf < N) { /* the last channels: masked loads (Bt is zero past N) */
            LIN_UNROLL
            for (size_t t = 0; t < DOT_JG; t++) hp[t] = hc[t] + Nf;
            dot_step(Bt, Np, Nf, hp, (1u << (N - Nf)) - 1u, acc);
        }
        {
            double r[16];
            REDUCE8(acc[0][0], acc[1][0], acc[2][0], acc[3][0], acc[0][1], acc[1][1], acc[2][1], acc[3][1], r);
            REDUCE8(acc[0][2], acc[1][2], acc[2][2], acc[3][2], acc[0][3], acc[1][3], acc[2][3], acc[3][3], r + 8);
            for (size_t t = 0; t < DOT_JG && j0 + t < M; t++)
                for (size_t k = 0; k < K; k++) mu[k + (j0 + t) * K] = r[4 * t + k];
        }
    }
}

/* ---- decoder, Gaussian likelihood and dA --------------------------------------------------- */

/* One tile of 8 channels for the nc samples of a group. at: A's rows of the tile, 8 per latent
 * (a contiguous copy, so every load is at a fixed offset; zeros for padded k); zp: the group's z,
 * KS per sample (zeros past K); xp[jj] + off: the tile's rows of sample jj (pf: ask for the
 * lines PF_TILES tiles ahead); c, iv, qs, dc: the tile's
 * channel values (qs and dc accumulate); dap[k]: dA's rows (NULL for padded k); dp: dETA's rows
 * (ld ldd). */
LIN_INLINE void dec_tile(size_t KS, size_t nc, const double *at, const double *zp, const double *const *xp,
                         size_t off, unsigned xm, int pf, const double *c, const double *iv, double scale, double *qs,
                         double *dc, double *const *dap, double *dp, size_t ldd, int first, int grad)
{
    const lin_vd zero = {0}, cv = vld(c), ivv = vld(iv);
    lin_vd da[16], qv = vld(qs), dcv = vld(dc);
    LIN_UNROLL
    for (size_t k = 0; k < KS; k++) da[k] = first || !grad || !dap[k] ? zero : vld(dap[k]);
    for (size_t jj = 0; jj < nc; jj++) {
        const double *zj = zp + jj * KS;
        lin_vd e0 = zero, e1 = zero, r, w, d;
        LIN_UNROLL
        for (size_t k = 0; k < KS; k += 2) {
            e0 += vld(at + 8 * k) * zj[k];
            e1 += vld(at + 8 * k + 8) * zj[k + 1];
        }
        if (pf) ahead(xp[jj] + off + 8 * PF_TILES);
        r = vld_mask(xp[jj] + off, xm) - ((e0 + e1) + cv);
        w = r * ivv;
        d = -scale * w;
        qv += r * w;
        dcv += d;
        if (grad) {
            vst(dp + jj * ldd, d);
            LIN_UNROLL
            for (size_t k = 0; k < KS; k++) da[k] += d * zj[k];
        }
    }
    vst(qs, qv);
    vst(dc, dcv);
    if (grad) {
        LIN_UNROLL
        for (size_t k = 0; k < KS; k++)
            if (dap[k]) vst(dap[k], da[k]);
    }
}

/* out[k + jj K] = sum over the task's channels of A[n, k] dETA[n, jj] (k < K, jj < nc), the
 * task's share of dz for one group: blocks of 4 latents x 4 samples, 8 channels per step, the
 * lanes added in a fixed order at the end. att: the padded copy of A's last tile, for a task that
 * holds the last channels (tail rows after Nf). */
LIN_INLINE void dz_rows(size_t KS, size_t N, size_t K, size_t nc, const double *A, const double *D, size_t Np,
                        size_t r0, size_t r1, size_t Nf, const double *att, double *out)
{
    const lin_vd zero = {0};
    const size_t rf = r1 < Nf ? r1 : Nf;
    for (size_t kb = 0; kb < KS; kb += 4)
        for (size_t jb = 0; jb < nc; jb += 4) {
            lin_vd acc[4][4];
            LIN_UNROLL
            for (size_t i = 0; i < 4; i++) {
                LIN_UNROLL
                for (size_t q = 0; q < 4; q++) acc[i][q] = zero;
            }
            if (kb + 4 <= K && jb + 4 <= nc) { /* a whole block: no lane of zeros to choose */
                const double *a0 = A + kb * N, *d0 = D + jb * Np;
                for (size_t n0 = r0; n0 < rf; n0 += 8) {
                    lin_vd a[4], d[4];
                    LIN_UNROLL
                    for (size_t i = 0; i < 4; i++) a[i] = vld(a0 + i * N + n0);
                    LIN_UNROLL
                    for (size_t q = 0; q < 4; q++) d[q] = vld(d0 + q * Np + n0);
                    LIN_UNROLL
                    for (size_t i = 0; i < 4; i++) {
                        LIN_UNROLL
                        for (size_t q = 0; q < 4; q++) acc[i][q] += a[i] * d[q];
                    }
                }
            } else {
                /* a partial block: the missing latents and samples read the first ones again
                 * (their sums are dropped) */
                const double *ap[4], *dp[4];
                for (size_t i = 0; i < 4; i++) ap[i] = A + (kb + i < K ? kb + i : kb) * N;
                for (size_t q = 0; q < 4; q++) dp[q] = D + (jb + q < nc ? jb + q : jb) * Np;
                for (size_t n0 = r0; n0 < rf; n0 += 8) {
                    lin_vd a[4], d[4];
                    LIN_UNROLL
                    for (size_t i = 0; i < 4; i++) a[i] = vld(ap[i] + n0);
                    LIN_UNROLL
                    for (size_t q = 0; q < 4; q++) d[q] = vld(dp[q] + n0);
                    LIN_UNROLL
                    for (size_t i = 0; i < 4; i++) {
                        LIN_UNROLL
                        for (size_t q = 0; q < 4; q++) acc[i][q] += a[i] * d[q];
                    }
                }
            }
            if (r1 > Nf && Nf < N) {
                lin_vd a[4], d[4];
                LIN_UNROLL
                for (size_t i = 0; i < 4; i++) a[i] = vld(att + 8 * (kb + i));
                LIN_UNROLL
                for (size_t q = 0; q < 4; q++) d[q] = vld(D + (jb + q < nc ? jb + q : jb) * Np + Nf);
                LIN_UNROLL
                for (size_t i = 0; i < 4; i++) {
                    LIN_UNROLL
                    for (size_t q = 0; q < 4; q++) acc[i][q] += a[i] * d[q];
                }
            }
            {
                double r[16];
                REDUCE8(acc[0][0], acc[1][0], acc[2][0], acc[3][0], acc[0][1], acc[1][1], acc[2][1], acc[3][1], r);
                REDUCE8(acc[0][2], acc[1][2], acc[2][2], acc[3][2], acc[0][3], acc[1][3], acc[2][3], acc[3][3],
                        r + 8);
                for (size_t q = 0; q < 4 && jb + q < nc; q++)
                    for (size_t i = 0; i < 4 && kb + i < K; i++) out[(kb + i) + (jb + q) * K] = r[4 * q + i];
            }
        }
}

typedef struct dec_ctx {
    size_t N, K, M;
    const double *A, *zp, *c, *iv, *x;
    size_t ldx;
    const size_t *cols;
    double scale;
    double *qsum, *dc, *dA, *D, *dzp;
} dec_ctx;

/* Task t: channels [t R, (t + 1) R) for every sample; its share of dz goes to dzp[t]. */
LIN_INLINE void dec_task_body(size_t KS, const dec_ctx *cx, size_t t)
{
    const size_t N = cx->N, K = cx->K, M = cx->M, Np = pad8(N), Nf = N / 8 * 8, R = rows_per_task(N);
    const size_t r0 = t * R, r1 = N - r0 < R ? N : r0 + R;
    const int grad = cx->dA != NULL;
    const double *A = cx->A, *x = cx->x;
    double *dA = cx->dA, *D = cx->D;
    double at[16 * 8] __attribute__((aligned(64))), att[16 * 8] __attribute__((aligned(64)));
    for (size_t n = r0; n < r1; n++) cx->qsum[n] = cx->dc[n] = 0.0;
    memset(att, 0, sizeof att);
    if (r1 > Nf)
        for (size_t k = 0; k < K; k++) memcpy(att + 8 * k, A + k * N + Nf, (N - Nf) * sizeof(double));
    for (size_t j0 = 0; j0 < M; j0 += DEC_JG) {
        const size_t nc = M - j0 < DEC_JG ? M - j0 : DEC_JG;
        const double *xc[DEC_JG];
        double *dap[16];
        for (size_t jj = 0; jj < nc; jj++) xc[jj] = colp(x, cx->ldx, cx->cols, j0 + jj) + r0;
        ahead_group(x + r0, cx->ldx, cx->cols, j0 + DEC_JG, j0 + 2 * DEC_JG < M ? j0 + 2 * DEC_JG : M, r1 - r0);
        for (size_t n0 = r0; n0 < r1 && n0 < Nf; n0 += 8) {
            for (size_t k = 0; k < KS; k++) {
                if (k < K)
                    memcpy(at + 8 * k, A + k * N + n0, 8 * sizeof(double));
                else
                    memset(at + 8 * k, 0, 8 * sizeof(double));
                dap[k] = grad && k < K ? dA + k * N + n0 : NULL;
            }
            dec_tile(KS, nc, at, cx->zp + j0 * KS, xc, n0 - r0, FULL, n0 + 8 * PF_TILES < r1, cx->c + n0, cx->iv + n0,
                     cx->scale, cx->qsum + n0, cx->dc + n0, dap, D + n0, Np, j0 == 0, grad);
        }
        if (r1 > Nf) {
            /* the last channels through padded copies: padded rows have x = c = 0, A = 0 and
             * 1 / sigma^2 = 0, so they add exact zeros */
            const size_t bytes = (N - Nf) * sizeof(double);
            double dat[16][8], ct[8] = {0}, ivt[8] = {0}, qt[8] = {0}, dct[8] = {0};
            for (size_t k = 0; k < KS; k++) {
                if (k < K && grad && j0 > 0) {
                    memset(dat[k], 0, sizeof dat[k]);
                    memcpy(dat[k], dA + k * N + Nf, bytes);
                }
                dap[k] = grad && k < K ? dat[k] : NULL;
            }
            memcpy(ct, cx->c + Nf, bytes);
            memcpy(ivt, cx->iv + Nf, bytes);
            memcpy(qt, cx->qsum + Nf, bytes);
            memcpy(dct, cx->dc + Nf, bytes);
            dec_tile(KS, nc, att, cx->zp + j0 * KS, xc, Nf - r0, (1u << (N - Nf)) - 1u, 0, ct, ivt, cx->scale, qt, dct, dap, D + Nf, Np, j0 == 0,
                     grad);
            memcpy(cx->qsum + Nf, qt, bytes);
            memcpy(cx->dc + Nf, dct, bytes);
            if (grad)
                for (size_t k = 0; k < K; k++) memcpy(dA + k * N + Nf, dat[k], bytes);
        }
        if (grad) dz_rows(KS, N, K, nc, A, D, Np, r0, r1, Nf, att, cx->dzp + t * K * M + j0 * K);
    }
}

/* ---- dB = dmu h^T --------------------------------------------------------------------------- */

/* One tile of 8 channels: out[k] (+)= sum_jj h_jj dmu[k, jj] over the group's samples. */
LIN_INLINE void encb_tile(size_t KS, size_t nc, const double *dmp, const double *const *hp, size_t off, unsigned m,
                          int pf, double *out, size_t Np, int first)
{
    const lin_vd zero = {0};
    lin_vd acc[16];
    LIN_UNROLL
    for (size_t k = 0; k < KS; k++) acc[k] = first ? zero : vld(out + k * Np);
    for (size_t jj = 0; jj < nc; jj++) {
        const lin_vd hv = vld_mask(hp[jj] + off, m);
        const double *dm = dmp + jj * KS;
        if (pf) ahead(hp[jj] + off + 8 * PF_TILES);
        LIN_UNROLL
        for (size_t k = 0; k < KS; k++) acc[k] += hv * dm[k];
    }
    LIN_UNROLL
    for (size_t k = 0; k < KS; k++) vst(out + k * Np, acc[k]);
}

typedef struct encb_ctx {
    size_t N, K, M;
    const double *dmp, *h;
    size_t ldh;
    const size_t *cols;
    double *dB, *dBt;
} encb_ctx;

/* Task t: dB for channels [t R, (t + 1) R). */
LIN_INLINE void encb_task_body(size_t KS, const encb_ctx *cx, size_t t)
{
    const size_t N = cx->N, K = cx->K, M = cx->M, Np = pad8(N), Nf = N / 8 * 8, R = rows_per_task(N);
    const size_t r0 = t * R, r1 = N - r0 < R ? N : r0 + R;
    double *dBt = cx->dBt;
    for (size_t j0 = 0; j0 < M; j0 += EB_JG) {
        const size_t nc = M - j0 < EB_JG ? M - j0 : EB_JG;
        const double *hc[EB_JG];
        for (size_t jj = 0; jj < nc; jj++) hc[jj] = colp(cx->h, cx->ldh, cx->cols, j0 + jj) + r0;
        ahead_group(cx->h + r0, cx->ldh, cx->cols, j0 + EB_JG, j0 + 2 * EB_JG < M ? j0 + 2 * EB_JG : M, r1 - r0);
        for (size_t n0 = r0; n0 < r1 && n0 < Nf; n0 += 8)
            encb_tile(KS, nc, cx->dmp + j0 * KS, hc, n0 - r0, FULL, n0 + 8 * PF_TILES < r1, dBt + n0, Np, j0 == 0);
        if (r1 > Nf) /* the last channels: masked loads */
            encb_tile(KS, nc, cx->dmp + j0 * KS, hc, Nf - r0, (1u << (N - Nf)) - 1u, 0, dBt + Nf, Np, j0 == 0);
    }
    for (size_t n = r0; n < r1; n++)
        for (size_t k = 0; k < K; k++) cx->dB[k + n * K] = dBt[k * Np + n];
}

typedef struct encf_ctx {
    size_t N, K, M;
    const double *B, *Bt, *h;
    size_t ldh;
    const size_t *cols;
    double *mu;
} encf_ctx;

/* Task t: mu for samples [t ENC_COLS, (t + 1) ENC_COLS). */
LIN_INLINE void encf_task_body(const encf_ctx *cx, size_t t)
{
    const size_t ja = t * ENC_COLS, jb = cx->M - ja < ENC_COLS ? cx->M : ja + ENC_COLS;
    if (cx->K <= 4)
        enc_fwd_dot(cx->N, cx->K, ja, jb, cx->Bt, cx->h, cx->ldh, cx->cols, cx->mu);
    else if (cx->K <= 8)
        enc_fwd_body(1, cx->N, cx->K, ja, jb, cx->B, cx->h, cx->ldh, cx->cols, cx->mu);
    else
        enc_fwd_body(2, cx->N, cx->K, ja, jb, cx->B, cx->h, cx->ldh, cx->cols, cx->mu);
}

/* ---- one copy per instruction set ---------------------------------------------------------- */

#define LIN_KS_SWITCH(KS, call4, call8, call12, call16)                                                      \
    switch (KS) {                                                                                            \
    case 4: call4; break;                                                                                    \
    case 8: call8; break;                                                                                    \
    case 12: call12; break;                                                                                  \
    default: call16; break;                                                                                  \
    }

#define LIN_DEFINE(suffix, attr)                                                                             \
    attr static void encf_task_##suffix(void *ctx, size_t t) { encf_task_body((const encf_ctx *)ctx, t); }   \
    attr static void dec_task_##suffix(void *ctx, size_t t)                                                  \
    {                                                                                                        \
        const dec_ctx *cx = (const dec_ctx *)ctx;                                                            \
        LIN_KS_SWITCH(ks_of(cx->K), dec_task_body(4, cx, t), dec_task_body(8, cx, t),                        \
                      dec_task_body(12, cx, t), dec_task_body(16, cx, t))                                    \
    }                                                                                                        \
    attr static void encb_task_##suffix(void *ctx, size_t t)                                                 \
    {                                                                                                        \
        const encb_ctx *cx = (const encb_ctx *)ctx;                                                          \
        LIN_KS_SWITCH(ks_of(cx->K), encb_task_body(4, cx, t), encb_task_body(8, cx, t),                      \
                      encb_task_body(12, cx, t), encb_task_body(16, cx, t))                                  \
    }

/* FMA contraction is asked for here only, as in penalty_pc.c. */
#if defined(__GNUC__) && !defined(__clang__)
#define LIN_CONTRACT , optimize("fp-contract=fast")
#else
#define LIN_CONTRACT
#endif
LIN_DEFINE(avx512, __attribute__((target("avx512f") LIN_CONTRACT)))

#endif /* LIN_VEC */

/* z (or dmu) K x M into KS x M with zero rows past K: the padded latents add exact zeros. */
static double *pad_latents(size_t K, size_t M, const double *z, double *zp)
{
    const size_t KS = ks_of(K);
    for (size_t j = 0; j < M; j++) {
        memcpy(zp + j * KS, z + j * K, K * sizeof(double));
        for (size_t k = K; k < KS; k++) zp[j * KS + k] = 0.0;
    }
    return zp;
}

void disrnn__lin_enc_fwd(disrnn__pool *pool, size_t N, size_t K, size_t M, const double *B, const double *h,
                         size_t ldh, const size_t *cols, double *mu, double *work)
{
#if LIN_VEC
    const size_t Np = pad8(N);
    double *Bt = work + ks_of(K) * M + Np * DEC_JG; /* the dB buffer, free until the backward pass */
    encf_ctx cx;
    if (K <= 4) {
        memset(Bt, 0, 4 * Np * sizeof(double));
        for (size_t n = 0; n < N; n++)
            for (size_t k = 0; k < K; k++) Bt[k * Np + n] = B[k + n * K];
    }
    cx.N = N;
    cx.K = K;
    cx.M = M;
    cx.B = B;
    cx.Bt = Bt;
    cx.h = h;
    cx.ldh = ldh;
    cx.cols = cols;
    cx.mu = mu;
    disrnn__pool_run(pool, (M + ENC_COLS - 1) / ENC_COLS, encf_task_avx512, &cx);
#else
    (void)pool, (void)N, (void)K, (void)M, (void)B, (void)h, (void)ldh, (void)cols, (void)mu, (void)work;
#endif
}

void disrnn__lin_dec_gauss(disrnn__pool *pool, size_t N, size_t K, size_t M, const double *A,
                           const double *z, const double *c, const double *inv_var, double scale, const double *x,
                           size_t ldx, const size_t *cols, double *qsum, double *dc, double *dA, double *dz,
                           double *work)
{
#if LIN_VEC
    const size_t T = row_tasks(N);
    dec_ctx cx;
    cx.N = N;
    cx.K = K;
    cx.M = M;
    cx.A = A;
    cx.zp = pad_latents(K, M, z, work);
    cx.c = c;
    cx.iv = inv_var;
    cx.x = x;
    cx.ldx = ldx;
    cx.cols = cols;
    cx.scale = scale;
    cx.qsum = qsum;
    cx.dc = dc;
    cx.dA = dA;
    cx.D = work + ks_of(K) * M;
    cx.dzp = cx.D + pad8(N) * DEC_JG + ks_of(K) * pad8(N);
    disrnn__pool_run(pool, T, dec_task_avx512, &cx);
    if (dA) {
        /* the tasks' shares of dz, added in task order */
        memcpy(dz, cx.dzp, K * M * sizeof(double));
        for (size_t t = 1; t < T; t++)
            for (size_t i = 0; i < K * M; i++) dz[i] += cx.dzp[t * K * M + i];
    }
#else
    (void)pool, (void)N, (void)K, (void)M, (void)A, (void)z, (void)c, (void)inv_var, (void)scale, (void)x;
    (void)ldx, (void)cols, (void)qsum, (void)dc, (void)dA, (void)dz, (void)work, (void)pad_latents;
#endif
}

void disrnn__lin_enc_bwd(disrnn__pool *pool, size_t N, size_t K, size_t M, const double *dmu,
                         const double *h, size_t ldh, const size_t *cols, double *dB, double *work)
{
#if LIN_VEC
    encb_ctx cx;
    cx.N = N;
    cx.K = K;
    cx.M = M;
    cx.dmp = pad_latents(K, M, dmu, work);
    cx.h = h;
    cx.ldh = ldh;
    cx.cols = cols;
    cx.dB = dB;
    cx.dBt = work + ks_of(K) * M + pad8(N) * DEC_JG;
    disrnn__pool_run(pool, row_tasks(N), encb_task_avx512, &cx);
#else
    (void)pool, (void)N, (void)K, (void)M, (void)dmu, (void)h, (void)ldh, (void)cols, (void)dB, (void)work;
#endif
}
