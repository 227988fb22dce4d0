//! The semantic checks: everything the types alone do not say (ranges, URLs, tenant ids,
//! secrets, files).

use std::collections::BTreeSet;
use std::path::Path;

use ticketing_core::edit::RulePatch;
use ticketing_core::model::TenantId;
use ticketing_core::rules::{Problem, RowId, RuleSet};

use super::sections::default_store_path;
use super::{Config, Sink, walk};

impl Config {
    /// Everything the types alone do not say: ranges, URLs, tenant ids, secrets, files.
    pub(super) fn semantic_problems(&self, s: &mut Sink<'_>) {
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
        }
        self.admin_access_problems(s);
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
        if kind == "halopsa" {
            match &self.halopsa {
                Some(h) => {
                    s.secret("halopsa.client_secret", &h.client_secret);
                    for (key, url) in
                        [("halopsa.base_url", Some(&h.base_url)), ("halopsa.auth_url", h.auth_url.as_ref())]
                    {
                        if let Some(reason) = url.and_then(|u| url_problem(u)) {
                            s.error(key, reason);
                        }
                    }
                    if h.client_id.trim().is_empty() {
                        s.error("halopsa.client_id", "is empty (expected the API application's client id)");
                    }
                    for (key, value) in [
                        ("halopsa.timeout_secs", h.timeout_secs),
                        ("halopsa.rate_limit_requests", h.rate_limit_requests as u64),
                        ("halopsa.rate_limit_window_secs", h.rate_limit_window_secs),
                    ] {
                        if value == 0 {
                            s.error(key, AT_LEAST_ONE);
                        }
                    }
                    for (key, field) in
                        [("halopsa.due_field", &h.due_field), ("halopsa.key_custom_field", &h.key_custom_field)]
                    {
                        if let Some(f) = field
                            && (f.is_empty() || !f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                        {
                            s.error(key, format!("is {f:?} (expected a Halo field name: letters, digits and _)"));
                        }
                    }
                }
                None => s.error("halopsa", "is missing (expected a [halopsa] section for psa.kind = \"halopsa\")"),
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

/// For a misspelled rule row (`rules.rows."security_center/event/critcal"`), the message with
/// the row it is close to.
pub(super) fn rule_row_suggestion(path: &[walk::Seg]) -> Option<String> {
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
