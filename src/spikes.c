/* Spike events: reading `trial,channel,time` CSV files, binning events into counts per trial and
 * Gaussian smoothing of binned counts into rates.
 *
 * Number parsing does not go through the C locale: integers are parsed by hand, and decimals take
 * an exact fast path (at most 19 significant digits forming an integer below 2^53, scaled by an
 * exactly representable power of ten: one correctly rounded IEEE operation). Anything beyond that
 * is handed to strtod under a thread-local "C" locale (uselocale), so a program that set a locale
 * with a decimal comma still reads "0.5" as one half. */
#include "common.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 65536u
#define MAX_FIELD 128u

/* Bin boundaries computed in floating point land a hair off integers: 0.3 / 0.1 is
 * 2.9999999999999996. A quotient this close (relatively) below an integer counts as that integer,
 * so an event exactly on a bin edge opens the next bin and 0.3 s holds three 0.1 s bins. */
#define SNAP 1e-9

/* ---------------------------------------------------------------------------------------------
 * Number parsing */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int parse_int64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0, lim;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i == n) return -1;
    lim = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        unsigned d;
        if (!is_digit(s[i])) return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (neg) *out = v == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)v;
    else *out = (int64_t)v;
    return 0;
}

/* The C locale, created on first need and freed by the caller. */
typedef struct c_locale {
    locale_t loc;
    int tried;
} c_locale;

static double strtod_c(const char *s, size_t n, c_locale *cl, int *ok)
{
    char buf[MAX_FIELD + 1];
    locale_t old;
    double v;
    char *end;
    *ok = 0;
    if (n > MAX_FIELD) return 0.0;
    if (!cl->tried) {
        cl->tried = 1;
        cl->loc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    }
    if (cl->loc == (locale_t)0) return 0.0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    old = uselocale(cl->loc);
    v = strtod(buf, &end);
    uselocale(old);
    *ok = end == buf + n;
    return v;
}

/* [+-] (digits [. digits] | . digits) [(e|E) [+-] digits]. 0 on success, -1 on a syntax error,
 * -2 when the value is out of range, -3 when the fallback parser is unavailable. */
static int parse_real(const char *s, size_t n, double *out, c_locale *cl)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t i = 0, ndig = 0, nsig = 0;
    uint64_t m = 0;
    long e = 0, ex = 0;
    int neg = 0, exact = 1, ok;
    double v;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    for (; i < n && is_digit(s[i]); i++, ndig++) {
        if (m == 0 && s[i] == '0') continue; /* leading zeros are not significant */
        if (nsig < 19) m = m * 10 + (uint64_t)(s[i] - '0');
        else exact = 0;
        if (nsig >= 19) e++;
        nsig++;
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && is_digit(s[i]); i++, ndig++) {
            if (m == 0 && s[i] == '0') {
                e--;
                continue;
            }
            if (nsig < 19) {
                m = m * 10 + (uint64_t)(s[i] - '0');
                e--;
            } else {
                exact = 0;
            }
            nsig++;
        }
    }
    if (ndig == 0) return -1;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;
        size_t start;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
        start = i;
        for (; i < n && is_digit(s[i]); i++)
            if (ex < 100000) ex = ex * 10 + (s[i] - '0');
        if (i == start) return -1;
        if (eneg) ex = -ex;
    }
    if (i != n) return -1;
    e += ex;
    if (m == 0) {
        v = 0.0;
    } else if (exact && m <= ((uint64_t)1 << 53) && e >= -22 && e <= 22) {
        v = e < 0 ? (double)m / pow10[-e] : (double)m * pow10[e];
    } else {
        v = strtod_c(s, n, cl, &ok);
        if (!ok) return cl->loc == (locale_t)0 ? -3 : -1;
        if (!isfinite(v)) return -2;
        *out = v;
        return 0;
    }
    *out = neg ? -v : v;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * CSV */

typedef struct csv_state {
    const char *path;
    size_t line, count, cap;
    int seen_content;
    int fill;
    int64_t *trial, *channel;
    double *time;
    c_locale cl;
    char *msg;
    size_t msg_len;
} csv_state;

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static void trim(const char **s, size_t *n)
{
    while (*n && is_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_space((*s)[*n - 1])) (*n)--;
}

static int line_error(csv_state *c, const char *what)
{
    return disrnn__fail_msg(c->msg, c->msg_len, DISRNN_ERR_CORRUPT, "'%s' line %zu: %s.", c->path, c->line, what);
}

static int process_line(csv_state *c, const char *s, size_t n)
{
    const char *field[3];
    size_t flen[3], nf = 0, start = 0;
    int64_t tr, ch;
    double t;
    int st;
    c->line++;
    trim(&s, &n);
    if (n == 0 || s[0] == '#') return DISRNN_OK;
    if (memchr(s, '\0', n)) return line_error(c, "contains a NUL byte");
    /* Only the first line with content may be a header, and only when it does not start like a number. */
    if (!c->seen_content) {
        c->seen_content = 1;
        if (!is_digit(s[0]) && s[0] != '-' && s[0] != '+' && s[0] != '.') return DISRNN_OK;
    }
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',') continue;
        if (nf == 3) return line_error(c, "has more than 3 comma-separated fields (expected trial,channel,time)");
        field[nf] = s + start;
        flen[nf] = i - start;
        trim(&field[nf], &flen[nf]);
        nf++;
        start = i + 1;
    }
    if (nf != 3) return line_error(c, "has fewer than 3 comma-separated fields (expected trial,channel,time)");
    if (parse_int64(field[0], flen[0], &tr)) return line_error(c, "the trial is not an integer");
    if (parse_int64(field[1], flen[1], &ch)) return line_error(c, "the channel is not an integer");
    st = parse_real(field[2], flen[2], &t, &c->cl);
    if (st == -1) return line_error(c, "the time is not a decimal number");
    if (st == -2) return line_error(c, "the time is out of range");
    if (st == -3)
        return disrnn__fail_msg(c->msg, c->msg_len, DISRNN_ERR_NOMEM, "'%s' line %zu: cannot create the C locale.",
                                c->path, c->line);
    if (c->fill) {
        /* The first pass counted at most cap events; more now means the file changed meanwhile. */
        if (c->count >= c->cap)
            return disrnn__fail_msg(c->msg, c->msg_len, DISRNN_ERR_IO, "'%s' changed while it was being read.",
                                    c->path);
        c->trial[c->count] = tr;
        c->channel[c->count] = ch;
        c->time[c->count] = t;
    }
    c->count++;
    return DISRNN_OK;
}

/* One pass over the file: lines are cut from fixed-size chunks, so memory does not grow with the
 * file; a line longer than a chunk is malformed anyway. */
static int scan(FILE *f, char *buf, csv_state *c)
{
    size_t have = 0;
    int eof = 0, st;
    c->line = 0;
    c->count = 0;
    c->seen_content = 0;
    for (;;) {
        char *start = buf, *nl;
        if (!eof && have < CHUNK) {
            const size_t got = fread(buf + have, 1, CHUNK - have, f);
            if (got < CHUNK - have) {
                if (ferror(f))
                    return disrnn__fail_msg(c->msg, c->msg_len, DISRNN_ERR_IO, "Error reading '%s'.", c->path);
                eof = 1;
            }
            have += got;
        }
        while ((nl = (char *)memchr(start, '\n', have - (size_t)(start - buf))) != NULL) {
            if ((st = process_line(c, start, (size_t)(nl - start))) != DISRNN_OK) return st;
            start = nl + 1;
        }
        have -= (size_t)(start - buf);
        if (eof) return have ? process_line(c, start, have) : DISRNN_OK;
        if (have == CHUNK) {
            c->line++;
            return line_error(c, "is longer than 64 KiB");
        }
        memmove(buf, start, have);
    }
}

int disrnn_spikes_read_csv(const char *path, int64_t *trial, int64_t *channel, double *time, size_t cap,
                           size_t *n_events, char *msg, size_t msg_len)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    csv_state c;
    FILE *f;
    char *buf;
    size_t counted;
    int st;
    if (!path || !n_events) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "NULL path or n_events.");
    if (cap && (!trial || !channel || !time))
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "NULL output arrays with cap = %zu.", cap);
    f = fopen(path, "rb");
    if (!f) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "Cannot open '%s': %s.", path, strerror(errno));
    buf = (char *)disrnn__alloc(al, CHUNK);
    if (!buf) {
        fclose(f);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_NOMEM, "Out of memory reading '%s'.", path);
    }
    memset(&c, 0, sizeof c);
    c.path = path;
    c.msg = msg;
    c.msg_len = msg_len;
    /* Validate and count first, so a malformed line or a short buffer leaves the outputs untouched. */
    st = scan(f, buf, &c);
    counted = c.count;
    if (st == DISRNN_OK) {
        *n_events = counted;
        if (cap && counted > cap) {
            st = disrnn__fail_msg(msg, msg_len, DISRNN_ERR_BUFFER_TOO_SMALL,
                                  "'%s' holds %zu events; the arrays hold %zu.", path, counted, cap);
        } else if (cap && counted) {
            rewind(f);
            c.fill = 1;
            c.cap = counted;
            c.trial = trial;
            c.channel = channel;
            c.time = time;
            st = scan(f, buf, &c);
            if (st == DISRNN_OK && c.count != counted)
                st = disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "'%s' changed while it was being read.", path);
        }
    }
    if (c.cl.loc != (locale_t)0) freelocale(c.cl.loc);
    disrnn__free(al, buf);
    fclose(f);
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * Binning */

/* floor(q), but a q within SNAP (relative) below the next integer counts as that integer. */
static double snap_floor(double q)
{
    double k = floor(q);
    if (k + 1.0 - q <= SNAP * fmax(1.0, fabs(q))) k += 1.0;
    return k;
}

/* Bins of one trial, or -1 when the window is invalid. */
static int trial_bins(double start, double stop, double width, size_t *n)
{
    double q;
    if (!isfinite(start) || !isfinite(stop) || !(stop > start)) return -1;
    q = snap_floor((stop - start) / width);
    if (!(q >= 0.0) || q > 9007199254740992.0 || q > (double)SIZE_MAX) return -1;
    *n = (size_t)q;
    return 0;
}

static int check_windows(size_t n_trials, const double *t_start, const double *t_stop, double bin_width,
                         size_t *n_bins, size_t *total)
{
    size_t sum = 0, n;
    if (n_trials == 0 || !t_start || !t_stop) return DISRNN_ERR_INVALID_ARG;
    if (!isfinite(bin_width) || !(bin_width > 0.0)) return DISRNN_ERR_INVALID_ARG;
    for (size_t r = 0; r < n_trials; r++) {
        if (trial_bins(t_start[r], t_stop[r], bin_width, &n)) return DISRNN_ERR_INVALID_ARG;
        if (n_bins) n_bins[r] = n;
        if (disrnn__add_size(sum, n, &sum)) return DISRNN_ERR_INVALID_ARG;
    }
    *total = sum;
    return DISRNN_OK;
}

int disrnn_spikes_num_bins(size_t n_trials, const double *t_start, const double *t_stop, double bin_width,
                           size_t *n_bins, size_t *total)
{
    size_t sum;
    int st;
    if (!n_bins) return DISRNN_ERR_INVALID_ARG;
    /* Validate everything before writing anything. */
    if ((st = check_windows(n_trials, t_start, t_stop, bin_width, NULL, &sum)) != DISRNN_OK) return st;
    (void)check_windows(n_trials, t_start, t_stop, bin_width, n_bins, &sum);
    if (total) *total = sum;
    return DISRNN_OK;
}

int disrnn_spikes_bin(size_t n_events, const int64_t *trial, const int64_t *channel, const double *time,
                      size_t n_trials, size_t n_obs, const double *t_start, const double *t_stop, double bin_width,
                      double *counts, size_t len)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    size_t total, need, *offset, cur_trial = 0, cur_off = 0;
    int st;
    if (n_obs == 0) return DISRNN_ERR_INVALID_ARG;
    if (n_events && (!trial || !channel || !time)) return DISRNN_ERR_INVALID_ARG;
    if ((st = check_windows(n_trials, t_start, t_stop, bin_width, NULL, &total)) != DISRNN_OK) return st;
    if (disrnn__mul_size(total, n_obs, &need)) return DISRNN_ERR_INVALID_ARG;
    if (len < need) return DISRNN_ERR_BUFFER_TOO_SMALL;
    if (need && !counts) return DISRNN_ERR_INVALID_ARG;
    for (size_t i = 0; i < n_events; i++)
        if (!isfinite(time[i])) return DISRNN_ERR_INVALID_ARG;
    for (size_t i = 0; i < need; i++) counts[i] = 0.0;
    /* Start offset of each trial's block; without memory for the table, walk the trials from the
     * previous event's trial instead (linear for the usual trial-sorted events, always correct). */
    offset = (size_t *)disrnn__calloc(al, n_trials, sizeof(size_t));
    if (offset) {
        size_t acc = 0, n = 0;
        for (size_t r = 0; r < n_trials; r++) {
            offset[r] = acc;
            (void)trial_bins(t_start[r], t_stop[r], bin_width, &n);
            acc += n * n_obs;
        }
    }
    for (size_t i = 0; i < n_events; i++) {
        size_t r, nb = 0, off;
        double k;
        if (trial[i] < 0 || (uint64_t)trial[i] >= (uint64_t)n_trials) continue;
        if (channel[i] < 0 || (uint64_t)channel[i] >= (uint64_t)n_obs) continue;
        r = (size_t)trial[i];
        (void)trial_bins(t_start[r], t_stop[r], bin_width, &nb);
        k = snap_floor((time[i] - t_start[r]) / bin_width);
        if (!(k >= 0.0) || k >= (double)nb) continue;
        if (offset) {
            off = offset[r];
        } else {
            size_t n = 0;
            if (r < cur_trial) {
                cur_trial = 0;
                cur_off = 0;
            }
            for (; cur_trial < r; cur_trial++) {
                (void)trial_bins(t_start[cur_trial], t_stop[cur_trial], bin_width, &n);
                cur_off += n * n_obs;
            }
            off = cur_off;
        }
        counts[off + (size_t)k * n_obs + (size_t)channel[i]] += 1.0;
    }
    disrnn__free(al, offset);
    return DISRNN_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Smoothing */

int disrnn_smooth_gaussian(size_t n_obs, size_t n_bins, const double *x, double sigma_bins, double *y)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    size_t R, total, bytes;
    double *w, rsum;
    uintptr_t xa, ya;
    if (n_obs == 0 || n_bins == 0 || !x || !y) return DISRNN_ERR_INVALID_ARG;
    if (!isfinite(sigma_bins) || !(sigma_bins > 0.0)) return DISRNN_ERR_INVALID_ARG;
    if (disrnn__mul_size(n_obs, n_bins, &total) || disrnn__mul_size(total, sizeof(double), &bytes))
        return DISRNN_ERR_INVALID_ARG;
    xa = (uintptr_t)x;
    ya = (uintptr_t)y;
    if (xa < ya + bytes && ya < xa + bytes) return DISRNN_ERR_INVALID_ARG;
    /* Truncation at 4 sigma; beyond the series' length more weights could never be used. */
    R = 4.0 * sigma_bins >= (double)(n_bins - 1) ? n_bins - 1 : (size_t)floor(4.0 * sigma_bins);
    w = disrnn__alloc_doubles(al, R + 1);
    if (!w) return DISRNN_ERR_NOMEM;
    for (size_t j = 0; j <= R; j++) w[j] = exp(-0.5 * ((double)j / sigma_bins) * ((double)j / sigma_bins));
    rsum = w[0];
    for (size_t j = 1; j <= R; j++) rsum += 2.0 * w[j];
    for (size_t t = 0; t < n_bins; t++) {
        const size_t lo = t < R ? t : R;                         /* reach back  */
        const size_t hi = n_bins - 1 - t < R ? n_bins - 1 - t : R; /* reach ahead */
        double *yt = y + t * n_obs, norm;
        for (size_t n = 0; n < n_obs; n++) yt[n] = w[0] * x[t * n_obs + n];
        for (size_t j = 1; j <= lo; j++) {
            const double *xs = x + (t - j) * n_obs;
            for (size_t n = 0; n < n_obs; n++) yt[n] += w[j] * xs[n];
        }
        for (size_t j = 1; j <= hi; j++) {
            const double *xs = x + (t + j) * n_obs;
            for (size_t n = 0; n < n_obs; n++) yt[n] += w[j] * xs[n];
        }
        /* The kernel's mass inside the series: the full sum in the interior, renormalised at the edges. */
        if (lo == R && hi == R) {
            norm = rsum;
        } else {
            norm = w[0];
            for (size_t j = 1; j <= lo; j++) norm += w[j];
            for (size_t j = 1; j <= hi; j++) norm += w[j];
        }
        for (size_t n = 0; n < n_obs; n++) yt[n] /= norm;
    }
    disrnn__free(al, w);
    return DISRNN_OK;
}
