//! The rule book the engine decides with: taken from the store whenever another writer (the
//! CLI, the admin API of another instance) saved a newer revision.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use ticketing_core::edit::RuleBook;
use ticketing_core::rules::{RuleSet, Section};

use crate::store::{Store, StoreError};

/// The rule book in memory, the store revision it corresponds to, and a version the engine
/// watches: the only writer of the three. It changes only by taking a newer stored book
/// ([`RuleState::sync`]) or by a compare-and-swap write to the store ([`RuleState::update`]),
/// so memory never holds a book the store does not.
#[derive(Debug)]
pub struct RuleState {
    book: Mutex<(RuleBook, u64)>,
    /// Bumped whenever the saved rules change, so the engine rebuilds its context.
    version: AtomicU64,
}

/// Why [`RuleState::update`] did not store a change.
#[derive(Debug)]
pub enum UpdateError<E> {
    /// The change itself refused (`change` returned this).
    Refused(E),
    /// Another writer stored a newer revision than the one the change was based on.
    Conflict {
        /// The stored revision.
        current: u64,
    },
    /// The store failed.
    Store(StoreError),
}

/// A stored change: its revision, and whether the saved rules (not only drafts) changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Updated {
    /// The new store revision.
    pub revision: u64,
    /// Whether the saved rules changed (the engine applies them within a tick).
    pub saved_changed: bool,
}

impl RuleState {
    /// Rules as read from the store at `revision`.
    pub fn new(book: RuleBook, revision: u64) -> Self {
        Self { book: Mutex::new((book, revision)), version: AtomicU64::new(0) }
    }

    fn lock(&self) -> MutexGuard<'_, (RuleBook, u64)> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the book (draft and saved).
    pub fn book(&self) -> RuleBook {
        self.lock().0.clone()
    }

    /// A copy of the book and the revision it is, read together.
    pub fn snapshot(&self) -> (RuleBook, u64) {
        self.lock().clone()
    }

    /// Reads the book without copying it (keep `read` short).
    pub fn with<R>(&self, read: impl FnOnce(&RuleBook) -> R) -> R {
        read(&self.lock().0)
    }

    /// The store revision the book in memory is.
    pub fn revision(&self) -> u64 {
        self.lock().1
    }

    /// Bumped whenever the saved rules change.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// Takes the store's rule book when another writer changed it since this process last read
    /// or wrote it. Returns the new revision and the sections whose saved rules changed (empty
    /// when only drafts did), or `None` when nothing changed. The engine calls this every
    /// tick, so a save made anywhere takes effect within one.
    pub fn sync(&self, store: &dyn Store) -> Result<Option<(u64, Vec<Section>)>, StoreError> {
        let mut held = self.lock();
        self.sync_locked(store, &mut held)
    }

    fn sync_locked(
        &self,
        store: &dyn Store,
        held: &mut (RuleBook, u64),
    ) -> Result<Option<(u64, Vec<Section>)>, StoreError> {
        let stored = store.rules_revision()?;
        if stored == held.1 {
            return Ok(None);
        }
        let Some((theirs, revision)) = store.rulebook()? else { return Ok(None) };
        let changed = changed_sections(&held.0.saved, &theirs.saved);
        *held = (theirs, revision);
        if !changed.is_empty() {
            self.version.fetch_add(1, Ordering::SeqCst);
        }
        Ok(Some((revision, changed)))
    }

    /// Applies `change` to a copy of the newest stored book and stores the copy with a
    /// compare-and-swap on the revision; only then is it the book in memory. A refused
    /// change, a conflict or a failed write leaves both untouched. `expected` is the revision
    /// the writer last saw (a page, an `If-Match`, a `--revision`); without one the change
    /// applies on top of the newest stored rules (it is a patch: nothing saved elsewhere is
    /// lost).
    pub fn update<E>(
        &self,
        store: &dyn Store,
        expected: Option<u64>,
        change: impl FnOnce(&mut RuleBook) -> Result<(), E>,
    ) -> Result<Updated, UpdateError<E>> {
        let mut held = self.lock();
        self.sync_locked(store, &mut held).map_err(UpdateError::Store)?;
        let current = held.1;
        if expected.is_some_and(|e| e != current) {
            return Err(UpdateError::Conflict { current });
        }
        let mut next = held.0.clone();
        change(&mut next).map_err(UpdateError::Refused)?;
        let saved_changed = next.saved != held.0.saved;
        let revision = match store.save_rulebook(&next, current) {
            Ok(r) => r,
            Err(StoreError::Conflict { current }) => return Err(UpdateError::Conflict { current }),
            Err(e) => return Err(UpdateError::Store(e)),
        };
        *held = (next, revision);
        if saved_changed {
            self.version.fetch_add(1, Ordering::SeqCst);
        }
        Ok(Updated { revision, saved_changed })
    }
}

/// [`RuleState::sync`] of a [`Shared`](crate::engine::Shared)'s rules against its store.
pub fn sync_from_store(shared: &crate::engine::Shared) -> Result<Option<(u64, Vec<Section>)>, StoreError> {
    shared.rules.sync(&*shared.store)
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
