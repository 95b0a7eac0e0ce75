/* The other candidate for the machine's exp rate, in its own file: unlike peak_exp.c it must not
 * be built with -ffast-math, whose reassociation would fold the rounding trick below
 * ((x + 1.5 2^52) - 1.5 2^52 == x) away; it is built with -ffp-contract=fast instead. */
#include <stddef.h>

#include "bench.h"

/* A Cody-Waite + polynomial exponential written
 * with GCC vector extensions (8 lanes, the same method as the library's PC kernel, independently
 * written here), for AVX-512 or AVX2 + FMA. The floor uses the faster of this and libmvec, so it
 * stays a lower bound whichever way the library computes its exponentials. */
#if defined(__GNUC__) && defined(__x86_64__)
typedef double bench_vd __attribute__((vector_size(64)));
typedef long long bench_vl __attribute__((vector_size(64)));
typedef unsigned long long bench_vu __attribute__((vector_size(64)));

#define BENCH_POLY_BODY                                                                             \
    for (size_t i = 0; i + 8 <= n; i += 8) {                                                        \
        bench_vd x, t, r, q, zero = {0};                                                            \
        bench_vu sc;                                                                                \
        bench_vl under;                                                                             \
        __builtin_memcpy(&x, xs + i, sizeof x);                                                     \
        x = x * 1.4426950408889634074; /* exp(x) = 2^(x log2 e) */                                  \
        t = x + (zero + 0x1.8p52);                                                                  \
        r = x - (t - (zero + 0x1.8p52));                                                            \
        q = zero + 4.4549605981865186e-10;                                                          \
        q = q * r + 7.0725859492692234e-09;                                                         \
        q = q * r + 1.0178062445845774e-07;                                                         \
        q = q * r + 1.3215442587921689e-06;                                                         \
        q = q * r + 1.5252733829836119e-05;                                                         \
        q = q * r + 0.0001540353044173605;                                                          \
        q = q * r + 0.0013333558146416936;                                                          \
        q = q * r + 0.0096181291076068882;                                                          \
        q = q * r + 0.055504108664821597;                                                           \
        q = q * r + 0.24022650695910097;                                                            \
        q = q * r + 0.69314718055994529;                                                            \
        q = q * r + 1.0;                                                                            \
        sc = (((bench_vu)t - (bench_vu)(zero + 0x1.8p52)) + 1023u) << 52;                           \
        q = q * (bench_vd)sc;                                                                       \
        under = x < -1021.0;                                                                        \
        q = (bench_vd)((bench_vl)q & ~under);                                                       \
        __builtin_memcpy(y + i, &q, sizeof q);                                                      \
    }

__attribute__((target("avx512f"))) static void poly_avx512(double *y, const double *xs, size_t n) { BENCH_POLY_BODY }
__attribute__((target("avx2,fma"))) static void poly_avx2(double *y, const double *xs, size_t n) { BENCH_POLY_BODY }

int bench_vexp_poly(double *y, const double *x, size_t n)
{
    if (__builtin_cpu_supports("avx512f")) {
        poly_avx512(y, x, n);
        return 1;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        poly_avx2(y, x, n);
        return 1;
    }
    return 0;
}
#else
int bench_vexp_poly(double *y, const double *x, size_t n)
{
    (void)y;
    (void)x;
    (void)n;
    return 0;
}
#endif
