//! The one error type of the Business Hub client, and its reduction to [`PortError`].

use std::time::Duration;

use ticketing_core::ports::{PortError, PortErrorKind};

/// Everything that can go wrong talking to Business Hub.
///
/// Messages never contain a credential: the token travels in a header and the password in a
/// request body, and neither is ever formatted into an error. Variants say whether the request
/// MAY have reached the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KbhError {
    /// The configuration is unusable (bad URL, bad CA certificate). Nothing was sent.
    #[error("invalid business hub configuration: {0}")]
    Config(String),
    /// A tenant id that is not a Business Hub one (`kbh:<company id>`). Nothing was sent.
    #[error("not a business hub tenant id: {0:?}")]
    Tenant(String),
    /// An event cursor this crate did not make. Nothing was sent.
    #[error("invalid business hub event cursor: {0:?}")]
    Cursor(String),
    /// The request timed out. It MAY have been sent and processed.
    #[error("business hub request timed out: {0}")]
    Timeout(String),
    /// The server's certificate was refused (not pinned, not trusted, or not valid for the
    /// host name). Nothing was sent: the request never left the TLS handshake. Not worth
    /// repeating until the configuration or the server changes.
    #[error("business hub certificate refused: {0}")]
    Tls(String),
    /// The connection could not be made or broke before an answer arrived. The request MAY have
    /// been sent (for a broken connection).
    #[error("cannot reach business hub: {0}")]
    Transport(String),
    /// The server answered with an error status; `code` and `message` are its own
    /// `{"error":{"code","message"}}` (or `unknown` and the start of the raw body).
    #[error("business hub answered {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The server's error code (`unauthorized`, `rate_limited`, …).
        code: String,
        /// The server's message.
        message: String,
        /// The `Retry-After` the server sent, if any.
        retry_after: Option<Duration>,
    },
    /// A success answer that is not the expected JSON.
    #[error("unexpected business hub response (status {status}): {message}")]
    Decode {
        /// HTTP status of the answer.
        status: u16,
        /// What did not parse.
        message: String,
    },
    /// A record of a list that must be complete (devices, issues) could not be read, so the
    /// list cannot be trusted.
    #[error("malformed business hub {what} record {id}: {reason}")]
    Malformed {
        /// Which kind of record (`device`, `issue`).
        what: &'static str,
        /// The record's id, as far as it could be read.
        id: String,
        /// What was wrong.
        reason: String,
    },
}

impl KbhError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's own error code, when it sent one.
    pub fn server_code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The `Retry-After` the server asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Classifies the error for the daemon.
    pub fn kind(&self) -> PortErrorKind {
        match self {
            Self::Config(_) | Self::Tls(_) => PortErrorKind::Other,
            Self::Tenant(_) | Self::Cursor(_) => PortErrorKind::Invalid,
            Self::Timeout(_) | Self::Transport(_) => PortErrorKind::Transient,
            Self::Api { status, .. } => match status {
                401 | 403 => PortErrorKind::Auth,
                404 => PortErrorKind::NotFound,
                429 => PortErrorKind::RateLimited,
                400 | 409 | 422 => PortErrorKind::Invalid,
                408 => PortErrorKind::Transient,
                s if *s >= 500 => PortErrorKind::Transient,
                _ => PortErrorKind::Other,
            },
            Self::Decode { .. } | Self::Malformed { .. } => PortErrorKind::Other,
        }
    }

    /// Whether a read that failed this way is worth repeating now (throttling and transient
    /// failures).
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), PortErrorKind::RateLimited | PortErrorKind::Transient)
    }
}

impl From<KbhError> for PortError {
    fn from(err: KbhError) -> Self {
        Self::new(err.kind(), err.to_string()).with_retry_after(err.retry_after())
    }
}

/// Formats a reqwest error with its causes, into one line. reqwest puts the URL in it, which
/// carries no credential (the token is a header, the password a body).
pub(crate) fn from_reqwest(err: &reqwest::Error) -> KbhError {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    if err.is_timeout() {
        KbhError::Timeout(message)
    } else if message.contains("invalid peer certificate") || message.contains(pinned_tls::UNPINNED) {
        KbhError::Tls(message)
    } else {
        KbhError::Transport(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> KbhError {
        KbhError::Api { status, code: "x".into(), message: "m".into(), retry_after: None }
    }

    #[test]
    fn classification_table() {
        let cases = [
            (api(400), PortErrorKind::Invalid),
            (api(401), PortErrorKind::Auth),
            (api(403), PortErrorKind::Auth),
            (api(404), PortErrorKind::NotFound),
            (api(429), PortErrorKind::RateLimited),
            (api(500), PortErrorKind::Transient),
            (api(503), PortErrorKind::Transient),
            (api(418), PortErrorKind::Other),
            (KbhError::Timeout("t".into()), PortErrorKind::Transient),
            (KbhError::Transport("t".into()), PortErrorKind::Transient),
            (KbhError::Tenant("x".into()), PortErrorKind::Invalid),
            (KbhError::Tls("x".into()), PortErrorKind::Other),
            (KbhError::Cursor("x".into()), PortErrorKind::Invalid),
            (KbhError::Decode { status: 200, message: "m".into() }, PortErrorKind::Other),
        ];
        for (err, kind) in cases {
            assert_eq!(err.kind(), kind, "{err}");
        }
    }

    #[test]
    fn port_error_keeps_status_code_message_and_wait() {
        let err = KbhError::Api {
            status: 429,
            code: "rate_limited".into(),
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(err.to_string(), "business hub answered 429 rate_limited: slow down");
        let port: PortError = err.into();
        assert_eq!(port.kind, PortErrorKind::RateLimited);
        assert_eq!(port.retry_after, Some(Duration::from_secs(7)));
        assert!(port.message.contains("429 rate_limited: slow down"));
    }
}
