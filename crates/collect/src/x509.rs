//! The subject of a client certificate (already verified by rustls), as the principal of the
//! requests of its connection.

/// The subject distinguished name of a DER certificate, e.g. `CN=agent-7, O=acme`.
pub fn subject(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let s = cert.subject().to_string();
    (!s.is_empty()).then_some(s)
}
