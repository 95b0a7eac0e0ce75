/* libdisrnn performance harness: one training step (objective + exact gradient + Adam update,
 * through disrnn_trainer_step) and one whole fit, against the same step written plainly in
 * PyTorch, and against this machine's floor for the step.
 *
 * Every measurement runs in its own process (this program re-executed with --worker-...), so
 * OPENBLAS_NUM_THREADS is set before OpenBLAS starts and the peak resident memory (getrusage)
 * belongs to one configuration and thread count only. Without arguments the program runs the
 * whole suite and prints one table; `bench_step --help` lists the options.
 *
 * The floor of a step is  flops / R_gemm + exps / R_exp,  where the flops and exponentials are
 * counted analytically (step_cost() below, docs/performance.md) and the rates are measured here:
 * R_gemm from a large DGEMM (the best any flop of the step could hope for) and R_exp from a
 * vectorised exp loop (bench_vexp, glibc's libmvec), both with the same number of threads as the
 * step. It is a lower bound: element-wise work never runs at DGEMM speed. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "disrnn.h"
#include "blas.h"
#include "bench.h"

#define MAX_GROUPS 64
#define MAX_THREADS 8

/* ---------------------------------------------------------------------------------------- */
/* Small utilities */

/* Wall clock by default; --clock cpu (process CPU time, all threads) for development on a machine
 * shared with other jobs, where wall time counts the time the process waited for a core. */
/* The trainer's own threads for a measurement: the parent sets DISRNN_BENCH_THREADS for each
 * worker process along with OpenBLAS's thread count. */
static int64_t bench_threads(void)
{
    const char *v = getenv("DISRNN_BENCH_THREADS");
    const long t = v ? strtol(v, NULL, 10) : 1;
    return t >= 1 && t <= 256 ? (int64_t)t : 1;
}

static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return ru.ru_maxrss; /* kilobytes on Linux */
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return (n % 2) ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The harness's own data generator (splitmix64 + Box-Muller), independent of the library's. */
static uint64_t sm_state = 0x9e3779b97f4a7c15ULL;
static uint64_t sm_next(void)
{
    uint64_t z = (sm_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double sm_uniform(void) { return ((double)(sm_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static double sm_normal(void)
{
    const double u = sm_uniform(), v = sm_uniform();
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* FNV-1a over bytes: a fingerprint of parameters to compare runs bit for bit. */
static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *c = (const unsigned char *)p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ULL;
    return h;
}

static void die(const char *what, int st, const char *msg)
{
    fprintf(stderr, "bench_step: %s failed: %s (%s)\n", what, disrnn_status_string(st), msg ? msg : "");
    exit(2);
}

/* ---------------------------------------------------------------------------------------- */
/* Counting allocator: shows that the timed loop allocates nothing and how much the library
 * holds (model, trainer, workspace). A 16-byte header keeps the size and the alignment. */

typedef struct counter {
    size_t n_alloc, n_free, bytes_now, bytes_peak;
} counter;

static void *count_alloc(size_t size, void *ud)
{
    counter *c = (counter *)ud;
    unsigned char *p = (unsigned char *)malloc(size + 16);
    if (!p) return NULL;
    memcpy(p, &size, sizeof size);
    c->n_alloc++;
    c->bytes_now += size;
    if (c->bytes_now > c->bytes_peak) c->bytes_peak = c->bytes_now;
    return p + 16;
}

static void count_free(void *ptr, void *ud)
{
    counter *c = (counter *)ud;
    unsigned char *p = (unsigned char *)ptr - 16;
    size_t size;
    memcpy(&size, p, sizeof size);
    c->n_free++;
    c->bytes_now -= size;
    free(p);
}

/* ---------------------------------------------------------------------------------------- */
/* Configurations */

typedef struct bcfg {
    char name[16];
    size_t N, K, G, M, T; /* T bins of random data; T a multiple of M so every batch is full */
    double beta, n_tot;
} bcfg;

/* The four configurations of issue 7 (Gaussian, beta > 0, N_tot = 1000). */
static const bcfg std_configs[] = {
    {"S1", 20, 6, 2, 128, 1024, 20.0, 1000.0},   /* paper synthetic */
    {"S2", 154, 4, 2, 128, 1024, 2.0, 1000.0},   /* paper M1 reaching */
    {"S3", 2500, 12, 6, 128, 1024, 2.0, 1000.0}, /* paper voltage imaging */
    {"S4", 1000, 16, 4, 512, 2048, 2.0, 1000.0}, /* large Neuropixels-style recording */
};
#define N_STD_CONFIGS (sizeof std_configs / sizeof std_configs[0])

/* Equal consecutive groups (the first K mod G groups one larger). */
static void group_sizes(size_t K, size_t G, size_t *sizes)
{
    for (size_t g = 0; g < G; g++) sizes[g] = K / G + (g < K % G ? 1 : 0);
}

/* Analytic cost of one training step on a Gaussian model with fixed encoder std (Scott's rule),
 * no inputs, batch M. Forward and backward, counting a multiply-add as 2 flops:
 *   encoder   mu = B h + d and dB = dmu h^T                        4 N K M
 *   decoder   eta = A z + c, dA = deta z^T, dz = A^T deta          6 N K M
 *   Gaussian  residual, square, scale, sums; and their adjoints    10 N M
 *   KL and reparameterisation                                      6 K M
 *   PC (G > 1): cross terms of the squared distances as GEMMs      2 M^2 K
 *               per-group norms added to them                      2 M^2 G
 *               joint density from the groups'                     M^2 (G - 1)
 *               G + 1 weighted row sums, shifts                    3 M^2 (G + 1)
 *               softmax weights from the stored exponentials       M^2 (G + 1)
 *               gradient weights P - Q_g and their row sums        2 M^2 G
 *               gradient GEMMs for z and mu                        4 M^2 K
 *             = M^2 (6 K + 9 G + 3)
 *   Adam      about 12 flops per parameter, n = 2 N K + 2 N + K
 * Exponentials: G M^2 in the PC term (the joint mixture's exponential of a pair is the product
 * of its G group exponentials under a common shift, so G, not G + 1, are needed; none when
 * G = 1) plus N for exp(-2 rho). Left out: the (G + 1) M logarithms, the 2 K M normal draws and
 * all memory traffic (which bounds the large-N configurations, see docs/performance.md). */
static void step_cost(const bcfg *c, double *flops, double *exps)
{
    const double N = (double)c->N, K = (double)c->K, G = (double)c->G, M = (double)c->M;
    double f = 4 * N * K * M + 6 * N * K * M + 10 * N * M + 6 * K * M;
    double e = N;
    if (c->G > 1 && c->beta > 0) {
        f += M * M * (6 * K + 9 * G + 3);
        e += G * M * M;
    }
    f += 12 * (2 * N * K + 2 * N + K);
    *flops = f;
    *exps = e;
}

/* ---------------------------------------------------------------------------------------- */
/* Building a model, a dataset and a trainer through the public API */

typedef struct setup {
    disrnn_config_t *cfg;
    disrnn_model_t *model;
    disrnn_dataset_t *ds;
    disrnn_trainer_t *tr;
} setup;

static void setup_free(setup *s)
{
    disrnn_trainer_free(s->tr);
    disrnn_dataset_free(s->ds);
    disrnn_model_free(s->model);
    disrnn_config_free(s->cfg);
    memset(s, 0, sizeof *s);
}

/* Random Gaussian data as one continuous recording of T bins; model with the given groups. */
static void setup_step(setup *s, const bcfg *c, counter *cnt, int optimizer)
{
    size_t sizes[MAX_GROUPS];
    double *x;
    int st;
    memset(s, 0, sizeof *s);
    group_sizes(c->K, c->G, sizes);
    if ((st = disrnn_config_create(&s->cfg, c->N, c->K)) != DISRNN_OK) die("disrnn_config_create", st, NULL);
    if ((st = disrnn_config_set_groups(s->cfg, sizes, c->G)) != DISRNN_OK)
        die("disrnn_config_set_groups", st, disrnn_config_last_error(s->cfg));
    if ((st = disrnn_config_set_double(s->cfg, DISRNN_OPT_BETA, c->beta)) != DISRNN_OK)
        die("set beta", st, disrnn_config_last_error(s->cfg));
    if (c->n_tot > 0 && (st = disrnn_config_set_double(s->cfg, DISRNN_OPT_N_TOT, c->n_tot)) != DISRNN_OK)
        die("set N_tot", st, disrnn_config_last_error(s->cfg));
    disrnn_config_set_seed(s->cfg, 1);
    st = cnt ? disrnn_model_create_with_allocator(&s->model, s->cfg, count_alloc, count_free, cnt)
             : disrnn_model_create(&s->model, s->cfg);
    if (st != DISRNN_OK) die("disrnn_model_create", st, disrnn_config_last_error(s->cfg));
    if ((st = disrnn_dataset_create(&s->ds, c->N, 0, DISRNN_DATA_CONTINUOUS)) != DISRNN_OK)
        die("disrnn_dataset_create", st, NULL);
    x = (double *)malloc(c->N * c->T * sizeof *x);
    if (!x) die("malloc", DISRNN_ERR_NOMEM, "data");
    sm_state = 12345;
    for (size_t i = 0; i < c->N * c->T; i++) x[i] = sm_normal();
    if ((st = disrnn_dataset_add_trial(s->ds, c->T, x, c->N, NULL, 0, NULL, 0)) != DISRNN_OK)
        die("disrnn_dataset_add_trial", st, disrnn_dataset_last_error(s->ds));
    free(x);
    if ((st = disrnn_trainer_create(&s->tr, s->model, s->ds, 7)) != DISRNN_OK)
        die("disrnn_trainer_create", st, disrnn_model_last_error(s->model));
    if ((st = disrnn_trainer_set_int(s->tr, DISRNN_TRAIN_OPTIMIZER, optimizer)) != DISRNN_OK ||
        (st = disrnn_trainer_set_int(s->tr, DISRNN_TRAIN_BATCH_SIZE, (int64_t)c->M)) != DISRNN_OK ||
        (st = disrnn_trainer_set_int(s->tr, DISRNN_TRAIN_EPOCHS, 1000000)) != DISRNN_OK ||
        (st = disrnn_trainer_set_int(s->tr, DISRNN_TRAIN_THREADS, bench_threads())) != DISRNN_OK)
        die("trainer settings", st, disrnn_trainer_last_error(s->tr));
}

static void step_or_die(setup *s, double *terms)
{
    const int st = disrnn_trainer_step(s->tr, terms, terms ? 5 : 0);
    if (st != DISRNN_OK) die("disrnn_trainer_step", st, disrnn_trainer_last_error(s->tr));
}

/* ---------------------------------------------------------------------------------------- */
/* Workers (each in its own process) */

/* One configuration: determinism fingerprint, then the timed steps. */
static int worker_step(const bcfg *c, int blocks, double block_s)
{
    setup s;
    counter cnt = {0, 0, 0, 0};
    double terms[5], *times, *params;
    size_t np, k = 1, allocs_before;
    uint64_t hash;
    double t0, t_est, med, best;
    int i;

    /* Fingerprint: 20 steps from a fresh model; compared across thread counts by the parent. */
    setup_step(&s, c, NULL, DISRNN_OPTIM_ADAM);
    for (i = 0; i < 20; i++) step_or_die(&s, terms);
    np = disrnn_model_num_params(s.model);
    params = (double *)malloc(np * sizeof *params);
    if (!params) die("malloc", DISRNN_ERR_NOMEM, "params");
    disrnn_model_get_params(s.model, params, np);
    hash = fnv1a(params, np * sizeof *params) ^ fnv1a(terms, sizeof terms);
    free(params);
    setup_free(&s);

    setup_step(&s, c, &cnt, DISRNN_OPTIM_ADAM);
    /* Warm up (first-call workspace allocation, caches, OpenBLAS threads), then size the blocks. */
    t0 = now_s();
    i = 0;
    do {
        step_or_die(&s, NULL);
        i++;
    } while (i < 5 || now_s() - t0 < 0.1);
    t_est = (now_s() - t0) / i;
    if (t_est < block_s) k = (size_t)ceil(block_s / t_est);
    times = (double *)malloc((size_t)blocks * sizeof *times);
    if (!times) die("malloc", DISRNN_ERR_NOMEM, "times");
    allocs_before = cnt.n_alloc;
    for (int b = 0; b < blocks; b++) {
        const double tb = now_s();
        for (size_t j = 0; j < k; j++) step_or_die(&s, NULL);
        times[b] = (now_s() - tb) / (double)k;
    }
    best = times[0];
    for (int b = 1; b < blocks; b++)
        if (times[b] < best) best = times[b];
    med = median(times, (size_t)blocks);
    printf("RESULT us=%.3f us_min=%.3f rss_kb=%ld allocs_per_step=%.4f heap_bytes=%zu steps_per_block=%zu "
           "hash=%016llx\n",
           1e6 * med, 1e6 * best, peak_rss_kb(), (double)(cnt.n_alloc - allocs_before) / ((double)blocks * (double)k),
           cnt.bytes_peak, k, (unsigned long long)hash);
    free(times);
    setup_free(&s);
    return 0;
}

typedef struct exp_job {
    double seconds; /* how long to run */
    int poly;       /* 0: libmvec, 1: the polynomial kernel */
    double count, elapsed;
} exp_job;

/* Each exp thread times itself: wall clock, or its own CPU time under --clock cpu. */
static double thread_now_s(void)
{
    struct timespec ts;
    clock_gettime(bench_clock == CLOCK_MONOTONIC ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *exp_thread(void *arg)
{
    exp_job *job = (exp_job *)arg;
    enum { LEN = 2048 };
    double *x = (double *)malloc(2 * LEN * sizeof *x), *y;
    double t0, n = 0;
    if (!x) return NULL;
    y = x + LEN;
    /* Arguments like the PC term's: log-densities below their row maximum. */
    for (int i = 0; i < LEN; i++) x[i] = -30.0 * (double)i / LEN;
    t0 = thread_now_s();
    do {
        for (int r = 0; r < 64; r++) {
            if (job->poly) {
                if (!bench_vexp_poly(y, x, LEN)) {
                    job->count = 0;
                    job->elapsed = 1;
                    free(x);
                    return NULL;
                }
            } else {
                bench_vexp(y, x, LEN);
            }
            x[r] = y[r] - 30.0; /* a dependency so the loop is not optimised away */
        }
        n += 64.0 * LEN;
    } while (thread_now_s() - t0 < job->seconds);
    job->elapsed = thread_now_s() - t0;
    job->count = n;
    free(x);
    return NULL;
}

static void peak_dgemm(size_t m, const double *a, const double *b, double *c, size_t ld)
{
    const disrnn__blasint k = (disrnn__blasint)m, l = (disrnn__blasint)ld;
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, k, k, k, 1.0, a, l, b, l, 0.0, c, l);
}

/* Peak rates with the thread count this process was given: DGEMM GFLOP/s and exp/s. */
static int worker_peak(int threads)
{
    const size_t n = 2048;
    double *a = (double *)malloc(3 * n * n * sizeof *a), *b, *cm;
    double best = 0, exp_rate = 0, poly_rate = 0;
    pthread_t th[MAX_THREADS];
    exp_job jobs[MAX_THREADS];
    if (!a) die("malloc", DISRNN_ERR_NOMEM, "dgemm");
    b = a + n * n;
    cm = b + n * n;
    sm_state = 99;
    for (size_t i = 0; i < 3 * n * n; i++) a[i] = sm_uniform() - 0.5;
    /* One BLAS call, not disrnn__gemm: the library's wrapper cuts every product into pieces of
     * 2^18 multiply-adds (thread-count independence), which is far below the peak at this size. */
    peak_dgemm(256, a, b, cm, n); /* start OpenBLAS threads */
    for (int r = 0; r < 3; r++) {
        const double t0 = now_s();
        double rate;
        peak_dgemm(n, a, b, cm, n);
        rate = 2.0 * (double)n * (double)n * (double)n / (now_s() - t0);
        if (rate > best) best = rate;
    }
    free(a);
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    for (int kind = 0; kind < 2; kind++) {
        double rate = 0, count = 0, secs = 0;
        for (int t = 0; t < threads; t++) {
            jobs[t].seconds = 0.3;
            jobs[t].poly = kind;
            jobs[t].count = 0;
            jobs[t].elapsed = 1;
            if (pthread_create(&th[t], NULL, exp_thread, &jobs[t]) != 0) die("pthread_create", DISRNN_ERR_NOMEM, "");
        }
        for (int t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            rate += jobs[t].count / jobs[t].elapsed; /* wall clock: the threads' rates add up */
            count += jobs[t].count;
            secs += jobs[t].elapsed;
        }
        /* CPU time: rates per CPU-second, like the step's CPU time */
        if (bench_clock != CLOCK_MONOTONIC) rate = count / secs;
        if (kind == 0) exp_rate = rate;
        else poly_rate = rate;
    }
    printf("RESULT gemm_flops=%.6e exp_rate=%.6e libmvec_rate=%.6e poly_rate=%.6e\n", best,
           poly_rate > exp_rate ? poly_rate : exp_rate, exp_rate, poly_rate);
    return 0;
}

/* Lorenz and Thomas attractors integrated with RK4 (dt 0.1), z-scored: the paper's latents. */
static void paper_latents(size_t T, double *z /* 6 x T */)
{
    double s[6] = {1, 1, 1, 0.1, 1, 1};
    const double dt = 0.1, b = 0.0; /* MODEL.md section 6: Thomas without damping */
    for (size_t t = 0; t < T; t++) {
        double k[4][6], tmp[6];
        for (int st = 0; st < 4; st++) {
            const double *p = s;
            if (st > 0) {
                const double h = st == 3 ? dt : dt / 2;
                for (int i = 0; i < 6; i++) tmp[i] = s[i] + h * k[st - 1][i];
                p = tmp;
            }
            k[st][0] = 10.0 * (p[1] - p[0]);
            k[st][1] = p[0] * (28.0 - p[2]) - p[1];
            k[st][2] = p[0] * p[1] - (8.0 / 3.0) * p[2];
            k[st][3] = sin(p[4]) - b * p[3];
            k[st][4] = sin(p[5]) - b * p[4];
            k[st][5] = sin(p[3]) - b * p[5];
        }
        for (int i = 0; i < 6; i++) s[i] += dt / 6 * (k[0][i] + 2 * k[1][i] + 2 * k[2][i] + k[3][i]);
        memcpy(z + 6 * t, s, sizeof s);
    }
    for (int i = 0; i < 6; i++) {
        double m = 0, v = 0;
        for (size_t t = 0; t < T; t++) m += z[6 * t + (size_t)i];
        m /= (double)T;
        for (size_t t = 0; t < T; t++) v += (z[6 * t + (size_t)i] - m) * (z[6 * t + (size_t)i] - m);
        v = sqrt(v / (double)T);
        for (size_t t = 0; t < T; t++) z[6 * t + (size_t)i] = (z[6 * t + (size_t)i] - m) / (v > 0 ? v : 1);
    }
}

/* The paper's synthetic fit: N 20, K 6, groups (3, 3), beta 20, 1000 training bins (the even
 * bins of 2000), batch 128, 5000 epochs, AdamW (lr 1e-3, decay 0.01). */
static int worker_fit(int epochs)
{
    const size_t N = 20, K = 6, T = 2000;
    const size_t sizes[2] = {3, 3};
    double *z = (double *)malloc(6 * T * sizeof *z), *x = (double *)malloc(N * T * sizeof *x), *a;
    disrnn_config_t *cfg;
    disrnn_model_t *model;
    disrnn_dataset_t *all = NULL, *train = NULL;
    disrnn_trainer_t *tr;
    double t0, secs, terms[5] = {0};
    int64_t steps = 0;
    int st;
    if (!z || !x) die("malloc", DISRNN_ERR_NOMEM, "fit data");
    paper_latents(T, z);
    a = (double *)malloc(N * K * sizeof *a);
    if (!a) die("malloc", DISRNN_ERR_NOMEM, "fit data");
    sm_state = 2024;
    for (size_t i = 0; i < N * K; i++) a[i] = sm_normal() / sqrt((double)K);
    for (size_t t = 0; t < T; t++)
        for (size_t n = 0; n < N; n++) {
            double v = 0.1 * sm_normal();
            for (size_t k = 0; k < K; k++) v += a[n + N * k] * z[k + K * t];
            x[n + N * t] = v;
        }
    if ((st = disrnn_config_create(&cfg, N, K)) != DISRNN_OK) die("disrnn_config_create", st, NULL);
    if ((st = disrnn_config_set_groups(cfg, sizes, 2)) != DISRNN_OK ||
        (st = disrnn_config_set_double(cfg, DISRNN_OPT_BETA, 20.0)) != DISRNN_OK ||
        (st = disrnn_config_set_int(cfg, DISRNN_OPT_PADDING, DISRNN_PAD_ZERO)) != DISRNN_OK)
        die("config", st, disrnn_config_last_error(cfg));
    if ((st = disrnn_model_create(&model, cfg)) != DISRNN_OK) die("disrnn_model_create", st, NULL);
    if ((st = disrnn_dataset_create(&all, N, 0, DISRNN_DATA_CONTINUOUS)) != DISRNN_OK ||
        (st = disrnn_dataset_add_trial(all, T, x, N, NULL, 0, NULL, 0)) != DISRNN_OK ||
        (st = disrnn_dataset_subset_interleaved(all, 2, 0, &train)) != DISRNN_OK)
        die("dataset", st, NULL);
    if ((st = disrnn_trainer_create(&tr, model, train, 3)) != DISRNN_OK)
        die("disrnn_trainer_create", st, disrnn_model_last_error(model));
    if ((st = disrnn_trainer_set_int(tr, DISRNN_TRAIN_OPTIMIZER, DISRNN_OPTIM_ADAMW)) != DISRNN_OK ||
        (st = disrnn_trainer_set_double(tr, DISRNN_TRAIN_WEIGHT_DECAY, 0.01)) != DISRNN_OK ||
        (st = disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 128)) != DISRNN_OK ||
        (st = disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, epochs)) != DISRNN_OK ||
        (st = disrnn_trainer_set_int(tr, DISRNN_TRAIN_THREADS, bench_threads())) != DISRNN_OK)
        die("trainer settings", st, disrnn_trainer_last_error(tr));
    t0 = now_s();
    st = disrnn_trainer_fit(tr);
    secs = now_s() - t0;
    if (st < 0) die("disrnn_trainer_fit", st, disrnn_trainer_last_error(tr));
    disrnn_trainer_progress(tr, &steps, NULL);
    disrnn_trainer_evaluate(tr, train, terms, 5);
    printf("RESULT seconds=%.4f steps=%lld us_per_step=%.3f loss=%.6f pc=%.6f rss_kb=%ld\n", secs, (long long)steps,
           steps > 0 ? 1e6 * secs / (double)steps : 0.0, terms[0], terms[3], peak_rss_kb());
    disrnn_trainer_free(tr);
    disrnn_dataset_free(train);
    disrnn_dataset_free(all);
    disrnn_model_free(model);
    disrnn_config_free(cfg);
    free(a);
    free(x);
    free(z);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The parent: runs the workers and the PyTorch script, prints the table. */

typedef struct opts {
    const char *self, *torch_script, *torch_python, *scaling_out, *clock_arg;
    int threads[MAX_THREADS], n_threads;
    int configs[N_STD_CONFIGS], n_configs;
    int blocks, rounds, torch, fit, torch_fit, fit_epochs, fit_runs;
    int torch_dtype[2]; /* run PyTorch in float64, float32 */
    double block_s;
} opts;

/* Value of "key=" in a RESULT line, NAN when absent. */
static double field(const char *line, const char *key)
{
    char pat[64];
    const char *p;
    snprintf(pat, sizeof pat, " %s=", key);
    p = strstr(line, pat);
    if (!p) return NAN;
    return strtod(p + strlen(pat), NULL);
}

static const char *field_str(const char *line, const char *key, char *out, size_t len)
{
    char pat[64];
    const char *p;
    size_t i = 0;
    snprintf(pat, sizeof pat, " %s=", key);
    out[0] = 0;
    p = strstr(line, pat);
    if (!p) return out;
    p += strlen(pat);
    while (p[i] && p[i] != ' ' && p[i] != '\n' && i + 1 < len) {
        out[i] = p[i];
        i++;
    }
    out[i] = 0;
    return out;
}

/* Runs a command; returns 1 and the RESULT line, 0 and the SKIP/last line otherwise. */
static int run_capture(const char *cmd, char *line, size_t len)
{
    char buf[1024];
    int found = 0;
    FILE *f;
    line[0] = 0;
    fflush(stdout);
    f = popen(cmd, "r");
    if (!f) {
        snprintf(line, len, "could not run: %s", strerror(errno));
        return 0;
    }
    while (fgets(buf, sizeof buf, f)) {
        if (strncmp(buf, "RESULT", 6) == 0) {
            snprintf(line, len, "%s", buf + 6); /* keeps the leading space for field() */
            found = 1;
        } else if (!found) {
            buf[strcspn(buf, "\n")] = 0;
            snprintf(line, len, "%s", buf);
        }
    }
    if (pclose(f) != 0 && !found && !line[0]) snprintf(line, len, "worker failed");
    return found;
}

static void env_prefix(char *out, size_t len, int threads)
{
    snprintf(out, len, "OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d MKL_NUM_THREADS=%d DISRNN_BENCH_THREADS=%d", threads,
             threads, threads, threads);
}

/* PyTorch runs in double precision (the same arithmetic as libdisrnn) and in single precision
 * (its default dtype, about twice as fast): both are reported, the library's target is judged
 * against both. */
#define N_TORCH_DTYPES 2
static const char *const torch_dtype_flag[N_TORCH_DTYPES] = {"", " --float32"};

typedef struct row {
    int ok;
    double us, us_min, rss_kb, allocs, heap, floor_us, flops, exps;
    double torch_us[N_TORCH_DTYPES], torch_rss_kb[N_TORCH_DTYPES];
    char hash[32], note[160];
} row;

#define MAX_ROUNDS 15

/* Median of the values among v[0..n) that are not NaN (NAN when none); v is reordered. */
static double median_of(double *v, int n)
{
    size_t m = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i])) v[m++] = v[i];
    return m ? median(v, m) : NAN;
}

/* One configuration at one thread count: o->rounds rounds of the library's worker followed by
 * PyTorch in each precision, so that both sides are timed in the same stretches of time (on a
 * shared host the machine's speed drifts by 5-10% over minutes); each column is the median of its
 * rounds. Every round of the library must give the same hash. */
static void measure(const opts *o, const bcfg *c, int threads, double gemm_rate, double exp_rate, row *r)
{
    char cmd[2048], env[160], line[1024];
    double lib_us[MAX_ROUNDS], lib_min[MAX_ROUNDS], t_us[N_TORCH_DTYPES][MAX_ROUNDS];
    memset(r, 0, sizeof *r);
    env_prefix(env, sizeof env, threads);
    for (int d = 0; d < N_TORCH_DTYPES; d++) r->torch_us[d] = r->torch_rss_kb[d] = NAN;
    for (int q = 0; q < o->rounds; q++) {
        lib_us[q] = lib_min[q] = NAN;
        snprintf(cmd, sizeof cmd, "%s '%s' --worker-step %zu %zu %zu %zu %zu %.17g %.17g --blocks %d --block-ms %.3f%s",
                 env, o->self, c->N, c->K, c->G, c->M, c->T, c->beta, c->n_tot, o->blocks, 1e3 * o->block_s,
                 o->clock_arg);
        if (run_capture(cmd, line, sizeof line)) {
            char hash[32];
            lib_us[q] = field(line, "us");
            lib_min[q] = field(line, "us_min");
            field_str(line, "hash", hash, sizeof hash);
            if (q == 0) {
                r->ok = 1;
                r->rss_kb = field(line, "rss_kb");
                r->allocs = field(line, "allocs_per_step");
                r->heap = field(line, "heap_bytes");
                snprintf(r->hash, sizeof r->hash, "%s", hash);
            } else if (r->ok && strcmp(hash, r->hash) != 0) {
                snprintf(r->note, sizeof r->note, "C: round %d gave a different result hash", q + 1);
                r->ok = 0;
            }
        } else if (!r->note[0]) {
            snprintf(r->note, sizeof r->note, "C: %.150s", line);
        }
        for (int d = 0; d < N_TORCH_DTYPES; d++) {
            t_us[d][q] = NAN;
            if (!o->torch || !o->torch_dtype[d]) continue;
            snprintf(cmd, sizeof cmd,
                     "%s '%s' '%s' --N %zu --K %zu --G %zu --M %zu --T %zu --beta %.17g --n-tot %.17g --threads %d "
                     "--blocks %d --block-ms %.3f%s%s 2>&1",
                     env, o->torch_python, o->torch_script, c->N, c->K, c->G, c->M, c->T, c->beta, c->n_tot, threads,
                     o->blocks, 1e3 * o->block_s, torch_dtype_flag[d], o->clock_arg);
            if (run_capture(cmd, line, sizeof line)) {
                t_us[d][q] = field(line, "us");
                if (q == 0) r->torch_rss_kb[d] = field(line, "rss_kb");
            } else if (!r->note[0]) {
                snprintf(r->note, sizeof r->note, "PyTorch: %.140s", line);
            }
        }
    }
    if (r->ok) {
        r->us = median_of(lib_us, o->rounds);
        r->us_min = median_of(lib_min, o->rounds);
    }
    for (int d = 0; d < N_TORCH_DTYPES; d++)
        if (o->torch && o->torch_dtype[d]) r->torch_us[d] = median_of(t_us[d], o->rounds);
    step_cost(c, &r->flops, &r->exps);
    r->floor_us = 1e6 * (r->flops / gemm_rate + r->exps / exp_rate);
}

static void usage(void)
{
    printf("bench_step: time one libdisrnn training step against PyTorch and the machine's floor.\n"
           "  --configs S1,S2,S3,S4   configurations (default all)\n"
           "  --threads 1,2           OpenBLAS thread counts, one process each (default 1,2)\n"
           "  --blocks B              timed blocks per measurement; the median is reported (default 15)\n"
           "  --block-ms T            minimum length of a block in ms (default 20)\n"
           "  --rounds R              rounds of the library and PyTorch, alternated; medians (default 3)\n"
           "  --no-torch              skip the PyTorch comparison\n"
           "  --torch-dtype 64,32     PyTorch precisions to run (default both)\n"
           "  --torch-script PATH     bench/torch_step.py (default: next to this program's sources)\n"
           "  --torch-python PATH     interpreter with torch (default /usr/bin/python3)\n"
           "  --no-fit                skip the whole-fit timing\n"
           "  --fit-epochs E          epochs of the fit (default 5000), --fit-runs R (default 3)\n"
           "  --torch-fit             also time the whole fit in PyTorch (minutes: 40000 steps per dtype)\n"
           "  --scaling FILE          sweep N, K, G and M around a base and write a gnuplot data file\n"
           "  --clock wall|cpu        time with the wall clock (default) or with CPU time summed over\n"
           "                          threads (a development aid on a shared machine; use one thread)\n");
}

static int parse_list(const char *s, int *out, int cap, int is_config)
{
    int n = 0;
    char buf[256];
    char *tok, *save = NULL;
    snprintf(buf, sizeof buf, "%s", s);
    for (tok = strtok_r(buf, ",", &save); tok && n < cap; tok = strtok_r(NULL, ",", &save)) {
        if (is_config) {
            int found = -1;
            for (size_t i = 0; i < N_STD_CONFIGS; i++)
                if (strcmp(tok, std_configs[i].name) == 0) found = (int)i;
            if (found < 0) {
                fprintf(stderr, "bench_step: unknown configuration %s\n", tok);
                exit(2);
            }
            out[n++] = found;
        } else {
            out[n++] = atoi(tok);
        }
    }
    return n;
}

static void peaks(const opts *o, int threads, double *gemm_rate, double *exp_rate, double *libmvec, double *poly)
{
    char cmd[1024], env[160], line[1024];
    env_prefix(env, sizeof env, threads);
    snprintf(cmd, sizeof cmd, "%s '%s' --worker-peak %d%s", env, o->self, threads, o->clock_arg);
    if (!run_capture(cmd, line, sizeof line)) {
        fprintf(stderr, "bench_step: peak measurement failed: %s\n", line);
        exit(2);
    }
    *gemm_rate = field(line, "gemm_flops");
    *exp_rate = field(line, "exp_rate");
    if (libmvec) *libmvec = field(line, "libmvec_rate");
    if (poly) *poly = field(line, "poly_rate");
}

/* Sweeps of one dimension at a time around a base, single thread, written for gnuplot. */
static void scaling(const opts *o)
{
    static const size_t Ns[] = {20, 50, 100, 200, 500, 1000, 2000, 5000};
    static const size_t Ks[] = {2, 4, 8, 16, 32};
    static const size_t Gs[] = {1, 2, 4, 8, 16};
    static const size_t Ms[] = {32, 64, 128, 256, 512, 1024};
    const bcfg base = {"base", 500, 8, 2, 128, 1024, 2.0, 1000.0};
    double gr, er;
    FILE *f = fopen(o->scaling_out, "w");
    if (!f) {
        fprintf(stderr, "bench_step: cannot write %s\n", o->scaling_out);
        exit(2);
    }
    peaks(o, 1, &gr, &er, NULL, NULL);
    fprintf(f, "# libdisrnn step scaling, 1 thread; base N 500, K 8, G 2, M 128\n"
               "# sweep value us_libdisrnn us_floor us_pytorch_f64 us_pytorch_f32\n");
    for (int sw = 0; sw < 4; sw++) {
        const size_t *vals = sw == 0 ? Ns : sw == 1 ? Ks : sw == 2 ? Gs : Ms;
        const size_t nv = sw == 0 ? 8 : sw == 1 ? 5 : sw == 2 ? 5 : 6;
        const char *name = sw == 0 ? "N" : sw == 1 ? "K" : sw == 2 ? "G" : "M";
        for (size_t i = 0; i < nv; i++) {
            bcfg c = base;
            row r;
            if (sw == 0) c.N = vals[i];
            if (sw == 1) c.K = vals[i];
            if (sw == 2) {
                c.K = 16;
                c.G = vals[i];
            }
            if (sw == 3) {
                c.M = vals[i];
                c.T = 8 * c.M;
            }
            snprintf(c.name, sizeof c.name, "%s=%zu", name, vals[i]);
            measure(o, &c, 1, gr, er, &r);
            fprintf(f, "%s %zu %.3f %.3f %.3f %.3f\n", name, vals[i], r.us, r.floor_us, r.torch_us[0],
                    r.torch_us[1]);
            printf("scaling %-8s libdisrnn %10.1f us  floor %10.1f us  PyTorch f64 %10.1f us  f32 %10.1f us %s\n",
                   c.name, r.us, r.floor_us, r.torch_us[0], r.torch_us[1], r.note);
            fflush(f);
        }
        fprintf(f, "\n\n");
    }
    fclose(f);
}

/* Other jobs on the machine inflate wall-clock times: say how busy it was. */
static void print_load(const char *when)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double l1;
    if (!f) return;
    if (fscanf(f, "%lf", &l1) == 1)
        printf("load average %s: %.2f%s\n", when, l1,
               l1 > 0.5 ? " (the machine is busy: wall-clock times are inflated; see --clock cpu)" : "");
    fclose(f);
}

static int parent(const opts *o)
{
    double gemm[MAX_THREADS], expr[MAX_THREADS];
    row rows[N_STD_CONFIGS][MAX_THREADS];
    char line[1024], cmd[1024], env[160];

    printf("libdisrnn %s bench: one training step (objective + gradient + Adam) per configuration\n",
           disrnn_version_string());
    print_load("at start");
    for (int ti = 0; ti < o->n_threads; ti++) {
        double lm, po;
        peaks(o, o->threads[ti], &gemm[ti], &expr[ti], &lm, &po);
        printf("peak rates, %d thread(s): DGEMM %.1f GFLOP/s; vector exp %.0f M/s (%.3f ns each; glibc libmvec "
               "%.0f M/s, polynomial %.0f M/s)\n",
               o->threads[ti], 1e-9 * gemm[ti], 1e-6 * expr[ti], 1e9 / expr[ti], 1e-6 * lm, 1e-6 * po);
    }
    if (o->scaling_out) {
        scaling(o);
        return 0;
    }
    for (int ci = 0; ci < o->n_configs; ci++)
        for (int ti = 0; ti < o->n_threads; ti++)
            measure(o, &std_configs[o->configs[ci]], o->threads[ti], gemm[ti], expr[ti], &rows[ci][ti]);

    printf("\n%-4s %3s %10s %8s %10s %7s %10s %7s %9s %7s %8s %7s %7s %7s %7s %s\n", "cfg", "thr", "us/step",
           "steps/s", "PT64 us", "x PT64", "PT32 us", "x PT32", "floor us", "/floor", "MFLOP", "kexp", "RSS MB",
           "PT RSS", "alloc/s", "bits");
    for (int ci = 0; ci < o->n_configs; ci++) {
        const bcfg *c = &std_configs[o->configs[ci]];
        for (int ti = 0; ti < o->n_threads; ti++) {
            const row *r = &rows[ci][ti];
            const char *same = "";
            if (ti > 0 && r->ok && rows[ci][0].ok) same = strcmp(r->hash, rows[ci][0].hash) == 0 ? "same" : "DIFFER";
            else if (r->ok) same = "ref";
            if (!r->ok) {
                printf("%-4s %3d   (failed) %s\n", c->name, o->threads[ti], r->note);
                continue;
            }
            printf("%-4s %3d %10.1f %8.0f %10.1f %7.1f %10.1f %7.1f %9.1f %7.2f %8.2f %7.1f %7.1f %7.1f %7.2f %s\n",
                   c->name, o->threads[ti], r->us, 1e6 / r->us, r->torch_us[0], r->torch_us[0] / r->us,
                   r->torch_us[1], r->torch_us[1] / r->us, r->floor_us, r->us / r->floor_us, 1e-6 * r->flops,
                   1e-3 * r->exps, r->rss_kb / 1024.0, r->torch_rss_kb[0] / 1024.0, r->allocs, same);
            if (r->note[0]) printf("     note: %s\n", r->note);
        }
    }
    printf("us/step: median over %d timed blocks of at least %.0f ms, then the median of %d rounds, each round\n"
           "the library then PyTorch (alternated, so both see the same stretches of the machine's time).\n"
           "PT64/PT32: the same step in PyTorch in float64/float32 (x = PyTorch time / libdisrnn time).\n"
           "floor = flops / DGEMM rate + exps / exp rate (/floor = time / floor). RSS: peak resident memory of\n"
           "the process (PT RSS: PyTorch float64). alloc/s: allocations per timed step. bits: parameters and\n"
           "loss after 20 steps, compared with the first thread count (and equal in every round).%s\n",
           o->blocks, 1e3 * o->block_s, o->rounds, o->torch ? "" : " PyTorch skipped (--no-torch).");

    print_load("after the steps");
    if (o->fit) {
        for (int ti = 0; ti < o->n_threads; ti++) {
            double secs[16];
            int n_ok = 0;
            env_prefix(env, sizeof env, o->threads[ti]);
            snprintf(cmd, sizeof cmd, "%s '%s' --worker-fit %d", env, o->self, o->fit_epochs);
            for (int r = 0; r < o->fit_runs && r < 16; r++) {
                if (run_capture(cmd, line, sizeof line)) {
                    secs[n_ok++] = field(line, "seconds");
                } else {
                    printf("fit (%d thread): failed: %s\n", o->threads[ti], line);
                    break;
                }
            }
            if (n_ok > 0) {
                const double med = median(secs, (size_t)n_ok);
                printf("whole fit, paper synthetic (N 20, K 6, (3,3), beta 20, 1000 bins, batch 128, %d epochs, "
                       "AdamW), %d thread(s): %.3f s (median of %d; last run: %.0f steps, %.1f us/step, final "
                       "loss %.4f, PC %.4f)\n",
                       o->fit_epochs, o->threads[ti], med, n_ok, field(line, "steps"), field(line, "us_per_step"),
                       field(line, "loss"), field(line, "pc"));
            }
        }
        if (o->torch_fit && o->torch)
            for (int d = 0; d < N_TORCH_DTYPES; d++) {
                if (!o->torch_dtype[d]) continue;
                snprintf(cmd, sizeof cmd,
                         "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 '%s' '%s' --fit --fit-epochs %d --threads 1%s 2>&1",
                         o->torch_python, o->torch_script, o->fit_epochs, torch_dtype_flag[d]);
                if (run_capture(cmd, line, sizeof line))
                    printf("whole fit in PyTorch %s, 1 thread: %.3f s\n", d ? "float32" : "float64",
                           field(line, "seconds"));
                else
                    printf("whole fit in PyTorch: %s\n", line);
            }
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    memset(&o, 0, sizeof o);
    o.self = argv[0];
    o.torch_script = "bench/torch_step.py";
    o.torch_python = "/usr/bin/python3";
    o.clock_arg = "";
    o.threads[0] = 1;
    o.threads[1] = 2;
    o.n_threads = 2;
    for (size_t i = 0; i < N_STD_CONFIGS; i++) o.configs[i] = (int)i;
    o.n_configs = (int)N_STD_CONFIGS;
    o.blocks = 15;
    o.rounds = 3;
    o.block_s = 0.02;
    o.torch = 1;
    o.torch_dtype[0] = o.torch_dtype[1] = 1;
    o.fit = 1;
    o.fit_epochs = 5000;
    o.fit_runs = 3;

    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--clock") == 0) {
            if (strcmp(argv[i + 1], "cpu") == 0) {
                bench_clock = CLOCK_PROCESS_CPUTIME_ID;
                o.clock_arg = " --clock cpu";
            } else if (strcmp(argv[i + 1], "wall") != 0) {
                fprintf(stderr, "bench_step: --clock takes wall or cpu\n");
                return 2;
            }
        }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int more = i + 1 < argc;
        if (strcmp(a, "--clock") == 0 && more) {
            i++;
            continue;
        }
        if (strcmp(a, "--worker-step") == 0 && i + 7 < argc) {
            bcfg c;
            int blocks = 15;
            double block_s = 0.02;
            memset(&c, 0, sizeof c);
            snprintf(c.name, sizeof c.name, "custom");
            c.N = strtoul(argv[i + 1], NULL, 10);
            c.K = strtoul(argv[i + 2], NULL, 10);
            c.G = strtoul(argv[i + 3], NULL, 10);
            c.M = strtoul(argv[i + 4], NULL, 10);
            c.T = strtoul(argv[i + 5], NULL, 10);
            c.beta = strtod(argv[i + 6], NULL);
            c.n_tot = strtod(argv[i + 7], NULL);
            for (int j = i + 8; j + 1 < argc; j++) {
                if (strcmp(argv[j], "--blocks") == 0) blocks = atoi(argv[j + 1]);
                if (strcmp(argv[j], "--block-ms") == 0) block_s = 1e-3 * strtod(argv[j + 1], NULL);
            }
            if (c.G < 1 || c.G > MAX_GROUPS || c.G > c.K || blocks < 1) {
                fprintf(stderr, "bench_step: bad worker arguments\n");
                return 2;
            }
            return worker_step(&c, blocks, block_s);
        } else if (strcmp(a, "--worker-peak") == 0 && more) {
            return worker_peak(atoi(argv[i + 1]));
        } else if (strcmp(a, "--worker-fit") == 0 && more) {
            return worker_fit(atoi(argv[i + 1]));
        } else if (strcmp(a, "--configs") == 0 && more) {
            o.n_configs = parse_list(argv[++i], o.configs, (int)N_STD_CONFIGS, 1);
        } else if (strcmp(a, "--threads") == 0 && more) {
            o.n_threads = parse_list(argv[++i], o.threads, MAX_THREADS, 0);
        } else if (strcmp(a, "--blocks") == 0 && more) {
            o.blocks = atoi(argv[++i]);
        } else if (strcmp(a, "--rounds") == 0 && more) {
            o.rounds = atoi(argv[++i]);
        } else if (strcmp(a, "--block-ms") == 0 && more) {
            o.block_s = 1e-3 * strtod(argv[++i], NULL);
        } else if (strcmp(a, "--no-torch") == 0) {
            o.torch = 0;
        } else if (strcmp(a, "--torch-dtype") == 0 && more) {
            const char *v = argv[++i];
            o.torch_dtype[0] = strstr(v, "64") != NULL;
            o.torch_dtype[1] = strstr(v, "32") != NULL;
        } else if (strcmp(a, "--torch-script") == 0 && more) {
            o.torch_script = argv[++i];
        } else if (strcmp(a, "--torch-python") == 0 && more) {
            o.torch_python = argv[++i];
        } else if (strcmp(a, "--no-fit") == 0) {
            o.fit = 0;
        } else if (strcmp(a, "--fit-epochs") == 0 && more) {
            o.fit_epochs = atoi(argv[++i]);
        } else if (strcmp(a, "--fit-runs") == 0 && more) {
            o.fit_runs = atoi(argv[++i]);
        } else if (strcmp(a, "--torch-fit") == 0) {
            o.torch_fit = 1;
        } else if (strcmp(a, "--scaling") == 0 && more) {
            o.scaling_out = argv[++i];
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "bench_step: unknown argument %s (try --help)\n", a);
            return 2;
        }
    }
    for (int t = 0; t < o.n_threads; t++)
        if (o.threads[t] < 1 || o.threads[t] > MAX_THREADS) {
            fprintf(stderr, "bench_step: thread counts must be 1..%d\n", MAX_THREADS);
            return 2;
        }
    if (o.blocks < 1 || o.rounds < 1 || o.rounds > MAX_ROUNDS || o.n_configs < 1 || o.n_threads < 1 || o.fit_runs < 1) {
        fprintf(stderr, "bench_step: bad options\n");
        return 2;
    }
    return parent(&o);
}
