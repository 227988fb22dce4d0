//! The embedded default store: one SQLite file in WAL mode, schema under numbered migrations.
//!
//! Rows hold the core's serde JSON (ledger entries, rule sets, events) next to the columns that
//! queries need; the JSON is the source of truth, the columns are indexes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use ticketing_core::edit::RuleBook;
use ticketing_core::ledger::{Ledger, LedgerEntry};
use ticketing_core::model::{Event, Product};
use ticketing_core::ports::Cursor;

#[path = "sqlite_access.rs"]
mod access;

use super::{Commit, CursorKey, Decision, DecisionQuery, Outcome, SeenEvent, Store, StoreError};

/// Schema migrations, applied in order; the index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    // 1: ledger, transition log, outbox view, cursors, rule book, event history
    "CREATE TABLE ledger (
        key TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        state TEXT NOT NULL,
        generation INTEGER NOT NULL,
        idempotency_key TEXT NOT NULL,
        urgency TEXT NOT NULL,
        ticket_id INTEGER,
        entry TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX ledger_state ON ledger(state);
    CREATE UNIQUE INDEX ledger_idempotency ON ledger(idempotency_key);
    CREATE TABLE transitions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        transition TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE VIEW outbox AS
        SELECT key, tenant, state, idempotency_key, urgency, updated_at FROM ledger
        WHERE state IN ('planned', 'closing');
    CREATE TABLE cursors (
        source TEXT NOT NULL,
        tenant TEXT NOT NULL,
        cursor TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (source, tenant)
    );
    CREATE TABLE rulebook (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        saved TEXT NOT NULL,
        draft TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE event_history (
        product TEXT NOT NULL,
        tenant TEXT NOT NULL,
        source_id TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        seen_at TEXT NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (product, tenant, source_id)
    );
    CREATE INDEX event_history_seen ON event_history(seen_at);",
    // 2: close notes are outbox work too; operator retry requests for refused creates
    "DROP VIEW outbox;
    CREATE VIEW outbox AS
        SELECT key, tenant, state, idempotency_key, urgency, updated_at FROM ledger
        WHERE state IN ('planned', 'closing')
           OR (state = 'closed' AND json_extract(entry, '$.state.note') IS NOT NULL);
    CREATE TABLE retry_requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        target TEXT NOT NULL,
        requested_at TEXT NOT NULL
    );",
    // 3: the rule book's revision, for compare-and-swap writes
    "ALTER TABLE rulebook ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;",
    // 4: the leader lease (several daemons on one store file take turns; fencing epoch)
    "CREATE TABLE leader (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        epoch INTEGER NOT NULL,
        holder TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );",
    // 5: the audit's decisions (kept as long as the event history); the readiness probe's row
    "CREATE TABLE decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        product TEXT NOT NULL,
        tenant TEXT NOT NULL,
        event_id TEXT,
        device TEXT,
        device_name TEXT,
        outcome TEXT NOT NULL,
        decision TEXT NOT NULL
    );
    CREATE INDEX decisions_at ON decisions(at);
    CREATE INDEX decisions_event ON decisions(event_id);
    CREATE INDEX decisions_tenant ON decisions(tenant, at);
    CREATE TABLE health (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        probed_at TEXT NOT NULL
    );",
    "CREATE TABLE documents (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        revision INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    );",
    // 7: users, sessions, API tokens and the change log (issue 28)
    access::MIGRATION,
];

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// How long a lock another process holds is waited for.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Switches the file to WAL. The switch needs the file to itself and SQLite answers "database
/// is locked" at once, without its busy handler, while another process opens it too (several
/// daemons of an HA setup started together): tried again until [`BUSY_TIMEOUT`]. Once one of
/// them switched, the others find WAL in place.
fn switch_to_wal(conn: &Connection) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(db(e)),
        }
    }
}

fn corrupt(table: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { table, detail: e.to_string() }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_ts(table: &'static str, s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| corrupt(table, e))
}

/// The SQLite store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The file, for error messages and the identity check (`None`: in memory).
    path: Option<PathBuf>,
    /// The file's (device, inode) when opened: a different one later means the file was
    /// replaced under the daemon.
    identity: Option<(u64, u64)>,
    /// Whether the connection is set to `synchronous = NORMAL` now (relaxed commits).
    relaxed: std::sync::atomic::AtomicBool,
}

fn identity_of(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let named = |e: StoreError| e.in_file(path);
        let conn = Connection::open(path).map_err(db).map_err(named)?;
        let mut store = Self::init(conn, true).map_err(named)?;
        store.identity = Some(identity_of(path).map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?);
        store.path = Some(path.to_owned());
        Ok(store)
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(db)?, false)
    }

    /// Names the file in a database error.
    fn named<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        match &self.path {
            Some(p) => r.map_err(|e| e.in_file(p)),
            None => r,
        }
    }

    fn init(conn: Connection, wal: bool) -> Result<Self, StoreError> {
        // Several processes share the file (the daemon, `msp-ticketd rules` and `ledger`, the
        // instances of an HA setup started together): a lock another holds is waited for.
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        if wal {
            switch_to_wal(&conn)?;
        }
        // FULL: a committed transition survives power loss, which exactly-once relies on.
        conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        // Every write transaction begins IMMEDIATE, taking the write lock up front, so a second
        // writer waits (the busy timeout) instead of failing when its read snapshot went stale
        // mid-transaction.
        let store = Self {
            conn: Mutex::new(conn),
            path: None,
            identity: None,
            relaxed: std::sync::atomic::AtomicBool::new(false),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The schema version this build migrates to.
    pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

    /// The schema version after migration.
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        let conn = self.lock();
        conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get::<_, i64>(0))
            .map(|v| v as usize)
            .map_err(db)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the transaction rolls back).
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.lock();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
        )
        .map_err(db)?;
        let current: i64 =
            conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0)).map_err(db)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            // Another process (a second daemon of an HA setup, the CLI) may have applied it
            // since the read above: the version is read again under the write lock.
            let applied: i64 = tx
                .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))
                .map_err(db)?;
            if applied > i as i64 {
                continue;
            }
            tx.execute_batch(sql).map_err(db)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![i as i64 + 1, ts(Utc::now())],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
        }
        Ok(())
    }
}

fn write_entry(tx: &rusqlite::Transaction<'_>, entry: &LedgerEntry) -> Result<(), StoreError> {
    let json = serde_json::to_string(entry).map_err(|e| corrupt("ledger", e))?;
    tx.prepare_cached(
        "INSERT INTO ledger (key, tenant, state, generation, idempotency_key, urgency, ticket_id, entry, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(key) DO UPDATE SET state = excluded.state, generation = excluded.generation,
            idempotency_key = excluded.idempotency_key, urgency = excluded.urgency,
            ticket_id = excluded.ticket_id, entry = excluded.entry, updated_at = excluded.updated_at",
    )
    .map_err(db)?
    .execute(params![
        entry.key.canonical(),
        entry.key.tenant().as_str(),
        entry.state.name(),
        entry.generation,
        entry.idempotency_key.as_str(),
        format!("{:?}", entry.urgency).to_lowercase(),
        entry.ticket().map(|t| t.id.0),
        json,
        ts(entry.updated_at),
    ])
    .map_err(db)?;
    Ok(())
}

impl Store for SqliteStore {
    fn access(&self) -> Option<&dyn super::AccessStore> {
        Some(self)
    }

    fn verify(&self) -> Result<(), StoreError> {
        let (Some(path), Some(opened)) = (&self.path, self.identity) else { return Ok(()) };
        match identity_of(path) {
            Ok(now) if now == opened => Ok(()),
            Ok(_) => Err(StoreError::Lost(format!(
                "the store file {} was replaced while the daemon runs; stopping rather than writing to the old, unlinked file (restart to rebuild from the new file and the PSA)",
                path.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::Lost(format!(
                "the store file {} was removed while the daemon runs; stopping rather than writing to an unlinked file (restart to rebuild the ledger from the PSA)",
                path.display()
            ))),
            Err(e) => Err(StoreError::Io(format!("{}: {e}", path.display()))),
        }
    }

    fn lease(&self, holder: &str, lease: std::time::Duration) -> Result<Option<u64>, StoreError> {
        self.named((|| {
            let now = Utc::now();
            let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
            let mut conn = self.lock();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let row = tx
                .query_row("SELECT epoch, holder, expires_at FROM leader WHERE id = 1", [], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })
                .optional()
                .map_err(db)?;
            let epoch = match row {
                None => 1,
                Some((epoch, h, _)) if h == holder => epoch as u64,
                Some((epoch, _, expires)) if parse_ts("leader", &expires)? <= now => epoch as u64 + 1,
                Some(_) => return Ok(None),
            };
            tx.prepare_cached("INSERT INTO leader (id, epoch, holder, expires_at) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET epoch = excluded.epoch, holder = excluded.holder, expires_at = excluded.expires_at").map_err(db)?.execute(
                params![epoch as i64, holder, ts(until)],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(Some(epoch))
        })())
    }

    fn release(&self, holder: &str, epoch: u64) -> Result<(), StoreError> {
        self.named((|| {
            let conn = self.lock();
            conn.execute(
                "UPDATE leader SET expires_at = ?1 WHERE id = 1 AND holder = ?2 AND epoch = ?3",
                params![ts(DateTime::<Utc>::UNIX_EPOCH), holder, epoch as i64],
            )
            .map_err(db)?;
            Ok(())
        })())
    }

    fn leader(&self) -> Result<Option<super::LeaderInfo>, StoreError> {
        self.named((|| {
            let conn = self.lock();
            let row = conn
                .query_row("SELECT epoch, holder, expires_at FROM leader WHERE id = 1", [], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })
                .optional()
                .map_err(db)?;
            row.map(|(epoch, holder, expires)| {
                Ok(super::LeaderInfo { holder, epoch: epoch as u64, expires_at: parse_ts("leader", &expires)? })
            })
            .transpose()
        })())
    }

    fn request_retry(&self, target: &str) -> Result<(), StoreError> {
        self.named((|| {
            let conn = self.lock();
            conn.execute(
                "INSERT INTO retry_requests (target, requested_at) VALUES (?1, ?2)",
                params![target, ts(Utc::now())],
            )
            .map_err(db)?;
            Ok(())
        })())
    }

    fn take_retry_requests(&self) -> Result<Vec<String>, StoreError> {
        self.named((|| {
            let mut conn = self.lock();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let targets = {
                let mut stmt = tx.prepare_cached("SELECT target FROM retry_requests ORDER BY id").map_err(db)?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db)?
            };
            tx.prepare_cached("DELETE FROM retry_requests").map_err(db)?.execute([]).map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(targets)
        })())
    }

    fn load_ledger(&self) -> Result<Ledger, StoreError> {
        self.named((|| {
            let conn = self.lock();
            let mut stmt = conn.prepare("SELECT entry FROM ledger").map_err(db)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db)?;
            let mut entries = Vec::new();
            for row in rows {
                let json = row.map_err(db)?;
                entries.push(serde_json::from_str::<LedgerEntry>(&json).map_err(|e| corrupt("ledger", e))?);
            }
            Ok(Ledger::from_entries(entries))
        })())
    }

    fn commit(&self, commit: &Commit<'_>) -> Result<(), StoreError> {
        self.named((|| {
            let at = commit.at.unwrap_or_else(Utc::now);
            let mut conn = self.lock();
            // Per transaction: WAL frames are written in order, so a relaxed commit becomes
            // durable with the next full one (or a checkpoint).
            if self.relaxed.swap(commit.relaxed, std::sync::atomic::Ordering::Relaxed) != commit.relaxed {
                conn.pragma_update(None, "synchronous", if commit.relaxed { "NORMAL" } else { "FULL" }).map_err(db)?;
            }
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            if let Some(mine) = commit.epoch {
                let current: u64 = tx
                    .prepare_cached("SELECT epoch FROM leader WHERE id = 1")
                    .map_err(db)?
                    .query_row([], |r| r.get::<_, i64>(0))
                    .optional()
                    .map_err(db)?
                    .map_or(0, |e| e as u64);
                if current != mine {
                    return Err(StoreError::Fenced { current });
                }
            }
            for (transition, entry) in &commit.transitions {
                match entry {
                    Some(entry) => write_entry(&tx, entry)?,
                    None => {
                        tx.prepare_cached("DELETE FROM ledger WHERE key = ?1").map_err(db)?.execute( params![transition.key().canonical()])
                            .map_err(db)?;
                    }
                }
                let json = serde_json::to_string(transition).map_err(|e| corrupt("transitions", e))?;
                tx.prepare_cached("INSERT INTO transitions (key, transition, at) VALUES (?1, ?2, ?3)").map_err(db)?.execute(
                    params![transition.key().canonical(), json, ts(at)],
                )
                .map_err(db)?;
            }
            for event in commit.events {
                let json = serde_json::to_string(event).map_err(|e| corrupt("event_history", e))?;
                tx.prepare_cached("INSERT INTO event_history (product, tenant, source_id, occurred_at, seen_at, event)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING").map_err(db)?.execute(
                    params![
                        event.product.code(),
                        event.tenant.as_str(),
                        event.source_id.as_str(),
                        ts(event.occurred_at),
                        ts(at),
                        json
                    ],
                )
                .map_err(db)?;
            }
            for d in commit.decisions {
                let json = serde_json::to_string(d).map_err(|e| corrupt("decisions", e))?;
                tx.prepare_cached("INSERT INTO decisions (at, product, tenant, event_id, device, device_name, outcome, decision)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)").map_err(db)?.execute(
                    params![
                        ts(d.at),
                        d.product.code(),
                        d.tenant.as_str(),
                        d.event_id,
                        d.device,
                        d.device_name,
                        d.outcome.code(),
                        json
                    ],
                )
                .map_err(db)?;
            }
            for (key, cursor) in &commit.cursors {
                tx.prepare_cached("INSERT INTO cursors (source, tenant, cursor, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(source, tenant) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at").map_err(db)?.execute(
                    params![key.source, key.tenant.as_str(), cursor.0, ts(at)],
                )
                .map_err(db)?;
            }
            tx.commit().map_err(db)
        })())
    }

    fn cursor(&self, key: &CursorKey) -> Result<Option<Cursor>, StoreError> {
        self.named({
            let conn = self.lock();
            conn.query_row(
                "SELECT cursor FROM cursors WHERE source = ?1 AND tenant = ?2",
                params![key.source, key.tenant.as_str()],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map(|c| c.map(Cursor))
            .map_err(db)
        })
    }

    fn rulebook(&self) -> Result<Option<(RuleBook, u64)>, StoreError> {
        self.named((|| {
            let conn = self.lock();
            let row = conn
                .query_row("SELECT saved, draft, revision FROM rulebook WHERE id = 1", [], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
                })
                .optional()
                .map_err(db)?;
            let Some((saved, draft, revision)) = row else { return Ok(None) };
            let saved: ticketing_core::rules::RuleSet =
                serde_json::from_str(&saved).map_err(|e| corrupt("rulebook", e))?;
            let draft: ticketing_core::rules::RuleSet =
                serde_json::from_str(&draft).map_err(|e| corrupt("rulebook", e))?;
            Ok(Some((RuleBook { saved: saved.complete(), draft: draft.complete() }, revision as u64)))
        })())
    }

    fn rules_revision(&self) -> Result<u64, StoreError> {
        self.named((|| {
            let conn = self.lock();
            let rev = conn
                .query_row("SELECT revision FROM rulebook WHERE id = 1", [], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(db)?;
            Ok(rev.map_or(0, |r| r as u64))
        })())
    }

    fn save_rulebook(&self, book: &RuleBook, expected: u64) -> Result<u64, StoreError> {
        self.named((|| {
            let saved = serde_json::to_string(&book.saved).map_err(|e| corrupt("rulebook", e))?;
            let draft = serde_json::to_string(&book.draft).map_err(|e| corrupt("rulebook", e))?;
            let mut conn = self.lock();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let current: u64 = tx
                .query_row("SELECT revision FROM rulebook WHERE id = 1", [], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(db)?
                .map_or(0, |r| r as u64);
            if current != expected {
                return Err(StoreError::Conflict { current });
            }
            tx.execute(
                "INSERT INTO rulebook (id, saved, draft, updated_at, revision) VALUES (1, ?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET saved = excluded.saved, draft = excluded.draft,
                    updated_at = excluded.updated_at, revision = excluded.revision",
                params![saved, draft, ts(Utc::now()), (expected + 1) as i64],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(expected + 1)
        })())
    }

    fn document(&self, name: &str) -> Result<Option<(String, u64)>, StoreError> {
        let conn = self.lock();
        let row = conn
            .query_row("SELECT body, revision FROM documents WHERE name = ?1", [name], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .optional()
            .map_err(db);
        drop(conn);
        self.named(row)
    }

    fn document_revision(&self, name: &str) -> Result<u64, StoreError> {
        self.named((|| {
            let conn = self.lock();
            let rev = conn
                .query_row("SELECT revision FROM documents WHERE name = ?1", [name], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(db)?;
            Ok(rev.map_or(0, |r| r as u64))
        })())
    }

    fn save_document(&self, name: &str, body: &str, expected: Option<u64>) -> Result<u64, StoreError> {
        self.named((|| {
            let mut conn = self.lock();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let current: u64 = tx
                .query_row("SELECT revision FROM documents WHERE name = ?1", [name], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(db)?
                .map_or(0, |r| r as u64);
            if expected.is_some_and(|e| e != current) {
                return Err(StoreError::Conflict { current });
            }
            tx.execute(
                "INSERT INTO documents (name, body, revision, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET body = excluded.body, revision = excluded.revision,
                    updated_at = excluded.updated_at",
                params![name, body, (current + 1) as i64, ts(Utc::now())],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(current + 1)
        })())
    }

    fn events_since(&self, since: DateTime<Utc>) -> Result<Vec<SeenEvent>, StoreError> {
        self.named((|| {
            let conn = self.lock();
            let mut stmt = conn
                .prepare("SELECT event, seen_at FROM event_history WHERE seen_at >= ?1 ORDER BY seen_at, rowid")
                .map_err(db)?;
            let rows = stmt
                .query_map(params![ts(since)], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let (json, seen) = row.map_err(db)?;
                let event: Event = serde_json::from_str(&json).map_err(|e| corrupt("event_history", e))?;
                out.push(SeenEvent { event, seen_at: parse_ts("event_history", &seen)? });
            }
            Ok(out)
        })())
    }

    fn prune_history(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let conn = self.lock();
        self.named((|| {
            let events =
                conn.execute("DELETE FROM event_history WHERE seen_at < ?1", params![ts(before)]).map_err(db)?;
            let decisions = conn.execute("DELETE FROM decisions WHERE at < ?1", params![ts(before)]).map_err(db)?;
            Ok(events + decisions)
        })())
    }

    fn decisions(&self, q: &DecisionQuery) -> Result<Vec<Decision>, StoreError> {
        self.named((|| {
            let conn = self.lock();
            let mut stmt = conn
                .prepare(
                    "SELECT decision FROM decisions
                     WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR product = ?2) AND (?3 IS NULL OR at >= ?3)
                       AND (?4 IS NULL OR outcome = ?4) AND (?5 IS NULL OR event_id = ?5)
                       AND (?6 IS NULL OR device = ?6 OR device_name = ?6)
                     ORDER BY id DESC LIMIT ?7",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(
                    params![
                        q.tenant,
                        q.product.map(Product::code),
                        q.since.map(ts),
                        q.outcome.map(Outcome::code),
                        q.event_id,
                        q.device,
                        q.limit() as i64
                    ],
                    |r| r.get::<_, String>(0),
                )
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let json = row.map_err(db)?;
                out.push(serde_json::from_str(&json).map_err(|e| corrupt("decisions", e))?);
            }
            Ok(out)
        })())
    }

    fn probe_writable(&self) -> Result<(), StoreError> {
        self.verify()?;
        let conn = self.lock();
        self.named(
            conn.execute(
                "INSERT INTO health (id, probed_at) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET probed_at = excluded.probed_at",
                params![ts(Utc::now())],
            )
            .map(drop)
            .map_err(db),
        )
    }

    fn recent_transitions(&self, limit: usize) -> Result<Vec<(DateTime<Utc>, String, String)>, StoreError> {
        self.named((|| {
            let conn = self.lock();
            let mut stmt =
                conn.prepare("SELECT at, key, transition FROM transitions ORDER BY id DESC LIMIT ?1").map_err(db)?;
            let rows = stmt
                .query_map(params![limit as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let (at, key, t) = row.map_err(db)?;
                out.push((parse_ts("transitions", &at)?, key, t));
            }
            Ok(out)
        })())
    }
}
