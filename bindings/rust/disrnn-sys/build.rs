//! Finds libdisrnn without third-party crates: asks the `pkg-config` program first and falls back
//! to the `DISRNN_LIB_DIR` environment variable.
//!
//! Environment:
//! - `PKG_CONFIG` (program, default `pkg-config`), `PKG_CONFIG_PATH`, `PKG_CONFIG_SYSROOT_DIR`:
//!   passed through to pkg-config as usual (a `make install DESTDIR=...` tree works with the
//!   sysroot variable).
//! - `DISRNN_STATIC=1`: link `libdisrnn.a` with `pkg-config --static` (its BLAS/LAPACKE
//!   dependencies stay dynamic).
//! - `DISRNN_NO_PKG_CONFIG=1`: skip pkg-config.
//! - `DISRNN_LIB_DIR`: folder holding libdisrnn, used when pkg-config is skipped or fails; with
//!   `DISRNN_STATIC=1` also set `DISRNN_LIBS` to the extra libraries (default
//!   "lapacke openblas m").
//!
//! Exposes `DEP_DISRNN_LIB_DIR` (the library folder) and `DEP_DISRNN_STATIC` to the build scripts
//! of dependent crates (the `disrnn` crate uses them to set an rpath for its tests and examples).
use std::env;
use std::process::Command;

fn main() {
    for var in [
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "PKG_CONFIG_SYSROOT_DIR",
        "DISRNN_STATIC",
        "DISRNN_NO_PKG_CONFIG",
        "DISRNN_LIB_DIR",
        "DISRNN_LIBS",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let want_static = env::var("DISRNN_STATIC").map(|v| v == "1").unwrap_or(false);
    let skip_pc = env::var("DISRNN_NO_PKG_CONFIG").map(|v| v == "1").unwrap_or(false);

    let pc_error = if skip_pc {
        "skipped (DISRNN_NO_PKG_CONFIG=1)".to_string()
    } else {
        match probe_pkg_config(want_static) {
            Ok(()) => return,
            Err(e) => e,
        }
    };
    if let Ok(dir) = env::var("DISRNN_LIB_DIR") {
        println!("cargo:rustc-link-search=native={dir}");
        println!("cargo:lib_dir={dir}");
        if !want_static {
            rpath_for_own_tests(&dir);
        }
        if want_static {
            println!("cargo:rustc-link-lib=static=disrnn");
            println!("cargo:static=1");
            let extra = env::var("DISRNN_LIBS").unwrap_or_else(|_| "lapacke openblas m".to_string());
            for lib in extra.split_whitespace() {
                println!("cargo:rustc-link-lib={lib}");
            }
        } else {
            println!("cargo:rustc-link-lib=disrnn");
        }
        return;
    }
    panic!(
        "libdisrnn not found: pkg-config: {pc_error}; and DISRNN_LIB_DIR is not set. Install \
         libdisrnn (make install), point PKG_CONFIG_PATH at the folder holding disrnn.pc, or set \
         DISRNN_LIB_DIR to the folder holding libdisrnn.so / libdisrnn.a."
    );
}

/// Lets this crate's own tests find a library outside the loader's default path (cargo applies
/// `rustc-link-arg` only to this package's tests, examples and binaries, never to dependents).
fn rpath_for_own_tests(dir: &str) {
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "freebsd" {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}

/// Runs `pkg-config [--static] --libs disrnn` and turns its flags into cargo link instructions.
fn probe_pkg_config(want_static: bool) -> Result<(), String> {
    let program = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let mut cmd = Command::new(&program);
    if want_static {
        cmd.arg("--static");
    }
    cmd.args(["--libs", "disrnn"]);
    let out = cmd.output().map_err(|e| format!("could not run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} --libs disrnn failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let flags = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lib_dirs: Vec<String> = Vec::new();
    let mut found = false;
    for tok in flags.split_whitespace() {
        if let Some(dir) = tok.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
            if !lib_dirs.iter().any(|d| d == dir) {
                lib_dirs.push(dir.to_string());
            }
        } else if let Some(lib) = tok.strip_prefix("-l") {
            if lib == "disrnn" {
                found = true;
                let kind = if want_static { "static=" } else { "" };
                println!("cargo:rustc-link-lib={kind}disrnn");
            } else {
                println!("cargo:rustc-link-lib={lib}");
            }
        } else if tok == "-pthread" {
            println!("cargo:rustc-link-lib=pthread");
        }
    }
    if !found {
        return Err(format!("{program} gave no -ldisrnn: {flags}"));
    }
    // The folder that really holds the library (a system folder may be left out by pkg-config,
    // and --static adds the BLAS folders).
    let has_lib = |d: &String| {
        ["libdisrnn.so", "libdisrnn.a", "libdisrnn.dylib"]
            .iter()
            .any(|f| std::path::Path::new(d).join(f).exists())
    };
    if let Some(dir) = lib_dirs.iter().find(|d| has_lib(d)) {
        println!("cargo:lib_dir={dir}");
        if !want_static {
            rpath_for_own_tests(dir);
        }
    }
    if want_static {
        println!("cargo:static=1");
    }
    Ok(())
}
