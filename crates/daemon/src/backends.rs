//! The PSA backends the daemon can run against: one registry from a `[psa] kind` to the
//! constructor of its [`Backend`]. Adding a backend is one crate implementing `TicketSink` and
//! one line in [`BACKENDS`] (plus its config section type in `config`); nothing else in the
//! daemon knows which PSA it talks to.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use ticketing_core::ports::TicketSink;

use crate::config::Config;
use crate::engine::BudgetProbe;

impl Backend {
    /// The PSA's name as users say it.
    pub fn name(&self) -> &'static str {
        match self.section {
            "connectwise" => "ConnectWise",
            "halopsa" => "HaloPSA",
            _ => "Autotask",
        }
    }
}

pub use ticketing_engine::labels::{Labels, guide_label};

/// What the daemon needs of a PSA backend.
pub struct Backend {
    /// Where tickets go.
    pub sink: Arc<dyn TicketSink>,
    /// The request budget, for metrics (backends without one: `None`).
    pub budget: Option<BudgetProbe>,
    /// How the PSA names each rule field (the UI and `check` say "Board" where Autotask says
    /// "Queue").
    pub labels: Labels,
    /// The configuration section problems with this PSA are reported under.
    pub section: &'static str,
    /// How long one request may take.
    pub timeout: Duration,
}

/// Builds a backend from the whole configuration (it reads its own section).
pub type Constructor = fn(&Config) -> Result<Backend>;

/// Every backend, by the `[psa] kind` that selects it.
pub const BACKENDS: &[(&str, Constructor)] =
    &[("autotask", autotask), ("connectwise", connectwise), ("halopsa", halopsa)];

/// The backend `config` selects.
pub fn build(config: &Config) -> Result<Backend> {
    let kind = config.psa_kind();
    match BACKENDS.iter().find(|(k, _)| *k == kind) {
        Some((_, make)) => make(config),
        None => bail!("psa.kind {kind:?} is not a known PSA backend"),
    }
}

fn autotask(config: &Config) -> Result<Backend> {
    use autotask_client::{AutotaskClient, AutotaskSink, Credentials, SinkOptions};
    let at = config.autotask.as_ref().context("autotask: the [autotask] section is missing")?;
    let secret = at.secret.resolve().map_err(anyhow::Error::msg).context("autotask.secret")?;
    let code = at.integration_code.resolve().map_err(anyhow::Error::msg).context("autotask.integration_code")?;
    let mut creds = Credentials::new(at.username.clone(), secret, code);
    if let Some(id) = at.impersonation_resource_id {
        creds = creds.impersonate(id);
    }
    let mut builder = AutotaskClient::builder(creds);
    if let Some(url) = &at.base_url {
        builder = builder.base_url(url.clone());
    }
    if let Some(url) = &at.discovery_url {
        builder = builder.discovery_url(url);
    }
    builder = builder.timeout(Duration::from_secs(at.timeout_secs.max(1)));
    if let Some(n) = at.max_concurrency {
        builder = builder.max_concurrency_per_entity(n);
    }
    if let Some(b) = at.hourly_budget {
        builder = builder.hourly_budget(b);
    }
    // The engine re-reads the catalog every `polling.catalog_secs`; the client's own cache must
    // not outlive that, or a picklist change would only show after the client's default TTL.
    builder = builder.catalog_ttl(Duration::from_secs(config.polling.catalog_secs.saturating_sub(1)));
    let client = builder.build().context("building the Autotask client")?;
    let options = SinkOptions {
        note_on_close: at.note_on_close,
        fetch_ticket_number: at.fetch_ticket_number,
        ..SinkOptions::default()
    };
    let sink: Arc<dyn TicketSink> = Arc::new(AutotaskSink::new(client.clone(), options));
    let budget: BudgetProbe = Arc::new(move || {
        let u = client.budget_usage();
        crate::metrics::Budget {
            used: u.used,
            configured: u.configured_limit,
            server: u.server_limit.unwrap_or(0),
            effective: u.limit,
            waiting: 0,
        }
    });
    Ok(Backend {
        sink,
        budget: Some(budget),
        labels: guide_label,
        section: "autotask",
        timeout: Duration::from_secs(at.timeout_secs.max(1)),
    })
}

fn connectwise(config: &Config) -> Result<Backend> {
    let cw = config.connectwise.as_ref().context("connectwise: the [connectwise] section is missing")?;
    let key = cw.private_key.resolve().map_err(anyhow::Error::msg).context("connectwise.private_key")?;
    let settings: connectwise_client::ConnectWiseSettings = serde_json::from_value(serde_json::json!({
        "site": cw.site, "company_id": cw.company_id, "public_key": cw.public_key, "private_key": key.expose(),
        "client_id": cw.client_id, "base_url": cw.base_url, "timeout_secs": cw.timeout_secs,
        "note_on_close": cw.note_on_close, "strict_board_fields": cw.strict_board_fields,
    }))
    .context("connectwise settings")?;
    let sink = connectwise_client::connect(&settings).map_err(|e| anyhow::anyhow!("connectwise: {e}"))?;
    Ok(Backend {
        sink,
        budget: None,
        labels: connectwise_client::field_label,
        section: "connectwise",
        timeout: Duration::from_secs(cw.timeout_secs.max(1)),
    })
}

fn halopsa(config: &Config) -> Result<Backend> {
    let h = config.halopsa.as_ref().context("halopsa: the [halopsa] section is missing")?;
    let secret = h.client_secret.resolve().map_err(anyhow::Error::msg).context("halopsa.client_secret")?;
    let mut settings = halopsa_client::HaloSettings::new(h.base_url.clone(), h.client_id.clone(), secret);
    settings.auth_url.clone_from(&h.auth_url);
    settings.tenant.clone_from(&h.tenant);
    settings.timeout_secs = Some(h.timeout_secs.max(1));
    settings.rate_limit_requests = Some(u32::try_from(h.rate_limit_requests).unwrap_or(u32::MAX));
    settings.rate_limit_window_secs = Some(h.rate_limit_window_secs);
    // the engine re-reads the catalog every `polling.catalog_secs`: the client's cache must not
    // outlive that
    settings.catalog_ttl_secs = Some(config.polling.catalog_secs.saturating_sub(1));
    settings.note_on_close = Some(h.note_on_close);
    settings.note_outcome_id = h.note_outcome_id;
    settings.note_outcome.clone_from(&h.note_outcome);
    settings.due_field.clone_from(&h.due_field);
    settings.key_custom_field.clone_from(&h.key_custom_field);
    settings.closed_status_ids.clone_from(&h.closed_status_ids);
    settings.sla_id = h.sla_id;
    let sink = halopsa_client::connect(&settings).map_err(|e| anyhow::anyhow!("halopsa: {}", e.message))?;
    Ok(Backend {
        sink,
        budget: None,
        labels: halopsa_client::field_label,
        section: "halopsa",
        timeout: Duration::from_secs(h.timeout_secs.max(1)),
    })
}
