//! How to reach Business Hub: base URL, credentials, TLS, timeouts, paging and retries.

use std::time::Duration;

use reqwest::Url;
use ticketing_core::secret::Secret;

use crate::error::KbhError;

/// How the client obtains its bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KbhAuth {
    /// A static API token configured by the MSP. A 401 is final: the token is wrong.
    Token(Secret),
    /// The Business Hub account's e-mail and password, exchanged for a token at
    /// `POST /api/v1/auth/token`. When the token expires (a 401), the client logs in again once.
    Login {
        /// Account e-mail.
        email: String,
        /// Account password.
        password: Secret,
    },
}

/// When and how long to wait before repeating a failed read.
///
/// Only reads are repeated (every Business Hub call this crate makes is a read, plus the login,
/// which is safe to repeat). Throttling (429) waits for the server's `Retry-After`, capped at
/// [`RetryPolicy::max_retry_after`]; transient failures (5xx, 408, connect errors, timeouts)
/// back off exponentially from [`RetryPolicy::base_delay`] with full jitter, capped at
/// [`RetryPolicy::max_delay`]. After [`RetryPolicy::max_retries`] repeats the error is returned,
/// still carrying the server's `Retry-After` for the daemon's scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times a failed call is repeated (0: never).
    pub max_retries: u32,
    /// First backoff step for transient failures.
    pub base_delay: Duration,
    /// Longest backoff step for transient failures.
    pub max_delay: Duration,
    /// Longest wait honoured for a `Retry-After` (and the wait used when a 429 has none).
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// Production defaults: 3 repeats, 500 ms doubling up to 30 s, `Retry-After` up to 120 s.
    pub const STANDARD: Self = Self {
        max_retries: 3,
        base_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(30),
        max_retry_after: Duration::from_secs(120),
    };

    /// Never repeat: every failure goes straight to the caller.
    pub const NONE: Self =
        Self { max_retries: 0, base_delay: Duration::ZERO, max_delay: Duration::ZERO, max_retry_after: Duration::ZERO };

    /// For tests and demos: 3 repeats with waits of at most a few milliseconds.
    pub const FAST: Self = Self {
        max_retries: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_millis(10),
    };

    /// Decides what to do after failed attempt number `attempt` (0 for the first call).
    ///
    /// `jitter` is a number in `[0, 1)` (injected so the decision is a pure function); the
    /// backoff for transient failures is `jitter × min(max_delay, base_delay × 2^attempt)`.
    pub fn decide(&self, err: &KbhError, attempt: u32, jitter: f64) -> RetryAction {
        if attempt >= self.max_retries || !err.is_retryable() {
            return RetryAction::GiveUp;
        }
        if err.status() == Some(429) {
            let wanted = err.retry_after().unwrap_or(self.max_retry_after);
            return RetryAction::Wait(wanted.min(self.max_retry_after));
        }
        let step = self
            .base_delay
            .checked_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        RetryAction::Wait(step.mul_f64(jitter.clamp(0.0, 1.0)))
    }
}

/// The outcome of [`RetryPolicy::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAction {
    /// Wait this long, then repeat the call.
    Wait(Duration),
    /// Return the error to the caller.
    GiveUp,
}

/// Everything the client needs to reach one Business Hub account.
///
/// Built with [`KbhConfig::new`] (defaults below), then adjusted through its public fields.
/// `Debug` never shows the token or the password (they are [`Secret`]s).
#[derive(Debug, Clone)]
pub struct KbhConfig {
    /// Base URL, e.g. `https://hub.example` or the simulator's `http://127.0.0.1:PORT`.
    pub base_url: Url,
    /// Credentials.
    pub auth: KbhAuth,
    /// The daemon's `business_hub.ca_file`: PEM certificates, each of which is accepted as
    /// **the server's own certificate** exactly (a pin, so a self-signed certificate marked
    /// `CA:TRUE` works too), and which also serve as extra trusted CAs next to the built-in web
    /// roots (a private CA that issued the server's certificate). Host names are still checked.
    pub ca_pem: Option<Vec<u8>>,
    /// The daemon's `business_hub.cert_sha256`: the SHA-256 fingerprint of the server's
    /// certificate (`AB:CD:…`, plain hex or `sha256:…`, any case). When set, only pinned
    /// certificates are accepted (this one, and those of [`KbhConfig::ca_pem`]); web roots and
    /// CA chains no longer are.
    pub cert_sha256: Option<String>,
    /// The daemon's `business_hub.accept_invalid_hostnames`: skip the host-name check
    /// (default off; a warning is logged when on). The certificate itself is still verified.
    pub accept_invalid_hostnames: bool,
    /// Longest wait for a TCP (and TLS) connection to be established (default 10 s; must not
    /// be zero).
    pub connect_timeout: Duration,
    /// Longest wait for one whole request, connect to last byte of the answer (default 30 s;
    /// must not be zero). A retried call gets this much per attempt.
    pub request_timeout: Duration,
    /// `limit` used when reading whole lists (companies, devices, issues); 1..=500, default 100.
    pub page_size: u32,
    /// Retry policy for reads (default [`RetryPolicy::STANDARD`]).
    pub retry: RetryPolicy,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl KbhConfig {
    /// A configuration with defaults for everything but the URL and the credentials.
    pub fn new(base_url: &str, auth: KbhAuth) -> Result<Self, KbhError> {
        let base_url = Url::parse(base_url).map_err(|e| KbhError::Config(format!("base url {base_url:?}: {e}")))?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(KbhError::Config(format!("base url {base_url} is not an http(s) url")));
        }
        Ok(Self {
            base_url,
            auth,
            ca_pem: None,
            cert_sha256: None,
            accept_invalid_hostnames: false,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            page_size: 100,
            retry: RetryPolicy::STANDARD,
            user_agent: concat!("msp-ticketing-kbh-adapter/", env!("CARGO_PKG_VERSION")).to_owned(),
        })
    }

    /// Sets the pinned server certificate / extra CA (PEM, see [`KbhConfig::ca_pem`]).
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Pins the server certificate's SHA-256 fingerprint (see [`KbhConfig::cert_sha256`]).
    pub fn with_cert_sha256(mut self, fingerprint: impl Into<String>) -> Self {
        self.cert_sha256 = Some(fingerprint.into());
        self
    }

    /// Turns the host-name check off or on (see [`KbhConfig::accept_invalid_hostnames`]).
    pub fn with_accept_invalid_hostnames(mut self, accept: bool) -> Self {
        self.accept_invalid_hostnames = accept;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the whole-request timeout to `timeout` and caps the connect timeout at it: the
    /// one setting a configuration file offers (`business_hub.timeout_secs`).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self.connect_timeout = self.connect_timeout.min(timeout);
        self
    }

    /// Sets both timeouts.
    pub fn with_timeouts(mut self, connect: Duration, request: Duration) -> Self {
        self.connect_timeout = connect;
        self.request_timeout = request;
        self
    }

    /// Sets the page size used for whole lists (clamped to 1..=500).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, retry_after: Option<Duration>) -> KbhError {
        KbhError::Api { status, code: "c".into(), message: "m".into(), retry_after }
    }

    #[test]
    fn retry_decisions() {
        let p = RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(5),
        };
        let secs = Duration::from_secs;
        let ms = Duration::from_millis;
        let cases = [
            (api(429, Some(secs(2))), 0, 0.5, RetryAction::Wait(secs(2))),
            (api(429, Some(secs(60))), 0, 0.5, RetryAction::Wait(secs(5))),
            (api(429, None), 1, 0.5, RetryAction::Wait(secs(5))),
            (api(503, None), 0, 1.0, RetryAction::Wait(ms(100))),
            (api(500, None), 1, 1.0, RetryAction::Wait(ms(200))),
            (api(500, None), 2, 1.0, RetryAction::Wait(ms(300))),
            (api(500, None), 2, 0.5, RetryAction::Wait(ms(150))),
            (api(500, None), 3, 1.0, RetryAction::GiveUp),
            (KbhError::Timeout("t".into()), 0, 1.0, RetryAction::Wait(ms(100))),
            (KbhError::Transport("c".into()), 0, 0.0, RetryAction::Wait(ms(0))),
            (api(401, None), 0, 1.0, RetryAction::GiveUp),
            (api(404, None), 0, 1.0, RetryAction::GiveUp),
            (api(400, None), 0, 1.0, RetryAction::GiveUp),
            (KbhError::Decode { status: 200, message: "x".into() }, 0, 1.0, RetryAction::GiveUp),
        ];
        for (err, attempt, jitter, want) in cases {
            assert_eq!(p.decide(&err, attempt, jitter), want, "{err} attempt {attempt}");
        }
        assert_eq!(RetryPolicy::NONE.decide(&api(503, None), 0, 1.0), RetryAction::GiveUp);
        // huge attempt numbers do not overflow
        let big = RetryPolicy { max_retries: 100, ..p };
        assert_eq!(big.decide(&api(500, None), 40, 1.0), RetryAction::Wait(ms(300)));
    }

    #[test]
    fn config_rejects_bad_urls() {
        let auth = KbhAuth::Token(Secret::new("t"));
        assert!(matches!(KbhConfig::new("not a url", auth.clone()), Err(KbhError::Config(_))));
        assert!(matches!(KbhConfig::new("ftp://x", auth.clone()), Err(KbhError::Config(_))));
        let c = KbhConfig::new("http://127.0.0.1:1/", auth).unwrap();
        assert_eq!(c.page_size, 100);
        assert_eq!(c.retry, RetryPolicy::STANDARD);
    }
}
