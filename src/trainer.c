/* The trainer: Adam/AdamW over shuffled minibatches of a dataset's samples.
 *
 * Layout of an epoch. At its first step the epoch's order is made (identity, shuffled with the
 * trainer's generator unless SHUFFLE is 0); batches are consecutive runs of BATCH_SIZE indices
 * of that order; the last batch is smaller unless DROP_LAST drops it. When the PC penalty is active
 * (beta > 0 and G > 1) a last batch of a single sample cannot estimate it, so that sample is
 * merged into the batch before it (one batch of BATCH_SIZE + 1). An exhausted epoch is closed
 * (epoch counter, validation, callback, early stopping) by disrnn_trainer_fit(), or silently by
 * the next disrnn_trainer_step().
 *
 * A step is committed only when the loss, the gradient and the result are all finite, so a refused
 * step changes nothing: not the model, not the moments, not the position, not the generator. The
 * update is one pass: the old parameters are kept aside while the new ones are written in place,
 * and the new moments go to spare buffers that take the place of the old ones by pointer swap. */
#include "trainer.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------- */
/* Settings */

typedef struct setting_info {
    int is_int;
    double lo, hi, def;
} setting_info;

/* 2^53: every integer up to it is exact in a double, so the bounds query stays exact. */
#define INT_HI 9007199254740992.0
#define ONE_MINUS 0.99999999999999988898 /* the largest double below 1 */

static const setting_info settings[DISRNN__NUM_TRAIN_OPTIONS] = {
    /* OPTIMIZER */ {1, 0, 1, DISRNN_OPTIM_ADAM},
    /* LR */ {0, DBL_MIN, DBL_MAX, 1e-3},
    /* BETA1 */ {0, 0, ONE_MINUS, 0.9},
    /* BETA2 */ {0, 0, ONE_MINUS, 0.999},
    /* EPS */ {0, DBL_MIN, DBL_MAX, 1e-8},
    /* WEIGHT_DECAY */ {0, 0, DBL_MAX, 0.01},
    /* BATCH_SIZE */ {1, 1, 2147483647.0, 128},
    /* EPOCHS */ {1, 0, INT_HI, 1000},
    /* MAX_STEPS */ {1, 0, INT_HI, 0},
    /* CLIP_NORM */ {0, 0, DBL_MAX, 0},
    /* SCHEDULE */ {1, 0, 2, DISRNN_SCHED_CONSTANT},
    /* LR_GAMMA */ {0, DBL_MIN, 1, 1},
    /* LR_MIN */ {0, 0, DBL_MAX, 0},
    /* PATIENCE */ {1, 0, INT_HI, 0},
    /* KEEP_BEST */ {1, 0, 1, 0},
    /* SHUFFLE */ {1, 0, 1, 1},
    /* DROP_LAST */ {1, 0, 1, 0},
    /* THREADS */ {1, 1, 256, 1},
};

int disrnn_train_option_bounds(int option, double *lo, double *hi, int *is_int)
{
    if (option < 0 || option >= DISRNN__NUM_TRAIN_OPTIONS) return DISRNN_ERR_INVALID_ARG;
    if (lo) *lo = settings[option].lo;
    if (hi) *hi = settings[option].hi;
    if (is_int) *is_int = settings[option].is_int;
    return DISRNN_OK;
}

int disrnn__train_setting_ok(int option, int is_int, double value)
{
    if (option < 0 || option >= DISRNN__NUM_TRAIN_OPTIONS || settings[option].is_int != is_int) return 0;
    return value >= settings[option].lo && value <= settings[option].hi; /* false for NaN */
}

static void settings_default(disrnn__train_settings *s)
{
    memset(s, 0, sizeof *s);
    for (int o = 0; o < DISRNN__NUM_TRAIN_OPTIONS; o++) {
        if (settings[o].is_int)
            s->ival[o] = (int64_t)settings[o].def;
        else
            s->dval[o] = settings[o].def;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Workspace */

static void free_batch(const disrnn__allocator *al, disrnn_trainer_t *tr)
{
    disrnn__free(al, tr->bx);
    disrnn__free(al, tr->bh);
    disrnn__free(al, tr->bu);
    disrnn__free(al, tr->beps);
    disrnn__free(al, tr->bmask);
    tr->bx = tr->bh = tr->bu = tr->beps = NULL;
    tr->bmask = NULL;
    tr->cap = 0;
}

/* Columns a batch of the given samples can need: min(B, S), plus the merged single sample. */
static size_t batch_need(size_t B, size_t S)
{
    const size_t b = B < S ? B : S;
    return b + 1;
}

/* Grow the batch workspace to cap columns; on failure the old workspace stays. */
static int ensure_cap(disrnn_trainer_t *tr, size_t cap)
{
    const disrnn__allocator *al = &tr->base.al;
    const disrnn__spec *sp = &tr->model->spec;
    disrnn_trainer_t nw;
    size_t nx, nu, ne;
    if (cap <= tr->cap) return DISRNN_OK;
    memset(&nw, 0, sizeof nw);
    if (disrnn__mul_size(sp->N, cap, &nx) || disrnn__mul_size(sp->P, cap, &nu) || disrnn__mul_size(sp->K, cap, &ne))
        return DISRNN_ERR_NOMEM;
    nw.bx = disrnn__alloc_doubles(al, nx);
    nw.bh = disrnn__alloc_doubles(al, nx);
    nw.beps = disrnn__alloc_doubles(al, ne);
    nw.bmask = (uint8_t *)disrnn__alloc(al, nx);
    if (sp->P) nw.bu = disrnn__alloc_doubles(al, nu);
    if (!nw.bx || !nw.bh || !nw.beps || !nw.bmask || (sp->P && !nw.bu)) {
        free_batch(al, &nw);
        return DISRNN_ERR_NOMEM;
    }
    free_batch(al, tr);
    tr->bx = nw.bx;
    tr->bh = nw.bh;
    tr->bu = nw.bu;
    tr->beps = nw.beps;
    tr->bmask = nw.bmask;
    tr->cap = cap;
    return DISRNN_OK;
}

static size_t batch_setting(const disrnn_trainer_t *tr) { return (size_t)tr->set.ival[DISRNN_TRAIN_BATCH_SIZE]; }

int disrnn__trainer_reserve(disrnn_trainer_t *tr, size_t batch)
{
    size_t need = batch_need(batch, tr->tr_s.S);
    if (tr->has_val && batch_need(batch, tr->val_s.S) > need) need = batch_need(batch, tr->val_s.S);
    return ensure_cap(tr, need);
}

/* ---------------------------------------------------------------------------------------- */
/* Lifecycle */

void disrnn_trainer_free(disrnn_trainer_t *tr)
{
    disrnn__allocator al;
    if (!tr) return;
    al = tr->base.al;
    disrnn__samples_free(&al, &tr->tr_s);
    disrnn__samples_free(&al, &tr->val_s);
    disrnn__free(&al, tr->order);
    disrnn__free(&al, tr->m);
    disrnn__free(&al, tr->v);
    disrnn__free(&al, tr->best_theta);
    disrnn__free(&al, tr->grad);
    disrnn__free(&al, tr->theta_new);
    disrnn__free(&al, tr->m_new);
    disrnn__free(&al, tr->v_new);
    free_batch(&al, tr);
    disrnn__pool_free(tr->pool);
    disrnn__free(&al, tr);
}

int disrnn_trainer_create(disrnn_trainer_t **out, disrnn_model_t *model, const disrnn_dataset_t *train, uint64_t seed)
{
    const disrnn__allocator *al;
    disrnn_trainer_t *tr;
    size_t n, nn;
    int rc;
    if (out) *out = NULL;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if (!out || !train)
        return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "disrnn_trainer_create needs an output and a training dataset.");
    al = &model->base.al; /* the trainer inherits its model's allocator */
    tr = (disrnn_trainer_t *)disrnn__calloc(al, 1, sizeof *tr);
    if (!tr) return disrnn__fail(&model->base, DISRNN_ERR_NOMEM, "Out of memory creating a trainer.");
    (void)disrnn__base_init(&tr->base, al->alloc, al->free, al->user_data);
    tr->model = model;
    tr->train = train;
    tr->seed = seed;
    disrnn__rng_seed(&tr->rng, seed);
    settings_default(&tr->set);
    tr->pr.best_val = HUGE_VAL;

    rc = disrnn__samples_build(train, model, al, &tr->tr_s, &model->base);
    if (rc != DISRNN_OK) goto fail;
    if (tr->tr_s.S == 0) {
        rc = disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "The training dataset gives this model no samples.");
        goto fail;
    }
    n = tr->n = model->n_params;
    nn = n ? n : 1;
    tr->order = (size_t *)disrnn__calloc(al, tr->tr_s.S, sizeof(size_t));
    tr->m = (double *)disrnn__calloc(al, nn, sizeof(double));
    tr->v = (double *)disrnn__calloc(al, nn, sizeof(double));
    tr->best_theta = disrnn__alloc_doubles(al, nn);
    tr->grad = disrnn__alloc_doubles(al, nn);
    tr->theta_new = disrnn__alloc_doubles(al, nn);
    tr->m_new = disrnn__alloc_doubles(al, nn);
    tr->v_new = disrnn__alloc_doubles(al, nn);
    if (!tr->order || !tr->m || !tr->v || !tr->best_theta || !tr->grad || !tr->theta_new || !tr->m_new || !tr->v_new ||
        ensure_cap(tr, batch_need(batch_setting(tr), tr->tr_s.S)) != DISRNN_OK) {
        rc = disrnn__fail(&model->base, DISRNN_ERR_NOMEM, "Out of memory creating a trainer.");
        goto fail;
    }
    /* the only change to the model, made once nothing else can fail */
    if (model->spec.n_tot == 0.0) {
        rc = disrnn_model_set_double(model, DISRNN_OPT_N_TOT, (double)tr->tr_s.S);
        if (rc != DISRNN_OK) goto fail;
    }
    *out = tr;
    return DISRNN_OK;
fail:
    disrnn_trainer_free(tr);
    return rc;
}

const char *disrnn_trainer_last_error(const disrnn_trainer_t *tr) { return tr ? disrnn__last_error(&tr->base) : ""; }

int disrnn_trainer_set_log(disrnn_trainer_t *tr, disrnn_log_fn fn, int min_level, void *user_data)
{
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    return disrnn__set_log(&tr->base, fn, min_level, user_data);
}

int disrnn_trainer_set_progress(disrnn_trainer_t *tr, disrnn_progress_fn fn, void *user_data)
{
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    tr->progress_fn = fn;
    tr->progress_ud = user_data;
    return DISRNN_OK;
}

static const char *const setting_names[DISRNN__NUM_TRAIN_OPTIONS] = {
    "OPTIMIZER", "LR", "BETA1", "BETA2", "EPS", "WEIGHT_DECAY", "BATCH_SIZE", "EPOCHS", "MAX_STEPS",
    "CLIP_NORM", "SCHEDULE", "LR_GAMMA", "LR_MIN", "PATIENCE", "KEEP_BEST", "SHUFFLE", "DROP_LAST",
    "THREADS"};

static int check_option(const disrnn_trainer_t *tr, int option, int is_int)
{
    if (option < 0 || option >= DISRNN__NUM_TRAIN_OPTIONS)
        return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "%d is not a disrnn_train_option.", option);
    if (settings[option].is_int != is_int)
        return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "DISRNN_TRAIN_%s is %s-valued; use disrnn_trainer_%s_%s.",
                            setting_names[option], is_int ? "real" : "integer", "set or get", is_int ? "double" : "int");
    return DISRNN_OK;
}

int disrnn_trainer_set_int(disrnn_trainer_t *tr, int option, int64_t value)
{
    int rc;
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    if ((rc = check_option(tr, option, 1)) != DISRNN_OK) return rc;
    /* compared as integers: the bounds are whole numbers <= 2^53, exact as int64 */
    if (value < (int64_t)settings[option].lo || value > (int64_t)settings[option].hi)
        return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "DISRNN_TRAIN_%s = %lld is outside [%.17g, %.17g].",
                            setting_names[option], (long long)value, settings[option].lo, settings[option].hi);
    if (option == DISRNN_TRAIN_BATCH_SIZE) {
        if (disrnn__trainer_reserve(tr, (size_t)value) != DISRNN_OK)
            return disrnn__fail(&tr->base, DISRNN_ERR_NOMEM, "Out of memory for a batch of %lld samples.", (long long)value);
    }
    if (option == DISRNN_TRAIN_THREADS && value != tr->set.ival[option]) {
        /* the new workers start before the old ones stop, so a failure changes nothing */
        disrnn__pool *p = NULL;
        if (value > 1 && !(p = disrnn__pool_create(&tr->base.al, (size_t)value)))
            return disrnn__fail(&tr->base, DISRNN_ERR_NOMEM, "Could not start %lld threads (out of memory or threads).",
                                (long long)value);
        disrnn__pool_free(tr->pool);
        tr->pool = p;
    }
    tr->set.ival[option] = value;
    return DISRNN_OK;
}

int disrnn_trainer_set_double(disrnn_trainer_t *tr, int option, double value)
{
    int rc;
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    if ((rc = check_option(tr, option, 0)) != DISRNN_OK) return rc;
    if (!(value >= settings[option].lo && value <= settings[option].hi))
        return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "DISRNN_TRAIN_%s = %g is outside [%.17g, %.17g].",
                            setting_names[option], value, settings[option].lo, settings[option].hi);
    tr->set.dval[option] = value;
    return DISRNN_OK;
}

int disrnn_trainer_get_int(const disrnn_trainer_t *tr, int option, int64_t *value)
{
    int rc;
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    if ((rc = check_option(tr, option, 1)) != DISRNN_OK) return rc;
    if (!value) return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The output value is NULL.");
    *value = tr->set.ival[option];
    return DISRNN_OK;
}

int disrnn_trainer_get_double(const disrnn_trainer_t *tr, int option, double *value)
{
    int rc;
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    if ((rc = check_option(tr, option, 0)) != DISRNN_OK) return rc;
    if (!value) return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The output value is NULL.");
    *value = tr->set.dval[option];
    return DISRNN_OK;
}

int disrnn_trainer_reset_settings(disrnn_trainer_t *tr)
{
    disrnn__train_settings s;
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    settings_default(&s);
    s.ival[DISRNN_TRAIN_THREADS] = tr->set.ival[DISRNN_TRAIN_THREADS]; /* a resource, kept */
    /* the default batch may need a larger workspace than the current one */
    if (disrnn__trainer_reserve(tr, (size_t)s.ival[DISRNN_TRAIN_BATCH_SIZE]) != DISRNN_OK)
        return disrnn__fail(&tr->base, DISRNN_ERR_NOMEM, "Out of memory for the default batch size.");
    tr->set = s;
    return DISRNN_OK;
}

int disrnn_trainer_set_validation(disrnn_trainer_t *tr, const disrnn_dataset_t *val)
{
    disrnn__samples s;
    int rc;
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    if (!val) {
        disrnn__samples_free(&tr->base.al, &tr->val_s);
        tr->val = NULL;
        tr->has_val = 0;
        return DISRNN_OK;
    }
    rc = disrnn__samples_build(val, tr->model, &tr->base.al, &s, &tr->base);
    if (rc != DISRNN_OK) return rc;
    if (s.S == 0) {
        disrnn__samples_free(&tr->base.al, &s);
        return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The validation dataset gives this model no samples.");
    }
    if (ensure_cap(tr, batch_need(batch_setting(tr), s.S)) != DISRNN_OK) {
        disrnn__samples_free(&tr->base.al, &s);
        return disrnn__fail(&tr->base, DISRNN_ERR_NOMEM, "Out of memory preparing the validation batches.");
    }
    disrnn__samples_free(&tr->base.al, &tr->val_s);
    tr->val_s = s;
    tr->val = val;
    tr->has_val = 1;
    return DISRNN_OK;
}

int disrnn_trainer_progress(const disrnn_trainer_t *tr, int64_t *step, int64_t *epoch)
{
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    if (step) *step = tr->pr.step;
    if (epoch) *epoch = tr->pr.epoch;
    return DISRNN_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Optimiser state */

size_t disrnn_trainer_state_size(const disrnn_trainer_t *tr) { return tr ? 2 * tr->n + 1 : 0; }

int disrnn_trainer_get_state(const disrnn_trainer_t *tr, double *out, size_t len)
{
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    if (!out) return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The output state buffer is NULL.");
    if (len < 2 * tr->n + 1)
        return disrnn__fail(&tr->base, DISRNN_ERR_BUFFER_TOO_SMALL, "The state needs %zu values; the buffer holds %zu.",
                            2 * tr->n + 1, len);
    if (tr->n) {
        memcpy(out, tr->m, tr->n * sizeof(double));
        memcpy(out + tr->n, tr->v, tr->n * sizeof(double));
    }
    out[2 * tr->n] = (double)tr->pr.step;
    return DISRNN_OK;
}

int disrnn_trainer_set_state(disrnn_trainer_t *tr, const double *state, size_t len)
{
    double st;
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    if (!state) return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The state is NULL.");
    if (len != 2 * tr->n + 1)
        return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The state has %zu values; %zu are expected.", len, 2 * tr->n + 1);
    for (size_t i = 0; i < 2 * tr->n; i++)
        if (!isfinite(state[i]) || (i >= tr->n && state[i] < 0.0))
            return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG,
                                "State value %zu is %s.", i, isfinite(state[i]) ? "a negative second moment" : "not finite");
    st = state[2 * tr->n];
    if (!(st >= 0.0 && st <= INT_HI && st == floor(st)))
        return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The step count %g is not a whole number in [0, 2^53].", st);
    if (tr->n) {
        memcpy(tr->m, state, tr->n * sizeof(double));
        memcpy(tr->v, state + tr->n, tr->n * sizeof(double));
    }
    tr->pr.step = (int64_t)st;
    return DISRNN_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Batches and steps */

static int pc_active(const disrnn_model_t *m) { return m->spec.beta > 0.0 && m->spec.G > 1; }

/* Size of the batch starting at pos of S samples (0 when the epoch has no batch left). */
static size_t batch_size_at(size_t B, size_t S, size_t pos, int drop_last, int merge_single)
{
    const size_t rem = S - pos;
    size_t b;
    if (pos >= S) return 0;
    b = rem < B ? rem : B;
    if (drop_last && b < B) return 0;
    if (!drop_last && merge_single && b >= 2 && rem - b == 1) b++;
    return b;
}

static size_t next_batch(const disrnn_trainer_t *tr)
{
    return batch_size_at(batch_setting(tr), tr->tr_s.S, tr->pr.pos, (int)tr->set.ival[DISRNN_TRAIN_DROP_LAST],
                         pc_active(tr->model));
}

/* A batch: the columns its loss reads (leading dimensions N, P and N); with cols, column j of x
 * and h is column cols[j] of the sample store. */
typedef struct batch_view {
    const double *x, *h, *u;
    const uint8_t *mask;
    const size_t *cols;
} batch_view;

/* The columns of the given samples; idx NULL means consecutive samples from first. Consecutive
 * samples (evaluation, or training without shuffling) are read where they are; others are read
 * through their indices when the loss can (the common Gaussian case, which reads them block by
 * block while they stay in cache), and otherwise copied into the batch workspace (the mask only
 * when the samples have one). */
static batch_view gather(disrnn_trainer_t *tr, const disrnn__samples *s, const size_t *idx, size_t first, size_t M)
{
    const size_t N = s->N, P = s->P;
    batch_view b;
    int consecutive = 1;
    b.cols = NULL;
    if (idx) {
        first = idx[0];
        for (size_t j = 1; j < M && consecutive; j++) consecutive = idx[j] == first + j;
    }
    if (consecutive) {
        b.x = s->x + first * N;
        b.h = s->h + first * N;
        b.u = P ? s->u + first * P : NULL;
        b.mask = s->mask ? s->mask + first * N : NULL;
        return b;
    }
    if (!s->mask && disrnn__loss_takes_cols(tr->model)) {
        b.x = s->x;
        b.h = s->h;
        b.u = NULL;
        b.mask = NULL;
        b.cols = idx;
        return b;
    }
    for (size_t j = 0; j < M; j++) {
        const size_t c = idx[j];
        memcpy(tr->bx + j * N, s->x + c * N, N * sizeof(double));
        memcpy(tr->bh + j * N, s->h + c * N, N * sizeof(double));
    }
    if (P)
        for (size_t j = 0; j < M; j++) memcpy(tr->bu + j * P, s->u + idx[j] * P, P * sizeof(double));
    if (s->mask)
        for (size_t j = 0; j < M; j++) memcpy(tr->bmask + j * N, s->mask + idx[j] * N, N);
    b.x = tr->bx;
    b.h = tr->bh;
    b.u = P ? tr->bu : NULL;
    b.mask = s->mask ? tr->bmask : NULL;
    return b;
}

static int all_finite(const double *a, size_t n) { return disrnn__all_finite(a, n, 1, n); }

/* Loss and gradient of a batch with fresh noise from r; check_grad as disrnn__loss. */
static int batch_loss(disrnn_trainer_t *tr, disrnn__rng *r, size_t M, const batch_view *b, double *terms, double *grad,
                      int check_grad)
{
    const disrnn__spec *sp = &tr->model->spec;
    int rc;
    if (M < 2 && pc_active(tr->model))
        return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG,
                            "A batch of one sample cannot estimate the PC penalty (beta > 0, G > 1); use a batch size of at least 2.");
    disrnn__rng_normal(r, tr->beps, sp->K * M);
    rc = disrnn__loss(tr->model, tr->pool, M, b->x, sp->N, b->h, sp->N, b->cols, b->u, sp->P ? sp->P : 1, b->mask,
                      sp->N, tr->beps, sp->K, terms, grad, check_grad);
    if (rc != DISRNN_OK && rc != DISRNN_ERR_NONFINITE)
        return disrnn__fail(&tr->base, rc, "The objective failed on a batch of %zu samples (%s): %s", M,
                            disrnn_status_string(rc), disrnn_model_last_error(tr->model));
    return rc;
}

static double current_lr(const disrnn_trainer_t *tr)
{
    return disrnn__schedule_lr((int)tr->set.ival[DISRNN_TRAIN_SCHEDULE], tr->set.dval[DISRNN_TRAIN_LR],
                               tr->set.dval[DISRNN_TRAIN_LR_GAMMA], tr->set.dval[DISRNN_TRAIN_LR_MIN], tr->pr.epoch,
                               tr->set.ival[DISRNN_TRAIN_EPOCHS]);
}

/* Clip tr->grad and take the Adam step; when a new parameter or moment is not finite, nothing
 * changes. The new parameters and moments are written beside the old ones (theta_new, m_new,
 * v_new), which are only read, and take their place by exchange of arrays on success: nothing to
 * restore on refusal, and no copy of the old parameters written each step (at 65012 parameters a
 * stream of 0.5 MB). The model's parameter array and the trainer's come from the same allocator
 * (the trainer inherits the model's), so whichever handle holds an array when it is freed frees
 * it. */
static int apply_grad(disrnn_trainer_t *tr)
{
    const size_t n = tr->n;
    disrnn__adam o;
    double *t;
    const double clip = tr->set.dval[DISRNN_TRAIN_CLIP_NORM];
    if (n == 0) {
        tr->pr.step++;
        return DISRNN_OK;
    }
    if (clip > 0.0) {
        const double scale = disrnn__clip_scale(disrnn__grad_norm(tr->grad, n), clip);
        if (scale != 1.0)
            for (size_t i = 0; i < n; i++) tr->grad[i] *= scale;
    }
    o.adamw = tr->set.ival[DISRNN_TRAIN_OPTIMIZER] == DISRNN_OPTIM_ADAMW;
    o.lr = current_lr(tr);
    o.beta1 = tr->set.dval[DISRNN_TRAIN_BETA1];
    o.beta2 = tr->set.dval[DISRNN_TRAIN_BETA2];
    o.eps = tr->set.dval[DISRNN_TRAIN_EPS];
    o.weight_decay = tr->set.dval[DISRNN_TRAIN_WEIGHT_DECAY];
    if (!disrnn__adam_update(&o, tr->pool, n, tr->model->theta, tr->theta_new, tr->grad, tr->m, tr->v, tr->m_new,
                             tr->v_new, tr->pr.step + 1))
        return DISRNN_ERR_NONFINITE;
    tr->theta_new = disrnn__model_swap_theta(tr->model, tr->theta_new);
    t = tr->m;
    tr->m = tr->m_new;
    tr->m_new = t;
    t = tr->v;
    tr->v = tr->v_new;
    tr->v_new = t;
    tr->pr.step++;
    return DISRNN_OK;
}

static void open_epoch(disrnn_trainer_t *tr)
{
    const size_t S = tr->tr_s.S;
    for (size_t i = 0; i < S; i++) tr->order[i] = i;
    if (tr->set.ival[DISRNN_TRAIN_SHUFFLE]) disrnn__rng_shuffle(&tr->rng, tr->order, S);
    tr->pr.pos = 0;
    tr->pr.in_epoch = 1;
    memset(tr->pr.acc, 0, sizeof tr->pr.acc);
    tr->pr.acc_batches = 0;
}

static int epoch_exhausted(const disrnn_trainer_t *tr) { return tr->pr.in_epoch && next_batch(tr) == 0; }

/* One optimiser step on the next batch; on any failure everything is as before the call. */
static int do_step(disrnn_trainer_t *tr, double *terms_out)
{
    const disrnn__train_progress saved = tr->pr;
    const disrnn__rng saved_rng = tr->rng;
    double terms[DISRNN__NUM_TERMS];
    size_t M;
    batch_view b;
    int rc;
    if (epoch_exhausted(tr)) { /* closed silently: fit() closes epochs itself before stepping */
        tr->pr.epoch++;
        tr->pr.in_epoch = 0;
    }
    if (!tr->pr.in_epoch) open_epoch(tr);
    M = next_batch(tr);
    if (M == 0) {
        rc = disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG,
                          "No complete batch: DROP_LAST is set and the batch size %zu exceeds the %zu training samples.",
                          batch_setting(tr), tr->tr_s.S);
        goto refuse;
    }
    b = gather(tr, &tr->tr_s, tr->order + tr->pr.pos, 0, M);
    /* the gradient's values are checked by the Adam update (a NaN or infinite gradient makes the
     * second moment non-finite, and the step is refused), not once more in a pass of its own */
    rc = batch_loss(tr, &tr->rng, M, &b, terms, tr->grad, 0);
    if (rc == DISRNN_OK && !all_finite(terms, DISRNN__NUM_TERMS)) rc = DISRNN_ERR_NONFINITE;
    if (rc == DISRNN_OK) rc = apply_grad(tr);
    if (rc == DISRNN_ERR_NONFINITE) {
        rc = disrnn__fail(&tr->base, DISRNN_ERR_NONFINITE,
                          "The loss or gradient became non-finite at step %lld (epoch %lld, batch at sample %zu of %zu); "
                          "the step was refused and the model and optimiser are unchanged.",
                          (long long)(saved.step + 1), (long long)(tr->pr.epoch + 1), tr->pr.pos, tr->tr_s.S);
        goto refuse;
    }
    if (rc != DISRNN_OK) goto refuse; /* message already on the handle */
    tr->pr.pos += M;
    for (int k = 0; k < DISRNN__NUM_TERMS; k++) tr->pr.acc[k] += terms[k];
    tr->pr.acc_batches++;
    if (terms_out) memcpy(terms_out, terms, sizeof terms);
    return DISRNN_OK;
refuse:
    tr->pr = saved;
    tr->rng = saved_rng;
    return rc;
}

int disrnn_trainer_step(disrnn_trainer_t *tr, double *terms, size_t nterms)
{
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    if (terms && nterms < DISRNN__NUM_TERMS)
        return disrnn__fail(&tr->base, DISRNN_ERR_BUFFER_TOO_SMALL, "terms holds %zu values; %d are written.", nterms,
                            DISRNN__NUM_TERMS);
    return do_step(tr, terms);
}

int disrnn_trainer_gradient(disrnn_trainer_t *tr, const size_t *samples, size_t n_samples, double *terms, size_t nterms,
                            double *grad, size_t ngrad)
{
    double t[DISRNN__NUM_TERMS];
    disrnn__rng saved;
    batch_view b;
    int rc;
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    if (!samples || n_samples < 1)
        return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "disrnn_trainer_gradient needs sample indices and n_samples >= 1.");
    if (!grad) return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The gradient buffer is NULL.");
    if (ngrad < tr->n)
        return disrnn__fail(&tr->base, DISRNN_ERR_BUFFER_TOO_SMALL, "grad holds %zu values; the model has %zu parameters.", ngrad, tr->n);
    if (terms && nterms < DISRNN__NUM_TERMS)
        return disrnn__fail(&tr->base, DISRNN_ERR_BUFFER_TOO_SMALL, "terms holds %zu values; %d are written.", nterms,
                            DISRNN__NUM_TERMS);
    for (size_t j = 0; j < n_samples; j++)
        if (samples[j] >= tr->tr_s.S)
            return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "Sample index %zu (entry %zu) is out of range (%zu samples).",
                                samples[j], j, tr->tr_s.S);
    if (ensure_cap(tr, n_samples) != DISRNN_OK)
        return disrnn__fail(&tr->base, DISRNN_ERR_NOMEM, "Out of memory for a batch of %zu samples.", n_samples);
    saved = tr->rng;
    b = gather(tr, &tr->tr_s, samples, 0, n_samples);
    rc = batch_loss(tr, &tr->rng, n_samples, &b, t, tr->grad, 1);
    if (rc == DISRNN_OK && !all_finite(t, DISRNN__NUM_TERMS))
        rc = disrnn__fail(&tr->base, DISRNN_ERR_NONFINITE, "The loss or gradient is not finite on these %zu samples.", n_samples);
    if (rc != DISRNN_OK) {
        tr->rng = saved;
        return rc;
    }
    if (tr->n) memcpy(grad, tr->grad, tr->n * sizeof(double));
    if (terms) memcpy(terms, t, sizeof t);
    return DISRNN_OK;
}

int disrnn_trainer_apply(disrnn_trainer_t *tr, const double *grad, size_t ngrad)
{
    int rc;
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    if (!grad && tr->n) return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The gradient is NULL.");
    if (ngrad != tr->n)
        return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The gradient has %zu values; the model has %zu parameters.", ngrad, tr->n);
    if (!all_finite(grad, tr->n))
        for (size_t i = 0; i < tr->n; i++)
            if (!isfinite(grad[i]))
                return disrnn__fail(&tr->base, DISRNN_ERR_NONFINITE,
                                    "Gradient entry %zu is not finite; step %lld was refused and nothing changed.", i,
                                    (long long)(tr->pr.step + 1));
    if (tr->n) memcpy(tr->grad, grad, tr->n * sizeof(double));
    rc = apply_grad(tr);
    if (rc != DISRNN_OK)
        return disrnn__fail(&tr->base, rc, "Step %lld would make parameters or moments non-finite; it was refused.",
                            (long long)(tr->pr.step + 1));
    return DISRNN_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Evaluation */

/* Mean terms over all samples of s, in order, in batches laid out as in training (without drop). */
static int eval_samples(disrnn_trainer_t *tr, const disrnn__samples *s, double *terms)
{
    double t[DISRNN__NUM_TERMS], sum[DISRNN__NUM_TERMS] = {0};
    disrnn__rng r;
    const size_t B = batch_setting(tr);
    size_t pos = 0;
    int rc;
    if (ensure_cap(tr, batch_need(B, s->S)) != DISRNN_OK)
        return disrnn__fail(&tr->base, DISRNN_ERR_NOMEM, "Out of memory for the evaluation batches.");
    disrnn__rng_seed_stream(&r, tr->seed, (uint64_t)tr->pr.epoch);
    while (pos < s->S) {
        const size_t M = batch_size_at(B, s->S, pos, 0, pc_active(tr->model));
        const batch_view b = gather(tr, s, NULL, pos, M);
        rc = batch_loss(tr, &r, M, &b, t, NULL, 1);
        if (rc == DISRNN_ERR_NONFINITE)
            return disrnn__fail(&tr->base, rc, "The evaluation loss is not finite on the batch at sample %zu.", pos);
        if (rc != DISRNN_OK) return rc;
        for (int k = 0; k < DISRNN__NUM_TERMS; k++) sum[k] += (double)M * t[k];
        pos += M;
    }
    for (int k = 0; k < DISRNN__NUM_TERMS; k++) terms[k] = sum[k] / (double)s->S;
    if (!all_finite(terms, DISRNN__NUM_TERMS))
        return disrnn__fail(&tr->base, DISRNN_ERR_NONFINITE, "The evaluation loss is not finite.");
    return DISRNN_OK;
}

int disrnn_trainer_evaluate(disrnn_trainer_t *tr, const disrnn_dataset_t *ds, double *terms, size_t nterms)
{
    disrnn__samples s;
    double t[DISRNN__NUM_TERMS];
    int rc;
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    if (!ds) return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The dataset is NULL.");
    if (!terms) return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The terms buffer is NULL.");
    if (nterms < DISRNN__NUM_TERMS)
        return disrnn__fail(&tr->base, DISRNN_ERR_BUFFER_TOO_SMALL, "terms holds %zu values; %d are written.", nterms,
                            DISRNN__NUM_TERMS);
    if (ds == tr->train || (tr->has_val && ds == tr->val)) {
        rc = eval_samples(tr, ds == tr->train ? &tr->tr_s : &tr->val_s, t);
    } else {
        rc = disrnn__samples_build(ds, tr->model, &tr->base.al, &s, &tr->base);
        if (rc != DISRNN_OK) return rc;
        if (s.S == 0) {
            disrnn__samples_free(&tr->base.al, &s);
            return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The dataset gives this model no samples.");
        }
        rc = eval_samples(tr, &s, t);
        disrnn__samples_free(&tr->base.al, &s);
    }
    if (rc != DISRNN_OK) return rc;
    memcpy(terms, t, sizeof t);
    return DISRNN_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Fit */

static double now_seconds(void)
{
#if defined(CLOCK_MONOTONIC)
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0) return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
    return (double)clock() / (double)CLOCKS_PER_SEC;
}

static void restore_best(disrnn_trainer_t *tr)
{
    if (tr->set.ival[DISRNN_TRAIN_KEEP_BEST] && tr->pr.has_best && tr->n)
        memcpy(tr->model->theta, tr->best_theta, tr->n * sizeof(double));
}

/* Close an exhausted epoch: counters, validation, early-stopping bookkeeping, callback. */
static int finish_epoch(disrnn_trainer_t *tr, double t0)
{
    double mean[DISRNN__NUM_TERMS], val = NAN;
    const disrnn__train_progress saved = tr->pr;
    int rc;
    for (int k = 0; k < DISRNN__NUM_TERMS; k++)
        mean[k] = tr->pr.acc_batches ? tr->pr.acc[k] / (double)tr->pr.acc_batches : NAN;
    tr->pr.epoch++;
    tr->pr.in_epoch = 0;
    if (tr->has_val) {
        double vt[DISRNN__NUM_TERMS];
        rc = eval_samples(tr, &tr->val_s, vt);
        if (rc != DISRNN_OK) {
            tr->pr = saved;
            return rc;
        }
        val = vt[DISRNN_TERM_LOSS];
        if (val < tr->pr.best_val) {
            tr->pr.best_val = val;
            tr->pr.best_epoch = tr->pr.epoch;
            tr->pr.bad_epochs = 0;
            tr->pr.has_best = 1;
            if (tr->n) memcpy(tr->best_theta, tr->model->theta, tr->n * sizeof(double));
        } else {
            tr->pr.bad_epochs++;
        }
    }
    disrnn__log(&tr->base, DISRNN_LOG_DEBUG, "Epoch %lld, step %lld: loss %.6g, validation %.6g.", (long long)tr->pr.epoch,
                (long long)tr->pr.step, mean[DISRNN_TERM_LOSS], val);
    if (tr->progress_fn) {
        const int cb = tr->progress_fn(tr->pr.epoch, tr->pr.step, mean, DISRNN__NUM_TERMS, val, now_seconds() - t0,
                                       tr->progress_ud);
        if (cb > 0) return DISRNN_STOPPED;
        if (cb < 0)
            return disrnn__fail(&tr->base, DISRNN_ERR_CALLBACK, "The progress callback returned %d after epoch %lld.", cb,
                                (long long)tr->pr.epoch);
    }
    if (tr->has_val && tr->set.ival[DISRNN_TRAIN_PATIENCE] > 0 && tr->pr.bad_epochs >= tr->set.ival[DISRNN_TRAIN_PATIENCE]) {
        restore_best(tr);
        return DISRNN_EARLY_STOPPED;
    }
    return DISRNN_OK;
}

int disrnn_trainer_fit(disrnn_trainer_t *tr)
{
    double t0;
    int rc;
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    t0 = now_seconds();
    for (;;) {
        if (epoch_exhausted(tr)) {
            rc = finish_epoch(tr, t0);
            if (rc != DISRNN_OK) return rc;
            continue;
        }
        if (tr->pr.epoch >= tr->set.ival[DISRNN_TRAIN_EPOCHS]) break;
        if (tr->set.ival[DISRNN_TRAIN_MAX_STEPS] > 0 && tr->pr.step >= tr->set.ival[DISRNN_TRAIN_MAX_STEPS]) break;
        rc = do_step(tr, NULL);
        if (rc != DISRNN_OK) return rc;
    }
    restore_best(tr);
    return DISRNN_OK;
}
