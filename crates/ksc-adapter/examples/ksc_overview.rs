//! Lists the virtual servers, every host with its status descriptions, and the latest events
//! of a Security Center (or of `ksc-sim`).
//!
//! Run with `cargo run -p kaspersky-security-center-client --example ksc_overview`, after starting
//! `cargo run -p msp-ticketing-simulators --bin ksc-sim -- --listen 127.0.0.1:13299`.
//!
//! Environment (defaults are the simulator's): `KSC_URL` (`http://127.0.0.1:13299`),
//! `KSC_USER` (`ksc-admin`), `KSC_PASSWORD` (`ksc-secret`), `KSC_CA_FILE` (a PEM file with the
//! server certificate, optional), `KSC_EVENT_LIMIT` (20).

use std::time::Duration;

use ksc_adapter::{KscConfig, KscSource, TlsVerification};
use ticketing_core::ports::{EventSource, StatusSource};
use ticketing_core::secret::Secret;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = KscConfig::new(
        env("KSC_URL", "http://127.0.0.1:13299"),
        env("KSC_USER", "ksc-admin"),
        Secret::new(env("KSC_PASSWORD", "ksc-secret")),
    );
    if let Ok(ca) = std::env::var("KSC_CA_FILE") {
        config.tls = TlsVerification::CaFile(ca.into());
    }
    config.initial_lookback = Some(Duration::from_secs(7 * 24 * 3600));
    let limit: usize = env("KSC_EVENT_LIMIT", "20").parse()?;
    let ksc = KscSource::new(config)?;

    println!("virtual servers:");
    for vs in ksc.virtual_servers().await? {
        println!("  {:>4}  {}", vs.id, vs.name);
    }
    for tenant in EventSource::tenants(&ksc).await? {
        println!("\n== {} ({})", tenant.name, tenant.id);
        let snap = ksc.snapshot(&tenant.id).await?;
        println!("hosts: {} (unknown descriptions: {})", snap.devices.len(), snap.unknown_descriptions);
        for d in &snap.devices {
            println!("  {:<24} {:?}", d.device.name, d.status);
            for a in &d.active {
                let text = match (a.description.info(), &a.description) {
                    (Some(i), _) => i.text.to_owned(),
                    (None, ticketing_core::model::StatusDescription::Unknown(bit)) => {
                        format!("Status reason bit {bit}")
                    }
                    (None, other) => other.code(),
                };
                println!("      [{}] {text}", a.level);
            }
        }
        // Walk the stream to its end, then print the latest `limit` events.
        let mut cursor = None;
        let mut latest = Vec::new();
        loop {
            let batch = ksc.poll_events(&tenant.id, cursor.as_ref(), 500, None).await?;
            for m in &batch.malformed {
                println!("  malformed event {}: {}", m.id, m.reason);
            }
            latest.extend(batch.events);
            cursor = Some(batch.next);
            if !batch.more {
                break;
            }
        }
        let skip = latest.len().saturating_sub(limit);
        println!("latest events ({} of {}):", latest.len() - skip, latest.len());
        for e in &latest[skip..] {
            let device = e.device.as_ref().map_or("-", |d| d.name.as_str());
            println!(
                "  {} #{:<6} {:<18} {:<16} {} {}",
                e.occurred_at, e.source_id, e.class, device, e.display_name, e.text
            );
        }
    }
    ksc.logout_all().await?;
    Ok(())
}
