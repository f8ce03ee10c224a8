//! `mpcflow owner --as NAME --deployment parties.yaml FILE --input ...`: one data owner in its
//! own process. It loads only its own inputs, splits them into random shares, one for each
//! computing party named in the deployment file (it never connects to the dealer or to other
//! owners), and shows only the outputs revealed to it. See `mpcflow_runtime::owners`.

use super::InputArgs;
use super::outputs::Shown;
use super::party::Connection;
use anyhow::{Context, Result, anyhow};
use std::path::PathBuf;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Pipeline file (every process must run the same pipeline).
    file: PathBuf,
    /// This owner's name, as in the pipeline's `owners` and the deployment file.
    #[arg(long = "as", value_name = "NAME")]
    name: String,
    #[command(flatten)]
    connection: Connection,
    /// Allow an insecure protocol (`ref`), under which the parties see this owner's inputs in
    /// the clear. For testing pipelines only.
    #[arg(long)]
    insecure: bool,
    #[command(flatten)]
    inputs: InputArgs,
    /// Write each output shown as DIR/NAME.npy.
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Print one JSON object {"outputs": {NAME: VALUE}, ...} instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let options = super::party::PartyOptions { insecure: a.insecure, kernel: None };
    let (session, transport) = a.connection.open(&a.file, &a.name, Some(&options))?;
    let inputs = a.inputs.collect(&session.inputs_to_give(Some(&a.name)))?;
    let rt =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let out = rt.block_on(session.run_as_owner(&a.name, transport, inputs)).map_err(|e| anyhow!("{e}"))?;
    let graph = session.graph();
    let reveal_to = |name: &str| graph.outputs.iter().find(|o| o.name == name).map(|o| o.reveal_to.clone());
    let parties: Vec<Vec<String>> = out.outputs.iter().map(|(n, _)| reveal_to(n).unwrap_or_default()).collect();
    let shown: Vec<Shown<'_>> =
        out.outputs.iter().zip(&parties).map(|((name, tensor), parties)| Shown { name, parties, tensor }).collect();
    let extra = serde_json::json!({ "owner": a.name, "wall_s": out.wall_s });
    super::outputs::show(&shown, graph.fixed_point, a.output_dir.as_deref(), a.json, extra)?;
    if shown.is_empty() && !a.json {
        eprintln!("{}: done; no output is revealed to {}", graph.name, a.name);
    }
    Ok(())
}
