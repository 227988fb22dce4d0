//! `msp-ticketd check`: every problem of the configuration file at once, each placed at its
//! line, column and key ([`Config::diagnose_file`]); then, unless `--offline`, the live
//! services: the rules against the PSA catalog, the mapping against the PSA accounts, and each
//! source's reachability. The probes run in parallel, each bounded by [`PROBE_TIMEOUT`], so a
//! hung service costs one timeout, not one per call.
//!
//! `check` answers in the format the file asks for (`logging.format = "json"`: one JSON object
//! per problem), and never prints a value of the file: problems name keys, variables and files.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use futures::future::join_all;
use ticketing_core::model::TenantId;

use crate::config::{Config, ConfigProblem, Diagnosis, Severity};
use crate::store::{SqliteStore, Store};
use crate::wiring;

/// How long each live probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The file alone: no network, no store.
    pub offline: bool,
    /// How long each live probe may take.
    pub probe_timeout: Duration,
}

impl Options {
    /// The file, then the live services with [`PROBE_TIMEOUT`] (or the file alone).
    pub fn new(offline: bool) -> Self {
        Self { offline, probe_timeout: PROBE_TIMEOUT }
    }
}

/// What `check` found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The file, as given.
    pub file: String,
    /// Every problem: the file's, sorted by place, then the live services'.
    pub problems: Vec<ConfigProblem>,
    /// Whether the file asks for JSON (`logging.format = "json"`).
    pub json: bool,
}

impl Report {
    /// Whether any problem is an error (warnings alone pass).
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(ConfigProblem::is_error)
    }

    /// The output: one line per problem (`FILE:LINE:COL: key: reason`, or one JSON object
    /// each), then, for humans, a count or `FILE: ok`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.json {
            for p in &self.problems {
                let object = serde_json::json!({
                    "file": p.file,
                    "line": p.line,
                    "col": p.col,
                    "key": p.key,
                    "message": p.reason,
                    "severity": p.severity.as_str(),
                });
                let _ = writeln!(out, "{object}");
            }
            return out;
        }
        for p in &self.problems {
            let _ = writeln!(out, "{p}");
        }
        let errors = self.problems.iter().filter(|p| p.is_error()).count();
        let warnings = self.problems.len() - errors;
        if self.problems.is_empty() {
            let _ = writeln!(out, "{}: ok", self.file);
        } else {
            let _ = writeln!(out, "{errors} error(s), {warnings} warning(s)");
        }
        out
    }
}

/// Checks the file at `path`, then (unless `options.offline`, and only when the file has no
/// errors) the live services.
pub async fn check(path: &Path, options: &Options) -> Report {
    let diagnosis = Config::diagnose_file(path);
    let json = diagnosis.log_format() == Some("json");
    let mut problems = diagnosis.problems.clone();
    if let (false, Some(config)) = (options.offline, &diagnosis.config) {
        problems.extend(probe(config, &diagnosis, options.probe_timeout).await);
    }
    Report { file: path.display().to_string(), problems, json }
}

/// The live probes, all at once, each bounded by `timeout`.
async fn probe(config: &Config, diagnosis: &Diagnosis, timeout: Duration) -> Vec<ConfigProblem> {
    let error = |key: &str, reason: String| diagnosis.problem(key, reason, Severity::Error);
    let wired = match wiring::wire(config) {
        Ok(w) => w,
        Err(e) => return vec![error("(adapters)", format!("cannot set up the adapters: {e:#}"))],
    };
    let late = || format!("did not answer within {} s", timeout.as_secs());
    let psa = wired.psa.section;
    // The rules the daemon would apply: the store's when it has some (never creating a store
    // just to look), else the file's.
    let path = &config.store.path;
    let stored = path.exists().then(|| SqliteStore::open(path).ok().and_then(|s| s.rulebook().ok().flatten()));
    let rules = match stored.flatten() {
        Some((book, _)) => book.saved,
        None => config.rules.to_rule_set(),
    };
    let events = join_all(
        wired
            .events
            .iter()
            .map(|s| async move { (s.name.as_str(), tokio::time::timeout(timeout, s.source.tenants()).await) }),
    );
    let statuses = join_all(
        wired
            .statuses
            .iter()
            .map(|s| async move { (s.name.as_str(), tokio::time::timeout(timeout, s.source.tenants()).await) }),
    );
    let (catalog, accounts, events, statuses) = tokio::join!(
        tokio::time::timeout(timeout, wired.sink.catalog()),
        tokio::time::timeout(timeout, wired.sink.accounts()),
        events,
        statuses,
    );

    let mut out = Vec::new();
    match catalog {
        Ok(Ok(catalog)) => {
            for e in rules.validate(&catalog) {
                let key = match &e.row {
                    Some(row) => format!("rules.rows.\"{row}\".{}", e.field.name()),
                    None => format!("rules.general.{}", e.field.name()),
                };
                out.push(error(&key, e.to_string()));
            }
        }
        Ok(Err(e)) => out.push(error(psa, format!("cannot read the ticket catalog: {e}"))),
        Err(_) => out.push(error(psa, format!("cannot read the ticket catalog: {}", late()))),
    }
    let accounts = match accounts {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            out.push(error(psa, format!("cannot read accounts: {e}")));
            Vec::new()
        }
        Err(_) => {
            out.push(error(psa, format!("cannot read accounts: {}", late())));
            Vec::new()
        }
    };
    let mut listed: Vec<TenantId> = Vec::new();
    let mut empty: Vec<String> = Vec::new();
    for (name, result) in events.into_iter().chain(statuses) {
        let key = source_key(config, name);
        match result {
            // Reached, with nothing to read yet (a fresh setup): said, not a failure (issue #32).
            Ok(Ok(tenants)) if tenants.is_empty() => {
                if !empty.contains(&key) {
                    out.push(diagnosis.problem(
                        &key,
                        format!("reached, no tenants yet: source {name} lists no customer to read (nothing to ticket until one exists)"),
                        Severity::Warning,
                    ));
                    empty.push(key);
                }
            }
            Ok(Ok(tenants)) => listed.extend(tenants.into_iter().map(|t| t.id)),
            Ok(Err(e)) => out.push(error(&key, format!("cannot reach the source {name}: {e}"))),
            Err(_) => out.push(error(&key, format!("cannot reach the source {name}: {}", late()))),
        }
    }
    for (i, m) in config.mapping.iter().enumerate() {
        let key = format!("mapping[{i}]");
        if !accounts.is_empty() {
            match m.account_in(&accounts) {
                None => out.push(error(&key, "names no account of the PSA (expected an existing account)".to_owned())),
                Some(a) if !a.active => out.push(error(
                    &key,
                    format!(
                        "names account {} ({}), which is inactive: it gets no tickets (expected an active account)",
                        a.name, a.id
                    ),
                )),
                Some(_) => {}
            }
        }
        if !listed.is_empty() && !listed.iter().any(|t| t.as_str() == m.tenant) {
            out.push(error(
                &format!("{key}.tenant"),
                "is listed by no source (expected a tenant a source lists)".to_owned(),
            ));
        }
    }
    let _ = tokio::time::timeout(timeout, wired.shutdown()).await;
    // Events and statuses of one server share a connection: say each failure once.
    let mut seen = BTreeSet::new();
    out.retain(|p| seen.insert((p.key.clone(), p.reason.clone())));
    out
}

/// The config key of a wired source (`ksc:main/events` → `security_center[0]`).
fn source_key(config: &Config, source: &str) -> String {
    if let Some(name) = source.strip_prefix("ksc:").and_then(|rest| rest.rsplit_once('/')).map(|(name, _)| name) {
        if let Some(i) = config.security_center.iter().position(|k| k.name == name) {
            return format!("security_center[{i}]");
        }
    }
    if source.starts_with("kbh/") {
        return "business_hub".to_owned();
    }
    source.to_owned()
}
