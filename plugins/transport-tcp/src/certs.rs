//! Certificate generation for a deployment: one CA and one certificate per endpoint.
//!
//! It lives apart from the connection code because it runs at another time (once, when a
//! deployment is set up, by whoever plays the CA) and because every certificate states how long
//! it is valid: the [`Validity`] chosen here is what a handshake later refuses with "it expired
//! on …", so the dates are formatted the same way in both places ([`utc`]).

use mpcflow_sdk::{Error, Result};
use rustls::pki_types::ServerName;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the certificates of [`generate_deployment_certs`] are valid: ten years.
pub const DEFAULT_VALIDITY_DAYS: u32 = 3650;

/// How far before "now" [`Validity::days_from_now`] starts, so a host whose clock lags the
/// CA's by a little accepts a fresh certificate at once.
const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// The span of time in which a certificate is valid (both ends included, second precision).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// The first moment the certificate is valid.
    pub not_before: SystemTime,
    /// The last moment the certificate is valid.
    pub not_after: SystemTime,
}

impl Validity {
    /// Valid from one hour ago (tolerating a little clock skew between hosts) until `days`
    /// days from now.
    pub fn days_from_now(days: u32) -> Validity {
        let now = SystemTime::now();
        Validity {
            not_before: now.checked_sub(CLOCK_SKEW).unwrap_or(now),
            not_after: now + Duration::from_secs(u64::from(days) * 86_400),
        }
    }

    /// `not_before` as `YYYY-MM-DD HH:MM:SS UTC`.
    pub fn not_before_utc(&self) -> String {
        utc(self.not_before)
    }

    /// `not_after` as `YYYY-MM-DD HH:MM:SS UTC`.
    pub fn not_after_utc(&self) -> String {
        utc(self.not_after)
    }
}

impl Default for Validity {
    /// [`DEFAULT_VALIDITY_DAYS`] from now.
    fn default() -> Self {
        Validity::days_from_now(DEFAULT_VALIDITY_DAYS)
    }
}

impl std::fmt::Display for Validity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "from {} to {}", self.not_before_utc(), self.not_after_utc())
    }
}

/// A moment as `2025-01-01 00:00:00 UTC` (seconds, as certificates store them).
pub(crate) fn utc(t: SystemTime) -> String {
    match to_datetime(t) {
        Some(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        None => format!("{t:?}"),
    }
}

/// A moment as a `time` date, if it is within the years `time` can hold.
fn to_datetime(t: SystemTime) -> Option<time::OffsetDateTime> {
    let epoch = time::OffsetDateTime::UNIX_EPOCH;
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => epoch.checked_add(time::Duration::try_from(after).ok()?),
        Err(before) => epoch.checked_sub(time::Duration::try_from(before.duration()).ok()?),
    }
}

/// A moment as a certificate date: whole seconds, within the years X.509 can write.
fn cert_time(t: SystemTime, which: &str) -> Result<time::OffsetDateTime> {
    let d = to_datetime(t).filter(|d| (1950..=9999).contains(&d.year())).ok_or_else(|| {
        Error::Transport(format!(
            "cannot generate certificates: {which} must lie between the years 1950 and 9999, as X.509 dates do"
        ))
    })?;
    Ok(d.replace_nanosecond(0).unwrap_or(d))
}

/// One endpoint's identity as PEM. `Debug` never shows the private key.
#[derive(Clone)]
pub struct EndpointCert {
    /// Endpoint name (its certificate's subject alternative name).
    pub name: String,
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for EndpointCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointCert").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A fresh deployment CA and one certificate per endpoint name, all PEM, valid for
/// [`DEFAULT_VALIDITY_DAYS`] from now: `(ca_cert_pem, [(name, cert_pem, key_pem)])`. Each
/// certificate names its endpoint as its only subject alternative name and may be used both to
/// dial and to accept. The CA's private key is discarded, so no further certificate can be
/// issued under this CA.
pub fn generate_deployment_certs(names: &[&str]) -> Result<(String, Vec<EndpointCert>)> {
    generate_deployment_certs_with(names, Validity::default())
}

/// [`generate_deployment_certs`] with the CA and every certificate valid over `validity`.
pub fn generate_deployment_certs_with(names: &[&str], validity: Validity) -> Result<(String, Vec<EndpointCert>)> {
    generate(names, validity, |_| validity)
}

/// The generator, with a validity per endpoint (tests give one endpoint an expired certificate
/// under a CA that is still valid).
pub(crate) fn generate(
    names: &[&str],
    ca_validity: Validity,
    validity_of: impl Fn(&str) -> Validity,
) -> Result<(String, Vec<EndpointCert>)> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let fail = |e: rcgen::Error| Error::Transport(format!("cannot generate certificates: {e}"));
    let set_validity = |params: &mut CertificateParams, v: Validity| -> Result<()> {
        params.not_before = cert_time(v.not_before, "not_before")?;
        params.not_after = cert_time(v.not_after, "not_after")?;
        if params.not_after <= params.not_before {
            return Err(Error::Transport(format!(
                "cannot generate certificates: the validity ends ({}) before it starts ({})",
                v.not_after_utc(),
                v.not_before_utc()
            )));
        }
        Ok(())
    };
    for name in names {
        if ServerName::try_from(name.to_string()).is_err() {
            return Err(Error::Transport(format!("`{name}` cannot be a certificate name (it must be a DNS name)")));
        }
    }
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    set_validity(&mut ca_params, ca_validity)?;
    let ca_key = KeyPair::generate().map_err(fail)?;
    // A name of its own, so a certificate of another deployment reads as "unknown issuer".
    let tag: String = ca_key.public_key_raw().iter().rev().take(6).map(|b| format!("{b:02x}")).collect();
    ca_params.distinguished_name.push(DnType::CommonName, format!("mpcflow deployment CA {tag}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(fail)?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let mut params = CertificateParams::new(vec![name.to_string()]).map_err(fail)?;
        set_validity(&mut params, validity_of(name))?;
        params.distinguished_name.push(DnType::CommonName, *name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages =
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().map_err(fail)?;
        let cert = params.signed_by(&key, &ca).map_err(fail)?;
        out.push(EndpointCert { name: name.to_string(), cert_pem: cert.pem(), key_pem: key.serialize_pem() });
    }
    Ok((ca.pem(), out))
}
