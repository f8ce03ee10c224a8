//! The `transport` plugin kind: ordered, reliable byte channels between endpoints.
//!
//! A transport moves opaque frames; the runtime puts its own header (node, round) in them and
//! multiplexes every node in flight over one channel per pair of endpoints. Frames from one
//! sender to one receiver arrive in the order sent. Channels from the dealer may be bounded,
//! which is how dealer backpressure reaches the offline phase.
//!
//! ```
//! use mpcflow_sdk::transport::*;
//! use mpcflow_sdk::{Endpoint, Result};
//! use std::time::Duration;
//! struct Loop;
//! impl Link for Loop {
//!     fn send(&self, _to: Endpoint, _frame: Vec<u8>) -> Result<()> { Ok(()) }
//!     fn recv(&self, from: Endpoint, _t: Duration) -> Result<Vec<u8>> {
//!         Err(mpcflow_sdk::Error::Transport(format!("nothing from {from}")))
//!     }
//! }
//! ```

use crate::{Endpoint, Result};
use std::time::Duration;

/// The public facts of a session that a transport needs to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// Unique id of the session (links of one session never see another's frames).
    pub id: String,
    /// Party names, in order.
    pub parties: Vec<String>,
    /// Data owners, who only bring inputs and receive outputs: owner `j` is endpoint
    /// `Party(parties.len() + j)`, and talks to the parties only (not to other owners or the
    /// dealer).
    pub owners: Vec<String>,
    /// Whether a dealer takes part.
    pub has_dealer: bool,
    /// How many frames the dealer may have in flight to one party (backpressure).
    pub dealer_window: usize,
    /// The session's bound on any wait, including a send blocked by backpressure.
    pub timeout: Duration,
}

/// One endpoint's connections to all others.
pub trait Link: Send + Sync {
    /// Sends one frame to `to`. May block while a bounded channel is full.
    fn send(&self, to: Endpoint, frame: Vec<u8>) -> Result<()>;
    /// Receives the next frame from `from`, waiting at most `timeout`.
    /// Errors say whether the channel closed or the wait timed out.
    fn recv(&self, from: Endpoint, timeout: Duration) -> Result<Vec<u8>>;
}

/// A transport plugin.
pub trait Transport: Send + Sync {
    /// Name used in configuration (`mem`, `tcp`).
    fn name(&self) -> &str;
    /// Connects `me` to every other endpoint of `session`.
    fn connect(&self, session: &SessionInfo, me: Endpoint) -> Result<Box<dyn Link>>;
}
