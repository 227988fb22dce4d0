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
use ticketing_core::model::TenantId;
use ticketing_core::rules::{Problem, RowId, RuleSet};
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

fn default_store_path() -> PathBuf {
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
    /// Bearer token of the admin API (and the UI's login). Without one the admin listener does
    /// not start.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// Whether `/metrics` needs the token (the default). `false` lets a scraper on the same
    /// machine (a loopback peer address) read it without one; any other peer still needs it.
    #[serde(default = "yes")]
    pub metrics_auth: bool,
}

const fn yes() -> bool {
    true
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8787))
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { listen: default_admin_listen(), token: None, metrics_auth: true }
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

/// `[ha]`: several daemons on one store take turns as leader. Only the leader polls sources and
/// writes to the PSA; standbys serve the admin API and UI and take over when the leader's lease
/// runs out. Defaults replace a killed leader within about 12 s.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaConfig {
    /// This instance's name in the lease and `/api/status` (default: host name and process id).
    #[serde(default)]
    pub instance: Option<String>,
    /// How long a lease lasts without renewal.
    #[serde(default = "d10")]
    pub lease_secs: u64,
    /// How often the leader renews it (well inside the lease).
    #[serde(default = "d3")]
    pub renew_secs: u64,
    /// How often a standby checks whether it can take over.
    #[serde(default = "d2u64")]
    pub takeover_secs: u64,
}

const fn d10() -> u64 {
    10
}
const fn d3() -> u64 {
    3
}
const fn d2u64() -> u64 {
    2
}

impl Default for HaConfig {
    fn default() -> Self {
        Self { instance: None, lease_secs: d10(), renew_secs: d3(), takeover_secs: d2u64() }
    }
}

impl HaConfig {
    /// The instance name: configured, or `<host>-<pid>`.
    pub fn instance_name(&self) -> String {
        self.instance.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
            let host = if host.is_empty() { "msp-ticketd".to_owned() } else { host };
            format!("{host}-{}", std::process::id())
        })
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
    /// Reads in flight at once per source (tenants polled in parallel against one Security
    /// Center or Business Hub): bounds the connections and sessions a source sees, however
    /// many tenants it has.
    #[serde(default = "d16")]
    pub read_concurrency: usize,
}

const fn d16() -> usize {
    16
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
            read_concurrency: d16(),
        }
    }
}

/// `[psa]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PsaConfig {
    /// A backend of [`crate::backends::BACKENDS`] (`autotask`, `connectwise`). Without it, the
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

impl Config {
    /// The PSA backend this file selects: `[psa] kind`, else the one whose section is present
    /// (`autotask` when both or neither are; [`Config::problems`] reports what is missing).
    pub fn psa_kind(&self) -> &str {
        match (&self.psa.kind, &self.autotask, &self.connectwise) {
            (Some(k), _, _) => k.as_str(),
            (None, None, Some(_)) => "connectwise",
            _ => "autotask",
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
    /// `[ha]`
    #[serde(default)]
    pub ha: HaConfig,
    /// `[psa]`: which PSA backend (default: the one whose section is present).
    #[serde(default)]
    pub psa: PsaConfig,
    /// `[autotask]`
    #[serde(default)]
    pub autotask: Option<AutotaskConfig>,
    /// `[connectwise]`
    #[serde(default)]
    pub connectwise: Option<ConnectWiseConfig>,
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

/// How much a problem matters: errors stop `run` and make `check` exit 1, warnings do neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The file cannot be used as it is.
    Error,
    /// Works, but is probably not what you want.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// One problem with the configuration: where (file, line, column and key) and why.
///
/// Printed as `FILE:LINE:COL: key.path: what is wrong (what was expected)`, warnings with
/// `warning: ` before the key. The reason never contains a value of the file, so an inline
/// secret in a wrong place is never echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The file.
    pub file: String,
    /// 1-based line in the file, when the problem has a place in it.
    pub line: Option<usize>,
    /// 1-based column (in characters), with `line`.
    pub col: Option<usize>,
    /// The key's path (`autotask.secret`, `security_center[0].url`).
    pub key: String,
    /// What is wrong, and in parentheses what was expected.
    pub reason: String,
    /// Error or warning.
    pub severity: Severity,
}

impl ConfigProblem {
    /// An error with no place in the file (it cannot be read, a live service refused).
    pub fn unplaced(file: &str, key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            col: None,
            key: key.into(),
            reason: reason.into(),
            severity: Severity::Error,
        }
    }

    /// Whether it is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if let Some(line) = self.line {
            write!(f, "{line}:{}:", self.col.unwrap_or(1))?;
        }
        if self.severity == Severity::Warning {
            write!(f, " warning:")?;
        }
        write!(f, " {}: {}", self.key, self.reason)
    }
}

/// Every problem found, all at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

/// What checking one file found: the configuration (when it has no errors) and every problem,
/// sorted by place. Also places problems found later (by `check`'s live probes) by key path.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// The configuration, when the file has no errors (warnings allowed).
    pub config: Option<Config>,
    /// Every problem, sorted by line and column.
    pub problems: Vec<ConfigProblem>,
    file: String,
    doc: Option<toml_edit::ImDocument<String>>,
}

impl Diagnosis {
    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(ConfigProblem::is_error)
    }

    /// `logging.format` as the file spells it, even when the file has errors elsewhere (so
    /// `check` can answer in the format asked for).
    pub fn log_format(&self) -> Option<&str> {
        self.doc.as_ref()?.get("logging")?.get("format")?.as_str()
    }

    /// A problem at `key` (`security_center[0]`, `mapping[2]`), placed at that key's line in
    /// the file, or at its nearest ancestor that is in the file.
    pub fn problem(&self, key: &str, reason: impl Into<String>, severity: Severity) -> ConfigProblem {
        let (line, col) = match &self.doc {
            Some(doc) => {
                let at = locate(doc.as_item(), &walk::parse_path(key), false);
                let (l, c) = line_col(doc.raw(), at.unwrap_or(0));
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigProblem { file: self.file.clone(), line, col, key: key.to_owned(), reason: reason.into(), severity }
    }
}

impl Config {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        Self::diagnose_file(path).into_result()
    }

    /// Parses and checks TOML text; `file` names it in problems.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigErrors> {
        Self::diagnose(text, file).into_result()
    }

    /// Reads a file and finds every problem of it ([`Config::diagnose`]).
    pub fn diagnose_file(path: &Path) -> Diagnosis {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::diagnose(&text, &file),
            Err(e) => Diagnosis {
                config: None,
                problems: vec![ConfigProblem::unplaced(&file, "(file)", format!("cannot read it: {e}"))],
                file,
                doc: None,
            },
        }
    }

    /// Finds every problem of TOML text at once, each with its line, column and key path:
    /// syntax errors, unknown keys, wrong types, missing keys, out-of-range values, malformed
    /// URLs and tenant ids, secrets, the store's directory, the logging filter.
    ///
    /// How: the text is parsed into a [`toml_edit::ImDocument`] (which keeps every key's and
    /// value's span), re-parsed with the offending line blanked after each syntax error; then
    /// the serde `Deserialize` impls of these structs walk that document through a collecting
    /// deserializer (`walk`): unknown keys are checked against the field list serde itself
    /// hands the deserializer, and a refused value is recorded and replaced by a placeholder on
    /// the next pass, so one mistake never hides another. The typed value then goes through
    /// the semantic checks, except where a placeholder stands.
    pub fn diagnose(text: &str, file: &str) -> Diagnosis {
        let Recovered { doc, errors, blanked } = parse_recovering(text);
        let mut problems: Vec<ConfigProblem> =
            errors.into_iter().map(|p| ConfigProblem { file: file.to_owned(), ..p }).collect();
        let Some(doc) = doc else {
            return Diagnosis { config: None, problems, file: file.to_owned(), doc: None };
        };
        let walked = walk::walk::<Self>(doc.as_table());
        for found in &walked.found {
            let key = walk::display_path(&found.path);
            if blanked.iter().any(|b| related(&key, b)) {
                continue;
            }
            let at = locate(doc.as_item(), &found.path, found.at_key);
            let (line, col) = line_col(doc.raw(), at.unwrap_or(0));
            problems.push(ConfigProblem {
                file: file.to_owned(),
                line: Some(line),
                col: Some(col),
                key,
                reason: rule_row_suggestion(&found.path).unwrap_or_else(|| found.message.clone()),
                severity: Severity::Error,
            });
        }
        let mut diagnosis = Diagnosis { config: None, problems, file: file.to_owned(), doc: Some(doc) };
        if let Some(config) = walked.value {
            let tainted: Vec<String> =
                walked.tainted.iter().map(|p| walk::display_path(p)).chain(blanked.iter().cloned()).collect();
            let mut sink = Sink { diagnosis: &diagnosis, tainted: &tainted, out: Vec::new() };
            config.semantic_problems(&mut sink);
            let found = sink.out;
            diagnosis.problems.extend(found);
            if !diagnosis.has_errors() {
                diagnosis.config = Some(config);
            }
        }
        diagnosis.problems.sort_by_key(|p| (p.line.is_none(), p.line, p.col));
        diagnosis
    }

    /// Everything the types alone do not say: ranges, URLs, tenant ids, secrets, files.
    fn semantic_problems(&self, s: &mut Sink<'_>) {
        const AT_LEAST_ONE: &str = "is 0 (expected at least 1)";
        // [store]
        match &self.store.url {
            None => {
                if let Some(reason) = store_problem(&self.store.path) {
                    s.error("store.path", reason);
                }
                if self.store.password.is_some() {
                    s.error(
                        "store.password",
                        "is set without store.url (expected it only with a PostgreSQL store.url)",
                    );
                }
            }
            Some(url) => {
                if self.store.path != default_store_path() {
                    s.error(
                        "store.path",
                        "is set with store.url (expected one of them: path for SQLite, url for PostgreSQL)",
                    );
                }
                match store_url_problem(url) {
                    Some(StoreUrlProblem::Error(reason)) => s.error("store.url", reason),
                    Some(StoreUrlProblem::Warning(reason)) => s.warning("store.url", reason),
                    None => {}
                }
                if let Some(p) = &self.store.password {
                    s.secret("store.password", p);
                }
            }
        }
        // [admin]
        if let Some(t) = &self.admin.token {
            s.secret("admin.token", t);
            if !self.admin.listen.ip().is_loopback() {
                s.warning(
                    "admin.listen",
                    "is not a loopback address and the admin listener has no TLS: the token and UI \
                     sessions cross the network in clear text (expected 127.0.0.1 or ::1, with a \
                     TLS-terminating proxy in front for remote access)",
                );
            }
        }
        // [logging]
        if !matches!(self.logging.format.as_str(), "human" | "json") {
            s.error("logging.format", "is not a known format (expected \"human\" or \"json\")");
        }
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.logging.filter) {
            s.error(
                "logging.filter",
                format!("is not a tracing filter: {e} (expected e.g. \"info\" or \"daemon=debug,info\")"),
            );
        }
        // [polling]
        let p = &self.polling;
        for (key, value) in [
            ("polling.events_secs", p.events_secs),
            ("polling.statuses_secs", p.statuses_secs),
            ("polling.catalog_secs", p.catalog_secs),
            ("polling.batch_size", p.batch_size as u64),
            ("polling.deliver_concurrency", p.deliver_concurrency as u64),
            ("polling.read_concurrency", p.read_concurrency as u64),
        ] {
            if value == 0 {
                s.error(key, AT_LEAST_ONE);
            }
        }
        // [psa]
        let kind = self.psa_kind();
        if !crate::backends::BACKENDS.iter().any(|(k, _)| *k == kind) {
            let known: Vec<&str> = crate::backends::BACKENDS.iter().map(|(k, _)| *k).collect();
            s.error("psa.kind", format!("is {kind:?} (expected one of {})", known.join(", ")));
        }
        if kind == "connectwise" {
            match &self.connectwise {
                Some(cw) => {
                    s.secret("connectwise.private_key", &cw.private_key);
                    if let Some(reason) = cw.base_url.as_deref().and_then(url_problem) {
                        s.error("connectwise.base_url", reason);
                    }
                    if cw.site.is_none() && cw.base_url.is_none() {
                        s.error("connectwise", "gives neither site nor base_url (expected one, to reach the API)");
                    }
                    if cw.timeout_secs == 0 {
                        s.error("connectwise.timeout_secs", AT_LEAST_ONE);
                    }
                }
                None => s.error(
                    "connectwise",
                    "is missing (expected a [connectwise] section for psa.kind = \"connectwise\")",
                ),
            }
        }
        // [autotask]
        match self.autotask.as_ref() {
            None if kind == "autotask" => {
                s.error("autotask", "is missing (expected an [autotask] section: the PSA to create tickets in)");
            }
            None => {}
            Some(at) => {
                s.secret("autotask.secret", &at.secret);
                s.secret("autotask.integration_code", &at.integration_code);
                if at.username.trim().is_empty() {
                    s.error("autotask.username", "is empty (expected the API user's name)");
                }
                for (key, url) in [("autotask.base_url", &at.base_url), ("autotask.discovery_url", &at.discovery_url)] {
                    if let Some(reason) = url.as_deref().and_then(url_problem) {
                        s.error(key, reason);
                    }
                }
                if at.max_concurrency.is_some_and(|n| !(1..=3).contains(&n)) {
                    s.error(
                        "autotask.max_concurrency",
                        "is out of range (expected 1, 2 or 3: Autotask allows 3 per endpoint)",
                    );
                }
                if at.hourly_budget == Some(0) {
                    s.error("autotask.hourly_budget", AT_LEAST_ONE);
                }
                if at.timeout_secs == 0 {
                    s.error("autotask.timeout_secs", AT_LEAST_ONE);
                }
            }
        }
        // [[security_center]]
        let mut names = BTreeSet::new();
        for (i, k) in self.security_center.iter().enumerate() {
            let key = |field: &str| format!("security_center[{i}].{field}");
            if k.name.trim().is_empty() {
                s.error(key("name"), "is empty (expected the label used in tenant ids, e.g. \"main\")");
            } else if !names.insert(k.name.as_str()) {
                s.error(key("name"), "is the name of an earlier [[security_center]] (expected a unique name)");
            }
            if let Some(reason) = url_problem(&k.url) {
                s.error(key("url"), reason);
            }
            s.secret(&key("password"), &k.password);
            if let Some(ca) = &k.ca_file {
                if let Err(e) = std::fs::metadata(ca) {
                    s.error(key("ca_file"), format!("cannot read {}: {e}", ca.display()));
                }
            }
            if let Some(reason) = k.cert_sha256.as_deref().and_then(fingerprint_problem) {
                s.error(key("cert_sha256"), reason);
            }
            if k.timeout_secs == 0 {
                s.error(key("timeout_secs"), AT_LEAST_ONE);
            }
        }
        // [business_hub]
        if let Some(b) = &self.business_hub {
            if let Some(reason) = url_problem(&b.url) {
                s.error("business_hub.url", reason);
            }
            match (&b.token, &b.email, &b.password) {
                (Some(t), None, None) => s.secret("business_hub.token", t),
                (None, Some(_), Some(p)) => s.secret("business_hub.password", p),
                _ => s.error("business_hub", "has no usable login (expected either token, or email and password)"),
            }
            if let Some(ca) = &b.ca_file {
                if let Err(e) = std::fs::metadata(ca) {
                    s.error("business_hub.ca_file", format!("cannot read {}: {e}", ca.display()));
                }
            }
            if let Some(reason) = b.cert_sha256.as_deref().and_then(fingerprint_problem) {
                s.error("business_hub.cert_sha256", reason);
            }
            if b.timeout_secs == 0 {
                s.error("business_hub.timeout_secs", AT_LEAST_ONE);
            }
        }
        // [[mapping]]
        let mut tenants = BTreeSet::new();
        for (i, m) in self.mapping.iter().enumerate() {
            if let Some(reason) = self.tenant_problem(&m.tenant) {
                s.error(format!("mapping[{i}].tenant"), reason);
            } else if !tenants.insert(m.tenant.as_str()) {
                s.error(
                    format!("mapping[{i}].tenant"),
                    "is mapped by an earlier [[mapping]] (expected each tenant once)",
                );
            }
            match (m.account_id, &m.account_name) {
                (Some(_), Some(_)) => {
                    s.error(format!("mapping[{i}]"), "gives both account_id and account_name (expected exactly one)")
                }
                (None, None) => {
                    s.error(format!("mapping[{i}]"), "gives neither account_id nor account_name (expected exactly one)")
                }
                _ => {}
            }
        }
        // [rules]
        let defaults = RuleSet::default();
        for (row, patch) in &self.rules.rows {
            let key = walk::display_path(&[
                walk::Seg::Key("rules".into()),
                walk::Seg::Key("rows".into()),
                walk::Seg::Key(row.to_string()),
            ]);
            if !defaults.rows.contains_key(row) {
                s.error(key, "is not a rule row (expected a row of the guide's Ticketing tab)");
                continue;
            }
            // One patch per checked field, so each bad field is reported, not only the first.
            let parts = [
                RulePatch { lifetime_days: patch.lifetime_days, ..RulePatch::default() },
                RulePatch { due_hours: patch.due_hours, ..RulePatch::default() },
            ];
            for part in parts {
                let mut book = ticketing_core::edit::RuleBook::new(defaults.clone());
                if let Err(ticketing_core::edit::EditError::Invalid(v)) =
                    book.bulk_edit(std::slice::from_ref(row), &part)
                {
                    let reason = match v.problem {
                        Problem::OutOfRange { min, max } => format!("is out of range (expected {min} to {max})"),
                        Problem::NotApplicable => "does not apply to this row (expected no such key here)".to_owned(),
                        _ => v.to_string(),
                    };
                    s.error(format!("{key}.{}", v.field.name()), reason);
                }
            }
        }
    }

    /// What is wrong with a mapping's tenant id, if anything.
    fn tenant_problem(&self, tenant: &str) -> Option<String> {
        const EXPECTED: &str = "expected ksc:<server name>/vs:<virtual server id> or kbh:<company id>";
        let id = TenantId::new(tenant.to_owned());
        if tenant.starts_with("ksc:") {
            let Some((name, _)) = ksc_adapter::parse_tenant_id(&id) else {
                return Some(format!("is not a tenant id ({EXPECTED})"));
            };
            if self.security_center.iter().any(|k| k.name == name) {
                return None;
            }
            let known: Vec<String> = self.security_center.iter().map(|k| format!("{:?}", k.name)).collect();
            let expected = if known.is_empty() {
                "a [[security_center]] of that name; none is configured".to_owned()
            } else {
                format!("one of the [[security_center]] names: {}", known.join(", "))
            };
            Some(format!("names Security Center {name:?}, which no [[security_center]] has (expected {expected})"))
        } else if tenant.starts_with(kbh_adapter::TENANT_PREFIX) {
            if kbh_adapter::CompanyId::from_tenant(&id).is_err() {
                Some(format!("is not a tenant id ({EXPECTED})"))
            } else if self.business_hub.is_none() {
                Some("names a Business Hub company, but there is no [business_hub] (expected one)".to_owned())
            } else {
                None
            }
        } else {
            Some(format!("is not a tenant id ({EXPECTED})"))
        }
    }
}

impl Diagnosis {
    fn into_result(self) -> Result<Config, ConfigErrors> {
        match self.config {
            Some(config) if !self.has_errors() => Ok(config),
            _ => Err(ConfigErrors(self.problems)),
        }
    }
}

/// Collects semantic problems, placing each at its key and leaving out those under a key whose
/// value was already refused (it holds a placeholder, not the file's value).
struct Sink<'a> {
    diagnosis: &'a Diagnosis,
    tainted: &'a [String],
    out: Vec<ConfigProblem>,
}

impl Sink<'_> {
    fn push(&mut self, key: String, reason: String, severity: Severity) {
        if self.tainted.iter().any(|t| related(&key, t)) {
            return;
        }
        self.out.push(self.diagnosis.problem(&key, reason, severity));
    }

    fn error(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.push(key.into(), reason.into(), Severity::Error);
    }

    fn warning(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.push(key.into(), reason.into(), Severity::Warning);
    }

    /// Exactly one of env, file or value, and it can be read (named by variable or file,
    /// never by value).
    fn secret(&mut self, key: &str, s: &SecretRef) {
        let given: Vec<&str> = [("env", s.env.is_some()), ("file", s.file.is_some()), ("value", s.value.is_some())]
            .into_iter()
            .filter_map(|(name, set)| set.then_some(name))
            .collect();
        match given.as_slice() {
            [] => self.error(key, "gives no secret (expected exactly one of env, file or value)"),
            [one] => {
                if let Err(e) = s.resolve() {
                    self.error(format!("{key}.{one}"), e);
                }
            }
            many => {
                self.error(key, format!("gives {} (expected exactly one of env, file or value)", many.join(" and ")))
            }
        }
    }
}

/// For a misspelled rule row (`rules.rows."security_center/event/critcal"`), the message with
/// the row it is close to.
fn rule_row_suggestion(path: &[walk::Seg]) -> Option<String> {
    let [walk::Seg::Key(rules), walk::Seg::Key(rows), walk::Seg::Key(row)] = path else { return None };
    if rules != "rules" || rows != "rows" || row.parse::<RowId>().is_ok() {
        return None;
    }
    let known: Vec<String> = RuleSet::default().rows.keys().map(ToString::to_string).collect();
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    let close = walk::did_you_mean(row, &known)?;
    Some(format!("unknown rule row (did you mean `{close}`?)"))
}

/// What is wrong with a service URL, if anything.
fn url_problem(s: &str) -> Option<String> {
    const EXPECTED: &str = "expected an absolute http:// or https:// URL";
    match url::Url::parse(s) {
        Err(e) => Some(format!("is not a valid URL: {e} ({EXPECTED})")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Some(format!("has scheme {:?} ({EXPECTED})", u.scheme())),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some(format!("has no host ({EXPECTED})")),
        Ok(_) => None,
    }
}

/// What is wrong with a SHA-256 certificate fingerprint, if anything.
fn fingerprint_problem(s: &str) -> Option<String> {
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    (hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| "is not a SHA-256 fingerprint (expected 64 hex digits, colons optional)".to_owned())
}

/// What is wrong with a PostgreSQL `store.url`.
enum StoreUrlProblem {
    Error(String),
    Warning(String),
}

/// What is wrong with a PostgreSQL `store.url`, if anything (never repeating a password in it).
fn store_url_problem(url: &str) -> Option<StoreUrlProblem> {
    const EXPECTED: &str = "expected postgres://user@host:port/database";
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Some(StoreUrlProblem::Error(format!("is not a postgres:// URL ({EXPECTED})")));
    }
    let config: tokio_postgres::Config = match url.parse() {
        Ok(c) => c,
        Err(e) => return Some(StoreUrlProblem::Error(format!("is not a valid PostgreSQL URL: {e} ({EXPECTED})"))),
    };
    if config.get_password().is_some() {
        return Some(StoreUrlProblem::Error(
            "has a password in it (expected it in store.password, a secret reference)".to_owned(),
        ));
    }
    if config.get_dbname().is_none() {
        return Some(StoreUrlProblem::Error(format!("names no database ({EXPECTED})")));
    }
    if config.get_hosts().is_empty() {
        return Some(StoreUrlProblem::Error(format!("names no host ({EXPECTED})")));
    }
    let remote = config.get_hosts().iter().find_map(|h| match h {
        tokio_postgres::config::Host::Tcp(name) => {
            let loopback = name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            (!loopback).then(|| name.clone())
        }
        tokio_postgres::config::Host::Unix(_) => None,
    });
    remote.map(|host| {
        StoreUrlProblem::Warning(format!(
            "connects to {host} without TLS (the store speaks plain PostgreSQL): the password and the \
             ledger cross the network in clear text (expected a loopback address or Unix socket, with a \
             TLS tunnel to a remote server)"
        ))
    })
}

/// What is wrong with the store's path, if anything: its directory must exist and be writable
/// (SQLite writes its journal next to the file), and the file, if there, writable.
fn store_problem(path: &Path) -> Option<String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Err(_) => {
            return Some(format!(
                "is in directory {}, which does not exist (expected an existing, writable directory)",
                dir.display()
            ));
        }
        Ok(m) if !m.is_dir() => {
            return Some(format!(
                "is in {}, which is not a directory (expected an existing, writable directory)",
                dir.display()
            ));
        }
        Ok(_) => {}
    }
    // A name no other check (another thread, another process) can be using at the same time.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = dir.join(format!(".msp-ticketd-check-{}-{n}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => {
            return Some(format!(
                "is in directory {}, which is not writable: {e} (expected a writable directory)",
                dir.display()
            ));
        }
    }
    if path.is_dir() {
        return Some("is a directory (expected a SQLite file, or a name for a new one)".to_owned());
    }
    if path.exists() {
        if let Err(e) = std::fs::OpenOptions::new().write(true).open(path) {
            return Some(format!("is not writable: {e} (expected a writable SQLite file)"));
        }
    }
    None
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

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    (line, col)
}

/// Top-level tables put in place of a broken table header, so the keys under it are skipped
/// rather than reported as belonging to the table before it.
const RECOVERED: &str = "__msp_ticketd_unparsable_line_";

/// What [`parse_recovering`] made of a text.
struct Recovered {
    /// The document, when blanking lines made the text parse.
    doc: Option<toml_edit::ImDocument<String>>,
    /// Every syntax error (their `file` left empty).
    errors: Vec<ConfigProblem>,
    /// Keys of the key-value lines blanked: their absence is a consequence, not a problem.
    blanked: Vec<String>,
}

/// Parses `text`, and after each syntax error parses it again with the offending line blanked
/// (a broken table header becomes a table that is skipped; an error on an empty line, such as
/// the end of the file after an unclosed string, blanks the nearest line above with text).
fn parse_recovering(text: &str) -> Recovered {
    const MAX_SYNTAX_ERRORS: usize = 50;
    let mut text = text.to_owned();
    let mut errors = Vec::new();
    let mut blanked = Vec::new();
    for _ in 0..MAX_SYNTAX_ERRORS {
        let e = match toml_edit::ImDocument::parse(text.clone()) {
            Ok(doc) => return Recovered { doc: Some(doc), errors, blanked },
            Err(e) => e,
        };
        let (line, col) = line_col(&text, e.span().map_or(text.len(), |s| s.start));
        errors.push(ConfigProblem {
            file: String::new(),
            line: Some(line),
            col: Some(col),
            key: syntax_key(&text, line),
            reason: syntax_reason(e.message()),
            severity: Severity::Error,
        });
        let mut lines: Vec<&str> = text.split('\n').collect();
        let Some(index) = (0..line.min(lines.len())).rev().find(|i| !lines[*i].trim().is_empty()) else { break };
        let broken = lines[index];
        let replacement = if broken.trim_start().starts_with('[') {
            format!("[{RECOVERED}{}]", index + 1)
        } else {
            blanked.push(syntax_key(&text, index + 1));
            String::new()
        };
        lines[index] = &replacement;
        text = lines.join("\n");
    }
    Recovered { doc: None, errors, blanked }
}

/// Whether one key path is the other or lies under it.
fn related(a: &str, b: &str) -> bool {
    let under = |a: &str, b: &str| {
        a.strip_prefix(b).is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    };
    under(a, b) || under(b, a)
}

/// The key a syntax error is about, as far as the line says: the table header above it and
/// the key before `=`.
fn syntax_key(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let this = lines.get(line - 1).copied().unwrap_or_default().trim();
    let bare = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-.\"/ ".contains(c));
    // The path a header line (at `index`) opens: `polling`, `security_center[1]`.
    let header = |index: usize| {
        let l = lines[index].trim();
        if let Some(inner) = l.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            let nth = lines[..index].iter().filter(|o| o.trim() == l).count();
            return bare(inner).then(|| format!("{}[{nth}]", inner.trim()));
        }
        let inner = l.strip_prefix('[').and_then(|l| l.strip_suffix(']'))?;
        bare(inner).then(|| inner.trim().to_owned())
    };
    if this.starts_with('[') {
        return header(line - 1).unwrap_or_else(|| "(table header)".to_owned());
    }
    let table = (0..line - 1).rev().find(|i| lines[*i].trim_start().starts_with('[')).and_then(header);
    let key = this.split_once('=').map(|(k, _)| k.trim()).filter(|k| bare(k));
    match (table, key) {
        (Some(t), Some(k)) => format!("{t}.{k}"),
        (None, Some(k)) => k.to_owned(),
        (Some(t), None) => t,
        (None, None) => "(syntax)".to_owned(),
    }
}

/// toml_edit's message, on one line: `what (expected ...)`.
fn syntax_reason(message: &str) -> String {
    let lines: Vec<&str> = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let (expected, what): (Vec<&str>, Vec<&str>) = lines.iter().partition(|l| l.starts_with("expected"));
    let what = if what.is_empty() { "invalid TOML".to_owned() } else { what.join("; ") };
    if expected.is_empty() {
        format!("syntax error: {what}")
    } else {
        format!("syntax error: {what} ({})", expected.join("; "))
    }
}

/// The byte offset a key path points at: the key itself (`at_key`) or its value (a table's
/// header); the nearest ancestor in the file when the path goes further than the file does.
fn locate(root: &toml_edit::Item, path: &[walk::Seg], at_key: bool) -> Option<usize> {
    use toml_edit::{Item, Table, Value};
    #[derive(Clone, Copy)]
    enum Cur<'a> {
        Item(&'a Item),
        Table(&'a Table),
        Value(&'a Value),
    }
    let mut cur = Cur::Item(root);
    let mut best = None;
    for (i, seg) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        let next = match seg {
            walk::Seg::Key(k) => {
                let table: Option<&dyn toml_edit::TableLike> = match cur {
                    Cur::Item(item) => item.as_table_like(),
                    Cur::Table(t) => Some(t),
                    Cur::Value(v) => v.as_inline_table().map(|t| t as &dyn toml_edit::TableLike),
                };
                let Some((key, item)) = table.and_then(|t| t.get_key_value(k)) else { break };
                let span = if last && at_key { key.span() } else { item.span().or_else(|| key.span()) };
                (span, Cur::Item(item))
            }
            walk::Seg::Index(n) => {
                let found = match cur {
                    Cur::Item(Item::ArrayOfTables(a)) => a.get(*n).map(|t| (t.span(), Cur::Table(t))),
                    Cur::Item(Item::Value(Value::Array(a))) | Cur::Value(Value::Array(a)) => {
                        a.get(*n).map(|v| (v.span(), Cur::Value(v)))
                    }
                    _ => None,
                };
                let Some(found) = found else { break };
                found
            }
        };
        if let Some(span) = next.0 {
            best = Some(span.start);
        }
        cur = next.1;
    }
    best
}

/// The collecting deserializer.
///
/// serde's derived `Deserialize` impls of the config structs are the one schema: they ask this
/// deserializer for each value, and for a table they hand it the struct's field list, which is
/// what unknown keys are checked against (with a "did you mean" from it). A value the impl
/// refuses is recorded at its path and the pass ends; the next pass gives that path a
/// placeholder (an empty string, zero, an empty table...) so the derive is satisfied and the
/// walk reaches the keys after it. A required key that is missing is recorded once and then
/// also given a placeholder. Every pass records at least one new path, so the passes end.
mod walk {
    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet};
    use std::fmt;

    use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer as _, Unexpected, Visitor};
    use toml_edit::{Item, TableLike, Value};

    /// One step of a key path.
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
    pub(super) enum Seg {
        /// A table's key.
        Key(String),
        /// An array's element.
        Index(usize),
    }

    /// `security_center[0].url`, `rules.rows."security_center/event/critical".enabled`.
    pub(super) fn display_path(path: &[Seg]) -> String {
        let mut s = String::new();
        for seg in path {
            match seg {
                Seg::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                        s.push_str(k);
                    } else {
                        s.push_str(&format!("{k:?}"));
                    }
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    /// The inverse of [`display_path`] (for the keys this crate writes).
    pub(super) fn parse_path(s: &str) -> Vec<Seg> {
        let mut out = Vec::new();
        let mut chars = s.chars().peekable();
        while let Some(&c) = chars.peek() {
            match c {
                '.' => {
                    chars.next();
                }
                '"' => {
                    chars.next();
                    let key: String = chars.by_ref().take_while(|c| *c != '"').collect();
                    out.push(Seg::Key(key));
                }
                '[' => {
                    chars.next();
                    let n: String = chars.by_ref().take_while(|c| *c != ']').collect();
                    out.push(n.parse().map_or(Seg::Key(n), Seg::Index));
                }
                _ => {
                    let mut key = String::new();
                    while let Some(&c) = chars.peek() {
                        if c == '.' || c == '[' {
                            break;
                        }
                        key.push(c);
                        chars.next();
                    }
                    out.push(Seg::Key(key));
                }
            }
        }
        out
    }

    /// One problem the walk found.
    #[derive(Debug, Clone)]
    pub(super) struct Found {
        /// Where.
        pub(super) path: Vec<Seg>,
        /// Whether it is about the key (unknown, malformed) rather than its value.
        pub(super) at_key: bool,
        /// What is wrong (never echoing the value).
        pub(super) message: String,
    }

    /// What a walk found.
    pub(super) struct Walked<T> {
        /// The typed value (with placeholders under `tainted`), unless the walk got stuck.
        pub(super) value: Option<T>,
        /// Every problem, by path.
        pub(super) found: Vec<Found>,
        /// Paths whose value in `value` is not the file's.
        pub(super) tainted: Vec<Vec<Seg>>,
    }

    /// Walks `root` with `T`'s `Deserialize` impl, collecting every problem.
    pub(super) fn walk<T: DeserializeOwned>(root: &dyn TableLike) -> Walked<T> {
        const MAX_PASSES: usize = 1000;
        let ctx = RefCell::new(Ctx::default());
        let mut value = None;
        for _ in 0..MAX_PASSES {
            match T::deserialize(De { node: Node::Table(root), path: Vec::new(), ctx: &ctx }) {
                Ok(v) => {
                    value = Some(v);
                    break;
                }
                Err(Error::Reported) if !ctx.borrow().stuck => {}
                Err(Error::Msg(m)) => {
                    ctx.borrow_mut().report(Vec::new(), false, m);
                    break;
                }
                Err(_) => break,
            }
        }
        let ctx = ctx.into_inner();
        let tainted = ctx.poisoned.into_iter().chain(ctx.hidden).collect();
        Walked { value, found: ctx.found.into_values().collect(), tainted }
    }

    #[derive(Default)]
    struct Ctx {
        found: BTreeMap<Vec<Seg>, Found>,
        /// Paths given a placeholder: their value was refused, or they are missing.
        poisoned: BTreeSet<Vec<Seg>>,
        /// Map entries left out: their key was refused.
        hidden: BTreeSet<Vec<Seg>>,
        /// A placeholder itself was refused: no further pass can get further.
        stuck: bool,
    }

    impl Ctx {
        fn in_placeholder(&self, path: &[Seg]) -> bool {
            (0..=path.len()).any(|n| self.poisoned.contains(&path[..n]))
        }

        fn report(&mut self, path: Vec<Seg>, at_key: bool, message: String) {
            self.found.entry(path.clone()).or_insert(Found { path, at_key, message });
        }

        /// The value at `path` was refused. A refused placeholder (a `deserialize_with` that
        /// wants more than an empty string, say) is left out on the next pass instead, so the
        /// field's default applies.
        fn refuse(&mut self, path: Vec<Seg>, message: String) {
            if self.in_placeholder(&path) {
                if !self.hidden.insert(path) {
                    self.stuck = true;
                }
                return;
            }
            self.report(path.clone(), false, message);
            self.poisoned.insert(path);
        }

        /// The required key at `path` is absent (reported unless a placeholder stands above).
        fn missing(&mut self, path: Vec<Seg>) {
            if self.poisoned.contains(&path) || self.hidden.contains(&path) {
                self.stuck = true;
                return;
            }
            if !self.in_placeholder(&path) {
                self.report(path.clone(), false, "is missing (expected this required key)".to_owned());
            }
            self.poisoned.insert(path);
        }
    }

    /// The walk's error. Messages never contain the refused value.
    #[derive(Debug)]
    pub(super) enum Error {
        /// Recorded deeper down; the pass ends.
        Reported,
        /// A required field is absent.
        Missing(&'static str),
        /// What is wrong with this value.
        Msg(String),
    }

    impl fmt::Display for Error {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Self::Reported => f.write_str("reported"),
                Self::Missing(field) => write!(f, "missing key `{field}`"),
                Self::Msg(m) => f.write_str(m),
            }
        }
    }

    impl std::error::Error for Error {}

    impl de::Error for Error {
        fn custom<T: fmt::Display>(msg: T) -> Self {
            Self::Msg(msg.to_string())
        }

        fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
            Self::Msg(format!("is {} ({})", kind(&unexp), expected(exp)))
        }

        fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
            let what = match unexp {
                Unexpected::Signed(n) if n < 0 => "a negative integer",
                Unexpected::Signed(_) | Unexpected::Unsigned(_) => "an integer out of range",
                Unexpected::Str(_) => "not valid",
                ref other => kind(other),
            };
            Self::Msg(format!("is {what} ({})", expected(exp)))
        }

        fn invalid_length(len: usize, exp: &dyn de::Expected) -> Self {
            Self::Msg(format!("has {len} elements ({})", expected(exp)))
        }

        fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
            Self::Msg(format!("is not an accepted value (expected one of {})", quoted(expected)))
        }

        fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
            Self::Msg(unknown_key(field, expected))
        }

        fn missing_field(field: &'static str) -> Self {
            Self::Missing(field)
        }

        fn duplicate_field(_field: &'static str) -> Self {
            Self::Msg("is given twice (expected once)".to_owned())
        }
    }

    fn kind<'u>(u: &Unexpected<'u>) -> &'u str {
        match u {
            Unexpected::Bool(_) => "a boolean",
            Unexpected::Unsigned(_) | Unexpected::Signed(_) => "an integer",
            Unexpected::Float(_) => "a float",
            Unexpected::Char(_) | Unexpected::Str(_) => "a string",
            Unexpected::Bytes(_) => "bytes",
            Unexpected::Unit => "empty",
            Unexpected::Seq => "an array",
            Unexpected::Map => "a table",
            Unexpected::Other(s) => s,
            _ => "of another type",
        }
    }

    fn expected(exp: &dyn de::Expected) -> String {
        let s = exp.to_string();
        let what = match s.as_str() {
            "u8" => "a non-negative integer up to 255",
            "u16" => "a non-negative integer up to 65535",
            "u32" => "a non-negative integer up to 4294967295",
            "u64" | "u128" | "usize" => "a non-negative integer",
            "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
            "f32" | "f64" => "a number",
            "a sequence" => "an array",
            "a map" => "a table",
            _ if s.starts_with("struct ") => "a table",
            _ => return format!("expected {s}"),
        };
        format!("expected {what}")
    }

    fn quoted(names: &[&str]) -> String {
        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
    }

    /// `unknown key (did you mean `x`?)` or the list of keys the table has.
    fn unknown_key(key: &str, fields: &[&str]) -> String {
        match did_you_mean(key, fields) {
            Some(close) => format!("unknown key (did you mean `{close}`?)"),
            None if fields.is_empty() => "unknown key (expected no keys here)".to_owned(),
            None => format!("unknown key (expected one of {})", quoted(fields)),
        }
    }

    /// The one field close to `key` (optimal string alignment distance, within a third of its
    /// length), if there is exactly one closest.
    pub(super) fn did_you_mean<'f>(key: &str, fields: &[&'f str]) -> Option<&'f str> {
        let limit = key.chars().count().max(3) / 3;
        let mut scored: Vec<(usize, &'f str)> =
            fields.iter().map(|f| (distance(key, f), *f)).filter(|(d, _)| (1..=limit).contains(d)).collect();
        scored.sort_unstable();
        match scored.as_slice() {
            [(_, f)] => Some(*f),
            [(d, f), (d2, _), ..] if d < d2 => Some(*f),
            _ => None,
        }
    }

    /// Levenshtein distance with adjacent transpositions counted as one edit.
    fn distance(a: &str, b: &str) -> usize {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, cell) in d[0].iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[i - 2][j - 2] + 1);
                }
                d[i][j] = v;
            }
        }
        d[a.len()][b.len()]
    }

    /// A place in the document, or a placeholder standing for a refused or missing value.
    #[derive(Clone, Copy)]
    enum Node<'a> {
        Scalar(&'a Value),
        Table(&'a dyn TableLike),
        Values(&'a toml_edit::Array),
        Tables(&'a toml_edit::ArrayOfTables),
        Placeholder,
    }

    fn of_value(v: &Value) -> Node<'_> {
        match v {
            Value::InlineTable(t) => Node::Table(t),
            Value::Array(a) => Node::Values(a),
            v => Node::Scalar(v),
        }
    }

    fn of_item(i: &Item) -> Node<'_> {
        match i {
            Item::None => Node::Placeholder,
            Item::Value(v) => of_value(v),
            Item::Table(t) => Node::Table(t),
            Item::ArrayOfTables(a) => Node::Tables(a),
        }
    }

    fn unexpected(node: Node<'_>) -> Unexpected<'static> {
        match node {
            Node::Scalar(Value::String(_)) => Unexpected::Other("a string"),
            Node::Scalar(Value::Integer(_)) => Unexpected::Other("an integer"),
            Node::Scalar(Value::Float(_)) => Unexpected::Other("a float"),
            Node::Scalar(Value::Boolean(_)) => Unexpected::Other("a boolean"),
            Node::Scalar(Value::Datetime(_)) => Unexpected::Other("a date-time"),
            Node::Table(_) | Node::Scalar(Value::InlineTable(_)) => Unexpected::Map,
            Node::Values(_) | Node::Tables(_) | Node::Scalar(Value::Array(_)) => Unexpected::Seq,
            Node::Placeholder => Unexpected::Unit,
        }
    }

    fn child(path: &[Seg], seg: Seg) -> Vec<Seg> {
        let mut p = path.to_vec();
        p.push(seg);
        p
    }

    /// Deserializes one value; a refusal is recorded at `path`.
    fn value<'de, S: DeserializeSeed<'de>>(
        seed: S,
        node: Node<'_>,
        path: Vec<Seg>,
        ctx: &RefCell<Ctx>,
    ) -> Result<S::Value, Error> {
        match seed.deserialize(De { node, path: path.clone(), ctx }) {
            Err(Error::Msg(m)) => {
                ctx.borrow_mut().refuse(path, m);
                Err(Error::Reported)
            }
            Err(Error::Missing(f)) => {
                ctx.borrow_mut().missing(child(&path, Seg::Key(f.to_owned())));
                Err(Error::Reported)
            }
            r => r,
        }
    }

    struct De<'a, 'c> {
        node: Node<'a>,
        path: Vec<Seg>,
        ctx: &'c RefCell<Ctx>,
    }

    macro_rules! hint {
        ($($method:ident => |$v:ident| $placeholder:expr;)*) => {$(
            fn $method<V: Visitor<'de>>(self, $v: V) -> Result<V::Value, Error> {
                if matches!(self.node, Node::Placeholder) { $placeholder } else { self.deserialize_any($v) }
            }
        )*};
    }

    impl<'de> de::Deserializer<'de> for De<'_, '_> {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            match self.node {
                Node::Scalar(Value::String(s)) => v.visit_str(s.value()),
                Node::Scalar(Value::Integer(i)) => v.visit_i64(*i.value()),
                Node::Scalar(Value::Float(f)) => v.visit_f64(*f.value()),
                Node::Scalar(Value::Boolean(b)) => v.visit_bool(*b.value()),
                Node::Scalar(Value::InlineTable(t)) => v.visit_map(Entries::all(t, self.path, self.ctx)),
                Node::Scalar(Value::Array(a)) | Node::Values(a) => {
                    v.visit_seq(Elems::new(a.iter().map(of_value).collect(), self.path, self.ctx))
                }
                Node::Tables(a) => {
                    v.visit_seq(Elems::new(a.iter().map(|t| Node::Table(t)).collect(), self.path, self.ctx))
                }
                Node::Table(t) => v.visit_map(Entries::all(t, self.path, self.ctx)),
                node @ (Node::Scalar(Value::Datetime(_)) | Node::Placeholder) => {
                    Err(de::Error::invalid_type(unexpected(node), &v))
                }
            }
        }

        hint! {
            deserialize_bool => |v| v.visit_bool(false);
            deserialize_i8 => |v| v.visit_i64(0);
            deserialize_i16 => |v| v.visit_i64(0);
            deserialize_i32 => |v| v.visit_i64(0);
            deserialize_i64 => |v| v.visit_i64(0);
            deserialize_u8 => |v| v.visit_u64(0);
            deserialize_u16 => |v| v.visit_u64(0);
            deserialize_u32 => |v| v.visit_u64(0);
            deserialize_u64 => |v| v.visit_u64(0);
            deserialize_f32 => |v| v.visit_f64(0.0);
            deserialize_f64 => |v| v.visit_f64(0.0);
            deserialize_char => |v| v.visit_char(' ');
            deserialize_str => |v| v.visit_str("");
            deserialize_string => |v| v.visit_str("");
            deserialize_bytes => |v| v.visit_bytes(&[]);
            deserialize_byte_buf => |v| v.visit_bytes(&[]);
            deserialize_unit => |v| v.visit_unit();
            deserialize_identifier => |v| v.visit_str("");
        }

        fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            match self.node {
                Node::Placeholder => v.visit_seq(Elems::new(Vec::new(), self.path, self.ctx)),
                _ => self.deserialize_any(v),
            }
        }

        fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            match self.node {
                Node::Placeholder => v.visit_map(Entries {
                    items: Vec::new().into_iter(),
                    pending: None,
                    path: self.path,
                    ctx: self.ctx,
                }),
                _ => self.deserialize_any(v),
            }
        }

        fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            match self.node {
                Node::Placeholder => v.visit_none(),
                _ => v.visit_some(self),
            }
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, v: V) -> Result<V::Value, Error> {
            v.visit_newtype_struct(self)
        }

        fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            v.visit_unit()
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            variants: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, Error> {
            match self.node {
                Node::Scalar(Value::String(s)) => v.visit_enum(s.value().as_str().into_deserializer()),
                Node::Placeholder => v.visit_enum(variants.first().copied().unwrap_or_default().into_deserializer()),
                node => Err(de::Error::invalid_type(unexpected(node), &v)),
            }
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, Error> {
            let table = match self.node {
                Node::Table(t) => Some(t),
                Node::Placeholder => None,
                node => return Err(de::Error::invalid_type(unexpected(node), &v)),
            };
            let entries = Entries::fields(table, fields, self.path.clone(), self.ctx);
            match v.visit_map(entries) {
                Err(Error::Missing(f)) => {
                    self.ctx.borrow_mut().missing(child(&self.path, Seg::Key(f.to_owned())));
                    Err(Error::Reported)
                }
                r => r,
            }
        }

        serde::forward_to_deserialize_any! { i128 u128 unit_struct tuple tuple_struct }
    }

    /// A table's entries as a serde map.
    struct Entries<'a, 'c> {
        items: std::vec::IntoIter<(String, Node<'a>)>,
        pending: Option<(Vec<Seg>, Node<'a>)>,
        path: Vec<Seg>,
        ctx: &'c RefCell<Ctx>,
    }

    impl<'a, 'c> Entries<'a, 'c> {
        /// Every entry (a map such as `rules.rows`), except those whose key was refused.
        fn all(table: &'a dyn TableLike, path: Vec<Seg>, ctx: &'c RefCell<Ctx>) -> Self {
            let c = ctx.borrow();
            let items: Vec<_> = table
                .iter()
                .filter(|(k, _)| !c.hidden.contains(&child(&path, Seg::Key((*k).to_owned()))))
                .map(|(k, item)| {
                    let p = child(&path, Seg::Key(k.to_owned()));
                    (k.to_owned(), if c.poisoned.contains(&p) { Node::Placeholder } else { of_item(item) })
                })
                .collect();
            drop(c);
            Self { items: items.into_iter(), pending: None, path, ctx }
        }

        /// A struct's entries: keys that are not among `fields` are reported and left out;
        /// refused values and missing required keys get placeholders.
        fn fields(
            table: Option<&'a dyn TableLike>,
            fields: &'static [&'static str],
            path: Vec<Seg>,
            ctx: &'c RefCell<Ctx>,
        ) -> Self {
            let mut c = ctx.borrow_mut();
            let mut items = Vec::new();
            for (k, item) in table.iter().flat_map(|t| t.iter()) {
                if path.is_empty() && k.starts_with(super::RECOVERED) {
                    continue;
                }
                let p = child(&path, Seg::Key(k.to_owned()));
                if !fields.contains(&k) {
                    c.report(p, true, unknown_key(k, fields));
                    continue;
                }
                if c.hidden.contains(&p) {
                    continue;
                }
                items.push((k.to_owned(), if c.poisoned.contains(&p) { Node::Placeholder } else { of_item(item) }));
            }
            for f in fields {
                let p = child(&path, Seg::Key((*f).to_owned()));
                if !table.is_some_and(|t| t.contains_key(f)) && c.poisoned.contains(&p) && !c.hidden.contains(&p) {
                    items.push(((*f).to_owned(), Node::Placeholder));
                }
            }
            drop(c);
            Self { items: items.into_iter(), pending: None, path, ctx }
        }
    }

    impl<'de> de::MapAccess<'de> for Entries<'_, '_> {
        type Error = Error;

        fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
            let Some((k, node)) = self.items.next() else { return Ok(None) };
            let path = child(&self.path, Seg::Key(k.clone()));
            match seed.deserialize(k.as_str().into_deserializer()) {
                Ok(key) => {
                    self.pending = Some((path, node));
                    Ok(Some(key))
                }
                Err(Error::Msg(m)) => {
                    let mut c = self.ctx.borrow_mut();
                    c.report(path.clone(), true, m);
                    c.hidden.insert(path);
                    Err(Error::Reported)
                }
                Err(e) => Err(e),
            }
        }

        fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
            let (path, node) = self.pending.take().ok_or_else(|| Error::Msg("a value without a key".to_owned()))?;
            value(seed, node, path, self.ctx)
        }
    }

    /// An array's elements as a serde sequence.
    struct Elems<'a, 'c> {
        items: std::iter::Enumerate<std::vec::IntoIter<Node<'a>>>,
        path: Vec<Seg>,
        ctx: &'c RefCell<Ctx>,
    }

    impl<'a, 'c> Elems<'a, 'c> {
        fn new(items: Vec<Node<'a>>, path: Vec<Seg>, ctx: &'c RefCell<Ctx>) -> Self {
            Self { items: items.into_iter().enumerate(), path, ctx }
        }
    }

    impl<'de> de::SeqAccess<'de> for Elems<'_, '_> {
        type Error = Error;

        fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
            let (path, node) = loop {
                let Some((i, node)) = self.items.next() else { return Ok(None) };
                let path = child(&self.path, Seg::Index(i));
                if !self.ctx.borrow().hidden.contains(&path) {
                    break (path, node);
                }
            };
            let node = if self.ctx.borrow().poisoned.contains(&path) { Node::Placeholder } else { node };
            value(seed, node, path, self.ctx).map(Some)
        }
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

    fn keys_and_lines(text: &str) -> Vec<(String, usize)> {
        let err = Config::parse(text, "t.toml").unwrap_err();
        err.0.iter().map(|p| (p.key.clone(), p.line.unwrap())).collect()
    }

    #[test]
    fn unknown_keys_are_errors_at_their_own_line_with_a_suggestion() {
        let text = format!("{MINIMAL}\n[polling]\nevents_secs = 5\nevents_sec = 5\n");
        let err = Config::parse(&text, "t.toml").unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(err.0[0].key, "polling.events_sec");
        assert_eq!((err.0[0].line, err.0[0].col), (Some(9), Some(1)));
        assert_eq!(err.0[0].reason, "unknown key (did you mean `events_secs`?)");
        let text =
            format!("{MINIMAL}\n[rules.rows.\"security_center/event/critical\"]\nenabled = true\nqueu = \"x\"\n");
        let err = Config::parse(&text, "t.toml").unwrap_err();
        assert_eq!(err.0[0].key, "rules.rows.\"security_center/event/critical\".queu", "{err}");
        assert_eq!(err.0[0].line, Some(9));
        let text = format!("{MINIMAL}\n[rules.rows.\"security_center/event/nope\"]\nenabled = true\n");
        let err = Config::parse(&text, "t.toml").unwrap_err();
        assert!(err.0[0].reason.contains("unknown rule row"), "{:?}", err.0[0]);
        assert_eq!(err.0[0].line, Some(7));
    }

    #[test]
    fn every_type_error_at_once_not_only_the_first() {
        let text = r#"
[polling]
events_secs = "often"
batch_size = -1
deliver_concurrency = 2.5
[autotask]
username = 7
secret = "inline-secret-value"
integration_code = { value = "CODE", vaule = "x" }
"#;
        let err = Config::parse(text, "t.toml").unwrap_err();
        let got: Vec<String> = err.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "t.toml:3:15: polling.events_secs: is a string (expected a non-negative integer)",
                "t.toml:4:14: polling.batch_size: is a negative integer (expected a non-negative integer)",
                "t.toml:5:23: polling.deliver_concurrency: is a float (expected a non-negative integer)",
                "t.toml:7:12: autotask.username: is an integer (expected a string)",
                "t.toml:8:10: autotask.secret: is a string (expected a table)",
                "t.toml:9:38: autotask.integration_code.vaule: unknown key (did you mean `value`?)",
            ]
        );
        assert!(!err.to_string().contains("inline-secret-value"));
    }

    #[test]
    fn missing_keys_are_reported_at_their_table_and_the_rest_is_still_checked() {
        let text = "[autotask]\nsecret = { value = \"s\" }\n\n[polling]\nbatch_size = 0\n";
        assert_eq!(
            keys_and_lines(text),
            [
                ("autotask.integration_code".to_owned(), 1),
                ("autotask.username".to_owned(), 1),
                ("polling.batch_size".to_owned(), 5)
            ]
        );
        assert_eq!(
            keys_and_lines("[polling]\nbatch_size = 0\n"),
            [("autotask".to_owned(), 1), ("polling.batch_size".to_owned(), 2)]
        );
    }

    #[test]
    fn syntax_errors_do_not_hide_the_rest() {
        let text = format!("{MINIMAL}\n[polling]\nevents_secs = = 5\nbatch_size = 0\n[admin\nlisten = 5\n");
        let err = Config::parse(&text, "t.toml").unwrap_err();
        let got: Vec<(String, usize)> = err.0.iter().map(|p| (p.key.clone(), p.line.unwrap())).collect();
        assert_eq!(
            got,
            [
                ("polling.events_secs".to_owned(), 8),
                ("polling.batch_size".to_owned(), 9),
                ("(table header)".to_owned(), 10)
            ],
            "{err}"
        );
        assert!(err.0[0].reason.starts_with("syntax error"), "{err}");
    }

    #[test]
    fn a_line_blanked_after_a_syntax_error_is_not_also_missing() {
        let text = "[autotask]\nusername = \"u\"\nsecret = { value = \"s3cret }\nintegration_code = { value = \"c\" }\n\n[[mapping]]\ntenant = \"kbh:c-1\"\n[[mapping]]\ntenant = = \"kbh:c-2\"\naccount_id = 2\n";
        let err = Config::parse(text, "t.toml").unwrap_err();
        let got: Vec<String> = err.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "t.toml:3:29: autotask.secret: syntax error: invalid basic string",
                "t.toml:6:1: mapping[0]: gives neither account_id nor account_name (expected exactly one)",
                "t.toml:7:10: mapping[0].tenant: names a Business Hub company, but there is no [business_hub] (expected one)",
                "t.toml:9:10: mapping[1].tenant: syntax error: invalid string (expected `\"`, `'`)",
            ]
        );
        assert!(!err.to_string().contains("s3cret"));
        // An unclosed multi-line string runs to the end of the file: its own line is blanked.
        let text = format!("{MINIMAL}\n[polling]\nbatch_size = 0\nfoo = \"\"\"never closed\n\n");
        let keys: Vec<String> = Config::parse(&text, "t.toml").unwrap_err().0.into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["polling.batch_size", "polling"]);
    }

    #[test]
    fn listen_ports_over_65535_are_named() {
        let text = format!("{MINIMAL}\n[admin]\nlisten = \"127.0.0.1:70000\"\n");
        let err = Config::parse(&text, "t.toml").unwrap_err();
        assert_eq!(
            err.0[0].to_string(),
            "t.toml:8:10: admin.listen: has a port over 65535 (expected a port from 0 to 65535)"
        );
    }

    #[test]
    fn did_you_mean_needs_one_close_key() {
        assert_eq!(walk::did_you_mean("secrte", &["secret", "username"]), Some("secret"));
        assert_eq!(walk::did_you_mean("zzz", &["secret", "username"]), None);
        assert_eq!(walk::did_you_mean("ab", &["ac", "ad"]), None);
    }

    #[test]
    fn paths_round_trip() {
        for p in ["security_center[0].url", "rules.rows.\"security_center/event/critical\".enabled", "autotask"] {
            assert_eq!(walk::display_path(&walk::parse_path(p)), p);
        }
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
tenant = "kbh:c-1"
account_id = 1
[[mapping]]
tenant = "kbh:c-1"
account_name = "x"
"#;
        assert!(std::env::var_os("MSP_TICKETD_TEST_UNSET_VARIABLE").is_none());
        let err = Config::parse(text, "t.toml").unwrap_err();
        let got: Vec<String> = err.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "t.toml:3:12: autotask.username: is empty (expected the API user's name)",
                "t.toml:4:18: autotask.secret.env: environment variable MSP_TICKETD_TEST_UNSET_VARIABLE is not set",
                "t.toml:5:20: autotask.integration_code: gives env and value (expected exactly one of env, file or value)",
                "t.toml:6:1: mapping[0]: gives neither account_id nor account_name (expected exactly one)",
                "t.toml:7:10: mapping[0].tenant: names Security Center \"main\", which no [[security_center]] has (expected a [[security_center]] of that name; none is configured)",
                "t.toml:9:10: mapping[1].tenant: names a Business Hub company, but there is no [business_hub] (expected one)",
                "t.toml:12:10: mapping[2].tenant: names a Business Hub company, but there is no [business_hub] (expected one)",
            ]
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
