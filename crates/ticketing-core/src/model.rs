//! The nouns of the domain: products, tenants, devices, severities, statuses, status
//! descriptions, Office 365 event types, events and status snapshots.
//!
//! These are domain types, not wire types: each adapter converts its own serde DTOs into them
//! (the "DTOs stay at the edge" rule in ARCHITECTURE.md).

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A Kaspersky product that produces events or computer statuses.
///
/// The guide configures ticketing separately for each of them: Security Center (on-premises,
/// one virtual server per customer), Endpoint Security Cloud and Security for Microsoft
/// Office 365 (both through Business Hub, one company per customer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Product {
    /// Kaspersky Security Center (KSC), on-premises.
    SecurityCenter,
    /// Kaspersky Endpoint Security Cloud, through Business Hub.
    EndpointCloud,
    /// Kaspersky Security for Microsoft Office 365, through Business Hub.
    Office365,
}

impl Product {
    /// Every product, in display order.
    pub const ALL: [Self; 3] = [Self::SecurityCenter, Self::EndpointCloud, Self::Office365];

    /// Stable identifier used in config files, ledger keys and URLs.
    pub fn code(self) -> &'static str {
        match self {
            Self::SecurityCenter => "security_center",
            Self::EndpointCloud => "endpoint_cloud",
            Self::Office365 => "office365",
        }
    }

    /// Parses [`Product::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }

    /// The product's name as the guide writes it.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::SecurityCenter => "Kaspersky Security Center",
            Self::EndpointCloud => "Kaspersky Endpoint Security Cloud",
            Self::Office365 => "Kaspersky Security for Microsoft Office 365",
        }
    }

    /// Whether the product reports computer statuses (Office 365 has no devices).
    pub fn has_statuses(self) -> bool {
        !matches!(self, Self::Office365)
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

macro_rules! string_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        ///
        /// Shared, not copied: a clone (into every ticket key, ledger entry and decision) counts
        /// a reference instead of allocating.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a string.
            pub fn new(s: impl Into<Arc<str>>) -> Self {
                Self(s.into())
            }
            /// The inner string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.into())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s.into())
            }
        }
    };
}

string_id!(
    /// A customer as a source sees it: a Security Center virtual server or a Business Hub
    /// company. Adapters choose the spelling (for example `ksc:main/vs:3` or `kbh:c-7f3a`); the
    /// core only compares them. Each tenant maps to one PSA account.
    TenantId
);
string_id!(
    /// A computer as its source identifies it (Security Center host GUID, Business Hub device id).
    DeviceId
);
string_id!(
    /// The source's own identifier of one event (Security Center `event_db_id`, Business Hub
    /// event id). Unique within a tenant.
    SourceEventId
);

/// An identifier in the PSA: an account (Autotask company), a picklist value, a ticket.
///
/// Autotask, ConnectWise, HaloPSA and Syncro all use integer ids, so one integer type serves
/// every backend we know of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PsaId(pub i64);

impl fmt::Display for PsaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A tenant as listed by a source, for mapping it to a PSA account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Stable id.
    pub id: TenantId,
    /// Human name (virtual server display name, company name).
    pub name: String,
}

/// A computer referenced by an event or a status snapshot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Device {
    /// Stable id.
    pub id: DeviceId,
    /// Display name, used in ticket titles.
    pub name: String,
}

/// Event severity, as Security Center and Endpoint Security Cloud grade events.
///
/// Security Center's `GNRL_EA_SEVERITY` numbers: 1 Info, 2 Warning, 3 Functional failure
/// (error), 4 Critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Critical event.
    Critical,
    /// Functional failure (error).
    FunctionalFailure,
    /// Warning.
    Warning,
    /// Informational; the guide has no rule row for it, so it is never ticketed.
    Info,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Self; 4] = [Self::Critical, Self::FunctionalFailure, Self::Warning, Self::Info];
    /// The severities that have a rule row in the guide.
    pub const RULE_ROWS: [Self; 3] = [Self::Critical, Self::FunctionalFailure, Self::Warning];

    /// Stable identifier.
    pub fn code(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::FunctionalFailure => "functional_failure",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }

    /// Parses [`Severity::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The guide's wording.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Critical => "Critical",
            Self::FunctionalFailure => "Functional failure",
            Self::Warning => "Warning",
            Self::Info => "Info",
        }
    }

    /// Security Center's `GNRL_EA_SEVERITY` value (1 Info … 4 Critical).
    pub fn from_ksc_level(level: i64) -> Option<Self> {
        match level {
            4 => Some(Self::Critical),
            3 => Some(Self::FunctionalFailure),
            2 => Some(Self::Warning),
            1 => Some(Self::Info),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// A computer's overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComputerStatus {
    /// No active status description.
    Ok,
    /// At least one Warning description, no Critical one.
    Warning,
    /// At least one Critical description.
    Critical,
}

/// The two status sections of the guide: a status description raises a computer to one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusLevel {
    /// "Critical status" section.
    Critical,
    /// "Warning status" section.
    Warning,
}

impl StatusLevel {
    /// Both levels, Critical first.
    pub const ALL: [Self; 2] = [Self::Critical, Self::Warning];

    /// Stable identifier.
    pub fn code(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Warning => "warning",
        }
    }

    /// Parses [`StatusLevel::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The overall computer status this level raises.
    pub fn computer_status(self) -> ComputerStatus {
        match self {
            Self::Critical => ComputerStatus::Critical,
            Self::Warning => ComputerStatus::Warning,
        }
    }
}

impl fmt::Display for StatusLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Critical => "Critical",
            Self::Warning => "Warning",
        })
    }
}

/// One row of the status-description catalogue (`status-descriptions.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptionInfo {
    /// Stable code, used in config, ledger keys and simulators.
    pub code: &'static str,
    /// The rule row's text.
    pub text: &'static str,
    /// Bit of Security Center's `KLHST_WKS_STATUS_MASK`.
    pub ksc_bit: u32,
    /// Whether Endpoint Security Cloud reports it.
    pub endpoint_cloud: bool,
    /// The level a Security Center adapter assumes when the group masks cannot be read.
    pub default_level: StatusLevel,
}

const fn d(
    code: &'static str,
    text: &'static str,
    ksc_bit: u32,
    endpoint_cloud: bool,
    default_level: StatusLevel,
) -> DescriptionInfo {
    DescriptionInfo { code, text, ksc_bit, endpoint_cloud, default_level }
}

use StatusLevel::{Critical as C, Warning as W};

/// The status-description catalogue, in Security Center bit order.
pub const DESCRIPTIONS: [DescriptionInfo; 20] = [
    d("network_agent_inactive", "Network Agent is inactive", 0, false, W),
    d("realtime_protection_not_running", "Real-time protection is not running", 1, true, C),
    d("security_application_not_running", "Security application is not running", 2, true, C),
    d("many_viruses_detected", "Many viruses detected", 3, true, W),
    d(
        "realtime_protection_level_differs",
        "Real-time protection level differs from the one set by the administrator",
        4,
        false,
        W,
    ),
    d("security_application_not_installed", "Security application is not installed", 5, true, C),
    d("full_scan_too_long_ago", "Full scan has not been performed for a long time", 6, false, W),
    d("databases_out_of_date", "Databases are out of date", 7, true, W),
    d("not_connected_too_long", "Device has not connected for a long time", 8, true, W),
    d("license_expired", "License has expired", 9, true, C),
    d("too_many_untreated_threats", "Too many untreated threats", 10, false, C),
    d("restart_required", "Restart is required", 11, false, W),
    d("incompatible_applications", "Incompatible applications are installed", 12, false, W),
    d("vulnerabilities_detected", "Software vulnerabilities have been detected", 13, false, W),
    d("os_updates_search_too_long_ago", "Search for operating system updates was performed too long ago", 14, false, W),
    d("invalid_encryption_status", "Invalid encryption status", 15, true, W),
    d("mobile_policy_not_met", "Mobile device settings do not meet the security policy", 16, false, W),
    d("unprocessed_incidents", "Unprocessed incidents detected", 17, false, W),
    d("status_set_by_application", "Device status is defined by the managed application", 18, true, W),
    d("out_of_disk_space", "Out of disk space", 19, false, W),
];

/// A computer status description: why a computer is Warning or Critical.
///
/// Known descriptions are indexes into [`DESCRIPTIONS`]; anything else a source reports is kept
/// as [`StatusDescription::Unknown`] (never dropped) and has no rule row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatusDescription {
    /// Index into [`DESCRIPTIONS`].
    Known(u8),
    /// Not in the catalogue: `unknown:<bit or text>`.
    Unknown(String),
}

impl StatusDescription {
    /// The first description in sort order (used for range scans).
    pub const MIN: Self = Self::Known(0);

    /// Every known description.
    pub fn all_known() -> impl Iterator<Item = Self> {
        (0..DESCRIPTIONS.len() as u8).map(Self::Known)
    }

    /// Known descriptions a product reports.
    pub fn for_product(product: Product) -> impl Iterator<Item = Self> {
        Self::all_known().filter(move |d| match product {
            Product::SecurityCenter => true,
            Product::EndpointCloud => d.info().is_some_and(|i| i.endpoint_cloud),
            Product::Office365 => false,
        })
    }

    /// Looks a code up; unknown codes become [`StatusDescription::Unknown`].
    pub fn from_code(code: &str) -> Self {
        match DESCRIPTIONS.iter().position(|i| i.code == code) {
            Some(i) => Self::Known(i as u8),
            None => Self::Unknown(code.strip_prefix("unknown:").unwrap_or(code).to_owned()),
        }
    }

    /// Only a catalogued code.
    pub fn known_from_code(code: &str) -> Option<Self> {
        DESCRIPTIONS.iter().position(|i| i.code == code).map(|i| Self::Known(i as u8))
    }

    /// Looks a Security Center status-mask bit up; unknown bits become `unknown:<bit>`.
    pub fn from_ksc_bit(bit: u32) -> Self {
        match DESCRIPTIONS.iter().position(|i| i.ksc_bit == bit) {
            Some(i) => Self::Known(i as u8),
            None => Self::Unknown(bit.to_string()),
        }
    }

    /// Decodes a Security Center `KLHST_WKS_STATUS_MASK` into descriptions, lowest bit first.
    pub fn decode_ksc_mask(mask: u64) -> Vec<Self> {
        (0..64).filter(|b| mask & (1u64 << b) != 0).map(Self::from_ksc_bit).collect()
    }

    /// Catalogue row, when known.
    pub fn info(&self) -> Option<&'static DescriptionInfo> {
        match self {
            Self::Known(i) => DESCRIPTIONS.get(usize::from(*i)),
            Self::Unknown(_) => None,
        }
    }

    /// Stable code (`unknown:<x>` for unknown ones).
    pub fn code(&self) -> String {
        match self {
            Self::Known(_) => self.info().map(|i| i.code.to_owned()).unwrap_or_default(),
            Self::Unknown(s) => format!("unknown:{s}"),
        }
    }

    /// Display text ("Status reason bit N" or the source's own text for unknown ones).
    pub fn text(&self) -> String {
        match self {
            Self::Known(_) => self.info().map(|i| i.text.to_owned()).unwrap_or_default(),
            Self::Unknown(s) if s.chars().all(|c| c.is_ascii_digit()) => {
                format!("Status reason bit {s}")
            }
            Self::Unknown(s) => s.clone(),
        }
    }

    /// [`StatusDescription::code`] as two borrowed pieces to concatenate (`("", code)` for a
    /// known one, `("unknown:", text)` otherwise): the allocation-free spelling that the key
    /// hash and key line stream.
    pub(crate) fn code_parts(&self) -> (&'static str, &str) {
        match self {
            Self::Known(_) => ("", self.info().map_or("", |i| i.code)),
            Self::Unknown(s) => ("unknown:", s),
        }
    }

    /// [`StatusDescription::text`] as two borrowed pieces, like [`Self::code_parts`].
    pub(crate) fn text_parts(&self) -> (&'static str, &str) {
        match self {
            Self::Known(_) => ("", self.info().map_or("", |i| i.text)),
            Self::Unknown(s) if s.chars().all(|c| c.is_ascii_digit()) => ("Status reason bit ", s),
            Self::Unknown(s) => ("", s),
        }
    }

    /// Whether this description is in the catalogue.
    pub fn is_known(&self) -> bool {
        matches!(self, Self::Known(_))
    }
}

impl fmt::Display for StatusDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl Serialize for StatusDescription {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.code())
    }
}

impl<'de> Deserialize<'de> for StatusDescription {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::from_code(&s))
    }
}

/// Security for Office 365 event types: the rows of the Office 365 event-rule table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Office365EventType {
    /// "Mailboxes protection is not provided" (resolvable: closes when resolved).
    MailboxesProtectionNotProvided,
    /// "License-related issue occurred" (resolvable: closes when resolved).
    LicenseIssue,
    /// "Malware detected".
    MalwareDetected,
    /// "Phishing detected".
    PhishingDetected,
    /// "Filtered attachment detected".
    FilteredAttachmentDetected,
}

impl Office365EventType {
    /// Every type, in the table's order.
    pub const ALL: [Self; 5] = [
        Self::MailboxesProtectionNotProvided,
        Self::LicenseIssue,
        Self::MalwareDetected,
        Self::PhishingDetected,
        Self::FilteredAttachmentDetected,
    ];

    /// Business Hub's `event_type` string.
    pub fn code(self) -> &'static str {
        match self {
            Self::MailboxesProtectionNotProvided => "mailboxes_protection_not_provided",
            Self::LicenseIssue => "license_issue",
            Self::MalwareDetected => "malware_detected",
            Self::PhishingDetected => "phishing_detected",
            Self::FilteredAttachmentDetected => "filtered_attachment_detected",
        }
    }

    /// Parses [`Office365EventType::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The rule row's text.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::MailboxesProtectionNotProvided => "Mailboxes protection is not provided",
            Self::LicenseIssue => "License-related issue occurred",
            Self::MalwareDetected => "Malware detected",
            Self::PhishingDetected => "Phishing detected",
            Self::FilteredAttachmentDetected => "Filtered attachment detected",
        }
    }

    /// The guide: only these two close by themselves once resolved.
    pub fn is_resolvable(self) -> bool {
        matches!(self, Self::MailboxesProtectionNotProvided | Self::LicenseIssue)
    }
}

impl fmt::Display for Office365EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// What grades an event: a severity (Security Center, Endpoint Security Cloud) or an Office 365
/// event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventClass {
    /// Graded by severity.
    Severity(Severity),
    /// An Office 365 event type.
    Office365(Office365EventType),
}

impl fmt::Display for EventClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Severity(s) => s.fmt(f),
            Self::Office365(t) => t.fmt(f),
        }
    }
}

/// One event from a source, already converted from the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The source's id of the event (unique within the tenant).
    pub source_id: SourceEventId,
    /// Which customer.
    pub tenant: TenantId,
    /// Which product.
    pub product: Product,
    /// Severity or Office 365 type.
    pub class: EventClass,
    /// When it happened, UTC.
    pub occurred_at: DateTime<Utc>,
    /// The computer, when the event concerns one.
    pub device: Option<Device>,
    /// The mailbox, for Office 365 events.
    pub mailbox: Option<String>,
    /// The source's event type code (e.g. `GNRL_EV_VIRUS_FOUND`).
    pub event_type: String,
    /// Localised event type name (e.g. "Malicious object detected").
    pub display_name: String,
    /// Free text.
    pub text: String,
}

/// One active status description on a computer and the level it raises.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ActiveDescription {
    /// Which description.
    pub description: StatusDescription,
    /// Which section it falls under.
    pub level: StatusLevel,
}

/// A computer's status as a source reports it at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// The computer.
    pub device: Device,
    /// Overall status.
    pub status: ComputerStatus,
    /// Every active description (empty when OK).
    pub active: Vec<ActiveDescription>,
}

/// The state of a resolvable Office 365 issue ("Mailboxes protection is not provided",
/// "License-related issue occurred"): the resolved signal that closes their tickets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueState {
    /// Which issue type (only resolvable types are meaningful).
    pub event_type: Office365EventType,
    /// Whether the problem stands now.
    pub active: bool,
    /// When it was raised.
    pub since: Option<DateTime<Utc>>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A complete snapshot of one tenant's conditions for one product: every device with its status
/// (Security Center, Endpoint Security Cloud) and every resolvable issue (Office 365).
///
/// Complete means complete: a device that is absent has no active description, so its status
/// tickets close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    /// Which customer.
    pub tenant: TenantId,
    /// Which product.
    pub product: Product,
    /// Every device the tenant has with an active description, and any OK ones the source
    /// lists (see [`crate::ports::StatusSource`]).
    pub devices: Vec<DeviceStatus>,
    /// Resolvable Office 365 issues (empty for the other products).
    pub issues: Vec<IssueState>,
    /// How many descriptions the source reported that are not in the catalogue.
    pub unknown_descriptions: u64,
}
