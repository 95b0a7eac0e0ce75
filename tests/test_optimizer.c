/* The vectorised Adam / AdamW update: the bits of the scalar formula evaluated one value at a time
 * (PyTorch's moments and, for the step, the divider-free form of src/optimizer.c on CPUs with
 * fused multiply-adds, PyTorch's formula elsewhere), for every length and both forms of torch's
 * lerp; its distance from PyTorch's formula and from the exact step; the
 * exact form where eps is too small for the other; the finite-value check folded into it; the
 * in-place step. */
#include "support.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer.h"

static uint64_t bits(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static double from_bits(uint64_t b)
{
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* m / (sqrt(v) / bc + eps) as src/optimizer.c computes it without the divider, written out once
 * more from its description: v raised to vmin, three coupled Newton steps towards sqrt(v) and
 * 1 / (2 sqrt v) from the bit guess, one correction, then 1 / denom by three Newton steps and the
 * quotient corrected once. */
static double step_no_divider(double m, double v, double bc, double eps)
{
    const double t = eps * bc * 0x1p-60, vmin = t * t;
    double vv = v > vmin ? v : vmin, y = from_bits(0x5fe6ec8400000000ULL - (bits(vv) >> 1));
    double s = vv * y, h = 0.5 * y, den, q;
    for (int it = 0; it < 3; it++) {
        const double r = fma(-s, h, 0.5);
        s = fma(s, r, s);
        h = fma(h, r, h);
    }
    s = fma(fma(-s, s, vv), h, s);
    den = fma(s, 1.0 / bc, eps);
    y = from_bits(0x7fde623800000000ULL - bits(den));
    for (int it = 0; it < 3; it++) y = fma(y, fma(-den, y, 1.0), y);
    q = m * y;
    return fma(fma(-den, q, m), y, q);
}

/* torch.optim._single_tensor_adam(w), one parameter at a time, in torch's order of operations;
 * exact_step 0 takes the step m / denom as step_no_divider does. */
static void torch_adam_scalar_form(const disrnn__adam *o, size_t n, double *theta, const double *g, double *m,
                                   double *v, int64_t step, int exact_step)
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
        if (exact_step)
            theta[i] = theta[i] + (-step_size) * (m[i] / denom);
        else
            theta[i] = fma(-step_size, step_no_divider(m[i], v[i], bc2_sqrt, o->eps), theta[i]);
    }
}

/* The form this CPU's update takes. */
static void torch_adam_scalar(const disrnn__adam *o, size_t n, double *theta, const double *g, double *m, double *v,
                              int64_t step)
{
    torch_adam_scalar_form(o, n, theta, g, m, v, step, !disrnn__adam_divider_free());
}

enum { NA = 13 };
typedef struct arrays {
    double *p[NA];
} arrays;
enum { TH, NEW, PRE, G, M, V, MO, VO, ETH, EM, EV, MIN, VIN };

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
 * lerp on either side of weight 1/2: the bits of the scalar formula in the output arrays, the input
 * parameters and moments untouched. */
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
                assert_int_equal(disrnn__adam_update(&opts[oi], NULL, n, a.p[TH], a.p[NEW], a.p[G], a.p[M], a.p[V], a.p[MO],
                                                     a.p[VO], step),
                                 1);
                SAME(a.p[NEW], a.p[ETH], n);
                SAME(a.p[MO], a.p[EM], n);
                SAME(a.p[VO], a.p[EV], n);
                SAME(a.p[TH], a.p[PRE], n);
                SAME(a.p[M], a.p[MIN], n);
                SAME(a.p[V], a.p[VIN], n);
                t = a.p[TH], a.p[TH] = a.p[NEW], a.p[NEW] = t;
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

/* The divider-free step against the exact quotient m / (sqrt(v) / bc + eps) in long double, over
 * moments from 1e-300 to 1e300 (and 0): within 3 ulps of it, as PyTorch's own formula (a square
 * root and two divisions, each rounded: measured 2.69 ulps at most, against 2.87 here; both
 * 2.0 with bc = 1). The Newton steps themselves add next to nothing: the rest is the rounding of
 * sqrt(v), of the denominator and of the quotient, which both forms share. Also: the
 * updated parameters of a whole update stay within a few ulps of PyTorch's formula; an eps too
 * small for the bit guesses (eps bc below 2^-400) takes the exact form, PyTorch's bits. */
static void test_step_accuracy_and_exact_fallback(void **state)
{
    uint64_t rs = 99;
    double worst = 0.0, worst_torch = 0.0;
    const double bcs[] = {1.0, 0.0316227766016838, 0.9995};
    (void)state;
    for (size_t bi = 0; bi < sizeof bcs / sizeof bcs[0]; bi++) {
        const double bc = bcs[bi], eps = 1e-8;
        for (int i = 0; i < 200000; i++) {
            double u[3], m, v, q, qt, ulp;
            long double exact;
            test_uniform(&rs, u, 3, 0.0, 1.0);
            v = i % 97 == 0 ? 0.0 : pow(10.0, -300.0 + 600.0 * u[0]);
            m = (u[2] < 0.5 ? -1.0 : 1.0) * pow(10.0, -300.0 + 600.0 * u[1]);
            exact = (long double)m / (sqrtl((long double)v) / (long double)bc + (long double)eps);
            if (!(fabsl(exact) < 1e300L) || fabsl(exact) < 1e-290L) continue;
            q = step_no_divider(m, v, bc, eps);
            qt = m / (sqrt(v) / bc + eps);
            ulp = nextafter(fabs((double)exact), INFINITY) - fabs((double)exact);
            if (fabs((double)((q - exact) / ulp)) > worst) worst = fabs((double)((q - exact) / ulp));
            if (fabs((double)((qt - exact) / ulp)) > worst_torch) worst_torch = fabs((double)((qt - exact) / ulp));
        }
    }
    print_message("divider-free step: %.2f ulp from the exact quotient at most (PyTorch's formula: %.2f)\n", worst,
                  worst_torch);
    assert_true(worst <= 3.0);
    assert_true(worst_torch > 0.5); /* the comparison can tell rounded from exact */

    {
        const size_t n = 1030;
        const disrnn__adam o = {1, 2e-2, 0.9, 0.95, 1e-6, 0.5}, tiny = {0, 1e-3, 0.9, 0.999, 1e-125, 0.0};
        arrays a;
        arrays_alloc(&a, n);
        test_uniform(&rs, a.p[TH], n, -2.0, 2.0);
        memcpy(a.p[ETH], a.p[TH], n * sizeof(double));
        for (int64_t step = 1; step <= 3; step++) {
            test_normal(&rs, a.p[G], n);
            memcpy(a.p[PRE], a.p[ETH], n * sizeof(double));
            torch_adam_scalar_form(&o, n, a.p[ETH], a.p[G], a.p[EM], a.p[EV], step, 1);
            disrnn__adam_step(&o, n, a.p[TH], a.p[G], a.p[M], a.p[V], step);
            for (size_t i = 0; i < n; i++) {
                /* a few ulps of the step, and the rounding of the sum */
                const double upd = fabs(a.p[ETH][i] - a.p[PRE][i] * (1.0 - o.lr * o.weight_decay));
                assert_true(fabs(a.p[TH][i] - a.p[ETH][i]) <= 8.0 * DBL_EPSILON * upd + 2.0 * DBL_EPSILON * fabs(a.p[ETH][i]));
                memcpy(a.p[TH] + i, a.p[ETH] + i, sizeof(double)); /* the next step starts from the same point */
                assert_true(bits(a.p[M][i]) == bits(a.p[EM][i]) && bits(a.p[V][i]) == bits(a.p[EV][i]));
            }
        }
        /* eps 1e-125: the exact form, bit for bit, zero moments included */
        test_uniform(&rs, a.p[TH], n, -2.0, 2.0);
        memcpy(a.p[ETH], a.p[TH], n * sizeof(double));
        memset(a.p[M], 0, n * sizeof(double));
        memset(a.p[V], 0, n * sizeof(double));
        memset(a.p[EM], 0, n * sizeof(double));
        memset(a.p[EV], 0, n * sizeof(double));
        for (int64_t step = 1; step <= 3; step++) {
            test_normal(&rs, a.p[G], n);
            a.p[G][5] = 0.0;
            torch_adam_scalar_form(&tiny, n, a.p[ETH], a.p[G], a.p[EM], a.p[EV], step, 1);
            disrnn__adam_step(&tiny, n, a.p[TH], a.p[G], a.p[M], a.p[V], step);
            SAME(a.p[TH], a.p[ETH], n);
        }
        arrays_free(&a);
    }
}

/* Any non-finite new parameter or moment, wherever it is, makes the update report it, with the
 * input parameters and moments untouched; finite extremes pass. */
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
            assert_int_equal(disrnn__adam_update(&o, NULL, n, a.p[TH], a.p[NEW], a.p[G], a.p[M], a.p[V], a.p[MO], a.p[VO], 7), 0);
            SAME(a.p[TH], a.p[PRE], n);
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
    assert_int_equal(disrnn__adam_update(&o, NULL, n, a.p[TH], a.p[NEW], a.p[G], a.p[M], a.p[V], a.p[MO], a.p[VO], 1), 1);
    arrays_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update_matches_scalar_formula),
        cmocka_unit_test(test_step_accuracy_and_exact_fallback),
        cmocka_unit_test(test_update_reports_nonfinite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
