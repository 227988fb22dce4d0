//! What an operator relies on (issue 18): `/readyz` goes red during a PSA outage and green
//! after it, and the UI says so; `msp-ticketd why` explains every decision in words; the
//! decisions API filters. The real daemon against the simulators over real HTTP.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};
use msp_ticketd::demo::{ADMIN_TOKEN, KBH_COMPANY, Lab};
use msp_ticketd::service::Running;
use serde_json::{Value, json};
use support::*;

const RULES: &str = r#"
[rules.rows."security_center/event/critical"]
enabled = true
[rules.rows."security_center/event/warning"]
enabled = true
lifetime_days = 3
[rules.rows."office365/event/license_issue"]
enabled = true
[rules.rows."endpoint_cloud/event/functional_failure"]
enabled = true
queue = "No Such Queue"
"#;

async fn get(running: &Running, path: &str, token: bool) -> Result<(u16, String)> {
    let addr = running.admin_addr.expect("admin listener");
    let mut req = reqwest::Client::new().get(format!("http://{addr}{path}"));
    if token {
        req = req.bearer_auth(ADMIN_TOKEN);
    }
    let resp = req.send().await?;
    Ok((resp.status().as_u16(), resp.text().await?))
}

/// A UI page, after logging in with the admin token.
async fn ui_page(running: &Running, path: &str) -> Result<String> {
    let addr = running.admin_addr.expect("admin listener");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let login = http.post(format!("http://{addr}/ui/login")).form(&[("token", ADMIN_TOKEN)]).send().await?;
    let cookie = login.headers()["set-cookie"].to_str()?.split(';').next().unwrap_or_default().to_owned();
    let resp = http.get(format!("http://{addr}{path}")).header("cookie", cookie).send().await?;
    anyhow::ensure!(resp.status().is_success(), "{path} answered {}", resp.status());
    Ok(resp.text().await?)
}

async fn readyz(running: &Running) -> Result<(u16, Value)> {
    let (code, body) = get(running, "/readyz", false).await?;
    Ok((code, serde_json::from_str(&body).with_context(|| format!("/readyz body {body}"))?))
}

fn check<'a>(ready: &'a Value, name: &str) -> &'a Value {
    ready["checks"].as_array().and_then(|c| c.iter().find(|c| c["name"] == name)).expect("the check is listed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_goes_red_during_a_psa_outage_and_green_after_and_the_ui_shows_it() -> Result<()> {
    let lab = Lab::start().await?;
    let running = start(&lab, RULES, &[]).await?;
    assert_eq!(get(&running, "/healthz", false).await?.0, 200, "the engine loop turns");
    let green = eventually(30, "/readyz green", || async {
        let (code, body) = readyz(&running).await?;
        Ok((code == 200).then_some(body))
    })
    .await?;
    assert_eq!(check(&green, "store")["ok"], true, "{green}");
    assert!(
        green["checks"].as_array().unwrap().iter().any(|c| c["name"].as_str().unwrap().starts_with("source:")),
        "each source is a check: {green}"
    );

    // The PSA goes down: every API request answers 503.
    lab.autotask_fault(None, ".*", 503, json!({"errors": ["Service unavailable"]}), 1_000_000, 0).await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", chrono::Duration::minutes(5), "virus").await?;
    let red = eventually(30, "/readyz red", || async {
        let (code, body) = readyz(&running).await?;
        Ok((code == 503).then_some(body))
    })
    .await?;
    let psa = check(&red, "psa");
    assert_eq!(psa["ok"], false, "{red}");
    assert!(psa["detail"].as_str().unwrap().contains("unreachable"), "{red}");
    assert_eq!(check(&red, "store")["ok"], true, "only the PSA is down: {red}");
    // The UI says so on every page.
    let page = ui_page(&running, "/ui/section?s=general").await?;
    assert!(page.contains("The PSA is unreachable"), "the PSA banner is shown: {page}");

    // The PSA is back: the create goes through and readiness turns green again.
    lab.control(&lab.autotask, reqwest::Method::DELETE, "/_sim/faults", Value::Null).await?;
    wait_tickets(&lab, 1, 60).await?;
    eventually(30, "/readyz green again", || async { Ok((readyz(&running).await?.0 == 200).then_some(())) }).await?;
    let page = ui_page(&running, "/ui/section?s=general").await?;
    assert!(!page.contains("The PSA is unreachable"), "the banner is gone once the PSA answers");
    running.stop().await?;
    Ok(())
}

/// `/metrics` comes from the metrics crate with build info, per-source success times, PSA
/// durations and process metrics; it needs the token unless `admin.metrics_auth = false`, and
/// then only from this machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_build_sources_durations_and_process_and_the_token_is_optional_on_loopback() -> Result<()> {
    let lab = Lab::start().await?;
    let guarded = start(&lab, RULES, &[]).await?;
    assert_eq!(get(&guarded, "/metrics", false).await?.0, 401, "the token is needed by default");
    guarded.stop().await?;

    let running = start(&lab, RULES, &[("admin.metrics_auth", "false")]).await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", chrono::Duration::minutes(5), "virus").await?;
    wait_tickets(&lab, 1, 30).await?;
    let text = eventually(20, "a source's success time", || async {
        let (code, text) = get(&running, "/metrics", false).await?;
        anyhow::ensure!(code == 200, "a loopback scraper reads /metrics without the token: {code} {text}");
        // The outbox gauge is sampled every tick: the create's answer shows at the next one.
        let settled = text.contains("msp_outbox_entries_by_state{state=\"planned\"} 0");
        Ok((settled && text.contains("msp_source_last_success_timestamp_seconds{source=")).then_some(text))
    })
    .await?;
    for part in [
        "msp_build_info{version=\"",
        "msp_psa_request_duration_seconds_count{op=\"create\"} 1",
        "msp_psa_request_duration_seconds_bucket{le=\"+Inf\",op=\"catalog\"}",
        "msp_outbox_entries_by_state{state=\"planned\"} 0",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_cpu_seconds_total ",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
    running.stop().await?;
    Ok(())
}

/// Log hygiene: a state that every refresh finds again (an inactive account, a rule that does
/// not resolve) is logged once, when it appears, not on every refresh. On the old main the
/// demo logged "account is inactive" 28 times in 12 minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeating_state_is_logged_when_it_changes_not_every_refresh() -> Result<()> {
    let lab = Lab::start().await?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let mut toml = lab.config_toml(RULES, &addr);
    set_keys(&mut toml, &[("polling.catalog_secs", "1")]);
    let config = lab.dir.join("hygiene.toml");
    std::fs::write(&config, &toml)?;
    let log = lab.dir.join("hygiene.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_msp-ticketd"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let refreshed = eventually(30, "five catalog refreshes", || async {
        let r = reqwest::Client::new().get(format!("http://{addr}/metrics")).bearer_auth(ADMIN_TOKEN).send().await;
        let Ok(r) = r else { return Ok(None) };
        let m = r.text().await?;
        Ok((metric(&m, "msp_psa_calls_total{op=\"catalog\",outcome=\"ok\"}") >= 5).then_some(()))
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    refreshed?;
    let text = std::fs::read_to_string(&log)?;
    let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("account is inactive"), 1, "{text}");
    assert_eq!(count("saved rules do not resolve"), 1, "{text}");
    Ok(())
}

fn why(config: &Path, subject: &[&str]) -> Result<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_msp-ticketd"))
        .arg("why")
        .arg("--config")
        .arg(config)
        .args(subject)
        .output()
        .context("running msp-ticketd why")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(out.status.success(), "why {subject:?} failed: {}{text}", String::from_utf8_lossy(&out.stderr));
    Ok(text)
}

fn id_of(v: &Value) -> String {
    v["id"].as_i64().map(|i| i.to_string()).or_else(|| v["id"].as_str().map(str::to_owned)).expect("an event id")
}

/// Every skip reason the core has, explained by `why` in words (and the ticketed case with its
/// ticket number), through the CLI on the running daemon's store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn why_explains_each_decision_in_words() -> Result<()> {
    let lab = Lab::start().await?;
    let config = lab.dir.join("why.toml");
    std::fs::write(&config, lab.config_toml(RULES, "127.0.0.1:0"))?;
    let running = start(&lab, RULES, &[]).await?;
    let m = chrono::Duration::minutes(5);
    let ticketed = lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", m, "virus").await?;
    let rule_off = lab.ksc_event(1, "functional_failure", "KLPRCI_TaskState", "pc-1", m, "task").await?;
    // Read (the Warning rule's 3-day lifetime widens the read window), but past the Critical
    // rule's 1-day lifetime.
    let stale = lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", chrono::Duration::hours(25), "old").await?;
    let inactive = lab.ksc_event(2, "critical", "GNRL_EV_VIRUS_FOUND", "pc-2", m, "virus").await?;
    let unmapped = lab.ksc_event(3, "critical", "GNRL_EV_VIRUS_FOUND", "pc-3", m, "virus").await?;
    let invalid = json!({ "company": KBH_COMPANY, "product": "kes_cloud", "severity": "functional_failure", "device": "d-1", "text": "task failed" });
    lab.kbh_event(invalid).await?;
    let license = json!({ "company": KBH_COMPANY, "product": "ksmo365", "event_type": "license_issue", "mailbox": "it@acme.example" });
    lab.kbh_event(license.clone()).await?;
    wait_tickets(&lab, 2, 30).await?;
    lab.kbh_event(license).await?;
    eventually(30, "eight decisions", || async {
        let all = running.shared.store.decisions(&msp_ticketd::store::DecisionQuery::default())?;
        Ok((all.len() >= 8).then_some(()))
    })
    .await?;

    let said = why(&config, &[&id_of(&ticketed)])?;
    assert!(said.contains("ticketed as ticket "), "{said}");
    assert!(said.contains(", open") && said.contains("rules revision"), "{said}");
    let said = why(&config, &[&id_of(&rule_off)])?;
    assert!(
        said.contains("not ticketed: the Kaspersky Security Center Functional failure events rule is off"),
        "{said}"
    );
    let said = why(&config, &[&id_of(&stale)])?;
    assert!(said.contains("not ticketed: the event is older than the rule's lifetime of 1 day"), "{said}");
    let said = why(&config, &[&id_of(&inactive)])?;
    assert!(said.contains("not ticketed: account Old Co is inactive in Autotask"), "{said}");
    let said = why(&config, &[&id_of(&unmapped)])?;
    assert!(said.contains("not ticketed: tenant ksc:demo/vs:3 is not mapped to a Autotask account"), "{said}");
    let said = why(&config, &[&format!("kbh:{KBH_COMPANY}"), "d-1"])?;
    assert!(said.contains("not ticketed: the rule does not resolve against Autotask's picklists"), "{said}");
    assert!(said.contains("No Such Queue"), "the problem is named: {said}");
    let all = running.shared.store.decisions(&msp_ticketd::store::DecisionQuery::default())?;
    let again: Vec<_> = all.iter().filter(|d| d.reason.as_deref() == Some("already_ticketed")).collect();
    assert_eq!(again.len(), 1, "{all:#?}");
    let said = why(&config, &[again[0].event_id.as_deref().unwrap()])?;
    assert!(said.contains("not ticketed again: this problem already has its ticket"), "{said}");
    let said = why(&config, &["no-such-event"])?;
    assert!(said.contains("no decision about event no-such-event"), "{said}");

    // The API filters the same records.
    let (code, body) = get(&running, "/api/decisions?outcome=skipped&tenant=ksc:demo/vs:1", true).await?;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body)?;
    let reasons: Vec<&str> = v["decisions"].as_array().unwrap().iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 2, "{v}");
    assert!(reasons.contains(&"rule_off") && reasons.contains(&"stale"), "{v}");
    let (code, body) = get(&running, "/api/decisions?outcome=maybe", true).await?;
    assert_eq!(code, 400);
    assert!(body.contains("outcome: unknown outcome `maybe`"), "{body}");
    running.stop().await?;
    Ok(())
}
