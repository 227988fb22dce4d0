//! Client calls: zone discovery, headers, creates, retries.

use std::time::{Duration, Instant};

use autotask_client::models::Ticket;
use autotask_client::{AutotaskClient, Error, ErrorClass, Filter, Query, RetryPolicy};
use serde_json::json;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{CODE, SECRET, USER, api, builder_for, client, credentials};

#[tokio::test]
async fn zone_discovery_without_credentials_then_cached_per_user() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/atservicesrest/v1.0/zoneInformation"))
        .and(query_param("user", USER))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"zoneName":"Mock Zone",
            "url":format!("{}/ATServicesRest/", server.uri()),"webUrl":format!("{}/", server.uri()),"ci":123456})))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", "Tickets/1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"item":{"id":1,"status":1}})))
        .expect(2)
        .mount(&server)
        .await;
    let c = AutotaskClient::builder(credentials())
        .discovery_url(format!("{}/atservicesrest", server.uri()))
        .allow_host("127.0.0.1")
        .threshold_refresh(None)
        .build()
        .unwrap();
    assert_eq!(c.get_ticket(1).await.unwrap().unwrap().id, Some(1));
    // a second client of the same user handed the first one's cache reuses it
    let c2 = AutotaskClient::builder(credentials())
        .discovery_url(format!("{}/atservicesrest", server.uri()))
        .allow_host("127.0.0.1")
        .threshold_refresh(None)
        .zone_cache(c.zone_cache())
        .build()
        .unwrap();
    assert_eq!(c2.root().await.unwrap().as_str(), format!("{}/ATServicesRest", server.uri()));
    c2.get_ticket(1).await.unwrap();
    let reqs = server.received_requests().await.unwrap();
    let zone = reqs.iter().find(|r| r.url.path().ends_with("zoneInformation")).unwrap();
    assert_eq!(zone.url.query(), Some("user=api%40sim.local"));
    for h in ["secret", "apiintegrationcode", "username"] {
        assert!(!zone.headers.contains_key(h), "zone lookup must not carry {h}");
    }
}

#[tokio::test]
async fn zone_answer_on_foreign_host_gets_no_credentials() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/atservicesrest/v1.0/zoneInformation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"zoneName":"Evil",
            "url":"https://evil.example.com/ATServicesRest/"})))
        .mount(&server)
        .await;
    let c = AutotaskClient::builder(autotask_client::Credentials::new("evil-zone@sim.local", SECRET, CODE))
        .discovery_url(format!("{}/atservicesrest", server.uri()))
        .threshold_refresh(None)
        .build()
        .unwrap();
    let err = c.get_ticket(1).await.unwrap_err();
    assert!(matches!(err, Error::HostNotAllowed { .. }), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "only the zone lookup went out");
}

#[tokio::test]
async fn unknown_zone_user_is_classified() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/atservicesrest/v1.0/zoneInformation"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(json!({"errors":["Zone information could not be determined"]})),
        )
        .mount(&server)
        .await;
    let c = AutotaskClient::builder(autotask_client::Credentials::new("nobody@sim.local", SECRET, CODE))
        .discovery_url(format!("{}/atservicesrest", server.uri()))
        .threshold_refresh(None)
        .build()
        .unwrap();
    let err = c.get_ticket(1).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::ZoneNotFound);
    assert_eq!(err.messages(), ["Zone information could not be determined"]);
}

#[tokio::test]
async fn impersonation_header_is_sent() {
    let server = MockServer::start().await;
    api("GET", "Tickets/5")
        .and(wiremock::matchers::header("ImpersonationResourceId", "29682885"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"item":{"id":5}})))
        .expect(1)
        .mount(&server)
        .await;
    let c = AutotaskClient::builder(credentials().impersonate(29682885))
        .base_url(server.uri())
        .threshold_refresh(None)
        .build()
        .unwrap();
    assert!(c.get_ticket(5).await.unwrap().is_some());
}

#[tokio::test]
async fn count_update_and_threshold_calls() {
    let server = MockServer::start().await;
    api("POST", "Tickets/query/count")
        .and(body_json(json!({"filter":[{"op":"eq","field":"companyID","value":29683616},{"op":"noteq","field":"status","value":5}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"queryCount":1})))
        .expect(1)
        .mount(&server)
        .await;
    api("PATCH", "Tickets")
        .and(body_json(json!({"id":128926,"status":5,"resolution":"Backup succeeded on retry."})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"itemId":128926})))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", "ThresholdInformation")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"externalRequestThreshold":10000,
            "requestThresholdTimeframe":60,"currentTimeframeRequestCount":124})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let q = Query::new().filter(Filter::eq("companyID", 29683616)).filter(Filter::noteq("status", 5));
    assert_eq!(c.count::<Ticket>(q).await.unwrap(), 1);
    let patch = Ticket {
        id: Some(128926),
        status: Some(5),
        resolution: Some("Backup succeeded on retry.".into()),
        ..Ticket::default()
    };
    assert_eq!(c.update_ticket(&patch).await.unwrap(), 128926);
    let t = c.threshold_information().await.unwrap();
    assert_eq!(t.current_timeframe_request_count, Some(124));
    let usage = c.budget_usage();
    // the server's count is reported beside ours; it never replaces ours or the configured limit
    assert_eq!((usage.used, usage.limit, usage.server_used, usage.server_limit), (3, 10000, Some(124), Some(10000)));
}

#[tokio::test]
async fn retries_429_without_retry_after_using_backoff() {
    let server = MockServer::start().await;
    api("GET", "Tickets/1")
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"errors":["Request threshold exceeded."]})))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    api("GET", "Tickets/1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"item":{"id":1}})))
        .expect(1)
        .mount(&server)
        .await;
    assert!(client(&server).get_ticket(1).await.unwrap().is_some());
}

#[tokio::test]
async fn retries_429_honouring_retry_after_seconds() {
    let server = MockServer::start().await;
    api("GET", "Tickets/1")
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    api("GET", "Tickets/1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"item":{"id":1}})))
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    assert!(client(&server).get_ticket(1).await.unwrap().is_some());
    // the fast policy's backoff is at most 10 ms: waiting a second proves Retry-After was used
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
}

#[tokio::test]
async fn thread_limit_text_on_500_is_retried() {
    let server = MockServer::start().await;
    api("GET", "Tickets/1")
        .respond_with(
            ResponseTemplate::new(500).set_body_json(
                json!({"errors":["Itgenatr005: The API thread threshold of 3 threads has been exceeded."]}),
            ),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    api("GET", "Tickets/1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"item":{"id":1}})))
        .mount(&server)
        .await;
    assert!(client(&server).get_ticket(1).await.unwrap().is_some());
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn long_retry_after_is_returned_not_waited() {
    let server = MockServer::start().await;
    api("GET", "Tickets/1")
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).get_ticket(1).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    let port: ticketing_core::ports::PortError = err.into();
    assert_eq!(port.kind, ticketing_core::ports::PortErrorKind::RateLimited);
    assert_eq!(port.retry_after, Some(Duration::from_secs(3600)));
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let server = MockServer::start().await;
    api("GET", "Tickets/1").respond_with(ResponseTemplate::new(503)).expect(4).mount(&server).await;
    let err = client(&server).get_ticket(1).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(err.status(), Some(503));
}

fn new_ticket() -> Ticket {
    Ticket {
        company_id: Some(29683616),
        title: Some("Backup failed".into()),
        status: Some(1),
        priority: Some(2),
        queue_id: Some(29683482),
        external_id: Some("kmsp-abc-1".into()),
        ..Ticket::default()
    }
}

fn found_page() -> serde_json::Value {
    json!({"items":[{"id":128926,"ticketNumber":"T20300115.0001","externalID":"kmsp-abc-1","status":1}],
        "pageDetails":{"count":1,"requestCount":1,"prevPageUrl":null,"nextPageUrl":null}})
}

#[tokio::test]
async fn timed_out_create_is_found_by_external_id_and_not_created_twice() {
    let server = MockServer::start().await;
    api("POST", "Tickets")
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"itemId":128926})).set_delay(Duration::from_secs(2)),
        )
        .expect(1)
        .mount(&server)
        .await;
    api("POST", "Tickets/query")
        .and(body_json(json!({"filter":[{"op":"eq","field":"externalID","value":"kmsp-abc-1"}],"MaxRecords":1})))
        .respond_with(ResponseTemplate::new(200).set_body_json(found_page()))
        .expect(1)
        .mount(&server)
        .await;
    let (logs, _guard) = crate::common::capture_warnings();
    let c = builder_for(&server.uri()).timeout(Duration::from_millis(300)).build().unwrap();
    let created = c.create_ticket(&new_ticket()).await.unwrap();
    assert_eq!(created.id, 128926);
    // the warning names the record it is about
    let text = logs.text();
    let line = text.lines().find(|l| l.contains("ambiguous ticket create")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("idempotency_key=kmsp-abc-1"), "{line}");
    assert!(created.found_existing);
    assert_eq!(created.ticket_number.as_deref(), Some("T20300115.0001"));
}

#[tokio::test]
async fn ambiguous_create_not_found_is_sent_again() {
    let server = MockServer::start().await;
    api("POST", "Tickets").respond_with(ResponseTemplate::new(503)).up_to_n_times(1).expect(1).mount(&server).await;
    api("POST", "Tickets")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"itemId":42})))
        .expect(1)
        .mount(&server)
        .await;
    api("POST", "Tickets/query")
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"items":[],"pageDetails":{"count":0,"requestCount":1,
            "prevPageUrl":null,"nextPageUrl":null}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let created = client(&server).create_ticket(&new_ticket()).await.unwrap();
    assert_eq!((created.id, created.found_existing), (42, false));
}

#[tokio::test]
async fn create_without_external_id_is_never_retried_after_ambiguous_failure() {
    let server = MockServer::start().await;
    api("POST", "Tickets").respond_with(ResponseTemplate::new(504)).expect(1).mount(&server).await;
    let mut t = new_ticket();
    t.external_id = None;
    let err = client(&server).create_ticket(&t).await.unwrap_err();
    assert_eq!(err.outcome(), autotask_client::Outcome::Unknown);
}

#[tokio::test]
async fn throttled_create_is_retried_without_lookup() {
    let server = MockServer::start().await;
    api("POST", "Tickets").respond_with(ResponseTemplate::new(429)).up_to_n_times(1).expect(1).mount(&server).await;
    api("POST", "Tickets")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"itemId":9})))
        .expect(1)
        .mount(&server)
        .await;
    let created = client(&server).create_ticket(&new_ticket()).await.unwrap();
    assert_eq!(created.id, 9);
    assert_eq!(server.received_requests().await.unwrap().len(), 2, "no lookup: a 429 was not processed");
}

#[tokio::test]
async fn create_validation_error_is_not_retried() {
    let server = MockServer::start().await;
    api("POST", "Tickets")
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"errors":["dueDateTime is required.; on record number [0]."]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).create_ticket(&new_ticket()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Validation);
    assert_eq!(err.status(), Some(500));
    assert_eq!(err.messages(), ["dueDateTime is required.; on record number [0]."]);
    let port: ticketing_core::ports::PortError = err.into();
    assert_eq!(port.kind, ticketing_core::ports::PortErrorKind::Invalid);
}

#[tokio::test]
async fn note_create_goes_to_parent_url() {
    let server = MockServer::start().await;
    api("POST", "Tickets/128926/Notes")
        .and(body_json(json!({"ticketID":128926,"title":"Auto-resolved","description":"Backup succeeded on retry.",
            "noteType":1,"publish":2})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"itemId":30777658})))
        .expect(1)
        .mount(&server)
        .await;
    let note = autotask_client::models::TicketNote {
        title: Some("Auto-resolved".into()),
        description: Some("Backup succeeded on retry.".into()),
        note_type: Some(1),
        publish: Some(2),
        ..Default::default()
    };
    assert_eq!(client(&server).create_ticket_note(128926, &note).await.unwrap(), 30777658);
}

#[tokio::test]
async fn connection_refused_is_transient_and_not_sent() {
    // bind then drop a listener to get a port nobody listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let c = builder_for(&format!("http://127.0.0.1:{port}"))
        .retry(RetryPolicy { max_attempts: 2, ..RetryPolicy::fast() })
        .build()
        .unwrap();
    let err = c.get_ticket(1).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(err.outcome(), autotask_client::Outcome::NotSent);
}

#[tokio::test]
async fn a_401_forgets_the_cached_zone() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/atservicesrest/v1.0/zoneInformation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"zoneName":"Mock Zone",
            "url":format!("{}/ATServicesRest/", server.uri())})))
        .expect(2)
        .mount(&server)
        .await;
    api("GET", "Tickets/1").respond_with(ResponseTemplate::new(401)).up_to_n_times(1).mount(&server).await;
    api("GET", "Tickets/1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"item":{"id":1}})))
        .mount(&server)
        .await;
    let c = AutotaskClient::builder(credentials())
        .discovery_url(format!("{}/atservicesrest", server.uri()))
        .allow_host("127.0.0.1")
        .threshold_refresh(None)
        .build()
        .unwrap();
    assert_eq!(c.get_ticket(1).await.unwrap_err().class(), ErrorClass::Auth);
    assert!(c.get_ticket(1).await.unwrap().is_some());
}

/// Regression (order dependence): the zone cache was process-wide, keyed by discovery URL, and
/// wiremock reuses ports, so a zone learnt by one test leaked into the next. Two clients that
/// do not share a cache each discover, even with the same discovery URL and user.
#[tokio::test]
async fn independent_clients_do_not_share_zone_answers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/atservicesrest/v1.0/zoneInformation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"zoneName":"Mock Zone",
            "url":format!("{}/ATServicesRest/", server.uri())})))
        .expect(2)
        .mount(&server)
        .await;
    for _ in 0..2 {
        let c = AutotaskClient::builder(credentials())
            .discovery_url(format!("{}/atservicesrest", server.uri()))
            .allow_host("127.0.0.1")
            .threshold_refresh(None)
            .build()
            .unwrap();
        assert_eq!(c.root().await.unwrap().as_str(), format!("{}/ATServicesRest", server.uri()));
        // clones share their client's cache
        c.clone().root().await.unwrap();
    }
}

/// `.timeout(Duration)` bounds every request (default 120 s); the daemon wires
/// `autotask.timeout_secs` to it.
#[tokio::test]
async fn request_timeout_is_configurable() {
    let server = MockServer::start().await;
    api("GET", "Tickets/1")
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"item":{"id":1}})).set_delay(Duration::from_millis(800)),
        )
        .mount(&server)
        .await;
    let default = AutotaskClient::builder(credentials()).base_url(server.uri()).build().unwrap();
    assert_eq!(default.config().timeout, Duration::from_secs(120));
    let c = builder_for(&server.uri())
        .timeout(Duration::from_millis(150))
        .retry(RetryPolicy { max_attempts: 1, ..RetryPolicy::fast() })
        .build()
        .unwrap();
    assert_eq!(c.config().timeout, Duration::from_millis(150));
    let started = Instant::now();
    let err = c.get_ticket(1).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(700), "{:?}", started.elapsed());
    assert_eq!(ticketing_core::ports::PortError::from(&err).kind, ticketing_core::ports::PortErrorKind::Transient);
}

#[test]
fn default_discovery_is_the_documented_zone_information_call() {
    let c = AutotaskClient::builder(credentials()).build().unwrap();
    let autotask_client::ZoneSource::Discover(root) = &c.config().zone else { panic!("{:?}", c.config().zone) };
    let lookup = autotask_client::zone::zone_lookup_url(root, USER).unwrap();
    assert_eq!(
        lookup.as_str(),
        "https://webservices.autotask.net/atservicesrest/v1.0/zoneInformation?user=api%40sim.local"
    );
    // a discovery URL given with a trailing slash or version segment means the same root
    for raw in ["https://example.test/atservicesrest/", "https://example.test/atservicesrest/v1.0"] {
        let c = AutotaskClient::builder(credentials()).discovery_url(raw).build().unwrap();
        let autotask_client::ZoneSource::Discover(root) = &c.config().zone else { panic!() };
        assert_eq!(root.as_str(), "https://example.test/atservicesrest", "{raw}");
    }
}
