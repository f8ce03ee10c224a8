//! The deployment file: where every endpoint listens and which certificate it uses.
//!
//! One file describes a whole deployment and is the same on every host, so each process is
//! started with the file and its own name and nothing else:
//!
//! ```yaml
//! ca: certs/ca.pem
//! parties:
//!   alice:  { address: 127.0.0.1:7101, cert: certs/alice.pem,  key: certs/alice.key }
//!   bob:    { address: 127.0.0.1:7102, cert: certs/bob.pem,    key: certs/bob.key }
//!   dealer: { address: 127.0.0.1:7100, cert: certs/dealer.pem, key: certs/dealer.key }
//! ```
//!
//! `parties` lists every endpoint, the dealer included (as `dealer`). Paths are relative to the
//! file's directory. Addresses are `HOST:PORT`, where the host is an IP address or a DNS name
//! (an IPv6 address in brackets, quoted: `"[::1]:7101"`). A host only needs its own key: the
//! other endpoints' `key` entries are never read there.
//!
//! Loading checks everything that can be checked without the network and the key files, and
//! every error names the file, the line and column where known, and the endpoint, because a
//! deployment file is edited by hand on several hosts and a vague error costs a round of
//! messages between operators.

use crate::TcpConfig;
use mpcflow_sdk::config::Entries;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

mod error;
mod write;

pub use error::DeploymentError;
pub use write::{loopback_deployment_yaml, write_certs};

/// A deployment file: where every endpoint listens and which certificate it uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// The file it was read from (as given).
    pub file: PathBuf,
    /// The deployment CA's certificate (PEM), resolved against the file's directory.
    pub ca: PathBuf,
    /// Every endpoint by name: the parties by their names in the pipeline file, the dealer as
    /// [`crate::DEALER`].
    pub endpoints: BTreeMap<String, DeploymentEndpoint>,
}

/// One endpoint of a [`Deployment`]. Paths are already resolved against the deployment
/// file's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentEndpoint {
    /// `HOST:PORT` where the endpoint listens; the host may be an IP address or a DNS name.
    pub address: String,
    /// The endpoint's certificate (PEM).
    pub cert: PathBuf,
    /// The endpoint's private key (PEM); read only by the endpoint itself.
    pub key: PathBuf,
}

type SStr = Spanned<String>;

/// The file as written. An endpoint's fields are read as a mapping and checked by hand, so
/// that an unknown or missing field is reported with the endpoint's name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    ca: SStr,
    parties: Spanned<Entries<SStr, Spanned<Entries<SStr, SStr>>>>,
}

const FIELDS: [&str; 3] = ["address", "cert", "key"];

fn loc(l: &Location) -> (u64, u64) {
    (l.line(), l.column())
}

/// The first line of a serde-saphyr error in words, without its location (reported apart).
fn parse_message(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
    let message = match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => first,
    };
    // Say what the file should hold, not what the Rust type wanted.
    if message.starts_with("cannot deserialize null into string") {
        "expected a value here, found none".into()
    } else if message == "expected string scalar" {
        "expected a single value here (a file name or HOST:PORT)".into()
    } else if message == "expected mapping start" {
        "expected a mapping here (`{ address: HOST:PORT, cert: FILE, key: FILE }` for an endpoint)".into()
    } else if let Some(rest) = message.strip_prefix("missing field") {
        format!("missing required field{rest}")
    } else {
        message.to_string()
    }
}

/// The endpoint whose entry holds `location`, found by a second, lenient reading of the file
/// (for errors of the strict reading, which stops at the first problem).
fn endpoint_at(text: &str, options: serde_saphyr::Options, location: (u64, u64)) -> Option<String> {
    #[derive(Deserialize)]
    struct Outline {
        parties: Option<Entries<SStr, serde::de::IgnoredAny>>,
    }
    let top: Entries<SStr, serde::de::IgnoredAny> = serde_saphyr::from_str_with_options(text, options.clone()).ok()?;
    let outline: Outline = serde_saphyr::from_str_with_options(text, options).ok()?;
    let parties_at = top.0.iter().find(|(k, _)| k.value == "parties").map(|(k, _)| loc(&k.referenced))?;
    // The endpoints end where the next top-level key starts.
    let end = top.0.iter().map(|(k, _)| loc(&k.referenced)).filter(|l| *l > parties_at).min();
    if end.is_some_and(|end| location >= end) {
        return None;
    }
    outline.parties?.0.iter().rev().find(|(k, _)| loc(&k.referenced) <= location).map(|(k, _)| k.value.clone())
}

/// Checks that `address` is `HOST:PORT` with a usable port and a host that is an IP address
/// or a DNS name; says why not.
fn check_address(address: &str) -> Result<(), String> {
    if let Ok(a) = address.parse::<SocketAddr>() {
        return if a.port() == 0 { Err("has port 0, which cannot be dialed".into()) } else { Ok(()) };
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err("has no port (write HOST:PORT, e.g. `127.0.0.1:7101`)".into());
    };
    match port.parse::<u16>() {
        Ok(0) => return Err("has port 0, which cannot be dialed".into()),
        Ok(_) => {}
        Err(_) => return Err(format!("has port `{port}`, which is not a number from 1 to 65535")),
    }
    if host.is_empty() {
        return Err("has no host (write HOST:PORT, e.g. `127.0.0.1:7101`)".into());
    }
    if host.contains(':') || host.starts_with('[') {
        let inner = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        return match inner.map(str::parse::<IpAddr>) {
            Some(Ok(_)) => Ok(()),
            _ => Err("is not HOST:PORT (an IPv6 address goes in brackets: `\"[::1]:7101\"`)".into()),
        };
    }
    if ServerName::try_from(host).is_err() {
        return Err(format!("has host `{host}`, which is neither an IP address nor a DNS name"));
    }
    Ok(())
}

impl Deployment {
    /// Reads and checks the deployment file at `path`.
    pub fn load(path: &Path) -> Result<Deployment, DeploymentError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| DeploymentError::Read { file: path.to_path_buf(), source })?;
        Deployment::from_yaml(&text, path)
    }

    /// Checks the deployment in `text`, read from `file`; relative paths are resolved against
    /// `file`'s directory. Nothing is read from the disk.
    pub fn from_yaml(text: &str, file: &Path) -> Result<Deployment, DeploymentError> {
        let mut options = serde_saphyr::Options::default();
        // Only `true`/`false` are booleans, as in pipeline files.
        options.strict_booleans = true;
        // Duplicates reach `Entries`, which reports both places.
        options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
        let raw: RawDeployment = serde_saphyr::from_str_with_options(text, options.clone()).map_err(|e| {
            let location = e.location().map(|l| loc(&l));
            DeploymentError::Invalid {
                file: file.to_path_buf(),
                location,
                endpoint: location.and_then(|l| endpoint_at(text, options, l)),
                message: parse_message(&e),
            }
        })?;
        let dir = file.parent().unwrap_or(Path::new(""));
        let invalid = |location: &Location, endpoint: Option<&str>, message: String| DeploymentError::Invalid {
            file: file.to_path_buf(),
            location: Some(loc(location)),
            endpoint: endpoint.map(str::to_string),
            message,
        };
        if raw.parties.value.0.is_empty() {
            return Err(invalid(&raw.parties.referenced, None, "`parties` lists no endpoint".into()));
        }
        let mut endpoints = BTreeMap::new();
        let mut first_at: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (name, body) in &raw.parties.value.0 {
            let n = name.value.as_str();
            if let Some(first) = first_at.get(n) {
                return Err(DeploymentError::Duplicate {
                    file: file.to_path_buf(),
                    location: loc(&name.referenced),
                    first: *first,
                    endpoint: n.to_string(),
                });
            }
            first_at.insert(n.to_string(), loc(&name.referenced));
            if ServerName::try_from(n).is_err() || n.parse::<IpAddr>().is_ok() {
                return Err(DeploymentError::InvalidName {
                    file: file.to_path_buf(),
                    location: loc(&name.referenced),
                    endpoint: n.to_string(),
                });
            }
            let mut fields: BTreeMap<&str, &SStr> = BTreeMap::new();
            for (key, value) in &body.value.0 {
                let k = key.value.as_str();
                if !FIELDS.contains(&k) {
                    return Err(invalid(
                        &key.referenced,
                        Some(n),
                        format!("unknown field `{k}`, expected one of `address`, `cert`, `key`"),
                    ));
                }
                if fields.insert(k, value).is_some() {
                    return Err(invalid(&key.referenced, Some(n), format!("field `{k}` is given twice")));
                }
            }
            let field = |k: &str| {
                fields
                    .get(k)
                    .copied()
                    .ok_or_else(|| invalid(&body.referenced, Some(n), format!("missing required field `{k}`")))
            };
            let (address, cert, key) = (field("address")?, field("cert")?, field("key")?);
            if let Err(reason) = check_address(&address.value) {
                return Err(DeploymentError::InvalidAddress {
                    file: file.to_path_buf(),
                    location: loc(&address.referenced),
                    endpoint: n.to_string(),
                    address: address.value.clone(),
                    reason,
                });
            }
            for (k, v) in [("cert", cert), ("key", key)] {
                if v.value.is_empty() {
                    return Err(invalid(&v.referenced, Some(n), format!("`{k}` is empty")));
                }
            }
            endpoints.insert(
                n.to_string(),
                DeploymentEndpoint {
                    address: address.value.clone(),
                    cert: dir.join(&cert.value),
                    key: dir.join(&key.value),
                },
            );
        }
        if raw.ca.value.is_empty() {
            return Err(invalid(&raw.ca.referenced, None, "`ca` is empty".into()));
        }
        Ok(Deployment { file: file.to_path_buf(), ca: dir.join(&raw.ca.value), endpoints })
    }

    /// The configuration of the process that runs as `me`. Reads the CA, `me`'s certificate
    /// and only `me`'s key; resolves every address (host names allowed, e.g.
    /// `hospital-a.example.org:7101`) to a socket address (the first the resolver gives).
    pub fn tcp_config(&self, me: &str) -> Result<TcpConfig, DeploymentError> {
        let mine = self.endpoints.get(me).ok_or_else(|| DeploymentError::UnknownEndpoint {
            file: self.file.clone(),
            me: me.to_string(),
            endpoints: self.endpoints.keys().cloned().collect(),
        })?;
        let mut addrs = BTreeMap::new();
        for (name, e) in &self.endpoints {
            let unresolved = |reason: String| DeploymentError::Unresolved {
                file: self.file.clone(),
                endpoint: name.clone(),
                address: e.address.clone(),
                reason,
            };
            let addr = match e.address.to_socket_addrs() {
                Ok(mut a) => a.next().ok_or_else(|| unresolved("no address found".into()))?,
                Err(err) => return Err(unresolved(err.to_string())),
            };
            addrs.insert(name.clone(), addr);
        }
        let read = |what: String, path: &Path| {
            std::fs::read_to_string(path).map_err(|source| DeploymentError::ReadPem {
                file: self.file.clone(),
                what,
                path: path.to_path_buf(),
                source,
            })
        };
        let bad = |what: String, path: &Path, problem: String| DeploymentError::BadPem {
            file: self.file.clone(),
            what,
            path: path.to_path_buf(),
            problem,
        };
        let certs_in = |what: String, path: &Path| -> Result<String, DeploymentError> {
            let pem = read(what.clone(), path)?;
            match CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>() {
                Ok(c) if !c.is_empty() => Ok(pem),
                Ok(_) => Err(bad(what, path, "holds no PEM certificate".into())),
                Err(e) => Err(bad(what, path, format!("is not a valid PEM certificate ({e})"))),
            }
        };
        let ca_pem = certs_in("the CA certificate".into(), &self.ca)?;
        let cert_pem = certs_in(format!("the certificate of `{me}`"), &mine.cert)?;
        let what = format!("the key of `{me}`");
        let key_pem = read(what.clone(), &mine.key)?;
        // The parser's error is not shown: it could quote the key file.
        if PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).is_err() {
            return Err(bad(what, &mine.key, "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".into()));
        }
        Ok(TcpConfig::new(addrs, cert_pem, key_pem, ca_pem))
    }
}

#[cfg(test)]
mod tests;
