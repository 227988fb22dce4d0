//! The daemon's configuration: one TOML file (see `examples/msp-ticketd.toml` at the repository
//! root for a commented example).
//!
//! Unknown keys are errors that name the key's path (`autotask.secrte`). Secrets are never
//! written in the file's values that get logged: each is a [`SecretRef`] to an environment
//! variable or a file (or, for demos and tests, an inline value), read once into a
//! [`Secret`] that never prints.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use ticketing_core::edit::{GeneralPatch, RulePatch};
use ticketing_core::rules::{RowId, RuleSet};
use ticketing_core::secret::Secret;

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
    /// The SQLite file.
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
}

fn default_store_path() -> PathBuf {
    PathBuf::from("msp-ticketd.sqlite")
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { path: default_store_path() }
    }
}

/// `[admin]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Listen address of the admin API and web UI (loopback by default).
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
    /// Bearer token of the admin API (and the UI's login). Without one the admin listener does
    /// not start.
    #[serde(default)]
    pub token: Option<SecretRef>,
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8787))
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { listen: default_admin_listen(), token: None }
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

/// `[polling]`: how often each thing happens, in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollingConfig {
    /// Event polls per tenant.
    #[serde(default = "d60")]
    pub events_secs: u64,
    /// Status snapshots per tenant.
    #[serde(default = "d300")]
    pub statuses_secs: u64,
    /// PSA catalog, accounts and source tenant lists.
    #[serde(default = "d900")]
    pub catalog_secs: u64,
    /// Checking open tickets for technician closes (0 turns it off; each check costs a PSA
    /// call per open ticket).
    #[serde(default = "d1800")]
    pub ticket_sync_secs: u64,
    /// Days of event history kept for the preview.
    #[serde(default = "d30")]
    pub history_days: u32,
    /// Events asked for per poll.
    #[serde(default = "d500")]
    pub batch_size: usize,
    /// PSA calls in flight at once for ticket delivery.
    #[serde(default = "d2")]
    pub deliver_concurrency: usize,
}

const fn d2() -> usize {
    2
}
const fn d30() -> u32 {
    30
}
const fn d30u64() -> u64 {
    30
}
const fn d60() -> u64 {
    60
}
const fn d300() -> u64 {
    300
}
const fn d500() -> usize {
    500
}
const fn d900() -> u64 {
    900
}
const fn d1800() -> u64 {
    1800
}

impl Default for PollingConfig {
    fn default() -> Self {
        Self {
            events_secs: d60(),
            statuses_secs: d300(),
            catalog_secs: d900(),
            ticket_sync_secs: d1800(),
            history_days: d30(),
            batch_size: d500(),
            deliver_concurrency: d2(),
        }
    }
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

/// `[[mapping]]`: one tenant → one PSA account, by id or by name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingEntry {
    /// The tenant id (`ksc:main/vs:3`, `kbh:c-7f3a`).
    pub tenant: String,
    /// Autotask company id.
    #[serde(default)]
    pub account_id: Option<i64>,
    /// Autotask company name (resolved against the PSA's accounts).
    #[serde(default)]
    pub account_name: Option<String>,
}

impl MappingEntry {
    /// The PSA account this entry names, among `accounts` (by id, or by name ignoring case).
    pub fn account_in<'a>(
        &self,
        accounts: &'a [ticketing_core::ports::Account],
    ) -> Option<&'a ticketing_core::ports::Account> {
        match (self.account_id, &self.account_name) {
            (Some(id), _) => accounts.iter().find(|a| a.id.0 == id),
            (None, Some(name)) => accounts.iter().find(|a| a.name.eq_ignore_ascii_case(name)),
            (None, None) => None,
        }
    }
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
        rules
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[store]`
    #[serde(default)]
    pub store: StoreConfig,
    /// `[admin]`
    #[serde(default)]
    pub admin: AdminConfig,
    /// `[logging]`
    #[serde(default)]
    pub logging: LoggingConfig,
    /// `[polling]`
    #[serde(default)]
    pub polling: PollingConfig,
    /// `[autotask]`
    pub autotask: AutotaskConfig,
    /// `[[security_center]]`
    #[serde(default)]
    pub security_center: Vec<SecurityCenterConfig>,
    /// `[business_hub]`
    #[serde(default)]
    pub business_hub: Option<BusinessHubConfig>,
    /// `[[mapping]]`
    #[serde(default)]
    pub mapping: Vec<MappingEntry>,
    /// `[rules]`
    #[serde(default)]
    pub rules: RulesConfig,
}

/// One problem with the configuration: where (file and key) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The file.
    pub file: String,
    /// The key's path (`autotask.secret`).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.key, self.reason)
    }
}

/// Every problem found, all at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

impl Config {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigProblem { file: file.clone(), key: "(file)".into(), reason: e.to_string() }])
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and checks TOML text; `file` names it in problems.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigErrors> {
        let de = toml::Deserializer::new(text);
        let config: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let reason = inner.message().to_owned();
            let reason = match inner.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].lines().count().max(1);
                    format!("{reason} (line {line})")
                }
                None => reason,
            };
            ConfigErrors(vec![ConfigProblem { file: file.to_owned(), key, reason }])
        })?;
        let problems = config.problems(file);
        if problems.is_empty() { Ok(config) } else { Err(ConfigErrors(problems)) }
    }

    /// Semantic problems: unreadable secrets, ambiguous mappings, duplicate names.
    pub fn problems(&self, file: &str) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        let mut push = |key: String, reason: String| out.push(ConfigProblem { file: file.to_owned(), key, reason });
        for (key, s) in
            [("autotask.secret", &self.autotask.secret), ("autotask.integration_code", &self.autotask.integration_code)]
        {
            if let Err(e) = s.resolve() {
                push(key.into(), e);
            }
        }
        if self.autotask.username.trim().is_empty() {
            push("autotask.username".into(), "must not be empty".into());
        }
        if self.autotask.max_concurrency.is_some_and(|n| !(1..=3).contains(&n)) {
            push("autotask.max_concurrency".into(), "must be 1, 2 or 3 (Autotask allows 3 per endpoint)".into());
        }
        let mut names = BTreeSet::new();
        for (i, k) in self.security_center.iter().enumerate() {
            if !names.insert(k.name.clone()) {
                push(format!("security_center[{i}].name"), format!("duplicate name {:?}", k.name));
            }
            if let Err(e) = k.password.resolve() {
                push(format!("security_center[{i}].password"), e);
            }
            if let Some(ca) = &k.ca_file {
                if let Err(e) = std::fs::metadata(ca) {
                    push(format!("security_center[{i}].ca_file"), format!("{}: {e}", ca.display()));
                }
            }
        }
        if let Some(b) = &self.business_hub {
            match (&b.token, &b.email, &b.password) {
                (Some(t), None, None) => {
                    if let Err(e) = t.resolve() {
                        push("business_hub.token".into(), e);
                    }
                }
                (None, Some(_), Some(p)) => {
                    if let Err(e) = p.resolve() {
                        push("business_hub.password".into(), e);
                    }
                }
                _ => push("business_hub".into(), "give either token, or email and password".into()),
            }
        }
        if let Some(t) = &self.admin.token {
            if let Err(e) = t.resolve() {
                push("admin.token".into(), e);
            }
        }
        if !matches!(self.logging.format.as_str(), "human" | "json") {
            push("logging.format".into(), format!("expected human or json, got {:?}", self.logging.format));
        }
        let mut tenants = BTreeSet::new();
        for (i, m) in self.mapping.iter().enumerate() {
            if !tenants.insert(m.tenant.clone()) {
                push(format!("mapping[{i}].tenant"), format!("tenant {:?} is mapped twice", m.tenant));
            }
            if m.account_id.is_some() == m.account_name.is_some() {
                push(format!("mapping[{i}]"), "give exactly one of account_id or account_name".into());
            }
        }
        if self.polling.events_secs == 0 || self.polling.statuses_secs == 0 || self.polling.catalog_secs == 0 {
            push("polling".into(), "intervals must be at least 1 second".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[autotask]
username = "api@sim.local"
secret = { value = "s3cret-value" }
integration_code = { value = "CODE" }
"#;

    #[test]
    fn minimal_file_takes_defaults() {
        let c = Config::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(c.admin.listen.to_string(), "127.0.0.1:8787");
        assert_eq!(c.polling.events_secs, 60);
        assert_eq!(c.rules.to_rule_set(), RuleSet::default());
        assert!(!format!("{c:?}").contains("s3cret-value"), "secrets never print");
    }

    #[test]
    fn unknown_keys_are_errors_with_their_path() {
        let text = format!("{MINIMAL}\n[polling]\nevents_sec = 5\n");
        let err = Config::parse(&text, "t.toml").unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].key, "polling.events_sec");
        assert!(err.0[0].reason.contains("unknown field `events_sec`"), "{}", err.0[0].reason);
        let text =
            format!("{MINIMAL}\n[rules.rows.\"security_center/event/critical\"]\nenabled = true\nqueu = \"x\"\n");
        let err = Config::parse(&text, "t.toml").unwrap_err();
        assert!(err.0[0].key.starts_with("rules.rows"), "{:?}", err.0[0]);
        let text = format!("{MINIMAL}\n[rules.rows.\"security_center/event/nope\"]\nenabled = true\n");
        let err = Config::parse(&text, "t.toml").unwrap_err();
        assert!(err.0[0].reason.contains("unknown rule row"), "{:?}", err.0[0]);
    }

    #[test]
    fn every_semantic_problem_at_once() {
        let text = r#"
[autotask]
username = ""
secret = { env = "MSP_TICKETD_TEST_UNSET_VARIABLE" }
integration_code = { value = "C", env = "X" }
[[mapping]]
tenant = "ksc:main/vs:1"
[[mapping]]
tenant = "ksc:main/vs:1"
account_id = 1
"#;
        let err = Config::parse(text, "t.toml").unwrap_err();
        let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["autotask.secret", "autotask.integration_code", "autotask.username", "mapping[0]", "mapping[1].tenant"]
        );
        assert!(
            err.to_string()
                .contains("t.toml: autotask.secret: environment variable MSP_TICKETD_TEST_UNSET_VARIABLE is not set")
        );
    }

    #[test]
    fn rules_section_patches_the_defaults() {
        let text = format!(
            "{MINIMAL}\n[rules.general]\nticket_source = \"Monitoring Alert\"\n[rules.rows.\"endpoint_cloud/status/warning/databases_out_of_date\"]\nenabled = true\ndue_hours = 8\n"
        );
        let c = Config::parse(&text, "t.toml").unwrap();
        let rules = c.rules.to_rule_set();
        assert_eq!(rules.general.ticket_source.as_deref(), Some("Monitoring Alert"));
        let row: RowId = "endpoint_cloud/status/warning/databases_out_of_date".parse().unwrap();
        let r = rules.rule(&row).unwrap();
        assert!(r.enabled);
        assert_eq!(r.due_hours, 8);
        assert_eq!(r.priority.as_deref(), Some("Medium"));
    }
}
