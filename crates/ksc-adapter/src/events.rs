//! Events: the resumable cursor, the iterator walk and the record → [`Event`] conversion
//! (`ksc-api.md` §4 and §9; `docs/protocols/security-center.md`).
//!
//! The cursor is a **high-water mark on `event_db_id`**, never a time. `rise_time` is when the
//! event happened on the computer; a laptop that was offline delivers its events hours later
//! with their original `rise_time`, but the server gives every stored event the next, higher
//! `event_db_id` (arrival order). A time cursor skipped such events; an id mark does not.
//!
//! ```text
//! EventProcessingFactory.CreateEventProcessing2
//!     pFilter.KLEVP_EVENT_RISE_TIME_LEAST = window_start (older events can never be tickets)
//!     vecFieldsToOrder = event_db_id ascending                      ─> strIteratorId
//! EventProcessing.GetRecordCount                                    ─> n
//! locate the mark: probe GetRecordRange [n-1, n) (idle poll: the newest is not above the mark,
//!     done), then [0, 1), then a binary search for the first record above the mark
//! EventProcessing.GetRecordRange  pages from there (nEnd exclusive, at most 10,000 a page)
//!     until `limit` events are handed on or the records end
//! EventProcessing.ReleaseIterator  always, also after an error
//! ```
//!
//! So a poll reads the new events plus O(log n) single-record probes, however many older
//! events the window holds. Records at or below the mark are dropped in any case.
//!
//! The cursor text is `dbid:<event_db_id>` (no position yet: empty). **Migration**: a cursor
//! of the earlier form (JSON `{"v":1,"rise_time":..,"seen":[{"id","at"}..]}`) is still read:
//! that poll reads by `rise_time` from the old instant minus [`KscConfig::event_overlap`]
//! (as the old code did) and drops the ids in `seen`, so nothing it had not handed on is lost
//! and nothing is repeated; once that read is complete (`more == false`) the batch's cursor is
//! `dbid:<highest id handed on>` and every later poll uses the mark. While the limit stops such
//! a read early, the cursor stays in the old form (with `max_id`) so the read can go on.
//!
//! [`KscConfig::event_overlap`]: crate::KscConfig::event_overlap

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

/// Largest `nEnd - nStart` the adapter asks for; the server allows up to 65,535.
pub const MAX_PAGE: usize = 10_000;

/// Prefix of the cursor text.
pub const CURSOR_PREFIX: &str = "dbid:";

/// One event already handed out: its `event_db_id` and `rise_time` (old cursor form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenEvent {
    /// `event_db_id`.
    pub id: i64,
    /// `rise_time`.
    pub at: DateTime<Utc>,
}

/// The earlier cursor form, still read (and written while its migration read is incomplete).
///
/// `rise_time` is the latest rise time handed out; `seen` lists the events handed out whose
/// rise time lies within the overlap window before it. `max_id` (written only by the
/// migration) is the highest id handed on so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyCursor {
    /// Format version.
    #[serde(default = "one")]
    pub v: u32,
    /// Latest rise time handed out.
    pub rise_time: Option<DateTime<Utc>>,
    /// Events handed out within the overlap window.
    #[serde(default)]
    pub seen: Vec<SeenEvent>,
    /// Highest `event_db_id` handed on by the migration so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_id: Option<i64>,
}

fn one() -> u32 {
    1
}

impl LegacyCursor {
    fn advance(&mut self, id: i64, at: DateTime<Utc>, overlap: Duration) {
        if self.rise_time.is_none_or(|t| at > t) {
            self.rise_time = Some(at);
        }
        self.max_id = Some(self.max_id.map_or(id, |m| m.max(id)));
        self.seen.push(SeenEvent { id, at });
        if let Some(t) = self.rise_time {
            let floor = t - chrono::Duration::from_std(overlap).unwrap_or(chrono::Duration::MAX);
            self.seen.retain(|s| s.at >= floor);
        }
    }

    /// The highest id this cursor knows to be handed on.
    fn high_water(&self) -> Option<i64> {
        self.seen.iter().map(|s| s.id).chain(self.max_id).max()
    }
}

/// The adapter's position in a virtual server's event stream, inside the opaque [`Cursor`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EventCursor {
    /// No position yet (`""`): the first poll reads the whole window.
    #[default]
    Start,
    /// `dbid:<n>`: every event with `event_db_id <= n` was handed on.
    Mark(i64),
    /// The earlier `rise_time` form (see the module docs on migration).
    Legacy(LegacyCursor),
}

impl EventCursor {
    /// Reads the daemon's opaque cursor (`""` = no position yet).
    pub fn parse(cursor: Option<&Cursor>) -> Result<Self, KscError> {
        let Some(text) = cursor.map(|c| c.0.trim()).filter(|t| !t.is_empty()) else {
            return Ok(Self::Start);
        };
        if let Some(n) = text.strip_prefix(CURSOR_PREFIX) {
            return n
                .parse::<i64>()
                .map(Self::Mark)
                .map_err(|e| KscError::Config(format!("not a security center event cursor {text:?}: {e}")));
        }
        if text.starts_with('{') {
            return serde_json::from_str(text)
                .map(Self::Legacy)
                .map_err(|e| KscError::Config(format!("not a security center event cursor: {e}")));
        }
        Err(KscError::Config(format!("not a security center event cursor: {text:?}")))
    }

    /// Writes the opaque cursor.
    pub fn to_cursor(&self) -> Cursor {
        Cursor(match self {
            Self::Start => String::new(),
            Self::Mark(n) => format!("{CURSOR_PREFIX}{n}"),
            Self::Legacy(l) => serde_json::to_string(l).unwrap_or_default(),
        })
    }

    /// The high-water mark, when the cursor is one.
    pub fn mark(&self) -> Option<i64> {
        match self {
            Self::Mark(n) => Some(*n),
            _ => None,
        }
    }
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
            Severity::from_ksc_level(n).ok_or_else(|| {
                if n == 0 {
                    "GNRL_EA_SEVERITY 0 (invalid) is not 1..4".to_owned()
                } else {
                    format!("GNRL_EA_SEVERITY {n} is not 1..4")
                }
            })?
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
    pub(crate) window_start: Option<DateTime<Utc>>,
    pub(crate) lifetime: Duration,
    pub(crate) severities: &'a [Severity],
}

const CREATE: &str = "EventProcessingFactory.CreateEventProcessing2";
const COUNT: &str = "EventProcessing.GetRecordCount";
const RANGE: &str = "EventProcessing.GetRecordRange";

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
    let order = |name: &str| json!({"type": "params", "value": {"Name": name, "Asc": true}});
    let (since, orders) = match &start {
        EventCursor::Legacy(l) => {
            let overlap = chrono::Duration::from_std(opts.overlap).unwrap_or(chrono::Duration::zero());
            let since = l.rise_time.map(|t| t - overlap);
            let since = match (since, opts.window_start) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            (since, vec![order("rise_time"), order("event_db_id")])
        }
        EventCursor::Start => (opts.window_start.or(opts.initial_since), vec![order("event_db_id")]),
        EventCursor::Mark(_) => (opts.window_start, vec![order("event_db_id")]),
    };
    let mut filter = serde_json::Map::new();
    if let Some(t) = since {
        filter.insert("KLEVP_EVENT_RISE_TIME_LEAST".to_owned(), Value::DateTime(Some(t)).to_json());
    }
    let body = json!({
        "pFilter": filter,
        "vecFieldsToReturn": EVENT_FIELDS,
        "vecFieldsToOrder": orders,
        "lifetimeSec": opts.lifetime.as_secs().max(1),
    });
    let reply = client.call(vserver, CREATE, &body).await?;
    let iterator = reply
        .out(CREATE, "strIteratorId")?
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed(CREATE, "strIteratorId is not a string"))?
        .to_owned();
    let it = Iter { client, vserver, id: &iterator };
    let result = match start {
        EventCursor::Legacy(l) => walk_legacy(&it, tenant, l, limit, opts).await,
        EventCursor::Start => walk_marked(&it, tenant, None, limit, opts).await,
        EventCursor::Mark(m) => walk_marked(&it, tenant, Some(m), limit, opts).await,
    };
    let release = client.call(vserver, "EventProcessing.ReleaseIterator", &json!({"strIteratorId": iterator})).await;
    if let Err(e) = release {
        tracing::warn!(vserver, error = %e, "releasing the event iterator failed");
    }
    result
}

/// An open event iterator.
struct Iter<'a> {
    client: &'a KscClient,
    vserver: &'a str,
    id: &'a str,
}

impl Iter<'_> {
    async fn count(&self) -> Result<usize, KscError> {
        let reply = self.client.call(self.vserver, COUNT, &json!({"strIteratorId": self.id})).await?;
        let n = reply.retval(COUNT)?.as_i64().ok_or_else(|| malformed(COUNT, "PxgRetVal is not an integer"))?;
        usize::try_from(n).map_err(|_| malformed(COUNT, format!("record count {n}")))
    }

    /// Records `[start, end)`; `end - start` stays at most [`MAX_PAGE`].
    async fn range(&self, start: usize, end: usize) -> Result<Vec<Value>, KscError> {
        let body = json!({"strIteratorId": self.id, "nStart": start, "nEnd": end});
        let mut reply = self.client.call(self.vserver, RANGE, &body).await?;
        // Taken out of the reply, not copied: a page of 500 records is read once.
        let mut container = match reply.out.remove("pParamsEvents") {
            Some(Value::Params(p)) => p,
            Some(_) => return Err(malformed(RANGE, "pParamsEvents is not a container")),
            None => return Err(malformed(RANGE, "pParamsEvents missing")),
        };
        match container.remove("KLEVP_EVENT_RANGE_ARRAY") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(malformed(RANGE, "KLEVP_EVENT_RANGE_ARRAY is not an array")),
        }
    }

    /// `event_db_id` of the record at `pos`; `None` when it cannot be read.
    async fn id_at(&self, pos: usize) -> Result<Option<i64>, KscError> {
        let records = self.range(pos, pos + 1).await?;
        Ok(records.first().and_then(Value::as_params).and_then(|r| r.get("event_db_id")).and_then(Value::as_i64))
    }

    /// The position of the first record above `mark` in an iterator ordered by ascending
    /// `event_db_id` of `count` records. An unreadable probe ends the search at the lowest
    /// position still possible (the walk then drops what is at or below the mark).
    async fn first_above(&self, mark: i64, count: usize) -> Result<usize, KscError> {
        if count == 0 {
            return Ok(0);
        }
        match self.id_at(count - 1).await? {
            Some(id) if id <= mark => return Ok(count),
            Some(_) => {}
            None => return Ok(0),
        }
        match self.id_at(0).await? {
            Some(id) if id > mark => return Ok(0),
            Some(_) => {}
            None => return Ok(0),
        }
        // Invariant: id(lo) <= mark < id(hi).
        let (mut lo, mut hi) = (0, count - 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match self.id_at(mid).await? {
                Some(id) if id <= mark => lo = mid,
                Some(_) => hi = mid,
                None => return Ok(lo + 1),
            }
        }
        Ok(hi)
    }
}

/// What one walk collects.
#[derive(Default)]
struct Collected {
    events: Vec<Event>,
    bad: Vec<MalformedRecord>,
}

impl Collected {
    /// Converts one record (already known to be past the cursor) and keeps it, filtered by
    /// severity, or reports it as malformed.
    fn take(
        &mut self,
        tenant: &TenantId,
        vserver: &str,
        rec: &Params,
        id: Option<i64>,
        position: usize,
        opts: &PollOptions<'_>,
    ) {
        match record_to_event(tenant, rec) {
            Ok(event) => {
                let EventClass::Severity(sev) = event.class else {
                    return;
                };
                if opts.severities.contains(&sev) {
                    self.events.push(event);
                }
            }
            Err(reason) => {
                let id = id.map_or_else(|| format!("position {position}"), |id| id.to_string());
                tracing::warn!(vserver, record = %id, %reason, "skipping malformed security center event");
                self.bad.push(MalformedRecord { id, reason });
            }
        }
    }

    fn not_a_container(&mut self, item: &Value, position: usize) {
        self.bad.push(MalformedRecord {
            id: format!("position {position}"),
            reason: format!("record is a {}, not a container", item.type_name()),
        });
    }
}

/// The walk behind a `dbid:` cursor (or none): from the first record above the mark, in
/// ascending `event_db_id`, until `limit` events are handed on.
async fn walk_marked(
    it: &Iter<'_>,
    tenant: &TenantId,
    mark: Option<i64>,
    limit: usize,
    opts: &PollOptions<'_>,
) -> Result<EventBatch, KscError> {
    let page = opts.page_size.clamp(1, MAX_PAGE);
    // Without a mark every record is new: pages are read from the start until a short one, and
    // the count is not needed (one call less per tenant on a first read). A server that answers
    // a short page before the end only makes this read stop early: the next read goes on from
    // the mark it left.
    let count = match mark {
        Some(_) => Some(it.count().await?),
        None => None,
    };
    let mut pos = match (mark, count) {
        (Some(m), Some(count)) => it.first_above(m, count).await?,
        _ => 0,
    };
    let mut high = mark;
    let mut out = Collected::default();
    let mut more = false;
    'pages: loop {
        let end = match count {
            Some(count) if pos >= count => break,
            Some(count) => (pos + page).min(count),
            None => pos + page,
        };
        let records = it.range(pos, end).await?;
        if records.is_empty() {
            break;
        }
        let short = count.is_none() && records.len() < end - pos;
        for (i, item) in records.iter().enumerate() {
            if out.events.len() >= limit {
                more = true;
                break 'pages;
            }
            let position = pos + i;
            let Some(rec) = item.as_params() else {
                out.not_a_container(item, position);
                continue;
            };
            let id = rec.get("event_db_id").and_then(Value::as_i64);
            if let (Some(id), Some(m)) = (id, mark) {
                if id <= m {
                    continue;
                }
            }
            if let Some(id) = id {
                high = Some(high.map_or(id, |h| h.max(id)));
            }
            out.take(tenant, it.vserver, rec, id, position, opts);
        }
        pos += records.len();
        if short {
            break;
        }
    }
    let next = high.map_or(EventCursor::Start, EventCursor::Mark);
    Ok(EventBatch { events: out.events, malformed: out.bad, next: next.to_cursor(), more })
}

/// The migration walk behind an old `rise_time` cursor (see the module docs).
async fn walk_legacy(
    it: &Iter<'_>,
    tenant: &TenantId,
    mut cursor: LegacyCursor,
    limit: usize,
    opts: &PollOptions<'_>,
) -> Result<EventBatch, KscError> {
    let page = opts.page_size.clamp(1, MAX_PAGE);
    let mut seen: HashSet<i64> = cursor.seen.iter().map(|s| s.id).collect();
    let floor =
        cursor.rise_time.map(|t| t - chrono::Duration::from_std(opts.overlap).unwrap_or(chrono::Duration::zero()));
    let mut out = Collected::default();
    let mut more = false;
    let mut start = 0usize;
    'pages: loop {
        let records = it.range(start, start + page).await?;
        for (i, item) in records.iter().enumerate() {
            if out.events.len() >= limit {
                more = true;
                break 'pages;
            }
            let position = start + i;
            let Some(rec) = item.as_params() else {
                out.not_a_container(item, position);
                continue;
            };
            let id = rec.get("event_db_id").and_then(Value::as_i64);
            let at = rec.get("rise_time").and_then(Value::as_datetime);
            if id.is_some_and(|id| seen.contains(&id)) {
                continue;
            }
            if let (Some(at), Some(floor)) = (at, floor) {
                if at < floor {
                    continue;
                }
            }
            if let Some(id) = id {
                seen.insert(id);
                if let Some(at) = at.or(cursor.rise_time) {
                    cursor.advance(id, at, opts.overlap);
                } else {
                    cursor.max_id = Some(cursor.max_id.map_or(id, |m| m.max(id)));
                }
            }
            out.take(tenant, it.vserver, rec, id, position, opts);
        }
        if records.len() < page {
            break;
        }
        start += records.len();
    }
    let next = match cursor.high_water() {
        Some(mark) if !more => EventCursor::Mark(mark),
        _ => EventCursor::Legacy(cursor),
    };
    Ok(EventBatch { events: out.events, malformed: out.bad, next: next.to_cursor(), more })
}
