//! What the end-to-end test binaries share: starting the daemon against the lab, waiting for
//! what the simulators show, reading `/metrics`.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use msp_ticketd::demo::{ADMIN_TOKEN, Lab};
use msp_ticketd::service::{self, Running, StartOptions};
use serde_json::Value;

pub(crate) const TICK: Duration = Duration::from_millis(100);

pub(crate) async fn start(lab: &Lab, rules: &str, polling: &[(&str, &str)]) -> Result<Running> {
    start_with(lab, rules, polling, None).await
}

pub(crate) async fn start_with(
    lab: &Lab,
    rules: &str,
    polling: &[(&str, &str)],
    wrap: Option<service::SinkWrapper>,
) -> Result<Running> {
    let mut toml = lab.config_toml(rules, "127.0.0.1:0");
    // A bare key is a `[polling]` key.
    let keys: Vec<(String, &str)> = polling
        .iter()
        .map(|(k, v)| (if k.contains('.') { (*k).to_owned() } else { format!("polling.{k}") }, *v))
        .collect();
    set_keys(&mut toml, &keys.iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>());
    let config = msp_ticketd::config::Config::parse(&toml, "e2e.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    service::start_with(&config, StartOptions { wrap_sink: wrap, ..StartOptions::every(TICK) }).await
}

/// Polls `check` until it returns `Some`, or fails after `secs`.
pub(crate) async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn wait_tickets(lab: &Lab, n: usize, secs: u64) -> Result<Vec<Value>> {
    eventually(secs, &format!("{n} tickets"), || async {
        let t = lab.tickets().await?;
        Ok((t.len() >= n).then_some(t))
    })
    .await
}

pub(crate) fn by_external_id(tickets: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for t in tickets {
        *m.entry(t["externalID"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    m
}

pub(crate) fn find<'a>(tickets: &'a [Value], title_part: &str) -> &'a Value {
    let hits: Vec<&Value> =
        tickets.iter().filter(|t| t["title"].as_str().unwrap_or_default().contains(title_part)).collect();
    assert_eq!(hits.len(), 1, "exactly one ticket titled like {title_part:?} in {tickets:#?}");
    hits[0]
}

pub(crate) fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default()).map(|t| t.with_timezone(&Utc)).expect("a timestamp")
}

/// Due time = creation + the rule's due hours (within the test's own runtime).
pub(crate) fn assert_due(t: &Value, hours: i64) {
    let due = time(&t["dueDateTime"]);
    let created = time(&t["createDate"]);
    let delta = due - created - chrono::Duration::hours(hours);
    assert!(delta.num_seconds().abs() < 120, "due {due} vs created {created} + {hours}h in {t}");
}

pub(crate) async fn metrics(running: &Running) -> Result<String> {
    let addr = running.admin_addr.expect("admin listener");
    Ok(admin_get(addr, "/metrics").await?.text().await?)
}

/// `GET /api/decisions?<query>` of the admin listener at `addr`.
pub(crate) async fn decisions(addr: impl std::fmt::Display, query: &str) -> Result<Value> {
    Ok(admin_get(addr, &format!("/api/decisions?{query}")).await?.json().await?)
}

/// `GET <path>` of the admin listener at `addr` with the demo's admin token; a status other
/// than 2xx is an error.
async fn admin_get(addr: impl std::fmt::Display, path: &str) -> Result<reqwest::Response> {
    let resp = reqwest::Client::new().get(format!("http://{addr}{path}")).bearer_auth(ADMIN_TOKEN).send().await?;
    Ok(resp.error_for_status()?)
}

pub(crate) fn metric(text: &str, line_start: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(line_start).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0)
}

/// A loopback port free right now (for a listener a child process opens).
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Replaces `key = …` lines (the first of each) in a lab configuration, or appends the line to
/// the section `[section]` when the key is not there: `("autotask.hourly_budget", "20")`.
pub(crate) fn set_keys(toml: &mut String, keys: &[(&str, &str)]) {
    for (path, value) in keys {
        let (section, key) = path.rsplit_once('.').expect("section.key");
        let header = format!("[{section}]\n");
        let at = toml.find(&header).expect("a section of the lab config") + header.len();
        let line = format!("{key} = ");
        let end_of_section = toml[at..].find("\n[").map_or(toml.len(), |i| at + i + 1);
        match toml[at..end_of_section].find(&line) {
            Some(i) => {
                let start = at + i;
                let end = start + toml[start..].find('\n').unwrap();
                toml.replace_range(start..end, &format!("{key} = {value}"));
            }
            None => toml.insert_str(at, &format!("{key} = {value}\n")),
        }
    }
}

/// Which PSA answer [`LoseTheAnswer`] never returns (as if the daemon crashed right after the
/// PSA took the call).
#[derive(Clone, Copy)]
pub(crate) enum Lose {
    /// Every create's.
    Creates,
    /// The answer to a note whose marker contains this.
    NotesMarked(&'static str),
}

/// A sink that forwards every call to the real one, but never returns the answers `lose`
/// names (the call did reach the PSA), counting them in `lost`.
pub(crate) struct LoseTheAnswer {
    pub(crate) inner: std::sync::Arc<dyn ticketing_core::ports::TicketSink>,
    pub(crate) lose: Lose,
    pub(crate) lost: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LoseTheAnswer {
    async fn lost(&self) {
        self.lost.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::future::pending::<()>().await;
    }
}

#[async_trait::async_trait]
impl ticketing_core::ports::TicketSink for LoseTheAnswer {
    async fn catalog(&self) -> Result<ticketing_core::catalog::Catalog, ticketing_core::ports::PortError> {
        self.inner.catalog().await
    }
    async fn accounts(&self) -> Result<Vec<ticketing_core::ports::Account>, ticketing_core::ports::PortError> {
        self.inner.accounts().await
    }
    async fn create_ticket(
        &self,
        draft: &ticketing_core::ticket::TicketDraft,
    ) -> Result<ticketing_core::ticket::TicketRef, ticketing_core::ports::PortError> {
        let created = self.inner.create_ticket(draft).await?;
        if matches!(self.lose, Lose::Creates) {
            self.lost().await;
        }
        Ok(created)
    }
    async fn find_ticket(
        &self,
        key: &ticketing_core::ticket::IdempotencyKey,
    ) -> Result<Option<ticketing_core::ticket::TicketRef>, ticketing_core::ports::PortError> {
        self.inner.find_ticket(key).await
    }
    async fn ticket(
        &self,
        ticket: ticketing_core::model::PsaId,
    ) -> Result<Option<ticketing_core::ports::RemoteTicket>, ticketing_core::ports::PortError> {
        self.inner.ticket(ticket).await
    }
    async fn close_ticket(
        &self,
        ticket: &ticketing_core::ticket::TicketRef,
        status: ticketing_core::model::PsaId,
    ) -> Result<(), ticketing_core::ports::PortError> {
        self.inner.close_ticket(ticket, status).await
    }
    async fn update_ticket(
        &self,
        ticket: &ticketing_core::ticket::TicketRef,
        update: &ticketing_core::ports::TicketUpdate,
    ) -> Result<(), ticketing_core::ports::PortError> {
        self.inner.update_ticket(ticket, update).await
    }
    async fn add_note(
        &self,
        ticket: &ticketing_core::ticket::TicketRef,
        note: &ticketing_core::ticket::TicketNote,
        look_up_first: bool,
    ) -> Result<(), ticketing_core::ports::PortError> {
        self.inner.add_note(ticket, note, look_up_first).await?;
        if matches!(self.lose, Lose::NotesMarked(part) if note.marker.contains(part)) {
            self.lost().await;
        }
        Ok(())
    }
    async fn owned_tickets(
        &self,
        prefix: &str,
        closed_since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Vec<ticketing_core::ports::OwnedTicket>>, ticketing_core::ports::PortError> {
        self.inner.owned_tickets(prefix, closed_since).await
    }
}
