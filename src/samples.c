/* The samples a model sees in a dataset, gathered once into contiguous columns: targets, encoder
 * inputs built from each sample's own trial history, known inputs and masks. */
#include "dataset.h"

#include <string.h>

/* Columns of previous bins assembled per call of the encoder input: bounds the workspace to
 * N * L * CHUNK doubles whatever the dataset size. */
#define DISRNN__HISTORY_CHUNK 256

void disrnn__samples_free(const disrnn__allocator *al, disrnn__samples *s)
{
    if (!s) return;
    disrnn__free(al, s->x);
    disrnn__free(al, s->h);
    disrnn__free(al, s->u);
    disrnn__free(al, s->mask);
    disrnn__free(al, s->trial);
    disrnn__free(al, s->bin);
    memset(s, 0, sizeof *s);
}


int disrnn__samples_build(const disrnn_dataset_t *ds, const disrnn_model_t *m, const disrnn__allocator *al,
                          disrnn__samples *out, const disrnn__base *err)
{
    const disrnn__spec *sp;
    disrnn__samples s;
    double *xprev = NULL;
    size_t S, N, P, L, NL, chunk, nx, nprev;
    int rc;
    if (!out) return disrnn__fail(err, DISRNN_ERR_INVALID_ARG, "No output for the samples.");
    memset(out, 0, sizeof *out);
    if (!ds || !m || !al) return disrnn__fail(err, DISRNN_ERR_INVALID_ARG, "The dataset or the model is NULL.");
    sp = &m->spec;
    N = sp->N;
    P = sp->P;
    L = sp->L;
    if (ds->N != N)
        return disrnn__fail(err, DISRNN_ERR_INVALID_ARG, "The dataset has N = %zu channels but the model expects %zu.", ds->N, N);
    if (ds->P != P)
        return disrnn__fail(err, DISRNN_ERR_INVALID_ARG, "The dataset has P = %zu inputs but the model expects %zu.", ds->P, P);
    if (disrnn__obs_is_poisson(sp->obs) && ds->kind != DISRNN_DATA_COUNTS)
        return disrnn__fail(err, DISRNN_ERR_DATA,
                            "A Poisson observation model needs a dataset of counts (DISRNN_DATA_COUNTS).");
    S = disrnn_dataset_num_samples(ds, m);
    memset(&s, 0, sizeof s);
    s.S = S;
    s.N = N;
    s.P = P;
    if (S == 0) {
        *out = s;
        return DISRNN_OK;
    }
    if (disrnn__mul_size(N, L, &NL) || disrnn__mul_size(N, S, &nx)) goto oom;
    chunk = S < DISRNN__HISTORY_CHUNK ? S : DISRNN__HISTORY_CHUNK;
    if (disrnn__mul_size(NL, chunk, &nprev)) goto oom;
    s.x = disrnn__alloc_doubles(al, nx);
    s.h = disrnn__alloc_doubles(al, nx);
    s.trial = (size_t *)disrnn__calloc(al, S, sizeof(size_t));
    s.bin = (size_t *)disrnn__calloc(al, S, sizeof(size_t));
    xprev = disrnn__alloc_doubles(al, nprev);
    if (!s.x || !s.h || !s.trial || !s.bin || !xprev) goto oom;
    if (P > 0 && !(s.u = disrnn__calloc(al, S, P * sizeof(double)))) goto oom;
    if (ds->mask && !(s.mask = (uint8_t *)disrnn__calloc(al, S, N))) goto oom;

    rc = disrnn_dataset_sample_index(ds, m, s.trial, s.bin, S);
    if (rc != DISRNN_OK) goto fail_rc; /* cannot happen: the arrays hold S entries */
    {
        int any_missing = 0;
        for (size_t j = 0; j < S; j++) {
            const size_t col = ds->start[s.trial[j]] + s.bin[j];
            memcpy(s.x + j * N, ds->x + col * N, N * sizeof(double));
            if (P) memcpy(s.u + j * P, ds->u + col * P, P * sizeof(double));
            if (s.mask) {
                memcpy(s.mask + j * N, ds->mask + col * N, N);
                for (size_t i = 0; i < N && !any_missing; i++) any_missing = s.mask[j * N + i] == 0;
            }
        }
        if (s.mask && !any_missing) { /* the selected bins are complete: skip masking downstream */
            disrnn__free(al, s.mask);
            s.mask = NULL;
        }
    }
    for (size_t j0 = 0; j0 < S; j0 += chunk) {
        const size_t M = S - j0 < chunk ? S - j0 : chunk;
        for (size_t j = 0; j < M; j++) {
            const size_t r = s.trial[j0 + j], t = s.bin[j0 + j], base = ds->start[r];
            for (size_t l = 1; l <= L; l++) {
                double *dst = xprev + j * NL + (l - 1) * N;
                if (t >= l)
                    memcpy(dst, ds->x + (base + t - l) * N, N * sizeof(double));
                else if (sp->padding == DISRNN_PAD_REPEAT)
                    memcpy(dst, ds->x + base * N, N * sizeof(double));
                else /* zero padding: sigma(0) = 0 for every nonlinearity (drop never gets here) */
                    memset(dst, 0, N * sizeof(double));
            }
        }
        disrnn__encoder_input(sp, M, xprev, NL, s.h + j0 * N, N);
        /* identity and relu pass x / kappa through unbounded: a tiny kappa can overflow */
        if (!disrnn__all_finite(s.h + j0 * N, N, M, N)) {
            disrnn__free(al, xprev);
            disrnn__samples_free(al, &s);
            return disrnn__fail(err, DISRNN_ERR_NONFINITE, "The encoder input overflowed (x / kappa is too large).");
        }
    }
    disrnn__free(al, xprev);
    *out = s;
    return DISRNN_OK;
oom:
    rc = DISRNN_ERR_NOMEM;
fail_rc:
    disrnn__free(al, xprev);
    disrnn__samples_free(al, &s);
    return disrnn__fail(err, rc, rc == DISRNN_ERR_NOMEM ? "Out of memory preparing %zu samples." : "Could not index %zu samples.", S);
}
