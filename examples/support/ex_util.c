/* Support code for the example programs (see ex_util.h). Plain C99 + POSIX; only the public
 * libdisrnn header is used. */
#include "ex_util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ================================================================ random numbers */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void ex_rng_seed(ex_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0.0;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(ex_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ex_rng_uniform(ex_rng *r) { return (double)(next_u64(r) >> 11) * 0x1.0p-53; }

double ex_rng_normal(ex_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u, v, s;
    do {
        u = 2.0 * ex_rng_uniform(r) - 1.0;
        v = 2.0 * ex_rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = sqrt(-2.0 * log(s) / s);
    r->spare = v * f;
    r->has_spare = 1;
    return u * f;
}

double ex_rng_poisson(ex_rng *r, double lambda)
{
    if (!(lambda > 0.0)) return 0.0;
    if (lambda < 30.0) {
        /* Knuth's product method: exact and fast enough for the small rates of spike bins. */
        const double L = exp(-lambda);
        double p = 1.0;
        double k = -1.0;
        do {
            k += 1.0;
            p *= ex_rng_uniform(r);
        } while (p > L);
        return k;
    }
    /* Large rates only occur in extreme settings; a rounded normal is adequate there. */
    const double v = floor(lambda + sqrt(lambda) * ex_rng_normal(r) + 0.5);
    return v < 0.0 ? 0.0 : v;
}

/* ================================================================ memory and time */

void *ex_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

double *ex_doubles(size_t n)
{
    if (n > SIZE_MAX / sizeof(double)) {
        fprintf(stderr, "array too large\n");
        exit(1);
    }
    double *p = ex_xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) p[i] = 0.0;
    return p;
}

double ex_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ================================================================ arguments */

int ex_parse_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    const long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || *end != '\0' || errno != 0 || v < lo || v > hi) {
        fprintf(stderr, "%s: expected an integer in [%ld, %ld], got '%s'\n", flag, lo, hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

int ex_parse_double(const char *flag, const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    const double v = s ? strtod(s, &end) : 0.0;
    if (!s || end == s || *end != '\0' || errno != 0 || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "%s: expected a number in [%g, %g], got '%s'\n", flag, lo, hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

int ex_parse_sizes(const char *flag, const char *s, size_t *out, size_t cap, size_t *n)
{
    size_t k = 0;
    const char *p = s;
    if (!s || !*s) goto bad;
    while (*p) {
        char *end = NULL;
        errno = 0;
        const long v = strtol(p, &end, 10);
        if (end == p || errno != 0 || v < 1 || v > 100000 || k >= cap) goto bad;
        out[k++] = (size_t)v;
        if (*end == ',') {
            p = end + 1;
            if (!*p) goto bad;
        } else if (*end == '\0') {
            p = end;
        } else {
            goto bad;
        }
    }
    *n = k;
    return 0;
bad:
    fprintf(stderr, "%s: expected a comma-separated list of at most %zu positive integers, got '%s'\n", flag,
            cap, s ? s : "");
    return -1;
}

const char *ex_flag_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s needs a value\n", argv[*i]);
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

void ex_check(int status, const char *context, const char *message)
{
    if (status >= 0) return;
    fprintf(stderr, "%s failed: %s%s%s\n", context, disrnn_status_string(status),
            (message && *message) ? ": " : "", (message && *message) ? message : "");
    exit(1);
}

/* ================================================================ progress */

void ex_progress_init(ex_progress *p, const char *label, int64_t total_epochs, int quiet)
{
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total_epochs = total_epochs;
    p->quiet = quiet;
    p->tty = isatty(fileno(stderr));
    p->last_draw = -1.0;
}

static void progress_draw(ex_progress *p, int64_t epoch, double loss, double elapsed)
{
    const int width = 30;
    const double frac = p->total_epochs > 0 ? (double)epoch / (double)p->total_epochs : 1.0;
    int filled = (int)(frac * width + 0.5);
    if (filled > width) filled = width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    const double eta = frac > 0.0 ? elapsed * (1.0 - frac) / frac : 0.0;
    fprintf(stderr, "\r%-28.28s [%s] %3d%% epoch %lld/%lld loss %10.4f  %5.1fs (eta %4.0fs)\033[K", p->label, bar,
            (int)(100.0 * frac), (long long)epoch, (long long)p->total_epochs, loss, elapsed, eta);
    fflush(stderr);
}

int ex_progress_cb(int64_t epoch, int64_t step, const double *terms, size_t n_terms, double val_loss,
                   double elapsed, void *user_data)
{
    ex_progress *p = user_data;
    (void)step;
    if (p->n_rows == p->cap_rows) {
        const size_t nc = p->cap_rows ? 2 * p->cap_rows : 256;
        double *nr = realloc(p->rows, nc * EX_CURVE_COLS * sizeof(double));
        if (!nr) return 0; /* the curve is optional; keep training */
        p->rows = nr;
        p->cap_rows = nc;
    }
    double *row = p->rows + p->n_rows * EX_CURVE_COLS;
    row[0] = (double)epoch;
    for (size_t j = 0; j < 5; j++) row[1 + j] = j < n_terms ? terms[j] : NAN;
    row[6] = val_loss;
    row[7] = elapsed;
    p->n_rows++;
    /* Redraw at most ten times a second: terminals are slow compared with an epoch. */
    if (p->tty && !p->quiet && (elapsed - p->last_draw >= 0.1 || epoch == p->total_epochs)) {
        p->last_draw = elapsed;
        progress_draw(p, epoch, n_terms > 0 ? terms[0] : NAN, elapsed);
    }
    return 0;
}

void ex_progress_finish(ex_progress *p, int status, double seconds)
{
    if (p->quiet) return;
    const double loss = p->n_rows ? p->rows[(p->n_rows - 1) * EX_CURVE_COLS + 1] : NAN;
    if (p->tty) fprintf(stderr, "\r\033[K");
    fprintf(stderr, "%-28s %lld epochs, final loss %.4f, %.2f s%s%s\n", p->label,
            p->n_rows ? (long long)p->rows[(p->n_rows - 1) * EX_CURVE_COLS] : 0LL, loss, seconds,
            status == DISRNN_OK ? "" : ", ", status == DISRNN_OK ? "" : disrnn_status_string(status));
}

int ex_progress_write_curve(const ex_progress *p, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "epoch,loss,nll,kl,pc,bd,val_loss,seconds\n");
    for (size_t i = 0; i < p->n_rows; i++) {
        const double *r = p->rows + i * EX_CURVE_COLS;
        fprintf(f, "%.0f,%.10g,%.10g,%.10g,%.10g,%.10g,%.10g,%.6f\n", r[0], r[1], r[2], r[3], r[4], r[5], r[6],
                r[7]);
    }
    return fclose(f) == 0 ? 0 : -1;
}

void ex_progress_free(ex_progress *p)
{
    free(p->rows);
    p->rows = NULL;
    p->n_rows = p->cap_rows = 0;
}

/* ================================================================ files */

int ex_mkdir_p(const char *dir)
{
    char buf[4096];
    const size_t len = strlen(dir);
    if (len == 0 || len >= sizeof buf) {
        fprintf(stderr, "bad output folder '%s'\n", dir);
        return -1;
    }
    memcpy(buf, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            const char keep = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "cannot create folder %s: %s\n", buf, strerror(errno));
                return -1;
            }
            buf[i] = keep;
        }
    }
    return 0;
}

char *ex_join(char *buf, size_t cap, const char *dir, const char *name)
{
    const int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "path too long: %s/%s\n", dir, name);
        exit(1);
    }
    return buf;
}

int ex_write_lines_csv(const char *path, const char *header, size_t per_line, size_t n_lines,
                       const double *data, size_t ld)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (header) fprintf(f, "%s\n", header);
    for (size_t j = 0; j < n_lines; j++) {
        for (size_t i = 0; i < per_line; i++) fprintf(f, i ? ",%.10g" : "%.10g", data[j * ld + i]);
        fputc('\n', f);
    }
    return fclose(f) == 0 ? 0 : -1;
}

int ex_write_matrix_txt(const char *path, size_t rows, size_t cols, const double *data, size_t ld)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < cols; j++) fprintf(f, j ? " %.8g" : "%.8g", data[i + j * ld]);
        fputc('\n', f);
    }
    return fclose(f) == 0 ? 0 : -1;
}

int ex_write_npy2(const char *path, size_t n_lines, size_t per_line, const double *data)
{
    const size_t shape[2] = {n_lines, per_line};
    char msg[256];
    const int st = disrnn_npy_write(path, data, DISRNN_DTYPE_F64, 2, shape, 0, msg, sizeof msg);
    if (st < 0) {
        fprintf(stderr, "disrnn_npy_write(%s): %s: %s\n", path, disrnn_status_string(st), msg);
        return -1;
    }
    return 0;
}

/* ================================================================ gnuplot */

int ex_have_gnuplot(void)
{
    static int known = -1;
    if (known < 0) known = system("command -v gnuplot >/dev/null 2>&1") == 0;
    return known;
}

const char *ex_png_terminal(void)
{
    static int cairo = -1;
    if (cairo < 0)
        cairo = ex_have_gnuplot() &&
                system("gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo") == 0;
    return cairo ? "pngcairo" : "png";
}

int ex_run_gnuplot(const char *script)
{
    if (!ex_have_gnuplot()) return -1;
    char cmd[4200];
    const int n = snprintf(cmd, sizeof cmd, "gnuplot '%s' >/dev/null 2>&1", script);
    if (n < 0 || (size_t)n >= sizeof cmd || strchr(script, '\'')) return -1;
    return system(cmd) == 0 ? 0 : -1;
}

int ex_plot_heatmaps(const char *script, const char *png, const char *title, size_t n,
                     const char *const *files, const char *const *titles)
{
    FILE *f = fopen(script, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", script, strerror(errno));
        return -1;
    }
    /* At most three panels per row keeps the maps large enough to read. */
    const size_t cols = n < 3 ? (n ? n : 1) : 3, rows = (n + cols - 1) / cols;
    fprintf(f, "set terminal %s size %zu,%zu\n", ex_png_terminal(), 380 * cols + 40, 360 * (rows ? rows : 1) + 40);
    fprintf(f, "set output '%s'\n", png);
    fprintf(f, "set multiplot layout %zu,%zu title '%s'\n", rows ? rows : 1, cols, title);
    fprintf(f, "set palette defined (-1 'blue', 0 'white', 1 'red')\nset size ratio -1\n");
    fprintf(f, "unset xtics\nunset ytics\nset yrange [*:*] reverse\n");
    for (size_t i = 0; i < n; i++) {
        /* A symmetric colour range per panel makes zero white in every map. */
        fprintf(f, "stats '%s' matrix using 3 nooutput\n", files[i]);
        fprintf(f, "m = (abs(STATS_min) > abs(STATS_max) ? abs(STATS_min) : abs(STATS_max))\n");
        fprintf(f, "if (m == 0) m = 1\nset cbrange [-m:m]\n");
        fprintf(f, "set title '%s'\nplot '%s' matrix with image notitle\n", titles[i], files[i]);
    }
    fprintf(f, "unset multiplot\n");
    if (fclose(f) != 0) return -1;
    return ex_run_gnuplot(script) == 0 ? 1 : 0;
}

/* ================================================================ statistics */

void ex_mean_sd(const double *v, size_t n, double *mean, double *sd)
{
    double s = 0.0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) {
            s += v[i];
            k++;
        }
    if (k == 0) {
        *mean = NAN;
        *sd = NAN;
        return;
    }
    const double m = s / (double)k;
    double q = 0.0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) q += (v[i] - m) * (v[i] - m);
    *mean = m;
    *sd = k > 1 ? sqrt(q / (double)(k - 1)) : 0.0;
}

void ex_fmt_mean_sd(char *buf, size_t cap, const double *v, size_t n, int decimals)
{
    double m, s;
    ex_mean_sd(v, n, &m, &s);
    if (!isfinite(m))
        snprintf(buf, cap, "NA");
    else if (n > 1)
        snprintf(buf, cap, "%.*f +- %.*f", decimals, m, decimals, s);
    else
        snprintf(buf, cap, "%.*f", decimals, m);
}

/* ================================================================ synthetic data */

static void lorenz_f(const double *v, double *out)
{
    const double sigma = 10.0, rho = 28.0, beta = 8.0 / 3.0;
    out[0] = sigma * (v[1] - v[0]);
    out[1] = v[0] * (rho - v[2]) - v[1];
    out[2] = v[0] * v[1] - beta * v[2];
}

/* MODEL.md's form of Thomas's system, taken literally (note the minus sign on sin y, and b = 0:
 * the flow is then divergence-free, a "labyrinth" walk rather than a dissipative attractor; the
 * z-scoring below keeps it on the same scale as the Lorenz latents). */
static double thomas_b = 0.0, thomas_sign = -1.0;

static void thomas_f(const double *v, double *out)
{
    const double b = thomas_b;
    out[0] = thomas_sign * sin(v[1]) - b * v[0];
    out[1] = sin(v[2]) - b * v[1];
    out[2] = sin(v[0]) - b * v[2];
}

static void rk4(void (*f)(const double *, double *), double *v, double dt)
{
    double k1[3], k2[3], k3[3], k4[3], t[3];
    f(v, k1);
    for (int i = 0; i < 3; i++) t[i] = v[i] + 0.5 * dt * k1[i];
    f(t, k2);
    for (int i = 0; i < 3; i++) t[i] = v[i] + 0.5 * dt * k2[i];
    f(t, k3);
    for (int i = 0; i < 3; i++) t[i] = v[i] + dt * k3[i];
    f(t, k4);
    for (int i = 0; i < 3; i++) v[i] += dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
}

void ex_thomas_params(double b, int classic)
{
    thomas_b = b;
    thomas_sign = classic ? 1.0 : -1.0;
}

void ex_attractors(size_t T, double dt, double *out)
{
    double lz[3] = {1.0, 1.0, 1.0};
    double th[3] = {0.1, 1.0, 1.0};
    /* Bin 0 is the starting point; every later bin is one RK4 step of dt. */
    for (size_t t = 0; t < T; t++) {
        if (t > 0) {
            rk4(lorenz_f, lz, dt);
            rk4(thomas_f, th, dt);
        }
        for (int i = 0; i < 3; i++) {
            out[t * 6 + (size_t)i] = lz[i];
            out[t * 6 + 3 + (size_t)i] = th[i];
        }
    }
}

/* Adam on the one-step map z_t ~ B (tanh(A z_{t-1} + c) + u_{t-1}) + d, mean squared error. */
typedef struct gt_fit {
    size_t N, K, T;
    const double *z;
    double *theta; /* A (N*K), c (N), B (K*N), d (K) */
    double *grad, *m, *v;
    double *u;
    size_t np;
} gt_fit;

static double gt_loss_grad(gt_fit *g, int want_grad)
{
    const size_t N = g->N, K = g->K;
    const double *A = g->theta, *c = A + N * K, *B = c + N, *d = B + K * N;
    double *gA = g->grad, *gc = gA + N * K, *gB = gc + N, *gd = gB + K * N;
    if (want_grad)
        for (size_t i = 0; i < g->np; i++) g->grad[i] = 0.0;
    double pre[256], h[256], dh[256], r[64];
    const size_t M = g->T - 1;
    const double scale = 2.0 / ((double)M * (double)K);
    double loss = 0.0;
    for (size_t t = 1; t < g->T; t++) {
        const double *zp = g->z + (t - 1) * K, *zt = g->z + t * K;
        const double *u = g->u ? g->u + (t - 1) * N : NULL;
        for (size_t n = 0; n < N; n++) {
            double s = c[n];
            for (size_t k = 0; k < K; k++) s += A[n + k * N] * zp[k];
            pre[n] = s;
            h[n] = tanh(s) + (u ? u[n] : 0.0);
        }
        for (size_t k = 0; k < K; k++) {
            double s = d[k];
            for (size_t n = 0; n < N; n++) s += B[k + n * K] * h[n];
            r[k] = s - zt[k];
            loss += r[k] * r[k];
        }
        if (!want_grad) continue;
        for (size_t k = 0; k < K; k++) {
            const double dy = scale * r[k];
            gd[k] += dy;
            for (size_t n = 0; n < N; n++) gB[k + n * K] += dy * h[n];
        }
        for (size_t n = 0; n < N; n++) {
            double s = 0.0;
            for (size_t k = 0; k < K; k++) s += B[k + n * K] * scale * r[k];
            const double th = tanh(pre[n]);
            dh[n] = s * (1.0 - th * th);
            gc[n] += dh[n];
            for (size_t k = 0; k < K; k++) gA[n + k * N] += dh[n] * zp[k];
        }
    }
    return loss / ((double)M * (double)K);
}

int ex_synth_make(ex_synth *s, uint64_t seed, size_t n_obs, size_t fit_iters, double obs_noise)
{
    const size_t T = 2000, K = 6, N = n_obs;
    const double dt = 0.1;
    if (N < 1 || N > 256) {
        fprintf(stderr, "synthetic data: N must be in [1, 256]\n");
        return -1;
    }
    memset(s, 0, sizeof *s);
    s->T = T;
    s->N = N;
    s->K = K;
    s->z = ex_doubles(K * T);
    s->x = ex_doubles(N * T);
    s->A = ex_doubles(N * K);
    s->B = ex_doubles(K * N);
    s->c = ex_doubles(N);
    s->d = ex_doubles(K);

    ex_attractors(T, dt, s->z);
    for (size_t k = 0; k < K; k++) {
        double m = 0.0, q = 0.0;
        for (size_t t = 0; t < T; t++) m += s->z[t * K + k];
        m /= (double)T;
        for (size_t t = 0; t < T; t++) q += (s->z[t * K + k] - m) * (s->z[t * K + k] - m);
        const double sd = sqrt(q / (double)T);
        for (size_t t = 0; t < T; t++) s->z[t * K + k] = (s->z[t * K + k] - m) / sd;
    }

    ex_rng rng;
    ex_rng_seed(&rng, seed);
    gt_fit g;
    g.N = N;
    g.K = K;
    g.T = T;
    g.z = s->z;
    g.np = 2 * N * K + N + K;
    g.theta = ex_doubles(g.np);
    g.grad = ex_doubles(g.np);
    g.m = ex_doubles(g.np);
    g.v = ex_doubles(g.np);
    g.u = ex_doubles(N * T);
    /* PyTorch nn.Linear initialisation: uniform in +-1/sqrt(fan_in). */
    {
        double *A = g.theta, *c = A + N * K, *B = c + N, *d = B + K * N;
        const double ba = 1.0 / sqrt((double)K), bb = 1.0 / sqrt((double)N);
        for (size_t i = 0; i < N * K; i++) A[i] = ba * (2.0 * ex_rng_uniform(&rng) - 1.0);
        for (size_t i = 0; i < N; i++) c[i] = ba * (2.0 * ex_rng_uniform(&rng) - 1.0);
        for (size_t i = 0; i < K * N; i++) B[i] = bb * (2.0 * ex_rng_uniform(&rng) - 1.0);
        for (size_t i = 0; i < K; i++) d[i] = bb * (2.0 * ex_rng_uniform(&rng) - 1.0);
    }
    const double t0 = ex_now();
    const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (size_t it = 1; it <= fit_iters; it++) {
        /* Fresh small input noise every step, as in the paper's fit, regularises the map. */
        for (size_t i = 0; i < N * T; i++) g.u[i] = 5e-3 * ex_rng_normal(&rng);
        gt_loss_grad(&g, 1);
        const double c1 = 1.0 - pow(b1, (double)it), c2 = 1.0 - pow(b2, (double)it);
        for (size_t i = 0; i < g.np; i++) {
            g.m[i] = b1 * g.m[i] + (1.0 - b1) * g.grad[i];
            g.v[i] = b2 * g.v[i] + (1.0 - b2) * g.grad[i] * g.grad[i];
            g.theta[i] -= lr * (g.m[i] / c1) / (sqrt(g.v[i] / c2) + eps);
        }
    }
    s->fit_seconds = ex_now() - t0;
    {
        const double *u_save = g.u;
        g.u = NULL;
        const double mse = gt_loss_grad(&g, 0);
        g.u = (double *)u_save;
        /* Latents are z-scored, so the per-dimension variance is about 1. */
        s->fit_r2 = 1.0 - mse;
    }
    {
        const double *A = g.theta, *c = A + N * K, *B = c + N, *d = B + K * N;
        memcpy(s->A, A, N * K * sizeof(double));
        memcpy(s->c, c, N * sizeof(double));
        memcpy(s->B, B, K * N * sizeof(double));
        memcpy(s->d, d, K * sizeof(double));
    }
    for (size_t t = 0; t < T; t++)
        for (size_t n = 0; n < N; n++) {
            double v = s->c[n];
            for (size_t k = 0; k < K; k++) v += s->A[n + k * N] * s->z[t * K + k];
            s->x[t * N + n] = v + obs_noise * ex_rng_normal(&rng);
        }
    free(g.theta);
    free(g.grad);
    free(g.m);
    free(g.v);
    free(g.u);
    return 0;
}

void ex_synth_free(ex_synth *s)
{
    free(s->z);
    free(s->x);
    free(s->A);
    free(s->B);
    free(s->c);
    free(s->d);
    memset(s, 0, sizeof *s);
}
