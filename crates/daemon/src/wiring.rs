//! Turns a [`Config`] into the adapters the engine drives: the PSA backend, one Security Center
//! source per `[[security_center]]`, and the Business Hub sources (Endpoint Security Cloud events
//! and statuses, Office 365 events and issues).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use kbh_adapter::{KbhAuth, KbhClient, KbhConfig, KbhEventSource, KbhStatusSource};
use ksc_adapter::{HostSearch, KscConfig, KscSource, TlsVerification};
use ticketing_core::ports::TicketSink;
use tracing::warn;

use crate::backends::Backend;
use crate::config::Config;
use crate::config::HostSearchMode;
use crate::engine::{BudgetProbe, NamedEventSource, NamedStatusSource};

/// The adapters of one configuration.
pub struct Wired {
    /// The PSA backend (sink, budget, field names).
    pub psa: Backend,
    /// The PSA sink.
    pub sink: Arc<dyn TicketSink>,
    /// Event sources.
    pub events: Vec<NamedEventSource>,
    /// Status sources.
    pub statuses: Vec<NamedStatusSource>,
    /// Security Center sources (logged out on shutdown).
    pub ksc: Vec<Arc<KscSource>>,
}

impl Wired {
    /// Reads the PSA request budget, for metrics (when the backend has one).
    pub fn budget_probe(&self) -> Option<BudgetProbe> {
        self.psa.budget.clone()
    }

    /// Ends every Security Center session.
    pub async fn shutdown(&self) {
        for k in &self.ksc {
            if let Err(e) = k.logout_all().await {
                warn!(error = %e, "Security Center logout failed");
            }
        }
    }
}

/// How long one poll of a source may take in all: a poll is several requests, each bounded by
/// the source's `timeout_secs`.
fn poll_bound(timeout_secs: u64) -> Duration {
    Duration::from_secs(timeout_secs.saturating_mul(4).max(1))
}

/// Builds every adapter of `config`.
pub fn wire(config: &Config) -> Result<Wired> {
    let psa = crate::backends::build(config)?;
    let sink = psa.sink.clone();

    let mut events = Vec::new();
    let mut statuses = Vec::new();
    let mut ksc = Vec::new();
    for k in &config.security_center {
        let password = k.password.resolve().map_err(anyhow::Error::msg).context("security_center.password")?;
        let mut kc = KscConfig::new(k.url.clone(), k.user.clone(), password);
        kc.server_label = k.name.clone();
        kc.include_main_server = k.include_main_server;
        kc.tls = match (&k.ca_file, k.accept_invalid_certs) {
            (_, true) => TlsVerification::Disabled,
            (Some(path), false) => TlsVerification::CaFile(path.clone()),
            (None, false) => TlsVerification::System,
        };
        if let Some(fp) = &k.cert_sha256 {
            kc = kc.with_cert_sha256(fp.clone());
        }
        if k.accept_invalid_hostnames {
            kc = kc.with_accept_invalid_hostnames(true);
        }
        kc.request_timeout = Duration::from_secs(k.timeout_secs);
        kc.group_masks_ttl = Duration::from_secs(k.group_masks_ttl_secs);
        kc.events_subscription = k.events_subscription;
        kc.host_search = match k.host_search {
            HostSearchMode::Problems => HostSearch::Problems,
            HostSearchMode::All => HostSearch::All,
        };
        let source = Arc::new(KscSource::new(kc).with_context(|| format!("security center {:?}", k.name))?);
        // A poll is a few requests (open an iterator, read pages, release it).
        let timeout = poll_bound(k.timeout_secs);
        events.push(NamedEventSource { name: format!("ksc:{}/events", k.name), source: source.clone(), timeout });
        statuses.push(NamedStatusSource { name: format!("ksc:{}/statuses", k.name), source: source.clone(), timeout });
        ksc.push(source);
    }
    if let Some(b) = &config.business_hub {
        let auth = match (&b.token, &b.email, &b.password) {
            (Some(t), _, _) => KbhAuth::Token(t.resolve().map_err(anyhow::Error::msg).context("business_hub.token")?),
            (None, Some(email), Some(p)) => KbhAuth::Login {
                email: email.clone(),
                password: p.resolve().map_err(anyhow::Error::msg).context("business_hub.password")?,
            },
            _ => anyhow::bail!("business_hub: give either token, or email and password"),
        };
        let mut kc = KbhConfig::new(&b.url, auth).context("business_hub.url")?;
        if let Some(ca) = &b.ca_file {
            kc = kc.with_ca_pem(std::fs::read(ca).with_context(|| format!("business_hub.ca_file {}", ca.display()))?);
        }
        if let Some(fp) = &b.cert_sha256 {
            kc = kc.with_cert_sha256(fp.clone());
        }
        if b.accept_invalid_hostnames {
            warn!(
                "business_hub.accept_invalid_hostnames is on: the server's certificate is not checked against its host name"
            );
            kc = kc.with_accept_invalid_hostnames(true);
        }
        let kc = kc.with_timeout(Duration::from_secs(b.timeout_secs));
        let client = KbhClient::new(kc).context("building the Business Hub client")?;
        let timeout = poll_bound(b.timeout_secs);
        events.push(NamedEventSource {
            name: "kbh/endpoint_cloud/events".into(),
            source: Arc::new(KbhEventSource::endpoint_cloud(client.clone())),
            timeout,
        });
        events.push(NamedEventSource {
            name: "kbh/office365/events".into(),
            source: Arc::new(KbhEventSource::office365(client.clone())),
            timeout,
        });
        statuses.push(NamedStatusSource {
            name: "kbh/endpoint_cloud/statuses".into(),
            source: Arc::new(KbhStatusSource::endpoint_cloud(client.clone())),
            timeout,
        });
        statuses.push(NamedStatusSource {
            name: "kbh/office365/issues".into(),
            source: Arc::new(KbhStatusSource::office365(client)),
            timeout,
        });
    }
    Ok(Wired { psa, sink, events, statuses, ksc })
}
