//! The rule book the engine decides with: taken from the store whenever another writer (the
//! CLI, the admin API of another instance) saved a newer revision.

use std::sync::atomic::Ordering;

use ticketing_core::edit::RuleBook;
use ticketing_core::rules::{RuleSet, Section};

use crate::engine::Shared;
use crate::store::StoreError;

/// Takes the store's rule book when another writer changed it since this process last read or
/// wrote it. Returns the new revision and the sections whose saved rules changed (empty when
/// only drafts did), or `None` when nothing changed. The engine calls this every tick, so a
/// save made anywhere takes effect within one.
pub fn sync_from_store(shared: &Shared) -> Result<Option<(u64, Vec<Section>)>, StoreError> {
    let mut book = shared.rules();
    sync_locked(shared, &mut book)
}

/// [`sync_from_store`] into a rule book the caller holds locked (a writer syncs first, then
/// applies its change on top of the newest stored rules).
pub fn sync_locked(shared: &Shared, book: &mut RuleBook) -> Result<Option<(u64, Vec<Section>)>, StoreError> {
    let stored = shared.store.rules_revision()?;
    if stored == shared.rules_revision.load(Ordering::SeqCst) {
        return Ok(None);
    }
    let Some((theirs, revision)) = shared.store.rulebook()? else { return Ok(None) };
    let changed = changed_sections(&book.saved, &theirs.saved);
    *book = theirs;
    shared.rules_revision.store(revision, Ordering::SeqCst);
    if !changed.is_empty() {
        shared.rules_version.fetch_add(1, Ordering::SeqCst);
    }
    Ok(Some((revision, changed)))
}

/// The sections whose saved rules differ: General with its maintenance windows, a status
/// section with its product's priority-follows-severity switch.
fn changed_sections(old: &RuleSet, new: &RuleSet) -> Vec<Section> {
    Section::all()
        .into_iter()
        .filter(|s| match s {
            Section::General => old.general != new.general || old.maintenance != new.maintenance,
            Section::Statuses(p, _) => {
                old.priority_follows_severity.contains(p) != new.priority_follows_severity.contains(p)
                    || s.rows().iter().any(|r| old.rule(r) != new.rule(r))
            }
            Section::Events(_) => s.rows().iter().any(|r| old.rule(r) != new.rule(r)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use ticketing_core::maintenance::MaintenanceWindow;
    use ticketing_core::model::{Product, StatusLevel, TenantId};

    use super::*;

    /// A save elsewhere of only the windows or only the switch still reaches a running
    /// daemon: before, only rows and general settings counted, so it kept the old context.
    #[test]
    fn windows_and_the_priority_switch_count_as_changed_sections() {
        let old = RuleSet::default();
        let mut new = old.clone();
        new.maintenance.push(MaintenanceWindow {
            id: "w".into(),
            tenant: TenantId::new("t"),
            device: None,
            schedule: ticketing_core::maintenance::Schedule::Once { start: Utc::now(), end: Utc::now() },
        });
        assert_eq!(changed_sections(&old, &new), [Section::General]);
        let mut new = old.clone();
        new.priority_follows_severity.insert(Product::EndpointCloud);
        assert_eq!(
            changed_sections(&old, &new),
            [
                Section::Statuses(Product::EndpointCloud, StatusLevel::Critical),
                Section::Statuses(Product::EndpointCloud, StatusLevel::Warning)
            ]
        );
        assert!(changed_sections(&old, &old).is_empty());
    }
}
