//! `msp-ticketd demo`: the main job with no setup. Starts the three simulators in-process, seeds
//! tenants, mapping and rules, runs the real daemon against them over HTTP on loopback with a
//! SQLite store in a temporary directory, plays a short scenario and prints each ticket as it is
//! created and closed, then a summary.
//!
//! [`Lab`] is the harness behind it; the end-to-end tests use it too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use chrono::Utc;
use serde_json::{Value, json};
use simulators::common::SimHandle;
use ticketing_core::catalog::{Catalog, Field};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::Config;
use crate::engine::{Notice, Shared};
use crate::service;

/// Acme Corp in the Autotask simulator's seed: active.
pub const ACME: i64 = 29683616;
/// Old Co in the Autotask simulator's seed: inactive.
pub const OLD_CO: i64 = 29683617;
/// The Business Hub company of the lab.
pub const KBH_COMPANY: &str = "c-acme";
/// The admin token of the lab.
pub const ADMIN_TOKEN: &str = "demo-admin-token";

/// Which PSA the lab's daemon writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Psa {
    /// Autotask (`autotask-sim`).
    #[default]
    Autotask,
    /// ConnectWise PSA (`cw-sim`).
    Connectwise,
    /// HaloPSA (`halo-sim`).
    Halopsa,
}

/// The simulators, seeded with the lab's tenants, and a temporary directory for the store.
pub struct Lab {
    /// The PSA the lab's configuration points the daemon at.
    pub psa: Psa,
    /// Autotask simulator.
    pub autotask: SimHandle,
    /// ConnectWise simulator.
    pub connectwise: SimHandle,
    /// HaloPSA simulator.
    pub halopsa: SimHandle,
    /// Security Center simulator.
    pub ksc: SimHandle,
    /// Business Hub simulator.
    pub kbh: SimHandle,
    /// Where the store lives.
    pub dir: PathBuf,
    http: reqwest::Client,
}

impl Lab {
    /// Starts and seeds the simulators: Security Center virtual servers 1 "Acme Dental" (mapped
    /// to Acme Corp), 2 "Old Co Branch" (mapped to the inactive Old Co), 3 "Walk-in Clinic"
    /// (unmapped), and Business Hub company `c-acme` with both products (mapped to Acme Corp).
    pub async fn start() -> Result<Self> {
        Self::start_with(Psa::Autotask).await
    }

    /// [`Lab::start`] with the daemon writing to `psa`.
    pub async fn start_with(psa: Psa) -> Result<Self> {
        Self::start_with_business_hub(psa, simulators::kbh::Config::default()).await
    }

    /// [`Lab::start_with`] with the Business Hub simulator's own settings (say, without its
    /// per-minute request limit, for a test that reloads hundreds of times).
    pub async fn start_with_business_hub(psa: Psa, kbh: simulators::kbh::Config) -> Result<Self> {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        let autotask = simulators::autotask::start(any, simulators::autotask::Config::default()).await?;
        let connectwise = simulators::connectwise::start(any, simulators::connectwise::Config::default()).await?;
        let halopsa = simulators::halo::start(any, simulators::halo::Config::default()).await?;
        let ksc = simulators::ksc::start(any, simulators::ksc::Config::default()).await?;
        let kbh = simulators::kbh::start(any, kbh).await?;
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("msp-ticketd-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let lab = Self { psa, autotask, connectwise, halopsa, ksc, kbh, dir, http: reqwest::Client::new() };
        for (id, name) in [(1, "Acme Dental"), (2, "Old Co Branch"), (3, "Walk-in Clinic")] {
            lab.control(&lab.ksc, reqwest::Method::POST, "/_sim/vservers", json!({ "id": id, "name": name })).await?;
        }
        lab.control(
            &lab.kbh,
            reqwest::Method::POST,
            "/_sim/companies",
            json!({ "id": KBH_COMPANY, "name": "Acme Corp (cloud)", "products": ["kes_cloud", "ksmo365"] }),
        )
        .await?;
        Ok(lab)
    }

    /// The store file.
    pub fn store_path(&self) -> PathBuf {
        self.dir.join("msp-ticketd.sqlite")
    }

    /// The daemon configuration for the lab, as TOML (what an MSP would write), with the given
    /// `[rules]` section and admin listener.
    pub fn config_toml(&self, rules: &str, admin_listen: &str) -> String {
        format!(
            r#"
[store]
path = {store:?}

[admin]
listen = "{admin_listen}"
token = {{ value = "{ADMIN_TOKEN}" }}

[polling]
events_secs = 1
statuses_secs = 1
catalog_secs = 30
ticket_sync_secs = 0

{psa}
[[security_center]]
name = "demo"
url = "{ksc}"
user = "ksc-admin"
password = {{ value = "ksc-secret" }}
# Statuses are read every second here: a group's level change shows within two.
group_masks_ttl_secs = 2

[business_hub]
url = "{kbh}"
token = {{ value = "sim-token" }}

[[mapping]]
tenant = "ksc:demo/vs:1"
{acme}

[[mapping]]
tenant = "ksc:demo/vs:2"
account_name = "Old Co"

[[mapping]]
tenant = "kbh:{KBH_COMPANY}"
account_name = "Acme Corp"

{rules}
"#,
            store = self.store_path().display().to_string(),
            psa = self.psa_section(),
            acme = match self.psa {
                Psa::Autotask => format!("account_id = {ACME}"),
                Psa::Connectwise | Psa::Halopsa => "account_name = \"Acme Corp\"".to_owned(),
            },
            rules = match self.psa {
                // ConnectWise boards close tickets with "Completed" (the guide's "Complete" is
                // Autotask's).
                Psa::Connectwise if rules.contains("[rules.general]\n") => {
                    rules.replace("[rules.general]\n", "[rules.general]\nclosed_status = \"Completed\"\n")
                }
                Psa::Connectwise => format!("[rules.general]\nclosed_status = \"Completed\"\n{rules}"),
                // Halo closes with its built-in "Closed" and has no ticket source field.
                Psa::Halopsa => halo_rules(rules),
                Psa::Autotask => rules.to_owned(),
            },
            ksc = self.ksc.base_url(),
            kbh = self.kbh.base_url(),
        )
    }

    /// The PSA part of the lab's configuration.
    fn psa_section(&self) -> String {
        match self.psa {
            Psa::Autotask => format!(
                r#"[autotask]
base_url = "{}"
username = "api@sim.local"
secret = {{ value = "sim-secret" }}
integration_code = {{ value = "SIMINTEGRATIONCODE000000000" }}
note_on_close = true
"#,
                self.autotask.base_url()
            ),
            Psa::Connectwise => format!(
                r#"[psa]
kind = "connectwise"

[connectwise]
base_url = "{}"
company_id = "{}"
public_key = "{}"
private_key = {{ value = "{}" }}
client_id = "00000000-0000-0000-0000-000000000001"
note_on_close = true
"#,
                self.connectwise.base_url(),
                simulators::connectwise::DEFAULT_COMPANY,
                simulators::connectwise::DEFAULT_PUBLIC_KEY,
                simulators::connectwise::DEFAULT_PRIVATE_KEY,
            ),
            Psa::Halopsa => format!(
                r#"[psa]
kind = "halopsa"

[halopsa]
base_url = "{}"
client_id = "{}"
client_secret = {{ value = "{}" }}
note_on_close = true
"#,
                self.halopsa.base_url(),
                simulators::halo::DEFAULT_CLIENT_ID,
                simulators::halo::DEFAULT_CLIENT_SECRET,
            ),
        }
    }

    /// The lab's configuration with the demo's rules.
    pub fn config(&self, admin_listen: &str) -> Result<Config> {
        Config::parse(&self.config_toml(DEMO_RULES, admin_listen), "demo.toml").map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Sends a control call to a simulator.
    pub async fn control(&self, sim: &SimHandle, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
        let resp = self
            .http
            .request(method, format!("{}{path}", sim.base_url()))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("control call {path}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("control call {path} answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Raises a Security Center event; returns its `event_db_id`.
    pub async fn ksc_event(
        &self,
        vserver: i64,
        severity: &str,
        event_type: &str,
        host: &str,
        age: chrono::Duration,
        text: &str,
    ) -> Result<Value> {
        let at = (Utc::now() - age).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let display_name = match event_type {
            "GNRL_EV_VIRUS_FOUND" => "Malicious object detected",
            "GNRL_EV_OBJECT_BLOCKED" => "Object blocked",
            "KLPRCI_TaskState" => "Task failed",
            "KLSRV_UPD_BASES_UPDATED" => "Databases updated",
            other => other,
        };
        self.control(
            &self.ksc,
            reqwest::Method::POST,
            "/_sim/events",
            json!({ "vserver": vserver, "severity": severity, "event_type": event_type, "display_name": display_name,
                    "host": host, "occurred_at": at, "text": text }),
        )
        .await
    }

    /// Sets a Security Center host's active status descriptions.
    pub async fn ksc_host(&self, vserver: i64, host: &str, name: &str, descriptions: &[&str]) -> Result<()> {
        let path = format!("/_sim/hosts/{vserver}/{host}");
        self.control(&self.ksc, reqwest::Method::PUT, &path, json!({ "name": name, "descriptions": descriptions }))
            .await?;
        Ok(())
    }

    /// Raises a Business Hub event (`product` `kes_cloud` or `ksmo365`).
    pub async fn kbh_event(&self, body: Value) -> Result<Value> {
        self.control(&self.kbh, reqwest::Method::POST, "/_sim/events", body).await
    }

    /// Raises (`active`) or resolves an Office 365 issue.
    pub async fn kbh_issue(&self, kind: &str, active: bool) -> Result<Value> {
        self.control(
            &self.kbh,
            reqwest::Method::POST,
            "/_sim/o365/issues",
            json!({ "company": KBH_COMPANY, "type": kind, "active": active, "message": "The application cannot connect to Exchange Online." }),
        )
        .await
    }

    /// Sets an Endpoint Security Cloud device's active descriptions.
    pub async fn kbh_device(&self, device: &str, name: &str, descriptions: &[&str]) -> Result<()> {
        let path = format!("/_sim/devices/{KBH_COMPANY}/{device}");
        self.control(&self.kbh, reqwest::Method::PUT, &path, json!({ "name": name, "descriptions": descriptions }))
            .await?;
        Ok(())
    }

    /// Every ticket in the lab's PSA simulator, with all fields (each PSA's own shape).
    pub async fn tickets(&self) -> Result<Vec<Value>> {
        let v: Value =
            self.http.get(format!("{}/_sim/tickets", self.psa_sim().base_url())).send().await?.json().await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// The simulator of the lab's PSA.
    pub fn psa_sim(&self) -> &SimHandle {
        match self.psa {
            Psa::Autotask => &self.autotask,
            Psa::Connectwise => &self.connectwise,
            Psa::Halopsa => &self.halopsa,
        }
    }

    /// The Autotask simulator's request journal.
    pub async fn autotask_requests(&self) -> Result<Vec<Value>> {
        let v: Value =
            self.http.get(format!("{}/_sim/requests", self.autotask.base_url())).send().await?.json().await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Makes the Autotask simulator answer the next `count` requests matching `path_regex` with
    /// `status` (and `body`), after `delay_ms`.
    pub async fn autotask_fault(
        &self,
        method: Option<&str>,
        path_regex: &str,
        status: u16,
        body: Value,
        count: u32,
        delay_ms: u64,
    ) -> Result<()> {
        self.control(
            &self.autotask,
            reqwest::Method::POST,
            "/_sim/faults",
            json!({ "method": method, "path_regex": path_regex, "status": status, "body": body, "count": count, "delay_ms": delay_ms }),
        )
        .await?;
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The demo's rules: the guide's defaults with these rows switched on.
pub const DEMO_RULES: &str = r#"
[rules.general]
ticket_source = "Monitoring Alert"

[rules.rows."security_center/event/critical"]
enabled = true
[rules.rows."security_center/event/functional_failure"]
enabled = true
[rules.rows."security_center/event/warning"]
enabled = true
due_hours = 48
[rules.rows."security_center/status/warning/databases_out_of_date"]
enabled = true
[rules.rows."security_center/status/warning/many_viruses_detected"]
enabled = true
[rules.rows."endpoint_cloud/event/critical"]
enabled = true
[rules.rows."endpoint_cloud/status/critical/license_expired"]
enabled = true
[rules.rows."office365/event/malware_detected"]
enabled = true
[rules.rows."office365/event/mailboxes_protection_not_provided"]
enabled = true
"#;

/// The rules for the HaloPSA lab: Halo's built-in "Closed" status, and no ticket source (Halo
/// has no field the backend fills for it).
fn halo_rules(rules: &str) -> String {
    let rules: String =
        rules.lines().filter(|l| !l.trim_start().starts_with("ticket_source")).map(|l| format!("{l}\n")).collect();
    if rules.contains("[rules.general]\n") {
        rules.replace("[rules.general]\n", "[rules.general]\nclosed_status = \"Closed\"\n")
    } else {
        format!("[rules.general]\nclosed_status = \"Closed\"\n{rules}")
    }
}

fn label(catalog: Option<&Catalog>, field: Field, id: Option<i64>) -> String {
    let Some(id) = id else { return "-".into() };
    catalog
        .and_then(|c| c.list(field))
        .and_then(|l| l.iter().find(|v| v.id.0 == id))
        .map_or_else(|| id.to_string(), |v| v.label.clone())
}

async fn describe(lab: &Lab, shared: &Shared, id: i64) -> String {
    let tickets = lab.tickets().await.unwrap_or_default();
    let Some(t) = tickets.iter().find(|t| t["id"].as_i64() == Some(id)) else { return format!("ticket {id}") };
    if lab.psa == Psa::Halopsa {
        return format!(
            "#{id} [{}] {:?}\n      team {}, priority {}, status {}, fix by {}",
            t["client_name"].as_str().unwrap_or("-"),
            t["summary"].as_str().unwrap_or(""),
            t["team"].as_str().unwrap_or("-"),
            label(shared.catalog().as_ref(), Field::Priority, t["priority_id"].as_i64()),
            label(shared.catalog().as_ref(), Field::NewStatus, t["status_id"].as_i64()),
            t["fixbydate"].as_str().unwrap_or("-"),
        );
    }
    if lab.psa == Psa::Connectwise {
        return format!(
            "#{id} [{}] {:?}\n      board {}, priority {}, status {}, type {}, due {}",
            t["company"]["name"].as_str().unwrap_or("-"),
            t["summary"].as_str().unwrap_or(""),
            t["board"]["name"].as_str().unwrap_or("-"),
            t["priority"]["name"].as_str().unwrap_or("-"),
            t["status"]["name"].as_str().unwrap_or("-"),
            t["type"]["name"].as_str().unwrap_or("-"),
            t["requiredDate"].as_str().unwrap_or("-"),
        );
    }
    let catalog = shared.catalog();
    let company = match t["companyID"].as_i64() {
        Some(ACME) => "Acme Corp".to_owned(),
        Some(other) => other.to_string(),
        None => "-".into(),
    };
    format!(
        "{} [{company}] {:?}\n      queue {}, priority {}, status {}, due {}",
        t["ticketNumber"].as_str().unwrap_or("?"),
        t["title"].as_str().unwrap_or(""),
        label(catalog.as_ref(), Field::Queue, t["queueID"].as_i64()),
        label(catalog.as_ref(), Field::Priority, t["priority"].as_i64()),
        label(catalog.as_ref(), Field::NewStatus, t["status"].as_i64()),
        t["dueDateTime"].as_str().unwrap_or("-"),
    )
}

/// Whether a PSA ticket of the lab is closed.
pub fn is_closed(psa: Psa, t: &Value) -> bool {
    match psa {
        Psa::Autotask => t["status"].as_i64() == Some(5),
        Psa::Connectwise => t["closedFlag"].as_bool() == Some(true),
        Psa::Halopsa => t["status_id"].as_i64() == Some(simulators::halo::CLOSED_STATUS),
    }
}

/// Waits for `creates` created and `closes` closed notices, printing each; fails after
/// `timeout`.
async fn expect(
    lab: &Lab,
    shared: &Shared,
    rx: &mut UnboundedReceiver<Notice>,
    creates: usize,
    closes: usize,
    timeout: Duration,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let (mut created, mut closed) = (0, 0);
    while created < creates || closed < closes {
        let notice = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .map_err(|_| anyhow::anyhow!("timed out: {created}/{creates} created, {closed}/{closes} closed"))?
            .context("engine stopped")?;
        match notice {
            Notice::Created { ticket, .. } => {
                created += 1;
                println!("  + created {}", describe(lab, shared, ticket.id.0).await);
            }
            Notice::Closed { ticket, key } => {
                closed += 1;
                let t = lab.tickets().await.unwrap_or_default();
                let t = t.iter().find(|t| t["id"].as_i64() == Some(ticket.id.0)).cloned().unwrap_or_default();
                match lab.psa {
                    Psa::Autotask => println!(
                        "  - closed  {} ({key}) status {}, completed {}",
                        t["ticketNumber"].as_str().unwrap_or("?"),
                        label(shared.catalog().as_ref(), Field::ClosedStatus, t["status"].as_i64()),
                        t["completedDate"].as_str().unwrap_or("-"),
                    ),
                    Psa::Connectwise => println!(
                        "  - closed  #{} ({key}) status {}, closed {}",
                        ticket.id.0,
                        t["status"]["name"].as_str().unwrap_or("-"),
                        t["closedDate"].as_str().unwrap_or("-"),
                    ),
                    Psa::Halopsa => println!(
                        "  - closed  #{} ({key}) status {}, closed {}",
                        ticket.id.0,
                        label(shared.catalog().as_ref(), Field::ClosedStatus, t["status_id"].as_i64()),
                        t["dateclosed"].as_str().unwrap_or("-"),
                    ),
                }
            }
            Notice::Skipped { key, reason } => println!("  . skipped {key}: {reason}"),
        }
    }
    Ok(())
}

/// Runs the demo; with `keep_running`, leaves everything up (admin API and UI open) until
/// Ctrl-C.
pub async fn run(keep_running: bool, psa: Psa) -> Result<()> {
    let lab = Lab::start_with(psa).await?;
    let listen = if keep_running { "127.0.0.1:8787" } else { "127.0.0.1:0" };
    let config = lab.config(listen)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let running = service::start(&config, Duration::from_millis(200), Some(tx)).await?;
    let shared = running.shared.clone();
    println!("msp-ticketd demo");
    match psa {
        Psa::Autotask => println!("  Autotask simulator:        {}", lab.autotask.base_url()),
        Psa::Connectwise => println!("  ConnectWise simulator:     {}", lab.connectwise.base_url()),
        Psa::Halopsa => println!("  HaloPSA simulator:         {}", lab.halopsa.base_url()),
    }
    println!("  Security Center simulator: {}", lab.ksc.base_url());
    println!("  Business Hub simulator:    {}", lab.kbh.base_url());
    println!("  store:                     {}", lab.store_path().display());
    if let Some(addr) = running.admin_addr {
        println!("  admin API:                 http://{addr}/api/rules  (Authorization: Bearer {ADMIN_TOKEN})");
        println!("  Ticketing UI:              http://{addr}/ui/setup  (log in with {ADMIN_TOKEN})");
    }
    println!();
    println!("1. Events of each severity, a stale one, an unmapped tenant, an inactive account;");
    println!("   a computer going Warning with two descriptions; Endpoint Security Cloud and Office 365.");
    let h = chrono::Duration::hours;
    lab.ksc_event(
        1,
        "critical",
        "GNRL_EV_VIRUS_FOUND",
        "acme-pc-01",
        h(1),
        "Trojan.Win32.Agent detected in C:\\Users\\dr.smith\\invoice.exe",
    )
    .await?;
    lab.ksc_event(1, "functional_failure", "KLPRCI_TaskState", "acme-pc-02", h(1), "Task \"Full scan\" failed").await?;
    lab.ksc_event(1, "warning", "GNRL_EV_OBJECT_BLOCKED", "acme-pc-02", h(2), "Object blocked: http://bad.example/")
        .await?;
    lab.ksc_event(1, "info", "KLSRV_UPD_BASES_UPDATED", "acme-pc-01", h(1), "Databases updated").await?;
    lab.ksc_event(1, "warning", "GNRL_EV_OBJECT_BLOCKED", "acme-pc-03", h(72), "An event from three days ago").await?;
    lab.ksc_event(
        2,
        "critical",
        "GNRL_EV_VIRUS_FOUND",
        "oldco-pc-01",
        h(1),
        "Virus at a customer whose account is inactive",
    )
    .await?;
    lab.ksc_event(3, "critical", "GNRL_EV_VIRUS_FOUND", "clinic-pc-01", h(1), "Virus at a customer that is not mapped")
        .await?;
    lab.ksc_host(1, "acme-pc-01", "ACME-PC-01", &["databases_out_of_date", "many_viruses_detected"]).await?;
    lab.kbh_event(json!({ "company": KBH_COMPANY, "product": "kes_cloud", "severity": "critical", "event_type": "GNRL_EV_ATTACK_DETECTED", "device": "d-01", "text": "Network attack blocked" })).await?;
    lab.kbh_device("d-02", "ACME-LAPTOP-02", &["license_expired"]).await?;
    lab.kbh_event(json!({ "company": KBH_COMPANY, "product": "ksmo365", "event_type": "malware_detected", "mailbox": "ceo@acme.example", "text": "Malware in an attachment" })).await?;
    lab.kbh_issue("mailboxes_protection_not_provided", true).await?;
    expect(&lab, &shared, &mut rx, 9, 0, Duration::from_secs(60)).await?;

    println!();
    println!("2. The databases are updated (the computer stays Warning: many viruses), the laptop's");
    println!("   license is renewed, and Exchange Online protection is restored.");
    lab.ksc_host(1, "acme-pc-01", "ACME-PC-01", &["many_viruses_detected"]).await?;
    lab.kbh_device("d-02", "ACME-LAPTOP-02", &[]).await?;
    lab.kbh_issue("mailboxes_protection_not_provided", false).await?;
    expect(&lab, &shared, &mut rx, 0, 3, Duration::from_secs(60)).await?;

    summary(&lab, &shared).await?;
    if keep_running {
        println!();
        let addr = running.admin_addr.map(|a| a.to_string()).unwrap_or_default();
        println!("Still running. Ticketing UI: http://{addr}/ui/setup (log in with {ADMIN_TOKEN}). Ctrl-C to stop.");
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        service::shutdown_signal().await;
    }
    running.stop().await?;
    Ok(())
}

async fn summary(lab: &Lab, shared: &Shared) -> Result<()> {
    let tickets = lab.tickets().await?;
    let open = tickets.iter().filter(|t| !is_closed(lab.psa, t)).count();
    let v: Value = lab.http.get(format!("{}/_sim/requests", lab.psa_sim().base_url())).send().await?.json().await?;
    let mut calls: BTreeMap<String, usize> = BTreeMap::new();
    for r in v.as_array().into_iter().flatten() {
        let path = r["path"].as_str().unwrap_or("").to_ascii_lowercase();
        let kind = if path.contains("/notes") || path.contains("/api/actions") {
            "note"
        } else if path.contains("entityinformation")
            || path.contains("billingcodes")
            || path.contains("/boards")
            || path.contains("priorities")
            || path.contains("sources")
            || path.contains("/api/team")
            || path.contains("/api/status")
            || path.contains("/api/tickettype")
            || path.contains("/api/priority")
        {
            "catalog"
        } else if path.contains("/auth/token") {
            "token"
        } else if path.contains("companies") || path.contains("/api/client") {
            "accounts"
        } else if path.contains("tickets") {
            match r["method"].as_str() {
                Some("PATCH") => "close",
                // Halo creates and updates through the same POST
                Some("POST") if lab.psa == Psa::Halopsa => "create or close",
                Some("POST") if path.ends_with("/tickets") => "create",
                _ => "ticket lookup",
            }
        } else {
            "other"
        };
        *calls.entry(kind.to_owned()).or_default() += 1;
    }
    let m = &shared.metrics;
    let name = match lab.psa {
        Psa::Autotask => "Autotask",
        Psa::Connectwise => "ConnectWise",
        Psa::Halopsa => "HaloPSA",
    };
    println!();
    println!("Summary");
    println!("  tickets in {name}: {} ({} open, {} closed)", tickets.len(), open, tickets.len() - open);
    let (created, closed, recovered) = m.ticket_counts();
    println!("  created {created}, closed {closed}, recovered after uncertain creates {recovered}");
    let skips: Vec<String> = m.skips().into_iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("  not ticketed: {}", skips.join(", "));
    let calls: Vec<String> = calls.into_iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("  {name} requests: {}", calls.join(", "));
    Ok(())
}
