/* Internal random generator: xoshiro256** seeded through splitmix64. Each handle owns one, so
 * results are reproducible and independent across threads. The state is four words, nothing
 * cached, so saving those four words restores the stream exactly. */
#ifndef DISRNN_RNG_H
#define DISRNN_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct disrnn__rng {
    uint64_t s[4];
} disrnn__rng;

void disrnn__rng_seed(disrnn__rng *r, uint64_t seed);
uint64_t disrnn__rng_next(disrnn__rng *r);
/** Uniform in [0, 1) with 53 random bits. */
double disrnn__rng_uniform(disrnn__rng *r);
/** Uniform integer in [0, n), unbiased; n >= 1. */
uint64_t disrnn__rng_below(disrnn__rng *r, uint64_t n);
/** n standard normal draws by Box-Muller in pairs: pair i takes two consecutive uniforms U, V
 *  (as disrnn__rng_uniform) and writes sqrt(-2 ln u1) cos(2 pi V), then sqrt(-2 ln u1) sin(2 pi V),
 *  with u1 = 1 - U in (0, 1]; an odd n discards the last sine. Own vectorised logarithm and
 *  sine/cosine (no fused multiply-adds): within 3 ulps of the exact values, and the same bits
 *  whichever vector instructions the CPU has. */
void disrnn__rng_normal(disrnn__rng *r, double *out, size_t n);
/** disrnn__rng_normal through one code path (0 baseline, 1 AVX2, 2 AVX-512; -1 the default
 *  choice). Returns 0 and draws nothing when this build or CPU lacks the path (for tests). */
int disrnn__rng_normal_path(int path, disrnn__rng *r, double *out, size_t n);
/** The transform alone: pair i of the generator words a[i], b[i] (U = (a[i] >> 11) 2^-53, likewise
 *  V) into out[2i], out[2i + 1], through a code path as above (for tests). */
int disrnn__rng_box_muller(int path, const uint64_t *a, const uint64_t *b, size_t npairs, double *out);
/** Fisher-Yates shuffle of n indices. */
void disrnn__rng_shuffle(disrnn__rng *r, size_t *a, size_t n);
/** An independent stream derived from a seed and a stream number (for evaluation draws). */
void disrnn__rng_seed_stream(disrnn__rng *r, uint64_t seed, uint64_t stream);

#endif
