//! The typed documents of the store (see [`Store::document`]): the tenant mapping edited in the
//! product, and the directory of tenants and accounts the leader last read (so the CLI, the
//! API of a standby and the suggestions work from the store while the daemon runs).
//!
//! | document | its writer | readers |
//! |---|---|---|
//! | `mapping` | the mapping editors (API, CLI, UI), compare-and-swap on its revision | the engine, every tick |
//! | `directory` | the leading engine, when a refresh finds tenants or accounts changed | editors, suggestions |

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ticketing_core::mapping::MappingSet;
use ticketing_core::model::Tenant;
use ticketing_core::ports::Account;

use crate::store::{Store, StoreError};

/// The document name of the mapping edited in the product.
pub const MAPPING: &str = "mapping";
/// The document name of the directory of tenants and accounts.
pub const DIRECTORY: &str = "directory";

/// The stored mapping (empty at revision 0 when none was stored yet). The revision is the
/// store's: pass it back to [`save_mapping`].
pub fn load_mapping(store: &dyn Store) -> Result<MappingSet, StoreError> {
    let Some((body, revision)) = store.document(MAPPING)? else { return Ok(MappingSet::default()) };
    let mut set: MappingSet = serde_json::from_str(&body)
        .map_err(|e| StoreError::Corrupt { table: "documents", detail: format!("mapping: {e}") })?;
    set.revision = revision;
    Ok(set)
}

/// Stores `set` if the stored mapping is still at `expected` (compare-and-swap); the new
/// revision, or [`StoreError::Conflict`] with the current one.
pub fn save_mapping(store: &dyn Store, set: &MappingSet, expected: u64) -> Result<u64, StoreError> {
    let body = serde_json::to_string(set)
        .map_err(|e| StoreError::Corrupt { table: "documents", detail: format!("mapping: {e}") })?;
    store.save_document(MAPPING, &body, Some(expected))
}

/// A tenant as a source listed it, with the source's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedTenant {
    /// The tenant.
    #[serde(flatten)]
    pub tenant: Tenant,
    /// The source that listed it (`ksc/events`, `kbh/statuses`).
    pub source: String,
}

/// The tenants and accounts the leader last read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// Every listed tenant, by id (one entry per tenant, the first source that listed it).
    pub tenants: Vec<ListedTenant>,
    /// The PSA's accounts.
    pub accounts: Vec<Account>,
    /// When it was read.
    pub at: Option<DateTime<Utc>>,
}

/// The stored directory (empty when no leader wrote one yet).
pub fn load_directory(store: &dyn Store) -> Result<Directory, StoreError> {
    let Some((body, _)) = store.document(DIRECTORY)? else { return Ok(Directory::default()) };
    serde_json::from_str(&body)
        .map_err(|e| StoreError::Corrupt { table: "documents", detail: format!("directory: {e}") })
}

/// Stores the directory (its one writer is the leading engine).
pub fn save_directory(store: &dyn Store, directory: &Directory) -> Result<(), StoreError> {
    let body = serde_json::to_string(directory)
        .map_err(|e| StoreError::Corrupt { table: "documents", detail: format!("directory: {e}") })?;
    store.save_document(DIRECTORY, &body, None).map(|_| ())
}
