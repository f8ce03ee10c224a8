//! The `tcp` transport: one process per party and per dealer, connected pairwise by TCP with
//! mutually authenticated TLS 1.3: rustls (ring provider) for the handshake, then records
//! protected by the link itself with the session's AES-128-GCM keys (see `record`).
//!
//! # Connections
//!
//! Endpoints are ordered by name, which every process agrees on even when two processes'
//! pipeline files list the parties in different orders (the session handshake that follows
//! then names that difference instead of both sides dialing and neither listening). Every
//! process listens on its own configured address, and the lower-ordered side of each pair dials
//! the higher-ordered side, retrying with exponential backoff until the connect deadline. A process first dials every higher endpoint, then
//! accepts every lower one, so the handshakes complete in descending order and never wait on
//! each other in a cycle. Parties talk to every other party; the dealer talks to every party.
//!
//! Both sides present a certificate issued by the deployment's CA. The dialer checks that the
//! listener's certificate names the endpoint it dialed (subject alternative name = endpoint
//! name); the listener finds which expected endpoint the dialer's certificate names. Any
//! refused certificate is an [`Error::Transport`] that names the expected and the presented
//! identity, or, for a certificate outside its validity, when it expired. After the handshake
//! each side sends a hello frame with the session id, so links of one session never see
//! another's frames.
//!
//! # Frames
//!
//! Each frame is `length: u64 little endian ‖ bytes`. A length above the configured maximum
//! (default 1 GiB) is refused before anything is allocated, with an error naming the peer.
//!
//! # Threads
//!
//! The transport uses plain std threads and blocking sockets rather than a tokio runtime:
//! [`Link::send`] is called from inside the runtime's tokio tasks, where blocking on another
//! runtime (`block_on`) would panic, while a blocking socket write is what the `mem`
//! transport's blocking channel send already does there. See the `link` module for how reading
//! and writing share a connection without deadlocking.
//!
//! # Deployments
//!
//! [`Deployment`] reads a deployment file (every endpoint's address, certificate and key) and
//! builds this process's [`TcpConfig`]; [`write_certs`] makes the certificates for one.
//!
//! # Modules
//!
//! - `certs`: the deployment CA and endpoint certificates, with their [`Validity`].
//! - `verify`: certificate verifiers that record why they refused, for plain errors.
//! - `setup`: dialing, accepting, the handshake and the hello frame.
//! - `record`: TLS 1.3 record protection after setup, and setup's record-exact reads.
//! - `link`: established connections, framing and the [`Link`] implementation.
//! - [`deployment`]: the deployment file.
//! - `loopback`: [`LoopbackTcp`], the registered `tcp` transport of runs that hold every
//!   endpoint in one process (`mpcflow run --transport tcp`).

mod accept;
mod certs;
pub mod deployment;
mod link;
mod loopback;
mod record;
mod setup;
mod verify;

pub use certs::{
    DEFAULT_VALIDITY_DAYS, EndpointCert, Validity, generate_deployment_certs, generate_deployment_certs_with,
};
pub use deployment::{Deployment, DeploymentEndpoint, DeploymentError, loopback_deployment_yaml, write_certs};
pub use loopback::LoopbackTcp;

use mpcflow_sdk::transport::{Link, SessionInfo, Transport};
use mpcflow_sdk::{Endpoint, Error, PartyId, Result};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The default largest frame a link accepts: 1 GiB.
pub const DEFAULT_MAX_FRAME: u64 = 1 << 30;

/// The name of the dealer endpoint in [`TcpConfig::endpoints`] and in its certificate.
pub use mpcflow_sdk::DEALER;

/// Everything one process needs to connect: where every endpoint listens, its own identity
/// and the deployment's CA. `Debug` never shows the private key.
#[derive(Clone)]
pub struct TcpConfig {
    /// Socket address of every endpoint, by name: each party by its name in the pipeline
    /// file, and the dealer as [`DEALER`]. This process listens on its own entry.
    pub endpoints: BTreeMap<String, SocketAddr>,
    /// This process's certificate chain (PEM, leaf first).
    pub cert_chain_pem: String,
    /// This process's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_pem: String,
    /// The deployment CA's certificate (PEM); peers must present certificates it issued.
    pub ca_pem: String,
    /// How long `connect` may take in all, dialing retries and handshakes included.
    pub connect_timeout: Duration,
    /// First wait between two dialing attempts.
    pub backoff_initial: Duration,
    /// Longest wait between two dialing attempts (the wait doubles up to it).
    pub backoff_max: Duration,
    /// Largest frame sent or accepted, in bytes.
    pub max_frame: u64,
}

impl TcpConfig {
    /// A configuration with the default deadline (30 s), backoff (10 ms doubling to 1 s) and
    /// frame limit ([`DEFAULT_MAX_FRAME`]).
    pub fn new(
        endpoints: BTreeMap<String, SocketAddr>,
        cert_chain_pem: impl Into<String>,
        key_pem: impl Into<String>,
        ca_pem: impl Into<String>,
    ) -> Self {
        TcpConfig {
            endpoints,
            cert_chain_pem: cert_chain_pem.into(),
            key_pem: key_pem.into(),
            ca_pem: ca_pem.into(),
            connect_timeout: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

impl std::fmt::Debug for TcpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpConfig")
            .field("endpoints", &self.endpoints)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_frame", &self.max_frame)
            .finish_non_exhaustive()
    }
}

/// The TCP + TLS transport of one process. One instance serves any number of sessions, one
/// after another (each `connect` binds the process's address for the time it accepts).
pub struct TcpTransport {
    config: TcpConfig,
    provider: Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport").field("endpoints", &self.config.endpoints).finish_non_exhaustive()
    }
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Transport(format!("{what}: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The TLS provider of the transport: rustls's ring provider with AES-128-GCM first (128-bit
/// security as everywhere else in mpcflow, and 10 AES rounds rather than 14 on every byte of
/// material; both ends are mpcflow, so it is the suite used).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    Arc::new(provider)
}

impl TcpTransport {
    /// A transport for `config`; fails if a PEM cannot be read.
    pub fn new(config: TcpConfig) -> Result<Self> {
        let provider = crypto_provider();
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(config.ca_pem.as_bytes()) {
            let c = c.map_err(|e| tls_err("cannot read the CA certificate", e))?;
            roots.add(c).map_err(|e| tls_err("cannot use the CA certificate", e))?;
        }
        if roots.is_empty() {
            return Err(Error::Transport("the CA PEM holds no certificate".into()));
        }
        let chain = CertificateDer::pem_slice_iter(config.cert_chain_pem.as_bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| tls_err("cannot read this endpoint's certificate chain", e))?;
        if chain.is_empty() {
            return Err(Error::Transport("this endpoint's certificate PEM holds no certificate".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(config.key_pem.as_bytes())
            .map_err(|e| tls_err("cannot read this endpoint's private key", e))?;
        Ok(TcpTransport { config, provider, roots: Arc::new(roots), chain, key })
    }
}

/// A session endpoint with its order, name and address.
#[derive(Clone, Debug)]
struct Peer {
    endpoint: Endpoint,
    name: String,
    addr: SocketAddr,
}

impl Peer {
    /// How errors name it: `bob (party 1)` or `dealer`.
    fn label(&self) -> String {
        match self.endpoint {
            Endpoint::Party(_) => format!("{} ({})", self.name, self.endpoint),
            Endpoint::Dealer => self.name.clone(),
        }
    }
}

/// Whether endpoints `a` and `b` of a session with `parties` computing parties connect: every
/// pair but a data owner (`Party(i)` with `i >= parties`) with anyone but a computing party.
fn talks(a: Endpoint, b: Endpoint, parties: usize) -> bool {
    let owner = |e: Endpoint| matches!(e, Endpoint::Party(p) if p.index() >= parties);
    let computing = |e: Endpoint| matches!(e, Endpoint::Party(p) if p.index() < parties);
    a != b
        && !(a == Endpoint::Dealer && b == Endpoint::Dealer)
        && (!owner(a) || computing(b))
        && (!owner(b) || computing(a))
}

impl Transport for TcpTransport {
    fn name(&self) -> &str {
        "tcp"
    }

    fn connect(&self, session: &SessionInfo, me: Endpoint) -> Result<Box<dyn Link>> {
        self.connect_on(session, me, None)
    }
}

impl TcpTransport {
    /// [`Transport::connect`], listening on `bound` (already bound to this endpoint's address)
    /// where given, so a caller that picked free ports keeps them ([`LoopbackTcp`]).
    fn connect_on(&self, session: &SessionInfo, me: Endpoint, bound: Option<TcpListener>) -> Result<Box<dyn Link>> {
        let mut all: Vec<(Endpoint, String)> =
            session.parties.iter().enumerate().map(|(i, n)| (Endpoint::Party(PartyId(i as u16)), n.clone())).collect();
        let k = session.parties.len();
        all.extend(
            session.owners.iter().enumerate().map(|(j, n)| (Endpoint::Party(PartyId((k + j) as u16)), n.clone())),
        );
        if session.has_dealer {
            all.push((Endpoint::Dealer, DEALER.to_string()));
        }
        // Only the endpoints this one talks to need an address (a data owner knows no dealer).
        all.retain(|(e, _)| *e == me || talks(*e, me, k));
        let mut order = Vec::with_capacity(all.len());
        for (endpoint, name) in all {
            if endpoint != Endpoint::Dealer && name == DEALER {
                return Err(Error::Transport(format!("a party may not be named `{DEALER}`")));
            }
            if ServerName::try_from(name.clone()).is_err() {
                return Err(Error::Transport(format!("`{name}` cannot be a certificate name (it must be a DNS name)")));
            }
            let addr = *self
                .config
                .endpoints
                .get(&name)
                .ok_or_else(|| Error::Transport(format!("no address configured for `{name}`")))?;
            order.push(Peer { endpoint, name, addr });
        }
        order.sort_by(|a, b| a.name.cmp(&b.name));
        let my_pos = order
            .iter()
            .position(|p| p.endpoint == me)
            .ok_or_else(|| Error::Transport(format!("{me} is not an endpoint of session {}", session.id)))?;
        let deadline = Instant::now() + self.config.connect_timeout;
        let mine = order[my_pos].clone();
        let listener =
            if order[..my_pos].iter().any(|p| talks(p.endpoint, me, session.parties.len())) {
                match bound {
                    Some(l) => Some(l),
                    None => Some(TcpListener::bind(mine.addr).map_err(|e| {
                        Error::Transport(format!("{} cannot listen on {}: {e}", mine.label(), mine.addr))
                    })?),
                }
            } else {
                None
            };
        let mut conns: Vec<(Peer, record::SetupStream, rustls::Connection)> = vec![];
        for peer in order[my_pos + 1..].iter().filter(|p| talks(p.endpoint, me, session.parties.len())) {
            let (sock, tls) = self.dial(session, &mine, peer, deadline)?;
            conns.push((peer.clone(), sock, tls));
        }
        if let Some(listener) = listener {
            let expected: Vec<Peer> =
                order[..my_pos].iter().filter(|p| talks(p.endpoint, me, session.parties.len())).cloned().collect();
            conns.extend(self.accept_all(session, &mine, &listener, expected, deadline)?);
        }
        link::TcpLink::start(session, mine, conns, self.config.max_frame)
    }
}

#[cfg(test)]
mod tests;
