//! Load example: tickets per second through the simulators, and PSA calls per ticket
//! lifecycle, measured on the real daemon over real HTTP on loopback.
//!
//! Run with `cargo run --release -p msp-ticketd --example load -- [TICKETS]` (default 600).
//!
//! It raises TICKETS/2 events and TICKETS/2 computer-status descriptions across three Security
//! Center virtual servers and Business Hub, waits until every ticket exists in the Autotask
//! simulator, clears the statuses, waits until their tickets are closed, and reports the rates
//! and the Autotask simulator's request journal per ticket.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use msp_ticketd::demo::{KBH_COMPANY, Lab};
use msp_ticketd::service;
use serde_json::json;

const RULES: &str = r#"
[rules.rows."security_center/event/critical"]
enabled = true
[rules.rows."endpoint_cloud/event/critical"]
enabled = true
[rules.rows."security_center/status/warning/databases_out_of_date"]
enabled = true
"#;

async fn wait(
    lab: &Lab,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&[serde_json::Value]) -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if done(&lab.tickets().await?) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let total: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(600);
    let events = total / 2;
    let hosts = total - events;
    let lab = Lab::start().await?;
    // Give the vservers 1 and 3 a mapping too: all load goes to active accounts.
    let toml = lab.config_toml(RULES, "127.0.0.1:0").replace("events_secs = 1", "events_secs = 1\nbatch_size = 500");
    let config = msp_ticketd::config::Config::parse(&toml, "load.toml").map_err(|e| anyhow::anyhow!("{e}"))?;

    // Seed everything first, so the daemon sees a backlog (the realistic worst case after an
    // outage), then start it and time how long the backlog takes to turn into tickets.
    for i in 0..events {
        if i % 2 == 0 {
            lab.ksc_event(
                1,
                "critical",
                "GNRL_EV_VIRUS_FOUND",
                &format!("pc-{i}"),
                chrono::Duration::minutes(10),
                "load",
            )
            .await?;
        } else {
            lab.kbh_event(json!({ "company": KBH_COMPANY, "product": "kes_cloud", "severity": "critical", "device": format!("d-{i}") })).await?;
        }
    }
    for i in 0..hosts {
        lab.ksc_host(1, &format!("host-{i}"), &format!("HOST-{i}"), &["databases_out_of_date"]).await?;
    }
    let started = Instant::now();
    let running = service::start(&config, Duration::from_millis(50), None).await?;
    wait(&lab, "all tickets", Duration::from_secs(600), |t| t.len() >= total).await?;
    let created_in = started.elapsed();

    for i in 0..hosts {
        lab.ksc_host(1, &format!("host-{i}"), &format!("HOST-{i}"), &[]).await?;
    }
    let closing = Instant::now();
    wait(&lab, "all closes", Duration::from_secs(600), |t| t.iter().filter(|t| t["status"] == 5).count() >= hosts)
        .await?;
    let closed_in = closing.elapsed();

    let tickets = lab.tickets().await?;
    let mut calls: BTreeMap<String, usize> = BTreeMap::new();
    for r in lab.autotask_requests().await? {
        let method = r["method"].as_str().unwrap_or("").to_owned();
        let path = r["path"].as_str().unwrap_or("").to_ascii_lowercase();
        let path = path.split("/v1.0/").nth(1).unwrap_or(&path).to_owned();
        let entity = path.split('/').next().unwrap_or("").to_owned();
        let shape = if path.ends_with("/notes") {
            "Tickets/{id}/Notes".to_owned()
        } else if path.contains("entityinformation") {
            format!("{entity}/entityInformation")
        } else {
            path.clone()
        };
        *calls.entry(format!("{method} {shape}")).or_default() += 1;
    }
    running.stop().await?;
    let n = tickets.len();
    println!("tickets created: {n} ({events} events, {hosts} status descriptions)");
    println!(
        "  backlog to tickets: {:.2} s, {:.0} tickets/s",
        created_in.as_secs_f64(),
        n as f64 / created_in.as_secs_f64()
    );
    println!(
        "  status tickets closed: {hosts} in {:.2} s, {:.0} closes/s",
        closed_in.as_secs_f64(),
        hosts as f64 / closed_in.as_secs_f64()
    );
    println!("Autotask requests:");
    let mut per_ticket = 0usize;
    for (k, v) in &calls {
        println!("  {v:>6}  {k}");
        per_ticket += v;
    }
    let creates = calls.get("POST tickets").copied().unwrap_or(0);
    let closes = calls.get("PATCH tickets").copied().unwrap_or(0);
    println!(
        "per ticket lifecycle: {:.3} creates, {:.3} closes per status ticket, {:.3} requests of any kind per ticket",
        creates as f64 / n as f64,
        closes as f64 / hosts.max(1) as f64,
        per_ticket as f64 / n as f64
    );
    Ok(())
}
