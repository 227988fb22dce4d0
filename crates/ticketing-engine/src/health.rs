//! Liveness and readiness: what `/healthz` and `/readyz` answer, and what the UI's banners show.
//!
//! The engine reports what it sees as it goes (every loop turn, every PSA answer, every source
//! read); the admin API asks [`Health::readiness`] at request time, so a probe costs no PSA or
//! source call. Only the store check touches anything: a tiny write, through
//! [`crate::store::Store::probe_writable`], at most once per [`STORE_PROBE_EVERY`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use ticketing_core::ports::PortErrorKind;

/// How long a store probe's answer is reused (a scraper asking every second costs one write
/// per interval, not one per request).
pub const STORE_PROBE_EVERY: Duration = Duration::from_secs(5);

/// A PSA answer as readiness classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsaAnswer {
    /// The PSA answered (including a refusal of one request: it is reachable).
    Reached,
    /// Timeout, connection failure, 5xx, rejected credentials or a 429: not usable now.
    Unreachable,
}

impl PsaAnswer {
    /// Classifies a PSA call's outcome: answered (`Ok`), or failed with the error's kind.
    pub fn of(outcome: Result<(), PortErrorKind>) -> Self {
        match outcome {
            Err(PortErrorKind::Transient | PortErrorKind::Auth | PortErrorKind::RateLimited | PortErrorKind::Other) => {
                Self::Unreachable
            }
            Ok(()) | Err(PortErrorKind::NotFound | PortErrorKind::Invalid) => Self::Reached,
        }
    }
}

/// The label of a PSA call's outcome in metrics and readiness details: `ok`, or the error's
/// kind in lower case (`transient`, `invalid`, ...).
pub fn outcome_label(outcome: Result<(), PortErrorKind>) -> &'static str {
    match outcome {
        Ok(()) => "ok",
        Err(PortErrorKind::Auth) => "auth",
        Err(PortErrorKind::RateLimited) => "ratelimited",
        Err(PortErrorKind::Transient) => "transient",
        Err(PortErrorKind::NotFound) => "notfound",
        Err(PortErrorKind::Invalid) => "invalid",
        Err(PortErrorKind::Other) => "other",
    }
}

#[derive(Debug, Default)]
struct State {
    /// The engine loop's last turn.
    heartbeat: Option<DateTime<Utc>>,
    /// The engine's tick, for the liveness bound.
    tick: Duration,
    /// The last PSA answer that reached it.
    psa_ok: Option<DateTime<Utc>>,
    /// PSA calls failing with none answered since: cleared by the next answer.
    psa_failing: Option<Failing>,
    /// When the catalog was last read, and whether its latest read failed.
    catalog_read_at: Option<DateTime<Utc>>,
    catalog_stale: bool,
    /// How often the PSA is asked at least (catalog refresh), for the staleness bound.
    psa_every: Duration,
    /// Each source's last successful read and its poll interval.
    sources: BTreeMap<String, SourceHealth>,
    /// Whether this instance leads (a standby polls nothing, so its sources are not stale).
    standby: bool,
    /// The last store probe.
    store: Option<(std::time::Instant, Result<(), String>)>,
}

/// PSA calls failing with none answered since `since`.
#[derive(Debug, Clone)]
struct Failing {
    since: DateTime<Utc>,
    /// The last failed call: when, which operation, what kind.
    at: DateTime<Utc>,
    op: String,
    kind: String,
    /// Failed calls since `since`.
    count: u64,
}

#[derive(Debug, Clone, Default)]
struct SourceHealth {
    interval: Duration,
    last_ok: Option<DateTime<Utc>>,
    last_error: Option<(DateTime<Utc>, String)>,
    /// Failed reads since the last successful one.
    failures: u64,
    /// The last successful read was a tenant listing with no tenants (a fresh setup, a product
    /// the MSP does not use yet), relisted this often: the source is reached, and fresh as long
    /// as the next listing is not overdue.
    no_tenants: Option<Duration>,
}

/// What the engine saw, for the probes.
#[derive(Debug)]
pub struct Health {
    state: Mutex<State>,
    /// When this was made: the engine gets a grace period to start its loop.
    born: std::time::Instant,
}

impl Default for Health {
    fn default() -> Self {
        Self { state: Mutex::default(), born: std::time::Instant::now() }
    }
}

/// The PSA as the UI's banner shows it (see [`Health::psa_view`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PsaView {
    /// Since when PSA calls fail with none answered, the last failure's kind, how many.
    pub failing: Option<(DateTime<Utc>, String, u64)>,
    /// The catalog's latest read failed.
    pub catalog_stale: bool,
    /// When the catalog was last read.
    pub catalog_read_at: Option<DateTime<Utc>>,
}

/// One readiness check's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `store`, `psa`, or `source:<name>`.
    pub name: String,
    /// Whether it passes.
    pub ok: bool,
    /// Plain words: what was found.
    pub detail: String,
}

/// `/readyz`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Every check passes.
    pub ready: bool,
    /// Each check.
    pub checks: Vec<Check>,
}

impl Readiness {
    /// The failing check named `name`, if it fails.
    pub fn failing(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name && !c.ok)
    }
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The engine's loop turned (called every tick).
    pub fn beat(&self, now: DateTime<Utc>, tick: Duration) {
        let mut s = self.lock();
        s.heartbeat = Some(now);
        s.tick = tick;
    }

    /// Sets how often the PSA is asked at least (the catalog refresh interval).
    pub fn set_psa_interval(&self, every: Duration) {
        self.lock().psa_every = every;
    }

    /// Sets the sources and their poll intervals (a reload may change them; gone ones are
    /// forgotten, kept ones keep their history).
    pub fn set_sources(&self, sources: impl IntoIterator<Item = (String, Duration)>) {
        let mut s = self.lock();
        let old = std::mem::take(&mut s.sources);
        for (name, interval) in sources {
            let mut h = old.get(&name).cloned().unwrap_or_default();
            h.interval = interval;
            s.sources.insert(name, h);
        }
    }

    /// Records whether this instance stands by.
    pub fn set_standby(&self, standby: bool) {
        self.lock().standby = standby;
    }

    /// Records a PSA answer.
    pub fn psa_answered(&self, op: &str, outcome: Result<(), PortErrorKind>, now: DateTime<Utc>) {
        let mut s = self.lock();
        match PsaAnswer::of(outcome) {
            PsaAnswer::Reached => {
                s.psa_ok = Some(now);
                s.psa_failing = None;
            }
            PsaAnswer::Unreachable => {
                let (since, count) = s.psa_failing.as_ref().map_or((now, 0), |f| (f.since, f.count));
                s.psa_failing = Some(Failing {
                    since,
                    at: now,
                    op: op.to_owned(),
                    kind: outcome_label(outcome).to_owned(),
                    count: count + 1,
                });
            }
        }
        if op == "catalog" {
            if outcome.is_ok() {
                s.catalog_read_at = Some(now);
                s.catalog_stale = false;
            } else {
                s.catalog_stale = true;
            }
        }
    }

    /// What the UI's PSA banner says: since when calls fail with none answered (with the last
    /// failure's kind and their count), whether the catalog's latest read failed, and when it
    /// was last read.
    pub fn psa_view(&self) -> PsaView {
        let s = self.lock();
        let failing = s.psa_failing.as_ref().map(|f| (f.since, f.kind.clone(), f.count));
        PsaView { failing, catalog_stale: s.catalog_stale, catalog_read_at: s.catalog_read_at }
    }

    /// The sources whose latest read failed, with their failed reads since the last success.
    pub fn failing_sources(&self) -> BTreeMap<String, u64> {
        self.lock().sources.iter().filter(|(_, h)| h.failures > 0).map(|(k, h)| (k.clone(), h.failures)).collect()
    }

    /// Records a source read.
    pub fn source_read(&self, source: &str, result: Result<(), String>, now: DateTime<Utc>) {
        let mut s = self.lock();
        let h = s.sources.entry(source.to_owned()).or_default();
        match result {
            Ok(()) => {
                h.last_ok = Some(now);
                h.failures = 0;
                h.no_tenants = None;
            }
            Err(e) => {
                h.last_error = Some((now, e));
                h.failures += 1;
            }
        }
    }

    /// Records a successful listing of a source's tenants that found none: a read of the
    /// source (it answered), fresh until three listings (`relist_every`) are overdue.
    pub fn source_listed_no_tenants(&self, source: &str, relist_every: Duration, now: DateTime<Utc>) {
        let mut s = self.lock();
        let h = s.sources.entry(source.to_owned()).or_default();
        h.last_ok = Some(now);
        h.failures = 0;
        h.no_tenants = Some(relist_every);
    }

    /// The sources whose latest listing was successful and empty (reached, no tenants yet).
    pub fn sources_without_tenants(&self) -> std::collections::BTreeSet<String> {
        self.lock().sources.iter().filter(|(_, h)| h.no_tenants.is_some()).map(|(k, _)| k.clone()).collect()
    }

    /// Each source's last successful read (`None`: not read yet).
    pub fn source_successes(&self) -> BTreeMap<String, Option<DateTime<Utc>>> {
        self.lock().sources.iter().map(|(k, v)| (k.clone(), v.last_ok)).collect()
    }

    /// Liveness: `Err` with why when the engine loop has not turned for a while (five ticks,
    /// at least 30 s) or never did.
    pub fn liveness(&self, now: DateTime<Utc>) -> Result<(), String> {
        let s = self.lock();
        let bound = (s.tick * 5).max(Duration::from_secs(30));
        match s.heartbeat {
            None if self.born.elapsed() <= bound => Ok(()),
            None => Err("the engine has not started its loop".to_owned()),
            Some(at) if (now - at).to_std().unwrap_or_default() > bound => {
                Err(format!("the engine loop last ran {} s ago", (now - at).num_seconds()))
            }
            Some(_) => Ok(()),
        }
    }

    /// Whether the PSA is reachable, in words: `Err` during an outage.
    pub fn psa(&self, now: DateTime<Utc>) -> Result<String, String> {
        let s = self.lock();
        psa_check(&s, now)
    }

    /// Readiness: the store (probed with `probe` at most every [`STORE_PROBE_EVERY`]), the PSA
    /// (reached by its latest call, and recently; the request budget not used up) and each
    /// source (a successful read within three poll intervals).
    pub fn readiness(
        &self,
        now: DateTime<Utc>,
        budget: crate::metrics::Budget,
        probe: impl FnOnce() -> Result<(), String>,
    ) -> Readiness {
        let mut s = self.lock();
        let fresh = s.store.as_ref().filter(|(at, _)| at.elapsed() < STORE_PROBE_EVERY).map(|(_, r)| r.clone());
        let store = match fresh {
            Some(r) => r,
            None => {
                let r = probe();
                s.store = Some((std::time::Instant::now(), r.clone()));
                r
            }
        };
        let mut checks = vec![Check {
            name: "store".to_owned(),
            ok: store.is_ok(),
            detail: store.err().unwrap_or_else(|| "writable".to_owned()),
        }];
        // A short or spent request budget is not a failure: the work waits for the window and
        // nothing is dropped (the budget share, issue #27), so the daemon stays ready and says so.
        let psa = psa_check(&s, now).map(|ok| {
            let short = budget.effective > 0 && budget.used.saturating_mul(10) >= budget.effective.saturating_mul(9);
            if budget.waiting > 0 || short {
                format!(
                    "{ok}; request budget {} of {} used, {} PSA calls waiting for it (Critical first)",
                    budget.used, budget.effective, budget.waiting
                )
            } else {
                ok
            }
        });
        checks.push(Check { name: "psa".to_owned(), ok: psa.is_ok(), detail: psa.unwrap_or_else(|e| e) });
        for (name, h) in &s.sources {
            let bound = h.no_tenants.map_or(h.interval, |relist| relist.max(h.interval)) * 3;
            let (ok, detail) = match h.last_ok {
                _ if s.standby => (true, "standing by: the leader polls".to_owned()),
                Some(at) if age(now, at) <= bound && h.no_tenants.is_some() => {
                    (true, format!("reached, no tenants yet (listed {} s ago)", age(now, at).as_secs()))
                }
                Some(at) if age(now, at) <= bound => (true, format!("last read {} s ago", age(now, at).as_secs())),
                Some(at) => (
                    false,
                    format!(
                        "no successful read for {} s (more than 3 poll intervals){}",
                        age(now, at).as_secs(),
                        last_error(h)
                    ),
                ),
                None => (false, format!("no successful read yet{}", last_error(h))),
            };
            checks.push(Check { name: format!("source:{name}"), ok, detail });
        }
        Readiness { ready: checks.iter().all(|c| c.ok), checks }
    }
}

fn age(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (now - at).to_std().unwrap_or_default()
}

fn last_error(h: &SourceHealth) -> String {
    h.last_error.as_ref().map(|(_, e)| format!("; last error: {e}")).unwrap_or_default()
}

fn psa_check(s: &State, now: DateTime<Utc>) -> Result<String, String> {
    let stale_after = (s.psa_every * 3).max(Duration::from_secs(60));
    if let Some(f) = &s.psa_failing {
        return Err(format!(
            "unreachable: the last call ({}, {} s ago) failed: {}",
            f.op,
            age(now, f.at).as_secs(),
            f.kind
        ));
    }
    match s.psa_ok {
        None => Err("not contacted yet".to_owned()),
        Some(ok) if age(now, ok) > stale_after => Err(format!("no answer for {} s", age(now, ok).as_secs())),
        Some(ok) => Ok(format!("reached {} s ago", age(now, ok).as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Budget;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn psa_goes_red_on_a_failed_call_and_green_on_the_next_answer() {
        let h = Health::default();
        h.set_psa_interval(Duration::from_secs(60));
        assert!(h.psa(t(0)).is_err(), "not contacted yet");
        h.psa_answered("catalog", Ok(()), t(1));
        assert!(h.psa(t(2)).is_ok());
        h.psa_answered("create", Err(ticketing_core::ports::PortErrorKind::Invalid), t(3));
        assert!(h.psa(t(4)).is_ok(), "a refused request still reached the PSA");
        h.psa_answered("create", Err(ticketing_core::ports::PortErrorKind::Transient), t(5));
        let e = h.psa(t(6)).unwrap_err();
        assert!(e.contains("create") && e.contains("transient"), "{e}");
        h.psa_answered("catalog", Ok(()), t(7));
        assert!(h.psa(t(8)).is_ok());
        assert!(h.psa(t(7 + 181)).is_err(), "no answer for over three refresh intervals");
    }

    #[test]
    fn sources_are_stale_after_three_intervals_and_standby_is_ready() {
        let h = Health::default();
        h.set_sources([("ksc/events".to_owned(), Duration::from_secs(10))]);
        h.psa_answered("catalog", Ok(()), t(0));
        let probe = || Ok(());
        let r = h.readiness(t(0), Budget::default(), probe);
        assert!(!r.ready && r.failing("source:ksc/events").is_some(), "{r:?}");
        h.source_read("ksc/events", Ok(()), t(1));
        assert!(h.readiness(t(30), Budget::default(), probe).ready);
        let r = h.readiness(t(32), Budget::default(), probe);
        assert!(r.failing("source:ksc/events").unwrap().detail.contains("31 s"), "{r:?}");
        h.set_standby(true);
        assert!(h.readiness(t(32), Budget::default(), probe).failing("source:ksc/events").is_none());
    }

    #[test]
    fn a_used_up_budget_is_ready_and_says_what_waits_and_a_failing_store_is_not_ready() {
        let h = Health::default();
        h.psa_answered("catalog", Ok(()), t(0));
        let b = Budget { used: 10, configured: 10, server: 0, effective: 10, waiting: 7 };
        let r = h.readiness(t(1), b, || Err("disk full".to_owned()));
        assert!(r.failing("psa").is_none(), "{r:?}");
        let psa = r.checks.iter().find(|c| c.name == "psa").unwrap();
        assert!(psa.detail.contains("request budget 10 of 10 used, 7 PSA calls waiting"), "{psa:?}");
        assert_eq!(r.failing("store").unwrap().detail, "disk full");
    }

    #[test]
    fn liveness_needs_a_recent_heartbeat() {
        let h = Health::default();
        assert!(h.liveness(t(0)).is_ok(), "starting");
        h.beat(t(0), Duration::from_secs(1));
        assert!(h.liveness(t(29)).is_ok());
        assert!(h.liveness(t(31)).is_err());
    }
}
