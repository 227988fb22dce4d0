//! Request dispatch: case-insensitive paths, auth, throttling, queries, metadata, reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::query::{self, FieldRules, Page, Paging, QuerySpec};
use super::tickets::{self, Actor};
use super::{Data, Shared};
use crate::common::lock;

/// All API traffic goes through one fallback handler so paths can be matched case-insensitively.
pub(super) fn routes(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

// ----- response helpers ------------------------------------------------------------------------

pub(super) fn errors(msg: impl Into<String>) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"errors": [msg.into()]}))).into_response()
}

pub(super) fn item_id(id: i64) -> Response {
    ok(json!({"itemId": id}))
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

fn method_not_allowed(m: &Method) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(json!({
            "Message": format!("The requested resource does not support http method '{}'.", m.as_str())
        })),
    )
        .into_response()
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, axum::Json(json!({"Message": "Authorization has been denied for this request."})))
        .into_response()
}

fn too_many(d: &Data, now: chrono::DateTime<chrono::Utc>, msg: &str) -> Response {
    let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"errors": [msg]}))).into_response();
    if let Some(secs) = d.limits.retry_after_secs {
        let v = if d.limits.retry_after_http_date {
            let t = now + chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2));
            t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
        } else {
            secs.to_string()
        };
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn query_params(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Canonical entity name for a lower-case path segment.
fn entity_name(seg: &str) -> Option<&'static str> {
    Some(match seg {
        "tickets" => "Tickets",
        "companies" => "Companies",
        "billingcodes" => "BillingCodes",
        "configurationitems" => "ConfigurationItems",
        "ticketnotes" => "TicketNotes",
        _ => return None,
    })
}

// ----- thread slots ---------------------------------------------------------------------------

struct Slot {
    shared: Arc<Shared>,
    key: (String, String),
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut d = lock(&self.shared.data);
        if let Some(n) = d.inflight.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

fn prune_window(d: &mut Data, now: chrono::DateTime<chrono::Utc>) {
    let window = chrono::Duration::seconds(i64::try_from(d.limits.window_secs).unwrap_or(i64::MAX / 2));
    while d.window.front().is_some_and(|t| *t <= now - window) {
        d.window.pop_front();
    }
}

// ----- the handler ------------------------------------------------------------------------------

async fn handle(State(st): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let lower = uri.path().to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("/atservicesrest/") else {
        return not_found();
    };
    let rest = rest.trim_end_matches('/');
    if rest == "versioninformation" {
        return if method == Method::GET { ok(json!({"apiVersions": ["1.0"]})) } else { method_not_allowed(&method) };
    }
    let Some(rest) = rest.strip_prefix("v1.0/") else {
        return not_found();
    };
    let segs: Vec<&str> = rest.split('/').collect();
    if segs == ["zoneinformation"] {
        return zone(&st, &method, &uri);
    }

    // --- authentication ---
    let user = header_str(&headers, "username").unwrap_or("");
    let secret = header_str(&headers, "secret").unwrap_or("");
    if !user.eq_ignore_ascii_case(&st.cfg.user) || secret != st.cfg.secret {
        return unauthorized();
    }
    let code = header_str(&headers, "apiintegrationcode").unwrap_or("");
    if code != st.cfg.integration_code {
        return errors("IntegrationCode is invalid.");
    }
    let actor = match header_str(&headers, "impersonationresourceid") {
        None => Actor { creator: st.cfg.resource_id, impersonator: None },
        Some(v) => match v.trim().parse::<i64>() {
            Ok(id) if st.cfg.impersonatable_resources.contains(&id) => {
                Actor { creator: id, impersonator: Some(st.cfg.resource_id) }
            }
            _ => return errors("Impersonation resource is invalid."),
        },
    };

    // --- hourly threshold and thread limit ---
    let now = st.now();
    let bucket = segs[0].to_owned();
    let hold = {
        let mut d = lock(&st.data);
        prune_window(&mut d, now);
        if d.window.len() as u64 >= d.limits.hourly_threshold {
            return too_many(&d, now, "Request threshold exceeded.");
        }
        let key = (code.to_owned(), bucket.clone());
        let limit = d.limits.thread_limit;
        let inflight = d.inflight.get(&key).copied().unwrap_or(0);
        if inflight >= limit {
            if d.limits.thread_limit_as_500 {
                return errors(format!("Itgenatr005: The API thread threshold of {limit} threads has been exceeded."));
            }
            return too_many(
                &d,
                now,
                &format!(
                    "Thread threshold exceeded: max {limit} concurrent requests per endpoint for this integration."
                ),
            );
        }
        *d.inflight.entry(key).or_insert(0) += 1;
        d.window.push_back(now);
        d.limits.hold_ms
    };
    let _slot = Slot { shared: Arc::clone(&st), key: (code.to_owned(), bucket) };
    if hold > 0 {
        tokio::time::sleep(Duration::from_millis(hold)).await;
    }
    route(&st, &method, &uri, &segs, &body, actor)
}

fn zone(st: &Shared, method: &Method, uri: &Uri) -> Response {
    if method != Method::GET {
        return method_not_allowed(method);
    }
    {
        let now = st.now();
        let mut d = lock(&st.data);
        if d.limits.count_zone_requests {
            prune_window(&mut d, now);
            d.window.push_back(now);
        }
    }
    let q = query_params(uri);
    match q.get("user") {
        Some(u) if u.eq_ignore_ascii_case(&st.cfg.user) => ok(json!({
            "zoneName": st.cfg.zone_name,
            "url": format!("{}/ATServicesRest/", st.base_url),
            "webUrl": format!("{}/", st.base_url),
            "ci": st.cfg.zone_ci,
        })),
        _ => errors("Zone information could not be determined"),
    }
}

fn parse_json(body: &Bytes) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|_| Box::new(errors("Invalid JSON.")))
}

fn route(st: &Shared, method: &Method, uri: &Uri, segs: &[&str], body: &Bytes, actor: Actor) -> Response {
    if segs == ["thresholdinformation"] {
        if method != Method::GET {
            return method_not_allowed(method);
        }
        let d = lock(&st.data);
        return ok(json!({
            "externalRequestThreshold": d.limits.hourly_threshold,
            "requestThresholdTimeframe": d.limits.window_secs.div_ceil(60),
            "currentTimeframeRequestCount": d.window.len(),
        }));
    }
    let Some(entity) = entity_name(segs[0]) else {
        return not_found();
    };
    match segs[1..] {
        [] => match (entity, method.as_str()) {
            ("TicketNotes", _) => not_found(),
            ("Tickets", "POST") => match parse_json(body) {
                Ok(v) => tickets::create(st, &v, actor),
                Err(r) => *r,
            },
            ("Tickets", "PATCH") => match parse_json(body) {
                Ok(v) => tickets::update(st, &v, actor, false),
                Err(r) => *r,
            },
            ("Tickets", "PUT") => match parse_json(body) {
                Ok(v) => tickets::update(st, &v, actor, true),
                Err(r) => *r,
            },
            _ => method_not_allowed(method),
        },
        ["query"] => run_query(st, entity, method, uri, body, QueryKind::Page),
        ["query", "count"] => run_query(st, entity, method, uri, body, QueryKind::Count),
        ["query", "next"] => run_query(st, entity, method, uri, body, QueryKind::Next),
        ["entityinformation"] if *method == Method::GET => ok(entity_information(entity)),
        ["entityinformation", "fields"] if *method == Method::GET => ok(json!({"fields": entity_fields(st, entity)})),
        ["entityinformation", "userdefinedfields"] if *method == Method::GET => {
            ok(json!({"fields": udf_fields(st, entity)}))
        }
        ["entityinformation", ..] => method_not_allowed(method),
        [id] => {
            let Ok(id) = id.parse::<i64>() else {
                return not_found();
            };
            if *method != Method::GET {
                return method_not_allowed(method);
            }
            let d = lock(&st.data);
            match rows(&d, entity).get(&id) {
                Some(item) => ok(json!({"item": item})),
                None if d.limits.missing_item_as_null => ok(json!({"item": null})),
                None => not_found(),
            }
        }
        [id, "notes"] if entity == "Tickets" => {
            let Ok(id) = id.parse::<i64>() else {
                return not_found();
            };
            match method.as_str() {
                "POST" => match parse_json(body) {
                    Ok(v) => tickets::create_note(st, id, &v, actor),
                    Err(r) => *r,
                },
                "GET" => {
                    let d = lock(&st.data);
                    let items: Vec<&Value> = d.notes.values().filter(|n| n["ticketID"].as_i64() == Some(id)).collect();
                    ok(json!({
                        "items": items,
                        "pageDetails": {"count": items.len(), "requestCount": query::MAX_PAGE,
                                        "prevPageUrl": null, "nextPageUrl": null}
                    }))
                }
                _ => method_not_allowed(method),
            }
        }
        _ => not_found(),
    }
}

fn rows<'a>(d: &'a Data, entity: &str) -> &'a std::collections::BTreeMap<i64, Value> {
    match entity {
        "Tickets" => &d.tickets,
        "Companies" => &d.companies,
        "BillingCodes" => &d.billing_codes,
        "ConfigurationItems" => &d.cis,
        _ => &d.notes,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum QueryKind {
    Page,
    Count,
    Next,
}

fn field_rules(d: &Data, entity: &str) -> FieldRules {
    match entity {
        "Tickets" => FieldRules {
            fields: Some(
                d.ticket_fields
                    .iter()
                    .filter_map(|f| {
                        Some((f["name"].as_str()?.to_ascii_lowercase(), f["isQueryable"].as_bool().unwrap_or(true)))
                    })
                    .collect(),
            ),
            entity: "Ticket",
        },
        "TicketNotes" => FieldRules {
            fields: Some(tickets::NOTE_FIELDS.iter().map(|(n, ..)| (n.to_ascii_lowercase(), true)).collect()),
            entity: "TicketNote",
        },
        _ => FieldRules::default(),
    }
}

fn run_query(st: &Shared, entity: &str, method: &Method, uri: &Uri, body: &Bytes, kind: QueryKind) -> Response {
    let params = query_params(uri);
    let search = params.get("search").cloned();
    let raw = match (method.as_str(), &search) {
        ("POST", _) => match parse_json(body) {
            Ok(v) => v,
            Err(r) => return *r,
        },
        ("GET", Some(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v) => v,
            Err(_) => return errors("Invalid JSON."),
        },
        ("GET", None) if kind == QueryKind::Next => return method_not_allowed(method),
        ("GET", None) => return errors("Invalid query: filter is required."),
        _ => return method_not_allowed(method),
    };
    let d = lock(&st.data);
    let spec: QuerySpec = match query::parse_query(&raw, &field_rules(&d, entity)) {
        Ok(s) => s,
        Err(e) => return errors(e),
    };
    let table = rows(&d, entity);
    let paging = match kind {
        QueryKind::Count => {
            return ok(json!({"queryCount": query::count(table.values(), &spec)}));
        }
        QueryKind::Page => Paging::first(spec.page_size()),
        QueryKind::Next => match params.get("paging").and_then(|p| Paging::parse(p)) {
            Some(p) => p,
            None => return errors("Invalid paging parameter."),
        },
    };
    let page: Page = query::run_page(table.values(), &spec, &paging);
    let search_tail = if method == Method::GET {
        search.map(|s| format!("&search={}", enc(&s))).unwrap_or_default()
    } else {
        String::new()
    };
    let link = |p: &Paging| {
        format!("{}/ATServicesRest/V1.0/{entity}/query/next?paging={}{search_tail}", st.base_url, enc(&p.to_json()))
    };
    ok(json!({
        "items": page.items,
        "pageDetails": {
            "count": page.items.len(),
            "requestCount": page.page_size,
            "prevPageUrl": page.prev.as_ref().map(link),
            "nextPageUrl": page.next.as_ref().map(link),
        }
    }))
}

fn entity_information(entity: &str) -> Value {
    let (create, update, udfs) = match entity {
        "Tickets" | "Companies" | "ConfigurationItems" => (true, true, true),
        "TicketNotes" => (true, true, false),
        _ => (false, false, false),
    };
    let access = |b: bool| if b { "All" } else { "None" };
    json!({"info": {
        "name": entity,
        "canCreate": create,
        "canDelete": false,
        "canQuery": true,
        "canUpdate": update,
        "userAccessForCreate": access(create),
        "userAccessForDelete": "None",
        "userAccessForQuery": "All",
        "userAccessForUpdate": access(update),
        "hasUserDefinedFields": udfs,
        "supportsWebhookCallouts": entity == "Tickets" || entity == "Companies",
    }})
}

fn field_info(name: &str, data_type: &str, length: u64, required: bool, read_only: bool) -> Value {
    json!({
        "name": name, "dataType": data_type, "length": length, "isRequired": required,
        "isReadOnly": read_only, "isQueryable": true, "isReference": false,
        "referenceEntityType": "", "isPickList": false, "picklistValues": null,
        "picklistParentValueField": "", "isSupportedWebhookField": false
    })
}

fn entity_fields(st: &Shared, entity: &str) -> Value {
    let d = lock(&st.data);
    match entity {
        "Tickets" => Value::Array(d.ticket_fields.clone()),
        "TicketNotes" => tickets::note_fields(),
        _ => {
            // Synthesised from the seed rows' keys and value types.
            let mut names: std::collections::BTreeMap<String, &str> = Default::default();
            for row in rows(&d, entity).values() {
                for (k, v) in row.as_object().into_iter().flatten() {
                    if k == "userDefinedFields" {
                        continue;
                    }
                    let t = match v {
                        Value::Bool(_) => "boolean",
                        Value::Number(n) if n.is_i64() => "integer",
                        Value::Number(_) => "decimal",
                        _ => "string",
                    };
                    names.entry(k.clone()).or_insert(t);
                }
            }
            Value::Array(
                names
                    .iter()
                    .map(|(k, t)| {
                        let len = if *t == "string" { 100 } else { 0 };
                        field_info(k, t, len, k == "id", k == "id")
                    })
                    .collect(),
            )
        }
    }
}

fn udf_fields(st: &Shared, entity: &str) -> Value {
    if entity != "Tickets" {
        return json!([]);
    }
    Value::Array(
        st.cfg
            .ticket_udfs
            .iter()
            .map(|n| {
                json!({"name": n, "label": n, "type": "string", "length": 8000, "description": null,
                       "isRequired": false, "isReadOnly": false, "isQueryable": true, "isReference": false,
                       "referenceEntityType": null, "isPickList": false, "picklistValues": null,
                       "picklistParentValueField": null, "defaultValue": "", "isSupportedWebhookField": false})
            })
            .collect(),
    )
}
