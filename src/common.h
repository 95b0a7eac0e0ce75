/* Internal foundations shared by every source file: handle base (allocator, error text, log),
 * allocation helpers and checked size arithmetic. Never installed. */
#ifndef DISRNN_COMMON_H
#define DISRNN_COMMON_H

#include "disrnn.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** Per-handle allocator (the C library's by default). */
typedef struct disrnn__allocator {
    disrnn_alloc_fn alloc;
    disrnn_free_fn free;
    void *user_data;
} disrnn__allocator;

/** Size of the per-handle message buffer. */
#define DISRNN__ERR_LEN 512

/** Fields every handle starts with. */
typedef struct disrnn__base {
    disrnn__allocator al;
    disrnn_log_fn log_fn;
    int log_level;
    void *log_user_data;
    char err[DISRNN__ERR_LEN];
} disrnn__base;

/** The bits of a double and the double of given bits, through memcpy (no aliasing rule broken;
 *  compilers make it a register move, and vectorise loops that use it). */
static inline uint64_t disrnn__bits_of(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static inline double disrnn__double_of(uint64_t b)
{
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}

#if defined(__GNUC__)
#define DISRNN__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DISRNN__PRINTF(a, b)
#endif

/* status.c */
/** The C library's allocator. */
const disrnn__allocator *disrnn__default_allocator(void);
/** Initialise a base with an allocator (NULL hooks = default); both hooks or neither. */
int disrnn__base_init(disrnn__base *b, disrnn_alloc_fn a, disrnn_free_fn f, void *ud);
/** Record a failure on a handle (may be NULL): formats the message, logs it at ERROR level and
 *  returns status. Takes a const-cast base from const functions: the message is the only state a
 *  const call may write. */
int disrnn__fail(const disrnn__base *b, int status, const char *fmt, ...) DISRNN__PRINTF(3, 4);
/** Format a failure into an optional caller buffer; returns status. */
int disrnn__fail_msg(char *msg, size_t msg_len, int status, const char *fmt, ...) DISRNN__PRINTF(4, 5);
/** Log a message at a level through the handle's callback (silent by default). */
void disrnn__log(const disrnn__base *b, int level, const char *fmt, ...) DISRNN__PRINTF(3, 4);
/** Install a log callback on a base. */
int disrnn__set_log(disrnn__base *b, disrnn_log_fn fn, int min_level, void *ud);
/** Message of a base, "" for NULL. */
const char *disrnn__last_error(const disrnn__base *b);

/* alloc.c */
/** Allocate n bytes (n == 0 allocates 1). NULL on failure. */
void *disrnn__alloc(const disrnn__allocator *al, size_t n);
/** Allocate count * size bytes zeroed, NULL on overflow or failure. */
void *disrnn__calloc(const disrnn__allocator *al, size_t count, size_t size);
/** Allocate count doubles (not zeroed), NULL on overflow or failure. */
double *disrnn__alloc_doubles(const disrnn__allocator *al, size_t count);
/** Free memory from disrnn__alloc (NULL allowed). */
void disrnn__free(const disrnn__allocator *al, void *p);
/** a * b with overflow detection: returns 0 and sets *out, or returns -1. */
int disrnn__mul_size(size_t a, size_t b, size_t *out);
/** a + b with overflow detection. */
int disrnn__add_size(size_t a, size_t b, size_t *out);

/** 1 when every value of a column-major rows x cols matrix is finite. */
int disrnn__all_finite(const double *a, size_t rows, size_t cols, size_t ld);

#endif
