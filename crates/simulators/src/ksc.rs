//! Kaspersky Security Center (KSC) Open API simulator.
//!
//! Implements the wire rules of `docs/protocols/security-center.md` (from `ksc-api.md` §9 and
//! §10): `POST /api/v1.0/Class.Method` with JSON bodies; two login paths, `Session.StartSession`
//! (then `X-KSC-Session` on every call) and `POST /api/v1.0/login` (then a session cookie),
//! both with `Authorization: KSCBasic ...` or `KSCT <token>` and `X-KSC-VServer: <b64(display
//! name)>`; the `PxgRetVal` / `PxgError` envelope and typed values, virtual servers, event
//! iterators, host searches with chunk accessors, and per-virtual-server Critical/Warning
//! status masks. Plain HTTP by default; HTTPS with a generated self-signed certificate
//! through [`start_tls`] (`--tls`).
//!
//! | Situation | Answer |
//! |---|---|
//! | bad or missing credentials (`KSCBasic`, `KSCT`) at `Session.StartSession` or `login` | 401, plain text `Authentication failed` |
//! | `X-KSC-VServer` naming no virtual server | 401, plain text `Unknown virtual server` (stricter than a real server, which may fall back to the main server) |
//! | unknown, ended or idle-expired session (`session_idle`), by header or cookie | 403, plain text `Forbidden` |
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
use axum::routing::{post, put};
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

/// Default account name.
pub const DEFAULT_USER: &str = "ksc-admin";
/// Default password.
pub const DEFAULT_PASSWORD: &str = "ksc-secret";
/// Default idle lifetime of a session, in seconds.
pub const DEFAULT_SESSION_IDLE_SECS: u64 = 1800;

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Accepted account name (`--user`).
    pub user: String,
    /// Accepted password (`--password`).
    pub password: String,
    /// A session unused this long is gone (`--session-idle-secs`).
    pub session_idle: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            user: DEFAULT_USER.to_owned(),
            password: DEFAULT_PASSWORD.to_owned(),
            session_idle: Duration::from_secs(DEFAULT_SESSION_IDLE_SECS),
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
    core: SimCore,
    data: Mutex<Data>,
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

fn build(config: Config) -> (Router, SimCore) {
    let core = SimCore::new();
    let sim = Arc::new(Sim { config, core: core.clone(), data: Mutex::new(Data::fresh(core.clock.now())) });
    let api = Router::new()
        .route("/api/v1.0/{method}", post(api))
        .route("/_sim/vservers", post(put_vserver))
        .route("/_sim/events", post(add_event))
        .route("/_sim/hosts/{vserver}/{host}", put(put_host).delete(delete_host))
        .with_state(sim.clone());
    let reset = sim;
    let router = common::finish(api, &core, move || {
        *lock(&reset.data) = Data::fresh(reset.core.clock.now());
    });
    (router, core)
}

/// Starts the simulator on `addr` (port 0 = ephemeral) inside the current tokio runtime,
/// serving plain HTTP.
pub async fn start(addr: SocketAddr, config: Config) -> std::io::Result<SimHandle> {
    let (router, core) = build(config);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok(common::serve(listener, router)?.with_core(core))
}

/// Starts the simulator serving HTTPS with a freshly generated self-signed certificate
/// ([`TlsOptions`]); the handle's base URL is `https://127.0.0.1:PORT` (or the bound
/// address), and the certificate is returned for the client to pin.
pub async fn start_tls(addr: SocketAddr, config: Config, tls: &TlsOptions) -> std::io::Result<(SimHandle, SimCert)> {
    let (cert, server_config) = tls::generate(tls)?;
    let (router, core) = build(config);
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

mod tls {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::server::TlsStream;

    use super::{SimCert, TlsOptions};

    fn io_err(e: impl std::fmt::Display) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }

    /// A self-signed certificate and the rustls server configuration serving it.
    pub(super) fn generate(opts: &TlsOptions) -> std::io::Result<(SimCert, rustls::ServerConfig)> {
        let key = rcgen::KeyPair::generate().map_err(io_err)?;
        let mut params = rcgen::CertificateParams::new(opts.hostnames.clone()).map_err(io_err)?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "ksc-sim Administration Server");
        if opts.ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        let cert = params.self_signed(&key).map_err(io_err)?;
        let der = cert.der().to_vec();
        let digest = ring::digest::digest(&ring::digest::SHA256, &der);
        let sha256 = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io_err)?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .map_err(io_err)?;
        Ok((SimCert { pem: cert.pem(), der, sha256 }, config))
    }

    /// An axum listener handing out TLS streams. A background task accepts TCP connections
    /// and runs each handshake in its own task (a slow or failing client delays nobody); it
    /// stops when the listener is dropped.
    pub(super) struct TlsListener {
        rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
        addr: SocketAddr,
    }

    impl TlsListener {
        pub(super) fn new(listener: TcpListener, config: rustls::ServerConfig) -> Self {
            let addr = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
            let acceptor = TlsAcceptor::from(Arc::new(config));
            let (tx, rx) = mpsc::channel(64);
            tokio::spawn(async move {
                loop {
                    let accepted = tokio::select! {
                        () = tx.closed() => break,
                        r = listener.accept() => r,
                    };
                    let (tcp, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::debug!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    };
                    let acceptor = acceptor.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => {
                                let _ = tx.send((stream, peer)).await;
                            }
                            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "tls handshake failed"),
                            Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
                        }
                    });
                }
            });
            Self { rx, addr }
        }
    }

    impl axum::serve::Listener for TlsListener {
        type Io = TlsStream<TcpStream>;
        type Addr = SocketAddr;

        async fn accept(&mut self) -> (Self::Io, Self::Addr) {
            match self.rx.recv().await {
                Some(conn) => conn,
                // The accept task only ends after this listener is gone; never reached.
                None => std::future::pending().await,
            }
        }

        fn local_addr(&self) -> std::io::Result<Self::Addr> {
            Ok(self.addr)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

fn text(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// An API-level failure, answered as HTTP 500 with a `PxgError` body.
#[derive(Debug)]
struct Pxg {
    code: i64,
    message: String,
}

fn pxg(code: i64, message: impl Into<String>) -> Pxg {
    Pxg { code, message: message.into() }
}

impl IntoResponse for Pxg {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"PxgError": {
                "code": self.code, "module": "KLSTD", "message": self.message, "file": "ksc-sim", "line": 0, "subcode": 0
            }})),
        )
            .into_response()
    }
}

/// `GetRecordRange` refuses `nEnd - nStart` at or above this (`0 <= nEnd - nStart < 65536`).
pub const MAX_RANGE: i64 = 65_536;
/// Longest `event_type_display_name` the server stores (characters).
pub const MAX_DISPLAY_NAME: usize = 100;
/// Longest `GNRL_EA_DESCRIPTION` (characters).
pub const MAX_DESCRIPTION: usize = 1000;
/// Longest `GNRL_EA_PARAM_n` (characters).
pub const MAX_PARAM: usize = 512;

const E_NOT_FOUND: i64 = 1184;
const E_INVALID_ARG: i64 = 1187;
const E_NOT_IMPLEMENTED: i64 = 1160;

type ApiResult = Result<Value, Pxg>;

fn control_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

// ---------------------------------------------------------------------------------------------
// API dispatch
// ---------------------------------------------------------------------------------------------

/// `KSCBasic user="<b64>", pass="<b64>", domain="<b64, raw or empty>", internal="0|1"`; only
/// `user` and `pass` are required. `internal` other than `0`/`1` is refused.
fn parse_kscbasic(value: &str) -> Option<(String, String)> {
    let rest = value.trim().strip_prefix("KSCBasic")?;
    let mut user = None;
    let mut pass = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
        match k.trim() {
            "user" => user = Some(String::from_utf8(B64.decode(v).ok()?).ok()?),
            "pass" => pass = Some(String::from_utf8(B64.decode(v).ok()?).ok()?),
            "internal" if v != "0" && v != "1" => return None,
            _ => {}
        }
    }
    Some((user?, pass?))
}

/// The session id a call carries: `X-KSC-Session`, else the `/login` cookie.
fn session_of(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("x-ksc-session").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_owned());
    }
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|cookies| {
        cookies.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == SESSION_COOKIE).then(|| v.to_owned())
        })
    })
}

async fn api(State(sim): State<Shared>, Path(method): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let args: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            _ => return pxg(E_INVALID_ARG, "request body is not a JSON object").into_response(),
        }
    };
    let now = sim.core.clock.now();
    if method == "Session.StartSession" {
        return match open_session(&sim, &headers, now) {
            Ok(id) => Json(json!({"PxgRetVal": id})).into_response(),
            Err((status, body)) => text(status, body),
        };
    }
    if method == "login" {
        return match open_session(&sim, &headers, now) {
            Ok(id) => {
                let cookie = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict");
                (StatusCode::OK, [(header::SET_COOKIE, cookie)], Json(json!({}))).into_response()
            }
            Err((status, body)) => text(status, body),
        };
    }
    let Some(session) = session_of(&headers) else {
        return text(StatusCode::FORBIDDEN, "Forbidden");
    };
    let mut data = lock(&sim.data);
    let idle = chrono::Duration::from_std(sim.config.session_idle).unwrap_or(chrono::Duration::MAX);
    let vserver = match data.sessions.get_mut(&session) {
        Some(s) if now - s.last_used <= idle => {
            s.last_used = now;
            s.vserver
        }
        Some(_) => {
            drop_session(&mut data, &session);
            return text(StatusCode::FORBIDDEN, "Forbidden");
        }
        None => return text(StatusCode::FORBIDDEN, "Forbidden"),
    };
    if !data.vservers.contains_key(&vserver) {
        drop_session(&mut data, &session);
        return text(StatusCode::FORBIDDEN, "Forbidden");
    }
    expire_result_sets(&mut data, now);
    let ctx = Ctx { session: &session, vserver, now };
    let result = match method.as_str() {
        "Session.Ping" => Ok(json!({})),
        "Session.CreateToken" => {
            let t = token();
            data.tokens.insert(t.clone(), now + chrono::Duration::seconds(TOKEN_LIFETIME_SECS));
            Ok(json!({"PxgRetVal": t}))
        }
        "Session.EndSession" => {
            drop_session(&mut data, &session);
            Ok(json!({}))
        }
        "VServers.GetVServers" => get_vservers(&data, &ctx),
        "VServers.GetVServerInfo" => get_vserver_info(&data, &args),
        "EventProcessingFactory.CreateEventProcessing2" | "EventProcessingFactory.CreateEventProcessing" => {
            create_event_processing(&mut data, &ctx, &args)
        }
        "EventProcessing.GetRecordCount" => with_set(&mut data.iterators, &ctx, &args, "strIteratorId", |set, _| {
            Ok(json!({"PxgRetVal": set.rows.len()}))
        }),
        "EventProcessing.GetRecordRange" => with_set(&mut data.iterators, &ctx, &args, "strIteratorId", |set, args| {
            let start = int_arg(args, "nStart")?;
            let end = int_arg(args, "nEnd")?;
            if start < 0 || end < start {
                return Err(pxg(E_INVALID_ARG, format!("invalid range {start}..{end}")));
            }
            if end - start >= MAX_RANGE {
                return Err(pxg(
                    E_INVALID_ARG,
                    format!("nEnd - nStart must be below {MAX_RANGE}, got {}", end - start),
                ));
            }
            let rows = slice(&set.rows, start, end - start);
            Ok(json!({"pParamsEvents": {"KLEVP_EVENT_RANGE_ARRAY": rows}}))
        }),
        "EventProcessing.ReleaseIterator" => release(&mut data.iterators, &ctx, &args, "strIteratorId"),
        "HostGroup.FindHosts" => find_hosts(&mut data, &ctx, &args),
        "ChunkAccessor.GetItemsCount" => {
            with_set(&mut data.accessors, &ctx, &args, "strAccessor", |set, _| Ok(json!({"PxgRetVal": set.rows.len()})))
        }
        "ChunkAccessor.GetItemsChunk" => with_set(&mut data.accessors, &ctx, &args, "strAccessor", |set, args| {
            let start = int_arg(args, "nStart")?;
            let count = int_arg(args, "nCount")?;
            if start < 0 || count < 0 {
                return Err(pxg(E_INVALID_ARG, format!("invalid chunk {start}+{count}")));
            }
            let rows = slice(&set.rows, start, count);
            let n = rows.len();
            Ok(json!({"pChunk": {"KLCSP_ITERATOR_ARRAY": rows}, "PxgRetVal": n}))
        }),
        "ChunkAccessor.Release" => release(&mut data.accessors, &ctx, &args, "strAccessor"),
        "HostGroup.GetGroupInfoEx" => group_info(&data, &ctx, &args),
        other => Err(pxg(E_NOT_IMPLEMENTED, format!("method {other} is not supported by the simulator"))),
    };
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

struct Ctx<'a> {
    session: &'a str,
    vserver: i64,
    now: DateTime<Utc>,
}

/// Authenticates `Session.StartSession` or `/login` (`KSCBasic`, or a one-time `KSCT`
/// token from `Session.CreateToken`), picks the virtual server from `X-KSC-VServer`, and
/// opens a session; an error is the 401 status and plain-text body.
fn open_session(sim: &Sim, headers: &HeaderMap, now: DateTime<Utc>) -> Result<String, (StatusCode, &'static str)> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut data = lock(&sim.data);
    if let Some(t) = auth.trim().strip_prefix("KSCT ") {
        data.tokens.retain(|_, expires| *expires >= now);
        if data.tokens.remove(t.trim()).is_none() {
            return Err((StatusCode::UNAUTHORIZED, "Authentication failed"));
        }
    } else {
        match parse_kscbasic(auth) {
            Some((user, pass)) if user == sim.config.user && pass == sim.config.password => {}
            _ => return Err((StatusCode::UNAUTHORIZED, "Authentication failed")),
        }
    }
    let vs_name = match headers.get("x-ksc-vserver").map(|v| v.as_bytes()) {
        None => String::new(),
        Some(raw) => match B64.decode(raw.trim_ascii()).ok().and_then(|b| String::from_utf8(b).ok()) {
            Some(name) => name,
            None => return Err((StatusCode::UNAUTHORIZED, "Unknown virtual server")),
        },
    };
    let vserver = if vs_name.is_empty() {
        0
    } else {
        match data.vserver_ids.get(&vs_name) {
            Some(id) => *id,
            None => return Err((StatusCode::UNAUTHORIZED, "Unknown virtual server")),
        }
    };
    let id = token();
    data.sessions.insert(id.clone(), SessionRec { vserver, last_used: now });
    Ok(id)
}

fn drop_session(data: &mut Data, session: &str) {
    data.sessions.remove(session);
    data.iterators.retain(|_, s| s.session != session);
    data.accessors.retain(|_, s| s.session != session);
}

fn expire_result_sets(data: &mut Data, now: DateTime<Utc>) {
    data.iterators.retain(|_, s| now - s.last_used <= s.lifetime);
    data.accessors.retain(|_, s| now - s.last_used <= s.lifetime);
}

fn int_arg(args: &Map<String, Value>, name: &str) -> Result<i64, Pxg> {
    args.get(name)
        .and_then(|v| v.as_i64().or_else(|| v.get("value").and_then(Value::as_i64)))
        .ok_or_else(|| pxg(E_INVALID_ARG, format!("{name} is missing or not an integer")))
}

fn str_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, Pxg> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| pxg(E_INVALID_ARG, format!("{name} is missing or not a string")))
}

fn slice(rows: &[Map<String, Value>], start: i64, count: i64) -> Vec<Value> {
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let count = usize::try_from(count).unwrap_or(0);
    rows.iter().skip(start).take(count).map(|r| json!({"type": "params", "value": r})).collect()
}

fn with_set(
    sets: &mut HashMap<String, ResultSet>,
    ctx: &Ctx<'_>,
    args: &Map<String, Value>,
    key: &str,
    f: impl FnOnce(&ResultSet, &Map<String, Value>) -> ApiResult,
) -> ApiResult {
    let id = str_arg(args, key)?;
    match sets.get_mut(id) {
        Some(set) if set.session == ctx.session => {
            set.last_used = ctx.now;
            f(set, args)
        }
        _ => Err(pxg(E_NOT_FOUND, format!("{key} {id} not found"))),
    }
}

fn release(sets: &mut HashMap<String, ResultSet>, ctx: &Ctx<'_>, args: &Map<String, Value>, key: &str) -> ApiResult {
    let id = str_arg(args, key)?;
    match sets.get(id) {
        Some(set) if set.session == ctx.session => {
            sets.remove(id);
            Ok(json!({}))
        }
        _ => Err(pxg(E_NOT_FOUND, format!("{key} {id} not found"))),
    }
}

fn get_vservers(data: &Data, ctx: &Ctx<'_>) -> ApiResult {
    if ctx.vserver != 0 {
        return Err(pxg(E_INVALID_ARG, "virtual servers are listed on the main server only"));
    }
    let list: Vec<Value> = data
        .vservers
        .values()
        .filter(|v| v.id != 0)
        .map(|v| json!({"type": "params", "value": v.to_params()}))
        .collect();
    Ok(json!({"PxgRetVal": list}))
}

fn get_vserver_info(data: &Data, args: &Map<String, Value>) -> ApiResult {
    let id = int_arg(args, "lVServer")?;
    let vs = data
        .vservers
        .get(&id)
        .filter(|v| v.id != 0)
        .ok_or_else(|| pxg(E_NOT_FOUND, format!("virtual server {id} not found")))?;
    let mut info = vs.to_params();
    if let Some(Value::Array(fields)) = args.get("pFields2Return") {
        if let Value::Object(m) = &mut info {
            m.retain(|k, _| fields.iter().any(|f| f.as_str() == Some(k)));
        }
    }
    Ok(json!({"PxgRetVal": info}))
}

fn untyped(v: &Value) -> &Value {
    match v {
        Value::Object(m) if m.len() == 2 && m.contains_key("type") => m.get("value").unwrap_or(v),
        _ => v,
    }
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    untyped(v).as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
}

fn cmp_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a.map(untyped), b.map(untyped)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// `vecFieldsToOrder` items: `{"type":"params","value":{"Name","Asc"}}` or bare `{"Name","Asc"}`.
fn order_spec(args: &Map<String, Value>) -> Result<Vec<(String, bool)>, Pxg> {
    let Some(list) = args.get("vecFieldsToOrder") else { return Ok(Vec::new()) };
    let Value::Array(items) = list else {
        return Err(pxg(E_INVALID_ARG, "vecFieldsToOrder is not an array"));
    };
    items
        .iter()
        .map(|item| {
            let p = untyped(item);
            let name = p.get("Name").and_then(Value::as_str);
            let asc = p.get("Asc").and_then(Value::as_bool).unwrap_or(true);
            name.map(|n| (n.to_owned(), asc)).ok_or_else(|| pxg(E_INVALID_ARG, "order item without Name"))
        })
        .collect()
}

fn project(mut row: Map<String, Value>, args: &Map<String, Value>) -> Map<String, Value> {
    if let Some(Value::Array(fields)) = args.get("vecFieldsToReturn") {
        if !fields.is_empty() {
            row.retain(|k, _| fields.iter().any(|f| f.as_str() == Some(k)));
        }
    }
    row
}

fn sort_rows(rows: &mut [Map<String, Value>], order: &[(String, bool)]) {
    rows.sort_by(|a, b| {
        for (field, asc) in order {
            let o = cmp_values(a.get(field), b.get(field));
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

fn create_event_processing(data: &mut Data, ctx: &Ctx<'_>, args: &Map<String, Value>) -> ApiResult {
    let mut least = None;
    let mut greatest = None;
    let mut severity = None;
    match args.get("pFilter").map(untyped) {
        None | Some(Value::Null) => {}
        Some(Value::Object(filter)) => {
            for (k, v) in filter {
                match k.as_str() {
                    "KLEVP_EVENT_RISE_TIME_LEAST" => {
                        least =
                            Some(parse_time(v).ok_or_else(|| pxg(E_INVALID_ARG, format!("{k} is not a datetime")))?);
                    }
                    "KLEVP_EVENT_RISE_TIME_GREATEST" => {
                        greatest =
                            Some(parse_time(v).ok_or_else(|| pxg(E_INVALID_ARG, format!("{k} is not a datetime")))?);
                    }
                    "GNRL_EA_SEVERITY" => {
                        severity = Some(
                            untyped(v).as_i64().ok_or_else(|| pxg(E_INVALID_ARG, format!("{k} is not an integer")))?,
                        );
                    }
                    other => return Err(pxg(E_NOT_IMPLEMENTED, format!("event filter {other} is not supported"))),
                }
            }
        }
        Some(_) => return Err(pxg(E_INVALID_ARG, "pFilter is not a container")),
    }
    let lifetime = match args.get("lifetimeSec") {
        None => 300,
        Some(v) => untyped(v)
            .as_i64()
            .filter(|n| *n > 0)
            .ok_or_else(|| pxg(E_INVALID_ARG, "lifetimeSec is not a positive integer"))?,
    };
    let mut order = order_spec(args)?;
    if order.is_empty() {
        order.push(("event_db_id".to_owned(), true));
    }
    let mut rows: Vec<Map<String, Value>> = data
        .events
        .iter()
        .filter(|e| e.vserver == ctx.vserver)
        .filter(|e| least.is_none_or(|t| e.rise_time >= t))
        .filter(|e| greatest.is_none_or(|t| e.rise_time <= t))
        .filter(|e| severity.is_none_or(|s| e.severity == s))
        .map(EventRec::to_params)
        .collect();
    sort_rows(&mut rows, &order);
    let rows = rows.into_iter().map(|r| project(r, args)).collect();
    let id = token();
    data.iterators.insert(
        id.clone(),
        ResultSet {
            session: ctx.session.to_owned(),
            rows,
            lifetime: chrono::Duration::seconds(lifetime),
            last_used: ctx.now,
        },
    );
    Ok(json!({"strIteratorId": id}))
}

fn find_hosts(data: &mut Data, ctx: &Ctx<'_>, args: &Map<String, Value>) -> ApiResult {
    let filter_text = match args.get("wstrFilter") {
        None | Some(Value::Null) => "",
        Some(v) => v.as_str().ok_or_else(|| pxg(E_INVALID_ARG, "wstrFilter is not a string"))?,
    };
    let filter = if filter_text.trim().is_empty() {
        None
    } else {
        Some(filter::parse(filter_text).map_err(|e| pxg(E_INVALID_ARG, format!("unsupported filter: {e}")))?)
    };
    let lifetime = match args.get("lMaxLifeTime") {
        None => 600,
        Some(v) => untyped(v)
            .as_i64()
            .filter(|n| (1..=7200).contains(n))
            .ok_or_else(|| pxg(E_INVALID_ARG, "lMaxLifeTime must be 1..7200"))?,
    };
    let params = args.get("pParams").map(untyped);
    let cur_vs_only =
        params.and_then(|p| p.get("KLGRP_FIND_FROM_CUR_VS_ONLY")).and_then(Value::as_bool).unwrap_or(false);
    let now = ctx.now;
    let mut rows = Vec::new();
    // Hosts are keyed by (virtual server, id): one server's hosts are one range, so a read of
    // one of 10,000 virtual servers does not walk the others' hosts.
    let hosts: Box<dyn Iterator<Item = &HostRec>> = if !cur_vs_only && ctx.vserver == 0 {
        Box::new(data.hosts.values())
    } else {
        let vs = ctx.vserver;
        Box::new(data.hosts.range((vs, String::new())..(vs + 1, String::new())).map(|(_, h)| h))
    };
    for h in hosts {
        let row = h.to_params();
        let matched = match &filter {
            Some(f) => f.eval(&row, now).map_err(|e| pxg(E_INVALID_ARG, format!("unsupported filter: {e}")))?,
            None => true,
        };
        if matched {
            rows.push(row);
        }
    }
    sort_rows(&mut rows, &order_spec(args)?);
    let rows: Vec<_> = rows.into_iter().map(|r| project(r, args)).collect();
    let n = rows.len();
    let id = token();
    data.accessors.insert(
        id.clone(),
        ResultSet {
            session: ctx.session.to_owned(),
            rows,
            lifetime: chrono::Duration::seconds(lifetime),
            last_used: now,
        },
    );
    Ok(json!({"strAccessor": id, "PxgRetVal": n}))
}

fn group_info(data: &Data, ctx: &Ctx<'_>, args: &Map<String, Value>) -> ApiResult {
    let group = int_arg(args, "nGroupId")?;
    let vs = data
        .vservers
        .get(&ctx.vserver)
        .filter(|v| v.group() == group)
        .ok_or_else(|| pxg(E_NOT_FOUND, format!("group {group} not found")))?;
    let mut info = Map::new();
    info.insert("id".into(), json!(group));
    info.insert("name".into(), json!("Managed devices"));
    let stat = |mask: u64| json!({"type": "params", "value": {"KLSRV_HSTSTAT_MASK": mask, "KLSRV_HSTSTAT_INHERITED": true, "KLSRV_HSTSTAT_LOCKED": false}});
    info.insert("KLSRV_HSTSTAT_CRITICAL".into(), stat(vs.critical_mask));
    info.insert("KLSRV_HSTSTAT_WARNING".into(), stat(vs.warning_mask));
    if let Some(Value::Array(attrs)) = args.get("pArrAttributes") {
        if !attrs.is_empty() {
            info.retain(|k, _| attrs.iter().any(|a| a.as_str() == Some(k)));
        }
    }
    Ok(json!({"PxgRetVal": info}))
}

// ---------------------------------------------------------------------------------------------
// Control routes
// ---------------------------------------------------------------------------------------------

fn mask_of(codes: &[String]) -> Result<u64, String> {
    codes.iter().try_fold(0u64, |m, c| {
        description_bit(c).map(|b| m | 1 << b).ok_or_else(|| format!("unknown description {c:?}"))
    })
}

#[derive(Deserialize)]
struct VServerBody {
    id: i64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    critical: Option<Vec<String>>,
    #[serde(default)]
    warning: Option<Vec<String>>,
}

async fn put_vserver(State(sim): State<Shared>, body: Bytes) -> Response {
    let b: VServerBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, format!("bad body: {e}")),
    };
    if b.id < 0 {
        return control_error(StatusCode::BAD_REQUEST, "id must be >= 0");
    }
    let critical = match b.critical.as_deref().map(mask_of).transpose() {
        Ok(m) => m,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    let warning = match b.warning.as_deref().map(mask_of).transpose() {
        Ok(m) => m,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    let now = sim.core.clock.now();
    let mut data = lock(&sim.data);
    if b.id != 0 {
        let Some(name) =
            b.name.clone().filter(|n| !n.is_empty()).or_else(|| data.vservers.get(&b.id).map(|v| v.name.clone()))
        else {
            return control_error(StatusCode::BAD_REQUEST, "a virtual server needs a non-empty name");
        };
        if data.vserver_ids.get(&name).is_some_and(|id| *id != b.id) {
            return control_error(StatusCode::CONFLICT, format!("name {name:?} is taken"));
        }
        let (c, w) = default_masks();
        let vs = data.vservers.entry(b.id).or_insert(VServerRec {
            id: b.id,
            name: name.clone(),
            critical_mask: c,
            warning_mask: w,
            created: now,
        });
        let old = std::mem::replace(&mut vs.name, name.clone());
        data.vserver_ids.remove(&old);
        data.vserver_ids.insert(name, b.id);
    }
    let vs = data.vservers.get_mut(&b.id).expect("present");
    if let Some(c) = critical {
        vs.critical_mask = c;
    }
    if let Some(w) = warning {
        vs.warning_mask = w;
    }
    let out = json!({"id": vs.id, "name": vs.name, "critical_mask": vs.critical_mask, "warning_mask": vs.warning_mask});
    Json(out).into_response()
}

#[derive(Deserialize)]
struct EventBody {
    vserver: i64,
    severity: Value,
    event_type: String,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    occurred_at: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    params: Vec<String>,
    #[serde(default)]
    task: Option<String>,
    #[serde(default)]
    event_db_id: Option<i64>,
}

/// `critical|functional_failure|warning|info|invalid`, or the number 0..4.
fn severity_of(v: &Value) -> Result<i64, String> {
    match v {
        Value::String(s) => match s.as_str() {
            "critical" => Ok(4),
            "functional_failure" => Ok(3),
            "warning" => Ok(2),
            "info" => Ok(1),
            "invalid" => Ok(0),
            other => Err(format!("unknown severity {other:?}")),
        },
        Value::Number(n) => {
            n.as_i64().filter(|n| (0..=4).contains(n)).ok_or_else(|| format!("severity {n} is not 0..4"))
        }
        other => Err(format!("severity {other} is not a name or 0..4")),
    }
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), String> {
    let n = value.chars().count();
    if n > max { Err(format!("{field} is {n} characters long, at most {max} are allowed")) } else { Ok(()) }
}

fn display_name_of(event_type: &str) -> String {
    match event_type {
        "GNRL_EV_VIRUS_FOUND" => "Malicious object detected",
        "GNRL_EV_OBJECT_NOTCURED" => "Object not disinfected",
        "GNRL_EV_LICENSE_EXPIRED" => "License expired",
        "KLPRCI_TaskState" => "Task state changed",
        "GNRL_EV_APP_STARTED" => "Application started",
        other => other,
    }
    .to_owned()
}

async fn add_event(State(sim): State<Shared>, body: Bytes) -> Response {
    let b: EventBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, format!("bad body: {e}")),
    };
    let severity = match severity_of(&b.severity) {
        Ok(n) => n,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    let display_name = b.display_name.unwrap_or_else(|| display_name_of(&b.event_type));
    let mut checks = vec![
        check_len("display_name (event_type_display_name)", &display_name, MAX_DISPLAY_NAME),
        check_len("text (GNRL_EA_DESCRIPTION)", b.text.as_deref().unwrap_or(""), MAX_DESCRIPTION),
    ];
    for (i, p) in b.params.iter().enumerate() {
        checks.push(check_len(&format!("params[{i}] (GNRL_EA_PARAM_{})", i + 1), p, MAX_PARAM));
    }
    if let Some(Err(e)) = checks.into_iter().find(Result::is_err) {
        return control_error(StatusCode::BAD_REQUEST, e);
    }
    let now = sim.core.clock.now();
    let rise_time = match &b.occurred_at {
        None => now,
        Some(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => return control_error(StatusCode::BAD_REQUEST, format!("occurred_at: {e}")),
        },
    };
    let mut data = lock(&sim.data);
    if !data.vservers.contains_key(&b.vserver) {
        return control_error(StatusCode::NOT_FOUND, format!("virtual server {} not found", b.vserver));
    }
    // Arrival order: a seeded id must be above every id so far; later events follow it.
    let id = match b.event_db_id {
        None => data.next_event_id,
        Some(id) if id >= data.next_event_id => id,
        Some(id) => {
            return control_error(
                StatusCode::BAD_REQUEST,
                format!("event_db_id {id} is not above the last one ({})", data.next_event_id - 1),
            );
        }
    };
    data.next_event_id = id.saturating_add(1);
    let hostname = b.host.filter(|h| !h.is_empty());
    let hostdn = hostname
        .as_ref()
        .map(|h| data.hosts.get(&(b.vserver, h.clone())).map_or_else(|| h.clone(), |rec| rec.name.clone()));
    data.events.push(EventRec {
        id,
        vserver: b.vserver,
        severity,
        display_name,
        event_type: b.event_type,
        hostname,
        hostdn,
        rise_time,
        registered: now,
        text: b.text,
        params: b.params,
        task: b.task,
    });
    Json(json!({"id": id})).into_response()
}

#[derive(Deserialize)]
struct HostBody {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    descriptions: Vec<String>,
    /// `KLHST_WKS_STATUS` (default [`wks_status::DEFAULT`]).
    #[serde(default)]
    wks_status: Option<i64>,
    /// Sets [`wks_status::ANTIVIRUS_NOT_NEEDED`].
    #[serde(default)]
    antivirus_not_needed: bool,
    /// `KLHST_WKS_RTP_STATE`, 0..=9 or a name of [`RTP_STATES`] (default 4, running).
    #[serde(default)]
    rtp_state: Option<Value>,
}

fn rtp_state_of(v: Option<&Value>) -> Result<i64, String> {
    match v {
        None => Ok(4),
        Some(Value::Number(n)) => {
            n.as_i64().filter(|n| (0..=9).contains(n)).ok_or_else(|| format!("rtp_state {n} is not 0..9"))
        }
        Some(Value::String(s)) => RTP_STATES
            .iter()
            .position(|name| name == s)
            .map(|i| i as i64)
            .ok_or_else(|| format!("unknown rtp_state {s:?}")),
        Some(other) => Err(format!("rtp_state {other} is not 0..9 or a name")),
    }
}

async fn put_host(State(sim): State<Shared>, Path((vserver, host)): Path<(i64, String)>, body: Bytes) -> Response {
    let b: HostBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, format!("bad body: {e}")),
    };
    let mut mask = match mask_of(&b.descriptions) {
        Ok(m) => m,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    let rtp_state = match rtp_state_of(b.rtp_state.as_ref()) {
        Ok(n) => n,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    let mut wks = b.wks_status.unwrap_or(wks_status::DEFAULT);
    if b.antivirus_not_needed {
        wks |= wks_status::ANTIVIRUS_NOT_NEEDED;
    }
    if wks & wks_status::ANTIVIRUS_NOT_NEEDED != 0 {
        // Such a computer never reports "antivirus not installed".
        mask &= !(1 << BIT_AV_NOT_INSTALLED);
    }
    let unknown_bits =
        (0..64).filter(|b| mask & 1 << b != 0 && !DESCRIPTIONS.iter().any(|(_, bit, _)| bit == b)).count();
    let now = sim.core.clock.now();
    let mut data = lock(&sim.data);
    let Some(vs) = data.vservers.get(&vserver) else {
        return control_error(StatusCode::NOT_FOUND, format!("virtual server {vserver} not found"));
    };
    let status = match b.status.as_deref() {
        Some("ok") => 0,
        Some("critical") => 1,
        Some("warning") => 2,
        Some(other) => return control_error(StatusCode::BAD_REQUEST, format!("unknown status {other:?}")),
        None if mask & vs.critical_mask != 0 => 1,
        None if mask & vs.warning_mask != 0 => 2,
        None => 0,
    };
    let group = vs.group();
    let key = (vserver, host.clone());
    let name = b.name.or_else(|| data.hosts.get(&key).map(|h| h.name.clone())).unwrap_or_else(|| host.clone());
    let rec = HostRec { hostname: host, name, status, mask, group, last_visible: now, wks_status: wks, rtp_state };
    let out = json!({"hostname": rec.hostname, "name": rec.name, "status_id": rec.status, "mask": rec.mask,
        "wks_status": rec.wks_status, "rtp_state": rec.rtp_state, "unknown_bits": unknown_bits});
    data.hosts.insert(key, rec);
    Json(out).into_response()
}

async fn delete_host(State(sim): State<Shared>, Path((vserver, host)): Path<(i64, String)>) -> Response {
    match lock(&sim.data).hosts.remove(&(vserver, host)) {
        Some(_) => Json(json!({"deleted": true})).into_response(),
        None => control_error(StatusCode::NOT_FOUND, "no such host"),
    }
}

// ---------------------------------------------------------------------------------------------
// Host filter language
// ---------------------------------------------------------------------------------------------

/// The subset of the RFC 2254-like host filter the simulator understands: `(&..)`, `(|..)`,
/// `(!..)` and `attr OP value` with `=` (`*` wildcards on strings), `<>`, `<`, `>`, `<=`, `>=`
/// on `KLHST_WKS_HOSTNAME`, `KLHST_WKS_DN`, `KLHST_WKS_STATUS_ID`, `KLHST_WKS_STATUS_MASK`,
/// `KLHST_WKS_GROUPID` and `KLHST_WKS_LAST_VISIBLE` (values quoted or bare; datetimes as
/// RFC 3339 or `CURTIME(<seconds offset>)`). Anything else is an error, never a match-all.
pub mod filter {
    use std::cmp::Ordering;

    use chrono::{DateTime, Utc};
    use serde_json::{Map, Value};

    /// The fields a filter may name.
    pub const FIELDS: [&str; 6] = [
        "KLHST_WKS_HOSTNAME",
        "KLHST_WKS_DN",
        "KLHST_WKS_STATUS_ID",
        "KLHST_WKS_STATUS_MASK",
        "KLHST_WKS_GROUPID",
        "KLHST_WKS_LAST_VISIBLE",
    ];

    /// A comparison operator.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Op {
        /// `=`
        Eq,
        /// `<>`
        Ne,
        /// `<`
        Lt,
        /// `>`
        Gt,
        /// `<=`
        Le,
        /// `>=`
        Ge,
    }

    /// A parsed filter.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Filter {
        /// `(&(a)(b)...)`
        And(Vec<Self>),
        /// `(|(a)(b)...)`
        Or(Vec<Self>),
        /// `(!(a))`
        Not(Box<Self>),
        /// `(attr OP value)`
        Cmp {
            /// Field name.
            attr: String,
            /// Operator.
            op: Op,
            /// Value as written (quotes removed).
            value: String,
        },
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    /// Parses a filter; the error says what is not supported.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        let f = p.filter()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing text at {}", p.i));
        }
        Ok(f)
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }

        fn eat(&mut self, c: u8) -> bool {
            self.ws();
            if self.s.get(self.i) == Some(&c) {
                self.i += 1;
                true
            } else {
                false
            }
        }

        fn filter(&mut self) -> Result<Filter, String> {
            if !self.eat(b'(') {
                return Err(format!("expected '(' at {}", self.i));
            }
            self.ws();
            let f = match self.s.get(self.i) {
                Some(b'&') | Some(b'|') => {
                    let and = self.s[self.i] == b'&';
                    self.i += 1;
                    let mut parts = Vec::new();
                    loop {
                        self.ws();
                        if self.s.get(self.i) != Some(&b'(') {
                            break;
                        }
                        parts.push(self.filter()?);
                    }
                    if parts.is_empty() {
                        return Err("empty (&) or (|)".to_owned());
                    }
                    if and { Filter::And(parts) } else { Filter::Or(parts) }
                }
                Some(b'!') => {
                    self.i += 1;
                    Filter::Not(Box::new(self.filter()?))
                }
                _ => self.comparison()?,
            };
            if !self.eat(b')') {
                return Err(format!("expected ')' at {}", self.i));
            }
            Ok(f)
        }

        fn comparison(&mut self) -> Result<Filter, String> {
            self.ws();
            let start = self.i;
            while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_') {
                self.i += 1;
            }
            let attr = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
            if attr.is_empty() {
                return Err(format!("expected an attribute at {start}"));
            }
            if !FIELDS.contains(&attr.as_str()) {
                return Err(format!("attribute {attr} is not supported"));
            }
            self.ws();
            let rest = &self.s[self.i..];
            let (op, len) = if rest.starts_with(b"<>") {
                (Op::Ne, 2)
            } else if rest.starts_with(b"<=") {
                (Op::Le, 2)
            } else if rest.starts_with(b">=") {
                (Op::Ge, 2)
            } else if rest.starts_with(b"=") {
                (Op::Eq, 1)
            } else if rest.starts_with(b"<") {
                (Op::Lt, 1)
            } else if rest.starts_with(b">") {
                (Op::Gt, 1)
            } else {
                return Err(format!("unsupported operator after {attr}"));
            };
            self.i += len;
            self.ws();
            let value = if self.s.get(self.i) == Some(&b'"') {
                self.i += 1;
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != b'"' {
                    self.i += 1;
                }
                if self.i == self.s.len() {
                    return Err("unterminated string".to_owned());
                }
                let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                v
            } else {
                let start = self.i;
                let mut depth = 0;
                while self.i < self.s.len() {
                    match self.s[self.i] {
                        b'(' => depth += 1,
                        b')' if depth == 0 => break,
                        b')' => depth -= 1,
                        _ => {}
                    }
                    self.i += 1;
                }
                String::from_utf8_lossy(&self.s[start..self.i]).trim().to_owned()
            };
            Ok(Filter::Cmp { attr, op, value })
        }
    }

    fn glob(pattern: &str, text: &str) -> bool {
        let parts: Vec<&str> = pattern.split('*').collect();
        if parts.len() == 1 {
            return pattern.eq_ignore_ascii_case(text);
        }
        let (text, pattern_parts) = (text.to_lowercase(), parts.iter().map(|p| p.to_lowercase()).collect::<Vec<_>>());
        let mut pos = 0;
        for (i, part) in pattern_parts.iter().enumerate() {
            if i == 0 {
                if !text.starts_with(part.as_str()) {
                    return false;
                }
                pos = part.len();
            } else if i == pattern_parts.len() - 1 {
                return text.len() >= pos + part.len() && text[pos..].ends_with(part.as_str());
            } else {
                match text[pos..].find(part.as_str()) {
                    Some(at) => pos += at + part.len(),
                    None => return false,
                }
            }
        }
        true
    }

    fn apply(op: Op, o: Ordering) -> bool {
        match op {
            Op::Eq => o == Ordering::Equal,
            Op::Ne => o != Ordering::Equal,
            Op::Lt => o == Ordering::Less,
            Op::Gt => o == Ordering::Greater,
            Op::Le => o != Ordering::Greater,
            Op::Ge => o != Ordering::Less,
        }
    }

    fn curtime(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let inner = value.strip_prefix("CURTIME(")?.strip_suffix(')')?;
        let secs: i64 = inner.trim().parse().ok()?;
        Some(now + chrono::Duration::seconds(secs))
    }

    impl Filter {
        /// Evaluates the filter on a host row.
        pub fn eval(&self, row: &Map<String, Value>, now: DateTime<Utc>) -> Result<bool, String> {
            Ok(match self {
                Self::And(parts) => {
                    for p in parts {
                        if !p.eval(row, now)? {
                            return Ok(false);
                        }
                    }
                    true
                }
                Self::Or(parts) => {
                    for p in parts {
                        if p.eval(row, now)? {
                            return Ok(true);
                        }
                    }
                    false
                }
                Self::Not(f) => !f.eval(row, now)?,
                Self::Cmp { attr, op, value } => {
                    let field = row.get(attr).map(super::untyped);
                    match attr.as_str() {
                        "KLHST_WKS_HOSTNAME" | "KLHST_WKS_DN" => {
                            let text = field.and_then(Value::as_str).unwrap_or("");
                            match op {
                                Op::Eq => glob(value, text),
                                Op::Ne => !glob(value, text),
                                _ => apply(*op, text.cmp(value.as_str())),
                            }
                        }
                        "KLHST_WKS_LAST_VISIBLE" => {
                            let want = curtime(value, now)
                                .or_else(|| DateTime::parse_from_rfc3339(value).ok().map(|t| t.with_timezone(&Utc)))
                                .ok_or_else(|| format!("{value:?} is not a datetime"))?;
                            let have = field.and_then(Value::as_str).and_then(|s| DateTime::parse_from_rfc3339(s).ok());
                            match have {
                                Some(h) => apply(*op, h.with_timezone(&Utc).cmp(&want)),
                                None => false,
                            }
                        }
                        _ => {
                            let want: i64 = value.parse().map_err(|_| format!("{value:?} is not an integer"))?;
                            let have = field.and_then(Value::as_i64).unwrap_or(0);
                            apply(*op, have.cmp(&want))
                        }
                    }
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::filter::{Filter, Op, parse};
    use super::*;

    fn row(host: &str, status: i64) -> Map<String, Value> {
        HostRec {
            hostname: host.into(),
            name: format!("{host}-dn"),
            status,
            mask: 0x80,
            group: 0,
            last_visible: "2024-05-01T10:00:00Z".parse().unwrap(),
            wks_status: wks_status::DEFAULT,
            rtp_state: 4,
        }
        .to_params()
    }

    #[test]
    fn filter_language() {
        let now: DateTime<Utc> = "2024-05-01T12:00:00Z".parse().unwrap();
        let r = row("abc-1", 1);
        let t = |f: &str| parse(f).unwrap().eval(&r, now).unwrap();
        assert!(t("(KLHST_WKS_HOSTNAME=\"*\")"));
        assert!(t("(KLHST_WKS_HOSTNAME = \"abc*\")"));
        assert!(!t("(KLHST_WKS_HOSTNAME=\"x*\")"));
        assert!(t("(&(KLHST_WKS_STATUS_ID<>0)(KLHST_WKS_DN=\"ABC-1-DN\"))"));
        assert!(t("(|(KLHST_WKS_STATUS_ID=2)(KLHST_WKS_STATUS_ID =\"1\"))"));
        assert!(t("(!(KLHST_WKS_STATUS_ID=0))"));
        assert!(t("(KLHST_WKS_STATUS_MASK>127)"));
        assert!(!t("(KLHST_WKS_STATUS_MASK<128)"));
        assert!(t("(KLHST_WKS_LAST_VISIBLE > CURTIME(-86400))"));
        assert!(!t("(KLHST_WKS_LAST_VISIBLE > \"2024-05-01T11:00:00Z\")"));
        assert_eq!(
            parse("(KLHST_WKS_GROUPID=5)").unwrap(),
            Filter::Cmp { attr: "KLHST_WKS_GROUPID".into(), op: Op::Eq, value: "5".into() }
        );
        for bad in
            ["", "KLHST_WKS_DN=1", "(KLHST_WKS_OS_NAME=\"x\")", "(KLHST_WKS_STATUS&1<>0)", "(&)", "(KLHST_WKS_DN=\"x\""]
        {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(parse("(KLHST_WKS_STATUS_ID=abc)").unwrap().eval(&r, now).is_err());
    }

    #[test]
    fn masks_and_codes() {
        let (c, w) = default_masks();
        assert_eq!(c & w, 0);
        assert_eq!(c | w, 0xF_FFFF);
        assert_eq!(description_bit("license_expired"), Some(9));
        assert_eq!(description_bit("unknown:25"), Some(25));
        assert_eq!(description_bit("nope"), None);
        assert_eq!(
            parse_kscbasic("KSCBasic user=\"YQ==\", pass=\"Yg==\", domain=\"\", internal=\"1\""),
            Some(("a".into(), "b".into()))
        );
        assert_eq!(parse_kscbasic("Basic abc"), None);
    }
}
