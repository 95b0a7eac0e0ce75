/* The exp kernel that measures this machine's exponential throughput for the floor. It is the
 * only file built with -ffast-math (gcc vectorises exp through glibc's libmvec only under
 * -ffinite-math-only and -funsafe-math-optimizations), so nothing else loses NaN semantics.
 * target_clones picks the AVX-512, AVX2 or baseline variant when the program starts, so the
 * harness measures the best this CPU can do from a portable build. */
#include <math.h>

#include "bench.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void bench_vexp(double *restrict y, const double *restrict x, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) y[i] = exp(x[i]);
}

