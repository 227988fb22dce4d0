//! What the daemon wires: the `[halopsa]` settings, [`connect`], and Halo's names for the rule
//! fields.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use ticketing_core::catalog::Field;
use ticketing_core::ports::{PortError, TicketSink};
use ticketing_core::retry::RetryPolicy;
use ticketing_core::secret::Secret;

use crate::client::HaloClient;
use crate::config::{Credentials, DEFAULT_RATE_LIMIT, RateLimit};
use crate::error::Error;
use crate::sink::{DEFAULT_CLOSED_STATUS, DEFAULT_DUE_FIELD, HaloSink, SinkOptions};

/// The HaloPSA settings, serde-friendly. `Debug` never shows the client secret.
///
/// ```
/// let s: halopsa_client::HaloSettings = serde_json::from_value(serde_json::json!({
///     "base_url": "https://example.halopsa.com", "tenant": "example",
///     "client_id": "ID", "client_secret": "SECRET"
/// })).unwrap();
/// assert!(!format!("{s:?}").contains("SECRET"));
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaloSettings {
    /// The instance's URL (`https://example.halopsa.com`).
    pub base_url: String,
    /// The authorisation server, when not `{base_url}/auth`.
    #[serde(default)]
    pub auth_url: Option<String>,
    /// The resource server, when not `{base_url}/api`.
    #[serde(default)]
    pub api_url: Option<String>,
    /// The tenant of a hosted instance (`?tenant=`).
    #[serde(default)]
    pub tenant: Option<String>,
    /// The API application's client id.
    pub client_id: String,
    /// The API application's client secret.
    pub client_secret: Secret,
    /// The scope (default `all`).
    #[serde(default)]
    pub scope: Option<String>,
    /// Whole-request timeout in seconds (default 60).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Concurrent requests (default 4).
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    /// Requests per window (default 500; 0 turns the client-side budget off).
    #[serde(default)]
    pub rate_limit_requests: Option<u32>,
    /// The budget's window in seconds (default 180).
    #[serde(default)]
    pub rate_limit_window_secs: Option<u64>,
    /// Rows per page (default 100).
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Catalog cache in seconds (default 900).
    #[serde(default)]
    pub catalog_ttl_secs: Option<u64>,
    /// Post close notes (default true).
    #[serde(default)]
    pub note_on_close: Option<bool>,
    /// The notes' `outcome_id`.
    #[serde(default)]
    pub note_outcome_id: Option<i64>,
    /// The notes' `outcome` by name (default "Private Note").
    #[serde(default)]
    pub note_outcome: Option<String>,
    /// The ticket field the due time goes to (default `fixbydate`).
    #[serde(default)]
    pub due_field: Option<String>,
    /// A ticket custom field that also carries the idempotency key.
    #[serde(default)]
    pub key_custom_field: Option<String>,
    /// Statuses that count as closed (default `[9]`).
    #[serde(default)]
    pub closed_status_ids: Option<Vec<i64>>,
    /// Offer only this SLA's priorities.
    #[serde(default)]
    pub sla_id: Option<i64>,
}

fn field_name(what: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::InvalidRequest(format!(
            "{what} {name:?} is not a Halo field name (expected letters, digits and _)"
        )));
    }
    Ok(())
}

impl HaloSettings {
    /// Settings with these credentials and every default.
    pub fn new(base_url: impl Into<String>, client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        Self {
            base_url: base_url.into(),
            auth_url: None,
            api_url: None,
            tenant: None,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: None,
            timeout_secs: None,
            max_concurrency: None,
            rate_limit_requests: None,
            rate_limit_window_secs: None,
            page_size: None,
            catalog_ttl_secs: None,
            note_on_close: None,
            note_outcome_id: None,
            note_outcome: None,
            due_field: None,
            key_custom_field: None,
            closed_status_ids: None,
            sla_id: None,
        }
    }

    /// The client-side budget these settings describe.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        let requests = self.rate_limit_requests.unwrap_or(DEFAULT_RATE_LIMIT.requests);
        let window = self.rate_limit_window_secs.map_or(DEFAULT_RATE_LIMIT.window, Duration::from_secs);
        (requests > 0).then_some(RateLimit { requests, window: window.max(Duration::from_secs(1)) })
    }

    /// The client these settings describe (with `retry`, or the default policy).
    pub fn client_with(&self, retry: Option<RetryPolicy>) -> Result<HaloClient, Error> {
        let mut creds = Credentials::new(&self.client_id, self.client_secret.clone());
        if let Some(t) = &self.tenant {
            creds = creds.tenant(t);
        }
        if let Some(s) = &self.scope {
            creds = creds.scope(s);
        }
        let mut b = HaloClient::builder(creds).base_url(&self.base_url).rate_limit(self.rate_limit());
        if let Some(u) = &self.auth_url {
            b = b.auth_url(u);
        }
        if let Some(u) = &self.api_url {
            b = b.api_url(u);
        }
        if let Some(t) = self.timeout_secs {
            b = b.timeout(Duration::from_secs(t.max(1)));
        }
        if let Some(n) = self.max_concurrency {
            b = b.max_concurrency(n);
        }
        if let Some(n) = self.page_size {
            b = b.page_size(n);
        }
        if let Some(t) = self.catalog_ttl_secs {
            b = b.catalog_ttl(Duration::from_secs(t));
        }
        if let Some(r) = retry {
            b = b.retry(r);
        }
        b.build()
    }

    /// The sink options these settings describe. Errors name the setting.
    pub fn sink_options(&self) -> Result<SinkOptions, Error> {
        let due_field = self.due_field.clone().unwrap_or_else(|| DEFAULT_DUE_FIELD.to_owned());
        field_name("due_field", &due_field)?;
        if let Some(f) = &self.key_custom_field {
            field_name("key_custom_field", f)?;
        }
        if self.note_outcome.as_deref().is_some_and(|o| o.trim().is_empty()) {
            return Err(Error::InvalidRequest("note_outcome is empty (expected an outcome's name)".into()));
        }
        let defaults = SinkOptions::default();
        Ok(SinkOptions {
            note_on_close: self.note_on_close.unwrap_or(true),
            note_outcome_id: self.note_outcome_id,
            note_outcome: self.note_outcome.clone().unwrap_or(defaults.note_outcome),
            due_field,
            key_custom_field: self.key_custom_field.clone(),
            closed_status_ids: self.closed_status_ids.clone().unwrap_or_else(|| vec![DEFAULT_CLOSED_STATUS]),
            sla_id: self.sla_id,
            ..defaults
        })
    }
}

/// Builds the sink the daemon holds (`Arc<dyn TicketSink>`). Fails only on configuration
/// mistakes (`Invalid`, naming the setting); nothing is sent until the first call.
pub fn connect(settings: &HaloSettings) -> Result<Arc<dyn TicketSink>, PortError> {
    let client = settings.client_with(None).map_err(|e| PortError::from(&e))?;
    let options = settings.sink_options().map_err(|e| PortError::from(&e))?;
    Ok(Arc::new(HaloSink::new(client, options)))
}

/// How Halo names the core's rule fields (the UI says "Team" where Autotask says "Queue").
pub fn field_label(field: Field) -> &'static str {
    match field {
        Field::TicketSource => "Source (not sent to Halo)",
        Field::NewStatus => "New status",
        Field::ClosedStatus => "Closed status",
        Field::Queue => "Team",
        Field::Priority => "Priority",
        Field::WorkType => "Work type (not sent to Halo)",
        Field::IssueType => "Ticket type",
        Field::SubIssueType => "Sub-type (not sent to Halo)",
        Field::Lifetime => "Lifetime, days",
        Field::DueHours => "Fix by, hours",
        Field::CreateDelay => "Creation delay, minutes",
        Field::ReopenHours => "Reopen window, hours",
        Field::RecurrenceHours => "Recurrence window, hours",
        Field::TitleTemplate => "Title template",
        Field::DescriptionTemplate => "Description template",
        Field::StormThreshold => "Storm after, tickets",
        Field::StormWindow => "Storm window, minutes",
        Field::StormNote => "Storm notes every, minutes",
        Field::OutbreakAsStorm => "Outbreak opens a storm",
        Field::Maintenance => "Maintenance window",
        Field::PriorityFollowsSeverity => "Priority follows severity",
    }
}
