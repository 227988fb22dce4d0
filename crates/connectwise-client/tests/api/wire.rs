//! The wire against wiremock: headers, discovery, paging, throttling, ambiguous creates, the
//! false 200.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use connectwise_client::{
    ConnectWiseClient, ConnectWiseSink, Credentials, Error, ErrorClass, ListQuery, PagingMode, RetryPolicy, SinkOptions,
};
use serde_json::{Value, json};
use ticketing_core::model::PsaId;
use ticketing_core::ports::{PortErrorKind, TicketSink, TicketUpdate};
use ticketing_core::ticket::TicketRef;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ROOT: &str = "/v4_6_release/apis/3.0";
const SECRET: &str = "priv-7c6b5a";

fn creds() -> Credentials {
    Credentials::new("acme", "pub", SECRET).client_id("client-guid")
}

fn client(server: &MockServer) -> ConnectWiseClient {
    builder(server).build().unwrap()
}

fn builder(server: &MockServer) -> connectwise_client::ClientBuilder {
    ConnectWiseClient::builder(creds())
        .base_url(server.uri())
        .retry(RetryPolicy::fast())
        .timeout(Duration::from_secs(5))
}

fn p(rest: &str) -> String {
    format!("{ROOT}/{rest}")
}

#[tokio::test]
async fn every_call_carries_basic_auth_client_id_and_the_pinned_version() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(p("service/boards")))
        .and(header("Authorization", "Basic YWNtZStwdWI6cHJpdi03YzZiNWE="))
        .and(header("clientId", "client-guid"))
        .and(header("Accept", "application/vnd.connectwise.com+json; version=2025.1"))
        .and(header("pagination-type", "forward-only"))
        .and(query_param("pageSize", "500"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id":1,"name":"Alerts","inactiveFlag":false}])))
        .expect(1)
        .mount(&server)
        .await;
    let boards = client(&server).boards().await.unwrap();
    assert_eq!(boards[0].name, "Alerts");
}

#[tokio::test]
async fn discovery_reads_the_codebase_from_companyinfo_once() {
    let server = MockServer::start().await;
    let host = server.address().to_string();
    Mock::given(method("GET"))
        .and(path("/login/companyinfo/acme"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"CompanyName":"Acme","Codebase":"v2025_1/",
            "VersionCode":"v2025.1","CompanyID":"acme","IsCloud":"False","SiteUrl": host})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2025_1/apis/3.0/service/priorities"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id":1,"name":"High"}])))
        .expect(2)
        .mount(&server)
        .await;
    let c = ConnectWiseClient::builder(creds()).site(server.uri()).retry(RetryPolicy::fast()).build().unwrap();
    assert_eq!(c.priorities().await.unwrap().len(), 1);
    assert_eq!(c.priorities().await.unwrap().len(), 1);
    assert_eq!(c.root().await.unwrap().path(), "/v2025_1/apis/3.0/");
    // the lookup carries no credentials
    let reqs = server.received_requests().await.unwrap();
    assert!(reqs[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn numbered_paging_follows_the_link_header() {
    let server = MockServer::start().await;
    let next = format!("<{}{}?pageSize=2&page=2>; rel=\"next\"", server.uri(), p("service/priorities"));
    Mock::given(method("GET"))
        .and(path(p("service/priorities")))
        .and(query_param("page", "1"))
        .respond_with(
            ResponseTemplate::new(200).insert_header("Link", next.as_str()).set_body_json(json!([{"id":1},{"id":2}])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("service/priorities")))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id":3}])))
        .mount(&server)
        .await;
    let c = builder(&server).paging(PagingMode::Numbered).page_size(2).build().unwrap();
    let ids: Vec<i64> = c.priorities().await.unwrap().iter().map(|x| x.id).collect();
    assert_eq!(ids, [1, 2, 3]);
}

#[tokio::test]
async fn forward_only_without_link_continues_after_the_largest_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(p("service/sources")))
        .and(query_param_is_missing("pageId"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id":4},{"id":9}])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("service/sources")))
        .and(query_param("pageId", "9"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id":12}])))
        .mount(&server)
        .await;
    let c = builder(&server).page_size(2).build().unwrap();
    let ids: Vec<i64> = c.sources().await.unwrap().iter().map(|x| x.id).collect();
    assert_eq!(ids, [4, 9, 12]);
}

#[tokio::test]
async fn a_link_to_another_host_gets_no_credentials() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(p("service/sources")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Link", "<https://evil.example/steal?page=2>; rel=\"next\"")
                .set_body_json(json!([{"id":1}])),
        )
        .mount(&server)
        .await;
    let err = client(&server).sources().await.unwrap_err();
    assert!(matches!(err, Error::HostNotAllowed { .. }), "{err:?}");
}

#[tokio::test]
async fn throttling_waits_out_retry_after_and_5xx_backs_off() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(p("service/priorities")))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1").set_body_json(
            json!({"error":"ConnectWiseAPI","message":"Too many requests. Please try again in 1 seconds."}),
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("service/priorities")))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("service/priorities")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id":1,"name":"High"}])))
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    assert_eq!(client(&server).priorities().await.unwrap().len(), 1);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After waited out");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);

    // too long a wait goes back to the caller, classified, with the wait
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "30"))
        .mount(&server)
        .await;
    let err = client(&server).priorities().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn an_ambiguous_create_is_looked_up_by_external_x_ref_before_sending_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(p("service/tickets")))
        .respond_with(ResponseTemplate::new(504))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("service/tickets")))
        .and(query_param("conditions", r#"externalXRef = "kmsp-x""#))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id":77,"externalXRef":"kmsp-x"}])))
        .expect(1)
        .mount(&server)
        .await;
    let t = connectwise_client::models::Ticket {
        summary: Some("s".into()),
        external_x_ref: Some("kmsp-x".into()),
        ..Default::default()
    };
    let created = client(&server).create_ticket(&t).await.unwrap();
    assert!(created.found_existing);
    assert_eq!(created.ticket.id, Some(77));
}

#[tokio::test]
async fn a_non_idempotent_note_is_not_repeated_after_an_unknown_outcome() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(p("service/tickets/5/notes")))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).add_ticket_note(5, &Default::default()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient);
}

fn board_catalog_mocks() -> Vec<Mock> {
    let ok = |v: Value| ResponseTemplate::new(200).set_body_json(v);
    vec![
        Mock::given(method("GET")).and(path(p("service/boards"))).respond_with(ok(json!([{"id":1,"name":"Alerts"}]))),
        Mock::given(method("GET")).and(path(p("service/boards/1/statuses"))).respond_with(ok(json!([
            {"id":10,"name":"New","defaultFlag":true},{"id":12,"name":"Completed","closedStatus":true}]))),
        Mock::given(method("GET")).and(path(p("service/boards/1/types"))).respond_with(ok(json!([]))),
        Mock::given(method("GET")).and(path(p("service/boards/1/subtypes"))).respond_with(ok(json!([]))),
        Mock::given(method("GET")).and(path(p("service/boards/1/items"))).respond_with(ok(json!([]))),
        Mock::given(method("GET")).and(path(p("service/priorities"))).respond_with(ok(json!([{"id":1,"name":"High"}]))),
        Mock::given(method("GET")).and(path(p("service/sources"))).respond_with(ResponseTemplate::new(403)),
    ]
}

#[tokio::test]
async fn a_false_200_on_close_is_not_success() {
    let server = MockServer::start().await;
    for m in board_catalog_mocks() {
        m.mount(&server).await;
    }
    let open = json!({"id":5,"board":{"id":1},"status":{"id":10,"name":"New"},"closedFlag":false});
    Mock::given(method("GET"))
        .and(path(p("service/tickets/5")))
        .respond_with(ResponseTemplate::new(200).set_body_json(open.clone()))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(p("service/tickets/5")))
        .and(wiremock::matchers::body_json(json!([{"op":"replace","path":"status","value":{"id":12}}])))
        .respond_with(ResponseTemplate::new(200).set_body_json(open))
        .expect(1)
        .mount(&server)
        .await;
    let sink = ConnectWiseSink::new(client(&server), SinkOptions::default());
    let err = sink.close_ticket(&TicketRef { id: PsaId(5), number: None }, PsaId(12)).await.unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Other, "{err}");
    assert!(err.message.contains("without applying it"), "{err}");
    assert!(!err.message.contains(SECRET));
    // sources refused: the catalog still builds, without sources
    let catalog = sink.catalog().await.unwrap();
    assert!(catalog.sources.is_empty());
    assert_eq!(catalog.statuses.len(), 2);
}

#[tokio::test]
async fn update_patches_status_priority_and_required_date_in_one_json_patch() {
    let server = MockServer::start().await;
    for m in board_catalog_mocks() {
        m.mount(&server).await;
    }
    let closed = json!({"id":5,"board":{"id":1},"status":{"id":12,"name":"Completed"},"priority":{"id":3},
        "requiredDate":"2030-01-15T17:00:00Z","closedFlag":true,"closedDate":"2030-01-15T18:00:00Z"});
    Mock::given(method("GET"))
        .and(path(p("service/tickets/5")))
        .respond_with(ResponseTemplate::new(200).set_body_json(closed))
        .expect(1)
        .mount(&server)
        .await;
    let answer = json!({"id":5,"board":{"id":1},"status":{"id":10,"name":"New"},"priority":{"id":1},
        "requiredDate":"2030-01-15T21:00:00Z","closedFlag":false,"closedDate":null});
    Mock::given(method("PATCH"))
        .and(path(p("service/tickets/5")))
        .and(wiremock::matchers::body_json(json!([
            {"op":"replace","path":"status","value":{"id":10}},
            {"op":"replace","path":"priority","value":{"id":1}},
            {"op":"replace","path":"requiredDate","value":"2030-01-15T21:00:00Z"}])))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(&server)
        .await;
    let sink = ConnectWiseSink::new(client(&server), SinkOptions::default());
    let u = TicketUpdate {
        status: Some(PsaId(10)),
        priority: Some(PsaId(1)),
        due: Some(Utc.with_ymd_and_hms(2030, 1, 15, 21, 0, 0).unwrap()),
    };
    sink.update_ticket(&TicketRef { id: PsaId(5), number: None }, &u).await.unwrap();
}

#[tokio::test]
async fn update_sends_only_what_differs_and_nothing_when_nothing_does() {
    let server = MockServer::start().await;
    let current = json!({"id":5,"board":{"id":1},"status":{"id":10},"priority":{"id":1},
        "requiredDate":"2030-01-15T21:00:00Z","closedFlag":false});
    Mock::given(method("GET"))
        .and(path(p("service/tickets/5")))
        .respond_with(ResponseTemplate::new(200).set_body_json(current))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(p("service/tickets/5")))
        .and(wiremock::matchers::body_json(json!([{"op":"replace","path":"priority","value":{"id":2}}])))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id":5,"priority":{"id":2}})))
        .expect(1)
        .mount(&server)
        .await;
    let sink = ConnectWiseSink::new(client(&server), SinkOptions::default());
    let t = TicketRef { id: PsaId(5), number: None };
    let due = Some(Utc.with_ymd_and_hms(2030, 1, 15, 21, 0, 0).unwrap());
    // already so: no PATCH (and the status needs no catalog)
    sink.update_ticket(&t, &TicketUpdate { status: None, priority: Some(PsaId(1)), due }).await.unwrap();
    sink.update_ticket(&t, &TicketUpdate { status: None, priority: Some(PsaId(2)), due }).await.unwrap();
    sink.update_ticket(&t, &TicketUpdate::default()).await.unwrap();
}

#[tokio::test]
async fn update_of_a_missing_ticket_is_not_found_and_a_false_200_is_not_success() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(p("service/tickets/404")))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let open = json!({"id":5,"board":{"id":1},"status":{"id":10},"priority":{"id":3},"closedFlag":false});
    Mock::given(method("GET"))
        .and(path(p("service/tickets/5")))
        .respond_with(ResponseTemplate::new(200).set_body_json(open.clone()))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(p("service/tickets/5")))
        .respond_with(ResponseTemplate::new(200).set_body_json(open))
        .expect(1)
        .mount(&server)
        .await;
    let sink = ConnectWiseSink::new(client(&server), SinkOptions::default());
    let u = TicketUpdate { priority: Some(PsaId(1)), ..TicketUpdate::default() };
    let err = sink.update_ticket(&TicketRef { id: PsaId(404), number: None }, &u).await.unwrap_err();
    assert_eq!(err.kind, PortErrorKind::NotFound, "{err}");
    let err = sink.update_ticket(&TicketRef { id: PsaId(5), number: None }, &u).await.unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Other, "{err}");
    assert!(err.message.contains("without applying it") && err.message.contains("priority"), "{err}");
}

#[tokio::test]
async fn long_conditions_go_through_search() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(p("service/tickets/search")))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id":1,"closedFlag":true}])))
        .expect(1)
        .mount(&server)
        .await;
    let c = builder(&server).max_condition_len(10).build().unwrap();
    let rows: Vec<connectwise_client::models::Ticket> = c
        .list(
            "service/tickets",
            &ListQuery::matching(connectwise_client::conditions::Condition::is_in("id", 1..=50i64)),
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let body: Value = serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert!(body["conditions"].as_str().unwrap().starts_with("id in (1,2,"));
}
