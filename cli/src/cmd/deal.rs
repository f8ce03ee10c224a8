//! `mpcflow deal FILE --out DIR`: the offline phase ahead of time, one material file per party.

use anyhow::{Result, anyhow};
use mpcflow_runtime::SessionConfig;
use mpcflow_runtime::plan::PlanOptions;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Pipeline file.
    file: PathBuf,
    #[command(flatten)]
    plugins: super::PluginArgs,
    #[command(flatten)]
    tuning: super::TuningArgs,
    #[command(flatten)]
    choices: super::PlanChoices,
    /// Directory for the material files (one per party: PARTY.mpcmat).
    #[arg(long)]
    out: PathBuf,
    /// Deal for this protocol instead of the file's.
    #[arg(long)]
    protocol: Option<String>,
    /// Size of a symbolic dimension (NAME=SIZE); the run's data must have the same sizes.
    #[arg(long = "dim")]
    dims: Vec<String>,
}

pub fn run(a: Args) -> Result<()> {
    let config = SessionConfig {
        protocol: a.protocol.clone(),
        tuning: a.tuning.tuning()?,
        network: a.choices.network(),
        all_under_protocol: a.choices.all_under_protocol,
        ..Default::default()
    };
    let session = a.plugins.session(&a.file)?.with_config(config);
    let dims = super::parse_dims(&a.dims)?;
    let plan = session.plan(PlanOptions { dims, ..Default::default() }).map_err(|e| anyhow!("{e}"))?;
    if !plan.sampled_dims.is_empty() {
        return Err(anyhow!(
            "give the size of every symbolic dimension, the material depends on it: --dim {}",
            plan.sampled_dims.iter().map(|d| format!("{d}=SIZE")).collect::<Vec<_>>().join(" --dim ")
        ));
    }
    if !plan.needs_dealer {
        return Err(anyhow!("protocol `{}` needs no dealer material", plan.protocol));
    }
    let start = Instant::now();
    let sizes = session.deal(&plan, &a.out).map_err(|e| anyhow!("{e}"))?;
    for (party, size) in plan.parties.iter().zip(&sizes) {
        let path = mpcflow_runtime::material_file::path_for(&a.out, party);
        println!("{}: {size} bytes for {party}", path.display());
    }
    println!(
        "dealt {} in {:.3} s for plan {}",
        plan.name,
        start.elapsed().as_secs_f64(),
        &plan.fingerprint_hex()[..16]
    );
    println!("each file is used once: run with --material {}", a.out.display());
    Ok(())
}
