//! Whether the PSA and the sources answer, as far as the Ticketing tab can tell (for the sources,
//! see [`SourceStatus`]).
//!
//! The PSA.
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

/// How often the source-error counters are sampled (at most): a source counts as failing while
/// its counter rose within the last two samples, so for one to two periods after its last
/// failed call.
const SOURCE_SAMPLE: Duration = Duration::from_secs(30);

/// What the samples tell about the sources (KSC servers, KBH tenants' hub).
///
/// Unlike the PSA, a source has no success counter: [`crate::metrics::Metrics`] counts its
/// failed calls only (`msp_source_errors_total{source}`, from `Metrics::source_error`; the
/// events it yields are counted per product, not per source, and a source with nothing new
/// yields none). So "errors rising with no success" cannot be told apart from "errors rising
/// between successes", and the UI says a source is failing when its error counter rose within
/// the last two samples ([`SOURCE_SAMPLE`] apart at most): the banner shows from the first
/// sample that sees a failure until two samples in a row saw none. The counters are read from
/// the metrics' text exposition, which is the only read access they offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SourceStatus {
    /// Failing sources by name, with the failed calls the last two samples saw.
    pub(crate) failing: BTreeMap<String, u64>,
}

impl SourceStatus {
    /// The banner's headline and text, when a source is failing.
    pub(crate) fn problem(&self) -> Option<(String, String)> {
        if self.failing.is_empty() {
            return None;
        }
        let names: Vec<String> = self.failing.keys().map(|n| format!("\u{201c}{n}\u{201d}")).collect();
        let n: u64 = self.failing.values().sum();
        let head = if names.len() == 1 {
            format!("The source {} is failing: calls to it do not succeed.", names[0])
        } else {
            format!("The sources {} are failing: calls to them do not succeed.", names.join(", "))
        };
        Some((
            head,
            format!(
                "{n} call(s) to a source failed in the last minute or so. Events and computer statuses from it arrive late until it answers again (the daemon keeps retrying); the rules here can still be edited and saved."
            ),
        ))
    }
}

#[derive(Debug, Default)]
struct SourceState {
    /// The counters at the last sample, and when it was taken.
    last: Option<(BTreeMap<String, u64>, DateTime<Utc>)>,
    /// Each source's rise in the last sample and in the one before.
    rises: BTreeMap<String, (u64, u64)>,
}

/// The sampler's memory.
#[derive(Debug, Default)]
pub(crate) struct PsaWatch {
    state: Mutex<State>,
    sources: Mutex<SourceState>,
}

/// The source-error counters, read from the metrics' text exposition.
fn source_errors(exposition: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix("msp_source_errors_total{source=\"") else { continue };
        let Some((label, value)) = rest.rsplit_once("\"} ") else { continue };
        let Ok(n) = value.trim().parse::<u64>() else { continue };
        let mut name = String::with_capacity(label.len());
        let mut chars = label.chars();
        while let Some(c) = chars.next() {
            match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('n') => name.push('\n'),
                    Some(other) => name.push(other),
                    None => {}
                },
                (c, false) => name.push(c),
            }
        }
        out.insert(name, n);
    }
    out
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

    /// Takes a sample of the source-error counters at `now` unless the last one is less than
    /// [`SOURCE_SAMPLE`] old; returns what the samples tell.
    pub(crate) fn sample_sources(&self, errors: &BTreeMap<String, u64>, now: DateTime<Utc>) -> SourceStatus {
        let mut st = self.sources.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = st
            .last
            .as_ref()
            .is_none_or(|(_, at)| now.signed_duration_since(*at).to_std().is_ok_and(|d| d >= SOURCE_SAMPLE));
        if due {
            let prev = st.last.replace((errors.clone(), now)).map(|(c, _)| c).unwrap_or_default();
            let mut rises = BTreeMap::new();
            for (name, n) in errors {
                let rise = n.saturating_sub(prev.get(name).copied().unwrap_or(0));
                let before = st.rises.get(name).map_or(0, |r| r.0);
                if rise > 0 || before > 0 {
                    rises.insert(name.clone(), (rise, before));
                }
            }
            st.rises = rises;
        }
        SourceStatus { failing: st.rises.iter().map(|(k, (a, b))| (k.clone(), a + b)).collect() }
    }

    /// Samples the daemon's source-error counters now (when a sample is due).
    pub(crate) fn check_sources(&self, shared: &Shared) -> SourceStatus {
        self.sample_sources(&source_errors(&shared.metrics.render()), Utc::now())
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
                w.check_sources(&s);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_fails_while_its_errors_rose_within_the_last_two_samples() {
        let w = PsaWatch::default();
        let t = Utc::now();
        let at = |s: i64| t + chrono::Duration::seconds(s);
        let errs = |n: u64| BTreeMap::from([("ksc-1".to_owned(), n), ("ksc-2".to_owned(), 0)]);
        assert!(w.sample_sources(&errs(0), at(0)).problem().is_none());
        let s = w.sample_sources(&errs(2), at(30));
        assert_eq!(s.failing, BTreeMap::from([("ksc-1".to_owned(), 2)]));
        assert!(s.problem().unwrap().0.contains("\u{201c}ksc-1\u{201d}"));
        // Too soon for a new sample: the same answer, whatever the counters say.
        assert_eq!(w.sample_sources(&errs(5), at(40)), s);
        // One quiet sample: still within the last two (the rise to 5 was not sampled).
        assert!(w.sample_sources(&errs(2), at(60)).failing.contains_key("ksc-1"));
        assert!(w.sample_sources(&errs(2), at(90)).problem().is_none());
        assert!(w.sample_sources(&errs(3), at(120)).failing.contains_key("ksc-1"));
    }

    #[test]
    fn source_errors_are_read_from_the_exposition() {
        let m = crate::metrics::Metrics::default();
        m.source_error("ksc \"main\"");
        m.source_error("ksc \"main\"");
        m.source_error("hub");
        let e = source_errors(&m.render());
        assert_eq!(e, BTreeMap::from([("hub".to_owned(), 1), ("ksc \"main\"".to_owned(), 2)]));
    }

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
