//! Mapping tenants to PSA accounts (issue #26): name normalisation, scores on a table of name
//! pairs, suggestions, and the compare-and-swap edits.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use ticketing_core::mapping::{
    Accepted, MappingEditError, MappingSet, MappingSource, NEAR_MATCH_CAP, SUGGESTION_FLOOR, Suggestion, effective,
    normalise_name, score, suggest,
};
use ticketing_core::model::{PsaId, TenantId};
use ticketing_core::ports::Account;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Equal once normalised: 1.0.
    Exact,
    /// Suggested, below an exact match, scoring at least this much.
    Near(f64),
    /// Suggested (at or above the floor) but below 0.75: one word of two in common.
    Weak,
    /// Nothing suggested.
    Nothing,
}
use Expect::*;

/// A typo or a plural: accepted at 0.9.
const TYPO: f64 = 0.9;
/// A word more or less: suggested well above the floor.
const MISSING_WORD: f64 = 0.8;

const PAIRS: &[(&str, &str, Expect)] = &[
    // Equal once normalised: case, punctuation, "&"/"+", legal suffixes, a leading "the".
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
    ("Hoffmann GmbH & Co. KG", "Hoffmann", Exact),
    ("Smith & Co.", "SMITH", Exact),
    ("Acme-Widgets", "acme widgets", Exact),
    ("ÅBERG AB", "Åberg", Exact),
    ("Banco S.A.", "banco", Exact),
    ("ΑΘΗΝΑ", "αθηνα", Exact),
    // Near misses: a typo, a plural, a word more or less, words in another order.
    ("Northwind Traders", "Northwind Trader", Near(TYPO)),
    ("Acme Widgets", "Acme Widget Co", Near(TYPO)),
    ("Wayne Enterprises", "Wayne Enterprise Inc", Near(TYPO)),
    ("Stark Industries", "Stark Industires", Near(TYPO)),
    ("Tyrell Corp", "Tyrel Corporation", Near(TYPO)),
    ("Microsoft", "Microsft", Near(TYPO)),
    ("Smith Plumbing", "Smyth Plumbing", Near(TYPO)),
    ("Smith Jones", "Jones Smith", Near(TYPO)),
    ("Mu\u{308}ller", "Müller", Near(MISSING_WORD)), // decomposed and composed: no NFC
    ("Fabrikam Medical Group", "Fabrikam Medical", Near(MISSING_WORD)),
    ("Umbrella Health Clinic", "Umbrella Clinic", Near(MISSING_WORD)),
    ("Acme Main Office", "Acme", Weak),
    ("Coastal Medical", "Coastal Dental", Weak),
    ("Alpha Bank", "Alpha Beta", Weak),
    // Nothing close, including a long common prefix with no word in common.
    ("Acme", "Apex", Nothing),
    ("Globex", "Initech", Nothing),
    ("Dental Care of Springfield", "Springfield Auto Parts", Nothing),
    ("Springfield Dental", "Springfield Auto Parts", Nothing),
    ("Acme Dental", "Acme Plumbing", Nothing),
    ("Blue Sky Law", "Red Rock Plumbing", Nothing),
    ("Contoso", "Fabrikam", Nothing),
    ("Hooli", "Pied Piper", Nothing),
    ("Globex", "", Nothing),
    ("", "", Nothing),
];

fn account(id: i64, name: &str, active: bool) -> Account {
    Account { id: PsaId(id), name: name.into(), active }
}

fn tid(t: &str) -> TenantId {
    TenantId::new(t)
}

#[test]
fn the_table_of_name_pairs_scores_as_expected() {
    let mut wrong = Vec::new();
    for &(tenant, acct, expect) in PAIRS {
        let s = score(tenant, acct);
        let ok = match expect {
            Exact => s == 1.0,
            Near(at_least) => (at_least..=NEAR_MATCH_CAP).contains(&s),
            Weak => (SUGGESTION_FLOOR..0.75).contains(&s),
            Nothing => s < SUGGESTION_FLOOR,
        };
        if !ok {
            wrong.push(format!("{tenant:?} vs {acct:?}: {s:.3}, expected {expect:?}"));
        }
        // The table reads the same both ways round.
        assert_eq!(score(acct, tenant), s, "{tenant:?} vs {acct:?}");
        let suggested = suggest(tenant, &[account(1, acct, true)], 5);
        assert_eq!(suggested.is_empty(), expect == Nothing, "{tenant:?} vs {acct:?}: {suggested:?}");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(PAIRS.len() >= 24);
}

#[test]
fn normalising_lowers_case_drops_punctuation_suffixes_and_a_leading_the() {
    for (name, want) in [
        ("The Globex Co. Ltd", "globex"),
        ("  ACME   Widgets,  Inc. ", "acme widgets"),
        ("Smith & Co", "smith"),
        ("Smith and", "smith"),
        ("&", "and"),
        ("Müller GmbH & Co. KG", "müller"),
        ("A.B.C. Pty. Ltd.", "abc"),
        ("O’Brien's", "obriens"),
        ("R+D Labs", "r and d labs"),
        ("Acme (Main Office) / HQ", "acme main office hq"),
        ("3M Co", "3m"),
        ("The The Band", "band"),
        ("Co", "co"),
        ("The", "the"),
        ("The Co", "co"),
        ("Company Ltd", "company"),
        ("Ltd Holdings", "ltd holdings"),
        ("東京 Ltd", "東京"),
        ("İstanbul", "i\u{307}stanbul"),
        ("Mu\u{308}ller", "mu\u{308}ller"),
        ("!!!", ""),
        ("", ""),
    ] {
        assert_eq!(normalise_name(name), want, "{name:?}");
    }
}

#[test]
fn normalising_is_idempotent_for_every_character() {
    for c in (0..=0x10FFFF).filter_map(char::from_u32) {
        for s in [format!("a{c}b"), format!("{c}"), format!("the {c} co")] {
            let n = normalise_name(&s);
            assert_eq!(normalise_name(&n), n, "U+{:04X} in {s:?}", c as u32);
        }
    }
}

#[test]
fn exact_matches_rank_first_inactive_ones_are_marked_and_ties_are_deterministic() {
    let accounts = [
        account(3, "Acme Widgets", true),
        account(2, "ACME Inc", false),
        account(1, "Acme Corporation", true),
        account(4, "Apex", true),
        account(5, "Acme Main Office", true),
    ];
    let s = suggest("Acme Corp", &accounts, 10);
    let ids: Vec<i64> = s.iter().map(|x| x.account_id.0).collect();
    // Both exact: the active one first; then the near matches, best first; Apex is not close.
    assert_eq!(ids, [1, 2, 3, 5], "{s:?}");
    assert!(!s[1].active && s[1].score == 1.0 && s[1].account_name == "ACME Inc");
    assert!(s[0].active && s[2].active);
    assert!(s[2].score <= NEAR_MATCH_CAP && s[2].score > s[3].score, "{s:?}");
    assert_eq!(suggest("Acme Corp", &accounts, 1).len(), 1);
    assert!(suggest("Acme Corp", &accounts, 0).is_empty());
    assert!(suggest("Nothing Like It", &accounts, 10).is_empty());
    assert!(suggest("Acme", &[], 10).is_empty());
}

#[test]
fn equal_scores_order_active_first_then_by_name_then_by_id() {
    let accounts = [
        account(9, "Acme Ltd", true),
        account(8, "ACME", false),
        account(7, "Acme Inc", true),
        account(6, "Acme Inc", true),
        account(5, "Acme Inc", false),
    ];
    let s = suggest("Acme", &accounts, 10);
    let got: Vec<(i64, bool)> = s.iter().map(|x| (x.account_id.0, x.active)).collect();
    // All exact. Active: "Acme Inc" (6, 7) before "Acme Ltd" (9); then inactive: "ACME" sorts
    // before "Acme Inc" (byte order of the names as the PSA spells them).
    assert_eq!(got, [(6, true), (7, true), (9, true), (8, false), (5, false)]);
    let mut reversed = accounts.to_vec();
    reversed.reverse();
    assert_eq!(suggest("Acme", &reversed, 10), s, "input order does not matter");
}

#[test]
fn a_suggestion_serializes_with_its_fields() {
    let s = suggest("Acme Corp", &[account(29683616, "ACME Corporation", false)], 1);
    let json = serde_json::to_value(&s[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"account_id": 29683616, "account_name": "ACME Corporation", "active": false, "score": 1.0})
    );
}

fn tenants(ids: &[&str]) -> BTreeSet<TenantId> {
    ids.iter().map(|t| tid(t)).collect()
}

#[test]
fn edits_are_compare_and_swap_and_file_entries_are_refused() {
    let accounts = [account(7, "Acme", true), account(8, "Globex", true), account(9, "Old", false)];
    let file = tenants(&["ksc:main/vs:1"]);
    let empty = MappingSet::default();
    assert_eq!(empty.revision, 0);
    let t2 = tid("ksc:main/vs:2");
    let t3 = tid("kbh:c-3");
    let one = empty.set(&t2, PsaId(7), 0, &file, &accounts).unwrap();
    assert_eq!(one.revision, 1);
    assert_eq!(empty.entries.len(), 0, "an edit answers a new set and leaves the old one alone");
    // Several tenants may map to one account.
    let two = one.set(&t3, PsaId(7), 1, &file, &accounts).unwrap();
    assert_eq!((two.revision, two.entries.len()), (2, 2));
    assert_eq!(two.entries[&t2], two.entries[&t3]);
    assert_eq!(two.set(&t3, PsaId(8), 1, &file, &accounts), Err(MappingEditError::Stale { expected: 1, current: 2 }));
    assert_eq!(two.set(&t3, PsaId(8), 3, &file, &accounts), Err(MappingEditError::Stale { expected: 3, current: 2 }));
    assert_eq!(two.unset(&t3, 0, &file), Err(MappingEditError::Stale { expected: 0, current: 2 }));
    assert_eq!(
        two.set(&tid("ksc:main/vs:1"), PsaId(8), 2, &file, &accounts),
        Err(MappingEditError::FromFile { tenant: tid("ksc:main/vs:1") })
    );
    assert_eq!(
        two.unset(&tid("ksc:main/vs:1"), 2, &file),
        Err(MappingEditError::FromFile { tenant: tid("ksc:main/vs:1") })
    );
    assert_eq!(
        two.set(&t3, PsaId(99), 2, &file, &accounts),
        Err(MappingEditError::UnknownAccount { account: PsaId(99) })
    );
    // An inactive account is a known one: mapping to it is the editor's choice.
    let remapped = two.set(&t3, PsaId(9), 2, &file, &accounts).unwrap();
    assert_eq!((remapped.revision, remapped.entries[&t3]), (3, PsaId(9)));
    let four = remapped.unset(&t2, 3, &file).unwrap();
    assert_eq!((four.revision, four.entries.len()), (4, 1));
    assert_eq!(four.unset(&t2, 4, &file), Err(MappingEditError::NotMapped { tenant: t2 }));
}

#[test]
fn edit_errors_name_what_was_refused() {
    let messages = [
        MappingEditError::Stale { expected: 1, current: 2 }.to_string(),
        MappingEditError::FromFile { tenant: tid("ksc:main/vs:1") }.to_string(),
        MappingEditError::NotMapped { tenant: tid("kbh:c-3") }.to_string(),
        MappingEditError::UnknownAccount { account: PsaId(99) }.to_string(),
        MappingEditError::BadScore { min_score: 1.5 }.to_string(),
    ];
    for (message, part) in messages.iter().zip(["revision 2", "ksc:main/vs:1", "kbh:c-3", "99", "1.5"]) {
        assert!(message.contains(part), "{message:?}");
        assert!(!message.ends_with('.'), "{message:?}");
    }
}

#[test]
fn the_stored_body_is_the_entries_and_the_revision_is_kept_beside_it() {
    let set = MappingSet { revision: 7, entries: [(tid("ksc:main/vs:1"), PsaId(29683616))].into() };
    let json = serde_json::to_string(&set).unwrap();
    assert_eq!(json, r#"{"entries":{"ksc:main/vs:1":29683616}}"#);
    let back: MappingSet = serde_json::from_str(&json).unwrap();
    assert_eq!((back.revision, back.entries), (0, set.entries));
    assert_eq!(serde_json::to_string(&MappingSource::File).unwrap(), r#""file""#);
    assert_eq!(serde_json::to_string(&MappingSource::Store).unwrap(), r#""store""#);
}

fn named(rows: &[(&str, &str)]) -> Vec<(TenantId, String)> {
    rows.iter().map(|(t, n)| (tid(t), (*n).to_owned())).collect()
}

#[test]
fn accept_maps_only_clear_active_unambiguous_best_suggestions_at_or_above_the_score() {
    let accounts = [
        account(1, "Acme Corporation", true),
        account(2, "Globex", false),
        account(3, "Initech Ltd", true),
        account(4, "Initech Inc", true),
        account(5, "Northwind Trader", true),
        account(6, "Coastal Dental", true),
        account(7, "Hooli", false),
        account(8, "Hooli Labs", true),
    ];
    let unmapped = named(&[
        ("a", "ACME Corp"),         // exact, active: mapped
        ("g", "Globex"),            // exact but inactive: not
        ("i", "Initech"),           // two exact: ambiguous, not
        ("n", "Northwind Traders"), // a plural: mapped at 0.9
        ("c", "Coastal Medical"),   // one word of two: only at a low score
        ("h", "Hooli"),             // the best is inactive: the active runner-up is not taken
        ("z", "Zorg Industries"),   // nothing close
    ]);
    let set = MappingSet::default();
    let (next, accepted) = set.accept(0, 0.9, &unmapped, &accounts).unwrap();
    let mapped: Vec<(&str, i64)> = accepted.iter().map(|a| (a.tenant.as_str(), a.account_id.0)).collect();
    assert_eq!(mapped, [("a", 1), ("n", 5)], "{accepted:?}");
    assert_eq!(
        accepted[0],
        Accepted { tenant: tid("a"), account_id: PsaId(1), account_name: "Acme Corporation".into(), score: 1.0 }
    );
    assert_eq!(accepted[1].account_name, "Northwind Trader");
    assert!((0.9..1.0).contains(&accepted[1].score));
    assert_eq!(next.revision, 1, "one accept is one revision, however many it maps");
    assert_eq!(next.entries, [(tid("a"), PsaId(1)), (tid("n"), PsaId(5))].into());

    let (_, exact_only) = set.accept(0, 1.0, &unmapped, &accounts).unwrap();
    assert_eq!(exact_only.iter().map(|a| a.tenant.as_str()).collect::<Vec<_>>(), ["a"]);
    let (_, low) = set.accept(0, 0.6, &unmapped, &accounts).unwrap();
    assert_eq!(low.iter().map(|a| a.tenant.as_str()).collect::<Vec<_>>(), ["a", "n", "c"]);
    let (_, zero) = set.accept(0, 0.0, &unmapped, &accounts).unwrap();
    assert!(!zero.iter().any(|a| ["g", "i", "h", "z"].contains(&a.tenant.as_str())), "{zero:?}");
}

#[test]
fn accept_leaves_mapped_and_repeated_tenants_alone() {
    let accounts = [account(1, "Acme", true), account(2, "Globex", true)];
    let set = MappingSet { revision: 5, entries: [(tid("a"), PsaId(2))].into() };
    let unmapped = named(&[("a", "Acme"), ("g", "Globex"), ("g", "Globex Inc")]);
    let (next, accepted) = set.accept(5, 0.9, &unmapped, &accounts).unwrap();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(next.entries, [(tid("a"), PsaId(2)), (tid("g"), PsaId(2))].into());
    assert_eq!(next.revision, 6);
}

#[test]
fn accept_checks_its_revision_and_its_score() {
    let accounts = [account(1, "Acme", true)];
    let unmapped = named(&[("a", "Acme")]);
    let set = MappingSet { revision: 2, entries: BTreeMap::new() };
    // Nothing to accept: the same set, the same revision.
    let (same, none) = set.accept(2, 1.0, &[], &accounts).unwrap();
    assert!(none.is_empty() && same == set);
    for bad in [1.5, -0.1, f64::NAN, f64::INFINITY] {
        let got = set.accept(2, bad, &unmapped, &accounts);
        assert!(matches!(got, Err(MappingEditError::BadScore { min_score }) if min_score.to_bits() == bad.to_bits()));
    }
    assert_eq!(set.accept(1, 0.9, &unmapped, &accounts), Err(MappingEditError::Stale { expected: 1, current: 2 }));
}

#[test]
fn file_entries_win_in_the_effective_mapping() {
    let file: BTreeMap<TenantId, PsaId> = [(tid("t1"), PsaId(1)), (tid("t3"), PsaId(3))].into();
    let store = MappingSet { revision: 4, entries: [(tid("t1"), PsaId(9)), (tid("t2"), PsaId(2))].into() };
    let all = effective(&file, &store);
    assert_eq!(all.len(), 3);
    assert_eq!(all[&tid("t1")], (PsaId(1), MappingSource::File));
    assert_eq!(all[&tid("t2")], (PsaId(2), MappingSource::Store));
    assert_eq!(all[&tid("t3")], (PsaId(3), MappingSource::File));
    assert!(effective(&BTreeMap::new(), &MappingSet::default()).is_empty());
}

/// The order `suggest` promises, as a key.
fn rank(s: &Suggestion) -> (std::cmp::Reverse<u64>, bool, String, i64) {
    (std::cmp::Reverse(s.score.to_bits()), !s.active, s.account_name.clone(), s.account_id.0)
}

const NAME: &str = "[A-Za-z&.,'+ -]{0,30}|\\PC{0,12}";

proptest! {
    #[test]
    fn scores_stay_in_range_and_only_equal_normalised_names_score_one(a in NAME, b in NAME) {
        let s = score(&a, &b);
        prop_assert!((0.0..=1.0).contains(&s));
        let (na, nb) = (normalise_name(&a), normalise_name(&b));
        prop_assert_eq!(s == 1.0, !na.is_empty() && na == nb, "{:?} vs {:?}: {}", na, nb, s);
        if !na.is_empty() {
            prop_assert_eq!(score(&a, &a), 1.0);
        }
        // A leading "the" and a trailing suffix make no difference (unless the name is "the").
        if !na.is_empty() && na != "the" {
            prop_assert_eq!(score(&a, &format!("The {a} Ltd.")), 1.0);
        }
    }

    #[test]
    fn normalising_is_idempotent(a in NAME) {
        let n = normalise_name(&a);
        let again = normalise_name(&n);
        prop_assert_eq!(&again, &n);
        prop_assert!(!n.starts_with(' ') && !n.ends_with(' ') && !n.contains("  "));
    }

    #[test]
    fn suggestions_come_sorted_best_first(
        names in proptest::collection::vec("(Acme|Apex|Globex|Widget|Co|The|Inc|&| ){1,4}", 0..12),
        t in "(Acme|Apex|Globex|Widget|Co|The|Inc|&| ){1,4}",
        limit in 0usize..15,
    ) {
        let accounts: Vec<Account> =
            names.iter().enumerate().map(|(i, n)| account(i as i64, n, i % 3 != 0)).collect();
        let s = suggest(&t, &accounts, limit);
        prop_assert!(s.len() <= limit);
        prop_assert!(s.windows(2).all(|w| rank(&w[0]) < rank(&w[1])), "{:?}", s);
        prop_assert!(s.iter().all(|x| x.score >= SUGGESTION_FLOOR));
        for x in &s {
            let a = accounts.iter().find(|a| a.id == x.account_id).unwrap();
            prop_assert_eq!((&a.name, a.active, score(&t, &a.name)), (&x.account_name, x.active, x.score));
        }
        let reversed: Vec<Account> = accounts.iter().rev().cloned().collect();
        prop_assert_eq!(suggest(&t, &reversed, limit), s);
    }

    #[test]
    fn accept_maps_only_what_it_answers_and_only_active_unambiguous_bests(
        names in proptest::collection::vec("(Acme|Apex|Globex|Widget|Co|Inc| ){1,3}", 1..8),
        tenant_names in proptest::collection::vec("(Acme|Apex|Globex|Widget|Co|Inc| ){1,3}", 0..6),
        min_score in 0.0f64..=1.0,
    ) {
        let accounts: Vec<Account> =
            names.iter().enumerate().map(|(i, n)| account(i as i64, n, i % 3 != 0)).collect();
        let unmapped: Vec<(TenantId, String)> =
            tenant_names.iter().enumerate().map(|(i, n)| (tid(&format!("t{i}")), n.clone())).collect();
        let set = MappingSet::default();
        let (next, accepted) = set.accept(0, min_score, &unmapped, &accounts).unwrap();
        prop_assert_eq!(next.revision, u64::from(!accepted.is_empty()));
        prop_assert_eq!(next.entries.len(), accepted.len());
        for a in &accepted {
            prop_assert_eq!(next.entries[&a.tenant], a.account_id);
            let name = &unmapped.iter().find(|(t, _)| *t == a.tenant).unwrap().1;
            let best = suggest(name, &accounts, 2);
            prop_assert!(best[0].active && best[0].account_id == a.account_id && a.score >= min_score);
            prop_assert!(best.get(1).is_none_or(|second| second.score < best[0].score));
        }
    }
}
