/* Datasets: trials copied in once, missing entries as a mask, bin selections for splits, and the
 * index of the samples a model sees. Every mutating call validates its whole input and allocates
 * everything it needs before it touches the dataset, so a failure leaves the dataset as it was. */
#include "dataset.h"

#include <math.h>
#include <string.h>

/* Far above any recording, far below where N * T * sizeof(double) could overflow on 64 bits. */
#define DISRNN__MAX_CHANNELS ((size_t)1 << 24)

static int check_kind(int kind) { return kind == DISRNN_DATA_CONTINUOUS || kind == DISRNN_DATA_COUNTS; }

static int dataset_new(disrnn_dataset_t **out, size_t n_obs, size_t n_inputs, int kind, const disrnn__allocator *al)
{
    disrnn_dataset_t *ds = (disrnn_dataset_t *)disrnn__calloc(al, 1, sizeof *ds);
    if (!ds) return DISRNN_ERR_NOMEM;
    /* base_init only fails for a half-given allocator, which callers have excluded */
    (void)disrnn__base_init(&ds->base, al->alloc, al->free, al->user_data);
    ds->N = n_obs;
    ds->P = n_inputs;
    ds->kind = kind;
    *out = ds;
    return DISRNN_OK;
}

int disrnn_dataset_create_with_allocator(disrnn_dataset_t **out, size_t n_obs, size_t n_inputs, int kind,
                                         disrnn_alloc_fn alloc_fn, disrnn_free_fn free_fn, void *user_data)
{
    disrnn__allocator al;
    if (out) *out = NULL;
    if (!out || n_obs < 1 || n_obs > DISRNN__MAX_CHANNELS || n_inputs > DISRNN__MAX_CHANNELS || !check_kind(kind))
        return DISRNN_ERR_INVALID_ARG;
    if ((alloc_fn == NULL) != (free_fn == NULL)) return DISRNN_ERR_INVALID_ARG;
    if (alloc_fn) {
        al.alloc = alloc_fn;
        al.free = free_fn;
        al.user_data = user_data;
    } else {
        al = *disrnn__default_allocator();
    }
    return dataset_new(out, n_obs, n_inputs, kind, &al);
}

int disrnn_dataset_create(disrnn_dataset_t **out, size_t n_obs, size_t n_inputs, int kind)
{
    return disrnn_dataset_create_with_allocator(out, n_obs, n_inputs, kind, NULL, NULL, NULL);
}

void disrnn_dataset_free(disrnn_dataset_t *ds)
{
    disrnn__allocator al;
    if (!ds) return;
    al = ds->base.al;
    disrnn__free(&al, ds->len);
    disrnn__free(&al, ds->start);
    disrnn__free(&al, ds->x);
    disrnn__free(&al, ds->u);
    disrnn__free(&al, ds->mask);
    disrnn__free(&al, ds->selected);
    disrnn__free(&al, ds);
}

const char *disrnn_dataset_last_error(const disrnn_dataset_t *ds) { return ds ? disrnn__last_error(&ds->base) : ""; }

/* New storage for at least need_trials trials and need_bins bins, allocated in full before the
 * dataset is touched. Fields are NULL when the current storage is large enough. */
typedef struct grow_plan {
    size_t cap_trials, cap_bins;
    size_t *len, *start;
    double *x, *u;
    uint8_t *mask, *selected;
    int new_mask; /* the mask is created now (the dataset had none) */
} grow_plan;

static void plan_free(const disrnn__allocator *al, grow_plan *g)
{
    disrnn__free(al, g->len);
    disrnn__free(al, g->start);
    disrnn__free(al, g->x);
    disrnn__free(al, g->u);
    disrnn__free(al, g->mask);
    disrnn__free(al, g->selected);
    memset(g, 0, sizeof *g);
}

static size_t grown(size_t cap, size_t need)
{
    size_t c = cap < 8 ? 8 : cap;
    while (c < need) c = c > SIZE_MAX / 2 ? need : 2 * c;
    return c;
}

static int plan_grow(const disrnn_dataset_t *ds, size_t need_trials, size_t need_bins, int want_mask, grow_plan *g)
{
    const disrnn__allocator *al = &ds->base.al;
    size_t nx, nu;
    memset(g, 0, sizeof *g);
    g->cap_trials = ds->cap_trials;
    g->cap_bins = ds->cap_bins;
    if (need_trials > ds->cap_trials) {
        g->cap_trials = grown(ds->cap_trials, need_trials);
        g->len = (size_t *)disrnn__calloc(al, g->cap_trials, sizeof(size_t));
        g->start = (size_t *)disrnn__calloc(al, g->cap_trials, sizeof(size_t));
        if (!g->len || !g->start) goto oom;
    }
    if (need_bins > ds->cap_bins) g->cap_bins = grown(ds->cap_bins, need_bins);
    if (disrnn__mul_size(ds->N, g->cap_bins, &nx) || disrnn__mul_size(ds->P, g->cap_bins, &nu)) goto oom;
    if (need_bins > ds->cap_bins) {
        g->x = disrnn__alloc_doubles(al, nx);
        g->selected = (uint8_t *)disrnn__calloc(al, g->cap_bins, 1);
        if (!g->x || !g->selected) goto oom;
        if (ds->P > 0 && !(g->u = disrnn__alloc_doubles(al, nu))) goto oom;
    }
    if ((ds->mask && need_bins > ds->cap_bins) || (!ds->mask && want_mask)) {
        g->mask = (uint8_t *)disrnn__calloc(al, nx, 1);
        if (!g->mask) goto oom;
        g->new_mask = ds->mask == NULL;
    }
    return DISRNN_OK;
oom:
    plan_free(al, g);
    return DISRNN_ERR_NOMEM;
}

/* Move the existing content into the planned buffers and install them. Cannot fail. */
static void plan_commit(disrnn_dataset_t *ds, grow_plan *g)
{
    const disrnn__allocator *al = &ds->base.al;
    const size_t used = ds->total_bins;
    if (g->len) {
        if (ds->n_trials) {
            memcpy(g->len, ds->len, ds->n_trials * sizeof(size_t));
            memcpy(g->start, ds->start, ds->n_trials * sizeof(size_t));
        }
        disrnn__free(al, ds->len);
        disrnn__free(al, ds->start);
        ds->len = g->len;
        ds->start = g->start;
        ds->cap_trials = g->cap_trials;
    }
    if (g->x) {
        if (used) {
            memcpy(g->x, ds->x, ds->N * used * sizeof(double));
            memcpy(g->selected, ds->selected, used);
            if (ds->P) memcpy(g->u, ds->u, ds->P * used * sizeof(double));
        }
        disrnn__free(al, ds->x);
        disrnn__free(al, ds->u);
        disrnn__free(al, ds->selected);
        ds->x = g->x;
        ds->u = g->u;
        ds->selected = g->selected;
    }
    if (g->mask) {
        if (g->new_mask)
            memset(g->mask, 1, ds->N * used); /* everything stored so far was observed */
        else if (used)
            memcpy(g->mask, ds->mask, ds->N * used);
        disrnn__free(al, ds->mask);
        ds->mask = g->mask;
    }
    ds->cap_bins = g->cap_bins;
    memset(g, 0, sizeof *g);
}

int disrnn_dataset_add_trial(disrnn_dataset_t *ds, size_t n_bins, const double *x, size_t ldx, const double *u,
                             size_t ldu, const uint8_t *mask, size_t ldmask)
{
    size_t total, n_missing = 0;
    grow_plan g;
    double *xd;
    int rc;
    if (!ds) return DISRNN_ERR_INVALID_ARG;
    if (n_bins < 1) return disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG, "A trial needs at least one bin.");
    if (!x) return disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG, "The trial's values x are NULL.");
    if (ldx < ds->N)
        return disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG, "ldx = %zu is smaller than N = %zu.", ldx, ds->N);
    if (ds->P > 0 && !u)
        return disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG, "The dataset has P = %zu inputs but u is NULL.", ds->P);
    if (ds->P > 0 && ldu < ds->P)
        return disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG, "ldu = %zu is smaller than P = %zu.", ldu, ds->P);
    if (mask && ldmask < ds->N)
        return disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG, "ldmask = %zu is smaller than N = %zu.", ldmask, ds->N);
    if (disrnn__add_size(ds->total_bins, n_bins, &total) || total > SIZE_MAX / sizeof(double) / ds->N ||
        (ds->P && total > SIZE_MAX / sizeof(double) / ds->P) || ds->n_trials == SIZE_MAX)
        return disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG, "%zu more bins are too many for this dataset.", n_bins);
    /* every check on the values comes before any change */
    for (size_t t = 0; t < n_bins; t++) {
        for (size_t i = 0; i < ds->N; i++) {
            const double v = x[t * ldx + i];
            if ((mask && mask[t * ldmask + i] == 0) || isnan(v)) {
                n_missing++;
                continue;
            }
            if (!isfinite(v))
                return disrnn__fail(&ds->base, DISRNN_ERR_NONFINITE,
                                    "x is infinite at channel %zu, bin %zu of the new trial.", i, t);
            if (ds->kind == DISRNN_DATA_COUNTS && (v < 0.0 || v != floor(v)))
                return disrnn__fail(&ds->base, DISRNN_ERR_DATA,
                                    "x = %g at channel %zu, bin %zu is not a non-negative integer count.", v, i, t);
        }
        for (size_t p = 0; p < ds->P; p++)
            if (!isfinite(u[t * ldu + p]))
                return disrnn__fail(&ds->base, DISRNN_ERR_NONFINITE,
                                    "Input u is not finite at input %zu, bin %zu of the new trial.", p, t);
    }
    rc = plan_grow(ds, ds->n_trials + 1, total, n_missing > 0, &g);
    if (rc != DISRNN_OK)
        return disrnn__fail(&ds->base, rc, "Out of memory growing the dataset to %zu bins.", total);
    plan_commit(ds, &g);

    xd = ds->x + ds->total_bins * ds->N;
    for (size_t t = 0; t < n_bins; t++) {
        for (size_t i = 0; i < ds->N; i++) {
            const double v = x[t * ldx + i];
            const int miss = (mask && mask[t * ldmask + i] == 0) || isnan(v);
            xd[t * ds->N + i] = miss ? 0.0 : v;
            if (ds->mask) ds->mask[(ds->total_bins + t) * ds->N + i] = (uint8_t)!miss;
        }
        for (size_t p = 0; p < ds->P; p++) ds->u[(ds->total_bins + t) * ds->P + p] = u[t * ldu + p];
        ds->selected[ds->total_bins + t] = 1;
    }
    ds->len[ds->n_trials] = n_bins;
    ds->start[ds->n_trials] = ds->total_bins;
    ds->n_trials++;
    ds->total_bins = total;
    ds->n_selected += n_bins;
    return DISRNN_OK;
}

int disrnn_dataset_dims(const disrnn_dataset_t *ds, size_t *n_obs, size_t *n_inputs, int *kind)
{
    if (!ds) return DISRNN_ERR_INVALID_ARG;
    if (n_obs) *n_obs = ds->N;
    if (n_inputs) *n_inputs = ds->P;
    if (kind) *kind = ds->kind;
    return DISRNN_OK;
}

size_t disrnn_dataset_num_trials(const disrnn_dataset_t *ds) { return ds ? ds->n_trials : 0; }

size_t disrnn_dataset_trial_length(const disrnn_dataset_t *ds, size_t trial)
{
    return (ds && trial < ds->n_trials) ? ds->len[trial] : 0;
}

size_t disrnn_dataset_num_selected(const disrnn_dataset_t *ds) { return ds ? ds->n_selected : 0; }

/* Bins t < skip of every trial are not samples (the first L under drop padding). */
static size_t skip_of(const disrnn_model_t *m) { return m->spec.padding == DISRNN_PAD_DROP ? m->spec.L : 0; }

size_t disrnn_dataset_num_samples(const disrnn_dataset_t *ds, const disrnn_model_t *model)
{
    size_t skip, n = 0;
    if (!ds || !model) return 0;
    skip = skip_of(model);
    if (skip == 0) return ds->n_selected;
    for (size_t r = 0; r < ds->n_trials; r++)
        for (size_t t = skip; t < ds->len[r]; t++) n += ds->selected[ds->start[r] + t];
    return n;
}

int disrnn_dataset_sample_index(const disrnn_dataset_t *ds, const disrnn_model_t *model, size_t *trial, size_t *bin,
                                size_t len)
{
    size_t skip, S, j = 0;
    if (!ds) return DISRNN_ERR_INVALID_ARG;
    if (!model) return disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG, "The model is NULL.");
    S = disrnn_dataset_num_samples(ds, model);
    if ((trial || bin) && len < S)
        return disrnn__fail(&ds->base, DISRNN_ERR_BUFFER_TOO_SMALL,
                            "The index arrays hold %zu entries but the model sees %zu samples.", len, S);
    skip = skip_of(model);
    for (size_t r = 0; r < ds->n_trials; r++)
        for (size_t t = skip; t < ds->len[r]; t++) {
            if (!ds->selected[ds->start[r] + t]) continue;
            if (trial) trial[j] = r;
            if (bin) bin[j] = t;
            j++;
        }
    return DISRNN_OK;
}

/* A new dataset with the trials listed (all when list is NULL), storage sized exactly, selection
 * copied from the source. */
static int copy_trials(const disrnn_dataset_t *ds, const size_t *list, size_t n, disrnn_dataset_t **out)
{
    disrnn_dataset_t *d = NULL;
    grow_plan g;
    size_t bins = 0;
    int rc;
    for (size_t k = 0; k < n; k++) bins += ds->len[list ? list[k] : k];
    rc = dataset_new(&d, ds->N, ds->P, ds->kind, &ds->base.al);
    if (rc != DISRNN_OK) return rc;
    rc = plan_grow(d, n, bins, ds->mask != NULL, &g);
    if (rc != DISRNN_OK) {
        disrnn_dataset_free(d);
        return rc;
    }
    /* plan_grow rounds capacities up; exact sizes are not needed for correctness */
    plan_commit(d, &g);
    for (size_t k = 0; k < n; k++) {
        const size_t r = list ? list[k] : k, s0 = ds->start[r], T = ds->len[r], b0 = d->total_bins;
        memcpy(d->x + b0 * d->N, ds->x + s0 * ds->N, T * ds->N * sizeof(double));
        if (ds->P) memcpy(d->u + b0 * d->P, ds->u + s0 * ds->P, T * ds->P * sizeof(double));
        if (ds->mask) memcpy(d->mask + b0 * d->N, ds->mask + s0 * ds->N, T * ds->N);
        memcpy(d->selected + b0, ds->selected + s0, T);
        for (size_t t = 0; t < T; t++) d->n_selected += ds->selected[s0 + t];
        d->len[k] = T;
        d->start[k] = b0;
        d->total_bins += T;
    }
    d->n_trials = n;
    *out = d;
    return DISRNN_OK;
}

int disrnn_dataset_subset_trials(const disrnn_dataset_t *ds, const size_t *trials, size_t n, disrnn_dataset_t **out)
{
    uint8_t *seen;
    int rc;
    if (out) *out = NULL;
    if (!ds) return DISRNN_ERR_INVALID_ARG;
    if (!out || !trials || n < 1)
        return disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG, "subset_trials needs an output, indices and n >= 1.");
    seen = (uint8_t *)disrnn__calloc(&ds->base.al, ds->n_trials ? ds->n_trials : 1, 1);
    if (!seen) return disrnn__fail(&ds->base, DISRNN_ERR_NOMEM, "Out of memory checking the trial indices.");
    for (size_t k = 0; k < n; k++) {
        if (trials[k] >= ds->n_trials || seen[trials[k]]) {
            const int bad = trials[k] >= ds->n_trials;
            disrnn__free(&ds->base.al, seen);
            return bad ? disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG, "Trial index %zu (entry %zu) is out of range (%zu trials).",
                                      trials[k], k, ds->n_trials)
                       : disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG, "Trial %zu is listed twice.", trials[k]);
        }
        seen[trials[k]] = 1;
    }
    disrnn__free(&ds->base.al, seen);
    rc = copy_trials(ds, trials, n, out);
    if (rc != DISRNN_OK) return disrnn__fail(&ds->base, rc, "Out of memory copying %zu trials.", n);
    return DISRNN_OK;
}

int disrnn_dataset_subset_interleaved(const disrnn_dataset_t *ds, size_t period, size_t phase, disrnn_dataset_t **out)
{
    disrnn_dataset_t *d;
    int rc;
    if (out) *out = NULL;
    if (!ds) return DISRNN_ERR_INVALID_ARG;
    if (!out || period < 1 || phase >= period)
        return disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG,
                            "subset_interleaved needs an output, period >= 1 and phase < period (got %zu, %zu).", period, phase);
    rc = copy_trials(ds, NULL, ds->n_trials, &d);
    if (rc != DISRNN_OK) return disrnn__fail(&ds->base, rc, "Out of memory copying the dataset.");
    /* the split refines the source's selection, so splits of splits compose */
    d->n_selected = 0;
    for (size_t r = 0; r < d->n_trials; r++)
        for (size_t t = 0; t < d->len[r]; t++) {
            uint8_t *s = &d->selected[d->start[r] + t];
            *s = (uint8_t)(*s && t % period == phase);
            d->n_selected += *s;
        }
    *out = d;
    return DISRNN_OK;
}

int disrnn_dataset_subset_bins(const disrnn_dataset_t *ds, const size_t *trial, const size_t *bin, size_t n,
                               disrnn_dataset_t **out)
{
    disrnn_dataset_t *d;
    int rc;
    if (out) *out = NULL;
    if (!ds) return DISRNN_ERR_INVALID_ARG;
    if (!out || !trial || !bin || n < 1)
        return disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG, "subset_bins needs an output, trial and bin indices and n >= 1.");
    for (size_t k = 0; k < n; k++) {
        if (trial[k] >= ds->n_trials)
            return disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG, "Trial index %zu (entry %zu) is out of range (%zu trials).",
                                trial[k], k, ds->n_trials);
        if (bin[k] >= ds->len[trial[k]])
            return disrnn__fail(&ds->base, DISRNN_ERR_INVALID_ARG, "Bin %zu (entry %zu) is beyond trial %zu's %zu bins.",
                                bin[k], k, trial[k], ds->len[trial[k]]);
    }
    rc = copy_trials(ds, NULL, ds->n_trials, &d);
    if (rc != DISRNN_OK) return disrnn__fail(&ds->base, rc, "Out of memory copying the dataset.");
    memset(d->selected, 0, d->total_bins);
    d->n_selected = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t *s = &d->selected[d->start[trial[k]] + bin[k]];
        d->n_selected += (size_t)(*s == 0);
        *s = 1;
    }
    *out = d;
    return DISRNN_OK;
}
