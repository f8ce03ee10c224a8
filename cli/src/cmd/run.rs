//! `mpcflow run FILE --input ...`: all parties and the dealer in this process.

use super::InputArgs;
use super::outputs::{OutputArgs, Shown};
use anyhow::{Context, Result, anyhow};
use mpcflow_runtime::SessionConfig;
use mpcflow_runtime::plan::PlanOptions;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

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
    /// Run with this protocol instead of the file's.
    #[arg(long)]
    protocol: Option<String>,
    /// Compute kernel: `cpu` or `cuda` (or a plugin's). Overrides the file's `kernel:`; one that
    /// cannot run here (no GPU) falls back to `cpu` with a warning.
    #[arg(long, value_name = "NAME")]
    kernel: Option<String>,
    #[command(flatten)]
    inputs: InputArgs,
    #[command(flatten)]
    out: OutputArgs,
    /// Read the dealer's material from the files `mpcflow deal` wrote in DIR (used once).
    #[arg(long)]
    material: Option<PathBuf>,
    /// Deal the material before the parties use it, held in memory (the offline phase ahead of
    /// the online one), so that `online_wall_s` times the online phase alone. Material beyond
    /// SIZE (default: half the available memory on Linux, else unlimited) is dealt and run in phases of at most SIZE:
    /// `online_wall_s` adds up the phases, `online_phases` counts them.
    #[arg(long, value_name = "SIZE", num_args = 0..=1, require_equals = true, default_missing_value = "auto", conflicts_with = "material")]
    deal_first: Option<String>,
    /// Seconds any wait may take before the run fails.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// How the in-process parties and dealer talk: `mem` (channels) or `tcp` (mutually
    /// authenticated TLS over loopback, as separate processes would), or a plugin's transport.
    #[arg(long, value_name = "NAME", default_value = "mem")]
    transport: String,
}

/// Shows a progress bar on stderr if the run takes more than a second and stderr is a terminal.
fn progress_bar(
    total: usize,
    done: Arc<AtomicUsize>,
    finished: Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    std::thread::Builder::new()
        .name("progress".into())
        .spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            if finished.load(Ordering::Acquire) {
                return;
            }
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} nodes")
            {
                bar.set_style(style);
            }
            while !finished.load(Ordering::Acquire) {
                bar.set_position(done.load(Ordering::Relaxed) as u64);
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        })
        .ok()
}

pub fn run(a: Args) -> Result<()> {
    if !(a.timeout > 0.0 && a.timeout.is_finite()) {
        return Err(anyhow!("--timeout must be a positive number of seconds"));
    }

    let done = Arc::new(AtomicUsize::new(0));
    let config = SessionConfig {
        protocol: a.protocol.clone(),
        timeout: Duration::from_secs_f64(a.timeout),
        progress: Some(done.clone()),
        material_dir: a.material.clone(),
        deal_first: a.deal_first.is_some(),
        deal_first_phase_bytes: a.deal_first.as_deref().map(super::deal_first::budget).transpose()?.unwrap_or(u64::MAX),
        kernel: a.kernel.clone(),
        tuning: a.tuning.tuning()?,
        network: a.choices.network(),
        all_under_protocol: a.choices.all_under_protocol,
        transport: a.transport.clone(),
        ..Default::default()
    };
    let session = a.plugins.session(&a.file)?.with_config(config);
    let inputs = a.inputs.collect(&session.inputs_to_give(None))?;
    let tensors = session.encode_inputs(inputs).map_err(|e| anyhow!("{e}"))?;
    let opts = PlanOptions {
        input_shapes: tensors.iter().map(|(k, t)| (k.clone(), t.shape.clone())).collect(),
        ..Default::default()
    };
    let plan = Arc::new(session.plan(opts).map_err(|e| anyhow!("{e}"))?);

    let finished = Arc::new(AtomicBool::new(false));
    let bar = progress_bar(plan.nodes.len(), done, finished.clone());
    let rt =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let result = rt.block_on(session.run_plan(plan.clone(), tensors));
    finished.store(true, Ordering::Release);
    if let Some(b) = bar {
        let _ = b.join();
    }
    let out = result.map_err(|e| anyhow!("{e}"))?;

    let shown: Vec<Shown<'_>> =
        out.outputs.iter().map(|o| Shown { name: &o.name, parties: &o.parties, tensor: &o.tensor }).collect();
    let mut extra = serde_json::json!({
        "protocol": out.report.protocol,
        "fingerprint": out.report.fingerprint,
        "wall_s": out.report.wall_s,
        "online_bytes": out.report.totals.bytes_sent,
        "rounds": out.report.totals.critical_rounds,
    });
    if a.deal_first.is_some() {
        extra["online_wall_s"] = out.report.online_wall_s.into();
        extra["online_phases"] = out.report.online_phases.into();
    }
    a.out.give(&shown, out.fixed_point, &out.report, extra)?;
    Ok(())
}
