//! Mapping tenants in the product (issue #26), end to end through the simulators: a tenant no
//! file entry names is listed unmapped with a suggestion; its events are held (recorded as
//! `tenant_unmapped`) and ticketed once it is mapped through the API, except one whose
//! lifetime ran out meanwhile; stale revisions and file entries are refused (409) from the API
//! and the CLI; the CLI maps and unmaps against the store while the daemon runs.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};
use msp_ticketd::demo::{ADMIN_TOKEN, DEMO_RULES, Lab};
use serde_json::{Value, json};
use support::{eventually, metric, metrics};

const CLINIC: &str = "ksc:demo/vs:3";
const CLINIC_ACCOUNT: i64 = 29_683_620;

fn cli(config: &Path, args: &[&str]) -> Result<(i32, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_msp-ticketd"))
        .arg("mapping")
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .context("running msp-ticketd mapping")?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.code().unwrap_or(-1), text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_tenants_events_are_held_and_ticketed_once_it_is_mapped() -> Result<()> {
    let lab = Lab::start().await?;
    // The PSA has an account named like the unmapped tenant "Walk-in Clinic".
    let company = json!({ "id": CLINIC_ACCOUNT, "companyName": "Walk-in Clinic, LLC", "isActive": true });
    lab.control(lab.psa_sim(), reqwest::Method::POST, "/_sim/companies", company).await?;
    let path = lab.dir.join("msp-ticketd.toml");
    std::fs::write(&path, lab.config_toml(DEMO_RULES, "127.0.0.1:0"))?;
    let running = support::start(&lab, DEMO_RULES, &[]).await?;
    let addr = running.admin_addr.context("admin")?;
    let http = reqwest::Client::new();
    let api = |p: &str| format!("http://{addr}{p}");

    // Two events of the unmapped tenant: one fresh, one that outlives its 1-day lifetime before
    // the tenant is mapped (read with 25 s to spare).
    let fresh =
        lab.ksc_event(3, "critical", "GNRL_EV_VIRUS_FOUND", "clinic-pc-1", chrono::Duration::hours(1), "held").await?;
    let to_expire = chrono::Duration::hours(24) - chrono::Duration::seconds(25);
    let expiring =
        lab.ksc_event(3, "critical", "GNRL_EV_VIRUS_FOUND", "clinic-pc-2", to_expire, "expires while held").await?;
    let raised = tokio::time::Instant::now();
    let id = |v: &Value| v["id"].as_i64().map(|i| i.to_string()).unwrap_or_default();
    let (fresh_id, expiring_id) = (id(&fresh), id(&expiring));
    eventually(20, "both events read and held as tenant_unmapped", || async {
        let all = running.shared.store.decisions(&msp_ticketd::store::DecisionQuery::default())?;
        let held = |e: &str| {
            all.iter().any(|d| d.event_id.as_deref() == Some(e) && d.reason.as_deref() == Some("tenant_unmapped"))
        };
        Ok((held(&fresh_id) && held(&expiring_id)).then_some(()))
    })
    .await?;
    assert!(raised.elapsed() < Duration::from_secs(25), "read in time to test the lifetime");

    // Listed unmapped, with the account as its exact suggestion.
    let view: Value = eventually(20, "the tenant listed with a suggestion", || async {
        let v: Value = http.get(api("/api/mapping")).bearer_auth(ADMIN_TOKEN).send().await?.json().await?;
        let row = v["tenants"].as_array().and_then(|t| t.iter().find(|r| r["tenant"] == CLINIC)).cloned();
        Ok(row.filter(|r| !r["suggestions"].as_array().is_none_or(Vec::is_empty)).map(|_| v))
    })
    .await?;
    let row = view["tenants"].as_array().unwrap().iter().find(|r| r["tenant"] == CLINIC).unwrap();
    assert_eq!(row["account"], Value::Null, "{row}");
    assert_eq!(row["source"], Value::Null, "{row}");
    assert_eq!(row["suggestions"][0]["account_id"], CLINIC_ACCOUNT, "{row}");
    assert_eq!(row["suggestions"][0]["score"], 1.0, "{row}");
    let file_row = view["tenants"].as_array().unwrap().iter().find(|r| r["tenant"] == "ksc:demo/vs:1").unwrap();
    assert_eq!(file_row["source"], "file", "{file_row}");
    let revision = view["revision"].as_u64().context("revision")?;
    let m = metrics(&running).await?;
    assert!(metric(&m, "msp_tenants_unmapped") >= 1, "{m}");
    let ready = http.get(api("/readyz")).send().await?;
    assert_eq!(ready.status(), 200, "an unmapped tenant is not an outage: {}", ready.text().await?);
    assert!(lab.tickets().await?.iter().all(|t| !t["title"].as_str().unwrap_or("").contains("clinic-pc")));

    // Refusals: a file entry (409 naming the file), a stale revision (409), an unknown account.
    let put = |tenant: &str, account: i64, rev: u64| {
        http.put(api(&format!("/api/mapping/{}", urlencode(tenant))))
            .bearer_auth(ADMIN_TOKEN)
            .header("If-Match", format!("\"{rev}\""))
            .json(&json!({ "account_id": account }))
            .send()
    };
    let r = put("ksc:demo/vs:1", CLINIC_ACCOUNT, revision).await?;
    assert_eq!(r.status(), 409);
    assert!(r.text().await?.contains("configuration file"));
    let r = put(CLINIC, CLINIC_ACCOUNT, revision + 7).await?;
    assert_eq!(r.status(), 409);
    let r = put(CLINIC, 424_242, revision).await?;
    assert_eq!(r.status(), 400);
    assert!(r.text().await?.contains("no account 424242"));
    // The CLI refuses the same way (exit 3 for a stale revision, 1 naming the file).
    let (code, out) = cli(&path, &["--revision", &(revision + 7).to_string(), "set", CLINIC, "29683620"])?;
    assert_eq!(code, 3, "{out}");
    let (code, out) = cli(&path, &["unset", "ksc:demo/vs:1"])?;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&path.display().to_string()), "names the file: {out}");

    // Past the second event's lifetime, the tenant is mapped (API, with the revision read).
    let past = Duration::from_secs(26).saturating_sub(raised.elapsed());
    tokio::time::sleep(past).await;
    let r = put(CLINIC, CLINIC_ACCOUNT, revision).await?;
    assert_eq!(r.status(), 204, "{}", r.text().await?);
    let tickets = eventually(20, "the held event ticketed", || async {
        let t = lab.tickets().await?;
        Ok(t.iter().any(|t| t["title"].as_str().unwrap_or("").contains("clinic-pc-1")).then_some(t))
    })
    .await?;
    let clinic: Vec<&Value> = tickets.iter().filter(|t| t["companyID"] == CLINIC_ACCOUNT).collect();
    assert_eq!(clinic.len(), 1, "the fresh one only, once: {clinic:#?}");
    let all = running.shared.store.decisions(&msp_ticketd::store::DecisionQuery::default())?;
    assert!(
        all.iter().any(|d| d.event_id.as_deref() == Some(&expiring_id) && d.reason.as_deref() == Some("stale")),
        "the expired one is decided stale: {all:#?}"
    );
    eventually(10, "no tenant unmapped", || async {
        Ok((metric(&metrics(&running).await?, "msp_tenants_unmapped") == 0).then_some(()))
    })
    .await?;

    // The CLI sees it and unmaps it against the store; the API answers the new revision.
    let (code, out) = cli(&path, &["list"])?;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("{CLINIC}\tWalk-in Clinic\t-> {CLINIC_ACCOUNT}")) && out.contains("[store]"),
        "{out}"
    );
    let (code, out) = cli(&path, &["--revision", &(revision + 1).to_string(), "unset", CLINIC])?;
    assert_eq!(code, 0, "{out}");
    let v: Value = http.get(api("/api/mapping")).bearer_auth(ADMIN_TOKEN).send().await?.json().await?;
    assert_eq!(v["revision"], revision + 2, "{v}");
    // Accept all above 90 %: the exact suggestion is taken again, answering what it mapped.
    let r = http
        .post(api("/api/mapping/accept"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "min_score": 0.9 }))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let accepted: Value = r.json().await?;
    assert_eq!(accepted["mapped"][0]["tenant"], CLINIC, "{accepted}");
    assert_eq!(accepted["mapped"].as_array().map(Vec::len), Some(1), "{accepted}");
    // Nothing ticketed twice by the re-mapping.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again: Vec<Value> = lab.tickets().await?.into_iter().filter(|t| t["companyID"] == CLINIC_ACCOUNT).collect();
    assert_eq!(again.len(), 1, "{again:#?}");
    running.stop().await?;
    Ok(())
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('/', "%2F")
}
