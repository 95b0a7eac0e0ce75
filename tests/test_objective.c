/* The objective: the analytic gradient against finite differences over every combination of
 * options, the loss terms against an independent plain reference, special values, numerics of
 * the Poisson forms, bad input, allocation behaviour and reproducibility. */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "objective_internal.h"

#define L_HIST 2

enum { IN_NONE, IN_E, IN_D, IN_BOTH, IN_E_FIXED, IN_COUNT };
enum { GR_ONE, GR_EQUAL, GR_UNEQUAL, GR_COUNT, GR_FULL = GR_COUNT /* extra: G = K groups of 1 */ };

typedef struct fd_case {
    size_t N, K;
    int obs, sigma, padding, std_mode, inputs, groups, masked;
} fd_case;

/* Everything one loss evaluation needs, column-major with ld = rows. */
typedef struct batch {
    size_t M, N, K, P;
    double *x, *h, *u, *eps;
    uint8_t *mask;
} batch;

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    assert_non_null(p);
    return p;
}

static void batch_free(batch *b)
{
    free(b->x);
    free(b->h);
    free(b->u);
    free(b->eps);
    free(b->mask);
    memset(b, 0, sizeof *b);
}

static int is_poisson(int obs) { return obs == DISRNN_OBS_POISSON_SOFTPLUS || obs == DISRNN_OBS_POISSON_EXP; }

static size_t case_inputs(const fd_case *c) { return c->inputs == IN_NONE ? 0 : 2; }

/* Model for a case: L = 2 kernel (0.65, 0.35), kappa 1.7, N_tot 50. */
static disrnn_model_t *case_model(const fd_case *c, double beta, double alpha, uint64_t seed)
{
    disrnn_config_t *cfg;
    disrnn_model_t *m;
    const double psi[L_HIST] = {0.65, 0.35};
    size_t sizes[16], G = 1;
    const size_t P = case_inputs(c);
    assert_ok(disrnn_config_create(&cfg, c->N, c->K));
    if (c->groups == GR_ONE) {
        sizes[0] = c->K;
    } else if (c->groups == GR_EQUAL) {
        sizes[0] = sizes[1] = c->K / 2;
        G = 2;
    } else if (c->groups == GR_UNEQUAL) {
        sizes[0] = 1;
        sizes[1] = c->K - 1;
        G = 2;
    } else {
        for (size_t k = 0; k < c->K; k++) sizes[k] = 1;
        G = c->K;
    }
    assert_ok(disrnn_config_set_groups(cfg, sizes, G));
    assert_ok(disrnn_config_set_kernel(cfg, psi, L_HIST));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_SIGMA, c->sigma));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_PADDING, c->padding));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_OBS, c->obs));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_NUM_INPUTS, (int64_t)P));
    if (P > 0) {
        const int e = c->inputs == IN_E || c->inputs == IN_BOTH ? DISRNN_INPUT_LEARNED
                      : c->inputs == IN_E_FIXED                 ? DISRNN_INPUT_FIXED
                                                                : DISRNN_INPUT_NONE;
        const int d = c->inputs == IN_D || c->inputs == IN_BOTH ? DISRNN_INPUT_LEARNED : DISRNN_INPUT_NONE;
        assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_INPUT_E, e));
        assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_INPUT_D, d));
    }
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_STD_MODE, c->std_mode));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_STD_VALUE, 0.35));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_KAPPA, 1.7));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_N_TOT, 50.0));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, beta));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_ALPHA, alpha));
    assert_ok(disrnn_config_set_seed(cfg, seed));
    assert_ok(disrnn_model_create(&m, cfg));
    disrnn_config_free(cfg);
    return m;
}

/* Move every learned parameter off its initial value, and give a fixed E random entries. */
static void randomize_params(disrnn_model_t *m, uint64_t *rs, double spread)
{
    const size_t n = disrnn_model_num_params(m);
    double *th = (double *)xcalloc(n, sizeof(double)), *dv = (double *)xcalloc(n, sizeof(double));
    size_t rows, cols;
    int learned;
    assert_ok(disrnn_model_get_params(m, th, n));
    test_uniform(rs, dv, n, -spread, spread);
    for (size_t i = 0; i < n; i++) th[i] += dv[i];
    assert_ok(disrnn_model_set_params(m, th, n));
    assert_ok(disrnn_model_block_info(m, DISRNN_BLOCK_E, &rows, &cols, NULL, &learned));
    if (rows * cols > 0 && !learned) {
        double *e = (double *)xcalloc(rows * cols, sizeof(double));
        test_uniform(rs, e, rows * cols, -0.8, 0.8);
        assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_E, e, rows * cols));
        free(e);
    }
    free(th);
    free(dv);
}

/* A batch of M consecutive samples of one trial of T = M + L bins. The encoder input is built
 * through disrnn__encoder_input from the previous L bins, with bins before the trial's start
 * filled as the padding mode says (repeat x_0, zero, or drop the first L bins). */
static void make_batch(batch *b, const disrnn_model_t *m, const fd_case *c, size_t M, uint64_t *rs)
{
    const size_t N = c->N, K = c->K, P = case_inputs(c), T = M + L_HIST;
    double *trial = (double *)xcalloc(N * T, sizeof(double));
    double *xprev = (double *)xcalloc(N * L_HIST * M, sizeof(double));
    const size_t first = c->padding == DISRNN_PAD_DROP ? L_HIST : 0;
    b->M = M;
    b->N = N;
    b->K = K;
    b->P = P;
    b->x = (double *)xcalloc(N * M, sizeof(double));
    b->h = (double *)xcalloc(N * M, sizeof(double));
    b->u = P ? (double *)xcalloc(P * M, sizeof(double)) : NULL;
    b->eps = (double *)xcalloc(K * M, sizeof(double));
    b->mask = NULL;
    if (is_poisson(c->obs)) {
        test_uniform(rs, trial, N * T, 0.0, 6.0);
        for (size_t i = 0; i < N * T; i++) trial[i] = floor(trial[i]);
    } else {
        test_normal(rs, trial, N * T);
    }
    for (size_t j = 0; j < M; j++) {
        const size_t t = first + j;
        for (size_t l = 1; l <= L_HIST; l++) {
            double *dst = xprev + j * N * L_HIST + (l - 1) * N;
            for (size_t n = 0; n < N; n++) {
                if (t >= l) dst[n] = trial[n + (t - l) * N];
                else if (c->padding == DISRNN_PAD_REPEAT) dst[n] = trial[n];
                else dst[n] = 0.0; /* sigma(0) = 0 for tanh, identity and relu */
            }
        }
        memcpy(b->x + j * N, trial + t * N, N * sizeof(double));
    }
    disrnn__encoder_input(&m->spec, M, xprev, N * L_HIST, b->h, N);
    if (P) test_normal(rs, b->u, P * M);
    test_normal(rs, b->eps, K * M);
    if (c->masked) {
        double r;
        b->mask = (uint8_t *)xcalloc(N * M, 1);
        for (size_t i = 0; i < N * M; i++) {
            test_uniform(rs, &r, 1, 0.0, 1.0);
            b->mask[i] = r >= 0.3 || i == 0;
            if (!b->mask[i]) b->x[i] = NAN; /* masked values must never be read */
        }
    }
    free(trial);
    free(xprev);
}

static int batch_loss(disrnn_model_t *m, const batch *b, double *terms, double *grad)
{
    return disrnn_model_loss(m, b->M, b->x, b->N, b->h, b->N, b->u, b->P, b->mask, b->N, b->eps, b->K, terms,
                             terms ? 5 : 0, grad, grad ? disrnn_model_num_params(m) : 0);
}

/* ---------------------------------------------------------------------------------------- */
/* Independent reference: plain loops over the formulas of MODEL.md, public getters only, the
 * encoder std from its definition, densities multiplied out directly (no log-sum-exp). */

static double *get_block(const disrnn_model_t *m, int block, size_t *rows, size_t *cols)
{
    size_t r, c;
    double *v;
    assert_ok(disrnn_model_block_info(m, block, &r, &c, NULL, NULL));
    v = (double *)xcalloc(r * c, sizeof(double));
    if (r * c > 0) assert_ok(disrnn_model_get_param(m, block, v, r * c));
    if (rows) *rows = r;
    if (cols) *cols = c;
    return v;
}

static void ref_terms(const disrnn_model_t *m, const batch *b, double out[5], double *min_abs_eta, size_t *n_pos)
{
    size_t N, K, G, L, P, Er, Ec, Dr, Dc;
    int64_t obs, std_mode;
    double beta, alpha, n_tot, std_value;
    double *A = get_block(m, DISRNN_BLOCK_A, NULL, NULL), *B = get_block(m, DISRNN_BLOCK_B, NULL, NULL);
    double *c = get_block(m, DISRNN_BLOCK_BIAS_C, NULL, NULL), *d = get_block(m, DISRNN_BLOCK_BIAS_D, NULL, NULL);
    double *rho = get_block(m, DISRNN_BLOCK_RHO, NULL, NULL), *logs = get_block(m, DISRNN_BLOCK_LOG_S, NULL, NULL);
    double *E = get_block(m, DISRNN_BLOCK_E, &Er, &Ec), *D = get_block(m, DISRNN_BLOCK_D, &Dr, &Dc);
    size_t sizes[64], grp[64];
    double *s, *mu, *z, nll = 0.0, kl = 0.0, pc = 0.0, bd = 0.0, minabs = INFINITY;
    size_t pos = 0;
    const size_t M = b->M;
    const double pi = 3.14159265358979323846;

    assert_ok(disrnn_model_dims(m, &N, &K, &G, &L, &P));
    assert_ok(disrnn_model_groups(m, sizes, 64));
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_OBS, &obs));
    assert_ok(disrnn_model_get_int(m, DISRNN_OPT_STD_MODE, &std_mode));
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_BETA, &beta));
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_ALPHA, &alpha));
    assert_ok(disrnn_model_get_double(m, DISRNN_OPT_N_TOT, &n_tot));
    s = (double *)xcalloc(K, sizeof(double));
    mu = (double *)xcalloc(K * M, sizeof(double));
    z = (double *)xcalloc(K * M, sizeof(double));
    for (size_t g = 0, k = 0; g < G; g++)
        for (size_t i = 0; i < sizes[g]; i++) grp[k++] = g;
    for (size_t k = 0; k < K; k++) {
        if (std_mode == DISRNN_STD_SCOTT) s[k] = pow(n_tot, -1.0 / ((double)K + 4.0));
        else if (std_mode == DISRNN_STD_FIXED) {
            assert_ok(disrnn_model_get_double(m, DISRNN_OPT_STD_VALUE, &std_value));
            s[k] = std_value;
        } else s[k] = exp(logs[k]);
    }
    for (size_t j = 0; j < M; j++) {
        for (size_t k = 0; k < K; k++) {
            double v = d[k];
            for (size_t n = 0; n < N; n++) v += B[k + n * K] * b->h[n + j * N];
            for (size_t p = 0; p < Dc; p++) v += D[k + p * K] * b->u[p + j * P];
            mu[k + j * K] = v;
            z[k + j * K] = v + s[k] * b->eps[k + j * K];
            kl += 0.5 * (v * v + s[k] * s[k] - 1.0 - 2.0 * log(s[k]));
        }
        for (size_t n = 0; n < N; n++) {
            double eta = c[n], x, mean, lam;
            for (size_t k = 0; k < K; k++) eta += A[n + k * N] * z[k + j * K];
            for (size_t p = 0; p < Ec; p++) eta += E[n + p * N] * b->u[p + j * P];
            if (b->mask && !b->mask[n + j * N]) continue;
            if (fabs(eta) < minabs) minabs = fabs(eta);
            if (eta > 0.0) pos++;
            x = b->x[n + j * N];
            switch (obs) {
            case DISRNN_OBS_GAUSSIAN:
            case DISRNN_OBS_GAUSSIAN_RELU:
                mean = obs == DISRNN_OBS_GAUSSIAN ? eta : (eta > 0 ? eta : 0.0);
                nll += 0.5 * log(2.0 * pi) + rho[n] + 0.5 * (x - mean) * (x - mean) / exp(2.0 * rho[n]);
                break;
            case DISRNN_OBS_POISSON_SOFTPLUS:
                lam = log(1.0 + exp(eta));
                nll += lam - x * log(lam) + lgamma(x + 1.0);
                break;
            default:
                nll += exp(eta) - x * eta + lgamma(x + 1.0);
                break;
            }
        }
    }
    /* PC: ln q(z_i) and ln q_g(z_ig) straight from the mixture densities */
    if (M >= 2 && n_tot > 0.0) {
        const double w_off = (n_tot - 1.0) / ((double)M - 1.0);
        for (size_t i = 0; i < M; i++) {
            double full = 0.0, sum_g = 0.0;
            double *qg = (double *)xcalloc(G, sizeof(double));
            for (size_t j = 0; j < M; j++) {
                const double w = i == j ? 1.0 : w_off;
                double prod = 1.0;
                double *pg = (double *)xcalloc(G, sizeof(double));
                for (size_t g = 0; g < G; g++) pg[g] = 1.0;
                for (size_t k = 0; k < K; k++) {
                    const double t = (z[k + i * K] - mu[k + j * K]) / s[k];
                    const double dens = exp(-0.5 * t * t) / (s[k] * sqrt(2.0 * pi));
                    prod *= dens;
                    pg[grp[k]] *= dens;
                }
                full += w * prod;
                for (size_t g = 0; g < G; g++) qg[g] += w * pg[g];
                free(pg);
            }
            for (size_t g = 0; g < G; g++) sum_g += log(qg[g] / n_tot);
            pc += log(full / n_tot) - sum_g;
            free(qg);
        }
        pc /= (double)M;
    }
    for (size_t a = 0; a < K; a++)
        for (size_t e = 0; e < K; e++) {
            double jv = 0.0;
            for (size_t n = 0; n < N; n++) jv += B[a + n * K] * A[n + e * N];
            if (grp[a] != grp[e]) bd += jv * jv;
        }
    bd /= (double)(K * K);
    out[DISRNN_TERM_NLL] = nll / (double)M;
    out[DISRNN_TERM_KL] = kl / (double)M;
    out[DISRNN_TERM_PC] = pc;
    out[DISRNN_TERM_BD] = bd;
    out[DISRNN_TERM_LOSS] = out[1] + out[2] + beta * pc + alpha * bd;
    if (min_abs_eta) *min_abs_eta = minabs;
    if (n_pos) *n_pos = pos;
    free(A); free(B); free(c); free(d); free(rho); free(logs); free(E); free(D);
    free(s); free(mu); free(z);
}

/* ---------------------------------------------------------------------------------------- */
/* 1. Finite differences over every combination */

typedef struct fd_stats {
    long combos, params;
    double worst_rel;       /* among entries with |g| >= 1e-2, where the relative test applies */
    double worst_abs_small; /* among entries below 1e-2, where the 1e-8 floor applies */
    double worst_ratio;     /* |g - f| / allowed, <= 1 passes */
} fd_stats;

static double eval_loss(disrnn_model_t *m, const batch *b)
{
    double t[5];
    assert_ok(batch_loss(m, b, t, NULL));
    return t[DISRNN_TERM_LOSS];
}

static double central(disrnn_model_t *m, const batch *b, double *th, size_t n, size_t i, double step)
{
    const double keep = th[i];
    double fp, fm;
    th[i] = keep + step;
    assert_ok(disrnn_model_set_params(m, th, n));
    fp = eval_loss(m, b);
    th[i] = keep - step;
    assert_ok(disrnn_model_set_params(m, th, n));
    fm = eval_loss(m, b);
    th[i] = keep;
    return (fp - fm) / (2.0 * step);
}

static void check_gradient(const fd_case *c, uint64_t seed, fd_stats *st)
{
    uint64_t rs = seed * 7919u + 17u;
    const size_t M = 5;
    disrnn_model_t *m = case_model(c, 1.5, 0.7, seed);
    batch b;
    size_t n;
    double *th, *g, minabs = 0.0, terms[5], ref[5];
    size_t n_pos = 0;
    int tries = 0;
    make_batch(&b, m, c, M, &rs);
    /* The relu observation mean has a kink at eta = 0: keep every observed eta at least 3e-3
     * away from it so that the difference quotients never straddle it, and at least one
     * observed eta positive so that the decoder gradient is not identically zero. */
    do {
        randomize_params(m, &rs, 0.4);
        ref_terms(m, &b, ref, &minabs, &n_pos);
        assert_true(++tries < 100);
    } while (c->obs == DISRNN_OBS_GAUSSIAN_RELU && (minabs < 3e-3 || n_pos == 0));
    n = disrnn_model_num_params(m);
    th = (double *)xcalloc(n, sizeof(double));
    g = (double *)xcalloc(n, sizeof(double));
    /* the loss writes every gradient slot: one it left alone would stay NaN and fail the call */
    for (size_t i = 0; i < n; i++) g[i] = NAN;
    assert_ok(disrnn_model_get_params(m, th, n));
    assert_ok(batch_loss(m, &b, terms, g));
    for (int t = 0; t < 5; t++) assert_true(fabs(terms[t] - ref[t]) <= 1e-10 * (1.0 + fabs(ref[t])));
    for (size_t i = 0; i < n; i++) {
        /* Richardson extrapolation of two central differences cancels the h^2 error term. */
        const double step = 1e-4 * (fabs(th[i]) > 1.0 ? fabs(th[i]) : 1.0);
        const double d1 = central(m, &b, th, n, i, step), d2 = central(m, &b, th, n, i, 0.5 * step);
        const double f = (4.0 * d2 - d1) / 3.0;
        const double err = fabs(g[i] - f), mag = fabs(g[i]) > fabs(f) ? fabs(g[i]) : fabs(f);
        const double allowed = 1e-6 * mag > 1e-8 ? 1e-6 * mag : 1e-8;
        if (err > allowed)
            fprintf(stderr, "gradient mismatch: N %zu K %zu obs %d sigma %d pad %d std %d inputs %d groups %d mask %d "
                    "param %zu analytic %.12g fd %.12g\n", c->N, c->K, c->obs, c->sigma, c->padding, c->std_mode,
                    c->inputs, c->groups, c->masked, i, g[i], f);
        assert_true(err <= allowed);
        if (err / allowed > st->worst_ratio) st->worst_ratio = err / allowed;
        if (mag >= 1e-2) {
            if (err / mag > st->worst_rel) st->worst_rel = err / mag;
        } else if (err > st->worst_abs_small) {
            st->worst_abs_small = err;
        }
    }
    /* every learned block takes part: its gradient is not identically zero */
    for (int blk = 0; blk < DISRNN__NUM_BLOCKS; blk++) {
        size_t r, cc, off;
        int learned;
        double mx = 0.0;
        assert_ok(disrnn_model_block_info(m, blk, &r, &cc, &off, &learned));
        if (!learned) continue;
        for (size_t i = 0; i < r * cc; i++)
            if (fabs(g[off + i]) > mx) mx = fabs(g[off + i]);
        assert_true(mx > 1e-9);
    }
    st->combos++;
    st->params += (long)n;
    free(th);
    free(g);
    batch_free(&b);
    disrnn_model_free(m);
}

static void test_gradient_all_combinations(void **state)
{
    fd_stats st = {0, 0, 0.0, 0.0, 0.0};
    uint64_t seed = 1;
    fd_case c;
    (void)state;
    /* the full grid at N = 5, K = 4 (groups: 4 / 2+2 / 1+3) */
    c.N = 5;
    c.K = 4;
    for (c.obs = 0; c.obs < 4; c.obs++)
        for (c.sigma = 0; c.sigma < 3; c.sigma++)
            for (c.padding = 0; c.padding < 3; c.padding++)
                for (c.std_mode = 0; c.std_mode < 3; c.std_mode++)
                    for (c.inputs = 0; c.inputs < IN_COUNT; c.inputs++)
                        for (c.groups = 0; c.groups < GR_COUNT; c.groups++)
                            for (c.masked = 0; c.masked < 2; c.masked++) check_gradient(&c, seed++, &st);
    /* N = 1 with every observation model, std mode, grouping and mask */
    c.N = 1;
    c.K = 4;
    c.sigma = DISRNN_SIGMA_TANH;
    c.padding = DISRNN_PAD_REPEAT;
    c.inputs = IN_BOTH;
    for (c.obs = 0; c.obs < 4; c.obs++)
        for (c.std_mode = 0; c.std_mode < 3; c.std_mode++)
            for (c.groups = 0; c.groups < GR_COUNT; c.groups++)
                for (c.masked = 0; c.masked < 2; c.masked++) check_gradient(&c, seed++, &st);
    /* K = 1 (one group) with every observation model, std mode, input setting and mask */
    c.N = 4;
    c.K = 1;
    c.groups = GR_ONE;
    c.sigma = DISRNN_SIGMA_IDENTITY;
    c.padding = DISRNN_PAD_ZERO;
    for (c.obs = 0; c.obs < 4; c.obs++)
        for (c.std_mode = 0; c.std_mode < 3; c.std_mode++)
            for (c.inputs = 0; c.inputs < IN_COUNT; c.inputs++)
                for (c.masked = 0; c.masked < 2; c.masked++) check_gradient(&c, seed++, &st);
    /* DisRNN-full (G = K) with every observation model, std mode and mask */
    c.N = 5;
    c.K = 4;
    c.groups = GR_FULL;
    c.sigma = DISRNN_SIGMA_TANH;
    c.padding = DISRNN_PAD_REPEAT;
    c.inputs = IN_BOTH;
    for (c.obs = 0; c.obs < 4; c.obs++)
        for (c.std_mode = 0; c.std_mode < 3; c.std_mode++)
            for (c.masked = 0; c.masked < 2; c.masked++) check_gradient(&c, seed++, &st);
    /* N = 1 and K = 1 together */
    c.groups = GR_ONE;
    c.N = 1;
    c.K = 1;
    c.sigma = DISRNN_SIGMA_RELU;
    c.padding = DISRNN_PAD_DROP;
    c.inputs = IN_E;
    c.masked = 0;
    for (c.obs = 0; c.obs < 4; c.obs++)
        for (c.std_mode = 0; c.std_mode < 3; c.std_mode++) check_gradient(&c, seed++, &st);
    printf("gradient check: %ld combinations, %ld parameters; worst relative error %.3g (|g| >= 1e-2), "
           "worst absolute error %.3g (|g| < 1e-2), worst error / tolerance %.3g\n",
           st.combos, st.params, st.worst_rel, st.worst_abs_small, st.worst_ratio);
    assert_int_equal(st.combos, 4 * 3 * 3 * 3 * 5 * 3 * 2 + 4 * 3 * 3 * 2 + 4 * 3 * 5 * 2 + 4 * 3 * 2 + 4 * 3);
}

/* ---------------------------------------------------------------------------------------- */
/* 2. The loss terms against the plain reference at the paper's configuration */

static disrnn_model_t *paper_model(int obs, size_t P)
{
    disrnn_config_t *cfg;
    disrnn_model_t *m;
    const size_t groups[2] = {3, 3};
    assert_ok(disrnn_config_create(&cfg, 20, 6));
    assert_ok(disrnn_config_set_groups(cfg, groups, 2));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_OBS, obs));
    if (P) {
        assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_NUM_INPUTS, (int64_t)P));
        assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_INPUT_D, DISRNN_INPUT_LEARNED));
    }
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_N_TOT, 1000.0));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, 20.0));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_ALPHA, 1.0));
    assert_ok(disrnn_config_set_seed(cfg, 2025));
    assert_ok(disrnn_model_create(&m, cfg));
    disrnn_config_free(cfg);
    return m;
}

static void random_batch(batch *b, size_t N, size_t K, size_t P, size_t M, int poisson, int masked, uint64_t *rs)
{
    b->M = M;
    b->N = N;
    b->K = K;
    b->P = P;
    b->x = (double *)xcalloc(N * M, sizeof(double));
    b->h = (double *)xcalloc(N * M, sizeof(double));
    b->u = P ? (double *)xcalloc(P * M, sizeof(double)) : NULL;
    b->eps = (double *)xcalloc(K * M, sizeof(double));
    b->mask = NULL;
    if (poisson) {
        test_uniform(rs, b->x, N * M, 0.0, 9.0);
        for (size_t i = 0; i < N * M; i++) b->x[i] = floor(b->x[i]);
    } else {
        test_normal(rs, b->x, N * M);
    }
    test_normal(rs, b->h, N * M);
    for (size_t i = 0; i < N * M; i++) b->h[i] = tanh(b->h[i]);
    if (P) test_normal(rs, b->u, P * M);
    test_normal(rs, b->eps, K * M);
    if (masked) {
        b->mask = (uint8_t *)xcalloc(N * M, 1);
        for (size_t i = 0; i < N * M; i++) {
            double r;
            test_uniform(rs, &r, 1, 0.0, 1.0);
            b->mask[i] = r > 0.2;
            if (!b->mask[i]) b->x[i] = NAN;
        }
    }
}

static void test_reference_paper_config(void **state)
{
    static const struct { int obs; size_t P; int masked; } cases[] = {
        {DISRNN_OBS_GAUSSIAN, 0, 0},
        {DISRNN_OBS_GAUSSIAN_RELU, 3, 1},
        {DISRNN_OBS_POISSON_SOFTPLUS, 0, 0},
        {DISRNN_OBS_POISSON_EXP, 3, 1},
    };
    uint64_t rs = 99;
    double worst = 0.0;
    (void)state;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        disrnn_model_t *m = paper_model(cases[ci].obs, cases[ci].P);
        batch b;
        double t[5], ref[5];
        randomize_params(m, &rs, 0.2);
        random_batch(&b, 20, 6, cases[ci].P, 128, is_poisson(cases[ci].obs), cases[ci].masked, &rs);
        assert_ok(batch_loss(m, &b, t, NULL));
        ref_terms(m, &b, ref, NULL, NULL);
        for (int k = 0; k < 5; k++) {
            const double rel = fabs(t[k] - ref[k]) / fabs(ref[k]);
            assert_true(ref[k] != 0.0);
            if (rel > worst) worst = rel;
            if (rel > 1e-12) fprintf(stderr, "case %zu term %d: %.17g vs reference %.17g\n", ci, k, t[k], ref[k]);
            assert_true(rel <= 1e-12);
        }
        assert_true(t[DISRNN_TERM_PC] > 0.0); /* a total correlation estimate of dependent latents */
        batch_free(&b);
        disrnn_model_free(m);
    }
    printf("reference check (N 20, K 6, G 2, M 128, N_tot 1000, beta 20): worst relative difference %.3g\n", worst);
}

/* ---------------------------------------------------------------------------------------- */
/* 3. Special values */

static void test_single_group_and_kl(void **state)
{
    fd_case c = {6, 3, DISRNN_OBS_GAUSSIAN, DISRNN_SIGMA_TANH, DISRNN_PAD_REPEAT, DISRNN_STD_FIXED, IN_NONE, GR_ONE, 0};
    uint64_t rs = 5;
    disrnn_model_t *m = case_model(&c, 20.0, 3.0, 11);
    batch b;
    double t[5], zeroB[18] = {0}, d[3] = {0.3, -1.2, 0.7};
    const double s = 0.35;
    double *g = (double *)xcalloc(disrnn_model_num_params(m), sizeof(double));
    (void)state;
    randomize_params(m, &rs, 0.5);
    make_batch(&b, m, &c, 7, &rs);
    assert_ok(batch_loss(m, &b, t, g));
    assert_true(t[DISRNN_TERM_PC] == 0.0);
    assert_true(t[DISRNN_TERM_BD] == 0.0);
    assert_true(t[DISRNN_TERM_LOSS] == t[DISRNN_TERM_NLL] + t[DISRNN_TERM_KL]);
    /* with B = 0 every mu equals d: KL = 0.5 sum_k (d_k^2 + s^2 - 1 - 2 log s) */
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_B, zeroB, 18));
    assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_BIAS_D, d, 3));
    assert_ok(batch_loss(m, &b, t, NULL));
    {
        double kl = 0.0;
        for (int k = 0; k < 3; k++) kl += 0.5 * (d[k] * d[k] + s * s - 1.0 - 2.0 * log(s));
        assert_true(fabs(t[DISRNN_TERM_KL] - kl) <= 1e-14 * fabs(kl));
    }
    free(g);
    batch_free(&b);
    disrnn_model_free(m);

    /* two groups: both penalties appear; with beta = 0 PC is still reported but leaves the loss */
    c.groups = GR_UNEQUAL;
    m = case_model(&c, 0.0, 0.0, 12);
    randomize_params(m, &rs, 0.5);
    make_batch(&b, m, &c, 7, &rs);
    assert_ok(batch_loss(m, &b, t, NULL));
    assert_true(t[DISRNN_TERM_PC] != 0.0);
    assert_true(t[DISRNN_TERM_BD] > 0.0);
    assert_true(t[DISRNN_TERM_LOSS] == t[DISRNN_TERM_NLL] + t[DISRNN_TERM_KL]);
    /* N_tot = 1 leaves the other points no weight: each q(z_i) is its own component alone */
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_N_TOT, 1.0));
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_BETA, 2.0));
    assert_ok(batch_loss(m, &b, t, NULL));
    {
        double ref[5];
        ref_terms(m, &b, ref, NULL, NULL);
        for (int k = 0; k < 5; k++) assert_true(fabs(t[k] - ref[k]) <= 1e-12 * fabs(ref[k]) + 1e-15);
    }
    batch_free(&b);
    disrnn_model_free(m);
}

static void test_mask_ignores_values(void **state)
{
    fd_case c = {4, 2, DISRNN_OBS_POISSON_SOFTPLUS, DISRNN_SIGMA_TANH, DISRNN_PAD_REPEAT, DISRNN_STD_LEARNED,
                 IN_E, GR_EQUAL, 1};
    uint64_t rs = 8;
    disrnn_model_t *m = case_model(&c, 1.0, 1.0, 3);
    const size_t n = disrnn_model_num_params(m);
    double *g1 = (double *)xcalloc(n, sizeof(double)), *g2 = (double *)xcalloc(n, sizeof(double));
    double t1[5], t2[5];
    batch b;
    (void)state;
    make_batch(&b, m, &c, 6, &rs);
    assert_ok(batch_loss(m, &b, t1, g1));
    for (size_t i = 0; i < 4 * 6; i++)
        if (!b.mask[i]) b.x[i] = -3.5; /* an invalid count, but masked */
    assert_ok(batch_loss(m, &b, t2, g2));
    assert_memory_equal(t1, t2, sizeof t1);
    assert_memory_equal(g1, g2, n * sizeof(double));
    /* everything masked: no likelihood at all */
    memset(b.mask, 0, 4 * 6);
    assert_ok(batch_loss(m, &b, t2, g2));
    assert_true(t2[DISRNN_TERM_NLL] == 0.0);
    free(g1);
    free(g2);
    batch_free(&b);
    disrnn_model_free(m);
}

/* ---------------------------------------------------------------------------------------- */
/* 4. Numerics */

static void test_log_helpers(void **state)
{
    (void)state;
    assert_true(disrnn__log_factorial(0.0) == 0.0);
    assert_true(disrnn__log_factorial(1.0) == 0.0);
    for (int n = 2; n <= 20000; n++) {
        const double ref = lgamma((double)n + 1.0), v = disrnn__log_factorial((double)n);
        assert_true(fabs(v - ref) <= 2e-15 * ref);
    }
    /* log softplus: finite everywhere, equal to eta far left, matching the direct form elsewhere */
    assert_true(disrnn__log_softplus(-1000.0) == -1000.0);
    assert_true(isfinite(disrnn__log_softplus(-1e300)));
    assert_true(disrnn__log_softplus(-750.0) == -750.0);
    for (double e = -30.0; e <= 30.0; e += 0.37) {
        const double ref = log(log1p(exp(e)));
        assert_true(fabs(disrnn__log_softplus(e) - ref) <= 1e-14 * (fabs(ref) > 1e-3 ? fabs(ref) : 1e-3));
    }
    assert_true(fabs(disrnn__log_softplus(700.0) - log(700.0)) <= 1e-15 * log(700.0));
}

static void test_poisson_extremes(void **state)
{
    static const double cvals[8] = {-700.0, -300.0, -40.0, -1.0, 0.0, 1.0, 40.0, 700.0};
    static const double counts[4] = {0.0, 1.0, 17.0, 10000.0};
    (void)state;
    for (int obs = DISRNN_OBS_POISSON_SOFTPLUS; obs <= DISRNN_OBS_POISSON_EXP; obs++) {
        fd_case c = {8, 2, obs, DISRNN_SIGMA_TANH, DISRNN_PAD_REPEAT, DISRNN_STD_LEARNED, IN_NONE, GR_EQUAL, 0};
        disrnn_model_t *m = case_model(&c, 2.0, 1.0, 4);
        uint64_t rs = 31;
        const size_t n = disrnn_model_num_params(m), M = 4;
        double *g = (double *)xcalloc(n, sizeof(double)), zeroA[16] = {0}, t[5], nll = 0.0;
        size_t off;
        batch b;
        /* A = 0 makes eta = c exactly, so c alone places eta anywhere in [-700, 700] */
        random_batch(&b, 8, 2, 0, M, 1, 0, &rs);
        for (size_t j = 0; j < M; j++)
            for (size_t i = 0; i < 8; i++) b.x[i + j * 8] = counts[j];
        assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_A, zeroA, 16));
        assert_ok(disrnn_model_set_param(m, DISRNN_BLOCK_BIAS_C, cvals, 8));
        assert_ok(batch_loss(m, &b, t, g));
        for (int k = 0; k < 5; k++) assert_true(isfinite(t[k]));
        for (size_t i = 0; i < n; i++) assert_true(isfinite(g[i]));
        for (size_t j = 0; j < M; j++)
            for (size_t i = 0; i < 8; i++) {
                const double e = cvals[i], x = counts[j];
                /* for eta <= -40, softplus(eta) = exp(eta) to 1e-17 relative */
                const double lam = obs == DISRNN_OBS_POISSON_EXP || e <= -40.0 ? exp(e) : log1p(exp(e));
                const double loglam = obs == DISRNN_OBS_POISSON_EXP || e <= -40.0 ? e : log(lam);
                nll += lam - x * loglam + lgamma(x + 1.0);
            }
        nll /= (double)M;
        assert_true(fabs(t[DISRNN_TERM_NLL] - nll) <= 1e-12 * fabs(nll));
        /* dloss/dc_n = mean_j (dlambda - x / lambda dlambda) = mean_j (exp(eta) - x) for eta <= -40 */
        assert_ok(disrnn_model_block_info(m, DISRNN_BLOCK_BIAS_C, NULL, NULL, &off, NULL));
        for (size_t i = 0; i < 3; i++) {
            double ref = 0.0;
            for (size_t j = 0; j < M; j++) ref += (exp(cvals[i]) - counts[j]) / (double)M;
            assert_true(fabs(g[off + i] - ref) <= 1e-12 * fabs(ref));
        }
        free(g);
        batch_free(&b);
        disrnn_model_free(m);
    }
}

/* Finite but extreme inputs: either a finite result or DISRNN_ERR_NONFINITE, never NaN with OK. */
static void test_extreme_inputs_never_nan(void **state)
{
    static const double scales[] = {1e-300, 1.0, 1e50, 1e100, 1e160, 1e300};
    (void)state;
    for (int obs = 0; obs < 4; obs++)
        for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++) {
            fd_case c = {3, 2, obs, DISRNN_SIGMA_TANH, DISRNN_PAD_REPEAT, DISRNN_STD_LEARNED, IN_E, GR_EQUAL, 0};
            disrnn_model_t *m = case_model(&c, 1.0, 1.0, 9);
            uint64_t rs = 77 + si;
            const size_t n = disrnn_model_num_params(m);
            double *g = (double *)xcalloc(n, sizeof(double)), t[5];
            batch b;
            int st;
            random_batch(&b, 3, 2, 2, 4, is_poisson(obs), 0, &rs);
            for (size_t i = 0; i < 3 * 4; i++) b.x[i] = is_poisson(obs) ? floor(fabs(b.x[i]) * fmin(scales[si], 1e15)) : b.x[i] * scales[si];
            for (size_t i = 0; i < 2 * 4; i++) b.u[i] *= scales[si];
            st = batch_loss(m, &b, t, g);
            assert_true(st == DISRNN_OK || st == DISRNN_ERR_NONFINITE);
            if (st == DISRNN_OK) {
                for (int k = 0; k < 5; k++) assert_true(isfinite(t[k]));
                for (size_t i = 0; i < n; i++) assert_true(isfinite(g[i]));
            } else {
                assert_true(strlen(disrnn_model_last_error(m)) > 0);
            }
            free(g);
            batch_free(&b);
            disrnn_model_free(m);
        }
}

/* ---------------------------------------------------------------------------------------- */
/* 5. Bad input */

typedef struct snapshot {
    double *theta;
    double *blocks[DISRNN__NUM_BLOCKS];
    size_t n, len[DISRNN__NUM_BLOCKS];
    disrnn__rng rng;
} snapshot;

static void snap(const disrnn_model_t *m, snapshot *s)
{
    s->n = disrnn_model_num_params(m);
    s->theta = (double *)xcalloc(s->n, sizeof(double));
    assert_ok(disrnn_model_get_params(m, s->theta, s->n));
    for (int blk = 0; blk < DISRNN__NUM_BLOCKS; blk++) {
        size_t r, c;
        s->blocks[blk] = get_block(m, blk, &r, &c);
        s->len[blk] = r * c;
    }
    s->rng = m->rng;
}

static void assert_unchanged(const disrnn_model_t *m, const snapshot *s)
{
    snapshot now;
    snap(m, &now);
    assert_int_equal(now.n, s->n);
    assert_memory_equal(now.theta, s->theta, s->n * sizeof(double));
    for (int blk = 0; blk < DISRNN__NUM_BLOCKS; blk++)
        if (s->len[blk]) assert_memory_equal(now.blocks[blk], s->blocks[blk], s->len[blk] * sizeof(double));
    assert_memory_equal(&now.rng, &s->rng, sizeof s->rng);
    free(now.theta);
    for (int blk = 0; blk < DISRNN__NUM_BLOCKS; blk++) free(now.blocks[blk]);
}

static void snap_free(snapshot *s)
{
    free(s->theta);
    for (int blk = 0; blk < DISRNN__NUM_BLOCKS; blk++) free(s->blocks[blk]);
}

/* Run a call expected to fail with a status and a message, leaving the model as it was. */
#define EXPECT_FAIL(m, snapshot_ptr, status, call)                                                 \
    do {                                                                                           \
        (m)->base.err[0] = '\0';                                                                   \
        assert_status(call, status);                                                               \
        assert_true(strlen(disrnn_model_last_error(m)) > 0);                                       \
        assert_unchanged(m, snapshot_ptr);                                                         \
    } while (0)

static void test_bad_input(void **state)
{
    fd_case c = {3, 2, DISRNN_OBS_POISSON_SOFTPLUS, DISRNN_SIGMA_TANH, DISRNN_PAD_REPEAT, DISRNN_STD_FIXED,
                 IN_E, GR_EQUAL, 0};
    uint64_t rs = 21;
    disrnn_model_t *m = case_model(&c, 1.0, 1.0, 5);
    const size_t n = disrnn_model_num_params(m), M = 4, N = 3, K = 2, P = 2;
    double *g = (double *)xcalloc(n, sizeof(double)), t[5];
    uint8_t mask[12];
    snapshot s;
    batch b;
    (void)state;
    make_batch(&b, m, &c, M, &rs);
    memset(mask, 1, sizeof mask);
    assert_ok(batch_loss(m, &b, t, g));
    snap(m, &s);

    assert_status(disrnn_model_loss(NULL, M, b.x, N, b.h, N, b.u, P, NULL, 0, b.eps, K, t, 5, g, n),
                  DISRNN_ERR_INVALID_ARG);
    EXPECT_FAIL(m, &s, DISRNN_ERR_INVALID_ARG, disrnn_model_loss(m, M, NULL, N, b.h, N, b.u, P, NULL, 0, b.eps, K, t, 5, g, n));
    EXPECT_FAIL(m, &s, DISRNN_ERR_INVALID_ARG, disrnn_model_loss(m, M, b.x, N, NULL, N, b.u, P, NULL, 0, b.eps, K, t, 5, g, n));
    EXPECT_FAIL(m, &s, DISRNN_ERR_INVALID_ARG, disrnn_model_loss(m, M, b.x, N, b.h, N, NULL, P, NULL, 0, b.eps, K, t, 5, g, n));
    EXPECT_FAIL(m, &s, DISRNN_ERR_INVALID_ARG, disrnn_model_loss(m, 0, b.x, N, b.h, N, b.u, P, NULL, 0, b.eps, K, t, 5, g, n));
    EXPECT_FAIL(m, &s, DISRNN_ERR_INVALID_ARG, disrnn_model_loss(m, M, b.x, N - 1, b.h, N, b.u, P, NULL, 0, b.eps, K, t, 5, g, n));
    EXPECT_FAIL(m, &s, DISRNN_ERR_INVALID_ARG, disrnn_model_loss(m, M, b.x, N, b.h, N - 1, b.u, P, NULL, 0, b.eps, K, t, 5, g, n));
    EXPECT_FAIL(m, &s, DISRNN_ERR_INVALID_ARG, disrnn_model_loss(m, M, b.x, N, b.h, N, b.u, P - 1, NULL, 0, b.eps, K, t, 5, g, n));
    EXPECT_FAIL(m, &s, DISRNN_ERR_INVALID_ARG, disrnn_model_loss(m, M, b.x, N, b.h, N, b.u, P, mask, N - 1, b.eps, K, t, 5, g, n));
    EXPECT_FAIL(m, &s, DISRNN_ERR_INVALID_ARG, disrnn_model_loss(m, M, b.x, N, b.h, N, b.u, P, NULL, 0, b.eps, K - 1, t, 5, g, n));
    EXPECT_FAIL(m, &s, DISRNN_ERR_INVALID_ARG, disrnn_model_loss(m, (size_t)1 << 62, b.x, N, b.h, N, b.u, P, NULL, 0, b.eps, K, t, 5, g, n));
    /* one sample with beta > 0 and two groups */
    EXPECT_FAIL(m, &s, DISRNN_ERR_INVALID_ARG, disrnn_model_loss(m, 1, b.x, N, b.h, N, b.u, P, NULL, 0, b.eps, K, t, 5, g, n));
    assert_non_null(strstr(disrnn_model_last_error(m), "M >= 2"));
    EXPECT_FAIL(m, &s, DISRNN_ERR_BUFFER_TOO_SMALL, disrnn_model_loss(m, M, b.x, N, b.h, N, b.u, P, NULL, 0, b.eps, K, t, 4, g, n));
    EXPECT_FAIL(m, &s, DISRNN_ERR_BUFFER_TOO_SMALL, disrnn_model_loss(m, M, b.x, N, b.h, N, b.u, P, NULL, 0, b.eps, K, t, 5, g, n - 1));
    /* non-finite data */
    b.x[5] = NAN;
    EXPECT_FAIL(m, &s, DISRNN_ERR_NONFINITE, batch_loss(m, &b, t, g));
    b.x[5] = INFINITY;
    EXPECT_FAIL(m, &s, DISRNN_ERR_NONFINITE, batch_loss(m, &b, t, g));
    mask[5] = 0; /* masked: ignored */
    b.mask = mask;
    assert_ok(batch_loss(m, &b, t, g));
    b.mask = NULL;
    b.x[5] = 2.0;
    b.h[4] = INFINITY;
    EXPECT_FAIL(m, &s, DISRNN_ERR_NONFINITE, batch_loss(m, &b, t, g));
    b.h[4] = 0.1;
    b.u[3] = NAN;
    EXPECT_FAIL(m, &s, DISRNN_ERR_NONFINITE, batch_loss(m, &b, t, g));
    b.u[3] = 0.2;
    b.eps[7] = -INFINITY;
    EXPECT_FAIL(m, &s, DISRNN_ERR_NONFINITE, batch_loss(m, &b, t, g));
    b.eps[7] = 0.3;
    /* invalid counts */
    b.x[2] = -1.0;
    EXPECT_FAIL(m, &s, DISRNN_ERR_DATA, batch_loss(m, &b, t, g));
    b.x[2] = 2.5;
    EXPECT_FAIL(m, &s, DISRNN_ERR_DATA, batch_loss(m, &b, t, g));
    b.x[2] = 2.0;
    assert_ok(batch_loss(m, &b, t, g));
    snap_free(&s);

    /* a non-finite result (exp link, eta = 800) with eps drawn from the generator: refused and
     * the generator is rewound */
    {
        fd_case ce = c;
        disrnn_model_t *me;
        double cbig[3] = {800.0, 800.0, 800.0}, zeroA[6] = {0};
        ce.obs = DISRNN_OBS_POISSON_EXP;
        me = case_model(&ce, 1.0, 1.0, 6);
        assert_ok(disrnn_model_set_param(me, DISRNN_BLOCK_A, zeroA, 6));
        assert_ok(disrnn_model_set_param(me, DISRNN_BLOCK_BIAS_C, cbig, 3));
        snap(me, &s);
        EXPECT_FAIL(me, &s, DISRNN_ERR_NONFINITE,
                    disrnn_model_loss(me, M, b.x, N, b.h, N, b.u, P, NULL, 0, NULL, 0, t, 5, g, n));
        snap_free(&s);
        disrnn_model_free(me);
    }
    /* N_tot unset: Scott's rule cannot give s; PC with beta > 0 cannot weigh its components */
    for (int which = 0; which < 3; which++) {
        disrnn_config_t *cfg;
        disrnn_model_t *mu;
        const size_t groups[2] = {1, 1};
        assert_ok(disrnn_config_create(&cfg, N, K));
        assert_ok(disrnn_config_set_groups(cfg, groups, 2));
        assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_STD_MODE, which == 0 ? DISRNN_STD_SCOTT : DISRNN_STD_FIXED));
        assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, which == 2 ? 0.0 : 1.0));
        assert_ok(disrnn_model_create(&mu, cfg));
        disrnn_config_free(cfg);
        snap(mu, &s);
        if (which < 2) {
            EXPECT_FAIL(mu, &s, DISRNN_ERR_BAD_STATE,
                        disrnn_model_loss(mu, M, b.x, N, b.h, N, NULL, 0, NULL, 0, b.eps, K, t, 5, NULL, 0));
            assert_non_null(strstr(disrnn_model_last_error(mu), "N_tot"));
        } else {
            /* beta = 0: PC cannot be estimated without N_tot and does not enter the loss */
            assert_ok(disrnn_model_loss(mu, M, b.x, N, b.h, N, NULL, 0, NULL, 0, b.eps, K, t, 5, NULL, 0));
            assert_true(t[DISRNN_TERM_PC] == 0.0);
        }
        snap_free(&s);
        disrnn_model_free(mu);
    }
    free(g);
    batch_free(&b);
    disrnn_model_free(m);
}

/* ---------------------------------------------------------------------------------------- */
/* 6. Allocation */

static void test_no_allocation_after_first_call(void **state)
{
    test_chaos ch = {-1, 0, 0};
    disrnn_config_t *cfg;
    disrnn_model_t *m;
    const size_t groups[2] = {3, 3}, N = 20, K = 6;
    uint64_t rs = 4;
    batch b;
    double t[5], *g;
    long count;
    snapshot s;
    (void)state;
    assert_ok(disrnn_config_create(&cfg, N, K));
    assert_ok(disrnn_config_set_groups(cfg, groups, 2));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_N_TOT, 1000.0));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, 20.0));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_ALPHA, 1.0));
    assert_ok(disrnn_model_create_with_allocator(&m, cfg, test_chaos_alloc, test_chaos_free, &ch));
    disrnn_config_free(cfg);
    g = (double *)xcalloc(disrnn_model_num_params(m), sizeof(double));
    random_batch(&b, N, K, 0, 64, 0, 0, &rs);
    assert_ok(disrnn_model_loss(m, 32, b.x, N, b.h, N, NULL, 0, NULL, 0, b.eps, K, t, 5, g, disrnn_model_num_params(m)));
    count = ch.count;
    for (int rep = 0; rep < 3; rep++) {
        assert_ok(disrnn_model_loss(m, 32, b.x, N, b.h, N, NULL, 0, NULL, 0, b.eps, K, t, 5, g, disrnn_model_num_params(m)));
        assert_ok(disrnn_model_loss(m, 32, b.x, N, b.h, N, NULL, 0, NULL, 0, NULL, 0, t, 5, NULL, 0));
        assert_ok(disrnn_model_loss(m, 7, b.x, N, b.h, N, NULL, 0, NULL, 0, b.eps, K, t, 5, g, disrnn_model_num_params(m)));
    }
    assert_int_equal(ch.count, count);
    /* a larger batch reallocates once, then stays put */
    assert_ok(disrnn_model_loss(m, 64, b.x, N, b.h, N, NULL, 0, NULL, 0, b.eps, K, t, 5, g, disrnn_model_num_params(m)));
    assert_true(ch.count > count);
    count = ch.count;
    assert_ok(disrnn_model_loss(m, 64, b.x, N, b.h, N, NULL, 0, NULL, 0, b.eps, K, t, 5, g, disrnn_model_num_params(m)));
    assert_ok(disrnn_model_loss(m, 32, b.x, N, b.h, N, NULL, 0, NULL, 0, b.eps, K, t, 5, g, disrnn_model_num_params(m)));
    assert_int_equal(ch.count, count);
    batch_free(&b);

    /* an allocation failure while growing: NOMEM, model unchanged, the old workspace still works */
    random_batch(&b, N, K, 0, 128, 0, 0, &rs);
    snap(m, &s);
    ch.fail_at = ch.count;
    EXPECT_FAIL(m, &s, DISRNN_ERR_NOMEM,
                disrnn_model_loss(m, 128, b.x, N, b.h, N, NULL, 0, NULL, 0, b.eps, K, t, 5, NULL, 0));
    ch.fail_at = ch.count + 1; /* the second allocation (the buffer) fails */
    EXPECT_FAIL(m, &s, DISRNN_ERR_NOMEM,
                disrnn_model_loss(m, 128, b.x, N, b.h, N, NULL, 0, NULL, 0, b.eps, K, t, 5, NULL, 0));
    ch.fail_at = -1;
    count = ch.count;
    assert_ok(disrnn_model_loss(m, 64, b.x, N, b.h, N, NULL, 0, NULL, 0, b.eps, K, t, 5, NULL, 0));
    assert_int_equal(ch.count, count);
    assert_ok(disrnn_model_loss(m, 128, b.x, N, b.h, N, NULL, 0, NULL, 0, b.eps, K, t, 5, NULL, 0));
    snap_free(&s);
    batch_free(&b);
    free(g);
    disrnn_model_free(m);
    assert_int_equal(ch.live, 0);
}

/* ---------------------------------------------------------------------------------------- */
/* 7. Reproducibility */

static void test_reproducible_noise(void **state)
{
    fd_case c = {5, 4, DISRNN_OBS_GAUSSIAN, DISRNN_SIGMA_TANH, DISRNN_PAD_REPEAT, DISRNN_STD_LEARNED, IN_BOTH,
                 GR_UNEQUAL, 1};
    uint64_t rs = 12;
    disrnn_model_t *m1 = case_model(&c, 2.0, 0.5, 77), *m2 = case_model(&c, 2.0, 0.5, 77), *m3 = case_model(&c, 2.0, 0.5, 78);
    const size_t n = disrnn_model_num_params(m1);
    double *g1 = (double *)xcalloc(n, sizeof(double)), *g2 = (double *)xcalloc(n, sizeof(double));
    double t1[5], t2[5], t3[5];
    batch b;
    (void)state;
    make_batch(&b, m1, &c, 9, &rs);
    assert_ok(disrnn_model_loss(m1, 9, b.x, 5, b.h, 5, b.u, 2, b.mask, 5, NULL, 0, t1, 5, g1, n));
    assert_ok(disrnn_model_loss(m2, 9, b.x, 5, b.h, 5, b.u, 2, b.mask, 5, NULL, 0, t2, 5, g2, n));
    assert_memory_equal(t1, t2, sizeof t1);
    assert_memory_equal(g1, g2, n * sizeof(double));
    /* the generator moves on: a second draw differs, and a different seed differs */
    assert_ok(disrnn_model_loss(m1, 9, b.x, 5, b.h, 5, b.u, 2, b.mask, 5, NULL, 0, t2, 5, NULL, 0));
    assert_true(t2[DISRNN_TERM_LOSS] != t1[DISRNN_TERM_LOSS]);
    assert_ok(disrnn_model_loss(m3, 9, b.x, 5, b.h, 5, b.u, 2, b.mask, 5, NULL, 0, t3, 5, NULL, 0));
    assert_true(t3[DISRNN_TERM_LOSS] != t1[DISRNN_TERM_LOSS]);
    /* drawn noise equals the same noise passed explicitly: K x M normals from the generator */
    {
        disrnn__rng r;
        double *eps = (double *)xcalloc(4 * 9, sizeof(double));
        disrnn_model_t *m4 = case_model(&c, 2.0, 0.5, 77);
        r = m4->rng;
        disrnn__rng_normal(&r, eps, 4 * 9);
        assert_ok(disrnn_model_loss(m4, 9, b.x, 5, b.h, 5, b.u, 2, b.mask, 5, eps, 4, t3, 5, NULL, 0));
        assert_memory_equal(t1, t3, sizeof t1);
        free(eps);
        disrnn_model_free(m4);
    }
    free(g1);
    free(g2);
    batch_free(&b);
    disrnn_model_free(m1);
    disrnn_model_free(m2);
    disrnn_model_free(m3);
}

/* The Poisson kernels entry by entry against the textbook formulas in long double (where nothing
 * under- or overflows for eta in [-800, 800]), for counts from 0 to 1e4: the value and the
 * derivative agree to 1e-13 of the sizes of the terms that are summed (the derivative also to an
 * absolute 1e-290, the double range's edge). */
static void test_poisson_kernels_against_long_double(void **state)
{
    static const double counts[] = {0.0, 1.0, 2.0, 3.0, 17.0, 255.0, 256.0, 300.0, 10000.0};
    enum { NE = 64 };
    const size_t NC = sizeof counts / sizeof counts[0];
    double eta[NE], *x = (double *)xcalloc(NE * NC, sizeof(double)), *e2 = (double *)xcalloc(NE * NC, sizeof(double));
    double *d = (double *)xcalloc(NE * NC, sizeof(double));
    static const double fixed[] = {-800.0, -745.5, -708.5, -708.3, -700.0, -300.0, -40.0, -36.0, -20.0, -1.0,
                                   -1e-300, 0.0, 1e-300, 1e-8, 0.5, 1.0, 20.0, 36.0, 40.0, 700.0};
    const size_t NF = sizeof fixed / sizeof fixed[0];
    uint64_t rs = 4242;
    (void)state;
    for (size_t i = 0; i < NF; i++) eta[i] = fixed[i];
    test_uniform(&rs, eta + NF, NE - NF, -50.0, 50.0);
    for (size_t j = 0; j < NC; j++)
        for (size_t i = 0; i < NE; i++) {
            x[i + j * NE] = counts[j];
            e2[i + j * NE] = eta[i];
        }
    for (int obs = DISRNN_OBS_POISSON_SOFTPLUS; obs <= DISRNN_OBS_POISSON_EXP; obs++) {
        long double ref_total = 0.0L, tol_total = 0.0L;
        const double total = disrnn__obs_nll(obs, NE, NC, x, NE, NULL, 0, e2, NULL, 1.0, d, NULL);
        for (size_t j = 0; j < NC; j++)
            for (size_t i = 0; i < NE; i++) {
                const long double e = eta[i], xv = counts[j];
                const long double lf = xv > 0.0L ? lgammal(xv + 1.0L) : 0.0L;
                long double lam, log_lam, dlam, v, dv;
                if (obs == DISRNN_OBS_POISSON_SOFTPLUS) {
                    lam = e > 0.0L ? e + log1pl(expl(-e)) : log1pl(expl(e));
                    log_lam = logl(lam);
                    dlam = 1.0L / (1.0L + expl(-e));
                } else {
                    lam = expl(e);
                    log_lam = e;
                    dlam = lam;
                }
                v = lam - (xv > 0.0L ? xv * log_lam : 0.0L) + lf;
                dv = dlam - (xv > 0.0L ? xv * (dlam / lam) : 0.0L);
                ref_total += v;
                tol_total += fabsl(lam) + fabsl(xv * log_lam) + lf;
                {
                    const double got = d[i + j * NE];
                    /* plus what double cannot hold: exp(eta) underflows below eta = -708 */
                    const long double scale_d = fabsl(dlam) + fabsl(xv * (dlam / lam)) + 1e-290L;
                    if (!(fabsl((long double)got - dv) <= 1e-13L * scale_d))
                        fprintf(stderr, "obs %d eta %.17g x %g: d %.17g vs %.17Lg\n", obs, eta[i], counts[j], got, dv);
                    assert_true(isfinite(got));
                    assert_true(fabsl((long double)got - dv) <= 1e-13L * scale_d);
                }
            }
        assert_true(isfinite(total));
        assert_true(fabsl((long double)total - ref_total) <= 1e-13L * tol_total);
    }
    free(x);
    free(e2);
    free(d);
}

/* log(k!) across the end of the constant table: exact small values, and each step equal to log k. */
static void test_log_factorial_table_edge(void **state)
{
    (void)state;
    assert_true(disrnn__log_factorial(2.0) == log(2.0));
    assert_true(disrnn__log_factorial(3.0) == log(6.0));
    for (int k = 2; k <= 600; k++) {
        const double step = disrnn__log_factorial((double)k) - disrnn__log_factorial((double)k - 1.0);
        assert_true(fabs(step - log((double)k)) <= 4e-16 * disrnn__log_factorial((double)k) + 1e-15);
    }
}

/* With beta = 0 the PC estimate is still reported but its gradient must not reach the loss
 * gradient: N_tot enters only PC (the encoder std is learned here, not Scott's rule), so changing
 * it changes the reported PC and leaves every gradient entry bit for bit the same. */
static void test_beta_zero_pc_value_only(void **state)
{
    fd_case c = {6, 4, DISRNN_OBS_POISSON_SOFTPLUS, DISRNN_SIGMA_TANH, DISRNN_PAD_REPEAT, DISRNN_STD_LEARNED,
                 IN_NONE, GR_EQUAL, 0};
    uint64_t rs = 17;
    disrnn_model_t *m = case_model(&c, 0.0, 1.0, 21);
    const size_t n = disrnn_model_num_params(m);
    double *g1 = (double *)xcalloc(n, sizeof(double)), *g2 = (double *)xcalloc(n, sizeof(double));
    double t1[5], t2[5], t0[5];
    batch b;
    (void)state;
    randomize_params(m, &rs, 0.5);
    make_batch(&b, m, &c, 16, &rs);
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_N_TOT, 1000.0));
    assert_ok(batch_loss(m, &b, t1, g1));
    assert_ok(batch_loss(m, &b, t0, NULL));
    assert_memory_equal(t0, t1, sizeof t1); /* the gradient pass reports the same terms */
    assert_true(t1[DISRNN_TERM_PC] != 0.0);
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_N_TOT, 30.0));
    assert_ok(batch_loss(m, &b, t2, g2));
    assert_true(t2[DISRNN_TERM_PC] != t1[DISRNN_TERM_PC]);
    assert_true(t2[DISRNN_TERM_LOSS] == t1[DISRNN_TERM_LOSS]);
    assert_memory_equal(g1, g2, n * sizeof(double));
    free(g1);
    free(g2);
    batch_free(&b);
    disrnn_model_free(m);
}

static void test_num_terms(void **state)
{
    (void)state;
    assert_int_equal(disrnn_num_terms(), 5);
    assert_int_equal(disrnn_num_terms(), DISRNN_TERM_BD + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_num_terms),
        cmocka_unit_test(test_log_helpers),
        cmocka_unit_test(test_reference_paper_config),
        cmocka_unit_test(test_single_group_and_kl),
        cmocka_unit_test(test_mask_ignores_values),
        cmocka_unit_test(test_poisson_extremes),
        cmocka_unit_test(test_poisson_kernels_against_long_double),
        cmocka_unit_test(test_log_factorial_table_edge),
        cmocka_unit_test(test_beta_zero_pc_value_only),
        cmocka_unit_test(test_extreme_inputs_never_nan),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_no_allocation_after_first_call),
        cmocka_unit_test(test_reproducible_noise),
        cmocka_unit_test(test_gradient_all_combinations),
    };
    return cmocka_run_group_tests_name("objective", tests, NULL, NULL);
}
