//! `mpcflow plan FILE`: per-node and total rounds and bytes from the cost model, or `--dot`.

use anyhow::Result;
use mpcflow_runtime::plan::to_dot;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: super::PlanArgs,
    /// Print the plan as a Graphviz graph (render with `dot -Tsvg`).
    #[arg(long)]
    dot: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

fn bytes(b: u64) -> String {
    match b {
        0..1024 => format!("{b} B"),
        1024..1_048_576 => format!("{:.1} KiB", b as f64 / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", b as f64 / 1_048_576.0),
        _ => format!("{:.2} GiB", b as f64 / 1_073_741_824.0),
    }
}

pub fn run(a: Args) -> Result<()> {
    let (_, plan) = a.target.plan()?;
    if a.dot {
        print!("{}", to_dot(&plan));
        return Ok(());
    }
    let total = plan.total_cost();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&plan.to_json())?);
        return Ok(());
    }
    println!(
        "plan of {} under {} ({} parties: {})",
        plan.name,
        plan.protocol,
        plan.parties.len(),
        plan.parties.join(", ")
    );
    println!("network: {} (set with --network local|lan|wan)", plan.network.describe());
    if !plan.sampled_dims.is_empty() {
        let dims: Vec<String> =
            plan.dims.iter().filter(|(k, _)| plan.sampled_dims.contains(k)).map(|(k, v)| format!("{k}={v}")).collect();
        println!("sample sizes for symbolic dimensions: {} (set them with --dim NAME=SIZE)", dims.join(", "));
    }
    let party_cols: Vec<String> = plan.parties.iter().map(|p| format!("{p:>10}")).collect();
    // A protocol without a dealer (rep3) has no dealer columns.
    let dealer_cols =
        |cols: &[String], gap: &str| if plan.needs_dealer { format!("{gap}{}", cols.join(" ")) } else { String::new() };
    println!(
        "{:<28} {:<12} {:<16} {:>6}  online sent by {}{}  form",
        "node",
        "op",
        "shape",
        "rounds",
        party_cols.join(" "),
        dealer_cols(&party_cols, "   dealer to ")
    );
    for n in &plan.nodes {
        let on: Vec<String> = n.cost.online_bytes.iter().map(|&b| format!("{:>10}", bytes(b))).collect();
        let de: Vec<String> = n.cost.dealer_bytes.iter().map(|&b| format!("{:>10}", bytes(b))).collect();
        let name: String = n.desc.name.chars().take(28).collect();
        println!(
            "{:<28} {:<12} {:<16} {:>6}  {}{}  {}",
            name,
            n.desc.kind.label(),
            format!("{:?}", n.desc.output.shape),
            n.cost.rounds,
            on.join(" "),
            dealer_cols(&de, "                "),
            n.cost.form
        );
    }
    let on: Vec<String> = total.online_bytes.iter().map(|&b| format!("{:>10}", bytes(b))).collect();
    let de: Vec<String> = total.dealer_bytes.iter().map(|&b| format!("{:>10}", bytes(b))).collect();
    println!(
        "{:<28} {:<12} {:<16} {:>6}  {}{}",
        "TOTAL",
        "",
        "",
        total.rounds,
        on.join(" "),
        dealer_cols(&de, "                ")
    );
    println!(
        "online latency: {} on the critical path ({} summed over nodes)",
        rounds(plan.critical_rounds() as u64),
        total.rounds
    );
    let material: u64 = total.dealer_bytes.iter().sum();
    if material > 0 {
        println!("dealer material: {} in all, streamed while the parties run", bytes(material));
    }
    let peak = mpcflow_runtime::plan::expected_peak(&plan, mpcflow_runtime::schedule::MATERIAL_WINDOW_BYTES as u64);
    let each: Vec<String> =
        plan.parties.iter().zip(&peak.per_party).map(|(p, &b)| format!("{p} {}", bytes(b))).collect();
    println!(
        "expected peak memory: {} in one process (`run`); {} as separate processes (an estimate: values alive at the plan's worst point, material read ahead, the largest node once more)",
        bytes(peak.one_process),
        each.join(", ")
    );
    println!("fingerprint: {}", plan.fingerprint_hex());
    Ok(())
}

/// `1 round`, `3 rounds`.
fn rounds(n: u64) -> String {
    if n == 1 { "1 round".into() } else { format!("{n} rounds") }
}
