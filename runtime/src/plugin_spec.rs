//! Which third-party plugins to load, as a pipeline file (`plugins:`) or the command line
//! (`--plugin PATH`) names them. Loading itself is the plugin host's job (`mpcflow-plugin-host`),
//! so the runtime never links wasmtime or a dynamic loader.

use std::path::PathBuf;

/// Default fuel per call into a WASM plugin: about ten billion wasm instructions, seconds of
/// work, far more than any lowering or a transform of a few million values needs.
pub const DEFAULT_FUEL: u64 = 10_000_000_000;

/// Default cap on a WASM plugin's linear memory.
pub const DEFAULT_MEMORY_MIB: u64 = 512;

/// Limits of one WASM plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WasmLimits {
    /// Fuel per call (roughly, wasm instructions).
    pub fuel: u64,
    /// Largest linear memory, in MiB.
    pub memory_mib: u64,
}

impl Default for WasmLimits {
    fn default() -> Self {
        WasmLimits { fuel: DEFAULT_FUEL, memory_mib: DEFAULT_MEMORY_MIB }
    }
}

/// Where a plugin comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginSource {
    /// A native dynamic library (`.so`, `.dylib`, `.dll`).
    Native(PathBuf),
    /// A WASM module, with its sandbox limits.
    Wasm {
        /// The `.wasm` (or `.wat`) file.
        path: PathBuf,
        /// Its limits.
        limits: WasmLimits,
    },
}

impl PluginSource {
    /// From a `--plugin PATH` argument: `.wasm`/`.wat` files are WASM, anything else native.
    pub fn from_path(path: PathBuf) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("wasm" | "wat") => PluginSource::Wasm { path, limits: WasmLimits::default() },
            _ => PluginSource::Native(path),
        }
    }

    /// The file.
    pub fn path(&self) -> &std::path::Path {
        match self {
            PluginSource::Native(p) | PluginSource::Wasm { path: p, .. } => p,
        }
    }

    /// `native: PATH` or `wasm: PATH`, as `mpcflow plugins list` shows it.
    pub fn describe(&self) -> String {
        match self {
            PluginSource::Native(p) => format!("native: {}", p.display()),
            PluginSource::Wasm { path, .. } => format!("wasm: {}", path.display()),
        }
    }
}

/// A plugin named in a pipeline file, with where it is named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginDecl {
    /// What to load.
    pub source: PluginSource,
    /// `file:line:column` of the entry.
    pub location: String,
}
