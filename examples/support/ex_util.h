/* Support code shared by the example programs: a small random generator, argument parsing,
 * progress display, CSV/text output, gnuplot figures and the synthetic Lorenz + Thomas data of
 * the paper. It uses only the public header; none of it is part of the library. */
#ifndef EX_UTIL_H
#define EX_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "disrnn.h"

/* ---------------------------------------------------------------- random numbers */
/** xoshiro256** state (the examples' own generator, independent of the library's). */
typedef struct ex_rng {
    uint64_t s[4];
    int has_spare;
    double spare;
} ex_rng;
void ex_rng_seed(ex_rng *r, uint64_t seed);
/** Uniform in [0, 1). */
double ex_rng_uniform(ex_rng *r);
/** Standard normal (polar Box-Muller). */
double ex_rng_normal(ex_rng *r);
/** Poisson draw with mean lambda >= 0. */
double ex_rng_poisson(ex_rng *r, double lambda);

/* ---------------------------------------------------------------- memory and time */
/** malloc that exits the program with a message on failure (acceptable in an example). */
void *ex_xmalloc(size_t n);
/** n zeroed doubles (exits on failure). */
double *ex_doubles(size_t n);
/** Monotonic wall-clock seconds. */
double ex_now(void);

/* ---------------------------------------------------------------- arguments */
/** Parse an integer in [lo, hi]; returns 0 on success, -1 (with a message) otherwise. */
int ex_parse_long(const char *flag, const char *s, long lo, long hi, long *out);
/** Parse a finite real in [lo, hi]. */
int ex_parse_double(const char *flag, const char *s, double lo, double hi, double *out);
/** Parse a comma-separated list of positive sizes ("2,3"); at most cap values. */
int ex_parse_sizes(const char *flag, const char *s, size_t *out, size_t cap, size_t *n);
/** Value of a flag that needs one: argv[*i + 1], advancing *i; NULL (with a message) if missing. */
const char *ex_flag_value(int argc, char **argv, int *i);

/* ---------------------------------------------------------------- status checks */
/** Print "context: status (message)" to stderr and exit(1) when status < 0. */
void ex_check(int status, const char *context, const char *message);

/* ---------------------------------------------------------------- progress */
/** Progress state for one fit: draws a bar on stderr when it is a terminal, prints a one-line
 *  summary per fit otherwise, and records the training curve (one row per epoch). */
typedef struct ex_progress {
    char label[96];
    int64_t total_epochs;
    int tty;
    int quiet;
    double last_draw;
    size_t n_rows, cap_rows;
    double *rows; /* per epoch: epoch, loss, nll, kl, pc, bd, val_loss, elapsed */
} ex_progress;
#define EX_CURVE_COLS 8
void ex_progress_init(ex_progress *p, const char *label, int64_t total_epochs, int quiet);
/** The trainer's progress callback (user_data = ex_progress *). */
int ex_progress_cb(int64_t epoch, int64_t step, const double *terms, size_t n_terms, double val_loss,
                   double elapsed, void *user_data);
/** Finish the display with the status of the fit and its duration. */
void ex_progress_finish(ex_progress *p, int status, double seconds);
/** Write the recorded curve as CSV (epoch,loss,nll,kl,pc,bd,val_loss,seconds). */
int ex_progress_write_curve(const ex_progress *p, const char *path);
void ex_progress_free(ex_progress *p);

/* ---------------------------------------------------------------- files */
/** mkdir -p. Returns 0 or -1 (with a message). */
int ex_mkdir_p(const char *dir);
/** dir/name into buf (exits if it does not fit). Returns buf. */
char *ex_join(char *buf, size_t cap, const char *dir, const char *name);
/** Write `n_lines` lines of `per_line` values: line j holds data[j * ld + 0 .. per_line - 1]
 *  (a bin-major block written one bin per line). header may be NULL. */
int ex_write_lines_csv(const char *path, const char *header, size_t per_line, size_t n_lines,
                       const double *data, size_t ld);
/** Write a column-major rows x cols matrix as whitespace-separated text, one row per line (the
 *  layout gnuplot's `matrix` reads). */
int ex_write_matrix_txt(const char *path, size_t rows, size_t cols, const double *data, size_t ld);
/** Write a bin-major block as a float64 NPY of shape [n_lines, per_line] (C order). */
int ex_write_npy2(const char *path, size_t n_lines, size_t per_line, const double *data);

/* ---------------------------------------------------------------- gnuplot */
/** 1 when `gnuplot` is on the PATH (checked once). */
int ex_have_gnuplot(void);
/** Run gnuplot on a script file; returns 0 on success. */
int ex_run_gnuplot(const char *script);
/** The terminal line for PNG output ("pngcairo" when available, else "png"). */
const char *ex_png_terminal(void);
/** Write (and run, when gnuplot exists) a script drawing heat maps of the given matrix text
 *  files side by side into png. Returns 1 when the PNG was made, 0 when only the script was
 *  written, -1 on error. */
int ex_plot_heatmaps(const char *script, const char *png, const char *title, size_t n,
                     const char *const *files, const char *const *titles);

/* ---------------------------------------------------------------- statistics and table */
void ex_mean_sd(const double *v, size_t n, double *mean, double *sd);
/** Print "mean +- sd" (or "NA") into buf, width w. */
void ex_fmt_mean_sd(char *buf, size_t cap, const double *v, size_t n, int decimals);

/* ---------------------------------------------------------------- synthetic data (paper 4.1) */
/** The paper's synthetic data: Lorenz + Thomas latents (K = 6, groups (3,3)), a fitted
 *  ground-truth low-rank network (A N x K, B K x N, c, d) and observations x = A z + c + noise. */
typedef struct ex_synth {
    size_t T, N, K;
    double *z;      /* K x T true latents, bin-major, each dimension z-scored */
    double *x;      /* N x T observations, bin-major */
    double *A;      /* N x K, column-major */
    double *B;      /* K x N, column-major */
    double *c;      /* N */
    double *d;      /* K */
    double fit_r2;  /* one-step R^2 of the fitted network on the true latents */
    double fit_seconds;
} ex_synth;
/** Integrate the attractors, fit the ground-truth network (fit_iters Adam steps) and draw the
 *  observations. Deterministic in seed. Returns 0 or -1. */
int ex_synth_make(ex_synth *s, uint64_t seed, size_t n_obs, size_t fit_iters, double obs_noise);
void ex_synth_free(ex_synth *s);
/** Thomas system parameters used by ex_attractors (process-wide setting of the examples):
 *  b, and classic = 1 for dx = sin y - b x instead of MODEL.md's dx = -sin y - b x. Default
 *  b = 0, MODEL.md's form. */
void ex_thomas_params(double b, int classic);
/** Raw (not z-scored) Lorenz and Thomas trajectories: out is 6 x T bin-major. */
void ex_attractors(size_t T, double dt, double *out);

#endif
