//! The client's one error type, its classification, and the parsing of Halo's error bodies.
//!
//! Halo's authorisation server answers OAuth2 errors as `{"error":"invalid_client",
//! "error_description":"…"}` (verified: public clients special-case `invalid_client`); the
//! resource server's error bodies are not documented publicly, so [`parse_error_body`] reads
//! whatever it finds: `error`/`error_description`, `message`/`Message`, an `errors` list or map,
//! or plain text (modelled). [`classify_response`] decides from the status.
//!
//! Every error records, smithy-style, whether the request **may have been processed**
//! ([`Outcome`]): that decides whether a failed create must be looked up before it is tried
//! again. No variant ever holds a credential: the client secret travels only in the token
//! request's form body, the access token only in a header, neither is copied into an error, and
//! the token endpoint's success body (which holds the token) is never kept.

use std::time::Duration;

use serde_json::Value;
use ticketing_core::ports::{PortError, PortErrorKind};
pub use ticketing_core::retry::Outcome;

/// Upper bound on the raw body kept in an error (bytes); longer bodies are cut.
pub const MAX_KEPT_BODY: usize = 4096;

/// What kind of failure an error is, independent of how it reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// HTTP 401 (bad client id or secret, an expired or revoked token after one refresh), or a
    /// token request refused as `invalid_client`/`unauthorized_client`.
    Auth,
    /// HTTP 403: the API application's permissions do not allow this.
    Forbidden,
    /// HTTP 404 (record or URL not found).
    NotFound,
    /// HTTP 400, 405, 415 or 422: the request's content was refused.
    Validation,
    /// HTTP 409.
    Conflict,
    /// HTTP 429 (with `Retry-After` when the server sends one).
    RateLimited,
    /// Worth retrying: 408, 502/503/504, connect failures, timeouts, connections lost mid-request.
    Transient,
    /// Another 5xx: it MAY have been processed.
    Server,
    /// The request could not be built or was refused locally.
    Invalid,
    /// A success status whose body could not be read, an update the answer does not show.
    Other,
}

/// An HTTP error answer from Halo, with its status and the server's own messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// Classification.
    pub class: ErrorClass,
    /// What was called (`POST /api/Tickets`, `POST /auth/token`), without query or host.
    pub call: String,
    /// The OAuth2 `error` code (`invalid_client`) when there is one.
    pub code: Option<String>,
    /// The server's messages (`error_description`, `message`, each `errors` entry).
    pub messages: Vec<String>,
    /// The raw body (cut to [`MAX_KEPT_BODY`] bytes).
    pub body: String,
    /// The `Retry-After` the server sent, already converted to a wait.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "halopsa answered http {} to {} ({:?})", self.status, self.call, self.class)?;
        if let Some(c) = &self.code {
            write!(f, ": {c}")?;
        }
        if !self.messages.is_empty() {
            write!(f, ": {}", self.messages.join(" | "))?;
        }
        Ok(())
    }
}

/// Everything that can go wrong talking to Halo.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be built (bad URL, bad configuration, a value the API cannot
    /// take). Never sent. The message names the field.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The connection could not be established. The request was not sent.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The request timed out. It MAY have been sent and processed.
    #[error("request timed out: {0}")]
    Timeout(String),
    /// The connection failed after the request was (possibly) sent. It MAY have been processed.
    #[error("transport error: {0}")]
    Dispatch(String),
    /// Halo answered with an error status.
    #[error("{0}")]
    Api(ApiError),
    /// Halo answered with a success status but the body was not what the API promises.
    #[error("unexpected response (http {status}) to {call}: {message}")]
    Decode {
        /// HTTP status code.
        status: u16,
        /// What was called.
        call: String,
        /// What did not parse (names the field).
        message: String,
        /// The raw body (cut; empty for the token endpoint, whose body holds the token).
        body: String,
    },
    /// An update answered with success but the returned ticket does not show the change.
    #[error("update of {what} answered success without applying it: {detail}")]
    NotApplied {
        /// What was updated (`ticket 42 status_id`).
        what: String,
        /// What the answer showed instead.
        detail: String,
    },
}

impl Error {
    /// The failure's class.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::InvalidRequest(_) => ErrorClass::Invalid,
            Self::Connect(_) | Self::Timeout(_) | Self::Dispatch(_) => ErrorClass::Transient,
            Self::Api(e) => e.class,
            Self::Decode { .. } | Self::NotApplied { .. } => ErrorClass::Other,
        }
    }

    /// Whether the server may have acted on the request.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::InvalidRequest(_) | Self::Connect(_) => Outcome::NotSent,
            Self::Timeout(_) | Self::Dispatch(_) | Self::Decode { .. } => Outcome::Unknown,
            Self::NotApplied { .. } => Outcome::Rejected,
            Self::Api(e) => match e.class {
                ErrorClass::Transient | ErrorClass::Server => Outcome::Unknown,
                _ => Outcome::Rejected,
            },
        }
    }

    /// The wait the server asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api(e) => e.retry_after,
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(e) => Some(e.status),
            Self::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Converts a transport error from reqwest, keeping whether the request may have been sent.
    /// URLs carry no credential (the token goes in a header, the secret in a form body), but
    /// they are left out to keep messages short.
    pub(crate) fn from_reqwest(err: &reqwest::Error) -> Self {
        let mut text = err.to_string();
        if let Some(url) = err.url() {
            text = text.replace(&format!(" ({url})"), "").replace(url.as_str(), "<url>");
        }
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        if err.is_timeout() {
            Self::Timeout(text)
        } else if err.is_connect() {
            Self::Connect(text)
        } else if err.is_builder() {
            Self::InvalidRequest(text)
        } else {
            Self::Dispatch(text)
        }
    }
}

/// Cuts a body to [`MAX_KEPT_BODY`] bytes on a char boundary.
pub(crate) fn keep_body(body: &str) -> String {
    if body.len() <= MAX_KEPT_BODY {
        return body.to_owned();
    }
    let mut end = MAX_KEPT_BODY;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}

/// What an error body says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorBody {
    /// The OAuth2 `error` code.
    pub code: Option<String>,
    /// The messages, in body order.
    pub messages: Vec<String>,
}

/// Parses an error body (a pure function). Not JSON: the trimmed text itself, when non-empty.
pub fn parse_error_body(body: &str) -> ErrorBody {
    let trimmed = body.trim();
    let mut out = ErrorBody::default();
    if trimmed.is_empty() {
        return out;
    }
    let value = match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(o)) => o,
        Ok(Value::String(s)) => {
            out.messages.push(keep_body(&s));
            return out;
        }
        _ => {
            out.messages.push(keep_body(trimmed));
            return out;
        }
    };
    let text = |k: &str| value.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).and_then(|(_, v)| v.as_str());
    out.code = text("error").map(str::to_owned);
    for k in ["error_description", "message", "title", "detail"] {
        if let Some(m) = text(k).filter(|m| !m.is_empty()) {
            out.messages.push(m.to_owned());
        }
    }
    match value.iter().find(|(k, _)| k.eq_ignore_ascii_case("errors")).map(|(_, v)| v) {
        Some(Value::Array(list)) => {
            for e in list {
                match e {
                    Value::String(s) => out.messages.push(s.clone()),
                    other => out.messages.push(other.to_string()),
                }
            }
        }
        Some(Value::Object(map)) => {
            for (field, v) in map {
                let msgs: Vec<String> = match v {
                    Value::Array(a) => {
                        a.iter().map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned)).collect()
                    }
                    Value::String(s) => vec![s.clone()],
                    other => vec![other.to_string()],
                };
                for m in msgs {
                    out.messages.push(format!("{field}: {m}"));
                }
            }
        }
        _ => {}
    }
    out
}

/// Classifies an error answer (a pure function).
pub fn classify_response(status: u16, body: &ErrorBody) -> ErrorClass {
    match status {
        400 if matches!(body.code.as_deref(), Some("invalid_client" | "unauthorized_client")) => ErrorClass::Auth,
        400 | 405 | 415 | 422 => ErrorClass::Validation,
        401 => ErrorClass::Auth,
        403 => ErrorClass::Forbidden,
        404 | 410 => ErrorClass::NotFound,
        409 => ErrorClass::Conflict,
        429 => ErrorClass::RateLimited,
        408 | 502..=504 => ErrorClass::Transient,
        500..=599 => ErrorClass::Server,
        _ => ErrorClass::Other,
    }
}

/// Builds the [`Error::Api`] for an error answer to `call`.
pub fn api_error(status: u16, call: &str, body: &str, retry_after: Option<Duration>) -> Error {
    let parsed = parse_error_body(body);
    let class = classify_response(status, &parsed);
    Error::Api(ApiError {
        status,
        class,
        call: call.to_owned(),
        code: parsed.code,
        messages: parsed.messages,
        body: keep_body(body),
        retry_after,
    })
}

impl From<&Error> for PortError {
    fn from(err: &Error) -> Self {
        let kind = match err.class() {
            ErrorClass::Auth | ErrorClass::Forbidden => PortErrorKind::Auth,
            ErrorClass::RateLimited => PortErrorKind::RateLimited,
            // a bare 5xx or an unreadable success MAY have been processed: the daemon treats it
            // like a transient failure (looks up before creating again); a conflict clears up
            ErrorClass::Transient | ErrorClass::Server | ErrorClass::Conflict => PortErrorKind::Transient,
            ErrorClass::NotFound => PortErrorKind::NotFound,
            ErrorClass::Validation | ErrorClass::Invalid => PortErrorKind::Invalid,
            ErrorClass::Other if err.outcome() == Outcome::Unknown => PortErrorKind::Transient,
            ErrorClass::Other => PortErrorKind::Other,
        };
        Self::new(kind, err.to_string()).with_retry_after(err.retry_after())
    }
}

impl From<Error> for PortError {
    fn from(err: Error) -> Self {
        Self::from(&err)
    }
}
