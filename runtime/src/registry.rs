//! The registry: plugins by kind and name. The runtime looks plugins up here and knows nothing
//! else about them; built-in and third-party plugins register the same way. Each entry also
//! remembers where it came from (`built-in`, `native: PATH`, `wasm: PATH`) for
//! `mpcflow plugins list` and for error messages.

use mpcflow_sdk::importer::Importer;
use mpcflow_sdk::kernel::Kernel;
use mpcflow_sdk::operator::Operator;
use mpcflow_sdk::plugin::PluginKind;
use mpcflow_sdk::protocol::Protocol;
use mpcflow_sdk::transport::Transport;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The kernel name that means "each protocol's own CPU code".
pub const CPU_KERNEL: &str = "cpu";

/// Plugins by kind and name.
#[derive(Default, Clone)]
pub struct Registry {
    protocols: BTreeMap<String, Arc<dyn Protocol>>,
    transports: BTreeMap<String, Arc<dyn Transport>>,
    kernels: BTreeMap<String, Arc<dyn Kernel>>,
    importers: BTreeMap<String, Arc<dyn Importer>>,
    operators: BTreeMap<String, Arc<dyn Operator>>,
    sources: BTreeMap<(PluginKind, String), String>,
}

/// One registered plugin, as `mpcflow plugins list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryEntry {
    /// Its kind.
    pub kind: PluginKind,
    /// Its name.
    pub name: String,
    /// Its version (`-` where the kind has none).
    pub version: String,
    /// Where it came from: `built-in`, `native: PATH` or `wasm: PATH`.
    pub source: String,
    /// A detail: an operator's form, a protocol's description, a kernel's device.
    pub detail: String,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a protocol under its descriptor's name (replacing one of the same name).
    pub fn add_protocol(&mut self, p: Arc<dyn Protocol>) -> &mut Self {
        self.protocols.insert(p.descriptor().name, p);
        self
    }

    /// Registers a transport.
    pub fn add_transport(&mut self, t: Arc<dyn Transport>) -> &mut Self {
        self.transports.insert(t.name().to_string(), t);
        self
    }

    /// Registers a kernel.
    pub fn add_kernel(&mut self, k: Arc<dyn Kernel>) -> &mut Self {
        self.kernels.insert(k.descriptor().name, k);
        self
    }

    /// Registers an importer.
    pub fn add_importer(&mut self, i: Arc<dyn Importer>) -> &mut Self {
        self.importers.insert(i.name().to_string(), i);
        self
    }

    /// Registers a custom operator.
    pub fn add_operator(&mut self, o: Arc<dyn Operator>) -> &mut Self {
        self.operators.insert(o.name().to_string(), o);
        self
    }

    /// Records where the plugin `kind`/`name` came from (default: `built-in`).
    pub fn set_source(&mut self, kind: PluginKind, name: &str, source: impl Into<String>) -> &mut Self {
        self.sources.insert((kind, name.to_string()), source.into());
        self
    }

    /// Where the plugin `kind`/`name` came from.
    pub fn source(&self, kind: PluginKind, name: &str) -> String {
        self.sources.get(&(kind, name.to_string())).cloned().unwrap_or_else(|| "built-in".into())
    }

    /// Every registered plugin, by kind and name.
    pub fn entries(&self) -> Vec<RegistryEntry> {
        let entry = |kind, name: &str, version: String, detail: String| RegistryEntry {
            kind,
            name: name.to_string(),
            version,
            source: self.source(kind, name),
            detail,
        };
        let mut out = vec![];
        for (n, p) in &self.protocols {
            let d = p.descriptor();
            out.push(entry(PluginKind::Protocol, n, d.version, d.description));
        }
        for n in self.transports.keys() {
            out.push(entry(PluginKind::Transport, n, "-".into(), String::new()));
        }
        for (n, k) in &self.kernels {
            out.push(entry(PluginKind::Kernel, n, "-".into(), k.descriptor().device));
        }
        for (n, i) in &self.importers {
            out.push(entry(PluginKind::Importer, n, i.version().into(), String::new()));
        }
        for (n, o) in &self.operators {
            out.push(entry(PluginKind::Operator, n, o.version().into(), o.kind().to_string()));
        }
        out
    }

    /// A protocol by name.
    pub fn protocol(&self, name: &str) -> Option<Arc<dyn Protocol>> {
        self.protocols.get(name).cloned()
    }

    /// A transport by name.
    pub fn transport(&self, name: &str) -> Option<Arc<dyn Transport>> {
        self.transports.get(name).cloned()
    }

    /// A kernel by name.
    pub fn kernel(&self, name: &str) -> Option<Arc<dyn Kernel>> {
        self.kernels.get(name).cloned()
    }

    /// An importer by name.
    pub fn importer(&self, name: &str) -> Option<Arc<dyn Importer>> {
        self.importers.get(name).cloned()
    }

    /// A custom operator by name.
    pub fn operator(&self, name: &str) -> Option<Arc<dyn Operator>> {
        self.operators.get(name).cloned()
    }

    /// Names of the registered protocols.
    pub fn protocol_names(&self) -> Vec<String> {
        self.protocols.keys().cloned().collect()
    }

    /// Names of the registered kernels (`cpu` always among them: it is the protocols' own code).
    pub fn kernel_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.kernels.keys().cloned().collect();
        if !names.iter().any(|n| n == CPU_KERNEL) {
            names.insert(0, CPU_KERNEL.into());
        }
        names
    }

    /// Names of the registered transports.
    pub fn transport_names(&self) -> Vec<String> {
        self.transports.keys().cloned().collect()
    }

    /// Names of the registered importers.
    pub fn importer_names(&self) -> Vec<String> {
        self.importers.keys().cloned().collect()
    }

    /// Names of the registered operators.
    pub fn operator_names(&self) -> Vec<String> {
        self.operators.keys().cloned().collect()
    }
}
