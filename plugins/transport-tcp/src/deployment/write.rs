//! Making a deployment: its certificates on disk and a loopback deployment file.
//!
//! Kept apart from reading a deployment because it runs once, on the host that plays the CA,
//! and because it is the only code here that writes private keys.

use super::DeploymentError;
use crate::Validity;
use crate::certs::generate_deployment_certs_with;
use rustls::pki_types::ServerName;
use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::path::Path;

/// Writes `DIR/ca.pem` and `DIR/NAME.pem` + `DIR/NAME.key` for each name (key files readable
/// by their owner only, on unix), all valid over `validity`, which it returns. The directory is
/// created if needed. If any of the files exists already, nothing is written: certificates of
/// two CAs must not be mixed, and a key must not be overwritten by accident.
pub fn write_certs(dir: &Path, names: &[String], validity: Validity) -> Result<Validity, DeploymentError> {
    let generate = |message: String| DeploymentError::Generate { dir: dir.to_path_buf(), message };
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(generate(format!("`{name}` is named twice")));
        }
        if name == "ca" {
            return Err(generate("an endpoint cannot be named `ca`: its certificate would be the CA's ca.pem".into()));
        }
        if ServerName::try_from(name.as_str()).is_err() || name.parse::<IpAddr>().is_ok() {
            return Err(generate(format!(
                "`{name}` is not a valid DNS name, which it must be to name a certificate (use letters, digits, `-` \
                 and `.`)"
            )));
        }
    }
    let mut files = vec![(dir.join("ca.pem"), false)];
    for name in names {
        files.push((dir.join(format!("{name}.pem")), false));
        files.push((dir.join(format!("{name}.key")), true));
    }
    for (path, _) in &files {
        if path.exists() {
            return Err(DeploymentError::Exists { path: path.clone() });
        }
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (ca, certs) = generate_deployment_certs_with(&refs, validity).map_err(|e| generate(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|source| DeploymentError::Write { path: dir.to_path_buf(), source })?;
    let mut contents: Vec<&str> = vec![&ca];
    for c in &certs {
        contents.push(&c.cert_pem);
        contents.push(&c.key_pem);
    }
    let mut written: Vec<&Path> = vec![];
    for ((path, secret), content) in files.iter().zip(contents) {
        if let Err(source) = write_new(path, content.as_bytes(), *secret) {
            // Leave no half-written deployment behind.
            for p in written {
                let _ = std::fs::remove_file(p);
            }
            if source.kind() != io::ErrorKind::AlreadyExists {
                let _ = std::fs::remove_file(path);
            }
            return Err(DeploymentError::Write { path: path.clone(), source });
        }
        written.push(path);
    }
    Ok(validity)
}

/// Creates `path` (failing if it exists) and writes `bytes`; a `secret` file is created
/// readable and writable by its owner only, before anything is written to it.
fn write_new(path: &Path, bytes: &[u8], secret: bool) -> io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A YAML scalar for `s`: as it is when that is safe, double-quoted otherwise.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
        && !s.starts_with('-')
        && !["null", "true", "false", "yes", "no", "on", "off", "~"].contains(&s.to_ascii_lowercase().as_str());
    if plain {
        return s.to_string();
    }
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// The YAML of a loopback deployment for `names`, whose certificate paths are `cert_dir` (as
/// given, relative to where the deployment file will be) + `NAME.pem` / `NAME.key`, with the
/// dealer (if named `dealer`) on `base_port` and the others on `base_port + 1`, `+ 2`, … in the
/// order given. (A port past 65535 is written as it is, and loading the file says so.)
pub fn loopback_deployment_yaml(cert_dir: &Path, names: &[String], base_port: u16) -> String {
    let path = |file: String| scalar(&cert_dir.join(file).display().to_string());
    let mut next = u32::from(base_port);
    let rows: Vec<(String, String, String, String)> = names
        .iter()
        .map(|name| {
            let port = if name == crate::DEALER {
                u32::from(base_port)
            } else {
                next += 1;
                next
            };
            (
                format!("{}:", scalar(name)),
                format!("127.0.0.1:{port},"),
                format!("{},", path(format!("{name}.pem"))),
                path(format!("{name}.key")),
            )
        })
        .collect();
    let width =
        |f: fn(&(String, String, String, String)) -> &String| rows.iter().map(|r| f(r).len()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(|r| &r.0), width(|r| &r.1), width(|r| &r.2));
    let mut out = String::from("# Every endpoint of the deployment: where it listens, its certificate and its key.\n");
    let _ = writeln!(out, "ca: {}", path("ca.pem".into()));
    out.push_str("parties:\n");
    for (name, address, cert, key) in &rows {
        let _ = writeln!(out, "  {name:w0$} {{ address: {address:w1$} cert: {cert:w2$} key: {key} }}");
    }
    out
}
