//! The `tcp` transport as the registry holds it: every endpoint of a session in this process
//! (`mpcflow run --transport tcp`, or an embedding host's in-process run), connected over
//! loopback with the same mutually authenticated TLS as separate processes use.
//!
//! A process-per-party deployment configures one [`TcpTransport`] per process from its
//! deployment file (`mpcflow party`, `mpcflow dealer`). When every endpoint runs here there is
//! no file: the first endpoint of a session to connect makes a CA and one certificate per
//! endpoint for that session alone, and binds a listener for each on a free loopback port; each
//! endpoint then connects as its own [`TcpTransport`] would, on the listener bound for it, so no
//! other process can take the port in between. The keys live in memory for the session's setup
//! and are dropped once every endpoint has connected, or when an endpoint fails to connect, or
//! (if some endpoint never comes) once the session's timeout has passed twice.
//!
//! This measures what TLS and the kernel's TCP stack cost a run without starting processes,
//! and tests the transport with every pipeline the in-memory transport runs.

use crate::{DEALER, TcpConfig, TcpTransport, generate_deployment_certs, lock};
use mpcflow_sdk::transport::{Link, SessionInfo, Transport};
use mpcflow_sdk::{Endpoint, Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// The registered `tcp` transport: all of a session's endpoints in this process, on loopback.
#[derive(Default)]
pub struct LoopbackTcp {
    sessions: Mutex<HashMap<String, Arc<Setup>>>,
}

impl LoopbackTcp {
    /// A transport with no session set up yet.
    pub fn new() -> Self {
        Self::default()
    }
}

/// One session's certificates and bound listeners, until every endpoint has connected.
struct Setup {
    /// When it goes even if some endpoint never came for it: twice the session's timeout after
    /// it was made.
    expires: std::time::Instant,
    /// Each endpoint's transport, by endpoint name.
    transports: BTreeMap<String, TcpTransport>,
    /// Each endpoint's listener, taken by the endpoint when it connects.
    listeners: Mutex<BTreeMap<String, TcpListener>>,
    /// Endpoints that have not called `connect` yet.
    waiting: Mutex<usize>,
}

impl Setup {
    fn new(session: &SessionInfo) -> Result<Setup> {
        let mut names: Vec<&str> = session.parties.iter().map(String::as_str).collect();
        if session.has_dealer {
            names.push(DEALER);
        }
        let (ca, certs) = generate_deployment_certs(&names)?;
        let mut listeners = BTreeMap::new();
        let mut addrs: BTreeMap<String, SocketAddr> = BTreeMap::new();
        for name in &names {
            let l = TcpListener::bind("127.0.0.1:0")
                .map_err(|e| Error::Transport(format!("cannot listen on loopback for `{name}`: {e}")))?;
            let addr = l.local_addr().map_err(|e| Error::Transport(format!("loopback listener for `{name}`: {e}")))?;
            addrs.insert(name.to_string(), addr);
            listeners.insert(name.to_string(), l);
        }
        let mut transports = BTreeMap::new();
        for c in certs {
            let mut config = TcpConfig::new(addrs.clone(), c.cert_pem, c.key_pem, ca.clone());
            config.connect_timeout = session.timeout;
            transports.insert(c.name, TcpTransport::new(config)?);
        }
        Ok(Setup {
            expires: std::time::Instant::now() + 2 * session.timeout,
            transports,
            listeners: Mutex::new(listeners),
            waiting: Mutex::new(names.len()),
        })
    }
}

impl Transport for LoopbackTcp {
    fn name(&self) -> &str {
        "tcp"
    }

    fn connect(&self, session: &SessionInfo, me: Endpoint) -> Result<Box<dyn Link>> {
        let setup = {
            let mut sessions = lock(&self.sessions);
            // Keys and sockets of a session that some endpoint never came for (its run failed
            // first) go once that session's timeout has passed twice.
            let now = std::time::Instant::now();
            sessions.retain(|_, s| s.expires > now);
            match sessions.get(&session.id) {
                Some(s) => s.clone(),
                None => {
                    let s = Arc::new(Setup::new(session)?);
                    sessions.insert(session.id.clone(), s.clone());
                    s
                }
            }
        };
        {
            let mut waiting = lock(&setup.waiting);
            *waiting = waiting.saturating_sub(1);
            if *waiting == 0 {
                lock(&self.sessions).remove(&session.id);
            }
        }
        let name = match me {
            Endpoint::Party(p) => session
                .parties
                .get(p.index())
                .cloned()
                .ok_or_else(|| Error::Transport(format!("{me} is not an endpoint of session {}", session.id)))?,
            Endpoint::Dealer => DEALER.to_string(),
        };
        let transport = setup
            .transports
            .get(&name)
            .ok_or_else(|| Error::Transport(format!("{me} is not an endpoint of session {}", session.id)))?;
        let listener = lock(&setup.listeners).remove(&name);
        let link = transport.connect_on(session, me, listener);
        if link.is_err() {
            // The others cannot complete this session: drop its keys and sockets now.
            lock(&self.sessions).remove(&session.id);
        }
        link
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpcflow_sdk::PartyId;
    use std::time::Duration;

    #[test]
    fn every_endpoint_of_a_session_connects_in_one_process_and_the_setup_is_dropped() {
        let t = LoopbackTcp::new();
        let info = SessionInfo {
            id: "loop".into(),
            parties: vec!["alice".into(), "bob".into()],
            owners: vec![],
            has_dealer: true,
            dealer_window: 4,
            timeout: Duration::from_secs(10),
        };
        let (a, b, d) = (Endpoint::Party(PartyId(0)), Endpoint::Party(PartyId(1)), Endpoint::Dealer);
        let links: Vec<Box<dyn Link>> = std::thread::scope(|s| {
            let (t, info) = (&t, &info);
            let hs: Vec<_> = [a, b, d].map(|e| s.spawn(move || t.connect(info, e).unwrap())).into_iter().collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(lock(&t.sessions).is_empty(), "no keys are kept once every endpoint connected");
        links[2].send(a, b"to alice".to_vec()).unwrap();
        links[0].send(b, b"to bob".to_vec()).unwrap();
        let wait = Duration::from_secs(5);
        assert_eq!(links[0].recv(d, wait).unwrap(), b"to alice");
        assert_eq!(links[1].recv(a, wait).unwrap(), b"to bob");
    }
}
