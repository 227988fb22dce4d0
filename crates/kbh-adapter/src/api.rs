//! The modelled Business Hub wire format: every path and every JSON field name lives here.
//!
//! Business Hub has no public REST reference (`business-hub-api.md` §1), so section 2 of that
//! note is our model **\[M\]**. Keeping it in this one module means a real API replaces it in one
//! place: the rest of the crate only sees the DTOs below and the path helpers.

use chrono::{DateTime, Utc};
use reqwest::Url;
use serde::{Deserialize, Serialize};

/// `POST` login endpoint.
pub(crate) const AUTH_TOKEN_PATH: [&str; 4] = ["api", "v1", "auth", "token"];

/// Largest `limit` the API accepts.
pub(crate) const MAX_LIMIT: u32 = 500;

/// Product code of Endpoint Security Cloud in `companies[].products`.
pub(crate) const PRODUCT_KES_CLOUD: &str = "kes_cloud";
/// Product code of Security for Office 365 in `companies[].products`.
pub(crate) const PRODUCT_KSMO365: &str = "ksmo365";

/// A collection this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    /// `/api/v1/companies`
    Companies,
    /// `/api/v1/companies/{id}/devices`
    Devices,
    /// `/api/v1/companies/{id}/events`
    Events,
    /// `/api/v1/companies/{id}/o365/events`
    O365Events,
    /// `/api/v1/companies/{id}/o365/issues`
    O365Issues,
}

/// Builds `base` + the path segments, percent-encoding each segment (a company id is data, not a
/// path fragment). A path prefix on the base URL (`https://host/kbh/`) is kept.
pub(crate) fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty();
        path.extend(segments);
    }
    url
}

/// The URL of a collection (without query).
pub(crate) fn resource_url(base: &Url, resource: Resource, company: &str) -> Url {
    match resource {
        Resource::Companies => endpoint(base, &["api", "v1", "companies"]),
        Resource::Devices => endpoint(base, &["api", "v1", "companies", company, "devices"]),
        Resource::Events => endpoint(base, &["api", "v1", "companies", company, "events"]),
        Resource::O365Events => endpoint(base, &["api", "v1", "companies", company, "o365", "events"]),
        Resource::O365Issues => endpoint(base, &["api", "v1", "companies", company, "o365", "issues"]),
    }
}

/// `{"items":[...],"next_cursor":<string|null>}`. Items stay raw JSON so that one bad record
/// can be reported and skipped without losing the page.
#[derive(Debug, Deserialize)]
pub(crate) struct PageDto {
    pub(crate) items: Vec<serde_json::Value>,
    #[serde(default)]
    pub(crate) next_cursor: Option<String>,
}

/// `{"error":{"code","message"}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBodyDto {
    pub(crate) error: ErrorDetailDto,
}

/// The inner part of [`ErrorBodyDto`].
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorDetailDto {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
}

/// Login request body. Not `Debug`: it carries the password.
#[derive(Serialize)]
pub(crate) struct LoginRequestDto<'a> {
    pub(crate) email: &'a str,
    pub(crate) password: &'a str,
}

/// Login answer. Not `Debug`: it carries the token.
#[derive(Deserialize)]
pub(crate) struct LoginResponseDto {
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) token_type: Option<String>,
    #[serde(default)]
    pub(crate) expires_in: Option<u64>,
}

/// One company.
#[derive(Debug, Deserialize)]
pub(crate) struct CompanyDto {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) products: Vec<String>,
}

/// One Endpoint Security Cloud device.
#[derive(Debug, Deserialize)]
pub(crate) struct DeviceDto {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) os: Option<String>,
    #[serde(default)]
    pub(crate) last_seen: Option<DateTime<Utc>>,
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) status_descriptions: Vec<StatusDescriptionDto>,
}

/// One active status description of a device, with its own level.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusDescriptionDto {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) text: String,
    pub(crate) status: String,
}

/// One Endpoint Security Cloud event.
#[derive(Debug, Deserialize)]
pub(crate) struct EventDto {
    pub(crate) id: String,
    /// Required (a record without it is malformed); the cursor reads it from the raw record so
    /// that skipped records advance it too.
    #[allow(dead_code)]
    pub(crate) seq: u64,
    pub(crate) occurred_at: DateTime<Utc>,
    pub(crate) severity: String,
    pub(crate) event_type: String,
    #[serde(default)]
    pub(crate) display_name: String,
    #[serde(default)]
    pub(crate) device_id: Option<String>,
    #[serde(default)]
    pub(crate) device_name: Option<String>,
    #[serde(default)]
    pub(crate) description: String,
}

/// One Security for Office 365 event.
#[derive(Debug, Deserialize)]
pub(crate) struct O365EventDto {
    pub(crate) id: String,
    /// Required (a record without it is malformed); the cursor reads it from the raw record so
    /// that skipped records advance it too.
    #[allow(dead_code)]
    pub(crate) seq: u64,
    pub(crate) occurred_at: DateTime<Utc>,
    pub(crate) event_type: String,
    #[serde(default)]
    pub(crate) display_name: String,
    #[serde(default)]
    pub(crate) mailbox: Option<String>,
    #[serde(default)]
    pub(crate) description: String,
}

/// One Security for Office 365 issue.
#[derive(Debug, Deserialize)]
pub(crate) struct IssueDto {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) active: bool,
    #[serde(default)]
    pub(crate) since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub(crate) resolved_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[allow(dead_code)] // part of the wire format; the core's IssueState has no message field
    pub(crate) message: String,
}

/// A time as the wire spells it in a query (`2026-11-20T09:10:11Z`).
pub(crate) fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Event severities as the wire spells them.
pub(crate) fn parse_severity(s: &str) -> Option<ticketing_core::model::Severity> {
    use ticketing_core::model::Severity;
    match s {
        "Critical" => Some(Severity::Critical),
        "FunctionalFailure" => Some(Severity::FunctionalFailure),
        "Warning" => Some(Severity::Warning),
        "Info" => Some(Severity::Info),
        _ => None,
    }
}

/// Device status as the wire spells it.
pub(crate) fn parse_computer_status(s: &str) -> Option<ticketing_core::model::ComputerStatus> {
    use ticketing_core::model::ComputerStatus;
    match s {
        "OK" => Some(ComputerStatus::Ok),
        "Warning" => Some(ComputerStatus::Warning),
        "Critical" => Some(ComputerStatus::Critical),
        _ => None,
    }
}

/// A description's level as the wire spells it (`OK` is not a level a description can raise).
pub(crate) fn parse_level(s: &str) -> Option<ticketing_core::model::StatusLevel> {
    use ticketing_core::model::StatusLevel;
    match s {
        "Warning" => Some(StatusLevel::Warning),
        "Critical" => Some(StatusLevel::Critical),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_keeps_prefix_and_encodes_segments() {
        let base = Url::parse("https://hub.example/kbh/").unwrap();
        let url = resource_url(&base, Resource::O365Issues, "c 1/x");
        assert_eq!(url.as_str(), "https://hub.example/kbh/api/v1/companies/c%201%2Fx/o365/issues");
        let base = Url::parse("http://127.0.0.1:9").unwrap();
        assert_eq!(resource_url(&base, Resource::Companies, "").as_str(), "http://127.0.0.1:9/api/v1/companies");
        assert_eq!(endpoint(&base, &AUTH_TOKEN_PATH).as_str(), "http://127.0.0.1:9/api/v1/auth/token");
    }
}
