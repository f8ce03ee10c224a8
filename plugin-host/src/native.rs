//! Native plugin libraries: opened with abi_stable, checked, then registered.
//!
//! abi_stable compares the library's root-module layout and the sdk version it was built
//! against with ours before returning anything from it, so a stale library is an error here and
//! never undefined behaviour later. What the check cannot give is isolation: a native library
//! runs with the host's rights (its initialisers run when it is opened). Load only libraries you
//! trust; give untrusted code to the WASM host instead.

use crate::{LoadError, Loaded, check_free};
use mpcflow_runtime::Registry;
use mpcflow_sdk::plugin::PluginKind;
use mpcflow_sdk::plugin::native::abi_stable::library::{LibraryError, RootModule, lib_header_from_path};
use mpcflow_sdk::plugin::native::{HostPlugin, PluginLibraryRef, into_registry_plugins};
use std::path::Path;

/// Opens the library at `path` and registers its plugins under `source`.
pub fn load(path: &Path, registry: &mut Registry, source: &str) -> Result<Vec<Loaded>, LoadError> {
    if let Err(e) = std::fs::metadata(path) {
        return Err(LoadError::Missing { path: path.to_path_buf(), message: e.to_string() });
    }
    let header = lib_header_from_path(path).map_err(|e| classify(path, e))?;
    let (theirs, ours) = (header.version_strings(), PluginLibraryRef::VERSION_STRINGS);
    let compatible = match (theirs.parsed(), ours.parsed()) {
        (Ok(t), Ok(o)) => t.major == o.major && (o.major != 0 || t.minor == o.minor),
        _ => false,
    };
    if !compatible {
        return Err(LoadError::Incompatible {
            path: path.to_path_buf(),
            message: format!(
                "it was built against mpcflow-sdk {}; this mpcflow uses mpcflow-sdk {} (rebuild the plugin \
                 against this sdk)",
                theirs.version, ours.version
            ),
        });
    }
    let module = header.init_root_module::<PluginLibraryRef>().map_err(|e| classify(path, e))?;
    let built_with = module.sdk_version()().as_str().to_string();
    let plugins = into_registry_plugins(module.plugins()())
        .map_err(|e| LoadError::NotAPlugin { path: path.to_path_buf(), message: e.to_string() })?;
    let mut loaded = vec![];
    for p in plugins {
        let (kind, name) = match &p {
            HostPlugin::Protocol(x) => (PluginKind::Protocol, x.descriptor().name),
            HostPlugin::Transport(x) => (PluginKind::Transport, x.name().to_string()),
            HostPlugin::Kernel(x) => (PluginKind::Kernel, x.descriptor().name),
            HostPlugin::Importer(x) => (PluginKind::Importer, x.name().to_string()),
            HostPlugin::Operator(x) => (PluginKind::Operator, x.name().to_string()),
        };
        check_free(registry, path, kind, &name)?;
        match p {
            HostPlugin::Protocol(x) => registry.add_protocol(x),
            HostPlugin::Transport(x) => registry.add_transport(x),
            HostPlugin::Kernel(x) => registry.add_kernel(x),
            HostPlugin::Importer(x) => registry.add_importer(x),
            HostPlugin::Operator(x) => registry.add_operator(x),
        };
        registry.set_source(kind, &name, source);
        tracing::info!(path = %path.display(), %kind, %name, sdk = %built_with, "loaded native plugin");
        loaded.push(Loaded { kind, name });
    }
    Ok(loaded)
}

/// Sorts abi_stable's errors into "not a plugin" and "incompatible", keeping its explanation
/// (which says which version or which type differs).
fn classify(path: &Path, e: LibraryError) -> LoadError {
    let path = path.to_path_buf();
    let message = summarize(&e.to_string());
    match e {
        LibraryError::OpenError { .. } | LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin {
            path,
            message: format!(
                "{message} (an mpcflow plugin library exports `{}`; see mpcflow_sdk::export_native_plugins!)",
                PluginLibraryRef::NAME
            ),
        },
        _ => LoadError::Incompatible { path, message },
    }
}

/// abi_stable explains a layout mismatch with every type it walked (thousands of lines); keep
/// its first line and each distinct `Error:` verdict with the lines that say what differs.
fn summarize(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.len() <= 6 {
        return lines.join("\n\t");
    }
    let mut keep: Vec<String> = vec![lines[0].to_string()];
    for (i, l) in lines.iter().enumerate() {
        if let Some(verdict) = l.strip_prefix("Error:") {
            let detail: Vec<&str> =
                lines[i + 1..].iter().take(4).copied().take_while(|d| !d.contains("error(s)")).collect();
            let v = format!("{verdict} {}", detail.join(" "));
            if !keep.contains(&v) {
                keep.push(v);
            }
        }
    }
    keep.truncate(6);
    keep.join("\n\t")
}
