//! Reloading the configuration while the daemon runs: `SIGHUP` to the real `msp-ticketd run`
//! process and `POST /api/reload`. A valid file takes effect; an invalid one changes nothing and
//! every problem is reported; what needs a restart is refused; a source removed and added back
//! across reloads loses and duplicates nothing.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result};
use msp_ticketd::demo::{ADMIN_TOKEN, KBH_COMPANY, Lab};
use msp_ticketd::service::{self, StartOptions};
use serde_json::{Value, json};
use support::{by_external_id, eventually, free_port, metric};

const RULES: &str = r#"
[rules.rows."security_center/event/critical"]
enabled = true
[rules.rows."endpoint_cloud/event/functional_failure"]
enabled = true
"#;

async fn admin(addr: &str, method: reqwest::Method, path: &str) -> Result<(reqwest::StatusCode, String)> {
    let resp =
        reqwest::Client::new().request(method, format!("http://{addr}{path}")).bearer_auth(ADMIN_TOKEN).send().await?;
    Ok((resp.status(), resp.text().await?))
}

fn hup(child: &Child) -> Result<()> {
    let ok = Command::new("kill").arg("-HUP").arg(child.id().to_string()).status()?.success();
    anyhow::ensure!(ok, "kill -HUP failed");
    Ok(())
}

/// The lab's configuration without `[[security_center]]` and its tenants' mappings (the
/// Business Hub stays), as an MSP would remove a server.
fn without_security_center(toml: &str) -> String {
    toml.split("\n\n")
        .filter(|block| {
            let b = block.trim_start();
            let server = b.starts_with("[[security_center]]");
            let its_mapping = b.starts_with("[[mapping]]") && b.contains("tenant = \"ksc:");
            !(server || its_mapping)
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log_of(path: &Path) -> String {
    let mut s = String::new();
    let _ = std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut s));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_valid_file_and_keeps_the_old_one_on_any_problem() -> Result<()> {
    let lab = Lab::start().await?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let config = lab.dir.join("msp-ticketd.toml");
    let log = lab.dir.join("daemon.log");
    let good = lab.config_toml(RULES, &addr);
    std::fs::write(&config, &good)?;
    let child = Command::new(env!("CARGO_BIN_EXE_msp-ticketd"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let daemon = Daemon(child);
    eventually(30, "the admin API", || async {
        Ok(admin(&addr, reqwest::Method::GET, "/healthz").await.ok().map(|_| ()))
    })
    .await?;

    // Valid: the unmapped "Walk-in Clinic" (vs:3) gets mapped to Acme Corp; its events are
    // ticketed from then on.
    let mapped = good.replace(
        "[[mapping]]\ntenant = \"ksc:demo/vs:2\"",
        "[[mapping]]\ntenant = \"ksc:demo/vs:3\"\naccount_name = \"Acme Corp\"\n\n[[mapping]]\ntenant = \"ksc:demo/vs:2\"",
    );
    assert_ne!(mapped, good);
    std::fs::write(&config, &mapped)?;
    hup(&daemon.0)?;
    eventually(20, "the reload", || async {
        let (_, m) = admin(&addr, reqwest::Method::GET, "/metrics").await?;
        Ok((metric(&m, "msp_config_reloads_total{result=\"ok\"}") == 1).then_some(()))
    })
    .await?;
    lab.ksc_event(3, "critical", "GNRL_EV_VIRUS_FOUND", "clinic-pc", chrono::Duration::hours(1), "clinic virus")
        .await?;
    eventually(20, "the newly mapped tenant's ticket", || async {
        Ok(lab
            .tickets()
            .await?
            .iter()
            .any(|t| t["description"].as_str().unwrap_or_default().contains("clinic virus"))
            .then_some(()))
    })
    .await?;

    // Invalid in three ways: nothing changes, every problem is logged, the API names them all.
    let broken = mapped
        .replace("events_secs = 1", "events_secs = 1\nbatch_size = 0")
        .replace(&format!("url = \"{}\"", lab.kbh.base_url()), "url = \"not a url\"")
        .replace("[polling]", "[polling]\nevnts_secs = 3");
    std::fs::write(&config, &broken)?;
    hup(&daemon.0)?;
    eventually(20, "the refused reload", || async {
        let (_, m) = admin(&addr, reqwest::Method::GET, "/metrics").await?;
        Ok((metric(&m, "msp_config_reloads_total{result=\"error\"}") == 1).then_some(()))
    })
    .await?;
    let text = log_of(&log);
    for needle in ["batch_size", "evnts_secs", "business_hub.url", "still running on the previous one"] {
        assert!(text.contains(needle), "the log names {needle}: {text}");
    }
    let (status, body) = admin(&addr, reqwest::Method::POST, "/api/reload").await?;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let body: Value = serde_json::from_str(&body)?;
    let problems = body["problems"].as_array().context("problems")?;
    assert!(problems.len() >= 3, "{body}");
    // Still running on the previous configuration: vs:3 still mapped, events still polled.
    lab.ksc_event(3, "critical", "GNRL_EV_VIRUS_FOUND", "clinic-pc", chrono::Duration::hours(1), "second clinic virus")
        .await?;
    eventually(20, "a ticket on the kept configuration", || async {
        Ok(lab
            .tickets()
            .await?
            .iter()
            .any(|t| t["description"].as_str().unwrap_or_default().contains("second clinic virus"))
            .then_some(()))
    })
    .await?;

    // What needs a restart is refused with a message saying so.
    let moved = mapped.replace("msp-ticketd.sqlite", "elsewhere.sqlite");
    std::fs::write(&config, &moved)?;
    let (status, body) = admin(&addr, reqwest::Method::POST, "/api/reload").await?;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("store.path cannot change while the daemon runs"), "{body}");
    drop(daemon);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_removed_and_added_back_across_reloads_loses_and_duplicates_nothing() -> Result<()> {
    let lab = Lab::start().await?;
    let path = lab.dir.join("msp-ticketd.toml");
    let full = lab.config_toml(RULES, "127.0.0.1:0");
    std::fs::write(&path, &full)?;
    let config = msp_ticketd::config::Config::parse(&full, "reload.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    let options = StartOptions { config_path: Some(path.clone()), ..StartOptions::every(Duration::from_millis(100)) };
    let running = service::start_with(&config, options).await?;
    let addr = running.admin_addr.expect("admin").to_string();
    let tickets = |n: usize| {
        let lab = &lab;
        async move {
            eventually(20, &format!("{n} tickets"), || async {
                let t = lab.tickets().await?;
                Ok((t.len() >= n).then_some(t))
            })
            .await
        }
    };
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", chrono::Duration::hours(1), "before").await?;
    tickets(1).await?;

    // Remove Security Center: Business Hub keeps flowing; Security Center events wait.
    std::fs::write(&path, without_security_center(&full))?;
    let (status, body) = admin(&addr, reqwest::Method::POST, "/api/reload").await?;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-2", chrono::Duration::hours(1), "while removed").await?;
    lab.kbh_event(json!({ "company": KBH_COMPANY, "product": "kes_cloud", "severity": "functional_failure", "device": "d-1", "text": "cloud one" })).await?;
    tickets(2).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(lab.tickets().await?.len(), 2, "the removed source is not polled");

    // Add it back: it resumes from its stored cursor, so the event raised meanwhile is
    // ticketed once and the first one not again.
    std::fs::write(&path, &full)?;
    let (status, body) = admin(&addr, reqwest::Method::POST, "/api/reload").await?;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let all = tickets(3).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all_now = lab.tickets().await?;
    assert_eq!(all_now.len(), 3, "{all:#?}");
    assert!(by_external_id(&all_now).values().all(|n| *n == 1));
    let (_, m) = admin(&addr, reqwest::Method::GET, "/metrics").await?;
    assert_eq!(metric(&m, "msp_config_reloads_total{result=\"ok\"}"), 2, "{m}");
    running.stop().await?;
    Ok(())
}
