//! What a reload may not change, as one value: [`FixedConfig`].
//!
//! The reloader compares the fixed part of the running configuration with the new file's as a
//! whole ([`FixedConfig::changed_keys`]), so a key cannot slip through by being forgotten in a
//! hand-written list of comparisons: the comparison walks the serialised values, and a field
//! added to a fixed section (the whole of `[ha]`, say) is compared without further code.

use std::collections::BTreeSet;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{Config, HaConfig, SecretRef, walk};

/// Everything of a configuration that needs a restart to change: the store's location and
/// credentials, the admin listener and its token, the log format and the whole `[ha]` section.
/// The rest (mapping, sources, polling, PSA settings, the log filter, `admin.metrics_auth`) a
/// reload applies while the daemon runs.
///
/// Secrets are held as [`SecretDigest`]s, never as values: neither `Debug` nor the serialised
/// form (nor [`FixedConfig::changed_keys`]) can show one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixedConfig {
    /// `[store]`: where the ledger lives.
    pub store: FixedStore,
    /// `[admin]`: the listener and its token (not `metrics_auth`, which a reload applies).
    pub admin: FixedAdmin,
    /// `[logging]`: the format (not the filter, which a reload applies).
    pub logging: FixedLogging,
    /// `[ha]`, the whole section: the lease's timing and this instance's name.
    pub ha: HaConfig,
}

/// The fixed part of `[store]` (all of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixedStore {
    /// `store.path`, the SQLite file.
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    /// `store.url`, the PostgreSQL database (it never holds a password: `check` refuses one).
    pub url: Option<String>,
    /// `store.password`.
    pub password: Option<SecretDigest>,
}

/// The fixed part of `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixedAdmin {
    /// `admin.listen`.
    pub listen: SocketAddr,
    /// `admin.token`.
    pub token: Option<SecretDigest>,
    /// `admin.session_idle_minutes`.
    pub session_idle_minutes: u64,
    /// `admin.tls_cert` (the file's content is re-read on `SIGHUP`; its path is fixed).
    #[serde(serialize_with = "lossy_opt_path")]
    pub tls_cert: Option<PathBuf>,
    /// `admin.tls_key`.
    #[serde(serialize_with = "lossy_opt_path")]
    pub tls_key: Option<PathBuf>,
    /// `admin.allow_plain_http`.
    pub allow_plain_http: bool,
    /// `admin.trusted_proxies`.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// `admin.login_max_failures`.
    pub login_max_failures: u32,
    /// `admin.login_failure_window_secs`.
    pub login_failure_window_secs: u64,
    /// `admin.login_lockout_secs`.
    pub login_lockout_secs: u64,
    /// `admin.client_requests_per_minute`.
    pub client_requests_per_minute: u32,
    /// `admin.client_burst`.
    pub client_burst: u32,
    /// `admin.global_requests_per_minute`.
    pub global_requests_per_minute: u32,
    /// `admin.global_burst`.
    pub global_burst: u32,
}

fn lossy_opt_path<S: Serializer>(path: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match path {
        Some(p) => lossy_path(p, s),
        None => s.serialize_none(),
    }
}

/// The fixed part of `[logging]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixedLogging {
    /// `logging.format`.
    pub format: String,
}

/// A secret of the fixed part, known by what it resolves to, never by its value: a digest of
/// the value, keyed with a random key of this process (so the digest means nothing outside it
/// and cannot be checked against guesses elsewhere). Two references that resolve to the same
/// value (an inline value, then the same value from a file) are the same secret; a secret that
/// cannot be read is known by its reference (`env NAME`, `file PATH`).
///
/// `Debug` shows `***` (or the reference of an unreadable one); the serialised form is the
/// digest or the reference.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretDigest(Digest);

#[derive(Clone, PartialEq, Eq)]
enum Digest {
    /// The keyed digest of the value.
    Value(u64),
    /// The secret cannot be read now: where it is to come from.
    Unresolved(String),
}

impl SecretDigest {
    /// Resolves `secret` (reads its variable or file once) and keeps only its digest.
    pub fn of(secret: &SecretRef) -> Self {
        static KEY: OnceLock<RandomState> = OnceLock::new();
        match secret.resolve() {
            Ok(value) => Self(Digest::Value(KEY.get_or_init(RandomState::new).hash_one(value.expose()))),
            Err(_) => Self(Digest::Unresolved(reference(secret))),
        }
    }
}

/// Where a secret comes from, by name (`env NAME`, `file PATH`, `value`), never its value.
fn reference(s: &SecretRef) -> String {
    let mut parts = Vec::new();
    if let Some(var) = &s.env {
        parts.push(format!("env {var}"));
    }
    if let Some(file) = &s.file {
        parts.push(format!("file {}", file.display()));
    }
    if s.value.is_some() {
        parts.push("value".to_owned());
    }
    if parts.is_empty() { "none".to_owned() } else { parts.join(" and ") }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Digest::Value(_) => f.write_str("SecretDigest(***)"),
            Digest::Unresolved(r) => write!(f, "SecretDigest(unreadable: {r})"),
        }
    }
}

impl Serialize for SecretDigest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Digest::Value(d) => s.serialize_str(&format!("digest {d:016x}")),
            Digest::Unresolved(r) => s.serialize_str(&format!("unreadable: {r}")),
        }
    }
}

/// A path as text (a configured path came from the TOML file, so it is UTF-8).
fn lossy_path<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

impl Config {
    /// The part of this configuration that needs a restart to change. Reads each fixed secret
    /// (`store.password`, `admin.token`) once, to keep its [`SecretDigest`].
    pub fn fixed(&self) -> FixedConfig {
        FixedConfig {
            store: FixedStore {
                path: self.store.path.clone(),
                url: self.store.url.clone(),
                password: self.store.password.as_ref().map(SecretDigest::of),
            },
            admin: FixedAdmin {
                listen: self.admin.listen,
                token: self.admin.token.as_ref().map(SecretDigest::of),
                session_idle_minutes: self.admin.session_idle_minutes,
                tls_cert: self.admin.tls_cert.clone(),
                tls_key: self.admin.tls_key.clone(),
                allow_plain_http: self.admin.allow_plain_http,
                trusted_proxies: self.admin.trusted_proxies.clone(),
                login_max_failures: self.admin.login_max_failures,
                login_failure_window_secs: self.admin.login_failure_window_secs,
                login_lockout_secs: self.admin.login_lockout_secs,
                client_requests_per_minute: self.admin.client_requests_per_minute,
                client_burst: self.admin.client_burst,
                global_requests_per_minute: self.admin.global_requests_per_minute,
                global_burst: self.admin.global_burst,
            },
            logging: FixedLogging { format: self.logging.format.clone() },
            ha: self.ha.clone(),
        }
    }
}

impl FixedConfig {
    /// Every key whose value differs between `self` and `other`, as a dotted path
    /// (`ha.lease_secs`, `store.url`, `admin.token`), sorted; empty when a reload may go ahead.
    ///
    /// Computed from the serialised values, so every field of every fixed section is compared,
    /// including fields added later. Only key paths are returned, never values.
    pub fn changed_keys(&self, other: &Self) -> Vec<String> {
        let mut out = Vec::new();
        diff(&as_value(self), &as_value(other), &mut Vec::new(), &mut out);
        out
    }
}

/// `fixed` as JSON. Its fields are strings, numbers, options and structs, which always
/// serialise.
fn as_value(fixed: &FixedConfig) -> Value {
    serde_json::to_value(fixed).expect("the fixed configuration serialises")
}

/// Pushes the path of every leaf where `a` and `b` differ (a table present on one side only
/// counts as one changed key).
fn diff(a: &Value, b: &Value, path: &mut Vec<walk::Seg>, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                path.push(walk::Seg::Key(key.clone()));
                diff(x.get(key).unwrap_or(&Value::Null), y.get(key).unwrap_or(&Value::Null), path, out);
                path.pop();
            }
        }
        _ if a != b => out.push(walk::display_path(path)),
        _ => {}
    }
}
