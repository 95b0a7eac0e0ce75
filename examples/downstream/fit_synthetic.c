/* A downstream C program: finds libdisrnn only through pkg-config, fits a DisRNN to synthetic
 * data and prints the group-aligned latent R^2 and a checksum of the fitted parameters.
 *
 * The recipe is shared with the C++, Rust and Python versions (README.md in this folder): the
 * data come from the library itself (a ground-truth model generated with fixed seeds), so every
 * language prints the same three result lines. */
#include <disrnn.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 20, K = 4, TRIALS = 4, BINS = 250 };

/* FNV-1a (64-bit) over the little-endian bytes of each value's IEEE-754 bits. */
static uint64_t fnv1a64(const double *v, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        for (int b = 0; b < 8; b++) {
            h ^= (bits >> (8 * b)) & 0xffu;
            h *= UINT64_C(0x100000001b3);
        }
    }
    return h;
}

static int on_progress(int64_t epoch, int64_t step, const double *terms, size_t n_terms, double val_loss,
                       double elapsed, void *user_data)
{
    (void)epoch; (void)step; (void)val_loss; (void)elapsed;
    if (n_terms > DISRNN_TERM_LOSS) *(double *)user_data = terms[DISRNN_TERM_LOSS];
    return 0;
}

/* Reports a failed call with the message the library left on the handle. */
#define CHECK(call, handle_msg)                                                                    \
    do {                                                                                           \
        int st_ = (call);                                                                          \
        if (st_ < 0) {                                                                             \
            fprintf(stderr, "fit_synthetic: %s failed: %s (%s)\n", #call, (handle_msg),            \
                    disrnn_status_string(st_));                                                    \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

int main(void)
{
    const size_t groups[2] = {2, 2};
    disrnn_config_t *cfg = NULL;
    disrnn_model_t *truth = NULL, *model = NULL;
    disrnn_dataset_t *data = NULL;
    disrnn_trainer_t *tr = NULL;
    double *x = NULL, *ref = NULL, *mu = NULL, *params = NULL;
    double last_loss = NAN, r2 = NAN;
    size_t n_params = 0;
    int rc = 1;

    printf("fit_synthetic (C): libdisrnn %s\n", disrnn_version_string());
    if (disrnn_version_number() / 100 != DISRNN_VERSION_NUMBER / 100) {
        fprintf(stderr, "fit_synthetic: header %s but library %s\n", DISRNN_VERSION_STRING, disrnn_version_string());
        return 1;
    }
    x = malloc(sizeof *x * N * BINS);
    ref = malloc(sizeof *ref * K * TRIALS * BINS);
    mu = malloc(sizeof *mu * K * TRIALS * BINS);
    if (!x || !ref || !mu) goto done;

    /* Ground truth: a random DisRNN with two groups of two latents, latent noise s = 0.05. */
    CHECK(disrnn_config_create(&cfg, N, K), "");
    CHECK(disrnn_config_set_groups(cfg, groups, 2), disrnn_config_last_error(cfg));
    CHECK(disrnn_config_set_int(cfg, DISRNN_OPT_STD_MODE, DISRNN_STD_FIXED), disrnn_config_last_error(cfg));
    CHECK(disrnn_config_set_double(cfg, DISRNN_OPT_STD_VALUE, 0.05), disrnn_config_last_error(cfg));
    CHECK(disrnn_config_set_seed(cfg, 1), disrnn_config_last_error(cfg));
    CHECK(disrnn_model_create(&truth, cfg), disrnn_config_last_error(cfg));
    disrnn_config_free(cfg);
    cfg = NULL;

    CHECK(disrnn_dataset_create(&data, N, 0, DISRNN_DATA_CONTINUOUS), "");
    for (size_t r = 0; r < TRIALS; r++) {
        CHECK(disrnn_model_generate(truth, 0, NULL, N, BINS, NULL, 0, DISRNN_GEN_LATENT_NOISE | DISRNN_GEN_OBS_NOISE,
                                    100 + r, x, N, ref + r * K * BINS, K),
              disrnn_model_last_error(truth));
        CHECK(disrnn_dataset_add_trial(data, BINS, x, N, NULL, 0, NULL, 0), disrnn_dataset_last_error(data));
    }

    /* The fitted model: same shape, its own seed, a PC penalty. */
    CHECK(disrnn_config_create(&cfg, N, K), "");
    CHECK(disrnn_config_set_groups(cfg, groups, 2), disrnn_config_last_error(cfg));
    CHECK(disrnn_config_set_double(cfg, DISRNN_OPT_BETA, 1.0), disrnn_config_last_error(cfg));
    CHECK(disrnn_config_set_seed(cfg, 2), disrnn_config_last_error(cfg));
    CHECK(disrnn_model_create(&model, cfg), disrnn_config_last_error(cfg));

    CHECK(disrnn_trainer_create(&tr, model, data, 3), disrnn_model_last_error(model));
    CHECK(disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 30), disrnn_trainer_last_error(tr));
    CHECK(disrnn_trainer_set_int(tr, DISRNN_TRAIN_BATCH_SIZE, 100), disrnn_trainer_last_error(tr));
    CHECK(disrnn_trainer_set_double(tr, DISRNN_TRAIN_LR, 0.02), disrnn_trainer_last_error(tr));
    CHECK(disrnn_trainer_set_progress(tr, on_progress, &last_loss), disrnn_trainer_last_error(tr));
    CHECK(disrnn_trainer_fit(tr), disrnn_trainer_last_error(tr));
    disrnn_trainer_free(tr);
    tr = NULL;

    {
        const size_t s = disrnn_dataset_num_samples(data, model);
        if (s != TRIALS * BINS) {
            fprintf(stderr, "fit_synthetic: %zu samples, expected %d\n", s, TRIALS * BINS);
            goto done;
        }
        CHECK(disrnn_model_latents(model, data, mu, K, s), disrnn_model_last_error(model));
        CHECK(disrnn_align_r2(s, ref, K, groups, 2, mu, K, groups, 2, &r2, NULL, NULL, NULL, K), "");
    }
    n_params = disrnn_model_num_params(model);
    params = malloc(sizeof *params * (n_params ? n_params : 1));
    if (!params) goto done;
    CHECK(disrnn_model_get_params(model, params, n_params), disrnn_model_last_error(model));

    printf("final loss: %.6f\n", last_loss);
    printf("group-aligned R^2: %.6f\n", r2);
    printf("parameter checksum: %016" PRIx64 " (%zu values)\n", fnv1a64(params, n_params), n_params);
    rc = 0;
done:
    disrnn_trainer_free(tr);
    disrnn_model_free(model);
    disrnn_model_free(truth);
    disrnn_dataset_free(data);
    disrnn_config_free(cfg);
    free(params);
    free(mu);
    free(ref);
    free(x);
    return rc;
}
