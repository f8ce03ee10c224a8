//! Runtime errors. A [`Problem`] says what is wrong and at which [`Site`] of the graph; the
//! pipeline layer turns sites into `file:line:column`. Errors while running name the party and
//! the node.

use std::fmt;

/// Where in a graph a problem is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Site {
    /// The graph as a whole.
    Graph,
    /// The `protocol` entry.
    Protocol,
    /// The `kernel` entry.
    Kernel,
    /// The `parties` list, entry `i`.
    Party(usize),
    /// The `owners` list, entry `i`.
    Owner(usize),
    /// The `fixed_point` entry.
    FixedPoint,
    /// A private input's declaration.
    Input(String),
    /// A private input's owner.
    InputOwner(String),
    /// A private input's `transform`.
    InputTransform(String),
    /// The `i`-th entry of `plugins`.
    Plugin(usize),
    /// A constant.
    Constant(String),
    /// A node.
    Node(String),
    /// A node's `op`.
    NodeOp(String),
    /// A node's `i`-th input name.
    NodeInput(String, usize),
    /// A node's attribute.
    NodeAttr(String, String),
    /// An output entry.
    Output(String),
    /// An output's `i`-th `reveal_to` party.
    OutputParty(String, usize),
    /// An entry of `models:`.
    Model(String),
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Site::Graph => f.write_str("graph"),
            Site::Protocol => f.write_str("protocol"),
            Site::Kernel => f.write_str("kernel"),
            Site::Party(i) => write!(f, "parties[{i}]"),
            Site::Owner(i) => write!(f, "owners[{i}]"),
            Site::FixedPoint => f.write_str("fixed_point"),
            Site::Input(n) | Site::InputOwner(n) => write!(f, "input `{n}`"),
            Site::InputTransform(n) => write!(f, "input `{n}`: transform"),
            Site::Plugin(i) => write!(f, "plugins[{i}]"),
            Site::Constant(n) => write!(f, "constant `{n}`"),
            Site::Node(n) | Site::NodeOp(n) | Site::NodeInput(n, _) | Site::NodeAttr(n, _) => write!(f, "node `{n}`"),
            Site::Output(n) | Site::OutputParty(n, _) => write!(f, "output `{n}`"),
            Site::Model(n) => write!(f, "model `{n}`"),
        }
    }
}

/// One thing wrong with a graph, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub site: Site,
    /// What, and what was expected.
    pub message: String,
    /// `file:line:column` once the pipeline layer located it.
    pub location: Option<String>,
}

impl Problem {
    /// A problem at `site`.
    pub fn new(site: Site, message: impl Into<String>) -> Self {
        Problem { site, message: message.into(), location: None }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: {}: {}", self.site, self.message),
            None => write!(f, "{}: {}", self.site, self.message),
        }
    }
}

fn join(problems: &[Problem]) -> String {
    problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")
}

/// An error of the runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The pipeline file could not be read or parsed.
    #[error("{0}")]
    Parse(String),
    /// A run setting given outside the file (a command-line option) is invalid.
    #[error("{0}")]
    Setting(String),
    /// The graph is invalid; every problem found is listed.
    #[error("{}", join(.0))]
    Invalid(Vec<Problem>),
    /// A private input is missing or does not fit its declaration.
    #[error("input `{name}`: {message}")]
    Input {
        /// Input name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A party failed while evaluating a node.
    #[error("{party}: node `{node}` ({op}): {source}")]
    Node {
        /// Party name.
        party: String,
        /// Node name.
        node: String,
        /// Op label.
        op: String,
        /// What the plugin said.
        source: mpcflow_sdk::Error,
    },
    /// The dealer failed.
    #[error("dealer: {0}")]
    Dealer(String),
    /// A channel failed or a wait timed out.
    #[error("{party}: {message}")]
    Transport {
        /// Party (or dealer) that saw it.
        party: String,
        /// What happened.
        message: String,
    },
    /// Another party failed; this party stopped because of it.
    #[error("{party}: stopped because {peer} failed: {reason}")]
    PeerFailed {
        /// This party.
        party: String,
        /// The party that failed.
        peer: String,
        /// Its reason.
        reason: String,
    },
    /// Two processes of a session do not agree on what to run (versions, pipeline, plan).
    #[error("{party}: cannot run with {peer}: {peer} {message}")]
    Handshake {
        /// This endpoint.
        party: String,
        /// The peer it disagrees with.
        peer: String,
        /// What differs.
        message: String,
    },
    /// A bug.
    #[error("internal error (this is a bug, please report it): {0}")]
    Internal(String),
}

impl Error {
    /// Whether this error only reports another party's failure.
    pub fn is_secondary(&self) -> bool {
        matches!(self, Error::PeerFailed { .. })
    }

    /// What this endpoint may tell its peers about this error: a category and names from the
    /// plan (party, node, op, input), never a value, a share, a local path or a plugin's own
    /// words. The full message stays with the endpoint that failed, which reports it itself.
    pub fn peer_reason(&self) -> String {
        match self {
            Error::Parse(_) => "its pipeline file could not be read".into(),
            Error::Setting(_) => "a run setting it was given is invalid".into(),
            Error::Invalid(problems) => format!("it refused its pipeline or inputs at {}", sites(problems)),
            Error::Input { name, .. } => format!("it refused its value for input `{name}`"),
            Error::Node { node, op, source, .. } => format!("node `{node}` ({op}) failed with {}", source.category()),
            Error::Dealer(_) => "the dealer failed; its own log says why".into(),
            // A wait for a peer's message: our own words, with names from the plan and the
            // timeout (built by the mailbox), so it may cross and name the stalled peer.
            Error::Transport { message, .. } if message.starts_with("timed out: message from ") => message.clone(),
            // A send to a peer that failed (the scheduler writes `sending to NAME: …` with the
            // plan's name): the peer is named, the transport's own words stay here.
            Error::Transport { message, .. } if sent_to(message).is_some() => {
                format!("its channel to {} failed", sent_to(message).unwrap_or_default())
            }
            Error::Transport { .. } => "a channel failed or a wait timed out; its own log says which".into(),
            Error::PeerFailed { peer, reason, .. } => format!("{peer} failed: {reason}"),
            // Each side finds the same disagreement itself and reports it in full.
            Error::Handshake { peer, .. } => {
                format!("it cannot run with {peer}: they disagree on the session (versions, pipeline or plan)")
            }
            Error::Internal(_) => "an internal error (a bug); its own log says more".into(),
        }
    }
}

/// The peer of a failed send, from the scheduler's `sending to NAME: …` message.
fn sent_to(message: &str) -> Option<&str> {
    let rest = message.strip_prefix(SENDING_TO)?;
    let (name, _) = rest.split_once(": ")?;
    (!name.is_empty() && !name.contains(['/', '\\', ' '])).then_some(name)
}

/// How the scheduler starts the message of a failed send to a peer (see [`Error::peer_reason`]).
pub const SENDING_TO: &str = "sending to ";

/// The distinct sites of `problems`, named as the plan names them (at most eight).
fn sites(problems: &[Problem]) -> String {
    const MAX: usize = 8;
    let mut names: Vec<String> = vec![];
    for p in problems {
        let name = match p.site {
            Site::Graph => "the pipeline".to_string(),
            ref site => site.to_string(),
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let more = names.len().saturating_sub(MAX);
    names.truncate(MAX);
    let mut s = names.join(", ");
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}

/// Text a peer sent as its reason for stopping, made safe to print: at most 1000 characters,
/// control characters replaced (a peer controls these bytes).
pub fn from_peer(bytes: &[u8]) -> String {
    const MAX: usize = 1000;
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(MAX).map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_hear_categories_and_plan_names_only() {
        let input = Error::Invalid(vec![Problem {
            site: Site::Input("a".into()),
            message: "value 987654 is not a bit".into(),
            location: Some("/home/alice/p.yaml:6:3".into()),
        }]);
        assert_eq!(input.peer_reason(), "it refused its pipeline or inputs at input `a`");
        let wait = Error::Transport {
            party: "alice".into(),
            message: "timed out: message from bob for node `s3` round 0 did not arrive within 3.0 s".into(),
        };
        assert!(wait.peer_reason().contains("message from bob for node `s3`"), "{}", wait.peer_reason());
        let io = Error::Transport { party: "alice".into(), message: "lost /home/alice/x: broken pipe".into() };
        assert!(!io.peer_reason().contains("/home"), "{}", io.peer_reason());
        // A failed send names the peer (so everyone reports the first cause), not the OS's words.
        let send =
            Error::Transport { party: "alice".into(), message: "sending to bob: broken pipe (os error 32)".into() };
        assert_eq!(send.peer_reason(), "its channel to bob failed");
        let odd = Error::Transport { party: "alice".into(), message: "sending to /tmp/x y: broken".into() };
        assert!(!odd.peer_reason().contains("/tmp"), "{}", odd.peer_reason());
        let node = Error::Node {
            party: "alice".into(),
            node: "e".into(),
            op: "exp".into(),
            source: mpcflow_sdk::Error::Plugin("trap at value 42".into()),
        };
        assert_eq!(node.peer_reason(), "node `e` (exp) failed with a failing plugin");
        assert_eq!(from_peer(b"a\nb\x07c"), "a\u{fffd}b\u{fffd}c");
        assert_eq!(from_peer(&[b'x'; 2000]).chars().count(), 1001);
    }
}
