//! Wire records to core model: the only place that knows both.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use ticketing_core::model::{
    ActiveDescription, Device, DeviceId, DeviceStatus, Event, EventClass, IssueState, Office365EventType, Product,
    SourceEventId, StatusDescription, TenantId,
};
use ticketing_core::ports::MalformedRecord;

use crate::api::{self, Resource};
use crate::client::{DeviceRecord, EventPage, IssueList};
use crate::error::KbhError;

/// A record's id for reports: its `id` (or `type`) field, else its position.
pub(crate) fn record_id(v: &serde_json::Value, index: usize) -> String {
    for key in ["id", "type"] {
        match v.get(key) {
            Some(serde_json::Value::String(s)) => return s.clone(),
            Some(serde_json::Value::Number(n)) => return n.to_string(),
            _ => {}
        }
    }
    format!("#{index}")
}

fn malformed(v: &serde_json::Value, index: usize, reason: impl Into<String>) -> MalformedRecord {
    MalformedRecord { id: record_id(v, index), reason: reason.into() }
}

/// Converts one page of events; bad records are reported, events with `seq <= after_seq` (a
/// server that ignored `after_seq`) are dropped so that nothing comes out twice, and events that
/// occurred before `occurred_after` (a server that ignored that parameter) are left out. The
/// page's `last_seq` covers every record with a `seq` above `after_seq`, so the cursor moves
/// past skipped and left-out records alike.
pub(crate) fn event_page(
    tenant: &TenantId,
    resource: Resource,
    after_seq: u64,
    occurred_after: Option<DateTime<Utc>>,
    page: api::PageDto,
) -> EventPage {
    let mut out = EventPage {
        events: Vec::new(),
        malformed: Vec::new(),
        last_seq: None,
        before_window: 0,
        more: page.next_cursor.is_some(),
    };
    for (i, v) in page.items.into_iter().enumerate() {
        let seq = v.get("seq").and_then(serde_json::Value::as_u64);
        if let Some(seq) = seq {
            if seq <= after_seq {
                tracing::warn!(tenant = %tenant, seq, after_seq, "business hub returned an event at or before after_seq; dropped");
                continue;
            }
            out.last_seq = Some(out.last_seq.map_or(seq, |s| s.max(seq)));
        }
        let converted = match resource {
            Resource::O365Events => o365_event(tenant, &v, i),
            _ => endpoint_event(tenant, &v, i),
        };
        match converted {
            Ok(e) if occurred_after.is_some_and(|since| e.occurred_at < since) => {
                tracing::debug!(tenant = %tenant, id = %e.source_id.as_str(), "business hub event occurred before the window; left out");
                out.before_window += 1;
            }
            Ok(e) => out.events.push(e),
            Err(m) => {
                tracing::warn!(tenant = %tenant, id = %m.id, reason = %m.reason, "malformed business hub event skipped");
                out.malformed.push(m);
            }
        }
    }
    out
}

fn endpoint_event(tenant: &TenantId, v: &serde_json::Value, i: usize) -> Result<Event, MalformedRecord> {
    let dto: api::EventDto = serde_json::from_value(v.clone()).map_err(|e| malformed(v, i, e.to_string()))?;
    let severity = api::parse_severity(&dto.severity)
        .ok_or_else(|| malformed(v, i, format!("unknown severity {:?}", dto.severity)))?;
    let device = match (dto.device_id, dto.device_name) {
        (Some(id), name) if !id.is_empty() => {
            let name = name.filter(|n| !n.is_empty()).unwrap_or_else(|| id.clone());
            Some(Device { id: DeviceId::new(id), name })
        }
        _ => None,
    };
    let display_name = if dto.display_name.is_empty() { dto.event_type.clone() } else { dto.display_name };
    Ok(Event {
        source_id: SourceEventId::new(dto.id),
        tenant: tenant.clone(),
        product: Product::EndpointCloud,
        class: EventClass::Severity(severity),
        occurred_at: dto.occurred_at,
        device,
        mailbox: None,
        event_type: dto.event_type,
        display_name,
        text: dto.description,
    })
}

fn o365_event(tenant: &TenantId, v: &serde_json::Value, i: usize) -> Result<Event, MalformedRecord> {
    let dto: api::O365EventDto = serde_json::from_value(v.clone()).map_err(|e| malformed(v, i, e.to_string()))?;
    let kind = Office365EventType::from_code(&dto.event_type)
        .ok_or_else(|| malformed(v, i, format!("unknown office 365 event_type {:?}", dto.event_type)))?;
    let display_name = if dto.display_name.is_empty() { kind.display_name().to_owned() } else { dto.display_name };
    Ok(Event {
        source_id: SourceEventId::new(dto.id),
        tenant: tenant.clone(),
        product: Product::Office365,
        class: EventClass::Office365(kind),
        occurred_at: dto.occurred_at,
        device: None,
        mailbox: dto.mailbox.filter(|m| !m.is_empty()),
        event_type: dto.event_type,
        display_name,
        text: dto.description,
    })
}

/// One device: a code the catalogue does not know is kept by its text and counted.
pub(crate) fn device(v: serde_json::Value, i: usize) -> Result<DeviceRecord, MalformedRecord> {
    let dto: api::DeviceDto = serde_json::from_value(v.clone()).map_err(|e| malformed(&v, i, e.to_string()))?;
    let status = api::parse_computer_status(&dto.status)
        .ok_or_else(|| malformed(&v, i, format!("unknown status {:?}", dto.status)))?;
    let mut active: Vec<ActiveDescription> = Vec::with_capacity(dto.status_descriptions.len());
    let mut unknown = 0;
    for d in dto.status_descriptions {
        let level = api::parse_level(&d.status)
            .ok_or_else(|| malformed(&v, i, format!("description {:?} has status {:?}", d.code, d.status)))?;
        let description = match StatusDescription::known_from_code(&d.code) {
            Some(known) => known,
            None => {
                unknown += 1;
                let text = if d.text.is_empty() { d.code } else { d.text };
                StatusDescription::Unknown(text)
            }
        };
        let entry = ActiveDescription { description, level };
        if !active.contains(&entry) {
            active.push(entry);
        }
    }
    Ok(DeviceRecord {
        status: DeviceStatus { device: Device { id: DeviceId::new(dto.id), name: dto.name }, status, active },
        os: dto.os,
        last_seen: dto.last_seen,
        unknown_descriptions: unknown,
    })
}

/// The issue list: resolvable types only, one state per type (active wins, then the latest).
pub(crate) fn issues(items: Vec<serde_json::Value>) -> Result<IssueList, KbhError> {
    let mut by_type: BTreeMap<Office365EventType, IssueState> = BTreeMap::new();
    let mut ignored = Vec::new();
    for (i, v) in items.into_iter().enumerate() {
        let dto: api::IssueDto = serde_json::from_value(v.clone()).map_err(|e| KbhError::Malformed {
            what: "issue",
            id: record_id(&v, i),
            reason: e.to_string(),
        })?;
        let Some(kind) = Office365EventType::from_code(&dto.kind).filter(|k| k.is_resolvable()) else {
            tracing::debug!(issue_type = %dto.kind, "office 365 issue type is not resolvable; ignored");
            ignored.push(dto.kind);
            continue;
        };
        let state = IssueState { event_type: kind, active: dto.active, since: dto.since, resolved_at: dto.resolved_at };
        let replace = match by_type.get(&kind) {
            None => true,
            Some(old) => {
                (state.active, state.since.max(state.resolved_at)) > (old.active, old.since.max(old.resolved_at))
            }
        };
        if replace {
            by_type.insert(kind, state);
        }
    }
    Ok(IssueList { issues: by_type.into_values().collect(), ignored })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_description_kept_by_text() {
        let d = device(
            json!({"id":"d-1","name":"PC","status":"Critical","status_descriptions":[
                {"code":"databases_out_of_date","text":"Databases are out of date","status":"Warning"},
                {"code":"quantum_flux","text":"Quantum flux detected","status":"Critical"}]}),
            0,
        )
        .unwrap();
        assert_eq!(d.unknown_descriptions, 1);
        assert_eq!(d.status.active[1].description, StatusDescription::Unknown("Quantum flux detected".into()));
        assert_eq!(d.status.active[0].description, StatusDescription::from_code("databases_out_of_date"));
    }

    #[test]
    fn active_issue_wins_over_resolved_one() {
        let list = issues(vec![
            json!({"type":"license_issue","active":true,"since":"2026-11-20T07:55:00Z","resolved_at":null,"message":""}),
            json!({"type":"license_issue","active":false,"since":"2026-11-19T07:55:00Z","resolved_at":"2026-11-19T09:00:00Z"}),
            json!({"type":"malware_detected","active":true}),
        ])
        .unwrap();
        assert_eq!(list.issues.len(), 1);
        assert!(list.issues[0].active);
        assert_eq!(list.ignored, vec!["malware_detected".to_owned()]);
    }

    #[test]
    fn record_ids() {
        assert_eq!(record_id(&json!({"id":"e-1"}), 3), "e-1");
        assert_eq!(record_id(&json!({"id":7}), 3), "7");
        assert_eq!(record_id(&json!({"type":"license_issue"}), 3), "license_issue");
        assert_eq!(record_id(&json!(5), 3), "#3");
    }
}
