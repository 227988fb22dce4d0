//! Client-side throttling: per-entity concurrency caps and the shared hourly request budget.
//!
//! Autotask allows 3 concurrent requests per (integration code × entity endpoint) and about
//! 10,000 requests per hour per database (autotask-api.md §4). The client keeps under both:
//! a semaphore per entity (default 2 permits, never more than 3), and a [`RequestBudget`]
//! that counts requests in a one-hour window, is re-synchronised from `ThresholdInformation`
//! now and then, slows down as usage passes 50 % and 75 % ([`Pacing`]), and refuses to send
//! once the budget is spent.

use std::collections::HashMap;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetUsage {
    /// Requests counted in the current window.
    pub used: u64,
    /// The budget for the window.
    pub limit: u64,
}

#[derive(Debug)]
struct BudgetState {
    used: u64,
    limit: u64,
    window: Duration,
    window_start: Instant,
    last_sync: Option<Instant>,
    syncing: bool,
}

/// The hourly request budget. Share one (`Arc`) between every client of the same Autotask
/// database: the threshold is per database, not per client.
#[derive(Debug)]
pub struct RequestBudget {
    state: Mutex<BudgetState>,
}

/// What [`RequestBudget::take`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    /// Counted; wait this long before sending.
    Go(Duration),
    /// Spent; the window frees up after this long.
    Exhausted { used: u64, limit: u64, retry_after: Duration },
}

impl RequestBudget {
    /// A budget of `limit` requests per hour.
    pub fn new(limit: u64) -> Self {
        Self::with_window(limit, Duration::from_secs(3600))
    }

    /// A budget of `limit` requests per `window`.
    pub fn with_window(limit: u64, window: Duration) -> Self {
        Self {
            state: Mutex::new(BudgetState {
                used: 0,
                limit,
                window,
                window_start: Instant::now(),
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
        roll(&mut s, Instant::now());
        BudgetUsage { used: s.used, limit: s.limit }
    }

    /// Counts one request (or refuses it) and says how long to pace.
    pub(crate) fn take(&self, pacing: &Pacing) -> Take {
        let now = Instant::now();
        let mut s = self.lock();
        roll(&mut s, now);
        if s.used >= s.limit {
            let retry_after = (s.window_start + s.window).saturating_duration_since(now);
            return Take::Exhausted { used: s.used, limit: s.limit, retry_after };
        }
        let delay = pacing.delay(s.used, s.limit);
        s.used += 1;
        Take::Go(delay)
    }

    /// Adopts the server's figures (`ThresholdInformation`).
    pub fn sync(&self, limit: u64, used: u64, timeframe: Option<Duration>) {
        let mut s = self.lock();
        s.limit = limit;
        s.used = used;
        if let Some(w) = timeframe.filter(|w| !w.is_zero()) {
            s.window = w;
        }
        s.last_sync = Some(Instant::now());
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

fn roll(s: &mut BudgetState, now: Instant) {
    if now.saturating_duration_since(s.window_start) >= s.window {
        s.window_start = now;
        s.used = 0;
    }
}
