//! The ONNX backend node tests against the importer: every test that
//! `tests/fixtures/onnx/extract_node_tests.py` copied into `tests/fixtures/onnx/node/` (op types
//! the importer lists as supported, float or double inputs and outputs, one output) is imported
//! with the default options, run under `ref` and again under `fss2pc` and `rep3` (with a third party `c`) with parties `a` (every model input, bound to
//! `input_<i>.pb` in graph-input order; the output is revealed to it) and `b` (the weights, if
//! the import makes any), and compared with `output_0.pb`.
//!
//! Each test is
//! - PASS: every element within the bound below, same shape;
//! - WRONG: it ran, but the shape differs or some element is outside the bound;
//! - REFUSED: the importer refused the model, or the planner refused the graph, or an input
//!   could not be encoded (a value that does not fit fixed point, |x| ≥ 2^47): the message is
//!   kept;
//! - FAILED: the run itself failed or something panicked (a bug either way).
//!
//! Node tests feed every operand as a graph input, where exported models fix parameters such as
//! `Clip` bounds, `Pow` exponents or batch-norm statistics in the file. A test the importer
//! refuses because a parameter "must be fixed by the model file" is therefore run a second time
//! with inputs 1.. moved into the model's initializers (the model owner's weights), and that
//! variant is classified and reported, in a second table, in the same way.
//!
//! Bound, per element: `|got − want| ≤ 1e-3·max(1, |want|) + 2e-4·macs`, where `macs`
//! approximates how many products feed one output element, per node of the model: the reduced
//! dimension for `MatMul` and `Gemm`, `C_in·kH·kW` for `Conv`, the number of summed elements for
//! `ReduceSum`, 1 for every other node (summed over the model's nodes; a shape the test's inputs
//! do not give counts 1). Fixed point has 16 fractional bits, so each encoded value is off by at
//! most 2^-17 ≈ 7.6e-6 and each rounded product by as much again: the first term covers the
//! encoding and ONNX's own float32 rounding, the second the errors that add up over a sum of
//! products. `ref` evaluates exp, sigmoid, tanh, gelu, softmax, reciprocal and sqrt exactly
//! in f64 on the fixed-point values; `fss2pc`'s table-based versions stay within a few ulp of
//! that (plugins/protocol-fss2pc/src/lib.rs), far inside the same bound.
//!
//! The test prints a table per op type (a test counts for every op type its model holds) and
//! the first line of every REFUSED, WRONG or FAILED reason, and asserts that nothing is WRONG
//! or FAILED (in either table) and that every op type of `SUPPORTED` with a test has at least
//! one PASS (in either table).

use crate::support::{root, rt};
use mpcflow::import::{Reveal, Roles, graph};
use mpcflow::runtime::plan::PlanOptions;
use mpcflow::runtime::{InputValue, Session, SessionConfig};
use mpcflow_importer_onnx::proto::onnx::{ModelProto, NodeProto, TensorProto};
use mpcflow_importer_onnx::values::Known;
use mpcflow_importer_onnx::{ImportOptions, SUPPORTED, import};
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How one node test ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Pass,
    Wrong,
    Refused,
    Failed,
}

struct Outcome {
    test: String,
    ops: Vec<String>,
    verdict: Verdict,
    reason: String,
    /// Largest error over its bound (PASS only).
    ratio: f64,
}

fn read_tensor(path: &Path) -> Result<Known, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = TensorProto::decode(bytes.as_slice()).map_err(|e| format!("{}: {e}", path.display()))?;
    Known::from_proto(&t, &path.display().to_string()).map_err(|e| e.to_string())
}

/// Approximate number of products feeding one output element of `node`, from the shapes the
/// test's inputs give (`shapes`, by ONNX name).
fn macs(node: &NodeProto, shapes: &HashMap<String, Vec<usize>>) -> f64 {
    let shape = |i: usize| node.input.get(i).and_then(|n| shapes.get(n));
    let attr_i = |name: &str| node.attribute.iter().find(|a| a.name() == name).map_or(0, |a| a.i());
    let k = match node.op_type() {
        "MatMul" => shape(0).and_then(|s| s.last().copied()),
        "Gemm" => shape(0).and_then(|s| s.get(if attr_i("transA") != 0 { 0 } else { 1 }).copied()),
        "Conv" => shape(1).map(|s| s.iter().skip(1).product()),
        "ReduceSum" => shape(0).map(|s| s.iter().product()),
        _ => None,
    };
    k.unwrap_or(1).max(1) as f64
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// A result: verdict, reason, and the largest error over its bound (for PASS).
type Checked = (Verdict, String, f64);

/// Reads one node test folder and checks it; on a refusal because a parameter must be fixed by
/// the model file, also checks the variant with inputs 1.. as initializers (the second value).
fn run_one(dir: &Path, rt: &tokio::runtime::Runtime, protocol: &str) -> (Checked, Option<Checked>) {
    let failed = |stage: &str, m: String| ((Verdict::Failed, format!("{stage}: {}", first_line(&m)), 0.0), None);
    let bytes = match std::fs::read(dir.join("model.onnx")) {
        Ok(b) => b,
        Err(e) => return failed("read", e.to_string()),
    };
    let proto = match ModelProto::decode(bytes.as_slice()) {
        Ok(m) => m,
        Err(e) => return failed("decode", e.to_string()),
    };
    let data = dir.join("test_data_set_0");
    let mut given = vec![];
    for i in 0.. {
        let p = data.join(format!("input_{i}.pb"));
        if !p.exists() {
            break;
        }
        let t = std::fs::read(&p)
            .map_err(|e| e.to_string())
            .and_then(|b| TensorProto::decode(b.as_slice()).map_err(|e| e.to_string()));
        match t {
            Ok(t) => given.push(t),
            Err(e) => return failed("input data", format!("{}: {e}", p.display())),
        }
    }
    let want = match read_tensor(&data.join("output_0.pb")) {
        Ok(k) => k,
        Err(e) => return failed("output data", e),
    };
    let graph_proto = proto.graph.clone().unwrap_or_default();
    let inputs: Vec<&str> = graph_proto
        .input
        .iter()
        .map(|vi| vi.name())
        .filter(|n| !graph_proto.initializer.iter().any(|t| t.name() == *n))
        .collect();
    let mut shapes: HashMap<String, Vec<usize>> =
        inputs.iter().zip(&given).map(|(n, t)| (n.to_string(), t.dims.iter().map(|&d| d as usize).collect())).collect();
    for t in &graph_proto.initializer {
        shapes.insert(t.name().to_string(), t.dims.iter().map(|&d| d as usize).collect());
    }
    let macs: f64 = graph_proto.node.iter().map(|n| macs(n, &shapes)).sum();

    let first = check(&bytes, &given, &want, macs, rt, protocol);
    let variant = if first.0 == Verdict::Refused && first.1.contains("must be fixed by the model file") {
        let mut m = proto.clone();
        let g = m.graph.get_or_insert_default();
        for (name, t) in inputs.iter().zip(&given).skip(1) {
            let mut t = t.clone();
            t.name = Some(name.to_string());
            g.initializer.push(t);
        }
        Some(check(&m.encode_to_vec(), &given[..1.min(given.len())], &want, macs, rt, protocol))
    } else {
        None
    };
    (first, variant)
}

/// Imports `bytes`, binds `given` to the model's inputs in order, runs under `ref` and compares
/// with `want`.
fn check(
    bytes: &[u8],
    given: &[TensorProto],
    want: &Known,
    macs: f64,
    rt: &tokio::runtime::Runtime,
    protocol: &str,
) -> Checked {
    let refused = |stage: &str, m: String| (Verdict::Refused, format!("{stage}: {}", first_line(&m)), 0.0);
    let failed = |stage: &str, m: String| (Verdict::Failed, format!("{stage}: {}", first_line(&m)), 0.0);
    let model = match import(bytes, &ImportOptions::default()) {
        Ok(m) => m,
        Err(e) => return refused("import", e.to_string()),
    };
    if model.inputs.len() != given.len() {
        return failed("bind", format!("the import has {} inputs, the test gives {}", model.inputs.len(), given.len()));
    }
    let mut inputs: HashMap<String, InputValue> = HashMap::new();
    for ((name, _, _), t) in model.inputs.iter().zip(given) {
        let k = match Known::from_proto(t, name) {
            Ok(k) => k,
            Err(e) => return failed("input data", e.to_string()),
        };
        inputs.insert(name.clone(), InputValue::Real { shape: k.shape, values: k.data });
    }
    for w in &model.weights {
        inputs.insert(w.name.clone(), InputValue::Real { shape: w.shape.clone(), values: w.values.clone() });
    }
    let output = model.output.clone();
    let roles = Roles { input_owner: "a".into(), model_owner: "b".into() };
    let mut spec = graph(model, "conformance", &roles, protocol, Reveal::Logits);
    if protocol == "rep3" {
        // rep3's third computing party, which owns nothing and learns nothing.
        spec.parties.push("c".into());
    }
    let cfg = SessionConfig { timeout: Duration::from_secs(60), ..Default::default() };
    let session = Session::from_graph(spec, mpcflow::builtins()).with_config(cfg);
    let tensors = match session.encode_inputs(inputs) {
        Ok(t) => t,
        Err(e) => return refused("encode", e.to_string()),
    };
    let opts = PlanOptions {
        input_shapes: tensors.iter().map(|(k, t)| (k.clone(), t.shape.clone())).collect(),
        ..Default::default()
    };
    let plan = match session.plan(opts) {
        Ok(p) => Arc::new(p),
        Err(e) => return refused("plan", e.to_string()),
    };
    let out = match rt.block_on(session.run_plan(plan, tensors)) {
        Ok(o) => o,
        Err(e) => return failed("run", e.to_string()),
    };
    let Some(revealed) = out.get(&output) else {
        return failed("run", format!("output `{output}` was not revealed"));
    };
    if revealed.tensor.shape != want.shape {
        return (Verdict::Wrong, format!("shape {:?}, expected {:?}", revealed.tensor.shape, want.shape), 0.0);
    }
    let got = revealed.tensor.to_f64(out.fixed_point);
    let ratios: Vec<f64> = got
        .iter()
        .zip(&want.data)
        .map(|(g, w)| {
            let err = (g - w).abs();
            if err.is_nan() { f64::INFINITY } else { err / (1e-3 * w.abs().max(1.0) + 2e-4 * macs) }
        })
        .collect();
    let (worst, ratio) =
        ratios.iter().copied().enumerate().fold((0, 0.0), |b, (i, r)| if r > b.1 { (i, r) } else { b });
    if ratio <= 1.0 {
        return (Verdict::Pass, String::new(), ratio);
    }
    let bad = ratios.iter().filter(|&&r| r > 1.0).count();
    let (g, w) = (got[worst], want.data[worst]);
    (
        Verdict::Wrong,
        format!("{bad}/{} elements out of bound; worst at [{worst}]: got {g}, expected {w} (macs {macs})", got.len()),
        ratio,
    )
}

fn print_table(title: &str, outcomes: &[Outcome]) -> BTreeMap<String, [usize; 4]> {
    // Per op type: pass, wrong, refused, failed.
    let mut table: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    let mut totals = [0usize; 4];
    for o in outcomes {
        for op in &o.ops {
            table.entry(op.clone()).or_default()[o.verdict as usize] += 1;
        }
        totals[o.verdict as usize] += 1;
    }
    eprintln!("\n{title} ({} tests)", outcomes.len());
    eprintln!("{:<20} {:>5} {:>6} {:>8} {:>7}", "op", "pass", "wrong", "refused", "failed");
    for (op, [p, w, r, f]) in &table {
        eprintln!("{op:<20} {p:>5} {w:>6} {r:>8} {f:>7}");
    }
    let [p, w, r, f] = totals;
    eprintln!("{:<20} {p:>5} {w:>6} {r:>8} {f:>7}", "total (tests)");
    for verdict in [Verdict::Wrong, Verdict::Failed, Verdict::Refused] {
        for o in outcomes.iter().filter(|o| o.verdict == verdict) {
            eprintln!("{:<8} {}: {}", format!("{verdict:?}").to_uppercase(), o.test, o.reason);
        }
    }
    if let Some(o) = outcomes.iter().filter(|o| o.verdict == Verdict::Pass).max_by(|a, b| a.ratio.total_cmp(&b.ratio)) {
        eprintln!("largest error / bound among PASS: {:.3} ({})", o.ratio, o.test);
    }
    table
}

#[test]
fn onnx_node_tests_under_ref() {
    conformance("ref");
}

#[test]
fn onnx_node_tests_under_fss2pc() {
    conformance("fss2pc");
}

#[test]
fn onnx_node_tests_under_rep3() {
    conformance("rep3");
}

/// Runs every extracted node test under `protocol`, prints the tables and asserts.
fn conformance(protocol: &str) {
    let dir = root().join("tests/fixtures/onnx/node");
    let mut tests: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run tests/fixtures/onnx/make_fixtures.sh", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    tests.sort();
    assert!(!tests.is_empty(), "no node tests in {}", dir.display());
    let rt = rt();
    let (mut outcomes, mut variants) = (vec![], vec![]);
    for path in &tests {
        let test = path.file_name().unwrap().to_string_lossy().to_string();
        let ops: Vec<String> = {
            let bytes = std::fs::read(path.join("model.onnx")).unwrap();
            let g = ModelProto::decode(bytes.as_slice()).map(|m| m.graph.unwrap_or_default()).unwrap_or_default();
            let mut ops: Vec<String> = g.node.iter().map(|n| n.op_type().to_string()).collect();
            ops.sort();
            ops.dedup();
            ops
        };
        let (first, variant) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_one(path, &rt, protocol)))
            .unwrap_or_else(|p| {
                let m = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                ((Verdict::Failed, format!("panic: {}", first_line(&m)), 0.0), None)
            });
        let outcome = |(verdict, reason, ratio): Checked| Outcome {
            test: test.clone(),
            ops: ops.clone(),
            verdict,
            reason,
            ratio,
        };
        outcomes.push(outcome(first));
        if let Some(v) = variant {
            variants.push(outcome(v));
        }
    }

    let table = print_table(&format!("ONNX node tests under {protocol}"), &outcomes);
    let fixed =
        print_table("REFUSED tests whose parameters must be fixed, re-run with inputs 1.. as initializers", &variants);
    let passes = |t: &BTreeMap<String, [usize; 4]>, op: &str| t.get(op).map_or(0, |c| c[Verdict::Pass as usize]);
    let without_pass: Vec<&str> = SUPPORTED
        .iter()
        .copied()
        .filter(|op| table.contains_key(*op) && passes(&table, op) + passes(&fixed, op) == 0)
        .collect();
    eprintln!("supported op types with tests but no PASS: {without_pass:?}");

    let bad: Vec<&str> = outcomes
        .iter()
        .chain(&variants)
        .filter(|o| matches!(o.verdict, Verdict::Wrong | Verdict::Failed))
        .map(|o| o.test.as_str())
        .collect();
    assert!(bad.is_empty(), "WRONG or FAILED node tests: {bad:?}");
    assert!(without_pass.is_empty(), "supported op types with node tests but no PASS: {without_pass:?}");
}
