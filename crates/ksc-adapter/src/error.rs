//! The adapter's error type, its classification, and its reduction to the core's
//! [`PortError`].

use std::fmt;

use serde::Deserialize;
use ticketing_core::ports::{PortError, PortErrorKind};

/// The server's own error object: the `PxgError` member of a failed call's body
/// (`ksc-api.md` §2). Only `code`, `module` and `message` are reliably present.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct PxgError {
    /// Numeric error code.
    #[serde(default)]
    pub code: i64,
    /// Module that raised it (e.g. `KLSTD`).
    #[serde(default)]
    pub module: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// Sub-code, when given.
    #[serde(default)]
    pub subcode: Option<i64>,
    /// Source file on the server, when given.
    #[serde(default)]
    pub file: Option<String>,
    /// Source line on the server, when given.
    #[serde(default)]
    pub line: Option<i64>,
}

impl fmt::Display for PxgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.module, self.code, self.message)
    }
}

/// Everything that can go wrong talking to Security Center.
///
/// Each variant keeps the HTTP status and the server's own words where there are any; none
/// ever contains the password (the `Authorization` header is the only place it goes, and no
/// variant carries a header).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KscError {
    /// The connection could not be made or broke. The request MAY have been sent.
    #[error("cannot reach security center calling {method}: {message}")]
    Connect {
        /// The API method (`Class.Method`).
        method: String,
        /// Transport detail.
        message: String,
    },
    /// The server's certificate was refused (not pinned, wrong host name, untrusted). The
    /// request was not sent. Not retried: only the configuration (`ca_file`, `cert_sha256`,
    /// `accept_invalid_hostnames`) or the server's certificate can change it.
    #[error("security center certificate refused calling {method}: {message}")]
    Tls {
        /// The API method.
        method: String,
        /// Transport detail, with the server's SHA-256 fingerprint when it was not pinned.
        message: String,
    },
    /// No answer in time. The request MAY have been received.
    #[error("timed out calling {method}")]
    Timeout {
        /// The API method.
        method: String,
    },
    /// Credentials rejected (`Session.StartSession` answered 401/403, or a call still did so
    /// after a fresh session).
    #[error("security center rejected the credentials ({status}): {body}")]
    Auth {
        /// HTTP status.
        status: u16,
        /// The server's plain-text body (truncated).
        body: String,
    },
    /// The session was gone (401/403 on a call) and a new session did not help.
    #[error("security center session expired calling {method} ({status})")]
    SessionExpired {
        /// The API method.
        method: String,
        /// HTTP status.
        status: u16,
    },
    /// The server answered with a `PxgError`.
    #[error("security center error calling {method} (http {status}): {error}")]
    Api {
        /// The API method.
        method: String,
        /// HTTP status (500 in the simulator; parsed whatever it is).
        status: u16,
        /// The server's error object.
        error: Box<PxgError>,
    },
    /// A non-200 answer without a `PxgError` body.
    #[error("security center answered http {status} calling {method}: {body}")]
    Http {
        /// The API method.
        method: String,
        /// HTTP status.
        status: u16,
        /// The body (truncated).
        body: String,
    },
    /// The answer was not what the notes say it is.
    #[error("malformed answer to {method}: {detail}")]
    Malformed {
        /// The API method.
        method: String,
        /// What was wrong.
        detail: String,
    },
    /// The tenant id is not one of ours, or names a virtual server that does not exist.
    #[error("unknown tenant {0}")]
    UnknownTenant(String),
    /// The configuration is unusable (bad URL, unreadable CA bundle, bad cursor).
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// What kind of failure a [`KscError`] is, for retry and reporting decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Credentials rejected.
    Auth,
    /// Session gone even after re-login.
    SessionExpired,
    /// The thing asked for does not exist.
    NotFound,
    /// Connect failure, timeout, 5xx without a `PxgError`, 503 always: worth retrying.
    Transient,
    /// The server answered something unreadable.
    Malformed,
    /// The server refused the call with a `PxgError` (not retryable).
    Api,
    /// Throttled (429).
    RateLimited,
    /// Our own configuration or input is wrong.
    Config,
    /// The server's certificate was refused.
    Tls,
}

impl KscError {
    /// Classifies the error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Connect { .. } | Self::Timeout { .. } => ErrorClass::Transient,
            Self::Auth { .. } => ErrorClass::Auth,
            Self::SessionExpired { .. } => ErrorClass::SessionExpired,
            Self::Api { status: 503, .. } => ErrorClass::Transient,
            Self::Api { .. } => ErrorClass::Api,
            Self::Http { status: 404, .. } => ErrorClass::NotFound,
            Self::Http { status: 429, .. } => ErrorClass::RateLimited,
            Self::Http { status, .. } if *status >= 500 => ErrorClass::Transient,
            Self::Http { .. } => ErrorClass::Api,
            Self::Malformed { .. } => ErrorClass::Malformed,
            Self::UnknownTenant(_) => ErrorClass::NotFound,
            Self::Config(_) => ErrorClass::Config,
            Self::Tls { .. } => ErrorClass::Tls,
        }
    }

    /// Whether a read call failing this way may be repeated.
    pub fn is_transient(&self) -> bool {
        matches!(self.class(), ErrorClass::Transient | ErrorClass::RateLimited)
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Auth { status, .. }
            | Self::SessionExpired { status, .. }
            | Self::Api { status, .. }
            | Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's `PxgError`, when it sent one.
    pub fn pxg(&self) -> Option<&PxgError> {
        match self {
            Self::Api { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<KscError> for PortError {
    fn from(e: KscError) -> Self {
        let kind = match e.class() {
            ErrorClass::Auth => PortErrorKind::Auth,
            ErrorClass::SessionExpired | ErrorClass::Transient => PortErrorKind::Transient,
            ErrorClass::RateLimited => PortErrorKind::RateLimited,
            ErrorClass::NotFound => PortErrorKind::NotFound,
            ErrorClass::Config => PortErrorKind::Invalid,
            ErrorClass::Malformed | ErrorClass::Api | ErrorClass::Tls => PortErrorKind::Other,
        };
        Self::new(kind, e.to_string())
    }
}

/// Shortens a response body for an error message.
pub(crate) fn truncate_body(body: &str) -> String {
    const MAX: usize = 512;
    let body = body.trim();
    if body.len() <= MAX {
        return body.to_owned();
    }
    let mut end = MAX;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}
