//! The admin listener's gate (issue 28): who makes each request, whether their role may, and
//! the change log of what they changed; plus the per-client and global rate limits.
//!
//! One table, [`need`], says which role every route needs (a route it does not know needs
//! `admin`, so a new write route is closed until placed). The admin API takes bearer tokens
//! (the configured `admin.token`, or a user's API token); the UI takes its session cookie. The
//! principal goes into the request's extensions for the handlers, and, for the UI's pages,
//! into [`CURRENT`] while the handler runs, so the page frame can show who is logged in and hide
//! what the role cannot do.
//!
//! A write route of a [`ChangeKind`] is recorded here, around the handler: the revisions
//! before and after (rules or mapping; a change that moved none is not recorded), or, for
//! retries and reloads, a success status. User and token changes are recorded by
//! [`crate::access::users`] itself.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;

use crate::access::changes::{record, revision_of, revisions};
use crate::access::{Principal, Role, sessions};
use crate::admin::AdminState;
use crate::store::ChangeKind;

/// What a route needs: a role (`None`: open to anyone) and the kind of change it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The lowest role that may (`None`: no login needed).
    pub role: Option<Role>,
    /// What it changes, when it is recorded here.
    pub kind: Option<ChangeKind>,
}

const fn open() -> Need {
    Need { role: None, kind: None }
}
const fn read(role: Role) -> Need {
    Need { role: Some(role), kind: None }
}
const fn write(role: Role, kind: ChangeKind) -> Need {
    Need { role: Some(role), kind: Some(kind) }
}

/// Where the UI's style sheets and script are served: open to all, and past the rate limit.
pub const ASSETS: &str = "/ui/assets/";

/// Which role a route needs, and what it changes.
pub fn need(method: &Method, path: &str) -> Need {
    use ChangeKind as K;
    use Role::{Admin, Operator, Viewer};
    let get = *method == Method::GET || *method == Method::HEAD;
    match path {
        "/healthz" | "/readyz" | "/" | "/ui" | "/ui/" | "/ui/login" => open(),
        p if p.starts_with(ASSETS) => open(),
        p if p.starts_with("/api/users") || p.starts_with("/api/tokens") || p.starts_with("/ui/users") => read(Admin),
        _ if get => read(Viewer),
        "/ui/logout" | "/ui/text/preview" => read(Viewer),
        "/api/rules/save" | "/ui/save" => write(Operator, K::RulesSave),
        "/api/rules/cancel" | "/ui/cancel" => write(Operator, K::RulesCancel),
        "/api/rules/reset" | "/ui/reset" => write(Operator, K::RulesReset),
        "/api/rules/draft"
        | "/api/rules/bulk-edit"
        | "/api/rules/general"
        | "/api/rules/priority-follows-severity"
        | "/ui/rows"
        | "/ui/general"
        | "/ui/bulk-edit"
        | "/ui/text/apply"
        | "/ui/text/default" => write(Operator, K::RulesDraft),
        p if p.starts_with("/api/rules/maintenance") || p.starts_with("/ui/maintenance/") => {
            write(Operator, K::Maintenance)
        }
        p if p.starts_with("/api/mapping") || p.starts_with("/ui/mapping/") => write(Operator, K::Mapping),
        "/api/ledger/retry" => write(Operator, K::LedgerRetry),
        "/api/reload" => write(Admin, K::Reload),
        _ => read(Admin),
    }
}

tokio::task_local! {
    /// The principal of the UI request being handled (set by [`ui`] around the handler).
    pub static CURRENT: Principal;
}

/// The principal of the UI request being handled, if logged in.
pub fn current() -> Option<Principal> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Whether `/metrics` is read from this machine while `admin.metrics_auth` is off.
fn open_metrics(state: &AdminState, req: &Request) -> bool {
    req.uri().path() == "/metrics"
        && !state.shared.presentation.with(|p| p.metrics_auth)
        && req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .is_some_and(|c| c.0.ip().is_loopback())
}

/// The words of a refusal for a role.
pub fn forbidden_words(p: &Principal, need: Role) -> String {
    format!("{} has the {} role; this needs the {need} role (ask an admin to change the role)", p.actor.label(), p.role)
}

/// The admin API's gate: bearer tokens.
pub async fn api(State(state): State<AdminState>, mut req: Request, next: Next) -> Response {
    let need = need(req.method(), req.uri().path());
    let Some(role) = need.role else { return next.run(req).await };
    if open_metrics(&state, &req) {
        return next.run(req).await;
    }
    let presented =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let token = (!state.token.is_empty()).then_some(&state.token);
    let principal = presented.and_then(|t| sessions::bearer(state.shared.store.access(), &state.access, token, t));
    let Some(principal) = principal else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({ "error": "unauthorized" })),
        )
            .into_response();
    };
    if !principal.may(role) {
        let msg = format!("forbidden: {}", forbidden_words(&principal, role));
        return (StatusCode::FORBIDDEN, Json(json!({ "error": msg, "role": principal.role, "needs": role })))
            .into_response();
    }
    req.extensions_mut().insert(principal.clone());
    tracked(&state, principal, need, req, next).await
}

/// The UI's gate: the session cookie. Without a session the request goes on to its handler,
/// which sends it to the login form (pages) or refuses it (forms).
pub async fn ui(State(state): State<AdminState>, mut req: Request, next: Next) -> Response {
    let need = need(req.method(), req.uri().path());
    let live = match (need.role, state.shared.store.access(), cookie(req.headers())) {
        (Some(_), Some(store), Some(c)) => sessions::resolve(store, &state.access, &c).ok().flatten(),
        _ => None,
    };
    let Some(live) = live else { return next.run(req).await };
    let principal = live.principal.clone();
    if let Some(role) = need.role.filter(|r| !principal.may(*r)) {
        let text = format!("Not allowed: {}. Nothing was changed.", forbidden_words(&principal, role));
        let page = crate::ui::refused_page(&text);
        return (StatusCode::FORBIDDEN, axum::response::Html(page)).into_response();
    }
    req.extensions_mut().insert(principal.clone());
    req.extensions_mut().insert(live);
    CURRENT.scope(principal.clone(), tracked(&state, principal, need, req, next)).await
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == crate::ui::SESSION_COOKIE)
        .map(|c| c.value().to_owned())
}

/// Runs a write route and records it in the change log when it changed something.
async fn tracked(state: &AdminState, principal: Principal, need: Need, req: Request, next: Next) -> Response {
    let (Some(kind), Some(access)) = (need.kind, state.shared.store.access()) else { return next.run(req).await };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 4 << 20).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, Json(json!({ "error": "the body is over 4 MiB" }))).into_response();
    };
    let section = section_of(kind, parts.uri.path(), &bytes);
    let detail = format!("{} {}", parts.method, parts.uri.path());
    let store = &state.shared.store;
    let before = revisions(store.as_ref());
    let resp = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let after = revisions(store.as_ref());
    let changed = match (revision_of(kind, before), revision_of(kind, after)) {
        (Some(b), Some(a)) => a != b,
        _ => resp.status().is_success(),
    };
    if changed {
        let now = state.access.clock.now();
        record(
            access,
            &principal.actor,
            kind,
            section,
            revision_of(kind, before),
            revision_of(kind, after),
            detail,
            now,
        );
    }
    resp
}

/// The section a write names: the rules section, the tenant, the window.
fn section_of(kind: ChangeKind, path: &str, body: &[u8]) -> Option<String> {
    let fields: Vec<(String, String)> = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => {
            map.into_iter().filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned()))).collect()
        }
        _ => serde_urlencoded_pairs(body),
    };
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let tail = |prefix: &str| {
        path.strip_prefix(prefix)
            .filter(|t| !t.is_empty() && !t.contains('/'))
            .map(|t| percent_encoding::percent_decode_str(t).decode_utf8_lossy().into_owned())
    };
    match kind {
        ChangeKind::Mapping => tail("/api/mapping/").filter(|t| t != "accept").or_else(|| field("tenant")),
        ChangeKind::Maintenance => tail("/api/rules/maintenance/").or_else(|| field("remove")).or_else(|| field("id")),
        ChangeKind::RulesDraft => field("section").or_else(|| field("row")),
        _ => field("section"),
    }
}

fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The client's address: the peer's, or, when the peer is a configured proxy, the last
/// address in `X-Forwarded-For` that is not one of the proxies.
#[derive(Debug, Clone)]
pub struct ClientAddress {
    trusted: Arc<[IpAddr]>,
}

impl ClientAddress {
    /// Trusting `X-Forwarded-For` from these proxies only.
    pub fn new(trusted: &[IpAddr]) -> Self {
        Self { trusted: trusted.into() }
    }

    /// The client of a request from `peer`.
    pub fn of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted.contains(&peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        forwarded.into_iter().rev().find(|a| !self.trusted.contains(a)).unwrap_or(peer)
    }
}

impl tower_governor::key_extractor::KeyExtractor for ClientAddress {
    type Key = IpAddr;

    fn extract<T>(&self, req: &axum::http::Request<T>) -> Result<Self::Key, tower_governor::GovernorError> {
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or(tower_governor::GovernorError::UnableToExtractKey)?;
        Ok(self.of(peer, req.headers()))
    }
}

/// The rate limits: `per_minute` after a burst of `burst`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Requests per minute once the burst is spent.
    pub per_minute: u32,
    /// Requests at once.
    pub burst: u32,
}

fn too_many(e: tower_governor::GovernorError) -> Response {
    match e {
        tower_governor::GovernorError::TooManyRequests { wait_time, .. } => {
            let wait = wait_time.max(1);
            let msg = format!("too many requests: try again in {wait} s");
            let mut resp = (StatusCode::TOO_MANY_REQUESTS, Json(json!({ "error": msg }))).into_response();
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
            resp
        }
        other => {
            tracing::warn!(error = %other, "rate limit: cannot tell the client");
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": "internal error" }))).into_response()
        }
    }
}

/// `app` behind the per-client and the global rate limits (429 with `Retry-After` beyond
/// them), except its [`ASSETS`]: constant bytes a page needs to render, which its browser
/// caches (so they are fetched once, not with every page) and which must not turn a page that
/// came through into an unstyled one. The per-client limiter forgets idle clients every minute.
pub fn limited(app: Router, client: Limit, global: Limit, trusted: &[IpAddr]) -> Router {
    let period = |l: Limit| Duration::from_nanos(60_000_000_000 / u64::from(l.per_minute.max(1)));
    let per_client = tower_governor::governor::GovernorConfigBuilder::default()
        .key_extractor(ClientAddress::new(trusted))
        .period(period(client))
        .burst_size(client.burst.max(1))
        .finish()
        .map(Arc::new);
    let all = tower_governor::governor::GovernorConfigBuilder::default()
        .key_extractor(tower_governor::key_extractor::GlobalKeyExtractor)
        .period(period(global))
        .burst_size(global.burst.max(1))
        .finish()
        .map(Arc::new);
    let (Some(per_client), Some(all)) = (per_client, all) else { return app };
    let limiter = Arc::downgrade(per_client.limiter());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            // Ends with the listener (the last strong reference is the layer's).
            let Some(l) = limiter.upgrade() else { return };
            l.retain_recent();
        }
    });
    let assets = app.clone().into_service();
    let limited = app
        .layer(tower_governor::GovernorLayer::new(per_client).error_handler(too_many))
        .layer(tower_governor::GovernorLayer::new(all).error_handler(too_many));
    Router::new().route_service(&format!("{ASSETS}{{*file}}"), assets).fallback_service(limited)
}
