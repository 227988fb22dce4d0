//! End-to-end: the real daemon (`msp-ticketd`'s library, in-process) against the three
//! simulators over real HTTP on loopback, with a SQLite store on disk.
//!
//! What a technician would see in the PSA is checked in the Autotask simulator's tickets.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use msp_ticketd::demo::{ACME, KBH_COMPANY, Lab, OLD_CO};
use msp_ticketd::service;
use serde_json::{Value, json};
use support::*;
use ticketing_core::ledger::TicketState;

const GUIDE_RULES: &str = r#"
[rules.general]
ticket_source = "Monitoring Alert"
[rules.rows."security_center/event/critical"]
enabled = true
[rules.rows."security_center/event/warning"]
enabled = true
queue = "Service Desk"
priority = "High"
due_hours = 6
work_type = "Remote Support"
issue_type = "Hardware"
sub_issue_type = "Workstation"
[rules.rows."endpoint_cloud/event/functional_failure"]
enabled = true
[rules.rows."office365/event/phishing_detected"]
enabled = true
[rules.rows."office365/event/license_issue"]
enabled = true
[rules.rows."security_center/status/warning/databases_out_of_date"]
enabled = true
[rules.rows."security_center/status/warning/many_viruses_detected"]
enabled = true
[rules.rows."endpoint_cloud/status/critical/license_expired"]
enabled = true
"#;

/// Every rule of the guide, observed in the PSA's tickets: queue, priority, due time, statuses,
/// rule toggles, lifetime, the three products, the auto-close of status tickets (even while the
/// computer stays Warning) and of the resolvable Office 365 issue, and nothing else closing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_of_the_guide_is_observable_in_the_psa() -> Result<()> {
    let lab = Lab::start().await?;
    let running = start(&lab, GUIDE_RULES, &[]).await?;
    let h = chrono::Duration::hours;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", h(2), "virus").await?;
    lab.ksc_event(1, "warning", "GNRL_EV_OBJECT_BLOCKED", "pc-2", h(2), "blocked").await?;
    // rule off (functional failure is off for Security Center) and stale (older than 1 day)
    lab.ksc_event(1, "functional_failure", "KLPRCI_TaskState", "pc-3", h(2), "task").await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-4", h(25), "an old virus").await?;
    lab.ksc_host(1, "pc-5", "PC-5", &["databases_out_of_date", "many_viruses_detected"]).await?;
    lab.kbh_event(json!({ "company": KBH_COMPANY, "product": "kes_cloud", "severity": "functional_failure", "device": "d-1", "text": "task failed" })).await?;
    lab.kbh_device("d-2", "LAPTOP-2", &["license_expired"]).await?;
    lab.kbh_event(json!({ "company": KBH_COMPANY, "product": "ksmo365", "event_type": "phishing_detected", "mailbox": "cfo@acme.example" })).await?;
    lab.kbh_issue("license_issue", true).await?;

    let tickets = wait_tickets(&lab, 8, 30).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tickets2 = lab.tickets().await?;
    assert_eq!(tickets2.len(), 8, "no extra tickets: {tickets2:#?}");
    for t in &tickets {
        assert_eq!(t["companyID"], ACME);
        assert_eq!(t["status"], 1, "new-ticket status New");
        assert_eq!(t["source"], 8, "ticket source Monitoring Alert");
        assert!(t["externalID"].as_str().unwrap().len() <= 50);
    }
    let crit = find(&tickets, "Critical event");
    assert_eq!((crit["queueID"].clone(), crit["priority"].clone()), (json!(8), json!(4)), "Monitoring Alert, Critical");
    assert_due(crit, 12);
    let warn = find(&tickets, "Warning event");
    assert_eq!(warn["queueID"], 29683482);
    assert_eq!(warn["priority"], 1);
    assert_eq!((warn["issueType"].clone(), warn["subIssueType"].clone()), (json!(10), json!(102)));
    assert_eq!(warn["billingCodeID"], 29682801);
    assert_due(warn, 6);
    let ff = find(&tickets, "Functional failure event");
    assert_eq!(ff["priority"], 2, "Functional failure defaults to Medium");
    let phishing = find(&tickets, "Phishing detected");
    assert_eq!(phishing["priority"], 4, "every Office 365 type defaults to Critical");
    let license = find(&tickets, "License-related issue occurred");
    assert_eq!(license["priority"], 4);
    let dbs = find(&tickets, "Databases are out of date");
    assert_eq!(dbs["priority"], 2, "Warning status defaults to Medium");
    assert_due(dbs, 24);
    let viruses = find(&tickets, "Many viruses detected");
    let laptop = find(&tickets, "License has expired");
    assert_eq!(laptop["priority"], 4, "Critical status defaults to Critical");
    assert_due(laptop, 12);

    // The databases are updated; the computer stays Warning because of the viruses.
    lab.ksc_host(1, "pc-5", "PC-5", &["many_viruses_detected"]).await?;
    lab.kbh_device("d-2", "LAPTOP-2", &[]).await?;
    lab.kbh_issue("license_issue", false).await?;
    let closed = eventually(30, "three closes", || async {
        let t = lab.tickets().await?;
        let closed: Vec<Value> = t.into_iter().filter(|t| t["status"] == 5).collect();
        Ok((closed.len() >= 3).then_some(closed))
    })
    .await?;
    let closed_ids: Vec<&Value> = closed.iter().map(|t| &t["id"]).collect();
    assert!(
        closed_ids.contains(&&dbs["id"]) && closed_ids.contains(&&laptop["id"]) && closed_ids.contains(&&license["id"])
    );
    for t in &closed {
        assert!(t["completedDate"].is_string(), "completing sets completedDate: {t}");
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let after = lab.tickets().await?;
    for keep_open in [crit, warn, ff, phishing, viruses] {
        let now = after.iter().find(|t| t["id"] == keep_open["id"]).unwrap();
        assert_eq!(now["status"], 1, "event tickets and the still-active status stay open: {now}");
    }
    assert_eq!(after.iter().filter(|t| t["status"] == 5).count(), 3);
    let m = metrics(&running).await?;
    assert_eq!(metric(&m, "msp_skips_total{reason=\"rule_off\"}"), 1, "{m}");
    // The 25-hour-old event lies before the read window (now minus the longest enabled
    // lifetime): the adapter never hands it on, so it is neither ticketed nor counted.
    assert_eq!(metric(&m, "msp_skips_total{reason=\"stale\"}"), 0, "{m}");
    assert!(after.iter().all(|t| !t["description"].as_str().unwrap_or_default().contains("an old virus")));
    running.stop().await?;
    Ok(())
}

/// Tickets go only to mapped, active accounts; the others are counted skips.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmapped_tenants_and_inactive_accounts_get_no_ticket_and_a_counted_skip() -> Result<()> {
    let lab = Lab::start().await?;
    let running = start(&lab, "[rules.rows.\"security_center/event/critical\"]\nenabled = true\n", &[]).await?;
    let h = chrono::Duration::hours;
    lab.ksc_event(2, "critical", "GNRL_EV_VIRUS_FOUND", "oldco-pc", h(1), "inactive account").await?;
    lab.ksc_event(3, "critical", "GNRL_EV_VIRUS_FOUND", "clinic-pc", h(1), "unmapped tenant").await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "acme-pc", h(1), "mapped and active").await?;
    let tickets = wait_tickets(&lab, 1, 30).await?;
    let m = eventually(10, "both skips counted", || async {
        let m = metrics(&running).await?;
        let done = metric(&m, "msp_skips_total{reason=\"tenant_unmapped\"}") == 1
            && metric(&m, "msp_skips_total{reason=\"account_inactive\"}") == 1;
        Ok(done.then_some(m))
    })
    .await?;
    assert!(m.contains("msp_tickets_created_total 1"), "{m}");
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0]["companyID"], ACME);
    assert!(lab.tickets().await?.iter().all(|t| t["companyID"] != OLD_CO));
    running.stop().await?;
    Ok(())
}

/// Invariant 2: killed after the PSA created the ticket but before the answer was recorded,
/// the daemon restarts, finds the ticket by its idempotency key, and creates nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_planned_and_the_psa_answer_creates_no_duplicate() -> Result<()> {
    let lab = Lab::start().await?;
    let rules = "[rules.rows.\"security_center/event/critical\"]\nenabled = true\n";
    let created = Arc::new(AtomicUsize::new(0));
    let c = created.clone();
    let wrap: service::SinkWrapper =
        Box::new(move |inner| Arc::new(LoseTheAnswer { inner, lose: Lose::Creates, lost: c }));
    let first = start_with(&lab, rules, &[], Some(wrap)).await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", chrono::Duration::hours(1), "virus").await?;
    eventually(30, "the PSA to create the ticket", || async {
        Ok((created.load(Ordering::SeqCst) == 1).then_some(()))
    })
    .await?;
    let store = first.shared.store.clone();
    first.kill().await;
    let planned = store.load_ledger()?;
    let entry = planned.entries().next().expect("the planned entry survived the crash");
    assert!(matches!(entry.state, TicketState::Planned { .. }), "{entry:?}");
    assert_eq!(lab.tickets().await?.len(), 1);

    let second = start(&lab, rules, &[]).await?;
    let key = entry.key.clone();
    eventually(30, "the entry to be opened from the PSA's ticket", || async {
        let l = second.shared.store.load_ledger()?;
        Ok(matches!(l.get(&key).map(|e| &e.state), Some(TicketState::Open { .. })).then_some(()))
    })
    .await?;
    let tickets = lab.tickets().await?;
    assert_eq!(tickets.len(), 1, "found by externalID, not created again: {tickets:#?}");
    assert_eq!(tickets[0]["externalID"], entry.idempotency_key.as_str());
    let m = metrics(&second).await?;
    // Taken over from the PSA's listing at start (or, for a backend that cannot list, found by
    // its idempotency key before a create): never created again.
    assert_eq!(metric(&m, "msp_tickets_recovered_total") + metric(&m, "msp_tickets_adopted_total"), 1, "{m}");
    assert_eq!(metric(&m, "msp_tickets_created_total"), 0, "{m}");
    second.stop().await?;
    Ok(())
}

/// A burst of events, the daemon killed mid-burst (creates in flight), restarted on the same
/// store: zero duplicates and zero missing tickets, checked by externalID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_in_the_middle_of_a_burst_loses_nothing_and_duplicates_nothing() -> Result<()> {
    let lab = Lab::start().await?;
    let rules = "[rules.rows.\"security_center/event/critical\"]\nenabled = true\n[rules.rows.\"security_center/event/warning\"]\nenabled = true\n";
    const N: usize = 40;
    for i in 0..N {
        let sev = if i % 2 == 0 { "critical" } else { "warning" };
        lab.ksc_event(1, sev, "GNRL_EV_VIRUS_FOUND", &format!("pc-{i}"), chrono::Duration::minutes(30), "burst")
            .await?;
    }
    // Every create takes a while, so the kill lands with creates in flight.
    lab.autotask_fault(Some("POST"), "(?i)/V1.0/Tickets$", 0, Value::Null, 1000, 150).await?;
    let first = start(&lab, rules, &[]).await?;
    wait_tickets(&lab, 5, 30).await?;
    first.kill().await;
    let after_kill = lab.tickets().await?.len();
    assert!(after_kill < N, "the kill landed mid-burst ({after_kill} of {N})");

    let second = start(&lab, rules, &[]).await?;
    wait_tickets(&lab, N, 60).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let tickets = lab.tickets().await?;
    let ids = by_external_id(&tickets);
    assert_eq!(tickets.len(), N, "no duplicate and no missing ticket");
    assert_eq!(ids.len(), N);
    assert!(ids.values().all(|n| *n == 1), "{ids:?}");
    let ledger = second.shared.store.load_ledger()?;
    assert_eq!(ledger.entries().filter(|e| matches!(e.state, TicketState::Open { .. })).count(), N);
    second.stop().await?;
    Ok(())
}

/// Autotask answering 503 and 429 for a while, then recovering: nothing lost, nothing twice,
/// and the closes that were due go through too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psa_outage_with_429_and_503_loses_nothing() -> Result<()> {
    let lab = Lab::start().await?;
    let rules = "[rules.rows.\"security_center/event/critical\"]\nenabled = true\n[rules.rows.\"security_center/status/warning/databases_out_of_date\"]\nenabled = true\n";
    let running = start(&lab, rules, &[]).await?;
    // Let the daemon load its catalog first, then take the ticket endpoints down.
    eventually(30, "the catalog", || async { Ok(running.shared.catalog().map(|_| ())) }).await?;
    lab.autotask_fault(None, "(?i)/V1.0/Tickets", 503, json!({ "errors": ["Service Unavailable"] }), 4, 0).await?;
    lab.autotask_fault(None, "(?i)/V1.0/Tickets", 429, json!({ "errors": ["Request threshold exceeded."] }), 4, 0)
        .await?;
    for i in 0..6 {
        lab.ksc_event(
            1,
            "critical",
            "GNRL_EV_VIRUS_FOUND",
            &format!("pc-{i}"),
            chrono::Duration::minutes(5),
            "during outage",
        )
        .await?;
    }
    lab.ksc_host(1, "pc-x", "PC-X", &["databases_out_of_date"]).await?;
    let tickets = wait_tickets(&lab, 7, 90).await?;
    let journal = lab.autotask_requests().await?;
    assert!(journal.iter().any(|r| r["status"] == 503), "the outage happened");
    assert!(journal.iter().any(|r| r["status"] == 429), "the throttling happened");
    // And a close during another outage.
    lab.autotask_fault(Some("PATCH"), "(?i)/V1.0/Tickets", 503, json!({ "errors": ["Service Unavailable"] }), 3, 0)
        .await?;
    lab.ksc_host(1, "pc-x", "PC-X", &[]).await?;
    let dbs = find(&tickets, "Databases are out of date")["id"].clone();
    eventually(90, "the close after the outage", || async {
        let t = lab.tickets().await?;
        Ok(t.iter().any(|t| t["id"] == dbs && t["status"] == 5).then_some(()))
    })
    .await?;
    let tickets = lab.tickets().await?;
    assert_eq!(tickets.len(), 7);
    assert!(by_external_id(&tickets).values().all(|n| *n == 1));
    running.stop().await?;
    Ok(())
}

/// Invariant 4: a ticket a technician closed is not re-created while its condition persists;
/// once the condition clears and comes back, it is a new problem with a new ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_closed_by_a_technician_is_not_recreated_while_the_condition_persists() -> Result<()> {
    let lab = Lab::start().await?;
    let rules = "[rules.rows.\"security_center/status/critical/license_expired\"]\nenabled = true\n";
    let running = start(&lab, rules, &[("ticket_sync_secs", "1")]).await?;
    lab.ksc_host(1, "pc-1", "PC-1", &["license_expired"]).await?;
    let tickets = wait_tickets(&lab, 1, 30).await?;
    let id = tickets[0]["id"].as_i64().unwrap();
    // The technician completes it in Autotask.
    let resp = reqwest::Client::new()
        .patch(format!("{}/ATServicesRest/V1.0/Tickets", lab.autotask.base_url()))
        .header("ApiIntegrationCode", "SIMINTEGRATIONCODE000000000")
        .header("UserName", "api@sim.local")
        .header("Secret", "sim-secret")
        .json(&json!({ "id": id, "status": 5 }))
        .send()
        .await?;
    assert!(resp.status().is_success(), "{}", resp.text().await?);
    eventually(30, "the technician's close to be noticed", || async {
        let m = metrics(&running).await?;
        Ok((metric(&m, "msp_tickets_closed_by_technician_total") == 1).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(lab.tickets().await?.len(), 1, "not re-created while the license is still expired");
    // The condition clears, then comes back: a new ticket (generation 2).
    lab.ksc_host(1, "pc-1", "PC-1", &[]).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    lab.ksc_host(1, "pc-1", "PC-1", &["license_expired"]).await?;
    let tickets = wait_tickets(&lab, 2, 30).await?;
    assert!(tickets[1]["externalID"].as_str().unwrap().ends_with("-2"), "{tickets:#?}");
    running.stop().await?;
    Ok(())
}

/// `msp-ticketd check` reaches the live PSA and every source and reports every problem at once,
/// naming file and key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_every_problem_against_the_live_psa_and_sources() -> Result<()> {
    let lab = Lab::start().await?;
    let rules = "[rules.rows.\"security_center/event/critical\"]\nenabled = true\npriority = \"Urgent\"\n";
    let path = lab.dir.join("check.toml");
    std::fs::write(&path, lab.config_toml(rules, "127.0.0.1:0"))?;
    let problems = msp_ticketd::check::check(&path, &msp_ticketd::check::Options::new(false)).await.problems;
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 2, "{lines:#?}");
    assert!(lines[0].contains("rules.rows.\"security_center/event/critical\".priority"), "{lines:#?}");
    assert!(lines[0].contains("\"Urgent\" is not an active value in the PSA"), "{lines:#?}");
    assert!(lines[1].contains("mapping[1]") && lines[1].contains("inactive"), "{lines:#?}");
    assert!(lines.iter().all(|l| l.starts_with(&path.display().to_string())));
    // A source that cannot be reached is a problem too, reported with the rest.
    let unreachable = lab.config_toml(rules, "127.0.0.1:0").replace(lab.ksc.base_url(), "http://127.0.0.1:9");
    std::fs::write(&path, unreachable)?;
    let problems = msp_ticketd::check::check(&path, &msp_ticketd::check::Options::new(false)).await.problems;
    assert!(
        problems.iter().any(|p| p.key.starts_with("security_center[0]") && p.reason.contains("cannot reach")),
        "{problems:#?}"
    );
    Ok(())
}
