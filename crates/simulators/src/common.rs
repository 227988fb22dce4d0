//! Pieces shared by the three simulators.
//!
//! * [`SimHandle`]: a running simulator on loopback; dropping it (or calling
//!   [`SimHandle::shutdown`]) stops it.
//! * [`serve`]: runs an axum [`Router`] on a bound listener with graceful shutdown.
//! * [`SimCore`]: the state every simulator carries — a request [`Journal`], a list of
//!   injected [`FaultSpec`]s and a movable [`Clock`].
//! * [`finish`]: wraps a simulator's API router with the journal/fault middleware and adds
//!   the common control routes under `/_sim/`.
//! * [`run_binary`]: the `main` tail of every simulator binary; [`JournalArgs`]: their
//!   `--journal N` flag (the journal keeps the newest N requests, default 10,000, 0 = none;
//!   also settable for every simulator with the `SIM_JOURNAL` environment variable).
//!
//! # Control routes added by [`finish`]
//!
//! | Route | Body | Effect |
//! |---|---|---|
//! | `POST /_sim/reset` | none | clears journal, faults and clock offset, then runs the simulator's own reset |
//! | `GET /_sim/requests` | none | JSON array of `{"method","path","status","time"}`; with `?detail=true` also `"query"`, `"headers"`, `"body"` |
//! | `POST /_sim/faults` | [`FaultSpec`] | the next `count` matching requests get `status`/`body` after `delay_ms` |
//! | `DELETE /_sim/faults` | none | drops every pending fault |
//! | `POST /_sim/clock` | `{"advance_secs":N}` | moves the simulated clock forward (N may be negative); answers `{"now":"..."}` |
//!
//! The journal and the faults apply to the simulated API routes only, never to `/_sim/...`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Prefix of the control API; requests under it bypass the journal and fault injection.
pub const CONTROL_PREFIX: &str = "/_sim/";

/// Locks a mutex, ignoring poisoning (a panicking handler must not wedge the simulator).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// SimHandle / serve
// ---------------------------------------------------------------------------------------------

/// A running simulator. Dropping it stops the server (without waiting);
/// [`SimHandle::shutdown`] stops it and waits for in-flight requests to finish.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    core: Option<SimCore>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Attaches the simulator's [`SimCore`] so in-process users can read the full journal.
    #[must_use]
    pub fn with_core(mut self, core: SimCore) -> Self {
        self.core = Some(core);
        self
    }

    /// The attached [`SimCore`], if the simulator provided one.
    pub fn core(&self) -> Option<&SimCore> {
        self.core.as_ref()
    }

    /// Full journal entries (with headers and bodies), or empty if no core is attached.
    pub fn requests(&self) -> Vec<JournalEntry> {
        self.core.as_ref().map(|c| c.journal.entries()).unwrap_or_default()
    }

    /// Stops the server gracefully and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves `router` on `listener` in a background task with graceful shutdown.
///
/// Must be called inside a tokio runtime. Fails only if the listener has no local address.
pub fn serve(listener: TcpListener, router: Router) -> std::io::Result<SimHandle> {
    let addr = listener.local_addr()?;
    Ok(serve_on(listener, addr, base_url_for(addr), router))
}

/// Serves `router` on any axum listener (e.g. a TLS one) in a background task with graceful
/// shutdown; `base_url` is what [`SimHandle::base_url`] answers.
pub fn serve_on<L>(listener: L, addr: SocketAddr, base_url: String, router: Router) -> SimHandle
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let router = if CLOSE_CONNECTIONS.load(Ordering::SeqCst) {
        router.layer(axum::middleware::map_response(|mut resp: Response| async move {
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }))
    } else {
        router
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(e) = server.await {
            tracing::warn!(error = %e, "simulator server stopped with an error");
        }
    });
    SimHandle { addr, base_url, stop: Some(stop), task: Some(task), core: None }
}

/// Whether simulators started from now on answer `Connection: close` (see
/// [`set_close_connections`]).
static CLOSE_CONNECTIONS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes simulators started from now on (in this process) close every connection after its
/// response (`Connection: close`), so clients keep no idle connections to them. For tests that
/// count the process's open file descriptors: what stays open is then what a client holds on
/// to (a request that never ends), not how many idle connections its pool happened to keep.
pub fn set_close_connections(close: bool) {
    CLOSE_CONNECTIONS.store(close, Ordering::SeqCst);
}

/// `http://HOST:PORT` for a socket address (IPv6 hosts in brackets).
pub fn base_url_for(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("http://{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("http://[{}]:{}", a.ip(), a.port()),
    }
}

/// Prints `listening on http://HOST:PORT` as the first stdout line (flushed), then waits for
/// SIGINT or SIGTERM and shuts the simulator down.
pub async fn run_binary(handle: SimHandle) -> std::io::Result<()> {
    run_binary_with(handle, "").await
}

/// [`run_binary`] printing `notice` (when not empty) right after the `listening on` line.
pub async fn run_binary_with(handle: SimHandle, notice: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", handle.base_url())?;
        if !notice.is_empty() {
            writeln!(out, "{notice}")?;
        }
        out.flush()?;
    }
    wait_for_signal().await?;
    handle.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

// ---------------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------------

/// Wall clock plus a movable offset (`POST /_sim/clock`). Cloning shares the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Simulated "now" (UTC).
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Moves the clock by `secs` (may be negative).
    pub fn advance_secs(&self, secs: i64) {
        self.offset_ms.fetch_add(secs.saturating_mul(1000), Ordering::SeqCst);
    }

    /// Current offset from the real clock.
    pub fn offset(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Back to the real clock.
    pub fn reset(&self) {
        self.offset_ms.store(0, Ordering::SeqCst);
    }
}

/// Formats a time as `YYYY-MM-DDTHH:MM:SS.fffZ`.
pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------------------------------------
// Journal
// ---------------------------------------------------------------------------------------------

/// One recorded API request.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// HTTP method, upper case.
    pub method: String,
    /// Path as received (no query string).
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Response status (0 while the request is still in flight).
    pub status: u16,
    /// Arrival time on the simulated clock.
    pub time: DateTime<Utc>,
    /// Request headers (names lower case, in arrival order).
    pub headers: Vec<(String, String)>,
    /// Raw request body.
    pub body: Bytes,
}

impl JournalEntry {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The public summary `{"method","path","status","time"}`; with `detail` also query,
    /// headers and body (as JSON when it parses, else as a string).
    pub fn to_json(&self, detail: bool) -> Value {
        let mut v = json!({
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "time": fmt_time(self.time),
        });
        if detail {
            let headers: BTreeMap<&str, &str> = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let body = self.json().unwrap_or_else(|| Value::String(String::from_utf8_lossy(&self.body).into_owned()));
            v["query"] = json!(self.query);
            v["headers"] = json!(headers);
            v["body"] = body;
        }
        v
    }
}

/// How many entries a [`Journal`] keeps by default (the newest ones).
pub const DEFAULT_JOURNAL_LIMIT: usize = 10_000;

/// The process-wide default bound of new journals: [`DEFAULT_JOURNAL_LIMIT`], or the
/// `SIM_JOURNAL` environment variable, or what [`set_default_journal_limit`] (the binaries'
/// `--journal N` flag) set. `usize::MAX` = not yet decided.
static DEFAULT_LIMIT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(usize::MAX);

/// Sets the bound of journals created from now on (0 = record nothing). The simulator
/// binaries call it with their `--journal N` flag before starting.
pub fn set_default_journal_limit(limit: usize) {
    DEFAULT_LIMIT.store(limit.min(usize::MAX - 1), Ordering::SeqCst);
}

/// The bound new journals get (see [`set_default_journal_limit`]).
pub fn default_journal_limit() -> usize {
    match DEFAULT_LIMIT.load(Ordering::SeqCst) {
        usize::MAX => {
            std::env::var("SIM_JOURNAL").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_JOURNAL_LIMIT)
        }
        n => n,
    }
}

/// The `--journal N` flag every simulator binary takes (flatten it into the binary's clap
/// arguments and call [`JournalArgs::apply`] before starting the simulator).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct JournalArgs {
    /// Keep only the newest N requests in the request journal (0 = keep none). Default:
    /// `SIM_JOURNAL` from the environment, else 10000.
    #[arg(long = "journal", value_name = "N")]
    pub journal: Option<usize>,
}

impl JournalArgs {
    /// Makes the flag the default bound of every journal created afterwards.
    pub fn apply(&self) {
        if let Some(n) = self.journal {
            set_default_journal_limit(n);
        }
    }
}

#[derive(Debug)]
struct JournalInner {
    /// (sequence number, entry), oldest first; at most `limit` of them.
    entries: std::collections::VecDeque<(u64, JournalEntry)>,
    next_seq: u64,
    limit: usize,
    dropped: u64,
}

/// Request journal, in arrival order, bounded to the newest `limit` entries (a long-running
/// simulator must not grow without end). Cloning shares it.
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Mutex<JournalInner>>,
}

impl Default for Journal {
    fn default() -> Self {
        Self::with_limit(default_journal_limit())
    }
}

impl Journal {
    /// An empty journal keeping at most `limit` entries (0 = none).
    pub fn with_limit(limit: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(JournalInner {
                entries: std::collections::VecDeque::new(),
                next_seq: 0,
                limit,
                dropped: 0,
            })),
        }
    }

    /// Snapshot of every entry kept.
    pub fn entries(&self) -> Vec<JournalEntry> {
        lock(&self.inner).entries.iter().map(|(_, e)| e.clone()).collect()
    }

    /// Number of entries kept.
    pub fn len(&self) -> usize {
        lock(&self.inner).entries.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound.
    pub fn limit(&self) -> usize {
        lock(&self.inner).limit
    }

    /// Changes the bound, dropping the oldest entries beyond it.
    pub fn set_limit(&self, limit: usize) {
        let mut g = lock(&self.inner);
        g.limit = limit;
        g.trim();
    }

    /// How many entries were dropped to stay within the bound (since the last clear).
    pub fn dropped(&self) -> u64 {
        lock(&self.inner).dropped
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut g = lock(&self.inner);
        g.entries.clear();
        g.dropped = 0;
    }

    fn push(&self, e: JournalEntry) -> u64 {
        let mut g = lock(&self.inner);
        let seq = g.next_seq;
        g.next_seq += 1;
        g.entries.push_back((seq, e));
        g.trim();
        seq
    }

    fn set_status(&self, seq: u64, status: u16) {
        let mut g = lock(&self.inner);
        if let Some((_, e)) = g.entries.iter_mut().rev().find(|(s, _)| *s == seq) {
            e.status = status;
        }
    }
}

impl JournalInner {
    fn trim(&mut self) {
        while self.entries.len() > self.limit {
            self.entries.pop_front();
            self.dropped += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

/// Body of `POST /_sim/faults`.
///
/// The next `count` requests whose method equals `method` (any method when absent) and whose
/// path matches `path_regex` (searched, not anchored; any path when absent) wait `delay_ms` and
/// then get `status` with `body` (a JSON string is sent as plain text, anything else as JSON,
/// absent/null as an empty body) plus `headers`. `status` 0 or absent means "only delay, then
/// serve normally".
#[derive(Debug, Clone, Deserialize, Default)]
pub struct FaultSpec {
    /// HTTP method to match (case-insensitive); any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Regex searched in the request path; any path when absent.
    #[serde(default)]
    pub path_regex: Option<String>,
    /// Status to answer with; 0/absent = serve normally after the delay.
    #[serde(default)]
    pub status: Option<u16>,
    /// Response body.
    #[serde(default)]
    pub body: Option<Value>,
    /// How many requests the fault applies to (default 1).
    #[serde(default)]
    pub count: Option<u32>,
    /// Delay before answering, in milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Extra response headers (only with a non-zero status).
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug)]
struct ActiveFault {
    method: Option<Method>,
    path: Option<regex::Regex>,
    remaining: u32,
    spec: FaultSpec,
}

/// Pending injected faults. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    list: Arc<Mutex<Vec<ActiveFault>>>,
}

impl Faults {
    /// Adds a fault; fails on a bad regex, method or status.
    pub fn add(&self, spec: FaultSpec) -> Result<(), String> {
        let method = match &spec.method {
            Some(m) if !m.is_empty() => {
                Some(Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|e| format!("bad method: {e}"))?)
            }
            _ => None,
        };
        let path = match &spec.path_regex {
            Some(r) => Some(regex::Regex::new(r).map_err(|e| format!("bad path_regex: {e}"))?),
            None => None,
        };
        if let Some(s) = spec.status
            && s != 0
            && StatusCode::from_u16(s).is_err()
        {
            return Err(format!("bad status: {s}"));
        }
        let remaining = spec.count.unwrap_or(1);
        if remaining == 0 {
            return Ok(());
        }
        lock(&self.list).push(ActiveFault { method, path, remaining, spec });
        Ok(())
    }

    /// Drops every pending fault.
    pub fn clear(&self) {
        lock(&self.list).clear();
    }

    /// Number of pending faults.
    pub fn pending(&self) -> usize {
        lock(&self.list).len()
    }

    /// Takes one use of the first fault matching this request.
    pub fn take(&self, method: &Method, path: &str) -> Option<FaultSpec> {
        let mut g = lock(&self.list);
        let idx = g.iter().position(|f| {
            f.method.as_ref().is_none_or(|m| m == method) && f.path.as_ref().is_none_or(|r| r.is_match(path))
        })?;
        let f = &mut g[idx];
        f.remaining -= 1;
        let spec = f.spec.clone();
        if f.remaining == 0 {
            g.remove(idx);
        }
        Some(spec)
    }
}

fn fault_response(spec: &FaultSpec, status: StatusCode) -> Response {
    let mut resp = match &spec.body {
        None | Some(Value::Null) => status.into_response(),
        Some(Value::String(s)) => {
            (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], s.clone()).into_response()
        }
        Some(v) => (status, Json(v.clone())).into_response(),
    };
    if let Some(hs) = &spec.headers {
        for (k, v) in hs {
            if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                resp.headers_mut().insert(k, v);
            }
        }
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// SimCore, middleware and control routes
// ---------------------------------------------------------------------------------------------

/// State shared by every simulator: journal, faults, clock. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct SimCore {
    /// Request journal of the API routes.
    pub journal: Journal,
    /// Pending injected faults.
    pub faults: Faults,
    /// Simulated clock.
    pub clock: Clock,
}

impl SimCore {
    /// A fresh core.
    pub fn new() -> Self {
        Self::default()
    }

    /// Clears journal and faults and resets the clock.
    pub fn reset(&self) {
        self.journal.clear();
        self.faults.clear();
        self.clock.reset();
    }
}

/// True for paths of the control API (`/_sim` and below).
pub fn is_control_path(path: &str) -> bool {
    path == "/_sim" || path.starts_with(CONTROL_PREFIX)
}

/// The journal + fault-injection middleware (use through [`finish`] or
/// `axum::middleware::from_fn_with_state(core, journal_and_faults)`).
pub async fn journal_and_faults(State(core): State<SimCore>, req: Request, next: Next) -> Response {
    if is_control_path(req.uri().path()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let headers = header_pairs(&parts.headers);
    let idx = core.journal.push(JournalEntry {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        status: 0,
        time: core.clock.now(),
        headers,
        body: bytes.clone(),
    });
    let fault = core.faults.take(&parts.method, parts.uri.path());
    let resp = match fault {
        Some(spec) => {
            if let Some(ms) = spec.delay_ms.filter(|ms| *ms > 0) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            match spec.status.filter(|s| *s != 0).and_then(|s| StatusCode::from_u16(s).ok()) {
                Some(status) => fault_response(&spec, status),
                None => next.run(Request::from_parts(parts, Body::from(bytes))).await,
            }
        }
        None => next.run(Request::from_parts(parts, Body::from(bytes))).await,
    };
    core.journal.set_status(idx, resp.status().as_u16());
    resp
}

fn header_pairs(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter().map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

#[derive(Deserialize)]
struct RequestsQuery {
    #[serde(default)]
    detail: Option<String>,
}

#[derive(Deserialize)]
struct ClockBody {
    #[serde(default)]
    advance_secs: Option<i64>,
}

/// Routes `POST /_sim/reset` (core reset + `on_reset`), `GET /_sim/requests`,
/// `POST|DELETE /_sim/faults` and `POST /_sim/clock`.
pub fn control_routes<F>(core: &SimCore, on_reset: F) -> Router
where
    F: Fn() + Send + Sync + 'static,
{
    let on_reset = Arc::new(on_reset);
    Router::new()
        .route(
            "/_sim/reset",
            post(move |State(core): State<SimCore>| {
                let on_reset = Arc::clone(&on_reset);
                async move {
                    core.reset();
                    on_reset();
                    Json(json!({"reset": true}))
                }
            }),
        )
        .route(
            "/_sim/requests",
            get(|State(core): State<SimCore>, Query(q): Query<RequestsQuery>| async move {
                let detail = matches!(q.detail.as_deref(), Some("true" | "1" | "yes"));
                let list: Vec<Value> = core.journal.entries().iter().map(|e| e.to_json(detail)).collect();
                Json(Value::Array(list))
            }),
        )
        .route(
            "/_sim/faults",
            post(|State(core): State<SimCore>, body: Bytes| async move {
                let spec: FaultSpec = match serde_json::from_slice(&body) {
                    Ok(s) => s,
                    Err(e) => {
                        return (StatusCode::BAD_REQUEST, Json(json!({"error": format!("bad fault spec: {e}")})))
                            .into_response();
                    }
                };
                match core.faults.add(spec) {
                    Ok(()) => Json(json!({"pending": core.faults.pending()})).into_response(),
                    Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response(),
                }
            })
            .delete(|State(core): State<SimCore>| async move {
                core.faults.clear();
                Json(json!({"pending": 0}))
            }),
        )
        .route(
            "/_sim/clock",
            post(|State(core): State<SimCore>, body: Bytes| async move {
                let b: ClockBody = if body.is_empty() {
                    ClockBody { advance_secs: None }
                } else {
                    match serde_json::from_slice(&body) {
                        Ok(b) => b,
                        Err(e) => {
                            return (StatusCode::BAD_REQUEST, Json(json!({"error": format!("bad clock body: {e}")})))
                                .into_response();
                        }
                    }
                };
                if let Some(s) = b.advance_secs {
                    core.clock.advance_secs(s);
                }
                Json(json!({
                    "now": fmt_time(core.clock.now()),
                    "offset_secs": core.clock.offset().num_seconds(),
                }))
                .into_response()
            }),
        )
        .with_state(core.clone())
}

/// Wraps a simulator's `api` router: merges the common [`control_routes`] (with `on_reset`)
/// and applies the [`journal_and_faults`] middleware to everything outside `/_sim/`.
///
/// `api` may carry its own extra `/_sim/...` routes; they are not journaled either.
pub fn finish<F>(api: Router, core: &SimCore, on_reset: F) -> Router
where
    F: Fn() + Send + Sync + 'static,
{
    api.merge(control_routes(core, on_reset))
        .layer(axum::middleware::from_fn_with_state(core.clone(), journal_and_faults))
}

/// Binds `listen`, builds the router with [`finish`] and serves it; the returned handle has
/// `core` attached.
pub async fn start_router<F>(listen: SocketAddr, api: Router, core: SimCore, on_reset: F) -> std::io::Result<SimHandle>
where
    F: Fn() + Send + Sync + 'static,
{
    let listener = TcpListener::bind(listen).await?;
    let router = finish(api, &core, on_reset);
    Ok(serve(listener, router)?.with_core(core))
}
