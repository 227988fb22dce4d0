//! What the engine is told by whoever runs it: the HA lease's timing ([`HaConfig`]), how often
//! and how widely it reads and delivers ([`PollingConfig`]), and which tenant goes to which PSA
//! account ([`MappingEntry`]). Each deserialises from TOML/JSON with its defaults (the daemon's
//! `[ha]`, `[polling]` and `[[mapping]]` sections are these types), and an embedder can build
//! them in code.

use serde::Deserialize;

/// `[ha]`: several daemons on one store take turns as leader. Only the leader polls sources and
/// writes to the PSA; standbys serve the admin API and UI and take over when the leader's lease
/// runs out. Defaults replace a killed leader within about 12 s.
///
/// The whole section needs a restart to change (the daemon's fixed configuration), so it is
/// `Serialize`: a field added here is compared on reload without further code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
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
