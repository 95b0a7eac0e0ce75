/* xoshiro256** (Blackman and Vigna) seeded by splitmix64; Box-Muller normals in pairs. */
#include "rng.h"

#include <math.h>

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

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t disrnn__rng_next(disrnn__rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double disrnn__rng_uniform(disrnn__rng *r)
{
    return (double)(disrnn__rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t disrnn__rng_below(disrnn__rng *r, uint64_t n)
{
    /* rejection keeps it unbiased */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do v = disrnn__rng_next(r);
    while (v >= limit);
    return v % n;
}

void disrnn__rng_normal(disrnn__rng *r, double *out, size_t n)
{
    const double two_pi = 6.283185307179586476925286766559;
    for (size_t i = 0; i < n; i += 2) {
        double u1 = 1.0 - disrnn__rng_uniform(r); /* (0, 1] keeps log finite */
        double u2 = disrnn__rng_uniform(r);
        double rad = sqrt(-2.0 * log(u1));
        out[i] = rad * cos(two_pi * u2);
        if (i + 1 < n) out[i + 1] = rad * sin(two_pi * u2);
    }
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
