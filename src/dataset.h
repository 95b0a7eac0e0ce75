/* Internal view of datasets and of the samples a model sees in them. */
#ifndef DISRNN_DATASET_H
#define DISRNN_DATASET_H

#include "model.h"

struct disrnn_dataset {
    disrnn__base base;
    size_t N, P;
    int kind;
    size_t n_trials, cap_trials;
    size_t *len;       /* T_r */
    size_t *start;     /* first bin of trial r in the storage */
    size_t total_bins, cap_bins;
    double *x;         /* N x total_bins; missing entries hold 0 */
    double *u;         /* P x total_bins, NULL when P = 0 */
    uint8_t *mask;     /* N x total_bins, 1 = observed; NULL while every entry is observed */
    uint8_t *selected; /* total_bins flags */
    size_t n_selected;
};

/** The samples of a dataset for a model, gathered contiguously once. Column j is sample j. */
typedef struct disrnn__samples {
    size_t S, N, P;
    double *x;      /* N x S targets */
    double *h;      /* N x S encoder inputs (history through the model's kernel and padding;
                       missing history entries count as sigma(0) = 0) */
    double *u;      /* P x S inputs, NULL when P = 0 */
    uint8_t *mask;  /* N x S, NULL when every entry is observed */
    size_t *trial;  /* S trial indices */
    size_t *bin;    /* S bin indices */
} disrnn__samples;

/** Build the samples of ds for model m (checks N, P and, for Poisson, that the data are counts). */
int disrnn__samples_build(const disrnn_dataset_t *ds, const disrnn_model_t *m, const disrnn__allocator *al,
                          disrnn__samples *out, const disrnn__base *err);
void disrnn__samples_free(const disrnn__allocator *al, disrnn__samples *s);

#endif
