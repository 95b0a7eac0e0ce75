"""Loading libdisrnn and the ctypes prototypes of its whole public API (include/disrnn.h).

tests/test_header_sync.py checks this table against the header: every function, its argument
types and its return type, and every enumeration value.
"""
import ctypes
import ctypes.util
import os
import shutil
import subprocess
from ctypes import (CFUNCTYPE, POINTER, c_char, c_char_p, c_double, c_int, c_int64, c_size_t,
                    c_uint8, c_uint64, c_void_p)

# ----------------------------------------------------------------------------------------------
# Constants (values fixed forever by the header)

OK, STOPPED, EARLY_STOPPED = 0, 1, 2
ERR_INVALID_ARG, ERR_NOMEM, ERR_BUFFER_TOO_SMALL, ERR_NONFINITE = -1, -2, -3, -4
ERR_LAPACK, ERR_CALLBACK, ERR_BAD_STATE, ERR_IO = -5, -6, -7, -8
ERR_CORRUPT, ERR_VERSION, ERR_UNSUPPORTED, ERR_DATA = -9, -10, -11, -12

LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR = 0, 1, 2, 3

OPT_SIGMA, OPT_PADDING, OPT_OBS, OPT_NUM_INPUTS, OPT_INPUT_E, OPT_INPUT_D = 0, 1, 2, 3, 4, 5
OPT_STD_MODE, OPT_KAPPA, OPT_STD_VALUE, OPT_N_TOT, OPT_BETA, OPT_ALPHA = 6, 7, 8, 9, 10, 11
SIGMA_TANH, SIGMA_IDENTITY, SIGMA_RELU = 0, 1, 2
PAD_REPEAT, PAD_ZERO, PAD_DROP = 0, 1, 2
OBS_GAUSSIAN, OBS_GAUSSIAN_RELU, OBS_POISSON_SOFTPLUS, OBS_POISSON_EXP = 0, 1, 2, 3
INPUT_NONE, INPUT_LEARNED, INPUT_FIXED = 0, 1, 2
STD_SCOTT, STD_FIXED, STD_LEARNED = 0, 1, 2

BLOCK_A, BLOCK_B, BLOCK_BIAS_C, BLOCK_BIAS_D = 0, 1, 2, 3
BLOCK_RHO, BLOCK_E, BLOCK_D, BLOCK_LOG_S = 4, 5, 6, 7

TERM_LOSS, TERM_NLL, TERM_KL, TERM_PC, TERM_BD = 0, 1, 2, 3, 4

DATA_CONTINUOUS, DATA_COUNTS = 0, 1

TRAIN_OPTIMIZER, TRAIN_LR, TRAIN_BETA1, TRAIN_BETA2, TRAIN_EPS, TRAIN_WEIGHT_DECAY = 0, 1, 2, 3, 4, 5
TRAIN_BATCH_SIZE, TRAIN_EPOCHS, TRAIN_MAX_STEPS, TRAIN_CLIP_NORM, TRAIN_SCHEDULE = 6, 7, 8, 9, 10
TRAIN_LR_GAMMA, TRAIN_LR_MIN, TRAIN_PATIENCE, TRAIN_KEEP_BEST, TRAIN_SHUFFLE = 11, 12, 13, 14, 15
TRAIN_DROP_LAST, TRAIN_THREADS = 16, 17
OPTIM_ADAM, OPTIM_ADAMW = 0, 1
SCHED_CONSTANT, SCHED_EXPONENTIAL, SCHED_COSINE = 0, 1, 2

METRIC_R2, METRIC_LOGLIK, METRIC_BITS_PER_SPIKE, METRIC_MSE = 0, 1, 2, 3

CONN_W, CONN_W_GROUP, CONN_J, CONN_BIAS = 0, 1, 2, 3
CMP_CORR, CMP_RMSE, CMP_R2, CMP_MAE = 0, 1, 2, 3
GEN_MEAN, GEN_LATENT_NOISE, GEN_OBS_NOISE = 0, 1, 2

DTYPE_F64, DTYPE_F32, DTYPE_I8, DTYPE_I16, DTYPE_I32 = 0, 1, 2, 3, 4
DTYPE_I64, DTYPE_U8, DTYPE_U16, DTYPE_U32, DTYPE_U64 = 5, 6, 7, 8, 9

VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH = 0, 1, 0
VERSION_NUMBER = VERSION_MAJOR * 10000 + VERSION_MINOR * 100 + VERSION_PATCH
NPY_MAX_DIMS = 8

# ----------------------------------------------------------------------------------------------
# Callback types

ALLOC_FN = CFUNCTYPE(c_void_p, c_size_t, c_void_p)
FREE_FN = CFUNCTYPE(None, c_void_p, c_void_p)
LOG_FN = CFUNCTYPE(None, c_int, c_char_p, c_void_p)
PROGRESS_FN = CFUNCTYPE(c_int, c_int64, c_int64, POINTER(c_double), c_size_t, c_double, c_double,
                        c_void_p)

# ----------------------------------------------------------------------------------------------
# Prototypes: name -> (restype, argtypes). Handles are opaque c_void_p.

H = c_void_p                 # any disrnn_*_t *
HH = POINTER(c_void_p)       # disrnn_*_t ** (constructor out-parameter)
PD = POINTER(c_double)
PZ = POINTER(c_size_t)
PI = POINTER(c_int)
PI64 = POINTER(c_int64)
PU8 = POINTER(c_uint8)
PC = POINTER(c_char)         # caller-owned char buffer
S = c_size_t

PROTOTYPES = {
    "disrnn_version_number": (c_int, []),
    "disrnn_version_string": (c_char_p, []),
    "disrnn_status_string": (c_char_p, [c_int]),
    "disrnn_option_bounds": (c_int, [c_int, PD, PD, PI]),
    "disrnn_config_create": (c_int, [HH, S, S]),
    "disrnn_config_free": (None, [H]),
    "disrnn_config_set_groups": (c_int, [H, PZ, S]),
    "disrnn_config_set_kernel": (c_int, [H, PD, S]),
    "disrnn_config_set_int": (c_int, [H, c_int, c_int64]),
    "disrnn_config_set_double": (c_int, [H, c_int, c_double]),
    "disrnn_config_set_seed": (c_int, [H, c_uint64]),
    "disrnn_config_last_error": (c_char_p, [H]),
    "disrnn_model_create": (c_int, [HH, H]),
    "disrnn_model_create_with_allocator": (c_int, [HH, H, ALLOC_FN, FREE_FN, c_void_p]),
    "disrnn_model_free": (None, [H]),
    "disrnn_model_clone": (c_int, [HH, H]),
    "disrnn_model_last_error": (c_char_p, [H]),
    "disrnn_model_set_log": (c_int, [H, LOG_FN, c_int, c_void_p]),
    "disrnn_model_get_int": (c_int, [H, c_int, PI64]),
    "disrnn_model_get_double": (c_int, [H, c_int, PD]),
    "disrnn_model_set_double": (c_int, [H, c_int, c_double]),
    "disrnn_model_dims": (c_int, [H, PZ, PZ, PZ, PZ, PZ]),
    "disrnn_model_groups": (c_int, [H, PZ, S]),
    "disrnn_num_blocks": (c_int, []),
    "disrnn_model_num_params": (c_size_t, [H]),
    "disrnn_model_block_info": (c_int, [H, c_int, PZ, PZ, PZ, PI]),
    "disrnn_model_get_param": (c_int, [H, c_int, PD, S]),
    "disrnn_model_set_param": (c_int, [H, c_int, PD, S]),
    "disrnn_model_get_params": (c_int, [H, PD, S]),
    "disrnn_model_set_params": (c_int, [H, PD, S]),
    "disrnn_num_terms": (c_int, []),
    "disrnn_model_encoder_input": (c_int, [H, S, PD, S, PD, S]),
    "disrnn_model_loss": (c_int, [H, S, PD, S, PD, S, PD, S, PU8, S, PD, S, PD, S, PD, S]),
    "disrnn_model_save": (c_int, [H, c_char_p]),
    "disrnn_model_save_buffer": (c_int, [H, c_void_p, S, PZ]),
    "disrnn_model_load": (c_int, [HH, c_char_p, PC, S]),
    "disrnn_model_load_buffer": (c_int, [HH, c_void_p, S, PC, S]),
    "disrnn_dataset_create": (c_int, [HH, S, S, c_int]),
    "disrnn_dataset_create_with_allocator": (c_int, [HH, S, S, c_int, ALLOC_FN, FREE_FN, c_void_p]),
    "disrnn_dataset_free": (None, [H]),
    "disrnn_dataset_last_error": (c_char_p, [H]),
    "disrnn_dataset_add_trial": (c_int, [H, S, PD, S, PD, S, PU8, S]),
    "disrnn_dataset_dims": (c_int, [H, PZ, PZ, PI]),
    "disrnn_dataset_num_trials": (c_size_t, [H]),
    "disrnn_dataset_trial_length": (c_size_t, [H, S]),
    "disrnn_dataset_num_selected": (c_size_t, [H]),
    "disrnn_dataset_num_samples": (c_size_t, [H, H]),
    "disrnn_dataset_sample_index": (c_int, [H, H, PZ, PZ, S]),
    "disrnn_dataset_subset_trials": (c_int, [H, PZ, S, HH]),
    "disrnn_dataset_subset_interleaved": (c_int, [H, S, S, HH]),
    "disrnn_dataset_subset_bins": (c_int, [H, PZ, PZ, S, HH]),
    "disrnn_trainer_create": (c_int, [HH, H, H, c_uint64]),
    "disrnn_trainer_free": (None, [H]),
    "disrnn_trainer_last_error": (c_char_p, [H]),
    "disrnn_trainer_set_int": (c_int, [H, c_int, c_int64]),
    "disrnn_trainer_set_double": (c_int, [H, c_int, c_double]),
    "disrnn_trainer_get_int": (c_int, [H, c_int, PI64]),
    "disrnn_trainer_get_double": (c_int, [H, c_int, PD]),
    "disrnn_trainer_reset_settings": (c_int, [H]),
    "disrnn_train_option_bounds": (c_int, [c_int, PD, PD, PI]),
    "disrnn_trainer_set_validation": (c_int, [H, H]),
    "disrnn_trainer_set_progress": (c_int, [H, PROGRESS_FN, c_void_p]),
    "disrnn_trainer_set_log": (c_int, [H, LOG_FN, c_int, c_void_p]),
    "disrnn_trainer_fit": (c_int, [H]),
    "disrnn_trainer_step": (c_int, [H, PD, S]),
    "disrnn_trainer_gradient": (c_int, [H, PZ, S, PD, S, PD, S]),
    "disrnn_trainer_apply": (c_int, [H, PD, S]),
    "disrnn_trainer_evaluate": (c_int, [H, H, PD, S]),
    "disrnn_trainer_progress": (c_int, [H, PI64, PI64]),
    "disrnn_trainer_state_size": (c_size_t, [H]),
    "disrnn_trainer_get_state": (c_int, [H, PD, S]),
    "disrnn_trainer_set_state": (c_int, [H, PD, S]),
    "disrnn_trainer_save": (c_int, [H, c_char_p]),
    "disrnn_trainer_load": (c_int, [H, c_char_p]),
    "disrnn_model_latents": (c_int, [H, H, PD, S, S]),
    "disrnn_model_predict": (c_int, [H, H, PD, S, S]),
    "disrnn_num_metrics": (c_int, []),
    "disrnn_model_evaluate": (c_int, [H, H, PD, S]),
    "disrnn_model_eval_pc": (c_int, [H, H, S, c_uint64, PD, PD]),
    "disrnn_mixture_pc": (c_int, [S, PZ, S, S, PD, S, PD, S, c_uint64, PD, PD]),
    "disrnn_align_r2": (c_int, [S, PD, S, PZ, S, PD, S, PZ, S, PD, PD, PZ, PD, S]),
    "disrnn_assignment_max": (c_int, [S, S, PD, S, PZ, PD]),
    "disrnn_model_connectivity": (c_int, [H, c_int, S, PD, S]),
    "disrnn_model_svd": (c_int, [H, S, PD, PD, PD, S]),
    "disrnn_compare_matrices": (c_int, [S, PD, PD, PD, S]),
    "disrnn_compare_grouped": (c_int, [S, S, PD, S, PD, PZ, PD, PD]),
    "disrnn_model_generate": (c_int, [H, S, PD, S, S, PD, S, c_int, c_uint64, PD, S, PD, S]),
    "disrnn_model_kstep_r2": (c_int, [H, H, S, PD, S]),
    "disrnn_model_fixed_points": (c_int, [H, S, c_uint64, c_double, PZ, PD, PD, PD, S]),
    "disrnn_npy_max_dims": (c_int, []),
    "disrnn_npy_info": (c_int, [c_char_p, PI, PZ, PZ, PI, PC, S]),
    "disrnn_npy_read_raw": (c_int, [c_char_p, c_void_p, S, PC, S]),
    "disrnn_npy_read_f64": (c_int, [c_char_p, PD, S, c_int, PC, S]),
    "disrnn_npy_write": (c_int, [c_char_p, c_void_p, c_int, S, PZ, c_int, PC, S]),
    "disrnn_spikes_read_csv": (c_int, [c_char_p, PI64, PI64, PD, S, PZ, PC, S]),
    "disrnn_spikes_num_bins": (c_int, [S, PD, PD, c_double, PZ, PZ]),
    "disrnn_spikes_bin": (c_int, [S, PI64, PI64, PD, S, S, PD, PD, c_double, PD, S]),
    "disrnn_smooth_gaussian": (c_int, [S, S, PD, c_double, PD]),
}


def _candidates():
    env = os.environ.get("DISRNN_LIBRARY")
    if env:
        yield env
        return
    pkg_config = os.environ.get("PKG_CONFIG") or shutil.which("pkg-config")
    if pkg_config:
        try:
            out = subprocess.run([pkg_config, "--libs-only-L", "disrnn"], capture_output=True,
                                 text=True, check=False)
            if out.returncode == 0:
                for tok in out.stdout.split():
                    if tok.startswith("-L"):
                        for name in ("libdisrnn.so.0", "libdisrnn.so", "libdisrnn.dylib"):
                            path = os.path.join(tok[2:], name)
                            if os.path.exists(path):
                                yield path
        except OSError:
            pass
    found = ctypes.util.find_library("disrnn")
    if found:
        yield found
    yield "libdisrnn.so.0"


def load_library():
    """Open libdisrnn: $DISRNN_LIBRARY, else the folder pkg-config names, else the loader's
    search path. Declares every prototype on the returned handle."""
    errors = []
    for cand in _candidates():
        try:
            lib = ctypes.CDLL(cand)
            break
        except OSError as e:
            errors.append("%s: %s" % (cand, e))
    else:
        raise ImportError("libdisrnn not found (set DISRNN_LIBRARY to the library file, or "
                          "PKG_CONFIG_PATH to the folder of disrnn.pc): " + "; ".join(errors))
    missing = []
    for name, (res, args) in PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = res
        fn.argtypes = args
    if missing:
        raise ImportError("libdisrnn at %s lacks %s" % (getattr(lib, "_name", "?"), ", ".join(missing)))
    return lib
