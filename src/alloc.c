/* Allocation through per-handle hooks, and checked size arithmetic. The only malloc/free calls of
 * the library are the default hooks here. */
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void *default_alloc(size_t size, void *ud) { (void)ud; return malloc(size); }
static void default_free(void *p, void *ud) { (void)ud; free(p); }

static const disrnn__allocator default_allocator = {default_alloc, default_free, NULL};

const disrnn__allocator *disrnn__default_allocator(void) { return &default_allocator; }

void *disrnn__alloc(const disrnn__allocator *al, size_t n)
{
    return al->alloc(n ? n : 1, al->user_data);
}

void *disrnn__calloc(const disrnn__allocator *al, size_t count, size_t size)
{
    size_t n;
    void *p;
    if (disrnn__mul_size(count, size, &n)) return NULL;
    p = disrnn__alloc(al, n);
    if (p && n) memset(p, 0, n);
    return p;
}

double *disrnn__alloc_doubles(const disrnn__allocator *al, size_t count)
{
    size_t n;
    if (disrnn__mul_size(count, sizeof(double), &n)) return NULL;
    return (double *)disrnn__alloc(al, n);
}

void disrnn__free(const disrnn__allocator *al, void *p)
{
    if (p) al->free(p, al->user_data);
}

int disrnn__mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

int disrnn__add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a) return -1;
    *out = a + b;
    return 0;
}

int disrnn__all_finite(const double *a, size_t rows, size_t cols, size_t ld)
{
    /* no early exit within a column, so the loop vectorises (the trainer checks the whole
     * gradient every step): the exponent field of every value is ORed into a flag whose top bit
     * is set when the field is all ones (infinity or NaN) */
    for (size_t j = 0; j < cols; j++) {
        uint64_t bad = 0;
        for (size_t i = 0; i < rows; i++) {
            uint64_t b;
            memcpy(&b, a + i + j * ld, sizeof b);
            bad |= (b & 0x7ff0000000000000ULL) + 0x0010000000000000ULL;
        }
        if (bad >> 63) return 0;
    }
    return 1;
}
