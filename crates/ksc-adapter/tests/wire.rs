//! Exact wire shapes against wiremock: every call's method, path, headers and JSON body, the
//! envelope, session expiry, iterator release, paging, status decoding and secret hygiene.

use std::time::Duration;

use ksc_adapter::client::parse_response;
use ksc_adapter::hosts::{HostRecord, host_status};
use ksc_adapter::{
    ErrorClass, EventCursor, KscConfig, KscError, KscSource, LevelSource, RetryPolicy, Value, tenant_id,
};
use serde_json::{Value as Json, json};
use ticketing_core::model::{
    ComputerStatus, DESCRIPTIONS, EventClass, Severity, StatusDescription, StatusLevel, TenantId,
};
use ticketing_core::ports::{Cursor, EventSource, PortError, PortErrorKind, StatusSource};
use ticketing_core::secret::Secret;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const PASSWORD: &str = "Sup3r-S3cret-Pa55";
// base64("ksc-admin"), base64(PASSWORD)
const B64_USER: &str = "a3NjLWFkbWlu";

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn config(server: &MockServer) -> KscConfig {
    let mut c = KscConfig::new(server.uri(), "ksc-admin", Secret::new(PASSWORD));
    c.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    };
    c.request_timeout = Duration::from_secs(5);
    c
}

fn api(m: &str) -> String {
    format!("/api/v1.0/{m}")
}

fn ok(body: Json) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

async fn mount(server: &MockServer, m: &str, resp: ResponseTemplate) {
    Mock::given(method("POST")).and(path(api(m))).respond_with(resp).mount(server).await;
}

async fn mount_session(server: &MockServer) {
    mount(server, "Session.StartSession", ok(json!({"PxgRetVal": "sess-1"}))).await;
}

/// (method name, request) for every call received, in order.
async fn calls(server: &MockServer) -> Vec<(String, Request)> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.url.path().trim_start_matches("/api/v1.0/").to_owned(), r))
        .collect()
}

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

fn body(r: &Request) -> Json {
    serde_json::from_slice(&r.body).expect("json body")
}

fn datetime(s: &str) -> Json {
    json!({"type": "datetime", "value": s})
}

fn event(id: i64, at: &str, severity: i64, host: &str) -> Json {
    json!({"type": "params", "value": {
        "event_db_id": {"type": "long", "value": id},
        "rise_time": datetime(at),
        "GNRL_EA_SEVERITY": severity,
        "event_type": "GNRL_EV_VIRUS_FOUND",
        "event_type_display_name": "Malicious object detected",
        "GNRL_EA_DESCRIPTION": format!("event {id}"),
        "hostname": if host.is_empty() { String::new() } else { format!("guid-{host}") },
        "hostdn": host,
        "product_name": "KES",
        "task_display_name": "",
    }})
}

fn range(records: Vec<Json>) -> ResponseTemplate {
    ok(json!({"pParamsEvents": {"KLEVP_EVENT_RANGE_ARRAY": records}}))
}

#[tokio::test]
async fn start_session_sends_kscbasic_and_vserver_headers_and_reuses_the_session() {
    let server = MockServer::start().await;
    mount_session(&server).await;
    mount(&server, "Session.Ping", ok(json!({}))).await;
    let ksc = KscSource::new(config(&server)).unwrap();
    ksc.client().ping("").await.unwrap();
    ksc.client().ping("").await.unwrap();
    ksc.client().ping("Customer A").await.unwrap();
    let calls = calls(&server).await;
    let names: Vec<&str> = calls.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(names, ["Session.StartSession", "Session.Ping", "Session.Ping", "Session.StartSession", "Session.Ping"]);
    let (_, start) = &calls[0];
    assert_eq!(start.method.as_str(), "POST");
    assert_eq!(
        header(start, "authorization").unwrap(),
        format!("KSCBasic user=\"{B64_USER}\", pass=\"{}\", domain=\"\", internal=\"1\"", b64(PASSWORD))
    );
    assert_eq!(header(start, "x-ksc-vserver"), Some(""));
    assert_eq!(header(start, "content-type"), Some("application/json"));
    assert_eq!(body(start), json!({}));
    assert_eq!(header(&calls[3].1, "x-ksc-vserver"), Some(b64("Customer A").as_str()));
    for (_, ping) in [&calls[1], &calls[2], &calls[4]] {
        assert_eq!(header(ping, "x-ksc-session"), Some("sess-1"));
        assert_eq!(header(ping, "authorization"), None, "no credentials on ordinary calls");
        assert_eq!(body(ping), json!({}));
    }
    assert_eq!(ksc.client().open_sessions().await, 2);
}

#[tokio::test]
async fn logout_all_ends_every_session() {
    let server = MockServer::start().await;
    mount_session(&server).await;
    mount(&server, "Session.Ping", ok(json!({}))).await;
    mount(&server, "Session.EndSession", ok(json!({}))).await;
    let ksc = KscSource::new(config(&server)).unwrap();
    ksc.client().ping("").await.unwrap();
    ksc.client().ping("B").await.unwrap();
    ksc.logout_all().await.unwrap();
    let ends: Vec<Request> =
        calls(&server).await.into_iter().filter(|(m, _)| m == "Session.EndSession").map(|(_, r)| r).collect();
    assert_eq!(ends.len(), 2);
    for r in &ends {
        assert_eq!(header(r, "x-ksc-session"), Some("sess-1"));
        assert_eq!(body(r), json!({}));
    }
    assert_eq!(ksc.client().open_sessions().await, 0);
}

#[tokio::test]
async fn virtual_servers_become_tenants() {
    let server = MockServer::start().await;
    mount_session(&server).await;
    mount(
        &server,
        "VServers.GetVServers",
        ok(json!({"PxgRetVal": [
            {"type": "params", "value": {"KLVSRV_ID": 1, "KLVSRV_DN": "vservx", "KLVSRV_ENABLED": true,
              "KLVSRV_UID": "VSRVa80a675f-40d1-4f50-aec8-ff79bd8793d4",
              "KLVSRV_CREATED": {"type": "datetime", "value": "2020-05-03T00:59:09Z"}}},
            {"type": "params", "value": {"KLVSRV_ID": 7, "KLVSRV_DN": "Customer B"}}
        ]})),
    )
    .await;
    let mut c = config(&server);
    c.server_label = "hq".into();
    let ksc = KscSource::new(c).unwrap();
    let tenants = EventSource::tenants(&ksc).await.unwrap();
    let ids: Vec<&str> = tenants.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["ksc:hq/vs:0", "ksc:hq/vs:1", "ksc:hq/vs:7"]);
    assert_eq!(tenants[1].name, "vservx");
    let vs = ksc.virtual_servers().await.unwrap();
    assert_eq!(vs[0].uid.as_deref(), Some("VSRVa80a675f-40d1-4f50-aec8-ff79bd8793d4"));
    assert_eq!(vs[0].enabled, Some(true));
    assert_eq!(ksc.vserver_name(&tenant_id("hq", 7)).await.unwrap(), "Customer B");
    assert_eq!(ksc.vserver_name(&tenant_id("hq", 0)).await.unwrap(), "");
    assert!(matches!(ksc.vserver_name(&tenant_id("hq", 9)).await, Err(KscError::UnknownTenant(_))));
    assert!(matches!(ksc.vserver_name(&tenant_id("other", 1)).await, Err(KscError::UnknownTenant(_))));
    let get = calls(&server).await.into_iter().find(|(m, _)| m == "VServers.GetVServers").unwrap().1;
    assert_eq!(body(&get), json!({"lParentGroup": -1}));

    let mut c = config(&server);
    c.include_main_server = false;
    let ksc = KscSource::new(c).unwrap();
    let ids: Vec<String> = ksc.list_tenants().await.unwrap().into_iter().map(|t| t.id.to_string()).collect();
    assert_eq!(ids, ["ksc:main/vs:1", "ksc:main/vs:7"]);
}

#[tokio::test]
async fn events_are_paged_mapped_and_the_iterator_released() {
    let server = MockServer::start().await;
    mount_session(&server).await;
    mount(&server, "EventProcessingFactory.CreateEventProcessing2", ok(json!({"strIteratorId": "it-1"}))).await;
    mount(&server, "EventProcessing.ReleaseIterator", ok(json!({}))).await;
    mount(&server, "EventProcessing.GetRecordCount", ok(json!({"PxgRetVal": 5}))).await;
    let page = |n_start: u64| {
        Mock::given(method("POST"))
            .and(path(api("EventProcessing.GetRecordRange")))
            .and(wiremock::matchers::body_partial_json(json!({"nStart": n_start})))
    };
    page(0)
        .respond_with(range(vec![
            event(10, "2024-05-01T10:00:00Z", 4, "pc-1"),
            event(11, "2024-05-01T10:00:01Z", 3, "pc-2"),
        ]))
        .mount(&server)
        .await;
    let mut bad = event(12, "2024-05-01T10:00:02Z", 9, "pc-3");
    bad["value"]["GNRL_EA_SEVERITY"] = json!(9);
    page(2).respond_with(range(vec![bad, event(13, "2024-05-01T10:00:02Z", 2, "pc-3")])).mount(&server).await;
    page(4).respond_with(range(vec![event(14, "2024-05-01T10:00:03Z", 1, "")])).mount(&server).await;

    let mut c = config(&server);
    c.event_page_size = 2;
    c.event_overlap = Duration::ZERO;
    c.event_iterator_lifetime = Duration::from_secs(90);
    let ksc = KscSource::new(c).unwrap();
    let tenant = tenant_id("main", 0);
    let batch = ksc.poll_events(&tenant, None, 100, None).await.unwrap();

    let ids: Vec<&str> = batch.events.iter().map(|e| e.source_id.as_str()).collect();
    assert_eq!(ids, ["10", "11", "13", "14"]);
    let classes: Vec<EventClass> = batch.events.iter().map(|e| e.class).collect();
    assert_eq!(
        classes,
        [Severity::Critical, Severity::FunctionalFailure, Severity::Warning, Severity::Info].map(EventClass::Severity)
    );
    let first = &batch.events[0];
    assert_eq!(first.tenant, tenant);
    assert_eq!(first.occurred_at.to_rfc3339(), "2024-05-01T10:00:00+00:00");
    assert_eq!(first.device.as_ref().unwrap().id.as_str(), "guid-pc-1");
    assert_eq!(first.device.as_ref().unwrap().name, "pc-1");
    assert_eq!(first.event_type, "GNRL_EV_VIRUS_FOUND");
    assert_eq!(first.display_name, "Malicious object detected");
    assert_eq!(first.text, "event 10");
    assert_eq!(batch.events[3].device, None);
    assert_eq!(batch.malformed.len(), 1);
    assert_eq!(batch.malformed[0].id, "12");
    assert!(batch.malformed[0].reason.contains("GNRL_EA_SEVERITY 9"), "{}", batch.malformed[0].reason);
    assert!(!batch.more);
    assert_eq!(batch.next.0, "dbid:14");
    assert_eq!(EventCursor::parse(Some(&batch.next)).unwrap(), EventCursor::Mark(14));

    let calls = calls(&server).await;
    let names: Vec<&str> = calls.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        names,
        [
            "Session.StartSession",
            "EventProcessingFactory.CreateEventProcessing2",
            // A first read (no mark) needs no count: it pages until a short page (1 of 2).
            "EventProcessing.GetRecordRange",
            "EventProcessing.GetRecordRange",
            "EventProcessing.GetRecordRange",
            "EventProcessing.ReleaseIterator",
        ]
    );
    let order = |n: &str| json!({"type": "params", "value": {"Name": n, "Asc": true}});
    assert_eq!(
        body(&calls[1].1),
        json!({
            "pFilter": {},
            "vecFieldsToReturn": ["event_db_id", "rise_time", "GNRL_EA_SEVERITY", "event_type",
                "event_type_display_name", "GNRL_EA_DESCRIPTION", "hostname", "hostdn", "product_name",
                "task_display_name"],
            "vecFieldsToOrder": [order("event_db_id")],
            "lifetimeSec": 90,
        })
    );
    assert_eq!(body(&calls[2].1), json!({"strIteratorId": "it-1", "nStart": 0, "nEnd": 2}));
    assert_eq!(body(&calls[3].1), json!({"strIteratorId": "it-1", "nStart": 2, "nEnd": 4}));
    assert_eq!(body(&calls[4].1), json!({"strIteratorId": "it-1", "nStart": 4, "nEnd": 6}));
    assert_eq!(body(&calls[5].1), json!({"strIteratorId": "it-1"}));
    for (_, r) in &calls[1..] {
        assert_eq!(header(r, "x-ksc-session"), Some("sess-1"));
    }
}

#[tokio::test]
async fn an_old_rise_time_cursor_is_read_by_time_once_then_becomes_a_dbid_mark() {
    let server = MockServer::start().await;
    mount_session(&server).await;
    mount(&server, "EventProcessingFactory.CreateEventProcessing2", ok(json!({"strIteratorId": "it-2"}))).await;
    mount(&server, "EventProcessing.ReleaseIterator", ok(json!({}))).await;
    mount(
        &server,
        "EventProcessing.GetRecordRange",
        range(vec![
            event(5, "2024-05-01T09:59:30Z", 2, "a"),
            event(6, "2024-05-01T10:00:00Z", 2, "a"),
            event(7, "2024-05-01T10:00:00Z", 2, "a"),
            event(8, "2024-05-01T10:00:05Z", 4, "b"),
        ]),
    )
    .await;
    let mut c = config(&server);
    c.event_overlap = Duration::from_secs(60);
    let ksc = KscSource::new(c).unwrap();
    let cursor = Cursor(
        json!({"v": 1, "rise_time": "2024-05-01T10:00:00Z",
               "seen": [{"id": 5, "at": "2024-05-01T09:59:30Z"}, {"id": 6, "at": "2024-05-01T10:00:00Z"}]})
        .to_string(),
    );
    let batch = ksc.poll_events(&tenant_id("main", 0), Some(&cursor), 1, None).await.unwrap();
    assert_eq!(batch.events.iter().map(|e| e.source_id.as_str()).collect::<Vec<_>>(), ["7"]);
    assert!(batch.more, "limit reached with records left");
    let create = calls(&server).await.into_iter().find(|(m, _)| m.ends_with("CreateEventProcessing2")).unwrap().1;
    assert_eq!(
        body(&create)["pFilter"],
        json!({"KLEVP_EVENT_RISE_TIME_LEAST": {"type": "datetime", "value": "2024-05-01T09:59:00Z"}})
    );
    // Stopped by the limit: the migration read goes on in the old form.
    let EventCursor::Legacy(next) = EventCursor::parse(Some(&batch.next)).unwrap() else {
        panic!("expected the old form while the migration read is incomplete: {}", batch.next.0);
    };
    assert_eq!(next.seen.iter().map(|s| s.id).collect::<Vec<_>>(), [5, 6, 7]);
    assert_eq!(next.max_id, Some(7));

    let batch = ksc.poll_events(&tenant_id("main", 0), Some(&batch.next), 10, None).await.unwrap();
    assert_eq!(batch.events.iter().map(|e| e.source_id.as_str()).collect::<Vec<_>>(), ["8"]);
    assert!(!batch.more);
    assert_eq!(batch.next.0, "dbid:8", "migration complete: a high-water mark from now on");

    let err = ksc.poll_events(&tenant_id("main", 0), Some(&Cursor("{not json".into())), 10, None).await.unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Invalid);
}

#[tokio::test]
async fn iterator_is_released_when_a_page_fails() {
    let server = MockServer::start().await;
    mount_session(&server).await;
    mount(&server, "EventProcessingFactory.CreateEventProcessing2", ok(json!({"strIteratorId": "it-9"}))).await;
    mount(&server, "EventProcessing.ReleaseIterator", ok(json!({}))).await;
    mount(&server, "EventProcessing.GetRecordCount", ok(json!({"PxgRetVal": 3}))).await;
    mount(
        &server,
        "EventProcessing.GetRecordRange",
        ResponseTemplate::new(500).set_body_json(json!({"PxgError": {
            "code": 1184, "module": "KLSTD", "message": "Iterator not found", "file": "x.cpp", "line": 7}})),
    )
    .await;
    let ksc = KscSource::new(config(&server)).unwrap();
    let err = ksc.events(&tenant_id("main", 0), None, 10, None).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Api);
    assert_eq!(err.status(), Some(500));
    let pxg = err.pxg().unwrap();
    assert_eq!((pxg.code, pxg.module.as_str(), pxg.message.as_str()), (1184, "KLSTD", "Iterator not found"));
    assert_eq!(pxg.line, Some(7));
    let names: Vec<String> = calls(&server).await.into_iter().map(|(m, _)| m).collect();
    assert_eq!(names.last().map(String::as_str), Some("EventProcessing.ReleaseIterator"));
    assert_eq!(names.iter().filter(|m| m.ends_with("GetRecordRange")).count(), 1, "api errors are not retried");
    let port: PortError = err.into();
    assert_eq!(port.kind, PortErrorKind::Other);
    assert!(port.message.contains("Iterator not found"));
}

#[tokio::test]
async fn expired_session_403_starts_a_new_session_once_and_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("Session.StartSession")))
        .respond_with(ok(json!({"PxgRetVal": "old"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount(&server, "Session.StartSession", ok(json!({"PxgRetVal": "new"}))).await;
    Mock::given(method("POST"))
        .and(path(api("Session.Ping")))
        .and(wiremock::matchers::header("X-KSC-Session", "old"))
        .respond_with(ResponseTemplate::new(403).set_body_string("Forbidden"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(api("Session.Ping")))
        .and(wiremock::matchers::header("X-KSC-Session", "new"))
        .respond_with(ok(json!({})))
        .mount(&server)
        .await;
    let ksc = KscSource::new(config(&server)).unwrap();
    ksc.client().ping("").await.unwrap();
    ksc.client().ping("").await.unwrap();
    let seq: Vec<(String, Option<String>)> =
        calls(&server).await.into_iter().map(|(m, r)| (m, header(&r, "x-ksc-session").map(str::to_owned))).collect();
    assert_eq!(
        seq,
        [
            ("Session.StartSession".to_owned(), None),
            ("Session.Ping".to_owned(), Some("old".to_owned())),
            ("Session.StartSession".to_owned(), None),
            ("Session.Ping".to_owned(), Some("new".to_owned())),
            ("Session.Ping".to_owned(), Some("new".to_owned())),
        ]
    );
}

#[tokio::test]
async fn a_session_that_stays_gone_is_reported_not_looped() {
    let server = MockServer::start().await;
    mount_session(&server).await;
    mount(&server, "Session.Ping", ResponseTemplate::new(401).set_body_string("Unauthorized")).await;
    let ksc = KscSource::new(config(&server)).unwrap();
    let err = ksc.client().ping("").await.unwrap_err();
    assert!(matches!(err, KscError::SessionExpired { status: 401, .. }), "{err:?}");
    let n = calls(&server).await.len();
    assert_eq!(n, 4, "start, call, start again, call again");
}

/// A redirect is an HTTP error, not followed: following it would send the session header
/// (which no HTTP client strips, unlike `Authorization`) to wherever it points.
#[tokio::test]
async fn a_redirect_is_an_error_and_not_followed() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    mount(&elsewhere, "Session.Ping", ok(json!({}))).await;
    mount_session(&server).await;
    let to = format!("{}{}", elsewhere.uri(), api("Session.Ping"));
    mount(&server, "Session.Ping", ResponseTemplate::new(307).insert_header("location", to.as_str())).await;
    let ksc = KscSource::new(config(&server)).unwrap();
    let err = ksc.client().ping("").await.unwrap_err();
    assert!(matches!(err, KscError::Http { status: 307, .. }), "{err:?}");
    assert!(elsewhere.received_requests().await.unwrap().is_empty(), "the session went nowhere else");
}

#[tokio::test]
async fn bad_credentials_are_an_auth_error_without_the_password() {
    let server = MockServer::start().await;
    mount(&server, "Session.StartSession", ResponseTemplate::new(401).set_body_string("Authentication failed")).await;
    let cfg = config(&server);
    let ksc = KscSource::new(cfg.clone()).unwrap();
    let err = ksc.list_tenants().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth);
    assert!(matches!(&err, KscError::Auth { status: 401, body } if body == "Authentication failed"));
    let port: PortError = ksc.snapshot(&tenant_id("main", 0)).await.unwrap_err();
    assert_eq!(port.kind, PortErrorKind::Auth);
    let b64pass = b64(PASSWORD);
    for text in [
        format!("{err}"),
        format!("{err:?}"),
        format!("{port}"),
        format!("{port:?}"),
        format!("{cfg:?}"),
        format!("{ksc:?}"),
        format!("{:?}", ksc.client()),
    ] {
        assert!(!text.contains(PASSWORD), "password leaked in {text}");
        assert!(!text.contains(&b64pass), "encoded password leaked in {text}");
    }
}

#[tokio::test]
async fn transient_failures_of_reads_are_retried_with_backoff() {
    let server = MockServer::start().await;
    mount_session(&server).await;
    Mock::given(method("POST"))
        .and(path(api("Session.Ping")))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    mount(&server, "Session.Ping", ok(json!({}))).await;
    let ksc = KscSource::new(config(&server)).unwrap();
    ksc.client().ping("").await.unwrap();
    assert_eq!(calls(&server).await.iter().filter(|(m, _)| m == "Session.Ping").count(), 3);

    // Exhausted: the error keeps the status and classifies as transient.
    mount(&server, "Session.Ping", ResponseTemplate::new(503).set_body_string("still busy")).await;
    Mock::given(method("POST"))
        .and(path(api("Session.Ping")))
        .respond_with(ResponseTemplate::new(503).set_body_string("still busy"))
        .with_priority(1)
        .mount(&server)
        .await;
    let err = ksc.client().ping("").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(err.status(), Some(503));
    assert_eq!(PortError::from(err).kind, PortErrorKind::Transient);
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut c = KscConfig::new(format!("http://{addr}"), "u", Secret::new(PASSWORD));
    c.retry = RetryPolicy::NONE;
    let err = KscSource::new(c).unwrap().client().ping("").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    assert!(!err.to_string().contains(PASSWORD));
}

fn host(name: &str, status: i64, mask: i64, group: i64) -> Json {
    json!({"type": "params", "value": {
        "KLHST_WKS_HOSTNAME": format!("guid-{name}"),
        "KLHST_WKS_DN": name,
        "KLHST_WKS_STATUS_ID": status,
        "KLHST_WKS_STATUS_MASK": mask,
        "KLHST_WKS_GROUPID": group,
        "KLHST_WKS_LAST_VISIBLE": datetime("2024-05-01T10:00:00Z"),
    }})
}

async fn mount_hosts(server: &MockServer, hosts: Vec<Json>, chunk: usize) {
    mount_hosts_found(server, hosts, chunk, true).await;
}

/// The host read's mocks; `found`: FindHosts answers the number of hosts (`PxgRetVal`).
async fn mount_hosts_found(server: &MockServer, hosts: Vec<Json>, chunk: usize, found: bool) {
    let find =
        if found { json!({"strAccessor": "acc-1", "PxgRetVal": hosts.len()}) } else { json!({"strAccessor": "acc-1"}) };
    mount(server, "HostGroup.FindHosts", ok(find)).await;
    mount(server, "ChunkAccessor.GetItemsCount", ok(json!({"PxgRetVal": hosts.len()}))).await;
    mount(server, "ChunkAccessor.Release", ok(json!({}))).await;
    for (i, part) in hosts.chunks(chunk).enumerate() {
        Mock::given(method("POST"))
            .and(path(api("ChunkAccessor.GetItemsChunk")))
            .and(wiremock::matchers::body_partial_json(json!({"nStart": i * chunk})))
            .respond_with(ok(json!({"pChunk": {"KLCSP_ITERATOR_ARRAY": part}, "PxgRetVal": part.len()})))
            .mount(server)
            .await;
    }
}

#[tokio::test]
async fn snapshot_pages_across_chunks_and_reads_group_masks_once() {
    let server = MockServer::start().await;
    mount_session(&server).await;
    mount_hosts(
        &server,
        vec![
            host("ok-pc", 0, 0, 5),
            // bits 3 (viruses) and 7 (databases): group 5 says 3 is Critical, 7 Warning
            host("warn-pc", 1, 0x88, 5),
            host("crit-pc", 1, 0x20 | (1 << 25), 5),
            host("other-group", 2, 0x80, 6),
            host("unknown-group", 2, 0x2, 99),
        ],
        2,
    )
    .await;
    let info = |crit: i64, warn: i64| {
        ok(json!({"PxgRetVal": {
            "KLSRV_HSTSTAT_CRITICAL": {"type": "params", "value": {"KLSRV_HSTSTAT_MASK": crit, "KLSRV_HSTSTAT_INHERITED": true}},
            "KLSRV_HSTSTAT_WARNING": {"type": "params", "value": {"KLSRV_HSTSTAT_MASK": warn}},
        }}))
    };
    let group = |id: i64| {
        Mock::given(method("POST"))
            .and(path(api("HostGroup.GetGroupInfoEx")))
            .and(wiremock::matchers::body_partial_json(json!({"nGroupId": id})))
    };
    group(5).respond_with(info(0x8, 0x80)).mount(&server).await;
    group(6).respond_with(info(0x80, 0)).mount(&server).await;
    group(99)
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"PxgError": {"code": 1, "module": "KLSTD", "message": "Access denied"}})),
        )
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.host_chunk_size = 2;
    c.host_accessor_lifetime = Duration::from_secs(300);
    let ksc = KscSource::new(c).unwrap();
    let snap = ksc.snapshot(&tenant_id("main", 0)).await.unwrap();
    assert_eq!(snap.devices.len(), 5);
    assert_eq!(snap.unknown_descriptions, 1);
    let by_name = |n: &str| snap.devices.iter().find(|d| d.device.name == n).unwrap();
    assert_eq!(by_name("ok-pc").status, ComputerStatus::Ok);
    assert!(by_name("ok-pc").active.is_empty());
    let warn = by_name("warn-pc");
    assert_eq!(warn.device.id.as_str(), "guid-warn-pc");
    assert_eq!(warn.status, ComputerStatus::Critical);
    let pairs: Vec<(String, StatusLevel)> = warn.active.iter().map(|a| (a.description.code(), a.level)).collect();
    assert_eq!(
        pairs,
        [
            ("many_viruses_detected".into(), StatusLevel::Critical),
            ("databases_out_of_date".into(), StatusLevel::Warning)
        ]
    );
    let crit = by_name("crit-pc");
    // bit 5 is in neither group mask: its default level; bit 25 is unknown, kept.
    let pairs: Vec<(String, StatusLevel)> = crit.active.iter().map(|a| (a.description.code(), a.level)).collect();
    assert_eq!(
        pairs,
        [
            ("security_application_not_installed".into(), StatusLevel::Critical),
            ("unknown:25".into(), StatusLevel::Critical)
        ]
    );
    assert_eq!(by_name("other-group").active[0].level, StatusLevel::Critical, "group 6 makes bit 7 Critical");
    assert_eq!(by_name("unknown-group").status, ComputerStatus::Warning);
    assert_eq!(
        by_name("unknown-group").active[0].level,
        StatusLevel::Critical,
        "unreadable masks: catalogue default of realtime_protection_not_running"
    );

    let calls = calls(&server).await;
    let names: Vec<&str> = calls.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        names,
        [
            "Session.StartSession",
            // FindHosts answered the count: no GetItemsCount.
            "HostGroup.FindHosts",
            "ChunkAccessor.GetItemsChunk",
            "ChunkAccessor.GetItemsChunk",
            "ChunkAccessor.GetItemsChunk",
            "ChunkAccessor.Release",
            "HostGroup.GetGroupInfoEx",
            "HostGroup.GetGroupInfoEx",
            "HostGroup.GetGroupInfoEx",
        ]
    );
    assert_eq!(
        body(&calls[1].1),
        json!({
            "wstrFilter": "(KLHST_WKS_HOSTNAME=\"*\")",
            "vecFieldsToReturn": ["KLHST_WKS_HOSTNAME", "KLHST_WKS_DN", "KLHST_WKS_STATUS_ID",
                "KLHST_WKS_STATUS_MASK", "KLHST_WKS_GROUPID"],
            "vecFieldsToOrder": [],
            "pParams": {"KLSRVH_SLAVE_REC_DEPTH": 0, "KLGRP_FIND_FROM_CUR_VS_ONLY": true},
            "lMaxLifeTime": 300,
        })
    );
    assert_eq!(body(&calls[2].1), json!({"strAccessor": "acc-1", "nStart": 0, "nCount": 2}));
    assert_eq!(body(&calls[3].1), json!({"strAccessor": "acc-1", "nStart": 2, "nCount": 2}));
    assert_eq!(body(&calls[4].1), json!({"strAccessor": "acc-1", "nStart": 4, "nCount": 1}));
    assert_eq!(body(&calls[5].1), json!({"strAccessor": "acc-1"}));
    assert_eq!(
        body(&calls[6].1),
        json!({"nGroupId": 5, "pArrAttributes": ["KLSRV_HSTSTAT_CRITICAL", "KLSRV_HSTSTAT_WARNING"]})
    );
}

#[tokio::test]
async fn a_find_without_a_count_is_counted_with_get_items_count() {
    let server = MockServer::start().await;
    mount_session(&server).await;
    mount_hosts_found(&server, vec![host("a", 0, 0, 5), host("b", 0, 0, 5), host("c", 0, 0, 5)], 2, false).await;
    let ksc = KscSource::new(config(&server)).unwrap();
    let snap = ksc.statuses(&tenant_id("main", 0)).await.unwrap();
    assert_eq!(snap.devices.len(), 3);
    let names: Vec<String> = calls(&server).await.into_iter().map(|(m, _)| m).collect();
    assert_eq!(
        names,
        [
            "Session.StartSession",
            "HostGroup.FindHosts",
            "ChunkAccessor.GetItemsCount",
            "ChunkAccessor.GetItemsChunk",
            "ChunkAccessor.GetItemsChunk",
            "ChunkAccessor.Release"
        ]
    );
}

#[tokio::test]
async fn snapshot_fails_rather_than_going_partial_and_still_releases() {
    let server = MockServer::start().await;
    mount_session(&server).await;
    mount(&server, "HostGroup.FindHosts", ok(json!({"strAccessor": "acc-2", "PxgRetVal": 3}))).await;
    mount(&server, "ChunkAccessor.GetItemsCount", ok(json!({"PxgRetVal": 3}))).await;
    mount(&server, "ChunkAccessor.Release", ok(json!({}))).await;
    mount(&server, "ChunkAccessor.GetItemsChunk", ok(json!({"pChunk": {"KLCSP_ITERATOR_ARRAY": []}, "PxgRetVal": 0})))
        .await;
    let ksc = KscSource::new(config(&server)).unwrap();
    let err = ksc.statuses(&tenant_id("main", 0)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Malformed, "{err}");
    let names: Vec<String> = calls(&server).await.into_iter().map(|(m, _)| m).collect();
    assert_eq!(names.last().map(String::as_str), Some("ChunkAccessor.Release"));
}

#[tokio::test]
async fn defaults_only_level_source_skips_group_lookups() {
    let server = MockServer::start().await;
    mount_session(&server).await;
    mount_hosts(&server, vec![host("a", 2, 0x80 | 0x200, 5)], 500).await;
    let mut c = config(&server);
    c.level_source = LevelSource::Defaults;
    c.level_overrides.insert(9, StatusLevel::Warning);
    let ksc = KscSource::new(c).unwrap();
    let snap = ksc.statuses(&tenant_id("main", 0)).await.unwrap();
    let levels: Vec<StatusLevel> = snap.devices[0].active.iter().map(|a| a.level).collect();
    assert_eq!(levels, [StatusLevel::Warning, StatusLevel::Warning], "license_expired overridden to Warning");
    assert!(calls(&server).await.iter().all(|(m, _)| m != "HostGroup.GetGroupInfoEx"));
}

#[test]
fn every_known_status_bit_decodes_to_its_description() {
    let mut all = 0i64;
    for d in DESCRIPTIONS {
        all |= 1 << d.ksc_bit;
        let rec = HostRecord {
            hostname: "h".into(),
            display_name: "h".into(),
            status: ComputerStatus::Warning,
            mask: 1 << d.ksc_bit,
            group_id: None,
            last_visible: None,
        };
        let (status, unknown) = host_status(&rec, None, &Default::default());
        assert_eq!(unknown, 0);
        assert_eq!(status.active.len(), 1);
        assert_eq!(status.active[0].description.code(), d.code);
        assert_eq!(status.active[0].description.info().unwrap().text, d.text);
        assert_eq!(status.active[0].level, d.default_level, "{}", d.code);
    }
    assert_eq!(all, 0xF_FFFF);
    // The same through the wire parser, with every bit and two unknown ones at once.
    let rec = Value::from_json(&json!({"KLHST_WKS_HOSTNAME": "g", "KLHST_WKS_STATUS_ID": 1,
        "KLHST_WKS_STATUS_MASK": {"type": "long", "value": all | (1 << 20) | (1 << 40)}}))
    .unwrap();
    let host = ksc_adapter::hosts::parse_host(rec.as_params().unwrap()).unwrap();
    assert_eq!(host.display_name, "g");
    let (status, unknown) = host_status(&host, None, &Default::default());
    assert_eq!(unknown, 2);
    let codes: Vec<String> = status.active.iter().map(|a| a.description.code()).collect();
    let mut expected: Vec<String> = DESCRIPTIONS.iter().map(|d| d.code.to_owned()).collect();
    expected.push("unknown:20".into());
    expected.push("unknown:40".into());
    assert_eq!(codes, expected);
    assert_eq!(status.active[21].description, StatusDescription::Unknown("40".into()));
    // A 32-bit int with bit 31 set arrives negative.
    let rec = Value::from_json(&json!({"KLHST_WKS_HOSTNAME": "g", "KLHST_WKS_STATUS_ID": 2,
        "KLHST_WKS_STATUS_MASK": i64::from(i32::MIN)}))
    .unwrap();
    assert_eq!(ksc_adapter::hosts::parse_host(rec.as_params().unwrap()).unwrap().mask, 1 << 31);
}

#[test]
fn envelope_parsing_of_the_notes_samples() {
    // §8 A: FindHosts and GetItemsChunk.
    let find =
        parse_response("HostGroup.FindHosts", 200, r#"{"strAccessor": "ua1eizhXcYqZUuv64j8yB1", "PxgRetVal": 1}"#)
            .unwrap();
    assert_eq!(find.retval, Some(Value::Int(1)));
    assert_eq!(find.out["strAccessor"], Value::String("ua1eizhXcYqZUuv64j8yB1".into()));
    let chunk = r#"{"pChunk":{"KLCSP_ITERATOR_ARRAY":[{"type":"params","value":{
   "KLHST_INSTANCEID":"025ed284-389b-44c5-a9ef-6e723f7d9466","KLHST_WKS_CPU_ARCH":2,
   "KLHST_WKS_CREATED":{"type":"datetime","value":"2021-02-23T10:14:33Z"},"KLHST_WKS_CTYPE":36871,
   "KLHST_WKS_DN":"EC2AMAZ-U66K3JL","KLHST_WKS_DNSDOMAIN":"eu-west-2.compute.internal","KLHST_WKS_DNSNAME":"ip-172-32-34-237",
   "KLHST_WKS_EDR_STATUS":0,"KLHST_WKS_FQDN":"ip-172-32-34-237.eu-west-2.compute.internal","KLHST_WKS_GROUPID":0,
   "KLHST_WKS_HOSTNAME":"4328e16g-bf83-47c3-8d0b-0fdf79f9d673",
   "KLHST_WKS_LAST_VISIBLE":{"type":"datetime","value":"2021-03-19T16:18:53Z"},"KLHST_WKS_NAG_VERSION":"12.2.0.4376",
   "KLHST_WKS_OS_NAME":"Microsoft Windows Server 2016","KLHST_WKS_RBT_REQUIRED":false,
   "KLHST_WKS_RTP_AV_BASES_TIME":{"type":"datetime","value":"2021-03-19T12:30:00Z"},"KLHST_WKS_RTP_AV_VERSION":"11.5.0.590",
   "KLHST_WKS_STATUS":29}}]},"PxgRetVal":1}"#;
    let reply = parse_response("ChunkAccessor.GetItemsChunk", 200, chunk).unwrap();
    let items = reply.out["pChunk"].as_params().unwrap()["KLCSP_ITERATOR_ARRAY"].as_array().unwrap();
    let h = items[0].as_params().unwrap();
    assert_eq!(h["KLHST_WKS_DN"].as_str(), Some("EC2AMAZ-U66K3JL"));
    assert_eq!(h["KLHST_WKS_STATUS"].as_i64(), Some(29));
    assert_eq!(h["KLHST_WKS_RBT_REQUIRED"].as_bool(), Some(false));
    assert_eq!(h["KLHST_WKS_LAST_VISIBLE"].as_datetime().unwrap().to_rfc3339(), "2021-03-19T16:18:53+00:00");
    // No status id in this sample: as a snapshot record it is malformed, and says why.
    assert!(ksc_adapter::hosts::parse_host(h).unwrap_err().contains("KLHST_WKS_STATUS_ID"));

    // §8 C: nested containers with datetimes.
    let products = r#"{"PxgRetVal":{"1103":{"type":"params","value":{"1.0.0.0":{"type":"params","value":{"BaseRecords":0,"LastUpdateTime":{"type":"datetime","value":"2019-10-26T23:17:09Z"}}}}},"kesl":{"type":"params","value":{"10.1.1.0":{"type":"params","value":{"BaseDate":{"type":"datetime","value":"2020-05-07T23:18:00Z"},"BaseInstallDate":{"type":"datetime","value":"2020-05-08T08:59:53Z"},"BaseRecords":14791566}}}}}}"#;
    let reply = parse_response("HostGroup.GetHostProducts", 200, products).unwrap();
    let kesl = reply.retval.as_ref().unwrap().as_params().unwrap()["kesl"].as_params().unwrap();
    let v = kesl["10.1.1.0"].as_params().unwrap();
    assert_eq!(v["BaseRecords"].as_i64(), Some(14_791_566));
    assert_eq!(v["BaseDate"].as_datetime().unwrap().to_rfc3339(), "2020-05-07T23:18:00+00:00");
    let p1103 = reply.retval.as_ref().unwrap().as_params().unwrap()["1103"].as_params().unwrap();
    assert_eq!(p1103["1.0.0.0"].as_params().unwrap()["BaseRecords"], Value::Int(0));

    // §3 GetVServerInfo sample.
    let info = r#"{"PxgRetVal":{"KLVSRV_CREATED":{"type":"datetime","value":"2020-05-03T00:59:09Z"},"KLVSRV_DN":"vservx","KLVSRV_ENABLED":true,"KLVSRV_GROUPS":167,"KLVSRV_GRP":0,"KLVSRV_HST_UID":"VSRVa80a675f-40d1-4f50-aec8-ff79bd8793d4","KLVSRV_ID":1,"KLVSRV_LIC_ENABLED":true,"KLVSRV_SUPER":166,"KLVSRV_UID":"VSRVa80a675f-40d1-4f50-aec8-ff79bd8793d4","KLVSRV_UNASSIGNED":170}}"#;
    let reply = parse_response("VServers.GetVServerInfo", 200, info).unwrap();
    let p = reply.retval.unwrap();
    assert_eq!(p.as_params().unwrap()["KLVSRV_GROUPS"].as_i64(), Some(167));

    // PxgError is read whatever the status, 200 included.
    for status in [200, 500] {
        let err = parse_response(
            "X.Y",
            status,
            r#"{"PxgError":{"code":-1,"module":"KLPRSS","message":"Object not found","subcode":3,"locdata":{}}}"#,
        )
        .unwrap_err();
        let pxg = err.pxg().unwrap();
        assert_eq!((pxg.code, pxg.module.as_str(), pxg.subcode), (-1, "KLPRSS", Some(3)));
        assert_eq!(err.status(), Some(status));
        assert_eq!(err.class(), ErrorClass::Api);
    }
    // Non-JSON error bodies keep the status and the text.
    let err = parse_response("X.Y", 502, "Bad Gateway").unwrap_err();
    assert!(matches!(&err, KscError::Http { status: 502, body, .. } if body == "Bad Gateway"));
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(parse_response("X.Y", 404, "").unwrap_err().class(), ErrorClass::NotFound);
    assert_eq!(parse_response("X.Y", 200, "[1]").unwrap_err().class(), ErrorClass::Malformed);
    assert_eq!(parse_response("X.Y", 200, "nope").unwrap_err().class(), ErrorClass::Malformed);
    // A void method answers an empty object.
    assert_eq!(parse_response("X.Y", 200, "{}").unwrap().retval, None);
}

#[test]
fn tenant_ids_and_cursor_round_trip() {
    let t = tenant_id("hq", 12);
    assert_eq!(t, TenantId::new("ksc:hq/vs:12"));
    assert_eq!(ksc_adapter::parse_tenant_id(&t), Some(("hq", 12)));
    let c = EventCursor::parse(None).unwrap();
    assert_eq!(c, EventCursor::Start);
    assert_eq!(EventCursor::parse(Some(&c.to_cursor())).unwrap(), c);
    assert_eq!(EventCursor::parse(Some(&Cursor(String::new()))).unwrap(), c);
    // 64-bit ids survive the round trip.
    let big = EventCursor::Mark((1 << 40) + 3);
    assert_eq!(big.to_cursor().0, "dbid:1099511627779");
    assert_eq!(EventCursor::parse(Some(&big.to_cursor())).unwrap(), big);
    for bad in ["dbid:", "dbid:x", "12345", "{\"v\":"] {
        assert!(EventCursor::parse(Some(&Cursor(bad.into()))).is_err(), "{bad}");
    }
}
