/* synthetic: the paper's synthetic experiment (Li et al. 2025, Sec. 4.1; MODEL.md section 6) end
 * to end, using only the public libdisrnn API.
 *
 *   1. integrate a Lorenz and a Thomas system (K = 6 true latents in two groups of 3), fit a
 *      ground-truth low-rank network to them and draw N = 20 observed channels;
 *   2. split the 2000 bins: even bins train, odd bins test;
 *   3. fit lrRNN, LINT (the SVD view of the lrRNN), bdRNN, DisRNN-full and DisRNN over several
 *      seeds, and score each on the test bins: PC, group-aligned latent R^2, sub-connectivity
 *      correlation with the truth, reconstruction R^2 and time;
 *   4. write results.csv, print a mean +- sd table and draw figures with gnuplot.
 *
 * Run `synthetic --help` for the flags; docs/examples.md describes the outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disrnn.h"
#include "ex_util.h"

enum method { M_LRRNN = 0, M_LINT, M_BDRNN, M_DISRNN_FULL, M_DISRNN, M_COUNT };
static const char *const method_name[M_COUNT] = {"lrrnn", "lint", "bdrnn", "disrnn-full", "disrnn"};
static const char *const method_label[M_COUNT] = {"lrRNN", "LINT", "bdRNN", "DisRNN-full", "DisRNN"};

#define MAX_K 16
#define MAX_SEEDS 1000

typedef struct options {
    long seeds, epochs, batch, gt_iters, n_mc;
    long data_seed, seed0;
    double beta, alpha, lr, weight_decay, obs_noise, thomas_b;
    int thomas_classic;
    size_t G, H;
    int methods[M_COUNT];
    const char *out;
    int quiet, demo, figures, verbose;
} options;

typedef struct result {
    double pc, aligned_r2, subconn_corr, recon_r2, seconds;
} result;

/* What the first seed keeps for the figures. */
typedef struct keep {
    int have;
    double *aligned; /* 6 x n aligned latents */
    double *Wg;      /* 2 fitted groups matched to the true ones, N x N each */
    double *W;       /* full fitted W */
    ex_progress curve;
} keep;

typedef struct context {
    const options *opt;
    ex_synth syn;
    disrnn_dataset_t *train, *test;
    size_t n_test;
    double *z_test;  /* 6 x n_test true latents of the test samples */
    double *Wtrue_g; /* 2 true sub-connectivities */
    double *Wtrue;
} context;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: synthetic [options]\n"
            "  --seeds N          seeds per method (default 10, the paper's; --demo 3)\n"
            "  --epochs N         training epochs per fit (default 5000, the paper's; --demo 2000)\n"
            "  --beta X           PC weight of DisRNN and DisRNN-full (default 20)\n"
            "  --alpha X          block-diagonal weight of bdRNN (default 1)\n"
            "  --groups G,H       DisRNN groups (default 2,3; every method uses K = G*H)\n"
            "  --methods LIST     comma-separated subset of lrrnn,lint,bdrnn,disrnn-full,disrnn (default all)\n"
            "  --lr X             learning rate (default 1e-3)\n"
            "  --batch N          minibatch size (default 128)\n"
            "  --weight-decay X   AdamW decoupled decay (default 0.01)\n"
            "  --data-seed N      one fixed data set (observation noise and ground-truth network fit) for\n"
            "                     every seed; default: each seed makes its own data set with data seed = seed\n"
            "  --seed0 N          first model seed (default 1; seeds are seed0 .. seed0+N-1)\n"
            "  --thomas-b X       damping b of the Thomas system (default 0, as in MODEL.md)\n"
            "  --thomas-form F    model (dx = -sin y - b x, MODEL.md, default) or classic (dx = sin y - b x)\n"
            "  --gt-iters N       Adam steps of the ground-truth network fit (default 2000)\n"
            "  --no-figures       do not write gnuplot scripts or PNG files\n"
            "  --out DIR          output folder (default out/synthetic)\n"
            "  --demo             short settings for a quick look (about a minute on 2 cores)\n"
            "  --quiet            no progress output\n"
            "  --verbose          print each fit's pair R^2 matrix (true group x fitted group)\n"
            "  --help             this text\n");
}

static int parse_methods(const char *s, int *on)
{
    char buf[256];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    for (int m = 0; m < M_COUNT; m++) on[m] = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = 0;
        for (int m = 0; m < M_COUNT; m++)
            if (strcmp(tok, method_name[m]) == 0) on[m] = found = 1;
        if (!found) {
            fprintf(stderr, "--methods: unknown method '%s'\n", tok);
            return -1;
        }
    }
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->seeds = -1;
    o->epochs = -1;
    o->batch = 128;
    o->gt_iters = 2000;
    o->n_mc = 4;
    o->data_seed = -1;
    o->seed0 = 1;
    o->beta = 20.0;
    o->alpha = 1.0;
    o->lr = 1e-3;
    o->weight_decay = 0.01;
    o->obs_noise = 0.1;
    o->G = 2;
    o->H = 3;
    for (int m = 0; m < M_COUNT; m++) o->methods[m] = 1;
    o->out = "out/synthetic";
    o->figures = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--demo") == 0) {
            o->demo = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if (strcmp(a, "--verbose") == 0) {
            o->verbose = 1;
        } else if (strcmp(a, "--no-figures") == 0) {
            o->figures = 0;
        } else if (!(v = ex_flag_value(argc, argv, &i))) {
            return -1;
        } else if (strcmp(a, "--seeds") == 0) {
            if (ex_parse_long(a, v, 1, MAX_SEEDS, &o->seeds)) return -1;
        } else if (strcmp(a, "--epochs") == 0) {
            if (ex_parse_long(a, v, 1, 10000000, &o->epochs)) return -1;
        } else if (strcmp(a, "--batch") == 0) {
            if (ex_parse_long(a, v, 2, 1000, &o->batch)) return -1;
        } else if (strcmp(a, "--gt-iters") == 0) {
            if (ex_parse_long(a, v, 1, 10000000, &o->gt_iters)) return -1;
        } else if (strcmp(a, "--data-seed") == 0) {
            if (ex_parse_long(a, v, 0, 2147483647L, &o->data_seed)) return -1;
        } else if (strcmp(a, "--seed0") == 0) {
            if (ex_parse_long(a, v, 0, 2147483647L, &o->seed0)) return -1;
        } else if (strcmp(a, "--beta") == 0) {
            if (ex_parse_double(a, v, 0.0, 1e6, &o->beta)) return -1;
        } else if (strcmp(a, "--thomas-b") == 0) {
            if (ex_parse_double(a, v, 0.0, 10.0, &o->thomas_b)) return -1;
        } else if (strcmp(a, "--thomas-form") == 0) {
            if (strcmp(v, "model") == 0)
                o->thomas_classic = 0;
            else if (strcmp(v, "classic") == 0)
                o->thomas_classic = 1;
            else {
                fprintf(stderr, "--thomas-form: expected model or classic\n");
                return -1;
            }
        } else if (strcmp(a, "--alpha") == 0) {
            if (ex_parse_double(a, v, 0.0, 1e6, &o->alpha)) return -1;
        } else if (strcmp(a, "--lr") == 0) {
            if (ex_parse_double(a, v, 1e-8, 10.0, &o->lr)) return -1;
        } else if (strcmp(a, "--weight-decay") == 0) {
            if (ex_parse_double(a, v, 0.0, 10.0, &o->weight_decay)) return -1;
        } else if (strcmp(a, "--groups") == 0) {
            size_t gh[2], n = 0;
            if (ex_parse_sizes(a, v, gh, 2, &n)) return -1;
            if (n != 2 || gh[0] < 2 || gh[0] * gh[1] > MAX_K) {
                fprintf(stderr, "--groups: expected G,H with G >= 2 and G*H <= %d\n", MAX_K);
                return -1;
            }
            o->G = gh[0];
            o->H = gh[1];
        } else if (strcmp(a, "--methods") == 0) {
            if (parse_methods(v, o->methods)) return -1;
        } else if (strcmp(a, "--out") == 0) {
            o->out = v;
        } else {
            fprintf(stderr, "unknown option %s\n", a);
            usage(stderr);
            return -1;
        }
    }
    if (o->seeds < 0) o->seeds = o->demo ? 3 : 10;
    if (o->epochs < 0) o->epochs = o->demo ? 2000 : 5000;
    return 0;
}

/* ---------------------------------------------------------------- data */

static void setup_context(context *cx, const options *o, uint64_t data_seed)
{
    memset(cx, 0, sizeof *cx);
    cx->opt = o;
    ex_thomas_params(o->thomas_b, o->thomas_classic);
    if (ex_synth_make(&cx->syn, data_seed, 20, (size_t)o->gt_iters, o->obs_noise)) exit(1);
    const size_t N = cx->syn.N, T = cx->syn.T, K = cx->syn.K;
    if (!o->quiet)
        fprintf(stderr,
                "data set %llu: Lorenz + Thomas, %zu bins, N = %zu; ground-truth network one-step R^2 %.4f (%.1f s)\n",
                (unsigned long long)data_seed, T, N, cx->syn.fit_r2, cx->syn.fit_seconds);

    disrnn_dataset_t *all = NULL;
    ex_check(disrnn_dataset_create(&all, N, 0, DISRNN_DATA_CONTINUOUS), "disrnn_dataset_create", NULL);
    ex_check(disrnn_dataset_add_trial(all, T, cx->syn.x, N, NULL, 0, NULL, 0), "disrnn_dataset_add_trial",
             disrnn_dataset_last_error(all));
    /* The paper's split: even bins train, odd bins test (their history still comes from every bin). */
    ex_check(disrnn_dataset_subset_interleaved(all, 2, 0, &cx->train), "disrnn_dataset_subset_interleaved",
             disrnn_dataset_last_error(all));
    ex_check(disrnn_dataset_subset_interleaved(all, 2, 1, &cx->test), "disrnn_dataset_subset_interleaved",
             disrnn_dataset_last_error(all));
    disrnn_dataset_free(all);

    /* Which bins the test samples are: ask the library with a throw-away model of the same padding. */
    disrnn_config_t *cfg = NULL;
    disrnn_model_t *m = NULL;
    ex_check(disrnn_config_create(&cfg, N, K), "disrnn_config_create", NULL);
    ex_check(disrnn_config_set_int(cfg, DISRNN_OPT_PADDING, DISRNN_PAD_ZERO), "disrnn_config_set_int",
             disrnn_config_last_error(cfg));
    ex_check(disrnn_model_create(&m, cfg), "disrnn_model_create", disrnn_config_last_error(cfg));
    cx->n_test = disrnn_dataset_num_samples(cx->test, m);
    size_t *bins = ex_xmalloc(cx->n_test * sizeof(size_t));
    ex_check(disrnn_dataset_sample_index(cx->test, m, NULL, bins, cx->n_test), "disrnn_dataset_sample_index",
             disrnn_dataset_last_error(cx->test));
    cx->z_test = ex_doubles(K * cx->n_test);
    for (size_t j = 0; j < cx->n_test; j++)
        memcpy(cx->z_test + j * K, cx->syn.z + bins[j] * K, K * sizeof(double));
    free(bins);
    disrnn_model_free(m);
    disrnn_config_free(cfg);

    /* True sub-connectivities W_g = A[:, g] B[g, :] of the Lorenz (dims 0-2) and Thomas (3-5) groups. */
    cx->Wtrue_g = ex_doubles(2 * N * N);
    cx->Wtrue = ex_doubles(N * N);
    for (size_t g = 0; g < 2; g++)
        for (size_t j = 0; j < N; j++)
            for (size_t i = 0; i < N; i++) {
                double s = 0.0;
                for (size_t k = 3 * g; k < 3 * g + 3; k++) s += cx->syn.A[i + k * N] * cx->syn.B[k + j * K];
                cx->Wtrue_g[g * N * N + i + j * N] = s;
                cx->Wtrue[i + j * N] += s;
            }
}

static void free_context(context *cx)
{
    disrnn_dataset_free(cx->train);
    disrnn_dataset_free(cx->test);
    free(cx->z_test);
    free(cx->Wtrue_g);
    free(cx->Wtrue);
    ex_synth_free(&cx->syn);
}

/* ---------------------------------------------------------------- fitting */

static disrnn_model_t *make_model(const options *o, int method, uint64_t seed)
{
    const size_t K = o->G * o->H;
    size_t sizes[MAX_K];
    size_t G = 1;
    double beta = 0.0, alpha = 0.0;
    switch (method) {
    case M_LRRNN:
    case M_LINT:
        G = 1;
        sizes[0] = K;
        break;
    case M_BDRNN:
        G = o->G;
        for (size_t g = 0; g < G; g++) sizes[g] = o->H;
        alpha = o->alpha;
        break;
    case M_DISRNN_FULL:
        G = K;
        for (size_t g = 0; g < G; g++) sizes[g] = 1;
        beta = o->beta;
        break;
    default:
        G = o->G;
        for (size_t g = 0; g < G; g++) sizes[g] = o->H;
        beta = o->beta;
        break;
    }
    disrnn_config_t *cfg = NULL;
    disrnn_model_t *m = NULL;
    ex_check(disrnn_config_create(&cfg, 20, K), "disrnn_config_create", NULL);
    ex_check(disrnn_config_set_groups(cfg, sizes, G), "disrnn_config_set_groups", disrnn_config_last_error(cfg));
    /* The synthetic reference code pads the history with zeros. */
    ex_check(disrnn_config_set_int(cfg, DISRNN_OPT_PADDING, DISRNN_PAD_ZERO), "disrnn_config_set_int",
             disrnn_config_last_error(cfg));
    ex_check(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, beta), "disrnn_config_set_double",
             disrnn_config_last_error(cfg));
    ex_check(disrnn_config_set_double(cfg, DISRNN_OPT_ALPHA, alpha), "disrnn_config_set_double",
             disrnn_config_last_error(cfg));
    ex_check(disrnn_config_set_seed(cfg, seed), "disrnn_config_set_seed", disrnn_config_last_error(cfg));
    ex_check(disrnn_model_create(&m, cfg), "disrnn_model_create", disrnn_config_last_error(cfg));
    disrnn_config_free(cfg);
    return m;
}

static double fit_model(const context *cx, disrnn_model_t *m, uint64_t seed, ex_progress *prog)
{
    const options *o = cx->opt;
    disrnn_trainer_t *tr = NULL;
    ex_check(disrnn_trainer_create(&tr, m, cx->train, seed), "disrnn_trainer_create", disrnn_model_last_error(m));
    ex_check(disrnn_trainer_set_int(tr, DISRNN_TRAIN_OPTIMIZER, DISRNN_OPTIM_ADAMW), "trainer option",
             disrnn_trainer_last_error(tr));
    ex_check(disrnn_trainer_set_double(tr, DISRNN_TRAIN_WEIGHT_DECAY, o->weight_decay), "trainer option",
             disrnn_trainer_last_error(tr));
    ex_check(disrnn_trainer_set_double(tr, DISRNN_TRAIN_LR, o->lr), "trainer option", disrnn_trainer_last_error(tr));
    ex_check(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, o->batch), "trainer option",
             disrnn_trainer_last_error(tr));
    ex_check(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, o->epochs), "trainer option",
             disrnn_trainer_last_error(tr));
    ex_check(disrnn_trainer_set_progress(tr, ex_progress_cb, prog), "disrnn_trainer_set_progress",
             disrnn_trainer_last_error(tr));
    const double t0 = ex_now();
    const int st = disrnn_trainer_fit(tr);
    const double secs = ex_now() - t0;
    ex_progress_finish(prog, st, secs);
    ex_check(st, "disrnn_trainer_fit", disrnn_trainer_last_error(tr));
    disrnn_trainer_free(tr);
    return secs;
}

/* ---------------------------------------------------------------- evaluation */

/* The fitted latents and sub-connectivities as the evaluation sees them: n_groups groups of
 * consecutive dimensions of lat (K x n), and one N x N matrix per group. */
typedef struct eval_view {
    size_t K, G;
    size_t sizes[MAX_K];
    double *lat; /* K x n */
    double *Wg;  /* G x N x N */
    double *s;   /* K encoder standard deviations in this basis, or NULL (no PC) */
} eval_view;

static void view_free(eval_view *v)
{
    free(v->lat);
    free(v->Wg);
    free(v->s);
}

/* W_g = sum over k in the group of left[:, k] right[k, :] for consecutive groups. */
static void outer_groups(size_t N, size_t K, const double *left, const double *right, const size_t *perm,
                         size_t G, const size_t *sizes, double *Wg)
{
    size_t k0 = 0;
    for (size_t g = 0; g < G; g++) {
        double *W = Wg + g * N * N;
        for (size_t q = 0; q < N * N; q++) W[q] = 0.0;
        for (size_t kk = k0; kk < k0 + sizes[g]; kk++) {
            const size_t k = perm ? perm[kk] : kk;
            for (size_t j = 0; j < N; j++)
                for (size_t i = 0; i < N; i++) W[i + j * N] += left[i + k * N] * right[k + j * K];
        }
        k0 += sizes[g];
    }
}

/* All ways to split K singleton dimensions into G unordered groups of H: perm lists the members
 * group by group. Calls fn for each; used to give DisRNN-full its best grouping. */
typedef void (*partition_fn)(const size_t *perm, void *ud);
static void partitions_rec(size_t K, size_t H, size_t *perm, size_t filled, int *used, partition_fn fn, void *ud,
                           size_t start_in_group, size_t last)
{
    if (filled == K) {
        fn(perm, ud);
        return;
    }
    if (start_in_group == 0) {
        /* A new group starts with the smallest unused dimension, so groups are not counted twice. */
        size_t first = 0;
        while (used[first]) first++;
        used[first] = 1;
        perm[filled] = first;
        partitions_rec(K, H, perm, filled + 1, used, fn, ud, H > 1 ? 1 : 0, first);
        used[first] = 0;
        return;
    }
    for (size_t k = last + 1; k < K; k++) {
        if (used[k]) continue;
        used[k] = 1;
        perm[filled] = k;
        partitions_rec(K, H, perm, filled + 1, used, fn, ud, start_in_group + 1 == H ? 0 : start_in_group + 1, k);
        used[k] = 0;
    }
}

typedef struct best_part {
    const context *cx;
    const double *mu;
    size_t K, G, H, n;
    double *tmp;
    double best;
    size_t perm[MAX_K];
    size_t count;
} best_part;

static void permute_rows(const double *src, size_t K, size_t n, const size_t *perm, double *dst)
{
    for (size_t j = 0; j < n; j++)
        for (size_t k = 0; k < K; k++) dst[j * K + k] = src[j * K + perm[k]];
}

static void try_partition(const size_t *perm, void *ud)
{
    best_part *b = ud;
    const size_t ref_groups[2] = {3, 3};
    size_t sizes[MAX_K];
    for (size_t g = 0; g < b->G; g++) sizes[g] = b->H;
    permute_rows(b->mu, b->K, b->n, perm, b->tmp);
    double r2 = -INFINITY;
    if (disrnn_align_r2(b->n, b->cx->z_test, 6, ref_groups, 2, b->tmp, b->K, sizes, b->G, &r2, NULL, NULL, NULL,
                        6) == DISRNN_OK &&
        r2 > b->best) {
        b->best = r2;
        memcpy(b->perm, perm, b->K * sizeof(size_t));
    }
    b->count++;
}

static void get_block(const disrnn_model_t *m, int block, double *out, size_t len, const char *what)
{
    ex_check(disrnn_model_get_param(m, block, out, len), what, disrnn_model_last_error(m));
}

/* Build the evaluation view of a fitted model for a method (see docs/examples.md, "How each
 * method is scored"). */
static void build_view(const context *cx, const disrnn_model_t *m, int method, const double *mu, eval_view *v)
{
    const options *o = cx->opt;
    const size_t N = 20, K = o->G * o->H, n = cx->n_test;
    memset(v, 0, sizeof *v);
    v->K = K;
    v->lat = ex_doubles(K * n);
    double *A = ex_doubles(N * K), *B = ex_doubles(K * N), *logs = ex_doubles(K);
    get_block(m, DISRNN_BLOCK_A, A, N * K, "get A");
    get_block(m, DISRNN_BLOCK_B, B, K * N, "get B");
    get_block(m, DISRNN_BLOCK_LOG_S, logs, K, "get log s");

    if (method == M_DISRNN || method == M_BDRNN) {
        size_t G = 0;
        ex_check(disrnn_model_dims(m, NULL, NULL, &G, NULL, NULL), "disrnn_model_dims", disrnn_model_last_error(m));
        v->G = G;
        ex_check(disrnn_model_groups(m, v->sizes, MAX_K), "disrnn_model_groups", disrnn_model_last_error(m));
        memcpy(v->lat, mu, K * n * sizeof(double));
        v->Wg = ex_doubles(G * N * N);
        for (size_t g = 0; g < G; g++)
            ex_check(disrnn_model_connectivity(m, DISRNN_CONN_W_GROUP, g, v->Wg + g * N * N, N * N),
                     "disrnn_model_connectivity", disrnn_model_last_error(m));
        v->s = ex_doubles(K);
        for (size_t k = 0; k < K; k++) v->s[k] = exp(logs[k]);
    } else if (method == M_LRRNN) {
        /* One group has no internal order: split its K dimensions consecutively into G groups of H. */
        v->G = o->G;
        for (size_t g = 0; g < v->G; g++) v->sizes[g] = o->H;
        memcpy(v->lat, mu, K * n * sizeof(double));
        v->Wg = ex_doubles(v->G * N * N);
        outer_groups(N, K, A, B, NULL, v->G, v->sizes, v->Wg);
        v->s = ex_doubles(K);
        for (size_t k = 0; k < K; k++) v->s[k] = exp(logs[k]);
    } else if (method == M_LINT) {
        /* LINT: W = U S V^T; its latents are V^T h = S^-2 (U S)^T A (mu - d), the lrRNN's latents in
         * the SVD basis, grouped consecutively by decreasing singular value. */
        double *left = ex_doubles(N * K), *right = ex_doubles(K * N), *sv = ex_doubles(K), *d = ex_doubles(K);
        double *Mx = ex_doubles(K * K);
        ex_check(disrnn_model_svd(m, SIZE_MAX, left, right, sv, K), "disrnn_model_svd", disrnn_model_last_error(m));
        get_block(m, DISRNN_BLOCK_BIAS_D, d, K, "get d");
        for (size_t k = 0; k < K; k++)
            for (size_t l = 0; l < K; l++) {
                double s = 0.0;
                for (size_t i = 0; i < N; i++) s += left[i + k * N] * A[i + l * N];
                Mx[k + l * K] = sv[k] > 0.0 ? s / (sv[k] * sv[k]) : 0.0;
            }
        for (size_t j = 0; j < n; j++)
            for (size_t k = 0; k < K; k++) {
                double s = 0.0;
                for (size_t l = 0; l < K; l++) s += Mx[k + l * K] * (mu[j * K + l] - d[l]);
                v->lat[j * K + k] = s;
            }
        v->G = o->G;
        for (size_t g = 0; g < v->G; g++) v->sizes[g] = o->H;
        v->Wg = ex_doubles(v->G * N * N);
        outer_groups(N, K, left, right, NULL, v->G, v->sizes, v->Wg);
        /* No per-dimension noise in this basis (the rotated encoder noise is correlated): no PC. */
        v->s = NULL;
        free(left);
        free(right);
        free(sv);
        free(d);
        free(Mx);
    } else { /* M_DISRNN_FULL */
        /* K singleton groups: merge them into G groups of H, choosing the merge that best aligns
         * with the true groups (the most favourable choice for this baseline). */
        best_part b;
        memset(&b, 0, sizeof b);
        b.cx = cx;
        b.mu = mu;
        b.K = K;
        b.G = o->G;
        b.H = o->H;
        b.n = n;
        b.tmp = ex_doubles(K * n);
        b.best = -INFINITY;
        for (size_t k = 0; k < K; k++) b.perm[k] = k;
        size_t perm[MAX_K];
        int used[MAX_K] = {0};
        partitions_rec(K, o->H, perm, 0, used, try_partition, &b, 0, 0);
        free(b.tmp);
        permute_rows(mu, K, n, b.perm, v->lat);
        v->G = o->G;
        for (size_t g = 0; g < v->G; g++) v->sizes[g] = o->H;
        v->Wg = ex_doubles(v->G * N * N);
        outer_groups(N, K, A, B, b.perm, v->G, v->sizes, v->Wg);
        v->s = ex_doubles(K);
        for (size_t k = 0; k < K; k++) v->s[k] = exp(logs[b.perm[k]]);
    }
    free(A);
    free(B);
    free(logs);
}

static void evaluate(const context *cx, const disrnn_model_t *m, int method, uint64_t seed, result *r, keep *kp)
{
    const options *o = cx->opt;
    const size_t N = 20, K = o->G * o->H, n = cx->n_test;
    double *mu = ex_doubles(K * n);
    ex_check(disrnn_model_latents(m, cx->test, mu, K, n), "disrnn_model_latents", disrnn_model_last_error(m));
    double metrics[4];
    ex_check(disrnn_model_evaluate(m, cx->test, metrics, 4), "disrnn_model_evaluate", disrnn_model_last_error(m));
    r->recon_r2 = metrics[DISRNN_METRIC_R2];

    eval_view v;
    build_view(cx, m, method, mu, &v);

    const size_t ref_groups[2] = {3, 3};
    double *aligned = ex_doubles(6 * n);
    double r2m[2 * MAX_K];
    size_t amatch[2];
    ex_check(disrnn_align_r2(n, cx->z_test, 6, ref_groups, 2, v.lat, K, v.sizes, v.G, &r->aligned_r2, r2m, amatch,
                             aligned, 6),
             "disrnn_align_r2", NULL);
    if (o->verbose) {
        fprintf(stderr, "  %s seed %llu: pair R^2 (rows Lorenz, Thomas; columns fitted groups):", method_label[method],
                (unsigned long long)seed);
        for (size_t a = 0; a < 2; a++) {
            fprintf(stderr, "\n   ");
            for (size_t g = 0; g < v.G; g++) fprintf(stderr, " %6.3f%s", r2m[a + g * 2], amatch[a] == g ? "*" : " ");
        }
        fprintf(stderr, "\n");
    }

    size_t assign[2];
    ex_check(disrnn_compare_grouped(N, 2, cx->Wtrue_g, v.G, v.Wg, assign, NULL, &r->subconn_corr),
             "disrnn_compare_grouped", NULL);

    r->pc = NAN;
    if (method == M_DISRNN) {
        /* The model's own groups: the library's evaluation PC. */
        ex_check(disrnn_model_eval_pc(m, cx->test, (size_t)o->n_mc, seed, &r->pc, NULL), "disrnn_model_eval_pc",
                 disrnn_model_last_error(m));
    } else if (v.s) {
        ex_check(disrnn_mixture_pc(K, v.sizes, v.G, n, v.lat, K, v.s, (size_t)o->n_mc, seed, &r->pc, NULL),
                 "disrnn_mixture_pc", NULL);
    }

    if (kp && !kp->have) {
        kp->have = 1;
        kp->aligned = aligned;
        aligned = NULL;
        kp->Wg = ex_doubles(2 * N * N);
        for (size_t a = 0; a < 2; a++) memcpy(kp->Wg + a * N * N, v.Wg + assign[a] * N * N, N * N * sizeof(double));
        kp->W = ex_doubles(N * N);
        ex_check(disrnn_model_connectivity(m, DISRNN_CONN_W, 0, kp->W, N * N), "disrnn_model_connectivity",
                 disrnn_model_last_error(m));
    }
    free(aligned);
    view_free(&v);
    free(mu);
}

/* ---------------------------------------------------------------- figures */

static void write_figures(const context *cx, keep *keeps, char (*figs)[1024], size_t *n_figs)
{
    const options *o = cx->opt;
    const size_t N = 20, n = cx->n_test;
    char path[1024], p2[1024];
    *n_figs = 0;

    /* Latents: true vs aligned, first 300 test bins, one panel per true dimension. */
    {
        const size_t show = n < 300 ? n : 300;
        ex_write_lines_csv(ex_join(path, sizeof path, o->out, "true_latents.csv"), "z0,z1,z2,z3,z4,z5", 6, n,
                           cx->z_test, 6);
        for (int mth = 0; mth < M_COUNT; mth++) {
            if (!keeps[mth].have) continue;
            char name[128];
            snprintf(name, sizeof name, "aligned_latents_%s.csv", method_name[mth]);
            ex_write_lines_csv(ex_join(path, sizeof path, o->out, name), "z0,z1,z2,z3,z4,z5", 6, n,
                               keeps[mth].aligned, 6);
        }
        FILE *f = fopen(ex_join(path, sizeof path, o->out, "latents.gp"), "w");
        if (f) {
            fprintf(f, "set terminal %s size 1400,800\nset output '%s/latents.png'\nset datafile separator ','\n",
                    ex_png_terminal(), o->out);
            fprintf(f, "set multiplot layout 3,2 title 'True latents (black) and group-aligned fits, first %zu test "
                       "bins (seed %ld)'\n",
                    show, o->seed0);
            for (int k = 0; k < 6; k++) {
                fprintf(f, "set title '%s %s'\n", k < 3 ? "Lorenz" : "Thomas", k % 3 == 0 ? "x" : (k % 3 == 1 ? "y" : "z"));
                fprintf(f, "plot [0:%zu] '%s/true_latents.csv' every ::1::%zu using 0:%d with lines lw 2 lc "
                           "rgb 'black' title 'true'",
                        show, o->out, show, k + 1);
                for (int mth = 0; mth < M_COUNT; mth++) {
                    if (!keeps[mth].have || mth == M_LINT || mth == M_BDRNN) continue;
                    fprintf(f, ", '%s/aligned_latents_%s.csv' every ::1::%zu using 0:%d with lines title '%s'", o->out,
                            method_name[mth], show, k + 1, method_label[mth]);
                }
                fprintf(f, "\n");
            }
            fprintf(f, "unset multiplot\n");
            fclose(f);
            if (ex_run_gnuplot(path) == 0) snprintf(figs[(*n_figs)++], 1024, "%s/latents.png", o->out);
        }
    }

    /* Connectivity heat maps: W true vs fitted, and each sub-circuit. */
    for (int mth = 0; mth < M_COUNT; mth++) {
        if (!keeps[mth].have || (mth != M_DISRNN && mth != M_LRRNN)) continue;
        char f_wt[1024], f_w[1024], f_t0[1024], f_t1[1024], f_g0[1024], f_g1[1024];
        ex_write_matrix_txt(ex_join(f_wt, sizeof f_wt, o->out, "W_true.txt"), N, N, cx->Wtrue, N);
        ex_write_matrix_txt(ex_join(f_t0, sizeof f_t0, o->out, "W_true_g0.txt"), N, N, cx->Wtrue_g, N);
        ex_write_matrix_txt(ex_join(f_t1, sizeof f_t1, o->out, "W_true_g1.txt"), N, N, cx->Wtrue_g + N * N, N);
        char name[128];
        snprintf(name, sizeof name, "W_%s.txt", method_name[mth]);
        ex_write_matrix_txt(ex_join(f_w, sizeof f_w, o->out, name), N, N, keeps[mth].W, N);
        snprintf(name, sizeof name, "W_%s_g0.txt", method_name[mth]);
        ex_write_matrix_txt(ex_join(f_g0, sizeof f_g0, o->out, name), N, N, keeps[mth].Wg, N);
        snprintf(name, sizeof name, "W_%s_g1.txt", method_name[mth]);
        ex_write_matrix_txt(ex_join(f_g1, sizeof f_g1, o->out, name), N, N, keeps[mth].Wg + N * N, N);
        const char *files[6] = {f_wt, f_t0, f_t1, f_w, f_g0, f_g1};
        char t3[64], t4[96], t5[96];
        snprintf(t3, sizeof t3, "W %s", method_label[mth]);
        snprintf(t4, sizeof t4, "%s W_g matched to Lorenz", method_label[mth]);
        snprintf(t5, sizeof t5, "%s W_g matched to Thomas", method_label[mth]);
        const char *titles[6] = {"W true", "W_g true (Lorenz)", "W_g true (Thomas)", t3, t4, t5};
        snprintf(name, sizeof name, "connectivity_%s.gp", method_name[mth]);
        ex_join(path, sizeof path, o->out, name);
        snprintf(name, sizeof name, "connectivity_%s.png", method_name[mth]);
        ex_join(p2, sizeof p2, o->out, name);
        char title[128];
        snprintf(title, sizeof title, "Connectivity: truth vs %s (seed %ld)", method_label[mth], o->seed0);
        if (ex_plot_heatmaps(path, p2, title, 6, files, titles) == 1) snprintf(figs[(*n_figs)++], 1024, "%s", p2);
    }

    /* Training curves of the first seed. */
    {
        int any = 0;
        for (int mth = 0; mth < M_COUNT; mth++) {
            if (!keeps[mth].have || mth == M_LINT || keeps[mth].curve.n_rows == 0) continue;
            char name[128];
            snprintf(name, sizeof name, "curve_%s.csv", method_name[mth]);
            ex_progress_write_curve(&keeps[mth].curve, ex_join(path, sizeof path, o->out, name));
            any = 1;
        }
        FILE *f = any ? fopen(ex_join(path, sizeof path, o->out, "curves.gp"), "w") : NULL;
        if (f) {
            fprintf(f, "set terminal %s size 1200,450\nset output '%s/curves.png'\nset datafile separator ','\n",
                    ex_png_terminal(), o->out);
            fprintf(f, "set multiplot layout 1,2 title 'Training curves (seed %ld)'\n", o->seed0);
            fprintf(f, "set xlabel 'epoch'\nset title 'loss (NLL + KL + beta PC + alpha BD)'\nset key top right\n");
            const char *sep = "plot ";
            for (int mth = 0; mth < M_COUNT; mth++) {
                if (!keeps[mth].have || mth == M_LINT || keeps[mth].curve.n_rows == 0) continue;
                fprintf(f, "%s'%s/curve_%s.csv' every ::1 using 1:2 with lines title '%s'", sep, o->out,
                        method_name[mth], method_label[mth]);
                sep = ", ";
            }
            fprintf(f, "\nset title 'minibatch PC estimate'\n");
            sep = "plot ";
            for (int mth = 0; mth < M_COUNT; mth++) {
                if (!keeps[mth].have || mth == M_LINT || keeps[mth].curve.n_rows == 0) continue;
                fprintf(f, "%s'%s/curve_%s.csv' every ::1 using 1:5 with lines title '%s'", sep, o->out,
                        method_name[mth], method_label[mth]);
                sep = ", ";
            }
            fprintf(f, "\nunset multiplot\n");
            fclose(f);
            if (ex_run_gnuplot(path) == 0) snprintf(figs[(*n_figs)++], 1024, "%s/curves.png", o->out);
        }
    }
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o)) return 2;
    if (ex_mkdir_p(o.out)) return 1;
    const double t_start = ex_now();
    if (!o.quiet)
        fprintf(stderr, "libdisrnn %s: synthetic experiment, %ld seed(s), %ld epochs, groups (%zu,%zu), beta %g%s\n",
                disrnn_version_string(), o.seeds, o.epochs, o.G, o.H, o.beta, o.demo ? " [demo settings]" : "");

    /* Each seed is an independent replicate of the whole experiment (its own observation noise,
     * ground-truth network fit and model initialisation) unless --data-seed fixes the data. */
    context cx;
    memset(&cx, 0, sizeof cx);
    char figs[8][1024];
    size_t nf = 0;

    const size_t S = (size_t)o.seeds;
    result *res = ex_xmalloc((size_t)M_COUNT * S * sizeof(result));
    for (size_t i = 0; i < (size_t)M_COUNT * S; i++) res[i].pc = res[i].aligned_r2 = res[i].subconn_corr = NAN;
    keep keeps[M_COUNT];
    memset(keeps, 0, sizeof keeps);

    char path[1024];
    FILE *csv = fopen(ex_join(path, sizeof path, o.out, "results.csv"), "w");
    if (!csv) {
        perror(path);
        return 1;
    }
    fprintf(csv, "method,seed,pc,aligned_r2,subconn_corr,recon_r2,seconds\n");

    const int fit_order[4] = {M_LRRNN, M_BDRNN, M_DISRNN_FULL, M_DISRNN};
    for (size_t si = 0; si < S; si++) {
        const uint64_t seed = (uint64_t)o.seed0 + si;
        if (si == 0 || o.data_seed < 0) {
            if (si > 0) free_context(&cx);
            setup_context(&cx, &o, o.data_seed < 0 ? seed : (uint64_t)o.data_seed);
        }
        for (int fi = 0; fi < 4; fi++) {
            const int mth = fit_order[fi];
            /* LINT is a view of the lrRNN fit, so the lrRNN is fitted whenever either is asked for. */
            const int wanted = o.methods[mth] || (mth == M_LRRNN && o.methods[M_LINT]);
            if (!wanted) continue;
            disrnn_model_t *m = make_model(&o, mth, seed);
            char label[96];
            snprintf(label, sizeof label, "%s seed %llu", method_label[mth], (unsigned long long)seed);
            ex_progress prog;
            ex_progress_init(&prog, label, o.epochs, o.quiet);
            const double secs = fit_model(&cx, m, seed, &prog);
            for (int pass = 0; pass < 2; pass++) {
                const int em = pass == 0 ? mth : M_LINT;
                if (pass == 1 && mth != M_LRRNN) break;
                if (!o.methods[em]) continue;
                result *r = &res[(size_t)em * S + si];
                evaluate(&cx, m, em, seed, r, si == 0 ? &keeps[em] : NULL);
                r->seconds = secs;
                fprintf(csv, "%s,%llu,%.6f,%.6f,%.6f,%.6f,%.3f\n", method_name[em], (unsigned long long)seed, r->pc,
                        r->aligned_r2, r->subconn_corr, r->recon_r2, r->seconds);
                fflush(csv);
                if (si == 0 && em == mth) {
                    keeps[em].curve = prog;
                    prog.rows = NULL;
                }
            }
            ex_progress_free(&prog);
            disrnn_model_free(m);
        }
        /* Figures show the first seed, drawn while its data set is at hand. */
        if (si == 0 && o.figures) write_figures(&cx, keeps, figs, &nf);
    }
    fclose(csv);

    /* The table: mean +- sd over seeds on the test bins. */
    printf("\nSynthetic experiment (Lorenz + Thomas, N = 20, K = %zu, test = odd bins, %ld seed(s), %ld epochs, %s)\n",
           o.G * o.H, o.seeds, o.epochs, o.data_seed < 0 ? "one data set per seed" : "one data set for all seeds");
    printf("%-12s %-18s %-18s %-18s %-18s %-14s\n", "method", "PC", "aligned R^2", "subconn corr", "recon R^2",
           "seconds/fit");
    double *col = ex_doubles(S);
    for (int mth = 0; mth < M_COUNT; mth++) {
        if (!o.methods[mth]) continue;
        char cells[5][48];
        for (int q = 0; q < 5; q++) {
            for (size_t si = 0; si < S; si++) {
                const result *r = &res[(size_t)mth * S + si];
                const double vals[5] = {r->pc, r->aligned_r2, r->subconn_corr, r->recon_r2, r->seconds};
                col[si] = vals[q];
            }
            ex_fmt_mean_sd(cells[q], sizeof cells[q], col, S, q == 4 ? 2 : 3);
        }
        printf("%-12s %-18s %-18s %-18s %-18s %-14s\n", method_label[mth], cells[0], cells[1], cells[2], cells[3],
               cells[4]);
    }
    free(col);
    printf("PC: NA for LINT (no per-dimension noise model in the SVD basis). Paper (10 seeds, 5000 epochs): DisRNN "
           "aligned R^2 ~0.92, others 0.62-0.74.\n");
    printf("results: %s/results.csv\n", o.out);

    if (o.figures) {
        if (!ex_have_gnuplot())
            printf("gnuplot not found: figure data and scripts (*.gp) written to %s/, no PNG files\n", o.out);
        for (size_t i = 0; i < nf; i++) printf("figure: %s\n", figs[i]);
    }
    printf("total time %.1f s\n", ex_now() - t_start);

    for (int mth = 0; mth < M_COUNT; mth++) {
        free(keeps[mth].aligned);
        free(keeps[mth].Wg);
        free(keeps[mth].W);
        ex_progress_free(&keeps[mth].curve);
    }
    free(res);
    free_context(&cx);
    return 0;
}
