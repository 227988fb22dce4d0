//! The API route: responses, dispatch, sessions and server-side result sets.

use super::*;

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

pub(super) fn text(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// An API-level failure, answered as HTTP 500 with a `PxgError` body.
#[derive(Debug)]
pub(super) struct Pxg {
    code: i64,
    message: String,
}

pub(super) fn pxg(code: i64, message: impl Into<String>) -> Pxg {
    Pxg { code, message: message.into() }
}

impl IntoResponse for Pxg {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"PxgError": {
                "code": self.code, "module": "KLSTD", "message": self.message, "file": "ksc-sim", "line": 0, "subcode": 0
            }})),
        )
            .into_response()
    }
}

pub(super) const E_NOT_FOUND: i64 = 1184;
pub(super) const E_INVALID_ARG: i64 = 1187;
pub(super) const E_NOT_IMPLEMENTED: i64 = 1160;

pub(super) type ApiResult = Result<Value, Pxg>;

pub(super) fn control_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

// ---------------------------------------------------------------------------------------------
// API dispatch
// ---------------------------------------------------------------------------------------------

/// `KSCBasic user="<b64>", pass="<b64>", domain="<b64, raw or empty>", internal="0|1"`; only
/// `user` and `pass` are required. `internal` other than `0`/`1` is refused.
pub(super) fn parse_kscbasic(value: &str) -> Option<(String, String)> {
    let rest = value.trim().strip_prefix("KSCBasic")?;
    let mut user = None;
    let mut pass = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
        match k.trim() {
            "user" => user = Some(String::from_utf8(B64.decode(v).ok()?).ok()?),
            "pass" => pass = Some(String::from_utf8(B64.decode(v).ok()?).ok()?),
            "internal" if v != "0" && v != "1" => return None,
            _ => {}
        }
    }
    Some((user?, pass?))
}

/// The session id a call carries: `X-KSC-Session`, else the `/login` cookie.
pub(super) fn session_of(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("x-ksc-session").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_owned());
    }
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|cookies| {
        cookies.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == SESSION_COOKIE).then(|| v.to_owned())
        })
    })
}

pub(super) async fn api(
    State(sim): State<Shared>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let args: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            _ => return pxg(E_INVALID_ARG, "request body is not a JSON object").into_response(),
        }
    };
    *lock(&sim.calls).entry(method.clone()).or_default() += 1;
    let now = sim.core.clock.now();
    if method == "Session.StartSession" {
        return match open_session(&sim, &headers, now) {
            Ok(id) => Json(json!({"PxgRetVal": id})).into_response(),
            Err((status, body)) => text(status, body),
        };
    }
    if method == "login" {
        return match open_session(&sim, &headers, now) {
            Ok(id) => {
                // `Secure` only over HTTPS: over plain HTTP a cookie store would never send it back.
                let secure = if sim.secure_cookie { "; Secure" } else { "" };
                let cookie = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly{secure}; SameSite=Strict");
                (StatusCode::OK, [(header::SET_COOKIE, cookie)], Json(json!({}))).into_response()
            }
            Err((status, body)) => text(status, body),
        };
    }
    let Some(session) = session_of(&headers) else {
        return text(StatusCode::FORBIDDEN, "Forbidden");
    };
    let mut data = lock(&sim.data);
    let idle = chrono::Duration::from_std(sim.config.session_idle).unwrap_or(chrono::Duration::MAX);
    let vserver = match data.sessions.get_mut(&session) {
        Some(s) if now - s.last_used <= idle => {
            s.last_used = now;
            s.vserver
        }
        Some(_) => {
            drop_session(&mut data, &session);
            return text(StatusCode::FORBIDDEN, "Forbidden");
        }
        None => return text(StatusCode::FORBIDDEN, "Forbidden"),
    };
    if !data.vservers.contains_key(&vserver) {
        drop_session(&mut data, &session);
        return text(StatusCode::FORBIDDEN, "Forbidden");
    }
    expire_result_sets(&mut data, now);
    let ctx = Ctx { session: &session, vserver, now };
    let result = match method.as_str() {
        "Session.Ping" => Ok(json!({})),
        "Session.CreateToken" => {
            let t = token();
            data.tokens.insert(t.clone(), now + chrono::Duration::seconds(TOKEN_LIFETIME_SECS));
            Ok(json!({"PxgRetVal": t}))
        }
        "Session.EndSession" => {
            drop_session(&mut data, &session);
            Ok(json!({}))
        }
        "VServers.GetVServers" => get_vservers(&data, &ctx),
        "VServers.GetVServerInfo" => get_vserver_info(&data, &args),
        "EventProcessingFactory.CreateEventProcessing2" | "EventProcessingFactory.CreateEventProcessing" => {
            create_event_processing(&mut data, &ctx, &args)
        }
        "EventProcessing.GetRecordCount" => with_set(&mut data.iterators, &ctx, &args, "strIteratorId", |set, _| {
            Ok(json!({"PxgRetVal": set.rows.len()}))
        }),
        "EventProcessing.GetRecordRange" => with_set(&mut data.iterators, &ctx, &args, "strIteratorId", |set, args| {
            let start = int_arg(args, "nStart")?;
            let end = int_arg(args, "nEnd")?;
            if start < 0 || end < start {
                return Err(pxg(E_INVALID_ARG, format!("invalid range {start}..{end}")));
            }
            if end - start >= MAX_RANGE {
                return Err(pxg(
                    E_INVALID_ARG,
                    format!("nEnd - nStart must be below {MAX_RANGE}, got {}", end - start),
                ));
            }
            let rows = slice(&set.rows, start, end - start);
            Ok(json!({"pParamsEvents": {"KLEVP_EVENT_RANGE_ARRAY": rows}}))
        }),
        "EventProcessing.ReleaseIterator" => release(&mut data.iterators, &ctx, &args, "strIteratorId"),
        "HostGroup.FindHosts" => find_hosts(&mut data, &ctx, &args),
        "ChunkAccessor.GetItemsCount" => {
            with_set(&mut data.accessors, &ctx, &args, "strAccessor", |set, _| Ok(json!({"PxgRetVal": set.rows.len()})))
        }
        "ChunkAccessor.GetItemsChunk" => with_set(&mut data.accessors, &ctx, &args, "strAccessor", |set, args| {
            let start = int_arg(args, "nStart")?;
            let count = int_arg(args, "nCount")?;
            if start < 0 || count < 0 {
                return Err(pxg(E_INVALID_ARG, format!("invalid chunk {start}+{count}")));
            }
            let rows = slice(&set.rows, start, count);
            let n = rows.len();
            Ok(json!({"pChunk": {"KLCSP_ITERATOR_ARRAY": rows}, "PxgRetVal": n}))
        }),
        "ChunkAccessor.Release" => release(&mut data.accessors, &ctx, &args, "strAccessor"),
        "HostGroup.GetGroupInfoEx" => group_info(&data, &ctx, &args),
        "ConEvents.Subscribe" => conevents::subscribe(&mut data, &ctx, &args, sim.config.con_events_period),
        "ConEvents.UnSubscribe" => conevents::unsubscribe(&mut data, &ctx, &args),
        "ConEvents.Retrieve" => conevents::retrieve(&mut data, &ctx, sim.config.con_events_period),
        other => Err(pxg(E_NOT_IMPLEMENTED, format!("method {other} is not supported by the simulator"))),
    };
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(super) struct Ctx<'a> {
    pub(super) session: &'a str,
    pub(super) vserver: i64,
    pub(super) now: DateTime<Utc>,
}

/// Authenticates `Session.StartSession` or `/login` (`KSCBasic`, or a one-time `KSCT`
/// token from `Session.CreateToken`), picks the virtual server from `X-KSC-VServer`, and
/// opens a session; an error is the 401 status and plain-text body.
pub(super) fn open_session(
    sim: &Sim,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<String, (StatusCode, &'static str)> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut data = lock(&sim.data);
    if let Some(t) = auth.trim().strip_prefix("KSCT ") {
        data.tokens.retain(|_, expires| *expires >= now);
        if data.tokens.remove(t.trim()).is_none() {
            return Err((StatusCode::UNAUTHORIZED, "Authentication failed"));
        }
    } else {
        match parse_kscbasic(auth) {
            Some((user, pass)) if user == sim.config.user && pass == sim.config.password => {}
            _ => return Err((StatusCode::UNAUTHORIZED, "Authentication failed")),
        }
    }
    let vs_name = match headers.get("x-ksc-vserver").map(|v| v.as_bytes()) {
        None => String::new(),
        Some(raw) => match B64.decode(raw.trim_ascii()).ok().and_then(|b| String::from_utf8(b).ok()) {
            Some(name) => name,
            None => return Err((StatusCode::UNAUTHORIZED, "Unknown virtual server")),
        },
    };
    let vserver = if vs_name.is_empty() {
        0
    } else {
        match data.vserver_ids.get(&vs_name) {
            Some(id) => *id,
            None => return Err((StatusCode::UNAUTHORIZED, "Unknown virtual server")),
        }
    };
    let id = token();
    data.sessions.insert(id.clone(), SessionRec { vserver, last_used: now });
    Ok(id)
}

pub(super) fn drop_session(data: &mut Data, session: &str) {
    data.sessions.remove(session);
    data.iterators.retain(|_, s| s.session != session);
    data.accessors.retain(|_, s| s.session != session);
    data.subscriptions.drop_session(session);
}

pub(super) fn expire_result_sets(data: &mut Data, now: DateTime<Utc>) {
    data.iterators.retain(|_, s| now - s.last_used <= s.lifetime);
    data.accessors.retain(|_, s| now - s.last_used <= s.lifetime);
}

pub(super) fn int_arg(args: &Map<String, Value>, name: &str) -> Result<i64, Pxg> {
    args.get(name)
        .and_then(|v| v.as_i64().or_else(|| v.get("value").and_then(Value::as_i64)))
        .ok_or_else(|| pxg(E_INVALID_ARG, format!("{name} is missing or not an integer")))
}

pub(super) fn str_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, Pxg> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| pxg(E_INVALID_ARG, format!("{name} is missing or not a string")))
}

pub(super) fn slice(rows: &[Map<String, Value>], start: i64, count: i64) -> Vec<Value> {
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let count = usize::try_from(count).unwrap_or(0);
    rows.iter().skip(start).take(count).map(|r| json!({"type": "params", "value": r})).collect()
}

pub(super) fn with_set(
    sets: &mut HashMap<String, ResultSet>,
    ctx: &Ctx<'_>,
    args: &Map<String, Value>,
    key: &str,
    f: impl FnOnce(&ResultSet, &Map<String, Value>) -> ApiResult,
) -> ApiResult {
    let id = str_arg(args, key)?;
    match sets.get_mut(id) {
        Some(set) if set.session == ctx.session => {
            set.last_used = ctx.now;
            f(set, args)
        }
        _ => Err(pxg(E_NOT_FOUND, format!("{key} {id} not found"))),
    }
}

pub(super) fn release(
    sets: &mut HashMap<String, ResultSet>,
    ctx: &Ctx<'_>,
    args: &Map<String, Value>,
    key: &str,
) -> ApiResult {
    let id = str_arg(args, key)?;
    match sets.get(id) {
        Some(set) if set.session == ctx.session => {
            sets.remove(id);
            Ok(json!({}))
        }
        _ => Err(pxg(E_NOT_FOUND, format!("{key} {id} not found"))),
    }
}
