//! Builds the CPU emulation of the CUDA kernels (used by the tests in `src/emu.rs`).
//!
//! `cuda/mpcflow_kernels.cu` is written to compile both as CUDA C++ (with NVRTC, at run time,
//! by the host code) and as plain C11 when `MPCF_EMULATE` is defined. Here it is copied into
//! `OUT_DIR` with a `.c` name (so every C compiler treats it as C without relying on where `cc`
//! puts a `-x c` flag) and compiled into a static library that is linked into this crate. The
//! library only holds the emulated kernels and their `mpcf_emu_*` runners; nothing outside the
//! tests calls them, so a normal build carries no GPU code on the CPU.

use std::env;
use std::fs;
use std::path::PathBuf;

const SOURCE: &str = "cuda/mpcflow_kernels.cu";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts"));
    let copy = out_dir.join("mpcflow_kernels_emu.c");
    fs::copy(SOURCE, &copy).unwrap_or_else(|e| panic!("copying {SOURCE} to {}: {e}", copy.display()));
    cc::Build::new()
        .file(&copy)
        .define("MPCF_EMULATE", None)
        .std("c11")
        // The emulation runs AES trees in the tests: optimise it even in debug builds.
        .opt_level(2)
        .warnings(true)
        .extra_warnings(true)
        .compile("mpcflow_kernels_emu");
}
