//! The client's one error type, its classification, and the parsing of Autotask error bodies.
//!
//! Autotask reports failures in two shapes (autotask-api.md §2.11): the REST layer's
//! `{"errors":["…", …]}` (strings, occasionally `{"message":"…"}` objects) and ASP.NET's
//! `{"Message":"…"}` (405, default 401). Status alone is not enough: a 500 can be a validation
//! failure, a bad integration code (auth) or a thread-limit rejection, so [`classify_response`]
//! looks at both status and text.
//!
//! Every error records, smithy-style, whether the request **may have been processed**
//! ([`Outcome`]): that is what decides if a failed create must be looked up before it is tried
//! again. No variant ever holds a credential: headers are never copied into errors.

use std::time::Duration;

use serde_json::Value;
use ticketing_core::ports::{PortError, PortErrorKind};

/// Upper bound on the raw body kept in an error (bytes); longer bodies are cut.
pub const MAX_KEPT_BODY: usize = 4096;

/// What kind of failure an error is, independent of how it reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Credentials rejected: HTTP 401, or 500 `IntegrationCode is invalid.`.
    Auth,
    /// HTTP 403: the API user's security level does not allow this.
    Forbidden,
    /// HTTP 404 (or `{"item":null}` where a single item was required).
    NotFound,
    /// HTTP 405 with ASP.NET's `Message` (for instance GET on a POST-only paging URL).
    MethodNotAllowed,
    /// The zone lookup did not know the user (500 `Zone information could not be determined`).
    ZoneNotFound,
    /// The server rejected the request's content: 400 with an `errors` array, or 500 with an
    /// `errors` array whose text is a validation refusal ([`is_validation_refusal`]).
    Validation,
    /// HTTP 429: the hourly request threshold (or an unspecified throttle), or our own local
    /// budget refusing to send.
    RateLimited,
    /// A thread-limit rejection: 429 or any status whose text mentions `Itgenatr005` or a
    /// "thread threshold".
    ThreadLimited,
    /// Worth retrying: 502/503/504, connect failures, timeouts, connections lost mid-request.
    Transient,
    /// Another 5xx: no usable message, or a 500 whose `errors` are not a validation refusal
    /// (it MAY have been processed).
    Server,
    /// The request could not be built or was refused locally (bad query, host not allowed).
    Invalid,
    /// A success status whose body could not be read, or anything else.
    Other,
}

pub use ticketing_core::retry::Outcome;

/// An HTTP error answer from Autotask, with its status and the server's own messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// Classification from status and text.
    pub class: ErrorClass,
    /// The server's messages: every entry of `errors`, or the single `Message`.
    pub messages: Vec<String>,
    /// The raw body (cut to [`MAX_KEPT_BODY`] bytes).
    pub body: String,
    /// The `Retry-After` the server sent, already converted to a wait.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "autotask answered http {} ({:?})", self.status, self.class)?;
        if !self.messages.is_empty() {
            write!(f, ": {}", self.messages.join(" | "))?;
        }
        Ok(())
    }
}

/// Everything that can go wrong talking to Autotask.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be built (bad query, bad URL, bad configuration). Never sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A URL (zone answer or `nextPageUrl`) points at a host not on the allow-list, so
    /// credentials were not attached and nothing was sent.
    #[error("host not allowed: {url}")]
    HostNotAllowed {
        /// The refused URL.
        url: String,
    },
    /// The local hourly budget is spent; nothing was sent.
    #[error("request budget exhausted ({used}/{limit} this hour)")]
    BudgetExhausted {
        /// Requests counted in the current window.
        used: u64,
        /// The budget.
        limit: u64,
        /// When the window frees up.
        retry_after: Option<Duration>,
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
    /// Autotask answered with an error status.
    #[error("{0}")]
    Api(ApiError),
    /// Autotask answered with a success status but the body was not what the API promises.
    #[error("unexpected response (http {status}): {message}")]
    Decode {
        /// HTTP status code.
        status: u16,
        /// What did not parse.
        message: String,
        /// The raw body (cut to [`MAX_KEPT_BODY`] bytes).
        body: String,
    },
}

impl Error {
    /// The failure's class.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::InvalidRequest(_) | Self::HostNotAllowed { .. } => ErrorClass::Invalid,
            Self::BudgetExhausted { .. } => ErrorClass::RateLimited,
            Self::Connect(_) | Self::Timeout(_) | Self::Dispatch(_) => ErrorClass::Transient,
            Self::Api(e) => e.class,
            Self::Decode { .. } => ErrorClass::Other,
        }
    }

    /// Whether the server may have acted on the request.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::InvalidRequest(_) | Self::HostNotAllowed { .. } | Self::BudgetExhausted { .. } | Self::Connect(_) => {
                Outcome::NotSent
            }
            Self::Timeout(_) | Self::Dispatch(_) | Self::Decode { .. } => Outcome::Unknown,
            Self::Api(e) => match e.class {
                ErrorClass::Transient | ErrorClass::Server => Outcome::Unknown,
                _ => Outcome::Rejected,
            },
        }
    }

    /// The wait the server (or the local budget) asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api(e) => e.retry_after,
            Self::BudgetExhausted { retry_after, .. } => *retry_after,
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

    /// The server's own messages (empty when it gave none).
    pub fn messages(&self) -> &[String] {
        match self {
            Self::Api(e) => &e.messages,
            _ => &[],
        }
    }

    /// Converts a transport error from reqwest, keeping whether the request may have been sent.
    pub(crate) fn from_reqwest(err: &reqwest::Error) -> Self {
        // URLs never carry credentials here (they travel in headers), but keep messages short
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

/// Extracts the server's messages from an error body: every entry of `errors` (strings, or
/// objects with `message`/`Message`), else `Message`/`message`. Not JSON: the trimmed text itself,
/// when non-empty.
pub fn parse_error_messages(body: &str) -> Vec<String> {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return Vec::new();
    }
    let Ok(value) = serde_json::from_str::<Value>(trimmed) else {
        return vec![keep_body(trimmed)];
    };
    let mut out = Vec::new();
    if let Some(obj) = value.as_object() {
        for key in ["errors", "Errors"] {
            if let Some(errors) = obj.get(key).and_then(Value::as_array) {
                for e in errors {
                    match e {
                        Value::String(s) => out.push(s.clone()),
                        Value::Object(o) => {
                            if let Some(m) = o.get("message").or_else(|| o.get("Message")).and_then(Value::as_str) {
                                out.push(m.to_owned());
                            } else {
                                out.push(e.to_string());
                            }
                        }
                        other => out.push(other.to_string()),
                    }
                }
            }
        }
        if out.is_empty() {
            for key in ["Message", "message"] {
                if let Some(m) = obj.get(key).and_then(Value::as_str) {
                    out.push(m.to_owned());
                    break;
                }
            }
        }
    }
    out
}

/// Classifies an error answer from its status and the server's messages (a pure function).
/// `structured` says whether the messages came from a JSON error body: an HTML 500 page from a
/// proxy is not a validation answer.
pub fn classify_response(status: u16, messages: &[String], structured: bool) -> ErrorClass {
    let text = messages.join("\n").to_ascii_lowercase();
    if text.contains("itgenatr005") || text.contains("thread threshold") {
        return ErrorClass::ThreadLimited;
    }
    match status {
        429 => ErrorClass::RateLimited,
        401 => ErrorClass::Auth,
        403 => ErrorClass::Forbidden,
        404 => ErrorClass::NotFound,
        405 => ErrorClass::MethodNotAllowed,
        502..=504 => ErrorClass::Transient,
        400 | 500 if text.contains("integrationcode is invalid") => ErrorClass::Auth,
        500 if text.contains("zone information could not be determined") => ErrorClass::ZoneNotFound,
        400 if structured && !messages.is_empty() => ErrorClass::Validation,
        500 if structured && is_validation_refusal(&text) => ErrorClass::Validation,
        400..=499 => ErrorClass::Other,
        _ => ErrorClass::Server,
    }
}

/// Wordings by which Autotask refuses a request's content (lower case; autotask-api.md §2.11
/// and §7.8–7.11). Autotask answers business and validation failures with `500 {"errors":[…]}`,
/// but a 500 with `errors` can also be a genuine server fault ("An unexpected error has
/// occurred", a database timeout): only a message matching one of these is taken as a refusal.
/// Anything else stays a server error, whose outcome is unknown.
pub const VALIDATION_MARKERS: &[&str] = &[
    "is required",                           // `dueDateTime is required.; on record number [0].` (live)
    "on record number [",                    // the suffix of the live required-field texts
    "does not reference an existing entity", // invalid picklist value (live)
    "does not exist or is invalid",          // reference errors, both formats (live)
    "when assigning a resource",             // resource without role (live)
    "data violation",                        // queue/resource rule (SOAP ancestor)
    "exceeds the maximum length",            // lengths (modelled)
    "does not belong to",                    // sub-issue type vs issue type (modelled)
    "not found.",                            // `Ticket with id N not found.` on PATCH (modelled)
    "does not match",                        // note ticketID vs parent (modelled)
    "is invalid",                            // `Impersonation resource is invalid.` and the like
    "invalid json",                          // unparseable body (modelled)
    "invalid query",                         // query syntax (modelled)
    "invalid operator",                      // unknown query operator (modelled)
    "is not queryable",                      // non-queryable field (modelled)
    "unable to find",                        // unknown field in a query (modelled)
    "only one user-defined field",           // two UDF conditions (modelled)
    "queries are limited to",                // 500 OR conditions (SOAP)
    "maxrecords must be",                    // page size (modelled)
    "must be empty or 0",                    // id on create (modelled)
    "does not exist.",                       // unknown UDF name (modelled)
    "is not a valid",                        // bad date-time value (modelled)
    "must be an array",                      // IncludeFields shape (modelled)
    "invalid paging",                        // bad nextPageUrl paging parameter (modelled)
];

/// Whether a lower-cased error text is Autotask refusing the request's content.
pub fn is_validation_refusal(text: &str) -> bool {
    VALIDATION_MARKERS.iter().any(|m| text.contains(m))
}

/// Builds the [`Error::Api`] for an error answer.
pub fn api_error(status: u16, body: &str, retry_after: Option<Duration>) -> Error {
    let messages = parse_error_messages(body);
    let structured = serde_json::from_str::<Value>(body.trim()).is_ok_and(|v| v.is_object());
    let class = classify_response(status, &messages, structured);
    Error::Api(ApiError { status, class, messages, body: keep_body(body), retry_after })
}

impl From<&Error> for PortError {
    fn from(err: &Error) -> Self {
        let kind = match err.class() {
            ErrorClass::Auth | ErrorClass::Forbidden => PortErrorKind::Auth,
            ErrorClass::RateLimited | ErrorClass::ThreadLimited => PortErrorKind::RateLimited,
            // a bare 5xx or an unreadable success MAY have been processed: the daemon must treat
            // it like a transient failure (look up before creating again)
            ErrorClass::Transient | ErrorClass::Server => PortErrorKind::Transient,
            ErrorClass::NotFound => PortErrorKind::NotFound,
            ErrorClass::Validation | ErrorClass::Invalid | ErrorClass::MethodNotAllowed => PortErrorKind::Invalid,
            ErrorClass::ZoneNotFound => PortErrorKind::Auth,
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
