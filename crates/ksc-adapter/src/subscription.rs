//! Events by subscription (issue #29): `ConEvents.Subscribe` / `ConEvents.Retrieve` as a
//! cheaper idle poll, with the `event_db_id` scan ([`crate::events`]) still the source of every
//! event handed on.
//!
//! ```text
//! poll(cursor)
//!   ├─ no subscription for this virtual server ─> Subscribe (wstrEvent, nPeriod), then scan
//!   │    (refused: scan, and ask again after events_rescan)
//!   ├─ cursor is not the one the last complete scan returned ─> scan
//!   ├─ last scan longer ago than events_rescan ─> scan
//!   ├─ within the server's polling period (nPeriod) ─> nothing new: no call
//!   └─ Retrieve ─┬─ queue empty ─> nothing new (one call)
//!                ├─ events queued ─> scan from the cursor
//!                ├─ STDE_UNAVAIL (polled too soon) ─> nothing new this time
//!                └─ any other failure (STDE_NOTFOUND: the subscription or its session is
//!                   gone) ─> forget it, Subscribe again, scan from the cursor (catch-up)
//! ```
//!
//! Why nothing is lost or handed on twice: the events of a batch always come from the scan
//! from the caller's cursor, exactly as without a subscription; the subscription only tells
//! when a scan may be skipped. It may be skipped only while a subscription made *before* the
//! last complete scan started has queued nothing since, the caller's cursor is the one that
//! scan returned, and the scan is at most `events_rescan` old. An event stored between
//! `Subscribe` and the scan is read by the scan and also queued: that costs one more scan,
//! never a repeat (records at or below the mark are dropped). Subscriptions belong to the
//! session: when the client replaces a lost session, the next `Retrieve` finds none
//! (`STDE_NOTFOUND`) and the cursor scan catches up.
//!
//! Held by the leader only: the engine polls events only while it holds the lease, and a
//! subscription is made by a poll; a standby never polls, so it never subscribes. The
//! sessions (and with them the subscriptions) end at [`crate::KscSource::logout_all`].
//!
//! What is modelled, not verified: the `wstrEvent` names (`*` in `ksc-sim`), the numbers of
//! the `STDE_*` codes (the adapter recognises `STDE_UNAVAIL` by the code's name in the
//! message as well).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;
use ticketing_core::ports::{Cursor, EventBatch};

use crate::client::{KscClient, malformed};
use crate::error::KscError;
use crate::value::Value;

const SUBSCRIBE: &str = "ConEvents.Subscribe";
const RETRIEVE: &str = "ConEvents.Retrieve";

/// `STDE_UNAVAIL` as `ksc-sim` numbers it (modelled).
pub const STDE_UNAVAIL: i64 = 1188;

/// The polling period a server that answers none (or 0) is polled at.
const FALLBACK_PERIOD: Duration = Duration::from_secs(1);

/// One virtual server's subscription, as this client knows it.
#[derive(Debug, Clone)]
struct Held {
    /// `PxgRetVal` of `Subscribe` (for the logs).
    id: i64,
    /// `nPeriod`, as last answered.
    period: Duration,
    /// When `Subscribe` or `Retrieve` last answered: the start of the polling period.
    polled_at: Instant,
    /// The cursor the last complete scan (`more == false`) after subscribing returned, and
    /// when that scan started.
    scanned: Option<(Cursor, Instant)>,
}

/// What a poll does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Subscribe, then scan.
    Subscribe,
    /// Scan (the subscription stays).
    Scan,
    /// Ask the queue.
    Retrieve,
    /// Nothing new: hand back the caller's cursor without a call.
    Idle,
}

/// The subscriptions of one [`crate::KscSource`], by virtual server. One writer per entry: the
/// poll of that virtual server (the engine reads a tenant once at a time); the lock is held
/// for a lookup or an update only, never across a call.
#[derive(Debug, Default)]
pub struct Subscriptions {
    held: Mutex<HashMap<String, Held>>,
    /// Virtual servers whose last `Subscribe` was refused, and when: they are scanned without
    /// asking again until `events_rescan` has passed.
    refused: Mutex<HashMap<String, Instant>>,
}

impl Subscriptions {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Held>) -> T) -> T {
        f(&mut self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The next step of a poll of `vserver` from `cursor` at `now`.
    pub(crate) fn step(&self, vserver: &str, cursor: &Cursor, now: Instant, rescan: Duration) -> Step {
        let refused = self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(vserver).copied();
        self.with(|held| match held.get(vserver) {
            None if refused.is_some_and(|at| now.saturating_duration_since(at) < rescan) => Step::Scan,
            None => Step::Subscribe,
            Some(h) => match &h.scanned {
                Some((c, at)) if c == cursor && now.saturating_duration_since(*at) < rescan => {
                    if now.saturating_duration_since(h.polled_at) < h.period { Step::Idle } else { Step::Retrieve }
                }
                _ => Step::Scan,
            },
        })
    }

    /// The subscription of `vserver` is gone (or never made).
    pub(crate) fn forget(&self, vserver: &str) {
        self.with(|held| held.remove(vserver));
    }

    /// `Subscribe` for `vserver`; the subscription is held once it answers.
    pub(crate) async fn subscribe(&self, client: &KscClient, vserver: &str, event: &str) -> Result<(), KscError> {
        let refused = |e: KscError| {
            let mut refused = self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            refused.insert(vserver.to_owned(), Instant::now());
            e
        };
        let reply = client
            .call_no_retry(vserver, SUBSCRIBE, &json!({"wstrEvent": event, "pFilter": {}}))
            .await
            .map_err(refused)?;
        self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(vserver);
        let id = reply.retval(SUBSCRIBE)?.as_i64().ok_or_else(|| malformed(SUBSCRIBE, "PxgRetVal is not an id"))?;
        let period = period_of(&reply.out);
        tracing::debug!(vserver, id, ?period, "security center event subscription made");
        self.with(|held| {
            held.insert(vserver.to_owned(), Held { id, period, polled_at: Instant::now(), scanned: None })
        });
        Ok(())
    }

    /// A scan of `vserver` that started at `started` ended with `batch`: when it is complete,
    /// its cursor is the one an idle poll may hand back.
    pub(crate) fn scanned(&self, vserver: &str, started: Instant, batch: &EventBatch) {
        self.with(|held| {
            if let Some(h) = held.get_mut(vserver) {
                h.scanned = (!batch.more).then(|| (batch.next.clone(), started));
            }
        });
    }

    /// `Retrieve` for `vserver`: `Ok(true)` when events are queued (scan), `Ok(false)` when
    /// nothing is (or the server says it is too soon to ask); an error means the subscription
    /// is unusable (it is forgotten).
    pub(crate) async fn retrieve(&self, client: &KscClient, vserver: &str) -> Result<bool, KscError> {
        match client.call_no_retry(vserver, RETRIEVE, &json!({})).await {
            Ok(reply) => {
                let queued = match reply.out.get("pEvents") {
                    None | Some(Value::Null) => false,
                    Some(Value::Array(a)) => !a.is_empty(),
                    Some(_) => {
                        self.forget(vserver);
                        return Err(malformed(RETRIEVE, "pEvents is not an array"));
                    }
                };
                let more = reply.retval.as_ref().and_then(Value::as_bool).unwrap_or(false);
                let period = period_of(&reply.out);
                self.with(|held| {
                    if let Some(h) = held.get_mut(vserver) {
                        h.period = period;
                        h.polled_at = Instant::now();
                    }
                });
                Ok(queued || more)
            }
            Err(e) if is_unavail(&e) => {
                tracing::debug!(vserver, "security center event queue polled too soon, waiting for its period");
                self.with(|held| {
                    if let Some(h) = held.get_mut(vserver) {
                        h.polled_at = Instant::now();
                    }
                });
                Ok(false)
            }
            Err(e) => {
                let id = self.with(|held| held.remove(vserver)).map(|h| h.id);
                tracing::info!(vserver, subscription = ?id, error = %e, "security center event subscription lost; catching up by cursor");
                Err(e)
            }
        }
    }
}

fn period_of(out: &crate::value::Params) -> Duration {
    out.get("nPeriod")
        .and_then(Value::as_i64)
        .and_then(|ms| u64::try_from(ms).ok())
        .filter(|ms| *ms > 0)
        .map_or(FALLBACK_PERIOD, Duration::from_millis)
}

fn is_unavail(e: &KscError) -> bool {
    match e {
        KscError::Api { error, .. } => error.code == STDE_UNAVAIL || error.message.contains("STDE_UNAVAIL"),
        _ => false,
    }
}
