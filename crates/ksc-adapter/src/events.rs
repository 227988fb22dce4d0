//! Events: the resumable cursor, the iterator walk and the record → [`Event`] conversion
//! (`ksc-api.md` §4 and §9).
//!
//! ```text
//! EventProcessingFactory.CreateEventProcessing2  pFilter.KLEVP_EVENT_RISE_TIME_LEAST = cursor - overlap
//!   └─> strIteratorId
//! EventProcessing.GetRecordRange  nStart..nEnd (exclusive), page after page
//! EventProcessing.ReleaseIterator  always, also after an error
//! ```

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use ticketing_core::model::{Device, DeviceId, Event, EventClass, Product, Severity, SourceEventId, TenantId};
use ticketing_core::ports::{Cursor, EventBatch, MalformedRecord};

use crate::client::{KscClient, malformed};
use crate::error::KscError;
use crate::value::{Params, Value};

/// The event attributes the adapter asks for (`vecFieldsToReturn`).
pub const EVENT_FIELDS: [&str; 10] = [
    "event_db_id",
    "rise_time",
    "GNRL_EA_SEVERITY",
    "event_type",
    "event_type_display_name",
    "GNRL_EA_DESCRIPTION",
    "hostname",
    "hostdn",
    "product_name",
    "task_display_name",
];

/// One event already handed out: its `event_db_id` and `rise_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenEvent {
    /// `event_db_id`.
    pub id: i64,
    /// `rise_time`.
    pub at: DateTime<Utc>,
}

/// The adapter's position in a virtual server's event stream; serialized as JSON inside the
/// opaque [`Cursor`].
///
/// `rise_time` is the latest rise time handed out; `seen` lists the events handed out whose
/// rise time lies within the overlap window before it (with no overlap: exactly the ids seen
/// at that instant). The next poll starts at `rise_time - overlap` and drops the ids in
/// `seen`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCursor {
    /// Format version.
    #[serde(default = "one")]
    pub v: u32,
    /// Latest rise time handed out.
    pub rise_time: Option<DateTime<Utc>>,
    /// Events handed out within the overlap window.
    #[serde(default)]
    pub seen: Vec<SeenEvent>,
}

fn one() -> u32 {
    1
}

impl EventCursor {
    /// Reads the daemon's opaque cursor (`""` = no position yet).
    pub fn parse(cursor: Option<&Cursor>) -> Result<Self, KscError> {
        match cursor {
            None => Ok(Self { v: 1, ..Self::default() }),
            Some(c) if c.0.trim().is_empty() => Ok(Self { v: 1, ..Self::default() }),
            Some(c) => serde_json::from_str(&c.0)
                .map_err(|e| KscError::Config(format!("not a security center event cursor: {e}"))),
        }
    }

    /// Writes the opaque cursor.
    pub fn to_cursor(&self) -> Cursor {
        Cursor(serde_json::to_string(self).unwrap_or_default())
    }

    fn advance(&mut self, id: i64, at: DateTime<Utc>, overlap: Duration) {
        if self.rise_time.is_none_or(|t| at > t) {
            self.rise_time = Some(at);
        }
        self.seen.push(SeenEvent { id, at });
        if let Some(t) = self.rise_time {
            let floor = t - chrono::Duration::from_std(overlap).unwrap_or(chrono::Duration::MAX);
            self.seen.retain(|s| s.at >= floor);
        }
    }
}

/// Reads `event_db_id` and `rise_time` as far as they can be read.
fn record_key(rec: &Params) -> (Option<i64>, Option<DateTime<Utc>>) {
    (rec.get("event_db_id").and_then(Value::as_i64), rec.get("rise_time").and_then(Value::as_datetime))
}

fn opt_string(rec: &Params, field: &str) -> Result<String, String> {
    match rec.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("{field} is a {}, not a string", other.type_name())),
    }
}

/// Converts one record of `KLEVP_EVENT_RANGE_ARRAY` into an [`Event`].
pub fn record_to_event(tenant: &TenantId, rec: &Params) -> Result<Event, String> {
    let id = match rec.get("event_db_id") {
        Some(v) => v.as_i64().ok_or_else(|| format!("event_db_id is a {}", v.type_name()))?,
        None => return Err("event_db_id missing".to_owned()),
    };
    let occurred_at = match rec.get("rise_time") {
        Some(v) => v.as_datetime().ok_or("rise_time is not a datetime")?,
        None => return Err("rise_time missing".to_owned()),
    };
    let severity = match rec.get("GNRL_EA_SEVERITY") {
        Some(v) => {
            let n = v.as_i64().ok_or_else(|| format!("GNRL_EA_SEVERITY is a {}", v.type_name()))?;
            Severity::from_ksc_level(n).ok_or_else(|| format!("GNRL_EA_SEVERITY {n} is not 1..4"))?
        }
        None => return Err("GNRL_EA_SEVERITY missing".to_owned()),
    };
    let host = opt_string(rec, "hostname")?;
    let host_dn = opt_string(rec, "hostdn")?;
    let device = (!host.is_empty())
        .then(|| Device { name: if host_dn.is_empty() { host.clone() } else { host_dn }, id: DeviceId::new(host) });
    Ok(Event {
        source_id: SourceEventId::new(id.to_string()),
        tenant: tenant.clone(),
        product: Product::SecurityCenter,
        class: EventClass::Severity(severity),
        occurred_at,
        device,
        mailbox: None,
        event_type: opt_string(rec, "event_type")?,
        display_name: opt_string(rec, "event_type_display_name")?,
        text: opt_string(rec, "GNRL_EA_DESCRIPTION")?,
    })
}

/// What [`poll`] needs from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct PollOptions<'a> {
    pub(crate) page_size: usize,
    pub(crate) overlap: Duration,
    pub(crate) initial_since: Option<DateTime<Utc>>,
    pub(crate) lifetime: Duration,
    pub(crate) severities: &'a [Severity],
}

/// Reads the events of one virtual server after `cursor`, at most `limit`.
pub(crate) async fn poll(
    client: &KscClient,
    vserver: &str,
    tenant: &TenantId,
    cursor: Option<&Cursor>,
    limit: usize,
    opts: &PollOptions<'_>,
) -> Result<EventBatch, KscError> {
    let start = EventCursor::parse(cursor)?;
    let overlap = chrono::Duration::from_std(opts.overlap).unwrap_or(chrono::Duration::zero());
    let since = start.rise_time.map(|t| t - overlap).or(opts.initial_since);
    let mut filter = serde_json::Map::new();
    if let Some(t) = since {
        filter.insert("KLEVP_EVENT_RISE_TIME_LEAST".to_owned(), Value::DateTime(Some(t)).to_json());
    }
    let order = |name: &str| json!({"type": "params", "value": {"Name": name, "Asc": true}});
    let body = json!({
        "pFilter": filter,
        "vecFieldsToReturn": EVENT_FIELDS,
        "vecFieldsToOrder": [order("rise_time"), order("event_db_id")],
        "lifetimeSec": opts.lifetime.as_secs().max(1),
    });
    const CREATE: &str = "EventProcessingFactory.CreateEventProcessing2";
    let reply = client.call(vserver, CREATE, &body).await?;
    let iterator = reply
        .out(CREATE, "strIteratorId")?
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed(CREATE, "strIteratorId is not a string"))?
        .to_owned();
    let result = walk(client, vserver, tenant, &iterator, start, limit, opts).await;
    let release = client.call(vserver, "EventProcessing.ReleaseIterator", &json!({"strIteratorId": iterator})).await;
    if let Err(e) = release {
        tracing::warn!(vserver, error = %e, "releasing the event iterator failed");
    }
    result
}

async fn walk(
    client: &KscClient,
    vserver: &str,
    tenant: &TenantId,
    iterator: &str,
    mut cursor: EventCursor,
    limit: usize,
    opts: &PollOptions<'_>,
) -> Result<EventBatch, KscError> {
    const RANGE: &str = "EventProcessing.GetRecordRange";
    let page = opts.page_size.max(1);
    let mut seen: HashSet<i64> = cursor.seen.iter().map(|s| s.id).collect();
    let floor =
        cursor.rise_time.map(|t| t - chrono::Duration::from_std(opts.overlap).unwrap_or(chrono::Duration::zero()));
    let mut events = Vec::new();
    let mut bad = Vec::new();
    let mut more = false;
    let mut start = 0usize;
    'pages: loop {
        let body = json!({"strIteratorId": iterator, "nStart": start, "nEnd": start + page});
        let reply = client.call(vserver, RANGE, &body).await?;
        let container = reply
            .out(RANGE, "pParamsEvents")?
            .as_params()
            .ok_or_else(|| malformed(RANGE, "pParamsEvents is not a container"))?;
        let records = match container.get("KLEVP_EVENT_RANGE_ARRAY") {
            None | Some(Value::Null) => &[][..],
            Some(v) => v.as_array().ok_or_else(|| malformed(RANGE, "KLEVP_EVENT_RANGE_ARRAY is not an array"))?,
        };
        for (i, item) in records.iter().enumerate() {
            if events.len() >= limit {
                more = true;
                break 'pages;
            }
            let position = start + i;
            let Some(rec) = item.as_params() else {
                bad.push(MalformedRecord {
                    id: format!("position {position}"),
                    reason: format!("record is a {}, not a container", item.type_name()),
                });
                continue;
            };
            let (id, at) = record_key(rec);
            if id.is_some_and(|id| seen.contains(&id)) {
                continue;
            }
            if let (Some(at), Some(floor)) = (at, floor) {
                if at < floor {
                    continue;
                }
            }
            let converted = record_to_event(tenant, rec);
            if let Some(id) = id {
                seen.insert(id);
                if let Some(at) = at.or(cursor.rise_time) {
                    cursor.advance(id, at, opts.overlap);
                }
            }
            match converted {
                Ok(event) => {
                    let EventClass::Severity(sev) = event.class else {
                        continue;
                    };
                    if opts.severities.contains(&sev) {
                        events.push(event);
                    }
                }
                Err(reason) => {
                    let id = id.map_or_else(|| format!("position {position}"), |id| id.to_string());
                    tracing::warn!(vserver, record = %id, %reason, "skipping malformed security center event");
                    bad.push(MalformedRecord { id, reason });
                }
            }
        }
        if records.len() < page {
            break;
        }
        start += records.len();
    }
    Ok(EventBatch { events, malformed: bad, next: cursor.to_cursor(), more })
}
