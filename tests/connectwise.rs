//! The guide's rules against the second PSA backend: the real daemon with `[psa] kind =
//! "connectwise"`, the Security Center and Business Hub simulators and `cw-sim`, over real HTTP.
//! What a technician would see is checked in ConnectWise's tickets: board, priority, due time,
//! type, status, the board's closed status on clear, and nothing else closing.

mod support;

use std::time::Duration;

use anyhow::Result;
use msp_ticketd::demo::{Lab, Psa, is_closed};
use msp_ticketd::service::{self, StartOptions};
use serde_json::Value;
use support::*;

const RULES: &str = r#"
[rules.rows."security_center/event/critical"]
enabled = true
[rules.rows."security_center/event/warning"]
enabled = true
queue = "Help Desk"
priority = "High"
due_hours = 6
issue_type = "Security"
[rules.rows."security_center/status/warning/databases_out_of_date"]
enabled = true
[rules.rows."security_center/status/warning/many_viruses_detected"]
enabled = true
[rules.rows."office365/event/license_issue"]
enabled = true
"#;

fn find<'a>(tickets: &'a [Value], part: &str) -> &'a Value {
    let hits: Vec<&Value> =
        tickets.iter().filter(|t| t["summary"].as_str().unwrap_or_default().contains(part)).collect();
    assert_eq!(hits.len(), 1, "exactly one ticket summarised like {part:?} in {tickets:#?}");
    hits[0]
}

fn hours_due(t: &Value) -> i64 {
    let due = time(&t["requiredDate"]);
    let entered = time(&t["_info"]["dateEntered"]);
    (due - entered).num_minutes().div_euclid(60) + i64::from((due - entered).num_minutes().rem_euclid(60) > 30)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_rules_are_visible_in_connectwise_tickets() -> Result<()> {
    let lab = Lab::start_with(Psa::Connectwise).await?;
    let config = msp_ticketd::config::Config::parse(&lab.config_toml(RULES, "127.0.0.1:0"), "cw.toml")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(config.psa_kind(), "connectwise");
    let running = service::start_with(&config, StartOptions::every(TICK)).await?;
    let h = chrono::Duration::hours;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", h(1), "virus").await?;
    lab.ksc_event(1, "warning", "GNRL_EV_OBJECT_BLOCKED", "pc-2", h(1), "blocked").await?;
    lab.ksc_host(1, "pc-5", "PC-5", &["databases_out_of_date", "many_viruses_detected"]).await?;
    lab.kbh_issue("license_issue", true).await?;
    let tickets = wait_tickets(&lab, 5, 30).await?;

    let crit = find(&tickets, "Critical event");
    assert_eq!(crit["board"]["name"], "Monitoring Alert");
    assert_eq!(crit["priority"]["name"], "Critical");
    assert_eq!(crit["status"]["name"], "New");
    assert_eq!(crit["company"]["name"], "Acme Corp");
    assert_eq!(hours_due(crit), 12, "{crit}");
    let warn = find(&tickets, "Warning event");
    assert_eq!(warn["board"]["name"], "Help Desk");
    assert_eq!(warn["priority"]["name"], "High");
    assert_eq!(warn["type"]["name"], "Security", "the rule's issue type is the board's type: {warn}");
    assert_eq!(hours_due(warn), 6, "{warn}");
    let dbs = find(&tickets, "Databases are out of date");
    assert_eq!(dbs["priority"]["name"], "Medium");
    assert_eq!(hours_due(dbs), 24, "{dbs}");
    let license = find(&tickets, "License-related");
    assert_eq!(license["priority"]["name"], "Critical");
    assert!(tickets.iter().all(|t| t["externalXRef"].as_str().is_some_and(|x| x.starts_with("kmsp-"))));

    // The databases are updated (the computer stays Warning), the license issue is resolved:
    // those two close with the board's closed status; nothing else closes.
    lab.ksc_host(1, "pc-5", "PC-5", &["many_viruses_detected"]).await?;
    lab.kbh_issue("license_issue", false).await?;
    let closed = eventually(30, "two closes", || async {
        let t = lab.tickets().await?;
        let closed: Vec<Value> = t.into_iter().filter(|t| is_closed(Psa::Connectwise, t)).collect();
        Ok((closed.len() >= 2).then_some(closed))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let after = lab.tickets().await?;
    assert_eq!(after.iter().filter(|t| is_closed(Psa::Connectwise, t)).count(), 2, "{after:#?}");
    for t in &closed {
        assert_eq!(t["status"]["name"], "Completed", "{t}");
        assert!(t["id"] == dbs["id"] || t["id"] == license["id"]);
    }
    // The Ticketing tab names the fields as ConnectWise does: Board, not Queue.
    let addr = running.admin_addr.expect("admin listener");
    let ui = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let login =
        ui.post(format!("http://{addr}/ui/login")).form(&[("token", msp_ticketd::demo::ADMIN_TOKEN)]).send().await?;
    let cookie =
        login.headers()[reqwest::header::SET_COOKIE].to_str()?.split(';').next().unwrap_or_default().to_owned();
    let page = ui
        .get(format!("http://{addr}/ui/section?s=events/security_center"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await?
        .text()
        .await?;
    assert!(page.contains(">Board</th>") && !page.contains(">Queue</th>"), "{page}");
    running.stop().await?;
    Ok(())
}
