/* Exact maximum-weight assignment of rows to distinct columns (rows <= cols): the Hungarian
 * method in its shortest-augmenting-path form with row and column potentials, O(rows^2 cols).
 * Each row is added in turn and matched along a shortest alternating path in reduced costs; the
 * potentials keep every reduced cost non-negative, which is the optimality certificate. */
#include "analysis.h"

#include <math.h>
#include <string.h>

int disrnn__an_assign(const disrnn__allocator *al, size_t rows, size_t cols, const double *w, size_t ld,
                      size_t *assignment, double *total)
{
    /* Index 0 of the column arrays is a virtual column holding the row being inserted; real rows
     * and columns are 1-based. */
    double *u = NULL, *v = NULL, *minv = NULL;
    size_t *match = NULL, *way = NULL;
    unsigned char *used = NULL;
    double scale = 1.0, wmax = 0.0;
    int rc = DISRNN_ERR_NOMEM;
    u = disrnn__alloc_doubles(al, rows + 1);
    v = disrnn__alloc_doubles(al, cols + 1);
    minv = disrnn__alloc_doubles(al, cols + 1);
    match = (size_t *)disrnn__calloc(al, cols + 1, sizeof(size_t));
    way = (size_t *)disrnn__calloc(al, cols + 1, sizeof(size_t));
    used = (unsigned char *)disrnn__calloc(al, cols + 1, 1);
    if (!u || !v || !minv || !match || !way || !used) goto done;
    /* Costs are -w; differences of potentials could overflow for weights near DBL_MAX, so such
     * weights are scaled by a power of two, which is exact and leaves the optimum unchanged. */
    for (size_t j = 0; j < cols; j++)
        for (size_t i = 0; i < rows; i++) wmax = fmax(wmax, fabs(w[i + j * ld]));
    while (wmax * scale > 0x1p900) scale *= 0x1p-100;
    memset(u, 0, (rows + 1) * sizeof(double));
    memset(v, 0, (cols + 1) * sizeof(double));
    for (size_t i = 1; i <= rows; i++) {
        size_t j0 = 0;
        match[0] = i;
        for (size_t j = 0; j <= cols; j++) {
            minv[j] = INFINITY;
            used[j] = 0;
        }
        do {
            const size_t i0 = match[j0];
            double delta = INFINITY;
            size_t j1 = 0;
            used[j0] = 1;
            for (size_t j = 1; j <= cols; j++) {
                double cur;
                if (used[j]) continue;
                cur = -scale * w[(i0 - 1) + (j - 1) * ld] - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                /* ties go to the lowest column index, so the result is deterministic */
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (size_t j = 0; j <= cols; j++) {
                if (used[j]) {
                    u[match[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (match[j0] != 0);
        do { /* flip the alternating path back to the virtual column */
            const size_t j1 = way[j0];
            match[j0] = match[j1];
            j0 = j1;
        } while (j0 != 0);
    }
    {
        double sum = 0.0;
        for (size_t j = 1; j <= cols; j++)
            if (match[j]) assignment[match[j] - 1] = j - 1;
        for (size_t i = 0; i < rows; i++) sum += w[i + assignment[i] * ld];
        if (total) *total = sum;
    }
    rc = DISRNN_OK;
done:
    disrnn__free(al, used);
    disrnn__free(al, way);
    disrnn__free(al, match);
    disrnn__free(al, minv);
    disrnn__free(al, v);
    disrnn__free(al, u);
    return rc;
}

int disrnn_assignment_max(size_t rows, size_t cols, const double *weight, size_t ld, size_t *assignment, double *total)
{
    size_t last;
    if (!weight || !assignment || rows == 0 || rows > cols || ld < rows) return DISRNN_ERR_INVALID_ARG;
    /* the last element read, (rows - 1) + (cols - 1) ld, must be addressable; cols + 1 entries of
     * workspace must be countable */
    if (disrnn__mul_size(cols - 1, ld, &last) || disrnn__add_size(last, rows, &last) || cols == SIZE_MAX)
        return DISRNN_ERR_INVALID_ARG;
    if (!disrnn__all_finite(weight, rows, cols, ld)) return DISRNN_ERR_NONFINITE;
    return disrnn__an_assign(disrnn__default_allocator(), rows, cols, weight, ld, assignment, total);
}
