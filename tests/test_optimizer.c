/* The vectorised Adam / AdamW update: the bits of PyTorch's formula evaluated one value at a time,
 * for every length and both forms of torch's lerp; the finite-value check folded into it; the
 * in-place step; the vectorised finite scan. */
#include "support.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer.h"

/* torch.optim._single_tensor_adam(w), one parameter at a time, in torch's order of operations. */
static void torch_adam_scalar(const disrnn__adam *o, size_t n, double *theta, const double *g, double *m, double *v,
                              int64_t step)
{
    const double w = 1.0 - o->beta1;
    const double bc1 = 1.0 - pow(o->beta1, (double)step), bc2 = 1.0 - pow(o->beta2, (double)step);
    const double step_size = o->lr / bc1, bc2_sqrt = sqrt(bc2);
    for (size_t i = 0; i < n; i++) {
        double denom;
        if (o->adamw) theta[i] *= 1.0 - o->lr * o->weight_decay;
        if (w < 0.5)
            m[i] = m[i] + w * (g[i] - m[i]);
        else
            m[i] = g[i] - (g[i] - m[i]) * (1.0 - w);
        v[i] = v[i] * o->beta2 + (1.0 - o->beta2) * g[i] * g[i];
        denom = sqrt(v[i]) / bc2_sqrt + o->eps;
        theta[i] = theta[i] + (-step_size) * (m[i] / denom);
    }
}

enum { NA = 13 };
typedef struct arrays {
    double *p[NA];
} arrays;
enum { TH, OLD, PRE, G, M, V, MO, VO, ETH, EM, EV, MIN, VIN };

static void arrays_alloc(arrays *a, size_t n)
{
    for (int k = 0; k < NA; k++) {
        a->p[k] = calloc(n ? n : 1, sizeof(double));
        assert_non_null(a->p[k]);
    }
}

static void arrays_free(arrays *a)
{
    for (int k = 0; k < NA; k++) free(a->p[k]);
}

#define SAME(x, y, n) assert_memory_equal((x), (y), ((n) ? (n) : 1) * sizeof(double))

/* Three steps for lengths around the vector widths and the block of 512, Adam and AdamW, torch's
 * lerp on either side of weight 1/2: the bits of the scalar formula, the old parameters kept, the
 * input moments untouched. */
static void test_update_matches_scalar_formula(void **state)
{
    const size_t lens[] = {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 511, 512, 513, 1030, 4099};
    const disrnn__adam opts[] = {
        {0, 1e-3, 0.9, 0.999, 1e-8, 0.0},  /* Adam */
        {1, 2e-2, 0.9, 0.95, 1e-6, 0.5},   /* AdamW */
        {0, 5e-2, 0.3, 0.5, 1e-4, 0.25},   /* lerp weight 0.7: torch's second form; decay ignored */
        {1, 1e-1, 0.45, 0.9, 1e-3, 0.01},  /* AdamW, weight 0.55 */
    };
    uint64_t rs = 11;
    (void)state;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const size_t n = lens[li], bytes = n * sizeof(double);
        arrays a;
        arrays_alloc(&a, n);
        for (size_t oi = 0; oi < sizeof opts / sizeof opts[0]; oi++) {
            test_uniform(&rs, a.p[TH], n, -2.0, 2.0);
            memcpy(a.p[ETH], a.p[TH], bytes);
            memset(a.p[M], 0, bytes);
            memset(a.p[V], 0, bytes);
            memset(a.p[EM], 0, bytes);
            memset(a.p[EV], 0, bytes);
            for (int64_t step = 1; step <= 3; step++) {
                double *t;
                test_normal(&rs, a.p[G], n);
                if (n > 5 && step == 1) a.p[G][5] = 0.0; /* zero moments: the denominator is eps */
                memcpy(a.p[PRE], a.p[TH], bytes);
                memcpy(a.p[MIN], a.p[M], bytes);
                memcpy(a.p[VIN], a.p[V], bytes);
                torch_adam_scalar(&opts[oi], n, a.p[ETH], a.p[G], a.p[EM], a.p[EV], step);
                assert_int_equal(disrnn__adam_update(&opts[oi], NULL, n, a.p[TH], a.p[OLD], a.p[G], a.p[M], a.p[V], a.p[MO],
                                                     a.p[VO], step),
                                 1);
                SAME(a.p[TH], a.p[ETH], n);
                SAME(a.p[MO], a.p[EM], n);
                SAME(a.p[VO], a.p[EV], n);
                SAME(a.p[OLD], a.p[PRE], n);
                SAME(a.p[M], a.p[MIN], n);
                SAME(a.p[V], a.p[VIN], n);
                t = a.p[M], a.p[M] = a.p[MO], a.p[MO] = t;
                t = a.p[V], a.p[V] = a.p[VO], a.p[VO] = t;
            }
            /* the in-place step takes the same arithmetic */
            memcpy(a.p[EM], a.p[M], bytes);
            memcpy(a.p[EV], a.p[V], bytes);
            memcpy(a.p[ETH], a.p[TH], bytes);
            test_normal(&rs, a.p[G], n);
            torch_adam_scalar(&opts[oi], n, a.p[ETH], a.p[G], a.p[EM], a.p[EV], 4);
            disrnn__adam_step(&opts[oi], n, a.p[TH], a.p[G], a.p[M], a.p[V], 4);
            SAME(a.p[TH], a.p[ETH], n);
            SAME(a.p[M], a.p[EM], n);
            SAME(a.p[V], a.p[EV], n);
        }
        arrays_free(&a);
    }
}

/* Any non-finite new parameter or moment, wherever it is, makes the update report it, with the
 * old parameters in theta_old and the input moments untouched; finite extremes pass. */
static void test_update_reports_nonfinite(void **state)
{
    const disrnn__adam o = {1, 1e-3, 0.9, 0.999, 1e-8, 0.01};
    const size_t n = 37;
    arrays a;
    (void)state;
    arrays_alloc(&a, n);
    for (size_t pos = 0; pos < n; pos++) {
        for (int kind = 0; kind < 4; kind++) {
            uint64_t rs = 3 + pos;
            test_uniform(&rs, a.p[TH], n, -1.0, 1.0);
            test_uniform(&rs, a.p[M], n, -1.0, 1.0);
            test_uniform(&rs, a.p[V], n, 0.0, 1.0);
            test_normal(&rs, a.p[G], n);
            switch (kind) {
            case 0: a.p[G][pos] = NAN; break;              /* NaN everywhere downstream */
            case 1: a.p[G][pos] = 1e200; break;            /* g^2 overflows the second moment */
            case 2: a.p[TH][pos] = INFINITY; break;        /* a parameter already infinite */
            default: a.p[G][pos] = -DBL_MAX; a.p[M][pos] = DBL_MAX; break; /* g - m overflows */
            }
            memcpy(a.p[PRE], a.p[TH], n * sizeof(double));
            memcpy(a.p[MIN], a.p[M], n * sizeof(double));
            memcpy(a.p[VIN], a.p[V], n * sizeof(double));
            assert_int_equal(disrnn__adam_update(&o, NULL, n, a.p[TH], a.p[OLD], a.p[G], a.p[M], a.p[V], a.p[MO], a.p[VO], 7), 0);
            SAME(a.p[OLD], a.p[PRE], n);
            SAME(a.p[M], a.p[MIN], n);
            SAME(a.p[V], a.p[VIN], n);
        }
    }
    /* large but finite everything: accepted */
    for (size_t i = 0; i < n; i++) {
        a.p[TH][i] = i % 2 ? 1e300 : -1e300;
        a.p[G][i] = i % 3 ? 1e150 : -1e-300;
        a.p[M][i] = 1e300;
        a.p[V][i] = 1e300;
    }
    assert_int_equal(disrnn__adam_update(&o, NULL, n, a.p[TH], a.p[OLD], a.p[G], a.p[M], a.p[V], a.p[MO], a.p[VO], 1), 1);
    arrays_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update_matches_scalar_formula),
        cmocka_unit_test(test_update_reports_nonfinite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
