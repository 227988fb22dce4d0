//! Readiness with sources that have no tenants yet (issue #32): a Business Hub without
//! companies and a Security Center without virtual servers are reached, not failing, so
//! `/readyz` answers 200 ("reached, no tenants yet"); a listing that fails still names its
//! source; a tenant added later is read and ticketed as before.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use anyhow::{Context as _, Result};
use msp_ticketd::demo::{DEMO_RULES, KBH_COMPANY, Lab};
use serde_json::{Value, json};
use support::{eventually, set_keys};

/// The polling interval of this test's daemon (events and statuses): readiness is due within
/// three of them.
const POLL_SECS: u64 = 2;

/// A lab whose Security Center and Business Hub have no tenants at all.
async fn empty_lab() -> Result<Lab> {
    let lab = Lab::start().await?;
    for sim in [&lab.ksc, &lab.kbh] {
        lab.control(sim, reqwest::Method::POST, "/_sim/reset", json!({})).await?;
    }
    Ok(lab)
}

async fn start(lab: &Lab) -> Result<msp_ticketd::service::Running> {
    let mut toml = lab.config_toml(DEMO_RULES, "127.0.0.1:0");
    let poll = POLL_SECS.to_string();
    set_keys(
        &mut toml,
        &[("polling.events_secs", &poll), ("polling.statuses_secs", &poll), ("polling.catalog_secs", &poll)],
    );
    let config = msp_ticketd::config::Config::parse(&toml, "readiness.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    msp_ticketd::service::start(&config, support::TICK, None).await
}

async fn readyz(running: &msp_ticketd::service::Running) -> Result<(u16, Value)> {
    let addr = running.admin_addr.context("admin")?;
    let resp = reqwest::get(format!("http://{addr}/readyz")).await?;
    Ok((resp.status().as_u16(), resp.json().await?))
}

fn sources(body: &Value) -> Vec<(String, bool, String)> {
    body["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"].as_str().is_some_and(|n| n.starts_with("source:")))
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["ok"].as_bool().unwrap_or(false),
                c["detail"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_without_tenants_are_ready_and_a_tenant_added_later_is_ticketed() -> Result<()> {
    let lab = empty_lab().await?;
    let running = start(&lab).await?;
    let body = eventually(3 * POLL_SECS, "ready with no tenants", || async {
        let (code, body) = readyz(&running).await?;
        Ok((code == 200).then_some(body))
    })
    .await?;
    let srcs = sources(&body);
    assert!(srcs.len() >= 5, "every stream of both sources is checked: {srcs:?}");
    for (name, ok, detail) in &srcs {
        assert!(ok, "{name}: {detail}");
        assert!(detail.starts_with("reached, no tenants yet"), "{name}: {detail}");
    }

    // A company arrives (mapped in the lab's configuration): read and ticketed as before.
    lab.control(
        &lab.kbh,
        reqwest::Method::POST,
        "/_sim/companies",
        json!({ "id": KBH_COMPANY, "name": "Acme Corp (cloud)", "products": ["kes_cloud", "ksmo365"] }),
    )
    .await?;
    lab.kbh_device("dev-new", "PC-NEW", &["license_expired"]).await?;
    eventually(10 * POLL_SECS, "the new tenant's ticket", || async {
        let t = lab.tickets().await?;
        Ok(t.iter().any(|t| t.to_string().contains("PC-NEW")).then_some(()))
    })
    .await?;
    let (code, body) = readyz(&running).await?;
    assert_eq!(code, 200, "{body}");
    let cloud = sources(&body).into_iter().find(|(n, _, _)| n == "source:kbh/endpoint_cloud/statuses");
    let (_, ok, detail) = cloud.context("the cloud status stream is checked")?;
    assert!(ok && detail.starts_with("last read"), "read as a tenant now: {detail}");
    running.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_hub_failing_its_listing_keeps_readyz_at_503_naming_it() -> Result<()> {
    let lab = empty_lab().await?;
    lab.control(
        &lab.kbh,
        reqwest::Method::POST,
        "/_sim/faults",
        json!({ "method": "GET", "path_regex": "^/api/v1/companies$", "status": 503, "body": {"error": {"code": "unavailable", "message": "maintenance"}}, "count": 100000, "delay_ms": 0 }),
    )
    .await?;
    let running = start(&lab).await?;
    // Security Center (reached, empty) becomes ready; Business Hub never does.
    let body = eventually(3 * POLL_SECS + 5, "Security Center reached", || async {
        let (code, body) = readyz(&running).await?;
        assert_eq!(code, 503, "{body}");
        let srcs = sources(&body);
        let ksc_ok = srcs.iter().filter(|(n, _, _)| n.starts_with("source:ksc")).all(|(_, ok, _)| *ok);
        Ok((ksc_ok && !srcs.is_empty()).then_some(body))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(POLL_SECS)).await;
    let (code, body_now) = readyz(&running).await?;
    assert_eq!(code, 503, "{body_now}");
    let failing: Vec<_> = sources(&body_now).into_iter().filter(|(_, ok, _)| !ok).collect();
    assert!(!failing.is_empty(), "{body}");
    for (name, _, detail) in &failing {
        assert!(name.starts_with("source:kbh/"), "only Business Hub fails: {name}: {detail}");
        assert!(detail.contains("no successful read yet"), "{name}: {detail}");
    }
    running.stop().await?;
    Ok(())
}

/// `check` against the same empty sources says so, as a warning, not a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_says_a_source_without_tenants_is_reached() -> Result<()> {
    let lab = empty_lab().await?;
    let path = lab.dir.join("check.toml");
    std::fs::write(&path, lab.config_toml(DEMO_RULES, "127.0.0.1:0"))?;
    let report = msp_ticketd::check::check(&path, &msp_ticketd::check::Options::new(false)).await;
    let sources: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.key.contains("security_center") || p.key.contains("business_hub"))
        .collect();
    assert!(!sources.is_empty(), "{}", report.render());
    for p in &sources {
        assert!(!p.is_error(), "a source without tenants is no error: {}", report.render());
        assert!(p.reason.starts_with("reached, no tenants yet"), "{p}");
    }
    Ok(())
}
