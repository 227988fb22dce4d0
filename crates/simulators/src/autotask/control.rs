//! Autotask-specific control routes under `/_sim/` (no credentials, not journaled).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Limits, Shared};
use crate::common::lock;

pub(super) fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sim/tickets", get(tickets))
        .route("/_sim/notes", get(notes))
        .route("/_sim/companies", post(companies))
        .route("/_sim/limits", post(limits).get(get_limits))
        .route("/_sim/picklist", post(picklist))
        .with_state(shared)
}

fn bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| Box::new(bad(format!("bad body: {e}"))))
}

async fn tickets(State(st): State<Arc<Shared>>) -> Json<Value> {
    let d = lock(&st.data);
    Json(Value::Array(d.tickets.values().cloned().collect()))
}

async fn notes(State(st): State<Arc<Shared>>) -> Json<Value> {
    let d = lock(&st.data);
    Json(Value::Array(d.notes.values().cloned().collect()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompanyBody {
    id: i64,
    company_name: Option<String>,
    is_active: Option<bool>,
    company_type: Option<i64>,
}

async fn companies(State(st): State<Arc<Shared>>, body: Bytes) -> Response {
    let b: CompanyBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let mut d = lock(&st.data);
    let row = d.companies.entry(b.id).or_insert_with(
        || json!({"id": b.id, "companyName": "", "isActive": true, "companyType": 1, "userDefinedFields": []}),
    );
    if let Some(n) = b.company_name {
        row["companyName"] = json!(n);
    }
    if let Some(a) = b.is_active {
        row["isActive"] = json!(a);
    }
    if let Some(t) = b.company_type {
        row["companyType"] = json!(t);
    }
    Json(row.clone()).into_response()
}

#[derive(Deserialize)]
struct LimitsBody {
    thread_limit: Option<usize>,
    hourly_threshold: Option<u64>,
    window_secs: Option<u64>,
    hold_ms: Option<u64>,
    thread_limit_as_500: Option<bool>,
    /// `0` or `null` turns Retry-After off.
    #[serde(default, deserialize_with = "double_option")]
    retry_after_secs: Option<Option<u64>>,
    retry_after_http_date: Option<bool>,
    count_zone_requests: Option<bool>,
    missing_item_as_null: Option<bool>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

fn limits_json(l: &Limits) -> Value {
    json!({
        "thread_limit": l.thread_limit,
        "hourly_threshold": l.hourly_threshold,
        "window_secs": l.window_secs,
        "hold_ms": l.hold_ms,
        "thread_limit_as_500": l.thread_limit_as_500,
        "retry_after_secs": l.retry_after_secs,
        "retry_after_http_date": l.retry_after_http_date,
        "count_zone_requests": l.count_zone_requests,
        "missing_item_as_null": l.missing_item_as_null,
    })
}

async fn get_limits(State(st): State<Arc<Shared>>) -> Json<Value> {
    Json(limits_json(&lock(&st.data).limits))
}

async fn limits(State(st): State<Arc<Shared>>, body: Bytes) -> Response {
    let b: LimitsBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let mut d = lock(&st.data);
    let l = &mut d.limits;
    if let Some(v) = b.thread_limit {
        l.thread_limit = v;
    }
    if let Some(v) = b.hourly_threshold {
        l.hourly_threshold = v;
    }
    if let Some(v) = b.window_secs {
        l.window_secs = v;
    }
    if let Some(v) = b.hold_ms {
        l.hold_ms = v;
    }
    if let Some(v) = b.thread_limit_as_500 {
        l.thread_limit_as_500 = v;
    }
    if let Some(v) = b.retry_after_secs {
        l.retry_after_secs = v.filter(|s| *s > 0);
    }
    if let Some(v) = b.retry_after_http_date {
        l.retry_after_http_date = v;
    }
    if let Some(v) = b.count_zone_requests {
        l.count_zone_requests = v;
    }
    if let Some(v) = b.missing_item_as_null {
        l.missing_item_as_null = v;
    }
    Json(limits_json(l)).into_response()
}

#[derive(Deserialize)]
struct PicklistBody {
    field: String,
    value: Value,
    active: Option<bool>,
    #[serde(default)]
    remove: bool,
    label: Option<String>,
    parent_value: Option<String>,
    default: Option<bool>,
}

/// Deactivates/reactivates, relabels, removes or adds a ticket picklist value.
async fn picklist(State(st): State<Arc<Shared>>, body: Bytes) -> Response {
    let b: PicklistBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let value = match &b.value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return bad("value must be a string or number"),
    };
    let mut d = lock(&st.data);
    let Some(field) =
        d.ticket_fields.iter_mut().find(|f| f["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(&b.field)))
    else {
        return bad(format!("unknown ticket field {}", b.field));
    };
    let Some(values) = field["picklistValues"].as_array_mut() else {
        return bad(format!("{} is not a picklist", b.field));
    };
    let pos = values.iter().position(|p| p["value"].as_str() == Some(value.as_str()));
    if b.remove {
        return match pos {
            Some(i) => {
                values.remove(i);
                Json(json!({"removed": value})).into_response()
            }
            None => bad(format!("no value {value} in {}", b.field)),
        };
    }
    let entry = match pos {
        Some(i) => &mut values[i],
        None => {
            let Some(label) = b.label.clone() else {
                return bad(format!("no value {value} in {} (give a label to add it)", b.field));
            };
            values.push(json!({"value": value, "label": label, "isDefaultValue": false,
                "sortOrder": values.len(), "parentValue": "", "isActive": true, "isSystem": false}));
            values.last_mut().expect("just pushed")
        }
    };
    if let Some(a) = b.active {
        entry["isActive"] = json!(a);
    }
    if let Some(l) = b.label {
        entry["label"] = json!(l);
    }
    if let Some(p) = b.parent_value {
        entry["parentValue"] = json!(p);
    }
    if let Some(def) = b.default {
        entry["isDefaultValue"] = json!(def);
    }
    Json(entry.clone()).into_response()
}
