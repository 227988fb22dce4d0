//! Halo-specific control routes under `/_sim/` (no credentials, not journaled).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{LostAnswer, Shared, api};
use crate::common::lock;

pub(super) fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sim/tickets", get(tickets))
        .route("/_sim/tickets/{id}", delete(delete_ticket))
        .route("/_sim/tickets/{id}/status", post(set_status))
        .route("/_sim/actions", get(actions))
        .route("/_sim/clients", post(clients))
        .route("/_sim/throttle", post(throttle))
        .route("/_sim/lose_answers", post(lose_answers))
        .route("/_sim/expire_tokens", post(expire_tokens))
        .with_state(shared)
}

fn bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| Box::new(bad(format!("bad body: {e}"))))
}

async fn tickets(State(st): State<Arc<Shared>>) -> Json<Value> {
    Json(Value::Array(lock(&st.data).tickets.values().cloned().collect()))
}

async fn actions(State(st): State<Arc<Shared>>) -> Json<Value> {
    Json(Value::Array(lock(&st.data).actions.values().cloned().collect()))
}

async fn delete_ticket(State(st): State<Arc<Shared>>, Path(id): Path<i64>) -> Response {
    let mut d = lock(&st.data);
    match d.tickets.remove(&id) {
        Some(_) => {
            d.actions.retain(|_, a| a["ticket_id"].as_i64() != Some(id));
            Json(json!({"deleted": id})).into_response()
        }
        None => bad(format!("no ticket {id}")),
    }
}

#[derive(Deserialize)]
struct StatusBody {
    status: i64,
}

/// A technician sets a status (closing the ticket when it is a closed status).
async fn set_status(State(st): State<Arc<Shared>>, Path(id): Path<i64>, body: Bytes) -> Response {
    let b: StatusBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if !st.cfg.statuses.iter().any(|s| s["id"].as_i64() == Some(b.status)) {
        return bad(format!("no status {}", b.status));
    }
    let now = st.now_str();
    let mut d = lock(&st.data);
    let Some(t) = d.tickets.get_mut(&id) else { return bad(format!("no ticket {id}")) };
    api::set_status(&st, t, b.status, &now);
    Json(t.clone()).into_response()
}

#[derive(Deserialize)]
struct ClientBody {
    id: i64,
    name: Option<String>,
    inactive: Option<bool>,
}

async fn clients(State(st): State<Arc<Shared>>, body: Bytes) -> Response {
    let b: ClientBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let mut d = lock(&st.data);
    let row = d.clients.entry(b.id).or_insert_with(|| json!({"id": b.id, "name": "", "inactive": false}));
    if let Some(v) = b.name {
        row["name"] = json!(v);
    }
    if let Some(v) = b.inactive {
        row["inactive"] = json!(v);
    }
    Json(row.clone()).into_response()
}

#[derive(Deserialize)]
struct ThrottleBody {
    count: u32,
    #[serde(default)]
    retry_after_secs: Option<u64>,
}

async fn throttle(State(st): State<Arc<Shared>>, body: Bytes) -> Response {
    let b: ThrottleBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let secs = b.retry_after_secs.unwrap_or(30);
    lock(&st.data).throttle = (b.count > 0).then_some((b.count, secs));
    Json(json!({"count": b.count, "retry_after_secs": secs})).into_response()
}

#[derive(Deserialize)]
struct LostBody {
    method: Option<String>,
    path_regex: Option<String>,
    status: Option<u16>,
    count: Option<u32>,
}

async fn lose_answers(State(st): State<Arc<Shared>>, body: Bytes) -> Response {
    let b: LostBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let path = match b.path_regex.as_deref().map(regex::Regex::new).transpose() {
        Ok(p) => p,
        Err(e) => return bad(format!("bad path_regex: {e}")),
    };
    let mut d = lock(&st.data);
    d.lost.push(LostAnswer {
        method: b.method.map(|m| m.to_ascii_uppercase()),
        path,
        status: b.status.unwrap_or(502),
        remaining: b.count.unwrap_or(1).max(1),
    });
    Json(json!({"pending": d.lost.len()})).into_response()
}

/// Every token issued so far stops working (the next API call answers 401).
async fn expire_tokens(State(st): State<Arc<Shared>>) -> Response {
    let mut d = lock(&st.data);
    let n = d.tokens.len();
    d.tokens.clear();
    Json(json!({"expired": n})).into_response()
}
