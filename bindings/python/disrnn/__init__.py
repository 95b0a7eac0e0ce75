"""Python bindings of libdisrnn (disentangled low-rank RNNs for neural population recordings).

Dependency-free (ctypes); numpy is used when it is installed.

- Handles: Config, Model, Dataset, Trainer own their C objects; close() frees them (also on
  garbage collection and at the end of a ``with`` block). A Trainer keeps its model and datasets
  alive, and they refuse to close while an open trainer uses them.
- Errors raise DisrnnError carrying the status code and the message the library left on the
  handle.
- Arrays follow the library's layout: a trial of N channels over T bins is bin-major, i.e. a
  (T, N) C-order numpy array, a list of T rows of N values, or a flat sequence of T*N values
  (array('d'), list, memoryview). Outputs are numpy arrays shaped the same way when numpy is
  available (latents (S, K), predictions (S, N), generated bins (T, N)), else flat array('d')
  in the same memory order. Set DISRNN_PY_NO_NUMPY=1 to force the pure-Python path.
"""
import array
import collections
import ctypes
import os
import weakref
from ctypes import POINTER, byref, c_double, c_int, c_int64, c_size_t, c_uint8, c_void_p

from . import _lib

# The header's constants (OK, ERR_INVALID_ARG, OPT_BETA, TRAIN_EPOCHS, GEN_OBS_NOISE, ...).
for _name in dir(_lib):
    if _name.isupper() and isinstance(getattr(_lib, _name), int):
        globals()[_name] = getattr(_lib, _name)
del _name

try:
    if os.environ.get("DISRNN_PY_NO_NUMPY") == "1":
        raise ImportError("disabled by DISRNN_PY_NO_NUMPY")
    import numpy as _np
except ImportError:
    _np = None

HAVE_NUMPY = _np is not None

_L = _lib.load_library()
#: The raw ctypes library (every prototype declared), for calls the classes do not cover.
lib = _L

__all__ = ["DisrnnError", "Config", "Model", "Dataset", "Trainer", "Progress", "Alignment",
           "version", "version_number", "status_string", "align_r2", "assignment_max",
           "compare_matrices", "mixture_pc", "smooth_gaussian", "HAVE_NUMPY"]


# ----------------------------------------------------------------------------------------------
# Errors and version

def status_string(status):
    """The library's name and meaning of a status code."""
    return _L.disrnn_status_string(int(status)).decode("utf-8", "replace")


def version():
    """Run-time version string of the loaded library."""
    return _L.disrnn_version_string().decode()


def version_number():
    """Run-time version number (major * 10000 + minor * 100 + patch)."""
    return _L.disrnn_version_number()


class DisrnnError(Exception):
    """A failed library call: .status (int), .status_name, .message (the handle's text)."""

    def __init__(self, status, message=""):
        self.status = int(status)
        self.status_name = status_string(status)
        self.message = message or self.status_name
        super().__init__(self.message)

    def __str__(self):
        return "%s [%s]" % (self.message, self.status_name)


def _check_version():
    have = version_number()
    want = _lib.VERSION_NUMBER
    # Before 1.0 every minor release may change the ABI.
    if have // 100 != want // 100 or have < want:
        raise ImportError("the loaded libdisrnn is %s (%d); these bindings need %d.%d.x with patch >= %d"
                          % (version(), have, want // 10000, (want // 100) % 100, want % 100))


_check_version()


def _text(p):
    return p.decode("utf-8", "replace") if p else ""


# ----------------------------------------------------------------------------------------------
# Arrays

def _flatten(obj, what):
    """A sequence of numbers, or of equal-length rows, as (list of floats, row length or None)."""
    vals = list(obj)
    if vals and not isinstance(vals[0], (int, float)) and hasattr(vals[0], "__len__"):
        width = len(vals[0])
        flat = []
        for row in vals:
            if len(row) != width:
                raise DisrnnError(_lib.ERR_INVALID_ARG, "%s has rows of different lengths" % what)
            flat.extend(float(v) for v in row)
        return flat, width
    return [float(v) for v in vals], None


def _doubles_in(obj, rows, what):
    """Input doubles forming a column-major rows x cols matrix (rows = values per column).
    Returns (pointer, cols, keepalive). rows = 0 accepts any length (cols = count)."""
    width = None
    if _np is not None and isinstance(obj, _np.ndarray):
        a = _np.ascontiguousarray(obj, dtype=_np.float64)
        if a.ndim == 2:
            width = a.shape[1]
        ptr, count, keep = a.ctypes.data_as(POINTER(c_double)), a.size, a
    elif isinstance(obj, array.array) and obj.typecode == "d":
        count = len(obj)
        buf = (c_double * max(count, 1)).from_buffer_copy(obj.tobytes() or bytes(8))
        ptr, keep = ctypes.cast(buf, POINTER(c_double)), buf
    else:
        try:
            mv = memoryview(obj)
        except TypeError:
            mv = None
        if mv is not None and mv.format == "d" and mv.c_contiguous:
            if mv.ndim == 2:
                width = mv.shape[1]
            count = mv.nbytes // 8
            buf = (c_double * max(count, 1)).from_buffer_copy(mv.tobytes() or bytes(8))
        else:
            flat, width = _flatten(obj, what)
            count = len(flat)
            buf = (c_double * max(count, 1))(*flat)
        ptr, keep = ctypes.cast(buf, POINTER(c_double)), buf
    if rows:
        if width is not None and width != rows:
            raise DisrnnError(_lib.ERR_INVALID_ARG, "%s has rows of %d values, expected %d (one row per column of the "
                              "column-major matrix, e.g. (T, N) for a trial)" % (what, width, rows))
        if count % rows:
            raise DisrnnError(_lib.ERR_INVALID_ARG, "%s has %d values, not a whole number of columns of %d"
                              % (what, count, rows))
        return ptr, count // rows, keep
    return ptr, count, keep


def _bytes_in(obj, count, what):
    if obj is None:
        return None, None
    if _np is not None and isinstance(obj, _np.ndarray):
        a = _np.ascontiguousarray(obj, dtype=_np.uint8)
        vals = a.ravel()
        if vals.size != count:
            raise DisrnnError(_lib.ERR_INVALID_ARG, "%s has %d values, expected %d" % (what, vals.size, count))
        return a.ctypes.data_as(POINTER(c_uint8)), a
    flat, _ = _flatten(obj, what)
    if len(flat) != count:
        raise DisrnnError(_lib.ERR_INVALID_ARG, "%s has %d values, expected %d" % (what, len(flat), count))
    buf = (c_uint8 * max(count, 1))(*[int(v) for v in flat])
    return ctypes.cast(buf, POINTER(c_uint8)), buf


def _sizes_in(values):
    vals = [int(v) for v in values]
    buf = (c_size_t * max(len(vals), 1))(*vals)
    return ctypes.cast(buf, POINTER(c_size_t)), len(vals), buf


class _Out:
    """A zeroed output buffer of n doubles: .ptr for the call, .result(rows) afterwards."""

    def __init__(self, n):
        self.n = n
        if _np is not None:
            self.arr = _np.zeros(max(n, 1))
            self.ptr = self.arr.ctypes.data_as(POINTER(c_double))
        else:
            self.buf = (c_double * max(n, 1))()
            self.ptr = ctypes.cast(self.buf, POINTER(c_double))

    def result(self, rows=0):
        """Column-major rows x (n / rows) as a C-order (n / rows, rows) numpy array, or a flat
        array('d') (rows = 0: a 1-D result)."""
        if _np is not None:
            a = self.arr[:self.n]
            return a.reshape(self.n // rows, rows) if rows else a
        return array.array("d", self.buf[:self.n])


def _seq(a):
    return [float(v) for v in (a.ravel() if _np is not None and isinstance(a, _np.ndarray) else a)]


# ----------------------------------------------------------------------------------------------
# Handles

class _Handle:
    _kind = "handle"

    def __init__(self):
        self._h = None

    def _free(self, h):
        raise NotImplementedError

    @property
    def handle(self):
        """The raw handle (c_void_p value) for calls the wrapper does not cover."""
        if not self._h:
            raise DisrnnError(_lib.ERR_BAD_STATE, "this %s is closed" % self._kind)
        return self._h

    def close(self):
        """Free the C object now (idempotent)."""
        h, self._h = self._h, None
        if h:
            self._free(h)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


_INT_OPTIONS = {
    "sigma": _lib.OPT_SIGMA, "padding": _lib.OPT_PADDING, "obs": _lib.OPT_OBS,
    "num_inputs": _lib.OPT_NUM_INPUTS, "input_e": _lib.OPT_INPUT_E, "input_d": _lib.OPT_INPUT_D,
    "std_mode": _lib.OPT_STD_MODE,
}
_DOUBLE_OPTIONS = {
    "kappa": _lib.OPT_KAPPA, "std_value": _lib.OPT_STD_VALUE, "n_tot": _lib.OPT_N_TOT,
    "beta": _lib.OPT_BETA, "alpha": _lib.OPT_ALPHA,
}


class Config(_Handle):
    """A model configuration for N channels and K latents.

    Config(20, 4, groups=[2, 2], seed=1, std_mode=STD_FIXED, std_value=0.2, beta=1.0)
    """
    _kind = "configuration"

    def __init__(self, n_obs, n_latent, groups=None, kernel=None, seed=None, **options):
        super().__init__()
        h = c_void_p()
        st = _L.disrnn_config_create(byref(h), int(n_obs), int(n_latent))
        if st < 0:
            raise DisrnnError(st, "disrnn_config_create(n_obs=%r, n_latent=%r) failed: %s"
                              % (n_obs, n_latent, status_string(st)))
        self._h = h.value
        if groups is not None:
            self.set_groups(groups)
        if kernel is not None:
            self.set_kernel(kernel)
        if seed is not None:
            self.set_seed(seed)
        for name, value in options.items():
            self.set(name, value)

    def _free(self, h):
        _L.disrnn_config_free(h)

    def last_error(self):
        return _text(_L.disrnn_config_last_error(self._h))

    def _check(self, st):
        if st < 0:
            raise DisrnnError(st, self.last_error())
        return st

    def set_groups(self, sizes):
        p, n, _keep = _sizes_in(sizes)
        self._check(_L.disrnn_config_set_groups(self.handle, p, n))

    def set_kernel(self, psi):
        p, n, _keep = _doubles_in(psi, 0, "kernel")
        self._check(_L.disrnn_config_set_kernel(self.handle, p, n))

    def set_int(self, option, value):
        self._check(_L.disrnn_config_set_int(self.handle, int(option), int(value)))

    def set_double(self, option, value):
        self._check(_L.disrnn_config_set_double(self.handle, int(option), float(value)))

    def set_seed(self, seed):
        self._check(_L.disrnn_config_set_seed(self.handle, int(seed)))

    def set(self, name, value):
        """Set an option by name (sigma, padding, obs, num_inputs, input_e, input_d, std_mode,
        kappa, std_value, n_tot, beta, alpha)."""
        if name in _INT_OPTIONS:
            self.set_int(_INT_OPTIONS[name], value)
        elif name in _DOUBLE_OPTIONS:
            self.set_double(_DOUBLE_OPTIONS[name], value)
        else:
            raise DisrnnError(_lib.ERR_INVALID_ARG, "unknown option %r" % name)


Dims = collections.namedtuple("Dims", "n_obs n_latent n_groups kernel_len n_inputs")
BlockInfo = collections.namedtuple("BlockInfo", "rows cols offset learned")
Terms = collections.namedtuple("Terms", "loss nll kl pc bd")
Metrics = collections.namedtuple("Metrics", "r2 loglik bits_per_spike mse")
Progress = collections.namedtuple("Progress", "epoch step terms val_loss elapsed")
Alignment = collections.namedtuple("Alignment", "r2 r2_matrix assignment aligned")


def _log_thunk(fn):
    def thunk(level, msg, _ud):
        try:
            fn(level, _text(msg))
        except BaseException:  # never let an exception cross into C
            pass
    return _lib.LOG_FN(thunk)


class Model(_Handle):
    """A DisRNN model (created from a Config, loaded from a file or bytes, or cloned)."""
    _kind = "model"

    def __init__(self, config=None, _handle=None):
        super().__init__()
        self._log_cb = None
        self._trainers = weakref.WeakSet()
        if _handle is not None:
            self._h = _handle
            return
        if not isinstance(config, Config):
            raise DisrnnError(_lib.ERR_INVALID_ARG, "Model() needs a Config")
        h = c_void_p()
        st = _L.disrnn_model_create(byref(h), config.handle)
        if st < 0:
            raise DisrnnError(st, config.last_error())
        self._h = h.value

    def _free(self, h):
        _L.disrnn_model_free(h)

    def close(self):
        if self._h and any(t._h for t in list(self._trainers)):
            raise DisrnnError(_lib.ERR_BAD_STATE, "close the trainer using this model first")
        super().close()

    @classmethod
    def load(cls, path):
        h = c_void_p()
        msg = ctypes.create_string_buffer(512)
        st = _L.disrnn_model_load(byref(h), os.fsencode(path), msg, len(msg))
        if st < 0:
            raise DisrnnError(st, _text(msg.value))
        return cls(_handle=h.value)

    @classmethod
    def from_bytes(cls, data):
        data = bytes(data)
        h = c_void_p()
        msg = ctypes.create_string_buffer(512)
        buf = ctypes.create_string_buffer(data, len(data))
        st = _L.disrnn_model_load_buffer(byref(h), buf, len(data), msg, len(msg))
        if st < 0:
            raise DisrnnError(st, _text(msg.value))
        return cls(_handle=h.value)

    def last_error(self):
        return _text(_L.disrnn_model_last_error(self._h))

    def _check(self, st):
        if st < 0:
            raise DisrnnError(st, self.last_error())
        return st

    def clone(self):
        """Deep copy (without this object's log callback)."""
        h = c_void_p()
        self._check(_L.disrnn_model_clone(byref(h), self.handle))
        m = Model(_handle=h.value)
        # The C clone copies the callback pointer, which belongs to this object: detach it.
        _L.disrnn_model_set_log(m._h, _lib.LOG_FN(), 0, None)
        return m

    def set_log(self, fn, min_level=_lib.LOG_DEBUG):
        """fn(level, message) for messages at min_level and above; None silences."""
        cb = _log_thunk(fn) if fn is not None else _lib.LOG_FN()
        self._check(_L.disrnn_model_set_log(self.handle, cb, int(min_level), None))
        self._log_cb = cb if fn is not None else None

    def dims(self):
        v = [c_size_t() for _ in range(5)]
        self._check(_L.disrnn_model_dims(self.handle, *[byref(x) for x in v]))
        return Dims(*[x.value for x in v])

    def groups(self):
        g = self.dims().n_groups
        buf = (c_size_t * g)()
        self._check(_L.disrnn_model_groups(self.handle, buf, g))
        return list(buf)

    def get_int(self, option):
        v = c_int64()
        self._check(_L.disrnn_model_get_int(self.handle, int(option), byref(v)))
        return v.value

    def get_double(self, option):
        v = c_double()
        self._check(_L.disrnn_model_get_double(self.handle, int(option), byref(v)))
        return v.value

    def set_double(self, option, value):
        self._check(_L.disrnn_model_set_double(self.handle, int(option), float(value)))

    def num_params(self):
        return _L.disrnn_model_num_params(self.handle)

    def block_info(self, block):
        rows, cols, off, learned = c_size_t(), c_size_t(), c_size_t(), c_int()
        self._check(_L.disrnn_model_block_info(self.handle, int(block), byref(rows), byref(cols),
                                               byref(off), byref(learned)))
        offset = None if off.value == ctypes.c_size_t(-1).value else off.value
        return BlockInfo(rows.value, cols.value, offset, bool(learned.value))

    def param(self, block):
        """One block, column-major rows x cols: numpy (cols, rows) or flat array('d')."""
        info = self.block_info(block)
        out = _Out(info.rows * info.cols)
        self._check(_L.disrnn_model_get_param(self.handle, int(block), out.ptr, out.n))
        return out.result(info.rows if info.rows and info.cols else 0)

    def set_param(self, block, values):
        p, n, _keep = _doubles_in(values, 0, "values")
        self._check(_L.disrnn_model_set_param(self.handle, int(block), p, n))

    def params(self):
        """The flat vector of learned parameters."""
        out = _Out(self.num_params())
        self._check(_L.disrnn_model_get_params(self.handle, out.ptr, out.n))
        return out.result()

    def set_params(self, values):
        p, n, _keep = _doubles_in(values, 0, "values")
        self._check(_L.disrnn_model_set_params(self.handle, p, n))

    def save(self, path):
        self._check(_L.disrnn_model_save(self.handle, os.fsencode(path)))

    def to_bytes(self):
        need = c_size_t()
        self._check(_L.disrnn_model_save_buffer(self.handle, None, 0, byref(need)))
        buf = ctypes.create_string_buffer(max(need.value, 1))
        self._check(_L.disrnn_model_save_buffer(self.handle, buf, need.value, byref(need)))
        return buf.raw[:need.value]

    def _per_sample(self, fn, ds, rows):
        s = ds.num_samples(self)
        out = _Out(rows * s)
        self._check(fn(self.handle, ds.handle, out.ptr, rows, s))
        return out.result(rows)

    def latents(self, ds):
        """Posterior means: (S, K) numpy, or flat K x S column-major array('d')."""
        return self._per_sample(_L.disrnn_model_latents, ds, self.dims().n_latent)

    def predict(self, ds):
        """One-step-ahead means: (S, N) numpy, or flat N x S array('d')."""
        return self._per_sample(_L.disrnn_model_predict, ds, self.dims().n_obs)

    def evaluate(self, ds):
        m = (c_double * 4)()
        self._check(_L.disrnn_model_evaluate(self.handle, ds.handle, m, 4))
        return Metrics(*m)

    def eval_pc(self, ds, n_mc=1, seed=0):
        pc, tc = c_double(), c_double()
        self._check(_L.disrnn_model_eval_pc(self.handle, ds.handle, int(n_mc), int(seed), byref(pc), byref(tc)))
        return pc.value, tc.value

    def kstep_r2(self, ds, k_max):
        r = (c_double * max(int(k_max), 1))()
        self._check(_L.disrnn_model_kstep_r2(self.handle, ds.handle, int(k_max), r, int(k_max)))
        return list(r[:int(k_max)])

    def connectivity(self, what=_lib.CONN_W, group=0):
        d = self.dims()
        rows = {_lib.CONN_W: d.n_obs, _lib.CONN_W_GROUP: d.n_obs, _lib.CONN_J: d.n_latent,
                _lib.CONN_BIAS: d.n_obs}.get(int(what), d.n_obs)
        cols = 1 if int(what) == _lib.CONN_BIAS else rows
        out = _Out(rows * cols)
        self._check(_L.disrnn_model_connectivity(self.handle, int(what), int(group), out.ptr, out.n))
        return out.result(rows if cols > 1 else 0)

    def generate(self, n_steps, x_init=None, u=None, flags=_lib.GEN_MEAN, seed=0):
        """Roll the model forward n_steps bins. Returns (x, z): numpy (T, N) and (T, K), or flat
        bin-major array('d')."""
        d = self.dims()
        if x_init is not None:
            xp, t0, k1 = _doubles_in(x_init, d.n_obs, "x_init")
        else:
            xp, t0, k1 = None, 0, None
        if u is not None:
            up, tu, k2 = _doubles_in(u, d.n_inputs or 1, "u")
            if tu != n_steps:
                raise DisrnnError(_lib.ERR_INVALID_ARG, "u has %d bins, expected %d" % (tu, n_steps))
        else:
            up, k2 = None, None
        x = _Out(d.n_obs * int(n_steps))
        z = _Out(d.n_latent * int(n_steps))
        self._check(_L.disrnn_model_generate(self.handle, t0, xp, d.n_obs, int(n_steps), up, d.n_inputs,
                                             int(flags), int(seed), x.ptr, d.n_obs, z.ptr, d.n_latent))
        del k1, k2
        return x.result(d.n_obs), z.result(d.n_latent)


class Dataset(_Handle):
    """Trials of N channels (and P inputs) of one kind (DATA_CONTINUOUS or DATA_COUNTS)."""
    _kind = "dataset"

    def __init__(self, n_obs, n_inputs=0, kind=_lib.DATA_CONTINUOUS, _handle=None):
        super().__init__()
        self.n_obs, self.n_inputs, self.kind = int(n_obs), int(n_inputs), int(kind)
        self._trainers = weakref.WeakSet()
        if _handle is not None:
            self._h = _handle
            return
        h = c_void_p()
        st = _L.disrnn_dataset_create(byref(h), self.n_obs, self.n_inputs, self.kind)
        if st < 0:
            raise DisrnnError(st, "disrnn_dataset_create(n_obs=%r, n_inputs=%r, kind=%r) failed: %s"
                              % (n_obs, n_inputs, kind, status_string(st)))
        self._h = h.value

    def _free(self, h):
        _L.disrnn_dataset_free(h)

    def close(self):
        if self._h and any(t._h for t in list(self._trainers)):
            raise DisrnnError(_lib.ERR_BAD_STATE, "close the trainer using this dataset first")
        super().close()

    def last_error(self):
        return _text(_L.disrnn_dataset_last_error(self._h))

    def _check(self, st):
        if st < 0:
            raise DisrnnError(st, self.last_error())
        return st

    def add_trial(self, x, u=None, mask=None):
        """Append a trial: x is (T, N) bin-major (or flat T*N), u (T, P), mask (T, N) of 0/1."""
        xp, t, kx = _doubles_in(x, self.n_obs, "x")
        up, ku = None, None
        if u is not None:
            up, tu, ku = _doubles_in(u, self.n_inputs or 1, "u")
            if tu != t:
                raise DisrnnError(_lib.ERR_INVALID_ARG, "u has %d bins, x has %d" % (tu, t))
        mp, km = _bytes_in(mask, self.n_obs * t, "mask")
        self._check(_L.disrnn_dataset_add_trial(self.handle, t, xp, self.n_obs, up, self.n_inputs, mp, self.n_obs))
        del kx, ku, km

    def num_trials(self):
        return _L.disrnn_dataset_num_trials(self.handle)

    def trial_length(self, trial):
        return _L.disrnn_dataset_trial_length(self.handle, int(trial))

    def num_selected(self):
        return _L.disrnn_dataset_num_selected(self.handle)

    def num_samples(self, model):
        return _L.disrnn_dataset_num_samples(self.handle, model.handle)

    def sample_index(self, model):
        s = self.num_samples(model)
        tr, b = (c_size_t * max(s, 1))(), (c_size_t * max(s, 1))()
        self._check(_L.disrnn_dataset_sample_index(self.handle, model.handle, tr, b, s))
        return list(tr[:s]), list(b[:s])

    def _wrap(self, st, h):
        self._check(st)
        return Dataset(self.n_obs, self.n_inputs, self.kind, _handle=h.value)

    def subset_trials(self, trials):
        p, n, _keep = _sizes_in(trials)
        h = c_void_p()
        return self._wrap(_L.disrnn_dataset_subset_trials(self.handle, p, n, byref(h)), h)

    def subset_interleaved(self, period, phase):
        h = c_void_p()
        return self._wrap(_L.disrnn_dataset_subset_interleaved(self.handle, int(period), int(phase), byref(h)), h)

    def subset_bins(self, trial, bin_):
        pt, n1, _k1 = _sizes_in(trial)
        pb, n2, _k2 = _sizes_in(bin_)
        if n1 != n2:
            raise DisrnnError(_lib.ERR_INVALID_ARG, "%d trial indices but %d bin indices" % (n1, n2))
        h = c_void_p()
        return self._wrap(_L.disrnn_dataset_subset_bins(self.handle, pt, pb, n1, byref(h)), h)


_INT_SETTINGS = {
    "optimizer": _lib.TRAIN_OPTIMIZER, "batch_size": _lib.TRAIN_BATCH_SIZE, "epochs": _lib.TRAIN_EPOCHS,
    "max_steps": _lib.TRAIN_MAX_STEPS, "schedule": _lib.TRAIN_SCHEDULE, "patience": _lib.TRAIN_PATIENCE,
    "keep_best": _lib.TRAIN_KEEP_BEST, "shuffle": _lib.TRAIN_SHUFFLE, "drop_last": _lib.TRAIN_DROP_LAST,
    "threads": _lib.TRAIN_THREADS,
}
_DOUBLE_SETTINGS = {
    "lr": _lib.TRAIN_LR, "beta1": _lib.TRAIN_BETA1, "beta2": _lib.TRAIN_BETA2, "eps": _lib.TRAIN_EPS,
    "weight_decay": _lib.TRAIN_WEIGHT_DECAY, "clip_norm": _lib.TRAIN_CLIP_NORM,
    "lr_gamma": _lib.TRAIN_LR_GAMMA, "lr_min": _lib.TRAIN_LR_MIN,
}


class Trainer(_Handle):
    """Fits a model on a training dataset: Trainer(model, data, seed=3, epochs=20, lr=0.01)."""
    _kind = "trainer"

    def __init__(self, model, train, seed=0, **settings):
        super().__init__()
        self._progress_cb = None
        self._progress_fn = None
        self._pending = None
        self._log_cb = None
        self.model, self.train, self.validation = model, train, None
        h = c_void_p()
        st = _L.disrnn_trainer_create(byref(h), model.handle, train.handle, int(seed))
        if st < 0:
            raise DisrnnError(st, model.last_error() or train.last_error())
        self._h = h.value
        model._trainers.add(self)
        train._trainers.add(self)
        self._install_progress()
        for name, value in settings.items():
            self.set(name, value)

    def _free(self, h):
        _L.disrnn_trainer_free(h)

    def last_error(self):
        return _text(_L.disrnn_trainer_last_error(self._h))

    def _check(self, st):
        if st < 0:
            raise DisrnnError(st, self.last_error())
        return st

    def set_int(self, option, value):
        self._check(_L.disrnn_trainer_set_int(self.handle, int(option), int(value)))

    def set_double(self, option, value):
        self._check(_L.disrnn_trainer_set_double(self.handle, int(option), float(value)))

    def get_int(self, option):
        v = c_int64()
        self._check(_L.disrnn_trainer_get_int(self.handle, int(option), byref(v)))
        return v.value

    def get_double(self, option):
        v = c_double()
        self._check(_L.disrnn_trainer_get_double(self.handle, int(option), byref(v)))
        return v.value

    def set(self, name, value):
        """Set a setting by name (optimizer, lr, beta1, beta2, eps, weight_decay, batch_size,
        epochs, max_steps, clip_norm, schedule, lr_gamma, lr_min, patience, keep_best, shuffle,
        drop_last)."""
        if name in _INT_SETTINGS:
            self.set_int(_INT_SETTINGS[name], value)
        elif name in _DOUBLE_SETTINGS:
            self.set_double(_DOUBLE_SETTINGS[name], value)
        else:
            raise DisrnnError(_lib.ERR_INVALID_ARG, "unknown setting %r" % name)

    def reset_settings(self):
        self._check(_L.disrnn_trainer_reset_settings(self.handle))

    def set_validation(self, ds):
        self._check(_L.disrnn_trainer_set_validation(self.handle, ds.handle if ds is not None else None))
        if self.validation is not None:
            self.validation._trainers.discard(self)
        self.validation = ds
        if ds is not None:
            ds._trainers.add(self)

    def _install_progress(self):
        # One C callback for the trainer's life: it dispatches to the current Python callable,
        # records an exception instead of letting it reach C, and aborts the fit.
        # A weak reference: the callback object lives on the trainer, so a strong one would make a
        # cycle that only the cyclic collector could free.
        me = weakref.ref(self)

        def thunk(epoch, step, terms, n_terms, val_loss, elapsed, _ud):
            tr = me()
            fn = tr._progress_fn if tr is not None else None
            if fn is None:
                return 0
            try:
                t = [terms[i] for i in range(n_terms)] if terms else []
                r = fn(Progress(epoch, step, t, val_loss, elapsed))
                return 0 if r is None else int(r)
            except BaseException as e:  # re-raised by fit()
                tr._pending = e
                return -1
        self._progress_cb = _lib.PROGRESS_FN(thunk)
        self._check(_L.disrnn_trainer_set_progress(self._h, self._progress_cb, None))

    def set_progress(self, fn):
        """fn(Progress) after each epoch: None/0 continue, positive stop, negative abort. An
        exception aborts the fit and is re-raised by fit()."""
        self._progress_fn = fn

    def set_log(self, fn, min_level=_lib.LOG_DEBUG):
        cb = _log_thunk(fn) if fn is not None else _lib.LOG_FN()
        self._check(_L.disrnn_trainer_set_log(self.handle, cb, int(min_level), None))
        self._log_cb = cb if fn is not None else None

    def fit(self, progress=None):
        """Train. Returns OK, STOPPED or EARLY_STOPPED. `progress` overrides set_progress() for
        this call."""
        saved = self._progress_fn
        if progress is not None:
            self._progress_fn = progress
        self._pending = None
        try:
            st = _L.disrnn_trainer_fit(self.handle)
        finally:
            self._progress_fn = saved
        if self._pending is not None:
            e, self._pending = self._pending, None
            raise e
        self._check(st)
        return st

    def step(self):
        t = (c_double * 5)()
        self._check(_L.disrnn_trainer_step(self.handle, t, 5))
        return Terms(*t)

    def gradient(self, samples):
        p, n, _keep = _sizes_in(samples)
        t = (c_double * 5)()
        g = _Out(self.model.num_params())
        self._check(_L.disrnn_trainer_gradient(self.handle, p, n, t, 5, g.ptr, g.n))
        return Terms(*t), g.result()

    def apply(self, grad):
        p, n, _keep = _doubles_in(grad, 0, "grad")
        self._check(_L.disrnn_trainer_apply(self.handle, p, n))

    def evaluate(self, ds):
        t = (c_double * 5)()
        self._check(_L.disrnn_trainer_evaluate(self.handle, ds.handle, t, 5))
        return Terms(*t)

    def progress(self):
        """(steps, epochs) completed."""
        s, e = c_int64(), c_int64()
        self._check(_L.disrnn_trainer_progress(self.handle, byref(s), byref(e)))
        return s.value, e.value

    def save(self, path):
        self._check(_L.disrnn_trainer_save(self.handle, os.fsencode(path)))

    def load(self, path):
        self._check(_L.disrnn_trainer_load(self.handle, os.fsencode(path)))


# ----------------------------------------------------------------------------------------------
# Functions without a handle

def _fail(st, name):
    if st < 0:
        raise DisrnnError(st, "%s failed: %s" % (name, status_string(st)))


def align_r2(reference, ref_groups, fit, fit_groups):
    """Group-aligned latent R^2. reference: K_ref x n column-major ((n, K_ref) numpy), fit:
    K_fit x n. Returns Alignment(r2, r2_matrix, assignment, aligned)."""
    k_ref, k_fit = sum(int(g) for g in ref_groups), sum(int(g) for g in fit_groups)
    rp, n, k1 = _doubles_in(reference, k_ref, "reference")
    fp, n2, k2 = _doubles_in(fit, k_fit, "fit")
    if n != n2:
        raise DisrnnError(_lib.ERR_INVALID_ARG, "reference has %d samples, fit has %d" % (n, n2))
    rg, nrg, k3 = _sizes_in(ref_groups)
    fg, nfg, k4 = _sizes_in(fit_groups)
    r2 = c_double()
    mat = (c_double * max(nrg * nfg, 1))()
    asg = (c_size_t * max(nrg, 1))()
    aligned = _Out(k_ref * n)
    st = _L.disrnn_align_r2(n, rp, k_ref, rg, nrg, fp, k_fit, fg, nfg, byref(r2), mat, asg, aligned.ptr, k_ref)
    del k1, k2, k3, k4
    _fail(st, "disrnn_align_r2")
    return Alignment(r2.value, list(mat[:nrg * nfg]), list(asg[:nrg]), aligned.result(k_ref))


def assignment_max(rows, weight):
    """Exact max-weight assignment of `rows` rows (weight column-major rows x cols)."""
    wp, cols, _keep = _doubles_in(weight, int(rows), "weight")
    a = (c_size_t * max(int(rows), 1))()
    total = c_double()
    _fail(_L.disrnn_assignment_max(int(rows), cols, wp, int(rows), a, byref(total)), "disrnn_assignment_max")
    return list(a[:int(rows)]), total.value


def compare_matrices(a, b):
    """(corr, rmse, r2, mae) of b against a."""
    ap, n, k1 = _doubles_in(a, 0, "a")
    bp, n2, k2 = _doubles_in(b, 0, "b")
    if n != n2:
        raise DisrnnError(_lib.ERR_INVALID_ARG, "arrays of %d and %d values" % (n, n2))
    out = (c_double * 4)()
    _fail(_L.disrnn_compare_matrices(n, ap, bp, out, 4), "disrnn_compare_matrices")
    del k1, k2
    return tuple(out)


def mixture_pc(group_sizes, mu, s, n_mc=1, seed=0):
    """(PC, TC) of a Gaussian mixture: mu K x n column-major ((n, K) numpy), s K values."""
    k = sum(int(g) for g in group_sizes)
    gp, ng, k1 = _sizes_in(group_sizes)
    mp, n, k2 = _doubles_in(mu, k, "mu")
    sp, ns, k3 = _doubles_in(s, 0, "s")
    if ns != k:
        raise DisrnnError(_lib.ERR_INVALID_ARG, "s has %d values, expected %d" % (ns, k))
    pc, tc = c_double(), c_double()
    _fail(_L.disrnn_mixture_pc(k, gp, ng, n, mp, k, sp, int(n_mc), int(seed), byref(pc), byref(tc)),
          "disrnn_mixture_pc")
    del k1, k2, k3
    return pc.value, tc.value


def smooth_gaussian(n_obs, x, sigma_bins):
    """Smooth each channel of bin-major N x T data in time."""
    xp, t, _keep = _doubles_in(x, int(n_obs), "x")
    out = _Out(int(n_obs) * t)
    _fail(_L.disrnn_smooth_gaussian(int(n_obs), t, xp, float(sigma_bins), out.ptr), "disrnn_smooth_gaussian")
    return out.result(int(n_obs))

