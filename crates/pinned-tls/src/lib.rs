//! TLS client verification against a **pinned** server certificate, for servers whose
//! certificate is self-signed (Kaspersky Security Center's `klserver.cer`, appliances, labs).
//!
//! Why this exists: a self-signed server certificate is commonly marked `CA:TRUE`. rustls (through
//! webpki) refuses such a certificate as the server's own certificate
//! (`CaUsedAsEndEntity`), even when the very same file is configured as the trusted CA. A pin
//! says "this exact certificate is the server" instead, so the `CA:TRUE` flag does not matter.
//!
//! What [`PinnedCertVerifier`] checks:
//! - the server's end-entity certificate is byte-for-byte one of the pinned certificates
//!   ([`Pin::Certificate`], e.g. read from a PEM file with [`pins_from_pem`]) or has one of the
//!   pinned SHA-256 fingerprints ([`Pin::Sha256`], parsed by [`parse_fingerprint`]);
//! - the TLS handshake signature, with the key of that certificate (so the peer holds the
//!   private key; a copied certificate is not enough);
//! - the requested host name against the certificate's subject alternative names, unless
//!   [`Options::accept_invalid_hostnames`] is set (callers should log a warning when it is).
//!
//! What it does not check: the certificate's validity period (a pin is an explicit, exact
//! trust decision, like an SSH host key; replace the pin when the server's certificate
//! changes) and revocation. When a certificate is not pinned, an optional fallback (the
//! ordinary WebPKI verification against built-in and extra roots, [`Options::fallback_roots`])
//! decides; without one the handshake fails with [`UNPINNED`] in the error.
//!
//! The crypto provider is rustls' `ring` provider, the one `reqwest`'s `rustls-tls` feature
//! already uses in this workspace.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let pins = pinned_tls::pins_from_pem(&std::fs::read("klserver.cer")?)?;
//! let options = pinned_tls::Options { pins, ..pinned_tls::Options::default() };
//! let client = pinned_tls::reqwest_builder(&options)?.build()?;
//! # let _ = client; Ok(()) }
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// Marker text in the error when the server's certificate matches no pin (and no fallback
/// accepted it): `server certificate is not pinned (sha256 AB:CD:...)`.
pub const UNPINNED: &str = "server certificate is not pinned";

/// One accepted server certificate.
#[derive(Clone, PartialEq, Eq)]
pub enum Pin {
    /// Exactly this certificate (DER bytes).
    Certificate(CertificateDer<'static>),
    /// Any certificate whose DER bytes have this SHA-256 digest.
    Sha256([u8; 32]),
}

impl Pin {
    /// True when `cert` (DER) is the pinned certificate.
    pub fn matches(&self, cert: &[u8]) -> bool {
        match self {
            Self::Certificate(c) => c.as_ref() == cert,
            Self::Sha256(fp) => sha256(cert) == *fp,
        }
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificate(c) => write!(f, "Certificate(sha256 {})", format_fingerprint(&sha256(c))),
            Self::Sha256(fp) => write!(f, "Sha256({})", format_fingerprint(fp)),
        }
    }
}

/// Errors building pins or a verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The PEM text holds no `CERTIFICATE` section, or one is broken.
    Pem(String),
    /// A fingerprint is not 32 bytes of hex.
    Fingerprint(String),
    /// rustls refused the configuration.
    Tls(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pem(m) => write!(f, "invalid certificate file: {m}"),
            Self::Fingerprint(m) => write!(f, "invalid sha-256 fingerprint: {m}"),
            Self::Tls(m) => write!(f, "tls configuration: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// SHA-256 of DER bytes.
pub fn sha256(der: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// `AB:CD:...` (upper-case hex, colon separated), the form browsers and `openssl x509
/// -fingerprint -sha256` print.
pub fn format_fingerprint(fp: &[u8; 32]) -> String {
    fp.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// Parses a SHA-256 fingerprint: 64 hex digits, case-insensitive, colons (or spaces)
/// optional, an optional `sha256:` prefix.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], Error> {
    let t = text.trim();
    let t = t.strip_prefix("sha256:").or_else(|| t.strip_prefix("SHA256:")).unwrap_or(t);
    let hex: Vec<u8> = t.bytes().filter(|b| !matches!(b, b':' | b' ')).collect();
    if hex.len() != 64 {
        return Err(Error::Fingerprint(format!("expected 64 hex digits, found {}", hex.len())));
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let (Some(hi), Some(lo)) = (digit(pair[0]), digit(pair[1])) else {
            return Err(Error::Fingerprint(format!("{:?} is not hex", String::from_utf8_lossy(pair))));
        };
        out[i] = hi << 4 | lo;
    }
    Ok(out)
}

/// Every certificate of a PEM text, as DER.
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs =
        CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| Error::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(Error::Pem("no CERTIFICATE section".to_owned()));
    }
    Ok(certs)
}

/// One [`Pin::Certificate`] per certificate of a PEM text.
pub fn pins_from_pem(pem: &[u8]) -> Result<Vec<Pin>, Error> {
    Ok(certs_from_pem(pem)?.into_iter().map(Pin::Certificate).collect())
}

/// How [`PinnedCertVerifier`] decides. Build with `Options { pins, ..Options::default() }`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The accepted server certificates (any one matching is enough).
    pub pins: Vec<Pin>,
    /// Skip the host-name check of a pinned certificate (and of the fallback). Callers should
    /// log a warning when this is on.
    pub accept_invalid_hostnames: bool,
    /// When set, a certificate that matches no pin is verified the ordinary way against the
    /// built-in web roots plus these certificates (so a real CA bundle keeps working).
    /// `None`: an unpinned certificate is refused.
    pub fallback_roots: Option<Vec<CertificateDer<'static>>>,
}

/// A [`ServerCertVerifier`] accepting exactly the pinned certificates, `CA:TRUE` or not
/// (see the crate documentation for what is and is not checked).
pub struct PinnedCertVerifier {
    pins: Vec<Pin>,
    accept_invalid_hostnames: bool,
    fallback: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for PinnedCertVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedCertVerifier")
            .field("pins", &self.pins)
            .field("accept_invalid_hostnames", &self.accept_invalid_hostnames)
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

/// The crypto provider used everywhere here: rustls' `ring` provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl PinnedCertVerifier {
    /// Builds the verifier. Fails when there is neither a pin nor a fallback, or the fallback
    /// roots are unusable.
    pub fn new(options: &Options) -> Result<Self, Error> {
        let provider = provider();
        let fallback = match &options.fallback_roots {
            None => None,
            Some(extra) => {
                let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
                for cert in extra {
                    // A CA:TRUE self-signed server certificate is a fine trust anchor, a leaf
                    // certificate may not be: those are matched by the pins instead.
                    let _ = roots.add(cert.clone());
                }
                let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| Error::Tls(e.to_string()))?;
                Some(v)
            }
        };
        if options.pins.is_empty() && fallback.is_none() {
            return Err(Error::Tls("no pinned certificate".to_owned()));
        }
        Ok(Self {
            pins: options.pins.clone(),
            accept_invalid_hostnames: options.accept_invalid_hostnames,
            fallback,
            provider,
        })
    }
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pins.iter().any(|p| p.matches(end_entity)) {
            if !self.accept_invalid_hostnames {
                let parsed = ParsedCertificate::try_from(end_entity)?;
                verify_server_name(&parsed, server_name)?;
            }
            return Ok(ServerCertVerified::assertion());
        }
        if let Some(fallback) = &self.fallback {
            return match fallback.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
                )) if self.accept_invalid_hostnames => Ok(ServerCertVerified::assertion()),
                other => other,
            };
        }
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(UnpinnedError(
            format_fingerprint(&sha256(end_entity)),
        ))))))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The error inside `CertificateError::Other`; rustls prints it with `Debug`, so `Debug` gives
/// the readable message too.
struct UnpinnedError(String);

impl fmt::Debug for UnpinnedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for UnpinnedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{UNPINNED} (sha256 {})", self.0)
    }
}

impl std::error::Error for UnpinnedError {}

/// A rustls client configuration (TLS 1.2 and 1.3, no client certificate) using a
/// [`PinnedCertVerifier`].
pub fn client_config(options: &Options) -> Result<rustls::ClientConfig, Error> {
    let verifier = Arc::new(PinnedCertVerifier::new(options)?);
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

/// A `reqwest::ClientBuilder` whose TLS is [`client_config`] (`use_preconfigured_tls`). Set
/// timeouts and the rest on the returned builder as usual; do not call TLS-related builder
/// methods afterwards (they would replace the pinned configuration).
pub fn reqwest_builder(options: &Options) -> Result<reqwest::ClientBuilder, Error> {
    Ok(reqwest::Client::builder().use_preconfigured_tls(client_config(options)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_every_common_spelling() {
        let fp = [0xABu8; 32];
        let colons = format_fingerprint(&fp);
        assert_eq!(&colons[..8], "AB:AB:AB");
        assert_eq!(parse_fingerprint(&colons), Ok(fp));
        assert_eq!(parse_fingerprint(&colons.to_lowercase().replace(':', "")), Ok(fp));
        assert_eq!(parse_fingerprint(&format!("sha256:{colons}")), Ok(fp));
        assert!(matches!(parse_fingerprint("AB:CD"), Err(Error::Fingerprint(_))));
        assert!(matches!(parse_fingerprint(&"zz".repeat(32)), Err(Error::Fingerprint(_))));
    }

    #[test]
    fn pins_match_exact_bytes_or_digest() {
        let der = b"not really a certificate".to_vec();
        let by_cert = Pin::Certificate(CertificateDer::from(der.clone()));
        let by_hash = Pin::Sha256(sha256(&der));
        assert!(by_cert.matches(&der) && by_hash.matches(&der));
        assert!(!by_cert.matches(b"other") && !by_hash.matches(b"other"));
        assert!(matches!(pins_from_pem(b"no pem here"), Err(Error::Pem(_))));
        assert!(PinnedCertVerifier::new(&Options::default()).is_err());
    }
}
