//! The admin HTTP API: health, Prometheus metrics, rule sets (read, edit the draft, save, cancel,
//! reset, bulk edit, preview, the maintenance windows and the priority-follows-severity
//! switches), the tenant mapping and the ledger.
//!
//! Every rule write takes `If-Match: "N"` (the revision from `GET /api/rules`'s ETag): a stale
//! one is 409 with the current revision; a success is 204 with the new revision as the ETag.
//!
//! Bound to loopback by default; every route but `/healthz` and `/readyz` needs a bearer token
//! (the configured `admin.token`, or a user's API token) whose role may use it ([`crate::gate`],
//! issue 28); users, tokens and the change log are [`crate::users_api`]. Errors are
//! turned into responses here, at the edge: client errors carry their message, internal ones a
//! generic text (the detail goes to the log).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use ticketing_core::edit::{GeneralPatch, RulePatch};
use ticketing_core::rules::{RowId, RuleSet, Section};
use ticketing_core::secret::Secret;
use tracing::error;

use crate::engine::Shared;
use crate::rules_ops::{self, OpError};

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// Engine state.
    pub shared: Arc<Shared>,
    /// The configured `admin.token` (empty: none; then only users log in).
    pub token: Secret,
    /// Re-reads the configuration file (`POST /api/reload`), when the daemon was started from
    /// one.
    pub reloader: Option<Arc<crate::reload::Reloader>>,
    /// Sessions' idle time, the lockout, the clock (`[admin]`).
    pub access: crate::access::AccessSettings,
}

/// An error at the HTTP edge.
#[derive(Debug)]
pub struct AppError(pub OpError);

impl From<OpError> for AppError {
    fn from(e: OpError) -> Self {
        Self(e)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self.0 {
            OpError::Invalid(msg) => (StatusCode::BAD_REQUEST, Json(json!({ "error": msg }))).into_response(),
            OpError::Refused { section, problems } => {
                let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({ "error": format!("cannot save {section}"), "section": section, "problems": problems, "messages": messages })),
                )
                    .into_response()
            }
            OpError::Problems { what, problems } => {
                let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({ "error": format!("{what} refused"), "problems": problems, "messages": messages })),
                )
                    .into_response()
            }
            OpError::NoCatalog => {
                (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": OpError::NoCatalog.to_string() })))
                    .into_response()
            }
            OpError::Conflict { section, revision } => {
                let msg =
                    format!("{section}: the rules changed elsewhere (now revision {revision}); reload and try again");
                (
                    StatusCode::CONFLICT,
                    [(header::ETAG, etag(revision))],
                    Json(json!({ "error": msg, "section": section, "revision": revision })),
                )
                    .into_response()
            }
            OpError::Store(e) => {
                error!(error = %e, "admin request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": "internal error" }))).into_response()
            }
        }
    }
}

/// Compares without an early exit on the first differing byte (`subtle`).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// The admin API's router (tests call it with `oneshot`, the daemon serves it).
pub fn router(state: AdminState) -> Router {
    let api = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/rules", get(get_rules))
        .route("/api/rules/draft", put(put_draft))
        .route("/api/rules/bulk-edit", post(bulk_edit))
        .route("/api/rules/general", post(edit_general))
        .route("/api/rules/save", post(save))
        .route("/api/rules/cancel", post(cancel))
        .route("/api/rules/reset", post(reset))
        .route("/api/rules/preview", get(preview))
        .route("/api/rules/maintenance", get(get_maintenance).put(put_maintenance).post(add_window))
        .route("/api/rules/maintenance/{id}", axum::routing::delete(remove_window))
        .route("/api/rules/priority-follows-severity", get(get_follows).post(set_follows))
        .route("/api/mapping", get(mapping))
        .route("/api/mapping/accept", post(accept_mapping))
        .route("/api/mapping/{tenant}", put(put_mapping).delete(delete_mapping))
        .route("/api/ledger", get(ledger))
        .route("/api/ledger/retry", post(retry))
        .route("/api/reload", post(reload))
        .route("/api/status", get(status))
        .route("/api/transitions", get(transitions))
        .route("/api/decisions", get(decisions))
        .merge(crate::users_api::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::gate::api));
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).merge(api).with_state(state)
}

/// Liveness: 200 while the engine's loop turns, 503 (with why) when it stopped turning.
async fn healthz(State(s): State<AdminState>) -> Response {
    match s.shared.health.liveness(chrono::Utc::now()) {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

/// Readiness: 200 when the store takes writes, the PSA is reachable within its budget and
/// every source read recently; 503 otherwise. The body lists each check either way.
async fn readyz(State(s): State<AdminState>) -> Response {
    let readiness = readiness(&s.shared).await;
    let code = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(readiness)).into_response()
}

/// The readiness checks (the store probe runs off the async workers: it writes).
pub async fn readiness(shared: &Arc<crate::engine::Shared>) -> crate::health::Readiness {
    let probe_shared = shared.clone();
    let budget = shared.metrics.budget();
    let probe = move || probe_shared.store.probe_writable().map_err(|e| e.to_string());
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || shared.health.readiness(chrono::Utc::now(), budget, probe))
        .await
        .unwrap_or_else(|e| crate::health::Readiness {
            ready: false,
            checks: vec![crate::health::Check {
                name: "store".to_owned(),
                ok: false,
                detail: format!("the probe failed: {e}"),
            }],
        })
}

/// `GET /api/decisions?tenant=&product=&since=&outcome=&event=&device=&limit=`: what was
/// decided about events and conditions, newest first, each in words.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionsQuery {
    tenant: Option<String>,
    product: Option<String>,
    since: Option<String>,
    outcome: Option<String>,
    event: Option<String>,
    device: Option<String>,
    limit: Option<usize>,
}

impl DecisionsQuery {
    fn parse(self) -> Result<crate::store::DecisionQuery, OpError> {
        let product = match self.product.as_deref().filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => Some(ticketing_core::model::Product::from_code(p).ok_or_else(|| {
                OpError::Invalid(format!(
                    "product: unknown product `{p}` (expected security_center, endpoint_cloud or office365)"
                ))
            })?),
        };
        let since = match self.since.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(t) => Some(
                chrono::DateTime::parse_from_rfc3339(t)
                    .map_err(|e| OpError::Invalid(format!("since: `{t}` is not an RFC 3339 time ({e})")))?
                    .with_timezone(&chrono::Utc),
            ),
        };
        let outcome = match self.outcome.as_deref().filter(|o| !o.is_empty()) {
            None => None,
            Some(o) => Some(o.parse().map_err(|e| OpError::Invalid(format!("outcome: {e}")))?),
        };
        let some = |s: Option<String>| s.filter(|s| !s.is_empty());
        Ok(crate::store::DecisionQuery {
            tenant: some(self.tenant),
            product,
            since,
            outcome,
            event_id: some(self.event),
            device: some(self.device),
            limit: self.limit.unwrap_or(0),
        })
    }
}

async fn decisions(
    State(s): State<AdminState>,
    Query(q): Query<DecisionsQuery>,
) -> Result<Json<serde_json::Value>, AppError> {
    let q = q.parse()?;
    let found = crate::audit::query(s.shared.store.as_ref(), &q).map_err(OpError::from)?;
    Ok(Json(json!({ "count": found.len(), "decisions": found })))
}

async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], s.shared.metrics.render())
}

async fn get_rules(State(s): State<AdminState>) -> Response {
    // Sync first, so the revision handed out is the store's newest.
    let _ = rules_ops::sync_from_store(&s.shared);
    let (book, revision) = s.shared.rules.snapshot();
    let catalog = s.shared.catalog();
    let problems = catalog.as_ref().map(|c| book.draft.validate(c)).unwrap_or_default();
    let dirty: Vec<String> =
        Section::all().into_iter().filter(|sec| book.is_dirty(*sec)).map(|sec| sec.to_string()).collect();
    let body = json!({ "revision": revision, "saved": book.saved, "draft": book.draft, "dirty": dirty, "problems": problems, "catalog": catalog });
    ([(header::ETAG, etag(revision))], Json(body)).into_response()
}

fn etag(revision: u64) -> String {
    format!("\"{revision}\"")
}

/// The revision a writer based its change on: `If-Match: "N"` (from `GET /api/rules`'s ETag or
/// its `revision`). Without the header the change applies on top of the newest rules.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, AppError> {
    let Some(v) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let text = v.to_str().unwrap_or_default().trim().trim_start_matches("W/").trim_matches('"');
    text.parse()
        .map(Some)
        .map_err(|_| OpError::Invalid(format!("If-Match must be a revision such as \"7\", not {text:?}")).into())
}

/// A successful edit: 204 with the new revision as the ETag.
fn edited(revision: u64) -> Response {
    (StatusCode::NO_CONTENT, [(header::ETAG, etag(revision))]).into_response()
}

async fn put_draft(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Json(draft): Json<RuleSet>,
) -> Result<Response, AppError> {
    Ok(edited(rules_ops::put_draft(&s.shared, draft, if_match(&headers)?)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkEdit {
    rows: Vec<RowId>,
    patch: RulePatch,
}

async fn bulk_edit(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Json(b): Json<BulkEdit>,
) -> Result<Response, AppError> {
    Ok(edited(rules_ops::bulk_edit(&s.shared, &b.rows, &b.patch, if_match(&headers)?)?))
}

async fn edit_general(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Json(p): Json<GeneralPatch>,
) -> Result<Response, AppError> {
    Ok(edited(rules_ops::edit_general(&s.shared, &p, if_match(&headers)?)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionBody {
    section: Section,
}

async fn save(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Json(b): Json<SectionBody>,
) -> Result<Response, AppError> {
    Ok(edited(rules_ops::save(&s.shared, b.section, if_match(&headers)?)?))
}

async fn cancel(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Json(b): Json<SectionBody>,
) -> Result<Response, AppError> {
    Ok(edited(rules_ops::cancel(&s.shared, b.section, if_match(&headers)?)?))
}

async fn reset(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Json(b): Json<SectionBody>,
) -> Result<Response, AppError> {
    Ok(edited(rules_ops::reset(&s.shared, b.section, if_match(&headers)?)?))
}

/// `GET /api/rules/maintenance`: the saved and draft windows, the draft's problems, the
/// revision (also the ETag).
async fn get_maintenance(State(s): State<AdminState>) -> Response {
    let _ = rules_ops::sync_from_store(&s.shared);
    let (book, revision) = s.shared.rules.snapshot();
    let problems = rules_ops::window_problems(&book.draft.maintenance);
    let body = json!({ "revision": revision, "saved": book.saved.maintenance, "draft": book.draft.maintenance, "problems": problems });
    ([(header::ETAG, etag(revision))], Json(body)).into_response()
}

/// `PUT /api/rules/maintenance` with the whole JSON list: replaces the draft's windows (saved
/// with `{"section":"general"}`). 422 with every problem when a window is invalid.
async fn put_maintenance(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Json(windows): Json<Vec<ticketing_core::maintenance::MaintenanceWindow>>,
) -> Result<Response, AppError> {
    Ok(edited(rules_ops::set_maintenance(&s.shared, windows, if_match(&headers)?)?))
}

/// `POST /api/rules/maintenance` with one window: adds it to the draft's list.
async fn add_window(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Json(window): Json<ticketing_core::maintenance::MaintenanceWindow>,
) -> Result<Response, AppError> {
    Ok(edited(rules_ops::add_window(&s.shared, window, if_match(&headers)?)?))
}

/// `DELETE /api/rules/maintenance/{id}`: removes the draft's window `id` (400 when there is none).
async fn remove_window(
    State(s): State<AdminState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, AppError> {
    Ok(edited(rules_ops::remove_window(&s.shared, &id, if_match(&headers)?)?))
}

/// `GET /api/rules/priority-follows-severity`: the products switched on, saved and draft.
async fn get_follows(State(s): State<AdminState>) -> Response {
    let _ = rules_ops::sync_from_store(&s.shared);
    let (book, revision) = s.shared.rules.snapshot();
    let body = json!({ "revision": revision, "saved": book.saved.priority_follows_severity, "draft": book.draft.priority_follows_severity });
    ([(header::ETAG, etag(revision))], Json(body)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowsBody {
    product: ticketing_core::model::Product,
    on: bool,
}

/// `POST /api/rules/priority-follows-severity {"product":"security_center","on":true}`: the
/// draft's switch (saved with either of the product's status sections). 422 for Office 365.
async fn set_follows(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Json(b): Json<FollowsBody>,
) -> Result<Response, AppError> {
    Ok(edited(rules_ops::set_priority_follows_severity(&s.shared, b.product, b.on, if_match(&headers)?)?))
}

#[derive(Deserialize)]
struct Days {
    days: Option<u32>,
}

async fn preview(State(s): State<AdminState>, Query(q): Query<Days>) -> Result<Json<rules_ops::Preview>, AppError> {
    Ok(Json(rules_ops::preview_draft(&s.shared, q.days.unwrap_or(7).clamp(1, 365))?))
}

/// The configuration file's entries as the running engine resolved them, named by the file.
pub(crate) fn file_mapping(s: &AdminState) -> crate::mapping_ops::FileMapping {
    let file = s.reloader.as_ref().map_or_else(|| "of this daemon".to_owned(), |r| r.path.display().to_string());
    crate::mapping_ops::file_of_engine(&s.shared, &file)
}

/// A mapping operation's refusal at the HTTP edge: 409 for a stale revision or a file entry,
/// 404 for a tenant not mapped, 400 for the rest, 503 before the accounts are known.
fn mapping_error(e: crate::mapping_ops::MappingOpError) -> Response {
    use crate::mapping_ops::MappingOpError as E;
    use ticketing_core::mapping::MappingEditError as R;
    let msg = e.to_string();
    match e {
        E::Conflict { current } => {
            (StatusCode::CONFLICT, [(header::ETAG, etag(current))], Json(json!({ "error": msg, "revision": current })))
                .into_response()
        }
        E::FromFile { tenant, file } => {
            (StatusCode::CONFLICT, Json(json!({ "error": msg, "tenant": tenant, "file": file }))).into_response()
        }
        E::Refused(R::NotMapped { .. }) => (StatusCode::NOT_FOUND, Json(json!({ "error": msg }))).into_response(),
        E::Refused(_) => (StatusCode::BAD_REQUEST, Json(json!({ "error": msg }))).into_response(),
        E::NoAccounts => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": msg }))).into_response(),
        E::Store(e) => {
            error!(error = %e, "mapping request failed");
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": "internal error" }))).into_response()
        }
    }
}

/// `GET /api/mapping`: every tenant with its account (or null), where the mapping comes from
/// (`file` | `store`), and for unmapped ones the suggestions; the revision as the ETag.
async fn mapping(State(s): State<AdminState>) -> Response {
    match crate::mapping_ops::view(&*s.shared.store, &file_mapping(&s)) {
        Ok(v) => ([(header::ETAG, etag(v.revision))], Json(v)).into_response(),
        Err(e) => mapping_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapBody {
    account_id: i64,
}

/// `PUT /api/mapping/{tenant}` `{"account_id": N}` with `If-Match`.
async fn put_mapping(
    State(s): State<AdminState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Json<MapBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AppError> {
    let Json(b) =
        body.map_err(|e| OpError::Invalid(format!("the body must be {{\"account_id\": N}}: {}", e.body_text())))?;
    let tenant = ticketing_core::model::TenantId::new(tenant);
    let r = crate::mapping_ops::set(
        &*s.shared.store,
        &file_mapping(&s),
        &tenant,
        ticketing_core::model::PsaId(b.account_id),
        if_match(&headers)?,
    );
    Ok(r.map_or_else(mapping_error, edited))
}

/// `DELETE /api/mapping/{tenant}` with `If-Match`.
async fn delete_mapping(
    State(s): State<AdminState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let tenant = ticketing_core::model::TenantId::new(tenant);
    let r = crate::mapping_ops::unset(&*s.shared.store, &file_mapping(&s), &tenant, if_match(&headers)?);
    Ok(r.map_or_else(mapping_error, edited))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    min_score: f64,
}

/// `POST /api/mapping/accept` `{"min_score": 0.9}`: answers what it mapped.
async fn accept_mapping(
    State(s): State<AdminState>,
    headers: HeaderMap,
    body: Result<Json<AcceptBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AppError> {
    let Json(b) =
        body.map_err(|e| OpError::Invalid(format!("the body must be {{\"min_score\": 0.9}}: {}", e.body_text())))?;
    let r = crate::mapping_ops::accept(&*s.shared.store, &file_mapping(&s), b.min_score, if_match(&headers)?);
    Ok(match r {
        Ok((revision, mapped)) => {
            ([(header::ETAG, etag(revision))], Json(json!({ "revision": revision, "mapped": mapped }))).into_response()
        }
        Err(e) => mapping_error(e),
    })
}

#[derive(Deserialize)]
struct LedgerQuery {
    state: Option<String>,
}

async fn ledger(
    State(s): State<AdminState>,
    Query(q): Query<LedgerQuery>,
) -> Result<Json<serde_json::Value>, AppError> {
    let ledger = s.shared.store.load_ledger().map_err(OpError::from)?;
    let entries: Vec<_> = crate::ledger_ops::entries(&ledger, q.state.as_deref()).cloned().collect();
    Ok(Json(json!({ "count": entries.len(), "entries": entries })))
}

/// `POST /api/ledger/retry`: `{"key": "<ticket key or idempotency key>"}` or
/// `{"all_failed": true}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    all_failed: bool,
}

async fn retry(
    State(s): State<AdminState>,
    Json(b): Json<RetryBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let target = match (b.key, b.all_failed) {
        (Some(k), false) => crate::ledger_ops::Retry::Key(k),
        (None, true) => crate::ledger_ops::Retry::AllFailed,
        _ => return Err(OpError::Invalid("give exactly one of key or all_failed".to_owned()).into()),
    };
    let n = crate::ledger_ops::request_retry(s.shared.store.as_ref(), &target)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "requested": n }))))
}

/// `GET /api/status`: this instance's role (`leader` or `standby`), and who leads.
async fn status(State(s): State<AdminState>) -> Json<serde_json::Value> {
    let role = s.shared.role.get();
    let leader = s.shared.store.leader().ok().flatten();
    Json(
        json!({ "role": role.as_ref().map_or("starting", |r| r.role), "instance": role.as_ref().map(|r| r.instance.clone()),
                 "epoch": role.as_ref().and_then(|r| r.epoch), "leader": leader }),
    )
}

/// `POST /api/reload`: re-reads the configuration file, as `SIGHUP` does. 200 when applied;
/// 422 with every problem when refused (the daemon keeps its previous configuration).
async fn reload(State(s): State<AdminState>) -> Response {
    let Some(reloader) = &s.reloader else {
        let msg = "this daemon was started without a configuration file: nothing to reload";
        return (StatusCode::CONFLICT, Json(json!({ "error": msg }))).into_response();
    };
    match reloader.reload().await {
        Ok(()) => Json(json!({ "reloaded": true })).into_response(),
        Err(problems) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": "configuration not reloaded: still running on the previous one", "problems": problems })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn transitions(State(s): State<AdminState>, Query(q): Query<Limit>) -> Result<Json<serde_json::Value>, AppError> {
    let rows = s.shared.store.recent_transitions(q.limit.unwrap_or(100).min(10_000)).map_err(OpError::from)?;
    let rows: Vec<_> = rows
        .into_iter()
        .map(|(at, key, t)| json!({ "at": at, "key": key, "transition": serde_json::from_str::<serde_json::Value>(&t).unwrap_or_default() }))
        .collect();
    Ok(Json(json!({ "transitions": rows })))
}
