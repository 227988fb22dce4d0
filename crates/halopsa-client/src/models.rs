//! Halo's wire records (serde), only as far as this client reads and writes them. Field names
//! are Halo's own (lowercase, `_id` suffixes); what each one is and how sure we are of it is in
//! `docs/protocols/halopsa.md`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An id as Halo may spell it: a number, or a number in a string (`"7"`).
fn lenient_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A ticket (`/api/Tickets`). Creates leave `id` out; updates carry it. Fields this client does
/// not name (the due-date field, whose name is a setting, among them) are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// The ticket id (also the number technicians see).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_id")]
    pub id: Option<i64>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Description as Halo returns it (HTML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// Description to write, as HTML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details_html: Option<String>,
    /// The customer.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_id")]
    pub client_id: Option<i64>,
    /// The customer's site.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_id")]
    pub site_id: Option<i64>,
    /// The ticket type.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_id")]
    pub tickettype_id: Option<i64>,
    /// The status.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_id")]
    pub status_id: Option<i64>,
    /// The priority (of the ticket's SLA).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_id")]
    pub priority_id: Option<i64>,
    /// The team, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The team, by id.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_id")]
    pub team_id: Option<i64>,
    /// Whether the ticket has ever been closed (read only).
    #[serde(default, skip_serializing)]
    pub hasbeenclosed: Option<bool>,
    /// Custom fields (`[{"name","value"}]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customfields: Option<Vec<CustomField>>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Ticket {
    /// A field of `extra` as a string.
    pub fn extra_str(&self, name: &str) -> Option<&str> {
        self.extra.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str())
    }

    /// The value of the custom field `name` as text.
    pub fn custom_field(&self, name: &str) -> Option<String> {
        self.customfields
            .as_ref()?
            .iter()
            .find(|f| f.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .and_then(|f| match &f.value {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Null) | None => None,
                Some(other) => Some(other.to_string()),
            })
    }
}

/// A custom field value of a record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomField {
    /// The field's id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_id")]
    pub id: Option<i64>,
    /// The field's name (`CFmspTicketingKey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// An action (`/api/Actions`): notes are actions with a note and an outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// The action id.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_id")]
    pub id: Option<i64>,
    /// The ticket.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_id")]
    pub ticket_id: Option<i64>,
    /// Plain-text note (as read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// HTML note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_html: Option<String>,
    /// The outcome, by id.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_id")]
    pub outcome_id: Option<i64>,
    /// The outcome, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Hidden from the end user (a private note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hiddenfromuser: Option<bool>,
}

/// A customer (`/api/Client`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Client {
    /// The id.
    #[serde(default, deserialize_with = "lenient_id")]
    pub id: Option<i64>,
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the customer is inactive.
    #[serde(default)]
    pub inactive: Option<bool>,
}

/// A named row of a picklist (`/api/Team`, `/api/Status`, `/api/TicketType`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Named {
    /// The id.
    #[serde(default, deserialize_with = "lenient_id")]
    pub id: Option<i64>,
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the row is inactive (teams, ticket types).
    #[serde(default)]
    pub inactive: Option<bool>,
}

/// A priority of an SLA (`/api/Priority`): `id` is the row's own id (a GUID), `priorityid` the
/// number tickets carry in `priority_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Priority {
    /// The SLA it belongs to.
    #[serde(default, deserialize_with = "lenient_id")]
    pub slaid: Option<i64>,
    /// The number tickets carry.
    #[serde(default, deserialize_with = "lenient_id")]
    pub priorityid: Option<i64>,
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
    /// Hidden priorities are not offered.
    #[serde(default)]
    pub ishidden: Option<bool>,
}
