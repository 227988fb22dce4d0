//! The TicketSink: exact calls and bodies.

use autotask_client::{AutotaskSink, SinkOptions};
use chrono::{TimeZone, Utc};
use serde_json::json;
use ticketing_core::model::PsaId;
use ticketing_core::ports::{PortErrorKind, TicketSink, TicketUpdate};
use ticketing_core::ticket::{IdempotencyKey, TicketDraft, TicketNote, TicketRef, Urgency};
use wiremock::matchers::body_json;
use wiremock::{MockServer, ResponseTemplate};

use crate::common::{api, client};

fn draft() -> TicketDraft {
    TicketDraft {
        account: PsaId(29683616),
        title: "Backup failed on PC-1".into(),
        description: "Job 42 failed".into(),
        status: PsaId(1),
        priority: PsaId(2),
        queue: PsaId(29683482),
        due: Utc.with_ymd_and_hms(2030, 1, 15, 17, 0, 0).unwrap(),
        due_hours: None,
        expires_at: None,
        row: None,
        source: Some(PsaId(8)),
        work_type: Some(PsaId(29682801)),
        issue_type: Some(PsaId(10)),
        sub_issue_type: Some(PsaId(101)),
        idempotency_key: IdempotencyKey("rmm-alert-123".into()),
        device_name: Some("PC-1".into()),
        urgency: Urgency::Normal,
    }
}

fn sink(server: &MockServer, options: SinkOptions) -> AutotaskSink {
    AutotaskSink::new(client(server), options)
}

#[tokio::test]
async fn create_ticket_posts_exact_body_and_makes_one_call() {
    let server = MockServer::start().await;
    api("POST", "Tickets")
        .and(body_json(json!({
            "companyID":29683616,"title":"Backup failed on PC-1","description":"Job 42 failed","status":1,"priority":2,
            "queueID":29683482,"dueDateTime":"2030-01-15T17:00:00Z","source":8,"issueType":10,"subIssueType":101,
            "billingCodeID":29682801,"externalID":"rmm-alert-123"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"itemId":128926})))
        .expect(1)
        .mount(&server)
        .await;
    let r = sink(&server, SinkOptions::default()).create_ticket(&draft()).await.unwrap();
    assert_eq!(r, TicketRef { id: PsaId(128926), number: None });
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "one create call, no extra GET");
}

#[tokio::test]
async fn create_omits_none_fields() {
    let server = MockServer::start().await;
    let mut d = draft();
    d.source = None;
    d.work_type = None;
    d.issue_type = None;
    d.sub_issue_type = None;
    api("POST", "Tickets")
        .and(body_json(json!({
            "companyID":29683616,"title":"Backup failed on PC-1","description":"Job 42 failed","status":1,"priority":2,
            "queueID":29683482,"dueDateTime":"2030-01-15T17:00:00Z","externalID":"rmm-alert-123"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"itemId":7})))
        .expect(1)
        .mount(&server)
        .await;
    let r = sink(&server, SinkOptions::default()).create_ticket(&d).await.unwrap();
    assert_eq!(r.id, PsaId(7));
}

#[tokio::test]
async fn create_links_configuration_item_and_fetches_number_when_enabled() {
    let server = MockServer::start().await;
    api("POST", "ConfigurationItems/query")
        .and(body_json(json!({"filter":[{"op":"eq","field":"companyID","value":29683616},
            {"op":"eq","field":"referenceTitle","value":"PC-1"}],"MaxRecords":1})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items":[{"id":1583,"companyID":29683616,
            "referenceTitle":"PC-1","isActive":true,"userDefinedFields":[]}],"pageDetails":{"count":1,"requestCount":1,
            "prevPageUrl":null,"nextPageUrl":null}})))
        .expect(1)
        .mount(&server)
        .await;
    api("POST", "Tickets")
        .and(wiremock::matchers::body_partial_json(json!({"configurationItemID":1583,"externalID":"rmm-alert-123"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"itemId":128926})))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", "Tickets/128926")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"item":{"id":128926,"ticketNumber":"T20300115.0001","status":1}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let opts = SinkOptions { link_configuration_item: true, fetch_ticket_number: true, ..SinkOptions::default() };
    let r = sink(&server, opts).create_ticket(&draft()).await.unwrap();
    assert_eq!(r, TicketRef { id: PsaId(128926), number: Some("T20300115.0001".into()) });
}

#[tokio::test]
async fn find_ticket_queries_external_id_with_max_records_one() {
    let server = MockServer::start().await;
    api("POST", "Tickets/query")
        .and(body_json(json!({"filter":[{"op":"eq","field":"externalID","value":"rmm-alert-123"}],"MaxRecords":1})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"items":[{"id":128926,"ticketNumber":"T20300115.0001",
            "externalID":"rmm-alert-123","status":1,"userDefinedFields":[]}],
            "pageDetails":{"count":1,"requestCount":1,"prevPageUrl":null,"nextPageUrl":null}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let s = sink(&server, SinkOptions::default());
    let found = s.find_ticket(&IdempotencyKey("rmm-alert-123".into())).await.unwrap();
    assert_eq!(found, Some(TicketRef { id: PsaId(128926), number: Some("T20300115.0001".into()) }));
}

#[tokio::test]
async fn find_ticket_none_when_empty() {
    let server = MockServer::start().await;
    api("POST", "Tickets/query")
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"items":[],"pageDetails":{"count":0,"requestCount":1,
            "prevPageUrl":null,"nextPageUrl":null}})),
        )
        .mount(&server)
        .await;
    let found = sink(&server, SinkOptions::default()).find_ticket(&IdempotencyKey("nope".into())).await.unwrap();
    assert_eq!(found, None);
}

#[tokio::test]
async fn ticket_reads_status_and_handles_both_not_found_shapes() {
    let server = MockServer::start().await;
    api("GET", "Tickets/128926")
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"item":{"id":128926,"ticketNumber":"T20300115.0001",
            "companyID":29683616,"status":5,"someFutureField":{"x":1},"userDefinedFields":[]}})),
        )
        .mount(&server)
        .await;
    api("GET", "Tickets/999999").respond_with(ResponseTemplate::new(404)).mount(&server).await;
    api("GET", "Tickets/999998")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"item":null})))
        .mount(&server)
        .await;
    let s = sink(&server, SinkOptions::default());
    let t = s.ticket(PsaId(128926)).await.unwrap().unwrap();
    assert_eq!(t.status, PsaId(5));
    assert_eq!(t.ticket.number.as_deref(), Some("T20300115.0001"));
    assert_eq!(s.ticket(PsaId(999999)).await.unwrap(), None);
    assert_eq!(s.ticket(PsaId(999998)).await.unwrap(), None);
}

#[tokio::test]
async fn close_ticket_only_patches_the_status() {
    let server = MockServer::start().await;
    api("PATCH", "Tickets")
        .and(body_json(json!({"id":128926,"status":5})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"itemId":128926})))
        .expect(1)
        .mount(&server)
        .await;
    let t = TicketRef { id: PsaId(128926), number: None };
    sink(&server, SinkOptions::default()).close_ticket(&t, PsaId(5)).await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "no note call from close");
}

fn patch_ok(body: serde_json::Value) -> wiremock::Mock {
    api("PATCH", "Tickets")
        .and(body_json(body))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"itemId":128926})))
        .expect(1)
}

#[tokio::test]
async fn update_ticket_patches_only_the_changed_fields() {
    let server = MockServer::start().await;
    patch_ok(json!({"id":128926,"status":1})).mount(&server).await;
    patch_ok(json!({"id":128926,"priority":4,"dueDateTime":"2030-01-15T21:00:00Z"})).mount(&server).await;
    let t = TicketRef { id: PsaId(128926), number: None };
    let s = sink(&server, SinkOptions::default());
    // reopen: the status alone; completedDate is read-only and cleared by Autotask
    s.update_ticket(&t, &TicketUpdate { status: Some(PsaId(1)), ..TicketUpdate::default() }).await.unwrap();
    let escalate = TicketUpdate {
        status: None,
        priority: Some(PsaId(4)),
        due: Some(Utc.with_ymd_and_hms(2030, 1, 15, 21, 0, 0).unwrap()),
    };
    s.update_ticket(&t, &escalate).await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 2, "one PATCH per update, nothing else");
}

#[test]
fn update_to_patch_writes_id_and_only_the_given_fields() {
    let all = TicketUpdate {
        status: Some(PsaId(1)),
        priority: Some(PsaId(4)),
        due: Some(Utc.with_ymd_and_hms(2030, 1, 15, 21, 0, 0).unwrap()),
    };
    let body = serde_json::to_value(autotask_client::sink::update_to_patch(7, &all)).unwrap();
    assert_eq!(body, json!({"id":7,"status":1,"priority":4,"dueDateTime":"2030-01-15T21:00:00Z"}));
    let none = serde_json::to_value(autotask_client::sink::update_to_patch(7, &TicketUpdate::default())).unwrap();
    assert_eq!(none, json!({"id":7}));
}

#[tokio::test]
async fn an_empty_update_sends_nothing() {
    let server = MockServer::start().await;
    let t = TicketRef { id: PsaId(128926), number: None };
    sink(&server, SinkOptions::default()).update_ticket(&t, &TicketUpdate::default()).await.unwrap();
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn update_ticket_is_retried_after_a_5xx_like_a_close() {
    let server = MockServer::start().await;
    api("PATCH", "Tickets").respond_with(ResponseTemplate::new(503)).up_to_n_times(1).expect(1).mount(&server).await;
    patch_ok(json!({"id":128926,"priority":4})).mount(&server).await;
    let t = TicketRef { id: PsaId(128926), number: None };
    let u = TicketUpdate { priority: Some(PsaId(4)), ..TicketUpdate::default() };
    sink(&server, SinkOptions::default()).update_ticket(&t, &u).await.unwrap();
}

#[tokio::test]
async fn update_of_an_unknown_ticket_is_not_found() {
    let server = MockServer::start().await;
    api("PATCH", "Tickets")
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"errors":["Ticket with id 999999 not found."]})))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", "Tickets/999999").respond_with(ResponseTemplate::new(404)).expect(1).mount(&server).await;
    let t = TicketRef { id: PsaId(999999), number: None };
    let u = TicketUpdate { status: Some(PsaId(1)), ..TicketUpdate::default() };
    let err = sink(&server, SinkOptions::default()).update_ticket(&t, &u).await.unwrap_err();
    assert_eq!(err.kind, PortErrorKind::NotFound, "{err}");
    assert!(err.message.contains("Ticket with id 999999 not found."), "{}", err.message);
}

#[tokio::test]
async fn update_refused_for_an_existing_ticket_stays_invalid() {
    let server = MockServer::start().await;
    api("PATCH", "Tickets")
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"errors":["Value does not reference an existing entity for priority . "]})),
        )
        .mount(&server)
        .await;
    api("GET", "Tickets/128926")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"item":{"id":128926,"status":1}})))
        .mount(&server)
        .await;
    let t = TicketRef { id: PsaId(128926), number: None };
    let u = TicketUpdate { priority: Some(PsaId(77)), ..TicketUpdate::default() };
    let err = sink(&server, SinkOptions::default()).update_ticket(&t, &u).await.unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Invalid, "{err}");
}

fn note() -> TicketNote {
    TicketNote { marker: "kmsp-abc-1/close".into(), text: "Backup succeeded on retry.".into() }
}

#[tokio::test]
async fn add_note_posts_text_with_marker_line() {
    let server = MockServer::start().await;
    api("POST", "Tickets/128926/Notes")
        .and(body_json(json!({"ticketID":128926,"title":"Closed automatically",
            "description":"Backup succeeded on retry.\n[kmsp-abc-1/close]","noteType":1,"publish":1})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"itemId":30777658})))
        .expect(1)
        .mount(&server)
        .await;
    let t = TicketRef { id: PsaId(128926), number: None };
    sink(&server, SinkOptions::default()).add_note(&t, &note(), false).await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "no lookup without look_up_first");
}

#[tokio::test]
async fn add_note_is_configurable_and_off_means_no_call() {
    let server = MockServer::start().await;
    api("POST", "Tickets/1/Notes")
        .and(wiremock::matchers::body_partial_json(json!({"noteType":3,"publish":2,"title":"Auto"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"itemId":7})))
        .expect(1)
        .mount(&server)
        .await;
    let t = TicketRef { id: PsaId(1), number: None };
    let opts = SinkOptions { note_type: 3, note_publish: 2, note_title: "Auto".into(), ..SinkOptions::default() };
    sink(&server, opts).add_note(&t, &note(), false).await.unwrap();
    let off = SinkOptions { note_on_close: false, ..SinkOptions::default() };
    sink(&server, off).add_note(&t, &note(), true).await.unwrap();
}

/// The bug: a 429/5xx on the note was swallowed ("ticket closed but its note could not be
/// added"); now it comes back classified so the engine retries it.
#[tokio::test]
async fn add_note_failures_are_returned_classified() {
    let server = MockServer::start().await;
    api("POST", "Tickets/1/Notes")
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    api("POST", "Tickets/2/Notes")
        .respond_with(
            ResponseTemplate::new(500).set_body_json(json!({"errors":["title is required.; on record number [0]."]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    api("POST", "Tickets/3/Notes")
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .expect(1)
        .mount(&server)
        .await;
    let s = sink(&server, SinkOptions::default());
    let e = s.add_note(&TicketRef { id: PsaId(1), number: None }, &note(), false).await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::Transient, "a 503 on a note is not retried blindly: {e:?}");
    let e = s.add_note(&TicketRef { id: PsaId(2), number: None }, &note(), false).await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::Invalid);
    assert!(e.message.contains("title is required."), "{}", e.message);
    let e = s.add_note(&TicketRef { id: PsaId(3), number: None }, &note(), false).await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::RateLimited);
    assert!(e.is_retryable());
}

#[tokio::test]
async fn add_note_looks_up_the_marker_first_when_asked() {
    let server = MockServer::start().await;
    api("POST", "TicketNotes/query")
        .and(body_json(json!({"filter":[{"op":"eq","field":"ticketID","value":1},
            {"op":"contains","field":"description","value":"[kmsp-abc-1/close]"}],
            "IncludeFields":["id","ticketID","description"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items":[{"id":9,"ticketID":1,
            "description":"Backup succeeded on retry.\n[kmsp-abc-1/close]"}],
            "pageDetails":{"count":1,"requestCount":500,"prevPageUrl":null,"nextPageUrl":null}})))
        .expect(1)
        .mount(&server)
        .await;
    api("POST", "Tickets/1/Notes").respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let t = TicketRef { id: PsaId(1), number: None };
    sink(&server, SinkOptions::default()).add_note(&t, &note(), true).await.unwrap();
}

#[test]
fn note_description_keeps_the_marker_within_the_limit() {
    let long = TicketNote { marker: "kmsp-abc-1/close".into(), text: "é".repeat(40_000) };
    let d = autotask_client::sink::note_description(&long);
    assert_eq!(d.chars().count(), autotask_client::sink::NOTE_DESCRIPTION_MAX);
    assert!(d.ends_with("\n[kmsp-abc-1/close]"));
    let empty = TicketNote { marker: "m".into(), text: "  ".into() };
    assert_eq!(autotask_client::sink::note_description(&empty), "[m]");
}

#[tokio::test]
async fn close_failure_maps_to_port_error() {
    let server = MockServer::start().await;
    api("PATCH", "Tickets")
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"errors":["Ticket with id 999999 not found."]})))
        .mount(&server)
        .await;
    let t = TicketRef { id: PsaId(999999), number: None };
    let err = sink(&server, SinkOptions::default()).close_ticket(&t, PsaId(5)).await.unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Invalid);
    assert!(err.message.contains("Ticket with id 999999 not found."), "{}", err.message);
}

#[tokio::test]
async fn accounts_lists_companies_with_active_flag() {
    let server = MockServer::start().await;
    api("POST", "Companies/query")
        .and(body_json(
            json!({"filter":[{"op":"gte","field":"id","value":0}],"IncludeFields":["id","companyName","isActive"]}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items":[
            {"id":0,"companyName":"Mock MSP","isActive":true,"userDefinedFields":[]},
            {"id":29683616,"companyName":"Acme Corp","isActive":true,"userDefinedFields":[]},
            {"id":29683617,"companyName":"Old Co","isActive":false,"userDefinedFields":[]}],
            "pageDetails":{"count":3,"requestCount":500,"prevPageUrl":null,"nextPageUrl":null}})))
        .expect(1)
        .mount(&server)
        .await;
    let accounts = sink(&server, SinkOptions::default()).accounts().await.unwrap();
    assert_eq!(accounts.len(), 3);
    assert_eq!(accounts[1].id, PsaId(29683616));
    assert_eq!(accounts[1].name, "Acme Corp");
    assert!(accounts[1].active);
    assert!(!accounts[2].active);
}

pub(crate) async fn mount_catalog(server: &MockServer, times: u64) {
    let fields: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/autotask-tickets-fields.json")).unwrap();
    api("GET", "Tickets/entityInformation/fields")
        .respond_with(ResponseTemplate::new(200).set_body_json(fields))
        .expect(times)
        .mount(server)
        .await;
    api("POST", "BillingCodes/query")
        .and(body_json(
            json!({"filter":[{"op":"eq","field":"useType","value":1},{"op":"eq","field":"isActive","value":true}]}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items":[
            {"id":29682801,"name":"Remote Support","useType":1,"isActive":true}],
            "pageDetails":{"count":1,"requestCount":500,"prevPageUrl":null,"nextPageUrl":null}})))
        .expect(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn catalog_from_metadata_and_work_types_is_cached() {
    use ticketing_core::catalog::Field;
    let server = MockServer::start().await;
    mount_catalog(&server, 2).await;
    let s = sink(&server, SinkOptions::default());
    let c = s.catalog().await.unwrap();
    assert_eq!(c.resolve(Field::NewStatus, "new"), Some(PsaId(1)));
    assert_eq!(c.resolve(Field::ClosedStatus, "Complete"), Some(PsaId(5)));
    let inactive = c.statuses.iter().find(|v| v.id == PsaId(13)).expect("inactive status kept, flagged");
    assert!(!inactive.active);
    assert_eq!(c.resolve(Field::ClosedStatus, &inactive.label), None);
    assert_eq!(c.resolve(Field::Priority, "Critical"), Some(PsaId(4)));
    assert!(c.queues.iter().any(|q| q.id == PsaId(29683483) && !q.active));
    assert!(c.sources.iter().any(|q| q.id == PsaId(-2)));
    assert_eq!(c.sub_issue_types.iter().find(|v| v.id == PsaId(101)).unwrap().parent, Some(PsaId(10)));
    assert_eq!(c.sub_issue_types_of(PsaId(11)).map(|v| v.id.0).collect::<Vec<_>>(), vec![111, 112]);
    assert_eq!(c.resolve(Field::WorkType, "remote support"), Some(PsaId(29682801)));
    // cached: no new calls
    assert_eq!(s.catalog().await.unwrap(), c);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    // explicit refresh goes back to the server
    s.client().refresh_catalog().await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn catalog_ttl_expiry_refetches() {
    let server = MockServer::start().await;
    mount_catalog(&server, 2).await;
    let c = crate::common::builder_for(&server.uri()).catalog_ttl(std::time::Duration::ZERO).build().unwrap();
    c.catalog().await.unwrap();
    c.catalog().await.unwrap();
}

#[tokio::test]
async fn closed_among_asks_once_per_500_tickets_with_an_in_filter() {
    let server = MockServer::start().await;
    api("POST", "Tickets/query")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items":[{"id":1,"status":5,"userDefinedFields":[]},{"id":2,"status":1,"userDefinedFields":[]}],
            "pageDetails":{"count":2,"requestCount":500,"prevPageUrl":null,"nextPageUrl":null}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let closed =
        sink(&server, SinkOptions::default()).closed_among(&[PsaId(1), PsaId(2), PsaId(3)], PsaId(5)).await.unwrap();
    assert_eq!(closed, vec![PsaId(1), PsaId(3)], "completed, and gone from the PSA");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "one query instead of a GET per ticket");
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    let text = body.to_string();
    assert!(
        text.contains(r#"{"field":"id","op":"in","value":[1,2,3]}"#)
            || text.contains(r#""op":"in","field":"id","value":[1,2,3]"#),
        "{text}"
    );
    assert_eq!(body["IncludeFields"], json!(["id", "status"]));
}

/// A create the PSA refuses is `Invalid` with the PSA's own message (and no secret), so the
/// daemon records it as failed; a 500 whose text is not a validation refusal is `Transient`
/// (the create MAY have happened: it is looked up before anything is sent again).
#[tokio::test]
async fn create_refused_by_the_psa_is_invalid_but_an_unexplained_500_is_transient() {
    let server = MockServer::start().await;
    api("POST", "Tickets")
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"errors":[
            "Reference value on field: companyID of type: Company does not exist or is invalid.",
            "dueDateTime is required.; on record number [0]."]})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let s = sink(&server, SinkOptions::default());
    let e = s.create_ticket(&draft()).await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::Invalid, "{e:?}");
    assert!(e.message.contains("companyID of type: Company does not exist or is invalid."), "{}", e.message);
    assert!(e.message.contains("dueDateTime is required."), "{}", e.message);
    assert!(!e.message.contains(crate::common::SECRET) && !e.message.contains(crate::common::CODE));
    assert!(!e.is_retryable());
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "a refusal is neither retried nor looked up");

    let server = MockServer::start().await;
    api("POST", "Tickets")
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"errors":["An unexpected error has occurred. Please contact support."]})),
        )
        .mount(&server)
        .await;
    api("POST", "Tickets/query")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items":[],
            "pageDetails":{"count":0,"requestCount":1,"prevPageUrl":null,"nextPageUrl":null}})))
        .mount(&server)
        .await;
    let c = crate::common::builder_for(&server.uri())
        .retry(autotask_client::RetryPolicy { max_attempts: 1, ..autotask_client::RetryPolicy::fast() })
        .build()
        .unwrap();
    let e = AutotaskSink::new(c, SinkOptions::default()).create_ticket(&draft()).await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::Transient, "{e:?}");
    assert!(e.is_retryable());
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs[1].url.path(), "/ATServicesRest/V1.0/Tickets/query", "looked up by externalID: it may exist");
}

/// A PSA that echoes a secret back never gets it into a PortError.
#[tokio::test]
async fn secrets_echoed_by_the_server_are_blanked() {
    let server = MockServer::start().await;
    api("PATCH", "Tickets")
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"errors":[format!("secret {} is required.; on record number [0].", crate::common::SECRET)]}),
        ))
        .mount(&server)
        .await;
    let e =
        sink(&server, SinkOptions::default()).close_ticket(&TicketRef { id: PsaId(1), number: None }, PsaId(5)).await;
    let e = e.unwrap_err();
    assert!(!e.message.contains(crate::common::SECRET), "{}", e.message);
    assert!(e.message.contains("***"), "{}", e.message);
}

#[tokio::test]
async fn timed_out_close_and_note_warnings_name_the_ticket() {
    let server = MockServer::start().await;
    api("PATCH", "Tickets")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"itemId":128926}))
                .set_delay(std::time::Duration::from_secs(2)),
        )
        .mount(&server)
        .await;
    api("POST", "Tickets/128926/Notes")
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"itemId":1})).set_delay(std::time::Duration::from_secs(2)),
        )
        .mount(&server)
        .await;
    let (logs, _guard) = crate::common::capture_warnings();
    let c = crate::common::builder_for(&server.uri())
        .timeout(std::time::Duration::from_millis(200))
        .retry(autotask_client::RetryPolicy { max_attempts: 1, ..autotask_client::RetryPolicy::fast() })
        .build()
        .unwrap();
    let s = AutotaskSink::new(c, SinkOptions::default());
    let t = TicketRef { id: PsaId(128926), number: None };
    assert_eq!(s.close_ticket(&t, PsaId(5)).await.unwrap_err().kind, PortErrorKind::Transient);
    assert_eq!(s.add_note(&t, &note(), false).await.unwrap_err().kind, PortErrorKind::Transient);
    let text = logs.text();
    let close = text.lines().find(|l| l.contains("close")).unwrap_or_else(|| panic!("{text}"));
    assert!(close.contains("ticket_id=128926"), "{close}");
    let n = text.lines().find(|l| l.contains("note")).unwrap_or_else(|| panic!("{text}"));
    assert!(n.contains("ticket_id=128926") && n.contains("marker=kmsp-abc-1/close"), "{n}");
}
