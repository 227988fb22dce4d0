//! The sections of the file, one struct each, with their defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use ticketing_core::edit::{GeneralPatch, RulePatch};
use ticketing_core::rules::{RowId, RuleSet};
use ticketing_core::secret::Secret;
pub use ticketing_engine::settings::{HaConfig, MappingEntry, PollingConfig};

const fn d60() -> u64 {
    60
}
const fn d300() -> u64 {
    300
}
const fn d30u64() -> u64 {
    30
}
const fn d500() -> usize {
    500
}

/// Where a secret comes from. Exactly one of the fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// An environment variable's name.
    #[serde(default)]
    pub env: Option<String>,
    /// A file whose content (trimmed) is the secret.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The secret itself (demos and tests; prefer `env` or `file`).
    #[serde(default)]
    pub value: Option<Secret>,
}

impl SecretRef {
    /// An inline secret.
    pub fn inline(value: impl Into<String>) -> Self {
        Self { value: Some(Secret::new(value)), ..Self::default() }
    }

    /// Reads the secret. The error names the variable or file, never the value.
    pub fn resolve(&self) -> Result<Secret, String> {
        match (&self.env, &self.file, &self.value) {
            (Some(var), None, None) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                _ => Err(format!("environment variable {var} is not set")),
            },
            (None, Some(path), None) => std::fs::read_to_string(path)
                .map(|s| Secret::new(s.trim()))
                .map_err(|e| format!("cannot read secret file {}: {e}", path.display())),
            (None, None, Some(v)) => Ok(v.clone()),
            _ => Err("give exactly one of env, file or value".to_owned()),
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite file (the embedded default; not used when `url` is set).
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// A PostgreSQL database instead of the SQLite file, `postgres://user@host:port/database`,
    /// which several daemons can share (the leader lease decides which one works). No password
    /// in it: that is `password`.
    #[serde(default)]
    pub url: Option<String>,
    /// The PostgreSQL password, when the server asks for one.
    #[serde(default)]
    pub password: Option<SecretRef>,
}

pub(super) fn default_store_path() -> PathBuf {
    PathBuf::from("msp-ticketd.sqlite")
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { path: default_store_path(), url: None, password: None }
    }
}

/// `[admin]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Listen address of the admin API and web UI (loopback by default).
    #[serde(default = "default_admin_listen", deserialize_with = "listen_addr")]
    pub listen: SocketAddr,
    /// Bearer token of the admin API (and the UI's login), acting as an `admin` user. Without one
    /// the admin listener starts only when the store has users.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// Whether `/metrics` needs the token (the default). `false` lets a scraper on the same
    /// machine (a loopback peer address) read it without one; any other peer still needs it.
    #[serde(default = "yes")]
    pub metrics_auth: bool,
    /// A UI session unused this long ends (minutes; issue 28).
    #[serde(default = "d30u64")]
    pub session_idle_minutes: u64,
    /// The admin listener's certificate chain (PEM), re-read on `SIGHUP`; with `tls_key`.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM), re-read on `SIGHUP`; with `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Plain HTTP on a non-loopback `listen` (behind a TLS-terminating proxy): refused at start
    /// unless this is true.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// Proxies whose `X-Forwarded-For` names the client (addresses); from any other peer the
    /// header is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Failed logins of one user that lock it (5) ...
    #[serde(default = "d5u32")]
    pub login_max_failures: u32,
    /// ... within this many seconds (300) ...
    #[serde(default = "d300")]
    pub login_failure_window_secs: u64,
    /// ... for this many seconds (300).
    #[serde(default = "d300")]
    pub login_lockout_secs: u64,
    /// Requests per minute from one client address, after its burst (600).
    #[serde(default = "d600")]
    pub client_requests_per_minute: u32,
    /// Requests one client address may make at once (60).
    #[serde(default = "d60u32")]
    pub client_burst: u32,
    /// Requests per minute from all clients together, after the burst (6000).
    #[serde(default = "d6000")]
    pub global_requests_per_minute: u32,
    /// Requests all clients together may make at once (600).
    #[serde(default = "d600")]
    pub global_burst: u32,
}

const fn d5u32() -> u32 {
    5
}
const fn d60u32() -> u32 {
    60
}
const fn d600() -> u32 {
    600
}
const fn d6000() -> u32 {
    6000
}

const fn yes() -> bool {
    true
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8787))
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
            token: None,
            metrics_auth: true,
            session_idle_minutes: d30u64(),
            tls_cert: None,
            tls_key: None,
            allow_plain_http: false,
            trusted_proxies: Vec::new(),
            login_max_failures: d5u32(),
            login_failure_window_secs: d300(),
            login_lockout_secs: d300(),
            client_requests_per_minute: d600(),
            client_burst: d60u32(),
            global_requests_per_minute: d6000(),
            global_burst: d600(),
        }
    }
}

/// `[logging]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `human` or `json`.
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A tracing filter, e.g. `info` or `daemon=debug,info`.
    #[serde(default = "default_log_filter")]
    pub filter: String,
}

fn default_log_format() -> String {
    "human".to_owned()
}

fn default_log_filter() -> String {
    "info".to_owned()
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self { format: default_log_format(), filter: default_log_filter() }
    }
}

/// `[psa]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PsaConfig {
    /// A backend of [`crate::backends::BACKENDS`] (`autotask`, `connectwise`, `halopsa`). Without it, the
    /// backend whose section the file has (the old layout: `[autotask]` alone).
    #[serde(default)]
    pub kind: Option<String>,
}

/// `[connectwise]`: ConnectWise PSA (Manage).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectWiseConfig {
    /// The site the codebase is discovered from (`na.myconnectwise.net`); not needed with
    /// `base_url`.
    #[serde(default)]
    pub site: Option<String>,
    /// The login company id.
    pub company_id: String,
    /// The API member's public key.
    pub public_key: String,
    /// The API member's private key.
    pub private_key: SecretRef,
    /// The integration's `clientId` (from developer.connectwise.com).
    #[serde(default)]
    pub client_id: Option<String>,
    /// API root override (skips discovery; simulators, tests).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Seconds one request may take.
    #[serde(default = "d60")]
    pub timeout_secs: u64,
    /// Add a note saying why when closing a ticket.
    #[serde(default)]
    pub note_on_close: bool,
    /// Refuse a create whose board lacks a configured status or type (default: leave the field
    /// out, with a warning).
    #[serde(default)]
    pub strict_board_fields: bool,
}

/// `[halopsa]`: HaloPSA (OAuth2 client credentials of an API application).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaloPsaConfig {
    /// The instance's URL (`https://example.halopsa.com`): the API is `{base_url}/api`, the
    /// token endpoint `{base_url}/auth/token`.
    pub base_url: String,
    /// The authorisation server, when Halo shows another one than `{base_url}/auth`.
    #[serde(default)]
    pub auth_url: Option<String>,
    /// The tenant of a hosted instance (sent as `?tenant=` on the token request).
    #[serde(default)]
    pub tenant: Option<String>,
    /// The API application's client id.
    pub client_id: String,
    /// The API application's client secret.
    pub client_secret: SecretRef,
    /// Seconds one request may take.
    #[serde(default = "d60")]
    pub timeout_secs: u64,
    /// Requests the daemon allows itself per window (default 500; Halo publishes no limit).
    #[serde(default = "d500")]
    pub rate_limit_requests: usize,
    /// The window of `rate_limit_requests`, seconds (default 180).
    #[serde(default = "d180")]
    pub rate_limit_window_secs: u64,
    /// Add a private note saying why when closing a ticket.
    #[serde(default)]
    pub note_on_close: bool,
    /// The notes' outcome id (default: the outcome named by `note_outcome`).
    #[serde(default)]
    pub note_outcome_id: Option<i64>,
    /// The notes' outcome by name (default "Private Note").
    #[serde(default)]
    pub note_outcome: Option<String>,
    /// The ticket field the due time is written to (default `fixbydate`; `deadlinedate`,
    /// `targetdate`).
    #[serde(default)]
    pub due_field: Option<String>,
    /// A ticket custom field that also carries the idempotency key (`CFmspTicketingKey`).
    #[serde(default)]
    pub key_custom_field: Option<String>,
    /// Status ids that count as closed besides the rules' closed status (default `[9]`).
    #[serde(default)]
    pub closed_status_ids: Option<Vec<i64>>,
    /// Offer only this SLA's priorities.
    #[serde(default)]
    pub sla_id: Option<i64>,
}

const fn d180() -> u64 {
    180
}

/// `[autotask]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutotaskConfig {
    /// Explicit base URL (simulators, tests); without it the zone is discovered.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Where the zone is discovered (`zoneInformation`), when `base_url` is not given. Default:
    /// Autotask's own `https://webservices.autotask.net/atservicesrest`.
    #[serde(default)]
    pub discovery_url: Option<String>,
    /// API user name.
    pub username: String,
    /// API user secret.
    pub secret: SecretRef,
    /// API integration code.
    pub integration_code: SecretRef,
    /// Resource to impersonate on writes.
    #[serde(default)]
    pub impersonation_resource_id: Option<i64>,
    /// Requests per hour the process may spend (default 10,000).
    #[serde(default)]
    pub hourly_budget: Option<u64>,
    /// Concurrent requests per endpoint (default 2, at most 3).
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    /// Add a note saying why when closing a ticket (one more call per close).
    #[serde(default)]
    pub note_on_close: bool,
    /// Read each new ticket's number (`T20261125.0001`) for logs and notices: one more call per
    /// ticket; without it they show the ticket id.
    #[serde(default)]
    pub fetch_ticket_number: bool,
    /// Seconds one Autotask request may take before it counts as failed (a create that timed
    /// out is looked up by its idempotency key before it is tried again).
    #[serde(default = "d60")]
    pub timeout_secs: u64,
}

/// `[[security_center]]`: one Administration Server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityCenterConfig {
    /// Label used in tenant ids (`ksc:<name>/vs:<id>`).
    pub name: String,
    /// Base URL, e.g. `https://ksc.example:13299`.
    pub url: String,
    /// Account.
    pub user: String,
    /// Password.
    pub password: SecretRef,
    /// PEM file of the server's own certificate (pinned: accepted as the server's even when
    /// self-signed and marked CA:TRUE, as `klserver.cer` is) or of a CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Pins the server certificate by its SHA-256 fingerprint (hex, colons optional).
    #[serde(default)]
    pub cert_sha256: Option<String>,
    /// Accept a pinned certificate whose names do not match the host (logged as a warning).
    #[serde(default)]
    pub accept_invalid_hostnames: bool,
    /// Turn TLS verification off (logged as a warning at start; prefer pinning).
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// Treat the main server as a tenant too.
    #[serde(default)]
    pub include_main_server: bool,
    /// Seconds one request may take.
    #[serde(default = "d30u64")]
    pub timeout_secs: u64,
    /// Seconds a group's Critical/Warning masks are reused across status snapshots: the
    /// bound on how late a change of a group's levels is seen (0: read in every snapshot).
    #[serde(default = "d300")]
    pub group_masks_ttl_secs: u64,
    /// Poll events through a `ConEvents` subscription (an idle poll is one call); the
    /// `event_db_id` scan stays the source of every event. Off by default.
    #[serde(default)]
    pub events_subscription: bool,
    /// Which hosts a status snapshot reads: `problems` (those not OK; the default, a pass
    /// costs what the problems cost) or `all`.
    #[serde(default)]
    pub host_search: HostSearchMode,
}

/// `[[security_center]] host_search`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostSearchMode {
    /// Only hosts that are not OK (and, for a few snapshots, those that just turned OK).
    #[default]
    Problems,
    /// Every host in every snapshot.
    All,
}

/// `[business_hub]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHubConfig {
    /// Base URL.
    pub url: String,
    /// Static API token.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// Login e-mail (instead of a token).
    #[serde(default)]
    pub email: Option<String>,
    /// Login password.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// PEM file of a trusted CA, or of the server's own (pinned) certificate, also a
    /// self-signed one marked CA:TRUE.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Pins the server certificate by its SHA-256 fingerprint (hex, colons optional).
    #[serde(default)]
    pub cert_sha256: Option<String>,
    /// Accept a pinned certificate whose names do not match the host (logged as a warning).
    #[serde(default)]
    pub accept_invalid_hostnames: bool,
    /// Seconds one request may take.
    #[serde(default = "d30u64")]
    pub timeout_secs: u64,
}

/// `[rules]`: the rule set the store starts from when it has none (after that, rules are edited
/// with `msp-ticketd rules ...`, the admin API or the web UI, and live in the store).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Changes to the default general settings.
    #[serde(default)]
    pub general: GeneralPatch,
    /// Changes to default rows, by row id (`security_center/event/critical`).
    #[serde(default)]
    pub rows: BTreeMap<RowId, RulePatch>,
    /// Maintenance windows (`[[rules.maintenance]]`): no ticket is created during one.
    #[serde(default)]
    pub maintenance: Vec<ticketing_core::maintenance::MaintenanceWindow>,
    /// The products whose open status tickets follow their computer from Warning to Critical
    /// (`priority_follows_severity = ["security_center"]`).
    #[serde(default)]
    pub priority_follows_severity: std::collections::BTreeSet<ticketing_core::model::Product>,
}

impl RulesConfig {
    /// The rule set these changes make from the guide's defaults.
    pub fn to_rule_set(&self) -> RuleSet {
        let mut rules = RuleSet::default();
        self.general.apply(&mut rules.general);
        for (row, patch) in &self.rows {
            if let Some(rule) = rules.rows.get_mut(row) {
                patch.apply(rule);
            }
        }
        rules.maintenance.clone_from(&self.maintenance);
        rules.priority_follows_severity.clone_from(&self.priority_follows_severity);
        rules
    }
}

/// `admin.listen`: an address and port, with messages that say which part is wrong.
fn listen_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    use serde::de::Error as _;
    let s = String::deserialize(d)?;
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = s.rsplit_once(':').map(|(_, p)| p);
    match port.map(str::parse::<u64>) {
        Some(Ok(p)) if p > 65535 => Err(D::Error::custom("has a port over 65535 (expected a port from 0 to 65535)")),
        _ => Err(D::Error::custom("is not an address and port (expected e.g. \"127.0.0.1:8787\" or \"[::1]:8787\")")),
    }
}
