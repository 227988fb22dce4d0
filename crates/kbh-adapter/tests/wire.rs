//! Exact request shapes and parsing of every Business Hub call, against wiremock.

use std::collections::HashMap;
use std::time::Duration;

use kbh_adapter::{
    CompanyId, KbhAuth, KbhClient, KbhConfig, KbhError, KbhEventSource, KbhStatusSource, RetryPolicy, seq_cursor,
};
use serde_json::{Value, json};
use ticketing_core::model::{
    ComputerStatus, Device, DeviceId, EventClass, Office365EventType, Product, Severity, StatusDescription,
    StatusLevel, TenantId,
};
use ticketing_core::ports::{Cursor, EventSource, PortErrorKind, StatusSource};
use ticketing_core::secret::Secret;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "tok-3f9a-very-secret";
const PASSWORD: &str = "pw-7c1e-very-secret";

fn client(server: &MockServer) -> KbhClient {
    client_with(server, KbhAuth::Token(Secret::new(TOKEN)), RetryPolicy::FAST)
}

fn client_with(server: &MockServer, auth: KbhAuth, retry: RetryPolicy) -> KbhClient {
    let config = KbhConfig::new(&server.uri(), auth).unwrap().with_retry(retry);
    KbhClient::new(config).unwrap()
}

fn login_auth() -> KbhAuth {
    KbhAuth::Login { email: "msp@example.test".into(), password: Secret::new(PASSWORD) }
}

fn page(items: Value, next: Option<&str>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"items": items, "next_cursor": next}))
}

fn err_body(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": {"code": code, "message": message}}))
}

/// Query pairs of a received request, sorted.
fn query(r: &Request) -> Vec<(String, String)> {
    let mut q: Vec<(String, String)> = r.url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    q.sort();
    q
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    v.sort();
    v
}

fn hdr<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

fn company(id: &str) -> CompanyId {
    CompanyId::new(id)
}

#[tokio::test]
async fn companies_request_paging_and_parsing() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies"))
        .and(query_param("cursor", "p2"))
        .respond_with(page(json!([{"id":"c-2","name":"Beta","products":["kes_cloud"]}]), None))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies"))
        .respond_with(page(
            json!([{"id":"c-7f3a","name":"Acme Dental","products":["kes_cloud","ksmo365","future_thing"]}]),
            Some("p2"),
        ))
        .mount(&server)
        .await;

    let companies = client(&server).companies().await.unwrap();
    assert_eq!(companies.len(), 2);
    assert_eq!(companies[0].id.as_str(), "c-7f3a");
    assert_eq!(companies[0].name, "Acme Dental");
    assert_eq!(companies[0].products, vec![Product::EndpointCloud, Product::Office365]);
    assert_eq!(companies[0].other_products, vec!["future_thing".to_owned()]);
    assert_eq!(companies[0].tenant().id.as_str(), "kbh:c-7f3a");
    assert_eq!(companies[1].products, vec![Product::EndpointCloud]);

    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method.as_str(), "GET");
    assert_eq!(reqs[0].url.path(), "/api/v1/companies");
    assert_eq!(query(&reqs[0]), pairs(&[("limit", "100")]));
    assert_eq!(query(&reqs[1]), pairs(&[("limit", "100"), ("cursor", "p2")]));
    for r in &reqs {
        assert_eq!(hdr(r, "authorization"), Some(format!("Bearer {TOKEN}").as_str()));
        assert_eq!(hdr(r, "accept"), Some("application/json"));
        assert!(hdr(r, "user-agent").unwrap().starts_with("msp-ticketing-kbh-adapter/"));
    }

    // tenants per product
    let esc = KbhEventSource::endpoint_cloud(client(&server));
    let o365 = KbhEventSource::office365(client(&server));
    let names = |t: Vec<ticketing_core::model::Tenant>| t.into_iter().map(|t| t.id.to_string()).collect::<Vec<_>>();
    assert_eq!(names(esc.tenants().await.unwrap()), vec!["kbh:c-7f3a", "kbh:c-2"]);
    assert_eq!(names(o365.tenants().await.unwrap()), vec!["kbh:c-7f3a"]);
}

#[tokio::test]
async fn devices_snapshot_with_levels_and_unknown_descriptions() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-7f3a/devices"))
        .and(query_param("cursor", "next-1"))
        .respond_with(page(json!([{"id":"d-03","name":"ACME-SRV","status":"OK","status_descriptions":[]}]), None))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-7f3a/devices"))
        .respond_with(page(
            json!([
                {"id":"d-01","name":"ACME-PC-01","os":"Windows 11","last_seen":"2026-11-20T09:12:00Z","status":"Warning",
                 "status_descriptions":[
                    {"code":"databases_out_of_date","text":"Databases are out of date","status":"Warning"},
                    {"code":"many_viruses_detected","text":"Many viruses detected","status":"Warning"}]},
                {"id":"d-02","name":"ACME-PC-02","os":"macOS","last_seen":"2026-11-20T09:00:00Z","status":"Critical",
                 "status_descriptions":[
                    {"code":"license_expired","text":"License has expired","status":"Critical"},
                    {"code":"cosmic_rays","text":"Cosmic rays detected","status":"Warning"}]}
            ]),
            Some("next-1"),
        ))
        .mount(&server)
        .await;

    let source = KbhStatusSource::endpoint_cloud(client(&server));
    assert_eq!(StatusSource::product(&source), Product::EndpointCloud);
    let snap = source.snapshot(&TenantId::new("kbh:c-7f3a")).await.unwrap();
    assert_eq!(snap.tenant.as_str(), "kbh:c-7f3a");
    assert_eq!(snap.product, Product::EndpointCloud);
    assert!(snap.issues.is_empty());
    assert_eq!(snap.unknown_descriptions, 1);
    assert_eq!(snap.devices.len(), 3);
    let d1 = &snap.devices[0];
    assert_eq!(d1.device, Device { id: DeviceId::new("d-01"), name: "ACME-PC-01".into() });
    assert_eq!(d1.status, ComputerStatus::Warning);
    assert_eq!(d1.active.len(), 2);
    assert_eq!(d1.active[0].description, StatusDescription::from_code("databases_out_of_date"));
    assert_eq!(d1.active[0].level, StatusLevel::Warning);
    let d2 = &snap.devices[1];
    assert_eq!(d2.status, ComputerStatus::Critical);
    assert_eq!(d2.active[0].description, StatusDescription::from_code("license_expired"));
    assert_eq!(d2.active[0].level, StatusLevel::Critical);
    assert_eq!(d2.active[1].description, StatusDescription::Unknown("Cosmic rays detected".into()));
    assert_eq!(d2.active[1].level, StatusLevel::Warning);
    assert_eq!(snap.devices[2].status, ComputerStatus::Ok);
    assert!(snap.devices[2].active.is_empty());

    // the client-level view keeps os and last_seen
    let list = client(&server).devices(&company("c-7f3a")).await.unwrap();
    assert_eq!(list.devices[0].os.as_deref(), Some("Windows 11"));
    assert_eq!(list.devices[0].last_seen.unwrap().to_rfc3339(), "2026-11-20T09:12:00+00:00");

    let reqs = server.received_requests().await.unwrap();
    assert_eq!(query(&reqs[0]), pairs(&[("limit", "100")]));
    assert_eq!(query(&reqs[1]), pairs(&[("limit", "100"), ("cursor", "next-1")]));
}

#[tokio::test]
async fn malformed_device_fails_the_snapshot_rather_than_dropping_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-1/devices"))
        .respond_with(page(
            json!([{"id":"d-01","name":"PC","status":"OK"},{"id":"d-bad","name":"PC2","status":"Purple"}]),
            None,
        ))
        .mount(&server)
        .await;
    let err = KbhStatusSource::endpoint_cloud(client(&server)).snapshot(&TenantId::new("kbh:c-1")).await.unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Other);
    assert!(err.message.contains("d-bad"), "{}", err.message);
    let list = client(&server).devices(&company("c-1")).await.unwrap();
    assert_eq!(list.devices.len(), 1);
    assert_eq!(list.malformed[0].id, "d-bad");
}

#[tokio::test]
async fn endpoint_events_request_mapping_and_malformed_record_skipped() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-7f3a/events"))
        .respond_with(page(
            json!([
                {"id":"e-9c1","seq":1043,"occurred_at":"2026-11-20T09:10:11Z","severity":"Critical",
                 "event_type":"GNRL_EV_VIRUS_FOUND","display_name":"Malicious object detected",
                 "device_id":"d-01","device_name":"ACME-PC-01","description":"Trojan.Win32.Agent detected in C:\\Users\\x"},
                {"id":"e-bad","seq":1044,"occurred_at":"yesterday","severity":"Critical","event_type":"X"},
                {"id":"e-9c3","seq":1045,"occurred_at":"2026-11-20T09:11:00Z","severity":"FunctionalFailure",
                 "event_type":"KLPRCI_TaskState","display_name":"Task failed","description":"update task"},
                {"id":"e-9c4","seq":1046,"occurred_at":"2026-11-20T09:12:00Z","severity":"Warning",
                 "event_type":"GNRL_EV_OBJECT_BLOCKED","display_name":"Object blocked","device_id":"d-02"},
                {"id":"e-9c5","seq":1047,"occurred_at":"2026-11-20T09:13:00Z","severity":"Info",
                 "event_type":"KLSRV_UPD_BASES_UPDATED","display_name":"Databases updated"},
                {"id":"e-odd","seq":1048,"occurred_at":"2026-11-20T09:13:00Z","severity":"Catastrophic",
                 "event_type":"X","display_name":"X"}
            ]),
            Some("more"),
        ))
        .mount(&server)
        .await;

    let source = KbhEventSource::endpoint_cloud(client(&server));
    assert_eq!(EventSource::product(&source), Product::EndpointCloud);
    let tenant = TenantId::new("kbh:c-7f3a");
    let batch = source.poll_events(&tenant, Some(&Cursor("1042".into())), 50, None).await.unwrap();

    let req = &server.received_requests().await.unwrap()[0];
    assert_eq!(req.method.as_str(), "GET");
    assert_eq!(req.url.path(), "/api/v1/companies/c-7f3a/events");
    assert_eq!(query(req), pairs(&[("after_seq", "1042"), ("limit", "50")]));
    assert_eq!(hdr(req, "authorization"), Some(format!("Bearer {TOKEN}").as_str()));

    assert_eq!(batch.events.len(), 4);
    let e = &batch.events[0];
    assert_eq!(e.source_id.as_str(), "e-9c1");
    assert_eq!(e.tenant, tenant);
    assert_eq!(e.product, Product::EndpointCloud);
    assert_eq!(e.class, EventClass::Severity(Severity::Critical));
    assert_eq!(e.occurred_at.to_rfc3339(), "2026-11-20T09:10:11+00:00");
    assert_eq!(e.device, Some(Device { id: DeviceId::new("d-01"), name: "ACME-PC-01".into() }));
    assert_eq!(e.mailbox, None);
    assert_eq!(e.event_type, "GNRL_EV_VIRUS_FOUND");
    assert_eq!(e.display_name, "Malicious object detected");
    assert_eq!(e.text, "Trojan.Win32.Agent detected in C:\\Users\\x");
    assert_eq!(batch.events[1].class, EventClass::Severity(Severity::FunctionalFailure));
    assert_eq!(batch.events[1].device, None);
    assert_eq!(batch.events[2].class, EventClass::Severity(Severity::Warning));
    // no device name: the id stands in
    assert_eq!(batch.events[2].device.as_ref().unwrap().name, "d-02");
    assert_eq!(batch.events[3].class, EventClass::Severity(Severity::Info));

    let bad: Vec<&str> = batch.malformed.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(bad, vec!["e-bad", "e-odd"]);
    assert!(batch.malformed[1].reason.contains("Catastrophic"));
    // the cursor moves past the skipped records too
    assert_eq!(batch.next, seq_cursor(1048));
    assert!(batch.more);
}

#[tokio::test]
async fn empty_page_keeps_the_cursor_and_bad_input_is_rejected_before_sending() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-1/events"))
        .respond_with(page(json!([]), None))
        .mount(&server)
        .await;
    let source = KbhEventSource::endpoint_cloud(client(&server));
    let batch = source.poll_events(&TenantId::new("kbh:c-1"), Some(&Cursor("77".into())), 10, None).await.unwrap();
    assert_eq!(batch.next, Cursor("77".into()));
    assert!(!batch.more);
    let batch = source.poll_events(&TenantId::new("kbh:c-1"), None, 10_000, None).await.unwrap();
    assert_eq!(batch.next, Cursor("0".into()));
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(query(&reqs[1]), pairs(&[("after_seq", "0"), ("limit", "500")]));

    let err = source.poll_events(&TenantId::new("ksc:main/vs:1"), None, 10, None).await.unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Invalid);
    let err = source.poll_events(&TenantId::new("kbh:c-1"), Some(&Cursor("s12".into())), 10, None).await.unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Invalid);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn window_start_is_asked_of_the_server_and_enforced_when_it_is_ignored() {
    let server = MockServer::start().await;
    // a server that ignores occurred_after: the adapter leaves the old event out itself, and the
    // cursor still moves past it (arrival order, not event time)
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-1/events"))
        .respond_with(page(
            json!([
                {"id":"e-new","seq":11,"occurred_at":"2026-11-20T09:00:00Z","severity":"Critical","event_type":"X"},
                {"id":"e-old","seq":12,"occurred_at":"2026-11-18T09:00:00Z","severity":"Critical","event_type":"X"},
                {"id":"e-late","seq":13,"occurred_at":"2026-11-19T10:00:00Z","severity":"Critical","event_type":"X"}
            ]),
            None,
        ))
        .mount(&server)
        .await;
    let source = KbhEventSource::endpoint_cloud(client(&server));
    let window = "2026-11-19T09:30:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let batch = source.poll_events(&TenantId::new("kbh:c-1"), Some(&seq_cursor(10)), 100, Some(window)).await.unwrap();
    let req = &server.received_requests().await.unwrap()[0];
    assert_eq!(query(req), pairs(&[("after_seq", "10"), ("limit", "100"), ("occurred_after", "2026-11-19T09:30:00Z")]));
    let ids: Vec<&str> = batch.events.iter().map(|e| e.source_id.as_str()).collect();
    assert_eq!(ids, ["e-new", "e-late"]);
    assert!(batch.malformed.is_empty());
    assert_eq!(batch.next, seq_cursor(13));
}

#[tokio::test]
async fn every_office365_event_type_is_mapped() {
    let server = MockServer::start().await;
    let mut items = Vec::new();
    for (i, t) in Office365EventType::ALL.iter().enumerate() {
        items.push(json!({"id": format!("m-{i}"), "seq": 80 + i, "occurred_at": "2026-11-20T08:00:00Z",
            "event_type": t.code(), "display_name": t.display_name(), "mailbox": "ceo@acme.example",
            "description": format!("about {}", t.code())}));
    }
    items.push(json!({"id":"m-x","seq":99,"occurred_at":"2026-11-20T08:00:00Z","event_type":"spam_detected"}));
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-7f3a/o365/events"))
        .respond_with(page(Value::Array(items), None))
        .mount(&server)
        .await;

    let source = KbhEventSource::office365(client(&server));
    assert_eq!(EventSource::product(&source), Product::Office365);
    let batch = source.poll_events(&TenantId::new("kbh:c-7f3a"), Some(&seq_cursor(79)), 100, None).await.unwrap();
    let req = &server.received_requests().await.unwrap()[0];
    assert_eq!(req.url.path(), "/api/v1/companies/c-7f3a/o365/events");
    assert_eq!(query(req), pairs(&[("after_seq", "79"), ("limit", "100")]));

    assert_eq!(batch.events.len(), 5);
    for (e, t) in batch.events.iter().zip(Office365EventType::ALL) {
        assert_eq!(e.class, EventClass::Office365(t));
        assert_eq!(e.product, Product::Office365);
        assert_eq!(e.event_type, t.code());
        assert_eq!(e.display_name, t.display_name());
        assert_eq!(e.mailbox.as_deref(), Some("ceo@acme.example"));
        assert_eq!(e.device, None);
        assert_eq!(e.text, format!("about {}", t.code()));
    }
    assert_eq!(batch.malformed.len(), 1);
    assert_eq!(batch.malformed[0].id, "m-x");
    assert_eq!(batch.next, seq_cursor(99));
    assert!(!batch.more);
}

#[tokio::test]
async fn office365_issues_give_the_resolved_signal() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-7f3a/o365/issues"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items":[
            {"type":"mailboxes_protection_not_provided","active":true,"since":"2026-11-20T07:55:00Z",
             "resolved_at":null,"message":"The application cannot connect to Exchange Online."},
            {"type":"license_issue","active":false,"since":"2026-11-19T07:00:00Z",
             "resolved_at":"2026-11-19T08:00:00Z","message":"License renewed"},
            {"type":"malware_detected","active":true,"since":"2026-11-19T07:00:00Z","resolved_at":null,"message":""},
            {"type":"quota_exceeded","active":true,"since":"2026-11-19T07:00:00Z","resolved_at":null,"message":""}
        ]})))
        .mount(&server)
        .await;

    let source = KbhStatusSource::office365(client(&server));
    assert_eq!(StatusSource::product(&source), Product::Office365);
    let snap = source.snapshot(&TenantId::new("kbh:c-7f3a")).await.unwrap();
    let req = &server.received_requests().await.unwrap()[0];
    assert_eq!(req.url.path(), "/api/v1/companies/c-7f3a/o365/issues");
    assert_eq!(query(req), pairs(&[("limit", "100")]));

    assert_eq!(snap.product, Product::Office365);
    assert!(snap.devices.is_empty());
    assert_eq!(snap.issues.len(), 2);
    let mbx = &snap.issues[0];
    assert_eq!(mbx.event_type, Office365EventType::MailboxesProtectionNotProvided);
    assert!(mbx.active);
    assert_eq!(mbx.since.unwrap().to_rfc3339(), "2026-11-20T07:55:00+00:00");
    assert_eq!(mbx.resolved_at, None);
    let lic = &snap.issues[1];
    assert_eq!(lic.event_type, Office365EventType::LicenseIssue);
    assert!(!lic.active);
    assert_eq!(lic.resolved_at.unwrap().to_rfc3339(), "2026-11-19T08:00:00+00:00");

    let list = client(&server).o365_issues(&company("c-7f3a")).await.unwrap();
    assert_eq!(list.ignored, vec!["malware_detected".to_owned(), "quota_exceeded".to_owned()]);
}

#[tokio::test]
async fn throttling_waits_for_retry_after_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies"))
        .respond_with(err_body(429, "rate_limited", "600 requests per minute").insert_header("Retry-After", "1"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies"))
        .respond_with(page(json!([{"id":"c-1","name":"One","products":[]}]), None))
        .mount(&server)
        .await;
    let companies = client(&server).companies().await.unwrap();
    assert_eq!(companies.len(), 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn throttling_beyond_the_retries_reports_rate_limited_with_the_wait() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(err_body(429, "rate_limited", "slow down").insert_header("Retry-After", "17"))
        .mount(&server)
        .await;
    let err = client(&server).companies().await.unwrap_err();
    assert_eq!(
        err,
        KbhError::Api {
            status: 429,
            code: "rate_limited".into(),
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(17)),
        }
    );
    // 1 call + 3 retries (RetryPolicy::FAST)
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
    let port = KbhEventSource::endpoint_cloud(client(&server)).tenants().await.unwrap_err();
    assert_eq!(port.kind, PortErrorKind::RateLimited);
    assert_eq!(port.retry_after, Some(Duration::from_secs(17)));
}

#[tokio::test]
async fn transient_failures_are_retried_and_classified() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-1/o365/issues"))
        .respond_with(err_body(503, "unavailable", "maintenance"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-1/o365/issues"))
        .respond_with(ResponseTemplate::new(500).set_body_string("<html>oops</html>"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-1/o365/issues"))
        .respond_with(page(json!([]), None))
        .mount(&server)
        .await;
    let list = client(&server).o365_issues(&company("c-1")).await.unwrap();
    assert!(list.issues.is_empty());
    assert_eq!(server.received_requests().await.unwrap().len(), 3);

    // without retries the server's own error comes back, classified
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(err_body(503, "unavailable", "maintenance")).mount(&server).await;
    let c = client_with(&server, KbhAuth::Token(Secret::new(TOKEN)), RetryPolicy::NONE);
    let err = c.o365_issues(&company("c-1")).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.server_code(), Some("unavailable"));
    assert_eq!(err.to_string(), "business hub answered 503 unavailable: maintenance");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn non_json_error_and_bad_success_bodies() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-1/devices"))
        .respond_with(ResponseTemplate::new(502).set_body_string("Bad gateway from proxy"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-1/events"))
        .respond_with(ResponseTemplate::new(200).set_body_string("not json"))
        .mount(&server)
        .await;
    let c = client_with(&server, KbhAuth::Token(Secret::new(TOKEN)), RetryPolicy::NONE);
    let err = c.devices(&company("c-1")).await.unwrap_err();
    assert!(matches!(&err, KbhError::Api { status: 502, code, message, .. }
        if code == "unknown" && message == "Bad gateway from proxy"));
    let err = c.events(&company("c-1"), 0, 10, None).await.unwrap_err();
    assert!(matches!(err, KbhError::Decode { status: 200, .. }));
}

#[tokio::test]
async fn connection_refused_is_transient() {
    // bind and drop a listener to get a port nobody listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = KbhConfig::new(&format!("http://127.0.0.1:{port}"), KbhAuth::Token(Secret::new(TOKEN)))
        .unwrap()
        .with_retry(RetryPolicy::FAST)
        .with_timeouts(Duration::from_secs(2), Duration::from_secs(2));
    let err = KbhClient::new(config).unwrap().companies().await.unwrap_err();
    assert!(matches!(err, KbhError::Transport(_)), "{err:?}");
    assert_eq!(err.kind(), PortErrorKind::Transient);
}

#[tokio::test]
async fn request_timeout_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(page(json!([]), None).set_delay(Duration::from_millis(500)))
        .mount(&server)
        .await;
    let config = KbhConfig::new(&server.uri(), KbhAuth::Token(Secret::new(TOKEN)))
        .unwrap()
        .with_retry(RetryPolicy::NONE)
        .with_timeouts(Duration::from_secs(1), Duration::from_millis(50));
    let err = KbhClient::new(config).unwrap().companies().await.unwrap_err();
    assert!(matches!(err, KbhError::Timeout(_)), "{err:?}");
    assert_eq!(err.kind(), PortErrorKind::Transient);
}

#[tokio::test]
async fn one_timeout_setting_bounds_connect_and_request() {
    // the daemon's single `business_hub.timeout_secs` goes through `with_timeout`
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(page(json!([]), None).set_delay(Duration::from_millis(500)))
        .mount(&server)
        .await;
    let config = KbhConfig::new(&server.uri(), KbhAuth::Token(Secret::new(TOKEN)))
        .unwrap()
        .with_retry(RetryPolicy::NONE)
        .with_timeout(Duration::from_millis(50));
    assert_eq!(config.request_timeout, Duration::from_millis(50));
    assert_eq!(config.connect_timeout, Duration::from_millis(50), "connect never waits longer than a request");
    let err = KbhClient::new(config).unwrap().companies().await.unwrap_err();
    assert!(matches!(err, KbhError::Timeout(_)), "{err:?}");
    // a long timeout keeps the default connect timeout
    let config = KbhConfig::new(&server.uri(), KbhAuth::Token(Secret::new(TOKEN)))
        .unwrap()
        .with_timeout(Duration::from_secs(120));
    assert_eq!(config.request_timeout, Duration::from_secs(120));
    assert_eq!(config.connect_timeout, Duration::from_secs(10));
}

#[tokio::test]
async fn zero_timeouts_are_a_config_error() {
    for (connect, request) in [(Duration::ZERO, Duration::from_secs(1)), (Duration::from_secs(1), Duration::ZERO)] {
        let config = KbhConfig::new("http://127.0.0.1:9", KbhAuth::Token(Secret::new(TOKEN)))
            .unwrap()
            .with_timeouts(connect, request);
        let err = KbhClient::new(config).unwrap_err();
        assert!(matches!(&err, KbhError::Config(m) if m.contains("timeout")), "{err:?}");
    }
}

#[tokio::test]
async fn static_token_401_is_an_auth_error_without_retry() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(err_body(401, "unauthorized", "invalid token")).mount(&server).await;
    let err = client(&server).companies().await.unwrap_err();
    assert_eq!(err.kind(), PortErrorKind::Auth);
    assert_eq!(err.server_code(), Some("unauthorized"));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn login_then_relogin_once_on_401() {
    let server = MockServer::start().await;
    let login_body = json!({"email":"msp@example.test","password":PASSWORD});
    Mock::given(method("POST"))
        .and(path("/api/v1/auth/token"))
        .and(body_json(&login_body))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token":"login-tok-1","token_type":"Bearer","expires_in":3600})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/auth/token"))
        .and(body_json(&login_body))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token":"login-tok-2","token_type":"Bearer","expires_in":3600})),
        )
        .mount(&server)
        .await;
    // the first token works once, then "expires"
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer login-tok-1"))
        .respond_with(page(json!([]), None))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer login-tok-1"))
        .respond_with(err_body(401, "unauthorized", "token expired"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer login-tok-2"))
        .respond_with(page(json!([{"id":"c-1","name":"One","products":["kes_cloud"]}]), None))
        .mount(&server)
        .await;

    let c = client_with(&server, login_auth(), RetryPolicy::FAST);
    assert!(c.companies().await.unwrap().is_empty());
    assert_eq!(c.companies().await.unwrap().len(), 1);
    // the new token is kept: no third login
    assert_eq!(c.companies().await.unwrap().len(), 1);

    let reqs = server.received_requests().await.unwrap();
    let seen: Vec<(String, String)> =
        reqs.iter().map(|r| (r.method.as_str().to_owned(), r.url.path().to_owned())).collect();
    let want = [
        ("POST", "/api/v1/auth/token"),
        ("GET", "/api/v1/companies"),
        ("GET", "/api/v1/companies"),
        ("POST", "/api/v1/auth/token"),
        ("GET", "/api/v1/companies"),
        ("GET", "/api/v1/companies"),
    ];
    assert_eq!(seen, want.map(|(m, p)| (m.to_owned(), p.to_owned())));
    assert_eq!(hdr(&reqs[0], "content-type"), Some("application/json"));
    assert_eq!(hdr(&reqs[0], "authorization"), None);
    let sent: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(sent, login_body);
}

#[tokio::test]
async fn relogin_happens_only_once_per_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/auth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token":"t","token_type":"Bearer"})))
        .mount(&server)
        .await;
    Mock::given(method("GET")).respond_with(err_body(401, "unauthorized", "nope")).mount(&server).await;
    let c = client_with(&server, login_auth(), RetryPolicy::FAST);
    let err = c.companies().await.unwrap_err();
    assert_eq!(err.kind(), PortErrorKind::Auth);
    // login, get, login, get
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn wrong_password_is_an_auth_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/auth/token"))
        .respond_with(err_body(401, "unauthorized", "invalid email or password"))
        .mount(&server)
        .await;
    let c = client_with(&server, login_auth(), RetryPolicy::FAST);
    let err = c.check().await.unwrap_err();
    assert_eq!(err.kind(), PortErrorKind::Auth);
    assert_eq!(err.to_string(), "business hub answered 401 unauthorized: invalid email or password");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn poll_all_isolates_a_failing_company() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies"))
        .respond_with(page(
            json!([{"id":"c-ok","name":"Ok","products":["kes_cloud"]},
                   {"id":"c-down","name":"Down","products":["kes_cloud"]},
                   {"id":"c-o365","name":"Mail only","products":["ksmo365"]}]),
            None,
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-down/events"))
        .respond_with(err_body(500, "internal", "database on fire"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-ok/events"))
        .respond_with(page(
            json!([{"id":"e-1","seq":5,"occurred_at":"2026-11-20T09:10:11Z","severity":"Critical",
                    "event_type":"GNRL_EV_VIRUS_FOUND","display_name":"Malicious object detected"}]),
            None,
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-ok/devices"))
        .respond_with(page(json!([]), None))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies/c-down/devices"))
        .respond_with(err_body(404, "not_found", "company c-down not found"))
        .mount(&server)
        .await;

    let c = client_with(&server, KbhAuth::Token(Secret::new(TOKEN)), RetryPolicy::NONE);
    let mut cursors = HashMap::new();
    cursors.insert(TenantId::new("kbh:c-ok"), seq_cursor(4));
    let results = KbhEventSource::endpoint_cloud(c.clone()).poll_all(&cursors, 100, None).await.unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].tenant.id.as_str(), "kbh:c-ok");
    let ok = results[0].result.as_ref().unwrap();
    assert_eq!(ok.events.len(), 1);
    assert_eq!(ok.next, seq_cursor(5));
    assert_eq!(results[1].tenant.name, "Down");
    let down = results[1].result.as_ref().unwrap_err();
    assert_eq!(down.kind, PortErrorKind::Transient);
    assert!(down.message.contains("500 internal: database on fire"));

    let snaps = KbhStatusSource::endpoint_cloud(c).snapshot_all().await.unwrap();
    assert!(snaps[0].result.is_ok());
    assert_eq!(snaps[1].result.as_ref().unwrap_err().kind, PortErrorKind::NotFound);

    let reqs = server.received_requests().await.unwrap();
    let ok_req = reqs.iter().find(|r| r.url.path() == "/api/v1/companies/c-ok/events").unwrap();
    assert_eq!(query(ok_req), pairs(&[("after_seq", "4"), ("limit", "100")]));
    let down_req = reqs.iter().find(|r| r.url.path() == "/api/v1/companies/c-down/events").unwrap();
    assert_eq!(query(down_req), pairs(&[("after_seq", "0"), ("limit", "100")]));
}

#[tokio::test]
async fn paging_loop_is_detected() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/companies"))
        .respond_with(page(json!([]), Some("same")))
        .mount(&server)
        .await;
    let err = client(&server).companies().await.unwrap_err();
    assert!(matches!(err, KbhError::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn invalid_ca_pem_is_a_config_error() {
    let config = KbhConfig::new("https://hub.example", KbhAuth::Token(Secret::new(TOKEN)))
        .unwrap()
        .with_ca_pem(b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n".to_vec());
    let err = KbhClient::new(config).unwrap_err();
    assert!(matches!(err, KbhError::Config(_)), "{err:?}");
}

#[tokio::test]
async fn valid_ca_pem_is_accepted_and_https_is_really_tls() {
    let server = MockServer::start().await;
    let https = server.uri().replace("http://", "https://");
    let config = KbhConfig::new(&https, KbhAuth::Token(Secret::new(TOKEN)))
        .unwrap()
        .with_ca_pem(include_bytes!("fixtures/test-ca.pem").to_vec())
        .with_retry(RetryPolicy::NONE);
    let client = KbhClient::new(config).unwrap();
    // the plain-HTTP mock cannot complete a TLS handshake: nothing is accepted unverified
    let err = client.companies().await.unwrap_err();
    assert!(matches!(err, KbhError::Transport(_)), "{err:?}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn secrets_never_appear_in_debug_display_or_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/auth/token"))
        .respond_with(err_body(401, "unauthorized", "invalid email or password"))
        .mount(&server)
        .await;
    Mock::given(method("GET")).respond_with(err_body(401, "unauthorized", "invalid token")).mount(&server).await;

    let token_config = KbhConfig::new(&server.uri(), KbhAuth::Token(Secret::new(TOKEN))).unwrap();
    let login_config = KbhConfig::new(&server.uri(), login_auth()).unwrap().with_retry(RetryPolicy::NONE);
    let token_client = KbhClient::new(token_config.clone()).unwrap();
    let login_client = KbhClient::new(login_config.clone()).unwrap();

    let mut texts = vec![
        format!("{token_config:?}"),
        format!("{login_config:?}"),
        format!("{token_client:?}"),
        format!("{login_client:?}"),
        format!("{:?}", KbhEventSource::office365(token_client.clone())),
        format!("{:?}", KbhStatusSource::endpoint_cloud(login_client.clone())),
    ];
    let errors = [
        token_client.companies().await.unwrap_err(),
        login_client.companies().await.unwrap_err(),
        login_client.check().await.unwrap_err(),
    ];
    for e in &errors {
        texts.push(format!("{e:?}"));
        texts.push(e.to_string());
        let port: ticketing_core::ports::PortError = e.clone().into();
        texts.push(format!("{port:?}"));
        texts.push(port.to_string());
    }
    let port = KbhEventSource::endpoint_cloud(login_client)
        .poll_events(&TenantId::new("kbh:c-1"), None, 10, None)
        .await
        .unwrap_err();
    texts.push(format!("{port:?}"));
    for t in &texts {
        assert!(!t.contains(TOKEN), "token leaked: {t}");
        assert!(!t.contains(PASSWORD), "password leaked: {t}");
    }
    // the debug output does say what it is configured with
    assert!(texts[1].contains("msp@example.test"));
    assert!(texts[0].contains("***"));
}
