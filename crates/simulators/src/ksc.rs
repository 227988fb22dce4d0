//! Kaspersky Security Center (KSC) Open API simulator.
//!
//! Implements the wire rules of `docs/protocols/security-center.md` (from `ksc-api.md` §9 and
//! §10): `POST /api/v1.0/Class.Method` with JSON bodies; two login paths, `Session.StartSession`
//! (then `X-KSC-Session` on every call) and `POST /api/v1.0/login` (then a session cookie),
//! both with `Authorization: KSCBasic ...` or `KSCT <token>` and `X-KSC-VServer: <b64(display
//! name)>`; the `PxgRetVal` / `PxgError` envelope and typed values, virtual servers, event
//! iterators, host searches with chunk accessors, and per-virtual-server Critical/Warning
//! status masks, and `ConEvents` subscriptions (`Subscribe` / `Retrieve` / `UnSubscribe`: a
//! queue per subscription, owned by its session, `STDE_UNAVAIL` when polled faster than
//! [`Config::con_events_period`]; see the `conevents` module). Plain HTTP by default; HTTPS with a generated self-signed certificate
//! through [`start_tls`] (`--tls`).
//!
//! | Situation | Answer |
//! |---|---|
//! | bad or missing credentials (`KSCBasic`, `KSCT`) at `Session.StartSession` or `login` | 401, plain text `Authentication failed` |
//! | `X-KSC-VServer` naming no virtual server | 401, plain text `Unknown virtual server` (stricter than a real server, which may fall back to the main server) |
//! | unknown, ended or idle-expired session (`session_idle`), by header or cookie | 403, plain text `Forbidden` |
//! | `/login` | 200 and the session cookie `KSC_SESSION` (`HttpOnly; SameSite=Strict`, plus `Secure` only when serving HTTPS: a cookie store never sends a `Secure` cookie over plain HTTP) |
//! | API-level failure (bad arguments, unknown iterator, unsupported filter, unknown method, `GetRecordRange` with `nEnd - nStart >= 65536`) | 500, `{"PxgError":{"code","module","message","file","line"}}` |
//!
//! Event iterators expire after `lifetimeSec` idle, host accessors after `lMaxLifeTime`
//! (≤ 7200) idle, both on the simulated clock (`POST /_sim/clock`); ending a session drops them.
//! Events are stored in arrival order: each seeded event gets the next, higher 64-bit
//! `event_db_id`, whatever its `occurred_at`. NULL fields (no host, no description, no task)
//! are left out of a record.
//!
//! # Control routes (no credentials)
//!
//! | Route | Body | Effect |
//! |---|---|---|
//! | `POST /_sim/vservers` | `{"id","name","critical"?:[codes],"warning"?:[codes]}` | creates or renames a virtual server (id 0 = main server, masks only); the optional lists set its status masks |
//! | `POST /_sim/events` | `{"vserver","severity","event_type","host"?,"occurred_at"?,"text"?,"display_name"?,"params"?:[..],"task"?,"event_db_id"?}` | records an event, answers `{"id": <event_db_id>}`; 400 naming the field when `display_name` > 100, `text` > 1000 or a `params` item > 512 characters, or when `event_db_id` is not above the last one |
//! | `PUT /_sim/hosts/{vserver}/{host}` | `{"status"?,"name"?,"descriptions":[codes],"wks_status"?,"antivirus_not_needed"?,"rtp_state"?}` | creates or updates a host: mask from the codes (`unknown:<bit>` sets a raw bit), status from the masks when omitted; answers the mask and `unknown_bits` (set bits without a known description) |
//! | `DELETE /_sim/hosts/{vserver}/{host}` | none | removes a host |
//! | `GET /_sim/calls` | none | the API calls answered since start or reset, by method: `{"Class.Method": n, ..}` |
//! | `POST /_sim/subscriptions/drop` | none | drops every `ConEvents` subscription (a server restart), sessions stay; answers `{"dropped": n}` |
//! | `POST /_sim/reset`, `GET /_sim/requests`, `POST /_sim/faults`, `POST /_sim/clock` | | common ([`crate::common`]) |
//!
//! `severity` is `critical|functional_failure|warning|info|invalid` or the number
//! (`GNRL_EA_SEVERITY` 4, 3, 2, 1, 0); `status` is `ok|warning|critical` (`KLHST_WKS_STATUS_ID`
//! 0, 2, 1). `wks_status` is `KLHST_WKS_STATUS` (default 29, see [`wks_status`]); with bit
//! 0x200 (antivirus not needed, or `antivirus_not_needed: true`) mask bit 5 "security
//! application not installed" is never set. `rtp_state` is `KLHST_WKS_RTP_STATE`, 0..=9 or a
//! name of [`RTP_STATES`] (default 4, running). A host's `KLHST_WKS_HOSTNAME` is the `{host}`
//! path segment, its `KLHST_WKS_DN` the `name` (default: the same), its `KLHST_WKS_GROUPID` the
//! virtual server's managed-computers group (main server 0, virtual server N: 1000 + N).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use rand::Rng as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::common::{self, SimCore, SimHandle, lock};

/// Name of the session cookie `POST /api/v1.0/login` sets (modelled: the real name is not
/// in the public sources).
pub const SESSION_COOKIE: &str = "KSC_SESSION";
/// How long a `Session.CreateToken` token is usable (`ksc-api.md` §1: 3 minutes by default).
pub const TOKEN_LIFETIME_SECS: i64 = 180;

/// `GetRecordRange` refuses `nEnd - nStart` at or above this (`0 <= nEnd - nStart < 65536`).
pub const MAX_RANGE: i64 = 65_536;
/// Longest `event_type_display_name` the server stores (characters).
pub const MAX_DISPLAY_NAME: usize = 100;
/// Longest `GNRL_EA_DESCRIPTION` (characters).
pub const MAX_DESCRIPTION: usize = 1000;
/// Longest `GNRL_EA_PARAM_n` (characters).
pub const MAX_PARAM: usize = 512;

/// Default account name.
pub const DEFAULT_USER: &str = "ksc-admin";
/// Default password.
pub const DEFAULT_PASSWORD: &str = "ksc-secret";
/// Default idle lifetime of a session, in seconds.
pub const DEFAULT_SESSION_IDLE_SECS: u64 = 1800;

/// Default `nPeriod` of `ConEvents`, milliseconds (modelled).
pub const DEFAULT_CON_EVENTS_PERIOD_MS: u64 = 1000;

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Accepted account name (`--user`).
    pub user: String,
    /// Accepted password (`--password`).
    pub password: String,
    /// A session unused this long is gone (`--session-idle-secs`).
    pub session_idle: Duration,
    /// The polling period `ConEvents.Subscribe` and `ConEvents.Retrieve` return (`nPeriod`);
    /// a `Retrieve` sooner than this after the session's last one answers `STDE_UNAVAIL`
    /// (`--con-events-period-ms`).
    pub con_events_period: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            user: DEFAULT_USER.to_owned(),
            password: DEFAULT_PASSWORD.to_owned(),
            session_idle: Duration::from_secs(DEFAULT_SESSION_IDLE_SECS),
            con_events_period: Duration::from_millis(DEFAULT_CON_EVENTS_PERIOD_MS),
        }
    }
}

/// The status descriptions the simulator knows: (code, `KLHST_WKS_STATUS_MASK` bit, default
/// level is Critical), from `status-descriptions.md`.
pub const DESCRIPTIONS: [(&str, u32, bool); 20] = [
    ("network_agent_inactive", 0, false),
    ("realtime_protection_not_running", 1, true),
    ("security_application_not_running", 2, true),
    ("many_viruses_detected", 3, false),
    ("realtime_protection_level_differs", 4, false),
    ("security_application_not_installed", 5, true),
    ("full_scan_too_long_ago", 6, false),
    ("databases_out_of_date", 7, false),
    ("not_connected_too_long", 8, false),
    ("license_expired", 9, true),
    ("too_many_untreated_threats", 10, true),
    ("restart_required", 11, false),
    ("incompatible_applications", 12, false),
    ("vulnerabilities_detected", 13, false),
    ("os_updates_search_too_long_ago", 14, false),
    ("invalid_encryption_status", 15, false),
    ("mobile_policy_not_met", 16, false),
    ("unprocessed_incidents", 17, false),
    ("status_set_by_application", 18, false),
    ("out_of_disk_space", 19, false),
];

/// The default (Critical, Warning) masks: each description at its default level.
pub fn default_masks() -> (u64, u64) {
    DESCRIPTIONS.iter().fold(
        (0, 0),
        |(c, w), (_, bit, critical)| {
            if *critical { (c | 1 << bit, w) } else { (c, w | 1 << bit) }
        },
    )
}

/// The mask bit of a description code (`unknown:<bit>` for raw bits).
pub fn description_bit(code: &str) -> Option<u32> {
    if let Some(bit) = code.strip_prefix("unknown:") {
        return bit.parse().ok().filter(|b| *b < 64);
    }
    DESCRIPTIONS.iter().find(|(c, _, _)| *c == code).map(|(_, b, _)| *b)
}

#[derive(Debug, Clone)]
struct VServerRec {
    id: i64,
    name: String,
    critical_mask: u64,
    warning_mask: u64,
    created: DateTime<Utc>,
}

impl VServerRec {
    fn group(&self) -> i64 {
        if self.id == 0 { 0 } else { 1000 + self.id }
    }

    fn to_params(&self) -> Value {
        json!({
            "KLVSRV_ID": self.id,
            "KLVSRV_DN": self.name,
            "KLVSRV_UID": format!("VSRV{:08x}-0000-4000-8000-{:012x}", self.id, self.id),
            "KLVSRV_HST_UID": format!("VSRV{:08x}-0000-4000-8000-{:012x}", self.id, self.id),
            "KLVSRV_GRP": 0,
            "KLVSRV_GROUPS": self.group(),
            "KLVSRV_SUPER": self.group() + 1,
            "KLVSRV_UNASSIGNED": self.group() + 2,
            "KLVSRV_ENABLED": true,
            "KLVSRV_LIC_ENABLED": true,
            "KLVSRV_CREATED": datetime(self.created),
        })
    }
}

/// A host, stored under its (virtual server, host id) key.
#[derive(Debug, Clone)]
struct HostRec {
    hostname: String,
    name: String,
    status: i64,
    mask: u64,
    group: i64,
    last_visible: DateTime<Utc>,
    wks_status: i64,
    rtp_state: i64,
}

/// `KLHST_WKS_STATUS` bits (`ksc-api.md` §10).
pub mod wks_status {
    /// Visible in the network.
    pub const VISIBLE: i64 = 0x1;
    /// Added to an administration group.
    pub const IN_GROUP: i64 = 0x2;
    /// Network Agent installed.
    pub const AGENT_INSTALLED: i64 = 0x4;
    /// Network Agent alive.
    pub const AGENT_ALIVE: i64 = 0x8;
    /// Real-time protection installed.
    pub const RTP_INSTALLED: i64 = 0x10;
    /// Temporarily switched by an NLA profile.
    pub const NLA_SWITCHED: i64 = 0x20;
    /// A cluster.
    pub const CLUSTER: i64 = 0x40;
    /// An appliance.
    pub const APPLIANCE: i64 = 0x80;
    /// Heartbeat pending.
    pub const HEARTBEAT_PENDING: i64 = 0x100;
    /// Antivirus not needed: such a computer never has "antivirus not installed" (mask
    /// bit 5) as a problem.
    pub const ANTIVIRUS_NOT_NEEDED: i64 = 0x200;
    /// The default of a seeded host: visible, agent installed and alive, protection
    /// installed (29, as in the public `FindHosts` sample).
    pub const DEFAULT: i64 = VISIBLE | AGENT_INSTALLED | AGENT_ALIVE | RTP_INSTALLED;
}

/// `KLHST_WKS_RTP_STATE` values 0..=9: unknown, stopped, suspended, starting, running,
/// running with maximum protection, running for maximum performance, running with
/// recommended settings, running with custom settings, failure.
pub const RTP_STATES: [&str; 10] = [
    "unknown",
    "stopped",
    "suspended",
    "starting",
    "running",
    "running_max_protection",
    "running_max_performance",
    "running_recommended",
    "running_custom",
    "failure",
];

/// Mask bit of "security application not installed" (never set with
/// [`wks_status::ANTIVIRUS_NOT_NEEDED`]).
const BIT_AV_NOT_INSTALLED: u32 = 5;

impl HostRec {
    fn to_params(&self) -> Map<String, Value> {
        let mask =
            if self.mask <= i32::MAX as u64 { json!(self.mask) } else { json!({"type": "long", "value": self.mask}) };
        let mut m = Map::new();
        m.insert("KLHST_WKS_HOSTNAME".into(), json!(self.hostname));
        m.insert("KLHST_WKS_DN".into(), json!(self.name));
        m.insert("KLHST_WKS_STATUS_ID".into(), json!(self.status));
        m.insert("KLHST_WKS_STATUS_MASK".into(), mask);
        m.insert("KLHST_WKS_GROUPID".into(), json!(self.group));
        m.insert("KLHST_WKS_LAST_VISIBLE".into(), datetime(self.last_visible));
        m.insert("KLHST_WKS_STATUS".into(), json!(self.wks_status));
        m.insert("KLHST_WKS_RTP_STATE".into(), json!(self.rtp_state));
        m
    }
}

#[derive(Debug, Clone)]
struct EventRec {
    id: i64,
    vserver: i64,
    severity: i64,
    event_type: String,
    display_name: String,
    hostname: Option<String>,
    hostdn: Option<String>,
    rise_time: DateTime<Utc>,
    registered: DateTime<Utc>,
    text: Option<String>,
    params: Vec<String>,
    task: Option<String>,
}

impl EventRec {
    /// The record; NULL fields (no host, no description, no task) are left out, as the
    /// server does (`ksc-api.md` §10).
    fn to_params(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("event_db_id".into(), json!({"type": "long", "value": self.id}));
        m.insert("rise_time".into(), datetime(self.rise_time));
        m.insert("registration_time".into(), datetime(self.registered));
        m.insert("GNRL_EA_SEVERITY".into(), json!(self.severity));
        m.insert("event_type".into(), json!(self.event_type));
        m.insert("event_type_display_name".into(), json!(self.display_name));
        if let Some(t) = &self.text {
            m.insert("GNRL_EA_DESCRIPTION".into(), json!(t));
        }
        for (i, p) in self.params.iter().enumerate() {
            m.insert(format!("GNRL_EA_PARAM_{}", i + 1), json!(p));
        }
        if let Some(h) = &self.hostname {
            m.insert("hostname".into(), json!(h));
        }
        if let Some(h) = &self.hostdn {
            m.insert("hostdn".into(), json!(h));
        }
        m.insert("product_name".into(), json!("KES"));
        m.insert("product_version".into(), json!("12.0.0.0"));
        if let Some(t) = &self.task {
            m.insert("task_display_name".into(), json!(t));
        }
        m
    }
}

#[derive(Debug)]
struct SessionRec {
    vserver: i64,
    last_used: DateTime<Utc>,
}

/// A server-side result set: an event iterator or a host accessor.
#[derive(Debug)]
struct ResultSet {
    session: String,
    rows: Vec<Map<String, Value>>,
    lifetime: chrono::Duration,
    last_used: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Data {
    vservers: BTreeMap<i64, VServerRec>,
    /// Virtual server ids by display name (a login names its server): 10,000 logins do not
    /// each walk 10,000 servers.
    vserver_ids: HashMap<String, i64>,
    hosts: BTreeMap<(i64, String), HostRec>,
    events: Vec<EventRec>,
    next_event_id: i64,
    sessions: HashMap<String, SessionRec>,
    /// One-time `KSCT` tokens → expiry.
    tokens: HashMap<String, DateTime<Utc>>,
    iterators: HashMap<String, ResultSet>,
    accessors: HashMap<String, ResultSet>,
    /// `ConEvents` subscriptions and their queues.
    subscriptions: conevents::Subscriptions,
}

impl Data {
    fn fresh(now: DateTime<Utc>) -> Self {
        let (critical_mask, warning_mask) = default_masks();
        let mut vservers = BTreeMap::new();
        vservers.insert(0, VServerRec { id: 0, name: String::new(), critical_mask, warning_mask, created: now });
        Self { vservers, next_event_id: 1, ..Self::default() }
    }
}

struct Sim {
    config: Config,
    /// `Secure` on the `/login` cookie: only when serving HTTPS (a cookie store never sends a
    /// `Secure` cookie over plain HTTP, so without `--tls` every call after `/login` would
    /// be refused).
    secure_cookie: bool,
    core: SimCore,
    data: Mutex<Data>,
    /// API calls answered, by method (`GET /_sim/calls`); cleared by `/_sim/reset`.
    calls: Mutex<BTreeMap<String, u64>>,
}

type Shared = Arc<Sim>;

fn datetime(t: DateTime<Utc>) -> Value {
    json!({"type": "datetime", "value": t.format("%Y-%m-%dT%H:%M:%SZ").to_string()})
}

fn token() -> String {
    let mut rng = rand::thread_rng();
    (0..24)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[rng.gen_range(0..62)]))
        .collect()
}

fn build(config: Config, secure_cookie: bool) -> (Router, SimCore) {
    let core = SimCore::new();
    let sim = Arc::new(Sim {
        config,
        secure_cookie,
        core: core.clone(),
        data: Mutex::new(Data::fresh(core.clock.now())),
        calls: Mutex::default(),
    });
    let api = Router::new()
        .route("/api/v1.0/{method}", post(api))
        .route("/_sim/vservers", post(put_vserver))
        .route("/_sim/events", post(add_event))
        .route("/_sim/hosts/{vserver}/{host}", put(put_host).delete(delete_host))
        .route("/_sim/calls", get(get_calls))
        .route("/_sim/subscriptions/drop", post(drop_subscriptions))
        .with_state(sim.clone());
    let reset = sim;
    let router = common::finish(api, &core, move || {
        *lock(&reset.data) = Data::fresh(reset.core.clock.now());
        lock(&reset.calls).clear();
    });
    (router, core)
}

/// Starts the simulator on `addr` (port 0 = ephemeral) inside the current tokio runtime,
/// serving plain HTTP.
pub async fn start(addr: SocketAddr, config: Config) -> std::io::Result<SimHandle> {
    let (router, core) = build(config, false);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok(common::serve(listener, router)?.with_core(core))
}

/// Starts the simulator serving HTTPS with a freshly generated self-signed certificate
/// ([`TlsOptions`]); the handle's base URL is `https://127.0.0.1:PORT` (or the bound
/// address), and the certificate is returned for the client to pin.
pub async fn start_tls(addr: SocketAddr, config: Config, tls: &TlsOptions) -> std::io::Result<(SimHandle, SimCert)> {
    let (cert, server_config) = tls::generate(tls)?;
    let (router, core) = build(config, true);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let base_url = common::base_url_for(local).replacen("http://", "https://", 1);
    let tls_listener = tls::TlsListener::new(listener, server_config);
    Ok((common::serve_on(tls_listener, local, base_url, router).with_core(core), cert))
}

/// How [`start_tls`] makes its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Mark the certificate `CA:TRUE` (basic constraints), as a Security Center server's own
    /// self-signed certificate commonly is (`--tls`); `false` for a plain end-entity
    /// certificate (`--tls-ca-false`).
    pub ca: bool,
    /// Subject alternative names (DNS names, or IP addresses when they parse as one).
    pub hostnames: Vec<String>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self { ca: true, hostnames: vec!["localhost".to_owned(), "127.0.0.1".to_owned()] }
    }
}

/// The certificate a TLS simulator serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCert {
    /// PEM text (one `CERTIFICATE` section), what an operator would save as `klserver.cer`.
    pub pem: String,
    /// DER bytes.
    pub der: Vec<u8>,
    /// SHA-256 of the DER bytes, `AB:CD:...`.
    pub sha256: String,
}

mod api;
mod conevents;
mod control;
pub mod filter;
mod methods;
#[cfg(test)]
mod tests;
mod tls;

use api::*;
pub use conevents::{MAX_SUBSCRIPTIONS, QUEUE_LIMIT, RETRIEVE_BATCH};
use control::*;
use methods::*;
