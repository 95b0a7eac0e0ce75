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
/** n standard normal draws (Box-Muller in pairs; an odd n discards the last partner). */
void disrnn__rng_normal(disrnn__rng *r, double *out, size_t n);
/** Fisher-Yates shuffle of n indices. */
void disrnn__rng_shuffle(disrnn__rng *r, size_t *a, size_t n);
/** An independent stream derived from a seed and a stream number (for evaluation draws). */
void disrnn__rng_seed_stream(disrnn__rng *r, uint64_t seed, uint64_t stream);

#endif
