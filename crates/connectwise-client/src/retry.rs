//! ConnectWise's side of the shared retry policy ([`ticketing_core::retry`]): how its errors fail.
//!
//! Throttled requests (429, which ConnectWise answers with `Retry-After` seconds) were refused,
//! not processed, so they are retried after the wait. Transient failures (connect errors,
//! timeouts, lost connections, 502/503/504, a bare 500) are retried with backoff, within what
//! their outcome and the request's idempotency allow: a ticket create only after the caller
//! checked by `externalXRef` that it did not land, a note never.

use std::time::Duration;

use ticketing_core::retry::Failure;
pub use ticketing_core::retry::{Idempotency, RetryAction, RetryPolicy, parse_retry_after};

use crate::error::{Error, ErrorClass};

/// The policy ConnectWise clients start with: a `Retry-After` waited out up to a minute
/// (ConnectWise's own example body says "try again in 30 seconds").
pub fn default_policy() -> RetryPolicy {
    RetryPolicy::standard(Duration::from_secs(60))
}

/// [`RetryPolicy::decide`] for this client's errors.
pub trait Classify {
    /// The decision after attempt number `attempt` (1-based) failed with `err`.
    fn classify(&self, err: &Error, attempt: u32, idempotency: Idempotency, jitter: f64) -> RetryAction;
}

impl Classify for RetryPolicy {
    fn classify(&self, err: &Error, attempt: u32, idempotency: Idempotency, jitter: f64) -> RetryAction {
        self.decide(failure(err), attempt, idempotency, jitter)
    }
}

fn failure(err: &Error) -> Failure {
    match err.class() {
        // a throttled request was refused, not processed: safe to send again, even a create
        ErrorClass::RateLimited => Failure::Throttled { retry_after: err.retry_after() },
        ErrorClass::Transient | ErrorClass::Server => {
            Failure::Transient { retry_after: err.retry_after(), outcome: err.outcome() }
        }
        _ => Failure::Final,
    }
}
