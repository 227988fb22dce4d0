//! Embedding the exactly-once runtime (`ticketing-engine`) in another MSP tool: the tool's own
//! event feed (here an in-memory one) through the engine to a PSA (the Autotask simulator,
//! over real HTTP), with the ledger in a SQLite file. Mid-burst the engine is killed (its task
//! aborted: no clean stop, calls in flight cut off) and a new one is started on the same store;
//! every problem still gets exactly one ticket.
//!
//! Run with `cargo run --example embed_engine`. It prints one line:
//! `exactly once: N tickets for N problems, 0 duplicates`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ticketing_core::edit::RuleBook;
use ticketing_core::model::{Device, DeviceId, Event, EventClass, Product, Severity, SourceEventId, Tenant, TenantId};
use ticketing_core::ports::{Cursor, EventBatch, EventSource, PortError, TicketSink};
use ticketing_core::rules::{RowId, RuleSet};
use ticketing_engine::engine::{Engine, NamedEventSource, Shared};
use ticketing_engine::settings::{HaConfig, MappingEntry, PollingConfig};
use ticketing_engine::store::{SqliteStore, Store};

/// The simulator's seeded customer account (Acme Corp).
const ACCOUNT: i64 = 29683616;
const PROBLEMS: usize = 300;

/// Your tool's own events, in arrival order; the cursor is the position in the feed.
#[derive(Default)]
struct Feed {
    events: Mutex<Vec<Event>>,
}

impl Feed {
    fn push(&self, n: usize) {
        let mut events = self.events.lock().unwrap();
        for _ in 0..n {
            let i = events.len();
            events.push(Event {
                source_id: SourceEventId::new(format!("feed-{i}")),
                tenant: TenantId::new("tool:acme"),
                product: Product::SecurityCenter,
                class: EventClass::Severity(Severity::Critical),
                occurred_at: Utc::now(),
                device: Some(Device { id: DeviceId::new(format!("pc-{i}")), name: format!("ACME-PC-{i:03}") }),
                mailbox: None,
                event_type: "GNRL_EV_VIRUS_FOUND".into(),
                display_name: "Malicious object detected".into(),
                text: format!("Trojan.Win32.Agent detected on ACME-PC-{i:03}"),
            });
        }
    }
}

#[async_trait]
impl EventSource for Feed {
    fn product(&self) -> Product {
        Product::SecurityCenter
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, PortError> {
        Ok(vec![Tenant { id: TenantId::new("tool:acme"), name: "Acme (from the tool)".into() }])
    }

    async fn poll_events(
        &self,
        _tenant: &TenantId,
        cursor: Option<&Cursor>,
        limit: usize,
        _window_start: Option<DateTime<Utc>>,
    ) -> Result<EventBatch, PortError> {
        let events = self.events.lock().unwrap();
        let from = cursor.and_then(|c| c.0.parse::<usize>().ok()).unwrap_or(0).min(events.len());
        let to = (from + limit).min(events.len());
        Ok(EventBatch {
            events: events[from..to].to_vec(),
            malformed: Vec::new(),
            next: Cursor(to.to_string()),
            more: to < events.len(),
        })
    }
}

/// One engine over the store, the feed and the PSA, running until its task is aborted.
fn start_engine(
    store: Arc<dyn Store>,
    book: RuleBook,
    feed: Arc<Feed>,
    sink: Arc<dyn TicketSink>,
) -> Result<tokio::task::JoinHandle<()>> {
    let (shared, writers) = Shared::new(store, book);
    let polling = PollingConfig { events_secs: 1, catalog_secs: 3600, ticket_sync_secs: 0, ..PollingConfig::default() };
    let mapping = vec![MappingEntry { tenant: "tool:acme".into(), account_id: Some(ACCOUNT), account_name: None }];
    let events = vec![NamedEventSource { name: "tool/events".into(), source: feed, timeout: Duration::from_secs(10) }];
    // One instance: the same name takes its own lease back at once after a crash.
    let ha = HaConfig { instance: Some("embedded".into()), ..HaConfig::default() };
    let engine = Engine::new(shared, writers.engine, sink, events, Vec::new(), mapping, polling)?.with_ha(&ha);
    Ok(tokio::spawn(async move {
        if let Err(e) = engine.run(Duration::from_millis(100), std::future::pending()).await {
            eprintln!("engine stopped: {e}");
        }
    }))
}

/// The simulator's tickets, by the idempotency key each carries (Autotask's `externalID`).
async fn tickets(http: &reqwest::Client, base: &str) -> Result<BTreeMap<String, usize>> {
    let all: Vec<serde_json::Value> = http.get(format!("{base}/_sim/tickets")).send().await?.json().await?;
    let mut by_key = BTreeMap::new();
    for t in all {
        *by_key.entry(t["externalID"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    Ok(by_key)
}

async fn wait_for(http: &reqwest::Client, base: &str, n: usize, within: Duration) -> Result<BTreeMap<String, usize>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let t = tickets(http, base).await?;
        if t.len() >= n {
            return Ok(t);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("only {} of {n} tickets after {within:?}", t.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    // The PSA: the Autotask simulator, in this process, over HTTP.
    let sim = simulators::autotask::start(([127, 0, 0, 1], 0).into(), simulators::autotask::Config::default()).await?;
    let base = sim.base_url();
    let client = autotask_client::AutotaskClient::builder(autotask_client::Credentials::new(
        "api@sim.local",
        "sim-secret",
        "SIMINTEGRATIONCODE000000000",
    ))
    .base_url(base)
    .build()
    .context("building the Autotask client")?;
    let sink: Arc<dyn TicketSink> =
        Arc::new(autotask_client::AutotaskSink::new(client, autotask_client::SinkOptions::default()));

    // The ledger: a SQLite file that outlives the engine.
    let dir = std::env::temp_dir().join(format!("embed-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("ledger.sqlite");
    let _ = std::fs::remove_file(&path);
    let mut rules = RuleSet::default();
    rules
        .rows
        .get_mut(&RowId::Event(Product::SecurityCenter, EventClass::Severity(Severity::Critical)))
        .context("the row")?
        .enabled = true;
    let book = RuleBook::new(rules);

    // A burst, the engine killed in the middle of it, the rest of the burst, a new engine.
    let feed = Arc::new(Feed::default());
    feed.push(PROBLEMS / 2);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path)?);
    let first = start_engine(store, book.clone(), feed.clone(), sink.clone())?;
    let http = reqwest::Client::new();
    wait_for(&http, base, PROBLEMS / 6, Duration::from_secs(60)).await?;
    first.abort();
    let _ = first.await;
    feed.push(PROBLEMS - PROBLEMS / 2);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path)?);
    let second = start_engine(store, book, feed.clone(), sink)?;
    let mut all = wait_for(&http, base, PROBLEMS, Duration::from_secs(120)).await?;
    // A moment more: nothing further may arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    all = tickets(&http, base).await.unwrap_or(all);
    second.abort();
    let duplicates: usize = all.values().map(|n| n - 1).sum();
    let tickets_made: usize = all.values().sum();
    println!("exactly once: {tickets_made} tickets for {PROBLEMS} problems, {duplicates} duplicates");
    let _ = std::fs::remove_dir_all(&dir);
    if tickets_made != PROBLEMS || duplicates != 0 {
        bail!("not exactly once");
    }
    Ok(())
}
