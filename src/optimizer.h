/* Adam / AdamW steps with PyTorch semantics, gradient clipping and learning-rate schedules. */
#ifndef DISRNN_OPTIMIZER_H
#define DISRNN_OPTIMIZER_H

#include <stddef.h>
#include <stdint.h>

#include "threads.h"

typedef struct disrnn__adam {
    int adamw;
    double lr, beta1, beta2, eps, weight_decay;
} disrnn__adam;

/** One step on n parameters, in place: moments m, v updated, step is the new (1-based) step count. */
void disrnn__adam_step(const disrnn__adam *o, size_t n, double *theta, const double *grad, double *m, double *v,
                       int64_t step);
/** The same step out of place: the new parameters go to theta_new and the new moments to m_out
 *  and v_out; theta, m and v are only read. All seven arrays must be distinct. Returns 1 when every
 *  new parameter and moment is finite, 0 otherwise (the caller then keeps theta, m and v as they
 *  are). One pass over the arrays, vectorised, in tasks of a fixed size run on pool (NULL: the
 *  calling thread); every value is computed alone, so threads change no bit. */
int disrnn__adam_update(const disrnn__adam *o, disrnn__pool *pool, size_t n, const double *theta, double *theta_new,
                        const double *grad, const double *m, const double *v, double *m_out, double *v_out,
                        int64_t step);
/** 1 when this CPU's update takes the divider-free step (src/optimizer.c; AVX2 + FMA or AVX-512
 *  copies, when eps sqrt(1 - beta2^step) >= 2^-400), 0 when it takes PyTorch's exact formula. */
int disrnn__adam_divider_free(void);
/** Global 2-norm of g. */
double disrnn__grad_norm(const double *g, size_t n);
/** Scale factor PyTorch's clip_grad_norm_ applies (1 when no clipping). */
double disrnn__clip_scale(double norm, double max_norm);
/** Learning rate of an epoch (0-based) under a schedule. */
double disrnn__schedule_lr(int schedule, double lr, double gamma, double lr_min, int64_t epoch, int64_t epochs);

#endif
