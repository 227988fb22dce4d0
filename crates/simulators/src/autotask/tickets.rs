//! Ticket create/update validation (§7.8, §7.10) and ticket notes (§7.11).

use std::collections::HashSet;

use axum::response::Response;
use serde_json::{Map, Value, json};

use super::api::errors;
use super::query::{get_ci, parse_datetime};
use super::{Data, Shared};
use crate::common::{fmt_time, lock};

/// Who performs a write: `creator` is the API user or the impersonated resource.
#[derive(Debug, Clone, Copy)]
pub(super) struct Actor {
    pub(super) creator: i64,
    pub(super) impersonator: Option<i64>,
}

const STATUS_COMPLETE: i64 = 5;

/// Picklists validated in this order (step 4), before any other picklist field.
const PICKLIST_ORDER: [&str; 8] =
    ["status", "priority", "queueID", "source", "issueType", "subIssueType", "ticketType", "ticketCategory"];

fn reference_error(field: &str, entity: &str) -> String {
    format!("Reference value on field: {field} of type: {entity} does not exist or is invalid.")
}

fn required(field: &str) -> String {
    format!("{field} is required.; on record number [0].")
}

fn absent(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    }
}

fn value_key(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_i64().map(|i| i.to_string()),
        Value::String(s) => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn meta<'a>(fields: &'a [Value], name: &str) -> Option<&'a Value> {
    fields.iter().find(|f| f["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

/// The active picklist entry of `field` with this value.
fn picklist_entry<'a>(fields: &'a [Value], field: &str, v: &Value) -> Option<&'a Value> {
    let key = value_key(v)?;
    meta(fields, field)?["picklistValues"]
        .as_array()?
        .iter()
        .find(|p| p["value"].as_str() == Some(key.as_str()) && p["isActive"].as_bool() != Some(false))
}

fn default_picklist_value(fields: &[Value], field: &str) -> Option<Value> {
    let p = meta(fields, field)?["picklistValues"]
        .as_array()?
        .iter()
        .find(|p| p["isDefaultValue"].as_bool() == Some(true) && p["isActive"].as_bool() != Some(false))?;
    p["value"].as_str()?.parse::<i64>().ok().map(Value::from)
}

/// Canonical fields plus the optional UDF array of an input body.
type Normalized = (Map<String, Value>, Option<Vec<Value>>);

/// Maps input keys to canonical field names, drops unknown and read-only fields, coerces
/// numeric strings for integer fields and normalises datetimes. Returns fields + UDF array.
fn normalize(fields: &[Value], body: &Map<String, Value>) -> Result<Normalized, String> {
    let mut out = Map::new();
    let mut udfs = None;
    for (k, v) in body {
        if k.eq_ignore_ascii_case("userDefinedFields") {
            udfs = Some(v.as_array().cloned().unwrap_or_default());
            continue;
        }
        if k.eq_ignore_ascii_case("id") {
            continue;
        }
        let Some(m) = meta(fields, k) else { continue };
        if m["isReadOnly"].as_bool() == Some(true) {
            continue;
        }
        let name = m["name"].as_str().unwrap_or(k).to_owned();
        let v = match (m["dataType"].as_str(), v) {
            (Some("integer" | "long"), Value::String(s)) => match s.trim().parse::<i64>() {
                Ok(i) => Value::from(i),
                Err(_) => v.clone(),
            },
            (Some("datetime"), Value::String(s)) => match parse_datetime(s) {
                Some(t) => Value::String(fmt_time(t)),
                None => return Err(format!("{name}: '{s}' is not a valid date/time value.")),
            },
            _ => v.clone(),
        };
        out.insert(name, v);
    }
    Ok((out, udfs))
}

fn udf_name(u: &Value) -> Option<&str> {
    u.as_object().and_then(|o| get_ci(o, "name")).and_then(Value::as_str)
}

/// Validates a ticket. `supplied` limits field checks to the given fields (PATCH); `create`
/// enables the create-only rules.
fn validate(
    st: &Shared,
    d: &Data,
    t: &Map<String, Value>,
    udfs: Option<&[Value]>,
    supplied: Option<&HashSet<String>>,
    create: bool,
) -> Result<(), String> {
    let chk = |f: &str| supplied.is_none_or(|s| s.contains(f));
    let fields = &d.ticket_fields;
    // 2. company
    if chk("companyID") {
        let Some(c) = t.get("companyID").filter(|v| !v.is_null()) else {
            return Err(required("companyID"));
        };
        let ok = c.as_i64().and_then(|id| d.companies.get(&id)).is_some_and(|c| c["isActive"].as_bool() != Some(false));
        if !ok {
            return Err(reference_error("companyID", "Company"));
        }
    }
    // 3. required fields
    for f in ["title", "status", "priority"] {
        if chk(f) && absent(t.get(f)) {
            return Err(required(f));
        }
    }
    // 4. picklists
    let others = fields.iter().filter_map(|f| {
        (f["isPickList"].as_bool() == Some(true))
            .then(|| f["name"].as_str())
            .flatten()
            .filter(|n| !PICKLIST_ORDER.contains(n))
    });
    for f in PICKLIST_ORDER.into_iter().chain(others) {
        if !chk(f) {
            continue;
        }
        if let Some(v) = t.get(f).filter(|v| !v.is_null())
            && picklist_entry(fields, f, v).is_none()
        {
            return Err(format!("Value does not reference an existing entity for {f} . "));
        }
    }
    // 5. sub-issue type belongs to issue type
    if (chk("subIssueType") || chk("issueType"))
        && let Some(sub) = t.get("subIssueType").filter(|v| !v.is_null())
    {
        let parent = picklist_entry(fields, "subIssueType", sub).and_then(|p| p["parentValue"].as_str()).unwrap_or("");
        let issue = t.get("issueType").and_then(value_key).unwrap_or_default();
        if issue.is_empty() || parent != issue {
            return Err("subIssueType does not belong to issueType.".into());
        }
    }
    // 6. resource + role together
    let res = !absent(t.get("assignedResourceID"));
    let role = !absent(t.get("assignedResourceRoleID"));
    if (chk("assignedResourceID") || chk("assignedResourceRoleID")) && res != role {
        return Err(
            "When assigning a Resource, you must assign both a assignedResourceID and assignedResourceRoleID.".into()
        );
    }
    // 7. queue or resource
    if (create || chk("queueID") || chk("assignedResourceID") || chk("assignedResourceRoleID"))
        && absent(t.get("queueID"))
        && !(res && role)
    {
        return Err(
            "Data violation: assignedResourceID, assignedResourceRoleID, and queueID cannot all be empty.".into()
        );
    }
    // 8. due date
    if create && absent(t.get("dueDateTime")) {
        return Err(required("dueDateTime"));
    }
    // 9. lengths
    let strings = fields.iter().filter_map(|f| {
        (f["dataType"].as_str() == Some("string")).then(|| Some((f["name"].as_str()?, f["length"].as_u64()?))).flatten()
    });
    let first = [("title", 255), ("description", 8000), ("externalID", 50)];
    for (f, max) in first.into_iter().chain(strings) {
        if !chk(f) {
            continue;
        }
        if let Some(Value::String(s)) = t.get(f)
            && max > 0
            && s.chars().count() as u64 > max
        {
            return Err(format!("{f} exceeds the maximum length of {max}."));
        }
    }
    // 10. work type and device references
    if chk("billingCodeID")
        && let Some(b) = t.get("billingCodeID").filter(|v| !v.is_null())
    {
        let ok = b
            .as_i64()
            .and_then(|id| d.billing_codes.get(&id))
            .is_some_and(|b| b["isActive"].as_bool() == Some(true) && b["useType"].as_i64() == Some(1));
        if !ok {
            return Err(reference_error("billingCodeID", "BillingCode"));
        }
    }
    if (chk("configurationItemID") || chk("companyID"))
        && let Some(ci) = t.get("configurationItemID").filter(|v| !v.is_null())
    {
        let company = t.get("companyID").and_then(Value::as_i64);
        let ok = ci.as_i64().and_then(|id| d.cis.get(&id)).is_some_and(|c| c["companyID"].as_i64() == company);
        if !ok {
            return Err(reference_error("configurationItemID", "ConfigurationItem"));
        }
    }
    // UDF names must exist
    for u in udfs.unwrap_or(&[]) {
        let name = udf_name(u).unwrap_or("");
        if !st.cfg.ticket_udfs.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(format!("User-defined field {name} does not exist."));
        }
    }
    Ok(())
}

fn merge_udfs(st: &Shared, existing: Option<&Value>, given: Option<&[Value]>) -> Value {
    let mut out: Vec<Value> = st
        .cfg
        .ticket_udfs
        .iter()
        .map(|n| {
            let old = existing
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|u| udf_name(u) == Some(n.as_str())))
                .map_or(Value::Null, |u| u["value"].clone());
            json!({"name": n, "value": old})
        })
        .collect();
    for u in given.unwrap_or(&[]) {
        let name = udf_name(u).unwrap_or("");
        let value = u.as_object().and_then(|o| get_ci(o, "value")).cloned().unwrap_or(Value::Null);
        if let Some(slot) = out.iter_mut().find(|o| o["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name))) {
            slot["value"] = value;
        }
    }
    Value::Array(out)
}

/// `POST /Tickets`.
pub(super) fn create(st: &Shared, body: &Value, actor: Actor) -> Response {
    let Some(obj) = body.as_object() else {
        return errors("Invalid JSON.");
    };
    if let Some(id) = get_ci(obj, "id")
        && !id.is_null()
        && id.as_i64() != Some(0)
    {
        return errors("id must be empty or 0 when creating a Ticket.");
    }
    let now = st.now();
    let mut d = lock(&st.data);
    let (mut t, udfs) = match normalize(&d.ticket_fields, obj) {
        Ok(x) => x,
        Err(e) => return errors(e),
    };
    // defaults: category, type, then the category's field defaults
    for f in ["ticketCategory", "ticketType"] {
        if t.get(f).is_none_or(Value::is_null)
            && let Some(v) = default_picklist_value(&d.ticket_fields, f)
        {
            t.insert(f.into(), v);
        }
    }
    let category = t.get("ticketCategory").and_then(Value::as_i64);
    if let Some(cat) = st.cfg.ticket_categories.iter().find(|c| Some(c.id) == category) {
        for (k, v) in &cat.defaults {
            if t.get(k).is_none_or(Value::is_null) {
                t.insert(k.clone(), v.clone());
            }
        }
        if let Some(secs) = cat.due_in_secs
            && t.get("dueDateTime").is_none_or(Value::is_null)
        {
            t.insert("dueDateTime".into(), Value::String(fmt_time(now + chrono::Duration::seconds(secs))));
        }
    }
    if let Err(e) = validate(st, &d, &t, udfs.as_deref(), None, true) {
        return errors(e);
    }
    // build the stored ticket: every metadata field, then the input, then system fields
    let mut full = Map::new();
    for f in &d.ticket_fields {
        if let Some(n) = f["name"].as_str() {
            full.insert(n.to_owned(), Value::Null);
        }
    }
    full.extend(t);
    let id = d.next_ticket_id;
    d.next_ticket_id += 1;
    let day = now.format("%Y%m%d").to_string();
    let seq = d.daily_seq.entry(day.clone()).or_insert(0);
    *seq += 1;
    let stamp = Value::String(fmt_time(now));
    full.insert("id".into(), json!(id));
    full.insert("ticketNumber".into(), json!(format!("T{day}.{:04}", *seq)));
    full.insert("createDate".into(), stamp.clone());
    full.insert("lastActivityDate".into(), stamp.clone());
    full.insert("lastTrackedModificationDateTime".into(), stamp);
    full.insert("creatorResourceID".into(), json!(actor.creator));
    full.insert("creatorType".into(), json!(1));
    full.insert("impersonatorCreatorResourceID".into(), json!(actor.impersonator));
    full.insert("completedDate".into(), Value::Null);
    full.insert("completedByResourceID".into(), Value::Null);
    if full.get("status").and_then(Value::as_i64) == Some(STATUS_COMPLETE) {
        apply_completion(&mut full, None, now, actor);
    }
    full.insert("userDefinedFields".into(), merge_udfs(st, None, udfs.as_deref()));
    d.tickets.insert(id, Value::Object(full));
    super::api::item_id(id)
}

fn apply_completion(
    t: &mut Map<String, Value>,
    old_status: Option<i64>,
    now: chrono::DateTime<chrono::Utc>,
    actor: Actor,
) {
    let new_status = t.get("status").and_then(Value::as_i64);
    let stamp = Value::String(fmt_time(now));
    if new_status == Some(STATUS_COMPLETE) && old_status != Some(STATUS_COMPLETE) {
        t.insert("completedDate".into(), stamp.clone());
        t.insert("completedByResourceID".into(), json!(actor.creator));
        t.insert("resolvedDateTime".into(), stamp);
    } else if new_status != Some(STATUS_COMPLETE) && old_status == Some(STATUS_COMPLETE) {
        t.insert("completedDate".into(), Value::Null);
        t.insert("completedByResourceID".into(), Value::Null);
    }
}

/// `PATCH /Tickets` (`replace` = false) or `PUT /Tickets` (`replace` = true).
pub(super) fn update(st: &Shared, body: &Value, actor: Actor, replace: bool) -> Response {
    let Some(obj) = body.as_object() else {
        return errors("Invalid JSON.");
    };
    let Some(id_v) = get_ci(obj, "id").filter(|v| !v.is_null()) else {
        return errors("id is required.");
    };
    let Some(id) = id_v.as_i64().or_else(|| id_v.as_str().and_then(|s| s.parse().ok())) else {
        return errors("id is required.");
    };
    let now = st.now();
    let mut d = lock(&st.data);
    let Some(existing) = d.tickets.get(&id).and_then(Value::as_object).cloned() else {
        return errors(format!("Ticket with id {id} not found."));
    };
    let (input, udfs) = match normalize(&d.ticket_fields, obj) {
        Ok(x) => x,
        Err(e) => return errors(e),
    };
    let mut t = existing.clone();
    let supplied: HashSet<String> = if replace {
        // omitted writable fields become null
        for f in &d.ticket_fields {
            if f["isReadOnly"].as_bool() != Some(true)
                && let Some(n) = f["name"].as_str()
                && n != "ticketNumber"
            {
                t.insert(n.to_owned(), Value::Null);
            }
        }
        d.ticket_fields.iter().filter_map(|f| f["name"].as_str().map(str::to_owned)).collect()
    } else {
        input.keys().cloned().collect()
    };
    t.extend(input);
    if let Err(e) = validate(st, &d, &t, udfs.as_deref(), Some(&supplied), false) {
        return errors(e);
    }
    let old_status = existing.get("status").and_then(Value::as_i64);
    apply_completion(&mut t, old_status, now, actor);
    let stamp = Value::String(fmt_time(now));
    t.insert("lastActivityDate".into(), stamp.clone());
    t.insert("lastTrackedModificationDateTime".into(), stamp);
    let udf_value = merge_udfs(st, existing.get("userDefinedFields"), udfs.as_deref());
    t.insert("userDefinedFields".into(), udf_value);
    d.tickets.insert(id, Value::Object(t));
    super::api::item_id(id)
}

// ----- notes ------------------------------------------------------------------------------------

/// Ticket note fields: (name, dataType, length, required, read-only, picklist values).
pub(super) type NoteField = (&'static str, &'static str, u64, bool, bool, &'static [(&'static str, &'static str)]);

pub(super) const NOTE_FIELDS: [NoteField; 11] = [
    ("id", "long", 0, true, true, &[]),
    ("ticketID", "integer", 0, true, false, &[]),
    ("title", "string", 250, false, false, &[]),
    ("description", "string", 32000, true, false, &[]),
    ("noteType", "integer", 0, true, false, &[("1", "Summary"), ("2", "Detail"), ("3", "Internal Note")]),
    ("publish", "integer", 0, true, false, &[("1", "All Autotask Users"), ("2", "Internal Only")]),
    ("createDateTime", "datetime", 0, false, true, &[]),
    ("creatorResourceID", "integer", 0, false, true, &[]),
    ("impersonatorCreatorResourceID", "integer", 0, false, true, &[]),
    ("impersonatorUpdaterResourceID", "integer", 0, false, true, &[]),
    ("lastActivityDate", "datetime", 0, false, true, &[]),
];

/// `TicketNotes/entityInformation/fields`.
pub(super) fn note_fields() -> Value {
    Value::Array(
        NOTE_FIELDS
            .iter()
            .map(|(name, ty, len, req, ro, picks)| {
                let is_pick = !picks.is_empty();
                let values: Option<Vec<Value>> = is_pick.then(|| {
                    picks
                        .iter()
                        .enumerate()
                        .map(|(i, (v, l))| {
                            json!({"value": v, "label": l, "isDefaultValue": false, "sortOrder": i,
                                   "parentValue": "", "isActive": true, "isSystem": true})
                        })
                        .collect()
                });
                json!({
                    "name": name, "dataType": ty, "length": len, "isRequired": req, "isReadOnly": ro,
                    "isQueryable": true, "isReference": *name == "ticketID",
                    "referenceEntityType": if *name == "ticketID" { "Ticket" } else { "" },
                    "isPickList": is_pick, "picklistValues": values,
                    "picklistParentValueField": "", "isSupportedWebhookField": false
                })
            })
            .collect(),
    )
}

/// `POST /Tickets/{id}/Notes`.
pub(super) fn create_note(st: &Shared, ticket_id: i64, body: &Value, actor: Actor) -> Response {
    let Some(obj) = body.as_object() else {
        return errors("Invalid JSON.");
    };
    let now = st.now();
    let mut d = lock(&st.data);
    let Some(ticket) = d.tickets.get(&ticket_id) else {
        return errors(reference_error("ticketID", "Ticket"));
    };
    if let Some(given) = get_ci(obj, "ticketID").filter(|v| !v.is_null())
        && value_key(given) != Some(ticket_id.to_string())
    {
        return errors("ticketID does not match the parent ticket.");
    }
    let field = |n: &str| get_ci(obj, n).cloned().unwrap_or(Value::Null);
    let (title, description) = (field("title"), field("description"));
    for f in ["description", "noteType", "publish"] {
        if absent(Some(&field(f))) {
            return errors(required(f));
        }
    }
    for (name, _, _, _, _, picks) in NOTE_FIELDS.iter().filter(|f| !f.5.is_empty()) {
        let key = value_key(&field(name));
        if !picks.iter().any(|(v, _)| Some(*v) == key.as_deref()) {
            return errors(format!("Value does not reference an existing entity for {name} . "));
        }
    }
    let category = ticket["ticketCategory"].as_i64();
    let titles_required = st.cfg.ticket_categories.iter().any(|c| Some(c.id) == category && c.note_titles_required);
    if titles_required && absent(Some(&title)) {
        return errors(required("title"));
    }
    for (name, max) in [("title", 250), ("description", 32000)] {
        if let Value::String(s) = field(name)
            && s.chars().count() > max
        {
            return errors(format!("{name} exceeds the maximum length of {max}."));
        }
    }
    let num = |v: Value| value_key(&v).and_then(|s| s.parse::<i64>().ok());
    let id = d.next_note_id;
    d.next_note_id += 1;
    let stamp = fmt_time(now);
    let note = json!({
        "id": id,
        "ticketID": ticket_id,
        "title": title,
        "description": description,
        "noteType": num(field("noteType")),
        "publish": num(field("publish")),
        "createDateTime": stamp,
        "creatorResourceID": actor.creator,
        "impersonatorCreatorResourceID": actor.impersonator,
        "impersonatorUpdaterResourceID": null,
        "lastActivityDate": stamp,
        "userDefinedFields": [],
    });
    d.notes.insert(id, note);
    if let Some(t) = d.tickets.get_mut(&ticket_id) {
        t["lastActivityDate"] = json!(stamp);
    }
    super::api::item_id(id)
}
