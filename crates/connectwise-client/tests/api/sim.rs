//! The sink against cw-sim over real HTTP: board retargeting, closing on another board,
//! the catalog mapping, discovery, owned tickets, paging both ways.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use connectwise_client::{ConnectWiseClient, ConnectWiseSink, Credentials, PagingMode, RetryPolicy, SinkOptions};
use serde_json::Value;
use simulators::common::SimHandle;
use simulators::connectwise::{self, Config, DEFAULT_COMPANY, DEFAULT_PRIVATE_KEY, DEFAULT_PUBLIC_KEY};
use ticketing_core::catalog::Field;
use ticketing_core::model::PsaId;
use ticketing_core::ports::{PortErrorKind, TicketSink, TicketUpdate};
use ticketing_core::ticket::{IdempotencyKey, TicketDraft, TicketNote, Urgency};

async fn sim() -> SimHandle {
    connectwise::start("127.0.0.1:0".parse().unwrap(), Config::default()).await.unwrap()
}

fn builder(sim: &SimHandle) -> connectwise_client::ClientBuilder {
    ConnectWiseClient::builder(Credentials::new(DEFAULT_COMPANY, DEFAULT_PUBLIC_KEY, DEFAULT_PRIVATE_KEY))
        .base_url(sim.base_url())
        .retry(RetryPolicy::fast())
        .timeout(Duration::from_secs(5))
}

fn sink(sim: &SimHandle) -> ConnectWiseSink {
    ConnectWiseSink::new(builder(sim).build().unwrap(), SinkOptions::default())
}

fn draft(key: &str, board: i64) -> TicketDraft {
    TicketDraft {
        account: PsaId(19300),
        title: format!("{} ({key})", "Backup failed on a very long computer name ".repeat(4)),
        description: format!("Job failed\nmsp-ticketing key: {key}"),
        status: PsaId(10),
        priority: PsaId(2),
        queue: PsaId(board),
        due: Utc.with_ymd_and_hms(2030, 1, 15, 17, 0, 0).unwrap(),
        due_hours: None,
        expires_at: None,
        row: None,
        source: Some(PsaId(3)),
        work_type: Some(PsaId(120)),
        issue_type: Some(PsaId(100)),
        sub_issue_type: Some(PsaId(110)),
        idempotency_key: IdempotencyKey(key.into()),
        device_name: None,
        urgency: Urgency::Normal,
    }
}

async fn sim_tickets(sim: &SimHandle) -> Vec<Value> {
    reqwest::get(format!("{}/_sim/tickets", sim.base_url())).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn catalog_maps_boards_statuses_types_subtypes_items() {
    let sim = sim().await;
    let c = sink(&sim).catalog().await.unwrap();
    let labels = |f: Field| c.list(f).unwrap().iter().map(|v| (v.id.0, v.label.clone(), v.active)).collect::<Vec<_>>();
    assert_eq!(
        labels(Field::Queue),
        [(1, "Monitoring Alert".into(), true), (2, "Help Desk".into(), true), (3, "Retired".into(), false)]
    );
    // statuses merged by label, first board's id
    assert_eq!(c.resolve(Field::NewStatus, "new"), Some(PsaId(10)));
    assert_eq!(c.resolve(Field::ClosedStatus, "Completed"), Some(PsaId(12)));
    assert_eq!(c.resolve(Field::ClosedStatus, "Closed"), Some(PsaId(23)));
    assert_eq!(c.resolve(Field::IssueType, "Security"), Some(PsaId(100)));
    assert_eq!(c.resolve(Field::WorkType, "Remote Support"), Some(PsaId(120)));
    assert_eq!(c.resolve(Field::TicketSource, "Monitoring Alert"), Some(PsaId(3)));
    assert_eq!(c.resolve(Field::Priority, "High"), Some(PsaId(2)));
    let malware: Vec<_> = c.sub_issue_types_of(PsaId(100)).map(|v| v.label.as_str()).collect();
    assert_eq!(malware, ["Malware", "Other"], "Other has no type association: it belongs to every type");
    assert_eq!(connectwise_client::field_label(Field::Queue), "Board");
}

#[tokio::test]
async fn create_retargets_board_scoped_ids_and_cuts_the_summary() {
    let sim = sim().await;
    let s = sink(&sim);
    let t = s.create_ticket(&draft("kmsp-help", 2)).await.unwrap();
    let row = sim_tickets(&sim).await.into_iter().find(|r| r["id"].as_i64() == Some(t.id.0)).unwrap();
    assert_eq!(row["board"]["id"], 2);
    assert_eq!(row["status"]["id"], 20, "board 1's New became board 2's New");
    assert_eq!(row["type"]["id"], 200);
    assert_eq!(row["subType"]["id"], 210);
    assert_eq!(row["item"]["id"], 220);
    assert_eq!(row["summary"].as_str().unwrap().chars().count(), 100);
    assert_eq!(t.number.as_deref(), Some(t.id.0.to_string().as_str()));

    // closing with board 1's Completed sets board 2's Completed
    s.close_ticket(&t, PsaId(12)).await.unwrap();
    let row = sim_tickets(&sim).await.into_iter().find(|r| r["id"].as_i64() == Some(t.id.0)).unwrap();
    assert_eq!(row["status"]["id"], 22);
    assert_eq!(row["closedFlag"], true);
    // and reading it back shows the catalog's id for that label
    assert_eq!(s.ticket(t.id).await.unwrap().unwrap().status, PsaId(12));
    assert_eq!(s.closed_among(&[t.id], PsaId(12)).await.unwrap(), vec![t.id]);

    // a key longer than externalXRef allows is refused before anything is sent
    let long = draft(&format!("kmsp-{}", "x".repeat(100)), 1);
    assert_eq!(s.create_ticket(&long).await.unwrap_err().kind, PortErrorKind::Invalid);
    // an unknown board is a rule problem
    assert_eq!(s.create_ticket(&draft("kmsp-nob", 99)).await.unwrap_err().kind, PortErrorKind::Invalid);
}

#[tokio::test]
async fn update_reopens_on_the_ticket_s_own_board_and_raises_priority_and_due() {
    let sim = sim().await;
    let s = sink(&sim);
    let t = s.create_ticket(&draft("kmsp-reopen", 2)).await.unwrap();
    s.close_ticket(&t, PsaId(12)).await.unwrap();
    // board 1's New (the catalog's id) lands as board 2's New; ConnectWise reopens the ticket
    s.update_ticket(&t, &TicketUpdate { status: Some(PsaId(10)), ..TicketUpdate::default() }).await.unwrap();
    let row = sim_tickets(&sim).await.into_iter().find(|r| r["id"].as_i64() == Some(t.id.0)).unwrap();
    assert_eq!(row["status"]["id"], 20);
    assert_eq!(row["closedFlag"], false);
    assert_eq!(row["closedDate"], Value::Null);
    assert_eq!(s.ticket(t.id).await.unwrap().unwrap().status, PsaId(10));
    assert!(s.closed_among(&[t.id], PsaId(12)).await.unwrap().is_empty());

    let due = Utc.with_ymd_and_hms(2030, 1, 15, 21, 0, 0).unwrap();
    let up = TicketUpdate { status: None, priority: Some(PsaId(1)), due: Some(due) };
    s.update_ticket(&t, &up).await.unwrap();
    s.update_ticket(&t, &up).await.unwrap();
    let row = sim_tickets(&sim).await.into_iter().find(|r| r["id"].as_i64() == Some(t.id.0)).unwrap();
    assert_eq!(row["priority"]["id"], 1);
    assert_eq!(row["requiredDate"], "2030-01-15T21:00:00Z");
    assert_eq!(row["status"]["id"], 20, "the status is left as it was");

    // a priority ConnectWise does not have is refused as a rule problem
    let bad = TicketUpdate { priority: Some(PsaId(99)), ..TicketUpdate::default() };
    assert_eq!(s.update_ticket(&t, &bad).await.unwrap_err().kind, PortErrorKind::Invalid);
    // board 1's In Progress: board 2 has no status by that label
    let bad = TicketUpdate { status: Some(PsaId(11)), ..TicketUpdate::default() };
    assert_eq!(s.update_ticket(&t, &bad).await.unwrap_err().kind, PortErrorKind::Invalid);
}

#[tokio::test]
async fn strict_board_fields_refuse_a_type_the_board_lacks() {
    let sim = sim().await;
    let strict = ConnectWiseSink::new(
        builder(&sim).build().unwrap(),
        SinkOptions { strict_board_fields: true, ..SinkOptions::default() },
    );
    let mut d = draft("kmsp-strict", 2);
    d.issue_type = Some(PsaId(101)); // Hardware: board 1 only
    d.sub_issue_type = None;
    assert_eq!(strict.create_ticket(&d).await.unwrap_err().kind, PortErrorKind::Invalid);
    let lenient = sink(&sim);
    let t = lenient.create_ticket(&d).await.unwrap();
    let row = sim_tickets(&sim).await.into_iter().find(|r| r["id"].as_i64() == Some(t.id.0)).unwrap();
    assert!(row.get("type").is_none(), "left out: {row}");
}

#[tokio::test]
async fn discovery_through_the_simulator_companyinfo() {
    let sim = sim().await;
    let c = ConnectWiseClient::builder(Credentials::new(DEFAULT_COMPANY, DEFAULT_PUBLIC_KEY, DEFAULT_PRIVATE_KEY))
        .site(sim.base_url())
        .retry(RetryPolicy::fast())
        .build()
        .unwrap();
    assert_eq!(c.root().await.unwrap().as_str(), format!("{}/v4_6_release/apis/3.0/", sim.base_url()));
    assert_eq!(c.boards().await.unwrap().len(), 3);
    let unknown =
        ConnectWiseClient::builder(Credentials::new("nobody", "a", "b")).site(sim.base_url()).build().unwrap();
    let err = unknown.root().await.unwrap_err();
    assert_eq!(err.class(), connectwise_client::ErrorClass::NotFound);
}

#[tokio::test]
async fn wrong_keys_are_auth_errors_without_the_key_in_the_message() {
    let sim = sim().await;
    let c = ConnectWiseClient::builder(Credentials::new(DEFAULT_COMPANY, DEFAULT_PUBLIC_KEY, "wrong-private-key"))
        .base_url(sim.base_url())
        .retry(RetryPolicy::fast())
        .build()
        .unwrap();
    let err = ConnectWiseSink::new(c, SinkOptions::default()).accounts().await.unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Auth);
    assert!(!err.message.contains("wrong-private-key"));
}

#[tokio::test]
async fn paging_both_ways_over_many_tickets_and_owned_tickets() {
    let sim = sim().await;
    let s = sink(&sim);
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(s.create_ticket(&draft(&format!("kmsp-p{i}"), 1)).await.unwrap().id);
    }
    s.close_ticket(
        &connectwise_client::sink::ConnectWiseSink::client(&s)
            .get_ticket(ids[0].0)
            .await
            .unwrap()
            .map(|t| ticketing_core::ticket::TicketRef { id: PsaId(t.id.unwrap()), number: None })
            .unwrap(),
        PsaId(12),
    )
    .await
    .unwrap();
    for mode in [PagingMode::ForwardOnly, PagingMode::Numbered] {
        let paged =
            ConnectWiseSink::new(builder(&sim).paging(mode).page_size(3).build().unwrap(), SinkOptions::default());
        let owned = paged.owned_tickets("kmsp-p", Utc::now() - chrono::Duration::hours(1)).await.unwrap().unwrap();
        assert_eq!(owned.len(), 7, "{mode:?}");
        assert!(!owned.iter().find(|o| o.ticket.id == ids[0]).unwrap().open);
        assert!(owned.iter().filter(|o| o.open).count() == 6);
        assert!(owned[1].description.ends_with("msp-ticketing key: kmsp-p1"), "{:?}", owned[1].description);
        let closed = paged.closed_among(&ids, PsaId(12)).await.unwrap();
        assert_eq!(closed, vec![ids[0]]);
    }
    // closed long ago: not listed
    let later = Utc::now() + chrono::Duration::hours(1);
    let owned = s.owned_tickets("kmsp-p", later).await.unwrap().unwrap();
    assert_eq!(owned.len(), 6);
    // the requests carried forward-only paging and the version
    let journal = sim.requests();
    assert!(journal.iter().any(|e| e.header("pagination-type") == Some("forward-only")));
    assert!(journal.iter().all(|e| e.header("accept").is_some_and(|a| a.contains("version=2025.1"))));
}

#[tokio::test]
async fn notes_carry_the_marker_and_are_looked_up() {
    let sim = sim().await;
    let s = sink(&sim);
    let t = s.create_ticket(&draft("kmsp-note", 1)).await.unwrap();
    let note = TicketNote { marker: "kmsp-note/close".into(), text: "Closed: fixed.".into() };
    s.add_note(&t, &note, false).await.unwrap();
    s.add_note(&t, &note, true).await.unwrap();
    let notes: Vec<Value> = reqwest::get(format!("{}/_sim/notes", sim.base_url())).await.unwrap().json().await.unwrap();
    let mine: Vec<&Value> =
        notes.iter().filter(|n| n["text"].as_str().is_some_and(|x| x.contains("[kmsp-note/close]"))).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["text"], "Closed: fixed.\n[kmsp-note/close]");
    assert_eq!(mine[0]["internalAnalysisFlag"], true);
    let off = ConnectWiseSink::new(
        builder(&sim).build().unwrap(),
        SinkOptions { note_on_close: false, ..SinkOptions::default() },
    );
    off.add_note(&t, &TicketNote { marker: "m2".into(), text: "x".into() }, false).await.unwrap();
    let after: Vec<Value> = reqwest::get(format!("{}/_sim/notes", sim.base_url())).await.unwrap().json().await.unwrap();
    assert_eq!(after.len(), notes.len());
}

#[tokio::test]
async fn accounts_use_company_status_and_deleted_flag() {
    let sim = sim().await;
    let accounts = sink(&sim).accounts().await.unwrap();
    let flag = |id: i64| accounts.iter().find(|a| a.id == PsaId(id)).map(|a| a.active);
    assert_eq!((flag(250), flag(19300), flag(19301), flag(19302)), (Some(true), Some(true), Some(false), Some(false)));
}
