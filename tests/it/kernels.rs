//! Kernel plugins: the session's kernel gets fss2pc's heavy local work (DCF evaluation, ring
//! products), a kernel that declines work leaves it to the CPU, a failing kernel fails the node,
//! and the `cuda` kernel without a GPU falls back (asked for on the command line) or stops the
//! run (demanded by the file).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::{root, rt};
use mpcflow::runtime::{InputValue, RunOutput, Session, SessionConfig};
use mpcflow_sdk::graph::{Dim, GraphSpec};
use mpcflow_sdk::kernel::{Conv2dGeometry, FssKeys, Kernel, KernelDescriptor};
use mpcflow_sdk::{DType, Error, Op, Result};

/// Does everything through the `cpu` kernel and counts the calls, or (`fail`) refuses with an
/// error that is not "unsupported", or (`decline`) supports nothing.
#[derive(Default)]
struct Recording {
    fss: AtomicUsize,
    matmul: AtomicUsize,
    conv: AtomicUsize,
    fail: bool,
    decline: bool,
}

impl Recording {
    fn gate(&self, what: &str, n: &AtomicUsize) -> Result<()> {
        if self.decline {
            return Err(self.unsupported(what));
        }
        if self.fail {
            return Err(Error::Protocol(format!("device lost during {what}")));
        }
        n.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl Kernel for Recording {
    fn descriptor(&self) -> KernelDescriptor {
        KernelDescriptor { name: "recording".into(), device: "cpu, counted".into() }
    }
    fn fss_eval(&self, keys: &FssKeys<'_>, xs: &[u64], out: &mut [u64]) -> Result<()> {
        self.gate("fss_eval", &self.fss)?;
        mpcflow_kernel_cpu::CpuKernel::default().fss_eval(keys, xs, out)
    }
    fn ring_matmul(&self, a: &[u64], b: &[u64], m: usize, k: usize, n: usize, out: &mut [u64]) -> Result<()> {
        self.gate("ring_matmul", &self.matmul)?;
        mpcflow_kernel_cpu::CpuKernel::default().ring_matmul(a, b, m, k, n, out)
    }
    fn ring_conv2d(&self, x: &[u64], w: &[u64], g: &Conv2dGeometry, out: &mut [u64]) -> Result<()> {
        self.gate("ring_conv2d", &self.conv)?;
        mpcflow_kernel_cpu::CpuKernel::default().ring_conv2d(x, w, g, out)
    }
}

fn fixed(shape: &[usize]) -> Vec<Dim> {
    shape.iter().map(|&d| Dim::Fixed(d)).collect()
}

/// Matmul (with truncation), ReLU, a comparison, a sigmoid table and a convolution.
fn graph() -> (GraphSpec, Vec<(String, InputValue)>) {
    let g = GraphSpec::new("kernels", ["alice", "bob"])
        .input("a", "alice", DType::Fixed, fixed(&[4, 6]))
        .input("b", "bob", DType::Fixed, fixed(&[6, 5]))
        .input("x", "alice", DType::Fixed, fixed(&[1, 2, 5, 5]))
        .input("w", "bob", DType::Fixed, fixed(&[3, 2, 3, 3]))
        .node("m", Op::Matmul, ["a", "b"])
        .node("r", Op::Relu, ["m"])
        .node("s", Op::Sigmoid, ["m"])
        .node("c", Op::Gt, ["m", "s"])
        .node("y", Op::Conv2d { stride: [2, 1], padding: [1, 1] }, ["x", "w"])
        .output("r", ["alice", "bob"])
        .output("s", ["alice", "bob"])
        .output("c", ["alice", "bob"])
        .output("y", ["alice", "bob"]);
    let vals = |n: usize, scale: f64| -> Vec<f64> {
        (0..n).map(|i| ((i as f64 * 0.7548).sin() * scale * 100.0).round() / 100.0).collect()
    };
    let real = |shape: &[usize], v: Vec<f64>| InputValue::Real { shape: shape.to_vec(), values: v };
    let inputs = vec![
        ("a".to_string(), real(&[4, 6], vals(24, 3.0))),
        ("b".to_string(), real(&[6, 5], vals(30, 2.0))),
        ("x".to_string(), real(&[1, 2, 5, 5], vals(50, 10.0))),
        ("w".to_string(), real(&[3, 2, 3, 3], vals(54, 1.5))),
    ];
    (g, inputs)
}

fn run_with(kernel: Option<Arc<Recording>>) -> Result<RunOutput, mpcflow::runtime::Error> {
    run_with_kernel(kernel.map(|k| k as Arc<dyn Kernel>))
}

fn run_with_kernel(kernel: Option<Arc<dyn Kernel>>) -> Result<RunOutput, mpcflow::runtime::Error> {
    let (g, inputs) = graph();
    let mut registry = mpcflow::builtins();
    let name = kernel.as_ref().map(|k| {
        registry.add_kernel(k.clone());
        k.descriptor().name
    });
    let cfg =
        SessionConfig { protocol: Some("fss2pc".into()), kernel: name, all_under_protocol: true, ..Default::default() };
    rt().block_on(Session::from_graph(g, registry).with_config(cfg).run(inputs))
}

fn same_outputs(a: &RunOutput, b: &RunOutput) {
    for name in ["r", "s", "c", "y"] {
        assert_eq!(a.values(name).unwrap(), b.values(name).unwrap(), "output {name}");
    }
}

#[test]
fn the_session_kernel_gets_the_heavy_work_and_the_answers_do_not_change() {
    let plain = run_with(None).unwrap();
    let k = Arc::new(Recording::default());
    let with = run_with(Some(k.clone())).unwrap();
    same_outputs(&plain, &with);
    // Each party: relu, gt and the sigmoid's DCFs, the matmul's truncation; the products. Each
    // product's operands are one party's and the other's, so each party multiplies once: its
    // share of the mask of the operand the other holds is zero (see fss-gates' `bilinear`).
    assert!(k.fss.load(Ordering::Relaxed) >= 8, "fss_eval calls: {}", k.fss.load(Ordering::Relaxed));
    assert_eq!(k.matmul.load(Ordering::Relaxed), 2, "one product per party for the matmul");
    assert_eq!(k.conv.load(Ordering::Relaxed), 2, "one product per party for the convolution");
}

#[test]
fn a_kernel_that_declines_leaves_the_work_to_the_cpu() {
    let plain = run_with(None).unwrap();
    let with = run_with(Some(Arc::new(Recording { decline: true, ..Default::default() }))).unwrap();
    same_outputs(&plain, &with);
}

#[test]
fn a_failing_kernel_fails_the_node_and_names_the_kernel() {
    let e = run_with(Some(Arc::new(Recording { fail: true, ..Default::default() }))).unwrap_err().to_string();
    assert!(e.contains("kernel `recording`") && e.contains("device lost during"), "{e}");
    assert!(e.contains("node `"), "the error names the node: {e}");
}

/// `k` as a native kernel plugin exports it and the host loads it: every call crosses the
/// abi_stable interface.
fn through_the_native_interface(k: Arc<dyn Kernel>) -> Arc<dyn Kernel> {
    use mpcflow_sdk::plugin::native::{HostPlugin, export_kernel, into_registry_plugins};
    match into_registry_plugins([export_kernel(k)].into_iter().collect()).unwrap().pop() {
        Some(HostPlugin::Kernel(k)) => k,
        _ => panic!("a kernel comes back as a kernel"),
    }
}

#[test]
fn a_native_kernel_plugin_gets_the_same_work_and_keeps_its_errors() {
    let plain = run_with(None).unwrap();
    let k = Arc::new(Recording::default());
    let native = through_the_native_interface(k.clone());
    assert_eq!(native.descriptor().name, "recording");
    assert_eq!(native.available(), Ok(()));
    let with = run_with_kernel(Some(native)).unwrap();
    same_outputs(&plain, &with);
    assert!(k.fss.load(Ordering::Relaxed) >= 8, "fss_eval calls: {}", k.fss.load(Ordering::Relaxed));
    assert_eq!(k.matmul.load(Ordering::Relaxed), 2);
    assert_eq!(k.conv.load(Ordering::Relaxed), 2);
    // "Unsupported" stays unsupported across the boundary (the work goes to the CPU) ...
    let declining = through_the_native_interface(Arc::new(Recording { decline: true, ..Default::default() }));
    let e = declining.pack_bits(&[1, 2, 3], 2, &mut [0]).unwrap_err();
    assert!(mpcflow_sdk::kernel::is_unsupported(&e), "{e}");
    same_outputs(&plain, &run_with_kernel(Some(declining)).unwrap());
    // ... and a failure stays a failure of the node.
    let failing = through_the_native_interface(Arc::new(Recording { fail: true, ..Default::default() }));
    let e = run_with_kernel(Some(failing)).unwrap_err().to_string();
    assert!(e.contains("kernel `recording`") && e.contains("device lost during"), "{e}");
    // The `cpu` kernel's packing crosses too, and bad arguments come back as its errors.
    let cpu = through_the_native_interface(Arc::new(mpcflow_kernel_cpu::CpuKernel::default()));
    let values: Vec<u64> = (0..37u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
    for bits in [1u32, 5, 63, 64] {
        let words = (values.len() * bits as usize).div_ceil(64);
        let (mut got, mut want) = (vec![0u64; words], vec![0u64; words]);
        cpu.pack_bits(&values, bits, &mut got).unwrap();
        mpcflow_sdk::kernel::pack_bits(&values, bits, &mut want).unwrap();
        assert_eq!(got, want, "{bits} bits");
    }
    let e = cpu.pack_bits(&values, 65, &mut [0; 64]).unwrap_err();
    assert!(e.to_string().contains("bit width must be 1..=64"), "{e}");
}

/// Whether the built-in `cuda` kernel can run here (then the fallback tests do not apply).
fn gpu_present() -> bool {
    let k = mpcflow::builtins().kernel("cuda").expect("the cli's default `cuda` feature registers the kernel");
    k.available().is_ok()
}

#[test]
fn a_file_that_demands_cuda_runs_on_it_or_stops() {
    let text = std::fs::read_to_string(root().join("graphs/millionaires.yaml"))
        .unwrap()
        .replace("protocol: fss2pc", "protocol: fss2pc\nkernel: cuda");
    let inputs = || [("alice_wealth", InputValue::from(5i64)), ("bob_wealth", InputValue::from(3i64))];
    let s = Session::from_yaml(&text, "gpu.yaml", mpcflow::builtins()).unwrap();
    let result = rt().block_on(s.run(inputs()));
    if gpu_present() {
        assert_eq!(result.unwrap().values("alice_richer").unwrap(), vec![1.0], "on the GPU");
    } else {
        let e = result.unwrap_err().to_string();
        let line = text.lines().position(|l| l == "kernel: cuda").unwrap() + 1;
        assert!(e.contains(&format!("gpu.yaml:{line}:")), "located at the `kernel:` line: {e}");
        assert!(e.contains("kernel `cuda` cannot run here: no CUDA driver") && e.contains("--kernel cpu"), "{e}");
    }

    // The command line overrides the file.
    let cfg = SessionConfig { kernel: Some("cpu".into()), all_under_protocol: true, ..Default::default() };
    let s = Session::from_yaml(&text, "gpu.yaml", mpcflow::builtins()).unwrap().with_config(cfg);
    let out = rt().block_on(s.run(inputs())).unwrap();
    assert_eq!(out.values("alice_richer").unwrap(), vec![1.0]);
}

#[test]
fn asking_for_cuda_uses_it_or_falls_back_with_one_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mpcflow"))
        .current_dir(root())
        .args(["run", "graphs/millionaires.yaml", "--input", "alice_wealth=5", "--input", "bob_wealth=3"])
        .args(["--kernel", "cuda"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("alice_richer = 1"), "{stdout}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if gpu_present() {
        assert!(lines.is_empty(), "nothing on stderr on a GPU machine: {stderr}");
    } else {
        assert_eq!(lines.len(), 1, "exactly one line on stderr: {stderr}");
        assert!(lines[0].contains("kernel `cuda` cannot run here") && lines[0].contains("using `cpu`"), "{stderr}");
    }

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mpcflow"))
        .current_dir(root())
        .args(["run", "graphs/millionaires.yaml", "--input", "alice_wealth=5", "--input", "bob_wealth=3"])
        .args(["--kernel", "tpu"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--kernel: unknown kernel `tpu` (available: cpu, cuda)"), "{stderr}");
}

#[test]
fn check_refuses_an_unknown_kernel_at_its_line() {
    let dir = std::env::temp_dir().join(format!("mpcflow-kernel-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("k.yaml");
    let text = std::fs::read_to_string(root().join("graphs/millionaires.yaml"))
        .unwrap()
        .replace("protocol: fss2pc", "protocol: fss2pc\nkernel: tpu");
    std::fs::write(&file, &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mpcflow")).arg("check").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().position(|l| l == "kernel: tpu").unwrap() + 1;
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("k.yaml:{line}:9: kernel: unknown kernel `tpu` (available: cpu, cuda)")),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
