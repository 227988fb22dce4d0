//! Operator actions on the ledger, shared by the CLI (`msp-ticketd ledger …`) and the admin API
//! (`/api/ledger…`): list entries by state, and ask for refused creates to be re-planned.
//!
//! A retry is a durable request in the store, not a direct ledger edit: the engine owns the
//! ledger and takes requests on its next tick, re-planning each refused draft with the row's
//! current settings (so fix the rule first). That works the same whether the daemon runs or not.

use ticketing_core::ledger::{Ledger, LedgerEntry};

use crate::rules_ops::OpError;
use crate::store::Store;

/// Which refused creates to re-plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// One entry, named by its ticket key (as `/api/ledger` shows it) or its idempotency key.
    Key(String),
    /// Every entry in state `failed`.
    AllFailed,
}

/// Whether `entry` is the one `name` names.
fn names(entry: &LedgerEntry, name: &str) -> bool {
    entry.key.canonical() == name || entry.idempotency_key.as_str() == name
}

/// The entries in `state` (`planned`, `open`, `closing`, `closed`, `failed`, `dropped`), or all.
pub fn entries<'a>(ledger: &'a Ledger, state: Option<&'a str>) -> impl Iterator<Item = &'a LedgerEntry> + 'a {
    ledger.entries().filter(move |e| state.is_none_or(|s| e.state.name() == s))
}

/// Records a retry request; returns how many failed entries it covers now. A key that names no
/// failed entry is refused with a message saying what it is instead.
pub fn request_retry(store: &dyn Store, target: &Retry) -> Result<usize, OpError> {
    let ledger = store.load_ledger()?;
    let failed: Vec<&LedgerEntry> = entries(&ledger, Some("failed")).collect();
    let (stored, n) = match target {
        Retry::AllFailed => ("*".to_owned(), failed.len()),
        Retry::Key(name) => {
            if !failed.iter().any(|e| names(e, name)) {
                let what = ledger
                    .entries()
                    .find(|e| names(e, name))
                    .map_or_else(|| "no ledger entry has that key".to_owned(), |e| format!("it is {}", e.state.name()));
                return Err(OpError::Invalid(format!(
                    "cannot retry {name}: {what}; only failed creates can be retried"
                )));
            }
            (name.clone(), 1)
        }
    };
    if n > 0 {
        store.request_retry(&stored)?;
    }
    Ok(n)
}
