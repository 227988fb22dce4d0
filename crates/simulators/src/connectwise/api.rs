//! Request dispatch: case-insensitive paths, discovery, auth, throttling, lists, tickets, notes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::conditions::{self, Cond};
use super::{Data, SUMMARY_MAX, Shared};
use crate::common::lock;

/// All API traffic goes through one fallback handler so paths can be matched case-insensitively.
pub(super) fn routes(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

// ----- response helpers ------------------------------------------------------------------------

/// `{"code","message","errors":[{"code","message","resource","field"}]}`.
fn cw_error(status: StatusCode, code: &str, message: &str, errors: &[(String, String)]) -> Response {
    let mut body = json!({"code": code, "message": message});
    if !errors.is_empty() {
        body["errors"] = Value::Array(
            errors
                .iter()
                .map(|(field, m)| json!({"code": "InvalidField", "message": m, "resource": "ticket", "field": field}))
                .collect(),
        );
    }
    (status, axum::Json(body)).into_response()
}

fn bad_request(message: impl AsRef<str>) -> Response {
    cw_error(StatusCode::BAD_REQUEST, "InvalidObject", message.as_ref(), &[])
}

fn invalid_fields(errors: &[(String, String)]) -> Response {
    cw_error(StatusCode::BAD_REQUEST, "InvalidObject", "ticket object is invalid", errors)
}

fn not_found(what: &str) -> Response {
    cw_error(StatusCode::NOT_FOUND, "NotFound", &format!("{what} not found"), &[])
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

fn params_of(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect()
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

// ----- condition fields ------------------------------------------------------------------------

const TICKET_FIELDS: &[&str] = &[
    "id",
    "summary",
    "externalXRef",
    "closedFlag",
    "closedDate",
    "closedBy",
    "requiredDate",
    "recordType",
    "board/id",
    "board/name",
    "status/id",
    "status/name",
    "company/id",
    "company/identifier",
    "company/name",
    "priority/id",
    "priority/name",
    "type/id",
    "type/name",
    "subType/id",
    "subType/name",
    "item/id",
    "item/name",
    "source/id",
    "source/name",
    "_info/lastUpdated",
    "_info/dateEntered",
];
const NOTE_FIELDS: &[&str] = &[
    "id",
    "ticketId",
    "text",
    "detailDescriptionFlag",
    "internalAnalysisFlag",
    "resolutionFlag",
    "internalFlag",
    "externalFlag",
    "dateCreated",
];
const COMPANY_FIELDS: &[&str] = &["id", "identifier", "name", "status/id", "status/name", "deletedFlag"];
const NAMED_FIELDS: &[&str] = &["id", "name", "inactiveFlag", "inactive", "closedStatus", "defaultFlag", "sortOrder"];

// ----- the handler -----------------------------------------------------------------------------

async fn handle(State(st): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();

    // codebase discovery: no credentials
    if lower.len() == 3 && lower[0] == "login" && lower[1] == "companyinfo" && method == Method::GET {
        if !segs[2].eq_ignore_ascii_case(&st.cfg.company_id) {
            // the real service answers an unknown company with a null body [M]
            return ok(Value::Null);
        }
        let site = st.base_url.trim_start_matches("http://").trim_start_matches("https://").to_owned();
        let codebase = st.cfg.codebase.clone();
        return ok(json!({
            "CompanyName": "Sim MSP",
            "Codebase": codebase,
            "VersionCode": "v2025.1",
            "VersionNumber": "v4.6.2025.1",
            "CompanyID": st.cfg.company_id,
            "IsCloud": "False",
            "SiteUrl": site,
        }));
    }

    let Some(apis) = lower.windows(2).position(|w| w[0] == "apis" && w[1] == "3.0") else {
        return not_found("resource");
    };
    let codebase: Vec<String> =
        st.cfg.codebase.trim_matches('/').split('/').map(str::to_ascii_lowercase).filter(|s| !s.is_empty()).collect();
    if lower[..apis] != codebase[..] {
        return not_found("codebase");
    }
    let rest: Vec<String> = lower[apis + 2..].to_vec();

    if let Some(r) = check_auth(&st, &headers) {
        return r;
    }
    {
        let mut d = lock(&st.data);
        if let Some((n, secs)) = d.throttle {
            d.throttle = (n > 1).then_some((n - 1, secs));
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"error": "ConnectWiseAPI",
                    "message": format!("Too many requests. Please try again in {secs} seconds.")})),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
    }

    let resp = route(&st, &method, &uri, &headers, &body, &rest);

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

fn check_auth(st: &Shared, headers: &HeaderMap) -> Option<Response> {
    let unauthorized = |m: &str| Some(cw_error(StatusCode::UNAUTHORIZED, "Unauthorized", m, &[]));
    let Some(auth) = header_str(headers, "authorization") else { return unauthorized("Authorization is required") };
    let Some(encoded) = auth.strip_prefix("Basic ").or_else(|| auth.strip_prefix("basic ")) else {
        return unauthorized("Basic authorization is required");
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return unauthorized("Invalid authorization header");
    };
    let expected = format!("{}+{}:{}", st.cfg.company_id, st.cfg.public_key, st.cfg.private_key);
    // the company part is compared case-insensitively, the keys exactly [M]
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let ok = raw
        .split_once('+')
        .zip(expected.split_once('+'))
        .is_some_and(|((c, rest), (ec, erest))| c.eq_ignore_ascii_case(ec) && rest == erest);
    if !ok {
        return unauthorized("Invalid credentials");
    }
    match header_str(headers, "clientid").map(str::trim) {
        None | Some("") => unauthorized("clientId header is required"),
        Some(id) => match &st.cfg.client_ids {
            Some(allowed) if !allowed.iter().any(|a| a.eq_ignore_ascii_case(id)) => unauthorized("Unknown clientId"),
            _ => None,
        },
    }
}

fn route(st: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes, rest: &[String]) -> Response {
    let r: Vec<&str> = rest.iter().map(String::as_str).collect();
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let id_of = |s: &str| s.parse::<i64>().ok();
    let d = lock(&st.data);
    match r.as_slice() {
        ["service", "tickets"] if get => {
            list(st, uri, headers, d.tickets.values().cloned().collect(), TICKET_FIELDS, None)
        }
        ["service", "tickets"] if post => {
            drop(d);
            create_ticket(st, body)
        }
        ["service", "tickets", "search"] if post => {
            let conditions = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("conditions").and_then(Value::as_str).map(str::to_owned));
            let Some(conditions) = conditions else { return bad_request("search needs {\"conditions\":\"…\"}") };
            list(st, uri, headers, d.tickets.values().cloned().collect(), TICKET_FIELDS, Some(conditions))
        }
        ["service", "tickets", "count"] if get => {
            let rows: Vec<Value> = d.tickets.values().cloned().collect();
            match filter(rows, params_of(uri).get("conditions").map(String::as_str), TICKET_FIELDS) {
                Ok(rows) => ok(json!({"count": rows.len()})),
                Err(r) => *r,
            }
        }
        ["service", "tickets", id] => {
            let Some(id) = id_of(id) else { return not_found("ticket") };
            match *method {
                Method::GET => d.tickets.get(&id).map_or_else(|| not_found("ticket"), |t| ok(t.clone())),
                Method::PATCH => {
                    drop(d);
                    patch_ticket(st, id, body)
                }
                _ => cw_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "method not allowed", &[]),
            }
        }
        ["service", "tickets", id, "notes"] => {
            let Some(id) = id_of(id).filter(|i| d.tickets.contains_key(i)) else { return not_found("ticket") };
            if get {
                let rows = d.notes.values().filter(|n| n["ticketId"].as_i64() == Some(id)).cloned().collect();
                list(st, uri, headers, rows, NOTE_FIELDS, None)
            } else if post {
                drop(d);
                add_note(st, id, body)
            } else {
                cw_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "method not allowed", &[])
            }
        }
        ["service", "boards"] if get => {
            list(st, uri, headers, d.boards.iter().map(|b| b.board.clone()).collect(), NAMED_FIELDS, None)
        }
        ["service", "boards", id, what] if get => {
            let Some(b) = id_of(id).and_then(|i| d.board(i)) else { return not_found("board") };
            let rows = match *what {
                "statuses" => b.statuses.clone(),
                "types" => b.types.clone(),
                "subtypes" => b.subtypes.clone(),
                "items" => b.items.clone(),
                _ => return not_found("resource"),
            };
            list(st, uri, headers, rows, NAMED_FIELDS, None)
        }
        ["service", "priorities"] if get => list(st, uri, headers, st.cfg.priorities.clone(), NAMED_FIELDS, None),
        ["service", "sources"] if get => list(st, uri, headers, st.cfg.sources.clone(), NAMED_FIELDS, None),
        ["company", "companies"] if get => {
            list(st, uri, headers, d.companies.values().cloned().collect(), COMPANY_FIELDS, None)
        }
        ["company", "companies", "statuses"] if get => {
            list(st, uri, headers, st.cfg.company_statuses.clone(), NAMED_FIELDS, None)
        }
        ["company", "companies", id] if get => {
            id_of(id).and_then(|i| d.companies.get(&i)).map_or_else(|| not_found("company"), |c| ok(c.clone()))
        }
        _ => not_found("resource"),
    }
}

// ----- lists -----------------------------------------------------------------------------------

fn filter(rows: Vec<Value>, conditions: Option<&str>, fields: &[&str]) -> Result<Vec<Value>, Box<Response>> {
    let Some(text) = conditions.filter(|c| !c.trim().is_empty()) else { return Ok(rows) };
    let bad = |e: String| Box::new(bad_request(e));
    let cond: Cond = conditions::parse(text, fields).map_err(bad)?;
    let mut out = Vec::new();
    for row in rows {
        if conditions::matches(&cond, &row).map_err(bad)? {
            out.push(row);
        }
    }
    Ok(out)
}

fn project(row: &Value, fields: &[String]) -> Value {
    let Some(obj) = row.as_object() else { return row.clone() };
    let mut out = Map::new();
    for f in fields {
        let top = f.split('/').next().unwrap_or(f);
        if let Some((k, v)) = obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(top)) {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn link(st: &Shared, uri: &Uri, params: &HashMap<String, String>, set: (&str, String), rel: &str) -> String {
    let mut pairs: Vec<(String, String)> =
        params.iter().filter(|(k, _)| *k != "page" && *k != "pageid").map(|(k, v)| (k.clone(), v.clone())).collect();
    pairs.sort();
    pairs.push((set.0.to_owned(), set.1));
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| {
            let k = match k.as_str() {
                "pagesize" => "pageSize",
                "orderby" => "orderBy",
                other => other,
            };
            (k, v.as_str())
        }))
        .finish();
    format!("<{}{}?{}>; rel=\"{rel}\"", st.base_url, uri.path(), query)
}

/// A list answer: conditions, `orderBy` (`id` only), `fields`, numbered or forward-only paging,
/// `Link` header.
fn list(
    st: &Shared,
    uri: &Uri,
    headers: &HeaderMap,
    rows: Vec<Value>,
    fields: &[&str],
    body_conditions: Option<String>,
) -> Response {
    let params = params_of(uri);
    let conditions = body_conditions.or_else(|| params.get("conditions").cloned());
    let mut rows = match filter(rows, conditions.as_deref(), fields) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let forward_only = header_str(headers, "pagination-type").is_some_and(|v| v.eq_ignore_ascii_case("forward-only"));
    let page_size = match params.get("pagesize").map(|s| s.parse::<usize>()) {
        None => 25,
        Some(Ok(n)) if n >= 1 => n.min(1000),
        Some(_) => return bad_request("pageSize must be a positive integer"),
    };
    rows.sort_by_key(|r| r["id"].as_i64().unwrap_or(0));
    if let Some(order) = params.get("orderby") {
        if forward_only {
            return bad_request("orderBy is not supported with forward-only pagination");
        }
        match order.trim().to_ascii_lowercase().as_str() {
            "id" | "id asc" => {}
            "id desc" => rows.reverse(),
            other => return bad_request(format!("unsupported orderBy {other}")),
        }
    }
    let (page_rows, links) = if forward_only {
        if params.contains_key("page") {
            return bad_request("page is not supported with forward-only pagination; use pageId");
        }
        let after = match params.get("pageid").map(|s| s.parse::<i64>()) {
            None => i64::MIN,
            Some(Ok(n)) => n,
            Some(Err(_)) => return bad_request("pageId must be an integer"),
        };
        let rest: Vec<Value> = rows.into_iter().filter(|r| r["id"].as_i64().unwrap_or(0) > after).collect();
        let more = rest.len() > page_size;
        let page: Vec<Value> = rest.into_iter().take(page_size).collect();
        let mut links = Vec::new();
        if more && let Some(last) = page.last().and_then(|r| r["id"].as_i64()) {
            links.push(link(st, uri, &params, ("pageId", last.to_string()), "next"));
        }
        (page, links)
    } else {
        let page_no = match params.get("page").map(|s| s.parse::<usize>()) {
            None => 1,
            Some(Ok(n)) if n >= 1 => n,
            Some(_) => return bad_request("page must be a positive integer"),
        };
        let total = rows.len();
        let last_page = total.div_ceil(page_size).max(1);
        let page: Vec<Value> = rows.into_iter().skip((page_no - 1) * page_size).take(page_size).collect();
        let mut links = Vec::new();
        if page_no > 1 {
            links.push(link(st, uri, &params, ("page", (page_no - 1).to_string()), "prev"));
            links.push(link(st, uri, &params, ("page", "1".into()), "first"));
        }
        if page_no < last_page {
            links.push(link(st, uri, &params, ("page", (page_no + 1).to_string()), "next"));
            links.push(link(st, uri, &params, ("page", last_page.to_string()), "last"));
        }
        (page, links)
    };
    let wanted: Vec<String> = params
        .get("fields")
        .map(|f| f.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let out: Vec<Value> =
        if wanted.is_empty() { page_rows } else { page_rows.iter().map(|r| project(r, &wanted)).collect() };
    let mut resp = ok(Value::Array(out));
    if !links.is_empty()
        && let Ok(v) = HeaderValue::from_str(&links.join(", "))
    {
        resp.headers_mut().insert(header::LINK, v);
    }
    resp
}

// ----- tickets ---------------------------------------------------------------------------------

/// Resolves `{"id":N}` or `{"name":"…"}` against `rows` → `{"id","name"}`.
fn resolve(value: &Value, rows: &[Value]) -> Option<Value> {
    let by_id = value.get("id").and_then(Value::as_i64);
    let by_name = value.get("name").and_then(Value::as_str);
    let row = rows.iter().find(|r| match (by_id, by_name) {
        (Some(id), _) => r["id"].as_i64() == Some(id),
        (None, Some(n)) => r["name"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(n)),
        _ => false,
    })?;
    Some(json!({"id": row["id"], "name": row["name"]}))
}

fn active(row_ref: &Value, rows: &[Value]) -> bool {
    rows.iter()
        .find(|r| r["id"] == row_ref["id"])
        .is_some_and(|r| !r["inactive"].as_bool().unwrap_or(false) && !r["inactiveFlag"].as_bool().unwrap_or(false))
}

/// Sets `status` on a ticket, opening or closing it as the status says.
pub(super) fn apply_status(t: &mut Value, status: &Value, now: &str, who: &str) {
    t["status"] = json!({"id": status["id"], "name": status["name"]});
    if status["closedStatus"].as_bool().unwrap_or(false) {
        if !t["closedFlag"].as_bool().unwrap_or(false) {
            t["closedFlag"] = json!(true);
            t["closedDate"] = json!(now);
            t["closedBy"] = json!(who);
        }
    } else {
        t["closedFlag"] = json!(false);
        t["closedDate"] = Value::Null;
        t["closedBy"] = Value::Null;
    }
    t["_info"]["lastUpdated"] = json!(now);
}

fn create_ticket(st: &Shared, body: &Bytes) -> Response {
    let Ok(Value::Object(b)) = serde_json::from_slice::<Value>(body) else {
        return bad_request("the body must be a ticket object");
    };
    let now = st.now_str();
    let mut d = lock(&st.data);
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut err = |f: &str, m: String| errors.push((f.to_owned(), m));

    let summary = b.get("summary").and_then(Value::as_str).map(str::trim).unwrap_or("");
    if summary.is_empty() {
        err("summary", "The summary field is required.".into());
    } else if summary.chars().count() > SUMMARY_MAX {
        err("summary", format!("The summary field must be a string with a maximum length of {SUMMARY_MAX}."));
    }
    let company = match b.get("company") {
        None | Some(Value::Null) => {
            err("company", "The company field is required.".into());
            None
        }
        Some(c) => {
            let by_id = c.get("id").and_then(Value::as_i64);
            let by_ident = c.get("identifier").and_then(Value::as_str);
            let found = d.companies.values().find(|r| match (by_id, by_ident) {
                (Some(id), _) => r["id"].as_i64() == Some(id),
                (None, Some(i)) => r["identifier"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(i)),
                _ => false,
            });
            match found {
                Some(r) if !r["deletedFlag"].as_bool().unwrap_or(false) => {
                    Some(json!({"id": r["id"], "identifier": r["identifier"], "name": r["name"]}))
                }
                _ => {
                    err("company", "company does not exist.".into());
                    None
                }
            }
        }
    };
    let boards: Vec<Value> = d.boards.iter().map(|b| b.board.clone()).collect();
    let board_ref = match b.get("board") {
        None | Some(Value::Null) => boards
            .iter()
            .find(|x| !x["inactiveFlag"].as_bool().unwrap_or(false))
            .map(|x| json!({"id": x["id"], "name": x["name"]})),
        Some(v) => match resolve(v, &boards) {
            Some(r) if active(&r, &boards) => Some(r),
            Some(_) => {
                err("board", "board is inactive.".into());
                None
            }
            None => {
                err("board", "board does not exist.".into());
                None
            }
        },
    };
    let board = board_ref.as_ref().and_then(|r| r["id"].as_i64()).and_then(|id| d.board(id)).cloned();
    let mut status = None;
    let mut kind = None;
    let mut sub_type = None;
    let mut item = None;
    if let Some(bd) = &board {
        status = match b.get("status") {
            None | Some(Value::Null) => {
                bd.statuses.iter().find(|s| s["defaultFlag"].as_bool().unwrap_or(false)).cloned()
            }
            Some(v) => match resolve(v, &bd.statuses) {
                Some(r) if active(&r, &bd.statuses) => bd.statuses.iter().find(|s| s["id"] == r["id"]).cloned(),
                _ => {
                    err("status", "status is not a status of the ticket's board.".into());
                    None
                }
            },
        };
        for (field, rows, slot) in
            [("type", &bd.types, &mut kind), ("subType", &bd.subtypes, &mut sub_type), ("item", &bd.items, &mut item)]
        {
            match b.get(field) {
                None | Some(Value::Null) => {}
                Some(v) => match resolve(v, rows) {
                    Some(r) if active(&r, rows) => *slot = Some(r),
                    _ => err(field, format!("{field} does not belong to the ticket's board.")),
                },
            }
        }
        if let (Some(t), Some(s)) = (&kind, &sub_type) {
            let assoc = bd
                .subtypes
                .iter()
                .find(|x| x["id"] == s["id"])
                .and_then(|x| x["typeAssociationIds"].as_array().cloned())
                .unwrap_or_default();
            if !assoc.is_empty() && !assoc.contains(&t["id"]) {
                err("subType", "subType is not associated with the type.".into());
            }
        }
    }
    let priority = match b.get("priority") {
        None | Some(Value::Null) => resolve(&json!({"name": "Medium"}), &st.cfg.priorities),
        Some(v) => {
            let r = resolve(v, &st.cfg.priorities);
            if r.is_none() {
                err("priority", "priority does not exist.".into());
            }
            r
        }
    };
    let source = match b.get("source") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let r = resolve(v, &st.cfg.sources);
            if r.is_none() {
                err("source", "source does not exist.".into());
            }
            r
        }
    };
    let xref = match b.get("externalXRef") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= SUMMARY_MAX => Some(s.clone()),
        Some(_) => {
            err(
                "externalXRef",
                format!("The externalXRef field must be a string with a maximum length of {SUMMARY_MAX}."),
            );
            None
        }
    };
    let required = match b.get("requiredDate") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => Some(s.clone()),
        Some(_) => {
            err("requiredDate", "requiredDate is not a valid date.".into());
            None
        }
    };
    let description = b.get("initialDescription").and_then(Value::as_str).map(str::to_owned);
    if !errors.is_empty() {
        return invalid_fields(&errors);
    }
    let id = d.next_ticket_id;
    d.next_ticket_id += 1;
    let mut t = json!({
        "id": id,
        "summary": summary,
        "recordType": "ServiceTicket",
        "board": board_ref,
        "status": Value::Null,
        "company": company,
        "priority": priority,
        "closedFlag": false,
        "closedDate": null,
        "closedBy": null,
        "externalXRef": xref,
        "requiredDate": required,
        "_info": {"lastUpdated": now, "dateEntered": now, "enteredBy": st.cfg.member},
    });
    for (k, v) in [("type", kind), ("subType", sub_type), ("item", item), ("source", source)] {
        if let Some(v) = v {
            t[k] = v;
        }
    }
    if let Some(s) = status {
        apply_status(&mut t, &s, &now, &st.cfg.member);
    }
    // a ticket created in a closed status is closed on creation
    t["_info"]["lastUpdated"] = json!(now);
    d.tickets.insert(id, t.clone());
    if let Some(text) = description.filter(|s| !s.is_empty()) {
        let nid = d.next_note_id;
        d.next_note_id += 1;
        d.notes.insert(
            nid,
            json!({"id": nid, "ticketId": id, "text": text, "detailDescriptionFlag": true, "internalAnalysisFlag": false,
                "resolutionFlag": false, "internalFlag": false, "externalFlag": false, "dateCreated": now,
                "createdBy": st.cfg.member}),
        );
    }
    (StatusCode::CREATED, axum::Json(t)).into_response()
}

fn patch_ticket(st: &Shared, id: i64, body: &Bytes) -> Response {
    let Ok(Value::Array(ops)) = serde_json::from_slice::<Value>(body) else {
        return bad_request("a PATCH body is a JSON Patch array: [{\"op\",\"path\",\"value\"}]");
    };
    let now = st.now_str();
    let mut d = lock(&st.data);
    let Some(ticket) = d.tickets.get(&id).cloned() else { return not_found("ticket") };
    let board = ticket["board"]["id"].as_i64().and_then(|b| d.board(b)).cloned();
    let mut changes: Vec<(String, Value)> = Vec::new();
    for op in &ops {
        let (Some(kind), Some(path)) = (op.get("op").and_then(Value::as_str), op.get("path").and_then(Value::as_str))
        else {
            return bad_request("every operation needs op and path");
        };
        if !matches!(kind.to_ascii_lowercase().as_str(), "replace" | "add") {
            return bad_request(format!("unsupported op {kind}"));
        }
        let path = path.trim_start_matches('/');
        if path.contains('/') {
            // the real service answers 200 and changes nothing for a sub-path [V]
            continue;
        }
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        match path.to_ascii_lowercase().as_str() {
            "status" => {
                let Some(bd) = &board else { return bad_request("the ticket has no board") };
                match resolve(&value, &bd.statuses).filter(|r| active(r, &bd.statuses)) {
                    Some(r) => changes
                        .push(("status".into(), bd.statuses.iter().find(|s| s["id"] == r["id"]).cloned().unwrap_or(r))),
                    None => {
                        return invalid_fields(&[(
                            "status".into(),
                            "status is not a status of the ticket's board.".into(),
                        )]);
                    }
                }
            }
            "summary" => match value.as_str() {
                Some(s) if !s.trim().is_empty() && s.chars().count() <= SUMMARY_MAX => {
                    changes.push(("summary".into(), json!(s)))
                }
                _ => {
                    return invalid_fields(&[(
                        "summary".into(),
                        format!("The summary field must be a string with a maximum length of {SUMMARY_MAX}."),
                    )]);
                }
            },
            "priority" => match resolve(&value, &st.cfg.priorities) {
                Some(r) => changes.push(("priority".into(), r)),
                None => return invalid_fields(&[("priority".into(), "priority does not exist.".into())]),
            },
            "externalxref" => match &value {
                Value::String(s) if s.chars().count() <= SUMMARY_MAX => {
                    changes.push(("externalXRef".into(), value.clone()))
                }
                Value::Null => changes.push(("externalXRef".into(), Value::Null)),
                _ => return invalid_fields(&[("externalXRef".into(), "externalXRef is too long.".into())]),
            },
            // validated as on create: an RFC 3339 date-time, or null to clear it
            "requireddate" => match &value {
                Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => {
                    changes.push(("requiredDate".into(), value.clone()))
                }
                Value::Null => changes.push(("requiredDate".into(), Value::Null)),
                _ => {
                    return invalid_fields(&[("requiredDate".into(), "requiredDate is not a valid date.".into())]);
                }
            },
            other => return bad_request(format!("cannot patch {other}")),
        }
    }
    let Some(t) = d.tickets.get_mut(&id) else { return not_found("ticket") };
    for (field, value) in changes {
        if field == "status" {
            apply_status(t, &value, &now, &st.cfg.member);
        } else {
            t[field.as_str()] = value;
            t["_info"]["lastUpdated"] = json!(now);
        }
    }
    ok(t.clone())
}

fn add_note(st: &Shared, ticket: i64, body: &Bytes) -> Response {
    let Ok(Value::Object(b)) = serde_json::from_slice::<Value>(body) else {
        return bad_request("the body must be a note object");
    };
    let flag = |k: &str| b.get(k).and_then(Value::as_bool).unwrap_or(false);
    let text = b.get("text").and_then(Value::as_str).unwrap_or("");
    let mut errors = Vec::new();
    if text.trim().is_empty() {
        errors.push(("text".to_owned(), "The text field is required.".to_owned()));
    }
    if !flag("detailDescriptionFlag") && !flag("internalAnalysisFlag") && !flag("resolutionFlag") {
        errors.push((
            "detailDescriptionFlag".to_owned(),
            "One of detailDescriptionFlag, internalAnalysisFlag or resolutionFlag must be true.".to_owned(),
        ));
    }
    if !errors.is_empty() {
        return invalid_fields(&errors);
    }
    let now = st.now_str();
    let mut d: std::sync::MutexGuard<'_, Data> = lock(&st.data);
    let id = d.next_note_id;
    d.next_note_id += 1;
    let n = json!({
        "id": id, "ticketId": ticket, "text": text,
        "detailDescriptionFlag": flag("detailDescriptionFlag"),
        "internalAnalysisFlag": flag("internalAnalysisFlag"),
        "resolutionFlag": flag("resolutionFlag"),
        "internalFlag": flag("internalFlag"),
        "externalFlag": flag("externalFlag"),
        "dateCreated": now, "createdBy": st.cfg.member,
    });
    d.notes.insert(id, n.clone());
    if let Some(t) = d.tickets.get_mut(&ticket) {
        t["_info"]["lastUpdated"] = json!(now);
    }
    (StatusCode::CREATED, axum::Json(n)).into_response()
}
