//! Lists Business Hub companies, their Endpoint Security Cloud devices with statuses, Office 365
//! issues and recent events.
//!
//! Run against the simulator:
//! ```text
//! cargo run -p msp-ticketing-simulators --bin kbh-sim -- --listen 127.0.0.1:8443 --seed &
//! cargo run -p kaspersky-business-hub-client --example kbh_overview
//! ```
//! Environment: `KBH_URL` (default `http://127.0.0.1:8443`), `KBH_TOKEN` (default `sim-token`),
//! or `KBH_EMAIL` + `KBH_PASSWORD` to log in instead of using a token; `KBH_CA_PEM` (path of an
//! extra CA certificate).

use std::process::ExitCode;

use kbh_adapter::{KbhAuth, KbhClient, KbhConfig, KbhError, KbhEventSource, KbhStatusSource};
use ticketing_core::model::{Event, EventClass, Product};
use ticketing_core::ports::{EventSource, StatusSource};
use ticketing_core::secret::Secret;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn config() -> Result<KbhConfig, Box<dyn std::error::Error>> {
    let url = env("KBH_URL").unwrap_or_else(|| "http://127.0.0.1:8443".to_owned());
    let auth = match (env("KBH_EMAIL"), env("KBH_PASSWORD")) {
        (Some(email), Some(password)) => KbhAuth::Login { email, password: Secret::new(password) },
        _ => KbhAuth::Token(Secret::new(env("KBH_TOKEN").unwrap_or_else(|| "sim-token".to_owned()))),
    };
    let mut config = KbhConfig::new(&url, auth)?;
    if let Some(path) = env("KBH_CA_PEM") {
        config = config.with_ca_pem(std::fs::read(path)?);
    }
    Ok(config)
}

fn print_event(e: &Event) {
    let class = match e.class {
        EventClass::Severity(s) => s.display_name().to_owned(),
        EventClass::Office365(t) => format!("Office 365 ({})", t.code()),
    };
    let subject = e.device.as_ref().map(|d| d.name.clone()).or_else(|| e.mailbox.clone()).unwrap_or_default();
    println!(
        "    [{}] {} {:<18} {} — {} {}",
        e.source_id,
        e.occurred_at.format("%F %T"),
        class,
        subject,
        e.display_name,
        e.text
    );
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let client = KbhClient::new(config()?)?;
    println!("Business Hub at {}", client.base_url());
    let companies = client.companies().await?;
    let esc_status = KbhStatusSource::endpoint_cloud(client.clone());
    let o365_issues = KbhStatusSource::office365(client.clone());
    let esc_events = KbhEventSource::endpoint_cloud(client.clone());
    let o365_events = KbhEventSource::office365(client.clone());

    for company in &companies {
        let tenant = company.id.tenant_id();
        let products: Vec<&str> = company.products.iter().map(|p| p.code()).collect();
        println!("\n{} — {} [{}]", tenant, company.name, products.join(", "));
        // one company's failure is printed and the others go on
        if company.has(Product::EndpointCloud) {
            match esc_status.snapshot(&tenant).await {
                Ok(snap) => {
                    println!("  devices ({}, {} unknown descriptions):", snap.devices.len(), snap.unknown_descriptions);
                    for d in &snap.devices {
                        let why: Vec<String> =
                            d.active.iter().map(|a| format!("{} ({})", a.description.text(), a.level)).collect();
                        println!("    {} {:?} {}", d.device.name, d.status, why.join("; "));
                    }
                }
                Err(e) => println!("  devices: error: {e}"),
            }
            match esc_events.poll_events(&tenant, None, 20, None).await {
                Ok(batch) => {
                    println!("  Endpoint Security Cloud events (next cursor {}):", batch.next);
                    batch.events.iter().for_each(print_event);
                    for m in &batch.malformed {
                        println!("    malformed record {}: {}", m.id, m.reason);
                    }
                }
                Err(e) => println!("  events: error: {e}"),
            }
        }
        if company.has(Product::Office365) {
            match o365_issues.snapshot(&tenant).await {
                Ok(snap) => {
                    for i in &snap.issues {
                        let state = if i.active { "ACTIVE" } else { "resolved" };
                        println!("  issue {}: {state}", i.event_type);
                    }
                }
                Err(e) => println!("  issues: error: {e}"),
            }
            match o365_events.poll_events(&tenant, None, 20, None).await {
                Ok(batch) => {
                    println!("  Office 365 events (next cursor {}):", batch.next);
                    batch.events.iter().for_each(print_event);
                }
                Err(e) => println!("  Office 365 events: error: {e}"),
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let hint = match e.downcast_ref::<KbhError>() {
                Some(KbhError::Transport(_)) => " (is kbh-sim running? see the example's header)",
                _ => "",
            };
            eprintln!("kbh_overview: {e}{hint}");
            ExitCode::FAILURE
        }
    }
}
