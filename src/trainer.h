/* Private view of trainers, shared by trainer.c and checkpoint.c. */
#ifndef DISRNN_TRAINER_H
#define DISRNN_TRAINER_H

#include "dataset.h"
#include "optimizer.h"
#include "threads.h"

#define DISRNN__NUM_TRAIN_OPTIONS 18
/* Options a checkpoint saves: all but DISRNN_TRAIN_THREADS (the last), a property of the machine
 * a run is on rather than of the fit. */
#define DISRNN__NUM_SAVED_TRAIN_OPTIONS 17

/** Settings, indexed by disrnn_train_option: integer ones in ival, real ones in dval. */
typedef struct disrnn__train_settings {
    int64_t ival[DISRNN__NUM_TRAIN_OPTIONS];
    double dval[DISRNN__NUM_TRAIN_OPTIONS];
} disrnn__train_settings;

/** Everything a checkpoint restores besides the model and the sample order. */
typedef struct disrnn__train_progress {
    int64_t step, epoch;   /* optimiser steps taken; epochs completed */
    int in_epoch;          /* the order below belongs to epoch `epoch` (0-based), started */
    size_t pos;            /* samples of that order already used */
    double acc[DISRNN__NUM_TERMS]; /* sums of the epoch's batch terms */
    int64_t acc_batches;
    int has_best;
    double best_val;
    int64_t best_epoch, bad_epochs;
} disrnn__train_progress;

struct disrnn_trainer {
    disrnn__base base;
    disrnn_model_t *model;
    const disrnn_dataset_t *train, *val;
    uint64_t seed;
    disrnn__rng rng;
    disrnn__train_settings set;
    disrnn__train_progress pr;
    disrnn_progress_fn progress_fn;
    void *progress_ud;

    disrnn__samples tr_s, val_s; /* prepared once (create, set_validation) */
    int has_val;
    size_t *order;               /* tr_s.S sample indices of the current epoch */

    size_t n;                    /* learned parameters */
    double *m, *v;               /* Adam moments */
    double *best_theta;          /* parameters of the best validation epoch */
    double *grad, *theta_new, *m_new, *v_new; /* step workspace: the new parameters and moments, which
                                                 take the place of the model's parameters and of m and
                                                 v by exchange of arrays when the step succeeds */

    disrnn__pool *pool;          /* DISRNN_TRAIN_THREADS - 1 workers, or NULL for one thread */

    size_t cap;                  /* columns of the batch workspace */
    double *bx, *bh, *bu, *beps;
    uint8_t *bmask;
};

/** Bounds check of one setting (shared with checkpoint loading). */
int disrnn__train_setting_ok(int option, int is_int, double value);
/** Grow the batch workspace for a batch size (training and validation); no other change. */
int disrnn__trainer_reserve(disrnn_trainer_t *tr, size_t batch);

#endif
