/* Spike events: CSV reading (headers, whitespace, malformed lines, empty files, exact and
 * locale-independent numbers), binning (bin edges, windows, ragged trials, ignored events, buffer
 * sizes) and Gaussian smoothing; plus the real PMd spike list against its NumPy-binned counts. */
#include "support.h"

#include <dirent.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *csv_file(const char *name, const char *text)
{
    static char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", test_scratch, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* ------------------------------------------------------------------------------------------ */
/* CSV */

static void test_csv_header_whitespace_and_measure(void **state)
{
    const char *path = csv_file("a.csv", "trial, channel ,time\r\n"
                                         "0,3,1.5\r\n"
                                         "\n"
                                         "  0 ,\t4,  2.25  \n"
                                         "# a comment line\n"
                                         "1,0,-0.5\n"
                                         "-1,2,1e3\n"
                                         "2,1,.125"); /* no final newline */
    int64_t tr[5], ch[5];
    double t[5];
    size_t n = 0;
    char msg[256];
    (void)state;
    assert_ok(disrnn_spikes_read_csv(path, NULL, NULL, NULL, 0, &n, msg, sizeof msg));
    assert_int_equal(n, 5);
    assert_ok(disrnn_spikes_read_csv(path, tr, ch, t, 5, &n, msg, sizeof msg));
    assert_int_equal(n, 5);
    assert_true(tr[0] == 0 && ch[0] == 3 && t[0] == 1.5);
    assert_true(tr[1] == 0 && ch[1] == 4 && t[1] == 2.25);
    assert_true(tr[2] == 1 && ch[2] == 0 && t[2] == -0.5);
    assert_true(tr[3] == -1 && ch[3] == 2 && t[3] == 1000.0);
    assert_true(tr[4] == 2 && ch[4] == 1 && t[4] == 0.125);
    /* without a header the first line is data */
    path = csv_file("b.csv", "7,8,9\n");
    assert_ok(disrnn_spikes_read_csv(path, tr, ch, t, 5, &n, msg, sizeof msg));
    assert_int_equal(n, 1);
    assert_true(tr[0] == 7 && ch[0] == 8 && t[0] == 9.0);
}

static void test_csv_empty_files(void **state)
{
    int64_t tr[1] = {-5}, ch[1];
    double t[1];
    size_t n = 99;
    char msg[256];
    (void)state;
    assert_ok(disrnn_spikes_read_csv(csv_file("e.csv", ""), NULL, NULL, NULL, 0, &n, msg, sizeof msg));
    assert_int_equal(n, 0);
    n = 99;
    assert_ok(disrnn_spikes_read_csv(csv_file("h.csv", "trial,channel,time\n"), tr, ch, t, 1, &n, msg, sizeof msg));
    assert_int_equal(n, 0);
    assert_int_equal(tr[0], -5);
    n = 99;
    assert_ok(disrnn_spikes_read_csv(csv_file("w.csv", "\n  \n\r\n"), tr, ch, t, 1, &n, msg, sizeof msg));
    assert_int_equal(n, 0);
}

static void test_csv_buffer_too_small_writes_nothing(void **state)
{
    const char *path = csv_file("s.csv", "0,0,1\n0,1,2\n0,2,3\n");
    int64_t tr[2] = {-7, -7}, ch[2] = {-7, -7};
    double t[2] = {-7, -7};
    size_t n = 0;
    char msg[256];
    (void)state;
    assert_status(disrnn_spikes_read_csv(path, tr, ch, t, 2, &n, msg, sizeof msg), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, 3); /* the size needed is still reported */
    for (int i = 0; i < 2; i++) assert_true(tr[i] == -7 && ch[i] == -7 && t[i] == -7.0);
}

static void test_csv_malformed_lines(void **state)
{
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"trial,channel,time\n0,1,2\n0,1\n", "line 3"},
        {"0,1,2\n0,1,2,3\n", "line 2"},
        {"0,1,2\n0,x,2\n", "channel"},
        {"0,1,2\n\n\n1.5,1,2\n", "line 4"},
        {"0,1,2\n0,1,abc\n", "time"},
        {"0,1,2\n0,1,nan\n", "time"},
        {"0,1,2\n0,1,inf\n", "time"},
        {"0,1,2\n0,1,1e99999\n", "range"},
        {"0,1,2\n0,1,\n", "time"},
        {"0,1,2\n0,,2\n", "channel"},
        {"0,1,2\n99999999999999999999,1,2\n", "trial"},
        {"0,1,2\n0,1,2e\n", "time"},
        {"0,1,2\n0,1,--2\n", "time"},
        {"0,1,2\n0,1,1.2.3\n", "time"},
        {"0,1,2\n0;1;2\n", "line 2"},
    };
    int64_t tr[4] = {-3, -3, -3, -3}, ch[4];
    double t[4];
    size_t n = 77;
    char msg[256];
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = csv_file("m.csv", bad[i].text);
        msg[0] = '\0';
        assert_status(disrnn_spikes_read_csv(path, tr, ch, t, 4, &n, msg, sizeof msg), DISRNN_ERR_CORRUPT);
        if (!strstr(msg, bad[i].want)) fail_msg("case %zu: message '%s' lacks '%s'", i, msg, bad[i].want);
        assert_int_equal(tr[0], -3); /* a bad line anywhere leaves the outputs untouched */
        assert_int_equal(n, 77);
    }
    /* a line longer than the reader's 64 KiB window */
    {
        char *big = (char *)malloc(70000);
        assert_non_null(big);
        memset(big, ' ', 69990);
        strcpy(big + 69990, "0,1,2\n");
        assert_status(disrnn_spikes_read_csv(csv_file("long.csv", big), tr, ch, t, 4, &n, msg, sizeof msg),
                      DISRNN_ERR_CORRUPT);
        assert_non_null(strstr(msg, "line 1"));
        free(big);
    }
    /* arguments */
    assert_status(disrnn_spikes_read_csv(NULL, tr, ch, t, 4, &n, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_spikes_read_csv(csv_file("ok.csv", "0,0,0\n"), tr, ch, t, 4, NULL, msg, sizeof msg),
                  DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_spikes_read_csv(csv_file("ok.csv", "0,0,0\n"), NULL, ch, t, 4, &n, msg, sizeof msg),
                  DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_spikes_read_csv("/nonexistent-folder/x.csv", tr, ch, t, 4, &n, msg, sizeof msg),
                  DISRNN_ERR_IO);
}

/* Every number must come out exactly as the C library's strtod (in the C locale) reads it: on
 * the exact fast path and on the long-number fallback. */
static void test_csv_numbers_exact(void **state)
{
    static const char *nums[] = {
        "4397.002300", "0.1", "-0", "+.5", "5.", "1e22", "1e23", "1E-5", "123456789012345678901234",
        "9007199254740993", "0.1000000000000000055511151231257827", "1.7976931348623157e308",
        "2.2250738585072014e-308", "4.9e-324", "0.000000000000000000000000000001", "3.14159265358979323846",
        "18446744073709551615", "-2.5e-3", "1e-22", "9999999999999999999", "0e0", "00012.50",
    };
    char text[2048] = "", line[128], msg[256];
    int64_t tr[32], ch[32];
    double t[32];
    size_t n = 0, k = sizeof nums / sizeof nums[0];
    (void)state;
    for (size_t i = 0; i < k; i++) {
        snprintf(line, sizeof line, "%zu,0,%s\n", i, nums[i]);
        strcat(text, line);
    }
    assert_ok(disrnn_spikes_read_csv(csv_file("num.csv", text), tr, ch, t, 32, &n, msg, sizeof msg));
    assert_int_equal(n, k);
    for (size_t i = 0; i < k; i++) {
        const double want = strtod(nums[i], NULL);
        if (memcmp(&t[i], &want, sizeof want) != 0) fail_msg("'%s' read as %.17g, strtod gives %.17g", nums[i], t[i], want);
    }
}

static void test_csv_ignores_decimal_comma_locale(void **state)
{
    static const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "de_DE", "fr_FR", NULL};
    const char *path = csv_file("loc.csv", "0,1,0.5\n0,2,12345678901234567890.5\n");
    int64_t tr[2], ch[2];
    double t[2];
    size_t n = 0;
    char msg[256], *old = setlocale(LC_NUMERIC, NULL), saved[64];
    int found = 0;
    (void)state;
    snprintf(saved, sizeof saved, "%s", old ? old : "C");
    for (int i = 0; names[i] && !found; i++) found = setlocale(LC_NUMERIC, names[i]) != NULL;
    if (!found) print_message("no decimal-comma locale installed: checking under the current locale only\n");
    assert_ok(disrnn_spikes_read_csv(path, tr, ch, t, 2, &n, msg, sizeof msg));
    setlocale(LC_NUMERIC, saved);
    assert_int_equal(n, 2);
    assert_true(t[0] == 0.5);
    assert_true(t[1] == 12345678901234567890.5);
}

/* ------------------------------------------------------------------------------------------ */
/* Binning */

static void test_num_bins(void **state)
{
    const double start[3] = {0.0, 10.0, 0.0}, stop[3] = {100.0, 15.0, 0.3};
    size_t nb[3] = {9, 9, 9}, total = 0;
    double bad_stop[3] = {100.0, 10.0, 0.3};
    (void)state;
    assert_ok(disrnn_spikes_num_bins(2, start, stop, 20.0, nb, &total));
    assert_int_equal(nb[0], 5);
    assert_int_equal(nb[1], 0); /* 5 units hold no complete 20-unit bin */
    assert_int_equal(total, 5);
    /* 0.3 / 0.1 is 2.9999999999999996 in floating point; it still holds three bins */
    assert_ok(disrnn_spikes_num_bins(3, start, stop, 0.1, nb, NULL));
    assert_int_equal(nb[2], 3);
    assert_int_equal(nb[0], 1000);
    /* a bad window anywhere: nothing written */
    nb[0] = nb[1] = nb[2] = 9;
    assert_status(disrnn_spikes_num_bins(3, start, bad_stop, 1.0, nb, &total), DISRNN_ERR_INVALID_ARG);
    assert_true(nb[0] == 9 && nb[1] == 9 && nb[2] == 9);
    bad_stop[1] = NAN;
    assert_status(disrnn_spikes_num_bins(3, start, bad_stop, 1.0, nb, &total), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_spikes_num_bins(2, start, stop, 0.0, nb, &total), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_spikes_num_bins(2, start, stop, -1.0, nb, &total), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_spikes_num_bins(2, start, stop, NAN, nb, &total), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_spikes_num_bins(2, start, stop, INFINITY, nb, &total), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_spikes_num_bins(0, start, stop, 1.0, nb, &total), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_spikes_num_bins(2, NULL, stop, 1.0, nb, &total), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_spikes_num_bins(2, start, stop, 1.0, NULL, &total), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_spikes_num_bins(2, start, stop, 1e-300, nb, &total), DISRNN_ERR_INVALID_ARG); /* absurd count */
}

static void test_bin_edges_windows_ragged(void **state)
{
    /* trial 0: [0, 30) in 3 bins of 10; trial 1: [100, 120) in 2 bins; N = 2 */
    const double start[2] = {0.0, 100.0}, stop[2] = {35.0, 120.0};
    const int64_t tr[] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 2, -1, 1, 1};
    const int64_t ch[] = {0, 1, 0, 0, 1, 0, 1, 0, 1, 0, 2, 0, 0, -1, 1};
    const double t[] = {0.0,   /* first edge: bin 0 */
                        9.999, /* still bin 0 */
                        10.0,  /* edge: bin 1 */
                        29.99, /* bin 2 */
                        30.0,  /* beyond the last whole bin (35 is not a bin edge): ignored */
                        -0.01, /* before the start: ignored */
                        100.0, 110.0, 119.0,
                        120.0, /* the stop is excluded */
                        5.0,   /* channel out of range */
                        5.0,   /* trial out of range */
                        5.0,   /* negative trial */
                        105.0, /* negative channel */
                        99.0}; /* before trial 1's window (though inside trial 0's time range) */
    const size_t ne = sizeof t / sizeof t[0];
    double counts[10], want[10] = {/* trial 0 bin-major N = 2 */ 1, 1, 1, 0, 1, 0,
                                   /* trial 1 */ 0, 1, 1, 1};
    double small[9];
    (void)state;
    assert_ok(disrnn_spikes_bin(ne, tr, ch, t, 2, 2, start, stop, 10.0, counts, 10));
    for (int i = 0; i < 10; i++)
        if (counts[i] != want[i]) fail_msg("counts[%d] = %g, wanted %g", i, counts[i], want[i]);
    /* the same events in reverse trial order give the same counts */
    {
        int64_t tr2[sizeof tr / sizeof tr[0]], ch2[sizeof ch / sizeof ch[0]];
        double t2[sizeof t / sizeof t[0]], c2[10];
        for (size_t i = 0; i < ne; i++) {
            tr2[i] = tr[ne - 1 - i];
            ch2[i] = ch[ne - 1 - i];
            t2[i] = t[ne - 1 - i];
        }
        assert_ok(disrnn_spikes_bin(ne, tr2, ch2, t2, 2, 2, start, stop, 10.0, c2, 10));
        assert_memory_equal(c2, counts, sizeof c2);
    }
    /* one element short: refused, untouched */
    for (int i = 0; i < 9; i++) small[i] = -1.0;
    assert_status(disrnn_spikes_bin(ne, tr, ch, t, 2, 2, start, stop, 10.0, small, 9), DISRNN_ERR_BUFFER_TOO_SMALL);
    for (int i = 0; i < 9; i++) assert_true(small[i] == -1.0);
    /* bad input */
    assert_status(disrnn_spikes_bin(ne, tr, ch, t, 2, 0, start, stop, 10.0, counts, 10), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_spikes_bin(ne, NULL, ch, t, 2, 2, start, stop, 10.0, counts, 10), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_spikes_bin(ne, tr, ch, t, 2, 2, start, stop, 0.0, counts, 10), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_spikes_bin(ne, tr, ch, t, 2, 2, start, stop, 10.0, NULL, 10), DISRNN_ERR_INVALID_ARG);
    {
        double tn[2] = {1.0, NAN};
        const int64_t z[2] = {0, 0};
        counts[0] = 42.0;
        assert_status(disrnn_spikes_bin(2, z, z, tn, 2, 2, start, stop, 10.0, counts, 10), DISRNN_ERR_INVALID_ARG);
        assert_true(counts[0] == 42.0);
    }
    /* no events: all zero */
    assert_ok(disrnn_spikes_bin(0, NULL, NULL, NULL, 2, 2, start, stop, 10.0, counts, 10));
    for (int i = 0; i < 10; i++) assert_true(counts[i] == 0.0);
}

static void test_bin_decimal_edges(void **state)
{
    /* seconds with 0.1 s bins: events exactly on edges computed in floating point */
    const double start[1] = {0.0}, stop[1] = {0.3};
    const int64_t tr[4] = {0, 0, 0, 0}, ch[4] = {0, 0, 0, 0};
    const double t[4] = {0.1, 0.2, 0.1 + 0.2 - 0.1, 0.3}; /* bins 1, 2, 2; 0.3 is the stop */
    double counts[3];
    (void)state;
    assert_ok(disrnn_spikes_bin(4, tr, ch, t, 1, 1, start, stop, 0.1, counts, 3));
    assert_true(counts[0] == 0.0 && counts[1] == 1.0 && counts[2] == 2.0);
}

/* The real PMd spike list binned here equals the counts NumPy binned from the same spike trains. */
static void test_shared_pmd_spikes_match_counts(void **state)
{
    const char *root = test_shared_data();
    char csv[1024], cnt[1024], len_path[1024], msg[256];
    int64_t *tr, *ch;
    double *t, *counts, *npy, length[112], start[112], stop[112];
    size_t n = 0, nb[112], total = 0, off = 0, total_events = 0;
    (void)state;
    if (root) {
        snprintf(csv, sizeof csv, "%s/datahigh_pmd/ex2_spikes_1ms.csv", root);
        snprintf(cnt, sizeof cnt, "%s/datahigh_pmd/ex2_counts_20ms.npy", root);
        snprintf(len_path, sizeof len_path, "%s/datahigh_pmd/ex2_length_ms.npy", root);
    }
    if (!root || access(csv, R_OK) || access(cnt, R_OK) || access(len_path, R_OK)) {
        print_message("shared data folder absent: skipping the PMd spike files\n");
        skip();
    }
    assert_ok(disrnn_spikes_read_csv(csv, NULL, NULL, NULL, 0, &n, msg, sizeof msg));
    assert_int_equal(n, 103478); /* SOURCE.md: 103,478 spikes */
    tr = (int64_t *)malloc(n * sizeof *tr);
    ch = (int64_t *)malloc(n * sizeof *ch);
    t = (double *)malloc(n * sizeof *t);
    assert_true(tr && ch && t);
    assert_ok(disrnn_spikes_read_csv(csv, tr, ch, t, n, &n, msg, sizeof msg));
    assert_ok(disrnn_npy_read_f64(len_path, length, 112, 0, msg, sizeof msg));
    for (int r = 0; r < 112; r++) {
        start[r] = 0.0;
        stop[r] = length[r];
    }
    assert_ok(disrnn_spikes_num_bins(112, start, stop, 20.0, nb, &total));
    counts = (double *)malloc(61 * total * sizeof(double));
    npy = (double *)malloc(112 * 61 * 76 * sizeof(double));
    assert_true(counts && npy);
    assert_ok(disrnn_spikes_bin(n, tr, ch, t, 112, 61, start, stop, 20.0, counts, 61 * total));
    assert_ok(disrnn_npy_read_f64(cnt, npy, 112 * 61 * 76, 0, msg, sizeof msg));
    for (size_t r = 0; r < 112; r++) {
        assert_true(nb[r] >= 50 && nb[r] <= 76);
        for (size_t b = 0; b < 76; b++)
            for (size_t c = 0; c < 61; c++) {
                const double want = npy[(r * 61 + c) * 76 + b];
                if (b < nb[r]) {
                    assert_true(counts[off + b * 61 + c] == want);
                    total_events += (size_t)want;
                } else {
                    assert_true(want == 0.0);
                }
            }
        off += nb[r] * 61;
    }
    assert_int_equal(total_events, 103478 - 1514); /* SOURCE.md: the 1,514 tail spikes are dropped */
    free(tr);
    free(ch);
    free(t);
    free(counts);
    free(npy);
}

/* ------------------------------------------------------------------------------------------ */
/* Smoothing */

static void test_smooth_constant_and_totals(void **state)
{
    enum { N = 3, T = 200 };
    static double x[N * T], y[N * T];
    double sx[N] = {0}, sy[N] = {0};
    (void)state;
    /* a constant stays constant everywhere, edges included (the kernel is renormalised there) */
    for (int i = 0; i < N * T; i++) x[i] = 2.5;
    assert_ok(disrnn_smooth_gaussian(N, T, x, 3.0, y));
    for (int i = 0; i < N * T; i++) assert_true(fabs(y[i] - 2.5) < 1e-13);
    /* spikes further than 4 sigma from the edges keep their total and spread symmetrically */
    memset(x, 0, sizeof x);
    x[100 * N + 0] = 1.0;
    x[50 * N + 1] = 3.0;
    x[51 * N + 1] = 2.0;
    x[150 * N + 2] = 4.0;
    assert_ok(disrnn_smooth_gaussian(N, T, x, 5.0, y));
    for (int t = 0; t < T; t++)
        for (int c = 0; c < N; c++) {
            sx[c] += x[t * N + c];
            sy[c] += y[t * N + c];
            assert_true(y[t * N + c] >= 0.0);
        }
    for (int c = 0; c < N; c++) assert_true(fabs(sx[c] - sy[c]) < 1e-12);
    for (int j = 1; j <= 20; j++) {
        assert_true(fabs(y[(100 + j) * N] - y[(100 - j) * N]) < 1e-15);
        assert_true(y[(100 + j) * N] < y[(100 + j - 1) * N]);
        /* the Gaussian shape: ratio to the peak is exp(-j^2 / (2 sigma^2)) */
        assert_true(fabs(y[(100 + j) * N] / y[100 * N] - exp(-0.5 * j * j / 25.0)) < 1e-12);
    }
    assert_true(y[121 * N] == 0.0); /* truncated at 4 sigma = 20 bins */
    /* a tiny sigma is the identity */
    assert_ok(disrnn_smooth_gaussian(N, T, x, 0.2, y));
    assert_memory_equal(x, y, sizeof x);
    /* a single bin, and a kernel much wider than the series */
    assert_ok(disrnn_smooth_gaussian(N, 1, x + 100 * N, 2.0, y));
    assert_true(y[0] == 1.0);
    assert_ok(disrnn_smooth_gaussian(N, T, x, 1e6, y));
    assert_true(fabs(y[0] - 1.0 / T) < 1e-9); /* nearly flat: the mean */
}

static void test_smooth_arguments(void **state)
{
    double x[8] = {0}, y[8];
    (void)state;
    assert_status(disrnn_smooth_gaussian(2, 4, x, 0.0, y), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_smooth_gaussian(2, 4, x, -1.0, y), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_smooth_gaussian(2, 4, x, NAN, y), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_smooth_gaussian(2, 4, x, INFINITY, y), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_smooth_gaussian(0, 4, x, 1.0, y), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_smooth_gaussian(2, 0, x, 1.0, y), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_smooth_gaussian(2, 4, NULL, 1.0, y), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_smooth_gaussian(2, 4, x, 1.0, NULL), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_smooth_gaussian(2, 4, x, 1.0, x), DISRNN_ERR_INVALID_ARG);     /* in place */
    assert_status(disrnn_smooth_gaussian(2, 3, x, 1.0, x + 2), DISRNN_ERR_INVALID_ARG); /* overlapping */
    assert_ok(disrnn_smooth_gaussian(1, 4, x, 1.0, x + 4));                             /* adjacent is fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_header_whitespace_and_measure),
        cmocka_unit_test(test_csv_empty_files),
        cmocka_unit_test(test_csv_buffer_too_small_writes_nothing),
        cmocka_unit_test(test_csv_malformed_lines),
        cmocka_unit_test(test_csv_numbers_exact),
        cmocka_unit_test(test_csv_ignores_decimal_comma_locale),
        cmocka_unit_test(test_num_bins),
        cmocka_unit_test(test_bin_edges_windows_ragged),
        cmocka_unit_test(test_bin_decimal_edges),
        cmocka_unit_test(test_shared_pmd_spikes_match_counts),
        cmocka_unit_test(test_smooth_constant_and_totals),
        cmocka_unit_test(test_smooth_arguments),
    };
    return cmocka_run_group_tests(tests, test_scratch_setup, test_scratch_teardown);
}
