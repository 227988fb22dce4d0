//! The SQLite store (migrations, atomic commits, reload) and the admin API (auth, the guide's
//! rule editing, errors naming the field), without any simulator.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use msp_ticketd::admin::{AdminState, router};
use msp_ticketd::engine::Shared;
use msp_ticketd::store::{Commit, CursorKey, SqliteStore, Store};
use serde_json::{Value, json};
use ticketing_core::catalog::Catalog;
use ticketing_core::decide::{Context, EventDecision, decide_event};
use ticketing_core::edit::RuleBook;
use ticketing_core::ledger::{Ledger, TicketState, Transition};
use ticketing_core::model::*;
use ticketing_core::ports::{Account, Cursor};
use ticketing_core::rules::RuleSet;
use ticketing_core::secret::Secret;
use ticketing_core::ticket::TicketRef;

fn event(id: &str) -> Event {
    Event {
        source_id: SourceEventId::new(id),
        tenant: TenantId::new("ksc:main/vs:1"),
        product: Product::SecurityCenter,
        class: EventClass::Severity(Severity::Critical),
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap(),
        device: None,
        mailbox: None,
        event_type: "GNRL_EV_VIRUS_FOUND".into(),
        display_name: "Malicious object detected".into(),
        text: "x".into(),
    }
}

#[test]
fn the_store_commits_ledger_events_and_cursor_together_and_reloads_them() {
    let dir = std::env::temp_dir().join(format!("msp-store-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sqlite");
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    let mut rules = RuleSet::default();
    for r in rules.rows.values_mut() {
        r.enabled = true;
    }
    let tenant = TenantId::new("ksc:main/vs:1");
    let ctx = Context::new(
        &rules,
        &Catalog::example(),
        [(tenant.clone(), PsaId(1))],
        [Account { id: PsaId(1), name: "A".into(), active: true }],
    );
    let mut ledger = Ledger::new();
    let events = [event("1"), event("2")];
    let mut transitions = Vec::new();
    for e in &events {
        let EventDecision::Create(c) = decide_event(e, &ctx, &ledger, now) else { panic!() };
        ledger.apply(&c.transition(), now).unwrap();
        transitions.push(c.transition());
    }
    let entries: Vec<_> = transitions.iter().map(|t| ledger.get(t.key()).cloned()).collect();
    let ck = CursorKey { source: "ksc:main/events".into(), tenant };
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SqliteStore::SCHEMA_VERSION);
        let pairs = transitions.iter().zip(&entries).map(|(t, e)| (t, e.as_ref())).collect();
        store
            .commit(&Commit {
                transitions: pairs,
                events: &events,
                cursors: vec![(&ck, &Cursor("7".into()))],
                at: Some(now),
                epoch: None,
                decisions: &[],
                relaxed: false,
            })
            .unwrap();
        // One more transition on its own.
        let opened =
            Transition::Opened { key: transitions[0].key().clone(), ticket: TicketRef { id: PsaId(9), number: None } };
        ledger.apply(&opened, now).unwrap();
        store
            .commit(&Commit {
                transitions: vec![(&opened, ledger.get(opened.key()))],
                events: &[],
                cursors: Vec::new(),
                at: Some(now),
                epoch: None,
                decisions: &[],
                relaxed: false,
            })
            .unwrap();
    }
    // Reopen: migrations are idempotent, everything is back.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SqliteStore::SCHEMA_VERSION);
    assert_eq!(store.load_ledger().unwrap(), ledger);
    assert_eq!(store.cursor(&ck).unwrap(), Some(Cursor("7".into())));
    let history = store.events_since(now - chrono::Duration::days(1)).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].event, events[0]);
    assert_eq!(store.recent_transitions(10).unwrap().len(), 3);
    let reloaded = store.load_ledger().unwrap();
    let open = reloaded.entries().filter(|e| matches!(e.state, TicketState::Open { .. })).count();
    assert_eq!(open, 1);
    assert_eq!(reloaded.recovery().len(), 1, "the other planned entry is still in the outbox");
    assert_eq!(store.prune_history(now + chrono::Duration::seconds(1)).unwrap(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn serve() -> (String, Arc<Shared>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let (shared, writers) = Shared::new(store, RuleBook::default());
    writers.engine.catalog.publish(Some(Catalog::example()));
    let app = router(AdminState {
        shared: shared.clone(),
        token: Secret::new("t0ken-for-tests"),
        reloader: None,
        access: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), shared)
}

#[tokio::test]
async fn the_admin_api_needs_the_token_and_edits_rules_like_the_guide() {
    let (base, shared) = serve().await;
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    let r = http.get(format!("{base}/api/rules")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http.get(format!("{base}/api/rules")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap().contains("t0ken"), "the token never appears in a response");

    let call = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{base}{path}")).bearer_auth("t0ken-for-tests").json(&body).send()
    };
    // Bulk edit three rows of the draft, then save the section.
    let rows =
        ["security_center/event/critical", "security_center/event/warning", "security_center/event/functional_failure"];
    let r = call(
        reqwest::Method::POST,
        "/api/rules/bulk-edit",
        json!({ "rows": rows, "patch": { "enabled": true, "due_hours": 4 } }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    let rules: Value = call(reqwest::Method::GET, "/api/rules", json!(null)).await.unwrap().json().await.unwrap();
    assert_eq!(rules["dirty"], json!(["events/security_center"]));
    assert_eq!(rules["draft"]["rows"]["security_center/event/warning"]["due_hours"], 4);
    assert_eq!(rules["saved"]["rows"]["security_center/event/warning"]["enabled"], false);
    let r =
        call(reqwest::Method::POST, "/api/rules/save", json!({ "section": "events/security_center" })).await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(shared.rules().saved.rows.values().filter(|r| r.enabled).count() == 3);
    assert!(
        shared.store.rulebook().unwrap().unwrap().0.saved.rows.values().filter(|r| r.enabled).count() == 3,
        "persisted"
    );
    assert_eq!(shared.rules.version(), 1, "the engine is told");

    // A priority the PSA does not have: the save is refused with the row and field named.
    let r = call(
        reqwest::Method::POST,
        "/api/rules/bulk-edit",
        json!({ "rows": ["security_center/event/critical"], "patch": { "priority": "Urgent" } }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    let r =
        call(reqwest::Method::POST, "/api/rules/save", json!({ "section": "events/security_center" })).await.unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["problems"][0]["field"], "priority");
    assert!(body["messages"][0].as_str().unwrap().contains("security_center/event/critical"), "{body}");
    // Cancel puts the saved value back; reset puts the defaults into the draft.
    call(reqwest::Method::POST, "/api/rules/cancel", json!({ "section": "events/security_center" })).await.unwrap();
    let book = shared.rules();
    assert_eq!(book.draft.rows, book.saved.rows);
    call(reqwest::Method::POST, "/api/rules/reset", json!({ "section": "events/security_center" })).await.unwrap();
    assert!(shared.rules().draft.rows.values().all(|r| !r.enabled));
    assert_eq!(shared.rules().saved.rows.values().filter(|r| r.enabled).count(), 3, "reset touches only the draft");

    // Bad input gets a clear error naming what is wrong.
    let r = call(
        reqwest::Method::POST,
        "/api/rules/bulk-edit",
        json!({ "rows": ["security_center/event/nope"], "patch": {} }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("unknown rule row"));
    let r = call(
        reqwest::Method::POST,
        "/api/rules/bulk-edit",
        json!({ "rows": ["office365/event/malware_detected"], "patch": { "lifetime_days": 3 } }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("lifetime_days does not apply"));

    // Metrics are in the Prometheus / OpenMetrics text format.
    let r = call(reqwest::Method::GET, "/metrics", json!(null)).await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let m = r.text().await.unwrap();
    assert!(m.contains("# TYPE msp_tickets_created counter\nmsp_tickets_created_total 0\n"), "{m}");
}

/// Issue 12.6: a store error names the file it is about.
#[test]
fn store_errors_name_the_file() {
    let path = std::env::temp_dir().join(format!("msp-no-such-dir-{}", std::process::id())).join("store.sqlite");
    let err = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
}
