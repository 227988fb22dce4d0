//! ConnectWise-specific control routes under `/_sim/` (no credentials, not journaled).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{LostAnswer, Shared, api};
use crate::common::lock;

pub(super) fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sim/tickets", get(tickets))
        .route("/_sim/tickets/{id}", axum::routing::delete(delete_ticket))
        .route("/_sim/tickets/{id}/status", post(set_status))
        .route("/_sim/notes", get(notes))
        .route("/_sim/companies", post(companies))
        .route("/_sim/throttle", post(throttle))
        .route("/_sim/lose_answers", post(lose_answers))
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

async fn notes(State(st): State<Arc<Shared>>) -> Json<Value> {
    Json(Value::Array(lock(&st.data).notes.values().cloned().collect()))
}

async fn delete_ticket(State(st): State<Arc<Shared>>, Path(id): Path<i64>) -> Response {
    let mut d = lock(&st.data);
    match d.tickets.remove(&id) {
        Some(_) => {
            d.notes.retain(|_, n| n["ticketId"].as_i64() != Some(id));
            Json(json!({"deleted": id})).into_response()
        }
        None => bad(format!("no ticket {id}")),
    }
}

#[derive(Deserialize)]
struct StatusBody {
    status: i64,
}

/// A technician sets a status (closing the ticket when it is a closed status of its board).
async fn set_status(State(st): State<Arc<Shared>>, Path(id): Path<i64>, body: Bytes) -> Response {
    let b: StatusBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let now = st.now_str();
    let mut d = lock(&st.data);
    let Some(board) = d.tickets.get(&id).and_then(|t| t["board"]["id"].as_i64()) else {
        return bad(format!("no ticket {id}"));
    };
    let Some(status) =
        d.board(board).and_then(|bd| bd.statuses.iter().find(|s| s["id"].as_i64() == Some(b.status)).cloned())
    else {
        return bad(format!("status {} is not a status of board {board}", b.status));
    };
    let Some(t) = d.tickets.get_mut(&id) else { return bad(format!("no ticket {id}")) };
    api::apply_status(t, &status, &now, "technician");
    Json(t.clone()).into_response()
}

#[derive(Deserialize)]
struct CompanyBody {
    id: i64,
    identifier: Option<String>,
    name: Option<String>,
    /// A company status name (`Active`, `Inactive`).
    status: Option<String>,
    deleted: Option<bool>,
}

async fn companies(State(st): State<Arc<Shared>>, body: Bytes) -> Response {
    let b: CompanyBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let status = match &b.status {
        Some(name) => match st
            .cfg
            .company_statuses
            .iter()
            .find(|s| s["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        {
            Some(s) => Some(json!({"id": s["id"], "name": s["name"]})),
            None => return bad(format!("no company status {name}")),
        },
        None => None,
    };
    let mut d = lock(&st.data);
    let row = d.companies.entry(b.id).or_insert_with(|| {
        json!({"id": b.id, "identifier": format!("C{}", b.id), "name": "", "status": {"id": 1, "name": "Active"},
            "deletedFlag": false})
    });
    if let Some(v) = b.identifier {
        row["identifier"] = json!(v);
    }
    if let Some(v) = b.name {
        row["name"] = json!(v);
    }
    if let Some(v) = status {
        row["status"] = v;
    }
    if let Some(v) = b.deleted {
        row["deletedFlag"] = json!(v);
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
    let mut d = lock(&st.data);
    d.throttle = (b.count > 0).then_some((b.count, b.retry_after_secs.unwrap_or(30)));
    Json(json!({"count": b.count, "retry_after_secs": b.retry_after_secs.unwrap_or(30)})).into_response()
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
