//! Mapping tenants to PSA accounts in the product (issue #26), as operations on the store:
//! every front end (the `mapping` CLI, the admin API, the web UI) calls these, so each behaves
//! the same way. The tenants and accounts come from the directory the leading engine stores;
//! the edits are compare-and-swap on the `mapping` document's revision, and the engine takes
//! them within one tick. Entries of the configuration file stay authoritative: they are shown
//! ("from the file") and refused for editing, naming the file.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use ticketing_core::mapping::{Accepted, MappingEditError, MappingSet, MappingSource, Suggestion, suggest};
use ticketing_core::model::{PsaId, TenantId};
use ticketing_core::ports::Account;

use crate::documents::{Directory, load_directory, load_mapping, save_mapping};
use crate::engine::{MappedTenant, Shared};
use crate::store::{Store, StoreError};
use ticketing_engine::settings::MappingEntry;

/// How many suggestions an unmapped tenant gets at most.
pub const SUGGESTIONS: usize = 5;

/// Why a mapping operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MappingOpError {
    /// The mapping changed since the editor read it (409).
    #[error("the mapping changed elsewhere (now revision {current}); reload and try again")]
    Conflict {
        /// The stored revision.
        current: u64,
    },
    /// The tenant is mapped in the configuration file (409).
    #[error("tenant {tenant} is mapped in the configuration file {file}; change it there")]
    FromFile {
        /// The tenant.
        tenant: TenantId,
        /// The file.
        file: String,
    },
    /// Anything else the edit refused (400/404: an unknown account, a tenant not mapped, a
    /// score out of range).
    #[error("{0}")]
    Refused(MappingEditError),
    /// The PSA's accounts have not been read yet (the leader stores them once it has).
    #[error("the PSA accounts are not known yet (no leader has read them); try again shortly")]
    NoAccounts,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The file's entries, as the operations need them: tenant → account id (entries naming an
/// account by name are resolved against `accounts`; unresolved ones still count as the file's).
#[derive(Debug, Clone, Default)]
pub struct FileMapping {
    /// The file's name, for the refusal.
    pub file: String,
    /// Tenant → account, when resolved.
    pub entries: BTreeMap<TenantId, Option<PsaId>>,
}

impl FileMapping {
    /// From the configuration's `[[mapping]]`.
    pub fn from_config(file: &str, entries: &[MappingEntry], accounts: &[Account]) -> Self {
        let entries = entries
            .iter()
            .map(|m| {
                (TenantId::new(m.tenant.clone()), m.account_in(accounts).map(|a| a.id).or(m.account_id.map(PsaId)))
            })
            .collect();
        Self { file: file.to_owned(), entries }
    }

    /// From what the running engine resolved (its entries marked as the file's).
    pub fn from_engine(file: &str, mapped: &[MappedTenant]) -> Self {
        let entries = mapped
            .iter()
            .filter(|m| m.source == Some(MappingSource::File))
            .map(|m| (TenantId::new(m.tenant.clone()), m.account_id))
            .collect();
        Self { file: file.to_owned(), entries }
    }

    fn tenants(&self) -> BTreeSet<TenantId> {
        self.entries.keys().cloned().collect()
    }
}

/// An account as a mapping row shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountRef {
    /// Id.
    pub account_id: PsaId,
    /// Name (empty when the PSA does not have it).
    pub account_name: String,
    /// Whether it is active (`false` also when the PSA does not have it).
    pub active: bool,
}

/// One tenant: its mapping or, unmapped, its suggestions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantRow {
    /// Tenant id.
    pub tenant: TenantId,
    /// Its name at the source (none: mapped but not listed by any source now).
    pub tenant_name: Option<String>,
    /// The source that listed it.
    pub listed_by: Option<String>,
    /// The account, when mapped.
    pub account: Option<AccountRef>,
    /// Where the mapping comes from (none: unmapped).
    pub source: Option<MappingSource>,
    /// For an unmapped tenant: accounts with alike names, best first (never applied by
    /// themselves).
    pub suggestions: Vec<Suggestion>,
}

/// Every tenant, with the mapping's revision and the PSA's accounts.
#[derive(Debug, Clone, Serialize)]
pub struct MappingView {
    /// The `mapping` document's revision (send it back as `If-Match` / `--revision`).
    pub revision: u64,
    /// Every tenant a source lists or a mapping names, by id.
    pub tenants: Vec<TenantRow>,
    /// The PSA's accounts (for a search over all of them).
    pub accounts: Vec<Account>,
    /// How many listed tenants are unmapped.
    pub unmapped: usize,
}

fn account_ref(id: PsaId, accounts: &[Account]) -> AccountRef {
    match accounts.iter().find(|a| a.id == id) {
        Some(a) => AccountRef { account_id: a.id, account_name: a.name.clone(), active: a.active },
        None => AccountRef { account_id: id, account_name: String::new(), active: false },
    }
}

/// Builds the view from a directory, the stored set and the file's entries (pure).
pub fn build_view(directory: &Directory, set: &MappingSet, file: &FileMapping) -> MappingView {
    let accounts = &directory.accounts;
    let mut rows: BTreeMap<TenantId, TenantRow> = BTreeMap::new();
    for listed in &directory.tenants {
        rows.insert(
            listed.tenant.id.clone(),
            TenantRow {
                tenant: listed.tenant.id.clone(),
                tenant_name: Some(listed.tenant.name.clone()),
                listed_by: Some(listed.source.clone()),
                account: None,
                source: None,
                suggestions: Vec::new(),
            },
        );
    }
    let blank = |tenant: &TenantId| TenantRow {
        tenant: tenant.clone(),
        tenant_name: None,
        listed_by: None,
        account: None,
        source: None,
        suggestions: Vec::new(),
    };
    for (tenant, account) in &set.entries {
        let row = rows.entry(tenant.clone()).or_insert_with(|| blank(tenant));
        row.account = Some(account_ref(*account, accounts));
        row.source = Some(MappingSource::Store);
    }
    for (tenant, account) in &file.entries {
        let row = rows.entry(tenant.clone()).or_insert_with(|| blank(tenant));
        row.account = account.map(|a| account_ref(a, accounts));
        row.source = Some(MappingSource::File);
    }
    let mut unmapped = 0;
    for row in rows.values_mut() {
        if row.source.is_none() {
            unmapped += 1;
            if let Some(name) = &row.tenant_name {
                row.suggestions = suggest(name, accounts, SUGGESTIONS);
            }
        }
    }
    MappingView { revision: set.revision, tenants: rows.into_values().collect(), accounts: accounts.clone(), unmapped }
}

/// The view from the store.
pub fn view(store: &dyn Store, file: &FileMapping) -> Result<MappingView, MappingOpError> {
    Ok(build_view(&load_directory(store)?, &load_mapping(store)?, file))
}

fn edit(
    store: &dyn Store,
    file: &FileMapping,
    directory: &Directory,
    expected: Option<u64>,
    change: impl FnOnce(&MappingSet, u64, &Directory) -> Result<MappingSet, MappingEditError>,
) -> Result<MappingSet, MappingOpError> {
    let set = load_mapping(store)?;
    let expected = expected.unwrap_or(set.revision);
    let next = change(&set, expected, directory).map_err(|e| match e {
        MappingEditError::Stale { current, .. } => MappingOpError::Conflict { current },
        MappingEditError::FromFile { tenant } => MappingOpError::FromFile { tenant, file: file.file.clone() },
        other => MappingOpError::Refused(other),
    })?;
    if next.revision == set.revision {
        return Ok(next);
    }
    match save_mapping(store, &next, set.revision) {
        Ok(_) => Ok(next),
        Err(StoreError::Conflict { current }) => Err(MappingOpError::Conflict { current }),
        Err(e) => Err(e.into()),
    }
}

/// Maps `tenant` to `account`; the new revision.
pub fn set(
    store: &dyn Store,
    file: &FileMapping,
    tenant: &TenantId,
    account: PsaId,
    expected: Option<u64>,
) -> Result<u64, MappingOpError> {
    let directory = load_directory(store)?;
    if directory.accounts.is_empty() {
        return Err(MappingOpError::NoAccounts);
    }
    let next = edit(store, file, &directory, expected, |set, expected, directory| {
        set.set(tenant, account, expected, &file.tenants(), &directory.accounts)
    })?;
    tracing::info!(tenant = %tenant, account = %account, revision = next.revision, "tenant mapped");
    Ok(next.revision)
}

/// Unmaps `tenant`; the new revision.
pub fn unset(
    store: &dyn Store,
    file: &FileMapping,
    tenant: &TenantId,
    expected: Option<u64>,
) -> Result<u64, MappingOpError> {
    let next = edit(store, file, &load_directory(store)?, expected, |set, expected, _| {
        set.unset(tenant, expected, &file.tenants())
    })?;
    tracing::info!(tenant = %tenant, revision = next.revision, "tenant unmapped");
    Ok(next.revision)
}

/// Accepts the best suggestion of every unmapped tenant at or above `min_score` (active,
/// unambiguous); the new revision and what it mapped.
pub fn accept(
    store: &dyn Store,
    file: &FileMapping,
    min_score: f64,
    expected: Option<u64>,
) -> Result<(u64, Vec<Accepted>), MappingOpError> {
    let mut accepted = Vec::new();
    let next = edit(store, file, &load_directory(store)?, expected, |set, expected, directory| {
        let unmapped: Vec<(TenantId, String)> = build_view(directory, set, file)
            .tenants
            .into_iter()
            .filter(|r| r.source.is_none())
            .filter_map(|r| r.tenant_name.map(|n| (r.tenant, n)))
            .collect();
        let (next, made) = set.accept(expected, min_score, &unmapped, &directory.accounts)?;
        accepted = made;
        Ok(next)
    })?;
    tracing::info!(mapped = accepted.len(), min_score, revision = next.revision, "suggestions accepted");
    Ok((next.revision, accepted))
}

/// The file's entries as the running engine resolved them, for the API and the UI.
pub fn file_of_engine(shared: &Shared, file: &str) -> FileMapping {
    FileMapping::from_engine(file, &shared.mapping())
}
