//! The daemon against its sources as real deployments run them: Security Center events that
//! arrive late (an offline laptop), cursors stored by an older version, a Security Center
//! server with its own self-signed certificate pinned, and Autotask zone discovery.

mod support;

use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use msp_ticketd::demo::Lab;
use msp_ticketd::service::{self, StartOptions};
use msp_ticketd::store::{Commit, CursorKey, SqliteStore, Store};
use serde_json::json;
use support::*;
use ticketing_core::ports::Cursor;

const RULES: &str = r#"
[rules.rows."security_center/event/critical"]
enabled = true
"#;

fn h(n: i64) -> chrono::Duration {
    chrono::Duration::hours(n)
}

fn descriptions(tickets: &[serde_json::Value]) -> Vec<String> {
    tickets.iter().map(|t| t["description"].as_str().unwrap_or_default().to_owned()).collect()
}

/// Issue 12.1: an event that reaches the Security Center server late, with its original rise
/// time, is ticketed when it is inside the lifetime (1 h and 23 h old) and not when it is
/// outside (25 h); across a restart nothing is ticketed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_security_center_events_are_ticketed_within_their_lifetime() -> Result<()> {
    let lab = Lab::start().await?;
    let first = start(&lab, RULES, &[]).await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-a", chrono::Duration::zero(), "event A, on time").await?;
    wait_tickets(&lab, 1, 20).await?;
    // The daemon has polled past A; now a laptop delivers what it saw while offline.
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "laptop", h(1), "late B, 1 h old").await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "laptop", h(23), "late C, 23 h old").await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "laptop", h(25), "late D, 25 h old").await?;
    let tickets = wait_tickets(&lab, 3, 20).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = descriptions(&lab.tickets().await?);
    assert_eq!(all.len(), 3, "{all:#?}");
    for want in ["event A", "late B", "late C"] {
        assert!(all.iter().any(|d| d.contains(want)), "{want} ticketed: {all:#?}");
    }
    assert!(!all.iter().any(|d| d.contains("late D")), "a 25 h old event is outside the lifetime");
    first.stop().await?;
    // A restart reads on from the stored cursor: nothing again.
    let second = start(&lab, RULES, &[]).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(lab.tickets().await?.len(), tickets.len());
    second.stop().await?;
    let store = SqliteStore::open(&lab.store_path())?;
    let cursor = store.cursor(&CursorKey { source: "ksc:demo/events".into(), tenant: "ksc:demo/vs:1".into() })?;
    assert!(cursor.is_some_and(|c| c.0.starts_with("dbid:")), "the cursor is an event_db_id mark");
    Ok(())
}

/// Issue 12.1: a cursor stored by the previous version (a rise time and the ids seen in the
/// overlap) is migrated: the events after it are ticketed once, those before it never again,
/// and the stored cursor becomes an `event_db_id` mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_of_the_old_form_migrates_without_loss_or_repeats() -> Result<()> {
    let lab = Lab::start().await?;
    // Two events the old version had already handed on (and ticketed, in a store now lost
    // for the ledger part: only its cursor is kept, so a repeat would show as a new ticket).
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", h(3), "old one").await?;
    let e2 = lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-2", h(2), "old two").await?;
    let id = |v: &serde_json::Value| v["event_db_id"].as_i64().or_else(|| v["id"].as_i64()).expect("an event_db_id");
    let at2 = (Utc::now() - h(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let legacy = json!({ "v": 1, "rise_time": at2, "seen": [{ "id": id(&e2), "at": at2 }] }).to_string();
    {
        let store = SqliteStore::open(&lab.store_path())?;
        let key = CursorKey { source: "ksc:demo/events".into(), tenant: "ksc:demo/vs:1".into() };
        store.commit(&Commit { cursors: vec![(&key, &Cursor(legacy))], ..Commit::default() })?;
    }
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-3", h(1), "new three").await?;
    let running = start(&lab, RULES, &[]).await?;
    wait_tickets(&lab, 1, 20).await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-4", chrono::Duration::zero(), "new four").await?;
    wait_tickets(&lab, 2, 20).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = descriptions(&lab.tickets().await?);
    assert_eq!(all.len(), 2, "only the events after the old cursor: {all:#?}");
    assert!(all.iter().any(|d| d.contains("new three")) && all.iter().any(|d| d.contains("new four")));
    running.stop().await?;
    let store = SqliteStore::open(&lab.store_path())?;
    let cursor = store.cursor(&CursorKey { source: "ksc:demo/events".into(), tenant: "ksc:demo/vs:1".into() })?;
    assert!(cursor.is_some_and(|c| c.0.starts_with("dbid:")), "migrated to an event_db_id mark");
    Ok(())
}

/// Issues 12.8 and 14: a Security Center server whose own certificate is self-signed and
/// marked CA:TRUE (what `openssl req -x509` makes) is reached by pinning that certificate,
/// by file and by SHA-256 fingerprint, with the host name still checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_reaches_a_tls_security_center_with_its_certificate_pinned() -> Result<()> {
    let lab = Lab::start().await?;
    let tls = simulators::ksc::TlsOptions { ca: true, hostnames: vec!["127.0.0.1".into(), "localhost".into()] };
    let (ksc, cert) =
        simulators::ksc::start_tls(([127, 0, 0, 1], 0).into(), simulators::ksc::Config::default(), &tls).await?;
    let control = reqwest::Client::builder().danger_accept_invalid_certs(true).build()?;
    control
        .post(format!("{}/_sim/vservers", ksc.base_url()))
        .json(&json!({ "id": 1, "name": "Acme Dental" }))
        .send()
        .await?
        .error_for_status()?;
    let pem = lab.dir.join("klserver.cer");
    std::fs::write(&pem, &cert.pem)?;
    let pins = [format!("ca_file = {:?}", pem.display().to_string()), format!("cert_sha256 = {:?}", cert.sha256)];
    for (i, pin) in pins.into_iter().enumerate() {
        let mut toml = lab.config_toml(RULES, "127.0.0.1:0");
        let plain = format!("url = \"{}\"", lab.ksc.base_url());
        assert!(toml.contains(&plain));
        toml = toml.replace(&plain, &format!("url = \"{}\"\n{pin}", ksc.base_url()));
        let config = msp_ticketd::config::Config::parse(&toml, "tls.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
        let running = service::start_with(&config, StartOptions::every(TICK)).await?;
        let at = (Utc::now() - h(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        control
            .post(format!("{}/_sim/events", ksc.base_url()))
            .json(&json!({ "vserver": 1, "severity": "critical", "event_type": "GNRL_EV_VIRUS_FOUND",
                           "display_name": "Malicious object detected", "host": "pc-1", "occurred_at": at, "text": pin }))
            .send()
            .await?
            .error_for_status()?;
        let tickets = wait_tickets(&lab, i + 1, 20).await?;
        assert!(descriptions(&tickets).iter().any(|d| d.contains(&pin)), "{pin}");
        running.stop().await?;
    }
    Ok(())
}

/// Issue 14: without `base_url` the daemon discovers its Autotask zone through
/// `zoneInformation` at `autotask.discovery_url`, end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_discovers_its_autotask_zone() -> Result<()> {
    let lab = Lab::start().await?;
    let mut toml = lab.config_toml(RULES, "127.0.0.1:0");
    let base = format!("base_url = \"{}\"", lab.autotask.base_url());
    assert!(toml.contains(&base));
    toml = toml.replace(&base, &format!("discovery_url = \"{}/atservicesrest\"", lab.autotask.base_url()));
    let config = msp_ticketd::config::Config::parse(&toml, "discovery.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(config.autotask.as_ref().is_some_and(|a| a.base_url.is_none()));
    let running = service::start_with(&config, StartOptions::every(TICK)).await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", h(1), "virus").await?;
    wait_tickets(&lab, 1, 20).await?;
    let zone = lab
        .autotask_requests()
        .await?
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or_default().to_lowercase().ends_with("/zoneinformation"))
        .count();
    assert!(zone >= 1, "the zone was discovered");
    running.stop().await?;
    Ok(())
}
