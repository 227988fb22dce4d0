//! Client-side throttling: per-entity concurrency caps and the shared hourly request budget.
//!
//! Autotask allows 3 concurrent requests per (integration code × entity endpoint) and about
//! 10,000 requests per hour per database (autotask-api.md §4). The client keeps under both:
//! a semaphore per entity (default 2 permits, never more than 3), and a [`RequestBudget`]
//! that counts its own requests in a sliding one-hour window against the configured budget,
//! learns the server's threshold and count from `ThresholdInformation` now and then, slows
//! down as either usage passes 50 % and 75 % ([`Pacing`]), and refuses to send (with a
//! `retry_after`) once the stricter of the two limits is reached. The server's threshold only
//! ever tightens the configured budget, never raises it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Autotask's own per-endpoint thread limit.
pub const MAX_CONCURRENCY_PER_ENTITY: usize = 3;
/// Default permits per entity (one below Autotask's cap: its counter is released slightly late).
pub const DEFAULT_CONCURRENCY_PER_ENTITY: usize = 2;
/// Default hourly request budget.
pub const DEFAULT_HOURLY_BUDGET: u64 = 10_000;

/// Semaphores keyed by entity endpoint (the first path segment after `/V1.0/`, lower-cased).
#[derive(Debug)]
pub(crate) struct EntityLimiter {
    permits: usize,
    map: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl EntityLimiter {
    pub(crate) fn new(permits: usize) -> Self {
        Self { permits: permits.clamp(1, MAX_CONCURRENCY_PER_ENTITY), map: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn permits(&self) -> usize {
        self.permits
    }

    pub(crate) async fn acquire(&self, entity: &str) -> OwnedSemaphorePermit {
        let sem = {
            let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(map.entry(entity.to_ascii_lowercase()).or_insert_with(|| Arc::new(Semaphore::new(self.permits))))
        };
        // the semaphore is never closed, so acquire cannot fail
        sem.acquire_owned().await.unwrap_or_else(|_| unreachable!("entity semaphore closed"))
    }
}

/// The entity a request path counts against: the first segment after `V1.0/`
/// (`Tickets/123/Notes` → `tickets`), compared case-insensitively.
pub fn entity_of_path(path: &str) -> String {
    let lower = path.to_ascii_lowercase();
    let rest = match lower.find("v1.0/") {
        Some(i) => &lower[i + 5..],
        None => lower.trim_start_matches('/'),
    };
    rest.split(['/', '?']).next().unwrap_or_default().to_owned()
}

/// Delays added before each request as the hourly budget fills up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Delay once usage reaches 50 %.
    pub at_half: Duration,
    /// Delay once usage reaches 75 %.
    pub at_three_quarters: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self { at_half: Duration::from_millis(100), at_three_quarters: Duration::from_millis(500) }
    }
}

impl Pacing {
    /// No pacing at all.
    pub const NONE: Self = Self { at_half: Duration::ZERO, at_three_quarters: Duration::ZERO };

    /// The delay for `used` of `limit` (a pure function).
    pub fn delay(&self, used: u64, limit: u64) -> Duration {
        if limit == 0 {
            return Duration::ZERO;
        }
        // integer arithmetic: used/limit >= 3/4  <=>  4*used >= 3*limit
        if used.saturating_mul(4) >= limit.saturating_mul(3) {
            self.at_three_quarters
        } else if used.saturating_mul(2) >= limit {
            self.at_half
        } else {
            Duration::ZERO
        }
    }
}

/// Budget usage, for metrics.
///
/// Two limits apply and the stricter one wins: the configured budget (this process's share,
/// counted over its own requests in a sliding window) and the server's `ThresholdInformation`
/// (the whole database, counted by Autotask). The server's figure never raises the configured
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetUsage {
    /// Requests this budget sent in the current window.
    pub used: u64,
    /// The effective limit: the smaller of `configured_limit` and `server_limit`.
    pub limit: u64,
    /// The configured budget for the window.
    pub configured_limit: u64,
    /// `externalRequestThreshold` from the last `ThresholdInformation`, if any.
    pub server_limit: Option<u64>,
    /// The server's count at the last sync plus what this budget sent since (the whole
    /// database's usage as far as we know), while that sync is younger than its timeframe.
    pub server_used: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct ServerView {
    limit: u64,
    used_at_sync: u64,
    synced_at: Instant,
    window: Duration,
}

#[derive(Debug)]
struct BudgetState {
    configured: u64,
    window: Duration,
    /// Send times of this budget's requests within `window`, oldest first.
    sent: VecDeque<Instant>,
    server: Option<ServerView>,
    last_sync: Option<Instant>,
    syncing: bool,
}

impl BudgetState {
    fn prune(&mut self, now: Instant) {
        while self.sent.front().is_some_and(|t| now.saturating_duration_since(*t) >= self.window) {
            self.sent.pop_front();
        }
        if self.server.is_some_and(|v| now.saturating_duration_since(v.synced_at) >= v.window) {
            // the server's window has moved on since it told us its count: forget it until the
            // next sync (its limit stays known)
            if let Some(v) = self.server.as_mut() {
                v.used_at_sync = 0;
            }
        }
    }

    fn server_used(&self) -> Option<u64> {
        let v = self.server?;
        // `sent` is in sending order (pushed under the lock with the time read there), so the
        // ones since the sync are a suffix: found by bisection, not by walking up to an hour's
        // worth of requests on every look at the budget.
        let since = (self.sent.len() - self.sent.partition_point(|t| *t < v.synced_at)) as u64;
        Some(v.used_at_sync.saturating_add(since))
    }

    fn usage(&self) -> BudgetUsage {
        let server_limit = self.server.map(|v| v.limit);
        BudgetUsage {
            used: self.sent.len() as u64,
            limit: server_limit.map_or(self.configured, |l| l.min(self.configured)),
            configured_limit: self.configured,
            server_limit,
            server_used: self.server_used(),
        }
    }
}

/// The hourly request budget. Share one (`Arc`) between every client that should draw on the
/// same allowance.
#[derive(Debug)]
pub struct RequestBudget {
    state: Mutex<BudgetState>,
}

/// What [`RequestBudget::take`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    /// Counted; wait this long before sending.
    Go(Duration),
    /// Spent; a slot frees up after this long.
    Exhausted { used: u64, limit: u64, retry_after: Duration },
}

impl RequestBudget {
    /// A budget of `limit` requests per hour.
    pub fn new(limit: u64) -> Self {
        Self::with_window(limit, Duration::from_secs(3600))
    }

    /// A budget of `limit` requests per sliding `window`.
    pub fn with_window(limit: u64, window: Duration) -> Self {
        Self {
            state: Mutex::new(BudgetState {
                configured: limit,
                window,
                sent: VecDeque::new(),
                server: None,
                last_sync: None,
                syncing: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Current usage.
    pub fn usage(&self) -> BudgetUsage {
        let mut s = self.lock();
        s.prune(Instant::now());
        s.usage()
    }

    /// Counts one request (or refuses it) and says how long to pace.
    pub(crate) fn take(&self, pacing: &Pacing) -> Take {
        let mut s = self.lock();
        // Read under the lock: `sent` stays in order (see `server_used`).
        let now = Instant::now();
        s.prune(now);
        let used = s.sent.len() as u64;
        if used >= s.configured {
            let retry_after = s
                .sent
                .front()
                .map_or(Duration::ZERO, |t| (*t + s.window).saturating_duration_since(now))
                .max(Duration::from_millis(1));
            return Take::Exhausted { used, limit: s.configured, retry_after };
        }
        let mut delay = pacing.delay(used, s.configured);
        if let (Some(v), Some(server_used)) = (s.server, s.server_used()) {
            if server_used >= v.limit {
                // Autotask's window slides and we only see its count when we sync: wait for the
                // sync interval's worth, at most a minute, then let the next sync tell
                let retry_after = Duration::from_secs(60).min(v.window);
                return Take::Exhausted { used: server_used, limit: v.limit, retry_after };
            }
            delay = delay.max(pacing.delay(server_used, v.limit));
        }
        s.sent.push_back(now);
        Take::Go(delay)
    }

    /// Records the server's figures (`ThresholdInformation`): its threshold, its count and its
    /// timeframe. They tighten the budget when the server is the stricter side; they never
    /// replace the configured limit.
    pub fn sync(&self, limit: u64, used: u64, timeframe: Option<Duration>) {
        let mut s = self.lock();
        // Read under the lock, as `take` does: the requests counted since the sync are the
        // ones pushed after it.
        let now = Instant::now();
        let window = timeframe.filter(|w| !w.is_zero()).unwrap_or(s.window);
        s.server = Some(ServerView { limit, used_at_sync: used, synced_at: now, window });
        s.last_sync = Some(now);
        s.syncing = false;
    }

    /// Claims the right to refresh from the server if the last sync is older than `every` and
    /// nobody else is refreshing (single flight). The claimer must call [`Self::sync`] or
    /// [`Self::sync_failed`].
    pub(crate) fn claim_sync(&self, every: Duration) -> bool {
        let mut s = self.lock();
        let due = s.last_sync.is_none_or(|t| t.elapsed() >= every);
        if due && !s.syncing {
            s.syncing = true;
            true
        } else {
            false
        }
    }

    /// Releases a sync claim after a failure (the next attempt waits a full interval).
    pub(crate) fn sync_failed(&self) {
        let mut s = self.lock();
        s.syncing = false;
        s.last_sync = Some(Instant::now());
    }
}
