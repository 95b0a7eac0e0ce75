/**
 * @file disrnn.h
 * @brief libdisrnn: disentangled low-rank recurrent neural networks (DisRNN) for neural
 *        population recordings. The one installed public header.
 *
 * libdisrnn fits the DisRNN of Li et al. 2025 (arXiv 2511.13899, later renamed FacRNN) to spike
 * counts (Poisson) and continuous recordings (Gaussian), and returns latent trajectories split into
 * independent groups and the low-rank connectivity W = A B with one sub-circuit W_g per group. It
 * is unrelated to the "disRNN" cognitive model of Miller et al. (2023).
 *
 * @section conventions Conventions used by every function
 *
 * - **Status codes.** Every fallible function returns an `int` status: ::DISRNN_OK (0) on
 *   success, a positive value for a non-error outcome (::DISRNN_STOPPED, ::DISRNN_EARLY_STOPPED),
 *   a negative value for an error. disrnn_status_string() names any value.
 * - **Error messages.** A function that fails on a handle leaves a sentence describing the failure
 *   on that handle (disrnn_model_last_error(), disrnn_trainer_last_error(),
 *   disrnn_dataset_last_error()). A failed call leaves the handle as it was before the call.
 *   Functions without a handle take an optional caller buffer `msg`/`msg_len` for the message.
 * - **Arrays.** All reals are `double`. Matrices are **column-major** (BLAS, LAPACK, Julia,
 *   Fortran order). A trial of N channels over T bins is stored *bin-major*: the N values of one
 *   bin are contiguous. That is the same memory as a column-major N x T matrix and as a row-major
 *   (numpy C-order) T x N array. Where a leading dimension `ld` is taken, column j starts at
 *   element `j * ld` and `ld >= rows`. Parameter blocks and outputs without an `ld` are
 *   contiguous (`ld == rows`).
 * - **Buffers.** Outputs go into caller-allocated buffers passed with their length in elements;
 *   a buffer that is too small gives ::DISRNN_ERR_BUFFER_TOO_SMALL and nothing is written. The
 *   library never returns memory the caller must free.
 * - **Memory.** Every handle allocates through its allocator (the C library's by default, or the
 *   hooks given to a `_with_allocator` constructor). The library never aborts, exits or prints;
 *   diagnostics go to a per-handle log callback, silent by default.
 * - **Randomness.** Every random draw comes from a generator owned by a handle and seeded
 *   explicitly; the same seed gives the same result, bit for bit.
 *
 * @section threads Thread safety
 *
 * The library has no mutable global state. Different handles may be used from different threads
 * at the same time. One handle must not be used by two threads at once (lock it yourself), except
 * that functions taking a `const` handle may run concurrently with each other on the same handle.
 * A trainer uses its model and datasets: while it runs, treat those as in use by it. Callbacks
 * are called only on the thread that called into the library. A trainer may run a step on
 * several threads of its own (::DISRNN_TRAIN_THREADS); they only ever work for that trainer's
 * calls and never run callbacks. The library never changes process-wide BLAS settings; OpenBLAS
 * may use its own threads inside matrix products (set OPENBLAS_NUM_THREADS to control them).
 * Results do not depend on the number of threads of either kind.
 *
 * @section example Example
 * @code
 * disrnn_config_t *cfg; disrnn_model_t *m; disrnn_dataset_t *ds; disrnn_trainer_t *tr;
 * size_t groups[2] = {3, 3};
 * disrnn_config_create(&cfg, 20, 6);
 * disrnn_config_set_groups(cfg, groups, 2);
 * disrnn_config_set_double(cfg, DISRNN_OPT_BETA, 20.0);
 * disrnn_model_create(&m, cfg);
 * disrnn_dataset_create(&ds, 20, 0, DISRNN_DATA_CONTINUOUS);
 * disrnn_dataset_add_trial(ds, 1000, x, 20, NULL, 0, NULL, 0);   // x: 20 x 1000, bin-major
 * disrnn_trainer_create(&tr, m, ds, 1);
 * disrnn_trainer_set_int(tr, DISRNN_TRAIN_EPOCHS, 500);
 * if (disrnn_trainer_fit(tr) < 0) fprintf(stderr, "%s\n", disrnn_trainer_last_error(tr));
 * disrnn_trainer_free(tr); disrnn_dataset_free(ds); disrnn_model_free(m); disrnn_config_free(cfg);
 * @endcode
 */
#ifndef DISRNN_H
#define DISRNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Marks a public function. Default visibility on ELF, dllexport/dllimport on Windows. */
#if defined(_WIN32) && defined(DISRNN_BUILDING_DLL)
#define DISRNN_API __declspec(dllexport)
#elif defined(_WIN32) && defined(DISRNN_DLL)
#define DISRNN_API __declspec(dllimport)
#elif defined(__GNUC__) && __GNUC__ >= 4
#define DISRNN_API __attribute__((visibility("default")))
#else
#define DISRNN_API
#endif

/* ------------------------------------------------------------------------------------------ */
/** @name Version
 *  The header is the single source of the version; the Makefile reads it from here. Before 1.0,
 *  every 0.x minor release may change the ABI (the soname carries the ABI number).
 *  @{ */
/** @brief Major version. */
#define DISRNN_VERSION_MAJOR 0
/** @brief Minor version. */
#define DISRNN_VERSION_MINOR 1
/** @brief Patch version. */
#define DISRNN_VERSION_PATCH 0
/** @brief major * 10000 + minor * 100 + patch. */
#define DISRNN_VERSION_NUMBER (DISRNN_VERSION_MAJOR * 10000 + DISRNN_VERSION_MINOR * 100 + DISRNN_VERSION_PATCH)
/** @brief The version as a string. */
#define DISRNN_VERSION_STRING "0.1.0"

/** @brief Run-time version number (compare with ::DISRNN_VERSION_NUMBER).
 *  @return major * 10000 + minor * 100 + patch of the loaded library.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_version_number(void);
/** @brief Run-time version string, static storage.
 *  @return "major.minor.patch" of the loaded library.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API const char *disrnn_version_string(void);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Status codes
 *  Values are fixed forever: new ones are appended, none is renumbered or reused.
 *  @{ */
/** @brief Status returned by fallible functions (passed as `int`). */
enum disrnn_status {
    DISRNN_OK = 0,                    /**< Success. */
    DISRNN_STOPPED = 1,               /**< A callback asked to stop (returned a positive value). */
    DISRNN_EARLY_STOPPED = 2,         /**< Validation loss stopped improving (patience ran out). */
    DISRNN_ERR_INVALID_ARG = -1,      /**< An argument is NULL, out of range or inconsistent. */
    DISRNN_ERR_NOMEM = -2,            /**< An allocation failed. */
    DISRNN_ERR_BUFFER_TOO_SMALL = -3, /**< An output buffer is shorter than needed. */
    DISRNN_ERR_NONFINITE = -4,        /**< NaN or Inf in data, or a loss or gradient became non-finite. */
    DISRNN_ERR_LAPACK = -5,           /**< A LAPACK routine failed (e.g. SVD did not converge). */
    DISRNN_ERR_CALLBACK = -6,         /**< A callback returned a negative value. */
    DISRNN_ERR_BAD_STATE = -7,        /**< The call does not fit the handle's current state. */
    DISRNN_ERR_IO = -8,               /**< A file could not be opened, read, written or renamed. */
    DISRNN_ERR_CORRUPT = -9,          /**< A file or buffer is truncated, malformed or fails its checksum. */
    DISRNN_ERR_VERSION = -10,         /**< A file was written by a newer, incompatible format version. */
    DISRNN_ERR_UNSUPPORTED = -11,     /**< A valid request this build or configuration does not support. */
    DISRNN_ERR_DATA = -12             /**< Data values are invalid for the model (e.g. negative counts for Poisson). */
};

/** @brief Name and meaning of a status code.
 *  @param[in] status any integer; unknown values give "unknown status".
 *  @return a static, NUL-terminated string; never NULL.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API const char *disrnn_status_string(int status);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Handles, allocators and logging
 *  @{ */
/** @brief Model configuration (shapes and options fixed at model creation). */
typedef struct disrnn_config disrnn_config_t;
/** @brief A DisRNN model: configuration, parameters, random generator, workspace. */
typedef struct disrnn_model disrnn_model_t;
/** @brief A dataset: trials of different lengths with optional inputs and masks. */
typedef struct disrnn_dataset disrnn_dataset_t;
/** @brief A trainer: optimiser state and settings, bound to one model and one training dataset. */
typedef struct disrnn_trainer disrnn_trainer_t;

/** @brief Allocation hook: return `size` bytes aligned for any type, or NULL on failure.
 *  @param size bytes wanted (never 0).
 *  @param user_data the pointer given with the hook. */
typedef void *(*disrnn_alloc_fn)(size_t size, void *user_data);
/** @brief Release hook for memory from the matching ::disrnn_alloc_fn. Never called with NULL.
 *  @param ptr memory to release.
 *  @param user_data the pointer given with the hook. */
typedef void (*disrnn_free_fn)(void *ptr, void *user_data);

/** @brief Log levels. */
enum disrnn_log_level {
    DISRNN_LOG_DEBUG = 0, /**< Detail for debugging. */
    DISRNN_LOG_INFO = 1,  /**< Progress worth knowing. */
    DISRNN_LOG_WARN = 2,  /**< Something suspicious that did not stop the call. */
    DISRNN_LOG_ERROR = 3  /**< A failure (the same text as the last-error message). */
};
/** @brief Log callback: one complete sentence, no trailing newline.
 *  @param level a ::disrnn_log_level.
 *  @param msg the message, valid during the call only.
 *  @param user_data the pointer given with the callback. */
typedef void (*disrnn_log_fn)(int level, const char *msg, void *user_data);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Model options
 *  Keys for disrnn_config_set_int(), disrnn_config_set_double() and the model getters. Each key
 *  is either integer-valued or real-valued; the wrong setter gives ::DISRNN_ERR_INVALID_ARG.
 *  @{ */
/** @brief Option keys. Defaults reproduce the reference code of the paper. */
enum disrnn_option {
    DISRNN_OPT_SIGMA = 0,       /**< int, ::disrnn_sigma; default ::DISRNN_SIGMA_TANH. */
    DISRNN_OPT_PADDING = 1,     /**< int, ::disrnn_padding; default ::DISRNN_PAD_REPEAT. */
    DISRNN_OPT_OBS = 2,         /**< int, ::disrnn_obs; default ::DISRNN_OBS_GAUSSIAN. */
    DISRNN_OPT_NUM_INPUTS = 3,  /**< int, P >= 0 known inputs per bin; default 0. */
    DISRNN_OPT_INPUT_E = 4,     /**< int, ::disrnn_input_mode of E (neuron space); default ::DISRNN_INPUT_LEARNED when P > 0. */
    DISRNN_OPT_INPUT_D = 5,     /**< int, ::disrnn_input_mode of D (latent space); default ::DISRNN_INPUT_NONE. */
    DISRNN_OPT_STD_MODE = 6,    /**< int, ::disrnn_std_mode; default ::DISRNN_STD_SCOTT. */
    DISRNN_OPT_KAPPA = 7,       /**< double > 0, input scale of the encoder nonlinearity; default 1. */
    DISRNN_OPT_STD_VALUE = 8,   /**< double > 0, encoder std for ::DISRNN_STD_FIXED (and initial value for ::DISRNN_STD_LEARNED); default 0.1. */
    DISRNN_OPT_N_TOT = 9,       /**< double >= 0, N_tot of the PC weights and of Scott's rule; 0 = number of training samples (set by the trainer); default 0. Mutable. */
    DISRNN_OPT_BETA = 10,       /**< double >= 0, weight of the PC penalty; default 0. Mutable. */
    DISRNN_OPT_ALPHA = 11       /**< double >= 0, weight of the block-diagonal (bdRNN) penalty; default 0. Mutable. */
};
/** @brief Encoder nonlinearity sigma. */
enum disrnn_sigma { DISRNN_SIGMA_TANH = 0 /**< tanh */, DISRNN_SIGMA_IDENTITY = 1 /**< identity */, DISRNN_SIGMA_RELU = 2 /**< max(x, 0) */ };
/** @brief How bins before a trial's start are filled for the history. */
enum disrnn_padding {
    DISRNN_PAD_REPEAT = 0, /**< use the trial's first bin x_0 */
    DISRNN_PAD_ZERO = 1,   /**< sigma(x) = 0 */
    DISRNN_PAD_DROP = 2    /**< the first L bins of each trial are not samples */
};
/** @brief Observation model and link. */
enum disrnn_obs {
    DISRNN_OBS_GAUSSIAN = 0,         /**< Gaussian, identity link, learned per-channel log std rho */
    DISRNN_OBS_GAUSSIAN_RELU = 1,    /**< Gaussian, mean max(eta, 0) */
    DISRNN_OBS_POISSON_SOFTPLUS = 2, /**< Poisson, rate softplus(eta) */
    DISRNN_OBS_POISSON_EXP = 3       /**< Poisson, rate exp(eta) */
};
/** @brief How an input matrix (E or D) is treated. */
enum disrnn_input_mode {
    DISRNN_INPUT_NONE = 0,    /**< the term is absent */
    DISRNN_INPUT_LEARNED = 1, /**< learned like any parameter */
    DISRNN_INPUT_FIXED = 2    /**< fixed to the value set with disrnn_model_set_param() (default: identity for E when P = N, else zero) */
};
/** @brief Encoder standard deviation s. */
enum disrnn_std_mode {
    DISRNN_STD_SCOTT = 0,   /**< fixed, s_k = N_tot^(-1/(K+4)) */
    DISRNN_STD_FIXED = 1,   /**< fixed, s_k = ::DISRNN_OPT_STD_VALUE */
    DISRNN_STD_LEARNED = 2  /**< one learned log s_k per latent dimension */
};

/** @brief Valid range of an option's value.
 *  @param[in] option a ::disrnn_option.
 *  @param[out] lo smallest valid value (may be NULL).
 *  @param[out] hi largest valid value (may be NULL).
 *  @param[out] is_int 1 for integer-valued options, 0 for real-valued (may be NULL).
 *  @return ::DISRNN_OK, or ::DISRNN_ERR_INVALID_ARG for an unknown option.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_option_bounds(int option, double *lo, double *hi, int *is_int);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Configuration
 *  @{ */
/** @brief Create a configuration for N observed channels and K latent dimensions.
 *  Defaults: one group of size K, tanh, kappa 1, kernel psi = [1], repeat padding, Gaussian,
 *  no inputs, Scott std, beta 0, alpha 0, seed 0.
 *  @param[out] out the new configuration; NULL on failure.
 *  @param[in] n_obs N >= 1.
 *  @param[in] n_latent K >= 1.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_config_create(disrnn_config_t **out, size_t n_obs, size_t n_latent);
/** @brief Free a configuration. Accepts NULL.
 *  @param[in] cfg the configuration.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API void disrnn_config_free(disrnn_config_t *cfg);
/** @brief Set the latent groups: G consecutive groups of sizes H_1..H_G summing to K.
 *  @param[in,out] cfg the configuration.
 *  @param[in] sizes G sizes, each >= 1.
 *  @param[in] n_groups G, 1 <= G <= K.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG (message on the handle).
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_config_set_groups(disrnn_config_t *cfg, const size_t *sizes, size_t n_groups);
/** @brief Set the history kernel psi (psi_l >= 0, summing to 1 within 1e-9).
 *  @param[in,out] cfg the configuration.
 *  @param[in] psi L weights, psi[0] for the previous bin.
 *  @param[in] len L >= 1.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_config_set_kernel(disrnn_config_t *cfg, const double *psi, size_t len);
/** @brief Set an integer-valued option.
 *  @param[in,out] cfg the configuration.
 *  @param[in] option a ::disrnn_option.
 *  @param[in] value the value, within disrnn_option_bounds().
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_config_set_int(disrnn_config_t *cfg, int option, int64_t value);
/** @brief Set a real-valued option.
 *  @param[in,out] cfg the configuration.
 *  @param[in] option a ::disrnn_option.
 *  @param[in] value the value, finite and within disrnn_option_bounds().
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_config_set_double(disrnn_config_t *cfg, int option, double value);
/** @brief Set the seed of the model's random generator (initialisation and noise draws).
 *  @param[in,out] cfg the configuration.
 *  @param[in] seed any value.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG for a NULL handle.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_config_set_seed(disrnn_config_t *cfg, uint64_t seed);
/** @brief The last error message on a configuration.
 *  @param[in] cfg the configuration, or NULL.
 *  @return handle-owned text valid until the next call on the handle; "" when none.
 *  @note Thread safety: not concurrently with calls that modify the handle. @since 0.1 */
DISRNN_API const char *disrnn_config_last_error(const disrnn_config_t *cfg);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Model: lifecycle and settings
 *  @{ */
/** @brief Create a model from a configuration (copied; the configuration may be freed after).
 *  Parameters are initialised as PyTorch's nn.Linear from the configuration's seed; rho = -1.
 *  @param[out] out the new model; NULL on failure.
 *  @param[in] cfg the configuration.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe (cfg is only read). @since 0.1 */
DISRNN_API int disrnn_model_create(disrnn_model_t **out, const disrnn_config_t *cfg);
/** @brief Create a model whose memory comes from the given hooks.
 *  @param[out] out the new model; NULL on failure.
 *  @param[in] cfg the configuration.
 *  @param[in] alloc_fn allocation hook (non-NULL).
 *  @param[in] free_fn release hook (non-NULL).
 *  @param[in] user_data passed to both hooks.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_model_create_with_allocator(disrnn_model_t **out, const disrnn_config_t *cfg,
                                                  disrnn_alloc_fn alloc_fn, disrnn_free_fn free_fn,
                                                  void *user_data);
/** @brief Free a model and everything it owns. Accepts NULL.
 *  @param[in] model the model. A trainer using it must be freed first.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API void disrnn_model_free(disrnn_model_t *model);
/** @brief Deep copy (parameters, settings, random generator state, allocator, log callback).
 *  @param[out] out the copy; NULL on failure.
 *  @param[in] model the model.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_clone(disrnn_model_t **out, const disrnn_model_t *model);
/** @brief The last error message on a model.
 *  @param[in] model the model, or NULL.
 *  @return handle-owned text valid until the next call on the handle; "" when none.
 *  @note Thread safety: not concurrently with calls that modify the handle. @since 0.1 */
DISRNN_API const char *disrnn_model_last_error(const disrnn_model_t *model);
/** @brief Install a log callback (NULL to silence).
 *  @param[in,out] model the model.
 *  @param[in] fn the callback, or NULL.
 *  @param[in] min_level smallest ::disrnn_log_level passed on.
 *  @param[in] user_data passed back to fn.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_model_set_log(disrnn_model_t *model, disrnn_log_fn fn, int min_level, void *user_data);
/** @brief Read an integer-valued option.
 *  @param[in] model the model.
 *  @param[in] option a ::disrnn_option.
 *  @param[out] value the value.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_get_int(const disrnn_model_t *model, int option, int64_t *value);
/** @brief Read a real-valued option (for ::DISRNN_OPT_STD_VALUE under Scott's rule, the value in force).
 *  @param[in] model the model.
 *  @param[in] option a ::disrnn_option.
 *  @param[out] value the value.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_get_double(const disrnn_model_t *model, int option, double *value);
/** @brief Change a mutable real-valued option (::DISRNN_OPT_BETA, ::DISRNN_OPT_ALPHA, ::DISRNN_OPT_N_TOT).
 *  @param[in,out] model the model.
 *  @param[in] option the option.
 *  @param[in] value the new value.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG (immutable option or bad value).
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_model_set_double(disrnn_model_t *model, int option, double value);
/** @brief Shape queries: N, K, G, L and P.
 *  @param[in] model the model.
 *  @param[out] n_obs N (may be NULL).
 *  @param[out] n_latent K (may be NULL).
 *  @param[out] n_groups G (may be NULL).
 *  @param[out] kernel_len L (may be NULL).
 *  @param[out] n_inputs P (may be NULL).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_dims(const disrnn_model_t *model, size_t *n_obs, size_t *n_latent,
                                 size_t *n_groups, size_t *kernel_len, size_t *n_inputs);
/** @brief The group sizes H_1..H_G.
 *  @param[in] model the model.
 *  @param[out] sizes G values.
 *  @param[in] len capacity of sizes.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_groups(const disrnn_model_t *model, size_t *sizes, size_t len);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Model: parameters
 *  The learned parameters form one flat vector: the learned blocks in the order of
 *  ::disrnn_block, each column-major. Fixed blocks (E or D when ::DISRNN_INPUT_FIXED, log s
 *  unless ::DISRNN_STD_LEARNED) are not in it but can be read and written by block.
 *  @{ */
/** @brief Parameter blocks. */
enum disrnn_block {
    DISRNN_BLOCK_A = 0,      /**< decoder A, N x K */
    DISRNN_BLOCK_B = 1,      /**< encoder B, K x N */
    DISRNN_BLOCK_BIAS_C = 2, /**< decoder bias c, N x 1 */
    DISRNN_BLOCK_BIAS_D = 3, /**< encoder bias d, K x 1 */
    DISRNN_BLOCK_RHO = 4,    /**< per-channel Gaussian log std, N x 1 (0 x 0 for Poisson) */
    DISRNN_BLOCK_E = 5,      /**< neuron-space input matrix E, N x P (0 x 0 when absent) */
    DISRNN_BLOCK_D = 6,      /**< latent-space input matrix D, K x P (0 x 0 when absent) */
    DISRNN_BLOCK_LOG_S = 7   /**< encoder log std, K x 1 */
};
/** @brief Number of parameter blocks (a function twin of the enumeration's size).
 *  @return 8.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_num_blocks(void);
/** @brief Number of learned parameters (length of the flat vector and of gradients).
 *  @param[in] model the model (NULL gives 0).
 *  @return the count.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API size_t disrnn_model_num_params(const disrnn_model_t *model);
/** @brief Shape and place of a block.
 *  @param[in] model the model.
 *  @param[in] block a ::disrnn_block.
 *  @param[out] rows rows (may be NULL).
 *  @param[out] cols columns (may be NULL).
 *  @param[out] offset offset in the flat vector, or SIZE_MAX when the block is fixed (may be NULL).
 *  @param[out] learned 1 when learned, 0 when fixed or absent (may be NULL).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_block_info(const disrnn_model_t *model, int block, size_t *rows,
                                       size_t *cols, size_t *offset, int *learned);
/** @brief Copy one block out (column-major, rows x cols).
 *  @param[in] model the model.
 *  @param[in] block a ::disrnn_block.
 *  @param[out] out rows * cols values.
 *  @param[in] len capacity of out.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_get_param(const disrnn_model_t *model, int block, double *out, size_t len);
/** @brief Overwrite one block (learned or fixed) from column-major values.
 *  @param[in,out] model the model.
 *  @param[in] block a ::disrnn_block.
 *  @param[in] values rows * cols finite values.
 *  @param[in] len number of values given (must equal rows * cols).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NONFINITE.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_model_set_param(disrnn_model_t *model, int block, const double *values, size_t len);
/** @brief Copy the flat vector of learned parameters out.
 *  @param[in] model the model.
 *  @param[out] out disrnn_model_num_params() values.
 *  @param[in] len capacity of out.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_get_params(const disrnn_model_t *model, double *out, size_t len);
/** @brief Overwrite the flat vector of learned parameters.
 *  @param[in,out] model the model.
 *  @param[in] values disrnn_model_num_params() finite values.
 *  @param[in] len number of values given (must equal disrnn_model_num_params()).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NONFINITE.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_model_set_params(disrnn_model_t *model, const double *values, size_t len);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Model: objective
 *  The per-minibatch loss of the DisRNN (NLL + KL + beta * PC + alpha * BD) on M samples and its
 *  exact gradient for a fixed noise draw.
 *  @{ */
/** @brief Indices of the loss terms written by disrnn_model_loss(). */
enum disrnn_term {
    DISRNN_TERM_LOSS = 0, /**< total: NLL + KL + beta * PC + alpha * BD */
    DISRNN_TERM_NLL = 1,  /**< mean over samples of -log p(x | z) (masked entries skipped) */
    DISRNN_TERM_KL = 2,   /**< mean over samples of KL(q(z | x) || N(0, I)) */
    DISRNN_TERM_PC = 3,   /**< importance-sampled group total correlation (0 when G = 1; reported even
                               when beta = 0, and 0 when it cannot be estimated then: M = 1 or N_tot unset) */
    DISRNN_TERM_BD = 4    /**< mean squared off-block entry of J = B A */
};
/** @brief Number of loss terms (the length of a terms array).
 *  @return 5.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_num_terms(void);
/** @brief Encoder input h = sum_l psi_l sigma(x_{t-l} / kappa) from the previous bins.
 *  @param[in] model the model.
 *  @param[in] n_samples M >= 1.
 *  @param[in] xprev (N * L) x M, column j = [x_{t-1}; x_{t-2}; ...; x_{t-L}] of sample j.
 *  @param[in] ldp leading dimension of xprev, >= N * L.
 *  @param[out] h N x M encoder inputs.
 *  @param[in] ldh leading dimension of h, >= N.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NONFINITE.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_encoder_input(const disrnn_model_t *model, size_t n_samples,
                                          const double *xprev, size_t ldp, double *h, size_t ldh);
/** @brief Loss terms and gradient on a minibatch. Allocates nothing after the first call at a
 *  given M (the workspace is kept on the handle).
 *  @param[in,out] model the model (its workspace and, when eps is NULL, its generator change).
 *  @param[in] n_samples M >= 1 (M >= 2 when beta > 0 and G > 1).
 *  @param[in] x N x M observed bins (counts for Poisson).
 *  @param[in] ldx leading dimension of x, >= N.
 *  @param[in] h N x M encoder inputs (disrnn_model_encoder_input()).
 *  @param[in] ldh leading dimension of h, >= N.
 *  @param[in] u P x M known inputs, or NULL when P = 0.
 *  @param[in] ldu leading dimension of u, >= P.
 *  @param[in] mask N x M entries, 0 = missing (no likelihood contribution), or NULL for none.
 *  @param[in] ldmask leading dimension of mask, >= N.
 *  @param[in] eps K x M standard normal draws, or NULL to draw them from the model's generator.
 *  @param[in] ldeps leading dimension of eps, >= K.
 *  @param[out] terms ::DISRNN_TERM_BD + 1 values, or NULL.
 *  @param[in] nterms capacity of terms (0 when NULL).
 *  @param[out] grad gradient of the total loss w.r.t. the flat parameter vector, or NULL.
 *  @param[in] ngrad capacity of grad (0 when NULL).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL,
 *          ::DISRNN_ERR_NONFINITE (non-finite data or result), ::DISRNN_ERR_DATA (invalid counts),
 *          ::DISRNN_ERR_NOMEM. On error the parameters are unchanged and outputs unspecified.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_model_loss(disrnn_model_t *model, size_t n_samples,
                                 const double *x, size_t ldx, const double *h, size_t ldh,
                                 const double *u, size_t ldu, const uint8_t *mask, size_t ldmask,
                                 const double *eps, size_t ldeps,
                                 double *terms, size_t nterms, double *grad, size_t ngrad);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Model files
 *  A documented, versioned, little-endian binary format with a CRC-32C checksum (docs/file-format.md).
 *  Files are written to a temporary file in the same folder and renamed into place.
 *  @{ */
/** @brief Save a model (configuration and parameters).
 *  @param[in] model the model.
 *  @param[in] path destination file (UTF-8).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_IO, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_save(const disrnn_model_t *model, const char *path);
/** @brief Serialise a model into memory (measure with buf = NULL).
 *  @param[in] model the model.
 *  @param[out] buf destination, or NULL to measure.
 *  @param[in] cap capacity of buf in bytes.
 *  @param[out] needed bytes needed (always written when non-NULL).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_save_buffer(const disrnn_model_t *model, void *buf, size_t cap, size_t *needed);
/** @brief Load a model saved by disrnn_model_save(). The file is treated as hostile.
 *  @param[out] out the new model; NULL on failure.
 *  @param[in] path source file.
 *  @param[out] msg optional buffer for a failure message (may be NULL).
 *  @param[in] msg_len capacity of msg.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_IO, ::DISRNN_ERR_CORRUPT,
 *          ::DISRNN_ERR_VERSION, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_model_load(disrnn_model_t **out, const char *path, char *msg, size_t msg_len);
/** @brief Load a model from memory (see disrnn_model_load()).
 *  @param[out] out the new model; NULL on failure.
 *  @param[in] buf the bytes.
 *  @param[in] len their number.
 *  @param[out] msg optional buffer for a failure message (may be NULL).
 *  @param[in] msg_len capacity of msg.
 *  @return as disrnn_model_load() without ::DISRNN_ERR_IO.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_model_load_buffer(disrnn_model_t **out, const void *buf, size_t len, char *msg, size_t msg_len);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Datasets
 *  A list of trials (each a bin-major N x T_r block, copied in) with optional P x T_r inputs and
 *  N x T_r masks. NaN entries are treated as missing. Samples are the selected bins; by default
 *  every bin of every trial. History for a sample always comes from its whole trial.
 *  @{ */
/** @brief Kind of values held. */
enum disrnn_data_kind {
    DISRNN_DATA_CONTINUOUS = 0, /**< real values (rates, dF/F, voltage) */
    DISRNN_DATA_COUNTS = 1      /**< non-negative integer counts (checked when added) */
};
/** @brief Create an empty dataset.
 *  @param[out] out the new dataset; NULL on failure.
 *  @param[in] n_obs N >= 1 channels.
 *  @param[in] n_inputs P >= 0 known inputs per bin.
 *  @param[in] kind a ::disrnn_data_kind.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_dataset_create(disrnn_dataset_t **out, size_t n_obs, size_t n_inputs, int kind);
/** @brief Create an empty dataset whose memory comes from the given hooks.
 *  @param[out] out the new dataset; NULL on failure.
 *  @param[in] n_obs N >= 1.
 *  @param[in] n_inputs P >= 0.
 *  @param[in] kind a ::disrnn_data_kind.
 *  @param[in] alloc_fn allocation hook.
 *  @param[in] free_fn release hook.
 *  @param[in] user_data passed to both hooks.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_dataset_create_with_allocator(disrnn_dataset_t **out, size_t n_obs, size_t n_inputs, int kind,
                                                    disrnn_alloc_fn alloc_fn, disrnn_free_fn free_fn, void *user_data);
/** @brief Free a dataset. Accepts NULL.
 *  @param[in] ds the dataset.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API void disrnn_dataset_free(disrnn_dataset_t *ds);
/** @brief The last error message on a dataset.
 *  @param[in] ds the dataset, or NULL.
 *  @return handle-owned text valid until the next call on the handle; "" when none.
 *  @note Thread safety: not concurrently with calls that modify the handle. @since 0.1 */
DISRNN_API const char *disrnn_dataset_last_error(const disrnn_dataset_t *ds);
/** @brief Append a trial (all its bins become samples).
 *  @param[in,out] ds the dataset.
 *  @param[in] n_bins T >= 1.
 *  @param[in] x N x T values; NaN = missing; counts must be non-negative integers.
 *  @param[in] ldx leading dimension, >= N.
 *  @param[in] u P x T inputs (finite), or NULL when P = 0.
 *  @param[in] ldu leading dimension, >= P.
 *  @param[in] mask N x T, 0 = missing, or NULL.
 *  @param[in] ldmask leading dimension, >= N.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NONFINITE, ::DISRNN_ERR_DATA, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_dataset_add_trial(disrnn_dataset_t *ds, size_t n_bins, const double *x, size_t ldx,
                                        const double *u, size_t ldu, const uint8_t *mask, size_t ldmask);
/** @brief Shape and kind of a dataset, as given to disrnn_dataset_create().
 *  @param[in] ds the dataset.
 *  @param[out] n_obs N (may be NULL).
 *  @param[out] n_inputs P (may be NULL).
 *  @param[out] kind the ::disrnn_data_kind (may be NULL).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG (NULL dataset).
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_dataset_dims(const disrnn_dataset_t *ds, size_t *n_obs, size_t *n_inputs, int *kind);
/** @brief Number of trials.
 *  @param[in] ds the dataset (NULL gives 0).
 *  @return the count.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API size_t disrnn_dataset_num_trials(const disrnn_dataset_t *ds);
/** @brief Length T_r of a trial (0 for a bad index).
 *  @param[in] ds the dataset.
 *  @param[in] trial index r.
 *  @return T_r.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API size_t disrnn_dataset_trial_length(const disrnn_dataset_t *ds, size_t trial);
/** @brief Number of selected bins (samples before a model's ::DISRNN_PAD_DROP removes any).
 *  @param[in] ds the dataset (NULL gives 0).
 *  @return the count.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API size_t disrnn_dataset_num_selected(const disrnn_dataset_t *ds);
/** @brief Number of samples a model sees: selected bins, less the first L of each trial under ::DISRNN_PAD_DROP.
 *  Every per-sample output (latents, predictions) has this many columns, in trial order then bin order.
 *  @param[in] ds the dataset.
 *  @param[in] model the model (its padding and L).
 *  @return the count (0 on bad arguments).
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API size_t disrnn_dataset_num_samples(const disrnn_dataset_t *ds, const disrnn_model_t *model);
/** @brief Where each sample of a model comes from.
 *  @param[in] ds the dataset.
 *  @param[in] model the model.
 *  @param[out] trial disrnn_dataset_num_samples() trial indices (may be NULL).
 *  @param[out] bin matching bin indices within the trial (may be NULL).
 *  @param[in] len capacity of each non-NULL array.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_dataset_sample_index(const disrnn_dataset_t *ds, const disrnn_model_t *model,
                                           size_t *trial, size_t *bin, size_t len);
/** @brief A new dataset holding copies of the given trials (all their selected bins).
 *  @param[in] ds the source.
 *  @param[in] trials indices of trials, each < disrnn_dataset_num_trials(), no repeats.
 *  @param[in] n number of indices (>= 1).
 *  @param[out] out the new dataset; NULL on failure.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_dataset_subset_trials(const disrnn_dataset_t *ds, const size_t *trials, size_t n,
                                            disrnn_dataset_t **out);
/** @brief A new dataset with the same trials whose selected bins are those with t % period == phase
 *  (the paper's even/odd split is period 2, phase 0 and 1).
 *  @param[in] ds the source.
 *  @param[in] period >= 1.
 *  @param[in] phase < period.
 *  @param[out] out the new dataset; NULL on failure.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_dataset_subset_interleaved(const disrnn_dataset_t *ds, size_t period, size_t phase,
                                                 disrnn_dataset_t **out);
/** @brief A new dataset with the same trials whose selected bins are the given ones.
 *  @param[in] ds the source.
 *  @param[in] trial trial index of each bin.
 *  @param[in] bin bin index of each bin within its trial.
 *  @param[in] n number of bins (>= 1).
 *  @param[out] out the new dataset; NULL on failure.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_dataset_subset_bins(const disrnn_dataset_t *ds, const size_t *trial, const size_t *bin,
                                          size_t n, disrnn_dataset_t **out);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Trainer
 *  Adam and AdamW (PyTorch semantics) over shuffled minibatches of a dataset's samples.
 *  @{ */
/** @brief Trainer setting keys (integer- or real-valued, as noted). */
enum disrnn_train_option {
    DISRNN_TRAIN_OPTIMIZER = 0,     /**< int ::disrnn_optimizer; default ::DISRNN_OPTIM_ADAM */
    DISRNN_TRAIN_LR = 1,            /**< double > 0; default 1e-3 */
    DISRNN_TRAIN_BETA1 = 2,         /**< double in [0, 1); default 0.9 */
    DISRNN_TRAIN_BETA2 = 3,         /**< double in [0, 1); default 0.999 */
    DISRNN_TRAIN_EPS = 4,           /**< double > 0; default 1e-8 */
    DISRNN_TRAIN_WEIGHT_DECAY = 5,  /**< double >= 0, decoupled (AdamW only); default 0.01 */
    DISRNN_TRAIN_BATCH_SIZE = 6,    /**< int >= 1; default 128 */
    DISRNN_TRAIN_EPOCHS = 7,        /**< int >= 0; default 1000 */
    DISRNN_TRAIN_MAX_STEPS = 8,     /**< int >= 0, 0 = no limit; default 0 */
    DISRNN_TRAIN_CLIP_NORM = 9,     /**< double >= 0, gradient 2-norm clip, 0 = off; default 0 */
    DISRNN_TRAIN_SCHEDULE = 10,     /**< int ::disrnn_schedule; default ::DISRNN_SCHED_CONSTANT */
    DISRNN_TRAIN_LR_GAMMA = 11,     /**< double in (0, 1], per-epoch factor of the exponential schedule; default 1 */
    DISRNN_TRAIN_LR_MIN = 12,       /**< double >= 0, final rate of the cosine schedule; default 0 */
    DISRNN_TRAIN_PATIENCE = 13,     /**< int >= 0, epochs without validation improvement before stopping, 0 = never; default 0 */
    DISRNN_TRAIN_KEEP_BEST = 14,    /**< int 0/1, restore the parameters of the best validation epoch at the end; default 0 */
    DISRNN_TRAIN_SHUFFLE = 15,      /**< int 0/1, reshuffle samples every epoch; default 1 */
    DISRNN_TRAIN_DROP_LAST = 16,    /**< int 0/1, drop a last incomplete batch; default 0 */
    DISRNN_TRAIN_THREADS = 17       /**< int in [1, 256], threads a step runs on (the caller plus
                                         THREADS - 1 workers the trainer starts when this is set and
                                         keeps until it is freed); results are the same bits for every
                                         value. A run-time resource, not a training setting: not saved
                                         in checkpoints, not changed by disrnn_trainer_reset_settings().
                                         Default 1. @since 0.2 */
};
/** @brief Optimisers. */
enum disrnn_optimizer { DISRNN_OPTIM_ADAM = 0 /**< Adam */, DISRNN_OPTIM_ADAMW = 1 /**< AdamW (decoupled weight decay) */ };
/** @brief Learning-rate schedules (per epoch). */
enum disrnn_schedule {
    DISRNN_SCHED_CONSTANT = 0,    /**< lr */
    DISRNN_SCHED_EXPONENTIAL = 1, /**< lr * gamma^epoch */
    DISRNN_SCHED_COSINE = 2       /**< lr_min + (lr - lr_min) (1 + cos(pi epoch / epochs)) / 2 */
};
/** @brief Progress callback, called after every epoch of disrnn_trainer_fit().
 *  @param epoch epochs completed (1-based).
 *  @param step optimiser steps taken so far.
 *  @param terms the epoch's mean loss terms (indexed by ::disrnn_term).
 *  @param n_terms length of terms.
 *  @param val_loss validation loss (NaN when no validation set).
 *  @param elapsed seconds since the fit started.
 *  @param user_data the pointer given with the callback.
 *  @return 0 to continue; positive to stop (fit returns ::DISRNN_STOPPED); negative to abort
 *          (fit returns ::DISRNN_ERR_CALLBACK). The trainer stays valid either way. */
typedef int (*disrnn_progress_fn)(int64_t epoch, int64_t step, const double *terms, size_t n_terms,
                                  double val_loss, double elapsed, void *user_data);

/** @brief Create a trainer for a model on a training dataset. The trainer references both (it
 *  frees neither); they must outlive it. Samples (with encoder inputs) are prepared once here.
 *  If the model's ::DISRNN_OPT_N_TOT is 0 it is set to the number of training samples.
 *  @param[out] out the new trainer; NULL on failure.
 *  @param[in,out] model the model to fit.
 *  @param[in] train the training data (N and P must match the model; counts for Poisson).
 *  @param[in] seed seed of the trainer's generator (shuffling and noise draws).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_DATA, ::DISRNN_ERR_NOMEM,
 *          ::DISRNN_ERR_NONFINITE (encoder inputs overflow, e.g. identity sigma with a tiny kappa).
 *  @note Thread safety: not on the same model. @since 0.1 */
DISRNN_API int disrnn_trainer_create(disrnn_trainer_t **out, disrnn_model_t *model,
                                     const disrnn_dataset_t *train, uint64_t seed);
/** @brief Free a trainer (not its model or datasets). Accepts NULL.
 *  @param[in] tr the trainer.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API void disrnn_trainer_free(disrnn_trainer_t *tr);
/** @brief The last error message on a trainer.
 *  @param[in] tr the trainer, or NULL.
 *  @return handle-owned text valid until the next call on the handle; "" when none.
 *  @note Thread safety: not concurrently with calls that modify the handle. @since 0.1 */
DISRNN_API const char *disrnn_trainer_last_error(const disrnn_trainer_t *tr);
/** @brief Set an integer-valued setting.
 *  @param[in,out] tr the trainer.
 *  @param[in] option a ::disrnn_train_option.
 *  @param[in] value the value.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_trainer_set_int(disrnn_trainer_t *tr, int option, int64_t value);
/** @brief Set a real-valued setting.
 *  @param[in,out] tr the trainer.
 *  @param[in] option a ::disrnn_train_option.
 *  @param[in] value the value.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_trainer_set_double(disrnn_trainer_t *tr, int option, double value);
/** @brief Read an integer-valued setting.
 *  @param[in] tr the trainer.
 *  @param[in] option a ::disrnn_train_option.
 *  @param[out] value the value.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_trainer_get_int(const disrnn_trainer_t *tr, int option, int64_t *value);
/** @brief Read a real-valued setting.
 *  @param[in] tr the trainer.
 *  @param[in] option a ::disrnn_train_option.
 *  @param[out] value the value.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_trainer_get_double(const disrnn_trainer_t *tr, int option, double *value);
/** @brief Restore every setting to its default (optimiser state is kept).
 *  @param[in,out] tr the trainer.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_trainer_reset_settings(disrnn_trainer_t *tr);
/** @brief Valid range of a trainer setting.
 *  @param[in] option a ::disrnn_train_option.
 *  @param[out] lo smallest valid value (may be NULL).
 *  @param[out] hi largest valid value (may be NULL).
 *  @param[out] is_int 1 for integer-valued settings (may be NULL).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_train_option_bounds(int option, double *lo, double *hi, int *is_int);
/** @brief Use a validation dataset (loss every epoch, early stopping, keep-best); NULL removes it.
 *  @param[in,out] tr the trainer.
 *  @param[in] val the validation data (referenced; must outlive its use), or NULL.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_DATA, ::DISRNN_ERR_NOMEM, ::DISRNN_ERR_NONFINITE.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_trainer_set_validation(disrnn_trainer_t *tr, const disrnn_dataset_t *val);
/** @brief Install a progress callback (NULL removes it).
 *  @param[in,out] tr the trainer.
 *  @param[in] fn the callback, or NULL.
 *  @param[in] user_data passed back to fn.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_trainer_set_progress(disrnn_trainer_t *tr, disrnn_progress_fn fn, void *user_data);
/** @brief Install a log callback (NULL to silence).
 *  @param[in,out] tr the trainer.
 *  @param[in] fn the callback, or NULL.
 *  @param[in] min_level smallest ::disrnn_log_level passed on.
 *  @param[in] user_data passed back to fn.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_trainer_set_log(disrnn_trainer_t *tr, disrnn_log_fn fn, int min_level, void *user_data);
/** @brief Train until the epochs or steps run out, the callback stops it, or early stopping.
 *  ::DISRNN_TRAIN_EPOCHS is a total: calling fit again continues until the trainer's epoch count
 *  reaches it (a fit cut short by ::DISRNN_TRAIN_MAX_STEPS resumes mid-epoch). Batches follow a fresh
 *  shuffle each epoch; when the PC penalty is active (beta > 0, G > 1) a last batch of a single sample
 *  is merged into the previous batch, and a batch size of 1 is refused. With
 *  ::DISRNN_TRAIN_KEEP_BEST the best validation parameters are restored when fit returns ::DISRNN_OK
 *  or ::DISRNN_EARLY_STOPPED (not after ::DISRNN_STOPPED or an error).
 *  @param[in,out] tr the trainer.
 *  @return ::DISRNN_OK, ::DISRNN_STOPPED, ::DISRNN_EARLY_STOPPED, ::DISRNN_ERR_NONFINITE (the
 *          step that went non-finite was refused; model and optimiser are as before it),
 *          ::DISRNN_ERR_CALLBACK, ::DISRNN_ERR_NOMEM, ::DISRNN_ERR_INVALID_ARG (batch settings that
 *          leave no valid batch), ::DISRNN_ERR_BAD_STATE (from the objective, e.g. N_tot unset).
 *  @note Thread safety: not on the same handle or its model. @since 0.1 */
DISRNN_API int disrnn_trainer_fit(disrnn_trainer_t *tr);
/** @brief Take one optimiser step on the next minibatch of the current epoch's order. When an epoch
 *  runs out, the next step closes it (without validation or callback) and starts a new shuffle.
 *  @param[in,out] tr the trainer.
 *  @param[out] terms loss terms of the batch (may be NULL).
 *  @param[in] nterms capacity of terms.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_NONFINITE (step refused), ::DISRNN_ERR_BUFFER_TOO_SMALL,
 *          ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BAD_STATE.
 *  @note Thread safety: not on the same handle or its model. @since 0.1 */
DISRNN_API int disrnn_trainer_step(disrnn_trainer_t *tr, double *terms, size_t nterms);
/** @brief Loss terms and gradient on chosen training samples, with noise from the trainer's generator.
 *  @param[in,out] tr the trainer.
 *  @param[in] samples indices into the training samples (< disrnn_dataset_num_samples()).
 *  @param[in] n_samples M >= 1.
 *  @param[out] terms loss terms (may be NULL).
 *  @param[in] nterms capacity of terms.
 *  @param[out] grad disrnn_model_num_params() values.
 *  @param[in] ngrad capacity of grad.
 *  @return as disrnn_model_loss().
 *  @note Thread safety: not on the same handle or its model. @since 0.1 */
DISRNN_API int disrnn_trainer_gradient(disrnn_trainer_t *tr, const size_t *samples, size_t n_samples,
                                       double *terms, size_t nterms, double *grad, size_t ngrad);
/** @brief Apply one optimiser step with a caller-given gradient (e.g. averaged across processes).
 *  @param[in,out] tr the trainer.
 *  @param[in] grad disrnn_model_num_params() finite values.
 *  @param[in] ngrad their number.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NONFINITE (refused, nothing changed).
 *  @note Thread safety: not on the same handle or its model. @since 0.1 */
DISRNN_API int disrnn_trainer_apply(disrnn_trainer_t *tr, const double *grad, size_t ngrad);
/** @brief Mean loss terms over all samples of a dataset (noise from the trainer's evaluation
 *  generator, seeded from the trainer seed and the epoch so it is reproducible).
 *  @param[in,out] tr the trainer.
 *  @param[in] ds the data.
 *  @param[out] terms ::DISRNN_TERM_BD + 1 values.
 *  @param[in] nterms capacity of terms.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_DATA, ::DISRNN_ERR_NOMEM, ::DISRNN_ERR_BUFFER_TOO_SMALL.
 *  @note Thread safety: not on the same handle or its model. @since 0.1 */
DISRNN_API int disrnn_trainer_evaluate(disrnn_trainer_t *tr, const disrnn_dataset_t *ds, double *terms, size_t nterms);
/** @brief Steps and epochs completed.
 *  @param[in] tr the trainer.
 *  @param[out] step optimiser steps taken (may be NULL).
 *  @param[out] epoch epochs completed (may be NULL).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_trainer_progress(const disrnn_trainer_t *tr, int64_t *step, int64_t *epoch);
/** @brief Size of the optimiser state vector (first moments, second moments, step count).
 *  @param[in] tr the trainer (NULL gives 0).
 *  @return 2 * disrnn_model_num_params() + 1.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API size_t disrnn_trainer_state_size(const disrnn_trainer_t *tr);
/** @brief Copy the optimiser state out: [m (n), v (n), step].
 *  @param[in] tr the trainer.
 *  @param[out] out disrnn_trainer_state_size() values.
 *  @param[in] len capacity of out.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_trainer_get_state(const disrnn_trainer_t *tr, double *out, size_t len);
/** @brief Overwrite the optimiser state (layout of disrnn_trainer_get_state()).
 *  @param[in,out] tr the trainer.
 *  @param[in] state disrnn_trainer_state_size() values (finite, v >= 0, step a whole number >= 0).
 *  @param[in] len their number.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: not on the same handle. @since 0.1 */
DISRNN_API int disrnn_trainer_set_state(disrnn_trainer_t *tr, const double *state, size_t len);
/** @brief Save a full checkpoint: model, optimiser moments, step, epoch, generator states, settings.
 *  @param[in] tr the trainer.
 *  @param[in] path destination (written to a temporary file, then renamed).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_IO, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_trainer_save(const disrnn_trainer_t *tr, const char *path);
/** @brief Restore a checkpoint into a trainer whose model has the same configuration; a resumed
 *  fit is bit-identical to an uninterrupted one. On failure nothing changes.
 *  @param[in,out] tr the trainer.
 *  @param[in] path the checkpoint.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG (incompatible model), ::DISRNN_ERR_IO,
 *          ::DISRNN_ERR_CORRUPT, ::DISRNN_ERR_VERSION, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: not on the same handle or its model. @since 0.1 */
DISRNN_API int disrnn_trainer_load(disrnn_trainer_t *tr, const char *path);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Analysis: latents, reconstruction and metrics
 *  Per-sample outputs have disrnn_dataset_num_samples() columns (trial order, then bin order).
 *  Every function here that takes a dataset may also return ::DISRNN_ERR_DATA (a Poisson model given
 *  a dataset that is not ::DISRNN_DATA_COUNTS, or N or P that differ from the model's). Functions
 *  that need the encoder std (evaluation PC, generation with latent noise) return
 *  ::DISRNN_ERR_INVALID_ARG under Scott's rule while ::DISRNN_OPT_N_TOT is 0. Functions without a
 *  handle report NaN or Inf in their inputs as ::DISRNN_ERR_INVALID_ARG, and a correlation or R^2
 *  that is undefined (constant input) as NaN.
 *  @{ */
/** @brief Posterior means mu (latent trajectories) of every sample.
 *  @param[in] model the model.
 *  @param[in] ds the data.
 *  @param[out] mu K x S means.
 *  @param[in] ldmu leading dimension, >= K.
 *  @param[in] n_cols capacity in columns (>= S).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_latents(const disrnn_model_t *model, const disrnn_dataset_t *ds,
                                    double *mu, size_t ldmu, size_t n_cols);
/** @brief Decoder means at z = mu (one-step-ahead predictions) of every sample.
 *  @param[in] model the model.
 *  @param[in] ds the data.
 *  @param[out] xhat N x S predicted means (rates for Poisson).
 *  @param[in] ldx leading dimension, >= N.
 *  @param[in] n_cols capacity in columns (>= S).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_predict(const disrnn_model_t *model, const disrnn_dataset_t *ds,
                                    double *xhat, size_t ldx, size_t n_cols);
/** @brief Indices of the values written by disrnn_model_evaluate(). */
enum disrnn_metric {
    DISRNN_METRIC_R2 = 0,             /**< reconstruction R^2 at z = mu, uniform average over channels */
    DISRNN_METRIC_LOGLIK = 1,         /**< mean per-sample conditional log-likelihood log p(x | z = mu) */
    DISRNN_METRIC_BITS_PER_SPIKE = 2, /**< NLB bits per spike against the per-channel mean rate (NaN for Gaussian) */
    DISRNN_METRIC_MSE = 3             /**< mean squared error over observed entries */
};
/** @brief Number of values written by disrnn_model_evaluate().
 *  @return 4.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_num_metrics(void);
/** @brief Reconstruction metrics on a dataset (masked entries skipped).
 *  @param[in] model the model.
 *  @param[in] ds the data.
 *  @param[out] metrics values indexed by ::disrnn_metric.
 *  @param[in] len capacity of metrics.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_evaluate(const disrnn_model_t *model, const disrnn_dataset_t *ds,
                                     double *metrics, size_t len);
/** @brief Evaluation PC (group total correlation of the aggregated posterior, with the model's
 *  groups) and TC (every dimension its own group) on a dataset, n_mc draws per point. Memory is
 *  linear in the number of samples.
 *  @param[in] model the model.
 *  @param[in] ds the data.
 *  @param[in] n_mc draws per point (>= 1).
 *  @param[in] seed seed of the draws.
 *  @param[out] pc the PC estimate (may be NULL).
 *  @param[out] tc the TC estimate (may be NULL).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_eval_pc(const disrnn_model_t *model, const disrnn_dataset_t *ds,
                                    size_t n_mc, uint64_t seed, double *pc, double *tc);
/** @brief PC and TC of a mixture of n Gaussians N(mu_j, diag(s^2)) with the given groups.
 *  @param[in] n_latent K.
 *  @param[in] group_sizes G sizes summing to K.
 *  @param[in] n_groups G.
 *  @param[in] n n >= 1 points.
 *  @param[in] mu K x n means.
 *  @param[in] ldmu leading dimension, >= K.
 *  @param[in] s K standard deviations (> 0).
 *  @param[in] n_mc draws per point (>= 1).
 *  @param[in] seed seed of the draws.
 *  @param[out] pc the PC estimate (may be NULL).
 *  @param[out] tc the TC estimate (may be NULL).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_mixture_pc(size_t n_latent, const size_t *group_sizes, size_t n_groups, size_t n,
                                 const double *mu, size_t ldmu, const double *s, size_t n_mc, uint64_t seed,
                                 double *pc, double *tc);
/** @brief Group-aligned latent R^2 against reference latents. For every (reference group a,
 *  fitted group b) an affine least-squares map from z_b to ref_a is fitted and scored; the
 *  assignment maximising the total R^2 is found exactly (Hungarian method); the result is the R^2
 *  of the concatenated aligned latents (uniform over reference dimensions). Requires G_ref <= G_fit.
 *  Component alignment: pass groups of size 1.
 *  @param[in] n n samples (> max group size).
 *  @param[in] ref K_ref x n reference latents.
 *  @param[in] ldref leading dimension, >= K_ref.
 *  @param[in] ref_groups G_ref sizes summing to K_ref.
 *  @param[in] n_ref_groups G_ref.
 *  @param[in] fit K_fit x n fitted latents.
 *  @param[in] ldfit leading dimension, >= K_fit.
 *  @param[in] fit_groups G_fit sizes summing to K_fit.
 *  @param[in] n_fit_groups G_fit.
 *  @param[out] r2 overall aligned R^2 (may be NULL).
 *  @param[out] r2_matrix G_ref x G_fit pair R^2 values, column-major (may be NULL).
 *  @param[out] assignment G_ref fitted-group indices (may be NULL).
 *  @param[out] aligned K_ref x n aligned latents (may be NULL).
 *  @param[in] ldaligned leading dimension of aligned, >= K_ref.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NOMEM, ::DISRNN_ERR_LAPACK.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_align_r2(size_t n, const double *ref, size_t ldref, const size_t *ref_groups, size_t n_ref_groups,
                               const double *fit, size_t ldfit, const size_t *fit_groups, size_t n_fit_groups,
                               double *r2, double *r2_matrix, size_t *assignment, double *aligned, size_t ldaligned);
/** @brief Exact maximum-weight assignment (Hungarian method) of rows to distinct columns.
 *  @param[in] rows number of rows (<= cols).
 *  @param[in] cols number of columns.
 *  @param[in] weight rows x cols finite weights, column-major.
 *  @param[in] ld leading dimension, >= rows.
 *  @param[out] assignment rows column indices.
 *  @param[out] total sum of the chosen weights (may be NULL).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NONFINITE, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_assignment_max(size_t rows, size_t cols, const double *weight, size_t ld,
                                     size_t *assignment, double *total);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Analysis: connectivity
 *  @{ */
/** @brief What disrnn_model_connectivity() returns. */
enum disrnn_conn {
    DISRNN_CONN_W = 0,      /**< W = A B, N x N */
    DISRNN_CONN_W_GROUP = 1,/**< W_g = A[:, g] B[g, :], N x N */
    DISRNN_CONN_J = 2,      /**< latent connectivity J = B A, K x K */
    DISRNN_CONN_BIAS = 3    /**< b = A d + c, N x 1 */
};
/** @brief A connectivity matrix of the model.
 *  @param[in] model the model.
 *  @param[in] what a ::disrnn_conn.
 *  @param[in] group g for ::DISRNN_CONN_W_GROUP (ignored otherwise).
 *  @param[out] out the matrix, column-major.
 *  @param[in] len capacity of out.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_connectivity(const disrnn_model_t *model, int what, size_t group, double *out, size_t len);
/** @brief SVD view of W (group = SIZE_MAX; rank r = K) or of W_g (rank r = H_g):
 *  W = U S V^T truncated to rank r; left = U S (N x r), right = V^T (r x N), sv the r singular values.
 *  @param[in] model the model.
 *  @param[in] group SIZE_MAX for W, or a group index.
 *  @param[out] left N x r (may be NULL).
 *  @param[out] right r x N (may be NULL).
 *  @param[out] sv r values, descending (may be NULL).
 *  @param[in] rank_cap r must be <= rank_cap (capacity in columns/rows/values of the outputs).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL, ::DISRNN_ERR_LAPACK, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_svd(const disrnn_model_t *model, size_t group, double *left, double *right,
                                double *sv, size_t rank_cap);
/** @brief Indices of disrnn_compare_matrices() outputs. */
enum disrnn_compare { DISRNN_CMP_CORR = 0 /**< Pearson correlation */, DISRNN_CMP_RMSE = 1 /**< root mean squared error */,
                      DISRNN_CMP_R2 = 2 /**< R^2 of b as a prediction of a */, DISRNN_CMP_MAE = 3 /**< mean absolute error */ };
/** @brief Compare two arrays of n values (e.g. a true and a fitted connectivity).
 *  @param[in] n number of values (>= 2).
 *  @param[in] a reference values.
 *  @param[in] b compared values.
 *  @param[out] out 4 values indexed by ::disrnn_compare.
 *  @param[in] len capacity of out (>= 4).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_compare_matrices(size_t n, const double *a, const double *b, double *out, size_t len);
/** @brief Compare grouped connectivities: the groups of b are matched to those of a to maximise the
 *  total Pearson correlation (exact assignment); reports the mean correlation over a's groups.
 *  @param[in] n_obs N.
 *  @param[in] n_a number of groups of a (<= n_b).
 *  @param[in] a n_a matrices N x N, stored one after another.
 *  @param[in] n_b number of groups of b.
 *  @param[in] b n_b matrices N x N, one after another.
 *  @param[out] assignment n_a indices into b's groups (may be NULL).
 *  @param[out] corr n_a correlations of the matched pairs (may be NULL).
 *  @param[out] mean_corr their mean (may be NULL).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_compare_grouped(size_t n_obs, size_t n_a, const double *a, size_t n_b, const double *b,
                                      size_t *assignment, double *corr, double *mean_corr);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Analysis: generation and dynamics
 *  @{ */
/** @brief Noise flags for disrnn_model_generate(). */
enum disrnn_gen_flags {
    DISRNN_GEN_MEAN = 0,         /**< z = mu and x = decoder mean */
    DISRNN_GEN_LATENT_NOISE = 1, /**< z drawn from q(z | history) */
    DISRNN_GEN_OBS_NOISE = 2     /**< x drawn from the observation model (Gaussian or Poisson counts) */
};
/** @brief Roll the generative RNN forward: each new bin is x_t = decoder(z_t), z_t from the
 *  encoder applied to the previous L bins (padding as configured when fewer than L bins exist).
 *  @param[in] model the model.
 *  @param[in] n_init T0 >= 0 initial bins.
 *  @param[in] x_init N x T0 initial bins (may be NULL when T0 = 0).
 *  @param[in] ldinit leading dimension, >= N.
 *  @param[in] n_steps T >= 1 bins to generate.
 *  @param[in] u P x T inputs of the generated bins, or NULL when P = 0.
 *  @param[in] ldu leading dimension, >= P.
 *  @param[in] flags OR of ::disrnn_gen_flags.
 *  @param[in] seed seed of the draws.
 *  @param[out] x N x T generated bins.
 *  @param[in] ldx leading dimension, >= N.
 *  @param[out] z K x T latents used (may be NULL).
 *  @param[in] ldz leading dimension, >= K.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NONFINITE, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_generate(const disrnn_model_t *model, size_t n_init, const double *x_init, size_t ldinit,
                                     size_t n_steps, const double *u, size_t ldu, int flags, uint64_t seed,
                                     double *x, size_t ldx, double *z, size_t ldz);
/** @brief k-step-ahead prediction R^2 for k = 1..k_max: from each bin t of a trial with real history,
 *  roll forward at the means (known inputs used) and compare the prediction of bin t + k - 1 with
 *  the data (uniform average over channels, masked entries skipped). k = 1 is the one-step prediction.
 *  @param[in] model the model.
 *  @param[in] ds the data.
 *  @param[in] k_max >= 1.
 *  @param[out] r2 k_max values.
 *  @param[in] len capacity of r2.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_kstep_r2(const disrnn_model_t *model, const disrnn_dataset_t *ds, size_t k_max,
                                     double *r2, size_t len);
/** @brief Fixed points of the latent map z -> B sigma(link(A z + c) / kappa) + d (L = 1, no input;
 *  link is the decoder's mean function) found by damped Newton from n_starts seeded starting points,
 *  deduplicated, each with the eigenvalues of its K x K Jacobian (|lambda| < 1: attracting direction).
 *  @param[in] model the model.
 *  @param[in] n_starts number of starts (>= 1).
 *  @param[in] seed seed of the starting points.
 *  @param[in] tol residual tolerance (> 0, e.g. 1e-12).
 *  @param[out] n_found number of distinct fixed points found (may exceed cap; only cap are written).
 *  @param[out] z K x cap fixed points (may be NULL).
 *  @param[out] eig_re K x cap real parts of the eigenvalues (may be NULL).
 *  @param[out] eig_im K x cap imaginary parts (may be NULL).
 *  @param[in] cap capacity in fixed points.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_UNSUPPORTED (L > 1 or inputs in D), ::DISRNN_ERR_LAPACK, ::DISRNN_ERR_NOMEM.
 *  @note Thread safety: safe with other const calls. @since 0.1 */
DISRNN_API int disrnn_model_fixed_points(const disrnn_model_t *model, size_t n_starts, uint64_t seed, double tol,
                                         size_t *n_found, double *z, double *eig_re, double *eig_im, size_t cap);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Files: NumPy arrays and spike events
 *  @{ */
/** @brief Element types of NumPy arrays. */
enum disrnn_dtype {
    DISRNN_DTYPE_F64 = 0, /**< float64 */ DISRNN_DTYPE_F32 = 1, /**< float32 */
    DISRNN_DTYPE_I8 = 2,  /**< int8 */    DISRNN_DTYPE_I16 = 3, /**< int16 */
    DISRNN_DTYPE_I32 = 4, /**< int32 */   DISRNN_DTYPE_I64 = 5, /**< int64 */
    DISRNN_DTYPE_U8 = 6,  /**< uint8 */   DISRNN_DTYPE_U16 = 7, /**< uint16 */
    DISRNN_DTYPE_U32 = 8, /**< uint32 */  DISRNN_DTYPE_U64 = 9  /**< uint64 */
};
/** @brief Most dimensions an array may have. */
#define DISRNN_NPY_MAX_DIMS 8
/** @brief Function twin of ::DISRNN_NPY_MAX_DIMS.
 *  @return the value of ::DISRNN_NPY_MAX_DIMS.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_npy_max_dims(void);
/** @brief Read the header of a .npy file (format 1.0, 2.0 or 3.0). Every output pointer must be non-NULL.
 *  @param[in] path the file.
 *  @param[out] dtype a ::disrnn_dtype.
 *  @param[out] ndim number of dimensions (<= ::DISRNN_NPY_MAX_DIMS).
 *  @param[out] shape ndim sizes (capacity ::DISRNN_NPY_MAX_DIMS).
 *  @param[out] fortran_order 1 when stored column-major.
 *  @param[out] msg optional failure message buffer (may be NULL).
 *  @param[in] msg_len capacity of msg.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_IO, ::DISRNN_ERR_CORRUPT, ::DISRNN_ERR_UNSUPPORTED.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_npy_info(const char *path, int *dtype, size_t *ndim, size_t *shape, int *fortran_order,
                               char *msg, size_t msg_len);
/** @brief Read a .npy file's elements in their own type and order (native byte order).
 *  @param[in] path the file.
 *  @param[out] data destination.
 *  @param[in] nbytes capacity in bytes.
 *  @param[out] msg optional failure message buffer (may be NULL).
 *  @param[in] msg_len capacity of msg.
 *  @return as disrnn_npy_info() plus ::DISRNN_ERR_BUFFER_TOO_SMALL.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_npy_read_raw(const char *path, void *data, size_t nbytes, char *msg, size_t msg_len);
/** @brief Read a .npy file converted to double, in the order asked for.
 *  @param[in] path the file.
 *  @param[out] out all elements.
 *  @param[in] len capacity in elements.
 *  @param[in] fortran_order 1 to write column-major (first index fastest), 0 for C order.
 *  @param[out] msg optional failure message buffer (may be NULL).
 *  @param[in] msg_len capacity of msg.
 *  @return as disrnn_npy_read_raw().
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_npy_read_f64(const char *path, double *out, size_t len, int fortran_order, char *msg, size_t msg_len);
/** @brief Write a .npy file (format 1.0, or 2.0 when the header needs it), atomically.
 *  @param[in] path destination.
 *  @param[in] data elements of type dtype, native byte order.
 *  @param[in] dtype a ::disrnn_dtype.
 *  @param[in] ndim number of dimensions (0..::DISRNN_NPY_MAX_DIMS).
 *  @param[in] shape ndim sizes.
 *  @param[in] fortran_order 1 when data is column-major.
 *  @param[out] msg optional failure message buffer (may be NULL).
 *  @param[in] msg_len capacity of msg.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_IO.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_npy_write(const char *path, const void *data, int dtype, size_t ndim, const size_t *shape,
                                int fortran_order, char *msg, size_t msg_len);
/** @brief Read spike events from a CSV file of `trial,channel,time` rows (a header line is
 *  skipped if present; times in the file's unit). Measure with cap = 0.
 *  @param[in] path the file.
 *  @param[out] trial trial index of each event (may be NULL when cap = 0).
 *  @param[out] channel channel index of each event.
 *  @param[out] time time of each event.
 *  @param[in] cap capacity of each array.
 *  @param[out] n_events number of events in the file.
 *  @param[out] msg optional failure message buffer (may be NULL).
 *  @param[in] msg_len capacity of msg.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_IO, ::DISRNN_ERR_CORRUPT, ::DISRNN_ERR_BUFFER_TOO_SMALL.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_spikes_read_csv(const char *path, int64_t *trial, int64_t *channel, double *time, size_t cap,
                                      size_t *n_events, char *msg, size_t msg_len);
/** @brief Number of bins of each trial for disrnn_spikes_bin(): floor((stop - start) / width), where a
 *  quotient within 1e-9 (relative) below a whole number counts as that number (so 0.3 / 0.1 gives 3).
 *  @param[in] n_trials number of trials.
 *  @param[in] t_start start time of each trial.
 *  @param[in] t_stop stop time of each trial (> start).
 *  @param[in] bin_width bin width (> 0, same unit).
 *  @param[out] n_bins n_trials bin counts.
 *  @param[out] total their sum (may be NULL).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_spikes_num_bins(size_t n_trials, const double *t_start, const double *t_stop, double bin_width,
                                      size_t *n_bins, size_t *total);
/** @brief Bin spike events into counts: trial r's bins are N x n_bins[r], bin-major, stored one
 *  trial after another. Events outside [start, start + n_bins * width) or with channel >= N are ignored.
 *  @param[in] n_events number of events.
 *  @param[in] trial trial of each event (0..n_trials-1; others ignored).
 *  @param[in] channel channel of each event.
 *  @param[in] time time of each event.
 *  @param[in] n_trials number of trials.
 *  @param[in] n_obs N channels.
 *  @param[in] t_start start of each trial.
 *  @param[in] t_stop stop of each trial.
 *  @param[in] bin_width bin width.
 *  @param[out] counts N x (sum of n_bins) counts.
 *  @param[in] len capacity of counts.
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_BUFFER_TOO_SMALL.
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_spikes_bin(size_t n_events, const int64_t *trial, const int64_t *channel, const double *time,
                                 size_t n_trials, size_t n_obs, const double *t_start, const double *t_stop,
                                 double bin_width, double *counts, size_t len);
/** @brief Smooth each channel of a bin-major N x T block in time with a Gaussian kernel (truncated
 *  at 4 sigma, renormalised at the edges) into rates.
 *  @param[in] n_obs N.
 *  @param[in] n_bins T.
 *  @param[in] x N x T input.
 *  @param[in] sigma_bins kernel standard deviation in bins (> 0).
 *  @param[out] y N x T output (must not overlap x).
 *  @return ::DISRNN_OK, ::DISRNN_ERR_INVALID_ARG, ::DISRNN_ERR_NOMEM (kernel table of 8 sigma + 1 values).
 *  @note Thread safety: safe. @since 0.1 */
DISRNN_API int disrnn_smooth_gaussian(size_t n_obs, size_t n_bins, const double *x, double sigma_bins, double *y);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* DISRNN_H */
