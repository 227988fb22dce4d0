//! [`AccessStore`] for the SQLite store: tables `access_users`, `access_sessions`,
//! `access_tokens`, `access_changes` (migration 7).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};
use ticketing_core::secret::Secret;

use super::{SqliteStore, db, parse_ts, ts};
use crate::store::StoreError;
use crate::store::access::{
    AccessStore, Change, ChangeKind, ChangeQuery, LockoutPolicy, LoginFailures, SessionRecord, TokenRecord, User,
    UserChange,
};

/// The schema of users, sessions, tokens and the change log.
pub(super) const MIGRATION: &str = "CREATE TABLE access_users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        password_changed_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0,
        failures_since TEXT,
        locked_until TEXT
    );
    CREATE TABLE access_sessions (
        id_digest TEXT PRIMARY KEY,
        user_name TEXT REFERENCES access_users(name) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL
    );
    CREATE INDEX access_sessions_user ON access_sessions(user_name);
    CREATE TABLE access_tokens (
        id TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES access_users(name) ON DELETE CASCADE,
        label TEXT NOT NULL,
        digest TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_used_at TEXT
    );
    CREATE TABLE access_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        section TEXT,
        revision_before INTEGER,
        revision_after INTEGER,
        detail TEXT NOT NULL
    );
    CREATE INDEX access_changes_at ON access_changes(at);";

const USER_COLUMNS: &str =
    "name, role, password_hash, password_changed_at, created_at, failures, failures_since, locked_until";

fn opt_ts(table: &'static str, s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.map(|s| parse_ts(table, &s)).transpose()
}

fn user_of(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

type UserRow = (String, String, String, String, String, i64, Option<String>, Option<String>);

fn user_from(row: UserRow) -> Result<User, StoreError> {
    let (name, role, hash, changed, created, failures, since, locked) = row;
    let t = "access_users";
    Ok(User {
        role: role.parse().map_err(|e: String| StoreError::Corrupt { table: t, detail: e })?,
        name,
        password_hash: Secret::new(hash),
        password_changed_at: parse_ts(t, &changed)?,
        created_at: parse_ts(t, &created)?,
        failures: LoginFailures {
            count: u32::try_from(failures).unwrap_or(0),
            since: opt_ts(t, since)?,
            locked_until: opt_ts(t, locked)?,
        },
    })
}

type SessionRow = (String, Option<String>, String, String, String);

fn session_from(row: SessionRow) -> Result<SessionRecord, StoreError> {
    let (id, user, csrf, created, seen) = row;
    let t = "access_sessions";
    Ok(SessionRecord {
        id_digest: Secret::new(id),
        user,
        csrf: Secret::new(csrf),
        created_at: parse_ts(t, &created)?,
        last_seen_at: parse_ts(t, &seen)?,
    })
}

type TokenRow = (String, String, String, String, String, Option<String>);

fn token_from(row: TokenRow) -> Result<TokenRecord, StoreError> {
    let (id, user, label, digest, created, used) = row;
    let t = "access_tokens";
    Ok(TokenRecord {
        id,
        user,
        label,
        digest: Secret::new(digest),
        created_at: parse_ts(t, &created)?,
        last_used_at: opt_ts(t, used)?,
    })
}

fn write_failures(conn: &rusqlite::Connection, name: &str, f: &LoginFailures) -> Result<usize, StoreError> {
    conn.execute(
        "UPDATE access_users SET failures = ?2, failures_since = ?3, locked_until = ?4 WHERE name = ?1",
        params![name, i64::from(f.count), f.since.map(ts), f.locked_until.map(ts)],
    )
    .map_err(db)
}

impl SqliteStore {
    fn user_in(conn: &rusqlite::Connection, name: &str) -> Result<Option<User>, StoreError> {
        let row = conn
            .query_row(&format!("SELECT {USER_COLUMNS} FROM access_users WHERE name = ?1"), params![name], user_of)
            .optional()
            .map_err(db)?;
        row.map(user_from).transpose()
    }
}

impl AccessStore for SqliteStore {
    fn users(&self) -> Result<Vec<User>, StoreError> {
        self.named((|| {
            let conn = self.lock();
            let mut stmt =
                conn.prepare(&format!("SELECT {USER_COLUMNS} FROM access_users ORDER BY name")).map_err(db)?;
            let rows = stmt.query_map([], user_of).map_err(db)?;
            rows.map(|r| r.map_err(db).and_then(user_from)).collect()
        })())
    }

    fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let conn = self.lock();
        self.named(Self::user_in(&conn, name))
    }

    fn insert_user(&self, u: &User) -> Result<bool, StoreError> {
        let conn = self.lock();
        self.named(
            conn.execute(
                "INSERT INTO access_users (name, role, password_hash, password_changed_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(name) DO NOTHING",
                params![u.name, u.role.code(), u.password_hash.expose(), ts(u.password_changed_at), ts(u.created_at)],
            )
            .map(|n| n == 1)
            .map_err(db),
        )
    }

    fn update_user(&self, name: &str, change: &UserChange) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        self.named((|| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let n = match change {
                UserChange::Role(role) => tx
                    .execute("UPDATE access_users SET role = ?2 WHERE name = ?1", params![name, role.code()])
                    .map_err(db)?,
                UserChange::Password { hash, at } => {
                    let n = tx
                        .execute(
                            "UPDATE access_users SET password_hash = ?2, password_changed_at = ?3, failures = 0,
                                failures_since = NULL, locked_until = NULL WHERE name = ?1",
                            params![name, hash.expose(), ts(*at)],
                        )
                        .map_err(db)?;
                    tx.execute("DELETE FROM access_sessions WHERE user_name = ?1", params![name]).map_err(db)?;
                    n
                }
                UserChange::ClearFailures => write_failures(&tx, name, &LoginFailures::default())?,
            };
            tx.commit().map_err(db)?;
            Ok(n == 1)
        })())
    }

    fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let conn = self.lock();
        self.named(conn.execute("DELETE FROM access_users WHERE name = ?1", params![name]).map(|n| n == 1).map_err(db))
    }

    fn login_failed(
        &self,
        name: &str,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> Result<Option<LoginFailures>, StoreError> {
        let mut conn = self.lock();
        self.named((|| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
            let Some(user) = Self::user_in(&tx, name)? else { return Ok(None) };
            let after = user.failures.after_failure(now, policy);
            write_failures(&tx, name, &after)?;
            tx.commit().map_err(db)?;
            Ok(Some(after))
        })())
    }

    fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        let conn = self.lock();
        self.named(
            conn.execute(
                "INSERT INTO access_sessions (id_digest, user_name, csrf, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.id_digest.expose(), s.user, s.csrf.expose(), ts(s.created_at), ts(s.last_seen_at)],
            )
            .map(drop)
            .map_err(db),
        )
    }

    fn session(&self, id_digest: &str) -> Result<Option<SessionRecord>, StoreError> {
        let conn = self.lock();
        self.named((|| {
            let row = conn
                .query_row(
                    "SELECT id_digest, user_name, csrf, created_at, last_seen_at FROM access_sessions WHERE id_digest = ?1",
                    params![id_digest],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()
                .map_err(db)?;
            row.map(session_from).transpose()
        })())
    }

    fn touch_session(&self, id_digest: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let conn = self.lock();
        self.named(
            conn.execute(
                "UPDATE access_sessions SET last_seen_at = ?2 WHERE id_digest = ?1",
                params![id_digest, ts(at)],
            )
            .map(drop)
            .map_err(db),
        )
    }

    fn remove_session(&self, id_digest: &str) -> Result<(), StoreError> {
        let conn = self.lock();
        self.named(
            conn.execute("DELETE FROM access_sessions WHERE id_digest = ?1", params![id_digest]).map(drop).map_err(db),
        )
    }

    fn prune_sessions(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let conn = self.lock();
        self.named(conn.execute("DELETE FROM access_sessions WHERE last_seen_at < ?1", params![ts(before)]).map_err(db))
    }

    fn insert_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        let conn = self.lock();
        self.named(
            conn.execute(
                "INSERT INTO access_tokens (id, user_name, label, digest, created_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![t.id, t.user, t.label, t.digest.expose(), ts(t.created_at), t.last_used_at.map(ts)],
            )
            .map(drop)
            .map_err(db),
        )
    }

    fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let conn = self.lock();
        self.named((|| {
            let row = conn
                .query_row(
                    "SELECT id, user_name, label, digest, created_at, last_used_at FROM access_tokens WHERE id = ?1",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
                .optional()
                .map_err(db)?;
            row.map(token_from).transpose()
        })())
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.named((|| {
            let conn = self.lock();
            let mut stmt = conn
                .prepare(
                    "SELECT id, user_name, label, digest, created_at, last_used_at FROM access_tokens ORDER BY created_at, id",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
                .map_err(db)?;
            rows.map(|r| r.map_err(db).and_then(token_from)).collect()
        })())
    }

    fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let conn = self.lock();
        self.named(conn.execute("DELETE FROM access_tokens WHERE id = ?1", params![id]).map(|n| n == 1).map_err(db))
    }

    fn touch_token(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let conn = self.lock();
        self.named(
            conn.execute("UPDATE access_tokens SET last_used_at = ?2 WHERE id = ?1", params![id, ts(at)])
                .map(drop)
                .map_err(db),
        )
    }

    fn record_change(&self, c: &Change) -> Result<(), StoreError> {
        let conn = self.lock();
        self.named(
            conn.execute(
                "INSERT INTO access_changes (at, actor, kind, section, revision_before, revision_after, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    ts(c.at),
                    c.actor,
                    c.kind.code(),
                    c.section,
                    c.revision_before.map(|r| r as i64),
                    c.revision_after.map(|r| r as i64),
                    c.detail
                ],
            )
            .map(drop)
            .map_err(db),
        )
    }

    fn changes(&self, q: &ChangeQuery) -> Result<Vec<Change>, StoreError> {
        self.named((|| {
            let conn = self.lock();
            let mut stmt = conn
                .prepare(
                    "SELECT at, actor, kind, section, revision_before, revision_after, detail FROM access_changes
                     WHERE (?1 IS NULL OR at >= ?1) ORDER BY id DESC LIMIT ?2",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![q.since.map(ts), q.limit() as i64], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                        r.get::<_, String>(6)?,
                    ))
                })
                .map_err(db)?;
            let t = "access_changes";
            let mut out = Vec::new();
            for row in rows {
                let (at, actor, kind, section, before, after, detail) = row.map_err(db)?;
                out.push(Change {
                    at: parse_ts(t, &at)?,
                    actor,
                    kind: ChangeKind::from_code(&kind)
                        .ok_or_else(|| StoreError::Corrupt { table: t, detail: format!("unknown kind `{kind}`") })?,
                    section,
                    revision_before: before.map(|r| r as u64),
                    revision_after: after.map(|r| r as u64),
                    detail,
                });
            }
            Ok(out)
        })())
    }
}
