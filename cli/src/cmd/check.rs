//! `mpcflow check FILE`: validate and summarise.

use anyhow::Result;
use mpcflow_sdk::protocol::NodeKind;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: super::PlanArgs,
}

pub fn run(a: Args) -> Result<()> {
    let (pipeline, plan) = a.target.plan()?;
    let spec = &pipeline.spec;
    println!("{}: ok", a.target.file.display());
    println!("  name:        {}", plan.name);
    println!("  parties:     {}", plan.parties.join(", "));
    if plan.owner_io.has_owners() {
        println!("  owners:      {} (bring inputs, compute nothing)", plan.owner_io.owners.join(", "));
    }
    println!("  protocol:    {}{}", plan.protocol, if plan.secure { "" } else { " (INSECURE: plaintext reference)" });
    println!("  fixed point: {} fractional bits", plan.fixed_point.frac_bits);
    if let Some(k) = &pipeline.kernel {
        println!("  kernel:      {k} (demanded by the file)");
    }
    for inp in &spec.inputs {
        let n = plan.node_id(&inp.name).map(|i| &plan.nodes[i as usize].desc.output);
        println!(
            "  input  {:<16} {} {:?} of {}",
            inp.name,
            inp.dtype,
            n.map(|t| t.shape.clone()).unwrap_or_default(),
            inp.owner
        );
    }
    for o in &spec.outputs {
        println!("  output {:<16} revealed to {}", o.name, o.reveal_to.join(", "));
    }
    let ops = plan.nodes.iter().filter(|n| matches!(n.desc.kind, NodeKind::Op(_))).count();
    println!(
        "  nodes:       {} in the file, {} op nodes after lowering, {} in the plan",
        spec.nodes.len(),
        ops,
        plan.nodes.len()
    );
    if !plan.sampled_dims.is_empty() {
        let dims: Vec<String> =
            plan.dims.iter().filter(|(k, _)| plan.sampled_dims.contains(k)).map(|(k, v)| format!("{k}={v}")).collect();
        println!("  symbolic dimensions checked with sample sizes {} (the data fixes them)", dims.join(", "));
    }
    println!("  fingerprint: {}", plan.fingerprint_hex());
    Ok(())
}
