//! Red tests of four defects found by reading the engine from outside (issue #25): a paused
//! ex-leader's close, `[ha]` changes on reload, and what a stopped daemon leaves behind. Each
//! goes through the simulators over real HTTP.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use msp_ticketd::demo::{ADMIN_TOKEN, DEMO_RULES, Lab, Psa, is_closed};
use msp_ticketd::engine::{Engine, Shared};
use msp_ticketd::service::{self, StartOptions};
use msp_ticketd::store::{Commit, CursorKey, Decision, DecisionQuery, LeaderInfo, SeenEvent, Store, StoreError};
use msp_ticketd::wiring;
use ticketing_core::edit::RuleBook;
use ticketing_core::ledger::{Ledger, TicketState};
use ticketing_core::model::PsaId;
use ticketing_core::ports::Cursor;
use ticketing_core::ports::{PortError, TicketSink};
use ticketing_core::ticket::{IdempotencyKey, TicketDraft, TicketRef};

const DEVICE: &str = "dev-pause";
const REFUSED_CLOSE: &str = "msp_psa_writes_refused_total{op=\"close\",reason=\"not_leading\"}";

/// The ticket of the lab's cloud device, once the PSA has it.
async fn device_ticket(lab: &Lab) -> Result<Option<serde_json::Value>> {
    Ok(lab.tickets().await?.into_iter().find(|t| t.to_string().contains("PC-PAUSE")))
}

/// The PSA sink, counting the closes it is asked for once another instance took the lease (the
/// call reaches the sink, whatever the PSA then does with it).
struct CloseWatch {
    inner: Arc<dyn TicketSink>,
    usurped: Arc<AtomicBool>,
    closes_after: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl TicketSink for CloseWatch {
    async fn catalog(&self) -> Result<ticketing_core::catalog::Catalog, PortError> {
        self.inner.catalog().await
    }
    async fn accounts(&self) -> Result<Vec<ticketing_core::ports::Account>, PortError> {
        self.inner.accounts().await
    }
    async fn create_ticket(&self, draft: &TicketDraft) -> Result<TicketRef, PortError> {
        self.inner.create_ticket(draft).await
    }
    async fn find_ticket(&self, key: &IdempotencyKey) -> Result<Option<TicketRef>, PortError> {
        self.inner.find_ticket(key).await
    }
    async fn ticket(&self, ticket: PsaId) -> Result<Option<ticketing_core::ports::RemoteTicket>, PortError> {
        self.inner.ticket(ticket).await
    }
    async fn close_ticket(&self, ticket: &TicketRef, status: PsaId) -> Result<(), PortError> {
        if self.usurped.load(Ordering::SeqCst) {
            self.closes_after.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.close_ticket(ticket, status).await
    }
    async fn update_ticket(
        &self,
        ticket: &TicketRef,
        update: &ticketing_core::ports::TicketUpdate,
    ) -> Result<(), PortError> {
        self.inner.update_ticket(ticket, update).await
    }
    async fn add_note(
        &self,
        ticket: &TicketRef,
        note: &ticketing_core::ticket::TicketNote,
        look_up_first: bool,
    ) -> Result<(), PortError> {
        self.inner.add_note(ticket, note, look_up_first).await
    }
    async fn owned_tickets(
        &self,
        prefix: &str,
        closed_since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Vec<ticketing_core::ports::OwnedTicket>>, PortError> {
        self.inner.owned_tickets(prefix, closed_since).await
    }
}

/// The daemon's store, except that the commit that plans a close returns (once, after landing)
/// only after `pause`, and then with the lease taken by another instance.
///
/// Once the lease is taken, the paused leader's own next lease call (where it learns that it
/// lost the lease and stands by, ending its calls in flight) waits until the close task has
/// run to its send-or-refuse point (`close_decided`), so the test sees that point whatever the
/// machine's load.
struct PausingStore {
    inner: Arc<dyn Store>,
    usurped: Arc<AtomicBool>,
    pause: Duration,
    close_decided: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl Store for PausingStore {
    fn load_ledger(&self) -> Result<Ledger, StoreError> {
        self.inner.load_ledger()
    }
    fn commit(&self, commit: &Commit<'_>) -> Result<(), StoreError> {
        self.inner.commit(commit)?;
        let plans_close =
            commit.transitions.iter().any(|(_, e)| e.is_some_and(|e| matches!(e.state, TicketState::Closing { .. })));
        if plans_close && !self.usurped.load(Ordering::SeqCst) {
            std::thread::sleep(self.pause);
            let taken = self.inner.lease("usurper", Duration::from_secs(600))?;
            assert!(taken.is_some(), "the paused leader's lease ran out, so another instance takes it");
            self.usurped.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
    fn cursor(&self, key: &CursorKey) -> Result<Option<Cursor>, StoreError> {
        self.inner.cursor(key)
    }
    fn rulebook(&self) -> Result<Option<(RuleBook, u64)>, StoreError> {
        self.inner.rulebook()
    }
    fn rules_revision(&self) -> Result<u64, StoreError> {
        self.inner.rules_revision()
    }
    fn save_rulebook(&self, book: &RuleBook, expected: u64) -> Result<u64, StoreError> {
        self.inner.save_rulebook(book, expected)
    }
    fn document(&self, name: &str) -> Result<Option<(String, u64)>, StoreError> {
        self.inner.document(name)
    }
    fn document_revision(&self, name: &str) -> Result<u64, StoreError> {
        self.inner.document_revision(name)
    }
    fn save_document(&self, name: &str, body: &str, expected: Option<u64>) -> Result<u64, StoreError> {
        self.inner.save_document(name, body, expected)
    }
    fn events_since(&self, since: chrono::DateTime<chrono::Utc>) -> Result<Vec<SeenEvent>, StoreError> {
        self.inner.events_since(since)
    }
    fn decisions(&self, query: &DecisionQuery) -> Result<Vec<Decision>, StoreError> {
        self.inner.decisions(query)
    }
    fn probe_writable(&self) -> Result<(), StoreError> {
        self.inner.probe_writable()
    }
    fn prune_history(&self, before: chrono::DateTime<chrono::Utc>) -> Result<usize, StoreError> {
        self.inner.prune_history(before)
    }
    fn verify(&self) -> Result<(), StoreError> {
        self.inner.verify()
    }
    fn request_retry(&self, target: &str) -> Result<(), StoreError> {
        self.inner.request_retry(target)
    }
    fn take_retry_requests(&self) -> Result<Vec<String>, StoreError> {
        self.inner.take_retry_requests()
    }
    fn lease(&self, holder: &str, lease: Duration) -> Result<Option<u64>, StoreError> {
        if self.usurped.load(Ordering::SeqCst) {
            let deadline = std::time::Instant::now() + self.pause * 10;
            while !(self.close_decided)() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.inner.lease(holder, lease)
    }
    fn release(&self, holder: &str, epoch: u64) -> Result<(), StoreError> {
        self.inner.release(holder, epoch)
    }
    fn leader(&self) -> Result<Option<LeaderInfo>, StoreError> {
        self.inner.leader()
    }
    fn recent_transitions(
        &self,
        limit: usize,
    ) -> Result<Vec<(chrono::DateTime<chrono::Utc>, String, String)>, StoreError> {
        self.inner.recent_transitions(limit)
    }
}

/// A leader that is paused (here: inside its own tick, right after it started the close of a
/// cleared status ticket) past its lease, while another instance takes the lease over, must not
/// send that close when it wakes up: the new leader may have reopened the ticket meanwhile.
///
/// The pause is made deterministic: the store's commit of the close plan returns only after the
/// lease has run out and another instance has taken it (the engine's thread is paused there, as
/// by a stalled disk or `SIGSTOP`; the runtime's workers and the simulators go on). What counts is
/// whether the close reaches the sink after that: the ex-leader steps down moments later, so the
/// PSA may or may not have the call by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leaders_close_is_refused_once_the_lease_moved() -> Result<()> {
    let lab = Lab::start().await?;
    let toml = lab.config_toml(DEMO_RULES, "127.0.0.1:0");
    let mut config = msp_ticketd::config::Config::parse(&toml, "pause.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    config.ha.lease_secs = 3;
    config.ha.renew_secs = 1;
    config.ha.instance = Some("paused".to_owned());
    config.polling.statuses_secs = 1;
    config.polling.events_secs = 1;
    let (store, book) = service::open_store(&config)?;
    let wired = wiring::wire(&config)?;

    let usurped = Arc::new(AtomicBool::new(false));
    let closes_after = Arc::new(AtomicUsize::new(0));
    let shared_cell: Arc<std::sync::OnceLock<Arc<Shared>>> = Arc::default();
    let close_decided = {
        let (cell, closes_after) = (shared_cell.clone(), closes_after.clone());
        Arc::new(move || {
            closes_after.load(Ordering::SeqCst) > 0
                || cell.get().is_some_and(|s| support::metric(&s.metrics.render(), REFUSED_CLOSE) > 0)
        })
    };
    let store: Arc<dyn Store> = Arc::new(PausingStore {
        inner: store,
        usurped: usurped.clone(),
        pause: Duration::from_secs(config.ha.lease_secs + 1),
        close_decided,
    });
    let (shared, writers): (Arc<Shared>, _) = Shared::new(store.clone(), book);
    let _ = shared_cell.set(shared.clone());
    let sink = Arc::new(CloseWatch {
        inner: wired.sink.clone(),
        usurped: usurped.clone(),
        closes_after: closes_after.clone(),
    });
    let mut engine = Engine::new(
        shared.clone(),
        writers.engine,
        sink,
        wired.events.clone(),
        wired.statuses.clone(),
        config.mapping.clone(),
        config.polling.clone(),
    )?
    .with_ha(&config.ha);

    // A status ticket, then its status clears: the engine plans the close.
    lab.kbh_device(DEVICE, "PC-PAUSE", &["license_expired"]).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let ticket = loop {
        engine.tick().await?;
        if let Some(t) = device_ticket(&lab).await? {
            break t;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no ticket for the device within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!is_closed(Psa::Autotask, &ticket), "{ticket}");
    lab.kbh_device(DEVICE, "PC-PAUSE", &[]).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !usurped.load(Ordering::SeqCst) {
        engine.tick().await?;
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the close was never started within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The tick that started the close has run its calls; a few more ticks as a standby.
    for _ in 0..3 {
        engine.tick().await?;
    }
    let ticket = device_ticket(&lab).await?.context("the ticket")?;
    assert!(!is_closed(Psa::Autotask, &ticket), "the paused ex-leader closed the ticket: {ticket}");
    assert_eq!(closes_after.load(Ordering::SeqCst), 0, "the paused ex-leader sent a close after the lease moved");
    let metrics = shared.metrics.render();
    assert_eq!(support::metric(&metrics, REFUSED_CLOSE), 1, "{metrics}");
    Ok(())
}

/// `[ha]` needs a restart to change; a reload that changes it is refused, naming the key, and
/// the daemon keeps running on the previous configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_changes_ha_is_refused_naming_the_key() -> Result<()> {
    let lab = Lab::start().await?;
    let path = lab.dir.join("msp-ticketd.toml");
    let text = lab.config_toml(DEMO_RULES, "127.0.0.1:0");
    std::fs::write(&path, &text)?;
    let config = msp_ticketd::config::Config::parse(&text, "ha.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    let options = StartOptions { config_path: Some(path.clone()), ..StartOptions::every(support::TICK) };
    let running = service::start_with(&config, options).await?;
    let addr = running.admin_addr.context("admin")?;

    std::fs::write(&path, format!("{text}\n[ha]\nlease_secs = 25\n"))?;
    let resp = reqwest::Client::new().post(format!("http://{addr}/api/reload")).bearer_auth(ADMIN_TOKEN).send().await?;
    let status = resp.status();
    let body = resp.text().await?;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("ha.lease_secs"), "the refusal names the key: {body}");
    let m = support::metrics(&running).await?;
    assert_eq!(support::metric(&m, "msp_config_reloads_total{result=\"error\"}"), 1, "{m}");
    assert_eq!(support::metric(&m, "msp_config_reloads_total{result=\"ok\"}"), 0, "{m}");
    running.stop().await?;
    Ok(())
}

/// Open file descriptors of this process that point at `path`.
fn fds_on(path: &std::path::Path) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return 0 };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok()).filter(|target| target.starts_with(path)).count()
}

/// A stopped daemon frees what it held: after `stop`, nothing of it keeps the store open (the
/// reloader and the shared state held each other, so neither was ever dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_daemon_with_a_reloader_releases_its_store() -> Result<()> {
    let lab = Lab::start().await?;
    let path = lab.dir.join("msp-ticketd.toml");
    let text = lab.config_toml(DEMO_RULES, "127.0.0.1:0");
    std::fs::write(&path, &text)?;
    let config = msp_ticketd::config::Config::parse(&text, "stop.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    let store_file = lab.store_path();
    let options = StartOptions { config_path: Some(path.clone()), ..StartOptions::every(support::TICK) };
    let running = service::start_with(&config, options).await?;
    let weak = Arc::downgrade(&running.shared);
    assert!(fds_on(&store_file) > 0, "the running daemon has its store open");
    running.stop().await?;
    // Tasks of the stopped daemon end with it; give them the engine's tick to let go.
    support::eventually(5, "the stopped daemon's state freed", || async {
        Ok((weak.upgrade().is_none() && fds_on(&store_file) == 0).then_some(()))
    })
    .await?;
    Ok(())
}
