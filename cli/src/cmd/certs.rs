//! `mpcflow certs new DIR --parties alice,bob,dealer [--deployment FILE]`: a deployment's CA and
//! one certificate and key per endpoint, plus a loopback deployment file that runs as it is.
//!
//! The CA's private key is not kept: nobody can issue another certificate under this CA later,
//! so a deployment is exactly the endpoints it was made for. Each key file is readable by its
//! owner only; hand each host its own key and everyone the CA and certificates.

use anyhow::{Context, Result, anyhow};
use mpcflow_transport_tcp::deployment::{loopback_deployment_yaml, write_certs};
use mpcflow_transport_tcp::{DEFAULT_VALIDITY_DAYS, Validity};
use std::path::{Path, PathBuf};

/// Subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Make a CA, a certificate and key per endpoint, and a loopback deployment file.
    New(NewArgs),
}

/// Arguments of `certs new`.
#[derive(clap::Args)]
pub struct NewArgs {
    /// Directory for ca.pem, NAME.pem and NAME.key (created if missing).
    dir: PathBuf,
    /// Endpoint names, comma separated: the pipeline's parties and `dealer` if the protocol
    /// uses one.
    #[arg(long, value_delimiter = ',', required = true)]
    parties: Vec<String>,
    /// Write the deployment file here instead of printing it (paths in it are relative to it).
    #[arg(long)]
    deployment: Option<PathBuf>,
    /// Days the certificates stay valid.
    #[arg(long, default_value_t = DEFAULT_VALIDITY_DAYS)]
    days: u32,
    /// First loopback port of the deployment file: the dealer gets it, the parties the next.
    #[arg(long, default_value_t = 7100)]
    base_port: u16,
}

pub fn run(c: Command) -> Result<()> {
    match c {
        Command::New(a) => new(a),
    }
}

/// `dir` as seen from `base` (a directory): relative when `dir` lies under `base`.
fn relative_to(dir: &Path, base: &Path) -> PathBuf {
    let (Ok(d), Ok(b)) = (dir.canonicalize(), base.canonicalize()) else {
        return dir.to_path_buf();
    };
    match d.strip_prefix(&b) {
        Ok(rel) if rel.as_os_str().is_empty() => PathBuf::from("."),
        Ok(rel) => rel.to_path_buf(),
        Err(_) => d,
    }
}

fn new(a: NewArgs) -> Result<()> {
    let names: Vec<String> = a.parties.iter().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return Err(anyhow!("--parties names no endpoint"));
    }
    if a.days == 0 {
        return Err(anyhow!("--days must be at least 1"));
    }
    let validity = write_certs(&a.dir, &names, Validity::days_from_now(a.days)).map_err(|e| anyhow!("{e}"))?;
    eprintln!(
        "wrote {}/ca.pem and a certificate and key for {}; valid for {} days, until {}",
        a.dir.display(),
        names.join(", "),
        a.days,
        validity.not_after_utc()
    );
    match &a.deployment {
        Some(file) => {
            let parent = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
            let yaml = loopback_deployment_yaml(&relative_to(&a.dir, parent), &names, a.base_port);
            std::fs::write(file, yaml).with_context(|| format!("cannot write {}", file.display()))?;
            eprintln!("wrote the loopback deployment {}", file.display());
        }
        None => print!("{}", loopback_deployment_yaml(&a.dir, &names, a.base_port)),
    }
    Ok(())
}
