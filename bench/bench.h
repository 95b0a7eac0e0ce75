/* Shared declarations of the benchmark harness (bench/ only; not part of the library). */
#ifndef DISRNN_BENCH_H
#define DISRNN_BENCH_H

#include <stddef.h>

/** y = exp(x) over n values through the widest vector exp the CPU offers (glibc's libmvec,
 *  chosen at run time); defined in peak_exp.c, the one file built with -ffast-math. */
void bench_vexp(double *y, const double *x, size_t n);

/** y = exp(x) over n values (n a multiple of 8) through a vector polynomial for AVX-512 or
 *  AVX2 + FMA; returns 0 (and does nothing) when the CPU has neither. Defined in peak_exp.c. */
int bench_vexp_poly(double *y, const double *x, size_t n);

#endif
