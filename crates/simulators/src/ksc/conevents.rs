//! `ConEvents`: server-side event subscriptions (issue #29).
//!
//! Verified against the KSC Open API reference (`ConEvents` class; "Event polling usage"):
//! - `ConEvents.Subscribe {"wstrEvent", "pFilter"}` answers `{"PxgRetVal": <subscription
//!   id>, "nPeriod": <polling period, ms>}`; too many subscriptions of one session is
//!   `STDE_TOOBIG`.
//! - `ConEvents.Retrieve {}` answers `{"PxgRetVal": <bool>, "pEvents": [..], "nPeriod": ..}`;
//!   each item is a container of `KLSRV_CON_EVENT_TYPE` (string), `KLSRV_CON_EVENT_PARAMS`
//!   (params), `KLSRV_CON_EVENT_BIRTH_TIME` (datetime), `KLSRV_CON_EVENT_LIFE_TIME` (int, s).
//!   No subscription: `STDE_NOTFOUND`; polled faster than the period: `STDE_UNAVAIL`.
//! - `ConEvents.UnSubscribe {"nSubsId"}`; unknown id: `STDE_NOTFOUND`.
//! - Subscriptions belong to the session ("connection owner") that made them: `Retrieve`
//!   reads that session's subscriptions only, and ending (or losing) the session drops them.
//!
//! Modelled (the reference is silent): which `wstrEvent` names exist (here: an event type such
//! as `GNRL_EV_VIRUS_FOUND`, or `*` for every stored event of the session's virtual server),
//! `pFilter` (here: `GNRL_EA_SEVERITY` only, anything else is refused), `KLSRV_CON_EVENT_PARAMS`
//! (here: the stored event's record, `event_db_id` included), `PxgRetVal` meaning "more events
//! are queued", the error codes' numbers, the queue bound ([`QUEUE_LIMIT`], oldest dropped) and
//! the batch size ([`RETRIEVE_BATCH`]). The period is [`Config::con_events_period`].

use std::collections::VecDeque;

use super::*;

/// `STDE_NOTFOUND` (modelled number).
pub(super) const E_STDE_NOTFOUND: i64 = E_NOT_FOUND;
/// `STDE_UNAVAIL` (modelled number).
pub(super) const E_STDE_UNAVAIL: i64 = 1188;
/// `STDE_TOOBIG` (modelled number).
pub(super) const E_STDE_TOOBIG: i64 = 1189;

/// Subscriptions one session may hold.
pub const MAX_SUBSCRIPTIONS: usize = 16;
/// Events one subscription queues before dropping the oldest.
pub const QUEUE_LIMIT: usize = 10_000;
/// Events one `Retrieve` hands out at most.
pub const RETRIEVE_BATCH: usize = 100;
/// `KLSRV_CON_EVENT_LIFE_TIME` of a queued event, seconds.
const EVENT_LIFE_SECS: i64 = 3600;

/// One subscription: its session, what it matches and its queue.
#[derive(Debug)]
pub(super) struct Subscription {
    pub(super) session: String,
    vserver: i64,
    event: String,
    severity: Option<i64>,
    queue: VecDeque<Value>,
}

/// Every subscription, and the time of each session's last `Subscribe`/`Retrieve` (the start
/// of its polling period).
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    pub(super) by_id: BTreeMap<i64, Subscription>,
    next_id: i64,
    polled: HashMap<String, DateTime<Utc>>,
}

impl Subscriptions {
    /// Queues a stored event for every subscription that matches it.
    pub(super) fn publish(&mut self, event: &EventRec) {
        for sub in self.by_id.values_mut() {
            if sub.vserver != event.vserver
                || (sub.event != "*" && sub.event != event.event_type)
                || sub.severity.is_some_and(|s| s != event.severity)
            {
                continue;
            }
            if sub.queue.len() >= QUEUE_LIMIT {
                sub.queue.pop_front();
            }
            sub.queue.push_back(json!({"type": "params", "value": {
                "KLSRV_CON_EVENT_TYPE": event.event_type,
                "KLSRV_CON_EVENT_PARAMS": {"type": "params", "value": event.to_params()},
                "KLSRV_CON_EVENT_BIRTH_TIME": datetime(event.registered),
                "KLSRV_CON_EVENT_LIFE_TIME": EVENT_LIFE_SECS,
            }}));
        }
    }

    /// Drops a session's subscriptions (the session ended or expired).
    pub(super) fn drop_session(&mut self, session: &str) {
        self.by_id.retain(|_, s| s.session != session);
        self.polled.remove(session);
    }

    /// Drops every subscription (`POST /_sim/subscriptions/drop`: a server restart); answers
    /// how many there were.
    pub(super) fn drop_all(&mut self) -> usize {
        let n = self.by_id.len();
        self.by_id.clear();
        self.polled.clear();
        n
    }
}

/// The members of `pFilter` (none when it is absent or null).
fn filter_of(args: &Map<String, Value>) -> Result<&Map<String, Value>, Pxg> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match args.get("pFilter").map(untyped) {
        None | Some(Value::Null) => Ok(EMPTY.get_or_init(Map::new)),
        Some(Value::Object(filter)) => Ok(filter),
        Some(_) => Err(pxg(E_INVALID_ARG, "pFilter is not a container")),
    }
}

fn period_ms(period: Duration) -> i64 {
    i64::try_from(period.as_millis()).unwrap_or(i64::MAX)
}

/// `ConEvents.Subscribe`.
pub(super) fn subscribe(data: &mut Data, ctx: &Ctx<'_>, args: &Map<String, Value>, period: Duration) -> ApiResult {
    let event = str_arg(args, "wstrEvent")?;
    if event.is_empty() {
        return Err(pxg(E_INVALID_ARG, "wstrEvent is empty"));
    }
    let mut severity = None;
    for (k, v) in filter_of(args)? {
        if k != "GNRL_EA_SEVERITY" {
            return Err(pxg(E_NOT_IMPLEMENTED, format!("subscription filter {k} is not supported")));
        }
        severity = Some(untyped(v).as_i64().ok_or_else(|| pxg(E_INVALID_ARG, format!("{k} is not an integer")))?);
    }
    let subs = &mut data.subscriptions;
    if subs.by_id.values().filter(|s| s.session == ctx.session).count() >= MAX_SUBSCRIPTIONS {
        return Err(pxg(E_STDE_TOOBIG, "STDE_TOOBIG: too many subscriptions for one session"));
    }
    subs.next_id += 1;
    let id = subs.next_id;
    subs.by_id.insert(
        id,
        Subscription {
            session: ctx.session.to_owned(),
            vserver: ctx.vserver,
            event: event.to_owned(),
            severity,
            queue: VecDeque::new(),
        },
    );
    subs.polled.insert(ctx.session.to_owned(), ctx.now);
    Ok(json!({"PxgRetVal": id, "nPeriod": period_ms(period)}))
}

/// `ConEvents.UnSubscribe`.
pub(super) fn unsubscribe(data: &mut Data, ctx: &Ctx<'_>, args: &Map<String, Value>) -> ApiResult {
    let id = int_arg(args, "nSubsId")?;
    let subs = &mut data.subscriptions;
    match subs.by_id.get(&id) {
        Some(s) if s.session == ctx.session => {
            subs.by_id.remove(&id);
            Ok(json!({}))
        }
        _ => Err(pxg(E_STDE_NOTFOUND, format!("STDE_NOTFOUND: subscription {id} was not found"))),
    }
}

/// `ConEvents.Retrieve`: up to [`RETRIEVE_BATCH`] queued events of the session's
/// subscriptions, oldest first.
pub(super) fn retrieve(data: &mut Data, ctx: &Ctx<'_>, period: Duration) -> ApiResult {
    let subs = &mut data.subscriptions;
    if !subs.by_id.values().any(|s| s.session == ctx.session) {
        return Err(pxg(E_STDE_NOTFOUND, "STDE_NOTFOUND: subscription was not found"));
    }
    let due = chrono::Duration::from_std(period).unwrap_or(chrono::Duration::MAX);
    if let Some(last) = subs.polled.get(ctx.session) {
        if ctx.now - *last < due {
            return Err(pxg(
                E_STDE_UNAVAIL,
                "STDE_UNAVAIL: period of polling is too small. Please use recommended period of polling.",
            ));
        }
    }
    subs.polled.insert(ctx.session.to_owned(), ctx.now);
    let mut events = Vec::new();
    let mut more = false;
    for sub in subs.by_id.values_mut().filter(|s| s.session == ctx.session) {
        while events.len() < RETRIEVE_BATCH {
            match sub.queue.pop_front() {
                Some(e) => events.push(e),
                None => break,
            }
        }
        more |= !sub.queue.is_empty();
    }
    Ok(json!({"PxgRetVal": more, "pEvents": events, "nPeriod": period_ms(period)}))
}
