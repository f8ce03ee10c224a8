//! Third-party plugins end to end: the three examples are built (a native library, two WASM
//! modules) exactly as their READMEs say, loaded from their pipeline files or `--plugin`, and
//! their results compared with plaintext under `ref` and `fss2pc`. Then every kind of bad
//! plugin: a stale native library, files that are not plugins, and WASM modules that loop,
//! allocate without bound, trap, or export the wrong interface.

use crate::support::{root, rt};
use mpcflow::runtime::pipeline::Pipeline;
use mpcflow::runtime::plugin_spec::{PluginSource, WasmLimits};
use mpcflow::runtime::{InputValue, Registry, Session, SessionConfig};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The plugin files the examples' READMEs build, under `target/plugins`.
pub struct Built {
    /// The native leaky-ReLU library.
    pub native: PathBuf,
    /// The WASM `tiny` importer.
    pub tiny: PathBuf,
    /// The leaky-ReLU library built against a pretend sdk 0.2.0.
    pub stale: PathBuf,
}

/// Builds the example plugins once per test process (the same commands as their READMEs).
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new(root().join("scripts/build-example-plugins.sh")).output().expect("script runs");
        assert!(out.status.success(), "scripts/build-example-plugins.sh:\n{}", String::from_utf8_lossy(&out.stderr));
        let dir = root().join("target/plugins");
        let wasm = dir.join("wasm32-unknown-unknown/release");
        Built {
            native: dir.join("release/libmpcflow_example_leaky_relu.so"),
            tiny: wasm.join("mpcflow_example_tiny_importer.wasm"),
            stale: dir.join("debug/libstale_plugin.so"),
        }
    })
}

/// A pipeline file's session with its plugins loaded, as `mpcflow run` builds it.
fn session_of(file: &Path, protocol: &str) -> Session {
    let _ = built();
    let pipeline = Pipeline::from_path(file).unwrap();
    let mut registry = mpcflow::builtins();
    for d in &pipeline.plugins {
        mpcflow::plugin_host::load(&d.source, &mut registry).unwrap_or_else(|e| panic!("{}: {e}", d.location));
    }
    let cfg = SessionConfig { protocol: Some(protocol.into()), timeout: Duration::from_secs(30), ..Default::default() };
    Session::from_pipeline(pipeline, registry).unwrap().with_config(cfg)
}

fn mpcflow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mpcflow"));
    c.current_dir(root()).env_remove("RUST_LOG");
    c
}

fn scratch(test: &str) -> crate::support::Scratch {
    crate::support::Scratch::new(&format!("mpcflow-plugins-{test}"))
}

fn leaky(x: f64, alpha: f64) -> f64 {
    if x > 0.0 { x } else { alpha * x }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// The native secure operator under both protocols, on random vectors plus edge cases
    /// (zero, one unit of fixed point either side of it, large magnitudes).
    #[test]
    fn native_leaky_relu_matches_plaintext_under_ref_and_fss2pc(
        a in prop::collection::vec(-5000.0f64..5000.0, 1..24),
        shift in -10.0f64..10.0,
    ) {
        let ulp = 1.0 / 65536.0;
        let mut a = a;
        a.extend([0.0, ulp, -ulp, 30000.0, -30000.0]);
        let b: Vec<f64> = a.iter().map(|_| shift).collect();
        let file = root().join("examples/native-leaky-relu/pipeline.yaml");
        for protocol in ["ref", "fss2pc"] {
            let s = session_of(&file, protocol);
            let out = rt().block_on(s.run([("a", InputValue::from(a.clone())), ("b", InputValue::from(b.clone()))])).unwrap();
            let got = out.values("activated").unwrap();
            for ((x, y), g) in a.iter().zip(&b).zip(&got) {
                let want = leaky(x - y, 0.1);
                // Fixed point: `alpha` and `1 - alpha` are encoded to within 2^-17 each (so up to
                // |x|·2^-16 together), and the two public scalings round once each.
                let bound = 4.0 * ulp + (x - y).abs() * ulp;
                prop_assert!((g - want).abs() <= bound, "{protocol}: leaky({}) = {g}, want {want}", x - y);
            }
        }
    }

    /// The WASM transform (at each input's owner) and the WASM secure `clip`, under both
    /// protocols. Integer readings keep every comparison with 2σ away from rounding ties.
    #[test]
    fn wasm_normalize_and_clip_match_plaintext_under_ref_and_fss2pc(
        north in prop::collection::vec(60i64..260, 1..12),
        south in prop::collection::vec(60i64..260, 1..12),
    ) {
        let file = root().join("examples/wasm-normalize/pipeline.yaml");
        let z = |x: i64, mean: f64, std: f64| ((x as f64 - mean) / std).clamp(-6.0, 6.0);
        let all: Vec<f64> = north.iter().map(|&x| z(x, 120.0, 15.0)).chain(south.iter().map(|&x| z(x, 125.0, 18.0))).collect();
        let mean = all.iter().map(|v| v.clamp(-3.0, 3.0)).sum::<f64>() / all.len() as f64;
        let high = all.iter().filter(|&&v| v > 2.0).count() as f64;
        for protocol in ["ref", "fss2pc"] {
            let s = session_of(&file, protocol);
            let inputs = [
                ("north_bp", InputValue::Int { shape: vec![north.len()], values: north.clone() }),
                ("south_bp", InputValue::Int { shape: vec![south.len()], values: south.clone() }),
            ];
            let out = rt().block_on(s.run(inputs)).unwrap();
            let got_mean = out.values("mean_z").unwrap()[0];
            prop_assert!((got_mean - mean).abs() < 1e-3, "{protocol}: mean {got_mean}, want {mean}");
            prop_assert_eq!(out.values("n_high").unwrap()[0], high, "{}", protocol);
        }
    }
}

#[test]
fn the_wasm_importer_turns_a_tiny_model_into_a_pipeline_that_runs_under_both_protocols() {
    let b = built();
    let dir = scratch("tiny");
    let out = mpcflow()
        .args(["import", "examples/wasm-tiny-importer/model.tiny", "--importer", "tiny", "--plugin"])
        .arg(&b.tiny)
        .args(["--owner", "clinic", "--input-owner", "patient", "--reveal", "logits", "-o"])
        .arg(dir.join("tiny.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The plaintext network of model.tiny.
    let w0 = [[0.5, -0.25, 1.0], [0.75, 0.5, -1.0], [-0.5, 1.25, 0.25], [1.0, 0.0, 0.5]];
    let (b0, w1, b1) = ([0.1, -0.2, 0.05], [[1.0, -0.5], [0.25, 0.75], [-1.0, 0.5]], [0.0, 0.25]);
    for (features, protocol) in [([1.0, 2.0, -1.0, 0.5], "ref"), ([-0.5, 3.0, 0.25, 2.0], "fss2pc")] {
        let h: Vec<f64> = (0..3).map(|j| (0..4).map(|i| features[i] * w0[i][j]).sum::<f64>() + b0[j]).collect();
        let h: Vec<f64> = h.into_iter().map(|v| v.max(0.0)).collect();
        let want: Vec<f64> = (0..2).map(|j| (0..3).map(|i| h[i] * w1[i][j]).sum::<f64>() + b1[j]).collect();
        let run = mpcflow()
            .arg("run")
            .arg(dir.join("tiny.yaml"))
            .args(["--protocol", protocol, "--json", "--input"])
            .arg(format!("features=[{:?}]", features.to_vec()))
            .arg("--input-dir")
            .arg(dir.join("tiny.weights"))
            .output()
            .unwrap();
        assert!(run.status.success(), "{protocol}: {}", String::from_utf8_lossy(&run.stderr));
        let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        let got: Vec<f64> = json["outputs"]["dense1"].as_array().unwrap()[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-3, "{protocol}: {got:?}, want {want:?}");
        }
    }
    // The same model named in a pipeline file (`models:`), the importer loaded by `plugins:`.
    let file = root().join("examples/wasm-tiny-importer/pipeline.yaml");
    for (features, protocol) in [([1.0, 2.0, -1.0, 0.5], "ref"), ([-0.5, 3.0, 0.25, 2.0], "fss2pc")] {
        let s = session_of(&file, protocol);
        let input = InputValue::Real { shape: vec![1, 4], values: features.to_vec() };
        let out = rt().block_on(s.run([("features", input)])).unwrap();
        let h: Vec<f64> = (0..3).map(|j| (0..4).map(|i| features[i] * w0[i][j]).sum::<f64>() + b0[j]).collect();
        let h: Vec<f64> = h.into_iter().map(|v| v.max(0.0)).collect();
        let want: Vec<f64> = (0..2).map(|j| (0..3).map(|i| h[i] * w1[i][j]).sum::<f64>() + b1[j]).collect();
        let got = out.values("scores").unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-3, "{protocol}: {got:?}, want {want:?}");
        }
        let positive: Vec<f64> = want.iter().map(|&w| f64::from(u8::from(w > 0.0))).collect();
        assert_eq!(out.values("positive").unwrap(), positive, "{protocol}");
    }
    // A malformed model: the error names the file and the line.
    let bad = dir.join("bad.tiny");
    std::fs::write(&bad, "tiny 1\ninput x 2\ndense 2 1\nweights 1 2\nbias 0 0\n").unwrap();
    let out = mpcflow()
        .arg("import")
        .arg(&bad)
        .args(["--importer", "tiny", "--plugin"])
        .arg(&b.tiny)
        .args(["--owner", "c", "--input-owner", "p", "-o"])
        .arg(dir.join("bad.yaml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.tiny: line 5: `bias` of `dense 2 1` needs 1 numbers, found 2"), "{err}");
}

#[test]
fn plugins_list_shows_built_in_and_loaded_plugins_with_kind_version_and_source() {
    let b = built();
    let out = mpcflow()
        .args(["plugins", "list", "examples/wasm-normalize/pipeline.yaml", "--json", "--plugin"])
        .arg(&b.native)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let find = |name: &str| list.iter().find(|e| e["name"] == name).cloned().unwrap_or_default();
    assert_eq!(find("fss2pc")["source"], "built-in");
    assert_eq!(find("onnx")["kind"], "importer");
    assert_eq!(find("leaky_relu")["kind"], "operator");
    assert_eq!(find("leaky_relu")["detail"], "secure");
    assert_eq!(find("leaky_relu")["version"], "0.1.0");
    assert_eq!(find("leaky_relu")["source"], format!("native: {}", b.native.display()));
    assert_eq!(find("normalize")["detail"], "transform");
    // Relative to the pipeline file, tidied.
    assert_eq!(
        find("normalize")["source"],
        "wasm: target/plugins/wasm32-unknown-unknown/release/mpcflow_example_normalize.wasm"
    );
}

#[test]
fn bad_native_libraries_are_refused_with_the_path_and_what_is_wrong() {
    let b = built();
    let load = |p: &Path| {
        let mut r = Registry::new();
        mpcflow::plugin_host::load(&PluginSource::Native(p.to_path_buf()), &mut r).unwrap_err().to_string()
    };
    let e = load(&b.stale);
    assert_eq!(
        e,
        format!(
            "plugin {}: incompatible: it was built against mpcflow-sdk 0.2.0; this mpcflow uses mpcflow-sdk {} \
             (rebuild the plugin against this sdk)",
            b.stale.display(),
            mpcflow_sdk::SDK_VERSION
        )
    );
    let missing = root().join("target/plugins/no-such-plugin.so");
    assert!(load(&missing).starts_with(&format!("plugin {}: cannot read the file", missing.display())));
    let dir = scratch("native");
    let text = dir.join("notes.so");
    std::fs::write(&text, "not a library").unwrap();
    let e = load(&text);
    assert!(e.starts_with(&format!("plugin {}: not an mpcflow plugin", text.display())), "{e}");
    // A real shared library that is not a plugin.
    for libm in ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib64/libm.so.6"] {
        if Path::new(libm).exists() {
            let e = load(Path::new(libm));
            assert!(e.starts_with(&format!("plugin {libm}: not an mpcflow plugin")), "{e}");
            assert!(e.contains("export_native_plugins"), "{e}");
        }
    }
    // A second copy of a name already registered is refused, naming the first.
    let mut r = Registry::new();
    mpcflow::plugin_host::load(&PluginSource::Native(b.native.clone()), &mut r).unwrap();
    let e = mpcflow::plugin_host::load(&PluginSource::Native(b.native.clone()), &mut r).unwrap_err().to_string();
    assert!(e.contains("its operator `leaky_relu` is already provided by native:"), "{e}");
}

/// A hand-written WASM plugin (text format) that describes one operator `name` of `kind` and
/// then, on any other call, runs `body`. `panic` is the message it leaves for the host.
pub fn wat_plugin(name: &str, kind: &str, body: &str, panic: Option<&str>) -> String {
    let manifest = format!(
        r#"{{"sdk":"{}","plugins":[{{"kind":"operator","name":"{name}","version":"0.0.1","operator":"{kind}"}}]}}"#,
        mpcflow_sdk::SDK_VERSION
    );
    let escaped = manifest.replace('"', "\\\"");
    let manifest_len = manifest.len() + 1;
    let (panic_data, panic_ptr) = match panic {
        Some(m) => (format!("(data (i32.const 2048) \"{m}\")"), ((2048u64 << 32) | m.len() as u64).to_string()),
        None => (String::new(), "0".into()),
    };
    format!(
        r#"(module
  (memory (export "memory") 2)
  (global $bump (mut i32) (i32.const 8192))
  (data (i32.const 16) "\00{escaped}")
  {panic_data}
  (func (export "mpcflow_abi_version") (result i32) (i32.const 1))
  (func (export "mpcflow_alloc") (param $len i32) (result i32) (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get $len)))
    (local.get $p))
  (func (export "mpcflow_free") (param i32 i32))
  (func (export "mpcflow_last_panic") (result i64) (i64.const {panic_ptr}))
  (func (export "mpcflow_call") (param $m i32) (param $p i32) (param $l i32) (result i64)
    (if (i32.eqz (local.get $m)) (then (return (i64.const {packed}))))
    {body}
    (i64.const 0)))
"#,
        packed = (16u64 << 32) | manifest_len as u64,
    )
}

/// Writes `wat` and a pipeline using operator `spin` (or transform `spin` on input `x`).
fn bad_wasm_pipeline(dir: &Path, wat: &str, transform: bool, limits: &str) -> PathBuf {
    std::fs::write(dir.join("bad.wat"), wat).unwrap();
    let (x, node) = if transform {
        ("{ owner: alice, dtype: fixed, shape: [4], transform: { op: spin } }", "{ op: neg, inputs: [x] }")
    } else {
        ("{ owner: alice, dtype: fixed, shape: [4] }", "{ op: spin, inputs: [x] }")
    };
    let yaml = format!(
        "version: 1\nparties: [alice, bob]\nprotocol: ref\nplugins:\n  - {{ wasm: bad.wat{limits} }}\ninputs:\n  x: {x}\nnodes:\n  y: {node}\noutputs:\n  y: {{ reveal_to: [bob] }}\n"
    );
    let file = dir.join("pipeline.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

/// `mpcflow run` on `file`: must fail within a bound; returns stderr.
fn run_fails(file: &Path) -> String {
    let start = Instant::now();
    let out = mpcflow().arg("run").arg(file).args(["--input", "x=[1, 2, 3, 4]"]).output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(30), "took {:?}", start.elapsed());
    assert!(!out.status.success(), "should fail: {}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty(), "no output is shown");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_wasm_plugin_that_loops_forever_runs_out_of_fuel_and_names_plugin_node_and_place() {
    let dir = scratch("loop");
    let wat = wat_plugin("spin", "secure", "(loop $forever (br $forever))", None);
    let file = bad_wasm_pipeline(&dir, &wat, false, ", fuel: 20000000");
    let err = run_fails(&file);
    let plugin = dir.join("bad.wat");
    assert!(err.contains(&format!("{}:9:3: node `y`: operator plugin `spin`: ", file.display())), "{err}");
    assert!(
        err.contains(&format!(
            "WASM plugin {} ran out of fuel in `spin` lower (limit 20000000 per call)",
            plugin.display()
        )),
        "{err}"
    );
}

#[test]
fn a_wasm_plugin_that_allocates_without_bound_hits_its_memory_limit() {
    let dir = scratch("alloc");
    let wat = wat_plugin("spin", "secure", "(loop $more (drop (memory.grow (i32.const 16))) (br $more))", None);
    let file = bad_wasm_pipeline(&dir, &wat, false, ", memory_mib: 4");
    let err = run_fails(&file);
    assert!(err.contains("node `y`"), "{err}");
    assert!(err.contains("exceeded its memory limit of 4 MiB in `spin` lower"), "{err}");
}

#[test]
fn a_wasm_plugin_that_traps_reports_its_panic_message() {
    let dir = scratch("trap");
    let wat = wat_plugin("spin", "secure", "unreachable", Some("panicked at src/lib.rs:7:9: boom"));
    let err = run_fails(&bad_wasm_pipeline(&dir, &wat, false, ""));
    assert!(err.contains("trapped in `spin` lower: panicked at src/lib.rs:7:9: boom"), "{err}");
    // The same in a transform: the error names the input whose owner ran it.
    let wat = wat_plugin("spin", "transform", "unreachable", None);
    let err = run_fails(&bad_wasm_pipeline(&dir, &wat, true, ""));
    assert!(err.contains("input `x`: transform"), "{err}");
    assert!(err.contains("transform `spin` (wasm: "), "{err}");
    assert!(err.contains("trapped in `spin` transform: wasm trap: wasm `unreachable` instruction executed"), "{err}");
}

#[test]
fn wasm_modules_with_the_wrong_interface_are_refused_at_load() {
    let dir = scratch("iface");
    // No `mpcflow_call`.
    let wat = wat_plugin("spin", "secure", "", None).replace("(export \"mpcflow_call\")", "");
    let err = run_fails(&bad_wasm_pipeline(&dir, &wat, false, ""));
    assert!(err.contains("pipeline.yaml:5:5: plugin"), "{err}");
    assert!(err.contains("not an mpcflow plugin: it does not export `mpcflow_call`"), "{err}");
    // WASI imports: the sandbox grants none.
    let wat = wat_plugin("spin", "secure", "", None).replace(
        "(memory (export \"memory\") 2)",
        "(import \"wasi_snapshot_preview1\" \"fd_write\" (func (param i32 i32 i32 i32) (result i32)))\n  (memory (export \"memory\") 2)",
    );
    let err = run_fails(&bad_wasm_pipeline(&dir, &wat, false, ""));
    assert!(
        err.contains("it imports `wasi_snapshot_preview1::fd_write`, but the sandbox provides no imports"),
        "{err}"
    );
    // Not WASM at all.
    std::fs::write(dir.join("junk.wasm"), b"\0asm junk").unwrap();
    let mut r = Registry::new();
    let e = mpcflow::plugin_host::load(
        &PluginSource::Wasm { path: dir.join("junk.wasm"), limits: WasmLimits::default() },
        &mut r,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("junk.wasm: not an mpcflow plugin: not a valid WASM module"), "{e}");
    // A transform used as a node, and a secure operator used as a transform.
    let wat = wat_plugin("spin", "transform", "", None);
    let file = bad_wasm_pipeline(&dir, &wat, false, "");
    let out = mpcflow().arg("check").arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`spin` is a transform: it runs on one party's plaintext before sharing"), "{err}");
    let wat = wat_plugin("spin", "secure", "", None);
    let file = bad_wasm_pipeline(&dir, &wat, true, "");
    let out = mpcflow().arg("check").arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`spin` is a secure operator, not a transform"), "{err}");
}

#[test]
fn plugin_entries_are_checked_where_they_are_written() {
    let bad = "version: 1\nparties: [a, b]\nplugins:\n  - { native: x.so, fuel: 10 }\n  - { wasm: y.wasm, memory_mib: 0 }\n  - {}\ninputs:\n  x: { owner: a, dtype: int }\nnodes:\n  y: { op: neg, inputs: [x] }\noutputs:\n  y: { reveal_to: [b] }\n";
    let e = Pipeline::from_yaml(bad, "p.yaml").unwrap_err().to_string();
    assert!(e.contains("p.yaml:4:27: plugins[0]: `fuel` and `memory_mib` are limits of WASM plugins"), "{e}");
    assert!(e.contains("p.yaml:5:33: plugins[1]: `memory_mib` must be 1 to 4096"), "{e}");
    assert!(
        e.contains("p.yaml:6:5: plugins[2]: a plugin entry needs exactly one of `native: PATH` or `wasm: PATH`"),
        "{e}"
    );
}

/// Every plugin kind crosses the native interface and back: the built-in protocols, transport
/// and a kernel, wrapped as a library would export them, give the same results, rounds and bytes.
#[test]
fn protocols_transports_and_kernels_cross_the_native_interface_unchanged() {
    use mpcflow_sdk::plugin::native::{HostPlugin, export_protocol, export_transport, into_registry_plugins};
    use std::sync::Arc;
    let exported = vec![
        export_protocol(Arc::new(mpcflow_protocol_fss2pc::Fss2pc::default())),
        export_protocol(Arc::new(mpcflow_protocol_ref::RefProtocol)),
        export_transport(Arc::new(mpcflow_transport_mem::MemTransport::new())),
    ];
    let mut wrapped = Registry::new();
    for p in into_registry_plugins(exported.into_iter().collect()).unwrap() {
        match p {
            HostPlugin::Protocol(p) => wrapped.add_protocol(p),
            HostPlugin::Transport(t) => wrapped.add_transport(t),
            _ => unreachable!("only protocols and a transport were exported"),
        };
    }
    let file = root().join("graphs/hospital_stats.yaml");
    let north = InputValue::from(vec![120.0, 151.5, 99.0, 143.25]);
    let south = InputValue::from(vec![160.0, 131.0, 118.5]);
    for protocol in ["ref", "fss2pc"] {
        let cfg = SessionConfig { protocol: Some(protocol.into()), ..Default::default() };
        let direct = Session::from_path(&file, mpcflow::builtins()).unwrap().with_config(cfg.clone());
        let through = Session::from_path(&file, wrapped.clone()).unwrap().with_config(cfg);
        let inputs = || [("north_bp", north.clone()), ("south_bp", south.clone())];
        let a = rt().block_on(direct.run(inputs())).unwrap();
        let b = rt().block_on(through.run(inputs())).unwrap();
        for o in &a.outputs {
            assert_eq!(a.values(&o.name), b.values(&o.name), "{protocol}: {}", o.name);
        }
        assert_eq!(a.report.totals.bytes_sent, b.report.totals.bytes_sent, "{protocol}");
        assert_eq!(a.report.totals.critical_rounds, b.report.totals.critical_rounds, "{protocol}");
    }

    struct Schoolbook;
    impl mpcflow_sdk::kernel::Kernel for Schoolbook {
        fn descriptor(&self) -> mpcflow_sdk::kernel::KernelDescriptor {
            mpcflow_sdk::kernel::KernelDescriptor { name: "schoolbook".into(), device: "cpu".into() }
        }
        fn ring_matmul(
            &self,
            a: &[u64],
            b: &[u64],
            m: usize,
            k: usize,
            n: usize,
            out: &mut [u64],
        ) -> mpcflow_sdk::Result<()> {
            for i in 0..m {
                for j in 0..n {
                    out[i * n + j] = (0..k).fold(0u64, |s, t| s.wrapping_add(a[i * k + t].wrapping_mul(b[t * n + j])));
                }
            }
            Ok(())
        }
    }
    let list = vec![mpcflow_sdk::plugin::native::export_kernel(Arc::new(Schoolbook))];
    let Some(HostPlugin::Kernel(k)) = into_registry_plugins(list.into_iter().collect()).unwrap().pop() else {
        panic!("a kernel comes back as a kernel")
    };
    assert_eq!(k.descriptor().name, "schoolbook");
    let mut out = [0u64; 4];
    k.ring_matmul(&[1, 2, 3, 4], &[5, 6, 7, u64::MAX], 2, 2, 2, &mut out).unwrap();
    assert_eq!(
        out,
        [19, 6u64.wrapping_add(2u64.wrapping_mul(u64::MAX)), 43, 18u64.wrapping_add(4u64.wrapping_mul(u64::MAX))]
    );
}

/// `Compose::lookup`, the host interface's table lookup, under both protocols: a secure
/// operator `square_of_digit` that maps a secret digit 0..9 to its square.
#[test]
fn composed_table_lookup_matches_plaintext_under_ref_and_fss2pc() {
    use mpcflow_sdk::op::Attrs;
    use mpcflow_sdk::operator::{Compose, Operator};
    use mpcflow_sdk::protocol::Lowering;
    use mpcflow_sdk::shape::TensorInfo;
    use mpcflow_sdk::{DType, FixedPoint};
    struct SquareOfDigit;
    impl Operator for SquareOfDigit {
        fn name(&self) -> &str {
            "square_of_digit"
        }
        fn lower(&self, _: &Attrs, inputs: &[TensorInfo], fp: FixedPoint) -> mpcflow_sdk::Result<Lowering> {
            let mut c = Compose::new(fp);
            let table: Vec<f64> = (0..10).map(|d| (d * d) as f64 / 4.0).collect();
            let x = c.input(0);
            c.lookup(x, &inputs[0].shape, &table, DType::Fixed)?;
            Ok(c.finish())
        }
    }
    let yaml = "version: 1\nparties: [a, b]\ninputs:\n  d: { owner: a, dtype: int, shape: [2, 6] }\nnodes:\n  q: { op: square_of_digit, inputs: [d] }\noutputs:\n  q: { reveal_to: [b] }\n";
    let digits: Vec<i64> = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, -1];
    let want: Vec<f64> =
        digits.iter().map(|&d| if (0..10).contains(&d) { (d * d) as f64 / 4.0 } else { 0.0 }).collect();
    for protocol in ["ref", "fss2pc"] {
        let mut reg = mpcflow::builtins();
        reg.add_operator(std::sync::Arc::new(SquareOfDigit));
        let s = crate::support::session(yaml, reg, protocol, 30_000);
        let out = rt().block_on(s.run([("d", InputValue::Int { shape: vec![2, 6], values: digits.clone() })])).unwrap();
        assert_eq!(out.values("q").unwrap(), want, "{protocol}");
    }
}
