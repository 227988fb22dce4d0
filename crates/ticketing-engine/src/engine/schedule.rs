//! Read scheduling as data: which tenant of which source is read next, as a function of what
//! was read when, what is being read and `now`. No I/O, no clock, no tokio: the driver
//! (`reads.rs`) asks [`ReadSchedule::take_due`] for the reads to start and spawns them, and tells
//! [`ReadSchedule::finished`] how each went. Unit-tested on its own (below).
//!
//! Each source (a "job": `J`) keeps its tenants in a queue by due time, so a pass costs the
//! reads it starts, not a walk over every tenant; at most `bound` reads per source are in
//! flight at once; a read that failed waits a growing backoff (the core's [`RetryPolicy`],
//! without jitter: 2 s, 4 s, … up to the source's interval); a read that said "more" is due
//! again at once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::Hash;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ticketing_core::model::TenantId;
use ticketing_core::retry::RetryPolicy;

/// How a read went, for [`ReadSchedule::finished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Read; `more` when the source has more right away (a full batch).
    Read {
        /// Whether to read again at once.
        more: bool,
    },
    /// Failed (timed out, refused, unreachable).
    Failed,
}

/// A source's tenants by the time their next read is due, soonest first.
type Queue = BinaryHeap<Reverse<(DateTime<Utc>, TenantId)>>;

/// The schedule of every source's tenant reads.
#[derive(Debug, Clone)]
pub struct ReadSchedule<J> {
    queues: HashMap<J, Queue>,
    /// When each (source, tenant) is due; a queue entry with another time is stale.
    due: HashMap<(J, TenantId), DateTime<Utc>>,
    failures: HashMap<(J, TenantId), u32>,
    in_flight: HashSet<(J, TenantId)>,
}

impl<J> Default for ReadSchedule<J> {
    fn default() -> Self {
        Self { queues: HashMap::new(), due: HashMap::new(), failures: HashMap::new(), in_flight: HashSet::new() }
    }
}

/// The wait after `failures` failed reads in a row, at most `cap` (2 s, 4 s, 8 s, …).
pub fn failed_read_backoff(failures: u32, cap: Duration) -> Duration {
    let policy = RetryPolicy {
        max_attempts: u32::MAX,
        base_delay: Duration::from_secs(2),
        max_delay: cap.max(Duration::from_secs(1)),
        max_retry_after: cap,
    };
    policy.backoff(failures.max(1), 1.0)
}

impl<J: Copy + Eq + Hash> ReadSchedule<J> {
    /// Sets when a tenant is read next.
    pub fn schedule(&mut self, job: J, tenant: TenantId, at: DateTime<Utc>) {
        self.queues.entry(job).or_default().push(Reverse((at, tenant.clone())));
        self.due.insert((job, tenant), at);
    }

    /// A tenant (new to its source's list, or back on it) is queued: at once, or when it was
    /// due anyway. Nothing changes while it is being read.
    pub fn listed(&mut self, job: J, tenant: TenantId) {
        let key = (job, tenant);
        if self.in_flight.contains(&key) {
            return;
        }
        let at = self.due.get(&key).copied().unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.schedule(key.0, key.1, at);
    }

    /// Whether this tenant's read is in flight.
    pub fn is_in_flight(&self, job: J, tenant: &TenantId) -> bool {
        self.in_flight.contains(&(job, tenant.clone()))
    }

    /// How many reads are in flight.
    pub fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// The reads to start now, at most `bound` in flight per source, soonest due first; each
    /// returned read counts as in flight until [`ReadSchedule::finished`] or
    /// [`ReadSchedule::abandon`]. `hold(job, tenant)`: a read whose last result is still
    /// waiting to be committed, due again once it is (kept in the queue); `listed(job,
    /// tenant)`: whether the tenant is still on its source's list (if not, its entry goes).
    pub fn take_due(
        &mut self,
        now: DateTime<Utc>,
        bound: usize,
        hold: impl Fn(J, &TenantId) -> bool,
        listed: impl Fn(J, &TenantId) -> bool,
    ) -> Vec<(J, TenantId)> {
        let mut in_flight: HashMap<J, usize> = HashMap::new();
        for (job, _) in &self.in_flight {
            *in_flight.entry(*job).or_default() += 1;
        }
        let bound = bound.max(1);
        let mut start = Vec::new();
        let mut held = Vec::new();
        for (job, queue) in &mut self.queues {
            let mut free = bound.saturating_sub(in_flight.get(job).copied().unwrap_or(0));
            while free > 0 {
                let Some(Reverse((at, _))) = queue.peek() else { break };
                if *at > now {
                    break;
                }
                let Reverse((at, id)) = queue.pop().expect("peeked");
                let key = (*job, id);
                // Stale (rescheduled since), already being read, or no longer listed: skip.
                if self.due.get(&key).is_some_and(|d| *d != at) || self.in_flight.contains(&key) {
                    continue;
                }
                if hold(key.0, &key.1) {
                    held.push((at, key.1));
                    continue;
                }
                if !listed(key.0, &key.1) {
                    continue;
                }
                start.push(key);
                free -= 1;
            }
            for (at, id) in held.drain(..) {
                queue.push(Reverse((at, id)));
            }
        }
        self.in_flight.extend(start.iter().cloned());
        start
    }

    /// A read finished: the tenant is due again after `interval` (at once when it said
    /// "more"), or after the backoff of its failures in a row. Returns when it is due, and on
    /// a failure the wait.
    pub fn finished(
        &mut self,
        job: J,
        tenant: TenantId,
        outcome: ReadOutcome,
        now: DateTime<Utc>,
        interval: Duration,
    ) -> (DateTime<Utc>, Option<Duration>) {
        let key = (job, tenant);
        self.in_flight.remove(&key);
        let (next, wait) = match outcome {
            ReadOutcome::Read { more } => {
                self.failures.remove(&key);
                (if more { now } else { now + chrono_secs(interval) }, None)
            }
            ReadOutcome::Failed => {
                let n = self.failures.entry(key.clone()).or_default();
                *n = n.saturating_add(1);
                let wait = failed_read_backoff(*n, interval);
                (now + chrono_secs(wait), Some(wait))
            }
        };
        self.schedule(key.0, key.1, next);
        (next, wait)
    }

    /// Every read in flight is abandoned (a lease lost, a generation replaced): their tenants
    /// keep their due times.
    pub fn abandon(&mut self) {
        self.in_flight.clear();
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Starts over with every one of `tenants` due at once (a new leader reads everyone).
    pub fn restart<'a>(&mut self, tenants: impl IntoIterator<Item = &'a (J, TenantId)>)
    where
        J: 'a,
    {
        let in_flight = std::mem::take(&mut self.in_flight);
        self.clear();
        self.in_flight = in_flight;
        for (job, id) in tenants {
            self.queues.entry(*job).or_default().push(Reverse((DateTime::<Utc>::MIN_UTC, id.clone())));
        }
    }
}

fn chrono_secs(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(id: &str) -> TenantId {
        TenantId::new(id)
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap() + chrono::Duration::seconds(secs)
    }

    const EVERY: Duration = Duration::from_secs(60);

    #[test]
    fn due_reads_come_soonest_first_within_the_bound_per_source() {
        let mut s = ReadSchedule::default();
        for (i, id) in ["a", "b", "c", "d"].into_iter().enumerate() {
            s.schedule(1, t(id), at(i64::try_from(i).unwrap()));
        }
        s.schedule(2, t("x"), at(0));
        s.schedule(1, t("later"), at(100));
        let mut started = s.take_due(at(10), 2, |_, _| false, |_, _| true);
        started.sort();
        assert_eq!(started, [(1, t("a")), (1, t("b")), (2, t("x"))]);
        // The bound holds while those are in flight.
        assert!(s.take_due(at(10), 2, |_, _| false, |_, _| true).is_empty());
        s.finished(1, t("a"), ReadOutcome::Read { more: false }, at(11), EVERY);
        assert_eq!(s.take_due(at(11), 2, |_, _| false, |_, _| true), [(1, t("c"))]);
        assert_eq!(s.in_flight_len(), 3);
    }

    #[test]
    fn a_finished_read_is_due_after_its_interval_or_at_once_when_there_is_more() {
        let mut s = ReadSchedule::default();
        s.schedule(1, t("a"), at(0));
        s.schedule(1, t("b"), at(0));
        assert_eq!(s.take_due(at(0), 5, |_, _| false, |_, _| true).len(), 2);
        assert_eq!(s.finished(1, t("a"), ReadOutcome::Read { more: false }, at(1), EVERY), (at(61), None));
        assert_eq!(s.finished(1, t("b"), ReadOutcome::Read { more: true }, at(1), EVERY), (at(1), None));
        assert_eq!(s.take_due(at(1), 5, |_, _| false, |_, _| true), [(1, t("b"))]);
        assert!(s.take_due(at(60), 5, |_, _| false, |_, _| true).is_empty());
        assert_eq!(s.take_due(at(61), 5, |_, _| false, |_, _| true), [(1, t("a"))]);
    }

    #[test]
    fn failures_back_off_up_to_the_interval_and_a_success_resets_them() {
        let mut s = ReadSchedule::default();
        let mut waits = Vec::new();
        for n in 0..8 {
            s.schedule(1, t("a"), at(n));
            assert_eq!(s.take_due(at(1000 * n), 1, |_, _| false, |_, _| true).len(), 1);
            let (_, wait) = s.finished(1, t("a"), ReadOutcome::Failed, at(1000 * n), EVERY);
            waits.push(wait.unwrap().as_secs());
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
        s.take_due(at(100_000), 1, |_, _| false, |_, _| true);
        s.finished(1, t("a"), ReadOutcome::Read { more: false }, at(100_000), EVERY);
        s.take_due(at(100_060), 1, |_, _| false, |_, _| true);
        let (_, wait) = s.finished(1, t("a"), ReadOutcome::Failed, at(100_060), EVERY);
        assert_eq!(wait, Some(Duration::from_secs(2)), "the count starts over after a success");
    }

    #[test]
    fn stale_entries_unlisted_tenants_and_held_reads_are_not_started() {
        let mut s = ReadSchedule::default();
        s.schedule(1, t("moved"), at(0));
        s.schedule(1, t("moved"), at(50)); // rescheduled: the entry at 0 is stale
        s.schedule(1, t("gone"), at(0));
        s.schedule(1, t("held"), at(0));
        let started = s.take_due(at(10), 10, |_, id| id.as_str() == "held", |_, id| id.as_str() != "gone");
        assert!(started.is_empty(), "{started:?}");
        // The held one stays queued and starts once its results are committed.
        assert_eq!(s.take_due(at(10), 10, |_, _| false, |_, _| true), [(1, t("held"))]);
        assert_eq!(s.take_due(at(50), 10, |_, _| false, |_, _| true), [(1, t("moved"))]);
    }

    #[test]
    fn listing_again_keeps_a_due_time_and_restart_reads_everyone_at_once() {
        let mut s = ReadSchedule::default();
        s.schedule(1, t("a"), at(30));
        s.listed(1, t("a"));
        assert!(s.take_due(at(10), 10, |_, _| false, |_, _| true).is_empty(), "still due at 30");
        s.listed(1, t("new"));
        assert_eq!(s.take_due(at(10), 10, |_, _| false, |_, _| true), [(1, t("new"))]);
        s.listed(1, t("new")); // being read: unchanged
        assert!(s.is_in_flight(1, &t("new")));
        s.restart(&[(1, t("a")), (1, t("b"))]);
        let mut started = s.take_due(at(0), 10, |_, _| false, |_, _| true);
        started.sort();
        assert_eq!(started, [(1, t("a")), (1, t("b"))]);
        s.abandon();
        assert_eq!(s.in_flight_len(), 0);
    }
}
