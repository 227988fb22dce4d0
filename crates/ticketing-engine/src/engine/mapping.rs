//! The mapping in force: the file's entries (authoritative for their tenants) and the ones
//! edited in the product (the store's `mapping` document, taken every tick like the rules);
//! the held events of tenants that just became mapped; the directory of tenants and accounts
//! the leader writes for editors and suggestions.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::documents::{Directory, ListedTenant};
use ticketing_core::mapping::MappingSource;

/// How far back held events are looked for when a row has no lifetime (Office 365 events):
/// the history the store keeps is the bound then.
const NO_LIFETIME_LOOKBACK_DAYS: i64 = 30;

impl Engine {
    /// Takes the store's mapping when a writer (the API, the CLI, another instance) changed it
    /// since this engine last read it. `true` when it changed.
    pub(super) fn sync_mapping(&mut self) -> bool {
        let revision = match self.shared.store.document_revision(crate::documents::MAPPING) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "cannot read the mapping's revision from the store");
                return false;
            }
        };
        if self.mapping_revision == Some(revision) {
            return false;
        }
        match crate::documents::load_mapping(&*self.shared.store) {
            Ok(set) => {
                if self.mapping_revision.is_some() {
                    info!(revision = set.revision, tenants = set.entries.len(), "mapping changed; applying it");
                }
                self.mapping_revision = Some(set.revision);
                self.store_mapping = set;
                true
            }
            Err(e) => {
                warn!(error = %e, "cannot read the mapping from the store; keeping the last one");
                false
            }
        }
    }

    /// The mapping entries in force, each with where it comes from: every file entry, then the
    /// store's for tenants the file does not name.
    pub(super) fn mapping_entries(&self) -> Vec<(MappingEntry, MappingSource)> {
        let mut all: Vec<(MappingEntry, MappingSource)> =
            self.mapping.iter().map(|m| (m.clone(), MappingSource::File)).collect();
        let in_file: HashSet<&str> = self.mapping.iter().map(|m| m.tenant.as_str()).collect();
        for (tenant, account) in &self.store_mapping.entries {
            if !in_file.contains(tenant.as_str()) {
                let entry =
                    MappingEntry { tenant: tenant.to_string(), account_id: Some(account.0), account_name: None };
                all.push((entry, MappingSource::Store));
            }
        }
        all
    }

    /// Notes which tenants are mapped now: the ones that were not get their held events
    /// decided again (on the first context, every mapped tenant: a crash may have come between
    /// a mapping and its release).
    pub(super) fn mapped_now(&mut self, mapped: HashSet<TenantId>, unmapped: usize, first: bool) {
        if first {
            self.release.extend(mapped.iter().cloned());
        } else {
            self.release.extend(mapped.difference(&self.mapped_tenants).cloned());
        }
        self.mapped_tenants = mapped;
        self.shared.metrics.set_tenants_unmapped(unmapped as u64);
    }

    /// Decides again the held events of tenants that became mapped: events read while their
    /// tenant was unmapped (recorded as `tenant_unmapped`) within the longest lifetime; the
    /// core's lifetime check skips the ones older than their rule's, the ledger any already
    /// ticketed (a release after a crash makes nothing twice).
    pub(super) fn release_held(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        if self.release.is_empty() || self.ctx.is_none() {
            return Ok(());
        }
        let tenants = std::mem::take(&mut self.release);
        let lookback = self
            .windows
            .values()
            .map(|w| w.unwrap_or(chrono::Duration::days(NO_LIFETIME_LOOKBACK_DAYS)))
            .max()
            .unwrap_or(chrono::Duration::days(1));
        let since = now - lookback;
        let query = crate::store::DecisionQuery {
            since: Some(since),
            outcome: Some(crate::store::Outcome::Skipped),
            limit: 10_000,
            ..crate::store::DecisionQuery::default()
        };
        let held: HashSet<String> = self
            .shared
            .store
            .decisions(&query)?
            .into_iter()
            .filter(|d| d.reason.as_deref() == Some(SkipReason::TenantUnmapped.label()) && tenants.contains(&d.tenant))
            .filter_map(|d| d.event_id)
            .collect();
        if held.is_empty() {
            return Ok(());
        }
        let events: Vec<ticketing_core::model::Event> = self
            .shared
            .store
            .events_since(since)?
            .into_iter()
            .map(|seen| seen.event)
            .filter(|e| tenants.contains(&e.tenant) && held.contains(e.source_id.as_str()))
            .collect();
        let (transitions, decisions, _) = self.decide_events(&events, now, true);
        info!(
            tenants = tenants.len(),
            events = events.len(),
            tickets = transitions.len(),
            "tenants mapped: their held events decided again"
        );
        self.stage_read(transitions, &[], None, decisions);
        self.flush_staged(now)
    }

    /// Writes the tenants and accounts just read to the store (when they changed), so editors
    /// and suggestions elsewhere (the CLI, a standby's API) see them. The leader's only.
    pub(super) fn write_directory(&mut self, now: DateTime<Utc>) {
        if self.epoch.is_none() {
            return;
        }
        let mut seen = HashSet::new();
        let mut tenants: Vec<ListedTenant> = Vec::new();
        let mut listed: Vec<(&(Job, TenantId), &Tenant)> = self.listed.iter().collect();
        listed.sort_by(|a, b| a.0.cmp(b.0));
        for ((job, id), tenant) in listed {
            if seen.insert(id.clone()) {
                let source = match job {
                    Job::Events(i) => self.event_sources[*i].name.clone(),
                    Job::Statuses(i) => self.status_sources[*i].name.clone(),
                };
                tenants.push(ListedTenant { tenant: tenant.clone(), source });
            }
        }
        tenants.sort_by(|a, b| a.tenant.id.cmp(&b.tenant.id));
        let directory = Directory { tenants, accounts: self.accounts.clone(), at: None };
        if self.directory_written.as_ref() == Some(&directory) {
            return;
        }
        let stored = Directory { at: Some(now), ..directory.clone() };
        match crate::documents::save_directory(&*self.shared.store, &stored) {
            Ok(()) => self.directory_written = Some(directory),
            Err(e) => warn!(error = %e, "cannot store the directory of tenants and accounts"),
        }
    }
}
