//! The CUDA sources compile, and the committed PTX is what they compile to.
//!
//! Runs everywhere, GPU or not: `scripts/ensure-nvrtc.sh` fetches NVIDIA's runtime compiler
//! (NVRTC) from PyPI's `nvidia-cuda-nvrtc-cu12` wheel into `target/`, and the test compiles
//! `cuda/mpcflow_kernels.cu` for `compute_90`. A kernel that does not compile fails here with
//! NVRTC's log. The output must equal the committed `cuda/mpcflow_kernels.ptx`, which the
//! `cuda` kernel loads at run time; after changing the source, regenerate it with
//! `MPCFLOW_UPDATE_PTX=1 cargo test -p mpcflow-kernel-cuda --test ptx`.

#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use mpcflow_kernel_cuda::{NVRTC_OPTIONS, PTX, PTX_ARCH, SOURCE};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory holding libnvrtc.so.12, fetched by the project's script.
fn nvrtc_dir() -> PathBuf {
    let script = root().join("scripts/ensure-nvrtc.sh");
    let out = Command::new("bash").arg(&script).output().expect("run scripts/ensure-nvrtc.sh");
    assert!(
        out.status.success(),
        "scripts/ensure-nvrtc.sh failed (it needs python3 with pip and access to PyPI):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().expect("the script prints the library directory").trim())
}

#[test]
fn ptx_is_current() {
    let lib = nvrtc_dir().join("libnvrtc.so.12");
    // cudarc looks NVRTC up by name; loading it first by its full path makes that lookup find
    // this copy (the dynamic loader matches the already loaded library's soname). The library
    // stays loaded for the life of the test process.
    // SAFETY: NVIDIA's NVRTC has no library constructors with preconditions.
    let nvrtc = unsafe { libloading::Library::new(&lib) }.unwrap_or_else(|e| panic!("loading {}: {e}", lib.display()));
    std::mem::forget(nvrtc);

    let opts = cudarc::nvrtc::CompileOptions {
        arch: Some(PTX_ARCH),
        options: NVRTC_OPTIONS.iter().map(|s| s.to_string()).collect(),
        name: Some("mpcflow_kernels.cu".into()),
        ..Default::default()
    };
    let ptx = match cudarc::nvrtc::compile_ptx_with_opts(SOURCE, opts) {
        Ok(p) => p.to_src(),
        Err(e) => panic!("cuda/mpcflow_kernels.cu does not compile with NVRTC:\n{e:?}"),
    };
    for kernel in [
        "mpcf_prg_round_keys",
        "mpcf_aes_mmo",
        "mpcf_dcf_eval",
        "mpcf_dpf_eval",
        "mpcf_ring_matmul",
        "mpcf_ring_conv2d",
        "mpcf_pack_bits",
        "mpcf_unpack_bits",
    ] {
        assert!(ptx.contains(&format!(".entry {kernel}(")), "the PTX has no kernel `{kernel}`");
    }
    let committed = root().join("plugins/kernel-cuda/cuda/mpcflow_kernels.ptx");
    if std::env::var_os("MPCFLOW_UPDATE_PTX").is_some() {
        std::fs::write(&committed, &ptx).expect("write the PTX");
        return;
    }
    assert!(
        ptx == PTX,
        "cuda/mpcflow_kernels.ptx is stale: regenerate it with \
         `MPCFLOW_UPDATE_PTX=1 cargo test -p mpcflow-kernel-cuda --test ptx` and commit it"
    );
}
