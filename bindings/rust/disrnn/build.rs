//! When libdisrnn is linked dynamically from a folder outside the loader's default path, embed
//! that folder as an rpath in this crate's tests and examples so `cargo test` and `cargo run
//! --example` work without LD_LIBRARY_PATH. Libraries and binaries of downstream crates are not
//! affected (cargo applies `rustc-link-arg` only to this package's own link targets).
use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_DISRNN_LIB_DIR");
    println!("cargo:rerun-if-env-changed=DEP_DISRNN_STATIC");
    let is_static = env::var("DEP_DISRNN_STATIC").map(|v| v == "1").unwrap_or(false);
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if is_static || !(target_os == "linux" || target_os == "freebsd") {
        return;
    }
    if let Ok(dir) = env::var("DEP_DISRNN_LIB_DIR") {
        if !dir.is_empty() {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
}
