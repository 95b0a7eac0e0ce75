/* Internal view of configurations and models: the specification (every option), the parameter
 * blocks and the objective workspace. Used by the model, objective, file, data, trainer and
 * analysis files. */
#ifndef DISRNN_MODEL_H
#define DISRNN_MODEL_H

#include "common.h"
#include "rng.h"
#include "threads.h"

#define DISRNN__NUM_BLOCKS 8
#define DISRNN__NUM_TERMS 5

/** Every option of a model. groups, group_start and psi are owned arrays. */
typedef struct disrnn__spec {
    size_t N, K, G, L, P;
    size_t *groups;      /* G sizes */
    size_t *group_start; /* G + 1 offsets: group g is [group_start[g], group_start[g+1]) */
    double *psi;         /* L weights */
    int sigma, padding, obs, input_e, input_d, std_mode;
    double kappa, std_value, n_tot, beta, alpha;
    uint64_t seed;
} disrnn__spec;

struct disrnn_config {
    disrnn__base base;
    disrnn__spec spec;
};

struct disrnn__objws; /* objective workspace, defined in objective.c */

struct disrnn_model {
    disrnn__base base;
    disrnn__spec spec;
    size_t n_params;
    double *theta;                     /* learned parameters, flat, blocks in enum order */
    double *fixed;                     /* storage of fixed blocks */
    double *blk[DISRNN__NUM_BLOCKS];   /* data of each block (NULL when rows * cols == 0) */
    size_t rows[DISRNN__NUM_BLOCKS], cols[DISRNN__NUM_BLOCKS];
    size_t off[DISRNN__NUM_BLOCKS];    /* offset in theta, SIZE_MAX when fixed or absent */
    int learned[DISRNN__NUM_BLOCKS];
    disrnn__rng rng;
    struct disrnn__objws *ws;          /* NULL until the first loss evaluation */
    int blas_only;                     /* tests: the BLAS path even where the fused kernels run */
};

/* config.c: specifications */
/** Defaults for N, K (one group, tanh, psi = [1], repeat, Gaussian, ...). */
int disrnn__spec_init(const disrnn__allocator *al, disrnn__spec *s, size_t N, size_t K);
/** Deep copy; dst must be uninitialised. */
int disrnn__spec_copy(const disrnn__allocator *al, disrnn__spec *dst, const disrnn__spec *src);
void disrnn__spec_free(const disrnn__allocator *al, disrnn__spec *s);
/** Full consistency check of a specification (used on create and on load); message into b. */
int disrnn__spec_check(const disrnn__spec *s, const disrnn__base *b);
/** Apply an option to a spec (shared by config setters and file loading). */
int disrnn__spec_set_int(disrnn__spec *s, int option, int64_t v, const disrnn__base *b);
int disrnn__spec_set_double(disrnn__spec *s, int option, double v, const disrnn__base *b);
/** 1 when two specs describe the same shapes and options (beta, alpha, n_tot, seed ignored). */
int disrnn__spec_compatible(const disrnn__spec *a, const disrnn__spec *b);

/* model.c */
/** Create a model from a spec with a given allocator (seeded init). */
int disrnn__model_new(disrnn_model_t **out, const disrnn__spec *spec, const disrnn__allocator *al);
/** Encoder std s_k of the model in force (exp of the log s block); 0 if Scott's rule lacks N_tot. */
double disrnn__model_s(const disrnn_model_t *m, size_t k);
/** Effective N_tot (> 0) or 0 when unset. */
double disrnn__model_n_tot(const disrnn_model_t *m);
/** Make theta (n_params doubles from the model's allocator) the model's learned parameters, the
 *  learned blocks pointing into it, and return the array it held, which the caller now owns (the
 *  trainer's step writes new parameters beside the old ones and exchanges the arrays). */
double *disrnn__model_swap_theta(disrnn_model_t *m, double *theta);
/** Refresh the log s block for Scott's rule after N_tot changed. */
void disrnn__model_update_scott(disrnn_model_t *m);
/** 1 for the Poisson observation models (softplus or exp link), 0 for the Gaussian ones. */
int disrnn__obs_is_poisson(int obs);
/** Decoder mean function (identity, relu, softplus or exp) of eta. */
double disrnn__obs_mean(int obs, double eta);
/** Encoder nonlinearity. */
double disrnn__sigma(int sigma, double v);

/* observation.c: special functions of the observation models, shared with the analysis files */
/** log(x!) for a non-negative integer-valued x, without lgamma's global sign variable. */
double disrnn__log_factorial(double x);

/** log(softplus(eta)), finite for every finite eta (tends to eta as eta -> -inf). */
double disrnn__log_softplus(double eta);

/* objective.c */
/** Loss terms and gradient without argument checks beyond shapes (the trainer's fast path). Data
 *  must already be validated. terms has DISRNN__NUM_TERMS entries; grad n_params or NULL.
 *  cols NULL: column j of x and h at x + j ldx and h + j ldh. cols non-NULL (only when
 *  disrnn__loss_takes_cols(m) and mask is NULL): column j at x + cols[j] ldx and h + cols[j] ldh,
 *  read in place in cache-sized blocks instead of being gathered first; same bits either way.
 *  pool: worker threads for the large kernels (NULL: the calling thread); same bits either way.
 *  Non-finite terms give DISRNN_ERR_NONFINITE; so does a non-finite gradient when check_grad is
 *  nonzero. check_grad 0 is for a caller that checks what it makes of the gradient (the Adam
 *  update reports any non-finite gradient value through its second moment). */
int disrnn__loss(disrnn_model_t *m, disrnn__pool *pool, size_t M, const double *x, size_t ldx, const double *h,
                 size_t ldh, const size_t *cols, const double *u, size_t ldu, const uint8_t *mask, size_t ldmask, const double *eps,
                 size_t ldeps, double *terms, double *grad, int check_grad);
/** Whether disrnn__loss() accepts indexed columns for this model (Gaussian identity link, no
 *  known inputs); the batch must also have no mask. */
int disrnn__loss_takes_cols(const disrnn_model_t *m);
/** Free the objective workspace. */
void disrnn__objws_free(const disrnn__allocator *al, struct disrnn__objws *ws);

/* encoder input (model.c): h = sum_l psi_l sigma(xprev_l / kappa) */
void disrnn__encoder_input(const disrnn__spec *s, size_t M, const double *xprev, size_t ldp, double *h, size_t ldh);

#endif
