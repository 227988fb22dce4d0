//! The [`AccessStore`] contract (issue 28), written once and run against every store: SQLite
//! (a temporary file) and PostgreSQL (a fresh database per test on `MSP_TEST_POSTGRES`, as in
//! `store_suite.rs`; skipped without it unless `MSP_REQUIRE_POSTGRES=1`). Users, the lockout's
//! counting across two handles on one store, sessions (a password change ends them, a removed
//! user's go with it), API tokens, the change log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use msp_ticketd::store::{
    Change, ChangeKind, ChangeQuery, LockoutPolicy, PostgresStore, Role, SessionRecord, SqliteStore, Store,
    TokenRecord, User, UserChange,
};
use ticketing_core::secret::Secret;

// ---------------------------------------------------------------------------------------------
// Fixtures (as in store_suite.rs)

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
    users_are_added_once_changed_and_removed_with_their_sessions_and_tokens,
    a_password_change_ends_every_session_of_the_user,
    failures_counted_by_two_handles_lock_the_user_once,
    sessions_are_touched_and_pruned,
    tokens_are_found_touched_and_revoked,
    the_change_log_is_newest_first_and_filtered,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}

fn user(name: &str, role: Role) -> User {
    User {
        name: name.to_owned(),
        role,
        password_hash: Secret::new(format!("$argon2id$fake-hash-of-{name}")),
        password_changed_at: t0(),
        created_at: t0(),
        failures: Default::default(),
    }
}

fn session(id: &str, user: Option<&str>, at: DateTime<Utc>) -> SessionRecord {
    SessionRecord {
        id_digest: Secret::new(id.to_owned()),
        user: user.map(str::to_owned),
        csrf: Secret::new(format!("csrf-{id}")),
        created_at: at,
        last_seen_at: at,
    }
}

fn token(id: &str, user: &str) -> TokenRecord {
    TokenRecord {
        id: id.to_owned(),
        user: user.to_owned(),
        label: "ci".to_owned(),
        digest: Secret::new(format!("digest-{id}")),
        created_at: t0(),
        last_used_at: None,
    }
}

fn users_are_added_once_changed_and_removed_with_their_sessions_and_tokens(f: &Fixture) {
    let store = f.open();
    let a = store.access().expect("keeps users");
    assert!(a.insert_user(&user("otto", Role::Operator)).unwrap());
    assert!(!a.insert_user(&user("otto", Role::Admin)).unwrap(), "a second one of the name is refused");
    assert!(a.insert_user(&user("ada", Role::Admin)).unwrap());
    let names: Vec<String> = a.users().unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["ada", "otto"]);
    assert_eq!(a.user("otto").unwrap().unwrap(), user("otto", Role::Operator), "read back as written");
    assert!(a.update_user("otto", &UserChange::Role(Role::Viewer)).unwrap());
    assert_eq!(a.user("otto").unwrap().unwrap().role, Role::Viewer);
    assert!(!a.update_user("nobody", &UserChange::Role(Role::Viewer)).unwrap());
    a.insert_session(&session("s1", Some("otto"), t0())).unwrap();
    a.insert_session(&session("s2", None, t0())).unwrap();
    a.insert_token(&token("t1", "otto")).unwrap();
    // Another handle on the same store (another instance) sees it all.
    let other = f.open();
    assert_eq!(other.access().unwrap().session("s1").unwrap().unwrap().user.as_deref(), Some("otto"));
    assert!(a.remove_user("otto").unwrap());
    assert!(!a.remove_user("otto").unwrap());
    assert!(a.session("s1").unwrap().is_none(), "the removed user's session went with it");
    assert!(a.token("t1").unwrap().is_none(), "and its token");
    assert!(a.session("s2").unwrap().is_some(), "the admin token's session stays");
}

fn a_password_change_ends_every_session_of_the_user(f: &Fixture) {
    let store = f.open();
    let a = store.access().unwrap();
    a.insert_user(&user("otto", Role::Operator)).unwrap();
    a.insert_user(&user("ada", Role::Admin)).unwrap();
    for (id, who) in [("o1", "otto"), ("o2", "otto"), ("a1", "ada")] {
        a.insert_session(&session(id, Some(who), t0())).unwrap();
    }
    let policy = LockoutPolicy { max_failures: 5, window: TimeDelta::minutes(5), lock_for: TimeDelta::minutes(5) };
    a.login_failed("otto", t0(), &policy).unwrap();
    let at = t0() + TimeDelta::minutes(1);
    let hash = Secret::new("$argon2id$new".to_owned());
    assert!(a.update_user("otto", &UserChange::Password { hash: hash.clone(), at }).unwrap());
    assert!(a.session("o1").unwrap().is_none() && a.session("o2").unwrap().is_none());
    assert!(a.session("a1").unwrap().is_some(), "another user's session stays");
    let otto = a.user("otto").unwrap().unwrap();
    assert_eq!((otto.password_hash, otto.password_changed_at), (hash, at));
    assert_eq!(otto.failures, Default::default(), "the lockout lifts with a new password");
}

fn failures_counted_by_two_handles_lock_the_user_once(f: &Fixture) {
    let setup = f.open();
    setup.access().unwrap().insert_user(&user("otto", Role::Operator)).unwrap();
    let policy = LockoutPolicy { max_failures: 5, window: TimeDelta::minutes(5), lock_for: TimeDelta::minutes(5) };
    // Five failures at once from two handles (two instances): counted together, none lost.
    let stores = f.open_shared(2);
    let barrier = Arc::new(Barrier::new(5));
    let handles: Vec<_> = (0..5)
        .map(|i| {
            let (store, barrier) = (stores[i % 2].clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store.access().unwrap().login_failed("otto", t0(), &policy).unwrap().unwrap()
            })
        })
        .collect();
    let after: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(after.iter().filter(|f| f.locked_at(t0()).is_some()).count(), 1, "exactly the fifth locks: {after:?}");
    let a = setup.access().unwrap();
    let stored = a.user("otto").unwrap().unwrap().failures;
    assert_eq!(stored.locked_at(t0()), Some(t0() + TimeDelta::minutes(5)));
    assert_eq!(a.login_failed("nobody", t0(), &policy).unwrap(), None, "no such user: nothing counted");
    assert!(a.update_user("otto", &UserChange::ClearFailures).unwrap());
    assert_eq!(a.user("otto").unwrap().unwrap().failures, Default::default());
}

fn sessions_are_touched_and_pruned(f: &Fixture) {
    let store = f.open();
    let a = store.access().unwrap();
    a.insert_session(&session("old", None, t0())).unwrap();
    a.insert_session(&session("new", None, t0())).unwrap();
    let later = t0() + TimeDelta::minutes(20);
    a.touch_session("new", later).unwrap();
    assert_eq!(a.session("new").unwrap().unwrap().last_seen_at, later);
    assert_eq!(a.session("new").unwrap().unwrap().csrf.expose(), "csrf-new");
    assert_eq!(a.prune_sessions(t0() + TimeDelta::minutes(10)).unwrap(), 1);
    assert!(a.session("old").unwrap().is_none());
    a.remove_session("new").unwrap();
    assert!(a.session("new").unwrap().is_none());
}

fn tokens_are_found_touched_and_revoked(f: &Fixture) {
    let store = f.open();
    let a = store.access().unwrap();
    a.insert_user(&user("otto", Role::Operator)).unwrap();
    a.insert_token(&token("t1", "otto")).unwrap();
    a.insert_token(&token("t2", "otto")).unwrap();
    let used = t0() + TimeDelta::seconds(90);
    a.touch_token("t1", used).unwrap();
    let t1 = a.token("t1").unwrap().unwrap();
    assert_eq!((t1.last_used_at, t1.digest.expose()), (Some(used), "digest-t1"));
    assert_eq!(a.tokens().unwrap().len(), 2);
    assert!(a.revoke_token("t1").unwrap());
    assert!(!a.revoke_token("t1").unwrap());
    assert!(a.token("t1").unwrap().is_none());
    assert_eq!(a.tokens().unwrap().iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["t2"]);
}

fn the_change_log_is_newest_first_and_filtered(f: &Fixture) {
    let store = f.open();
    let a = store.access().unwrap();
    for (i, kind) in ChangeKind::ALL.into_iter().enumerate() {
        a.record_change(&Change {
            at: t0() + TimeDelta::minutes(i as i64),
            actor: format!("user{i}"),
            kind,
            section: (i % 2 == 0).then(|| "events/security_center".to_owned()),
            revision_before: Some(i as u64),
            revision_after: (i % 3 == 0).then_some(i as u64 + 1),
            detail: format!("change {i}"),
        })
        .unwrap();
    }
    let all = a.changes(&ChangeQuery::default()).unwrap();
    assert_eq!(all.len(), ChangeKind::ALL.len());
    assert_eq!(all[0].kind, *ChangeKind::ALL.last().unwrap(), "newest first");
    assert_eq!(all.last().unwrap().revision_after, Some(1));
    let recent = a.changes(&ChangeQuery { since: Some(t0() + TimeDelta::minutes(10)), limit: 0 }).unwrap();
    assert_eq!(recent.len(), ChangeKind::ALL.len() - 10);
    assert_eq!(a.changes(&ChangeQuery { since: None, limit: 3 }).unwrap().len(), 3);
}
