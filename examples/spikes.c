/* spikes: the spike-data workflow with the public libdisrnn API.
 *
 *   spike events (trial, channel, time)  ->  bin into counts  ->  split trials into train/test
 *   ->  fit a Poisson DisRNN and a Poisson lrRNN  ->  held-out bits per spike, k-step prediction,
 *   latent trajectories per condition, sub-connectivities  ->  NPY/CSV files and figures.
 *
 * With no arguments it makes its own data, so it runs anywhere: Poisson spikes drawn from a
 * ground-truth DisRNN (2 conditions x 40 trials, N = 30, K = 4 in groups (2, 2)), written as a
 * spike-event CSV and read back like a user's file. Give a CSV of `trial,channel,time` rows (and
 * optionally --trials with per-trial windows and conditions), or an NPY of binned counts, to fit
 * your own recordings. `spikes --help` lists the flags; docs/examples.md describes the outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disrnn.h"
#include "ex_util.h"

#define MAX_G 16
/* Input scale of the built-in ground truth; the fits use it too, so the model class contains the truth. */
#define BUILTIN_KAPPA 4.0

typedef struct options {
    const char *csv, *trials, *npy, *lengths, *conditions, *out;
    int layout_rtn;      /* NPY layout [R, T, N] instead of [R, N, T] */
    int zscore;          /* z-score each channel with training-trial statistics (Gaussian only) */
    int split_bins;      /* even bins train, odd bins test, in every trial */
    int cond_per_trial;  /* every trial is its own condition */
    int gaussian;        /* Gaussian observation model (rates) instead of Poisson */
    double bin, smooth, beta, lr, kappa;
    size_t groups[MAX_G], n_groups;
    long epochs, test_every, kmax, seed, batch;
    int quiet, figures;
} options;

/* Binned data: trials of N x T_r bins, bin-major, one after another. */
typedef struct binned {
    size_t R, N;
    size_t *T;      /* R lengths */
    size_t *off;    /* R offsets into x (in bins) */
    double *x;      /* N x sum(T) */
    int *cond;      /* R conditions */
    double *z_true; /* K_true x sum(T) true latents (built-in data only) or NULL */
    size_t K_true;
    size_t true_groups[MAX_G], n_true_groups;
} binned;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: spikes [options] [SPIKES.csv]\n"
            "  SPIKES.csv           spike events, rows trial,channel,time (header line optional)\n"
            "  --trials FILE        CSV with a header naming columns: trial (required), condition,\n"
            "                       start (or t_start), stop (or t_stop) or length (or length_ms);\n"
            "                       windows are [start, stop) in the spike file's time unit\n"
            "  --bin W              bin width in the spike file's time unit (default 20)\n"
            "  --npy FILE           binned data instead of events: [trials, channels, bins] (or with\n"
            "                       --layout rtn [trials, bins, channels]; a 2-D array is one trial [bins, channels])\n"
            "  --layout rnt|rtn     layout of --npy (default rnt)\n"
            "  --lengths FILE       NPY of bins per trial (ragged trials zero-padded in --npy)\n"
            "  --conditions FILE    NPY of one integer condition per trial\n"
            "  --condition-per-trial  every trial is its own condition (e.g. trial-averaged data)\n"
            "  --obs poisson|gaussian  observation model (default poisson; gaussian for rates)\n"
            "  --zscore             z-score each channel with the training trials' mean and sd\n"
            "                       (continuous data; implies --obs gaussian)\n"
            "  --smooth S           Gaussian smoothing of the binned data, S bins (implies --obs gaussian)\n"
            "  --groups H1,H2,...   DisRNN latent groups (default 2,2; the lrRNN uses K = sum)\n"
            "  --kappa X            encoder input scale: tanh(x / kappa) (default: the largest training\n"
            "                       count for spikes, 1 for continuous data, 4 (the truth's) for the built-in data)\n"
            "  --beta X             PC weight of the DisRNN (default 2, the paper's monkey setting)\n"
            "  --epochs N           training epochs (default 300)\n"
            "  --lr X               learning rate (default 1e-3)\n"
            "  --batch N            minibatch size (default 128)\n"
            "  --split trials|bins  hold out whole trials (default) or, in every trial, the odd bins\n"
            "                       (even bins train; for few trials such as condition averages)\n"
            "  --test-every K       with --split trials: trial r is a test trial when r %% K == K - 1 (default 4)\n"
            "  --kstep K            k-step prediction horizon (default 5)\n"
            "  --seed N             seed of data, models and trainers (default 1)\n"
            "  --no-figures         no gnuplot scripts or PNG files\n"
            "  --out DIR            output folder (default out/spikes)\n"
            "  --quiet              no progress output\n"
            "  --help               this text\n");
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->bin = 20.0;
    o->beta = 2.0;
    o->lr = 1e-3;
    o->groups[0] = o->groups[1] = 2;
    o->n_groups = 2;
    o->epochs = 300;
    o->test_every = 4;
    o->kmax = 5;
    o->seed = 1;
    o->batch = 128;
    o->out = "out/spikes";
    o->figures = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if (strcmp(a, "--no-figures") == 0) {
            o->figures = 0;
        } else if (strcmp(a, "--zscore") == 0) {
            o->zscore = 1;
        } else if (strcmp(a, "--condition-per-trial") == 0) {
            o->cond_per_trial = 1;
        } else if (a[0] != '-' || a[1] == '\0') {
            if (o->csv) {
                fprintf(stderr, "only one spike file may be given\n");
                return -1;
            }
            o->csv = a;
        } else if (!(v = ex_flag_value(argc, argv, &i))) {
            return -1;
        } else if (strcmp(a, "--trials") == 0) {
            o->trials = v;
        } else if (strcmp(a, "--npy") == 0) {
            o->npy = v;
        } else if (strcmp(a, "--lengths") == 0) {
            o->lengths = v;
        } else if (strcmp(a, "--conditions") == 0) {
            o->conditions = v;
        } else if (strcmp(a, "--out") == 0) {
            o->out = v;
        } else if (strcmp(a, "--split") == 0) {
            if (strcmp(v, "trials") == 0)
                o->split_bins = 0;
            else if (strcmp(v, "bins") == 0)
                o->split_bins = 1;
            else {
                fprintf(stderr, "--split: expected trials or bins\n");
                return -1;
            }
        } else if (strcmp(a, "--layout") == 0) {
            if (strcmp(v, "rnt") == 0)
                o->layout_rtn = 0;
            else if (strcmp(v, "rtn") == 0)
                o->layout_rtn = 1;
            else {
                fprintf(stderr, "--layout: expected rnt or rtn\n");
                return -1;
            }
        } else if (strcmp(a, "--obs") == 0) {
            if (strcmp(v, "poisson") == 0)
                o->gaussian = 0;
            else if (strcmp(v, "gaussian") == 0)
                o->gaussian = 1;
            else {
                fprintf(stderr, "--obs: expected poisson or gaussian\n");
                return -1;
            }
        } else if (strcmp(a, "--bin") == 0) {
            if (ex_parse_double(a, v, 1e-12, 1e12, &o->bin)) return -1;
        } else if (strcmp(a, "--smooth") == 0) {
            if (ex_parse_double(a, v, 1e-3, 1e6, &o->smooth)) return -1;
            o->gaussian = 1;
        } else if (strcmp(a, "--kappa") == 0) {
            if (ex_parse_double(a, v, 1e-6, 1e9, &o->kappa)) return -1;
        } else if (strcmp(a, "--beta") == 0) {
            if (ex_parse_double(a, v, 0.0, 1e6, &o->beta)) return -1;
        } else if (strcmp(a, "--lr") == 0) {
            if (ex_parse_double(a, v, 1e-8, 10.0, &o->lr)) return -1;
        } else if (strcmp(a, "--groups") == 0) {
            if (ex_parse_sizes(a, v, o->groups, MAX_G, &o->n_groups)) return -1;
        } else if (strcmp(a, "--epochs") == 0) {
            if (ex_parse_long(a, v, 1, 10000000, &o->epochs)) return -1;
        } else if (strcmp(a, "--batch") == 0) {
            if (ex_parse_long(a, v, 2, 100000, &o->batch)) return -1;
        } else if (strcmp(a, "--test-every") == 0) {
            if (ex_parse_long(a, v, 2, 1000000, &o->test_every)) return -1;
        } else if (strcmp(a, "--kstep") == 0) {
            if (ex_parse_long(a, v, 1, 1000, &o->kmax)) return -1;
        } else if (strcmp(a, "--seed") == 0) {
            if (ex_parse_long(a, v, 0, 2147483647L, &o->seed)) return -1;
        } else {
            fprintf(stderr, "unknown option %s\n", a);
            usage(stderr);
            return -1;
        }
    }
    if (o->zscore) o->gaussian = 1;
    if (o->csv && o->npy) {
        fprintf(stderr, "give either a spike CSV or --npy, not both\n");
        return -1;
    }
    return 0;
}

static void binned_alloc(binned *b, size_t R, size_t N, const size_t *T)
{
    memset(b, 0, sizeof *b);
    b->R = R;
    b->N = N;
    b->T = ex_xmalloc(R * sizeof(size_t));
    b->off = ex_xmalloc(R * sizeof(size_t));
    b->cond = ex_xmalloc(R * sizeof(int));
    size_t tot = 0;
    for (size_t r = 0; r < R; r++) {
        b->T[r] = T[r];
        b->off[r] = tot;
        b->cond[r] = 0;
        tot += T[r];
    }
    b->x = ex_doubles(N * tot);
}

static size_t binned_total(const binned *b) { return b->R ? b->off[b->R - 1] + b->T[b->R - 1] : 0; }

static void binned_free(binned *b)
{
    free(b->T);
    free(b->off);
    free(b->x);
    free(b->cond);
    free(b->z_true);
}

/* ---------------------------------------------------------------- built-in ground truth */

/* Solve the symmetric positive definite system S w = y (n x n, column-major) by Cholesky, in place. */
static int chol_solve(size_t n, double *S, double *y)
{
    for (size_t j = 0; j < n; j++) {
        double s = S[j + j * n];
        for (size_t k = 0; k < j; k++) s -= S[j + k * n] * S[j + k * n];
        if (!(s > 0.0)) return -1;
        S[j + j * n] = sqrt(s);
        for (size_t i = j + 1; i < n; i++) {
            double t = S[i + j * n];
            for (size_t k = 0; k < j; k++) t -= S[i + k * n] * S[j + k * n];
            S[i + j * n] = t / S[j + j * n];
        }
    }
    for (size_t i = 0; i < n; i++) {
        double t = y[i];
        for (size_t k = 0; k < i; k++) t -= S[i + k * n] * y[k];
        y[i] = t / S[i + i * n];
    }
    for (size_t ii = n; ii-- > 0;) {
        double t = y[ii];
        for (size_t k = ii + 1; k < n; k++) t -= S[k + ii * n] * y[k];
        y[ii] = t / S[ii + ii * n];
    }
    return 0;
}

static double softplus(double v) { return v > 30.0 ? v : log1p(exp(v)); }

/* A ground-truth Poisson DisRNN whose two latent groups are noisy rotations: the decoder A, c is
 * drawn at random, and the encoder B, d is fitted by ridge regression so that
 * B tanh(x / kappa) + d ~ R z for Poisson counts x of rate softplus(A z + c), with R a
 * block-diagonal pair of slowly decaying rotations, then scaled up (see below). */
static disrnn_model_t *make_truth(uint64_t seed, size_t N, double kappa)
{
    const size_t K = 4, n_fit = 20000;
    const size_t groups[2] = {2, 2};
    const double angle[2] = {0.25, 0.45}, radius = 0.985;
    ex_rng rng;
    ex_rng_seed(&rng, seed * 7919u + 17u);
    double *A = ex_doubles(N * K), *c = ex_doubles(N), *B = ex_doubles(K * N), *d = ex_doubles(K);
    for (size_t i = 0; i < N * K; i++) A[i] = ex_rng_normal(&rng);
    for (size_t i = 0; i < N; i++) c[i] = 0.5 + 0.5 * ex_rng_uniform(&rng);

    const size_t P = N + 1;
    double *S = ex_doubles(P * P), *Y = ex_doubles(P * K), *h = ex_doubles(P);
    double z[4], target[4];
    for (size_t s = 0; s < n_fit; s++) {
        for (size_t k = 0; k < K; k++) z[k] = 1.5 * ex_rng_normal(&rng);
        for (size_t n = 0; n < N; n++) {
            double eta = c[n];
            for (size_t k = 0; k < K; k++) eta += A[n + k * N] * z[k];
            h[n] = tanh(ex_rng_poisson(&rng, softplus(eta)) / kappa);
        }
        h[N] = 1.0;
        for (size_t g = 0; g < 2; g++) {
            const double ca = radius * cos(angle[g]), sa = radius * sin(angle[g]);
            target[2 * g] = ca * z[2 * g] - sa * z[2 * g + 1];
            target[2 * g + 1] = sa * z[2 * g] + ca * z[2 * g + 1];
        }
        for (size_t i = 0; i < P; i++) {
            for (size_t j = 0; j <= i; j++) S[i + j * P] += h[i] * h[j];
            for (size_t k = 0; k < K; k++) Y[i + k * P] += h[i] * target[k];
        }
    }
    for (size_t i = 0; i < P; i++)
        for (size_t j = 0; j < i; j++) S[j + i * P] = S[i + j * P];
    for (size_t i = 0; i < N; i++) S[i + i * P] += 1e-3 * (double)n_fit;
    double *Sw = ex_doubles(P * P);
    for (size_t k = 0; k < K; k++) {
        memcpy(Sw, S, P * P * sizeof(double));
        if (chol_solve(P, Sw, Y + k * P)) {
            fprintf(stderr, "ground truth: regression failed\n");
            exit(1);
        }
        /* Regression on noisy counts shrinks the map towards its mean, so the rotations would die
         * out within a few bins; a gain of 1.5 undoes most of that and keeps the two conditions
         * apart for most of a 50-bin trial. */
        const double gain = 1.5;
        for (size_t n = 0; n < N; n++) B[k + n * K] = gain * Y[n + k * P];
        d[k] = gain * Y[N + k * P];
    }

    disrnn_config_t *cfg = NULL;
    disrnn_model_t *m = NULL;
    ex_check(disrnn_config_create(&cfg, N, K), "disrnn_config_create", NULL);
    ex_check(disrnn_config_set_groups(cfg, groups, 2), "disrnn_config_set_groups", disrnn_config_last_error(cfg));
    ex_check(disrnn_config_set_int(cfg, DISRNN_OPT_OBS, DISRNN_OBS_POISSON_SOFTPLUS), "disrnn_config_set_int",
             disrnn_config_last_error(cfg));
    ex_check(disrnn_config_set_double(cfg, DISRNN_OPT_KAPPA, kappa), "disrnn_config_set_double",
             disrnn_config_last_error(cfg));
    ex_check(disrnn_model_create(&m, cfg), "disrnn_model_create", disrnn_config_last_error(cfg));
    disrnn_config_free(cfg);
    ex_check(disrnn_model_set_param(m, DISRNN_BLOCK_A, A, N * K), "set A", disrnn_model_last_error(m));
    ex_check(disrnn_model_set_param(m, DISRNN_BLOCK_B, B, K * N), "set B", disrnn_model_last_error(m));
    ex_check(disrnn_model_set_param(m, DISRNN_BLOCK_BIAS_C, c, N), "set c", disrnn_model_last_error(m));
    ex_check(disrnn_model_set_param(m, DISRNN_BLOCK_BIAS_D, d, K), "set d", disrnn_model_last_error(m));
    free(A);
    free(c);
    free(B);
    free(d);
    free(S);
    free(Y);
    free(h);
    free(Sw);
    return m;
}

/* Draw the built-in data set from the ground truth and write it as a spike-event CSV plus a
 * trials CSV, exactly the files a user would bring. */
static void make_builtin(const options *o, char *spikes_csv, char *trials_csv, size_t cap, binned *truth)
{
    const size_t N = 30, K = 4, R = 80, T = 50;
    const double kappa = BUILTIN_KAPPA;
    disrnn_model_t *gt = make_truth((uint64_t)o->seed, N, kappa);
    size_t *Ts = ex_xmalloc(R * sizeof(size_t));
    for (size_t r = 0; r < R; r++) Ts[r] = T;
    binned_alloc(truth, R, N, Ts);
    free(Ts);
    truth->K_true = K;
    truth->n_true_groups = 2;
    truth->true_groups[0] = truth->true_groups[1] = 2;
    truth->z_true = ex_doubles(K * R * T);
    double *A = ex_doubles(N * K), *c = ex_doubles(N), *xinit = ex_doubles(N);
    ex_check(disrnn_model_get_param(gt, DISRNN_BLOCK_A, A, N * K), "get A", disrnn_model_last_error(gt));
    ex_check(disrnn_model_get_param(gt, DISRNN_BLOCK_BIAS_C, c, N), "get c", disrnn_model_last_error(gt));
    ex_rng rng;
    ex_rng_seed(&rng, (uint64_t)o->seed * 31u + 5u);
    for (size_t r = 0; r < R; r++) {
        /* Two conditions set the starting state of the first group (opposite points, plus
         * jitter); the second group starts at a random phase in every trial, so the two groups
         * are independent, as a DisRNN assumes. */
        const int cond = r < R / 2 ? 0 : 1;
        const double sign = cond == 0 ? 1.0 : -1.0;
        const double phase = 6.283185307179586 * ex_rng_uniform(&rng);
        const double z0[4] = {2.5 * sign + 0.3 * ex_rng_normal(&rng), 0.3 * ex_rng_normal(&rng), 2.5 * cos(phase),
                              2.5 * sin(phase)};
        for (size_t n = 0; n < N; n++) {
            double eta = c[n];
            for (size_t k = 0; k < K; k++) eta += A[n + k * N] * z0[k];
            xinit[n] = softplus(eta);
        }
        truth->cond[r] = cond;
        ex_check(disrnn_model_generate(gt, 1, xinit, N, T, NULL, 0, DISRNN_GEN_OBS_NOISE,
                                       (uint64_t)o->seed * 1000003u + r, truth->x + truth->off[r] * N, N,
                                       truth->z_true + truth->off[r] * K, K),
                 "disrnn_model_generate", disrnn_model_last_error(gt));
    }
    free(A);
    free(c);
    free(xinit);
    disrnn_model_free(gt);

    /* Events: each count becomes that many spikes at uniform times inside its bin. */
    ex_join(spikes_csv, cap, o->out, "builtin_spikes.csv");
    ex_join(trials_csv, cap, o->out, "builtin_trials.csv");
    FILE *f = fopen(spikes_csv, "w");
    FILE *g = fopen(trials_csv, "w");
    if (!f || !g) {
        fprintf(stderr, "cannot write %s or %s\n", spikes_csv, trials_csv);
        exit(1);
    }
    fprintf(f, "trial,channel,time\n");
    fprintf(g, "trial,condition,start,stop\n");
    size_t n_spikes = 0;
    for (size_t r = 0; r < R; r++) {
        fprintf(g, "%zu,%d,0,%.6g\n", r, truth->cond[r], o->bin * (double)T);
        for (size_t t = 0; t < T; t++)
            for (size_t n = 0; n < N; n++) {
                const double cnt = truth->x[(truth->off[r] + t) * N + n];
                for (long q = 0; q < (long)cnt; q++) {
                    /* Stay clear of bin edges so text rounding cannot move a spike to the next bin. */
                    const double u = 0.001 + 0.998 * ex_rng_uniform(&rng);
                    fprintf(f, "%zu,%zu,%.6f\n", r, n, o->bin * ((double)t + u));
                    n_spikes++;
                }
            }
    }
    fclose(f);
    fclose(g);
    if (!o->quiet)
        fprintf(stderr, "built-in data: ground-truth Poisson DisRNN (N = %zu, K = %zu, groups (2,2)), %zu trials x %zu "
                        "bins, 2 conditions, %zu spikes\n",
                N, K, R, T, n_spikes);
}

/* ---------------------------------------------------------------- reading */

typedef struct trial_table {
    size_t R;
    double *start, *stop;
    int *cond;
} trial_table;

/* Column index of the first of several names in a CSV header, or -1. */
static int header_column(char **names, int n, const char *const *wanted)
{
    for (const char *const *w = wanted; *w; w++)
        for (int i = 0; i < n; i++)
            if (strcmp(names[i], *w) == 0) return i;
    return -1;
}

static void read_trials_csv(const char *path, trial_table *tt)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    char line[4096];
    if (!fgets(line, sizeof line, f)) {
        fprintf(stderr, "%s: empty file\n", path);
        exit(1);
    }
    char *names[64];
    int nc = 0;
    for (char *tok = strtok(line, ",\r\n"); tok && nc < 64; tok = strtok(NULL, ",\r\n")) names[nc++] = tok;
    static const char *const k_trial[] = {"trial", NULL}, *const k_cond[] = {"condition", "cond", NULL},
                             *const k_start[] = {"start", "t_start", "start_ms", NULL},
                             *const k_stop[] = {"stop", "t_stop", "stop_ms", NULL},
                             *const k_len[] = {"length", "length_ms", "duration", NULL};
    const int ct = header_column(names, nc, k_trial), cc = header_column(names, nc, k_cond),
              cs = header_column(names, nc, k_start), ce = header_column(names, nc, k_stop),
              cl = header_column(names, nc, k_len);
    if (ct < 0 || (ce < 0 && cl < 0)) {
        fprintf(stderr, "%s: the header must name a 'trial' column and a 'stop' or 'length' column\n", path);
        exit(1);
    }
    size_t cap = 64, n = 0;
    double *rows = ex_xmalloc(cap * 4 * sizeof(double));
    size_t max_trial = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '\n' || line[0] == '\r' || line[0] == '\0') continue;
        double vals[64];
        int k = 0;
        char *p = line;
        while (k < 64) {
            char *end = NULL;
            vals[k++] = strtod(p, &end);
            if (end == p) {
                fprintf(stderr, "%s: unreadable row: %s", path, line);
                exit(1);
            }
            p = end;
            if (*p != ',') break;
            p++;
        }
        if (k < nc) {
            fprintf(stderr, "%s: short row: %s", path, line);
            exit(1);
        }
        if (n == cap) {
            cap *= 2;
            double *nr = realloc(rows, cap * 4 * sizeof(double));
            if (!nr) exit(1);
            rows = nr;
        }
        const double tr = vals[ct];
        if (!(tr >= 0.0) || tr != floor(tr) || tr > 1e8) {
            fprintf(stderr, "%s: bad trial index in row: %s", path, line);
            exit(1);
        }
        const double st = cs >= 0 ? vals[cs] : 0.0;
        rows[4 * n] = tr;
        rows[4 * n + 1] = cc >= 0 ? vals[cc] : 0.0;
        rows[4 * n + 2] = st;
        rows[4 * n + 3] = ce >= 0 ? vals[ce] : st + vals[cl];
        if ((size_t)tr > max_trial) max_trial = (size_t)tr;
        n++;
    }
    fclose(f);
    if (n == 0) {
        fprintf(stderr, "%s: no trials\n", path);
        exit(1);
    }
    tt->R = max_trial + 1;
    tt->start = ex_doubles(tt->R);
    tt->stop = ex_doubles(tt->R);
    tt->cond = ex_xmalloc(tt->R * sizeof(int));
    for (size_t r = 0; r < tt->R; r++) {
        tt->start[r] = NAN;
        tt->cond[r] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const size_t r = (size_t)rows[4 * i];
        tt->cond[r] = (int)rows[4 * i + 1];
        tt->start[r] = rows[4 * i + 2];
        tt->stop[r] = rows[4 * i + 3];
    }
    for (size_t r = 0; r < tt->R; r++)
        if (isnan(tt->start[r])) {
            fprintf(stderr, "%s: trial %zu is missing (trials must be numbered 0..R-1)\n", path, r);
            exit(1);
        }
    free(rows);
}

static void read_events(const options *o, const char *csv, const char *trials, binned *b)
{
    char msg[512];
    size_t n_ev = 0;
    int st = disrnn_spikes_read_csv(csv, NULL, NULL, NULL, 0, &n_ev, msg, sizeof msg);
    if (st != DISRNN_OK && st != DISRNN_ERR_BUFFER_TOO_SMALL) ex_check(st, "disrnn_spikes_read_csv", msg);
    int64_t *tr = ex_xmalloc((n_ev ? n_ev : 1) * sizeof(int64_t));
    int64_t *ch = ex_xmalloc((n_ev ? n_ev : 1) * sizeof(int64_t));
    double *tm = ex_doubles(n_ev ? n_ev : 1);
    ex_check(disrnn_spikes_read_csv(csv, tr, ch, tm, n_ev, &n_ev, msg, sizeof msg), "disrnn_spikes_read_csv", msg);

    trial_table tt;
    memset(&tt, 0, sizeof tt);
    size_t N = 0;
    for (size_t i = 0; i < n_ev; i++)
        if (ch[i] >= 0 && (size_t)ch[i] + 1 > N) N = (size_t)ch[i] + 1;
    if (trials) {
        read_trials_csv(trials, &tt);
    } else {
        /* No windows given: each trial runs from 0 to just past its last spike. */
        size_t R = 0;
        for (size_t i = 0; i < n_ev; i++)
            if (tr[i] >= 0 && (size_t)tr[i] + 1 > R) R = (size_t)tr[i] + 1;
        tt.R = R;
        tt.start = ex_doubles(R);
        tt.stop = ex_doubles(R);
        tt.cond = ex_xmalloc((R ? R : 1) * sizeof(int));
        for (size_t r = 0; r < R; r++) {
            tt.stop[r] = o->bin;
            tt.cond[r] = 0;
        }
        for (size_t i = 0; i < n_ev; i++) {
            if (tr[i] < 0) continue;
            const double end = (floor(tm[i] / o->bin) + 1.0) * o->bin;
            if (end > tt.stop[(size_t)tr[i]]) tt.stop[(size_t)tr[i]] = end;
        }
        if (!o->quiet)
            fprintf(stderr, "no --trials file: trial windows inferred as [0, last spike], one condition\n");
    }
    if (tt.R == 0 || N == 0) {
        fprintf(stderr, "%s: no usable events\n", csv);
        exit(1);
    }
    size_t *nb = ex_xmalloc(tt.R * sizeof(size_t));
    size_t total = 0;
    ex_check(disrnn_spikes_num_bins(tt.R, tt.start, tt.stop, o->bin, nb, &total), "disrnn_spikes_num_bins", NULL);
    binned_alloc(b, tt.R, N, nb);
    ex_check(disrnn_spikes_bin(n_ev, tr, ch, tm, tt.R, N, tt.start, tt.stop, o->bin, b->x, N * total),
             "disrnn_spikes_bin", NULL);
    for (size_t r = 0; r < tt.R; r++) b->cond[r] = o->cond_per_trial ? (int)r : tt.cond[r];
    if (!o->quiet)
        fprintf(stderr, "read %zu spikes of %zu channels in %zu trials from %s; %zu bins of width %g\n", n_ev, N, tt.R,
                csv, total, o->bin);
    free(nb);
    free(tr);
    free(ch);
    free(tm);
    free(tt.start);
    free(tt.stop);
    free(tt.cond);
}

static double *read_npy_all(const char *path, size_t *ndim, size_t *shape, size_t *count)
{
    char msg[512];
    int dtype = 0, fortran = 0;
    ex_check(disrnn_npy_info(path, &dtype, ndim, shape, &fortran, msg, sizeof msg), "disrnn_npy_info", msg);
    size_t n = 1;
    for (size_t i = 0; i < *ndim; i++) n *= shape[i];
    double *v = ex_doubles(n ? n : 1);
    ex_check(disrnn_npy_read_f64(path, v, n, 0, msg, sizeof msg), "disrnn_npy_read_f64", msg);
    *count = n;
    return v;
}

static void read_npy_data(const options *o, binned *b)
{
    size_t ndim = 0, shape[DISRNN_NPY_MAX_DIMS], n = 0;
    double *v = read_npy_all(o->npy, &ndim, shape, &n);
    size_t R, N, Tmax;
    if (ndim == 3) {
        R = shape[0];
        N = o->layout_rtn ? shape[2] : shape[1];
        Tmax = o->layout_rtn ? shape[1] : shape[2];
    } else if (ndim == 2) {
        R = 1;
        Tmax = shape[0];
        N = shape[1];
    } else {
        fprintf(stderr, "%s: expected a 2-D or 3-D array\n", o->npy);
        exit(1);
    }
    size_t *T = ex_xmalloc(R * sizeof(size_t));
    for (size_t r = 0; r < R; r++) T[r] = Tmax;
    if (o->lengths) {
        size_t ld = 0, ls[DISRNN_NPY_MAX_DIMS], ln = 0;
        double *len = read_npy_all(o->lengths, &ld, ls, &ln);
        if (ln != R) {
            fprintf(stderr, "%s: expected %zu lengths, found %zu\n", o->lengths, R, ln);
            exit(1);
        }
        for (size_t r = 0; r < R; r++) {
            if (!(len[r] >= 1.0 && len[r] <= (double)Tmax)) {
                fprintf(stderr, "%s: length of trial %zu out of range\n", o->lengths, r);
                exit(1);
            }
            T[r] = (size_t)len[r];
        }
        free(len);
    }
    binned_alloc(b, R, N, T);
    for (size_t r = 0; r < R; r++)
        for (size_t t = 0; t < T[r]; t++)
            for (size_t c = 0; c < N; c++) {
                /* C order: [r, c, t] or [r, t, c]; our trials are bin-major (channels contiguous). */
                const size_t src = ndim == 2 ? t * N + c
                                   : o->layout_rtn ? (r * Tmax + t) * N + c
                                                   : (r * N + c) * Tmax + t;
                b->x[(b->off[r] + t) * N + c] = v[src];
            }
    free(v);
    free(T);
    if (o->conditions) {
        size_t cd = 0, cs[DISRNN_NPY_MAX_DIMS], cn = 0;
        double *cv = read_npy_all(o->conditions, &cd, cs, &cn);
        if (cn != R) {
            fprintf(stderr, "%s: expected %zu conditions, found %zu\n", o->conditions, R, cn);
            exit(1);
        }
        for (size_t r = 0; r < R; r++) b->cond[r] = (int)cv[r];
        free(cv);
    }
    if (o->cond_per_trial)
        for (size_t r = 0; r < R; r++) b->cond[r] = (int)r;
    if (!o->quiet)
        fprintf(stderr, "read %s: %zu trials, %zu channels, %zu bins in all\n", o->npy, R, N, binned_total(b));
}

/* ---------------------------------------------------------------- fitting and analysis */

typedef struct fitted {
    const char *name, *label;
    disrnn_model_t *m;
    size_t K, G;
    size_t sizes[MAX_G];
    double metrics[4];
    double *kstep;
    double seconds;
    double aligned_r2; /* against the true latents (built-in data), NaN otherwise */
    ex_progress curve;
} fitted;

static disrnn_model_t *make_model(const options *o, size_t N, const size_t *sizes, size_t G, double beta,
                                  double kappa)
{
    size_t K = 0;
    for (size_t g = 0; g < G; g++) K += sizes[g];
    disrnn_config_t *cfg = NULL;
    disrnn_model_t *m = NULL;
    ex_check(disrnn_config_create(&cfg, N, K), "disrnn_config_create", NULL);
    ex_check(disrnn_config_set_groups(cfg, sizes, G), "disrnn_config_set_groups", disrnn_config_last_error(cfg));
    ex_check(disrnn_config_set_int(cfg, DISRNN_OPT_OBS, o->gaussian ? DISRNN_OBS_GAUSSIAN : DISRNN_OBS_POISSON_SOFTPLUS),
             "disrnn_config_set_int", disrnn_config_last_error(cfg));
    ex_check(disrnn_config_set_double(cfg, DISRNN_OPT_KAPPA, kappa), "disrnn_config_set_double",
             disrnn_config_last_error(cfg));
    ex_check(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, beta), "disrnn_config_set_double",
             disrnn_config_last_error(cfg));
    ex_check(disrnn_config_set_seed(cfg, (uint64_t)o->seed), "disrnn_config_set_seed", disrnn_config_last_error(cfg));
    ex_check(disrnn_model_create(&m, cfg), "disrnn_model_create", disrnn_config_last_error(cfg));
    disrnn_config_free(cfg);
    return m;
}

static void fit(const options *o, fitted *f, const disrnn_dataset_t *train, const disrnn_dataset_t *test)
{
    disrnn_trainer_t *tr = NULL;
    ex_check(disrnn_trainer_create(&tr, f->m, train, (uint64_t)o->seed), "disrnn_trainer_create",
             disrnn_model_last_error(f->m));
    ex_check(disrnn_trainer_set_double(tr, DISRNN_TRAIN_LR, o->lr), "trainer option", disrnn_trainer_last_error(tr));
    ex_check(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, o->batch), "trainer option",
             disrnn_trainer_last_error(tr));
    ex_check(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, o->epochs), "trainer option",
             disrnn_trainer_last_error(tr));
    /* The held-out trials double as a validation set so the curve shows over-fitting if any. */
    ex_check(disrnn_trainer_set_validation(tr, test), "disrnn_trainer_set_validation", disrnn_trainer_last_error(tr));
    ex_progress_init(&f->curve, f->label, o->epochs, o->quiet);
    ex_check(disrnn_trainer_set_progress(tr, ex_progress_cb, &f->curve), "disrnn_trainer_set_progress",
             disrnn_trainer_last_error(tr));
    const double t0 = ex_now();
    const int st = disrnn_trainer_fit(tr);
    f->seconds = ex_now() - t0;
    ex_progress_finish(&f->curve, st, f->seconds);
    ex_check(st, "disrnn_trainer_fit", disrnn_trainer_last_error(tr));
    disrnn_trainer_free(tr);
}

/* Latents of every bin of every trial, averaged per condition and bin (ragged trials: over the
 * trials long enough). Writes single-trial and mean trajectories as CSV (blank line between
 * trials, for gnuplot) and the means as NPY [conditions, max bins, K]. */
static void write_trajectories(const options *o, const fitted *f, const disrnn_dataset_t *all, const binned *b)
{
    const size_t K = f->K;
    const size_t S = disrnn_dataset_num_samples(all, f->m);
    double *mu = ex_doubles(K * S);
    size_t *trial = ex_xmalloc(S * sizeof(size_t)), *bin = ex_xmalloc(S * sizeof(size_t));
    ex_check(disrnn_model_latents(f->m, all, mu, K, S), "disrnn_model_latents", disrnn_model_last_error(f->m));
    ex_check(disrnn_dataset_sample_index(all, f->m, trial, bin, S), "disrnn_dataset_sample_index",
             disrnn_dataset_last_error(all));
    int cmax = 0;
    size_t Tmax = 0;
    for (size_t r = 0; r < b->R; r++) {
        if (b->cond[r] > cmax) cmax = b->cond[r];
        if (b->T[r] > Tmax) Tmax = b->T[r];
    }
    const size_t C = (size_t)cmax + 1;
    double *mean = ex_doubles(C * Tmax * K), *cnt = ex_doubles(C * Tmax);
    char path[1024], name[256];
    snprintf(name, sizeof name, "trajectories_%s.csv", f->name);
    FILE *fs = fopen(ex_join(path, sizeof path, o->out, name), "w");
    if (!fs) {
        perror(path);
        exit(1);
    }
    fprintf(fs, "trial,condition,bin");
    for (size_t k = 0; k < K; k++) fprintf(fs, ",z%zu", k);
    fprintf(fs, "\n");
    for (size_t s = 0; s < S; s++) {
        const int cnd = b->cond[trial[s]];
        if (cnd < 0) continue;
        if (s > 0 && trial[s] != trial[s - 1]) fprintf(fs, "\n");
        fprintf(fs, "%zu,%d,%zu", trial[s], cnd, bin[s]);
        for (size_t k = 0; k < K; k++) {
            fprintf(fs, ",%.6g", mu[s * K + k]);
            mean[((size_t)cnd * Tmax + bin[s]) * K + k] += mu[s * K + k];
        }
        fprintf(fs, "\n");
        cnt[(size_t)cnd * Tmax + bin[s]] += 1.0;
    }
    fclose(fs);
    snprintf(name, sizeof name, "condition_means_%s.csv", f->name);
    fs = fopen(ex_join(path, sizeof path, o->out, name), "w");
    if (!fs) {
        perror(path);
        exit(1);
    }
    fprintf(fs, "condition,bin,n_trials");
    for (size_t k = 0; k < K; k++) fprintf(fs, ",z%zu", k);
    fprintf(fs, "\n");
    for (size_t c = 0; c < C; c++) {
        for (size_t t = 0; t < Tmax; t++) {
            const double n = cnt[c * Tmax + t];
            for (size_t k = 0; k < K; k++) mean[(c * Tmax + t) * K + k] = n > 0 ? mean[(c * Tmax + t) * K + k] / n : NAN;
            if (n == 0) continue;
            fprintf(fs, "%zu,%zu,%.0f", c, t, n);
            for (size_t k = 0; k < K; k++) fprintf(fs, ",%.6g", mean[(c * Tmax + t) * K + k]);
            fprintf(fs, "\n");
        }
        fprintf(fs, "\n");
    }
    fclose(fs);
    snprintf(name, sizeof name, "condition_means_%s.npy", f->name);
    const size_t shape[3] = {C, Tmax, K};
    char msg[256];
    ex_check(disrnn_npy_write(ex_join(path, sizeof path, o->out, name), mean, DISRNN_DTYPE_F64, 3, shape, 0, msg,
                              sizeof msg),
             "disrnn_npy_write", msg);
    snprintf(name, sizeof name, "latents_%s.npy", f->name);
    ex_write_npy2(ex_join(path, sizeof path, o->out, name), S, K, mu);
    free(mu);
    free(trial);
    free(bin);
    free(mean);
    free(cnt);
}

static void write_connectivity(const options *o, const fitted *f, size_t N, char (*figs)[1024], size_t *nf)
{
    double *Wg = ex_doubles(f->G * N * N + N * N);
    char path[1024], name[256], msg[256];
    for (size_t g = 0; g < f->G; g++)
        ex_check(disrnn_model_connectivity(f->m, DISRNN_CONN_W_GROUP, g, Wg + g * N * N, N * N),
                 "disrnn_model_connectivity", disrnn_model_last_error(f->m));
    ex_check(disrnn_model_connectivity(f->m, DISRNN_CONN_W, 0, Wg + f->G * N * N, N * N), "disrnn_model_connectivity",
             disrnn_model_last_error(f->m));
    /* Each W_g is column-major N x N: as C-order [G, N, N] arrays they read as W_g transposed, so
     * say so with Fortran order per matrix by writing [G][N][N] with fortran_order = 0 after
     * transposing into row-major. */
    double *rm = ex_doubles(f->G * N * N);
    for (size_t g = 0; g < f->G; g++)
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < N; j++) rm[g * N * N + i * N + j] = Wg[g * N * N + i + j * N];
    const size_t shape[3] = {f->G, N, N};
    snprintf(name, sizeof name, "W_groups_%s.npy", f->name);
    ex_check(disrnn_npy_write(ex_join(path, sizeof path, o->out, name), rm, DISRNN_DTYPE_F64, 3, shape, 0, msg,
                              sizeof msg),
             "disrnn_npy_write", msg);
    free(rm);

    char files[MAX_G + 1][1024];
    char titles_buf[MAX_G + 1][64];
    const char *fp[MAX_G + 1], *tp[MAX_G + 1];
    for (size_t g = 0; g <= f->G; g++) {
        if (g < f->G)
            snprintf(name, sizeof name, "W_%s_g%zu.txt", f->name, g);
        else
            snprintf(name, sizeof name, "W_%s.txt", f->name);
        ex_write_matrix_txt(ex_join(files[g], sizeof files[g], o->out, name), N, N, Wg + g * N * N, N);
        if (g < f->G)
            snprintf(titles_buf[g], sizeof titles_buf[g], "W_%zu (rank %zu)", g, f->sizes[g]);
        else
            snprintf(titles_buf[g], sizeof titles_buf[g], "W = sum of W_g");
        fp[g] = files[g];
        tp[g] = titles_buf[g];
    }
    free(Wg);
    if (!o->figures) return;
    char script[1024], png[1024], title[128];
    snprintf(name, sizeof name, "connectivity_%s.gp", f->name);
    ex_join(script, sizeof script, o->out, name);
    snprintf(name, sizeof name, "connectivity_%s.png", f->name);
    ex_join(png, sizeof png, o->out, name);
    snprintf(title, sizeof title, "%s sub-connectivities", f->label);
    const size_t panels = f->G + 1 <= 6 ? f->G + 1 : 6;
    if (ex_plot_heatmaps(script, png, title, panels, fp, tp) == 1) snprintf(figs[(*nf)++], 1024, "%s", png);
}

static void plot_trajectories(const options *o, const fitted *f, char (*figs)[1024], size_t *nf)
{
    char path[1024];
    char name[256];
    snprintf(name, sizeof name, "trajectories_%s.gp", f->name);
    FILE *g = fopen(ex_join(path, sizeof path, o->out, name), "w");
    if (!g) return;
    /* One panel per group: a plane for groups of 2 or more dimensions, a time course otherwise. */
    const size_t panels = f->G < 4 ? f->G : 4;
    fprintf(g, "set terminal %s size %zu,450\nset output '%s/trajectories_%s.png'\nset datafile separator ','\n",
            ex_png_terminal(), 420 * panels + 60, o->out, f->name);
    fprintf(g, "set multiplot layout 1,%zu title '%s latent trajectories: single trials (thin, light) and condition "
               "means (thick, dark), coloured by condition'\n",
            panels, f->label);
    /* Paired colours: a light shade for single trials, the dark one for the condition mean. */
    fprintf(g, "light(c) = (c %% 6 == 0) ? 10931939 : (c %% 6 == 1) ? 11722634 : (c %% 6 == 2) ? 16489113 : "
               "(c %% 6 == 3) ? 16629615 : (c %% 6 == 4) ? 13284054 : 14664317\n");
    fprintf(g, "dark(c) = (c %% 6 == 0) ? 2062516 : (c %% 6 == 1) ? 3383340 : (c %% 6 == 2) ? 14883356 : "
               "(c %% 6 == 3) ? 16744192 : (c %% 6 == 4) ? 6962586 : 11622696\n");
    /* The CSV header names the columns; blank lines separate trials (every ::1 would drop the
     * first bin of every trial). */
    fprintf(g, "set key autotitle columnhead\nset key off\n");
    size_t k0 = 0;
    for (size_t p = 0; p < panels; p++) {
        const size_t H = f->sizes[p];
        /* CSV columns: trajectories trial,condition,bin,z0..; means condition,bin,n_trials,z0.. */
        if (H >= 2) {
            fprintf(g, "set title 'group %zu: z%zu vs z%zu'\nset xlabel 'z%zu'\nset ylabel 'z%zu'\n", p, k0 + 1, k0, k0,
                    k0 + 1);
            fprintf(g, "plot '%s/trajectories_%s.csv' using %zu:%zu:(light(int($2))) with lines lc rgb variable "
                       "lw 0.5, '%s/condition_means_%s.csv' using %zu:%zu:(dark(int($1))) with lines lc rgb "
                       "variable lw 3\n",
                    o->out, f->name, k0 + 4, k0 + 5, o->out, f->name, k0 + 4, k0 + 5);
        } else {
            fprintf(g, "set title 'group %zu: z%zu over time'\nset xlabel 'bin'\nset ylabel 'z%zu'\n", p, k0, k0);
            fprintf(g, "plot '%s/trajectories_%s.csv' using 3:%zu:(light(int($2))) with lines lc rgb variable "
                       "lw 0.5, '%s/condition_means_%s.csv' using 2:%zu:(dark(int($1))) with lines lc rgb variable "
                       "lw 3\n",
                    o->out, f->name, k0 + 4, o->out, f->name, k0 + 4);
        }
        k0 += H;
    }
    fprintf(g, "unset multiplot\n");
    fclose(g);
    if (ex_run_gnuplot(path) == 0) snprintf(figs[(*nf)++], 1024, "%s/trajectories_%s.png", o->out, f->name);
}

static void plot_curves(const options *o, fitted *fs, size_t n, char (*figs)[1024], size_t *nf)
{
    char path[1024], name[256];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "curve_%s.csv", fs[i].name);
        ex_progress_write_curve(&fs[i].curve, ex_join(path, sizeof path, o->out, name));
    }
    if (!o->figures) return;
    FILE *g = fopen(ex_join(path, sizeof path, o->out, "curves.gp"), "w");
    if (!g) return;
    fprintf(g, "set terminal %s size 900,450\nset output '%s/curves.png'\nset datafile separator ','\n",
            ex_png_terminal(), o->out);
    fprintf(g, "set title 'Training (solid) and held-out (dashed) loss per epoch'\nset xlabel 'epoch'\nset ylabel 'loss'\n");
    fprintf(g, "plot ");
    for (size_t i = 0; i < n; i++)
        fprintf(g, "%s'%s/curve_%s.csv' every ::1 using 1:2 with lines lc %zu title '%s train', '%s/curve_%s.csv' every "
                   "::1 using 1:7 with lines dt 2 lc %zu title '%s test'",
                i ? ", " : "", o->out, fs[i].name, i + 1, fs[i].label, o->out, fs[i].name, i + 1, fs[i].label);
    fprintf(g, "\n");
    fclose(g);
    if (ex_run_gnuplot(path) == 0) snprintf(figs[(*nf)++], 1024, "%s/curves.png", o->out);
}

/* Group-aligned R^2 of a model's latents on the test trials against the ground truth. */
static double aligned_to_truth(const fitted *f, const disrnn_dataset_t *test, const binned *b, const size_t *test_idx)
{
    const size_t S = disrnn_dataset_num_samples(test, f->m);
    double *mu = ex_doubles(f->K * S), *zt = ex_doubles(b->K_true * S);
    size_t *trial = ex_xmalloc(S * sizeof(size_t)), *bin = ex_xmalloc(S * sizeof(size_t));
    ex_check(disrnn_model_latents(f->m, test, mu, f->K, S), "disrnn_model_latents", disrnn_model_last_error(f->m));
    ex_check(disrnn_dataset_sample_index(test, f->m, trial, bin, S), "disrnn_dataset_sample_index",
             disrnn_dataset_last_error(test));
    for (size_t s = 0; s < S; s++) {
        const size_t r = test_idx[trial[s]];
        memcpy(zt + s * b->K_true, b->z_true + (b->off[r] + bin[s]) * b->K_true, b->K_true * sizeof(double));
    }
    /* A single-group model is split into the true group sizes (its dimensions have no order). */
    const size_t *fg = f->sizes;
    size_t nfg = f->G;
    if (f->G < b->n_true_groups) {
        fg = b->true_groups;
        nfg = b->n_true_groups;
    }
    double r2 = NAN;
    ex_check(disrnn_align_r2(S, zt, b->K_true, b->true_groups, b->n_true_groups, mu, f->K, fg, nfg, &r2, NULL, NULL,
                             NULL, b->K_true),
             "disrnn_align_r2", NULL);
    free(mu);
    free(zt);
    free(trial);
    free(bin);
    return r2;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o)) return 2;
    if (ex_mkdir_p(o.out)) return 1;
    const double t_start = ex_now();

    /* 1. Spike events (or binned data) in. */
    binned b;
    memset(&b, 0, sizeof b);
    binned truth;
    memset(&truth, 0, sizeof truth);
    int builtin = 0;
    if (o.npy) {
        read_npy_data(&o, &b);
    } else if (o.csv) {
        read_events(&o, o.csv, o.trials, &b);
    } else {
        char sp[1024], tr[1024];
        builtin = 1;
        make_builtin(&o, sp, tr, sizeof sp, &truth);
        read_events(&o, sp, tr, &b);
        /* The events were written from the generated counts, so binning must give them back. */
        size_t diff = 0;
        const size_t tot = binned_total(&b);
        if (b.R != truth.R || b.N != truth.N || tot != binned_total(&truth)) {
            diff = 1;
        } else {
            for (size_t i = 0; i < b.N * tot; i++) diff += b.x[i] != truth.x[i];
        }
        if (diff) {
            fprintf(stderr, "binning did not reproduce the generated counts (%zu differences)\n", diff);
            return 1;
        }
        b.z_true = truth.z_true;
        truth.z_true = NULL;
        b.K_true = truth.K_true;
        b.n_true_groups = truth.n_true_groups;
        memcpy(b.true_groups, truth.true_groups, sizeof b.true_groups);
    }
    const size_t N = b.N, R = b.R, total = binned_total(&b);

    if (o.smooth > 0.0) {
        double *y = ex_doubles(N * total);
        for (size_t r = 0; r < R; r++)
            ex_check(disrnn_smooth_gaussian(N, b.T[r], b.x + b.off[r] * N, o.smooth, y + b.off[r] * N),
                     "disrnn_smooth_gaussian", NULL);
        free(b.x);
        b.x = y;
    }

    /* 2. The train/test split, a dataset of all trials, and its two subsets. train_idx and
     * test_idx list the trials each side uses (every trial on both sides for a split by bins). */
    size_t *train_idx = ex_xmalloc(R * sizeof(size_t)), *test_idx = ex_xmalloc(R * sizeof(size_t));
    size_t n_train = 0, n_test = 0;
    for (size_t r = 0; r < R; r++) {
        if (o.split_bins) {
            train_idx[n_train++] = r;
            test_idx[n_test++] = r;
        } else if (R > 1 && r % (size_t)o.test_every == (size_t)o.test_every - 1) {
            test_idx[n_test++] = r;
        } else {
            train_idx[n_train++] = r;
        }
    }
    /* In a split by bins only the even bins are training data. */
    const size_t tstep = o.split_bins ? 2 : 1;
    if (n_test == 0) {
        fprintf(stderr, "need at least %ld trials for a train/test split (have %zu)\n", o.test_every, R);
        return 1;
    }
    if (o.zscore) {
        /* Statistics from the training data only, so nothing of the test data leaks in. */
        double *mean = ex_doubles(N), *sq = ex_doubles(N), cnt = 0.0;
        for (size_t i = 0; i < n_train; i++) {
            const size_t r = train_idx[i];
            for (size_t t = 0; t < b.T[r]; t += tstep, cnt += 1.0)
                for (size_t c = 0; c < N; c++) mean[c] += b.x[(b.off[r] + t) * N + c];
        }
        for (size_t c = 0; c < N; c++) mean[c] /= cnt;
        for (size_t i = 0; i < n_train; i++) {
            const size_t r = train_idx[i];
            for (size_t t = 0; t < b.T[r]; t += tstep)
                for (size_t c = 0; c < N; c++) {
                    const double dv = b.x[(b.off[r] + t) * N + c] - mean[c];
                    sq[c] += dv * dv;
                }
        }
        for (size_t c = 0; c < N; c++) sq[c] = sqrt(sq[c] / cnt);
        for (size_t q = 0; q < total; q++)
            for (size_t c = 0; c < N; c++)
                b.x[q * N + c] = sq[c] > 0.0 ? (b.x[q * N + c] - mean[c]) / sq[c] : 0.0;
        free(mean);
        free(sq);
    }
    disrnn_dataset_t *all = NULL;
    ex_check(disrnn_dataset_create(&all, N, 0, o.gaussian ? DISRNN_DATA_CONTINUOUS : DISRNN_DATA_COUNTS),
             "disrnn_dataset_create", NULL);
    for (size_t r = 0; r < R; r++) {
        ex_check(disrnn_dataset_add_trial(all, b.T[r], b.x + b.off[r] * N, N, NULL, 0, NULL, 0),
                 "disrnn_dataset_add_trial", disrnn_dataset_last_error(all));
    }
    double xmax = 0.0;
    for (size_t i = 0; i < n_train; i++) {
        const size_t r = train_idx[i];
        for (size_t q = 0; q < N * b.T[r]; q++) {
            const double v = fabs(b.x[b.off[r] * N + q]);
            if (v > xmax) xmax = v;
        }
    }
    disrnn_dataset_t *train = NULL, *test = NULL;
    if (o.split_bins) {
        ex_check(disrnn_dataset_subset_interleaved(all, 2, 0, &train), "disrnn_dataset_subset_interleaved",
                 disrnn_dataset_last_error(all));
        ex_check(disrnn_dataset_subset_interleaved(all, 2, 1, &test), "disrnn_dataset_subset_interleaved",
                 disrnn_dataset_last_error(all));
    } else {
        ex_check(disrnn_dataset_subset_trials(all, train_idx, n_train, &train), "disrnn_dataset_subset_trials",
                 disrnn_dataset_last_error(all));
        ex_check(disrnn_dataset_subset_trials(all, test_idx, n_test, &test), "disrnn_dataset_subset_trials",
                 disrnn_dataset_last_error(all));
    }
    /* Spike counts go into tanh: scale by the largest training count so it does not saturate. */
    const double kappa = o.kappa > 0.0  ? o.kappa
                         : builtin    ? BUILTIN_KAPPA
                         : o.gaussian ? 1.0
                                      : (xmax >= 1.0 ? xmax : 1.0);
    if (!o.quiet) {
        if (o.split_bins)
            fprintf(stderr, "even bins train, odd bins test, in all %zu trials; ", R);
        else
            fprintf(stderr, "%zu training trials, %zu test trials (every %ld-th); ", n_train, n_test, o.test_every);
        fprintf(stderr, "%s observations, kappa %g\n", o.gaussian ? "Gaussian" : "Poisson", kappa);
    }

    /* 3. Fit a DisRNN and an lrRNN of the same total dimension. */
    size_t K = 0;
    for (size_t g = 0; g < o.n_groups; g++) K += o.groups[g];
    fitted fs[2];
    memset(fs, 0, sizeof fs);
    fs[0].name = "disrnn";
    fs[0].label = "DisRNN";
    fs[0].G = o.n_groups;
    memcpy(fs[0].sizes, o.groups, o.n_groups * sizeof(size_t));
    fs[1].name = "lrrnn";
    fs[1].label = "lrRNN";
    fs[1].G = 1;
    fs[1].sizes[0] = K;
    for (int i = 0; i < 2; i++) {
        fs[i].K = K;
        fs[i].m = make_model(&o, N, fs[i].sizes, fs[i].G, i == 0 ? o.beta : 0.0, kappa);
        fit(&o, &fs[i], train, test);
        ex_check(disrnn_model_evaluate(fs[i].m, test, fs[i].metrics, 4), "disrnn_model_evaluate",
                 disrnn_model_last_error(fs[i].m));
        fs[i].kstep = ex_doubles((size_t)o.kmax);
        ex_check(disrnn_model_kstep_r2(fs[i].m, test, (size_t)o.kmax, fs[i].kstep, (size_t)o.kmax),
                 "disrnn_model_kstep_r2", disrnn_model_last_error(fs[i].m));
        fs[i].aligned_r2 = builtin ? aligned_to_truth(&fs[i], test, &b, test_idx) : NAN;
    }

    /* 4. Report and write. */
    char path[1024];
    FILE *mf = fopen(ex_join(path, sizeof path, o.out, "metrics.csv"), "w");
    if (!mf) {
        perror(path);
        return 1;
    }
    fprintf(mf, "model,bits_per_spike,recon_r2,loglik,mse,aligned_r2_truth,seconds");
    for (long k = 1; k <= o.kmax; k++) fprintf(mf, ",kstep_r2_%ld", k);
    fprintf(mf, "\n");
    if (o.split_bins)
        printf("\nHeld-out odd bins of all %zu trials, %s model, K = %zu\n", R, o.gaussian ? "Gaussian" : "Poisson", K);
    else
        printf("\nHeld-out trials (%zu of %zu), %s model, K = %zu\n", n_test, R, o.gaussian ? "Gaussian" : "Poisson", K);
    printf("%-8s %-10s %-14s %-10s %-12s %-10s  k-step R^2 (k = 1..%ld)\n", "model", "groups",
           o.gaussian ? "bits/spike" : "bits/spike", "recon R^2", "truth R^2", "seconds", o.kmax);
    for (int i = 0; i < 2; i++) {
        char grp[64] = "", *p = grp;
        for (size_t g = 0; g < fs[i].G && (size_t)(p - grp) < sizeof grp - 8; g++)
            p += snprintf(p, sizeof grp - (size_t)(p - grp), g ? ",%zu" : "(%zu", fs[i].sizes[g]);
        snprintf(p, sizeof grp - (size_t)(p - grp), ")");
        char bps[32], al[32];
        if (isnan(fs[i].metrics[DISRNN_METRIC_BITS_PER_SPIKE]))
            snprintf(bps, sizeof bps, "NA");
        else
            snprintf(bps, sizeof bps, "%.4f", fs[i].metrics[DISRNN_METRIC_BITS_PER_SPIKE]);
        if (isnan(fs[i].aligned_r2))
            snprintf(al, sizeof al, "NA");
        else
            snprintf(al, sizeof al, "%.3f", fs[i].aligned_r2);
        printf("%-8s %-10s %-14s %-10.4f %-12s %-10.1f ", fs[i].label, grp, bps, fs[i].metrics[DISRNN_METRIC_R2], al,
               fs[i].seconds);
        for (long k = 0; k < o.kmax; k++) printf(" %.3f", fs[i].kstep[k]);
        printf("\n");
        fprintf(mf, "%s,%.6f,%.6f,%.6f,%.6f,%.6f,%.3f", fs[i].name, fs[i].metrics[DISRNN_METRIC_BITS_PER_SPIKE],
                fs[i].metrics[DISRNN_METRIC_R2], fs[i].metrics[DISRNN_METRIC_LOGLIK], fs[i].metrics[DISRNN_METRIC_MSE],
                fs[i].aligned_r2, fs[i].seconds);
        for (long k = 0; k < o.kmax; k++) fprintf(mf, ",%.6f", fs[i].kstep[k]);
        fprintf(mf, "\n");
    }
    fclose(mf);
    if (builtin)
        printf("truth R^2: group-aligned latent R^2 against the ground-truth latents of the test trials\n");

    char figs[16][1024];
    size_t nf = 0;
    for (int i = 0; i < 2; i++) {
        write_trajectories(&o, &fs[i], all, &b);
        write_connectivity(&o, &fs[i], N, figs, &nf);
        if (o.figures) plot_trajectories(&o, &fs[i], figs, &nf);
    }
    plot_curves(&o, fs, 2, figs, &nf);
    printf("outputs in %s/: metrics.csv, latents_*.npy, condition_means_*.{npy,csv}, trajectories_*.csv, "
           "W_groups_*.npy, curve_*.csv\n",
           o.out);
    if (o.figures && !ex_have_gnuplot())
        printf("gnuplot not found: figure data and scripts (*.gp) written, no PNG files\n");
    for (size_t i = 0; i < nf; i++) printf("figure: %s\n", figs[i]);
    printf("total time %.1f s\n", ex_now() - t_start);

    for (int i = 0; i < 2; i++) {
        disrnn_model_free(fs[i].m);
        free(fs[i].kstep);
        ex_progress_free(&fs[i].curve);
    }
    disrnn_dataset_free(train);
    disrnn_dataset_free(test);
    disrnn_dataset_free(all);
    free(train_idx);
    free(test_idx);
    binned_free(&b);
    binned_free(&truth);
    return 0;
}
