//! The ticket lifecycle beyond the guide (issue 20), end to end: the real daemon against the
//! simulators over real HTTP. The flap guard, the reopen window, maintenance windows and
//! priority follows severity; each is off unless its rule says so (the other end-to-end tests
//! run with all of them off).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use msp_ticketd::demo::{Lab, is_closed};
use msp_ticketd::service;
use msp_ticketd::store::{DecisionQuery, Outcome};
use serde_json::{Value, json};
use support::*;
use ticketing_core::ledger::TicketState;

async fn notes(lab: &Lab) -> Result<Vec<Value>> {
    let v = lab.control(&lab.autotask, reqwest::Method::GET, "/_sim/notes", Value::Null).await?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// The reopen window's rules: one Warning status row, reopened within 24 hours.
const REOPEN_RULES: &str = r#"
[rules.rows."security_center/status/warning/databases_out_of_date"]
enabled = true
reopen_hours = 24
"#;

/// Raises the row's problem on `host`, waits for its ticket, clears it and waits until the
/// ticket is closed automatically with its close note; returns the ticket's id.
async fn closed_automatically(lab: &Lab, host: &str) -> Result<Value> {
    let name = host.to_uppercase();
    lab.ksc_host(1, host, &name, &["databases_out_of_date"]).await?;
    let id = wait_tickets(lab, 1, 30).await?[0]["id"].clone();
    lab.ksc_host(1, host, &name, &[]).await?;
    eventually(30, "closed automatically", || async {
        let t = lab.tickets().await?;
        Ok(t.iter().any(|t| t["id"] == id && is_closed(lab.psa, t)).then_some(()))
    })
    .await?;
    eventually(20, "the close note", || async { Ok((notes(lab).await?.len() == 1).then_some(())) }).await?;
    Ok(id)
}

fn ticket_of<'a>(tickets: &'a [Value], host: &str) -> Vec<&'a Value> {
    tickets.iter().filter(|t| t["description"].as_str().unwrap_or_default().contains(host)).collect()
}

/// 1: a status description is ticketed only once it has been active for the row's delay; one
/// that clears during the delay never is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_is_ticketed_after_its_delay_and_never_when_it_clears_during_it() -> Result<()> {
    const RULES: &str = r#"
[rules.rows."security_center/status/warning/databases_out_of_date"]
enabled = true
create_delay_minutes = 1
"#;
    let lab = Lab::start().await?;
    let running = start(&lab, RULES, &[]).await?;
    let seen = chrono::Utc::now();
    lab.ksc_host(1, "pc-steady", "PC-STEADY", &["databases_out_of_date"]).await?;
    lab.ksc_host(1, "pc-flap", "PC-FLAP", &["databases_out_of_date"]).await?;
    // Both are seen and wait.
    eventually(20, "both delays recorded", || async {
        let l = running.shared.store.load_ledger()?;
        Ok((l.entries().filter(|e| e.state.name() == "delayed").count() == 2).then_some(()))
    })
    .await?;
    lab.ksc_host(1, "pc-flap", "PC-FLAP", &[]).await?;
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(lab.tickets().await?.is_empty(), "nothing is ticketed during the delay");
    let pending = running
        .shared
        .store
        .decisions(&DecisionQuery { device: Some("pc-steady".into()), ..DecisionQuery::default() })?;
    assert!(pending.iter().any(|d| d.reason.as_deref() == Some("pending")), "{pending:#?}");
    assert!(pending[0].detail.contains("creation delay"), "{pending:#?}");

    let tickets = wait_tickets(&lab, 1, 60).await?;
    let created = time(&tickets[0]["createDate"]);
    assert!(
        created - seen >= chrono::Duration::seconds(59),
        "ticketed after the delay: seen {seen}, created {created}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tickets = lab.tickets().await?;
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    assert_eq!(ticket_of(&tickets, "PC-STEADY").len(), 1, "the steady one is ticketed");
    assert!(ticket_of(&tickets, "PC-FLAP").is_empty(), "the one that cleared during the delay never is");
    running.stop().await?;
    Ok(())
}

/// 2: a status problem that returns within the reopen window reopens its automatically closed
/// ticket (status back to New, a note) instead of creating another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_problem_that_returns_within_the_window_reopens_its_ticket() -> Result<()> {
    let lab = Lab::start().await?;
    let running = start(&lab, REOPEN_RULES, &[]).await?;
    let id = closed_automatically(&lab, "pc-r").await?;

    lab.ksc_host(1, "pc-r", "PC-R", &["databases_out_of_date"]).await?;
    let reopened = eventually(30, "reopened", || async {
        let t = lab.tickets().await?;
        Ok(t.iter().find(|t| t["id"] == id && t["status"].as_i64() == Some(1)).cloned())
    })
    .await?;
    assert!(reopened["completedDate"].is_null(), "reopening clears the completed date: {reopened}");
    let reopen_note = eventually(20, "the reopen note", || async {
        let n = notes(&lab).await?;
        Ok(n.into_iter().find(|n| n["description"].as_str().unwrap_or_default().to_lowercase().contains("reopen")))
    })
    .await?;
    assert_eq!(reopen_note["ticketID"], id, "{reopen_note}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(lab.tickets().await?.len(), 1, "no second ticket");
    let m = metrics(&running).await?;
    assert_eq!(metric(&m, "msp_tickets_updated_total"), 1, "{m}");
    running.stop().await?;
    Ok(())
}

/// 4: during a maintenance window nothing is ticketed; a problem that clears during it still
/// closes its ticket; one still active when it ends is ticketed within a polling interval; the
/// suppressed decisions name the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintenance_window_suppresses_creates_not_closes_and_tickets_what_remains() -> Result<()> {
    let start_at = chrono::Utc::now() + chrono::Duration::seconds(10);
    let end_at = start_at + chrono::Duration::seconds(15);
    let rules = format!(
        r#"
[rules.rows."security_center/status/warning/databases_out_of_date"]
enabled = true
[rules.rows."security_center/event/critical"]
enabled = true

[[rules.maintenance]]
id = "patch-night"
tenant = "ksc:demo/vs:1"
schedule = {{ kind = "once", start = "{}", end = "{}" }}
"#,
        start_at.to_rfc3339(),
        end_at.to_rfc3339()
    );
    let lab = Lab::start().await?;
    let running = start(&lab, &rules, &[]).await?;
    // Before the window: ticketed as usual.
    lab.ksc_host(1, "pc-m1", "PC-M1", &["databases_out_of_date"]).await?;
    let before = wait_tickets(&lab, 1, 8).await?;
    let id = before[0]["id"].clone();
    tokio::time::sleep((start_at - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1)).await;

    // During: a clear still closes, a new problem and an event wait.
    lab.ksc_host(1, "pc-m1", "PC-M1", &[]).await?;
    lab.ksc_host(1, "pc-m2", "PC-M2", &["databases_out_of_date"]).await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-m3", chrono::Duration::seconds(1), "virus").await?;
    eventually(10, "the close during the window", || async {
        let t = lab.tickets().await?;
        Ok(t.iter().any(|t| t["id"] == id && is_closed(lab.psa, t)).then_some(()))
    })
    .await?;
    tokio::time::sleep(
        (end_at - chrono::Utc::now()).to_std().unwrap_or_default().saturating_sub(Duration::from_secs(1)),
    )
    .await;
    assert_eq!(lab.tickets().await?.len(), 1, "nothing created during the window");
    let suppressed = running
        .shared
        .store
        .decisions(&DecisionQuery { outcome: Some(Outcome::Skipped), ..DecisionQuery::default() })?;
    let by_window: Vec<_> = suppressed.iter().filter(|d| d.reason.as_deref() == Some("maintenance")).collect();
    assert!(by_window.len() >= 2, "the status and the event: {suppressed:#?}");
    assert!(by_window.iter().all(|d| d.detail.contains("patch-night")), "{by_window:#?}");

    // After: the problem still active is ticketed within a polling interval (1 s here).
    let after = eventually(5, "the remaining problem ticketed", || async {
        let t = lab.tickets().await?;
        Ok((!ticket_of(&t, "PC-M2").is_empty()).then_some(t))
    })
    .await?;
    let created = time(&ticket_of(&after, "PC-M2")[0]["createDate"]);
    assert!(created >= end_at, "not before the window's end: {created} vs {end_at}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = lab.tickets().await?;
    assert_eq!(all.len(), 2, "the event during the window stays unticketed: {all:#?}");
    running.stop().await?;
    Ok(())
}

/// 5: an open status ticket whose computer moves from Warning to Critical for the same
/// description gets the Critical row's priority and due time, with a note; when it drops back
/// the priority is not lowered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_follows_its_problem_from_warning_to_critical() -> Result<()> {
    const RULES: &str = r#"
[rules]
priority_follows_severity = ["security_center"]
[rules.rows."security_center/status/warning/databases_out_of_date"]
enabled = true
[rules.rows."security_center/status/critical/databases_out_of_date"]
enabled = true
"#;
    let lab = Lab::start().await?;
    let masks = |level: &str| json!({ "id": 1, "name": "Acme Dental", level: ["databases_out_of_date"] });
    lab.control(&lab.ksc, reqwest::Method::POST, "/_sim/vservers", masks("warning")).await?;
    let running = start(&lab, RULES, &[]).await?;
    lab.ksc_host(1, "pc-p", "PC-P", &["databases_out_of_date"]).await?;
    let first = wait_tickets(&lab, 1, 30).await?;
    let (id, medium) = (first[0]["id"].clone(), first[0]["priority"].clone());
    let created = time(&first[0]["createDate"]);
    assert!((time(&first[0]["dueDateTime"]) - created - chrono::Duration::hours(24)).num_seconds().abs() <= 2);

    lab.control(&lab.ksc, reqwest::Method::POST, "/_sim/vservers", masks("critical")).await?;
    let raised = eventually(30, "the priority raised", || async {
        let t = lab.tickets().await?;
        Ok(t.into_iter().find(|t| t["id"] == id && t["priority"] != medium))
    })
    .await?;
    let raised_at = chrono::Utc::now();
    let due = time(&raised["dueDateTime"]);
    assert!(
        (due - raised_at - chrono::Duration::hours(12)).num_seconds().abs() <= 5,
        "due from the Critical row (12 h): {due}"
    );
    let note = eventually(20, "the note", || async {
        let n = notes(&lab).await?;
        Ok(n.into_iter().find(|n| n["ticketID"] == id))
    })
    .await?;
    assert!(note["description"].as_str().unwrap_or_default().contains("Critical"), "{note}");

    // It drops back: nothing changes.
    lab.control(&lab.ksc, reqwest::Method::POST, "/_sim/vservers", masks("warning")).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let now = lab.tickets().await?;
    assert_eq!(now.len(), 1, "{now:#?}");
    assert_eq!(now[0]["priority"], raised["priority"], "not lowered again");
    assert_eq!(notes(&lab).await?.len(), 1, "no second note");
    running.stop().await?;
    Ok(())
}

/// 2, across a crash: the reopen's note reached the PSA but its answer was never recorded; the
/// restarted daemon resends the (idempotent) update, looks the note up by its marker and adds
/// no second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_reopen_note_reopens_once_with_one_note() -> Result<()> {
    let lab = Lab::start().await?;
    let sent = Arc::new(AtomicUsize::new(0));
    let s = sent.clone();
    let wrap: service::SinkWrapper =
        Box::new(move |inner| Arc::new(LoseTheAnswer { inner, lose: Lose::NotesMarked("/reopen"), lost: s }));
    let first = start_with(&lab, REOPEN_RULES, &[], Some(wrap)).await?;
    let id = closed_automatically(&lab, "pc-c").await?;
    lab.ksc_host(1, "pc-c", "PC-C", &["databases_out_of_date"]).await?;
    eventually(30, "the reopen note sent", || async { Ok((sent.load(Ordering::SeqCst) == 1).then_some(())) }).await?;
    let store = first.shared.store.clone();
    first.kill().await;
    let left = store.load_ledger()?;
    assert!(left.entries().any(|e| e.state.name() == "updating"), "the update is outbox work: {left:?}");

    let second = start(&lab, REOPEN_RULES, &[]).await?;
    eventually(30, "open again in the ledger", || async {
        let l = second.shared.store.load_ledger()?;
        Ok(l.entries().any(|e| matches!(e.state, TicketState::Open { .. })).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = notes(&lab).await?;
    let reopen: Vec<_> = all
        .iter()
        .filter(|n| n["description"].as_str().unwrap_or_default().to_lowercase().contains("reopen"))
        .collect();
    assert_eq!(reopen.len(), 1, "one reopen note: {all:#?}");
    let tickets = lab.tickets().await?;
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    assert_eq!(tickets[0]["id"], id);
    assert_eq!(tickets[0]["status"].as_i64(), Some(1), "open (New)");
    second.stop().await?;
    Ok(())
}

/// 3: an event that recurs on the same computer while its ticket is open adds a note (count and
/// time) to that ticket instead of a new ticket; `why` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recurring_event_adds_a_note_to_its_open_ticket() -> Result<()> {
    const RULES: &str = r#"
[rules.rows."security_center/event/critical"]
enabled = true
recurrence_hours = 24
"#;
    let lab = Lab::start().await?;
    let running = start(&lab, RULES, &[]).await?;
    let m = chrono::Duration::minutes(5);
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-v", m, "virus one").await?;
    let first = wait_tickets(&lab, 1, 30).await?;
    let id = first[0]["id"].clone();
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-v", chrono::Duration::minutes(1), "virus two").await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-other", m, "elsewhere").await?;
    let note = eventually(30, "the recurrence note", || async {
        let n = notes(&lab).await?;
        Ok(n.into_iter().find(|n| n["description"].as_str().unwrap_or_default().contains("recurred")))
    })
    .await?;
    assert_eq!(note["ticketID"], id, "{note}");
    assert!(note["description"].as_str().unwrap_or_default().contains("2nd time"), "{note}");
    let tickets = wait_tickets(&lab, 2, 30).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(lab.tickets().await?.len(), 2, "one for pc-v, one for the other computer: {tickets:#?}");
    let noted =
        running.shared.store.decisions(&DecisionQuery { outcome: Some(Outcome::Noted), ..DecisionQuery::default() })?;
    assert_eq!(noted.len(), 1, "{noted:#?}");
    assert!(noted[0].detail.contains("noted on its open ticket"), "{noted:#?}");
    running.stop().await?;
    Ok(())
}
