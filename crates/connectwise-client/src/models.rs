//! Wire types (serde), as ConnectWise spells them. They stay at the edge: the sink converts them
//! into `ticketing-core` types.
//!
//! Every field is optional on read (partial answers with `fields=`, older codebases) and omitted
//! on write when `None`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A reference to another record: `{"id":N}` on write; `id`, `name`, `identifier` on read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Reference {
    /// Record id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Display name (read only).
    #[serde(default, skip_serializing)]
    pub name: Option<String>,
    /// Company identifier (companies only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
}

impl Reference {
    /// `{"id": id}`.
    pub fn id(id: i64) -> Self {
        Self { id: Some(id), name: None, identifier: None }
    }
}

/// `_info` metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    /// Last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<DateTime<Utc>>,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_entered: Option<DateTime<Utc>>,
}

/// A service ticket (`/service/tickets`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    /// Id (never sent on create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Title, at most [`crate::SUMMARY_MAX`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Required on create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<Reference>,
    /// Service board (the rule's queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board: Option<Reference>,
    /// Status (a status of `board`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Reference>,
    /// Priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Reference>,
    /// Type (of `board`): the rule's issue type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Reference>,
    /// Subtype (of `board`): the rule's sub-issue type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<Reference>,
    /// Item (of `board`): the rule's work type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<Reference>,
    /// Source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Reference>,
    /// Due time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_date: Option<DateTime<Utc>>,
    /// The first note's text (write only: never returned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_description: Option<String>,
    /// The idempotency key (at most [`crate::EXTERNAL_XREF_MAX`] characters).
    #[serde(rename = "externalXRef", default, skip_serializing_if = "Option::is_none")]
    pub external_x_ref: Option<String>,
    /// Whether the ticket is in a closed status (read mostly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_flag: Option<bool>,
    /// When it was closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_date: Option<DateTime<Utc>>,
    /// Metadata.
    #[serde(rename = "_info", default, skip_serializing)]
    pub info: Option<Info>,
}

/// One JSON Patch operation (`PATCH` bodies are arrays of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchOp {
    /// `replace` (the only one the client sends).
    pub op: String,
    /// A top-level field (`status`): sub-paths answer a false 200.
    pub path: String,
    /// The whole new value.
    pub value: serde_json::Value,
}

impl PatchOp {
    /// `{"op":"replace","path":path,"value":value}`.
    pub fn replace(path: impl Into<String>, value: serde_json::Value) -> Self {
        Self { op: "replace".into(), path: path.into(), value }
    }
}

/// A ticket note (`ServiceNote`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceNote {
    /// Id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Ticket id (read).
    #[serde(default, skip_serializing)]
    pub ticket_id: Option<i64>,
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Discussion note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail_description_flag: Option<bool>,
    /// Internal analysis note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_analysis_flag: Option<bool>,
    /// Resolution note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_flag: Option<bool>,
    /// Internal only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_flag: Option<bool>,
    /// Visible to the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_flag: Option<bool>,
    /// Whether ConnectWise sends its notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_notifications: Option<bool>,
}

/// A service board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Board {
    /// Id.
    pub id: i64,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Inactive boards take no new tickets.
    #[serde(default)]
    pub inactive_flag: bool,
}

/// A status of a board (`BoardStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BoardStatus {
    /// Id.
    pub id: i64,
    /// Name (≤ 50).
    #[serde(default)]
    pub name: String,
    /// The board the status belongs to.
    #[serde(default)]
    pub board: Option<Reference>,
    /// Whether setting it closes the ticket.
    #[serde(default)]
    pub closed_status: bool,
    /// The board's default status for new tickets.
    #[serde(default)]
    pub default_flag: bool,
    /// Inactive statuses cannot be set.
    #[serde(default)]
    pub inactive: bool,
}

/// A board type (`BoardType`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BoardType {
    /// Id.
    pub id: i64,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Inactive.
    #[serde(default)]
    pub inactive_flag: bool,
}

/// A board subtype (`BoardSubType`); `typeAssociationIds` names the types it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BoardSubType {
    /// Id.
    pub id: i64,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Inactive.
    #[serde(default)]
    pub inactive_flag: bool,
    /// The types this subtype belongs to (empty: any).
    #[serde(default)]
    pub type_association_ids: Vec<i64>,
}

/// A board item (`BoardItem`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BoardItem {
    /// Id.
    pub id: i64,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Inactive.
    #[serde(default)]
    pub inactive_flag: bool,
}

/// A ticket priority (`/service/priorities`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Priority {
    /// Id.
    pub id: i64,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Sort order.
    #[serde(default)]
    pub sort_order: Option<i64>,
}

/// A ticket source (`/service/sources`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// Id.
    pub id: i64,
    /// Name.
    #[serde(default)]
    pub name: String,
}

/// A company (`/company/companies`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    /// Id.
    pub id: i64,
    /// Short identifier.
    #[serde(default)]
    pub identifier: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Status reference (`Active`, `Inactive`, …).
    #[serde(default)]
    pub status: Option<Reference>,
    /// Deleted companies get no tickets.
    #[serde(default)]
    pub deleted_flag: Option<bool>,
}

/// A company status (`/company/companies/statuses`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CompanyStatus {
    /// Id.
    pub id: i64,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Companies in this status are inactive.
    #[serde(default)]
    pub inactive_flag: bool,
}

/// The answer of `GET {site}/login/companyinfo/{company}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CompanyInfo {
    /// Company name.
    #[serde(default)]
    pub company_name: Option<String>,
    /// `v2017_3/`.
    #[serde(default)]
    pub codebase: Option<String>,
    /// `v2017.3`.
    #[serde(default)]
    pub version_code: Option<String>,
    /// Company id.
    #[serde(default, rename = "CompanyID")]
    pub company_id: Option<String>,
    /// `"True"`/`"False"` (a string on the wire).
    #[serde(default)]
    pub is_cloud: Option<serde_json::Value>,
    /// The site host.
    #[serde(default)]
    pub site_url: Option<String>,
}

/// Rows that carry an id (forward-only paging without a `Link` header continues after the
/// largest one).
pub trait Identified {
    /// The row's id.
    fn row_id(&self) -> Option<i64>;
}

macro_rules! identified {
    ($($t:ty => |$s:ident| $e:expr),* $(,)?) => {
        $(impl Identified for $t {
            fn row_id(&self) -> Option<i64> {
                let $s = self;
                $e
            }
        })*
    };
}

identified! {
    Ticket => |s| s.id,
    ServiceNote => |s| s.id,
    Board => |s| Some(s.id),
    BoardStatus => |s| Some(s.id),
    BoardType => |s| Some(s.id),
    BoardSubType => |s| Some(s.id),
    BoardItem => |s| Some(s.id),
    Priority => |s| Some(s.id),
    Source => |s| Some(s.id),
    Company => |s| Some(s.id),
    CompanyStatus => |s| Some(s.id),
    serde_json::Value => |s| s.get("id").and_then(serde_json::Value::as_i64),
}
