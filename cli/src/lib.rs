//! # mpcflow: the facade
//!
//! Registers the built-in plugins and re-exports the runtime, so a host program needs one
//! dependency:
//! ```no_run
//! # async fn demo() -> Result<(), mpcflow::runtime::Error> {
//! let session = mpcflow::runtime::Session::from_path("graphs/millionaires.yaml".as_ref(), mpcflow::builtins())?;
//! let out = session.run([("alice_wealth", 5_000_000i64.into()), ("bob_wealth", 3_000_000i64.into())]).await?;
//! println!("{:?}", out.values("alice_richer"));
//! # Ok(()) }
//! ```

pub mod calibrate;
pub mod deploy;
pub mod import;
pub mod import_files;
pub mod io;

pub use mpcflow_plugin_host as plugin_host;
pub use mpcflow_runtime as runtime;
pub use mpcflow_sdk as sdk;

use mpcflow_runtime::Registry;
use std::sync::Arc;

/// Adds the built-in plugins to `registry`: the `ref`, `fss2pc` and `rep3` protocols, the `mem` and
/// `tcp` transports (`tcp` here holds every endpoint in this process, on loopback; a process of
/// a deployment builds its own from the deployment file), the `onnx` importer and the `cpu` and (feature `cuda`, on by default) `cuda`
/// kernels. The `cuda` kernel opens no GPU until a session asks for it.
pub fn register_builtins(registry: &mut Registry) {
    registry.add_importer(Arc::new(mpcflow_importer_onnx::OnnxImporter));
    registry.add_protocol(Arc::new(mpcflow_protocol_ref::RefProtocol));
    registry.add_protocol(Arc::new(mpcflow_protocol_fss2pc::Fss2pc::default()));
    registry.add_protocol(Arc::new(mpcflow_protocol_rep3::Rep3::default()));
    registry.add_transport(Arc::new(mpcflow_transport_mem::MemTransport::new()));
    registry.add_transport(Arc::new(mpcflow_transport_tcp::LoopbackTcp::new()));
    registry.add_kernel(Arc::new(mpcflow_kernel_cpu::CpuKernel::default()));
    #[cfg(feature = "cuda")]
    registry.add_kernel(Arc::new(mpcflow_kernel_cuda::CudaKernel::new()));
}

/// A registry holding the built-in plugins.
pub fn builtins() -> Registry {
    let mut r = Registry::new();
    register_builtins(&mut r);
    r
}

/// What `run`, `plan` and the other commands do with a pipeline file before planning: a
/// registry of the built-in plugins, then the pipeline's `plugins:`, then `extra` (a
/// command line's `--plugin`s); then the pipeline's `models:` imported with it. Errors name the
/// file and line, or the plugin.
pub fn prepare(
    mut pipeline: mpcflow_runtime::pipeline::Pipeline,
    extra: &[std::path::PathBuf],
) -> Result<(mpcflow_runtime::pipeline::Pipeline, Registry), mpcflow_runtime::Error> {
    let registry = registry_with(&pipeline.plugins, extra)?;
    pipeline.import_models(&registry)?;
    Ok((pipeline, registry))
}

/// The built-in plugins, then those a pipeline declares (`decls`), then `extra` plugin files.
pub fn registry_with(
    decls: &[mpcflow_runtime::plugin_spec::PluginDecl],
    extra: &[std::path::PathBuf],
) -> Result<Registry, mpcflow_runtime::Error> {
    let mut registry = builtins();
    for decl in decls {
        mpcflow_plugin_host::load(&decl.source, &mut registry)
            .map_err(|e| mpcflow_runtime::Error::Parse(format!("{}: {e}", decl.location)))?;
    }
    for path in extra {
        let source = mpcflow_runtime::plugin_spec::PluginSource::from_path(path.clone());
        mpcflow_plugin_host::load(&source, &mut registry)
            .map_err(|e| mpcflow_runtime::Error::Setting(format!("--plugin: {e}")))?;
    }
    Ok(registry)
}
