//! The [`Store`] trait's contract, written once and run against every store: SQLite (a temporary
//! file) and PostgreSQL (a fresh database per test on the cluster named by
//! `MSP_TEST_POSTGRES=postgres://USER@HOST:PORT/postgres`, dropped afterwards; `.ci/install-postgres`
//! starts a throwaway one).
//!
//! Without `MSP_TEST_POSTGRES` the PostgreSQL half says "skipped: MSP_TEST_POSTGRES not set" and
//! passes, unless `MSP_REQUIRE_POSTGRES=1` (CI), where it fails.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use msp_ticketd::store::{
    Commit, CursorKey, Decision, DecisionQuery, Outcome, PostgresStore, SqliteStore, Store, StoreError,
};
use ticketing_core::catalog::Catalog;
use ticketing_core::decide::{Context, EventDecision, decide_event};
use ticketing_core::edit::RuleBook;
use ticketing_core::ledger::{Ledger, LedgerEntry, TicketState, Transition};
use ticketing_core::model::*;
use ticketing_core::ports::{Account, Cursor};
use ticketing_core::rules::RuleSet;
use ticketing_core::secret::Secret;
use ticketing_core::ticket::TicketRef;

// ---------------------------------------------------------------------------------------------
// Fixtures

/// One empty store, openable any number of times (a second `open` is another process on the
/// same data).
struct Fixture {
    open: Box<dyn Fn() -> Box<dyn Store>>,
    cleanup: Option<Box<dyn FnOnce()>>,
}

impl Fixture {
    fn open(&self) -> Box<dyn Store> {
        (self.open)()
    }

    /// `n` more stores on the same data, for threads.
    fn open_shared(&self, n: usize) -> Vec<Arc<dyn Store>> {
        (0..n).map(|_| Arc::from(self.open())).collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(c) = self.cleanup.take() {
            c();
        }
    }
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}_{}_{nanos}", std::process::id(), UNIQUE.fetch_add(1, Ordering::Relaxed))
}

fn sqlite() -> Fixture {
    let dir = std::env::temp_dir().join(format!("msp-store-suite-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.sqlite");
    Fixture {
        open: Box::new(move || Box::new(SqliteStore::open(&path).unwrap())),
        cleanup: Some(Box::new(move || {
            let _ = std::fs::remove_dir_all(&dir);
        })),
    }
}

/// The cluster's URL, or `None` (the test passes as skipped) when none is configured and CI
/// does not require one.
fn postgres_url() -> Option<String> {
    match std::env::var("MSP_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("MSP_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "MSP_REQUIRE_POSTGRES=1 but MSP_TEST_POSTGRES is not set (source .ci/install-postgres)"
            );
            println!("skipped: MSP_TEST_POSTGRES not set");
            None
        }
    }
}

/// Runs SQL on the cluster's maintenance database (tokio-postgres directly, on a thread and
/// runtime of its own, so async tests can call it too).
fn admin(url: &str, sql: &str) {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (client, conn) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect to the test cluster");
            let conn = tokio::spawn(conn);
            client.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            drop(client);
            let _ = conn.await;
        });
    })
    .join()
    .unwrap();
}

/// The URL of the same cluster with another database.
fn with_db(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).expect("MSP_TEST_POSTGRES is a URL");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

fn postgres() -> Option<Fixture> {
    let url = postgres_url()?;
    let db = format!("msp_test_{}", unique());
    admin(&url, &format!("CREATE DATABASE {db}"));
    let store_url = with_db(&url, &db);
    Some(Fixture {
        open: Box::new(move || Box::new(PostgresStore::connect(&store_url, None).unwrap())),
        cleanup: Some(Box::new(move || admin(&url, &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")))),
    })
}

/// Each contract test, once per store.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&super::sqlite()) } )*
        }
        mod postgres {
            $( #[test] fn $name() { if let Some(f) = super::postgres() { super::$name(&f) } } )*
        }
    };
}

suite!(
    the_ledger_commits_and_reloads,
    a_failed_commit_changes_nothing_and_the_cursor_moves_only_with_it,
    rules_are_compare_and_swap,
    concurrent_rule_writers_one_wins,
    the_lease_is_renewed_waited_for_taken_over_and_released,
    concurrent_candidates_one_leads,
    a_fenced_commit_is_refused_and_changes_nothing,
    retry_requests_are_taken_once_in_order,
    event_history_is_kept_once_and_pruned,
    recent_transitions_are_newest_first,
    async_and_sync_callers_alike,
    decisions_are_filtered_newest_first_and_pruned_with_the_history,
    the_store_probe_reports_writable,
    a_relaxed_commit_of_answers_lands_like_a_full_one,
    documents_are_compare_and_swap_and_one_of_concurrent_writers_wins,
);

// ---------------------------------------------------------------------------------------------
// Data

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
}

fn tenant() -> TenantId {
    TenantId::new("ksc:main/vs:1")
}

fn event(id: &str) -> Event {
    Event {
        source_id: SourceEventId::new(id),
        tenant: tenant(),
        product: Product::SecurityCenter,
        class: EventClass::Severity(Severity::Critical),
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap(),
        device: None,
        mailbox: None,
        event_type: "GNRL_EV_VIRUS_FOUND".into(),
        display_name: format!("Malicious object detected ({id})"),
        text: "x".into(),
    }
}

/// A ledger that planned one create per event, and the plans.
fn planned(ids: &[&str]) -> (Ledger, Vec<Event>, Vec<Transition>) {
    let mut rules = RuleSet::default();
    for r in rules.rows.values_mut() {
        r.enabled = true;
    }
    let ctx = Context::new(
        &rules,
        &Catalog::example(),
        [(tenant(), PsaId(1))],
        [Account { id: PsaId(1), name: "A".into(), active: true }],
    );
    let mut ledger = Ledger::new();
    let events: Vec<Event> = ids.iter().map(|id| event(id)).collect();
    let mut transitions = Vec::new();
    for e in &events {
        let EventDecision::Create(c) = decide_event(e, &ctx, &ledger, t0()) else { panic!("no create for {e:?}") };
        ledger.apply(&c.transition(), t0()).unwrap();
        transitions.push(c.transition());
    }
    (ledger, events, transitions)
}

fn entries(ledger: &Ledger, transitions: &[Transition]) -> Vec<Option<LedgerEntry>> {
    transitions.iter().map(|t| ledger.get(t.key()).cloned()).collect()
}

fn pairs<'a>(ts: &'a [Transition], es: &'a [Option<LedgerEntry>]) -> Vec<(&'a Transition, Option<&'a LedgerEntry>)> {
    ts.iter().zip(es).map(|(t, e)| (t, e.as_ref())).collect()
}

fn cursor_key() -> CursorKey {
    CursorKey { source: "ksc:main/events".into(), tenant: tenant() }
}

fn book(enabled: bool) -> RuleBook {
    let mut rules = RuleSet::default();
    if let Some(r) = rules.rows.values_mut().next() {
        r.enabled = enabled;
    }
    RuleBook::new(rules)
}

fn commit_plain<'a>(
    transitions: Vec<(&'a Transition, Option<&'a LedgerEntry>)>,
    events: &'a [Event],
    cursor: Option<(&'a CursorKey, &'a Cursor)>,
    at: DateTime<Utc>,
) -> Commit<'a> {
    Commit {
        transitions,
        events,
        cursors: cursor.into_iter().collect(),
        at: Some(at),
        epoch: None,
        decisions: &[],
        relaxed: false,
    }
}

const SHORT_LEASE: Duration = Duration::from_millis(400);

fn past_short_lease() {
    std::thread::sleep(SHORT_LEASE + Duration::from_millis(250));
}

// ---------------------------------------------------------------------------------------------
// The contract

fn the_ledger_commits_and_reloads(f: &Fixture) {
    let (mut ledger, events, ts) = planned(&["1", "2", "3"]);
    let es = entries(&ledger, &ts);
    let ck = cursor_key();
    {
        let store = f.open();
        assert_eq!(store.load_ledger().unwrap(), Ledger::new(), "a new store is empty");
        assert_eq!(store.cursor(&ck).unwrap(), None);
        store.commit(&commit_plain(pairs(&ts, &es), &events, Some((&ck, &Cursor("7".into()))), t0())).unwrap();
        // One more transition on its own, and one entry removed.
        let opened = Transition::Opened { key: ts[0].key().clone(), ticket: TicketRef { id: PsaId(9), number: None } };
        ledger.apply(&opened, t0()).unwrap();
        store.commit(&commit_plain(vec![(&opened, ledger.get(opened.key()))], &[], None, t0())).unwrap();
        store.commit(&commit_plain(vec![(&ts[2], None)], &[], None, t0())).unwrap();
    }
    // Another process (or a restart) sees all of it.
    let store = f.open();
    let reloaded = store.load_ledger().unwrap();
    let expected = Ledger::from_entries(ledger.entries().filter(|e| e.key != *ts[2].key()).cloned());
    assert_eq!(reloaded, expected);
    assert_eq!(reloaded.entries().count(), 2);
    let open = reloaded.entries().filter(|e| matches!(e.state, TicketState::Open { .. })).count();
    assert_eq!(open, 1);
    assert_eq!(reloaded.recovery().len(), 1, "the other planned entry is still in the outbox");
    assert_eq!(store.cursor(&ck).unwrap(), Some(Cursor("7".into())));
    let other = CursorKey { source: "ksc:main/events".into(), tenant: TenantId::new("ksc:main/vs:2") };
    assert_eq!(store.cursor(&other).unwrap(), None, "cursors are per source and tenant");
    assert_eq!(store.recent_transitions(100).unwrap().len(), 5);
    // The cursor moves on.
    store.commit(&commit_plain(vec![], &[], Some((&ck, &Cursor("8".into()))), t0())).unwrap();
    assert_eq!(f.open().cursor(&ck).unwrap(), Some(Cursor("8".into())));
}

fn a_failed_commit_changes_nothing_and_the_cursor_moves_only_with_it(f: &Fixture) {
    let (ledger, events, ts) = planned(&["1", "2"]);
    let mut es = entries(&ledger, &ts);
    // Two entries with one idempotency key: the second row breaks a unique index mid-commit.
    let first_key = es[0].as_ref().unwrap().idempotency_key;
    es[1].as_mut().unwrap().idempotency_key = first_key;
    let ck = cursor_key();
    let store = f.open();
    let err = store
        .commit(&commit_plain(pairs(&ts, &es), &events, Some((&ck, &Cursor("9".into()))), t0()))
        .expect_err("a duplicate idempotency key is refused");
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    let store = f.open();
    assert_eq!(store.load_ledger().unwrap(), Ledger::new(), "no transition of the failed batch landed");
    assert_eq!(store.cursor(&ck).unwrap(), None, "the cursor did not move past decisions that did not land");
    assert!(store.events_since(DateTime::<Utc>::MIN_UTC).unwrap().is_empty());
    assert!(store.recent_transitions(10).unwrap().is_empty());
}

fn rules_are_compare_and_swap(f: &Fixture) {
    let store = f.open();
    assert_eq!(store.rules_revision().unwrap(), 0);
    assert_eq!(store.rulebook().unwrap(), None);
    assert_eq!(store.save_rulebook(&book(false), 0).unwrap(), 1);
    assert!(matches!(store.save_rulebook(&book(true), 0), Err(StoreError::Conflict { current: 1 })));
    assert!(matches!(store.save_rulebook(&book(true), 5), Err(StoreError::Conflict { current: 1 })));
    let other = f.open();
    assert_eq!(other.rules_revision().unwrap(), 1, "another process sees the revision");
    assert_eq!(other.save_rulebook(&book(true), 1).unwrap(), 2);
    assert!(matches!(store.save_rulebook(&book(false), 1), Err(StoreError::Conflict { current: 2 })));
    let (stored, revision) = store.rulebook().unwrap().unwrap();
    assert_eq!(revision, 2);
    assert_eq!(stored, book(true), "the stale writer's book did not land");
}

/// The mapping edited in the product and the directory of tenants and accounts (issue #26).
fn documents_are_compare_and_swap_and_one_of_concurrent_writers_wins(f: &Fixture) {
    use msp_ticketd::documents::{load_mapping, save_mapping};
    use ticketing_core::mapping::MappingSet;
    let store = f.open();
    assert_eq!(store.document_revision("mapping").unwrap(), 0);
    assert_eq!(store.document("mapping").unwrap(), None);
    let mut set = MappingSet::default();
    set.entries.insert(TenantId::new("ksc:main/vs:1"), ticketing_core::model::PsaId(7));
    assert_eq!(save_mapping(&*store, &set, 0).unwrap(), 1);
    assert!(matches!(save_mapping(&*store, &set, 0), Err(StoreError::Conflict { current: 1 })));
    let other = f.open();
    let loaded = load_mapping(&*other).unwrap();
    assert_eq!((loaded.revision, loaded.entries), (1, set.entries.clone()), "another process reads it");
    // Without an expected revision: a document with one writer, written unconditionally.
    assert_eq!(store.save_document("directory", "{}", None).unwrap(), 1);
    assert_eq!(store.save_document("directory", "{\"tenants\":[]}", None).unwrap(), 2);
    assert_eq!(other.document("directory").unwrap(), Some(("{\"tenants\":[]}".to_owned(), 2)));
    assert_eq!(store.document_revision("mapping").unwrap(), 1, "documents are independent");

    let stores = f.open_shared(4);
    let barrier = Arc::new(Barrier::new(stores.len()));
    let results: Vec<Result<u64, StoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let barrier = barrier.clone();
                s.spawn(move || {
                    barrier.wait();
                    store.save_document("mapping", &format!("{{\"entries\":{{\"t{i}\":{i}}}}}"), Some(1))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = results.iter().filter(|r| matches!(r, Ok(2))).count();
    let lost = results.iter().filter(|r| matches!(r, Err(StoreError::Conflict { current: 2 }))).count();
    assert_eq!((won, lost), (1, 3), "{results:?}");
}

fn concurrent_rule_writers_one_wins(f: &Fixture) {
    let stores = f.open_shared(4);
    stores[0].save_rulebook(&book(false), 0).unwrap();
    let barrier = Arc::new(Barrier::new(stores.len()));
    let results: Vec<Result<u64, StoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let barrier = barrier.clone();
                s.spawn(move || {
                    barrier.wait();
                    store.save_rulebook(&book(i % 2 == 0), 1)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = results.iter().filter(|r| matches!(r, Ok(2))).count();
    let lost = results.iter().filter(|r| matches!(r, Err(StoreError::Conflict { current: 2 }))).count();
    assert_eq!((won, lost), (1, 3), "{results:?}");
    assert_eq!(stores[0].rules_revision().unwrap(), 2);
}

fn the_lease_is_renewed_waited_for_taken_over_and_released(f: &Fixture) {
    let a = f.open();
    let b = f.open();
    assert_eq!(a.leader().unwrap(), None);
    assert_eq!(a.lease("a", SHORT_LEASE).unwrap(), Some(1), "the first lease is epoch 1");
    assert_eq!(a.lease("a", SHORT_LEASE).unwrap(), Some(1), "a renewal keeps the epoch");
    assert_eq!(b.lease("b", SHORT_LEASE).unwrap(), None, "b waits while a's lease is live");
    let info = b.leader().unwrap().unwrap();
    assert_eq!((info.holder.as_str(), info.epoch), ("a", 1));
    assert!(info.expires_at > Utc::now() - chrono::Duration::seconds(1), "{info:?}");
    assert!(info.expires_at <= Utc::now() + chrono::Duration::seconds(5), "{info:?}");
    // a stops renewing: b takes over with the next epoch.
    past_short_lease();
    assert_eq!(b.lease("b", SHORT_LEASE).unwrap(), Some(2), "a takeover bumps the epoch");
    assert_eq!(a.lease("a", SHORT_LEASE).unwrap(), None, "the old leader now waits");
    assert_eq!(b.lease("b", SHORT_LEASE).unwrap(), Some(2));
    // A release with a stale epoch or by another holder does nothing.
    a.release("a", 2).unwrap();
    b.release("b", 1).unwrap();
    assert_eq!(a.lease("a", SHORT_LEASE).unwrap(), None);
    // A clean stop hands over at once.
    b.release("b", 2).unwrap();
    let released = a.leader().unwrap().unwrap();
    assert_eq!((released.holder.as_str(), released.epoch), ("b", 2));
    assert!(released.expires_at < Utc::now(), "{released:?}");
    assert_eq!(a.lease("a", Duration::from_secs(60)).unwrap(), Some(3));
    let info = b.leader().unwrap().unwrap();
    assert_eq!((info.holder.as_str(), info.epoch), ("a", 3));
    assert!(info.expires_at > Utc::now() + chrono::Duration::seconds(30), "{info:?}");
}

fn concurrent_candidates_one_leads(f: &Fixture) {
    let stores = f.open_shared(4);
    let barrier = Arc::new(Barrier::new(stores.len()));
    let results: Vec<Option<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let barrier = barrier.clone();
                s.spawn(move || {
                    barrier.wait();
                    store.lease(&format!("i{i}"), Duration::from_secs(60)).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| **r == Some(1)).count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|r| r.is_none()).count(), 3, "{results:?}");
}

fn a_fenced_commit_is_refused_and_changes_nothing(f: &Fixture) {
    let (mut ledger, events, ts) = planned(&["1", "2"]);
    let es = entries(&ledger, &ts);
    let ck = cursor_key();
    let old = f.open();
    let new = f.open();
    // Without any lease, an epoch is stale.
    let (c1, c2) = (Cursor("1".into()), Cursor("2".into()));
    let mut c = commit_plain(pairs(&ts[..1], &es[..1]), &events[..1], Some((&ck, &c1)), t0());
    c.epoch = Some(1);
    assert!(matches!(old.commit(&c), Err(StoreError::Fenced { current: 0 })));
    assert_eq!(old.load_ledger().unwrap(), Ledger::new());

    assert_eq!(old.lease("old", SHORT_LEASE).unwrap(), Some(1));
    old.commit(&c).unwrap();
    // The old leader pauses past its lease; the new one takes over.
    past_short_lease();
    assert_eq!(new.lease("new", Duration::from_secs(60)).unwrap(), Some(2));
    let before = (new.load_ledger().unwrap(), new.recent_transitions(100).unwrap(), new.events_since(t0()).unwrap());
    let opened = Transition::Opened { key: ts[0].key().clone(), ticket: TicketRef { id: PsaId(5), number: None } };
    ledger.apply(&opened, t0()).unwrap();
    let mut stale = commit_plain(
        vec![(&opened, ledger.get(opened.key())), (&ts[1], es[1].as_ref())],
        &events[1..],
        Some((&ck, &c2)),
        t0() + chrono::Duration::minutes(1),
    );
    stale.epoch = Some(1);
    match old.commit(&stale) {
        Err(StoreError::Fenced { current: 2 }) => {}
        other => panic!("expected Fenced {{ current: 2 }}, got {other:?}"),
    }
    let after = (new.load_ledger().unwrap(), new.recent_transitions(100).unwrap(), new.events_since(t0()).unwrap());
    assert_eq!(before.0, after.0, "the ledger is unchanged");
    assert_eq!(before.1, after.1, "no transition was logged");
    assert_eq!(before.2.len(), after.2.len(), "no event was recorded");
    assert_eq!(new.cursor(&ck).unwrap(), Some(Cursor("1".into())), "the cursor did not move");
    // The new leader writes the same batch under its epoch.
    stale.epoch = Some(2);
    new.commit(&stale).unwrap();
    assert_eq!(old.cursor(&ck).unwrap(), Some(Cursor("2".into())));
    assert_eq!(old.load_ledger().unwrap().entries().count(), 2);
    // A commit without an epoch (single-instance daemons, the CLI) is never fenced.
    old.commit(&commit_plain(vec![], &[], Some((&ck, &Cursor("3".into()))), t0())).unwrap();
}

fn retry_requests_are_taken_once_in_order(f: &Fixture) {
    let cli = f.open();
    let daemon = f.open();
    assert!(daemon.take_retry_requests().unwrap().is_empty());
    cli.request_retry("ksc:main/vs:1/x").unwrap();
    cli.request_retry("*").unwrap();
    cli.request_retry("ksc:main/vs:1/x").unwrap();
    assert_eq!(daemon.take_retry_requests().unwrap(), ["ksc:main/vs:1/x", "*", "ksc:main/vs:1/x"]);
    assert!(daemon.take_retry_requests().unwrap().is_empty(), "taken requests are gone");
    assert!(cli.take_retry_requests().unwrap().is_empty());
}

fn event_history_is_kept_once_and_pruned(f: &Fixture) {
    let store = f.open();
    let t1 = t0();
    let t2 = t0() + chrono::Duration::minutes(10);
    let first = [event("1"), event("2")];
    let second = [event("2"), event("3")];
    store.commit(&commit_plain(vec![], &first, None, t1)).unwrap();
    store.commit(&commit_plain(vec![], &second, None, t2)).unwrap();
    let all = store.events_since(t1).unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s.event.source_id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3"], "an event seen twice is kept once, oldest first");
    assert_eq!(all[1].seen_at, t1, "with the time it was first seen");
    assert_eq!(all[2].seen_at, t2);
    assert_eq!(all[0].event, first[0], "the event round-trips");
    let later: Vec<String> =
        store.events_since(t2).unwrap().into_iter().map(|s| s.event.source_id.as_str().to_owned()).collect();
    assert_eq!(later, ["3"], "since is inclusive");
    assert!(store.events_since(t2 + chrono::Duration::milliseconds(1)).unwrap().is_empty());
    assert_eq!(store.prune_history(t1).unwrap(), 0, "before is exclusive");
    assert_eq!(store.prune_history(t2).unwrap(), 2);
    let left = f.open().events_since(DateTime::<Utc>::MIN_UTC).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event.source_id.as_str(), "3");
    assert_eq!(store.prune_history(t2 + chrono::Duration::days(1)).unwrap(), 1);
}

fn decision(at: DateTime<Utc>, tenant: &str, event: Option<&str>, device: Option<&str>, outcome: Outcome) -> Decision {
    Decision {
        at,
        product: if event.is_some() { Product::SecurityCenter } else { Product::EndpointCloud },
        tenant: TenantId::new(tenant),
        event_id: event.map(str::to_owned),
        device: device.map(str::to_owned),
        device_name: device.map(|d| format!("PC {d}")),
        key: format!("key-{tenant}-{event:?}-{device:?}"),
        outcome,
        reason: (outcome == Outcome::Skipped).then(|| "rule_off".to_owned()),
        detail: "not ticketed: the rule is off".to_owned(),
        revision: 7,
    }
}

fn decisions_are_filtered_newest_first_and_pruned_with_the_history(f: &Fixture) {
    let store = f.open();
    let t1 = t0();
    let t2 = t0() + chrono::Duration::minutes(10);
    let first = [
        decision(t1, "a", Some("1"), Some("d1"), Outcome::Ticketed),
        decision(t1, "a", Some("2"), Some("d1"), Outcome::Skipped),
    ];
    let second = [decision(t2, "b", None, Some("d2"), Outcome::Skipped)];
    store.commit(&Commit { decisions: &first, at: Some(t1), ..Commit::default() }).unwrap();
    store.commit(&Commit { decisions: &second, at: Some(t2), ..Commit::default() }).unwrap();
    let all = store.decisions(&DecisionQuery::default()).unwrap();
    assert_eq!(all, [second[0].clone(), first[1].clone(), first[0].clone()], "newest first, round-tripped");
    let q = |q: DecisionQuery| store.decisions(&q).unwrap().len();
    assert_eq!(q(DecisionQuery { tenant: Some("a".into()), ..DecisionQuery::default() }), 2);
    assert_eq!(q(DecisionQuery { product: Some(Product::EndpointCloud), ..DecisionQuery::default() }), 1);
    assert_eq!(q(DecisionQuery { since: Some(t2), ..DecisionQuery::default() }), 1);
    assert_eq!(q(DecisionQuery { outcome: Some(Outcome::Skipped), ..DecisionQuery::default() }), 2);
    assert_eq!(q(DecisionQuery { event_id: Some("2".into()), ..DecisionQuery::default() }), 1);
    assert_eq!(q(DecisionQuery { device: Some("d1".into()), ..DecisionQuery::default() }), 2);
    assert_eq!(q(DecisionQuery { device: Some("PC d2".into()), ..DecisionQuery::default() }), 1, "by name too");
    assert_eq!(q(DecisionQuery { limit: 1, ..DecisionQuery::default() }), 1);
    for d in &all {
        assert!(
            DecisionQuery { tenant: Some("a".into()), ..DecisionQuery::default() }.matches(d)
                == (d.tenant.as_str() == "a")
        );
    }
    assert_eq!(store.prune_history(t2).unwrap(), 2, "decisions older than the history window go with it");
    assert_eq!(f.open().decisions(&DecisionQuery::default()).unwrap(), [second[0].clone()]);
}

/// PSA answers are committed relaxed (durable with the next full commit); as far as any
/// reader can tell they land the same.
fn a_relaxed_commit_of_answers_lands_like_a_full_one(f: &Fixture) {
    let store = f.open();
    let (mut ledger, events, plans) = planned(&["r1"]);
    let es = entries(&ledger, &plans);
    store.commit(&commit_plain(pairs(&plans, &es), &events, None, t0())).unwrap();
    let opened = Transition::Opened { key: plans[0].key().clone(), ticket: TicketRef { id: PsaId(77), number: None } };
    ledger.apply(&opened, t0()).unwrap();
    let entry = ledger.get(opened.key()).cloned();
    store
        .commit(&Commit {
            transitions: vec![(&opened, entry.as_ref())],
            relaxed: true,
            at: Some(t0()),
            ..Commit::default()
        })
        .unwrap();
    assert_eq!(f.open().load_ledger().unwrap(), ledger, "visible to a new reader at once");
    // The next full commit after it works as before.
    store.commit(&commit_plain(vec![], &[event("r2")], None, t0())).unwrap();
    assert_eq!(f.open().load_ledger().unwrap(), ledger);
}

fn the_store_probe_reports_writable(f: &Fixture) {
    let store = f.open();
    store.probe_writable().unwrap();
    store.probe_writable().unwrap();
}

fn recent_transitions_are_newest_first(f: &Fixture) {
    let (ledger, _, ts) = planned(&["1", "2", "3"]);
    let es = entries(&ledger, &ts);
    let store = f.open();
    assert!(store.recent_transitions(5).unwrap().is_empty());
    for (i, (t, e)) in ts.iter().zip(&es).enumerate() {
        let at = t0() + chrono::Duration::seconds(i as i64);
        store.commit(&commit_plain(vec![(t, e.as_ref())], &[], None, at)).unwrap();
    }
    let recent = store.recent_transitions(2).unwrap();
    assert_eq!(recent.len(), 2, "the limit holds");
    assert_eq!(recent[0].0, t0() + chrono::Duration::seconds(2));
    assert_eq!(recent[0].1, ts[2].key().canonical());
    assert_eq!(recent[1].1, ts[1].key().canonical());
    let json: serde_json::Value = serde_json::from_str(&recent[0].2).unwrap();
    assert_eq!(json, serde_json::to_value(&ts[2]).unwrap(), "the transition's JSON round-trips");
    assert_eq!(store.recent_transitions(100).unwrap().len(), 3);
}

fn async_and_sync_callers_alike(f: &Fixture) {
    let store: Arc<dyn Store> = Arc::from(f.open());
    // From a current-thread runtime (the tests' and the CLI's), blocking in place.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let s = store.clone();
    let revision = rt.block_on(async move {
        s.save_rulebook(&book(true), 0).unwrap();
        s.rules_revision().unwrap()
    });
    assert_eq!(revision, 1);
    // From the multi-thread runtime's workers (the engine's), several at once.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let s = store.clone();
    let revisions = rt.block_on(async move {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.request_retry(&format!("k{i}")).unwrap();
                    s.rules_revision().unwrap()
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(revisions, [1; 8]);
    assert_eq!(store.take_retry_requests().unwrap().len(), 8);
    // And from plain threads.
    assert_eq!(store.rules_revision().unwrap(), 1);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL only: connection handling, secrets, migrations

#[test]
fn postgres_reconnects_after_the_server_drops_the_connection() {
    let Some(url) = postgres_url() else { return };
    let db = format!("msp_test_{}", unique());
    admin(&url, &format!("CREATE DATABASE {db}"));
    let store = PostgresStore::connect(&with_db(&url, &db), None).unwrap();
    assert_eq!(store.save_rulebook(&book(true), 0).unwrap(), 1);
    // The server ends the store's session (a restart, a failover, an idle kill).
    admin(
        &url,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
        ),
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(store.rules_revision().unwrap(), 1, "the read is run again on a new connection");
    store.request_retry("*").unwrap();
    assert_eq!(store.take_retry_requests().unwrap(), ["*"]);
    drop(store);
    admin(&url, &format!("DROP DATABASE {db} WITH (FORCE)"));
}

#[test]
fn postgres_errors_and_debug_never_show_the_password() {
    // A port nothing listens on: the error names host and database, never the password.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let password = Secret::new("hunter2-not-in-logs");
    let url = format!("postgres://msp@127.0.0.1:{port}/ticketing");
    let err = PostgresStore::connect(&url, Some(&password)).expect_err("nothing listens there");
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("ticketing"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(!format!("{err:?}").contains("hunter2"));
    // A password in the URL is refused, without repeating it.
    let err = PostgresStore::connect(&format!("postgres://msp:hunter2@127.0.0.1:{port}/ticketing"), None).unwrap_err();
    assert!(err.to_string().contains("store.password"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(PostgresStore::connect("http://nope", None).is_err());
}

#[test]
fn postgres_migrations_are_numbered_idempotent_and_safe_to_race() {
    let Some(url) = postgres_url() else { return };
    let db = format!("msp_test_{}", unique());
    admin(&url, &format!("CREATE DATABASE {db}"));
    let store_url = with_db(&url, &db);
    // Four daemons start at once on an empty database.
    let stores: Vec<PostgresStore> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| PostgresStore::connect(&store_url, None))).collect();
        handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    for s in &stores {
        assert_eq!(s.schema_version().unwrap(), PostgresStore::SCHEMA_VERSION);
    }
    drop(stores);
    let again = PostgresStore::connect(&store_url, None).unwrap();
    assert_eq!(again.schema_version().unwrap(), PostgresStore::SCHEMA_VERSION);
    assert!(format!("{again:?}").contains(&db));
    drop(again);
    admin(&url, &format!("DROP DATABASE {db} WITH (FORCE)"));
}

// ---------------------------------------------------------------------------------------------
// Configuration: `[store] url` chooses PostgreSQL

/// The example configuration with its `[store]` section replaced; the `store.*` problems.
fn store_problems(store_section: &str) -> Vec<msp_ticketd::config::ConfigProblem> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/msp-ticketd.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let line = "path = \"/var/lib/msp-ticketd/msp-ticketd.sqlite\"";
    assert!(text.contains(line), "the example's [store] path moved");
    let text = text.replace(line, store_section);
    msp_ticketd::config::Config::diagnose(&text, "msp-ticketd.toml")
        .problems
        .into_iter()
        .filter(|p| p.key.starts_with("store."))
        .collect()
}

#[test]
fn the_store_url_is_checked_and_path_and_url_are_alternatives() {
    let show = |ps: &[msp_ticketd::config::ConfigProblem]| ps.iter().map(|p| format!("{p}\n")).collect::<String>();
    // A loopback PostgreSQL URL with its password from the environment.
    let ok = store_problems("url = \"postgres://msp@127.0.0.1:5432/ticketing\"\npassword = { env = \"PATH\" }");
    assert!(ok.is_empty(), "{}", show(&ok));
    let ps = store_problems("url = \"postgres://msp:hunter2@127.0.0.1/ticketing\"");
    assert!(
        ps.iter().any(|p| p.key == "store.url" && p.is_error() && p.reason.contains("store.password")),
        "{}",
        show(&ps)
    );
    assert!(!show(&ps).contains("hunter2"), "{}", show(&ps));
    let ps = store_problems("url = \"postgres://msp@127.0.0.1/ticketing\"\npath = \"/tmp/x.sqlite\"");
    assert!(ps.iter().any(|p| p.key == "store.path" && p.reason.contains("store.url")), "{}", show(&ps));
    let ps = store_problems("url = \"mysql://msp@127.0.0.1/ticketing\"");
    assert!(ps.iter().any(|p| p.key == "store.url" && p.is_error()), "{}", show(&ps));
    let ps = store_problems("url = \"postgres://msp@db.example.com/ticketing\"");
    assert!(ps.iter().any(|p| p.key == "store.url" && !p.is_error() && p.reason.contains("TLS")), "{}", show(&ps));
    let ps = store_problems(
        "url = \"postgres://msp@127.0.0.1/ticketing\"\npassword = { env = \"MSP_NO_SUCH_VAR_FOR_TESTS\" }",
    );
    assert!(ps.iter().any(|p| p.key == "store.password.env" && p.is_error()), "{}", show(&ps));
    let ps = store_problems("path = \"/tmp/x.sqlite\"\npassword = { value = \"p\" }");
    assert!(ps.iter().any(|p| p.key == "store.password" && p.reason.contains("store.url")), "{}", show(&ps));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_on_postgres_when_store_url_is_set() {
    let Some(url) = postgres_url() else { return };
    let db = format!("msp_test_{}", unique());
    admin(&url, &format!("CREATE DATABASE {db}"));
    let store_url = with_db(&url, &db);
    let lab = msp_ticketd::demo::Lab::start().await.unwrap();
    let rules = "[rules.rows.\"security_center/event/critical\"]\nenabled = true\n";
    let toml = lab.config_toml(rules, "127.0.0.1:0");
    let path_line = format!("path = {:?}", lab.store_path().display().to_string());
    assert!(toml.contains(&path_line), "{toml}");
    let toml =
        toml.replace(&path_line, &format!("url = {store_url:?}\npassword = {{ value = \"unused-with-trust\" }}"));
    let config = msp_ticketd::config::Config::parse(&toml, "pg.toml").map_err(|e| e.to_string()).unwrap();
    {
        // What the CLI does (sync, outside the daemon).
        let (store, _) = msp_ticketd::service::open_store(&config).unwrap();
        assert_eq!(store.rules_revision().unwrap(), 1, "the file's rules seed the new store");
    }
    assert!(!lab.store_path().exists(), "no SQLite file was made");
    // The daemon (async engine) on the same database: an event becomes one ticket.
    let running = msp_ticketd::service::start_with(
        &config,
        msp_ticketd::service::StartOptions::every(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", chrono::Duration::hours(1), "virus").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if lab.tickets().await.unwrap().len() == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no ticket within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.stop().await.unwrap();
    let store = PostgresStore::connect(&store_url, None).unwrap();
    let ledger = store.load_ledger().unwrap();
    assert_eq!(ledger.entries().filter(|e| matches!(e.state, TicketState::Open { .. })).count(), 1);
    assert!(!store.recent_transitions(10).unwrap().is_empty());
    assert!(!store.events_since(DateTime::<Utc>::MIN_UTC).unwrap().is_empty());
    drop(store);
    admin(&url, &format!("DROP DATABASE {db} WITH (FORCE)"));
}

#[test]
fn postgres_statements_time_out_instead_of_hanging() {
    let Some(url) = postgres_url() else { return };
    let db = format!("msp_test_{}", unique());
    admin(&url, &format!("CREATE DATABASE {db}"));
    let store_url = with_db(&url, &db);
    let timeouts = msp_ticketd::store::PostgresTimeouts {
        connect: Duration::from_secs(5),
        statement: Duration::from_millis(300),
        call: Duration::from_secs(5),
    };
    let store = PostgresStore::connect_with(&store_url, None, timeouts).unwrap();
    // Another session holds the leader table locked, and keeps it until told.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let holder_url = store_url;
    let holder = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (mut client, conn) = tokio_postgres::connect(&holder_url, tokio_postgres::NoTls).await.unwrap();
            let conn = tokio::spawn(conn);
            let tx = client.transaction().await.unwrap();
            tx.batch_execute("LOCK TABLE leader IN ACCESS EXCLUSIVE MODE").await.unwrap();
            locked_tx.send(()).unwrap();
            tokio::task::spawn_blocking(move || done_rx.recv()).await.unwrap().unwrap();
            tx.rollback().await.unwrap();
            drop(client);
            let _ = conn.await;
        });
    });
    locked_rx.recv().unwrap();
    let started = std::time::Instant::now();
    let err = store.lease("a", Duration::from_secs(10)).expect_err("the table is locked");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(err.to_string().contains("timeout"), "{err}");
    done_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(store.lease("a", Duration::from_secs(10)).unwrap(), Some(1), "the store goes on after a timeout");
    drop(store);
    admin(&url, &format!("DROP DATABASE {db} WITH (FORCE)"));
}

#[test]
fn postgres_a_server_that_never_answers_is_a_timely_error() {
    // Accepts connections and says nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _accepting = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let timeouts = msp_ticketd::store::PostgresTimeouts {
        connect: Duration::from_millis(500),
        statement: Duration::from_secs(1),
        call: Duration::from_secs(2),
    };
    let started = std::time::Instant::now();
    let err = PostgresStore::connect_with(&format!("postgres://msp@127.0.0.1:{port}/ticketing"), None, timeouts)
        .expect_err("the server never answers");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(err.to_string().contains("no answer"), "{err}");
}
