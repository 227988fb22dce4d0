//! Mapping tenants to PSA accounts: the set edited in the product (with a revision, changed by
//! compare-and-swap like the rules), file entries that stay authoritative for their tenants,
//! and suggestions ranked by how alike the names are. A suggestion is never applied by itself:
//! only [`MappingSet::set`] and [`MappingSet::accept`] map.
//!
//! # Scores
//! Names are compared after [`normalise_name`] (case, punctuation, `&`/`+` as "and", a leading
//! "the" and trailing legal suffixes such as Inc, LLC, Ltd, GmbH, Corp, Co dropped). Equal
//! normalised names score 1.0. Otherwise, with `a` and `b` the normalised names:
//!
//! ```text
//! chars = (jaro_winkler(a, b) + normalized_levenshtein(a, b)) / 2      (strsim)
//! words = (W / max(|A|, |B|) + W / min(|A|, |B|)) / 2
//! score = min(0.99, max(words, (words + chars) / 2))
//! ```
//!
//! where `A`, `B` are the sets of words of `a`, `b` and `W` sums the Jaro–Winkler similarity
//! of the word pairs matched one to one (greedily, most alike first), counting only pairs at
//! least [`WORD_MATCH`] alike: equal words, or one word with a typo ("industires"). `W / max`
//! is how much of both names is shared, `W / min` how much of the shorter name is in the other
//! ("Acme" in "Acme Main Office").
//!
//! Words carry the score: names that share every word in another order score high, names that
//! share one word of two ("Coastal Medical", "Coastal Dental") at most about three quarters,
//! however alike their letters. The character measure only lifts a score towards itself (it
//! counts half), so a long common prefix ("Springfield Dental", "Springfield Auto Parts") does
//! not make a near match: Jaro–Winkler alone rewards prefixes too much to be trusted by
//! [`MappingSet::accept`] ("Coastal Medical" and "Coastal Dental" would be 0.92), and
//! Levenshtein alone punishes a missing word too much.
//!
//! Non-exact scores are capped at [`NEAR_MATCH_CAP`], so an exact normalised match always ranks
//! first. Below [`SUGGESTION_FLOOR`] nothing is suggested ("nothing close").

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{PsaId, TenantId};
use crate::ports::Account;

/// Suggestions scoring below this are not made. A typo or a plural scores 0.9 and more, a
/// missing word of three about 0.8, one word in common of two 0.5 to 0.75 (by how alike the
/// other words' letters are: "Coastal Medical"/"Coastal Dental" 0.66, "Acme Dental"/"Acme
/// Plumbing" 0.52), names with no word in common below 0.5 even with a long common prefix.
pub const SUGGESTION_FLOOR: f64 = 0.6;

/// The highest score of names that are not equal once normalised.
pub const NEAR_MATCH_CAP: f64 = 0.99;

/// How alike (Jaro–Winkler) two words must be to count as the same word in a score: "smith"
/// and "smyth" (0.89) do, "medical" and "dental" do not.
pub const WORD_MATCH: f64 = 0.85;

/// Legal-form words dropped from the end of a name (after punctuation is gone, so "S.A." is
/// "sa" and "Pty. Ltd." is "pty ltd"). A trailing "and" goes with them ("Smith & Co",
/// "GmbH & Co. KG").
pub const LEGAL_SUFFIXES: &[&str] = &[
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

/// Combining marks (diacritics written as a separate character, as in a decomposed "ü", and
/// what lower-casing "İ" adds): part of the letter before them, never a word break.
fn is_combining_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// A name reduced to what identifies the organisation: lower case (`char::to_lowercase`),
/// `&` and `+` as "and", `.` and apostrophes removed ("A.B.C." and "O'Brien" stay one word),
/// any other punctuation or symbol as a space, whitespace collapsed, leading "the"s and
/// trailing [`LEGAL_SUFFIXES`] (and "and"s) dropped, repeatedly ("The Globex Co. Ltd" → "globex"). Letters,
/// digits and combining marks of every script are kept. A name is never reduced to nothing by
/// this: one made only of a suffix keeps it ("Co" → "co").
///
/// There is no Unicode normalisation (NFC): a decomposed "u\u{308}" and a composed "ü" differ
/// (they still score about 0.86). Normalising is idempotent: `normalise_name(&normalise_name(x)) == normalise_name(x)`.
pub fn normalise_name(name: &str) -> String {
    let mut spaced = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '&' | '+' => spaced.push_str(" and "),
            '.' | '\'' | '’' => {}
            c if c.is_alphanumeric() => spaced.extend(c.to_lowercase()),
            c if is_combining_mark(c) => spaced.push(c),
            _ => spaced.push(' '),
        }
    }
    let mut words: Vec<&str> = spaced.split_whitespace().collect();
    while words.len() > 1 && words[0] == "the" {
        words.remove(0);
    }
    // "and" too: what is left of "Smith & Co" or "GmbH & Co. KG" once the suffixes are gone.
    while words.len() > 1 && words.last().is_some_and(|w| *w == "and" || LEGAL_SUFFIXES.contains(w)) {
        words.pop();
    }
    words.join(" ")
}

/// How alike a tenant's and an account's names are, in `0..=1`: 1 exactly when the normalised
/// names are equal (and not empty), at most [`NEAR_MATCH_CAP`] otherwise (see the module's
/// docs for the formula).
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
    let chars = (strsim::jaro_winkler(a, b) + strsim::normalized_levenshtein(a, b)) / 2.0;
    let words = word_overlap(a, b);
    words.max((words + chars) / 2.0).clamp(0.0, NEAR_MATCH_CAP)
}

/// `(W / max + W / min) / 2` of the module's docs.
fn word_overlap(a: &str, b: &str) -> f64 {
    let wa: Vec<&str> = a.split(' ').collect::<BTreeSet<_>>().into_iter().collect();
    let wb: Vec<&str> = b.split(' ').collect::<BTreeSet<_>>().into_iter().collect();
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (i, x) in wa.iter().enumerate() {
        for (j, y) in wb.iter().enumerate() {
            let sim = if x == y { 1.0 } else { strsim::jaro_winkler(x, y) };
            if sim >= WORD_MATCH {
                pairs.push((sim, i, j));
            }
        }
    }
    pairs.sort_by(|p, q| q.0.total_cmp(&p.0).then((p.1, p.2).cmp(&(q.1, q.2))));
    let (mut used_a, mut used_b) = (vec![false; wa.len()], vec![false; wb.len()]);
    let mut matched = 0.0;
    for (sim, i, j) in pairs {
        if !used_a[i] && !used_b[j] {
            used_a[i] = true;
            used_b[j] = true;
            matched += sim;
        }
    }
    let (long, short) = (wa.len().max(wb.len()) as f64, wa.len().min(wb.len()) as f64);
    (matched / long + matched / short) / 2.0
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
    /// same). Answers the new set and what it mapped, in the order of `unmapped` (nothing
    /// mapped: the same set, the same revision). Tenants already in the set, and repeats in
    /// `unmapped`, are left alone; the caller leaves file tenants out of `unmapped`.
    ///
    /// `min_score` must be in `0..=1` ([`MappingEditError::BadScore`] otherwise, NaN too); 1.0
    /// accepts exact normalised matches only.
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
            if self.entries.contains_key(tenant) || accepted.iter().any(|a: &Accepted| &a.tenant == tenant) {
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
