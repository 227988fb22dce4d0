//! Mapping tenants to PSA accounts (issue #26): name normalisation, scores on a table of name
//! pairs, suggestions, and the compare-and-swap edits.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use ticketing_core::mapping::{
    MappingEditError, MappingSet, MappingSource, NEAR_MATCH_CAP, SUGGESTION_FLOOR, effective, normalise_name, score,
    suggest,
};
use ticketing_core::model::{PsaId, TenantId};
use ticketing_core::ports::Account;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Equal once normalised: 1.0.
    Exact,
    /// Suggested, below an exact match.
    Near,
    /// Nothing suggested.
    Nothing,
}
use Expect::*;

const PAIRS: &[(&str, &str, Expect)] = &[
    ("Acme Corp", "ACME Corporation", Exact),
    ("Acme, Inc.", "Acme Inc", Exact),
    ("acme llc", "Acme", Exact),
    ("Smith & Sons", "Smith and Sons Ltd", Exact),
    ("Müller GmbH", "müller", Exact),
    ("The Widget Company", "Widget Co.", Exact),
    ("O'Brien Dental", "OBrien Dental LLC", Exact),
    ("Johnson+Johnson", "Johnson and Johnson, Inc.", Exact),
    ("Globex Co. Ltd", "GLOBEX", Exact),
    ("  Initech   Corp ", "Initech", Exact),
    ("Contoso Pty Ltd", "Contoso", Exact),
    ("Northwind Traders", "Northwind Trader", Near),
    ("Acme Widgets", "Acme Widget Co", Near),
    ("Fabrikam Medical Group", "Fabrikam Medical", Near),
    ("Wayne Enterprises", "Wayne Enterprise Inc", Near),
    ("Stark Industries", "Stark Industires", Near),
    ("Umbrella Health Clinic", "Umbrella Clinic", Near),
    ("Tyrell Corp", "Tyrel Corporation", Near),
    ("Acme", "Apex", Nothing),
    ("Globex", "Initech", Nothing),
    ("Dental Care of Springfield", "Springfield Auto Parts", Nothing),
    ("Blue Sky Law", "Red Rock Plumbing", Nothing),
    ("Contoso", "Fabrikam", Nothing),
    ("Hooli", "Pied Piper", Nothing),
];

fn account(id: i64, name: &str, active: bool) -> Account {
    Account { id: PsaId(id), name: name.into(), active }
}

#[test]
fn the_table_of_name_pairs_scores_as_expected() {
    let mut wrong = Vec::new();
    for &(tenant, acct, expect) in PAIRS {
        let s = score(tenant, acct);
        let got = if s == 1.0 {
            Exact
        } else if s >= SUGGESTION_FLOOR {
            Near
        } else {
            Nothing
        };
        if got != expect {
            wrong.push(format!("{tenant:?} vs {acct:?}: {s:.3} ({got:?}, expected {expect:?})"));
        }
        let suggested = suggest(tenant, &[account(1, acct, true)], 5);
        assert_eq!(suggested.is_empty(), expect == Nothing, "{tenant:?} vs {acct:?}: {suggested:?}");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(PAIRS.len() >= 20);
}

#[test]
fn exact_matches_rank_first_inactive_ones_are_marked_and_ties_are_deterministic() {
    let accounts = [
        account(3, "Acme Widgets", true),
        account(2, "ACME Inc", false),
        account(1, "Acme Corporation", true),
        account(4, "Apex", true),
    ];
    let s = suggest("Acme Corp", &accounts, 10);
    let ids: Vec<i64> = s.iter().map(|x| x.account_id.0).collect();
    // Both exact: the active one first; then the near match; Apex is not close.
    assert_eq!(ids, [1, 2, 3], "{s:?}");
    assert!(!s[1].active && s[1].score == 1.0);
    assert!(s[2].score <= NEAR_MATCH_CAP, "a near match stays below an exact one");
    assert_eq!(suggest("Acme Corp", &accounts, 1).len(), 1);
    assert!(suggest("Nothing Like It", &accounts, 10).is_empty());
}

fn tenants(ids: &[&str]) -> BTreeSet<TenantId> {
    ids.iter().map(|t| TenantId::new(*t)).collect()
}

#[test]
fn edits_are_compare_and_swap_and_file_entries_are_refused() {
    let accounts = [account(7, "Acme", true), account(8, "Globex", true)];
    let file = tenants(&["ksc:main/vs:1"]);
    let empty = MappingSet::default();
    let t2 = TenantId::new("ksc:main/vs:2");
    let t3 = TenantId::new("kbh:c-3");
    let one = empty.set(&t2, PsaId(7), 0, &file, &accounts).unwrap();
    assert_eq!(one.revision, 1);
    // Several tenants may map to one account.
    let two = one.set(&t3, PsaId(7), 1, &file, &accounts).unwrap();
    assert_eq!((two.revision, two.entries.len()), (2, 2));
    assert_eq!(two.set(&t3, PsaId(8), 1, &file, &accounts), Err(MappingEditError::Stale { expected: 1, current: 2 }));
    assert_eq!(
        two.set(&TenantId::new("ksc:main/vs:1"), PsaId(8), 2, &file, &accounts),
        Err(MappingEditError::FromFile { tenant: TenantId::new("ksc:main/vs:1") })
    );
    assert_eq!(
        two.unset(&TenantId::new("ksc:main/vs:1"), 2, &file),
        Err(MappingEditError::FromFile { tenant: TenantId::new("ksc:main/vs:1") })
    );
    assert_eq!(
        two.set(&t3, PsaId(99), 2, &file, &accounts),
        Err(MappingEditError::UnknownAccount { account: PsaId(99) })
    );
    let three = two.unset(&t2, 2, &file).unwrap();
    assert_eq!((three.revision, three.entries.len()), (3, 1));
    assert_eq!(three.unset(&t2, 3, &file), Err(MappingEditError::NotMapped { tenant: t2 }));
}

#[test]
fn accept_maps_only_clear_active_unambiguous_best_suggestions_at_or_above_the_score() {
    let accounts = [
        account(1, "Acme Corporation", true),
        account(2, "Globex", false),
        account(3, "Initech Ltd", true),
        account(4, "Initech Inc", true),
        account(5, "Northwind Trader", true),
    ];
    let unmapped = vec![
        (TenantId::new("a"), "ACME Corp".to_owned()), // exact, active: mapped
        (TenantId::new("g"), "Globex".to_owned()),    // exact but inactive: not
        (TenantId::new("i"), "Initech".to_owned()),   // two exact: ambiguous, not
        (TenantId::new("n"), "Northwind Traders".to_owned()), // near: only below 0.9
        (TenantId::new("z"), "Zorg Industries".to_owned()), // nothing close
    ];
    let set = MappingSet::default();
    let (next, accepted) = set.accept(0, 0.9, &unmapped, &accounts).unwrap();
    let mapped: Vec<(&str, i64)> = accepted.iter().map(|a| (a.tenant.as_str(), a.account_id.0)).collect();
    assert!(mapped.contains(&("a", 1)), "{accepted:?}");
    assert!(!mapped.iter().any(|(t, _)| ["g", "i", "z"].contains(t)), "{accepted:?}");
    assert_eq!(next.revision, 1);
    assert_eq!(next.entries.len(), accepted.len());
    let (_, at_half) = set.accept(0, 0.5, &unmapped, &accounts).unwrap();
    assert!(at_half.iter().any(|a| a.tenant.as_str() == "n"), "{at_half:?}");
    // Nothing to accept: the same set, the same revision.
    let (same, none) = next.accept(1, 1.0, &[], &accounts).unwrap();
    assert!(none.is_empty() && same == next);
    assert_eq!(set.accept(0, 1.5, &unmapped, &accounts), Err(MappingEditError::BadScore { min_score: 1.5 }));
    assert!(matches!(next.accept(0, 0.9, &unmapped, &accounts), Err(MappingEditError::Stale { .. })));
}

#[test]
fn file_entries_win_in_the_effective_mapping() {
    let file: BTreeMap<TenantId, PsaId> = [(TenantId::new("t1"), PsaId(1))].into();
    let store =
        MappingSet { revision: 4, entries: [(TenantId::new("t1"), PsaId(9)), (TenantId::new("t2"), PsaId(2))].into() };
    let all = effective(&file, &store);
    assert_eq!(all[&TenantId::new("t1")], (PsaId(1), MappingSource::File));
    assert_eq!(all[&TenantId::new("t2")], (PsaId(2), MappingSource::Store));
}

proptest! {
    #[test]
    fn scores_stay_in_range_and_a_name_matches_itself(a in "[A-Za-z&.,' ]{0,30}", b in "[A-Za-z&.,' ]{0,30}") {
        let s = score(&a, &b);
        prop_assert!((0.0..=1.0).contains(&s));
        if !normalise_name(&a).is_empty() {
            prop_assert_eq!(score(&a, &a), 1.0);
        }
        let n = normalise_name(&a);
        prop_assert_eq!(normalise_name(&n), n, "normalising is idempotent");
    }

    #[test]
    fn suggestions_come_sorted_best_first(names in proptest::collection::vec("[A-Za-z ]{1,20}", 0..12), t in "[A-Za-z ]{1,20}") {
        let accounts: Vec<Account> = names.iter().enumerate().map(|(i, n)| account(i as i64, n, i % 2 == 0)).collect();
        let s = suggest(&t, &accounts, 100);
        prop_assert!(s.windows(2).all(|w| w[0].score >= w[1].score));
        prop_assert!(s.iter().all(|x| x.score >= SUGGESTION_FLOOR));
    }
}
