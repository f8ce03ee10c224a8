//! [`DeploymentError`]: one type for everything that can go wrong with a deployment file, so a
//! command can print it as it is. Each message is self-contained (file, place, endpoint)
//! because operators read it on one host and fix the file on another.

use std::io;
use std::path::{Path, PathBuf};

/// Why a deployment file cannot be used. Every message names the file (or, when writing
/// certificates, the file being written), and the line, column and endpoint where known. No
/// variant holds key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeploymentError {
    /// The deployment file could not be read.
    #[error("cannot read deployment file {}: {source}", file.display())]
    Read {
        /// The deployment file.
        file: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Not YAML, or not the shape of a deployment file: an unknown or missing field, a value of
    /// the wrong type, no endpoint at all.
    #[error(
        "{}: {}{message}",
        at(file, *location),
        endpoint.as_ref().map(|e| format!("endpoint `{e}`: ")).unwrap_or_default()
    )]
    Invalid {
        /// The deployment file.
        file: PathBuf,
        /// Line and column, where known.
        location: Option<(u64, u64)>,
        /// The endpoint, if the problem is in one.
        endpoint: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// An endpoint is listed twice.
    #[error(
        "{}: endpoint `{endpoint}` is listed twice (first at line {}, column {})",
        at(file, Some(*location)), first.0, first.1
    )]
    Duplicate {
        /// The deployment file.
        file: PathBuf,
        /// Line and column of the second entry.
        location: (u64, u64),
        /// Line and column of the first entry.
        first: (u64, u64),
        /// The endpoint.
        endpoint: String,
    },
    /// An endpoint's name cannot be a certificate name.
    #[error(
        "{}: endpoint name `{endpoint}` is not a valid DNS name, which it must be to name the endpoint's \
         certificate (use letters, digits, `-` and `.`)",
        at(file, Some(*location))
    )]
    InvalidName {
        /// The deployment file.
        file: PathBuf,
        /// Line and column.
        location: (u64, u64),
        /// The name.
        endpoint: String,
    },
    /// An address is not `HOST:PORT`.
    #[error("{}: endpoint `{endpoint}`: address `{address}` {reason}", at(file, Some(*location)))]
    InvalidAddress {
        /// The deployment file.
        file: PathBuf,
        /// Line and column.
        location: (u64, u64),
        /// The endpoint.
        endpoint: String,
        /// The address as written.
        address: String,
        /// Why it is not `HOST:PORT`.
        reason: String,
    },
    /// An address's host name does not resolve.
    #[error("{}: endpoint `{endpoint}`: address `{address}` does not resolve: {reason}", file.display())]
    Unresolved {
        /// The deployment file.
        file: PathBuf,
        /// The endpoint.
        endpoint: String,
        /// The address as written.
        address: String,
        /// The resolver's answer.
        reason: String,
    },
    /// The endpoint asked for is not in the deployment.
    #[error("`{me}` is not in deployment {} (endpoints: {})", file.display(), endpoints.join(", "))]
    UnknownEndpoint {
        /// The deployment file.
        file: PathBuf,
        /// The name asked for.
        me: String,
        /// The endpoints of the deployment.
        endpoints: Vec<String>,
    },
    /// A certificate or key file cannot be read.
    #[error("{}: cannot read {what} {}: {source}", file.display(), path.display())]
    ReadPem {
        /// The deployment file.
        file: PathBuf,
        /// `the CA certificate` or ``the certificate of `alice` `` or ``the key of `alice` ``.
        what: String,
        /// The certificate or key file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A certificate or key file holds no usable PEM.
    #[error("{}: {what} {} {problem}", file.display(), path.display())]
    BadPem {
        /// The deployment file.
        file: PathBuf,
        /// `the CA certificate` or ``the certificate of `alice` `` or ``the key of `alice` ``.
        what: String,
        /// The certificate or key file.
        path: PathBuf,
        /// What is wrong (never the file's content).
        problem: String,
    },
    /// Certificates cannot be made.
    #[error("cannot make certificates in {}: {message}", dir.display())]
    Generate {
        /// The directory the certificates were to be written to.
        dir: PathBuf,
        /// Why.
        message: String,
    },
    /// A certificate or key file already exists; nothing was written.
    #[error(
        "{} already exists: nothing was written (remove the old certificates and keys first, or choose another \
         directory)",
        path.display()
    )]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// A certificate or key file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// `file:line:column`, or `file` without a location.
fn at(file: &Path, location: Option<(u64, u64)>) -> String {
    match location {
        Some((line, column)) => format!("{}:{line}:{column}", file.display()),
        None => file.display().to_string(),
    }
}
