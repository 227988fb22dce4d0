//! The core's [`Catalog`] built from Autotask metadata, cached with a TTL.
//!
//! Sources: `GET /V1.0/Tickets/entityInformation/fields` for `status`, `priority`, `queueID`,
//! `source`, `issueType`, `subIssueType` (field names compared case-insensitively) and the
//! BillingCodes work types (`useType` 1, active). Picklist `value` strings become ids (values
//! that are not integers are skipped with a warning); inactive values are kept, flagged
//! inactive, so the core never resolves them; a sub-issue type's `parentValue` becomes its
//! parent issue type.

use std::time::{Duration, Instant};

use ticketing_core::catalog::{Catalog, PicklistValue};
use ticketing_core::model::PsaId;
use tracing::warn;

use crate::client::AutotaskClient;
use crate::error::Error;
use crate::models::{BillingCode, FieldInfo};

fn picklist(fields: &[FieldInfo], name: &str) -> Vec<PicklistValue> {
    let Some(field) = fields.iter().find(|f| f.name.eq_ignore_ascii_case(name)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for v in field.picklist_values.iter().flatten() {
        let Ok(id) = v.value.trim().parse::<i64>() else {
            warn!(field = name, value = %v.value, "picklist value is not an integer; skipped");
            continue;
        };
        let parent = v.parent_value.as_deref().map(str::trim).filter(|p| !p.is_empty()).and_then(|p| p.parse().ok());
        out.push(PicklistValue {
            id: PsaId(id),
            label: v.label.clone(),
            active: v.is_active.unwrap_or(true),
            parent: parent.map(PsaId),
        });
    }
    out
}

/// Builds the catalog from ticket field metadata and billing codes (a pure function). Billing
/// codes that are not work types (`useType` ≠ 1) are left out; inactive ones are flagged.
pub fn build_catalog(fields: &[FieldInfo], billing_codes: &[BillingCode]) -> Catalog {
    Catalog {
        statuses: picklist(fields, "status"),
        priorities: picklist(fields, "priority"),
        queues: picklist(fields, "queueID"),
        sources: picklist(fields, "source"),
        issue_types: picklist(fields, "issueType"),
        sub_issue_types: picklist(fields, "subIssueType"),
        work_types: billing_codes
            .iter()
            .filter(|b| b.use_type == Some(1))
            .filter_map(|b| {
                Some(PicklistValue {
                    id: PsaId(b.id?),
                    label: b.name.clone().unwrap_or_default(),
                    active: b.is_active.unwrap_or(true),
                    parent: None,
                })
            })
            .collect(),
    }
}

/// A TTL cache around the catalog; one fetch at a time (single flight).
#[derive(Debug)]
pub(crate) struct CatalogCache {
    ttl: Duration,
    state: tokio::sync::Mutex<Option<(Catalog, Instant)>>,
}

impl CatalogCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, state: tokio::sync::Mutex::new(None) }
    }

    pub(crate) async fn get(&self, client: &AutotaskClient, force: bool) -> Result<Catalog, Error> {
        let mut state = self.state.lock().await;
        if !force
            && let Some((catalog, at)) = state.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(catalog.clone());
        }
        let fields = client.ticket_fields().await?;
        let work_types = client.work_types().await?;
        let catalog = build_catalog(&fields.fields, &work_types);
        *state = Some((catalog.clone(), Instant::now()));
        Ok(catalog)
    }
}
