/* Trainer checkpoints (docs/checkpoint-format.md): the model section, then the trainer's settings,
 * optimiser moments, position within the epoch and the epoch's sample order, generator state and
 * best-validation bookkeeping, so that a fit resumed from a checkpoint taken anywhere, even in
 * the middle of an epoch, continues bit for bit as the uninterrupted fit would.
 *
 * Loading treats the file as hostile: the container checks length, version and CRC; every field
 * is then read through the bounds-checked reader into temporaries and validated (ranges, the
 * order is a permutation, the model matches the trainer's), and only then is anything copied
 * into the trainer and its model. */
#include "container.h"
#include "trainer.h"

#include <math.h>
#include <string.h>

#define CKPT_MAGIC 0x54504b43u /* "CKPT" little-endian: marks the trainer part of the payload */
#define CKPT_LAYOUT 1u         /* layout of the trainer part inside format version 1 */

static int write_payload(const disrnn_trainer_t *tr, disrnn__writer *w)
{
    const size_t n = tr->n, S = tr->tr_s.S;
    disrnn__model_write(w, tr->model);
    disrnn__w_u32(w, CKPT_MAGIC);
    disrnn__w_u32(w, CKPT_LAYOUT);
    disrnn__w_u64(w, (uint64_t)S);
    disrnn__w_u64(w, (uint64_t)n);
    disrnn__w_u64(w, tr->seed);
    for (int o = 0; o < DISRNN__NUM_SAVED_TRAIN_OPTIONS; o++) {
        int is_int = 0;
        (void)disrnn_train_option_bounds(o, NULL, NULL, &is_int);
        if (is_int)
            disrnn__w_i64(w, tr->set.ival[o]);
        else
            disrnn__w_f64(w, tr->set.dval[o]);
    }
    for (int i = 0; i < 4; i++) disrnn__w_u64(w, tr->rng.s[i]);
    disrnn__w_i64(w, tr->pr.step);
    disrnn__w_i64(w, tr->pr.epoch);
    disrnn__w_u32(w, (uint32_t)tr->pr.in_epoch);
    disrnn__w_u64(w, (uint64_t)tr->pr.pos);
    for (size_t i = 0; i < S; i++) disrnn__w_u64(w, (uint64_t)tr->order[i]);
    disrnn__w_f64s(w, tr->pr.acc, DISRNN__NUM_TERMS);
    disrnn__w_i64(w, tr->pr.acc_batches);
    disrnn__w_f64s(w, tr->m, n);
    disrnn__w_f64s(w, tr->v, n);
    disrnn__w_u32(w, (uint32_t)tr->pr.has_best);
    disrnn__w_f64(w, tr->pr.best_val);
    disrnn__w_i64(w, tr->pr.best_epoch);
    disrnn__w_i64(w, tr->pr.bad_epochs);
    if (tr->pr.has_best) disrnn__w_f64s(w, tr->best_theta, n);
    return w->oom ? DISRNN_ERR_NOMEM : DISRNN_OK;
}

int disrnn_trainer_save(const disrnn_trainer_t *tr, const char *path)
{
    disrnn__writer payload, file;
    char msg[DISRNN__ERR_LEN / 2];
    int rc;
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    if (!path || !path[0]) return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The checkpoint path is empty.");
    disrnn__w_init(&payload, &tr->base.al);
    disrnn__w_init(&file, &tr->base.al);
    rc = write_payload(tr, &payload);
    if (rc == DISRNN_OK) rc = disrnn__container_wrap(&payload, DISRNN__KIND_CHECKPOINT, &file);
    disrnn__w_free(&payload);
    if (rc != DISRNN_OK) {
        disrnn__w_free(&file);
        return disrnn__fail(&tr->base, rc, "Could not serialise the checkpoint (%s).", disrnn_status_string(rc));
    }
    msg[0] = '\0';
    rc = disrnn__file_write_atomic(path, file.buf, file.len, msg, sizeof msg);
    disrnn__w_free(&file);
    if (rc != DISRNN_OK) return disrnn__fail(&tr->base, rc, "Could not write checkpoint %s: %s", path, msg);
    return DISRNN_OK;
}

/* Everything a checkpoint holds besides the model, read before anything is changed. */
typedef struct ckpt {
    disrnn_model_t *model;
    uint64_t seed;
    disrnn__train_settings set;
    disrnn__rng rng;
    disrnn__train_progress pr;
    size_t *order;
    double *m, *v, *best;
} ckpt;

static void ckpt_free(const disrnn__allocator *al, ckpt *c)
{
    disrnn_model_free(c->model);
    disrnn__free(al, c->order);
    disrnn__free(al, c->m);
    disrnn__free(al, c->v);
    disrnn__free(al, c->best);
}

#define CORRUPT(...) do { rc = disrnn__fail(&tr->base, DISRNN_ERR_CORRUPT, __VA_ARGS__); goto out; } while (0)

static int parse(disrnn_trainer_t *tr, disrnn__reader *r, ckpt *c, const char *path)
{
    const disrnn__allocator *al = &tr->base.al;
    const size_t S = tr->tr_s.S, n = tr->n;
    char msg[DISRNN__ERR_LEN / 2];
    uint64_t S_file, n_file;
    uint8_t *seen = NULL;
    int rc;
    msg[0] = '\0';
    rc = disrnn__model_read(r, al, &c->model, msg, sizeof msg);
    if (rc != DISRNN_OK) {
        c->model = NULL;
        return disrnn__fail(&tr->base, rc, "Checkpoint %s: bad model section: %s", path, msg);
    }
    if (!disrnn__spec_compatible(&c->model->spec, &tr->model->spec) || c->model->n_params != n)
        return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG,
                            "Checkpoint %s holds a model whose configuration differs from the trainer's model.", path);
    if (disrnn__r_u32(r) != CKPT_MAGIC) CORRUPT("Checkpoint %s: the trainer section is missing.", path);
    if (disrnn__r_u32(r) != CKPT_LAYOUT) CORRUPT("Checkpoint %s: unknown trainer section layout.", path);
    S_file = disrnn__r_u64(r);
    n_file = disrnn__r_u64(r);
    if (r->bad) CORRUPT("Checkpoint %s is truncated.", path);
    if (n_file != (uint64_t)n) CORRUPT("Checkpoint %s: the parameter count does not match its model.", path);
    if (S_file != (uint64_t)S) {
        rc = disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG,
                          "Checkpoint %s was taken on %llu training samples; this trainer has %zu.", path,
                          (unsigned long long)S_file, S);
        goto out;
    }
    c->seed = disrnn__r_u64(r);
    for (int o = 0; o < DISRNN__NUM_SAVED_TRAIN_OPTIONS; o++) {
        int is_int = 0;
        double val;
        (void)disrnn_train_option_bounds(o, NULL, NULL, &is_int);
        if (is_int) {
            c->set.ival[o] = disrnn__r_i64(r);
            val = (double)c->set.ival[o];
        } else {
            c->set.dval[o] = disrnn__r_f64(r);
            val = c->set.dval[o];
        }
        if (!r->bad && !disrnn__train_setting_ok(o, is_int, val)) CORRUPT("Checkpoint %s: trainer setting %d is out of range.", path, o);
    }
    for (int i = 0; i < 4; i++) c->rng.s[i] = disrnn__r_u64(r);
    if (!r->bad && (c->rng.s[0] | c->rng.s[1] | c->rng.s[2] | c->rng.s[3]) == 0)
        CORRUPT("Checkpoint %s: the generator state is all zero.", path);
    c->pr.step = disrnn__r_i64(r);
    c->pr.epoch = disrnn__r_i64(r);
    {
        const uint32_t in_epoch = disrnn__r_u32(r);
        const uint64_t pos = disrnn__r_u64(r);
        if (r->bad) CORRUPT("Checkpoint %s is truncated.", path);
        if (c->pr.step < 0 || c->pr.epoch < 0 || (double)c->pr.step > 9007199254740992.0 ||
            (double)c->pr.epoch > 9007199254740992.0 || in_epoch > 1 || pos > (uint64_t)S)
            CORRUPT("Checkpoint %s: the step, epoch or position is out of range.", path);
        c->pr.in_epoch = (int)in_epoch;
        c->pr.pos = (size_t)pos;
    }
    if (!disrnn__r_has(r, S, 8)) CORRUPT("Checkpoint %s is truncated in the sample order.", path);
    c->order = (size_t *)disrnn__calloc(al, S, sizeof(size_t));
    seen = (uint8_t *)disrnn__calloc(al, S, 1);
    c->m = disrnn__alloc_doubles(al, n ? n : 1);
    c->v = disrnn__alloc_doubles(al, n ? n : 1);
    c->best = disrnn__alloc_doubles(al, n ? n : 1);
    if (!c->order || !seen || !c->m || !c->v || !c->best) {
        rc = disrnn__fail(&tr->base, DISRNN_ERR_NOMEM, "Out of memory reading checkpoint %s.", path);
        goto out;
    }
    for (size_t i = 0; i < S; i++) {
        const uint64_t k = disrnn__r_u64(r);
        if (k >= (uint64_t)S || seen[k]) CORRUPT("Checkpoint %s: the sample order is not a permutation.", path);
        seen[k] = 1;
        c->order[i] = (size_t)k;
    }
    disrnn__r_f64s(r, c->pr.acc, DISRNN__NUM_TERMS);
    c->pr.acc_batches = disrnn__r_i64(r);
    disrnn__r_f64s(r, c->m, n);
    disrnn__r_f64s(r, c->v, n);
    if (r->bad) CORRUPT("Checkpoint %s is truncated.", path);
    if (c->pr.acc_batches < 0) CORRUPT("Checkpoint %s: negative batch count.", path);
    for (int k = 0; k < DISRNN__NUM_TERMS; k++)
        if (!isfinite(c->pr.acc[k])) CORRUPT("Checkpoint %s: non-finite epoch sums.", path);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(c->m[i]) || !isfinite(c->v[i]) || c->v[i] < 0.0)
            CORRUPT("Checkpoint %s: optimiser moment %zu is invalid.", path, i);
    {
        const uint32_t has_best = disrnn__r_u32(r);
        c->pr.best_val = disrnn__r_f64(r);
        c->pr.best_epoch = disrnn__r_i64(r);
        c->pr.bad_epochs = disrnn__r_i64(r);
        if (r->bad) CORRUPT("Checkpoint %s is truncated.", path);
        if (has_best > 1 || c->pr.best_epoch < 0 || c->pr.bad_epochs < 0 || isnan(c->pr.best_val) ||
            (has_best && !isfinite(c->pr.best_val)) || (!has_best && c->pr.best_val != HUGE_VAL))
            CORRUPT("Checkpoint %s: the best-validation record is invalid.", path);
        c->pr.has_best = (int)has_best;
        if (has_best) {
            disrnn__r_f64s(r, c->best, n);
            if (r->bad) CORRUPT("Checkpoint %s is truncated.", path);
            for (size_t i = 0; i < n; i++)
                if (!isfinite(c->best[i])) CORRUPT("Checkpoint %s: the best parameters are not finite.", path);
        }
    }
    if (r->pos != r->len) CORRUPT("Checkpoint %s has %zu unexpected trailing bytes.", path, r->len - r->pos);
    rc = DISRNN_OK;
out:
    disrnn__free(al, seen);
    return rc;
}

int disrnn_trainer_load(disrnn_trainer_t *tr, const char *path)
{
    const disrnn__allocator *al;
    unsigned char *buf = NULL;
    size_t len = 0;
    char msg[DISRNN__ERR_LEN / 2];
    disrnn__reader r;
    disrnn_model_t *dst;
    ckpt c;
    int rc;
    if (!tr) return DISRNN_ERR_INVALID_ARG;
    if (!path || !path[0]) return disrnn__fail(&tr->base, DISRNN_ERR_INVALID_ARG, "The checkpoint path is empty.");
    al = &tr->base.al;
    memset(&c, 0, sizeof c);
    msg[0] = '\0';
    rc = disrnn__file_read(al, path, &buf, &len, msg, sizeof msg);
    if (rc != DISRNN_OK) return disrnn__fail(&tr->base, rc, "Could not read checkpoint %s: %s", path, msg);
    rc = disrnn__container_open(buf, len, DISRNN__KIND_CHECKPOINT, &r, msg, sizeof msg);
    if (rc != DISRNN_OK) {
        disrnn__free(al, buf);
        return disrnn__fail(&tr->base, rc, "Checkpoint %s rejected: %s", path, msg);
    }
    rc = parse(tr, &r, &c, path);
    disrnn__free(al, buf);
    if (rc == DISRNN_OK && disrnn__trainer_reserve(tr, (size_t)c.set.ival[DISRNN_TRAIN_BATCH_SIZE]) != DISRNN_OK)
        rc = disrnn__fail(&tr->base, DISRNN_ERR_NOMEM, "Out of memory for the checkpoint's batch size.");
    if (rc != DISRNN_OK) {
        ckpt_free(al, &c);
        return rc;
    }
    /* Commit: nothing below can fail. Every block is copied (learned and fixed), as are the
     * mutable options the file may differ in and the model's generator. */
    dst = tr->model;
    for (int b = 0; b < DISRNN__NUM_BLOCKS; b++) {
        const size_t cnt = dst->rows[b] * dst->cols[b];
        if (cnt && dst->blk[b] && c.model->blk[b]) memcpy(dst->blk[b], c.model->blk[b], cnt * sizeof(double));
    }
    dst->spec.beta = c.model->spec.beta;
    dst->spec.alpha = c.model->spec.alpha;
    dst->spec.n_tot = c.model->spec.n_tot;
    dst->rng = c.model->rng;
    disrnn__model_update_scott(dst);
    tr->seed = c.seed;
    c.set.ival[DISRNN_TRAIN_THREADS] = tr->set.ival[DISRNN_TRAIN_THREADS]; /* not saved: the trainer's own */
    tr->set = c.set;
    tr->rng = c.rng;
    tr->pr = c.pr;
    if (tr->tr_s.S) memcpy(tr->order, c.order, tr->tr_s.S * sizeof(size_t));
    if (tr->n) {
        memcpy(tr->m, c.m, tr->n * sizeof(double));
        memcpy(tr->v, c.v, tr->n * sizeof(double));
        if (c.pr.has_best) memcpy(tr->best_theta, c.best, tr->n * sizeof(double));
    }
    ckpt_free(al, &c);
    return DISRNN_OK;
}
