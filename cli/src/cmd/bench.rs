//! `mpcflow bench`: end-to-end benchmarks of the runtime, in one process.
//!
//! Each scenario is a generated graph, run `--repeat` times; the report gives the median wall
//! time, online bytes, rounds on the critical path, dealer bytes and the peak resident memory
//! of the process during the scenario (Linux: the high-water mark is reset before each one).

use anyhow::{Context, Result, anyhow};
use mpcflow_runtime::{InputValue, Session, SessionConfig};
use mpcflow_sdk::graph::{Dim, GraphSpec};
use mpcflow_sdk::{DType, Op};
use std::time::Duration;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Scenarios: `chain:N` (N dependent nodes), `wide:N` (N independent inputs and nodes in one
    /// layer). Default: chain:10000 wide:1000.
    scenarios: Vec<String>,
    /// Protocol.
    #[arg(long, default_value = "ref")]
    protocol: String,
    /// Runs per scenario (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

type Scenario = (GraphSpec, Vec<(String, InputValue)>);

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

fn scenario(spec: &str) -> Result<Scenario> {
    let (kind, n) = spec.split_once(':').unwrap_or((spec, ""));
    let n: usize = if n.is_empty() {
        1000
    } else {
        n.parse().with_context(|| format!("scenario `{spec}`: `{n}` is not a count"))?
    };
    match kind {
        "chain" => Ok(chain(n)),
        "wide" => Ok(wide(n)),
        _ => Err(anyhow!("unknown scenario `{spec}` (use chain:N or wide:N)")),
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
    if !a.json {
        println!(
            "{:<14} {:>7} {:>12} {:>12} {:>14} {:>8} {:>12} {:>10}",
            "scenario", "nodes", "median_s", "us/node", "online_bytes", "rounds", "dealer_bytes", "peak_MiB"
        );
    }
    for spec in &specs {
        let (graph, inputs) = scenario(spec)?;
        let config = SessionConfig {
            protocol: Some(a.protocol.clone()),
            timeout: Duration::from_secs(300),
            ..Default::default()
        };
        let session = Session::from_graph(graph, mpcflow::builtins()).with_config(config);
        let reset = reset_peak_rss();
        let mut times = vec![];
        let mut last = None;
        for _ in 0..a.repeat.max(1) {
            let out = rt.block_on(session.run(inputs.clone())).map_err(|e| anyhow!("{spec}: {e}"))?;
            times.push(out.report.wall_s);
            last = Some(out.report);
        }
        let report = last.ok_or_else(|| anyhow!("no run"))?;
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let nodes = report.nodes.len();
        let online: u64 = report.totals.bytes_sent.iter().sum();
        let dealer: u64 = report.totals.dealer_bytes.iter().sum();
        let peak = if reset { peak_rss() } else { None };
        if a.json {
            let doc = serde_json::json!({
                "scenario": spec, "protocol": a.protocol, "nodes": nodes, "runs": times.len(), "median_s": median,
                "us_per_node": median * 1e6 / nodes as f64, "online_bytes": online, "critical_rounds": report.totals.critical_rounds,
                "dealer_bytes": dealer, "peak_rss_bytes": peak,
            });
            println!("{doc}");
        } else {
            let peak = peak.map(|b| format!("{:.1}", b as f64 / 1_048_576.0)).unwrap_or_else(|| "n/a".into());
            println!(
                "{:<14} {:>7} {:>12.4} {:>12.2} {:>14} {:>8} {:>12} {:>10}",
                spec,
                nodes,
                median,
                median * 1e6 / nodes as f64,
                online,
                report.totals.critical_rounds,
                dealer,
                peak
            );
        }
    }
    Ok(())
}
