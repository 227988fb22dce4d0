//! The third PSA backend end to end: `msp-ticketd run` as a process with `[psa] kind =
//! "halopsa"` against `halo-sim` and the Security Center simulator. The first ticket create is
//! processed but its answer is lost (504), the daemon is SIGKILLed while tickets are being
//! created and started again on the same store; at the end every problem has exactly one
//! ticket in Halo (found again by its reference line, never created twice), and a cleared
//! status closes its ticket with Halo's "Closed" status and one private note.

mod process;
#[path = "../../../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use msp_ticketd::demo::{Lab, Psa, is_closed};
use serde_json::{Value, json};
use support::{eventually, free_port};

const RULES: &str = r#"
[rules.rows."security_center/event/critical"]
enabled = true
[rules.rows."security_center/status/warning/databases_out_of_date"]
enabled = true
"#;

/// Tickets of the simulator by the idempotency key of their reference line.
fn by_key(tickets: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for t in tickets {
        let details = t["details"].as_str().unwrap_or_default();
        let key = details
            .split("<br>")
            .find_map(|l| l.trim().strip_prefix("msp-ticketing ref: "))
            .unwrap_or("(no reference line)")
            .to_owned();
        *m.entry(key).or_default() += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_and_a_killed_daemon_make_no_duplicate_halo_ticket() -> Result<()> {
    let lab = Lab::start_with(Psa::Halopsa).await?;
    let admin = format!("127.0.0.1:{}", free_port()?);
    let mut toml = lab.config_toml(RULES, &admin);
    support::set_keys(&mut toml, &[("polling.events_secs", "1"), ("polling.statuses_secs", "1")]);
    let config = lab.dir.join("halopsa.toml");
    std::fs::write(&config, &toml)?;
    let log = lab.dir.join("msp-ticketd.log");
    assert_eq!(
        msp_ticketd::config::Config::parse(&toml, "halopsa.toml").map_err(|e| anyhow::anyhow!("{e}"))?.psa_kind(),
        "halopsa"
    );

    // The first create lands in Halo, but its answer never comes back.
    lab.control(
        &lab.halopsa,
        reqwest::Method::POST,
        "/_sim/lose_answers",
        json!({"method": "POST", "path_regex": "(?i)/api/tickets$", "status": 504}),
    )
    .await?;
    let h = chrono::Duration::hours;
    for i in 0..6 {
        lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", &format!("pc-{i}"), h(1), "virus").await?;
    }
    lab.ksc_host(1, "pc-db", "PC-DB", &["databases_out_of_date"]).await?;

    let mut d = process::Daemon::spawn(&config, &log)?;
    // Kill it as soon as the first tickets are in Halo, with the rest still to come.
    eventually(60, "a first ticket", || async { Ok((!lab.tickets().await?.is_empty()).then_some(())) }).await?;
    d.kill()?;
    let at_kill = lab.tickets().await?.len();

    // Restart on the same store; a few more events arrive meanwhile.
    for i in 6..9 {
        lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", &format!("pc-{i}"), h(1), "virus").await?;
    }
    let _d = process::Daemon::spawn(&config, &log)?;
    let tickets = eventually(60, "ten tickets", || async {
        let t = lab.tickets().await?;
        Ok((t.len() >= 10).then_some(t))
    })
    .await
    .with_context(|| std::fs::read_to_string(&log).unwrap_or_default())?;

    // The databases are updated: that ticket closes with Halo's Closed, with one note.
    lab.ksc_host(1, "pc-db", "PC-DB", &[]).await?;
    let closed = eventually(30, "the status ticket closed", || async {
        let t = lab.tickets().await?;
        Ok(t.into_iter().find(|t| is_closed(Psa::Halopsa, t)))
    })
    .await?;
    assert!(closed["summary"].as_str().unwrap_or_default().contains("Databases are out of date"), "{closed}");
    // The host is not read once it is OK (only hosts with problems are, #29): its close record
    // still names the computer, not its id.
    let why = support::decisions(&admin, "outcome=closed&device=pc-db").await?;
    let text = why.to_string();
    assert!(text.contains("\"device_name\":\"PC-DB\""), "the close record names the computer: {text}");
    let note = closed["id"].as_i64().unwrap_or_default();
    let notes = eventually(30, "the close note", || async {
        let v = lab.control(&lab.halopsa, reqwest::Method::GET, "/_sim/actions", Value::Null).await?;
        let n: Vec<Value> =
            v.as_array().cloned().unwrap_or_default().into_iter().filter(|a| a["ticket_id"] == note).collect();
        Ok((!n.is_empty()).then_some(n))
    })
    .await?;

    // Quiet for a while: nothing more may appear.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = lab.tickets().await?;
    let keys = by_key(&after);
    assert_eq!(after.len(), 10, "nine events and one status, {at_kill} of them before the kill: {keys:#?}");
    assert!(keys.values().all(|n| *n == 1), "no key has two tickets: {keys:#?}");
    assert!(keys.keys().all(|k| k.starts_with("kmsp-")), "{keys:#?}");
    assert_eq!(tickets.iter().filter(|t| is_closed(Psa::Halopsa, t)).count(), 0, "nothing closed before the clear");
    assert_eq!(after.iter().filter(|t| is_closed(Psa::Halopsa, t)).count(), 1, "only the cleared status closes");
    assert_eq!(notes.len(), 1, "one close note: {notes:#?}");
    assert_eq!(notes[0]["hiddenfromuser"], true, "a private note");

    // The lost answer was looked up (search by the key), not created again.
    let journal = lab.control(&lab.halopsa, reqwest::Method::GET, "/_sim/requests", Value::Null).await?;
    let searched =
        journal.as_array().into_iter().flatten().any(|r| {
            r["method"] == "GET" && r["path"].as_str().is_some_and(|p| p.eq_ignore_ascii_case("/api/Tickets"))
        });
    assert!(searched, "a search after the lost answer: {journal:#}");
    Ok(())
}
