//! The adapter against the real Business Hub simulator over loopback HTTP: exactly-once events
//! across polls and restarts, the Office 365 resolved signal, device statuses, login, limits.

use std::collections::{HashMap, HashSet};

use kbh_adapter::{KbhAuth, KbhClient, KbhConfig, KbhEventSource, KbhStatusSource, RetryPolicy};
use serde_json::{Value, json};
use simulators::common::SimHandle;
use simulators::kbh::{self, Config};
use ticketing_core::model::{
    ComputerStatus, EventClass, Office365EventType, Severity, StatusDescription, StatusLevel, TenantId,
};
use ticketing_core::ports::{Cursor, EventSource, PortErrorKind, StatusSource};
use ticketing_core::secret::Secret;

async fn sim(config: Config) -> SimHandle {
    kbh::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap()
}

fn client(sim: &SimHandle) -> KbhClient {
    let config =
        KbhConfig::new(sim.base_url(), KbhAuth::Token(Secret::new("sim-token"))).unwrap().with_retry(RetryPolicy::FAST);
    KbhClient::new(config).unwrap()
}

async fn control(sim: &SimHandle, method: reqwest::Method, path: &str, body: Value) -> Value {
    let resp =
        reqwest::Client::new().request(method, format!("{}{path}", sim.base_url())).json(&body).send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap_or(Value::Null)
}

async fn post(sim: &SimHandle, path: &str, body: Value) -> Value {
    control(sim, reqwest::Method::POST, path, body).await
}

async fn company(sim: &SimHandle, id: &str, products: &[&str]) {
    post(sim, "/_sim/companies", json!({"id": id, "name": format!("Company {id}"), "products": products})).await;
}

async fn esc_event(sim: &SimHandle, company: &str, severity: &str, text: &str) -> String {
    let r = post(
        sim,
        "/_sim/events",
        json!({"company": company, "product": "kes_cloud", "severity": severity, "device": "d-01", "text": text}),
    )
    .await;
    r["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn events_come_out_once_across_polls_and_restarts() {
    let sim = sim(Config::default()).await;
    company(&sim, "c-7f3a", &["kes_cloud", "ksmo365"]).await;
    control(&sim, reqwest::Method::PUT, "/_sim/devices/c-7f3a/d-01", json!({"name":"ACME-PC-01"})).await;
    let mut injected = Vec::new();
    for (i, sev) in ["critical", "functional_failure", "warning", "info", "critical"].iter().enumerate() {
        injected.push(esc_event(&sim, "c-7f3a", sev, &format!("event {i}")).await);
    }
    let tenant = TenantId::new("kbh:c-7f3a");

    // first process: pages of 2; the cursor advances only when we store `next`
    let source = KbhEventSource::endpoint_cloud(client(&sim));
    let mut seen = Vec::new();
    let mut stored: Option<Cursor> = None;
    let first = source.poll_events(&tenant, stored.as_ref(), 2, None).await.unwrap();
    // not acknowledged: the same events come again
    let replay = source.poll_events(&tenant, stored.as_ref(), 2, None).await.unwrap();
    assert_eq!(first, replay);
    assert!(first.more);
    let e = &first.events[0];
    assert_eq!(e.class, EventClass::Severity(Severity::Critical));
    assert_eq!(e.device.as_ref().unwrap().name, "ACME-PC-01");
    assert_eq!(e.event_type, "GNRL_EV_VIRUS_FOUND");
    assert_eq!(e.display_name, "Malicious object detected");
    assert_eq!(e.text, "event 0");
    assert_eq!(first.events[1].class, EventClass::Severity(Severity::FunctionalFailure));
    seen.extend(first.events.iter().map(|e| e.source_id.to_string()));
    stored = Some(first.next);
    let second = source.poll_events(&tenant, stored.as_ref(), 2, None).await.unwrap();
    seen.extend(second.events.iter().map(|e| e.source_id.to_string()));
    stored = Some(second.next);
    drop(source);

    // "restart": a new client and source, only the persisted cursor survives
    let persisted = stored.clone().unwrap().0;
    injected.push(esc_event(&sim, "c-7f3a", "warning", "after restart").await);
    let source = KbhEventSource::endpoint_cloud(client(&sim));
    let mut cursor = Cursor(persisted);
    loop {
        let batch = source.poll_events(&tenant, Some(&cursor), 2, None).await.unwrap();
        assert!(batch.malformed.is_empty());
        seen.extend(batch.events.iter().map(|e| e.source_id.to_string()));
        cursor = batch.next;
        if !batch.more {
            break;
        }
    }
    assert_eq!(seen, injected);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
    // nothing new: nothing comes out, the cursor stays
    let idle = source.poll_events(&tenant, Some(&cursor), 2, None).await.unwrap();
    assert!(idle.events.is_empty());
    assert_eq!(idle.next, cursor);

    // Office 365 events come from their own list with their own cursor
    post(
        &sim,
        "/_sim/events",
        json!({"company":"c-7f3a","product":"ksmo365","event_type":"phishing_detected","mailbox":"ceo@acme.example","text":"bad link"}),
    )
    .await;
    let o365 = KbhEventSource::office365(client(&sim));
    let batch = o365.poll_events(&tenant, None, 10, None).await.unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.events[0].class, EventClass::Office365(Office365EventType::PhishingDetected));
    assert_eq!(batch.events[0].mailbox.as_deref(), Some("ceo@acme.example"));
    assert!(o365.poll_events(&tenant, Some(&batch.next), 10, None).await.unwrap().events.is_empty());
}

#[tokio::test]
async fn resolvable_office365_problem_raised_then_resolved() {
    let sim = sim(Config::default()).await;
    company(&sim, "c-1", &["ksmo365"]).await;
    let tenant = TenantId::new("kbh:c-1");
    let issues = KbhStatusSource::office365(client(&sim));
    let events = KbhEventSource::office365(client(&sim));

    let snap = issues.snapshot(&tenant).await.unwrap();
    assert!(snap.issues.is_empty());

    post(
        &sim,
        "/_sim/o365/issues",
        json!({"company":"c-1","type":"mailboxes_protection_not_provided","active":true,
               "message":"The application cannot connect to Exchange Online."}),
    )
    .await;
    // the raise is an event the rules see…
    let batch = events.poll_events(&tenant, None, 10, None).await.unwrap();
    assert_eq!(batch.events.len(), 1);
    let raised = &batch.events[0];
    assert_eq!(raised.class, EventClass::Office365(Office365EventType::MailboxesProtectionNotProvided));
    assert_eq!(raised.display_name, "Mailboxes protection is not provided");
    assert_eq!(raised.text, "The application cannot connect to Exchange Online.");
    // …and a standing condition in the snapshot
    let snap = issues.snapshot(&tenant).await.unwrap();
    assert!(snap.devices.is_empty());
    assert_eq!(snap.issues.len(), 1);
    assert_eq!(snap.issues[0].event_type, Office365EventType::MailboxesProtectionNotProvided);
    assert!(snap.issues[0].active);
    assert!(snap.issues[0].since.is_some());
    assert_eq!(snap.issues[0].resolved_at, None);

    post(&sim, "/_sim/o365/issues", json!({"company":"c-1","type":"mailboxes_protection_not_provided","active":false}))
        .await;
    let snap = issues.snapshot(&tenant).await.unwrap();
    assert_eq!(snap.issues.len(), 1);
    assert!(!snap.issues[0].active, "the resolved signal");
    assert!(snap.issues[0].resolved_at.is_some());
    // resolving records no event
    assert!(events.poll_events(&tenant, Some(&batch.next), 10, None).await.unwrap().events.is_empty());

    // a non-resolvable issue type is ignored in the snapshot
    post(&sim, "/_sim/o365/issues", json!({"company":"c-1","type":"malware_detected"})).await;
    let snap = issues.snapshot(&tenant).await.unwrap();
    assert_eq!(snap.issues.len(), 1);
}

#[tokio::test]
async fn device_statuses_with_descriptions() {
    let sim = sim(Config::default()).await;
    company(&sim, "c-1", &["kes_cloud"]).await;
    let put = |device: &'static str, body: Value| {
        let sim = &sim;
        async move { control(sim, reqwest::Method::PUT, &format!("/_sim/devices/c-1/{device}"), body).await }
    };
    put("d-01", json!({"name":"ACME-PC-01","descriptions":["databases_out_of_date","many_viruses_detected"]})).await;
    put(
        "d-02",
        json!({"name":"ACME-PC-02","descriptions":["license_expired",
        {"code":"cosmic_rays","text":"Cosmic rays detected","status":"Critical"}]}),
    )
    .await;
    put("d-03", json!({"name":"ACME-PC-03"})).await;

    let source = KbhStatusSource::endpoint_cloud(client(&sim));
    let tenant = TenantId::new("kbh:c-1");
    let snap = source.snapshot(&tenant).await.unwrap();
    assert_eq!(snap.devices.len(), 3);
    assert_eq!(snap.unknown_descriptions, 1);
    let d1 = &snap.devices[0];
    assert_eq!(d1.device.name, "ACME-PC-01");
    assert_eq!(d1.status, ComputerStatus::Warning);
    let codes: Vec<String> = d1.active.iter().map(|a| a.description.code()).collect();
    assert_eq!(codes, ["databases_out_of_date", "many_viruses_detected"]);
    assert!(d1.active.iter().all(|a| a.level == StatusLevel::Warning));
    let d2 = &snap.devices[1];
    assert_eq!(d2.status, ComputerStatus::Critical);
    assert_eq!(d2.active[0].description, StatusDescription::from_code("license_expired"));
    assert_eq!(d2.active[0].level, StatusLevel::Critical);
    assert_eq!(d2.active[1].description, StatusDescription::Unknown("Cosmic rays detected".into()));
    assert_eq!(snap.devices[2].status, ComputerStatus::Ok);

    // one description clears: the other stays, the device stays Warning
    put("d-01", json!({"descriptions":["many_viruses_detected"]})).await;
    let snap = source.snapshot(&tenant).await.unwrap();
    assert_eq!(snap.devices[0].status, ComputerStatus::Warning);
    assert_eq!(snap.devices[0].active.len(), 1);
    assert_eq!(snap.devices[0].active[0].description, StatusDescription::from_code("many_viruses_detected"));

    // paging a larger fleet still gives a complete snapshot
    for i in 0..150 {
        control(&sim, reqwest::Method::PUT, &format!("/_sim/devices/c-1/x-{i:03}"), json!({})).await;
    }
    assert_eq!(source.snapshot(&tenant).await.unwrap().devices.len(), 153);
}

#[tokio::test]
async fn login_auth_relogs_after_the_token_expires() {
    let sim = sim(Config::default()).await;
    company(&sim, "c-1", &["kes_cloud"]).await;
    let config = KbhConfig::new(
        sim.base_url(),
        KbhAuth::Login { email: "msp@sim.local".into(), password: Secret::new("sim-password") },
    )
    .unwrap()
    .with_retry(RetryPolicy::FAST);
    let c = KbhClient::new(config).unwrap();
    assert_eq!(c.companies().await.unwrap().len(), 1);
    post(&sim, "/_sim/auth/expire", json!({})).await;
    assert_eq!(c.companies().await.unwrap().len(), 1);
    let logins = sim.requests().iter().filter(|r| r.path == "/api/v1/auth/token").count();
    assert_eq!(logins, 2);
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 401, 200, 200]);

    let bad =
        KbhConfig::new(sim.base_url(), KbhAuth::Login { email: "msp@sim.local".into(), password: "x".into() }).unwrap();
    let err = KbhClient::new(bad).unwrap().check().await.unwrap_err();
    assert_eq!(err.kind(), PortErrorKind::Auth);
}

#[tokio::test]
async fn rate_limit_and_faults_per_company() {
    let sim = sim(Config { requests_per_minute: 4, ..Config::default() }).await;
    company(&sim, "c-a", &["kes_cloud"]).await;
    company(&sim, "c-b", &["kes_cloud"]).await;
    esc_event(&sim, "c-a", "critical", "a").await;
    esc_event(&sim, "c-b", "critical", "b").await;
    // c-b's events fail with 500 more often than the adapter retries
    post(
        &sim,
        "/_sim/faults",
        json!({"path_regex":"/companies/c-b/events","status":500,"count":10,
        "body":{"error":{"code":"internal","message":"boom"}}}),
    )
    .await;
    let source = KbhEventSource::endpoint_cloud(client(&sim));
    // companies (1) + c-a (1) + c-b (1 + 3 retries, faulted before the limit counts them)
    let results = source.poll_all(&HashMap::new(), 100, None).await.unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].result.as_ref().unwrap().events.len(), 1);
    let err = results[1].result.as_ref().unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Transient);
    assert!(err.message.contains("500 internal: boom"), "{}", err.message);

    // now the token's budget runs out: 429 with Retry-After reaches the caller as RateLimited
    let mut last = None;
    for _ in 0..4 {
        last = Some(source.tenants().await);
    }
    let err = last.unwrap().unwrap_err();
    assert_eq!(err.kind, PortErrorKind::RateLimited);
    let wait = err.retry_after.unwrap();
    assert!(wait.as_secs() >= 1 && wait.as_secs() <= 60, "{wait:?}");
}

// ---------------------------------------------------------------------------------------------
// arrival order vs event time (ksc-api.md §9: the Security Center cursor bug)
// ---------------------------------------------------------------------------------------------

/// Seeds an Endpoint Security Cloud event that *occurred* `age_secs` ago on the simulated clock
/// but arrives at the service now (an offline laptop delivering late).
async fn late_event(sim: &SimHandle, company: &str, age_secs: i64, text: &str) -> String {
    let occurred_at = chrono::Utc::now() - chrono::Duration::seconds(age_secs);
    let r = post(
        sim,
        "/_sim/events",
        json!({"company": company, "product": "kes_cloud", "severity": "critical", "device": "d-01",
               "occurred_at": occurred_at.to_rfc3339(), "text": text}),
    )
    .await;
    r["id"].as_str().unwrap().to_owned()
}

/// Polls with `cursor` until `more` is false; returns the ids and the final cursor.
async fn drain(
    source: &KbhEventSource,
    tenant: &TenantId,
    mut cursor: Option<Cursor>,
    limit: usize,
    window_start: Option<chrono::DateTime<chrono::Utc>>,
) -> (Vec<String>, Option<Cursor>) {
    let mut ids = Vec::new();
    loop {
        let batch = source.poll_events(tenant, cursor.as_ref(), limit, window_start).await.unwrap();
        assert!(batch.malformed.is_empty(), "{:?}", batch.malformed);
        ids.extend(batch.events.iter().map(|e| e.source_id.to_string()));
        cursor = Some(batch.next);
        if !batch.more {
            return (ids, cursor);
        }
    }
}

fn hours(h: i64) -> i64 {
    h * 3600
}

#[tokio::test]
async fn late_arrivals_with_old_event_times_are_read_by_the_next_poll() {
    let sim = sim(Config::default()).await;
    company(&sim, "c-1", &["kes_cloud"]).await;
    let tenant = TenantId::new("kbh:c-1");
    let window = || Some(chrono::Utc::now() - chrono::Duration::hours(24));
    let source = KbhEventSource::endpoint_cloud(client(&sim));

    let now_event = late_event(&sim, "c-1", 0, "now").await;
    let (ids, cursor) = drain(&source, &tenant, None, 100, window()).await;
    assert_eq!(ids, [now_event]);

    // the laptop comes back online: its events arrive now, with their original times
    let one_hour = late_event(&sim, "c-1", hours(1), "1 h old").await;
    let day_old = late_event(&sim, "c-1", hours(23), "23 h old").await;
    let (ids, cursor) = drain(&source, &tenant, cursor, 100, window()).await;
    assert_eq!(ids, [one_hour, day_old], "late arrivals are read, in arrival order");

    // nothing new: nothing again
    let (ids, cursor2) = drain(&source, &tenant, cursor.clone(), 100, window()).await;
    assert!(ids.is_empty(), "{ids:?}");
    assert_eq!(cursor2, cursor);
}

#[tokio::test]
async fn events_that_occurred_before_window_start_are_left_out() {
    let sim = sim(Config::default()).await;
    company(&sim, "c-1", &["kes_cloud"]).await;
    let tenant = TenantId::new("kbh:c-1");
    let window = Some(chrono::Utc::now() - chrono::Duration::hours(24));
    let source = KbhEventSource::endpoint_cloud(client(&sim));

    let first = late_event(&sim, "c-1", 0, "now").await;
    let (ids, cursor) = drain(&source, &tenant, None, 100, window).await;
    assert_eq!(ids, [first]);

    let too_old = late_event(&sim, "c-1", hours(25), "25 h old").await;
    let inside = late_event(&sim, "c-1", hours(23), "23 h old").await;
    let batch = source.poll_events(&tenant, cursor.as_ref(), 100, window).await.unwrap();
    let ids: Vec<&str> = batch.events.iter().map(|e| e.source_id.as_str()).collect();
    assert_eq!(ids, [inside.as_str()], "{too_old} occurred before window_start");
    assert!(!batch.more);
    // the cursor stands after both: the left-out event never comes back either
    let again = source.poll_events(&tenant, Some(&batch.next), 100, window).await.unwrap();
    assert!(again.events.is_empty());
    assert_eq!(again.next, batch.next);
    // without a window the adapter leaves nothing out
    let all = source.poll_events(&tenant, cursor.as_ref(), 100, None).await.unwrap();
    assert_eq!(all.events.len(), 2);
}

#[tokio::test]
async fn the_first_read_is_bounded_by_window_start() {
    let sim = sim(Config { requests_per_minute: 0, ..Config::default() }).await;
    company(&sim, "c-1", &["kes_cloud"]).await;
    let tenant = TenantId::new("kbh:c-1");
    // a long history that can never become tickets, then two recent events
    for i in 0..250 {
        late_event(&sim, "c-1", hours(48), &format!("old {i}")).await;
    }
    let recent = [late_event(&sim, "c-1", 60, "recent a").await, late_event(&sim, "c-1", 0, "recent b").await];
    let source = KbhEventSource::endpoint_cloud(client(&sim));
    let before = sim.requests().len();
    let window = Some(chrono::Utc::now() - chrono::Duration::hours(24));
    let batch = source.poll_events(&tenant, None, 100, window).await.unwrap();
    let ids: Vec<String> = batch.events.iter().map(|e| e.source_id.to_string()).collect();
    assert_eq!(ids, recent);
    assert!(!batch.more, "the old history is not paged through");
    assert_eq!(sim.requests().len() - before, 1, "one request");
}

#[tokio::test]
async fn a_poll_with_a_stored_cursor_reads_only_the_new_events() {
    let sim = sim(Config { requests_per_minute: 0, ..Config::default() }).await;
    company(&sim, "c-1", &["kes_cloud"]).await;
    let tenant = TenantId::new("kbh:c-1");
    for i in 0..120 {
        late_event(&sim, "c-1", 0, &format!("handled {i}")).await;
    }
    let source = KbhEventSource::endpoint_cloud(client(&sim));
    let (ids, cursor) = drain(&source, &tenant, None, 50, None).await;
    assert_eq!(ids.len(), 120);
    let new = [late_event(&sim, "c-1", hours(5), "late").await, late_event(&sim, "c-1", 0, "fresh").await];
    let before = sim.requests().len();
    let batch = source.poll_events(&tenant, cursor.as_ref(), 50, None).await.unwrap();
    let ids: Vec<String> = batch.events.iter().map(|e| e.source_id.to_string()).collect();
    assert_eq!(ids, new);
    let reqs = sim.requests();
    assert_eq!(reqs.len() - before, 1, "one request for the two new events");
    let q = reqs.last().unwrap().query.clone().unwrap_or_default();
    assert!(q.contains(&format!("after_seq={}", cursor.unwrap().0)), "{q}");
}

#[tokio::test]
async fn restarts_with_stored_cursors_never_return_an_event_twice() {
    let sim = sim(Config::default()).await;
    company(&sim, "c-1", &["kes_cloud"]).await;
    let tenant = TenantId::new("kbh:c-1");
    let window = || Some(chrono::Utc::now() - chrono::Duration::hours(24));
    let mut expected = Vec::new();
    let mut seen = Vec::new();
    let mut stored: Option<Cursor> = None;
    // each round: a new process (client and source) from the persisted cursor only, a mix of
    // fresh and late events, small pages
    for round in 0..4_i64 {
        for (j, age) in [0, hours(23 - round), 30, hours(2)].into_iter().enumerate() {
            expected.push(late_event(&sim, "c-1", age, &format!("round {round} event {j}")).await);
        }
        let persisted = stored.as_ref().map(|c| Cursor(c.0.clone()));
        let source = KbhEventSource::endpoint_cloud(client(&sim));
        // a poll whose batch was never acknowledged (crash before storing) changes nothing
        let _unacked = source.poll_events(&tenant, persisted.as_ref(), 3, window()).await.unwrap();
        let (ids, cursor) = drain(&source, &tenant, persisted, 3, window()).await;
        seen.extend(ids);
        stored = cursor;
    }
    assert_eq!(seen, expected);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len(), "no event twice");
}

#[tokio::test]
async fn a_cursor_stored_before_the_window_change_keeps_its_meaning() {
    // the cursor form did not change (decimal `seq`, the service's arrival order): a cursor a
    // daemon stored with an older build resumes exactly after that event
    let sim = sim(Config::default()).await;
    company(&sim, "c-1", &["kes_cloud"]).await;
    let tenant = TenantId::new("kbh:c-1");
    let a = late_event(&sim, "c-1", 0, "a").await;
    let b = late_event(&sim, "c-1", hours(3), "b").await;
    let c = late_event(&sim, "c-1", 0, "c").await;
    let source = KbhEventSource::endpoint_cloud(client(&sim));
    let (ids, _) = drain(&source, &tenant, None, 100, None).await;
    assert_eq!(ids, [a, b.clone(), c.clone()]);
    // an old-build cursor after the first event: "1"
    let window = Some(chrono::Utc::now() - chrono::Duration::hours(24));
    let (ids, cursor) = drain(&source, &tenant, Some(Cursor("1".into())), 100, window).await;
    assert_eq!(ids, [b, c]);
    assert_eq!(cursor, Some(kbh_adapter::seq_cursor(3)));
}
