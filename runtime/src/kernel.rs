//! Choosing a session's compute kernel (`cpu`, `cuda`, or a plugin's).
//!
//! The kernel is a property of the machine a party runs on, not of the computation: it is not
//! part of the graph or the plan fingerprint, so two parties may run on different hardware. A
//! pipeline file's `kernel:` *demands* a kernel (a deployment written for GPUs should not slow
//! down silently when the GPU is missing); `--kernel` on the command line (or
//! [`crate::session::SessionConfig::kernel`]) *asks* for one and overrides the file, falling
//! back to `cpu` with a single warning when the kernel cannot run here. `cpu` means each
//! protocol's own CPU code, so it is handed to protocols as "no kernel".

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Problem, Site};
use crate::registry::{CPU_KERNEL, Registry};
use mpcflow_sdk::kernel::Kernel;

/// The kernel a run hands its protocol: `None` for `cpu`.
#[derive(Clone, Default)]
pub struct KernelHandle(pub Option<Arc<dyn Kernel>>);

impl KernelHandle {
    /// The kernel's name (`cpu` when none).
    pub fn name(&self) -> String {
        self.0.as_ref().map_or_else(|| CPU_KERNEL.into(), |k| k.descriptor().name)
    }
}

impl fmt::Debug for KernelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KernelHandle({})", self.name())
    }
}

/// The kernel to run with: `asked` (command line) wins over `demanded` (the file); neither means
/// `cpu`. An unknown name is an error; an unavailable kernel is an error when the file demanded
/// it and a fallback to `cpu`, with one warning, when it was asked for.
pub fn choose(registry: &Registry, asked: Option<&str>, demanded: Option<&str>) -> Result<KernelHandle, Error> {
    let (name, from_file) = match (asked, demanded) {
        (Some(n), _) => (n, false),
        (None, Some(n)) => (n, true),
        (None, None) => return Ok(KernelHandle(None)),
    };
    // A file's choice is reported at its `kernel:` line; a command-line choice by the flag.
    let fail = |m: String| {
        if from_file {
            Error::Invalid(vec![Problem::new(Site::Kernel, m)])
        } else {
            Error::Setting(format!("--kernel: {m}"))
        }
    };
    if name == CPU_KERNEL {
        return Ok(KernelHandle(None));
    }
    let Some(kernel) = registry.kernel(name) else {
        return Err(fail(unknown(registry, name)));
    };
    match kernel.available() {
        Ok(()) => {
            let d = kernel.descriptor();
            tracing::info!(kernel = %d.name, device = %d.device, "compute kernel");
            Ok(KernelHandle(Some(kernel)))
        }
        Err(why) if from_file => Err(fail(format!(
            "kernel `{name}` cannot run here: {why} (the file demands it; pass --kernel cpu to run on the CPU)"
        ))),
        Err(why) => {
            tracing::warn!("kernel `{name}` cannot run here ({why}); using `cpu`");
            Ok(KernelHandle(None))
        }
    }
}

/// Checks a pipeline file's `kernel:` without choosing it: the name must be registered. Returns
/// the kernel's availability here (`Err` with the reason when it cannot run), for `check`.
pub fn check_file_kernel(registry: &Registry, name: &str) -> Result<std::result::Result<(), String>, Error> {
    if name == CPU_KERNEL {
        return Ok(Ok(()));
    }
    match registry.kernel(name) {
        Some(k) => Ok(k.available()),
        None => Err(Error::Invalid(vec![Problem::new(Site::Kernel, unknown(registry, name))])),
    }
}

fn unknown(registry: &Registry, name: &str) -> String {
    format!("unknown kernel `{name}` (available: {})", registry.kernel_names().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpcflow_sdk::kernel::KernelDescriptor;

    struct Fake(bool);
    impl Kernel for Fake {
        fn descriptor(&self) -> KernelDescriptor {
            KernelDescriptor { name: "fake".into(), device: "none".into() }
        }
        fn available(&self) -> Result<(), String> {
            if self.0 { Ok(()) } else { Err("no device".into()) }
        }
    }

    fn registry(available: bool) -> Registry {
        let mut r = Registry::new();
        r.add_kernel(Arc::new(Fake(available)));
        r
    }

    #[test]
    fn cpu_and_nothing_mean_no_kernel() {
        let r = registry(true);
        assert_eq!(choose(&r, None, None).unwrap().name(), "cpu");
        assert_eq!(choose(&r, Some("cpu"), Some("fake")).unwrap().name(), "cpu");
        assert_eq!(choose(&r, None, Some("cpu")).unwrap().name(), "cpu");
    }

    #[test]
    fn an_available_kernel_is_used() {
        assert_eq!(choose(&registry(true), None, Some("fake")).unwrap().name(), "fake");
        assert_eq!(choose(&registry(true), Some("fake"), None).unwrap().name(), "fake");
    }

    #[test]
    fn unavailable_falls_back_when_asked_and_fails_when_demanded() {
        let r = registry(false);
        assert_eq!(choose(&r, Some("fake"), None).unwrap().name(), "cpu");
        let e = choose(&r, None, Some("fake")).unwrap_err().to_string();
        assert!(e.contains("kernel `fake` cannot run here: no device") && e.contains("--kernel cpu"), "{e}");
    }

    #[test]
    fn check_knows_names_and_availability() {
        assert_eq!(check_file_kernel(&registry(true), "cpu").unwrap(), Ok(()));
        assert_eq!(check_file_kernel(&registry(false), "fake").unwrap(), Err("no device".to_string()));
        assert!(check_file_kernel(&registry(true), "tpu").unwrap_err().to_string().contains("unknown kernel `tpu`"));
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = choose(&registry(true), Some("tpu"), None).unwrap_err().to_string();
        assert!(e.contains("unknown kernel `tpu` (available: cpu, fake)"), "{e}");
    }
}
