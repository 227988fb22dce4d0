//! Request dispatch: case-insensitive paths, the token endpoint, bearer auth, throttling,
//! tickets, actions, customers and picklists.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use serde_json::{Map, Value, json};

use super::{Data, Shared};
use crate::common::lock;

/// The due-date fields a ticket takes (RFC 3339).
pub(super) const DATE_FIELDS: &[&str] = &["fixbydate", "deadlinedate", "targetdate"];

pub(super) fn routes(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

// ----- response helpers ------------------------------------------------------------------------

fn json_resp(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

fn ok(v: Value) -> Response {
    json_resp(StatusCode::OK, v)
}

/// A refused request: `{"message", "errors": {field: [message]}}` [M].
fn invalid(field: &str, message: impl Into<String>) -> Response {
    let m = message.into();
    json_resp(StatusCode::BAD_REQUEST, json!({"message": format!("{field}: {m}"), "errors": {field: [m]}}))
}

fn not_found(what: &str) -> Response {
    json_resp(StatusCode::NOT_FOUND, json!({"message": format!("{what} not found")}))
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    json_resp(status, json!({"error": code, "error_description": description}))
}

fn params_of(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect()
}

fn flag(p: &HashMap<String, String>, k: &str) -> bool {
    p.get(k).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// HTML to searchable text (tags dropped, `<br>` as a line break, a few entities decoded).
pub(super) fn text_of(html: &str) -> String {
    let with_breaks = html.replace("<br>", "\n").replace("<br/>", "\n").replace("<br />", "\n");
    let mut out = String::new();
    let mut in_tag = false;
    for c in with_breaks.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

// ----- the handler -----------------------------------------------------------------------------

async fn handle(State(st): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let segs: Vec<String> =
        path.trim_matches('/').split('/').filter(|s| !s.is_empty()).map(str::to_ascii_lowercase).collect();
    if segs.len() == 2 && segs[0] == "auth" && segs[1] == "token" {
        return if method == Method::POST { token(&st, &uri, &body) } else { not_found("resource") };
    }
    if segs.first().map(String::as_str) != Some("api") {
        return not_found("resource");
    }
    if let Some(r) = check_bearer(&st, &headers) {
        return r;
    }
    {
        let mut d = lock(&st.data);
        if let Some((n, secs)) = d.throttle {
            d.throttle = (n > 1).then_some((n - 1, secs));
            let mut r = json_resp(StatusCode::TOO_MANY_REQUESTS, json!({"message": "Too many requests"}));
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
    }
    let rest: Vec<&str> = segs[1..].iter().map(String::as_str).collect();
    let resp = route(&st, &method, &uri, &body, &rest);
    // a processed request whose answer is lost on the way back
    let mut d = lock(&st.data);
    let m = method.as_str().to_ascii_uppercase();
    if let Some(i) = d
        .lost
        .iter()
        .position(|l| l.method.as_deref().is_none_or(|x| x == m) && l.path.as_ref().is_none_or(|r| r.is_match(&path)))
    {
        let status = d.lost[i].status;
        d.lost[i].remaining -= 1;
        if d.lost[i].remaining == 0 {
            d.lost.remove(i);
        }
        return StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY).into_response();
    }
    resp
}

/// `POST /auth/token`: form `grant_type=client_credentials`, `client_id`, `client_secret`,
/// `scope`; `?tenant=` must name the configured tenant.
fn token(st: &Shared, uri: &Uri, body: &Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    if let Some(t) = &st.cfg.tenant
        && params_of(uri).get("tenant").is_none_or(|x| !x.eq_ignore_ascii_case(t))
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "unknown tenant");
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant_type must be client_credentials");
    }
    if form.get("client_id") != Some(&st.cfg.client_id) || form.get("client_secret") != Some(&st.cfg.client_secret) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "The client credentials are invalid");
    }
    let scope = form.get("scope").cloned().unwrap_or_else(|| "all".into());
    let expires = st.now() + Duration::seconds(st.cfg.token_ttl_secs);
    let mut d = lock(&st.data);
    let value = format!("sim-token-{}-{:x}", d.next_token, rand::random::<u64>());
    d.next_token += 1;
    d.tokens.insert(value.clone(), expires);
    ok(json!({"access_token": value, "token_type": "Bearer", "expires_in": st.cfg.token_ttl_secs, "scope": scope}))
}

fn check_bearer(st: &Shared, headers: &HeaderMap) -> Option<Response> {
    let unauthorized =
        |m: &str| Some(json_resp(StatusCode::UNAUTHORIZED, json!({"error": "invalid_token", "error_description": m})));
    let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return unauthorized("Authorization is required");
    };
    let Some(token) = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer ")) else {
        return unauthorized("a Bearer token is required");
    };
    let d = lock(&st.data);
    match d.tokens.get(token.trim()) {
        Some(expiry) if *expiry > st.now() => None,
        Some(_) => unauthorized("The token has expired"),
        None => unauthorized("The token is not valid"),
    }
}

fn route(st: &Shared, method: &Method, uri: &Uri, body: &Bytes, rest: &[&str]) -> Response {
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let p = params_of(uri);
    match rest {
        ["tickets"] if get => list_tickets(st, &p),
        ["tickets"] if post => post_tickets(st, body),
        ["tickets", id] if get => {
            let d = lock(&st.data);
            id.parse::<i64>()
                .ok()
                .and_then(|i| d.tickets.get(&i))
                .map_or_else(|| not_found("ticket"), |t| ok(t.clone()))
        }
        ["actions"] if get => {
            let Some(ticket) = p.get("ticket_id").and_then(|t| t.parse::<i64>().ok()) else {
                return invalid("ticket_id", "is required");
            };
            let d = lock(&st.data);
            let rows: Vec<Value> =
                d.actions.values().filter(|a| a["ticket_id"].as_i64() == Some(ticket)).cloned().collect();
            ok(json!({"record_count": rows.len(), "actions": rows}))
        }
        ["actions"] if post => post_actions(st, body),
        ["client"] if get => {
            let d = lock(&st.data);
            let inactive = flag(&p, "includeinactive");
            let search = p.get("search").map(|s| s.to_lowercase());
            let rows: Vec<Value> = d
                .clients
                .values()
                .filter(|c| inactive || !c["inactive"].as_bool().unwrap_or(false))
                .filter(|c| search.as_ref().is_none_or(|s| c["name"].as_str().unwrap_or("").to_lowercase().contains(s)))
                .cloned()
                .collect();
            page(rows, &p, "clients")
        }
        ["team"] if get => ok(Value::Array(active_rows(&st.cfg.teams, flag(&p, "includeinactive")))),
        ["tickettype"] if get => ok(Value::Array(active_rows(&st.cfg.ticket_types, flag(&p, "includeinactive")))),
        ["status"] if get => ok(Value::Array(st.cfg.statuses.clone())),
        ["priority"] if get => ok(Value::Array(st.cfg.priorities.clone())),
        _ => not_found("resource"),
    }
}

fn active_rows(rows: &[Value], include_inactive: bool) -> Vec<Value> {
    rows.iter().filter(|r| include_inactive || !r["inactive"].as_bool().unwrap_or(false)).cloned().collect()
}

/// `{"record_count": all matches, key: one page}`: `pageinate=true` with `page_size`/`page_no`,
/// else the first `count` rows (all without it).
fn page(rows: Vec<Value>, p: &HashMap<String, String>, key: &str) -> Response {
    let total = rows.len();
    let num = |k: &str| p.get(k).and_then(|v| v.parse::<usize>().ok());
    let rows: Vec<Value> = if flag(p, "pageinate") {
        let size = num("page_size").unwrap_or(50).max(1);
        let no = num("page_no").unwrap_or(1).max(1);
        rows.into_iter().skip((no - 1) * size).take(size).collect()
    } else {
        match num("count") {
            Some(n) => rows.into_iter().take(n).collect(),
            None => rows,
        }
    };
    ok(json!({"record_count": total, key: rows}))
}

// ----- tickets ---------------------------------------------------------------------------------

fn list_tickets(st: &Shared, p: &HashMap<String, String>) -> Response {
    let d = lock(&st.data);
    let search = p.get("search").map(|s| s.to_lowercase()).filter(|s| !s.is_empty());
    let client = p.get("client_id").and_then(|c| c.parse::<i64>().ok());
    let open_only = flag(p, "open_only");
    let details = flag(p, "includedetails");
    let rows: Vec<Value> = d
        .tickets
        .values()
        .filter(|t| client.is_none_or(|c| t["client_id"].as_i64() == Some(c)))
        .filter(|t| !open_only || !st.is_closed(t["status_id"].as_i64().unwrap_or(0)))
        .filter(|t| {
            search.as_ref().is_none_or(|s| {
                let custom = t["customfields"].as_array().into_iter().flatten().filter_map(|f| f["value"].as_str());
                std::iter::once(t["summary"].as_str().unwrap_or("").to_owned())
                    .chain(std::iter::once(text_of(t["details"].as_str().unwrap_or(""))))
                    .chain(custom.map(str::to_owned))
                    .any(|x| x.to_lowercase().contains(s))
            })
        })
        .map(|t| {
            let mut t = t.clone();
            if !details && let Some(o) = t.as_object_mut() {
                o.remove("details");
            }
            t
        })
        .collect();
    page(rows, p, "tickets")
}

/// `POST /api/Tickets`: a JSON array; without `id` an element creates, with `id` it updates.
/// One element answers the record, several a list (201).
fn post_tickets(st: &Shared, body: &Bytes) -> Response {
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(body) else {
        return invalid("body", "expected a JSON array of tickets");
    };
    if items.is_empty() {
        return invalid("body", "the array is empty");
    }
    let now = st.now_str();
    let mut d = lock(&st.data);
    // validate everything first: a refused element refuses the whole request
    let mut planned: Vec<(Option<i64>, Map<String, Value>)> = Vec::new();
    for item in &items {
        let Some(obj) = item.as_object() else { return invalid("body", "every element must be an object") };
        let id = obj.get("id").and_then(Value::as_i64).filter(|i| *i > 0);
        match id {
            Some(i) if !d.tickets.contains_key(&i) => return not_found("ticket"),
            _ => {}
        }
        match fields(st, &d, obj, id.is_none()) {
            Ok(f) => planned.push((id, f)),
            Err(r) => return *r,
        }
    }
    let mut out = Vec::new();
    for (id, f) in planned {
        let id = id.unwrap_or_else(|| {
            let id = d.next_ticket_id;
            d.next_ticket_id += 1;
            let client = f.get("client_id").and_then(Value::as_i64).unwrap_or(0);
            let client_name = d.clients.get(&client).map_or(Value::Null, |c| c["name"].clone());
            d.tickets.insert(
                id,
                json!({"id": id, "summary": "", "details": "", "client_id": client, "client_name": client_name,
                    "site_id": 1, "tickettype_id": 1, "status_id": 1, "priority_id": 3, "team": "", "agent_id": 0,
                    "hasbeenclosed": false, "dateoccurred": now, "dateclosed": null, "fixbydate": null,
                    "deadlinedate": null, "targetdate": null, "customfields": [], "lastactiondate": now}),
            );
            id
        });
        let Some(t) = d.tickets.get_mut(&id) else { return not_found("ticket") };
        for (k, v) in f {
            if k == "status_id" {
                set_status(st, t, v.as_i64().unwrap_or(1), &now);
            } else {
                t[k.as_str()] = v;
            }
        }
        t["lastactiondate"] = json!(now);
        out.push(t.clone());
    }
    let answer = if out.len() == 1 { out.swap_remove(0) } else { Value::Array(out) };
    json_resp(StatusCode::CREATED, answer)
}

/// Sets a status, closing (`hasbeenclosed`, `dateclosed`) or reopening the ticket.
pub(super) fn set_status(st: &Shared, t: &mut Value, status: i64, now: &str) {
    t["status_id"] = json!(status);
    if st.is_closed(status) {
        if t["dateclosed"].is_null() {
            t["dateclosed"] = json!(now);
        }
        t["hasbeenclosed"] = json!(true);
    } else {
        // `hasbeenclosed` says the ticket was closed once; it stays [M]
        t["dateclosed"] = Value::Null;
    }
}

fn has_id(rows: &[Value], key: &str, id: i64) -> bool {
    rows.iter().any(|r| r[key].as_i64() == Some(id))
}

/// The checked fields of one element (`create`: the required ones must be there).
fn fields(st: &Shared, d: &Data, obj: &Map<String, Value>, create: bool) -> Result<Map<String, Value>, Box<Response>> {
    let bad = |f: &str, m: String| Box::new(invalid(f, m));
    let mut out = Map::new();
    let int = |k: &str| -> Result<Option<i64>, Box<Response>> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| bad(k, "must be a number".into())),
        }
    };
    match obj.get("summary").map(|v| v.as_str().map(str::trim)) {
        Some(Some(s)) if !s.is_empty() => {
            out.insert("summary".into(), json!(s));
        }
        Some(_) => return Err(bad("summary", "must be a non-empty string".into())),
        None if create => return Err(bad("summary", "is required".into())),
        None => {}
    }
    if let Some(html) = obj.get("details_html").or_else(|| obj.get("details")) {
        let Some(s) = html.as_str() else { return Err(bad("details_html", "must be a string".into())) };
        out.insert("details".into(), json!(s.replace('\n', "<br>")));
    }
    match int("client_id")? {
        Some(c) => match d.clients.get(&c) {
            Some(row) if row["inactive"].as_bool().unwrap_or(false) => {
                return Err(bad("client_id", format!("customer {c} is inactive")));
            }
            Some(row) => {
                out.insert("client_id".into(), json!(c));
                out.insert("client_name".into(), row["name"].clone());
            }
            None => return Err(bad("client_id", format!("customer {c} does not exist"))),
        },
        None if create => return Err(bad("client_id", "is required".into())),
        None => {}
    }
    for (key, rows, row_key) in [
        ("status_id", &st.cfg.statuses, "id"),
        ("tickettype_id", &st.cfg.ticket_types, "id"),
        ("priority_id", &st.cfg.priorities, "priorityid"),
    ] {
        if let Some(v) = int(key)? {
            if !has_id(rows, row_key, v) {
                return Err(bad(key, format!("{v} does not exist")));
            }
            out.insert(key.into(), json!(v));
        }
    }
    let team_by_id = int("team_id")?.map(|i| st.cfg.teams.iter().find(|t| t["id"].as_i64() == Some(i)).ok_or(i));
    let team_by_name = obj
        .get("team")
        .and_then(Value::as_str)
        .map(|n| st.cfg.teams.iter().find(|t| t["name"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(n))).ok_or(n));
    let team = match (team_by_id, team_by_name) {
        (Some(Err(i)), _) => return Err(bad("team_id", format!("team {i} does not exist"))),
        (_, Some(Err(n))) => return Err(bad("team", format!("team {n:?} does not exist"))),
        (Some(Ok(a)), Some(Ok(b))) if a["id"] != b["id"] => {
            return Err(bad("team", "names another team than team_id".into()));
        }
        (Some(Ok(t)), _) | (None, Some(Ok(t))) => Some(t),
        (None, None) => None,
    };
    if let Some(t) = team {
        if t["inactive"].as_bool().unwrap_or(false) {
            return Err(bad("team", format!("team {} is inactive", t["name"])));
        }
        out.insert("team".into(), t["name"].clone());
        out.insert("team_id".into(), t["id"].clone());
    }
    for f in DATE_FIELDS {
        match obj.get(*f) {
            None => {}
            Some(Value::Null) => {
                out.insert((*f).into(), Value::Null);
            }
            Some(Value::String(s)) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => {
                out.insert((*f).into(), json!(s));
            }
            Some(_) => return Err(bad(f, "must be a date-time (2030-01-15T17:00:00Z)".into())),
        }
    }
    if let Some(cf) = obj.get("customfields") {
        let Some(list) = cf.as_array() else { return Err(bad("customfields", "must be a list".into())) };
        let mut kept = Vec::new();
        for f in list {
            let Some(name) = f.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
                return Err(bad("customfields", "every entry needs a name".into()));
            };
            kept.push(json!({"name": name, "value": f.get("value").cloned().unwrap_or(Value::Null)}));
        }
        out.insert("customfields".into(), Value::Array(kept));
    }
    Ok(out)
}

// ----- actions ---------------------------------------------------------------------------------

/// `POST /api/Actions`: a JSON array of `{ticket_id, note_html | note, outcome_id | outcome,
/// hiddenfromuser}`.
fn post_actions(st: &Shared, body: &Bytes) -> Response {
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(body) else {
        return invalid("body", "expected a JSON array of actions");
    };
    let now = st.now_str();
    let mut d = lock(&st.data);
    let mut planned = Vec::new();
    for item in &items {
        let Some(ticket) = item.get("ticket_id").and_then(Value::as_i64) else {
            return invalid("ticket_id", "is required");
        };
        if !d.tickets.contains_key(&ticket) {
            return not_found("ticket");
        }
        let html = item.get("note_html").or_else(|| item.get("note")).and_then(Value::as_str).unwrap_or("");
        if html.trim().is_empty() {
            return invalid("note_html", "is required");
        }
        let outcome =
            match (item.get("outcome_id").and_then(Value::as_i64), item.get("outcome").and_then(Value::as_str)) {
                (Some(id), _) => st.cfg.outcomes.iter().find(|o| o["id"].as_i64() == Some(id)),
                (None, Some(name)) => {
                    st.cfg.outcomes.iter().find(|o| o["outcome"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(name)))
                }
                (None, None) => st.cfg.outcomes.first(),
            };
        let Some(outcome) = outcome.cloned() else { return invalid("outcome_id", "names no outcome") };
        let hidden = item.get("hiddenfromuser").and_then(Value::as_bool).unwrap_or(false);
        planned.push((ticket, html.to_owned(), outcome, hidden));
    }
    let mut out = Vec::new();
    for (ticket, html, outcome, hidden) in planned {
        let id = d.next_action_id;
        d.next_action_id += 1;
        let a = json!({"id": id, "ticket_id": ticket, "note": text_of(&html), "note_html": html,
            "outcome": outcome["outcome"], "outcome_id": outcome["id"], "hiddenfromuser": hidden,
            "datetime": now, "who": st.cfg.agent});
        d.actions.insert(id, a.clone());
        if let Some(t) = d.tickets.get_mut(&ticket) {
            t["lastactiondate"] = json!(now);
        }
        out.push(a);
    }
    let answer = if out.len() == 1 { out.swap_remove(0) } else { Value::Array(out) };
    json_resp(StatusCode::CREATED, answer)
}
