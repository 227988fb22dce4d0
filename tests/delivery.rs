//! Nothing lost, nothing twice, in the cases real deployments hit: an outage longer than an
//! event's lifetime, a lost store, a hung PSA call, a tight request budget, a close note that
//! fails, a create the PSA refuses. The real daemon against the simulators over real HTTP.

mod support;

use std::time::Duration;

use anyhow::Result;
use msp_ticketd::demo::{ACME, ADMIN_TOKEN, KBH_COMPANY, Lab};
use serde_json::{Value, json};
use support::*;
use ticketing_core::catalog::Field;
use ticketing_core::ledger::TicketState;

const RULES: &str = r#"
[rules.rows."security_center/event/critical"]
enabled = true
[rules.rows."endpoint_cloud/event/functional_failure"]
enabled = true
[rules.rows."security_center/status/warning/databases_out_of_date"]
enabled = true
[rules.rows."security_center/status/warning/many_viruses_detected"]
enabled = true
"#;

fn h(n: i64) -> chrono::Duration {
    chrono::Duration::hours(n)
}

/// POST requests that created tickets, as the Autotask simulator journaled them.
async fn creates(lab: &Lab) -> Result<usize> {
    Ok(lab
        .autotask_requests()
        .await?
        .iter()
        .filter(|r| {
            r["method"] == "POST" && r["path"].as_str().unwrap_or_default().to_lowercase().ends_with("/tickets")
        })
        .filter(|r| r["status"].as_u64().is_some_and(|s| s < 300))
        .count())
}

async fn ledger_state(running: &msp_ticketd::service::Running, part: &str) -> Result<Option<TicketState>> {
    let l = running.shared.store.load_ledger()?;
    // The entry whose key or draft mentions `part` (a host name, an event's text).
    Ok(l.entries().find(|e| serde_json::to_string(e).is_ok_and(|j| j.contains(part))).map(|e| e.state.clone()))
}

async fn admin(
    running: &msp_ticketd::service::Running,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value> {
    let addr = running.admin_addr.expect("admin listener");
    let mut req = reqwest::Client::new().request(method, format!("http://{addr}{path}")).bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    anyhow::ensure!(status.is_success(), "{path} answered {status}: {text}");
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Issue 12.2: the guide sends, after a broken connection, "only events more recent than the
/// specified period". A create decided while its event was fresh is re-checked at the PSA
/// call: one that outlived its lifetime during the outage is dropped as `stale` (ledger and
/// `msp_skips_total`), never created; and the due time of a ticket counts from its create, not
/// from when the event was first read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_lifetime_drops_the_create_and_due_counts_from_the_create() -> Result<()> {
    let lab = Lab::start().await?;
    // The PSA refuses every create for a while (503), reads still work.
    lab.autotask_fault(Some("POST"), "(?i)/tickets$", 503, json!({"errors": ["Service unavailable"]}), 10_000, 0)
        .await?;
    let running = start(&lab, RULES, &[]).await?;
    // 23 h 59 min 40 s old: fresh when read, stale 20 s later.
    let seeded = chrono::Utc::now();
    lab.ksc_event(
        1,
        "critical",
        "GNRL_EV_VIRUS_FOUND",
        "pc-old",
        h(24) - chrono::Duration::seconds(20),
        "nearly stale",
    )
    .await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-new", h(1), "fresh").await?;
    eventually(15, "both creates planned", || async {
        let l = running.shared.store.load_ledger()?;
        Ok((l.entries().filter(|e| matches!(e.state, TicketState::Planned { .. })).count() == 2).then_some(()))
    })
    .await?;
    // The outage outlasts the old event's lifetime.
    let stale_at = seeded + chrono::Duration::seconds(21);
    tokio::time::sleep((stale_at - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    lab.control(&lab.autotask, reqwest::Method::DELETE, "/_sim/faults", Value::Null).await?;
    let tickets = wait_tickets(&lab, 1, 30).await?;
    eventually(10, "the stale create dropped", || async {
        let l = running.shared.store.load_ledger()?;
        Ok(l.entries().any(|e| matches!(&e.state, TicketState::Dropped { reason } if reason == "stale")).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tickets_now = lab.tickets().await?;
    assert_eq!(tickets_now.len(), 1, "only the fresh event becomes a ticket: {tickets_now:#?}");
    assert!(tickets[0]["description"].as_str().unwrap_or_default().contains("fresh"));
    // Due = the create + 12 h, not the first sight + 12 h (the outage lasted over 20 s).
    let due = time(&tickets[0]["dueDateTime"]);
    let created = time(&tickets[0]["createDate"]);
    assert!((due - created - h(12)).num_seconds().abs() <= 2, "due {due}, created {created}");
    assert!(due - seeded - h(12) >= chrono::Duration::seconds(20), "due {due} counts from the create, seeded {seeded}");
    let m = metrics(&running).await?;
    assert_eq!(metric(&m, "msp_skips_total{reason=\"stale\"}"), 1, "{m}");
    running.stop().await?;
    Ok(())
}

/// Issue 12.3: the store is deleted (with its WAL) between two runs; the next start rebuilds
/// the ledger from the PSA's own tickets: nothing is created again, and a status ticket whose
/// description cleared meanwhile still closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_store_is_rebuilt_from_the_psa_and_nothing_is_created_twice() -> Result<()> {
    let lab = Lab::start().await?;
    let first = start(&lab, RULES, &[]).await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", h(1), "virus one").await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-2", h(2), "virus two").await?;
    lab.kbh_event(json!({ "company": KBH_COMPANY, "product": "kes_cloud", "severity": "functional_failure", "device": "d-1", "text": "task failed" })).await?;
    lab.ksc_host(1, "pc-5", "PC-5", &["databases_out_of_date", "many_viruses_detected"]).await?;
    let before = wait_tickets(&lab, 5, 30).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.stop().await?;
    assert_eq!(creates(&lab).await?, 5);
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", lab.store_path().display());
        let _ = std::fs::remove_file(p);
    }
    // While no daemon runs, the databases get updated.
    lab.ksc_host(1, "pc-5", "PC-5", &["many_viruses_detected"]).await?;

    let second = start(&lab, RULES, &[]).await?;
    let dbs = before
        .iter()
        .find(|t| t["title"].as_str().unwrap_or_default().contains("Databases"))
        .expect("the databases ticket")
        .clone();
    eventually(30, "the cleared description's ticket to close", || async {
        let t = lab.tickets().await?;
        Ok(t.iter().any(|t| t["id"] == dbs["id"] && t["status"] == 5).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = lab.tickets().await?;
    assert_eq!(after.len(), 5, "no ticket created again: {after:#?}");
    assert_eq!(creates(&lab).await?, 5);
    assert!(by_external_id(&after).values().all(|n| *n == 1));
    let m = metrics(&second).await?;
    assert_eq!(metric(&m, "msp_tickets_adopted_total"), 5, "{m}");
    assert_eq!(metric(&m, "msp_tickets_created_total"), 0, "{m}");
    second.stop().await?;
    Ok(())
}

/// Issue 12.3: a store file removed while the daemon runs is noticed, and the daemon stops with
/// an error naming the file instead of writing on to an unlinked file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_file_removed_under_the_running_daemon_stops_it_with_a_clear_error() -> Result<()> {
    let lab = Lab::start().await?;
    let running = start(&lab, RULES, &[]).await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", h(1), "virus").await?;
    wait_tickets(&lab, 1, 30).await?;
    std::fs::remove_file(lab.store_path())?;
    eventually(10, "the engine to stop", || async { Ok(running.is_finished().then_some(())) }).await?;
    let err = running.stop().await.expect_err("the engine ends with an error");
    let text = format!("{err:#}");
    assert!(text.contains("was removed") && text.contains(&lab.store_path().display().to_string()), "{text}");
    Ok(())
}

/// Issue 12.5: one create hangs (the PSA holds it for 125 s); every other ticket, of this tenant
/// and the others, keeps flowing meanwhile, and new events keep being polled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hung_create_stalls_nothing_else() -> Result<()> {
    let lab = Lab::start().await?;
    lab.autotask_fault(Some("POST"), "(?i)/tickets$", 0, Value::Null, 1, 125_000).await?;
    let running = start(&lab, RULES, &[]).await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-hung", h(1), "the hung one").await?;
    eventually(10, "the hung create to be planned", || async {
        Ok(matches!(ledger_state(&running, "the hung one").await?, Some(TicketState::Planned { .. })).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hang_started = std::time::Instant::now();
    for i in 0..5 {
        lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", &format!("pc-{i}"), h(1), "virus").await?;
        lab.kbh_event(json!({ "company": KBH_COMPANY, "product": "kes_cloud", "severity": "functional_failure", "device": format!("d-{i}"), "text": "task failed" })).await?;
    }
    let tickets = wait_tickets(&lab, 10, 20).await?;
    let during = hang_started.elapsed();
    println!("during the hang ({:.1} s in): {} other tickets created", during.as_secs_f64(), tickets.len());
    assert!(during < Duration::from_secs(20));
    assert!(tickets.iter().all(|t| !t["description"].as_str().unwrap_or_default().contains("the hung one")));
    assert!(
        matches!(ledger_state(&running, "the hung one").await?, Some(TicketState::Planned { .. })),
        "the hung create is still in flight"
    );
    running.kill().await;
    Ok(())
}

/// Issue 12.4: with `autotask.hourly_budget = 15` the daemon sends at most 15 requests in the
/// hour, whatever the server's own threshold (10,000), and `/metrics` shows both limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_hourly_budget_is_honoured() -> Result<()> {
    let lab = Lab::start().await?;
    let running = start(&lab, RULES, &[("autotask.hourly_budget", "15")]).await?;
    for i in 0..30 {
        lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", &format!("pc-{i}"), h(1), "virus").await?;
    }
    wait_tickets(&lab, 5, 20).await?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let sent = lab.autotask_requests().await?.len();
    println!("budget 15: {sent} requests sent, {} tickets", lab.tickets().await?.len());
    assert!(sent <= 15, "{sent} requests for a budget of 15");
    let m = metrics(&running).await?;
    assert_eq!(metric(&m, "msp_psa_budget_limit{source=\"configured\"}"), 15, "{m}");
    assert_eq!(metric(&m, "msp_psa_budget_limit{source=\"effective\"}"), 15, "{m}");
    assert_eq!(metric(&m, "msp_psa_budget_limit{source=\"server\"}"), 10_000, "{m}");
    running.stop().await?;
    Ok(())
}

/// Issue 12.6: a close note that gets a 503 is retried until it lands, and lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_note_that_fails_is_retried_and_added_once() -> Result<()> {
    let lab = Lab::start().await?;
    let running = start(&lab, RULES, &[]).await?;
    lab.ksc_host(1, "pc-5", "PC-5", &["databases_out_of_date"]).await?;
    let t = wait_tickets(&lab, 1, 30).await?;
    lab.autotask_fault(Some("POST"), "(?i)/notes$", 503, json!({"errors": ["busy"]}), 3, 0).await?;
    lab.ksc_host(1, "pc-5", "PC-5", &[]).await?;
    let notes = eventually(40, "the close note", || async {
        let v = lab.control(&lab.autotask, reqwest::Method::GET, "/_sim/notes", Value::Null).await?;
        let n: Vec<Value> =
            v.as_array().cloned().unwrap_or_default().into_iter().filter(|n| n["ticketID"] == t[0]["id"]).collect();
        Ok((!n.is_empty()).then_some(n))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let v = lab.control(&lab.autotask, reqwest::Method::GET, "/_sim/notes", Value::Null).await?;
    let all: Vec<&Value> = v.as_array().into_iter().flatten().filter(|n| n["ticketID"] == t[0]["id"]).collect();
    assert_eq!(all.len(), 1, "one note, not two: {all:#?}");
    assert!(notes[0]["description"].as_str().unwrap_or_default().contains("no longer applies"));
    assert_eq!(lab.tickets().await?[0]["status"], 5);
    running.stop().await?;
    Ok(())
}

/// Issue 12.6: a create the PSA refuses (its queue was deleted in the PSA) is kept as failed
/// with the PSA's message, counted, listed by `GET /api/ledger?state=failed`, blocks no other
/// ticket, and is created once an operator fixes the PSA and asks for a retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_create_is_visible_and_recoverable() -> Result<()> {
    let lab = Lab::start().await?;
    let running = start(&lab, RULES, &[]).await?;
    let catalog = eventually(20, "the catalog", || async { Ok(running.shared.catalog()) }).await?;
    let queue = catalog.resolve(Field::Queue, "Monitoring Alert").expect("the default queue").0;
    lab.control(
        &lab.autotask,
        reqwest::Method::POST,
        "/_sim/picklist",
        json!({"field": "queueID", "value": queue.to_string(), "remove": true}),
    )
    .await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", h(1), "refused one").await?;
    let failed = eventually(20, "the refused create", || async {
        let v = admin(&running, reqwest::Method::GET, "/api/ledger?state=failed", None).await?;
        Ok((v["count"] == 1).then_some(v))
    })
    .await?;
    let reason = failed["entries"][0]["state"]["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("queueID"), "the PSA's message: {reason}");
    let m = metrics(&running).await?;
    assert_eq!(metric(&m, "msp_tickets_failed_total{reason=\"invalid\"}"), 1, "{m}");
    // The operator fixes the PSA; meanwhile other tickets are not held up by the failed one.
    lab.control(
        &lab.autotask,
        reqwest::Method::POST,
        "/_sim/picklist",
        json!({"field": "queueID", "value": queue.to_string(), "label": "Monitoring Alert"}),
    )
    .await?;
    lab.kbh_event(json!({ "company": KBH_COMPANY, "product": "kes_cloud", "severity": "functional_failure", "device": "d-1", "text": "task failed" })).await?;
    wait_tickets(&lab, 1, 20).await?;
    let r = admin(&running, reqwest::Method::POST, "/api/ledger/retry", Some(json!({"all_failed": true}))).await?;
    assert_eq!(r["requested"], 1);
    let tickets = wait_tickets(&lab, 2, 20).await?;
    assert!(tickets.iter().any(|t| t["description"].as_str().unwrap_or_default().contains("refused one")));
    let v = admin(&running, reqwest::Method::GET, "/api/ledger?state=failed", None).await?;
    assert_eq!(v["count"], 0);
    running.stop().await?;
    Ok(())
}

/// Issue 15: the reads that finish together are committed as one transaction (one fsync for
/// the lot, not one per tenant), and the grouping loses nothing: every tenant's problem gets
/// exactly one ticket, and a restart creates none again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_that_finish_together_share_one_commit_and_each_problem_gets_one_ticket() -> Result<()> {
    const TENANTS: i64 = 12;
    let lab = Lab::start().await?;
    let mut mapping = String::new();
    for id in 100..100 + TENANTS {
        let vs = json!({ "id": id, "name": format!("Group {id}") });
        lab.control(&lab.ksc, reqwest::Method::POST, "/_sim/vservers", vs).await?;
        lab.ksc_host(id, &format!("g-{id}"), &format!("GROUP-PC-{id}"), &["databases_out_of_date"]).await?;
        mapping.push_str(&format!("[[mapping]]\ntenant = \"ksc:demo/vs:{id}\"\naccount_id = {ACME}\n"));
    }
    // Every Security Center call takes 200 ms: the tenants' reads run side by side and end
    // together, as they do under load.
    let slow = json!({ "status": 0, "count": 1_000_000, "delay_ms": 200 });
    lab.control(&lab.ksc, reqwest::Method::POST, "/_sim/faults", slow).await?;
    let running = start(&lab, &format!("{RULES}\n{mapping}"), &[]).await?;
    let tickets = wait_tickets(&lab, TENANTS as usize, 60).await?;
    let commits = metric(&metrics(&running).await?, "msp_store_commits_total ");
    println!("{} tickets after {commits} commits", tickets.len());
    // One commit per read would be 2 per tenant (its first event cursor and its plan) plus the
    // answers; grouped, the first pass takes a few.
    assert!(commits < TENANTS as u64, "{commits} commits for {TENANTS} tenants' first reads");
    let titles = |tickets: &[Value]| -> Vec<String> {
        let mut t: Vec<String> = tickets
            .iter()
            .filter_map(|t| t["title"].as_str())
            .filter(|t| t.contains("GROUP-PC-"))
            .map(str::to_owned)
            .collect();
        t.sort();
        t
    };
    let first = titles(&tickets);
    assert_eq!(first.len(), TENANTS as usize, "one ticket per tenant: {first:#?}");
    assert!(first.windows(2).all(|w| w[0] != w[1]), "no tenant twice: {first:#?}");
    running.kill().await;

    let finds = || async {
        let v = lab.control(&lab.ksc, reqwest::Method::GET, "/_sim/requests", Value::Null).await?;
        let n = v.as_array().map_or(0, |a| {
            a.iter().filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("HostGroup.FindHosts"))).count()
        });
        anyhow::Ok(n)
    };
    let before = finds().await?;
    let running = start(&lab, &format!("{RULES}\n{mapping}"), &[]).await?;
    // Two full passes over every tenant after the restart (nothing changed: no commit at all).
    let tenants = TENANTS as usize + 2;
    eventually(60, "two passes after the restart", || async {
        Ok((finds().await? >= before + 2 * tenants).then_some(()))
    })
    .await?;
    assert_eq!(titles(&lab.tickets().await?), first, "nothing created again after the restart");
    assert_eq!(creates(&lab).await?, tickets.len(), "one create per ticket");
    running.kill().await;
    Ok(())
}
