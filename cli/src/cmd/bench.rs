//! `mpcflow bench`: end-to-end benchmarks of the runtime, in one process.
//!
//! Each scenario is a generated graph, run `--repeat` times two ways: end to end (the dealer
//! streaming material while the parties compute), and online only (the material dealt first and
//! held in memory, then the parties' run timed alone: what the papers report as online time;
//! beyond half the available memory, in phases, see `run --deal-first`).
//! The report gives both medians, estimates of the online time on a LAN and a WAN (the measured
//! online time plus the critical path's rounds × round trip plus the busiest party's online
//! bytes ÷ bandwidth, with the profiles of [`mpcflow_sdk::Network`]), online bytes, rounds on the
//! critical path, dealer bytes and the peak resident memory of the process during the
//! scenario's end-to-end runs (Linux: the high-water mark is reset before each scenario; the
//! online-only runs, which hold a run's material (or a phase's) at once, come after every
//! scenario's end-to-end runs).

use anyhow::{Context, Result, anyhow};
use mpcflow_runtime::{InputValue, Session, SessionConfig};
use mpcflow_sdk::graph::{Dim, GraphSpec};
use mpcflow_sdk::{DType, Op};
use std::time::Duration;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Scenarios: `chain:N` (N dependent nodes), `wide:N` (N independent inputs and nodes in one
    /// layer), `relu:N`, `cmp:N` (N comparisons), `matmul:M,K,N` (or `matmul:N` for N×N×N),
    /// `hospital:N` (the hospital statistics on N rows per hospital; `hospital_ranged:N` with
    /// the blood pressures declared in [0, 300]; `histogram:N` its six-bin histogram), `exp:N`, `sigmoid:N`, `tanh:N`, `gelu:N` (N
    /// elements), `softmax:N,ROW` and `layernorm:N,ROW` (N elements in rows of ROW; 128 and 768
    /// by default), `onnx:MODEL.onnx[:BATCH]`
    /// (an imported model on BATCH random inputs, batched; figures per input are then per
    /// image).
    /// The pipelines and models run as users run them; the other scenarios measure gates,
    /// every op under the protocol (as `--all-under-protocol` makes them all).
    /// Default: chain:10000 wide:1000.
    scenarios: Vec<String>,
    /// Skip the online-only runs (all material dealt first, then the parties timed): end to end
    /// only.
    #[arg(long)]
    no_online: bool,
    /// Protocol (`ref` measures the runtime alone, in the clear).
    #[arg(long, default_value = "fss2pc")]
    protocol: String,
    /// Compute kernel: `cpu` or `cuda` (or a plugin's). One that
    /// cannot run here (no GPU) falls back to `cpu` with a warning.
    #[arg(long, value_name = "NAME")]
    kernel: Option<String>,
    /// Compare over this many low bits (2 to 64), as a pipeline's `fixed_point: compare_bits:`
    /// does, in every scenario. Compared values must then differ by less than 2^(BITS−1) ulp:
    /// the `relu` and `cmp` data stay within ±100 (2^23 ulp at 16 fractional bits), so 25 bits
    /// suffice for them.
    #[arg(long, value_name = "BITS", value_parser = clap::value_parser!(u32).range(2..=64))]
    compare_bits: Option<u32>,
    /// Runs per scenario (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// How the in-process parties and dealer talk: `mem` (channels) or `tcp` (mutually
    /// authenticated TLS over loopback), to see what TLS and TCP cost without processes.
    #[arg(long, value_name = "NAME", default_value = "mem")]
    transport: String,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    tuning: super::TuningArgs,
    #[command(flatten)]
    choices: super::PlanChoices,
}

type Scenario = (GraphSpec, Vec<(String, InputValue)>);

/// Whether scenario `spec` is a whole computation as users run it (a pipeline or a model),
/// measured with local evaluation as they get it, rather than a gate measured under the
/// protocol (see `mpcflow_runtime::plan::local`).
fn is_workload(spec: &str) -> bool {
    let kind = spec.split(':').next().unwrap_or_default();
    matches!(kind, "hospital" | "hospital_ranged" | "histogram" | "onnx")
}

/// `x → neg → neg → … (n nodes)`, revealed at the end.
fn chain(n: usize) -> Scenario {
    let mut g = GraphSpec::new("chain", ["alice", "bob"]).input("x", "alice", DType::Fixed, vec![Dim::Fixed(1)]);
    let mut prev = "x".to_string();
    for i in 0..n {
        let name = format!("n{i}");
        g = g.node(&name, Op::Neg, [prev.as_str()]);
        prev = name;
    }
    g = g.output(&prev, ["alice", "bob"]);
    (g, vec![("x".into(), InputValue::from(vec![1.5]))])
}

/// `n` inputs (alternating owners), each scaled by its own node, concatenated and revealed.
fn wide(n: usize) -> Scenario {
    let mut g = GraphSpec::new("wide", ["alice", "bob"]);
    let mut inputs = vec![];
    let mut layer = vec![];
    for i in 0..n {
        let owner = if i % 2 == 0 { "alice" } else { "bob" };
        let x = format!("x{i}");
        g = g.input(&x, owner, DType::Fixed, vec![Dim::Fixed(1)]);
        inputs.push((x.clone(), InputValue::from(vec![i as f64])));
        let y = format!("y{i}");
        g = g.node(&y, Op::Scale { factor: 0.5 }, [x.as_str()]);
        layer.push(y);
    }
    g = g.node("all", Op::Concat { axis: 0 }, layer.iter().map(String::as_str)).output("all", ["alice", "bob"]);
    (g, inputs)
}

/// Deterministic pseudo-random test data (not secret; benchmarks only).
fn data(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2.0 * scale
        })
        .collect()
}

/// `relu(x)` on `n` elements of alice.
fn relu(n: usize) -> Scenario {
    let g = GraphSpec::new("relu", ["alice", "bob"])
        .input("x", "alice", DType::Fixed, vec![Dim::Fixed(n)])
        .node("y", Op::Relu, ["x"])
        .output("y", ["alice"]);
    (g, vec![("x".into(), InputValue::from(data(n, 1, 100.0)))])
}

/// An elementwise function (exp, sigmoid, tanh, gelu) on `n` elements of alice, spread over
/// the function's interesting range (exp: `[−12, 4]`, its use in softmax; the others `[−10, 10]`).
fn elementwise(op: Op, n: usize) -> Scenario {
    let name = op.name().to_string();
    let values: Vec<f64> = match op {
        Op::Exp => data(n, 8, 8.0).into_iter().map(|v| v - 4.0).collect(),
        _ => data(n, 8, 10.0),
    };
    let g = GraphSpec::new(&name, ["alice", "bob"])
        .input("x", "alice", DType::Fixed, vec![Dim::Fixed(n)])
        .node("y", op, ["x"])
        .output("y", ["alice"]);
    (g, vec![("x".into(), InputValue::from(values))])
}

/// softmax or layernorm over rows of `row` elements, `n` elements in all, of alice.
fn rows(op: Op, n: usize, row: usize) -> Scenario {
    let row = row.clamp(1, n.max(1));
    let shape = vec![n / row, row];
    let g = GraphSpec::new(op.name(), ["alice", "bob"])
        .input("x", "alice", DType::Fixed, shape.iter().map(|d| Dim::Fixed(*d)).collect())
        .node("y", op, ["x"])
        .output("y", ["alice"]);
    let len = shape.iter().product();
    (g, vec![("x".into(), InputValue::Real { shape, values: data(len, 9, 4.0) })])
}

/// `x > y` on `n` elements, one vector per party.
fn cmp(n: usize) -> Scenario {
    let g = GraphSpec::new("cmp", ["alice", "bob"])
        .input("x", "alice", DType::Fixed, vec![Dim::Fixed(n)])
        .input("y", "bob", DType::Fixed, vec![Dim::Fixed(n)])
        .node("gt", Op::Gt, ["x", "y"])
        .output("gt", ["alice"]);
    (g, vec![("x".into(), InputValue::from(data(n, 2, 100.0))), ("y".into(), InputValue::from(data(n, 3, 100.0)))])
}

/// `x · w` with `x: m×k` of alice and `w: k×n` of bob.
fn matmul(m: usize, k: usize, n: usize) -> Scenario {
    let g = GraphSpec::new("matmul", ["alice", "bob"])
        .input("x", "alice", DType::Fixed, vec![Dim::Fixed(m), Dim::Fixed(k)])
        .input("w", "bob", DType::Fixed, vec![Dim::Fixed(k), Dim::Fixed(n)])
        .node("y", Op::Matmul, ["x", "w"])
        .output("y", ["alice"]);
    let x = InputValue::Real { shape: vec![m, k], values: data(m * k, 4, 4.0) };
    let w = InputValue::Real { shape: vec![k, n], values: data(k * n, 5, 0.25) };
    (g, vec![("x".into(), x), ("w".into(), w)])
}

/// graphs/hospital_stats.yaml's computation on `n` rows per hospital.
fn hospital(n: usize) -> Result<Scenario> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../graphs/hospital_stats.yaml");
    let p = mpcflow_runtime::pipeline::Pipeline::from_path(&path).map_err(|e| anyhow!("{e}"))?;
    let north: Vec<f64> = data(n, 6, 15.0).into_iter().map(|v| v + 130.0).collect();
    let south: Vec<f64> = data(n, 7, 15.0).into_iter().map(|v| v + 133.0).collect();
    Ok((p.spec, vec![("north_bp".into(), InputValue::from(north)), ("south_bp".into(), InputValue::from(south))]))
}

/// graphs/hospital_histogram.yaml (six bins, blood pressures declared in `[0, 300]`) on `n`
/// rows per hospital.
fn histogram(n: usize) -> Result<Scenario> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../graphs/hospital_histogram.yaml");
    let p = mpcflow_runtime::pipeline::Pipeline::from_path(&path).map_err(|e| anyhow!("{e}"))?;
    let (_, inputs) = hospital(n)?;
    Ok((p.spec, inputs))
}

/// [`hospital`] with the blood pressures declared in `[0, 300]`: what a declared range buys.
fn hospital_ranged(n: usize) -> Result<Scenario> {
    let (spec, inputs) = hospital(n)?;
    Ok((spec.input_range("north_bp", 0.0, 300.0).input_range("south_bp", 0.0, 300.0), inputs))
}

/// An ONNX model on `batch` random inputs (one run); the model owner's weights from the file.
fn onnx(path: &str, batch: usize) -> Result<Scenario> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
    let opts = mpcflow_importer_onnx::ImportOptions { batch, ..Default::default() };
    let model = mpcflow_importer_onnx::import(&bytes, &opts).map_err(|e| anyhow!("{path}: {e}"))?;
    let mut inputs: Vec<(String, InputValue)> = model
        .inputs
        .iter()
        .enumerate()
        .map(|(i, (n, _, shape))| {
            let len = shape.iter().product();
            (n.clone(), InputValue::Real { shape: shape.clone(), values: data(len, 20 + i as u64, 1.0) })
        })
        .collect();
    inputs.extend(
        model
            .weights
            .iter()
            .map(|w| (w.name.clone(), InputValue::Real { shape: w.shape.clone(), values: w.values.clone() })),
    );
    let roles = mpcflow::import::Roles { input_owner: "alice".into(), model_owner: "bob".into() };
    let stem = std::path::Path::new(path).file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let g = mpcflow::import::graph(model, stem, &roles, "fss2pc", mpcflow::import::Reveal::Logits);
    Ok((g, inputs))
}

fn scenario(spec: &str) -> Result<Scenario> {
    let (kind, arg) = spec.split_once(':').unwrap_or((spec, ""));
    if kind == "onnx" {
        let (path, batch) = match arg.rsplit_once(':') {
            Some((p, b)) => (p, b.parse().with_context(|| format!("scenario `{spec}`: `{b}` is not a batch size"))?),
            None => (arg, 1),
        };
        return onnx(path, batch);
    }
    let nums: Vec<usize> = if arg.is_empty() {
        vec![]
    } else {
        arg.split(',')
            .map(|x| x.parse().with_context(|| format!("scenario `{spec}`: `{x}` is not a count")))
            .collect::<Result<_>>()?
    };
    let n = nums.first().copied().unwrap_or(1000);
    match (kind, nums.as_slice()) {
        ("chain", _) => Ok(chain(n)),
        ("wide", _) => Ok(wide(n)),
        ("relu", _) => Ok(relu(n)),
        ("cmp", _) => Ok(cmp(n)),
        ("matmul", [m, k, n]) => Ok(matmul(*m, *k, *n)),
        ("matmul", _) => Ok(matmul(n, n, n)),
        ("hospital", _) => hospital(n),
        ("hospital_ranged", _) => hospital_ranged(n),
        ("histogram", _) => histogram(n),
        ("exp", _) => Ok(elementwise(Op::Exp, n)),
        ("sigmoid", _) => Ok(elementwise(Op::Sigmoid, n)),
        ("tanh", _) => Ok(elementwise(Op::Tanh, n)),
        ("gelu", _) => Ok(elementwise(Op::Gelu, n)),
        ("softmax", [n, row]) => Ok(rows(Op::Softmax { axis: -1 }, *n, *row)),
        ("softmax", _) => Ok(rows(Op::Softmax { axis: -1 }, n, 128)),
        ("layernorm", [n, row]) => Ok(rows(Op::Layernorm { axis: -1, epsilon: 1e-5 }, *n, *row)),
        ("layernorm", _) => Ok(rows(Op::Layernorm { axis: -1, epsilon: 1e-5 }, n, 768)),
        _ => Err(anyhow!(
            "unknown scenario `{spec}` (chain:N, wide:N, relu:N, cmp:N, matmul:M,K,N, hospital:N, hospital_ranged:N, histogram:N, \
             exp:N, sigmoid:N, tanh:N, gelu:N, softmax:N,ROW, layernorm:N,ROW, onnx:MODEL.onnx:BATCH)"
        )),
    }
}

/// Resets the kernel's peak-RSS counter for this process (Linux); false elsewhere.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident set size in bytes since the last reset (Linux `VmHWM`).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn run(a: Args) -> Result<()> {
    let specs = if a.scenarios.is_empty() {
        vec!["chain:10000".to_string(), "wide:1000".to_string()]
    } else {
        a.scenarios.clone()
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (lan, wan) = (mpcflow_sdk::Network::Lan, mpcflow_sdk::Network::Wan);
    if !a.json {
        println!(
            "online: material dealt ahead; lan_s, wan_s: online on {} and on {}, with the forms planned for `{}`",
            lan.describe(),
            wan.describe(),
            a.choices.network()
        );
        println!(
            "{:<20} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>7} {:>12} {:>9}",
            "scenario",
            "e2e_s",
            "online_s",
            "lan_s",
            "wan_s",
            "elements",
            "online_B/el",
            "rounds",
            "dealer_B/el",
            "peak_MiB"
        );
    }
    // Every scenario's end-to-end runs first, then the online-only ones: those hold a run's
    // material (or a phase's) at once, and what the process keeps of it would inflate the peak
    // memory of the scenarios after them.
    let mut measured = vec![];
    for spec in &specs {
        let (graph, inputs) = scenario(spec)?;
        let mut graph = with_parties_for(graph, &a.protocol);
        if let Some(bits) = a.compare_bits {
            graph.fixed_point = graph.fixed_point.with_compare_bits(bits);
        }
        // An imported model is measured per input (image), the rest per element.
        let elements = if spec.starts_with("onnx:") {
            inputs.first().and_then(|(_, v)| v.shape().first().copied()).unwrap_or(1)
        } else {
            elements_of(&inputs)
        };
        let base = SessionConfig {
            protocol: Some(a.protocol.clone()),
            timeout: Duration::from_secs(600),
            kernel: a.kernel.clone(),
            tuning: a.tuning.tuning()?,
            network: a.choices.network(),
            transport: a.transport.clone(),
            // The gate scenarios measure the protocol's gates: their inputs are one party's,
            // which that party would otherwise compute on in the clear.
            all_under_protocol: a.choices.all_under_protocol || !is_workload(spec),
            ..Default::default()
        };
        crate::memory::release_freed_memory();
        let reset = reset_peak_rss();
        let (mut e2e, mut last) = (vec![], None);
        for _ in 0..a.repeat.max(1) {
            let (report, wall) = run_end_to_end(&rt, &graph, &inputs, &base)?;
            e2e.push(wall);
            last = Some(report);
        }
        let peak = if reset { peak_rss() } else { None };
        let report = last.ok_or_else(|| anyhow!("no run"))?;
        measured.push((spec, graph, inputs, base, elements, report, median(e2e).unwrap_or(f64::NAN), peak));
    }
    for (spec, graph, inputs, base, elements, report, e2e, peak) in measured {
        let mut online = vec![];
        for _ in 0..if a.no_online { 0 } else { a.repeat.max(1) } {
            online.push(run_online(&rt, &graph, &inputs, &base)?);
        }
        let online = median(online);
        let parties = report.parties.len().max(1) as f64;
        let online_bytes: u64 = report.totals.bytes_sent.iter().sum();
        let busiest = report.totals.bytes_sent.iter().max().copied().unwrap_or(0);
        let dealer: u64 = report.totals.dealer_bytes.iter().sum();
        let rounds = report.totals.critical_rounds;
        let on = |net: mpcflow_sdk::Network| online.map(|s| s + net.seconds(rounds, busiest));
        let per_el = |b: u64| b as f64 / parties / elements.max(1) as f64;
        if a.json {
            let doc = serde_json::json!({
                "scenario": spec, "protocol": a.protocol, "network": base.network.name(), "nodes": report.nodes.len(),
                "runs": a.repeat.max(1), "median_s": e2e, "online_s": online, "lan_online_s": on(lan),
                "wan_online_s": on(wan), "elements": elements, "online_bytes": online_bytes,
                "online_bytes_per_element_per_party": per_el(online_bytes), "critical_rounds": rounds,
                "dealer_bytes": dealer, "dealer_bytes_per_element_per_party": per_el(dealer), "peak_rss_bytes": peak,
            });
            println!("{doc}");
        } else {
            let secs = |s: Option<f64>| s.map(|s| format!("{s:.4}")).unwrap_or_else(|| "-".into());
            let peak = peak.map(|b| format!("{:.1}", b as f64 / 1_048_576.0)).unwrap_or_else(|| "n/a".into());
            println!(
                "{:<20} {:>9.4} {:>9} {:>9} {:>9} {:>9} {:>11.1} {:>7} {:>12.1} {:>9}",
                spec,
                e2e,
                secs(online),
                secs(on(lan)),
                secs(on(wan)),
                elements,
                per_el(online_bytes),
                rounds,
                per_el(dealer),
                peak
            );
        }
    }
    Ok(())
}

/// `graph` with computing parties added, who own nothing and learn nothing, until it has as
/// many as `protocol` runs with: rep3's third party (`carol`) beside a scenario's two.
fn with_parties_for(mut graph: GraphSpec, protocol: &str) -> GraphSpec {
    let need = mpcflow::builtins().protocol(protocol).map_or(0, |p| p.descriptor().parties.min);
    for name in ["carol", "dave", "erin"] {
        if graph.parties.len() >= need {
            break;
        }
        if !graph.parties.iter().any(|p| p == name) {
            graph.parties.push(name.into());
        }
    }
    graph
}

/// The median of some timings.
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// Elements of the largest input: what "per element" figures are relative to.
fn elements_of(inputs: &[(String, InputValue)]) -> usize {
    inputs.iter().map(|(_, v)| v.shape().iter().product::<usize>()).max().unwrap_or(1)
}

/// One run end to end, the dealer streaming material while the parties compute.
fn run_end_to_end(
    rt: &tokio::runtime::Runtime,
    graph: &GraphSpec,
    inputs: &[(String, InputValue)],
    base: &SessionConfig,
) -> Result<(mpcflow_runtime::RunReport, f64)> {
    let start = std::time::Instant::now();
    let session = Session::from_graph(graph.clone(), mpcflow::builtins()).with_config(base.clone());
    let out = rt.block_on(session.run(inputs.to_vec())).map_err(|e| anyhow!("{e}"))?;
    Ok((out.report, start.elapsed().as_secs_f64()))
}

/// One run of the online phase alone: the material is dealt first and held in memory (not
/// timed; in phases beyond half the available memory), then the parties run; returns the
/// seconds of their run.
fn run_online(
    rt: &tokio::runtime::Runtime,
    graph: &GraphSpec,
    inputs: &[(String, InputValue)],
    base: &SessionConfig,
) -> Result<f64> {
    let config =
        SessionConfig { deal_first: true, deal_first_phase_bytes: super::deal_first::budget("auto")?, ..base.clone() };
    let session = Session::from_graph(graph.clone(), mpcflow::builtins()).with_config(config);
    let out = rt.block_on(session.run(inputs.to_vec())).map_err(|e| anyhow!("{e}"))?;
    Ok(out.report.online_wall_s)
}
