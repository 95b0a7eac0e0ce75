/* Adam / AdamW steps with PyTorch semantics, gradient clipping and learning-rate schedules. */
#ifndef DISRNN_OPTIMIZER_H
#define DISRNN_OPTIMIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct disrnn__adam {
    int adamw;
    double lr, beta1, beta2, eps, weight_decay;
} disrnn__adam;

/** One step on n parameters: moments m, v updated, step is the new (1-based) step count. */
void disrnn__adam_step(const disrnn__adam *o, size_t n, double *theta, const double *grad, double *m, double *v,
                       int64_t step);
/** Global 2-norm of g. */
double disrnn__grad_norm(const double *g, size_t n);
/** Scale factor PyTorch's clip_grad_norm_ applies (1 when no clipping). */
double disrnn__clip_scale(double norm, double max_norm);
/** Learning rate of an epoch (0-based) under a schedule. */
double disrnn__schedule_lr(int schedule, double lr, double gamma, double lr_min, int64_t epoch, int64_t epochs);

#endif
