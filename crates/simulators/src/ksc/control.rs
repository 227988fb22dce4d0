//! The control routes (`/_sim/...`, no credentials): seeding virtual servers, events and hosts.

use super::*;

// ---------------------------------------------------------------------------------------------
// Control routes
// ---------------------------------------------------------------------------------------------

pub(super) fn mask_of(codes: &[String]) -> Result<u64, String> {
    codes.iter().try_fold(0u64, |m, c| {
        description_bit(c).map(|b| m | 1 << b).ok_or_else(|| format!("unknown description {c:?}"))
    })
}

#[derive(Deserialize)]
pub(super) struct VServerBody {
    id: i64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    critical: Option<Vec<String>>,
    #[serde(default)]
    warning: Option<Vec<String>>,
}

pub(super) async fn put_vserver(State(sim): State<Shared>, body: Bytes) -> Response {
    let b: VServerBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, format!("bad body: {e}")),
    };
    if b.id < 0 {
        return control_error(StatusCode::BAD_REQUEST, "id must be >= 0");
    }
    let critical = match b.critical.as_deref().map(mask_of).transpose() {
        Ok(m) => m,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    let warning = match b.warning.as_deref().map(mask_of).transpose() {
        Ok(m) => m,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    let now = sim.core.clock.now();
    let mut data = lock(&sim.data);
    if b.id != 0 {
        let Some(name) =
            b.name.clone().filter(|n| !n.is_empty()).or_else(|| data.vservers.get(&b.id).map(|v| v.name.clone()))
        else {
            return control_error(StatusCode::BAD_REQUEST, "a virtual server needs a non-empty name");
        };
        if data.vserver_ids.get(&name).is_some_and(|id| *id != b.id) {
            return control_error(StatusCode::CONFLICT, format!("name {name:?} is taken"));
        }
        let (c, w) = default_masks();
        let vs = data.vservers.entry(b.id).or_insert(VServerRec {
            id: b.id,
            name: name.clone(),
            critical_mask: c,
            warning_mask: w,
            created: now,
        });
        let old = std::mem::replace(&mut vs.name, name.clone());
        data.vserver_ids.remove(&old);
        data.vserver_ids.insert(name, b.id);
    }
    let vs = data.vservers.get_mut(&b.id).expect("present");
    if let Some(c) = critical {
        vs.critical_mask = c;
    }
    if let Some(w) = warning {
        vs.warning_mask = w;
    }
    let out = json!({"id": vs.id, "name": vs.name, "critical_mask": vs.critical_mask, "warning_mask": vs.warning_mask});
    Json(out).into_response()
}

#[derive(Deserialize)]
pub(super) struct EventBody {
    vserver: i64,
    severity: Value,
    event_type: String,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    occurred_at: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    params: Vec<String>,
    #[serde(default)]
    task: Option<String>,
    #[serde(default)]
    event_db_id: Option<i64>,
}

/// `critical|functional_failure|warning|info|invalid`, or the number 0..4.
pub(super) fn severity_of(v: &Value) -> Result<i64, String> {
    match v {
        Value::String(s) => match s.as_str() {
            "critical" => Ok(4),
            "functional_failure" => Ok(3),
            "warning" => Ok(2),
            "info" => Ok(1),
            "invalid" => Ok(0),
            other => Err(format!("unknown severity {other:?}")),
        },
        Value::Number(n) => {
            n.as_i64().filter(|n| (0..=4).contains(n)).ok_or_else(|| format!("severity {n} is not 0..4"))
        }
        other => Err(format!("severity {other} is not a name or 0..4")),
    }
}

pub(super) fn check_len(field: &str, value: &str, max: usize) -> Result<(), String> {
    let n = value.chars().count();
    if n > max { Err(format!("{field} is {n} characters long, at most {max} are allowed")) } else { Ok(()) }
}

pub(super) fn display_name_of(event_type: &str) -> String {
    match event_type {
        "GNRL_EV_VIRUS_FOUND" => "Malicious object detected",
        "GNRL_EV_OBJECT_NOTCURED" => "Object not disinfected",
        "GNRL_EV_LICENSE_EXPIRED" => "License expired",
        "KLPRCI_TaskState" => "Task state changed",
        "GNRL_EV_APP_STARTED" => "Application started",
        other => other,
    }
    .to_owned()
}

pub(super) async fn add_event(State(sim): State<Shared>, body: Bytes) -> Response {
    let b: EventBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, format!("bad body: {e}")),
    };
    let severity = match severity_of(&b.severity) {
        Ok(n) => n,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    let display_name = b.display_name.unwrap_or_else(|| display_name_of(&b.event_type));
    let mut checks = vec![
        check_len("display_name (event_type_display_name)", &display_name, MAX_DISPLAY_NAME),
        check_len("text (GNRL_EA_DESCRIPTION)", b.text.as_deref().unwrap_or(""), MAX_DESCRIPTION),
    ];
    for (i, p) in b.params.iter().enumerate() {
        checks.push(check_len(&format!("params[{i}] (GNRL_EA_PARAM_{})", i + 1), p, MAX_PARAM));
    }
    if let Some(Err(e)) = checks.into_iter().find(Result::is_err) {
        return control_error(StatusCode::BAD_REQUEST, e);
    }
    let now = sim.core.clock.now();
    let rise_time = match &b.occurred_at {
        None => now,
        Some(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => return control_error(StatusCode::BAD_REQUEST, format!("occurred_at: {e}")),
        },
    };
    let mut data = lock(&sim.data);
    if !data.vservers.contains_key(&b.vserver) {
        return control_error(StatusCode::NOT_FOUND, format!("virtual server {} not found", b.vserver));
    }
    // Arrival order: a seeded id must be above every id so far; later events follow it.
    let id = match b.event_db_id {
        None => data.next_event_id,
        Some(id) if id >= data.next_event_id => id,
        Some(id) => {
            return control_error(
                StatusCode::BAD_REQUEST,
                format!("event_db_id {id} is not above the last one ({})", data.next_event_id - 1),
            );
        }
    };
    data.next_event_id = id.saturating_add(1);
    let hostname = b.host.filter(|h| !h.is_empty());
    let hostdn = hostname
        .as_ref()
        .map(|h| data.hosts.get(&(b.vserver, h.clone())).map_or_else(|| h.clone(), |rec| rec.name.clone()));
    let event = EventRec {
        id,
        vserver: b.vserver,
        severity,
        display_name,
        event_type: b.event_type,
        hostname,
        hostdn,
        rise_time,
        registered: now,
        text: b.text,
        params: b.params,
        task: b.task,
    };
    data.subscriptions.publish(&event);
    data.events.push(event);
    Json(json!({"id": id})).into_response()
}

#[derive(Deserialize)]
pub(super) struct HostBody {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    descriptions: Vec<String>,
    /// `KLHST_WKS_STATUS` (default [`wks_status::DEFAULT`]).
    #[serde(default)]
    wks_status: Option<i64>,
    /// Sets [`wks_status::ANTIVIRUS_NOT_NEEDED`].
    #[serde(default)]
    antivirus_not_needed: bool,
    /// `KLHST_WKS_RTP_STATE`, 0..=9 or a name of [`RTP_STATES`] (default 4, running).
    #[serde(default)]
    rtp_state: Option<Value>,
}

pub(super) fn rtp_state_of(v: Option<&Value>) -> Result<i64, String> {
    match v {
        None => Ok(4),
        Some(Value::Number(n)) => {
            n.as_i64().filter(|n| (0..=9).contains(n)).ok_or_else(|| format!("rtp_state {n} is not 0..9"))
        }
        Some(Value::String(s)) => RTP_STATES
            .iter()
            .position(|name| name == s)
            .map(|i| i as i64)
            .ok_or_else(|| format!("unknown rtp_state {s:?}")),
        Some(other) => Err(format!("rtp_state {other} is not 0..9 or a name")),
    }
}

pub(super) async fn put_host(
    State(sim): State<Shared>,
    Path((vserver, host)): Path<(i64, String)>,
    body: Bytes,
) -> Response {
    let b: HostBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, format!("bad body: {e}")),
    };
    let mut mask = match mask_of(&b.descriptions) {
        Ok(m) => m,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    let rtp_state = match rtp_state_of(b.rtp_state.as_ref()) {
        Ok(n) => n,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    let mut wks = b.wks_status.unwrap_or(wks_status::DEFAULT);
    if b.antivirus_not_needed {
        wks |= wks_status::ANTIVIRUS_NOT_NEEDED;
    }
    if wks & wks_status::ANTIVIRUS_NOT_NEEDED != 0 {
        // Such a computer never reports "antivirus not installed".
        mask &= !(1 << BIT_AV_NOT_INSTALLED);
    }
    let unknown_bits =
        (0..64).filter(|b| mask & 1 << b != 0 && !DESCRIPTIONS.iter().any(|(_, bit, _)| bit == b)).count();
    let now = sim.core.clock.now();
    let mut data = lock(&sim.data);
    let Some(vs) = data.vservers.get(&vserver) else {
        return control_error(StatusCode::NOT_FOUND, format!("virtual server {vserver} not found"));
    };
    let status = match b.status.as_deref() {
        Some("ok") => 0,
        Some("critical") => 1,
        Some("warning") => 2,
        Some(other) => return control_error(StatusCode::BAD_REQUEST, format!("unknown status {other:?}")),
        None if mask & vs.critical_mask != 0 => 1,
        None if mask & vs.warning_mask != 0 => 2,
        None => 0,
    };
    let group = vs.group();
    let key = (vserver, host.clone());
    let name = b.name.or_else(|| data.hosts.get(&key).map(|h| h.name.clone())).unwrap_or_else(|| host.clone());
    let rec = HostRec { hostname: host, name, status, mask, group, last_visible: now, wks_status: wks, rtp_state };
    let out = json!({"hostname": rec.hostname, "name": rec.name, "status_id": rec.status, "mask": rec.mask,
        "wks_status": rec.wks_status, "rtp_state": rec.rtp_state, "unknown_bits": unknown_bits});
    data.hosts.insert(key, rec);
    Json(out).into_response()
}

pub(super) async fn delete_host(State(sim): State<Shared>, Path((vserver, host)): Path<(i64, String)>) -> Response {
    match lock(&sim.data).hosts.remove(&(vserver, host)) {
        Some(_) => Json(json!({"deleted": true})).into_response(),
        None => control_error(StatusCode::NOT_FOUND, "no such host"),
    }
}

/// `GET /_sim/calls`: the API calls answered since the start or the last reset, by method
/// (`Session.StartSession` and `login` included).
pub(super) async fn get_calls(State(sim): State<Shared>) -> Response {
    Json(json!(*lock(&sim.calls))).into_response()
}

/// `POST /_sim/subscriptions/drop`: every `ConEvents` subscription is gone (as after a server
/// restart); the sessions stay. Answers `{"dropped": n}`.
pub(super) async fn drop_subscriptions(State(sim): State<Shared>) -> Response {
    let n = lock(&sim.data).subscriptions.drop_all();
    Json(json!({"dropped": n})).into_response()
}
