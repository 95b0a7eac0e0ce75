/* Model files: the model section (shared with trainer checkpoints) and the public save/load calls.
 * Layout in docs/file-format.md. Loading is a security boundary: every size read from the bytes is
 * checked against what is actually present before anything is allocated from it, the
 * specification goes through the same check as a newly created model, and every block must match
 * the shape the model computes for itself. */
#include "container.h"
#include "model.h"

#include <limits.h>
#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Writing */

void disrnn__model_write(disrnn__writer *w, const disrnn_model_t *m)
{
    const disrnn__spec *s = &m->spec;
    disrnn__w_u64(w, (uint64_t)s->N);
    disrnn__w_u64(w, (uint64_t)s->K);
    disrnn__w_u64(w, (uint64_t)s->G);
    disrnn__w_u64(w, (uint64_t)s->L);
    disrnn__w_u64(w, (uint64_t)s->P);
    for (size_t g = 0; g < s->G; g++) disrnn__w_u64(w, (uint64_t)s->groups[g]);
    disrnn__w_f64s(w, s->psi, s->L);
    disrnn__w_i64(w, s->sigma);
    disrnn__w_i64(w, s->padding);
    disrnn__w_i64(w, s->obs);
    disrnn__w_i64(w, s->input_e);
    disrnn__w_i64(w, s->input_d);
    disrnn__w_i64(w, s->std_mode);
    disrnn__w_f64(w, s->kappa);
    disrnn__w_f64(w, s->std_value);
    disrnn__w_f64(w, s->n_tot);
    disrnn__w_f64(w, s->beta);
    disrnn__w_f64(w, s->alpha);
    disrnn__w_u64(w, s->seed);
    disrnn__w_u32(w, (uint32_t)DISRNN__NUM_BLOCKS);
    for (int b = 0; b < DISRNN__NUM_BLOCKS; b++) {
        const size_t n = m->rows[b] * m->cols[b];
        disrnn__w_u64(w, (uint64_t)m->rows[b]);
        disrnn__w_u64(w, (uint64_t)m->cols[b]);
        disrnn__w_u32(w, m->learned[b] ? 1u : 0u);
        if (n) disrnn__w_f64s(w, m->blk[b], n);
    }
    for (int i = 0; i < 4; i++) disrnn__w_u64(w, m->rng.s[i]);
}

/* ---------------------------------------------------------------------------------------------
 * Reading */

static const char *const block_names[DISRNN__NUM_BLOCKS] = {"A", "B", "c", "d", "rho", "E", "D", "log s"};

static int corrupt(char *msg, size_t msg_len, const char *what)
{
    return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT, "Corrupt model section: %s.", what);
}

/* A u64 from the file as a size_t, or failure when it cannot be one (32-bit hosts). */
static int read_size(disrnn__reader *r, size_t *out)
{
    const uint64_t v = disrnn__r_u64(r);
    if (r->bad || v > (uint64_t)SIZE_MAX) return -1;
    *out = (size_t)v;
    return 0;
}

static int read_enum(disrnn__reader *r, int *out)
{
    const int64_t v = disrnn__r_i64(r);
    if (r->bad || v < INT_MIN || v > INT_MAX) return -1;
    *out = (int)v;
    return 0;
}

/* Fewest values any valid file with this specification stores: A and B always, E and D when
 * present. Checking that they are really there before the model is created bounds every
 * allocation by the size of the input, so a few hostile bytes cannot claim gigabytes. */
static int values_present(const disrnn__reader *r, const disrnn__spec *s)
{
    size_t nk, np = 0, kp = 0, total;
    if (disrnn__mul_size(s->N, s->K, &nk) || disrnn__mul_size(nk, 2, &nk)) return 0;
    if (s->input_e != DISRNN_INPUT_NONE && disrnn__mul_size(s->N, s->P, &np)) return 0;
    if (s->input_d != DISRNN_INPUT_NONE && disrnn__mul_size(s->K, s->P, &kp)) return 0;
    if (disrnn__add_size(nk, np, &total) || disrnn__add_size(total, kp, &total)) return 0;
    return disrnn__r_has(r, total, 8);
}

static int read_spec(disrnn__reader *r, const disrnn__allocator *al, disrnn__spec *s, char *msg, size_t msg_len)
{
    disrnn__base tmp;
    size_t g;
    int st;
    memset(s, 0, sizeof *s);
    if (read_size(r, &s->N) || read_size(r, &s->K) || read_size(r, &s->G) || read_size(r, &s->L) ||
        read_size(r, &s->P))
        return corrupt(msg, msg_len, "the dimensions are truncated or too large");
    /* The arrays are allocated only once their contents are known to be present. */
    if (s->G == 0 || !disrnn__r_has(r, s->G, 8)) return corrupt(msg, msg_len, "the group sizes are missing or truncated");
    if (s->L == 0 || !disrnn__r_has(r, s->L, 8)) return corrupt(msg, msg_len, "the history kernel is missing or truncated");
    s->groups = (size_t *)disrnn__calloc(al, s->G, sizeof(size_t));
    s->group_start = (size_t *)disrnn__calloc(al, s->G + 1, sizeof(size_t));
    s->psi = disrnn__alloc_doubles(al, s->L);
    if (!s->groups || !s->group_start || !s->psi) {
        disrnn__spec_free(al, s);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_NOMEM, "Out of memory reading a model section.");
    }
    for (g = 0; g < s->G; g++) {
        if (read_size(r, &s->groups[g])) break;
        /* Unsigned arithmetic wraps harmlessly here: disrnn__spec_check rejects sizes that do not
         * add up to K before the offsets are looked at. */
        s->group_start[g + 1] = s->group_start[g] + s->groups[g];
    }
    if (g < s->G) {
        disrnn__spec_free(al, s);
        return corrupt(msg, msg_len, "a group size is too large");
    }
    disrnn__r_f64s(r, s->psi, s->L);
    if (read_enum(r, &s->sigma) || read_enum(r, &s->padding) || read_enum(r, &s->obs) || read_enum(r, &s->input_e) ||
        read_enum(r, &s->input_d) || read_enum(r, &s->std_mode)) {
        disrnn__spec_free(al, s);
        return corrupt(msg, msg_len, "an option is truncated or out of range");
    }
    s->kappa = disrnn__r_f64(r);
    s->std_value = disrnn__r_f64(r);
    s->n_tot = disrnn__r_f64(r);
    s->beta = disrnn__r_f64(r);
    s->alpha = disrnn__r_f64(r);
    s->seed = disrnn__r_u64(r);
    if (r->bad) {
        disrnn__spec_free(al, s);
        return corrupt(msg, msg_len, "the options are truncated");
    }
    memset(&tmp, 0, sizeof tmp);
    tmp.al = *al;
    tmp.log_level = DISRNN_LOG_ERROR + 1;
    if ((st = disrnn__spec_check(s, &tmp)) != DISRNN_OK) {
        disrnn__spec_free(al, s);
        if (st == DISRNN_ERR_NOMEM) return disrnn__fail_msg(msg, msg_len, st, "%s", tmp.err);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT, "Corrupt model section: invalid configuration: %s",
                                tmp.err);
    }
    return DISRNN_OK;
}

int disrnn__model_read(disrnn__reader *r, const disrnn__allocator *al, disrnn_model_t **out, char *msg,
                       size_t msg_len)
{
    disrnn__spec spec;
    disrnn_model_t *m = NULL;
    disrnn__rng rng;
    uint32_t nblocks;
    int st;
    if (!r || !out) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "NULL reader or output.");
    *out = NULL;
    if (!al) al = disrnn__default_allocator();
    if ((st = read_spec(r, al, &spec, msg, msg_len)) != DISRNN_OK) return st;
    nblocks = disrnn__r_u32(r);
    if (r->bad || nblocks != DISRNN__NUM_BLOCKS) {
        disrnn__spec_free(al, &spec);
        return corrupt(msg, msg_len, "the block count is wrong");
    }
    if (!values_present(r, &spec)) {
        disrnn__spec_free(al, &spec);
        return corrupt(msg, msg_len, "the parameters are truncated (fewer bytes than the dimensions require)");
    }
    st = disrnn__model_new(&m, &spec, al);
    disrnn__spec_free(al, &spec);
    if (st != DISRNN_OK) {
        if (st == DISRNN_ERR_NOMEM) return disrnn__fail_msg(msg, msg_len, st, "Out of memory creating the model.");
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT, "Corrupt model section: the model cannot be built (%s).",
                                disrnn_status_string(st));
    }
    for (int b = 0; b < DISRNN__NUM_BLOCKS; b++) {
        size_t rows, cols;
        uint32_t learned;
        if (read_size(r, &rows) || read_size(r, &cols)) break;
        learned = disrnn__r_u32(r);
        if (r->bad) break;
        if (rows != m->rows[b] || cols != m->cols[b] || learned != (m->learned[b] ? 1u : 0u)) {
            disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT,
                             "Corrupt model section: block %s is stored as %zu x %zu (%s) but the configuration makes "
                             "it %zu x %zu (%s).",
                             block_names[b], rows, cols, learned ? "learned" : "fixed", m->rows[b], m->cols[b],
                             m->learned[b] ? "learned" : "fixed");
            disrnn_model_free(m);
            return DISRNN_ERR_CORRUPT;
        }
        if (rows * cols == 0) continue;
        /* Straight into the new model: it is freed on any failure, so nobody sees partial values. */
        disrnn__r_f64s(r, m->blk[b], rows * cols);
        if (r->bad) break;
        if (!disrnn__all_finite(m->blk[b], rows, cols, rows)) {
            disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT, "Corrupt model section: block %s holds NaN or Inf.",
                             block_names[b]);
            disrnn_model_free(m);
            return DISRNN_ERR_CORRUPT;
        }
    }
    for (int i = 0; i < 4; i++) rng.s[i] = disrnn__r_u64(r);
    if (r->bad) {
        disrnn_model_free(m);
        return corrupt(msg, msg_len, "the parameters or the generator state are truncated");
    }
    /* xoshiro never leaves the all-zero state, and never reaches it from a seed: such a state can only
     * come from damage, and would make every later draw zero. */
    if ((rng.s[0] | rng.s[1] | rng.s[2] | rng.s[3]) == 0) {
        disrnn_model_free(m);
        return corrupt(msg, msg_len, "the random generator state is all zeros");
    }
    m->rng = rng;
    *out = m;
    return DISRNN_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Public calls */

/* Serialise a model into a container owned by out (allocated from the model's allocator). */
static int serialise(const disrnn_model_t *m, disrnn__writer *out)
{
    disrnn__writer payload;
    int st;
    disrnn__w_init(&payload, &m->base.al);
    disrnn__w_init(out, &m->base.al);
    disrnn__model_write(&payload, m);
    st = disrnn__container_wrap(&payload, DISRNN__KIND_MODEL, out);
    disrnn__w_free(&payload);
    if (st != DISRNN_OK) disrnn__w_free(out);
    return st;
}

int disrnn_model_save_buffer(const disrnn_model_t *model, void *buf, size_t cap, size_t *needed)
{
    disrnn__writer w;
    int st;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if (!buf && !needed) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "Both buf and needed are NULL.");
    if ((st = serialise(model, &w)) != DISRNN_OK)
        return disrnn__fail(&model->base, st, "Out of memory serialising the model.");
    if (needed) *needed = w.len;
    if (buf) {
        if (cap < w.len) {
            disrnn__w_free(&w);
            return disrnn__fail(&model->base, DISRNN_ERR_BUFFER_TOO_SMALL,
                                "The buffer holds %zu bytes; the serialised model needs %zu.", cap, w.len);
        }
        memcpy(buf, w.buf, w.len);
    }
    disrnn__w_free(&w);
    return DISRNN_OK;
}

int disrnn_model_save(const disrnn_model_t *model, const char *path)
{
    disrnn__writer w;
    char msg[DISRNN__ERR_LEN];
    int st;
    if (!model) return DISRNN_ERR_INVALID_ARG;
    if (!path || !*path) return disrnn__fail(&model->base, DISRNN_ERR_INVALID_ARG, "The path is NULL or empty.");
    if ((st = serialise(model, &w)) != DISRNN_OK)
        return disrnn__fail(&model->base, st, "Out of memory serialising the model.");
    st = disrnn__file_write_atomic(path, w.buf, w.len, msg, sizeof msg);
    disrnn__w_free(&w);
    if (st != DISRNN_OK) return disrnn__fail(&model->base, st, "%s", msg);
    return DISRNN_OK;
}

int disrnn_model_load_buffer(disrnn_model_t **out, const void *buf, size_t len, char *msg, size_t msg_len)
{
    disrnn__reader payload;
    disrnn_model_t *m;
    int st;
    if (out) *out = NULL;
    if (!out || !buf) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "NULL output or buffer.");
    if ((st = disrnn__container_open(buf, len, DISRNN__KIND_MODEL, &payload, msg, msg_len)) != DISRNN_OK) return st;
    if ((st = disrnn__model_read(&payload, disrnn__default_allocator(), &m, msg, msg_len)) != DISRNN_OK) return st;
    if (payload.pos != payload.len) {
        disrnn_model_free(m);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT,
                                "Corrupt model file: %zu unexpected bytes after the model section.",
                                payload.len - payload.pos);
    }
    *out = m;
    return DISRNN_OK;
}

int disrnn_model_load(disrnn_model_t **out, const char *path, char *msg, size_t msg_len)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    unsigned char *buf;
    size_t len;
    int st;
    if (out) *out = NULL;
    if (!out || !path) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "NULL output or path.");
    if ((st = disrnn__file_read(al, path, &buf, &len, msg, msg_len)) != DISRNN_OK) return st;
    st = disrnn_model_load_buffer(out, buf, len, msg, msg_len);
    disrnn__free(al, buf);
    return st;
}
