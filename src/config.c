/* Configurations and model specifications: defaults, option setters, option bounds and the full
 * consistency check that every model (created or loaded from a file) passes. */
#include "model.h"

#include <math.h>
#include <string.h>

/* Caps on every dimension and on the products that size allocations. They keep all size
 * arithmetic far from overflow (even with a 32-bit size_t the products fit), so a hostile file
 * cannot make the library allocate absurd amounts or wrap a multiplication. */
#define MAX_DIM ((size_t)1 << 24)
#define MAX_PROD ((size_t)1 << 28)

/* Real-valued option ranges. The lower limits of kappa and std_value are positive (the header
 * says "> 0"); both are kept well inside double range so that x / kappa, s^2 and log s stay finite. */
#define POS_LO 1e-100
#define POS_HI 1e100
#define N_TOT_HI 1e15
#define WEIGHT_HI 1e12

/* Tolerance of the kernel's sum (header: "summing to 1 within 1e-9"). */
#define PSI_TOL 1e-9

typedef struct option_info {
    const char *name;
    int is_int;
    double lo, hi;
} option_info;

static const option_info options[] = {
    {"DISRNN_OPT_SIGMA", 1, 0, 2},
    {"DISRNN_OPT_PADDING", 1, 0, 2},
    {"DISRNN_OPT_OBS", 1, 0, 3},
    {"DISRNN_OPT_NUM_INPUTS", 1, 0, (double)MAX_DIM},
    {"DISRNN_OPT_INPUT_E", 1, 0, 2},
    {"DISRNN_OPT_INPUT_D", 1, 0, 2},
    {"DISRNN_OPT_STD_MODE", 1, 0, 2},
    {"DISRNN_OPT_KAPPA", 0, POS_LO, POS_HI},
    {"DISRNN_OPT_STD_VALUE", 0, POS_LO, POS_HI},
    {"DISRNN_OPT_N_TOT", 0, 0, N_TOT_HI},
    {"DISRNN_OPT_BETA", 0, 0, WEIGHT_HI},
    {"DISRNN_OPT_ALPHA", 0, 0, WEIGHT_HI},
};
#define NUM_OPTIONS ((int)(sizeof options / sizeof options[0]))

int disrnn_option_bounds(int option, double *lo, double *hi, int *is_int)
{
    if (option < 0 || option >= NUM_OPTIONS) return DISRNN_ERR_INVALID_ARG;
    if (lo) *lo = options[option].lo;
    if (hi) *hi = options[option].hi;
    if (is_int) *is_int = options[option].is_int;
    return DISRNN_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Specifications */

static int prod_ok(size_t a, size_t b)
{
    size_t p;
    return disrnn__mul_size(a, b, &p) == 0 && p <= MAX_PROD;
}

static int check_dims(size_t N, size_t K, const disrnn__base *b)
{
    if (N < 1 || N > MAX_DIM)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The number of channels N = %zu must be between 1 and %zu.", N, MAX_DIM);
    if (K < 1 || K > MAX_DIM)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The latent dimension K = %zu must be between 1 and %zu.", K, MAX_DIM);
    if (!prod_ok(N, K))
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "N * K = %zu * %zu exceeds the limit of %zu parameters per matrix.", N, K, MAX_PROD);
    return DISRNN_OK;
}

int disrnn__spec_init(const disrnn__allocator *al, disrnn__spec *s, size_t N, size_t K)
{
    memset(s, 0, sizeof *s);
    if (check_dims(N, K, NULL) != DISRNN_OK) return DISRNN_ERR_INVALID_ARG;
    s->groups = (size_t *)disrnn__calloc(al, 1, sizeof(size_t));
    s->group_start = (size_t *)disrnn__calloc(al, 2, sizeof(size_t));
    s->psi = disrnn__alloc_doubles(al, 1);
    if (!s->groups || !s->group_start || !s->psi) {
        disrnn__spec_free(al, s);
        return DISRNN_ERR_NOMEM;
    }
    s->N = N;
    s->K = K;
    s->G = 1;
    s->L = 1;
    s->P = 0;
    s->groups[0] = K;
    s->group_start[0] = 0;
    s->group_start[1] = K;
    s->psi[0] = 1.0;
    s->sigma = DISRNN_SIGMA_TANH;
    s->padding = DISRNN_PAD_REPEAT;
    s->obs = DISRNN_OBS_GAUSSIAN;
    s->input_e = DISRNN_INPUT_NONE; /* becomes LEARNED when P is first set above 0 */
    s->input_d = DISRNN_INPUT_NONE;
    s->std_mode = DISRNN_STD_SCOTT;
    s->kappa = 1.0;
    s->std_value = 0.1;
    s->n_tot = 0.0;
    s->beta = 0.0;
    s->alpha = 0.0;
    s->seed = 0;
    return DISRNN_OK;
}

void disrnn__spec_free(const disrnn__allocator *al, disrnn__spec *s)
{
    if (!s) return;
    disrnn__free(al, s->groups);
    disrnn__free(al, s->group_start);
    disrnn__free(al, s->psi);
    s->groups = NULL;
    s->group_start = NULL;
    s->psi = NULL;
}

int disrnn__spec_copy(const disrnn__allocator *al, disrnn__spec *dst, const disrnn__spec *src)
{
    *dst = *src;
    dst->groups = (size_t *)disrnn__calloc(al, src->G, sizeof(size_t));
    dst->group_start = (size_t *)disrnn__calloc(al, src->G + 1, sizeof(size_t));
    dst->psi = disrnn__alloc_doubles(al, src->L);
    if (!dst->groups || !dst->group_start || !dst->psi) {
        disrnn__spec_free(al, dst);
        return DISRNN_ERR_NOMEM;
    }
    memcpy(dst->groups, src->groups, src->G * sizeof(size_t));
    memcpy(dst->group_start, src->group_start, (src->G + 1) * sizeof(size_t));
    memcpy(dst->psi, src->psi, src->L * sizeof(double));
    return DISRNN_OK;
}

static int check_groups(const size_t *sizes, size_t G, size_t K, const disrnn__base *b)
{
    size_t sum = 0;
    if (!sizes) return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The group sizes are NULL.");
    if (G < 1 || G > K)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The number of groups G = %zu must be between 1 and K = %zu.", G, K);
    for (size_t g = 0; g < G; g++) {
        if (sizes[g] < 1)
            return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "Group %zu has size 0; every group needs at least one latent dimension.", g);
        if (sizes[g] > K)
            return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "Group %zu has size %zu, more than K = %zu.", g, sizes[g], K);
        sum += sizes[g]; /* cannot wrap: sum <= K before the addition and sizes[g] <= K */
        if (sum > K) break;
    }
    if (sum > K) return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The group sizes sum to more than K = %zu.", K);
    if (sum != K)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The group sizes sum to %zu, not to K = %zu.", sum, K);
    return DISRNN_OK;
}

static int check_kernel(const double *psi, size_t L, size_t N, const disrnn__base *b)
{
    double sum = 0.0;
    if (!psi) return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The history kernel psi is NULL.");
    if (L < 1 || L > MAX_DIM)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The kernel length L = %zu must be between 1 and %zu.", L, MAX_DIM);
    if (!prod_ok(N, L))
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "N * L = %zu * %zu exceeds the limit of %zu history values per sample.", N, L, MAX_PROD);
    for (size_t l = 0; l < L; l++) {
        if (!isfinite(psi[l]))
            return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "Kernel weight psi[%zu] is not finite.", l);
        if (psi[l] < 0.0)
            return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "Kernel weight psi[%zu] = %.17g is negative.", l, psi[l]);
        sum += psi[l];
    }
    if (!(fabs(sum - 1.0) <= PSI_TOL))
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The kernel weights sum to %.17g; they must sum to 1 within 1e-9.", sum);
    return DISRNN_OK;
}

static int check_int_value(int option, int64_t v, const disrnn__base *b)
{
    const option_info *o = &options[option];
    if ((double)v < o->lo || (double)v > o->hi)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "%s = %lld is outside its valid range %.0f to %.0f.", o->name,
                            (long long)v, o->lo, o->hi);
    return DISRNN_OK;
}

static int check_double_value(int option, double v, const disrnn__base *b)
{
    const option_info *o = &options[option];
    if (!isfinite(v)) return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "%s must be finite.", o->name);
    if (v < o->lo || v > o->hi)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "%s = %.17g is outside its valid range %g to %g.", o->name, v, o->lo, o->hi);
    /* N_tot counts samples: 0 means "unset", anything in (0, 1) makes the PC weights negative. */
    if (option == DISRNN_OPT_N_TOT && v > 0.0 && v < 1.0)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "DISRNN_OPT_N_TOT = %.17g must be 0 (unset) or at least 1.", v);
    return DISRNN_OK;
}

static int check_option_key(int option, int want_int, const disrnn__base *b)
{
    if (option < 0 || option >= NUM_OPTIONS)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "Option %d is not a disrnn_option.", option);
    if (options[option].is_int != want_int)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "%s is %s-valued; use the %s setter or getter.", options[option].name,
                            want_int ? "real" : "integer", want_int ? "double" : "int");
    return DISRNN_OK;
}

int disrnn__spec_check(const disrnn__spec *s, const disrnn__base *b)
{
    int st;
    if (!s) return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The model specification is NULL.");
    if ((st = check_dims(s->N, s->K, b)) != DISRNN_OK) return st;
    if ((st = check_groups(s->groups, s->G, s->K, b)) != DISRNN_OK) return st;
    if (!s->group_start) return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The group offsets are missing.");
    for (size_t g = 0; g <= s->G; g++) {
        const size_t want = g == 0 ? 0 : s->group_start[g - 1] + s->groups[g - 1];
        if (s->group_start[g] != want)
            return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "Group offset %zu is %zu; the group sizes imply %zu.", g,
                                s->group_start[g], want);
    }
    if ((st = check_kernel(s->psi, s->L, s->N, b)) != DISRNN_OK) return st;
    if (s->sigma < 0 || s->sigma > 2) return check_int_value(DISRNN_OPT_SIGMA, s->sigma, b);
    if (s->padding < 0 || s->padding > 2) return check_int_value(DISRNN_OPT_PADDING, s->padding, b);
    if (s->obs < 0 || s->obs > 3) return check_int_value(DISRNN_OPT_OBS, s->obs, b);
    if (s->input_e < 0 || s->input_e > 2) return check_int_value(DISRNN_OPT_INPUT_E, s->input_e, b);
    if (s->input_d < 0 || s->input_d > 2) return check_int_value(DISRNN_OPT_INPUT_D, s->input_d, b);
    if (s->std_mode < 0 || s->std_mode > 2) return check_int_value(DISRNN_OPT_STD_MODE, s->std_mode, b);
    if (s->P > MAX_DIM)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "The number of inputs P = %zu exceeds %zu.", s->P, MAX_DIM);
    if (!prod_ok(s->N, s->P) || !prod_ok(s->K, s->P))
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "P = %zu inputs make the input matrices larger than %zu entries.", s->P, MAX_PROD);
    if (s->P == 0 && (s->input_e != DISRNN_INPUT_NONE || s->input_d != DISRNN_INPUT_NONE))
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG,
                            "Input matrix %s is %s but DISRNN_OPT_NUM_INPUTS is 0; an input matrix needs P > 0 inputs.",
                            s->input_e != DISRNN_INPUT_NONE ? "E" : "D",
                            (s->input_e != DISRNN_INPUT_NONE ? s->input_e : s->input_d) == DISRNN_INPUT_LEARNED ? "learned" : "fixed");
    if ((st = check_double_value(DISRNN_OPT_KAPPA, s->kappa, b)) != DISRNN_OK) return st;
    if ((st = check_double_value(DISRNN_OPT_STD_VALUE, s->std_value, b)) != DISRNN_OK) return st;
    if ((st = check_double_value(DISRNN_OPT_N_TOT, s->n_tot, b)) != DISRNN_OK) return st;
    if ((st = check_double_value(DISRNN_OPT_BETA, s->beta, b)) != DISRNN_OK) return st;
    if ((st = check_double_value(DISRNN_OPT_ALPHA, s->alpha, b)) != DISRNN_OK) return st;
    return DISRNN_OK;
}

int disrnn__spec_set_int(disrnn__spec *s, int option, int64_t v, const disrnn__base *b)
{
    int st;
    if ((st = check_option_key(option, 1, b)) != DISRNN_OK) return st;
    if ((st = check_int_value(option, v, b)) != DISRNN_OK) return st;
    switch (option) {
    case DISRNN_OPT_SIGMA: s->sigma = (int)v; break;
    case DISRNN_OPT_PADDING: s->padding = (int)v; break;
    case DISRNN_OPT_OBS: s->obs = (int)v; break;
    case DISRNN_OPT_NUM_INPUTS: {
        const size_t P = (size_t)v;
        if (!prod_ok(s->N, P) || !prod_ok(s->K, P))
            return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "P = %zu inputs make the input matrices larger than %zu entries.", P, MAX_PROD);
        /* The documented default is "E learned when P > 0": apply it when inputs first appear,
         * unless E was already chosen. P = 0 leaves no input matrices. */
        if (P == 0) {
            s->input_e = DISRNN_INPUT_NONE;
            s->input_d = DISRNN_INPUT_NONE;
        } else if (s->P == 0 && s->input_e == DISRNN_INPUT_NONE) {
            s->input_e = DISRNN_INPUT_LEARNED;
        }
        s->P = P;
        break;
    }
    case DISRNN_OPT_INPUT_E: s->input_e = (int)v; break;
    case DISRNN_OPT_INPUT_D: s->input_d = (int)v; break;
    default: s->std_mode = (int)v; break; /* DISRNN_OPT_STD_MODE, the last integer option */
    }
    return DISRNN_OK;
}

int disrnn__spec_set_double(disrnn__spec *s, int option, double v, const disrnn__base *b)
{
    int st;
    if ((st = check_option_key(option, 0, b)) != DISRNN_OK) return st;
    if ((st = check_double_value(option, v, b)) != DISRNN_OK) return st;
    switch (option) {
    case DISRNN_OPT_KAPPA: s->kappa = v; break;
    case DISRNN_OPT_STD_VALUE: s->std_value = v; break;
    case DISRNN_OPT_N_TOT: s->n_tot = v; break;
    case DISRNN_OPT_BETA: s->beta = v; break;
    default: s->alpha = v; break; /* DISRNN_OPT_ALPHA */
    }
    return DISRNN_OK;
}

int disrnn__spec_compatible(const disrnn__spec *a, const disrnn__spec *b)
{
    if (!a || !b) return 0;
    if (a->N != b->N || a->K != b->K || a->G != b->G || a->L != b->L || a->P != b->P) return 0;
    if (a->sigma != b->sigma || a->padding != b->padding || a->obs != b->obs || a->input_e != b->input_e ||
        a->input_d != b->input_d || a->std_mode != b->std_mode)
        return 0;
    if (a->kappa != b->kappa || a->std_value != b->std_value) return 0;
    for (size_t g = 0; g < a->G; g++)
        if (a->groups[g] != b->groups[g]) return 0;
    for (size_t l = 0; l < a->L; l++)
        if (a->psi[l] != b->psi[l]) return 0;
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Configuration handles */

int disrnn_config_create(disrnn_config_t **out, size_t n_obs, size_t n_latent)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    disrnn_config_t *c;
    int st;
    if (!out) return DISRNN_ERR_INVALID_ARG;
    *out = NULL;
    if (check_dims(n_obs, n_latent, NULL) != DISRNN_OK) return DISRNN_ERR_INVALID_ARG;
    c = (disrnn_config_t *)disrnn__calloc(al, 1, sizeof *c);
    if (!c) return DISRNN_ERR_NOMEM;
    disrnn__base_init(&c->base, NULL, NULL, NULL);
    st = disrnn__spec_init(&c->base.al, &c->spec, n_obs, n_latent);
    if (st != DISRNN_OK) {
        disrnn__free(al, c);
        return st;
    }
    *out = c;
    return DISRNN_OK;
}

void disrnn_config_free(disrnn_config_t *cfg)
{
    disrnn__allocator al;
    if (!cfg) return;
    al = cfg->base.al;
    disrnn__spec_free(&al, &cfg->spec);
    disrnn__free(&al, cfg);
}

int disrnn_config_set_groups(disrnn_config_t *cfg, const size_t *sizes, size_t n_groups)
{
    size_t *groups, *start;
    int st;
    if (!cfg) return DISRNN_ERR_INVALID_ARG;
    if ((st = check_groups(sizes, n_groups, cfg->spec.K, &cfg->base)) != DISRNN_OK) return st;
    groups = (size_t *)disrnn__calloc(&cfg->base.al, n_groups, sizeof(size_t));
    start = (size_t *)disrnn__calloc(&cfg->base.al, n_groups + 1, sizeof(size_t));
    if (!groups || !start) {
        disrnn__free(&cfg->base.al, groups);
        disrnn__free(&cfg->base.al, start);
        return disrnn__fail(&cfg->base, DISRNN_ERR_NOMEM, "Out of memory storing %zu group sizes.", n_groups);
    }
    start[0] = 0;
    for (size_t g = 0; g < n_groups; g++) {
        groups[g] = sizes[g];
        start[g + 1] = start[g] + sizes[g];
    }
    disrnn__free(&cfg->base.al, cfg->spec.groups);
    disrnn__free(&cfg->base.al, cfg->spec.group_start);
    cfg->spec.groups = groups;
    cfg->spec.group_start = start;
    cfg->spec.G = n_groups;
    return DISRNN_OK;
}

int disrnn_config_set_kernel(disrnn_config_t *cfg, const double *psi, size_t len)
{
    double *copy;
    int st;
    if (!cfg) return DISRNN_ERR_INVALID_ARG;
    if ((st = check_kernel(psi, len, cfg->spec.N, &cfg->base)) != DISRNN_OK) return st;
    copy = disrnn__alloc_doubles(&cfg->base.al, len);
    if (!copy) return disrnn__fail(&cfg->base, DISRNN_ERR_NOMEM, "Out of memory storing a kernel of length %zu.", len);
    memcpy(copy, psi, len * sizeof(double));
    disrnn__free(&cfg->base.al, cfg->spec.psi);
    cfg->spec.psi = copy;
    cfg->spec.L = len;
    return DISRNN_OK;
}

int disrnn_config_set_int(disrnn_config_t *cfg, int option, int64_t value)
{
    if (!cfg) return DISRNN_ERR_INVALID_ARG;
    return disrnn__spec_set_int(&cfg->spec, option, value, &cfg->base);
}

int disrnn_config_set_double(disrnn_config_t *cfg, int option, double value)
{
    if (!cfg) return DISRNN_ERR_INVALID_ARG;
    return disrnn__spec_set_double(&cfg->spec, option, value, &cfg->base);
}

int disrnn_config_set_seed(disrnn_config_t *cfg, uint64_t seed)
{
    if (!cfg) return DISRNN_ERR_INVALID_ARG;
    cfg->spec.seed = seed;
    return DISRNN_OK;
}

const char *disrnn_config_last_error(const disrnn_config_t *cfg)
{
    return cfg ? disrnn__last_error(&cfg->base) : "";
}
