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
    let first = source.poll_events(&tenant, stored.as_ref(), 2).await.unwrap();
    // not acknowledged: the same events come again
    let replay = source.poll_events(&tenant, stored.as_ref(), 2).await.unwrap();
    assert_eq!(first, replay);
    assert!(first.more);
    let e = &first.events[0];
    assert_eq!(e.class, EventClass::Severity(Severity::Critical));
    assert_eq!(e.device.as_ref().unwrap().name, "ACME-PC-01");
    assert_eq!(e.event_type, "GNRL_EV_VIRUS_FOUND");
    assert_eq!(e.display_name, "Malicious object detected");
    assert_eq!(e.text, "event 0");
    assert_eq!(first.events[1].class, EventClass::Severity(Severity::FunctionalFailure));
    seen.extend(first.events.iter().map(|e| e.source_id.0.clone()));
    stored = Some(first.next);
    let second = source.poll_events(&tenant, stored.as_ref(), 2).await.unwrap();
    seen.extend(second.events.iter().map(|e| e.source_id.0.clone()));
    stored = Some(second.next);
    drop(source);

    // "restart": a new client and source, only the persisted cursor survives
    let persisted = stored.clone().unwrap().0;
    injected.push(esc_event(&sim, "c-7f3a", "warning", "after restart").await);
    let source = KbhEventSource::endpoint_cloud(client(&sim));
    let mut cursor = Cursor(persisted);
    loop {
        let batch = source.poll_events(&tenant, Some(&cursor), 2).await.unwrap();
        assert!(batch.malformed.is_empty());
        seen.extend(batch.events.iter().map(|e| e.source_id.0.clone()));
        cursor = batch.next;
        if !batch.more {
            break;
        }
    }
    assert_eq!(seen, injected);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
    // nothing new: nothing comes out, the cursor stays
    let idle = source.poll_events(&tenant, Some(&cursor), 2).await.unwrap();
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
    let batch = o365.poll_events(&tenant, None, 10).await.unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.events[0].class, EventClass::Office365(Office365EventType::PhishingDetected));
    assert_eq!(batch.events[0].mailbox.as_deref(), Some("ceo@acme.example"));
    assert!(o365.poll_events(&tenant, Some(&batch.next), 10).await.unwrap().events.is_empty());
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
    let batch = events.poll_events(&tenant, None, 10).await.unwrap();
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
    assert!(events.poll_events(&tenant, Some(&batch.next), 10).await.unwrap().events.is_empty());

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
    let results = source.poll_all(&HashMap::new(), 100).await.unwrap();
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
