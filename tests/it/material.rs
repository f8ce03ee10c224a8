//! Stored dealer material: `deal` then `run --material`, and every way a file can be wrong.

use crate::support::{root, rt};
use mpcflow::runtime::plan::PlanOptions;
use mpcflow::runtime::{InputValue, Session, SessionConfig};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mpcflow-mat-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn session(material: Option<&Path>) -> Session {
    let cfg = SessionConfig {
        protocol: Some("fss2pc".into()),
        material_dir: material.map(Path::to_path_buf),
        ..Default::default()
    };
    Session::from_path(&root().join("graphs/hospital_stats.yaml"), mpcflow::builtins()).unwrap().with_config(cfg)
}

fn inputs(n_north: usize) -> Vec<(&'static str, InputValue)> {
    let north: Vec<f64> = (0..n_north).map(|i| 120.0 + (i % 37) as f64).collect();
    let south: Vec<f64> = (0..9).map(|i| 150.0 - i as f64).collect();
    vec![("north_bp", InputValue::from(north)), ("south_bp", InputValue::from(south))]
}

fn deal(dir: &Path, n_north: usize) {
    let s = session(None);
    let mut opts = PlanOptions::default();
    opts.dims.insert("n_north".into(), n_north);
    opts.dims.insert("n_south".into(), 9);
    let plan = s.plan(opts).unwrap();
    let sizes = s.deal(&plan, dir).unwrap();
    assert_eq!(sizes.len(), 2);
}

#[test]
fn stored_material_gives_the_live_answer_once() {
    let dir = tmp("ok");
    deal(&dir, 12);
    let live = rt().block_on(session(None).run(inputs(12))).unwrap();
    let stored = rt().block_on(session(Some(&dir)).run(inputs(12))).unwrap();
    for name in ["n_patients", "mean_bp", "var_bp", "n_high"] {
        assert_eq!(live.values(name), stored.values(name), "{name}");
    }
    for n in &stored.report.nodes {
        assert_eq!(n.dealer_bytes, n.predicted_dealer_bytes, "{}", n.name);
    }
    let err = rt().block_on(session(Some(&dir)).run(inputs(12))).unwrap_err().to_string();
    assert!(err.contains("already used") && err.contains("deal again"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn mismatched_truncated_and_mixed_files_are_refused() {
    let dir = tmp("bad");
    deal(&dir, 13);
    let err = rt().block_on(session(Some(&dir)).run(inputs(12))).unwrap_err().to_string();
    assert!(err.contains("dealt for another plan") && err.contains("n_north=13"), "{err}");

    deal(&dir, 12);
    let south = dir.join("south.mpcmat");
    let len = std::fs::metadata(&south).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&south).unwrap();
    f.set_len(len - 40).unwrap();
    let err = rt().block_on(session(Some(&dir)).run(inputs(12))).unwrap_err().to_string();
    assert!(err.contains("south.mpcmat") && err.contains("truncated"), "{err}");

    // An altered byte is caught before any material is used.
    deal(&dir, 12);
    let north = dir.join("north.mpcmat");
    let mut bytes = std::fs::read(&north).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&north, bytes).unwrap();
    let err = rt().block_on(session(Some(&dir)).run(inputs(12))).unwrap_err().to_string();
    assert!(err.contains("north.mpcmat") && err.contains("checksum mismatch"), "{err}");
    assert!(!dir.join("north.mpcmat.used").exists() && !dir.join("south.mpcmat.used").exists(), "nothing was used");

    let other = tmp("other");
    deal(&dir, 12);
    deal(&other, 12);
    std::fs::copy(other.join("south.mpcmat"), dir.join("south.mpcmat")).unwrap();
    let err = rt().block_on(session(Some(&dir)).run(inputs(12))).unwrap_err().to_string();
    assert!(err.contains("come from different deals"), "{err}");

    deal(&dir, 12);
    std::fs::rename(dir.join("south.mpcmat"), dir.join("x")).unwrap();
    std::fs::rename(dir.join("north.mpcmat"), dir.join("south.mpcmat")).unwrap();
    std::fs::rename(dir.join("x"), dir.join("north.mpcmat")).unwrap();
    let err = rt().block_on(session(Some(&dir)).run(inputs(12))).unwrap_err().to_string();
    assert!(err.contains("this is south's material, not north's"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&other).ok();
}

#[test]
fn a_deal_leaves_only_complete_files_and_a_fifo_is_refused_at_once() {
    let dir = tmp("atomic");
    deal(&dir, 12);
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["north.mpcmat", "south.mpcmat"], "no partial file is left behind");

    // A FIFO in place of a file would block its open forever: refused before opening.
    std::fs::remove_file(dir.join("south.mpcmat")).unwrap();
    let fifo = dir.join("south.mpcmat");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        let start = std::time::Instant::now();
        let err = rt().block_on(session(Some(&dir)).run(inputs(12))).unwrap_err().to_string();
        assert!(err.contains("south.mpcmat is not a regular file"), "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "took {:?}", start.elapsed());
    } else {
        eprintln!("SKIPPED: mkfifo is not available here, so the FIFO case did not run");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_flipped_header_byte_is_reported_as_corruption() {
    let dir = tmp("header");
    deal(&dir, 12);
    let north = dir.join("north.mpcmat");
    let mut bytes = std::fs::read(&north).unwrap();
    bytes[40] ^= 1; // inside the plan fingerprint of the header
    std::fs::write(&north, bytes).unwrap();
    let err = rt().block_on(session(Some(&dir)).run(inputs(12))).unwrap_err().to_string();
    assert!(err.contains("north.mpcmat") && err.contains("checksum mismatch"), "{err}");
    assert!(!err.contains("another plan") && !err.contains("different deals"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_deal_too_large_for_memory_is_refused_and_leaves_no_file() {
    // The probe relies on the kernel refusing an allocation larger than memory (heuristic or
    // strict overcommit); where it always overcommits, the deal would really try.
    let mode = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap_or_default();
    if mode.trim() == "1" {
        eprintln!("SKIPPED: vm.overcommit_memory is 1, so an allocation cannot be refused up front here");
        return;
    }
    let dir = tmp("huge");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("huge.yaml");
    std::fs::write(
        &file,
        "version: 1\nparties: [a, b]\nprotocol: fss2pc\ninputs:\n  x: { owner: a, dtype: fixed, shape: [60000, 60000] }\n  \
         w: { owner: b, dtype: fixed, shape: [60000, 60000] }\nnodes:\n  y: { op: matmul, inputs: [x, w] }\n\
         outputs:\n  y: { reveal_to: [a] }\n",
    )
    .unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_mpcflow"))
        .args(["deal"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "a clean error, not an abort: {err}");
    assert!(err.contains("resources exhausted") && err.contains("cannot allocate"), "{err}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "no material file, partial or not");
    std::fs::remove_dir_all(&dir).ok();
}
