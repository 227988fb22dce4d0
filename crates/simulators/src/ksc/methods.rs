//! The Open API methods over virtual servers, events, hosts and groups.

use super::*;

pub(super) fn get_vservers(data: &Data, ctx: &Ctx<'_>) -> ApiResult {
    if ctx.vserver != 0 {
        return Err(pxg(E_INVALID_ARG, "virtual servers are listed on the main server only"));
    }
    let list: Vec<Value> = data
        .vservers
        .values()
        .filter(|v| v.id != 0)
        .map(|v| json!({"type": "params", "value": v.to_params()}))
        .collect();
    Ok(json!({"PxgRetVal": list}))
}

pub(super) fn get_vserver_info(data: &Data, args: &Map<String, Value>) -> ApiResult {
    let id = int_arg(args, "lVServer")?;
    let vs = data
        .vservers
        .get(&id)
        .filter(|v| v.id != 0)
        .ok_or_else(|| pxg(E_NOT_FOUND, format!("virtual server {id} not found")))?;
    let mut info = vs.to_params();
    if let Some(Value::Array(fields)) = args.get("pFields2Return") {
        if let Value::Object(m) = &mut info {
            m.retain(|k, _| fields.iter().any(|f| f.as_str() == Some(k)));
        }
    }
    Ok(json!({"PxgRetVal": info}))
}

pub(super) fn untyped(v: &Value) -> &Value {
    match v {
        Value::Object(m) if m.len() == 2 && m.contains_key("type") => m.get("value").unwrap_or(v),
        _ => v,
    }
}

pub(super) fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    untyped(v).as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
}

pub(super) fn cmp_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a.map(untyped), b.map(untyped)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// `vecFieldsToOrder` items: `{"type":"params","value":{"Name","Asc"}}` or bare `{"Name","Asc"}`.
pub(super) fn order_spec(args: &Map<String, Value>) -> Result<Vec<(String, bool)>, Pxg> {
    let Some(list) = args.get("vecFieldsToOrder") else { return Ok(Vec::new()) };
    let Value::Array(items) = list else {
        return Err(pxg(E_INVALID_ARG, "vecFieldsToOrder is not an array"));
    };
    items
        .iter()
        .map(|item| {
            let p = untyped(item);
            let name = p.get("Name").and_then(Value::as_str);
            let asc = p.get("Asc").and_then(Value::as_bool).unwrap_or(true);
            name.map(|n| (n.to_owned(), asc)).ok_or_else(|| pxg(E_INVALID_ARG, "order item without Name"))
        })
        .collect()
}

pub(super) fn project(mut row: Map<String, Value>, args: &Map<String, Value>) -> Map<String, Value> {
    if let Some(Value::Array(fields)) = args.get("vecFieldsToReturn") {
        if !fields.is_empty() {
            row.retain(|k, _| fields.iter().any(|f| f.as_str() == Some(k)));
        }
    }
    row
}

pub(super) fn sort_rows(rows: &mut [Map<String, Value>], order: &[(String, bool)]) {
    rows.sort_by(|a, b| {
        for (field, asc) in order {
            let o = cmp_values(a.get(field), b.get(field));
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

pub(super) fn create_event_processing(data: &mut Data, ctx: &Ctx<'_>, args: &Map<String, Value>) -> ApiResult {
    let mut least = None;
    let mut greatest = None;
    let mut severity = None;
    match args.get("pFilter").map(untyped) {
        None | Some(Value::Null) => {}
        Some(Value::Object(filter)) => {
            for (k, v) in filter {
                match k.as_str() {
                    "KLEVP_EVENT_RISE_TIME_LEAST" => {
                        least =
                            Some(parse_time(v).ok_or_else(|| pxg(E_INVALID_ARG, format!("{k} is not a datetime")))?);
                    }
                    "KLEVP_EVENT_RISE_TIME_GREATEST" => {
                        greatest =
                            Some(parse_time(v).ok_or_else(|| pxg(E_INVALID_ARG, format!("{k} is not a datetime")))?);
                    }
                    "GNRL_EA_SEVERITY" => {
                        severity = Some(
                            untyped(v).as_i64().ok_or_else(|| pxg(E_INVALID_ARG, format!("{k} is not an integer")))?,
                        );
                    }
                    other => return Err(pxg(E_NOT_IMPLEMENTED, format!("event filter {other} is not supported"))),
                }
            }
        }
        Some(_) => return Err(pxg(E_INVALID_ARG, "pFilter is not a container")),
    }
    let lifetime = match args.get("lifetimeSec") {
        None => 300,
        Some(v) => untyped(v)
            .as_i64()
            .filter(|n| *n > 0)
            .ok_or_else(|| pxg(E_INVALID_ARG, "lifetimeSec is not a positive integer"))?,
    };
    let mut order = order_spec(args)?;
    if order.is_empty() {
        order.push(("event_db_id".to_owned(), true));
    }
    let mut rows: Vec<Map<String, Value>> = data
        .events
        .iter()
        .filter(|e| e.vserver == ctx.vserver)
        .filter(|e| least.is_none_or(|t| e.rise_time >= t))
        .filter(|e| greatest.is_none_or(|t| e.rise_time <= t))
        .filter(|e| severity.is_none_or(|s| e.severity == s))
        .map(EventRec::to_params)
        .collect();
    sort_rows(&mut rows, &order);
    let rows = rows.into_iter().map(|r| project(r, args)).collect();
    let id = token();
    data.iterators.insert(
        id.clone(),
        ResultSet {
            session: ctx.session.to_owned(),
            rows,
            lifetime: chrono::Duration::seconds(lifetime),
            last_used: ctx.now,
        },
    );
    Ok(json!({"strIteratorId": id}))
}

pub(super) fn find_hosts(data: &mut Data, ctx: &Ctx<'_>, args: &Map<String, Value>) -> ApiResult {
    let filter_text = match args.get("wstrFilter") {
        None | Some(Value::Null) => "",
        Some(v) => v.as_str().ok_or_else(|| pxg(E_INVALID_ARG, "wstrFilter is not a string"))?,
    };
    let filter = if filter_text.trim().is_empty() {
        None
    } else {
        Some(filter::parse(filter_text).map_err(|e| pxg(E_INVALID_ARG, format!("unsupported filter: {e}")))?)
    };
    let lifetime = match args.get("lMaxLifeTime") {
        None => 600,
        Some(v) => untyped(v)
            .as_i64()
            .filter(|n| (1..=7200).contains(n))
            .ok_or_else(|| pxg(E_INVALID_ARG, "lMaxLifeTime must be 1..7200"))?,
    };
    let params = args.get("pParams").map(untyped);
    let cur_vs_only =
        params.and_then(|p| p.get("KLGRP_FIND_FROM_CUR_VS_ONLY")).and_then(Value::as_bool).unwrap_or(false);
    let now = ctx.now;
    let mut rows = Vec::new();
    // Hosts are keyed by (virtual server, id): one server's hosts are one range, so a read of
    // one of 10,000 virtual servers does not walk the others' hosts.
    let hosts: Box<dyn Iterator<Item = &HostRec>> = if !cur_vs_only && ctx.vserver == 0 {
        Box::new(data.hosts.values())
    } else {
        let vs = ctx.vserver;
        Box::new(data.hosts.range((vs, String::new())..(vs + 1, String::new())).map(|(_, h)| h))
    };
    for h in hosts {
        let row = h.to_params();
        let matched = match &filter {
            Some(f) => f.eval(&row, now).map_err(|e| pxg(E_INVALID_ARG, format!("unsupported filter: {e}")))?,
            None => true,
        };
        if matched {
            rows.push(row);
        }
    }
    sort_rows(&mut rows, &order_spec(args)?);
    let rows: Vec<_> = rows.into_iter().map(|r| project(r, args)).collect();
    let n = rows.len();
    let id = token();
    data.accessors.insert(
        id.clone(),
        ResultSet {
            session: ctx.session.to_owned(),
            rows,
            lifetime: chrono::Duration::seconds(lifetime),
            last_used: now,
        },
    );
    Ok(json!({"strAccessor": id, "PxgRetVal": n}))
}

pub(super) fn group_info(data: &Data, ctx: &Ctx<'_>, args: &Map<String, Value>) -> ApiResult {
    let group = int_arg(args, "nGroupId")?;
    let vs = data
        .vservers
        .get(&ctx.vserver)
        .filter(|v| v.group() == group)
        .ok_or_else(|| pxg(E_NOT_FOUND, format!("group {group} not found")))?;
    let mut info = Map::new();
    info.insert("id".into(), json!(group));
    info.insert("name".into(), json!("Managed devices"));
    let stat = |mask: u64| json!({"type": "params", "value": {"KLSRV_HSTSTAT_MASK": mask, "KLSRV_HSTSTAT_INHERITED": true, "KLSRV_HSTSTAT_LOCKED": false}});
    info.insert("KLSRV_HSTSTAT_CRITICAL".into(), stat(vs.critical_mask));
    info.insert("KLSRV_HSTSTAT_WARNING".into(), stat(vs.warning_mask));
    if let Some(Value::Array(attrs)) = args.get("pArrAttributes") {
        if !attrs.is_empty() {
            info.retain(|k, _| attrs.iter().any(|a| a.as_str() == Some(k)));
        }
    }
    Ok(json!({"PxgRetVal": info}))
}
