//! Real TLS handshakes against a small HTTPS server with a certificate made at test time:
//! `ca_pem` (the daemon's `business_hub.ca_file`) pins the exact server certificate, CA:TRUE or
//! not; `cert_sha256` pins a fingerprint; host names are checked unless
//! `accept_invalid_hostnames` is on; a CA file that is a real CA still verifies a chain.

use std::sync::Arc;
use std::time::Duration;

use kbh_adapter::{KbhAuth, KbhClient, KbhConfig, KbhError, RetryPolicy};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use ticketing_core::ports::PortErrorKind;
use ticketing_core::secret::Secret;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const BODY: &str = r#"{"items":[{"id":"c-1","name":"Acme","products":["kes_cloud"]}],"next_cursor":null}"#;

struct Server {
    /// PEM of the certificate the server presents.
    pem: String,
    /// DER of it.
    der: CertificateDer<'static>,
    port: u16,
}

/// How the server's certificate is made.
enum Cert {
    /// Self-signed, with or without `CA:TRUE`, for these names.
    SelfSigned { ca: bool, names: Vec<&'static str> },
    /// Issued by a separate CA (whose PEM is returned as the second value).
    IssuedBy,
}

/// An HTTPS server answering every request with the company list.
async fn server(cert: Cert) -> (Server, Option<String>) {
    let key = KeyPair::generate().unwrap();
    let (leaf, ca_pem) = match cert {
        Cert::SelfSigned { ca, names } => {
            let mut params = CertificateParams::new(names.into_iter().map(str::to_owned).collect::<Vec<_>>()).unwrap();
            if ca {
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            }
            (params.self_signed(&key).unwrap(), None)
        }
        Cert::IssuedBy => {
            let ca_key = KeyPair::generate().unwrap();
            let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Test Private CA");
            let ca = ca_params.self_signed(&ca_key).unwrap();
            let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
            (params.signed_by(&key, &ca, &ca_key).unwrap(), Some(ca.pem()))
        }
    };
    let der = leaf.der().clone();
    let config = rustls::ServerConfig::builder_with_provider(pinned_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                // read the request head, then answer and close
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
                    BODY.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (Server { pem: leaf.pem(), der, port }, ca_pem)
}

fn self_signed(ca: bool) -> Cert {
    Cert::SelfSigned { ca, names: vec!["localhost", "127.0.0.1"] }
}

fn config(host: &str, port: u16) -> KbhConfig {
    KbhConfig::new(&format!("https://{host}:{port}"), KbhAuth::Token(Secret::new("t")))
        .unwrap()
        .with_retry(RetryPolicy::NONE)
        .with_timeout(Duration::from_secs(5))
}

async fn companies(config: KbhConfig) -> Result<usize, KbhError> {
    KbhClient::new(config)?.companies().await.map(|c| c.len())
}

fn fingerprint(der: &[u8]) -> String {
    pinned_tls::format_fingerprint(&pinned_tls::sha256(der))
}

#[tokio::test]
async fn ca_file_with_the_exact_ca_true_self_signed_certificate_is_accepted() {
    let (s, _) = server(self_signed(true)).await;
    assert_eq!(companies(config("127.0.0.1", s.port).with_ca_pem(s.pem.as_bytes())).await.unwrap(), 1);
    assert_eq!(companies(config("localhost", s.port).with_ca_pem(s.pem.as_bytes())).await.unwrap(), 1);
}

#[tokio::test]
async fn ca_file_with_a_ca_false_self_signed_certificate_is_accepted() {
    let (s, _) = server(self_signed(false)).await;
    assert_eq!(companies(config("127.0.0.1", s.port).with_ca_pem(s.pem.as_bytes())).await.unwrap(), 1);
}

#[tokio::test]
async fn ca_file_that_is_a_real_ca_still_verifies_the_chain() {
    let (s, ca) = server(Cert::IssuedBy).await;
    let ca = ca.unwrap();
    assert_eq!(companies(config("127.0.0.1", s.port).with_ca_pem(ca.as_bytes())).await.unwrap(), 1);
}

#[tokio::test]
async fn cert_sha256_pins_the_server_certificate() {
    let (s, _) = server(self_signed(true)).await;
    let fp = fingerprint(&s.der);
    for spelling in [fp.clone(), fp.to_lowercase().replace(':', ""), format!("sha256:{fp}")] {
        assert_eq!(companies(config("127.0.0.1", s.port).with_cert_sha256(spelling)).await.unwrap(), 1);
    }
    // another fingerprint: refused, classified, not retried as if transient
    let other = fingerprint(b"some other certificate");
    let err = companies(config("127.0.0.1", s.port).with_cert_sha256(other)).await.unwrap_err();
    assert!(matches!(&err, KbhError::Tls(m) if m.contains(pinned_tls::UNPINNED)), "{err:?}");
    assert!(err.to_string().contains(&fp), "names the certificate it saw: {err}");
    assert_eq!(err.kind(), PortErrorKind::Other);
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn an_unpinned_certificate_is_refused() {
    let (s, _) = server(self_signed(true)).await;
    let (other, _) = server(self_signed(true)).await;
    let err = companies(config("127.0.0.1", s.port).with_ca_pem(other.pem.as_bytes())).await.unwrap_err();
    assert!(matches!(err, KbhError::Tls(_)), "{err:?}");
    // without any TLS option, a self-signed certificate is refused (system roots only)
    let err = companies(config("127.0.0.1", s.port)).await.unwrap_err();
    assert!(matches!(err, KbhError::Tls(_)), "{err:?}");
}

#[tokio::test]
async fn host_names_are_checked_unless_turned_off() {
    // the certificate names only `hub.example`; we connect to 127.0.0.1
    let (s, _) = server(Cert::SelfSigned { ca: true, names: vec!["hub.example"] }).await;
    let err = companies(config("127.0.0.1", s.port).with_ca_pem(s.pem.as_bytes())).await.unwrap_err();
    assert!(matches!(err, KbhError::Tls(_)), "{err:?}");
    let err = companies(config("127.0.0.1", s.port).with_cert_sha256(fingerprint(&s.der))).await.unwrap_err();
    assert!(matches!(err, KbhError::Tls(_)), "{err:?}");

    let relaxed = config("127.0.0.1", s.port).with_ca_pem(s.pem.as_bytes()).with_accept_invalid_hostnames(true);
    assert_eq!(companies(relaxed).await.unwrap(), 1);
    let relaxed = config("127.0.0.1", s.port).with_cert_sha256(fingerprint(&s.der)).with_accept_invalid_hostnames(true);
    assert_eq!(companies(relaxed).await.unwrap(), 1);
    // turning host names off pins nothing: an unknown self-signed certificate is still refused
    let (other, _) = server(Cert::SelfSigned { ca: true, names: vec!["hub.example"] }).await;
    let err = companies(config("127.0.0.1", other.port).with_accept_invalid_hostnames(true)).await.unwrap_err();
    assert!(matches!(err, KbhError::Tls(_)), "{err:?}");
}

#[tokio::test]
async fn bad_tls_options_are_config_errors() {
    for bad in ["AB:CD", "zz".repeat(32).as_str(), ""] {
        let err = KbhClient::new(config("127.0.0.1", 9).with_cert_sha256(bad)).unwrap_err();
        assert!(matches!(&err, KbhError::Config(m) if m.contains("cert_sha256")), "{bad}: {err:?}");
    }
    let err = KbhClient::new(config("127.0.0.1", 9).with_ca_pem(b"no pem here".to_vec())).unwrap_err();
    assert!(matches!(&err, KbhError::Config(m) if m.contains("ca")), "{err:?}");
    // the options show in Debug (no secret in them)
    let c = config("127.0.0.1", 9).with_cert_sha256("AB".repeat(32)).with_accept_invalid_hostnames(true);
    let text = format!("{c:?}");
    assert!(text.contains("accept_invalid_hostnames: true"), "{text}");
}
