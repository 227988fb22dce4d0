//! The PostgreSQL store, for several daemons sharing one database (leader lease, fencing
//! epoch): the same semantics as [`super::SqliteStore`], schema under numbered migrations.
//!
//! # Why a thread of its own
//!
//! [`Store`] is a sync trait: the engine calls it from async code (tokio worker threads, and
//! current-thread runtimes in tests), the CLI from plain `main`. The sync `postgres` crate runs
//! a runtime of its own and panics when called inside another one, and `block_on` on the
//! caller's runtime would deadlock a current-thread runtime. So the store owns one thread with
//! its own current-thread runtime and the `tokio-postgres` client; each trait method sends it a
//! job over a channel and blocks on the answer. That works the same from sync and async callers
//! (blocking a tokio worker for one round trip is what the SQLite store does for a disk write),
//! and it serializes the store's calls on one connection, as SQLite's mutex does.
//!
//! ```text
//!   caller (any thread) --job--> [store thread: current-thread runtime, Client + Connection]
//!          ^                                  |
//!          +------------- answer -------------+
//! ```
//!
//! # Failures
//!
//! A broken connection is reopened and the call run once more, but only when nothing of it can
//! have landed: a transaction that broke before its `COMMIT` was rolled back by the server, and
//! the single-statement writes outside transactions are idempotent. A connection lost during
//! `COMMIT` is reported, never retried. Every statement runs under `statement_timeout`, and each
//! call under a client-side deadline (a dead network does not answer at all).
//!
//! The password comes from the configuration's secret reference and is set on the connection
//! settings apart from the URL; errors and `Debug` name the user, host and database only.

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ticketing_core::edit::RuleBook;
use ticketing_core::ledger::{Ledger, LedgerEntry};
use ticketing_core::model::{Event, Product};
use ticketing_core::ports::Cursor;
use ticketing_core::secret::Secret;
use tokio_postgres::{Client, NoTls};

use super::{Commit, CursorKey, Decision, DecisionQuery, LeaderInfo, Outcome, SeenEvent, Store, StoreError};

use super::postgres_schema::MIGRATIONS;

#[path = "postgres_access.rs"]
pub(super) mod access;

/// The advisory lock key that serializes migrations of several daemons starting at once
/// (transaction-scoped, so it is safe behind a pooling proxy).
const MIGRATION_LOCK: i64 = 0x6d73_705f_7469_636b; // "msp_tick"

/// Timeouts of the PostgreSQL store.
#[derive(Debug, Clone, Copy)]
pub struct PostgresTimeouts {
    /// Connecting (TCP and startup).
    pub connect: Duration,
    /// Each statement (`statement_timeout`, also `lock_timeout`).
    pub statement: Duration,
    /// One whole call, on the client's clock: past it the connection is dropped.
    pub call: Duration,
}

impl PostgresTimeouts {
    /// 10 s to connect, 30 s a statement, 65 s a call.
    pub const DEFAULT: Self =
        Self { connect: Duration::from_secs(10), statement: Duration::from_secs(30), call: Duration::from_secs(65) };
}

/// How a call failed inside the store thread.
enum Fail {
    /// The connection broke before anything of the call could have landed: run it again on a
    /// new connection.
    Broken(tokio_postgres::Error),
    /// Final.
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        if is_broken(&e) { Self::Broken(e) } else { Self::Store(pg(&e)) }
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Whether the error means the connection is gone (rather than the statement refused).
fn is_broken(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return code.code().starts_with("08")
            || [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW].contains(code);
    }
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

/// A database error's message: the server's own words (never our parameters).
fn pg(e: &tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    match e.as_db_error() {
        Some(db) if *db.code() == SqlState::QUERY_CANCELED => {
            StoreError::Database(format!("statement timed out: {}", db.message()))
        }
        Some(db) => StoreError::Database(format!("{} ({})", db.message(), db.code().code())),
        None => StoreError::Database(e.to_string()),
    }
}

fn corrupt(table: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { table, detail: e.to_string() }
}

/// Millisecond precision, as the SQLite store keeps (so both answer alike).
fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::{DurationRound as _, TimeDelta};
    t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
}

/// Within the range PostgreSQL's `timestamptz` holds (chrono's reaches much further: a
/// `since` of [`DateTime::MIN_UTC`] means "everything").
fn bound(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::TimeZone as _;
    let year = |y| Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).single().unwrap_or(t);
    ms(t.clamp(year(-4000), year(200_000)))
}

/// Runs `body` in a transaction on `client`: commits when it succeeds, and rolls back at once
/// when it fails. Dropping a `Transaction` only queues its `ROLLBACK`, and the store thread's
/// runtime sleeps between calls, so the session would otherwise sit idle in transaction, holding
/// its locks, until the next call.
async fn in_transaction<T>(
    client: &mut Client,
    body: impl AsyncFnOnce(&tokio_postgres::Transaction<'_>) -> Result<T, Fail>,
) -> Result<T, Fail> {
    let tx = client.transaction().await?;
    match body(&tx).await {
        Ok(v) => {
            finish(tx).await?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// Commits; a connection lost during `COMMIT` is reported, never retried (it may have landed).
async fn finish(tx: tokio_postgres::Transaction<'_>) -> Result<(), Fail> {
    tx.commit().await.map_err(|e| {
        if is_broken(&e) {
            Fail::Store(StoreError::Database(format!(
                "the connection was lost while committing; the write may or may not have landed: {e}"
            )))
        } else {
            Fail::Store(pg(&e))
        }
    })
}

/// One call, type-erased for the store thread.
trait Job: Send {
    /// Runs the call once; `None` when it answered (success or final error), else the broken
    /// connection's error.
    fn attempt<'c>(&'c mut self, client: &'c mut Client) -> Pin<Box<dyn Future<Output = Option<StoreError>> + 'c>>;
    /// Answers with a failure that is not the call's own (no connection, timeout).
    fn fail(self: Box<Self>, e: StoreError);
}

struct Typed<F, R> {
    run: F,
    reply: mpsc::SyncSender<Result<R, StoreError>>,
}

impl<F, R> Job for Typed<F, R>
where
    F: AsyncFnMut(&mut Client) -> Result<R, Fail> + Send,
    R: Send,
{
    fn attempt<'c>(&'c mut self, client: &'c mut Client) -> Pin<Box<dyn Future<Output = Option<StoreError>> + 'c>> {
        Box::pin(async move {
            match (self.run)(client).await {
                Ok(v) => {
                    let _ = self.reply.send(Ok(v));
                    None
                }
                Err(Fail::Store(e)) => {
                    let _ = self.reply.send(Err(e));
                    None
                }
                Err(Fail::Broken(e)) => Some(StoreError::Database(format!("the connection broke: {e}"))),
            }
        })
    }

    fn fail(self: Box<Self>, e: StoreError) {
        let _ = self.reply.send(Err(e));
    }
}

/// The PostgreSQL store (see the module docs).
pub struct PostgresStore {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// `postgres user@host:port/db`, for messages.
    label: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresStore({})", self.label)
    }
}

/// `postgres user@host:port/db` of a connection's settings (never the password).
fn label_of(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or_else(|| config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    format!("postgres {user}{}/{}", hosts.join(","), config.get_dbname().unwrap_or(""))
}

impl PostgresStore {
    /// The schema version this build migrates to.
    pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

    /// Connects to `url` (`postgres://user@host:port/db`; a password in it is refused, give it
    /// as `password`), migrates the schema, and starts the store thread.
    pub fn connect(url: &str, password: Option<&Secret>) -> Result<Self, StoreError> {
        Self::connect_with(url, password, PostgresTimeouts::DEFAULT)
    }

    /// [`Self::connect`] with other timeouts.
    pub fn connect_with(url: &str, password: Option<&Secret>, timeouts: PostgresTimeouts) -> Result<Self, StoreError> {
        let mut config = parse_url(url)?;
        let label = label_of(&config);
        if let Some(p) = password {
            config.password(p.expose());
        }
        config.connect_timeout(timeouts.connect);
        config.application_name("msp-ticketd");
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Io(format!("{label}: cannot start the store's runtime: {e}")))?;
        let session = Session { config, timeouts, client: None, label: label.clone() };
        let thread = std::thread::Builder::new()
            .name("msp-store-postgres".into())
            .spawn(move || session.serve(&runtime, &rx))
            .map_err(|e| StoreError::Io(format!("{label}: cannot start the store thread: {e}")))?;
        let store = Self { jobs: Some(tx), thread: Some(thread), label };
        store.migrate()?;
        Ok(store)
    }

    /// The schema version after migration.
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        self.call(async |c: &mut Client| {
            let row = c.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?;
            Ok(row.get::<_, i64>(0) as usize)
        })
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.call(async |c: &mut Client| {
            in_transaction(c, async |tx| {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)",
            )
            .await?;
            let current: i64 =
                tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?.get(0);
            if current as usize > MIGRATIONS.len() {
                return Err(Fail::Store(StoreError::Database(format!(
                    "the database's schema is version {current}, newer than this build's {} (run the newer msp-ticketd)",
                    MIGRATIONS.len()
                ))));
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
                tx.batch_execute(sql).await?;
                tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())", &[&(i as i64 + 1)])
                    .await?;
            }
            Ok(())
            })
            .await
        })
    }

    /// Sends a call to the store thread and waits for its answer. Database errors name the
    /// host and database.
    fn call<R, F>(&self, run: F) -> Result<R, StoreError>
    where
        F: AsyncFnMut(&mut Client) -> Result<R, Fail> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        let gone = || StoreError::Database(format!("{}: the store thread stopped", self.label));
        let jobs = self.jobs.as_ref().ok_or_else(gone)?;
        jobs.send(Box::new(Typed { run, reply })).map_err(|_| gone())?;
        match answer.recv().map_err(|_| gone())? {
            Ok(v) => Ok(v),
            Err(StoreError::Database(m)) => Err(StoreError::Database(format!("{}: {m}", self.label))),
            Err(StoreError::Corrupt { table, detail }) => {
                Err(StoreError::Corrupt { table, detail: format!("{detail} ({})", self.label) })
            }
            Err(e) => Err(e),
        }
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Closing the channel ends the thread after its current call; joining closes the
        // connection before the store is gone.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Parses the store's URL; one with a password in it is refused (it would end up in logs).
fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let config: tokio_postgres::Config = url.parse().map_err(|e| {
        StoreError::Database(format!(
            "store.url is not a PostgreSQL URL: {e} (expected postgres://user@host:port/database)"
        ))
    })?;
    if config.get_password().is_some() {
        return Err(StoreError::Database(
            "store.url has a password in it (give it as store.password, a secret reference)".to_owned(),
        ));
    }
    if config.get_dbname().is_none() {
        return Err(StoreError::Database(
            "store.url names no database (expected postgres://user@host:port/database)".to_owned(),
        ));
    }
    Ok(config)
}

/// The store thread's state: the settings and the open connection, if any.
struct Session {
    config: tokio_postgres::Config,
    timeouts: PostgresTimeouts,
    client: Option<Client>,
    label: String,
}

impl Session {
    fn serve(mut self, runtime: &tokio::runtime::Runtime, jobs: &mpsc::Receiver<Box<dyn Job>>) {
        while let Ok(mut job) = jobs.recv() {
            let outcome = runtime.block_on(self.run(job.as_mut()));
            if let Err(e) = outcome {
                job.fail(e);
            }
        }
        // Dropping the client ends the connection task; let it say goodbye.
        self.client = None;
        runtime.block_on(tokio::task::yield_now());
    }

    /// Runs one job, reconnecting and running it once more when the connection broke.
    async fn run(&mut self, job: &mut dyn Job) -> Result<(), StoreError> {
        let mut last = None;
        for _ in 0..2 {
            if self.client.as_ref().is_none_or(Client::is_closed) {
                // The connect timeout covers the TCP connect only; a server that accepts and
                // then says nothing must not hang the store either.
                let open = tokio::time::timeout(self.timeouts.connect, self.open()).await.map_err(|_| {
                    StoreError::Database(format!(
                        "cannot connect: no answer within {} ms",
                        self.timeouts.connect.as_millis()
                    ))
                })?;
                self.client = Some(open?);
            }
            let Some(client) = self.client.as_mut() else { unreachable!("just opened") };
            match tokio::time::timeout(self.timeouts.call, job.attempt(client)).await {
                Ok(None) => return Ok(()),
                Ok(Some(broken)) => {
                    tracing::warn!(store = %self.label, error = %broken, "the store's connection broke; reconnecting");
                    self.client = None;
                    last = Some(broken);
                }
                Err(_) => {
                    // Whatever was in flight is rolled back with the connection, unless its
                    // COMMIT had reached the server.
                    self.client = None;
                    return Err(StoreError::Database(format!(
                        "no answer within {} s (the connection was dropped; a write in flight may or may not have landed)",
                        self.timeouts.call.as_secs()
                    )));
                }
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Database("the connection broke".to_owned())))
    }

    async fn open(&self) -> Result<Client, StoreError> {
        let (client, connection) =
            self.config.connect(NoTls).await.map_err(|e| StoreError::Database(format!("cannot connect: {e}")))?;
        let label = self.label.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(store = %label, error = %e, "the store's connection ended");
            }
        });
        let ms = self.timeouts.statement.as_millis();
        client
            .batch_execute(&format!(
                "SET statement_timeout = {ms}; SET lock_timeout = {ms}; SET idle_in_transaction_session_timeout = {}",
                ms.saturating_mul(2)
            ))
            .await
            .map_err(|e| pg(&e))?;
        Ok(client)
    }
}

/// A ledger row, made on the caller's thread (the store thread takes owned data only).
struct EntryRow {
    key: String,
    tenant: String,
    state: &'static str,
    generation: i64,
    idempotency_key: String,
    urgency: String,
    ticket_id: Option<i64>,
    entry: String,
    updated_at: DateTime<Utc>,
}

impl EntryRow {
    fn of(entry: &LedgerEntry) -> Result<Self, StoreError> {
        Ok(Self {
            key: entry.key.canonical(),
            tenant: entry.key.tenant().as_str().to_owned(),
            state: entry.state.name(),
            generation: i64::from(entry.generation),
            idempotency_key: entry.idempotency_key.as_str().to_owned(),
            urgency: format!("{:?}", entry.urgency).to_lowercase(),
            ticket_id: entry.ticket().map(|t| t.id.0),
            entry: serde_json::to_string(entry).map_err(|e| corrupt("ledger", e))?,
            updated_at: bound(entry.updated_at),
        })
    }
}

struct EventRow {
    product: &'static str,
    tenant: String,
    source_id: String,
    occurred_at: DateTime<Utc>,
    event: String,
}

/// A commit as owned rows.
struct CommitRows {
    /// (key, transition JSON, the entry after it or `None`: removed)
    transitions: Vec<(String, String, Option<EntryRow>)>,
    events: Vec<EventRow>,
    /// (source, tenant, cursor)
    cursors: Vec<(String, String, String)>,
    /// (at, product, tenant, event id, device, device name, outcome, decision JSON)
    decisions: Vec<DecisionRow>,
    at: DateTime<Utc>,
    epoch: Option<u64>,
    relaxed: bool,
}

type DecisionRow =
    (DateTime<Utc>, &'static str, String, Option<String>, Option<String>, Option<String>, &'static str, String);

impl CommitRows {
    fn of(commit: &Commit<'_>) -> Result<Self, StoreError> {
        let mut transitions = Vec::with_capacity(commit.transitions.len());
        for (t, entry) in &commit.transitions {
            let json = serde_json::to_string(t).map_err(|e| corrupt("transitions", e))?;
            transitions.push((t.key().canonical(), json, entry.map(EntryRow::of).transpose()?));
        }
        let mut events = Vec::with_capacity(commit.events.len());
        for e in commit.events {
            events.push(EventRow {
                product: e.product.code(),
                tenant: e.tenant.as_str().to_owned(),
                source_id: e.source_id.as_str().to_owned(),
                occurred_at: bound(e.occurred_at),
                event: serde_json::to_string(e).map_err(|e| corrupt("event_history", e))?,
            });
        }
        let mut decisions = Vec::with_capacity(commit.decisions.len());
        for d in commit.decisions {
            decisions.push((
                bound(d.at),
                d.product.code(),
                d.tenant.as_str().to_owned(),
                d.event_id.clone(),
                d.device.clone(),
                d.device_name.clone(),
                d.outcome.code(),
                serde_json::to_string(d).map_err(|e| corrupt("decisions", e))?,
            ));
        }
        Ok(Self {
            transitions,
            events,
            decisions,
            cursors: commit
                .cursors
                .iter()
                .map(|(k, c)| (k.source.clone(), k.tenant.as_str().to_owned(), c.0.clone()))
                .collect(),
            at: bound(commit.at.unwrap_or_else(Utc::now)),
            epoch: commit.epoch,
            relaxed: commit.relaxed,
        })
    }
}

/// A lease length as seconds, bounded so the interval cannot overflow.
fn lease_secs(lease: Duration) -> f64 {
    lease.as_secs_f64().min(100.0 * 365.0 * 86_400.0)
}

impl Store for PostgresStore {
    fn access(&self) -> Option<&dyn super::AccessStore> {
        Some(self)
    }

    fn load_ledger(&self) -> Result<Ledger, StoreError> {
        self.call(async |c: &mut Client| {
            let rows = c.query("SELECT entry FROM ledger", &[]).await?;
            let mut entries = Vec::with_capacity(rows.len());
            for row in rows {
                let json: &str = row.get(0);
                entries.push(serde_json::from_str::<LedgerEntry>(json).map_err(|e| corrupt("ledger", e))?);
            }
            Ok(Ledger::from_entries(entries))
        })
    }

    fn commit(&self, commit: &Commit<'_>) -> Result<(), StoreError> {
        let rows = CommitRows::of(commit)?;
        self.call(async move |c: &mut Client| {
            in_transaction(c, async |tx| {
            if rows.relaxed {
                // Answers only: the commit returns before the WAL is flushed (never reordered).
                tx.batch_execute("SET LOCAL synchronous_commit = off").await?;
            }
            if let Some(mine) = rows.epoch {
                // FOR SHARE: a takeover waits for this transaction, so the epoch checked here is
                // the one in force when the write lands.
                let current = tx
                    .query_opt("SELECT epoch FROM leader WHERE id = 1 FOR SHARE", &[])
                    .await?
                    .map_or(0, |r| r.get::<_, i64>(0) as u64);
                if current != mine {
                    return Err(Fail::Store(StoreError::Fenced { current }));
                }
            }
            if !rows.transitions.is_empty() {
                let upsert = tx
                    .prepare(
                        "INSERT INTO ledger (key, tenant, state, generation, idempotency_key, urgency, ticket_id, entry, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (key) DO UPDATE SET state = excluded.state, generation = excluded.generation,
                            idempotency_key = excluded.idempotency_key, urgency = excluded.urgency,
                            ticket_id = excluded.ticket_id, entry = excluded.entry, updated_at = excluded.updated_at",
                    )
                    .await?;
                let delete = tx.prepare("DELETE FROM ledger WHERE key = $1").await?;
                let log = tx.prepare("INSERT INTO transitions (key, transition, at) VALUES ($1, $2, $3)").await?;
                for (key, json, entry) in &rows.transitions {
                    match entry {
                        Some(e) => {
                            tx.execute(
                                &upsert,
                                &[
                                    &e.key,
                                    &e.tenant,
                                    &e.state,
                                    &e.generation,
                                    &e.idempotency_key,
                                    &e.urgency,
                                    &e.ticket_id,
                                    &e.entry,
                                    &e.updated_at,
                                ],
                            )
                            .await?;
                        }
                        None => {
                            tx.execute(&delete, &[key]).await?;
                        }
                    }
                    tx.execute(&log, &[key, json, &rows.at]).await?;
                }
            }
            if !rows.events.is_empty() {
                let insert = tx
                    .prepare(
                        "INSERT INTO event_history (product, tenant, source_id, occurred_at, seen_at, event)
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    )
                    .await?;
                for e in &rows.events {
                    tx.execute(&insert, &[&e.product, &e.tenant, &e.source_id, &e.occurred_at, &rows.at, &e.event])
                        .await?;
                }
            }
            if !rows.decisions.is_empty() {
                let insert = tx
                    .prepare(
                        "INSERT INTO decisions (at, product, tenant, event_id, device, device_name, outcome, decision)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .await?;
                for (at, product, tenant, event, device, name, outcome, json) in &rows.decisions {
                    tx.execute(&insert, &[at, product, tenant, event, device, name, outcome, json]).await?;
                }
            }
            if !rows.cursors.is_empty() {
                let upsert = tx
                    .prepare(
                        "INSERT INTO cursors (source, tenant, cursor, updated_at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (source, tenant) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                    )
                    .await?;
                for (source, tenant, cursor) in &rows.cursors {
                    tx.execute(&upsert, &[source, tenant, cursor, &rows.at]).await?;
                }
            }
            Ok(())
            })
            .await
        })
    }

    fn cursor(&self, key: &CursorKey) -> Result<Option<Cursor>, StoreError> {
        let (source, tenant) = (key.source.clone(), key.tenant.as_str().to_owned());
        self.call(async move |c: &mut Client| {
            let row = c
                .query_opt("SELECT cursor FROM cursors WHERE source = $1 AND tenant = $2", &[&source, &tenant])
                .await?;
            Ok(row.map(|r| Cursor(r.get(0))))
        })
    }

    fn rulebook(&self) -> Result<Option<(RuleBook, u64)>, StoreError> {
        self.call(async |c: &mut Client| {
            let Some(row) = c.query_opt("SELECT saved, draft, revision FROM rulebook WHERE id = 1", &[]).await? else {
                return Ok(None);
            };
            let saved: ticketing_core::rules::RuleSet =
                serde_json::from_str(row.get(0)).map_err(|e| corrupt("rulebook", e))?;
            let draft: ticketing_core::rules::RuleSet =
                serde_json::from_str(row.get(1)).map_err(|e| corrupt("rulebook", e))?;
            Ok(Some((RuleBook { saved: saved.complete(), draft: draft.complete() }, row.get::<_, i64>(2) as u64)))
        })
    }

    fn rules_revision(&self) -> Result<u64, StoreError> {
        self.call(async |c: &mut Client| {
            let row = c.query_opt("SELECT revision FROM rulebook WHERE id = 1", &[]).await?;
            Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
        })
    }

    fn document(&self, name: &str) -> Result<Option<(String, u64)>, StoreError> {
        let name = name.to_owned();
        self.call(async move |c: &mut Client| {
            let row = c.query_opt("SELECT body, revision FROM documents WHERE name = $1", &[&name]).await?;
            Ok(row.map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64)))
        })
    }

    fn document_revision(&self, name: &str) -> Result<u64, StoreError> {
        let name = name.to_owned();
        self.call(async move |c: &mut Client| {
            let row = c.query_opt("SELECT revision FROM documents WHERE name = $1", &[&name]).await?;
            Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
        })
    }

    fn save_document(&self, name: &str, body: &str, expected: Option<u64>) -> Result<u64, StoreError> {
        let (name, body) = (name.to_owned(), body.to_owned());
        self.call(async move |c: &mut Client| {
            in_transaction(c, async |tx| {
                // The row lock of the one statement decides between two writers of one revision.
                let written = match expected {
                    Some(0) => {
                        tx.query_opt(
                            "INSERT INTO documents (name, body, revision, updated_at) VALUES ($1, $2, 1, now())
                             ON CONFLICT (name) DO NOTHING RETURNING revision",
                            &[&name, &body],
                        )
                        .await?
                    }
                    Some(e) => {
                        tx.query_opt(
                            "UPDATE documents SET body = $2, revision = revision + 1, updated_at = now()
                             WHERE name = $1 AND revision = $3 RETURNING revision",
                            &[&name, &body, &(e as i64)],
                        )
                        .await?
                    }
                    None => {
                        tx.query_opt(
                            "INSERT INTO documents (name, body, revision, updated_at) VALUES ($1, $2, 1, now())
                             ON CONFLICT (name) DO UPDATE SET body = excluded.body,
                                revision = documents.revision + 1, updated_at = now()
                             RETURNING revision",
                            &[&name, &body],
                        )
                        .await?
                    }
                };
                match written {
                    Some(row) => Ok(row.get::<_, i64>(0) as u64),
                    None => {
                        let current = tx
                            .query_opt("SELECT revision FROM documents WHERE name = $1", &[&name])
                            .await?
                            .map_or(0, |r| r.get::<_, i64>(0) as u64);
                        Err(Fail::Store(StoreError::Conflict { current }))
                    }
                }
            })
            .await
        })
    }

    fn save_rulebook(&self, book: &RuleBook, expected: u64) -> Result<u64, StoreError> {
        let saved = serde_json::to_string(&book.saved).map_err(|e| corrupt("rulebook", e))?;
        let draft = serde_json::to_string(&book.draft).map_err(|e| corrupt("rulebook", e))?;
        let (expected_i, next) = (expected as i64, (expected + 1) as i64);
        self.call(async move |c: &mut Client| {
            in_transaction(c, async |tx| {
                // One statement decides, so two writers holding the same revision cannot both win:
                // the second waits for the first's row lock and then finds the revision moved.
                let written = if expected == 0 {
                    tx.query_opt(
                        "INSERT INTO rulebook (id, saved, draft, updated_at, revision) VALUES (1, $1, $2, now(), 1)
                     ON CONFLICT (id) DO NOTHING RETURNING revision",
                        &[&saved, &draft],
                    )
                    .await?
                } else {
                    tx.query_opt(
                        "UPDATE rulebook SET saved = $1, draft = $2, updated_at = now(), revision = $3
                     WHERE id = 1 AND revision = $4 RETURNING revision",
                        &[&saved, &draft, &next, &expected_i],
                    )
                    .await?
                };
                if written.is_none() {
                    let current = tx
                        .query_opt("SELECT revision FROM rulebook WHERE id = 1", &[])
                        .await?
                        .map_or(0, |r| r.get::<_, i64>(0) as u64);
                    return Err(Fail::Store(StoreError::Conflict { current }));
                }
                Ok(expected + 1)
            })
            .await
        })
    }

    fn events_since(&self, since: DateTime<Utc>) -> Result<Vec<SeenEvent>, StoreError> {
        let since = bound(since);
        self.call(async move |c: &mut Client| {
            let rows = c
                .query("SELECT event, seen_at FROM event_history WHERE seen_at >= $1 ORDER BY seen_at, seq", &[&since])
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let event: Event = serde_json::from_str(row.get(0)).map_err(|e| corrupt("event_history", e))?;
                out.push(SeenEvent { event, seen_at: row.get(1) });
            }
            Ok(out)
        })
    }

    fn prune_history(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let before = bound(before);
        self.call(async move |c: &mut Client| {
            let events = c.execute("DELETE FROM event_history WHERE seen_at < $1", &[&before]).await?;
            let decisions = c.execute("DELETE FROM decisions WHERE at < $1", &[&before]).await?;
            Ok((events + decisions) as usize)
        })
    }

    fn decisions(&self, q: &DecisionQuery) -> Result<Vec<Decision>, StoreError> {
        let tenant = q.tenant.clone();
        let product = q.product.map(Product::code);
        let since = q.since.map(bound);
        let outcome = q.outcome.map(Outcome::code);
        let event = q.event_id.clone();
        let device = q.device.clone();
        let limit = q.limit() as i64;
        self.call(async move |c: &mut Client| {
            let rows = c
                .query(
                    "SELECT decision FROM decisions
                     WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR product = $2)
                       AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::text IS NULL OR outcome = $4)
                       AND ($5::text IS NULL OR event_id = $5) AND ($6::text IS NULL OR device = $6 OR device_name = $6)
                     ORDER BY id DESC LIMIT $7",
                    &[&tenant, &product, &since, &outcome, &event, &device, &limit],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(serde_json::from_str(row.get(0)).map_err(|e| corrupt("decisions", e))?);
            }
            Ok(out)
        })
    }

    /// A server in recovery (a standby after a failover went the wrong way) or a read-only
    /// transaction default takes no writes: both are asked, no row is written.
    fn probe_writable(&self) -> Result<(), StoreError> {
        self.call(async |c: &mut Client| {
            let row = c.query_one("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')", &[]).await?;
            let (recovery, read_only): (bool, String) = (row.get(0), row.get(1));
            if recovery {
                return Err(Fail::Store(StoreError::Database(
                    "the PostgreSQL server is in recovery (a standby): it takes no writes".to_owned(),
                )));
            }
            if read_only == "on" {
                return Err(Fail::Store(StoreError::Database("the PostgreSQL session is read-only".to_owned())));
            }
            Ok(())
        })
    }

    fn request_retry(&self, target: &str) -> Result<(), StoreError> {
        let target = target.to_owned();
        self.call(async move |c: &mut Client| {
            c.execute("INSERT INTO retry_requests (target, requested_at) VALUES ($1, now())", &[&target]).await?;
            Ok(())
        })
    }

    fn take_retry_requests(&self) -> Result<Vec<String>, StoreError> {
        self.call(async |c: &mut Client| {
            let mut rows: Vec<(i64, String)> = in_transaction(c, async |tx| {
                Ok(tx
                    .query("DELETE FROM retry_requests RETURNING id, target", &[])
                    .await?
                    .into_iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect::<Vec<_>>())
            })
            .await?;
            rows.sort_by_key(|(id, _)| *id);
            Ok(rows.into_iter().map(|(_, t)| t).collect())
        })
    }

    fn lease(&self, holder: &str, lease: Duration) -> Result<Option<u64>, StoreError> {
        let holder = holder.to_owned();
        let secs = lease_secs(lease);
        self.call(async move |c: &mut Client| {
            // By the database's clock. A renewal by the holder keeps the epoch; a takeover of an
            // expired lease bumps it. One statement: a retry after a lost answer is a renewal.
            let row = c
                .query_opt(
                    "INSERT INTO leader (id, epoch, holder, expires_at) VALUES (1, 1, $1, now() + make_interval(secs => $2))
                     ON CONFLICT (id) DO UPDATE SET
                        epoch = CASE WHEN leader.holder = $1 THEN leader.epoch ELSE leader.epoch + 1 END,
                        holder = $1, expires_at = now() + make_interval(secs => $2)
                     WHERE leader.holder = $1 OR leader.expires_at <= now()
                     RETURNING epoch",
                    &[&holder, &secs],
                )
                .await?;
            Ok(row.map(|r| r.get::<_, i64>(0) as u64))
        })
    }

    fn release(&self, holder: &str, epoch: u64) -> Result<(), StoreError> {
        let holder = holder.to_owned();
        let epoch = epoch as i64;
        self.call(async move |c: &mut Client| {
            c.execute(
                "UPDATE leader SET expires_at = '-infinity' WHERE id = 1 AND holder = $1 AND epoch = $2",
                &[&holder, &epoch],
            )
            .await?;
            Ok(())
        })
    }

    fn leader(&self) -> Result<Option<LeaderInfo>, StoreError> {
        self.call(async |c: &mut Client| {
            // A released lease ends at -infinity, which chrono cannot hold: the earliest time it can.
            let row = c
                .query_opt(
                    "SELECT epoch, holder, CASE WHEN expires_at = '-infinity' THEN NULL ELSE expires_at END
                     FROM leader WHERE id = 1",
                    &[],
                )
                .await?;
            Ok(row.map(|r| LeaderInfo {
                epoch: r.get::<_, i64>(0) as u64,
                holder: r.get(1),
                expires_at: r.get::<_, Option<DateTime<Utc>>>(2).unwrap_or(DateTime::<Utc>::MIN_UTC),
            }))
        })
    }

    fn recent_transitions(&self, limit: usize) -> Result<Vec<(DateTime<Utc>, String, String)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(async move |c: &mut Client| {
            let rows =
                c.query("SELECT at, key, transition FROM transitions ORDER BY id DESC LIMIT $1", &[&limit]).await?;
            Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
        })
    }
}
