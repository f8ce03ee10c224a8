//! `mpcflow party --as NAME --deployment parties.yaml FILE --input ...`: one party in its own
//! process. It loads only its own inputs, connects to the other parties and the dealer named in
//! the deployment file, agrees with them on the pipeline and plan, and shows only the outputs
//! revealed to it.

use super::outputs::{OutputArgs, Shown};
use super::{InputArgs, seconds};
use anyhow::{Context, Result, anyhow};
use mpcflow_runtime::Session;
use mpcflow_transport_tcp::TcpTransport;
use std::path::PathBuf;
use std::sync::Arc;

/// Connection settings shared by `party` and `dealer`.
#[derive(clap::Args)]
pub struct Connection {
    /// Deployment file: every endpoint's address and certificate (see `mpcflow certs new`).
    #[arg(long)]
    pub deployment: PathBuf,
    /// Run with this protocol instead of the file's (every process must use the same).
    #[arg(long)]
    pub protocol: Option<String>,
    /// Seconds any wait may take before the run fails.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// Seconds to wait for every other process to be up and connected.
    #[arg(long, default_value_t = 60.0)]
    pub connect_timeout: f64,
    #[command(flatten)]
    pub plugins: super::PluginArgs,
    #[command(flatten)]
    pub tuning: super::TuningArgs,
    #[command(flatten)]
    pub choices: super::PlanChoices,
}

/// What only a computing party takes (the dealer sees no input and computes on no kernel).
#[derive(clap::Args)]
pub struct PartyOptions {
    /// Allow an insecure protocol (`ref`), which sends private inputs to the other parties in
    /// the clear. For testing pipelines only.
    #[arg(long)]
    pub insecure: bool,
    /// Compute kernel: `cpu` or `cuda` (or a plugin's). Overrides the file's `kernel:`; one that
    /// cannot run here (no GPU) falls back to `cpu` with a warning.
    #[arg(long, value_name = "NAME")]
    pub kernel: Option<String>,
}

impl Connection {
    /// The pipeline session and this endpoint's TLS transport ([`mpcflow::deploy::open`]).
    pub fn open(
        &self,
        file: &std::path::Path,
        me: &str,
        party: Option<&PartyOptions>,
    ) -> Result<(Session, Arc<TcpTransport>)> {
        let connect = mpcflow::deploy::Connect {
            deployment: self.deployment.clone(),
            protocol: self.protocol.clone(),
            timeout: seconds("--timeout", self.timeout)?,
            connect_timeout: seconds("--connect-timeout", self.connect_timeout)?,
            plugins: self.plugins.plugins.clone(),
            tuning: self.tuning.tuning()?,
            network: self.choices.network(),
            all_under_protocol: self.choices.all_under_protocol,
            allow_insecure: party.is_some_and(|p| p.insecure),
            kernel: party.and_then(|p| p.kernel.clone()),
        };
        mpcflow::deploy::open(file, me, &connect).map_err(|e| anyhow!(e))
    }
}

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Pipeline file (every process must run the same pipeline).
    file: PathBuf,
    /// This party's name, as in the pipeline's `parties` and the deployment file.
    #[arg(long = "as", value_name = "NAME")]
    name: String,
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    options: PartyOptions,
    #[command(flatten)]
    inputs: InputArgs,
    #[command(flatten)]
    out: OutputArgs,
}

pub fn run(a: Args) -> Result<()> {
    let (session, transport) = a.connection.open(&a.file, &a.name, Some(&a.options))?;
    let inputs = a.inputs.collect(&session.inputs_to_give(Some(&a.name)))?;
    let rt =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let out = rt.block_on(session.run_as_party(&a.name, transport, inputs)).map_err(|e| anyhow!("{e}"))?;
    let report = mpcflow_runtime::RunReport::new(&out.plan, &out.run);
    let me = out.plan.parties.iter().position(|p| p == &a.name).unwrap_or(0);
    let shown: Vec<Shown<'_>> =
        out.outputs.iter().map(|(name, parties, tensor)| Shown { name, parties, tensor }).collect();
    let extra = serde_json::json!({
        "party": a.name,
        "protocol": report.protocol,
        "fingerprint": report.fingerprint,
        "wall_s": report.wall_s,
        "setup_s": out.setup_s,
        "online_bytes_sent": report.totals.bytes_sent.get(me),
        "rounds": report.totals.critical_rounds,
    });
    a.out.give(&shown, out.plan.fixed_point, &report, extra)?;
    if shown.is_empty() && !a.out.json {
        eprintln!("{}: done; no output is revealed to {}", out.plan.name, a.name);
    }
    Ok(())
}
