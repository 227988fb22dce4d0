//! Autotask's side of the shared retry policy ([`ticketing_core::retry`]): how its errors fail.
//!
//! Throttling (429, the thread-limit text) is retried after the wait; transient failures
//! (connect errors, timeouts, lost connections, 502/503/504) with backoff, within what their
//! outcome and the request's idempotency allow. A spent local budget is not waited out inside a
//! call.

use std::time::Duration;

use ticketing_core::retry::Failure;
pub use ticketing_core::retry::{Idempotency, RetryAction, RetryPolicy, parse_retry_after};

use crate::error::{Error, ErrorClass};

/// The policy Autotask clients start with: a `Retry-After` waited out up to 2 minutes.
pub fn default_policy() -> RetryPolicy {
    RetryPolicy::standard(Duration::from_secs(120))
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
        // the local budget already knows the window is spent: waiting inside a call is wrong
        ErrorClass::RateLimited if matches!(err, Error::BudgetExhausted { .. }) => Failure::Final,
        // a throttled request was refused, not processed: safe to send again, even a create
        ErrorClass::RateLimited | ErrorClass::ThreadLimited => Failure::Throttled { retry_after: err.retry_after() },
        ErrorClass::Transient => Failure::Transient { retry_after: err.retry_after(), outcome: err.outcome() },
        _ => Failure::Final,
    }
}
