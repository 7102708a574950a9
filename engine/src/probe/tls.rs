//! The TLS step: a rustls handshake exactly as a workload's HTTPS client would do it, plus a
//! record of the certificate the server presented even when verification fails.
//!
//! Verification is never weakened: [`RecordingVerifier`] delegates every decision to rustls's
//! WebPKI verifier (Mozilla roots plus an optional extra CA bundle) and only keeps a copy of the
//! presented chain, so a name mismatch can be reported with the names the certificate *does* have.

use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::report::TlsOutcome;

/// Builds the client configuration: webpki roots + `extra_roots`, ALPN `http/1.1`.
pub fn client_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<(Arc<ClientConfig>, Arc<RecordingVerifier>), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for cert in extra_roots {
        roots.add(cert.clone())?;
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
    let verifier = Arc::new(RecordingVerifier { inner, presented: Mutex::new(None) });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), verifier))
}

/// Delegates verification to WebPKI and remembers the presented leaf certificate.
#[derive(Debug)]
pub struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    presented: Mutex<Option<CertificateDer<'static>>>,
}

impl RecordingVerifier {
    /// The leaf certificate the server presented in the last handshake.
    pub fn presented(&self) -> Option<CertificateDer<'static>> {
        self.presented.lock().ok().and_then(|g| g.clone())
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut slot) = self.presented.lock() {
            *slot = Some(end_entity.clone().into_owned());
        }
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Classifies a failed handshake from the error tokio-rustls returned.
pub fn classify_handshake_error(err: &std::io::Error) -> TlsOutcome {
    if err.kind() == std::io::ErrorKind::TimedOut {
        return TlsOutcome::Timeout;
    }
    match err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(cert)) => match cert {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsOutcome::NameMismatch
            }
            CertificateError::UnknownIssuer => TlsOutcome::UnknownIssuer,
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => TlsOutcome::Expired,
            _ => TlsOutcome::HandshakeFailure,
        },
        _ => TlsOutcome::HandshakeFailure,
    }
}

/// Subject, DNS SANs (at most 16) and expiry (RFC 3339) of a DER certificate.
pub fn describe_certificate(der: &[u8]) -> Option<(String, Vec<String>, String)> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject().to_string();
    let sans = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some((*d).to_owned()),
                    GeneralName::IPAddress(b) if b.len() == 4 => {
                        Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string())
                    }
                    _ => None,
                })
                .take(16)
                .collect()
        })
        .unwrap_or_default();
    let not_after = cert
        .validity()
        .not_after
        .to_datetime()
        .format(&::time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| cert.validity().not_after.to_string());
    Some((subject, sans, not_after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn handshake_errors() {
        let wrap = |e: rustls::Error| Error::new(ErrorKind::InvalidData, e);
        let cases = [
            (wrap(rustls::Error::InvalidCertificate(CertificateError::NotValidForName)), TlsOutcome::NameMismatch),
            (wrap(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)), TlsOutcome::UnknownIssuer),
            (wrap(rustls::Error::InvalidCertificate(CertificateError::Expired)), TlsOutcome::Expired),
            (wrap(rustls::Error::InvalidCertificate(CertificateError::BadSignature)), TlsOutcome::HandshakeFailure),
            (wrap(rustls::Error::HandshakeNotComplete), TlsOutcome::HandshakeFailure),
            (Error::from(ErrorKind::UnexpectedEof), TlsOutcome::HandshakeFailure),
            (Error::from(ErrorKind::TimedOut), TlsOutcome::Timeout),
        ];
        for (err, want) in cases {
            assert_eq!(classify_handshake_error(&err), want, "{err}");
        }
    }

    #[test]
    fn garbage_certificate_is_not_described() {
        assert_eq!(describe_certificate(b"not a certificate"), None);
    }
}
