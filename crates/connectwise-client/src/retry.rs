//! The retry policy as a pure function: what to do after a failed attempt.
//!
//! Throttled requests (429, which ConnectWise answers with `Retry-After` seconds) were refused,
//! not processed, so they are retried after the wait — unless the wait is longer than
//! [`RetryPolicy::max_retry_after`], then the error goes back with its wait. Transient failures
//! (connect errors, timeouts, lost connections, 502/503/504, a bare 500) are retried with
//! exponential backoff and jitter. A request whose effect is unknown is repeated blindly only when
//! it is idempotent (reads, a PATCH replacing whole values); a ticket create is repeated only
//! after the caller has checked by `externalXRef` that it did not land
//! ([`RetryAction::VerifyThenRetry`]), and a note is never repeated.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::error::{Error, ErrorClass, Outcome};

/// Backoff and attempt limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = never retry).
    pub max_attempts: u32,
    /// First backoff step.
    pub base_delay: Duration,
    /// Largest backoff step.
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited out: the error goes back to the caller.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            // ConnectWise's own example body says "try again in 30 seconds"
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Whether repeating a request is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, queries, PATCH replacing whole values: repeat freely.
    Idempotent,
    /// A create that can be looked up (ticket with `externalXRef`): repeat after checking.
    Verifiable,
    /// A create that cannot be looked up cheaply (a note): never repeat when the outcome is unknown.
    NonIdempotent,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAction {
    /// Wait, then send again.
    Retry(Duration),
    /// Check whether the request landed (look the create up); if not, wait, then send again.
    VerifyThenRetry(Duration),
    /// Give the error back.
    NoRetry,
}

impl RetryPolicy {
    /// A policy for tests: tiny delays, `Retry-After` up to 5 s waited out.
    pub fn fast() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(10),
            max_retry_after: Duration::from_secs(5),
        }
    }

    /// No retries at all.
    pub fn never() -> Self {
        Self { max_attempts: 1, ..Self::fast() }
    }

    /// Exponential backoff with "equal jitter" for `attempt` (1 = after the first failure):
    /// `min(max, base * 2^(attempt-1))`, scaled into `[50 %, 100 %]` by `jitter` in `[0, 1)`.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let step = self.base_delay.saturating_mul(1u32 << exp).min(self.max_delay);
        step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// The decision after attempt number `attempt` (1-based) failed with `err`.
    pub fn classify(&self, err: &Error, attempt: u32, idempotency: Idempotency, jitter: f64) -> RetryAction {
        if attempt >= self.max_attempts {
            return RetryAction::NoRetry;
        }
        let wait = |err: &Error| -> Option<Duration> {
            match err.retry_after() {
                Some(after) if after > self.max_retry_after => None,
                Some(after) => Some(after),
                None => Some(self.backoff(attempt, jitter)),
            }
        };
        match err.class() {
            // a throttled request was refused, not processed: safe to send again, even a create
            ErrorClass::RateLimited => wait(err).map_or(RetryAction::NoRetry, RetryAction::Retry),
            ErrorClass::Transient | ErrorClass::Server => {
                let Some(delay) = wait(err) else { return RetryAction::NoRetry };
                match (err.outcome(), idempotency) {
                    (Outcome::NotSent | Outcome::Rejected, _) | (_, Idempotency::Idempotent) => {
                        RetryAction::Retry(delay)
                    }
                    (Outcome::Unknown, Idempotency::Verifiable) => RetryAction::VerifyThenRetry(delay),
                    (Outcome::Unknown, Idempotency::NonIdempotent) => RetryAction::NoRetry,
                }
            }
            _ => RetryAction::NoRetry,
        }
    }
}

/// Parses a `Retry-After` value: delay-seconds (what ConnectWise sends), or an HTTP-date
/// relative to `now`. A date in the past gives zero; garbage gives `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    let now: DateTime<Utc> = now.into();
    Some((when - now).to_std().unwrap_or(Duration::ZERO))
}
