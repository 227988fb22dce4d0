//! Wire models (DTOs): camelCase, every field optional, unknown fields kept in `extra`.
//!
//! These types stay at the edge: [`crate::sink`] converts them to and from the core's domain
//! types. Picklist ids are integers on entities but strings in metadata
//! ([`PicklistValueInfo::value`]), as on the real API. Date-times are written as
//! `YYYY-MM-DDTHH:MM:SSZ` and read leniently ([`lenient_datetime`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An entity that has its own `/V1.0/{PATH}` endpoints and an `id`.
pub trait Entity: serde::de::DeserializeOwned + Send + 'static {
    /// The entity path (`Tickets`, `Companies` …).
    const PATH: &'static str;
    /// The row's id, if returned.
    fn id(&self) -> Option<i64>;
}

/// A user-defined field value (`{"name":"…","value":"…"}`; values are strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Udf {
    /// The UDF's name.
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: Option<String>,
}

/// A ticket (subset of the 75 standard fields; the rest land in `extra`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    /// Id (absent on create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// `T20300115.0001`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_number: Option<String>,
    /// Company (account).
    #[serde(rename = "companyID", default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<i64>,
    /// Title (255).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description (8000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Status picklist id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
    /// Priority picklist id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Queue picklist id.
    #[serde(rename = "queueID", default, skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<i64>,
    /// Due date-time, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "lenient_datetime")]
    pub due_date_time: Option<DateTime<Utc>>,
    /// Source picklist id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<i64>,
    /// Issue type picklist id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<i64>,
    /// Sub-issue type picklist id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_issue_type: Option<i64>,
    /// Work type (BillingCode id).
    #[serde(rename = "billingCodeID", default, skip_serializing_if = "Option::is_none")]
    pub billing_code_id: Option<i64>,
    /// Configuration item.
    #[serde(rename = "configurationItemID", default, skip_serializing_if = "Option::is_none")]
    pub configuration_item_id: Option<i64>,
    /// The integration's key (50).
    #[serde(rename = "externalID", default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Ticket type picklist id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_type: Option<i64>,
    /// Ticket category picklist id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_category: Option<i64>,
    /// Resolution text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Assigned resource.
    #[serde(rename = "assignedResourceID", default, skip_serializing_if = "Option::is_none")]
    pub assigned_resource_id: Option<i64>,
    /// Assigned resource's role.
    #[serde(rename = "assignedResourceRoleID", default, skip_serializing_if = "Option::is_none")]
    pub assigned_resource_role_id: Option<i64>,
    /// Contact.
    #[serde(rename = "contactID", default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<i64>,
    /// Created (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "lenient_datetime")]
    pub create_date: Option<DateTime<Utc>>,
    /// Completed (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "lenient_datetime")]
    pub completed_date: Option<DateTime<Utc>>,
    /// Last activity (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "lenient_datetime")]
    pub last_activity_date: Option<DateTime<Utc>>,
    /// User-defined fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_defined_fields: Option<Vec<Udf>>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Entity for Ticket {
    const PATH: &'static str = "Tickets";
    fn id(&self) -> Option<i64> {
        self.id
    }
}

/// A ticket note (created under `/Tickets/{id}/Notes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketNote {
    /// Id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// The ticket.
    #[serde(rename = "ticketID", default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<i64>,
    /// Title (250).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Text (32000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Note type picklist id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_type: Option<i64>,
    /// Publish picklist id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<i64>,
    /// Created (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "lenient_datetime")]
    pub create_date_time: Option<DateTime<Utc>>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Entity for TicketNote {
    const PATH: &'static str = "TicketNotes";
    fn id(&self) -> Option<i64> {
        self.id
    }
}

/// A company (PSA account).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    /// Id (0 is the MSP's own organisation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    /// Active flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// Company type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_type: Option<i64>,
    /// User-defined fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_defined_fields: Option<Vec<Udf>>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Entity for Company {
    const PATH: &'static str = "Companies";
    fn id(&self) -> Option<i64> {
        self.id
    }
}

/// A billing code; work types are those with `useType == 1`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingCode {
    /// Id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Allocation code type (1 = work type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_type: Option<i64>,
    /// Active flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Entity for BillingCode {
    const PATH: &'static str = "BillingCodes";
    fn id(&self) -> Option<i64> {
        self.id
    }
}

/// A configuration item (device).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationItem {
    /// Id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Owning company.
    #[serde(rename = "companyID", default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<i64>,
    /// Device name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_title: Option<String>,
    /// Serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// Active flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// User-defined fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_defined_fields: Option<Vec<Udf>>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Entity for ConfigurationItem {
    const PATH: &'static str = "ConfigurationItems";
    fn id(&self) -> Option<i64> {
        self.id
    }
}

/// `GET /V1.0/ThresholdInformation`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdInformation {
    /// Requests allowed per timeframe.
    #[serde(default)]
    pub external_request_threshold: Option<u64>,
    /// Timeframe in minutes.
    #[serde(default)]
    pub request_threshold_timeframe: Option<u64>,
    /// Requests counted so far.
    #[serde(default)]
    pub current_timeframe_request_count: Option<u64>,
}

/// `GET …/v1.0/zoneInformation?user=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneInformation {
    /// Zone name.
    #[serde(default)]
    pub zone_name: Option<String>,
    /// REST root without the version segment.
    #[serde(default)]
    pub url: Option<String>,
    /// Web UI root.
    #[serde(default)]
    pub web_url: Option<String>,
    /// Tenant id.
    #[serde(default)]
    pub ci: Option<i64>,
}

/// One field of `entityInformation/fields`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldInfo {
    /// Field name.
    #[serde(default)]
    pub name: String,
    /// `integer|long|string|datetime|decimal|boolean`.
    #[serde(default)]
    pub data_type: Option<String>,
    /// Max length (0 for non-strings).
    #[serde(default)]
    pub length: Option<u32>,
    /// Required.
    #[serde(default)]
    pub is_required: Option<bool>,
    /// Read-only.
    #[serde(default)]
    pub is_read_only: Option<bool>,
    /// Queryable.
    #[serde(default)]
    pub is_queryable: Option<bool>,
    /// Reference to another entity.
    #[serde(default)]
    pub is_reference: Option<bool>,
    /// Singular referenced entity name.
    #[serde(default)]
    pub reference_entity_type: Option<String>,
    /// Picklist (`isPickList`, capital L).
    #[serde(rename = "isPickList", default)]
    pub is_pick_list: Option<bool>,
    /// Values (`null` for non-picklists).
    #[serde(default)]
    pub picklist_values: Option<Vec<PicklistValueInfo>>,
    /// Parent field of a dependent picklist (`IssueType`).
    #[serde(default)]
    pub picklist_parent_value_field: Option<String>,
    /// Every other key, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One picklist value in metadata (`value` is a string).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PicklistValueInfo {
    /// The id, as a string.
    #[serde(default)]
    pub value: String,
    /// Label.
    #[serde(default)]
    pub label: String,
    /// Default flag.
    #[serde(default)]
    pub is_default_value: Option<bool>,
    /// Sort order.
    #[serde(default)]
    pub sort_order: Option<i64>,
    /// Parent value (sub-issue types: the issue type id as a string).
    #[serde(default)]
    pub parent_value: Option<String>,
    /// Active flag.
    #[serde(default)]
    pub is_active: Option<bool>,
    /// System value.
    #[serde(default)]
    pub is_system: Option<bool>,
}

/// `{"fields":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldsEnvelope {
    /// The fields.
    #[serde(default)]
    pub fields: Vec<FieldInfo>,
}

/// Paging details of a query page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageDetails {
    /// Rows in this page.
    #[serde(default)]
    pub count: Option<u64>,
    /// Page size requested.
    #[serde(default)]
    pub request_count: Option<u64>,
    /// Previous page URL.
    #[serde(default)]
    pub prev_page_url: Option<String>,
    /// Next page URL (POST the same body to it).
    #[serde(default)]
    pub next_page_url: Option<String>,
}

/// `{"items":[…],"pageDetails":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// Rows.
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    /// Paging details.
    #[serde(default)]
    pub page_details: Option<PageDetails>,
}

/// `{"item":…}` (`null` when not found).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemEnvelope<T> {
    /// The item.
    #[serde(default = "none")]
    pub item: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

/// `{"itemId":N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemId {
    /// The id created or updated.
    pub item_id: i64,
}

/// `{"queryCount":N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryCount {
    /// Matching rows.
    pub query_count: u64,
}

/// Lenient (de)serialisation of optional UTC date-times.
///
/// Writes `YYYY-MM-DDTHH:MM:SSZ`. Reads RFC 3339 (any offset, converted to UTC) and naive
/// `YYYY-MM-DDTHH:MM:SS[.fffffff]` (taken as UTC, which is what the REST API stores); `null`
/// and `""` read as `None`.
pub mod lenient_datetime {
    use chrono::{DateTime, NaiveDateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn serialize<S: Serializer>(value: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(dt) => s.collect_str(&dt.format("%Y-%m-%dT%H:%M:%SZ")),
            None => s.serialize_none(),
        }
    }

    /// Deserialises leniently.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let raw: Option<String> = Option::deserialize(d)?;
        match raw.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => {
                parse(text).map(Some).ok_or_else(|| serde::de::Error::custom(format!("bad date-time {text:?}")))
            }
        }
    }

    /// Parses one value; `None` when it is not a date-time.
    pub fn parse(text: &str) -> Option<DateTime<Utc>> {
        if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
            return Some(dt.with_timezone(&Utc));
        }
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc())
    }
}
