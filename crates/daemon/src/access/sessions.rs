//! Credentials of a request: browser sessions (kept in the store by their id's digest, so any
//! instance of an HA setup takes them and they survive a failover; ended after
//! `admin.session_idle_minutes` unused, or when the user's password changes) and bearer tokens
//! (the configured `admin.token`, or a user's API token).

use chrono::{DateTime, Utc};
use ticketing_core::secret::Secret;

use super::credentials::{digest, random_hex, same, token_id};
use super::{AccessSettings, AccessStore, Actor, Principal, Role};
use crate::store::{SessionRecord, StoreError};

/// A session just started: the cookie's value and the CSRF token.
#[derive(Debug)]
pub struct Started {
    /// The session id, for the cookie only.
    pub cookie: Secret,
    /// The CSRF token.
    pub csrf: String,
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Live {
    /// The session id's digest (the store's key).
    pub digest: String,
    /// The CSRF token its forms carry.
    pub csrf: String,
    /// Who.
    pub principal: Principal,
}

/// Starts a session of `user` (`None`: the configured `admin.token`).
pub fn start(store: &dyn AccessStore, settings: &AccessSettings, user: Option<&str>) -> Result<Started, StoreError> {
    let now = settings.clock.now();
    let cookie = Secret::new(random_hex(32));
    let csrf = random_hex(32);
    // Sessions idle past the limit go now and then (each start is a good moment).
    let _ = store.prune_sessions(now - settings.session_idle);
    store.insert_session(&SessionRecord {
        id_digest: Secret::new(digest(cookie.expose())),
        user: user.map(str::to_owned),
        csrf: Secret::new(csrf.clone()),
        created_at: now,
        last_seen_at: now,
    })?;
    Ok(Started { cookie, csrf })
}

/// The live session with this cookie value, if any (and marks it used). A session idle past
/// the limit, of a removed user, or older than the user's password, is ended.
pub fn resolve(store: &dyn AccessStore, settings: &AccessSettings, cookie: &str) -> Result<Option<Live>, StoreError> {
    let now = settings.clock.now();
    let id = digest(cookie);
    let Some(s) = store.session(&id)? else { return Ok(None) };
    if now - s.last_seen_at >= settings.session_idle {
        store.remove_session(&id)?;
        return Ok(None);
    }
    let principal = match &s.user {
        None => Principal { actor: Actor::ConfigToken, role: Role::Admin },
        Some(name) => match store.user(name)? {
            Some(u) if u.password_changed_at <= s.created_at => Principal { actor: Actor::User(u.name), role: u.role },
            _ => {
                store.remove_session(&id)?;
                return Ok(None);
            }
        },
    };
    touch(store, &id, &s.last_seen_at, now)?;
    Ok(Some(Live { digest: id, csrf: s.csrf.expose().to_owned(), principal }))
}

/// Marks a session used (at most once a second: a page's assets do not write each).
fn touch(store: &dyn AccessStore, id: &str, last: &DateTime<Utc>, now: DateTime<Utc>) -> Result<(), StoreError> {
    if now - *last >= chrono::TimeDelta::seconds(1) { store.touch_session(id, now) } else { Ok(()) }
}

/// Ends the session with this digest.
pub fn end(store: &dyn AccessStore, digest: &str) -> Result<(), StoreError> {
    store.remove_session(digest)
}

/// The principal of a presented bearer token: the configured `admin.token` (an admin), or a
/// user's API token (the user's role; its last use is noted). `None`: not a valid token.
pub fn bearer(
    store: Option<&dyn AccessStore>,
    settings: &AccessSettings,
    config_token: Option<&Secret>,
    presented: &str,
) -> Option<Principal> {
    if config_token.is_some_and(|t| !t.is_empty() && same(presented, t.expose())) {
        return Some(Principal { actor: Actor::ConfigToken, role: Role::Admin });
    }
    let store = store?;
    let id = token_id(presented)?;
    let record = store.token(id).ok().flatten()?;
    if !same(&digest(presented), record.digest.expose()) {
        return None;
    }
    let user = store.user(&record.user).ok().flatten()?;
    let now = settings.clock.now();
    if record.last_used_at.is_none_or(|t| now - t >= chrono::TimeDelta::seconds(1)) {
        let _ = store.touch_token(id, now);
    }
    Some(Principal { actor: Actor::Token { user: user.name, id: record.id }, role: user.role })
}
