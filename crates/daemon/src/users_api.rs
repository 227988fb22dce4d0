//! The admin API's users, API tokens and change log (issue 28). The gate ([`crate::gate`]) has
//! checked the role before any of these runs: `/api/users` and `/api/tokens` need `admin`,
//! `/api/me` and `/api/changes` any role.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/me` | who the request acts as, and the role |
//! | `GET /api/users`, `POST /api/users` `{"name","role","password"}` | list / add |
//! | `DELETE /api/users/{name}` | remove (its sessions and tokens end) |
//! | `PUT /api/users/{name}/role` `{"role"}` | change the role |
//! | `PUT /api/users/{name}/password` `{"password"}` | new password (every session of the user ends) |
//! | `GET /api/tokens`, `POST /api/tokens` `{"user","label"}` | list / make one (the token is in this answer only) |
//! | `DELETE /api/tokens/{id}` | revoke |
//! | `GET /api/changes?since=&limit=` | the change log, newest first |

use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use ticketing_core::secret::Secret;

use crate::access::users::{self, UserError};
use crate::access::{AccessStore, ChangeQuery, Principal, Role};
use crate::admin::AdminState;

/// The routes (merged into the admin API's, behind its gate).
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/users", get(list).post(add))
        .route("/api/users/{name}", axum::routing::delete(remove))
        .route("/api/users/{name}/role", put(set_role))
        .route("/api/users/{name}/password", put(set_password))
        .route("/api/tokens", get(tokens).post(create_token))
        .route("/api/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/api/changes", get(changes))
}

/// A refusal at the HTTP edge: the operation's, or a body that is not what the route takes.
enum ApiError {
    User(UserError),
    Body(String),
}

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        Self::User(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = match self {
            Self::Body(msg) => return (StatusCode::BAD_REQUEST, Json(json!({ "error": msg }))).into_response(),
            Self::User(e) => e,
        };
        let code = match &e {
            UserError::NoStore => StatusCode::SERVICE_UNAVAILABLE,
            UserError::Exists(_) => StatusCode::CONFLICT,
            UserError::NoSuchUser(_) | UserError::NoSuchToken(_) => StatusCode::NOT_FOUND,
            UserError::Store(e) => {
                tracing::error!(error = %e, "user request failed");
                return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": "internal error" }))).into_response();
            }
            _ => StatusCode::BAD_REQUEST,
        };
        (code, Json(json!({ "error": e.to_string() }))).into_response()
    }
}

type Answer = Result<Response, ApiError>;
type Body<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

fn access(s: &AdminState) -> Result<&dyn AccessStore, ApiError> {
    s.shared.store.access().ok_or(ApiError::User(UserError::NoStore))
}

/// A JSON body, or 400 naming what was expected.
fn body<T>(b: Body<T>, expected: &str) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(|e| ApiError::Body(format!("the body must be {expected}: {}", e.body_text())))
}

fn done(r: Result<(), UserError>) -> Answer {
    r.map(|()| StatusCode::NO_CONTENT.into_response()).map_err(ApiError::User)
}

async fn me(Extension(p): Extension<Principal>) -> Json<serde_json::Value> {
    Json(json!({ "actor": p.actor.label(), "user": p.actor.user(), "role": p.role }))
}

async fn list(State(s): State<AdminState>) -> Answer {
    let u = users::list(access(&s)?, s.access.clock.now())?;
    Ok(Json(json!({ "users": u })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    role: Role,
    password: String,
}

async fn add(State(s): State<AdminState>, Extension(p): Extension<Principal>, b: Body<NewUser>) -> Answer {
    let b = body(b, r#"{"name": "...", "role": "viewer|operator|admin", "password": "..."}"#)?;
    users::add(access(&s)?, &p.actor, &b.name, b.role, &Secret::new(b.password), s.access.clock.now())?;
    Ok((StatusCode::CREATED, Json(json!({ "name": b.name, "role": b.role }))).into_response())
}

async fn remove(State(s): State<AdminState>, Extension(p): Extension<Principal>, Path(name): Path<String>) -> Answer {
    done(users::remove(access(&s)?, &p.actor, &name, s.access.clock.now()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: Role,
}

async fn set_role(
    State(s): State<AdminState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    b: Body<RoleBody>,
) -> Answer {
    let b = body(b, r#"{"role": "viewer|operator|admin"}"#)?;
    done(users::set_role(access(&s)?, &p.actor, &name, b.role, s.access.clock.now()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    password: String,
}

async fn set_password(
    State(s): State<AdminState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    b: Body<PasswordBody>,
) -> Answer {
    let b = body(b, r#"{"password": "..."}"#)?;
    done(users::reset_password(access(&s)?, &p.actor, &name, &Secret::new(b.password), s.access.clock.now()))
}

async fn tokens(State(s): State<AdminState>) -> Answer {
    Ok(Json(json!({ "tokens": users::tokens(access(&s)?)? })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    user: String,
    #[serde(default)]
    label: String,
}

async fn create_token(State(s): State<AdminState>, Extension(p): Extension<Principal>, b: Body<NewToken>) -> Answer {
    let b = body(b, r#"{"user": "...", "label": "..."}"#)?;
    let t = users::create_token(access(&s)?, &p.actor, &b.user, &b.label, s.access.clock.now())?;
    // The one answer that holds a secret: the token, shown once.
    Ok((StatusCode::CREATED, Json(json!({ "id": t.id, "user": b.user, "token": t.token.expose() }))).into_response())
}

async fn revoke_token(
    State(s): State<AdminState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Answer {
    done(users::revoke_token(access(&s)?, &p.actor, &id, s.access.clock.now()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangesQuery {
    since: Option<String>,
    limit: Option<usize>,
}

async fn changes(State(s): State<AdminState>, Query(q): Query<ChangesQuery>) -> Answer {
    let store = access(&s)?;
    let since = match q.since.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| ApiError::Body(format!("since: `{t}` is not an RFC 3339 time ({e})")))?
                .with_timezone(&chrono::Utc),
        ),
    };
    let c = store.changes(&ChangeQuery { since, limit: q.limit.unwrap_or(0) }).map_err(UserError::Store)?;
    Ok(Json(json!({ "count": c.len(), "changes": c })).into_response())
}
