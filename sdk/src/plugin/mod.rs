//! Third-party plugins: what they are and the two ways they are built.
//!
//! A plugin implements the same traits as the built-in plugins ([`crate::protocol::Protocol`],
//! [`crate::operator::Operator`], ...) and ends up in the same registry. It reaches the host in
//! one of two forms:
//!
//! - **Native** ([`native`], feature `abi`): a dynamic library exporting an abi_stable root
//!   module. Every plugin kind can be native. The host checks the library's layout and sdk
//!   version at load, so a mismatch is an error, never undefined behaviour. Native code runs with
//!   the host's rights: load only libraries you trust.
//! - **WASM** ([`wasm_abi`]; plugin side behind feature `guest`): a core WebAssembly module run
//!   by wasmtime with no imports at all (no files, network, clock or randomness), a fuel budget
//!   and a memory cap. Operators (secure and transform) and importers can be WASM.
//!
//! Rich values (ops, lowerings, node descriptions, models) cross both boundaries as JSON of the
//! sdk's serde types; bulk numbers (tensors, wires, model bytes) cross as raw arrays. Both ends
//! are built against one sdk version, which the host checks, so both agree on the encoding.

#[cfg(feature = "guest")]
pub mod guest;
#[cfg(feature = "abi")]
pub mod native;
pub mod wasm_abi;

use serde::{Deserialize, Serialize};

/// The five plugin kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// A secure computation protocol.
    Protocol,
    /// Byte channels between parties.
    Transport,
    /// Heavy local compute.
    Kernel,
    /// A model format.
    Importer,
    /// A custom op (secure or transform).
    Operator,
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PluginKind::Protocol => "protocol",
            PluginKind::Transport => "transport",
            PluginKind::Kernel => "kernel",
            PluginKind::Importer => "importer",
            PluginKind::Operator => "operator",
        })
    }
}
