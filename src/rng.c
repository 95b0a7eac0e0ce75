/* xoshiro256** (Blackman and Vigna) seeded by splitmix64; Box-Muller normals in pairs.
 *
 * The normal draws were the trainer's largest cost after the objective at small N (K M per step
 * with scalar libm calls), so the Box-Muller transform runs over blocks of uniforms in a loop the
 * compiler vectorises, with a logarithm and a sine/cosine of its own: libm's are scalar calls, and
 * glibc's vector versions are reachable only with -ffast-math. The transform uses only +, -, *, /,
 * sqrt and bit operations, each correctly rounded, with no contraction into fused multiply-adds,
 * so its AVX-512, AVX2 and baseline copies give the same bits. */
#include "rng.h"
#include "common.h"

#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void disrnn__rng_seed(disrnn__rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

void disrnn__rng_seed_stream(disrnn__rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
    uint64_t mix = splitmix64(&x);
    disrnn__rng_seed(r, mix ^ seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* The generator's step on the four words held in locals (a block of draws keeps them in
 * registers instead of going through memory for every value). */
#define XOSHIRO_NEXT(out, s0, s1, s2, s3)                                                                    \
    do {                                                                                                     \
        const uint64_t t_ = (s1) << 17;                                                                      \
        (out) = rotl((s1) * 5, 7) * 9;                                                                       \
        (s2) ^= (s0);                                                                                        \
        (s3) ^= (s1);                                                                                        \
        (s1) ^= (s2);                                                                                        \
        (s0) ^= (s3);                                                                                        \
        (s2) ^= t_;                                                                                          \
        (s3) = rotl((s3), 45);                                                                               \
    } while (0)

uint64_t disrnn__rng_next(disrnn__rng *r)
{
    uint64_t out, s0 = r->s[0], s1 = r->s[1], s2 = r->s[2], s3 = r->s[3];
    XOSHIRO_NEXT(out, s0, s1, s2, s3);
    r->s[0] = s0;
    r->s[1] = s1;
    r->s[2] = s2;
    r->s[3] = s3;
    return out;
}

double disrnn__rng_uniform(disrnn__rng *r)
{
    return (double)(disrnn__rng_next(r) >> 11) * 0x1.0p-53;
}

/* The high and low words of the 128-bit product a b. */
static inline uint64_t mul_wide(uint64_t a, uint64_t b, uint64_t *lo)
{
#if defined(__SIZEOF_INT128__)
    __extension__ typedef unsigned __int128 u128;
    const u128 p = (u128)a * b;
    *lo = (uint64_t)p;
    return (uint64_t)(p >> 64);
#else
    const uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
    const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    *lo = (mid << 32) | (p00 & 0xffffffffu);
    return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
#endif
}

uint64_t disrnn__rng_below(disrnn__rng *r, uint64_t n)
{
    /* floor(v n / 2^64) with the rare low products below 2^64 mod n rejected (Lemire's method):
     * unbiased, and a division only on the rejection path instead of one or two per draw */
    uint64_t lo, hi = mul_wide(disrnn__rng_next(r), n, &lo);
    if (lo < n) {
        const uint64_t t = (0 - n) % n;
        while (lo < t) hi = mul_wide(disrnn__rng_next(r), n, &lo);
    }
    return hi;
}

/* ---------------------------------------------------------------------------------------- */
/* Box-Muller */

/* ln 2 split so that e * LN2_HI is exact for |e| < 2^32 (LN2_HI has 21 significant bits). */
#define LN2_HI 0x1.62e42p-1
#define LN2_LO 0x1.fdf473de6af28p-22
#define SQRT_HALF_BITS 0x3fe6a09e667f3bcdULL /* sqrt(1/2) rounded down */
#define EXP_BIAS_64 (64ULL << 52)
#define TWO52 0x1.0p52
#define ROUND_MAGIC 0x1.8p52 /* y + this - this rounds y to an integer, |y| < 2^51 */
#define SPLIT_MAGIC 0x1.8p27 /* the same to a multiple of 2^-25 */
#define PIO2_1 0x1.921fb54p+0          /* pi/2 to 27 bits */
#define PIO2_2 0x1.10b4611a62633p-30   /* pi/2 - PIO2_1 */

/* Contraction into fused multiply-adds stays off so every copy below gives the same bits. The
 * copies for wider vectors exist only with GCC on x86-64 (not under ThreadSanitizer, whose runtime
 * starts after the CPU checks); elsewhere the plain loops run. */
#if defined(__GNUC__) && !defined(__clang__)
#define BM_OPT optimize("fp-contract=off", "vect-cost-model=dynamic")
#define BM_FN_ATTR __attribute__((BM_OPT))
#define BM_BODY_ATTR __attribute__((always_inline, BM_OPT))
#else
#define BM_FN_ATTR
#define BM_BODY_ATTR
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
#define BM_CLONES 1
#include <immintrin.h>
#else
#define BM_CLONES 0
#endif

/* (w >> 11) 2^-53 as disrnn__rng_uniform, without an integer conversion (AVX2 has none for 64
 * bits): the top 52 of the 53 bits through the exponent trick, the last one added exactly. */
BM_BODY_ATTR static inline double uniform53(uint64_t w)
{
    const double hi = disrnn__double_of(0x4330000000000000ULL | (w >> 12)) - TWO52;
    return hi * 0x1.0p-52 + disrnn__double_of((0 - ((w >> 11) & 1)) & 0x3ca0000000000000ULL); /* + 2^-53 */
}

/* Pair i of the words wa[i], wb[i], as u1 = 1 - U in (0, 1] and u2 = V in [0, 1), gives r2[i] = -2 ln u1, zc[i] = cos(2 pi u2) and
 * zs[i] = sin(2 pi u2). (The square root of r2 is taken apart: libm's sqrt sets errno, which
 * keeps the vectoriser off any loop calling it.)
 *
 * ln u1: u1 = 2^e m with m in [sqrt(1/2), sqrt(2)), read off the bits; with f = m - 1 (exact) and
 * s = f / (2 + f), ln m = 2 atanh(s) = f - (f^2/2 - s (f^2/2 + R)), R = 2 (z/3 + z^2/5 + ...),
 * z = s^2 <= 0.0295, nine terms of R leave a relative error below 2.4e-17; the small terms are
 * added first and e ln 2 in two parts last, so the result is within about one ulp.
 *
 * The angle: y = 4 u2 is exact; with n the integer nearest y and g = y - n in [-1/2, 1/2] (also
 * exact), 2 pi u2 = n pi/2 + a with a = g pi/2, so the quadrant n picks cos a or sin a and a sign.
 * a is formed in two parts, exact to about 2^-100, so cos(2 pi u2) keeps its relative accuracy
 * even next to its zeros (libm's cos(2 pi u2) loses it there: 2 pi u2 is rounded). sin a and
 * cos a are Taylor series (|a| <= pi/4, truncation below 3e-18) with the small terms summed
 * first: within about 0.7 ulp. */
BM_BODY_ATTR static inline void bm_body(size_t np, const uint64_t *restrict wa, const uint64_t *restrict wb,
                                        double *restrict r2, double *restrict zc, double *restrict zs)
{
    for (size_t i = 0; i < np; i++) {
        const double u1 = 1.0 - uniform53(wa[i]), u2 = uniform53(wb[i]);
        const uint64_t ix = disrnn__bits_of(u1);
        /* k = e + 64 > 0 for every u1 >= 2^-53, so unsigned shifts do (no 64-bit arithmetic
         * shift on AVX2) */
        const uint64_t k = (ix - SQRT_HALF_BITS + EXP_BIAS_64) >> 52;
        const double m = disrnn__double_of(ix + ((64 - k) << 52));
        const double e = (disrnn__double_of(0x4330000000000000ULL | k) - TWO52) - 64.0;
        const double f = m - 1.0;
        const double s = f / (2.0 + f);
        const double z = s * s;
        const double R =
            z * (2.0 / 3 +
                 z * (2.0 / 5 +
                      z * (2.0 / 7 +
                           z * (2.0 / 9 +
                                z * (2.0 / 11 + z * (2.0 / 13 + z * (2.0 / 15 + z * (2.0 / 17 + z * (2.0 / 19)))))))));
        const double hfsq = 0.5 * f * f;
        const double lnu = e * LN2_HI + (f - (hfsq - (s * (hfsq + R) + e * LN2_LO)));
        r2[i] = -2.0 * lnu;

        const double y = 4.0 * u2;
        const double yr = y + ROUND_MAGIC;
        const uint64_t q = disrnn__bits_of(yr); /* the low bits hold n */
        const double g = y - (yr - ROUND_MAGIC);
        /* a = g pi/2 as xh + xl: g = gh + gl with gh a multiple of 2^-25, so gh P1 and gl P1 are
         * exact (P1 has 27 bits) */
        const double gh = (g + SPLIT_MAGIC) - SPLIT_MAGIC, gl = g - gh;
        const double t1 = gh * PIO2_1, t2 = gl * PIO2_1 + g * PIO2_2;
        const double xh = t1 + t2, xl = t2 - (xh - t1);
        const double x2 = xh * xh, hz = 0.5 * x2, wv = 1.0 - hz;
        /* sin(xh + xl) = sin xh + xl cos xh, cos(xh + xl) = cos xh - xl sin xh, to first order in xl;
         * the rounding of 1 - x2/2 is carried along ((1 - wv) - hz is exact) */
        const double sp =
            x2 * (-1.0 / 6 +
                 x2 * (1.0 / 120 +
                      x2 * (-1.0 / 5040 +
                           x2 * (1.0 / 362880 +
                                x2 * (-1.0 / 39916800 +
                                     x2 * (1.0 / 6227020800.0 +
                                          x2 * (-1.0 / 1307674368000.0 + x2 * (1.0 / 355687428096000.0))))))));
        const double cp =
            x2 * x2 *
            (1.0 / 24 +
             x2 * (-1.0 / 720 +
                  x2 * (1.0 / 40320 +
                       x2 * (-1.0 / 3628800 +
                            x2 * (1.0 / 479001600 + x2 * (-1.0 / 87178291200.0 + x2 * (1.0 / 20922789888000.0)))))));
        const double sn = xh + (xh * sp + xl * (1.0 - hz));
        const double cs = wv + (((1.0 - wv) - hz) + (cp - xh * xl));
        /* cos(n pi/2 + a) is cos a, -sin a, -cos a, sin a for n mod 4 = 0..3, and sin(n pi/2 + a) is
         * sin a, cos a, -sin a, -cos a: chosen with bit masks (the vectoriser refuses conditionals) */
        const uint64_t odd = 0 - (q & 1), bs = disrnn__bits_of(sn), bc = disrnn__bits_of(cs);
        zc[i] = disrnn__double_of(((bs & odd) | (bc & ~odd)) ^ (((q + 1) & 2) << 62));
        zs[i] = disrnn__double_of(((bc & odd) | (bs & ~odd)) ^ ((q & 2) << 62));
    }
}

/* Pairs per block (a multiple of the widest vector): the arrays stay in L1. */
#define BM_BLOCK 128

/* The transform of np pairs (np a multiple of 8) into o[2 np] = pairs (cos, sin) times the radius;
 * the square roots with the vector instructions. */
#define BM_FINISH(np, r, zc, zs, o)                                                                          \
    for (size_t i_ = 0; i_ < (np); i_++) {                                                                   \
        (o)[2 * i_] = (r)[i_] * (zc)[i_];                                                                    \
        (o)[2 * i_ + 1] = (r)[i_] * (zs)[i_];                                                                \
    }
#if BM_CLONES
__attribute__((target("avx512f"), BM_OPT)) static void bm_avx512(size_t np, const uint64_t *wa, const uint64_t *wb,
                                                                   double *restrict r, double *restrict zc,
                                                                   double *restrict zs, double *restrict o)
{
    bm_body(np, wa, wb, r, zc, zs);
    for (size_t i = 0; i < np; i += 8) _mm512_storeu_pd(r + i, _mm512_sqrt_pd(_mm512_loadu_pd(r + i)));
    BM_FINISH(np, r, zc, zs, o)
}
__attribute__((target("avx2"), BM_OPT)) static void bm_avx2(size_t np, const uint64_t *wa, const uint64_t *wb,
                                                            double *restrict r, double *restrict zc,
                                                            double *restrict zs, double *restrict o)
{
    bm_body(np, wa, wb, r, zc, zs);
    for (size_t i = 0; i < np; i += 4) _mm256_storeu_pd(r + i, _mm256_sqrt_pd(_mm256_loadu_pd(r + i)));
    BM_FINISH(np, r, zc, zs, o)
}
BM_FN_ATTR static void bm_base(size_t np, const uint64_t *wa, const uint64_t *wb, double *restrict r,
                               double *restrict zc, double *restrict zs, double *restrict o)
{
    bm_body(np, wa, wb, r, zc, zs);
    for (size_t i = 0; i < np; i += 2) _mm_storeu_pd(r + i, _mm_sqrt_pd(_mm_loadu_pd(r + i)));
    BM_FINISH(np, r, zc, zs, o)
}
#else
BM_FN_ATTR static void bm_base(size_t np, const uint64_t *wa, const uint64_t *wb, double *restrict r,
                               double *restrict zc, double *restrict zs, double *restrict o)
{
    bm_body(np, wa, wb, r, zc, zs);
    for (size_t i = 0; i < np; i++) r[i] = sqrt(r[i]);
    BM_FINISH(np, r, zc, zs, o)
}
#endif

typedef void (*bm_fn)(size_t, const uint64_t *, const uint64_t *, double *, double *, double *, double *);

/* path -1: the widest the CPU runs; 0 baseline, 1 AVX2, 2 AVX-512; NULL when not available. */
static bm_fn bm_pick(int path)
{
#if BM_CLONES
    const int has512 = __builtin_cpu_supports("avx512f") != 0, has2 = __builtin_cpu_supports("avx2") != 0;
    if (path < 0) path = has512 ? 2 : has2 ? 1 : 0;
    if (path == 2) return has512 ? bm_avx512 : NULL;
    if (path == 1) return has2 ? bm_avx2 : NULL;
#else
    if (path < 0) path = 0;
#endif
    return path == 0 ? bm_base : NULL;
}

/* Blocks of pairs: the words drawn in order (two per pair, as the scalar definition would), the
 * transform vectorised, the values copied out; the four state words are all that is kept. */
static int normal_with(bm_fn fn, disrnn__rng *r, double *out, size_t n)
{
    uint64_t wa[BM_BLOCK], wb[BM_BLOCK];
    double rad[BM_BLOCK], zc[BM_BLOCK], zs[BM_BLOCK], o[2 * BM_BLOCK];
    uint64_t s0 = r->s[0], s1 = r->s[1], s2 = r->s[2], s3 = r->s[3];
    if (!fn) return 0;
    for (size_t i = 0; i < n;) {
        const size_t left = n - i, np = left / 2 + (left & 1) < BM_BLOCK ? left / 2 + (left & 1) : BM_BLOCK;
        const size_t np8 = (np + 7) & ~(size_t)7, nout = 2 * np < left ? 2 * np : left;
        size_t p;
        for (p = 0; p < np; p++) {
            XOSHIRO_NEXT(wa[p], s0, s1, s2, s3);
            XOSHIRO_NEXT(wb[p], s0, s1, s2, s3);
        }
        for (; p < np8; p++) wa[p] = wb[p] = 0; /* padding, transformed and dropped */
        fn(np8, wa, wb, rad, zc, zs, o);
        memcpy(out + i, o, nout * sizeof(double)); /* an odd n drops the last sine */
        i += nout;
    }
    r->s[0] = s0;
    r->s[1] = s1;
    r->s[2] = s2;
    r->s[3] = s3;
    return 1;
}

void disrnn__rng_normal(disrnn__rng *r, double *out, size_t n) { (void)normal_with(bm_pick(-1), r, out, n); }

int disrnn__rng_normal_path(int path, disrnn__rng *r, double *out, size_t n)
{
    return normal_with(bm_pick(path), r, out, n);
}

int disrnn__rng_box_muller(int path, const uint64_t *a, const uint64_t *b, size_t npairs, double *out)
{
    uint64_t wa[BM_BLOCK], wb[BM_BLOCK];
    double rad[BM_BLOCK], zc[BM_BLOCK], zs[BM_BLOCK], o[2 * BM_BLOCK];
    const bm_fn fn = bm_pick(path);
    if (!fn) return 0;
    for (size_t p0 = 0; p0 < npairs; p0 += BM_BLOCK) {
        const size_t np = npairs - p0 < BM_BLOCK ? npairs - p0 : BM_BLOCK, np8 = (np + 7) & ~(size_t)7;
        memcpy(wa, a + p0, np * sizeof(uint64_t));
        memcpy(wb, b + p0, np * sizeof(uint64_t));
        for (size_t p = np; p < np8; p++) wa[p] = wb[p] = 0;
        fn(np8, wa, wb, rad, zc, zs, o);
        memcpy(out + 2 * p0, o, 2 * np * sizeof(double));
    }
    return 1;
}

void disrnn__rng_shuffle(disrnn__rng *r, size_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)disrnn__rng_below(r, (uint64_t)i);
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}
