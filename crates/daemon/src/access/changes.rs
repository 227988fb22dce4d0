//! The change log: who changed what, when, and the revisions around it. Recording never fails
//! the change it records (a store error is logged); the change itself is already durable.

use chrono::{DateTime, Utc};

use super::{AccessStore, Actor, Change, ChangeKind};
use crate::store::Store;

/// The revisions a change can move: the rules' and the tenant mapping's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Revisions {
    /// The rule book's revision.
    pub rules: u64,
    /// The mapping document's revision.
    pub mapping: u64,
}

/// The store's revisions now (0 where unreadable: a change is then recorded without them).
pub fn revisions(store: &dyn Store) -> Revisions {
    Revisions {
        rules: store.rules_revision().unwrap_or(0),
        mapping: store.document_revision(crate::documents::MAPPING).unwrap_or(0),
    }
}

/// Which revision a kind of change moves, if any.
pub fn revision_of(kind: ChangeKind, r: Revisions) -> Option<u64> {
    match kind {
        ChangeKind::RulesDraft
        | ChangeKind::RulesSave
        | ChangeKind::RulesCancel
        | ChangeKind::RulesReset
        | ChangeKind::Maintenance => Some(r.rules),
        ChangeKind::Mapping => Some(r.mapping),
        _ => None,
    }
}

/// Appends one entry.
#[allow(clippy::too_many_arguments)] // one entry's fields, each named at the call
pub fn record(
    store: &dyn AccessStore,
    actor: &Actor,
    kind: ChangeKind,
    section: Option<String>,
    revision_before: Option<u64>,
    revision_after: Option<u64>,
    detail: String,
    at: DateTime<Utc>,
) {
    let change = Change { at, actor: actor.label(), kind, section, revision_before, revision_after, detail };
    if let Err(e) = store.record_change(&change) {
        tracing::warn!(error = %e, kind = kind.code(), "cannot record the change in the change log");
    }
}

/// Records a change made through `store` when it keeps a change log.
pub fn record_in(
    store: &dyn Store,
    actor: &Actor,
    kind: ChangeKind,
    section: Option<String>,
    before: Revisions,
    detail: String,
) {
    if let Some(access) = store.access() {
        let after = revisions(store);
        record(access, actor, kind, section, revision_of(kind, before), revision_of(kind, after), detail, Utc::now());
    }
}
