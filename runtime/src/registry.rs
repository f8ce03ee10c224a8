//! The registry: plugins by kind and name. The runtime looks plugins up here and knows nothing
//! else about them; built-in and third-party plugins register the same way.

use mpcflow_sdk::importer::Importer;
use mpcflow_sdk::kernel::Kernel;
use mpcflow_sdk::operator::Operator;
use mpcflow_sdk::protocol::Protocol;
use mpcflow_sdk::transport::Transport;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Plugins by kind and name.
#[derive(Default, Clone)]
pub struct Registry {
    protocols: BTreeMap<String, Arc<dyn Protocol>>,
    transports: BTreeMap<String, Arc<dyn Transport>>,
    kernels: BTreeMap<String, Arc<dyn Kernel>>,
    importers: BTreeMap<String, Arc<dyn Importer>>,
    operators: BTreeMap<String, Arc<dyn Operator>>,
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

    /// Names of the registered transports.
    pub fn transport_names(&self) -> Vec<String> {
        self.transports.keys().cloned().collect()
    }

    /// Names of the registered operators.
    pub fn operator_names(&self) -> Vec<String> {
        self.operators.keys().cloned().collect()
    }
}
