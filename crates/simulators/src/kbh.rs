//! Kaspersky Business Hub simulator (Endpoint Security Cloud and Security for Office 365).
//!
//! Implements the modelled API of `business-hub-api.md` §2 exactly — authentication (static
//! token and e-mail/password login with expiring tokens), error bodies
//! `{"error":{"code","message"}}`, a per-token request limit answered with 429 and
//! `Retry-After`, paging with `limit`/`cursor`, companies, devices, events ordered by `seq` with
//! `after_seq`, Office 365 events and issues — and the control API of §6 plus the common one of
//! [`crate::common`]. The whole model, call by call, is `docs/protocols/business-hub.md`.
//!
//! Events are stored in **arrival order**: `seq` is assigned when an event is posted, so an
//! event posted now with an old `occurred_at` (a device that was offline) sorts after every
//! earlier arrival. Event lists also take `occurred_after=<RFC 3339>` (our model's extension,
//! not in `business-hub-api.md`): only events with `occurred_at >= occurred_after` are listed.
//!
//! # Control routes (no credentials)
//!
//! | Route | Body | Effect |
//! |---|---|---|
//! | `POST /_sim/companies` | `{"id","name","products":["kes_cloud","ksmo365"]}` | creates or renames a company |
//! | `POST /_sim/events` | see [`start`] | appends an event, answers `{"id","seq"}` |
//! | `POST /_sim/o365/issues` | `{"company","type","active":true,"message"}` | raises (and records its event) or resolves (`"active":false` or `"resolved":true`) an issue |
//! | `PUT /_sim/devices/{company}/{device}` | `{"name","descriptions":[...],"os"?}` | sets a device's active descriptions; its status follows |
//! | `DELETE /_sim/devices/{company}/{device}` | none | removes a device |
//! | `POST /_sim/auth/expire` | none | expires every login token (the next call with one gets 401) |
//! | `POST /_sim/reset`, `GET /_sim/requests`, `POST /_sim/faults`, `POST /_sim/clock` | | common |
//!
//! A description in `descriptions` is a catalogue code (`"databases_out_of_date"`, its text and
//! level come from the catalogue), or an object `{"code","text","status"}` for anything else; a
//! bare code the catalogue does not know is served with its code as text at `Warning`.
//!
//! Login tokens live `token_ttl_secs` on the simulated clock (`POST /_sim/clock` moves it).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::{self, SimCore, SimHandle, fmt_time, lock};

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The static API token (`--token`, default `sim-token`).
    pub token: String,
    /// The login e-mail (`--email`, default `msp@sim.local`).
    pub email: String,
    /// The login password (`--password`, default `sim-password`).
    pub password: String,
    /// Requests per minute per token before 429 (default 600; 0 disables the limit).
    pub requests_per_minute: u32,
    /// Lifetime of a login token in seconds (default 3600, the `expires_in` answered).
    pub token_ttl_secs: u64,
    /// Start (and come back from `POST /_sim/reset`) with a demo company, devices and events.
    pub seed_demo: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            token: "sim-token".to_owned(),
            email: "msp@sim.local".to_owned(),
            password: "sim-password".to_owned(),
            requests_per_minute: 600,
            token_ttl_secs: 3600,
            seed_demo: false,
        }
    }
}

/// Default `limit` of a list.
const DEFAULT_LIMIT: usize = 100;
/// Largest `limit` accepted.
const MAX_LIMIT: usize = 500;
/// Length of the rate-limit window.
const WINDOW_SECS: i64 = 60;

/// Status-description catalogue (`status-descriptions.md`): code, text, level.
const DESCRIPTIONS: [(&str, &str, &str); 20] = [
    ("network_agent_inactive", "Network Agent is inactive", "Warning"),
    ("realtime_protection_not_running", "Real-time protection is not running", "Critical"),
    ("security_application_not_running", "Security application is not running", "Critical"),
    ("many_viruses_detected", "Many viruses detected", "Warning"),
    (
        "realtime_protection_level_differs",
        "Real-time protection level differs from the one set by the administrator",
        "Warning",
    ),
    ("security_application_not_installed", "Security application is not installed", "Critical"),
    ("full_scan_too_long_ago", "Full scan has not been performed for a long time", "Warning"),
    ("databases_out_of_date", "Databases are out of date", "Warning"),
    ("not_connected_too_long", "Device has not connected for a long time", "Warning"),
    ("license_expired", "License has expired", "Critical"),
    ("too_many_untreated_threats", "Too many untreated threats", "Critical"),
    ("restart_required", "Restart is required", "Warning"),
    ("incompatible_applications", "Incompatible applications are installed", "Warning"),
    ("vulnerabilities_detected", "Software vulnerabilities have been detected", "Warning"),
    ("os_updates_search_too_long_ago", "Search for operating system updates was performed too long ago", "Warning"),
    ("invalid_encryption_status", "Invalid encryption status", "Warning"),
    ("mobile_policy_not_met", "Mobile device settings do not meet the security policy", "Warning"),
    ("unprocessed_incidents", "Unprocessed incidents detected", "Warning"),
    ("status_set_by_application", "Device status is defined by the managed application", "Warning"),
    ("out_of_disk_space", "Out of disk space", "Warning"),
];

/// Endpoint Security Cloud event types (`business-hub-api.md` §4): severity, type, display name.
const ESC_EVENT_TYPES: [(&str, &str, &str); 10] = [
    ("Critical", "GNRL_EV_VIRUS_FOUND", "Malicious object detected"),
    ("Critical", "GNRL_EV_OBJECT_NOTCURED", "Object not disinfected"),
    ("Critical", "GNRL_EV_ATTACK_DETECTED", "Network attack detected"),
    ("Critical", "GNRL_EV_APPLICATION_LAUNCH_DENIED", "Application startup prohibited"),
    ("FunctionalFailure", "KLPRCI_TaskState", "Task failed"),
    ("Warning", "GNRL_EV_OBJECT_BLOCKED", "Object blocked"),
    ("Warning", "GNRL_EV_SUSPICIOUS_OBJECT_FOUND", "Legitimate software that can be used by intruders detected"),
    ("Info", "GNRL_EV_DEVCTRL_DEV_PLUGGED", "Device connected"),
    ("Info", "KLSRV_UPD_BASES_UPDATED", "Databases updated"),
    ("FunctionalFailure", "LICENSE_PROBLEM", "License is missing, corrupted or blacklisted"),
];

/// Security for Office 365 event types (§3): type, display name.
const O365_EVENT_TYPES: [(&str, &str); 5] = [
    ("mailboxes_protection_not_provided", "Mailboxes protection is not provided"),
    ("license_issue", "License-related issue occurred"),
    ("malware_detected", "Malware detected"),
    ("phishing_detected", "Phishing detected"),
    ("filtered_attachment_detected", "Filtered attachment detected"),
];

#[derive(Debug, Clone)]
struct Description {
    code: String,
    text: String,
    status: &'static str,
}

#[derive(Debug, Clone)]
struct DeviceRec {
    id: String,
    name: String,
    os: String,
    last_seen: DateTime<Utc>,
    descriptions: Vec<Description>,
}

impl DeviceRec {
    fn status(&self) -> &'static str {
        if self.descriptions.iter().any(|d| d.status == "Critical") {
            "Critical"
        } else if self.descriptions.is_empty() {
            "OK"
        } else {
            "Warning"
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "os": self.os,
            "last_seen": fmt_time(self.last_seen),
            "status": self.status(),
            "status_descriptions": self.descriptions.iter().map(|d| json!({
                "code": d.code, "text": d.text, "status": d.status,
            })).collect::<Vec<_>>(),
        })
    }
}

#[derive(Debug, Clone)]
struct IssueRec {
    kind: String,
    active: bool,
    since: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    message: String,
}

impl IssueRec {
    fn to_json(&self) -> Value {
        json!({
            "type": self.kind,
            "active": self.active,
            "since": fmt_time(self.since),
            "resolved_at": self.resolved_at.map(fmt_time),
            "message": self.message,
        })
    }
}

/// One event as the service stored it. `seq` is handed out when the event *arrives* (is posted
/// to `/_sim/events`), whatever its `occurred_at`: an event a device delivers late, with an old
/// time, gets a higher `seq` than every earlier arrival, as a real service stores it.
#[derive(Debug, Clone)]
struct StoredEvent {
    seq: u64,
    occurred_at: DateTime<Utc>,
    json: Value,
}

#[derive(Debug, Clone)]
struct CompanyRec {
    id: String,
    name: String,
    products: Vec<String>,
    devices: Vec<DeviceRec>,
    /// Endpoint Security Cloud events in arrival order (ascending `seq`).
    events: Vec<StoredEvent>,
    /// Office 365 events in arrival order (ascending `seq`).
    o365_events: Vec<StoredEvent>,
    issues: Vec<IssueRec>,
    /// Last `seq` handed out (shared by both event lists, so each is strictly increasing).
    seq: u64,
}

impl CompanyRec {
    fn to_json(&self) -> Value {
        json!({"id": self.id, "name": self.name, "products": self.products})
    }

    fn has(&self, product: &str) -> bool {
        self.products.iter().any(|p| p == product)
    }
}

#[derive(Debug, Default)]
struct Data {
    companies: Vec<CompanyRec>,
    /// Login tokens and when they expire (simulated clock).
    login_tokens: HashMap<String, DateTime<Utc>>,
    /// Per token: window start and requests counted in it.
    windows: HashMap<String, (DateTime<Utc>, u32)>,
    issued: u64,
}

impl Data {
    fn company(&self, id: &str) -> Option<&CompanyRec> {
        self.companies.iter().find(|c| c.id == id)
    }

    fn company_mut(&mut self, id: &str) -> Option<&mut CompanyRec> {
        self.companies.iter_mut().find(|c| c.id == id)
    }
}

struct Sim {
    config: Config,
    core: SimCore,
    data: Mutex<Data>,
}

type Shared = Arc<Sim>;

/// Starts the simulator on `addr` (e.g. `127.0.0.1:0`) in the current tokio runtime.
///
/// `POST /_sim/events` bodies:
/// `{"company","product":"kes_cloud","severity":"critical|functional_failure|warning|info",
/// "event_type"?,"display_name"?,"device"?,"device_name"?,"occurred_at"?,"text"?}` or
/// `{"company","product":"ksmo365","event_type","display_name"?,"mailbox"?,"occurred_at"?,"text"?}`.
/// Omitted `event_type` (Endpoint Security Cloud) takes the first type of its severity;
/// omitted `display_name` comes from the tables of `business-hub-api.md`; omitted
/// `occurred_at` is now on the simulated clock.
pub async fn start(addr: SocketAddr, config: Config) -> std::io::Result<SimHandle> {
    let core = SimCore::new();
    let sim = Arc::new(Sim { config, core: core.clone(), data: Mutex::new(Data::default()) });
    seed_if_wanted(&sim);
    let on_reset = {
        let sim = Arc::clone(&sim);
        move || {
            *lock(&sim.data) = Data::default();
            seed_if_wanted(&sim);
        }
    };
    common::start_router(addr, router(Arc::clone(&sim)), core, on_reset).await
}

fn router(sim: Shared) -> Router {
    Router::new()
        .route("/api/v1/auth/token", post(login))
        .route("/api/v1/companies", get(list_companies))
        .route("/api/v1/companies/{company}/devices", get(list_devices))
        .route("/api/v1/companies/{company}/events", get(list_events))
        .route("/api/v1/companies/{company}/o365/events", get(list_o365_events))
        .route("/api/v1/companies/{company}/o365/issues", get(list_issues))
        .route("/_sim/companies", post(ctl_company))
        .route("/_sim/events", post(ctl_event))
        .route("/_sim/o365/issues", post(ctl_issue))
        .route("/_sim/devices/{company}/{device}", put(ctl_device_put).delete(ctl_device_delete))
        .route("/_sim/auth/expire", post(ctl_expire_tokens))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .with_state(sim)
}

// ---------------------------------------------------------------------------------------------
// errors, auth, limits, paging
// ---------------------------------------------------------------------------------------------

/// An error answer: `{"error":{"code","message"}}` with its status (and `Retry-After`).
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<i64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut resp = (self.status, body).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// `{"error":{"code","message"}}` with `status`.
fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError { status, code, message: message.into(), retry_after: None }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

type ApiResult = Result<Response, ApiError>;

/// Checks the bearer token and counts the request against its limit.
fn authorize(sim: &Sim, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(error(StatusCode::UNAUTHORIZED, "unauthorized", "missing bearer token"));
    };
    let now = sim.core.clock.now();
    let mut data = lock(&sim.data);
    let valid = token == sim.config.token || data.login_tokens.get(token).is_some_and(|expires| now < *expires);
    if !valid {
        let message = if data.login_tokens.contains_key(token) { "token expired" } else { "invalid token" };
        return Err(error(StatusCode::UNAUTHORIZED, "unauthorized", message));
    }
    let limit = sim.config.requests_per_minute;
    if limit == 0 {
        return Ok(());
    }
    let window = data.windows.entry(token.to_owned()).or_insert((now, 0));
    let elapsed = now - window.0;
    if elapsed >= chrono::Duration::seconds(WINDOW_SECS) || elapsed < chrono::Duration::zero() {
        *window = (now, 0);
    }
    if window.1 >= limit {
        let left = chrono::Duration::seconds(WINDOW_SECS) - (now - window.0);
        let secs = ((left.num_milliseconds() + 999) / 1000).max(1);
        let message = format!("more than {limit} requests per minute");
        return Err(ApiError {
            retry_after: Some(secs),
            ..error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        });
    }
    window.1 += 1;
    Ok(())
}

/// `limit` (1..=500, default 100).
fn parse_limit(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(bad_request(format!("limit must be an integer in 1..={MAX_LIMIT}, got {s:?}"))),
        },
    }
}

/// An offset cursor of the plain lists (`o<offset>`).
fn parse_offset_cursor(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    match q.get("cursor") {
        None => Ok(0),
        Some(c) => c
            .strip_prefix('o')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| bad_request(format!("invalid cursor {c:?}"))),
    }
}

/// One page of a plain list.
fn offset_page(items: &[Value], q: &HashMap<String, String>) -> ApiResult {
    let limit = parse_limit(q)?;
    let offset = parse_offset_cursor(q)?.min(items.len());
    let end = offset.saturating_add(limit).min(items.len());
    let page = &items[offset..end];
    let next = (end < items.len()).then(|| format!("o{end}"));
    Ok(Json(json!({"items": page, "next_cursor": next})).into_response())
}

/// One page of an event list: `seq > max(after_seq, cursor)` and, with `occurred_after`,
/// `occurred_at >= occurred_after`; ascending `seq` (arrival order), at most `limit`.
fn event_page(events: &[StoredEvent], q: &HashMap<String, String>) -> ApiResult {
    let limit = parse_limit(q)?;
    let after = match q.get("after_seq") {
        None => 0,
        Some(s) => {
            s.parse::<u64>().map_err(|_| bad_request(format!("after_seq must be a non-negative integer, got {s:?}")))?
        }
    };
    let from_cursor = match q.get("cursor") {
        None => 0,
        Some(c) => c
            .strip_prefix('s')
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| bad_request(format!("invalid cursor {c:?}")))?,
    };
    let occurred_after = match q.get("occurred_after") {
        None => None,
        Some(s) => Some(
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| bad_request(format!("occurred_after must be an RFC 3339 time, got {s:?}")))?,
        ),
    };
    let after = after.max(from_cursor);
    let mut rest = events.iter().filter(|e| e.seq > after && occurred_after.is_none_or(|since| e.occurred_at >= since));
    let page: Vec<&StoredEvent> = rest.by_ref().take(limit).collect();
    let next = match (rest.next(), page.last()) {
        (Some(_), Some(last)) => Some(format!("s{}", last.seq)),
        _ => None,
    };
    let items: Vec<&Value> = page.iter().map(|e| &e.json).collect();
    Ok(Json(json!({"items": items, "next_cursor": next})).into_response())
}

// ---------------------------------------------------------------------------------------------
// API handlers
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

async fn login(State(sim): State<Shared>, body: Bytes) -> ApiResult {
    let creds = serde_json::from_slice::<LoginBody>(&body)
        .map_err(|_| bad_request("body must be {\"email\":\"...\",\"password\":\"...\"}"))?;
    if creds.email != sim.config.email || creds.password != sim.config.password {
        return Err(error(StatusCode::UNAUTHORIZED, "unauthorized", "invalid email or password"));
    }
    let now = sim.core.clock.now();
    let ttl = i64::try_from(sim.config.token_ttl_secs).unwrap_or(i64::MAX / 1000);
    let mut data = lock(&sim.data);
    data.issued += 1;
    let token = format!("kbh-login-{}-{:016x}", data.issued, rand::random::<u64>());
    data.login_tokens.insert(token.clone(), now + chrono::Duration::seconds(ttl));
    Ok(Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": sim.config.token_ttl_secs}))
        .into_response())
}

async fn list_companies(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    authorize(&sim, &headers)?;
    let items: Vec<Value> = lock(&sim.data).companies.iter().map(CompanyRec::to_json).collect();
    offset_page(&items, &q)
}

/// Looks the company up, checks it has `product` and runs `f` on it.
fn with_company<T>(sim: &Sim, id: &str, product: &str, f: impl FnOnce(&CompanyRec) -> T) -> Result<T, ApiError> {
    let data = lock(&sim.data);
    let Some(c) = data.company(id) else {
        return Err(error(StatusCode::NOT_FOUND, "not_found", format!("company {id} not found")));
    };
    if !c.has(product) {
        return Err(error(StatusCode::NOT_FOUND, "not_found", format!("company {id} has no {product} workspace")));
    }
    Ok(f(c))
}

async fn list_devices(
    State(sim): State<Shared>,
    Path(company): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    authorize(&sim, &headers)?;
    let items: Vec<Value> =
        with_company(&sim, &company, "kes_cloud", |c| c.devices.iter().map(DeviceRec::to_json).collect())?;
    offset_page(&items, &q)
}

async fn list_events(
    State(sim): State<Shared>,
    Path(company): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    authorize(&sim, &headers)?;
    with_company(&sim, &company, "kes_cloud", |c| event_page(&c.events, &q))?
}

async fn list_o365_events(
    State(sim): State<Shared>,
    Path(company): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    authorize(&sim, &headers)?;
    with_company(&sim, &company, "ksmo365", |c| event_page(&c.o365_events, &q))?
}

async fn list_issues(
    State(sim): State<Shared>,
    Path(company): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    authorize(&sim, &headers)?;
    let items: Vec<Value> =
        with_company(&sim, &company, "ksmo365", |c| c.issues.iter().map(IssueRec::to_json).collect())?;
    offset_page(&items, &q)
}

// ---------------------------------------------------------------------------------------------
// control handlers
// ---------------------------------------------------------------------------------------------

fn ctl_error(status: StatusCode, message: impl Into<String>) -> ApiError {
    error(status, if status == StatusCode::NOT_FOUND { "not_found" } else { "bad_request" }, message)
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ctl_error(StatusCode::BAD_REQUEST, format!("bad body: {e}")))
}

#[derive(Deserialize)]
struct CompanyBody {
    id: String,
    name: String,
    #[serde(default)]
    products: Vec<String>,
}

async fn ctl_company(State(sim): State<Shared>, body: Bytes) -> ApiResult {
    let b: CompanyBody = parse_body(&body)?;
    if b.id.is_empty() {
        return Err(ctl_error(StatusCode::BAD_REQUEST, "id must not be empty"));
    }
    let mut data = lock(&sim.data);
    let json = upsert_company(&mut data, b.id, b.name, b.products);
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

fn upsert_company(data: &mut Data, id: String, name: String, products: Vec<String>) -> Value {
    match data.company_mut(&id) {
        Some(c) => {
            c.name = name;
            c.products = products;
            c.to_json()
        }
        None => {
            let c = CompanyRec {
                id,
                name,
                products,
                devices: Vec::new(),
                events: Vec::new(),
                o365_events: Vec::new(),
                issues: Vec::new(),
                seq: 0,
            };
            let json = c.to_json();
            data.companies.push(c);
            json
        }
    }
}

#[derive(Deserialize, Default)]
struct EventBody {
    company: String,
    product: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    device_name: Option<String>,
    #[serde(default)]
    mailbox: Option<String>,
    #[serde(default)]
    occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    text: Option<String>,
}

/// Wire spelling of a severity given as `critical`, `functional_failure`, … (or already wired).
fn wire_severity(s: &str) -> Option<&'static str> {
    match s {
        "critical" | "Critical" => Some("Critical"),
        "functional_failure" | "FunctionalFailure" => Some("FunctionalFailure"),
        "warning" | "Warning" => Some("Warning"),
        "info" | "Info" => Some("Info"),
        _ => None,
    }
}

async fn ctl_event(State(sim): State<Shared>, body: Bytes) -> ApiResult {
    let b: EventBody = parse_body(&body)?;
    let now = sim.core.clock.now();
    let mut data = lock(&sim.data);
    let (id, seq) = add_event(&mut data, b, now)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "seq": seq}))).into_response())
}

fn add_event(data: &mut Data, b: EventBody, now: DateTime<Utc>) -> Result<(String, u64), ApiError> {
    let Some(c) = data.company_mut(&b.company) else {
        return Err(ctl_error(StatusCode::NOT_FOUND, format!("company {} not found", b.company)));
    };
    let occurred = b.occurred_at.unwrap_or(now);
    let occurred_at = fmt_time(occurred);
    let text = b.text.unwrap_or_default();
    match b.product.as_str() {
        "kes_cloud" => {
            let severity = b.severity.as_deref().unwrap_or("critical");
            let Some(severity) = wire_severity(severity) else {
                return Err(ctl_error(StatusCode::BAD_REQUEST, format!("unknown severity {severity:?}")));
            };
            let event_type = b.event_type.unwrap_or_else(|| {
                ESC_EVENT_TYPES
                    .iter()
                    .find(|(s, _, _)| *s == severity)
                    .map(|(_, t, _)| (*t).to_owned())
                    .unwrap_or_default()
            });
            let display_name = b.display_name.unwrap_or_else(|| {
                ESC_EVENT_TYPES
                    .iter()
                    .find(|(_, t, _)| *t == event_type)
                    .map_or_else(|| event_type.clone(), |(_, _, n)| (*n).to_owned())
            });
            let device_name = b.device_name.or_else(|| {
                let id = b.device.as_deref()?;
                Some(c.devices.iter().find(|d| d.id == id).map_or_else(|| id.to_owned(), |d| d.name.clone()))
            });
            c.seq += 1;
            let seq = c.seq;
            let id = format!("e-{seq}");
            c.events.push(StoredEvent {
                seq,
                occurred_at: occurred,
                json: json!({
                    "id": id, "seq": seq, "occurred_at": occurred_at, "severity": severity,
                    "event_type": event_type, "display_name": display_name,
                    "device_id": b.device, "device_name": device_name, "description": text,
                }),
            });
            Ok((id, seq))
        }
        "ksmo365" => {
            let Some(event_type) = b.event_type.filter(|t| !t.is_empty()) else {
                return Err(ctl_error(StatusCode::BAD_REQUEST, "event_type is required for ksmo365"));
            };
            let display_name = b.display_name.unwrap_or_else(|| o365_display_name(&event_type));
            Ok(push_o365_event(c, event_type, display_name, b.mailbox, occurred, text))
        }
        other => Err(ctl_error(StatusCode::BAD_REQUEST, format!("unknown product {other:?}"))),
    }
}

fn o365_display_name(event_type: &str) -> String {
    O365_EVENT_TYPES
        .iter()
        .find(|(t, _)| *t == event_type)
        .map_or_else(|| event_type.to_owned(), |(_, n)| (*n).to_owned())
}

fn push_o365_event(
    c: &mut CompanyRec,
    event_type: String,
    display_name: String,
    mailbox: Option<String>,
    occurred_at: DateTime<Utc>,
    text: String,
) -> (String, u64) {
    c.seq += 1;
    let seq = c.seq;
    let id = format!("m-{seq}");
    c.o365_events.push(StoredEvent {
        seq,
        occurred_at,
        json: json!({
            "id": id, "seq": seq, "occurred_at": fmt_time(occurred_at), "event_type": event_type,
            "display_name": display_name, "mailbox": mailbox, "description": text,
        }),
    });
    (id, seq)
}

#[derive(Deserialize)]
struct IssueBody {
    company: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    resolved: Option<bool>,
    #[serde(default)]
    message: Option<String>,
}

async fn ctl_issue(State(sim): State<Shared>, body: Bytes) -> ApiResult {
    let b: IssueBody = parse_body(&body)?;
    if b.kind.is_empty() {
        return Err(ctl_error(StatusCode::BAD_REQUEST, "type must not be empty"));
    }
    let active = match (b.active, b.resolved) {
        (Some(a), Some(r)) if a == r => {
            return Err(ctl_error(StatusCode::BAD_REQUEST, "active and resolved contradict each other"));
        }
        (Some(a), _) => a,
        (None, Some(r)) => !r,
        (None, None) => true,
    };
    let now = sim.core.clock.now();
    let mut data = lock(&sim.data);
    let Some(c) = data.company_mut(&b.company) else {
        return Err(ctl_error(StatusCode::NOT_FOUND, format!("company {} not found", b.company)));
    };
    let idx = match c.issues.iter().position(|i| i.kind == b.kind) {
        Some(i) => i,
        None if !active => {
            return Err(ctl_error(StatusCode::NOT_FOUND, format!("issue {} was never raised", b.kind)));
        }
        None => {
            c.issues.push(IssueRec {
                kind: b.kind.clone(),
                active: false,
                since: now,
                resolved_at: None,
                message: String::new(),
            });
            c.issues.len() - 1
        }
    };
    let mut event = Value::Null;
    let was_active = c.issues[idx].active;
    if active && !was_active {
        let message = b.message.unwrap_or_default();
        let issue = &mut c.issues[idx];
        issue.active = true;
        issue.since = now;
        issue.resolved_at = None;
        issue.message.clone_from(&message);
        let (id, seq) = push_o365_event(c, b.kind.clone(), o365_display_name(&b.kind), None, now, message);
        event = json!({"id": id, "seq": seq});
    } else if active {
        if let Some(m) = b.message {
            c.issues[idx].message = m;
        }
    } else if was_active {
        let issue = &mut c.issues[idx];
        issue.active = false;
        issue.resolved_at = Some(now);
        if let Some(m) = b.message {
            issue.message = m;
        }
    }
    let mut out = c.issues[idx].to_json();
    out["event"] = event;
    Ok(Json(out).into_response())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DescriptionBody {
    Code(String),
    Full {
        code: String,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        status: Option<String>,
    },
}

#[derive(Deserialize)]
struct DeviceBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    descriptions: Vec<DescriptionBody>,
}

fn description(body: DescriptionBody) -> Result<Description, ApiError> {
    let (code, text, status) = match body {
        DescriptionBody::Code(code) => (code, None, None),
        DescriptionBody::Full { code, text, status } => (code, text, status),
    };
    let known = DESCRIPTIONS.iter().find(|(c, _, _)| *c == code);
    let status = match status.as_deref().or(known.map(|(_, _, l)| *l)) {
        None | Some("Warning" | "warning") => "Warning",
        Some("Critical" | "critical") => "Critical",
        Some(other) => {
            return Err(ctl_error(
                StatusCode::BAD_REQUEST,
                format!("description status {other:?} is not Warning or Critical"),
            ));
        }
    };
    let text = text.or_else(|| known.map(|(_, t, _)| (*t).to_owned())).unwrap_or_else(|| code.clone());
    Ok(Description { code, text, status })
}

async fn ctl_device_put(
    State(sim): State<Shared>,
    Path((company, device)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let b: DeviceBody = parse_body(&body)?;
    let mut descriptions: Vec<Description> = Vec::with_capacity(b.descriptions.len());
    for d in b.descriptions {
        let d = description(d)?;
        if descriptions.iter().all(|x| x.code != d.code) {
            descriptions.push(d);
        }
    }
    let now = sim.core.clock.now();
    let mut data = lock(&sim.data);
    let Some(c) = data.company_mut(&company) else {
        return Err(ctl_error(StatusCode::NOT_FOUND, format!("company {company} not found")));
    };
    let json = upsert_device(c, device, b.name, b.os, descriptions, now);
    Ok(Json(json).into_response())
}

fn upsert_device(
    c: &mut CompanyRec,
    id: String,
    name: Option<String>,
    os: Option<String>,
    descriptions: Vec<Description>,
    now: DateTime<Utc>,
) -> Value {
    let idx = match c.devices.iter().position(|d| d.id == id) {
        Some(i) => i,
        None => {
            c.devices.push(DeviceRec {
                name: id.clone(),
                id,
                os: "Windows 11".to_owned(),
                last_seen: now,
                descriptions: Vec::new(),
            });
            c.devices.len() - 1
        }
    };
    let d = &mut c.devices[idx];
    if let Some(n) = name {
        d.name = n;
    }
    if let Some(o) = os {
        d.os = o;
    }
    d.descriptions = descriptions;
    d.last_seen = now;
    d.to_json()
}

async fn ctl_device_delete(State(sim): State<Shared>, Path((company, device)): Path<(String, String)>) -> ApiResult {
    let mut data = lock(&sim.data);
    let Some(c) = data.company_mut(&company) else {
        return Err(ctl_error(StatusCode::NOT_FOUND, format!("company {company} not found")));
    };
    let before = c.devices.len();
    c.devices.retain(|d| d.id != device);
    if c.devices.len() == before {
        return Err(ctl_error(StatusCode::NOT_FOUND, format!("device {device} not found")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn ctl_expire_tokens(State(sim): State<Shared>) -> Response {
    let now = sim.core.clock.now();
    let mut data = lock(&sim.data);
    let n = data.login_tokens.len();
    for expires in data.login_tokens.values_mut() {
        *expires = now;
    }
    Json(json!({"expired": n})).into_response()
}

// ---------------------------------------------------------------------------------------------
// demo data
// ---------------------------------------------------------------------------------------------

fn seed_if_wanted(sim: &Sim) {
    if !sim.config.seed_demo {
        return;
    }
    let now = sim.core.clock.now();
    let mut data = lock(&sim.data);
    upsert_company(&mut data, "c-7f3a".into(), "Acme Dental".into(), vec!["kes_cloud".into(), "ksmo365".into()]);
    upsert_company(&mut data, "c-91b2".into(), "Blue Harbor Logistics".into(), vec!["kes_cloud".into()]);
    let d = |code: &str| description(DescriptionBody::Code(code.to_owned())).ok();
    if let Some(c) = data.company_mut("c-7f3a") {
        upsert_device(
            c,
            "d-01".into(),
            Some("ACME-PC-01".into()),
            None,
            d("databases_out_of_date").into_iter().collect(),
            now,
        );
        upsert_device(c, "d-02".into(), Some("ACME-PC-02".into()), None, Vec::new(), now);
    }
    if let Some(c) = data.company_mut("c-91b2") {
        let descs = [d("realtime_protection_not_running"), d("many_viruses_detected")].into_iter().flatten().collect();
        upsert_device(c, "d-11".into(), Some("BH-LAPTOP-11".into()), Some("Windows 10".into()), descs, now);
    }
    let events = [
        EventBody {
            company: "c-7f3a".into(),
            product: "kes_cloud".into(),
            severity: Some("critical".into()),
            device: Some("d-01".into()),
            text: Some("Trojan.Win32.Agent detected in C:\\Users\\reception\\invoice.exe".into()),
            ..EventBody::default()
        },
        EventBody {
            company: "c-7f3a".into(),
            product: "ksmo365".into(),
            event_type: Some("phishing_detected".into()),
            mailbox: Some("ceo@acme.example".into()),
            text: Some("Phishing link in message \"Your invoice\"".into()),
            ..EventBody::default()
        },
        EventBody {
            company: "c-91b2".into(),
            product: "kes_cloud".into(),
            severity: Some("warning".into()),
            event_type: Some("GNRL_EV_OBJECT_BLOCKED".into()),
            device: Some("d-11".into()),
            text: Some("Object blocked by Web Threat Protection".into()),
            ..EventBody::default()
        },
    ];
    for e in events {
        let _ = add_event(&mut data, e, now);
    }
}
