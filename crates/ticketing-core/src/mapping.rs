//! Mapping tenants to PSA accounts: the set edited in the product (with a revision, changed by
//! compare-and-swap like the rules), file entries that stay authoritative for their tenants,
//! and suggestions ranked by how alike the names are. A suggestion is never applied by itself:
//! only [`MappingSet::set`] and [`MappingSet::accept`] map.
//!
//! # Scores
//! Names are compared after [`normalise_name`] (case, punctuation, `&`/`+` as "and", a leading
//! "the" and trailing legal suffixes such as Inc, LLC, Ltd, GmbH, Corp, Co dropped). Equal
//! normalised names score 1.0. Otherwise the score is the larger of
//! - Jaro–Winkler similarity of the normalised names, and
//! - the token-set overlap `|A ∩ B| / max(|A|, |B|)` of their words,
//!
//! capped at 0.99, so an exact normalised match always ranks first. Below [`SUGGESTION_FLOOR`]
//! nothing is suggested ("nothing close").

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{PsaId, TenantId};
use crate::ports::Account;

/// Suggestions scoring below this are not made.
pub const SUGGESTION_FLOOR: f64 = 0.75;

/// The highest score of names that are not equal once normalised.
pub const NEAR_MATCH_CAP: f64 = 0.99;

/// Legal-form words dropped from the end of a name (after punctuation is gone).
const LEGAL_SUFFIXES: &[&str] = &[
    "inc",
    "incorporated",
    "llc",
    "ltd",
    "limited",
    "gmbh",
    "corp",
    "corporation",
    "co",
    "company",
    "plc",
    "ag",
    "sa",
    "sas",
    "sarl",
    "bv",
    "nv",
    "pty",
    "llp",
    "lp",
    "srl",
    "spa",
    "oy",
    "ab",
    "as",
    "kg",
    "ug",
    "kft",
    "sro",
];

/// A name reduced to what identifies the organisation: lower case, punctuation as spaces,
/// `&` and `+` as "and", whitespace collapsed, a leading "the" and trailing legal suffixes
/// (Inc, LLC, Ltd, GmbH, Corp, Co, …, repeatedly: "Acme Co. Ltd" → "acme") dropped. Letters
/// and digits of every script are kept. A name made only of a suffix keeps it ("Co" → "co").
pub fn normalise_name(name: &str) -> String {
    let mut spaced = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '&' | '+' => spaced.push_str(" and "),
            // "A.B.C." and "O'Brien" stay one word.
            '.' | '\'' | '’' => {}
            c if c.is_alphanumeric() => spaced.extend(c.to_lowercase()),
            _ => spaced.push(' '),
        }
    }
    let mut words: Vec<&str> = spaced.split_whitespace().collect();
    if words.len() > 1 && words[0] == "the" {
        words.remove(0);
    }
    while words.len() > 1 && words.last().is_some_and(|w| LEGAL_SUFFIXES.contains(w)) {
        words.pop();
    }
    words.join(" ")
}

/// How alike a tenant's and an account's names are, in `0..=1` (see the module's docs).
pub fn score(tenant_name: &str, account_name: &str) -> f64 {
    score_normalised(&normalise_name(tenant_name), &normalise_name(account_name))
}

fn score_normalised(a: &str, b: &str) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    if a == b {
        return 1.0;
    }
    let jw = strsim::jaro_winkler(a, b);
    let ta: BTreeSet<&str> = a.split(' ').collect();
    let tb: BTreeSet<&str> = b.split(' ').collect();
    let common = ta.intersection(&tb).count() as f64;
    let overlap = common / ta.len().max(tb.len()) as f64;
    jw.max(overlap).clamp(0.0, NEAR_MATCH_CAP)
}

/// A PSA account suggested for a tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    /// The account.
    pub account_id: PsaId,
    /// Its name.
    pub account_name: String,
    /// Whether it is active (tickets go only to active accounts).
    pub active: bool,
    /// How alike the names are, `0..=1`; 1 is an exact match once normalised.
    pub score: f64,
}

/// The accounts most like `tenant_name`, best first (exact normalised matches first; equal
/// scores: active first, then by name and id), at most `limit`, none below
/// [`SUGGESTION_FLOOR`]. Inactive accounts are included, marked.
pub fn suggest(tenant_name: &str, accounts: &[Account], limit: usize) -> Vec<Suggestion> {
    let tenant = normalise_name(tenant_name);
    let mut all: Vec<Suggestion> = accounts
        .iter()
        .map(|a| Suggestion {
            account_id: a.id,
            account_name: a.name.clone(),
            active: a.active,
            score: score_normalised(&tenant, &normalise_name(&a.name)),
        })
        .filter(|s| s.score >= SUGGESTION_FLOOR)
        .collect();
    all.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then(y.active.cmp(&x.active))
            .then_with(|| x.account_name.cmp(&y.account_name))
            .then(x.account_id.0.cmp(&y.account_id.0))
    });
    all.truncate(limit);
    all
}

/// Where a tenant's mapping comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingSource {
    /// The configuration file's `[[mapping]]`: authoritative, read-only in the product.
    File,
    /// Edited in the product (API, CLI, UI) and kept in the store.
    Store,
}

/// The mapping edited in the product, at a store revision. Several tenants may map to one
/// account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingSet {
    /// The store revision this set is (0: none stored yet). Not part of the stored body.
    #[serde(skip)]
    pub revision: u64,
    /// Tenant → account.
    pub entries: BTreeMap<TenantId, PsaId>,
}

/// Why a mapping edit was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MappingEditError {
    /// The set changed since the editor read it.
    #[error("the mapping changed elsewhere (now revision {current}, the change was based on {expected})")]
    Stale {
        /// The revision the editor had.
        expected: u64,
        /// The current revision.
        current: u64,
    },
    /// The tenant is mapped in the configuration file, which stays authoritative.
    #[error("tenant {tenant} is mapped in the configuration file; change it there")]
    FromFile {
        /// The tenant.
        tenant: TenantId,
    },
    /// Unmapping a tenant that is not mapped in the product.
    #[error("tenant {tenant} is not mapped")]
    NotMapped {
        /// The tenant.
        tenant: TenantId,
    },
    /// The PSA has no such account.
    #[error("the PSA has no account {account}")]
    UnknownAccount {
        /// The account id asked for.
        account: PsaId,
    },
    /// A minimum score outside `0..=1`.
    #[error("min_score must be between 0 and 1, not {min_score}")]
    BadScore {
        /// What was given.
        min_score: f64,
    },
}

/// A mapping [`MappingSet::accept`] made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accepted {
    /// The tenant.
    pub tenant: TenantId,
    /// The account it now maps to.
    pub account_id: PsaId,
    /// The account's name.
    pub account_name: String,
    /// The suggestion's score.
    pub score: f64,
}

impl MappingSet {
    fn check(&self, expected: u64) -> Result<(), MappingEditError> {
        if expected == self.revision {
            Ok(())
        } else {
            Err(MappingEditError::Stale { expected, current: self.revision })
        }
    }

    fn next(&self) -> Self {
        Self { revision: self.revision + 1, entries: self.entries.clone() }
    }

    /// Maps `tenant` to `account` (a new set at the next revision), if the editor saw this
    /// revision, the tenant is not a file entry and the PSA has the account.
    pub fn set(
        &self,
        tenant: &TenantId,
        account: PsaId,
        expected: u64,
        file_tenants: &BTreeSet<TenantId>,
        accounts: &[Account],
    ) -> Result<Self, MappingEditError> {
        self.check(expected)?;
        if file_tenants.contains(tenant) {
            return Err(MappingEditError::FromFile { tenant: tenant.clone() });
        }
        if !accounts.iter().any(|a| a.id == account) {
            return Err(MappingEditError::UnknownAccount { account });
        }
        let mut next = self.next();
        next.entries.insert(tenant.clone(), account);
        Ok(next)
    }

    /// Unmaps `tenant` (a new set at the next revision).
    pub fn unset(
        &self,
        tenant: &TenantId,
        expected: u64,
        file_tenants: &BTreeSet<TenantId>,
    ) -> Result<Self, MappingEditError> {
        self.check(expected)?;
        if file_tenants.contains(tenant) {
            return Err(MappingEditError::FromFile { tenant: tenant.clone() });
        }
        if !self.entries.contains_key(tenant) {
            return Err(MappingEditError::NotMapped { tenant: tenant.clone() });
        }
        let mut next = self.next();
        next.entries.remove(tenant);
        Ok(next)
    }

    /// Maps every one of `unmapped` (tenant id, name) whose best suggestion scores at least
    /// `min_score`, is an active account and is unambiguous (no other account scores the
    /// same). Answers the new set and what it mapped (nothing mapped: the same set, the same
    /// revision).
    pub fn accept(
        &self,
        expected: u64,
        min_score: f64,
        unmapped: &[(TenantId, String)],
        accounts: &[Account],
    ) -> Result<(Self, Vec<Accepted>), MappingEditError> {
        self.check(expected)?;
        if !(0.0..=1.0).contains(&min_score) {
            return Err(MappingEditError::BadScore { min_score });
        }
        let mut accepted = Vec::new();
        for (tenant, name) in unmapped {
            if self.entries.contains_key(tenant) {
                continue;
            }
            let best = suggest(name, accounts, 2);
            let Some(first) = best.first() else { continue };
            let tied = best.get(1).is_some_and(|second| second.score == first.score);
            if first.score >= min_score && first.active && !tied {
                accepted.push(Accepted {
                    tenant: tenant.clone(),
                    account_id: first.account_id,
                    account_name: first.account_name.clone(),
                    score: first.score,
                });
            }
        }
        if accepted.is_empty() {
            return Ok((self.clone(), accepted));
        }
        let mut next = self.next();
        for a in &accepted {
            next.entries.insert(a.tenant.clone(), a.account_id);
        }
        Ok((next, accepted))
    }
}

/// The mapping in force: file entries for their tenants, the product's for every other.
pub fn effective(file: &BTreeMap<TenantId, PsaId>, store: &MappingSet) -> BTreeMap<TenantId, (PsaId, MappingSource)> {
    let mut all: BTreeMap<TenantId, (PsaId, MappingSource)> =
        store.entries.iter().map(|(t, a)| (t.clone(), (*a, MappingSource::Store))).collect();
    for (t, a) in file {
        all.insert(t.clone(), (*a, MappingSource::File));
    }
    all
}
