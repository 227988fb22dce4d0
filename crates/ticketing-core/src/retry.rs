//! The retry policy every PSA client shares, as a pure function of (failure, attempt,
//! idempotency, jitter). Each client only says how its own errors fail ([`Failure`]); what to do
//! about that is decided here, once.
//!
//! Only throttling and transient failures are retried. A throttled request was refused, not
//! processed, so it is sent again after the wait, unless the wait is longer than
//! [`RetryPolicy::max_retry_after`]: then the error goes back with its wait. A request whose
//! effect is unknown is repeated blindly only when it is idempotent (reads, a PATCH replacing
//! whole values); a create that can be looked up is repeated only after the caller checked that
//! it did not land ([`RetryAction::VerifyThenRetry`]); any other non-idempotent request (a note)
//! is not repeated.
//!
//! Time is a parameter (`now`, `jitter`): nothing here reads a clock or a random source.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

/// Whether the server may have acted on a failed request (after smithy-rs's `SdkError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The request never left the process, or the connection was never established.
    NotSent,
    /// The server answered and did not act on it (4xx, a validation refusal, throttling).
    Rejected,
    /// The request MAY have been sent and processed (timeout, connection lost after sending,
    /// a 5xx, an unreadable success body).
    Unknown,
}

/// Whether repeating a request is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, queries, PATCH replacing whole values: repeat freely.
    Idempotent,
    /// A create that can be looked up (a ticket with its idempotency key): repeat after checking.
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

/// How an attempt failed, as far as retrying goes: what a client tells [`RetryPolicy::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Refused unprocessed (429, a thread limit): safe to send again, even a create.
    Throttled {
        /// The wait the server asked for.
        retry_after: Option<Duration>,
    },
    /// A connect error, timeout or 5xx: worth repeating, if `outcome` and idempotency allow.
    Transient {
        /// The wait the server asked for.
        retry_after: Option<Duration>,
        /// Whether the server may have acted on it.
        outcome: Outcome,
    },
    /// Repeating cannot help (a refusal, bad credentials, a spent local budget).
    Final,
}

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

impl RetryPolicy {
    /// 4 attempts, backoff from 0.5 s up to 30 s, a `Retry-After` waited out up to
    /// `max_retry_after`.
    pub fn standard(max_retry_after: Duration) -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after,
        }
    }

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

    /// The decision after attempt number `attempt` (1-based) failed as `failure`.
    pub fn decide(&self, failure: Failure, attempt: u32, idempotency: Idempotency, jitter: f64) -> RetryAction {
        if attempt >= self.max_attempts {
            return RetryAction::NoRetry;
        }
        let wait = |retry_after: Option<Duration>| -> Option<Duration> {
            match retry_after {
                Some(after) if after > self.max_retry_after => None,
                Some(after) => Some(after),
                None => Some(self.backoff(attempt, jitter)),
            }
        };
        match failure {
            Failure::Throttled { retry_after } => wait(retry_after).map_or(RetryAction::NoRetry, RetryAction::Retry),
            Failure::Transient { retry_after, outcome } => {
                let Some(delay) = wait(retry_after) else { return RetryAction::NoRetry };
                match (outcome, idempotency) {
                    (Outcome::NotSent | Outcome::Rejected, _) | (_, Idempotency::Idempotent) => {
                        RetryAction::Retry(delay)
                    }
                    (Outcome::Unknown, Idempotency::Verifiable) => RetryAction::VerifyThenRetry(delay),
                    (Outcome::Unknown, Idempotency::NonIdempotent) => RetryAction::NoRetry,
                }
            }
            Failure::Final => RetryAction::NoRetry,
        }
    }
}

/// Parses a `Retry-After` value: delay-seconds, or an HTTP-date (RFC 7231 IMF-fixdate, which
/// RFC 2822 parsing accepts) relative to `now`. A date in the past gives zero; garbage gives
/// `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    let now: DateTime<Utc> = now.into();
    Some((when - now).to_std().unwrap_or(Duration::ZERO))
}
