//! `mpcflow dealer --deployment parties.yaml FILE`: the dealer in its own process. It has no
//! inputs and learns no outputs: it agrees with the parties on the plan, streams each party its
//! material, and exits successfully only once every party has confirmed the end of the run.

use super::party::Connection;
use anyhow::{Context, Result, anyhow};
use std::path::PathBuf;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Pipeline file (every process must run the same pipeline).
    file: PathBuf,
    #[command(flatten)]
    connection: Connection,
}

pub fn run(a: Args) -> Result<()> {
    let (session, transport) = a.connection.open(&a.file, mpcflow_runtime::remote::DEALER, None)?;
    let rt =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let out = rt.block_on(session.run_as_dealer(transport));
    // A dealing left blocked writing to a stalled party must not hold the exit.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    let out = out.map_err(|e| anyhow!("{e}"))?;
    let per_party: Vec<u64> =
        (0..out.plan.parties.len()).map(|p| out.stats.bytes.iter().map(|n| n[p]).sum::<u64>()).collect();
    let sizes: Vec<String> =
        out.plan.parties.iter().zip(&per_party).map(|(n, b)| format!("{b} bytes to {n}")).collect();
    eprintln!(
        "dealer: {} done: {} in {:.3} s (plan {})",
        out.plan.name,
        sizes.join(", "),
        out.stats.wall_s,
        &out.plan.fingerprint_hex()[..16]
    );
    Ok(())
}
