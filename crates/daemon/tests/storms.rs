//! Alert storms end to end (issue #27), through the simulators over real HTTP: 300 Critical
//! events on 150 computers of one tenant within two minutes, with a threshold of 10 tickets in
//! 30 minutes, make at most 11 tickets and at most 12 notes in Autotask, every event named in
//! the storm ticket or its notes, while another tenant's events in the same minutes get their
//! own tickets; the same burst with 10 SIGKILLs of a daemon process: no duplicate ticket or note.
//! Each run prints the PSA requests it took (and the burst without storms, for comparison).

mod process;
#[path = "../../../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use msp_ticketd::demo::{ACME, Lab};
use serde_json::Value;
use support::{eventually, free_port};

/// Storms on the Security Center Critical row: 10 tickets within 30 minutes, a note a minute.
const STORM_RULES: &str = r#"
[rules.rows."security_center/event/critical"]
enabled = true
storm_threshold = 10
storm_window_minutes = 30
storm_note_minutes = 1
"#;

const PLAIN_RULES: &str = r#"
[rules.rows."security_center/event/critical"]
enabled = true
"#;

/// The lab's configuration with the second mapped tenant (`ksc:demo/vs:3`, Acme too).
fn config(lab: &Lab, rules: &str, admin: &str) -> String {
    let mut toml = lab.config_toml(rules, admin);
    toml.push_str(&format!("\n[[mapping]]\ntenant = \"ksc:demo/vs:3\"\naccount_id = {ACME}\n"));
    toml
}

/// The burst: 300 Critical events on 150 computers of virtual server 1, spread over the last
/// two minutes, and 5 on virtual server 3 in the same minutes. Answers the first tenant's event
/// ids.
async fn burst(lab: &Lab) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for i in 0..300 {
        let age = chrono::Duration::seconds(120 - (i as i64 * 120 / 300));
        let host = format!("pc-{:03}", i % 150);
        let v = lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", &host, age, "Trojan.Win32.Agent").await?;
        ids.push(v["id"].to_string().trim_matches('"').to_owned());
        if i % 60 == 0 {
            lab.ksc_event(3, "critical", "GNRL_EV_VIRUS_FOUND", &format!("clinic-{i}"), age, "EICAR").await?;
        }
    }
    Ok(ids)
}

/// The first tenant's tickets and the other's (by the customer line of the description).
fn split(tickets: &[Value]) -> (Vec<&Value>, Vec<&Value>) {
    let desc = |t: &Value| t["description"].as_str().unwrap_or_default().to_owned();
    let first = tickets.iter().filter(|t| desc(t).contains("ksc:demo/vs:1")).collect();
    let other = tickets.iter().filter(|t| desc(t).contains("ksc:demo/vs:3")).collect();
    (first, other)
}

/// Every ticket and note text the PSA has, joined.
async fn all_text(lab: &Lab) -> Result<(Vec<Value>, Vec<Value>, String)> {
    let tickets = lab.tickets().await?;
    let notes = lab.control(&lab.autotask, reqwest::Method::GET, "/_sim/notes", Value::Null).await?;
    let notes = notes.as_array().cloned().unwrap_or_default();
    let mut text = String::new();
    for t in &tickets {
        text.push_str(t["description"].as_str().unwrap_or_default());
        text.push('\n');
    }
    for n in &notes {
        text.push_str(n["description"].as_str().unwrap_or_default());
        text.push('\n');
    }
    Ok((tickets, notes, text))
}

/// The events of `ids` neither ticketed on their own (`Event id: <id>` in a ticket's
/// description) nor named in the storm ticket or its notes (`event <id> `).
fn unnamed<'a>(ids: &'a [String], text: &str) -> Vec<&'a str> {
    ids.iter()
        .filter(|id| !text.contains(&format!("event {id} ")) && !text.contains(&format!("Event id: {id}\n")))
        .map(String::as_str)
        .collect()
}

/// Waits until the storm ticket or its notes name every event of the burst, then checks the
/// counts; answers the PSA's tickets and notes.
async fn settle(lab: &Lab, ids: &[String], log: Option<&Path>) -> Result<(Vec<Value>, Vec<Value>)> {
    // Notes come a minute apart: the burst needs one or two after the storm ticket.
    let found = eventually(150, "every event named in the storm ticket or its notes", || async {
        let (tickets, notes, text) = all_text(lab).await?;
        let (first, other) = split(&tickets);
        let named = first.len() >= 11 && other.len() >= 5 && unnamed(ids, &text).is_empty();
        Ok(named.then_some((tickets, notes)))
    })
    .await;
    let (tickets, notes) = match found {
        Ok(found) => found,
        Err(e) => {
            let (tickets, notes, text) = all_text(lab).await?;
            let (first, other) = split(&tickets);
            let missing = unnamed(ids, &text);
            let titles: Vec<&str> = tickets.iter().map(|t| t["title"].as_str().unwrap_or_default()).collect();
            return Err(e).with_context(|| {
                format!(
                    "{} tickets ({} of the storming tenant, {} of the other), {} notes, {} events not named (first: {:?}); titles {titles:#?}; log: {}",
                    tickets.len(),
                    first.len(),
                    other.len(),
                    notes.len(),
                    missing.len(),
                    missing.first(),
                    log.map(|l| std::fs::read_to_string(l).unwrap_or_default()).unwrap_or_default()
                )
            });
        }
    };
    let (first, other) = split(&tickets);
    assert!(first.len() <= 11, "at most 11 tickets for the storming tenant, got {}", first.len());
    assert_eq!(other.len(), 5, "the other tenant's events get their own tickets");
    let storm: Vec<&&Value> =
        first.iter().filter(|t| t["title"].as_str().unwrap_or_default().contains("alert storm")).collect();
    assert_eq!(storm.len(), 1, "one storm ticket: {first:#?}");
    assert!(notes.len() <= 12, "at most 12 notes, got {}", notes.len());
    let storm_id = storm[0]["id"].clone();
    assert!(notes.iter().all(|n| n["ticketID"] == storm_id), "every note is on the storm ticket");
    Ok((tickets, notes))
}

fn duplicates(values: &[Value], field: &str) -> Vec<String> {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for v in values {
        *by.entry(v[field].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    by.into_iter().filter(|(_, n)| *n > 1).map(|(k, n)| format!("{k} x{n}")).collect()
}

/// PSA requests the daemon made (the simulator's journal; control calls are not journaled).
fn psa_requests(lab: &Lab) -> usize {
    lab.autotask.requests().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_300_events_makes_one_storm_ticket_and_batched_notes() -> Result<()> {
    let lab = Lab::start().await?;
    let ids = burst(&lab).await?;
    let toml = config(&lab, STORM_RULES, "127.0.0.1:0");
    let config = msp_ticketd::config::Config::parse(&toml, "storms.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    let before = psa_requests(&lab);
    let running =
        msp_ticketd::service::start_with(&config, msp_ticketd::service::StartOptions::every(support::TICK)).await?;
    let (tickets, notes) = settle(&lab, &ids, None).await?;
    let (first, _) = split(&tickets);
    let storm = first.iter().find(|t| t["title"].as_str().unwrap_or_default().contains("alert storm")).unwrap();
    assert!(
        storm["title"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Kaspersky Security Center: Critical event: alert storm"),
        "{storm}"
    );
    // The storm ticket has the row's queue and priority, like the tickets before it.
    assert_eq!(storm["queueID"], first[0]["queueID"]);
    assert_eq!(storm["priority"], first[0]["priority"]);
    println!(
        "with storms: {} tickets, {} notes, {} PSA requests for the burst",
        tickets.len(),
        notes.len(),
        psa_requests(&lab) - before
    );
    let m = support::metrics(&running).await?;
    assert_eq!(support::metric(&m, "msp_storms_active "), 1, "one storm running");
    // `why` of a stormed event names the storm ticket.
    let addr = running.admin_addr.expect("admin listener");
    let why = support::decisions(addr, &format!("event={}", ids[299])).await?;
    let text = why.to_string();
    assert!(text.contains("added to the storm ticket"), "{text}");
    running.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_burst_without_storms_is_a_ticket_per_event() -> Result<()> {
    let lab = Lab::start().await?;
    burst(&lab).await?;
    let toml = config(&lab, PLAIN_RULES, "127.0.0.1:0");
    let config = msp_ticketd::config::Config::parse(&toml, "plain.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    let before = psa_requests(&lab);
    let running =
        msp_ticketd::service::start_with(&config, msp_ticketd::service::StartOptions::every(support::TICK)).await?;
    let tickets = support::wait_tickets(&lab, 305, 120).await?;
    println!("without storms: {} tickets, {} PSA requests for the burst", tickets.len(), psa_requests(&lab) - before);
    running.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_sigkills_during_the_burst_make_no_duplicate() -> Result<()> {
    let lab = Lab::start().await?;
    let admin = format!("127.0.0.1:{}", free_port()?);
    let mut toml = config(&lab, STORM_RULES, &admin);
    // The daemon's own loop, as fast as the lab's in-process daemons.
    support::set_keys(&mut toml, &[("polling.events_secs", "1")]);
    let path = lab.dir.join("storms.toml");
    std::fs::write(&path, &toml)?;
    let log = lab.dir.join("msp-ticketd.log");
    let ids = burst(&lab).await?;
    // Every PSA request takes a while, so that the deliveries are spread over the kills.
    lab.control(&lab.autotask, reqwest::Method::POST, "/_sim/limits", serde_json::json!({"hold_ms": 400})).await?;
    // Ten kills while the burst is being decided and delivered: each as soon as the PSA shows
    // more than before (or after 8 s), so the kills land in the middle of the work.
    let mut seen = 0;
    let mut mid_work = 0;
    for k in 0..10 {
        let mut d = process::Daemon::spawn(&path, &log)?;
        let _ = eventually(8, "progress", || async {
            let (tickets, notes, _) = all_text(&lab).await?;
            Ok((tickets.len() + notes.len() > seen).then_some(()))
        })
        .await;
        d.kill()?;
        let (tickets, notes, _) = all_text(&lab).await?;
        seen = tickets.len() + notes.len();
        if tickets.len() < 16 {
            mid_work += 1;
        }
        println!("kill {}: {} tickets, {} notes so far", k + 1, tickets.len(), notes.len());
    }
    assert!(mid_work >= 3, "the kills came before the burst's tickets were all made ({mid_work} of 10)");
    lab.control(&lab.autotask, reqwest::Method::POST, "/_sim/limits", serde_json::json!({"hold_ms": 0})).await?;
    let _d = process::Daemon::spawn(&path, &log)?;
    let (tickets, notes) = settle(&lab, &ids, Some(&log)).await?;
    assert_eq!(duplicates(&tickets, "externalID"), Vec::<String>::new(), "no ticket twice");
    assert_eq!(duplicates(&notes, "description"), Vec::<String>::new(), "no note twice");
    Ok(())
}

/// The budget share: with a small hourly budget, Critical creates go first, what the budget
/// cannot take waits (counted in `msp_psa_budget_waiting`, named on `/readyz`, which stays
/// ready) and nothing is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_budget_sends_critical_creates_first_and_the_rest_waits() -> Result<()> {
    const RULES: &str = r#"
[rules.rows."security_center/event/critical"]
enabled = true
[rules.rows."security_center/event/warning"]
enabled = true
"#;
    let lab = Lab::start().await?;
    // Interleaved in the server's order; Critical ones go first within what has been read (the
    // outbox's order), and every create the budget cannot take waits.
    for i in 0..40 {
        let age = chrono::Duration::minutes(5);
        lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", &format!("c-{i}"), age, "virus").await?;
        lab.ksc_event(1, "warning", "GNRL_EV_OBJECT_BLOCKED", &format!("w-{i}"), age, "blocked").await?;
    }
    let mut toml = config(&lab, RULES, "127.0.0.1:0");
    support::set_keys(&mut toml, &[("autotask.hourly_budget", "60")]);
    let config = msp_ticketd::config::Config::parse(&toml, "budget.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    let running =
        msp_ticketd::service::start_with(&config, msp_ticketd::service::StartOptions::every(support::TICK)).await?;
    let found = eventually(30, "work waiting for the budget", || async {
        let m = support::metrics(&running).await?;
        let n = support::metric(&m, "msp_psa_budget_waiting ");
        Ok((n > 0 && support::metric(&m, "msp_psa_budget_used ") >= 59).then_some(n))
    })
    .await;
    let m = support::metrics(&running).await?;
    let budget: Vec<&str> =
        m.lines().filter(|l| l.starts_with("msp_psa_budget") || l.starts_with("msp_outbox")).collect();
    let waiting = found.with_context(|| format!("{budget:#?}; {} tickets", 0))?;
    // Calls in flight when the budget ran out come back to wait too: then every create not sent
    // is counted as waiting.
    let (critical, warning, waiting) = eventually(30, "every unsent create counted as waiting", || async {
        let tickets = lab.tickets().await?;
        let critical =
            tickets.iter().filter(|t| t["title"].as_str().unwrap_or_default().contains("Critical event")).count();
        let warning = tickets.len() - critical;
        let n = support::metric(&support::metrics(&running).await?, "msp_psa_budget_waiting ") as usize;
        Ok((n + warning + critical == 80).then_some((critical, warning, n)))
    })
    .await
    .with_context(|| format!("first seen waiting: {waiting}"))?;
    println!("budget 60: {critical} Critical and {warning} Warning tickets sent, {waiting} calls waiting");
    assert!(critical >= warning, "Critical creates go first: {critical} Critical, {warning} Warning");
    assert!(critical + warning < 80, "the budget could not take them all");
    let addr = running.admin_addr.expect("admin listener");
    let ready = reqwest::Client::new().get(format!("http://{addr}/readyz")).send().await?;
    assert_eq!(ready.status(), 200, "a spent budget is not a failure");
    let body = ready.text().await?;
    assert!(body.contains("PSA calls waiting"), "{body}");
    running.stop().await?;
    Ok(())
}
