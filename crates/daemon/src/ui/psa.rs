//! Whether the PSA answers, as far as the Ticketing tab can tell.
//!
//! The engine records no "PSA down" flag and no catalog age: when a catalog read fails it keeps
//! the last catalog in [`crate::engine::Shared`] and counts the failure in the PSA-call counters
//! (`msp_psa_calls_total{op,outcome}`). So the UI derives the PSA's state from those counters:
//! it samples them (every second in the background, and before every page and every save) and
//! looks at what changed since the previous sample.
//!
//! - A sample in which PSA calls failed (outcome other than `ok`, `invalid` or `not_found`: the
//!   PSA did not answer, throttled us or rejected the credentials) and none was answered marks
//!   the PSA as failing, from that moment; a sample with answered calls and no failure clears it.
//!   A sample with both keeps the previous state.
//! - The same for the `catalog` operation alone decides whether the catalog is stale: its last
//!   read (as far as the samples tell) failed, so the drop-downs show the lists as last read.
//!
//! While the PSA is failing or the catalog is stale (or not read yet), Save changes is refused:
//! values cannot be checked against the PSA's current lists.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::engine::Shared;

/// PSA calls by (operation, outcome), as [`crate::metrics::Metrics::psa_calls`] returns them.
type Calls = BTreeMap<(String, String), u64>;

/// What the samples tell about the PSA.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PsaStatus {
    /// Since when PSA calls fail without any being answered, with the last failure's kind and
    /// the number of failed calls since.
    pub(crate) failing: Option<(DateTime<Utc>, String, u64)>,
    /// The last catalog read failed (no successful read since).
    pub(crate) catalog_stale: bool,
    /// When a successful catalog read was last seen.
    pub(crate) catalog_read_at: Option<DateTime<Utc>>,
}

fn kind_words(kind: &str) -> &'static str {
    match kind {
        "auth" => "rejects the integration's credentials",
        "ratelimited" | "rate_limited" => "is throttling the integration's requests",
        _ => "does not answer",
    }
}

impl PsaStatus {
    /// Whether Save changes must wait: no catalog, a stale one, or a PSA that does not answer.
    pub(crate) fn blocks_save(&self, has_catalog: bool) -> bool {
        !has_catalog || self.catalog_stale || self.failing.is_some()
    }

    /// The banner's headline and text, when there is something to warn about.
    pub(crate) fn problem(&self, has_catalog: bool) -> Option<(String, String)> {
        if !has_catalog {
            return Some((
                "The PSA catalog has not been read yet.".to_owned(),
                "Drop-downs show the stored values, and Save changes waits until the catalog has been read.".to_owned(),
            ));
        }
        let lists = match self.catalog_read_at {
            Some(t) => format!("the lists as last read ({} UTC)", t.format("%Y-%m-%d %H:%M:%S")),
            None => "the lists as last read".to_owned(),
        };
        if let Some((since, kind, n)) = &self.failing {
            return Some((
                format!("The PSA is unreachable: it {} (since {} UTC).", kind_words(kind), since.format("%H:%M:%S")),
                format!(
                    "{n} PSA call(s) failed and none was answered since. The catalog may be outdated: drop-downs show {lists}. Save changes is refused until the PSA answers again; your edits are kept in the draft."
                ),
            ));
        }
        if self.catalog_stale {
            return Some((
                "The PSA catalog is stale: its last refresh failed.".to_owned(),
                format!(
                    "Drop-downs show {lists}. Save changes is refused until the catalog has been read again; your edits are kept in the draft."
                ),
            ));
        }
        None
    }
}

#[derive(Debug, Default)]
struct State {
    last: Option<Calls>,
    status: PsaStatus,
}

/// The sampler's memory.
#[derive(Debug, Default)]
pub(crate) struct PsaWatch {
    state: Mutex<State>,
}

/// Outcomes that mean the PSA answered (even if it refused the request).
fn answered(outcome: &str) -> bool {
    matches!(outcome, "ok" | "invalid" | "notfound" | "not_found")
}

impl PsaWatch {
    /// Takes a sample of the counters at `now`; returns what they tell.
    pub(crate) fn sample(&self, calls: &Calls, now: DateTime<Utc>) -> PsaStatus {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let prev = st.last.replace(calls.clone()).unwrap_or_default();
        let (mut ok, mut failed, mut cat_ok, mut cat_failed) = (0u64, 0u64, 0u64, 0u64);
        let mut kind = None;
        for ((op, outcome), n) in calls {
            let d = n.saturating_sub(prev.get(&(op.clone(), outcome.clone())).copied().unwrap_or(0));
            if d == 0 {
                continue;
            }
            if answered(outcome) {
                ok += d;
            } else {
                failed += d;
                kind = Some(outcome.clone());
            }
            if op == "catalog" {
                if outcome == "ok" {
                    cat_ok += d;
                } else {
                    cat_failed += d;
                }
            }
        }
        let s = &mut st.status;
        if failed > 0 && ok == 0 {
            let (since, n) = s.failing.as_ref().map_or((now, 0), |(t, _, n)| (*t, *n));
            s.failing = Some((since, kind.unwrap_or_default(), n + failed));
        } else if ok > 0 && failed == 0 {
            s.failing = None;
        } else if let Some((_, k, n)) = s.failing.as_mut() {
            *n += failed;
            if let Some(kind) = kind {
                *k = kind;
            }
        }
        if cat_failed > 0 && cat_ok == 0 {
            s.catalog_stale = true;
        } else if cat_ok > 0 {
            if cat_failed == 0 {
                s.catalog_stale = false;
            }
            s.catalog_read_at = Some(now);
        }
        s.clone()
    }

    /// Samples the daemon's counters now.
    pub(crate) fn check(&self, shared: &Shared) -> PsaStatus {
        self.sample(&shared.metrics.psa_calls(), Utc::now())
    }

    /// Samples every second in the background while the UI and the daemon's state live.
    pub(crate) fn spawn_sampler(watch: &Arc<Self>, shared: &Arc<Shared>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let (watch, shared): (Weak<Self>, Weak<Shared>) = (Arc::downgrade(watch), Arc::downgrade(shared));
        handle.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let (Some(w), Some(s)) = (watch.upgrade(), shared.upgrade()) else { break };
                w.check(&s);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(v: &[(&str, &str, u64)]) -> Calls {
        v.iter().map(|(o, r, n)| ((o.to_string(), r.to_string()), *n)).collect()
    }

    #[test]
    fn failures_without_answers_mark_the_psa_down_until_it_answers() {
        let w = PsaWatch::default();
        let t = Utc::now();
        let s = w.sample(&calls(&[("catalog", "ok", 1)]), t);
        assert!(!s.blocks_save(true));
        let s = w.sample(&calls(&[("catalog", "ok", 1), ("create", "transient", 2)]), t);
        assert_eq!(s.failing.as_ref().map(|f| f.2), Some(2));
        assert!(!s.catalog_stale);
        assert!(s.blocks_save(true));
        let s = w.sample(&calls(&[("catalog", "ok", 1), ("catalog", "transient", 1), ("create", "transient", 2)]), t);
        assert!(s.catalog_stale);
        assert!(s.problem(true).unwrap().0.contains("unreachable"));
        let s = w.sample(&calls(&[("catalog", "ok", 2), ("catalog", "transient", 1), ("create", "transient", 2)]), t);
        assert_eq!(s, PsaStatus { failing: None, catalog_stale: false, catalog_read_at: Some(t) });
        assert!(s.problem(true).is_none());
        assert!(s.problem(false).is_some());
    }
}
