//! One live rule book: a save made with the CLI while the daemon runs takes effect in the
//! running daemon within one tick, and a writer holding an older revision gets a conflict, never
//! a silent overwrite: the CLI (exit code 3), the admin API (409) and the web UI ("changed
//! elsewhere", the user's edits kept).

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};
use msp_ticketd::demo::{ADMIN_TOKEN, Lab};
use msp_ticketd::service::{self, Running, StartOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::eventually;

const RULES: &str = r#"
[rules.rows."security_center/event/critical"]
enabled = true
"#;

async fn start(lab: &Lab) -> Result<(Running, PathBuf)> {
    let toml = lab.config_toml(RULES, "127.0.0.1:0");
    let path = lab.dir.join("msp-ticketd.toml");
    std::fs::write(&path, &toml)?;
    let config = msp_ticketd::config::Config::parse(&toml, "live.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((service::start_with(&config, StartOptions::every(Duration::from_millis(100))).await?, path))
}

/// Runs `msp-ticketd rules --config FILE ARGS…`; returns (exit code, stdout + stderr).
fn cli(config: &PathBuf, args: &[&str]) -> Result<(i32, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_msp-ticketd"))
        .arg("rules")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .context("running msp-ticketd")?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.code().unwrap_or(-1), text))
}

async fn api(
    running: &Running,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    if_match: Option<u64>,
) -> Result<(StatusCode, Value)> {
    let addr = running.admin_addr.expect("admin listener");
    let mut req = reqwest::Client::new().request(method, format!("http://{addr}{path}")).bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    if let Some(r) = if_match {
        req = req.header("If-Match", format!("\"{r}\""));
    }
    let resp = req.send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

async fn critical_due(running: &Running) -> Result<u64> {
    let (_, rules) = api(running, reqwest::Method::GET, "/api/rules", None, None).await?;
    rules["saved"]["rows"]["security_center/event/critical"]["due_hours"].as_u64().context("due_hours")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_save_while_the_daemon_runs_takes_effect_and_stale_writers_get_a_conflict() -> Result<()> {
    let lab = Lab::start().await?;
    let (running, config) = start(&lab).await?;
    eventually(20, "the catalog", || async { Ok(running.shared.catalog()) }).await?;
    assert_eq!(critical_due(&running).await?, 12);
    let (_, before) = api(&running, reqwest::Method::GET, "/api/rules", None, None).await?;
    let held = before["revision"].as_u64().context("revision")?;

    // The operator's CLI edit and save, on the store, while the daemon runs.
    let (code, out) = cli(&config, &["set", "security_center/event/critical", r#"{"due_hours":5}"#])?;
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(&config, &["save", "events/security_center"])?;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("saved events/security_center"), "{out}");
    // Within one tick (100 ms here) the running daemon uses it: its API shows it, and the next
    // ticket is due in 5 h.
    let started = std::time::Instant::now();
    eventually(5, "the daemon to take the CLI's save", || async {
        Ok((critical_due(&running).await? == 5).then_some(()))
    })
    .await?;
    println!("CLI save applied by the running daemon after {} ms", started.elapsed().as_millis());
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", chrono::Duration::hours(1), "virus").await?;
    let ticket = eventually(20, "a ticket", || async {
        let t = lab.tickets().await?;
        Ok(t.first().cloned())
    })
    .await?;
    let due = chrono::DateTime::parse_from_rfc3339(ticket["dueDateTime"].as_str().unwrap_or_default())?;
    let created = chrono::DateTime::parse_from_rfc3339(ticket["createDate"].as_str().unwrap_or_default())?;
    assert!(((due - created).num_seconds() - 5 * 3600).abs() <= 2, "{ticket}");

    // An API client holding the revision from before the CLI's save: 409 naming the section and
    // the newer revision; the CLI's save stands.
    let (status, body) = api(
        &running,
        reqwest::Method::POST,
        "/api/rules/bulk-edit",
        Some(json!({ "rows": ["security_center/event/critical"], "patch": { "due_hours": 9 } })),
        Some(held),
    )
    .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["section"], "events/security_center");
    assert!(body["revision"].as_u64().is_some_and(|r| r > held), "{body}");
    assert!(body["error"].as_str().unwrap_or_default().contains("changed elsewhere"), "{body}");
    assert_eq!(critical_due(&running).await?, 5);

    // The CLI with a stale --revision: exit code 3, the same message.
    let (code, out) = cli(&config, &["--revision", &held.to_string(), "reset", "events/security_center"])?;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("changed elsewhere") && out.contains("events/security_center"), "{out}");

    // The web UI: a page loaded before another writer's save is refused with "changed
    // elsewhere", and the user's edit is still in the form.
    let addr = running.admin_addr.expect("admin listener");
    let ui = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let base = format!("http://{addr}");
    let login = ui.post(format!("{base}/ui/login")).form(&[("token", ADMIN_TOKEN)]).send().await?;
    let cookie = login
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("a session cookie")?
        .to_owned();
    let page = ui
        .get(format!("{base}/ui/section?s=events/security_center"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await?
        .text()
        .await?;
    let grab = |name: &str| -> Result<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let at = page.find(&marker).with_context(|| format!("{name} in the page"))? + marker.len();
        Ok(page[at..].split('"').next().unwrap_or_default().to_owned())
    };
    let (csrf, page_revision) = (grab("csrf")?, grab("revision")?);
    let (code, out) = cli(&config, &["set", "security_center/event/warning", r#"{"due_hours":7}"#])?;
    assert_eq!(code, 0, "{out}");
    let row = "security_center/event/critical";
    let resp = ui
        .post(format!("{base}/ui/rows"))
        .header(reqwest::header::COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("section", "events/security_center"),
            ("revision", page_revision.as_str()),
            ("row", row),
            (&format!("enabled.{row}"), "on"),
            (&format!("due.{row}"), "33"),
        ])
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let html = resp.text().await?;
    assert!(html.contains("Changed elsewhere"), "{html}");
    assert!(html.contains("value=\"33\""), "the user's edit is still shown");
    // Nothing was applied: the draft keeps the CLI's due time.
    let (_, rules) = api(&running, reqwest::Method::GET, "/api/rules", None, None).await?;
    assert_eq!(rules["draft"]["rows"][row]["due_hours"], 5);
    running.stop().await?;
    Ok(())
}
