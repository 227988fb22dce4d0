//! The client's one error type, its classification, and the parsing of ConnectWise error bodies.
//!
//! ConnectWise answers errors as `{"code":"…","message":"…","errors":[{"code","message","resource","field"}]}`
//! (connectwise-api.md: shape verified, the `errors` detail inferred) and throttling as
//! `429 {"error":"ConnectWiseAPI","message":"Too many requests. …"}` with `Retry-After` seconds.
//! [`classify_response`] decides from the status (and, for 500, from whether the body is a
//! structured validation refusal).
//!
//! Every error records, smithy-style, whether the request **may have been processed**
//! ([`Outcome`]): that decides if a failed create must be looked up before it is tried again. No
//! variant ever holds a credential: headers are never copied into errors, and URLs carry none.

use std::time::Duration;

use serde_json::Value;
use ticketing_core::ports::{PortError, PortErrorKind};

/// Upper bound on the raw body kept in an error (bytes); longer bodies are cut.
pub const MAX_KEPT_BODY: usize = 4096;

/// What kind of failure an error is, independent of how it reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// HTTP 401: bad company id, public or private key, or a missing/unknown `clientId`.
    Auth,
    /// HTTP 403: the API member's security role does not allow this.
    Forbidden,
    /// HTTP 404 (record or URL not found).
    NotFound,
    /// HTTP 400 or 405, or a 500 carrying field-level `errors`: the request's content was refused.
    Validation,
    /// HTTP 409: the record is in use or conflicts; worth trying again later.
    Conflict,
    /// HTTP 429 with (usually) `Retry-After`.
    RateLimited,
    /// Worth retrying: 502/503/504, connect failures, timeouts, connections lost mid-request.
    Transient,
    /// Another 5xx without field-level detail: it MAY have been processed.
    Server,
    /// The request could not be built or was refused locally (bad condition, host not allowed).
    Invalid,
    /// A success status whose body could not be read, a PATCH that changed nothing, or anything else.
    Other,
}

pub use ticketing_core::retry::Outcome;

/// An HTTP error answer from ConnectWise, with its status and the server's own messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// Classification.
    pub class: ErrorClass,
    /// The top-level `code` (`InvalidObject`, `NotFound`, `ConnectWiseAPI`, …) when there is one.
    pub code: Option<String>,
    /// The server's messages: the top-level `message`, then every `errors[].message` (with its
    /// `field` in front when given).
    pub messages: Vec<String>,
    /// The raw body (cut to [`MAX_KEPT_BODY`] bytes).
    pub body: String,
    /// The `Retry-After` the server sent, already converted to a wait.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connectwise answered http {} ({:?})", self.status, self.class)?;
        if !self.messages.is_empty() {
            write!(f, ": {}", self.messages.join(" | "))?;
        }
        Ok(())
    }
}

/// Everything that can go wrong talking to ConnectWise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be built (bad condition, bad URL, bad configuration). Never sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A URL (a discovered API host or a `Link` header) points at a host other than the
    /// configured one, so credentials were not attached and nothing was sent.
    #[error("host not allowed: {url}")]
    HostNotAllowed {
        /// The refused URL (it carries no credential).
        url: String,
    },
    /// The connection could not be established. The request was not sent.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The request timed out. It MAY have been sent and processed.
    #[error("request timed out: {0}")]
    Timeout(String),
    /// The connection failed after the request was (possibly) sent. It MAY have been processed.
    #[error("transport error: {0}")]
    Dispatch(String),
    /// ConnectWise answered with an error status.
    #[error("{0}")]
    Api(ApiError),
    /// ConnectWise answered with a success status but the body was not what the API promises.
    #[error("unexpected response (http {status}): {message}")]
    Decode {
        /// HTTP status code.
        status: u16,
        /// What did not parse.
        message: String,
        /// The raw body (cut to [`MAX_KEPT_BODY`] bytes).
        body: String,
    },
    /// A PATCH answered 200 but the returned record does not show the change (ConnectWise's
    /// "false 200", for instance for a sub-path patch). Nothing changed; sending it again as is
    /// will not help.
    #[error("patch of {what} answered 200 without applying it: {detail}")]
    NotApplied {
        /// What was patched (`ticket 42 status`).
        what: String,
        /// What the answer showed instead.
        detail: String,
    },
}

impl Error {
    /// The failure's class.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::InvalidRequest(_) | Self::HostNotAllowed { .. } => ErrorClass::Invalid,
            Self::Connect(_) | Self::Timeout(_) | Self::Dispatch(_) => ErrorClass::Transient,
            Self::Api(e) => e.class,
            Self::Decode { .. } | Self::NotApplied { .. } => ErrorClass::Other,
        }
    }

    /// Whether the server may have acted on the request.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::InvalidRequest(_) | Self::HostNotAllowed { .. } | Self::Connect(_) => Outcome::NotSent,
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
            Self::NotApplied { .. } => Some(200),
            _ => None,
        }
    }

    /// The server's own messages (empty when it gave none).
    pub fn messages(&self) -> &[String] {
        match self {
            Self::Api(e) => &e.messages,
            _ => &[],
        }
    }

    /// Converts a transport error from reqwest, keeping whether the request may have been sent.
    pub(crate) fn from_reqwest(err: &reqwest::Error) -> Self {
        // URLs carry no credential (Basic auth travels in a header), but keep messages short
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

/// What an error body says: top-level `code`, the messages, and whether it carried field-level
/// `errors` (a structured refusal).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorBody {
    /// Top-level `code` (or `error` of a 429 body).
    pub code: Option<String>,
    /// `message`, then each `errors[]` entry as `field: message` (or `message`).
    pub messages: Vec<String>,
    /// Whether `errors` held at least one entry.
    pub has_field_errors: bool,
}

/// Parses an error body (a pure function). Not JSON: the trimmed text itself, when non-empty.
pub fn parse_error_body(body: &str) -> ErrorBody {
    let trimmed = body.trim();
    let mut out = ErrorBody::default();
    if trimmed.is_empty() {
        return out;
    }
    let Ok(value) = serde_json::from_str::<Value>(trimmed) else {
        out.messages.push(keep_body(trimmed));
        return out;
    };
    let Some(obj) = value.as_object() else {
        out.messages.push(keep_body(trimmed));
        return out;
    };
    out.code = obj.get("code").or_else(|| obj.get("error")).and_then(Value::as_str).map(str::to_owned);
    if let Some(m) = obj.get("message").and_then(Value::as_str) {
        out.messages.push(m.to_owned());
    }
    if let Some(errors) = obj.get("errors").and_then(Value::as_array) {
        for e in errors {
            out.has_field_errors = true;
            let message = e.get("message").and_then(Value::as_str);
            let field = e.get("field").and_then(Value::as_str).filter(|f| !f.is_empty());
            match (field, message) {
                (Some(f), Some(m)) => out.messages.push(format!("{f}: {m}")),
                (None, Some(m)) => out.messages.push(m.to_owned()),
                _ => out.messages.push(e.to_string()),
            }
        }
    }
    out
}

/// Classifies an error answer (a pure function). A 500 with field-level `errors` is a refusal of
/// the content (ConnectWise uses 500 "when another error message has not been defined"); a bare
/// 500 MAY have been processed.
pub fn classify_response(status: u16, body: &ErrorBody) -> ErrorClass {
    match status {
        400 | 405 | 415 | 422 => ErrorClass::Validation,
        401 => ErrorClass::Auth,
        403 => ErrorClass::Forbidden,
        404 | 410 => ErrorClass::NotFound,
        409 => ErrorClass::Conflict,
        429 => ErrorClass::RateLimited,
        408 | 502..=504 => ErrorClass::Transient,
        500 if body.has_field_errors => ErrorClass::Validation,
        500..=599 => ErrorClass::Server,
        _ => ErrorClass::Other,
    }
}

/// Builds the [`Error::Api`] for an error answer.
pub fn api_error(status: u16, body: &str, retry_after: Option<Duration>) -> Error {
    let parsed = parse_error_body(body);
    let class = classify_response(status, &parsed);
    Error::Api(ApiError {
        status,
        class,
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
            // a bare 5xx or an unreadable success MAY have been processed: the daemon must treat
            // it like a transient failure (look up before creating again); a conflict clears up
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
