//! The boundary error type: what a plugin returns to the runtime.
//!
//! User errors (a bad attribute, an unsupported op) are kept apart from peers misbehaving
//! (`Protocol`) and from bugs (`Internal`), so nobody mistakes a cheating peer for a typo.

use thiserror::Error;

/// Result with the sdk [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error crossing the plugin boundary.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The graph, an attribute or an input is not acceptable (user error).
    #[error("{0}")]
    Invalid(String),
    /// The plugin does not implement this op or feature.
    #[error("{what} is not supported by {plugin}")]
    Unsupported {
        /// What was asked for.
        what: String,
        /// The plugin that cannot do it.
        plugin: String,
    },
    /// A peer sent something the protocol cannot accept (wrong length, wrong round).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The dealer's material for a node is missing or malformed.
    #[error("bad dealer material: {0}")]
    Material(String),
    /// A channel failed: closed, timed out, or refused.
    #[error("transport: {0}")]
    Transport(String),
    /// A wait ran past its deadline.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A limit was reached (memory, fuel, time).
    #[error("resources exhausted: {0}")]
    ResourcesExhausted(String),
    /// A third-party plugin failed: it trapped, ran out of fuel or memory, or broke the
    /// interface. The message names the plugin.
    #[error("{0}")]
    Plugin(String),
    /// A state that should be impossible: this is a bug, please report it.
    #[error("internal error (this is a bug, please report it): {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }

    /// Shorthand for [`Error::Protocol`].
    pub fn protocol(msg: impl Into<String>) -> Self {
        Error::Protocol(msg.into())
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }

    /// The kind of failure in a few words, without the message. This is what may be told to a
    /// peer: the message itself can hold a value, a path or a plugin's own words.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "an invalid value or attribute",
            Error::Unsupported { .. } => "an unsupported operation",
            Error::Protocol(_) => "a protocol violation by a peer",
            Error::Material(_) => "bad dealer material",
            Error::Transport(_) => "a transport failure",
            Error::Timeout(_) => "a timeout",
            Error::ResourcesExhausted(_) => "exhausted resources",
            Error::Plugin(_) => "a failing plugin",
            Error::Internal(_) => "an internal error (a bug)",
        }
    }
}
