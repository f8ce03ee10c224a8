//! Certificate verification that remembers why it refused.
//!
//! rustls reports a refused certificate to the peer as a bare TLS alert and to us as an error
//! that names neither side. The verifiers here wrap webpki's, do exactly what it does (plus, on
//! the listening side, check that the dialer's certificate names one of the endpoints expected
//! to dial), and record what the refused certificate presented, so the connect error can say
//! "alice (party 0) refused the certificate of bob (party 1) at …: it expired on …" instead of
//! "handshake failure".

use crate::certs::utc;
use crate::lock;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

/// What a recording verifier saw when it refused a certificate.
pub(crate) type Refusal = Arc<Mutex<Option<Refused>>>;

/// A refused certificate: the names it carried and webpki's reason.
#[derive(Debug)]
pub(crate) struct Refused {
    /// Its subject alternative names; `None` if it could not be parsed.
    pub names: Option<Vec<String>>,
    /// Why it was refused.
    pub error: rustls::Error,
    /// Whether the deployment CA issued it (refused for its dates or its name only). Anyone
    /// can present a certificate of their own making, so only such a refusal says that the
    /// deployment itself is misconfigured.
    pub from_deployment: bool,
}

impl Refused {
    /// `a certificate for ["bob"]`, `a certificate without names` or `an unparsable certificate`.
    pub fn presented(&self) -> String {
        describe(self.names.as_deref())
    }

    /// Whether the certificate names `name`.
    pub fn names(&self, name: &str) -> bool {
        self.names.as_ref().is_some_and(|n| n.iter().any(|n| n.eq_ignore_ascii_case(name)))
    }

    /// `it expired on …` or `it is not valid before …` when the certificate was refused for
    /// its dates.
    pub fn validity_problem(&self) -> Option<String> {
        validity_problem(&self.error)
    }
}

/// The reason in words when `e` refuses a certificate for its dates.
pub(crate) fn validity_problem(e: &rustls::Error) -> Option<String> {
    let at = |t: UnixTime| utc(UNIX_EPOCH + Duration::from_secs(t.as_secs()));
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::ExpiredContext { not_after, .. } => Some(format!("it expired on {}", at(*not_after))),
            CertificateError::Expired => Some("it has expired".into()),
            CertificateError::NotValidYetContext { time, not_before } => {
                Some(format!("it is not valid before {} (this host's clock reads {})", at(*not_before), at(*time)))
            }
            CertificateError::NotValidYet => Some("it is not valid yet".into()),
            _ => None,
        },
        _ => None,
    }
}

/// Why this endpoint's own certificate is outside its validity now, if it is.
pub(crate) fn own_validity_problem(
    verifier: &WebPkiServerVerifier,
    chain: &[CertificateDer<'static>],
    name: &str,
) -> Option<String> {
    let (leaf, rest) = chain.split_first()?;
    let name = ServerName::try_from(name.to_string()).ok()?;
    match verifier.verify_server_cert(leaf, rest, &name, &[], UnixTime::now()) {
        Ok(_) => None,
        Err(e) => validity_problem(&e),
    }
}

/// Whether a certificate names the endpoint `name`.
pub(crate) fn certifies(parsed: &ParsedCertificate<'_>, name: &str) -> bool {
    ServerName::try_from(name).is_ok_and(|n| verify_server_name(parsed, &n).is_ok())
}

/// The subject alternative names of a certificate, read by webpki; `None` if it is unparsable.
pub(crate) fn cert_names(cert: &CertificateDer<'_>) -> Option<Vec<String>> {
    let parsed = ParsedCertificate::try_from(cert).ok()?;
    let probe = ServerName::try_from("mpcflow-probe.invalid").expect("valid DNS name");
    match verify_server_name(&parsed, &probe) {
        Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { presented, .. })) => {
            // webpki writes `DnsName("bob")`; keep `bob`.
            Some(
                presented
                    .iter()
                    .map(|n| n.strip_prefix("DnsName(\"").and_then(|n| n.strip_suffix("\")")).unwrap_or(n).to_string())
                    .collect(),
            )
        }
        _ => Some(vec![]),
    }
}

/// A certificate's names in words: `a certificate for ["bob"]`.
fn describe(names: Option<&[String]>) -> String {
    match names {
        None => "an unparsable certificate".into(),
        Some([]) => "a certificate without names".into(),
        Some(n) => format!("a certificate for {n:?}"),
    }
}

/// The subject alternative names of a certificate in words: `a certificate for ["bob"]`.
pub(crate) fn presented_names(cert: &CertificateDer<'_>) -> String {
    describe(cert_names(cert).as_deref())
}

/// Wraps a webpki verifier and records which names a refused certificate presented.
#[derive(Debug)]
pub(crate) struct Recording<V: ?Sized> {
    pub inner: Arc<V>,
    pub refusal: Refusal,
    /// For a listener: the names a dialer's certificate may carry.
    pub expected: Vec<String>,
}

impl<V: ?Sized> Recording<V> {
    fn note<T>(
        &self,
        cert: &CertificateDer<'_>,
        r: std::result::Result<T, rustls::Error>,
        from_deployment: impl FnOnce(&rustls::Error) -> bool,
    ) -> std::result::Result<T, rustls::Error> {
        if let Err(e) = &r {
            let from_deployment = from_deployment(e);
            *lock(&self.refusal) = Some(Refused { names: cert_names(cert), error: e.clone(), from_deployment });
        }
        r
    }
}

/// The moment at which a certificate refused for its dates was valid, if the refusal says.
fn valid_moment(e: &rustls::Error) -> Option<UnixTime> {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { not_after, .. }) => Some(*not_after),
        rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext { not_before, .. }) => Some(*not_before),
        _ => None,
    }
}

impl ServerCertVerifier for Recording<WebPkiServerVerifier> {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let r = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        // The dialing side chose this address: every refusal there is final.
        self.note(end_entity, r, |_| true)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl ClientCertVerifier for Recording<dyn ClientCertVerifier> {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        let chain = self.inner.verify_client_cert(end_entity, intermediates, now);
        let chained = chain.is_ok();
        let r = chain.and_then(|ok| {
            // Refuse an unexpected name inside the handshake, so the dialer gets an alert.
            let parsed = ParsedCertificate::try_from(end_entity)?;
            let named = self.expected.iter().any(|name| certifies(&parsed, name));
            if named { Ok(ok) } else { Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName)) }
        });
        // Issued by the deployment CA: it verifies (then only its name was wrong), or it verifies
        // at a moment when its dates were valid.
        self.note(end_entity, r, |e| {
            chained
                || valid_moment(e)
                    .is_some_and(|at| self.inner.verify_client_cert(end_entity, intermediates, at).is_ok())
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
