/* Model handles: creation from a specification, parameter layout and initialisation, settings,
 * block and flat-vector access, clone, and the encoder input h = sum_l psi_l sigma(x_{t-l} / kappa).
 *
 * Initialisation draws, in this order, from the model's generator seeded with spec.seed, each
 * block in its column-major storage order: A (N x K, bound 1/sqrt(K)), c (N, 1/sqrt(K)),
 * B (K x N, 1/sqrt(N)), d (K, 1/sqrt(N)), E when learned (N x P, 1/sqrt(P)), D when learned
 * (K x P, 1/sqrt(P)); each value is b * (2u - 1) with u uniform in [0, 1). These are PyTorch's
 * nn.Linear ranges for decoder Linear(K -> N) and encoder Linear(N -> K). The same generator then
 * continues for the noise draws of the objective. */
#include "model.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Layout */

static const char *const block_names[DISRNN__NUM_BLOCKS] = {"A", "B", "c", "d", "rho", "E", "D", "log s"};

int disrnn__obs_is_poisson(int obs) { return obs == DISRNN_OBS_POISSON_SOFTPLUS || obs == DISRNN_OBS_POISSON_EXP; }

/* Shapes and learned flags of every block; sizes stay far from overflow because the spec passed
 * disrnn__spec_check (every product at most 2^28). */
static void plan(disrnn_model_t *m, size_t *n_params, size_t *n_fixed)
{
    const disrnn__spec *s = &m->spec;
    size_t np = 0, nf = 0;
    for (int b = 0; b < DISRNN__NUM_BLOCKS; b++) {
        m->rows[b] = m->cols[b] = 0;
        m->learned[b] = 0;
    }
    m->rows[DISRNN_BLOCK_A] = s->N; m->cols[DISRNN_BLOCK_A] = s->K;
    m->rows[DISRNN_BLOCK_B] = s->K; m->cols[DISRNN_BLOCK_B] = s->N;
    m->rows[DISRNN_BLOCK_BIAS_C] = s->N; m->cols[DISRNN_BLOCK_BIAS_C] = 1;
    m->rows[DISRNN_BLOCK_BIAS_D] = s->K; m->cols[DISRNN_BLOCK_BIAS_D] = 1;
    m->learned[DISRNN_BLOCK_A] = m->learned[DISRNN_BLOCK_B] = 1;
    m->learned[DISRNN_BLOCK_BIAS_C] = m->learned[DISRNN_BLOCK_BIAS_D] = 1;
    if (!disrnn__obs_is_poisson(s->obs)) {
        m->rows[DISRNN_BLOCK_RHO] = s->N; m->cols[DISRNN_BLOCK_RHO] = 1;
        m->learned[DISRNN_BLOCK_RHO] = 1;
    }
    if (s->input_e != DISRNN_INPUT_NONE && s->P > 0) {
        m->rows[DISRNN_BLOCK_E] = s->N; m->cols[DISRNN_BLOCK_E] = s->P;
        m->learned[DISRNN_BLOCK_E] = s->input_e == DISRNN_INPUT_LEARNED;
    }
    if (s->input_d != DISRNN_INPUT_NONE && s->P > 0) {
        m->rows[DISRNN_BLOCK_D] = s->K; m->cols[DISRNN_BLOCK_D] = s->P;
        m->learned[DISRNN_BLOCK_D] = s->input_d == DISRNN_INPUT_LEARNED;
    }
    m->rows[DISRNN_BLOCK_LOG_S] = s->K; m->cols[DISRNN_BLOCK_LOG_S] = 1;
    m->learned[DISRNN_BLOCK_LOG_S] = s->std_mode == DISRNN_STD_LEARNED;
    for (int b = 0; b < DISRNN__NUM_BLOCKS; b++) {
        const size_t n = m->rows[b] * m->cols[b];
        if (m->learned[b]) np += n;
        else nf += n;
    }
    *n_params = np;
    *n_fixed = nf;
}

/* Point every block into theta (learned) or fixed (fixed), in enum order. */
static void assign(disrnn_model_t *m)
{
    size_t t = 0, f = 0;
    for (int b = 0; b < DISRNN__NUM_BLOCKS; b++) {
        const size_t n = m->rows[b] * m->cols[b];
        if (n == 0) {
            m->blk[b] = NULL;
            m->off[b] = SIZE_MAX;
        } else if (m->learned[b]) {
            m->blk[b] = m->theta + t;
            m->off[b] = t;
            t += n;
        } else {
            m->blk[b] = m->fixed + f;
            m->off[b] = SIZE_MAX;
            f += n;
        }
    }
}

double *disrnn__model_swap_theta(disrnn_model_t *m, double *theta)
{
    double *old = m->theta;
    m->theta = theta;
    for (int b = 0; b < DISRNN__NUM_BLOCKS; b++)
        if (m->off[b] != SIZE_MAX) m->blk[b] = theta + m->off[b];
    return old;
}

/* Free everything a (possibly partly built) model owns, then the model. */
static void release(disrnn_model_t *m)
{
    disrnn__allocator al;
    if (!m) return;
    al = m->base.al;
    disrnn__objws_free(&al, m->ws);
    disrnn__spec_free(&al, &m->spec);
    disrnn__free(&al, m->theta);
    disrnn__free(&al, m->fixed);
    disrnn__free(&al, m);
}

/* Allocate a model shell with its spec copied and its blocks laid out (contents undefined). */
static int shell(disrnn_model_t **out, const disrnn__spec *spec, const disrnn__allocator *al)
{
    disrnn_model_t *m;
    size_t nf = 0;
    *out = NULL;
    m = (disrnn_model_t *)disrnn__calloc(al, 1, sizeof *m);
    if (!m) return DISRNN_ERR_NOMEM;
    disrnn__base_init(&m->base, al->alloc, al->free, al->user_data);
    m->ws = NULL;
    m->theta = m->fixed = NULL;
    m->spec.groups = m->spec.group_start = NULL;
    m->spec.psi = NULL;
    if (disrnn__spec_copy(al, &m->spec, spec) != DISRNN_OK) goto nomem;
    plan(m, &m->n_params, &nf);
    m->theta = disrnn__alloc_doubles(al, m->n_params);
    if (!m->theta) goto nomem;
    if (nf > 0) {
        m->fixed = disrnn__alloc_doubles(al, nf);
        if (!m->fixed) goto nomem;
    }
    assign(m);
    *out = m;
    return DISRNN_OK;
nomem:
    release(m);
    return DISRNN_ERR_NOMEM;
}

static void fill_uniform(disrnn__rng *r, double *a, size_t n, double bound)
{
    for (size_t i = 0; i < n; i++) a[i] = bound * (2.0 * disrnn__rng_uniform(r) - 1.0);
}

static void init_params(disrnn_model_t *m)
{
    const disrnn__spec *s = &m->spec;
    const double bk = 1.0 / sqrt((double)s->K), bn = 1.0 / sqrt((double)s->N);
    disrnn__rng_seed(&m->rng, s->seed);
    fill_uniform(&m->rng, m->blk[DISRNN_BLOCK_A], s->N * s->K, bk);
    fill_uniform(&m->rng, m->blk[DISRNN_BLOCK_BIAS_C], s->N, bk);
    fill_uniform(&m->rng, m->blk[DISRNN_BLOCK_B], s->K * s->N, bn);
    fill_uniform(&m->rng, m->blk[DISRNN_BLOCK_BIAS_D], s->K, bn);
    if (m->blk[DISRNN_BLOCK_E]) {
        double *E = m->blk[DISRNN_BLOCK_E];
        if (m->learned[DISRNN_BLOCK_E]) {
            fill_uniform(&m->rng, E, s->N * s->P, 1.0 / sqrt((double)s->P));
        } else {
            /* Fixed E = I with P = N is the reference code's additive input x + u. */
            memset(E, 0, s->N * s->P * sizeof(double));
            if (s->P == s->N)
                for (size_t i = 0; i < s->N; i++) E[i + i * s->N] = 1.0;
        }
    }
    if (m->blk[DISRNN_BLOCK_D]) {
        if (m->learned[DISRNN_BLOCK_D])
            fill_uniform(&m->rng, m->blk[DISRNN_BLOCK_D], s->K * s->P, 1.0 / sqrt((double)s->P));
        else
            memset(m->blk[DISRNN_BLOCK_D], 0, s->K * s->P * sizeof(double));
    }
    if (m->blk[DISRNN_BLOCK_RHO])
        for (size_t i = 0; i < s->N; i++) m->blk[DISRNN_BLOCK_RHO][i] = -1.0;
    for (size_t k = 0; k < s->K; k++) m->blk[DISRNN_BLOCK_LOG_S][k] = log(s->std_value);
    disrnn__model_update_scott(m);
}

/* ---------------------------------------------------------------------------------------- */
/* Internal interface */

int disrnn__model_new(disrnn_model_t **out, const disrnn__spec *spec, const disrnn__allocator *al)
{
    int st;
    if (!out) return DISRNN_ERR_INVALID_ARG;
    *out = NULL;
    if (!spec || !al || !al->alloc || !al->free) return DISRNN_ERR_INVALID_ARG;
    if ((st = disrnn__spec_check(spec, NULL)) != DISRNN_OK) return st;
    if ((st = shell(out, spec, al)) != DISRNN_OK) return st;
    init_params(*out);
    return DISRNN_OK;
}

double disrnn__model_n_tot(const disrnn_model_t *m) { return m->spec.n_tot > 0.0 ? m->spec.n_tot : 0.0; }

double disrnn__model_s(const disrnn_model_t *m, size_t k)
{
    if (m->spec.std_mode == DISRNN_STD_SCOTT && !(m->spec.n_tot > 0.0)) return 0.0;
    return exp(m->blk[DISRNN_BLOCK_LOG_S][k]);
}

void disrnn__model_update_scott(disrnn_model_t *m)
{
    const disrnn__spec *s = &m->spec;
    double v;
    if (s->std_mode != DISRNN_STD_SCOTT) return;
    /* Scott: s = N_tot^(-1/(K+4)), so log s = -log(N_tot) / (K + 4). Unset N_tot keeps a
     * finite placeholder; disrnn__model_s reports 0 so callers can say "N_tot unset". */
    v = s->n_tot > 0.0 ? -log(s->n_tot) / ((double)s->K + 4.0) : log(s->std_value);
    for (size_t k = 0; k < s->K; k++) m->blk[DISRNN_BLOCK_LOG_S][k] = v;
}

double disrnn__obs_mean(int obs, double eta)
{
    switch (obs) {
    case DISRNN_OBS_GAUSSIAN_RELU: return eta > 0.0 ? eta : 0.0;
    case DISRNN_OBS_POISSON_SOFTPLUS: return eta > 0.0 ? eta + log1p(exp(-eta)) : log1p(exp(eta));
    case DISRNN_OBS_POISSON_EXP: return exp(eta);
    default: return eta;
    }
}

double disrnn__sigma(int sigma, double v)
{
    switch (sigma) {
    case DISRNN_SIGMA_IDENTITY: return v;
    case DISRNN_SIGMA_RELU: return v > 0.0 ? v : 0.0;
    default: return tanh(v);
    }
}

void disrnn__encoder_input(const disrnn__spec *s, size_t M, const double *xprev, size_t ldp, double *h, size_t ldh)
{
    const size_t N = s->N, L = s->L;
    const double kappa = s->kappa;
    for (size_t j = 0; j < M; j++) {
        const double *xp = xprev + j * ldp;
        double *hj = h + j * ldh;
        for (size_t n = 0; n < N; n++) hj[n] = 0.0;
        for (size_t l = 0; l < L; l++) {
            const double w = s->psi[l];
            const double *xl = xp + l * N;
            if (w == 0.0) continue; /* a zero weight contributes exactly nothing */
            switch (s->sigma) {
            case DISRNN_SIGMA_IDENTITY:
                for (size_t n = 0; n < N; n++) hj[n] += w * (xl[n] / kappa);
                break;
            case DISRNN_SIGMA_RELU:
                for (size_t n = 0; n < N; n++) {
                    const double v = xl[n] / kappa;
                    hj[n] += w * (v > 0.0 ? v : 0.0);
                }
                break;
            default:
                for (size_t n = 0; n < N; n++) hj[n] += w * tanh(xl[n] / kappa);
                break;
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Lifecycle */

int disrnn_model_create_with_allocator(disrnn_model_t **out, const disrnn_config_t *cfg, disrnn_alloc_fn alloc_fn,
                                       disrnn_free_fn free_fn, void *user_data)
{
    disrnn__allocator al;
    int st;
    if (!out) return DISRNN_ERR_INVALID_ARG;
    *out = NULL;
    if (!cfg) return DISRNN_ERR_INVALID_ARG;
    if (!alloc_fn || !free_fn)
        return disrnn__fail(&cfg->base, DISRNN_ERR_INVALID_ARG, "Both allocation hooks must be given (alloc_fn and free_fn).");
    if ((st = disrnn__spec_check(&cfg->spec, &cfg->base)) != DISRNN_OK) return st;
    al.alloc = alloc_fn;
    al.free = free_fn;
    al.user_data = user_data;
    st = disrnn__model_new(out, &cfg->spec, &al);
    if (st == DISRNN_ERR_NOMEM) return disrnn__fail(&cfg->base, st, "Out of memory while creating the model.");
    return st;
}

int disrnn_model_create(disrnn_model_t **out, const disrnn_config_t *cfg)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    return disrnn_model_create_with_allocator(out, cfg, al->alloc, al->free, al->user_data);
}

void disrnn_model_free(disrnn_model_t *model) { release(model); }

int disrnn_model_clone(disrnn_model_t **out, const disrnn_model_t *model)
{
    disrnn_model_t *c;
    int st;
    if (!out) return model ? disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "The output pointer of the clone is NULL.")
                           : DISRNN_ERR_INVALID_ARG;
    *out = NULL;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if ((st = shell(&c, &model->spec, &model->base.al)) != DISRNN_OK)
        return disrnn__fail(&model->base, st, "Out of memory while cloning the model.");
    memcpy(c->theta, model->theta, model->n_params * sizeof(double));
    for (int b = 0; b < DISRNN__NUM_BLOCKS; b++)
        if (c->blk[b] && !c->learned[b]) memcpy(c->blk[b], model->blk[b], c->rows[b] * c->cols[b] * sizeof(double));
    c->rng = model->rng;
    c->base.log_fn = model->base.log_fn;
    c->base.log_level = model->base.log_level;
    c->base.log_user_data = model->base.log_user_data;
    *out = c;
    return DISRNN_OK;
}

const char *disrnn_model_last_error(const disrnn_model_t *model) { return model ? disrnn__last_error(&model->base) : ""; }

int disrnn_model_set_log(disrnn_model_t *model, disrnn_log_fn fn, int min_level, void *user_data)
{
    if (!model) return DISRNN_ERR_INVALID_ARG;
    return disrnn__set_log(&model->base, fn, min_level, user_data);
}

/* ---------------------------------------------------------------------------------------- */
/* Settings and shapes */

static int option_kind(const disrnn_model_t *m, int option, int want_int)
{
    int is_int;
    if (disrnn_option_bounds(option, NULL, NULL, &is_int) != DISRNN_OK)
        return disrnn__fail(&m->base, DISRNN_ERR_INVALID_ARG, "Option %d is not a disrnn_option.", option);
    if (is_int != want_int)
        return disrnn__fail(&m->base, DISRNN_ERR_INVALID_ARG, "Option %d is %s-valued; use disrnn_model_get_%s.", option,
                            is_int ? "integer" : "real", is_int ? "int" : "double");
    return DISRNN_OK;
}

int disrnn_model_get_int(const disrnn_model_t *model, int option, int64_t *value)
{
    const disrnn__spec *s;
    int st;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if ((st = option_kind(model, option, 1)) != DISRNN_OK) return st;
    if (!value) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "The output value pointer is NULL.");
    s = &model->spec;
    switch (option) {
    case DISRNN_OPT_SIGMA: *value = s->sigma; break;
    case DISRNN_OPT_PADDING: *value = s->padding; break;
    case DISRNN_OPT_OBS: *value = s->obs; break;
    case DISRNN_OPT_NUM_INPUTS: *value = (int64_t)s->P; break;
    case DISRNN_OPT_INPUT_E: *value = s->input_e; break;
    case DISRNN_OPT_INPUT_D: *value = s->input_d; break;
    default: *value = s->std_mode; break;
    }
    return DISRNN_OK;
}

int disrnn_model_get_double(const disrnn_model_t *model, int option, double *value)
{
    const disrnn__spec *s;
    int st;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if ((st = option_kind(model, option, 0)) != DISRNN_OK) return st;
    if (!value) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "The output value pointer is NULL.");
    s = &model->spec;
    switch (option) {
    case DISRNN_OPT_KAPPA: *value = s->kappa; break;
    case DISRNN_OPT_STD_VALUE:
        *value = s->std_mode == DISRNN_STD_SCOTT && s->n_tot > 0.0 ? exp(model->blk[DISRNN_BLOCK_LOG_S][0]) : s->std_value;
        break;
    case DISRNN_OPT_N_TOT: *value = s->n_tot; break;
    case DISRNN_OPT_BETA: *value = s->beta; break;
    default: *value = s->alpha; break;
    }
    return DISRNN_OK;
}

int disrnn_model_set_double(disrnn_model_t *model, int option, double value)
{
    disrnn__spec tmp;
    int st;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if (option == DISRNN_OPT_KAPPA || option == DISRNN_OPT_STD_VALUE)
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG,
                            "DISRNN_OPT_%s is fixed when the model is created; only BETA, ALPHA and N_TOT can change.",
                            option == DISRNN_OPT_KAPPA ? "KAPPA" : "STD_VALUE");
    tmp = model->spec; /* shallow: only a scalar changes */
    if ((st = disrnn__spec_set_double(&tmp, option, value, &model->base)) != DISRNN_OK) return st;
    model->spec.n_tot = tmp.n_tot;
    model->spec.beta = tmp.beta;
    model->spec.alpha = tmp.alpha;
    if (option == DISRNN_OPT_N_TOT) disrnn__model_update_scott(model);
    return DISRNN_OK;
}

int disrnn_model_dims(const disrnn_model_t *model, size_t *n_obs, size_t *n_latent, size_t *n_groups, size_t *kernel_len,
                      size_t *n_inputs)
{
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if (n_obs) *n_obs = model->spec.N;
    if (n_latent) *n_latent = model->spec.K;
    if (n_groups) *n_groups = model->spec.G;
    if (kernel_len) *kernel_len = model->spec.L;
    if (n_inputs) *n_inputs = model->spec.P;
    return DISRNN_OK;
}

int disrnn_model_groups(const disrnn_model_t *model, size_t *sizes, size_t len)
{
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if (!sizes) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "The group size buffer is NULL.");
    if (len < model->spec.G)
        return disrnn__fail(&model->base, DISRNN_ERR_BUFFER_TOO_SMALL, "The group size buffer holds %zu values; the model has %zu groups.",
                            len, model->spec.G);
    memcpy(sizes, model->spec.groups, model->spec.G * sizeof(size_t));
    return DISRNN_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Parameters */

int disrnn_num_blocks(void) { return DISRNN__NUM_BLOCKS; }

size_t disrnn_model_num_params(const disrnn_model_t *model) { return model ? model->n_params : 0; }

static int check_block(const disrnn_model_t *m, int block)
{
    if (block < 0 || block >= DISRNN__NUM_BLOCKS)
        return disrnn__fail(&m->base, DISRNN_ERR_INVALID_ARG, "Block %d is not a disrnn_block (0 to %d).", block, DISRNN__NUM_BLOCKS - 1);
    return DISRNN_OK;
}

int disrnn_model_block_info(const disrnn_model_t *model, int block, size_t *rows, size_t *cols, size_t *offset, int *learned)
{
    int st;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if ((st = check_block(model, block)) != DISRNN_OK) return st;
    if (rows) *rows = model->rows[block];
    if (cols) *cols = model->cols[block];
    if (offset) *offset = model->off[block];
    if (learned) *learned = model->learned[block];
    return DISRNN_OK;
}

int disrnn_model_get_param(const disrnn_model_t *model, int block, double *out, size_t len)
{
    size_t n;
    int st;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if ((st = check_block(model, block)) != DISRNN_OK) return st;
    n = model->rows[block] * model->cols[block];
    if (n == 0) return DISRNN_OK; /* absent block: nothing to copy */
    if (!out) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "The output buffer for block %s is NULL.", block_names[block]);
    if (len < n)
        return disrnn__fail(&model->base, DISRNN_ERR_BUFFER_TOO_SMALL, "Block %s has %zu values; the buffer holds %zu.",
                            block_names[block], n, len);
    memcpy(out, model->blk[block], n * sizeof(double));
    return DISRNN_OK;
}

int disrnn_model_set_param(disrnn_model_t *model, int block, const double *values, size_t len)
{
    size_t n;
    int st;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if ((st = check_block(model, block)) != DISRNN_OK) return st;
    n = model->rows[block] * model->cols[block];
    if (n == 0) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "Block %s is absent in this model.", block_names[block]);
    if (!values) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "The values for block %s are NULL.", block_names[block]);
    if (len != n)
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "Block %s has %zu values; %zu were given.", block_names[block], n, len);
    if (block == DISRNN_BLOCK_LOG_S && model->spec.std_mode == DISRNN_STD_SCOTT)
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG,
                            "log s follows Scott's rule from N_tot; use DISRNN_STD_FIXED to give s directly.");
    if (!disrnn__all_finite(values, n, 1, n))
        return disrnn__fail(&model->base, DISRNN_ERR_NONFINITE, "Block %s contains a NaN or infinite value.", block_names[block]);
    memcpy(model->blk[block], values, n * sizeof(double));
    return DISRNN_OK;
}

int disrnn_model_get_params(const disrnn_model_t *model, double *out, size_t len)
{
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if (!out) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "The parameter buffer is NULL.");
    if (len < model->n_params)
        return disrnn__fail(&model->base, DISRNN_ERR_BUFFER_TOO_SMALL, "The model has %zu parameters; the buffer holds %zu.",
                            model->n_params, len);
    memcpy(out, model->theta, model->n_params * sizeof(double));
    return DISRNN_OK;
}

int disrnn_model_set_params(disrnn_model_t *model, const double *values, size_t len)
{
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if (!values) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "The parameter values are NULL.");
    if (len != model->n_params)
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "The model has %zu parameters; %zu were given.", model->n_params, len);
    if (!disrnn__all_finite(values, len, 1, len))
        return disrnn__fail(&model->base, DISRNN_ERR_NONFINITE, "The parameter vector contains a NaN or infinite value.");
    memcpy(model->theta, values, len * sizeof(double));
    return DISRNN_OK;
}

int disrnn_model_encoder_input(const disrnn_model_t *model, size_t n_samples, const double *xprev, size_t ldp, double *h, size_t ldh)
{
    const disrnn__spec *s;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    s = &model->spec;
    if (n_samples < 1) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "The number of samples must be at least 1.");
    if (!xprev || !h) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "The history xprev or the output h is NULL.");
    if (ldp < s->N * s->L)
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "ldp = %zu is less than N * L = %zu.", ldp, s->N * s->L);
    if (ldh < s->N) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "ldh = %zu is less than N = %zu.", ldh, s->N);
    if (!disrnn__all_finite(xprev, s->N * s->L, n_samples, ldp))
        return disrnn__fail(&model->base, DISRNN_ERR_NONFINITE, "The history xprev contains a NaN or infinite value.");
    disrnn__encoder_input(s, n_samples, xprev, ldp, h, ldh);
    /* identity and relu pass x / kappa through unbounded, so a tiny kappa can overflow */
    if (s->sigma != DISRNN_SIGMA_TANH && !disrnn__all_finite(h, s->N, n_samples, ldh))
        return disrnn__fail(&model->base, DISRNN_ERR_NONFINITE, "The encoder input overflowed (x / kappa is too large).");
    return DISRNN_OK;
}
