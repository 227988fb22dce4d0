//! [`AccessStore`] for the PostgreSQL store: the same tables as the SQLite store's
//! (`access_users`, `access_sessions`, `access_tokens`, `access_changes`), so every instance of
//! an HA setup knows every user and session.

use chrono::{DateTime, Utc};
use ticketing_core::secret::Secret;
use tokio_postgres::{Client, Row};

use super::{Fail, PostgresStore, bound, in_transaction};
use crate::store::StoreError;
use crate::store::access::{
    AccessStore, Change, ChangeKind, ChangeQuery, LockoutPolicy, LoginFailures, SessionRecord, TokenRecord, User,
    UserChange,
};

/// The schema of users, sessions, tokens and the change log.
pub(in crate::store) const MIGRATION: &str = "CREATE TABLE access_users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        password_changed_at TIMESTAMPTZ NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0,
        failures_since TIMESTAMPTZ,
        locked_until TIMESTAMPTZ
    );
    CREATE TABLE access_sessions (
        id_digest TEXT PRIMARY KEY,
        user_name TEXT REFERENCES access_users(name) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        last_seen_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX access_sessions_user ON access_sessions(user_name);
    CREATE TABLE access_tokens (
        id TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES access_users(name) ON DELETE CASCADE,
        label TEXT NOT NULL,
        digest TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        last_used_at TIMESTAMPTZ
    );
    CREATE TABLE access_changes (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at TIMESTAMPTZ NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        section TEXT,
        revision_before BIGINT,
        revision_after BIGINT,
        detail TEXT NOT NULL
    );
    CREATE INDEX access_changes_at ON access_changes(at);";

const USER_COLUMNS: &str =
    "name, role, password_hash, password_changed_at, created_at, failures, failures_since, locked_until";

fn user_from(r: &Row) -> Result<User, Fail> {
    let role: String = r.get(1);
    Ok(User {
        name: r.get(0),
        role: role.parse().map_err(|e: String| StoreError::Corrupt { table: "access_users", detail: e })?,
        password_hash: Secret::new(r.get::<_, String>(2)),
        password_changed_at: r.get(3),
        created_at: r.get(4),
        failures: LoginFailures {
            count: u32::try_from(r.get::<_, i32>(5)).unwrap_or(0),
            since: r.get(6),
            locked_until: r.get(7),
        },
    })
}

fn session_from(r: &Row) -> SessionRecord {
    SessionRecord {
        id_digest: Secret::new(r.get::<_, String>(0)),
        user: r.get(1),
        csrf: Secret::new(r.get::<_, String>(2)),
        created_at: r.get(3),
        last_seen_at: r.get(4),
    }
}

fn token_from(r: &Row) -> TokenRecord {
    TokenRecord {
        id: r.get(0),
        user: r.get(1),
        label: r.get(2),
        digest: Secret::new(r.get::<_, String>(3)),
        created_at: r.get(4),
        last_used_at: r.get(5),
    }
}

const FAILURES_UPDATE: &str =
    "UPDATE access_users SET failures = $2, failures_since = $3, locked_until = $4 WHERE name = $1";

fn failures_params(f: &LoginFailures) -> (i32, Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    (i32::try_from(f.count).unwrap_or(i32::MAX), f.since.map(bound), f.locked_until.map(bound))
}

impl AccessStore for PostgresStore {
    fn users(&self) -> Result<Vec<User>, StoreError> {
        self.call(async |c: &mut Client| {
            let rows = c.query(&format!("SELECT {USER_COLUMNS} FROM access_users ORDER BY name"), &[]).await?;
            rows.iter().map(user_from).collect()
        })
    }

    fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let name = name.to_owned();
        self.call(async move |c: &mut Client| {
            let row =
                c.query_opt(&format!("SELECT {USER_COLUMNS} FROM access_users WHERE name = $1"), &[&name]).await?;
            row.as_ref().map(user_from).transpose()
        })
    }

    fn insert_user(&self, u: &User) -> Result<bool, StoreError> {
        let (name, role, hash) = (u.name.clone(), u.role.code(), u.password_hash.expose().to_owned());
        let (changed, created) = (bound(u.password_changed_at), bound(u.created_at));
        self.call(async move |c: &mut Client| {
            let n = c
                .execute(
                    "INSERT INTO access_users (name, role, password_hash, password_changed_at, created_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
                    &[&name, &role, &hash, &changed, &created],
                )
                .await?;
            Ok(n == 1)
        })
    }

    fn update_user(&self, name: &str, change: &UserChange) -> Result<bool, StoreError> {
        let (name, change) = (name.to_owned(), change.clone());
        self.call(async move |c: &mut Client| {
            in_transaction(c, async |tx| {
                let n = match &change {
                    UserChange::Role(role) => {
                        tx.execute("UPDATE access_users SET role = $2 WHERE name = $1", &[&name, &role.code()]).await?
                    }
                    UserChange::Password { hash, at } => {
                        let n = tx
                            .execute(
                                "UPDATE access_users SET password_hash = $2, password_changed_at = $3, failures = 0,
                                    failures_since = NULL, locked_until = NULL WHERE name = $1",
                                &[&name, &hash.expose(), &bound(*at)],
                            )
                            .await?;
                        tx.execute("DELETE FROM access_sessions WHERE user_name = $1", &[&name]).await?;
                        n
                    }
                    UserChange::ClearFailures => {
                        let (count, since, locked) = failures_params(&LoginFailures::default());
                        tx.execute(FAILURES_UPDATE, &[&name, &count, &since, &locked]).await?
                    }
                };
                Ok(n == 1)
            })
            .await
        })
    }

    fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.call(async move |c: &mut Client| {
            Ok(c.execute("DELETE FROM access_users WHERE name = $1", &[&name]).await? == 1)
        })
    }

    fn login_failed(
        &self,
        name: &str,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> Result<Option<LoginFailures>, StoreError> {
        let (name, policy) = (name.to_owned(), *policy);
        self.call(async move |c: &mut Client| {
            in_transaction(c, async |tx| {
                let row = tx
                    .query_opt(&format!("SELECT {USER_COLUMNS} FROM access_users WHERE name = $1 FOR UPDATE"), &[&name])
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let after = user_from(&row)?.failures.after_failure(now, &policy);
                let (count, since, locked) = failures_params(&after);
                tx.execute(FAILURES_UPDATE, &[&name, &count, &since, &locked]).await?;
                Ok(Some(after))
            })
            .await
        })
    }

    fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        let (id, user, csrf) = (s.id_digest.expose().to_owned(), s.user.clone(), s.csrf.expose().to_owned());
        let (created, seen) = (bound(s.created_at), bound(s.last_seen_at));
        self.call(async move |c: &mut Client| {
            c.execute(
                "INSERT INTO access_sessions (id_digest, user_name, csrf, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id_digest) DO NOTHING",
                &[&id, &user, &csrf, &created, &seen],
            )
            .await?;
            Ok(())
        })
    }

    fn session(&self, id_digest: &str) -> Result<Option<SessionRecord>, StoreError> {
        let id = id_digest.to_owned();
        self.call(async move |c: &mut Client| {
            let row = c
                .query_opt(
                    "SELECT id_digest, user_name, csrf, created_at, last_seen_at FROM access_sessions WHERE id_digest = $1",
                    &[&id],
                )
                .await?;
            Ok(row.as_ref().map(session_from))
        })
    }

    fn touch_session(&self, id_digest: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let (id, at) = (id_digest.to_owned(), bound(at));
        self.call(async move |c: &mut Client| {
            c.execute("UPDATE access_sessions SET last_seen_at = $2 WHERE id_digest = $1", &[&id, &at]).await?;
            Ok(())
        })
    }

    fn remove_session(&self, id_digest: &str) -> Result<(), StoreError> {
        let id = id_digest.to_owned();
        self.call(async move |c: &mut Client| {
            c.execute("DELETE FROM access_sessions WHERE id_digest = $1", &[&id]).await?;
            Ok(())
        })
    }

    fn prune_sessions(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let before = bound(before);
        self.call(async move |c: &mut Client| {
            Ok(c.execute("DELETE FROM access_sessions WHERE last_seen_at < $1", &[&before]).await? as usize)
        })
    }

    fn insert_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        let (id, user, label, digest) = (t.id.clone(), t.user.clone(), t.label.clone(), t.digest.expose().to_owned());
        let (created, used) = (bound(t.created_at), t.last_used_at.map(bound));
        self.call(async move |c: &mut Client| {
            c.execute(
                "INSERT INTO access_tokens (id, user_name, label, digest, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&id, &user, &label, &digest, &created, &used],
            )
            .await?;
            Ok(())
        })
    }

    fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let id = id.to_owned();
        self.call(async move |c: &mut Client| {
            let row = c
                .query_opt(
                    "SELECT id, user_name, label, digest, created_at, last_used_at FROM access_tokens WHERE id = $1",
                    &[&id],
                )
                .await?;
            Ok(row.as_ref().map(token_from))
        })
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.call(async |c: &mut Client| {
            let rows = c
                .query(
                    "SELECT id, user_name, label, digest, created_at, last_used_at FROM access_tokens ORDER BY created_at, id",
                    &[],
                )
                .await?;
            Ok(rows.iter().map(token_from).collect())
        })
    }

    fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.call(async move |c: &mut Client| {
            Ok(c.execute("DELETE FROM access_tokens WHERE id = $1", &[&id]).await? == 1)
        })
    }

    fn touch_token(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let (id, at) = (id.to_owned(), bound(at));
        self.call(async move |c: &mut Client| {
            c.execute("UPDATE access_tokens SET last_used_at = $2 WHERE id = $1", &[&id, &at]).await?;
            Ok(())
        })
    }

    fn record_change(&self, ch: &Change) -> Result<(), StoreError> {
        let ch = ch.clone();
        self.call(async move |c: &mut Client| {
            let before = ch.revision_before.map(|r| r as i64);
            let after = ch.revision_after.map(|r| r as i64);
            c.execute(
                "INSERT INTO access_changes (at, actor, kind, section, revision_before, revision_after, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&bound(ch.at), &ch.actor, &ch.kind.code(), &ch.section, &before, &after, &ch.detail],
            )
            .await?;
            Ok(())
        })
    }

    fn changes(&self, q: &ChangeQuery) -> Result<Vec<Change>, StoreError> {
        let (since, limit) = (q.since.map(bound), q.limit() as i64);
        self.call(async move |c: &mut Client| {
            let rows = c
                .query(
                    "SELECT at, actor, kind, section, revision_before, revision_after, detail FROM access_changes
                     WHERE ($1::timestamptz IS NULL OR at >= $1) ORDER BY id DESC LIMIT $2",
                    &[&since, &limit],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let kind: String = r.get(2);
                out.push(Change {
                    at: r.get(0),
                    actor: r.get(1),
                    kind: ChangeKind::from_code(&kind).ok_or_else(|| StoreError::Corrupt {
                        table: "access_changes",
                        detail: format!("unknown kind `{kind}`"),
                    })?,
                    section: r.get(3),
                    revision_before: r.get::<_, Option<i64>>(4).map(|v| v as u64),
                    revision_after: r.get::<_, Option<i64>>(5).map(|v| v as u64),
                    detail: r.get(6),
                });
            }
            Ok(out)
        })
    }
}
