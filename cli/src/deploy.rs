//! One process of a deployment: the pipeline's session and this endpoint's TLS transport, from
//! a deployment file (every endpoint's address and certificate, see `mpcflow certs new`). Used by
//! `mpcflow party`, `mpcflow dealer` and the Python package's `party` and `dealer`.

use mpcflow_runtime::{Session, SessionConfig};
use mpcflow_transport_tcp::TcpTransport;
use mpcflow_transport_tcp::deployment::Deployment;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How one process connects and runs.
#[derive(Clone, Debug)]
pub struct Connect {
    /// The deployment file.
    pub deployment: PathBuf,
    /// Run with this protocol instead of the file's (every process must use the same).
    pub protocol: Option<String>,
    /// Bound on any wait of the run.
    pub timeout: Duration,
    /// How long to wait for every other process to be up and connected.
    pub connect_timeout: Duration,
    /// Plugin files to load besides the pipeline's.
    pub plugins: Vec<PathBuf>,
    /// Threads and buffer memory of the protocol's local work.
    pub tuning: mpcflow_sdk::protocol::Tuning,
    /// The network profile every process plans for.
    pub network: mpcflow_sdk::Network,
    /// Compute every op under the protocol, even those on one party's own data.
    pub all_under_protocol: bool,
    /// Allow an insecure protocol (`ref`): parties only, for testing pipelines.
    pub allow_insecure: bool,
    /// Compute kernel of a party (`cpu`, `cuda`, or a plugin's).
    pub kernel: Option<String>,
}

impl Connect {
    /// Defaults as the command line has them: 60 s for every wait and for connecting.
    pub fn new(deployment: PathBuf) -> Connect {
        Connect {
            deployment,
            protocol: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(60),
            plugins: vec![],
            tuning: Default::default(),
            network: Default::default(),
            all_under_protocol: false,
            allow_insecure: false,
            kernel: None,
        }
    }
}

/// The session of pipeline `file` for endpoint `me` (a party's name, or
/// [`mpcflow_runtime::remote::DEALER`]) and its transport. Errors name the files.
pub fn open(file: &Path, me: &str, c: &Connect) -> Result<(Session, Arc<TcpTransport>), String> {
    let deployment = Deployment::load(&c.deployment).map_err(|e| e.to_string())?;
    let mut tcp = deployment.tcp_config(me).map_err(|e| e.to_string())?;
    tcp.connect_timeout = c.connect_timeout;
    let transport = TcpTransport::new(tcp).map_err(|e| format!("{}: {me}: {e}", c.deployment.display()))?;
    let config = SessionConfig {
        protocol: c.protocol.clone(),
        timeout: c.timeout,
        allow_insecure: c.allow_insecure,
        kernel: c.kernel.clone(),
        tuning: c.tuning,
        network: c.network,
        all_under_protocol: c.all_under_protocol,
        connect_timeout: c.connect_timeout,
        ..Default::default()
    };
    let pipeline = mpcflow_runtime::pipeline::Pipeline::from_path(file).map_err(|e| e.to_string())?;
    let (pipeline, registry) = crate::prepare(pipeline, &c.plugins).map_err(|e| e.to_string())?;
    let protocol = c.protocol.clone().unwrap_or_else(|| pipeline.spec.protocol.clone());
    let needs_dealer = registry.protocol(&protocol).is_some_and(|p| p.descriptor().needs_dealer);
    let session = Session::from_pipeline(pipeline, registry).map_err(|e| e.to_string())?.with_config(config);
    // A data owner talks to the parties only: its deployment file needs no other endpoint.
    let graph = session.graph();
    let is_owner = graph.owners.iter().any(|o| o == me);
    let needs_dealer = needs_dealer && !is_owner;
    let owners: Vec<&String> = if is_owner { vec![] } else { graph.owners.iter().collect() };
    let missing: Vec<&str> = graph
        .parties
        .iter()
        .chain(owners)
        .map(String::as_str)
        .chain(needs_dealer.then_some(mpcflow_sdk::DEALER))
        .filter(|n| !deployment.endpoints.contains_key(*n))
        .collect();
    if !missing.is_empty() {
        let owners = &session.graph().owners;
        let owners = if owners.is_empty() { String::new() } else { format!(" and data owners {}", owners.join(", ")) };
        return Err(format!(
            "{}: no endpoint for {} (the pipeline {} has parties {}{owners})",
            c.deployment.display(),
            missing.join(", "),
            file.display(),
            session.graph().parties.join(", ")
        ));
    }
    Ok((session, Arc::new(transport)))
}
