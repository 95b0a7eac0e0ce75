/* Helpers shared by the cmocka tests. */
#ifndef DISRNN_TEST_SUPPORT_H
#define DISRNN_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "disrnn.h"

/** Path of the shared data folder (DISRNN_SHARED_DATA, or ../shared/data from the repo root),
 *  or NULL when absent. */
const char *test_shared_data(void);
/** Fill n doubles with uniform values in [lo, hi) from a tiny deterministic generator. */
void test_uniform(uint64_t *state, double *out, size_t n, double lo, double hi);
/** Standard normal draws from the same generator. */
void test_normal(uint64_t *state, double *out, size_t n);
/** An allocator that fails the k-th allocation (k counts from 0; -1 never fails) and counts live blocks. */
typedef struct test_chaos {
    long fail_at;
    long count;
    long live;
} test_chaos;
void *test_chaos_alloc(size_t size, void *ud);
void test_chaos_free(void *p, void *ud);

/** A private scratch folder for the test binary (under $TMPDIR or /tmp), made by
 *  test_scratch_setup and removed with its contents by test_scratch_teardown (cmocka group hooks). */
extern char test_scratch[256];
int test_scratch_setup(void **state);
int test_scratch_teardown(void **state);

#define assert_status(expr, expected) assert_int_equal((int)(expr), (int)(expected))
#define assert_ok(expr) assert_status(expr, DISRNN_OK)

#endif
