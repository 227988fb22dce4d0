//! Real TLS handshakes against a self-signed server certificate, CA:TRUE and CA:FALSE.

use std::sync::Arc;

use pinned_tls::{Options, Pin, client_config, format_fingerprint, parse_fingerprint, pins_from_pem, sha256};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

struct Server {
    pem: String,
    der: CertificateDer<'static>,
    port: u16,
}

/// A TLS echo-once server with a fresh self-signed certificate for `localhost`/`127.0.0.1`.
async fn server(ca: bool) -> Server {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let cert = params.self_signed(&key).unwrap();
    let der = cert.der().clone();
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
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 4];
                    if tls.read_exact(&mut buf).await.is_ok() {
                        let _ = tls.write_all(&buf).await;
                        let _ = tls.shutdown().await;
                    }
                }
            });
        }
    });
    Server { pem: cert.pem(), der, port }
}

async fn connect(server: &Server, name: &str, options: &Options) -> Result<(), String> {
    let config = client_config(options).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
    tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4];
    tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    assert_eq!(&buf, b"ping");
    Ok(())
}

fn opts(pins: Vec<Pin>) -> Options {
    Options { pins, ..Options::default() }
}

#[tokio::test]
async fn a_ca_true_self_signed_certificate_is_accepted_when_pinned_by_file_or_fingerprint() {
    let s = server(true).await;
    connect(&s, "localhost", &opts(pins_from_pem(s.pem.as_bytes()).unwrap())).await.unwrap();
    let fp = format_fingerprint(&sha256(&s.der));
    connect(&s, "localhost", &opts(vec![Pin::Sha256(parse_fingerprint(&fp.to_lowercase()).unwrap())])).await.unwrap();
    connect(&s, "127.0.0.1", &opts(vec![Pin::Sha256(sha256(&s.der))])).await.unwrap();
}

#[tokio::test]
async fn plain_webpki_verification_refuses_the_same_ca_true_certificate() {
    // The reason this crate exists: the cert as a root, then as the server's own, fails.
    let s = server(true).await;
    let options = Options { fallback_roots: Some(vec![s.der.clone()]), ..Options::default() };
    let err = connect(&s, "localhost", &options).await.unwrap_err();
    assert!(err.contains("CaUsedAsEndEntity"), "{err}");
}

#[tokio::test]
async fn a_ca_false_certificate_is_accepted_when_pinned() {
    let s = server(false).await;
    connect(&s, "localhost", &opts(pins_from_pem(s.pem.as_bytes()).unwrap())).await.unwrap();
    // As a fallback root it is refused by webpki (a leaf is no trust anchor); pinned it works.
    let both = Options {
        pins: pins_from_pem(s.pem.as_bytes()).unwrap(),
        fallback_roots: Some(vec![s.der.clone()]),
        ..Options::default()
    };
    connect(&s, "localhost", &both).await.unwrap();
}

#[tokio::test]
async fn a_wrong_pin_is_refused_with_the_servers_fingerprint_in_the_error() {
    let s = server(true).await;
    let err = connect(&s, "localhost", &opts(vec![Pin::Sha256([7; 32])])).await.unwrap_err();
    assert!(err.contains(pinned_tls::UNPINNED), "{err}");
    assert!(err.contains(&format_fingerprint(&sha256(&s.der))), "{err}");
}

#[tokio::test]
async fn a_host_name_mismatch_is_refused_unless_accepted() {
    let s = server(true).await;
    let pins = pins_from_pem(s.pem.as_bytes()).unwrap();
    let err = connect(&s, "ksc.example.net", &opts(pins.clone())).await.unwrap_err();
    assert!(err.contains("not valid for name"), "{err}");
    let lax = Options { pins, accept_invalid_hostnames: true, ..Options::default() };
    connect(&s, "ksc.example.net", &lax).await.unwrap();
}
