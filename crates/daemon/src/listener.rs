//! The admin listener (issue 28): plain HTTP or TLS (`admin.tls_cert`, `admin.tls_key`, PEM,
//! `axum-server` with rustls; the files are re-read on `SIGHUP`), behind the per-client and
//! global rate limits of [`crate::gate::limited`]. Plain HTTP is refused on a non-loopback
//! address unless `admin.allow_plain_http = true` (then a warning says the traffic is clear
//! text).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use tracing::{info, warn};

use crate::config::AdminConfig;
use crate::gate::{self, Limit};

/// The TLS certificate in use and where it is re-read from.
pub struct Tls {
    config: RustlsConfig,
    cert: PathBuf,
    key: PathBuf,
}

impl Tls {
    /// Re-reads the certificate and key (`SIGHUP`): new connections get the new certificate,
    /// open ones keep theirs. On error the one in use stays.
    pub async fn reload(&self) -> Result<()> {
        self.config.reload_from_pem_file(&self.cert, &self.key).await.with_context(|| {
            format!("re-reading admin.tls_cert {} and admin.tls_key {}", self.cert.display(), self.key.display())
        })
    }
}

/// The running admin listener.
pub struct Listening {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its certificate, when it serves TLS.
    pub tls: Option<Arc<Tls>>,
    /// The server task (ends after the shutdown signal, once requests finished).
    pub task: tokio::task::JoinHandle<()>,
}

/// Why plain HTTP on this address is refused, if it is.
pub fn plain_refusal(admin: &AdminConfig) -> Option<String> {
    (admin.tls_cert.is_none() && !admin.listen.ip().is_loopback() && !admin.allow_plain_http).then(|| {
        format!(
            "admin.listen {} is not a loopback address and the admin listener has no TLS: refusing to send \
             passwords, tokens and sessions in clear text (set admin.tls_cert and admin.tls_key, or \
             admin.allow_plain_http = true behind a TLS-terminating proxy)",
            admin.listen
        )
    })
}

/// Binds and serves `app` until `shutdown` resolves.
pub async fn serve(
    admin: &AdminConfig,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Listening> {
    if let Some(why) = plain_refusal(admin) {
        bail!(why);
    }
    let app = gate::limited(
        app,
        Limit { per_minute: admin.client_requests_per_minute, burst: admin.client_burst },
        Limit { per_minute: admin.global_requests_per_minute, burst: admin.global_burst },
        &admin.trusted_proxies,
    );
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let bound = std::net::TcpListener::bind(admin.listen)
        .with_context(|| format!("binding the admin listener {}", admin.listen))?;
    bound.set_nonblocking(true)?;
    let addr = bound.local_addr()?;
    match (&admin.tls_cert, &admin.tls_key) {
        (Some(cert), Some(key)) => {
            // The workspace's rustls has the ring provider only; installing it is idempotent.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = RustlsConfig::from_pem_file(cert, key).await.with_context(|| {
                format!("reading admin.tls_cert {} and admin.tls_key {}", cert.display(), key.display())
            })?;
            let tls = Arc::new(Tls { config: config.clone(), cert: cert.clone(), key: key.clone() });
            let handle = axum_server::Handle::<SocketAddr>::new();
            let server = axum_server::from_tcp_rustls(bound, config)?.handle(handle.clone());
            tokio::spawn(async move {
                shutdown.await;
                handle.graceful_shutdown(Some(Duration::from_secs(10)));
            });
            info!(%addr, "admin API listening (TLS)");
            let task = tokio::spawn(async move {
                if let Err(e) = server.serve(service).await {
                    warn!(error = %e, "admin listener stopped");
                }
            });
            Ok(Listening { addr, tls: Some(tls), task })
        }
        _ => {
            if !admin.listen.ip().is_loopback() {
                warn!(%addr, "admin listener on a non-loopback address without TLS (admin.allow_plain_http): passwords, tokens and sessions cross the network in clear text");
            }
            let listener = tokio::net::TcpListener::from_std(bound)?;
            info!(%addr, "admin API listening");
            let task = tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, service).with_graceful_shutdown(shutdown).await {
                    warn!(error = %e, "admin listener stopped");
                }
            });
            Ok(Listening { addr, tls: None, task })
        }
    }
}
