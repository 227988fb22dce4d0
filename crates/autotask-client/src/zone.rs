//! Zone discovery, URL normalisation, the per-user zone cache and the host allow-list.
//!
//! Autotask tenants live in zones (`webservices{N}.autotask.net`). The client asks
//! `GET {discovery}/v1.0/zoneInformation?user=<username>` (no credentials), normalises the
//! returned `url` to a root without trailing slash (requests then go to `{root}/V1.0/…`), and
//! caches it per (discovery URL, username) for a TTL in the client's own [`ZoneCache`]. The returned URL — and every
//! `nextPageUrl` later — is remote input: credentials are attached only to hosts on the
//! allow-list.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use url::Url;

use crate::error::Error;

/// Where zone discovery starts by default.
pub const DEFAULT_DISCOVERY_URL: &str = "https://webservices.autotask.net/atservicesrest";

/// Which hosts may receive credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPolicy {
    /// Accept `https://webservices{N}.autotask.net`, `prde.autotask.net`, `pres.autotask.net`.
    pub autotask_zones: bool,
    /// Hosts accepted exactly (any scheme): explicit base URLs, simulators, tests.
    pub extra_hosts: Vec<String>,
}

impl Default for HostPolicy {
    fn default() -> Self {
        Self { autotask_zones: true, extra_hosts: Vec::new() }
    }
}

impl HostPolicy {
    /// Whether credentials may be sent to `url`.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else { return false };
        let host = host.to_ascii_lowercase();
        if self.extra_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
            return matches!(url.scheme(), "http" | "https");
        }
        self.autotask_zones && url.scheme() == "https" && is_autotask_zone_host(&host)
    }

    /// Fails with [`Error::HostNotAllowed`] unless `url` is allowed.
    pub fn check(&self, url: &Url) -> Result<(), Error> {
        if self.allows(url) { Ok(()) } else { Err(Error::HostNotAllowed { url: url.to_string() }) }
    }
}

/// `^webservices\d*\.autotask\.net$`, `prde.autotask.net`, `pres.autotask.net`.
pub fn is_autotask_zone_host(host: &str) -> bool {
    let Some(name) = host.strip_suffix(".autotask.net") else { return false };
    if name == "prde" || name == "pres" {
        return true;
    }
    name.strip_prefix("webservices").is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Normalises a REST root: trims trailing `/` and a trailing `/V1.0` segment, and appends
/// `/ATServicesRest` when the URL has no path (`http://127.0.0.1:8080` →
/// `http://127.0.0.1:8080/ATServicesRest`). Query and fragment are dropped.
pub fn normalise_root(raw: &str) -> Result<Url, Error> {
    let mut url = Url::parse(raw.trim()).map_err(|e| Error::InvalidRequest(format!("bad url {raw:?}: {e}")))?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(Error::InvalidRequest(format!("not an http(s) url: {raw:?}")));
    }
    url.set_query(None);
    url.set_fragment(None);
    let mut path = url.path().trim_end_matches('/').to_owned();
    if path.to_ascii_lowercase().ends_with("/v1.0") {
        path.truncate(path.len() - 5);
    }
    if path.is_empty() {
        path = "/ATServicesRest".to_owned();
    }
    url.set_path(&path);
    Ok(url)
}

/// Builds `{root}/V1.0/{path}` (path may carry a query string).
pub fn endpoint(root: &Url, path: &str) -> Result<Url, Error> {
    let text = format!("{}/V1.0/{}", root.as_str().trim_end_matches('/'), path.trim_start_matches('/'));
    Url::parse(&text).map_err(|e| Error::InvalidRequest(format!("bad endpoint {path:?}: {e}")))
}

/// The zone lookup URL for a user.
pub fn zone_lookup_url(discovery: &Url, username: &str) -> Result<Url, Error> {
    let mut url = endpoint_lower(discovery, "zoneInformation")?;
    url.query_pairs_mut().append_pair("user", username);
    Ok(url)
}

fn endpoint_lower(root: &Url, path: &str) -> Result<Url, Error> {
    let text = format!("{}/v1.0/{}", root.as_str().trim_end_matches('/'), path);
    Url::parse(&text).map_err(|e| Error::InvalidRequest(format!("bad endpoint {path:?}: {e}")))
}

type ZoneKey = (String, String);

/// Discovered zone roots, keyed by (discovery URL, username), each trusted for a TTL.
///
/// Owned by a client (and its clones); hand one to several clients of the same user with
/// [`crate::ClientBuilder::zone_cache`]. There is deliberately no process-wide cache: two
/// clients that happen to see the same discovery URL (a test server on a reused port, a
/// different tenant behind the same proxy) must never see each other's answers.
#[derive(Debug, Default)]
pub struct ZoneCache {
    map: Mutex<HashMap<ZoneKey, (Url, Instant)>>,
}

impl ZoneCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ZoneKey, (Url, Instant)>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn key(discovery: &Url, username: &str) -> ZoneKey {
        (discovery.to_string(), username.to_ascii_lowercase())
    }

    /// The cached root for a user, if younger than `ttl`.
    pub fn get(&self, discovery: &Url, username: &str, ttl: Duration) -> Option<Url> {
        let map = self.lock();
        let (url, at) = map.get(&Self::key(discovery, username))?;
        (at.elapsed() < ttl).then(|| url.clone())
    }

    /// Remembers a discovered root.
    pub fn insert(&self, discovery: &Url, username: &str, root: Url) {
        self.lock().insert(Self::key(discovery, username), (root, Instant::now()));
    }

    /// Forgets a user's root (after a 401 from it).
    pub fn remove(&self, discovery: &Url, username: &str) {
        self.lock().remove(&Self::key(discovery, username));
    }

    /// Drops every cached zone (after credentials change).
    pub fn clear(&self) {
        self.lock().clear();
    }
}
