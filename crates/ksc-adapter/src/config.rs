//! Connection and behaviour settings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ticketing_core::model::{Severity, StatusLevel};
use ticketing_core::secret::Secret;

/// Default of [`KscConfig::group_masks_ttl`]: a group's level change is seen within 5 minutes.
pub const DEFAULT_GROUP_MASKS_TTL: Duration = Duration::from_secs(300);

/// The Open API's default port.
pub const DEFAULT_PORT: u16 = 13299;

/// How the server's certificate is checked.
#[derive(Debug, Clone, Default)]
pub enum TlsVerification {
    /// Verify against the built-in web roots (the default).
    #[default]
    System,
    /// A PEM file (`ca_file`): its certificates are **pinned** (the server may present exactly
    /// one of them, `CA:TRUE` or not, as a Security Center server's self-signed `klserver.cer`
    /// usually is), and also trusted as CAs on top of the built-in roots (so a real CA bundle
    /// keeps working).
    CaFile(PathBuf),
    /// Same, with the PEM bytes given directly.
    CaPem(Vec<u8>),
    /// Do not verify the certificate at all. Explicit opt-in; logs a warning when the client
    /// is built.
    Disabled,
}

/// Retry policy for transient failures of read calls: exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included (1 = no retries).
    pub max_attempts: u32,
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of one wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 4, initial_backoff: Duration::from_millis(500), max_backoff: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub const NONE: Self = Self { max_attempts: 1, initial_backoff: Duration::ZERO, max_backoff: Duration::ZERO };

    /// The wait before retry number `retry` (1-based), without jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Where a status description's level (Critical or Warning section) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LevelSource {
    /// Read the group's `KLSRV_HSTSTAT_CRITICAL` / `KLSRV_HSTSTAT_WARNING` masks with
    /// `HostGroup.GetGroupInfoEx`; fall back to the defaults when they cannot be read.
    #[default]
    GroupMasks,
    /// Only the defaults (catalogue `default_level`, then [`KscConfig::level_overrides`]).
    Defaults,
}

/// Which hosts a status snapshot reads (see [`crate::known`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostSearch {
    /// Only hosts whose status is not OK (`KLHST_WKS_STATUS_ID<>0` added to
    /// [`KscConfig::host_filter`]); a host read as not OK and absent from a later search is
    /// handed on as OK under its remembered name. The first snapshot of a virtual server after
    /// a start reads every host. An OK host has no active description, so the decisions are
    /// the same as with [`HostSearch::All`]; the cost of a pass follows the problems, not the
    /// computers.
    #[default]
    Problems,
    /// Every host, in every snapshot.
    All,
}

/// Everything the adapter needs to know. Build it with [`KscConfig::new`] and adjust the
/// public fields.
#[derive(Debug, Clone)]
pub struct KscConfig {
    /// Base URL, e.g. `https://ksc.example.net:13299` (the `/api/v1.0/` prefix is added).
    pub base_url: String,
    /// Label of this Administration Server in tenant ids (`ksc:<label>/vs:<id>`).
    pub server_label: String,
    /// Account name.
    pub user: String,
    /// Account password.
    pub password: Secret,
    /// Certificate checking.
    pub tls: TlsVerification,
    /// `cert_sha256`: pin the server certificate by its SHA-256 fingerprint (hex, colons
    /// optional, case-insensitive), in addition to what [`KscConfig::tls`] accepts.
    pub cert_sha256: Option<String>,
    /// `accept_invalid_hostnames`: accept a (pinned or CA-signed) certificate whose names do not
    /// match the URL's host. Off by default; the client logs a warning when it is on.
    pub accept_invalid_hostnames: bool,
    /// Timeout of one HTTP request, answer included (`security_center[].timeout_secs`).
    pub request_timeout: Duration,
    /// Timeout of establishing a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Retries of read calls.
    pub retry: RetryPolicy,
    /// Whether the main server (virtual server 0) is a tenant too.
    pub include_main_server: bool,
    /// Records per `EventProcessing.GetRecordRange` (at most [`crate::events::MAX_PAGE`]).
    pub event_page_size: usize,
    /// Only for cursors of the earlier `rise_time` form (see [`crate::events`] on the
    /// migration): how far before that cursor's instant its one migration read starts. The
    /// `dbid:` cursor needs no overlap.
    pub event_overlap: Duration,
    /// Without a cursor and without a `window_start` from the caller, how far back the first
    /// poll reaches (`None`: from the beginning).
    pub initial_lookback: Option<Duration>,
    /// `lifetimeSec` of an event iterator.
    pub event_iterator_lifetime: Duration,
    /// Which severities are returned (the others are skipped, the cursor still moves on).
    pub severities: Vec<Severity>,
    /// `wstrFilter` of `HostGroup.FindHosts`; must select every host of the virtual server
    /// (with [`HostSearch::Problems`], the adapter adds the status condition itself).
    pub host_filter: String,
    /// Which hosts a snapshot reads: only those not OK (the default), or all.
    pub host_search: HostSearch,
    /// Hosts per `ChunkAccessor.GetItemsChunk`.
    pub host_chunk_size: usize,
    /// `lMaxLifeTime` of a host search, at most 7200 s.
    pub host_accessor_lifetime: Duration,
    /// Where description levels come from.
    pub level_source: LevelSource,
    /// Levels overriding the catalogue's `default_level`, by `KLHST_WKS_STATUS_MASK` bit.
    pub level_overrides: BTreeMap<u32, StatusLevel>,
    /// How long a group's Critical/Warning masks (`HostGroup.GetGroupInfoEx`) are reused, per
    /// virtual server and group, across status snapshots. This is the bound on how late a
    /// change of a group's levels is seen: a snapshot taken more than this after the masks
    /// were read reads them again. `Duration::ZERO`: read once per snapshot (as before #29).
    pub group_masks_ttl: Duration,
    /// Events by subscription (`ConEvents.Subscribe` / `Retrieve`, see [`crate::subscription`]):
    /// an idle poll asks the server's queue (one call, none within the server's polling
    /// period) instead of scanning by `event_db_id`. The scan stays the source of every event
    /// handed on; a lost subscription is made again and the cursor scan catches up. Off by
    /// default: which `wstrEvent` names a real server publishes is not in its public
    /// reference (modelled in `ksc-sim`).
    pub events_subscription: bool,
    /// `wstrEvent` of the subscription (`*`: every stored event, as `ksc-sim` models it).
    pub events_subscription_event: String,
    /// With [`KscConfig::events_subscription`]: the longest a tenant goes without an
    /// `event_db_id` scan however quiet its subscription is, so a server that publishes
    /// nothing for the subscribed name delays events by at most this, never loses them.
    pub events_rescan: Duration,
}

impl KscConfig {
    /// A configuration with the documented defaults: TLS verified, 30 s requests, main server
    /// included, pages of 500 events, 60 s overlap, chunks of 500 hosts.
    pub fn new(base_url: impl Into<String>, user: impl Into<String>, password: Secret) -> Self {
        Self {
            base_url: base_url.into(),
            server_label: "main".to_owned(),
            user: user.into(),
            password,
            tls: TlsVerification::System,
            cert_sha256: None,
            accept_invalid_hostnames: false,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            include_main_server: true,
            event_page_size: 500,
            event_overlap: Duration::from_secs(60),
            initial_lookback: None,
            event_iterator_lifetime: Duration::from_secs(120),
            severities: Severity::ALL.to_vec(),
            host_filter: "(KLHST_WKS_HOSTNAME=\"*\")".to_owned(),
            host_search: HostSearch::Problems,
            host_chunk_size: 500,
            host_accessor_lifetime: Duration::from_secs(600),
            level_source: LevelSource::GroupMasks,
            level_overrides: BTreeMap::new(),
            group_masks_ttl: DEFAULT_GROUP_MASKS_TTL,
            events_subscription: false,
            events_subscription_event: "*".to_owned(),
            events_rescan: Duration::from_secs(300),
        }
    }

    /// Sets [`KscConfig::request_timeout`].
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`KscConfig::connect_timeout`].
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`KscConfig::tls`].
    #[must_use]
    pub fn with_tls(mut self, tls: TlsVerification) -> Self {
        self.tls = tls;
        self
    }

    /// Sets [`KscConfig::cert_sha256`].
    #[must_use]
    pub fn with_cert_sha256(mut self, fingerprint: impl Into<String>) -> Self {
        self.cert_sha256 = Some(fingerprint.into());
        self
    }

    /// Sets [`KscConfig::accept_invalid_hostnames`].
    #[must_use]
    pub fn with_accept_invalid_hostnames(mut self, accept: bool) -> Self {
        self.accept_invalid_hostnames = accept;
        self
    }
}
