//! Against autotask-sim over real HTTP: the hourly budget, zone discovery end to end, the
//! owned-tickets listing and note lookups.

use std::time::Duration;

use autotask_client::{AutotaskClient, AutotaskSink, Credentials, Error, ErrorClass, Pacing, RetryPolicy, SinkOptions};
use chrono::{TimeZone, Utc};
use simulators::autotask::{self, Config, DEFAULT_INTEGRATION_CODE, DEFAULT_SECRET, DEFAULT_USER};
use simulators::common::SimHandle;
use ticketing_core::model::PsaId;
use ticketing_core::ports::{PortError, PortErrorKind, TicketSink};
use ticketing_core::ticket::{IdempotencyKey, TicketDraft, TicketNote, TicketRef, Urgency};

async fn sim() -> SimHandle {
    autotask::start("127.0.0.1:0".parse().unwrap(), Config::default()).await.unwrap()
}

fn sim_credentials() -> Credentials {
    Credentials::new(DEFAULT_USER, DEFAULT_SECRET, DEFAULT_INTEGRATION_CODE)
}

fn builder(sim: &SimHandle) -> autotask_client::ClientBuilder {
    AutotaskClient::builder(sim_credentials())
        .base_url(sim.base_url())
        .retry(RetryPolicy::fast())
        .pacing(Pacing::NONE)
        .threshold_refresh(None)
        .timeout(Duration::from_secs(10))
}

/// API requests that reached the simulator (its journal leaves out `/_sim/` control calls).
fn api_requests(sim: &SimHandle) -> usize {
    sim.requests().len()
}

/// Regression: with `hourly_budget = 60` the daemon sent 210 requests in 75 s, because the
/// first `ThresholdInformation` sync replaced the configured 60 with the server's 10,000.
#[tokio::test]
async fn configured_budget_is_not_raised_by_the_server_threshold() {
    let sim = sim().await;
    let c = builder(&sim).hourly_budget(60).threshold_refresh(Some(Duration::from_secs(300))).build().unwrap();
    let mut sent_ok = 0;
    let mut refused = 0;
    for i in 0..100 {
        match c.get_ticket(1_000 + i).await {
            Ok(_) => sent_ok += 1,
            Err(e) => {
                assert_eq!(e.class(), ErrorClass::RateLimited, "{e:?}");
                assert!(matches!(e, Error::BudgetExhausted { .. }), "{e:?}");
                assert!(e.retry_after().is_some_and(|d| d > Duration::ZERO), "{e:?}");
                let port = PortError::from(&e);
                assert_eq!(port.kind, PortErrorKind::RateLimited);
                assert!(port.is_retryable(), "the engine must back off, not give up");
                assert!(port.retry_after.is_some());
                refused += 1;
            }
        }
    }
    let reached = api_requests(&sim);
    println!("budget 60: {reached} requests reached the simulator, {sent_ok} calls answered, {refused} refused");
    assert!(reached <= 60, "{reached} requests reached the simulator with a budget of 60");
    assert_eq!(reached, 60, "the budget is used up, not under-used");
    assert_eq!(c.budget_usage().used, 60);
    assert_eq!(c.budget_usage().limit, 60);
    sim.shutdown().await;
}

#[tokio::test]
async fn budget_usage_reports_configured_server_and_effective_limits() {
    let sim = sim().await;
    let c = builder(&sim).hourly_budget(60).threshold_refresh(Some(Duration::from_secs(300))).build().unwrap();
    c.get_ticket(1).await.unwrap();
    let u = c.budget_usage();
    // ThresholdInformation, then the GET
    assert_eq!(u.used, 2, "{u:?}");
    assert_eq!(u.configured_limit, 60);
    assert_eq!(u.server_limit, Some(10_000));
    assert_eq!(u.limit, 60, "effective = min(configured, server)");
    // the server counted its ThresholdInformation call; ours since the sync is the GET
    assert_eq!(u.server_used, Some(2), "{u:?}");

    // a server stricter than the configuration wins
    let strict = autotask::start(
        "127.0.0.1:0".parse().unwrap(),
        Config { limits: autotask::Limits { hourly_threshold: 5, ..Default::default() }, ..Config::default() },
    )
    .await
    .unwrap();
    let c = builder(&strict).hourly_budget(60).threshold_refresh(Some(Duration::from_secs(300))).build().unwrap();
    let mut refused = None;
    for i in 0..10 {
        if let Err(e) = c.get_ticket(i).await {
            refused = Some(e);
            break;
        }
    }
    let e = refused.expect("the server's threshold of 5 is enforced locally");
    assert!(matches!(e, Error::BudgetExhausted { limit: 5, .. }), "{e:?}");
    assert_eq!(api_requests(&strict), 5, "no request beyond the server's threshold was sent");
    let u = c.budget_usage();
    assert_eq!((u.limit, u.configured_limit, u.server_limit), (5, 60, Some(5)), "{u:?}");
    sim.shutdown().await;
    strict.shutdown().await;
}

/// Discovery from configuration alone: `discovery_url` pointed at the simulator, whose
/// `zoneInformation` answers with its own URL. No `allow_host` needed: the operator named the
/// discovery host.
#[tokio::test]
async fn zone_discovery_end_to_end_against_the_simulator() {
    let sim = sim().await;
    let c = AutotaskClient::builder(sim_credentials())
        .discovery_url(format!("{}/atservicesrest", sim.base_url()))
        .threshold_refresh(None)
        .build()
        .unwrap();
    let companies = c.companies().await.unwrap();
    assert!(companies.iter().any(|x| x.company_name.as_deref() == Some("Acme Corp")));
    assert_eq!(c.root().await.unwrap().as_str(), format!("{}/ATServicesRest", sim.base_url()));
    let reqs = sim.requests();
    let zone = reqs.iter().find(|r| r.path.to_ascii_lowercase().ends_with("zoneinformation")).expect("zone lookup");
    assert_eq!(zone.query.as_deref(), Some("user=api%40sim.local"));
    assert!(zone.header("secret").is_none(), "zone lookup goes without credentials");
    assert_eq!(reqs.iter().filter(|r| r.path.to_ascii_lowercase().ends_with("zoneinformation")).count(), 1);
    // a bare host works too (the REST root path is added)
    let c2 = AutotaskClient::builder(sim_credentials())
        .discovery_url(url::Url::parse(sim.base_url()).unwrap())
        .threshold_refresh(None)
        .build()
        .unwrap();
    assert!(c2.get_company(29_683_616).await.unwrap().is_some());
    sim.shutdown().await;
}

fn draft(key: &str) -> TicketDraft {
    TicketDraft {
        account: PsaId(29_683_616),
        title: format!("Backup failed ({key})"),
        description: format!("Job failed\nkey: {key}"),
        status: PsaId(1),
        priority: PsaId(2),
        queue: PsaId(29_683_482),
        due: Utc.with_ymd_and_hms(2030, 1, 15, 17, 0, 0).unwrap(),
        due_hours: None,
        expires_at: None,
        row: None,
        source: Some(PsaId(8)),
        work_type: None,
        issue_type: None,
        sub_issue_type: None,
        idempotency_key: IdempotencyKey(key.into()),
        device_name: None,
        urgency: Urgency::Normal,
    }
}

#[tokio::test]
async fn owned_tickets_lists_open_and_recently_closed_in_one_paged_query() {
    let sim = sim().await;
    for closed_status in [None, Some(5)] {
        let sink =
            AutotaskSink::new(builder(&sim).build().unwrap(), SinkOptions { closed_status, ..Default::default() });
        let tag = if closed_status.is_some() { "s" } else { "c" };
        // closed long ago: outside the window
        let old = sink.create_ticket(&draft(&format!("kmsp-{tag}old-1"))).await.unwrap();
        sink.close_ticket(&old, PsaId(5)).await.unwrap();
        sim.core().unwrap().clock.advance_secs(3 * 86_400);
        let since = sim.core().unwrap().clock.now() - chrono::Duration::hours(1);
        let open = sink.create_ticket(&draft(&format!("kmsp-{tag}open-1"))).await.unwrap();
        let recent = sink.create_ticket(&draft(&format!("kmsp-{tag}recent-2"))).await.unwrap();
        sink.close_ticket(&recent, PsaId(5)).await.unwrap();
        let foreign = sink.create_ticket(&draft(&format!("other-{tag}-1"))).await.unwrap();
        sim.core().unwrap().journal.clear();
        let owned = sink.owned_tickets(&format!("kmsp-{tag}"), since).await.unwrap().unwrap();
        let mut got: Vec<(i64, &str, bool)> =
            owned.iter().map(|o| (o.ticket.id.0, o.idempotency_key.as_str(), o.open)).collect();
        got.sort();
        let open_key = format!("kmsp-{tag}open-1");
        let recent_key = format!("kmsp-{tag}recent-2");
        assert_eq!(got, vec![(open.id.0, open_key.as_str(), true), (recent.id.0, recent_key.as_str(), false)]);
        assert!(owned.iter().all(|o| o.description.starts_with("Job failed\nkey: kmsp-")), "{owned:?}");
        assert!(owned.iter().all(|o| o.ticket.number.is_some()));
        assert!(!owned.iter().any(|o| o.ticket.id == foreign.id || o.ticket.id == old.id));
        let reqs = sim.requests();
        assert_eq!(reqs.len(), 1, "one query");
        assert_eq!(reqs[0].path, "/ATServicesRest/V1.0/Tickets/query");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn owned_tickets_follows_pages_of_500() {
    let sim = sim().await;
    let sink = AutotaskSink::new(builder(&sim).build().unwrap(), SinkOptions::default());
    for i in 0..502 {
        sink.create_ticket(&draft(&format!("kmsp-p{i:04}-1"))).await.unwrap();
    }
    sim.core().unwrap().journal.clear();
    let owned = sink.owned_tickets("kmsp-p", Utc::now() - chrono::Duration::hours(1)).await.unwrap().unwrap();
    assert_eq!(owned.len(), 502);
    assert!(owned.iter().all(|o| o.open));
    assert_eq!(sim.requests().len(), 2, "two pages");
    sim.shutdown().await;
}

#[tokio::test]
async fn note_lookup_finds_a_note_that_landed_and_skips_the_repeat() {
    let sim = sim().await;
    let sink = AutotaskSink::new(builder(&sim).build().unwrap(), SinkOptions::default());
    let t = sink.create_ticket(&draft("kmsp-note-1")).await.unwrap();
    let other = sink.create_ticket(&draft("kmsp-note2-1")).await.unwrap();
    let note = TicketNote { marker: "kmsp-note-1/close".into(), text: "Resolved: protection is on again.".into() };
    // a note with the same marker on another ticket does not count
    sink.add_note(&other, &note, false).await.unwrap();
    sink.add_note(&t, &note, true).await.unwrap();
    // the retry after an unknown outcome finds it and adds nothing
    sink.add_note(&t, &note, true).await.unwrap();
    let notes: Vec<serde_json::Value> = reqwest_get(&format!("{}/_sim/notes", sim.base_url())).await;
    let on_t: Vec<_> = notes.iter().filter(|n| n["ticketID"].as_i64() == Some(t.id.0)).collect();
    assert_eq!(on_t.len(), 1, "{notes:?}");
    assert_eq!(on_t[0]["description"], "Resolved: protection is on again.\n[kmsp-note-1/close]");
    assert_eq!(on_t[0]["title"], "Closed automatically");
    // a note on a ticket that does not exist is refused as invalid
    let e = sink.add_note(&TicketRef { id: PsaId(1), number: None }, &note, false).await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::Invalid, "{e:?}");
    sim.shutdown().await;
}

async fn reqwest_get<T: serde::de::DeserializeOwned>(url: &str) -> T {
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let items = v.get("notes").or_else(|| v.get("items")).cloned().unwrap_or(v);
    serde_json::from_value(items).unwrap()
}
