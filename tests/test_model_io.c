/* Model files: bit-exact round trips for every observation model and input/std mode, and
 * rejection of truncated, bit-flipped, future-version and hostile (checksum-valid) files. */
#include "support.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container.h"
#include "model.h"

/* ------------------------------------------------------------------------------------------ */
/* Model factory */

typedef struct variant {
    const char *name;
    size_t N, K, G, L, P;
    size_t groups[4];
    double psi[4];
    int obs, sigma, padding, input_e, input_d, std_mode;
    double kappa, std_value;
} variant;

static const variant variants[] = {
    {"gaussian, groups (2, 3), kernel of 3, Scott", 6, 5, 2, 3, 0, {2, 3}, {0.5, 0.3, 0.2},
     DISRNN_OBS_GAUSSIAN, DISRNN_SIGMA_TANH, DISRNN_PAD_REPEAT, DISRNN_INPUT_NONE, DISRNN_INPUT_NONE, DISRNN_STD_SCOTT, 1.0, 0.1},
    {"gaussian relu, E and D learned, fixed std", 4, 3, 3, 1, 2, {1, 1, 1}, {1.0},
     DISRNN_OBS_GAUSSIAN_RELU, DISRNN_SIGMA_RELU, DISRNN_PAD_ZERO, DISRNN_INPUT_LEARNED, DISRNN_INPUT_LEARNED, DISRNN_STD_FIXED, 2.5, 0.3},
    {"poisson softplus, E and D fixed, learned std", 5, 4, 2, 2, 3, {3, 1}, {0.75, 0.25},
     DISRNN_OBS_POISSON_SOFTPLUS, DISRNN_SIGMA_TANH, DISRNN_PAD_DROP, DISRNN_INPUT_FIXED, DISRNN_INPUT_FIXED, DISRNN_STD_LEARNED, 0.5, 0.2},
    {"poisson exp, E fixed identity (P = N), D learned", 3, 2, 1, 1, 3, {2}, {1.0},
     DISRNN_OBS_POISSON_EXP, DISRNN_SIGMA_IDENTITY, DISRNN_PAD_REPEAT, DISRNN_INPUT_FIXED, DISRNN_INPUT_LEARNED, DISRNN_STD_SCOTT, 1.0, 0.1},
    {"gaussian, E learned, D fixed, learned std", 7, 4, 4, 4, 1, {1, 1, 1, 1}, {0.1, 0.2, 0.3, 0.4},
     DISRNN_OBS_GAUSSIAN, DISRNN_SIGMA_TANH, DISRNN_PAD_ZERO, DISRNN_INPUT_LEARNED, DISRNN_INPUT_FIXED, DISRNN_STD_LEARNED, 1.0, 0.1},
};
#define NUM_VARIANTS (sizeof variants / sizeof variants[0])

/* A model whose every parameter, fixed block, mutable option and generator state differs from
 * its fresh state, so a round trip that forgot any of them would show. */
static disrnn_model_t *make_model(const variant *v, uint64_t seed)
{
    disrnn_config_t *cfg;
    disrnn_model_t *m;
    uint64_t rs = seed * 7 + 1;
    double vals[512], noise[5];
    assert_ok(disrnn_config_create(&cfg, v->N, v->K));
    assert_ok(disrnn_config_set_groups(cfg, v->groups, v->G));
    assert_ok(disrnn_config_set_kernel(cfg, v->psi, v->L));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_OBS, v->obs));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_SIGMA, v->sigma));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_PADDING, v->padding));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_NUM_INPUTS, (int64_t)v->P));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_INPUT_E, v->input_e));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_INPUT_D, v->input_d));
    assert_ok(disrnn_config_set_int(cfg, DISRNN_OPT_STD_MODE, v->std_mode));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_KAPPA, v->kappa));
    assert_ok(disrnn_config_set_double(cfg, DISRNN_OPT_STD_VALUE, v->std_value));
    assert_ok(disrnn_config_set_seed(cfg, seed));
    assert_ok(disrnn_model_create(&m, cfg));
    disrnn_config_free(cfg);
    assert_true(disrnn_model_num_params(m) <= 512);
    test_normal(&rs, vals, disrnn_model_num_params(m));
    assert_ok(disrnn_model_set_params(m, vals, disrnn_model_num_params(m)));
    for (int b = 0; b < DISRNN__NUM_BLOCKS; b++) {
        const size_t n = m->rows[b] * m->cols[b];
        if (n == 0 || m->learned[b] || (b == DISRNN_BLOCK_LOG_S && v->std_mode == DISRNN_STD_SCOTT)) continue;
        test_uniform(&rs, vals, n, -1.0, 1.0);
        assert_ok(disrnn_model_set_param(m, b, vals, n));
    }
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_BETA, 20.0 / 3.0));
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_ALPHA, 0.1));
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_N_TOT, 1234.0));
    disrnn__rng_normal(&m->rng, noise, 5); /* move the generator off its seeded state */
    return m;
}

static void assert_same_model(const disrnn_model_t *a, const disrnn_model_t *b)
{
    const disrnn__spec *s = &a->spec, *t = &b->spec;
    disrnn__rng ra = a->rng, rb = b->rng;
    double da[9], db[9];
    assert_int_equal(s->N, t->N);
    assert_int_equal(s->K, t->K);
    assert_int_equal(s->G, t->G);
    assert_int_equal(s->L, t->L);
    assert_int_equal(s->P, t->P);
    assert_memory_equal(s->groups, t->groups, s->G * sizeof(size_t));
    assert_memory_equal(s->group_start, t->group_start, (s->G + 1) * sizeof(size_t));
    assert_memory_equal(s->psi, t->psi, s->L * sizeof(double));
    assert_int_equal(s->sigma, t->sigma);
    assert_int_equal(s->padding, t->padding);
    assert_int_equal(s->obs, t->obs);
    assert_int_equal(s->input_e, t->input_e);
    assert_int_equal(s->input_d, t->input_d);
    assert_int_equal(s->std_mode, t->std_mode);
    assert_memory_equal(&s->kappa, &t->kappa, sizeof(double));
    assert_memory_equal(&s->std_value, &t->std_value, sizeof(double));
    assert_memory_equal(&s->n_tot, &t->n_tot, sizeof(double));
    assert_memory_equal(&s->beta, &t->beta, sizeof(double));
    assert_memory_equal(&s->alpha, &t->alpha, sizeof(double));
    assert_true(s->seed == t->seed);
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->theta, b->theta, a->n_params * sizeof(double));
    for (int k = 0; k < DISRNN__NUM_BLOCKS; k++) {
        assert_int_equal(a->rows[k], b->rows[k]);
        assert_int_equal(a->cols[k], b->cols[k]);
        assert_int_equal(a->learned[k], b->learned[k]);
        assert_int_equal(a->off[k], b->off[k]);
        if (a->rows[k] != 0 && a->cols[k] != 0)
            assert_memory_equal(a->blk[k], b->blk[k], a->rows[k] * a->cols[k] * sizeof(double));
    }
    /* the generator: same state, and so the same next draws */
    assert_memory_equal(a->rng.s, b->rng.s, sizeof a->rng.s);
    disrnn__rng_normal(&ra, da, 9);
    disrnn__rng_normal(&rb, db, 9);
    assert_memory_equal(da, db, sizeof da);
}

static unsigned char *save(const disrnn_model_t *m, size_t *len)
{
    unsigned char *buf;
    assert_ok(disrnn_model_save_buffer(m, NULL, 0, len));
    buf = (unsigned char *)malloc(*len);
    assert_non_null(buf);
    assert_ok(disrnn_model_save_buffer(m, buf, *len, NULL));
    return buf;
}

/* Recompute the trailing checksum after editing a file's bytes. */
static void fix_crc(unsigned char *buf, size_t len)
{
    const uint32_t crc = disrnn__crc32c(0, buf, len - 4);
    for (size_t i = 0; i < 4; i++) buf[len - 4 + i] = (unsigned char)(crc >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (size_t i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* ------------------------------------------------------------------------------------------ */

static void test_round_trip_every_variant(void **state)
{
    char msg[512];
    (void)state;
    for (size_t i = 0; i < NUM_VARIANTS; i++) {
        disrnn_model_t *m = make_model(&variants[i], 100 + i), *back = NULL;
        size_t len, len2;
        unsigned char *buf = save(m, &len), *buf2;
        msg[0] = '\0';
        if (disrnn_model_load_buffer(&back, buf, len, msg, sizeof msg) != DISRNN_OK)
            fail_msg("variant '%s': %s", variants[i].name, msg);
        assert_same_model(m, back);
        /* saving the loaded model reproduces the file byte for byte */
        buf2 = save(back, &len2);
        assert_int_equal(len, len2);
        assert_memory_equal(buf, buf2, len);
        free(buf);
        free(buf2);
        disrnn_model_free(back);
        disrnn_model_free(m);
    }
}

static void test_file_round_trip(void **state)
{
    char path[512], msg[512];
    disrnn_model_t *m = make_model(&variants[2], 9), *back = NULL;
    (void)state;
    snprintf(path, sizeof path, "%s/model.disrnn", test_scratch);
    assert_ok(disrnn_model_save(m, path));
    assert_ok(disrnn_model_load(&back, path, msg, sizeof msg));
    assert_same_model(m, back);
    disrnn_model_free(back);
    /* overwriting an existing file */
    assert_ok(disrnn_model_set_double(m, DISRNN_OPT_BETA, 3.0));
    assert_ok(disrnn_model_save(m, path));
    assert_ok(disrnn_model_load(&back, path, msg, sizeof msg));
    assert_same_model(m, back);
    disrnn_model_free(back);
    disrnn_model_free(m);
}

static void test_save_arguments(void **state)
{
    disrnn_model_t *m = make_model(&variants[0], 1);
    unsigned char small[64];
    size_t need = 0;
    char path[600];
    (void)state;
    assert_status(disrnn_model_save_buffer(NULL, small, sizeof small, &need), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_save_buffer(m, NULL, 0, NULL), DISRNN_ERR_INVALID_ARG);
    assert_true(strlen(disrnn_model_last_error(m)) > 0);
    memset(small, 0xab, sizeof small);
    assert_status(disrnn_model_save_buffer(m, small, sizeof small, &need), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_true(need > sizeof small);
    for (size_t i = 0; i < sizeof small; i++) assert_int_equal(small[i], 0xab); /* nothing written */
    assert_non_null(strstr(disrnn_model_last_error(m), "buffer"));
    assert_status(disrnn_model_save(NULL, "x"), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_save(m, NULL), DISRNN_ERR_INVALID_ARG);
    snprintf(path, sizeof path, "%s/no/such/folder/m.disrnn", test_scratch);
    assert_status(disrnn_model_save(m, path), DISRNN_ERR_IO);
    assert_non_null(strstr(disrnn_model_last_error(m), "temporary"));
    disrnn_model_free(m);
}

static void test_load_arguments(void **state)
{
    disrnn_model_t *m = (disrnn_model_t *)(uintptr_t)1;
    char msg[256], path[600];
    static const unsigned char junk[4] = {1, 2, 3, 4};
    (void)state;
    assert_status(disrnn_model_load_buffer(NULL, junk, 4, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_load_buffer(&m, NULL, 4, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_null(m);
    m = (disrnn_model_t *)(uintptr_t)1;
    assert_status(disrnn_model_load_buffer(&m, junk, 4, NULL, 0), DISRNN_ERR_CORRUPT);
    assert_null(m);
    snprintf(path, sizeof path, "%s/absent.disrnn", test_scratch);
    assert_status(disrnn_model_load(&m, path, msg, sizeof msg), DISRNN_ERR_IO);
    assert_null(m);
    assert_status(disrnn_model_load(&m, NULL, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_model_load(NULL, path, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
}

static void test_every_truncation_and_bit_flip(void **state)
{
    static const variant tiny = {"tiny", 2, 2, 1, 1, 0, {2}, {1.0}, DISRNN_OBS_GAUSSIAN, DISRNN_SIGMA_TANH,
                                 DISRNN_PAD_REPEAT, DISRNN_INPUT_NONE, DISRNN_INPUT_NONE, DISRNN_STD_SCOTT, 1.0, 0.1};
    disrnn_model_t *m = make_model(&tiny, 5), *back;
    size_t len;
    unsigned char *buf = save(m, &len), *copy;
    char msg[512];
    (void)state;
    /* every truncated prefix, each in an allocation of exactly its length (ASan sees any overread) */
    for (size_t n = 1; n < len; n++) {
        copy = (unsigned char *)malloc(n);
        assert_non_null(copy);
        memcpy(copy, buf, n);
        back = NULL;
        assert_status(disrnn_model_load_buffer(&back, copy, n, msg, sizeof msg), DISRNN_ERR_CORRUPT);
        assert_null(back);
        free(copy);
    }
    assert_status(disrnn_model_load_buffer(&back, buf, 0, msg, sizeof msg), DISRNN_ERR_CORRUPT);
    copy = (unsigned char *)malloc(len);
    assert_non_null(copy);
    for (size_t i = 0; i < len; i++)
        for (int b = 0; b < 8; b++) {
            memcpy(copy, buf, len);
            copy[i] ^= (unsigned char)(1u << b);
            back = NULL;
            msg[0] = '\0';
            assert_status(disrnn_model_load_buffer(&back, copy, len, msg, sizeof msg), DISRNN_ERR_CORRUPT);
            assert_null(back);
            assert_true(strlen(msg) > 0);
        }
    free(copy);
    free(buf);
    disrnn_model_free(m);
}

static void test_future_version_and_wrong_kind(void **state)
{
    disrnn_model_t *m = make_model(&variants[0], 2), *back = NULL;
    size_t len;
    unsigned char *buf = save(m, &len);
    char msg[512];
    (void)state;
    buf[8] = (unsigned char)(DISRNN__FORMAT_VERSION + 1);
    fix_crc(buf, len);
    assert_status(disrnn_model_load_buffer(&back, buf, len, msg, sizeof msg), DISRNN_ERR_VERSION);
    assert_null(back);
    assert_non_null(strstr(msg, "version"));
    buf[8] = (unsigned char)DISRNN__FORMAT_VERSION;
    buf[12] = (unsigned char)DISRNN__KIND_CHECKPOINT;
    fix_crc(buf, len);
    assert_status(disrnn_model_load_buffer(&back, buf, len, msg, sizeof msg), DISRNN_ERR_CORRUPT);
    assert_non_null(strstr(msg, "checkpoint"));
    free(buf);
    disrnn_model_free(m);
}

/* Offsets inside a model file of variants[0] (payload at 24). */
#define OFF_N 24u
#define OFF_K 32u
#define OFF_G 40u

/* Edit the bytes (checksum fixed afterwards) and expect a CORRUPT load whose message contains want. */
static void expect_corrupt(const unsigned char *orig, size_t len, size_t off, const void *bytes, size_t n,
                           const char *want)
{
    unsigned char *buf = (unsigned char *)malloc(len);
    disrnn_model_t *back = NULL;
    char msg[512];
    assert_non_null(buf);
    memcpy(buf, orig, len);
    memcpy(buf + off, bytes, n);
    fix_crc(buf, len);
    msg[0] = '\0';
    assert_status(disrnn_model_load_buffer(&back, buf, len, msg, sizeof msg), DISRNN_ERR_CORRUPT);
    assert_null(back);
    if (!strstr(msg, want)) fail_msg("message '%s' lacks '%s'", msg, want);
    free(buf);
}

static void test_hostile_sections_with_valid_checksum(void **state)
{
    const variant *v = &variants[0];
    disrnn_model_t *m = make_model(v, 3);
    size_t len, off_enums, off_blocks, off_a_vals, off_rng;
    unsigned char *buf = save(m, &len), *big;
    unsigned char b8[8];
    const double nan = NAN;
    const uint32_t nine = 9;
    const uint64_t zeros[4] = {0, 0, 0, 0};
    (void)state;
    off_enums = 64 + 8 * v->G + 8 * v->L;
    off_blocks = off_enums + 6 * 8 + 5 * 8 + 8;
    off_a_vals = off_blocks + 4 + 8 + 8 + 4;
    off_rng = len - 4 - 32;

    /* a huge claim with the values missing is refused before anything that size is allocated */
    put_u64(b8, (uint64_t)1 << 14);
    {
        unsigned char *c = (unsigned char *)malloc(len);
        disrnn_model_t *back = NULL;
        char msg[512];
        assert_non_null(c);
        memcpy(c, buf, len);
        memcpy(c + OFF_N, b8, 8);
        memcpy(c + OFF_K, b8, 8);
        put_u64(c + 64, ((uint64_t)1 << 14) - 3); /* groups (2^14 - 3, 3) sum to the new K */
        fix_crc(c, len);
        assert_status(disrnn_model_load_buffer(&back, c, len, msg, sizeof msg), DISRNN_ERR_CORRUPT);
        if (!strstr(msg, "truncated")) fail_msg("unexpected message: %s", msg);
        free(c);
    }
    put_u64(b8, UINT64_MAX);
    expect_corrupt(buf, len, OFF_N, b8, 8, "invalid configuration");
    expect_corrupt(buf, len, OFF_G, b8, 8, "group sizes");
    put_u64(b8, 0);
    expect_corrupt(buf, len, OFF_G, b8, 8, "group sizes");
    put_u64(b8, 4); /* groups (4, 3) no longer sum to K = 5 */
    expect_corrupt(buf, len, 64, b8, 8, "invalid configuration");
    put_u64(b8, (uint64_t)1 << 40); /* an option far outside int */
    expect_corrupt(buf, len, off_enums, b8, 8, "out of range");
    put_u64(b8, 7); /* an unknown observation model */
    expect_corrupt(buf, len, off_enums + 16, b8, 8, "invalid configuration");
    expect_corrupt(buf, len, off_blocks, &nine, 4, "block count");
    put_u64(b8, v->N + 1); /* A stored with the wrong number of rows */
    expect_corrupt(buf, len, off_blocks + 4, b8, 8, "block A");
    expect_corrupt(buf, len, off_a_vals + 8, &nan, 8, "NaN");
    expect_corrupt(buf, len, off_rng, zeros, 32, "all zeros");
    {
        double inf = INFINITY;
        expect_corrupt(buf, len, off_enums + 6 * 8, &inf, 8, "invalid configuration"); /* kappa */
    }

    /* trailing bytes inside a checksum-valid payload */
    big = (unsigned char *)malloc(len + 8);
    assert_non_null(big);
    memcpy(big, buf, len - 4);
    memset(big + len - 4, 0, 8);
    put_u64(big + 16, (uint64_t)(len + 8 - 28));
    fix_crc(big, len + 8);
    {
        disrnn_model_t *back = NULL;
        char msg[512];
        assert_status(disrnn_model_load_buffer(&back, big, len + 8, msg, sizeof msg), DISRNN_ERR_CORRUPT);
        assert_non_null(strstr(msg, "unexpected bytes"));
    }
    free(big);
    free(buf);
    disrnn_model_free(m);
}

/* Every byte of the payload replaced by a few values, checksum repaired: the loader must either
 * refuse (CORRUPT) or produce a model that is fully usable, never anything else. */
static void test_checksum_valid_byte_mutations(void **state)
{
    static const unsigned char repl[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    disrnn_model_t *m = make_model(&variants[1], 4);
    size_t len, ok = 0, bad = 0;
    unsigned char *buf = save(m, &len), *c = (unsigned char *)malloc(len);
    char msg[512];
    (void)state;
    assert_non_null(c);
    for (size_t i = 24; i < len - 4; i++)
        for (size_t r = 0; r < sizeof repl; r++) {
            disrnn_model_t *back = NULL;
            int st;
            if (buf[i] == repl[r]) continue;
            memcpy(c, buf, len);
            c[i] = repl[r];
            fix_crc(c, len);
            st = disrnn_model_load_buffer(&back, c, len, msg, sizeof msg);
            if (st == DISRNN_OK) {
                size_t n2;
                unsigned char *again;
                ok++;
                assert_non_null(back);
                assert_true(disrnn__all_finite(back->theta, back->n_params, 1, back->n_params));
                again = save(back, &n2); /* the loaded model serialises to exactly the mutated file */
                assert_int_equal(n2, len);
                assert_memory_equal(again, c, len);
                free(again);
                disrnn_model_free(back);
            } else {
                if (st != DISRNN_ERR_CORRUPT) fail_msg("byte %zu = 0x%02x: status %d (%s)", i, repl[r], st, msg);
                assert_null(back);
                bad++;
            }
        }
    /* both outcomes occur: parameter bytes can take any finite value, structure bytes cannot */
    assert_true(ok > 0 && bad > 0);
    free(c);
    free(buf);
    disrnn_model_free(m);
}

static void test_save_out_of_memory(void **state)
{
    test_chaos chaos = {-1, 0, 0};
    disrnn_config_t *cfg;
    disrnn_model_t *m;
    size_t need;
    long base;
    unsigned char *buf;
    (void)state;
    assert_ok(disrnn_config_create(&cfg, 8, 4));
    assert_ok(disrnn_model_create_with_allocator(&m, cfg, test_chaos_alloc, test_chaos_free, &chaos));
    disrnn_config_free(cfg);
    base = chaos.live;
    assert_ok(disrnn_model_save_buffer(m, NULL, 0, &need));
    buf = (unsigned char *)malloc(need);
    assert_non_null(buf);
    for (long k = 0;; k++) {
        int st;
        chaos.fail_at = chaos.count + k;
        st = disrnn_model_save_buffer(m, buf, need, NULL);
        assert_int_equal(chaos.live, base);
        if (st == DISRNN_OK) break;
        assert_status(st, DISRNN_ERR_NOMEM);
        assert_true(strlen(disrnn_model_last_error(m)) > 0);
        assert_true(k < 100);
    }
    chaos.fail_at = -1;
    free(buf);
    disrnn_model_free(m);
    assert_int_equal(chaos.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_variant),
        cmocka_unit_test(test_file_round_trip),
        cmocka_unit_test(test_save_arguments),
        cmocka_unit_test(test_load_arguments),
        cmocka_unit_test(test_every_truncation_and_bit_flip),
        cmocka_unit_test(test_future_version_and_wrong_kind),
        cmocka_unit_test(test_hostile_sections_with_valid_checksum),
        cmocka_unit_test(test_checksum_valid_byte_mutations),
        cmocka_unit_test(test_save_out_of_memory),
    };
    return cmocka_run_group_tests(tests, test_scratch_setup, test_scratch_teardown);
}
