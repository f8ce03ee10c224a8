//! # mpcflow-plugin-host: loads third-party plugins into a registry
//!
//! A pipeline's `plugins:` entries and `--plugin PATH` arguments become
//! [`mpcflow_runtime::plugin_spec::PluginSource`]s; [`load`] opens each and registers what it
//! provides in the same [`Registry`] as the built-in plugins, recording where it came from.
//!
//! - [`native`]: a dynamic library exporting the sdk's abi_stable root module. abi_stable checks
//!   its layout and sdk version before anything in it runs.
//! - [`wasm`]: a core WebAssembly module (the sdk's documented ABI) run by wasmtime with no
//!   imports, fuel and a memory cap; a trap becomes an error naming the plugin.
//!
//! This crate is the only one that links wasmtime and the dynamic loader, so the runtime and
//! every other crate build without them.

pub mod native;
pub mod wasm;

use mpcflow_runtime::Registry;
use mpcflow_runtime::plugin_spec::PluginSource;
use mpcflow_sdk::plugin::PluginKind;
use std::path::PathBuf;

/// Why a plugin could not be loaded. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is not there or cannot be read.
    #[error("plugin {path}: cannot read the file: {message}")]
    Missing {
        /// The file.
        path: PathBuf,
        /// What the system said.
        message: String,
    },
    /// The file is not an mpcflow plugin of the kind its name says.
    #[error("plugin {path}: not an mpcflow plugin: {message}")]
    NotAPlugin {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Built against another sdk or ABI version, or with another layout.
    #[error("plugin {path}: incompatible: {message}")]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// What differs.
        message: String,
    },
    /// A plugin of this kind and name is already registered.
    #[error("plugin {path}: its {kind} `{name}` is already provided by {existing}")]
    Duplicate {
        /// The file.
        path: PathBuf,
        /// Kind.
        kind: PluginKind,
        /// Name.
        name: String,
        /// Where the first one came from.
        existing: String,
    },
}

/// One plugin a file provided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// Its kind.
    pub kind: PluginKind,
    /// Its name.
    pub name: String,
}

/// Loads `source` and registers its plugins in `registry`. A name already registered (a
/// built-in or another file's) is refused: a plugin never silently replaces another.
pub fn load(source: &PluginSource, registry: &mut Registry) -> Result<Vec<Loaded>, LoadError> {
    match source {
        PluginSource::Native(path) => native::load(path, registry, &source.describe()),
        PluginSource::Wasm { path, limits } => wasm::load(path, *limits, registry, &source.describe()),
    }
}

/// Fails if `kind`/`name` is already in `registry`.
fn check_free(registry: &Registry, path: &std::path::Path, kind: PluginKind, name: &str) -> Result<(), LoadError> {
    let taken = match kind {
        PluginKind::Protocol => registry.protocol(name).is_some(),
        PluginKind::Transport => registry.transport(name).is_some(),
        PluginKind::Kernel => registry.kernel(name).is_some(),
        PluginKind::Importer => registry.importer(name).is_some(),
        PluginKind::Operator => registry.operator(name).is_some(),
    };
    if taken {
        return Err(LoadError::Duplicate {
            path: path.to_path_buf(),
            kind,
            name: name.to_string(),
            existing: registry.source(kind, name),
        });
    }
    Ok(())
}
