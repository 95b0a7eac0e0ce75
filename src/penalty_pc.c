/* The importance-sampled group total correlation PC_hat of MODEL.md section 4 and its gradient.
 *
 * With l_ij^g the log density of z_i's group-g coordinates under component j, l_ij = sum_g l_ij^g
 * and lw_ij the log importance weight,
 *   PC_hat = (1/M) sum_i [ LSE_j(l_ij + lw_ij) - sum_g LSE_j(l_ij^g + lw_ij) ] + (G - 1) ln N_tot.
 * Since l_ij enters every group's density, dPC/dl_ij^g = (P_ij - P_ij^g) / M, with P and P^g the
 * row-wise softmax weights of the full and the group mixtures; the rest is the chain rule through
 * the normal log densities. Every quantity of row i depends on row i alone, so the work streams
 * over rows: G + 1 rows of M values are live at a time (no M x M matrix), and the exponentials
 * taken for the log-sum-exps are kept and reused as the softmax weights of the backward pass. */
#include "model.h"
#include "objective_internal.h"

#include <math.h>

#define HALF_LOG_2PI 0.91893853320467274178032973640562

size_t disrnn__pc_work_size(size_t K, size_t M, size_t G)
{
    size_t n;
    /* G group rows, the full row, K reciprocals of s */
    if (disrnn__mul_size(G + 1, M, &n) || disrnn__add_size(n, K, &n)) return 0;
    return n;
}

/* Row i of l^g over all components j (without weights) into row[0..M). */
static void group_row(size_t K, size_t M, const double *mu, const double *z, const double *inv_s, double cst,
                      size_t k0, size_t k1, size_t i, double *row)
{
    const double *zi = z + i * K;
    for (size_t j = 0; j < M; j++) {
        const double *mj = mu + j * K;
        double q = 0.0;
        for (size_t k = k0; k < k1; k++) {
            const double t = (zi[k] - mj[k]) * inv_s[k];
            q += t * t;
        }
        row[j] = cst - 0.5 * q;
    }
}

/* log sum_j exp(row[j] + lw_ij) for row i (diagonal weight 1, the others exp(lw_off)). row is
 * overwritten with the terms exp(row[j] + lw_ij - max), and *sum receives their sum, so that
 * row[j] / *sum is the softmax weight of component j. */
static double row_lse(size_t M, double *row, size_t i, double lw_off, double *sum)
{
    double mx = row[i], acc = 0.0;
    for (size_t j = 0; j < M; j++)
        if (j != i && row[j] + lw_off > mx) mx = row[j] + lw_off;
    for (size_t j = 0; j < M; j++) {
        row[j] = exp(row[j] + (j == i ? 0.0 : lw_off) - mx);
        acc += row[j];
    }
    *sum = acc;
    return mx + log(acc);
}

double disrnn__pc(size_t K, size_t M, const double *mu, const double *z, const double *s, const double *log_s,
                  size_t G, const size_t *group_start, double n_tot, double *work, double *dz, double *dmu,
                  double *dlog_s)
{
    double *rows = work;           /* G x M: row g of sample i */
    double *full = rows + G * M;   /* M */
    double *inv_s = full + M;      /* K */
    const double inv_m = 1.0 / (double)M;
    /* N_tot <= 1 leaves no mass for the other points: their weight is 0 (log weight -inf). */
    const double lw_off = n_tot > 1.0 ? log((n_tot - 1.0) / (double)(M - 1)) : -HUGE_VAL;
    double pc = 0.0;

    for (size_t k = 0; k < K; k++) inv_s[k] = 1.0 / s[k];
    if (dz) {
        for (size_t i = 0; i < K * M; i++) dz[i] = dmu[i] = 0.0;
        for (size_t k = 0; k < K; k++) dlog_s[k] = 0.0;
    }
    for (size_t i = 0; i < M; i++) {
        double sum_full, lse_full, lse_groups = 0.0;
        for (size_t j = 0; j < M; j++) full[j] = 0.0;
        for (size_t g = 0; g < G; g++) {
            double *rg = rows + g * M, cst = 0.0;
            for (size_t k = group_start[g]; k < group_start[g + 1]; k++) cst -= HALF_LOG_2PI + log_s[k];
            group_row(K, M, mu, z, inv_s, cst, group_start[g], group_start[g + 1], i, rg);
            for (size_t j = 0; j < M; j++) full[j] += rg[j];
        }
        lse_full = row_lse(M, full, i, lw_off, &sum_full);
        for (size_t g = 0; g < G; g++) {
            double sum_g;
            lse_groups += row_lse(M, rows + g * M, i, lw_off, &sum_g);
            if (!dz) continue;
            {
                /* backward for row i and group g: w_ij = (P_ij - P_ij^g) / M */
                const double *rg = rows + g * M, *zi = z + i * K;
                const double cf = inv_m / sum_full, cg = inv_m / sum_g;
                const size_t k0 = group_start[g], k1 = group_start[g + 1];
                double *dzi = dz + i * K;
                for (size_t j = 0; j < M; j++) {
                    const double w = full[j] * cf - rg[j] * cg;
                    const double *mj = mu + j * K;
                    double *dmj = dmu + j * K;
                    for (size_t k = k0; k < k1; k++) {
                        const double diff = zi[k] - mj[k];
                        const double t = w * diff;
                        dzi[k] -= t;
                        dmj[k] += t;
                        /* d l/d log s_k = diff^2 / s_k^2 - 1; the -1 multiplies sum_ij w_ij,
                         * which is 0 because the rows of P and P^g both sum to one. */
                        dlog_s[k] += t * diff;
                    }
                }
            }
        }
        pc += lse_full - lse_groups;
    }
    pc = pc * inv_m + (double)(G - 1) * log(n_tot);
    if (dz) {
        for (size_t k = 0; k < K; k++) dlog_s[k] *= inv_s[k] * inv_s[k];
        for (size_t i = 0; i < M; i++)
            for (size_t k = 0; k < K; k++) {
                const double inv_s2 = inv_s[k] * inv_s[k];
                dz[k + i * K] *= inv_s2;
                dmu[k + i * K] *= inv_s2;
            }
    }
    return pc;
}
