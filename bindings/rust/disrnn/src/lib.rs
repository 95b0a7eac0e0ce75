//! Safe Rust wrapper of libdisrnn (disentangled low-rank RNNs for neural population recordings).
//!
//! - Handles ([`Config`], [`Model`], [`Dataset`], [`Trainer`]) own their C objects and free them on
//!   `Drop`. A [`Trainer`] borrows its model mutably and its datasets immutably for its lifetime,
//!   so the borrow checker enforces the C rule that they outlive it and are not used elsewhere
//!   while it runs.
//! - Every fallible call returns [`Result`]; an [`Error`] carries the status code and the message
//!   the library left on the handle.
//! - Arrays are slices and `Vec<f64>` in the library's layout: column-major, a trial of N channels
//!   over T bins stored bin-major (the N values of one bin contiguous), i.e. `x[t * n + i]`.
//! - Callbacks are Rust closures behind trampolines that catch panics: nothing unwinds into C. A
//!   panicking progress callback aborts the fit, which returns [`Status::Callback`] with the panic
//!   text in the message.
//!
//! Handles are `Send` but not `Sync`: even `const` C functions record their failure message on the
//! handle, so one handle must not be used from two threads at once.
#![deny(unsafe_op_in_unsafe_fn)]

pub use disrnn_sys as sys;

use std::ffi::{CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::ptr::{self, NonNull};

// ----------------------------------------------------------------------------------------------
// Status and errors

/// Status codes of the C API (`enum disrnn_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Stopped,
    EarlyStopped,
    InvalidArg,
    NoMem,
    BufferTooSmall,
    NonFinite,
    Lapack,
    Callback,
    BadState,
    Io,
    Corrupt,
    Version,
    Unsupported,
    Data,
    /// A value this wrapper does not know (a newer library).
    Other(i32),
}

impl Status {
    /// The status of a raw code.
    pub fn from_code(code: i32) -> Status {
        match code {
            sys::DISRNN_OK => Status::Ok,
            sys::DISRNN_STOPPED => Status::Stopped,
            sys::DISRNN_EARLY_STOPPED => Status::EarlyStopped,
            sys::DISRNN_ERR_INVALID_ARG => Status::InvalidArg,
            sys::DISRNN_ERR_NOMEM => Status::NoMem,
            sys::DISRNN_ERR_BUFFER_TOO_SMALL => Status::BufferTooSmall,
            sys::DISRNN_ERR_NONFINITE => Status::NonFinite,
            sys::DISRNN_ERR_LAPACK => Status::Lapack,
            sys::DISRNN_ERR_CALLBACK => Status::Callback,
            sys::DISRNN_ERR_BAD_STATE => Status::BadState,
            sys::DISRNN_ERR_IO => Status::Io,
            sys::DISRNN_ERR_CORRUPT => Status::Corrupt,
            sys::DISRNN_ERR_VERSION => Status::Version,
            sys::DISRNN_ERR_UNSUPPORTED => Status::Unsupported,
            sys::DISRNN_ERR_DATA => Status::Data,
            other => Status::Other(other),
        }
    }
    /// The raw code.
    pub fn code(self) -> i32 {
        match self {
            Status::Ok => sys::DISRNN_OK,
            Status::Stopped => sys::DISRNN_STOPPED,
            Status::EarlyStopped => sys::DISRNN_EARLY_STOPPED,
            Status::InvalidArg => sys::DISRNN_ERR_INVALID_ARG,
            Status::NoMem => sys::DISRNN_ERR_NOMEM,
            Status::BufferTooSmall => sys::DISRNN_ERR_BUFFER_TOO_SMALL,
            Status::NonFinite => sys::DISRNN_ERR_NONFINITE,
            Status::Lapack => sys::DISRNN_ERR_LAPACK,
            Status::Callback => sys::DISRNN_ERR_CALLBACK,
            Status::BadState => sys::DISRNN_ERR_BAD_STATE,
            Status::Io => sys::DISRNN_ERR_IO,
            Status::Corrupt => sys::DISRNN_ERR_CORRUPT,
            Status::Version => sys::DISRNN_ERR_VERSION,
            Status::Unsupported => sys::DISRNN_ERR_UNSUPPORTED,
            Status::Data => sys::DISRNN_ERR_DATA,
            Status::Other(c) => c,
        }
    }
}

/// The library's name and meaning of a status code (`disrnn_status_string`).
pub fn status_string(code: i32) -> &'static str {
    // SAFETY: the library returns a static NUL-terminated string for any value.
    unsafe { static_str(sys::disrnn_status_string(code)) }
}

/// A failed call: the status and the message the library left on the handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    status: Status,
    message: String,
}

impl Error {
    fn new(code: c_int, message: String) -> Error {
        let message = if message.is_empty() { status_string(code).to_string() } else { message };
        Error { status: Status::from_code(code), message }
    }
    /// A failure detected by this wrapper before calling the library (e.g. a slice whose
    /// length is not a multiple of the number of channels).
    fn invalid(message: String) -> Error {
        Error { status: Status::InvalidArg, message }
    }
    /// The status code.
    pub fn status(&self) -> Status {
        self.status
    }
    /// The message (the handle's last-error text, or the status name when there was none).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.message, status_string(self.status.code()))
    }
}

impl std::error::Error for Error {}

/// Result of every fallible call.
pub type Result<T> = std::result::Result<T, Error>;

/// SAFETY: p must be NULL or a NUL-terminated string that lives for the whole program.
unsafe fn static_str(p: *const c_char) -> &'static str {
    if p.is_null() {
        return "";
    }
    // SAFETY: per the function contract.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("")
}

/// SAFETY: p must be NULL or a NUL-terminated string valid for the duration of the call.
unsafe fn owned_str(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: per the function contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn msg_buffer_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn path_cstring(path: &Path) -> Result<CString> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().into_owned().into_bytes();
    CString::new(bytes).map_err(|_| Error::invalid(format!("path {} contains a NUL byte", path.display())))
}

fn mul(a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| Error::invalid(format!("size {a} x {b} overflows")))
}

/// Number of columns of a slice holding a rows x cols column-major matrix.
fn cols_of(len: usize, rows: usize, what: &str) -> Result<usize> {
    if rows == 0 || len % rows != 0 {
        return Err(Error::invalid(format!(
            "{what} has {len} values, not a whole number of columns of {rows}"
        )));
    }
    Ok(len / rows)
}

fn opt_ptr<T>(s: Option<&[T]>) -> *const T {
    s.map_or(ptr::null(), |v| v.as_ptr())
}

// ----------------------------------------------------------------------------------------------
// Version

/// Run-time version number of the loaded library (major * 10000 + minor * 100 + patch).
pub fn version_number() -> i32 {
    // SAFETY: no arguments, no state.
    unsafe { sys::disrnn_version_number() }
}

/// Run-time version string of the loaded library.
pub fn version_string() -> &'static str {
    // SAFETY: static storage.
    unsafe { static_str(sys::disrnn_version_string()) }
}

/// Checks that the loaded library is the one these declarations were generated for: before 1.0
/// every minor release may change the ABI, so major and minor must match and the patch must not
/// be older. Constructors call it (one cheap call into the library).
pub fn check_version() -> Result<()> {
    let have = version_number();
    let want = sys::DISRNN_VERSION_NUMBER;
    if have / 100 != want / 100 || have < want {
        return Err(Error {
            status: Status::Version,
            message: format!(
                "the loaded libdisrnn is version {} ({have}), these bindings need {}.{}.x with patch >= {}",
                version_string(),
                want / 10000,
                (want / 100) % 100,
                want % 100
            ),
        });
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------------
// Enumerations

macro_rules! int_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $val:path),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            /// The C value.
            pub fn code(self) -> c_int { match self { $($name::$var => $val),+ } }
        }
    };
}

int_enum!(
    /// Model option keys (`enum disrnn_option`).
    ModelOption {
        Sigma = sys::DISRNN_OPT_SIGMA,
        Padding = sys::DISRNN_OPT_PADDING,
        Obs = sys::DISRNN_OPT_OBS,
        NumInputs = sys::DISRNN_OPT_NUM_INPUTS,
        InputE = sys::DISRNN_OPT_INPUT_E,
        InputD = sys::DISRNN_OPT_INPUT_D,
        StdMode = sys::DISRNN_OPT_STD_MODE,
        Kappa = sys::DISRNN_OPT_KAPPA,
        StdValue = sys::DISRNN_OPT_STD_VALUE,
        NTot = sys::DISRNN_OPT_N_TOT,
        Beta = sys::DISRNN_OPT_BETA,
        Alpha = sys::DISRNN_OPT_ALPHA,
    }
);
int_enum!(
    /// Trainer setting keys (`enum disrnn_train_option`).
    TrainOption {
        Optimizer = sys::DISRNN_TRAIN_OPTIMIZER,
        Lr = sys::DISRNN_TRAIN_LR,
        Beta1 = sys::DISRNN_TRAIN_BETA1,
        Beta2 = sys::DISRNN_TRAIN_BETA2,
        Eps = sys::DISRNN_TRAIN_EPS,
        WeightDecay = sys::DISRNN_TRAIN_WEIGHT_DECAY,
        BatchSize = sys::DISRNN_TRAIN_BATCH_SIZE,
        Epochs = sys::DISRNN_TRAIN_EPOCHS,
        MaxSteps = sys::DISRNN_TRAIN_MAX_STEPS,
        ClipNorm = sys::DISRNN_TRAIN_CLIP_NORM,
        Schedule = sys::DISRNN_TRAIN_SCHEDULE,
        LrGamma = sys::DISRNN_TRAIN_LR_GAMMA,
        LrMin = sys::DISRNN_TRAIN_LR_MIN,
        Patience = sys::DISRNN_TRAIN_PATIENCE,
        KeepBest = sys::DISRNN_TRAIN_KEEP_BEST,
        Shuffle = sys::DISRNN_TRAIN_SHUFFLE,
        DropLast = sys::DISRNN_TRAIN_DROP_LAST,
        Threads = sys::DISRNN_TRAIN_THREADS,
    }
);
int_enum!(
    /// Parameter blocks (`enum disrnn_block`).
    Block {
        A = sys::DISRNN_BLOCK_A,
        B = sys::DISRNN_BLOCK_B,
        BiasC = sys::DISRNN_BLOCK_BIAS_C,
        BiasD = sys::DISRNN_BLOCK_BIAS_D,
        Rho = sys::DISRNN_BLOCK_RHO,
        E = sys::DISRNN_BLOCK_E,
        D = sys::DISRNN_BLOCK_D,
        LogS = sys::DISRNN_BLOCK_LOG_S,
    }
);
int_enum!(
    /// Kind of values of a dataset (`enum disrnn_data_kind`).
    DataKind {
        Continuous = sys::DISRNN_DATA_CONTINUOUS,
        Counts = sys::DISRNN_DATA_COUNTS,
    }
);
int_enum!(
    /// Connectivity matrices (`enum disrnn_conn`).
    Conn {
        W = sys::DISRNN_CONN_W,
        WGroup = sys::DISRNN_CONN_W_GROUP,
        J = sys::DISRNN_CONN_J,
        Bias = sys::DISRNN_CONN_BIAS,
    }
);

/// Integer values of the enumerated options, for [`Config::set_int`] and
/// [`Trainer::set_int`] (the C enumerations, as `i64`).
pub mod value {
    use super::sys;
    pub const SIGMA_TANH: i64 = sys::DISRNN_SIGMA_TANH as i64;
    pub const SIGMA_IDENTITY: i64 = sys::DISRNN_SIGMA_IDENTITY as i64;
    pub const SIGMA_RELU: i64 = sys::DISRNN_SIGMA_RELU as i64;
    pub const PAD_REPEAT: i64 = sys::DISRNN_PAD_REPEAT as i64;
    pub const PAD_ZERO: i64 = sys::DISRNN_PAD_ZERO as i64;
    pub const PAD_DROP: i64 = sys::DISRNN_PAD_DROP as i64;
    pub const OBS_GAUSSIAN: i64 = sys::DISRNN_OBS_GAUSSIAN as i64;
    pub const OBS_GAUSSIAN_RELU: i64 = sys::DISRNN_OBS_GAUSSIAN_RELU as i64;
    pub const OBS_POISSON_SOFTPLUS: i64 = sys::DISRNN_OBS_POISSON_SOFTPLUS as i64;
    pub const OBS_POISSON_EXP: i64 = sys::DISRNN_OBS_POISSON_EXP as i64;
    pub const INPUT_NONE: i64 = sys::DISRNN_INPUT_NONE as i64;
    pub const INPUT_LEARNED: i64 = sys::DISRNN_INPUT_LEARNED as i64;
    pub const INPUT_FIXED: i64 = sys::DISRNN_INPUT_FIXED as i64;
    pub const STD_SCOTT: i64 = sys::DISRNN_STD_SCOTT as i64;
    pub const STD_FIXED: i64 = sys::DISRNN_STD_FIXED as i64;
    pub const STD_LEARNED: i64 = sys::DISRNN_STD_LEARNED as i64;
    pub const OPTIM_ADAM: i64 = sys::DISRNN_OPTIM_ADAM as i64;
    pub const OPTIM_ADAMW: i64 = sys::DISRNN_OPTIM_ADAMW as i64;
    pub const SCHED_CONSTANT: i64 = sys::DISRNN_SCHED_CONSTANT as i64;
    pub const SCHED_EXPONENTIAL: i64 = sys::DISRNN_SCHED_EXPONENTIAL as i64;
    pub const SCHED_COSINE: i64 = sys::DISRNN_SCHED_COSINE as i64;
}

/// Flags of [`Model::generate`] (`enum disrnn_gen_flags`), combined with `|`.
pub mod gen {
    use super::sys;
    pub const MEAN: i32 = sys::DISRNN_GEN_MEAN;
    pub const LATENT_NOISE: i32 = sys::DISRNN_GEN_LATENT_NOISE;
    pub const OBS_NOISE: i32 = sys::DISRNN_GEN_OBS_NOISE;
}

/// Log levels (`enum disrnn_log_level`).
pub mod log_level {
    use super::sys;
    pub const DEBUG: i32 = sys::DISRNN_LOG_DEBUG;
    pub const INFO: i32 = sys::DISRNN_LOG_INFO;
    pub const WARN: i32 = sys::DISRNN_LOG_WARN;
    pub const ERROR: i32 = sys::DISRNN_LOG_ERROR;
}

/// Valid range of an option: (lo, hi, is_int).
pub fn option_bounds(option: ModelOption) -> Result<(f64, f64, bool)> {
    let (mut lo, mut hi, mut is_int) = (0.0, 0.0, 0);
    // SAFETY: out-pointers to locals.
    let st = unsafe { sys::disrnn_option_bounds(option.code(), &mut lo, &mut hi, &mut is_int) };
    if st < 0 {
        return Err(Error::new(st, String::new()));
    }
    Ok((lo, hi, is_int != 0))
}

/// Valid range of a trainer setting: (lo, hi, is_int).
pub fn train_option_bounds(option: TrainOption) -> Result<(f64, f64, bool)> {
    let (mut lo, mut hi, mut is_int) = (0.0, 0.0, 0);
    // SAFETY: out-pointers to locals.
    let st = unsafe { sys::disrnn_train_option_bounds(option.code(), &mut lo, &mut hi, &mut is_int) };
    if st < 0 {
        return Err(Error::new(st, String::new()));
    }
    Ok((lo, hi, is_int != 0))
}

/// The loss terms of one evaluation (`enum disrnn_term`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Terms {
    /// Total: NLL + KL + beta * PC + alpha * BD.
    pub loss: f64,
    pub nll: f64,
    pub kl: f64,
    pub pc: f64,
    pub bd: f64,
}

impl Terms {
    const LEN: usize = 5;
    fn from_array(t: &[f64; 5]) -> Terms {
        Terms { loss: t[0], nll: t[1], kl: t[2], pc: t[3], bd: t[4] }
    }
}

/// Reconstruction metrics (`enum disrnn_metric`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    pub r2: f64,
    pub loglik: f64,
    pub bits_per_spike: f64,
    pub mse: f64,
}

// ----------------------------------------------------------------------------------------------
// Callbacks

type LogFn = dyn FnMut(i32, &str) + Send + 'static;

unsafe extern "C" fn log_trampoline(level: c_int, msg: *const c_char, user_data: *mut c_void) {
    if user_data.is_null() {
        return;
    }
    // SAFETY: user_data is the Box<Box<LogFn>> owned by the handle wrapper that installed it;
    // the wrapper removes the callback before dropping the box.
    let f = unsafe { &mut *(user_data as *mut Box<LogFn>) };
    // SAFETY: the library passes a NUL-terminated message valid during the call.
    let text = unsafe { owned_str(msg) };
    // A panic must not unwind into C; a logger has nothing to report it to, so it is dropped.
    let _ = catch_unwind(AssertUnwindSafe(|| f(level, &text)));
}

fn install_log(
    slot: &mut Option<Box<Box<LogFn>>>,
    f: Option<Box<LogFn>>,
    set: impl FnOnce(sys::disrnn_log_fn, *mut c_void) -> c_int,
) -> c_int {
    match f {
        None => {
            let st = set(None, ptr::null_mut());
            if st >= 0 {
                *slot = None;
            }
            st
        }
        Some(f) => {
            let mut boxed: Box<Box<LogFn>> = Box::new(f);
            let ud = &mut *boxed as *mut Box<LogFn> as *mut c_void;
            let st = set(Some(log_trampoline), ud);
            if st >= 0 {
                // The old box (if any) is dropped only after the library points at the new one.
                *slot = Some(boxed);
            }
            st
        }
    }
}

/// What a progress callback sees after each epoch.
#[derive(Debug)]
pub struct Progress<'t> {
    /// Epochs completed (1-based).
    pub epoch: i64,
    /// Optimiser steps so far.
    pub step: i64,
    /// The epoch's mean loss terms, indexed by `enum disrnn_term` (`terms[0]` is the loss).
    pub terms: &'t [f64],
    /// Validation loss (NaN without a validation set).
    pub val_loss: f64,
    /// Seconds since the fit started.
    pub elapsed: f64,
}

/// What a progress callback asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop; the fit returns [`FitOutcome::Stopped`].
    Stop,
    /// Abort; the fit returns an error with [`Status::Callback`].
    Abort,
}

struct ProgressSlot<'f> {
    f: Box<dyn FnMut(&Progress<'_>) -> Control + 'f>,
    panic: Option<String>,
}

unsafe extern "C" fn progress_trampoline(
    epoch: i64,
    step: i64,
    terms: *const f64,
    n_terms: usize,
    val_loss: f64,
    elapsed: f64,
    user_data: *mut c_void,
) -> c_int {
    if user_data.is_null() {
        return 0;
    }
    // SAFETY: user_data is the ProgressSlot installed by Trainer, alive for the whole fit.
    let slot = unsafe { &mut *(user_data as *mut ProgressSlot<'_>) };
    let terms: &[f64] = if terms.is_null() || n_terms == 0 {
        &[]
    } else {
        // SAFETY: the library passes n_terms readable values valid during the call.
        unsafe { std::slice::from_raw_parts(terms, n_terms) }
    };
    let p = Progress { epoch, step, terms, val_loss, elapsed };
    match catch_unwind(AssertUnwindSafe(|| (slot.f)(&p))) {
        Ok(Control::Continue) => 0,
        Ok(Control::Stop) => 1,
        Ok(Control::Abort) => -1,
        Err(payload) => {
            let text = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "non-string panic payload".to_string()
            };
            slot.panic = Some(text);
            -1
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Config

/// A model configuration (`disrnn_config_t`).
pub struct Config {
    raw: NonNull<sys::disrnn_config_t>,
}

// SAFETY: the handle has no thread affinity; &mut self / ownership prevent concurrent use.
unsafe impl Send for Config {}

impl Drop for Config {
    fn drop(&mut self) {
        // SAFETY: owned, freed once.
        unsafe { sys::disrnn_config_free(self.raw.as_ptr()) }
    }
}

impl Config {
    /// A configuration for N channels and K latent dimensions (defaults as in the header).
    pub fn new(n_obs: usize, n_latent: usize) -> Result<Config> {
        check_version()?;
        let mut raw = ptr::null_mut();
        // SAFETY: out-pointer to a local.
        let st = unsafe { sys::disrnn_config_create(&mut raw, n_obs, n_latent) };
        if st < 0 {
            return Err(Error::new(
                st,
                format!("disrnn_config_create(n_obs = {n_obs}, n_latent = {n_latent}) failed: {}", status_string(st)),
            ));
        }
        NonNull::new(raw).map(|raw| Config { raw }).ok_or_else(|| Error::new(sys::DISRNN_ERR_NOMEM, String::new()))
    }
    /// The raw handle (for calls this wrapper does not cover).
    pub fn as_ptr(&self) -> *mut sys::disrnn_config_t {
        self.raw.as_ptr()
    }
    /// The handle's last error message ("" when none).
    pub fn last_error(&self) -> String {
        // SAFETY: valid handle; text copied before any other call.
        unsafe { owned_str(sys::disrnn_config_last_error(self.raw.as_ptr())) }
    }
    fn check(&self, st: c_int) -> Result<()> {
        if st < 0 {
            Err(Error::new(st, self.last_error()))
        } else {
            Ok(())
        }
    }
    /// Latent groups: consecutive sizes summing to K.
    pub fn set_groups(&mut self, sizes: &[usize]) -> Result<()> {
        // SAFETY: pointer and length of a live slice.
        self.check(unsafe { sys::disrnn_config_set_groups(self.raw.as_ptr(), sizes.as_ptr(), sizes.len()) })
    }
    /// History kernel psi (`psi[0]` for the previous bin).
    pub fn set_kernel(&mut self, psi: &[f64]) -> Result<()> {
        // SAFETY: pointer and length of a live slice.
        self.check(unsafe { sys::disrnn_config_set_kernel(self.raw.as_ptr(), psi.as_ptr(), psi.len()) })
    }
    /// An integer-valued option (values in [`value`]).
    pub fn set_int(&mut self, option: ModelOption, v: i64) -> Result<()> {
        // SAFETY: valid handle.
        self.check(unsafe { sys::disrnn_config_set_int(self.raw.as_ptr(), option.code(), v) })
    }
    /// A real-valued option.
    pub fn set_double(&mut self, option: ModelOption, v: f64) -> Result<()> {
        // SAFETY: valid handle.
        self.check(unsafe { sys::disrnn_config_set_double(self.raw.as_ptr(), option.code(), v) })
    }
    /// Seed of the model's generator (initialisation and noise).
    pub fn set_seed(&mut self, seed: u64) -> Result<()> {
        // SAFETY: valid handle.
        self.check(unsafe { sys::disrnn_config_set_seed(self.raw.as_ptr(), seed) })
    }
}

// ----------------------------------------------------------------------------------------------
// Model

/// Shapes of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// N observed channels.
    pub n_obs: usize,
    /// K latent dimensions.
    pub n_latent: usize,
    /// G groups.
    pub n_groups: usize,
    /// L history bins.
    pub kernel_len: usize,
    /// P known inputs.
    pub n_inputs: usize,
}

/// Shape and place of a parameter block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    pub rows: usize,
    pub cols: usize,
    /// Offset in the flat vector, `None` for a fixed block.
    pub offset: Option<usize>,
    pub learned: bool,
}

/// SVD view of W or W_g (column-major blocks).
#[derive(Clone, Debug, PartialEq)]
pub struct Svd {
    /// Rank r.
    pub rank: usize,
    /// U S, N x r.
    pub left: Vec<f64>,
    /// V^T, r x N.
    pub right: Vec<f64>,
    /// r singular values, descending.
    pub sv: Vec<f64>,
}

/// Fixed points of the latent map, each with its Jacobian's eigenvalues (K x n, column-major).
#[derive(Clone, Debug, PartialEq)]
pub struct FixedPoints {
    pub n: usize,
    pub z: Vec<f64>,
    pub eig_re: Vec<f64>,
    pub eig_im: Vec<f64>,
}

/// A DisRNN model (`disrnn_model_t`).
pub struct Model {
    raw: NonNull<sys::disrnn_model_t>,
    log: Option<Box<Box<LogFn>>>,
}

// SAFETY: the handle has no thread affinity; the log closure is Send.
unsafe impl Send for Model {}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: owned, freed once; any Trainer borrowing it has been dropped already.
        unsafe { sys::disrnn_model_free(self.raw.as_ptr()) }
    }
}

impl Model {
    fn from_raw(raw: *mut sys::disrnn_model_t) -> Result<Model> {
        NonNull::new(raw)
            .map(|raw| Model { raw, log: None })
            .ok_or_else(|| Error::new(sys::DISRNN_ERR_NOMEM, String::new()))
    }
    /// A model with parameters initialised from the configuration's seed.
    pub fn new(cfg: &Config) -> Result<Model> {
        check_version()?;
        let mut raw = ptr::null_mut();
        // SAFETY: valid configuration, out-pointer to a local.
        let st = unsafe { sys::disrnn_model_create(&mut raw, cfg.raw.as_ptr()) };
        if st < 0 {
            return Err(Error::new(st, cfg.last_error()));
        }
        Model::from_raw(raw)
    }
    /// Deep copy. The copy has no log callback (the original's closure stays with the original).
    pub fn try_clone(&self) -> Result<Model> {
        let mut raw = ptr::null_mut();
        // SAFETY: valid handle, out-pointer to a local.
        let st = unsafe { sys::disrnn_model_clone(&mut raw, self.raw.as_ptr()) };
        self.check(st)?;
        let m = Model::from_raw(raw)?;
        // The C clone copies the callback and its user_data, which points at our box: detach it.
        // SAFETY: valid handle.
        unsafe { sys::disrnn_model_set_log(m.raw.as_ptr(), None, 0, ptr::null_mut()) };
        Ok(m)
    }
    /// Load a model file.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        check_version()?;
        let p = path_cstring(path.as_ref())?;
        let mut raw = ptr::null_mut();
        let mut msg = [0u8; 512];
        // SAFETY: NUL-terminated path, message buffer with its capacity.
        let st = unsafe { sys::disrnn_model_load(&mut raw, p.as_ptr(), msg.as_mut_ptr() as *mut c_char, msg.len()) };
        if st < 0 {
            return Err(Error::new(st, msg_buffer_text(&msg)));
        }
        Model::from_raw(raw)
    }
    /// Load a model from bytes produced by [`Model::save_buffer`].
    pub fn load_buffer(bytes: &[u8]) -> Result<Model> {
        check_version()?;
        let mut raw = ptr::null_mut();
        let mut msg = [0u8; 512];
        // SAFETY: pointer and length of a live slice, message buffer with its capacity.
        let st = unsafe {
            sys::disrnn_model_load_buffer(
                &mut raw,
                bytes.as_ptr() as *const c_void,
                bytes.len(),
                msg.as_mut_ptr() as *mut c_char,
                msg.len(),
            )
        };
        if st < 0 {
            return Err(Error::new(st, msg_buffer_text(&msg)));
        }
        Model::from_raw(raw)
    }
    /// The raw handle (for calls this wrapper does not cover).
    pub fn as_ptr(&self) -> *mut sys::disrnn_model_t {
        self.raw.as_ptr()
    }
    /// The handle's last error message ("" when none).
    pub fn last_error(&self) -> String {
        // SAFETY: valid handle; text copied at once.
        unsafe { owned_str(sys::disrnn_model_last_error(self.raw.as_ptr())) }
    }
    fn check(&self, st: c_int) -> Result<()> {
        if st < 0 {
            Err(Error::new(st, self.last_error()))
        } else {
            Ok(())
        }
    }
    /// Install a log callback receiving (level, message) for levels >= min_level.
    pub fn set_log<F: FnMut(i32, &str) + Send + 'static>(&mut self, min_level: i32, f: F) -> Result<()> {
        let raw = self.raw.as_ptr();
        // SAFETY: valid handle; the user_data box is kept in self.log while installed.
        let st = install_log(&mut self.log, Some(Box::new(f)), |f, ud| unsafe {
            sys::disrnn_model_set_log(raw, f, min_level, ud)
        });
        self.check(st)
    }
    /// Remove the log callback.
    pub fn clear_log(&mut self) -> Result<()> {
        let raw = self.raw.as_ptr();
        // SAFETY: valid handle.
        let st = install_log(&mut self.log, None, |f, ud| unsafe { sys::disrnn_model_set_log(raw, f, 0, ud) });
        self.check(st)
    }
    /// N, K, G, L, P.
    pub fn dims(&self) -> Result<Dims> {
        let mut d = Dims { n_obs: 0, n_latent: 0, n_groups: 0, kernel_len: 0, n_inputs: 0 };
        // SAFETY: out-pointers to fields of a local.
        let st = unsafe {
            sys::disrnn_model_dims(
                self.raw.as_ptr(),
                &mut d.n_obs,
                &mut d.n_latent,
                &mut d.n_groups,
                &mut d.kernel_len,
                &mut d.n_inputs,
            )
        };
        self.check(st).map(|_| d)
    }
    /// Group sizes H_1..H_G.
    pub fn groups(&self) -> Result<Vec<usize>> {
        let g = self.dims()?.n_groups;
        let mut v = vec![0usize; g];
        // SAFETY: buffer of g values.
        let st = unsafe { sys::disrnn_model_groups(self.raw.as_ptr(), v.as_mut_ptr(), v.len()) };
        self.check(st).map(|_| v)
    }
    /// An integer-valued option.
    pub fn get_int(&self, option: ModelOption) -> Result<i64> {
        let mut v = 0i64;
        // SAFETY: out-pointer to a local.
        let st = unsafe { sys::disrnn_model_get_int(self.raw.as_ptr(), option.code(), &mut v) };
        self.check(st).map(|_| v)
    }
    /// A real-valued option.
    pub fn get_double(&self, option: ModelOption) -> Result<f64> {
        let mut v = 0.0f64;
        // SAFETY: out-pointer to a local.
        let st = unsafe { sys::disrnn_model_get_double(self.raw.as_ptr(), option.code(), &mut v) };
        self.check(st).map(|_| v)
    }
    /// Change a mutable real-valued option (beta, alpha, N_tot).
    pub fn set_double(&mut self, option: ModelOption, v: f64) -> Result<()> {
        // SAFETY: valid handle.
        self.check(unsafe { sys::disrnn_model_set_double(self.raw.as_ptr(), option.code(), v) })
    }
    /// Number of learned parameters.
    pub fn num_params(&self) -> usize {
        // SAFETY: valid handle.
        unsafe { sys::disrnn_model_num_params(self.raw.as_ptr()) }
    }
    /// Shape and place of a block.
    pub fn block_info(&self, block: Block) -> Result<BlockInfo> {
        let (mut rows, mut cols, mut offset, mut learned) = (0usize, 0usize, 0usize, 0 as c_int);
        // SAFETY: out-pointers to locals.
        let st = unsafe {
            sys::disrnn_model_block_info(self.raw.as_ptr(), block.code(), &mut rows, &mut cols, &mut offset, &mut learned)
        };
        self.check(st)?;
        Ok(BlockInfo { rows, cols, offset: if offset == usize::MAX { None } else { Some(offset) }, learned: learned != 0 })
    }
    /// One block, rows x cols column-major.
    pub fn param(&self, block: Block) -> Result<Vec<f64>> {
        let info = self.block_info(block)?;
        let mut v = vec![0.0; mul(info.rows, info.cols)?];
        // SAFETY: buffer with its length.
        let st = unsafe { sys::disrnn_model_get_param(self.raw.as_ptr(), block.code(), v.as_mut_ptr(), v.len()) };
        self.check(st).map(|_| v)
    }
    /// Overwrite one block.
    pub fn set_param(&mut self, block: Block, values: &[f64]) -> Result<()> {
        // SAFETY: pointer and length of a live slice.
        self.check(unsafe { sys::disrnn_model_set_param(self.raw.as_ptr(), block.code(), values.as_ptr(), values.len()) })
    }
    /// The flat vector of learned parameters.
    pub fn params(&self) -> Result<Vec<f64>> {
        let mut v = vec![0.0; self.num_params()];
        // SAFETY: buffer with its length.
        let st = unsafe { sys::disrnn_model_get_params(self.raw.as_ptr(), v.as_mut_ptr(), v.len()) };
        self.check(st).map(|_| v)
    }
    /// Overwrite the flat vector of learned parameters.
    pub fn set_params(&mut self, values: &[f64]) -> Result<()> {
        // SAFETY: pointer and length of a live slice.
        self.check(unsafe { sys::disrnn_model_set_params(self.raw.as_ptr(), values.as_ptr(), values.len()) })
    }
    /// Encoder inputs h (N x M) from M columns of previous bins ((N L) x M).
    pub fn encoder_input(&self, xprev: &[f64]) -> Result<Vec<f64>> {
        let d = self.dims()?;
        let rows = mul(d.n_obs, d.kernel_len)?;
        let m = cols_of(xprev.len(), rows, "xprev")?;
        let mut h = vec![0.0; mul(d.n_obs, m)?];
        // SAFETY: xprev holds rows x m values, h holds N x m.
        let st = unsafe {
            sys::disrnn_model_encoder_input(self.raw.as_ptr(), m, xprev.as_ptr(), rows, h.as_mut_ptr(), d.n_obs)
        };
        self.check(st).map(|_| h)
    }
    /// Loss terms and (when `grad` is given, length [`Model::num_params`]) the gradient on M
    /// samples: x and h are N x M, u P x M, mask N x M, eps K x M (None draws from the model).
    #[allow(clippy::too_many_arguments)]
    pub fn loss(
        &mut self,
        x: &[f64],
        h: &[f64],
        u: Option<&[f64]>,
        mask: Option<&[u8]>,
        eps: Option<&[f64]>,
        grad: Option<&mut [f64]>,
    ) -> Result<Terms> {
        let d = self.dims()?;
        let m = cols_of(x.len(), d.n_obs, "x")?;
        let need = |s: usize, rows: usize, what: &str| -> Result<()> {
            if s != rows * m {
                Err(Error::invalid(format!("{what} has {s} values, expected {rows} x {m}")))
            } else {
                Ok(())
            }
        };
        need(h.len(), d.n_obs, "h")?;
        if let Some(u) = u {
            need(u.len(), d.n_inputs, "u")?;
        }
        if let Some(mk) = mask {
            need(mk.len(), d.n_obs, "mask")?;
        }
        if let Some(e) = eps {
            need(e.len(), d.n_latent, "eps")?;
        }
        let mut t = [0.0f64; Terms::LEN];
        let (gp, gn) = match grad {
            Some(g) => (g.as_mut_ptr(), g.len()),
            None => (ptr::null_mut(), 0),
        };
        // SAFETY: every pointer is NULL or holds the checked number of values.
        let st = unsafe {
            sys::disrnn_model_loss(
                self.raw.as_ptr(),
                m,
                x.as_ptr(),
                d.n_obs,
                h.as_ptr(),
                d.n_obs,
                opt_ptr(u),
                d.n_inputs,
                opt_ptr(mask),
                d.n_obs,
                opt_ptr(eps),
                d.n_latent,
                t.as_mut_ptr(),
                t.len(),
                gp,
                gn,
            )
        };
        self.check(st).map(|_| Terms::from_array(&t))
    }
    /// Save to a file (atomically).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let p = path_cstring(path.as_ref())?;
        // SAFETY: NUL-terminated path.
        self.check(unsafe { sys::disrnn_model_save(self.raw.as_ptr(), p.as_ptr()) })
    }
    /// Serialise into bytes.
    pub fn save_buffer(&self) -> Result<Vec<u8>> {
        let mut needed = 0usize;
        // SAFETY: measuring call with a NULL buffer.
        let st = unsafe { sys::disrnn_model_save_buffer(self.raw.as_ptr(), ptr::null_mut(), 0, &mut needed) };
        self.check(st)?;
        let mut buf = vec![0u8; needed];
        // SAFETY: buffer with its capacity.
        let st = unsafe {
            sys::disrnn_model_save_buffer(self.raw.as_ptr(), buf.as_mut_ptr() as *mut c_void, buf.len(), &mut needed)
        };
        self.check(st)?;
        buf.truncate(needed);
        Ok(buf)
    }
    fn per_sample(
        &self,
        ds: &Dataset,
        rows: usize,
        f: unsafe extern "C" fn(*const sys::disrnn_model_t, *const sys::disrnn_dataset_t, *mut f64, usize, usize) -> c_int,
    ) -> Result<Vec<f64>> {
        let s = ds.num_samples(self);
        let mut out = vec![0.0; mul(rows, s)?];
        // SAFETY: out holds rows x s values.
        let st = unsafe { f(self.raw.as_ptr(), ds.raw.as_ptr(), out.as_mut_ptr(), rows, s) };
        self.check(st).map(|_| out)
    }
    /// Posterior means, K x S (S = [`Dataset::num_samples`]).
    pub fn latents(&self, ds: &Dataset) -> Result<Vec<f64>> {
        let k = self.dims()?.n_latent;
        self.per_sample(ds, k, sys::disrnn_model_latents)
    }
    /// One-step-ahead predicted means, N x S.
    pub fn predict(&self, ds: &Dataset) -> Result<Vec<f64>> {
        let n = self.dims()?.n_obs;
        self.per_sample(ds, n, sys::disrnn_model_predict)
    }
    /// Reconstruction metrics on a dataset.
    pub fn evaluate(&self, ds: &Dataset) -> Result<Metrics> {
        let mut m = [0.0f64; 4];
        // SAFETY: buffer with its length.
        let st = unsafe { sys::disrnn_model_evaluate(self.raw.as_ptr(), ds.raw.as_ptr(), m.as_mut_ptr(), m.len()) };
        self.check(st)?;
        Ok(Metrics { r2: m[0], loglik: m[1], bits_per_spike: m[2], mse: m[3] })
    }
    /// Evaluation (PC, TC) of the aggregated posterior.
    pub fn eval_pc(&self, ds: &Dataset, n_mc: usize, seed: u64) -> Result<(f64, f64)> {
        let (mut pc, mut tc) = (0.0, 0.0);
        // SAFETY: out-pointers to locals.
        let st = unsafe { sys::disrnn_model_eval_pc(self.raw.as_ptr(), ds.raw.as_ptr(), n_mc, seed, &mut pc, &mut tc) };
        self.check(st).map(|_| (pc, tc))
    }
    /// k-step-ahead R^2 for k = 1..k_max.
    pub fn kstep_r2(&self, ds: &Dataset, k_max: usize) -> Result<Vec<f64>> {
        let mut r = vec![0.0; k_max];
        // SAFETY: buffer with its length.
        let st = unsafe { sys::disrnn_model_kstep_r2(self.raw.as_ptr(), ds.raw.as_ptr(), k_max, r.as_mut_ptr(), r.len()) };
        self.check(st).map(|_| r)
    }
    /// A connectivity matrix (column-major): W and W_g are N x N, J is K x K, the bias N x 1.
    pub fn connectivity(&self, what: Conn, group: usize) -> Result<Vec<f64>> {
        let d = self.dims()?;
        let len = match what {
            Conn::W | Conn::WGroup => mul(d.n_obs, d.n_obs)?,
            Conn::J => mul(d.n_latent, d.n_latent)?,
            Conn::Bias => d.n_obs,
        };
        let mut v = vec![0.0; len];
        // SAFETY: buffer with its length.
        let st = unsafe { sys::disrnn_model_connectivity(self.raw.as_ptr(), what.code(), group, v.as_mut_ptr(), v.len()) };
        self.check(st).map(|_| v)
    }
    /// SVD of W (`group = None`, rank K) or of W_g (rank H_g).
    pub fn svd(&self, group: Option<usize>) -> Result<Svd> {
        let d = self.dims()?;
        let rank = match group {
            None => d.n_latent,
            Some(g) => *self.groups()?.get(g).ok_or_else(|| Error::invalid(format!("group {g} out of range")))?,
        };
        let mut left = vec![0.0; mul(d.n_obs, rank)?];
        let mut right = vec![0.0; mul(d.n_obs, rank)?];
        let mut sv = vec![0.0; rank];
        // SAFETY: buffers sized for rank r = rank_cap.
        let st = unsafe {
            sys::disrnn_model_svd(
                self.raw.as_ptr(),
                group.unwrap_or(usize::MAX),
                left.as_mut_ptr(),
                right.as_mut_ptr(),
                sv.as_mut_ptr(),
                rank,
            )
        };
        self.check(st).map(|_| Svd { rank, left, right, sv })
    }
    /// Fixed points of the latent map (at most `cap` returned; `n` may be larger).
    pub fn fixed_points(&self, n_starts: usize, seed: u64, tol: f64, cap: usize) -> Result<FixedPoints> {
        let k = self.dims()?.n_latent;
        let len = mul(k, cap)?;
        let (mut z, mut re, mut im) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
        let mut n = 0usize;
        // SAFETY: buffers of K x cap values.
        let st = unsafe {
            sys::disrnn_model_fixed_points(
                self.raw.as_ptr(),
                n_starts,
                seed,
                tol,
                &mut n,
                z.as_mut_ptr(),
                re.as_mut_ptr(),
                im.as_mut_ptr(),
                cap,
            )
        };
        self.check(st)?;
        let keep = mul(k, n.min(cap))?;
        z.truncate(keep);
        re.truncate(keep);
        im.truncate(keep);
        Ok(FixedPoints { n, z, eig_re: re, eig_im: im })
    }
    /// Roll the generative RNN forward `n_steps` bins after optional initial bins (N x T0) with
    /// optional inputs (P x n_steps); `flags` from [`gen`]. Returns (x N x n_steps, z K x n_steps).
    pub fn generate(
        &self,
        x_init: Option<&[f64]>,
        n_steps: usize,
        u: Option<&[f64]>,
        flags: i32,
        seed: u64,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let d = self.dims()?;
        let t0 = match x_init {
            Some(xi) => cols_of(xi.len(), d.n_obs, "x_init")?,
            None => 0,
        };
        if let Some(u) = u {
            if u.len() != mul(d.n_inputs, n_steps)? {
                return Err(Error::invalid(format!("u has {} values, expected {} x {n_steps}", u.len(), d.n_inputs)));
            }
        }
        let mut x = vec![0.0; mul(d.n_obs, n_steps)?];
        let mut z = vec![0.0; mul(d.n_latent, n_steps)?];
        // SAFETY: every buffer holds the checked number of values.
        let st = unsafe {
            sys::disrnn_model_generate(
                self.raw.as_ptr(),
                t0,
                opt_ptr(x_init),
                d.n_obs,
                n_steps,
                opt_ptr(u),
                d.n_inputs,
                flags,
                seed,
                x.as_mut_ptr(),
                d.n_obs,
                z.as_mut_ptr(),
                d.n_latent,
            )
        };
        self.check(st).map(|_| (x, z))
    }
}

// ----------------------------------------------------------------------------------------------
// Dataset

/// A dataset of trials (`disrnn_dataset_t`).
pub struct Dataset {
    raw: NonNull<sys::disrnn_dataset_t>,
    n_obs: usize,
    n_inputs: usize,
}

// SAFETY: the handle has no thread affinity.
unsafe impl Send for Dataset {}

impl Drop for Dataset {
    fn drop(&mut self) {
        // SAFETY: owned, freed once; trainers borrowing it are gone.
        unsafe { sys::disrnn_dataset_free(self.raw.as_ptr()) }
    }
}

impl Dataset {
    /// An empty dataset of N channels and P inputs.
    pub fn new(n_obs: usize, n_inputs: usize, kind: DataKind) -> Result<Dataset> {
        check_version()?;
        let mut raw = ptr::null_mut();
        // SAFETY: out-pointer to a local.
        let st = unsafe { sys::disrnn_dataset_create(&mut raw, n_obs, n_inputs, kind.code()) };
        if st < 0 {
            return Err(Error::new(
                st,
                format!("disrnn_dataset_create(n_obs = {n_obs}, n_inputs = {n_inputs}) failed: {}", status_string(st)),
            ));
        }
        Dataset::wrap(raw, n_obs, n_inputs)
    }
    fn wrap(raw: *mut sys::disrnn_dataset_t, n_obs: usize, n_inputs: usize) -> Result<Dataset> {
        NonNull::new(raw)
            .map(|raw| Dataset { raw, n_obs, n_inputs })
            .ok_or_else(|| Error::new(sys::DISRNN_ERR_NOMEM, String::new()))
    }
    /// The raw handle.
    pub fn as_ptr(&self) -> *mut sys::disrnn_dataset_t {
        self.raw.as_ptr()
    }
    /// N channels.
    pub fn n_obs(&self) -> usize {
        self.n_obs
    }
    /// P inputs.
    pub fn n_inputs(&self) -> usize {
        self.n_inputs
    }
    /// The handle's last error message.
    pub fn last_error(&self) -> String {
        // SAFETY: valid handle; text copied at once.
        unsafe { owned_str(sys::disrnn_dataset_last_error(self.raw.as_ptr())) }
    }
    fn check(&self, st: c_int) -> Result<()> {
        if st < 0 {
            Err(Error::new(st, self.last_error()))
        } else {
            Ok(())
        }
    }
    /// Append a trial: x is N x T bin-major (`x[t * N + i]`), u P x T, mask N x T (0 = missing).
    pub fn add_trial(&mut self, x: &[f64], u: Option<&[f64]>, mask: Option<&[u8]>) -> Result<()> {
        let t = cols_of(x.len(), self.n_obs, "x")?;
        if let Some(u) = u {
            if u.len() != mul(self.n_inputs, t)? {
                return Err(Error::invalid(format!("u has {} values, expected {} x {t}", u.len(), self.n_inputs)));
            }
        }
        if let Some(mk) = mask {
            if mk.len() != x.len() {
                return Err(Error::invalid(format!("mask has {} values, expected {} x {t}", mk.len(), self.n_obs)));
            }
        }
        // SAFETY: every pointer is NULL or holds the checked number of values.
        let st = unsafe {
            sys::disrnn_dataset_add_trial(
                self.raw.as_ptr(),
                t,
                x.as_ptr(),
                self.n_obs,
                opt_ptr(u),
                self.n_inputs,
                opt_ptr(mask),
                self.n_obs,
            )
        };
        self.check(st)
    }
    /// Number of trials.
    pub fn num_trials(&self) -> usize {
        // SAFETY: valid handle.
        unsafe { sys::disrnn_dataset_num_trials(self.raw.as_ptr()) }
    }
    /// Length of a trial (0 for a bad index).
    pub fn trial_length(&self, trial: usize) -> usize {
        // SAFETY: valid handle.
        unsafe { sys::disrnn_dataset_trial_length(self.raw.as_ptr(), trial) }
    }
    /// Number of selected bins.
    pub fn num_selected(&self) -> usize {
        // SAFETY: valid handle.
        unsafe { sys::disrnn_dataset_num_selected(self.raw.as_ptr()) }
    }
    /// Number of samples a model sees.
    pub fn num_samples(&self, model: &Model) -> usize {
        // SAFETY: valid handles.
        unsafe { sys::disrnn_dataset_num_samples(self.raw.as_ptr(), model.raw.as_ptr()) }
    }
    /// (trial, bin) of each sample of a model.
    pub fn sample_index(&self, model: &Model) -> Result<(Vec<usize>, Vec<usize>)> {
        let s = self.num_samples(model);
        let (mut tr, mut bin) = (vec![0usize; s], vec![0usize; s]);
        // SAFETY: two buffers of s values.
        let st = unsafe {
            sys::disrnn_dataset_sample_index(self.raw.as_ptr(), model.raw.as_ptr(), tr.as_mut_ptr(), bin.as_mut_ptr(), s)
        };
        self.check(st).map(|_| (tr, bin))
    }
    fn subset(&self, st: c_int, raw: *mut sys::disrnn_dataset_t) -> Result<Dataset> {
        self.check(st)?;
        Dataset::wrap(raw, self.n_obs, self.n_inputs)
    }
    /// A new dataset with copies of the given trials.
    pub fn subset_trials(&self, trials: &[usize]) -> Result<Dataset> {
        let mut raw = ptr::null_mut();
        // SAFETY: pointer and length of a live slice.
        let st = unsafe { sys::disrnn_dataset_subset_trials(self.raw.as_ptr(), trials.as_ptr(), trials.len(), &mut raw) };
        self.subset(st, raw)
    }
    /// A new dataset selecting the bins with t % period == phase.
    pub fn subset_interleaved(&self, period: usize, phase: usize) -> Result<Dataset> {
        let mut raw = ptr::null_mut();
        // SAFETY: out-pointer to a local.
        let st = unsafe { sys::disrnn_dataset_subset_interleaved(self.raw.as_ptr(), period, phase, &mut raw) };
        self.subset(st, raw)
    }
    /// A new dataset selecting the given (trial, bin) pairs.
    pub fn subset_bins(&self, trial: &[usize], bin: &[usize]) -> Result<Dataset> {
        if trial.len() != bin.len() {
            return Err(Error::invalid(format!("{} trial indices but {} bin indices", trial.len(), bin.len())));
        }
        let mut raw = ptr::null_mut();
        // SAFETY: two slices of equal length.
        let st = unsafe {
            sys::disrnn_dataset_subset_bins(self.raw.as_ptr(), trial.as_ptr(), bin.as_ptr(), trial.len(), &mut raw)
        };
        self.subset(st, raw)
    }
}

// ----------------------------------------------------------------------------------------------
// Trainer

/// How a fit ended without error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FitOutcome {
    /// The epochs or steps ran out.
    Completed,
    /// The progress callback asked to stop.
    Stopped,
    /// The validation loss stopped improving.
    EarlyStopped,
}

/// A trainer (`disrnn_trainer_t`) bound to a model (borrowed mutably) and datasets (borrowed).
pub struct Trainer<'a> {
    raw: NonNull<sys::disrnn_trainer_t>,
    model: &'a mut Model,
    _data: PhantomData<&'a Dataset>,
    progress: Option<Box<ProgressSlot<'a>>>,
    log: Option<Box<Box<LogFn>>>,
}

// SAFETY: the handle has no thread affinity; it is Send only when its progress closure could be,
// which the 'a bound cannot express, so Trainer is deliberately not Send.

impl Drop for Trainer<'_> {
    fn drop(&mut self) {
        // SAFETY: owned, freed once, before the boxes the callbacks point at (fields drop after).
        unsafe { sys::disrnn_trainer_free(self.raw.as_ptr()) }
    }
}

impl<'a> Trainer<'a> {
    /// A trainer fitting `model` on `train`, with its own generator seeded by `seed`.
    pub fn new(model: &'a mut Model, train: &'a Dataset, seed: u64) -> Result<Trainer<'a>> {
        let mut raw = ptr::null_mut();
        // SAFETY: valid handles, out-pointer to a local.
        let st = unsafe { sys::disrnn_trainer_create(&mut raw, model.raw.as_ptr(), train.raw.as_ptr(), seed) };
        if st < 0 {
            let mut msg = model.last_error();
            if msg.is_empty() {
                msg = train.last_error();
            }
            return Err(Error::new(st, msg));
        }
        let raw = NonNull::new(raw).ok_or_else(|| Error::new(sys::DISRNN_ERR_NOMEM, String::new()))?;
        Ok(Trainer { raw, model, _data: PhantomData, progress: None, log: None })
    }
    /// The raw handle.
    pub fn as_ptr(&self) -> *mut sys::disrnn_trainer_t {
        self.raw.as_ptr()
    }
    /// The model being fitted (read-only while the trainer exists).
    pub fn model(&self) -> &Model {
        &*self.model
    }
    /// The handle's last error message.
    pub fn last_error(&self) -> String {
        // SAFETY: valid handle; text copied at once.
        unsafe { owned_str(sys::disrnn_trainer_last_error(self.raw.as_ptr())) }
    }
    fn check(&self, st: c_int) -> Result<c_int> {
        if st < 0 {
            Err(Error::new(st, self.last_error()))
        } else {
            Ok(st)
        }
    }
    /// An integer-valued setting.
    pub fn set_int(&mut self, option: TrainOption, v: i64) -> Result<()> {
        // SAFETY: valid handle.
        self.check(unsafe { sys::disrnn_trainer_set_int(self.raw.as_ptr(), option.code(), v) }).map(|_| ())
    }
    /// A real-valued setting.
    pub fn set_double(&mut self, option: TrainOption, v: f64) -> Result<()> {
        // SAFETY: valid handle.
        self.check(unsafe { sys::disrnn_trainer_set_double(self.raw.as_ptr(), option.code(), v) }).map(|_| ())
    }
    /// Read an integer-valued setting.
    pub fn get_int(&self, option: TrainOption) -> Result<i64> {
        let mut v = 0i64;
        // SAFETY: out-pointer to a local.
        let st = unsafe { sys::disrnn_trainer_get_int(self.raw.as_ptr(), option.code(), &mut v) };
        self.check(st).map(|_| v)
    }
    /// Read a real-valued setting.
    pub fn get_double(&self, option: TrainOption) -> Result<f64> {
        let mut v = 0.0f64;
        // SAFETY: out-pointer to a local.
        let st = unsafe { sys::disrnn_trainer_get_double(self.raw.as_ptr(), option.code(), &mut v) };
        self.check(st).map(|_| v)
    }
    /// Restore every setting to its default.
    pub fn reset_settings(&mut self) -> Result<()> {
        // SAFETY: valid handle.
        self.check(unsafe { sys::disrnn_trainer_reset_settings(self.raw.as_ptr()) }).map(|_| ())
    }
    /// Use a validation dataset (or none).
    pub fn set_validation(&mut self, val: Option<&'a Dataset>) -> Result<()> {
        let p = val.map_or(ptr::null(), |d| d.raw.as_ptr() as *const _);
        // SAFETY: valid handle; the dataset outlives 'a.
        self.check(unsafe { sys::disrnn_trainer_set_validation(self.raw.as_ptr(), p) }).map(|_| ())
    }
    /// Install a progress callback kept for every later fit (see also [`Trainer::fit_with`]).
    pub fn set_progress<F: FnMut(&Progress<'_>) -> Control + 'a>(&mut self, f: F) -> Result<()> {
        let mut slot = Box::new(ProgressSlot { f: Box::new(f), panic: None });
        let ud = &mut *slot as *mut ProgressSlot<'a> as *mut c_void;
        // SAFETY: valid handle; slot is kept alive in self.progress while installed.
        self.check(unsafe { sys::disrnn_trainer_set_progress(self.raw.as_ptr(), Some(progress_trampoline), ud) })?;
        self.progress = Some(slot);
        Ok(())
    }
    /// Remove the progress callback.
    pub fn clear_progress(&mut self) -> Result<()> {
        // SAFETY: valid handle.
        self.check(unsafe { sys::disrnn_trainer_set_progress(self.raw.as_ptr(), None, ptr::null_mut()) })?;
        self.progress = None;
        Ok(())
    }
    /// Install a log callback (levels >= min_level).
    pub fn set_log<F: FnMut(i32, &str) + Send + 'static>(&mut self, min_level: i32, f: F) -> Result<()> {
        let raw = self.raw.as_ptr();
        // SAFETY: valid handle; the user_data box is kept in self.log while installed.
        let st = install_log(&mut self.log, Some(Box::new(f)), |f, ud| unsafe {
            sys::disrnn_trainer_set_log(raw, f, min_level, ud)
        });
        self.check(st).map(|_| ())
    }
    fn fit_result(&self, st: c_int, panic: Option<String>) -> Result<FitOutcome> {
        if let Some(text) = panic {
            return Err(Error { status: Status::Callback, message: format!("progress callback panicked: {text}") });
        }
        match self.check(st)? {
            sys::DISRNN_STOPPED => Ok(FitOutcome::Stopped),
            sys::DISRNN_EARLY_STOPPED => Ok(FitOutcome::EarlyStopped),
            _ => Ok(FitOutcome::Completed),
        }
    }
    /// Train with the installed callback (if any) until epochs/steps run out or it stops.
    pub fn fit(&mut self) -> Result<FitOutcome> {
        // SAFETY: valid handle; any installed callback's slot lives in self.progress.
        let st = unsafe { sys::disrnn_trainer_fit(self.raw.as_ptr()) };
        let panic = self.progress.as_mut().and_then(|s| s.panic.take());
        self.fit_result(st, panic)
    }
    /// Train with a progress callback used for this fit only (it may borrow local state); the
    /// callback installed with [`Trainer::set_progress`], if any, is restored afterwards.
    pub fn fit_with<F: FnMut(&Progress<'_>) -> Control>(&mut self, f: F) -> Result<FitOutcome> {
        let mut slot = ProgressSlot { f: Box::new(f), panic: None };
        let ud = &mut slot as *mut ProgressSlot<'_> as *mut c_void;
        let raw = self.raw.as_ptr();
        // SAFETY: valid handle; slot outlives the fit, and is uninstalled before it is dropped.
        self.check(unsafe { sys::disrnn_trainer_set_progress(raw, Some(progress_trampoline), ud) })?;
        // SAFETY: valid handle.
        let st = unsafe { sys::disrnn_trainer_fit(raw) };
        let restore = match self.progress.as_mut() {
            Some(p) => (Some(progress_trampoline as _), &mut **p as *mut ProgressSlot<'a> as *mut c_void),
            None => (None, ptr::null_mut()),
        };
        // SAFETY: valid handle; the restored slot lives in self.progress.
        unsafe { sys::disrnn_trainer_set_progress(raw, restore.0, restore.1) };
        self.fit_result(st, slot.panic.take())
    }
    /// One optimiser step on the next minibatch; returns its loss terms.
    pub fn step(&mut self) -> Result<Terms> {
        let mut t = [0.0f64; Terms::LEN];
        // SAFETY: buffer with its length.
        let st = unsafe { sys::disrnn_trainer_step(self.raw.as_ptr(), t.as_mut_ptr(), t.len()) };
        self.check(st).map(|_| Terms::from_array(&t))
    }
    /// Loss terms and gradient on chosen training samples.
    pub fn gradient(&mut self, samples: &[usize]) -> Result<(Terms, Vec<f64>)> {
        let mut t = [0.0f64; Terms::LEN];
        let mut g = vec![0.0; self.model.num_params()];
        // SAFETY: slices with their lengths.
        let st = unsafe {
            sys::disrnn_trainer_gradient(
                self.raw.as_ptr(),
                samples.as_ptr(),
                samples.len(),
                t.as_mut_ptr(),
                t.len(),
                g.as_mut_ptr(),
                g.len(),
            )
        };
        self.check(st).map(|_| (Terms::from_array(&t), g))
    }
    /// One optimiser step with a given gradient.
    pub fn apply(&mut self, grad: &[f64]) -> Result<()> {
        // SAFETY: slice with its length.
        self.check(unsafe { sys::disrnn_trainer_apply(self.raw.as_ptr(), grad.as_ptr(), grad.len()) }).map(|_| ())
    }
    /// Mean loss terms over a dataset.
    pub fn evaluate(&mut self, ds: &Dataset) -> Result<Terms> {
        let mut t = [0.0f64; Terms::LEN];
        // SAFETY: buffer with its length.
        let st = unsafe { sys::disrnn_trainer_evaluate(self.raw.as_ptr(), ds.raw.as_ptr(), t.as_mut_ptr(), t.len()) };
        self.check(st).map(|_| Terms::from_array(&t))
    }
    /// (steps, epochs) completed.
    pub fn progress(&self) -> Result<(i64, i64)> {
        let (mut s, mut e) = (0i64, 0i64);
        // SAFETY: out-pointers to locals.
        let st = unsafe { sys::disrnn_trainer_progress(self.raw.as_ptr(), &mut s, &mut e) };
        self.check(st).map(|_| (s, e))
    }
    /// Optimiser state [m, v, step].
    pub fn state(&self) -> Result<Vec<f64>> {
        // SAFETY: valid handle.
        let n = unsafe { sys::disrnn_trainer_state_size(self.raw.as_ptr()) };
        let mut v = vec![0.0; n];
        // SAFETY: buffer with its length.
        let st = unsafe { sys::disrnn_trainer_get_state(self.raw.as_ptr(), v.as_mut_ptr(), v.len()) };
        self.check(st).map(|_| v)
    }
    /// Overwrite the optimiser state.
    pub fn set_state(&mut self, state: &[f64]) -> Result<()> {
        // SAFETY: slice with its length.
        self.check(unsafe { sys::disrnn_trainer_set_state(self.raw.as_ptr(), state.as_ptr(), state.len()) }).map(|_| ())
    }
    /// Save a checkpoint.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let p = path_cstring(path.as_ref())?;
        // SAFETY: NUL-terminated path.
        self.check(unsafe { sys::disrnn_trainer_save(self.raw.as_ptr(), p.as_ptr()) }).map(|_| ())
    }
    /// Restore a checkpoint.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let p = path_cstring(path.as_ref())?;
        // SAFETY: NUL-terminated path.
        self.check(unsafe { sys::disrnn_trainer_load(self.raw.as_ptr(), p.as_ptr()) }).map(|_| ())
    }
}

// ----------------------------------------------------------------------------------------------
// Analysis functions without a handle

fn sum_checked(v: &[usize]) -> Result<usize> {
    v.iter().try_fold(0usize, |a, &b| a.checked_add(b)).ok_or_else(|| Error::invalid("group sizes overflow".into()))
}

/// Result of [`align_r2`].
#[derive(Clone, Debug, PartialEq)]
pub struct Alignment {
    /// Overall aligned R^2.
    pub r2: f64,
    /// G_ref x G_fit pair R^2, column-major.
    pub r2_matrix: Vec<f64>,
    /// Fitted group of each reference group.
    pub assignment: Vec<usize>,
    /// K_ref x n aligned latents.
    pub aligned: Vec<f64>,
}

/// Group-aligned latent R^2 of fitted latents (K_fit x n) against reference latents (K_ref x n).
pub fn align_r2(reference: &[f64], ref_groups: &[usize], fit: &[f64], fit_groups: &[usize]) -> Result<Alignment> {
    let k_ref = sum_checked(ref_groups)?;
    let k_fit = sum_checked(fit_groups)?;
    let n = cols_of(reference.len(), k_ref, "reference latents")?;
    if cols_of(fit.len(), k_fit, "fitted latents")? != n {
        return Err(Error::invalid("reference and fitted latents have different numbers of samples".into()));
    }
    let mut r2 = 0.0;
    let mut mat = vec![0.0; mul(ref_groups.len(), fit_groups.len())?];
    let mut asg = vec![0usize; ref_groups.len()];
    let mut aligned = vec![0.0; reference.len()];
    // SAFETY: every buffer holds the checked number of values.
    let st = unsafe {
        sys::disrnn_align_r2(
            n,
            reference.as_ptr(),
            k_ref,
            ref_groups.as_ptr(),
            ref_groups.len(),
            fit.as_ptr(),
            k_fit,
            fit_groups.as_ptr(),
            fit_groups.len(),
            &mut r2,
            mat.as_mut_ptr(),
            asg.as_mut_ptr(),
            aligned.as_mut_ptr(),
            k_ref,
        )
    };
    if st < 0 {
        return Err(Error::new(st, format!("disrnn_align_r2 failed: {}", status_string(st))));
    }
    Ok(Alignment { r2, r2_matrix: mat, assignment: asg, aligned })
}

/// Exact maximum-weight assignment of rows to distinct columns (weight rows x cols, column-major).
pub fn assignment_max(rows: usize, weight: &[f64]) -> Result<(Vec<usize>, f64)> {
    let cols = cols_of(weight.len(), rows, "weight")?;
    let mut a = vec![0usize; rows];
    let mut total = 0.0;
    // SAFETY: weight holds rows x cols, a holds rows.
    let st = unsafe { sys::disrnn_assignment_max(rows, cols, weight.as_ptr(), rows, a.as_mut_ptr(), &mut total) };
    if st < 0 {
        return Err(Error::new(st, format!("disrnn_assignment_max failed: {}", status_string(st))));
    }
    Ok((a, total))
}

/// (correlation, RMSE, R^2, MAE) of b against a.
pub fn compare_matrices(a: &[f64], b: &[f64]) -> Result<[f64; 4]> {
    if a.len() != b.len() {
        return Err(Error::invalid(format!("arrays of {} and {} values", a.len(), b.len())));
    }
    let mut out = [0.0f64; 4];
    // SAFETY: two slices of equal length, out with its length.
    let st = unsafe { sys::disrnn_compare_matrices(a.len(), a.as_ptr(), b.as_ptr(), out.as_mut_ptr(), out.len()) };
    if st < 0 {
        return Err(Error::new(st, format!("disrnn_compare_matrices failed: {}", status_string(st))));
    }
    Ok(out)
}

/// Mean (PC, TC) of a Gaussian mixture with K x n means `mu` and K std devs `s`.
pub fn mixture_pc(group_sizes: &[usize], mu: &[f64], s: &[f64], n_mc: usize, seed: u64) -> Result<(f64, f64)> {
    let k = sum_checked(group_sizes)?;
    let n = cols_of(mu.len(), k, "mu")?;
    if s.len() != k {
        return Err(Error::invalid(format!("s has {} values, expected {k}", s.len())));
    }
    let (mut pc, mut tc) = (0.0, 0.0);
    // SAFETY: slices with their checked shapes.
    let st = unsafe {
        sys::disrnn_mixture_pc(k, group_sizes.as_ptr(), group_sizes.len(), n, mu.as_ptr(), k, s.as_ptr(), n_mc, seed, &mut pc, &mut tc)
    };
    if st < 0 {
        return Err(Error::new(st, format!("disrnn_mixture_pc failed: {}", status_string(st))));
    }
    Ok((pc, tc))
}

/// Gaussian smoothing of each channel of an N x T bin-major block.
pub fn smooth_gaussian(n_obs: usize, x: &[f64], sigma_bins: f64) -> Result<Vec<f64>> {
    let t = cols_of(x.len(), n_obs, "x")?;
    let mut y = vec![0.0; x.len()];
    // SAFETY: x and y hold N x T values and do not overlap.
    let st = unsafe { sys::disrnn_smooth_gaussian(n_obs, t, x.as_ptr(), sigma_bins, y.as_mut_ptr()) };
    if st < 0 {
        return Err(Error::new(st, format!("disrnn_smooth_gaussian failed: {}", status_string(st))));
    }
    Ok(y)
}

/// Read a .npy file as doubles: (values in the asked order, shape).
pub fn npy_read_f64(path: impl AsRef<Path>, fortran_order: bool) -> Result<(Vec<f64>, Vec<usize>)> {
    let p = path_cstring(path.as_ref())?;
    let mut msg = [0u8; 512];
    let (mut dtype, mut ndim, mut fo) = (0 as c_int, 0usize, 0 as c_int);
    let mut shape = [0usize; sys::DISRNN_NPY_MAX_DIMS as usize];
    // SAFETY: out-pointers and buffers with their capacities.
    let st = unsafe {
        sys::disrnn_npy_info(p.as_ptr(), &mut dtype, &mut ndim, shape.as_mut_ptr(), &mut fo, msg.as_mut_ptr() as *mut c_char, msg.len())
    };
    if st < 0 {
        return Err(Error::new(st, msg_buffer_text(&msg)));
    }
    let shape = shape[..ndim.min(shape.len())].to_vec();
    let count = shape.iter().try_fold(1usize, |a, &b| a.checked_mul(b)).ok_or_else(|| Error::invalid("array too large".into()))?;
    let mut v = vec![0.0; count];
    // SAFETY: buffer with its capacity.
    let st = unsafe {
        sys::disrnn_npy_read_f64(p.as_ptr(), v.as_mut_ptr(), v.len(), fortran_order as c_int, msg.as_mut_ptr() as *mut c_char, msg.len())
    };
    if st < 0 {
        return Err(Error::new(st, msg_buffer_text(&msg)));
    }
    Ok((v, shape))
}

/// Write doubles as a .npy file of the given shape.
pub fn npy_write_f64(path: impl AsRef<Path>, data: &[f64], shape: &[usize], fortran_order: bool) -> Result<()> {
    let p = path_cstring(path.as_ref())?;
    let count = shape.iter().try_fold(1usize, |a, &b| a.checked_mul(b)).ok_or_else(|| Error::invalid("shape too large".into()))?;
    if count != data.len() {
        return Err(Error::invalid(format!("shape {shape:?} holds {count} values, data has {}", data.len())));
    }
    let mut msg = [0u8; 512];
    // SAFETY: data holds the shape's values; message buffer with its capacity.
    let st = unsafe {
        sys::disrnn_npy_write(
            p.as_ptr(),
            data.as_ptr() as *const c_void,
            sys::DISRNN_DTYPE_F64,
            shape.len(),
            shape.as_ptr(),
            fortran_order as c_int,
            msg.as_mut_ptr() as *mut c_char,
            msg.len(),
        )
    };
    if st < 0 {
        return Err(Error::new(st, msg_buffer_text(&msg)));
    }
    Ok(())
}
